/* node.c - the inode table of the scsfs daemon (see fs.h for the model and
 * the locking rules). */
#include "fs.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "scs/log.h"

#define HASH_INIT 4096

static size_t hslot(const struct fs *fs, uint64_t bino)
{
	uint64_t h = bino * UINT64_C(0x9E3779B97F4A7C15);
	return (size_t)(h >> 20) & (fs->hcap - 1);
}

static void hash_insert(struct fs *fs, struct node *n)
{
	if (fs->hcount + 1 > fs->hcap) {
		size_t ncap = fs->hcap * 2;
		struct node **nh = calloc(ncap, sizeof *nh);
		if (nh) {
			struct node **old = fs->hash;
			size_t ocap = fs->hcap;
			fs->hash = nh;
			fs->hcap = ncap;
			for (size_t i = 0; i < ocap; i++) {
				struct node *p = old[i];
				while (p) {
					struct node *next = p->hnext;
					size_t s = hslot(fs, p->bino);
					p->hnext = fs->hash[s];
					fs->hash[s] = p;
					p = next;
				}
			}
			free(old);
		}       /* else: keep the longer chains */
	}
	size_t s = hslot(fs, n->bino);
	n->hnext = fs->hash[s];
	fs->hash[s] = n;
	n->hashed = 1;
	fs->hcount++;
}

static void hash_remove(struct fs *fs, struct node *n)
{
	if (!n->hashed)
		return;
	struct node **pp = &fs->hash[hslot(fs, n->bino)];
	while (*pp && *pp != n)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = n->hnext;
	n->hnext = NULL;
	n->hashed = 0;
	fs->hcount--;
}

static struct node *hash_find(struct fs *fs, uint64_t bino)
{
	for (struct node *p = fs->hash[hslot(fs, bino)]; p; p = p->hnext)
		if (p->bino == bino)
			return p;
	return NULL;
}

static void node_init_locks(struct node *n)
{
	pthread_mutex_init(&n->mu, NULL);
	pthread_mutex_init(&n->tmu, NULL);
	pthread_rwlock_init(&n->frw, NULL);
}

int fs_nodes_init(struct fs *fs, const struct scs_attr *root_attr)
{
	pthread_mutex_init(&fs->tl, NULL);
	pthread_mutex_init(&fs->ab_mu, NULL);
	fs->hcap = HASH_INIT;
	fs->hash = calloc(fs->hcap, sizeof *fs->hash);
	if (!fs->hash)
		return -ENOMEM;
	memset(&fs->root, 0, sizeof fs->root);
	node_init_locks(&fs->root);
	fs->root.bino = root_attr->ino;
	fs->root.type = S_IFDIR;
	fs->root.nlookup = 1;
	fs->root.attr = *root_attr;
	fs->root.have_attr = 1;
	return 0;
}

static void maybe_free(struct fs *fs, struct node *n);

static int same_time(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec == b->tv_sec && a->tv_nsec == b->tv_nsec;
}

static void link_clear(struct fs *fs, struct nlink *l)
{
	struct node *p = l->parent;
	free(l->stored);
	free(l->plain);
	l->stored = l->plain = NULL;
	l->parent = NULL;
	if (p) {
		p->refs--;
		maybe_free(fs, p);
	}
}

static void link_remove_at(struct fs *fs, struct node *n, int i)
{
	struct nlink old = n->links[i];
	memmove(&n->links[i], &n->links[i + 1], (size_t)(n->nlinks - i - 1) * sizeof n->links[0]);
	n->nlinks--;
	memset(&n->links[n->nlinks], 0, sizeof n->links[0]);
	link_clear(fs, &old);
}

static void node_free(struct node *n)
{
	pthread_mutex_destroy(&n->mu);
	pthread_mutex_destroy(&n->tmu);
	pthread_rwlock_destroy(&n->frw);
	free(n);
}

