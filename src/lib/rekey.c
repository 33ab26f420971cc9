/* rekey.c - the re-key pass (rekey.h): every file content, symlink target
 * and name still in an older epoch moves to the current epoch, one atomic
 * step at a time, never over a concurrent write; then the older epochs are
 * retired in the keyring. */
#include "scs/rekey.h"
#include "scs/b64.h"
#include "scs/config.h"
#include "scs/fileio.h"
#include "scs/dir.h"
#include "scs/file.h"
#include "scs/format.h"
#include "scs/identity.h"
#include "scs/keyring.h"
#include "scs/log.h"
#include "scs/vault.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define ROUNDS 3          /* passes over entries that were busy */

/* ---- reading epochs without keys ---- */

/* The header bytes and epoch of the object at path: 0, -EBADMSG (not a
 * valid header), or a back-end error. */
static int read_header(scs_backend *be, const char *path, uint8_t hb[SCS_HEADER_SIZE],
		       uint32_t *epoch)
{
	scs_obj *o;
	int r = scs_be_open(be, path, O_RDONLY, 0, &o);
	if (r < 0)
		return r;
	ssize_t n = scs_obj_pread(o, hb, SCS_HEADER_SIZE, 0);
	scs_obj_close(o);
	if (n < 0)
		return (int)n;
	scs_header h;
	if (n != SCS_HEADER_SIZE || scs_header_decode(hb, SCS_HEADER_SIZE, &h) < 0)
		return -EBADMSG;
	*epoch = h.epoch;
	return 0;
}

static int link_epoch(scs_backend *be, const char *path, uint32_t *epoch)
{
	char *t = malloc(SCS_SYMLINK_ENC_BUF);
	if (!t)
		return -ENOMEM;
	int r = scs_be_readlink(be, path, t, SCS_SYMLINK_ENC_BUF);
	if (r >= 0)
		r = scs_symlink_epoch(t, epoch) < 0 ? -EBADMSG : 0;
	free(t);
	return r;
}

/* "<anything>.tmp-ffffffff<8 hex>": a temporary object of this pass. */
static int is_rekey_tmp(const char *name)
{
	if (!scs_is_tmp_name(name))
		return 0;
	const char *p = name + strlen(name) - 16;
	return strncmp(p, SCS_REKEY_TMP_TAG, 8) == 0;
}

/* ---- scan (no keys) ---- */

struct raw_item {
	char *name;
	struct scs_attr a;
};
struct raw_list {
	struct raw_item *v;
	size_t n, cap;
	int err;
};

static int raw_collect(void *arg, const char *name, const struct scs_attr *a)
{
	struct raw_list *l = arg;
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 64;
		struct raw_item *v = realloc(l->v, cap * sizeof *v);
		if (!v)
			return l->err = -ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	if (!(l->v[l->n].name = strdup(name)))
		return l->err = -ENOMEM;
	l->v[l->n++].a = *a;
	return 0;
}

static void raw_free(struct raw_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i].name);
	free(l->v);
}

static int scan_dir(scs_backend *be, const char *dir, uint32_t epoch, int clean,
		    struct scs_rekey_scan *s, int depth)
{
	if (depth > 256)
		return -ELOOP;
	struct raw_list l = { 0 };
	int r = scs_be_list(be, dir, raw_collect, &l);
	if (!r)
		r = l.err;
	char *p = malloc(SCS_RPATH_MAX);
	if (!p)
		r = -ENOMEM;
	for (size_t i = 0; !r && i < l.n; i++) {
		const char *name = l.v[i].name;
		const struct scs_attr *a = &l.v[i].a;
		if ((!*dir && strcmp(name, SCS_META_DIR) == 0) || strcmp(name, SCS_DIRID_FILE) == 0)
			continue;
		if ((r = scs_path_join(p, SCS_RPATH_MAX, dir, name)) < 0)
			break;
		if (scs_is_tmp_name(name)) {
			if (is_rekey_tmp(name)) {
				s->temps++;
				if (clean && scs_be_unlink(be, p) == 0)
					scs_log(SCS_LOG_INFO, "rekey: removed %s, left by an interrupted pass", p);
			}
			continue;
		}
		size_t el;
		if (scs_name_classify(name, &el) == SCS_NAME_LONG_SIDE)
			continue;
		uint32_t e = 0;
		uint8_t hb[SCS_HEADER_SIZE];
		if (S_ISDIR(a->mode)) {
			r = scan_dir(be, p, epoch, clean, s, depth + 1);
		} else if (S_ISREG(a->mode)) {
			s->files++;
			s->bytes += a->size;
			int x = read_header(be, p, hb, &e);
			scs_header h;
			if (x == 0 && s->each && scs_header_decode(hb, sizeof hb, &h) == 0 &&
			    (r = s->each(s->each_arg, p, &h)) < 0)
				break;
			if (x == -EBADMSG) {
				s->bad++;
			} else if (x == 0 && e < epoch) {
				s->old_files++;
				s->old_bytes += a->size;
			} else if (x < 0 && x != -ENOENT && x != -ESTALE) {
				r = x;   /* (-ESTALE: replaced between listing and read) */
			}
		} else if (S_ISLNK(a->mode)) {
			int x = link_epoch(be, p, &e);
			if (x == 0 && e < epoch)
				s->old_links++;
			else if (x == -EBADMSG)
				s->bad++;
		}
	}
	free(p);
	raw_free(&l);
	return r;
}

int scs_rekey_scan(scs_backend *be, uint32_t epoch, int clean, struct scs_rekey_scan *s,
		   scs_err *err)
{
	memset(s, 0, sizeof *s);
	int r = scan_dir(be, "", epoch, clean, s, 0);
	if (r < 0)
		return scs_err_set(err, r, "cannot read the folder: %s", strerror(-r));
	return 0;
}

int scs_rekey_headers(scs_backend *be, int (*each)(void *arg, const char *rpath, const scs_header *h),
		      void *arg, scs_err *err)
{
	struct scs_rekey_scan s = { .each = each, .each_arg = arg };
	int r = scan_dir(be, "", 0, 0, &s, 0);
	if (r < 0)
		return scs_err_set(err, r, "cannot read the folder: %s", strerror(-r));
	return 0;
}

/* ---- the pass ---- */

enum { T_FILE = 1, T_LINK, T_DIR };

