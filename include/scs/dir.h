/* scs/dir.h - the namespace engine: encrypted names and directories on a
 * back end.  Shared by the FUSE daemon and `scsctl verify` (no FUSE here).
 *
 * A directory is known by its remote path ("" is the root, no leading or
 * trailing '/') and its 16-byte id (names.h): the root's id is derived from
 * the group id and given to scs_dir_new; every other directory's id is in
 * its ".scsdir" object.  Names are encrypted with the name key of the
 * write epoch; entries written in older epochs (before a re-key finished)
 * are still found and listed with the older name keys that the keyctx
 * still returns.
 *
 * Thread-safe: one scs_dirctx serves every FUSE thread (the name-key cache
 * has its own lock).  Every function returns 0 (or a length) or a negative
 * errno; undecryptable names and symlinks are -EBADMSG. */
#ifndef SCS_DIR_H
#define SCS_DIR_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include "scs/backend.h"
#include "scs/keyctx.h"
#include "scs/names.h"

typedef struct scs_dirctx scs_dirctx;

/* Longest remote path the engine builds (dir path + '/' + stored name). */
#define SCS_RPATH_MAX 4096

int scs_dir_new(scs_backend *be, const scs_keyctx *k, const uint8_t root_id[SCS_DIR_ID_LEN],
		scs_dirctx **out);
void scs_dir_free(scs_dirctx *d);
/* Drop the cached name keys (after the keyring changed: new write epoch,
 * retired epochs). */
void scs_dir_forget_keys(scs_dirctx *d);

/* out = dir + "/" + name (just name when dir is the root ""). -ENAMETOOLONG
 * if it does not fit in cap. */
int scs_path_join(char *out, size_t cap, const char *dir, const char *name);

/* The id of the remote directory rpath: the root id for "", else the
 * contents of rpath/.scsdir.  -EBADMSG if .scsdir is malformed, -ENOENT if
 * missing (not one of ours). */
int scs_dir_read_id(scs_dirctx *d, const char *rpath, uint8_t id[SCS_DIR_ID_LEN]);

/* Find plaintext name in directory (dpath, dir_id).  On success writes the
 * child's remote path to rpath[cap] and its back-end attributes to *a
 * (a may be NULL).  Tries the write epoch's name, then older epochs; a name
 * with a " (" in it that is not found directly is also looked for among the
 * entries a sync client decorated ("report (1).odt" = "<enc of report.odt> (1)").
 * -ENOENT if absent; -EINVAL/-ENAMETOOLONG for names that cannot exist. */
int scs_dir_lookup(scs_dirctx *d, const char *dpath, const uint8_t dir_id[SCS_DIR_ID_LEN],
		   const char *name, char *rpath, size_t cap, struct scs_attr *a);

/* Listing.  The callback gets each visible entry: its plaintext name (what
 * the user sees, decorations made readable), its stored remote name, the
 * back-end attributes, and the epoch whose name key decrypted it.  Return
 * non-zero from the callback to stop (that value is returned).
 * Hidden: ".scsdir", long-name side objects, temp objects, ".scsfs" at the
 * root.  Entries whose names cannot be decrypted are skipped with one log
 * line each naming `display` (a plaintext path for humans, may be NULL);
 * with SCS_DIR_LIST_BAD they are passed to the callback instead, with
 * name == NULL and bad = the reason (-EBADMSG, -ENOKEY...), so `scsctl
 * verify` can report them. */
struct scs_dirent {
	const char *name;          /* plaintext, NULL for a bad entry */
	const char *stored;        /* the remote name inside the directory */
	const struct scs_attr *attr;
	uint32_t epoch;            /* epoch of the name key that opened it */
	int decorated;             /* the remote name carried a sync-client suffix */
	int bad;                   /* 0, or why the name could not be read */
};
typedef int (*scs_dir_cb)(void *arg, const struct scs_dirent *e);
#define SCS_DIR_LIST_BAD 1
int scs_dir_list(scs_dirctx *d, const char *dpath, const uint8_t dir_id[SCS_DIR_ID_LEN],
		 const char *display, unsigned flags, scs_dir_cb cb, void *arg);

/* The remote path a new entry `name` in (dpath, dir_id) gets, for create,
 * rename's target, link and symlink.  Writes the long-name side object
 * when the encoding is too long (so call it right before creating the
 * entry, and scs_dir_drop_name if the creation then fails -- but not when
 * it failed with EEXIST: the side object then belongs to that entry).
 * Rename: src = the rpath lookup gave, dst = prepare_name's; after the
 * back-end rename succeeds, scs_dir_drop_name(src) unless src == dst. */
