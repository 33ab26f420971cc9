/* fuzz_gdrive_journal.c - the parsers of the gdrive: write-back cache's own
 * files on arbitrary bytes: the upload journal (a crash can leave any torn
 * or damaged tail), the block maps of clean cache files, the snapshot of
 * what a mount knew and the status file.  Every record handed out must be
 * one the writer could have made: usable ids and revisions, a path without
 * NUL, and it must format back to a line that parses to the same record. */
#include "scs/gdrive.h"
#include "scs/b64.h"
#include "scs/crypto.h"

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

/* snapshot entries: only what the writer could have made, and they make a
 * snapshot again that reads back to as many entries */
static int snap_each(void *arg, const struct scs_gdrive_snap_ent *e)
{
	struct scs_gdrive_snap *out = arg;
	size_t n = strlen(e->m.id);
	if (n < 1 || n > SCS_GDRIVE_ID_MAX || strnlen(e->path, sizeof e->path) >= sizeof e->path ||
	    strlen(e->m.name) > SCS_GDRIVE_NAME_MAX || (e->flags & ~SCS_GDRIVE_SNAP_ALL) ||
	    e->len > SCS_GDRIVE_SNAP_DATA_MAX || (e->len && !(e->flags & SCS_GDRIVE_SNAP_DATA)) ||
	    e->m.perm > 07777 || e->m.mtime.tv_nsec >= 1000000000 || e->m.atime.tv_nsec >= 1000000000)
		abort();
	if (scs_gdrive_snap_add(out, e) < 0)
		abort();
	return 0;
}

static int snap_count(void *arg, const struct scs_gdrive_snap_ent *e)
{
	(void)e;
	(*(size_t *)arg)++;
	return 0;
}

static void snapshot(const uint8_t *data, size_t size)
{
	char root[SCS_GDRIVE_ID_MAX + 1], token[SCS_GDRIVE_TOKEN_MAX + 1];
	struct scs_gdrive_snap again = { 0 };
	size_t n1 = 0, n2 = 0;
	if (scs_gdrive_snap_parse(data, size, root, token, snap_count, &n1) != 0)
		return;
	if (scs_gdrive_snap_begin(&again, root, token) < 0 ||
	    scs_gdrive_snap_parse(data, size, root, token, snap_each, &again) != 0 ||
	    scs_gdrive_snap_end(&again) < 0 ||
	    scs_gdrive_snap_parse(again.buf, again.len, root, token, snap_count, &n2) != 0 ||
	    n1 != n2)
		abort();
	free(again.buf);
}

/* The bytes as a snapshot's body with the right checksum after them, so
 * that the entries' parser sees them (not only the checksum refusing). */
static void snapshot_body(const uint8_t *data, size_t size)
{
	uint8_t *b = malloc(size + 80), h[SCS_SHA256_LEN];
	if (!b)
		return;
	memcpy(b, data, size);
	scs_sha256(data, size, h);
	memcpy(b + size, "end ", 4);
	scs_hex_encode(h, sizeof h, (char *)b + size + 4);
	b[size + 4 + 2 * sizeof h] = '\n';
	snapshot(b, size + 5 + 2 * sizeof h);
	free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	snapshot(data, size);
	snapshot_body(data, size);
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
