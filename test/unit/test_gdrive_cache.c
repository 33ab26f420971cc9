/* test_gdrive_cache.c - the gdrive: write-back cache's own files: journal
 * records round-trip, a torn or damaged line is skipped (never a record
 * made up from it), the status file and block maps round-trip and bad ones
 * are refused. */
#include "scs/gdrive.h"
#include "scs/b64.h"
#include "scs/crypto.h"
#include "unit.h"

#include <errno.h>

struct got {
	struct scs_gdrive_jrec r[8];
	int n;
};

static int collect(void *arg, const struct scs_gdrive_jrec *r)
{
	struct got *g = arg;
	if (g->n < 8)
		g->r[g->n] = *r;
	g->n++;
	return 0;
}

static void test_journal(void)
{
	static struct scs_gdrive_jrec a, b;
	static char buf[3 * SCS_GDRIVE_JLINE_MAX];
	a.type = 'P';
	a.seq = 7;
	strcpy(a.id, "1aB-_z");
	a.version = 42;
	strcpy(a.rev, "0Brev.=");
	strcpy(a.path, "dir/name with space\nand newline");
	b.type = 'D';
	b.seq = 7;
	strcpy(b.id, "1aB-_z");
	b.version = 43;
	int n1 = scs_gdrive_journal_line(&a, buf, SCS_GDRIVE_JLINE_MAX);
	CHECK(n1 > 0 && buf[n1 - 1] == '\n');
	int n2 = scs_gdrive_journal_line(&b, buf + n1, SCS_GDRIVE_JLINE_MAX);
	CHECK(n2 > 0);
	struct got g = { .n = 0 };
	size_t bad = 9;
	CHECK_EQ(scs_gdrive_journal_parse(buf, (size_t)(n1 + n2), collect, &g, &bad), 0);
	CHECK_EQ(g.n, 2);
	CHECK_EQ(bad, 0);
	CHECK(g.r[0].type == 'P' && g.r[0].seq == 7 && g.r[0].version == 42 &&
	      !strcmp(g.r[0].id, a.id) && !strcmp(g.r[0].rev, a.rev) && !strcmp(g.r[0].path, a.path));
	CHECK(g.r[1].type == 'D' && g.r[1].version == 43 && !g.r[1].rev[0] && !g.r[1].path[0]);

	/* a torn last record (a crash mid-append) is skipped, the rest stands */
	for (int cut = 1; cut < n2; cut++) {
		g.n = 0;
		CHECK_EQ(scs_gdrive_journal_parse(buf, (size_t)(n1 + cut), collect, &g, &bad), 0);
		CHECK_EQ(g.n, 1);
		CHECK_EQ(bad, 1);
	}
	/* a flipped byte anywhere in a record: that record is skipped */
	for (int i = 0; i < n1 - 1; i++) {
		buf[i] ^= 0x01;
		g.n = 0;
		scs_gdrive_journal_parse(buf, (size_t)(n1 + n2), collect, &g, &bad);
		CHECK(g.n == 1 && g.r[0].type == 'D');
		buf[i] ^= 0x01;
	}
	/* N (a file made offline): the folder id in rev, the mode in version */
	static struct scs_gdrive_jrec c;
	c.type = 'N';
	c.seq = 8;
	strcpy(c.id, "1newfile");
	c.version = 0640;
	strcpy(c.rev, "folderId_-9");
	strcpy(c.path, "d/new.txt");
	int n3 = scs_gdrive_journal_line(&c, buf, SCS_GDRIVE_JLINE_MAX);
	CHECK(n3 > 0);
	g.n = 0;
	CHECK_EQ(scs_gdrive_journal_parse(buf, (size_t)n3, collect, &g, &bad), 0);
	CHECK(g.n == 1 && g.r[0].type == 'N' && g.r[0].version == 0640 &&
	      !strcmp(g.r[0].rev, c.rev) && !strcmp(g.r[0].path, c.path));
	/* other record types are neither written nor read */
	c.type = 'X';
	CHECK_EQ(scs_gdrive_journal_line(&c, buf, SCS_GDRIVE_JLINE_MAX), -EINVAL);
	c.type = 'N';
	n3 = scs_gdrive_journal_line(&c, buf, SCS_GDRIVE_JLINE_MAX);
	buf[0] = 'X';     /* (the checksum covers the type: recompute it as a forger would) */
	{
		char body[SCS_GDRIVE_JLINE_MAX];
		int k = n3 - 10;
		memcpy(body, buf, (size_t)k);
		uint8_t h[32];
		scs_sha256(body, (size_t)k, h);
		scs_hex_encode(h, 4, buf + k + 1);
	}
	g.n = 0;
	CHECK_EQ(scs_gdrive_journal_parse(buf, (size_t)n3, collect, &g, &bad), 0);
	CHECK(g.n == 0 && bad == 1);

	/* M (metadata to set): flags in version, the new folder in rev, then
	 * mode and times, each only with its flag */
	c.type = 'M';
	c.seq = 9;
	c.version = SCS_GDRIVE_WANT_MOVE | SCS_GDRIVE_WANT_MODE | SCS_GDRIVE_WANT_ATIME;
	strcpy(c.path, "d/renamed.txt");
	c.mode = 0750;
	c.mtime.tv_sec = 5;          /* (no MTIME flag: not written, read back as 0) */
	c.atime.tv_sec = 1700000000;
	c.atime.tv_nsec = 123456789;
	n3 = scs_gdrive_journal_line(&c, buf, SCS_GDRIVE_JLINE_MAX);
	CHECK(n3 > 0);
	g.n = 0;
	CHECK_EQ(scs_gdrive_journal_parse(buf, (size_t)n3, collect, &g, &bad), 0);
	CHECK(g.n == 1 && bad == 0 && g.r[0].type == 'M' && g.r[0].version == c.version &&
	      !strcmp(g.r[0].rev, c.rev) && !strcmp(g.r[0].path, c.path) && g.r[0].mode == 0750 &&
	      g.r[0].mtime.tv_sec == 0 && g.r[0].atime.tv_sec == 1700000000 &&
	      g.r[0].atime.tv_nsec == 123456789);
	/* an M without its three fields, or an unknown flag, is refused */
	c.version = 64;
	CHECK_EQ(scs_gdrive_journal_line(&c, buf, SCS_GDRIVE_JLINE_MAX), -EINVAL);
	c.version = SCS_GDRIVE_WANT_MTIME;
	c.mtime.tv_nsec = 1000000000;
	CHECK_EQ(scs_gdrive_journal_line(&c, buf, SCS_GDRIVE_JLINE_MAX), -EINVAL);
	c.type = 'R';             /* R: the plain fields only; a trailing field is refused */
	n3 = scs_gdrive_journal_line(&c, buf, SCS_GDRIVE_JLINE_MAX);
	CHECK(n3 > 0);
	g.n = 0;
	CHECK_EQ(scs_gdrive_journal_parse(buf, (size_t)n3, collect, &g, &bad), 0);
	CHECK(g.n == 1 && g.r[0].type == 'R' && !strcmp(g.r[0].path, c.path));
	{
		static const char *forged[] = { "R 3 abc 1 - - 644 - -", "M 3 abc 2 - - 644 -",
						"M 3 abc 2 - - 8 - -", "M 3 abc 4 - - - 1 -",
						"M 3 abc 1 - - - - -" };
		/* (the last: a move without the folder to move to is still a
		 * well-formed line; the back end ignores what it cannot use) */
		for (size_t i = 0; i < sizeof forged / sizeof forged[0]; i++) {
			char line[256];
			uint8_t h[32];
			size_t k = strlen(forged[i]);
			memcpy(line, forged[i], k);
			scs_sha256(line, k, h);
			line[k] = ' ';
			scs_hex_encode(h, 4, line + k + 1);
			line[k + 9] = '\n';
			g.n = 0;
			scs_gdrive_journal_parse(line, k + 10, collect, &g, &bad);
			CHECK_EQ(g.n, i == 4 ? 1 : 0);
		}
	}
	c.type = 'N';

	/* ids that could name other files are refused when writing */
	strcpy(a.id, "../x");
	CHECK_EQ(scs_gdrive_journal_line(&a, buf, SCS_GDRIVE_JLINE_MAX), -EINVAL);
}