/* Free n if nobody refers to it any more.  tl held. */
static void maybe_free(struct fs *fs, struct node *n)
{
	if (n == &fs->root || n->nlookup || n->refs)
		return;
	hash_remove(fs, n);
	while (n->nlinks)
		link_remove_at(fs, n, n->nlinks - 1);
	if (n->file) {            /* cannot happen: open handles hold a lookup */
		scs_log(SCS_LOG_WARN, "internal: freeing an inode with an open file");
		scs_file_close(n->file);
	}
	node_free(n);
}

void fs_nodes_destroy(struct fs *fs)
{
	/* Unmounted: the kernel holds nothing any more. */
	pthread_mutex_lock(&fs->tl);
	for (size_t i = 0; i < fs->hcap; i++) {
		struct node *p = fs->hash[i];
		while (p) {
			struct node *next = p->hnext;
			p->hashed = 0;
			p->hnext = NULL;
			for (int j = 0; j < p->nlinks; j++) {
				free(p->links[j].stored);
				free(p->links[j].plain);
			}
			node_free(p);
			p = next;
		}
		fs->hash[i] = NULL;
	}
	free(fs->hash);
	fs->hash = NULL;
	pthread_mutex_unlock(&fs->tl);
	/* Unhashed nodes still referenced at unmount leak here; the process exits. */
}

struct node *node_of(struct fs *fs, fuse_ino_t ino)
{
	return ino == FUSE_ROOT_ID ? &fs->root : (struct node *)(uintptr_t)ino;
}

/* Build the path of n from link[0] names (stored or plain).  tl held. */
static int build_path(struct fs *fs, struct node *n, int plain, char *out, size_t cap)
{
	const char *parts[512];
	int np = 0;
	size_t len = 0;
	for (struct node *p = n; p != &fs->root; p = p->links[0].parent) {
		if (!p->nlinks)
			return -ENOENT;
		if (np == (int)(sizeof parts / sizeof parts[0]))
			return -ENAMETOOLONG;
		parts[np] = plain ? p->links[0].plain : p->links[0].stored;
		len += strlen(parts[np]) + 1;
		np++;
	}
	if (len + 1 > cap)
		return -ENAMETOOLONG;
	char *o = out;
	for (int i = np - 1; i >= 0; i--) {
		if (plain || i != np - 1)
			*o++ = '/';
		size_t l = strlen(parts[i]);
		memcpy(o, parts[i], l);
		o += l;
	}
	if (plain && np == 0)
		*o++ = '/';
	*o = '\0';
	return 0;
}

int node_rpath(struct fs *fs, struct node *n, char *out, size_t cap)
{
	pthread_mutex_lock(&fs->tl);
	int r = build_path(fs, n, 0, out, cap);
	pthread_mutex_unlock(&fs->tl);
	return r;
}

void node_display(struct fs *fs, struct node *n, char *out, size_t cap)
{
	pthread_mutex_lock(&fs->tl);
	int r = build_path(fs, n, 1, out, cap);
	pthread_mutex_unlock(&fs->tl);
	if (r)
		snprintf(out, cap, "(unlinked file)");
}

void node_child_display(struct fs *fs, struct node *parent, const char *name, char *out, size_t cap)
{
	node_display(fs, parent, out, cap);
	size_t l = strlen(out);
	snprintf(out + l, cap - l, "%s%s", (l && out[l - 1] == '/') ? "" : "/", name);
}

static int link_set(struct nlink *l, struct node *parent, const char *stored, const char *plain)
{
	char *s = strdup(stored), *p = strdup(plain);
	if (!s || !p) {
		free(s);
		free(p);
		return -ENOMEM;
	}
	l->parent = parent;
	l->stored = s;
	l->plain = p;
	parent->refs++;
	return 0;
}

static int link_find(const struct node *n, const struct node *parent, const char *stored)
{
	for (int i = 0; i < n->nlinks; i++)
		if (n->links[i].parent == parent && !strcmp(n->links[i].stored, stored))
			return i;
	return -1;
}

