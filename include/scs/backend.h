/* scs/backend.h - the storage back-end interface.
 *
 * One struct of function pointers per back end (as curl's TLS back ends):
 * the core never knows which one it has.  Paths are relative to the remote
 * folder's root, '/'-separated, without a leading '/'; "" is the root.
 * Every operation returns 0 (or a byte count) or a negative errno.
 * Back ends that cannot do something (hard links on Drive) leave the
 * pointer NULL; the wrappers below then return -ENOTSUP. */
#ifndef SCS_BACKEND_H
#define SCS_BACKEND_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/statvfs.h>
#include <time.h>
#include "scs/err.h"

typedef struct scs_backend scs_backend;
typedef struct scs_obj scs_obj;

struct scs_attr {
	uint64_t ino;        /* stable per object while it exists */
	uint64_t size;       /* object (ciphertext) size */
	uint64_t blocks;     /* 512-byte blocks used */
	uint32_t mode;       /* S_IFMT type bits | permission bits */
	uint32_t nlink;
	uint32_t uid, gid;
	struct timespec atime, mtime, ctime;
};

/* list callback: return non-zero to stop (that value is returned). */
typedef int (*scs_list_cb)(void *arg, const char *name, const struct scs_attr *attr);

/* Flags for set_times: which of atime/mtime to set (UTIME_NOW/UTIME_OMIT in
 * tv_nsec as for utimensat). */
struct scs_backend_ops {
	const char *scheme;                     /* "local", "gdrive" */
	void (*close)(scs_backend *be);

	int (*stat)(scs_backend *be, const char *path, struct scs_attr *a); /* no follow */
	int (*list)(scs_backend *be, const char *dir, scs_list_cb cb, void *arg); /* with attrs */
	int (*mkdir)(scs_backend *be, const char *path, uint32_t mode);
	int (*rmdir)(scs_backend *be, const char *path);
	int (*unlink)(scs_backend *be, const char *path);
	int (*rename)(scs_backend *be, const char *from, const char *to, unsigned flags); /* RENAME_* */
	int (*symlink)(scs_backend *be, const char *target, const char *path);
	int (*readlink)(scs_backend *be, const char *path, char *buf, size_t size);
	int (*link)(scs_backend *be, const char *from, const char *to);
	int (*chmod)(scs_backend *be, const char *path, uint32_t mode);
	int (*chown)(scs_backend *be, const char *path, uint32_t uid, uint32_t gid); /* (uint32_t)-1 = keep */
	int (*utimens)(scs_backend *be, const char *path, const struct timespec ts[2]);
	int (*statfs)(scs_backend *be, struct statvfs *st);

	/* Random-access objects.  flags: O_RDONLY/O_RDWR | O_CREAT | O_EXCL | O_TRUNC. */
	int (*open)(scs_backend *be, const char *path, int flags, uint32_t mode, scs_obj **out);
	ssize_t (*pread)(scs_obj *o, void *buf, size_t n, uint64_t off);
	ssize_t (*pwrite)(scs_obj *o, const void *buf, size_t n, uint64_t off);
	int (*ftruncate)(scs_obj *o, uint64_t size);
	int (*fallocate)(scs_obj *o, uint64_t off, uint64_t len); /* reserve space; may be NULL */
	int (*fsync)(scs_obj *o, int datasync);
	int (*fstat)(scs_obj *o, struct scs_attr *a);
	int (*obj_close)(scs_obj *o);

	/* Whole small objects (metadata).  read_file fails with -EFBIG past max.
	 * write_file writes beside then renames into place atomically (durable:
	 * fsync of file and directory).  create_file does the same but fails
	 * with -EEXIST if path exists (never replaces: used for keyring entries). */
	int (*read_file)(scs_backend *be, const char *path, size_t max, uint8_t **data, size_t *len);
	int (*write_file)(scs_backend *be, const char *path, const void *data, size_t len);
	int (*create_file)(scs_backend *be, const char *path, const void *data, size_t len);

