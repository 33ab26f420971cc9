/* scs/gdrive.h - the gdrive: back end (Google Drive v3) and its bounded
 * parsers of Drive JSON replies (exposed for the fuzz harness). */
#ifndef SCS_GDRIVE_H
#define SCS_GDRIVE_H

#include <stddef.h>
#include <stdint.h>
#include "scs/backend.h"

#define SCS_GDRIVE_ID_MAX 128
#define SCS_GDRIVE_NAME_MAX 1024

/* One Drive file resource, as much of it as scsfs uses. */
struct scs_gdrive_meta {
	char id[SCS_GDRIVE_ID_MAX + 1];          /* [A-Za-z0-9_-]{1,128} only */
	char name[SCS_GDRIVE_NAME_MAX + 1];
	int is_dir;          /* application/vnd.google-apps.folder */
	int is_link;         /* appProperties scsfs_link=1 */
	int foreign;         /* another Google type (Docs, shortcuts): ignored */
	uint64_t size;
	uint64_t version;
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

/* The reason of a Drive error body ({"error":{"errors":[{"reason":..}]}}),
 * or "" if none; message likewise (both truncated to cap). */
void scs_gdrive_error_reason(const void *json, size_t len, char *reason, size_t rcap,
			     char *message, size_t mcap);

#endif
