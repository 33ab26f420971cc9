/* format.c - the encrypted file object (man/scsfs-format.5, scs/format.h).
 *
 * Header layout (SCS_HEADER_SIZE = 256 bytes, integers big-endian):
 *     0  magic "SCSF"          4
 *     4  version (u16) = 1     2
 *     6  epoch (u32)           4
 *    10  file_id              16
 *    26  file_version (u64)    8
 *    34  writer fingerprint   32
 *    66  wrap_nonce           12   <- wrap AAD is bytes [0, 66)
 *    78  wrapped file key     32
 *   110  wrap_tag             16
 *   126  content_hash         32
 *   158  reserved, zero       34
 *   192  Ed25519 signature    64   <- signed: "scsfs v1 header sig" || [0, 192)
 */
#include "scs/format.h"
#include "scs/buf.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define MAGIC "SCSF"
#define OFF_WRAP_NONCE 66
#define OFF_RESERVED 158
#define OFF_SIG (SCS_HEADER_SIZE - SCS_ED25519_SIG_LEN)
#define RESERVED_LEN (OFF_SIG - OFF_RESERVED)

static const char wrap_info[] = "scsfs v1 file-key wrap";
static const char sig_ctx[] = "scsfs v1 header sig";
static const char chunk_ctx[] = "scsfs chunk";

_Static_assert(OFF_SIG == 192, "header layout");
_Static_assert(RESERVED_LEN == 34, "header layout");

int scs_header_encode(const scs_header *h, uint8_t out[SCS_HEADER_SIZE])
{
	scs_wbuf w;
	scs_wbuf_init(&w, out, SCS_HEADER_SIZE);
	scs_wbuf_bytes(&w, MAGIC, 4);
	scs_wbuf_u16(&w, h->version);
	scs_wbuf_u32(&w, h->epoch);
	scs_wbuf_bytes(&w, h->file_id, SCS_FILE_ID_LEN);
	scs_wbuf_u64(&w, h->file_version);
	scs_wbuf_bytes(&w, h->writer, SCS_FPR_LEN);
	scs_wbuf_bytes(&w, h->wrap_nonce, SCS_GCM_NONCE_LEN);
	scs_wbuf_bytes(&w, h->wrapped_key, SCS_KEY_LEN);
	scs_wbuf_bytes(&w, h->wrap_tag, SCS_GCM_TAG_LEN);
	scs_wbuf_bytes(&w, h->content_hash, SCS_SHA256_LEN);
	scs_wbuf_zero(&w, RESERVED_LEN);
	scs_wbuf_bytes(&w, h->sig, SCS_ED25519_SIG_LEN);
	if (w.err || w.len != SCS_HEADER_SIZE)
		return -EINVAL;
	return h->version == SCS_FORMAT_VERSION ? 0 : -EINVAL;
}

/* Parses the first SCS_HEADER_SIZE bytes of in (len may be larger, e.g.
 * the whole object). */
int scs_header_decode(const uint8_t *in, size_t len, scs_header *h)
{
	scs_rbuf r;
	const uint8_t *magic, *reserved;
	scs_rbuf_init(&r, in, len < SCS_HEADER_SIZE ? len : SCS_HEADER_SIZE);
	memset(h, 0, sizeof *h);
	scs_rbuf_ptr(&r, &magic, 4);
	scs_rbuf_u16(&r, &h->version);
	scs_rbuf_u32(&r, &h->epoch);
	scs_rbuf_bytes(&r, h->file_id, SCS_FILE_ID_LEN);
	scs_rbuf_u64(&r, &h->file_version);
	scs_rbuf_bytes(&r, h->writer, SCS_FPR_LEN);
	scs_rbuf_bytes(&r, h->wrap_nonce, SCS_GCM_NONCE_LEN);
	scs_rbuf_bytes(&r, h->wrapped_key, SCS_KEY_LEN);
	scs_rbuf_bytes(&r, h->wrap_tag, SCS_GCM_TAG_LEN);
	scs_rbuf_bytes(&r, h->content_hash, SCS_SHA256_LEN);
	scs_rbuf_ptr(&r, &reserved, RESERVED_LEN);
	scs_rbuf_bytes(&r, h->sig, SCS_ED25519_SIG_LEN);
	if (r.err || scs_rbuf_left(&r) != 0)
		goto bad;
	if (memcmp(magic, MAGIC, 4) != 0 || h->version != SCS_FORMAT_VERSION)
		goto bad;
	for (size_t i = 0; i < RESERVED_LEN; i++)
		if (reserved[i])
			goto bad;
	return 0;
bad:
	memset(h, 0, sizeof *h);
	return -EBADMSG;
}

