/* fuzz_name.c - every parser of remote names and small objects on arbitrary
 * bytes: name classification and decryption (fixed key), undecoration,
 * base64url/base64/hex decoders, .scsdir and symlink targets. */
#include "scs/names.h"
#include "scs/b64.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t key[SCS_SIV_KEY_LEN], ek[SCS_KEY_LEN], did[SCS_DIR_ID_LEN];
	static int init;
	if (!init) {
		memset(ek, 0x33, sizeof ek);
		if (scs_name_key(ek, key))
			abort();
		init = 1;
	}
	/* A NUL-terminated copy for the string APIs. */
	char *s = malloc(size + 1);
	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';

	size_t el = 0;
	char plain[SCS_NAME_MAX + 1];
	int c = scs_name_classify(s, &el);
	if (c == SCS_NAME_PLAIN_ENC || c == SCS_NAME_LONG || c == SCS_NAME_LONG_SIDE) {
		if (el == 0 || el > strlen(s))
			abort();
		if (c == SCS_NAME_PLAIN_ENC && scs_name_decrypt(key, did, s, el, plain) == 0) {
			/* Whatever decrypts is a valid name, re-encrypting to itself. */
			char full[SCS_ENC_NAME_BUF], stored[SCS_ENC_NAME_BUF];
			int il;
			if (scs_name_encrypt(key, did, plain, full, stored, &il) ||
			    strncmp(full, s, el) != 0)
				abort();
		}
		if (c == SCS_NAME_LONG)
			(void)scs_name_long_check(s, el, s, strlen(s));
	}
	(void)scs_name_decrypt(key, did, s, size, plain);

	char p2[SCS_NAME_MAX + 1], out[SCS_NAME_MAX + 1];
	size_t off, dl;
	if (scs_name_undecorate(s, p2, &off, &dl)) {
		/* Undecorate then decorate gives the input back. */
		if (scs_name_decorate(p2, s + off, dl, out) || strcmp(out, s) != 0)
			abort();
	}

	uint8_t buf[8192];
	long n = scs_b64url_decode(s, size, buf, sizeof buf);
	if (n >= 0 && size <= 4 * sizeof buf / 3) {
		char re[8192 * 2];
		scs_b64url_encode(buf, (size_t)n, re);
		if (strlen(re) != size || memcmp(re, s, size) != 0)
			abort();        /* strict: only canonical strings decode */
	}
	(void)scs_b64_decode(s, size, buf, sizeof buf);
	(void)scs_hex_decode(s, size, buf, sizeof buf);

	uint8_t id[SCS_DIR_ID_LEN];
	if (scs_dirid_decode(data, size, id) == 0 && size != SCS_DIRID_OBJ_LEN)
		abort();

	uint32_t epoch;
	char target[SCS_SYMLINK_MAX + 1];
	if (scs_symlink_epoch(s, &epoch) == 0 && scs_symlink_decrypt(ek, did, s, target) == 0 &&
	    strlen(target) == 0)
		abort();
	free(s);
	return 0;
}
