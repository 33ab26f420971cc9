/* file.c - the content engine: random-access plaintext reads and writes on
 * an encrypted object (format.h) through any back end.
 *
 * Locking: f->lock is a read/write lock; preads share it, every change
 * (pwrite, truncate, flush) holds it exclusively.  GCM contexts are not
 * thread-safe, so each call borrows one from a small per-file pool.
 * Scratch buffers are per thread (ciphertext needs no cleansing; the
 * plaintext chunk buffer is cleansed after every use and at thread exit).
 *
 * content_hash: f->hctx holds SHA-256 over records [0, f->hashed), all of
 * them final (never the last record, which still changes).  Sequential
 * writes extend it from the ciphertext they just wrote, so flush only
 * reads what is not hashed yet.  Snapshots of the state every SNAP_RECS
 * records let a write before f->hashed (out-of-order writeback, an edit)
 * rewind to the snapshot before it instead of to the start. */
#include "scs/file.h"

#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "scs/crypto.h"
#include "scs/format.h"
#include "scs/log.h"

#define C            ((uint64_t)SCS_CHUNK_SIZE)
#define OVH          ((uint64_t)SCS_RECORD_OVERHEAD)
#define BATCH_RECS   64          /* records per backend write (~2 MiB) */
#define GCM_POOL     4
#define SNAP_RECS    128         /* content-hash snapshot every 4 MiB */

struct scs_file {
	scs_backend *be;
	scs_obj *obj;
	const scs_keyctx *k;
	char *display;
	char *where;                 /* back-end path at open (the version memory) */
	int writable;
	int no_falloc;               /* back end cannot reserve space */
	int quiet;                   /* scs_file_verify: report in err, log nothing */

	uint32_t epoch;              /* f->h.epoch, fixed for the life of the scs_file */
	pthread_rwlock_t lock;
	scs_header h;
	uint8_t key[SCS_KEY_LEN];
	uint64_t size;               /* plaintext size */
	int dirty;

	EVP_MD_CTX *hctx;
	uint64_t hashed;
	EVP_MD_CTX **snap;           /* snap[j]: state after records [0, (j+1)*SNAP_RECS) */
	size_t nsnap, snapcap;

	/* Plaintext of the last record (writable files): appends and
	 * truncates re-seal it without reading and decrypting it again. */
	uint8_t *tail_mem, *tail, *tail2;
	uint64_t tail_idx;
	uint64_t tail_hw;            /* bytes of tail/tail2 that ever held plaintext */
	int tail_ok, tail2_set;

	/* Ciphertext of the last record as we last wrote it (lastct_ok):
	 * flush hashes it from here instead of reading back what it just
	 * wrote (a small file is one record: the whole file). */
	uint8_t *lastct;
	uint64_t lastct_idx;
	int lastct_ok;

	pthread_mutex_t pool_lock;
	scs_gcm *pool[GCM_POOL];
	int npool;
};

/* ---- per-thread scratch ---- */

struct tls {
	uint8_t *ct;                 /* ciphertext batch buffer */
	size_t ctcap;
	uint8_t pt[SCS_CHUNK_SIZE];  /* one plaintext chunk: cleansed after use */
	uint8_t rec[SCS_RECORD_SIZE];/* one old record being re-sealed */
};

static pthread_key_t tls_key;
static pthread_once_t tls_once = PTHREAD_ONCE_INIT;

static void tls_free(void *p)
{
	struct tls *t = p;
	scs_cleanse(t->pt, sizeof t->pt);
	free(t->ct);
	free(t);
}

static void tls_init(void)
{
	pthread_key_create(&tls_key, tls_free);
}

static struct tls *tls_get(void)
{
	pthread_once(&tls_once, tls_init);
	struct tls *t = pthread_getspecific(tls_key);
	if (!t) {
		t = calloc(1, sizeof *t);
		if (t && pthread_setspecific(tls_key, t)) {
			free(t);
			t = NULL;
		}
	}
	return t;
}

static uint8_t *tls_ct(struct tls *t, size_t need)
{
	if (need > t->ctcap) {
		size_t cap = t->ctcap ? t->ctcap : 256 * 1024;
		while (cap < need)
			cap *= 2;
		uint8_t *p = realloc(t->ct, cap);
		if (!p)
			return NULL;
		t->ct = p;
		t->ctcap = cap;
	}
	return t->ct;
}

/* ---- GCM context pool ---- */

static scs_gcm *gcm_get(scs_file *f)
{
	scs_gcm *g = NULL;
	pthread_mutex_lock(&f->pool_lock);
	if (f->npool)
		g = f->pool[--f->npool];
	pthread_mutex_unlock(&f->pool_lock);
	return g ? g : scs_gcm_new(f->key);
}

static void gcm_put(scs_file *f, scs_gcm *g)
{
	pthread_mutex_lock(&f->pool_lock);
	if (f->npool < GCM_POOL) {
		f->pool[f->npool++] = g;
		g = NULL;
	}
	pthread_mutex_unlock(&f->pool_lock);
	if (g)
		scs_gcm_free(g);
}

/* ---- size arithmetic ---- */

static inline uint64_t plain_len(uint64_t size, uint64_t idx)
{
	uint64_t last = scs_nrecords(size) - 1;
	return idx < last ? C : size - last * C;
}

uint64_t scs_file_plain_size(uint64_t object_size)
{
	uint64_t p;
	if (scs_plain_size(object_size, &p) < 0)
		return 0;
	return p;
}

static void auth_fail(const scs_file *f, const char *what)
{
	if (f->quiet)
		return;
	scs_log(SCS_LOG_ERR, "%s: authentication failed (%s); the file was altered or damaged",
		f->display, what);
}

static void record_fail(const scs_file *f, uint64_t idx)
{
	char what[64];
	snprintf(what, sizeof what, "record %" PRIu64, idx);
	auth_fail(f, what);
}

