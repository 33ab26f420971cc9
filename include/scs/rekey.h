/* scs/rekey.h - the re-key pass: move every entry still in an older epoch
 * (file contents, names, symlink targets) to the current epoch, then retire
 * the older epochs in the keyring.  No FUSE here: `scsctl rekey` and the
 * daemon call it.
 *
 * State lives only in the folder: a file header says its epoch, a symlink
 * target says its epoch, a name decrypts under one epoch's key.  So the
 * pass is idempotent and resumable after a kill at any point: it simply
 * looks again.  Each entry moves in at most two atomic steps, each of which
 * leaves exactly one visible copy:
 *   1. contents (files, symlink targets): re-encrypted beside the object
 *      under a temporary name, the object checked unchanged (back-end
 *      inode, size, mtime, ctime and the 256 header bytes), then the
 *      temporary renamed over it.  If it changed meanwhile, a member wrote
 *      to it: the temporary is dropped and the file tried again later, so
 *      a concurrent write is never lost;
 *   2. the name: renamed (never over an existing entry) to the name
 *      encrypted under the current epoch.  Directories are renamed after
 *      everything inside them; their ids (.scsdir) stay.
 * Temporary objects of the pass are "<stored>.tmp-" SCS_REKEY_TMP_TAG
 * "<8 hex>"; the next pass removes those a crash left behind. */
#ifndef SCS_REKEY_H
#define SCS_REKEY_H

#include <stdint.h>
#include "scs/backend.h"
#include "scs/dir.h"
#include "scs/format.h"
#include "scs/keyctx.h"
#include "scs/names.h"
#include "scs/err.h"

#define SCS_REKEY_TMP_TAG "ffffffff"

/* What is still in older epochs, found without any key (header epochs and
 * symlink target epochs are in clear).  Names are not counted: that needs
 * the keys (scs_rekey_run finds them). */
struct scs_rekey_scan {
	uint64_t files, bytes;            /* every file object, object bytes */
	uint64_t old_files, old_bytes;    /* of those, in an epoch below `epoch` */
	uint64_t old_links;               /* symlinks whose target is older */
	uint64_t bad;                     /* objects without a readable header */
	uint64_t temps;                   /* temporary objects of the pass */
	/* scs_rekey_headers only: called with every readable file header */
	int (*each)(void *arg, const char *rpath, const scs_header *h);
	void *each_arg;
};
/* clean: also remove the pass's temporary objects (a crash left them). */
int scs_rekey_scan(scs_backend *be, uint32_t epoch, int clean, struct scs_rekey_scan *s,
		   scs_err *err);

/* Call each(arg, rpath, header) for every file object whose header
 * decodes (no keys, no signature check), as scs_rekey_scan walks.  A
 * negative return from each stops the walk and is returned. */
int scs_rekey_headers(scs_backend *be, int (*each)(void *arg, const char *rpath, const scs_header *h),
		      void *arg, scs_err *err);

struct scs_rekey_progress {
	uint64_t files_done, files_total;  /* file contents re-encrypted */
	uint64_t bytes_done, bytes_total;  /* object bytes of those files */
	double rate;                       /* bytes per second so far */
	double eta;                        /* seconds left, < 0 unknown */
	const char *path;                  /* plaintext path just done */
};
/* Return non-zero to stop the pass (it returns -EINTR, resumable). */
typedef int (*scs_rekey_cb)(void *arg, const struct scs_rekey_progress *p);

struct scs_rekey_result {
	uint32_t epoch;                    /* the epoch everything moved to */
	uint64_t files, bytes;             /* contents re-encrypted */
	uint64_t names, links, dirs;       /* names, symlink targets, directory names */
	uint64_t busy;                     /* changed during the pass; left for later */
	uint64_t damaged;                  /* did not authenticate; left as they are */
	uint64_t conflicts;                /* the new name was taken; left as they are */
	uint64_t refused;                  /* written by a removed member after the
					    * removal: left, refused by readers */
	uint64_t left;                     /* entries still in older epochs at the end */
};

