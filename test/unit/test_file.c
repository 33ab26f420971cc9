/* test_file.c - the content engine against a shadow buffer, and tampering. */
#include "unit.h"

#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include "scs/backend.h"
#include "scs/crypto.h"
#include "scs/file.h"
#include "scs/format.h"
#include "scs/keyctx.h"

#define C SCS_CHUNK_SIZE

/* ---- a fake group: epoch 1 with a fixed key; one or two writers ---- */

struct fake {
	uint32_t epoch;
	uint8_t key[SCS_KEY_LEN];
	int key_known;                   /* 0: epoch_key says -ENOKEY */
	uint8_t fpr[SCS_FPR_LEN];
	uint8_t pub[SCS_ED25519_PUB_LEN];
	int accept_other;                /* also accept fake_other as a writer */
	int reject_self;                 /* we were not a member in that epoch */
};

static struct fake *fake_other;

static uint32_t fk_write_epoch(void *arg) { return ((struct fake *)arg)->epoch; }

static int fk_epoch_key(void *arg, uint32_t epoch, uint8_t key[SCS_KEY_LEN])
{
	struct fake *f = arg;
	if (epoch < 1 || epoch > f->epoch || !f->key_known)
		return -ENOKEY;
	memcpy(key, f->key, SCS_KEY_LEN);
	key[0] ^= (uint8_t)(epoch - 1);          /* one key per epoch */
	return 0;
}

static int fk_writer_pub(void *arg, const uint8_t fpr[SCS_FPR_LEN], const scs_header *h,
			 uint8_t pub[SCS_ED25519_PUB_LEN], scs_err *why)
{
	struct fake *f = arg;
	(void)h;
	(void)why;
	if (!memcmp(fpr, f->fpr, SCS_FPR_LEN) && !f->reject_self) {
		memcpy(pub, f->pub, sizeof f->pub);
		return 0;
	}
	if (f->accept_other && fake_other && !memcmp(fpr, fake_other->fpr, SCS_FPR_LEN)) {
		memcpy(pub, fake_other->pub, sizeof fake_other->pub);
		return 0;
	}
	return -EPERM;
}

static void fake_init(struct fake *f, scs_keyctx *k, uint8_t fpr_byte, const uint8_t *epoch_key)
{
	memset(f, 0, sizeof *f);
	f->epoch = 1;
	memcpy(f->key, epoch_key, SCS_KEY_LEN);
	f->key_known = 1;
	memset(f->fpr, fpr_byte, sizeof f->fpr);
	EVP_PKEY *sk = NULL;
	if (scs_ed25519_generate(&sk) || scs_ed25519_public(sk, f->pub)) {
		fprintf(stderr, "cannot make an Ed25519 key\n");
		exit(2);
	}
	memset(k, 0, sizeof *k);
	k->arg = f;
	k->write_epoch = fk_write_epoch;
	k->epoch_key = fk_epoch_key;
	k->writer_pub = fk_writer_pub;
	k->self_fpr = f->fpr;
	k->sign_key = sk;
}

/* ---- helpers ---- */

static scs_backend *be;
static char *dir;
static scs_keyctx K, K2;
static struct fake F, F2;

static uint64_t xs = 88172645463325252ull;
static uint64_t rnd(void)
{
	xs ^= xs << 13;
	xs ^= xs >> 7;
	xs ^= xs << 17;
	return xs;
}

static uint64_t obj_size(const char *path)
{
	struct scs_attr a;
	if (scs_be_stat(be, path, &a))
		return UINT64_MAX;
	return a.size;
}

static uint8_t *read_obj(const char *path, size_t *len)
{
	uint8_t *d = NULL;
	if (scs_be_read_file(be, path, 1 << 26, &d, len))
		return NULL;
	return d;
}

static void write_obj(const char *path, const uint8_t *d, size_t len)
{
	char p[PATH_MAX];
	snprintf(p, sizeof p, "%s/%s", dir, path);
	int fd = open(p, O_WRONLY | O_TRUNC);
	if (fd < 0 || write(fd, d, len) != (ssize_t)len) {
		perror(p);
		exit(2);
	}
	close(fd);
}

