/* crypto.c - thin wrappers over OpenSSL 3 EVP (scs/crypto.h).
 *
 * Algorithms are fetched once (EVP_CIPHER_fetch / EVP_KDF_fetch) and kept
 * for the life of the process.  Every failure of an authenticated
 * decryption or a signature check returns -EBADMSG and leaves no partial
 * plaintext behind. */
#include "scs/crypto.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>

static EVP_CIPHER *alg_gcm, *alg_siv;
static EVP_KDF *alg_hkdf;
static EVP_MD *alg_sha256;
static pthread_once_t alg_once = PTHREAD_ONCE_INIT;

static void alg_fetch(void)
{
	alg_gcm = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
	alg_siv = EVP_CIPHER_fetch(NULL, "AES-256-SIV", NULL);
	alg_hkdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
	alg_sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
}

static int algs_ready(void)
{
	pthread_once(&alg_once, alg_fetch);
	return alg_gcm && alg_siv && alg_hkdf && alg_sha256;
}

/* OpenSSL keeps a per-thread error queue; we report through return codes,
 * so drop whatever a failed call queued rather than let it pile up. */
static int fail(int code)
{
	ERR_clear_error();
	return code;
}

int scs_random(void *buf, size_t n)
{
	uint8_t *p = buf;
	while (n) {
		int k = n > INT_MAX ? INT_MAX : (int)n;
		if (RAND_bytes(p, k) != 1)
			return fail(-EIO);
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

void scs_cleanse(void *p, size_t n)
{
	if (p && n)
		OPENSSL_cleanse(p, n);
}

int scs_ct_equal(const void *a, const void *b, size_t n)
{
	return CRYPTO_memcmp(a, b, n) == 0;
}

/* ---- SHA-256 ---- */

struct scs_sha256_ctx {
	EVP_MD_CTX *md;
};

int scs_sha256(const void *data, size_t n, uint8_t out[SCS_SHA256_LEN])
{
	if (!algs_ready())
		return fail(-ENOSYS);
	unsigned int len = 0;
	if (EVP_Digest(data, n, out, &len, alg_sha256, NULL) != 1 || len != SCS_SHA256_LEN)
		return fail(-EIO);
	return 0;
}

scs_sha256_ctx *scs_sha256_new(void)
{
	if (!algs_ready())
		return NULL;
	scs_sha256_ctx *c = OPENSSL_zalloc(sizeof *c);
	if (!c)
		return NULL;
	c->md = EVP_MD_CTX_new();
	if (!c->md || EVP_DigestInit_ex2(c->md, alg_sha256, NULL) != 1) {
		scs_sha256_free(c);
		ERR_clear_error();
		return NULL;
	}
	return c;
}

int scs_sha256_update(scs_sha256_ctx *c, const void *data, size_t n)
{
	if (n && EVP_DigestUpdate(c->md, data, n) != 1)
		return fail(-EIO);
	return 0;
}

int scs_sha256_final(scs_sha256_ctx *c, uint8_t out[SCS_SHA256_LEN])
{
	unsigned int len = 0;
	if (EVP_DigestFinal_ex(c->md, out, &len) != 1 || len != SCS_SHA256_LEN)
		return fail(-EIO);
	return 0;
}

int scs_sha256_reset(scs_sha256_ctx *c)
{
	if (EVP_DigestInit_ex2(c->md, alg_sha256, NULL) != 1)
		return fail(-EIO);
	return 0;
}

void scs_sha256_free(scs_sha256_ctx *c)
{
	if (!c)
		return;
	EVP_MD_CTX_free(c->md);
	OPENSSL_free(c);
}

/* ---- HKDF ---- */

int scs_hkdf(const uint8_t *ikm, size_t ikmlen, const uint8_t *salt, size_t saltlen,
	     const void *info, size_t infolen, uint8_t *out, size_t outlen)
{
	if (!algs_ready())
		return fail(-ENOSYS);
	if (!ikm || !ikmlen || !out || !outlen)
		return -EINVAL;
	EVP_KDF_CTX *k = EVP_KDF_CTX_new(alg_hkdf);
	if (!k)
		return fail(-ENOMEM);
	OSSL_PARAM params[5], *p = params;
	*p++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0);
	*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)ikm, ikmlen);
	if (salt && saltlen)
		*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt, saltlen);
	if (info && infolen)
		*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)info, infolen);
	*p = OSSL_PARAM_construct_end();
	int ok = EVP_KDF_derive(k, out, outlen, params) == 1;
	EVP_KDF_CTX_free(k);
	if (!ok) {
		scs_cleanse(out, outlen);
		return fail(-EIO);
	}
	return 0;
}