struct item {
	char *rpath;                 /* where it is now */
	char *dpath;                 /* its directory */
	char *path;                  /* plaintext path */
	uint8_t parent_id[SCS_DIR_ID_LEN];
	struct scs_attr a;
	uint32_t name_epoch;
	int type;
	int content_old, name_old;
	int busy;
	uint64_t old_ino;            /* hard-linked file re-encrypted: its old inode */
};

/* Hard links: the new object of an inode with several names, so the other
 * names are linked to it instead of getting copies of their own.  The entry
 * goes when its last other name is done (the old inode, still linked until
 * then, cannot have its number reused before). */
struct hlink {
	uint64_t old_ino;
	char *rpath;
	uint32_t left;
};

struct pass {
	scs_backend *be;
	const scs_keyctx *k;
	scs_dirctx *d;
	const uint8_t *root_id;
	uint32_t epoch;
	struct item *v;
	size_t n, cap;
	int err;
	struct scs_rekey_result *res;
	struct scs_rekey_progress pr;
	struct timespec t0;
	scs_rekey_cb cb;
	void *arg;
	unsigned pause;              /* test hook, seconds */
	char rec_path[SCS_PATH_MAX]; /* the progress record; "" none */
	struct scs_rekey_record rec;
	struct timespec rec_last;    /* when it was last written */
	struct hlink *hl;
	size_t nhl, caphl;
	int round;
};

static struct hlink *hlink_find(struct pass *ps, uint64_t ino)
{
	for (size_t i = 0; i < ps->nhl; i++)
		if (ps->hl[i].old_ino == ino)
			return &ps->hl[i];
	return NULL;
}

static void hlink_add(struct pass *ps, uint64_t ino, const char *rpath, uint32_t left)
{
	char *p = strdup(rpath);
	if (ps->nhl == ps->caphl) {
		size_t cap = ps->caphl ? 2 * ps->caphl : 16;
		struct hlink *v = realloc(ps->hl, cap * sizeof *v);
		if (v) {
			ps->hl = v;
			ps->caphl = cap;
		}
	}
	if (!p || ps->nhl == ps->caphl) {
		free(p);             /* the other names just get copies */
		return;
	}
	ps->hl[ps->nhl++] = (struct hlink){ ino, p, left };
}

/* Directory from was renamed to: the new objects remembered below it moved. */
static void hlink_moved_dir(struct pass *ps, const char *from, const char *to)
{
	size_t fl = strlen(from);
	for (size_t i = 0; i < ps->nhl; i++) {
		const char *p = ps->hl[i].rpath;
		if (strncmp(p, from, fl) != 0 || p[fl] != '/')
			continue;
		size_t n = strlen(to) + strlen(p + fl) + 1;
		char *q = malloc(n);
		if (!q)
			continue;        /* that link then gets a copy */
		snprintf(q, n, "%s%s", to, p + fl);
		free(ps->hl[i].rpath);
		ps->hl[i].rpath = q;
	}
}

/* One more name of h is linked: forget h after the last. */
static void hlink_done(struct pass *ps, struct hlink *h)
{
	if (--h->left)
		return;
	free(h->rpath);
	*h = ps->hl[--ps->nhl];
}

static void items_free(struct pass *ps)
{
	for (size_t i = 0; i < ps->n; i++) {
		free(ps->v[i].rpath);
		free(ps->v[i].dpath);
		free(ps->v[i].path);
	}
	free(ps->v);
	ps->v = NULL;
	ps->n = ps->cap = 0;
}

/* Walk callback: remember every entry that has something in an older epoch. */
static int collect(void *arg, const struct scs_walk_entry *e)
{
	struct pass *ps = arg;
	if (e->bad)
		return 0;            /* not ours or damaged: scsctl verify reports it */
	struct item it = { .a = *e->attr, .name_epoch = e->name_epoch };
	uint32_t ep = ps->epoch;
	uint8_t hb[SCS_HEADER_SIZE];
	if (S_ISDIR(e->attr->mode)) {
		it.type = T_DIR;
	} else if (S_ISREG(e->attr->mode)) {
		it.type = T_FILE;
		int r = read_header(ps->be, e->rpath, hb, &ep);
		if (r < 0 && r != -EBADMSG && r != -ENOENT)
			return ps->err = r;
		/* Forged by a removed member after the removal: never re-signed
		 * here (that would launder it), left to be refused. */
		scs_header h;
		uint8_t pub[SCS_ED25519_PUB_LEN];
		scs_err why = { 0 };
		if (r == 0 && ep < ps->epoch && scs_header_decode(hb, sizeof hb, &h) == 0 &&
		    ps->k->writer_pub(ps->k->arg, h.writer, &h, pub, &why) == -EKEYREJECTED) {
			ps->res->refused++;
			if (ps->round == 0)
				scs_log(SCS_LOG_ERR, "rekey: %s: %s; refusing it (left as it is)",
					e->path, why.msg);
			return 0;
		}
	} else if (S_ISLNK(e->attr->mode)) {
		it.type = T_LINK;
		int r = link_epoch(ps->be, e->rpath, &ep);
		if (r < 0 && r != -EBADMSG && r != -ENOENT)
			return ps->err = r;
	} else {
		return 0;
	}
	it.content_old = ep < ps->epoch;
	it.name_old = e->name_epoch < ps->epoch;
	if (!it.content_old && !it.name_old)
		return 0;
	if (ps->n == ps->cap) {
		size_t cap = ps->cap ? 2 * ps->cap : 64;
		struct item *v = realloc(ps->v, cap * sizeof *v);
		if (!v)
			return ps->err = -ENOMEM;
		ps->v = v;
		ps->cap = cap;
	}
	const char *slash = strrchr(e->rpath, '/');
	it.rpath = strdup(e->rpath);
	it.dpath = slash ? strndup(e->rpath, (size_t)(slash - e->rpath)) : strdup("");
	it.path = strdup(e->path);
	memcpy(it.parent_id, e->parent_id, SCS_DIR_ID_LEN);
	ps->v[ps->n++] = it;
	if (!it.rpath || !it.dpath || !it.path)
		return ps->err = -ENOMEM;
	if (it.type == T_FILE && it.content_old) {
		ps->pr.files_total++;
		ps->pr.bytes_total += it.a.size;
	}
	return 0;
}