/* ---- verified headers ----
 * An Ed25519 verification costs ~60-190 us, more than the rest of an open;
 * files are opened again and again (builds, editors, grep).  Whether a
 * signature holds is a function of the header bytes and the public key
 * alone, so remember SHA-256(pub || header) of headers that verified.
 * writer_pub (membership, which can change) is still asked at every open. */

#define VC_SLOTS 4096
static pthread_mutex_t vc_lock = PTHREAD_MUTEX_INITIALIZER;
static uint8_t vc_digest[VC_SLOTS][SCS_SHA256_LEN];
static uint8_t vc_used[VC_SLOTS];

static int header_digest(const uint8_t pub[SCS_ED25519_PUB_LEN], const uint8_t *hb,
			 uint8_t out[SCS_SHA256_LEN], size_t *slot)
{
	uint8_t buf[SCS_ED25519_PUB_LEN + SCS_HEADER_SIZE];
	memcpy(buf, pub, SCS_ED25519_PUB_LEN);
	memcpy(buf + SCS_ED25519_PUB_LEN, hb, SCS_HEADER_SIZE);
	int r = scs_sha256(buf, sizeof buf, out);
	*slot = ((size_t)out[0] << 8 | out[1]) % VC_SLOTS;
	return r;
}

static int header_verified(const uint8_t dg[SCS_SHA256_LEN], size_t slot)
{
	pthread_mutex_lock(&vc_lock);
	int hit = vc_used[slot] && scs_ct_equal(vc_digest[slot], dg, SCS_SHA256_LEN);
	pthread_mutex_unlock(&vc_lock);
	return hit;
}

static void header_remember(const uint8_t dg[SCS_SHA256_LEN], size_t slot)
{
	pthread_mutex_lock(&vc_lock);
	memcpy(vc_digest[slot], dg, SCS_SHA256_LEN);
	vc_used[slot] = 1;
	pthread_mutex_unlock(&vc_lock);
}

/* ---- life cycle ---- */

static scs_file *file_alloc(scs_backend *be, const scs_keyctx *k, const char *display)
{
	scs_file *f = calloc(1, sizeof *f);
	if (!f)
		return NULL;
	f->display = strdup(display ? display : "(unnamed)");
	f->hctx = EVP_MD_CTX_new();
	pthread_rwlockattr_t ra;
	pthread_rwlockattr_init(&ra);
	pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	int bad = !f->display || !f->hctx || !EVP_DigestInit_ex(f->hctx, EVP_sha256(), NULL);
	pthread_rwlock_init(&f->lock, &ra);
	pthread_rwlockattr_destroy(&ra);
	pthread_mutex_init(&f->pool_lock, NULL);
	f->be = be;
	f->k = k;
	if (bad) {
		free(f->display);
		EVP_MD_CTX_free(f->hctx);
		pthread_rwlock_destroy(&f->lock);
		pthread_mutex_destroy(&f->pool_lock);
		free(f);
		return NULL;
	}
	return f;
}

static void file_free(scs_file *f)
{
	if (f->tail) {
		/* Only what ever held plaintext: cleansing 2 x 32 KiB was ~40k
		 * instructions per small file. */
		scs_cleanse(f->tail, f->tail_hw);
		scs_cleanse(f->tail2, f->tail_hw);
		free(f->tail_mem);
	}
	free(f->lastct);
	for (int i = 0; i < f->npool; i++)
		scs_gcm_free(f->pool[i]);
	scs_cleanse(f->key, sizeof f->key);
	EVP_MD_CTX_free(f->hctx);
	for (size_t i = 0; i < f->snapcap; i++)
		EVP_MD_CTX_free(f->snap[i]);
	free(f->snap);
	pthread_rwlock_destroy(&f->lock);
	pthread_mutex_destroy(&f->pool_lock);
	free(f->display);
	free(f->where);
	free(f);
}

/* Forget the hash of records idx and later (they changed): back to the
 * newest snapshot at or before idx. */
static void hash_rewind(scs_file *f, uint64_t idx)
{
	if (idx >= f->hashed)
		return;
	size_t j = (size_t)(idx / SNAP_RECS);      /* snapshots kept: [0, j) */
	if (j > f->nsnap)
		j = f->nsnap;
	if (j == 0 || !EVP_MD_CTX_copy_ex(f->hctx, f->snap[j - 1])) {
		EVP_DigestInit_ex(f->hctx, EVP_sha256(), NULL);
		j = 0;
	}
	f->nsnap = j;
	f->hashed = (uint64_t)j * SNAP_RECS;
}

/* Add final records [f->hashed, f->hashed + n) held in ct to the hash,
 * taking snapshots on the way. */
static void hash_records(scs_file *f, const uint8_t *ct, uint64_t n)
{
	while (n) {
		uint64_t to_snap = SNAP_RECS - f->hashed % SNAP_RECS;
		uint64_t k = n < to_snap ? n : to_snap;
		EVP_DigestUpdate(f->hctx, ct, k * SCS_RECORD_SIZE);
		ct += k * SCS_RECORD_SIZE;
		n -= k;
		f->hashed += k;
		size_t j = (size_t)(f->hashed / SNAP_RECS);
		if (f->hashed % SNAP_RECS == 0 && j == f->nsnap + 1) {
			if (f->nsnap == f->snapcap) {
				size_t cap = f->snapcap ? 2 * f->snapcap : 16;
				EVP_MD_CTX **v = realloc(f->snap, cap * sizeof *v);
				if (!v)
					continue;     /* no snapshot: only costs a longer rewind */
				memset(v + f->snapcap, 0, (cap - f->snapcap) * sizeof *v);
				f->snap = v;
				f->snapcap = cap;
			}
			if (!f->snap[f->nsnap])
				f->snap[f->nsnap] = EVP_MD_CTX_new();
			if (f->snap[f->nsnap] && EVP_MD_CTX_copy_ex(f->snap[f->nsnap], f->hctx))
				f->nsnap++;
		}
	}
}

/* Re-wrap the file key (the wrap AAD covers file_version and writer),
 * set content_hash, sign, and write the header. */
