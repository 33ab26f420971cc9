/* ops.c - the FUSE low-level operations of scsfs.
 *
 * Each operation turns the kernel's node ids into remote paths (node.c),
 * asks the namespace engine (dir.h) for encrypted names and the content
 * engine (file.h) for file contents, and maps errors: authentication
 * failures (-EBADMSG, already logged by the engine with the plaintext name)
 * become EIO, every other negative errno is passed on.
 *
 * Open files: one scs_file per inode, shared by every open handle and
 * closed at the last release.  Unlinking an open file removes the remote
 * entry at once; the handles keep working on the object the engine has
 * open (on local: an open descriptor of the unlinked file, as in any POSIX
 * file system), and getattr on them answers from the last attributes seen. */
#include "fs.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "scs/log.h"
#include "scs/rekey.h"

#define FS(req) ((struct fs *)fuse_req_userdata(req))

static int ferr(int r)
{
	if (r >= 0)
		return 0;
	r = -r;
	return r == EBADMSG ? EIO : r;
}

static void reply_err(fuse_req_t req, int r)
{
	fuse_reply_err(req, ferr(r));
}

static const char *base_of(const char *rpath)
{
	const char *s = strrchr(rpath, '/');
	return s ? s + 1 : rpath;
}

/* Length of a symlink target from the size of its stored form
 * "S1" + base64url(4 + 12 + len + 16 bytes), unpadded. */
static uint64_t symlink_len(uint64_t stored)
{
	if (stored < 2)
		return stored;
	uint64_t bytes = (stored - 2) * 3 / 4;
	return bytes > 32 ? bytes - 32 : 0;
}

/* Plaintext size of the file n: the open file's size if it is open (the
 * object may be mid-write), else from the object size. */
static uint64_t plain_size(struct node *n, const struct scs_attr *a)
{
	if (n) {
		uint64_t s = 0;
		int open = 0;
		pthread_rwlock_rdlock(&n->frw);
		if (n->file) {
			s = scs_file_size(n->file);
			open = 1;
		}
		pthread_rwlock_unlock(&n->frw);
		if (open)
			return s;
	}
	return scs_file_plain_size(a->size);
}

static void fill_stat(struct node *n, const struct scs_attr *a, struct stat *st)
{
	memset(st, 0, sizeof *st);
	st->st_ino = (ino_t)a->ino;
	st->st_mode = a->mode;
	st->st_nlink = a->nlink;
	st->st_uid = a->uid;
	st->st_gid = a->gid;
	if (S_ISREG(a->mode))
		st->st_size = (off_t)plain_size(n, a);
	else if (S_ISLNK(a->mode))
		st->st_size = (off_t)symlink_len(a->size);
	else
		st->st_size = (off_t)a->size;
	st->st_blocks = (blkcnt_t)a->blocks;
	st->st_blksize = SCS_CHUNK_SIZE;
	st->st_atim = a->atime;
	st->st_mtim = a->mtime;
	st->st_ctim = a->ctime;
}

static void make_entry(struct fs *fs, struct node *n, const struct scs_attr *a,
		       struct fuse_entry_param *e)
{
	memset(e, 0, sizeof *e);
	e->ino = node_ino(fs, n);
	e->attr_timeout = fs->attr_timeout;
	e->entry_timeout = fs->entry_timeout;
	fill_stat(n, a, &e->attr);
}

static void reply_entry(fuse_req_t req, struct fs *fs, struct node *n, const struct scs_attr *a)
{
	struct fuse_entry_param e;
	make_entry(fs, n, a, &e);
	if (fuse_reply_entry(req, &e) == -ENOENT)   /* interrupted: nobody got it */
		node_forget(fs, n, 1);
}

/* New entry (parent, rpath): stat it, make its node, answer the kernel. */
static int new_entry(struct fs *fs, struct node *pn, const char *rpath, const char *name,
		     struct node **out, struct scs_attr *a)
{
	int r = scs_be_stat(fs->be, rpath, a);
	if (r)
		return r;
	struct node *n = node_get(fs, pn, base_of(rpath), name, a);
	if (!n)
		return -ENOMEM;
	*out = n;
	return 0;
}

/* ------------------------------------------------------ removed member */

/* One log line per file and reason a minute at most for the refusals
 * below (a program retrying in a loop would fill the log otherwise). */
#define QUIET_SLOTS 64
#define QUIET_SECS 60
static pthread_mutex_t quiet_mu = PTHREAD_MUTEX_INITIALIZER;
static struct { uint64_t h; time_t t; } quiet[QUIET_SLOTS];

static int log_due(const char *what, const char *disp)
{
	uint64_t h = 1469598103934665603ull;            /* FNV-1a */
	for (const char *p = what; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ull;
	for (const char *p = disp; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ull;
	time_t now = time(NULL);
	pthread_mutex_lock(&quiet_mu);
	size_t i = (size_t)(h % QUIET_SLOTS);
	int due = quiet[i].h != h || now - quiet[i].t >= QUIET_SECS;
	if (due) {
		quiet[i].h = h;
		quiet[i].t = now;
	}
	pthread_mutex_unlock(&quiet_mu);
	return due;
}

static int is_member(struct fs *fs)
{
	return scs_vault_membership(fs->vault, NULL, NULL);
}

/* This member was removed from the group (the keyring refresh saw it,
 * main.c): what its mount would write now the members refuse (the removal
 * snapshot lists only what it wrote before), and files re-keyed or written
 * since are under keys it does not hold.  0 for a member; else -EACCES and
 * a log line naming the file n (or its child name), saying what. */
static int refuse_removed(struct fs *fs, struct node *n, const char *name, const char *what)
{
	uint32_t seq;
	const char *by;
	if (scs_vault_membership(fs->vault, &seq, &by))
		return 0;
	char disp[SCS_RPATH_MAX];
	if (name)
		node_child_display(fs, n, name, disp, sizeof disp);
	else
		node_display(fs, n, disp, sizeof disp);
	if (log_due(what, disp))
		scs_log(SCS_LOG_ERR, "%s: %s (you were removed from the group at keyring entry %u by "
			"%s)", disp, what, (unsigned)seq, by);
	return -EACCES;
}

#define NOT_OPENED "cannot be opened: re-keyed since, under a key you do not hold"
#define NOT_FOUND "cannot be opened or created: if it is here, it was re-keyed or written " \
	"since, under a key you do not hold"
#define NOT_WRITTEN(what) what ": the members refuse what you write now"

static int bad_entry(void *arg, const struct scs_dirent *e)
{
	(void)arg;
	return e->bad ? 1 : 0;
}

/* A removed member's lookup that found nothing: EACCES if the directory
 * holds names its keys cannot read (the name may be one of them: re-keyed
 * or made after the removal), else r. */
static int lookup_removed(struct fs *fs, struct node *pn, const char *name, const char *dpath,
			  const uint8_t id[SCS_DIR_ID_LEN], int r)
{
	if ((r != -ENOENT && r != -ENOKEY) || is_member(fs))
		return r;
	if (r == -ENOENT && scs_dir_list(fs->d, dpath, id, NULL, SCS_DIR_LIST_BAD, bad_entry, NULL) != 1)
		return r;
	return refuse_removed(fs, pn, name, NOT_FOUND);
}

/* ------------------------------------------------------------ lifecycle */

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
	struct fs *fs = userdata;
	conn->max_write = 1u << 20;
	if (conn->capable & FUSE_CAP_ASYNC_READ)
		conn->want |= FUSE_CAP_ASYNC_READ;
	if (fs->writeback && (conn->capable & FUSE_CAP_WRITEBACK_CACHE))
		conn->want |= FUSE_CAP_WRITEBACK_CACHE;
	else
		fs->writeback = 0;
	if (conn->capable & FUSE_CAP_CACHE_SYMLINKS)
		conn->want |= FUSE_CAP_CACHE_SYMLINKS;
	if (conn->capable & FUSE_CAP_PARALLEL_DIROPS)
		conn->want |= FUSE_CAP_PARALLEL_DIROPS;
	/* We do not clear set-id bits on write: let the kernel do it. */
	conn->want &= ~FUSE_CAP_HANDLE_KILLPRIV;
	/* Byte-range and flock locks stay local to this machine (the kernel
	 * handles them when we do not implement them). */
	conn->want &= ~(FUSE_CAP_POSIX_LOCKS | FUSE_CAP_FLOCK_LOCKS);
	if (conn->max_background < 64)
		conn->max_background = 64;
	if (conn->congestion_threshold < 48)
		conn->congestion_threshold = 48;
	conn->time_gran = 1;
}

/* --------------------------------------------------------------- lookup */

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fs *fs = FS(req);
	struct node *pn = node_of(fs, parent);
	char dpath[SCS_RPATH_MAX], rpath[SCS_RPATH_MAX];
	uint8_t id[SCS_DIR_ID_LEN];
	struct scs_attr a;
	int r = node_dir(fs, pn, dpath, sizeof dpath, id);
	if (!r) {
		r = scs_dir_lookup(fs->d, dpath, id, name, rpath, sizeof rpath, &a);
		r = lookup_removed(fs, pn, name, dpath, id, r);
	}
	if (r == -EINVAL)
		r = -ENOENT;
	if (r == -ENOENT && fs->negative_timeout > 0) {
		struct fuse_entry_param e;
		memset(&e, 0, sizeof e);
		e.entry_timeout = fs->negative_timeout;
		fuse_reply_entry(req, &e);
		return;
	}
	if (r)
		return reply_err(req, r);
	struct node *n = node_get(fs, pn, base_of(rpath), name, &a);
	if (!n)
		return reply_err(req, -ENOMEM);
	reply_entry(req, fs, n, &a);
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	struct fs *fs = FS(req);
	node_forget(fs, node_of(fs, ino), nlookup);
	fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *fd)
{
	struct fs *fs = FS(req);
	for (size_t i = 0; i < count; i++)
		node_forget(fs, node_of(fs, fd[i].ino), fd[i].nlookup);
	fuse_reply_none(req);
}

/* ---------------------------------------------------------- attributes */

/* Current attributes of n: stat its remote path; an unlinked node (open
 * handles only) answers from the last attributes seen. */
static int node_stat(struct fs *fs, struct node *n, struct scs_attr *a)
{
	char rpath[SCS_RPATH_MAX];
	int r = node_rpath(fs, n, rpath, sizeof rpath);
	if (r == -ENOENT && node_get_attr(fs, n, a) == 0) {
		/* Unlinked through this mount (it has no name left), but the
		 * kernel still holds it: with the writeback cache it sends the
		 * times of a file it wrote after the unlink (at sync).  Answer
		 * with what it had, as a local filesystem does. */
		a->nlink = 0;
		return 0;
	}
	if (!r)
		r = scs_be_stat(fs->be, rpath, a);
	if (!r) {
		node_set_attr(fs, n, a);
		return 0;
	}
	if (r == -ENOENT && node_get_attr(fs, n, a) == 0) {
		pthread_rwlock_rdlock(&n->frw);
		int open = n->file != NULL;
		pthread_rwlock_unlock(&n->frw);
		if (open) {
			a->nlink = 0;
			return 0;
		}
	}
	return r;
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs *fs = FS(req);
	struct node *n = node_of(fs, ino);
	struct scs_attr a;
	int r = node_stat(fs, n, &a);
	if (r)
		return reply_err(req, r);
	struct stat st;
	fill_stat(n, &a, &st);
	fuse_reply_attr(req, &st, fs->attr_timeout);
}

/* Open n (not open in this mount; n->mu held) for writing.  A file whose
 * header is in an older epoch than the one new writes use (a member was
 * removed since it was written) is first moved to the current epoch with a
 * fresh file key, as the re-key pass moves one (scs_rekey_file), so that
 * what is written from now on is not under a key the removed member holds;
 * trunc (O_TRUNC, truncate to 0): a fresh empty object, nothing copied.
 * *a (may be NULL) is updated when the object was replaced. */
static int open_writable(struct fs *fs, struct node *n, const char *rpath, const char *disp,
			 int trunc, struct scs_attr *a, scs_file **out)
{
	int r = scs_file_open(fs->be, rpath, 1, fs->k, disp, out);
	if (r < 0 || scs_file_epoch(*out) >= fs->k->write_epoch(fs->k->arg))
		return r;
	scs_file_close(*out);     /* nothing written yet */
	*out = NULL;
	scs_err err = { 0 };
	struct scs_attr na;
	int m = scs_rekey_file(fs->be, fs->k, rpath, disp, trunc, &na, &err);
	if (m < 0) {
		/* err.msg names the file */
		scs_log(SCS_LOG_ERR, "%s (while moving it to the current epoch before writing); "
			"not opened for writing", err.msg);
		return m;
	}
	if (m == 1) {
		scs_log(SCS_LOG_INFO, "%s: moved to the current epoch before writing", disp);
		node_rehash(fs, n->bino, na.ino);
		if (a)
			*a = na;
	}
	/* m == 0: open or changed elsewhere meanwhile, or hard-linked: written
	 * in its epoch this time, moved at a later open or by the pass. */
	return scs_file_open(fs->be, rpath, 1, fs->k, disp, out);
}

/* Make n->file writable if it is open read-only (another open or a
 * truncate needs to write).  n->mu held. */
static int upgrade_file(struct fs *fs, struct node *n, const char *rpath, const char *display)
{
	if (!n->file || n->writable)
		return 0;
	scs_file *w;
	int r = scs_file_open(fs->be, rpath, 1, fs->k, display, &w);
	if (r)
		return r;
	pthread_rwlock_wrlock(&n->frw);
	scs_file *old = n->file;
	n->file = w;
	n->writable = 1;
	pthread_rwlock_unlock(&n->frw);
	scs_file_close(old);      /* read-only: nothing to flush */
	return 0;
}

static void clear_pending_times(struct node *n)
{
	if (__atomic_load_n(&n->pend, __ATOMIC_RELAXED))
		__atomic_store_n(&n->pend, 0, __ATOMIC_RELAXED);
}

static int do_truncate(struct fs *fs, struct node *n, uint64_t size)
{
	char rpath[SCS_RPATH_MAX], disp[SCS_RPATH_MAX];
	int r = 0;
	clear_pending_times(n);
	pthread_mutex_lock(&n->mu);
	node_display(fs, n, disp, sizeof disp);
	if (n->file) {
		if (!n->writable) {
			r = node_rpath(fs, n, rpath, sizeof rpath);
			if (!r)
				r = upgrade_file(fs, n, rpath, disp);
		}
		if (!r) {
			pthread_rwlock_rdlock(&n->frw);
			r = scs_file_truncate(n->file, size);
			pthread_rwlock_unlock(&n->frw);
		}
	} else {
		r = node_rpath(fs, n, rpath, sizeof rpath);
		scs_file *f = NULL;
		if (!r)
			r = open_writable(fs, n, rpath, disp, size == 0, NULL, &f);
		if (!r) {
			r = scs_file_truncate(f, size);
			int c = scs_file_close(f);
			if (!r)
				r = c;
		}
	}
	pthread_mutex_unlock(&n->mu);
	return r;
}

/* Re-apply times set by utimens while the file was open: rewriting the
 * header (flush, fsync, close) moved the object's mtime.  last: the last
 * handle is closed, they are done with.  Under n->tmu, so that a utimens
 * made meanwhile (a release runs beside the caller's next operations:
 * `cp -p`, `touch -d` right after a close) is not undone by times read
 * before it. */
static void reapply_times(struct fs *fs, struct node *n, int last)
{
	if (!__atomic_load_n(&n->pend, __ATOMIC_RELAXED))
		return;
	struct timespec ts[2];
	int pend;
	pthread_mutex_lock(&n->tmu);
	pthread_mutex_lock(&fs->tl);
	pend = n->pend;
	ts[0] = n->pend_ts[0];
	ts[1] = n->pend_ts[1];
	pthread_mutex_unlock(&fs->tl);
	char rpath[SCS_RPATH_MAX];
	if (pend && node_rpath(fs, n, rpath, sizeof rpath) == 0)
		scs_be_utimens(fs->be, rpath, ts);
	if (last)
		__atomic_store_n(&n->pend, 0, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&n->tmu);
}

/* Before sealing: gdrive: the object may have been re-keyed away (rehome.c). */
static int rehome(struct fs *fs, struct node *n)
{
	struct fs_rehomed x;
	pthread_mutex_lock(&n->mu);
	int r = fs_rehome(fs, n, &x);
	pthread_mutex_unlock(&n->mu);
	fs_rehome_notify(fs, &x);
	return r;
}

/* Sign pending changes (flush of a handle). */
static int flush_file(struct fs *fs, struct node *n)
{
	int r = rehome(fs, n), w = 0;
	if (r)
		return r;
	pthread_rwlock_rdlock(&n->frw);
	if (n->file && n->writable) {
		r = scs_file_flush(n->file);
		w = 1;
	}
	pthread_rwlock_unlock(&n->frw);
	if (w && !r)
		reapply_times(fs, n, 0);
	return r;
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		       struct fuse_file_info *fi)
{
	struct fs *fs = FS(req);
	struct node *n = node_of(fs, ino);
	char rpath[SCS_RPATH_MAX];
	int r = to_set ? refuse_removed(fs, n, NULL, NOT_WRITTEN("not changed")) : 0;

	if (r)
		return reply_err(req, r);
	if (to_set & FUSE_SET_ATTR_SIZE) {
		if (!S_ISREG(n->type))
			return reply_err(req, S_ISDIR(n->type) ? -EISDIR : -EINVAL);
		r = do_truncate(fs, n, (uint64_t)attr->st_size);
		if (r)
			return reply_err(req, r);
	}
	int have_path = node_rpath(fs, n, rpath, sizeof rpath) == 0;
	if (to_set & FUSE_SET_ATTR_MODE) {
		r = have_path ? scs_be_chmod(fs->be, rpath, attr->st_mode) : 0;
		if (r)
			return reply_err(req, r);
	}
	if (to_set & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)) {
		uint32_t uid = (to_set & FUSE_SET_ATTR_UID) ? attr->st_uid : (uint32_t)-1;
		uint32_t gid = (to_set & FUSE_SET_ATTR_GID) ? attr->st_gid : (uint32_t)-1;
		r = have_path ? scs_be_chown(fs->be, rpath, uid, gid) : 0;
		if (r)
			return reply_err(req, r);
	}
	if (to_set & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME |
		      FUSE_SET_ATTR_ATIME_NOW | FUSE_SET_ATTR_MTIME_NOW)) {
		struct timespec ts[2];
		ts[0].tv_sec = ts[1].tv_sec = 0;
		ts[0].tv_nsec = ts[1].tv_nsec = UTIME_OMIT;
		if (to_set & FUSE_SET_ATTR_ATIME_NOW)
			ts[0].tv_nsec = UTIME_NOW;
		else if (to_set & FUSE_SET_ATTR_ATIME)
			ts[0] = attr->st_atim;
		if (to_set & FUSE_SET_ATTR_MTIME_NOW)
			ts[1].tv_nsec = UTIME_NOW;
		else if (to_set & FUSE_SET_ATTR_MTIME)
			ts[1] = attr->st_mtim;
		pthread_mutex_lock(&n->tmu);
		r = have_path ? scs_be_utimens(fs->be, rpath, ts) : 0;
		int open = 0;
		if (S_ISREG(n->type)) {
			pthread_rwlock_rdlock(&n->frw);
			open = n->file && n->writable;
			pthread_rwlock_unlock(&n->frw);
		}
		/* An open file whose object went (gdrive: re-keyed away, rehome.c):
		 * the times go with it, applied after its next seal. */
		if (r == -ENOENT && open)
			r = 0;
		/* Pending times (still open, or its last close re-applies them
		 * now, after its seal): these are the ones to re-apply. */
		if (!r && (open || __atomic_load_n(&n->pend, __ATOMIC_RELAXED))) {
			pthread_mutex_lock(&fs->tl);
			n->pend_ts[0] = ts[0];
			n->pend_ts[1] = ts[1];
			__atomic_store_n(&n->pend, 1, __ATOMIC_RELAXED);
			pthread_mutex_unlock(&fs->tl);
		}
		pthread_mutex_unlock(&n->tmu);
		if (r)
			return reply_err(req, r);
	}
	struct scs_attr a;
	r = node_stat(fs, n, &a);
	if (r)
		return reply_err(req, r);
	node_set_known(fs, n, &a, -1);
	struct stat st;
	fill_stat(n, &a, &st);
	fuse_reply_attr(req, &st, fs->attr_timeout);
}

/* ------------------------------------------------------------ namespace */

static void op_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct fs *fs = FS(req);
	struct node *n = node_of(fs, ino);
	char rpath[SCS_RPATH_MAX];
	char target[SCS_SYMLINK_MAX + 1];
	uint8_t id[SCS_DIR_ID_LEN];
	int r = node_rpath(fs, n, rpath, sizeof rpath);
	if (r)
		return reply_err(req, r);
	struct node *p = node_parent(fs, n);
	if (!p)
		return reply_err(req, -ENOENT);
	r = node_dir_id(fs, p, id);
	node_put(fs, p);
	if (!r)
		r = scs_dir_readlink(fs->d, rpath, id, target);
	if (r < 0)
		return reply_err(req, r);
	fuse_reply_readlink(req, target);
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	struct fs *fs = FS(req);
	struct node *pn = node_of(fs, parent), *n;
	char dpath[SCS_RPATH_MAX], rpath[SCS_RPATH_MAX];
	uint8_t id[SCS_DIR_ID_LEN], nid[SCS_DIR_ID_LEN];
	struct scs_attr a;
	int r = refuse_removed(fs, pn, name, NOT_WRITTEN("not created"));
	if (!r)
		r = node_dir(fs, pn, dpath, sizeof dpath, id);
	if (!r)
		r = scs_dir_mkdir(fs->d, dpath, id, name, mode & 07777, rpath, sizeof rpath, nid);
	if (!r)
		r = new_entry(fs, pn, rpath, name, &n, &a);
	if (r)
		return reply_err(req, r);
	pthread_mutex_lock(&n->mu);
	memcpy(n->dir_id, nid, sizeof nid);
	n->have_id = 1;
	pthread_mutex_unlock(&n->mu);
	reply_entry(req, fs, n, &a);
}

/* Find the entry name of directory pn: its remote path and attributes. */
static int find_entry(struct fs *fs, struct node *pn, const char *name, char *dpath,
		      uint8_t id[SCS_DIR_ID_LEN], char *rpath, struct scs_attr *a)
{
	int r = node_dir(fs, pn, dpath, SCS_RPATH_MAX, id);
	if (!r)
		r = scs_dir_lookup(fs->d, dpath, id, name, rpath, SCS_RPATH_MAX, a);
	return r == -EINVAL ? -ENOENT : r;
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fs *fs = FS(req);
	struct node *pn = node_of(fs, parent);
	char dpath[SCS_RPATH_MAX], rpath[SCS_RPATH_MAX];
	uint8_t id[SCS_DIR_ID_LEN];
	struct scs_attr a;
	int r = refuse_removed(fs, pn, name, NOT_WRITTEN("not removed"));
	if (!r)
		r = find_entry(fs, pn, name, dpath, id, rpath, &a);
	if (!r && S_ISDIR(a.mode))
		r = -EISDIR;
	if (!r)
		r = scs_be_unlink(fs->be, rpath);
	if (r)
		return reply_err(req, r);
	scs_dir_drop_name(fs->d, rpath);
	node_unlinked(fs, pn, base_of(rpath), a.ino, a.nlink <= 1);
	fuse_reply_err(req, 0);
}

static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fs *fs = FS(req);
	struct node *pn = node_of(fs, parent);
	char dpath[SCS_RPATH_MAX], rpath[SCS_RPATH_MAX];
	uint8_t id[SCS_DIR_ID_LEN];
	struct scs_attr a;
	int r = refuse_removed(fs, pn, name, NOT_WRITTEN("not removed"));
	if (!r)
		r = find_entry(fs, pn, name, dpath, id, rpath, &a);
	if (!r && !S_ISDIR(a.mode))
		r = -ENOTDIR;
	if (!r)
		r = scs_dir_rmdir(fs->d, rpath);
	if (r)
		return reply_err(req, r);
	node_unlinked(fs, pn, base_of(rpath), a.ino, 1);
	fuse_reply_err(req, 0);
}

static void op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
	struct fs *fs = FS(req);
	struct node *pn = node_of(fs, parent), *n;
	char dpath[SCS_RPATH_MAX], rpath[SCS_RPATH_MAX];
	uint8_t id[SCS_DIR_ID_LEN];
	struct scs_attr a;
	int r = refuse_removed(fs, pn, name, NOT_WRITTEN("not created"));
	if (!r)
		r = node_dir(fs, pn, dpath, sizeof dpath, id);
	if (!r)
		r = scs_dir_symlink(fs->d, dpath, id, name, link, rpath, sizeof rpath);
	if (!r)
		r = new_entry(fs, pn, rpath, name, &n, &a);
	if (r)
		return reply_err(req, r);
	reply_entry(req, fs, n, &a);
}

/* Symlink targets are bound to their directory's id: a symlink moved to
 * another directory is re-encrypted there.  The symlink now at rpath (in
 * directory dpath/did) is replaced by a fresh one with target: made beside
 * under a temporary name, then renamed over it.  *nino: its new inode. */
static int reseal_symlink(struct fs *fs, const char *rpath, const char *dpath,
			  const uint8_t did[SCS_DIR_ID_LEN], const char *target, uint64_t *nino)
{
	char tmp[64], tmprp[SCS_RPATH_MAX];
	uint8_t rnd[8];
	if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd)
		return -EIO;
	snprintf(tmp, sizeof tmp, ".scsfs-mv-%02x%02x%02x%02x%02x%02x%02x%02x",
		 rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);
	int r = scs_dir_symlink(fs->d, dpath, did, tmp, target, tmprp, sizeof tmprp);
	if (r)
		return r;
	r = scs_be_rename(fs->be, tmprp, rpath, 0);
	if (r) {
		scs_be_unlink(fs->be, tmprp);
		scs_dir_drop_name(fs->d, tmprp);
		return r;
	}
	scs_dir_drop_name(fs->d, tmprp);
	struct scs_attr a;
	r = scs_be_stat(fs->be, rpath, &a);
	if (!r)
		*nino = a.ino;
	return r;
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
		      fuse_ino_t newparent, const char *newname, unsigned int flags)
{
	struct fs *fs = FS(req);
	struct node *sn = node_of(fs, parent), *dn = node_of(fs, newparent);
	char spath[SCS_RPATH_MAX], dpath[SCS_RPATH_MAX], srp[SCS_RPATH_MAX], drp[SCS_RPATH_MAX];
	uint8_t sid[SCS_DIR_ID_LEN], did[SCS_DIR_ID_LEN];
	struct scs_attr sa, da;

	if (flags & ~(unsigned)(RENAME_NOREPLACE | RENAME_EXCHANGE))
		return reply_err(req, -EINVAL);
	if ((flags & RENAME_NOREPLACE) && (flags & RENAME_EXCHANGE))
		return reply_err(req, -EINVAL);
	int r = refuse_removed(fs, sn, name, NOT_WRITTEN("not renamed"));
	if (!r)
		r = find_entry(fs, sn, name, spath, sid, srp, &sa);
	if (r)
		return reply_err(req, r);
	r = find_entry(fs, dn, newname, dpath, did, drp, &da);
	if (r && r != -ENOENT)
		return reply_err(req, r);
	int have_dst = r == 0;
	if ((flags & RENAME_EXCHANGE) && !have_dst)
		return reply_err(req, -ENOENT);
	if ((flags & RENAME_NOREPLACE) && have_dst)
		return reply_err(req, -EEXIST);
	int cross = memcmp(sid, did, sizeof sid) != 0;
	/* Targets of symlinks that change directory, re-encrypted afterwards. */
	char t1[SCS_SYMLINK_MAX + 1], t2[SCS_SYMLINK_MAX + 1];
	int l1 = cross && S_ISLNK(sa.mode);
	int l2 = cross && have_dst && (flags & RENAME_EXCHANGE) && S_ISLNK(da.mode);
	if (l1 && (r = scs_dir_readlink(fs->d, srp, sid, t1)) < 0)
		return reply_err(req, r);
	if (l2 && (r = scs_dir_readlink(fs->d, drp, did, t2)) < 0)
		return reply_err(req, r);
	if (flags & RENAME_EXCHANGE) {
		/* nothing to check */
	} else if (have_dst) {
		if (sa.ino == da.ino)            /* two links of one file: nothing to do */
			return reply_err(req, 0);
		if (S_ISDIR(sa.mode) && !S_ISDIR(da.mode))
			return reply_err(req, -ENOTDIR);
		if (!S_ISDIR(sa.mode) && S_ISDIR(da.mode))
			return reply_err(req, -EISDIR);
		if (S_ISDIR(da.mode)) {
			/* The target holds its .scsdir: remove the (empty) target
			 * directory first; -ENOTEMPTY if it is not. */
			r = scs_dir_rmdir(fs->d, drp);
			if (r)
				return reply_err(req, r);
			node_unlinked(fs, dn, base_of(drp), da.ino, 1);
			have_dst = 0;
		}
	}
	int prepared = 0;
	if (!have_dst) {
		r = scs_dir_prepare_name(fs->d, dpath, did, newname, drp, sizeof drp);
		if (r)
			return reply_err(req, r);
		prepared = 1;
	}
	uint64_t sino = sa.ino, dino = have_dst ? da.ino : 0;
	r = scs_be_rename(fs->be, srp, drp, flags);
	if (r) {
		if (prepared)
			scs_dir_drop_name(fs->d, drp);
		return reply_err(req, r);
	}
	if (l1 && (r = reseal_symlink(fs, drp, dpath, did, t1, &sino)) != 0)
		scs_log(SCS_LOG_ERR, "rename: could not re-encrypt a moved symlink: %s", strerror(-r));
	if (l2 && (r = reseal_symlink(fs, srp, spath, sid, t2, &dino)) != 0)
		scs_log(SCS_LOG_ERR, "rename: could not re-encrypt a moved symlink: %s", strerror(-r));
	if (flags & RENAME_EXCHANGE) {
		if (sino != sa.ino)
			node_rehash(fs, sa.ino, sino);
		if (dino != da.ino)
			node_rehash(fs, da.ino, dino);
		node_renamed(fs, sino, sn, base_of(srp), dn, base_of(drp), newname);
		node_renamed(fs, dino, dn, base_of(drp), sn, base_of(srp), name);
	} else {
		scs_dir_drop_name(fs->d, srp);
		if (have_dst)
			node_unlinked(fs, dn, base_of(drp), da.ino, da.nlink <= 1);
		if (sino != sa.ino)
			node_rehash(fs, sa.ino, sino);
		node_renamed(fs, sino, sn, base_of(srp), dn, base_of(drp), newname);
	}
	fuse_reply_err(req, 0);
}

static void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	struct fs *fs = FS(req);
	struct node *n = node_of(fs, ino), *dn = node_of(fs, newparent), *nn;
	char srp[SCS_RPATH_MAX], dpath[SCS_RPATH_MAX], drp[SCS_RPATH_MAX];
	uint8_t did[SCS_DIR_ID_LEN];
	struct scs_attr a;
	if (S_ISDIR(n->type))
		return reply_err(req, -EPERM);
	int r = refuse_removed(fs, dn, newname, NOT_WRITTEN("not created"));
	if (!r)
		r = node_rpath(fs, n, srp, sizeof srp);
	if (!r)
		r = node_dir(fs, dn, dpath, sizeof dpath, did);
	if (r)
		return reply_err(req, r);
	if (S_ISLNK(n->type)) {
		/* The target is bound to the directory: links only beside it. */
		uint8_t pid[SCS_DIR_ID_LEN];
		struct node *p = node_parent(fs, n);
		r = p ? node_dir_id(fs, p, pid) : -ENOENT;
		if (p)
			node_put(fs, p);
		if (!r && memcmp(pid, did, sizeof pid))
			r = -EXDEV;
		if (r)
			return reply_err(req, r);
	}
	r = scs_dir_prepare_name(fs->d, dpath, did, newname, drp, sizeof drp);
	if (r)
		return reply_err(req, r);
	r = scs_be_link(fs->be, srp, drp);
	if (r) {
		if (r != -EEXIST)
			scs_dir_drop_name(fs->d, drp);
		return reply_err(req, r);
	}
	r = new_entry(fs, dn, drp, newname, &nn, &a);
	if (r)
		return reply_err(req, r);
	reply_entry(req, fs, nn, &a);
}

/* ---------------------------------------------------------------- files */

/* One open handle of n is gone; the last one closes the shared file
 * (which re-signs it if it changed) and remembers the object as the kernel
 * now knows it (see op_open). */
static void drop_open(struct fs *fs, struct node *n)
{
	struct fs_rehomed x = { 0 };
	pthread_mutex_lock(&n->mu);
	if (n->opens > 0 && --n->opens == 0) {
		fs_rehome(fs, n, &x);
		pthread_rwlock_wrlock(&n->frw);
		scs_file *f = n->file;
		n->file = NULL;
		n->writable = 0;
		pthread_rwlock_unlock(&n->frw);
		if (f) {
			char disp[SCS_RPATH_MAX];
			int r = scs_file_close(f);
			if (r) {
				node_display(fs, n, disp, sizeof disp);
				scs_log(SCS_LOG_ERR, "%s: could not save on close: %s", disp, strerror(-r));
			}
		}
		reapply_times(fs, n, 1);
		char rpath[SCS_RPATH_MAX];
		struct scs_attr a;
		if (node_rpath(fs, n, rpath, sizeof rpath) == 0 && scs_be_stat(fs->be, rpath, &a) == 0)
			node_set_known(fs, n, &a, 0);
		else
			node_set_known(fs, n, NULL, 0);
	}
	pthread_mutex_unlock(&n->mu);
	fs_rehome_notify(fs, &x);
}

/* Create the file name in pn; with fi, keep it open for the caller. */
static void do_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		      struct fuse_file_info *fi)
{
	struct fs *fs = FS(req);
	struct node *pn = node_of(fs, parent), *n;
	char dpath[SCS_RPATH_MAX], rpath[SCS_RPATH_MAX], disp[SCS_RPATH_MAX];
	uint8_t id[SCS_DIR_ID_LEN];
	struct scs_attr a;
	scs_file *f = NULL;
	int r = refuse_removed(fs, pn, name, NOT_WRITTEN("not created"));
	if (!r)
		r = node_dir(fs, pn, dpath, sizeof dpath, id);
	if (!r)
		r = scs_dir_prepare_name(fs->d, dpath, id, name, rpath, sizeof rpath);
	if (r)
		return reply_err(req, r);
	node_child_display(fs, pn, name, disp, sizeof disp);
	r = scs_file_create(fs->be, rpath, mode & 07777, fs->k, disp, &f);
	if (r) {
		if (r != -EEXIST)
			scs_dir_drop_name(fs->d, rpath);
		return reply_err(req, r);
	}
	r = new_entry(fs, pn, rpath, name, &n, &a);
	if (r) {
		scs_file_close(f);
		return reply_err(req, r);
	}
	if (!fi) {
		r = scs_file_close(f);
		if (r) {
			node_forget(fs, n, 1);
			return reply_err(req, r);
		}
		return reply_entry(req, fs, n, &a);
	}
	pthread_mutex_lock(&n->mu);
	if (n->file) {
		/* Cannot happen for a fresh inode; keep the one there. */
		scs_file_close(f);
	} else {
		pthread_rwlock_wrlock(&n->frw);
		n->file = f;
		n->writable = 1;
		pthread_rwlock_unlock(&n->frw);
	}
	if (n->opens++ == 0)
		node_set_known(fs, n, NULL, 1);
	pthread_mutex_unlock(&n->mu);
	fi->fh = 0;
	fi->keep_cache = 1;
	struct fuse_entry_param e;
	make_entry(fs, n, &a, &e);
	if (fuse_reply_create(req, &e, fi) == -ENOENT) {
		/* Interrupted: the kernel will not release it. */
		drop_open(fs, n);
		node_forget(fs, n, 1);
	}
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		      struct fuse_file_info *fi)
{
	do_create(req, parent, name, mode, fi);
}

