/* forget.c - scsctl forget [--remote REMOTE] PATH...: drop what this member
 * remembers about the versions of those files (or of every file under a
 * directory), so that an old copy a member put back on purpose is accepted
 * again instead of being refused as a replay (seen.h).  Running mounts see
 * it before they next refuse the file. */
#include "scsctl.h"
#include "scs/dir.h"
#include "scs/format.h"
#include "scs/seen.h"
#include "scs/vault.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#define USAGE "forget [--remote REMOTE] PATH..."

struct forget {
	scs_backend *be;
	scs_seen *seen;
	unsigned long files, failed;
};

/* The file id in the header of the object at rpath (no keys needed). */
static int forget_one(struct forget *f, const char *rpath, const char *shown)
{
	scs_obj *o;
	uint8_t hb[SCS_HEADER_SIZE];
	scs_header h;
	scs_err err = { 0 };
	int rc = scs_be_open(f->be, rpath, O_RDONLY, 0, &o);
	if (rc == 0) {
		ssize_t n = scs_obj_pread(o, hb, sizeof hb, 0);
		scs_obj_close(o);
		rc = n < 0 ? (int)n : n != (ssize_t)sizeof hb ||
			scs_header_decode(hb, sizeof hb, &h) < 0 ? -EBADMSG : 0;
	}
	if (rc == 0)
		rc = scs_seen_forget(f->seen, h.file_id, &err);
	if (rc < 0) {
		f->failed++;
		fprintf(stderr, "scsctl: %s: %s\n", shown, err.msg[0] ? err.msg :
			rc == -EBADMSG ? "not a file object (header is malformed)" : strerror(-rc));
		return 0;
	}
	f->files++;
	return 0;
}

static int walk_cb(void *arg, const struct scs_walk_entry *e)
{
	char shown[SCS_RPATH_MAX + 2];
	if (e->bad || !S_ISREG(e->attr->mode))
		return 0;
	snprintf(shown, sizeof shown, "%s%s", e->path[0] == '/' ? "" : "/", e->path);
	return forget_one(arg, e->rpath, shown);
}

int forget_main(int argc, char **argv)
{
	const char *remote = NULL;
	int npaths = 0;
	for (int i = 1; i < argc; i++) {
		if (scsctl_remote_arg(argc, argv, &i, &remote))
			continue;
		if (argv[i][0] == '-' && argv[i][1])
			return scsctl_usage(USAGE);
		else
			npaths++;
	}
	if (!npaths)
		return scsctl_usage(USAGE);
	scs_err err = { 0 };
	scs_vault *v;
	struct scs_vault_opts o = { .passphrase_file = scsctl.passphrase_file };
	if (scs_vault_open(remote, &o, &v, &err) < 0)
		return scsctl_fail(&err);
	struct forget f = { .be = scs_vault_backend(v), .seen = scs_vault_seen(v) };
	if (!f.seen) {
		scs_vault_close(v);
		return scsctl_failf("this member keeps no memory of file versions (no data "
				    "directory: set HOME or XDG_DATA_HOME); nothing to forget");
	}
	scs_dirctx *d;
	int rc = scs_dir_new(f.be, scs_vault_keyctx(v), scs_vault_root_dir_id(v), &d);
	if (rc < 0) {
		scs_vault_close(v);
		return scsctl_failf("cannot read the group: %s", strerror(-rc));
	}
	int ret = 0;
	for (int i = 1; i < argc; i++) {
		if (scsctl_remote_arg(argc, argv, &i, NULL))
			continue;
		char rpath[SCS_RPATH_MAX], display[SCS_RPATH_MAX];
		uint8_t id[SCS_DIR_ID_LEN], pid[SCS_DIR_ID_LEN];
		uint32_t mode;
		rc = scsctl_resolve(d, scs_vault_root_dir_id(v), argv[i], rpath, pid, id, &mode,
				    display);
		if (rc == 2)
			rc = scsctl_failf("%s: its directory id (.scsdir) is missing or damaged; run "
					  "`scsctl verify`", display);
		if (rc) {
			ret = 1;
			continue;
		}
		if (S_ISDIR(mode))
			rc = scs_dir_walk(d, rpath, id, display, walk_cb, &f);
		else if (S_ISREG(mode))
			rc = forget_one(&f, rpath, display);
		else
			ret = scsctl_failf("%s is not a file or a directory", display);
		if (rc < 0)
			ret = scsctl_failf("%s: stopped: %s", display, strerror(-rc));
	}
	if (f.failed)
		ret = 1;
	printf("forgot the versions of %lu file%s; old copies of %s are accepted again\n",
	       f.files, f.files == 1 ? "" : "s", f.files == 1 ? "it" : "them");
	scs_dir_free(d);
	scs_vault_close(v);
	return ret;
}
