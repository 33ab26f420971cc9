/* log.c - one-line messages to stderr or syslog. */
#include "scs/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <syslog.h>

static int use_syslog;
static enum scs_log_level max_level = SCS_LOG_INFO;

void scs_log_to_syslog(const char *ident)
{
	openlog(ident, LOG_PID, LOG_USER);
	use_syslog = 1;
}

void scs_log_set_level(enum scs_log_level max)
{
	max_level = max;
}

void scs_log(enum scs_log_level lvl, const char *fmt, ...)
{
	va_list ap;
	if (lvl > max_level)
		return;
	va_start(ap, fmt);
	if (use_syslog) {
		vsyslog((int)lvl, fmt, ap);
	} else {
		char line[1024];
		vsnprintf(line, sizeof line, fmt, ap);
		for (char *p = line; *p; p++)
			if (*p == '\n' || *p == '\r')
				*p = ' ';
		fprintf(stderr, "scsfs: %s\n", line);
	}
	va_end(ap);
}
