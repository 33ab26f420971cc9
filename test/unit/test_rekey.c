/* test_rekey.c - the re-key pass on a real two-epoch group folder: files,
 * names, a long name, a subdirectory and symlinks written in epoch 1, a
 * member removed (epoch 2), the pass interrupted after k files and run
 * again until it converges; contents identical, everything in epoch 2,
 * stale temporaries removed; then the retire entry and its rules (admin
 * only, the bound only rises, never past the current epoch) and the vault
 * refusing the retired epoch; and a member's own queued writes moved to
 * the current epoch after theirs was retired. */
#include "unit.h"

#include "scs/config.h"
#include "scs/dir.h"
#include "scs/file.h"
#include "scs/identity.h"
#include "scs/keyring.h"
#include "scs/rekey.h"
#include "scs/vault.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NFILES 6

static char *tmp;
static scs_backend *be;
static scs_vault *v;
static scs_dirctx *d;
static const scs_keyctx *kc;
static char names[NFILES][300];
static uint8_t *data[NFILES];
static size_t sizes[NFILES] = { 0, 1, 32768, 70000, 5000, 123457 };

/* An identity (created on disk under its own XDG_DATA_HOME, unlocked). */
static scs_identity *person(const char *name)
{
	char dir[4200];
	scs_err err = { 0 };
	scs_identity *id = NULL;
	snprintf(dir, sizeof dir, "%s/data-%s", tmp, name);
	setenv("XDG_DATA_HOME", dir, 1);
	if (scs_identity_create(name, "pw", 2, &id, &err) < 0) {
		fprintf(stderr, "identity %s: %s\n", name, err.msg);
		exit(2);
	}
	return id;
}

/* Sign change c on top of the stored keyring, verify it and store it. */
static int change(const scs_identity *signer, const struct scs_kr_change *c, scs_err *err)
{
	scs_keyring *kr = NULL;
	uint8_t (*keys)[SCS_KEY_LEN] = NULL, *e = NULL;
	uint32_t n = 0;
	size_t len = 0;
	int r = scs_keyring_load(be, &kr, err);
	if (r == 0)
		r = scs_keyring_unlock(kr, signer, &keys, &n, err);
	if (r == 0)
		r = scs_keyring_make_entry(kr, c, signer, (const uint8_t (*)[SCS_KEY_LEN])keys, n,
					   NULL, &e, &len, err);
	uint32_t seq = kr ? kr->seq + 1 : 0;
	if (r == 0)
		r = scs_keyring_apply(&kr, seq, e, len, err);
	if (r == 0)
		r = scs_keyring_publish(be, seq, e, len, err);
	scs_keyring_keys_free(keys, n);
	scs_keyring_free(kr);
	free(e);
	return r;
}

static void write_file(const char *dpath, const uint8_t *id, const char *name,
		       const uint8_t *buf, size_t n)
{
	char rp[SCS_RPATH_MAX];
	scs_file *f = NULL;
	CHECK_EQ(scs_dir_prepare_name(d, dpath, id, name, rp, sizeof rp), 0);
	CHECK_EQ(scs_file_create(be, rp, 0644, kc, name, &f), 0);
	if (!f)
		return;
	if (n)
		CHECK_EQ(scs_file_pwrite(f, buf, n, 0), (long long)n);
	CHECK_EQ(scs_file_close(f), 0);
}

/* The plaintext of name in directory (dpath, id), its epoch, its name's epoch. */
static uint8_t *read_back(const char *dpath, const uint8_t *id, const char *name, size_t *n,
			  uint32_t *epoch)
{
	char rp[SCS_RPATH_MAX];
	scs_file *f = NULL;
	if (scs_dir_lookup(d, dpath, id, name, rp, sizeof rp, NULL) < 0 ||
	    scs_file_open(be, rp, 0, kc, name, &f) < 0)
		return NULL;
	*n = (size_t)scs_file_size(f);
	*epoch = scs_file_epoch(f);
	uint8_t *buf = malloc(*n + 1);
	CHECK_EQ(scs_file_pread(f, buf, *n, 0), (long long)*n);
	scs_file_close(f);
	return buf;
}

struct epochs {
	unsigned n, old_names, bad;
};

static int count_names(void *arg, const struct scs_walk_entry *e)
{
	struct epochs *c = arg;
	c->n++;
	c->old_names += e->name_epoch < 2;
	c->bad += e->bad != 0;
	return 0;
}

