/* scs/crypto.h - thin wrappers over OpenSSL 3 EVP.  No primitive is
 * implemented here by hand.  Every function returns 0 on success and a
 * negative errno on failure; authentication failures are -EBADMSG and look
 * the same whatever the cause (no oracle). */
#ifndef SCS_CRYPTO_H
#define SCS_CRYPTO_H

#include <stddef.h>
#include <stdint.h>
#include <openssl/evp.h>

#define SCS_KEY_LEN       32   /* AES-256 / epoch / file keys */
#define SCS_SIV_KEY_LEN   64   /* AES-256-SIV (two 256-bit halves) */
#define SCS_GCM_NONCE_LEN 12
#define SCS_GCM_TAG_LEN   16
#define SCS_SIV_TAG_LEN   16
#define SCS_SHA256_LEN    32
#define SCS_ED25519_PUB_LEN 32
#define SCS_ED25519_SIG_LEN 64

int scs_random(void *buf, size_t n);
void scs_cleanse(void *p, size_t n);              /* OPENSSL_cleanse */
int scs_ct_equal(const void *a, const void *b, size_t n); /* 1 if equal */

int scs_sha256(const void *data, size_t n, uint8_t out[SCS_SHA256_LEN]);
/* Streaming SHA-256 (EVP_MD_CTX inside). */
typedef struct scs_sha256_ctx scs_sha256_ctx;
scs_sha256_ctx *scs_sha256_new(void);
int scs_sha256_update(scs_sha256_ctx *c, const void *data, size_t n);
int scs_sha256_final(scs_sha256_ctx *c, uint8_t out[SCS_SHA256_LEN]); /* then reusable after _reset */
int scs_sha256_reset(scs_sha256_ctx *c);
void scs_sha256_free(scs_sha256_ctx *c);

/* HKDF-SHA256 (RFC 5869) via EVP_KDF "HKDF". info is a label such as
 * "scsfs v1 name key"; salt may be NULL. */
int scs_hkdf(const uint8_t *ikm, size_t ikmlen, const uint8_t *salt, size_t saltlen,
	     const void *info, size_t infolen, uint8_t *out, size_t outlen);

/* AES-256-GCM with a key schedule kept across calls (one context per open
 * file; not thread-safe: callers serialise or keep one per thread). */
typedef struct scs_gcm scs_gcm;
scs_gcm *scs_gcm_new(const uint8_t key[SCS_KEY_LEN]);
void scs_gcm_free(scs_gcm *g);                  /* cleanses */
int scs_gcm_seal(scs_gcm *g, const uint8_t nonce[SCS_GCM_NONCE_LEN],
		 const uint8_t *aad, size_t aadlen, const uint8_t *pt, size_t n,
		 uint8_t *ct, uint8_t tag[SCS_GCM_TAG_LEN]);
int scs_gcm_open(scs_gcm *g, const uint8_t nonce[SCS_GCM_NONCE_LEN],
		 const uint8_t *aad, size_t aadlen, const uint8_t *ct, size_t n,
		 const uint8_t tag[SCS_GCM_TAG_LEN], uint8_t *pt);
/* One-shot convenience forms. */
int scs_gcm_seal1(const uint8_t key[SCS_KEY_LEN], const uint8_t nonce[SCS_GCM_NONCE_LEN],
		  const uint8_t *aad, size_t aadlen, const uint8_t *pt, size_t n,
		  uint8_t *ct, uint8_t tag[SCS_GCM_TAG_LEN]);
int scs_gcm_open1(const uint8_t key[SCS_KEY_LEN], const uint8_t nonce[SCS_GCM_NONCE_LEN],
		  const uint8_t *aad, size_t aadlen, const uint8_t *ct, size_t n,
		  const uint8_t tag[SCS_GCM_TAG_LEN], uint8_t *pt);

/* AES-256-SIV (RFC 5297) with one associated-data string.  out = tag(16) ||
 * ciphertext(n), so outcap >= n + 16.  n >= 1 (-EINVAL for an empty
 * message; open of a bare tag is -EBADMSG). */
int scs_siv_seal(const uint8_t key[SCS_SIV_KEY_LEN], const uint8_t *ad, size_t adlen,
		 const uint8_t *pt, size_t n, uint8_t *out);
int scs_siv_open(const uint8_t key[SCS_SIV_KEY_LEN], const uint8_t *ad, size_t adlen,
		 const uint8_t *in, size_t inlen, uint8_t *pt /* inlen - 16 */);

/* Ed25519. */
int scs_ed25519_generate(EVP_PKEY **out);
int scs_ed25519_public(EVP_PKEY *k, uint8_t pub[SCS_ED25519_PUB_LEN]);
int scs_ed25519_sign(EVP_PKEY *sk, const void *msg, size_t n, uint8_t sig[SCS_ED25519_SIG_LEN]);
int scs_ed25519_verify(const uint8_t pub[SCS_ED25519_PUB_LEN], const void *msg, size_t n,
		       const uint8_t sig[SCS_ED25519_SIG_LEN]); /* 0 or -EBADMSG */
/* 1 if pub is not one of the small-order points (which OpenSSL would let
 * anyone "sign" for, e.g. all-zero key + all-zero signature); verify
 * refuses them, and identity/keyring parsers should reject them upfront. */
int scs_ed25519_pub_ok(const uint8_t pub[SCS_ED25519_PUB_LEN]);

/* RSA (>= 3072 bits) with OAEP-SHA256 (MGF1-SHA256) and a label.
 * *outlen is the capacity of out on entry and the length written on return
 * (EVP convention); encrypt with out == NULL only sets *outlen to the size
 * needed (the modulus size, 384 for 3072 bits).  Every decrypt failure,
 * including a too-small out, is -EBADMSG. */
#define SCS_RSA_BITS 3072
int scs_rsa_generate(int bits, EVP_PKEY **out);
int scs_rsa_oaep_encrypt(EVP_PKEY *pub, const void *label, size_t labellen,
			 const uint8_t *in, size_t n, uint8_t *out, size_t *outlen);
int scs_rsa_oaep_decrypt(EVP_PKEY *priv, const void *label, size_t labellen,
			 const uint8_t *in, size_t n, uint8_t *out, size_t *outlen);

#endif
