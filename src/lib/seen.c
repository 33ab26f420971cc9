/* seen.c - this member's memory of file versions, for replay detection
 * (seen.h).
 *
 * Memory: a chained hash table of file ids, each with up to SCS_SEEN_KEEP
 * (version, content hash prefix, seq) pairs; seq is the order in which the
 * pairs were met (the log order), the least recently met is dropped first.
 *
 * File: records appended without a lock, after checking that the file at
 * the path is still the one open (a record lost to a race with another
 * process's rewrite only weakens detection); rewrites and forget records take an
 * exclusive flock on the file and first check it is still the one at the
 * path (another process may have rewritten it), so a forget is never lost
 * and a rewrite never drops another process's records it did not read. */
#include "scs/seen.h"
#include "scs/b64.h"
#include "scs/buf.h"
#include "scs/config.h"
#include "scs/log.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define REC          SCS_SEEN_RECORD_SIZE
#define HLEN         16                  /* bytes of content_hash kept in memory */
#define RHLEN        28                  /* bytes of content_hash in a record */
#define COMPACT_MIN  1024                /* records before a rewrite is considered */
#define LOAD_MAX     ((off_t)256 << 20)  /* a larger file is not ours: start afresh */
#define READ_RECS    256

struct pair {
	uint64_t version, seq;
	uint32_t where;              /* where it was met last (where_of) */
	uint8_t h[HLEN];
};

struct ent {
	struct ent *next;
	uint8_t fid[SCS_FILE_ID_LEN];
	unsigned n;
	struct pair p[SCS_SEEN_KEEP];
};

struct scs_seen {
	pthread_mutex_t mu;
	char *path;                  /* NULL: memory only */
	int fd;                      /* -1: no file */
	dev_t dev;
	ino_t ino;
	off_t off;                   /* bytes of the file applied to memory */
	uint64_t frecs;              /* records in the file, as far as we know */
	struct ent **tab;
	size_t cap, nfiles, npairs;
	uint64_t seq;
};

/* ---- records ---- */

static uint64_t fnv1a(const uint8_t *p, size_t n)
{
	uint64_t h = UINT64_C(0xcbf29ce484222325);
	for (size_t i = 0; i < n; i++) {
		h ^= p[i];
		h *= UINT64_C(0x100000001b3);
	}
	return h;
}

/* The location an object was met at: FNV-1a 32 of its back-end path. */
static uint32_t where_of(const char *where)
{
	uint32_t h = 0x811c9dc5u;
	for (const char *p = where ? where : ""; *p; p++) {
		h ^= (uint8_t)*p;
		h *= 0x01000193u;
	}
	return h;
}

void scs_seen_record(uint8_t out[REC], int kind, const uint8_t fid[SCS_FILE_ID_LEN],
		     uint64_t version, const uint8_t hash[SCS_SHA256_LEN], uint32_t where)
{
	scs_wbuf b;
	scs_wbuf_init(&b, out, REC);
	scs_wbuf_bytes(&b, SCS_SEEN_MAGIC, 4);
	scs_wbuf_u8(&b, (uint8_t)kind);
	scs_wbuf_zero(&b, 3);
	scs_wbuf_bytes(&b, fid, SCS_FILE_ID_LEN);
	scs_wbuf_u64(&b, version);
	if (hash)
		scs_wbuf_bytes(&b, hash, RHLEN);
	else
		scs_wbuf_zero(&b, RHLEN);
	scs_wbuf_u32(&b, where);
	scs_wbuf_u64(&b, fnv1a(out, REC - 8));
}

static int zeros(const uint8_t *p, size_t n)
{
	uint8_t acc = 0;
	for (size_t i = 0; i < n; i++)
		acc |= p[i];
	return acc == 0;
}

