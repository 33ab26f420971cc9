/* scs/vault.h - an opened group folder: back end + verified keyring +
 * unlocked identity + epoch keys.  What scsfs mounts and scsctl works on. */
#ifndef SCS_VAULT_H
#define SCS_VAULT_H

#include <stdint.h>
#include "scs/backend.h"
#include "scs/keyctx.h"
#include "scs/names.h"
#include "scs/err.h"

typedef struct scs_vault scs_vault;

struct scs_vault_opts {
	const char *passphrase_file;  /* NULL: $SCSFS_PASSPHRASE_FILE, else terminal */
	int no_prompt;                /* never ask on the terminal (daemons, CI) */
	int public_only;              /* no passphrase, no keys: for status and
				       * membership checks (keyctx unusable) */
};

/* Open REMOTE (NULL: the default from config).  Checks, in this order and
 * with a one-line message each: the folder exists and is readable, it is an
 * scsfs group (.scsfs/), this user has an identity, the keyring verifies
 * against the pinned genesis, this identity is a member; only then asks
 * for the passphrase and unwraps the epoch keys.  Nothing is written to
 * the remote; this machine's high-water mark for the group moves forward
 * when the keyring grew. */
int scs_vault_open(const char *remote, const struct scs_vault_opts *o,
		   scs_vault **out, scs_err *err);
void scs_vault_close(scs_vault *v);

scs_backend *scs_vault_backend(scs_vault *v);
const scs_keyctx *scs_vault_keyctx(scs_vault *v);
/* The same, but it also gives the keys of retired epochs, and accepts a
 * header of a retired epoch when this identity signed it (others' are
 * refused as by scs_vault_keyctx).  Only for moving this member's own
 * writes that never reached the others (a queued upload made before the
 * mount saw the new keyring, then the old epoch was retired) to the
 * current epoch; never to read or accept what someone else stored. */
const scs_keyctx *scs_vault_keyctx_own(scs_vault *v);
/* Root directory id (derived from the group id) and the name key of the
 * epoch new names are written in. */
const uint8_t *scs_vault_root_dir_id(scs_vault *v);
uint32_t scs_vault_epoch(scs_vault *v);
/* Epoch keys of every epoch readable (newest first): for name lookup and
 * symlink decryption.  Returns count; keys stay owned by the vault. */
int scs_vault_name_keys(scs_vault *v, const uint8_t (**keys)[SCS_SIV_KEY_LEN], const uint32_t **epochs);
int scs_vault_epoch_key(scs_vault *v, uint32_t epoch, uint8_t key[SCS_KEY_LEN]);
/* This member's memory of file versions (seen.h); NULL when public_only
 * or without a data directory. */
struct scs_seen;
struct scs_seen *scs_vault_seen(scs_vault *v);
/* Group fingerprint (hex, grouped for reading aloud). */
const char *scs_vault_group_fpr(scs_vault *v);
/* Re-read the keyring if it changed remotely (running mounts follow). 0 if
 * unchanged or updated, negative if the new state was refused (old kept).
 * A valid keyring that removed this identity is taken (the vault then
 * says so in scs_vault_membership) and the epoch keys held before are
 * kept: files still in those epochs stay readable until re-keyed or
 * retired, files of newer epochs are not; a keyring that adds it back
 * brings every epoch key again. */
int scs_vault_refresh(scs_vault *v, scs_err *err);
/* The same unless a look at the keyring that began at or after `since`
 * (scs_vault_clock) succeeded already: then 0 at once.  Looks take turns
 * (one thread looks, the others wait and use what it found), so any
 * thread may call it.  since = scs_vault_clock() - 2e9: a view at most
 * about 2 s old; since = scs_vault_clock(): one that includes every entry
 * written before the call. */
int scs_vault_refresh_since(scs_vault *v, uint64_t since, scs_err *err);
/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t scs_vault_clock(void);
/* 1 if this identity is a member in the keyring the vault holds, 0 if a
 * refresh found it removed.  seq, by (may be NULL): the keyring entry that
 * last added or removed it (0 and the founder: the genesis) and the name
 * of its author (valid until scs_vault_close). */
int scs_vault_membership(scs_vault *v, uint32_t *seq, const char **by);

/* For scsctl: the REMOTE string, this user's identity (unlocked unless
 * public_only) and the verified keyring (valid until the next refresh). */
struct scs_identity;
struct scs_keyring;
const char *scs_vault_remote(scs_vault *v);
struct scs_identity *scs_vault_identity(scs_vault *v);
const struct scs_keyring *scs_vault_keyring(scs_vault *v);

/* The remote to use: remote if given (a bare path becomes "local:" and
 * absolute, trailing '/' dropped), else default_remote from the config
 * (-ENOENT with a hint to run `scsctl init`). out[SCS_PATH_MAX]. */
int scs_vault_resolve_remote(const char *remote, char *out, size_t cap, scs_err *err);

#endif
