/* gdrive_cache.c - the on-disk pieces of the gdrive: write-back cache:
 * the journal of pending uploads (bounded parser, fuzzed), the cache
 * directory of a remote, and the status file `scsctl status` reads. */
#include "scs/gdrive.h"
#include "scs/b64.h"
#include "scs/config.h"
#include "scs/crypto.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- journal ---- */

#define JTYPES "PDNUCRM"

static int time_ok(struct timespec t)
{
	return t.tv_sec >= 0 && t.tv_nsec >= 0 && t.tv_nsec < 1000000000;
}

static void cksum(const char *s, size_t n, char out[9])
{
	uint8_t h[SCS_SHA256_LEN];
	scs_sha256(s, n, h);
	scs_hex_encode(h, 4, out);
}

static int idchars(const char *s, size_t n, const char *extra)
{
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_' || (extra && c && strchr(extra, c))))
			return 0;
	}
	return 1;
}

int scs_gdrive_journal_line(const struct scs_gdrive_jrec *r, char *out, size_t cap)
{
	size_t idn = strlen(r->id), rn = strlen(r->rev), pn = strnlen(r->path, sizeof r->path);
	if (!r->type || !strchr(JTYPES, r->type) || idn < 1 || idn > SCS_GDRIVE_ID_MAX ||
	    !idchars(r->id, idn, NULL) || rn > SCS_GDRIVE_REV_MAX || !idchars(r->rev, rn, ".=") ||
	    pn >= sizeof r->path)
		return -EINVAL;
	if (r->type == 'M' && (r->version & ~(uint64_t)SCS_GDRIVE_WANT_ALL ||
			       !time_ok(r->mtime) || !time_ok(r->atime)))
		return -EINVAL;
	if (cap < SCS_GDRIVE_JLINE_MAX)
		return -ENAMETOOLONG;
	int n = snprintf(out, cap, "%c %llu %s %llu %s ", r->type, (unsigned long long)r->seq,
			 r->id, (unsigned long long)r->version, rn ? r->rev : "-");
	if (pn) {
		scs_hex_encode((const uint8_t *)r->path, pn, out + n);
		n += (int)(2 * pn);
	} else {
		out[n++] = '-';
	}
	if (r->type == 'M') {
		char t[2][48];
		for (int i = 0; i < 2; i++) {
			struct timespec ts = i ? r->atime : r->mtime;
			if (r->version & (i ? SCS_GDRIVE_WANT_ATIME : SCS_GDRIVE_WANT_MTIME))
				snprintf(t[i], sizeof t[i], "%lld.%ld", (long long)ts.tv_sec, ts.tv_nsec);
			else
				strcpy(t[i], "-");
		}
		if (r->version & SCS_GDRIVE_WANT_MODE)
			n += snprintf(out + n, cap - (size_t)n, " %o", (unsigned)(r->mode & 07777));
		else
			n += snprintf(out + n, cap - (size_t)n, " -");
		n += snprintf(out + n, cap - (size_t)n, " %s %s", t[0], t[1]);
	}
	char ck[9];
	cksum(out, (size_t)n, ck);
	n += snprintf(out + n, cap - (size_t)n, " %s\n", ck);
	return n;
}

/* Next space-separated field of [*p, e): its start and length. */
static int field(const char **p, const char *e, const char **f, size_t *n)
{
	const char *s = *p;
	const char *q = memchr(s, ' ', (size_t)(e - s));
	if (!q)
		q = e;
	if (q == s)
		return -1;
	*f = s;
	*n = (size_t)(q - s);
	*p = q < e ? q + 1 : e;
	return 0;
}

static int num(const char *f, size_t n, uint64_t *v)
{
	if (n < 1 || n > 19)
		return -1;
	uint64_t x = 0;
	for (size_t i = 0; i < n; i++) {
		if (f[i] < '0' || f[i] > '9')
			return -1;
		x = x * 10 + (uint64_t)(f[i] - '0');
	}
	*v = x;
	return 0;
}

