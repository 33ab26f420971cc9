/* scs/format.h - the encrypted file object format (man/scsfs-format.5).
 *
 * object = header (SCS_HEADER_SIZE bytes) || record_0 || ... || record_{n-1}
 * record_i = nonce(12) || AES-256-GCM(file_key, plaintext chunk i) || tag(16)
 *   AAD_i = "scsfs chunk" || file_id(16) || u64be(i) || u8(last)
 * Every object has at least one record; the last record has last = 1 and
 * holds 0..SCS_CHUNK_SIZE bytes (0 only when the file is empty); every
 * other record holds exactly SCS_CHUNK_SIZE bytes.  The plaintext size is
 * therefore a function of the object size alone.
 *
 * The header carries the file key wrapped (AES-256-GCM) under a key derived
 * from the epoch key, and an Ed25519 signature by the writer over the header
 * and content_hash = SHA-256(record_0 || ... || record_{n-1}). */
#ifndef SCS_FORMAT_H
#define SCS_FORMAT_H

#include <stdint.h>
#include <stddef.h>
#include <openssl/evp.h>
#include "scs/crypto.h"

#define SCS_FORMAT_VERSION  1
#define SCS_HEADER_SIZE     256
#define SCS_CHUNK_SIZE      32768
#define SCS_RECORD_OVERHEAD (SCS_GCM_NONCE_LEN + SCS_GCM_TAG_LEN)
#define SCS_RECORD_SIZE     (SCS_CHUNK_SIZE + SCS_RECORD_OVERHEAD)
#define SCS_FILE_ID_LEN     16
#define SCS_FPR_LEN         32  /* member fingerprint: SHA-256 */
/* Largest plaintext size the format represents (4 EiB): object sizes and
 * offsets then fit in off_t.  scs_object_size() returns UINT64_MAX above. */
#define SCS_PLAIN_SIZE_MAX  (UINT64_C(1) << 62)

typedef struct scs_header {
	uint16_t version;                    /* SCS_FORMAT_VERSION */
	uint32_t epoch;                      /* group epoch of the wrapping key */
	uint8_t file_id[SCS_FILE_ID_LEN];    /* random, kept across renames */
	uint64_t file_version;               /* +1 at every signed flush */
	uint8_t writer[SCS_FPR_LEN];         /* fingerprint of the signer */
	uint8_t wrap_nonce[SCS_GCM_NONCE_LEN];
	uint8_t wrapped_key[SCS_KEY_LEN];
	uint8_t wrap_tag[SCS_GCM_TAG_LEN];
	uint8_t content_hash[SCS_SHA256_LEN];
	uint8_t sig[SCS_ED25519_SIG_LEN];
} scs_header;

/* Serialise / parse exactly SCS_HEADER_SIZE bytes.  decode rejects bad
 * magic, unknown versions, non-zero reserved bytes: -EBADMSG; it reads the
 * first SCS_HEADER_SIZE bytes when len is larger (the whole object).
 * encode returns -EINVAL unless h->version == SCS_FORMAT_VERSION
 * (scs_filekey_wrap sets it). */
int scs_header_encode(const scs_header *h, uint8_t out[SCS_HEADER_SIZE]);
int scs_header_decode(const uint8_t *in, size_t len, scs_header *h);
/* For error messages only (the field is not yet authenticated): the format
 * version a header with our magic claims, or -1. */
int scs_header_claimed_version(const uint8_t *in, size_t len);

/* Key wrapping: wrap_key = HKDF(epoch_key, info "scsfs v1 file-key wrap");
 * AAD = the encoded header bytes before wrap_nonce.  wrap fills wrap_*. */
int scs_filekey_wrap(const uint8_t epoch_key[SCS_KEY_LEN], scs_header *h,
		     const uint8_t file_key[SCS_KEY_LEN]);
int scs_filekey_unwrap(const uint8_t epoch_key[SCS_KEY_LEN], const scs_header *h,
		       uint8_t file_key[SCS_KEY_LEN]);

/* Signature over "scsfs v1 header sig" || encoded header up to (not
 * including) sig.  content_hash must be set before signing. */
int scs_header_sign(scs_header *h, EVP_PKEY *sign_key);
int scs_header_verify(const scs_header *h, const uint8_t pub[SCS_ED25519_PUB_LEN]);

/* Sizes.  plain_size returns -EBADMSG for object sizes no valid object has. */
uint64_t scs_object_size(uint64_t plain_size);
int scs_plain_size(uint64_t object_size, uint64_t *plain_size);
uint64_t scs_nrecords(uint64_t plain_size);     /* >= 1 */
static inline uint64_t scs_record_offset(uint64_t idx)
{
	return SCS_HEADER_SIZE + idx * (uint64_t)SCS_RECORD_SIZE;
}

/* Seal plaintext chunk idx (n <= SCS_CHUNK_SIZE) into rec (n + overhead
 * bytes) with a fresh random nonce; open authenticates and decrypts. */
int scs_chunk_seal(scs_gcm *file_key, const uint8_t file_id[SCS_FILE_ID_LEN],
		   uint64_t idx, int last, const uint8_t *pt, size_t n, uint8_t *rec);
int scs_chunk_open(scs_gcm *file_key, const uint8_t file_id[SCS_FILE_ID_LEN],
		   uint64_t idx, int last, const uint8_t *rec, size_t reclen, uint8_t *pt);

#endif
