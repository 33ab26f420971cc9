/* status.c - scsctl status [REMOTE]: the group as this machine sees it.
 * Needs no passphrase: everything shown is in the verified keyring.  The
 * "re-key mode: lazy" line appears while the newest removals were made
 * with `member remove --lazy` and the re-key pass has not run. */
#include "scsctl.h"
#include "scs/identity.h"
#include "scs/keyring.h"
#include "scs/rekey.h"
#include "scs/vault.h"

#include <stdio.h>

int status_main(int argc, char **argv)
{
	scs_err err = { 0 };
	scs_vault *v;
	if (argc > 2)
		return scsctl_usage("status [REMOTE]");
	struct scs_vault_opts o = { .passphrase_file = scsctl.passphrase_file, .public_only = 1 };
	if (scs_vault_open(argc == 2 ? argv[1] : NULL, &o, &v, &err) < 0)
		return scsctl_fail(&err);
	const scs_keyring *kr = scs_vault_keyring(v);
	const scs_identity *id = scs_vault_identity(v);
	const struct scs_member *me = scs_keyring_member(kr, id->fpr);
	size_t n;
	scs_keyring_members(kr, &n);
	printf("remote: %s\n", scs_vault_remote(v));
	printf("group fingerprint: %s\n", scs_vault_group_fpr(v));
	printf("epoch: %u\n", kr->epoch);
	printf("members: %zu\n", n);
	printf("keyring entries: %u\n", kr->seq + 1);
	printf("you: %s (%s)\n", me->name, scs_role_name(me->role));
	char line[256];
	struct scs_rekey_scan sc;
	if (scsctl_rekey_line(v, line, sizeof line, &sc, &err) == 0)
		printf("%s\n", line);
	else
		printf("re-key: unknown (%s)\n", err.msg);
	if (kr->epoch > 1 && kr->retired_below < kr->epoch && !scs_keyring_rekey_wanted(kr))
		printf("re-key mode: lazy (the removal was made with --lazy): no mount re-encrypts "
		       "old files in the background; a removed member who kept the old keys can read "
		       "every file not re-encrypted since, if they get the stored files, until an "
		       "admin runs `scsctl rekey run`\n");
	scs_vault_close(v);
	return fflush(stdout) == 0 ? 0 : scsctl_failf("cannot write to standard output");
}
