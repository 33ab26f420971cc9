/* dir.c - the namespace engine: encrypted names, directory ids, long-name
 * side objects and symlink targets on a back end (dir.h). */
#include "scs/dir.h"

#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "scs/b64.h"
#include "scs/crypto.h"
#include "scs/log.h"

#define NK_MAX 16

struct name_key {
	uint32_t epoch;
	int state;                       /* 1 key valid, <0: epoch_key's error */
	uint8_t key[SCS_SIV_KEY_LEN];
};

struct scs_dirctx {
	scs_backend *be;
	const scs_keyctx *k;
	uint8_t root_id[SCS_DIR_ID_LEN];
	pthread_mutex_t lock;
	struct name_key nk[NK_MAX];
	int nnk;
	uint32_t hint;                   /* epoch that decrypted the last old name */
};

int scs_dir_new(scs_backend *be, const scs_keyctx *k, const uint8_t root_id[SCS_DIR_ID_LEN],
		scs_dirctx **out)
{
	scs_dirctx *d = calloc(1, sizeof *d);
	*out = NULL;
	if (!d)
		return -ENOMEM;
	d->be = be;
	d->k = k;
	memcpy(d->root_id, root_id, SCS_DIR_ID_LEN);
	pthread_mutex_init(&d->lock, NULL);
	*out = d;
	return 0;
}

void scs_dir_forget_keys(scs_dirctx *d)
{
	pthread_mutex_lock(&d->lock);
	scs_cleanse(d->nk, sizeof d->nk);
	d->nnk = 0;
	d->hint = 0;
	pthread_mutex_unlock(&d->lock);
}

void scs_dir_free(scs_dirctx *d)
{
	if (!d)
		return;
	scs_dir_forget_keys(d);
	pthread_mutex_destroy(&d->lock);
	free(d);
}

/* The name key of an epoch, copied to key (cleanse it after use). */
static int name_key(scs_dirctx *d, uint32_t epoch, uint8_t key[SCS_SIV_KEY_LEN])
{
	pthread_mutex_lock(&d->lock);
	for (int i = 0; i < d->nnk; i++) {
		if (d->nk[i].epoch == epoch) {
			int st = d->nk[i].state;
			if (st == 1)
				memcpy(key, d->nk[i].key, SCS_SIV_KEY_LEN);
			pthread_mutex_unlock(&d->lock);
			return st == 1 ? 0 : st;
		}
	}
	pthread_mutex_unlock(&d->lock);
	uint8_t ek[SCS_KEY_LEN];
	int r = d->k->epoch_key(d->k->arg, epoch, ek);
	if (!r)
		r = scs_name_key(ek, key);
	scs_cleanse(ek, sizeof ek);
	if (r == -ENOMEM || r == -EIO)
		return r;                /* not cached: may work next time */
	pthread_mutex_lock(&d->lock);
	int slot = -1;
	for (int i = 0; i < d->nnk; i++)
		if (d->nk[i].epoch == epoch)
			slot = i;
	if (slot < 0) {
		if (d->nnk == NK_MAX) {
			/* Full: forget the oldest epoch (never the newest ones). */
			slot = 0;
			for (int i = 1; i < NK_MAX; i++)
				if (d->nk[i].epoch < d->nk[slot].epoch)
					slot = i;
		} else {
			slot = d->nnk++;
		}
	}
	d->nk[slot].epoch = epoch;
	d->nk[slot].state = r ? r : 1;
	if (!r)
		memcpy(d->nk[slot].key, key, SCS_SIV_KEY_LEN);
	else
		scs_cleanse(d->nk[slot].key, SCS_SIV_KEY_LEN);
	pthread_mutex_unlock(&d->lock);
	return r;
}

/* Epochs to try when reading a name, best first: the write epoch, the last
 * one that worked, then the others downwards.  Returns how many. */
static int epoch_order(scs_dirctx *d, uint32_t *ep, int cap)
{
	uint32_t w = d->k->write_epoch(d->k->arg);
	pthread_mutex_lock(&d->lock);
	uint32_t hint = d->hint;
	pthread_mutex_unlock(&d->lock);
	int n = 0;
	ep[n++] = w;
	if (hint && hint < w && n < cap)
		ep[n++] = hint;
	for (uint32_t e = w; e-- > 1 && n < cap;)
		if (e != hint)
			ep[n++] = e;
	return n;
}

