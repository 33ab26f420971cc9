/* scsctl.c - manage scsfs identities and groups.  One file per subcommand,
 * dispatched from the table below (as wireguard-tools' wg.c does). */
#include "scsctl.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef SCSFS_VERSION
#define SCSFS_VERSION "0.1.0"
#endif

struct scsctl_opts scsctl;

static const struct {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *usage;
	const char *help;
} subcommands[] = {
	{ "id", id_main, "id new NAME | id show | id export",
	  "create this user's identity, show its fingerprint, print the public identity" },
	{ "init", init_main, "init REMOTE", "make an empty folder a new group with you as its admin" },
	{ "join", join_main, "join REMOTE --fingerprint FPR",
	  "pin a group after comparing its fingerprint with an admin's" },
	{ "member", member_main, "member add IDFILE [--admin]",
	  "add the member whose `scsctl id export` is in IDFILE" },
	{ "member", member_main, "member remove NAME|FPR",
	  "remove a member: the group moves to a new epoch key" },
	{ "member", member_main, "member role NAME|FPR admin|member",
	  "make a member an admin, or an admin a plain member" },
	{ "member", member_main, "member list", "name, role, fingerprint and since when, per member" },
	{ "rekey", rekey_main, "rekey status | rekey run | rekey wait [--timeout SECS]",
	  "move files of older epochs to the current one, then retire the old keys" },
	{ "rekey", rekey_main, "rekey rotate",
	  "a new epoch key with the same members (a key may have leaked)" },
	{ "log", log_main, "log [REMOTE]", "the membership history: who changed what, when" },
	{ "status", status_main, "status [REMOTE]", "group fingerprint, epoch, members, your role" },
	{ "verify", verify_main, "verify [PATH]", "authenticate every file (or those under PATH)" },
	{ "forget", forget_main, "forget PATH...",
	  "accept again an old copy of a file that a member restored on purpose" },
	{ "auth", auth_main, "auth gdrive [--client-id ID --client-secret S] [--device]",
	  "sign in to Google Drive (browser on this machine, or a code with --device)" },
};
#define NSUB (sizeof subcommands / sizeof subcommands[0])

int scsctl_fail(const scs_err *e)
{
	fprintf(stderr, "scsctl: %s\n", e && e->msg[0] ? e->msg : "failed");
	return 1;
}

int scsctl_failf(const char *fmt, ...)
{
	va_list ap;
	fputs("scsctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return 1;
}

int scsctl_usage(const char *line)
{
	fprintf(stderr, "usage: scsctl %s\n", line);
	return 1;
}

int scsctl_remote_arg(int argc, char **argv, int *i, const char **remote)
{
	const char *r;
	if (strcmp(argv[*i], "--remote") == 0 && *i + 1 < argc)
		r = argv[++*i];
	else if (strncmp(argv[*i], "--remote=", 9) == 0)
		r = argv[*i] + 9;
	else
		return 0;
	if (remote)
		*remote = r;
	return 1;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: scsctl [--passphrase-file FILE] COMMAND [ARGS]\n\n"
		   "Manage scsfs identities and end-to-end encrypted group folders.\n\n");
	for (size_t i = 0; i < NSUB; i++)
		fprintf(f, "  %-36s %s\n", subcommands[i].usage, subcommands[i].help);
	fprintf(f, "\nOptions (anywhere on the line):\n"
		   "  --passphrase-file FILE  read the identity passphrase from FILE\n"
		   "  -h, --help              show this help\n"
		   "  --version               show the version\n\n"
		   "The passphrase is otherwise read from the file named by $SCSFS_PASSPHRASE_FILE,\n"
		   "or asked on the terminal.  See scsctl(1).\n");
}

int main(int argc, char **argv)
{
	int help = 0, n = 0;
	char **args = calloc((size_t)argc + 1, sizeof *args);
	if (!args)
		return scsctl_failf("out of memory");
	/* Global options may appear anywhere; collect the rest in order. */
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		if (i > 0 && strcmp(a, "--passphrase-file") == 0) {
			if (i + 1 >= argc)
				return scsctl_failf("--passphrase-file needs a FILE argument");
			scsctl.passphrase_file = argv[++i];
		} else if (i > 0 && strncmp(a, "--passphrase-file=", 18) == 0) {
			scsctl.passphrase_file = a + 18;
		} else if (i > 0 && (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0)) {
			help = 1;
		} else if (i > 0 && strcmp(a, "--version") == 0) {
			printf("scsctl (scsfs) %s\n", SCSFS_VERSION);
			free(args);
			return 0;
		} else {
			args[n++] = argv[i];
		}
	}
	if (scsctl.passphrase_file && !*scsctl.passphrase_file)
		return scsctl_failf("--passphrase-file needs a FILE argument");
	if (n < 2) {
		usage(help ? stdout : stderr);
		free(args);
		return help ? 0 : 1;
	}
	for (size_t i = 0; i < NSUB; i++) {
		if (strcmp(args[1], subcommands[i].name) != 0)
			continue;
		if (help) {
			/* A command may have several rows (member add/remove/list). */
			for (size_t j = i; j < NSUB && strcmp(args[1], subcommands[j].name) == 0; j++)
				printf("usage: scsctl %s\n  %s\n", subcommands[j].usage,
				       subcommands[j].help);
			free(args);
			return 0;
		}
		int rc = subcommands[i].fn(n - 1, args + 1);
		free(args);
		return rc;
	}
	int rc = scsctl_failf("unknown command \"%s\"; run `scsctl --help` for the list", args[1]);
	free(args);
	return rc;
}