static int stop_after_2(void *arg, const struct scs_rekey_progress *p)
{
	int *calls = arg;
	(*calls)++;
	CHECK(p->files_total >= p->files_done && p->bytes_total >= p->bytes_done);
	/* the pass's progress record, for `scsctl rekey status` */
	struct scs_rekey_record r;
	CHECK_EQ(scs_rekey_record_read(scs_vault_root_dir_id(v), 2, (int64_t)time(NULL) * 1000, &r), 0);
	CHECK(r.pid == getpid() && r.files_total == NFILES && r.files_done <= r.files_total);
	return p->files_done >= 2;
}

static void check_all(const uint8_t *root, const uint8_t *sub_id, uint32_t want_epoch)
{
	char srp[SCS_RPATH_MAX];
	CHECK_EQ(scs_dir_lookup(d, "", root, "sub", srp, sizeof srp, NULL), 0);
	for (int i = 0; i < NFILES; i++) {
		size_t n = 0;
		uint32_t ep = 0;
		uint8_t *b = i < 4 ? read_back("", root, names[i], &n, &ep)
				   : read_back(srp, sub_id, names[i], &n, &ep);
		CHECK(b != NULL);
		if (!b)
			continue;
		CHECK_EQ(n, sizes[i]);
		CHECK(n == sizes[i] && memcmp(b, data[i], n) == 0);
		if (want_epoch)
			CHECK_EQ(ep, want_epoch);
		free(b);
	}
}

/* A file whose records all pass GCM but are not the ones its writer signed
 * (record 1 put back from before an edit: what a former member holding the
 * old file key could do) is never re-encrypted into a valid file: the pass
 * reports it damaged, leaves it, and does not converge. */
static void forged_file_blocks_retirement(const uint8_t *root)
{
	scs_err err = { 0 };
	char rp[SCS_RPATH_MAX];
	uint8_t *buf = malloc(70000), saved[SCS_RECORD_SIZE];
	scs_file *f = NULL;
	scs_obj *o = NULL;
	memset(buf, 'f', 70000);
	write_file("", root, "forged", buf, 70000);
	CHECK_EQ(scs_dir_lookup(d, "", root, "forged", rp, sizeof rp, NULL), 0);
	CHECK_EQ(scs_be_open(be, rp, O_RDWR, 0, &o), 0);
	if (!o)
		return;
	CHECK_EQ(scs_obj_pread(o, saved, sizeof saved, scs_record_offset(1)), (long long)sizeof saved);
	CHECK_EQ(scs_file_open(be, rp, 1, kc, "forged", &f), 0);
	if (f) {
		CHECK_EQ(scs_file_pwrite(f, "edited", 6, SCS_CHUNK_SIZE + 5), 6);
		CHECK_EQ(scs_file_close(f), 0);
	}
	CHECK_EQ(scs_obj_pwrite(o, saved, sizeof saved, scs_record_offset(1)), (long long)sizeof saved);
	scs_obj_close(o);
	/* A new epoch; the pass must not launder the file into it. */
	struct scs_kr_change rot = { .kind = SCS_KR_ROTATE };
	const scs_identity *me = scs_vault_identity(v);
	CHECK_EQ(change(me, &rot, &err), 0);
	CHECK_EQ(scs_vault_refresh(v, &err), 0);
	scs_dir_forget_keys(d);
	struct scs_rekey_result res;
	CHECK_EQ(scs_rekey_run(be, kc, root, NULL, NULL, &res, &err), -EAGAIN);
	CHECK_EQ(res.damaged, 1);
	CHECK_EQ(res.left, 1);
	CHECK(strstr(err.msg, "1 damaged") != NULL);
	char tmpl[SCS_RPATH_MAX + 40];
	snprintf(tmpl, sizeof tmpl, "%s.new", rp);
	CHECK_EQ(scs_file_rewrite(be, rp, tmpl, 0600, kc, "forged", &err), -EBADMSG);
	CHECK(strstr(err.msg, "content hash") != NULL);
	struct scs_rekey_scan sc;
	CHECK_EQ(scs_rekey_scan(be, 4, 0, &sc, &err), 0);
	CHECK_EQ(sc.old_files, 1);
	free(buf);
}

/* The progress record of a running pass: strict parse, round trip, and
 * what readers ignore (another epoch, a gone process, stale, damaged). */
