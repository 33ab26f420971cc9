/* test_seen.c - the member's memory of file versions (seen.h): the replay
 * rule (an exact pair met before a higher version), the cases that must
 * never be called a replay (re-reads, our own writes, a stale writer's
 * lower version, equal versions with other content), the per-file limit,
 * persistence, forget (also by another process), damaged and partial
 * files (only weaker, never failing), rewriting when the log grows, the
 * record parser, and several threads at once. */
#include "unit.h"

#include "scs/seen.h"

#include <stddef.h>

static size_t nfiles(scs_seen *s)
{
	size_t f, p;
	scs_seen_count(s, &f, &p);
	return f;
}

static size_t npairs(scs_seen *s)
{
	size_t f, p;
	scs_seen_count(s, &f, &p);
	return p;
}

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

static char path[4200];

static void fid_of(uint8_t fid[SCS_FILE_ID_LEN], unsigned n)
{
	memset(fid, 0, SCS_FILE_ID_LEN);
	for (int i = 0; i < 4; i++)
		fid[i] = (uint8_t)(n >> (8 * i));
	fid[15] = 0xa5;
}

/* A content hash standing for write number w of a file. */
static void hash_of(uint8_t h[SCS_SHA256_LEN], unsigned w)
{
	memset(h, 0x11, SCS_SHA256_LEN);
	for (int i = 0; i < 4; i++)
		h[i] = (uint8_t)(w >> (8 * i));
}

static int obs_at(scs_seen *s, unsigned file, uint64_t v, unsigned w, const char *where,
		  int ours, uint64_t *newer)
{
	uint8_t fid[SCS_FILE_ID_LEN], h[SCS_SHA256_LEN];
	fid_of(fid, file);
	hash_of(h, w);
	return scs_seen_observe(s, fid, v, h, where, ours, newer);
}

static int obs(scs_seen *s, unsigned file, uint64_t v, unsigned w, int ours, uint64_t *newer)
{
	return obs_at(s, file, v, w, "d/enc", ours, newer);
}

static off_t fsize(const char *p)
{
	struct stat st;
	return stat(p, &st) == 0 ? st.st_size : -1;
}

