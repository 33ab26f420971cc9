/* scs/identity.h - a member's identity: a name, an RSA key (>= 3072 bits,
 * RSA-OAEP-SHA256 for epoch key wraps) and an Ed25519 key (signatures).
 *
 * Files, in $XDG_DATA_HOME/scsfs (default ~/.local/share/scsfs, mode 0700):
 *   identity.key  both private keys, each a PEM "ENCRYPTED PRIVATE KEY"
 *                 (PKCS#8, PBES2: scrypt + AES-256-CBC), RSA first
 *   identity.pub  the public identity (what `scsctl id export` prints):
 *                 {"ed25519":"<b64 32 bytes>","name":"<name>",
 *                  "rsa_spki":"<b64 DER SubjectPublicKeyInfo>","scsfs_identity":1}
 * both 0600, written atomically.
 *
 * Member fingerprint = SHA-256("scsfs v1 member" || u32be(32) || ed25519 pub
 *                              || u32be(len(spki)) || rsa spki DER)
 * shown as 64 lowercase hex digits in 16 groups of 4 separated by spaces. */
#ifndef SCS_IDENTITY_H
#define SCS_IDENTITY_H

#include <stddef.h>
#include <stdint.h>
#include <openssl/evp.h>
#include "scs/crypto.h"
#include "scs/format.h"
#include "scs/err.h"

#define SCS_NAME_LEN_MAX     64        /* member name bytes (UTF-8) */
#define SCS_RSA_MIN_BITS     3072
#define SCS_RSA_MAX_BITS     8192
#define SCS_SPKI_MAX         1100      /* DER of an 8192-bit RSA SPKI fits */
#define SCS_IDENTITY_PUB_MAX 8192      /* bytes of a public identity file */
#define SCS_IDENTITY_KEY_MAX 32768     /* bytes of identity.key */
#define SCS_FPR_TEXT_LEN     80        /* 16 groups of 4 hex + 15 spaces + NUL */
#define SCS_SCRYPT_N         (1u << 14)
#define SCS_SCRYPT_R         8
#define SCS_SCRYPT_P         4

typedef struct scs_identity {
	char name[SCS_NAME_LEN_MAX + 1];
	uint8_t fpr[SCS_FPR_LEN];
	uint8_t ed_pub[SCS_ED25519_PUB_LEN];
	uint8_t *rsa_spki;          /* DER SubjectPublicKeyInfo */
	size_t rsa_spki_len;
	EVP_PKEY *rsa;              /* public only, or private once unlocked */
	EVP_PKEY *ed25519;          /* NULL until unlocked */
	int unlocked;
} scs_identity;

/* Member fingerprint of a pair of public keys (see above). */
int scs_member_fpr(const uint8_t ed_pub[SCS_ED25519_PUB_LEN], const uint8_t *spki,
		   size_t spki_len, uint8_t out[SCS_FPR_LEN]);
/* Grouped lowercase hex "ab12 cd34 ... " (out[SCS_FPR_TEXT_LEN]). */
void scs_fpr_format(const uint8_t fpr[SCS_FPR_LEN], char *out);
/* Parse a fingerprint typed by a human: 64 hex digits, spaces, ':' and '-'
 * ignored, either case.  0 or -EINVAL. */
int scs_fpr_parse(const char *text, uint8_t fpr[SCS_FPR_LEN]);
/* A member name: 1..64 bytes of UTF-8, no control characters, no leading
 * or trailing space.  1 if valid. */
int scs_name_valid(const char *name);

/* Paths of this user's identity files (out[SCS_PATH_MAX]); -ENOENT w/o HOME. */
int scs_identity_paths(char *dir, char *keyfile, char *pubfile);

/* Create a new identity NAME protected by pass, write both files.
 * -EEXIST if one exists (never overwritten).  Returns it unlocked. */
int scs_identity_create(const char *name, const char *pass, size_t passlen,
			scs_identity **out, scs_err *err);
/* Load the public identity of this user (no passphrase).  -ENOENT with
 * "no identity; run `scsctl id new NAME` first". */
int scs_identity_load(scs_identity **out, scs_err *err);
/* Decrypt the private keys; checks they match the public identity.
 * A wrong passphrase: -EACCES "wrong passphrase for identity NAME; try again". */
int scs_identity_unlock(scs_identity *id, const char *pass, size_t passlen, scs_err *err);
/* Get the passphrase (scs_passphrase_get: passphrase_file, else
 * $SCSFS_PASSPHRASE_FILE, else the terminal unless no_prompt) and unlock;
 * on the terminal a wrong passphrase is asked again, three times at most. */
int scs_identity_unlock_prompt(scs_identity *id, const char *passphrase_file, int no_prompt,
			       scs_err *err);

/* The public identity JSON (NUL-terminated, ends with "\n"); free(). */
int scs_identity_export(const scs_identity *id, char **json, size_t *len);
/* Strictly parse a public identity (size cap, duplicate keys refused, exact
 * fields and types, Ed25519 and RSA >= 3072 bits checked).  -EBADMSG with
 * what was wrong. */
int scs_identity_parse(const void *data, size_t len, scs_identity **out, scs_err *err);
/* From raw public key material (keyring members).  -EBADMSG if bad. */
int scs_identity_from_keys(const char *name, const uint8_t ed_pub[SCS_ED25519_PUB_LEN],
			   const uint8_t *spki, size_t spki_len, scs_identity **out, scs_err *err);

void scs_identity_free(scs_identity *id);

#endif
