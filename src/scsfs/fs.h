/* fs.h - internals of the scsfs daemon: the mounted file system state and
 * the inode table shared by the FUSE operations (ops.c) and main.c.
 *
 * Inodes.  The kernel's node id is the address of a struct node; nodes are
 * found by the back end's inode number (scs_attr.ino) in a hash table, so
 * every hard link of a file is one node.  A node remembers where it lives
 * as links: (parent node, stored remote name, plaintext name); its remote
 * path is rebuilt by walking the parents, so renaming a directory is O(1)
 * and never touches its children.  Regular files usually have one link;
 * hard links add more; directories have exactly one.
 *
 * Locking (in this order; none held across back-end I/O except node->mu
 * and node->tmu):
 *   fs->tl    the table: hash, nlookup, refs, links, cached attributes
 *   node->mu  open/release of the node's shared scs_file, dir id loading
 *   node->tmu setting the node's times on the back end (utimens, the
 *             re-apply of pending times): one at a time, so they land in
 *             the order they were made (taken alone or under node->mu;
 *             fs->tl and node->frw briefly inside it)
 *   node->frw shared while an operation uses node->file, exclusive while
 *             node->file is replaced (taken with node->mu held). */
#ifndef SCSFS_FS_H
#define SCSFS_FS_H

#define FUSE_USE_VERSION FUSE_MAKE_VERSION(3, 12)
#include <fuse_lowlevel.h>

#include <pthread.h>
#include <stdint.h>
#include <time.h>

#include "scs/backend.h"
#include "scs/dir.h"
#include "scs/file.h"
#include "scs/identity.h"
#include "scs/keyctx.h"
#include "scs/names.h"
#include "scs/vault.h"

struct node;

struct nlink {
	struct node *parent;
	char *stored;                /* remote name inside the parent */
	char *plain;                 /* plaintext name (log lines) */
};

#define NODE_MAX_LINKS 8

struct node {
	uint64_t bino;               /* back-end inode number */
	uint32_t type;               /* S_IFMT bits */
	/* fs->tl: */
	uint64_t nlookup;            /* kernel references */
	uint64_t refs;               /* links of other nodes naming this as parent */
	struct node *hnext;
	int hashed;
	struct nlink links[NODE_MAX_LINKS];
	int nlinks;                  /* 0: unlinked (only open handles reach it) */
	struct scs_attr attr;        /* last attributes seen */
	int have_attr;
	/* Object size and mtime as the kernel knows them (set when the node is
	 * made, at the last release and after setattr; not by getattr): an
	 * object that differs at the next lookup was changed behind our back
	 * (a sync client) and gets a fresh node, so the kernel drops its
	 * cached pages and size (with the writeback cache it never rereads
	 * the size of a cached inode). */
	uint64_t known_size;
	struct timespec known_mtime;
	int open_files;              /* mirror of opens > 0 */
	/* Times set by utimens on an open file: applied again after the
	 * header is rewritten (flush, fsync, close), which moves the mtime;
	 * cleared by the next write or truncate.  pend read without tl in
	 * the write path (atomic).  tmu orders a re-apply and a utimens made
	 * meanwhile (the release runs beside the next operations): the later
	 * one's times are the ones left on the object. */
	int pend;
	struct timespec pend_ts[2];
	pthread_mutex_t tmu;
	/* node->mu: */
	pthread_mutex_t mu;
	int have_id;
	uint8_t dir_id[SCS_DIR_ID_LEN];
	int opens;                   /* open handles sharing file */
	int writable;                /* file was opened for writing */
	/* node->frw (pointer) */
	pthread_rwlock_t frw;
	scs_file *file;
};

#define FS_ABANDONED_MAX 16
#define FS_HELD_MAX 64