static int rec_parse(const uint8_t *p, int *kind, uint8_t fid[SCS_FILE_ID_LEN],
		     uint64_t *version, uint8_t hash[RHLEN], uint32_t *where)
{
	scs_rbuf b;
	const uint8_t *magic, *pad;
	uint8_t k;
	uint64_t chk;
	scs_rbuf_init(&b, p, REC);
	scs_rbuf_ptr(&b, &magic, 4);
	scs_rbuf_u8(&b, &k);
	scs_rbuf_ptr(&b, &pad, 3);
	scs_rbuf_bytes(&b, fid, SCS_FILE_ID_LEN);
	scs_rbuf_u64(&b, version);
	scs_rbuf_bytes(&b, hash, RHLEN);
	scs_rbuf_u32(&b, where);
	scs_rbuf_u64(&b, &chk);
	if (b.err || scs_rbuf_left(&b) != 0 || memcmp(magic, SCS_SEEN_MAGIC, 4) != 0 ||
	    !zeros(pad, 3) || chk != fnv1a(p, REC - 8))
		return -EBADMSG;
	if (k == SCS_SEEN_REC_FORGET && (*version != 0 || *where != 0 || !zeros(hash, RHLEN)))
		return -EBADMSG;
	if (k != SCS_SEEN_REC_SEEN && k != SCS_SEEN_REC_FORGET)
		return -EBADMSG;
	*kind = k;
	return 0;
}

/* ---- the table ---- */

static size_t slot(const scs_seen *s, const uint8_t fid[SCS_FILE_ID_LEN])
{
	uint64_t x = 0;
	for (int i = 0; i < 8; i++)
		x = x << 8 | fid[i];
	x ^= fnv1a(fid + 8, SCS_FILE_ID_LEN - 8);
	return (size_t)((x * UINT64_C(0x9E3779B97F4A7C15)) >> 20) & (s->cap - 1);
}

static struct ent *find(const scs_seen *s, const uint8_t fid[SCS_FILE_ID_LEN])
{
	if (!s->cap)
		return NULL;
	for (struct ent *e = s->tab[slot(s, fid)]; e; e = e->next)
		if (memcmp(e->fid, fid, SCS_FILE_ID_LEN) == 0)
			return e;
	return NULL;
}

static int grow(scs_seen *s)
{
	size_t cap = s->cap ? 2 * s->cap : 1024;
	struct ent **t = calloc(cap, sizeof *t);
	if (!t)
		return -ENOMEM;
	struct ent **old = s->tab;
	size_t ocap = s->cap;
	s->tab = t;
	s->cap = cap;
	for (size_t i = 0; i < ocap; i++) {
		for (struct ent *e = old[i], *nx; e; e = nx) {
			nx = e->next;
			size_t j = slot(s, e->fid);
			e->next = t[j];
			t[j] = e;
		}
	}
	free(old);
	return 0;
}

static void reset(scs_seen *s)
{
	for (size_t i = 0; i < s->cap; i++) {
		for (struct ent *e = s->tab[i], *nx; e; e = nx) {
			nx = e->next;
			free(e);
		}
		s->tab[i] = NULL;
	}
	s->nfiles = s->npairs = 0;
}

static int apply_seen(scs_seen *s, const uint8_t fid[SCS_FILE_ID_LEN], uint64_t v,
		      const uint8_t *h, uint32_t where)
{
	struct ent *e = find(s, fid);
	if (!e) {
		if ((s->nfiles + 1) * 4 > s->cap * 3 && grow(s) < 0)
			return -ENOMEM;
		e = calloc(1, sizeof *e);
		if (!e)
			return -ENOMEM;
		memcpy(e->fid, fid, SCS_FILE_ID_LEN);
		size_t j = slot(s, fid);
		e->next = s->tab[j];
		s->tab[j] = e;
		s->nfiles++;
	}
	for (unsigned i = 0; i < e->n; i++) {
		if (e->p[i].version == v && memcmp(e->p[i].h, h, HLEN) == 0) {
			e->p[i].seq = ++s->seq;
			e->p[i].where = where;
			return 0;
		}
	}
	struct pair *p;
	if (e->n < SCS_SEEN_KEEP) {
		p = &e->p[e->n++];
		s->npairs++;
	} else {
		p = &e->p[0];               /* the least recently met goes */
		for (unsigned i = 1; i < e->n; i++)
			if (e->p[i].seq < p->seq)
				p = &e->p[i];
	}
	p->version = v;
	p->seq = ++s->seq;
	p->where = where;
	memcpy(p->h, h, HLEN);
	return 0;
}

static void apply_forget(scs_seen *s, const uint8_t fid[SCS_FILE_ID_LEN])
{
	if (!s->cap)
		return;
	for (struct ent **pp = &s->tab[slot(s, fid)]; *pp; pp = &(*pp)->next) {
		struct ent *e = *pp;
		if (memcmp(e->fid, fid, SCS_FILE_ID_LEN) == 0) {
			*pp = e->next;
			s->npairs -= e->n;
			s->nfiles--;
			free(e);
			return;
		}
	}
}

