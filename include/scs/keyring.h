/* scs/keyring.h - the group keyring: an append-only, hash-chained log of
 * signed entries under .scsfs/keyring/ (man/scsfs-format.5, KEYRING).
 *
 * Entry object ".scsfs/keyring/<seq %08u>.entry", created once with the back
 * end's create_file (never replaced), bytes exactly
 *     {"payload":"<base64 P>","sig":"<base64 S>"}
 * S = Ed25519(author, "scsfs v1 keyring entry" || P); P = the canonical
 * payload JSON (compact, keys sorted).  Group id = SHA-256(genesis entry
 * object bytes); an entry's hash = SHA-256(its object bytes).
 *
 * Kinds: genesis (seq 0, epoch 1, author is the sole admin), add (a member
 * joins, same epoch, the epoch key wrapped to the newcomer), remove (a member
 * leaves, epoch + 1, wraps to every remaining member), set_role, rotate
 * (epoch + 1), retire (after a completed re-key: epochs below retire_below
 * are refused from then on; admin only, only rises, at most the current
 * epoch).  Verification follows the rules listed in the man page; a
 * failure is -EBADMSG with what was wrong. */
#ifndef SCS_KEYRING_H
#define SCS_KEYRING_H

#include <stddef.h>
#include <stdint.h>
#include "scs/backend.h"
#include "scs/crypto.h"
#include "scs/format.h"
#include "scs/identity.h"
#include "scs/err.h"

#define SCS_META_FORMAT      ".scsfs/format"
#define SCS_KEYRING_DIR      ".scsfs/keyring"
#define SCS_KEYRING_VERSION  1
#define SCS_KR_ENTRY_MAX     (1u << 20)   /* bytes of one entry object */
#define SCS_KR_MEMBERS_MAX   256
#define SCS_KR_ENTRIES_MAX   100000
#define SCS_KR_EPOCHS_MAX    10000
#define SCS_KR_WRAP_MAX      1024         /* RSA-8192 ciphertext */
#define SCS_KR_NONCE_LEN     32           /* genesis nonce */
#define SCS_KR_CANARY_LEN    (SCS_GCM_NONCE_LEN + SCS_GCM_TAG_LEN)
#define SCS_GROUP_ID_LEN     SCS_SHA256_LEN
#define SCS_PIN_MAX          4096

enum scs_role { SCS_ROLE_MEMBER = 1, SCS_ROLE_ADMIN = 2 };
enum scs_kr_kind { SCS_KR_GENESIS = 1, SCS_KR_ADD, SCS_KR_REMOVE, SCS_KR_SET_ROLE, SCS_KR_ROTATE,
		  SCS_KR_RETIRE };

struct scs_member {
	char name[SCS_NAME_LEN_MAX + 1];
	uint8_t fpr[SCS_FPR_LEN];
	int role;                        /* enum scs_role */
	uint8_t ed25519[SCS_ED25519_PUB_LEN];
	uint8_t *spki;                   /* RSA SubjectPublicKeyInfo DER */
	size_t spki_len;
};

struct scs_kr_wrap {
	uint8_t fpr[SCS_FPR_LEN];
	uint8_t *ct;
	size_t ct_len;
};

/* One parsed entry (what the log keeps after verification). */
struct scs_kr_entry {
	int kind;
	uint32_t seq, epoch;
	uint8_t hash[SCS_SHA256_LEN];          /* SHA-256 of the object bytes */
	uint8_t author[SCS_FPR_LEN];
	uint8_t group[SCS_GROUP_ID_LEN];       /* zero in genesis */
	uint8_t prev[SCS_SHA256_LEN];          /* zero in genesis */
	uint8_t nonce[SCS_KR_NONCE_LEN];       /* genesis only */
	uint8_t subject[SCS_FPR_LEN];          /* add/remove/set_role */
	int has_subject, has_canary, has_wraps;
	uint8_t canary[SCS_KR_CANARY_LEN];
	uint8_t *box;                          /* prev_epochs_box */
	size_t box_len;
	size_t nwraps;
	struct scs_kr_wrap *wraps;
	size_t nmembers;
	struct scs_member *members;            /* state after this entry */
	int64_t created_at;
	uint32_t retire_below;                 /* retire: epochs below it are retired */
};

typedef struct scs_keyring {
	uint8_t group_id[SCS_GROUP_ID_LEN];
	uint32_t seq;                    /* of the newest entry */
	uint8_t head[SCS_SHA256_LEN];    /* its hash */
	uint32_t epoch;
	size_t nentries;
	struct scs_kr_entry *entries;    /* entries[i].seq == i; the last holds the members */
	uint32_t retired_below;          /* epochs below it are retired (0: none) */
} scs_keyring;

/* The current members (those of the newest entry). */
const struct scs_member *scs_keyring_members(const scs_keyring *kr, size_t *n);
const struct scs_member *scs_keyring_member(const scs_keyring *kr, const uint8_t fpr[SCS_FPR_LEN]);
const char *scs_role_name(int role);
/* "genesis", "add", "remove", "set_role", "rotate", "retire" ("?" otherwise). */
const char *scs_kr_kind_name(int kind);
/* A member of some state whose epoch was `epoch` (who may have signed a
 * file of that epoch), or NULL. */
