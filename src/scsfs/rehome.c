/* rehome.c - a file held open for writing while a re-key pass (another
 * process, another machine) replaced its object.  local: cannot happen:
 * the pass takes a write lease and leaves a file open for writing for
 * later (backend.h hold).  gdrive: has no such lease, so the pass moves the
 * file to the new epoch under our feet and deletes the object we hold.
 * What is written through the held file must then neither be sealed in the
 * old epoch (retired, or readable by the member who was removed) nor be
 * lost: at the next flush, fsync or close its content moves to a new object
 * of the current epoch beside the re-keyed file, as a conflict copy (keep
 * both, as for any edit that crossed another change: the pass cannot tell
 * us whether the re-keyed file is still our base), and the open file goes
 * on there.  The old object's queued upload is dropped (fs_conflict_name
 * answers -ECANCELED for it).
 *
 * Also gdrive: a file open for writing whose epoch was retired while it was
 * open, and whose object no pass replaced (a new file: the pass cannot see
 * it before its first upload) can no longer be sealed (its epoch key is
 * refused).  Its content moves, before the seal, to a new object of the
 * current epoch that replaces the old one (the same file: nobody else has
 * it), and the open file goes on there.  A file open for writing in an
 * older epoch that is not retired keeps its key until its next open
 * (README); its seals are noted (fs_held) so that its queued upload goes
 * out in that epoch too (upload.c). */
#include "fs.h"

#include "scs/b64.h"
#include "scs/crypto.h"
#include "scs/dir.h"
#include "scs/file.h"
#include "scs/keyring.h"
#include "scs/log.h"
#include "scs/rekey.h"
#include "scs/vault.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define ABANDONED_TTL 3600       /* s: an old object's upload runs long before */

/* The current place of the plaintext path disp ("/docs/a.txt"): its
 * directory (dpath, id) looked up name by name from the root (the pass may
 * have renamed every directory on the way), and its last component. */
static int resolve_plain(struct fs *fs, const char *disp, char *dpath, size_t cap,
			 uint8_t id[SCS_DIR_ID_LEN], char name[SCS_NAME_MAX + 1])
{
	memcpy(id, scs_vault_root_dir_id(fs->vault), SCS_DIR_ID_LEN);
	dpath[0] = '\0';
	if (disp[0] != '/')
		return -ENOENT;          /* "(unlinked file)" */
	const char *p = disp + 1;
	for (;;) {
		const char *e = strchr(p, '/');
		size_t l = e ? (size_t)(e - p) : strlen(p);
		if (!l || l > SCS_NAME_MAX)
			return -EINVAL;
		memcpy(name, p, l);
		name[l] = '\0';
		if (!e)
			return 0;
		char child[SCS_RPATH_MAX];
		int r = scs_dir_lookup(fs->d, dpath, id, name, child, sizeof child, NULL);
		if (!r)
			r = scs_dir_read_id(fs->d, child, id);
		if (r < 0)
			return r;
		if (strlen(child) >= cap)
			return -ENAMETOOLONG;
		strcpy(dpath, child);
		p = e + 1;
	}
}

static void abandon(struct fs *fs, const char *rpath)
{
	time_t now = time(NULL);
	pthread_mutex_lock(&fs->ab_mu);
	size_t k = 0;
	for (size_t i = 1; i < FS_ABANDONED_MAX; i++)
		if (!fs->abandoned[i].rpath || fs->abandoned[i].at < fs->abandoned[k].at)
			k = i;
	free(fs->abandoned[k].rpath);
	fs->abandoned[k].rpath = strdup(rpath);
	fs->abandoned[k].at = now;
	pthread_mutex_unlock(&fs->ab_mu);
}

int fs_abandoned(struct fs *fs, const char *rpath)
{
	time_t now = time(NULL);
	int hit = 0;
	pthread_mutex_lock(&fs->ab_mu);
	for (size_t i = 0; i < FS_ABANDONED_MAX; i++) {
		struct fs_abandoned *a = &fs->abandoned[i];
		if (a->rpath && (now - a->at > ABANDONED_TTL || !strcmp(a->rpath, rpath))) {
			hit |= now - a->at <= ABANDONED_TTL;
			free(a->rpath);
			a->rpath = NULL;
		}
	}
	pthread_mutex_unlock(&fs->ab_mu);
	return hit;
}

