/* fuzz_keyring.c - keyring entries on arbitrary bytes.
 *
 * First byte 0: the bytes are an entry object: parse it, and apply it as
 * entry 1 after a fixed genesis.  Otherwise the rest is a payload, signed
 * here by the genesis admin (so the fuzzer gets past the signature into the
 * semantic checks) and applied as entry 1.  Crashes, sanitizer reports and
 * broken invariants abort. */
#include "scs/keyring.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/x509.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static scs_identity *admin;
static uint8_t *genesis;
static size_t genesis_len;

static void setup(void)
{
	EVP_PKEY *rsa = NULL, *ed = NULL;
	uint8_t pub[SCS_ED25519_PUB_LEN], key[SCS_KEY_LEN];
	unsigned char *der = NULL;
	if (scs_rsa_generate(SCS_RSA_BITS, &rsa) || scs_ed25519_generate(&ed) ||
	    scs_ed25519_public(ed, pub))
		abort();
	int dl = i2d_PUBKEY(rsa, &der);
	if (dl <= 0 || scs_identity_from_keys("admin", pub, der, (size_t)dl, &admin, NULL))
		abort();
	OPENSSL_free(der);
	EVP_PKEY_free(admin->rsa);
	admin->rsa = rsa;
	admin->ed25519 = ed;
	admin->unlocked = 1;
	if (scs_keyring_make_genesis(admin, key, &genesis, &genesis_len, NULL))
		abort();
}

static void apply_after_genesis(const uint8_t *entry, size_t len)
{
	scs_keyring *kr = NULL;
	scs_err err;
	if (scs_keyring_apply(&kr, 0, genesis, genesis_len, &err))
		abort();
	uint8_t head[SCS_SHA256_LEN];
	memcpy(head, kr->head, sizeof head);
	if (scs_keyring_apply(&kr, 1, entry, len, &err) == 0) {
		/* Accepted: it must extend the chain by one. */
		if (kr->seq != 1 || kr->nentries != 2 || memcmp(kr->entries[1].prev, head, sizeof head))
			abort();
		size_t n;
		const struct scs_member *m = scs_keyring_members(kr, &n);
		int admins = 0;
		for (size_t i = 0; i < n; i++)
			admins += m[i].role == SCS_ROLE_ADMIN;
		if (!admins)
			abort();
	} else if (kr->seq != 0 || kr->nentries != 1 || err.code != -EBADMSG) {
		abort();    /* a refused entry leaves the state alone */
	}
	scs_keyring_free(kr);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!admin)
		setup();
	if (size < 1)
		return 0;
	if (data[0] == 0) {
		struct scs_kr_entry e;
		uint8_t *payload, sig[SCS_ED25519_SIG_LEN];
		size_t plen;
		scs_err err;
		if (scs_kr_entry_parse(data + 1, size - 1, &e, &payload, &plen, sig, &err) == 0) {
			if (!payload || e.nmembers == 0 || e.nmembers > SCS_KR_MEMBERS_MAX)
				abort();
			free(payload);
			scs_kr_entry_clear(&e);
		}
		apply_after_genesis(data + 1, size - 1);
		return 0;
	}
	uint8_t *entry;
	size_t len;
	if (scs_kr_entry_seal(data + 1, size - 1, admin->ed25519, &entry, &len))
		return 0;
	apply_after_genesis(entry, len);
	free(entry);
	return 0;
}