int scs_dir_prepare_name(scs_dirctx *d, const char *dpath, const uint8_t dir_id[SCS_DIR_ID_LEN],
			 const char *name, char *rpath, size_t cap);
/* After the entry at rpath was removed (unlink, rmdir, renamed away):
 * remove its long-name side object if it has one.  No-op for short names;
 * ENOENT is not an error. */
int scs_dir_drop_name(scs_dirctx *d, const char *rpath);

/* The shown name (decorations readable, as the listing has it) of the
 * entry stored as `stored` in (dpath, dir_id).  -ENOENT for entries the
 * listing hides, -EBADMSG/-ENOKEY for names that do not decrypt. */
int scs_dir_shown_name(scs_dirctx *d, const char *dpath, const uint8_t dir_id[SCS_DIR_ID_LEN],
		       const char *stored, char out[SCS_NAME_MAX + 1]);

/* Conflict copies (the back ends' conflict_name hook, backend.h): for the
 * entry at rpath, the remote path in the same directory of a new entry
 * named "name (conflict from WHO YYYY-MM-DD HH-MM).ext" (WHO = the member
 * name, the time local to the minute; " 2", " 3"... before the ")" while
 * taken; the name shortened to fit NAME_MAX), prepared like any new name
 * (encrypted, long-name side object written).  who: '/', '(', ')' and
 * control characters become '_'. */
int scs_dir_conflict_name(scs_dirctx *d, const char *rpath, const char *who, time_t when,
			  char *out, size_t cap);

/* mkdir: creates the remote directory for `name` in (dpath, dir_id) with a
 * fresh random id written to its .scsdir (durably, beside + rename), and
 * cleans up everything on failure.  Returns the new remote path and id. */
int scs_dir_mkdir(scs_dirctx *d, const char *dpath, const uint8_t dir_id[SCS_DIR_ID_LEN],
		  const char *name, uint32_t mode, char *rpath, size_t cap,
		  uint8_t new_id[SCS_DIR_ID_LEN]);
/* rmdir of the remote directory rpath (not the root): -ENOTEMPTY unless it
 * holds nothing but .scsdir (and stale temp objects); removes .scsdir, the
 * directory and its long-name side object.  If the final rmdir fails the
 * .scsdir is put back. */
int scs_dir_rmdir(scs_dirctx *d, const char *rpath);

/* Symlinks: the target is encrypted with the write epoch and the parent's
 * dir id.  symlink creates the entry (name prepared as above) and returns
 * its remote path; readlink returns the target length, target NUL-ended;
 * -EBADMSG for a target that does not authenticate (altered, or moved
 * from another directory: log it, the caller knows the plaintext path),
 * -EACCES when the epoch's key is unknown or retired. */
int scs_dir_symlink(scs_dirctx *d, const char *dpath, const uint8_t dir_id[SCS_DIR_ID_LEN],
		    const char *name, const char *target, char *rpath, size_t cap);
int scs_dir_readlink(scs_dirctx *d, const char *rpath, const uint8_t parent_id[SCS_DIR_ID_LEN],
		     char target[SCS_SYMLINK_MAX + 1]);

/* Walk the tree below the remote directory (rpath, id), depth first, for
 * `scsctl verify` and the re-key pass.  The callback sees every entry:
 * files, symlinks and directories (before their contents), and entries
 * that cannot be read (bad != 0: a name that does not decrypt, -EBADMSG;
 * no key for it, -ENOKEY; a directory whose .scsdir is missing or
 * malformed, -EBADMSG, not descended into).  path is the plaintext path
 * below `display` ("" for the start: "docs/a.txt" when display is ""), or
 * for an unreadable name the directory's path + "/" + the stored name.
 * Return non-zero from the callback to stop the walk (returned). */
struct scs_walk_entry {
	const char *path;
	const char *rpath;
	const struct scs_attr *attr;
	const uint8_t *parent_id;     /* the id its name and symlink target are bound to */
	const uint8_t *dir_id;        /* directories: their own id, NULL if unreadable */
	uint32_t name_epoch;
	int bad;
	int name_ok;                  /* the name decrypted: bad then concerns its .scsdir */
};
typedef int (*scs_walk_cb)(void *arg, const struct scs_walk_entry *e);
int scs_dir_walk(scs_dirctx *d, const char *rpath, const uint8_t id[SCS_DIR_ID_LEN],
		 const char *display, scs_walk_cb cb, void *arg);

#endif
