/* test_buf.c - bounded reader/writer: values, bounds, sticky errors. */
#include "unit.h"
#include "scs/buf.h"

#include <errno.h>
#include <stdint.h>

static void test_read_values(void)
{
	const uint8_t in[] = { 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07,
			       0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
			       0xaa, 0xbb, 0xcc };
	scs_rbuf b;
	uint8_t u8, two[2];
	uint16_t u16;
	uint32_t u32;
	uint64_t u64;
	const uint8_t *p;
	scs_rbuf_init(&b, in, sizeof in);
	CHECK_EQ(scs_rbuf_left(&b), 18);
	CHECK_EQ(scs_rbuf_u8(&b, &u8), 0);
	CHECK_EQ(u8, 0x01);
	CHECK_EQ(scs_rbuf_u16(&b, &u16), 0);
	CHECK_EQ(u16, 0x0203);
	CHECK_EQ(scs_rbuf_u32(&b, &u32), 0);
	CHECK_EQ(u32, 0x04050607);
	CHECK_EQ(scs_rbuf_u64(&b, &u64), 0);
	CHECK(u64 == UINT64_C(0x08090a0b0c0d0e0f));
	CHECK_EQ(scs_rbuf_ptr(&b, &p, 1), 0);
	CHECK(p == in + 15);
	CHECK_EQ(scs_rbuf_skip(&b, 0), 0);
	CHECK_EQ(scs_rbuf_bytes(&b, two, 2), 0);
	CHECK_EQ(two[0], 0xbb);
	CHECK_EQ(two[1], 0xcc);
	CHECK_EQ(scs_rbuf_left(&b), 0);
	CHECK_EQ(b.err, 0);
	/* One byte past the end: error, and it sticks. */
	CHECK_EQ(scs_rbuf_u8(&b, &u8), -EBADMSG);
	CHECK_EQ(b.err, -EBADMSG);
	CHECK_EQ(scs_rbuf_skip(&b, 0), -EBADMSG);
}

static void test_read_bounds(void)
{
	const uint8_t in[3] = { 1, 2, 3 };
	scs_rbuf b;
	uint32_t u32 = 77;
	uint8_t out[8] = { 0 }, u8;
	const uint8_t *p = NULL;

	/* A too-long read fails without consuming or writing anything... */
	scs_rbuf_init(&b, in, sizeof in);
	CHECK_EQ(scs_rbuf_u32(&b, &u32), -EBADMSG);
	CHECK_EQ(u32, 77);
	CHECK_EQ(b.off, 0);
	/* ...and later reads keep failing even if they would fit. */
	CHECK_EQ(scs_rbuf_u8(&b, &u8), -EBADMSG);
	CHECK_EQ(scs_rbuf_left(&b), 0);

	scs_rbuf_init(&b, in, sizeof in);
	CHECK_EQ(scs_rbuf_bytes(&b, out, 4), -EBADMSG);
	CHECK_EQ(out[0], 0);
	scs_rbuf_init(&b, in, sizeof in);
	CHECK_EQ(scs_rbuf_ptr(&b, &p, 4), -EBADMSG);
	CHECK(p == NULL);
	/* Huge lengths do not wrap around. */
	scs_rbuf_init(&b, in, sizeof in);
	CHECK_EQ(scs_rbuf_skip(&b, 1), 0);
	CHECK_EQ(scs_rbuf_skip(&b, SIZE_MAX), -EBADMSG);
	scs_rbuf_init(&b, in, sizeof in);
	CHECK_EQ(scs_rbuf_ptr(&b, &p, SIZE_MAX - 1), -EBADMSG);
	/* Exactly to the end is fine. */
	scs_rbuf_init(&b, in, sizeof in);
	CHECK_EQ(scs_rbuf_bytes(&b, out, 3), 0);
	CHECK_EQ(scs_rbuf_left(&b), 0);
	/* Empty / NULL buffers. */
	scs_rbuf_init(&b, NULL, 10);
	CHECK_EQ(scs_rbuf_left(&b), 0);
	CHECK_EQ(scs_rbuf_u8(&b, &u8), -EBADMSG);
	scs_rbuf_init(&b, in, 0);
	CHECK_EQ(scs_rbuf_u16(&b, (uint16_t *)&u32), -EBADMSG);
}

static void test_write(void)
{
	uint8_t out[20];
	scs_wbuf w;
	memset(out, 0xee, sizeof out);
	scs_wbuf_init(&w, out, 19);
	CHECK_EQ(scs_wbuf_u8(&w, 0x11), 0);
	CHECK_EQ(scs_wbuf_u16(&w, 0x2233), 0);
	CHECK_EQ(scs_wbuf_u32(&w, 0x44556677), 0);
	CHECK_EQ(scs_wbuf_u64(&w, UINT64_C(0x8899aabbccddeeff)), 0);
	CHECK_EQ(scs_wbuf_zero(&w, 2), 0);
	CHECK_EQ(scs_wbuf_bytes(&w, "Z", 1), 0);
	CHECK_EQ(w.len, 18);
	const uint8_t want[] = { 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99,
				 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, 0, 0, 'Z' };
	CHECK_MEM(out, want, sizeof want);
	/* Overflow: nothing written past cap, error sticks. */
	CHECK_EQ(scs_wbuf_u16(&w, 0xabcd), -ENOBUFS);
	CHECK_EQ(out[18], 0xee);
	CHECK_EQ(out[19], 0xee);
	CHECK_EQ(w.len, 18);
	CHECK_EQ(scs_wbuf_u8(&w, 1), -ENOBUFS);
	CHECK_EQ(w.err, -ENOBUFS);
	scs_wbuf_init(&w, out, 4);
	CHECK_EQ(scs_wbuf_bytes(&w, "abcdef", SIZE_MAX), -ENOBUFS);
	scs_wbuf_init(&w, out, 4);
	CHECK_EQ(scs_wbuf_zero(&w, 5), -ENOBUFS);
	CHECK_EQ(w.len, 0);

	/* Round trip through the reader. */
	scs_rbuf r;
	uint16_t a;
	uint64_t c;
	scs_rbuf_init(&r, out + 1, 17);
	scs_rbuf_u16(&r, &a);
	scs_rbuf_skip(&r, 4);
	scs_rbuf_u64(&r, &c);
	CHECK_EQ(r.err, 0);
	CHECK_EQ(a, 0x2233);
	CHECK(c == UINT64_C(0x8899aabbccddeeff));
}

int main(void)
{
	test_read_values();
	test_read_bounds();
	test_write();
	return unit_done("buf");
}