static void progress_record(const uint8_t *root)
{
	char path[4200], buf[SCS_REKEY_RECORD_MAX + 64];
	struct scs_rekey_record r, w = { .pid = getpid(), .epoch = 2, .started = 1000,
					 .updated = 5000, .files_done = 3, .files_total = 12,
					 .bytes_done = 4096, .bytes_total = 123456 };
	size_t n = scs_rekey_record_encode(&w, buf, sizeof buf);
	CHECK_EQ(scs_rekey_record_parse(buf, n, &r), 0);
	/* field by field: the padding after epoch is not part of the record */
	CHECK(r.pid == w.pid && r.epoch == w.epoch && r.started == w.started &&
	      r.updated == w.updated && r.files_done == w.files_done &&
	      r.files_total == w.files_total && r.bytes_done == w.bytes_done &&
	      r.bytes_total == w.bytes_total);
	/* every proper prefix, and one byte more, are refused */
	for (size_t i = 0; i < n; i++)
		CHECK_EQ(scs_rekey_record_parse(buf, i, &r), -EBADMSG);
	buf[n] = '\n';
	CHECK_EQ(scs_rekey_record_parse(buf, n + 1, &r), -EBADMSG);
	static const char *const bad[] = {
		"scsfs-rekey-progress 2\npid 1\nepoch 2\nstarted 1\nupdated 2\nfiles 0 1\nbytes 0 1\n",
		"scsfs-rekey-progress 1\npid 0\nepoch 2\nstarted 1\nupdated 2\nfiles 0 1\nbytes 0 1\n",
		"scsfs-rekey-progress 1\npid 1\nepoch 2\nstarted 3\nupdated 2\nfiles 0 1\nbytes 0 1\n",
		"scsfs-rekey-progress 1\npid 1\nepoch 2\nstarted 1\nupdated 2\nfiles 2 1\nbytes 0 1\n",
		"scsfs-rekey-progress 1\npid 1\nepoch 2\nstarted 1\nupdated 2\nfiles 0 1\nbytes 0 01\n",
		"scsfs-rekey-progress 1\npid -1\nepoch 2\nstarted 1\nupdated 2\nfiles 0 1\nbytes 0 1\n",
		"scsfs-rekey-progress 1\npid 1\nepoch 4294967296\nstarted 1\nupdated 2\nfiles 0 1\n"
		"bytes 0 1\n",
		"scsfs-rekey-progress 1\npid 1\nepoch 2\nstarted 1\nupdated 2\nfiles 0 1\n"
		"bytes 0 99999999999999999999\n",
		"scsfs-rekey-progress 1\nepoch 2\npid 1\nstarted 1\nupdated 2\nfiles 0 1\nbytes 0 1\n",
		"scsfs-rekey-progress 1\npid 1\nepoch 2\nstarted 1\nupdated 2\nfiles 0  1\nbytes 0 1\n",
		"scsfs-rekey-progress 1\npid 1\nepoch 2\nstarted 1\nupdated 9300000000000000000\n"
		"files 0 1\nbytes 0 1\n",
	};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
		CHECK_EQ(scs_rekey_record_parse(bad[i], strlen(bad[i]), &r), -EBADMSG);
	memset(buf, '1', sizeof buf);
	CHECK_EQ(scs_rekey_record_parse(buf, sizeof buf, &r), -EBADMSG);

	/* Reading: ours, for epoch 2, updated at 5 s. */
	char dir[4200];
	CHECK_EQ(scs_xdg_path(SCS_XDG_CACHE, "rekey", dir, sizeof dir), 0);
	CHECK_EQ(scs_mkdir_p(dir, 0700), 0);
	CHECK_EQ(scs_rekey_record_path(root, path, sizeof path), 0);
	CHECK(strncmp(path, dir, strlen(dir)) == 0);
	n = scs_rekey_record_encode(&w, buf, sizeof buf);
	CHECK_EQ(scs_local_write_atomic(path, buf, n, 0600), 0);
	CHECK_EQ(scs_rekey_record_read(root, 2, 6000, &r), 0);
	CHECK_EQ(r.files_done, 3);
	CHECK_EQ(scs_rekey_record_read(root, 3, 6000, &r), -ENOENT);
	CHECK_EQ(scs_rekey_record_read(root, 2, 5000 + SCS_REKEY_RECORD_STALE * 1000LL + 1, &r),
		 -ENOENT);
	/* a process that is gone */
	pid_t child = fork();
	if (child == 0)
		_exit(0);
	CHECK(child > 0 && waitpid(child, NULL, 0) == child);
	w.pid = child;
	n = scs_rekey_record_encode(&w, buf, sizeof buf);
	CHECK_EQ(scs_local_write_atomic(path, buf, n, 0600), 0);
	CHECK_EQ(scs_rekey_record_read(root, 2, 6000, &r), -ENOENT);
	/* damaged, or too large */
	CHECK_EQ(scs_local_write_atomic(path, "scsfs-rekey-progress 1\npid", 27, 0600), 0);
	CHECK_EQ(scs_rekey_record_read(root, 2, 6000, &r), -ENOENT);
	memset(buf, 'x', sizeof buf);
	CHECK_EQ(scs_local_write_atomic(path, buf, sizeof buf, 0600), 0);
	CHECK_EQ(scs_rekey_record_read(root, 2, 6000, &r), -ENOENT);
	unlink(path);
}