void fs_abandoned_free(struct fs *fs)
{
	for (size_t i = 0; i < FS_ABANDONED_MAX; i++) {
		free(fs->abandoned[i].rpath);
		fs->abandoned[i].rpath = NULL;
	}
}

/* Was the object of n's open file replaced by a re-key pass?  1 yes, 0 no
 * (the usual case, one stat), and the keyring followed when it looks so. */
static int rekeyed_away(struct fs *fs, struct node *n, scs_file *f, const char *rpath)
{
	struct scs_attr a;
	int r = scs_be_stat(fs->be, rpath, &a);
	if (r == 0 && a.ino == n->bino)
		return 0;
	if (r < 0 && r != -ENOENT)
		return 0;
	uint32_t ep = scs_file_epoch(f);
	/* The mount may not have seen the new epoch yet (keyring_refresh). */
	if (ep >= scs_vault_epoch(fs->vault) && fs_keyring_fresh(fs, scs_vault_clock()) < 0)
		return 0;
	/* Not a re-key: removed or replaced by a member (the usual conflict
	 * handling of the back end applies). */
	return ep < scs_vault_epoch(fs->vault);
}

int fs_copy_to(struct fs *fs, scs_file *src, const char *dst, uint32_t mode, const char *disp,
	       int replace, scs_file **keep)
{
	char tmp[SCS_RPATH_MAX + 32], hex[17];
	uint8_t rnd[8];
	scs_file *nf = NULL;
	int r = scs_random(rnd, sizeof rnd);
	if (r == 0) {
		scs_hex_encode(rnd, sizeof rnd, hex);
		if ((size_t)snprintf(tmp, sizeof tmp, "%s" SCS_TMP_INFIX "%s", dst, hex) >= sizeof tmp)
			r = -ENAMETOOLONG;
	}
	if (r == 0)
		r = scs_file_create(fs->be, tmp, mode & 07777, fs->k, disp, &nf);
	if (r == 0 && (r = scs_rekey_copy(src, nf)) == 0 && (r = scs_file_flush(nf)) == 0)
		r = scs_be_rename(fs->be, tmp, dst, replace ? 0 : RENAME_NOREPLACE);
	if (r < 0) {
		if (nf) {
			scs_file_discard(nf);
			scs_be_unlink(fs->be, tmp);
		}
		return r;
	}
	if (keep)
		*keep = nf;
	else
		r = scs_file_close(nf);
	return r;
}

/* The open file f of n, whose epoch was retired, moved to a new object of
 * the current epoch in place of its own (rpath).  n->frw held (write). */
static int move_retired(struct fs *fs, struct node *n, scs_file *f, const char *rpath,
			const char *disp)
{
	scs_file *nf;
	uint32_t ep = scs_file_epoch(f);
	int r = fs_copy_to(fs, f, rpath, n->attr.mode, disp, 1, &nf);
	if (r < 0) {
		scs_log(SCS_LOG_ERR, "%s: its epoch %u was retired while it was open here, and what "
			"it holds cannot be moved to the current epoch (%s); keep the program that "
			"has it open running and save it again under another name", disp,
			(unsigned)ep, strerror(-r));
		return -EIO;
	}
	scs_file_discard(f);
	n->file = nf;
	struct scs_attr a;
	if (scs_be_stat(fs->be, rpath, &a) == 0)
		node_rehash(fs, n->bino, a.ino);
	scs_log(SCS_LOG_WARN, "%s: epoch %u was retired while this file was open here; what it "
		"holds moved to epoch %u (a fresh key) before it was written back", disp,
		(unsigned)ep, (unsigned)scs_file_epoch(nf));
	return 0;
}

