/* upload.c - what a remote back end's write-back queue sends (gdrive:)
 * goes out in the group's current epoch (backend.h, hooks.upload).
 *
 * The race: a mount writes a new file, or makes files and folders while
 * Drive is unreachable, with the keyring it last read; its uploader sends
 * them a second after close, or days later.  Until then nobody else sees
 * them, a re-key pass run elsewhere included: if the group moved to a new
 * epoch meanwhile and that pass retired the old one, whatever arrives in it
 * is refused by every member, its writer too.  So the back end asks before
 * it sends a file's content (SEND), before it makes on Drive an entry made
 * offline (CREATE) or gives one the name it got offline (MOVE), and again
 * once a new file's first upload landed (SENT):
 *   - the view of the keyring is made fresh: before sending, from a look at
 *     most FS_FRESH_NS old; after landing, from one begun after it landed
 *     (a pass that missed the file listed its folder before that, and the
 *     epoch it moves to was written before it began);
 *   - the name of a new entry, or one given offline (nobody else's to
 *     move), in an older epoch is re-encrypted under the current name key:
 *     a rename in its folder, to a conflict name if someone made that name
 *     meanwhile; so is the target of a link made offline (a new link);
 *   - content in an older epoch moves as upgrade on write moves it (a
 *     fresh file key, re-encrypted beside, renamed over the old object,
 *     whose queued upload goes with it), read with the key of a retired
 *     epoch if need be: it is this member's own write (vault.h,
 *     scs_vault_keyctx_own; rekey.h, scs_rekey_own: only the very version
 *     queued, never anything else the folder holds, so an old copy the
 *     folder puts back is refused as ever).  If the entry on Drive is no
 *     longer the version the edit was based on (another member's change,
 *     or a pass replaced it), ours becomes a conflict copy of its own, made
 *     from the bytes that were to be sent, in the current epoch.
 * Once the mount knows of a newer epoch, old-epoch bytes are never sent,
 * except by a file open for writing since before it learned of it: that
 * file keeps its key until its next open (README), its queued uploads too
 * (fs_held), unless that epoch is retired: then they wait for its next
 * seal, which moves it first (rehome.c).  Entries of others are never
 * touched. */
#include "fs.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "scs/format.h"
#include "scs/keyring.h"
#include "scs/log.h"
#include "scs/rekey.h"

/* Errors of a look at the keyring that say the remote could not be asked
 * (the upload could not go either): try again later. */
static int for_want_of_remote(int r)
{
	switch (-r) {
	case EIO: case EAGAIN: case ETIMEDOUT: case ENOMEM: case ENETDOWN: case ENETUNREACH:
	case EHOSTUNREACH: case ECONNREFUSED: case ECONNRESET: case ENOTCONN:
		return 1;
	default:
		return 0;
	}
}

int fs_keyring_fresh(struct fs *fs, uint64_t since)
{
	const scs_keyring *kr = scs_vault_keyring(fs->vault);
	uint32_t epoch = kr->epoch, retired = kr->retired_below;
	int member = scs_vault_membership(fs->vault, NULL, NULL);
	scs_err err;
	int r = scs_vault_refresh_since(fs->vault, since, &err);
	if (r < 0 && for_want_of_remote(r))
		return r;
	if (r < 0) {
		static time_t said;
		time_t now = time(NULL);
		if (__atomic_exchange_n(&said, now, __ATOMIC_RELAXED) + 60 <= now)
			scs_log(SCS_LOG_WARN, "keyring: %s", err.msg);
	}
	kr = scs_vault_keyring(fs->vault);
	if (kr->epoch != epoch || kr->retired_below != retired ||
	    scs_vault_membership(fs->vault, NULL, NULL) != member) {
		scs_dir_forget_keys(fs->d);       /* names of retired epochs go */
		if (fs->own_d)
			scs_dir_forget_keys(fs->own_d);
	}
	return 0;
}

