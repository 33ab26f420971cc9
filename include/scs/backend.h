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
};

struct scs_backend {
	const struct scs_backend_ops *ops;
	char *remote;        /* the REMOTE string it was opened from */
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

#endif