/* A file with the given content, closed. */
static void make_file(const char *path, const uint8_t *data, size_t n)
{
	scs_file *f = NULL;
	scs_be_unlink(be, path);
	CHECK_EQ(scs_file_create(be, path, 0600, &K, path, &f), 0);
	if (!f)
		return;
	CHECK_EQ(scs_file_pwrite(f, data, n, 0), (ssize_t)n);
	CHECK_EQ(scs_file_close(f), 0);
}

static int verify(const char *path, scs_err *err)
{
	scs_err_clear(err);
	return scs_file_verify(be, path, &K, err);
}

/* ---- tests ---- */

static void test_empty(void)
{
	scs_file *f = NULL;
	CHECK_EQ(scs_file_create(be, "empty", 0640, &K, "empty", &f), 0);
	if (!f)
		return;
	scs_file *f2 = NULL;
	CHECK_EQ(scs_file_create(be, "empty", 0640, &K, "empty", &f2), -EEXIST);
	CHECK(f2 == NULL);
	CHECK_EQ(scs_file_size(f), 0);
	CHECK_EQ(scs_file_epoch(f), 1);
	uint8_t b[10];
	CHECK_EQ(scs_file_pread(f, b, sizeof b, 0), 0);
	CHECK_EQ(scs_file_close(f), 0);
	CHECK_EQ(obj_size("empty"), scs_object_size(0));
	CHECK_EQ(scs_file_plain_size(obj_size("empty")), 0);
	struct scs_attr a;
	CHECK_EQ(scs_be_stat(be, "empty", &a), 0);
	CHECK_EQ(a.mode & 0777, 0640);
	scs_err err;
	CHECK_EQ(verify("empty", &err), 0);
	CHECK_EQ(scs_file_open(be, "empty", 0, &K, "empty", &f), 0);
	CHECK_EQ(scs_file_size(f), 0);
	CHECK_EQ(scs_file_pwrite(f, "x", 1, 0), -EBADF);    /* read-only open */
	CHECK_EQ(scs_file_truncate(f, 5), -EBADF);
	CHECK_EQ(scs_file_close(f), 0);
	CHECK_EQ(scs_file_open(be, "missing", 0, &K, "missing", &f), -ENOENT);
}

/* Random reads, writes and truncates against a shadow copy. */
#define SHADOW_MAX (11 * C + 1000)
static uint64_t pick_off(uint64_t size)
{
	static const uint64_t edges[] = { 0, 1, C - 1, C, C + 1, 2 * C - 1, 2 * C, 2 * C + 1,
					  3 * C, 5 * C - 1, 5 * C + 1 };
	uint64_t v = rnd() % 4;
	if (v == 0)
		return edges[rnd() % (sizeof edges / sizeof edges[0])];
	if (v == 1)
		return size;                            /* appends */
	if (v == 2 && size)
		return size - 1 - rnd() % (size < 100 ? size : 100);
	return rnd() % (SHADOW_MAX - 2 * C);
}

static uint64_t pick_len(void)
{
	static const uint64_t lens[] = { 1, 4096, C - 1, C, C + 1, 2 * C, 3 * C + 5 };
	return rnd() % 2 ? lens[rnd() % (sizeof lens / sizeof lens[0])] : 1 + rnd() % (2 * C);
}

