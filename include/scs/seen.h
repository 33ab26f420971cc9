/* scs/seen.h - replay detection: this member's memory of file versions.
 *
 * The provider can serve an old, validly signed object of a file in place
 * of its current one; the signature alone cannot tell.  So each member
 * remembers, per group and per file id, the last SCS_SEEN_KEEP
 * (file_version, content_hash) pairs it saw at open or wrote itself, in the
 * order it met them and where (the back-end path).  A served header is a
 * replay when this member remembers exactly that (version, content_hash)
 * and, met after it at the same place, a higher version of the same file.  Content hashes cover records sealed
 * with random nonces, so an exact pair is one particular write: it comes
 * back only if someone put the old object back.  Two members editing the
 * same file (versions that go down when a stale writer flushes, equal
 * versions with different hashes) never match that rule.
 *
 * What it cannot see: a file this member never saw change (a fresh clone,
 * or a version it never read), and versions it forgot (more than
 * SCS_SEEN_KEEP writes ago).
 *
 * Storage: $XDG_DATA_HOME/scsfs/groups/<group id hex>.seen, beside the
 * keyring pin, an append-only log of fixed 72-byte records (format in
 * scsfs-format(5)), each appended with one write() (O_APPEND); loaded into
 * a hash table at open; rewritten (beside, then renamed, under flock) when
 * it grows past about twice what is live.  A damaged or missing file only
 * weakens detection: what cannot be parsed is dropped and the file
 * rewritten.  Several processes may share it (the daemon, scsctl verify,
 * scsctl forget): before calling something a replay, the memory catches up
 * with what the others appended.  Thread-safe. */
#ifndef SCS_SEEN_H
#define SCS_SEEN_H

#include <stddef.h>
#include <stdint.h>
#include "scs/err.h"
#include "scs/format.h"

#define SCS_SEEN_KEEP        4       /* pairs remembered per file */
#define SCS_SEEN_RECORD_SIZE 72
#define SCS_SEEN_MAGIC       "SSN1"
enum { SCS_SEEN_REC_SEEN = 1, SCS_SEEN_REC_FORGET = 2 };

typedef struct scs_seen scs_seen;

/* "$XDG_DATA_HOME/scsfs/groups/<hex>.seen" for the group id gid. */
int scs_seen_path(const uint8_t *gid, size_t gid_len, char *out, size_t cap);

/* Open (creating it and its directory) the memory at path; path NULL: in
 * memory only (tests, fuzzing).  Never fails because of what is in the
 * file; a file that cannot be opened gives a memory-only scs_seen and one
 * warning line.  -ENOMEM only. */
int scs_seen_open(const char *path, scs_seen **out);
void scs_seen_close(scs_seen *s);

/* A header of file fid with (version, hash) was served (ours = 0) or was
 * just written by us (ours = 1) at where (its back-end path; NULL: none).
 * Returns 1 if it is a replay (not remembered; *newer = the highest later
 * version remembered), else 0 after remembering it.  ours is never a
 * replay.  The higher version must have been met at the same where: a
 * conflict copy that a sync client or Drive keeps under another name holds
 * an older version of the same file id, legitimately. */
int scs_seen_observe(scs_seen *s, const uint8_t fid[SCS_FILE_ID_LEN], uint64_t version,
		     const uint8_t hash[SCS_SHA256_LEN], const char *where, int ours,
		     uint64_t *newer);

/* Drop everything remembered about fid, durably (the record is synced), so
 * an old copy a member restored on purpose is accepted again. */
int scs_seen_forget(scs_seen *s, const uint8_t fid[SCS_FILE_ID_LEN], scs_err *err);

/* Parse log bytes into s (which should be empty): 0 if every record is
 * whole and valid, 1 if only a partial record ends it (the whole ones are
 * kept), -EBADMSG if a record is damaged (then nothing is kept).  The
 * loader of the file, exposed for the fuzz harness and tests. */
int scs_seen_load_mem(scs_seen *s, const uint8_t *p, size_t len);

/* Encode one record (for tests): kind, fid, version, hash (its first 28
 * bytes; NULL: zeros), where (the hash of the path: 0 in tests). */
void scs_seen_record(uint8_t out[SCS_SEEN_RECORD_SIZE], int kind,
		     const uint8_t fid[SCS_FILE_ID_LEN], uint64_t version,
		     const uint8_t hash[SCS_SHA256_LEN], uint32_t where);

/* For tests: how many files and (version, hash) pairs are remembered. */
void scs_seen_count(scs_seen *s, size_t *files, size_t *pairs);

#endif
