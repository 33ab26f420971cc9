/* scs/passphrase.h - the identity passphrase: from an explicit file, the
 * file named by $SCSFS_PASSPHRASE_FILE, or the terminal (/dev/tty, echo
 * off, restored on signals).  Never from argv or a plain environment value.
 * One trailing newline ("\n" or "\r\n") of a file is stripped. */
#ifndef SCS_PASSPHRASE_H
#define SCS_PASSPHRASE_H

#include <stddef.h>
#include "scs/err.h"

#define SCS_PASSPHRASE_MAX 1024          /* bytes, after stripping */
#define SCS_PASSPHRASE_ENV "SCSFS_PASSPHRASE_FILE"

struct scs_passphrase {
	char *buf;       /* NUL-terminated, in locked-if-possible memory */
	size_t len;
};

enum {
	SCS_PASS_NO_PROMPT = 1,   /* never ask on the terminal */
	SCS_PASS_CONFIRM   = 2,   /* terminal: ask twice (new identities) */
	SCS_PASS_NONEMPTY  = 4,   /* refuse an empty passphrase */
};

/* Get the passphrase.  file: explicit --passphrase-file (NULL: use the
 * environment, then the terminal).  prompt: shown on the terminal.
 * Errors: -ENOENT/-EACCES for an unreadable file, -ENXIO when there is no
 * terminal and no file ("no passphrase: set SCSFS_PASSPHRASE_FILE or use
 * --passphrase-file"), -EINVAL for a too long or (with NONEMPTY) empty
 * passphrase or mismatched confirmation, -EINTR if interrupted. */
int scs_passphrase_get(const char *file, const char *prompt, int flags,
		       struct scs_passphrase *out, scs_err *err);
/* Cleanse and free. */
void scs_passphrase_clear(struct scs_passphrase *p);

#endif