void fs_held(struct fs *fs, uint64_t bino)
{
	pthread_mutex_lock(&fs->held_mu);
	unsigned n = fs->nheld < FS_HELD_MAX ? fs->nheld : FS_HELD_MAX, i = 0;
	while (i < n && fs->held[i] != bino)
		i++;
	if (i == n)
		fs->held[fs->nheld++ % FS_HELD_MAX] = bino;
	pthread_mutex_unlock(&fs->held_mu);
}

/* Was the object at path last sealed by a file held open across a new
 * epoch (fs_held)? */
static int held(struct fs *fs, const char *path)
{
	struct scs_attr a;
	if (scs_be_stat(fs->be, path, &a) < 0)
		return 0;
	pthread_mutex_lock(&fs->held_mu);
	unsigned n = fs->nheld < FS_HELD_MAX ? fs->nheld : FS_HELD_MAX, i = 0;
	while (i < n && fs->held[i] != a.ino)
		i++;
	pthread_mutex_unlock(&fs->held_mu);
	return i < n;
}

/* The header at the start of the content to be sent: 1, or 0 if it is not
 * a file object (a folder's .scsdir, a long name's side object). */
static int header_of(const struct scs_be_upload *u, uint8_t hb[SCS_HEADER_SIZE], scs_header *h)
{
	if (u->fd < 0 || u->size < SCS_HEADER_SIZE ||
	    pread(u->fd, hb, SCS_HEADER_SIZE, 0) != SCS_HEADER_SIZE)
		return 0;
	return scs_header_decode(hb, SCS_HEADER_SIZE, h) == 0;
}

/* The directory (dpath, id) of the entry at path.  The ids of the last few
 * directories are kept (a new file's upload asks for its folder's each
 * time, and reading .scsdir costs requests), else the inode table's is
 * taken; fresh: read it again (the path may lead to another directory
 * now). */
#define DIRS_KEPT 8
static pthread_mutex_t dirs_mu = PTHREAD_MUTEX_INITIALIZER;
static struct { char *path; uint8_t id[SCS_DIR_ID_LEN]; } dirs[DIRS_KEPT];
static unsigned ndirs;

static int dir_of(struct fs *fs, const char *path, char dpath[SCS_RPATH_MAX],
		  uint8_t id[SCS_DIR_ID_LEN], int fresh)
{
	const char *slash = strrchr(path, '/');
	size_t dl = slash ? (size_t)(slash - path) : 0;
	memcpy(dpath, path, dl);
	dpath[dl] = '\0';
	if (!dl)
		return scs_dir_read_id(fs->own_d, dpath, id);   /* the root: no I/O */
	int r = -ENOENT;
	pthread_mutex_lock(&dirs_mu);
	for (unsigned i = 0; i < DIRS_KEPT; i++)
		if (dirs[i].path && !strcmp(dirs[i].path, dpath)) {
			if (fresh) {
				free(dirs[i].path);
				dirs[i].path = NULL;
			} else {
				memcpy(id, dirs[i].id, SCS_DIR_ID_LEN);
				r = 0;
			}
		}
	pthread_mutex_unlock(&dirs_mu);
	if (r == 0)
		return 0;
	/* (a folder made offline: its .scsdir may not be on Drive yet, but
	 * the mount that made it knows its id) */
	if ((fresh || node_dir_id_at(fs, dpath, id) < 0) &&
	    (r = scs_dir_read_id(fs->own_d, dpath, id)) < 0)
		return r;
	char *p = strdup(dpath);
	pthread_mutex_lock(&dirs_mu);
	unsigned k = ndirs++ % DIRS_KEPT;
	free(dirs[k].path);
	dirs[k].path = p;
	memcpy(dirs[k].id, id, SCS_DIR_ID_LEN);
	pthread_mutex_unlock(&dirs_mu);
	return 0;
}

/* For log lines: the plaintext path of the entry, or at least its name. */
static void display_of(struct fs *fs, const char *path, char *out, size_t cap)
{
	char dpath[SCS_RPATH_MAX], plain[SCS_NAME_MAX + 1];
	uint8_t id[SCS_DIR_ID_LEN];
	const char *stored = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	if (node_display_at(fs, path, out, cap) == 0)
		return;
	if (dir_of(fs, path, dpath, id, 0) == 0 &&
	    scs_dir_shown_name(fs->own_d, dpath, id, stored, plain) == 0)
		snprintf(out, cap, "%s", plain);
	else
		snprintf(out, cap, "a new entry");
}

