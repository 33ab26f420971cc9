/* rekey.c - scsctl rekey status | rekey run | rekey wait: move every file
 * still in an older epoch (after a removal) to the current epoch, and
 * retire the older epochs once nothing is left in them (rekey.h). */
#include "scsctl.h"
#include "scs/identity.h"
#include "scs/keyring.h"
#include "scs/rekey.h"
#include "scs/vault.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define USAGE "rekey status | rekey run | rekey wait [--timeout SECS] [--remote REMOTE]"

/* 1234567 -> "1.2 MiB" (also used by status). */
void scsctl_human(uint64_t n, char *out, size_t cap)
{
	const char *u[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double v = (double)n;
	int i = 0;
	while (v >= 1024 && i < 4) {
		v /= 1024;
		i++;
	}
	if (i == 0)
		snprintf(out, cap, "%" PRIu64 " B", n);
	else
		snprintf(out, cap, "%.1f %s", v, u[i]);
}

/* The "re-key: ..." line of `scsctl status` and `rekey status`: 0, or a
 * negative errno (message in err).  No keys needed. */
int scsctl_rekey_line(struct scs_vault *v, char *out, size_t cap, struct scs_rekey_scan *sc,
		      scs_err *err)
{
	const scs_keyring *kr = scs_vault_keyring(v);
	int r = scs_rekey_scan(scs_vault_backend(v), kr->epoch, 0, sc, err);
	if (r < 0)
		return r;
	char b[32];
	scsctl_human(sc->old_bytes, b, sizeof b);
	if ((sc->old_files || sc->old_links) && kr->epoch > 1 && kr->retired_below >= kr->epoch)
		snprintf(out, cap, "re-key: done; %" PRIu64 " files%s still claim a retired epoch and "
			 "are refused (put back from old copies, or written by a removed member after "
			 "the removal; `scsctl verify` lists them)", sc->old_files,
			 sc->old_links ? " and symbolic links" : "");
	else if (sc->old_files || sc->old_links)
		snprintf(out, cap, "re-key: %" PRIu64 " files (%s)%s in older epochs; an admin runs "
			 "`scsctl rekey run`", sc->old_files, b, sc->old_links ? " and symbolic links" : "");
	else if (kr->epoch > 1 && kr->retired_below < kr->epoch)
		snprintf(out, cap, "re-key: contents done; epochs below %u not retired yet (an admin "
			 "runs `scsctl rekey run` to finish names and retire them)", kr->epoch);
	else
		snprintf(out, cap, "re-key: done");
	return 0;
}

static int parse(int argc, char **argv, const char **remote, long *timeout)
{
	for (int i = 2; i < argc; i++) {
		if (scsctl_remote_arg(argc, argv, &i, remote))
			continue;
		if (timeout && strcmp(argv[i], "--timeout") == 0 && i + 1 < argc)
			*timeout = strtol(argv[++i], NULL, 10);
		else if (timeout && strncmp(argv[i], "--timeout=", 10) == 0)
			*timeout = strtol(argv[i] + 10, NULL, 10);
		else if (!*remote && argv[i][0] != '-')
			*remote = argv[i];
		else
			return scsctl_usage(USAGE);
	}
	return 0;
}

static int status(int argc, char **argv)
{
	const char *remote = NULL;
	scs_vault *v;
	scs_err err = { 0 };
	struct scs_rekey_scan sc;
	char line[256], b[32];
	if (parse(argc, argv, &remote, NULL) || scsctl_open_public(remote, &v))
		return 1;
	const scs_keyring *kr = scs_vault_keyring(v);
	if (scsctl_rekey_line(v, line, sizeof line, &sc, &err) < 0) {
		scs_vault_close(v);
		return scsctl_fail(&err);
	}
	printf("epoch: %u\n", kr->epoch);
	if (kr->retired_below > 1)
		printf("retired: epochs below %u\n", kr->retired_below);
	else
		printf("retired: none\n");
	scsctl_human(sc.bytes, b, sizeof b);
	printf("files: %" PRIu64 " (%s)\n", sc.files, b);
	scsctl_human(sc.old_bytes, b, sizeof b);
	printf("in older epochs: %" PRIu64 " files (%s), %" PRIu64 " symbolic links\n",
	       sc.old_files, b, sc.old_links);
	if (sc.temps)
		printf("left by an interrupted pass: %" PRIu64 " temporary objects (the next run "
		       "removes them)\n", sc.temps);
	printf("%s\n", line);
	scs_vault_close(v);
	return fflush(stdout) == 0 ? 0 : scsctl_failf("cannot write to standard output");
}

struct prog {
	int tty;
	int shown_all;          /* the line with every file done was printed */
	struct timespec last;
};

static int progress(void *arg, const struct scs_rekey_progress *p)
{
	struct prog *g = arg;
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	long ms = (now.tv_sec - g->last.tv_sec) * 1000 + (now.tv_nsec - g->last.tv_nsec) / 1000000;
	int last = p->files_done == p->files_total && !g->shown_all;
	if (ms < (g->tty ? 100 : 2000) && !(g->tty && last))
		return 0;
	g->shown_all |= p->files_done == p->files_total;
	g->last = now;
	char bd[32], bt[32], rate[32], eta[32];
	scsctl_human(p->bytes_done, bd, sizeof bd);
	scsctl_human(p->bytes_total, bt, sizeof bt);
	scsctl_human((uint64_t)p->rate, rate, sizeof rate);
	if (p->eta >= 0)
		snprintf(eta, sizeof eta, "%ld:%02ld", (long)p->eta / 60, (long)p->eta % 60);
	else
		snprintf(eta, sizeof eta, "?");
	fprintf(stderr, "%sre-key: %" PRIu64 "/%" PRIu64 " files, %s/%s, %s/s, ETA %s%s",
		g->tty ? "\r\033[K" : "", p->files_done, p->files_total, bd, bt, rate, eta,
		g->tty ? "" : "\n");
	fflush(stderr);
	return 0;
}

static int admin_check(const char *remote)
{
	scs_vault *v;
	if (scsctl_open_public(remote, &v))
		return 1;
	const scs_keyring *kr = scs_vault_keyring(v);
	const struct scs_member *me = scs_keyring_member(kr, scs_vault_identity(v)->fpr);
	int admin = me && me->role == SCS_ROLE_ADMIN;
	scs_vault_close(v);
	if (!admin)
		return scsctl_failf("only an admin can run the re-key pass (it ends by writing a keyring "
				    "entry); ask an admin to run `scsctl rekey run`");
	return 0;
}

static int run(int argc, char **argv)
{
	const char *remote = NULL;
	scs_err err = { 0 };
	scs_vault *v;
	if (parse(argc, argv, &remote, NULL) || admin_check(remote))
		return 1;
	struct scs_vault_opts o = { .passphrase_file = scsctl.passphrase_file };
	if (scs_vault_open(remote, &o, &v, &err) < 0)
		return scsctl_fail(&err);
	struct prog g = { .tty = isatty(2) };
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	g.last = t0;
	struct scs_rekey_result res;
	int r = scs_rekey_run(scs_vault_backend(v), scs_vault_keyctx(v), scs_vault_root_dir_id(v),
			      progress, &g, &res, &err);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (g.tty)
		fputs("\r\033[K", stderr);
	double t = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	char b[32], rate[32];
	scsctl_human(res.bytes, b, sizeof b);
	scsctl_human(t > 0 ? (uint64_t)((double)res.bytes / t) : 0, rate, sizeof rate);
	printf("re-encrypted %" PRIu64 " files (%s), %" PRIu64 " names, %" PRIu64 " symbolic links, "
	       "%" PRIu64 " directory names into epoch %u in %.1f s (%s/s)\n", res.files, b,
	       res.names, res.links, res.dirs, res.epoch, t, rate);
	if (res.refused)
		printf("left %" PRIu64 " files written by a removed member after their removal "
		       "(every member refuses them; `scsctl verify` lists them)\n", res.refused);
	fflush(stdout);
	if (r < 0) {
		scs_vault_close(v);
		return scsctl_fail(&err);
	}
	if (res.epoch > 1) {
		r = scs_rekey_retire(v, res.epoch, &err);
		if (r < 0) {
			scs_vault_close(v);
			return scsctl_fail(&err);
		}
		printf("epochs below %u are retired: files still claiming them are refused, and a "
		       "removed member's old keys open nothing here any more\n", res.epoch);
	}
	printf("re-key: done\n");
	scs_vault_close(v);
	return fflush(stdout) == 0 ? 0 : scsctl_failf("cannot write to standard output");
}

static int wait_done(int argc, char **argv)
{
	const char *remote = NULL;
	long timeout = -1;
	if (parse(argc, argv, &remote, &timeout))
		return 1;
	time_t end = timeout >= 0 ? time(NULL) + timeout : 0;
	for (;;) {
		scs_vault *v;
		scs_err err = { 0 };
		struct scs_rekey_scan sc;
		char line[256];
		if (scsctl_open_public(remote, &v))
			return 1;
		int r = scsctl_rekey_line(v, line, sizeof line, &sc, &err);
		const scs_keyring *kr = scs_vault_keyring(v);
		int retired = kr->epoch > 1 && kr->retired_below >= kr->epoch;
		scs_vault_close(v);
		if (r < 0)
			return scsctl_fail(&err);
		if (retired && (sc.old_files || sc.old_links)) {
			printf("re-key: done (what is left in older epochs is refused)\n");
			return fflush(stdout) == 0 ? 0 : 1;
		}
		if (!sc.old_files && !sc.old_links) {
			printf("re-key: no file is in an older epoch\n");
			return fflush(stdout) == 0 ? 0 : 1;
		}
		if (end && time(NULL) >= end)
			return scsctl_failf("timed out: %" PRIu64 " files are still in older epochs; an "
					    "admin runs `scsctl rekey run`", sc.old_files);
		sleep(1);
	}
}

int rekey_main(int argc, char **argv)
{
	if (argc < 2)
		return scsctl_usage(USAGE);
	if (strcmp(argv[1], "status") == 0)
		return status(argc, argv);
	if (strcmp(argv[1], "run") == 0)
		return run(argc, argv);
	if (strcmp(argv[1], "wait") == 0)
		return wait_done(argc, argv);
	return scsctl_usage(USAGE);
}