/* Run the pass over the whole tree (root directory id root_id).  k must
 * hold the signing key and every epoch key.  Returns 0 when nothing is left
 * in an older epoch, -EAGAIN when something is (busy, damaged or in
 * conflict: see r and err), -EINTR if cb stopped it, or another error.
 * While it runs, the pass keeps this user's progress record of the group
 * up to date (see scs_rekey_record below) and removes it at the end.
 * Test hooks (environment): SCSFS_REKEY_STOP=STEP[:N] (scs_rekey_stop);
 * SCSFS_REKEY_PAUSE=SECS sleeps right before replacing each file, after
 * printing "rekey: pausing before replacing PATH" on stderr. */
int scs_rekey_run(scs_backend *be, const scs_keyctx *k, const uint8_t root_id[SCS_DIR_ID_LEN],
		  scs_rekey_cb cb, void *arg, struct scs_rekey_result *r, scs_err *err);

/* Move one file object (at rpath, display its plaintext path for messages)
 * to the current write epoch of k now, with a fresh file id and key, the
 * way the pass moves it (step 1 above: authenticated whole, re-encrypted
 * beside, held, checked unchanged, renamed over); empty: a fresh empty
 * object instead of a copy (a write-open with O_TRUNC; the old header
 * still has to authenticate).  For a write to a file of an older epoch,
 * so that what is written from then on is under the current key.
 * Returns 1 moved (*na, may be NULL: the new object's attributes; its
 * inode differs), 0 nothing done (already in the current epoch, gone,
 * hard-linked -- left to the pass --, or changed or open for writing
 * elsewhere meanwhile), or <0 with err (-EBADMSG: damaged; -EACCES). */
int scs_rekey_file(scs_backend *be, const scs_keyctx *k, const char *rpath, const char *display,
		   int empty, struct scs_attr *na, scs_err *err);

/* ---- a member's own writes that the others do not see yet ----
 * (a gdrive: mount's queued uploads: scsfs moves them to the current epoch
 * before they are sent, scs_backend_hooks.upload) */

/* Copy the plaintext of src into dst (from offset 0; dst ends at least as
 * long as src). */
struct scs_file;
int scs_rekey_copy(struct scs_file *src, struct scs_file *dst);

/* Open the whole object whose ciphertext is the size bytes of fd (a
 * read-only copy: what a queued upload is about to send) as a read-only
 * file, with k, after authenticating it whole (as scs_file_verify: damage
 * is never laundered into a valid file).  where: its back-end path (for the
 * memory of file versions, seen.h); display: for log lines.  fd must stay
 * open until the file is closed.  0, or <0 with err. */
int scs_rekey_open_fd(int fd, uint64_t size, const char *where, const scs_keyctx *k,
		      const char *display, struct scs_file **out, scs_err *err);

/* The entry at rpath, in the directory dpath whose id is dir_id: if its
 * stored name is not the encoding of its plaintext name under the name key
 * of the current write epoch of k (it was encrypted with an older epoch's
 * key, which d -- a dirctx over k -- still reads), it is renamed to that
 * one, never over an existing entry.  plain gets the plaintext name, out
 * (cap bytes) the entry's path afterwards.  Returns 1 renamed, 0 nothing
 * to do (a current name; or not an encrypted name: temporary and reserved
 * objects, sync-client decorations), -EEXIST the new name is taken (out:
 * rpath), or another negative errno.  A Drive duplicate's suffix in rpath
 * is dropped in the new name. */
int scs_rekey_name(scs_backend *be, const scs_keyctx *k, scs_dirctx *d, const char *dpath,
		   const uint8_t dir_id[SCS_DIR_ID_LEN], const char *rpath,
		   char plain[SCS_NAME_MAX + 1], char *out, size_t cap);

/* scs_rekey_file for this member's own write that the others do not see
 * yet: k is scs_vault_keyctx_own (it reads a retired epoch written by this
 * identity), and the object is moved only if its header is exactly expect
 * (the version this member wrote, e.g. what its upload queue was about to
 * send), so nothing the folder holds otherwise is ever moved this way.
 * Returns as scs_rekey_file (0 also when the header differs). */
int scs_rekey_own(scs_backend *be, const scs_keyctx *k, const char *rpath, const char *display,
		  const uint8_t expect[SCS_HEADER_SIZE], struct scs_attr *na, scs_err *err);