/* A copy of the object at rp in a file of its own (what an upload queue
 * would send): its descriptor (unlinked), *size, and its header. */
static int snapshot(const char *rp, uint64_t *size, uint8_t hb[SCS_HEADER_SIZE])
{
	char path[4200];
	scs_obj *o = NULL;
	struct scs_attr a;
	snprintf(path, sizeof path, "%s/snapshot", tmp);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	unlink(path);
	CHECK(fd >= 0);
	CHECK_EQ(scs_be_open(be, rp, O_RDONLY, 0, &o), 0);
	if (fd < 0 || !o)
		return -1;
	CHECK_EQ(scs_obj_fstat(o, &a), 0);
	uint8_t *buf = malloc(a.size);
	CHECK_EQ(scs_obj_pread(o, buf, a.size, 0), (long long)a.size);
	CHECK_EQ(pwrite(fd, buf, a.size, 0), (long long)a.size);
	memcpy(hb, buf, SCS_HEADER_SIZE);
	*size = a.size;
	free(buf);
	scs_obj_close(o);
	return fd;
}

/* This member's own writes after their epoch was retired (a gdrive: upload
 * queued before the mount saw the new keyring): scs_vault_keyctx_own opens
 * them, nobody else's; scs_rekey_open_fd reads the queued bytes (and
 * refuses damaged ones); scs_rekey_own moves exactly the queued version;
 * scs_rekey_name re-encrypts a name of an older epoch (never over an
 * existing entry); scs_rekey_link a link's target. */