static int write_header(scs_file *f, const uint8_t content_hash[SCS_SHA256_LEN])
{
	const scs_keyctx *k = f->k;
	if (!k->sign_key || !k->self_fpr)
		return -EROFS;
	scs_header h = f->h;
	h.file_version++;
	memcpy(h.writer, k->self_fpr, SCS_FPR_LEN);
	memcpy(h.content_hash, content_hash, SCS_SHA256_LEN);
	uint8_t ek[SCS_KEY_LEN];
	int r = k->epoch_key(k->arg, h.epoch, ek);
	if (r < 0) {
		scs_log(SCS_LOG_ERR, "%s: cannot re-seal the header: the key of epoch %" PRIu32
			" is not available (%s)", f->display, h.epoch, strerror(-r));
		return -EACCES;
	}
	r = scs_filekey_wrap(ek, &h, f->key);
	scs_cleanse(ek, sizeof ek);
	if (r < 0)
		return r;
	r = scs_header_sign(&h, k->sign_key);
	if (r < 0)
		return r;
	uint8_t hb[SCS_HEADER_SIZE];
	r = scs_header_encode(&h, hb);
	if (r < 0)
		return r;
	ssize_t w = scs_obj_pwrite(f->obj, hb, sizeof hb, 0);
	if (w < 0)
		return (int)w;
	f->h = h;
	if (k->observe)
		k->observe(k->arg, &h, f->where, 1, NULL);
	return 0;
}

/* Remember rec (the ciphertext of last record idx, len bytes) for flush. */
static void lastct_keep(scs_file *f, uint64_t idx, const uint8_t *rec, uint64_t len)
{
	f->lastct_ok = 0;
	if (len > SCS_RECORD_SIZE)
		return;
	if (!f->lastct && !(f->lastct = malloc(SCS_RECORD_SIZE)))
		return;
	memcpy(f->lastct, rec, len);
	f->lastct_idx = idx;
	f->lastct_ok = 1;
}

int scs_file_create(scs_backend *be, const char *path, uint32_t mode,
		    const scs_keyctx *k, const char *display, scs_file **out)
{
	*out = NULL;
	if (!k->sign_key || !k->self_fpr)
		return -EROFS;
	scs_file *f = file_alloc(be, k, display ? display : path);
	if (!f)
		return -ENOMEM;
	f->writable = 1;
	f->where = k->observe ? strdup(path) : NULL;
	uint8_t ek[SCS_KEY_LEN];
	uint8_t obj[SCS_HEADER_SIZE + SCS_RECORD_OVERHEAD];
	scs_gcm *g = NULL;
	f->h.version = SCS_FORMAT_VERSION;
	f->h.epoch = k->write_epoch(k->arg);
	f->h.file_version = 0;      /* write_header makes it 1 */
	int r = scs_random(f->h.file_id, sizeof f->h.file_id);
	if (!r)
		r = scs_random(f->key, sizeof f->key);
	if (!r)
		r = k->epoch_key(k->arg, f->h.epoch, ek);
	if (r < 0)
		goto fail;
	scs_cleanse(ek, sizeof ek);
	g = gcm_get(f);
	if (!g) {
		r = -ENOMEM;
		goto fail;
	}
	/* The empty last record. */
	uint8_t *rec = obj + SCS_HEADER_SIZE;
	r = scs_chunk_seal(g, f->h.file_id, 0, 1, NULL, 0, rec);
	gcm_put(f, g);
	if (r < 0)
		goto fail;
	r = scs_be_open(be, path, O_RDWR | O_CREAT | O_EXCL, mode, &f->obj);
	if (r < 0)
		goto fail;
	/* Only the record now: the header is signed once, at the first flush,
	 * fsync or close (f->dirty), over whatever was written by then.  A file
	 * created, written and closed is signed once, not twice (an Ed25519
	 * signature is ~50 us, the largest cost of a small file).  Until that
	 * flush the header bytes are zeros: the object is not valid yet, as an
	 * object being written is not complete; flush, fsync and close return
	 * only after the signed header is written. */
	ssize_t w = scs_obj_pwrite(f->obj, rec, SCS_RECORD_OVERHEAD, SCS_HEADER_SIZE);
	r = w < 0 ? (int)w : 0;
	if (r < 0) {
		scs_obj_close(f->obj);
		scs_be_unlink(be, path);
		goto fail;
	}
	f->size = 0;
	f->epoch = f->h.epoch;
	f->dirty = 1;
	lastct_keep(f, 0, rec, SCS_RECORD_OVERHEAD);
	*out = f;
	return 0;
fail:
	scs_cleanse(ek, sizeof ek);
	file_free(f);
	return r;
}

/* Open and authenticate the header.  log: one log line on failure;
 * err: the reason for scsctl verify. */