/* ---- AES-256-GCM ---- */

/* Two contexts, each keyed once: per call only the IV is set, so the AES
 * key schedule and GHASH tables are not rebuilt for every chunk. */
struct scs_gcm {
	EVP_CIPHER_CTX *enc;
	EVP_CIPHER_CTX *dec;
};

scs_gcm *scs_gcm_new(const uint8_t key[SCS_KEY_LEN])
{
	if (!algs_ready())
		return NULL;
	scs_gcm *g = OPENSSL_zalloc(sizeof *g);
	if (!g)
		return NULL;
	g->enc = EVP_CIPHER_CTX_new();
	g->dec = EVP_CIPHER_CTX_new();
	if (!g->enc || !g->dec ||
	    EVP_EncryptInit_ex2(g->enc, alg_gcm, key, NULL, NULL) != 1 ||
	    EVP_DecryptInit_ex2(g->dec, alg_gcm, key, NULL, NULL) != 1) {
		scs_gcm_free(g);
		ERR_clear_error();
		return NULL;
	}
	return g;
}

void scs_gcm_free(scs_gcm *g)
{
	if (!g)
		return;
	EVP_CIPHER_CTX_free(g->enc);    /* cleanses the key schedule */
	EVP_CIPHER_CTX_free(g->dec);
	OPENSSL_clear_free(g, sizeof *g);
}

/* Feed n bytes through EVP_*Update in int-sized pieces.  out NULL = AAD. */
static int gcm_update(EVP_CIPHER_CTX *c, int enc, uint8_t *out, const uint8_t *in, size_t n)
{
	while (n) {
		int k = n > (1 << 30) ? (1 << 30) : (int)n, outl = 0;
		int ok = enc ? EVP_EncryptUpdate(c, out, &outl, in, k)
			     : EVP_DecryptUpdate(c, out, &outl, in, k);
		if (ok != 1 || (out && outl != k))
			return -1;
		in += k;
		if (out)
			out += k;
		n -= (size_t)k;
	}
	return 0;
}

int scs_gcm_seal(scs_gcm *g, const uint8_t nonce[SCS_GCM_NONCE_LEN],
		 const uint8_t *aad, size_t aadlen, const uint8_t *pt, size_t n,
		 uint8_t *ct, uint8_t tag[SCS_GCM_TAG_LEN])
{
	int outl = 0;
	if (!g)
		return -EINVAL;
	if (EVP_EncryptInit_ex(g->enc, NULL, NULL, NULL, nonce) != 1 ||
	    gcm_update(g->enc, 1, NULL, aad, aadlen) ||
	    gcm_update(g->enc, 1, ct, pt, n) ||
	    EVP_EncryptFinal_ex(g->enc, ct + n, &outl) != 1 ||
	    EVP_CIPHER_CTX_ctrl(g->enc, EVP_CTRL_AEAD_GET_TAG, SCS_GCM_TAG_LEN, tag) != 1)
		return fail(-EIO);
	return 0;
}