static void test_random(void)
{
	static uint8_t shadow[SHADOW_MAX + 4 * C], buf[SHADOW_MAX + 4 * C], back[SHADOW_MAX + 4 * C];
	uint64_t size = 0;
	scs_file *f = NULL;
	CHECK_EQ(scs_file_create(be, "rand", 0600, &K, "rand", &f), 0);
	if (!f)
		return;
	int fails = unit_failures;
	for (int op = 0; op < 3000 && unit_failures == fails; op++) {
		uint64_t kind = rnd() % 16;
		if (kind < 8) {                 /* write */
			uint64_t off = pick_off(size), n = pick_len();
			if (off + n > SHADOW_MAX)
				n = SHADOW_MAX - off;
			if (!n)
				continue;
			for (uint64_t i = 0; i < n; i++)
				buf[i] = (uint8_t)rnd();
			CHECK_EQ(scs_file_pwrite(f, buf, n, off), (ssize_t)n);
			if (off > size)
				memset(shadow + size, 0, off - size);
			memcpy(shadow + off, buf, n);
			if (off + n > size)
				size = off + n;
		} else if (kind < 13) {         /* read */
			uint64_t off = pick_off(size), n = pick_len();
			if (off + n > SHADOW_MAX + 2 * C)
				n = 1;
			uint64_t want = off >= size ? 0 : (off + n > size ? size - off : n);
			ssize_t got = scs_file_pread(f, back, n, off);
			CHECK_EQ(got, (ssize_t)want);
			if (got == (ssize_t)want && want)
				CHECK_MEM(back, shadow + off, want);
		} else if (kind == 13) {        /* truncate */
			uint64_t ns = rnd() % 2 ? pick_off(size) : rnd() % SHADOW_MAX;
			if (ns > SHADOW_MAX)
				ns = SHADOW_MAX;
			CHECK_EQ(scs_file_truncate(f, ns), 0);
			if (ns > size)
				memset(shadow + size, 0, ns - size);
			size = ns;
		} else if (kind == 14) {        /* flush + check the object */
			CHECK_EQ(scs_file_flush(f), 0);
			CHECK_EQ(obj_size("rand"), scs_object_size(size));
			CHECK_EQ(scs_file_plain_size(obj_size("rand")), size);
			scs_err err;
			CHECK_EQ(verify("rand", &err), 0);
		} else {                        /* close, reopen, compare all */
			CHECK_EQ(scs_file_close(f), 0);
			f = NULL;
			CHECK_EQ(obj_size("rand"), scs_object_size(size));
			CHECK_EQ(scs_file_open(be, "rand", 1, &K, "rand", &f), 0);
			if (!f)
				return;
			CHECK_EQ(scs_file_size(f), size);
			CHECK_EQ(scs_file_pread(f, back, SHADOW_MAX + 10, 0), (ssize_t)size);
			CHECK_MEM(back, shadow, size);
		}
		CHECK_EQ(scs_file_size(f), size);
	}
	CHECK_EQ(scs_file_close(f), 0);
	scs_err err;
	CHECK_EQ(verify("rand", &err), 0);
	CHECK_EQ(obj_size("rand"), scs_object_size(size));
}

/* Sequential appends (the running hash), then a large gap, then verify. */
static void test_sequential(void)
{
	size_t big = 1 << 20;
	uint8_t *buf = malloc(big), *back = malloc(big);
	for (size_t i = 0; i < big; i++)
		buf[i] = (uint8_t)(i * 7 + 3);
	scs_file *f = NULL;
	CHECK_EQ(scs_file_create(be, "seq", 0600, &K, "seq", &f), 0);
	if (!f)
		return;
	uint64_t off = 0;
	for (int i = 0; i < 5; i++, off += big)
		CHECK_EQ(scs_file_pwrite(f, buf, big, off), (ssize_t)big);
	for (int i = 0; i < 20; i++, off += 4096)
		CHECK_EQ(scs_file_pwrite(f, buf, 4096, off), 4096);
	CHECK_EQ(scs_file_flush(f), 0);
	scs_err err;
	CHECK_EQ(verify("seq", &err), 0);
	/* more appends after a flush, then one overwrite near the start */
	CHECK_EQ(scs_file_pwrite(f, buf, 100000, off), 100000);
	off += 100000;
	CHECK_EQ(scs_file_sync(f, 0), 0);
	CHECK_EQ(verify("seq", &err), 0);
	CHECK_EQ(scs_file_pwrite(f, "hello", 5, 10), 5);
	CHECK_EQ(scs_file_close(f), 0);
	CHECK_EQ(verify("seq", &err), 0);
	CHECK_EQ(obj_size("seq"), scs_object_size(off));

	/* edits behind the running hash rewind it to a snapshot (every 128
	 * records), edits before the first snapshot to the start */
	CHECK_EQ(scs_file_open(be, "seq", 1, &K, "seq", &f), 0);
	if (!f)
		return;
	static const uint64_t at[] = { 300, 130, 128, 127, 256, 5, 200, 0 };
	for (size_t i = 0; i < sizeof at / sizeof at[0]; i++) {
		CHECK_EQ(scs_file_pwrite(f, buf, 7000, at[i] * C + 100), 7000);
		CHECK_EQ(scs_file_flush(f), 0);
		CHECK_EQ(verify("seq", &err), 0);
	}
	/* out-of-order writeback of an appended range */
	uint64_t end = scs_file_size(f);
	CHECK_EQ(scs_file_pwrite(f, buf, big, end + big), (ssize_t)big);
	CHECK_EQ(scs_file_pwrite(f, buf, big, end), (ssize_t)big);
	CHECK_EQ(scs_file_close(f), 0);
	CHECK_EQ(verify("seq", &err), 0);

	/* a write far past EOF fills the gap with real encrypted zero chunks
	 * (more than one batch of records) */
	CHECK_EQ(scs_file_create(be, "gap", 0600, &K, "gap", &f), 0);
	if (!f)
		return;
	CHECK_EQ(scs_file_pwrite(f, "abc", 3, 7 * big + 5), 3);
	CHECK_EQ(scs_file_size(f), 7 * big + 8);
	CHECK_EQ(scs_file_pread(f, back, big, 3 * big), (ssize_t)big);
	int zero = 1;
	for (size_t i = 0; i < big; i++)
		zero &= back[i] == 0;
	CHECK(zero);
	CHECK_EQ(scs_file_pread(f, back, 10, 7 * big + 3), 5);
	CHECK_MEM(back, "\0\0abc", 5);
	CHECK_EQ(scs_file_close(f), 0);
	CHECK_EQ(obj_size("gap"), scs_object_size(7 * big + 8));
	struct scs_attr a;
	CHECK_EQ(scs_be_stat(be, "gap", &a), 0);
	CHECK(a.blocks * 512 >= a.size - 4096);             /* no holes */
	CHECK_EQ(verify("gap", &err), 0);
	free(buf);
	free(back);
}

