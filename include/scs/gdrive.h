/* scs/gdrive.h - the gdrive: back end (Google Drive v3) and its bounded
 * parsers of Drive JSON replies (exposed for the fuzz harness). */
#ifndef SCS_GDRIVE_H
#define SCS_GDRIVE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include "scs/backend.h"

#define SCS_GDRIVE_ID_MAX 128
#define SCS_GDRIVE_NAME_MAX 1024
#define SCS_GDRIVE_REV_MAX 128

/* One Drive file resource, as much of it as scsfs uses. */
struct scs_gdrive_meta {
	char id[SCS_GDRIVE_ID_MAX + 1];          /* [A-Za-z0-9_-]{1,128} only */
	char name[SCS_GDRIVE_NAME_MAX + 1];
	int is_dir;          /* application/vnd.google-apps.folder */
	int is_link;         /* appProperties scsfs_link=1 */
	int pending;         /* appProperties p=1 (regular files): created by a member
				whose first upload of its content has not landed yet */
	int foreign;         /* another Google type (Docs, shortcuts): ignored */
	uint64_t size;
	uint64_t version;
	char rev[SCS_GDRIVE_REV_MAX + 1]; /* headRevisionId ([A-Za-z0-9_.=-]), "" if none */
	struct timespec mtime;
	uint32_t perm;       /* appProperties m (octal), when has_perm */
	int has_perm;
	struct timespec atime; /* appProperties a ("sec.nsec"), else mtime */
	char parent[SCS_GDRIVE_ID_MAX + 1]; /* first of parents (usable ids only), or "" */
	int trashed;
};

/* spec: "/path/in/drive" or "id=FOLDER_ID".  remote is the full REMOTE. */
int scs_backend_gdrive_open(const char *spec, const char *remote, scs_backend **out,
			    scs_err *err);

/* Create the folders of REMOTE "gdrive:/a/b" that do not exist yet (scsctl init). */
int scs_gdrive_mkpath(const char *remote, scs_err *err);

/* Parse a File resource: 0, -EBADMSG (malformed or an unusable id/name). */
int scs_gdrive_parse_file(const void *json, size_t len, struct scs_gdrive_meta *m);
/* Parse a files.list page: cb for each usable file (non-zero stops), the
 * nextPageToken into next (empty if absent).  0 or -EBADMSG / cb's value. */
int scs_gdrive_parse_list(const void *json, size_t len,
			  int (*cb)(void *arg, const struct scs_gdrive_meta *m), void *arg,
			  char *next, size_t next_cap);
/* Parse a changes.list page: cb for each change of a usable file id, with
 * the file's metadata, or m == NULL when it was removed (deleted, or access
 * lost); changes of other Google types are skipped.  nextPageToken into
 * next, newStartPageToken into new_start (each empty if absent).
 * 0 or -EBADMSG / cb's value. */
int scs_gdrive_parse_changes(const void *json, size_t len,
			     int (*cb)(void *arg, const char *file_id,
				       const struct scs_gdrive_meta *m),
			     void *arg, char *next, size_t next_cap, char *new_start,
			     size_t ns_cap);

/* The changes feed: take a start page token now, then poll changes.list
 * every `seconds` on a thread of the back end, dropping cached data of
 * what others changed and calling be->hooks.changed (backend.h).  Call it
 * after setting the hooks (and after any fork).  -ENOTSUP if be is not a
 * gdrive: back end; 0 seconds: no feed.  unwatch stops the thread (close
 * does too). */
int scs_gdrive_watch(scs_backend *be, unsigned seconds, scs_err *err);
void scs_gdrive_unwatch(scs_backend *be);

/* Log (INFO) what be is doing: the requests on their way and for how
 * long, online or not, the upload queue (each entry: what waits, since
 * when or when it is due, its failures).  For a mount that seems stuck
 * (scsfs: kill -USR1).  -ENOTSUP if be is not a gdrive: back end. */
int scs_gdrive_dump(scs_backend *be);

/* The reason of a Drive error body ({"error":{"errors":[{"reason":..}]}}),
 * or "" if none; message likewise (both truncated to cap). */
void scs_gdrive_error_reason(const void *json, size_t len, char *reason, size_t rcap,
			     char *message, size_t mcap);

