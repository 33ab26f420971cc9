/* names.c - encrypted names, long names, sync-client decorations, symlink
 * targets and .scsdir objects (scs/names.h, man/scsfs-format.5).
 *
 * Encoded names use only the base64url alphabet, so a stored name splits
 * unambiguously into the encoded part (the longest prefix of alphabet
 * characters) and whatever a sync client appended to it (which starts with
 * ' ' or '.', never an alphabet character). */
#include "scs/names.h"
#include "scs/b64.h"
#include "scs/backend.h"
#include "scs/buf.h"
#include "scs/crypto.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>

static const char name_info[] = "scsfs v1 name key";
static const char symlink_info[] = "scsfs v1 symlink key";
static const char symlink_ctx[] = "scsfs symlink";
static const char root_ctx[] = "scsfs v1 root dir id";

/* Shortest encoding: SIV tag (16) + one byte = 17 bytes = 23 characters. */
#define ENC_MIN 23
/* A SHA-256 in base64url. */
#define HASH_B64 43
#define LONG_LEN (sizeof SCS_LONG_PREFIX - 1 + HASH_B64)
/* Longest decoration we accept after the encoded part. */
#define DECORATION_MAX 80

int scs_name_key(const uint8_t epoch_key[SCS_KEY_LEN], uint8_t out[SCS_SIV_KEY_LEN])
{
	return scs_hkdf(epoch_key, SCS_KEY_LEN, NULL, 0, name_info, sizeof name_info - 1,
			out, SCS_SIV_KEY_LEN);
}

void scs_root_dir_id(const uint8_t group_id[SCS_SHA256_LEN], uint8_t out[SCS_DIR_ID_LEN])
{
	uint8_t in[sizeof root_ctx - 1 + SCS_SHA256_LEN], h[SCS_SHA256_LEN];
	memcpy(in, root_ctx, sizeof root_ctx - 1);
	memcpy(in + sizeof root_ctx - 1, group_id, SCS_SHA256_LEN);
	scs_sha256(in, sizeof in, h);
	memcpy(out, h, SCS_DIR_ID_LEN);
}

/* 0 for a name a directory may hold: 1..255 bytes, no '/' or NUL, not "."
 * or "..". */
static int check_plain(const char *name, size_t n)
{
	if (n == 0 || memchr(name, '/', n) || memchr(name, '\0', n))
		return -EINVAL;
	if ((n == 1 && name[0] == '.') || (n == 2 && name[0] == '.' && name[1] == '.'))
		return -EINVAL;
	return n > SCS_NAME_MAX ? -ENAMETOOLONG : 0;
}

int scs_name_long_form(const char *full, size_t fulllen, char *stored)
{
	uint8_t h[SCS_SHA256_LEN];
	int r = scs_sha256(full, fulllen, h);
	if (r)
		return r;
	memcpy(stored, SCS_LONG_PREFIX, sizeof SCS_LONG_PREFIX - 1);
	scs_b64url_encode(h, sizeof h, stored + sizeof SCS_LONG_PREFIX - 1);
	return 0;
}

int scs_name_long_check(const char *stored, size_t storedlen, const char *full, size_t fulllen)
{
	char want[LONG_LEN + 1];
	if (storedlen != LONG_LEN || scs_name_long_form(full, fulllen, want))
		return -EBADMSG;
	return memcmp(want, stored, LONG_LEN) == 0 ? 0 : -EBADMSG;
}

/* ---- name memo ----
 *
 * SIV is deterministic: a (name key, directory id, name) always encrypts to
 * the same stored name.  Remember recent short names, from encryptions and
 * from listings that decrypted them, so a lookup, create or unlink of a
 * name just listed or looked up skips the encryption (an rm -rf encrypts
 * every name twice after listing it).  Direct-mapped, NM_SLOTS entries,
 * exact compare on (key, dir id, name); only canonical encodings are kept,
 * so a hit returns exactly what scs_siv_seal would.  The name keys seen
 * (at most NM_KEYS, e.g. one per epoch in use) are kept for the life of
 * the process, as the vault keeps the epoch keys they derive from. */
