/* backend_gdrive.c - the gdrive: back end: Google Drive v3 over libcurl.
 *
 * Paths are resolved to file ids one component at a time (folder ids are
 * cached).  Random-access objects keep a local ciphertext cache file
 * (anonymous, under $XDG_CACHE_HOME/scsfs/<hash of remote>/): reads fetch
 * missing 256 KiB blocks with ranged alt=media GETs, writes land in the
 * cache file (after fetching the rest of the object), fsync/close upload
 * synchronously (multipart up to 5 MiB, else resumable in 8 MiB chunks).
 * Requests are retried with truncated exponential backoff and jitter on
 * rate limits, 429 and 5xx; a 401 refreshes the access token once.
 *
 * Names: Drive lets one folder hold several entries of one name; listings
 * show the smallest id under the name and the others with a duplicate
 * suffix (names.h), which lookups resolve to exactly that entry.
 * Changes: scs_gdrive_watch polls changes.list; what this mount knows of
 * an entry (its parent and name, the last version seen, in a table by id)
 * tells its old path, and whether a change is our own. */
#include "scs/gdrive.h"
#include "scs/b64.h"
#include "scs/config.h"
#include "scs/crypto.h"
#include "scs/http.h"
#include "scs/log.h"
#include "scs/names.h"
#include "scs/oauth.h"

#include <fcntl.h>
#include <jansson.h>
#include <dirent.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#define BLK            (256u << 10)      /* ranged read granularity */
#define FETCH_MAX      (8u << 20)        /* largest single ranged GET */
#define RA_REQ         (2u << 20)        /* a read-ahead GET (a multiple of BLK) */
#define RA_MAX         (16u << 20)       /* read-ahead window at most */
#define RA_NEAR        (2u << 20)        /* a read this near the last one's end continues it */
#define DL_DEFAULT     8                 /* read-ahead GETs at once (-o download_parallel) */
#define DL_MAX         16
#define MULTIPART_MAX  (5u << 20)
#define CHUNK          (8u << 20)        /* resumable chunk (multiple of 256 KiB) */
#define MAX_TRIES      10
#define MAX_RETRY_S    300               /* total backoff budget per request */
#define MAX_CLOSED     32                /* closed objects kept with their cache */
#define RELEASE_WAIT_S 1                 /* a rename waits this long for a close's release */
#define FOLDER_MIME    "application/vnd.google-apps.folder"
#define FIELDS         "id,name,mimeType,size,modifiedTime,version,headRevisionId,appProperties"
#define LINK_KEY       "scsfs_link"
#define REQ_SLOTS      32                /* requests on their way that a dump shows */
enum { RQ_TOKEN, RQ_SENT, RQ_BACKOFF };  /* what a request waits for */
#define PEND_KEY       "p"               /* "1": created, content not uploaded yet */

/* One ranged GET of blocks [b, e] of a cache file: bytes [s, t) of the
 * object on Drive. */
struct gd_fetch {
	struct gd_fetch *next;   /* in f->fetches (f->lock) */
	struct gd_fetch *qnext;  /* in the download queue (g->dl_lock) */
	int queued;              /* (g->dl_lock) */
	int pinned;              /* a read-ahead: f is pinned until it is over */
	struct gd_file *f;
	uint64_t gen;            /* f->gen it was made for */
	size_t b, e;
	uint64_t s, t;
};

struct gd_file {
	struct gd_file *next;
	char id[SCS_GDRIVE_ID_MAX + 1];
	pthread_mutex_t lock;
	int fd;                  /* cache file (ciphertext): obj/ID, or anonymous */
	int refs;                /* open handles */
	int writers;             /* of them opened for writing (g->lock) */
	uint64_t size;           /* current (local) object size */
	uint64_t remote_size;    /* size of the object on Drive */
	uint64_t version;        /* Drive version the cache matches */
	char rev[SCS_GDRIVE_REV_MAX + 1]; /* and its headRevisionId */
	uint8_t *have;           /* bitmap of fetched blocks of the remote object */
	size_t nblocks;
	int have_all;            /* everything of the remote object is in fd */
	int dirty;               /* local changes not on Drive yet */
	struct scs_gdrive_meta meta;
	/* write-back (g->wb): */
	char *path;              /* back-end path, for conflict names */
	uint64_t wseq, jwseq;    /* writes so far; their count at the last P record */
	uint64_t jseq, dseq;     /* the last record of a job (P, M, N, U, R); done up to this seq */
	time_t due;              /* upload from then on */
	int inflight;            /* an upload of it is running (g->lock) */
	time_t up_since;         /* (inflight) since then, */
	pid_t up_tid;            /* on that thread (scs_gdrive_dump) */
	int tried;               /* attempted while draining at unmount */
	int deleted;             /* unlinked: drop what is queued */
	int dropping;            /* this mount is deleting it on Drive now (g->lock) */
	int failures;
	uint64_t used;           /* LRU clock */
	uint64_t pseq;           /* the last P record: content to upload */
	/* Metadata this mount set that Drive does not have yet (g->lock; the
	 * values are in meta): SCS_GDRIVE_WANT_* flags, journaled in the M
	 * record mseq.  Made while Drive was unreachable, or behind other such
	 * changes of the entry; times set on a file whose content waits go
	 * with its upload (an upload gives Drive a new modifiedTime). */
	unsigned want;
	uint64_t mseq;
	int nocontent;           /* made to hold want or a folder's removal: no cache state */
	int mapped;              /* (f->lock) obj/ID.map describes the cache file: gone
				  * before the file changes (map_forget) */
	/* Made while Drive was unreachable (g->lock): not on Drive at all yet;
	 * its first upload creates it in folder meta.parent as meta.name with
	 * meta.perm.  cseq: its last N record (0: none yet, it was not closed). */
	int pend_create;
	int creating;            /* an upload is creating it now (g->lock, g->cond) */
	uint64_t cseq;
	/* Deleted here while Drive was unreachable (g->lock; with deleted):
	 * the uploader deletes it on Drive, unless its content there is no
	 * longer version/rev (someone changed it since: theirs stays). */
	int pend_delete;
	int if_marked;           /* (pend_delete) only if Drive still has it marked empty */
	/* (pend_delete of a folder, meta.is_dir) it is deleted once what this
	 * mount deleted or moved out of it is gone from it on Drive, unless
	 * others put something there meanwhile (then it stays). */

	/* read-ahead (f->lock): a read that goes on past where the last one
	 * ended doubles the window fetched ahead of it, from two blocks up to
	 * RA_MAX */
	uint64_t ra_next, ra_win;
	/* The GETs of its blocks running or queued (f->lock): a block one of
	 * them covers is in flight, and a read that needs it waits on fetched
	 * instead of fetching it twice.  gen names the content of the cache
	 * file: whatever resets it (a new version from Drive) bumps gen, and a
	 * GET made for an older gen stores nothing. */
	struct gd_fetch *fetches;
	uint64_t gen;
	pthread_cond_t fetched;
	int pins;                /* (g->lock) read-aheads of it queued or running */
	int orphan;              /* (g->lock) out of g->files: the last unpin frees it */
};

struct gd_dir {
	char *path;
	char id[SCS_GDRIVE_ID_MAX + 1];
};

/* What we know of an entry: where it is and the last version we saw. */
struct gd_ent {
	struct gd_ent *next;
	char id[SCS_GDRIVE_ID_MAX + 1];
	char pid[SCS_GDRIVE_ID_MAX + 1];
	char *name;              /* its Drive name */
	int dup;                 /* listed with a duplicate suffix */
	uint64_t version;
};
#define ENT_BUCKETS 16384
/* At most this many (~40 MiB): entries beyond are not tracked, and their
 * changes reach the core as new entries (the kernel then looks them up
 * again), not as content changes of open files. */
#define ENT_MAX     (1u << 17)

struct gd_be {
	scs_backend be;
	struct scs_oauth *oauth;
	struct scs_gdrive_endpoints ep;
	char root_id[SCS_GDRIVE_ID_MAX + 1];
	char cache_dir[SCS_PATH_MAX];
	pthread_mutex_t lock;          /* dirs, ids, files */
	struct gd_dir *dirs;
	size_t ndirs, capdirs;
	char (*ids)[SCS_GDRIVE_ID_MAX + 1];
	size_t nids;
	int ids_filling;               /* an uploader thread fills the pool at mount */
	unsigned nlocal;               /* files with pend_create or pend_delete (lock) */
	unsigned nwant;                /* files with want (lock) */
	struct gd_file *files;
	int opening;                   /* in scs_backend_gdrive_open: no log lines */
	int auth_logged;
	struct gd_ent **ents;          /* ENT_BUCKETS chains, under lock */
	size_t nents;
	/* the changes feed */
	pthread_t watch_th;
	int watching;
	pthread_mutex_t wlock;
	pthread_cond_t wcv;
	int wstop;
	unsigned every;
	char token[1024];
	/* Connectivity: after NET_FAILS network errors in a row Drive counts as
	 * unreachable; requests then fail at once (no backoff) until one gets
	 * through. */
	int offline, net_fails;
	time_t offline_since;
	int auth_failed;               /* the last token refresh was refused */
	/* The write-back cache (scsfs: opts.write_back). */
	struct scs_backend_opts opts;
	int wb;
	int lock_fd, obj_dfd, jfd;
	char obj_dir[SCS_PATH_MAX + 8];
	pthread_mutex_t jlock;         /* journal appends, seq */
	uint64_t seq;
	uint64_t jsize;
	pthread_cond_t cond;           /* with lock: the queue changed */
	pthread_t workers[8];
	unsigned nworkers;
	int stopping;
	uint64_t clock;
	time_t last_sync;
	char last_error[256];
	unsigned status_gen, status_done;
	pthread_mutex_t status_lock;   /* one write_status at a time */
	/* The download pool: threads running the queued read-ahead GETs.
	 * dl_lock is taken under f->lock, never the other way round. */
	pthread_mutex_t dl_lock;
	pthread_cond_t dl_cv;
	struct gd_fetch *dl_head, *dl_tail;
	pthread_t dl_th[DL_MAX];
	unsigned ndl;
	int dl_stop;
	/* The requests on their way, for scs_gdrive_dump (rlock; a slot per
	 * request, those beyond REQ_SLOTS are not shown). */
	pthread_mutex_t rlock;
	struct gd_req_slot {
		int used;
		pid_t tid;
		int attempt;             /* 0: the first try */
		int phase;               /* RQ_*, since tp */
		struct timespec t0, tp;
		char what[112];          /* method and path, without the query */
	} reqs[REQ_SLOTS];
	struct gd_memo *memo;          /* what was last seen, for offline use */
	unsigned snap_gen;             /* memo->gen when the snapshot was written */
	time_t snap_due;               /* (lock) the next look at whether one is due */
	int snapping;                  /* (lock) an uploader thread writes it now */
	struct gd_owns *own;           /* our recent namespace changes, under lock */
	struct gd_mines *mine;         /* our new files not uploaded yet, under lock */
	/* The folders above what was made offline, kept (keep_lock) to make
	 * them again if someone deletes them before Drive has it; keep_run:
	 * one bringing back at a time. */
	pthread_mutex_t keep_lock, keep_run;
	struct gd_keep **keep;
	size_t nkeep;
};

struct gd_obj {
	scs_obj o;
	struct gd_file *f;
	int writer;              /* opened for writing */
};

static inline struct gd_be *GB(scs_backend *be) { return (struct gd_be *)be; }

/* f was made here while Drive was unreachable and Drive has none of it yet
 * (g->lock held). */
static inline int local_only(const struct gd_file *f) { return f->pend_create && !f->deleted; }
/* f, which Drive has, is to move to meta.parent as meta.name (g->lock held). */
static inline int moving(const struct gd_file *f)
{
	return (f->want & SCS_GDRIVE_WANT_MOVE) && !f->deleted;
}

/* The fields of src that flags (SCS_GDRIVE_WANT_*) name, into dst. */
static void meta_take(struct scs_gdrive_meta *dst, const struct scs_gdrive_meta *src,
		      unsigned flags)
{
	if (flags & SCS_GDRIVE_WANT_MOVE) {
		strcpy(dst->parent, src->parent);
		strcpy(dst->name, src->name);
	}
	if (flags & SCS_GDRIVE_WANT_MODE) {
		dst->perm = src->perm & 07777;
		dst->has_perm = 1;
	}
	if (flags & SCS_GDRIVE_WANT_MTIME)
		dst->mtime = src->mtime;
	if (flags & SCS_GDRIVE_WANT_ATIME)
		dst->atime = src->atime;
}

/* f->want gains or loses flags (g->lock held). */
static void want_add_locked(struct gd_be *g, struct gd_file *f, unsigned flags)
{
	if (!f->want && flags)
		g->nwant++;
	f->want |= flags;
}

static void want_clear_locked(struct gd_be *g, struct gd_file *f, unsigned flags)
{
	unsigned w = f->want & ~flags;
	if (f->want && !w)
		g->nwant--;
	f->want = w;
}

static void file_dropped(struct gd_be *g, const char *id);
static void keep_chain(struct gd_be *g, const char *path, const char *pid);
static void keep_free(struct gd_be *g);
static void keep_load(struct gd_be *g);
static void keep_done(struct gd_be *g);
static void files_renamed(struct gd_be *g, const char *from, const char *to);
static void notify(struct gd_be *g, const char *path, int what);

/* ---- JSON parsers (bounded; fuzzed) ---- */

static int id_ok(const char *s)
{
	size_t n = strlen(s);
	if (n < 1 || n > SCS_GDRIVE_ID_MAX)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_'))
			return 0;
	}
	return 1;
}

static uint64_t u64_field(json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);
	if (json_is_integer(v))
		return json_integer_value(v) < 0 ? 0 : (uint64_t)json_integer_value(v);
	const char *s = json_string_value(v);
	if (!s || !*s || strlen(s) > 20)
		return 0;
	char *e;
	errno = 0;
	unsigned long long x = strtoull(s, &e, 10);
	return (*e || errno || s[0] == '-') ? 0 : (uint64_t)x;
}

/* RFC 3339 "YYYY-MM-DDTHH:MM:SS[.fff]Z" -> timespec (0 if unreadable). */
static struct timespec parse_time(const char *s)
{
	struct timespec ts = { 0, 0 };
	struct tm tm = { 0 };
	int n = 0;
	if (!s || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
			 &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &n) != 6)
		return ts;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	ts.tv_sec = timegm(&tm);
	if (ts.tv_sec < 0)
		ts.tv_sec = 0;
	if (s[n] == '.') {
		long ns = 0, mul = 100000000;
		for (const char *p = s + n + 1; *p >= '0' && *p <= '9'; p++) {
			ns += (*p - '0') * mul;
			mul /= 10;
		}
		ts.tv_nsec = ns;
	}
	return ts;
}

/* appProperties time "sec.nsec" -> 1 and *t, else 0. */
static int prop_time(json_t *ap, const char *key, struct timespec *t)
{
	const char *v = json_string_value(json_object_get(ap, key));
	long long sec;
	long ns;
	int n = 0;
	if (!v || strlen(v) > 32 || sscanf(v, "%lld.%ld%n", &sec, &ns, &n) != 2 || v[n] ||
	    sec < 0 || ns < 0 || ns >= 1000000000)
		return 0;
	t->tv_sec = (time_t)sec;
	t->tv_nsec = ns;
	return 1;
}

