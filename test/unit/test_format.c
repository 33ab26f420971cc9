/* test_format.c - header encoding and every rejection, key wrapping, header
 * signatures, chunk records and the size arithmetic, plus the golden object
 * in test/golden/vectors (old data must stay readable). */
#include "unit.h"
#include "scs/format.h"
#include "scs/b64.h"

#include <errno.h>
#include <stdint.h>

static void fill(uint8_t *p, size_t n, uint8_t seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(seed + i * 7);
}

static scs_header sample_header(void)
{
	scs_header h;
	memset(&h, 0, sizeof h);
	h.version = SCS_FORMAT_VERSION;
	h.epoch = 0x01020304;
	fill(h.file_id, sizeof h.file_id, 1);
	h.file_version = UINT64_C(0x1122334455667788);
	fill(h.writer, sizeof h.writer, 2);
	fill(h.wrap_nonce, sizeof h.wrap_nonce, 3);
	fill(h.wrapped_key, sizeof h.wrapped_key, 4);
	fill(h.wrap_tag, sizeof h.wrap_tag, 5);
	fill(h.content_hash, sizeof h.content_hash, 6);
	fill(h.sig, sizeof h.sig, 7);
	return h;
}

static void test_header_layout(void)
{
	scs_header h = sample_header(), d;
	uint8_t enc[SCS_HEADER_SIZE];
	CHECK_EQ(scs_header_encode(&h, enc), 0);
	/* Field offsets as man/scsfs-format.5 specifies them. */
	CHECK_MEM(enc, "SCSF\x00\x01\x01\x02\x03\x04", 10);
	CHECK_MEM(enc + 10, h.file_id, 16);
	CHECK_MEM(enc + 26, "\x11\x22\x33\x44\x55\x66\x77\x88", 8);
	CHECK_MEM(enc + 34, h.writer, 32);
	CHECK_MEM(enc + 66, h.wrap_nonce, 12);
	CHECK_MEM(enc + 78, h.wrapped_key, 32);
	CHECK_MEM(enc + 110, h.wrap_tag, 16);
	CHECK_MEM(enc + 126, h.content_hash, 32);
	for (int i = 158; i < 192; i++)
		CHECK_EQ(enc[i], 0);
	CHECK_MEM(enc + 192, h.sig, 64);

	CHECK_EQ(scs_header_decode(enc, sizeof enc, &d), 0);
	CHECK(memcmp(&h, &d, sizeof h) == 0);
	/* Longer input (the whole object) is fine: the first 256 bytes count. */
	uint8_t big[SCS_HEADER_SIZE + 10];
	memcpy(big, enc, sizeof enc);
	memset(big + SCS_HEADER_SIZE, 0xaa, 10);
	CHECK_EQ(scs_header_decode(big, sizeof big, &d), 0);
	CHECK(memcmp(&h, &d, sizeof h) == 0);

	/* Only version 1 can be written. */
	h.version = 2;
	CHECK_EQ(scs_header_encode(&h, enc), -EINVAL);
}

static void test_header_rejects(void)
{
	scs_header h = sample_header(), d;
	uint8_t enc[SCS_HEADER_SIZE], bad[SCS_HEADER_SIZE];
	CHECK_EQ(scs_header_encode(&h, enc), 0);

	for (size_t len = 0; len < SCS_HEADER_SIZE; len++)
		CHECK_EQ(scs_header_decode(enc, len, &d), -EBADMSG);
	CHECK_EQ(scs_header_decode(NULL, 0, &d), -EBADMSG);
	/* Each magic byte. */
	for (int i = 0; i < 4; i++) {
		memcpy(bad, enc, sizeof bad);
		bad[i] ^= 0x20;
		CHECK_EQ(scs_header_decode(bad, sizeof bad, &d), -EBADMSG);
	}
	/* Versions 0, 2, 0x100, 0xffff. */
	const uint16_t versions[] = { 0, 2, 0x100, 0xffff };
	for (size_t i = 0; i < 4; i++) {
		memcpy(bad, enc, sizeof bad);
		bad[4] = (uint8_t)(versions[i] >> 8);
		bad[5] = (uint8_t)versions[i];
		CHECK_EQ(scs_header_decode(bad, sizeof bad, &d), -EBADMSG);
	}
	/* Each reserved byte. */
	for (int i = 158; i < 192; i++) {
		memcpy(bad, enc, sizeof bad);
		bad[i] = 1;
		CHECK_EQ(scs_header_decode(bad, sizeof bad, &d), -EBADMSG);
	}
	/* Anything else is just data to the parser (the signature guards it). */
	memcpy(bad, enc, sizeof bad);
	bad[200] ^= 0xff;
	CHECK_EQ(scs_header_decode(bad, sizeof bad, &d), 0);
}

