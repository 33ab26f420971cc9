/* scs/names.h - encrypted file and directory names.
 *
 * enc = base64url(AES-256-SIV(name_key, AD = parent dir id, plaintext name))
 * name_key = HKDF(epoch key, "scsfs v1 name key"), 64 bytes.
 * An encoded name longer than SCS_NAME_MAX_ENC characters is stored as
 * the "long" form: SCS_LONG_PREFIX + base64url(SHA-256(enc)) with the full
 * enc in a side object named that + SCS_LONG_SUFFIX.
 * Names a sync client or Drive mangled ("<enc> (1)", "<enc> (conflicted copy
 * ...)") are decoded to readable plaintext names with the suffix kept. */
#ifndef SCS_NAMES_H
#define SCS_NAMES_H

#include <stddef.h>
#include <stdint.h>
#include "scs/crypto.h"

#define SCS_DIR_ID_LEN    16
#define SCS_NAME_MAX      255          /* plaintext bytes, as NAME_MAX */
#define SCS_NAME_MAX_ENC  220          /* longest stored encoded name */
#define SCS_LONG_PREFIX   "L~"
#define SCS_LONG_SUFFIX   ".name"
#define SCS_ENC_NAME_BUF  512          /* big enough for any encoded name */
#define SCS_DIRID_FILE    ".scsdir"    /* inside each remote directory */
#define SCS_META_DIR      ".scsfs"     /* group metadata at the root */

int scs_name_key(const uint8_t epoch_key[SCS_KEY_LEN], uint8_t out[SCS_SIV_KEY_LEN]);

/* Encrypt a plaintext name (1..SCS_NAME_MAX bytes, no '/', not "." or
 * ".."; else -EINVAL / -ENAMETOOLONG).  Writes the full encoding to
 * full[SCS_ENC_NAME_BUF] and the stored (possibly long-form) name to
 * stored[SCS_ENC_NAME_BUF]; *is_long tells which. */
int scs_name_encrypt(const uint8_t key[SCS_SIV_KEY_LEN], const uint8_t dir_id[SCS_DIR_ID_LEN],
		     const char *name, char *full, char *stored, int *is_long);

/* Decrypt a full encoding (not long form) into plain[SCS_NAME_MAX + 1]. */
int scs_name_decrypt(const uint8_t key[SCS_SIV_KEY_LEN], const uint8_t dir_id[SCS_DIR_ID_LEN],
		     const char *enc, size_t enclen, char *plain);

/* Classify a stored remote name: returns SCS_NAME_PLAIN_ENC (pure
 * base64url), SCS_NAME_LONG (long form), SCS_NAME_LONG_SIDE (a side object),
 * SCS_NAME_RESERVED (.scsdir / .scsfs / temp files: hide), or
 * SCS_NAME_FOREIGN (not ours).  For names a sync client decorated, *enc_len
 * is the length of the encoded part and the rest is the decoration. */
enum { SCS_NAME_PLAIN_ENC = 1, SCS_NAME_LONG, SCS_NAME_LONG_SIDE, SCS_NAME_RESERVED, SCS_NAME_FOREIGN };
int scs_name_classify(const char *stored, size_t *enc_len);

/* Build the readable plaintext name for a decorated entry: insert the
 * decoration before the extension, e.g. "report.odt" + " (1)" ->
 * "report (1).odt".  out[SCS_NAME_MAX + 1]; -ENAMETOOLONG if it cannot fit. */
int scs_name_decorate(const char *plain, const char *decoration, size_t declen, char *out);

/* The inverse, for lookups of a name the user saw: if shown is some plain
 * name decorated (" (1)", " (... conflicted copy ...)", ".sync-conflict-..."),
 * write that plain name to plain[SCS_NAME_MAX + 1], set the decoration to
 * shown[*dec_off .. *dec_off + *declen) and return 1; else return 0.
 * (Several readings may exist for odd names; this returns the one with the
 * rightmost extension point, matching scs_name_decorate.) */
