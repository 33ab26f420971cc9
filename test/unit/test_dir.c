/* test_dir.c - the namespace engine: mkdir/lookup/list, long names,
 * decorated names, epochs, symlinks, rmdir, tampered directories. */
#include "unit.h"

#include <dirent.h>
#include <limits.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "scs/backend.h"
#include "scs/crypto.h"
#include "scs/dir.h"
#include "scs/names.h"

/* ---- fake group: epochs 1 and 2 ---- */

static uint8_t ekeys[3][SCS_KEY_LEN];
static uint32_t wepoch = 1;
static int retired1;

static uint32_t fk_write_epoch(void *arg) { (void)arg; return wepoch; }

static int fk_epoch_key(void *arg, uint32_t epoch, uint8_t key[SCS_KEY_LEN])
{
	(void)arg;
	if (epoch < 1 || epoch > wepoch)
		return -ENOKEY;
	if (epoch == 1 && retired1)
		return -EKEYREVOKED;
	memcpy(key, ekeys[epoch], SCS_KEY_LEN);
	return 0;
}

static scs_keyctx K = { .write_epoch = fk_write_epoch, .epoch_key = fk_epoch_key };
static scs_backend *be;
static scs_dirctx *D;
static char *tmpdir;
static const uint8_t root_id[SCS_DIR_ID_LEN] = "root-id-16-bytes";

/* ---- helpers ---- */

#define MAXE 32
struct listing {
	int n, nbad;
	char names[MAXE][SCS_NAME_MAX + 1];
	char stored[MAXE][SCS_ENC_NAME_BUF];
	uint32_t epoch[MAXE];
	int decorated[MAXE];
	int bad[MAXE];
};

static int collect(void *arg, const struct scs_dirent *e)
{
	struct listing *l = arg;
	if (l->n >= MAXE)
		return 0;
	int i = l->n++;
	snprintf(l->names[i], sizeof l->names[i], "%s", e->name ? e->name : "");
	snprintf(l->stored[i], sizeof l->stored[i], "%s", e->stored);
	l->epoch[i] = e->epoch;
	l->decorated[i] = e->decorated;
	l->bad[i] = e->bad;
	if (e->bad)
		l->nbad++;
	return 0;
}

static int list(const char *dpath, const uint8_t *id, unsigned flags, struct listing *l)
{
	memset(l, 0, sizeof *l);
	return scs_dir_list(D, dpath, id, "test", flags, collect, l);
}

static int has(const struct listing *l, const char *name)
{
	for (int i = 0; i < l->n; i++)
		if (!l->bad[i] && !strcmp(l->names[i], name))
			return i;
	return -1;
}