struct fs {
	scs_vault *vault;
	scs_backend *be;
	const scs_keyctx *k;
	scs_dirctx *d;
	struct fuse_session *se;
	/* This member's own writes not sent yet (upload.c): k and d that also
	 * open what this identity wrote in an epoch retired since. */
	const scs_keyctx *own_k;
	scs_dirctx *own_d;

	double entry_timeout;
	double attr_timeout;
	double negative_timeout;
	int writeback;               /* kernel writeback cache */
	int readonly;
	int foreground;

	char self_name[SCS_NAME_LEN_MAX + 1]; /* member name (conflict copies) */

	/* Old objects of files re-homed after a re-key (rehome.c): their
	 * queued uploads are dropped, not kept as conflict copies. */
	pthread_mutex_t ab_mu;
	struct fs_abandoned {
		char *rpath;
		time_t at;
	} abandoned[FS_ABANDONED_MAX];

	/* Objects (back-end inodes) last sealed by a file open for writing
	 * since before this mount learned of a newer epoch (upload.c). */
	pthread_mutex_t held_mu;
	uint64_t held[FS_HELD_MAX];
	unsigned nheld;

	pthread_mutex_t tl;
	struct node **hash;
	size_t hcap, hcount;
	struct node root;
};

/* node.c */
int fs_nodes_init(struct fs *fs, const struct scs_attr *root_attr);
void fs_nodes_destroy(struct fs *fs);
struct node *node_of(struct fs *fs, fuse_ino_t ino);
static inline fuse_ino_t node_ino(struct fs *fs, struct node *n)
{
	return n == &fs->root ? FUSE_ROOT_ID : (fuse_ino_t)(uintptr_t)n;
}
/* Remote path of n (its first link), or -ENOENT if n was unlinked. */
int node_rpath(struct fs *fs, struct node *n, char *out, size_t cap);
/* Plaintext path of n for log lines ("/a/b"); "(unlinked)" if unlinked. */
void node_display(struct fs *fs, struct node *n, char *out, size_t cap);
/* Display path of a new child name of parent. */
void node_child_display(struct fs *fs, struct node *parent, const char *name, char *out, size_t cap);
/* Find or make the node for the entry (parent, stored name) with attributes
 * a; takes one kernel reference (nlookup). */
struct node *node_get(struct fs *fs, struct node *parent, const char *stored,
		      const char *plain, const struct scs_attr *a);
void node_forget(struct fs *fs, struct node *n, uint64_t nlookup);
/* The entry (parent, stored) of back-end inode bino went away; gone: the
 * object is gone too (last link), so its inode number may be reused. */
void node_unlinked(struct fs *fs, struct node *parent, const char *stored, uint64_t bino, int gone);
/* The entry (op, ostored) of bino is now (np, nstored, nplain). */
void node_renamed(struct fs *fs, uint64_t bino, struct node *op, const char *ostored,
		  struct node *np, const char *nstored, const char *nplain);
/* bino changed (a symlink re-created by a rename across directories). */
void node_rehash(struct fs *fs, uint64_t old_bino, uint64_t new_bino);
/* The entry at remote path from is now to, in the same directory (plain:
 * its plaintext name now, NULL: unchanged), and its object's inode is bino
 * (0: unchanged).  For changes the core made on its own (upload.c); a
 * no-op for an entry the table does not know, or after the unmount. */
void node_moved(struct fs *fs, const char *from, const char *to, const char *plain,
		uint64_t bino);
/* The id of the directory at remote path rpath, if the table has it
 * loaded: 0, else -ENOENT. */
int node_dir_id_at(struct fs *fs, const char *rpath, uint8_t id[SCS_DIR_ID_LEN]);
/* Plaintext path ("/a/b") of the node at remote path rpath, if the table
 * has it: 0, else -ENOENT. */
int node_display_at(struct fs *fs, const char *rpath, char *out, size_t cap);
/* The object of n is as the kernel last knew it (keep_cache at open). */
int node_known(struct fs *fs, struct node *n, const struct scs_attr *a);
/* Record a (may be NULL) as what the kernel knows now; open: whether files
 * are open (-1: unchanged). */