static int open_impl(scs_backend *be, const char *path, int writable, const scs_keyctx *k,
		     const char *display, scs_file **out, scs_err *err, int log)
{
	*out = NULL;
	if (writable && (!k->sign_key || !k->self_fpr))
		return scs_err_set(err, -EROFS, "read-only: no signing key");
	scs_file *f = file_alloc(be, k, display ? display : path);
	if (!f)
		return scs_err_set(err, -ENOMEM, "out of memory");
	f->writable = writable;
	f->quiet = !log;
	f->where = k->observe && writable ? strdup(path) : NULL;
	const char *what = NULL;
	int r = scs_be_open(be, path, writable ? O_RDWR : O_RDONLY, 0, &f->obj);
	if (r < 0) {
		scs_err_set(err, r, "cannot open: %s", strerror(-r));
		file_free(f);
		return r;
	}
	struct scs_attr a;
	uint8_t hb[SCS_HEADER_SIZE];
	uint8_t pub[SCS_ED25519_PUB_LEN];
	uint8_t ek[SCS_KEY_LEN];
	r = scs_obj_fstat(f->obj, &a);
	if (r < 0) {
		scs_err_set(err, r, "cannot stat: %s", strerror(-r));
		goto fail;
	}
	if (scs_plain_size(a.size, &f->size) < 0) {
		what = "object size is not that of any valid object";
		goto bad;
	}
	ssize_t n = scs_obj_pread(f->obj, hb, sizeof hb, 0);
	if (n < 0) {
		r = (int)n;
		scs_err_set(err, r, "cannot read: %s", strerror(-r));
		goto fail;
	}
	if (n != (ssize_t)sizeof hb || scs_header_decode(hb, sizeof hb, &f->h) < 0) {
		int cv = n == (ssize_t)sizeof hb ? scs_header_claimed_version(hb, sizeof hb) : -1;
		if (cv > SCS_FORMAT_VERSION)
			what = "header is malformed: it claims a newer format version, which this "
			       "scsfs does not read (upgrade scsfs, or the file was altered)";
		else
			what = "header is malformed";
		goto bad;
	}
	scs_err why = { 0 };
	r = k->writer_pub(k->arg, f->h.writer, &f->h, pub, &why);
	if (r == -EKEYREJECTED) {
		/* A removed member writing with a cached old epoch key. */
		r = -EACCES;
		if (log)
			scs_log(SCS_LOG_ERR, "%s: %s; refusing it", f->display, why.msg);
		scs_err_set(err, r, "%s; refusing it", why.msg);
		goto fail;
	}
	if (r == -EKEYREVOKED) {
		/* A completed re-key retired this epoch: an old copy put back. */
		r = -EACCES;
		if (log)
			scs_log(SCS_LOG_ERR, "%s: written in epoch %" PRIu32 ", which was retired "
				"after a re-key (an old copy put back?); refused", f->display, f->h.epoch);
		scs_err_set(err, r, "written in epoch %" PRIu32 ", which was retired after a re-key "
			    "(an old copy put back?)", f->h.epoch);
		goto fail;
	}
	if (r < 0) {
		what = "signed by someone who is not a member allowed to write";
		goto bad;
	}
	uint8_t dg[SCS_SHA256_LEN];
	size_t slot;
	int dgok = header_digest(pub, hb, dg, &slot) == 0;
	if (!dgok || !header_verified(dg, slot)) {
		if (scs_header_verify(&f->h, pub) < 0) {
			what = "header signature";
			goto bad;
		}
		if (dgok)
			header_remember(dg, slot);
	}
	r = k->epoch_key(k->arg, f->h.epoch, ek);
	if (r < 0) {
		r = -EACCES;
		if (log)
			scs_log(SCS_LOG_ERR, "%s: written in epoch %" PRIu32 ", whose key this "
				"member does not have or that was retired; ask an admin",
				f->display, f->h.epoch);
		scs_err_set(err, r, "written in epoch %" PRIu32 ", whose key this member "
			    "does not have or that was retired", f->h.epoch);
		goto fail;
	}
	r = scs_filekey_unwrap(ek, &f->h, f->key);
	scs_cleanse(ek, sizeof ek);
	if (r < 0) {
		what = "file key";
		goto bad;
	}
	f->epoch = f->h.epoch;
	/* An old version put back by the folder (seen.h)?  Refused as
	 * tampering is: the signature holds, but it is not the current file. */
	uint64_t newer = 0;
	if (k->observe && k->observe(k->arg, &f->h, path, 0, &newer) == 1) {
		r = -EBADMSG;
		if (log)
			scs_log(SCS_LOG_ERR, "%s: the folder returned version %" PRIu64 " of this "
				"file, but this member already saw version %" PRIu64 ": an old copy "
				"was replayed; refusing it (if a member restored it on purpose, run "
				"`scsctl forget %s`)", f->display, f->h.file_version, newer, f->display);
		scs_err_set(err, -ESTALE, "the folder returned version %" PRIu64 " of this file, "
			    "but this member already saw version %" PRIu64 ": an old copy was "
			    "replayed", f->h.file_version, newer);
		goto fail;
	}
	/* A header we re-sign keeps its epoch (moving the file to a newer
	 * epoch takes a fresh file key: scs_file_rewrite, the re-key pass),
	 * and the others accept our signature on it only if we were a
	 * member in that epoch. */
	if (writable && k->writer_pub(k->arg, k->self_fpr, &f->h, pub, NULL) < 0) {
		r = -EACCES;
		if (log)
			scs_log(SCS_LOG_WARN, "%s: written in epoch %" PRIu32 ", before you joined; "
				"it can be changed once the re-key pass moved it to the current "
				"epoch (scsctl rekey run)", f->display, f->h.epoch);
		scs_err_set(err, r, "written in epoch %" PRIu32 ", before this member joined",
			    f->h.epoch);
		goto fail;
	}
	*out = f;
	return 0;
bad:
	r = -EBADMSG;
	if (log)
		auth_fail(f, what);
	scs_err_set(err, r, "authentication failed (%s); the file was altered or damaged", what);
fail:
	scs_obj_close(f->obj);
	file_free(f);
	return r;
}

int scs_file_open(scs_backend *be, const char *path, int writable,
		  const scs_keyctx *k, const char *display, scs_file **out)
{
	return open_impl(be, path, writable, k, display, out, NULL, 1);
}

/* ---- reads ---- */

/* Read records [first, last] of a file of the given size into the thread's
 * ct buffer: returns the buffer or NULL with *r set. */
static uint8_t *read_records(scs_file *f, struct tls *t, uint64_t size, uint64_t first,
			     uint64_t last, int *r)
{
	uint64_t len = (last - first) * SCS_RECORD_SIZE + plain_len(size, last) + OVH;
	uint8_t *ct = tls_ct(t, len);
	if (!ct) {
		*r = -ENOMEM;
		return NULL;
	}
	ssize_t n = scs_obj_pread(f->obj, ct, len, scs_record_offset(first));
	if (n < 0) {
		*r = (int)n;
		return NULL;
	}
	if ((uint64_t)n != len) {
		/* The object shrank under us: a record went missing. */
		record_fail(f, first + (uint64_t)n / SCS_RECORD_SIZE);
		*r = -EBADMSG;
		return NULL;
	}
	return ct;
}