/* Apply n whole records: -EBADMSG at the first damaged one. */
static int apply_bytes(scs_seen *s, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++, p += REC) {
		int kind;
		uint8_t fid[SCS_FILE_ID_LEN], hash[RHLEN];
		uint64_t v;
		uint32_t where;
		if (rec_parse(p, &kind, fid, &v, hash, &where) < 0)
			return -EBADMSG;
		if (kind == SCS_SEEN_REC_FORGET)
			apply_forget(s, fid);
		else if (apply_seen(s, fid, v, hash, where) < 0)
			return -ENOMEM;
	}
	return 0;
}

int scs_seen_load_mem(scs_seen *s, const uint8_t *p, size_t len)
{
	pthread_mutex_lock(&s->mu);
	int r = apply_bytes(s, p, len / REC);
	if (r < 0)
		reset(s);
	else if (len % REC)
		r = 1;
	pthread_mutex_unlock(&s->mu);
	return r;
}

/* Exactly (v, h) was met, and after it a higher version at the same place
 * (where): a replay.  (Not elsewhere: a sync client's or Drive's conflict
 * copy of the file keeps an older version under another name.) */
static int replay_of(const struct ent *e, uint64_t v, const uint8_t *h, uint32_t where,
		     uint64_t *newer)
{
	const struct pair *m = NULL;
	if (!e)
		return 0;
	for (unsigned i = 0; i < e->n; i++)
		if (e->p[i].version == v && memcmp(e->p[i].h, h, HLEN) == 0)
			m = &e->p[i];
	if (!m)
		return 0;
	uint64_t best = 0;
	int found = 0;
	for (unsigned i = 0; i < e->n; i++) {
		if (e->p[i].version > v && e->p[i].seq > m->seq && e->p[i].where == where) {
			found = 1;
			if (e->p[i].version > best)
				best = e->p[i].version;
		}
	}
	if (found && newer)
		*newer = best;
	return found;
}

/* (v, h) is the pair met last, and there: nothing to record. */
static int is_latest(const struct ent *e, uint64_t v, const uint8_t *h, uint32_t where)
{
	if (!e || !e->n)
		return 0;
	const struct pair *l = &e->p[0];
	for (unsigned i = 1; i < e->n; i++)
		if (e->p[i].seq > l->seq)
			l = &e->p[i];
	return l->version == v && l->where == where && memcmp(l->h, h, HLEN) == 0;
}

/* ---- the file ---- */

static int open_log(const char *path)
{
	return open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
}

/* Apply what the file holds past s->off: 0, 1 (ends in a partial record),
 * -EBADMSG (a damaged record), or an I/O error. */