/* ---- the write-back cache (gdrive_cache.c) ----
 *
 * $XDG_CACHE_HOME/scsfs/<hash of REMOTE>/ holds ciphertext only:
 *   lock      flock()ed by the mount that owns the cache
 *   obj/ID    cache file of Drive object ID (sparse: fetched blocks only)
 *   journal   pending uploads, one checksummed line per record (appended,
 *             fdatasync()ed; a torn or damaged line is ignored)
 *   status    what `scsctl status` shows (replaced atomically)
 *   snapshot  what the mount knew of the folder, for a mount while Drive
 *             is unreachable (below)
 *   ids       Drive ids for new files, kept from a clean unmount for the
 *             next mount (which takes them and removes the file first)
 *   obj/ID.map  which blocks of Drive's version obj/ID holds (removed,
 *             durably, before obj/ID changes)
 *
 * Journal lines: "T SEQ ID VERSION REV PATHHEX CKSUM\n" where T is P (ID's
 * cache file up to this point must reach Drive; VERSION/REV: the Drive
 * version the edit was based on; PATHHEX: its back-end path in hex) or D
 * (uploads up to SEQ are on Drive, now as VERSION/REV) or N (ID is a new
 * file made while Drive was unreachable, not on Drive at all yet: the first
 * upload creates it in the folder whose id is REV, named after PATHHEX's
 * last part, with mode VERSION (with S_IFDIR: a folder; with S_IFLNK: a
 * symbolic link, its target the content); a later N of the same ID replaces it, a D
 * of a SEQ at least as high ends it) or U (ID, which Drive has, was deleted
 * while Drive was unreachable: it is to be deleted there unless its content
 * changed on Drive since VERSION/REV; what was queued for it before goes),
 * C (ID was made on Drive by this mount, marked as having no content yet:
 * if no P of it follows, its creator died before its first close, and the
 * next mount deletes it there if it still carries that mark), R (ID, a
 * folder Drive has, was removed while Drive was unreachable: it is to be
 * deleted there once what this mount deleted or moved out of it is gone,
 * unless others put something in it meanwhile), or M (metadata of ID to
 * set on Drive, made while Drive was unreachable or while earlier changes
 * of ID still waited: VERSION holds SCS_GDRIVE_WANT_* flags; with
 * WANT_MOVE, ID goes into the folder whose id is REV under the last part
 * of PATHHEX; the line has three more fields before CKSUM: MODE (octal
 * permission bits), MTIME and ATIME ("SEC.NSEC"), each "-" unless its flag
 * is set; a later M of the same ID replaces it, a D of a SEQ at least as
 * high ends it).  REV and PATHHEX are "-" when empty,
 * CKSUM is 8 hex digits of SHA-256 over what precedes it. */
#define SCS_GDRIVE_JLINE_MAX 9200
#define SCS_GDRIVE_WANT_MOVE  1u     /* parent and name */
#define SCS_GDRIVE_WANT_MODE  2u
#define SCS_GDRIVE_WANT_MTIME 4u
#define SCS_GDRIVE_WANT_ATIME 8u
#define SCS_GDRIVE_WANT_ALL   15u
struct scs_gdrive_jrec {
	char type;                          /* 'P', 'D', 'N', 'U', 'C', 'R' or 'M' */
	uint64_t seq;
	char id[SCS_GDRIVE_ID_MAX + 1];
	uint64_t version;
	char rev[SCS_GDRIVE_REV_MAX + 1];
	char path[4096];                    /* SCS_PATH_MAX; "" for D */
	/* M only, each meaningful when its flag is in version: */
	uint32_t mode;                      /* permission bits (07777) */
	struct timespec mtime, atime;
};
/* A journal line for r into out (cap >= SCS_GDRIVE_JLINE_MAX): its length, or
 * -ENAMETOOLONG / -EINVAL. */
int scs_gdrive_journal_line(const struct scs_gdrive_jrec *r, char *out, size_t cap);
/* cb for each intact record, in order (non-zero stops and is returned);
 * *bad (may be NULL) counts the damaged lines skipped. */
int scs_gdrive_journal_parse(const void *buf, size_t len,
			     int (*cb)(void *arg, const struct scs_gdrive_jrec *r), void *arg,
			     size_t *bad);

/* obj/ID.map, written at unmount beside a clean cache file: which 256 KiB
 * blocks of Drive's version VERSION/REV of ID the file holds, so the next
 * mount reuses them while Drive still has that version.  One line:
 * "scsfs-map 1 VERSION REV SIZE NBLOCKS HEXBITMAP\n" (REV "-" if none).
 * The next mount deletes it when loading (a crash then leaves none). */
struct scs_gdrive_map {
	uint64_t version, size;
	char rev[SCS_GDRIVE_REV_MAX + 1];
	size_t nblocks;              /* = ceil(size / block) */
	uint8_t *have;               /* (nblocks + 7) / 8 bytes, malloc'd */
};
#define SCS_GDRIVE_MAP_MAX (2u << 20)
/* Format into a malloc'd line (*out, *len); 0 or -errno. */
int scs_gdrive_map_format(const struct scs_gdrive_map *m, char **out, size_t *len);
/* Parse (block: the block size the sizes must agree with); 0 or -EBADMSG. */
int scs_gdrive_map_parse(const void *buf, size_t len, uint64_t block, struct scs_gdrive_map *m);