struct reader_arg {
	scs_file *f;
	const uint8_t *want;
	size_t size;
	int bad;
};

static void *reader(void *p)
{
	struct reader_arg *a = p;
	uint8_t buf[3 * C];
	uint64_t s = (uint64_t)(uintptr_t)p;
	for (int i = 0; i < 2000; i++) {
		s = s * 6364136223846793005ull + 1442695040888963407ull;
		size_t off = (s >> 20) % a->size, n = (s >> 40) % sizeof buf + 1;
		size_t want = off + n > a->size ? a->size - off : n;
		if (scs_file_pread(a->f, buf, n, off) != (ssize_t)want || memcmp(buf, a->want + off, want))
			a->bad++;
	}
	return NULL;
}

static void test_parallel_reads(void)
{
	size_t n = 10 * C + 123;
	uint8_t *data = malloc(n);
	for (size_t i = 0; i < n; i++)
		data[i] = (uint8_t)(i ^ (i >> 9));
	make_file("par", data, n);
	scs_file *f = NULL;
	CHECK_EQ(scs_file_open(be, "par", 0, &K, "par", &f), 0);
	if (!f)
		return;
	pthread_t th[4];
	struct reader_arg ra[4];
	for (int i = 0; i < 4; i++) {
		ra[i] = (struct reader_arg){ f, data, n, 0 };
		pthread_create(&th[i], NULL, reader, &ra[i]);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		CHECK_EQ(ra[i].bad, 0);
	}
	CHECK_EQ(scs_file_close(f), 0);
	free(data);
}

/* ---- tampering ---- */

static uint64_t rec_off(uint64_t i) { return scs_record_offset(i); }