ssize_t scs_file_pread(scs_file *f, void *buf, size_t n, uint64_t off)
{
	struct tls *t = tls_get();
	if (!t)
		return -ENOMEM;
	pthread_rwlock_rdlock(&f->lock);
	uint64_t size = f->size;
	ssize_t ret = 0;
	if (off >= size || n == 0)
		goto out;
	if (n > size - off)
		n = size - off;
	uint64_t first = off / C, last = (off + n - 1) / C;
	uint64_t lastrec = scs_nrecords(size) - 1;
	int r = 0;
	uint8_t *ct = read_records(f, t, size, first, last, &r);
	if (!ct) {
		ret = r;
		goto out;
	}
	scs_gcm *g = gcm_get(f);
	if (!g) {
		ret = -ENOMEM;
		goto out;
	}
	uint8_t *dst = buf;
	for (uint64_t i = first; i <= last; i++) {
		uint64_t plen = plain_len(size, i);
		const uint8_t *rec = ct + (i - first) * SCS_RECORD_SIZE;
		uint64_t cs = i * C;
		uint64_t a = off > cs ? off - cs : 0;
		uint64_t b = off + n < cs + plen ? off + n - cs : plen;
		if (a == 0 && b == plen) {
			/* Whole chunk wanted: decrypt straight into the caller's buffer. */
			r = scs_chunk_open(g, f->h.file_id, i, i == lastrec, rec, plen + OVH, dst);
			if (r < 0)
				scs_cleanse(dst, plen);
		} else {
			r = scs_chunk_open(g, f->h.file_id, i, i == lastrec, rec, plen + OVH, t->pt);
			if (!r)
				memcpy(dst, t->pt + a, b - a);
			scs_cleanse(t->pt, plen);
		}
		if (r < 0) {
			if (r == -EBADMSG)
				record_fail(f, i);
			ret = r;
			break;
		}
		dst += b - a;
	}
	gcm_put(f, g);
	if (!ret)
		ret = (ssize_t)n;
out:
	pthread_rwlock_unlock(&f->lock);
	return ret;
}

/* ---- writes ---- */

/* Decrypt old record idx of a file of old_size into pt. */
static int read_old(scs_file *f, struct tls *t, scs_gcm *g, uint64_t old_size, uint64_t idx,
		    uint8_t *pt)
{
	uint64_t plen = plain_len(old_size, idx);
	if (f->tail_ok && idx == f->tail_idx) {
		memcpy(pt, f->tail, plen);
		return 0;
	}
	ssize_t n = scs_obj_pread(f->obj, t->rec, plen + OVH, scs_record_offset(idx));
	if (n < 0)
		return (int)n;
	int last = idx == scs_nrecords(old_size) - 1;
	int r = (uint64_t)n != plen + OVH ? -EBADMSG
		: scs_chunk_open(g, f->h.file_id, idx, last, t->rec, plen + OVH, pt);
	if (r == -EBADMSG)
		record_fail(f, idx);
	return r;
}

static const uint8_t zero_chunk[SCS_CHUNK_SIZE];

/* Seal records [b0, b1] of the new content into ct: the file goes from
 * old_size to new_size and [off, end) takes src (NULL: zeros).  Returns
 * the byte count or a negative errno. */
static int64_t seal_batch(scs_file *f, struct tls *t, scs_gcm *g, uint8_t *ct,
			  uint64_t b0, uint64_t b1, uint64_t old_size, uint64_t new_size,
			  const uint8_t *src, uint64_t off, uint64_t end)
{
	uint64_t old_nrec = scs_nrecords(old_size);
	uint64_t new_last = scs_nrecords(new_size) - 1;
	uint64_t pos = 0;
	for (uint64_t i = b0; i <= b1; i++) {
		uint64_t plen = plain_len(new_size, i);
		uint64_t cs = i * C;
		/* The part of this chunk the write covers: [a, b). */
		uint64_t a = 0, b = 0;
		if (off < cs + plen && end > cs) {
			a = off > cs ? off - cs : 0;
			b = end < cs + plen ? end - cs : plen;
		}
		const uint8_t *pt;
		if (a == 0 && b == plen) {
			pt = src ? src + (cs - off) : zero_chunk;
		} else {
			uint64_t olen = i < old_nrec ? plain_len(old_size, i) : 0;
			uint64_t keep = 0;      /* old bytes kept at the start */
			if (olen && !(a == 0 && b >= olen)) {
				int r = read_old(f, t, g, old_size, i, t->pt);
				if (r < 0) {
					scs_cleanse(t->pt, olen);
					return r;
				}
				keep = olen;
			}
			if (keep < plen)
				memset(t->pt + keep, 0, plen - keep);
			if (b > a) {
				if (src)
					memcpy(t->pt + a, src + (cs + a - off), b - a);
				else
					memset(t->pt + a, 0, b - a);
			}
			pt = t->pt;
		}
		if (i == new_last && f->tail) {
			if (plen > f->tail_hw)
				f->tail_hw = plen;
			memcpy(f->tail2, pt, plen);
			f->tail2_set = 1;
		}
		int r = scs_chunk_seal(g, f->h.file_id, i, i == new_last, pt, plen, ct + pos);
		if (pt == t->pt)
			scs_cleanse(t->pt, plen);
		if (r < 0)
			return r;
		pos += plen + OVH;
	}
	return (int64_t)pos;
}

/* Write [off, off+n) (src NULL: zeros), growing the file as needed.  Caller
 * holds the write lock; n > 0. */
static int tail_alloc(scs_file *f)
{
	if (!f->tail_mem) {
		f->tail_mem = malloc(2 * SCS_CHUNK_SIZE);
		if (!f->tail_mem)
			return -ENOMEM;
		f->tail = f->tail_mem;
		f->tail2 = f->tail_mem + SCS_CHUNK_SIZE;
	}
	return 0;
}