int scs_gcm_open(scs_gcm *g, const uint8_t nonce[SCS_GCM_NONCE_LEN],
		 const uint8_t *aad, size_t aadlen, const uint8_t *ct, size_t n,
		 const uint8_t tag[SCS_GCM_TAG_LEN], uint8_t *pt)
{
	int outl = 0;
	uint8_t t[SCS_GCM_TAG_LEN];
	if (!g)
		return -EINVAL;
	memcpy(t, tag, sizeof t);       /* ctrl takes a non-const pointer */
	/* EVP_DecryptFinal_ex compares the tag in constant time. */
	if (EVP_DecryptInit_ex(g->dec, NULL, NULL, NULL, nonce) != 1 ||
	    gcm_update(g->dec, 0, NULL, aad, aadlen) ||
	    gcm_update(g->dec, 0, pt, ct, n) ||
	    EVP_CIPHER_CTX_ctrl(g->dec, EVP_CTRL_AEAD_SET_TAG, SCS_GCM_TAG_LEN, t) != 1 ||
	    EVP_DecryptFinal_ex(g->dec, pt + n, &outl) != 1) {
		scs_cleanse(pt, n);     /* never hand out unauthenticated plaintext */
		return fail(-EBADMSG);
	}
	return 0;
}

int scs_gcm_seal1(const uint8_t key[SCS_KEY_LEN], const uint8_t nonce[SCS_GCM_NONCE_LEN],
		  const uint8_t *aad, size_t aadlen, const uint8_t *pt, size_t n,
		  uint8_t *ct, uint8_t tag[SCS_GCM_TAG_LEN])
{
	scs_gcm *g = scs_gcm_new(key);
	if (!g)
		return -ENOMEM;
	int r = scs_gcm_seal(g, nonce, aad, aadlen, pt, n, ct, tag);
	scs_gcm_free(g);
	return r;
}

int scs_gcm_open1(const uint8_t key[SCS_KEY_LEN], const uint8_t nonce[SCS_GCM_NONCE_LEN],
		  const uint8_t *aad, size_t aadlen, const uint8_t *ct, size_t n,
		  const uint8_t tag[SCS_GCM_TAG_LEN], uint8_t *pt)
{
	scs_gcm *g = scs_gcm_new(key);
	if (!g)
		return -ENOMEM;
	int r = scs_gcm_open(g, nonce, aad, aadlen, ct, n, tag, pt);
	scs_gcm_free(g);
	return r;
}

/* ---- AES-256-SIV (RFC 5297), one associated-data component ---- */

/* OpenSSL's SIV takes each EVP_*Update(out = NULL) as one AD component and
 * allows a single update for the message.  OpenSSL 3.0 cannot seal an empty
 * message with SIV, so n >= 1 (names and other SIV inputs are never empty). */
/* Keying SIV (CMAC and CTR key schedules, and the S2V start value) costs
 * more than sealing a name.  Each thread keeps the last name key keyed into
 * an encrypt and a decrypt context that are never used directly: every
 * call copies the template (a copy carries the key schedules and the
 * initial S2V state), so the result is that of a freshly keyed context.
 * The key and the templates are cleansed when the key changes and when
 * the thread exits. */
struct siv_cache {
	uint8_t key[SCS_SIV_KEY_LEN];
	int keyed;
	EVP_CIPHER_CTX *tmpl[2];        /* [0] decrypt, [1] encrypt */
	EVP_CIPHER_CTX *work;
};

static pthread_key_t siv_key;
static pthread_once_t siv_once = PTHREAD_ONCE_INIT;

static void siv_cache_free(void *p)
{
	struct siv_cache *sc = p;
	if (!sc)
		return;
	EVP_CIPHER_CTX_free(sc->tmpl[0]);       /* frees cleanse key schedules */
	EVP_CIPHER_CTX_free(sc->tmpl[1]);
	EVP_CIPHER_CTX_free(sc->work);
	OPENSSL_clear_free(sc, sizeof *sc);
}

static void siv_once_init(void)
{
	pthread_key_create(&siv_key, siv_cache_free);
}