static void test_tamper(void)
{
	size_t n = 3 * C + 500;
	uint8_t *data = malloc(n), *back = malloc(n);
	for (size_t i = 0; i < n; i++)
		data[i] = (uint8_t)(i * 13);
	scs_err err;
	scs_file *f = NULL;
	size_t len, len2;

	/* one flipped byte in record 1: only reads touching it fail */
	make_file("t1", data, n);
	uint8_t *o = read_obj("t1", &len);
	o[rec_off(1) + 100] ^= 1;
	write_obj("t1", o, len);
	CHECK_EQ(scs_file_open(be, "t1", 0, &K, "t1", &f), 0);
	if (f) {
		CHECK_EQ(scs_file_pread(f, back, C, 0), C);
		CHECK_MEM(back, data, C);
		CHECK_EQ(scs_file_pread(f, back, 10, C - 10), 10);
		CHECK_EQ(scs_file_pread(f, back, 10, C - 5), -EBADMSG);
		CHECK_EQ(scs_file_pread(f, back, C, C), -EBADMSG);
		CHECK_EQ(scs_file_pread(f, back, 1, 2 * C - 1), -EBADMSG);
		CHECK_EQ(scs_file_pread(f, back, C + 500, 2 * C), C + 500);
		CHECK_MEM(back, data + 2 * C, C + 500);
		CHECK_EQ(scs_file_close(f), 0);
	}
	CHECK_EQ(verify("t1", &err), -EBADMSG);
	CHECK(strstr(err.msg, "record 1") != NULL);
	/* a writer that re-seals other chunks does not launder it */
	CHECK_EQ(scs_file_open(be, "t1", 1, &K, "t1", &f), 0);
	if (f) {
		CHECK_EQ(scs_file_pwrite(f, data, 10, C + 5), -EBADMSG);
		CHECK_EQ(scs_file_close(f), 0);
	}
	free(o);

	/* records swapped between two files of the same size */
	make_file("s1", data, n);
	make_file("s2", data, n);
	o = read_obj("s1", &len);
	uint8_t *o2 = read_obj("s2", &len2);
	CHECK_EQ(len, len2);
	memcpy(o2 + rec_off(1), o + rec_off(1), SCS_RECORD_SIZE);
	write_obj("s2", o2, len2);
	CHECK_EQ(scs_file_open(be, "s2", 0, &K, "s2", &f), 0);
	if (f) {
		CHECK_EQ(scs_file_pread(f, back, 100, 0), 100);
		CHECK_EQ(scs_file_pread(f, back, 100, C), -EBADMSG);
		CHECK_EQ(scs_file_close(f), 0);
	}
	CHECK_EQ(verify("s2", &err), -EBADMSG);

	/* records swapped within a file (reordering) */
	make_file("s3", data, n);
	free(o2);
	o2 = read_obj("s3", &len2);
	uint8_t tmp[SCS_RECORD_SIZE];
	memcpy(tmp, o2 + rec_off(0), SCS_RECORD_SIZE);
	memcpy(o2 + rec_off(0), o2 + rec_off(1), SCS_RECORD_SIZE);
	memcpy(o2 + rec_off(1), tmp, SCS_RECORD_SIZE);
	write_obj("s3", o2, len2);
	CHECK_EQ(verify("s3", &err), -EBADMSG);
	CHECK(strstr(err.msg, "record 0") != NULL);

	/* headers swapped between two files */
	make_file("h1", data, n);
	make_file("h2", data, n);
	free(o);
	free(o2);
	o = read_obj("h1", &len);
	o2 = read_obj("h2", &len2);
	memcpy(o2, o, SCS_HEADER_SIZE);
	write_obj("h2", o2, len2);
	CHECK_EQ(scs_file_open(be, "h2", 0, &K, "h2", &f), 0);   /* header alone is fine */
	if (f) {
		CHECK_EQ(scs_file_pread(f, back, 10, 0), -EBADMSG);
		CHECK_EQ(scs_file_close(f), 0);
	}
	CHECK_EQ(verify("h2", &err), -EBADMSG);

	/* a flipped header byte */
	memcpy(o2, o, len);
	o2[40] ^= 0x80;
	write_obj("h2", o2, len);
	CHECK_EQ(scs_file_open(be, "h2", 0, &K, "h2", &f), -EBADMSG);
	CHECK_EQ(verify("h2", &err), -EBADMSG);
	CHECK(strstr(err.msg, "authentication failed") != NULL);

	/* object cut at a record boundary (the last record dropped) */
	size_t m = 3 * C;
	make_file("c1", data, m);
	free(o);
	o = read_obj("c1", &len);
	CHECK_EQ(len, scs_object_size(m));
	write_obj("c1", o, rec_off(2));
	CHECK_EQ(scs_file_open(be, "c1", 0, &K, "c1", &f), 0);
	if (f) {
		CHECK_EQ(scs_file_size(f), 2 * C);
		CHECK_EQ(scs_file_pread(f, back, 10, 0), 10);
		CHECK_EQ(scs_file_pread(f, back, 10, C + 5), -EBADMSG);
		CHECK_EQ(scs_file_close(f), 0);
	}
	CHECK_EQ(verify("c1", &err), -EBADMSG);
	/* a record appended (a copy of record 1) */
	uint8_t *o3 = malloc(len + SCS_RECORD_SIZE);
	memcpy(o3, o, len);
	memcpy(o3 + len, o + rec_off(1), SCS_RECORD_SIZE);
	write_obj("c1", o3, len + SCS_RECORD_SIZE);
	CHECK_EQ(scs_file_open(be, "c1", 0, &K, "c1", &f), 0);
	if (f) {
		CHECK_EQ(scs_file_pread(f, back, 10, 2 * C + 5), -EBADMSG);
		CHECK_EQ(scs_file_pread(f, back, 10, 3 * C + 5), -EBADMSG);
		CHECK_EQ(scs_file_close(f), 0);
	}
	CHECK_EQ(verify("c1", &err), -EBADMSG);
	/* cut mid-record: no valid object has that size */
	write_obj("c1", o, rec_off(2) + 10);
	CHECK_EQ(scs_file_open(be, "c1", 0, &K, "c1", &f), -EBADMSG);
	CHECK_EQ(verify("c1", &err), -EBADMSG);
	free(o3);

	/* an old version of the records under a newer header: every record
	 * opens, but content_hash says these are not the signed ones */
	make_file("v1", data, n);
	free(o);
	o = read_obj("v1", &len);
	CHECK_EQ(scs_file_open(be, "v1", 1, &K, "v1", &f), 0);
	if (f) {
		CHECK_EQ(scs_file_pwrite(f, "changed", 7, 5), 7);
		CHECK_EQ(scs_file_close(f), 0);
	}
	free(o2);
	o2 = read_obj("v1", &len2);
	CHECK_EQ(len, len2);
	memcpy(o2 + SCS_HEADER_SIZE, o + SCS_HEADER_SIZE, len - SCS_HEADER_SIZE);
	write_obj("v1", o2, len2);
	CHECK_EQ(scs_file_open(be, "v1", 0, &K, "v1", &f), 0);
	if (f) {
		CHECK_EQ(scs_file_pread(f, back, n, 0), (ssize_t)n);     /* GCM alone passes */
		CHECK_MEM(back, data, n);
		CHECK_EQ(scs_file_close(f), 0);
	}
	CHECK_EQ(verify("v1", &err), -EBADMSG);
	CHECK(strstr(err.msg, "content hash") != NULL);
	/* the old version whole (header and records) is consistent */
	write_obj("v1", o, len);
	CHECK_EQ(verify("v1", &err), 0);
	free(o);
	free(o2);
	free(data);
	free(back);
}