/* Names in the remote directory, as the back end sees them. */
static int remote_count(const char *rdir)
{
	char p[PATH_MAX];
	snprintf(p, sizeof p, "%s/%s", tmpdir, rdir);
	DIR *d = opendir(p);
	if (!d)
		return -1;
	int n = 0;
	struct dirent *de;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

static void touch(const char *rpath)
{
	CHECK_EQ(scs_be_write_file(be, rpath, "x", 1), 0);
}

/* A file entry created the way the FUSE daemon does it. */
static void make_entry(const char *dpath, const uint8_t *id, const char *name, char *rpath)
{
	CHECK_EQ(scs_dir_prepare_name(D, dpath, id, name, rpath, SCS_RPATH_MAX), 0);
	touch(rpath);
}

/* ---- tests ---- */

static void test_basic(void)
{
	char rp[SCS_RPATH_MAX], rp2[SCS_RPATH_MAX];
	uint8_t id[SCS_DIR_ID_LEN], id2[SCS_DIR_ID_LEN];
	struct scs_attr a;

	CHECK_EQ(scs_dir_read_id(D, "", id), 0);
	CHECK_MEM(id, root_id, SCS_DIR_ID_LEN);

	CHECK_EQ(scs_dir_mkdir(D, "", root_id, "docs", 0750, rp, sizeof rp, id), 0);
	CHECK(strchr(rp, '/') == NULL);
	CHECK(strstr(rp, "docs") == NULL);
	CHECK_EQ(scs_dir_read_id(D, rp, id2), 0);
	CHECK_MEM(id, id2, SCS_DIR_ID_LEN);
	CHECK(memcmp(id, root_id, SCS_DIR_ID_LEN) != 0);
	CHECK_EQ(remote_count(rp), 1);                      /* .scsdir */
	CHECK_EQ(scs_be_stat(be, rp, &a), 0);
	CHECK_EQ(a.mode & 07777, 0750);
	CHECK_EQ(scs_dir_mkdir(D, "", root_id, "docs", 0750, rp2, sizeof rp2, id2), -EEXIST);

	/* lookup */
	CHECK_EQ(scs_dir_lookup(D, "", root_id, "docs", rp2, sizeof rp2, &a), 0);
	CHECK(!strcmp(rp, rp2));
	CHECK(S_ISDIR(a.mode));
	CHECK_EQ(scs_dir_lookup(D, "", root_id, "nope", rp2, sizeof rp2, &a), -ENOENT);
	CHECK_EQ(scs_dir_lookup(D, "", root_id, "a/b", rp2, sizeof rp2, &a), -EINVAL);
	CHECK_EQ(scs_dir_lookup(D, "", root_id, "..", rp2, sizeof rp2, &a), -EINVAL);
	CHECK_EQ(scs_dir_lookup(D, "", root_id, "", rp2, sizeof rp2, &a), -EINVAL);
	/* the same name in another directory is another remote name */
	char sub[SCS_RPATH_MAX], f1[SCS_RPATH_MAX], f2[SCS_RPATH_MAX];
	uint8_t subid[SCS_DIR_ID_LEN];
	CHECK_EQ(scs_dir_mkdir(D, rp, id, "sub", 0700, sub, sizeof sub, subid), 0);
	CHECK(!strncmp(sub, rp, strlen(rp)) && sub[strlen(rp)] == '/');
	make_entry(rp, id, "file.txt", f1);
	make_entry(sub, subid, "file.txt", f2);
	CHECK(strcmp(strrchr(f1, '/'), strrchr(f2, '/')) != 0);
	CHECK_EQ(scs_dir_lookup(D, sub, subid, "file.txt", rp2, sizeof rp2, &a), 0);
	CHECK(!strcmp(rp2, f2));
	CHECK_EQ(a.size, 1);

	/* list: plaintext names, .scsdir hidden, .scsfs hidden at the root */
	CHECK_EQ(scs_be_mkdir(be, SCS_META_DIR, 0700), 0);
	struct listing l;
	CHECK_EQ(list("", root_id, 0, &l), 0);
	CHECK_EQ(l.n, 1);
	CHECK(has(&l, "docs") >= 0);
	CHECK_EQ(l.epoch[0], 1);
	CHECK_EQ(list(rp, id, 0, &l), 0);
	CHECK_EQ(l.n, 2);
	CHECK(has(&l, "sub") >= 0 && has(&l, "file.txt") >= 0);

	/* rmdir: not empty, then empty; a stale temp object does not count */
	CHECK_EQ(scs_dir_rmdir(D, sub), -ENOTEMPTY);
	CHECK_EQ(scs_be_unlink(be, f2), 0);
	char stale[SCS_RPATH_MAX + 64];
	snprintf(stale, sizeof stale, "%s/x" SCS_TMP_INFIX "0123456789abcdef", sub);
	touch(stale);
	CHECK_EQ(list(sub, subid, 0, &l), 0);
	CHECK_EQ(l.n, 0);
	CHECK_EQ(scs_dir_rmdir(D, sub), 0);
	CHECK_EQ(scs_be_stat(be, sub, &a), -ENOENT);
	CHECK_EQ(scs_dir_rmdir(D, ""), -EBUSY);

	/* a read-only directory still gets its .scsdir */
	char ro[SCS_RPATH_MAX];
	uint8_t roid[SCS_DIR_ID_LEN], roid2[SCS_DIR_ID_LEN];
	CHECK_EQ(scs_dir_mkdir(D, rp, id, "ro", 0555, ro, sizeof ro, roid), 0);
	CHECK_EQ(scs_be_stat(be, ro, &a), 0);
	CHECK_EQ(a.mode & 07777, 0555);
	CHECK_EQ(scs_dir_read_id(D, ro, roid2), 0);
	CHECK_MEM(roid, roid2, SCS_DIR_ID_LEN);
	scs_be_chmod(be, ro, 0755);
	CHECK_EQ(scs_dir_rmdir(D, ro), 0);

	/* a directory without .scsdir or with a bad one */
	CHECK_EQ(scs_be_mkdir(be, "bare", 0700), 0);
	CHECK_EQ(scs_dir_read_id(D, "bare", id2), -ENOENT);
	CHECK_EQ(scs_be_write_file(be, "bare/.scsdir", "SCSD\0\1short", 11), 0);
	CHECK_EQ(scs_dir_read_id(D, "bare", id2), -EBADMSG);
	scs_be_unlink(be, "bare/.scsdir");
	scs_be_rmdir(be, "bare");
}

static void test_long_names(void)
{
	uint8_t id[SCS_DIR_ID_LEN];
	char dp[SCS_RPATH_MAX], rp[SCS_RPATH_MAX], rp2[SCS_RPATH_MAX], rp3[SCS_RPATH_MAX];
	CHECK_EQ(scs_dir_mkdir(D, "", root_id, "long", 0700, dp, sizeof dp, id), 0);
	char name[256], name2[256];
	memset(name, 'n', 250);
	memcpy(name + 246, ".txt", 5);
	memset(name2, 'm', 200);
	name2[200] = '\0';
	make_entry(dp, id, name, rp);
	CHECK(strstr(rp, "/" SCS_LONG_PREFIX) != NULL);
	CHECK(strlen(strrchr(rp, '/') + 1) <= SCS_NAME_MAX_ENC);
	CHECK_EQ(remote_count(dp), 3);                      /* .scsdir, L~x, L~x.name */
	struct listing l;
	CHECK_EQ(list(dp, id, 0, &l), 0);
	CHECK_EQ(l.n, 1);
	CHECK(has(&l, name) >= 0);
	struct scs_attr a;
	CHECK_EQ(scs_dir_lookup(D, dp, id, name, rp2, sizeof rp2, &a), 0);
	CHECK(!strcmp(rp, rp2));
	/* a long directory name */
	uint8_t lid[SCS_DIR_ID_LEN];
	CHECK_EQ(scs_dir_mkdir(D, dp, id, name2, 0700, rp3, sizeof rp3, lid), 0);
	CHECK_EQ(list(dp, id, 0, &l), 0);
	CHECK_EQ(l.n, 2);
	CHECK(has(&l, name2) >= 0);
	CHECK_EQ(remote_count(dp), 5);

	/* side objects swapped between two long names: both refused (a
	 * swapped side object would otherwise swap the names) */
	char s1[SCS_RPATH_MAX + 64], s2[SCS_RPATH_MAX + 64], t[SCS_RPATH_MAX + 64];
	snprintf(s1, sizeof s1, "%s" SCS_LONG_SUFFIX, rp);
	snprintf(s2, sizeof s2, "%s" SCS_LONG_SUFFIX, rp3);
	snprintf(t, sizeof t, "%s/tmpswap", dp);
	CHECK_EQ(scs_be_rename(be, s1, t, 0), 0);
	CHECK_EQ(scs_be_rename(be, s2, s1, 0), 0);
	CHECK_EQ(scs_be_rename(be, t, s2, 0), 0);
	CHECK_EQ(list(dp, id, 0, &l), 0);
	CHECK_EQ(l.n, 0);
	CHECK_EQ(list(dp, id, SCS_DIR_LIST_BAD, &l), 0);
	CHECK_EQ(l.nbad, 2);
	CHECK_EQ(scs_be_rename(be, s1, t, 0), 0);
	CHECK_EQ(scs_be_rename(be, s2, s1, 0), 0);
	CHECK_EQ(scs_be_rename(be, t, s2, 0), 0);
	CHECK_EQ(list(dp, id, 0, &l), 0);
	CHECK_EQ(l.n, 2);

	/* drop_name removes the side object, and only for long names */
	CHECK_EQ(scs_be_unlink(be, rp), 0);
	CHECK_EQ(scs_dir_drop_name(D, rp), 0);
	CHECK_EQ(scs_be_stat(be, s1, &a), -ENOENT);
	CHECK_EQ(scs_dir_drop_name(D, rp), 0);              /* idempotent */
	/* rmdir of a long-named directory removes its side object too */
	CHECK_EQ(scs_dir_rmdir(D, rp3), 0);
	CHECK_EQ(scs_be_stat(be, s2, &a), -ENOENT);
	CHECK_EQ(remote_count(dp), 1);
	/* an orphan side object does not keep a directory busy */
	make_entry(dp, id, name, rp);
	CHECK_EQ(scs_be_unlink(be, rp), 0);
	CHECK_EQ(scs_dir_rmdir(D, dp), 0);
	/* a name too long for NAME_MAX */
	char toolong[300];
	memset(toolong, 'z', 299);
	toolong[299] = '\0';
	CHECK_EQ(scs_dir_prepare_name(D, "", root_id, toolong, rp, sizeof rp), -ENAMETOOLONG);
}

static void test_decorated(void)
{
	uint8_t id[SCS_DIR_ID_LEN];
	char dp[SCS_RPATH_MAX], rp[SCS_RPATH_MAX], rp2[SCS_RPATH_MAX + 64], dec[SCS_RPATH_MAX + 64];
	CHECK_EQ(scs_dir_mkdir(D, "", root_id, "sync", 0700, dp, sizeof dp, id), 0);
	make_entry(dp, id, "report.odt", rp);
	/* a sync client made a conflict copy beside it */
	snprintf(dec, sizeof dec, "%s (1)", rp);
	touch(dec);
	snprintf(rp2, sizeof rp2, "%s (conflicted copy 2026-11-23)", rp);
	touch(rp2);
	struct listing l;
	CHECK_EQ(list(dp, id, 0, &l), 0);
	CHECK_EQ(l.n, 3);
	CHECK(has(&l, "report.odt") >= 0);
	int i = has(&l, "report (1).odt");
	CHECK(i >= 0);
	if (i >= 0) {
		CHECK(l.decorated[i]);
		CHECK(!strcmp(l.stored[i], strrchr(dec, '/') + 1));
	}
	CHECK(has(&l, "report (conflicted copy 2026-11-23).odt") >= 0);
	/* lookup of the readable name finds the decorated entry */
	struct scs_attr a;
	CHECK_EQ(scs_dir_lookup(D, dp, id, "report (1).odt", rp2, sizeof rp2, &a), 0);
	CHECK(!strcmp(rp2, dec));
	CHECK_EQ(scs_dir_lookup(D, dp, id, "report (2).odt", rp2, sizeof rp2, &a), -ENOENT);
	/* a decorated entry removed: drop_name leaves the original's side alone */
	CHECK_EQ(scs_dir_drop_name(D, dec), 0);
}

static void test_tampered_dir(void)
{
	uint8_t id1[SCS_DIR_ID_LEN], id2[SCS_DIR_ID_LEN];
	char d1[SCS_RPATH_MAX], d2[SCS_RPATH_MAX], f[SCS_RPATH_MAX + 64], moved[SCS_RPATH_MAX + 600];
	CHECK_EQ(scs_dir_mkdir(D, "", root_id, "d1", 0700, d1, sizeof d1, id1), 0);
	CHECK_EQ(scs_dir_mkdir(D, "", root_id, "d2", 0700, d2, sizeof d2, id2), 0);
	make_entry(d1, id1, "one.dat", f);
	make_entry(d1, id1, "stays.dat", moved);
	/* moved into another directory: its name no longer decrypts there */
	snprintf(moved, sizeof moved, "%s/%s", d2, strrchr(f, '/') + 1);
	CHECK_EQ(scs_be_rename(be, f, moved, 0), 0);
	/* foreign files and garbage */
	snprintf(f, sizeof f, "%s/notours.txt", d2);
	touch(f);
	snprintf(f, sizeof f, "%s/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", d2);
	touch(f);
	struct listing l;
	CHECK_EQ(list(d2, id2, 0, &l), 0);
	CHECK_EQ(l.n, 0);
	CHECK_EQ(list(d2, id2, SCS_DIR_LIST_BAD, &l), 0);
	CHECK_EQ(l.n, 3);
	CHECK_EQ(l.nbad, 3);
	CHECK_EQ(l.bad[0], -EBADMSG);
	struct scs_attr a;
	CHECK_EQ(scs_dir_lookup(D, d2, id2, "one.dat", f, sizeof f, &a), -ENOENT);
	CHECK_EQ(list(d1, id1, 0, &l), 0);
	CHECK_EQ(l.n, 1);
	CHECK(has(&l, "stays.dat") >= 0);
}

static void test_epochs(void)
{
	uint8_t id[SCS_DIR_ID_LEN];
	char dp[SCS_RPATH_MAX], old[SCS_RPATH_MAX], neu[SCS_RPATH_MAX], rp[SCS_RPATH_MAX];
	CHECK_EQ(scs_dir_mkdir(D, "", root_id, "ep", 0700, dp, sizeof dp, id), 0);
	make_entry(dp, id, "old.txt", old);
	wepoch = 2;                      /* a rotation */
	make_entry(dp, id, "new.txt", neu);
	struct listing l;
	CHECK_EQ(list(dp, id, 0, &l), 0);
	CHECK_EQ(l.n, 2);
	int i = has(&l, "old.txt"), j = has(&l, "new.txt");
	CHECK(i >= 0 && j >= 0);
	if (i >= 0 && j >= 0) {
		CHECK_EQ(l.epoch[i], 1);
		CHECK_EQ(l.epoch[j], 2);
	}
	struct scs_attr a;
	CHECK_EQ(scs_dir_lookup(D, dp, id, "old.txt", rp, sizeof rp, &a), 0);
	CHECK(!strcmp(rp, old));
	/* the same name written now goes under the new epoch's name */
	CHECK_EQ(scs_dir_prepare_name(D, dp, id, "old.txt", rp, sizeof rp), 0);
	CHECK(strcmp(rp, old) != 0);
	/* epoch 1 retired: its names no longer open */
	retired1 = 1;
	scs_dir_forget_keys(D);
	CHECK_EQ(list(dp, id, SCS_DIR_LIST_BAD, &l), 0);
	CHECK_EQ(l.n, 2);
	CHECK_EQ(l.nbad, 1);
	CHECK(has(&l, "new.txt") >= 0);
	CHECK_EQ(scs_dir_lookup(D, dp, id, "old.txt", rp, sizeof rp, &a), -ENOENT);
	retired1 = 0;
	scs_dir_forget_keys(D);
	CHECK_EQ(scs_dir_lookup(D, dp, id, "old.txt", rp, sizeof rp, &a), 0);
	wepoch = 1;
	scs_dir_forget_keys(D);
}

static void test_symlinks(void)
{
	uint8_t id[SCS_DIR_ID_LEN], id2[SCS_DIR_ID_LEN];
	char dp[SCS_RPATH_MAX], rp[SCS_RPATH_MAX], rp2[SCS_RPATH_MAX], dp2[SCS_RPATH_MAX];
	char target[SCS_SYMLINK_MAX + 1];
	CHECK_EQ(scs_dir_mkdir(D, "", root_id, "links", 0700, dp, sizeof dp, id), 0);
	CHECK_EQ(scs_dir_symlink(D, dp, id, "lnk", "../secret dir/file.txt", rp, sizeof rp), 0);
	struct scs_attr a;
	CHECK_EQ(scs_be_stat(be, rp, &a), 0);
	CHECK(S_ISLNK(a.mode));
	char raw[SCS_SYMLINK_ENC_BUF];
	CHECK(scs_be_readlink(be, rp, raw, sizeof raw) > 0);
	CHECK(strstr(raw, "secret") == NULL);
	CHECK(!strncmp(raw, "S1", 2));
	CHECK_EQ(scs_dir_readlink(D, rp, id, target), 22);
	CHECK(!strcmp(target, "../secret dir/file.txt"));
	CHECK_EQ(scs_dir_symlink(D, dp, id, "lnk", "x", rp2, sizeof rp2), -EEXIST);
	CHECK_EQ(scs_dir_readlink(D, rp, id, target), 22);  /* EEXIST kept it */
	CHECK_EQ(scs_dir_lookup(D, dp, id, "lnk", rp2, sizeof rp2, &a), 0);
	CHECK(S_ISLNK(a.mode));
	struct listing l;
	CHECK_EQ(list(dp, id, 0, &l), 0);
	CHECK(has(&l, "lnk") >= 0);
	/* a link moved to another directory does not open there */
	CHECK_EQ(scs_dir_mkdir(D, "", root_id, "other", 0700, dp2, sizeof dp2, id2), 0);
	CHECK_EQ(scs_dir_readlink(D, rp, id2, target), -EBADMSG);
	/* a regular file is not a symlink; a mangled target fails */
	make_entry(dp, id, "plain", rp2);
	CHECK(scs_dir_readlink(D, rp2, id, target) < 0);
	CHECK_EQ(scs_be_unlink(be, rp), 0);
	raw[10] ^= 1;
	CHECK_EQ(scs_be_symlink(be, raw, rp), 0);
	CHECK_EQ(scs_dir_readlink(D, rp, id, target), -EBADMSG);
	/* a long target and a long link name */
	char lt[2001], ln[240];
	memset(lt, 't', 2000);
	lt[2000] = '\0';
	memset(ln, 'l', 239);
	ln[239] = '\0';
	CHECK_EQ(scs_dir_symlink(D, dp, id, ln, lt, rp, sizeof rp), 0);
	CHECK_EQ(scs_dir_readlink(D, rp, id, target), 2000);
	CHECK(!strcmp(target, lt));
	CHECK_EQ(scs_dir_symlink(D, dp, id, "empty", "", rp, sizeof rp), -ENOENT);
}

struct walked {
	int n, nbad, ndirs;
	char paths[16][512];
	int bad[16];
};

static int walk_cb(void *arg, const struct scs_walk_entry *e)
{
	struct walked *w = arg;
	if (w->n < 16) {
		snprintf(w->paths[w->n], sizeof w->paths[0], "%s", e->path);
		w->bad[w->n] = e->bad;
	}
	w->n++;
	if (e->bad)
		w->nbad++;
	if (e->dir_id)
		w->ndirs++;
	return 0;
}

static int walked_has(const struct walked *w, const char *path, int bad)
{
	for (int i = 0; i < w->n && i < 16; i++)
		if (!strcmp(w->paths[i], path) && w->bad[i] == bad)
			return 1;
	return 0;
}

static void test_walk(void)
{
	uint8_t wid[SCS_DIR_ID_LEN], aid[SCS_DIR_ID_LEN], cid[SCS_DIR_ID_LEN];
	char wrp[SCS_RPATH_MAX], arp[SCS_RPATH_MAX], crp[SCS_RPATH_MAX], rp[SCS_RPATH_MAX];
	CHECK_EQ(scs_dir_mkdir(D, "", root_id, "walk", 0700, wrp, sizeof wrp, wid), 0);
	CHECK_EQ(scs_dir_mkdir(D, wrp, wid, "a", 0700, arp, sizeof arp, aid), 0);
	make_entry(arp, aid, "b.txt", rp);
	CHECK_EQ(scs_dir_mkdir(D, arp, aid, "c", 0700, crp, sizeof crp, cid), 0);
	CHECK_EQ(scs_dir_symlink(D, crp, cid, "d", "../b.txt", rp, sizeof rp), 0);
	struct walked w = { 0 };
	CHECK_EQ(scs_dir_walk(D, wrp, wid, "walk", walk_cb, &w), 0);
	CHECK_EQ(w.n, 4);
	CHECK_EQ(w.nbad, 0);
	CHECK_EQ(w.ndirs, 2);
	CHECK(walked_has(&w, "walk/a", 0));
	CHECK(walked_has(&w, "walk/a/b.txt", 0));
	CHECK(walked_has(&w, "walk/a/c", 0));
	CHECK(walked_has(&w, "walk/a/c/d", 0));
	/* damage: a directory loses its .scsdir, a foreign file appears */
	char p[SCS_RPATH_MAX + 16];
	snprintf(p, sizeof p, "%s/.scsdir", crp);
	CHECK_EQ(scs_be_unlink(be, p), 0);
	snprintf(p, sizeof p, "%s/junk", arp);
	touch(p);
	memset(&w, 0, sizeof w);
	CHECK_EQ(scs_dir_walk(D, wrp, wid, "", walk_cb, &w), 0);
	CHECK_EQ(w.n, 4);
	CHECK_EQ(w.nbad, 2);
	CHECK(walked_has(&w, "a/c", -EBADMSG));
	CHECK(walked_has(&w, "a/junk", -EBADMSG));
	CHECK(walked_has(&w, "a/b.txt", 0));
}

/* Conflict copies: "name (conflict from WHO YYYY-MM-DD HH-MM).ext" in the
 * same directory, encrypted, " 2", " 3" while taken, long names too. */
static void test_conflict_names(void)
{
	uint8_t id[SCS_DIR_ID_LEN];
	char dp[SCS_RPATH_MAX], rp[SCS_RPATH_MAX], cp[SCS_RPATH_MAX], want[SCS_NAME_MAX + 1];
	struct scs_attr a;
	CHECK_EQ(scs_dir_mkdir(D, "", root_id, "conflicts", 0700, dp, sizeof dp, id), 0);
	make_entry(dp, id, "report.odt", rp);
	setenv("TZ", "UTC", 1);
	tzset();
	time_t when = 1795429500;         /* 2026-11-23 10:25:00 UTC */
	CHECK_EQ(scs_dir_conflict_name(D, rp, "alice", when, cp, sizeof cp), 0);
	CHECK(!strncmp(cp, dp, strlen(dp)) && cp[strlen(dp)] == '/');
	CHECK(!strchr(cp + strlen(dp) + 1, '/'));
	CHECK(!strstr(cp, "conflict"));       /* stored encrypted */
	touch(cp);
	char rp2[SCS_RPATH_MAX];
	CHECK_EQ(scs_dir_lookup(D, dp, id, "report (conflict from alice 2026-11-23 10-25).odt",
				rp2, sizeof rp2, &a), 0);
	CHECK(!strcmp(rp2, cp));
	/* taken: " 2", then " 3" */
	CHECK_EQ(scs_dir_conflict_name(D, rp, "alice", when, cp, sizeof cp), 0);
	touch(cp);
	CHECK_EQ(scs_dir_lookup(D, dp, id, "report (conflict from alice 2026-11-23 10-25 2).odt",
				rp2, sizeof rp2, &a), 0);
	CHECK(!strcmp(rp2, cp));
	CHECK_EQ(scs_dir_conflict_name(D, rp, "alice", when, cp, sizeof cp), 0);
	CHECK_EQ(scs_dir_lookup(D, dp, id, "report (conflict from alice 2026-11-23 10-25 3).odt",
				rp2, sizeof rp2, &a), -ENOENT);
	/* no extension; a member name with a '/' and parentheses */
	make_entry(dp, id, "Makefile", rp);
	CHECK_EQ(scs_dir_conflict_name(D, rp, "bob/(x)", when, cp, sizeof cp), 0);
	touch(cp);
	CHECK_EQ(scs_dir_lookup(D, dp, id, "Makefile (conflict from bob__x_ 2026-11-23 10-25)",
				rp2, sizeof rp2, &a), 0);
	/* a long name: shortened to NAME_MAX, extension kept, long form stored */
	char name[SCS_NAME_MAX + 1];
	memset(name, 'n', 250);
	strcpy(name + 250, ".txt");
	make_entry(dp, id, name, rp);
	CHECK_EQ(scs_dir_conflict_name(D, rp, "alice", when, cp, sizeof cp), 0);
	touch(cp);
	const char *dec = " (conflict from alice 2026-11-23 10-25)";
	size_t keep = SCS_NAME_MAX - strlen(dec) - 4;
	memset(want, 'n', keep);
	snprintf(want + keep, sizeof want - keep, "%s.txt", dec);
	CHECK_EQ(strlen(want), SCS_NAME_MAX);
	CHECK_EQ(scs_dir_lookup(D, dp, id, want, rp2, sizeof rp2, &a), 0);
	struct listing l;
	CHECK_EQ(list(dp, id, 0, &l), 0);
	CHECK(has(&l, want) >= 0);
	/* a decorated or duplicate entry's conflict is named after the name */
	make_entry(dp, id, "notes.txt", rp);
	char d1[SCS_RPATH_MAX + 64];
	snprintf(d1, sizeof d1, "%s (duplicate 0123abcd)", rp);
	touch(d1);
	CHECK_EQ(scs_dir_conflict_name(D, d1, "alice", when, cp, sizeof cp), 0);
	touch(cp);
	CHECK_EQ(scs_dir_lookup(D, dp, id, "notes (conflict from alice 2026-11-23 10-25).txt",
				rp2, sizeof rp2, &a), 0);
	/* not one of ours */
	snprintf(d1, sizeof d1, "%s/plain.txt", dp);
	CHECK_EQ(scs_dir_conflict_name(D, d1, "alice", when, cp, sizeof cp), -EINVAL);
}

/* Duplicates (two Drive entries of one name): listed with the suffix,
 * found by it; real names of that form cannot be made. */
static void test_duplicates(void)
{
	uint8_t id[SCS_DIR_ID_LEN];
	char dp[SCS_RPATH_MAX], rp[SCS_RPATH_MAX], rp2[SCS_RPATH_MAX + 64], dup[SCS_RPATH_MAX + 64];
	struct scs_attr a;
	CHECK_EQ(scs_dir_mkdir(D, "", root_id, "dups", 0700, dp, sizeof dp, id), 0);
	make_entry(dp, id, "report.txt", rp);
	snprintf(dup, sizeof dup, "%s (duplicate 1a2b3c4d)", rp);
	touch(dup);
	snprintf(rp2, sizeof rp2, "%s (1) (duplicate 99990000)", rp);
	touch(rp2);
	struct listing l;
	CHECK_EQ(list(dp, id, 0, &l), 0);
	CHECK_EQ(l.n, 3);
	CHECK_EQ(l.nbad, 0);
	CHECK(has(&l, "report.txt") >= 0);
	CHECK(has(&l, "report (duplicate 1a2b3c4d).txt") >= 0);
	CHECK(has(&l, "report (1) (duplicate 99990000).txt") >= 0);
	CHECK_EQ(scs_dir_lookup(D, dp, id, "report (duplicate 1a2b3c4d).txt", rp2, sizeof rp2, &a), 0);
	CHECK(!strcmp(rp2, dup));
	CHECK_EQ(scs_dir_lookup(D, dp, id, "report (duplicate 1a2b3c4e).txt", rp2, sizeof rp2, &a),
		 -ENOENT);
	char shown[SCS_NAME_MAX + 1];
	CHECK_EQ(scs_dir_shown_name(D, dp, id, strrchr(dup, '/') + 1, shown), 0);
	CHECK(!strcmp(shown, "report (duplicate 1a2b3c4d).txt"));
	CHECK_EQ(scs_dir_shown_name(D, dp, id, strrchr(rp, '/') + 1, shown), 0);
	CHECK(!strcmp(shown, "report.txt"));
	CHECK_EQ(scs_dir_shown_name(D, dp, id, SCS_DIRID_FILE, shown), -ENOENT);
	/* reserved: a real name of the duplicate form */
	CHECK_EQ(scs_dir_prepare_name(D, dp, id, "x (duplicate 0123abcd).txt", rp2, sizeof rp2),
		 -EINVAL);
	CHECK_EQ(scs_dir_prepare_name(D, dp, id, "x (duplicate 0123abcd)", rp2, sizeof rp2), -EINVAL);
	/* not the form: fine */
	CHECK_EQ(scs_dir_prepare_name(D, dp, id, "x (duplicate 0123ABCD).txt", rp2, sizeof rp2), 0);
	CHECK_EQ(scs_dir_prepare_name(D, dp, id, "x (duplicate 0123abc).txt", rp2, sizeof rp2), 0);
	CHECK_EQ(scs_dir_prepare_name(D, dp, id, "x (duplicates 0123abcd).txt", rp2, sizeof rp2), 0);
	/* a duplicate of a hidden object stays hidden */
	snprintf(rp2, sizeof rp2, "%s/%s (duplicate 0000ffff)", dp, SCS_DIRID_FILE);
	touch(rp2);
	CHECK_EQ(list(dp, id, 0, &l), 0);
	CHECK_EQ(l.n, 3);
	CHECK_EQ(l.nbad, 0);
}

static void test_join(void)
{
	char out[8];
	CHECK_EQ(scs_path_join(out, sizeof out, "", "abc"), 0);
	CHECK(!strcmp(out, "abc"));
	CHECK_EQ(scs_path_join(out, sizeof out, "ab", "cd"), 0);
	CHECK(!strcmp(out, "ab/cd"));
	CHECK_EQ(scs_path_join(out, sizeof out, "abc", "defg"), -ENAMETOOLONG);
	CHECK_EQ(scs_path_join(out, sizeof out, "abc", "def"), 0);
}

int main(void)
{
	for (int e = 0; e < 3; e++)
		memset(ekeys[e], 0x10 + e, SCS_KEY_LEN);
	tmpdir = unit_tmpdir("dir");
	scs_err err;
	CHECK_EQ(scs_backend_local_open(tmpdir, &be, &err), 0);
	if (!be)
		return unit_done("dir");
	CHECK_EQ(scs_dir_new(be, &K, root_id, &D), 0);
	test_join();
	test_basic();
	test_long_names();
	test_decorated();
	test_tampered_dir();
	test_epochs();
	test_symlinks();
	test_walk();
	test_conflict_names();
	test_duplicates();
	scs_dir_free(D);
	scs_backend_close(be);
	char cmd[PATH_MAX + 16];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", tmpdir);
	free(tmpdir);
	return unit_done("dir");
}