/* One line without its '\n'. */
static int parse_line(const char *s, size_t len, struct scs_gdrive_jrec *r)
{
	if (len < 12 || len > SCS_GDRIVE_JLINE_MAX)
		return -1;
	const char *ck = s + len - 8;
	if (ck[-1] != ' ')
		return -1;
	char want[9];
	cksum(s, len - 9, want);
	if (memcmp(want, ck, 8))
		return -1;
	const char *p = s, *e = s + len - 9, *f;
	size_t n;
	if (field(&p, e, &f, &n) || n != 1 || !f[0] || !strchr(JTYPES, f[0]))
		return -1;
	r->type = f[0];
	if (field(&p, e, &f, &n) || num(f, n, &r->seq))
		return -1;
	if (field(&p, e, &f, &n) || n > SCS_GDRIVE_ID_MAX || !idchars(f, n, NULL))
		return -1;
	memcpy(r->id, f, n);
	r->id[n] = '\0';
	if (field(&p, e, &f, &n) || num(f, n, &r->version))
		return -1;
	if (field(&p, e, &f, &n) || n > SCS_GDRIVE_REV_MAX)
		return -1;
	if (n == 1 && f[0] == '-') {
		r->rev[0] = '\0';
	} else {
		if (!idchars(f, n, ".="))
			return -1;
		memcpy(r->rev, f, n);
		r->rev[n] = '\0';
	}
	if (field(&p, e, &f, &n) || (r->type != 'M' && p != e))
		return -1;
	if (n == 1 && f[0] == '-') {
		r->path[0] = '\0';
	} else {
		if (n % 2 || n / 2 >= sizeof r->path ||
		    scs_hex_decode(f, n, (uint8_t *)r->path, sizeof r->path) < 0 ||
		    memchr(r->path, 0, n / 2))
			return -1;
		r->path[n / 2] = '\0';
	}
	if (r->type != 'M')
		return 0;
	/* M: flags, then MODE MTIME ATIME, each "-" unless its flag is set */
	if (r->version & ~(uint64_t)SCS_GDRIVE_WANT_ALL)
		return -1;
	if (field(&p, e, &f, &n))
		return -1;
	if (r->version & SCS_GDRIVE_WANT_MODE) {
		uint32_t m = 0;
		if (n < 1 || n > 4)
			return -1;
		for (size_t i = 0; i < n; i++) {
			if (f[i] < '0' || f[i] > '7')
				return -1;
			m = m * 8 + (uint32_t)(f[i] - '0');
		}
		r->mode = m;
	} else if (n != 1 || f[0] != '-') {
		return -1;
	}
	for (int i = 0; i < 2; i++) {
		struct timespec *t = i ? &r->atime : &r->mtime;
		if (field(&p, e, &f, &n))
			return -1;
		if (!(r->version & (i ? SCS_GDRIVE_WANT_ATIME : SCS_GDRIVE_WANT_MTIME))) {
			if (n != 1 || f[0] != '-')
				return -1;
			continue;
		}
		const char *dot = memchr(f, '.', n);
		uint64_t sec, ns;
		if (!dot || num(f, (size_t)(dot - f), &sec) ||
		    num(dot + 1, n - (size_t)(dot - f) - 1, &ns) || ns >= 1000000000 ||
		    sec > (uint64_t)INT64_MAX / 2)
			return -1;
		t->tv_sec = (time_t)sec;
		t->tv_nsec = (long)ns;
	}
	return p == e ? 0 : -1;
}

int scs_gdrive_journal_parse(const void *buf, size_t len,
			     int (*cb)(void *arg, const struct scs_gdrive_jrec *r), void *arg,
			     size_t *bad)
{
	const char *s = buf, *end = s + len;
	size_t nbad = 0;
	int ret = 0;
	struct scs_gdrive_jrec *r = malloc(sizeof *r);
	if (!r)
		return -ENOMEM;
	while (s < end) {
		const char *nl = memchr(s, '\n', (size_t)(end - s));
		if (!nl) {          /* torn last record: ignored */
			nbad++;
			break;
		}
		memset(r, 0, sizeof *r);
		if (parse_line(s, (size_t)(nl - s), r) == 0) {
			ret = cb(arg, r);
			if (ret)
				break;
		} else {
			nbad++;
		}
		s = nl + 1;
	}
	free(r);
	if (bad)
		*bad = nbad;
	return ret;
}

/* ---- block maps ---- */

int scs_gdrive_map_format(const struct scs_gdrive_map *m, char **out, size_t *len)
{
	size_t rn = strlen(m->rev), hb = (m->nblocks + 7) / 8;
	if (rn > SCS_GDRIVE_REV_MAX || !idchars(m->rev, rn, ".=") || 2 * hb + 200 > SCS_GDRIVE_MAP_MAX)
		return -EINVAL;
	char *b = malloc(2 * hb + 200);
	if (!b)
		return -ENOMEM;
	int n = snprintf(b, 200, "scsfs-map 1 %llu %s %llu %zu ", (unsigned long long)m->version,
			 rn ? m->rev : "-", (unsigned long long)m->size, m->nblocks);
	scs_hex_encode(m->have, hb, b + n);
	n += (int)(2 * hb);
	b[n++] = '\n';
	*out = b;
	*len = (size_t)n;
	return 0;
}