/* Record that n is (also) reachable as (parent, stored).  tl held. */
static void node_add_link(struct fs *fs, struct node *n, struct node *parent, const char *stored,
			  const char *plain, uint32_t nlink)
{
	int i = link_find(n, parent, stored);
	if (i >= 0) {
		if (strcmp(n->links[i].plain, plain)) {
			char *p = strdup(plain);
			if (p) {
				free(n->links[i].plain);
				n->links[i].plain = p;
			}
		}
		return;
	}
	/* Directories and single-link files live at one place: the new name
	 * replaces the old ones (renamed behind our back). */
	if (S_ISDIR(n->type) || nlink <= 1) {
		struct nlink nl;
		if (link_set(&nl, parent, stored, plain))
			return;
		while (n->nlinks)
			link_remove_at(fs, n, n->nlinks - 1);
		n->links[0] = nl;
		n->nlinks = 1;
		return;
	}
	if (n->nlinks == NODE_MAX_LINKS)
		link_remove_at(fs, n, NODE_MAX_LINKS - 1);
	if (link_set(&n->links[n->nlinks], parent, stored, plain) == 0)
		n->nlinks++;
}

/* Whether the node found by a's inode number is not the object a describes
 * (then a fresh node, so that the kernel's cache of the old one is not
 * shown: a symlink's target, file pages).  tl held. */
static int node_stale(const struct node *n, struct node *parent, const char *stored,
		      const struct scs_attr *a)
{
	/* The inode number was reused for another kind of object. */
	if (n->type != (a->mode & S_IFMT))
		return 1;
	if (S_ISDIR(n->type) || n->open_files)
		return 0;
	/* A single-link object under a name it never had here: its number was
	 * reused (an object deleted, and a new one given its number, renamed
	 * over another name: the re-key pass, sync clients), or it was renamed
	 * behind our back. */
	if (a->nlink <= 1 && n->nlinks > 0 && link_find(n, parent, stored) < 0)
		return 1;
	/* Changed behind our back (see fs.h). */
	return S_ISREG(n->type) &&
	       (n->known_size != a->size || !same_time(&n->known_mtime, &a->mtime));
}

struct node *node_get(struct fs *fs, struct node *parent, const char *stored,
		      const char *plain, const struct scs_attr *a)
{
	pthread_mutex_lock(&fs->tl);
	struct node *n = hash_find(fs, a->ino);
	if (n && node_stale(n, parent, stored, a)) {
		hash_remove(fs, n);
		n = NULL;
	}
	if (!n) {
		n = calloc(1, sizeof *n);
		if (!n) {
			pthread_mutex_unlock(&fs->tl);
			return NULL;
		}
		node_init_locks(n);
		n->bino = a->ino;
		n->type = a->mode & S_IFMT;
		n->known_size = a->size;
		n->known_mtime = a->mtime;
		hash_insert(fs, n);
	}
	n->nlookup++;
	node_add_link(fs, n, parent, stored, plain, a->nlink);
	n->attr = *a;
	n->have_attr = 1;
	pthread_mutex_unlock(&fs->tl);
	return n;
}

void node_forget(struct fs *fs, struct node *n, uint64_t nlookup)
{
	if (n == &fs->root)
		return;
	pthread_mutex_lock(&fs->tl);
	n->nlookup = nlookup > n->nlookup ? 0 : n->nlookup - nlookup;
	maybe_free(fs, n);
	pthread_mutex_unlock(&fs->tl);
}