static int same_object(const struct scs_attr *x, const struct scs_attr *y)
{
	return x->ino == y->ino && x->size == y->size &&
	       x->mtime.tv_sec == y->mtime.tv_sec && x->mtime.tv_nsec == y->mtime.tv_nsec &&
	       x->ctime.tv_sec == y->ctime.tv_sec && x->ctime.tv_nsec == y->ctime.tv_nsec;
}

static int tmp_name(const char *rpath, char *out, size_t cap)
{
	uint8_t rnd[4];
	char hex[9];
	if (scs_random(rnd, sizeof rnd) < 0)
		return -EIO;
	scs_hex_encode(rnd, sizeof rnd, hex);
	int n = snprintf(out, cap, "%s" SCS_TMP_INFIX SCS_REKEY_TMP_TAG "%s", rpath, hex);
	return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

void scs_rekey_stop(const char *step)
{
	static long reached;         /* the variable names one step */
	const char *s = getenv("SCSFS_REKEY_STOP");
	size_t n = strlen(step);
	if (!s || strncmp(s, step, n) != 0 || (s[n] != '\0' && s[n] != ':'))
		return;
	long want = s[n] == ':' ? strtol(s + n + 1, NULL, 10) : 0;
	if (__atomic_fetch_add(&reached, 1, __ATOMIC_RELAXED) < want)
		return;
	fprintf(stderr, "SCSFS_REKEY_STOP=%s reached, exiting abruptly\n", s);
	_exit(9);
}

static void test_hooks(struct pass *ps, const char *path)
{
	scs_rekey_stop("written");
	if (ps->pause) {
		fprintf(stderr, "rekey: pausing before replacing %s\n", path);
		sleep(ps->pause);
	}
}

static void release(scs_obj *held, int hold)
{
	if (!held)
		return;
	if (hold == 0)
		scs_obj_hold(held, 0);
	scs_obj_close(held);
}

/* Moving one file object to the current epoch: the pass's step 1, and
 * scs_rekey_file. */
struct move {
	scs_backend *be;
	const scs_keyctx *k;
	uint32_t epoch;              /* the current epoch */
	const char *rpath, *path;
	int empty;                   /* a fresh empty object, not a copy */
	const uint8_t *expect;       /* only if its header is exactly this, or NULL */
	struct pass *ps;             /* the pass (hard links, test hooks), or NULL */
	struct scs_attr a0;          /* out: the object replaced */
	struct hlink *h;             /* out: the pass's new object it was linked to */
	int moved;                   /* out */
};

/* An empty object under the current epoch at tmp, once the header of the
 * one it replaces authenticated (a write-open with O_TRUNC). */
static int make_empty(struct move *m, const char *tmp, scs_err *err)
{
	scs_file *f;
	int r = scs_file_open(m->be, m->rpath, 0, m->k, m->path, &f);
	if (r < 0)
		return scs_err_set(err, r, "%s", r == -EBADMSG ? "authentication failed" : strerror(-r));
	scs_file_close(f);
	r = scs_file_create(m->be, tmp, m->a0.mode & 07777, m->k, m->path, &f);
	if (r == 0 && (r = scs_file_close(f)) < 0)
		scs_be_unlink(m->be, tmp);
	if (r < 0)
		return scs_err_set(err, r, "cannot create the new object: %s", strerror(-r));
	return 0;
}

/* Re-encrypt beside, hold, check unchanged, rename over.  0 done (m->moved)
 * or nothing to do, 1 busy (changed meanwhile, or hard-linked outside the
 * pass: try later), <0 error. */
static int move_object(struct move *m, scs_err *err)
{
	struct scs_attr a1;
	uint8_t h0[SCS_HEADER_SIZE], h1[SCS_HEADER_SIZE];
	uint32_t ep;
	char tmp[SCS_RPATH_MAX + 32];
	int r = scs_be_stat(m->be, m->rpath, &m->a0);
	if (r == 0)
		r = read_header(m->be, m->rpath, h0, &ep);
	if (r == -ENOENT)
		return 0;                /* deleted meanwhile */
	if (r == -ESTALE)
		return 1;                /* replaced while we read it (gdrive:): later */
	if (r < 0)
		return scs_err_set(err, r, "%s: %s", m->path, r == -EBADMSG ? "header is malformed"
				   : strerror(-r));
	if (ep >= m->epoch)
		return 0;                /* a member rewrote it in the new epoch */
	if (m->expect && memcmp(h0, m->expect, sizeof h0) != 0)
		return 1;                /* not (any more) the version meant */
	if (!m->ps && m->a0.nlink > 1)
		return 1;                /* the pass keeps hard links together */
	if ((r = tmp_name(m->rpath, tmp, sizeof tmp)) < 0)
		return scs_err_set(err, r, "%s: name too long for a temporary copy", m->path);
	/* Open for writing where the hold can see it (gdrive: in this process,
	 * a mount's own pass): later, without reading what is half written. */
	scs_obj *probe = NULL;
	int busy = 0;
	if (m->a0.nlink == 1 && scs_be_open(m->be, m->rpath, O_RDONLY, 0, &probe) == 0) {
		int hr = scs_obj_hold(probe, 1);
		busy = hr == -EAGAIN;
		release(probe, hr);
	}
	if (busy)
		return 1;
	/* Another name of this inode was done already: link to its new object. */
	struct hlink *h = m->ps ? hlink_find(m->ps, m->a0.ino) : NULL;
	r = h ? scs_be_link(m->be, h->rpath, tmp) : -ENOENT;
	if (r < 0)
		h = NULL;
	if (r < 0 && m->empty)
		r = make_empty(m, tmp, err);
	else if (r < 0)
		r = scs_file_rewrite(m->be, m->rpath, tmp, m->a0.mode & 07777, m->k, m->path, err);
	if (r == -EBADMSG && (scs_be_stat(m->be, m->rpath, &a1) < 0 || !same_object(&m->a0, &a1))) {
		scs_err_clear(err);
		return 1;                /* written to while we read it: try again later */
	}
	if (r < 0) {
		char msg[sizeof err->msg];
		snprintf(msg, sizeof msg, "%s", err->msg);
		return scs_err_set(err, r, "%s: %s", m->path, msg);
	}
	/* Keep the times the mount shows. */
	struct timespec ts[2] = { m->a0.atime, m->a0.mtime };
	scs_be_utimens(m->be, tmp, ts);
	if (m->ps)
		test_hooks(m->ps, m->path);
	/* Nobody may have it open for writing (a mount's open file would go on
	 * writing to the replaced object), and opens wait while we swap. */
	scs_obj *held = NULL;
	int hold = -1;
	/* (Not for hard-linked objects: a second name can refuse the lease
	 * for as long as it exists, and the link is what we must keep.) */
	if (m->a0.nlink == 1 && scs_be_open(m->be, m->rpath, O_RDONLY, 0, &held) == 0)
		hold = scs_obj_hold(held, 1);
	/* The compare before the swap: a member who wrote meanwhile changed
	 * the inode's ctime (and the header, at close). */
	r = hold == -EAGAIN ? 1 : scs_be_stat(m->be, m->rpath, &a1);
	if (r == 0 && held) {
		/* through the held object: opening it again would wait for us */
		ssize_t n = scs_obj_pread(held, h1, sizeof h1, 0);
		r = n < 0 ? (int)n : n != (ssize_t)sizeof h1 ? 1 : 0;
	} else if (r == 0) {
		r = read_header(m->be, m->rpath, h1, &ep);
	}
	if (r != 0 || !same_object(&m->a0, &a1) || memcmp(h0, h1, sizeof h0) != 0) {
		release(held, hold);
		scs_be_unlink(m->be, tmp);
		return r == -ENOENT ? 0 : 1;
	}
	r = scs_be_rename(m->be, tmp, m->rpath, 0);
	release(held, hold);
	if (r == -ENOENT)
		return 1;                /* our temporary went: another pass cleaning up */
	if (r < 0) {
		scs_be_unlink(m->be, tmp);
		return scs_err_set(err, r, "%s: cannot replace it: %s", m->path, strerror(-r));
	}
	m->h = h;
	m->moved = 1;
	return 0;
}

/* Step 1 for a file: its contents under the current epoch.  0 done (or
 * nothing to do), 1 busy (changed meanwhile, try later), <0 error. */
static int move_file(struct pass *ps, struct item *it, scs_err *err)
{
	struct move m = { .be = ps->be, .k = ps->k, .epoch = ps->epoch, .rpath = it->rpath,
			  .path = it->path, .ps = ps };
	int r = move_object(&m, err);
	if (r != 0 || !m.moved)
		return r;
	ps->res->files++;
	ps->res->bytes += m.a0.size;
	if (m.h) {
		hlink_done(ps, m.h);
	} else if (m.a0.nlink > 1) {
		it->old_ino = m.a0.ino;
		hlink_add(ps, m.a0.ino, it->rpath, m.a0.nlink - 1);
	}
	scs_rekey_stop("content");
	return 0;
}

static int rekey_one(scs_backend *be, const scs_keyctx *k, const char *rpath, const char *display,
		     int empty, const uint8_t *expect, struct scs_attr *na, scs_err *err)
{
	scs_err_clear(err);
	if (!k->sign_key)
		return scs_err_set(err, -EROFS, "read-only: no signing key");
	/* As in the pass: an open of the object we hold sends us SIGIO. */
	struct sigaction sa;
	if (sigaction(SIGIO, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL)
		signal(SIGIO, SIG_IGN);
	struct move m = { .be = be, .k = k, .epoch = k->write_epoch(k->arg), .rpath = rpath,
			  .path = display ? display : rpath, .empty = empty, .expect = expect };
	int r = move_object(&m, err);
	if (r < 0)
		return r;
	if (!m.moved)
		return 0;
	if (na && scs_be_stat(be, rpath, na) < 0)
		memset(na, 0, sizeof *na);
	return 1;
}

int scs_rekey_file(scs_backend *be, const scs_keyctx *k, const char *rpath, const char *display,
		   int empty, struct scs_attr *na, scs_err *err)
{
	return rekey_one(be, k, rpath, display, empty, NULL, na, err);
}

int scs_rekey_own(scs_backend *be, const scs_keyctx *k, const char *rpath, const char *display,
		  const uint8_t expect[SCS_HEADER_SIZE], struct scs_attr *na, scs_err *err)
{
	return rekey_one(be, k, rpath, display, 0, expect, na, err);
}

/* ---- this member's own writes, before the others see them ---- */

/* Rename rpath to dst (from scs_dir_prepare_name), never over an existing
 * entry: 0, -EEXIST (dst's long-name side object, if any, is that
 * entry's), or another error; the long-name side objects follow.  A
 * rename that failed otherwise leaves dst's side object if an entry is
 * there now: another mover of the same entry (a pass, a mount's upload
 * queue) got there first, and the name is the same. */
static int rename_prepared(scs_backend *be, scs_dirctx *d, const char *rpath, const char *dst)
{
	struct scs_attr a;
	int r = scs_be_rename(be, rpath, dst, RENAME_NOREPLACE);
	if (r == 0)
		scs_dir_drop_name(d, rpath);
	else if (r != -EEXIST && scs_be_stat(be, dst, &a) == -ENOENT)
		scs_dir_drop_name(d, dst);
	return r;
}


int scs_rekey_copy(scs_file *src, scs_file *dst)
{
	enum { BUF = 256u << 10 };
	uint8_t *buf = malloc(BUF);
	if (!buf)
		return -ENOMEM;
	uint64_t size = scs_file_size(src);
	int r = 0;
	for (uint64_t off = 0; off < size && !r;) {
		size_t want = size - off < BUF ? (size_t)(size - off) : BUF;
		ssize_t k = scs_file_pread(src, buf, want, off);
		if (k <= 0) {
			r = k < 0 ? (int)k : -EIO;
			break;
		}
		ssize_t w = scs_file_pwrite(dst, buf, (size_t)k, off);
		if (w != k)
			r = w < 0 ? (int)w : -EIO;
		off += (uint64_t)k;
	}
	if (!r && scs_file_size(dst) < size)
		r = scs_file_truncate(dst, size);
	scs_cleanse(buf, BUF);
	free(buf);
	return r;
}

/* A read-only back end of one object: the bytes of a descriptor. */
struct fd_be {
	scs_backend be;
	int fd;
	uint64_t size;
	int opens;
};

static void fdb_attr(const struct fd_be *b, struct scs_attr *a)
{
	memset(a, 0, sizeof *a);
	a->ino = 2;
	a->size = b->size;
	a->blocks = (b->size + 511) / 512;
	a->mode = S_IFREG | 0600;
	a->nlink = 1;
}

static int fdb_stat(scs_backend *be, const char *path, struct scs_attr *a)
{
	(void)path;
	fdb_attr((struct fd_be *)be, a);
	return 0;
}

static int fdb_open(scs_backend *be, const char *path, int flags, uint32_t mode, scs_obj **out)
{
	(void)path;
	(void)mode;
	if ((flags & O_ACCMODE) != O_RDONLY || (flags & (O_CREAT | O_TRUNC)))
		return -EROFS;
	scs_obj *o = calloc(1, sizeof *o);
	if (!o)
		return -ENOMEM;
	o->be = be;
	((struct fd_be *)be)->opens++;
	*out = o;
	return 0;
}

static ssize_t fdb_pread(scs_obj *o, void *buf, size_t n, uint64_t off)
{
	struct fd_be *b = (struct fd_be *)o->be;
	if (off >= b->size)
		return 0;
	if (n > b->size - off)
		n = (size_t)(b->size - off);
	ssize_t k;
	do                       /* (a regular file: short only at its end) */
		k = pread(b->fd, buf, n, (off_t)off);
	while (k < 0 && errno == EINTR);
	return k < 0 ? -errno : k;
}

static ssize_t fdb_pwrite(scs_obj *o, const void *buf, size_t n, uint64_t off)
{
	(void)o;
	(void)buf;
	(void)n;
	(void)off;
	return -EROFS;
}

static int fdb_fstat(scs_obj *o, struct scs_attr *a)
{
	fdb_attr((struct fd_be *)o->be, a);
	return 0;
}

/* The back end goes with its last object (scs_rekey_open_fd hands out one). */
static int fdb_obj_close(scs_obj *o)
{
	struct fd_be *b = (struct fd_be *)o->be;
	free(o);
	if (--b->opens == 0)
		free(b);
	return 0;
}

static const struct scs_backend_ops fd_ops = {
	.scheme = "snapshot",
	.stat = fdb_stat,
	.open = fdb_open,
	.pread = fdb_pread,
	.pwrite = fdb_pwrite,
	.fstat = fdb_fstat,
	.obj_close = fdb_obj_close,
};

int scs_rekey_open_fd(int fd, uint64_t size, const char *where, const scs_keyctx *k,
		      const char *display, scs_file **out, scs_err *err)
{
	scs_err_clear(err);
	struct fd_be *b = calloc(1, sizeof *b);
	if (!b)
		return scs_err_set(err, -ENOMEM, "out of memory");
	b->be.ops = &fd_ops;
	b->fd = fd;
	b->size = size;
	b->opens = 1;            /* (ours, while we open it) */
	int r = scs_file_verify(&b->be, where, k, err);
	if (r == 0) {
		r = scs_file_open(&b->be, where, 0, k, display, out);
		if (r < 0)
			scs_err_set(err, r, "%s", strerror(-r));
	}
	if (--b->opens == 0)
		free(b);         /* (not opened: nothing refers to it) */
	return r;
}

int scs_rekey_name(scs_backend *be, const scs_keyctx *k, scs_dirctx *d, const char *dpath,
		   const uint8_t dir_id[SCS_DIR_ID_LEN], const char *rpath,
		   char plain[SCS_NAME_MAX + 1], char *out, size_t cap)
{
	const char *stored = strrchr(rpath, '/') ? strrchr(rpath, '/') + 1 : rpath;
	char base[SCS_ENC_NAME_BUF], full[SCS_ENC_NAME_BUF], cur[SCS_ENC_NAME_BUF];
	size_t bl = strlen(stored), el;
	plain[0] = '\0';
	if (strlen(rpath) >= cap)
		return -ENAMETOOLONG;
	strcpy(out, rpath);
	if (scs_name_dup_split(stored, &bl, NULL) == 0)
		bl = strlen(stored);
	if (bl >= sizeof base)
		return 0;
	memcpy(base, stored, bl);          /* (a duplicate's suffix is Drive's, not stored) */
	base[bl] = '\0';
	int cls = scs_name_classify(base, &el);
	if ((cls != SCS_NAME_PLAIN_ENC && cls != SCS_NAME_LONG) || el != bl)
		return 0;                  /* temporary, reserved, decorated or not ours */
	int r = scs_dir_shown_name(d, dpath, dir_id, base, plain);
	if (r < 0)
		return r;
	uint8_t ek[SCS_KEY_LEN], nk[SCS_SIV_KEY_LEN];
	int is_long;
	r = k->epoch_key(k->arg, k->write_epoch(k->arg), ek);
	if (!r)
		r = scs_name_key(ek, nk);
	scs_cleanse(ek, sizeof ek);
	if (!r)
		r = scs_name_encrypt(nk, dir_id, plain, full, cur, &is_long);
	scs_cleanse(nk, sizeof nk);
	if (r < 0)
		return r;
	if (strcmp(cur, base) == 0)
		return 0;                  /* in the current epoch already */
	char dst[SCS_RPATH_MAX];
	r = scs_dir_prepare_name(d, dpath, dir_id, plain, dst, sizeof dst);
	if (r < 0)
		return r;
	if (strlen(dst) >= cap) {
		scs_dir_drop_name(d, dst);
		return -ENAMETOOLONG;
	}
	r = rename_prepared(be, d, rpath, dst);
	if (r < 0)
		return r;
	strcpy(out, dst);
	return 1;
}

/* The symbolic link at rpath (in the directory of id parent_id) whose
 * stored target is old, of epoch ep: a new link beside with the target
 * under epoch `epoch` of k, renamed over it if it is still there (check:
 * still holding old).  0 done, 1 changed meanwhile (left as it is), or <0
 * (-ENOENT: gone; -EBADMSG: the target does not authenticate; -EACCES: no
 * key for it). */
static int relink(scs_backend *be, const scs_keyctx *k, uint32_t epoch, const char *rpath,
		  const uint8_t parent_id[SCS_DIR_ID_LEN], const char *old, uint32_t ep, int check)
{
	char *cur = malloc(SCS_SYMLINK_ENC_BUF), *enc = malloc(SCS_SYMLINK_ENC_BUF);
	char *target = malloc(SCS_SYMLINK_MAX + 1), tmp[SCS_RPATH_MAX + 32];
	uint8_t ek[SCS_KEY_LEN];
	struct scs_attr a;
	int r = cur && enc && target ? k->epoch_key(k->arg, ep, ek) : -ENOMEM;
	if (r >= 0)
		r = scs_symlink_decrypt(ek, parent_id, old, target);
	if (r >= 0)
		r = k->epoch_key(k->arg, epoch, ek);
	if (r >= 0)
		r = scs_symlink_encrypt(ek, epoch, parent_id, target, enc);
	scs_cleanse(ek, sizeof ek);
	if (r == -ENOKEY || r == -EKEYREVOKED)
		r = -EACCES;
	if (r >= 0)
		r = tmp_name(rpath, tmp, sizeof tmp);
	if (r >= 0)
		r = scs_be_symlink(be, enc, tmp);
	if (r < 0)
		goto out;
	/* Unchanged meanwhile?  Then swap. */
	r = check ? scs_be_readlink(be, rpath, cur, SCS_SYMLINK_ENC_BUF) : scs_be_stat(be, rpath, &a);
	if (r < 0 || (check && strcmp(cur, old) != 0)) {
		scs_be_unlink(be, tmp);
		r = r == -ENOENT ? r : 1;
		goto out;
	}
	r = scs_be_rename(be, tmp, rpath, 0);
	if (r == -ENOENT)
		r = 1;                   /* as for files */
	else if (r < 0)
		scs_be_unlink(be, tmp);
out:
	if (target)
		scs_cleanse(target, SCS_SYMLINK_MAX + 1);
	free(cur);
	free(enc);
	free(target);
	return r;
}

int scs_rekey_link(scs_backend *be, const scs_keyctx *k, const char *rpath,
		   const uint8_t parent_id[SCS_DIR_ID_LEN], const char *stored)
{
	uint32_t ep = 0, epoch = k->write_epoch(k->arg);
	if (scs_symlink_epoch(stored, &ep) < 0)
		return -EBADMSG;
	if (ep >= epoch)
		return 0;
	int r = relink(be, k, epoch, rpath, parent_id, stored, ep, 0);
	return r == 0 ? 1 : r == 1 || r == -ENOENT ? 0 : r;
}

/* Step 1 for a symlink: its target under the current epoch. */
static int move_link(struct pass *ps, struct item *it, scs_err *err)
{
	char *old = malloc(SCS_SYMLINK_ENC_BUF);
	uint32_t ep = 0;
	int r = old ? scs_be_readlink(ps->be, it->rpath, old, SCS_SYMLINK_ENC_BUF) : -ENOMEM;
	if (r >= 0)
		r = scs_symlink_epoch(old, &ep) < 0 ? -EBADMSG : 0;
	if (r >= 0 && ep < ps->epoch)
		r = relink(ps->be, ps->k, ps->epoch, it->rpath, it->parent_id, old, ep, 1);
	else if (r >= 0)
		r = -ENOENT;             /* (nothing to do) */
	free(old);
	if (r == 0) {
		ps->res->links++;
		scs_rekey_stop("link");
	}
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return scs_err_set(err, r, "%s: symbolic link: %s", it->path,
				   r == -EBADMSG ? "target does not authenticate" : strerror(-r));
	return r;
}

/* Step 2: the name, encrypted under the current epoch (never over an
 * existing entry).  0 done, 2 the new name is taken, <0 error. */
static int move_name(struct pass *ps, struct item *it, scs_err *err)
{
	char dst[SCS_RPATH_MAX];
	const char *name = strrchr(it->path, '/');
	name = name ? name + 1 : it->path;
	int r = scs_dir_prepare_name(ps->d, it->dpath, it->parent_id, name, dst, sizeof dst);
	if (r < 0)
		return scs_err_set(err, r, "%s: cannot encrypt its name: %s", it->path, strerror(-r));
	if (strcmp(dst, it->rpath) == 0)
		return 0;
	r = rename_prepared(ps->be, ps->d, it->rpath, dst);
	if (r == -EEXIST)
		return 2;
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return scs_err_set(err, r, "%s: cannot rename: %s", it->path, strerror(-r));
	if (it->type == T_DIR)
		hlink_moved_dir(ps, it->rpath, dst);
	char *np = strdup(dst);
	if (np) {
		free(it->rpath);
		it->rpath = np;
		struct hlink *h = it->old_ino ? hlink_find(ps, it->old_ino) : NULL;
		if (h) {
			char *q = strdup(np);
			if (q) {
				free(h->rpath);
				h->rpath = q;
			}
		}
	}
	if (it->type == T_DIR)
		ps->res->dirs++;
	else
		ps->res->names++;
	scs_rekey_stop(it->type == T_DIR ? "dir" : "name");
	return 0;
}

/* ---- the progress record (rekey.h) ---- */

static int64_t now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_REALTIME, &t);
	return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

int scs_rekey_record_path(const uint8_t root_id[SCS_DIR_ID_LEN], char *out, size_t cap)
{
	char sub[16 + 2 * SCS_DIR_ID_LEN];
	memcpy(sub, "rekey/", 6);
	scs_hex_encode(root_id, SCS_DIR_ID_LEN, sub + 6);
	strcat(sub, ".progress");
	return scs_xdg_path(SCS_XDG_CACHE, sub, out, cap);
}

size_t scs_rekey_record_encode(const struct scs_rekey_record *r, char *out, size_t cap)
{
	int n = snprintf(out, cap, "scsfs-rekey-progress 1\npid %" PRId64 "\nepoch %" PRIu32
			 "\nstarted %" PRId64 "\nupdated %" PRId64 "\nfiles %" PRIu64 " %" PRIu64
			 "\nbytes %" PRIu64 " %" PRIu64 "\n", r->pid, r->epoch, r->started,
			 r->updated, r->files_done, r->files_total, r->bytes_done, r->bytes_total);
	return n < 0 ? 0 : (size_t)n >= cap ? cap - 1 : (size_t)n;
}

/* One decimal number of at most 19 digits (no overflow) at *p, which
 * moves past it; 0 or -1. */
static int dec(const char **p, const char *end, uint64_t *v)
{
	const char *q = *p;
	uint64_t x = 0;
	int n = 0;
	while (q < end && *q >= '0' && *q <= '9' && n < 20) {
		x = x * 10 + (uint64_t)(*q++ - '0');
		n++;
	}
	if (n == 0 || n > 19 || (n > 1 && **p == '0'))
		return -1;
	*p = q;
	*v = x;
	return 0;
}

int scs_rekey_record_parse(const char *p, size_t len, struct scs_rekey_record *r)
{
	static const char *const keys[] = { "scsfs-rekey-progress ", "pid ", "epoch ", "started ",
					    "updated ", "files ", "bytes " };
	uint64_t v[9];
	int nv = 0;
	const char *end = p + len;
	if (len > SCS_REKEY_RECORD_MAX)
		return -EBADMSG;
	for (size_t k = 0; k < sizeof keys / sizeof *keys; k++) {
		size_t kl = strlen(keys[k]);
		if ((size_t)(end - p) < kl || memcmp(p, keys[k], kl) != 0)
			return -EBADMSG;
		p += kl;
		for (int i = 0; i < (k >= 5 ? 2 : 1); i++) {
			if ((i && (p == end || *p++ != ' ')) || dec(&p, end, &v[nv++]) < 0)
				return -EBADMSG;
		}
		if (p == end || *p++ != '\n')
			return -EBADMSG;
	}
	if (p != end || v[0] != 1 || v[1] == 0 || v[1] > INT32_MAX || v[2] == 0 ||
	    v[2] > UINT32_MAX || v[3] > v[4] || v[4] > INT64_MAX || v[5] > v[6] || v[7] > v[8])
		return -EBADMSG;
	*r = (struct scs_rekey_record){ .pid = (int64_t)v[1], .epoch = (uint32_t)v[2],
		.started = (int64_t)v[3], .updated = (int64_t)v[4], .files_done = v[5],
		.files_total = v[6], .bytes_done = v[7], .bytes_total = v[8] };
	return 0;
}

/* The record at path, parsed: 0, -ENOENT, -EBADMSG. */
static int record_load(const char *path, struct scs_rekey_record *r)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0)
		return -ENOENT;
	uint8_t *data;
	size_t len;
	int x = scs_fd_read_all(fd, SCS_REKEY_RECORD_MAX, &data, &len);
	if (x < 0)
		return -EBADMSG;
	x = scs_rekey_record_parse((const char *)data, len, r);
	free(data);
	return x;
}