	/* Optional (the re-key pass): on = 1 takes an exclusive hold on the
	 * object, which fails with -EAGAIN while anyone else has it open for
	 * writing, and makes new opens wait until on = 0 releases it (local:
	 * a write lease, fcntl F_SETLEASE).  Other errors: no hold possible.
	 * hold_all 0: the hold sees only this process's writers and makes
	 * nobody wait (gdrive: Drive has no lease; a mount's own pass leaves
	 * the mount's open files alone, other machines' it cannot see). */
	int (*hold)(scs_obj *o, int on);
	int hold_all;

	/* Optional: called when a handle that wrote is closed (FUSE flush,
	 * before close(2) returns): make what was written durable on this
	 * machine (gdrive: cache file + journal record fsynced).  NULL: nothing
	 * to do (local: writes are in the folder already). */
	int (*obj_flush)(scs_obj *o);

	/* Optional: start background work (gdrive: the uploader threads).
	 * scsfs calls it once the daemon has forked; threads do not survive a
	 * fork.  Back ends without it have none. */
	int (*start)(scs_backend *be, scs_err *err);
};

/* Options of the storage back ends for this process (scsfs -o ...), set
 * before scs_backend_open.  local: ignores them.  Zero = the default. */
struct scs_backend_opts {
	int write_back;            /* gdrive: the mount's durable write-back cache:
				    * journaled background uploads, cache lock */
	int sync_upload;           /* fsync and close wait until Drive has it */
	double upload_delay;       /* seconds after the last close (default 1) */
	unsigned upload_parallel;  /* transfers at once (default 3) */
	unsigned download_parallel; /* read-ahead GETs at once (default 8) */
	uint64_t cache_max;        /* bytes of clean cached data kept (0: no bound) */
};
void scs_backend_set_opts(const struct scs_backend_opts *o);
void scs_backend_get_opts(struct scs_backend_opts *o);

/* Hooks the core sets on a back end that stores remotely and learns of
 * other writers' changes (gdrive:).  Back ends that never call them (local:)
 * ignore them.  Both may be called from a back end's own threads.
 *
 * conflict_name: an upload found that the remote object at path is no
 *   longer the version this mount's edit was based on (another member
 *   changed it).  Both are kept: the core returns in out (cap bytes) the
 *   back-end path, in the same directory, of a new entry to store ours
 *   under ("name (conflict from alice 2026-11-23 10-15).ext", encrypted);
 *   the back end creates it there and leaves the other version at path.
 *   Returns 0 or a negative errno (then the upload is retried later);
 *   -ECANCELED: the core moved that content elsewhere itself (an open file
 *   re-homed after a re-key), so nothing of the upload is to be kept.
 * changed: the object or directory at path changed remotely (what:
 *   SCS_BE_CHANGED_*); the core drops what it cached about it (and the
 *   kernel's cache).  path is NULL when the back end cannot say which.
 * upload: (optional) a back end that sends this mount's writes later (a
 *   write-back queue) asks the core whether what it is about to send is in
 *   the group's current epoch; the core's view of the keyring may be older
 *   than the write, and a re-key pass run elsewhere cannot see what is not
 *   sent yet (a new file before its first upload, an entry made while the
 *   remote was unreachable), then retires the old epoch: what arrived in
 *   it afterwards would be refused by every member.  See struct
 *   scs_be_upload for when it is called and what it answers.  The back
 *   end holds no lock while calling it: the core may call back into the
 *   back end (stat, open, rename, unlink the entry or make new ones). */
enum { SCS_BE_CHANGED_CONTENT = 1, SCS_BE_CHANGED_ENTRY = 2 };

/* when: */
enum {
	SCS_BE_UP_CREATE = 1,  /* about to make an entry made while unreachable
				* (a folder, a symbolic link, or a file before
				* its content) */
	SCS_BE_UP_SEND,        /* about to send a file's content */
	SCS_BE_UP_SENT,        /* its content just landed (the keyring may have
				* moved on while it was in flight) */
	SCS_BE_UP_MOVE,        /* about to give an entry the others see the
				* name (and folder) given to it while
				* unreachable; path: that new place */
};
/* flags: */
#define SCS_BE_UP_NEW     1u   /* nobody else sees the entry yet: a new file
				* before its first upload landed (SENT: before
				* this one), an entry made while unreachable */
