/* main.c - scsfs: mount an scsfs group folder with FUSE.
 *
 *   scsfs [-f] [-o OPT[,OPT...]] [REMOTE] MOUNTPOINT
 *
 * Order matters: the mount point is checked, the vault opened and the
 * passphrase checked (on the terminal if need be) before anything is
 * mounted, so every failure is one line and exit status 1 with nothing
 * mounted.  Only after fuse_session_mount succeeded do we daemonize (the
 * parent exits 0 with the mount in place). */
#include "fs.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "scs/config.h"
#include "scs/gdrive.h"
#include "scs/keyring.h"
#include "scs/log.h"
#include "scs/rekey.h"

#ifndef SCSFS_VERSION
#define SCSFS_VERSION "0.1.0"
#endif

struct opts {
	int foreground;
	int debug;
	int single;
	int help;
	int version;
	int allow_other;
	int ro;
	int writeback;
	char *passfile;
	double entry_timeout;
	double attr_timeout;
	double negative_timeout;
	double refresh;
	unsigned poll;               /* -o poll= (gdrive: changes feed) */
	int rekey;                   /* -o rekey (the default) */
	int norekey;                 /* -o norekey */
	unsigned max_idle;
	unsigned max_threads;
	int sync_upload;        /* back-end options (gdrive:) */
	double upload_delay;
	unsigned upload_parallel;
	unsigned download_parallel;
	char *cache_max;
	char *pos[3];
	int npos;
};

enum { KEY_FG, KEY_DEBUG, KEY_SINGLE, KEY_HELP, KEY_VERSION, KEY_ALLOW_OTHER, KEY_RO,
       KEY_WB, KEY_NO_WB };

#define OPT(t, f) { t, offsetof(struct opts, f), 0 }
static const struct fuse_opt opt_spec[] = {
	OPT("passphrase_file=%s", passfile),
	OPT("--passphrase-file %s", passfile),
	OPT("--passphrase-file=%s", passfile),
	OPT("entry_timeout=%lf", entry_timeout),
	OPT("attr_timeout=%lf", attr_timeout),
	OPT("negative_timeout=%lf", negative_timeout),
	OPT("keyring_refresh=%lf", refresh),
	OPT("poll=%u", poll),
	{ "rekey", offsetof(struct opts, rekey), 1 },
	{ "norekey", offsetof(struct opts, norekey), 1 },
	OPT("max_idle_threads=%u", max_idle),
	OPT("max_threads=%u", max_threads),
	{ "sync_upload", offsetof(struct opts, sync_upload), 1 },
	OPT("upload_delay=%lf", upload_delay),
	OPT("upload_parallel=%u", upload_parallel),
	OPT("download_parallel=%u", download_parallel),
	OPT("cache_max=%s", cache_max),
	FUSE_OPT_KEY("-f", KEY_FG),
	FUSE_OPT_KEY("--foreground", KEY_FG),
	FUSE_OPT_KEY("-d", KEY_DEBUG),
	FUSE_OPT_KEY("debug", KEY_DEBUG),
	FUSE_OPT_KEY("-s", KEY_SINGLE),
	FUSE_OPT_KEY("-h", KEY_HELP),
	FUSE_OPT_KEY("--help", KEY_HELP),
	FUSE_OPT_KEY("-V", KEY_VERSION),
	FUSE_OPT_KEY("--version", KEY_VERSION),
	FUSE_OPT_KEY("allow_other", KEY_ALLOW_OTHER),
	FUSE_OPT_KEY("ro", KEY_RO),
	FUSE_OPT_KEY("writeback_cache", KEY_WB),
	FUSE_OPT_KEY("no_writeback_cache", KEY_NO_WB),
	FUSE_OPT_END
};

