/* buf.c - bounded readers and writers for untrusted bytes (scs/buf.h).
 * A reader never touches memory outside [p, p+len): every read checks the
 * remaining length first, and the first failure is sticky, so a parser may
 * do a run of reads and check b->err once at the end. */
#include "scs/buf.h"

#include <errno.h>
#include <string.h>

void scs_rbuf_init(scs_rbuf *b, const void *p, size_t len)
{
	b->p = p;
	b->len = p ? len : 0;
	b->off = 0;
	b->err = 0;
}

size_t scs_rbuf_left(const scs_rbuf *b)
{
	return b->err ? 0 : b->len - b->off;
}

/* Reserve n bytes for reading; returns a pointer to them or NULL. */
static const uint8_t *rtake(scs_rbuf *b, size_t n)
{
	if (b->err)
		return NULL;
	if (n > b->len - b->off) {
		b->err = -EBADMSG;
		return NULL;
	}
	const uint8_t *q = b->p + b->off;
	b->off += n;
	return q;
}

int scs_rbuf_u8(scs_rbuf *b, uint8_t *v)
{
	const uint8_t *q = rtake(b, 1);
	if (!q)
		return b->err;
	*v = q[0];
	return 0;
}

int scs_rbuf_u16(scs_rbuf *b, uint16_t *v)
{
	const uint8_t *q = rtake(b, 2);
	if (!q)
		return b->err;
	*v = (uint16_t)((unsigned)q[0] << 8 | q[1]);
	return 0;
}

int scs_rbuf_u32(scs_rbuf *b, uint32_t *v)
{
	const uint8_t *q = rtake(b, 4);
	if (!q)
		return b->err;
	*v = (uint32_t)q[0] << 24 | (uint32_t)q[1] << 16 | (uint32_t)q[2] << 8 | q[3];
	return 0;
}

int scs_rbuf_u64(scs_rbuf *b, uint64_t *v)
{
	const uint8_t *q = rtake(b, 8);
	if (!q)
		return b->err;
	uint64_t x = 0;
	for (int i = 0; i < 8; i++)
		x = x << 8 | q[i];
	*v = x;
	return 0;
}

int scs_rbuf_bytes(scs_rbuf *b, void *out, size_t n)
{
	const uint8_t *q = rtake(b, n);
	if (!q)
		return b->err;
	if (n)
		memcpy(out, q, n);
	return 0;
}

int scs_rbuf_ptr(scs_rbuf *b, const uint8_t **out, size_t n)
{
	const uint8_t *q = rtake(b, n);
	if (!q)
		return b->err;
	*out = q;
	return 0;
}

int scs_rbuf_skip(scs_rbuf *b, size_t n)
{
	return rtake(b, n) ? 0 : b->err;
}

void scs_wbuf_init(scs_wbuf *b, void *p, size_t cap)
{
	b->p = p;
	b->cap = p ? cap : 0;
	b->len = 0;
	b->err = 0;
}

static uint8_t *wtake(scs_wbuf *b, size_t n)
{
	if (b->err)
		return NULL;
	if (n > b->cap - b->len) {
		b->err = -ENOBUFS;
		return NULL;
	}
	uint8_t *q = b->p + b->len;
	b->len += n;
	return q;
}

int scs_wbuf_u8(scs_wbuf *b, uint8_t v)
{
	uint8_t *q = wtake(b, 1);
	if (!q)
		return b->err;
	q[0] = v;
	return 0;
}

int scs_wbuf_u16(scs_wbuf *b, uint16_t v)
{
	uint8_t *q = wtake(b, 2);
	if (!q)
		return b->err;
	q[0] = (uint8_t)(v >> 8);
	q[1] = (uint8_t)v;
	return 0;
}

int scs_wbuf_u32(scs_wbuf *b, uint32_t v)
{
	uint8_t *q = wtake(b, 4);
	if (!q)
		return b->err;
	for (int i = 0; i < 4; i++)
		q[i] = (uint8_t)(v >> (24 - 8 * i));
	return 0;
}

int scs_wbuf_u64(scs_wbuf *b, uint64_t v)
{
	uint8_t *q = wtake(b, 8);
	if (!q)
		return b->err;
	for (int i = 0; i < 8; i++)
		q[i] = (uint8_t)(v >> (56 - 8 * i));
	return 0;
}

int scs_wbuf_bytes(scs_wbuf *b, const void *p, size_t n)
{
	uint8_t *q = wtake(b, n);
	if (!q)
		return b->err;
	if (n)
		memcpy(q, p, n);
	return 0;
}

int scs_wbuf_zero(scs_wbuf *b, size_t n)
{
	uint8_t *q = wtake(b, n);
	if (!q)
		return b->err;
	if (n)
		memset(q, 0, n);
	return 0;
}