/* A context ready for one message under key (enc: encrypt), or NULL. */
static EVP_CIPHER_CTX *siv_ctx(const uint8_t key[SCS_SIV_KEY_LEN], int enc)
{
	pthread_once(&siv_once, siv_once_init);
	struct siv_cache *sc = pthread_getspecific(siv_key);
	if (!sc) {
		sc = OPENSSL_zalloc(sizeof *sc);
		if (!sc)
			return NULL;
		sc->tmpl[0] = EVP_CIPHER_CTX_new();
		sc->tmpl[1] = EVP_CIPHER_CTX_new();
		sc->work = EVP_CIPHER_CTX_new();
		if (!sc->tmpl[0] || !sc->tmpl[1] || !sc->work ||
		    pthread_setspecific(siv_key, sc) != 0) {
			siv_cache_free(sc);
			return NULL;
		}
	}
	if (!sc->keyed || !scs_ct_equal(sc->key, key, SCS_SIV_KEY_LEN)) {
		sc->keyed = 0;
		EVP_CIPHER_CTX_reset(sc->tmpl[0]);
		EVP_CIPHER_CTX_reset(sc->tmpl[1]);
		if (EVP_DecryptInit_ex2(sc->tmpl[0], alg_siv, key, NULL, NULL) != 1 ||
		    EVP_EncryptInit_ex2(sc->tmpl[1], alg_siv, key, NULL, NULL) != 1) {
			EVP_CIPHER_CTX_reset(sc->tmpl[0]);
			EVP_CIPHER_CTX_reset(sc->tmpl[1]);
			scs_cleanse(sc->key, sizeof sc->key);
			return NULL;
		}
		memcpy(sc->key, key, SCS_SIV_KEY_LEN);
		sc->keyed = 1;
	}
	if (EVP_CIPHER_CTX_copy(sc->work, sc->tmpl[enc ? 1 : 0]) != 1)
		return NULL;
	return sc->work;
}

int scs_siv_seal(const uint8_t key[SCS_SIV_KEY_LEN], const uint8_t *ad, size_t adlen,
		 const uint8_t *pt, size_t n, uint8_t *out)
{
	if (!algs_ready())
		return fail(-ENOSYS);
	if (n == 0 || n > INT_MAX - SCS_SIV_TAG_LEN || adlen > INT_MAX)
		return -EINVAL;
	EVP_CIPHER_CTX *c = siv_ctx(key, 1);
	if (!c)
		return fail(-ENOMEM);
	int outl = 0;
	uint8_t dummy = 0;
	if (EVP_EncryptUpdate(c, NULL, &outl, ad ? ad : &dummy, (int)adlen) != 1 ||
	    EVP_EncryptUpdate(c, out + SCS_SIV_TAG_LEN, &outl, pt, (int)n) != 1 ||
	    EVP_EncryptFinal_ex(c, out + SCS_SIV_TAG_LEN + n, &outl) != 1 ||
	    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_GET_TAG, SCS_SIV_TAG_LEN, out) != 1) {
		EVP_CIPHER_CTX_reset(c);
		return fail(-EIO);
	}
	EVP_CIPHER_CTX_reset(c);
	return 0;
}

int scs_siv_open(const uint8_t key[SCS_SIV_KEY_LEN], const uint8_t *ad, size_t adlen,
		 const uint8_t *in, size_t inlen, uint8_t *pt)
{
	if (!algs_ready())
		return fail(-ENOSYS);
	if (inlen <= SCS_SIV_TAG_LEN || inlen > INT_MAX || adlen > INT_MAX)
		return -EBADMSG;
	size_t n = inlen - SCS_SIV_TAG_LEN;
	EVP_CIPHER_CTX *c = siv_ctx(key, 0);
	if (!c)
		return fail(-ENOMEM);
	int outl = 0, r = 0;
	uint8_t tag[SCS_SIV_TAG_LEN], dummy = 0;
	memcpy(tag, in, sizeof tag);
	if (EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_SET_TAG, SCS_SIV_TAG_LEN, tag) != 1 ||
	    EVP_DecryptUpdate(c, NULL, &outl, ad ? ad : &dummy, (int)adlen) != 1 ||
	    EVP_DecryptUpdate(c, pt, &outl, in + SCS_SIV_TAG_LEN, (int)n) != 1 ||
	    EVP_DecryptFinal_ex(c, pt + n, &outl) != 1) {
		scs_cleanse(pt, n);
		r = -EBADMSG;
	}
	EVP_CIPHER_CTX_reset(c);
	return r ? fail(r) : 0;
}

/* ---- Ed25519 ---- */

int scs_ed25519_generate(EVP_PKEY **out)
{
	*out = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	return *out ? 0 : fail(-EIO);
}