#define SCS_BE_UP_CHANGED 2u   /* SEND: the remote entry is no longer the
				* version this edit was based on (changed or
				* deleted by someone else): ours is to be kept
				* beside it as a conflict copy */
#define SCS_BE_UP_OPEN    4u   /* the object is open for writing in this
				* process now */
#define SCS_BE_UP_LINK    8u   /* CREATE of a symbolic link: fd holds its
				* stored target */
struct scs_be_upload {
	int when;
	const char *path;      /* the entry (as current as the back end knows) */
	int fd;                /* SEND, SENT: a read-only copy of the content
				* (size bytes); a link's target (LINK); else -1 */
	uint64_t size;
	uint32_t mode;         /* its permission bits */
	unsigned flags;
};
/* What upload returns: 0 go on (send it as it is; SENT: nothing more to
 * do; CREATE, MOVE: the core may have renamed the entry in its folder
 * first, to its name under the current epoch); SCS_BE_UP_MOVED: the core
 * moved the content itself, to the current epoch (SEND: the entry at path
 * was replaced by a new object with its own queued upload, or, with
 * SCS_BE_UP_CHANGED, ours now is a conflict copy of its own: nothing of
 * this upload is to be sent; SENT: the entry that landed was replaced
 * likewise; CREATE of a link: replaced by a new link); -EAGAIN: not now,
 * soon again (the object is open for writing here); another negative
 * errno: try later (SENT: the job stays queued, and the next SEND moves
 * it). */
#define SCS_BE_UP_MOVED 1
struct scs_backend_hooks {
	void *arg;
	int (*conflict_name)(void *arg, const char *path, char *out, size_t cap);
	void (*changed)(void *arg, const char *path, int what);
	int (*upload)(void *arg, const struct scs_be_upload *u);
};

struct scs_backend {
	const struct scs_backend_ops *ops;
	char *remote;        /* the REMOTE string it was opened from */
	struct scs_backend_hooks hooks; /* zero unless the core sets them */
};

struct scs_obj {
	scs_backend *be;
};

/* Open "local:/path" (later "gdrive:..."); a bare absolute path means local:.
 * -ENOENT / -ENOTDIR / -EACCES with a human message in err. */
int scs_backend_open(const char *remote, scs_backend **out, scs_err *err);
void scs_backend_close(scs_backend *be);

/* Back end constructors (one per back end). */
int scs_backend_local_open(const char *dir, scs_backend **out, scs_err *err);

/* Temporary objects made by write_file/create_file are named
 * "<path>" SCS_TMP_INFIX "<16 hex digits>" beside their target; a crash can
 * leave one behind.  Listings hide them (scs_is_tmp_name). */
#define SCS_TMP_INFIX ".tmp-"
int scs_is_tmp_name(const char *name);

/* Wrappers: call the back end, or return -ENOTSUP when it lacks the
 * operation.  Use these instead of be->ops->x so optional operations need
 * no NULL checks at the call sites. */
#define SCS_BE_CALL(be, op, ...) \
	((be)->ops->op ? (be)->ops->op(__VA_ARGS__) : -ENOTSUP)
static inline int scs_be_stat(scs_backend *be, const char *p, struct scs_attr *a)
{ return SCS_BE_CALL(be, stat, be, p, a); }
static inline int scs_be_list(scs_backend *be, const char *d, scs_list_cb cb, void *arg)
{ return SCS_BE_CALL(be, list, be, d, cb, arg); }
static inline int scs_be_mkdir(scs_backend *be, const char *p, uint32_t mode)
{ return SCS_BE_CALL(be, mkdir, be, p, mode); }
static inline int scs_be_rmdir(scs_backend *be, const char *p)
{ return SCS_BE_CALL(be, rmdir, be, p); }
static inline int scs_be_unlink(scs_backend *be, const char *p)
{ return SCS_BE_CALL(be, unlink, be, p); }
static inline int scs_be_rename(scs_backend *be, const char *from, const char *to, unsigned flags)
{ return SCS_BE_CALL(be, rename, be, from, to, flags); }
static inline int scs_be_symlink(scs_backend *be, const char *target, const char *p)
{ return SCS_BE_CALL(be, symlink, be, target, p); }
/* Returns the target length; buf is NUL-terminated; -ENAMETOOLONG if it
 * does not fit in size - 1 bytes. */
