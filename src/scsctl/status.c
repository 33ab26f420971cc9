/* status.c - scsctl status [REMOTE]: the group as this machine sees it.
 * Needs no passphrase: everything shown is in the verified keyring (and
 * the folder, and the progress record of a re-key pass running here: the
 * two re-key lines are those of `rekey status`, scsctl_rekey_line).  The
 * "re-key mode: lazy" line appears while the newest removals were made
 * with `member remove --lazy` and the re-key pass has not run. */
#include "scsctl.h"
#include "scs/config.h"
#include "scs/gdrive.h"
#include "scs/identity.h"
#include "scs/keyring.h"
#include "scs/rekey.h"
#include "scs/vault.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

/* gdrive: the upload queue of this machine's cache, from the status file
 * the mount keeps there (works offline, before the vault is opened). */
static void gdrive_queue_lines(const char *remote)
{
	char rem[SCS_PATH_MAX], dir[SCS_PATH_MAX], lockp[SCS_PATH_MAX + 8];
	scs_err err = { 0 };
	if (scs_vault_resolve_remote(remote, rem, sizeof rem, &err) < 0 || strncmp(rem, "gdrive:", 7) ||
	    scs_gdrive_cache_dir(rem, dir, sizeof dir) < 0)
		return;
	struct scs_gdrive_status st;
	if (scs_gdrive_status_read(dir, &st) < 0) {
		printf("uploads: none recorded on this machine (not mounted here yet)\n");
		return;
	}
	snprintf(lockp, sizeof lockp, "%s/lock", dir);
	int fd = open(lockp, O_RDONLY | O_CLOEXEC);
	int mounted = fd >= 0 && flock(fd, LOCK_SH | LOCK_NB) < 0;
	if (fd >= 0)
		close(fd);
	char sz[32], when[32], since[32];
	struct tm tm;
	scsctl_human(st.bytes, sz, sizeof sz);
	time_t t = st.last_sync;
	if (t && localtime_r(&t, &tm))
		strftime(when, sizeof when, "%H:%M:%S", &tm);
	else
		snprintf(when, sizeof when, "never");
	t = st.offline_since;
	if (t && localtime_r(&t, &tm))
		strftime(since, sizeof since, "%H:%M:%S", &tm);
	else
		snprintf(since, sizeof since, "?");
	char del[128] = "";
	if (st.deletes)
		snprintf(del, sizeof del, ", %llu delete%s", (unsigned long long)st.deletes,
			 st.deletes == 1 ? "" : "s");
	if (st.changes)   /* renames, folders made or removed, modes, times */
		snprintf(del + strlen(del), sizeof del - strlen(del), "%s %llu other change%s",
			 st.deletes ? " and" : ",", (unsigned long long)st.changes,
			 st.changes == 1 ? "" : "s");
	if (st.deletes || st.changes)
		snprintf(del + strlen(del), sizeof del - strlen(del), " to make");
	if (st.offline && mounted)
		printf("offline since %s: Drive unreachable; %llu file%s (%s) wait%s to upload%s\n",
		       since, (unsigned long long)st.files, st.files == 1 ? "" : "s", sz,
		       st.files == 1 ? "s" : "", del);
	else if (st.files || st.deletes || st.changes)
		printf("uploads: %llu file%s (%s) pending%s%s; last sync %s\n",
		       (unsigned long long)st.files, st.files == 1 ? "" : "s", sz, del,
		       mounted ? "" : " (upload at the next mount)", when);
	else
		printf("uploads: none pending; last sync %s\n", when);
	if (st.error[0] && (mounted || st.files || st.deletes || st.changes))
		printf("last error: %s\n", st.error);
	fflush(stdout);
}

int status_main(int argc, char **argv)
{
	scs_err err = { 0 };
	scs_vault *v;
	if (argc > 2)
		return scsctl_usage("status [REMOTE]");
	struct scs_vault_opts o = { .passphrase_file = scsctl.passphrase_file, .public_only = 1 };
	gdrive_queue_lines(argc == 2 ? argv[1] : NULL);
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
	char line[512];
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
