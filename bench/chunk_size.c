/* chunk_size.c - how the plaintext chunk size of the file format trades
 * throughput against small random I/O.  Figures go to man/scsfs-format.5.
 *
 *   cc -O2 -Iinclude bench/chunk_size.c build/src/lib/libscs.a -lcrypto \
 *      -ljansson -lpthread -o /tmp/chunk_size && /tmp/chunk_size
 *
 * For each chunk size C (4, 16, 32, 64 KiB) it measures, with the real
 * record construction (random nonce, AES-256-GCM, the chunk AAD):
 *   seal / open throughput   sealing then opening a 64 MiB file chunk by chunk
 *   overhead                 28 bytes per record, as a share of the body
 *   4 KiB random write       read-modify-write of the one record holding a
 *                            4 KiB-aligned block: pread record, open, patch,
 *                            seal, pwrite (file in the page cache)
 *   4 KiB random read        pread + open of the record holding the block
 * Times are CPU time of the benchmark thread, best of RUNS runs. */
#include "scs/crypto.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define FILE_BYTES (64u << 20)
#define OPS 20000
#define RUNS 5

static double now(void)
{
	struct timespec ts;
	/* CPU time of this thread (user + system): on a machine shared with
	 * other jobs, wall-clock figures mostly measure the neighbours. */
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void aad_for(uint8_t aad[36], const uint8_t fid[16], uint64_t idx, int last)
{
	memcpy(aad, "scsfs chunk", 11);
	memcpy(aad + 11, fid, 16);
	for (int i = 0; i < 8; i++)
		aad[27 + i] = (uint8_t)(idx >> (56 - 8 * i));
	aad[35] = (uint8_t)last;
}

static int seal(scs_gcm *g, const uint8_t fid[16], uint64_t idx, const uint8_t *pt,
		size_t n, uint8_t *rec)
{
	uint8_t aad[36];
	aad_for(aad, fid, idx, 0);
	if (scs_random(rec, 12))
		return -1;
	return scs_gcm_seal(g, rec, aad, 36, pt, n, rec + 12, rec + 12 + n);
}

static int open_rec(scs_gcm *g, const uint8_t fid[16], uint64_t idx, const uint8_t *rec,
		    size_t n, uint8_t *pt)
{
	uint8_t aad[36];
	aad_for(aad, fid, idx, 0);
	return scs_gcm_open(g, rec, aad, 36, rec + 12, n, rec + 12 + n, pt);
}

int main(void)
{
	const size_t sizes[] = { 4096, 16384, 32768, 65536 };
	uint8_t key[32], fid[16];
	scs_random(key, 32);
	scs_random(fid, 16);
	scs_gcm *g = scs_gcm_new(key);
	uint8_t *pt = malloc(FILE_BYTES), *body = malloc(FILE_BYTES + FILE_BYTES / 4096 * 28);
	uint8_t *buf = malloc(65536 + 28), *ptbuf = malloc(65536);
	if (!g || !pt || !body || !buf || !ptbuf)
		return 1;
	scs_random(pt, FILE_BYTES);
	char path[] = "/tmp/chunk_size-XXXXXX";
	int fd = mkstemp(path);
	if (fd < 0)
		return 1;
	unlink(path);

	printf("%-8s %10s %10s %9s %14s %14s %10s\n", "chunk", "seal MB/s", "open MB/s",
	       "overhead", "4K write us", "4K read us", "4K wr amp");
	for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
		size_t C = sizes[s], R = C + 28, nrec = FILE_BYTES / C;
		double best_seal = 1e9, best_open = 1e9, best_w = 1e9, best_r = 1e9;
		for (int run = 0; run < RUNS; run++) {
			double t0 = now();
			for (size_t i = 0; i < nrec; i++)
				if (seal(g, fid, i, pt + i * C, C, body + i * R))
					return 1;
			double t1 = now();
			for (size_t i = 0; i < nrec; i++)
				if (open_rec(g, fid, i, body + i * R, C, pt + i * C))
					return 1;
			double t2 = now();
			if (t1 - t0 < best_seal)
				best_seal = t1 - t0;
			if (t2 - t1 < best_open)
				best_open = t2 - t1;
		}
		/* The sealed file on disk (page cache) for the random I/O runs. */
		if (ftruncate(fd, 0) || pwrite(fd, body, nrec * R, 0) != (ssize_t)(nrec * R))
			return 1;
		srand(42);
		for (int run = 0; run < RUNS; run++) {
			double t0 = now();
			for (int op = 0; op < OPS; op++) {
				size_t blk = (size_t)rand() % (FILE_BYTES / 4096);
				size_t idx = blk * 4096 / C, in = blk * 4096 % C;
				if (pread(fd, buf, R, (off_t)(idx * R)) != (ssize_t)R ||
				    open_rec(g, fid, idx, buf, C, ptbuf))
					return 1;
				memset(ptbuf + in, op & 0xff, 4096);
				if (seal(g, fid, idx, ptbuf, C, buf) ||
				    pwrite(fd, buf, R, (off_t)(idx * R)) != (ssize_t)R)
					return 1;
			}
			double t1 = now();
			for (int op = 0; op < OPS; op++) {
				size_t blk = (size_t)rand() % (FILE_BYTES / 4096);
				size_t idx = blk * 4096 / C;
				if (pread(fd, buf, R, (off_t)(idx * R)) != (ssize_t)R ||
				    open_rec(g, fid, idx, buf, C, ptbuf))
					return 1;
			}
			double t2 = now();
			if (t1 - t0 < best_w)
				best_w = t1 - t0;
			if (t2 - t1 < best_r)
				best_r = t2 - t1;
		}
		printf("%3zu KiB  %10.0f %10.0f %8.3f%% %14.1f %14.1f %9.1fx\n", C / 1024,
		       FILE_BYTES / best_seal / 1e6, FILE_BYTES / best_open / 1e6,
		       100.0 * 28 / C, best_w / OPS * 1e6, best_r / OPS * 1e6,
		       (double)(R) / 4096);
	}
	close(fd);
	scs_gcm_free(g);
	return 0;
}