static void set_hint(scs_dirctx *d, uint32_t epoch)
{
	pthread_mutex_lock(&d->lock);
	d->hint = epoch;
	pthread_mutex_unlock(&d->lock);
}

int scs_path_join(char *out, size_t cap, const char *dir, const char *name)
{
	size_t dl = strlen(dir), nl = strlen(name);
	size_t need = (dl ? dl + 1 : 0) + nl + 1;
	if (need > cap)
		return -ENAMETOOLONG;
	if (dl) {
		memcpy(out, dir, dl);
		out[dl] = '/';
		memcpy(out + dl + 1, name, nl + 1);
	} else {
		memcpy(out, name, nl + 1);
	}
	return 0;
}

static int is_root(const char *dpath)
{
	return dpath[0] == '\0';
}

int scs_dir_read_id(scs_dirctx *d, const char *rpath, uint8_t id[SCS_DIR_ID_LEN])
{
	if (is_root(rpath)) {
		memcpy(id, d->root_id, SCS_DIR_ID_LEN);
		return 0;
	}
	char p[SCS_RPATH_MAX];
	int r = scs_path_join(p, sizeof p, rpath, SCS_DIRID_FILE);
	if (r < 0)
		return r;
	uint8_t *data = NULL;
	size_t len = 0;
	r = scs_be_read_file(d->be, p, 64, &data, &len);
	if (r == -EFBIG)
		return -EBADMSG;
	if (r < 0)
		return r;
	r = scs_dirid_decode(data, len, id);
	free(data);
	return r < 0 ? -EBADMSG : 0;
}

/* ---- long names ---- */

/* The side object of a stored long name (without decoration). */
static int side_path(char *out, size_t cap, const char *dpath, const char *stored, size_t len)
{
	char n[SCS_ENC_NAME_BUF + sizeof SCS_LONG_SUFFIX];
	if (len + sizeof SCS_LONG_SUFFIX > sizeof n)
		return -ENAMETOOLONG;
	memcpy(n, stored, len);
	memcpy(n + len, SCS_LONG_SUFFIX, sizeof SCS_LONG_SUFFIX);
	return scs_path_join(out, cap, dpath, n);
}

/* Read the full encoding of long name stored[0..len) and check that it
 * hashes to the name (else a swapped side object could rename files). */
static int read_long(scs_dirctx *d, const char *dpath, const char *stored, size_t len,
		     char full[SCS_ENC_NAME_BUF], size_t *flen)
{
	char p[SCS_RPATH_MAX];
	int r = side_path(p, sizeof p, dpath, stored, len);
	if (r < 0)
		return r;
	uint8_t *data = NULL;
	size_t n = 0;
	r = scs_be_read_file(d->be, p, SCS_ENC_NAME_BUF - 1, &data, &n);
	if (r == -EFBIG)
		r = -EBADMSG;
	if (r < 0)
		return r;
	uint8_t h[SCS_SHA256_LEN];
	char want[SCS_ENC_NAME_BUF];
	memcpy(want, SCS_LONG_PREFIX, sizeof SCS_LONG_PREFIX - 1);
	r = scs_sha256(data, n, h);
	if (!r) {
		scs_b64url_encode(h, sizeof h, want + sizeof SCS_LONG_PREFIX - 1);
		if (strlen(want) != len || memcmp(want, stored, len) != 0 ||
		    !scs_b64url_is_alphabet((const char *)data, n))
			r = -EBADMSG;
	}
	if (!r) {
		memcpy(full, data, n);
		full[n] = '\0';
		*flen = n;
	}
	free(data);
	return r;
}

static int write_side(scs_dirctx *d, const char *dpath, const char *stored, const char *full)
{
	char p[SCS_RPATH_MAX];
	int r = side_path(p, sizeof p, dpath, stored, strlen(stored));
	if (r < 0)
		return r;
	struct scs_attr a;
	/* Same name, same dir, same epoch: same contents; write it once. */
	r = scs_be_stat(d->be, p, &a);
	if (r == 0)
		return 0;
	if (r != -ENOENT)
		return r;
	return scs_be_write_file(d->be, p, full, strlen(full));
}

