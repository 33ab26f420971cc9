/* scs/keyctx.h - what the file engine needs from the group: the epoch to
 * write in, epoch keys to read with, who may sign, and our signing key.
 * scs_vault provides one (scs_vault_keyctx); unit tests provide fakes. */
#ifndef SCS_KEYCTX_H
#define SCS_KEYCTX_H

#include <stdint.h>
#include <stddef.h>
#include "scs/format.h"
#include "scs/err.h"

typedef struct scs_keyctx {
	void *arg;
	/* Epoch new files (and rewritten headers) use. */
	uint32_t (*write_epoch)(void *arg);
	/* Key of an epoch; -ENOKEY if unknown, -EKEYREVOKED if retired. */
	int (*epoch_key)(void *arg, uint32_t epoch, uint8_t key[SCS_KEY_LEN]);
	/* Ed25519 public key of fpr if it may sign the header h (its epoch,
	 * file_id and content_hash): -EPERM if that fingerprint is not an
	 * accepted writer of h's epoch, -EKEYREVOKED if the epoch is retired,
	 * -EKEYREJECTED if fpr was removed from the group and did not write
	 * this version of the file before (why: "written by NAME after NAME
	 * was removed from the group (keyring entry N)"; why may be NULL). */
	int (*writer_pub)(void *arg, const uint8_t fpr[SCS_FPR_LEN], const scs_header *h,
			  uint8_t pub[SCS_ED25519_PUB_LEN], scs_err *why);
	/* This member's memory of file versions (seen.h), or NULL (no memory):
	 * called with a header that authenticated at open (ours = 0) and with
	 * each header we signed (ours = 1), and the object's back-end path.
	 * Returns 1 if the header is an old version put back (*newer: the later
	 * version this member saw), else 0; the engine then refuses the open
	 * (-EBADMSG). */
	int (*observe)(void *arg, const scs_header *h, const char *where, int ours,
		       uint64_t *newer);
	/* Our identity: fingerprint and signing key (NULL for read-only use). */
	const uint8_t *self_fpr;
	EVP_PKEY *sign_key;
} scs_keyctx;

#endif
