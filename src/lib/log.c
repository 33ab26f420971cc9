/* log.c - one-line messages to stderr or syslog, and every message (debug
 * ones too) to a debug file if one is set. */
#include "scs/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

static int use_syslog;
static enum scs_log_level max_level = SCS_LOG_INFO;
static FILE *debug_file;

void scs_log_to_syslog(const char *ident)
{
	openlog(ident, LOG_PID, LOG_USER);
	use_syslog = 1;
}

void scs_log_set_level(enum scs_log_level max)
{
	max_level = max;
}

int scs_log_debug_file(const char *path)
{
	FILE *f = fopen(path, "ae");
	if (!f)
		return -1;
	setvbuf(f, NULL, _IOLBF, 0);
	debug_file = f;
	return 0;
}

static void one_line(char *line)
{
	for (char *p = line; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
}

void scs_log(enum scs_log_level lvl, const char *fmt, ...)
{
	va_list ap;
	if (lvl > max_level && !debug_file)
		return;
	char line[1024];
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	one_line(line);
	if (debug_file) {
		/* when, which thread, how grave: what a hang or a race needs */
		static const char tag[] = "...EW.ID";
		struct timespec ts;
		struct tm tm;
		clock_gettime(CLOCK_REALTIME, &ts);
		localtime_r(&ts.tv_sec, &tm);
		fprintf(debug_file, "%02d:%02d:%02d.%03ld %c [%d] %s\n", tm.tm_hour, tm.tm_min,
			tm.tm_sec, ts.tv_nsec / 1000000, tag[lvl & 7], (int)gettid(), line);
	}
	if (lvl > max_level)
		return;
	if (use_syslog)
		syslog((int)lvl, "%s", line);
	else
		fprintf(stderr, "scsfs: %s\n", line);
}
