/* verify.c - scsctl verify [--remote REMOTE] [PATH]: authenticate every
 * file of the group (or those under PATH, a path inside the group): each
 * name, each directory id, each symlink target, and for each file its
 * header signature, every record and the content hash.  One line per
 * damaged entry on stdout, a summary, exit 1 if anything is damaged. */
#include "scsctl.h"
#include "scs/dir.h"
#include "scs/file.h"
#include "scs/vault.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define USAGE "verify [--remote REMOTE] [PATH]"

struct walk {
	scs_backend *be;
	const scs_keyctx *kc;
	scs_dirctx *d;
	unsigned long checked, damaged;
	int tty;
	struct timespec last;
};

struct child {
	char *name;       /* plaintext, NULL for an unreadable name */
	char *stored;
	uint32_t mode;
	int bad;
};

struct children {
	struct child *v;
	size_t n, cap;
};

/* A progress line kept up to date on a terminal (every 0.1 s), plain
 * progress lines otherwise (every 5 s, so short runs print none). */
static void progress(struct walk *w, int final)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	long ms = (now.tv_sec - w->last.tv_sec) * 1000 + (now.tv_nsec - w->last.tv_nsec) / 1000000;
	if (!w->tty) {
		if (!final && ms >= 5000) {
			fprintf(stderr, "verifying: %lu checked, %lu damaged\n", w->checked, w->damaged);
			w->last = now;
		}
		return;
	}
	if (final) {
		fputs("\r\033[K", stderr);
	} else if (ms >= 100) {
		fprintf(stderr, "\r\033[Kverifying: %lu checked, %lu damaged", w->checked, w->damaged);
		w->last = now;
	}
	fflush(stderr);
}

static void damaged(struct walk *w, const char *display, const char *reason)
{
	if (w->tty)
		fputs("\r\033[K", stderr);
	printf("DAMAGED %s: %s\n", display, reason);
	fflush(stdout);
	w->damaged++;
}

static int collect_cb(void *arg, const struct scs_dirent *e)
{
	struct children *c = arg;
	if (c->n == c->cap) {
		size_t nc = c->cap ? 2 * c->cap : 32;
		struct child *v = realloc(c->v, nc * sizeof *v);
		if (!v)
			return -ENOMEM;
		c->v = v;
		c->cap = nc;
	}
	struct child *ch = &c->v[c->n];
	ch->name = e->name ? strdup(e->name) : NULL;
	ch->stored = strdup(e->stored);
	ch->mode = e->attr ? e->attr->mode : 0;
	ch->bad = e->bad;
	if (!ch->stored || (e->name && !ch->name))
		return -ENOMEM;
	c->n++;
	return 0;
}

static void children_free(struct children *c)
{
	for (size_t i = 0; i < c->n; i++) {
		free(c->v[i].name);
		free(c->v[i].stored);
	}
	free(c->v);
}

static int walk_dir(struct walk *w, const char *rpath, const uint8_t id[SCS_DIR_ID_LEN],
		    const char *display);

/* Check one entry whose remote path is rpath (parent directory id pid). */
static int check_entry(struct walk *w, const char *rpath, uint32_t mode,
		       const uint8_t pid[SCS_DIR_ID_LEN], const char *display)
{
	scs_err err = { 0 };
	char reason[600];
	if (S_ISDIR(mode)) {
		uint8_t id[SCS_DIR_ID_LEN];
		int rc = scs_dir_read_id(w->d, rpath, id);
		if (rc < 0) {
			snprintf(reason, sizeof reason, "directory id (.scsdir) %s; its contents cannot "
				 "be named", rc == -ENOENT ? "is missing" : "is damaged");
			w->checked++;
			damaged(w, display, reason);
			return 0;
		}
		return walk_dir(w, rpath, id, display);
	}
	w->checked++;
	if (S_ISLNK(mode)) {
		char target[SCS_SYMLINK_MAX + 1];
		int rc = scs_dir_readlink(w->d, rpath, pid, target);
		if (rc < 0) {
			snprintf(reason, sizeof reason, "symlink target cannot be authenticated (%s)",
				 strerror(-rc));
			damaged(w, display, reason);
		}
	} else if (S_ISREG(mode)) {
		int rc = scs_file_verify(w->be, rpath, w->kc, &err);
		if (rc < 0)
			damaged(w, display, err.msg[0] ? err.msg : strerror(-rc));
	}
	progress(w, 0);
	return 0;
}

