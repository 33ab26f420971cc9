/* gdrive_cache.c - the on-disk pieces of the gdrive: write-back cache:
 * the journal of pending uploads (bounded parser, fuzzed), the cache
 * directory of a remote, and the status file `scsctl status` reads. */
#include "scs/gdrive.h"
#include "scs/b64.h"
#include "scs/config.h"
#include "scs/crypto.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
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

/* ---- snapshot ---- */

static int snap_grow(struct scs_gdrive_snap *s, size_t more)
{
	if (s->len + more + 1 <= s->cap)
		return 0;
	size_t nc = s->cap ? s->cap : 65536;
	while (nc < s->len + more + 1)
		nc *= 2;
	if (nc > SCS_GDRIVE_SNAP_MAX + 65536)
		return -EFBIG;
	char *nb = realloc(s->buf, nc);
	if (!nb)
		return -ENOMEM;
	s->buf = nb;
	s->cap = nc;
	return 0;
}

static int snap_printf(struct scs_gdrive_snap *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static int snap_printf(struct scs_gdrive_snap *s, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	int r = n < 0 ? -EINVAL : snap_grow(s, (size_t)n);
	if (r < 0)
		return r;
	va_start(ap, fmt);
	vsnprintf(s->buf + s->len, s->cap - s->len, fmt, ap);
	va_end(ap);
	s->len += (size_t)n;
	return 0;
}

static int snap_hex(struct scs_gdrive_snap *s, const void *p, size_t n)
{
	if (!n)
		return snap_printf(s, " -");
	int r = snap_grow(s, 2 * n + 1);
	if (r < 0)
		return r;
	s->buf[s->len++] = ' ';
	scs_hex_encode(p, n, s->buf + s->len);
	s->len += 2 * n;
	return 0;
}

static int token_ok(const char *t, size_t n)
{
	if (n < 1 || n > SCS_GDRIVE_TOKEN_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (t[i] < 0x21 || t[i] > 0x7e)
			return 0;
	return 1;
}

int scs_gdrive_snap_begin(struct scs_gdrive_snap *s, const char *root, const char *token)
{
	size_t rn = strlen(root), tn = strlen(token);
	memset(s, 0, sizeof *s);
	if (rn < 1 || rn > SCS_GDRIVE_ID_MAX || !idchars(root, rn, NULL) ||
	    (tn && !token_ok(token, tn)))
		return -EINVAL;
	return snap_printf(s, "scsfs-snapshot 1\nroot %s\ntoken %s\n", root, tn ? token : "-");
}

int scs_gdrive_snap_add(struct scs_gdrive_snap *s, const struct scs_gdrive_snap_ent *e)
{
	const struct scs_gdrive_meta *m = &e->m;
	size_t pn = strnlen(e->path, sizeof e->path), pidn = strlen(e->pid), idn = strlen(m->id);
	size_t nn = strlen(m->name), rn = strlen(m->rev);
	if (pn >= sizeof e->path || pidn > SCS_GDRIVE_ID_MAX || !idchars(e->pid, pidn, NULL) ||
	    idn < 1 || idn > SCS_GDRIVE_ID_MAX || !idchars(m->id, idn, NULL) ||
	    nn > SCS_GDRIVE_NAME_MAX || rn > SCS_GDRIVE_REV_MAX || !idchars(m->rev, rn, ".=") ||
	    (e->flags & ~SCS_GDRIVE_SNAP_ALL) || !time_ok(m->mtime) || !time_ok(m->atime) ||
	    ((e->flags & SCS_GDRIVE_SNAP_DATA) && e->len > SCS_GDRIVE_SNAP_DATA_MAX))
		return -EINVAL;
	int r = snap_printf(s, "E");
	if (!r)
		r = snap_hex(s, e->path, pn);
	if (!r)
		r = snap_printf(s, " %s %u %s", pidn ? e->pid : "-", e->flags, m->id);
	if (!r)
		r = snap_hex(s, m->name, nn);
	if (!r)
		r = snap_printf(s, " %llu %llu %s %lld.%ld %lld.%ld %o",
				(unsigned long long)m->size, (unsigned long long)m->version,
				rn ? m->rev : "-", (long long)m->mtime.tv_sec, m->mtime.tv_nsec,
				(long long)m->atime.tv_sec, m->atime.tv_nsec, m->perm & 07777);
	if (!r)
		r = snap_hex(s, e->data, (e->flags & SCS_GDRIVE_SNAP_DATA) ? e->len : 0);
	if (!r)
		r = snap_printf(s, "\n");
	if (!r && s->len > SCS_GDRIVE_SNAP_MAX)
		r = -EFBIG;
	return r;
}

int scs_gdrive_snap_end(struct scs_gdrive_snap *s)
{
	uint8_t h[SCS_SHA256_LEN];
	char hex[2 * SCS_SHA256_LEN + 1];
	scs_sha256(s->buf, s->len, h);
	scs_hex_encode(h, sizeof h, hex);
	return snap_printf(s, "end %s\n", hex);
}

/* A hex field of at most max bytes into out (NUL-ended); "-" is empty. */
static int hex_field(const char *f, size_t n, uint8_t *out, size_t max, size_t *len)
{
	if (n == 1 && f[0] == '-') {
		*len = 0;
		out[0] = 0;
		return 0;
	}
	if (!n || n % 2 || n / 2 > max || scs_hex_decode(f, n, out, max) < 0)
		return -1;
	*len = n / 2;
	out[*len] = 0;
	return 0;
}

static int time_field(const char *f, size_t n, struct timespec *t)
{
	const char *dot = memchr(f, '.', n);
	uint64_t sec, ns;
	if (!dot || num(f, (size_t)(dot - f), &sec) || num(dot + 1, n - (size_t)(dot - f) - 1, &ns) ||
	    ns >= 1000000000 || sec > (uint64_t)INT64_MAX / 2)
		return -1;
	t->tv_sec = (time_t)sec;
	t->tv_nsec = (long)ns;
	return 0;
}

static int snap_entry(const char *p, const char *e, struct scs_gdrive_snap_ent *x, uint8_t *data)
{
	const char *f;
	size_t n, k;
	uint64_t v;
	struct scs_gdrive_meta *m = &x->m;
	memset(x, 0, sizeof *x);
	if (field(&p, e, &f, &n) || n != 1 || f[0] != 'E')
		return -1;
	if (field(&p, e, &f, &n) || hex_field(f, n, (uint8_t *)x->path, sizeof x->path - 1, &k) ||
	    memchr(x->path, 0, k))
		return -1;
	if (field(&p, e, &f, &n) || n > SCS_GDRIVE_ID_MAX || !(n == 1 && f[0] == '-' ? 1 :
	    idchars(f, n, NULL)))
		return -1;
	if (!(n == 1 && f[0] == '-'))
		memcpy(x->pid, f, n);
	if (field(&p, e, &f, &n) || num(f, n, &v) || v & ~(uint64_t)SCS_GDRIVE_SNAP_ALL)
		return -1;
	x->flags = (unsigned)v;
	if (field(&p, e, &f, &n) || n < 1 || n > SCS_GDRIVE_ID_MAX || !idchars(f, n, NULL))
		return -1;
	memcpy(m->id, f, n);
	if (field(&p, e, &f, &n) || hex_field(f, n, (uint8_t *)m->name, SCS_GDRIVE_NAME_MAX, &k) ||
	    memchr(m->name, 0, k))
		return -1;
	if (field(&p, e, &f, &n) || num(f, n, &m->size) || field(&p, e, &f, &n) ||
	    num(f, n, &m->version))
		return -1;
	if (field(&p, e, &f, &n) || n > SCS_GDRIVE_REV_MAX ||
	    !(n == 1 && f[0] == '-' ? 1 : idchars(f, n, ".=")))
		return -1;
	if (!(n == 1 && f[0] == '-'))
		memcpy(m->rev, f, n);
	if (field(&p, e, &f, &n) || time_field(f, n, &m->mtime) || field(&p, e, &f, &n) ||
	    time_field(f, n, &m->atime))
		return -1;
	if (field(&p, e, &f, &n) || n < 1 || n > 4)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (f[i] < '0' || f[i] > '7')
			return -1;
		m->perm = m->perm * 8 + (uint32_t)(f[i] - '0');
	}
	if (field(&p, e, &f, &n) || p != e ||
	    hex_field(f, n, data, SCS_GDRIVE_SNAP_DATA_MAX, &x->len) ||
	    (!(x->flags & SCS_GDRIVE_SNAP_DATA) && x->len))
		return -1;
	m->is_dir = (x->flags & SCS_GDRIVE_SNAP_DIR) != 0;
	m->is_link = (x->flags & SCS_GDRIVE_SNAP_LINK) != 0 && !m->is_dir;
	m->has_perm = (x->flags & SCS_GDRIVE_SNAP_PERM) != 0;
	strcpy(m->parent, x->pid);
	x->data = data;
	return 0;
}

int scs_gdrive_snap_parse(const void *buf, size_t len, char *root, char *token,
			  int (*cb)(void *arg, const struct scs_gdrive_snap_ent *e), void *arg)
{
	const char *s = buf, *end = s + len;
	static const char head[] = "scsfs-snapshot 1\n";
	/* the last line: "end" and the checksum of what precedes it */
	if (len < sizeof head - 1 + 70 || len > SCS_GDRIVE_SNAP_MAX + 65536 || s[len - 1] != '\n' ||
	    memcmp(s, head, sizeof head - 1))
		return -EBADMSG;
	const char *last = end - 1;
	while (last > s && last[-1] != '\n')
		last--;
	uint8_t h[SCS_SHA256_LEN];
	char hex[2 * SCS_SHA256_LEN + 1];
	scs_sha256(s, (size_t)(last - s), h);
	scs_hex_encode(h, sizeof h, hex);
	if ((size_t)(end - last) != 4 + 2 * SCS_SHA256_LEN + 1 || memcmp(last, "end ", 4) ||
	    memcmp(last + 4, hex, 2 * SCS_SHA256_LEN))
		return -EBADMSG;
	const char *p = s + sizeof head - 1, *f;
	size_t n;
	int r = 0;
	for (int i = 0; i < 2; i++) {         /* root, token */
		const char *nl = memchr(p, '\n', (size_t)(last - p));
		const char *want = i ? "token" : "root";
		if (!nl || field(&p, nl, &f, &n) || n != strlen(want) || memcmp(f, want, n) ||
		    field(&p, nl, &f, &n) || p != nl)
			return -EBADMSG;
		if (!i && (n > SCS_GDRIVE_ID_MAX || !idchars(f, n, NULL)))
			return -EBADMSG;
		if (i && !(n == 1 && f[0] == '-') && !token_ok(f, n))
			return -EBADMSG;
		char *out = i ? token : root;
		if (i && n == 1 && f[0] == '-')
			n = 0;
		memcpy(out, f, n);
		out[n] = '\0';
		p = nl + 1;
	}
	struct scs_gdrive_snap_ent *x = malloc(sizeof *x);
	uint8_t *data = malloc(SCS_GDRIVE_SNAP_DATA_MAX + 1);
	if (!x || !data)
		r = -ENOMEM;
	while (!r && p < last) {
		const char *nl = memchr(p, '\n', (size_t)(last - p));
		if (!nl || snap_entry(p, nl, x, data) < 0)
			r = -EBADMSG;
		else
			r = cb(arg, x);
		p = nl ? nl + 1 : last;
	}
	free(x);
	free(data);
	return r;
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
	return scs_local_replace(path, buf, (size_t)n, 0600);
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