int scs_name_undecorate(const char *shown, char *plain, size_t *dec_off, size_t *declen);

/* Duplicate names.  Drive lets one folder hold several entries of the same
 * name (other Drive clients make them).  The gdrive: back end lists the one
 * with the smallest Drive id under its name and every other one as
 * name + SCS_DUP_OPEN + 8 lowercase hex digits + ")", the digits being the
 * first four bytes of SHA-256(Drive id): stable across mounts and machines.
 * Operations on such a name reach exactly that entry.  Shown to the user
 * like a sync-client decoration: "report (duplicate 1a2b3c4d).txt".
 * dup_split: 1 if name ends with such a suffix (*base_len = the length
 * before it, tag[SCS_DUP_TAG_LEN + 1] = its digits), else 0. */
#define SCS_DUP_OPEN " (duplicate "
#define SCS_DUP_TAG_LEN 8
#define SCS_DUP_LEN (sizeof SCS_DUP_OPEN - 1 + SCS_DUP_TAG_LEN + 1)
int scs_name_dup_split(const char *name, size_t *base_len, char *tag);
/* 1 if the plaintext name holds SCS_DUP_OPEN + 8 hex digits + ")" anywhere:
 * such names are reserved for duplicates (creating one fails with EINVAL),
 * so a real name can never be taken for a duplicate or hide one. */
int scs_name_has_dup_marker(const char *plain);

/* Long names: stored = SCS_LONG_PREFIX + base64url(SHA-256(full)), 45 chars
 * + NUL.  long_check returns 0 if a side object's content `full` belongs to
 * the stored long name (check this before decrypting), else -EBADMSG. */
int scs_name_long_form(const char *full, size_t fulllen, char *stored);
int scs_name_long_check(const char *stored, size_t storedlen, const char *full, size_t fulllen);

/* Root directory id: first 16 bytes of SHA-256("scsfs v1 root dir id" ||
 * group id), group id being the 32-byte SHA-256 of the genesis entry. */
void scs_root_dir_id(const uint8_t group_id[SCS_SHA256_LEN], uint8_t out[SCS_DIR_ID_LEN]);

#endif

/* Symlink targets are stored as the target of a remote symlink (or a small
 * object on back ends without symlinks):
 *   "S1" + base64url(u32be(epoch) || nonce(12) || AES-256-GCM(target) || tag)
 * key = HKDF(epoch key, "scsfs v1 symlink key"), AAD = "scsfs symlink" ||
 * dir id of the parent || u32be(epoch).  target is 1..4095 bytes. */
#define SCS_SYMLINK_MAX 4095
#define SCS_SYMLINK_ENC_BUF 5600
int scs_symlink_encrypt(const uint8_t epoch_key[SCS_KEY_LEN], uint32_t epoch,
			const uint8_t dir_id[SCS_DIR_ID_LEN], const char *target,
			char *out /* SCS_SYMLINK_ENC_BUF */);
/* Read the epoch a stored target claims (to pick the key), then decrypt. */
int scs_symlink_epoch(const char *stored, uint32_t *epoch);
int scs_symlink_decrypt(const uint8_t epoch_key[SCS_KEY_LEN],
			const uint8_t dir_id[SCS_DIR_ID_LEN], const char *stored,
			char *target /* SCS_SYMLINK_MAX + 1 */);

/* The .scsdir object inside every remote directory but the root: written
 * once at mkdir, never rewritten:  "SCSD" || u16be(1) || dir_id(16). */
#define SCS_DIRID_OBJ_LEN 22
void scs_dirid_encode(const uint8_t dir_id[SCS_DIR_ID_LEN], uint8_t out[SCS_DIRID_OBJ_LEN]);
int scs_dirid_decode(const uint8_t *in, size_t len, uint8_t dir_id[SCS_DIR_ID_LEN]);