static void own_writes(const uint8_t *root, const scs_identity *me, const scs_identity *other)
{
	scs_err err = { 0 };
	const scs_keyctx *own = scs_vault_keyctx_own(v);
	char rp[SCS_RPATH_MAX], lrp[SCS_RPATH_MAX], drp[SCS_RPATH_MAX], out[SCS_RPATH_MAX];
	char plain[SCS_NAME_MAX + 1], lname[200];
	uint8_t buf[40000], hb[SCS_HEADER_SIZE], key[SCS_KEY_LEN], pub[32];
	for (size_t i = 0; i < sizeof buf; i++)
		buf[i] = (uint8_t)(i * 13);
	memset(lname, 'Q', 190);
	snprintf(lname + 190, 10, ".txt");
	uint32_t was = scs_vault_epoch(v);
	write_file("", root, "queued", buf, sizeof buf);
	write_file("", root, lname, buf, 100);
	write_file("", root, "taken", buf, 10);
	CHECK_EQ(scs_dir_lookup(d, "", root, "queued", rp, sizeof rp, NULL), 0);
	CHECK_EQ(scs_dir_lookup(d, "", root, lname, lrp, sizeof lrp, NULL), 0);
	CHECK_EQ(scs_dir_lookup(d, "", root, "taken", drp, sizeof drp, NULL), 0);
	uint64_t size = 0;
	int fd = snapshot(rp, &size, hb);
	char lnk[SCS_RPATH_MAX], stored[SCS_SYMLINK_ENC_BUF], target[SCS_SYMLINK_MAX + 1];
	CHECK_EQ(scs_dir_symlink(d, "", root, "lnk", "queued", lnk, sizeof lnk), 0);
	CHECK(scs_be_readlink(be, lnk, stored, sizeof stored) > 0);
	/* A new epoch, and the one they were written in retired. */
	struct scs_kr_change rot = { .kind = SCS_KR_ROTATE };
	struct scs_kr_change ret = { .kind = SCS_KR_RETIRE, .retire_below = was + 1 };
	CHECK_EQ(change(me, &rot, &err), 0);
	CHECK_EQ(change(me, &ret, &err), 0);
	CHECK_EQ(scs_vault_refresh(v, &err), 0);
	scs_dir_forget_keys(d);
	CHECK_EQ(scs_vault_epoch(v), was + 1);
	write_file("", root, "taken", buf, 20);    /* that name, in the new epoch */

	CHECK_EQ(kc->epoch_key(kc->arg, was, key), -EKEYREVOKED);
	CHECK_EQ(own->epoch_key(own->arg, was, key), 0);
	scs_header h = { .epoch = was };
	CHECK_EQ(own->writer_pub(own->arg, me->fpr, &h, pub, NULL), 0);
	CHECK_EQ(own->writer_pub(own->arg, other->fpr, &h, pub, NULL), -EKEYREVOKED);
	CHECK_EQ(kc->writer_pub(kc->arg, me->fpr, &h, pub, NULL), -EKEYREVOKED);

	/* The queued bytes: read with this member's keys only, whole. */
	scs_file *f = NULL;
	CHECK_EQ(scs_rekey_open_fd(fd, size, rp, kc, "queued", &f, &err), -EACCES);
	CHECK_EQ(scs_rekey_open_fd(fd, size, rp, own, "queued", &f, &err), 0);
	if (f) {
		uint8_t back[sizeof buf];
		CHECK_EQ(scs_file_size(f), sizeof buf);
		CHECK_EQ(scs_file_pread(f, back, sizeof back, 0), (long long)sizeof back);
		CHECK_MEM(back, buf, sizeof buf);
		scs_file_close(f);
	}
	uint8_t c;
	CHECK_EQ(pread(fd, &c, 1, (off_t)size - 3), 1);
	c ^= 1;
	CHECK_EQ(pwrite(fd, &c, 1, (off_t)size - 3), 1);
	f = NULL;
	CHECK_EQ(scs_rekey_open_fd(fd, size, rp, own, "queued", &f, &err), -EBADMSG);
	CHECK(f == NULL);
	close(fd);

	/* Moved only as the version queued. */
	struct scs_attr na;
	uint8_t other_hb[SCS_HEADER_SIZE];
	memcpy(other_hb, hb, sizeof other_hb);
	other_hb[100] ^= 1;
	CHECK_EQ(scs_rekey_own(be, own, rp, "queued", other_hb, &na, &err), 0);
	CHECK_EQ(scs_rekey_file(be, kc, rp, "queued", 0, &na, &err), -EACCES);
	CHECK_EQ(scs_rekey_own(be, own, rp, "queued", hb, &na, &err), 1);
	CHECK_EQ(scs_rekey_own(be, own, rp, "queued", hb, &na, &err), 0);   /* done */
	scs_file *g = NULL;
	CHECK_EQ(scs_file_open(be, rp, 0, kc, "queued", &g), 0);
	if (g) {
		uint8_t back[sizeof buf];
		CHECK_EQ(scs_file_epoch(g), was + 1);
		CHECK_EQ(scs_file_pread(g, back, sizeof back, 0), (long long)sizeof back);
		CHECK_MEM(back, buf, sizeof buf);
		scs_file_close(g);
	}

	/* A link's target: with this member's keys, and only if it is there. */
	CHECK_EQ(scs_dir_readlink(d, lnk, root, target), -EACCES);
	CHECK_EQ(scs_rekey_link(be, kc, lnk, root, stored), -EACCES);
	char gone[SCS_RPATH_MAX + 8];
	snprintf(gone, sizeof gone, "%s-gone", lnk);
	CHECK_EQ(scs_rekey_link(be, own, gone, root, stored), 0);
	CHECK_EQ(scs_be_stat(be, gone, &na), -ENOENT);
	CHECK_EQ(scs_rekey_link(be, own, lnk, root, stored), 1);
	CHECK_EQ(scs_dir_readlink(d, lnk, root, target), 6);
	CHECK(strcmp(target, "queued") == 0);
	char now_stored[SCS_SYMLINK_ENC_BUF];
	CHECK(scs_be_readlink(be, lnk, now_stored, sizeof now_stored) > 0);
	CHECK_EQ(scs_rekey_link(be, own, lnk, root, now_stored), 0);

	/* Names: old ones re-encrypted, current and temporary ones left. */
	scs_dirctx *od = NULL;
	CHECK_EQ(scs_dir_new(be, own, root, &od), 0);
	CHECK_EQ(scs_rekey_name(be, own, od, "", root, rp, plain, out, sizeof out), 1);
	CHECK(strcmp(plain, "queued") == 0 && strcmp(out, rp) != 0);
	char now[SCS_RPATH_MAX];
	CHECK_EQ(scs_dir_lookup(d, "", root, "queued", now, sizeof now, NULL), 0);
	CHECK(strcmp(now, out) == 0);
	CHECK_EQ(scs_rekey_name(be, own, od, "", root, out, plain, now, sizeof now), 0);
	CHECK(strcmp(now, out) == 0);
	CHECK_EQ(scs_rekey_name(be, own, od, "", root, lrp, plain, out, sizeof out), 1);
	CHECK(strcmp(plain, lname) == 0);
	char side[SCS_RPATH_MAX + 8];
	struct scs_attr a;
	snprintf(side, sizeof side, "%s" SCS_LONG_SUFFIX, lrp);
	CHECK_EQ(scs_be_stat(be, side, &a), -ENOENT);   /* the old one's side object went */
	CHECK_EQ(scs_dir_lookup(d, "", root, lname, now, sizeof now, NULL), 0);
	CHECK(strcmp(now, out) == 0);
	CHECK_EQ(scs_rekey_name(be, own, od, "", root, drp, plain, out, sizeof out), -EEXIST);
	CHECK(strcmp(out, drp) == 0);
	CHECK_EQ(scs_be_stat(be, drp, &a), 0);          /* left where it was */
	char tmpn[SCS_RPATH_MAX + 40];
	snprintf(tmpn, sizeof tmpn, "%s" SCS_TMP_INFIX "0123456789abcdef", drp);
	CHECK_EQ(scs_rekey_name(be, own, od, "", root, tmpn, plain, out, sizeof out), 0);
	scs_dir_free(od);

	/* A look at the keyring begun since a given moment is not repeated:
	 * the entry written after the last look shows only with a later one. */
	CHECK_EQ(change(me, &rot, &err), 0);
	CHECK_EQ(scs_vault_refresh_since(v, 0, &err), 0);
	CHECK_EQ(scs_vault_epoch(v), was + 1);
	CHECK_EQ(scs_vault_refresh_since(v, scs_vault_clock(), &err), 0);
	CHECK_EQ(scs_vault_epoch(v), was + 2);
}

