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
 * answers -ECANCELED for it). */
#include "fs.h"

#include "scs/b64.h"
#include "scs/crypto.h"
#include "scs/dir.h"
#include "scs/file.h"
#include "scs/log.h"
#include "scs/vault.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define COPY_BUF (256u << 10)
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
	if (ep >= scs_vault_epoch(fs->vault)) {
		/* The mount may not have seen the new epoch yet (keyring_refresh). */
		scs_err err;
		uint32_t before = scs_vault_epoch(fs->vault);
		if (scs_vault_refresh(fs->vault, &err) < 0)
			return 0;
		if (scs_vault_epoch(fs->vault) != before)
			scs_dir_forget_keys(fs->d);
	}
	/* Not a re-key: removed or replaced by a member (the usual conflict
	 * handling of the back end applies). */
	return ep < scs_vault_epoch(fs->vault);
}

/* Copy f's plaintext into nf. */
static int copy_plain(scs_file *f, scs_file *nf)
{
	uint8_t *buf = malloc(COPY_BUF);
	if (!buf)
		return -ENOMEM;
	uint64_t size = scs_file_size(f);
	int r = 0;
	for (uint64_t off = 0; off < size && !r;) {
		size_t want = size - off < COPY_BUF ? (size_t)(size - off) : COPY_BUF;
		ssize_t k = scs_file_pread(f, buf, want, off);
		if (k <= 0) {
			r = k < 0 ? (int)k : -EIO;
			break;
		}
		ssize_t w = scs_file_pwrite(nf, buf, (size_t)k, off);
		if (w != k)
			r = w < 0 ? (int)w : -EIO;
		off += (uint64_t)k;
	}
	if (!r && scs_file_size(nf) < size)
		r = scs_file_truncate(nf, size);
	scs_cleanse(buf, COPY_BUF);
	free(buf);
	return r;
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
	pthread_rwlock_wrlock(&n->frw);   /* no write goes on meanwhile */
	scs_file *f = n->file, *nf = NULL;
	int r = 0;
	if (!f || !n->writable || !rekeyed_away(fs, n, f, rpath))
		goto out;
	node_display(fs, n, disp, sizeof disp);
	char dpath[SCS_RPATH_MAX], name[SCS_NAME_MAX + 1], cur[SCS_RPATH_MAX];
	char dst[SCS_RPATH_MAX], tmp[SCS_RPATH_MAX + 32], hex[17];
	uint8_t id[SCS_DIR_ID_LEN], rnd[8];
	r = resolve_plain(fs, disp, dpath, sizeof dpath, id, name);
	if (r == 0) {
		/* beside the re-keyed file; if it is gone too, under its own name */
		r = scs_dir_lookup(fs->d, dpath, id, name, cur, sizeof cur, NULL);
		if (r == 0)
			r = scs_dir_conflict_name(fs->d, cur, fs->self_name, time(NULL), dst,
						  sizeof dst);
		else if (r == -ENOENT)
			r = scs_dir_prepare_name(fs->d, dpath, id, name, dst, sizeof dst);
	}
	int named = r == 0;          /* dst prepared (a long name's side object written) */
	if (r == 0)
		r = scs_random(rnd, sizeof rnd);
	if (r == 0) {
		scs_hex_encode(rnd, sizeof rnd, hex);
		if ((size_t)snprintf(tmp, sizeof tmp, "%s" SCS_TMP_INFIX "%s", dst, hex) >= sizeof tmp)
			r = -ENAMETOOLONG;
	}
	if (r == 0)
		r = scs_file_create(fs->be, tmp, n->attr.mode & 07777, fs->k, disp, &nf);
	if (r == 0 && (r = copy_plain(f, nf)) == 0 && (r = scs_file_flush(nf)) == 0)
		r = scs_be_rename(fs->be, tmp, dst, 1);          /* RENAME_NOREPLACE */
	if (r < 0) {
		if (nf) {
			scs_file_discard(nf);
			scs_be_unlink(fs->be, tmp);
		}
		if (named && r != -EEXIST)
			scs_dir_drop_name(fs->d, dst);
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