int fs_rehome(struct fs *fs, struct node *n, struct fs_rehomed *out)
{
	memset(out, 0, sizeof *out);
	if (scs_be_hold_sees_all(fs->be) || !S_ISREG(n->type))
		return 0;
	pthread_rwlock_rdlock(&n->frw);
	int writing = n->file && n->writable;
	pthread_rwlock_unlock(&n->frw);
	if (!writing)
		return 0;                /* (the close of a file only read: nothing to seal) */
	char rpath[SCS_RPATH_MAX], disp[SCS_RPATH_MAX];
	if (node_rpath(fs, n, rpath, sizeof rpath) < 0)
		return 0;                /* unlinked here: nothing to keep it beside */
	struct scs_backend_opts bo;
	scs_backend_get_opts(&bo);
	if (bo.sync_upload)          /* (the upload waits for Drive anyway) */
		fs_keyring_fresh(fs, scs_vault_clock() - FS_FRESH_NS);
	pthread_rwlock_wrlock(&n->frw);   /* no write goes on meanwhile */
	scs_file *f = n->file, *nf = NULL;
	int r = 0;
	if (!f || !n->writable)
		goto out;
	uint32_t ep = scs_file_epoch(f);
	int away = rekeyed_away(fs, n, f, rpath);
	if (!away && ep >= scs_vault_keyring(fs->vault)->retired_below) {
		if (ep < scs_vault_epoch(fs->vault))
			fs_held(fs, n->bino);   /* sealed in its epoch (README) */
		goto out;
	}
	node_display(fs, n, disp, sizeof disp);
	if (!away) {
		r = move_retired(fs, n, f, rpath, disp);
		goto out;
	}
	char dpath[SCS_RPATH_MAX], name[SCS_NAME_MAX + 1], cur[SCS_RPATH_MAX];
	char dst[SCS_RPATH_MAX];
	uint8_t id[SCS_DIR_ID_LEN];
	r = resolve_plain(fs, disp, dpath, sizeof dpath, id, name);
	if (r == 0) {
		/* beside the re-keyed file; if it is gone too, under its own name */
		r = scs_dir_lookup(fs->d, dpath, id, name, cur, sizeof cur, NULL);
		if (r == 0)
			r = scs_dir_conflict_name(fs->d, cur, fs->self_name, time(NULL), dst,
						  sizeof dst);
		else if (r == -ENOENT)
			r = scs_dir_prepare_name(fs->d, dpath, id, name, dst, sizeof dst);
		if (r == 0 && (r = fs_copy_to(fs, f, dst, n->attr.mode, disp, 0, &nf)) < 0 &&
		    r != -EEXIST)
			scs_dir_drop_name(fs->d, dst);   /* (dst's side object was prepared) */
	}
	if (r < 0) {
		scs_log(SCS_LOG_ERR, "%s: re-keyed by another pass while open here, and what was "
			"written since cannot be moved to the current epoch (%s); keep the program "
			"that has it open running and save it again under another name",
			disp, strerror(-r));
		r = -EIO;
		goto out;
	}
	/* The open file goes on in the new object; the old one's upload goes. */
	abandon(fs, rpath);
	scs_file_discard(f);
	n->file = nf;
	struct node *p = node_parent(fs, n);
	const char *stored = strrchr(rpath, '/') ? strrchr(rpath, '/') + 1 : rpath;
	if (p) {
		node_unlinked(fs, p, stored, n->bino, 1);
		out->parent = p;          /* (a reference, dropped by fs_rehome_notify) */
		snprintf(out->name, sizeof out->name, "%s", name);
	}
	const char *shown = strrchr(dst, '/') ? strrchr(dst, '/') + 1 : dst;
	char shown_plain[SCS_NAME_MAX + 1];
	if (scs_dir_shown_name(fs->d, dpath, id, shown, shown_plain) < 0)
		snprintf(shown_plain, sizeof shown_plain, "%s", name);
	scs_log(SCS_LOG_WARN, "%s: a re-key pass moved this file to the new epoch while it was "
		"open here; what was written through it since is kept beside it as \"%s\"",
		disp, shown_plain);
out:
	pthread_rwlock_unlock(&n->frw);
	return r;
}

void fs_rehome_notify(struct fs *fs, struct fs_rehomed *x)
{
	if (!x->parent)
		return;
	fuse_lowlevel_notify_inval_entry(fs->se, node_ino(fs, x->parent), x->name,
					 strlen(x->name));
	fuse_lowlevel_notify_inval_inode(fs->se, node_ino(fs, x->parent), -1, 0);
	node_put(fs, x->parent);
	x->parent = NULL;
}
