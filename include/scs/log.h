/* scs/log.h - one-line log messages.  Secrets never go through here. */
#ifndef SCS_LOG_H
#define SCS_LOG_H

enum scs_log_level { SCS_LOG_ERR = 3, SCS_LOG_WARN = 4, SCS_LOG_INFO = 6, SCS_LOG_DEBUG = 7 };

/* Where messages go: stderr (default) or syslog (daemonized scsfs). */
void scs_log_to_syslog(const char *ident);
void scs_log_set_level(enum scs_log_level max);
/* Also append every message, whatever the level, to the file at path,
 * each line with the time to the millisecond and the thread id (scsfs:
 * $SCSFS_DEBUG_LOG).  -1 if it cannot be opened. */
int scs_log_debug_file(const char *path);
void scs_log(enum scs_log_level lvl, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif
