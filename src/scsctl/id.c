/* id.c - scsctl id new NAME | id show | id export */
#include "scsctl.h"
#include "scs/identity.h"
#include "scs/passphrase.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define USAGE "id new NAME | id show | id export"

static int id_new(const char *name)
{
	scs_err err = { 0 };
	scs_identity *id = NULL;
	struct scs_passphrase pp;
	char fpr[SCS_FPR_TEXT_LEN], dir[4096];
	if (!scs_name_valid(name))
		return scsctl_failf("invalid name \"%s\": use 1 to %d bytes, no control characters, "
				    "no leading or trailing space", name, SCS_NAME_LEN_MAX);
	/* Refuse early, before asking for a passphrase twice. */
	if (scs_identity_load(&id, &err) == 0) {
		scs_identity_paths(dir, NULL, NULL);
		scs_fpr_format(id->fpr, fpr);
		scsctl_failf("an identity (%s, %s) already exists in %s; remove that directory first "
			     "only if you will never need it again", id->name, fpr, dir);
		scs_identity_free(id);
		return 1;
	}
	if (scs_passphrase_get(scsctl.passphrase_file, "Passphrase for the new identity: ",
			       SCS_PASS_CONFIRM | SCS_PASS_NONEMPTY, &pp, &err) < 0)
		return scsctl_fail(&err);
	int rc = scs_identity_create(name, pp.buf, pp.len, &id, &err);
	scs_passphrase_clear(&pp);
	if (rc < 0)
		return scsctl_fail(&err);
	scs_identity_paths(dir, NULL, NULL);
	scs_fpr_format(id->fpr, fpr);
	printf("created identity %s in %s\nfingerprint: %s\n"
	       "send the output of `scsctl id export` to a group admin to be added\n", id->name, dir, fpr);
	scs_identity_free(id);
	return 0;
}

int id_main(int argc, char **argv)
{
	scs_err err = { 0 };
	scs_identity *id;
	if (argc == 3 && strcmp(argv[1], "new") == 0)
		return id_new(argv[2]);
	if (argc != 2 || (strcmp(argv[1], "show") != 0 && strcmp(argv[1], "export") != 0))
		return scsctl_usage(USAGE);
	if (scs_identity_load(&id, &err) < 0)
		return scsctl_fail(&err);
	int rc = 0;
	if (strcmp(argv[1], "show") == 0) {
		char fpr[SCS_FPR_TEXT_LEN];
		scs_fpr_format(id->fpr, fpr);
		printf("name: %s\nfingerprint: %s\n", id->name, fpr);
	} else {
		char *json;
		size_t len;
		if (scs_identity_export(id, &json, &len) < 0) {
			rc = scsctl_failf("cannot encode the public identity");
		} else {
			fwrite(json, 1, len, stdout);
			free(json);
		}
	}
	scs_identity_free(id);
	if (fflush(stdout) != 0)
		return scsctl_failf("cannot write to standard output");
	return rc;
}
