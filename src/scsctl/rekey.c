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
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#define USAGE "rekey status | rekey run | rekey wait [--timeout SECS] | rekey rotate [--remote REMOTE]"

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

/* "5 s", "2 min 5 s", "3 h 12 min", "?" (unknown). */
static void duration(double t, char *out, size_t cap)
{
	long s = (long)(t + 0.5);
	if (t < 0 || t > 1e9)
		snprintf(out, cap, "?");
	else if (s < 60)
		snprintf(out, cap, "%ld s", s);
	else if (s < 3600)
		snprintf(out, cap, "%ld min %ld s", s / 60, s % 60);
	else
		snprintf(out, cap, "%ld h %ld min", s / 3600, s % 3600 / 60);
}

/* The progress line of a pass towards epoch: "re-key to epoch 3:
 * [#####.....] 412/1000 files, 410.0 MiB/1.0 GiB, 118.0 MiB/s, ETA 5 s";
 * rate < 0: no rate and ETA (tail is appended instead). */
static void bar_line(char *out, size_t cap, uint32_t epoch, uint64_t fd, uint64_t ft, uint64_t bd,
		     uint64_t bt, double rate, double eta, const char *tail)
{
	char bar[21], sd[32], st[32], sr[32], se[32];
	/* by bytes if there are any, else by files */
	double f = bt ? (double)bd / (double)bt : ft ? (double)fd / (double)ft : 1;
	int n = (int)(f * 20 + 1e-9);
	n = n < 0 ? 0 : n > 20 ? 20 : n;
	memset(bar, '#', (size_t)n);
	memset(bar + n, '.', (size_t)(20 - n));
	bar[20] = '\0';
	scsctl_human(bd, sd, sizeof sd);
	scsctl_human(bt, st, sizeof st);
	if (rate < 0) {
		snprintf(out, cap, "re-key to epoch %u: [%s] %" PRIu64 "/%" PRIu64 " files, %s/%s%s",
			 epoch, bar, fd, ft, sd, st, tail);
		return;
	}
	scsctl_human((uint64_t)rate, sr, sizeof sr);
	duration(eta, se, sizeof se);
	snprintf(out, cap, "re-key to epoch %u: [%s] %" PRIu64 "/%" PRIu64 " files, %s/%s, %s/s, "
		 "ETA %s", epoch, bar, fd, ft, sd, st, sr, se);
}

/* The progress line of status: from the record of a pass this user runs
 * on this machine (rekey.h), else what the folder says (files and bytes
 * in the current epoch of all). */
static void progress_line(struct scs_vault *v, const struct scs_rekey_scan *sc, char *out,
			  size_t cap)
{
	const scs_keyring *kr = scs_vault_keyring(v);
	struct scs_rekey_record rec;
	struct timespec t;
	clock_gettime(CLOCK_REALTIME, &t);
	int64_t now = (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
	if (scs_rekey_record_read(scs_vault_root_dir_id(v), kr->epoch, now, &rec) < 0) {
		bar_line(out, cap, kr->epoch, sc->files - sc->old_files, sc->files,
			 sc->bytes - sc->old_bytes, sc->bytes, -1, -1, " (no pass running here)");
		return;
	}
	double secs = (double)(rec.updated - rec.started) / 1000;
	double rate = secs > 0 ? (double)rec.bytes_done / secs : 0;
	double eta = rate > 0 ? (double)(rec.bytes_total - rec.bytes_done) / rate -
		     (double)(now - rec.updated) / 1000 : -1;
	bar_line(out, cap, kr->epoch, rec.files_done, rec.files_total, rec.bytes_done,
		 rec.bytes_total, rate, eta < 0 && rate > 0 ? 0 : eta, "");
}

/* The "re-key: ..." line of `scsctl status` and `rekey status`, and from
 * epoch 2 on a second one after a newline: the progress bar
 * (progress_line).  0, or a negative errno (message in err).  No keys
 * needed. */
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
	size_t n = strlen(out);
	if (kr->epoch > 1 && n + 1 < cap) {
		out[n++] = '\n';
		progress_line(v, sc, out + n, cap - n);
	}
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
	char line[512], b[32];
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
	uint32_t epoch;
	struct timespec last;
};

/* The progress of `rekey run` on standard error: on a terminal one line
 * redrawn (\r) at most every 0.1 s, cut to the terminal's width; else a
 * plain line every 2 s, and the one with every file done. */
static int progress(void *arg, const struct scs_rekey_progress *p)
{
	struct prog *g = arg;
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	long ms = (now.tv_sec - g->last.tv_sec) * 1000 + (now.tv_nsec - g->last.tv_nsec) / 1000000;
	int last = p->files_done == p->files_total && !g->shown_all;
	if (ms < (g->tty ? 100 : 2000) && !last)
		return 0;
	g->shown_all |= p->files_done == p->files_total;
	g->last = now;
	char line[256];
	bar_line(line, sizeof line, g->epoch, p->files_done, p->files_total, p->bytes_done,
		 p->bytes_total, p->rate, p->eta, "");
	struct winsize ws;
	if (g->tty && ioctl(2, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 1 && ws.ws_col <= sizeof line)
		line[ws.ws_col - 1] = '\0';
	fprintf(stderr, "%s%s%s", g->tty ? "\r\033[K" : "", line, g->tty ? "" : "\n");
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
	struct prog g = { .tty = isatty(2), .epoch = scs_vault_epoch(v) };
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
		char line[512];
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
	if (strcmp(argv[1], "rotate") == 0)
		return scsctl_rotate(argc, argv);
	return scsctl_usage(USAGE);
}