/* A new entry's name in an older epoch: renamed (path follows) to its name
 * under the current name key, or, when someone made that one meanwhile, to
 * a conflict name beside it.  0 or a negative errno. */
static int fix_name(struct fs *fs, char path[SCS_RPATH_MAX])
{
	char dpath[SCS_RPATH_MAX], to[SCS_RPATH_MAX], plain[SCS_NAME_MAX + 1];
	char shown[SCS_NAME_MAX + 1], disp[SCS_RPATH_MAX];
	uint8_t id[SCS_DIR_ID_LEN];
	int r = -EBADMSG, nodir = 0;
	for (int fresh = 0; fresh < 2 && r == -EBADMSG; fresh++) {
		r = dir_of(fs, path, dpath, id, fresh);
		nodir = r < 0;
		if (r == 0)
			r = scs_rekey_name(fs->be, fs->own_k, fs->own_d, dpath, id, path, plain, to,
					   sizeof to);
	}
	int taken = r == -EEXIST;
	if (taken) {
		r = scs_dir_conflict_name(fs->own_d, path, fs->self_name, time(NULL), to, sizeof to);
		if (r == 0 && (r = scs_be_rename(fs->be, path, to, RENAME_NOREPLACE)) < 0 &&
		    r != -EEXIST)
			scs_dir_drop_name(fs->own_d, to);
		if (r == 0) {
			scs_dir_drop_name(fs->own_d, path);
			const char *s = strrchr(to, '/') ? strrchr(to, '/') + 1 : to;
			if (scs_dir_shown_name(fs->own_d, dpath, id, s, shown) < 0)
				snprintf(shown, sizeof shown, "%s", plain);
			r = 1;
		}
	}
	if (r < 0) {
		static time_t said;
		time_t now = time(NULL);
		if (__atomic_exchange_n(&said, now, __ATOMIC_RELAXED) + 60 <= now) {
			display_of(fs, path, disp, sizeof disp);
			scs_log(SCS_LOG_WARN, "%s: its name may be in an older epoch and cannot be "
				"re-encrypted now (%s%s); its upload waits", disp,
				nodir ? "its folder's id: " : "", strerror(-r));
		}
		/* (a folder made offline whose .scsdir is not on Drive yet) */
		return nodir ? -EAGAIN : r;
	}
	if (r == 0)
		return 0;
	display_of(fs, path, disp, sizeof disp);
	node_moved(fs, path, to, taken ? shown : NULL, 0);
	if (taken)
		scs_log(SCS_LOG_WARN, "%s: made under a name of an older epoch while someone made "
			"that name in the current one; it is uploaded beside it as \"%s\"", disp,
			shown);
	else
		scs_log(SCS_LOG_INFO, "%s: its name, encrypted under an older epoch's key, is "
			"re-encrypted under the current one before Drive gets it", disp);
	strcpy(path, to);
	scs_rekey_stop("upload");
	return 0;
}

/* Content in epoch `was` (header hb: ours, as queued) moved to the current
 * epoch in place of the entry at path (scs_rekey_own). */
static int move_content(struct fs *fs, const char *path, uint32_t was,
			const uint8_t hb[SCS_HEADER_SIZE], int landed)
{
	char disp[SCS_RPATH_MAX];
	struct scs_attr na;
	scs_err err;
	display_of(fs, path, disp, sizeof disp);
	int m = scs_rekey_own(fs->be, fs->own_k, path, disp, hb, &na, &err);
	if (m < 0) {
		scs_log(SCS_LOG_ERR, "%s (while moving it to the current epoch before its upload); "
			"its upload waits", err.msg);
		return m == -EBADMSG ? -EIO : m;
	}
	if (m == 0)
		return -EAGAIN;          /* written or opened meanwhile: look again */
	node_moved(fs, path, path, NULL, na.ino);
	scs_log(SCS_LOG_INFO, "%s: written in epoch %u, which is no longer the current one; moved "
		"to epoch %u (a fresh key) %s", disp, (unsigned)was,
		(unsigned)scs_vault_epoch(fs->vault), landed ? "once its upload, in flight while "
		"the keyring moved on, had landed" : "before its upload");
	scs_rekey_stop("upload");
	return SCS_BE_UP_MOVED;
}