int scs_dir_drop_name(scs_dirctx *d, const char *rpath)
{
	const char *base = strrchr(rpath, '/');
	base = base ? base + 1 : rpath;
	size_t enc_len = 0;
	if (scs_name_classify(base, &enc_len) != SCS_NAME_LONG || enc_len != strlen(base))
		return 0;    /* short, or decorated (the side object is the original's) */
	char p[SCS_RPATH_MAX];
	size_t dl = (size_t)(base - rpath);
	if (dl + strlen(base) + sizeof SCS_LONG_SUFFIX > sizeof p)
		return -ENAMETOOLONG;
	memcpy(p, rpath, strlen(rpath));
	memcpy(p + strlen(rpath), SCS_LONG_SUFFIX, sizeof SCS_LONG_SUFFIX);
	int r = scs_be_unlink(d->be, p);
	return r == -ENOENT ? 0 : r;
}

/* ---- names ---- */

/* Stored name of plaintext name under the name key of epoch. */
static int stored_name(scs_dirctx *d, uint32_t epoch, const uint8_t dir_id[SCS_DIR_ID_LEN],
		       const char *name, char full[SCS_ENC_NAME_BUF],
		       char stored[SCS_ENC_NAME_BUF], int *is_long)
{
	uint8_t key[SCS_SIV_KEY_LEN];
	int r = name_key(d, epoch, key);
	if (r < 0)
		return r;
	r = scs_name_encrypt(key, dir_id, name, full, stored, is_long);
	scs_cleanse(key, sizeof key);
	return r;
}

int scs_dir_prepare_name(scs_dirctx *d, const char *dpath, const uint8_t dir_id[SCS_DIR_ID_LEN],
			 const char *name, char *rpath, size_t cap)
{
	char full[SCS_ENC_NAME_BUF], stored[SCS_ENC_NAME_BUF];
	int is_long = 0;
	if (scs_name_has_dup_marker(name))
		return -EINVAL;          /* reserved for duplicates (names.h) */
	int r = stored_name(d, d->k->write_epoch(d->k->arg), dir_id, name, full, stored, &is_long);
	if (r < 0)
		return r;
	r = scs_path_join(rpath, cap, dpath, stored);
	if (!r && is_long)
		r = write_side(d, dpath, stored, full);
	return r;
}

/* Decrypt the encoded part of a stored name (long form resolved through
 * its side object) with the epochs that still have keys. */
static int decrypt_stored(scs_dirctx *d, const char *dpath, const uint8_t dir_id[SCS_DIR_ID_LEN],
			  int cls, const char *stored, size_t enc_len, char plain[SCS_NAME_MAX + 1],
			  uint32_t *epoch)
{
	char full[SCS_ENC_NAME_BUF];
	const char *enc = stored;
	size_t elen = enc_len;
	if (cls == SCS_NAME_LONG) {
		int r = read_long(d, dpath, stored, enc_len, full, &elen);
		if (r < 0)
			return r == -ENOENT ? -EBADMSG : r;
		enc = full;
	} else if (elen >= SCS_ENC_NAME_BUF) {
		return -EBADMSG;
	}
	uint32_t ep[64];
	int n = epoch_order(d, ep, 64);
	int r = -EBADMSG, have_key = 0;
	for (int i = 0; i < n; i++) {
		uint8_t key[SCS_SIV_KEY_LEN];
		if (name_key(d, ep[i], key) < 0)
			continue;
		have_key = 1;
		r = scs_name_decrypt(key, dir_id, enc, elen, plain);
		scs_cleanse(key, sizeof key);
		if (r >= 0) {
			*epoch = ep[i];
			if (i > 0)
				set_hint(d, ep[i]);
			return 0;
		}
	}
	return have_key ? -EBADMSG : -ENOKEY;
}

struct list_ctx {
	scs_dirctx *d;
	const char *dpath;
	const uint8_t *dir_id;
	const char *display;
	unsigned flags;
	scs_dir_cb cb;
	void *arg;
};