static void test_status(void)
{
	struct scs_gdrive_status s, t;
	memset(&s, 0, sizeof s);
	s.offline = 1;
	s.offline_since = 1700000000;
	s.last_sync = 1700000100;
	s.files = 3;
	s.bytes = 1258291;
	s.deletes = 2;
	s.changes = 4;
	strcpy(s.error, "Drive unreachable: no route\nsecond line");
	char *dir = unit_tmpdir("gdrive_status");
	CHECK_EQ(scs_gdrive_status_write(dir, &s), 0);
	CHECK_EQ(scs_gdrive_status_read(dir, &t), 0);
	CHECK(t.offline == 1 && t.offline_since == s.offline_since && t.last_sync == s.last_sync &&
	      t.files == 3 && t.bytes == s.bytes && t.deletes == 2 && t.changes == 4);
	CHECK(!strcmp(t.error, "Drive unreachable: no route second line"));
	const char *bad[] = { "", "files x\n", "files 3", "nospace\n", "files 99999999999999999999\n" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		CHECK_EQ(scs_gdrive_status_parse(bad[i], strlen(bad[i]), &t), -EBADMSG);
	free(dir);
}

static void test_map(void)
{
	uint8_t have[2] = { 0x05, 0x01 };
	struct scs_gdrive_map m = { .version = 9, .size = 9 * 1000 + 1, .nblocks = 10, .have = have }, t;
	strcpy(m.rev, "0Bx");
	char *line;
	size_t len;
	CHECK_EQ(scs_gdrive_map_format(&m, &line, &len), 0);
	CHECK_EQ(scs_gdrive_map_parse(line, len, 1000, &t), 0);
	CHECK(t.version == 9 && t.size == m.size && t.nblocks == 10 && !strcmp(t.rev, "0Bx") &&
	      t.have && !memcmp(t.have, have, 2));
	free(t.have);
	/* the block count must match the size (another block size: refused) */
	CHECK_EQ(scs_gdrive_map_parse(line, len, 4096, &t), -EBADMSG);
	CHECK_EQ(scs_gdrive_map_parse(line, len - 1, 1000, &t), -EBADMSG);   /* torn */
	line[len - 2] = 'x';
	CHECK_EQ(scs_gdrive_map_parse(line, len, 1000, &t), -EBADMSG);
	free(line);
}

static uint8_t snap_data[16];

static int snap_got(void *arg, const struct scs_gdrive_snap_ent *e)
{
	struct scs_gdrive_snap_ent *out = arg;
	int i = out[0].m.id[0] ? 1 : 0;
	out[i] = *e;
	if (e->len <= sizeof snap_data) {      /* (e->data: only during the call) */
		memcpy(snap_data, e->data, e->len);
		out[i].data = snap_data;
	}
	return 0;
}

static void test_snapshot(void)
{
	static struct scs_gdrive_snap_ent a, b, got[2];
	struct scs_gdrive_snap s;
	char root[SCS_GDRIVE_ID_MAX + 1], token[SCS_GDRIVE_TOKEN_MAX + 1];
	strcpy(a.path, "");               /* the root */
	strcpy(a.m.id, "rootId_-1");
	a.flags = SCS_GDRIVE_SNAP_DIR | SCS_GDRIVE_SNAP_LISTED;
	a.m.mtime.tv_sec = 1700000000;
	strcpy(b.path, "Zm9v/a name with spaces\nand a newline");
	strcpy(b.pid, "rootId_-1");
	strcpy(b.m.id, "fileId");
	strcpy(b.m.name, "a name with spaces\nand a newline");
	strcpy(b.m.rev, "0Brev.=");
	b.m.size = 300;
	b.m.version = 7;
	b.m.perm = 0640;
	b.m.atime.tv_nsec = 999999999;
	b.flags = SCS_GDRIVE_SNAP_PERM | SCS_GDRIVE_SNAP_DATA;
	b.data = (const uint8_t *)"\0\1binary";
	b.len = 8;
	CHECK_EQ(scs_gdrive_snap_begin(&s, "rootId_-1", "tok/123"), 0);
	CHECK_EQ(scs_gdrive_snap_add(&s, &a), 0);
	CHECK_EQ(scs_gdrive_snap_add(&s, &b), 0);
	CHECK_EQ(scs_gdrive_snap_end(&s), 0);
	memset(got, 0, sizeof got);
	CHECK_EQ(scs_gdrive_snap_parse(s.buf, s.len, root, token, snap_got, got), 0);
	CHECK(!strcmp(root, "rootId_-1") && !strcmp(token, "tok/123"));
	CHECK(!got[0].path[0] && got[0].m.is_dir && got[0].flags == a.flags &&
	      got[0].m.mtime.tv_sec == 1700000000);
	CHECK(!strcmp(got[1].path, b.path) && !strcmp(got[1].pid, b.pid) &&
	      !strcmp(got[1].m.name, b.m.name) && !strcmp(got[1].m.rev, "0Brev.=") &&
	      got[1].m.size == 300 && got[1].m.version == 7 && got[1].m.perm == 0640 &&
	      got[1].m.has_perm && got[1].m.atime.tv_nsec == 999999999 && got[1].len == 8 &&
	      !memcmp(got[1].data, "\0\1binary", 8) && !strcmp(got[1].m.parent, b.pid));
	/* any byte changed, or the end cut: refused whole */
	for (size_t i = 0; i < s.len; i += 7) {
		s.buf[i] ^= 0x20;
		CHECK_EQ(scs_gdrive_snap_parse(s.buf, s.len, root, token, snap_got, got), -EBADMSG);
		s.buf[i] ^= 0x20;
	}
	CHECK_EQ(scs_gdrive_snap_parse(s.buf, s.len - 1, root, token, snap_got, got), -EBADMSG);
	free(s.buf);
	/* what no snapshot can hold is refused when writing */
	CHECK_EQ(scs_gdrive_snap_begin(&s, "../x", ""), -EINVAL);
	free(s.buf);
	CHECK_EQ(scs_gdrive_snap_begin(&s, "r", "has space"), -EINVAL);
	free(s.buf);
	CHECK_EQ(scs_gdrive_snap_begin(&s, "r", ""), 0);
	b.flags = 64;
	CHECK_EQ(scs_gdrive_snap_add(&s, &b), -EINVAL);
	free(s.buf);
}

int main(void)
{
	test_journal();
	test_snapshot();
	test_status();
	test_map();
	return unit_done("gdrive_cache");
}
