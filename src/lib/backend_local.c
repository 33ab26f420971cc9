/* backend_local.c - the local: back end, a directory on disk.
 *
 * Every operation works relative to one O_PATH descriptor of the root with
 * the *at() system calls and never follows a symlink at the last component;
 * objects are opened with openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)
 * where the kernel has it, so a remote that swaps a directory for a symlink
 * cannot make us write outside the folder. */
#include "scs/backend.h"
#include "scs/fileio.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

struct local_be {
	scs_backend be;
	int root;           /* O_PATH | O_DIRECTORY */
	int has_openat2;    /* probed once at open; read-only afterwards */
};

struct local_obj {
	scs_obj o;
	int fd;
};

static inline struct local_be *LB(scs_backend *be) { return (struct local_be *)be; }
static inline int OFD(scs_obj *o) { return ((struct local_obj *)o)->fd; }
/* "" is the root. */
static inline const char *P(const char *path) { return *path ? path : "."; }

static void attr_from_stat(const struct stat *st, struct scs_attr *a)
{
	a->ino = st->st_ino;
	a->size = (uint64_t)st->st_size;
	a->blocks = (uint64_t)st->st_blocks;
	a->mode = st->st_mode;
	a->nlink = (uint32_t)st->st_nlink;
	a->uid = st->st_uid;
	a->gid = st->st_gid;
	a->atime = st->st_atim;
	a->mtime = st->st_mtim;
	a->ctime = st->st_ctim;
}

static int open_beneath(struct local_be *l, const char *path, int flags, mode_t mode)
{
	flags |= O_CLOEXEC | O_NOFOLLOW;
	if (l->has_openat2) {
		struct open_how how = {
			.flags = (uint64_t)flags,
			.mode = (flags & O_CREAT) ? mode : 0,
			.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
		};
		long fd;
		do
			fd = syscall(SYS_openat2, l->root, P(path), &how, sizeof how);
		while (fd < 0 && errno == EINTR);
		if (fd >= 0)
			return (int)fd;
		return -errno;
	}
	int fd;
	do
		fd = openat(l->root, P(path), flags, mode);
	while (fd < 0 && errno == EINTR);
	return fd < 0 ? -errno : fd;
}

static void local_close(scs_backend *be)
{
	close(LB(be)->root);
	free(be);
}