static const char *why(int bad)
{
	switch (bad) {
	case -ENOKEY: return "no key of this member opens it";
	case -ENAMETOOLONG: return "decorated name too long";
	case -EBADMSG: return "it was altered, moved from another folder, or not made by scsfs";
	default: return strerror(-bad);
	}
}

/* The names of a stored entry of class cls: plain (decrypted) and shown
 * (what the user sees: with its decorations, if it has any). */
static int decode_entry(scs_dirctx *d, const char *dpath, const uint8_t dir_id[SCS_DIR_ID_LEN],
			int cls, size_t enc_len, const char *stored, char plain[SCS_NAME_MAX + 1],
			char shown[SCS_NAME_MAX + 1], uint32_t *epoch)
{
	size_t n = strlen(stored);
	if (cls == SCS_NAME_FOREIGN || enc_len == 0 || enc_len > n)
		return -EBADMSG;
	int r = decrypt_stored(d, dpath, dir_id, cls, stored, enc_len, plain, epoch);
	if (!r && enc_len < n)
		r = scs_name_decorate(plain, stored + enc_len, n - enc_len, shown);
	return r > 0 ? 0 : r;
}

int scs_dir_shown_name(scs_dirctx *d, const char *dpath, const uint8_t dir_id[SCS_DIR_ID_LEN],
		       const char *stored, char out[SCS_NAME_MAX + 1])
{
	size_t enc_len = 0;
	int cls = scs_name_classify(stored, &enc_len);
	if (cls == SCS_NAME_RESERVED || cls == SCS_NAME_LONG_SIDE)
		return -ENOENT;
	char plain[SCS_NAME_MAX + 1];
	uint32_t epoch;
	int r = decode_entry(d, dpath, dir_id, cls, enc_len, stored, plain, out, &epoch);
	if (!r && enc_len == strlen(stored))
		memcpy(out, plain, strlen(plain) + 1);
	scs_cleanse(plain, sizeof plain);
	return r;
}

static int list_one(void *arg, const char *stored, const struct scs_attr *a)
{
	struct list_ctx *c = arg;
	if (is_root(c->dpath) && !strcmp(stored, SCS_META_DIR))
		return 0;
	if (!strcmp(stored, SCS_DIRID_FILE) || scs_is_tmp_name(stored))
		return 0;
	size_t enc_len = 0;
	int cls = scs_name_classify(stored, &enc_len);
	if (cls == SCS_NAME_RESERVED || cls == SCS_NAME_LONG_SIDE)
		return 0;
	struct scs_dirent e = { .stored = stored, .attr = a };
	char plain[SCS_NAME_MAX + 1], shown[SCS_NAME_MAX + 1];
	int bad = decode_entry(c->d, c->dpath, c->dir_id, cls, enc_len, stored, plain, shown,
			       &e.epoch);
	e.decorated = !bad && enc_len < strlen(stored);
	e.name = e.decorated ? shown : plain;
	if (bad < 0) {
		if (bad == -ENOMEM || bad == -EIO)
			return bad;
		if (!(c->flags & SCS_DIR_LIST_BAD)) {
			scs_log(SCS_LOG_WARN, "%s: skipping an entry whose name cannot be read (%s)",
				c->display && *c->display ? c->display : "/", why(bad));
			return 0;
		}
		e.name = NULL;
		e.bad = bad;
	}
	int r = c->cb(c->arg, &e);
	scs_cleanse(plain, sizeof plain);
	return r;
}

int scs_dir_list(scs_dirctx *d, const char *dpath, const uint8_t dir_id[SCS_DIR_ID_LEN],
		 const char *display, unsigned flags, scs_dir_cb cb, void *arg)
{
	struct list_ctx c = { d, dpath, dir_id, display, flags, cb, arg };
	return scs_be_list(d->be, dpath, list_one, &c);
}

struct find_ctx {
	const char *name;
	char *stored;                    /* SCS_ENC_NAME_BUF */
	struct scs_attr attr;
};