static int read_tail(scs_seen *s)
{
	uint8_t buf[READ_RECS * REC];
	for (;;) {
		if (s->off > LOAD_MAX)
			return -EBADMSG;
		ssize_t n = pread(s->fd, buf, sizeof buf, s->off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		size_t whole = (size_t)n / REC;
		int r = apply_bytes(s, buf, whole);
		if (r < 0)
			return r;
		s->off += (off_t)(whole * REC);
		s->frecs += whole;
		if ((size_t)n < sizeof buf)
			return (size_t)n % REC ? 1 : 0;
	}
}

/* Start again from the file now at the path (another process rewrote or
 * removed it). */
static int reopen(scs_seen *s)
{
	struct stat a;
	int fd = open_log(s->path);
	if (fd < 0 || fstat(fd, &a) < 0) {
		int e = -errno;
		if (fd >= 0)
			close(fd);
		return e;
	}
	if (s->fd >= 0)
		close(s->fd);
	s->fd = fd;
	s->dev = a.st_dev;
	s->ino = a.st_ino;
	s->off = 0;
	s->frecs = 0;
	reset(s);
	return 0;
}

struct item {
	const struct pair *p;
	const uint8_t *fid;
};

static int cmp_seq(const void *a, const void *b)
{
	uint64_t x = ((const struct item *)a)->p->seq, y = ((const struct item *)b)->p->seq;
	return x < y ? -1 : x > y;
}

/* Rewrite the file from memory, in the order pairs were met: beside, then
 * renamed over.  Caller holds the lock on the current file. */
static int write_out(scs_seen *s)
{
	size_t n = 0, cnt = s->npairs ? s->npairs : 1;
	struct item *v = malloc(cnt * sizeof *v);
	uint8_t *buf = malloc(cnt * REC);
	char tmp[SCS_PATH_MAX];
	int fd = -1, r = 0;
	if (!v || !buf) {
		r = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < s->cap; i++)
		for (struct ent *e = s->tab[i]; e; e = e->next)
			for (unsigned j = 0; j < e->n && n < s->npairs; j++)
				v[n++] = (struct item){ &e->p[j], e->fid };
	qsort(v, n, sizeof *v, cmp_seq);
	size_t len = 0;
	for (size_t i = 0; i < n; i++) {
		/* Only the kept prefix of the hash is known: the rest is zero. */
		uint8_t h[SCS_SHA256_LEN] = { 0 };
		memcpy(h, v[i].p->h, HLEN);
		scs_seen_record(buf + len, SCS_SEEN_REC_SEEN, v[i].fid, v[i].p->version, h,
				v[i].p->where);
		len += REC;
	}
	if (snprintf(tmp, sizeof tmp, "%s.tmp-XXXXXX", s->path) >= (int)sizeof tmp) {
		r = -ENAMETOOLONG;
		goto out;
	}
	fd = mkostemp(tmp, O_CLOEXEC | O_APPEND);
	if (fd < 0) {
		r = -errno;
		goto out;
	}
	struct stat a;
	size_t done = 0;
	while (!r && done < len) {
		ssize_t w = write(fd, buf + done, len - done);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			r = w < 0 ? -errno : -EIO;
		else
			done += (size_t)w;
	}
	if (!r && (fchmod(fd, 0600) < 0 || fsync(fd) < 0 || fstat(fd, &a) < 0))
		r = -errno;
	if (!r && rename(tmp, s->path) < 0)
		r = -errno;
	if (r < 0) {
		unlink(tmp);
		close(fd);
		goto out;
	}
	close(s->fd);            /* releases the lock on the old file */
	s->fd = fd;
	s->dev = a.st_dev;
	s->ino = a.st_ino;
	s->off = (off_t)len;
	s->frecs = len / REC;
out:
	free(v);
	free(buf);
	return r;
}

/* The file at the path is still ours: 1, 0 (replaced or gone), <0 error. */
static int still_ours(const scs_seen *s)
{
	struct stat a;
	if (stat(s->path, &a) < 0)
		return errno == ENOENT ? 0 : -errno;
	return a.st_dev == s->dev && a.st_ino == s->ino;
}

/* Catch up with the file (reloading it if another process rewrote it); with
 * rewrite, or when the file needs it (a damaged or partial record), rewrite
 * it from memory under the lock.  Failures only weaken detection. */
static void sync_file(scs_seen *s, int rewrite)
{
	int locked = 0, warned = 0;
	for (int tries = 0; s->fd >= 0 && tries < 4; tries++) {
		if (rewrite && !locked) {
			if (flock(s->fd, LOCK_EX) < 0)
				return;
			locked = 1;
		}
		int o = still_ours(s);
		if (o < 0)
			break;
		if (o == 0) {
			if (reopen(s) < 0)
				break;
			locked = 0;                /* reopen closed the locked descriptor */
			continue;
		}
		int r = read_tail(s);
		if (r == -EBADMSG && !warned++) {
			scs_log(SCS_LOG_WARN, "%s is damaged; starting it afresh (detection of old "
				"copies put back is weaker until the files are seen again)", s->path);
		}
		if (r == -EBADMSG)
			reset(s);
		if (r < 0 && r != -EBADMSG)
			break;
		if (r != 0 && !rewrite) {
			rewrite = 1;
			continue;
		}
		if (!rewrite)
			return;
		if (write_out(s) == 0)
			return;                    /* the locked descriptor is closed */
		break;
	}
	if (locked && s->fd >= 0)
		flock(s->fd, LOCK_UN);
}

int scs_seen_path(const uint8_t *gid, size_t gid_len, char *out, size_t cap)
{
	char hex[2 * 64 + 1], sub[2 * 64 + 32];
	if (gid_len > 64)
		return -EINVAL;
	scs_hex_encode(gid, gid_len, hex);
	snprintf(sub, sizeof sub, "groups/%s.seen", hex);
	return scs_xdg_path(SCS_XDG_DATA, sub, out, cap);
}

int scs_seen_open(const char *path, scs_seen **out)
{
	*out = NULL;
	scs_seen *s = calloc(1, sizeof *s);
	if (!s)
		return -ENOMEM;
	pthread_mutex_init(&s->mu, NULL);
	s->fd = -1;
	if (grow(s) < 0) {
		scs_seen_close(s);
		return -ENOMEM;
	}
	if (!path) {
		*out = s;
		return 0;
	}
	if (!(s->path = strdup(path))) {
		scs_seen_close(s);
		return -ENOMEM;
	}
	char dir[SCS_PATH_MAX];
	snprintf(dir, sizeof dir, "%s", path);
	int r = scs_mkdir_p(dirname(dir), 0700);
	if (r == 0)
		r = reopen(s);
	if (r < 0) {
		scs_log(SCS_LOG_WARN, "cannot open %s (%s): old copies of files put back by the "
			"folder are detected only until this program exits", path, strerror(-r));
		*out = s;
		return 0;
	}
	struct stat a;
	if (fstat(s->fd, &a) == 0 && a.st_size > LOAD_MAX)
		s->off = LOAD_MAX + 1;     /* read_tail calls it damaged */
	sync_file(s, 0);
	*out = s;
	return 0;
}

void scs_seen_close(scs_seen *s)
{
	if (!s)
		return;
	reset(s);
	free(s->tab);
	if (s->fd >= 0)
		close(s->fd);
	free(s->path);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

int scs_seen_observe(scs_seen *s, const uint8_t fid[SCS_FILE_ID_LEN], uint64_t version,
		     const uint8_t hash[SCS_SHA256_LEN], const char *where, int ours,
		     uint64_t *newer)
{
	uint32_t w = where_of(where);
	pthread_mutex_lock(&s->mu);
	int rep = 0;
	struct ent *e = find(s, fid);
	if (!ours && replay_of(e, version, hash, w, newer)) {
		/* Sure?  Another process (scsctl forget) may have written since. */
		sync_file(s, 0);
		rep = replay_of(find(s, fid), version, hash, w, newer);
		e = find(s, fid);
	}
	if (!rep && !is_latest(e, version, hash, w)) {
		if (s->fd >= 0 && still_ours(s) == 0)
			sync_file(s, 0);   /* rewritten elsewhere: append to the new one */
		if (apply_seen(s, fid, version, hash, w) < 0 || s->fd < 0)
			goto out;
		uint8_t rec[REC];
		scs_seen_record(rec, SCS_SEEN_REC_SEEN, fid, version, hash, w);
		if (s->fd >= 0 && write(s->fd, rec, REC) == REC)
			s->frecs++;
		if (s->frecs > COMPACT_MIN && s->frecs > 2 * (uint64_t)s->npairs)
			sync_file(s, 1);
	}
out:
	pthread_mutex_unlock(&s->mu);
	return rep;
}

int scs_seen_forget(scs_seen *s, const uint8_t fid[SCS_FILE_ID_LEN], scs_err *err)
{
	int r = 0;
	pthread_mutex_lock(&s->mu);
	for (int tries = 0; s->fd >= 0 && tries < 4; tries++) {
		if (flock(s->fd, LOCK_EX) < 0) {
			r = scs_err_set(err, -errno, "cannot lock %s: %s", s->path, strerror(errno));
			break;
		}
		int o = still_ours(s);
		if (o == 0) {
			if ((r = reopen(s)) < 0) {
				scs_err_set(err, r, "cannot open %s: %s", s->path, strerror(-r));
				break;
			}
			sync_file(s, 0);
			continue;
		}
		uint8_t rec[REC];
		scs_seen_record(rec, SCS_SEEN_REC_FORGET, fid, 0, NULL, 0);
		if (o < 0)
			r = o;
		else if (write(s->fd, rec, REC) != REC)
			r = errno ? -errno : -EIO;
		else if (fsync(s->fd) < 0)
			r = -errno;
		else
			s->frecs++;
		if (r < 0)
			scs_err_set(err, r, "cannot write %s: %s", s->path, strerror(-r));
		flock(s->fd, LOCK_UN);
		break;
	}
	apply_forget(s, fid);
	pthread_mutex_unlock(&s->mu);
	return r;
}

void scs_seen_count(scs_seen *s, size_t *files, size_t *pairs)
{
	pthread_mutex_lock(&s->mu);
	*files = s->nfiles;
	*pairs = s->npairs;
	pthread_mutex_unlock(&s->mu);
}
