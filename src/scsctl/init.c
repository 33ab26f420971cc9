/* init.c - scsctl init REMOTE: make an empty folder a new group.
 *
 * Writes .scsfs/keyring/00000000.entry (the genesis: the caller is the sole
 * admin, epoch 1) and .scsfs/format, nothing else; pins the genesis on this
 * machine and makes REMOTE the default remote. */
#include "scsctl.h"
#include "scs/backend.h"
#include "scs/gdrive.h"
#include "scs/config.h"
#include "scs/identity.h"
#include "scs/keyring.h"
#include "scs/vault.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define FORMAT_MARKER "{\"format\":1}\n"

struct scan {
	int n;
	char first[256];
};

static int count_cb(void *arg, const char *name, const struct scs_attr *a)
{
	struct scan *s = arg;
	(void)a;
	if (scs_is_tmp_name(name))
		return 0;
	if (s->n++ == 0)
		snprintf(s->first, sizeof s->first, "%s", name);
	return 0;
}

/* The folder must be empty, or hold only the remains of an init that
 * stopped before writing its genesis (an .scsfs/ with an empty keyring). */
static int check_empty(scs_backend *be, const char *path)
{
	struct scan root = { 0 }, meta = { 0 }, kr = { 0 };
	int rc = scs_be_list(be, "", count_cb, &root);
	if (rc < 0)
		return scsctl_failf("cannot list %s: %s", path, strerror(-rc));
	if (root.n == 0)
		return 0;
	struct scs_attr a;
	if (scs_be_stat(be, ".scsfs", &a) < 0)
		return scsctl_failf("%s is not empty (it holds \"%s\"...) and is not an scsfs group; "
				    "init needs an empty folder: create a new one", path, root.first);
	scs_be_list(be, SCS_KEYRING_DIR, count_cb, &kr);
	if (kr.n > 0)
		return scsctl_failf("%s already holds an scsfs group; mount it with `scsfs %s "
				    "MOUNTPOINT`, or see `scsctl status %s`", path, path, path);
	scs_be_list(be, ".scsfs", count_cb, &meta);
	if (root.n > 1 || meta.n > 1 || (meta.n == 1 && strcmp(meta.first, "keyring") != 0))
		return scsctl_failf("%s holds an incomplete .scsfs/ and other files; init needs an "
				    "empty folder", path);
	return 0;   /* an interrupted init: finish it */
}

int init_main(int argc, char **argv)
{
	scs_err err = { 0 };
	char remote[SCS_PATH_MAX], fpr[SCS_FPR_TEXT_LEN];
	if (argc != 2)
		return scsctl_usage("init REMOTE");
	if (scs_vault_resolve_remote(argv[1], remote, sizeof remote, &err) < 0)
		return scsctl_fail(&err);
	const char *path = strncmp(remote, "local:", 6) == 0 ? remote + 6 : remote;

	scs_backend *be = NULL;
	scs_identity *id = NULL;
	scs_keyring *kr = NULL;
	uint8_t *entry = NULL, epoch_key[SCS_KEY_LEN];
	size_t len = 0;
	int ret = 1, made_meta = 0, made_kr = 0, published = 0;

	int rc = scs_backend_open(remote, &be, &err);
	if (rc == -ENOENT && strncmp(remote, "gdrive:", 7) == 0 && remote[7] == '/' &&
	    (rc = scs_gdrive_mkpath(remote, &err)) == 0)   /* Drive: init makes its folder */
		rc = scs_backend_open(remote, &be, &err);
	if (rc == -ENOENT)
		return scsctl_failf("folder %s does not exist; create it (mkdir -p %s) and run "
				    "`scsctl init %s` again", path, path, remote);
	if (rc < 0)
		return scsctl_fail(&err);
	if (check_empty(be, path))
		goto out;
	if (scs_identity_load(&id, &err) < 0) {
		scsctl_fail(&err);
		goto out;
	}
	if (scs_identity_unlock_prompt(id, scsctl.passphrase_file, 0, &err) < 0) {
		scsctl_fail(&err);
		goto out;
	}
	if (scs_keyring_make_genesis(id, epoch_key, &entry, &len, &err) < 0) {
		scsctl_fail(&err);
		goto out;
	}
	scs_cleanse(epoch_key, sizeof epoch_key);   /* members unwrap it from the keyring */
	rc = scs_be_mkdir(be, ".scsfs", 0755);
	made_meta = rc == 0;
	if (rc == 0 || rc == -EEXIST) {
		rc = scs_be_mkdir(be, SCS_KEYRING_DIR, 0755);
		made_kr = rc == 0;
		if (rc == -EEXIST)
			rc = 0;
	}
	if (rc < 0) {
		scsctl_failf("cannot create %s/.scsfs: %s", path, strerror(-rc));
		goto out;
	}
	if (scs_keyring_publish(be, 0, entry, len, &err) < 0) {
		scsctl_fail(&err);
		goto out;
	}
	published = 1;
	/* Read back what was stored and verify it as any member will. */
	if (scs_keyring_load(be, &kr, &err) < 0 || scs_keyring_pin_write(kr, &err) < 0) {
		scsctl_fail(&err);
		goto out;
	}
	rc = scs_be_write_file(be, SCS_META_FORMAT, FORMAT_MARKER, strlen(FORMAT_MARKER));
	if (rc < 0) {
		scsctl_failf("cannot write %s/%s: %s", path, SCS_META_FORMAT, strerror(-rc));
		goto out;
	}
	made_meta = made_kr = published = 0;   /* complete: keep it */
	if (scs_config_set(SCS_CONFIG_DEFAULT_REMOTE, remote, &err) < 0) {
		scsctl_fail(&err);
		goto out;
	}
	scs_group_fpr(kr, fpr);
	printf("created a new group in %s with %s as its admin\n"
	       "group fingerprint: %s\n"
	       "default remote: %s\n"
	       "mount it with: scsfs %s MOUNTPOINT\n", remote, id->name, fpr, remote, remote);
	ret = 0;
out:
	if (ret && published) {
		/* Nothing half-written: undo what this run created. */
		char p0[64];
		scs_keyring_entry_path(0, p0);
		scs_be_unlink(be, p0);
	}
	if (ret && made_kr)
		scs_be_rmdir(be, SCS_KEYRING_DIR);
	if (ret && made_meta)
		scs_be_rmdir(be, ".scsfs");
	free(entry);
	scs_keyring_free(kr);
	scs_identity_free(id);
	scs_backend_close(be);
	return ret;
}