static int find_one(void *arg, const struct scs_dirent *e)
{
	struct find_ctx *c = arg;
	if (!e->decorated || strcmp(e->name, c->name))
		return 0;
	size_t n = strlen(e->stored);
	if (n >= SCS_ENC_NAME_BUF)
		return 0;
	memcpy(c->stored, e->stored, n + 1);
	c->attr = *e->attr;
	return 1;
}

/* The decorated entry shown as name: 1 (rpath, *a set), 0 none, or an errno. */
static int find_decorated(scs_dirctx *d, const char *dpath, const uint8_t dir_id[SCS_DIR_ID_LEN],
			  const char *name, char *rpath, size_t cap, struct scs_attr *a)
{
	char stored[SCS_ENC_NAME_BUF];
	struct find_ctx c = { name, stored, { 0 } };
	int r = scs_dir_list(d, dpath, dir_id, NULL, 0, find_one, &c);
	if (r != 1)
		return r < 0 ? r : 0;
	*a = c.attr;
	r = scs_path_join(rpath, cap, dpath, stored);
	return r < 0 ? r : 1;
}

int scs_dir_lookup(scs_dirctx *d, const char *dpath, const uint8_t dir_id[SCS_DIR_ID_LEN],
		   const char *name, char *rpath, size_t cap, struct scs_attr *a)
{
	struct scs_attr tmp;
	if (!a)
		a = &tmp;
	if (scs_name_has_dup_marker(name)) {
		/* A duplicate's name (names.h): only ever found in the listing. */
		int r = find_decorated(d, dpath, dir_id, name, rpath, cap, a);
		return r == 1 ? 0 : (r == 0 ? -ENOENT : r);
	}
	uint32_t ep[64];
	int n = epoch_order(d, ep, 64);
	int tried = 0;
	for (int i = 0; i < n; i++) {
		char full[SCS_ENC_NAME_BUF], stored[SCS_ENC_NAME_BUF];
		int is_long = 0;
		int r = stored_name(d, ep[i], dir_id, name, full, stored, &is_long);
		if (r == -EINVAL || r == -ENAMETOOLONG)
			return r;
		if (r < 0)
			continue;            /* no key for that epoch */
		tried = 1;
		r = scs_path_join(rpath, cap, dpath, stored);
		if (r < 0)
			return r;
		r = scs_be_stat(d->be, rpath, a);
		if (r != -ENOENT)
			return r;
	}
	if (!tried)
		return -ENOKEY;
	/* "report (1).odt" may be "<enc of report.odt> (1)" made by a sync client. */
	if (strstr(name, " (")) {
		int r = find_decorated(d, dpath, dir_id, name, rpath, cap, a);
		if (r != 0)
			return r == 1 ? 0 : r;
	}
	return -ENOENT;
}

/* ---- conflict copies ---- */

/* Cut s to at most max bytes without splitting a UTF-8 sequence. */
static size_t utf8_cut(const char *s, size_t n, size_t max)
{
	if (n <= max)
		return n;
	while (max > 0 && ((unsigned char)s[max] & 0xC0) == 0x80)
		max--;
	return max;
}