static int walk_dir(struct walk *w, const char *rpath, const uint8_t id[SCS_DIR_ID_LEN],
		    const char *display)
{
	struct children c = { 0 };
	int rc = scs_dir_list(w->d, rpath, id, display, SCS_DIR_LIST_BAD, collect_cb, &c);
	if (rc < 0) {
		char reason[300];
		snprintf(reason, sizeof reason, "cannot list this directory (%s)", strerror(-rc));
		w->checked++;
		damaged(w, *display ? display : "/", reason);
		children_free(&c);
		return rc == -ENOMEM ? rc : 0;
	}
	for (size_t i = 0; i < c.n && rc == 0; i++) {
		char crpath[SCS_RPATH_MAX], cdisp[SCS_RPATH_MAX + 512];
		struct child *ch = &c.v[i];
		if (scs_path_join(crpath, sizeof crpath, rpath, ch->stored) < 0)
			continue;
		if (!ch->name) {
			snprintf(cdisp, sizeof cdisp, "%s/?%s", display, ch->stored);
			w->checked++;
			damaged(w, cdisp, ch->bad == -EBADMSG ? "the name cannot be decrypted (tampered or "
				"not written by a member)" : "the name cannot be decrypted with any key "
				"this member holds");
			continue;
		}
		snprintf(cdisp, sizeof cdisp, "%s/%s", display, ch->name);
		rc = check_entry(w, crpath, ch->mode, id, cdisp);
	}
	children_free(&c);
	return rc;
}

/* Walk PATH (plaintext, inside the group) down from the root. */
static int resolve(struct walk *w, const char *path, char *rpath, uint8_t pid[SCS_DIR_ID_LEN],
		   uint8_t id[SCS_DIR_ID_LEN], uint32_t *mode, char *display, const uint8_t *root)
{
	char buf[SCS_RPATH_MAX], cur[SCS_RPATH_MAX] = "";
	struct scs_attr a;
	memcpy(id, root, SCS_DIR_ID_LEN);
	memcpy(pid, root, SCS_DIR_ID_LEN);
	*mode = S_IFDIR | 0755;
	display[0] = '\0';
	if (strlen(path) >= sizeof buf)
		return scsctl_failf("path %s is too long", path);
	strcpy(buf, path);
	for (char *save = NULL, *comp = strtok_r(buf, "/", &save); comp;
	     comp = strtok_r(NULL, "/", &save)) {
		if (!S_ISDIR(*mode))
			return scsctl_failf("%s is not a directory", display);
		int rc = scs_dir_lookup(w->d, cur, id, comp, rpath, SCS_RPATH_MAX, &a);
		size_t dl = strlen(display);
		snprintf(display + dl, SCS_RPATH_MAX - dl, "/%s", comp);
		if (rc == -ENOENT)
			return scsctl_failf("%s does not exist in the group", display);
		if (rc < 0)
			return scsctl_failf("cannot look up %s: %s", display, strerror(-rc));
		memcpy(pid, id, SCS_DIR_ID_LEN);
		*mode = a.mode;
		strcpy(cur, rpath);
		if (S_ISDIR(a.mode) && scs_dir_read_id(w->d, rpath, id) < 0) {
			w->checked++;
			damaged(w, display, "directory id (.scsdir) is missing or damaged");
			return -1;
		}
	}
	strcpy(rpath, cur);
	return 0;
}

int verify_main(int argc, char **argv)
{
	const char *remote = NULL, *path = NULL;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--remote") == 0 && i + 1 < argc)
			remote = argv[++i];
		else if (strncmp(argv[i], "--remote=", 9) == 0)
			remote = argv[i] + 9;
		else if (argv[i][0] == '-' && argv[i][1])
			return scsctl_usage(USAGE);
		else if (!path)
			path = argv[i];
		else
			return scsctl_usage(USAGE);
	}
	scs_err err = { 0 };
	scs_vault *v;
	struct scs_vault_opts o = { .passphrase_file = scsctl.passphrase_file };
	if (scs_vault_open(remote, &o, &v, &err) < 0)
		return scsctl_fail(&err);
	struct walk w = { .be = scs_vault_backend(v), .kc = scs_vault_keyctx(v), .tty = isatty(2) };
	clock_gettime(CLOCK_MONOTONIC, &w.last);
	int rc = scs_dir_new(w.be, w.kc, scs_vault_root_dir_id(v), &w.d);
	if (rc < 0) {
		scs_vault_close(v);
		return scsctl_failf("cannot read the group: %s", strerror(-rc));
	}
	char rpath[SCS_RPATH_MAX], display[SCS_RPATH_MAX];
	uint8_t id[SCS_DIR_ID_LEN], pid[SCS_DIR_ID_LEN];
	uint32_t mode;
	int ret = 0;
	rc = resolve(&w, path ? path : "", rpath, pid, id, &mode, display, scs_vault_root_dir_id(v));
	if (rc > 0) {
		ret = 1;          /* message printed */
	} else if (rc == 0) {
		if (S_ISDIR(mode))
			rc = walk_dir(&w, rpath, id, display);
		else
			rc = check_entry(&w, rpath, mode, pid, display);
		if (rc < 0)
			ret = scsctl_failf("verification stopped: %s", strerror(-rc));
	}
	progress(&w, 1);
	if (!ret) {
		printf("verified %lu files, %lu damaged\n", w.checked, w.damaged);
		if (w.damaged)
			ret = scsctl_failf("%lu damaged; restore %s from a backup or another member's copy",
					   w.damaged, w.damaged == 1 ? "it" : "them");
	}
	scs_dir_free(w.d);
	scs_vault_close(v);
	return ret;
}
