/* test_crypto.c - known-answer tests and failure behaviour of the EVP
 * wrappers.  Vectors: NIST GCM spec test cases 14 and 16 (AES-256), RFC 5869
 * A.1, RFC 8032 7.1 TEST 1, and AES-256-SIV vectors computed with
 * pycryptodome (its own AES, not OpenSSL) and python-cryptography, which
 * agree with each other and reproduce RFC 5297 A.1 for the 256-bit key. */
#include "unit.h"
#include "scs/crypto.h"

#include <errno.h>
#include <stdint.h>


static void test_sha256(void)
{
	uint8_t d[32], want[32], d2[32];
	unit_unhex("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", want, 32);
	CHECK_EQ(scs_sha256("abc", 3, d), 0);
	CHECK_MEM(d, want, 32);
	scs_sha256_ctx *c = scs_sha256_new();
	CHECK(c != NULL);
	CHECK_EQ(scs_sha256_update(c, "a", 1), 0);
	CHECK_EQ(scs_sha256_update(c, "", 0), 0);
	CHECK_EQ(scs_sha256_update(c, "bc", 2), 0);
	CHECK_EQ(scs_sha256_final(c, d2), 0);
	CHECK_MEM(d2, want, 32);
	CHECK_EQ(scs_sha256_reset(c), 0);
	CHECK_EQ(scs_sha256_update(c, "abc", 3), 0);
	CHECK_EQ(scs_sha256_final(c, d2), 0);
	CHECK_MEM(d2, want, 32);
	scs_sha256_free(c);
	unit_unhex("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", want, 32);
	CHECK_EQ(scs_sha256("", 0, d), 0);
	CHECK_MEM(d, want, 32);
}

static void test_random_ct(void)
{
	uint8_t a[32] = { 0 }, b[32] = { 0 }, z[32] = { 0 };
	CHECK_EQ(scs_random(a, sizeof a), 0);
	CHECK_EQ(scs_random(b, sizeof b), 0);
	CHECK(memcmp(a, b, 32) != 0);
	CHECK(memcmp(a, z, 32) != 0);
	CHECK(scs_ct_equal(a, a, 32));
	CHECK(!scs_ct_equal(a, b, 32));
	memcpy(b, a, 32);
	b[31] ^= 1;
	CHECK(!scs_ct_equal(a, b, 32));
	CHECK(scs_ct_equal(a, b, 31));
	scs_cleanse(a, sizeof a);
	CHECK_MEM(a, z, 32);
}

static void test_hkdf(void)
{
	uint8_t ikm[22], salt[13], info[10], okm[42], want[42];
	memset(ikm, 0x0b, sizeof ikm);
	unit_unhex("000102030405060708090a0b0c", salt, sizeof salt);
	unit_unhex("f0f1f2f3f4f5f6f7f8f9", info, sizeof info);
	unit_unhex("3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf"
		   "34007208d5b887185865", want, sizeof want);
	CHECK_EQ(scs_hkdf(ikm, sizeof ikm, salt, sizeof salt, info, sizeof info, okm, 42), 0);
	CHECK_MEM(okm, want, 42);
	/* RFC 5869 A.3: no salt, no info. */
	unit_unhex("8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d"
		   "9d201395faa4b61a96c8", want, sizeof want);
	CHECK_EQ(scs_hkdf(ikm, sizeof ikm, NULL, 0, NULL, 0, okm, 42), 0);
	CHECK_MEM(okm, want, 42);
	/* Different info, different key. */
	uint8_t k1[32], k2[32];
	CHECK_EQ(scs_hkdf(ikm, 22, NULL, 0, "scsfs v1 name key", 17, k1, 32), 0);
	CHECK_EQ(scs_hkdf(ikm, 22, NULL, 0, "scsfs v1 canary", 15, k2, 32), 0);
	CHECK(memcmp(k1, k2, 32) != 0);
	CHECK_EQ(scs_hkdf(NULL, 0, NULL, 0, NULL, 0, k1, 32), -EINVAL);
}