int scs_dir_conflict_name(scs_dirctx *d, const char *rpath, const char *who, time_t when,
			  char *out, size_t cap)
{
	const char *slash = strrchr(rpath, '/');
	const char *base = slash ? slash + 1 : rpath;
	char dpath[SCS_RPATH_MAX];
	size_t dl = slash ? (size_t)(slash - rpath) : 0;
	if (!*base || dl >= sizeof dpath)
		return -EINVAL;
	memcpy(dpath, rpath, dl);
	dpath[dl] = '\0';
	uint8_t dir_id[SCS_DIR_ID_LEN];
	int r = scs_dir_read_id(d, dpath, dir_id);
	if (r < 0)
		return r;
	size_t enc_len = 0;
	int cls = scs_name_classify(base, &enc_len);
	if (cls != SCS_NAME_PLAIN_ENC && cls != SCS_NAME_LONG)
		return -EINVAL;
	char plain[SCS_NAME_MAX + 1], shown[SCS_NAME_MAX + 1];
	uint32_t epoch;
	/* The plain name: a duplicate's or a decorated copy's conflict is
	 * named after the name itself. */
	r = decode_entry(d, dpath, dir_id, cls, enc_len, base, plain, shown, &epoch);
	if (r < 0)
		return r;
	/* Who: the member name, made safe for a file name. */
	char w[65];
	size_t wl = 0;
	for (const char *p = who && *who ? who : "unknown"; *p && wl < sizeof w - 1; p++) {
		unsigned char c = (unsigned char)*p;
		w[wl++] = (c < 0x20 || c == 0x7f || c == '/' || c == '(' || c == ')') ? '_' : (char)c;
	}
	wl = utf8_cut(w, wl, sizeof w - 1);
	w[wl] = '\0';
	struct tm tm;
	if (!localtime_r(&when, &tm))
		return -EINVAL;
	size_t pl = strlen(plain);
	for (int k = 1; k <= 1000; k++) {
		char dec[160], name[SCS_NAME_MAX + 1], crp[SCS_RPATH_MAX];
		int dn = snprintf(dec, sizeof dec, " (conflict from %s %04d-%02d-%02d %02d-%02d", w,
				  tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min);
		if (k > 1)
			dn += snprintf(dec + dn, sizeof dec - (size_t)dn, " %d", k);
		dn += snprintf(dec + dn, sizeof dec - (size_t)dn, ")");
		/* Too long: shorten the name (keep the extension if it fits). */
		char p2[SCS_NAME_MAX + 1];
		memcpy(p2, plain, pl + 1);
		if (pl + (size_t)dn > SCS_NAME_MAX) {
			const char *dot = strrchr(plain, '.');
			size_t xl = (dot && dot != plain && dot[1]) ? strlen(dot) : 0;
			if (xl + (size_t)dn + 1 > SCS_NAME_MAX)
				xl = 0;
			size_t keep = utf8_cut(plain, pl - xl, SCS_NAME_MAX - (size_t)dn - xl);
			memcpy(p2 + keep, plain + pl - xl, xl + 1);
		}
		r = scs_name_decorate(p2, dec, (size_t)dn, name);
		if (r < 0)
			break;
		struct scs_attr a;
		r = scs_dir_lookup(d, dpath, dir_id, name, crp, sizeof crp, &a);
		if (r == -ENOENT) {
			r = scs_dir_prepare_name(d, dpath, dir_id, name, out, cap);
			break;
		}
		if (r < 0)
			break;
		r = -EEXIST;
	}
	scs_cleanse(plain, sizeof plain);
	scs_cleanse(shown, sizeof shown);
	return r;
}

/* ---- mkdir / rmdir ---- */

int scs_dir_mkdir(scs_dirctx *d, const char *dpath, const uint8_t dir_id[SCS_DIR_ID_LEN],
		  const char *name, uint32_t mode, char *rpath, size_t cap,
		  uint8_t new_id[SCS_DIR_ID_LEN])
{
	int r = scs_dir_prepare_name(d, dpath, dir_id, name, rpath, cap);
	if (r < 0)
		return r;
	char idp[SCS_RPATH_MAX];
	uint8_t obj[SCS_DIRID_OBJ_LEN];
	r = scs_path_join(idp, sizeof idp, rpath, SCS_DIRID_FILE);
	if (!r)
		r = scs_random(new_id, SCS_DIR_ID_LEN);
	if (r < 0)
		goto drop;
	/* Owner-writable until .scsdir is in. */
	r = scs_be_mkdir(d->be, rpath, (mode & 07777) | 0700);
	if (r == -EEXIST)
		return r;        /* the side object (if any) belongs to that entry */
	if (r < 0)
		goto drop;
	scs_dirid_encode(new_id, obj);
	r = scs_be_write_file(d->be, idp, obj, sizeof obj);
	if (!r && ((mode & 07777) | 0700) != (mode & 07777))
		r = scs_be_chmod(d->be, rpath, mode & 07777);
	if (r == -ENOTSUP)
		r = 0;
	if (r < 0) {
		scs_be_unlink(d->be, idp);
		scs_be_rmdir(d->be, rpath);
		goto drop;
	}
	return 0;
drop:
	scs_dir_drop_name(d, rpath);
	return r;
}

struct empty_ctx {
	scs_dirctx *d;
	const char *rpath;
	int busy;
	int ntmp;
	char tmp[8][SCS_ENC_NAME_BUF + 32];   /* stale temp and orphan side objects */
};