void node_unlinked(struct fs *fs, struct node *parent, const char *stored, uint64_t bino, int gone)
{
	pthread_mutex_lock(&fs->tl);
	struct node *n = hash_find(fs, bino);
	if (n) {
		n->refs++;                 /* keep n while we edit it */
		int i = link_find(n, parent, stored);
		if (i >= 0)
			link_remove_at(fs, n, i);
		if (gone) {
			while (n->nlinks)
				link_remove_at(fs, n, n->nlinks - 1);
			hash_remove(fs, n);
			n->attr.nlink = 0;
		} else if (n->attr.nlink > 1) {
			n->attr.nlink--;
		}
		n->refs--;
		maybe_free(fs, n);
	}
	pthread_mutex_unlock(&fs->tl);
}

void node_renamed(struct fs *fs, uint64_t bino, struct node *op, const char *ostored,
		  struct node *np, const char *nstored, const char *nplain)
{
	pthread_mutex_lock(&fs->tl);
	struct node *n = hash_find(fs, bino);
	if (n) {
		int i = link_find(n, op, ostored);
		struct nlink nl;
		if (link_set(&nl, np, nstored, nplain) == 0) {
			n->refs++;
			if (i >= 0) {
				struct nlink old = n->links[i];
				n->links[i] = nl;
				link_clear(fs, &old);
			} else if (S_ISDIR(n->type) || n->nlinks == 0) {
				while (n->nlinks)
					link_remove_at(fs, n, n->nlinks - 1);
				n->links[0] = nl;
				n->nlinks = 1;
			} else if (n->nlinks < NODE_MAX_LINKS) {
				n->links[n->nlinks++] = nl;
			} else {
				link_clear(fs, &nl);
			}
			n->refs--;
			maybe_free(fs, n);
		}
	}
	pthread_mutex_unlock(&fs->tl);
}

/* n's object is now new_bino (another node of that number leaves).  tl held. */
static void rehash_locked(struct fs *fs, struct node *n, uint64_t new_bino)
{
	hash_remove(fs, n);
	struct node *other = hash_find(fs, new_bino);
	if (other)
		hash_remove(fs, other);
	n->bino = new_bino;
	hash_insert(fs, n);
}

void node_rehash(struct fs *fs, uint64_t old_bino, uint64_t new_bino)
{
	pthread_mutex_lock(&fs->tl);
	struct node *n = hash_find(fs, old_bino);
	if (n)
		rehash_locked(fs, n, new_bino);
	pthread_mutex_unlock(&fs->tl);
}

int node_known(struct fs *fs, struct node *n, const struct scs_attr *a)
{
	pthread_mutex_lock(&fs->tl);
	int r = n->known_size == a->size && same_time(&n->known_mtime, &a->mtime);
	pthread_mutex_unlock(&fs->tl);
	return r;
}

void node_set_known(struct fs *fs, struct node *n, const struct scs_attr *a, int open)
{
	pthread_mutex_lock(&fs->tl);
	if (a) {
		n->known_size = a->size;
		n->known_mtime = a->mtime;
		n->attr = *a;
		n->have_attr = 1;
	}
	if (open >= 0)
		n->open_files = open;
	pthread_mutex_unlock(&fs->tl);
}

void node_set_attr(struct fs *fs, struct node *n, const struct scs_attr *a)
{
	pthread_mutex_lock(&fs->tl);
	n->attr = *a;
	n->have_attr = 1;
	pthread_mutex_unlock(&fs->tl);
}

int node_get_attr(struct fs *fs, struct node *n, struct scs_attr *a)
{
	pthread_mutex_lock(&fs->tl);
	int r = n->have_attr ? 0 : -ENOENT;
	if (!r)
		*a = n->attr;
	pthread_mutex_unlock(&fs->tl);
	return r;
}

struct node *node_parent(struct fs *fs, struct node *n)
{
	pthread_mutex_lock(&fs->tl);
	struct node *p = n->nlinks ? n->links[0].parent : NULL;
	if (p)
		p->refs++;
	pthread_mutex_unlock(&fs->tl);
	return p;
}

void node_put(struct fs *fs, struct node *n)
{
	pthread_mutex_lock(&fs->tl);
	n->refs--;
	maybe_free(fs, n);
	pthread_mutex_unlock(&fs->tl);
}