static void test_gcm_kat(void)
{
	uint8_t key[32], iv[12], pt[60], aad[20], want_ct[60], want_tag[16];
	uint8_t ct[60], tag[16], out[60];
	/* NIST GCM test case 16. */
	unit_unhex("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308", key, 32);
	unit_unhex("cafebabefacedbaddecaf888", iv, 12);
	unit_unhex("d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
		   "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39", pt, 60);
	unit_unhex("feedfacedeadbeeffeedfacedeadbeefabaddad2", aad, 20);
	unit_unhex("522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
		   "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662", want_ct, 60);
	unit_unhex("76fc6ece0f4e1768cddf8853bb2d551b", want_tag, 16);

	scs_gcm *g = scs_gcm_new(key);
	CHECK(g != NULL);
	/* Several calls on one context: the key schedule is reused. */
	for (int round = 0; round < 3; round++) {
		memset(ct, 0, sizeof ct);
		CHECK_EQ(scs_gcm_seal(g, iv, aad, 20, pt, 60, ct, tag), 0);
		CHECK_MEM(ct, want_ct, 60);
		CHECK_MEM(tag, want_tag, 16);
		CHECK_EQ(scs_gcm_open(g, iv, aad, 20, ct, 60, tag, out), 0);
		CHECK_MEM(out, pt, 60);
	}
	/* In place. */
	memcpy(out, pt, 60);
	CHECK_EQ(scs_gcm_seal(g, iv, aad, 20, out, 60, out, tag), 0);
	CHECK_MEM(out, want_ct, 60);
	CHECK_EQ(scs_gcm_open(g, iv, aad, 20, out, 60, tag, out), 0);
	CHECK_MEM(out, pt, 60);

	/* Any change anywhere: -EBADMSG and the output is wiped. */
	uint8_t bad[60];
	memcpy(bad, want_ct, 60);
	bad[59] ^= 0x80;
	memset(out, 0x55, sizeof out);
	CHECK_EQ(scs_gcm_open(g, iv, aad, 20, bad, 60, want_tag, out), -EBADMSG);
	for (int i = 0; i < 60; i++)
		if (out[i]) {
			CHECK(!"unauthenticated plaintext left in output");
			break;
		}
	uint8_t badtag[16];
	memcpy(badtag, want_tag, 16);
	badtag[0] ^= 1;
	CHECK_EQ(scs_gcm_open(g, iv, aad, 20, want_ct, 60, badtag, out), -EBADMSG);
	aad[3] ^= 4;
	CHECK_EQ(scs_gcm_open(g, iv, aad, 20, want_ct, 60, want_tag, out), -EBADMSG);
	aad[3] ^= 4;
	CHECK_EQ(scs_gcm_open(g, iv, aad, 19, want_ct, 60, want_tag, out), -EBADMSG);
	iv[11] ^= 1;
	CHECK_EQ(scs_gcm_open(g, iv, aad, 20, want_ct, 60, want_tag, out), -EBADMSG);
	iv[11] ^= 1;
	CHECK_EQ(scs_gcm_open(g, iv, aad, 20, want_ct, 59, want_tag, out), -EBADMSG);
	/* And the context still works after failures. */
	CHECK_EQ(scs_gcm_open(g, iv, aad, 20, want_ct, 60, want_tag, out), 0);
	CHECK_MEM(out, pt, 60);
	scs_gcm_free(g);

	/* One-shot forms and NIST test case 14 (zero key/iv, no AAD). */
	memset(key, 0, 32);
	memset(iv, 0, 12);
	memset(pt, 0, 16);
	unit_unhex("cea7403d4d606b6e074ec5d3baf39d18", want_ct, 16);
	unit_unhex("d0d1c8a799996bf0265b98b5d48ab919", want_tag, 16);
	CHECK_EQ(scs_gcm_seal1(key, iv, NULL, 0, pt, 16, ct, tag), 0);
	CHECK_MEM(ct, want_ct, 16);
	CHECK_MEM(tag, want_tag, 16);
	CHECK_EQ(scs_gcm_open1(key, iv, NULL, 0, ct, 16, tag, out), 0);
	CHECK_MEM(out, pt, 16);
	key[0] = 1;
	CHECK_EQ(scs_gcm_open1(key, iv, NULL, 0, ct, 16, tag, out), -EBADMSG);
	/* Empty message: the tag alone authenticates the AAD. */
	CHECK_EQ(scs_gcm_seal1(key, iv, (const uint8_t *)"ad", 2, NULL, 0, ct, tag), 0);
	CHECK_EQ(scs_gcm_open1(key, iv, (const uint8_t *)"ad", 2, ct, 0, tag, out), 0);
	CHECK_EQ(scs_gcm_open1(key, iv, (const uint8_t *)"ae", 2, ct, 0, tag, out), -EBADMSG);
}