static void test_wrap(void)
{
	scs_header h = sample_header(), d;
	uint8_t ek[32], fk[32], out[32], enc[SCS_HEADER_SIZE];
	scs_random(ek, 32);
	scs_random(fk, 32);
	CHECK_EQ(scs_filekey_wrap(ek, &h, fk), 0);
	CHECK(memcmp(h.wrapped_key, fk, 32) != 0);
	CHECK_EQ(scs_filekey_unwrap(ek, &h, out), 0);
	CHECK_MEM(out, fk, 32);
	/* Through the encoding. */
	CHECK_EQ(scs_header_encode(&h, enc), 0);
	CHECK_EQ(scs_header_decode(enc, sizeof enc, &d), 0);
	CHECK_EQ(scs_filekey_unwrap(ek, &d, out), 0);
	CHECK_MEM(out, fk, 32);
	/* Fresh nonce each wrap. */
	scs_header h2 = h;
	CHECK_EQ(scs_filekey_wrap(ek, &h2, fk), 0);
	CHECK(memcmp(h2.wrap_nonce, h.wrap_nonce, 12) != 0);

	/* Wrong epoch key; tampering with any byte of the AAD (the header up to
	 * wrap_nonce), the nonce, the wrapped key or the tag. */
	uint8_t ek2[32];
	memcpy(ek2, ek, 32);
	ek2[0] ^= 1;
	CHECK_EQ(scs_filekey_unwrap(ek2, &h, out), -EBADMSG);
	int accepted = 0;
	for (int i = 0; i < 126; i++) {
		uint8_t b[SCS_HEADER_SIZE];
		memcpy(b, enc, sizeof b);
		if (i >= 4 && i < 6)
			continue;       /* version: decode rejects it already */
		if (i < 4)
			continue;       /* magic: likewise */
		b[i] ^= 0x01;
		if (scs_header_decode(b, sizeof b, &d) == 0)
			accepted += scs_filekey_unwrap(ek, &d, out) == 0;
	}
	CHECK_EQ(accepted, 0);
	/* content_hash and sig are not wrap AAD: still unwraps. */
	d = h;
	d.content_hash[0] ^= 1;
	d.sig[0] ^= 1;
	CHECK_EQ(scs_filekey_unwrap(ek, &d, out), 0);
}