int node_dir_id(struct fs *fs, struct node *n, uint8_t id[SCS_DIR_ID_LEN])
{
	if (n == &fs->root)
		return scs_dir_read_id(fs->d, "", id);
	pthread_mutex_lock(&n->mu);
	int r = 0;
	if (!n->have_id) {
		char rpath[SCS_RPATH_MAX];
		r = node_rpath(fs, n, rpath, sizeof rpath);
		if (!r)
			r = scs_dir_read_id(fs->d, rpath, n->dir_id);
		if (!r)
			n->have_id = 1;
	}
	if (!r)
		memcpy(id, n->dir_id, SCS_DIR_ID_LEN);
	pthread_mutex_unlock(&n->mu);
	return r;
}

int node_dir(struct fs *fs, struct node *n, char *rpath, size_t cap, uint8_t id[SCS_DIR_ID_LEN])
{
	if (!S_ISDIR(n->type))
		return -ENOTDIR;
	int r = node_rpath(fs, n, rpath, cap);
	if (!r)
		r = node_dir_id(fs, n, id);
	return r;
}

/* ---- remote changes (fs_remote_changed) ----
 *
 * Under tl the nodes concerned are found and held (refs); then, with no
 * lock held, an open read-only file is reopened (its size and header may
 * have changed) and the kernel is told: libfuse's notify calls wait for
 * the kernel, which may wait for requests that need tl or node->mu. */

struct inval {
	struct node *n;              /* held; NULL: an entry without a node */
	struct node *parent;         /* held, or NULL */
	char *plain;                 /* its name in parent, or NULL */
	char *stored;
};

struct inval_list {
	struct inval *v;
	size_t n, cap;
};

static int inval_add(struct inval_list *l, struct node *n, struct node *parent,
		     const char *plain, const char *stored)
{
	if (l->n == l->cap) {
		size_t nc = l->cap ? 2 * l->cap : 16;
		struct inval *nv = realloc(l->v, nc * sizeof *nv);
		if (!nv)
			return -ENOMEM;
		l->v = nv;
		l->cap = nc;
	}
	struct inval *x = &l->v[l->n];
	x->plain = plain ? strdup(plain) : NULL;
	x->stored = stored ? strdup(stored) : NULL;
	if ((plain && !x->plain) || (stored && !x->stored)) {
		free(x->plain);
		free(x->stored);
		return -ENOMEM;
	}
	x->n = n;
	x->parent = parent;
	if (n)
		n->refs++;
	if (parent)
		parent->refs++;
	l->n++;
	return 0;
}

/* Does directory d (following first links up to the root) have the
 * remote path p[0..len)?  tl held. */
static int dir_is(struct fs *fs, struct node *d, const char *p, size_t len)
{
	for (int depth = 0; depth < 4096; depth++) {
		if (d == &fs->root)
			return len == 0;
		if (!d->nlinks || !len)
			return 0;
		const char *s = d->links[0].stored;
		size_t sl = strlen(s);
		if (sl > len || memcmp(p + len - sl, s, sl) || (len > sl && p[len - sl - 1] != '/'))
			return 0;
		len = len > sl ? len - sl - 1 : 0;
		d = d->links[0].parent;
	}
	return 0;
}

/* The node at remote path p[0..len) ("" = the root), and which of its
 * links that is; one pass over the table.  tl held. */
static struct node *node_at(struct fs *fs, const char *p, size_t len, int *link)
{
	if (!len)
		return &fs->root;
	size_t b = len;
	while (b > 0 && p[b - 1] != '/')
		b--;
	size_t bl = len - b, dl = b ? b - 1 : 0;
	for (size_t i = 0; i < fs->hcap; i++)
		for (struct node *n = fs->hash[i]; n; n = n->hnext)
			for (int k = 0; k < n->nlinks; k++)
				if (strlen(n->links[k].stored) == bl &&
				    !memcmp(n->links[k].stored, p + b, bl) &&
				    dir_is(fs, n->links[k].parent, p, dl)) {
					*link = k;
					return n;
				}
	return NULL;
}