static int opt_proc(void *data, const char *arg, int key, struct fuse_args *outargs)
{
	struct opts *o = data;
	switch (key) {
	case FUSE_OPT_KEY_NONOPT:
		if (o->npos < 3)
			o->pos[o->npos] = strdup(arg);
		o->npos++;
		return 0;
	case KEY_FG:
		o->foreground = 1;
		return 0;
	case KEY_DEBUG:
		o->debug = o->foreground = 1;
		return 1;           /* libfuse prints the requests */
	case KEY_SINGLE:
		o->single = 1;
		return 0;
	case KEY_HELP:
		o->help = 1;
		return 0;
	case KEY_VERSION:
		o->version = 1;
		return 0;
	case KEY_ALLOW_OTHER:
		o->allow_other = 1;
		return 1;
	case KEY_RO:
		o->ro = 1;
		return 1;
	case KEY_WB:
		o->writeback = 1;
		return 0;
	case KEY_NO_WB:
		o->writeback = 0;
		return 0;
	default:
		return 1;           /* FUSE and mount options: libfuse checks them */
	}
}

static void usage(FILE *f)
{
	fprintf(f,
"usage: scsfs [-f] [-o OPT[,OPT...]] [REMOTE] MOUNTPOINT\n"
"\n"
"Mount the end-to-end encrypted group folder REMOTE (local:/path; default:\n"
"the default_remote of ~/.config/scsfs/config) at MOUNTPOINT.\n"
"Unmount with: fusermount3 -u MOUNTPOINT\n"
"\n"
"options:\n"
"  -f, --foreground          stay in the foreground, log to stderr\n"
"  -d, -o debug              foreground, and print every FUSE request\n"
"  -s                        single-threaded\n"
"  -h, --help                this help\n"
"  -V, --version             version\n"
"  -o passphrase_file=FILE, --passphrase-file FILE\n"
"                            read the identity passphrase from FILE\n"
"                            (also $SCSFS_PASSPHRASE_FILE; else the terminal)\n"
"  -o ro                     read-only\n"
"  -o allow_other            let other users use the mount (needs user_allow_other\n"
"                            in /etc/fuse.conf; implies default_permissions)\n"
"  -o default_permissions    let the kernel check permissions\n"
"  -o entry_timeout=SECS     cache names for SECS (default 1)\n"
"  -o attr_timeout=SECS      cache attributes for SECS (default 1)\n"
"  -o negative_timeout=SECS  cache missing names for SECS (default: entry_timeout)\n"
"  -o writeback_cache        let the kernel cache writes (default)\n"
"  -o no_writeback_cache     send every write to scsfs at once\n"
"  -o keyring_refresh=SECS   look for keyring changes every SECS (default 10;\n"
"                            0: never)\n"
"  -o norekey                admins: do not run the re-key pass in the\n"
"                            background after a removal (it runs by default;\n"
"                            see scsctl rekey; -o rekey is the default)\n"
"  -o poll=SECS              gdrive: look for other members' changes every SECS\n"
"                            (default 5; 0: never, they show after a remount)\n"
"  -o max_idle_threads=N     idle worker threads kept (default 10)\n"
"  -o max_threads=N          worker threads at most (default 16)\n"
"gdrive: options:\n"
"  -o sync_upload            fsync and close wait until Drive has the data\n"
"                            (default: durable in the local cache, uploaded\n"
"                            in the background)\n"
"  -o upload_delay=SECS      upload SECS after the last close (default 1)\n"
"  -o upload_parallel=N      uploads at once (default 3, at most 8)\n"
"  -o download_parallel=N    read-ahead downloads at once (default 8, at most 16)\n"
"  -o cache_max=SIZE         bound the cache of unchanged data (e.g. 2G;\n"
"                            default: no bound); changes not uploaded stay\n"
"other -o options are passed to FUSE (fsname=, subtype=, ...); see scsfs(1).\n");
}