void node_set_known(struct fs *fs, struct node *n, const struct scs_attr *a, int open);
/* Remember/read the last attributes of n. */
void node_set_attr(struct fs *fs, struct node *n, const struct scs_attr *a);
int node_get_attr(struct fs *fs, struct node *n, struct scs_attr *a);
/* First parent of n (NULL for the root or an unlinked node), with a
 * reference that node_put drops. */
struct node *node_parent(struct fs *fs, struct node *n);
void node_put(struct fs *fs, struct node *n);
/* The dir id of directory node n (read from .scsdir once). */
int node_dir_id(struct fs *fs, struct node *n, uint8_t id[SCS_DIR_ID_LEN]);
/* Remote path and dir id of a directory node in one call. */
int node_dir(struct fs *fs, struct node *n, char *rpath, size_t cap, uint8_t id[SCS_DIR_ID_LEN]);

/* Hooks for remote back ends (backend.h), arg = fs: another member
 * changed path (NULL: anything) -- drop what the kernel and the daemon
 * cache of it; and the name of a conflict copy.  Called on back-end
 * threads; they hold no lock while calling into the kernel. */
void fs_remote_changed(void *arg, const char *path, int what);
int fs_conflict_name(void *arg, const char *path, char *out, size_t cap);

/* rehome.c: before a writable open file is sealed (flush, fsync, close),
 * with n->mu held: if a re-key pass replaced its object meanwhile, move
 * what it holds to a new object of the current epoch (a conflict copy
 * beside the re-keyed file) and go on there.  0 (also when nothing was to
 * do) or -EIO (logged).  Then, with no lock held, fs_rehome_notify tells
 * the kernel the name now leads elsewhere. */
struct fs_rehomed {
	struct node *parent;         /* held; NULL: nothing to tell */
	char name[SCS_NAME_MAX + 1];
};
int fs_rehome(struct fs *fs, struct node *n, struct fs_rehomed *out);
/* A new object at dst (a path prepared by scs_dir_prepare_name or
 * scs_dir_conflict_name, or replace: an existing object of ours) holding
 * the plaintext of src, under the current epoch: written beside dst under
 * a temporary name, then renamed to it (never over an existing entry
 * unless replace).  keep: the new file stays open (*keep), else it is
 * closed.  0 or a negative errno (nothing made). */
int fs_copy_to(struct fs *fs, scs_file *src, const char *dst, uint32_t mode, const char *disp,
	       int replace, scs_file **keep);
void fs_rehome_notify(struct fs *fs, struct fs_rehomed *x);
/* The object at rpath was re-homed: 1 (once), else 0. */
int fs_abandoned(struct fs *fs, const char *rpath);
void fs_abandoned_free(struct fs *fs);

/* upload.c: a remote back end's queued uploads of this mount's writes go
 * out in the group's current epoch (backend.h, hooks.upload).
 * fs_keyring_fresh: the vault's view of the keyring from a look that began
 * at or after since (scs_vault_clock), looking now if need be; the name-key
 * caches follow a change.  0, or the look's error when it failed for want
 * of the remote (then nothing is known); a refused keyring is logged and
 * the view kept (0).
 * fs_held: n's object was just sealed by a file open for writing since
 * before the mount learned of a newer epoch (rehome.c): that file keeps its
 * epoch until its next open (README), its queued upload too. */
#define FS_FRESH_NS UINT64_C(2000000000)
int fs_keyring_fresh(struct fs *fs, uint64_t since);
void fs_held(struct fs *fs, uint64_t bino);
int fs_upload(void *arg, const struct scs_be_upload *u);

/* ops.c */
extern const struct fuse_lowlevel_ops scsfs_ops;
/* Close every still open file (after the loop ended). */
void fs_close_all(struct fs *fs);

#endif