int scs_ed25519_public(EVP_PKEY *k, uint8_t pub[SCS_ED25519_PUB_LEN])
{
	size_t len = SCS_ED25519_PUB_LEN;
	if (!k || !EVP_PKEY_is_a(k, "ED25519") ||
	    EVP_PKEY_get_raw_public_key(k, pub, &len) != 1 || len != SCS_ED25519_PUB_LEN)
		return fail(-EINVAL);
	return 0;
}

int scs_ed25519_sign(EVP_PKEY *sk, const void *msg, size_t n, uint8_t sig[SCS_ED25519_SIG_LEN])
{
	if (!sk || !EVP_PKEY_is_a(sk, "ED25519"))
		return -EINVAL;
	EVP_MD_CTX *m = EVP_MD_CTX_new();
	size_t siglen = SCS_ED25519_SIG_LEN;
	int r = -EIO;
	if (m && EVP_DigestSignInit_ex(m, NULL, NULL, NULL, NULL, sk, NULL) == 1 &&
	    EVP_DigestSign(m, sig, &siglen, msg, n) == 1 && siglen == SCS_ED25519_SIG_LEN)
		r = 0;
	EVP_MD_CTX_free(m);
	return r ? fail(r) : 0;
}

/* Encodings of the points of small order (and their non-canonical forms
 * y = p, p + 1), compared with the sign bit masked, as libsodium's
 * ge25519_has_small_order does.  OpenSSL's cofactorless verification
 * accepts e.g. an all-zero signature under the all-zero public key, so such
 * keys must never be trusted.  This is input validation on public data,
 * not a primitive. */
static const uint8_t small_order[7][32] = {
	{ 0 },                                                  /* 0, order 4 */
	{ 1 },                                                  /* 1, order 1 */
	{ 0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4, 0x89, 0xf2,
	  0xef, 0x98, 0xf0, 0xd5, 0xdf, 0xac, 0x05, 0xd3, 0xc6, 0x33, 0x39, 0xb1, 0x38,
	  0x02, 0x88, 0x6d, 0x53, 0xfc, 0x05 },                 /* order 8 */
	{ 0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b, 0x76, 0x0d,
	  0x10, 0x67, 0x0f, 0x2a, 0x20, 0x53, 0xfa, 0x2c, 0x39, 0xcc, 0xc6, 0x4e, 0xc7,
	  0xfd, 0x77, 0x92, 0xac, 0x03, 0x7a },                 /* order 8 */
	{ 0xec, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	  0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	  0xff, 0xff, 0xff, 0xff, 0xff, 0x7f },                 /* p - 1, order 2 */
	{ 0xed, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	  0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	  0xff, 0xff, 0xff, 0xff, 0xff, 0x7f },                 /* p = 0, order 4 */
	{ 0xee, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	  0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	  0xff, 0xff, 0xff, 0xff, 0xff, 0x7f },                 /* p + 1 = 1, order 1 */
};

int scs_ed25519_pub_ok(const uint8_t pub[SCS_ED25519_PUB_LEN])
{
	for (size_t j = 0; j < sizeof small_order / sizeof small_order[0]; j++) {
		uint8_t d = (uint8_t)((pub[31] & 0x7f) ^ small_order[j][31]);
		for (size_t i = 0; i < 31; i++)
			d |= (uint8_t)(pub[i] ^ small_order[j][i]);
		if (d == 0)
			return 0;
	}
	return 1;
}

int scs_ed25519_verify(const uint8_t pub[SCS_ED25519_PUB_LEN], const void *msg, size_t n,
		       const uint8_t sig[SCS_ED25519_SIG_LEN])
{
	if (!scs_ed25519_pub_ok(pub))
		return -EBADMSG;
	EVP_PKEY *pk = EVP_PKEY_new_raw_public_key_ex(NULL, "ED25519", NULL, pub,
						      SCS_ED25519_PUB_LEN);
	EVP_MD_CTX *m = EVP_MD_CTX_new();
	int r = -EBADMSG;
	if (pk && m && EVP_DigestVerifyInit_ex(m, NULL, NULL, NULL, NULL, pk, NULL) == 1 &&
	    EVP_DigestVerify(m, sig, SCS_ED25519_SIG_LEN, msg, n) == 1)
		r = 0;
	EVP_MD_CTX_free(m);
	EVP_PKEY_free(pk);
	return r ? fail(r) : 0;
}