static void test_membership(void)
{
	uint8_t data[100] = "some data";
	scs_file *f = NULL;
	scs_err err;

	/* written by someone the group does not accept */
	fake_other = &F2;
	scs_be_unlink(be, "m1");
	CHECK_EQ(scs_file_create(be, "m1", 0600, &K2, "m1", &f), 0);
	if (f) {
		CHECK_EQ(scs_file_pwrite(f, data, sizeof data, 0), (ssize_t)sizeof data);
		CHECK_EQ(scs_file_close(f), 0);
	}
	CHECK_EQ(scs_file_open(be, "m1", 0, &K, "m1", &f), -EBADMSG);
	CHECK_EQ(verify("m1", &err), -EBADMSG);
	CHECK(strstr(err.msg, "not a member") != NULL);
	/* once accepted, the same file opens */
	F.accept_other = 1;
	CHECK_EQ(scs_file_open(be, "m1", 0, &K, "m1", &f), 0);
	if (f) {
		uint8_t back[100];
		CHECK_EQ(scs_file_pread(f, back, sizeof back, 0), (ssize_t)sizeof back);
		CHECK_MEM(back, data, sizeof data);
		CHECK_EQ(scs_file_close(f), 0);
	}
	CHECK_EQ(verify("m1", &err), 0);
	F.accept_other = 0;

	/* unknown epoch key: not allowed (EACCES), not tampering */
	make_file("m2", data, sizeof data);
	F.key_known = 0;
	CHECK_EQ(scs_file_open(be, "m2", 0, &K, "m2", &f), -EACCES);
	CHECK_EQ(verify("m2", &err), -EACCES);
	F.key_known = 1;

	/* a different epoch key (wrong group): the wrap does not open */
	uint8_t saved[SCS_KEY_LEN];
	memcpy(saved, F.key, sizeof saved);
	F.key[0] ^= 1;
	CHECK_EQ(scs_file_open(be, "m2", 0, &K, "m2", &f), -EBADMSG);
	memcpy(F.key, saved, sizeof saved);
	CHECK_EQ(scs_file_open(be, "m2", 0, &K, "m2", &f), 0);
	scs_file_close(f);

	/* not a member in the file's epoch: may read (if the writer was),
	 * may not re-sign it */
	fake_other = &F2;
	F.accept_other = 1;
	make_file("m4", data, sizeof data);
	F2.accept_other = 1;
	F2.reject_self = 1;
	fake_other = &F;
	CHECK_EQ(scs_file_open(be, "m4", 1, &K2, "m4", &f), -EACCES);
	CHECK_EQ(scs_file_open(be, "m4", 0, &K2, "m4", &f), 0);
	scs_file_close(f);
	F2.reject_self = 0;
	CHECK_EQ(scs_file_open(be, "m4", 1, &K2, "m4", &f), 0);
	scs_file_close(f);
	F2.accept_other = 0;
	F.accept_other = 0;
	fake_other = &F2;

	/* no signing key: read-only */
	scs_keyctx ro = K;
	ro.sign_key = NULL;
	CHECK_EQ(scs_file_open(be, "m2", 1, &ro, "m2", &f), -EROFS);
	CHECK_EQ(scs_file_create(be, "m3", 0600, &ro, "m3", &f), -EROFS);
	CHECK_EQ(scs_file_open(be, "m2", 0, &ro, "m2", &f), 0);
	scs_file_close(f);
}