static int empty_one(void *arg, const char *stored, const struct scs_attr *a)
{
	struct empty_ctx *c = arg;
	(void)a;
	if (!strcmp(stored, SCS_DIRID_FILE))
		return 0;
	int garbage = scs_is_tmp_name(stored);
	size_t enc_len;
	if (!garbage && scs_name_classify(stored, &enc_len) == SCS_NAME_LONG_SIDE) {
		/* A side object whose entry is gone is garbage. */
		char p[SCS_RPATH_MAX];
		size_t n = strlen(stored) - (sizeof SCS_LONG_SUFFIX - 1);
		struct scs_attr st;
		if (!scs_path_join(p, sizeof p, c->rpath, stored)) {
			p[strlen(p) - (strlen(stored) - n)] = '\0';
			garbage = scs_be_stat(c->d->be, p, &st) == -ENOENT;
		}
	}
	if (!garbage || c->ntmp == 8 || strlen(stored) >= sizeof c->tmp[0]) {
		c->busy = 1;
		return 1;
	}
	strcpy(c->tmp[c->ntmp++], stored);
	return 0;
}

int scs_dir_rmdir(scs_dirctx *d, const char *rpath)
{
	if (is_root(rpath))
		return -EBUSY;
	struct empty_ctx c = { .d = d, .rpath = rpath };
	int r = scs_be_list(d->be, rpath, empty_one, &c);
	if (r < 0)
		return r;
	if (c.busy)
		return -ENOTEMPTY;
	uint8_t id[SCS_DIR_ID_LEN];
	int have_id = scs_dir_read_id(d, rpath, id) == 0;
	char p[SCS_RPATH_MAX];
	for (int i = 0; i < c.ntmp; i++)
		if (!scs_path_join(p, sizeof p, rpath, c.tmp[i]))
			scs_be_unlink(d->be, p);
	r = scs_path_join(p, sizeof p, rpath, SCS_DIRID_FILE);
	if (r < 0)
		return r;
	r = scs_be_unlink(d->be, p);
	if (r < 0 && r != -ENOENT)
		return r;
	r = scs_be_rmdir(d->be, rpath);
	if (r < 0) {
		/* Something appeared meanwhile: put the id back. */
		if (have_id) {
			uint8_t obj[SCS_DIRID_OBJ_LEN];
			scs_dirid_encode(id, obj);
			scs_be_write_file(d->be, p, obj, sizeof obj);
		}
		return r;
	}
	return scs_dir_drop_name(d, rpath);
}

/* ---- symlinks ---- */

int scs_dir_symlink(scs_dirctx *d, const char *dpath, const uint8_t dir_id[SCS_DIR_ID_LEN],
		    const char *name, const char *target, char *rpath, size_t cap)
{
	size_t tl = strlen(target);
	if (tl == 0)
		return -ENOENT;
	if (tl > SCS_SYMLINK_MAX)
		return -ENAMETOOLONG;
	uint32_t w = d->k->write_epoch(d->k->arg);
	uint8_t ek[SCS_KEY_LEN];
	char *enc = malloc(SCS_SYMLINK_ENC_BUF);
	if (!enc)
		return -ENOMEM;
	int r = d->k->epoch_key(d->k->arg, w, ek);
	if (!r)
		r = scs_symlink_encrypt(ek, w, dir_id, target, enc);
	scs_cleanse(ek, sizeof ek);
	if (!r)
		r = scs_dir_prepare_name(d, dpath, dir_id, name, rpath, cap);
	if (!r) {
		r = scs_be_symlink(d->be, enc, rpath);
		if (r < 0 && r != -EEXIST)
			scs_dir_drop_name(d, rpath);
	}
	free(enc);
	return r;
}