static int meta_from_json(json_t *f, struct scs_gdrive_meta *m)
{
	memset(m, 0, sizeof *m);
	if (!json_is_object(f))
		return -EBADMSG;
	const char *id = json_string_value(json_object_get(f, "id"));
	const char *name = json_string_value(json_object_get(f, "name"));
	const char *mime = json_string_value(json_object_get(f, "mimeType"));
	if (!id || !id_ok(id))
		return -EBADMSG;
	strcpy(m->id, id);
	if (name) {
		size_t n = strlen(name);
		if (n > SCS_GDRIVE_NAME_MAX)
			return -EBADMSG;
		memcpy(m->name, name, n + 1);
	}
	if (mime && !strcmp(mime, FOLDER_MIME))
		m->is_dir = 1;
	else if (mime && !strncmp(mime, "application/vnd.google-apps.", 28))
		m->foreign = 1;
	m->size = u64_field(f, "size");
	m->version = u64_field(f, "version");
	json_t *parents = json_object_get(f, "parents");
	const char *p0 = json_is_array(parents) ? json_string_value(json_array_get(parents, 0)) : NULL;
	if (p0 && id_ok(p0))
		strcpy(m->parent, p0);
	m->trashed = json_is_true(json_object_get(f, "trashed"));
	const char *rev = json_string_value(json_object_get(f, "headRevisionId"));
	if (rev) {
		size_t rn = strlen(rev);
		if (rn > SCS_GDRIVE_REV_MAX || strspn(rev, "abcdefghijklmnopqrstuvwxyz"
		    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.=") != rn)
			return -EBADMSG;
		memcpy(m->rev, rev, rn + 1);
	}
	m->mtime = parse_time(json_string_value(json_object_get(f, "modifiedTime")));
	json_t *ap = json_object_get(f, "appProperties");
	if (json_is_object(ap)) {
		const char *l = json_string_value(json_object_get(ap, LINK_KEY));
		const char *pm = json_string_value(json_object_get(ap, "m"));
		const char *pd = json_string_value(json_object_get(ap, PEND_KEY));
		m->is_link = l && !strcmp(l, "1") && !m->is_dir;
		m->pending = pd && !strcmp(pd, "1") && !m->is_dir && !m->is_link;
		if (pm && strlen(pm) <= 5) {
			char *e;
			unsigned long v = strtoul(pm, &e, 8);
			if (!*e && e != pm) {
				m->perm = (uint32_t)(v & 07777);
				m->has_perm = 1;
			}
		}
		struct timespec t;
		/* mtime to the nanosecond, while Drive's (ms) still agrees */
		if (prop_time(ap, "t", &t) && t.tv_sec == m->mtime.tv_sec &&
		    t.tv_nsec / 1000000 == m->mtime.tv_nsec / 1000000)
			m->mtime = t;
		if (!prop_time(ap, "a", &m->atime))
			m->atime = m->mtime;
	} else {
		m->atime = m->mtime;
	}
	return 0;
}

static json_t *load_json(const void *json, size_t len)
{
	if (!json || len > SCS_HTTP_MAX_JSON)
		return NULL;
	return json_loadb(json, len, 0, NULL);
}

int scs_gdrive_parse_file(const void *json, size_t len, struct scs_gdrive_meta *m)
{
	json_t *j = load_json(json, len);
	int r = j ? meta_from_json(j, m) : -EBADMSG;
	json_decref(j);
	return r;
}

int scs_gdrive_parse_list(const void *json, size_t len,
			  int (*cb)(void *arg, const struct scs_gdrive_meta *m), void *arg,
			  char *next, size_t next_cap)
{
	if (next_cap)
		next[0] = '\0';
	json_t *j = load_json(json, len);
	if (!j || !json_is_object(j)) {
		json_decref(j);
		return -EBADMSG;
	}
	json_t *files = json_object_get(j, "files");
	const char *tok = json_string_value(json_object_get(j, "nextPageToken"));
	int r = 0;
	if (files && !json_is_array(files))
		r = -EBADMSG;
	if (!r && tok) {
		if (strlen(tok) >= next_cap)
			r = -EBADMSG;
		else
			strcpy(next, tok);
	}
	size_t i;
	json_t *f;
	struct scs_gdrive_meta *m = malloc(sizeof *m);
	if (!m)
		r = -ENOMEM;
	if (!r && files) {
		json_array_foreach(files, i, f) {
			if (meta_from_json(f, m) < 0 || m->foreign || !m->name[0])
				continue;   /* unusable entries are skipped, not fatal */
			r = cb(arg, m);
			if (r)
				break;
		}
	}
	free(m);
	json_decref(j);
	return r;
}

static int copy_token(json_t *j, const char *key, char *out, size_t cap)
{
	if (cap)
		out[0] = '\0';
	json_t *v = json_object_get(j, key);
	if (!v)
		return 0;
	const char *t = json_string_value(v);
	if (!t || strlen(t) >= cap)
		return -EBADMSG;
	strcpy(out, t);
	return 0;
}

int scs_gdrive_parse_changes(const void *json, size_t len,
			     int (*cb)(void *arg, const char *file_id,
				       const struct scs_gdrive_meta *m),
			     void *arg, char *next, size_t next_cap, char *new_start,
			     size_t ns_cap)
{
	json_t *j = load_json(json, len);
	int r = (j && json_is_object(j)) ? 0 : -EBADMSG;
	if (!r)
		r = copy_token(j, "nextPageToken", next, next_cap);
	if (!r)
		r = copy_token(j, "newStartPageToken", new_start, ns_cap);
	else if (ns_cap)
		new_start[0] = '\0';
	json_t *changes = j ? json_object_get(j, "changes") : NULL;
	if (!r && changes && !json_is_array(changes))
		r = -EBADMSG;
	struct scs_gdrive_meta *m = malloc(sizeof *m);
	if (!m)
		r = -ENOMEM;
	size_t i;
	json_t *c;
	if (!r && changes) {
		json_array_foreach(changes, i, c) {
			const char *fid = json_string_value(json_object_get(c, "fileId"));
			json_t *file = json_object_get(c, "file");
			if (!fid || !id_ok(fid))
				continue;
			if (json_is_true(json_object_get(c, "removed")) || !file) {
				r = cb(arg, fid, NULL);
			} else {
				if (meta_from_json(file, m) < 0 || m->foreign || !m->name[0] ||
				    strcmp(m->id, fid))
					continue;   /* unusable: skipped, as in listings */
				r = cb(arg, fid, m);
			}
			if (r)
				break;
		}
	}
	free(m);
	json_decref(j);
	return r;
}

void scs_gdrive_error_reason(const void *json, size_t len, char *reason, size_t rcap,
			     char *message, size_t mcap)
{
	if (rcap)
		reason[0] = '\0';
	if (mcap)
		message[0] = '\0';
	json_t *j = load_json(json, len);
	json_t *e = json_object_get(j, "error");
	if (json_is_object(e)) {
		const char *msg = json_string_value(json_object_get(e, "message"));
		json_t *es = json_object_get(e, "errors");
		json_t *e0 = json_is_array(es) ? json_array_get(es, 0) : NULL;
		const char *rs = json_string_value(json_object_get(e0, "reason"));
		if (rs && rcap)
			snprintf(reason, rcap, "%s", rs);
		if (msg && mcap)
			snprintf(message, mcap, "%s", msg);
	}
	json_decref(j);
}

/* ---- requests with auth and retries ---- */

struct gd_rq {
	const char *method;
	const char *url;
	const char *ctype;         /* Content-Type of the body, or NULL */
	const char *extra;         /* one more header, or NULL */
	const void *body;
	size_t body_len;
	int body_fd;
	uint64_t body_off;
	void *out_buf;
	uint64_t out_max;
	size_t max_resp;
	int no_auth;               /* resumable session URIs */
	int once;                  /* no retries, no log lines (the changes poll) */
	int page_token;            /* a listing's follow-up page: a 400 is -ESTALE */
};

static void gd_rq_init(struct gd_rq *q, const char *method, const char *url)
{
	memset(q, 0, sizeof *q);
	q->method = method;
	q->url = url;
	q->body_fd = -1;
}

static void backoff_sleep(int attempt, int retry_after)
{
	uint32_t rnd = 0;
	scs_random(&rnd, sizeof rnd);
	int shift = attempt > 5 ? 5 : attempt;
	uint64_t ms = (1000ull << shift) + rnd % 1000;
	if (ms > 32000)
		ms = 32000 + rnd % 1000;
	if (retry_after > 0 && (uint64_t)retry_after * 1000 > ms)
		ms = (uint64_t)retry_after * 1000 + rnd % 1000;
	struct timespec ts = { .tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000 };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static int retryable(long st, const char *reason, const char *msg)
{
	if (st == 429 || (st >= 500 && st <= 599))
		return 1;
	if (st == 403 && (!strcmp(reason, "rateLimitExceeded") ||
			  !strcmp(reason, "userRateLimitExceeded")))
		/* The daily upload cap looks alike but with this exact message. */
		return strcmp(msg, "User rate limit exceeded.") != 0;
	return 0;
}

/* Map a final non-2xx reply to an errno, logging what a user needs. */
static int status_errno(const char *what, long st, const char *reason, const char *msg)
{
	if (st == 404)
		return -ENOENT;
	if (st == 409)
		return -EEXIST;
	if (st == 403 && (!strcmp(reason, "storageQuotaExceeded") ||
			  !strcmp(reason, "teamDriveFileLimitExceeded"))) {
		scs_log(SCS_LOG_ERR, "gdrive: %s: Google Drive storage is full (%s); free space in "
			"Drive or buy more storage", what, reason);
		return -ENOSPC;
	}
	if (st == 403 && (!strcmp(reason, "userRateLimitExceeded") ||
			  !strcmp(reason, "dailyLimitExceeded"))) {
		scs_log(SCS_LOG_ERR, "gdrive: %s: the daily Google Drive limit is reached (%s); "
			"try again tomorrow", what, msg);
		return -EDQUOT;
	}
	if (st == 401 || st == 403) {
		scs_log(SCS_LOG_ERR, "gdrive: %s: access denied (HTTP %ld %s)", what, st, reason);
		return -EACCES;
	}
	if (st == 400 || st == 416) {
		scs_log(SCS_LOG_ERR, "gdrive: %s: request refused (HTTP %ld %s: %.200s)", what, st,
			reason, msg);
		return -EINVAL;
	}
	scs_log(SCS_LOG_ERR, "gdrive: %s failed: HTTP %ld %s", what, st, reason);
	return -EIO;
}

#define NET_FAILS 3

static _Thread_local int in_upload;   /* this thread runs a queued upload */
static _Thread_local int queueable;   /* this request's failure offline is queued */

/* A change failed for want of Drive: say so (once a minute), as it is
 * one of the few that are not queued. */
static void offline_refusal(struct gd_be *g, const char *method)
{
	static time_t last;
	time_t now = time(NULL);
	if (in_upload || queueable || !strcmp(method, "GET") || g->opening)
		return;
	if (__atomic_exchange_n(&last, now, __ATOMIC_RELAXED) + 60 > now)
		return;
	scs_log(SCS_LOG_ERR, "gdrive: Drive is unreachable: swapping two names (RENAME_EXCHANGE), "
		"replacing a small object in place and changes to the group's keyring need it "
		"(everything else is queued offline); try again when it is back");
}

/* The last error, for `scsctl status` (g->lock held for set_error_locked). */
static void set_error_locked(struct gd_be *g, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void set_error_locked(struct gd_be *g, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(g->last_error, sizeof g->last_error, fmt, ap);
	g->status_gen++;
	va_end(ap);
}

static void set_error(struct gd_be *g, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_error(struct gd_be *g, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	pthread_mutex_lock(&g->lock);
	vsnprintf(g->last_error, sizeof g->last_error, fmt, ap);
	g->status_gen++;
	pthread_mutex_unlock(&g->lock);
	va_end(ap);
}

/* A network error: 1 if Drive counts as unreachable now. */
static int net_down(struct gd_be *g, const char *why)
{
	int now_off = 0, was;
	pthread_mutex_lock(&g->lock);
	was = g->offline;
	if (!g->offline && ++g->net_fails >= NET_FAILS) {
		g->offline = 1;
		g->offline_since = time(NULL);
		g->status_gen++;
		now_off = 1;
	}
	int off = g->offline;
	pthread_mutex_unlock(&g->lock);
	if (now_off && !was && !g->opening) {
		scs_log(SCS_LOG_WARN, "gdrive: Drive is unreachable (%s); working offline: cached "
			"files stay usable and changes upload when it is back", why);
		set_error(g, "Drive unreachable: %s", why);
	}
	return off;
}

static void net_up(struct gd_be *g)
{
	if (!__atomic_load_n(&g->offline, __ATOMIC_RELAXED) &&
	    !__atomic_load_n(&g->net_fails, __ATOMIC_RELAXED))
		return;
	pthread_mutex_lock(&g->lock);
	int was = g->offline;
	g->offline = 0;
	g->net_fails = 0;
	if (was) {
		g->status_gen++;
		g->last_error[0] = '\0';
		pthread_cond_broadcast(&g->cond);   /* the queue can move again */
	}
	pthread_mutex_unlock(&g->lock);
	if (was)
		scs_log(SCS_LOG_INFO, "gdrive: Drive is reachable again");
}

/* ---- the requests on their way (scs_gdrive_dump) ---- */

static double since(const struct timespec *t0)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - t0->tv_sec) + (double)(now.tv_nsec - t0->tv_nsec) / 1e9;
}

/* q's method and path, without the scheme, host and query (ids only, no
 * token: the query of a listing may hold a name, encrypted). */
static void req_what(const struct gd_rq *q, char *out, size_t cap)
{
	const char *p = strstr(q->url, "://");
	p = p ? strchr(p + 3, '/') : NULL;
	if (!p)
		p = "/";
	size_t n = strcspn(p, "?");
	snprintf(out, cap, "%s %.*s", q->method, (int)n, p);
}

/* A request from its start to its end (its tries, the backoff between
 * them, the access token each needs): slot, or -1 if none is free. */
static int req_begin(struct gd_be *g, const struct gd_rq *q)
{
	pthread_mutex_lock(&g->rlock);
	int i = 0;
	while (i < REQ_SLOTS && g->reqs[i].used)
		i++;
	if (i < REQ_SLOTS) {
		struct gd_req_slot *s = &g->reqs[i];
		s->used = 1;
		s->tid = gettid();
		s->attempt = 0;
		s->phase = RQ_TOKEN;
		clock_gettime(CLOCK_MONOTONIC, &s->t0);
		s->tp = s->t0;
		req_what(q, s->what, sizeof s->what);
	}
	pthread_mutex_unlock(&g->rlock);
	return i < REQ_SLOTS ? i : -1;
}

static void req_phase(struct gd_be *g, int i, int phase, int attempt)
{
	if (i < 0)
		return;
	pthread_mutex_lock(&g->rlock);
	g->reqs[i].phase = phase;
	g->reqs[i].attempt = attempt;
	clock_gettime(CLOCK_MONOTONIC, &g->reqs[i].tp);
	pthread_mutex_unlock(&g->rlock);
}

static void req_end(struct gd_be *g, int i)
{
	if (i < 0)
		return;
	pthread_mutex_lock(&g->rlock);
	g->reqs[i].used = 0;
	pthread_mutex_unlock(&g->rlock);
}

/* Perform q, retrying transient failures.  On 0, rs holds a reply whose
 * status may still be an error the caller interprets (404, 409, 308...);
 * *final_errno gets its mapping (0 for 2xx/308). */
static int gd_call_(struct gd_be *g, const struct gd_rq *q, struct scs_http_resp *rs,
		    int *final_errno, int slot)
{
	time_t start = time(NULL);
	long stale = -1;
	int refreshed = 0;
	for (int attempt = 0;; attempt++) {
		char auth[4200];
		unsigned gen = 0;
		const char *hdrs[4];
		int nh = 0;
		scs_err err = { 0 };
		if (!q->no_auth) {
			req_phase(g, slot, RQ_TOKEN, attempt);
			int r = scs_oauth_header(g->oauth, auth, sizeof auth, &gen, stale, &err);
			stale = -1;
			if (r < 0) {
				scs_cleanse(auth, sizeof auth);
				if (r == -EIO && !q->once && !net_down(g, err.msg) && attempt < MAX_TRIES &&
				    time(NULL) - start < MAX_RETRY_S) {
					req_phase(g, slot, RQ_BACKOFF, attempt);
					backoff_sleep(attempt, -1);
					continue;
				}
				/* Once per mount: the opener reports its own failure. */
				if (!g->opening && !__atomic_exchange_n(&g->auth_logged, 1, __ATOMIC_RELAXED))
					scs_log(SCS_LOG_ERR, "gdrive: %s", err.msg);
				if (r != -EIO) {
					set_error(g, "%s", err.msg);
					__atomic_store_n(&g->auth_failed, 1, __ATOMIC_RELAXED);
				}
				return r;
			}
			hdrs[nh++] = auth;
		}
		char ct[160];
		if (q->ctype) {
			snprintf(ct, sizeof ct, "Content-Type: %s", q->ctype);
			hdrs[nh++] = ct;
		}
		if (q->extra)
			hdrs[nh++] = q->extra;
		hdrs[nh] = NULL;
		struct scs_http_req rq;
		scs_http_req_init(&rq, q->method, q->url);
		rq.headers = hdrs;
		rq.body = q->body;
		rq.body_len = q->body_len;
		rq.body_fd = q->body_fd;
		rq.body_off = q->body_off;
		rq.out_buf = q->out_buf;
		rq.out_max = q->out_max;
		rq.max_resp = q->max_resp;
		req_phase(g, slot, RQ_SENT, attempt);
		struct timespec t0;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		int r = scs_http_do(&rq, rs, &err);
		char what[sizeof g->reqs[0].what];
		req_what(q, what, sizeof what);
		scs_log(SCS_LOG_DEBUG, "gdrive: %s: %ld%s in %.3f s%s", what, r < 0 ? 0L : rs->status,
			r < 0 ? " (no reply)" : "", since(&t0), attempt ? " (a retry)" : "");
		scs_cleanse(auth, sizeof auth);
		char reason[64] = "", msg[200] = "";
		int transient;
		if (r == -EIO) {
			transient = 1;
			snprintf(reason, sizeof reason, "network error");
			if (net_down(g, err.msg)) {
				scs_log(SCS_LOG_DEBUG, "gdrive: %s: %s (offline)", q->method, err.msg);
				offline_refusal(g, q->method);
				return -EIO;
			}
		} else if (r < 0) {
			scs_log(SCS_LOG_ERR, "gdrive: %s %s: %s", q->method, "request", err.msg);
			return r;
		} else {
			net_up(g);
			if (!q->no_auth)
				__atomic_store_n(&g->auth_failed, 0, __ATOMIC_RELAXED);
			if (rs->status >= 200 && rs->status < 400) {
				*final_errno = 0;
				return 0;
			}
			scs_gdrive_error_reason(rs->body, rs->len, reason, sizeof reason, msg, sizeof msg);
			if (rs->status == 401 && !refreshed && !q->no_auth) {
				refreshed = 1;
				stale = gen;
				scs_http_resp_free(rs);
				attempt--;
				continue;
			}
			transient = retryable(rs->status, reason, msg);
		}
		if (q->once && (transient || r == -EIO)) {
			if (r == 0)
				scs_http_resp_free(rs);
			return -EIO;
		}
		if (q->once) {
			*final_errno = rs->status == 404 ? -ENOENT : rs->status == 400 ? -EINVAL : -EIO;
			return 0;
		}
		if (r == 0 && q->page_token && rs->status == 400) {
			/* Drive refused the page token (the caller lists again
			 * from the first page): not an error to log. */
			*final_errno = -ESTALE;
			return 0;
		}
		if (!transient || attempt + 1 >= MAX_TRIES || time(NULL) - start >= MAX_RETRY_S) {
			if (r == -EIO) {
				scs_log(SCS_LOG_ERR, "gdrive: %s", err.msg);
				return -EIO;
			}
			*final_errno = status_errno(q->method, rs->status, reason, msg);
			return 0;
		}
		int ra = r == 0 ? rs->retry_after : -1;
		scs_log(SCS_LOG_DEBUG, "gdrive: %s: %ld %s, retrying", q->method, r ? 0L : rs->status,
			reason);
		scs_http_resp_free(rs);
		req_phase(g, slot, RQ_BACKOFF, attempt);
		backoff_sleep(attempt, ra);
	}
}

static int gd_call(struct gd_be *g, const struct gd_rq *q, struct scs_http_resp *rs, int *final_errno)
{
	int slot = req_begin(g, q);
	int r = gd_call_(g, q, rs, final_errno, slot);
	req_end(g, slot);
	return r;
}

/* gd_call that turns any non-success into the errno (and frees rs). */
static int gd_do(struct gd_be *g, const struct gd_rq *q, struct scs_http_resp *rs)
{
	int fe = 0;
	int r = gd_call(g, q, rs, &fe);
	if (r < 0)
		return r;
	if (fe) {
		scs_http_resp_free(rs);
		return fe;
	}
	return 0;
}

/* GET url and parse the reply (NULL *out if it is not JSON). */
static int get_json(struct gd_be *g, const char *url, json_t **out)
{
	struct gd_rq q;
	struct scs_http_resp rs;
	gd_rq_init(&q, "GET", url);
	int r = gd_do(g, &q, &rs);
	if (r < 0)
		return r;
	*out = load_json(rs.body, rs.len);
	scs_http_resp_free(&rs);
	return 0;
}

/* ---- ids, paths, caches ---- */

/* q-string literal: '...' with \ and ' escaped. */
static char *q_quote(const char *s)
{
	size_t n = strlen(s);
	char *o = malloc(2 * n + 3), *p = o;
	if (!o)
		return NULL;
	*p++ = '\'';
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '\\' || s[i] == '\'')
			*p++ = '\\';
		*p++ = s[i];
	}
	*p++ = '\'';
	*p = '\0';
	return o;
}

/* Ids for new entries come from Drive (files.generateIds) ahead of need:
 * the pool is topped up while Drive answers, so that files can be made
 * while it does not (the write-back cache fills it at mount). */
#define IDS_MAX  500              /* (generateIds gives at most 1000 at once) */

static int ids_fetch(struct gd_be *g)
{
	pthread_mutex_lock(&g->lock);
	size_t want = IDS_MAX - g->nids;
	pthread_mutex_unlock(&g->lock);
	if (!want)
		return 0;
	char url[SCS_URL_MAX + 128];
	snprintf(url, sizeof url, "%s/files/generateIds?count=%zu&space=drive&fields=ids", g->ep.api,
		 want);
	json_t *j;
	int r = get_json(g, url, &j);
	if (r < 0)
		return r;
	json_t *arr = json_object_get(j, "ids");
	size_t n = json_is_array(arr) ? json_array_size(arr) : 0, got = 0;
	if (n > want)
		n = want;
	pthread_mutex_lock(&g->lock);
	for (size_t i = 0; i < n; i++) {
		const char *id = json_string_value(json_array_get(arr, i));
		if (id && id_ok(id)) {
			got++;        /* (a pool another thread filled meanwhile takes none) */
			if (g->nids < IDS_MAX)
				strcpy(g->ids[g->nids++], id);
		}
	}
	pthread_mutex_unlock(&g->lock);
	json_decref(j);
	if (!got) {
		scs_log(SCS_LOG_ERR, "gdrive: generateIds gave no usable id");
		return -EPROTO;
	}
	return 0;
}

/* The ids left at a clean unmount are kept in cache_dir/ids for the next
 * mount (one that starts while Drive is unreachable has no other way to
 * make new files).  That mount takes them and removes the file before it
 * uses any, so an id is never handed out twice: after a crash the ids in
 * use are simply lost. */
static void ids_save(struct gd_be *g)
{
	char path[SCS_PATH_MAX + 16];
	snprintf(path, sizeof path, "%s/ids", g->cache_dir);
	pthread_mutex_lock(&g->lock);
	size_t n = g->nids;
	char *buf = malloc(n * (SCS_GDRIVE_ID_MAX + 1) + 1), *p = buf;
	for (size_t i = 0; buf && i < n; i++)
		p += sprintf(p, "%s\n", g->ids[i]);
	pthread_mutex_unlock(&g->lock);
	if (buf && n)
		(void)scs_local_write_atomic(path, buf, (size_t)(p - buf), 0600);
	free(buf);
}

static void ids_take(struct gd_be *g)
{
	char path[SCS_PATH_MAX + 16];
	snprintf(path, sizeof path, "%s/ids", g->cache_dir);
	uint8_t *data = NULL;
	size_t len = 0;
	if (scs_local_read(path, IDS_MAX * (SCS_GDRIVE_ID_MAX + 1) + 1, &data, &len) < 0)
		return;
	/* gone for good before any is used */
	int dfd = open(g->cache_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int gone = unlink(path) == 0 && dfd >= 0 && fsync(dfd) == 0;
	if (dfd >= 0)
		close(dfd);
	for (size_t i = 0; gone && i < len && g->nids < IDS_MAX;) {
		const char *nl = memchr(data + i, '\n', len - i);
		size_t n = nl ? (size_t)((const uint8_t *)nl - (data + i)) : len - i;
		char id[SCS_GDRIVE_ID_MAX + 1];
		if (n >= 1 && n <= SCS_GDRIVE_ID_MAX) {
			memcpy(id, data + i, n);
			id[n] = '\0';
			if (id_ok(id))
				strcpy(g->ids[g->nids++], id);
		}
		i += n + 1;
	}
	free(data);
}

static int next_id(struct gd_be *g, char out[SCS_GDRIVE_ID_MAX + 1])
{
	pthread_mutex_lock(&g->lock);
	int low = g->nids <= IDS_MAX / 2 && !g->offline;
	pthread_mutex_unlock(&g->lock);
	int r = low ? ids_fetch(g) : 0;
	pthread_mutex_lock(&g->lock);
	if (g->nids) {
		strcpy(out, g->ids[--g->nids]);
		r = 0;
	} else if (!r) {
		r = -EIO;      /* offline, and none left */
	}
	pthread_mutex_unlock(&g->lock);
	if (r == -EIO && __atomic_load_n(&g->offline, __ATOMIC_RELAXED)) {
		static time_t last;
		time_t now = time(NULL);
		if (!queueable)
			offline_refusal(g, "POST");     /* ids are for creating */
		else if (__atomic_exchange_n(&last, now, __ATOMIC_RELAXED) + 60 <= now)
			scs_log(SCS_LOG_ERR, "gdrive: Drive is unreachable and the %d ids this mount "
				"kept for new files are used up; more new files can be made when "
				"it is back", IDS_MAX);
	}
	return r;
}

static int dir_cache_get(struct gd_be *g, const char *path, char id[SCS_GDRIVE_ID_MAX + 1])
{
	if (!*path) {
		strcpy(id, g->root_id);
		return 1;
	}
	int found = 0;
	pthread_mutex_lock(&g->lock);
	for (size_t i = 0; i < g->ndirs; i++)
		if (!strcmp(g->dirs[i].path, path)) {
			strcpy(id, g->dirs[i].id);
			found = 1;
			break;
		}
	pthread_mutex_unlock(&g->lock);
	return found;
}

static void dir_cache_put(struct gd_be *g, const char *path, const char *id)
{
	if (!*path)
		return;
	pthread_mutex_lock(&g->lock);
	for (size_t i = 0; i < g->ndirs; i++)
		if (!strcmp(g->dirs[i].path, path)) {
			strcpy(g->dirs[i].id, id);
			goto out;
		}
	if (g->ndirs == g->capdirs) {
		size_t nc = g->capdirs ? 2 * g->capdirs : 64;
		struct gd_dir *nd = realloc(g->dirs, nc * sizeof *nd);
		if (!nd)
			goto out;
		g->dirs = nd;
		g->capdirs = nc;
	}
	char *p = strdup(path);
	if (p) {
		g->dirs[g->ndirs].path = p;
		strcpy(g->dirs[g->ndirs].id, id);
		g->ndirs++;
	}
out:
	pthread_mutex_unlock(&g->lock);
}

static int under(const char *p, const char *prefix)
{
	size_t n = strlen(prefix);
	return !strncmp(p, prefix, n) && (p[n] == '\0' || p[n] == '/');
}

/* Drop path and everything below it; with to, move them there instead. */
static void dir_cache_move(struct gd_be *g, const char *from, const char *to)
{
	pthread_mutex_lock(&g->lock);
	for (size_t i = 0; i < g->ndirs;) {
		char *p = g->dirs[i].path;
		if (under(p, from) || (to && under(p, to))) {
			char *np = NULL;
			if (to && under(p, from) && asprintf(&np, "%s%s", to, p + strlen(from)) < 0)
				np = NULL;
			if (np) {
				free(p);
				g->dirs[i].path = np;
				i++;
				continue;
			}
			free(p);
			g->dirs[i] = g->dirs[--g->ndirs];
			continue;
		}
		i++;
	}
	pthread_mutex_unlock(&g->lock);
}

/* ---- what we know of entries (by id) ---- */

static size_t ent_slot(const char *id)
{
	uint64_t h = 14695981039346656037ULL;
	for (const char *p = id; *p; p++)
		h = (h ^ (uint8_t)*p) * 1099511628211ULL;
	return (size_t)(h % ENT_BUCKETS);
}

/* g->lock held. */
static struct gd_ent *ent_find(struct gd_be *g, const char *id)
{
	if (!g->ents)
		return NULL;
	for (struct gd_ent *e = g->ents[ent_slot(id)]; e; e = e->next)
		if (!strcmp(e->id, id))
			return e;
	return NULL;
}

/* Remember id as (pid, name) and version (ours, or news the feed brought;
 * 0 keeps the one known).  found: seen in a listing or lookup, whose
 * version only counts for an entry not known yet (the feed still has to
 * tell the core about a newer one).  g->lock held. */
static void ent_put_locked(struct gd_be *g, const char *id, const char *pid, const char *name,
			   int dup, uint64_t version, int found)
{
	if (!g->ents && !(g->ents = calloc(ENT_BUCKETS, sizeof *g->ents)))
		return;
	struct gd_ent *e = ent_find(g, id);
	if (!e) {
		if (g->nents >= ENT_MAX || !(e = calloc(1, sizeof *e)))
			return;
		strcpy(e->id, id);
		found = 0;
		size_t s = ent_slot(id);
		e->next = g->ents[s];
		g->ents[s] = e;
		g->nents++;
	}
	if (!e->name || strcmp(e->name, name)) {
		char *n = strdup(name);
		if (!n)
			return;
		free(e->name);
		e->name = n;
	}
	strcpy(e->pid, pid);
	e->dup = dup;
	if (!found && version > e->version)
		e->version = version;
}

static void ent_put(struct gd_be *g, const char *id, const char *pid, const char *name, int dup,
		    uint64_t version, int found)
{
	pthread_mutex_lock(&g->lock);
	ent_put_locked(g, id, pid, name, dup, version, found);
	pthread_mutex_unlock(&g->lock);
}

/* A version of id we made or saw ourselves (not news for the feed). */
static void ent_seen(struct gd_be *g, const char *id, uint64_t version)
{
	pthread_mutex_lock(&g->lock);
	struct gd_ent *e = ent_find(g, id);
	if (e && version > e->version)
		e->version = version;
	pthread_mutex_unlock(&g->lock);
}

/* g->lock held. */
static void ent_del_locked(struct gd_be *g, const char *id)
{
	if (g->ents) {
		for (struct gd_ent **pp = &g->ents[ent_slot(id)], *e; (e = *pp); pp = &e->next)
			if (!strcmp(e->id, id)) {
				*pp = e->next;
				free(e->name);
				free(e);
				g->nents--;
				break;
			}
	}
}

static void ent_del(struct gd_be *g, const char *id)
{
	pthread_mutex_lock(&g->lock);
	ent_del_locked(g, id);
	pthread_mutex_unlock(&g->lock);
}

static void ents_free(struct gd_be *g)
{
	if (!g->ents)
		return;
	for (size_t i = 0; i < ENT_BUCKETS; i++)
		while (g->ents[i]) {
			struct gd_ent *e = g->ents[i];
			g->ents[i] = e->next;
			free(e->name);
			free(e);
		}
	free(g->ents);
	g->ents = NULL;
	g->nents = 0;
}

/* ---- recent namespace changes known by id ----
 * Drive's listings and name queries can lag behind a change (by minutes),
 * while files.get by id and the changes feed's metadata do not.  What this
 * mount created, moved or deleted, and what the feed said another writer
 * did, is remembered for a while: a name made is found (checked by id)
 * although no listing has it yet, and an entry moved away or deleted is not
 * found at its old place while listings still show that older state.  A
 * listing that agrees (or shows a newer version) ends the record. */
#define OWN_BUCKETS 4096
#define OWN_MAX     16384
#define OWN_TTL     900               /* seconds */

struct gd_own {
	struct gd_own *by_id, *by_name, *newer, *older;
	char id[SCS_GDRIVE_ID_MAX + 1];
	char pid[SCS_GDRIVE_ID_MAX + 1];
	char *name;              /* its Drive name; NULL once deleted */
	uint64_t version;        /* the version our move made */
	int created;             /* made by us: never hidden, only found */
	time_t when;
};

struct gd_owns {
	struct gd_own *id[OWN_BUCKETS], *name[OWN_BUCKETS];
	struct gd_own *oldest, *newest;
	size_t n;
};

static size_t own_hash(const char *a, const char *b)
{
	uint32_t h = 2166136261u;
	for (const char *p = a; *p; p++)
		h = (h ^ (unsigned char)*p) * 16777619u;
	if (b) {
		h = (h ^ '/') * 16777619u;
		for (const char *p = b; *p; p++)
			h = (h ^ (unsigned char)*p) * 16777619u;
	}
	return h % OWN_BUCKETS;
}

static struct gd_own *own_by_id(struct gd_owns *t, const char *id)
{
	for (struct gd_own *o = t->id[own_hash(id, NULL)]; o; o = o->by_id)
		if (!strcmp(o->id, id))
			return o;
	return NULL;
}

/* g->lock held. */
static void own_unlink(struct gd_owns *t, struct gd_own *o)
{
	for (struct gd_own **pp = &t->id[own_hash(o->id, NULL)]; *pp; pp = &(*pp)->by_id)
		if (*pp == o) {
			*pp = o->by_id;
			break;
		}
	if (o->name)
		for (struct gd_own **pp = &t->name[own_hash(o->pid, o->name)]; *pp;
		     pp = &(*pp)->by_name)
			if (*pp == o) {
				*pp = o->by_name;
				break;
			}
	if (o->older)
		o->older->newer = o->newer;
	else
		t->oldest = o->newer;
	if (o->newer)
		o->newer->older = o->older;
	else
		t->newest = o->older;
	t->n--;
	free(o->name);
	free(o);
}

/* Remember a change of id: now (pid, name) with version, or deleted (name
 * NULL); created: made by us (no listing can show an older place). */
static void own_put(struct gd_be *g, const char *id, const char *pid, const char *name,
		    uint64_t version, int created)
{
	pthread_mutex_lock(&g->lock);
	struct gd_owns *t = g->own ? g->own : (g->own = calloc(1, sizeof *g->own));
	struct gd_own *o = t ? own_by_id(t, id) : NULL;
	/* An older report (the feed read before our own change) changes
	 * nothing; nor does "there" for what we deleted or was trashed since. */
	if (o && ((version && o->version > version) ||
		  (!o->name && name && (!o->version || o->version >= version)))) {
		pthread_mutex_unlock(&g->lock);
		return;
	}
	if (o)
		own_unlink(t, o);
	time_t now = time(NULL);
	while (t && t->oldest && (t->n >= OWN_MAX || now - t->oldest->when > OWN_TTL))
		own_unlink(t, t->oldest);
	if (t && (o = calloc(1, sizeof *o)) && (!name || (o->name = strdup(name)))) {
		strcpy(o->id, id);
		if (pid)
			strcpy(o->pid, pid);
		o->version = version;
		o->created = created;
		o->when = now;
		size_t h = own_hash(id, NULL);
		o->by_id = t->id[h];
		t->id[h] = o;
		if (o->name) {
			h = own_hash(o->pid, o->name);
			o->by_name = t->name[h];
			t->name[h] = o;
		}
		o->older = t->newest;
		if (t->newest)
			t->newest->newer = o;
		else
			t->oldest = o;
		t->newest = o;
		t->n++;
	} else {
		free(o);
	}
	pthread_mutex_unlock(&g->lock);
}

/* Forget what we did to id, if it still says id is in folder pid (pid
 * NULL: whatever it says) as name (NULL: any): a lookup or listing that
 * found the record stale must not drop the one a rename of ours put there
 * meanwhile. */
static void own_drop(struct gd_be *g, const char *id, const char *pid, const char *name)
{
	pthread_mutex_lock(&g->lock);
	struct gd_own *o = g->own ? own_by_id(g->own, id) : NULL;
	if (o && (!pid || (!strcmp(o->pid, pid) && (!name || (o->name && !strcmp(o->name, name))))))
		own_unlink(g->own, o);
	pthread_mutex_unlock(&g->lock);
}

/* A listing of folder pid shows m: 1 if that is an older state than the
 * change remembered (an entry moved away or deleted), to be left out.  A
 * listing that agrees with it, or shows a newer version, ends the record. */
static int own_hidden(struct gd_be *g, const char *pid, const struct scs_gdrive_meta *m)
{
	if (!__atomic_load_n(&g->own, __ATOMIC_RELAXED))
		return 0;
	int hide = 0;
	pthread_mutex_lock(&g->lock);
	struct gd_own *o = own_by_id(g->own, m->id);
	if (o) {
		if (!o->name)
			hide = 1;           /* deleted for good: can only be stale */
		else if (!strcmp(o->pid, pid) && !strcmp(o->name, m->name))
			own_unlink(g->own, o);   /* the listing caught up */
		else if (o->created || (o->version && m->version > o->version))
			own_unlink(g->own, o);   /* changed since, by another writer */
		else
			hide = 1;
	}
	pthread_mutex_unlock(&g->lock);
	return hide;
}

/* The id last known to be name in folder pid, if any: 1 and id. */
static int own_find(struct gd_be *g, const char *pid, const char *name,
		    char id[SCS_GDRIVE_ID_MAX + 1])
{
	if (!__atomic_load_n(&g->own, __ATOMIC_RELAXED))
		return 0;
	int found = 0;
	pthread_mutex_lock(&g->lock);
	for (struct gd_own *o = g->own->name[own_hash(pid, name)]; o; o = o->by_name)
		if (!strcmp(o->pid, pid) && !strcmp(o->name, name)) {
			strcpy(id, o->id);
			found = 1;
			break;
		}
	pthread_mutex_unlock(&g->lock);
	return found;
}

/* Up to max ids known to be in folder pid (still remembered, or made
 * here while Drive was unreachable and not on Drive yet): their count. */
static size_t own_in(struct gd_be *g, const char *pid, char (*ids)[SCS_GDRIVE_ID_MAX + 1],
		     size_t max)
{
	size_t n = 0;
	pthread_mutex_lock(&g->lock);
	/* the files made (or moved) here first: only this mount can show them */
	for (struct gd_file *f = g->nlocal || g->nwant ? g->files : NULL; f && n < max; f = f->next)
		if ((local_only(f) || moving(f)) && !strcmp(f->meta.parent, pid))
			strcpy(ids[n++], f->id);
	size_t nlocal = n;
	for (struct gd_own *o = g->own ? g->own->newest : NULL; o && n < max; o = o->older) {
		if (!o->name || strcmp(o->pid, pid))
			continue;
		size_t i = 0;
		while (i < nlocal && strcmp(ids[i], o->id))
			i++;
		if (i == nlocal)
			strcpy(ids[n++], o->id);
	}
	pthread_mutex_unlock(&g->lock);
	return n;
}

static void owns_free(struct gd_be *g)
{
	while (g->own && g->own->oldest)
		own_unlink(g->own, g->own->oldest);
	free(g->own);
	g->own = NULL;
}

/* ---- our own new files, not on Drive yet ----
 * A regular file's Drive entry is made when it is created, its content
 * comes with the first upload.  Until that lands the entry carries the
 * private property PEND_KEY, and everyone else leaves it out of listings,
 * lookups and the changes feed (they would find no bytes in it).  This
 * mount shows its own: the ids it created (after a restart: those with
 * pending journal records) are remembered here, and for OWN_TTL more once
 * their upload landed, while listings may still show the marked state. */
struct gd_mine {
	struct gd_mine *next;
	char id[SCS_GDRIVE_ID_MAX + 1];
	time_t landed;           /* its first upload is on Drive since; 0: not yet */
};

struct gd_mines {
	struct gd_mine *b[OWN_BUCKETS];
	size_t n, sweep_at;
};

/* g->lock held. */
static struct gd_mine **mine_slot(struct gd_be *g, const char *id)
{
	struct gd_mine **pp = &g->mine->b[own_hash(id, NULL)];
	while (*pp && strcmp((*pp)->id, id))
		pp = &(*pp)->next;
	return pp;
}

/* id is a new file of ours whose content is not on Drive yet. */
static void mine_add(struct gd_be *g, const char *id)
{
	pthread_mutex_lock(&g->lock);
	if (!g->mine && !(g->mine = calloc(1, sizeof *g->mine))) {
		pthread_mutex_unlock(&g->lock);
		return;
	}
	struct gd_mines *t = g->mine;
	time_t now = time(NULL);
	if (t->n >= t->sweep_at) {
		/* forget what landed long enough ago */
		for (size_t i = 0; i < OWN_BUCKETS; i++)
			for (struct gd_mine **pp = &t->b[i], *e; (e = *pp);) {
				if (e->landed && now - e->landed > OWN_TTL) {
					*pp = e->next;
					free(e);
					t->n--;
				} else {
					pp = &e->next;
				}
			}
		t->sweep_at = 2 * t->n + 256;
	}
	struct gd_mine **pp = mine_slot(g, id), *e = *pp;
	if (e) {
		e->landed = 0;
	} else if ((e = calloc(1, sizeof *e))) {
		strcpy(e->id, id);
		*pp = e;
		t->n++;
	}
	pthread_mutex_unlock(&g->lock);
}

/* The first upload of id landed (gone: id was deleted): its mark is off. */
static void mine_done(struct gd_be *g, const char *id, int gone)
{
	if (!__atomic_load_n(&g->mine, __ATOMIC_RELAXED))
		return;
	pthread_mutex_lock(&g->lock);
	struct gd_mine **pp = mine_slot(g, id), *e = *pp;
	if (e && gone) {
		*pp = e->next;
		free(e);
		g->mine->n--;
	} else if (e && !e->landed) {
		e->landed = time(NULL);
	}
	pthread_mutex_unlock(&g->lock);
}

/* m is another member's new file whose content is not on Drive yet: 1,
 * it is not to be shown (nor looked up, nor reported by the feed). */
static int not_yet(struct gd_be *g, const struct scs_gdrive_meta *m)
{
	if (!m->pending)
		return 0;
	if (!__atomic_load_n(&g->mine, __ATOMIC_RELAXED))
		return 1;
	pthread_mutex_lock(&g->lock);
	int ours = *mine_slot(g, m->id) != NULL;
	pthread_mutex_unlock(&g->lock);
	return !ours;
}

/* f is not seen by the others yet: made offline, or a new file of ours
 * whose first upload has not landed.  g->lock held. */
static int unseen_locked(struct gd_be *g, const struct gd_file *f)
{
	if (local_only(f))
		return 1;
	struct gd_mine *e = g->mine ? *mine_slot(g, f->id) : NULL;
	return e && !e->landed;
}

static void mines_free(struct gd_be *g)
{
	for (size_t i = 0; g->mine && i < OWN_BUCKETS; i++)
		while (g->mine->b[i]) {
			struct gd_mine *e = g->mine->b[i];
			g->mine->b[i] = e->next;
			free(e);
		}
	free(g->mine);
	g->mine = NULL;
}

/* ---- new files made while Drive was unreachable ----
 * Such a file has an id from the pool (next_id) and lives only in this
 * cache until its first upload creates it on Drive; renames, deletes and
 * mode changes meanwhile are made here (and journaled), and this mount
 * finds and lists it as if Drive had it. */

/* g->lock held. */
static struct gd_file *pend_locked(struct gd_be *g, const char *id)
{
	for (struct gd_file *f = g->files; f; f = f->next)
		if (local_only(f) && !strcmp(f->id, id))
			return f;
	return NULL;
}

/* Whether anything of this mount waits that listings must account for:
 * entries made, deleted, moved or changed here that Drive does not have. */
static int shadowing(struct gd_be *g)
{
	return __atomic_load_n(&g->nlocal, __ATOMIC_RELAXED) ||
	       __atomic_load_n(&g->nwant, __ATOMIC_RELAXED);
}

/* A listing of folder pid that shows m is older news than what this mount
 * did offline: m was deleted here, or moved elsewhere (or renamed), and
 * its delete or move waits for Drive (g->lock not held). */
static int elsewhere(struct gd_be *g, const char *pid, const struct scs_gdrive_meta *m)
{
	if (!shadowing(g))
		return 0;
	int d = 0;
	pthread_mutex_lock(&g->lock);
	for (struct gd_file *f = g->files; f; f = f->next)
		if (!strcmp(f->id, m->id)) {
			d = f->pend_delete || ((f->want & SCS_GDRIVE_WANT_MOVE) &&
					       (strcmp(f->meta.parent, pid) ||
						strcmp(f->meta.name, m->name)));
			break;
		}
	pthread_mutex_unlock(&g->lock);
	return d;
}

/* m as this mount shows it: what waits to be set on Drive of m->id (its
 * new place and name, mode, times) applied. */
static void overlay(struct gd_be *g, struct scs_gdrive_meta *m)
{
	if (!__atomic_load_n(&g->nwant, __ATOMIC_RELAXED))
		return;
	pthread_mutex_lock(&g->lock);
	for (struct gd_file *f = g->files; f; f = f->next) {
		if (strcmp(f->id, m->id))
			continue;
		meta_take(m, &f->meta, f->want);
		break;
	}
	pthread_mutex_unlock(&g->lock);
}

/* Something of id waits for Drive (metadata, or its removal): changes
 * made now go behind it, not straight to Drive. */
static int waiting(struct gd_be *g, const char *id)
{
	if (!shadowing(g))
		return 0;
	int w = 0;
	pthread_mutex_lock(&g->lock);
	for (struct gd_file *f = g->files; f && !w; f = f->next)
		w = !strcmp(f->id, id) &&
		    (f->pend_delete || (f->want & (SCS_GDRIVE_WANT_MOVE | SCS_GDRIVE_WANT_MODE)) ||
		     (f->want && !f->dirty && f->pseq <= f->dseq));   /* (else times that go
									   * with the content) */
	pthread_mutex_unlock(&g->lock);
	return w;
}

/* Its metadata if id is such a file: 0, else -ENOENT. */
static int pend_meta_get(struct gd_be *g, const char *id, struct scs_gdrive_meta *m)
{
	if (!__atomic_load_n(&g->nlocal, __ATOMIC_RELAXED))
		return -ENOENT;
	pthread_mutex_lock(&g->lock);
	struct gd_file *f = pend_locked(g, id);
	if (f)
		*m = f->meta;
	pthread_mutex_unlock(&g->lock);
	return f ? 0 : -ENOENT;
}

/* The one named name in folder pid, if any: 1 and id (made here, or
 * moved or renamed here, and Drive does not know yet). */
static int pend_find(struct gd_be *g, const char *pid, const char *name,
		     char id[SCS_GDRIVE_ID_MAX + 1])
{
	int found = 0;
	if (!shadowing(g))
		return 0;
	pthread_mutex_lock(&g->lock);
	for (struct gd_file *f = g->files; f && !found; f = f->next)
		if ((local_only(f) || moving(f)) && !strcmp(f->meta.parent, pid) &&
		    !strcmp(f->meta.name, name)) {
			strcpy(id, f->id);
			found = 1;
		}
	pthread_mutex_unlock(&g->lock);
	return found;
}

/* If id is such a file: wait for an upload creating it now, then give it
 * with g->lock held if it is still only here; else NULL (lock not held). */
static struct gd_file *pend_hold(struct gd_be *g, const char *id)
{
	if (!__atomic_load_n(&g->nlocal, __ATOMIC_RELAXED))
		return NULL;
	pthread_mutex_lock(&g->lock);
	struct gd_file *f;
	while ((f = pend_locked(g, id)) && f->creating)
		pthread_cond_wait(&g->cond, &g->lock);
	if (!f)
		pthread_mutex_unlock(&g->lock);
	return f;
}

static int pend_note(struct gd_be *g, struct gd_file *f);
static void memo_put(struct gd_be *g, const char *path, const struct scs_gdrive_meta *m,
		     const char *pid);
static void memo_drop(struct gd_be *g, const char *path);

/* f (from pend_hold, g->lock held and let go here) got new metadata, and
 * now is at path (moved from from, if not NULL): journaled, remembered. */
static int pend_changed(struct gd_be *g, struct gd_file *f, const char *from, const char *path)
{
	struct scs_gdrive_meta *m = malloc(sizeof *m);
	if (m)
		*m = f->meta;
	pthread_mutex_unlock(&g->lock);
	if (!m)
		return -ENOMEM;
	pthread_mutex_lock(&f->lock);
	int r = pend_note(g, f);
	pthread_mutex_unlock(&f->lock);
	if (from) {
		memo_drop(g, from);
		memo_drop(g, path);
	}
	memo_put(g, path, m, m->parent);
	free(m);
	return r;
}

/* The duplicate suffix of id: SCS_DUP_OPEN + 8 hex digits of SHA-256(id) + ")". */
static void dup_suffix(const char *id, char out[SCS_DUP_LEN + 1])
{
	uint8_t h[SCS_SHA256_LEN];
	scs_sha256(id, strlen(id), h);
	memcpy(out, SCS_DUP_OPEN, sizeof SCS_DUP_OPEN - 1);
	scs_hex_encode(h, SCS_DUP_TAG_LEN / 2, out + sizeof SCS_DUP_OPEN - 1);
	strcpy(out + SCS_DUP_LEN - 1, ")");
}

/* The path of folder id, if we know it ("" for the root).  g->lock held. */
static int dir_path_locked(struct gd_be *g, const char *id, char *out, size_t cap)
{
	if (!strcmp(id, g->root_id)) {
		out[0] = '\0';
		return 1;
	}
	for (size_t i = 0; i < g->ndirs; i++)
		if (!strcmp(g->dirs[i].id, id))
			return snprintf(out, cap, "%s", g->dirs[i].path) < (int)cap;
	return 0;
}

/* Path of the entry name (dup: with the suffix of id) in folder pid, if we
 * know the folder.  g->lock held. */
static int ent_path_locked(struct gd_be *g, const char *pid, const char *name, int dup,
			   const char *id, char *out, size_t cap)
{
	if (!dir_path_locked(g, pid, out, cap))
		return 0;
	char suf[SCS_DUP_LEN + 1] = "";
	if (dup)
		dup_suffix(id, suf);
	size_t l = strlen(out);
	return snprintf(out + l, cap - l, "%s%s%s", l ? "/" : "", name, suf) < (int)(cap - l);
}

/* The size of object m as this mount knows it: the cache's while it is
 * open or has local writes not uploaded yet, or holds a version newer than
 * m (a listing made before our upload landed). */
static void apply_open_size(struct gd_be *g, const struct scs_gdrive_meta *m, uint64_t *size)
{
	pthread_mutex_lock(&g->lock);
	for (struct gd_file *f = g->files; f; f = f->next)
		if (!strcmp(f->id, m->id) && !f->nocontent &&
		    (f->refs > 0 || f->dirty || f->version > m->version)) {
			*size = __atomic_load_n(&f->size, __ATOMIC_RELAXED);
			break;
		}
	pthread_mutex_unlock(&g->lock);
}

static void to_attr(struct gd_be *g, const struct scs_gdrive_meta *m, struct scs_attr *a)
{
	uint8_t h[SCS_SHA256_LEN];
	memset(a, 0, sizeof *a);
	scs_sha256(m->id, strlen(m->id), h);
	memcpy(&a->ino, h, sizeof a->ino);
	if (a->ino < 2)
		a->ino += 2;
	a->size = m->size;
	if (m->is_dir) {
		a->mode = S_IFDIR | (m->has_perm ? m->perm : 0755);
		a->nlink = 2;
		a->size = 4096;
	} else {
		if (!m->is_link)
			apply_open_size(g, m, &a->size);
		a->mode = m->is_link ? (S_IFLNK | 0777) : (S_IFREG | (m->has_perm ? m->perm : 0644));
		a->nlink = 1;
	}
	a->blocks = (a->size + 511) / 512;
	a->uid = getuid();
	a->gid = getgid();
	a->mtime = a->ctime = m->mtime;
	a->atime = m->atime;
}

struct find_ctx {
	struct gd_be *g;
	const char *pid;
	const char *name;
	struct scs_gdrive_meta *out;
	int found;
	/* a duplicate (tag != NULL): the entry of that tag that is not the
	 * smallest id (first, second: the two smallest ids with the tag) */
	const char *tag;
	char min_id[SCS_GDRIVE_ID_MAX + 1];
	struct scs_gdrive_meta *second;
	int nmatch;
};

static int find_cb(void *arg, const struct scs_gdrive_meta *m)
{
	struct find_ctx *c = arg;
	/* Drive compares names case-insensitively: check exactly; among
	 * duplicates the smallest id wins, on every machine alike. */
	if (strcmp(m->name, c->name) || not_yet(c->g, m) || own_hidden(c->g, c->pid, m) ||
	    elsewhere(c->g, c->pid, m))
		return 0;
	if (c->tag) {
		if (!c->min_id[0] || strcmp(m->id, c->min_id) < 0)
			strcpy(c->min_id, m->id);
		char suf[SCS_DUP_LEN + 1];
		dup_suffix(m->id, suf);
		if (memcmp(suf + sizeof SCS_DUP_OPEN - 1, c->tag, SCS_DUP_TAG_LEN))
			return 0;
		if (!c->nmatch || strcmp(m->id, c->out->id) < 0) {
			if (c->nmatch)
				*c->second = *c->out;
			*c->out = *m;
		} else if (c->nmatch == 1 || strcmp(m->id, c->second->id) < 0) {
			*c->second = *m;
		}
		c->nmatch++;
		return 0;
	}
	if (!c->found || strcmp(m->id, c->out->id) < 0) {
		*c->out = *m;
		c->found = 1;
	}
	return 0;
}

/* A listing starts again: forget what find_cb saw. */
static void find_reset(void *arg)
{
	struct find_ctx *c = arg;
	c->found = 0;
	c->min_id[0] = '\0';
	c->nmatch = 0;
}

/* A listing whose page token Drive rejected is started again from the
 * first page (Drive: "a rejected token means restart from page one"), at
 * most this many times per listing. */
#define LIST_RESTARTS  3

/* All pages of a files.list query; cb per file.  If Drive rejects a page
 * token (400 on a follow-up page), reset(arg) forgets what cb was given and
 * the listing starts again from the first page. */
static int list_query(struct gd_be *g, const char *q, int page_size,
		      int (*cb)(void *, const struct scs_gdrive_meta *),
		      void (*reset)(void *), void *arg)
{
	char *eq = scs_http_escape(q);
	if (!eq)
		return -ENOMEM;
	char token[1024] = "";
	size_t ucap = strlen(eq) + SCS_URL_MAX + 1400;
	char *url = malloc(ucap);
	if (!url) {
		free(eq);
		return -ENOMEM;
	}
	int r, restarts = 0;
	for (;;) {
		char *et = scs_http_escape(token);
		if (!et) {
			r = -ENOMEM;
			break;
		}
		snprintf(url, ucap, "%s/files?q=%s&pageSize=%d&spaces=drive&supportsAllDrives=true"
			 "&includeItemsFromAllDrives=true&fields=nextPageToken,files(" FIELDS ")%s%s",
			 g->ep.api, eq, page_size, token[0] ? "&pageToken=" : "", et);
		free(et);
		struct gd_rq rq;
		struct scs_http_resp rs;
		gd_rq_init(&rq, "GET", url);
		rq.page_token = token[0] != '\0';
		r = gd_do(g, &rq, &rs);
		if (r == -ESTALE) {
			/* The first page with this query was accepted: the token
			 * is what Drive refused. */
			if (++restarts > LIST_RESTARTS) {
				scs_log(SCS_LOG_ERR, "gdrive: Drive rejected the page tokens of a "
					"listing %d times; giving up", restarts);
				r = -EIO;
				break;
			}
			scs_log(SCS_LOG_INFO, "gdrive: Drive rejected a listing's page token; "
				"listing again from the first page");
			if (reset)
				reset(arg);
			token[0] = '\0';
			r = 0;
			continue;
		}
		if (r < 0)
			break;
		r = scs_gdrive_parse_list(rs.body, rs.len, cb, arg, token, sizeof token);
		scs_http_resp_free(&rs);
		if (r == -EBADMSG)
			scs_log(SCS_LOG_ERR, "gdrive: unreadable listing from Drive");
		if (r || !token[0])
			break;
	}
	free(url);
	free(eq);
	return r;
}

/* files.get of id (FIELDS and extra, e.g. ",parents"). */
static int get_meta_fields(struct gd_be *g, const char *id, const char *extra,
			   struct scs_gdrive_meta *m)
{
	char url[SCS_URL_MAX + 256];
	snprintf(url, sizeof url, "%s/files/%s?supportsAllDrives=true&fields=" FIELDS "%s",
		 g->ep.api, id, extra);
	json_t *j = NULL;
	int r = get_json(g, url, &j);
	if (r < 0)
		return r;
	r = j ? meta_from_json(j, m) : -EBADMSG;
	json_decref(j);
	return r;
}

/* Drive's metadata of id (by id: never behind), if it is in folder pid
 * and not trashed; else -ENOENT. */
static int own_check(struct gd_be *g, const char *id, const char *pid, struct scs_gdrive_meta *m)
{
	if (pend_meta_get(g, id, m) == 0)
		return strcmp(m->parent, pid) ? -ENOENT : 0;
	int r = get_meta_fields(g, id, ",parents,trashed", m);
	if (r < 0)
		return r;
	overlay(g, m);       /* (moved here by this mount, Drive does not know yet) */
	return (m->trashed || m->foreign || !m->name[0] || strcmp(m->parent, pid)) ? -ENOENT : 0;
}

/* The entry name in folder pid; a name with a duplicate suffix (names.h)
 * is that duplicate of the name before the suffix. */
static int lookup(struct gd_be *g, const char *pid, const char *name, struct scs_gdrive_meta *m)
{
	char tag[SCS_DUP_TAG_LEN + 1], real[SCS_GDRIVE_NAME_MAX + 1];
	size_t bl;
	int dup = scs_name_dup_split(name, &bl, tag) && bl <= SCS_GDRIVE_NAME_MAX;
	if (dup) {
		memcpy(real, name, bl);
		real[bl] = '\0';
		name = real;
	}
	char oid[SCS_GDRIVE_ID_MAX + 1];
	if (pend_meta_get(g, pid, m) == 0) {
		/* a folder made offline: Drive has nothing in it yet */
		int r = pend_find(g, pid, name, oid) ? pend_meta_get(g, oid, m) : -ENOENT;
		if (!r)
			ent_put(g, m->id, pid, m->name, 0, 0, 1);
		return r;
	}
	char *qn = q_quote(name);
	if (!qn)
		return -ENOMEM;
	char *q;
	if (asprintf(&q, "'%s' in parents and name = %s and trashed = false", pid, qn) < 0) {
		free(qn);
		return -ENOMEM;
	}
	free(qn);
	struct find_ctx c = { .g = g, .pid = pid, .name = name, .out = m, .tag = dup ? tag : NULL };
	if (dup && !(c.second = malloc(sizeof *c.second))) {
		free(q);
		return -ENOMEM;
	}
	int r = list_query(g, q, 100, find_cb, find_reset, &c);
	free(q);
	if (!r && dup) {
		/* The smallest id is listed under the name itself, not as a duplicate. */
		if (c.nmatch && !strcmp(m->id, c.min_id)) {
			if (c.nmatch > 1)
				*m = *c.second;
			else
				c.nmatch = 0;
		}
		c.found = c.nmatch > 0;
	}
	free(c.second);
	if (r < 0)
		return r;
	if (!c.found && !dup && (own_find(g, pid, name, oid) || pend_find(g, pid, name, oid))) {
		/* not listed (yet?): what was made there, if it is still there */
		r = own_check(g, oid, pid, m);
		if (r < 0 && r != -ENOENT)
			return r;
		c.found = r == 0 && !strcmp(m->name, name) && !not_yet(g, m);
		if (!c.found)
			own_drop(g, oid, pid, name);
	}
	if (c.found)
		ent_put(g, m->id, pid, m->name, dup, m->version, 1);
	return c.found ? 0 : -ENOENT;
}

static int get_meta(struct gd_be *g, const char *id, struct scs_gdrive_meta *m)
{
	return get_meta_fields(g, id, "", m);
}

/* Split path into parent dir and base name (pointing into path). */
static void split(const char *path, char *parent, size_t cap, const char **base)
{
	const char *s = strrchr(path, '/');
	size_t n = s ? (size_t)(s - path) : 0;
	if (n >= cap)
		n = cap - 1;
	memcpy(parent, path, n);
	parent[n] = '\0';
	*base = s ? s + 1 : path;
}

/* ---- what was last seen, for offline use ----
 * Every path resolved or listed, and the content of small objects read,
 * are remembered; while Drive is unreachable (g->offline) lookups,
 * listings and small reads are answered from here. */

#define MEMO_BUCKETS 4096
#define MEMO_DATA_MAX (64u << 10)

struct memo_ent {
	struct memo_ent *next;
	char *path;
	struct scs_gdrive_meta m;
	char pid[SCS_GDRIVE_ID_MAX + 1];
	int listed;                   /* a directory whose full listing was seen */
	uint8_t *data;                /* content of a small object, at m.version */
	size_t len;
	uint64_t data_version;
	int has_data;
};

struct gd_memo {
	pthread_mutex_t lock;
	struct memo_ent *b[MEMO_BUCKETS];
	unsigned gen;                 /* changes so far (a snapshot is due when it moved) */
};

static unsigned memo_hash(const char *p)
{
	uint32_t h = 2166136261u;
	for (; *p; p++)
		h = (h ^ (uint8_t)*p) * 16777619u;
	return h % MEMO_BUCKETS;
}

static struct memo_ent *memo_find(struct gd_memo *mm, const char *path)
{
	for (struct memo_ent *e = mm->b[memo_hash(path)]; e; e = e->next)
		if (!strcmp(e->path, path))
			return e;
	return NULL;
}

static struct memo_ent *memo_slot(struct gd_memo *mm, const char *path)
{
	struct memo_ent *e = memo_find(mm, path);
	if (e)
		return e;
	e = calloc(1, sizeof *e);
	if (!e || !(e->path = strdup(path))) {
		free(e);
		return NULL;
	}
	unsigned h = memo_hash(path);
	e->next = mm->b[h];
	mm->b[h] = e;
	return e;
}

static void memo_put(struct gd_be *g, const char *path, const struct scs_gdrive_meta *m,
		     const char *pid)
{
	struct gd_memo *mm = g->memo;
	if (!mm)
		return;
	pthread_mutex_lock(&mm->lock);
	struct memo_ent *e = memo_slot(mm, path);
	if (e) {
		if (strcmp(e->m.id, m->id)) {
			e->listed = 0;
			e->has_data = 0;
		}
		e->m = *m;
		if (pid)
			snprintf(e->pid, sizeof e->pid, "%s", pid);
		mm->gen++;
	}
	pthread_mutex_unlock(&mm->lock);
}

static int memo_get(struct gd_be *g, const char *path, struct scs_gdrive_meta *m, char *pid)
{
	struct gd_memo *mm = g->memo;
	if (!mm)
		return -EIO;
	pthread_mutex_lock(&mm->lock);
	struct memo_ent *e = memo_find(mm, path);
	int r = -EIO;
	if (e) {
		*m = e->m;
		if (pid)
			strcpy(pid, e->pid);
		r = 0;
	} else if (*path) {
		/* not there, and its directory was listed in full: it does not exist */
		char parent[SCS_PATH_MAX];
		const char *base;
		split(path, parent, sizeof parent, &base);
		struct memo_ent *d = memo_find(mm, parent);
		if (d && d->listed) {
			if (pid)
				strcpy(pid, d->m.id);
			r = -ENOENT;
		}
	}
	pthread_mutex_unlock(&mm->lock);
	return r;
}

/* Forget path and everything under it. */
static void memo_drop(struct gd_be *g, const char *path)
{
	struct gd_memo *mm = g->memo;
	if (!mm)
		return;
	pthread_mutex_lock(&mm->lock);
	for (unsigned h = 0; h < MEMO_BUCKETS; h++)
		for (struct memo_ent **pp = &mm->b[h], *e; (e = *pp);) {
			if (!*path || under(e->path, path)) {
				*pp = e->next;
				free(e->path);
				free(e->data);
				free(e);
				mm->gen++;
				continue;
			}
			pp = &e->next;
		}
	pthread_mutex_unlock(&mm->lock);
}

/* A rename made while Drive is unreachable (or queued behind one): what
 * was seen at from and below it is now at to (what was at to goes), and
 * the entry itself is m, in folder pid. */
static void memo_move(struct gd_be *g, const char *from, const char *to,
		      const struct scs_gdrive_meta *m, const char *pid)
{
	struct gd_memo *mm = g->memo;
	if (!mm)
		return;
	memo_drop(g, to);
	size_t fl = strlen(from);
	struct memo_ent *moved = NULL;
	pthread_mutex_lock(&mm->lock);
	for (unsigned h = 0; h < MEMO_BUCKETS; h++)
		for (struct memo_ent **pp = &mm->b[h], *e; (e = *pp);) {
			char *np;
			if (under(e->path, from) &&
			    asprintf(&np, "%s%s", to, e->path + fl) >= 0) {
				*pp = e->next;
				free(e->path);
				e->path = np;
				e->next = moved;
				moved = e;
				continue;
			}
			pp = &e->next;
		}
	while (moved) {
		struct memo_ent *e = moved;
		moved = e->next;
		unsigned h = memo_hash(e->path);
		e->next = mm->b[h];
		mm->b[h] = e;
		mm->gen++;
	}
	pthread_mutex_unlock(&mm->lock);
	memo_put(g, to, m, pid);
}

static void memo_listed(struct gd_be *g, const char *dir)
{
	struct gd_memo *mm = g->memo;
	if (!mm)
		return;
	pthread_mutex_lock(&mm->lock);
	struct memo_ent *e = memo_find(mm, dir);
	if (e && !e->listed) {
		e->listed = 1;
		mm->gen++;
	}
	pthread_mutex_unlock(&mm->lock);
}

static void memo_put_data(struct gd_be *g, const char *path, const struct scs_gdrive_meta *m,
			  const uint8_t *data, size_t len)
{
	struct gd_memo *mm = g->memo;
	if (!mm || len > MEMO_DATA_MAX)
		return;
	uint8_t *copy = malloc(len ? len : 1);
	if (!copy)
		return;
	memcpy(copy, data, len);
	pthread_mutex_lock(&mm->lock);
	struct memo_ent *e = memo_slot(mm, path);
	if (e) {
		e->m = *m;
		free(e->data);
		e->data = copy;
		e->len = len;
		e->data_version = m->version;
		e->has_data = 1;
		copy = NULL;
		mm->gen++;
	}
	pthread_mutex_unlock(&mm->lock);
	free(copy);
}

static int memo_get_data(struct gd_be *g, const char *path, size_t max, uint8_t **data,
			 size_t *len)
{
	struct gd_memo *mm = g->memo;
	if (!mm)
		return -EIO;
	int r = -EIO;
	pthread_mutex_lock(&mm->lock);
	struct memo_ent *e = memo_find(mm, path);
	if (e && e->has_data) {
		if (e->len > max) {
			r = -EFBIG;
		} else if ((*data = malloc(e->len ? e->len : 1))) {
			memcpy(*data, e->data, e->len);
			*len = e->len;
			r = 0;
		} else {
			r = -ENOMEM;
		}
	}
	pthread_mutex_unlock(&mm->lock);
	return r;
}

/* Offline listing of dir from what was seen (only if seen in full). */
static int memo_list(struct gd_be *g, const char *dir,
		     int (*cb)(void *, const struct scs_gdrive_meta *), void *arg)
{
	struct gd_memo *mm = g->memo;
	if (!mm)
		return -EIO;
	pthread_mutex_lock(&mm->lock);
	struct memo_ent *d = memo_find(mm, dir);
	if (!d || !d->listed) {
		pthread_mutex_unlock(&mm->lock);
		return -EIO;
	}
	/* collect first: the callback may come back into the memo */
	size_t n = 0, cap = 0;
	struct scs_gdrive_meta *ms = NULL;
	size_t dl = strlen(dir);
	int r = 0;
	for (unsigned h = 0; h < MEMO_BUCKETS && !r; h++)
		for (struct memo_ent *e = mm->b[h]; e; e = e->next) {
			const char *p = e->path;
			if (!*p || (dl && (strncmp(p, dir, dl) || p[dl] != '/')))
				continue;
			const char *rest = dl ? p + dl + 1 : p;
			if (strchr(rest, '/'))
				continue;
			if (n == cap) {
				cap = cap ? 2 * cap : 64;
				struct scs_gdrive_meta *nm = realloc(ms, cap * sizeof *nm);
				if (!nm) {
					r = -ENOMEM;
					break;
				}
				ms = nm;
			}
			ms[n++] = e->m;
		}
	pthread_mutex_unlock(&mm->lock);
	for (size_t i = 0; i < n && !r; i++)
		r = cb(arg, &ms[i]);
	free(ms);
	return r;
}

/* ---- the snapshot of the memo, for a mount while Drive is unreachable ----
 * Written (cache_dir/snapshot, atomically) at unmount and, when the memo
 * changed, every SNAP_EVERY seconds; read by a mount that cannot reach
 * Drive.  The feed's token is read before the memo: what the memo holds is
 * at least as new as the token says (changes read again are harmless). */
#define SNAP_EVERY 300

static int memo_save(struct gd_be *g)
{
	struct gd_memo *mm = g->memo;
	if (!mm || !g->root_id[0] || !strcmp(g->root_id, "root"))
		return 0;
	char token[sizeof g->token], path[SCS_PATH_MAX + 16];
	pthread_mutex_lock(&g->lock);
	strcpy(token, g->token);
	pthread_mutex_unlock(&g->lock);
	struct scs_gdrive_snap sn;
	struct scs_gdrive_snap_ent *x = malloc(sizeof *x);
	int r = x ? scs_gdrive_snap_begin(&sn, g->root_id, strlen(token) <= SCS_GDRIVE_TOKEN_MAX ?
					  token : "") : -ENOMEM;
	pthread_mutex_lock(&mm->lock);
	unsigned gen = mm->gen;
	for (unsigned h = 0; h < MEMO_BUCKETS && !r; h++)
		for (struct memo_ent *e = mm->b[h]; e && !r; e = e->next) {
			if (strlen(e->path) >= sizeof x->path || !e->m.id[0])
				continue;
			memset(x, 0, sizeof *x);
			strcpy(x->path, e->path);
			strcpy(x->pid, e->pid);
			x->m = e->m;
			x->flags = (e->m.is_dir ? SCS_GDRIVE_SNAP_DIR : 0) |
				   (e->m.is_link ? SCS_GDRIVE_SNAP_LINK : 0) |
				   (e->listed ? SCS_GDRIVE_SNAP_LISTED : 0) |
				   (e->m.has_perm ? SCS_GDRIVE_SNAP_PERM : 0);
			if (e->has_data && e->data_version == e->m.version &&
			    e->len <= SCS_GDRIVE_SNAP_DATA_MAX) {
				x->flags |= SCS_GDRIVE_SNAP_DATA;
				x->data = e->data;
				x->len = e->len;
			}
			r = scs_gdrive_snap_add(&sn, x);
			if (r == -EINVAL)
				r = 0;       /* (nothing a snapshot can hold: left out) */
		}
	pthread_mutex_unlock(&mm->lock);
	free(x);
	if (!r)
		r = scs_gdrive_snap_end(&sn);
	snprintf(path, sizeof path, "%s/snapshot", g->cache_dir);
	if (!r)
		r = scs_local_write_atomic(path, sn.buf, sn.len, 0600);
	free(sn.buf);
	if (!r)
		g->snap_gen = gen;
	else
		scs_log(SCS_LOG_WARN, "gdrive: cannot save what this mount knows of the folder in "
			"%s (%s): it cannot be mounted while Drive is unreachable", path, strerror(-r));
	return r;
}

static void dir_cache_put(struct gd_be *g, const char *path, const char *id);

static int snap_load_cb(void *arg, const struct scs_gdrive_snap_ent *x)
{
	struct gd_be *g = arg;
	struct gd_memo *mm = g->memo;
	pthread_mutex_lock(&mm->lock);
	struct memo_ent *e = memo_slot(mm, x->path);
	uint8_t *copy = (x->flags & SCS_GDRIVE_SNAP_DATA) ? malloc(x->len ? x->len : 1) : NULL;
	if (e) {
		e->m = x->m;
		strcpy(e->pid, x->pid);
		e->listed = (x->flags & SCS_GDRIVE_SNAP_LISTED) != 0;
		if (copy) {
			memcpy(copy, x->data, x->len);
			free(e->data);
			e->data = copy;
			e->len = x->len;
			e->data_version = x->m.version;
			e->has_data = 1;
			copy = NULL;
		}
	}
	pthread_mutex_unlock(&mm->lock);
	free(copy);
	if (!e)
		return -ENOMEM;
	if (x->m.is_dir)
		dir_cache_put(g, x->path, x->m.id);
	if (x->pid[0] && x->m.name[0])
		ent_put(g, x->m.id, x->pid, x->m.name, 0, x->m.version, 1);
	return 0;
}

/* The path the memo has id at, if any (out[SCS_PATH_MAX]): 1. */
static int memo_path_of(struct gd_be *g, const char *id, char *out)
{
	struct gd_memo *mm = g->memo;
	int found = 0;
	pthread_mutex_lock(&mm->lock);
	for (unsigned h = 0; h < MEMO_BUCKETS && !found; h++)
		for (struct memo_ent *e = mm->b[h]; e && !found; e = e->next)
			if (!strcmp(e->m.id, id) && strlen(e->path) < SCS_PATH_MAX) {
				strcpy(out, e->path);
				found = 1;
			}
	pthread_mutex_unlock(&mm->lock);
	return found;
}

/* After a snapshot is taken back: what the journal says this mount did
 * since (made, moved, removed) goes into the memo, which may be older. */
static void memo_reconcile(struct gd_be *g)
{
	char *old = malloc(SCS_PATH_MAX);
	struct scs_gdrive_meta *m = malloc(sizeof *m);
	for (struct gd_file *f = g->files; f && old && m; f = f->next) {
		if (!f->path)
			continue;
		*m = f->meta;
		strcpy(m->id, f->id);
		int here = memo_path_of(g, f->id, old);
		if (f->pend_delete) {
			if (here)
				memo_drop(g, old);
		} else if (local_only(f)) {
			memo_put(g, f->path, m, m->parent);
			if (m->is_dir)
				memo_listed(g, f->path);
		} else if (moving(f) && here && strcmp(old, f->path)) {
			overlay(g, m);
			memo_move(g, old, f->path, m, m->parent);
		}
	}
	free(old);
	free(m);
}

/* Drive cannot be reached to open the folder: take what this machine saw
 * last (the snapshot), if it has one.  0 (g->root_id set) or -errno. */
static int memo_load(struct gd_be *g, time_t *when)
{
	char path[SCS_PATH_MAX + 16];
	snprintf(path, sizeof path, "%s/snapshot", g->cache_dir);
	uint8_t *data = NULL;
	size_t len = 0;
	struct stat st;
	int r = g->memo ? scs_local_read(path, SCS_GDRIVE_SNAP_MAX + 65536, &data, &len) : -ENOENT;
	char root[SCS_GDRIVE_ID_MAX + 1], token[SCS_GDRIVE_TOKEN_MAX + 1];
	if (!r)
		r = scs_gdrive_snap_parse(data, len, root, token, snap_load_cb, g);
	free(data);
	if (r == -EBADMSG)
		scs_log(SCS_LOG_ERR, "gdrive: %s is damaged; it is not used", path);
	if (r < 0) {
		memo_drop(g, "");
		return r;
	}
	strcpy(g->root_id, root);
	if (sizeof g->token > strlen(token))
		strcpy(g->token, token);
	*when = stat(path, &st) == 0 ? st.st_mtime : 0;
	g->snap_gen = g->memo->gen;
	return 0;
}

/* r means Drive cannot be used now (unreachable, or the sign-in is gone):
 * answer from what was seen. */
static int offline_now(struct gd_be *g, int r)
{
	return (r == -EIO && __atomic_load_n(&g->offline, __ATOMIC_RELAXED)) ||
	       (r == -EACCES && __atomic_load_n(&g->auth_failed, __ATOMIC_RELAXED));
}

/* The folder id of dir ("" = root). */
static int resolve_dir(struct gd_be *g, const char *dir, char id[SCS_GDRIVE_ID_MAX + 1])
{
	if (dir_cache_get(g, dir, id))
		return 0;
	char parent[SCS_PATH_MAX];
	const char *base;
	split(dir, parent, sizeof parent, &base);
	char pid[SCS_GDRIVE_ID_MAX + 1];
	int r = resolve_dir(g, parent, pid);
	if (r < 0)
		return r;
	struct scs_gdrive_meta *m = malloc(sizeof *m);
	if (!m)
		return -ENOMEM;
	r = lookup(g, pid, base, m);
	if (!r)
		memo_put(g, dir, m, pid);
	else if (offline_now(g, r))
		r = memo_get(g, dir, m, NULL);
	if (!r && !m->is_dir)
		r = -ENOTDIR;
	if (!r) {
		strcpy(id, m->id);
		dir_cache_put(g, dir, m->id);
	}
	free(m);
	return r;
}

/* Metadata of path; pid (may be NULL) gets its parent's id. */
static int resolve(struct gd_be *g, const char *path, struct scs_gdrive_meta *m, char *pid)
{
	char parent[SCS_PATH_MAX], pbuf[SCS_GDRIVE_ID_MAX + 1];
	const char *base;
	if (!*path) {
		int r = get_meta(g, g->root_id, m);
		if (!r)
			memo_put(g, "", m, NULL);
		else if (offline_now(g, r))
			r = memo_get(g, "", m, NULL);
		if (!r && !m->is_dir)
			r = -ENOTDIR;
		return r;
	}
	split(path, parent, sizeof parent, &base);
	if (!pid)
		pid = pbuf;
	int r = resolve_dir(g, parent, pid);
	if (r < 0)
		return r;
	r = lookup(g, pid, base, m);
	if (!r)
		memo_put(g, path, m, pid);
	else if (offline_now(g, r))
		r = memo_get(g, path, m, pid);
	if (!r && m->is_dir)
		dir_cache_put(g, path, m->id);
	if (!r)
		overlay(g, m);      /* a mode or times set here that Drive does not have yet */
	return r;
}

/* ---- metadata operations ---- */

static int gd_stat(scs_backend *be, const char *path, struct scs_attr *a)
{
	struct scs_gdrive_meta *m = malloc(sizeof *m);
	if (!m)
		return -ENOMEM;
	int r = resolve(GB(be), path, m, NULL);
	if (!r)
		to_attr(GB(be), m, a);
	free(m);
	return r;
}

/* A listing is gathered whole, then sorted by (name, id) so that
 * duplicate names get their suffixes however Drive pages them. */
struct list_item {
	char id[SCS_GDRIVE_ID_MAX + 1];
	char *name;
	uint64_t version;
	int is_dir;
	struct scs_attr a;
	struct scs_gdrive_meta m;    /* for the offline memo */
};

struct list_ctx {
	struct gd_be *g;
	const char *pid;
	struct list_item *v;
	size_t n, cap;
};

static int list_cb(void *arg, const struct scs_gdrive_meta *m)
{
	struct list_ctx *c = arg;
	if (strchr(m->name, '/') || !strcmp(m->name, ".") || !strcmp(m->name, ".."))
		return 0;
	/* (before own_hidden: a listing behind Drive's current state of a file
	 * still marked there ends no record; list_own then asks Drive by id) */
	if (not_yet(c->g, m))
		return 0;
	if (c->pid && (own_hidden(c->g, c->pid, m) || elsewhere(c->g, c->pid, m)))
		return 0;
	if (c->n == c->cap) {
		size_t nc = c->cap ? 2 * c->cap : 64;
		struct list_item *nv = realloc(c->v, nc * sizeof *nv);
		if (!nv)
			return -ENOMEM;
		c->v = nv;
		c->cap = nc;
	}
	struct scs_gdrive_meta *om = NULL;
	if (__atomic_load_n(&c->g->nwant, __ATOMIC_RELAXED)) {
		if (!(om = malloc(sizeof *om)))
			return -ENOMEM;
		*om = *m;           /* a mode or times set here that Drive does not have yet */
		overlay(c->g, om);
		m = om;
	}
	struct list_item *it = &c->v[c->n];
	if (!(it->name = strdup(m->name))) {
		free(om);
		return -ENOMEM;
	}
	strcpy(it->id, m->id);
	it->version = m->version;
	it->is_dir = m->is_dir;
	to_attr(c->g, m, &it->a);
	it->m = *m;
	c->n++;
	free(om);
	return 0;
}

/* A listing starts again: forget what list_cb collected. */
static void list_reset(void *arg)
{
	struct list_ctx *c = arg;
	for (size_t i = 0; i < c->n; i++)
		free(c->v[i].name);
	c->n = 0;
}

/* Add what is known to be in folder pid that the listing did not show
 * (Drive's listings lag behind; its metadata by id does not). */
static int id_cmp(const void *a, const void *b)
{
	return strcmp(a, b);
}

static int list_own(struct gd_be *g, const char *pid, struct list_ctx *c)
{
	enum { MAXN = 256 + IDS_MAX };     /* (all that can be made offline) */
	char (*ids)[SCS_GDRIVE_ID_MAX + 1] = malloc(MAXN * sizeof *ids);
	unsigned char *listed = calloc(MAXN, 1);
	struct scs_gdrive_meta *m = malloc(sizeof *m);
	int r = (ids && listed && m) ? 0 : -ENOMEM;
	size_t n = r ? 0 : own_in(g, pid, ids, MAXN);
	/* which of them the listing has: one pass over it, not one per id */
	if (n)
		qsort(ids, n, sizeof *ids, id_cmp);
	for (size_t k = 0; k < c->n && n; k++) {
		char (*hit)[SCS_GDRIVE_ID_MAX + 1] = bsearch(c->v[k].id, ids, n, sizeof *ids, id_cmp);
		if (hit)
			listed[hit - ids] = 1;
	}
	for (size_t i = 0; i < n && !r; i++) {
		if (listed[i])
			continue;
		r = own_check(g, ids[i], pid, m);
		if (r == -ENOENT) {
			own_drop(g, ids[i], pid, NULL);
			r = 0;
		} else if (!r) {
			const char *lp = c->pid;
			c->pid = NULL;      /* not a listing's view: ends nothing */
			r = list_cb(c, m);
			c->pid = lp;
		}
	}
	free(ids);
	free(listed);
	free(m);
	return r;
}

static int item_cmp(const void *a, const void *b)
{
	const struct list_item *x = a, *y = b;
	int r = strcmp(x->name, y->name);
	return r ? r : strcmp(x->id, y->id);
}

static int gd_list(scs_backend *be, const char *dir, scs_list_cb cb, void *arg)
{
	struct gd_be *g = GB(be);
	char id[SCS_GDRIVE_ID_MAX + 1], *q;
	int r = resolve_dir(g, dir, id);
	if (r < 0)
		return r;
	if (asprintf(&q, "'%s' in parents and trashed = false", id) < 0)
		return -ENOMEM;
	struct list_ctx c = { .g = g, .pid = id };
	struct scs_gdrive_meta pm;
	if (pend_meta_get(g, id, &pm) < 0)     /* (made offline: Drive has none of it) */
		r = list_query(g, q, 1000, list_cb, list_reset, &c);
	free(q);
	if (!r)
		r = list_own(g, id, &c);
	int from_memo = 0;
	if (r < 0 && offline_now(g, r)) {
		/* Drive unreachable: what this mount saw of the folder */
		for (size_t i = 0; i < c.n; i++)
			free(c.v[i].name);
		c.n = 0;
		r = memo_list(g, dir, list_cb, &c);
		from_memo = 1;
	}
	if (c.n)
		qsort(c.v, c.n, sizeof *c.v, item_cmp);
	char *shown = malloc(SCS_GDRIVE_NAME_MAX + SCS_DUP_LEN + 1);
	if (!shown && !r)
		r = -ENOMEM;
	for (size_t i = 0; !r && i < c.n; i++) {
		struct list_item *it = &c.v[i];
		int dup = i > 0 && !strcmp(it->name, c.v[i - 1].name);
		char suf[SCS_DUP_LEN + 1] = "";
		if (dup)
			dup_suffix(it->id, suf);
		sprintf(shown, "%s%s", it->name, suf);
		if (!from_memo)
			ent_put(g, it->id, id, it->name, dup, it->version, 1);
		char *p;
		if (asprintf(&p, "%s%s%s", dir, *dir ? "/" : "", shown) >= 0) {
			if (it->is_dir)
				dir_cache_put(g, p, it->id);
			if (!from_memo)
				memo_put(g, p, &it->m, id);
			free(p);
		}
		r = cb(arg, shown, &it->a);
	}
	if (!r && !from_memo)
		memo_listed(g, dir);
	for (size_t i = 0; i < c.n; i++)
		free(c.v[i].name);
	free(c.v);
	free(shown);
	return r;
}

/* The Drive name for a new entry at path: its base name without a
 * duplicate suffix (names.h; an entry gets one only in listings). */
static const char *new_name(const char *path, char *buf, size_t cap)
{
	const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	size_t bl;
	if (!scs_name_dup_split(base, &bl, NULL) || bl >= cap)
		return base;
	memcpy(buf, base, bl);
	buf[bl] = '\0';
	return buf;
}

/* POST /files (metadata only) for id; a retry that finds the id taken
 * (409) was our own earlier attempt (*version then 0).  A regular file (no
 * mime, not a link) is marked PEND_KEY until its first content upload. */
static int post_meta(struct gd_be *g, const char *id, const char *pid, const char *name,
		     const char *mime, uint32_t perm, int link, uint64_t *version)
{
	char pm[8];
	snprintf(pm, sizeof pm, "%o", perm & 07777);
	json_t *ap = json_pack("{s:s}", "m", pm);
	if (link)
		json_object_set_new(ap, LINK_KEY, json_string("1"));
	else if (!mime)
		json_object_set_new(ap, PEND_KEY, json_string("1"));
	json_t *j = json_pack("{s:s, s:s, s:[s], s:o}", "id", id, "name", name, "parents", pid,
			      "appProperties", ap);
	if (j && mime)
		json_object_set_new(j, "mimeType", json_string(mime));
	char *body = j ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	if (!body)
		return -ENOMEM;
	char url[SCS_URL_MAX + 128];
	snprintf(url, sizeof url, "%s/files?supportsAllDrives=true&fields=id,version", g->ep.api);
	struct gd_rq q;
	struct scs_http_resp rs;
	gd_rq_init(&q, "POST", url);
	q.ctype = "application/json; charset=UTF-8";
	q.body = body;
	q.body_len = strlen(body);
	int r = gd_do(g, &q, &rs);
	free(body);
	*version = 0;
	if (r == -EEXIST)
		return 0;
	if (r == 0) {
		json_t *rj = load_json(rs.body, rs.len);
		*version = u64_field(rj, "version");
		json_decref(rj);
		scs_http_resp_free(&rs);
		ent_put(g, id, pid, name, 0, *version, 0);
		own_put(g, id, pid, name, *version, 1);
	}
	return r;
}

/* A new entry with a pre-generated id (post_meta).  With queued (not
 * NULL), a regular file or a folder is made here if Drive is unreachable,
 * or if its folder is itself made here and not on Drive yet (*queued = 1):
 * the uploader will create it (create_pending). */
static int create_meta(struct gd_be *g, const char *pid, const char *name, const char *mime,
		       uint32_t perm, int link, char id_out[SCS_GDRIVE_ID_MAX + 1], int *queued)
{
	int can_queue = queued && (!mime || !strcmp(mime, FOLDER_MIME)) && g->wb;
	if (queued)
		*queued = 0;
	queueable = can_queue;
	int r = next_id(g, id_out);
	queueable = 0;
	if (r < 0)
		return r;
	if (!mime && !link)
		mine_add(g, id_out);   /* before Drive has it: this mount always sees it */
	uint64_t v;
	struct scs_gdrive_meta pm;
	/* in a folder Drive does not have yet: made here too; and a link: only
	 * ever created on Drive with its target (link_pending) */
	int in_local = can_queue && (link || pend_meta_get(g, pid, &pm) == 0);
	if (in_local) {
		r = -EIO;
	} else {
		queueable = can_queue;
		r = post_meta(g, id_out, pid, name, mime, perm, link, &v);
		queueable = 0;
	}
	if (r < 0 && can_queue && (offline_now(g, r) || in_local)) {
		/* (if this request got through after all, the upload's own
		 * create finds the id taken: then it is ours) */
		ent_put(g, id_out, pid, name, 0, 0, 0);
		*queued = 1;
		return 0;
	}
	if (r < 0 && !mime && !link)
		mine_done(g, id_out, 1);
	return r;
}

static int dir_made_here(struct gd_be *g, const char *path, const char *id, const char *pid,
			 const char *base, uint32_t perm);

static int gd_mkdir(scs_backend *be, const char *path, uint32_t mode)
{
	struct gd_be *g = GB(be);
	struct scs_gdrive_meta m;
	char pid[SCS_GDRIVE_ID_MAX + 1], id[SCS_GDRIVE_ID_MAX + 1];
	int r = resolve(g, path, &m, pid);
	if (r == 0)
		return -EEXIST;
	if (r != -ENOENT)
		return r;
	const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	int queued = 0;
	r = create_meta(g, pid, base, FOLDER_MIME, mode ? mode : 0755, 0, id, &queued);
	if (!r && queued)
		r = dir_made_here(g, path, id, pid, base, mode ? mode : 0755);
	if (!r)
		dir_cache_put(g, path, id);
	return r;
}

static int delete_id(struct gd_be *g, const char *id)
{
	char url[SCS_URL_MAX + 256];
	snprintf(url, sizeof url, "%s/files/%s?supportsAllDrives=true", g->ep.api, id);
	struct gd_rq q;
	struct scs_http_resp rs;
	gd_rq_init(&q, "DELETE", url);
	int r = gd_do(g, &q, &rs);
	if (!r)
		scs_http_resp_free(&rs);
	if (!r || r == -ENOENT) {
		ent_del(g, id);
		own_put(g, id, NULL, NULL, 0, 0);
		mine_done(g, id, 1);
	}
	return r == -ENOENT ? 0 : r;   /* a retried delete finds it gone */
}

struct stop_ctx {
	struct gd_be *g;
	const char *pid;
};

/* Any entry stops the listing, except one we deleted or moved away. */
static int stop_cb(void *arg, const struct scs_gdrive_meta *m)
{
	struct stop_ctx *c = arg;
	return !own_hidden(c->g, c->pid, m);
}

/* Counts what others do not see yet too (not_yet): a folder holding a
 * member's new file, whose content is on its way, is not removed. */
static int dir_empty(struct gd_be *g, const char *id)
{
	char *q;
	if (asprintf(&q, "'%s' in parents and trashed = false", id) < 0)
		return -ENOMEM;
	struct stop_ctx c = { g, id };
	int r = list_query(g, q, 1, stop_cb, NULL, &c);
	free(q);
	if (r == 1)
		return -ENOTEMPTY;
	/* what is known to be in it that Drive does not list yet */
	char oid[1][SCS_GDRIVE_ID_MAX + 1];
	struct scs_gdrive_meta m;
	while (!r && own_in(g, id, oid, 1)) {
		r = own_check(g, oid[0], id, &m);
		if (!r)
			return -ENOTEMPTY;
		if (r == -ENOENT) {
			own_drop(g, oid[0], id, NULL);
			r = 0;
		}
	}
	return r;
}

static int pend_drop(struct gd_be *g, const char *id);
static int queue_rmdir(struct gd_be *g, const struct scs_gdrive_meta *m, const char *path);

/* Folder id (at path) holds nothing, as far as this mount can tell while
 * Drive is unreachable: it was listed in full, nothing of what was seen in
 * it is left, and nothing was made or moved into it here.  0, -ENOTEMPTY,
 * or -EIO (never listed: nobody can tell). */
static int known_empty(struct gd_be *g, const char *path, const char *id)
{
	char one[1][SCS_GDRIVE_ID_MAX + 1];
	if (own_in(g, id, one, 1))
		return -ENOTEMPTY;
	struct gd_memo *mm = g->memo;
	if (!mm)
		return -EIO;
	int r = 0;
	pthread_mutex_lock(&mm->lock);
	struct memo_ent *d = memo_find(mm, path);
	if (!d || !d->listed || strcmp(d->m.id, id))
		r = -EIO;
	for (unsigned h = 0; h < MEMO_BUCKETS && !r; h++)
		for (struct memo_ent *e = mm->b[h]; e && !r; e = e->next)
			if (e != d && under(e->path, path))
				r = -ENOTEMPTY;
	pthread_mutex_unlock(&mm->lock);
	if (r == -EIO)
		scs_log(SCS_LOG_ERR, "gdrive: Drive is unreachable and this mount never listed the "
			"folder %s: whether it is empty cannot be told; remove it when Drive is back",
			path);
	return r;
}

/* Folder m (at path) holds nothing: asked of Drive, or while it is
 * unreachable, of what this mount saw (*offline then set). */
static int folder_empty(struct gd_be *g, const struct scs_gdrive_meta *m, const char *path,
			int *offline)
{
	struct scs_gdrive_meta pm;
	char cid[1][SCS_GDRIVE_ID_MAX + 1];
	*offline = 0;
	if (pend_meta_get(g, m->id, &pm) == 0)   /* made offline: all it holds is here */
		return own_in(g, m->id, cid, 1) ? -ENOTEMPTY : 0;
	queueable = g->wb;
	int r = dir_empty(g, m->id);
	queueable = 0;
	if (g->wb && offline_now(g, r)) {
		*offline = 1;
		r = known_empty(g, path, m->id);
	}
	return r;
}

static int gd_rmdir(scs_backend *be, const char *path)
{
	struct gd_be *g = GB(be);
	struct scs_gdrive_meta m;
	if (!*path)
		return -EBUSY;
	int r = resolve(g, path, &m, NULL);
	if (r < 0)
		return r;
	if (!m.is_dir)
		return -ENOTDIR;
	int offline;
	r = folder_empty(g, &m, path, &offline);
	if (!r && offline && !pend_drop(g, m.id))
		r = queue_rmdir(g, &m, path);     /* removed on Drive when it is back */
	else if (!r)
		r = pend_drop(g, m.id) ? 0 : delete_id(g, m.id);
	if (!r) {
		dir_cache_move(g, path, NULL);
		memo_drop(g, path);
	}
	return r;
}

static void file_dropped(struct gd_be *g, const char *id);

/* This mount is about to delete id on Drive (on) or is done trying (!on):
 * an upload of id that meanwhile finds it gone knows whose doing that was. */
static void file_dropping(struct gd_be *g, const char *id, int on)
{
	pthread_mutex_lock(&g->lock);
	for (struct gd_file *f = g->files; f; f = f->next)
		if (!strcmp(f->id, id))
			f->dropping = on;
	pthread_mutex_unlock(&g->lock);
}

/* Delete the file id on Drive for good, and what is queued for it. */
static int drop_id(struct gd_be *g, const char *id)
{
	file_dropping(g, id, 1);
	int r = delete_id(g, id);
	if (!r)
		file_dropped(g, id);
	file_dropping(g, id, 0);
	return r;
}

/* id is a file made offline and not on Drive yet: dropped here (1). */
static int pend_drop(struct gd_be *g, const char *id)
{
	struct gd_file *f = pend_hold(g, id);
	if (!f)
		return 0;
	__atomic_store_n(&f->deleted, 1, __ATOMIC_RELAXED);   /* no upload creates it now */
	f->pend_create = 0;
	g->nlocal--;
	ent_del_locked(g, id);
	pthread_mutex_unlock(&g->lock);
	file_dropped(g, id);
	pthread_mutex_lock(&f->lock);
	f->dirty = 0;        /* nothing of it is kept: the cache may let it go */
	pthread_mutex_unlock(&f->lock);
	own_put(g, id, NULL, NULL, 0, 0);
	mine_done(g, id, 1);
	return 1;
}

static int queue_delete(struct gd_be *g, const struct scs_gdrive_meta *m, const char *path);

/* Delete the entry m (at path, if known; a folder: known to be empty):
 * here if it was made offline; on Drive, or queued if Drive cannot be
 * reached. */
static int delete_or_queue(struct gd_be *g, const struct scs_gdrive_meta *m, const char *path)
{
	if (pend_drop(g, m->id))
		return 0;
	queueable = g->wb;
	int r = drop_id(g, m->id);
	queueable = 0;
	if (g->wb && offline_now(g, r))
		r = m->is_dir ? queue_rmdir(g, m, path) : queue_delete(g, m, path);
	return r;
}

static int gd_unlink(scs_backend *be, const char *path)
{
	struct gd_be *g = GB(be);
	struct scs_gdrive_meta m;
	int r = resolve(g, path, &m, NULL);
	if (r < 0)
		return r;
	if (m.is_dir)
		return -EISDIR;
	r = delete_or_queue(g, &m, path);
	if (!r)
		memo_drop(g, path);
	return r;
}

/* PATCH /files/id with a JSON body and optional query suffix. */
static int patch_meta(struct gd_be *g, const char *id, json_t *body, const char *extra_q)
{
	char *b = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	if (!b)
		return -ENOMEM;
	char url[SCS_URL_MAX + 600];
	snprintf(url, sizeof url, "%s/files/%s?supportsAllDrives=true&fields=" FIELDS ",parents%s",
		 g->ep.api, id, extra_q ? extra_q : "");
	struct gd_rq q;
	struct scs_http_resp rs;
	gd_rq_init(&q, "PATCH", url);
	q.ctype = "application/json; charset=UTF-8";
	q.body = b;
	q.body_len = strlen(b);
	int r = gd_do(g, &q, &rs);
	free(b);
	if (!r) {
		struct scs_gdrive_meta *m = malloc(sizeof *m);
		if (m && scs_gdrive_parse_file(rs.body, rs.len, m) == 0) {
			/* our own change: where it is now, the version it made */
			pthread_mutex_lock(&g->lock);
			if (m->parent[0] && m->name[0])
				ent_put_locked(g, m->id, m->parent, m->name, 0, m->version, 0);
			pthread_mutex_unlock(&g->lock);
			if (m->parent[0] && m->name[0])
				own_put(g, m->id, m->parent, m->name, m->version, 0);
		}
		free(m);
		scs_http_resp_free(&rs);
	}
	return r;
}

/* Drive's RFC 3339 form of t, to the millisecond, into s[96]. */
static void drive_time(struct timespec t, char s[96])
{
	struct tm tm;
	time_t sec = t.tv_sec;
	gmtime_r(&sec, &tm);
	snprintf(s, 96, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900, tm.tm_mon + 1,
		 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, t.tv_nsec / 1000000);
}

/* Move the file m to name under parent new_pid (from old_pid).  Its
 * modifiedTime goes along unchanged: a rename keeps a file's mtime, and a
 * PATCH that names no modifiedTime may set it to now. */
static int move_id(struct gd_be *g, const struct scs_gdrive_meta *m, const char *name,
		   const char *old_pid, const char *new_pid)
{
	char nb[SCS_GDRIVE_NAME_MAX + 1], ts[96];
	name = new_name(name, nb, sizeof nb);
	char extra[2 * SCS_GDRIVE_ID_MAX + 64] = "";
	if (strcmp(old_pid, new_pid))
		snprintf(extra, sizeof extra, "&addParents=%s&removeParents=%s", new_pid, old_pid);
	json_t *body = json_pack("{s:s}", "name", name);
	if (body && m->mtime.tv_sec > 0) {
		drive_time(m->mtime, ts);
		json_object_set_new(body, "modifiedTime", json_string(ts));
	}
	return patch_meta(g, m->id, body, extra);
}

static const char *base_name(const char *path)
{
	const char *s = strrchr(path, '/');
	return s ? s + 1 : path;
}

/* RENAME_EXCHANGE: two moves (Drive allows equal names meanwhile); not
 * atomic for other readers, but nothing is ever missing. */
static int exchange(struct gd_be *g, const char *from, const struct scs_gdrive_meta *a,
		    const char *apid, const char *to, const struct scs_gdrive_meta *b,
		    const char *bpid)
{
	if ((a->is_dir && under(to, from)) || (b->is_dir && under(from, to)))
		return -EINVAL;
	int r = move_id(g, a, base_name(to), apid, bpid);
	if (!r)
		r = move_id(g, b, base_name(from), bpid, apid);
	dir_cache_move(g, from, NULL);
	dir_cache_move(g, to, NULL);
	memo_drop(g, from);
	memo_drop(g, to);
	return r;
}

static int pend_replace(struct gd_be *g, const char *sid, struct scs_gdrive_meta *dst,
			const char *to, int *err);

/* A folder made offline moved to dir: what this mount remembers of what
 * is in it (all made offline too: Drive has none of it) follows, for
 * offline listings. */
static void memo_refill(struct gd_be *g, const char *dir)
{
	size_t n = 0, cap = 0;
	struct { char *path; struct scs_gdrive_meta m; } *v = NULL;
	pthread_mutex_lock(&g->lock);
	for (struct gd_file *f = g->files; f; f = f->next) {
		if (!local_only(f) || !f->path || !under(f->path, dir))
			continue;
		if (n == cap) {
			void *nv = realloc(v, (cap = cap ? 2 * cap : 16) * sizeof *v);
			if (!nv)
				break;
			v = nv;
		}
		if ((v[n].path = strdup(f->path))) {
			v[n].m = f->meta;
			n++;
		}
	}
	pthread_mutex_unlock(&g->lock);
	for (size_t i = 0; i < n; i++) {     /* (dir itself among them) */
		memo_put(g, v[i].path, &v[i].m, v[i].m.parent);
		if (v[i].m.is_dir)
			memo_listed(g, v[i].path);
		free(v[i].path);
	}
	free(v);
}

/* (with the write-back queue, below) */
static int want_set(struct gd_be *g, const struct scs_gdrive_meta *m, const char *path,
		    unsigned flags, const struct scs_gdrive_meta *v, int dirty_only);

/* Move the entry src at from to `to`, in folder dpid (from spid): on
 * Drive now; queued (M) while Drive is unreachable, while its new folder
 * is made here and not on Drive yet, or behind a change of it that waits. */
static int move_or_queue(struct gd_be *g, const struct scs_gdrive_meta *src, const char *from,
			 const char *to, const char *spid, const char *dpid)
{
	struct scs_gdrive_meta *v = malloc(sizeof *v);
	if (!v)
		return -ENOMEM;
	int r = 0, queue = g->wb && (waiting(g, src->id) || pend_meta_get(g, dpid, v) == 0);
	if (!queue) {
		queueable = g->wb;
		r = move_id(g, src, base_name(to), spid, dpid);
		queueable = 0;
		queue = g->wb && offline_now(g, r);
		if (!queue && !r) {
			memo_drop(g, from);
			memo_drop(g, to);
		}
	}
	if (queue) {
		char nb[SCS_GDRIVE_NAME_MAX + 1];
		*v = *src;
		snprintf(v->name, sizeof v->name, "%s", new_name(to, nb, sizeof nb));
		strcpy(v->parent, dpid);
		r = want_set(g, src, to, SCS_GDRIVE_WANT_MOVE, v, 0);
		if (!r)
			memo_move(g, from, to, v, dpid);
	}
	free(v);
	return r;
}

static int gd_rename(scs_backend *be, const char *from, const char *to, unsigned flags)
{
	struct gd_be *g = GB(be);
	struct scs_gdrive_meta src, dst;
	char spid[SCS_GDRIVE_ID_MAX + 1], dpid[SCS_GDRIVE_ID_MAX + 1];
	if ((flags & ~3u) || flags == 3u)   /* RENAME_NOREPLACE, RENAME_EXCHANGE */
		return -EINVAL;
	int r = resolve(g, from, &src, spid);
	if (r < 0)
		return r;
	if (!strcmp(from, to))
		return 0;
	if (src.is_dir && under(to, from))
		return -EINVAL;
	r = resolve(g, to, &dst, dpid);
	int exists = r == 0;
	if (r < 0 && r != -ENOENT)
		return r;
	if (flags & 2u) {
		if (exists && (pend_meta_get(g, src.id, &src) == 0 || pend_meta_get(g, dst.id, &dst) == 0 ||
			       waiting(g, src.id) || waiting(g, dst.id)))
			return -EBUSY;     /* made or changed offline: not on Drive to be exchanged yet */
		return exists ? exchange(g, from, &src, spid, to, &dst, dpid) : -ENOENT;
	}
	if (exists) {
		int offline;
		if (flags & 1u)
			return -EEXIST;
		if (!strcmp(dst.id, src.id))
			return 0;
		if (dst.is_dir && !src.is_dir)
			return -EISDIR;
		if (!dst.is_dir && src.is_dir)
			return -ENOTDIR;
		if (dst.is_dir && (r = folder_empty(g, &dst, to, &offline)) < 0)
			return r;
	}
	if (exists && !src.is_dir && !dst.is_dir && pend_meta_get(g, dst.id, &dst) < 0 &&
	    pend_replace(g, src.id, &dst, to, &r)) {
		if (!r) {
			memo_drop(g, from);
			memo_put(g, to, &dst, dpid);
		}
		return r;
	}
	/* Move first, then delete what it replaces: a crash in between leaves
	 * a duplicate name (resolved the same way everywhere), never a loss. */
	struct gd_file *pf = pend_hold(g, src.id);
	if (pf) {
		/* made offline: moved here, created there by its upload */
		const char *bn = base_name(to);
		size_t bl = strnlen(bn, sizeof pf->meta.name - 1);
		strcpy(pf->meta.parent, dpid);
		memcpy(pf->meta.name, bn, bl);
		pf->meta.name[bl] = '\0';
		ent_put_locked(g, src.id, dpid, pf->meta.name, 0, 0, 0);
		char *np = strdup(to);
		if (np) {
			free(pf->path);
			pf->path = np;
		}
		r = pend_changed(g, pf, from, to);
		own_put(g, src.id, dpid, base_name(to), 0, 1);
		if (src.is_dir) {
			files_renamed(g, from, to);
			memo_refill(g, to);
		}
	} else {
		r = move_or_queue(g, &src, from, to, spid, dpid);
	}
	if (r < 0)
		return r;
	if (!pf)
		files_renamed(g, from, to);
	if (exists)
		r = delete_or_queue(g, &dst, to);
	if (src.is_dir || exists)
		dir_cache_move(g, from, src.is_dir ? to : NULL);
	if (exists && dst.is_dir)
		dir_cache_put(g, to, src.id);
	return r;
}

/* The Drive metadata that sets flags' fields of v (but its place and
 * name): modifiedTime (milliseconds) and the private properties t (the
 * mtime to the nanosecond), a (atime, which Drive does not keep for us)
 * and m (mode). */
static json_t *meta_json(unsigned flags, const struct scs_gdrive_meta *v)
{
	json_t *body = json_object(), *ap = json_object();
	char s[96];
	if (flags & SCS_GDRIVE_WANT_MTIME) {
		drive_time(v->mtime, s);
		json_object_set_new(body, "modifiedTime", json_string(s));
		snprintf(s, sizeof s, "%lld.%09ld", (long long)v->mtime.tv_sec, v->mtime.tv_nsec);
		json_object_set_new(ap, "t", json_string(s));
	}
	if (flags & SCS_GDRIVE_WANT_ATIME) {
		snprintf(s, sizeof s, "%lld.%09ld", (long long)v->atime.tv_sec, v->atime.tv_nsec);
		json_object_set_new(ap, "a", json_string(s));
	}
	if (flags & SCS_GDRIVE_WANT_MODE) {
		snprintf(s, sizeof s, "%o", v->perm & 07777);
		json_object_set_new(ap, "m", json_string(s));
	}
	json_object_set_new(body, "appProperties", ap);
	return body;
}

/* Set flags' fields of v (mode, times) on the entry m at path: on Drive
 * now (with its mtime as it is, which a PATCH naming none may move), or
 * queued (M) while Drive is unreachable or behind a change of m that
 * waits.  Times given to a file whose content waits to upload go with
 * that upload too (it gives Drive a new modifiedTime: rsync sets times
 * after close); they are noted for it before they are sent: noted after,
 * an upload that landed and finished while the PATCH was on its way (it
 * had not carried them) left nothing to send them again, and Drive kept
 * the upload's time. */
static int meta_set(struct gd_be *g, const struct scs_gdrive_meta *m, const char *path,
		    unsigned flags, const struct scs_gdrive_meta *v)
{
	const unsigned times = SCS_GDRIVE_WANT_MTIME | SCS_GDRIVE_WANT_ATIME;
	if (!g->wb || !waiting(g, m->id)) {
		int r = g->wb && (flags & times) ? want_set(g, m, path, flags & times, v, 1) : 0;
		if (r < 0)
			return r;
		queueable = g->wb;
		r = patch_meta(g, m->id, meta_json(flags | SCS_GDRIVE_WANT_MTIME, v), NULL);
		queueable = 0;
		if (!(g->wb && offline_now(g, r)))
			return r;
	}
	return want_set(g, m, path, flags, v, 0);
}

static int gd_chmod(scs_backend *be, const char *path, uint32_t mode)
{
	struct scs_gdrive_meta m;
	int r = resolve(GB(be), path, &m, NULL);
	if (r < 0)
		return r;
	if (m.is_link)
		return 0;
	struct gd_file *pf = pend_hold(GB(be), m.id);
	if (pf) {
		pf->meta.perm = mode & 07777;      /* made offline: created with it */
		return pend_changed(GB(be), pf, NULL, path);
	}
	struct scs_gdrive_meta v = m;
	v.perm = mode & 07777;
	v.has_perm = 1;
	return meta_set(GB(be), &m, path, SCS_GDRIVE_WANT_MODE, &v);
}

static int gd_chown(scs_backend *be, const char *path, uint32_t uid, uint32_t gid)
{
	struct scs_attr a;
	int r = gd_stat(be, path, &a);
	if (r < 0)
		return r;
	if ((uid != (uint32_t)-1 && uid != a.uid) || (gid != (uint32_t)-1 && gid != a.gid))
		return -EPERM;   /* Drive has one owner: the signed-in account */
	return 0;
}

/* mtime is Drive's modifiedTime (ms precision); atime, which Drive does
 * not keep for us, goes into the private property "a" (meta_json). */
static int gd_utimens(scs_backend *be, const char *path, const struct timespec ts[2])
{
	if (ts[0].tv_nsec == UTIME_OMIT && ts[1].tv_nsec == UTIME_OMIT)
		return 0;
	struct scs_gdrive_meta m, v;
	int r = resolve(GB(be), path, &m, NULL);
	if (r < 0)
		return r;
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	unsigned flags = 0;
	v = m;
	if (ts[1].tv_nsec != UTIME_OMIT) {
		v.mtime = ts[1].tv_nsec == UTIME_NOW ? now : ts[1];
		flags |= SCS_GDRIVE_WANT_MTIME;
	}
	if (ts[0].tv_nsec != UTIME_OMIT) {
		v.atime = ts[0].tv_nsec == UTIME_NOW ? now : ts[0];
		flags |= SCS_GDRIVE_WANT_ATIME;
	}
	struct gd_file *pf = pend_hold(GB(be), m.id);
	if (pf) {
		/* made offline: its times go with the upload that creates it (a
		 * folder's are those of its creation) */
		pf->meta.mtime = v.mtime;
		pf->meta.atime = v.atime;
		r = pend_changed(GB(be), pf, NULL, path);
		if (r == 0 && !m.is_dir)
			r = want_set(GB(be), &m, path, flags, &v, 1);
		return r;
	}
	return meta_set(GB(be), &m, path, flags, &v);
}

static int gd_statfs(scs_backend *be, struct statvfs *st)
{
	struct gd_be *g = GB(be);
	char url[SCS_URL_MAX + 64];
	snprintf(url, sizeof url, "%s/about?fields=storageQuota", g->ep.api);
	json_t *j;
	int r = get_json(g, url, &j);
	if (r < 0)
		return r;
	json_t *sq = json_object_get(j, "storageQuota");
	uint64_t limit = u64_field(sq, "limit"), usage = u64_field(sq, "usage");
	json_decref(j);
	if (!limit)
		limit = 1ull << 50;    /* unlimited accounts */
	memset(st, 0, sizeof *st);
	st->f_bsize = st->f_frsize = 4096;
	st->f_blocks = limit / 4096;
	st->f_bfree = st->f_bavail = usage < limit ? (limit - usage) / 4096 : 0;
	st->f_files = 1u << 24;
	st->f_ffree = st->f_favail = 1u << 23;
	st->f_namemax = 255;
	return 0;
}

/* ---- content transfer ---- */

/* The reply to an upload of ours: its version is no news to the feed. */
static void seen_reply(struct gd_be *g, const char *id, const void *body, size_t len)
{
	json_t *j = load_json(body, len);
	uint64_t v = u64_field(j, "version");
	json_decref(j);
	if (v)
		ent_seen(g, id, v);
}

/* GET alt=media into memory (max bytes). */
static int download_mem(struct gd_be *g, const char *id, size_t max, uint8_t **data, size_t *len)
{
	char url[SCS_URL_MAX + 256];
	snprintf(url, sizeof url, "%s/files/%s?alt=media&supportsAllDrives=true", g->ep.api, id);
	struct gd_rq q;
	struct scs_http_resp rs;
	gd_rq_init(&q, "GET", url);
	q.max_resp = max + 1;
	int r = gd_do(g, &q, &rs);
	if (r < 0)
		return r;
	if (rs.len > max) {
		scs_http_resp_free(&rs);
		return -EFBIG;
	}
	*len = rs.len;
	*data = rs.body ? rs.body : calloc(1, 1);
	return *data ? 0 : -ENOMEM;
}

static int local_content(struct gd_be *g, const char *id, size_t max, uint8_t **data,
			 size_t *len, int clean);

/* download_mem, remembered for offline use (small objects: names, links);
 * offline, what was seen or what the cache holds of it whole. */
static int download_memo(struct gd_be *g, const char *path, const struct scs_gdrive_meta *m,
			 size_t max, uint8_t **data, size_t *len)
{
	int r = download_mem(g, m->id, max, data, len);
	if (!r)
		memo_put_data(g, path, m, *data, *len);
	else if (offline_now(g, r) && (r = memo_get_data(g, path, max, data, len)) == -EIO)
		r = local_content(g, m->id, max, data, len, 1) == 0 ? 0 : -EIO;
	return r;
}

static char *multipart_body(const char *meta, const void *data, size_t len, size_t *out_len,
			    char boundary[40])
{
	uint8_t rnd[12];
	scs_random(rnd, sizeof rnd);
	strcpy(boundary, "scsfs-");
	scs_hex_encode(rnd, sizeof rnd, boundary + 6);
	char *head, *tail;
	if (asprintf(&head, "--%s\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n%s\r\n"
		     "--%s\r\nContent-Type: application/octet-stream\r\n\r\n", boundary, meta,
		     boundary) < 0)
		return NULL;
	if (asprintf(&tail, "\r\n--%s--\r\n", boundary) < 0) {
		free(head);
		return NULL;
	}
	size_t hl = strlen(head), tl = strlen(tail);
	char *b = malloc(hl + len + tl);
	if (b) {
		memcpy(b, head, hl);
		if (len)
			memcpy(b + hl, data, len);
		memcpy(b + hl + len, tail, tl);
		*out_len = hl + len + tl;
	}
	free(head);
	free(tail);
	return b;
}

/* Multipart upload: update id's content (create: POST with meta holding
 * the pre-generated id).  m gets the new metadata when non-NULL. */
static int upload_multipart(struct gd_be *g, const char *id, const char *meta_json, int create,
			    const void *data, size_t len, struct scs_gdrive_meta *m)
{
	char boundary[40], ctype[80];
	size_t blen;
	char *body = multipart_body(meta_json, data, len, &blen, boundary);
	if (!body)
		return -ENOMEM;
	snprintf(ctype, sizeof ctype, "multipart/related; boundary=%s", boundary);
	char url[SCS_URL_MAX + 256];
	if (create)
		snprintf(url, sizeof url, "%s/files?uploadType=multipart&supportsAllDrives=true"
			 "&fields=" FIELDS, g->ep.upload);
	else
		snprintf(url, sizeof url, "%s/files/%s?uploadType=multipart&supportsAllDrives=true"
			 "&fields=" FIELDS, g->ep.upload, id);
	struct gd_rq q;
	struct scs_http_resp rs;
	gd_rq_init(&q, create ? "POST" : "PATCH", url);
	q.ctype = ctype;
	q.body = body;
	q.body_len = blen;
	int r = gd_do(g, &q, &rs);
	free(body);
	if (r == -EEXIST && create) {
		/* Our own earlier attempt got through before its reply was lost. */
		return m ? get_meta(g, id, m) : 0;
	}
	if (r < 0)
		return r;
	if (m && scs_gdrive_parse_file(rs.body, rs.len, m) < 0)
		r = get_meta(g, id, m);
	seen_reply(g, id, rs.body, rs.len);
	scs_http_resp_free(&rs);
	return r;
}

/* "bytes=0-N" -> N+1; no header -> 0. */
static uint64_t range_next(const char *range)
{
	const char *d = strchr(range, '-');
	if (!range[0] || !d)
		return 0;
	return strtoull(d + 1, NULL, 10) + 1;
}

/* Resumable upload of size bytes of fd as id's new content. */
static int upload_resumable(struct gd_be *g, const char *id, int fd, uint64_t size,
			    const char *meta_json, struct scs_gdrive_meta *m)
{
	int failures = 0, restarts = 0;
	char url[SCS_URL_MAX + 256];
	snprintf(url, sizeof url, "%s/files/%s?uploadType=resumable&supportsAllDrives=true"
		 "&fields=" FIELDS, g->ep.upload, id);
restart:
	if (restarts++ > 3) {
		scs_log(SCS_LOG_ERR, "gdrive: upload of %s keeps failing; giving up for now", id);
		return -EIO;
	}
	char xlen[64];
	snprintf(xlen, sizeof xlen, "X-Upload-Content-Length: %llu", (unsigned long long)size);
	struct gd_rq q;
	struct scs_http_resp rs;
	gd_rq_init(&q, "PATCH", url);
	q.ctype = "application/json; charset=UTF-8";
	q.extra = xlen;
	q.body = meta_json ? meta_json : "{}";
	q.body_len = strlen(q.body);
	int r = gd_do(g, &q, &rs);
	if (r < 0)
		return r;
	char *session = strdup(rs.location);
	scs_http_resp_free(&rs);
	if (!session || strncmp(session, "http", 4)) {
		free(session);
		scs_log(SCS_LOG_ERR, "gdrive: Drive started an upload session without a Location");
		return -EPROTO;
	}
	uint64_t off = 0;
	int query = 0;
	for (;;) {
		char cr[96];
		struct gd_rq c;
		gd_rq_init(&c, "PUT", session);
		c.no_auth = 1;
		c.extra = cr;
		if (query) {
			snprintf(cr, sizeof cr, "Content-Range: bytes */%llu", (unsigned long long)size);
		} else {
			uint64_t n = size - off > CHUNK ? CHUNK : size - off;
			if (size == 0)
				snprintf(cr, sizeof cr, "Content-Range: bytes */0");
			else
				snprintf(cr, sizeof cr, "Content-Range: bytes %llu-%llu/%llu",
					 (unsigned long long)off, (unsigned long long)(off + n - 1),
					 (unsigned long long)size);
			c.body_fd = fd;
			c.body_off = off;
			c.body_len = n;
		}
		scs_err err = { 0 };
		struct scs_http_req hr;
		const char *hdrs[] = { cr, "Content-Type: application/octet-stream", NULL };
		scs_http_req_init(&hr, "PUT", session);
		hr.headers = hdrs;
		hr.body_fd = c.body_fd;
		hr.body_off = c.body_off;
		hr.body_len = c.body_len;
		if (query)
			hr.body = "";
		r = scs_http_do(&hr, &rs, &err);
		long st = r == 0 ? rs.status : 0;
		if (r < 0 && r != -EIO) {
			free(session);
			return r;
		}
		if (r == 0)
			net_up(g);
		else if (net_down(g, err.msg)) {
			free(session);
			return -EIO;
		}
		if (st == 200 || st == 201) {
			seen_reply(g, id, rs.body, rs.len);
			if (m && scs_gdrive_parse_file(rs.body, rs.len, m) < 0)
				r = get_meta(g, id, m);
			else
				r = 0;
			scs_http_resp_free(&rs);
			free(session);
			return r;
		}
		if (st == 308) {
			off = range_next(rs.range);
			scs_http_resp_free(&rs);
			query = 0;
			if (off > size) {
				free(session);
				return -EPROTO;
			}
			continue;
		}
		char reason[64] = "", msg[200] = "";
		if (r == 0)
			scs_gdrive_error_reason(rs.body, rs.len, reason, sizeof reason, msg, sizeof msg);
		scs_http_resp_free(&rs);
		if (st == 404 || (st >= 400 && st < 500 && !retryable(st, reason, msg))) {
			free(session);
			if (st == 403 && !strcmp(reason, "storageQuotaExceeded"))
				return status_errno("upload", st, reason, msg);
			if (st != 404)
				scs_log(SCS_LOG_WARN, "gdrive: upload session refused (HTTP %ld %s); "
					"starting it again", st, reason);
			goto restart;
		}
		/* Network error, 5xx, 429, rate limit: back off, ask what arrived. */
		if (++failures > MAX_TRIES) {
			free(session);
			scs_log(SCS_LOG_ERR, "gdrive: upload of %s failed: %s", id,
				r ? err.msg : "the server keeps failing");
			return -EIO;
		}
		backoff_sleep(failures - 1, -1);
		query = 1;
	}
}

/* ---- objects ---- */

static void file_free(struct gd_be *g, struct gd_file *f)
{
	if (f->fd >= 0)
		close(f->fd);
	/* A clean cache file goes; one with changes not on Drive stays for the
	 * journal replay of the next mount.  (An orphan's name is its
	 * successor's already.) */
	if (g->wb && !f->dirty && !f->orphan && !f->nocontent && g->obj_dfd >= 0)
		unlinkat(g->obj_dfd, f->id, 0);
	free(f->have);
	free(f->path);
	pthread_cond_destroy(&f->fetched);
	pthread_mutex_destroy(&f->lock);
	free(f);
}

/* obj/ID.map (a clean cache the last unmount described) goes, durably,
 * before obj/ID changes: a map is only ever right about its file, also
 * after a crash.  f->lock held. */
static void map_forget(struct gd_be *g, struct gd_file *f)
{
	if (!f->mapped)
		return;
	char name[SCS_GDRIVE_ID_MAX + 8];
	snprintf(name, sizeof name, "%s.map", f->id);
	if (unlinkat(g->obj_dfd, name, 0) == 0)
		(void)fsync(g->obj_dfd);
	f->mapped = 0;
}

static int cache_fd(struct gd_be *g, const char *id)
{
	if (g->wb) {
		char map[SCS_GDRIVE_ID_MAX + 8];
		snprintf(map, sizeof map, "%s.map", id);
		if (unlinkat(g->obj_dfd, map, 0) == 0)   /* (of a file that goes now) */
			(void)fsync(g->obj_dfd);
		/* obj/ID: a fresh one (a leftover of an earlier mount is stale) */
		unlinkat(g->obj_dfd, id, 0);
		int fd = openat(g->obj_dfd, id, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
		return fd >= 0 ? fd : -errno;
	}
	int fd = open(g->cache_dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd >= 0)
		return fd;
	char tmpl[SCS_PATH_MAX + 16];
	snprintf(tmpl, sizeof tmpl, "%s/obj-XXXXXX", g->cache_dir);
	fd = mkostemp(tmpl, O_CLOEXEC);
	if (fd < 0)
		return -errno;
	unlink(tmpl);
	return fd;
}

static struct gd_file *file_new(void)
{
	struct gd_file *f = calloc(1, sizeof *f);
	if (!f)
		return NULL;
	f->fd = -1;
	pthread_mutex_init(&f->lock, NULL);
	pthread_cond_init(&f->fetched, NULL);
	return f;
}

/* Open, with changes to upload, or queued (g->lock). */
static int in_use(const struct gd_file *f)
{
	return f->refs > 0 || f->dirty || f->inflight || f->pend_create || f->pend_delete ||
	       f->want || f->jseq > f->dseq;
}

/* m, as Drive has it now, into f->meta, but for what this mount set that
 * Drive does not have yet (want).  g->lock held. */
static void meta_from_drive(struct gd_file *f, const struct scs_gdrive_meta *m)
{
	struct scs_gdrive_meta old = f->meta;
	f->meta = *m;
	meta_take(&f->meta, &old, f->want);
}

/* f only held what waited for the entry (nocontent): its cache state
 * starts now, for Drive's version m.  g->lock held. */
static int file_content_init(struct gd_be *g, struct gd_file *f, const struct scs_gdrive_meta *m)
{
	int fd = cache_fd(g, m->id);
	if (fd < 0)
		return fd;
	uint8_t *have = calloc(m->size ? (size_t)((m->size + BLK - 1) / BLK + 7) / 8 : 1, 1);
	if (!have) {
		close(fd);
		return -ENOMEM;
	}
	f->fd = fd;
	free(f->have);
	f->have = have;
	f->size = f->remote_size = m->size;
	f->version = m->version;
	strcpy(f->rev, m->rev);
	f->nblocks = (size_t)((m->size + BLK - 1) / BLK);
	f->have_all = m->size == 0;
	f->nocontent = 0;
	return 0;
}

/* Not to be freed now: in use, or a read-ahead of it runs (g->lock). */
static int busy(const struct gd_file *f)
{
	return in_use(f) || f->pins;
}

/* Set up (or reuse) the cache of object m.  Called with g->lock held. */
static int file_get(struct gd_be *g, const struct scs_gdrive_meta *m, const char *path,
		    struct gd_file **out)
{
	struct gd_file **pp, *f;
	for (pp = &g->files; (f = *pp); pp = &f->next) {
		if (strcmp(f->id, m->id))
			continue;
		/* content revisions when Drive has them: a rename or chmod
		 * changes the version only */
		int changed = m->version > f->version &&   /* not older news (offline) */
			      ((f->rev[0] || m->rev[0]) ? strcmp(f->rev, m->rev) != 0 : 1);
		if (!in_use(f) && changed) {
			*pp = f->next;    /* changed on Drive since: start afresh */
			if (f->pins)
				f->orphan = 1;   /* (its read-aheads end in its own file) */
			else
				file_free(g, f);
			break;
		}
		if (f->nocontent) {
			int r = file_content_init(g, f, m);
			if (r < 0)
				return r;
		}
		if (!f->refs && !f->inflight)
			meta_from_drive(f, m);   /* names, modes, times; the size is ours */
		f->refs++;
		f->used = ++g->clock;
		if (path && (!f->path || strcmp(f->path, path))) {
			free(f->path);
			f->path = strdup(path);
		}
		*out = f;
		return 0;
	}
	f = file_new();
	if (!f)
		return -ENOMEM;
	f->fd = cache_fd(g, m->id);
	if (f->fd < 0) {
		int r = f->fd;
		free(f);
		scs_log(SCS_LOG_ERR, "gdrive: cannot make a cache file in %s: %s", g->cache_dir,
			strerror(-r));
		return r;
	}
	strcpy(f->id, m->id);
	f->meta = *m;
	f->size = f->remote_size = m->size;
	f->version = m->version;
	strcpy(f->rev, m->rev);
	f->nblocks = (size_t)((m->size + BLK - 1) / BLK);
	f->have = calloc(f->nblocks ? (f->nblocks + 7) / 8 : 1, 1);
	f->have_all = m->size == 0;
	f->path = path ? strdup(path) : NULL;
	if (!f->have) {
		file_free(g, f);
		return -ENOMEM;
	}
	f->refs = 1;
	f->used = ++g->clock;
	f->next = g->files;
	g->files = f;
	*out = f;
	return 0;
}

static uint64_t cached_bytes(const struct gd_file *f)
{
	if (f->have_all)
		return f->size;
	uint64_t n = 0;
	for (size_t i = 0; i < f->nblocks; i++)
		if (f->have[i / 8] & (1u << (i % 8)))
			n += BLK;
	return n;
}

/* Drop closed clean entries beyond MAX_CLOSED, then (cache_max) the least
 * recently used clean ones until the cache fits.  Changes not on Drive
 * yet are never dropped.  g->lock held. */
static void file_trim(struct gd_be *g)
{
	size_t n = 0;
	for (struct gd_file **pp = &g->files, *f; (f = *pp);) {
		if (!busy(f) && ++n > MAX_CLOSED) {
			*pp = f->next;
			file_free(g, f);
			continue;
		}
		pp = &f->next;
	}
	if (!g->wb || !g->opts.cache_max)
		return;
	for (;;) {
		uint64_t total = 0;
		struct gd_file **victim = NULL;
		for (struct gd_file **pp = &g->files; *pp; pp = &(*pp)->next) {
			struct gd_file *f = *pp;
			/* an open or uploading file's bitmap is not ours to read */
			total += busy(f) ? __atomic_load_n(&f->size, __ATOMIC_RELAXED) :
				 cached_bytes(f);
			if (!busy(f) && (!victim || f->used < (*victim)->used))
				victim = pp;
		}
		if (total <= g->opts.cache_max || !victim)
			return;
		struct gd_file *f = *victim;
		*victim = f->next;
		scs_log(SCS_LOG_DEBUG, "gdrive: cache over its bound: dropping %s", f->id);
		file_free(g, f);
	}
}

/* Remote object changed: another writer made version m of object id (m
 * NULL: it was removed).  Clean cached data of an older version is
 * dropped, so the next read fetches the new one (an object open only for
 * reading switches to it); dirty data (local changes not uploaded yet) and
 * objects open for writing are never touched: an edit stays based on the
 * version it started from (a conflict at upload, not a silent merge).
 * Returns 1 if this mount had an older version cached, -1 if it has this
 * very content cached (the change was to metadata only), else 0.  (The
 * changes feed calls it; the object cache owns the structures.) */
static int file_remote_changed(struct gd_be *g, const char *id, const struct scs_gdrive_meta *m)
{
	int had = 0;
	struct gd_file *f, **pp;
	pthread_mutex_lock(&g->lock);
	for (pp = &g->files; (f = *pp); pp = &f->next)
		if (!strcmp(f->id, id))
			break;
	/* Drive's head revision names the content: a version bump with the
	 * same revision changed only metadata (a rename, times, mode).  */
	int same = f && m && f->rev[0] && m->rev[0] && !strcmp(f->rev, m->rev);
	if (same) {
		f->version = m->version > f->version ? m->version : f->version;
		if (!busy(f))
			f->meta = *m;
		pthread_mutex_unlock(&g->lock);
		return -1;
	}
	if (f && f->nocontent) {
		/* nothing of its content here (only changes of it that wait) */
		if (m)
			f->version = m->version > f->version ? m->version : f->version;
		pthread_mutex_unlock(&g->lock);
		return 0;
	}
	if (f && !busy(f)) {
		had = !m || f->version != m->version;
		if (had) {
			*pp = f->next;
			file_free(g, f);
		}
		f = NULL;
	}
	if (f)
		f->refs++;           /* f->lock may be held across an upload: not under g->lock */
	pthread_mutex_unlock(&g->lock);
	if (!f)
		return had;
	pthread_mutex_lock(&f->lock);
	pthread_mutex_lock(&g->lock);
	int writers = f->writers, inflight = f->inflight;
	pthread_mutex_unlock(&g->lock);
	if (m && !f->dirty && !writers && !inflight && f->version != m->version) {
		size_t nb = (size_t)((m->size + BLK - 1) / BLK);
		uint8_t *have = calloc(nb ? (nb + 7) / 8 : 1, 1);
		if (have)
			map_forget(g, f);
		if (have && ftruncate(f->fd, 0) == 0) {
			f->gen++;        /* GETs still in flight store nothing now */
			pthread_cond_broadcast(&f->fetched);
			f->ra_next = f->ra_win = 0;
			free(f->have);
			f->have = have;
			f->nblocks = nb;
			f->have_all = m->size == 0;
			f->remote_size = m->size;
			__atomic_store_n(&f->size, m->size, __ATOMIC_RELAXED);
			f->version = m->version;
			strcpy(f->rev, m->rev);
			f->meta = *m;
			had = 1;
		} else {
			free(have);
		}
	}
	pthread_mutex_unlock(&f->lock);
	pthread_mutex_lock(&g->lock);
	f->refs--;
	pthread_mutex_unlock(&g->lock);
	return had;
}

#define HAVE(f, b) ((f)->have[(b) / 8] & (1u << ((b) % 8)))

/* ---- reads: fetching blocks, read-ahead in the background ----
 *
 * A GET runs with f->lock released, into memory; its blocks go into the
 * cache file (and the bitmap) under f->lock, and only if the cache still
 * holds the content the GET was made for (f->gen).  While it runs, its
 * blocks are in flight: nobody fetches them again, a read that needs one
 * waits for it (f->fetched).  Read-aheads are queued for a pool of
 * download threads, each with its own connections (http.c); a read that
 * needs a block whose read-ahead has not started takes it from the queue
 * and fetches it itself.  A read-ahead is tried once: if it fails, its
 * blocks are absent again and the read fetches them itself (with
 * retries), reporting its own error. */

/* The fetch of the current content that covers block i, if any (f->lock). */
static struct gd_fetch *in_flight(const struct gd_file *f, size_t i)
{
	for (struct gd_fetch *r = f->fetches; r; r = r->next)
		if (r->gen == f->gen && r->b <= i && i <= r->e)
			return r;
	return NULL;
}

/* The first block of [off, off+n) (clipped to the object) not cached:
 * 1 and *b, *e (the range's last block), or 0 if all are (f->lock). */
static int missing(const struct gd_file *f, uint64_t off, uint64_t n, size_t *b, size_t *e)
{
	if (f->have_all || off >= f->remote_size || !n)
		return 0;
	uint64_t end = n > f->remote_size - off ? f->remote_size : off + n;
	for (size_t i = (size_t)(off / BLK), last = (size_t)((end - 1) / BLK); i <= last; i++)
		if (!HAVE(f, i)) {
			*b = i;
			*e = last;
			return 1;
		}
	return 0;
}

/* A fetch of block b (not cached, not in flight) and those after it up
 * to e that are alike, at most max bytes: in flight from now (f->lock). */
static struct gd_fetch *fetch_new(struct gd_file *f, size_t b, size_t e, uint64_t max)
{
	struct gd_fetch *r = calloc(1, sizeof *r);
	if (!r)
		return NULL;
	size_t x = b;
	while (x + 1 <= e && !HAVE(f, x + 1) && !in_flight(f, x + 1) &&
	       (uint64_t)(x + 2 - b) * BLK <= max)
		x++;
	r->f = f;
	r->gen = f->gen;
	r->b = b;
	r->e = x;
	r->s = (uint64_t)b * BLK;
	r->t = (uint64_t)(x + 1) * BLK < f->remote_size ? (uint64_t)(x + 1) * BLK : f->remote_size;
	r->next = f->fetches;
	f->fetches = r;
	return r;
}

/* r is over: no longer in flight, its waiters woken (f->lock). */
static void fetch_end(struct gd_fetch *r)
{
	struct gd_file *f = r->f;
	for (struct gd_fetch **pp = &f->fetches; *pp; pp = &(*pp)->next)
		if (*pp == r) {
			*pp = r->next;
			break;
		}
	pthread_cond_broadcast(&f->fetched);
	free(r);
}

static int pwrite_all(int fd, const void *buf, size_t n, uint64_t off)
{
	size_t done = 0;
	while (done < n) {
		ssize_t k = pwrite(fd, (const char *)buf + done, n - done, (off_t)(off + done));
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return k < 0 ? -errno : -EIO;
		done += (size_t)k;
	}
	return 0;
}

/* Run fetch r: its ranged GET (f->lock not held), then its blocks into
 * the cache file if that still holds the content r was made for.
 * dl_buf: a download thread's buffer (RA_REQ bytes, kept: fresh memory
 * costs a page fault per page): r is a read-ahead, tried once, failing
 * quietly; NULL: a read's own.  Returns with f->lock held and r over: 0
 * (also when the cache was reset meanwhile: nothing stored, the caller
 * looks again) or a negative errno. */
static int fetch_run(struct gd_be *g, struct gd_fetch *r, uint8_t *dl_buf)
{
	struct gd_file *f = r->f;
	uint64_t len = r->t - r->s;
	int background = dl_buf != NULL, stale = 0;
	if (background) {
		pthread_mutex_lock(&f->lock);
		stale = r->gen != f->gen || f->have_all;
		pthread_mutex_unlock(&f->lock);
	}
	uint8_t *buf = stale ? NULL : background ? dl_buf : malloc(len);
	int rr = buf || stale ? 0 : -ENOMEM;
	long st = 0;
	uint64_t got = 0;
	if (buf) {
		char url[SCS_URL_MAX + 256], range[80];
		snprintf(url, sizeof url, "%s/files/%s?alt=media&supportsAllDrives=true", g->ep.api, f->id);
		snprintf(range, sizeof range, "Range: bytes=%llu-%llu", (unsigned long long)r->s,
			 (unsigned long long)(r->t - 1));
		struct gd_rq q;
		struct scs_http_resp rs;
		gd_rq_init(&q, "GET", url);
		q.extra = range;
		q.out_buf = buf;
		q.out_max = len;
		q.once = background;
		rr = gd_do(g, &q, &rs);
		if (!rr) {
			got = rs.written;
			st = rs.status;
			scs_http_resp_free(&rs);
		}
	}
	pthread_mutex_lock(&f->lock);
	if (r->gen != f->gen || f->have_all || r->e >= f->nblocks) {
		rr = 0;                  /* reset meanwhile: not this content's bytes */
	} else if (rr < 0) {
		if ((rr == -EINVAL || rr == -EFBIG) && !background)
			scs_log(SCS_LOG_ERR, "gdrive: object %s is not the size Drive said; "
				"it changed underneath", f->id);
		rr = rr == -ENOENT ? -ESTALE : (rr == -EINVAL || rr == -EFBIG ? -EIO : rr);
	} else if ((st != 206 && !(st == 200 && r->s == 0)) || got != len) {
		if (!background)
			scs_log(SCS_LOG_ERR, "gdrive: short read of %s (HTTP %ld, %llu of %llu bytes)",
				f->id, st, (unsigned long long)got, (unsigned long long)len);
		rr = -EIO;
	} else if ((rr = pwrite_all(f->fd, buf, (size_t)len, r->s)) == 0) {
		for (size_t i = r->b; i <= r->e; i++)
			f->have[i / 8] |= (uint8_t)(1u << (i % 8));
	} else if (!background) {
		scs_log(SCS_LOG_ERR, "gdrive: cannot write to the cache file of %s in %s: %s",
			f->id, g->cache_dir, strerror(-rr));
	}
	if (rr < 0 && background)
		scs_log(SCS_LOG_DEBUG, "gdrive: read-ahead of %s failed (%s); a read fetches "
			"it itself", f->id, strerror(-rr));
	fetch_end(r);
	if (!background)
		free(buf);
	return rr;
}

/* f is not freed while a read-ahead of it is queued or runs (f->lock). */
static void pin(struct gd_be *g, struct gd_file *f)
{
	pthread_mutex_lock(&g->lock);
	f->pins++;
	pthread_mutex_unlock(&g->lock);
}

/* A read-ahead of f is over (f->lock not held, or held with a reference
 * to f): an orphan goes with its last, the cache may be trimmed. */
static void unpin(struct gd_be *g, struct gd_file *f)
{
	pthread_mutex_lock(&g->lock);
	if (--f->pins == 0 && f->orphan)
		file_free(g, f);
	else if (!f->pins)
		file_trim(g);
	pthread_mutex_unlock(&g->lock);
}

/* Queue read-ahead r for the download threads; 0 if they are stopping. */
static int dl_queue(struct gd_be *g, struct gd_fetch *r)
{
	pthread_mutex_lock(&g->dl_lock);
	int ok = !g->dl_stop;
	if (ok) {
		r->qnext = NULL;
		if (g->dl_tail)
			g->dl_tail->qnext = r;
		else
			g->dl_head = r;
		g->dl_tail = r;
		r->queued = 1;
		pthread_cond_signal(&g->dl_cv);
	}
	pthread_mutex_unlock(&g->dl_lock);
	return ok;
}

/* Take r out of the queue if no download thread has started it: 1 if so. */
static int dl_unqueue(struct gd_be *g, struct gd_fetch *r)
{
	pthread_mutex_lock(&g->dl_lock);
	int taken = r->queued;
	if (taken) {
		struct gd_fetch **pp = &g->dl_head, *prev = NULL;
		while (*pp != r) {
			prev = *pp;
			pp = &(*pp)->qnext;
		}
		*pp = r->qnext;
		if (g->dl_tail == r)
			g->dl_tail = prev;
		r->queued = 0;
	}
	pthread_mutex_unlock(&g->dl_lock);
	return taken;
}

static int fetch(struct gd_be *g, struct gd_file *f, uint64_t off, uint64_t n, uint64_t ra,
		 uint64_t ra_n);

/* Hand the blocks of [off, off+n) that are neither cached nor in flight
 * to the download threads, in GETs of RA_REQ aligned to it (f->lock).
 * Without download threads (scsctl), fetch them now, best effort. */
static void read_ahead(struct gd_be *g, struct gd_file *f, uint64_t off, uint64_t n)
{
	if (f->have_all || off >= f->remote_size || !n ||
	    __atomic_load_n(&g->offline, __ATOMIC_RELAXED))
		return;
	if (!__atomic_load_n(&g->ndl, __ATOMIC_RELAXED)) {
		(void)fetch(g, f, off, n, 0, 0);
		return;
	}
	uint64_t end = n > f->remote_size - off ? f->remote_size : off + n;
	const size_t per = RA_REQ / BLK;
	size_t last = (size_t)((end - 1) / BLK);
	for (size_t c = (size_t)(off / BLK) / per * per; c <= last; c += per) {
		size_t ce = c + per - 1 < f->nblocks - 1 ? c + per - 1 : f->nblocks - 1;
		for (size_t i = c; i <= ce; i++) {
			if (HAVE(f, i) || in_flight(f, i))
				continue;
			struct gd_fetch *r = fetch_new(f, i, ce, RA_REQ);
			if (!r)
				return;
			r->pinned = 1;
			pin(g, f);
			if (!dl_queue(g, r)) {
				fetch_end(r);
				unpin(g, f);
				return;
			}
			i = r->e;
		}
	}
}

/* Make [off, off+n) of the remote object present in the cache (n is
 * clipped to the object), and hand [ra, ra+ra_n) to the read-ahead (unless
 * the content changed meanwhile): to the download threads once this
 * read's own first GET is claimed, else (fetched here) after it.  Fetches
 * what it needs that is not in flight (or only queued) itself, and waits
 * only for the rest.  f->lock held (released while waiting or fetching). */
static int fetch(struct gd_be *g, struct gd_file *f, uint64_t off, uint64_t n, uint64_t ra,
		 uint64_t ra_n)
{
	uint64_t gen = f->gen;
	size_t b, e;
	while (missing(f, off, n, &b, &e)) {
		if (f->gen != gen)
			ra_n = 0;
		struct gd_fetch *r = NULL;
		for (size_t i = b; i <= e && !r; i++) {
			if (HAVE(f, i))
				continue;
			struct gd_fetch *w = in_flight(f, i);
			if (!w) {
				if (!(r = fetch_new(f, i, e, FETCH_MAX)))
					return -ENOMEM;
			} else if (w->pinned && dl_unqueue(g, w)) {
				r = w;          /* not started yet: ours now */
			} else {
				i = w->e;       /* running: wait for it (below) */
			}
		}
		if (ra_n && __atomic_load_n(&g->ndl, __ATOMIC_RELAXED)) {
			read_ahead(g, f, ra, ra_n);
			ra_n = 0;
		}
		if (!r) {
			pthread_cond_wait(&f->fetched, &f->lock);
			continue;
		}
		int pinned = r->pinned;
		pthread_mutex_unlock(&f->lock);
		int rr = fetch_run(g, r, NULL);
		if (pinned)
			unpin(g, f);
		if (rr < 0)
			return rr;
	}
	if (ra_n && f->gen == gen)
		read_ahead(g, f, ra, ra_n);
	return 0;
}

static int fetch_all(struct gd_be *g, struct gd_file *f)
{
	if (f->have_all)
		return 0;
	int r = fetch(g, f, 0, UINT64_MAX, 0, UINT64_MAX);
	if (!r)
		f->have_all = 1;
	return r;
}

/* A download thread: runs queued read-aheads until the pool stops. */
static void *downloader(void *arg)
{
	struct gd_be *g = arg;
	uint8_t *buf = malloc(RA_REQ);
	if (!buf)
		return NULL;     /* (reads take what is queued themselves) */
	pthread_mutex_lock(&g->dl_lock);
	for (;;) {
		while (!g->dl_head && !g->dl_stop)
			pthread_cond_wait(&g->dl_cv, &g->dl_lock);
		if (g->dl_stop)
			break;
		struct gd_fetch *r = g->dl_head;
		g->dl_head = r->qnext;
		if (!g->dl_head)
			g->dl_tail = NULL;
		r->queued = 0;
		pthread_mutex_unlock(&g->dl_lock);
		struct gd_file *f = r->f;
		(void)fetch_run(g, r, buf);
		pthread_mutex_unlock(&f->lock);
		unpin(g, f);
		pthread_mutex_lock(&g->dl_lock);
	}
	pthread_mutex_unlock(&g->dl_lock);
	free(buf);
	return NULL;
}

static int pool_start(struct gd_be *g, scs_err *err)
{
	unsigned n = g->opts.download_parallel ? g->opts.download_parallel : DL_DEFAULT;
	if (n > DL_MAX)
		n = DL_MAX;
	while (g->ndl < n) {
		int r = pthread_create(&g->dl_th[g->ndl], NULL, downloader, g);
		if (r)
			return scs_err_set(err, -r, "cannot start the download threads: %s",
					   strerror(r));
		__atomic_store_n(&g->ndl, g->ndl + 1, __ATOMIC_RELAXED);
	}
	return 0;
}

/* Unmount: queued read-aheads are dropped, running ones end, the
 * threads go. */
static void pool_stop(struct gd_be *g)
{
	pthread_mutex_lock(&g->dl_lock);
	g->dl_stop = 1;
	struct gd_fetch *q = g->dl_head;
	g->dl_head = g->dl_tail = NULL;
	for (struct gd_fetch *r = q; r; r = r->qnext)
		r->queued = 0;
	pthread_cond_broadcast(&g->dl_cv);
	pthread_mutex_unlock(&g->dl_lock);
	while (q) {
		struct gd_fetch *r = q;
		struct gd_file *f = r->f;
		q = r->qnext;
		pthread_mutex_lock(&f->lock);
		fetch_end(r);
		pthread_mutex_unlock(&f->lock);
		unpin(g, f);
	}
	for (unsigned i = 0; i < g->ndl; i++)
		pthread_join(g->dl_th[i], NULL);
	__atomic_store_n(&g->ndl, 0, __ATOMIC_RELAXED);
}

static void file_unref(struct gd_be *g, struct gd_file *f)
{
	pthread_mutex_lock(&g->lock);
	if (!--f->refs && local_only(f))
		pthread_cond_broadcast(&g->cond);    /* (pend_replace may wait for it) */
	file_trim(g);
	pthread_mutex_unlock(&g->lock);
}

static uint64_t journal_made(struct gd_be *g, const char *id);
static void status_now(struct gd_be *g);

/* The metadata of a new file made here while Drive is unreachable. */
static void made_here(struct scs_gdrive_meta *m, const char *id, const char *pid,
		      const char *base, uint32_t perm, int link)
{
	memset(m, 0, sizeof *m);
	m->is_link = link;
	strcpy(m->id, id);
	snprintf(m->name, sizeof m->name, "%s", base);
	strcpy(m->parent, pid);
	m->perm = perm & 07777;
	m->has_perm = 1;
	clock_gettime(CLOCK_REALTIME, &m->mtime);
	m->atime = m->mtime;
}

/* gd_open; link: a new entry is a symbolic link (made offline: its
 * target is the content written). */
static int open_obj(scs_backend *be, const char *path, int flags, uint32_t mode, int link,
		    scs_obj **out)
{
	struct gd_be *g = GB(be);
	*out = NULL;
	struct scs_gdrive_meta *m = malloc(sizeof *m);
	struct gd_obj *o = calloc(1, sizeof *o);
	char pid[SCS_GDRIVE_ID_MAX + 1];
	int r = (m && o) ? resolve(g, path, m, pid) : -ENOMEM, queued = 0;
	uint64_t made = 0;
	if (r == 0 && (flags & O_CREAT) && (flags & O_EXCL))
		r = -EEXIST;
	else if (r == 0 && (m->is_dir || m->is_link))
		r = m->is_dir ? -EISDIR : -ELOOP;
	else if (r == -ENOENT && (flags & O_CREAT)) {
		const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
		char id[SCS_GDRIVE_ID_MAX + 1];
		r = create_meta(g, pid, base, NULL, mode ? mode : 0644, link, id, &queued);
		if (!r && queued)
			made_here(m, id, pid, base, mode ? mode : 0644, link);
		else if (!r && link)
			r = -EIO;       /* (never: a link is always made here first) */
		else if (!r) {
			made = journal_made(g, id);
			r = get_meta(g, id, m);
		}
	}
	if (r == 0) {
		pthread_mutex_lock(&g->lock);
		r = file_get(g, m, path, &o->f);
		o->writer = r == 0 && (flags & O_ACCMODE) != O_RDONLY;
		if (o->writer)
			o->f->writers++;
		if (r == 0 && made)
			o->f->cseq = made;     /* (kept in the journal until its first P) */
		if (r == 0 && queued) {
			/* dirty from the start: its close journals it */
			o->f->pend_create = 1;
			g->nlocal++;
			o->f->dirty = 1;
			o->f->wseq++;
		}
		pthread_mutex_unlock(&g->lock);
		if (queued) {
			own_put(g, m->id, pid, m->name, 0, 1);
			memo_put(g, path, m, pid);
			scs_log(SCS_LOG_DEBUG, "gdrive: %s made offline as %s", path, m->id);
			keep_chain(g, path, pid);
		}
	}
	if (r == 0 && (flags & O_TRUNC) && (flags & O_ACCMODE) != O_RDONLY) {
		struct gd_file *f = o->f;
		pthread_mutex_lock(&f->lock);
		map_forget(g, f);
		if (ftruncate(f->fd, 0) < 0) {
			r = -errno;
		} else {
			f->have_all = 1;
			if (f->size != 0) {
				f->dirty = 1;
				f->wseq++;
			}
			__atomic_store_n(&f->size, 0, __ATOMIC_RELAXED);
		}
		pthread_mutex_unlock(&f->lock);
	}
	free(m);
	if (r < 0) {
		if (o && o->f) {
			pthread_mutex_lock(&g->lock);
			o->f->writers -= o->writer;
			pthread_mutex_unlock(&g->lock);
			file_unref(g, o->f);
		}
		free(o);
		return r;
	}
	o->o.be = be;
	*out = &o->o;
	return 0;
}

static int gd_open(scs_backend *be, const char *path, int flags, uint32_t mode, scs_obj **out)
{
	return open_obj(be, path, flags, mode, 0, out);
}

static ssize_t gd_pread(scs_obj *so, void *buf, size_t n, uint64_t off)
{
	struct gd_obj *o = (struct gd_obj *)so;
	struct gd_file *f = o->f;
	pthread_mutex_lock(&f->lock);
	ssize_t ret;
	if (off >= f->size) {
		ret = 0;
		goto out;
	}
	if (n > f->size - off)
		n = (size_t)(f->size - off);
	/* Sequential reads fetch ahead in the background, in a window that
	 * doubles with each read that goes on past where the last one ended
	 * (the kernel's parallel reads come a little out of order; a read
	 * again of what was read, as of the header at each open, is not a
	 * step forward): with a network latency per request, fetching only
	 * what each read needs would bound the rate. */
	if (f->ra_next && off <= f->ra_next + RA_NEAR && off + n + RA_NEAR >= f->ra_next) {
		if (off + n > f->ra_next)
			f->ra_win = f->ra_win ? (f->ra_win * 2 > RA_MAX ? RA_MAX : f->ra_win * 2)
					      : 2 * BLK;
	} else {
		f->ra_win = 0;
	}
	if (off + n > f->ra_next || !f->ra_win)
		f->ra_next = off + n;
	int r = fetch(GB(so->be), f, off, n, off + n, f->ra_win);
	if (r < 0) {
		ret = r;
		goto out;
	}
	/* (the object may have switched to a new version meanwhile) */
	if (off >= f->size) {
		ret = 0;
		goto out;
	}
	if (n > f->size - off)
		n = (size_t)(f->size - off);
	size_t done = 0;
	while (done < n) {
		ssize_t k = pread(f->fd, (char *)buf + done, n - done, (off_t)(off + done));
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			ret = -errno;
			goto out;
		}
		if (k == 0) {
			memset((char *)buf + done, 0, n - done);   /* sparse tail after a truncate-up */
			done = n;
			break;
		}
		done += (size_t)k;
	}
	ret = (ssize_t)done;
out:
	pthread_mutex_unlock(&f->lock);
	return ret;
}

static ssize_t gd_pwrite(scs_obj *so, const void *buf, size_t n, uint64_t off)
{
	struct gd_obj *o = (struct gd_obj *)so;
	struct gd_file *f = o->f;
	pthread_mutex_lock(&f->lock);
	int r = fetch_all(GB(so->be), f);
	map_forget(GB(so->be), f);
	if (!r)
		r = pwrite_all(f->fd, buf, n, off);
	if (!r) {
		f->dirty = 1;
		f->wseq++;
		if (off + n > f->size)
			__atomic_store_n(&f->size, off + n, __ATOMIC_RELAXED);
	}
	pthread_mutex_unlock(&f->lock);
	return r < 0 ? r : (ssize_t)n;
}

static int gd_ftruncate(scs_obj *so, uint64_t size)
{
	struct gd_obj *o = (struct gd_obj *)so;
	struct gd_file *f = o->f;
	pthread_mutex_lock(&f->lock);
	int r = fetch_all(GB(so->be), f);
	map_forget(GB(so->be), f);
	if (!r && ftruncate(f->fd, (off_t)size) < 0)
		r = -errno;
	if (!r) {
		if (size != f->size) {
			f->dirty = 1;
			f->wseq++;
		}
		__atomic_store_n(&f->size, size, __ATOMIC_RELAXED);
	}
	pthread_mutex_unlock(&f->lock);
	return r;
}

/* The first size bytes of fd (small objects) into *data (freed by the caller). */
static int read_head(int fd, uint64_t size, uint8_t **data)
{
	*data = malloc(size ? size : 1);
	int r = *data ? 0 : -ENOMEM;
	size_t done = 0;
	while (!r && done < size) {
		ssize_t k = pread(fd, *data + done, size - done, (off_t)done);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			r = k < 0 ? -errno : -EIO;
		else
			done += (size_t)k;
	}
	return r;
}

/* meta_json (NULL: none) that also clears PEND_KEY, malloc'd: the request
 * that brings a new file's content makes it visible to the others (Drive
 * deletes a property set to null; for one not set, it changes nothing). */
static char *unmark_json(const char *meta_json)
{
	json_t *j = meta_json ? json_loads(meta_json, 0, NULL) : json_object();
	json_t *ap = json_is_object(j) ? json_object_get(j, "appProperties") : NULL;
	if (json_is_object(j) && !json_is_object(ap)) {
		ap = json_object();
		if (json_object_set_new(j, "appProperties", ap) < 0)
			ap = NULL;
	}
	char *s = NULL;
	if (json_is_object(ap) && json_object_set_new(ap, PEND_KEY, json_null()) == 0)
		s = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	return s;
}

/* size bytes of fd as id's new content (m: the new metadata), with
 * meta_json, and the pending mark cleared in the same request. */
static int upload_fd(struct gd_be *g, const char *id, int fd, uint64_t size,
		     const char *meta_json, struct scs_gdrive_meta *m)
{
	char *meta = unmark_json(meta_json);
	if (!meta)
		return -ENOMEM;
	int r;
	if (size > MULTIPART_MAX) {
		r = upload_resumable(g, id, fd, size, meta, m);
	} else {
		uint8_t *data;
		r = read_head(fd, size, &data);
		if (!r)
			r = upload_multipart(g, id, meta, 0, data, size, m);
		free(data);
	}
	free(meta);
	return r;
}

/* What Drive now holds of f: size, version and rev. f->lock held. */
static int uploaded(struct gd_file *f, uint64_t size, const struct scs_gdrive_meta *m)
{
	f->remote_size = size;
	f->version = m->version;
	strcpy(f->rev, m->rev);
	f->meta = *m;
	f->have_all = 1;
	free(f->have);
	f->nblocks = 0;
	f->have = calloc(1, 1);
	return f->have ? 0 : -ENOMEM;
}

/* Upload f if dirty, now (without the write-back cache).  f->lock held. */
static int flush_locked(struct gd_be *g, struct gd_file *f)
{
	if (!f->dirty)
		return 0;
	struct scs_gdrive_meta *m = malloc(sizeof *m);
	if (!m)
		return -ENOMEM;
	int r;
	uint64_t size = f->size;
	if (ftruncate(f->fd, (off_t)size) < 0) {   /* the file is exactly the object */
		free(m);
		return -errno;
	}
	r = upload_fd(g, f->id, f->fd, size, NULL, m);
	if (r == -ENOENT) {
		/* Deleted on Drive (unlinked while open): nothing to keep. */
		f->dirty = 0;
		r = 0;
	} else if (r == 0) {
		f->dirty = 0;
		mine_done(g, f->id, 0);
		r = uploaded(f, size, m);
	}
	free(m);
	return r;
}

/* ---- the journal of pending uploads ---- */

static int write_all_fd(int fd, const void *buf, size_t n)
{
	const char *p = buf;
	while (n) {
		ssize_t k = write(fd, p, n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return k < 0 ? -errno : -EIO;
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

/* Append records (one write, then fdatasync): durable when it returns 0. */
static int journal_write(struct gd_be *g, struct scs_gdrive_jrec *r, size_t n, int sync)
{
	char *buf = malloc(n * SCS_GDRIVE_JLINE_MAX);
	if (!buf)
		return -ENOMEM;
	size_t len = 0;
	int ret = 0;
	pthread_mutex_lock(&g->jlock);
	for (size_t i = 0; i < n && !ret; i++) {
		if (!r[i].seq)
			r[i].seq = ++g->seq;
		int k = scs_gdrive_journal_line(&r[i], buf + len, SCS_GDRIVE_JLINE_MAX);
		if (k < 0)
			ret = k;
		else
			len += (size_t)k;
	}
	if (!ret)
		ret = write_all_fd(g->jfd, buf, len);
	if (!ret && sync && fdatasync(g->jfd) < 0)
		ret = -errno;
	if (!ret)
		g->jsize += len;
	pthread_mutex_unlock(&g->jlock);
	free(buf);
	if (ret < 0)
		scs_log(SCS_LOG_ERR, "gdrive: cannot write the upload journal in %s: %s", g->cache_dir,
			strerror(-ret));
	return ret;
}

static int journal_append(struct gd_be *g, struct scs_gdrive_jrec *r, size_t n)
{
	return journal_write(g, r, n, 1);
}

/* A C record: id, a new regular file, is on Drive now, marked empty; its
 * seq, or 0.  Not synced: it matters if scsfs dies before the file's first
 * close, whose P record is (the page cache outlives a kill -9). */
static uint64_t journal_made(struct gd_be *g, const char *id)
{
	struct scs_gdrive_jrec c;
	memset(&c, 0, sizeof c);
	c.type = 'C';
	strcpy(c.id, id);
	return g->wb && journal_write(g, &c, 1, 0) == 0 ? c.seq : 0;
}

/* A D record: what was queued for f up to seq is done (or dropped).
 * f->lock held. */
static int journal_d(struct gd_be *g, const struct gd_file *f, uint64_t seq)
{
	struct scs_gdrive_jrec d;
	memset(&d, 0, sizeof d);
	d.type = 'D';
	d.seq = seq;
	strcpy(d.id, f->id);
	/* what Drive has of its content (a later P of it is based on that) */
	d.version = f->version;
	strcpy(d.rev, f->rev);
	return journal_append(g, &d, 1);
}

/* A P record of f (f->lock held; the path is under g->lock). */
static void jrec_p(struct gd_be *g, struct scs_gdrive_jrec *r, const struct gd_file *f)
{
	memset(r, 0, sizeof *r);
	r->type = 'P';
	strcpy(r->id, f->id);
	r->version = f->version;
	strcpy(r->rev, f->rev);
	pthread_mutex_lock(&g->lock);
	if (f->path && strlen(f->path) < sizeof r->path)
		strcpy(r->path, f->path);
	pthread_mutex_unlock(&g->lock);
}

/* An N record of f (f->lock held; the rest under g->lock). */
static void jrec_n(struct gd_be *g, struct scs_gdrive_jrec *r, const struct gd_file *f)
{
	jrec_p(g, r, f);
	r->type = 'N';
	pthread_mutex_lock(&g->lock);
	r->version = (f->meta.is_dir ? S_IFDIR : f->meta.is_link ? S_IFLNK : 0) |
		     (f->meta.perm & 07777);
	strcpy(r->rev, f->meta.parent);
	pthread_mutex_unlock(&g->lock);
}

/* Where a file made offline is to be created changed (a rename, a chmod):
 * journaled if it was already.  f->lock held. */
static int pend_note(struct gd_be *g, struct gd_file *f)
{
	if (!f->cseq)
		return 0;      /* its first close writes it */
	struct scs_gdrive_jrec *r = malloc(sizeof *r);
	if (!r)
		return -ENOMEM;
	jrec_n(g, r, f);
	int ret = journal_append(g, r, 1);
	if (!ret)
		f->cseq = r->seq;
	free(r);
	return ret;
}

/* mkdir(2) while Drive is unreachable (or in a folder made so): the
 * folder is made here, journaled (N) and queued; the uploader creates it. */
static int dir_made_here(struct gd_be *g, const char *path, const char *id, const char *pid,
			 const char *base, uint32_t perm)
{
	struct gd_file *f = file_new();
	struct scs_gdrive_jrec *jr = malloc(sizeof *jr);
	int r = f && jr && (f->have = calloc(1, 1)) && (f->path = strdup(path)) ? 0 : -ENOMEM;
	if (!r) {
		strcpy(f->id, id);
		made_here(&f->meta, id, pid, base, perm, 0);
		f->meta.is_dir = 1;
		f->have_all = 1;
		jrec_n(g, jr, f);
		r = journal_append(g, jr, 1);
	}
	if (r < 0) {
		mine_done(g, id, 1);
		if (f)
			file_free(g, f);
		free(jr);
		return r;
	}
	pthread_mutex_lock(&g->lock);
	f->pend_create = 1;
	f->cseq = f->jseq = jr->seq;
	f->due = time(NULL) + (time_t)(g->opts.upload_delay + 0.999);
	f->next = g->files;
	g->files = f;
	g->nlocal++;
	g->status_gen++;
	pthread_cond_broadcast(&g->cond);
	pthread_mutex_unlock(&g->lock);
	free(jr);
	status_now(g);
	own_put(g, id, pid, base, 0, 1);
	memo_put(g, path, &f->meta, pid);
	memo_listed(g, path);       /* (empty, and known to be) */
	scs_log(SCS_LOG_DEBUG, "gdrive: folder %s made offline as %s", path, id);
	keep_chain(g, path, pid);
	return 0;
}

/* Make f's changes durable here and queue their upload.  f->lock held. */
static int journal_locked(struct gd_be *g, struct gd_file *f)
{
	if (!f->dirty || (f->pseq && f->wseq == f->jwseq) ||
	    __atomic_load_n(&f->deleted, __ATOMIC_RELAXED))   /* unlinked: nothing to keep */
		return 0;
	if (ftruncate(f->fd, (off_t)f->size) < 0 || fdatasync(f->fd) < 0) {
		int r = -errno;
		scs_log(SCS_LOG_ERR, "gdrive: cannot save %s in the cache %s: %s", f->id,
			g->cache_dir, strerror(-r));
		return r;
	}
	if (!f->pseq)
		(void)fsync(g->obj_dfd);   /* the cache file's name, once */
	/* a file made offline: where to create it, then what goes in it */
	pthread_mutex_lock(&g->lock);
	int nrec = f->pend_create && !f->cseq ? 2 : 1;
	pthread_mutex_unlock(&g->lock);
	struct scs_gdrive_jrec *rs = malloc(2 * sizeof *rs), *r = rs + nrec - 1;
	if (!rs)
		return -ENOMEM;
	if (nrec == 2)
		jrec_n(g, rs, f);
	jrec_p(g, r, f);
	int ret = journal_append(g, rs, (size_t)nrec);
	if (!ret) {
		uint64_t w = f->wseq;
		pthread_mutex_lock(&g->lock);
		if (nrec == 2)
			f->cseq = rs->seq;
		f->jseq = f->pseq = r->seq;
		f->jwseq = w;
		f->due = time(NULL) + (time_t)(g->opts.upload_delay + 0.999);
		f->failures = 0;
		g->status_gen++;
		pthread_cond_broadcast(&g->cond);
		pthread_mutex_unlock(&g->lock);
		status_now(g);
	}
	free(rs);
	return ret;
}

static void md5_fd(int fd, uint64_t size, char out[33])
{
	uint8_t buf[65536], h[EVP_MAX_MD_SIZE];
	unsigned hl = 0;
	out[0] = '\0';
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	if (!c || !EVP_DigestInit_ex(c, EVP_md5(), NULL)) {
		EVP_MD_CTX_free(c);
		return;
	}
	for (uint64_t off = 0; off < size;) {
		size_t want = size - off > sizeof buf ? sizeof buf : (size_t)(size - off);
		ssize_t k = pread(fd, buf, want, (off_t)off);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			EVP_MD_CTX_free(c);
			return;
		}
		EVP_DigestUpdate(c, buf, (size_t)k);
		off += (uint64_t)k;
	}
	if (EVP_DigestFinal_ex(c, h, &hl) && hl == 16)
		scs_hex_encode(h, 16, out);
	EVP_MD_CTX_free(c);
}

/* Drive's current version, rev and md5 of id. */
static int remote_state(struct gd_be *g, const char *id, struct scs_gdrive_meta *m, char md5[33])
{
	char url[SCS_URL_MAX + 256];
	snprintf(url, sizeof url, "%s/files/%s?supportsAllDrives=true&fields=id,name,version,"
		 "headRevisionId,md5Checksum,size,trashed,appProperties", g->ep.api, id);
	json_t *j = NULL;
	int r = get_json(g, url, &j);
	if (r < 0)
		return r;
	md5[0] = '\0';
	r = meta_from_json(j, m);
	const char *h = json_string_value(json_object_get(j, "md5Checksum"));
	if (h && strlen(h) == 32)
		strcpy(md5, h);
	if (!r && json_is_true(json_object_get(j, "trashed")))
		r = -ENOENT;
	json_decref(j);
	return r;
}

/* Store the snapshot as a new object at path (a conflict copy). */
static int create_at(struct gd_be *g, const char *path, int fd, uint64_t size, uint32_t perm,
		     struct scs_gdrive_meta *m)
{
	char parent[SCS_PATH_MAX], pid[SCS_GDRIVE_ID_MAX + 1], id[SCS_GDRIVE_ID_MAX + 1];
	const char *base;
	split(path, parent, sizeof parent, &base);
	int r = resolve_dir(g, parent, pid);
	if (r < 0)
		return r;
	if (size <= MULTIPART_MAX) {
		r = next_id(g, id);
		if (r < 0)
			return r;
		char pm[8];
		snprintf(pm, sizeof pm, "%o", perm & 07777);
		json_t *j = json_pack("{s:s, s:s, s:[s], s:{s:s}}", "id", id, "name", base,
				      "parents", pid, "appProperties", "m", pm);
		char *meta = j ? json_dumps(j, JSON_COMPACT) : NULL;
		json_decref(j);
		uint8_t *data = NULL;
		r = meta ? read_head(fd, size, &data) : -ENOMEM;
		if (!r)
			r = upload_multipart(g, id, meta, 1, data, size, m);
		free(meta);
		free(data);
		return r;
	}
	r = create_meta(g, pid, base, NULL, perm, 0, id, NULL);
	if (!r)
		r = upload_fd(g, id, fd, size, NULL, m);
	if (!r)
		mine_done(g, id, 0);
	return r;
}

/* A copy of f's cache file as it is now (reflinked where the file system
 * can), so writers go on while it uploads.  f->lock held. */
static int snapshot(struct gd_be *g, struct gd_file *f, uint64_t size)
{
	int sfd = openat(g->obj_dfd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (sfd < 0)
		return -errno;
	loff_t in = 0, out = 0;
	while ((uint64_t)in < size) {
		ssize_t k = copy_file_range(f->fd, &in, sfd, &out, (size_t)(size - (uint64_t)in), 0);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			/* EXDEV/ENOSYS on old kernels: plain copy */
			uint8_t buf[65536];
			ssize_t n = pread(f->fd, buf, sizeof buf < size - (uint64_t)in ? sizeof buf :
					  (size_t)(size - (uint64_t)in), in);
			if (n <= 0 || write_all_fd(sfd, buf, (size_t)n) < 0) {
				int r = n < 0 ? -errno : -EIO;
				close(sfd);
				return r;
			}
			in += n;
			out += n;
		}
	}
	if (ftruncate(sfd, (off_t)size) < 0) {
		int r = -errno;
		close(sfd);
		return r;
	}
	return sfd;
}

static void kernel_changed(struct gd_be *g, const char *path)
{
	if (g->be.hooks.changed && path)
		g->be.hooks.changed(g->be.hooks.arg, path, SCS_BE_CHANGED_CONTENT);
}

/* The path of the entry name in folder pid into out, following folders
 * made offline up to one whose path is known.  g->lock held. */
static int pend_path_locked(struct gd_be *g, const char *pid, const char *name, char *out,
			    size_t cap, int depth)
{
	struct gd_file *pf;
	if (!dir_path_locked(g, pid, out, cap) &&
	    (depth > 256 || !(pf = pend_locked(g, pid)) ||
	     !pend_path_locked(g, pf->meta.parent, pf->meta.name, out, cap, depth + 1)))
		return 0;
	size_t l = strlen(out);
	return snprintf(out + l, cap - l, "%s%s", l ? "/" : "", name) < (int)(cap - l);
}

/* Where f is to be: its own folder and name (g->lock held), for what was
 * made offline and what was moved offline (a queued move). */
static int placed_here(const struct gd_file *f)
{
	return local_only(f) || moving(f);
}

/* f's path as it is now (malloc'd; NULL if unknown), for the hooks: what
 * Drive has may have moved under it (a re-key pass elsewhere renames every
 * folder; after a restart the path its last record gave may be behind:
 * then Drive is asked where it is, by its id), and what was made or moved
 * offline is where its folder and name say.  Nothing of what this mount
 * knows changes. */
static char *where_now(struct gd_be *g, struct gd_file *f)
{
	struct scs_gdrive_meta *m = malloc(sizeof *m);
	char *p = malloc(SCS_PATH_MAX);
	if (!m || !p) {
		free(m);
		free(p);
		return NULL;
	}
	pthread_mutex_lock(&g->lock);
	struct gd_ent *e = placed_here(f) ? NULL : ent_find(g, f->id);
	int got = placed_here(f) ? pend_path_locked(g, f->meta.parent, f->meta.name, p,
						    SCS_PATH_MAX, 0)
		: e && ent_path_locked(g, e->pid, e->name, e->dup, f->id, p, SCS_PATH_MAX);
	int ask = !got && !placed_here(f) && !f->deleted && f->path;
	if (!got && f->path && strlen(f->path) < SCS_PATH_MAX)
		strcpy(p, f->path);
	else if (!got)
		p[0] = '\0';
	pthread_mutex_unlock(&g->lock);
	if (ask && get_meta_fields(g, f->id, ",parents", m) == 0 && m->parent[0] &&
	    strlen(m->name) < SCS_GDRIVE_NAME_MAX) {
		/* in the folder its path last led to, as likely as not */
		char parent[SCS_PATH_MAX], *q = strdup(p);
		const char *base;
		if (q) {
			split(q, parent, sizeof parent, &base);
			pthread_mutex_lock(&g->lock);
			if (!pend_path_locked(g, m->parent, m->name, p, SCS_PATH_MAX, 0) &&
			    snprintf(p, SCS_PATH_MAX, "%s%s%s", parent, parent[0] ? "/" : "",
				     m->name) >= SCS_PATH_MAX)
				strcpy(p, q);
			pthread_mutex_unlock(&g->lock);
			free(q);
		}
	}
	free(m);
	if (!p[0]) {
		free(p);
		return NULL;
	}
	return p;
}

/* Ask the core whether what is about to go out, or just went, is in the
 * group's current epoch (backend.h, hooks.upload): f at path, its content
 * the size bytes of fd (-1: none).  No lock held. */
static int epoch_hook(struct gd_be *g, struct gd_file *f, int when, const char *path, int fd,
		      uint64_t size, unsigned flags)
{
	if (!g->be.hooks.upload || !path)
		return 0;
	pthread_mutex_lock(&g->lock);
	if (f->writers > 0)
		flags |= SCS_BE_UP_OPEN;
	uint32_t mode = f->meta.has_perm ? f->meta.perm : 0644;
	pthread_mutex_unlock(&g->lock);
	struct scs_be_upload u = { .when = when, .path = path, .fd = fd, .size = size,
				   .mode = mode, .flags = flags };
	return g->be.hooks.upload(g->be.hooks.arg, &u);
}

/* The same for f where it is now (fd: its cache file, a link's target). */
static int folder_gone_back(struct gd_be *g, struct gd_file *f, int once);

static int epoch_hook_here(struct gd_be *g, struct gd_file *f, int when, int fd, uint64_t size,
			   unsigned flags)
{
	/* (the core cannot read the id of a folder deleted on Drive meanwhile:
	 * looked at once before, and again if the core cannot) */
	if (when == SCS_BE_UP_CREATE)
		(void)folder_gone_back(g, f, 1);
	char *path = where_now(g, f);
	int h = epoch_hook(g, f, when, path, fd, size, flags);
	free(path);
	if (h == -EAGAIN && when == SCS_BE_UP_CREATE && folder_gone_back(g, f, 0) == 1) {
		path = where_now(g, f);
		h = epoch_hook(g, f, when, path, fd, size, flags);
		free(path);
	}
	return h;
}

/* ---- folders brought back ----
 * A file, folder or link made while Drive was unreachable goes in a folder
 * Drive has (or in one made offline too, in one Drive has).  If another
 * member deletes that folder (or one above it) before Drive is back, its
 * creation finds no folder to go in.  Nothing of it is to be lost: the
 * folders are made again, with their names and .scsdir objects (the
 * directory id the names in them are encrypted with, scsfs-format(5)), and
 * hold only what this mount made there.  So when the first entry is made
 * offline below a folder, the folder and those above it (their names,
 * modes and .scsdir content, as this mount saw them) are kept in
 * cache_dir/keep (the snapshot format, written beside then renamed) until
 * nothing made offline waits; bringing one back is done by path and is
 * idempotent: a folder of that name holding the same .scsdir is taken for
 * the one brought back before (a retry, the next mount). */
#define KEEP_DIRID_MAX 64               /* a folder's .scsdir (smaller: scsfs-format(5)) */

struct gd_keep {
	char *path;
	char pid[SCS_GDRIVE_ID_MAX + 1];
	struct scs_gdrive_meta m;        /* the folder as seen (m.id: on Drive then) */
	char now[SCS_GDRIVE_ID_MAX + 1]; /* its id on Drive now, once known */
	uint8_t dirid[KEEP_DIRID_MAX];   /* its .scsdir */
	size_t len;
	int looked;                      /* asked Drive whether it still has it */
};

#define KEEP_MAX 4096                   /* folders kept at once */

static void keep_free(struct gd_be *g)
{
	for (size_t i = 0; i < g->nkeep; i++) {
		free(g->keep[i]->path);
		free(g->keep[i]);
	}
	free(g->keep);
	g->keep = NULL;
	g->nkeep = 0;
}

static void keep_file(struct gd_be *g, char *out, size_t cap)
{
	snprintf(out, cap, "%s/keep", g->cache_dir);
}

/* keep_lock held. */
static struct gd_keep *keep_find(struct gd_be *g, const char *path, const char *id)
{
	for (size_t i = 0; i < g->nkeep; i++)
		if (path ? !strcmp(g->keep[i]->path, path) : !strcmp(g->keep[i]->m.id, id))
			return g->keep[i];
	return NULL;
}

static int keep_add(struct gd_be *g, const char *path, const char *pid,
		    const struct scs_gdrive_meta *m, const uint8_t *dirid, size_t len)
{
	if (g->nkeep >= KEEP_MAX || len > KEEP_DIRID_MAX || !m->id[0])
		return -ENOSPC;
	struct gd_keep **n = realloc(g->keep, (g->nkeep + 1) * sizeof *n);
	if (!n)
		return -ENOMEM;
	g->keep = n;
	struct gd_keep *k = calloc(1, sizeof *k);
	if (!k || !(k->path = strdup(path))) {
		free(k);
		return -ENOMEM;
	}
	n[g->nkeep] = k;
	snprintf(k->pid, sizeof k->pid, "%s", pid);
	k->m = *m;
	memcpy(k->dirid, dirid, len);
	k->len = len;
	g->nkeep++;
	return 0;
}

/* cache_dir/keep from g->keep (keep_lock held). */
static int keep_write(struct gd_be *g)
{
	char path[SCS_PATH_MAX + 16];
	keep_file(g, path, sizeof path);
	struct scs_gdrive_snap sn;
	struct scs_gdrive_snap_ent *x = malloc(sizeof *x);
	int r = x ? scs_gdrive_snap_begin(&sn, g->root_id, "") : -ENOMEM;
	for (size_t i = 0; i < g->nkeep && !r; i++) {
		const struct gd_keep *k = g->keep[i];
		memset(x, 0, sizeof *x);
		snprintf(x->path, sizeof x->path, "%s", k->path);
		strcpy(x->pid, k->pid);
		x->m = k->m;
		x->flags = SCS_GDRIVE_SNAP_DIR | SCS_GDRIVE_SNAP_PERM | SCS_GDRIVE_SNAP_DATA;
		x->data = k->dirid;
		x->len = k->len;
		r = scs_gdrive_snap_add(&sn, x);
	}
	free(x);
	if (!r)
		r = scs_gdrive_snap_end(&sn);
	if (!r)
		r = scs_local_write_atomic(path, sn.buf, sn.len, 0600);
	if (x)
		free(sn.buf);
	return r;
}

static int keep_load_cb(void *arg, const struct scs_gdrive_snap_ent *x)
{
	struct gd_be *g = arg;
	if (!(x->flags & SCS_GDRIVE_SNAP_DIR) || !(x->flags & SCS_GDRIVE_SNAP_DATA) ||
	    !x->path[0] || x->len > KEEP_DIRID_MAX)
		return 0;       /* (never written so) */
	return keep_find(g, x->path, NULL) ? 0 : keep_add(g, x->path, x->pid, &x->m, x->data, x->len);
}

/* At mount: what an earlier one kept (before any upload runs). */
static void keep_load(struct gd_be *g)
{
	char path[SCS_PATH_MAX + 16];
	keep_file(g, path, sizeof path);
	uint8_t *data = NULL;
	size_t len = 0;
	char root[SCS_GDRIVE_ID_MAX + 1], token[SCS_GDRIVE_TOKEN_MAX + 1];
	int r = scs_local_read(path, (size_t)KEEP_MAX * 9000 + 4096, &data, &len);
	if (r == -ENOENT)
		return;
	pthread_mutex_lock(&g->keep_lock);
	if (!r)
		r = scs_gdrive_snap_parse(data, len, root, token, keep_load_cb, g);
	if (r < 0) {
		keep_free(g);
		scs_log(SCS_LOG_WARN, "gdrive: %s cannot be read (%s): a folder deleted on Drive "
			"while something made offline in it waits cannot be made again", path,
			strerror(-r));
	}
	pthread_mutex_unlock(&g->keep_lock);
	free(data);
}

/* Nothing made offline waits any more: nothing to keep. */
static void keep_done(struct gd_be *g)
{
	pthread_mutex_lock(&g->keep_lock);
	size_t n = g->nkeep;
	pthread_mutex_unlock(&g->keep_lock);
	if (!n && g->nworkers)
		return;         /* (at mount: also a file that could not be read) */
	char path[SCS_PATH_MAX + 16];
	keep_file(g, path, sizeof path);
	pthread_mutex_lock(&g->keep_run);     /* (entries stay while one is brought back) */
	pthread_mutex_lock(&g->keep_lock);
	/* (under keep_lock: an entry made offline counts before it is kept) */
	pthread_mutex_lock(&g->lock);
	int idle = g->nlocal == 0;
	pthread_mutex_unlock(&g->lock);
	if (idle && (g->nkeep || access(path, F_OK) == 0)) {
		keep_free(g);
		if (unlink(path) < 0 && errno != ENOENT)
			scs_log(SCS_LOG_WARN, "gdrive: cannot remove %s: %s", path, strerror(errno));
	}
	pthread_mutex_unlock(&g->keep_lock);
	pthread_mutex_unlock(&g->keep_run);
}

/* What this mount saw of the small object at path (no request). */
static int seen_data(struct gd_be *g, const char *path, uint8_t **data, size_t *len)
{
	int r = memo_get_data(g, path, KEEP_DIRID_MAX, data, len);
	struct scs_gdrive_meta *m;
	if (r == -EIO && (m = malloc(sizeof *m))) {
		if (memo_get(g, path, m, NULL) == 0)
			r = local_content(g, m->id, KEEP_DIRID_MAX, data, len, 1);
		free(m);
	}
	return r;
}

/* An entry was made offline at path, in folder pid: if Drive has that
 * folder, it and those above it are kept (those not kept yet). */
static void keep_chain(struct gd_be *g, const char *path, const char *pid_in)
{
	pthread_mutex_lock(&g->lock);
	int local = pend_locked(g, pid_in) != NULL;
	pthread_mutex_unlock(&g->lock);
	if (local)
		return;         /* (kept with the first entry made offline above it) */
	char *dir = malloc(SCS_PATH_MAX), *p = malloc(SCS_PATH_MAX + 16);
	struct scs_gdrive_meta *m = malloc(sizeof *m);
	char pid[SCS_GDRIVE_ID_MAX + 1];
	const char *base;
	int added = 0, r = dir && p && m ? 0 : -ENOMEM;
	if (!r)
		split(path, dir, SCS_PATH_MAX, &base);
	while (!r && dir[0]) {
		pthread_mutex_lock(&g->keep_lock);
		int have = keep_find(g, dir, NULL) != NULL;
		pthread_mutex_unlock(&g->keep_lock);
		if (have)
			break;
		uint8_t *data = NULL;
		size_t len = 0;
		snprintf(p, SCS_PATH_MAX + 16, "%s/%s", dir, SCS_DIRID_FILE);
		r = memo_get(g, dir, m, pid);
		if (!r && !m->is_dir)
			r = -ENOTDIR;
		if (!r)
			r = seen_data(g, p, &data, &len);
		if (!r) {
			pthread_mutex_lock(&g->keep_lock);
			if (!keep_find(g, dir, NULL)) {
				r = keep_add(g, dir, pid, m, data, len);
				added += r == 0;
			}
			pthread_mutex_unlock(&g->keep_lock);
		}
		free(data);
		strcpy(p, dir);
		split(p, dir, SCS_PATH_MAX, &base);
	}
	if (added) {
		pthread_mutex_lock(&g->keep_lock);
		int w = keep_write(g);
		pthread_mutex_unlock(&g->keep_lock);
		if (w < 0)
			r = w;
	}
	if (r < 0)
		scs_log(SCS_LOG_WARN, "gdrive: %s: what it takes to make its folders again, were "
			"they deleted on Drive before it is uploaded, cannot be kept (%s)", path,
			strerror(-r));
	free(dir);
	free(p);
	free(m);
}

static int object_create(struct gd_be *g, const char *id, const char *pid, const char *name,
			 const void *data, size_t len, int link, struct scs_gdrive_meta *out);

/* Folder k (keep_run held): its id on Drive now, made again if it is gone
 * (and those above it first).  0 and id, else -errno (-ENOENT: it cannot
 * be, its folder was not kept). */
static int keep_ensure(struct gd_be *g, struct gd_keep *k, char id[SCS_GDRIVE_ID_MAX + 1], int *made)
{
	struct scs_gdrive_meta *m = malloc(sizeof *m);
	char *parent = malloc(SCS_PATH_MAX);
	char ppid[SCS_GDRIVE_ID_MAX + 1];
	const char *base;
	int r = m && parent ? 0 : -ENOMEM;
	/* still there (wherever it is now) */
	if (!r && (r = get_meta_fields(g, k->now[0] ? k->now : k->m.id, ",parents,trashed", m)) == 0 &&
	    m->is_dir && !m->trashed) {
		strcpy(id, m->id);
		goto out;
	}
	if (r == 0 || r == -ENOENT) {
		split(k->path, parent, SCS_PATH_MAX, &base);
		r = 0;
		if (!parent[0]) {
			strcpy(ppid, g->root_id);
		} else {
			pthread_mutex_lock(&g->keep_lock);
			struct gd_keep *up = keep_find(g, parent, NULL);
			pthread_mutex_unlock(&g->keep_lock);
			r = up ? keep_ensure(g, up, ppid, made) : -ENOENT;
		}
	}
	if (r < 0)
		goto out;
	/* brought back before (a retry, an earlier mount)?  Also one whose
	 * .scsdir did not go in yet (empty: nobody else's) */
	uint8_t *data = NULL;
	size_t len = 0;
	int adopt = 0;
	r = lookup(g, ppid, k->m.name, m);
	if (!r && m->is_dir) {
		struct scs_gdrive_meta *sm = malloc(sizeof *sm);
		int has = sm ? lookup(g, m->id, SCS_DIRID_FILE, sm) : -ENOMEM;
		int same = has == 0 && download_mem(g, sm->id, KEEP_DIRID_MAX, &data, &len) == 0 &&
			   len == k->len && !memcmp(data, k->dirid, len);
		adopt = has == -ENOENT && dir_empty(g, m->id) == 0;
		free(sm);
		free(data);
		if (same) {
			strcpy(id, m->id);
			goto found;
		}
	} else if (r < 0 && r != -ENOENT) {
		goto out;
	}
	/* made again: the folder, then its .scsdir */
	char sid[SCS_GDRIVE_ID_MAX + 1];
	uint64_t v;
	if (adopt)
		strcpy(id, m->id);
	r = adopt ? 0 : next_id(g, id);
	if (!r && !adopt)
		r = post_meta(g, id, ppid, k->m.name, FOLDER_MIME,
			      k->m.has_perm ? k->m.perm : 0755, 0, &v);
	if (!r)
		r = next_id(g, sid);
	if (!r)
		r = object_create(g, sid, id, SCS_DIRID_FILE, k->dirid, k->len, 0, m);
	if (r < 0)
		goto out;
	*made = 1;
	scs_log(SCS_LOG_DEBUG, "gdrive: folder %s made again as %s", k->path, id);
found:
	strcpy(k->now, id);
	dir_cache_put(g, k->path, id);
	notify(g, k->path, SCS_BE_CHANGED_ENTRY);
out:
	free(m);
	free(parent);
	return r;
}

/* Folder pid, which what this mount made offline goes in, is gone from
 * Drive: made again (keep_ensure); what was to go in it goes in the new
 * one.  0 and to, or -errno. */
static int keep_bring_back(struct gd_be *g, const char *pid, char to[SCS_GDRIVE_ID_MAX + 1])
{
	pthread_mutex_lock(&g->keep_run);
	pthread_mutex_lock(&g->keep_lock);
	struct gd_keep *k = keep_find(g, NULL, pid);
	pthread_mutex_unlock(&g->keep_lock);
	int made = 0;
	int r = k ? keep_ensure(g, k, to, &made) : -ENOENT;
	char *path = k ? strdup(k->path) : NULL;
	pthread_mutex_unlock(&g->keep_run);
	if (r == 0) {
		/* what waits to go in the old one goes in this one */
		pthread_mutex_lock(&g->lock);
		for (struct gd_file *f = g->files; f; f = f->next)
			if (local_only(f) && !strcmp(f->meta.parent, pid))
				strcpy(f->meta.parent, to);
		pthread_mutex_unlock(&g->lock);
		if (made)
			scs_log(SCS_LOG_WARN, "gdrive: folder %s was deleted on Drive meanwhile; it is "
				"made again, holding what this mount made in it while Drive was "
				"unreachable", path ? path : pid);
	}
	free(path);
	return r;
}

/* f, made offline, is to go in a folder Drive has: if that folder was
 * deleted on Drive meanwhile, it is made again (1), if it can be.  once:
 * not if it was looked at before. */
static int folder_gone_back(struct gd_be *g, struct gd_file *f, int once)
{
	char pid[SCS_GDRIVE_ID_MAX + 1], to[SCS_GDRIVE_ID_MAX + 1];
	pthread_mutex_lock(&g->lock);
	int ok = local_only(f);
	struct gd_file *up = f;
	/* (the folder Drive has that the folders made offline above it are in) */
	for (int depth = 0; ok && depth < 1000; depth++) {
		struct gd_file *pf = pend_locked(g, up->meta.parent);
		if (!pf)
			break;
		up = pf;
	}
	strcpy(pid, up->meta.parent);
	pthread_mutex_unlock(&g->lock);
	pthread_mutex_lock(&g->keep_lock);
	struct gd_keep *k = ok ? keep_find(g, NULL, pid) : NULL;
	int seen = k && once && k->looked;
	ok = k && !seen;
	if (ok)
		k->looked = 1;
	pthread_mutex_unlock(&g->keep_lock);
	if (seen) {
		/* (looked at, or being brought back by another thread now) */
		pthread_mutex_lock(&g->keep_run);
		pthread_mutex_unlock(&g->keep_run);
	}
	struct scs_gdrive_meta *m = ok ? malloc(sizeof *m) : NULL;
	int r = m ? get_meta_fields(g, pid, ",parents,trashed", m) : -ENOMEM;
	if ((r == 0 && m->trashed) || r == -ENOENT)
		r = keep_bring_back(g, pid, to) == 0 ? 1 : 0;
	else
		r = 0;
	free(m);
	return r;
}

/* Making an entry made offline in folder pid found no such folder on
 * Drive: it is made again if it can be, and pid is the new one (0). */
static int folder_back(struct gd_be *g, char pid[SCS_GDRIVE_ID_MAX + 1])
{
	char to[SCS_GDRIVE_ID_MAX + 1];
	int r = keep_bring_back(g, pid, to);
	if (!r)
		strcpy(pid, to);
	return r;
}

/* f was made while Drive was unreachable: create it there now, where it
 * is to be (metadata first, as for a file made online; the upload that
 * follows sends its content).  0 once Drive has it, and *v/rev: the
 * version to base that upload on. */
static int create_pending(struct gd_be *g, struct gd_file *f, uint64_t *v,
			  char rev[SCS_GDRIVE_REV_MAX + 1]);

/* Folder pid exists on Drive: if it was made here and is not there yet,
 * it is created first (and its own folder before it). */
static int parent_ready(struct gd_be *g, const char *pid)
{
	for (;;) {
		pthread_mutex_lock(&g->lock);
		struct gd_file *pf = pend_locked(g, pid);
		if (pf && pf->creating) {
			pthread_cond_wait(&g->cond, &g->lock);
			pthread_mutex_unlock(&g->lock);
			continue;
		}
		pthread_mutex_unlock(&g->lock);
		if (!pf)
			return 0;
		uint64_t v;
		char rev[SCS_GDRIVE_REV_MAX + 1];
		int r = create_pending(g, pf, &v, rev);
		if (r < 0)
			return r;
	}
}

static int create_pending(struct gd_be *g, struct gd_file *f, uint64_t *v,
			  char rev[SCS_GDRIVE_REV_MAX + 1])
{
	char pid[SCS_GDRIVE_ID_MAX + 1];
	pthread_mutex_lock(&g->lock);
	int ask = local_only(f) && !f->creating;
	pthread_mutex_unlock(&g->lock);
	/* made with the keyring of then: its name in the current epoch before
	 * Drive (and a re-key pass elsewhere) sees it */
	int h = ask ? epoch_hook_here(g, f, SCS_BE_UP_CREATE, -1, 0, SCS_BE_UP_NEW) : 0;
	if (h < 0)
		return h;
	pthread_mutex_lock(&g->lock);
	if (!local_only(f)) {
		pthread_mutex_unlock(&g->lock);
		return 0;
	}
	f->creating = 1;
	strcpy(pid, f->meta.parent);
	char *name = strdup(f->meta.name);
	uint32_t perm = f->meta.perm;
	int is_dir = f->meta.is_dir;
	pthread_mutex_unlock(&g->lock);
	struct scs_gdrive_meta *m = malloc(sizeof *m);
	int r = name && m ? parent_ready(g, pid) : -ENOMEM;
	if (!r)
		r = post_meta(g, f->id, pid, name, is_dir ? FOLDER_MIME : NULL, perm, 0, v);
	if (r == -ENOENT && !(r = folder_back(g, pid)))
		r = post_meta(g, f->id, pid, name, is_dir ? FOLDER_MIME : NULL, perm, 0, v);
	if (r == -ENOENT)
		r = -ESTALE;    /* (not the entry gone: it stays queued) */
	int fetched = r == 0 && !*v;
	if (fetched) {
		/* an earlier attempt made it (its reply was lost): as it is now */
		char md5[33];
		r = remote_state(g, f->id, m, md5);
		if (r == 0)
			*v = m->version;
	}
	if (r == 0)
		strcpy(rev, fetched ? m->rev : "");
	pthread_mutex_lock(&g->lock);
	f->creating = 0;
	if (r == 0 && f->pend_create) {
		f->pend_create = 0;
		g->nlocal--;
	}
	pthread_cond_broadcast(&g->cond);
	pthread_mutex_unlock(&g->lock);
	if (r == 0) {
		pthread_mutex_lock(&f->lock);
		f->version = *v;
		strcpy(f->rev, rev);
		pthread_mutex_unlock(&f->lock);
		scs_log(SCS_LOG_DEBUG, "gdrive: %s, made offline, is on Drive now", f->id);
		keep_done(g);
	} else if (r == -ESTALE) {
		scs_log(SCS_LOG_ERR, "gdrive: %s, made while Drive was unreachable, cannot be "
			"uploaded: its folder was deleted on Drive meanwhile and cannot be made again; "
			"it stays queued in the cache %s",
			name ? name : f->id, g->cache_dir);
	}
	free(m);
	free(name);
	return r;
}

/* Upload what f's journal records ask for.  f->inflight is ours. */
static int upload_one_(struct gd_be *g, struct gd_file *f, uint64_t seq);

static int delete_pending(struct gd_be *g, struct gd_file *f);
static int meta_apply(struct gd_be *g, struct gd_file *f);
static int link_pending(struct gd_be *g, struct gd_file *f, uint64_t seq);
static int under_removal_locked(struct gd_be *g, const struct gd_file *f);

/* f's queued work up to seq reached Drive: journaled (D), and told. */
static int job_done(struct gd_be *g, struct gd_file *f, uint64_t seq)
{
	pthread_mutex_lock(&f->lock);
	int r = journal_d(g, f, seq);
	pthread_mutex_unlock(&f->lock);
	if (!r) {
		pthread_mutex_lock(&g->lock);
		f->dseq = seq;
		g->last_sync = time(NULL);
		g->status_gen++;
		pthread_mutex_unlock(&g->lock);
		keep_done(g);
	}
	return r;
}

/* Everything queued for f up to now: a delete (file or folder); else a
 * folder or link made offline created on Drive (its folder first), what
 * waits of its metadata set, its content uploaded (which carries its
 * times); then done up to the seq read first (what comes meanwhile is
 * done next time). */
static int upload_one(struct gd_be *g, struct gd_file *f)
{
	in_upload = 1;
	pthread_mutex_lock(&g->lock);
	int del = f->pend_delete, dir = f->meta.is_dir;
	int link = local_only(f) && f->meta.is_link;
	int move = moving(f) && !local_only(f);
	uint64_t seq = f->jseq;
	int content = !dir && !f->nocontent && f->pseq > f->dseq;
	int later = del && under_removal_locked(g, f);
	pthread_mutex_unlock(&g->lock);
	int r = 0;
	if (later) {
		r = -EAGAIN;      /* the removal of a folder it is in decides first */
	} else if (del) {
		r = delete_pending(g, f);
	} else if (link) {
		/* its name and target (the link's content) in the current epoch */
		pthread_mutex_lock(&f->lock);
		uint64_t size = f->size;
		pthread_mutex_unlock(&f->lock);
		r = epoch_hook_here(g, f, SCS_BE_UP_CREATE, f->fd, size,
				    SCS_BE_UP_NEW | SCS_BE_UP_LINK);
		if (r >= 0)
			r = link_pending(g, f, seq);
	} else {
		uint64_t v;
		char rev[SCS_GDRIVE_REV_MAX + 1];
		if (dir)
			r = create_pending(g, f, &v, rev);
		/* a name given offline to what Drive has: in the current epoch */
		if (!r && move)
			r = epoch_hook_here(g, f, SCS_BE_UP_MOVE, -1, 0, 0);
		if (!r)
			r = meta_apply(g, f);
		if (!r)
			r = content ? upload_one_(g, f, seq) : job_done(g, f, seq);
	}
	in_upload = 0;
	return r;
}

static int upload_one_(struct gd_be *g, struct gd_file *f, uint64_t seq)
{
	char *path = where_now(g, f);
	pthread_mutex_lock(&f->lock);
	uint64_t wseq = f->jwseq, size = f->size, base_v = f->version;
	char base_rev[SCS_GDRIVE_REV_MAX + 1];
	strcpy(base_rev, f->rev);
	uint32_t perm = f->meta.has_perm ? f->meta.perm : 0644;
	if (seq <= f->dseq || f->deleted) {
		/* unlinked: what was queued for it goes (and is noted as gone) */
		int r = 0;
		if (seq > f->dseq) {
			r = journal_d(g, f, seq);
			if (!r) {
				pthread_mutex_lock(&g->lock);
				f->dseq = seq;
				g->status_gen++;
				pthread_mutex_unlock(&g->lock);
			}
		}
		pthread_mutex_unlock(&f->lock);
		free(path);
		return r;
	}
	/* times set here go with the content (the upload moves modifiedTime) */
	pthread_mutex_lock(&g->lock);
	unsigned sent = f->want & (SCS_GDRIVE_WANT_MTIME | SCS_GDRIVE_WANT_ATIME);
	uint64_t sent_mseq = f->mseq;
	json_t *tj = sent ? meta_json(sent, &f->meta) : NULL;
	unsigned fresh = unseen_locked(g, f) ? SCS_BE_UP_NEW : 0;
	pthread_mutex_unlock(&g->lock);
	char *pmeta = tj ? json_dumps(tj, JSON_COMPACT) : NULL;
	json_decref(tj);
	int sfd = snapshot(g, f, size);
	/* The snapshot holds at least what the record stands for; writes
	 * since are in it too, so it covers wseq if nothing came after. */
	int all = f->wseq == wseq;
	pthread_mutex_unlock(&f->lock);
	if (sfd < 0) {
		scs_log(SCS_LOG_ERR, "gdrive: cannot copy %s in the cache: %s", f->id, strerror(-sfd));
		free(path);
		return sfd;
	}
	struct scs_gdrive_meta *cur = malloc(sizeof *cur), *m = malloc(sizeof *m);
	char rmd5[33], md5[33];
	int r = cur && m ? 0 : -ENOMEM, h = 0;
	/* Nobody else sees it yet (nor would a re-key pass): its name and
	 * content go to the current epoch before anything of it goes out. */
	if (!r && fresh && folder_gone_back(g, f, 1) == 1) {
		free(path);
		path = where_now(g, f);      /* (in its folder made again) */
	}
	if (!r && fresh && (h = epoch_hook(g, f, SCS_BE_UP_SEND, path, sfd, size, fresh)) == 0) {
		free(path);
		path = where_now(g, f);      /* (renamed, if its name moved) */
	}
	int moved = h > 0;               /* the core moved it: nothing goes out */
	if (h < 0)
		r = h;
	if (!r && !moved)
		r = create_pending(g, f, &base_v, base_rev);
	if (!r && !moved)
		r = remote_state(g, f->id, cur, rmd5);
	int conflict = 0, gone = r == -ENOENT, same = 0, ours = 0;
	if (gone) {
		/* deleted by this mount while we looked (an unlink, a rename over
		 * it): nothing of it is to be kept, least of all a conflict copy */
		pthread_mutex_lock(&g->lock);
		ours = f->dropping || __atomic_load_n(&f->deleted, __ATOMIC_RELAXED);
		pthread_mutex_unlock(&g->lock);
		if (ours)
			r = 0;
	}
	if (r == 0 && !moved && cur->version != base_v && strcmp(cur->rev, base_rev)) {
		/* Changed on Drive since our edit began: unless it is already ours
		 * (an earlier attempt whose reply was lost), the other stays. */
		md5_fd(sfd, size, md5);
		if (md5[0] && !strcmp(md5, rmd5) && cur->size == size)
			same = 1;
		else
			conflict = 1;
	}
	if (!fresh && !moved && !ours && !same && (r == 0 || gone)) {
		/* About to send (or keep as a conflict copy) an edit of what
		 * others see: in the current epoch too, unless the core says
		 * otherwise (a file held open across a new epoch, README). */
		h = epoch_hook(g, f, SCS_BE_UP_SEND, path, sfd, size,
			       conflict || gone ? SCS_BE_UP_CHANGED : 0);
		moved = h > 0;
		if (h != 0)
			r = h < 0 ? h : 0;
	}
	if (ours) {
		scs_log(SCS_LOG_DEBUG, "gdrive: %s was deleted here while its upload began",
			f->id);
	} else if (moved || h < 0) {
		/* moved by the core (its log says where), or held back */
	} else if (r == 0 && same) {
		r = get_meta(g, f->id, m);
	} else if ((r == 0 && conflict) || gone) {
		char cpath[SCS_PATH_MAX];
		int hc = -ENOSYS;
		if (g->be.hooks.conflict_name && path)
			hc = g->be.hooks.conflict_name(g->be.hooks.arg, path, cpath, sizeof cpath);
		if (hc == -ECANCELED) {
			scs_log(SCS_LOG_DEBUG, "gdrive: %s: its content went elsewhere; upload "
				"dropped", f->id);
			gone = 1;     /* (this cache no longer matches the id) */
			r = 0;
		} else if (hc == 0) {
			scs_log(SCS_LOG_WARN, "gdrive: %s was %s on Drive by someone else meanwhile; "
				"keeping both: ours is stored as a conflict copy", path,
				gone ? "deleted" : "changed");
			r = create_at(g, cpath, sfd, size, perm, m);
			if (r == 0)
				conflict = 2;
		} else if (gone) {
			scs_log(SCS_LOG_WARN, "gdrive: %s was deleted on Drive before its last changes "
				"were uploaded; they are dropped", path ? path : f->id);
			r = 0;
		} else if (hc != -ENOSYS) {
			r = hc;
		} else {
			scs_log(SCS_LOG_WARN, "gdrive: %s changed on Drive since this edit began; "
				"replacing it with ours (no conflict copy)", path ? path : f->id);
			r = upload_fd(g, f->id, sfd, size, pmeta, m);
		}
	} else if (r == 0) {
		r = upload_fd(g, f->id, sfd, size, pmeta, m);
	}
	/* A new file's first upload landed: if the group moved to a newer
	 * epoch while it was in flight, a pass may have missed it.  keep: the
	 * core could not move it now; the job stays, its next run moves it. */
	int keep = 0;
	if (r == 0 && fresh && !moved && !ours && !gone && conflict != 2) {
		h = epoch_hook(g, f, SCS_BE_UP_SENT, path, sfd, size, fresh);
		moved = h > 0;
		keep = h < 0 ? h : 0;
	}
	close(sfd);
	if (r == 0) {
		struct scs_gdrive_jrec rec[2];
		size_t nrec = 1;
		pthread_mutex_lock(&f->lock);
		if (conflict == 2 || gone || moved) {
			/* Ours is elsewhere now: this cache no longer matches id. */
			f->version = 0;
			f->rev[0] = '\0';
			if (gone)
				f->deleted = 1;
			if (moved)
				mine_done(g, f->id, 1);
		} else {
			uploaded(f, size, m);
			mine_done(g, f->id, 0);
			if (path)
				memo_put(g, path, m, NULL);
		}
		pthread_mutex_lock(&g->lock);
		if (pmeta && !moved && f->mseq == sent_mseq)
			want_clear_locked(g, f, sent);
		pthread_mutex_unlock(&g->lock);
		memset(&rec[0], 0, sizeof rec[0]);
		rec[0].type = 'D';
		rec[0].seq = seq;
		strcpy(rec[0].id, f->id);
		rec[0].version = f->version;
		strcpy(rec[0].rev, f->rev);
		if (f->pseq > seq) {
			/* newer changes wait: their base is now what we uploaded */
			jrec_p(g, &rec[1], f);
			rec[1].seq = f->pseq;
			nrec = 2;
		}
		/* failing: uploaded again later */
		r = keep ? keep : journal_append(g, rec, nrec);
		if (r == 0) {
			pthread_mutex_lock(&g->lock);
			f->dseq = seq;
			if (f->pseq <= seq && all && f->wseq == wseq)
				f->dirty = 0;   /* (after a conflict copy: dropped once closed) */
			g->last_sync = time(NULL);
			g->status_gen++;
			if (!g->offline)
				g->last_error[0] = '\0';
			pthread_mutex_unlock(&g->lock);
		}
		pthread_mutex_unlock(&f->lock);
		if (conflict == 2)
			kernel_changed(g, path);
	}
	free(cur);
	free(m);
	free(path);
	free(pmeta);
	return r;
}

/* After a failed upload: when to try again, and what to tell.  g->lock held. */
static void upload_failed(struct gd_be *g, struct gd_file *f, int r)
{
	time_t now = time(NULL), wait;
	int offline = __atomic_load_n(&g->offline, __ATOMIC_RELAXED);
	if (r == -EAGAIN) {
		f->due = now + 1;  /* behind other jobs of this mount (a folder's removal) */
		return;
	}
	if (r == -ENOSPC || r == -EDQUOT) {
		wait = 600;        /* a full Drive or the daily cap: slowly */
		set_error_locked(g, r == -ENOSPC ? "Google Drive storage is full; free space in Drive" :
			  "the daily Google Drive upload limit is reached; uploads resume later");
	} else if (r == -EACCES) {
		wait = 60;
		if (!g->last_error[0])
			set_error_locked(g, "Drive refused access; sign in again with `scsctl auth gdrive`");
	} else if (offline) {
		wait = 5;          /* a probe: uploads start soon after Drive is back */
	} else {
		int k = f->failures < 4 ? f->failures : 4;
		wait = (time_t)15 << k;      /* 15 s .. 4 min */
		set_error_locked(g, "upload failed: %s", strerror(-r));
	}
	f->failures++;
	f->due = now + wait;
	scs_log(SCS_LOG_DEBUG, "gdrive: upload of %s failed (%s); next try in %lld s", f->id,
		strerror(-r), (long long)wait);
}

/* ---- the uploader ---- */

/* The status file as of now.  One writer at a time (status_lock), so an
 * older view never replaces a newer one; status_done only moves forward
 * (a writer that raced with a change leaves the gen behind: written again). */
static int write_status(struct gd_be *g, int force)
{
	struct scs_gdrive_status st;
	memset(&st, 0, sizeof st);
	pthread_mutex_lock(&g->status_lock);
	pthread_mutex_lock(&g->lock);
	unsigned gen = g->status_gen;
	if (gen == g->status_done && !force) {
		pthread_mutex_unlock(&g->lock);
		pthread_mutex_unlock(&g->status_lock);
		return 0;       /* (another thread wrote it meanwhile) */
	}
	for (struct gd_file *f = g->files; f; f = f->next) {
		if (f->jseq <= f->dseq)
			continue;
		if (f->pend_delete) {
			if (f->meta.is_dir)
				st.changes++;       /* a folder removed offline */
			else
				st.deletes++;
			continue;
		}
		int content = !f->deleted && !f->meta.is_dir && !f->nocontent && f->pseq > f->dseq;
		if (content) {
			st.files++;
			st.bytes += __atomic_load_n(&f->size, __ATOMIC_RELAXED);
		}
		/* folders made, renames, modes (times of a file to upload go with it) */
		if ((local_only(f) && f->meta.is_dir) ||
		    (f->want & (content ? ~(SCS_GDRIVE_WANT_MTIME | SCS_GDRIVE_WANT_ATIME) : ~0u)))
			st.changes++;
	}
	st.offline = g->offline;
	st.offline_since = g->offline_since;
	st.last_sync = g->last_sync;
	snprintf(st.error, sizeof st.error, "%s", g->last_error);
	pthread_mutex_unlock(&g->lock);
	st.updated = time(NULL);
	int r = scs_gdrive_status_write(g->cache_dir, &st);
	if (r == 0) {
		pthread_mutex_lock(&g->lock);
		g->status_done = gen;
		pthread_mutex_unlock(&g->lock);
	}
	pthread_mutex_unlock(&g->status_lock);
	return r;
}

/* After a change the journal now keeps (a close, a delete, a rename made
 * offline): the status file says so before the call returns, so that
 * `scsctl status` after a kill -9 right after it counts it (the uploader
 * writes it too, but later).  No fsync: it is a view of the journal. */
static void status_now(struct gd_be *g)
{
	if (g->wb)
		(void)write_status(g, 0);
}

static void gd_close(scs_backend *be);

static void clock_str(time_t t, char out[16])
{
	struct tm tm;
	localtime_r(&t, &tm);
	strftime(out, 16, "%H:%M:%S", &tm);
}

int scs_gdrive_dump(scs_backend *be)
{
	if (be->ops->close != gd_close)
		return -ENOTSUP;
	struct gd_be *g = GB(be);
	time_t now = time(NULL);
	char a[16], b[16];
	/* what is on its way first: it needs no other lock */
	int nreq = 0;
	pthread_mutex_lock(&g->rlock);
	for (int i = 0; i < REQ_SLOTS; i++) {
		struct gd_req_slot *r = &g->reqs[i];
		if (!r->used)
			continue;
		nreq++;
		static const char *const phase[] = { "waiting for an access token",
						     "waiting for the reply", "waiting to try again" };
		scs_log(SCS_LOG_INFO, "gdrive: state: a request for %.1f s (thread %d): %s: try %d, "
			"%s for %.1f s", since(&r->t0), (int)r->tid, r->what, r->attempt + 1,
			phase[r->phase], since(&r->tp));
	}
	pthread_mutex_unlock(&g->rlock);
	if (!nreq)
		scs_log(SCS_LOG_INFO, "gdrive: state: no request on its way");
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 2;
	if (pthread_mutex_timedlock(&g->lock, &until) != 0) {
		scs_log(SCS_LOG_WARN, "gdrive: state: the queue's lock has been held for 2 s; "
			"the queue is not shown");
		return 0;
	}
	clock_str(g->offline_since, a);
	clock_str(g->last_sync, b);
	scs_log(SCS_LOG_INFO, "gdrive: state: %s%s, %d network failure%s in a row; %u upload "
		"thread%s%s; last sync %s; last error: %s", g->offline ? "offline since " : "online",
		g->offline ? a : "", g->net_fails, g->net_fails == 1 ? "" : "s", g->nworkers,
		g->nworkers == 1 ? "" : "s", g->stopping ? " (stopping)" : "",
		g->last_sync ? b : "none", g->last_error[0] ? g->last_error : "none");
	size_t n = 0;
	for (struct gd_file *f = g->files; f; f = f->next) {
		if (f->jseq <= f->dseq && !f->inflight)
			continue;
		n++;
		char when[64];
		if (f->inflight)
			snprintf(when, sizeof when, "uploading for %lld s (thread %d)",
				 (long long)(now - f->up_since), (int)f->up_tid);
		else if (f->due > now)
			snprintf(when, sizeof when, "due in %lld s", (long long)(f->due - now));
		else
			snprintf(when, sizeof when, "due since %lld s", (long long)(now - f->due));
		scs_log(SCS_LOG_INFO, "gdrive: state: %s (%s): %s%s%s%s%s%s; %s; %d failure%s; "
			"records %llu..%llu done up to %llu", f->id, f->path ? f->path : "?",
			f->pseq > f->dseq && !f->nocontent ? "content" : "",
			f->want ? " metadata" : "", f->pend_create ? " made here" : "",
			f->pend_delete ? " delete" : "", f->deleted ? " (deleted)" : "",
			f->dirty ? " (dirty)" : "", when, f->failures, f->failures == 1 ? "" : "s",
			(unsigned long long)f->pseq, (unsigned long long)f->jseq,
			(unsigned long long)f->dseq);
	}
	if (!n)
		scs_log(SCS_LOG_INFO, "gdrive: state: nothing queued");
	pthread_mutex_unlock(&g->lock);
	return 0;
}

/* The next file to upload (g->lock held); NULL: none now, *next_due set. */
static struct gd_file *pick(struct gd_be *g, time_t now, time_t *next_due)
{
	struct gd_file *best = NULL;
	*next_due = now + 1;
	for (struct gd_file *f = g->files; f; f = f->next) {
		if (f->inflight || f->jseq <= f->dseq)
			continue;
		if (g->stopping) {
			if (!f->tried)
				return f;
			continue;
		}
		if (f->due <= now) {
			if (!best || f->due < best->due)
				best = f;
		} else if (f->due < *next_due) {
			*next_due = f->due;
		}
	}
	return best;
}

/* Journal compaction: nothing pending, the journal starts afresh. */
static void journal_compact(struct gd_be *g)
{
	pthread_mutex_lock(&g->lock);
	int pending = 0;
	for (struct gd_file *f = g->files; f; f = f->next)
		if (f->jseq > f->dseq || f->inflight || (f->cseq && !f->jseq))
			pending = 1;
	if (!pending) {
		pthread_mutex_lock(&g->jlock);
		if (g->jsize > (1u << 20) && ftruncate(g->jfd, 0) == 0 && fdatasync(g->jfd) == 0)
			g->jsize = 0;
		pthread_mutex_unlock(&g->jlock);
	}
	pthread_mutex_unlock(&g->lock);
}

/* Upload f (g->lock held, dropped meanwhile); a failure reschedules it. */
static int run_upload(struct gd_be *g, struct gd_file *f)
{
	f->inflight = 1;
	f->up_since = time(NULL);
	f->up_tid = gettid();
	pthread_mutex_unlock(&g->lock);
	int r = upload_one(g, f);
	pthread_mutex_lock(&g->lock);
	f->inflight = 0;
	if (r < 0)
		upload_failed(g, f, r);
	else
		f->failures = 0;
	g->status_gen++;
	pthread_cond_broadcast(&g->cond);
	return r;
}

static void *uploader(void *arg)
{
	struct gd_be *g = arg;
	pthread_mutex_lock(&g->lock);
	int fill = !g->nids && !g->ids_filling;
	g->ids_filling = 1;
	pthread_mutex_unlock(&g->lock);
	if (fill)
		(void)ids_fetch(g);    /* ids at hand for files made offline */
	pthread_mutex_lock(&g->lock);
	for (;;) {
		time_t now = time(NULL), next_due;
		int wrote = 1;
		if (g->status_gen != g->status_done) {
			pthread_mutex_unlock(&g->lock);
			wrote = write_status(g, 0) == 0;
			pthread_mutex_lock(&g->lock);
		}
		if (now >= g->snap_due && !g->snapping && !g->stopping) {
			/* what this mount knows, for a mount while Drive is unreachable */
			g->snap_due = now + SNAP_EVERY;
			g->snapping = 1;
			pthread_mutex_unlock(&g->lock);
			if (__atomic_load_n(&g->memo->gen, __ATOMIC_RELAXED) != g->snap_gen)
				(void)memo_save(g);
			pthread_mutex_lock(&g->lock);
			g->snapping = 0;
		}
		struct gd_file *f = pick(g, now, &next_due);
		if (!f) {
			if (g->stopping)
				break;
			if (wrote && g->status_gen != g->status_done)
				continue;    /* (changed while it was written: not asleep on it;
					      * a write that fails waits for the next turn) */
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += next_due - now > 0 ? next_due - now : 1;
			pthread_cond_timedwait(&g->cond, &g->lock, &ts);
			continue;
		}
		if (g->stopping)
			f->tried = 1;
		int r = run_upload(g, f);
		if (r == 0) {
			pthread_mutex_unlock(&g->lock);
			journal_compact(g);
			pthread_mutex_lock(&g->lock);
		}
	}
	pthread_mutex_unlock(&g->lock);
	return NULL;
}

/* -o sync_upload: upload f now in this thread (waiting for a running one). */
static int upload_now(struct gd_be *g, struct gd_file *f)
{
	pthread_mutex_lock(&g->lock);
	while (f->inflight)
		pthread_cond_wait(&g->cond, &g->lock);
	if (f->jseq <= f->dseq) {
		pthread_mutex_unlock(&g->lock);
		return 0;
	}
	int r = run_upload(g, f);
	pthread_mutex_unlock(&g->lock);
	return r;
}

/* close(2) and fsync: durable here (journaled); with sync_upload, on Drive. */
static int commit(struct gd_be *g, struct gd_file *f)
{
	pthread_mutex_lock(&f->lock);
	int r = g->wb ? journal_locked(g, f) : flush_locked(g, f);
	pthread_mutex_unlock(&f->lock);
	if (r == 0 && g->wb && g->opts.sync_upload)
		r = upload_now(g, f);
	return r;
}

static int gd_fsync(scs_obj *so, int datasync)
{
	(void)datasync;
	struct gd_obj *o = (struct gd_obj *)so;
	return commit(GB(so->be), o->f);
}

static int gd_obj_flush(scs_obj *so)
{
	struct gd_obj *o = (struct gd_obj *)so;
	if (!GB(so->be)->wb)
		return 0;
	return commit(GB(so->be), o->f);
}

static int gd_fstat(scs_obj *so, struct scs_attr *a)
{
	struct gd_obj *o = (struct gd_obj *)so;
	pthread_mutex_lock(&o->f->lock);
	struct scs_gdrive_meta m = o->f->meta;
	uint64_t size = o->f->size;
	pthread_mutex_unlock(&o->f->lock);
	to_attr(GB(so->be), &m, a);
	a->size = size;
	a->blocks = (size + 511) / 512;
	return 0;
}

/* The re-key pass's hold: refused while this process has the file open
 * for writing (a mount's own pass leaves the mount's open files for
 * later); other processes and machines are out of sight (hold_all 0). */
static int gd_hold(scs_obj *so, int on)
{
	struct gd_obj *o = (struct gd_obj *)so;
	struct gd_be *g = GB(so->be);
	pthread_mutex_lock(&g->lock);
	int busy = on && o->f->writers > o->writer;
	pthread_mutex_unlock(&g->lock);
	return busy ? -EAGAIN : 0;
}

static int gd_obj_close(scs_obj *so)
{
	struct gd_obj *o = (struct gd_obj *)so;
	struct gd_be *g = GB(so->be);
	struct gd_file *f = o->f;
	int r;
	if (g->wb) {
		/* journaled; the flush before it already waited with sync_upload */
		pthread_mutex_lock(&f->lock);
		r = journal_locked(g, f);
		pthread_mutex_unlock(&f->lock);
	} else {
		pthread_mutex_lock(&f->lock);
		r = flush_locked(g, f);
		if (r < 0) {
			/* No write-back queue here (scsctl): the change is lost; say so. */
			scs_log(SCS_LOG_ERR, "gdrive: could not upload %s at close (%s); the last "
				"changes to it are lost", f->id, strerror(-r));
			f->dirty = 0;
			f->have_all = 0;
			f->version = 0;   /* never reuse this cache */
			f->rev[0] = '\0';
		}
		pthread_mutex_unlock(&f->lock);
	}
	pthread_mutex_lock(&g->lock);
	f->writers -= o->writer;
	pthread_mutex_unlock(&g->lock);
	file_unref(g, f);
	free(o);
	return r;
}

/* Unlinked or replaced on Drive by us: whatever is queued for id goes. */
static void file_dropped(struct gd_be *g, const char *id)
{
	if (!g->wb)
		return;
	struct gd_file *f = NULL;
	pthread_mutex_lock(&g->lock);
	for (f = g->files; f; f = f->next)
		if (!strcmp(f->id, id))
			break;
	pthread_mutex_unlock(&g->lock);
	if (!f)
		return;
	pthread_mutex_lock(&f->lock);
	__atomic_store_n(&f->deleted, 1, __ATOMIC_RELAXED);
	if (f->jseq > f->dseq) {
		if (journal_d(g, f, f->jseq) == 0) {
			pthread_mutex_lock(&g->lock);
			f->dseq = f->jseq;
			g->status_gen++;
			pthread_cond_broadcast(&g->cond);
			pthread_mutex_unlock(&g->lock);
		}
	}
	pthread_mutex_unlock(&f->lock);
	status_now(g);
}

/* rename(2) of sid, a file made offline and not on Drive yet, over dst, a
 * file Drive has (an editor's save through a temporary name, rsync, git's
 * lock files): dst's entry takes sid's content, a change to dst queued and
 * uploaded as any other (a conflict copy if someone changed dst meanwhile),
 * and sid goes, never having been on Drive.  So it works offline, and
 * keeps dst's id and history on Drive.  The cache file moves by a link,
 * then the journal says so: a crash in between loses nothing (at worst sid
 * is still made).  1 if done (*err: its result), 0 if not possible now
 * (either is open or uploading): then the caller moves sid itself.  dst
 * gets the size and times it has now. */
static int pend_replace(struct gd_be *g, const char *sid, struct scs_gdrive_meta *dst,
			const char *to, int *err)
{
	struct gd_file *tf = pend_hold(g, sid), *xf = NULL;
	if (!tf)
		return 0;
	/* close(2) returns after FUSE's flush, which journaled sid; the
	 * release that lets go of its last handle comes on its own, and an
	 * editor's rename right after the close can overtake it.  Give it a
	 * moment rather than take the other way (dst deleted, sid made as a
	 * new entry: dst's id and history on Drive lost).  A file that is
	 * really still open is moved by the caller after the wait. */
	if (tf->refs && tf->pseq && !tf->inflight) {
		struct timespec dl;
		clock_gettime(CLOCK_REALTIME, &dl);
		dl.tv_sec += RELEASE_WAIT_S;
		while (tf && (tf->refs || tf->inflight) &&   /* (an upload try: offline, brief) */
		       pthread_cond_timedwait(&g->cond, &g->lock, &dl) == 0)
			tf = pend_locked(g, sid);
		if (!tf || tf->creating) {
			pthread_mutex_unlock(&g->lock);
			return 0;
		}
	}
	int r = tf->refs || tf->inflight || !tf->pseq ? 1 : 0;
	if (!r)
		r = file_get(g, dst, to, &xf);
	if (!r && (xf->refs > 1 || xf->inflight || xf->pend_create))
		r = 1;
	if (r) {
		if (xf)
			xf->refs--;
		pthread_mutex_unlock(&g->lock);
		if (r < 0)
			*err = r;
		return r < 0;
	}
	tf->inflight = xf->inflight = 1;      /* no upload of either meanwhile */
	pthread_mutex_unlock(&g->lock);

	char swap[SCS_GDRIVE_ID_MAX + 8];
	snprintf(swap, sizeof swap, ".swap-%s", sid);
	(void)unlinkat(g->obj_dfd, swap, 0);
	pthread_mutex_lock(&xf->lock);
	pthread_mutex_lock(&tf->lock);
	map_forget(g, xf);
	int fd = -1;
	if (linkat(g->obj_dfd, sid, g->obj_dfd, swap, 0) < 0 ||
	    renameat(g->obj_dfd, swap, g->obj_dfd, dst->id) < 0 || fsync(g->obj_dfd) < 0 ||
	    (fd = dup(tf->fd)) < 0) {
		r = -errno;
		(void)unlinkat(g->obj_dfd, swap, 0);
	}
	uint64_t size = tf->size;
	pthread_mutex_unlock(&tf->lock);
	pthread_mutex_lock(&g->lock);
	dst->mtime = tf->meta.mtime;
	dst->atime = tf->meta.atime;
	dst->size = size;
	pthread_mutex_unlock(&g->lock);
	if (!r) {
		close(xf->fd);
		xf->fd = fd;
		xf->meta.mtime = dst->mtime;
		xf->meta.atime = dst->atime;
		free(xf->have);
		xf->have = calloc(1, 1);
		xf->nblocks = 0;
		xf->have_all = 1;
		__atomic_store_n(&xf->size, size, __ATOMIC_RELAXED);
		xf->dirty = 1;
		xf->wseq++;
		r = journal_locked(g, xf);
	}
	pthread_mutex_unlock(&xf->lock);
	if (r < 0)
		scs_log(SCS_LOG_ERR, "gdrive: cannot move %s over %s in the cache %s: %s", sid,
			dst->id, g->cache_dir, strerror(-r));
	pthread_mutex_lock(&g->lock);
	tf->inflight = xf->inflight = 0;
	if (!r) {
		__atomic_store_n(&tf->deleted, 1, __ATOMIC_RELAXED);
		tf->pend_create = 0;
		g->nlocal--;
	}
	pthread_cond_broadcast(&g->cond);
	pthread_mutex_unlock(&g->lock);
	if (!r) {
		file_dropped(g, sid);     /* (its D record: nothing of it is queued) */
		pthread_mutex_lock(&g->lock);
		for (struct gd_file **pp = &g->files; *pp; pp = &(*pp)->next)
			if (*pp == tf && !tf->refs && !tf->inflight) {
				*pp = tf->next;
				tf->dirty = 0;       /* its cache file goes (dst has it now) */
				file_free(g, tf);
				break;
			}
		ent_del_locked(g, sid);
		pthread_mutex_unlock(&g->lock);
		own_put(g, sid, NULL, NULL, 0, 0);
		mine_done(g, sid, 1);
	}
	file_unref(g, xf);
	*err = r;
	return 1;
}

/* A U record of f (f->lock held). */
static void jrec_u(struct gd_be *g, struct scs_gdrive_jrec *r, const struct gd_file *f)
{
	memset(r, 0, sizeof *r);
	r->type = 'U';
	strcpy(r->id, f->id);
	r->version = f->version;
	strcpy(r->rev, f->rev);
	pthread_mutex_lock(&g->lock);
	if (f->path && strlen(f->path) < sizeof r->path)
		strcpy(r->path, f->path);
	pthread_mutex_unlock(&g->lock);
}

/* f's delete (U) or removal (R), the record jr (r: journaled if 0), waits
 * for Drive: this mount no longer shows it.  f->lock held and let go, the
 * caller's reference dropped. */
static void delete_queued(struct gd_be *g, struct gd_file *f, struct scs_gdrive_jrec *jr, int r)
{
	if (!r) {
		pthread_mutex_lock(&g->lock);
		f->pend_delete = 1;
		g->nlocal++;
		__atomic_store_n(&f->deleted, 1, __ATOMIC_RELAXED);
		want_clear_locked(g, f, SCS_GDRIVE_WANT_ALL);   /* (a rename of it: moot now) */
		f->jseq = jr->seq;
		f->due = time(NULL);
		f->failures = 0;
		ent_del_locked(g, f->id);
		g->status_gen++;
		pthread_cond_broadcast(&g->cond);
		pthread_mutex_unlock(&g->lock);
	}
	pthread_mutex_unlock(&f->lock);
	free(jr);
	if (!r) {
		status_now(g);
		own_put(g, f->id, NULL, NULL, 0, 0);
		scs_log(SCS_LOG_DEBUG, "gdrive: %s deleted offline; its delete on Drive waits", f->id);
	}
	file_unref(g, f);
}

/* unlink(2) of m, which Drive has, while Drive is unreachable: the delete
 * is journaled and queued (what was queued for it goes), and this mount
 * no longer shows it; the uploader deletes it on Drive when it is back,
 * unless someone changed it there since the version this mount last saw
 * (then theirs stays: nothing is lost). */
static int queue_delete(struct gd_be *g, const struct scs_gdrive_meta *m, const char *path)
{
	struct gd_file *f;
	pthread_mutex_lock(&g->lock);
	int r = file_get(g, m, path, &f);
	pthread_mutex_unlock(&g->lock);
	if (r < 0)
		return r;
	struct scs_gdrive_jrec *jr = malloc(sizeof *jr);
	pthread_mutex_lock(&f->lock);
	if (!jr) {
		r = -ENOMEM;
	} else {
		f->version = m->version;     /* what is to be deleted */
		strcpy(f->rev, m->rev);
		jrec_u(g, jr, f);
		r = journal_append(g, jr, 1);
	}
	delete_queued(g, f, jr, r);
	return r;
}

static int rmdir_pending(struct gd_be *g, struct gd_file *f, uint64_t seq, const char *path);

/* The delete of f made offline did not happen (someone else changed or
 * filled it meanwhile): this mount shows it again. */
static void delete_kept(struct gd_be *g, struct gd_file *f, const char *path)
{
	own_drop(g, f->id, NULL, NULL);
	if (path) {
		memo_drop(g, path);
		notify(g, path, SCS_BE_CHANGED_ENTRY);
	}
}

/* The uploader's part of queue_delete and queue_rmdir (f->inflight is ours). */
static int delete_pending(struct gd_be *g, struct gd_file *f)
{
	pthread_mutex_lock(&f->lock);
	uint64_t seq = f->jseq, v = f->version;
	char rev[SCS_GDRIVE_REV_MAX + 1];
	strcpy(rev, f->rev);
	pthread_mutex_unlock(&f->lock);
	pthread_mutex_lock(&g->lock);
	char *path = f->path ? strdup(f->path) : NULL;
	int dir = f->meta.is_dir;
	pthread_mutex_unlock(&g->lock);
	struct scs_gdrive_meta *cur = dir ? NULL : malloc(sizeof *cur);
	char md5[33];
	int r = dir ? rmdir_pending(g, f, seq, path) : cur ? remote_state(g, f->id, cur, md5) : -ENOMEM;
	if (dir) {
		free(path);
		if (r < 0)
			return r;
	} else if (r == -ENOENT) {
		r = 0;           /* gone already (an earlier attempt, or someone else) */
	} else if (r == 0 && (f->if_marked ? cur->pending :
			      rev[0] || cur->rev[0] ? !strcmp(cur->rev, rev) : cur->version == v)) {
		file_dropping(g, f->id, 1);
		r = delete_id(g, f->id);
		file_dropping(g, f->id, 0);
	} else if (r == 0 && !f->if_marked) {
		scs_log(SCS_LOG_WARN, "gdrive: %s was changed on Drive by someone else after this "
			"mount deleted it offline; their version is kept", path ? path : f->id);
		delete_kept(g, f, path);
	}
	free(cur);
	if (!dir)
		free(path);
	if (r < 0 || (r = job_done(g, f, seq)) < 0)
		return r;
	pthread_mutex_lock(&f->lock);
	pthread_mutex_lock(&g->lock);
	f->pend_delete = 0;
	g->nlocal--;
	f->dirty = 0;        /* nothing of it is kept: the cache may let it go */
	pthread_mutex_unlock(&g->lock);
	pthread_mutex_unlock(&f->lock);
	return 0;
}

/* ---- changes of what Drive has, made while it was unreachable ----
 * A rename or move, a mode or times change that cannot reach Drive now
 * (or must wait behind such a change of the same entry) is made here: the
 * entry's gd_file holds what it is to become (meta and want), an M record
 * journals it, and the uploader sets it on Drive when it is back (the
 * last writer's rename wins, as on Drive).  Until then this mount shows
 * the entry as it is to be: at its new place and not at the old one that
 * Drive's listings still show (elsewhere, pend_find, own_in), with its new
 * mode and times (overlay).  A folder removed offline (R) is removed on
 * Drive once what this mount deleted or moved out of it has gone, unless
 * others put something in it meanwhile. */

/* The gd_file of entry m (at path) to hold what waits for it: the one in
 * use, or a new one without cache state.  g->lock held; a reference is
 * taken (file_unref). */
static struct gd_file *holder_locked(struct gd_be *g, const struct scs_gdrive_meta *m,
				     const char *path)
{
	struct gd_file *f;
	for (f = g->files; f; f = f->next)
		if (!strcmp(f->id, m->id)) {
			f->refs++;
			return f;
		}
	f = file_new();
	if (f)
		f->nocontent = 1;    /* (no cache file: file_free removes none) */
	if (!f || !(f->have = calloc(1, 1)) || (path && !(f->path = strdup(path)))) {
		if (f)
			file_free(g, f);
		return NULL;
	}
	strcpy(f->id, m->id);
	f->meta = *m;
	f->version = m->version;
	strcpy(f->rev, m->rev);
	f->refs = 1;
	f->used = ++g->clock;
	f->next = g->files;
	g->files = f;
	return f;
}

/* An M record of what waits of f (g->lock held). */
static void jrec_m(struct scs_gdrive_jrec *r, const struct gd_file *f)
{
	memset(r, 0, sizeof *r);
	r->type = 'M';
	strcpy(r->id, f->id);
	r->version = f->want;
	if (f->want & SCS_GDRIVE_WANT_MOVE)
		strcpy(r->rev, f->meta.parent);
	if (f->path && strlen(f->path) < sizeof r->path)
		strcpy(r->path, f->path);
	r->mode = f->meta.perm & 07777;
	r->mtime = f->meta.mtime;
	r->atime = f->meta.atime;
}

/* flags' fields of v (parent and name, mode, times) are to be set on
 * Drive for the entry m, which is at path (after the change): kept in its
 * gd_file, journaled (M) and queued.  dirty_only: only if m is a file
 * whose content waits to upload (its upload carries the times), else
 * nothing to do. */
static int want_set(struct gd_be *g, const struct scs_gdrive_meta *m, const char *path,
		    unsigned flags, const struct scs_gdrive_meta *v, int dirty_only)
{
	struct gd_file *f = NULL;
	pthread_mutex_lock(&g->lock);
	if (dirty_only) {
		for (f = g->files; f && strcmp(f->id, m->id); f = f->next)
			;
		if (f && (f->deleted || f->nocontent || !(f->dirty || f->pseq > f->dseq)))
			f = NULL;
		if (!f) {
			pthread_mutex_unlock(&g->lock);
			return 0;
		}
		f->refs++;
	} else {
		f = holder_locked(g, m, path);
	}
	pthread_mutex_unlock(&g->lock);
	if (!f)
		return -ENOMEM;
	struct scs_gdrive_jrec *jr = malloc(sizeof *jr);
	struct scs_gdrive_meta *old = malloc(sizeof *old);
	char *np = path ? strdup(path) : NULL;
	int r = jr && old && (np || !path) ? 0 : -ENOMEM;
	pthread_mutex_lock(&f->lock);          /* one M of f at a time: the last is the whole */
	if (!r) {
		pthread_mutex_lock(&g->lock);
		*old = f->meta;
		unsigned had = f->want;
		if ((flags & SCS_GDRIVE_WANT_MOVE) && np) {
			free(f->path);
			f->path = np;
			np = NULL;
		}
		meta_take(&f->meta, v, flags);
		want_add_locked(g, f, flags);
		jrec_m(jr, f);
		pthread_mutex_unlock(&g->lock);
		r = journal_append(g, jr, 1);
		pthread_mutex_lock(&g->lock);
		if (r == 0) {
			f->mseq = jr->seq;
			if (jr->seq > f->jseq)
				f->jseq = jr->seq;
			if (!f->dirty && f->pseq <= f->dseq)
				f->due = time(NULL);   /* (else with the content, when it is due) */
			f->failures = 0;
			g->status_gen++;
			pthread_cond_broadcast(&g->cond);
		} else {
			/* not kept: nothing changed */
			want_clear_locked(g, f, f->want & ~had);
			f->meta = *old;
		}
		pthread_mutex_unlock(&g->lock);
	}
	pthread_mutex_unlock(&f->lock);
	status_now(g);
	free(jr);
	free(old);
	free(np);
	if (!r && (flags & SCS_GDRIVE_WANT_MOVE))
		ent_put(g, m->id, v->parent, v->name, 0, 0, 0);
	if (!r)
		scs_log(SCS_LOG_DEBUG, "gdrive: %s: metadata change queued (%s)", m->id,
			dirty_only ? "with its content" : "Drive unreachable or earlier changes wait");
	file_unref(g, f);
	return r;
}

/* rmdir(2) of folder m (known to be empty) while Drive is unreachable:
 * journaled (R) and queued; this mount no longer shows it. */
static int queue_rmdir(struct gd_be *g, const struct scs_gdrive_meta *m, const char *path)
{
	pthread_mutex_lock(&g->lock);
	struct gd_file *f = holder_locked(g, m, path);
	if (f)
		f->meta.is_dir = 1;
	pthread_mutex_unlock(&g->lock);
	struct scs_gdrive_jrec *jr = malloc(sizeof *jr);
	if (!f || !jr) {
		free(jr);
		if (f)
			file_unref(g, f);
		return -ENOMEM;
	}
	pthread_mutex_lock(&f->lock);
	memset(jr, 0, sizeof *jr);
	jr->type = 'R';
	strcpy(jr->id, m->id);
	jr->version = m->version;
	if (path && strlen(path) < sizeof jr->path)
		strcpy(jr->path, path);
	int r = journal_append(g, jr, 1);
	delete_queued(g, f, jr, r);
	return r;
}

/* A delete queued offline (file or folder, f) inside a folder whose
 * removal was queued too: that removal decides first (g->lock held). */
static int under_removal_locked(struct gd_be *g, const struct gd_file *f)
{
	for (struct gd_file *r = g->files; r && f->path; r = r->next)
		if (r != f && r->pend_delete && r->meta.is_dir && r->path &&
		    under(f->path, r->path) && strcmp(f->path, r->path))
			return 1;
	return 0;
}

#define RMDIR_DEPTH 64

struct rmdir_ctx {
	struct gd_be *g;
	const char *pid;
	int moving, theirs;
	char (*sub)[SCS_GDRIVE_ID_MAX + 1];   /* folders in it whose removal waits too */
	size_t nsub, capsub;
};

/* What a folder removed offline holds on Drive: entries this mount
 * deleted there offline and nobody changed since (fine: they go with it),
 * entries it moves out (to wait for), and the rest: theirs. */
static int rmdir_cb(void *arg, const struct scs_gdrive_meta *m)
{
	struct rmdir_ctx *c = arg;
	struct gd_be *g = c->g;
	if (own_hidden(g, c->pid, m))
		return 0;          /* deleted or moved away by us already: a listing behind */
	int kind = 0;          /* 0 theirs, 1 ours to delete, 2 moving out, 3 a folder to look into */
	pthread_mutex_lock(&g->lock);
	struct gd_file *x;
	for (x = g->files; x && strcmp(x->id, m->id); x = x->next)
		;
	if (x && x->pend_delete && x->meta.is_dir)
		kind = 3;
	else if (x && x->pend_delete)
		kind = (x->if_marked ? m->pending : x->rev[0] || m->rev[0] ?
			!strcmp(x->rev, m->rev) : x->version == m->version) ? 1 : 0;
	else if (x && moving(x) && (strcmp(x->meta.parent, c->pid) || strcmp(x->meta.name, m->name)))
		kind = 2;
	pthread_mutex_unlock(&g->lock);
	if (kind == 0)
		c->theirs++;
	else if (kind == 2)
		c->moving++;
	else if (kind == 3) {
		if (c->nsub == c->capsub) {
			size_t nc = c->capsub ? 2 * c->capsub : 8;
			void *nv = realloc(c->sub, nc * sizeof *c->sub);
			if (!nv)
				return -ENOMEM;
			c->sub = nv;
			c->capsub = nc;
		}
		strcpy(c->sub[c->nsub++], m->id);
	}
	return 0;
}

static void rmdir_reset(void *arg)
{
	struct rmdir_ctx *c = arg;
	c->moving = c->theirs = 0;
	c->nsub = 0;
}

/* Look through folder id and the folders in it removed offline too. */
static int rmdir_scan(struct gd_be *g, const char *id, int depth, int *moving, int *theirs)
{
	char *q;
	if (depth > RMDIR_DEPTH) {
		(*theirs)++;       /* (deeper than ever made: keep it) */
		return 0;
	}
	if (asprintf(&q, "'%s' in parents and trashed = false", id) < 0)
		return -ENOMEM;
	struct rmdir_ctx c = { .g = g, .pid = id };
	int r = list_query(g, q, 1000, rmdir_cb, rmdir_reset, &c);
	free(q);
	*moving += c.moving;
	*theirs += c.theirs;
	for (size_t i = 0; !r && i < c.nsub; i++)
		r = rmdir_scan(g, c.sub[i], depth + 1, moving, theirs);
	free(c.sub);
	return r;
}

/* The uploader's part of queue_rmdir: 0 once done, -EAGAIN while what
 * this mount moves out of it waits.  Drive removes a folder with all it
 * holds, so it is removed only if all it holds is what this mount deleted
 * there offline (those deletes then find it gone).  If it holds anything
 * else (someone put something in it, or changed what we deleted), it is
 * kept as it is, with every delete queued below it undone: nothing of
 * theirs is lost, and the folder stays whole (its .scsdir with it). */
static int rmdir_pending(struct gd_be *g, struct gd_file *f, uint64_t seq, const char *path)
{
	(void)seq;
	int moving = 0, theirs = 0;
	int r = rmdir_scan(g, f->id, 0, &moving, &theirs);
	if (r < 0)
		return r;
	if (!theirs && moving)
		return -EAGAIN;
	if (!theirs)
		return delete_id(g, f->id);
	scs_log(SCS_LOG_WARN, "gdrive: %s: this folder was removed here while Drive was "
		"unreachable, but someone else changed what was in it meanwhile; it is kept as it "
		"is on Drive, with what was deleted in it", path ? path : f->id);
	/* undo the deletes queued below it (its own: the caller's) */
	for (;;) {
		struct gd_file *x = NULL;
		int running = 0;
		pthread_mutex_lock(&g->lock);
		for (struct gd_file *y = g->files; y && !x; y = y->next) {
			if (y == f || !y->pend_delete || !y->path || !path || !under(y->path, path) ||
			    y->jseq <= y->dseq)
				continue;
			if (y->inflight)
				running = 1;     /* (it finds this removal waiting, and stops) */
			else
				x = y;
		}
		if (!x) {
			if (running)
				pthread_cond_wait(&g->cond, &g->lock);
			pthread_mutex_unlock(&g->lock);
			if (running)
				continue;
			break;
		}
		x->inflight = 1;
		x->refs++;
		uint64_t xs = x->jseq;
		char *xp = strdup(x->path);
		pthread_mutex_unlock(&g->lock);
		r = job_done(g, x, xs);
		pthread_mutex_lock(&g->lock);
		if (!r) {
			x->pend_delete = 0;
			g->nlocal--;
			x->dirty = 0;
			x->version = 0;      /* its next use starts afresh from Drive */
			x->rev[0] = '\0';
		}
		x->inflight = 0;
		x->refs--;
		pthread_cond_broadcast(&g->cond);
		pthread_mutex_unlock(&g->lock);
		if (!r)
			delete_kept(g, x, xp);
		free(xp);
		if (r < 0)
			return r;
	}
	delete_kept(g, f, path);
	return 0;
}

/* The uploader's part of want_set: set on Drive what waits of f (its
 * place and name, its mode; its times too, unless its content waits, whose
 * upload carries them).  Someone else's delete of it meanwhile wins;
 * moved into a folder that is gone from Drive meanwhile, it stays where
 * it is there.  f->inflight is ours. */
static int meta_apply(struct gd_be *g, struct gd_file *f)
{
	pthread_mutex_lock(&g->lock);
	unsigned want = f->deleted ? 0 : f->want;
	if (f->dirty || f->pseq > f->dseq || local_only(f))
		want &= ~(SCS_GDRIVE_WANT_MTIME | SCS_GDRIVE_WANT_ATIME);
	struct scs_gdrive_meta *v = want ? malloc(sizeof *v) : NULL, *cur = NULL;
	if (v)
		*v = f->meta;
	uint64_t mseq = f->mseq;
	char *path = want && f->path ? strdup(f->path) : NULL;
	pthread_mutex_unlock(&g->lock);
	if (!want)
		return 0;
	int r = v && (cur = malloc(sizeof *cur)) ? 0 : -ENOMEM;
	const char *why = NULL;
	if (!r && (want & SCS_GDRIVE_WANT_MOVE))
		r = parent_ready(g, v->parent);     /* (its failure: tried again later) */
	if (!r && (r = get_meta_fields(g, f->id, ",parents,trashed", cur)) == -ENOENT)
		why = "it was deleted on Drive meanwhile";
	if (!r && cur->trashed) {
		why = "it was deleted on Drive meanwhile";
	} else if (!r) {
		json_t *body = meta_json(want, v);
		char extra[2 * SCS_GDRIVE_ID_MAX + 64] = "", ts[96];
		if (!(want & SCS_GDRIVE_WANT_MTIME)) {
			/* a rename or chmod keeps the mtime (a PATCH naming none may
			 * set it to now) */
			drive_time(cur->mtime, ts);
			json_object_set_new(body, "modifiedTime", json_string(ts));
		}
		if (want & SCS_GDRIVE_WANT_MOVE) {
			json_object_set_new(body, "name", json_string(v->name));
			if (strcmp(cur->parent, v->parent))
				snprintf(extra, sizeof extra, "&addParents=%s&removeParents=%s",
					 v->parent, cur->parent);
		}
		r = patch_meta(g, f->id, body, extra[0] ? extra : NULL);
		if (r == -ENOENT)
			why = get_meta_fields(g, f->id, "", cur) == -ENOENT ?
			      "it was deleted on Drive meanwhile" :
			      "the folder it was moved to is gone from Drive; it stays where it was";
	}
	if (why) {
		scs_log(SCS_LOG_WARN, "gdrive: %s: a rename or attribute change made here while Drive "
			"was unreachable is dropped: %s", path ? path : f->id, why);
		if (path) {
			memo_drop(g, path);
			notify(g, path, SCS_BE_CHANGED_ENTRY);
		}
		r = 0;
	}
	if (!r) {
		pthread_mutex_lock(&g->lock);
		if (f->mseq == mseq)
			want_clear_locked(g, f, want);
		g->status_gen++;
		pthread_mutex_unlock(&g->lock);
	}
	free(v);
	free(cur);
	free(path);
	return r;
}

/* A rename moved from to to: the paths of cached files follow. */
static void files_renamed(struct gd_be *g, const char *from, const char *to)
{
	size_t fl = strlen(from);
	pthread_mutex_lock(&g->lock);
	for (struct gd_file *f = g->files; f; f = f->next) {
		char *np;
		if (!f->path || !under(f->path, from))
			continue;
		if (asprintf(&np, "%s%s", to, f->path + fl) >= 0) {
			free(f->path);
			f->path = np;
		}
	}
	pthread_mutex_unlock(&g->lock);
}

/* ---- clean caches kept across mounts (obj/ID.map) ---- */

/* At unmount: note which blocks of Drive's version obj/ID holds. */
static int map_save(struct gd_be *g, struct gd_file *f)
{
	if (f->dirty || f->deleted || !f->version || f->fd < 0 || !cached_bytes(f) ||
	    f->size != f->remote_size)
		return -EINVAL;
	struct scs_gdrive_map m = { .version = f->version, .size = f->remote_size };
	strcpy(m.rev, f->rev);
	m.nblocks = (size_t)((f->remote_size + BLK - 1) / BLK);
	size_t hb = (m.nblocks + 7) / 8;
	m.have = calloc(hb ? hb : 1, 1);
	if (!m.have)
		return -ENOMEM;
	if (f->have_all)
		memset(m.have, 0xff, hb);
	else
		memcpy(m.have, f->have, hb <= (f->nblocks + 7) / 8 ? hb : (f->nblocks + 7) / 8);
	char *line, name[SCS_GDRIVE_ID_MAX + 8], tmp[SCS_GDRIVE_ID_MAX + 16];
	size_t len;
	int r = scs_gdrive_map_format(&m, &line, &len);
	free(m.have);
	if (r < 0)
		return r;
	snprintf(name, sizeof name, "%s.map", f->id);
	snprintf(tmp, sizeof tmp, "%s.map.tmp", f->id);
	int fd = openat(g->obj_dfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	r = fd < 0 ? -errno : write_all_fd(fd, line, len);
	free(line);
	if (fd >= 0 && (fdatasync(f->fd) < 0 || close(fd) < 0) && !r)
		r = -errno;
	if (!r && renameat(g->obj_dfd, tmp, g->obj_dfd, name) < 0)
		r = -errno;
	if (r < 0)
		unlinkat(g->obj_dfd, tmp, 0);
	return r;
}

/* At mount: take back a clean cache the last unmount noted (the note goes
 * at once: a crash in this session leaves no stale one). */
static void map_load(struct gd_be *g, const char *id)
{
	char name[SCS_GDRIVE_ID_MAX + 8], path[SCS_PATH_MAX + SCS_GDRIVE_ID_MAX + 16];
	snprintf(name, sizeof name, "%s.map", id);
	snprintf(path, sizeof path, "%s/%s", g->obj_dir, name);
	uint8_t *data = NULL;
	size_t len = 0;
	struct scs_gdrive_map m;
	int r = scs_local_read(path, SCS_GDRIVE_MAP_MAX, &data, &len);
	if (r < 0 || scs_gdrive_map_parse(data, len, BLK, &m) < 0) {
		free(data);
		unlinkat(g->obj_dfd, name, 0);
		return;
	}
	free(data);
	struct gd_file *f = file_new();
	if (!f || (f->fd = openat(g->obj_dfd, id, O_RDWR | O_CLOEXEC)) < 0) {
		free(m.have);
		if (f)
			file_free(g, f);
		return;
	}
	strcpy(f->id, id);
	strcpy(f->meta.id, id);
	f->size = f->remote_size = f->meta.size = m.size;
	f->version = f->meta.version = m.version;
	strcpy(f->rev, m.rev);
	f->have = m.have;
	f->nblocks = m.nblocks;
	f->mapped = 1;      /* (kept: right until the cache file changes, map_forget) */
	f->used = ++g->clock;
	f->next = g->files;
	g->files = f;
}

/* ---- the cache of a mount: lock, journal replay, uploader threads ---- */

struct replay {
	struct gd_be *g;
	struct scs_gdrive_jrec *recs;   /* the pending P per id */
	size_t n, cap;
	struct scs_gdrive_jrec *news;   /* the last N, U, C or R per id not done yet */
	size_t nn, ncap;
	struct scs_gdrive_jrec *metas;  /* the last M per id not done yet */
	size_t nm, mcap;
	uint64_t maxseq;
};

/* The slot of id in *v (a new one at the end if absent). */
static struct scs_gdrive_jrec *replay_slot(struct scs_gdrive_jrec **v, size_t *n, size_t *cap,
					   const char *id)
{
	for (size_t i = 0; i < *n; i++)
		if (!strcmp((*v)[i].id, id))
			return &(*v)[i];
	if (*n == *cap) {
		size_t nc = *cap ? 2 * *cap : 16;
		struct scs_gdrive_jrec *nv = realloc(*v, nc * sizeof *nv);
		if (!nv)
			return NULL;
		*v = nv;
		*cap = nc;
	}
	return &(*v)[(*n)++];
}

static int replay_cb(void *arg, const struct scs_gdrive_jrec *r)
{
	struct replay *rp = arg;
	if (r->seq > rp->maxseq)
		rp->maxseq = r->seq;
	if (r->type == 'N' || r->type == 'U' || r->type == 'C' || r->type == 'R' ||
	    r->type == 'M') {
		struct scs_gdrive_jrec *s = r->type == 'M' ?
			replay_slot(&rp->metas, &rp->nm, &rp->mcap, r->id) :
			replay_slot(&rp->news, &rp->nn, &rp->ncap, r->id);
		if (!s)
			return -ENOMEM;
		*s = *r;
		return 0;
	}
	if (r->type == 'P')
		for (size_t j = 0; j < rp->nn; j++)
			if (!strcmp(rp->news[j].id, r->id) && rp->news[j].type == 'C') {
				rp->news[j] = rp->news[--rp->nn];   /* closed: its P stands */
				break;
			}
	if (r->type == 'D') {
		for (size_t j = 0; j < rp->nn; j++)
			if (!strcmp(rp->news[j].id, r->id) && rp->news[j].seq <= r->seq) {
				rp->news[j] = rp->news[--rp->nn];   /* done since */
				break;
			}
		for (size_t j = 0; j < rp->nm; j++)
			if (!strcmp(rp->metas[j].id, r->id) && rp->metas[j].seq <= r->seq) {
				rp->metas[j] = rp->metas[--rp->nm];
				break;
			}
	}
	size_t i;
	for (i = 0; i < rp->n; i++)
		if (!strcmp(rp->recs[i].id, r->id))
			break;
	if (r->type == 'D') {
		if (i < rp->n && rp->recs[i].seq <= r->seq)
			rp->recs[i] = rp->recs[--rp->n];
		else if (i < rp->n && (r->version || r->rev[0])) {
			/* newer changes remain: based on what landed */
			rp->recs[i].version = r->version;
			strcpy(rp->recs[i].rev, r->rev);
		}
		return 0;
	}
	if (i == rp->n) {
		if (rp->n == rp->cap) {
			size_t nc = rp->cap ? 2 * rp->cap : 16;
			struct scs_gdrive_jrec *nr = realloc(rp->recs, nc * sizeof *nr);
			if (!nr)
				return -ENOMEM;
			rp->recs = nr;
			rp->cap = nc;
		}
		rp->n++;
	}
	rp->recs[i] = *r;
	return 0;
}

#define JOURNAL_MAX (256u << 20)

/* What f has pending, as the records a fresh journal holds (at most 3). */
#define PENDING_RECORDS 3
static size_t pending_records(struct gd_be *g, const struct gd_file *f,
			      struct scs_gdrive_jrec r[PENDING_RECORDS])
{
	if (f->pend_delete) {
		jrec_u(g, &r[0], f);
		r[0].type = f->meta.is_dir ? 'R' : f->if_marked ? 'C' : 'U';
		r[0].seq = f->jseq;
		return 1;
	}
	size_t n = 0;
	if (f->pend_create) {        /* where to create it (a folder: that is all) */
		jrec_n(g, &r[n], f);
		r[n++].seq = f->cseq;
	}
	if (f->pseq > f->dseq && !f->meta.is_dir) {
		jrec_p(g, &r[n], f);
		r[n++].seq = f->pseq;
	}
	if (f->want) {               /* metadata to set (times: with the content) */
		jrec_m(&r[n], f);
		r[n++].seq = f->mseq;
	}
	return n;
}

static int cache_setup(struct gd_be *g, scs_err *err)
{
	char p[SCS_PATH_MAX + 16];
	snprintf(p, sizeof p, "%s/lock", g->cache_dir);
	g->lock_fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (g->lock_fd < 0)
		return scs_err_set(err, -errno, "cannot open %s: %s", p, strerror(errno));
	if (flock(g->lock_fd, LOCK_EX | LOCK_NB) < 0) {
		if (errno == EWOULDBLOCK)
			return scs_err_set(err, -EBUSY, "another scsfs is using the cache %s: "
					   "unmount it first", g->cache_dir);
		return scs_err_set(err, -errno, "cannot lock %s: %s", p, strerror(errno));
	}
	snprintf(g->obj_dir, sizeof g->obj_dir, "%s/obj", g->cache_dir);
	if (mkdir(g->obj_dir, 0700) < 0 && errno != EEXIST)
		return scs_err_set(err, -errno, "cannot create %s: %s", g->obj_dir, strerror(errno));
	g->obj_dfd = open(g->obj_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (g->obj_dfd < 0)
		return scs_err_set(err, -errno, "cannot open %s: %s", g->obj_dir, strerror(errno));

	/* Replay the journal: what was closed or fsynced and not uploaded. */
	snprintf(p, sizeof p, "%s/journal", g->cache_dir);
	uint8_t *data = NULL;
	size_t len = 0, bad = 0;
	int r = scs_local_read(p, JOURNAL_MAX, &data, &len);
	if (r < 0 && r != -ENOENT)
		return scs_err_set(err, r, "cannot read the upload journal %s: %s", p, strerror(-r));
	struct replay rp = { .g = g };
	r = data ? scs_gdrive_journal_parse(data, len, replay_cb, &rp, &bad) : 0;
	free(data);
	if (r < 0) {
		free(rp.recs);
		free(rp.news);
		free(rp.metas);
		return scs_err_set(err, r, "cannot replay the upload journal %s: %s", p, strerror(-r));
	}
	if (bad)
		scs_log(SCS_LOG_WARN, "gdrive: %zu damaged record%s in the upload journal %s "
			"(a crash while writing); ignored", bad, bad == 1 ? "" : "s", p);
	g->seq = rp.maxseq;
	/* The pending files enter the queue; every other cache file goes. */
	for (size_t i = 0; i < rp.n; i++) {
		struct scs_gdrive_jrec *jr = &rp.recs[i];
		struct gd_file *f = file_new();
		struct stat st;
		if (!f)
			break;
		f->fd = openat(g->obj_dfd, jr->id, O_RDWR | O_CLOEXEC);
		if (f->fd < 0 || fstat(f->fd, &st) < 0) {
			scs_log(SCS_LOG_ERR, "gdrive: the cached changes of %s are missing from %s; "
				"they cannot be uploaded", jr->path[0] ? jr->path : jr->id, g->obj_dir);
			file_free(g, f);
			continue;
		}
		strcpy(f->id, jr->id);
		strcpy(f->meta.id, jr->id);
		f->size = f->remote_size = (uint64_t)st.st_size;
		f->version = jr->version;
		strcpy(f->rev, jr->rev);
		f->have = calloc(1, 1);
		f->have_all = 1;
		f->dirty = 1;
		f->jseq = f->pseq = jr->seq;
		f->wseq = f->jwseq = 1;
		f->path = jr->path[0] ? strdup(jr->path) : NULL;
		for (size_t j = 0; j < rp.nn; j++) {
			const struct scs_gdrive_jrec *nr = &rp.news[j];
			if (strcmp(nr->id, jr->id) || nr->type != 'N')
				continue;
			/* made offline: to be created where its last N says */
			f->pend_create = 1;
			g->nlocal++;
			f->cseq = nr->seq;
			if (nr->seq > jr->seq && nr->path[0]) {
				free(f->path);
				f->path = strdup(nr->path);
			}
			strcpy(f->meta.parent, nr->rev);
			snprintf(f->meta.name, sizeof f->meta.name, "%s",
				 f->path ? base_name(f->path) : f->id);
			f->meta.perm = (uint32_t)nr->version & 07777;
			f->meta.has_perm = 1;
			f->meta.is_link = S_ISLNK(nr->version);
			f->meta.mtime = f->meta.atime = st.st_mtim;
		}
		f->next = g->files;
		g->files = f;
		mine_add(g, f->id);   /* a new file among them: still ours to see */
	}
	/* Folders made offline (no P: no content) wait to be created. */
	for (size_t j = 0; j < rp.nn; j++) {
		const struct scs_gdrive_jrec *nr = &rp.news[j];
		if (nr->type != 'N' || !S_ISDIR(nr->version))
			continue;
		struct gd_file *f = file_new();
		if (!f || !(f->have = calloc(1, 1))) {
			if (f)
				file_free(g, f);
			break;
		}
		strcpy(f->id, nr->id);
		f->path = nr->path[0] ? strdup(nr->path) : NULL;
		made_here(&f->meta, nr->id, nr->rev, f->path ? base_name(f->path) : nr->id,
			  (uint32_t)nr->version & 07777, 0);
		f->meta.is_dir = f->have_all = 1;
		f->pend_create = 1;
		g->nlocal++;
		f->cseq = f->jseq = nr->seq;
		f->next = g->files;
		g->files = f;
	}
	/* Deletes made offline wait too (what was queued for those files goes). */
	for (size_t j = 0; j < rp.nn; j++) {
		const struct scs_gdrive_jrec *ur = &rp.news[j];
		if (ur->type != 'U' && ur->type != 'C')
			continue;
		struct gd_file *f;
		for (f = g->files; f && strcmp(f->id, ur->id); f = f->next)
			;
		if (!f) {
			if (!(f = file_new()))
				break;
			strcpy(f->id, ur->id);
			strcpy(f->meta.id, ur->id);
			f->fd = openat(g->obj_dfd, ur->id, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
			f->have = calloc(1, 1);
			if (f->fd < 0 || !f->have) {
				file_free(g, f);
				break;
			}
			f->path = ur->path[0] ? strdup(ur->path) : NULL;
			f->next = g->files;
			g->files = f;
		}
		f->version = ur->version;
		strcpy(f->rev, ur->rev);
		g->nlocal += !f->pend_delete;
		f->pend_delete = f->deleted = 1;
		f->if_marked = ur->type == 'C';   /* made, and its creator died before a close */
		if (ur->seq > f->jseq)
			f->jseq = ur->seq;
	}
	DIR *d = fdopendir(dup(g->obj_dfd));
	if (d) {
		/* clean caches noted at the last unmount come back (at most
		 * MAX_CLOSED); every other file goes */
		struct dirent *de;
		size_t nmaps = 0;
		while ((de = readdir(d))) {
			size_t n = strlen(de->d_name);
			char id[SCS_GDRIVE_ID_MAX + 1];
			if (n > 4 && n - 4 <= SCS_GDRIVE_ID_MAX && !strcmp(de->d_name + n - 4, ".map")) {
				memcpy(id, de->d_name, n - 4);
				id[n - 4] = '\0';
				int pending = 0;
				for (size_t i = 0; i < rp.n && !pending; i++)
					pending = !strcmp(rp.recs[i].id, id);
				for (size_t i = 0; i < rp.nn && !pending; i++)
					pending = !strcmp(rp.news[i].id, id);
				if (!pending && nmaps < MAX_CLOSED && id_ok(id)) {
					map_load(g, id);
					nmaps++;
				}
			}
		}
		rewinddir(d);
		while ((de = readdir(d))) {
			if (!strncmp(de->d_name, ".swap-", 6))
				unlinkat(g->obj_dfd, de->d_name, 0);   /* a crash in pend_replace */
			if (de->d_name[0] == '.')
				continue;
			int keep = 0;
			size_t dn = strlen(de->d_name);
			for (struct gd_file *f = g->files; f && !keep; f = f->next) {
				size_t in = strlen(f->id);
				keep = !strcmp(f->id, de->d_name) ||
				       (f->mapped && dn == in + 4 && !strncmp(f->id, de->d_name, in) &&
					!strcmp(de->d_name + in, ".map"));
			}
			if (!keep)
				unlinkat(g->obj_dfd, de->d_name, 0);
		}
		closedir(d);
	}
	/* Folders removed offline, and metadata set offline, wait too: each in
	 * the gd_file of its entry (a clean cache taken back above, or one
	 * without cache state). */
	for (size_t j = 0; j < rp.nn + rp.nm; j++) {
		const struct scs_gdrive_jrec *jr = j < rp.nn ? &rp.news[j] : &rp.metas[j - rp.nn];
		if (jr->type != 'R' && jr->type != 'M')
			continue;
		struct scs_gdrive_meta *hm = calloc(1, sizeof *hm);
		struct gd_file *f = NULL;
		if (hm) {
			strcpy(hm->id, jr->id);
			f = holder_locked(g, hm, jr->path[0] ? jr->path : NULL);
			free(hm);
		}
		if (!f)
			break;
		f->refs--;
		if (jr->seq > f->jseq)
			f->jseq = jr->seq;
		if (jr->type == 'R') {
			f->meta.is_dir = 1;
			g->nlocal += !f->pend_delete;
			f->pend_delete = f->deleted = 1;
			want_clear_locked(g, f, SCS_GDRIVE_WANT_ALL);
			continue;
		}
		if (f->pend_delete)
			continue;       /* deleted since: that is what stands */
		unsigned w = (unsigned)jr->version;
		if (!jr->rev[0] || !jr->path[0])
			w &= ~SCS_GDRIVE_WANT_MOVE;     /* (no place to move to: not ours) */
		struct scs_gdrive_meta *v = calloc(1, sizeof *v);
		if (!v)
			break;
		if (w & SCS_GDRIVE_WANT_MOVE) {
			char nb[SCS_GDRIVE_NAME_MAX + 1];
			strcpy(v->parent, jr->rev);
			snprintf(v->name, sizeof v->name, "%s", new_name(jr->path, nb, sizeof nb));
			free(f->path);
			f->path = strdup(jr->path);
		}
		v->perm = jr->mode;
		v->mtime = jr->mtime;
		v->atime = jr->atime;
		meta_take(&f->meta, v, w);
		free(v);
		want_add_locked(g, f, w);
		f->mseq = jr->seq;
	}
	/* A fresh journal holding only what is pending. */
	char tmp[SCS_PATH_MAX + 32];
	snprintf(tmp, sizeof tmp, "%s/journal.new", g->cache_dir);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	r = fd < 0 ? -errno : 0;
	size_t jl = 0;
	char *line = malloc(SCS_GDRIVE_JLINE_MAX);
	if (!line)
		r = -ENOMEM;
	for (struct gd_file *f = g->files; f && !r; f = f->next) {
		if (!f->jseq)
			continue;    /* a clean cache taken back */
		struct scs_gdrive_jrec *jr = malloc(PENDING_RECORDS * sizeof *jr);
		if (!jr) {
			r = -ENOMEM;
			break;
		}
		size_t nj = pending_records(g, f, jr);
		for (size_t k = 0; k < nj && !r; k++) {
			int n = scs_gdrive_journal_line(&jr[k], line, SCS_GDRIVE_JLINE_MAX);
			r = n < 0 ? n : write_all_fd(fd, line, (size_t)n);
			jl += n > 0 ? (size_t)n : 0;
		}
		free(jr);
	}
	free(line);
	free(rp.recs);
	free(rp.news);
	free(rp.metas);
	if (!r && fsync(fd) < 0)
		r = -errno;
	if (fd >= 0)
		close(fd);
	if (!r && rename(tmp, p) < 0)
		r = -errno;
	if (r < 0)
		return scs_err_set(err, r, "cannot write the upload journal %s: %s", p, strerror(-r));
	int dfd = open(g->cache_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		(void)fsync(dfd);
		close(dfd);
	}
	g->jfd = open(p, O_WRONLY | O_APPEND | O_CLOEXEC);
	if (g->jfd < 0)
		return scs_err_set(err, -errno, "cannot open %s: %s", p, strerror(errno));
	g->jsize = jl;
	size_t npend = 0;
	for (struct gd_file *f = g->files; f; f = f->next)
		npend += f->jseq != 0;
	if (npend)
		scs_log(SCS_LOG_INFO, "gdrive: %zu file%s from the last session wait%s to upload",
			npend, npend == 1 ? "" : "s", npend == 1 ? "s" : "");
	ids_take(g);
	keep_load(g);
	keep_done(g);
	g->status_gen++;
	return 0;
}

static int uploader_start(scs_backend *be, scs_err *err)
{
	struct gd_be *g = GB(be);
	if (!g->wb || g->nworkers)
		return 0;
	g->snap_due = time(NULL) + SNAP_EVERY;
	unsigned n = g->opts.upload_parallel ? g->opts.upload_parallel : 3;
	if (n > sizeof g->workers / sizeof g->workers[0])
		n = sizeof g->workers / sizeof g->workers[0];
	for (unsigned i = 0; i < n; i++) {
		int r = pthread_create(&g->workers[i], NULL, uploader, g);
		if (r)
			return scs_err_set(err, -r, "cannot start the upload threads: %s", strerror(r));
		g->nworkers++;
	}
	return 0;
}

/* scsfs, after its fork: the download pool, then the uploaders. */
static int gd_start(scs_backend *be, scs_err *err)
{
	int r = pool_start(GB(be), err);
	return r < 0 ? r : uploader_start(be, err);
}

/* Unmount: one more try for everything queued, then stop. */
static void uploader_stop(struct gd_be *g)
{
	if (!g->nworkers)
		return;
	pthread_mutex_lock(&g->lock);
	g->stopping = 1;
	pthread_cond_broadcast(&g->cond);
	pthread_mutex_unlock(&g->lock);
	for (unsigned i = 0; i < g->nworkers; i++)
		pthread_join(g->workers[i], NULL);
	g->nworkers = 0;
	size_t left = 0;
	for (struct gd_file *f = g->files; f; f = f->next)
		if (f->jseq > f->dseq && !f->deleted)
			left++;
	if (left)
		scs_log(SCS_LOG_WARN, "gdrive: %zu file%s not uploaded yet (%s); they upload at "
			"the next mount of this folder", left, left == 1 ? "" : "s",
			g->last_error[0] ? g->last_error : "Drive unreachable");
	write_status(g, 1);
}

/* ---- whole small objects ---- */

/* The content of id if it is here and not on Drive yet (made here, or
 * changed and waiting to upload), or with clean, whole in the cache: 0 and
 * *data, *len; -ENOENT if not. */
static int local_content(struct gd_be *g, const char *id, size_t max, uint8_t **data,
			 size_t *len, int clean)
{
	struct gd_file *f;
	pthread_mutex_lock(&g->lock);
	for (f = g->files; f; f = f->next)
		if (!strcmp(f->id, id))
			break;
	if (f && (f->nocontent || f->fd < 0 || f->deleted ||
		  !(local_only(f) || f->dirty || f->pseq > f->dseq || (clean && f->have_all))))
		f = NULL;
	if (f)
		f->refs++;
	pthread_mutex_unlock(&g->lock);
	if (!f)
		return -ENOENT;
	pthread_mutex_lock(&f->lock);
	uint64_t size = f->size;
	*data = NULL;
	int r = size > max ? -EFBIG : read_head(f->fd, size, data);
	pthread_mutex_unlock(&f->lock);
	if (!r) {
		*len = (size_t)size;
	} else {
		free(*data);
		*data = NULL;
	}
	file_unref(g, f);
	return r;
}

static int gd_read_file(scs_backend *be, const char *path, size_t max, uint8_t **data, size_t *len)
{
	*data = NULL;
	*len = 0;
	struct scs_gdrive_meta *m = malloc(sizeof *m);
	if (!m)
		return -ENOMEM;
	int r = resolve(GB(be), path, m, NULL);
	if (!r && m->is_dir)
		r = -EISDIR;
	if (!r && (r = local_content(GB(be), m->id, max, data, len, 0)) == -ENOENT)
		r = m->size > max ? -EFBIG : download_memo(GB(be), path, m, max, data, len);
	free(m);
	return r;
}

/* Create name under pid with content, exclusively as far as Drive allows:
 * after creating, the smallest id among equal names wins; a loser deletes
 * its copy and reports EEXIST. */
/* Create the entry id (pre-generated) as name in folder pid with its
 * content, in one request (a link: marked so, mode 777); a retry that
 * finds the id taken was our own earlier attempt. */
static int object_create(struct gd_be *g, const char *id, const char *pid, const char *name,
			 const void *data, size_t len, int link, struct scs_gdrive_meta *out)
{
	json_t *ap = json_pack("{s:s}", "m", link ? "777" : "644");
	if (link)
		json_object_set_new(ap, LINK_KEY, json_string("1"));
	json_t *j = json_pack("{s:s, s:s, s:[s], s:o}", "id", id, "name", name, "parents", pid,
			      "appProperties", ap);
	char *meta = j ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	if (!meta)
		return -ENOMEM;
	ent_put(g, id, pid, name, 0, 0, 0);  /* its version comes with the reply */
	int r = upload_multipart(g, id, meta, 1, data, len, out);
	free(meta);
	if (r < 0)
		ent_del(g, id);
	else
		own_put(g, id, pid, name, 0, 1);
	return r;
}

static int create_object(struct gd_be *g, const char *pid, const char *name, const void *data,
			 size_t len, int link, int exclusive, struct scs_gdrive_meta *out)
{
	char id[SCS_GDRIVE_ID_MAX + 1];
	int r = next_id(g, id);
	if (r < 0)
		return r;
	r = object_create(g, id, pid, name, data, len, link, out);
	if (r < 0 || !exclusive)
		return r;
	struct scs_gdrive_meta w;
	r = lookup(g, pid, name, &w);
	if (r == 0 && strcmp(w.id, id)) {
		delete_id(g, id);
		return -EEXIST;
	}
	return r == -ENOENT ? 0 : r;   /* not yet visible in listings: ours stands */
}

/* A symbolic link made offline: created on Drive with its target in one
 * request (nobody ever sees it without one), then done. */
static int link_pending(struct gd_be *g, struct gd_file *f, uint64_t seq)
{
	char pid[SCS_GDRIVE_ID_MAX + 1];
	pthread_mutex_lock(&g->lock);
	if (!local_only(f)) {
		pthread_mutex_unlock(&g->lock);
		return job_done(g, f, seq);
	}
	f->creating = 1;
	strcpy(pid, f->meta.parent);
	char *name = strdup(f->meta.name);
	pthread_mutex_unlock(&g->lock);
	uint8_t *data = NULL;
	pthread_mutex_lock(&f->lock);
	uint64_t size = f->size, wseq = f->wseq;
	int r = name ? read_head(f->fd, size, &data) : -ENOMEM;
	pthread_mutex_unlock(&f->lock);
	if (!r)
		r = parent_ready(g, pid);
	if (!r)
		r = object_create(g, f->id, pid, name, data, size, 1, NULL);
	if (r == -ENOENT && !(r = folder_back(g, pid)))
		r = object_create(g, f->id, pid, name, data, size, 1, NULL);
	if (r == -ENOENT)
		r = -ESTALE;
	pthread_mutex_lock(&g->lock);
	f->creating = 0;
	if (!r && f->pend_create) {
		f->pend_create = 0;
		g->nlocal--;
	}
	pthread_cond_broadcast(&g->cond);
	pthread_mutex_unlock(&g->lock);
	if (!r)
		r = job_done(g, f, seq);
	if (!r) {
		pthread_mutex_lock(&f->lock);
		if (f->wseq == wseq)
			f->dirty = 0;
		pthread_mutex_unlock(&f->lock);
		scs_log(SCS_LOG_DEBUG, "gdrive: link %s, made offline, is on Drive now", f->id);
	}
	free(name);
	free(data);
	return r;
}

/* A new whole object (link: a symbolic link), through the write-back cache. */
static int put_local(scs_backend *be, const char *path, const void *data, size_t len, int link)
{
	scs_obj *o;
	int r = open_obj(be, path, O_RDWR | O_CREAT | O_EXCL, link ? 0777 : 0644, link, &o);
	if (r < 0)
		return r;
	ssize_t w = gd_pwrite(o, data, len, 0);
	r = w < 0 ? (int)w : (size_t)w != len ? -EIO : 0;
	int c = gd_obj_close(o);
	return r ? r : c;
}

static int put_object(scs_backend *be, const char *path, const void *data, size_t len,
		      int exclusive, int link)
{
	struct gd_be *g = GB(be);
	struct scs_gdrive_meta *m = malloc(sizeof *m);
	char pid[SCS_GDRIVE_ID_MAX + 1];
	if (!m)
		return -ENOMEM;
	int r = resolve(g, path, m, pid), sent = 0;
	const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	if (r == 0) {
		if (exclusive || link)
			r = -EEXIST;
		else if (m->is_dir)
			r = -EISDIR;
		else   /* a content upload replaces the whole object atomically */
			sent = (r = upload_multipart(g, m->id, "{\"appProperties\":{\"" PEND_KEY
						     "\":null}}", 0, data, len, m)) == 0;
	} else if (r == -ENOENT) {
		/* (while Drive is unreachable, or in a folder made so, a new
		 * object such as a folder's .scsdir is made here as a new file) */
		int can = g->wb && (link || !exclusive);   /* (exclusive: keyring entries) */
		struct scs_gdrive_meta pm;
		int here = can && (__atomic_load_n(&g->offline, __ATOMIC_RELAXED) ||
				   pend_meta_get(g, pid, &pm) == 0);
		if (!here) {
			queueable = can;
			r = create_object(g, pid, base, data, len, link, exclusive || link, m);
			queueable = 0;
		}
		if (here || (can && offline_now(g, r)))
			r = put_local(be, path, data, len, link);
		else
			sent = r == 0;    /* (made on Drive: m is its metadata) */
	}
	if (sent)   /* what this mount wrote is what it reads (a folder's .scsdir,
		     * a link's target), offline too */
		memo_put_data(g, path, m, data, len);
	free(m);
	return r;
}

static int gd_write_file(scs_backend *be, const char *path, const void *data, size_t len)
{
	return put_object(be, path, data, len, 0, 0);
}

static int gd_create_file(scs_backend *be, const char *path, const void *data, size_t len)
{
	return put_object(be, path, data, len, 1, 0);
}

/* Drive has no symlinks: a small object marked appProperties scsfs_link=1
 * whose content is the (already encrypted) target. */
static int gd_symlink(scs_backend *be, const char *target, const char *path)
{
	return put_object(be, path, target, strlen(target), 1, 1);
}

static int gd_readlink(scs_backend *be, const char *path, char *buf, size_t size)
{
	if (size < 2)
		return -EINVAL;
	struct scs_gdrive_meta *m = malloc(sizeof *m);
	if (!m)
		return -ENOMEM;
	int r = resolve(GB(be), path, m, NULL);
	if (!r && !m->is_link)
		r = -EINVAL;
	uint8_t *data = NULL;
	size_t len = 0;
	if (!r && (r = local_content(GB(be), m->id, size - 1, &data, &len, 0)) == -ENOENT)
		r = download_memo(GB(be), path, m, size - 1, &data, &len);
	free(m);
	if (r == -EFBIG)
		return -ENAMETOOLONG;
	if (r < 0)
		return r;
	if (memchr(data, 0, len)) {
		free(data);
		return -EIO;
	}
	memcpy(buf, data, len);
	buf[len] = '\0';
	free(data);
	return (int)len;
}

/* ---- the changes feed ---- */

#define CHANGE_FIELDS "nextPageToken,newStartPageToken,changes(fileId,removed,file(" FIELDS \
	",parents,trashed))"

static void notify(struct gd_be *g, const char *path, int what)
{
	if (g->be.hooks.changed)
		g->be.hooks.changed(g->be.hooks.arg, path, what);
}

/* One change: update what we know, drop stale cached data, tell the core. */
static int apply_change(void *arg, const char *id, const struct scs_gdrive_meta *m)
{
	struct gd_be *g = arg;
	if (m && not_yet(g, m))
		return 0;      /* another member's new file: news once its content is there */
	char *oldp = malloc(SCS_PATH_MAX), *newp = malloc(SCS_PATH_MAX);
	if (!oldp || !newp) {
		free(oldp);
		free(newp);
		return -ENOMEM;
	}
	int gone = !m || m->trashed;
	int have_old = 0, have_new = 0, moved = 0, fresh = 0, newer = 0, is_dir;
	pthread_mutex_lock(&g->lock);
	struct gd_ent *e = ent_find(g, id);
	if (e)
		have_old = ent_path_locked(g, e->pid, e->name, e->dup, id, oldp, SCS_PATH_MAX);
	else
		have_old = dir_path_locked(g, id, oldp, SCS_PATH_MAX) && oldp[0];
	is_dir = m ? m->is_dir : dir_path_locked(g, id, newp, SCS_PATH_MAX);
	int same_place = e && m && !strcmp(e->pid, m->parent) && !strcmp(e->name, m->name);
	if (!gone)
		have_new = ent_path_locked(g, m->parent, m->name, same_place && e->dup, id, newp,
					   SCS_PATH_MAX);
	moved = have_old && !same_place;
	fresh = !e && have_new;
	newer = m && e && m->version > e->version;
	if (gone || !have_new) {
		if (e)
			ent_del_locked(g, id);
	} else {
		ent_put_locked(g, id, m->parent, m->name, same_place && e->dup, m->version, 0);
	}
	pthread_mutex_unlock(&g->lock);
	/* fresher than listings may be for a while (in our folders) */
	if (gone && have_old)
		own_put(g, id, NULL, NULL, m ? m->version : 0, 0);
	else if (!gone && (have_new || have_old))
		own_put(g, id, m->parent, m->name, m->version, 0);
	scs_log(SCS_LOG_DEBUG, "gdrive: change of %s (version %llu)%s%s%s%s", id,
		m ? (unsigned long long)m->version : 0ULL, gone ? ", gone" : "",
		moved ? ", moved" : "", fresh ? ", new" : "", newer ? ", newer" : "");
	if (is_dir && moved)
		dir_cache_move(g, oldp, have_new ? newp : NULL);
	/* what the offline memo says of these places is stale now */
	if (have_old && (moved || gone))
		memo_drop(g, oldp);
	if (have_new && (moved || fresh || newer))
		memo_drop(g, newp);
	int cached = is_dir ? 0 : file_remote_changed(g, id, gone ? NULL : m);
	int meta_only = cached < 0;
	if (cached > 0)
		newer = 1;
	if (meta_only)
		newer = 0;          /* same content: attributes only, open files stay */
	if (moved)
		notify(g, oldp, SCS_BE_CHANGED_ENTRY);
	if (have_new && (moved || fresh || meta_only))
		notify(g, newp, SCS_BE_CHANGED_ENTRY);
	if (have_new && newer && !is_dir)
		notify(g, newp, SCS_BE_CHANGED_CONTENT);
	free(oldp);
	free(newp);
	return 0;
}

static int start_token(struct gd_be *g, char *out, size_t cap)
{
	char url[SCS_URL_MAX + 128];
	snprintf(url, sizeof url, "%s/changes/startPageToken?supportsAllDrives=true"
		 "&fields=startPageToken", g->ep.api);
	json_t *j = NULL;
	int r = get_json(g, url, &j);
	if (r < 0)
		return r;
	r = copy_token(j, "startPageToken", out, cap);
	if (!r && !out[0])
		r = -EBADMSG;
	json_decref(j);
	return r;
}

/* The feed's position moves on (read by the snapshot under g->lock). */
static void token_set(struct gd_be *g, const char *t)
{
	pthread_mutex_lock(&g->lock);
	snprintf(g->token, sizeof g->token, "%s", t);
	pthread_mutex_unlock(&g->lock);
}

/* Read the feed from g->token to its end.  0, or -EIO (try later). */
static int poll_changes(struct gd_be *g)
{
	char next[sizeof g->token], news[sizeof g->token];
	size_t ucap = SCS_URL_MAX + 2 * sizeof g->token + 512;
	char *url = malloc(ucap);
	if (!url)
		return -ENOMEM;
	int r;
	if (!g->token[0]) {
		/* mounted while Drive was unreachable, with no token to read from:
		 * start now, and let the core forget what it cached meanwhile */
		free(url);
		r = start_token(g, news, sizeof news);
		if (!r) {
			token_set(g, news);
			notify(g, NULL, SCS_BE_CHANGED_CONTENT | SCS_BE_CHANGED_ENTRY);
		}
		return r;
	}
	for (;;) {
		char *et = scs_http_escape(g->token);
		if (!et) {
			r = -ENOMEM;
			break;
		}
		snprintf(url, ucap, "%s/changes?pageToken=%s&pageSize=1000&includeRemoved=true"
			 "&spaces=drive&supportsAllDrives=true&includeItemsFromAllDrives=true"
			 "&fields=" CHANGE_FIELDS, g->ep.api, et);
		free(et);
		struct gd_rq q;
		struct scs_http_resp rs;
		gd_rq_init(&q, "GET", url);
		q.once = 1;
		r = gd_do(g, &q, &rs);
		if (r == -EINVAL || r == -ENOENT) {
			/* The token is no longer accepted: start again from now and
			 * let the core forget everything it cached. */
			scs_log(SCS_LOG_WARN, "gdrive: the changes feed restarted; dropping cached data");
			r = start_token(g, news, sizeof news);
			if (!r) {
				token_set(g, news);
				notify(g, NULL, SCS_BE_CHANGED_CONTENT | SCS_BE_CHANGED_ENTRY);
			}
			break;
		}
		if (r < 0)
			break;
		r = scs_gdrive_parse_changes(rs.body, rs.len, apply_change, g, next, sizeof next,
					     news, sizeof news);
		scs_http_resp_free(&rs);
		if (r < 0) {
			scs_log(SCS_LOG_WARN, "gdrive: unreadable changes from Drive");
			break;
		}
		if (next[0]) {
			token_set(g, next);
			continue;
		}
		if (news[0])
			token_set(g, news);
		break;
	}
	free(url);
	return r;
}

static void *watch_main(void *arg)
{
	struct gd_be *g = arg;
	int failing = 0;
	pthread_mutex_lock(&g->wlock);
	while (!g->wstop) {
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += (time_t)g->every;
		while (!g->wstop && pthread_cond_timedwait(&g->wcv, &g->wlock, &until) != ETIMEDOUT)
			;
		if (g->wstop)
			break;
		pthread_mutex_unlock(&g->wlock);
		int r = poll_changes(g);
		if (r < 0 && !failing)
			scs_log(SCS_LOG_WARN, "gdrive: cannot read the changes feed (%s); other members' "
				"changes show up when Drive answers again", strerror(-r));
		else if (r == 0 && failing)
			scs_log(SCS_LOG_INFO, "gdrive: reading the changes feed again");
		failing = r < 0;
		pthread_mutex_lock(&g->wlock);
	}
	pthread_mutex_unlock(&g->wlock);
	return NULL;
}

int scs_gdrive_watch(scs_backend *be, unsigned seconds, scs_err *err)
{
	if (be->ops->close != gd_close)
		return -ENOTSUP;
	struct gd_be *g = GB(be);
	if (!seconds || g->watching)
		return 0;
	/* (mounted offline: from the snapshot's token, or the first time Drive
	 * answers; poll_changes) */
	char tok[sizeof g->token];
	int r = g->token[0] ? 0 : start_token(g, tok, sizeof tok);
	if (r < 0 && !offline_now(g, r))
		return scs_err_set(err, r, "cannot start the Google Drive changes feed (%s); other "
				   "members' changes show up only after a remount", strerror(-r));
	if (!g->token[0] && !r) {
		pthread_mutex_lock(&g->lock);
		strcpy(g->token, tok);
		pthread_mutex_unlock(&g->lock);
	}
	g->every = seconds;
	g->wstop = 0;
	if (pthread_create(&g->watch_th, NULL, watch_main, g) != 0)
		return scs_err_set(err, -EAGAIN, "cannot start the changes feed thread");
	g->watching = 1;
	return 0;
}

void scs_gdrive_unwatch(scs_backend *be)
{
	if (be->ops->close != gd_close)
		return;
	struct gd_be *g = GB(be);
	if (!g->watching)
		return;
	pthread_mutex_lock(&g->wlock);
	g->wstop = 1;
	pthread_cond_signal(&g->wcv);
	pthread_mutex_unlock(&g->wlock);
	pthread_join(g->watch_th, NULL);
	g->watching = 0;
}

static void gd_close(scs_backend *be)
{
	struct gd_be *g = GB(be);
	pool_stop(g);
	scs_gdrive_unwatch(be);
	uploader_stop(g);
	if (g->wb && !g->opening) {
		(void)memo_save(g);   /* (also when nothing changed: its time says when) */
		ids_save(g);
	}
	while (g->files) {
		struct gd_file *f = g->files;
		g->files = f->next;
		if (g->wb && map_save(g, f) == 0) {
			f->dirty = 1;       /* keep obj/ID: file_free removes clean ones */
			f->deleted = 0;
		}
		if (f->dirty && !g->wb) {
			pthread_mutex_lock(&f->lock);
			flush_locked(g, f);
			pthread_mutex_unlock(&f->lock);
		}
		file_free(g, f);
	}
	if (g->jfd >= 0)
		close(g->jfd);
	if (g->obj_dfd >= 0)
		close(g->obj_dfd);
	if (g->lock_fd >= 0)
		close(g->lock_fd);
	pthread_mutex_destroy(&g->jlock);
	pthread_cond_destroy(&g->cond);
	pthread_mutex_destroy(&g->dl_lock);
	pthread_cond_destroy(&g->dl_cv);
	if (g->memo) {
		memo_drop(g, "");
		pthread_mutex_destroy(&g->memo->lock);
		free(g->memo);
	}
	for (size_t i = 0; i < g->ndirs; i++)
		free(g->dirs[i].path);
	free(g->dirs);
	free(g->ids);
	keep_free(g);
	pthread_mutex_destroy(&g->keep_lock);
	pthread_mutex_destroy(&g->status_lock);
	pthread_mutex_destroy(&g->keep_run);
	ents_free(g);
	owns_free(g);
	mines_free(g);
	scs_oauth_close(g->oauth);
	pthread_mutex_destroy(&g->lock);
	pthread_mutex_destroy(&g->rlock);
	pthread_mutex_destroy(&g->wlock);
	pthread_cond_destroy(&g->wcv);
	free(g);
}

static const struct scs_backend_ops gdrive_ops = {
	.scheme = "gdrive",
	.close = gd_close,
	.stat = gd_stat,
	.list = gd_list,
	.mkdir = gd_mkdir,
	.rmdir = gd_rmdir,
	.unlink = gd_unlink,
	.rename = gd_rename,
	.symlink = gd_symlink,
	.readlink = gd_readlink,
	.link = NULL,               /* no hard links on Drive: ENOTSUP */
	.chmod = gd_chmod,
	.chown = gd_chown,
	.utimens = gd_utimens,
	.statfs = gd_statfs,
	.open = gd_open,
	.pread = gd_pread,
	.pwrite = gd_pwrite,
	.ftruncate = gd_ftruncate,
	.fallocate = NULL,
	.fsync = gd_fsync,
	.fstat = gd_fstat,
	.obj_close = gd_obj_close,
	.obj_flush = gd_obj_flush,
	.hold = gd_hold,
	.start = gd_start,
	.read_file = gd_read_file,
	.write_file = gd_write_file,
	.create_file = gd_create_file,
};

static int gdrive_open(const char *spec, const char *remote, scs_backend **out, scs_err *err,
		       int create)
{
	*out = NULL;
	struct gd_be *g = calloc(1, sizeof *g);
	if (!g)
		return scs_err_set(err, -ENOMEM, "out of memory");
	pthread_mutex_init(&g->lock, NULL);
	pthread_mutex_init(&g->rlock, NULL);
	pthread_mutex_init(&g->wlock, NULL);
	pthread_cond_init(&g->wcv, NULL);
	pthread_mutex_init(&g->jlock, NULL);
	pthread_cond_init(&g->cond, NULL);
	pthread_mutex_init(&g->dl_lock, NULL);
	pthread_cond_init(&g->dl_cv, NULL);
	pthread_mutex_init(&g->keep_lock, NULL);
	pthread_mutex_init(&g->status_lock, NULL);
	pthread_mutex_init(&g->keep_run, NULL);
	g->lock_fd = g->obj_dfd = g->jfd = -1;
	g->memo = calloc(1, sizeof *g->memo);
	if (g->memo)
		pthread_mutex_init(&g->memo->lock, NULL);
	scs_backend_get_opts(&g->opts);
	g->wb = g->opts.write_back && !create;
	if (g->opts.upload_delay <= 0)
		g->opts.upload_delay = 1.0;
	g->be.ops = &gdrive_ops;
	g->opening = 1;
	g->ids = calloc(IDS_MAX, sizeof *g->ids);
	g->be.remote = strdup(remote);
	int r = (g->ids && g->be.remote) ? 0 : scs_err_set(err, -ENOMEM, "out of memory");
	if (!r)
		r = scs_oauth_open(&g->oauth, err);
	if (r < 0)
		goto fail;
	scs_gdrive_endpoints(&g->ep);

	/* The cache directory of this remote. */
	r = scs_gdrive_cache_dir(remote, g->cache_dir, sizeof g->cache_dir);
	if (r == 0)
		r = scs_mkdir_p(g->cache_dir, 0700);
	if (r < 0) {
		r = scs_err_set(err, r, "cannot create the cache directory %s: %s", g->cache_dir,
				strerror(-r));
		goto fail;
	}
	if (g->wb && (r = cache_setup(g, err)) < 0)
		goto fail;

	if (!strncmp(spec, "id=", 3)) {
		if (!id_ok(spec + 3)) {
			r = scs_err_set(err, -EINVAL, "%s: not a Drive folder id; copy the id from the "
					"folder's address in Drive", remote);
			goto fail;
		}
		struct scs_gdrive_meta m;
		r = get_meta(g, spec + 3, &m);
		if (r == 0 && !m.is_dir)
			r = -ENOTDIR;
		if (r < 0)
			goto open_fail;
		strcpy(g->root_id, m.id);
	} else {
		if (spec[0] != '/') {
			r = scs_err_set(err, -EINVAL, "%s: use gdrive:/path/in/drive or "
					"gdrive:id=FOLDER_ID", remote);
			goto fail;
		}
		strcpy(g->root_id, "root");
		struct scs_gdrive_meta m;
		r = get_meta(g, "root", &m);
		if (r < 0)
			goto open_fail;
		strcpy(g->root_id, m.id);
		/* Walk the path from My Drive's root. */
		const char *p = spec;
		while (*p) {
			while (*p == '/')
				p++;
			const char *e = strchr(p, '/');
			size_t n = e ? (size_t)(e - p) : strlen(p);
			if (!n)
				break;
			char name[SCS_GDRIVE_NAME_MAX + 1];
			if (n > SCS_GDRIVE_NAME_MAX) {
				r = scs_err_set(err, -ENAMETOOLONG, "%s: a folder name is too long", remote);
				goto fail;
			}
			memcpy(name, p, n);
			name[n] = '\0';
			r = lookup(g, g->root_id, name, &m);
			if (r == -ENOENT && create) {
				char nid[SCS_GDRIVE_ID_MAX + 1];
				r = create_meta(g, g->root_id, name, FOLDER_MIME, 0755, 0, nid, NULL);
				if (r == 0)
					r = get_meta(g, nid, &m);
			}
			if (r == 0 && !m.is_dir)
				r = -ENOTDIR;
			if (r < 0)
				goto open_fail;
			strcpy(g->root_id, m.id);
			p += n;
		}
	}
	g->opening = 0;
	*out = &g->be;
	return 0;
open_fail:
	if (g->wb && offline_now(g, r)) {
		/* Drive unreachable: what this machine saw of it last, if anything */
		time_t when;
		if (memo_load(g, &when) == 0) {
			memo_reconcile(g);
			char ts[64] = "?";
			struct tm tm;
			if (when && localtime_r(&when, &tm))
				strftime(ts, sizeof ts, "%Y-%m-%d %H:%M", &tm);
			scs_log(SCS_LOG_WARN, "gdrive: Drive is unreachable; mounted from what this machine "
				"last saw of %s (%s): what it cached reads and writes as usual, and changes "
				"upload when Drive is back", remote, ts);
			set_error(g, "Drive unreachable at mount");
			g->opening = 0;
			*out = &g->be;
			return 0;
		}
	}
	if (r == -ENOENT)
		r = scs_err_set(err, -ENOENT, "folder %s does not exist in Google Drive; check the "
				"path (scsctl init creates it)", remote);
	else if (r == -ENOTDIR)
		r = scs_err_set(err, -ENOTDIR, "%s is not a folder in Google Drive", remote);
	else if (r == -EACCES)
		r = scs_err_set(err, -EACCES, "Google Drive refused access to %s; sign in again "
				"with `scsctl auth gdrive`", remote);
	else
		r = scs_err_set(err, r, "cannot reach Google Drive for %s (%s)%s; check the "
				"network and try again", remote, strerror(-r), g->wb ?
				" and this machine never mounted it before" : "");
fail:
	free(g->be.remote);
	g->be.remote = NULL;
	gd_close(&g->be);
	return r;
}

int scs_backend_gdrive_open(const char *spec, const char *remote, scs_backend **out, scs_err *err)
{
	return gdrive_open(spec, remote, out, err, 0);
}

int scs_gdrive_mkpath(const char *remote, scs_err *err)
{
	scs_backend *be;
	if (strncmp(remote, "gdrive:", 7) || remote[7] != '/')
		return scs_err_set(err, -EINVAL, "%s: only gdrive:/path folders can be created", remote);
	int r = gdrive_open(remote + 7, remote, &be, err, 1);
	if (r == 0)
		scs_backend_close(be);
	return r;
}
