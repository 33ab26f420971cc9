/* err.c - one-line error messages carried back to the programs. */
#include "scs/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int scs_err_set(scs_err *e, int code, const char *fmt, ...)
{
	if (e) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(e->msg, sizeof e->msg, fmt, ap);
		va_end(ap);
		/* Keep it one line whatever the arguments held. */
		for (char *p = e->msg; *p; p++)
			if (*p == '\n' || *p == '\r')
				*p = ' ';
		e->code = code;
	}
	return code;
}

void scs_err_clear(scs_err *e)
{
	if (e) {
		e->code = 0;
		e->msg[0] = '\0';
	}
}
