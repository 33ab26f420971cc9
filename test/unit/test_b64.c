/* test_b64.c - RFC 4648 vectors and strict (canonical-only) decoding. */
#include "unit.h"
#include "scs/b64.h"

#include <errno.h>
#include <stdint.h>

static const struct { const char *in, *std, *url; } rfc4648[] = {
	{ "", "", "" },
	{ "f", "Zg==", "Zg" },
	{ "fo", "Zm8=", "Zm8" },
	{ "foo", "Zm9v", "Zm9v" },
	{ "foob", "Zm9vYg==", "Zm9vYg" },
	{ "fooba", "Zm9vYmE=", "Zm9vYmE" },
	{ "foobar", "Zm9vYmFy", "Zm9vYmFy" },
};

static void test_vectors(void)
{
	char out[64];
	uint8_t dec[64];
	for (size_t i = 0; i < sizeof rfc4648 / sizeof rfc4648[0]; i++) {
		const char *in = rfc4648[i].in;
		size_t n = strlen(in);
		CHECK_EQ(scs_b64_len(n), strlen(rfc4648[i].std));
		scs_b64_encode((const uint8_t *)in, n, out);
		CHECK(strcmp(out, rfc4648[i].std) == 0);
		CHECK_EQ(scs_b64_decode(out, strlen(out), dec, sizeof dec), n);
		CHECK_MEM(dec, in, n);

		CHECK_EQ(scs_b64url_len(n), strlen(rfc4648[i].url));
		scs_b64url_encode((const uint8_t *)in, n, out);
		CHECK(strcmp(out, rfc4648[i].url) == 0);
		CHECK_EQ(scs_b64url_decode(out, strlen(out), dec, sizeof dec), n);
		CHECK_MEM(dec, in, n);
	}
	/* The two alphabets differ exactly in 62/63. */
	const uint8_t ff[] = { 0xfb, 0xff, 0xbf };
	scs_b64url_encode(ff, 3, out);
	CHECK(strcmp(out, "-_-_") == 0);
	scs_b64_encode(ff, 3, out);
	CHECK(strcmp(out, "+/+/") == 0);
}

static void test_roundtrip_all_lengths(void)
{
	uint8_t in[200], dec[200];
	char enc[300];
	for (size_t i = 0; i < sizeof in; i++)
		in[i] = (uint8_t)(i * 37 + 11);
	for (size_t n = 0; n <= sizeof in; n++) {
		scs_b64url_encode(in, n, enc);
		CHECK_EQ(strlen(enc), scs_b64url_len(n));
		CHECK(scs_b64url_is_alphabet(enc, strlen(enc)));
		CHECK_EQ(scs_b64url_decode(enc, strlen(enc), dec, sizeof dec), n);
		CHECK_MEM(dec, in, n);
		scs_b64_encode(in, n, enc);
		CHECK_EQ(strlen(enc), scs_b64_len(n));
		CHECK_EQ(scs_b64_decode(enc, strlen(enc), dec, sizeof dec), n);
		CHECK_MEM(dec, in, n);
	}
}

static void test_strict(void)
{
	uint8_t out[16];
	const char *bad_url[] = {
		"Zg==",     /* padding */
		"Zg=",
		"Z",        /* length 1 mod 4 */
		"Zm9vY",
		"Zh",       /* non-zero trailing bits: canonical is "Zg" */
		"Zm9=",
		"Zm8",      /* fine: "fo" */
		"Zm+v",     /* standard alphabet char */
		"Zm/v",
		"Zm9 v",    /* whitespace */
		"Zm9v\n",
		"Zm\0v",
	};
	for (size_t i = 0; i < sizeof bad_url / sizeof bad_url[0]; i++) {
		long r = scs_b64url_decode(bad_url[i], i == 11 ? 4 : strlen(bad_url[i]), out, sizeof out);
		if (i == 6)
			CHECK_EQ(r, 2);
		else
			CHECK_EQ(r, -EINVAL);
	}
	/* Three characters carry 18 bits for 16: the low 2 must be zero. */
	CHECK_EQ(scs_b64url_decode("Zm8", 3, out, sizeof out), 2);
	CHECK_EQ(scs_b64url_decode("Zm4", 3, out, sizeof out), 2);
	CHECK_EQ(scs_b64url_decode("Zm9", 3, out, sizeof out), -EINVAL);
	CHECK_EQ(scs_b64url_decode("Zm-", 3, out, sizeof out), -EINVAL);
	CHECK_EQ(scs_b64url_decode("Zm_", 3, out, sizeof out), -EINVAL);

	const char *bad_std[] = {
		"Zg",       /* missing padding */
		"Zg=",
		"Zh==",     /* non-canonical bits */
		"Zm9=Zm9v", /* padding in the middle */
		"Z===",
		"====",
		"Zm-v",     /* url alphabet */
		"Zm_v",
		"Zm9v ",
		"=Zm9",
		"Zg=A",
	};
	for (size_t i = 0; i < sizeof bad_std / sizeof bad_std[0]; i++)
		CHECK_EQ(scs_b64_decode(bad_std[i], strlen(bad_std[i]), out, sizeof out), -EINVAL);
	CHECK_EQ(scs_b64_decode("", 0, out, sizeof out), 0);

	/* Output capacity is enforced. */
	CHECK_EQ(scs_b64url_decode("Zm9vYmFy", 8, out, 5), -EINVAL);
	CHECK_EQ(scs_b64url_decode("Zm9vYmFy", 8, out, 6), 6);
	CHECK_EQ(scs_b64_decode("Zm9vYg==", 8, out, 3), -EINVAL);
	CHECK_EQ(scs_b64_decode("Zm9vYg==", 8, out, 4), 4);

	CHECK(scs_b64url_is_alphabet("azAZ09-_", 8));
	CHECK(!scs_b64url_is_alphabet("a=", 2));
	CHECK(!scs_b64url_is_alphabet("a.b", 3));
	CHECK(!scs_b64url_is_alphabet("a b", 3));
	CHECK(scs_b64url_is_alphabet("", 0));
}

static void test_hex(void)
{
	const uint8_t in[] = { 0x00, 0x01, 0x7f, 0x80, 0xab, 0xff };
	char out[13];
	uint8_t dec[6];
	scs_hex_encode(in, sizeof in, out);
	CHECK(strcmp(out, "00017f80abff") == 0);
	CHECK_EQ(scs_hex_decode(out, 12, dec, sizeof dec), 6);
	CHECK_MEM(dec, in, 6);
	CHECK_EQ(scs_hex_decode("", 0, dec, sizeof dec), 0);
	CHECK_EQ(scs_hex_decode("00017F80ABFF", 12, dec, sizeof dec), -EINVAL); /* uppercase */
	CHECK_EQ(scs_hex_decode("0", 1, dec, sizeof dec), -EINVAL);
	CHECK_EQ(scs_hex_decode("0g", 2, dec, sizeof dec), -EINVAL);
	CHECK_EQ(scs_hex_decode(" 0", 2, dec, sizeof dec), -EINVAL);
	CHECK_EQ(scs_hex_decode("0x", 2, dec, sizeof dec), -EINVAL);
	CHECK_EQ(scs_hex_decode("00017f80abff", 12, dec, 5), -EINVAL);
}

int main(void)
{
	test_vectors();
	test_roundtrip_all_lengths();
	test_strict();
	test_hex();
	return unit_done("b64");
}