/* The staged tail (tail2) becomes the plaintext of last record idx. */
static void tail_commit(scs_file *f, uint64_t idx)
{
	if (!f->tail2_set)
		return;
	uint8_t *x = f->tail;
	f->tail = f->tail2;
	f->tail2 = x;
	f->tail_idx = idx;
	f->tail_ok = 1;
	f->tail2_set = 0;
}

static int write_locked(scs_file *f, const uint8_t *src, uint64_t n, uint64_t off)
{
	struct tls *t = tls_get();
	if (!t || tail_alloc(f))
		return -ENOMEM;
	uint64_t old_size = f->size, end = off + n;
	if (end < off || end > SCS_PLAIN_SIZE_MAX)
		return -EFBIG;
	uint64_t new_size = end > old_size ? end : old_size;
	uint64_t old_nrec = scs_nrecords(old_size);
	uint64_t new_nrec = scs_nrecords(new_size);
	uint64_t new_last_idx = new_nrec - 1;
	uint64_t r0 = off / C, r1 = (end - 1) / C;
	/* Growing: the old last record is re-sealed (it stops being last, or
	 * takes the zeros of the gap). */
	if (new_size > old_size && old_nrec - 1 < r0)
		r0 = old_nrec - 1;
	uint64_t old_obj = scs_object_size(old_size), new_obj = scs_object_size(new_size);
	int r;
	if (new_last_idx <= r1)         /* the last record changes */
		f->lastct_ok = 0;
	if (new_obj > old_obj && !f->no_falloc) {
		/* Reserve first, so a full disk fails here and not half-way
		 * through re-sealing the last record. */
		r = scs_obj_fallocate(f->obj, old_obj, new_obj - old_obj);
		if (r == -EOPNOTSUPP || r == -ENOTSUP) {
			f->no_falloc = 1;
		} else if (r < 0) {
			scs_obj_ftruncate(f->obj, old_obj);
			return r;
		}
	}
	scs_gcm *g = gcm_get(f);
	if (!g)
		return -ENOMEM;
	/* seal_batch stages the new last record's plaintext in tail2 (the
	 * old one in tail may still be needed by an earlier batch). */
	f->tail2_set = 0;
	/* Batches from the end backwards: records past the old end go first,
	 * so a failure before the old records are touched can be undone by
	 * cutting the object back. */
	uint64_t nb = (r1 - r0) / BATCH_RECS + 1;
	uint8_t *ct = NULL;
	int touched_old = 0;
	for (uint64_t bi = nb; bi-- > 0;) {
		uint64_t b0 = r0 + bi * BATCH_RECS;
		uint64_t b1 = b0 + BATCH_RECS - 1 < r1 ? b0 + BATCH_RECS - 1 : r1;
		ct = tls_ct(t, (b1 - b0 + 1) * SCS_RECORD_SIZE);
		int64_t len = ct ? seal_batch(f, t, g, ct, b0, b1, old_size, new_size, src, off, end)
				 : -ENOMEM;
		ssize_t w = (ssize_t)len;
		uint64_t boff = scs_record_offset(b0);
		if (len >= 0 && f->no_falloc && boff < old_obj && boff + (uint64_t)len > old_obj) {
			/* Nothing reserved: write what lies past the old end first,
			 * so running out of space there leaves the old records whole. */
			uint64_t split = old_obj - boff;
			w = scs_obj_pwrite(f->obj, ct + split, (size_t)len - split, old_obj);
			if (w >= 0) {
				touched_old = 1;
				w = scs_obj_pwrite(f->obj, ct, split, boff);
			}
		} else if (len >= 0) {
			touched_old |= boff < old_obj;
			w = scs_obj_pwrite(f->obj, ct, (size_t)len, boff);
		}
		if (w < 0) {
			gcm_put(f, g);
			f->tail_ok = 0;
			if (!touched_old) {
				/* Nothing old was overwritten: put the object back. */
				if (new_obj > old_obj)
					scs_obj_ftruncate(f->obj, old_obj);
			} else {
				scs_log(SCS_LOG_ERR, "%s: write failed half-way (%s); the file "
					"may be damaged", f->display, strerror((int)-w));
				f->dirty = 1;
				hash_rewind(f, r0); /* records from r0 on may have changed */
			}
			return (int)w;
		}
	}
	gcm_put(f, g);
	f->size = new_size;
	f->dirty = 1;
	tail_commit(f, new_last_idx);
	/* ct holds records [r0, min(r1, r0+BATCH-1)] (the last batch written). */
	if (new_last_idx >= r0 && new_last_idx - r0 < BATCH_RECS && new_last_idx <= r1)
		lastct_keep(f, new_last_idx, ct + (new_last_idx - r0) * SCS_RECORD_SIZE,
			    plain_len(new_size, new_last_idx) + OVH);
	/* content_hash bookkeeping. */
	hash_rewind(f, r0);
	if (r0 == f->hashed) {
		uint64_t b1 = r0 + BATCH_RECS - 1 < r1 ? r0 + BATCH_RECS - 1 : r1;
		uint64_t upto = b1 < new_nrec - 1 ? b1 : new_nrec - 2; /* final records only */
		if (new_nrec >= 2 && upto >= r0) {
			hash_records(f, ct, upto - r0 + 1);
		}
	}
	return 0;
}

ssize_t scs_file_pwrite(scs_file *f, const void *buf, size_t n, uint64_t off)
{
	if (!f->writable)
		return -EBADF;
	if (n == 0)
		return 0;
	pthread_rwlock_wrlock(&f->lock);
	int r = write_locked(f, buf, n, off);
	pthread_rwlock_unlock(&f->lock);
	return r < 0 ? r : (ssize_t)n;
}