const struct scs_member *scs_keyring_writer(const scs_keyring *kr, const uint8_t fpr[SCS_FPR_LEN],
					    uint32_t epoch);

/* Read and verify every entry of the back end's keyring.  Errors: -ENOENT
 * (no keyring), -EBADMSG (what was wrong: bad signature, signer not an
 * admin, gap, fork, broken chain...).  No pin is consulted. */
int scs_keyring_load(scs_backend *be, scs_keyring **out, scs_err *err);
/* Verify entry bytes as the next entry of *krp (NULL: must be a genesis,
 * and a new state is made) and append it.  On failure *krp is unchanged. */
int scs_keyring_apply(scs_keyring **krp, uint32_t seq, const uint8_t *data, size_t len, scs_err *err);
void scs_keyring_free(scs_keyring *kr);

/* Group fingerprint text of the group id (grouped hex). */
void scs_group_fpr(const scs_keyring *kr, char out[SCS_FPR_TEXT_LEN]);

/* Local pin and high-water mark:
 * $XDG_DATA_HOME/scsfs/groups/<group id hex>.json =
 *   {"genesis":"<hex>","head":"<hex>","scsfs_pin":1,"seq":N}
 * check: -ENOENT "not pinned", -EBADMSG for a rollback (seq below the
 * mark) or a fork (different hash at the marked seq); then, if update and
 * the keyring is newer, moves the mark forward.  write: pin kr as is. */
int scs_keyring_pin_check(const scs_keyring *kr, int update, scs_err *err);
int scs_keyring_pin_write(const scs_keyring *kr, scs_err *err);

/* Unwrap the epoch keys 1..kr->epoch with our (unlocked) identity: our wrap
 * of the current epoch, its canary, then the older keys from the
 * prev_epochs_box chain.  *keys[i] is the key of epoch i + 1; free with
 * scs_keyring_keys_free.  -EACCES if there is no wrap for us, -EBADMSG if
 * it does not open or a canary fails. */
int scs_keyring_unlock(const scs_keyring *kr, const scs_identity *self,
		       uint8_t (**keys)[SCS_KEY_LEN], uint32_t *nkeys, scs_err *err);
void scs_keyring_keys_free(uint8_t (*keys)[SCS_KEY_LEN], uint32_t nkeys);

/* ---- writing entries (scsctl init now; member add/remove/rekey later) ---- */

/* The genesis entry for a new group with admin as its sole member: a fresh
 * epoch 1 key (returned in epoch_key), a random nonce.  admin unlocked. */
int scs_keyring_make_genesis(const scs_identity *admin, uint8_t epoch_key[SCS_KEY_LEN],
			     uint8_t **entry, size_t *len, scs_err *err);

struct scs_kr_change {
	int kind;                        /* add, remove, set_role, rotate, retire */
	const scs_identity *member;      /* add: the newcomer (public keys) */
	const uint8_t *subject;          /* remove/set_role: fingerprint */
	int role;                        /* add/set_role */
	uint32_t retire_below;           /* retire: epochs below it are retired */
};
/* Build the next entry after kr for change c, signed by signer (not
 * checked to be an admin here: apply does that).  keys: epoch keys
 * 1..kr->epoch (as from scs_keyring_unlock).  For a new epoch, its fresh key
 * is returned in new_key (may be NULL otherwise). */
int scs_keyring_make_entry(const scs_keyring *kr, const struct scs_kr_change *c,
			   const scs_identity *signer, const uint8_t (*keys)[SCS_KEY_LEN],
			   uint32_t nkeys, uint8_t new_key[SCS_KEY_LEN],
			   uint8_t **entry, size_t *len, scs_err *err);
/* Store entry seq with create_file.  -EEXIST: someone else wrote that seq
 * first ("reload and try again"). */
int scs_keyring_publish(scs_backend *be, uint32_t seq, const uint8_t *entry, size_t len,
			scs_err *err);
/* ".scsfs/keyring/%08u.entry" into out[64]. */
void scs_keyring_entry_path(uint32_t seq, char out[64]);

/* ---- for tests and fuzzing ---- */
/* Parse an entry object (outer JSON and payload) without any verification
 * against a state; the members are checked only for shape. */
int scs_kr_entry_parse(const uint8_t *data, size_t len, struct scs_kr_entry *e,
		       uint8_t **payload, size_t *plen, uint8_t sig[SCS_ED25519_SIG_LEN], scs_err *err);
void scs_kr_entry_clear(struct scs_kr_entry *e);
/* Sign a payload into entry object bytes (tests build hostile entries). */
int scs_kr_entry_seal(const uint8_t *payload, size_t plen, EVP_PKEY *sign_key,
		      uint8_t **entry, size_t *len);

#endif