static void test_rule(void)
{
	scs_seen *s;
	uint64_t newer = 0;
	CHECK_EQ(scs_seen_open(NULL, &s), 0);
	/* v1 seen, v2 written by us: v1 again is a replay of v1 */
	CHECK_EQ(obs(s, 1, 1, 100, 0, NULL), 0);
	CHECK_EQ(obs(s, 1, 1, 100, 0, NULL), 0);          /* re-read */
	CHECK_EQ(obs(s, 1, 2, 101, 1, NULL), 0);
	CHECK_EQ(obs(s, 1, 2, 101, 0, NULL), 0);          /* the current one */
	CHECK_EQ(obs(s, 1, 1, 100, 0, &newer), 1);
	CHECK_EQ(newer, 2);
	CHECK_EQ(obs(s, 1, 1, 100, 1, NULL), 0);          /* ours is never a replay */
	/* v1 with other content (another member's concurrent write) is not */
	CHECK_EQ(obs(s, 1, 1, 102, 0, NULL), 0);

	/* A stale writer: v10 written, then someone's v4 over it; re-reading
	 * v4 is fine (v10 was met before it), but v4 after v5 is a replay. */
	for (unsigned v = 1; v <= 10; v++)
		CHECK_EQ(obs(s, 2, v, 200 + v, 1, NULL), 0);
	CHECK_EQ(obs(s, 2, 4, 300, 0, NULL), 0);
	CHECK_EQ(obs(s, 2, 4, 300, 0, NULL), 0);
	CHECK_EQ(obs(s, 2, 4, 300, 0, NULL), 0);
	CHECK_EQ(obs(s, 2, 5, 301, 0, NULL), 0);
	CHECK_EQ(obs(s, 2, 4, 300, 0, &newer), 1);
	CHECK_EQ(newer, 5);
	/* ... and so is v10, met before v4: no (it cannot be told apart from
	 * the stale writer losing a race), the rule stays silent */
	CHECK_EQ(obs(s, 2, 10, 210, 0, NULL), 0);

	/* Equal versions, different content, alternating: never a replay. */
	for (unsigned i = 0; i < 20; i++)
		CHECK_EQ(obs(s, 3, 7 + i / 2, 400 + i, i % 2, NULL), 0);

	/* Only the last SCS_SEEN_KEEP pairs: v1 of file 4 is forgotten after
	 * KEEP newer ones (the documented limit), v2 still caught. */
	for (unsigned v = 1; v <= SCS_SEEN_KEEP + 1; v++)
		CHECK_EQ(obs(s, 4, v, 500 + v, 0, NULL), 0);
	CHECK_EQ(obs(s, 4, 2, 502, 0, NULL), 1);
	CHECK_EQ(obs(s, 4, 1, 501, 0, NULL), 0);
	CHECK(npairs(s) <= SCS_SEEN_KEEP * nfiles(s));

	/* A conflict copy (a sync client's "<enc> (1)", Drive's conflict
	 * entry) keeps an older version of the same file under another name:
	 * not a replay.  At the original's place it is. */
	CHECK_EQ(obs_at(s, 5, 1, 600, "d/enc", 0, NULL), 0);
	CHECK_EQ(obs_at(s, 5, 2, 601, "d/enc", 1, NULL), 0);
	CHECK_EQ(obs_at(s, 5, 2, 602, "d/enc", 0, NULL), 0);
	CHECK_EQ(obs_at(s, 5, 2, 601, "d/enc (1)", 0, NULL), 0);
	CHECK_EQ(obs_at(s, 5, 3, 603, "d/enc", 1, NULL), 0);
	CHECK_EQ(obs_at(s, 5, 2, 601, "d/enc (1)", 0, NULL), 0);
	CHECK_EQ(obs_at(s, 5, 2, 601, "d/enc (1)", 0, NULL), 0);
	CHECK_EQ(obs_at(s, 5, 2, 602, "d/enc", 0, &newer), 1);
	CHECK_EQ(newer, 3);
	CHECK_EQ(obs_at(s, 5, 1, 600, NULL, 0, NULL), 0);

	/* forget */
	uint8_t fid[SCS_FILE_ID_LEN];
	fid_of(fid, 1);
	scs_err err = { 0 };
	CHECK_EQ(scs_seen_forget(s, fid, &err), 0);
	CHECK_EQ(obs(s, 1, 1, 100, 0, NULL), 0);
	CHECK_EQ(obs(s, 1, 2, 101, 0, NULL), 0);
	CHECK_EQ(obs(s, 1, 1, 100, 0, NULL), 1);          /* remembered afresh */
	scs_seen_close(s);
}