int scs_rekey_record_read(const uint8_t root_id[SCS_DIR_ID_LEN], uint32_t epoch, int64_t now,
			  struct scs_rekey_record *r)
{
	char path[SCS_PATH_MAX];
	if (scs_rekey_record_path(root_id, path, sizeof path) < 0 || record_load(path, r) < 0)
		return -ENOENT;
	if (r->epoch != epoch || now - r->updated > (int64_t)SCS_REKEY_RECORD_STALE * 1000 ||
	    (kill((pid_t)r->pid, 0) < 0 && errno == ESRCH))
		return -ENOENT;
	return 0;
}

/* Write the record now if force or a second has passed (failures only
 * cost the display: ignored). */
static void record_update(struct pass *ps, int force)
{
	struct timespec now;
	char buf[SCS_REKEY_RECORD_MAX];
	if (!ps->rec_path[0])
		return;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (!force && (now.tv_sec - ps->rec_last.tv_sec) * 1000 +
	    (now.tv_nsec - ps->rec_last.tv_nsec) / 1000000 < 1000)
		return;
	ps->rec_last = now;
	ps->rec.updated = now_ms();
	ps->rec.files_done = ps->pr.files_done;
	ps->rec.bytes_done = ps->pr.bytes_done;
	ps->rec.files_total = ps->pr.files_total > ps->pr.files_done ? ps->pr.files_total
			      : ps->pr.files_done;
	ps->rec.bytes_total = ps->pr.bytes_total > ps->pr.bytes_done ? ps->pr.bytes_total
			      : ps->pr.bytes_done;
	size_t n = scs_rekey_record_encode(&ps->rec, buf, sizeof buf);
	if (scs_local_write_atomic(ps->rec_path, buf, n, 0600) < 0)
		ps->rec_path[0] = '\0';     /* no cache directory: no record */
}