/* "2G", "500M", "64k", "1048576" -> bytes. */
static int parse_size(const char *s, uint64_t *out)
{
	char *e;
	errno = 0;
	double v = strtod(s, &e);
	if (e == s || errno || v < 0)
		return -1;
	double mul = 1;
	switch (*e) {
	case 'k': case 'K': mul = 1024.0; e++; break;
	case 'm': case 'M': mul = 1048576.0; e++; break;
	case 'g': case 'G': mul = 1073741824.0; e++; break;
	case 't': case 'T': mul = 1099511627776.0; e++; break;
	}
	if (*e == 'i' && e[1] == 'B')
		e += 2;
	else if (*e == 'B')
		e++;
	if (*e || v * mul > 1.8e19)
		return -1;
	*out = (uint64_t)(v * mul);
	return 0;
}

/* kill -USR1 asks for the back end's state in the log (gdrive: the
 * requests on their way, the upload queue): for a mount that seems stuck.
 * The handler only wakes a thread, which logs it. */
static int dump_pipe[2] = { -1, -1 };

static void on_usr1(int sig)
{
	(void)sig;
	int e = errno;
	char c = 1;
	ssize_t w = write(dump_pipe[1], &c, 1);
	(void)w;
	errno = e;
}

static void *dumper(void *arg)
{
	struct fs *fs = arg;
	char c;
	while (read(dump_pipe[0], &c, 1) == 1 && c) {
		scs_log(SCS_LOG_INFO, "state (SIGUSR1):");
		if (scs_gdrive_dump(fs->be) == -ENOTSUP)
			scs_log(SCS_LOG_INFO, "state: a local: folder, nothing queued");
		scs_log(SCS_LOG_INFO, "state (SIGUSR1): end");
	}
	return NULL;
}

/* 0 if started (dumper_stop ends it). */
static int dumper_start(struct fs *fs, pthread_t *th)
{
	if (pipe2(dump_pipe, O_CLOEXEC) < 0)
		return -1;
	if (pthread_create(th, NULL, dumper, fs) != 0) {
		close(dump_pipe[0]);
		close(dump_pipe[1]);
		return -1;
	}
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_usr1;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR1, &sa, NULL);
	return 0;
}

static void dumper_stop(pthread_t th)
{
	signal(SIGUSR1, SIG_IGN);
	char c = 0;
	ssize_t w = write(dump_pipe[1], &c, 1);
	(void)w;
	pthread_join(th, NULL);
	close(dump_pipe[0]);
	close(dump_pipe[1]);
}

/* Until the mount is up, libfuse's messages are collected and shown as
 * part of our one-line failure message. */
static char captured[1024];
static int capturing = 1;

__attribute__((format(printf, 2, 0)))
static void fuse_log_adapter(enum fuse_log_level level, const char *fmt, va_list ap)
{
	char line[1024];
	vsnprintf(line, sizeof line, fmt, ap);
	if (capturing) {
		size_t c = strlen(captured);
		snprintf(captured + c, sizeof captured - c, "%s", line);
		return;
	}
	size_t l = strlen(line);
	while (l && (line[l - 1] == '\n' || line[l - 1] == ' '))
		line[--l] = '\0';
	if (!l)
		return;
	enum scs_log_level lv = level <= FUSE_LOG_ERR ? SCS_LOG_ERR :
		level == FUSE_LOG_WARNING ? SCS_LOG_WARN :
		level <= FUSE_LOG_INFO ? SCS_LOG_INFO : SCS_LOG_DEBUG;
	scs_log(lv, "%s", line);
}

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int fail(const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	fprintf(stderr, "scsfs: %s\n", line);
	return 1;
}