static void test_file(void)
{
	scs_seen *s, *t;
	scs_err err = { 0 };
	uint8_t fid[SCS_FILE_ID_LEN];
	char *dir = unit_tmpdir("seen");
	snprintf(path, sizeof path, "%s/sub/dir/g.seen", dir);

	/* persists; the directory is made */
	CHECK_EQ(scs_seen_open(path, &s), 0);
	CHECK_EQ(obs(s, 1, 1, 1, 0, NULL), 0);
	CHECK_EQ(obs(s, 1, 2, 2, 1, NULL), 0);
	CHECK_EQ(obs(s, 1, 2, 2, 0, NULL), 0);            /* nothing new: no record */
	CHECK_EQ(fsize(path), 2 * SCS_SEEN_RECORD_SIZE);
	scs_seen_close(s);
	CHECK_EQ(scs_seen_open(path, &s), 0);
	CHECK_EQ(obs(s, 1, 1, 1, 0, NULL), 1);

	/* forget by another process: s catches up before calling it a replay */
	CHECK_EQ(scs_seen_open(path, &t), 0);
	fid_of(fid, 1);
	CHECK_EQ(scs_seen_forget(t, fid, &err), 0);
	CHECK_EQ(obs(s, 1, 1, 1, 0, NULL), 0);
	scs_seen_close(t);
	CHECK_EQ(obs(s, 1, 3, 3, 0, NULL), 0);
	scs_seen_close(s);
	CHECK_EQ(scs_seen_open(path, &s), 0);
	CHECK_EQ(obs(s, 1, 1, 1, 0, NULL), 1);
	scs_seen_close(s);

	/* a partial record at the end (a crash mid-append): the whole ones
	 * are kept, the file is made whole (and rewritten: only what is live) */
	int fd = open(path, O_WRONLY | O_APPEND);
	CHECK(fd >= 0 && write(fd, "SSN1xxxxxx", 10) == 10);
	close(fd);
	CHECK_EQ(scs_seen_open(path, &s), 0);
	CHECK_EQ(fsize(path) % SCS_SEEN_RECORD_SIZE, 0);
	CHECK_EQ(obs(s, 1, 1, 1, 0, NULL), 1);
	scs_seen_close(s);
	CHECK_EQ(fsize(path), 2 * SCS_SEEN_RECORD_SIZE);   /* v1 and v3 */

	/* a damaged record: everything goes (never a false alarm), the open
	 * works, the file is rewritten */
	fd = open(path, O_WRONLY);
	CHECK(fd >= 0 && pwrite(fd, "X", 1, SCS_SEEN_RECORD_SIZE + 30) == 1);
	close(fd);
	CHECK_EQ(scs_seen_open(path, &s), 0);
	CHECK_EQ(nfiles(s), 0);
	CHECK_EQ(obs(s, 1, 1, 1, 0, NULL), 0);
	scs_seen_close(s);
	CHECK_EQ(fsize(path), SCS_SEEN_RECORD_SIZE);

	/* garbage, a directory in its place, an unreadable file: opens */
	fd = open(path, O_WRONLY | O_TRUNC);
	CHECK(fd >= 0 && write(fd, "garbage garbage garbage", 23) == 23);
	close(fd);
	CHECK_EQ(scs_seen_open(path, &s), 0);
	CHECK_EQ(nfiles(s), 0);
	scs_seen_close(s);
	CHECK_EQ(fsize(path), 0);
	unlink(path);
	mkdir(path, 0700);
	CHECK_EQ(scs_seen_open(path, &s), 0);
	CHECK_EQ(obs(s, 1, 1, 1, 0, NULL), 0);
	CHECK_EQ(obs(s, 1, 2, 2, 0, NULL), 0);
	CHECK_EQ(obs(s, 1, 1, 1, 0, NULL), 1);            /* in memory only */
	scs_seen_close(s);
	rmdir(path);

	/* rewriting: one file written 5000 times keeps the log small, and
	 * what matters survives it (and a reopen) */
	CHECK_EQ(scs_seen_open(path, &s), 0);
	CHECK_EQ(scs_seen_open(path, &t), 0);
	for (unsigned v = 1; v <= 5000; v++) {
		CHECK_EQ(obs(s, 9, v, 9000 + v, 1, NULL), 0);
		if (v == 2500) {
			/* t appends meanwhile, and forgets: s's rewrite keeps it */
			CHECK_EQ(obs(t, 10, 1, 1, 0, NULL), 0);
			CHECK_EQ(obs(t, 10, 2, 2, 0, NULL), 0);
			CHECK_EQ(obs(t, 11, 1, 1, 0, NULL), 0);
			fid_of(fid, 11);
			CHECK_EQ(scs_seen_forget(t, fid, &err), 0);
		}
	}
	CHECK(fsize(path) <= (off_t)(2 * 1024 + 16) * SCS_SEEN_RECORD_SIZE);
	CHECK_EQ(obs(s, 9, 4999, 9000 + 4999, 0, NULL), 1);
	scs_seen_close(s);
	scs_seen_close(t);
	CHECK_EQ(scs_seen_open(path, &s), 0);
	CHECK_EQ(obs(s, 9, 4998, 9000 + 4998, 0, NULL), 1);
	CHECK_EQ(obs(s, 10, 1, 1, 0, NULL), 1);
	CHECK_EQ(nfiles(s), 2);                    /* 9 and 10; 11 forgotten */
	scs_seen_close(s);
	free(dir);
}