#define NM_SLOTS 2048
#define NM_KEYS  4
#define NM_PLAIN_MAX 164          /* > the longest name with a short encoding */

struct nm_entry {
	uint32_t gen;                 /* nm_gen[key] when stored; 0 = empty */
	uint8_t key;
	uint8_t plen;
	uint8_t dir_id[SCS_DIR_ID_LEN];
	char plain[NM_PLAIN_MAX];
	char enc[SCS_NAME_MAX_ENC + 1];
};

static pthread_mutex_t nm_lock = PTHREAD_MUTEX_INITIALIZER;
static struct nm_entry nm_tab[NM_SLOTS];
static uint8_t nm_keys[NM_KEYS][SCS_SIV_KEY_LEN];
static uint32_t nm_gen[NM_KEYS];     /* 0: key slot unused */
static uint32_t nm_next_gen = 1;
static unsigned nm_victim;

static size_t nm_slot(const uint8_t dir_id[SCS_DIR_ID_LEN], const char *name, size_t n)
{
	uint64_t h = 14695981039346656037ULL;
	for (size_t i = 0; i < SCS_DIR_ID_LEN; i++)
		h = (h ^ dir_id[i]) * 1099511628211ULL;
	for (size_t i = 0; i < n; i++)
		h = (h ^ (uint8_t)name[i]) * 1099511628211ULL;
	return (size_t)(h ^ (h >> 32)) % NM_SLOTS;
}

/* Index of key in nm_keys, adding it if add (evicting the oldest);
 * -1 if absent.  nm_lock held. */
static int nm_key(const uint8_t key[SCS_SIV_KEY_LEN], int add)
{
	for (int i = 0; i < NM_KEYS; i++)
		if (nm_gen[i] && scs_ct_equal(nm_keys[i], key, SCS_SIV_KEY_LEN))
			return i;
	if (!add)
		return -1;
	int i = (int)(nm_victim++ % NM_KEYS);
	memcpy(nm_keys[i], key, SCS_SIV_KEY_LEN);
	nm_gen[i] = nm_next_gen++;    /* entries of the key replaced go stale */
	if (!nm_next_gen)
		nm_next_gen = 1;
	return i;
}

static int nm_get(const uint8_t key[SCS_SIV_KEY_LEN], const uint8_t dir_id[SCS_DIR_ID_LEN],
		  const char *name, size_t n, char *enc)
{
	if (n >= NM_PLAIN_MAX)
		return 0;
	size_t slot = nm_slot(dir_id, name, n);
	int hit = 0;
	pthread_mutex_lock(&nm_lock);
	struct nm_entry *e = &nm_tab[slot];
	if (e->gen && e->plen == n && memcmp(e->plain, name, n) == 0 &&
	    memcmp(e->dir_id, dir_id, SCS_DIR_ID_LEN) == 0 && e->gen == nm_gen[e->key] &&
	    nm_key(key, 0) == e->key) {
		strcpy(enc, e->enc);
		hit = 1;
	}
	pthread_mutex_unlock(&nm_lock);
	return hit;
}

static void nm_put(const uint8_t key[SCS_SIV_KEY_LEN], const uint8_t dir_id[SCS_DIR_ID_LEN],
		   const char *name, size_t n, const char *enc, size_t enclen)
{
	if (n >= NM_PLAIN_MAX || enclen > SCS_NAME_MAX_ENC)
		return;
	size_t slot = nm_slot(dir_id, name, n);
	pthread_mutex_lock(&nm_lock);
	int k = nm_key(key, 1);
	struct nm_entry *e = &nm_tab[slot];
	e->gen = nm_gen[k];
	e->key = (uint8_t)k;
	e->plen = (uint8_t)n;
	memcpy(e->dir_id, dir_id, SCS_DIR_ID_LEN);
	memcpy(e->plain, name, n);
	memcpy(e->enc, enc, enclen);
	e->enc[enclen] = '\0';
	pthread_mutex_unlock(&nm_lock);
}

