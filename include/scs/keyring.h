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
/* Removal snapshot objects ".scsfs/keyring/snap-<64 hex of their SHA-256>"
 * (man/scsfs-format.5, Removal snapshots): magic, group id, subject, u32be
 * count, then count records file_id || content_hash in strictly ascending
 * byte order. */
#define SCS_SNAP_MAGIC       "SCSSNAP1"
#define SCS_SNAP_MAGIC_LEN   8
#define SCS_SNAP_REC_LEN     (SCS_FILE_ID_LEN + SCS_SHA256_LEN)
#define SCS_SNAP_HEAD_LEN    (SCS_SNAP_MAGIC_LEN + SCS_GROUP_ID_LEN + SCS_FPR_LEN + 4)
#define SCS_SNAP_FILES_MAX   (1u << 20)
#define SCS_SNAP_MAX         (SCS_SNAP_HEAD_LEN + (size_t)SCS_SNAP_FILES_MAX * SCS_SNAP_REC_LEN)
#define SCS_SNAP_PREFIX      "snap-"

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
	/* remove: the files the subject had written, from the removal
	 * snapshot (has_snapshot: the entry names one; snap_loaded: its
	 * records, nsnap of SCS_SNAP_REC_LEN bytes each, sorted, are here). */
	int has_snapshot, snap_loaded, lazy;
	uint8_t snapshot[SCS_SHA256_LEN];
	uint32_t snapshot_files;
	uint8_t *snap;
	size_t nsnap;
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

/* Whether fpr may sign the header h (its epoch, file_id and content_hash):
 * 0 (*m: the writer's member record), -EPERM if fpr was no member in any
 * state of h's epoch, -EKEYREJECTED if fpr was removed by an entry with a
 * snapshot (*removal) that does not list (file_id, content_hash): a
 * removed member writing with a cached old epoch key.  A current member,
 * or one removed by an entry without a snapshot (keyrings made before
 * snapshots), is accepted as by scs_keyring_writer.  Retirement is not
 * looked at here. */
int scs_keyring_header_writer(const scs_keyring *kr, const uint8_t fpr[SCS_FPR_LEN],
			      const scs_header *h, const struct scs_member **m,
			      const struct scs_kr_entry **removal);
/* 1 if the re-key pass should run by itself (an admin's mount): an epoch
 * after the retired ones was started by a rotate or by a removal without
 * "lazy".  0 if nothing is left to retire or every such removal is lazy. */
int scs_keyring_rekey_wanted(const scs_keyring *kr);

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
/* scs_keyring_load, then scs_keyring_pin_check (the mark moves forward
 * if the keyring grew).  A keyring that ends
 * before the pin is listed again (up to 3 times) before it is called
 * rolled back: another process of this machine (a mount's re-key pass,
 * another scsctl) may have added and pinned an entry meanwhile.  head
 * (may be NULL): the keyring must still hold it as entry head_seq (a
 * refresh), checked before the pin moves, so a rewritten history never
 * reaches the pin. */
int scs_keyring_load_pinned(scs_backend *be, const uint8_t *head, uint32_t head_seq,
			    scs_keyring **out, scs_err *err);
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
	/* remove: the snapshot object's SHA-256 (NULL: none, the pre-snapshot
	 * form) and how many files it lists; lazy: no background re-key */
	const uint8_t *snapshot;
	uint32_t snapshot_files;
	int lazy;
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

/* ---- removal snapshots ---- */

/* Encode the snapshot of the files subject wrote: recs (n records of
 * SCS_SNAP_REC_LEN bytes, any order, duplicates allowed) are sorted and
 * deduplicated in place; *out (malloc) holds the object bytes, *count the
 * number of records kept. */
int scs_kr_snapshot_encode(const uint8_t group[SCS_GROUP_ID_LEN], const uint8_t subject[SCS_FPR_LEN],
			   uint8_t *recs, size_t n, uint8_t **out, size_t *len, uint32_t *count);
/* Parse snapshot object bytes strictly (size, magic, ascending records):
 * *recs points into data.  -EBADMSG with what was wrong. */
int scs_kr_snapshot_parse(const uint8_t *data, size_t len, uint8_t group[SCS_GROUP_ID_LEN],
			  uint8_t subject[SCS_FPR_LEN], const uint8_t **recs, uint32_t *count,
			  scs_err *err);
/* ".scsfs/keyring/snap-<hex>" into out[128]. */
void scs_kr_snapshot_path(const uint8_t hash[SCS_SHA256_LEN], char out[128]);
/* Store snapshot bytes under their hash (create_file, never replaced; an
 * identical existing object is fine: a retried removal).  hash out. */
int scs_kr_snapshot_store(scs_backend *be, const uint8_t *data, size_t len,
			  uint8_t hash[SCS_SHA256_LEN], scs_err *err);
/* Check snapshot bytes against the remove entry seq of kr (hash, group,
 * subject, count) and attach its records.  -EBADMSG with what was wrong. */
int scs_keyring_snapshot_attach(scs_keyring *kr, uint32_t seq, const uint8_t *data, size_t len,
				scs_err *err);

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