static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
	if (!S_ISREG(mode))
		return reply_err(req, -EPERM);
	do_create(req, parent, name, mode, NULL);
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs *fs = FS(req);
	struct node *n = node_of(fs, ino);
	char rpath[SCS_RPATH_MAX], disp[SCS_RPATH_MAX];
	int acc = fi->flags & O_ACCMODE;
	int want_write = !fs->readonly && (acc != O_RDONLY || (fi->flags & O_TRUNC));
	int keep = 1;
	int r = 0;

	if (S_ISDIR(n->type))
		return reply_err(req, -EISDIR);
	if (want_write && (r = refuse_removed(fs, n, NULL, NOT_WRITTEN("not opened for writing"))))
		return reply_err(req, r);
	pthread_mutex_lock(&n->mu);
	if (!n->file || (want_write && !n->writable)) {
		r = node_rpath(fs, n, rpath, sizeof rpath);
		node_display(fs, n, disp, sizeof disp);
	}
	if (!r && !n->file) {
		struct scs_attr a;
		scs_file *f;
		r = scs_be_stat(fs->be, rpath, &a);
		if (!r && want_write)
			r = open_writable(fs, n, rpath, disp, (fi->flags & O_TRUNC) && acc != O_RDONLY,
					  &a, &f);
		else if (!r)
			r = scs_file_open(fs->be, rpath, 0, fs->k, disp, &f);
		if (!r) {
			/* Keep the kernel's cached pages only if the object is as we
			 * left it at the last release (a sync client may have
			 * replaced it meanwhile). */
			keep = node_known(fs, n, &a);
			pthread_rwlock_wrlock(&n->frw);
			n->file = f;
			n->writable = want_write;
			pthread_rwlock_unlock(&n->frw);
		}
	} else if (!r && want_write && !n->writable) {
		r = upgrade_file(fs, n, rpath, disp);
	}
	if (!r && (fi->flags & O_TRUNC) && acc != O_RDONLY) {
		pthread_rwlock_rdlock(&n->frw);
		r = scs_file_truncate(n->file, 0);
		pthread_rwlock_unlock(&n->frw);
		if (r && !n->opens) {
			pthread_rwlock_wrlock(&n->frw);
			scs_file *f = n->file;
			n->file = NULL;
			pthread_rwlock_unlock(&n->frw);
			scs_file_close(f);
		}
	}
	if (!r && n->opens++ == 0)
		node_set_known(fs, n, NULL, 1);
	pthread_mutex_unlock(&n->mu);
	if (r == -ENOENT && !is_member(fs))
		r = refuse_removed(fs, n, NULL, NOT_OPENED);     /* moved by the re-key pass */
	if (r)
		return reply_err(req, r);
	fi->fh = 0;
	fi->keep_cache = keep;
	/* Nothing to save when a read-only handle is closed: no FLUSH trip. */
	fi->noflush = acc == O_RDONLY;
	if (fuse_reply_open(req, fi) == -ENOENT)
		drop_open(fs, n);
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct fs *fs = FS(req);
	struct node *n = node_of(fs, ino);
	char *buf = malloc(size ? size : 1);
	if (!buf)
		return reply_err(req, -ENOMEM);
	ssize_t r;
	pthread_rwlock_rdlock(&n->frw);
	r = n->file ? scs_file_pread(n->file, buf, size, (uint64_t)off) : -EBADF;
	pthread_rwlock_unlock(&n->frw);
	if (r < 0)
		reply_err(req, (int)r);
	else
		fuse_reply_buf(req, buf, (size_t)r);
	free(buf);
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		     struct fuse_file_info *fi)
{
	struct fs *fs = FS(req);
	struct node *n = node_of(fs, ino);
	ssize_t r = refuse_removed(fs, n, NULL, NOT_WRITTEN("not written"));
	if (r)
		return reply_err(req, (int)r);
	clear_pending_times(n);
	pthread_rwlock_rdlock(&n->frw);
	r = n->file && n->writable ? scs_file_pwrite(n->file, buf, size, (uint64_t)off) : -EBADF;
	pthread_rwlock_unlock(&n->frw);
	if (r < 0)
		return reply_err(req, (int)r);
	fuse_reply_write(req, (size_t)r);
}

static void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs *fs = FS(req);
	reply_err(req, flush_file(fs, node_of(fs, ino)));
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs *fs = FS(req);
	drop_open(fs, node_of(fs, ino));
	fuse_reply_err(req, 0);
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	struct fs *fs = FS(req);
	struct node *n = node_of(fs, ino);
	int r = rehome(fs, n), w = 0;
	if (r)
		return reply_err(req, r);
	pthread_rwlock_rdlock(&n->frw);
	if (n->file && n->writable) {
		r = scs_file_sync(n->file, datasync);
		w = 1;
	}
	pthread_rwlock_unlock(&n->frw);
	if (w && !r)
		reapply_times(fs, n, 0);
	reply_err(req, r);
}

static void op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len,
			 struct fuse_file_info *fi)
{
	struct node *n = node_of(FS(req), ino);
	if (mode != 0)
		return reply_err(req, -EOPNOTSUPP);
	if (off < 0 || len <= 0)
		return reply_err(req, -EINVAL);
	int r = refuse_removed(FS(req), n, NULL, NOT_WRITTEN("not written"));
	if (r)
		return reply_err(req, r);
	pthread_rwlock_rdlock(&n->frw);
	if (!n->file || !n->writable)
		r = -EBADF;
	else if ((uint64_t)off + (uint64_t)len > scs_file_size(n->file))
		r = scs_file_truncate(n->file, (uint64_t)off + (uint64_t)len);
	pthread_rwlock_unlock(&n->frw);
	reply_err(req, r);
}

/* ---------------------------------------------------------- directories */

struct dent {
	char *name;
	char *stored;
	struct scs_attr a;
};

struct dirh {
	pthread_mutex_t mu;
	struct dent *v;
	size_t n, cap;
	size_t bad;                  /* names skipped (removed member) */
	int filled;
};

static void dirh_clear(struct dirh *h)
{
	for (size_t i = 0; i < h->n; i++) {
		free(h->v[i].name);
		free(h->v[i].stored);
	}
	h->n = 0;
	h->bad = 0;
	h->filled = 0;
}