static void test_siv(void)
{
	uint8_t key[64], ad[24], pt[14], want[30], out[64], back[64];
	unit_unhex("fffefdfcfbfaf9f8f7f6f5f4f3f2f1f0f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff"
		   "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f", key, 64);
	unit_unhex("101112131415161718191a1b1c1d1e1f2021222324252627", ad, 24);
	unit_unhex("112233445566778899aabbccddee", pt, 14);
	unit_unhex("724dfb2eaf94dbb19b0ba3a299a0801e521c3383e81ba1f96c6af7099651", want, 30);
	CHECK_EQ(scs_siv_seal(key, ad, 24, pt, 14, out), 0);
	CHECK_MEM(out, want, 30);
	CHECK_EQ(scs_siv_open(key, ad, 24, out, 30, back), 0);
	CHECK_MEM(back, pt, 14);

	/* A name-like case: 16-byte directory id as AD. */
	uint8_t dirid[16], want2[26];
	for (int i = 0; i < 16; i++)
		dirid[i] = (uint8_t)i;
	unit_unhex("9f5d1c55f30032120eb68c45383ecf0a498d4c7009a4aea8bb01", want2, 26);
	CHECK_EQ(scs_siv_seal(key, dirid, 16, (const uint8_t *)"report.odt", 10, out), 0);
	CHECK_MEM(out, want2, 26);
	/* Deterministic. */
	CHECK_EQ(scs_siv_seal(key, dirid, 16, (const uint8_t *)"report.odt", 10, back), 0);
	CHECK_MEM(back, out, 26);
	/* An empty AD is one empty component (RFC 5297 S2V), not "no AD". */
	unit_unhex("4edc32ae8c6e97e9c2d5aa24078de21fe1356ac3a4dfacbc06d3", want2, 26);
	CHECK_EQ(scs_siv_seal(key, NULL, 0, (const uint8_t *)"report.odt", 10, back), 0);
	CHECK_MEM(back, want2, 26);

	/* Tampering: AD, tag, ciphertext, key, truncation. */
	CHECK_EQ(scs_siv_open(key, dirid, 16, out, 26, back), 0);
	CHECK_MEM(back, "report.odt", 10);
	dirid[15] ^= 1;
	CHECK_EQ(scs_siv_open(key, dirid, 16, out, 26, back), -EBADMSG);
	dirid[15] ^= 1;
	for (int i = 0; i < 26; i++) {
		out[i] ^= 0x20;
		CHECK_EQ(scs_siv_open(key, dirid, 16, out, 26, back), -EBADMSG);
		out[i] ^= 0x20;
	}
	CHECK_EQ(scs_siv_open(key, dirid, 16, out, 25, back), -EBADMSG);
	CHECK_EQ(scs_siv_open(key, dirid, 16, out, 15, back), -EBADMSG);
	key[40] ^= 1;
	CHECK_EQ(scs_siv_open(key, dirid, 16, out, 26, back), -EBADMSG);
	/* Empty messages are not supported (never needed): refused. */
	CHECK_EQ(scs_siv_seal(key, dirid, 16, pt, 0, out), -EINVAL);
	CHECK_EQ(scs_siv_open(key, dirid, 16, out, 16, back), -EBADMSG);
}