int scs_header_claimed_version(const uint8_t *in, size_t len)
{
	scs_rbuf r;
	const uint8_t *magic = NULL;
	uint16_t v = 0;
	scs_rbuf_init(&r, in, len);
	scs_rbuf_ptr(&r, &magic, 4);
	scs_rbuf_u16(&r, &v);
	if (r.err || memcmp(magic, MAGIC, 4) != 0)
		return -1;
	return v;
}

/* The wrap key is HKDF(epoch key, wrap_info): one HKDF (~40k instructions)
 * and one GCM keying per header would be paid for every file created,
 * re-signed or opened.  Each thread keeps the last epoch key it saw with
 * its wrap key, keyed into a GCM context; a different epoch key replaces
 * them.  Everything is cleansed when replaced and when the thread exits. */
struct wrap_cache {
	int ok;
	uint8_t ek[SCS_KEY_LEN];
	scs_gcm *g;                  /* keyed with HKDF(ek, wrap_info) */
};

static pthread_key_t wrap_tls;
static pthread_once_t wrap_once = PTHREAD_ONCE_INIT;

static void wrap_cache_free(void *p)
{
	struct wrap_cache *c = p;
	if (!c)
		return;
	scs_gcm_free(c->g);
	scs_cleanse(c, sizeof *c);
	free(c);
}

static void wrap_once_init(void)
{
	pthread_key_create(&wrap_tls, wrap_cache_free);
}

/* The GCM context of the wrap key of epoch_key (owned by the thread), or
 * NULL with *err set. */
static scs_gcm *wrap_gcm(const uint8_t epoch_key[SCS_KEY_LEN], int *err)
{
	pthread_once(&wrap_once, wrap_once_init);
	struct wrap_cache *c = pthread_getspecific(wrap_tls);
	if (!c) {
		c = calloc(1, sizeof *c);
		if (!c || pthread_setspecific(wrap_tls, c) != 0) {
			free(c);
			*err = -ENOMEM;
			return NULL;
		}
	}
	if (c->ok && scs_ct_equal(c->ek, epoch_key, SCS_KEY_LEN))
		return c->g;
	c->ok = 0;
	scs_gcm_free(c->g);
	c->g = NULL;
	uint8_t k[SCS_KEY_LEN];
	*err = scs_hkdf(epoch_key, SCS_KEY_LEN, NULL, 0, wrap_info, sizeof wrap_info - 1,
			k, SCS_KEY_LEN);
	if (!*err) {
		c->g = scs_gcm_new(k);
		if (!c->g)
			*err = -ENOMEM;
	}
	scs_cleanse(k, sizeof k);
	if (*err) {
		scs_cleanse(c->ek, sizeof c->ek);
		return NULL;
	}
	memcpy(c->ek, epoch_key, SCS_KEY_LEN);
	c->ok = 1;
	return c->g;
}

int scs_filekey_wrap(const uint8_t epoch_key[SCS_KEY_LEN], scs_header *h,
		     const uint8_t file_key[SCS_KEY_LEN])
{
	uint8_t enc[SCS_HEADER_SIZE];
	int r;
	h->version = SCS_FORMAT_VERSION;
	if ((r = scs_random(h->wrap_nonce, SCS_GCM_NONCE_LEN)) ||
	    (r = scs_header_encode(h, enc)))
		return r;
	scs_gcm *g = wrap_gcm(epoch_key, &r);
	if (!g)
		return r;
	return scs_gcm_seal(g, h->wrap_nonce, enc, OFF_WRAP_NONCE, file_key, SCS_KEY_LEN,
			    h->wrapped_key, h->wrap_tag);
}

int scs_filekey_unwrap(const uint8_t epoch_key[SCS_KEY_LEN], const scs_header *h,
		       uint8_t file_key[SCS_KEY_LEN])
{
	uint8_t enc[SCS_HEADER_SIZE];
	int r;
	if (scs_header_encode(h, enc))
		return -EBADMSG;
	scs_gcm *g = wrap_gcm(epoch_key, &r);
	if (g)
		r = scs_gcm_open(g, h->wrap_nonce, enc, OFF_WRAP_NONCE, h->wrapped_key,
				 SCS_KEY_LEN, h->wrap_tag, file_key);
	return r == -ENOMEM ? r : (r ? -EBADMSG : 0);
}

/* msg = "scsfs v1 header sig" || header[0, OFF_SIG) */
static int sig_input(const scs_header *h, uint8_t msg[sizeof sig_ctx - 1 + OFF_SIG])
{
	uint8_t enc[SCS_HEADER_SIZE];
	if (scs_header_encode(h, enc))
		return -EINVAL;
	memcpy(msg, sig_ctx, sizeof sig_ctx - 1);
	memcpy(msg + sizeof sig_ctx - 1, enc, OFF_SIG);
	return 0;
}

