/* join.c - scsctl join REMOTE --fingerprint FPR: pin a group on this
 * machine after comparing its fingerprint out of band.
 *
 * The keyring is read and verified from its genesis; its group fingerprint
 * must equal FPR (what an admin read to you over a channel you trust).
 * Only then is the group pinned ($XDG_DATA_HOME/scsfs/groups/) and made
 * the default remote.  From then on a keyring that does not descend from
 * that genesis, or is older than what this machine has seen, is refused.
 * Needs no passphrase: nothing secret is used. */
#include "scsctl.h"
#include "scs/config.h"
#include "scs/crypto.h"
#include "scs/identity.h"
#include "scs/keyring.h"
#include "scs/vault.h"

#include <stdio.h>
#include <string.h>

#define USAGE "join REMOTE --fingerprint FPR"

int join_main(int argc, char **argv)
{
	const char *remote_arg = NULL, *fpr_text = NULL;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--fingerprint") == 0 && i + 1 < argc)
			fpr_text = argv[++i];
		else if (strncmp(argv[i], "--fingerprint=", 14) == 0)
			fpr_text = argv[i] + 14;
		else if (argv[i][0] == '-' || remote_arg)
			return scsctl_usage(USAGE);
		else
			remote_arg = argv[i];
	}
	if (!remote_arg || !fpr_text)
		return scsctl_usage(USAGE);

	scs_err err = { 0 };
	uint8_t want[SCS_FPR_LEN];
	if (scs_fpr_parse(fpr_text, want) < 0)
		return scsctl_failf("\"%s\" is not a group fingerprint: it has 64 hex digits, as "
				    "`scsctl status` prints it for a member", fpr_text);
	char remote[SCS_PATH_MAX], shown[SCS_FPR_TEXT_LEN];
	if (scs_vault_resolve_remote(remote_arg, remote, sizeof remote, &err) < 0)
		return scsctl_fail(&err);

	scs_backend *be = NULL;
	scs_keyring *kr = NULL;
	scs_identity *id = NULL;
	int ret = 1;
	if (scs_backend_open(remote, &be, &err) < 0) {
		scsctl_fail(&err);
		goto out;
	}
	int rc = scs_keyring_load(be, &kr, &err);
	if (rc == -ENOENT) {
		scsctl_failf("%s is not an scsfs group (no keyring in .scsfs/); check the path", remote);
		goto out;
	}
	if (rc < 0) {
		scsctl_fail(&err);
		goto out;
	}
	scs_group_fpr(kr, shown);
	if (sizeof kr->group_id != sizeof want || !scs_ct_equal(kr->group_id, want, sizeof want)) {
		scsctl_failf("the group in %s has fingerprint %s, not the one you were given; do not "
			     "join it: ask the admin to read the fingerprint to you again", remote, shown);
		goto out;
	}
	rc = scs_keyring_pin_check(kr, 1, &err);
	if (rc == -ENOENT)
		rc = scs_keyring_pin_write(kr, &err);
	if (rc < 0) {
		scsctl_fail(&err);
		goto out;
	}
	if (scs_config_set(SCS_CONFIG_DEFAULT_REMOTE, remote, &err) < 0) {
		scsctl_fail(&err);
		goto out;
	}
	printf("joined group %s\nremote: %s (now your default)\n", shown, remote);
	if (scs_identity_load(&id, &err) == 0 && scs_keyring_member(kr, id->fpr))
		printf("you are a member: mount it with `scsfs %s MOUNTPOINT`\n", remote);
	else
		printf("you are not a member yet: send the output of `scsctl id export` to an admin "
		       "of the group, then mount it with `scsfs %s MOUNTPOINT`\n", remote);
	ret = fflush(stdout) == 0 ? 0 : scsctl_failf("cannot write to standard output");
out:
	scs_identity_free(id);
	scs_keyring_free(kr);
	scs_backend_close(be);
	return ret;
}
