/* fuzz_header.c - the file object parsers on arbitrary bytes: header
 * decode (and re-encode round trip), size arithmetic, and the record parser
 * with a fixed key.  Crashes, sanitizer reports and broken invariants
 * abort. */
#include "scs/format.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static scs_gcm *fixed_key(void)
{
	static scs_gcm *g;
	if (!g) {
		uint8_t k[SCS_KEY_LEN];
		memset(k, 0x5a, sizeof k);
		g = scs_gcm_new(k);
		if (!g)
			abort();
	}
	return g;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	scs_header h;
	uint8_t enc[SCS_HEADER_SIZE];
	if (scs_header_decode(data, size, &h) == 0) {
		/* Whatever parses re-encodes to the same bytes. */
		if (scs_header_encode(&h, enc) != 0 || memcmp(enc, data, SCS_HEADER_SIZE) != 0)
			abort();
		uint8_t pub[SCS_ED25519_PUB_LEN], fk[SCS_KEY_LEN];
		memcpy(pub, h.writer, sizeof pub);
		if (scs_header_verify(&h, pub) == 0)
			abort();        /* no forged signature from random bytes */
		memset(fk, 0, sizeof fk);
		(void)scs_filekey_unwrap(pub, &h, fk);
	} else if (size >= SCS_HEADER_SIZE && memcmp(data, "SCSF\0\1", 6) == 0) {
		/* Right magic and version: only non-zero reserved bytes reject. */
		int zero = 1;
		for (size_t i = 158; i < 192; i++)
			zero &= data[i] == 0;
		if (zero)
			abort();
	}

	/* Size arithmetic on the first 8 bytes as an object size. */
	if (size >= 8) {
		uint64_t o = 0, p = 0;
		for (int i = 0; i < 8; i++)
			o = o << 8 | data[i];
		if (scs_plain_size(o, &p) == 0 && scs_object_size(p) != o)
			abort();
		if (scs_object_size(o) != UINT64_MAX &&
		    (scs_plain_size(scs_object_size(o), &p) != 0 || p != o))
			abort();
	}

	/* A record: flag byte, then the record bytes. */
	if (size >= 1) {
		static uint8_t pt[SCS_CHUNK_SIZE];
		uint8_t fid[SCS_FILE_ID_LEN] = { 0 };
		int last = data[0] & 1;
		if (scs_chunk_open(fixed_key(), fid, data[0] >> 1, last, data + 1, size - 1, pt) == 0)
			abort();        /* a forgery */
	}
	return 0;
}