static void record_start(struct pass *ps, uint64_t files, uint64_t bytes)
{
	char dir[SCS_PATH_MAX];
	if (scs_xdg_path(SCS_XDG_CACHE, "rekey", dir, sizeof dir) < 0 || scs_mkdir_p(dir, 0700) < 0 ||
	    scs_rekey_record_path(ps->root_id, ps->rec_path, sizeof ps->rec_path) < 0) {
		ps->rec_path[0] = '\0';
		return;
	}
	ps->rec = (struct scs_rekey_record){ .pid = getpid(), .epoch = ps->epoch,
					      .started = now_ms() };
	ps->pr.files_total = files;
	ps->pr.bytes_total = bytes;
	record_update(ps, 1);
}

/* At the end of the pass: the record goes, unless another pass of this
 * user took it over meanwhile. */
static void record_end(struct pass *ps)
{
	struct scs_rekey_record r;
	if (ps->rec_path[0] && record_load(ps->rec_path, &r) == 0 && r.pid == ps->rec.pid)
		unlink(ps->rec_path);
}

static void report(struct pass *ps, const char *path)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	double t = (double)(now.tv_sec - ps->t0.tv_sec) + (double)(now.tv_nsec - ps->t0.tv_nsec) / 1e9;
	ps->pr.files_done = ps->res->files;
	ps->pr.bytes_done = ps->res->bytes;
	ps->pr.rate = t > 0 ? (double)ps->pr.bytes_done / t : 0;
	ps->pr.eta = ps->pr.rate > 0 && ps->pr.bytes_total >= ps->pr.bytes_done
		? (double)(ps->pr.bytes_total - ps->pr.bytes_done) / ps->pr.rate : -1;
	ps->pr.path = path;
	record_update(ps, 0);
}