void node_moved(struct fs *fs, const char *from, const char *to, const char *plain,
		uint64_t bino)
{
	const char *stored = strrchr(to, '/') ? strrchr(to, '/') + 1 : to;
	int link = -1;
	pthread_mutex_lock(&fs->tl);
	struct node *n = fs->hash ? node_at(fs, from, strlen(from), &link) : NULL;
	if (n && strcmp(from, to)) {
		struct nlink nl;
		struct nlink *l = &n->links[link];
		if (link_set(&nl, l->parent, stored, plain ? plain : l->plain) == 0) {
			struct nlink old = *l;
			*l = nl;
			link_clear(fs, &old);
		}
	}
	if (n && bino && bino != n->bino)
		rehash_locked(fs, n, bino);
	pthread_mutex_unlock(&fs->tl);
}

int node_dir_id_at(struct fs *fs, const char *rpath, uint8_t id[SCS_DIR_ID_LEN])
{
	int link = -1, r = -ENOENT;
	pthread_mutex_lock(&fs->tl);
	struct node *n = fs->hash ? node_at(fs, rpath, strlen(rpath), &link) : NULL;
	/* (not waiting for n->mu under tl: whoever holds it may be reading it) */
	if (n && S_ISDIR(n->type) && pthread_mutex_trylock(&n->mu) == 0) {
		if (n->have_id) {
			memcpy(id, n->dir_id, SCS_DIR_ID_LEN);
			r = 0;
		}
		pthread_mutex_unlock(&n->mu);
	}
	pthread_mutex_unlock(&fs->tl);
	return r;
}

int node_display_at(struct fs *fs, const char *rpath, char *out, size_t cap)
{
	int link = -1, r = -ENOENT;
	pthread_mutex_lock(&fs->tl);
	struct node *n = fs->hash ? node_at(fs, rpath, strlen(rpath), &link) : NULL;
	if (n && link == 0)
		r = build_path(fs, n, 1, out, cap);
	pthread_mutex_unlock(&fs->tl);
	return r;
}

/* Collect what path concerns: its node (if any) and its parent.  tl held. */
static void collect_path(struct fs *fs, const char *path, struct inval_list *l)
{
	size_t len = strlen(path);
	int link = -1;
	if (!len) {
		inval_add(l, &fs->root, NULL, NULL, NULL);
		return;
	}
	const char *slash = strrchr(path, '/');
	const char *base = slash ? slash + 1 : path;
	struct node *n = node_at(fs, path, len, &link);
	struct node *parent = n ? n->links[link].parent :
		node_at(fs, path, slash ? (size_t)(slash - path) : 0, &link);
	if (!parent || (parent != &fs->root && !S_ISDIR(parent->type)))
		return;              /* nothing cached below an unknown directory */
	inval_add(l, n, parent, n ? n->links[link].plain : NULL, base);
}

/* Everything (the back end lost track).  tl held. */
static void collect_all(struct fs *fs, struct inval_list *l)
{
	inval_add(l, &fs->root, NULL, NULL, NULL);
	for (size_t i = 0; i < fs->hcap; i++)
		for (struct node *n = fs->hash[i]; n; n = n->hnext) {
			if (!n->nlinks)
				inval_add(l, n, NULL, NULL, NULL);
			for (int k = 0; k < n->nlinks; k++)
				inval_add(l, n, n->links[k].parent, n->links[k].plain,
					  n->links[k].stored);
		}
}

/* The object of n changed: an open read-only file of n reads the new
 * object from now on, and n leaves the table so that the next lookup makes
 * a fresh inode (the kernel keeps the size of a cached one, see fs.h).
 * A file open for writing keeps its node and its version. */