/* The symbolic link at rpath (in the directory whose id is parent_id),
 * whose target as stored is `stored` (what this member wrote: a link made
 * while the remote was unreachable, before its creation there), with its
 * target re-encrypted under the current epoch of k (k: scs_vault_keyctx_own
 * reads a retired epoch): a new link beside, renamed over it while it is
 * there.  1 moved, 0 nothing to do (in the current epoch already, gone,
 * changed meanwhile), or <0 (-EBADMSG: the target does not authenticate,
 * -EACCES: no key for it). */
int scs_rekey_link(scs_backend *be, const scs_keyctx *k, const char *rpath,
		   const uint8_t parent_id[SCS_DIR_ID_LEN], const char *stored);

/* After a pass returned 0: append the keyring entry that retires epochs
 * below `below` (signed by self, who must be an admin), unless already
 * retired.  The vault is refreshed to it.  One retry if another admin
 * wrote an entry at the same time. */
struct scs_vault;
int scs_rekey_retire(struct scs_vault *v, uint32_t below, scs_err *err);

/* ---- the progress record of a running pass ----
 * $XDG_CACHE_HOME/scsfs/rekey/<root directory id hex>.progress (the root
 * directory id is derived from the group id: one record per group and
 * user), written beside and renamed over (0600) when the pass starts and
 * at most about once a second after each entry, removed when the pass
 * ends; a killed pass leaves it, and readers then see that its process is
 * gone.  It holds no names and no secret:
 *     scsfs-rekey-progress 1
 *     pid 12345
 *     epoch 3                   the epoch the pass moves everything to
 *     started 1764750000123     Unix time in milliseconds
 *     updated 1764750009456
 *     files 412 1000            files done, files to do in all
 *     bytes 429916160 1073741824
 * exactly these lines in this order, decimal numbers without sign or
 * leading zeros, done <= total, started <= updated. */
#define SCS_REKEY_RECORD_MAX   512          /* bytes of a record read */
#define SCS_REKEY_RECORD_STALE (15 * 60)    /* seconds without an update */

struct scs_rekey_record {
	int64_t pid;
	uint32_t epoch;
	int64_t started, updated;               /* ms since 1970 */
	uint64_t files_done, files_total;
	uint64_t bytes_done, bytes_total;
};

/* The record's path for the group of root directory id root_id. */
int scs_rekey_record_path(const uint8_t root_id[SCS_DIR_ID_LEN], char *out, size_t cap);
/* Strict, bounded parse of len bytes (need not be NUL-terminated): 0, or
 * -EBADMSG. */
int scs_rekey_record_parse(const char *p, size_t len, struct scs_rekey_record *r);
/* Encode r into out (at least SCS_REKEY_RECORD_MAX bytes): its length. */
size_t scs_rekey_record_encode(const struct scs_rekey_record *r, char *out, size_t cap);
/* The record of a pass running now towards epoch (now_ms: the current time,
 * for staleness): 0 and *r; -ENOENT if there is none, or it is damaged,
 * for another epoch, of a process that is gone, or not updated for
 * SCS_REKEY_RECORD_STALE seconds. */
int scs_rekey_record_read(const uint8_t root_id[SCS_DIR_ID_LEN], uint32_t epoch, int64_t now_ms,
			  struct scs_rekey_record *r);

/* Test hook, for crash injection: when $SCSFS_REKEY_STOP is "step" or
 * "step:N", the (N+1)th time this process reaches the named step it
 * prints "SCSFS_REKEY_STOP=... reached, exiting abruptly" on stderr and
 * exits at once with status 9 (nothing flushed, nothing cleaned up).
 * Steps of the pass: written (a file's new object is complete beside the
 * old one, not yet renamed over it), content (a file's new object replaced
 * the old one; its name is not re-encrypted yet), link (a symbolic link's
 * target was re-keyed), name (the name of a file or symbolic link was
 * re-encrypted), dir (a directory's name was), retire (the pass finished,
 * the retire entry is not written yet).  Of `scsctl member remove`:
 * snapshot (the removal snapshot is stored, the entry not yet), entry (the
 * remove entry is stored; nothing else done).  Of a mount's upload queue
 * (scsfs): upload (a queued entry was moved to the current epoch before
 * its upload: replaced by a new object, or its name re-encrypted; nothing
 * after that done). */
void scs_rekey_stop(const char *step);

#endif