/* The collected libfuse messages as one line (may be empty). */
static const char *fuse_said(void)
{
	for (char *p = captured; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	size_t l = strlen(captured);
	while (l && captured[l - 1] == ' ')
		captured[--l] = '\0';
	return captured;
}

/* Undo the octal escapes of /proc/self/mountinfo ("\\040" = space). */
static void unescape_mountinfo(char *s)
{
	char *o = s;
	for (char *p = s; *p; p++) {
		if (p[0] == '\\' && p[1] >= '0' && p[1] <= '3' && p[2] >= '0' && p[2] <= '7' &&
		    p[3] >= '0' && p[3] <= '7') {
			*o++ = (char)((p[1] - '0') * 64 + (p[2] - '0') * 8 + (p[3] - '0'));
			p += 3;
		} else {
			*o++ = *p;
		}
	}
	*o = '\0';
}

/* Is an scsfs already mounted exactly at abs? */
static int scsfs_mounted_at(const char *abs)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return 0;
	char *line = NULL;
	size_t cap = 0;
	int found = 0;
	while (!found && getline(&line, &cap, f) > 0) {
		/* id parent major:minor root mountpoint options... - fstype source */
		char *save = NULL, *tok[5] = { 0 };
		char *t = strtok_r(line, " ", &save);
		for (int i = 0; t && i < 5; i++) {
			tok[i] = t;
			if (i < 4)
				t = strtok_r(NULL, " ", &save);
		}
		if (!tok[4])
			continue;
		char *sep = NULL;
		while ((t = strtok_r(NULL, " ", &save)))
			if (!strcmp(t, "-")) {
				sep = strtok_r(NULL, " ", &save);
				break;
			}
		unescape_mountinfo(tok[4]);
		if (sep && !strcmp(tok[4], abs) && !strcmp(sep, "fuse.scsfs"))
			found = 1;
	}
	free(line);
	fclose(f);
	return found;
}

static int check_mountpoint(const char *mnt, char *abs, size_t cap)
{
	struct stat st;
	if (stat(mnt, &st) < 0) {
		int e = errno;
		if (e == ENOENT)
			return fail("mount point %s does not exist; create it first (mkdir -p %s)", mnt, mnt);
		if (e == ENOTCONN)
			return fail("mount point %s is a dead mount; run fusermount3 -u %s first", mnt, mnt);
		return fail("cannot use mount point %s: %s", mnt, strerror(e));
	}
	if (!S_ISDIR(st.st_mode))
		return fail("mount point %s is not a directory; give a directory", mnt);
	if (access(mnt, W_OK | X_OK) < 0 && getuid() != 0)
		return fail("mount point %s is not writable by you; use a directory you own", mnt);
	char *rp = realpath(mnt, NULL);
	if (!rp || strlen(rp) >= cap) {
		free(rp);
		return fail("cannot resolve mount point %s: %s", mnt, strerror(errno));
	}
	strcpy(abs, rp);
	free(rp);
	if (scsfs_mounted_at(abs))
		return fail("%s is already mounted by scsfs; unmount it first (fusermount3 -u %s)",
			    mnt, mnt);
	return 0;
}

/* Keyring changes made elsewhere (members added or removed, new epochs)
 * are picked up without a remount: a thread re-reads the keyring every
 * refresh seconds (cheap when nothing changed: one stat). */
struct refresher {
	struct fs *fs;
	double every;
	int rekey;                 /* not -o norekey: run the re-key pass here */
	time_t next_rekey;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int stop;
	pthread_t th;
	/* What the last look found (a refresh made elsewhere, rehome.c, is
	 * told about at the next look all the same). */
	uint32_t epoch, retired;
	int member;
};

static int rekey_stop(void *arg, const struct scs_rekey_progress *p)
{
	(void)p;
	return __atomic_load_n(&((struct refresher *)arg)->stop, __ATOMIC_RELAXED);
}

/* Unless -o norekey: an admin's mount moves files of older epochs to the
 * current one after a removal and retires the old epochs (scsctl rekey run
 * does the same); what is left busy is tried again a minute later.  Not
 * after removals made with --lazy (scs_keyring_rekey_wanted). */