int scs_file_truncate(scs_file *f, uint64_t size)
{
	if (!f->writable)
		return -EBADF;
	pthread_rwlock_wrlock(&f->lock);
	uint64_t old = f->size;
	int r = 0;
	if (size < old)
		f->lastct_ok = 0;
	if (size > old) {
		r = write_locked(f, NULL, size - old, old);
	} else if (size < old) {
		struct tls *t = tls_get();
		scs_gcm *g = t ? gcm_get(f) : NULL;
		if (!g) {
			r = -ENOMEM;
			goto out;
		}
		/* Re-seal the new last chunk with last=1, then cut the object. */
		uint64_t last = scs_nrecords(size) - 1;
		uint64_t plen = plain_len(size, last);
		uint8_t rec[SCS_RECORD_SIZE];
		if (plen)
			r = read_old(f, t, g, old, last, t->pt);
		if (!r)
			r = scs_chunk_seal(g, f->h.file_id, last, 1, t->pt, plen, rec);
		f->tail_ok = 0;
		f->tail2_set = 0;
		if (!r && !tail_alloc(f)) {
			if (plen > f->tail_hw)
				f->tail_hw = plen;
			memcpy(f->tail2, t->pt, plen);
			f->tail2_set = 1;
		}
		scs_cleanse(t->pt, plen);
		gcm_put(f, g);
		if (r < 0)
			goto out;
		ssize_t w = scs_obj_pwrite(f->obj, rec, plen + OVH, scs_record_offset(last));
		if (w < 0) {
			r = (int)w;
			goto out;
		}
		r = scs_obj_ftruncate(f->obj, scs_object_size(size));
		if (r < 0) {
			scs_log(SCS_LOG_ERR, "%s: truncate failed half-way (%s); the file may be "
				"damaged", f->display, strerror(-r));
			f->dirty = 1;
			goto out;
		}
		f->size = size;
		f->dirty = 1;
		tail_commit(f, last);
		lastct_keep(f, last, rec, plen + OVH);
		hash_rewind(f, last);
	}
out:
	pthread_rwlock_unlock(&f->lock);
	return r;
}

uint64_t scs_file_size(scs_file *f)
{
	pthread_rwlock_rdlock(&f->lock);
	uint64_t s = f->size;
	pthread_rwlock_unlock(&f->lock);
	return s;
}

uint32_t scs_file_epoch(scs_file *f)
{
	return f->epoch;
}

void scs_file_set_display(scs_file *f, const char *display)
{
	char *d = strdup(display ? display : "(unnamed)");
	if (!d)
		return;
	pthread_rwlock_wrlock(&f->lock);
	char *old = f->display;
	f->display = d;
	pthread_rwlock_unlock(&f->lock);
	free(old);
}

/* ---- flush ---- */

/* Finish content_hash: hash the records not hashed yet (reading them), the
 * final ones into f->hctx for next time, the last record into a copy. */
static int content_hash(scs_file *f, uint8_t out[SCS_SHA256_LEN])
{
	struct tls *t = tls_get();
	if (!t)
		return -ENOMEM;
	uint64_t lastrec = scs_nrecords(f->size) - 1;
	int r = 0;
	while (f->hashed < lastrec) {
		uint64_t last = f->hashed + BATCH_RECS - 1;
		if (last > lastrec - 1)
			last = lastrec - 1;
		uint8_t *ct = read_records(f, t, f->size, f->hashed, last, &r);
		if (!ct)
			return r;
		hash_records(f, ct, last - f->hashed + 1);
	}
	uint8_t *ct = f->lastct_ok && f->lastct_idx == lastrec ? f->lastct
		    : read_records(f, t, f->size, lastrec, lastrec, &r);
	if (!ct)
		return r;
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	unsigned int len = 0;
	if (!c || !EVP_MD_CTX_copy_ex(c, f->hctx)
	    || !EVP_DigestUpdate(c, ct, plain_len(f->size, lastrec) + OVH)
	    || !EVP_DigestFinal_ex(c, out, &len))
		r = -EIO;
	EVP_MD_CTX_free(c);
	return r;
}

static int flush_locked(scs_file *f)
{
	if (!f->dirty)
		return 0;
	uint8_t hash[SCS_SHA256_LEN];
	int r = content_hash(f, hash);
	if (!r)
		r = write_header(f, hash);
	if (!r)
		f->dirty = 0;
	return r;
}

int scs_file_flush(scs_file *f)
{
	pthread_rwlock_wrlock(&f->lock);
	int r = flush_locked(f);
	if (!r && f->writable)
		r = scs_obj_flush(f->obj);   /* durable on this machine at close(2) */
	pthread_rwlock_unlock(&f->lock);
	return r;
}

int scs_file_sync(scs_file *f, int datasync)
{
	pthread_rwlock_wrlock(&f->lock);
	int r = flush_locked(f);
	if (!r && f->writable) {
		r = scs_obj_fsync(f->obj, datasync);
		if (r == -ENOTSUP)
			r = 0;
	}
	pthread_rwlock_unlock(&f->lock);
	return r;
}

int scs_file_close(scs_file *f)
{
	if (!f)
		return 0;
	int r = scs_file_flush(f);
	int c = scs_obj_close(f->obj);
	file_free(f);
	return r ? r : c;
}

int scs_file_discard(scs_file *f)
{
	if (!f)
		return 0;
	int c = scs_obj_close(f->obj);
	file_free(f);
	return c;
}

/* ---- verify ---- */