static void test_sign(void)
{
	EVP_PKEY *sk = NULL, *other = NULL;
	uint8_t pub[32], pub2[32], enc[SCS_HEADER_SIZE];
	scs_header h = sample_header(), d;
	CHECK_EQ(scs_ed25519_generate(&sk), 0);
	CHECK_EQ(scs_ed25519_generate(&other), 0);
	scs_ed25519_public(sk, pub);
	scs_ed25519_public(other, pub2);
	CHECK_EQ(scs_header_sign(&h, sk), 0);
	CHECK_EQ(scs_header_verify(&h, pub), 0);
	CHECK_EQ(scs_header_verify(&h, pub2), -EBADMSG);
	CHECK_EQ(scs_header_encode(&h, enc), 0);
	/* Every bit of the encoded header but the reserved area (rejected by
	 * the parser) and magic/version: flipping it breaks the signature. */
	int accepted = 0, parsed = 0;
	for (int bit = 0; bit < SCS_HEADER_SIZE * 8; bit++) {
		uint8_t b[SCS_HEADER_SIZE];
		memcpy(b, enc, sizeof b);
		b[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		if (scs_header_decode(b, sizeof b, &d) == 0) {
			parsed++;
			accepted += scs_header_verify(&d, pub) == 0;
		}
	}
	CHECK_EQ(parsed, (SCS_HEADER_SIZE - 6 - 34) * 8);
	CHECK_EQ(accepted, 0);
	/* Ed25519 is deterministic: re-signing gives the same bytes. */
	d = h;
	CHECK_EQ(scs_header_sign(&d, sk), 0);
	CHECK_MEM(d.sig, h.sig, 64);
	EVP_PKEY_free(sk);
	EVP_PKEY_free(other);
}

static void test_sizes(void)
{
	const uint64_t C = SCS_CHUNK_SIZE, O = SCS_RECORD_OVERHEAD, HS = SCS_HEADER_SIZE;
	CHECK_EQ(SCS_RECORD_SIZE, C + 28);
	struct { uint64_t plain, nrec; } cases[] = {
		{ 0, 1 }, { 1, 1 }, { 32767, 1 }, { 32768, 1 }, { 32769, 2 },
		{ 65536, 2 }, { 65537, 3 }, { 70000, 3 },
		{ UINT64_C(1) << 32, (UINT64_C(1) << 32) / 32768 },
		{ (UINT64_C(1) << 40) + 5, (UINT64_C(1) << 40) / 32768 + 1 },
		{ SCS_PLAIN_SIZE_MAX, SCS_PLAIN_SIZE_MAX / 32768 },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		uint64_t p = cases[i].plain, back = 0;
		CHECK(scs_nrecords(p) == cases[i].nrec);
		uint64_t o = scs_object_size(p);
		CHECK(o == HS + cases[i].nrec * O + p);
		CHECK_EQ(scs_plain_size(o, &back), 0);
		CHECK(back == p);
	}
	CHECK(scs_object_size(0) == 256 + 28);
	CHECK(scs_object_size(1) == 256 + 29);
	CHECK(scs_object_size(32768) == 256 + 32796);
	CHECK(scs_object_size(32769) == 256 + 32796 + 29);
	CHECK(scs_object_size(SCS_PLAIN_SIZE_MAX + 1) == UINT64_MAX);
	CHECK(scs_record_offset(0) == 256);
	CHECK(scs_record_offset(3) == 256 + 3 * 32796);

	/* Every object size in a window is either the image of exactly one
	 * plaintext size or rejected. */
	uint64_t p;
	for (uint64_t o = 0; o < HS + 3 * (C + O) + 64; o++) {
		int r = scs_plain_size(o, &p);
		if (r == 0)
			CHECK(scs_object_size(p) == o);
		else
			CHECK_EQ(r, -EBADMSG);
	}
	/* Specific impossible sizes. */
	CHECK_EQ(scs_plain_size(0, &p), -EBADMSG);
	CHECK_EQ(scs_plain_size(HS, &p), -EBADMSG);                 /* no record */
	CHECK_EQ(scs_plain_size(HS + 27, &p), -EBADMSG);            /* short record */
	CHECK_EQ(scs_plain_size(HS + C + O + 28, &p), -EBADMSG);    /* empty last after data */
	CHECK_EQ(scs_plain_size(HS + C + O + 27, &p), -EBADMSG);
	CHECK_EQ(scs_plain_size(HS + C + O + 1, &p), -EBADMSG);
	CHECK_EQ(scs_plain_size(HS + 2 * (C + O) + 28, &p), -EBADMSG);
	CHECK_EQ(scs_plain_size(HS + C + O + 29, &p), 0);
	CHECK(p == C + 1);
	CHECK_EQ(scs_plain_size(UINT64_MAX, &p), -EBADMSG);
	/* Largest object sizes don't overflow. */
	int r = scs_plain_size(UINT64_MAX - 5, &p);
	CHECK(r == -EBADMSG || p <= SCS_PLAIN_SIZE_MAX);
}

static void test_chunks(void)
{
	uint8_t key[32], fid[16], fid2[16];
	static uint8_t pt[SCS_CHUNK_SIZE], rec[SCS_RECORD_SIZE], out[SCS_CHUNK_SIZE];
	scs_random(key, 32);
	scs_random(fid, 16);
	memcpy(fid2, fid, 16);
	fid2[15] ^= 1;
	fill(pt, sizeof pt, 9);
	scs_gcm *g = scs_gcm_new(key);
	CHECK(g != NULL);

	/* Full, non-last chunk 5. */
	CHECK_EQ(scs_chunk_seal(g, fid, 5, 0, pt, SCS_CHUNK_SIZE, rec), 0);
	CHECK_EQ(scs_chunk_open(g, fid, 5, 0, rec, SCS_RECORD_SIZE, out), 0);
	CHECK_MEM(out, pt, SCS_CHUNK_SIZE);
	CHECK_EQ(scs_chunk_open(g, fid, 4, 0, rec, SCS_RECORD_SIZE, out), -EBADMSG);
	CHECK_EQ(scs_chunk_open(g, fid, 6, 0, rec, SCS_RECORD_SIZE, out), -EBADMSG);
	CHECK_EQ(scs_chunk_open(g, fid, 5 + (UINT64_C(1) << 32), 0, rec, SCS_RECORD_SIZE, out), -EBADMSG);
	CHECK_EQ(scs_chunk_open(g, fid, 5, 1, rec, SCS_RECORD_SIZE, out), -EBADMSG);
	CHECK_EQ(scs_chunk_open(g, fid2, 5, 0, rec, SCS_RECORD_SIZE, out), -EBADMSG);
	CHECK_EQ(scs_chunk_open(g, fid, 5, 0, rec, SCS_RECORD_SIZE - 1, out), -EBADMSG);
	/* Flipped bytes in nonce, ciphertext (first, middle, last) and tag. */
	const size_t pos[] = { 0, 11, 12, 13, 12 + SCS_CHUNK_SIZE / 2, 11 + SCS_CHUNK_SIZE,
			       12 + SCS_CHUNK_SIZE, SCS_RECORD_SIZE - 1 };
	for (size_t i = 0; i < sizeof pos / sizeof pos[0]; i++) {
		rec[pos[i]] ^= 0x40;
		CHECK_EQ(scs_chunk_open(g, fid, 5, 0, rec, SCS_RECORD_SIZE, out), -EBADMSG);
		rec[pos[i]] ^= 0x40;
	}
	/* Another file key. */
	uint8_t key2[32];
	memcpy(key2, key, 32);
	key2[7] ^= 1;
	scs_gcm *g2 = scs_gcm_new(key2);
	CHECK_EQ(scs_chunk_open(g2, fid, 5, 0, rec, SCS_RECORD_SIZE, out), -EBADMSG);
	scs_gcm_free(g2);

	/* Short last chunk; can't claim non-last; random nonces differ. */
	uint8_t rec2[SCS_RECORD_SIZE];
	CHECK_EQ(scs_chunk_seal(g, fid, 2, 1, pt, 100, rec), 0);
	CHECK_EQ(scs_chunk_seal(g, fid, 2, 1, pt, 100, rec2), 0);
	CHECK(memcmp(rec, rec2, 12) != 0);
	CHECK_EQ(scs_chunk_open(g, fid, 2, 1, rec, 128, out), 0);
	CHECK_MEM(out, pt, 100);
	CHECK_EQ(scs_chunk_open(g, fid, 2, 0, rec, 128, out), -EBADMSG);
	CHECK_EQ(scs_chunk_open(g, fid, 2, 1, rec, 127, out), -EBADMSG);
	/* A full chunk sealed as last differs from the same one sealed non-last:
	 * truncation at a chunk boundary is caught. */
	CHECK_EQ(scs_chunk_seal(g, fid, 1, 1, pt, SCS_CHUNK_SIZE, rec), 0);
	CHECK_EQ(scs_chunk_open(g, fid, 1, 1, rec, SCS_RECORD_SIZE, out), 0);
	CHECK_EQ(scs_chunk_open(g, fid, 1, 0, rec, SCS_RECORD_SIZE, out), -EBADMSG);
	/* Empty last record (empty file). */
	CHECK_EQ(scs_chunk_seal(g, fid, 0, 1, pt, 0, rec), 0);
	CHECK_EQ(scs_chunk_open(g, fid, 0, 1, rec, 28, out), 0);
	CHECK_EQ(scs_chunk_open(g, fid2, 0, 1, rec, 28, out), -EBADMSG);
	CHECK_EQ(scs_chunk_open(g, fid, 0, 1, rec, 27, out), -EBADMSG);
	/* All-zero records are not holes. */
	memset(rec, 0, SCS_RECORD_SIZE);
	CHECK_EQ(scs_chunk_open(g, fid, 0, 0, rec, SCS_RECORD_SIZE, out), -EBADMSG);
	CHECK_EQ(scs_chunk_open(g, fid, 0, 1, rec, 28, out), -EBADMSG);
	/* Seal refuses shapes no valid object has. */
	CHECK_EQ(scs_chunk_seal(g, fid, 0, 0, pt, 100, rec), -EINVAL);
	CHECK_EQ(scs_chunk_seal(g, fid, 0, 1, pt, SCS_CHUNK_SIZE + 1, rec), -EINVAL);
	scs_gcm_free(g);
}

/* ---- golden vectors (test/golden/vectors, see README there) ---- */

static size_t read_file(const char *path, uint8_t *buf, size_t cap)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		fprintf(stderr, "cannot open %s (run from test/unit)\n", path);
		unit_failures++;
		return 0;
	}
	size_t n = fread(buf, 1, cap, f);
	fclose(f);
	return n;
}

