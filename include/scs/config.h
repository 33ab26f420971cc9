/* scs/config.h - per-user state on this machine: XDG directories, atomic
 * local files, and the config file $XDG_CONFIG_HOME/scsfs/config
 * (default ~/.config/scsfs/config) of simple "key = value" lines:
 *     # comment
 *     default_remote = local:/abs/path
 * Unknown keys are kept when the file is rewritten. */
#ifndef SCS_CONFIG_H
#define SCS_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "scs/err.h"

#define SCS_PATH_MAX      4096
#define SCS_CONFIG_MAX    65536          /* bytes of config file read */
#define SCS_CONFIG_VALUE_MAX 4096

enum scs_xdg { SCS_XDG_CONFIG, SCS_XDG_DATA, SCS_XDG_CACHE };

/* "$XDG_x_HOME/scsfs" (a relative $XDG_x_HOME is ignored, as the XDG spec
 * says), else "$HOME/.config/scsfs" / ".local/share/scsfs" / ".cache/scsfs".
 * sub (may be NULL) is appended as "/sub".  -ENAMETOOLONG, -ENOENT (no HOME). */
int scs_xdg_path(enum scs_xdg which, const char *sub, char *out, size_t cap);

/* mkdir -p with mode for every created component.  Existing ones are kept. */
int scs_mkdir_p(const char *path, mode_t mode);

/* Write beside (path.tmp-XXXXXX, mode) then fsync + rename + fsync(dir). */
int scs_local_write_atomic(const char *path, const void *data, size_t len, mode_t mode);
/* The same without the fsyncs, for a file that is only ever a view of
 * durable state (readers see the old or the new whole, never a part; a
 * kill -9 keeps it, a power cut may leave the old one). */
int scs_local_replace(const char *path, const void *data, size_t len, mode_t mode);
/* Read a whole regular file of at most max bytes (-EFBIG beyond); *data is
 * NUL-terminated (not counted in *len); free with free(). */
int scs_local_read(const char *path, size_t max, uint8_t **data, size_t *len);

/* Config values.  get: 0 and the value, -ENOENT if unset (no message), or
 * an error.  set: value NULL removes the key.  Keys are [a-z0-9_]+, values
 * one line without leading/trailing blanks. */
int scs_config_get(const char *key, char *out, size_t cap, scs_err *err);
int scs_config_set(const char *key, const char *value, scs_err *err);

#define SCS_CONFIG_DEFAULT_REMOTE "default_remote"

#endif