/* The entry on Drive changed since the edit began, and ours is in epoch
 * `was`: ours goes to a conflict copy of its own, in the current epoch,
 * made from the bytes that were to be sent. */
static int keep_beside(struct fs *fs, const struct scs_be_upload *u, uint32_t was)
{
	char disp[SCS_RPATH_MAX], dst[SCS_RPATH_MAX];
	scs_file *src;
	scs_err err;
	display_of(fs, u->path, disp, sizeof disp);
	int r = scs_rekey_open_fd(u->fd, u->size, u->path, fs->own_k, disp, &src, &err);
	if (r < 0) {
		scs_log(SCS_LOG_ERR, "%s: what waits to be uploaded cannot be read (%s); it stays "
			"in the cache", disp, err.msg);
		return r == -EBADMSG ? -EIO : r;
	}
	r = scs_dir_conflict_name(fs->own_d, u->path, fs->self_name, time(NULL), dst, sizeof dst);
	if (r == 0 && (r = fs_copy_to(fs, src, dst, u->mode, disp, 0, NULL)) < 0 && r != -EEXIST)
		scs_dir_drop_name(fs->own_d, dst);
	scs_file_close(src);
	if (r < 0) {
		scs_log(SCS_LOG_ERR, "%s: changed on Drive since this edit began, and the edit "
			"(epoch %u) cannot be stored beside it in the current epoch (%s); it stays "
			"in the cache", disp, (unsigned)was, strerror(-r));
		return r;
	}
	scs_log(SCS_LOG_WARN, "%s was changed or replaced on Drive by someone else meanwhile; "
		"keeping both: ours, written in epoch %u, is stored as a conflict copy in epoch %u",
		disp, (unsigned)was, (unsigned)scs_vault_epoch(fs->vault));
	scs_rekey_stop("upload");
	return SCS_BE_UP_MOVED;
}

/* A link made offline whose target (u->fd, as stored) is in an older
 * epoch: a new link at path with the target under the current one. */
static int link_target(struct fs *fs, const struct scs_be_upload *u, const char *path)
{
	char stored[SCS_SYMLINK_ENC_BUF], dpath[SCS_RPATH_MAX], disp[SCS_RPATH_MAX];
	uint8_t id[SCS_DIR_ID_LEN];
	if (u->size >= sizeof stored ||
	    pread(u->fd, stored, (size_t)u->size, 0) != (ssize_t)u->size)
		return -EIO;
	stored[u->size] = '\0';
	int r = dir_of(fs, path, dpath, id, 0);
	if (r == 0)
		r = scs_rekey_link(fs->be, fs->own_k, path, id, stored);
	display_of(fs, path, disp, sizeof disp);
	if (r < 0) {
		scs_log(SCS_LOG_ERR, "%s: symbolic link made offline: its target cannot be moved to "
			"the current epoch (%s); it waits", disp,
			r == -EBADMSG ? "it does not authenticate" : strerror(-r));
		return r == -EBADMSG ? -EIO : r;
	}
	if (r == 0)
		return 0;
	struct scs_attr a;
	node_moved(fs, path, path, NULL, scs_be_stat(fs->be, path, &a) == 0 ? a.ino : 0);
	scs_log(SCS_LOG_INFO, "%s: its target, encrypted under an older epoch's key, is "
		"re-encrypted under the current one before Drive gets it", disp);
	scs_rekey_stop("upload");
	return SCS_BE_UP_MOVED;
}

/* Is the entry at path one of the group's named entries (not .scsdir, a
 * long name's side object, a temporary object)? */
