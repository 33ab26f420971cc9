/* scs/err.h - error reporting shared by every libscs module.
 *
 * Convention: functions return 0 (or a byte count) on success and a negative
 * errno value on failure.  Authentication failures (bad tag, bad signature,
 * forged or tampered data) are -EBADMSG; callers at the FUSE boundary map
 * them to EIO.  When a caller passes a non-NULL scs_err, a one-line message
 * for a human (what went wrong and what to do) is stored in it. */
#ifndef SCS_ERR_H
#define SCS_ERR_H

#include <errno.h>
#include <stddef.h>

typedef struct scs_err {
	int code;        /* negative errno, 0 if unset */
	char msg[512];   /* one line, no trailing newline */
} scs_err;

/* Set e (if non-NULL) and return code (negative errno) for tail calls:
 *   return scs_err_set(err, -ENOENT, "folder %s does not exist", p); */
int scs_err_set(scs_err *e, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void scs_err_clear(scs_err *e);

#endif