static int local_stat(scs_backend *be, const char *path, struct scs_attr *a)
{
	struct stat st;
	if (fstatat(LB(be)->root, P(path), &st, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	attr_from_stat(&st, a);
	return 0;
}

static int local_list(scs_backend *be, const char *dir, scs_list_cb cb, void *arg)
{
	int fd = open_beneath(LB(be), dir, O_RDONLY | O_DIRECTORY, 0);
	if (fd < 0)
		return fd;
	DIR *d = fdopendir(fd);
	if (!d) {
		int e = -errno;
		close(fd);
		return e;
	}
	int r = 0;
	for (;;) {
		errno = 0;
		struct dirent *de = readdir(d);
		if (!de) {
			if (errno)
				r = -errno;
			break;
		}
		const char *n = de->d_name;
		if (n[0] == '.' && (n[1] == '\0' || (n[1] == '.' && n[2] == '\0')))
			continue;
		struct stat st;
		if (fstatat(fd, n, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			if (errno == ENOENT)
				continue;   /* removed while we listed */
			r = -errno;
			break;
		}
		struct scs_attr a;
		attr_from_stat(&st, &a);
		r = cb(arg, n, &a);
		if (r)
			break;
	}
	closedir(d);
	return r;
}

static int local_mkdir(scs_backend *be, const char *path, uint32_t mode)
{
	return mkdirat(LB(be)->root, path, mode) < 0 ? -errno : 0;
}

static int local_rmdir(scs_backend *be, const char *path)
{
	return unlinkat(LB(be)->root, path, AT_REMOVEDIR) < 0 ? -errno : 0;
}

static int local_unlink(scs_backend *be, const char *path)
{
	return unlinkat(LB(be)->root, path, 0) < 0 ? -errno : 0;
}

static int local_rename(scs_backend *be, const char *from, const char *to, unsigned flags)
{
	int root = LB(be)->root;
	return renameat2(root, from, root, to, flags) < 0 ? -errno : 0;
}

static int local_symlink(scs_backend *be, const char *target, const char *path)
{
	return symlinkat(target, LB(be)->root, path) < 0 ? -errno : 0;
}

static int local_readlink(scs_backend *be, const char *path, char *buf, size_t size)
{
	if (size < 2)
		return -EINVAL;
	ssize_t n = readlinkat(LB(be)->root, path, buf, size);
	if (n < 0)
		return -errno;
	if ((size_t)n >= size)
		return -ENAMETOOLONG;
	buf[n] = '\0';
	return (int)n;
}

static int local_link(scs_backend *be, const char *from, const char *to)
{
	int root = LB(be)->root;
	return linkat(root, from, root, to, 0) < 0 ? -errno : 0;
}

/* glibc 2.36 emulates fchmodat(AT_SYMLINK_NOFOLLOW) with open(O_PATH),
 * fstat, chmod("/proc/self/fd/N"), close: four syscalls for one chmod (an
 * untar does one per file).  Linux 6.6 has fchmodat2, which takes the flag
 * itself; use it, and the emulation only where the kernel lacks it. */
#if !defined(SYS_fchmodat2) && !defined(__alpha__)
#define SYS_fchmodat2 452        /* the same number on every architecture but alpha */
#endif
#ifdef SYS_fchmodat2
static int have_fchmodat2 = 1;
#else
#define SYS_fchmodat2 (-1)
static int have_fchmodat2 = 0;
#endif

static int local_chmod(scs_backend *be, const char *path, uint32_t mode)
{
	if (__atomic_load_n(&have_fchmodat2, __ATOMIC_RELAXED)) {
		if (syscall(SYS_fchmodat2, LB(be)->root, P(path), (mode_t)(mode & 07777),
			    AT_SYMLINK_NOFOLLOW) == 0)
			return 0;
		if (errno != ENOSYS)
			return errno == ENOTSUP ? -EOPNOTSUPP : -errno;
		__atomic_store_n(&have_fchmodat2, 0, __ATOMIC_RELAXED);
	}
	if (fchmodat(LB(be)->root, P(path), mode & 07777, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOTSUP ? -EOPNOTSUPP : -errno;
	return 0;
}

static int local_chown(scs_backend *be, const char *path, uint32_t uid, uint32_t gid)
{
	if (fchownat(LB(be)->root, P(path), (uid_t)uid, (gid_t)gid, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	return 0;
}

static int local_utimens(scs_backend *be, const char *path, const struct timespec ts[2])
{
	return utimensat(LB(be)->root, P(path), ts, AT_SYMLINK_NOFOLLOW) < 0 ? -errno : 0;
}

static int local_statfs(scs_backend *be, struct statvfs *st)
{
	return fstatvfs(LB(be)->root, st) < 0 ? -errno : 0;
}

/* ---- objects ---- */

/* A write lease: refused (EAGAIN) while another open file description has
 * the object open for writing; later opens wait for the release (the
 * holder gets SIGIO, which the caller must not leave at its default). */
static int local_hold(scs_obj *o, int on)
{
	return fcntl(OFD(o), F_SETLEASE, on ? F_WRLCK : F_UNLCK) < 0 ? -errno : 0;
}

static int local_open(scs_backend *be, const char *path, int flags, uint32_t mode, scs_obj **out)
{
	*out = NULL;
	flags &= O_ACCMODE | O_CREAT | O_EXCL | O_TRUNC;
	struct local_obj *o = malloc(sizeof *o);
	if (!o)
		return -ENOMEM;
	int fd = open_beneath(LB(be), path, flags, mode);
	if (fd < 0) {
		free(o);
		return fd;
	}
	o->o.be = be;
	o->fd = fd;
	*out = &o->o;
	return 0;
}

static ssize_t local_pread(scs_obj *o, void *buf, size_t n, uint64_t off)
{
	int fd = OFD(o);
	size_t done = 0;
	while (done < n) {
		ssize_t r = pread(fd, (char *)buf + done, n - done, (off_t)(off + done));
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			break;
		done += (size_t)r;
	}
	return (ssize_t)done;
}

static ssize_t local_pwrite(scs_obj *o, const void *buf, size_t n, uint64_t off)
{
	int fd = OFD(o);
	size_t done = 0;
	while (done < n) {
		ssize_t r = pwrite(fd, (const char *)buf + done, n - done, (off_t)(off + done));
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			return -EIO;
		done += (size_t)r;
	}
	return (ssize_t)done;
}

static int local_ftruncate(scs_obj *o, uint64_t size)
{
	int r;
	do
		r = ftruncate(OFD(o), (off_t)size);
	while (r < 0 && errno == EINTR);
	return r < 0 ? -errno : 0;
}

static int local_fallocate(scs_obj *o, uint64_t off, uint64_t len)
{
	int r;
	do
		r = fallocate(OFD(o), 0, (off_t)off, (off_t)len);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return (errno == ENOTSUP || errno == ENOSYS) ? -EOPNOTSUPP : -errno;
	return 0;
}

static int local_fsync(scs_obj *o, int datasync)
{
	return (datasync ? fdatasync(OFD(o)) : fsync(OFD(o))) < 0 ? -errno : 0;
}

static int local_fstat(scs_obj *o, struct scs_attr *a)
{
	struct stat st;
	if (fstat(OFD(o), &st) < 0)
		return -errno;
	attr_from_stat(&st, a);
	return 0;
}

static int local_obj_close(scs_obj *o)
{
	int r = close(OFD(o)) < 0 && errno != EINTR ? -errno : 0;
	free(o);
	return r;
}

/* ---- whole small objects ---- */

static int local_read_file(scs_backend *be, const char *path, size_t max, uint8_t **data, size_t *len)
{
	*data = NULL;
	*len = 0;
	int fd = open_beneath(LB(be), path, O_RDONLY, 0);
	if (fd < 0)
		return fd;
	return scs_fd_read_all(fd, max, data, len);
}

static int fsync_parent(struct local_be *l, const char *path)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');
	size_t n = slash ? (size_t)(slash - path) : 0;
	if (n >= sizeof dir)
		return -ENAMETOOLONG;
	memcpy(dir, path, n);
	dir[n] = '\0';
	int fd = open_beneath(l, dir, O_RDONLY | O_DIRECTORY, 0);
	if (fd < 0)
		return fd;
	int r = fsync(fd) < 0 ? -errno : 0;
	close(fd);
	/* Some file systems (FUSE sync clients) cannot fsync directories. */
	return r == -EINVAL || r == -ENOTSUP ? 0 : r;
}

/* Write data into a fresh temp object beside path and fsync it; tmp gets
 * its name.  Returns 0 or -errno (nothing left behind on failure). */
static int write_tmp(struct local_be *l, const char *path, const void *data, size_t len,
		     char tmp[PATH_MAX])
{
	uint8_t rnd[8];
	if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd)
		return -EIO;
	if ((size_t)snprintf(tmp, PATH_MAX, "%s" SCS_TMP_INFIX "%02x%02x%02x%02x%02x%02x%02x%02x",
			     path, rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7])
	    >= PATH_MAX)
		return -ENAMETOOLONG;
	int fd = open_beneath(l, tmp, O_WRONLY | O_CREAT | O_EXCL, 0644);
	if (fd < 0)
		return fd;
	struct local_obj o = { .o = { .be = &l->be }, .fd = fd };
	ssize_t w = local_pwrite(&o.o, data, len, 0);
	int r = w < 0 ? (int)w : 0;
	if (!r && fsync(fd) < 0)
		r = -errno;
	if (close(fd) < 0 && !r && errno != EINTR)
		r = -errno;
	if (r)
		unlinkat(l->root, tmp, 0);
	return r;
}

static int local_write_file(scs_backend *be, const char *path, const void *data, size_t len)
{
	struct local_be *l = LB(be);
	char tmp[PATH_MAX];
	int r = write_tmp(l, path, data, len, tmp);
	if (r)
		return r;
	if (renameat(l->root, tmp, l->root, path) < 0) {
		r = -errno;
		unlinkat(l->root, tmp, 0);
		return r;
	}
	return fsync_parent(l, path);
}

static int local_create_file(scs_backend *be, const char *path, const void *data, size_t len)
{
	struct local_be *l = LB(be);
	char tmp[PATH_MAX];
	int r = write_tmp(l, path, data, len, tmp);
	if (r)
		return r;
	/* linkat fails with EEXIST atomically: never replaces. */
	if (linkat(l->root, tmp, l->root, path, 0) == 0) {
		unlinkat(l->root, tmp, 0);
	} else if (errno == EEXIST) {
		unlinkat(l->root, tmp, 0);
		return -EEXIST;
	} else if (errno == EPERM || errno == ENOTSUP || errno == EOPNOTSUPP || errno == EMLINK) {
		/* No hard links here (FAT, some sync clients): same promise. */
		if (renameat2(l->root, tmp, l->root, path, RENAME_NOREPLACE) < 0) {
			r = -errno;
			unlinkat(l->root, tmp, 0);
			return r == -EINVAL ? -EOPNOTSUPP : r;
		}
	} else {
		r = -errno;
		unlinkat(l->root, tmp, 0);
		return r;
	}
	return fsync_parent(l, path);
}

static const struct scs_backend_ops local_ops = {
	.scheme = "local",
	.close = local_close,
	.stat = local_stat,
	.list = local_list,
	.mkdir = local_mkdir,
	.rmdir = local_rmdir,
	.unlink = local_unlink,
	.rename = local_rename,
	.symlink = local_symlink,
	.readlink = local_readlink,
	.link = local_link,
	.chmod = local_chmod,
	.chown = local_chown,
	.utimens = local_utimens,
	.statfs = local_statfs,
	.open = local_open,
	.hold = local_hold,
	.hold_all = 1,
	.pread = local_pread,
	.pwrite = local_pwrite,
	.ftruncate = local_ftruncate,
	.fallocate = local_fallocate,
	.fsync = local_fsync,
	.fstat = local_fstat,
	.obj_close = local_obj_close,
	.read_file = local_read_file,
	.write_file = local_write_file,
	.create_file = local_create_file,
};

int scs_backend_local_open(const char *dir, scs_backend **out, scs_err *err)
{
	*out = NULL;
	int fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		if (e == ENOENT)
			return scs_err_set(err, -ENOENT,
				"folder %s does not exist; create it or check the path", dir);
		if (e == ENOTDIR)
			return scs_err_set(err, -ENOTDIR, "%s is not a directory; give a folder", dir);
		if (e == EACCES)
			return scs_err_set(err, -EACCES,
				"cannot open folder %s: permission denied; check its permissions", dir);
		return scs_err_set(err, -e, "cannot open folder %s: %s", dir, strerror(e));
	}
	/* O_PATH does not check search permission; do it now for a clear message. */
	if (faccessat(fd, ".", X_OK | R_OK, 0) < 0) {
		int e = errno;
		close(fd);
		return scs_err_set(err, -e, "cannot use folder %s: %s; check its permissions",
				   dir, strerror(e));
	}
	struct local_be *l = calloc(1, sizeof *l);
	char *remote = malloc(strlen(dir) + 7);
	if (!l || !remote) {
		free(l);
		free(remote);
		close(fd);
		return scs_err_set(err, -ENOMEM, "out of memory");
	}
	sprintf(remote, "local:%s", dir);
	l->be.ops = &local_ops;
	l->be.remote = remote;
	l->root = fd;
	struct open_how how = { .flags = O_PATH | O_CLOEXEC, .resolve = RESOLVE_BENEATH };
	long pfd = syscall(SYS_openat2, fd, ".", &how, sizeof how);
	l->has_openat2 = pfd >= 0;
	if (pfd >= 0)
		close((int)pfd);
	*out = &l->be;
	return 0;
}