int scs_name_encrypt(const uint8_t key[SCS_SIV_KEY_LEN], const uint8_t dir_id[SCS_DIR_ID_LEN],
		     const char *name, char *full, char *stored, int *is_long)
{
	uint8_t ct[SCS_SIV_TAG_LEN + SCS_NAME_MAX];
	size_t n = strnlen(name, SCS_NAME_MAX + 1);
	int r = check_plain(name, n);
	if (r)
		return r;
	if (nm_get(key, dir_id, name, n, full)) {
		strcpy(stored, full);
		*is_long = 0;
		return 0;
	}
	if ((r = scs_siv_seal(key, dir_id, SCS_DIR_ID_LEN, (const uint8_t *)name, n, ct)))
		return r;
	scs_b64url_encode(ct, SCS_SIV_TAG_LEN + n, full);
	size_t flen = strlen(full);
	if (flen <= SCS_NAME_MAX_ENC) {
		nm_put(key, dir_id, name, n, full, flen);
		memcpy(stored, full, flen + 1);
		*is_long = 0;
		return 0;
	}
	*is_long = 1;
	return scs_name_long_form(full, flen, stored);
}

int scs_name_decrypt(const uint8_t key[SCS_SIV_KEY_LEN], const uint8_t dir_id[SCS_DIR_ID_LEN],
		     const char *enc, size_t enclen, char *plain)
{
	uint8_t ct[SCS_SIV_TAG_LEN + SCS_NAME_MAX];
	if (enclen < ENC_MIN || enclen > scs_b64url_len(sizeof ct))
		return -EBADMSG;
	long n = scs_b64url_decode(enc, enclen, ct, sizeof ct);
	if (n <= SCS_SIV_TAG_LEN)
		return -EBADMSG;
	size_t pn = (size_t)n - SCS_SIV_TAG_LEN;
	if (scs_siv_open(key, dir_id, SCS_DIR_ID_LEN, ct, (size_t)n, (uint8_t *)plain))
		return -EBADMSG;
	/* Authentic, but a name no directory can hold is still refused. */
	if (check_plain(plain, pn)) {
		memset(plain, 0, pn);
		return -EBADMSG;
	}
	plain[pn] = '\0';
	if (enclen <= SCS_NAME_MAX_ENC && pn < NM_PLAIN_MAX) {
		/* Keep it only if it is the canonical encoding (what encrypting
		 * the name gives), not a variant the decoder also accepted. */
		char canon[SCS_ENC_NAME_BUF];
		scs_b64url_encode(ct, (size_t)n, canon);
		if (strlen(canon) == enclen && memcmp(canon, enc, enclen) == 0)
			nm_put(key, dir_id, plain, pn, enc, enclen);
	}
	return 0;
}

/* ---- sync-client decorations ---- */

/* " (" text ")" with printable text free of "()/" (Google Drive "(1)",
 * Dropbox "(Alice's conflicted copy 2026-11-23)", Nextcloud "(conflicted
 * copy 2026-11-23 101010)"), or Syncthing's ".sync-conflict-<stamp>-<dev>". */
static int valid_decoration(const char *d, size_t n)
{
	static const char sync[] = ".sync-conflict-";
	if (n < 3 || n > DECORATION_MAX)
		return 0;
	if (n >= 4 && d[0] == ' ' && d[1] == '(' && d[n - 1] == ')') {
		for (size_t i = 2; i < n - 1; i++) {
			unsigned char c = (unsigned char)d[i];
			if (c < 0x20 || c == 0x7f || c == '(' || c == ')' || c == '/')
				return 0;
		}
		return 1;
	}
	if (n > sizeof sync - 1 && memcmp(d, sync, sizeof sync - 1) == 0) {
		for (size_t i = sizeof sync - 1; i < n; i++) {
			char c = d[i];
			if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			      (c >= '0' && c <= '9') || c == '-'))
				return 0;
		}
		return 1;
	}
	return 0;
}

static int is_alpha(char c)
{
	return scs_b64url_is_alphabet(&c, 1);
}

