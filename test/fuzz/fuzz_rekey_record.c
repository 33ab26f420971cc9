/* fuzz_rekey_record.c - the parser of a running re-key pass's progress
 * record (rekey.h) on arbitrary bytes: it never reads past len, and what
 * it accepts encodes back to bytes that parse to the same record. */
#include "scs/rekey.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int same(const struct scs_rekey_record *a, const struct scs_rekey_record *b)
{
	return a->pid == b->pid && a->epoch == b->epoch && a->started == b->started &&
	       a->updated == b->updated && a->files_done == b->files_done &&
	       a->files_total == b->files_total && a->bytes_done == b->bytes_done &&
	       a->bytes_total == b->bytes_total;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* an exact-size copy, so ASan sees any read past the end */
	char *p = malloc(size ? size : 1);
	if (!p)
		return 0;
	memcpy(p, data, size);
	struct scs_rekey_record r, r2;
	if (scs_rekey_record_parse(p, size, &r) == 0) {
		char buf[SCS_REKEY_RECORD_MAX + 64];
		size_t n = scs_rekey_record_encode(&r, buf, sizeof buf);
		if (n == 0 || n > SCS_REKEY_RECORD_MAX || scs_rekey_record_parse(buf, n, &r2) != 0 ||
		    !same(&r, &r2))
			abort();
	}
	free(p);
	return 0;
}