static void background_rekey(struct refresher *rf)
{
	struct fs *fs = rf->fs;
	const scs_keyring *kr = scs_vault_keyring(fs->vault);
	const struct scs_member *me = scs_keyring_member(kr, fs->k->self_fpr);
	if (!rf->rekey || time(NULL) < rf->next_rekey || kr->epoch <= 1 ||
	    kr->retired_below >= kr->epoch || !scs_keyring_rekey_wanted(kr) || !me ||
	    me->role != SCS_ROLE_ADMIN || !fs->k->sign_key)
		return;
	scs_err err;
	struct scs_rekey_result res;
	scs_log(SCS_LOG_INFO, "re-key: moving files of older epochs to epoch %u", (unsigned)kr->epoch);
	int r = scs_rekey_run(fs->be, fs->k, scs_vault_root_dir_id(fs->vault), rekey_stop, rf, &res, &err);
	if (r == 0 && res.epoch > 1)
		r = scs_rekey_retire(fs->vault, res.epoch, &err);
	if (r == 0) {
		scs_dir_forget_keys(fs->d);
		scs_log(SCS_LOG_INFO, "re-key: done, %llu files moved; epochs below %u are retired%s",
			(unsigned long long)res.files, (unsigned)res.epoch,
			res.refused ? " (files a removed member wrote after the removal were left, "
			"refused)" : "");
	} else if (r != -EINTR) {
		scs_log(SCS_LOG_WARN, "re-key: %s", err.msg);
		rf->next_rekey = time(NULL) + 60;
	}
}

static void *refresh_main(void *arg)
{
	struct refresher *rf = arg;
	char last[sizeof ((scs_err *)0)->msg] = "";
	pthread_mutex_lock(&rf->mu);
	while (!rf->stop) {
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += (time_t)rf->every;
		until.tv_nsec += (long)((rf->every - (double)(time_t)rf->every) * 1e9);
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		while (!rf->stop && pthread_cond_timedwait(&rf->cv, &rf->mu, &until) != ETIMEDOUT)
			;
		if (rf->stop)
			break;
		pthread_mutex_unlock(&rf->mu);
		scs_err err;
		uint32_t before = rf->epoch, retired = rf->retired;
		int was = rf->member;
		int r = scs_vault_refresh(rf->fs->vault, &err);
		if (r) {
			if (strcmp(last, err.msg)) {
				scs_log(SCS_LOG_WARN, "keyring: %s", err.msg);
				snprintf(last, sizeof last, "%s", err.msg);
			}
		} else {
			last[0] = '\0';
			uint32_t after = scs_vault_epoch(rf->fs->vault);
			uint32_t rnow = scs_vault_keyring(rf->fs->vault)->retired_below;
			uint32_t mseq;
			const char *by;
			int member = scs_vault_membership(rf->fs->vault, &mseq, &by);
			rf->epoch = after;
			rf->retired = rnow;
			rf->member = member;
			if (after != before || rnow != retired || member != was)
				scs_dir_forget_keys(rf->fs->d);   /* names of retired epochs go */
			if (member != was && !member)
				scs_log(SCS_LOG_ERR, "keyring: you were removed from the group at entry %u "
					"by %s; files re-keyed or written from now on cannot be opened, and "
					"this mount creates and changes nothing any more (the members refuse "
					"what you would write); files not yet re-keyed stay readable until "
					"the re-key pass moves them", (unsigned)mseq, by);
			else if (member != was)
				scs_log(SCS_LOG_INFO, "keyring: you were added back to the group at entry "
					"%u by %s; every file can be opened and changed again", (unsigned)mseq,
					by);
			if (after != before && member)
				scs_log(SCS_LOG_INFO, "keyring: now at epoch %u", (unsigned)after);
			if (rnow != retired)
				scs_log(SCS_LOG_INFO, "keyring: epochs below %u are retired", (unsigned)rnow);
			background_rekey(rf);
			/* (what our own pass retired is not news) */
			rf->retired = scs_vault_keyring(rf->fs->vault)->retired_below;
		}
		pthread_mutex_lock(&rf->mu);
	}
	pthread_mutex_unlock(&rf->mu);
	return NULL;
}