static void test_parser(void)
{
	uint8_t buf[4 * SCS_SEEN_RECORD_SIZE];
	uint8_t fid[SCS_FILE_ID_LEN];
	scs_seen *s;
	fid_of(fid, 7);
	uint8_t h[SCS_SHA256_LEN];
	hash_of(h, 1);
	scs_seen_record(buf, SCS_SEEN_REC_SEEN, fid, 1, h, 0);
	hash_of(h, 2);
	scs_seen_record(buf + SCS_SEEN_RECORD_SIZE, SCS_SEEN_REC_SEEN, fid, 2, h, 0);
	scs_seen_record(buf + 2 * SCS_SEEN_RECORD_SIZE, SCS_SEEN_REC_FORGET, fid, 0, NULL, 0);
	hash_of(h, 3);
	scs_seen_record(buf + 3 * SCS_SEEN_RECORD_SIZE, SCS_SEEN_REC_SEEN, fid, 3, h, 0);
	CHECK_EQ(scs_seen_open(NULL, &s), 0);
	CHECK_EQ(scs_seen_load_mem(s, buf, 2 * SCS_SEEN_RECORD_SIZE), 0);
	CHECK_EQ(npairs(s), 2);
	scs_seen_close(s);
	CHECK_EQ(scs_seen_open(NULL, &s), 0);
	CHECK_EQ(scs_seen_load_mem(s, buf, sizeof buf), 0);
	CHECK_EQ(npairs(s), 1);                    /* forgotten, then v3 */
	scs_seen_close(s);
	CHECK_EQ(scs_seen_open(NULL, &s), 0);
	CHECK_EQ(scs_seen_load_mem(s, buf, sizeof buf - 1), 1);
	CHECK_EQ(npairs(s), 0);                    /* v3 cut: forget applied */
	scs_seen_close(s);
	/* every single flipped bit is caught */
	for (size_t bit = 0; bit < 8 * SCS_SEEN_RECORD_SIZE; bit += 7) {
		uint8_t r[SCS_SEEN_RECORD_SIZE];
		memcpy(r, buf, sizeof r);
		r[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		CHECK_EQ(scs_seen_open(NULL, &s), 0);
		CHECK_EQ(scs_seen_load_mem(s, r, sizeof r), -EBADMSG);
		CHECK_EQ(nfiles(s), 0);
		scs_seen_close(s);
	}
	/* a forget record carrying a version, an unknown kind: refused */
	uint8_t r[SCS_SEEN_RECORD_SIZE];
	scs_seen_record(r, SCS_SEEN_REC_FORGET, fid, 1, NULL, 0);
	CHECK_EQ(scs_seen_open(NULL, &s), 0);
	CHECK_EQ(scs_seen_load_mem(s, r, sizeof r), -EBADMSG);
	scs_seen_record(r, 3, fid, 0, NULL, 0);
	CHECK_EQ(scs_seen_load_mem(s, r, sizeof r), -EBADMSG);
	scs_seen_record(r, SCS_SEEN_REC_FORGET, fid, 0, NULL, 7);
	CHECK_EQ(scs_seen_load_mem(s, r, sizeof r), -EBADMSG);
	scs_seen_close(s);
}

struct worker {
	scs_seen *s;
	unsigned base;
	int bad;
};

static void *work(void *arg)
{
	struct worker *w = arg;
	for (unsigned f = 0; f < 300; f++)
		for (unsigned v = 1; v <= 3; v++)
			w->bad += obs(w->s, w->base + f, v, w->base + f * 4 + v, 0, NULL) != 0;
	for (unsigned f = 0; f < 300; f++)
		w->bad += obs(w->s, w->base + f, 1, w->base + f * 4 + 1, 0, NULL) != 1;
	return NULL;
}

static void test_threads(void)
{
	scs_seen *s;
	char *dir = unit_tmpdir("seen-mt");
	snprintf(path, sizeof path, "%s/g.seen", dir);
	CHECK_EQ(scs_seen_open(path, &s), 0);
	pthread_t th[4];
	struct worker w[4];
	for (unsigned i = 0; i < 4; i++) {
		w[i] = (struct worker){ s, 100000 * (i + 1), 0 };
		pthread_create(&th[i], NULL, work, &w[i]);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		CHECK_EQ(w[i].bad, 0);
	}
	CHECK_EQ(nfiles(s), 1200);
	CHECK_EQ(npairs(s), 3600);
	scs_seen_close(s);
	CHECK_EQ(scs_seen_open(path, &s), 0);
	CHECK_EQ(npairs(s), 3600);
	scs_seen_close(s);
	free(dir);
}

int main(void)
{
	test_rule();
	test_file();
	test_parser();
	test_threads();
	return unit_done("seen");
}
