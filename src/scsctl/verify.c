/* verify.c - scsctl verify [--remote REMOTE] [PATH]: authenticate every
 * file of the group (or those under PATH, a path inside the group): each
 * name, each directory id, each symlink target, and for each file its
 * header signature, every record and the content hash, and whether it is
 * an old version put back (this member saw a newer one: seen.h).  One line
 * per damaged, replayed or changed (replaced while checked) entry on stdout,
 * a summary, exit 1 if anything is damaged. */
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
	unsigned long checked, damaged, changed;
	int tty;
	struct timespec last;
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

static void report(struct walk *w, const char *what, const char *display, const char *reason)
{
	if (w->tty)
		fputs("\r\033[K", stderr);
	printf("%s %s: %s\n", what, display, reason);
	fflush(stdout);
	w->damaged++;
}

static void damaged(struct walk *w, const char *display, const char *reason)
{
	report(w, "DAMAGED", display, reason);
}

/* Check one entry: a directory's id, a symlink's target, or a file's
 * header, records and content hash.  shown is its plaintext path. */
static int check_entry(struct walk *w, const char *rpath, uint32_t mode,
		       const uint8_t pid[SCS_DIR_ID_LEN], const char *shown)
{
	w->checked++;
	if (S_ISLNK(mode)) {
		char target[SCS_SYMLINK_MAX + 1], reason[300];
		int rc = scs_dir_readlink(w->d, rpath, pid, target);
		if (rc < 0) {
			snprintf(reason, sizeof reason, "symlink target cannot be authenticated (%s)",
				 strerror(-rc));
			damaged(w, shown, reason);
		}
	} else if (S_ISREG(mode)) {
		scs_err err = { 0 };
		int rc = scs_file_verify(w->be, rpath, w->kc, &err);
		if (rc == -ENOENT || rc == -ESTALE) {
			/* Gone from the folder since it was listed (a member's edit
			 * or a re-key pass replaced it): nothing wrong with it. */
			if (w->tty)
				fputs("\r\033[K", stderr);
			printf("CHANGED %s: replaced or removed while being checked; run `scsctl "
			       "verify` again to check it\n", shown);
			fflush(stdout);
			w->changed++;
		} else if (rc == -EBADMSG && err.code == -ESTALE) {
			/* An old version put back (the member's memory, seen.h). */
			char reason[sizeof err.msg + SCS_RPATH_MAX + 80];
			snprintf(reason, sizeof reason, "%s (if a member restored it on purpose, run "
				 "`scsctl forget %s`)", err.msg, shown);
			report(w, "REPLAYED", shown, reason);
		} else if (rc < 0) {
			damaged(w, shown, err.msg[0] ? err.msg : strerror(-rc));
		}
	}
	progress(w, 0);
	return 0;
}

static int walk_cb(void *arg, const struct scs_walk_entry *e)
{
	struct walk *w = arg;
	char shown[SCS_RPATH_MAX + 2];
	snprintf(shown, sizeof shown, "%s%s", e->path[0] == '/' ? "" : "/", e->path);
	if (e->bad && !e->name_ok) {
		w->checked++;
		damaged(w, shown, e->bad == -EBADMSG ? "the name cannot be decrypted (tampered or "
			"not written by a member)" : "the name cannot be decrypted with any key "
			"this member holds");
		return 0;
	}
	if (e->bad) {
		w->checked++;
		damaged(w, shown, "directory id (.scsdir) is missing or damaged; its contents "
			"cannot be named");
		return 0;
	}
	if (S_ISDIR(e->attr->mode))
		return 0;             /* its entries follow */
	return check_entry(w, e->rpath, e->attr->mode, e->parent_id, shown);
}

int scsctl_resolve(scs_dirctx *d, const uint8_t *root, const char *path, char *rpath,
		   uint8_t *pid, uint8_t *id, uint32_t *mode,
		   char *display)
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
		int rc = scs_dir_lookup(d, cur, id, comp, rpath, SCS_RPATH_MAX, &a);
		size_t dl = strlen(display);
		snprintf(display + dl, SCS_RPATH_MAX - dl, "/%s", comp);
		if (rc == -ENOENT)
			return scsctl_failf("%s does not exist in the group", display);
		if (rc < 0)
			return scsctl_failf("cannot look up %s: %s", display, strerror(-rc));
		memcpy(pid, id, SCS_DIR_ID_LEN);
		*mode = a.mode;
		strcpy(cur, rpath);
		if (S_ISDIR(a.mode) && scs_dir_read_id(d, rpath, id) < 0)
			return 2;
	}
	strcpy(rpath, cur);
	return 0;
}

int verify_main(int argc, char **argv)
{
	const char *remote = NULL, *path = NULL;
	for (int i = 1; i < argc; i++) {
		if (scsctl_remote_arg(argc, argv, &i, &remote))
			continue;
		if (argv[i][0] == '-' && argv[i][1])
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
	rc = scsctl_resolve(w.d, scs_vault_root_dir_id(v), path ? path : "", rpath, pid, id, &mode,
			    display);
	if (rc == 2) {
		w.checked++;
		damaged(&w, display, "directory id (.scsdir) is missing or damaged");
		rc = -1;
	} else if (rc > 0) {
		ret = 1;          /* message printed */
	} else if (rc == 0) {
		if (S_ISDIR(mode))
			rc = scs_dir_walk(w.d, rpath, id, display, walk_cb, &w);
		else
			rc = check_entry(&w, rpath, mode, pid, *display ? display : "/");
		if (rc < 0)
			ret = scsctl_failf("verification stopped: %s", strerror(-rc));
	}
	progress(&w, 1);
	if (!ret) {
		printf("verified %lu files, %lu damaged", w.checked - w.changed, w.damaged);
		if (w.changed)
			printf(", %lu changed while being checked", w.changed);
		putchar('\n');
		if (w.damaged)
			ret = scsctl_failf("%lu damaged; restore %s from a backup or another member's copy",
					   w.damaged, w.damaged == 1 ? "it" : "them");
	}
	scs_dir_free(w.d);
	scs_vault_close(v);
	return ret;
}
