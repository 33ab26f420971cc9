/* log.c - scsctl log [REMOTE]: the membership history of the group, one
 * line per keyring entry, as an audit log.
 *
 * Everything shown comes from the verified keyring: each entry was signed
 * by its author, who was an admin at the time.  Dates are what the
 * author's clock said (created_at is advisory and not checked).  Needs no
 * passphrase. */
#include "scsctl.h"
#include "scs/identity.h"
#include "scs/keyring.h"
#include "scs/vault.h"

#include <stdio.h>
#include <string.h>

static const char *name_in(const struct scs_kr_entry *e, const uint8_t fpr[SCS_FPR_LEN],
			   int *role)
{
	for (size_t i = 0; e && i < e->nmembers; i++)
		if (memcmp(e->members[i].fpr, fpr, SCS_FPR_LEN) == 0) {
			if (role)
				*role = e->members[i].role;
			return e->members[i].name;
		}
	return "?";
}

int log_main(int argc, char **argv)
{
	if (argc > 2 || (argc == 2 && argv[1][0] == '-'))
		return scsctl_usage("log [REMOTE]");
	scs_vault *v;
	if (scsctl_open_public(argc == 2 ? argv[1] : NULL, &v))
		return 1;
	const scs_keyring *kr = scs_vault_keyring(v);
	int wa = 6, ws = 7;
	for (size_t i = 0; i < kr->nentries; i++)
		for (size_t j = 0; j < kr->entries[i].nmembers; j++) {
			int l = (int)strlen(kr->entries[i].members[j].name);
			wa = l > wa ? l : wa;
			ws = l + 9 > ws ? l + 9 : ws;
		}
	printf("%-5s  %-20s  %-*s  %-8s  %-*s  %s\n", "SEQ", "DATE", wa, "AUTHOR", "KIND", ws,
	       "SUBJECT", "EPOCH");
	for (size_t i = 0; i < kr->nentries; i++) {
		const struct scs_kr_entry *e = &kr->entries[i], *p = i ? &kr->entries[i - 1] : NULL;
		char date[32], subject[SCS_NAME_LEN_MAX + 16];
		int role = 0;
		scsctl_date(e->created_at, 1, date, sizeof date);
		const char *author = name_in(p ? p : e, e->author, NULL);
		switch (e->kind) {
		case SCS_KR_GENESIS:
		case SCS_KR_ADD:
		case SCS_KR_SET_ROLE: {
			const char *nm = name_in(e, e->kind == SCS_KR_GENESIS ? e->author : e->subject, &role);
			snprintf(subject, sizeof subject, "%s (%s)", nm, scs_role_name(role));
			break;
		}
		case SCS_KR_REMOVE:
			snprintf(subject, sizeof subject, "%s", name_in(p, e->subject, NULL));
			break;
		case SCS_KR_RETIRE:
			snprintf(subject, sizeof subject, "epochs < %u", e->retire_below);
			break;
		default:
			snprintf(subject, sizeof subject, "-");
		}
		printf("%-5u  %-20s  %-*s  %-8s  %-*s  %u\n", e->seq, date, wa, author,
		       scs_kr_kind_name(e->kind), ws, subject, e->epoch);
	}
	scs_vault_close(v);
	return fflush(stdout) == 0 ? 0 : scsctl_failf("cannot write to standard output");
}