/* snapshot: what a mount last knew of the folder, written at unmount and
 * now and then (replaced atomically), so that it can be mounted again while
 * Drive is unreachable.  It holds what Drive holds (encrypted names, ids,
 * the small objects read: .scsdir, keyring entries, link targets), never
 * plaintext.  Lines:
 *   scsfs-snapshot 1
 *   root ROOTID            the folder's id
 *   token TOKEN|-          the changes feed's page token then
 *   E PATHHEX PID FLAGS ID NAMEHEX SIZE VERSION REV|- MTIME ATIME PERM DATAHEX|-
 *                          one per path seen (PATHHEX "-": the root); FLAGS:
 *                          SCS_GDRIVE_SNAP_*; times "SEC.NSEC"; PERM octal
 *   end SHA256HEX          over every byte before this line
 * A snapshot that does not check out is not used. */
#define SCS_GDRIVE_SNAP_DIR     1u
#define SCS_GDRIVE_SNAP_LINK    2u
#define SCS_GDRIVE_SNAP_LISTED  4u      /* a folder whose whole listing was seen */
#define SCS_GDRIVE_SNAP_PERM    8u
#define SCS_GDRIVE_SNAP_DATA    16u     /* its content (at most SCS_GDRIVE_SNAP_DATA_MAX) */
#define SCS_GDRIVE_SNAP_ALL     31u
#define SCS_GDRIVE_SNAP_DATA_MAX (64u << 10)
#define SCS_GDRIVE_SNAP_MAX     (512u << 20)
#define SCS_GDRIVE_TOKEN_MAX    1000
struct scs_gdrive_snap_ent {
	char path[4096];                 /* back-end path; "" the root */
	char pid[SCS_GDRIVE_ID_MAX + 1]; /* its folder's id ("" for the root) */
	unsigned flags;
	struct scs_gdrive_meta m;        /* id, name, is_dir, is_link, size, version,
					  * rev, mtime, atime, perm/has_perm */
	const uint8_t *data;             /* with SCS_GDRIVE_SNAP_DATA (parse: valid during the call) */
	size_t len;
};
struct scs_gdrive_snap {
	char *buf;                       /* the text being built */
	size_t len, cap;
};
/* Build: begin (root id, feed token or ""), one entry per call, end (the
 * checksum).  0 or -errno (-EINVAL for what no snapshot can hold). */
int scs_gdrive_snap_begin(struct scs_gdrive_snap *s, const char *root, const char *token);
int scs_gdrive_snap_add(struct scs_gdrive_snap *s, const struct scs_gdrive_snap_ent *e);
int scs_gdrive_snap_end(struct scs_gdrive_snap *s);
/* Parse (bounded; the checksum first): root[SCS_GDRIVE_ID_MAX + 1],
 * token[SCS_GDRIVE_TOKEN_MAX + 1], cb per entry (non-zero stops and is
 * returned).  0 or -EBADMSG. */
int scs_gdrive_snap_parse(const void *buf, size_t len, char *root, char *token,
			  int (*cb)(void *arg, const struct scs_gdrive_snap_ent *e), void *arg);

/* The cache directory of REMOTE (out[SCS_PATH_MAX]). */
int scs_gdrive_cache_dir(const char *remote, char *out, size_t cap);

struct scs_gdrive_status {
	int offline;              /* Drive unreachable */
	time_t offline_since;
	time_t last_sync;         /* last upload that reached Drive (0: none yet) */
	time_t updated;
	uint64_t files, bytes;    /* pending uploads */
	uint64_t deletes;         /* deletes made offline, not done on Drive yet */
	uint64_t changes;         /* renames, modes, times and folder removals made
				   * offline (or behind them), not on Drive yet */
	char error[256];          /* the last error a user should know, or "" */
	int mounted;              /* a mount holds the cache (set by the reader) */
};
/* Write dir/status atomically; read it back (-ENOENT: no status yet). */
int scs_gdrive_status_write(const char *dir, const struct scs_gdrive_status *s);
int scs_gdrive_status_read(const char *dir, struct scs_gdrive_status *s);
/* Parse a status file's bytes (bounded; 0 or -EBADMSG). */
int scs_gdrive_status_parse(const void *buf, size_t len, struct scs_gdrive_status *s);

#endif