int scs_gdrive_map_parse(const void *buf, size_t len, uint64_t block, struct scs_gdrive_map *m)
{
	memset(m, 0, sizeof *m);
	const char *s = buf;
	if (len < 12 || len > SCS_GDRIVE_MAP_MAX || s[len - 1] != '\n' || !block ||
	    memcmp(s, "scsfs-map 1 ", 12))
		return -EBADMSG;
	const char *p = s + 12, *e = s + len - 1, *f;
	size_t n;
	uint64_t nb;
	if (field(&p, e, &f, &n) || num(f, n, &m->version))
		return -EBADMSG;
	if (field(&p, e, &f, &n) || n > SCS_GDRIVE_REV_MAX)
		return -EBADMSG;
	if (!(n == 1 && f[0] == '-')) {
		if (!idchars(f, n, ".="))
			return -EBADMSG;
		memcpy(m->rev, f, n);
	}
	m->rev[n == 1 && f[0] == '-' ? 0 : n] = '\0';
	if (field(&p, e, &f, &n) || num(f, n, &m->size))
		return -EBADMSG;
	if (field(&p, e, &f, &n) || num(f, n, &nb) || nb != (m->size + block - 1) / block)
		return -EBADMSG;
	size_t hb = (size_t)((nb + 7) / 8);
	if (field(&p, e, &f, &n) || p != e || n != 2 * hb)
		return -EBADMSG;
	m->have = malloc(hb ? hb : 1);
	if (!m->have)
		return -ENOMEM;
	if (hb && scs_hex_decode(f, n, m->have, hb) < 0) {
		free(m->have);
		m->have = NULL;
		return -EBADMSG;
	}
	m->nblocks = (size_t)nb;
	return 0;
}

/* ---- cache directory ---- */

int scs_gdrive_cache_dir(const char *remote, char *out, size_t cap)
{
	uint8_t h[SCS_SHA256_LEN];
	char hex[33];
	scs_sha256(remote, strlen(remote), h);
	scs_hex_encode(h, 16, hex);
	return scs_xdg_path(SCS_XDG_CACHE, hex, out, cap);
}

/* ---- status file ---- */

int scs_gdrive_status_write(const char *dir, const struct scs_gdrive_status *s)
{
	char path[SCS_PATH_MAX + 16], buf[512];
	if (snprintf(path, sizeof path, "%s/status", dir) >= (int)sizeof path)
		return -ENAMETOOLONG;
	char err[sizeof s->error];
	snprintf(err, sizeof err, "%s", s->error);
	for (char *p = err; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	int n = snprintf(buf, sizeof buf,
			 "offline %d\noffline_since %lld\nlast_sync %lld\nupdated %lld\n"
			 "files %llu\nbytes %llu\ndeletes %llu\nchanges %llu\nerror %s\n",
			 s->offline ? 1 : 0,
			 (long long)s->offline_since, (long long)s->last_sync, (long long)s->updated,
			 (unsigned long long)s->files, (unsigned long long)s->bytes,
			 (unsigned long long)s->deletes, (unsigned long long)s->changes, err);
	return scs_local_write_atomic(path, buf, (size_t)n, 0600);
}

int scs_gdrive_status_parse(const void *data, size_t len, struct scs_gdrive_status *s)
{
	memset(s, 0, sizeof *s);
	if (len > 4096)
		return -EBADMSG;
	const char *p = data, *end = p + len;
	int seen = 0;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		if (!nl)
			return -EBADMSG;
		const char *sp = memchr(p, ' ', (size_t)(nl - p));
		if (!sp)
			return -EBADMSG;
		size_t kn = (size_t)(sp - p), vn = (size_t)(nl - sp - 1);
		const char *v = sp + 1;
		uint64_t x = 0;
		int isnum = num(v, vn, &x) == 0;
#define KEY(k) (kn == sizeof k - 1 && !memcmp(p, k, kn))
		if (KEY("error")) {
			if (vn >= sizeof s->error || memchr(v, 0, vn))
				return -EBADMSG;
			memcpy(s->error, v, vn);
			s->error[vn] = '\0';
		} else if (!isnum) {
			return -EBADMSG;
		} else if (KEY("offline")) {
			s->offline = x != 0;
		} else if (KEY("offline_since")) {
			s->offline_since = (time_t)x;
		} else if (KEY("last_sync")) {
			s->last_sync = (time_t)x;
		} else if (KEY("updated")) {
			s->updated = (time_t)x;
		} else if (KEY("files")) {
			s->files = x;
		} else if (KEY("bytes")) {
			s->bytes = x;
		} else if (KEY("deletes")) {
			s->deletes = x;
		} else if (KEY("changes")) {
			s->changes = x;
		}           /* unknown keys: from a newer scsfs */
#undef KEY
		seen++;
		p = nl + 1;
	}
	return seen ? 0 : -EBADMSG;
}

int scs_gdrive_status_read(const char *dir, struct scs_gdrive_status *s)
{
	char path[SCS_PATH_MAX + 16];
	uint8_t *data;
	size_t len;
	if (snprintf(path, sizeof path, "%s/status", dir) >= (int)sizeof path)
		return -ENAMETOOLONG;
	int r = scs_local_read(path, 4096, &data, &len);
	if (r < 0)
		return r;
	r = scs_gdrive_status_parse(data, len, s);
	free(data);
	return r;
}