int scs_dir_readlink(scs_dirctx *d, const char *rpath, const uint8_t parent_id[SCS_DIR_ID_LEN],
		     char target[SCS_SYMLINK_MAX + 1])
{
	char *enc = malloc(SCS_SYMLINK_ENC_BUF);
	if (!enc)
		return -ENOMEM;
	int r = scs_be_readlink(d->be, rpath, enc, SCS_SYMLINK_ENC_BUF);
	if (r == -ENAMETOOLONG)
		r = -EBADMSG;
	uint32_t epoch = 0;
	if (r >= 0)
		r = scs_symlink_epoch(enc, &epoch) < 0 ? -EBADMSG : 0;
	uint8_t ek[SCS_KEY_LEN];
	if (!r) {
		r = d->k->epoch_key(d->k->arg, epoch, ek);
		if (r < 0)
			r = -EACCES;
	}
	if (!r) {
		r = scs_symlink_decrypt(ek, parent_id, enc, target);
		scs_cleanse(ek, sizeof ek);
		if (r >= 0)
			r = (int)strlen(target);
		else
			r = -EBADMSG;
	}
	free(enc);
	return r;
}

/* ---- walk ---- */

struct walk_item {
	char *stored;
	char *name;                      /* NULL: unreadable */
	struct scs_attr attr;
	uint32_t epoch;
	int bad;
};

struct walk_list {
	struct walk_item *v;
	size_t n, cap;
	int err;
};

static int walk_collect(void *arg, const struct scs_dirent *e)
{
	struct walk_list *l = arg;
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 32;
		struct walk_item *v = realloc(l->v, cap * sizeof *v);
		if (!v)
			return l->err = -ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	struct walk_item *it = &l->v[l->n];
	it->stored = strdup(e->stored);
	it->name = e->name ? strdup(e->name) : NULL;
	if (!it->stored || (e->name && !it->name)) {
		free(it->stored);
		free(it->name);
		return l->err = -ENOMEM;
	}
	it->attr = *e->attr;
	it->epoch = e->epoch;
	it->bad = e->bad;
	l->n++;
	return 0;
}

static void walk_list_free(struct walk_list *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->v[i].stored);
		free(l->v[i].name);
	}
	free(l->v);
}

static int walk_dir(scs_dirctx *d, const char *rpath, const uint8_t id[SCS_DIR_ID_LEN],
		    const char *display, scs_walk_cb cb, void *arg, int depth)
{
	if (depth > 256)
		return -ELOOP;
	struct walk_list l = { 0 };
	int r = scs_dir_list(d, rpath, id, display, SCS_DIR_LIST_BAD, walk_collect, &l);
	if (!r)
		r = l.err;
	char *crp = malloc(SCS_RPATH_MAX), *cpath = malloc(SCS_RPATH_MAX);
	if (!crp || !cpath)
		r = -ENOMEM;
	for (size_t i = 0; !r && i < l.n; i++) {
		struct walk_item *it = &l.v[i];
		const char *shown = it->name ? it->name : it->stored;
		r = scs_path_join(crp, SCS_RPATH_MAX, rpath, it->stored);
		if (!r)
			r = scs_path_join(cpath, SCS_RPATH_MAX, display, shown);
		if (r < 0)
			break;
		uint8_t cid[SCS_DIR_ID_LEN];
		struct scs_walk_entry e = {
			.path = cpath, .rpath = crp, .attr = &it->attr, .parent_id = id,
			.name_epoch = it->epoch, .bad = it->bad, .name_ok = !it->bad,
		};
		int descend = 0;
		if (!it->bad && S_ISDIR(it->attr.mode)) {
			int x = scs_dir_read_id(d, crp, cid);
			if (x == -ENOENT || x == -EBADMSG) {
				e.bad = -EBADMSG;
			} else if (x < 0) {
				r = x;
				break;
			} else {
				e.dir_id = cid;
				descend = 1;
			}
		}
		r = cb(arg, &e);
		if (!r && descend) {
			char *sub = strdup(cpath);
			r = sub ? walk_dir(d, crp, cid, sub, cb, arg, depth + 1) : -ENOMEM;
			free(sub);
		}
	}
	free(crp);
	free(cpath);
	walk_list_free(&l);
	return r;
}

int scs_dir_walk(scs_dirctx *d, const char *rpath, const uint8_t id[SCS_DIR_ID_LEN],
		 const char *display, scs_walk_cb cb, void *arg)
{
	return walk_dir(d, rpath, id, display ? display : "", cb, arg, 0);
}