int scs_file_verify(scs_backend *be, const char *path, const scs_keyctx *k, scs_err *err)
{
	scs_file *f;
	int r = open_impl(be, path, 0, k, path, &f, err, 0);
	if (r < 0)
		return r;
	struct tls *t = tls_get();
	scs_gcm *g = t ? gcm_get(f) : NULL;
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	if (!g || !c || !EVP_DigestInit_ex(c, EVP_sha256(), NULL)) {
		r = scs_err_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	uint64_t lastrec = scs_nrecords(f->size) - 1;
	for (uint64_t first = 0; first <= lastrec; first += BATCH_RECS) {
		uint64_t last = first + BATCH_RECS - 1 < lastrec ? first + BATCH_RECS - 1 : lastrec;
		uint8_t *ct = read_records(f, t, f->size, first, last, &r);
		if (!ct) {
			if (r == -EBADMSG)
				scs_err_set(err, r, "authentication failed (the object is shorter "
					    "than its records)");
			else
				scs_err_set(err, r, "cannot read record %" PRIu64 ": %s", first,
					    strerror(-r));
			goto out;
		}
		for (uint64_t i = first; i <= last; i++) {
			uint64_t plen = plain_len(f->size, i);
			r = scs_chunk_open(g, f->h.file_id, i, i == lastrec,
					   ct + (i - first) * SCS_RECORD_SIZE, plen + OVH, t->pt);
			scs_cleanse(t->pt, plen);
			if (r < 0) {
				scs_err_set(err, -EBADMSG, "authentication failed (record %"
					    PRIu64 " of %" PRIu64 "); the file was altered or damaged",
					    i, lastrec + 1);
				r = -EBADMSG;
				goto out;
			}
		}
		EVP_DigestUpdate(c, ct, (last - first) * SCS_RECORD_SIZE
				 + plain_len(f->size, last) + OVH);
	}
	uint8_t hash[SCS_SHA256_LEN];
	unsigned int hl;
	if (!EVP_DigestFinal_ex(c, hash, &hl)) {
		r = scs_err_set(err, -EIO, "hash failure");
		goto out;
	}
	if (!scs_ct_equal(hash, f->h.content_hash, sizeof hash)) {
		r = scs_err_set(err, -EBADMSG, "authentication failed (content hash: the "
				"records are not the ones the writer signed); the file was altered "
				"or damaged");
		goto out;
	}
	r = 0;
out:
	EVP_MD_CTX_free(c);
	if (g)
		gcm_put(f, g);
	scs_file_close(f);
	return r;
}

/* ---- re-encryption ---- */

/* One read of the source: each batch of records is hashed (content_hash),
 * authenticated and decrypted into private buffers (pwrite on dst uses the
 * thread's own), then written to dst; dst is dropped unless the whole
 * source authenticated, so damage is never laundered into a valid file. */
int scs_file_rewrite(scs_backend *be, const char *src, const char *dst, uint32_t mode,
		     const scs_keyctx *k, const char *display, scs_err *err)
{
	scs_err_clear(err);
	scs_file *in = NULL, *out = NULL;
	int r = open_impl(be, src, 0, k, display ? display : src, &in, err, 0);
	if (r < 0)
		return r;
	r = scs_file_create(be, dst, mode, k, display ? display : dst, &out);
	if (r < 0) {
		scs_file_close(in);
		return scs_err_set(err, r, "cannot create the new object: %s", strerror(-r));
	}
	uint8_t *ct = malloc(BATCH_RECS * SCS_RECORD_SIZE), *pt = malloc(BATCH_RECS * C);
	scs_gcm *g = gcm_get(in);
	EVP_MD_CTX *hc = EVP_MD_CTX_new();
	if (!ct || !pt || !g || !hc || !EVP_DigestInit_ex(hc, EVP_sha256(), NULL))
		r = scs_err_set(err, -ENOMEM, "out of memory");
	uint64_t lastrec = scs_nrecords(in->size) - 1;
	for (uint64_t first = 0; !r && first <= lastrec; first += BATCH_RECS) {
		uint64_t last = first + BATCH_RECS - 1 < lastrec ? first + BATCH_RECS - 1 : lastrec;
		uint64_t plain = (last - first) * C + plain_len(in->size, last);
		uint64_t len = plain + (last - first + 1) * OVH;
		ssize_t n = scs_obj_pread(in->obj, ct, len, scs_record_offset(first));
		if (n < 0) {
			r = scs_err_set(err, (int)n, "cannot read: %s", strerror((int)-n));
			break;
		}
		if ((uint64_t)n != len) {
			r = scs_err_set(err, -EBADMSG, "authentication failed (the object is shorter "
					"than its records)");
			break;
		}
		for (uint64_t i = first; !r && i <= last; i++)
			if (scs_chunk_open(g, in->h.file_id, i, i == lastrec,
					   ct + (i - first) * SCS_RECORD_SIZE, plain_len(in->size, i) + OVH,
					   pt + (i - first) * C) < 0)
				r = scs_err_set(err, -EBADMSG, "authentication failed (record %" PRIu64
						" of %" PRIu64 "); the file was altered or damaged",
						i, lastrec + 1);
		if (r)
			break;
		EVP_DigestUpdate(hc, ct, len);
		if (plain && (n = scs_file_pwrite(out, pt, plain, first * C)) != (ssize_t)plain)
			r = scs_err_set(err, n < 0 ? (int)n : -EIO, "cannot write the new object: %s",
					strerror(n < 0 ? (int)-n : EIO));
	}
	uint8_t hash[SCS_SHA256_LEN];
	unsigned int hl;
	if (!r && !EVP_DigestFinal_ex(hc, hash, &hl))
		r = scs_err_set(err, -EIO, "hash failure");
	if (!r && !scs_ct_equal(hash, in->h.content_hash, sizeof hash))
		r = scs_err_set(err, -EBADMSG, "authentication failed (content hash: the records "
				"are not the ones the writer signed); the file was altered or damaged");
	EVP_MD_CTX_free(hc);
	if (g)
		gcm_put(in, g);
	if (pt) {
		scs_cleanse(pt, BATCH_RECS * C);
		free(pt);
	}
	free(ct);
	scs_file_close(in);
	if (!r && (r = scs_file_sync(out, 0)) < 0)
		scs_err_set(err, r, "cannot write the new object: %s", strerror(-r));
	int c = scs_file_close(out);
	if (!r && c < 0)
		r = scs_err_set(err, c, "cannot write the new object: %s", strerror(-c));
	if (r < 0)
		scs_be_unlink(be, dst);
	return r;
}