static int named(const char *path)
{
	const char *stored = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	size_t el;
	int cls = scs_name_classify(stored, &el);
	return cls == SCS_NAME_PLAIN_ENC || cls == SCS_NAME_LONG;
}

/* One move at a time: a folder's rename while an entry in it moves would
 * leave that entry's half-made new object under the old path.  Recursive:
 * with -o sync_upload an object a move makes is uploaded (and asked about)
 * by the same thread. */
static pthread_mutex_t moving;
static pthread_once_t moving_once = PTHREAD_ONCE_INIT;

static void moving_init(void)
{
	pthread_mutexattr_t a;
	pthread_mutexattr_init(&a);
	pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
	pthread_mutex_init(&moving, &a);
	pthread_mutexattr_destroy(&a);
}

static int check(struct fs *fs, const struct scs_be_upload *u, const scs_header *h,
		 const uint8_t hb[SCS_HEADER_SIZE], int file);

int fs_upload(void *arg, const struct scs_be_upload *u)
{
	struct fs *fs = arg;
	scs_header h;
	uint8_t hb[SCS_HEADER_SIZE];
	int file = header_of(u, hb, &h), is_new = (u->flags & SCS_BE_UP_NEW) != 0;
	if (fs->readonly || !fs->k->sign_key || !fs->own_d || strlen(u->path) >= SCS_RPATH_MAX ||
	    strncmp(u->path, SCS_META_DIR, sizeof SCS_META_DIR - 1) == 0 || !named(u->path))
		return 0;
	if (!file && u->when != SCS_BE_UP_CREATE && u->when != SCS_BE_UP_MOVE)
		return 0;                /* not a file object, nor an entry made offline */
	if (u->when == SCS_BE_UP_SENT && (!is_new || (u->flags & SCS_BE_UP_OPEN)))
		return 0;                /* (visible before: a pass sees it; open: see above) */
	uint64_t now = scs_vault_clock();
	int r = fs_keyring_fresh(fs, u->when == SCS_BE_UP_SENT ? now : now - FS_FRESH_NS);
	if (r < 0)
		return r;
	if (!scs_vault_membership(fs->vault, NULL, NULL))
		return 0;                /* removed: nothing written here is accepted now */
	pthread_once(&moving_once, moving_init);
	pthread_mutex_lock(&moving);
	r = check(fs, u, &h, hb, file);
	pthread_mutex_unlock(&moving);
	return r;
}

/* fs_upload's decision, with a fresh view of the keyring, one at a time. */
static int check(struct fs *fs, const struct scs_be_upload *u, const scs_header *h,
		 const uint8_t hb[SCS_HEADER_SIZE], int file)
{
	char path[SCS_RPATH_MAX];
	int r, is_new = (u->flags & SCS_BE_UP_NEW) != 0;
	strcpy(path, u->path);
	if (u->when == SCS_BE_UP_CREATE || u->when == SCS_BE_UP_MOVE) {
		/* made or moved offline: its name; a link's target too */
		if ((r = fix_name(fs, path)) < 0 || !(u->flags & SCS_BE_UP_LINK))
			return r;
		return link_target(fs, u, path);
	}
	uint32_t cur = scs_vault_epoch(fs->vault);
	int retired = h->epoch < scs_vault_keyring(fs->vault)->retired_below;
	if (h->epoch >= cur)
		return is_new && u->when == SCS_BE_UP_SEND ? fix_name(fs, path) : 0;
	if (u->flags & SCS_BE_UP_OPEN)
		return retired ? -EAGAIN : 0;
	if (!is_new && !retired && held(fs, path))
		return 0;
	if (u->when == SCS_BE_UP_SEND && (u->flags & SCS_BE_UP_CHANGED))
		/* (re-homed: what it held went to a conflict copy already, rehome.c) */
		return fs_abandoned(fs, path) ? SCS_BE_UP_MOVED : keep_beside(fs, u, h->epoch);
	if (is_new && (r = fix_name(fs, path)) < 0)
		return r;
	return move_content(fs, path, h->epoch, hb, u->when == SCS_BE_UP_SENT);
}