/* Values of "key = hex" lines in inputs.txt. */
static int golden_hex(const char *key, uint8_t *out, size_t n)
{
	static char text[8192];
	static size_t tlen;
	if (!tlen)
		tlen = read_file("../golden/vectors/inputs.txt", (uint8_t *)text, sizeof text - 1);
	text[tlen] = 0;
	size_t kl = strlen(key);
	for (char *l = text; l && *l; l = strchr(l, '\n'), l = l ? l + 1 : NULL) {
		if (strncmp(l, key, kl) == 0 && strncmp(l + kl, " = ", 3) == 0) {
			char *v = l + kl + 3, *e = strchr(v, '\n');
			size_t vl = e ? (size_t)(e - v) : strlen(v);
			if (vl == 2 * n && scs_hex_decode(v, vl, out, n) == (int)n)
				return 0;
		}
	}
	fprintf(stderr, "golden inputs.txt: no valid '%s'\n", key);
	unit_failures++;
	return -1;
}

static void test_golden_object(void)
{
	uint8_t epoch_key[32], seed[32], pub[32], fk[32];
	static uint8_t obj[80000], out[SCS_CHUNK_SIZE];
	scs_header h;
	uint64_t plain = 0;
	if (golden_hex("epoch_key", epoch_key, 32) || golden_hex("writer_seed", seed, 32))
		return;
	size_t n = read_file("../golden/vectors/file-70000.obj", obj, sizeof obj);
	CHECK_EQ(n, scs_object_size(70000));
	CHECK_EQ(scs_plain_size(n, &plain), 0);
	CHECK_EQ(plain, 70000);
	CHECK_EQ(scs_header_decode(obj, n, &h), 0);
	CHECK_EQ(h.epoch, 7);
	CHECK(h.file_version == 3);
	EVP_PKEY *sk = EVP_PKEY_new_raw_private_key_ex(NULL, "ED25519", NULL, seed, 32);
	CHECK(sk != NULL);
	CHECK_EQ(scs_ed25519_public(sk, pub), 0);
	EVP_PKEY_free(sk);
	CHECK_EQ(scs_header_verify(&h, pub), 0);
	uint8_t ch[32];
	CHECK_EQ(scs_sha256(obj + SCS_HEADER_SIZE, n - SCS_HEADER_SIZE, ch), 0);
	CHECK_MEM(ch, h.content_hash, 32);
	CHECK_EQ(scs_filekey_unwrap(epoch_key, &h, fk), 0);
	scs_gcm *g = scs_gcm_new(fk);
	uint64_t nrec = scs_nrecords(plain);
	CHECK_EQ(nrec, 3);
	for (uint64_t i = 0; i < nrec; i++) {
		int last = i == nrec - 1;
		size_t len = last ? (size_t)(plain - i * SCS_CHUNK_SIZE) : SCS_CHUNK_SIZE;
		CHECK_EQ(scs_chunk_open(g, h.file_id, i, last, obj + scs_record_offset(i),
					len + SCS_RECORD_OVERHEAD, out), 0);
		/* Plaintext byte k of the file is (k * 31 + k / 251) & 0xff. */
		int bad = 0;
		for (size_t k = 0; k < len; k++) {
			uint64_t off = i * SCS_CHUNK_SIZE + k;
			bad += out[k] != (uint8_t)(off * 31 + off / 251);
		}
		CHECK_EQ(bad, 0);
	}
	scs_gcm_free(g);
}

int main(void)
{
	test_header_layout();
	test_header_rejects();
	test_wrap();
	test_sign();
	test_sizes();
	test_chunks();
	test_golden_object();
	return unit_done("format");
}