static EVP_PKEY *ed_from_seed(const uint8_t seed[32])
{
	return EVP_PKEY_new_raw_private_key_ex(NULL, "ED25519", NULL, seed, 32);
}

static void test_ed25519(void)
{
	uint8_t seed[32], pub[32], want_pub[32], sig[64], want_sig[64];
	unit_unhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60", seed, 32);
	unit_unhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", want_pub, 32);
	unit_unhex("e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555f"
		   "b8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b", want_sig, 64);
	EVP_PKEY *k = ed_from_seed(seed);
	CHECK(k != NULL);
	CHECK_EQ(scs_ed25519_public(k, pub), 0);
	CHECK_MEM(pub, want_pub, 32);
	CHECK_EQ(scs_ed25519_sign(k, "", 0, sig), 0);
	CHECK_MEM(sig, want_sig, 64);
	CHECK_EQ(scs_ed25519_verify(pub, "", 0, sig), 0);
	CHECK_EQ(scs_ed25519_verify(pub, "x", 1, sig), -EBADMSG);
	EVP_PKEY_free(k);

	/* Fresh key: any single bit flipped in message, signature or public
	 * key makes verification fail. */
	const char msg[] = "scsfs v1 header sig test message";
	uint8_t m[sizeof msg];
	memcpy(m, msg, sizeof m);
	CHECK_EQ(scs_ed25519_generate(&k), 0);
	CHECK_EQ(scs_ed25519_public(k, pub), 0);
	CHECK_EQ(scs_ed25519_sign(k, m, sizeof m, sig), 0);
	CHECK_EQ(scs_ed25519_verify(pub, m, sizeof m, sig), 0);
	int accepted = 0;
	for (size_t bit = 0; bit < sizeof m * 8; bit++) {
		m[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		accepted += scs_ed25519_verify(pub, m, sizeof m, sig) == 0;
		m[bit / 8] ^= (uint8_t)(1u << (bit % 8));
	}
	for (size_t bit = 0; bit < 64 * 8; bit++) {
		sig[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		accepted += scs_ed25519_verify(pub, m, sizeof m, sig) == 0;
		sig[bit / 8] ^= (uint8_t)(1u << (bit % 8));
	}
	for (size_t bit = 0; bit < 32 * 8; bit++) {
		pub[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		accepted += scs_ed25519_verify(pub, m, sizeof m, sig) == 0;
		pub[bit / 8] ^= (uint8_t)(1u << (bit % 8));
	}
	CHECK_EQ(accepted, 0);
	CHECK_EQ(scs_ed25519_verify(pub, m, sizeof m, sig), 0);
	/* Small-order public keys: OpenSSL alone accepts the all-zero
	 * signature under the all-zero key; we refuse every such key. */
	uint8_t zpub[32] = { 0 }, zsig[64] = { 0 };
	CHECK(!scs_ed25519_pub_ok(zpub));
	CHECK_EQ(scs_ed25519_verify(zpub, "anything", 8, zsig), -EBADMSG);
	zpub[31] = 0x80;
	CHECK(!scs_ed25519_pub_ok(zpub));
	zpub[31] = 0;
	zpub[0] = 1;
	CHECK(!scs_ed25519_pub_ok(zpub));
	unit_unhex("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa", zpub, 32);
	CHECK(!scs_ed25519_pub_ok(zpub));
	unit_unhex("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff", zpub, 32);
	CHECK(!scs_ed25519_pub_ok(zpub));
	CHECK(scs_ed25519_pub_ok(pub));
	CHECK(scs_ed25519_pub_ok(want_pub));
	/* Wrong key type is refused. */
	EVP_PKEY *rsa = NULL;
	CHECK_EQ(scs_rsa_generate(1024, &rsa), -EINVAL);
	CHECK(rsa == NULL);
	EVP_PKEY_free(k);
}

static void test_rsa(void)
{
	EVP_PKEY *k = NULL, *k2 = NULL;
	CHECK_EQ(scs_rsa_generate(SCS_RSA_BITS, &k), 0);
	CHECK(k != NULL);
	CHECK_EQ(EVP_PKEY_get_bits(k), 3072);
	uint8_t secret[32], ct[512], pt[512];
	size_t ctlen = sizeof ct, ptlen = sizeof pt, need = 0;
	const char label[] = "scsfs v1 epoch wrap\x01\x02";
	scs_random(secret, sizeof secret);

	CHECK_EQ(scs_rsa_oaep_encrypt(k, label, sizeof label - 1, secret, 32, NULL, &need), 0);
	CHECK_EQ(need, 384);
	CHECK_EQ(scs_rsa_oaep_encrypt(k, label, sizeof label - 1, secret, 32, ct, &ctlen), 0);
	CHECK_EQ(ctlen, 384);
	CHECK_EQ(scs_rsa_oaep_decrypt(k, label, sizeof label - 1, ct, ctlen, pt, &ptlen), 0);
	CHECK_EQ(ptlen, 32);
	CHECK_MEM(pt, secret, 32);
	/* Randomised: two encryptions differ. */
	uint8_t ct2[512];
	size_t ct2len = sizeof ct2;
	CHECK_EQ(scs_rsa_oaep_encrypt(k, label, sizeof label - 1, secret, 32, ct2, &ct2len), 0);
	CHECK(memcmp(ct, ct2, 384) != 0);

	/* Wrong label (one bit, shorter, none), tampered ct, too small out. */
	char wl[sizeof label];
	memcpy(wl, label, sizeof wl);
	wl[sizeof label - 2] ^= 1;
	ptlen = sizeof pt;
	CHECK_EQ(scs_rsa_oaep_decrypt(k, wl, sizeof label - 1, ct, ctlen, pt, &ptlen), -EBADMSG);
	ptlen = sizeof pt;
	CHECK_EQ(scs_rsa_oaep_decrypt(k, label, sizeof label - 2, ct, ctlen, pt, &ptlen), -EBADMSG);
	ptlen = sizeof pt;
	CHECK_EQ(scs_rsa_oaep_decrypt(k, NULL, 0, ct, ctlen, pt, &ptlen), -EBADMSG);
	ct[100] ^= 1;
	ptlen = sizeof pt;
	CHECK_EQ(scs_rsa_oaep_decrypt(k, label, sizeof label - 1, ct, ctlen, pt, &ptlen), -EBADMSG);
	ct[100] ^= 1;
	ptlen = 31;
	CHECK_EQ(scs_rsa_oaep_decrypt(k, label, sizeof label - 1, ct, ctlen, pt, &ptlen), -EBADMSG);
	ptlen = sizeof pt;
	CHECK_EQ(scs_rsa_oaep_decrypt(k, label, sizeof label - 1, ct, ctlen - 1, pt, &ptlen), -EBADMSG);
	/* Another key cannot open it. */
	CHECK_EQ(scs_rsa_generate(SCS_RSA_BITS, &k2), 0);
	ptlen = sizeof pt;
	CHECK_EQ(scs_rsa_oaep_decrypt(k2, label, sizeof label - 1, ct, ctlen, pt, &ptlen), -EBADMSG);
	/* Output buffer too small for encryption. */
	ctlen = 383;
	CHECK_EQ(scs_rsa_oaep_encrypt(k, label, sizeof label - 1, secret, 32, ct, &ctlen), -ENOBUFS);
	/* Not an RSA key. */
	EVP_PKEY *ed = NULL;
	scs_ed25519_generate(&ed);
	ctlen = sizeof ct;
	CHECK(scs_rsa_oaep_encrypt(ed, label, 3, secret, 32, ct, &ctlen) < 0);
	EVP_PKEY_free(ed);
	EVP_PKEY_free(k2);
	EVP_PKEY_free(k);
}

int main(void)
{
	test_sha256();
	test_random_ct();
	test_hkdf();
	test_gcm_kat();
	test_siv();
	test_ed25519();
	test_rsa();
	return unit_done("crypto");
}