/* ---- RSA-OAEP (SHA-256, MGF1-SHA-256, label) ---- */

int scs_rsa_generate(int bits, EVP_PKEY **out)
{
	*out = NULL;
	if (bits < SCS_RSA_BITS || bits > 16384)
		return -EINVAL;
	*out = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)bits);
	return *out ? 0 : fail(-EIO);
}

static EVP_PKEY_CTX *oaep_ctx(EVP_PKEY *k, int enc, const void *label, size_t labellen)
{
	if (!k || !EVP_PKEY_is_a(k, "RSA") || EVP_PKEY_get_bits(k) < SCS_RSA_BITS ||
	    labellen > INT_MAX)
		return NULL;
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_pkey(NULL, k, NULL);
	if (!c)
		return NULL;
	if ((enc ? EVP_PKEY_encrypt_init(c) : EVP_PKEY_decrypt_init(c)) != 1 ||
	    EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_OAEP_PADDING) != 1 ||
	    EVP_PKEY_CTX_set_rsa_oaep_md_name(c, "SHA256", NULL) != 1 ||
	    EVP_PKEY_CTX_set_rsa_mgf1_md_name(c, "SHA256", NULL) != 1)
		goto bad;
	if (labellen) {
		/* set0 takes ownership of the buffer, so hand it a copy. */
		void *l = OPENSSL_memdup(label, labellen);
		if (!l)
			goto bad;
		if (EVP_PKEY_CTX_set0_rsa_oaep_label(c, l, (int)labellen) != 1) {
			OPENSSL_free(l);
			goto bad;
		}
	}
	return c;
bad:
	EVP_PKEY_CTX_free(c);
	return NULL;
}

/* *outlen: capacity of out on entry (EVP convention), length on return.
 * out == NULL: *outlen is set to the size needed. */
int scs_rsa_oaep_encrypt(EVP_PKEY *pub, const void *label, size_t labellen,
			 const uint8_t *in, size_t n, uint8_t *out, size_t *outlen)
{
	EVP_PKEY_CTX *c = oaep_ctx(pub, 1, label, labellen);
	if (!c)
		return fail(-EINVAL);
	size_t need = 0;
	int r = -EIO;
	if (EVP_PKEY_encrypt(c, NULL, &need, in, n) != 1)
		goto out;
	if (!out) {
		*outlen = need;
		r = 0;
		goto out;
	}
	if (*outlen < need) {
		r = -ENOBUFS;
		goto out;
	}
	size_t len = *outlen;
	if (EVP_PKEY_encrypt(c, out, &len, in, n) != 1)
		goto out;      /* e.g. message too long for the modulus */
	*outlen = len;
	r = 0;
out:
	EVP_PKEY_CTX_free(c);
	return r ? fail(r) : 0;
}

/* Decrypts into a private buffer of the modulus size, then copies what fits:
 * every failure (bad padding, wrong label, wrong key, short out) is the same
 * -EBADMSG so the caller cannot become a padding oracle. */
int scs_rsa_oaep_decrypt(EVP_PKEY *priv, const void *label, size_t labellen,
			 const uint8_t *in, size_t n, uint8_t *out, size_t *outlen)
{
	EVP_PKEY_CTX *c = oaep_ctx(priv, 0, label, labellen);
	if (!c)
		return fail(-EBADMSG);
	size_t cap = (size_t)EVP_PKEY_get_size(priv), len = cap;
	uint8_t *tmp = OPENSSL_malloc(cap ? cap : 1);
	int r = -EBADMSG;
	if (tmp && EVP_PKEY_decrypt(c, tmp, &len, in, n) == 1 && len <= *outlen) {
		memcpy(out, tmp, len);
		*outlen = len;
		r = 0;
	}
	if (tmp)
		OPENSSL_clear_free(tmp, cap ? cap : 1);
	EVP_PKEY_CTX_free(c);
	return r ? fail(r) : 0;
}