static int one(struct pass *ps, struct item *it, scs_err *err)
{
	int r = 0;
	if (it->content_old)
		r = it->type == T_FILE ? move_file(ps, it, err)
		  : it->type == T_LINK ? move_link(ps, it, err) : 0;
	if (r == 1) {
		it->busy = 1;
		return 0;
	}
	if (r < 0) {
		if (r != -EBADMSG && r != -EACCES)
			return r;
		scs_log(SCS_LOG_ERR, "rekey: %s", err->msg);
		ps->res->damaged++;
		scs_err_clear(err);
		it->busy = 0;
		return 0;
	}
	it->busy = 0;
	it->content_old = 0;
	if (it->name_old) {
		r = move_name(ps, it, err);
		if (r == 2) {
			scs_log(SCS_LOG_WARN, "rekey: %s: an entry with that name was made in the new "
				"epoch meanwhile; this one keeps its old name", it->path);
			ps->res->conflicts++;
			return 0;
		}
		if (r < 0)
			return r;
		it->name_old = 0;
	}
	return 0;
}

int scs_rekey_run(scs_backend *be, const scs_keyctx *k, const uint8_t root_id[SCS_DIR_ID_LEN],
		  scs_rekey_cb cb, void *arg, struct scs_rekey_result *res, scs_err *err)
{
	struct pass ps = { .be = be, .k = k, .root_id = root_id, .res = res, .cb = cb, .arg = arg };
	memset(res, 0, sizeof *res);
	scs_err_clear(err);
	if (!k->sign_key)
		return scs_err_set(err, -EROFS, "the re-key pass needs your passphrase");
	ps.epoch = res->epoch = k->write_epoch(k->arg);
	const char *s = getenv("SCSFS_REKEY_PAUSE");
	if (s && *s)
		ps.pause = (unsigned)strtoul(s, NULL, 10);
	clock_gettime(CLOCK_MONOTONIC, &ps.t0);
	/* Someone opening a file we hold (backend hold) sends us SIGIO, whose
	 * default action would end the process; we release within moments. */
	struct sigaction sa;
	if (sigaction(SIGIO, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL)
		signal(SIGIO, SIG_IGN);

	/* Leftovers of an interrupted pass first. */
	struct scs_rekey_scan sc;
	int r = scs_rekey_scan(be, ps.epoch, 1, &sc, err);
	if (r < 0)
		return r;
	r = scs_dir_new(be, k, root_id, &ps.d);
	if (r < 0)
		return scs_err_set(err, r, "out of memory");
	record_start(&ps, sc.old_files, sc.old_bytes);
	for (int round = 0;; round++) {
		items_free(&ps);
		ps.round = round;
		res->refused = 0;
		ps.pr.files_total = res->files;
		ps.pr.bytes_total = res->bytes;
		r = scs_dir_walk(ps.d, "", root_id, "", collect, &ps);
		if (r == 0)
			r = ps.err;
		if (r < 0) {
			scs_err_set(err, r, "cannot walk the folder: %s", strerror(-r));
			goto out;
		}
		if (ps.n == 0 || round == ROUNDS)
			break;
		if (round > 0)
			sleep(1);            /* give a busy writer time to finish */
		res->busy = res->conflicts = res->damaged = 0;
		/* Reverse walk order: everything inside a directory before the
		 * directory itself, so the paths stay valid. */
		for (size_t i = ps.n; i-- > 0; ) {
			r = one(&ps, &ps.v[i], err);
			if (r < 0)
				goto out;
			res->busy += ps.v[i].busy;
			report(&ps, ps.v[i].path);
			if (cb && cb(arg, &ps.pr)) {
				r = scs_err_set(err, -EINTR, "the re-key pass was stopped; run it again to "
						"finish");
				goto out;
			}
		}
	}
	/* What is left: the last walk looked afresh. */
	res->left = ps.n;
	if (ps.n) {
		r = scs_err_set(err, -EAGAIN, "%zu entries are still in older epochs (%" PRIu64
				" changed during the pass, %" PRIu64 " damaged, %" PRIu64 " name conflicts); "
				"run `scsctl rekey run` again later%s", ps.n, res->busy, res->damaged,
				res->conflicts, res->damaged ? ", and `scsctl verify` for the damaged ones" : "");
	}
out:
	record_end(&ps);
	items_free(&ps);
	for (size_t i = 0; i < ps.nhl; i++)
		free(ps.hl[i].rpath);
	free(ps.hl);
	scs_dir_free(ps.d);
	return r;
}

/* ---- retirement ---- */

int scs_rekey_retire(scs_vault *v, uint32_t below, scs_err *err)
{
	scs_backend *be = scs_vault_backend(v);
	scs_identity *self = scs_vault_identity(v);
	scs_err_clear(err);
	for (int attempt = 0; attempt < 2; attempt++) {
		scs_keyring *kr = NULL;
		uint8_t (*keys)[SCS_KEY_LEN] = NULL, *entry = NULL;
		uint32_t nkeys = 0;
		size_t len = 0;
		int r = scs_keyring_load_pinned(be, NULL, 0, &kr, err);
		if (r < 0)
			return r;
		const struct scs_member *me = scs_keyring_member(kr, self->fpr);
		if (!me || me->role != SCS_ROLE_ADMIN) {
			scs_keyring_free(kr);
			return scs_err_set(err, -EPERM, "only an admin can retire old epochs; ask an admin "
					   "to run `scsctl rekey run`");
		}
		if (kr->retired_below >= below) {
			scs_keyring_free(kr);
			return scs_vault_refresh(v, err);
		}
		scs_rekey_stop("retire");
		uint32_t seq = kr->seq + 1;
		struct scs_kr_change c = { .kind = SCS_KR_RETIRE, .retire_below = below };
		r = scs_keyring_unlock(kr, self, &keys, &nkeys, err);
		if (r == 0)
			r = scs_keyring_make_entry(kr, &c, self, (const uint8_t (*)[SCS_KEY_LEN])keys,
						   nkeys, NULL, &entry, &len, err);
		scs_keyring_keys_free(keys, nkeys);
		if (r == 0)
			r = scs_keyring_apply(&kr, seq, entry, len, err);
		if (r == 0)
			r = scs_keyring_publish(be, seq, entry, len, err);
		if (r == 0)
			r = scs_keyring_pin_check(kr, 1, err);
		free(entry);
		scs_keyring_free(kr);
		if (r == -EEXIST && attempt == 0)
			continue;
		if (r < 0)
			return r;
		return scs_vault_refresh(v, err);
	}
	return -EEXIST;
}