static int refresher_start(struct refresher *rf, struct fs *fs, double every, int rekey)
{
	memset(rf, 0, sizeof *rf);
	rf->fs = fs;
	rf->every = every;
	rf->rekey = rekey;
	rf->epoch = scs_vault_epoch(fs->vault);
	rf->retired = scs_vault_keyring(fs->vault)->retired_below;
	rf->member = scs_vault_membership(fs->vault, NULL, NULL);
	pthread_mutex_init(&rf->mu, NULL);
	pthread_cond_init(&rf->cv, NULL);
	if (every <= 0)
		return 0;
	if (pthread_create(&rf->th, NULL, refresh_main, rf) != 0)
		return -1;
	return 1;
}

static void refresher_stop(struct refresher *rf, int started)
{
	if (started > 0) {
		pthread_mutex_lock(&rf->mu);
		__atomic_store_n(&rf->stop, 1, __ATOMIC_RELAXED);   /* (rekey_stop reads it unlocked) */
		pthread_cond_signal(&rf->cv);
		pthread_mutex_unlock(&rf->mu);
		pthread_join(rf->th, NULL);
	}
	pthread_mutex_destroy(&rf->mu);
	pthread_cond_destroy(&rf->cv);
}

static int is_stop_signal(int r)
{
	return r == SIGTERM || r == SIGINT || r == SIGHUP;
}