int scs_header_sign(scs_header *h, EVP_PKEY *sign_key)
{
	uint8_t msg[sizeof sig_ctx - 1 + OFF_SIG];
	int r = sig_input(h, msg);
	return r ? r : scs_ed25519_sign(sign_key, msg, sizeof msg, h->sig);
}

int scs_header_verify(const scs_header *h, const uint8_t pub[SCS_ED25519_PUB_LEN])
{
	uint8_t msg[sizeof sig_ctx - 1 + OFF_SIG];
	if (sig_input(h, msg))
		return -EBADMSG;
	return scs_ed25519_verify(pub, msg, sizeof msg, h->sig);
}

/* ---- size arithmetic ---- */

uint64_t scs_nrecords(uint64_t plain_size)
{
	return plain_size == 0 ? 1 : (plain_size - 1) / SCS_CHUNK_SIZE + 1;
}

uint64_t scs_object_size(uint64_t plain_size)
{
	if (plain_size > SCS_PLAIN_SIZE_MAX)
		return UINT64_MAX;
	return SCS_HEADER_SIZE + scs_nrecords(plain_size) * SCS_RECORD_OVERHEAD + plain_size;
}

int scs_plain_size(uint64_t object_size, uint64_t *plain_size)
{
	if (object_size < SCS_HEADER_SIZE + SCS_RECORD_OVERHEAD)
		return -EBADMSG;
	uint64_t body = object_size - SCS_HEADER_SIZE;
	uint64_t full = body / SCS_RECORD_SIZE, rest = body % SCS_RECORD_SIZE;
	uint64_t n;
	if (rest == 0) {
		n = full;                       /* last record is a full one */
	} else {
		if (rest < SCS_RECORD_OVERHEAD)
			return -EBADMSG;        /* a record shorter than nonce+tag */
		if (rest == SCS_RECORD_OVERHEAD && full > 0)
			return -EBADMSG;        /* empty last record after data */
		n = full + 1;
	}
	uint64_t p = body - n * SCS_RECORD_OVERHEAD;
	if (p > SCS_PLAIN_SIZE_MAX)
		return -EBADMSG;
	*plain_size = p;
	return 0;
}

/* ---- records ---- */

#define AAD_LEN (sizeof chunk_ctx - 1 + SCS_FILE_ID_LEN + 8 + 1)

static void chunk_aad(uint8_t aad[AAD_LEN], const uint8_t file_id[SCS_FILE_ID_LEN],
		      uint64_t idx, int last)
{
	scs_wbuf w;
	scs_wbuf_init(&w, aad, AAD_LEN);
	scs_wbuf_bytes(&w, chunk_ctx, sizeof chunk_ctx - 1);
	scs_wbuf_bytes(&w, file_id, SCS_FILE_ID_LEN);
	scs_wbuf_u64(&w, idx);
	scs_wbuf_u8(&w, last ? 1 : 0);
}

int scs_chunk_seal(scs_gcm *file_key, const uint8_t file_id[SCS_FILE_ID_LEN],
		   uint64_t idx, int last, const uint8_t *pt, size_t n, uint8_t *rec)
{
	uint8_t aad[AAD_LEN];
	int r;
	/* Only the last record may be short (or empty). */
	if (n > SCS_CHUNK_SIZE || (!last && n != SCS_CHUNK_SIZE))
		return -EINVAL;
	if ((r = scs_random(rec, SCS_GCM_NONCE_LEN)))
		return r;
	chunk_aad(aad, file_id, idx, last);
	return scs_gcm_seal(file_key, rec, aad, AAD_LEN, pt, n, rec + SCS_GCM_NONCE_LEN,
			    rec + SCS_GCM_NONCE_LEN + n);
}

int scs_chunk_open(scs_gcm *file_key, const uint8_t file_id[SCS_FILE_ID_LEN],
		   uint64_t idx, int last, const uint8_t *rec, size_t reclen, uint8_t *pt)
{
	uint8_t aad[AAD_LEN];
	if (reclen < SCS_RECORD_OVERHEAD || reclen > SCS_RECORD_SIZE ||
	    (!last && reclen != SCS_RECORD_SIZE))
		return -EBADMSG;
	size_t n = reclen - SCS_RECORD_OVERHEAD;
	chunk_aad(aad, file_id, idx, last);
	return scs_gcm_open(file_key, rec, aad, AAD_LEN, rec + SCS_GCM_NONCE_LEN, n,
			    rec + SCS_GCM_NONCE_LEN + n, pt);
}