static void test_truncate_edges(void)
{
	static uint8_t data[4 * C], back[4 * C];
	for (size_t i = 0; i < sizeof data; i++)
		data[i] = (uint8_t)(i * 5 + 1);
	static const uint64_t sizes[] = { 0, 1, C - 1, C, C + 1, 2 * C, 3 * C + 7, 4 * C };
	scs_file *f = NULL;
	for (size_t a = 0; a < 8; a++) {
		for (size_t b = 0; b < 8; b++) {
			make_file("tr", data, sizes[a]);
			CHECK_EQ(scs_file_open(be, "tr", 1, &K, "tr", &f), 0);
			if (!f)
				return;
			CHECK_EQ(scs_file_truncate(f, sizes[b]), 0);
			CHECK_EQ(scs_file_close(f), 0);
			CHECK_EQ(obj_size("tr"), scs_object_size(sizes[b]));
			CHECK_EQ(scs_file_open(be, "tr", 0, &K, "tr", &f), 0);
			if (!f)
				return;
			uint64_t keep = sizes[a] < sizes[b] ? sizes[a] : sizes[b];
			CHECK_EQ(scs_file_pread(f, back, sizeof back, 0), (ssize_t)sizes[b]);
			CHECK_MEM(back, data, keep);
			int zero = 1;
			for (uint64_t i = keep; i < sizes[b]; i++)
				zero &= back[i] == 0;
			CHECK(zero);
			CHECK_EQ(scs_file_close(f), 0);
			scs_err err;
			CHECK_EQ(verify("tr", &err), 0);
		}
	}
}

/* Moving a file to a newer epoch (the re-key pass). */
static void test_rewrite(void)
{
	size_t n = 5 * C + 77;
	uint8_t *data = malloc(n), *back = malloc(n + 10);
	for (size_t i = 0; i < n; i++)
		data[i] = (uint8_t)(i * 11 + 5);
	make_file("rk", data, n);
	scs_err err;
	scs_file *f = NULL;
	F.epoch = 2;
	CHECK_EQ(scs_file_rewrite(be, "rk", "rk.new", 0640, &K, "rk", &err), 0);
	CHECK_EQ(scs_file_open(be, "rk.new", 0, &K, "rk", &f), 0);
	if (f) {
		CHECK_EQ(scs_file_epoch(f), 2);
		CHECK_EQ(scs_file_pread(f, back, n + 10, 0), (ssize_t)n);
		CHECK_MEM(back, data, n);
		CHECK_EQ(scs_file_close(f), 0);
	}
	CHECK_EQ(verify("rk.new", &err), 0);
	struct scs_attr a;
	CHECK_EQ(scs_be_stat(be, "rk.new", &a), 0);
	CHECK_EQ(a.mode & 0777, 0640);
	/* the old object still says epoch 1 */
	CHECK_EQ(scs_file_open(be, "rk", 0, &K, "rk", &f), 0);
	if (f) {
		CHECK_EQ(scs_file_epoch(f), 1);
		scs_file_close(f);
	}
	/* dst exists: refused, nothing touched */
	CHECK_EQ(scs_file_rewrite(be, "rk", "rk.new", 0640, &K, "rk", &err), -EEXIST);
	CHECK_EQ(verify("rk.new", &err), 0);
	/* a damaged source is not laundered */
	size_t len;
	uint8_t *o = read_obj("rk", &len);
	o[rec_off(4) + 9] ^= 4;
	write_obj("rk", o, len);
	CHECK_EQ(scs_file_rewrite(be, "rk", "rk.2", 0600, &K, "rk", &err), -EBADMSG);
	CHECK(strstr(err.msg, "record 4") != NULL);
	CHECK_EQ(scs_be_stat(be, "rk.2", &a), -ENOENT);
	F.epoch = 1;
	free(o);
	free(data);
	free(back);
}