static void refresh_file(struct fs *fs, struct node *n)
{
	int fresh = 1;
	pthread_mutex_lock(&n->mu);
	if (n->file && n->writable) {
		fresh = 0;
	} else if (n->file) {
		char rpath[SCS_RPATH_MAX], disp[SCS_RPATH_MAX];
		scs_file *f;
		node_display(fs, n, disp, sizeof disp);
		if (node_rpath(fs, n, rpath, sizeof rpath) == 0 &&
		    scs_file_open(fs->be, rpath, 0, fs->k, disp, &f) == 0) {
			pthread_rwlock_wrlock(&n->frw);
			scs_file *old = n->file;
			n->file = f;
			pthread_rwlock_unlock(&n->frw);
			scs_file_close(old);
		}
	}
	if (fresh) {             /* under n->mu: no open for writing meanwhile */
		pthread_mutex_lock(&fs->tl);
		hash_remove(fs, n);
		pthread_mutex_unlock(&fs->tl);
	}
	pthread_mutex_unlock(&n->mu);
}

void fs_remote_changed(void *arg, const char *path, int what)
{
	struct fs *fs = arg;
	struct inval_list l = { 0 };
	pthread_mutex_lock(&fs->tl);
	if (path)
		collect_path(fs, path, &l);
	else
		collect_all(fs, &l);
	pthread_mutex_unlock(&fs->tl);
	if (!path)
		what = SCS_BE_CHANGED_CONTENT | SCS_BE_CHANGED_ENTRY;
	for (size_t i = 0; i < l.n; i++) {
		struct inval *x = &l.v[i];
		if (x->n && (what & SCS_BE_CHANGED_CONTENT) && S_ISREG(x->n->type))
			refresh_file(fs, x->n);
		if (x->parent && !x->n && x->stored) {
			/* A new name: the kernel may remember it as missing. */
			char dpath[SCS_RPATH_MAX], shown[SCS_NAME_MAX + 1];
			uint8_t id[SCS_DIR_ID_LEN];
			if (node_dir(fs, x->parent, dpath, sizeof dpath, id) == 0 &&
			    scs_dir_shown_name(fs->d, dpath, id, x->stored, shown) == 0)
				x->plain = strdup(shown);
		}
	}
	/* No lock held from here on. */
	for (size_t i = 0; i < l.n; i++) {
		struct inval *x = &l.v[i];
		if (x->n && ((what & SCS_BE_CHANGED_CONTENT) || S_ISDIR(x->n->type)))
			fuse_lowlevel_notify_inval_inode(fs->se, node_ino(fs, x->n),
							 S_ISREG(x->n->type) ? 0 : -1, 0);
		if (x->parent && x->plain)
			fuse_lowlevel_notify_inval_entry(fs->se, node_ino(fs, x->parent), x->plain,
							 strlen(x->plain));
		if (x->parent && (what & SCS_BE_CHANGED_ENTRY))
			fuse_lowlevel_notify_inval_inode(fs->se, node_ino(fs, x->parent), -1, 0);
	}
	pthread_mutex_lock(&fs->tl);
	for (size_t i = 0; i < l.n; i++) {
		struct inval *x = &l.v[i];
		if (x->n) {
			x->n->refs--;
			maybe_free(fs, x->n);
		}
		if (x->parent) {
			x->parent->refs--;
			maybe_free(fs, x->parent);
		}
		free(x->plain);
		free(x->stored);
	}
	pthread_mutex_unlock(&fs->tl);
	free(l.v);
}

int fs_conflict_name(void *arg, const char *path, char *out, size_t cap)
{
	struct fs *fs = arg;
	if (fs_abandoned(fs, path))
		return -ECANCELED;       /* its content lives on in another object */
	/* (fs->own_d: the name of an entry of ours may be in a retired epoch) */
	return scs_dir_conflict_name(fs->own_d, path, fs->self_name, time(NULL), out, cap);
}