static int dup_at(const char *s, size_t n)
{
	size_t ol = sizeof SCS_DUP_OPEN - 1;
	if (n < SCS_DUP_LEN || memcmp(s, SCS_DUP_OPEN, ol) || s[SCS_DUP_LEN - 1] != ')')
		return 0;
	for (size_t i = ol; i < ol + SCS_DUP_TAG_LEN; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return 1;
}

int scs_name_dup_split(const char *name, size_t *base_len, char *tag)
{
	size_t n = strlen(name);
	if (n <= SCS_DUP_LEN || !dup_at(name + n - SCS_DUP_LEN, SCS_DUP_LEN))
		return 0;
	*base_len = n - SCS_DUP_LEN;
	if (tag) {
		memcpy(tag, name + n - SCS_DUP_LEN + sizeof SCS_DUP_OPEN - 1, SCS_DUP_TAG_LEN);
		tag[SCS_DUP_TAG_LEN] = '\0';
	}
	return 1;
}

int scs_name_has_dup_marker(const char *plain)
{
	size_t n = strlen(plain);
	for (const char *p = plain; (p = strstr(p, SCS_DUP_OPEN)); p++)
		if (dup_at(p, n - (size_t)(p - plain)))
			return 1;
	return 0;
}

int scs_name_classify(const char *stored, size_t *enc_len)
{
	size_t n = strnlen(stored, SCS_ENC_NAME_BUF);
	size_t suf = sizeof SCS_LONG_SUFFIX - 1, pl = sizeof SCS_LONG_PREFIX - 1;
	*enc_len = 0;
	if (n == SCS_ENC_NAME_BUF)
		return SCS_NAME_FOREIGN;
	size_t base;
	if (scs_name_dup_split(stored, &base, NULL)) {
		/* A duplicate (see names.h): what it duplicates decides. */
		char b[SCS_ENC_NAME_BUF];
		memcpy(b, stored, base);
		b[base] = '\0';
		return scs_name_classify(b, enc_len);
	}
	if (strcmp(stored, SCS_DIRID_FILE) == 0 || strcmp(stored, SCS_META_DIR) == 0 ||
	    scs_is_tmp_name(stored))
		return SCS_NAME_RESERVED;

	if (n >= LONG_LEN && memcmp(stored, SCS_LONG_PREFIX, pl) == 0) {
		if (!scs_b64url_is_alphabet(stored + pl, HASH_B64) ||
		    (n > LONG_LEN && is_alpha(stored[LONG_LEN])))
			return SCS_NAME_FOREIGN;
		const char *rest = stored + LONG_LEN;
		size_t rn = n - LONG_LEN;
		int side = rn >= suf && memcmp(rest + rn - suf, SCS_LONG_SUFFIX, suf) == 0;
		if (side)
			rn -= suf;
		if (rn && !valid_decoration(rest, rn))
			return SCS_NAME_FOREIGN;
		*enc_len = LONG_LEN;
		return side ? SCS_NAME_LONG_SIDE : SCS_NAME_LONG;
	}

	size_t e = 0;
	while (e < n && is_alpha(stored[e]))
		e++;
	if (e < ENC_MIN || e > SCS_NAME_MAX_ENC || e % 4 == 1)
		return SCS_NAME_FOREIGN;
	if (e < n && !valid_decoration(stored + e, n - e))
		return SCS_NAME_FOREIGN;
	*enc_len = e;
	return SCS_NAME_PLAIN_ENC;
}

/* Where the extension starts: the last '.', unless it is the first or the
 * last character (".bashrc", "name."); n if there is none. */
static size_t ext_start(const char *s, size_t n)
{
	for (size_t i = n; i-- > 1;)
		if (s[i] == '.')
			return i + 1 < n ? i : n;
	return n;
}

int scs_name_decorate(const char *plain, const char *decoration, size_t declen, char *out)
{
	size_t n = strnlen(plain, SCS_NAME_MAX + 1);
	if (check_plain(plain, n) || memchr(decoration, '/', declen) ||
	    memchr(decoration, '\0', declen))
		return -EINVAL;
	if (n + declen > SCS_NAME_MAX)
		return -ENAMETOOLONG;
	size_t x = ext_start(plain, n);
	memcpy(out, plain, x);
	memcpy(out + x, decoration, declen);
	memcpy(out + x + declen, plain + x, n - x);
	out[n + declen] = '\0';
	return 0;
}

int scs_name_undecorate(const char *shown, char *plain, size_t *dec_off, size_t *declen)
{
	size_t n = strnlen(shown, SCS_NAME_MAX + 1);
	if (n > SCS_NAME_MAX || n < 4)
		return 0;
	/* The decoration sits right before the extension of the plain name;
	 * find it by trying each '.' from the right (and the very end). */
	for (size_t x = n + 1; x-- > 1;) {
		if (x < n && shown[x] != '.')
			continue;
		size_t d = 0;
		int found = 0;
		if (shown[x - 1] == ')') {
			for (d = x - 1; d-- > 0;)
				if (shown[d] == '(') {
					found = d > 0 && shown[d - 1] == ' ';
					d = found ? d - 1 : 0;
					break;
				}
		} else {
			const char *s = memmem(shown, x, ".sync-conflict-", 15);
			if (s) {
				d = (size_t)(s - shown);
				found = 1;
			}
		}
		if (!found || d == 0 || !valid_decoration(shown + d, x - d))
			continue;
		memcpy(plain, shown, d);
		memcpy(plain + d, shown + x, n - x);
		plain[d + n - x] = '\0';
		if (check_plain(plain, d + n - x) || ext_start(plain, d + n - x) != d)
			continue;
		*dec_off = d;
		*declen = x - d;
		return 1;
	}
	return 0;
}

/* ---- symlink targets ---- */

#define SYM_PREFIX "S1"
#define SYM_HDR (4 + SCS_GCM_NONCE_LEN)
#define SYM_RAW_MAX (SYM_HDR + SCS_SYMLINK_MAX + SCS_GCM_TAG_LEN)
#define SYM_AAD_LEN (sizeof symlink_ctx - 1 + SCS_DIR_ID_LEN + 4)

_Static_assert(2 + (SYM_RAW_MAX + 2) / 3 * 4 < SCS_SYMLINK_ENC_BUF, "symlink buffer");

static void symlink_aad(uint8_t aad[SYM_AAD_LEN], const uint8_t dir_id[SCS_DIR_ID_LEN],
			uint32_t epoch)
{
	scs_wbuf w;
	scs_wbuf_init(&w, aad, SYM_AAD_LEN);
	scs_wbuf_bytes(&w, symlink_ctx, sizeof symlink_ctx - 1);
	scs_wbuf_bytes(&w, dir_id, SCS_DIR_ID_LEN);
	scs_wbuf_u32(&w, epoch);
}

static int symlink_key(const uint8_t epoch_key[SCS_KEY_LEN], uint8_t k[SCS_KEY_LEN])
{
	return scs_hkdf(epoch_key, SCS_KEY_LEN, NULL, 0, symlink_info, sizeof symlink_info - 1,
			k, SCS_KEY_LEN);
}

int scs_symlink_encrypt(const uint8_t epoch_key[SCS_KEY_LEN], uint32_t epoch,
			const uint8_t dir_id[SCS_DIR_ID_LEN], const char *target, char *out)
{
	uint8_t raw[SYM_RAW_MAX], k[SCS_KEY_LEN], aad[SYM_AAD_LEN];
	size_t n = strnlen(target, SCS_SYMLINK_MAX + 1);
	if (n == 0)
		return -EINVAL;
	if (n > SCS_SYMLINK_MAX)
		return -ENAMETOOLONG;
	raw[0] = (uint8_t)(epoch >> 24);
	raw[1] = (uint8_t)(epoch >> 16);
	raw[2] = (uint8_t)(epoch >> 8);
	raw[3] = (uint8_t)epoch;
	int r = scs_random(raw + 4, SCS_GCM_NONCE_LEN);
	if (!r)
		r = symlink_key(epoch_key, k);
	if (!r) {
		symlink_aad(aad, dir_id, epoch);
		r = scs_gcm_seal1(k, raw + 4, aad, sizeof aad, (const uint8_t *)target, n,
				  raw + SYM_HDR, raw + SYM_HDR + n);
	}
	scs_cleanse(k, sizeof k);
	if (r)
		return r;
	memcpy(out, SYM_PREFIX, 2);
	scs_b64url_encode(raw, SYM_HDR + n + SCS_GCM_TAG_LEN, out + 2);
	return 0;
}

/* Strictly decode a stored target into raw; returns the raw length. */
static long symlink_raw(const char *stored, uint8_t raw[SYM_RAW_MAX])
{
	size_t n = strnlen(stored, SCS_SYMLINK_ENC_BUF);
	if (n < 2 || n == SCS_SYMLINK_ENC_BUF || memcmp(stored, SYM_PREFIX, 2) != 0)
		return -EBADMSG;
	long len = scs_b64url_decode(stored + 2, n - 2, raw, SYM_RAW_MAX);
	if (len < (long)(SYM_HDR + 1 + SCS_GCM_TAG_LEN))
		return -EBADMSG;
	return len;
}

int scs_symlink_epoch(const char *stored, uint32_t *epoch)
{
	uint8_t raw[SYM_RAW_MAX];
	long len = symlink_raw(stored, raw);
	if (len < 0)
		return (int)len;
	*epoch = (uint32_t)raw[0] << 24 | (uint32_t)raw[1] << 16 | (uint32_t)raw[2] << 8 | raw[3];
	return 0;
}

int scs_symlink_decrypt(const uint8_t epoch_key[SCS_KEY_LEN],
			const uint8_t dir_id[SCS_DIR_ID_LEN], const char *stored, char *target)
{
	uint8_t raw[SYM_RAW_MAX], k[SCS_KEY_LEN], aad[SYM_AAD_LEN];
	long len = symlink_raw(stored, raw);
	if (len < 0)
		return (int)len;
	uint32_t epoch = (uint32_t)raw[0] << 24 | (uint32_t)raw[1] << 16 |
			 (uint32_t)raw[2] << 8 | raw[3];
	size_t n = (size_t)len - SYM_HDR - SCS_GCM_TAG_LEN;
	int r = symlink_key(epoch_key, k);
	if (!r) {
		symlink_aad(aad, dir_id, epoch);
		r = scs_gcm_open1(k, raw + 4, aad, sizeof aad, raw + SYM_HDR, n,
				  raw + SYM_HDR + n, (uint8_t *)target);
	}
	scs_cleanse(k, sizeof k);
	if (r)
		return r == -ENOMEM ? r : -EBADMSG;
	if (memchr(target, '\0', n)) {
		memset(target, 0, n);
		return -EBADMSG;
	}
	target[n] = '\0';
	return 0;
}

/* ---- .scsdir ---- */

void scs_dirid_encode(const uint8_t dir_id[SCS_DIR_ID_LEN], uint8_t out[SCS_DIRID_OBJ_LEN])
{
	scs_wbuf w;
	scs_wbuf_init(&w, out, SCS_DIRID_OBJ_LEN);
	scs_wbuf_bytes(&w, "SCSD", 4);
	scs_wbuf_u16(&w, 1);
	scs_wbuf_bytes(&w, dir_id, SCS_DIR_ID_LEN);
}

int scs_dirid_decode(const uint8_t *in, size_t len, uint8_t dir_id[SCS_DIR_ID_LEN])
{
	scs_rbuf r;
	const uint8_t *magic;
	uint16_t version = 0;
	uint8_t id[SCS_DIR_ID_LEN];
	scs_rbuf_init(&r, in, len);
	scs_rbuf_ptr(&r, &magic, 4);
	scs_rbuf_u16(&r, &version);
	scs_rbuf_bytes(&r, id, sizeof id);
	if (r.err || scs_rbuf_left(&r) || memcmp(magic, "SCSD", 4) || version != 1)
		return -EBADMSG;
	memcpy(dir_id, id, sizeof id);
	return 0;
}