/* A full disk: fallocate says ENOSPC (or is missing and pwrite fails past
 * the end): the write fails and the file stays as it was. */
static int fail_mode;            /* 1: fallocate ENOSPC; 2: no fallocate, pwrite past end ENOSPC */
static uint64_t fail_limit;
static struct scs_backend_ops failing_ops;
static const struct scs_backend_ops *real_ops;

static int failing_fallocate(scs_obj *o, uint64_t off, uint64_t len)
{
	if (fail_mode == 1)
		return -ENOSPC;
	if (fail_mode == 2)
		return -EOPNOTSUPP;
	return real_ops->fallocate(o, off, len);
}

static ssize_t failing_pwrite(scs_obj *o, const void *buf, size_t n, uint64_t off)
{
	if (fail_mode == 2 && off + n > fail_limit) {
		/* like a disk that fills up: what fits is written */
		if (off < fail_limit)
			real_ops->pwrite(o, buf, fail_limit - off, off);
		return -ENOSPC;
	}
	return real_ops->pwrite(o, buf, n, off);
}

static void test_full_disk(void)
{
	size_t n = 3 * C + 500;
	uint8_t *data = malloc(n + 200000), *back = malloc(n + 200000);
	for (size_t i = 0; i < n + 200000; i++)
		data[i] = (uint8_t)(i * 3);
	make_file("full", data, n);
	real_ops = be->ops;
	failing_ops = *be->ops;
	failing_ops.fallocate = failing_fallocate;
	failing_ops.pwrite = failing_pwrite;
	be->ops = &failing_ops;
	for (fail_mode = 1; fail_mode <= 2; fail_mode++) {
		scs_file *f = NULL;
		CHECK_EQ(scs_file_open(be, "full", 1, &K, "full", &f), 0);
		if (!f)
			break;
		fail_limit = obj_size("full");
		ssize_t w = scs_file_pwrite(f, data + n, 200000, n);
		CHECK_EQ(w, -ENOSPC);
		CHECK_EQ(scs_file_size(f), n);
		CHECK_EQ(obj_size("full"), scs_object_size(n));
		CHECK_EQ(scs_file_pread(f, back, n + 10, 0), (ssize_t)n);
		CHECK_MEM(back, data, n);
		/* writes inside the file still work */
		CHECK_EQ(scs_file_pwrite(f, "abc", 3, 7), 3);
		memcpy(data + 7, "abc", 3);
		CHECK_EQ(scs_file_close(f), 0);
		scs_err err;
		CHECK_EQ(verify("full", &err), 0);
	}
	fail_mode = 0;
	be->ops = real_ops;
	free(data);
	free(back);
}

int main(void)
{
	uint8_t ek[SCS_KEY_LEN];
	memset(ek, 0x42, sizeof ek);
	fake_init(&F, &K, 0xaa, ek);
	fake_init(&F2, &K2, 0xbb, ek);
	dir = unit_tmpdir("file");
	scs_err err;
	CHECK_EQ(scs_backend_local_open(dir, &be, &err), 0);
	if (!be)
		return unit_done("file");
	test_empty();
	test_random();
	test_sequential();
	test_parallel_reads();
	test_tamper();
	test_membership();
	test_truncate_edges();
	test_full_disk();
	test_rewrite();
	scs_backend_close(be);
	EVP_PKEY_free(K.sign_key);
	EVP_PKEY_free(K2.sign_key);
	char cmd[PATH_MAX + 16];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", dir);
	free(dir);
	return unit_done("file");
}