int main(int argc, char *argv[])
{
	/* Buffers of 1 MiB writes go straight to mmap and back to the system
	 * when freed: glibc's sliding threshold would otherwise keep them in
	 * one heap arena per worker thread (peak RSS 94 MiB instead of ~50
	 * after a 256 MiB write). */
	mallopt(M_MMAP_THRESHOLD, 256 * 1024);
	mallopt(M_ARENA_MAX, 2);
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct opts o;
	memset(&o, 0, sizeof o);
	o.entry_timeout = 1.0;
	o.attr_timeout = 1.0;
	o.negative_timeout = -1.0;
	o.writeback = 1;
	o.max_idle = 10;
	o.refresh = 10.0;
	o.poll = 5;
	o.max_threads = 16;

	if (fuse_opt_parse(&args, &o, opt_spec, opt_proc) < 0)
		return fail("invalid options; see scsfs --help");
	if (o.help) {
		usage(stdout);
		return 0;
	}
	if (o.version) {
		printf("scsfs %s (FUSE library %s)\n", SCSFS_VERSION, fuse_pkgversion());
		return 0;
	}
	if (o.npos < 1 || o.npos > 2) {
		fprintf(stderr, "scsfs: %s; usage: scsfs [-f] [-o OPT[,OPT...]] [REMOTE] MOUNTPOINT\n",
			o.npos < 1 ? "no mount point given" : "too many arguments");
		return 1;
	}
	if (o.entry_timeout < 0 || o.attr_timeout < 0)
		return fail("entry_timeout and attr_timeout must be >= 0 seconds");
	if (o.negative_timeout < 0)
		o.negative_timeout = o.entry_timeout;
	struct scs_backend_opts bo = { .write_back = 1, .sync_upload = o.sync_upload,
				       .upload_delay = o.upload_delay,
				       .upload_parallel = o.upload_parallel,
				       .download_parallel = o.download_parallel };
	if (o.upload_delay < 0 || o.upload_delay > 86400)
		return fail("upload_delay must be between 0 and 86400 seconds");
	if (o.upload_parallel > 8)
		return fail("upload_parallel must be between 1 and 8");
	if (o.download_parallel > 16)
		return fail("download_parallel must be between 1 and 16");
	if (o.cache_max && parse_size(o.cache_max, &bo.cache_max) < 0)
		return fail("cache_max=%s: give a size such as 500M or 2G", o.cache_max);
	scs_backend_set_opts(&bo);
	const char *remote = o.npos == 2 ? o.pos[0] : NULL;
	const char *mnt_arg = o.pos[o.npos - 1];
	char mnt[PATH_MAX];
	if (check_mountpoint(mnt_arg, mnt, sizeof mnt))
		return 1;

	fuse_set_log_func(fuse_log_adapter);
	if (o.debug)
		scs_log_set_level(SCS_LOG_DEBUG);
	const char *dlog = getenv("SCSFS_DEBUG_LOG");
	if (dlog && *dlog && scs_log_debug_file(dlog) < 0)
		scs_log(SCS_LOG_WARN, "SCSFS_DEBUG_LOG=%s: cannot open it (%s); no debug log",
			dlog, strerror(errno));

	/* Mount options of our own: the folder as the source, type fuse.scsfs. */
	char defremote[SCS_CONFIG_VALUE_MAX];
	const char *rname = remote;
	if (!rname && scs_config_get(SCS_CONFIG_DEFAULT_REMOTE, defremote, sizeof defremote, NULL) == 0)
		rname = defremote;
	if (!rname)
		rname = "scsfs";
	char *fsopts = NULL;
	char *fsname = malloc(strlen(rname) + sizeof "fsname=");
	int bad = !fsname;
	if (fsname) {
		sprintf(fsname, "fsname=%s", rname);
		bad |= fuse_opt_add_opt_escaped(&fsopts, fsname) != 0;
		free(fsname);
	}
	bad |= fuse_opt_add_opt(&fsopts, "subtype=scsfs") != 0;
	if (o.allow_other)
		bad |= fuse_opt_add_opt(&fsopts, "default_permissions") != 0;
	/* Ours first: an explicit -o fsname= given by the user comes later and wins. */
	if (!bad) {
		bad |= fuse_opt_insert_arg(&args, 1, "-o") != 0;
		bad |= fuse_opt_insert_arg(&args, 2, fsopts) != 0;
	}
	free(fsopts);
	if (bad)
		return fail("out of memory");

	/* The session checks the FUSE options: before asking for a passphrase. */
	struct fs fs;
	memset(&fs, 0, sizeof fs);
	int ret = 1;
	struct fuse_session *se = fuse_session_new(&args, &scsfs_ops, sizeof scsfs_ops, &fs);
	if (!se) {
		const char *why = fuse_said();
		fail("%s%sinvalid mount options; see scsfs --help", why, *why ? ": " : "");
		fuse_opt_free_args(&args);
		return 1;
	}
	fs.se = se;

	/* The vault: folder, membership, passphrase, keys.  Nothing mounted yet. */
	struct scs_vault_opts vo = { .passphrase_file = o.passfile, .no_prompt = 0 };
	scs_err err;
	scs_err_clear(&err);
	int r = scs_vault_open(remote, &vo, &fs.vault, &err);
	if (r) {
		if (err.msg[0])
			fail("%s", err.msg);
		else
			fail("cannot open %s: %s", rname, strerror(-r));
		goto out_se;
	}
	fs.be = scs_vault_backend(fs.vault);
	fs.k = scs_vault_keyctx(fs.vault);
	fs.entry_timeout = o.entry_timeout;
	fs.attr_timeout = o.attr_timeout;
	fs.negative_timeout = o.negative_timeout;
	fs.writeback = o.writeback && !o.ro;
	fs.readonly = o.ro;
	fs.foreground = o.foreground;
	fs.own_k = scs_vault_keyctx_own(fs.vault);
	pthread_mutex_init(&fs.held_mu, NULL);
	r = scs_dir_new(fs.be, fs.k, scs_vault_root_dir_id(fs.vault), &fs.d);
	if (!r)
		r = scs_dir_new(fs.be, fs.own_k, scs_vault_root_dir_id(fs.vault), &fs.own_d);
	if (r) {
		fail("cannot set up the folder: %s", strerror(-r));
		goto out_se;
	}
	struct scs_attr ra;
	r = scs_be_stat(fs.be, "", &ra);
	if (!r)
		r = fs_nodes_init(&fs, &ra);
	if (r) {
		fail("cannot read the folder %s: %s", rname, strerror(-r));
		goto out_se;
	}
	/* Remote back ends: name conflict copies after this member; drop what
	 * others changed from our caches (the feed starts after the fork); what
	 * the upload queue sends goes out in the current epoch (upload.c). */
	const struct scs_member *me = scs_keyring_member(scs_vault_keyring(fs.vault), fs.k->self_fpr);
	snprintf(fs.self_name, sizeof fs.self_name, "%s", me ? me->name : "");
	fs.be->hooks.arg = &fs;
	fs.be->hooks.conflict_name = fs_conflict_name;
	fs.be->hooks.changed = fs_remote_changed;
	fs.be->hooks.upload = fs_upload;

	umask(0);    /* the kernel already applied the caller's umask */
	if (fuse_set_signal_handlers(se) != 0) {
		fail("cannot set signal handlers");
		goto out_se;
	}
	if (fuse_session_mount(se, mnt) != 0) {
		const char *why = fuse_said();
		fail("cannot mount on %s%s%s", mnt, *why ? ": " : "", why);
		goto out_sig;
	}
	capturing = 0;
	if (fuse_daemonize(o.foreground) != 0) {
		fail("cannot go to the background");
		goto out_unmount;
	}
	if (!o.foreground)
		scs_log_to_syslog("scsfs");
	r = scs_be_start(fs.be, &err);   /* threads: after the fork */
	if (r < 0) {
		scs_log(SCS_LOG_ERR, "%s", err.msg);
		goto out_unmount;
	}
	scs_log(SCS_LOG_INFO, "mounted %s on %s", rname, mnt);
	pthread_t dump_th;
	int dumping = dumper_start(&fs, &dump_th) == 0;

	r = scs_gdrive_watch(fs.be, o.poll, &err);
	if (r < 0 && r != -ENOTSUP)
		scs_log(SCS_LOG_WARN, "%s", err.msg);
	struct refresher rf;
	int rf_started = refresher_start(&rf, &fs, o.refresh, !o.norekey);
	if (rf_started < 0)
		scs_log(SCS_LOG_WARN, "cannot start the keyring refresh thread; keyring changes need a remount");
	if (o.single) {
		r = fuse_session_loop(se);
	} else {
		struct fuse_loop_config *cfg = fuse_loop_cfg_create();
		if (cfg) {
			fuse_loop_cfg_set_clone_fd(cfg, 0);
			fuse_loop_cfg_set_idle_threads(cfg, o.max_idle);
			fuse_loop_cfg_set_max_threads(cfg, o.max_threads);
			r = fuse_session_loop_mt(se, cfg);
			fuse_loop_cfg_destroy(cfg);
		} else {
			r = -ENOMEM;
		}
	}
	refresher_stop(&rf, rf_started);
	if (dumping)
		dumper_stop(dump_th);
	scs_gdrive_unwatch(fs.be);
	fs.be->hooks.changed = NULL;
	ret = (r == 0 || is_stop_signal(r)) ? 0 : 1;
	if (ret)
		scs_log(SCS_LOG_ERR, "the FUSE loop failed: %s", r < 0 ? strerror(-r) : "error");
out_unmount:
	fuse_session_unmount(se);
	fs_close_all(&fs);
out_sig:
	fuse_remove_signal_handlers(se);
out_se:
	fuse_session_destroy(se);
	if (fs.hash)
		fs_nodes_destroy(&fs);
	/* The vault first: closing the back end may still name a conflict copy. */
	if (fs.vault)
		scs_vault_close(fs.vault);
	fs_abandoned_free(&fs);
	if (fs.d)
		scs_dir_free(fs.d);
	if (fs.own_d)
		scs_dir_free(fs.own_d);
	fuse_opt_free_args(&args);
	for (int i = 0; i < o.npos && i < 3; i++)
		free(o.pos[i]);
	free(o.passfile);
	free(o.cache_max);
	return ret;
}
