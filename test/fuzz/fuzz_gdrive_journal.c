/* fuzz_gdrive_journal.c - the parsers of the gdrive: write-back cache's own
 * files on arbitrary bytes: the upload journal (a crash can leave any torn
 * or damaged tail), the block maps of clean cache files and the status
 * file.  Every record handed out must be
 * one the writer could have made: usable ids and revisions, a path without
 * NUL, and it must format back to a line that parses to the same record. */
#include "scs/gdrive.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int each(void *arg, const struct scs_gdrive_jrec *r)
{
	(void)arg;
	size_t n = strlen(r->id);
	if (!r->type || !strchr("PDNUCRM", r->type) || n < 1 || n > SCS_GDRIVE_ID_MAX ||
	    strspn(r->id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") != n)
		abort();      /* ids name cache files and URLs: never anything else */
	if (strlen(r->rev) > SCS_GDRIVE_REV_MAX || strnlen(r->path, sizeof r->path) >= sizeof r->path)
		abort();
	if (r->type == 'M' && ((r->version & ~(uint64_t)SCS_GDRIVE_WANT_ALL) || r->mode > 07777 ||
			       r->mtime.tv_nsec < 0 || r->mtime.tv_nsec >= 1000000000 ||
			       r->atime.tv_nsec < 0 || r->atime.tv_nsec >= 1000000000 ||
			       r->mtime.tv_sec < 0 || r->atime.tv_sec < 0))
		abort();      /* only flags, modes and times the writer could have made */
	static char line[SCS_GDRIVE_JLINE_MAX];
	int k = scs_gdrive_journal_line(r, line, sizeof line);
	if (k <= 0)
		abort();
	return 0;
}

static int again(void *arg, const struct scs_gdrive_jrec *r)
{
	const struct scs_gdrive_jrec *want = arg;
	if (r->type != want->type || r->seq != want->seq || r->version != want->version ||
	    strcmp(r->id, want->id) || strcmp(r->rev, want->rev) || strcmp(r->path, want->path))
		abort();      /* a formatted record must read back the same */
	if (r->type == 'M' &&
	    (((r->version & SCS_GDRIVE_WANT_MODE) && r->mode != want->mode) ||
	     ((r->version & SCS_GDRIVE_WANT_MTIME) && (r->mtime.tv_sec != want->mtime.tv_sec ||
							r->mtime.tv_nsec != want->mtime.tv_nsec)) ||
	     ((r->version & SCS_GDRIVE_WANT_ATIME) && (r->atime.tv_sec != want->atime.tv_sec ||
							r->atime.tv_nsec != want->atime.tv_nsec))))
		abort();
	return 0;
}

static int roundtrip(void *arg, const struct scs_gdrive_jrec *r)
{
	(void)arg;
	static char line[SCS_GDRIVE_JLINE_MAX];
	int k = scs_gdrive_journal_line(r, line, sizeof line);
	size_t bad = 0;
	if (k <= 0 || scs_gdrive_journal_parse(line, (size_t)k, again, (void *)r, &bad) || bad)
		abort();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t bad = 0;
	scs_gdrive_journal_parse(data, size, each, NULL, &bad);
	if (bad > size + 1)
		abort();
	scs_gdrive_journal_parse(data, size, roundtrip, NULL, NULL);
	struct scs_gdrive_map m, m2;
	if (scs_gdrive_map_parse(data, size, 262144, &m) == 0) {
		char *line;
		size_t len;
		if (m.nblocks != (m.size + 262143) / 262144 ||
		    scs_gdrive_map_format(&m, &line, &len) < 0)
			abort();
		if (scs_gdrive_map_parse(line, len, 262144, &m2) < 0 || m2.version != m.version ||
		    m2.size != m.size || strcmp(m2.rev, m.rev) ||
		    memcmp(m2.have, m.have, (m.nblocks + 7) / 8))
			abort();      /* a map reads back as written */
		free(m2.have);
		free(line);
		free(m.have);
	}
	struct scs_gdrive_status st;
	if (scs_gdrive_status_parse(data, size, &st) == 0 && strlen(st.error) >= sizeof st.error)
		abort();
	return 0;
}