static inline int scs_be_readlink(scs_backend *be, const char *p, char *buf, size_t size)
{ return SCS_BE_CALL(be, readlink, be, p, buf, size); }
static inline int scs_be_link(scs_backend *be, const char *from, const char *to)
{ return SCS_BE_CALL(be, link, be, from, to); }
static inline int scs_be_chmod(scs_backend *be, const char *p, uint32_t mode)
{ return SCS_BE_CALL(be, chmod, be, p, mode); }
static inline int scs_be_chown(scs_backend *be, const char *p, uint32_t uid, uint32_t gid)
{ return SCS_BE_CALL(be, chown, be, p, uid, gid); }
static inline int scs_be_utimens(scs_backend *be, const char *p, const struct timespec ts[2])
{ return SCS_BE_CALL(be, utimens, be, p, ts); }
static inline int scs_be_statfs(scs_backend *be, struct statvfs *st)
{ return SCS_BE_CALL(be, statfs, be, st); }
static inline int scs_be_open(scs_backend *be, const char *p, int flags, uint32_t mode, scs_obj **out)
{ return SCS_BE_CALL(be, open, be, p, flags, mode, out); }
static inline ssize_t scs_obj_pread(scs_obj *o, void *buf, size_t n, uint64_t off)
{ return o->be->ops->pread(o, buf, n, off); }
static inline ssize_t scs_obj_pwrite(scs_obj *o, const void *buf, size_t n, uint64_t off)
{ return o->be->ops->pwrite(o, buf, n, off); }
static inline int scs_obj_ftruncate(scs_obj *o, uint64_t size)
{ return SCS_BE_CALL(o->be, ftruncate, o, size); }
/* -ENOTSUP/-EOPNOTSUPP: no reservation possible; callers carry on. */
static inline int scs_obj_fallocate(scs_obj *o, uint64_t off, uint64_t len)
{ return SCS_BE_CALL(o->be, fallocate, o, off, len); }
static inline int scs_obj_fsync(scs_obj *o, int datasync)
{ return SCS_BE_CALL(o->be, fsync, o, datasync); }
static inline int scs_obj_fstat(scs_obj *o, struct scs_attr *a)
{ return SCS_BE_CALL(o->be, fstat, o, a); }
static inline int scs_obj_hold(scs_obj *o, int on)
{ return SCS_BE_CALL(o->be, hold, o, on); }
/* Whether the back end's hold sees every writer (the re-key pass then
 * never replaces a file that anybody has open for writing). */
static inline int scs_be_hold_sees_all(scs_backend *be)
{ return be->ops->hold != NULL && be->ops->hold_all; }
static inline int scs_be_start(scs_backend *be, scs_err *err)
{ return be->ops->start ? be->ops->start(be, err) : 0; }
static inline int scs_obj_flush(scs_obj *o)
{ return o->be->ops->obj_flush ? o->be->ops->obj_flush(o) : 0; }
static inline int scs_obj_close(scs_obj *o)
{ return o->be->ops->obj_close(o); }
static inline int scs_be_read_file(scs_backend *be, const char *p, size_t max, uint8_t **data, size_t *len)
{ return SCS_BE_CALL(be, read_file, be, p, max, data, len); }
static inline int scs_be_write_file(scs_backend *be, const char *p, const void *data, size_t len)
{ return SCS_BE_CALL(be, write_file, be, p, data, len); }
static inline int scs_be_create_file(scs_backend *be, const char *p, const void *data, size_t len)
{ return SCS_BE_CALL(be, create_file, be, p, data, len); }

#endif