int main(void)
{
	scs_err err = { 0 };
	char remote[4200], dir[4200], passf[4200];
	tmp = unit_tmpdir("rekey");
	scs_identity *bob = person("bob");
	scs_identity *me = person("me");      /* XDG_DATA_HOME stays mine */
	snprintf(dir, sizeof dir, "%s/config", tmp);
	setenv("XDG_CONFIG_HOME", dir, 1);
	snprintf(dir, sizeof dir, "%s/cache", tmp);
	setenv("XDG_CACHE_HOME", dir, 1);
	snprintf(dir, sizeof dir, "%s/remote/.scsfs/keyring", tmp);
	snprintf(remote, sizeof remote, "%s/remote", tmp);
	snprintf(passf, sizeof passf, "%s/pass", tmp);
	CHECK_EQ(scs_mkdir_p(dir, 0755), 0);
	CHECK_EQ(scs_local_write_atomic(passf, "pw\n", 3, 0600), 0);
	CHECK_EQ(scs_backend_local_open(remote, &be, &err), 0);

	/* Genesis (pinned), then bob joins: epoch 1. */
	uint8_t k1[SCS_KEY_LEN], *g = NULL;
	size_t glen = 0;
	scs_keyring *kr = NULL;
	CHECK_EQ(scs_keyring_make_genesis(me, k1, &g, &glen, &err), 0);
	CHECK_EQ(scs_keyring_publish(be, 0, g, glen, &err), 0);
	CHECK_EQ(scs_keyring_load(be, &kr, &err), 0);
	CHECK_EQ(scs_keyring_pin_write(kr, &err), 0);
	scs_keyring_free(kr);
	free(g);
	struct scs_kr_change add = { .kind = SCS_KR_ADD, .member = bob, .role = SCS_ROLE_MEMBER };
	CHECK_EQ(change(me, &add, &err), 0);

	snprintf(remote, sizeof remote, "local:%s/remote", tmp);
	struct scs_vault_opts o = { .passphrase_file = passf, .no_prompt = 1 };
	CHECK_EQ(scs_vault_open(remote, &o, &v, &err), 0);
	if (!v)
		return unit_done("rekey");
	kc = scs_vault_keyctx(v);
	const uint8_t *root = scs_vault_root_dir_id(v);
	CHECK_EQ(scs_dir_new(be, kc, root, &d), 0);

	/* Epoch 1: files at the root and in sub/, a long name, two symlinks. */
	uint8_t sub_id[SCS_DIR_ID_LEN];
	char rp[SCS_RPATH_MAX];
	CHECK_EQ(scs_dir_mkdir(d, "", root, "sub", 0755, rp, sizeof rp, sub_id), 0);
	for (int i = 0; i < NFILES; i++) {
		snprintf(names[i], sizeof names[i], "file-%d.txt", i);
		data[i] = malloc(sizes[i] + 1);
		for (size_t j = 0; j < sizes[i]; j++)
			data[i][j] = (uint8_t)(j * 7 + (size_t)i);
	}
	memset(names[3], 'L', 180);           /* a long name: side object */
	snprintf(names[3] + 180, 20, ".bin");
	for (int i = 0; i < NFILES; i++)
		write_file(i < 4 ? "" : rp, i < 4 ? root : sub_id, names[i], data[i], sizes[i]);
	char lp[SCS_RPATH_MAX];
	CHECK_EQ(scs_dir_symlink(d, "", root, "link", "file-0.txt", lp, sizeof lp), 0);
	CHECK_EQ(scs_dir_symlink(d, rp, sub_id, "up", "../file-1.txt", lp, sizeof lp), 0);
	/* A temporary object of a crashed pass, and someone else's temporary. */
	char stale[SCS_RPATH_MAX + 40], other[SCS_RPATH_MAX + 40];
	snprintf(stale, sizeof stale, "%s/x" SCS_TMP_INFIX SCS_REKEY_TMP_TAG "0badf00d", rp);
	snprintf(other, sizeof other, "%s/x" SCS_TMP_INFIX "0123456789abcdef", rp);
	CHECK_EQ(scs_be_write_file(be, stale, "junk", 4), 0);
	CHECK_EQ(scs_be_write_file(be, other, "junk", 4), 0);

	/* Nothing to do in epoch 1. */
	struct scs_rekey_result res;
	struct scs_rekey_scan sc;
	CHECK_EQ(scs_rekey_scan(be, 1, 0, &sc, &err), 0);
	CHECK_EQ(sc.files, NFILES);
	CHECK_EQ(sc.old_files, 0);
	CHECK_EQ(sc.temps, 1);

	/* bob leaves: epoch 2. */
	struct scs_kr_change rm = { .kind = SCS_KR_REMOVE, .subject = bob->fpr };
	CHECK_EQ(change(me, &rm, &err), 0);
	CHECK_EQ(scs_vault_refresh(v, &err), 0);
	scs_dir_forget_keys(d);
	CHECK_EQ(scs_vault_epoch(v), 2);
	CHECK_EQ(scs_rekey_scan(be, 2, 0, &sc, &err), 0);
	CHECK_EQ(sc.old_files, NFILES);
	CHECK_EQ(sc.old_links, 2);
	uint64_t total = 0;
	for (int i = 0; i < NFILES; i++)
		total += scs_object_size(sizes[i]);
	CHECK_EQ(sc.old_bytes, total);
	/* Not yet: the pass must finish first (the bound may not pass the epoch). */
	CHECK_EQ(scs_rekey_retire(v, 3, &err), -EBADMSG);

	/* Interrupted after 2 files: resumable, nothing lost. */
	int calls = 0;
	CHECK_EQ(scs_rekey_run(be, kc, root, stop_after_2, &calls, &res, &err), -EINTR);
	CHECK(calls >= 2);
	CHECK_EQ(res.files, 2);
	uint64_t links1 = res.links;           /* the walk order decides */
	CHECK_EQ(scs_rekey_scan(be, 2, 0, &sc, &err), 0);
	CHECK_EQ(sc.old_files, NFILES - 2);
	CHECK_EQ(sc.temps, 0);                  /* the stale one went first */
	struct stat st;
	snprintf(dir, sizeof dir, "%s/remote/%s", tmp, other);
	CHECK_EQ(stat(dir, &st), 0);            /* not ours: left alone */
	check_all(root, sub_id, 0);             /* epochs differ per file now */

	/* Run again: converges, and the progress record is gone after it. */
	char rec[4200];
	CHECK_EQ(scs_rekey_record_path(root, rec, sizeof rec), 0);
	CHECK_EQ(access(rec, F_OK), -1);
	CHECK_EQ(scs_rekey_run(be, kc, root, NULL, NULL, &res, &err), 0);
	CHECK_EQ(access(rec, F_OK), -1);
	CHECK_EQ(res.files, NFILES - 2);
	CHECK_EQ(links1 + res.links, 2);
	CHECK_EQ(res.dirs, 1);
	CHECK_EQ(res.left, 0);
	CHECK_EQ(scs_rekey_scan(be, 2, 0, &sc, &err), 0);
	CHECK_EQ(sc.old_files + sc.old_links, 0);
	CHECK_EQ(sc.files, NFILES);
	struct epochs c = { 0 };
	CHECK_EQ(scs_dir_walk(d, "", root, "", count_names, &c), 0);
	CHECK_EQ(c.n, NFILES + 3);              /* files, 2 links, sub */
	CHECK_EQ(c.old_names, 0);
	CHECK_EQ(c.bad, 0);
	check_all(root, sub_id, 2);
	char target[SCS_SYMLINK_MAX + 1];
	CHECK_EQ(scs_dir_lookup(d, "", root, "link", lp, sizeof lp, NULL), 0);
	CHECK_EQ(scs_dir_readlink(d, lp, root, target), 10);
	CHECK(strcmp(target, "file-0.txt") == 0);
	/* Idempotent: a third run does nothing. */
	CHECK_EQ(scs_rekey_run(be, kc, root, NULL, NULL, &res, &err), 0);
	CHECK_EQ(res.files + res.names + res.links + res.dirs, 0);

	/* Retirement. */
	uint8_t key[SCS_KEY_LEN], pub[32];
	CHECK_EQ(kc->epoch_key(kc->arg, 1, key), 0);
	CHECK_EQ(scs_rekey_retire(v, 2, &err), 0);
	CHECK_EQ(scs_vault_keyring(v)->retired_below, 2);
	CHECK_EQ(kc->epoch_key(kc->arg, 1, key), -EKEYREVOKED);
	CHECK_EQ(kc->epoch_key(kc->arg, 2, key), 0);
	CHECK_EQ(kc->writer_pub(kc->arg, me->fpr, &(scs_header){ .epoch = 1 }, pub, NULL), -EKEYREVOKED);
	CHECK_EQ(kc->writer_pub(kc->arg, me->fpr, &(scs_header){ .epoch = 2 }, pub, NULL), 0);
	const uint8_t (*nk)[SCS_SIV_KEY_LEN];
	const uint32_t *eps;
	CHECK_EQ(scs_vault_name_keys(v, &nk, &eps), 1);
	CHECK_EQ(eps[0], 2);
	CHECK_EQ(scs_rekey_retire(v, 2, &err), 0);   /* already: no second entry */
	CHECK_EQ(scs_keyring_load(be, &kr, &err), 0);
	CHECK_EQ(kr->seq, 3);
	CHECK_EQ(kr->entries[3].kind, SCS_KR_RETIRE);
	CHECK(strcmp(scs_kr_kind_name(SCS_KR_RETIRE), "retire") == 0);
	scs_keyring_free(kr);

	/* Retire rules: the bound only rises, never past the epoch, admin only. */
	struct scs_kr_change again = { .kind = SCS_KR_RETIRE, .retire_below = 2 };
	CHECK_EQ(change(me, &again, &err), -EBADMSG);
	CHECK(strstr(err.msg, "must rise") != NULL);
	struct scs_kr_change past = { .kind = SCS_KR_RETIRE, .retire_below = 3 };
	CHECK_EQ(change(me, &past, &err), -EBADMSG);
	scs_identity *carol = person("carol");
	snprintf(dir, sizeof dir, "%s/data-me", tmp);
	setenv("XDG_DATA_HOME", dir, 1);
	struct scs_kr_change addc = { .kind = SCS_KR_ADD, .member = carol, .role = SCS_ROLE_MEMBER };
	CHECK_EQ(change(me, &addc, &err), 0);
	struct scs_kr_change rot = { .kind = SCS_KR_ROTATE };
	CHECK_EQ(change(me, &rot, &err), 0);
	CHECK_EQ(scs_vault_refresh(v, &err), 0);
	scs_dir_forget_keys(d);
	CHECK_EQ(scs_rekey_run(be, kc, root, NULL, NULL, &res, &err), 0);
	CHECK_EQ(res.files, NFILES);
	check_all(root, sub_id, 3);
	struct scs_kr_change ok3 = { .kind = SCS_KR_RETIRE, .retire_below = 3 };
	CHECK_EQ(change(carol, &ok3, &err), -EBADMSG);
	CHECK(strstr(err.msg, "not an admin") != NULL);
	CHECK_EQ(change(me, &ok3, &err), 0);
	CHECK_EQ(scs_vault_refresh(v, &err), 0);
	scs_dir_forget_keys(d);
	forged_file_blocks_retirement(root);
	progress_record(root);
	own_writes(root, me, bob);

	scs_dir_free(d);
	scs_vault_close(v);
	scs_backend_close(be);
	for (int i = 0; i < NFILES; i++)
		free(data[i]);
	scs_identity_free(me);
	scs_identity_free(bob);
	scs_identity_free(carol);
	return unit_done("rekey");
}