static int dir_collect(void *arg, const struct scs_dirent *e)
{
	struct dirh *h = arg;
	if (e->bad) {
		h->bad++;
		return 0;
	}
	if (h->n == h->cap) {
		size_t ncap = h->cap ? h->cap * 2 : 64;
		struct dent *nv = realloc(h->v, ncap * sizeof *nv);
		if (!nv)
			return -ENOMEM;
		h->v = nv;
		h->cap = ncap;
	}
	struct dent *d = &h->v[h->n];
	d->name = strdup(e->name);
	d->stored = strdup(e->stored);
	if (!d->name || !d->stored) {
		free(d->name);
		free(d->stored);
		return -ENOMEM;
	}
	d->a = *e->attr;
	h->n++;
	return 0;
}

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct dirh *h = calloc(1, sizeof *h);
	if (!h)
		return reply_err(req, -ENOMEM);
	pthread_mutex_init(&h->mu, NULL);
	fi->fh = (uint64_t)(uintptr_t)h;
	if (fuse_reply_open(req, fi) == -ENOENT) {
		pthread_mutex_destroy(&h->mu);
		free(h);
	}
}

static void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi, int plus)
{
	struct fs *fs = FS(req);
	struct node *dn = node_of(fs, ino);
	struct dirh *h = (struct dirh *)(uintptr_t)fi->fh;
	int r = 0;

	pthread_mutex_lock(&h->mu);
	if (off == 0 || !h->filled) {
		char dpath[SCS_RPATH_MAX], disp[SCS_RPATH_MAX];
		uint8_t id[SCS_DIR_ID_LEN];
		dirh_clear(h);
		r = node_dir(fs, dn, dpath, sizeof dpath, id);
		/* A removed member: names it cannot read any more are skipped
		 * with one line for the directory, not one "altered" per name. */
		int member = is_member(fs);
		if (!r) {
			node_display(fs, dn, disp, sizeof disp);
			r = scs_dir_list(fs->d, dpath, id, disp, member ? 0 : SCS_DIR_LIST_BAD,
					 dir_collect, h);
		}
		if (!r && h->bad && log_due("unreadable names", disp))
			scs_log(SCS_LOG_WARN, "%s: %zu names cannot be read with the keys you still hold "
				"(re-keyed or made since you were removed from the group); not listed",
				*disp ? disp : "/", h->bad);
		if (r) {
			dirh_clear(h);
			pthread_mutex_unlock(&h->mu);
			return reply_err(req, r);
		}
		h->filled = 1;
	}
	char *buf = malloc(size);
	if (!buf) {
		pthread_mutex_unlock(&h->mu);
		return reply_err(req, -ENOMEM);
	}
	size_t used = 0;
	/* Offsets: 0 ".", 1 "..", i + 2 the i-th entry; each entry carries the
	 * offset of the next one. */
	for (uint64_t i = (uint64_t)off; i < h->n + 2; i++) {
		const char *name;
		struct stat st;
		struct node *n = NULL;
		memset(&st, 0, sizeof st);
		if (i < 2) {
			name = i ? ".." : ".";
			st.st_ino = (ino_t)dn->bino;
			if (i) {
				/* readdir(3) hides entries with inode 0 */
				struct node *p = node_parent(fs, dn);
				if (p) {
					st.st_ino = (ino_t)p->bino;
					node_put(fs, p);
				}
			}
			st.st_mode = S_IFDIR;
		} else {
			struct dent *d = &h->v[i - 2];
			name = d->name;
			st.st_ino = (ino_t)d->a.ino;
			st.st_mode = d->a.mode & S_IFMT;
		}
		size_t ent;
		if (!plus) {
			ent = fuse_add_direntry(req, buf + used, size - used, name, &st, (off_t)(i + 1));
		} else {
			struct fuse_entry_param e;
			if (i < 2) {
				memset(&e, 0, sizeof e);
				e.attr = st;
			} else {
				struct dent *d = &h->v[i - 2];
				n = node_get(fs, dn, d->stored, d->name, &d->a);
				if (!n) {
					r = -ENOMEM;
					break;
				}
				make_entry(fs, n, &d->a, &e);
			}
			ent = fuse_add_direntry_plus(req, buf + used, size - used, name, &e, (off_t)(i + 1));
		}
		if (ent > size - used) {
			if (n)
				node_forget(fs, n, 1);
			break;
		}
		used += ent;
	}
	pthread_mutex_unlock(&h->mu);
	if (r && used == 0)
		reply_err(req, r);
	else
		fuse_reply_buf(req, buf, used);
	free(buf);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, fi, 0);
}

static void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			   struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, fi, 1);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct dirh *h = (struct dirh *)(uintptr_t)fi->fh;
	dirh_clear(h);
	free(h->v);
	pthread_mutex_destroy(&h->mu);
	free(h);
	fuse_reply_err(req, 0);
}

static void op_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	/* Entries are made durable by the back end where it matters (.scsdir,
	 * metadata); nothing to do for a directory handle. */
	fuse_reply_err(req, 0);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct fs *fs = FS(req);
	struct statvfs st;
	int r = scs_be_statfs(fs->be, &st);
	if (r)
		return reply_err(req, r);
	st.f_namemax = SCS_NAME_MAX;
	fuse_reply_statfs(req, &st);
}

const struct fuse_lowlevel_ops scsfs_ops = {
	.init = op_init,
	.lookup = op_lookup,
	.forget = op_forget,
	.forget_multi = op_forget_multi,
	.getattr = op_getattr,
	.setattr = op_setattr,
	.readlink = op_readlink,
	.mknod = op_mknod,
	.mkdir = op_mkdir,
	.unlink = op_unlink,
	.rmdir = op_rmdir,
	.symlink = op_symlink,
	.rename = op_rename,
	.link = op_link,
	.open = op_open,
	.read = op_read,
	.write = op_write,
	.flush = op_flush,
	.release = op_release,
	.fsync = op_fsync,
	.opendir = op_opendir,
	.readdir = op_readdir,
	.releasedir = op_releasedir,
	.fsyncdir = op_fsyncdir,
	.statfs = op_statfs,
	.create = op_create,
	.fallocate = op_fallocate,
	.readdirplus = op_readdirplus,
};

void fs_close_all(struct fs *fs)
{
	pthread_mutex_lock(&fs->tl);
	for (size_t i = 0; i < fs->hcap; i++) {
		for (struct node *n = fs->hash[i]; n; n = n->hnext) {
			if (n->file) {
				scs_file_close(n->file);
				n->file = NULL;
				n->opens = 0;
			}
		}
	}
	pthread_mutex_unlock(&fs->tl);
}
