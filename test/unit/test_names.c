/* test_names.c - encrypted names (round trip, directory binding, long
 * names), sync-client decorations, symlink targets, .scsdir objects, and
 * the golden name/symlink vectors in test/golden/vectors. */
#include "unit.h"
#include "scs/names.h"
#include "scs/b64.h"

#include <errno.h>
#include <stdint.h>

static uint8_t key[SCS_SIV_KEY_LEN], dir_a[16], dir_b[16];

static void setup(void)
{
	uint8_t ek[32];
	for (int i = 0; i < 32; i++)
		ek[i] = (uint8_t)(0x40 + i);
	CHECK_EQ(scs_name_key(ek, key), 0);
	scs_random(dir_a, 16);
	memcpy(dir_b, dir_a, 16);
	dir_b[0] ^= 1;
}

static void test_name_key(void)
{
	uint8_t ek[32], k1[64], k2[64], want[64];
	memset(ek, 7, 32);
	CHECK_EQ(scs_name_key(ek, k1), 0);
	CHECK_EQ(scs_hkdf(ek, 32, NULL, 0, "scsfs v1 name key", 17, want, 64), 0);
	CHECK_MEM(k1, want, 64);
	ek[31] ^= 1;
	CHECK_EQ(scs_name_key(ek, k2), 0);
	CHECK(memcmp(k1, k2, 64) != 0);
}

static void roundtrip(const char *name, int want_long)
{
	char full[SCS_ENC_NAME_BUF], stored[SCS_ENC_NAME_BUF], plain[SCS_NAME_MAX + 1];
	char full2[SCS_ENC_NAME_BUF], stored2[SCS_ENC_NAME_BUF];
	int is_long = -1, is_long2 = -1;
	size_t el;
	CHECK_EQ(scs_name_encrypt(key, dir_a, name, full, stored, &is_long), 0);
	CHECK_EQ(is_long, want_long);
	CHECK(strlen(stored) <= SCS_NAME_MAX_ENC);
	CHECK_EQ(strlen(full), scs_b64url_len(16 + strlen(name)));
	/* Deterministic (lookups depend on it) and directory-bound. */
	CHECK_EQ(scs_name_encrypt(key, dir_a, name, full2, stored2, &is_long2), 0);
	CHECK(strcmp(full, full2) == 0 && strcmp(stored, stored2) == 0);
	CHECK_EQ(scs_name_encrypt(key, dir_b, name, full2, stored2, &is_long2), 0);
	CHECK(strcmp(full, full2) != 0);
	CHECK_EQ(scs_name_decrypt(key, dir_a, full, strlen(full), plain), 0);
	CHECK(strcmp(plain, name) == 0);
	CHECK_EQ(scs_name_decrypt(key, dir_b, full, strlen(full), plain), -EBADMSG);
	if (want_long) {
		CHECK_EQ(strlen(stored), 45);
		CHECK_EQ(scs_name_classify(stored, &el), SCS_NAME_LONG);
		CHECK_EQ(el, 45);
		CHECK_EQ(scs_name_long_check(stored, strlen(stored), full, strlen(full)), 0);
		CHECK_EQ(scs_name_long_check(stored, strlen(stored), full2, strlen(full2)), -EBADMSG);
		char side[64];
		snprintf(side, sizeof side, "%s%s", stored, SCS_LONG_SUFFIX);
		CHECK_EQ(scs_name_classify(side, &el), SCS_NAME_LONG_SIDE);
		CHECK_EQ(el, 45);
	} else {
		CHECK(strcmp(stored, full) == 0);
		CHECK_EQ(scs_name_classify(stored, &el), SCS_NAME_PLAIN_ENC);
		CHECK_EQ(el, strlen(stored));
	}
}

static void test_names(void)
{
	char big[300];
	roundtrip("a", 0);
	roundtrip("report.odt", 0);
	roundtrip("Grüße – 日本語 ✓.txt", 0);
	roundtrip(".hidden", 0);
	roundtrip("...", 0);
	roundtrip("name with spaces (1).txt", 0);
	/* 149 bytes is the longest short form: 16 + 149 = 165 bytes = 220 chars. */
	memset(big, 'x', sizeof big);
	big[149] = 0;
	roundtrip(big, 0);
	big[149] = 'x';
	big[150] = 0;
	roundtrip(big, 1);
	big[150] = 'x';
	big[255] = 0;
	roundtrip(big, 1);

	char full[SCS_ENC_NAME_BUF], stored[SCS_ENC_NAME_BUF];
	int il;
	big[255] = 'x';
	big[256] = 0;
	CHECK_EQ(scs_name_encrypt(key, dir_a, big, full, stored, &il), -ENAMETOOLONG);
	CHECK_EQ(scs_name_encrypt(key, dir_a, "", full, stored, &il), -EINVAL);
	CHECK_EQ(scs_name_encrypt(key, dir_a, ".", full, stored, &il), -EINVAL);
	CHECK_EQ(scs_name_encrypt(key, dir_a, "..", full, stored, &il), -EINVAL);
	CHECK_EQ(scs_name_encrypt(key, dir_a, "a/b", full, stored, &il), -EINVAL);
	CHECK_EQ(scs_name_encrypt(key, dir_a, "/", full, stored, &il), -EINVAL);
}

static void test_decrypt_rejects(void)
{
	char full[SCS_ENC_NAME_BUF], stored[SCS_ENC_NAME_BUF], plain[SCS_NAME_MAX + 1];
	int il;
	CHECK_EQ(scs_name_encrypt(key, dir_a, "secret.txt", full, stored, &il), 0);
	size_t n = strlen(full);
	/* Any changed character. */
	int accepted = 0;
	for (size_t i = 0; i < n; i++) {
		char save = full[i];
		full[i] = save == 'A' ? 'B' : 'A';
		accepted += scs_name_decrypt(key, dir_a, full, n, plain) == 0;
		full[i] = save;
	}
	CHECK_EQ(accepted, 0);
	/* Truncated, extended, decorated, other key. */
	CHECK_EQ(scs_name_decrypt(key, dir_a, full, n - 1, plain), -EBADMSG);
	CHECK_EQ(scs_name_decrypt(key, dir_a, full, 22, plain), -EBADMSG);
	CHECK_EQ(scs_name_decrypt(key, dir_a, full, 0, plain), -EBADMSG);
	strcat(full, " (1)");
	CHECK_EQ(scs_name_decrypt(key, dir_a, full, n + 4, plain), -EBADMSG);
	full[n] = 0;
	uint8_t k2[64];
	memcpy(k2, key, 64);
	k2[63] ^= 1;
	CHECK_EQ(scs_name_decrypt(k2, dir_a, full, n, plain), -EBADMSG);
	CHECK_EQ(scs_name_decrypt(key, dir_a, full, n, plain), 0);
	/* Authentic ciphertexts of names no directory can hold are refused. */
	const char *evil[] = { "a/b", ".", "..", "x\0y" };
	size_t evil_len[] = { 3, 1, 2, 3 };
	for (int i = 0; i < 4; i++) {
		uint8_t ct[64];
		char enc[128];
		CHECK_EQ(scs_siv_seal(key, dir_a, 16, (const uint8_t *)evil[i], evil_len[i], ct), 0);
		scs_b64url_encode(ct, 16 + evil_len[i], enc);
		CHECK_EQ(scs_name_decrypt(key, dir_a, enc, strlen(enc), plain), -EBADMSG);
	}
	/* Too long to be any name (256-byte plaintext). */
	uint8_t ct[16 + 256];
	char enc[512];
	memset(plain, 'y', 256);
	CHECK_EQ(scs_siv_seal(key, dir_a, 16, (const uint8_t *)plain, 256, ct), 0);
	scs_b64url_encode(ct, sizeof ct, enc);
	CHECK_EQ(scs_name_decrypt(key, dir_a, enc, strlen(enc), plain), -EBADMSG);
}

static void test_classify(void)
{
	char full[SCS_ENC_NAME_BUF], stored[SCS_ENC_NAME_BUF], buf[600];
	int il;
	size_t el;
	CHECK_EQ(scs_name_encrypt(key, dir_a, "report.odt", full, stored, &il), 0);
	size_t n = strlen(stored);
	const char *decorations[] = {
		" (1)", " (2)", " (12345)",
		" (conflicted copy 2026-11-23)",
		" (alice's conflicted copy 2026-11-23)",
		" (Alice’s conflicted copy 2026-11-23 (1))", /* nested: foreign, below */
		" (conflicted copy 2026-11-23 101010)",
		" (Case Conflict)",
		".sync-conflict-20261123-101010-ABCDEFG",
	};
	for (size_t i = 0; i < sizeof decorations / sizeof decorations[0]; i++) {
		snprintf(buf, sizeof buf, "%s%s", stored, decorations[i]);
		int c = scs_name_classify(buf, &el);
		if (i == 5) {
			CHECK_EQ(c, SCS_NAME_FOREIGN);
			continue;
		}
		CHECK_EQ(c, SCS_NAME_PLAIN_ENC);
		CHECK_EQ(el, n);
	}
	const char *foreign[] = {
		"", "hello.txt", "abc", "Thumbs.db", "desktop.ini", ".DS_Store",
		"L~", "L~abc", "S1abc",
		"AAAAAAAAAAAAAAAAAAAAAAA (1", "AAAAAAAAAAAAAAAAAAAAAAA(1)",
		"AAAAAAAAAAAAAAAAAAAAAAA (a/b)", "AAAAAAAAAAAAAAAAAAAAAAA ()",
		"AAAAAAAAAAAAAAAAAAAAAAA (x\ty)", "AAAAAAAAAAAAAAAAAAAAAAA.txt",
		"AAAAAAAAAAAAAAAAAAAAAAA.sync-conflict-a.b",
		"AAAAAAAAAAAAAAAAAAAAAA",          /* 22: shorter than any name */
		"AAAAAAAAAAAAAAAAAAAAAAAAA",        /* 25 = 1 mod 4 */
		"AAAAAAAAAAAAAAAAAAAAAAA (1) (1)",
	};
	for (size_t i = 0; i < sizeof foreign / sizeof foreign[0]; i++) {
		int c = scs_name_classify(foreign[i], &el);
		if (c != SCS_NAME_FOREIGN)
			fprintf(stderr, "classify(\"%s\") = %d\n", foreign[i], c);
		CHECK_EQ(c, SCS_NAME_FOREIGN);
	}
	CHECK_EQ(scs_name_classify("AAAAAAAAAAAAAAAAAAAAAAA", &el), SCS_NAME_PLAIN_ENC);
	/* An over-long decoration. */
	snprintf(buf, sizeof buf, "%s (%090d)", stored, 1);
	CHECK_EQ(scs_name_classify(buf, &el), SCS_NAME_FOREIGN);
	/* 221 alphabet characters: longer than we ever store. */
	memset(buf, 'A', 221);
	buf[221] = 0;
	CHECK_EQ(scs_name_classify(buf, &el), SCS_NAME_FOREIGN);
	buf[220] = 0;
	CHECK_EQ(scs_name_classify(buf, &el), SCS_NAME_PLAIN_ENC);
	/* Reserved. */
	CHECK_EQ(scs_name_classify(".scsdir", &el), SCS_NAME_RESERVED);
	CHECK_EQ(scs_name_classify(".scsfs", &el), SCS_NAME_RESERVED);
	snprintf(buf, sizeof buf, "%s.tmp-0123456789abcdef", stored);
	CHECK_EQ(scs_name_classify(buf, &el), SCS_NAME_RESERVED);
	CHECK_EQ(scs_name_classify(".scsdir.tmp-0123456789abcdef", &el), SCS_NAME_RESERVED);
	CHECK_EQ(scs_name_classify(".scsdir (1)", &el), SCS_NAME_FOREIGN);

	/* Long forms, plain and decorated. */
	char big[256];
	memset(big, 'z', 255);
	big[255] = 0;
	CHECK_EQ(scs_name_encrypt(key, dir_a, big, full, stored, &il), 0);
	CHECK_EQ(il, 1);
	snprintf(buf, sizeof buf, "%s (1)", stored);
	CHECK_EQ(scs_name_classify(buf, &el), SCS_NAME_LONG);
	CHECK_EQ(el, 45);
	snprintf(buf, sizeof buf, "%s (1).name", stored);
	CHECK_EQ(scs_name_classify(buf, &el), SCS_NAME_LONG_SIDE);
	CHECK_EQ(el, 45);
	snprintf(buf, sizeof buf, "%sA", stored);
	CHECK_EQ(scs_name_classify(buf, &el), SCS_NAME_FOREIGN);
	snprintf(buf, sizeof buf, "%s.nam", stored);
	CHECK_EQ(scs_name_classify(buf, &el), SCS_NAME_FOREIGN);
	snprintf(buf, sizeof buf, "%s", stored);
	buf[10] = '.';
	CHECK_EQ(scs_name_classify(buf, &el), SCS_NAME_FOREIGN);
}

static void test_decorate(void)
{
	char out[SCS_NAME_MAX + 1], plain[SCS_NAME_MAX + 1];
	size_t off, len;
	struct { const char *plain, *dec, *shown; } cases[] = {
		{ "report.odt", " (1)", "report (1).odt" },
		{ "report", " (1)", "report (1)" },
		{ ".bashrc", " (1)", ".bashrc (1)" },
		{ "a.tar.gz", " (2)", "a.tar (2).gz" },
		{ "name.", " (1)", "name. (1)" },
		{ "x (2).txt", " (1)", "x (2) (1).txt" },
		{ "notes.txt", " (alice's conflicted copy 2026-11-23)",
		  "notes (alice's conflicted copy 2026-11-23).txt" },
		{ "notes.txt", ".sync-conflict-20261123-101010-ABCDEFG",
		  "notes.sync-conflict-20261123-101010-ABCDEFG.txt" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		CHECK_EQ(scs_name_decorate(cases[i].plain, cases[i].dec, strlen(cases[i].dec), out), 0);
		CHECK(strcmp(out, cases[i].shown) == 0);
		CHECK_EQ(scs_name_undecorate(cases[i].shown, plain, &off, &len), 1);
		CHECK(strcmp(plain, cases[i].plain) == 0);
		CHECK_EQ(len, strlen(cases[i].dec));
		CHECK(strncmp(cases[i].shown + off, cases[i].dec, len) == 0);
	}
	/* Ordinary names are not decorated. */
	const char *plainnames[] = { "report.odt", "a (1.txt", "(1).txt", "a(1).txt",
				     "a (x/y)", "abc", "a.b (1)" };
	for (size_t i = 0; i < sizeof plainnames / sizeof plainnames[0]; i++)
		CHECK_EQ(scs_name_undecorate(plainnames[i], plain, &off, &len), 0);
	/* Too long to decorate. */
	char big[256];
	memset(big, 'q', 253);
	big[253] = 0;
	CHECK_EQ(scs_name_decorate(big, " (1)", 4, out), -ENAMETOOLONG);
	big[251] = 0;
	CHECK_EQ(scs_name_decorate(big, " (1)", 4, out), 0);
	CHECK_EQ(strlen(out), 255);
	CHECK_EQ(scs_name_decorate("a", " (x/y)", 6, out), -EINVAL);
}

/* From a remote listing entry to what the user sees, and back. */
static void test_decorated_flow(void)
{
	char full[SCS_ENC_NAME_BUF], stored[SCS_ENC_NAME_BUF], remote[600];
	char plain[SCS_NAME_MAX + 1], shown[SCS_NAME_MAX + 1], back[SCS_NAME_MAX + 1];
	int il;
	size_t el, off, len;
	CHECK_EQ(scs_name_encrypt(key, dir_a, "budget.xlsx", full, stored, &il), 0);
	snprintf(remote, sizeof remote, "%s (conflicted copy 2026-11-23)", stored);
	CHECK_EQ(scs_name_classify(remote, &el), SCS_NAME_PLAIN_ENC);
	CHECK_EQ(scs_name_decrypt(key, dir_a, remote, el, plain), 0);
	CHECK(strcmp(plain, "budget.xlsx") == 0);
	CHECK_EQ(scs_name_decorate(plain, remote + el, strlen(remote + el), shown), 0);
	CHECK(strcmp(shown, "budget (conflicted copy 2026-11-23).xlsx") == 0);
	CHECK_EQ(scs_name_undecorate(shown, back, &off, &len), 1);
	CHECK(strcmp(back, "budget.xlsx") == 0);
	CHECK_EQ(len, strlen(remote + el));
	CHECK_MEM(shown + off, remote + el, len);
}

static void test_symlinks(void)
{
	uint8_t ek[32], ek2[32];
	char enc[SCS_SYMLINK_ENC_BUF], enc2[SCS_SYMLINK_ENC_BUF], t[SCS_SYMLINK_MAX + 1];
	uint32_t ep = 0;
	scs_random(ek, 32);
	memcpy(ek2, ek, 32);
	ek2[5] ^= 1;
	CHECK_EQ(scs_symlink_encrypt(ek, 42, dir_a, "../docs/report.odt", enc), 0);
	CHECK(strncmp(enc, "S1", 2) == 0);
	CHECK_EQ(strlen(enc), 2 + scs_b64url_len(4 + 12 + 18 + 16));
	CHECK_EQ(scs_symlink_epoch(enc, &ep), 0);
	CHECK_EQ(ep, 42);
	CHECK_EQ(scs_symlink_decrypt(ek, dir_a, enc, t), 0);
	CHECK(strcmp(t, "../docs/report.odt") == 0);
	/* Random nonce: encrypting twice differs. */
	CHECK_EQ(scs_symlink_encrypt(ek, 42, dir_a, "../docs/report.odt", enc2), 0);
	CHECK(strcmp(enc, enc2) != 0);
	/* Other directory, other key. */
	CHECK_EQ(scs_symlink_decrypt(ek, dir_b, enc, t), -EBADMSG);
	CHECK_EQ(scs_symlink_decrypt(ek2, dir_a, enc, t), -EBADMSG);
	/* Every character changed (incl. the epoch field, which is in the AAD). */
	size_t n = strlen(enc);
	int accepted = 0;
	for (size_t i = 0; i < n; i++) {
		char save = enc[i];
		enc[i] = save == 'A' ? 'B' : 'A';
		accepted += scs_symlink_decrypt(ek, dir_a, enc, t) == 0;
		enc[i] = save;
	}
	CHECK_EQ(accepted, 0);
	/* Truncation and junk. */
	enc[n - 1] = 0;
	CHECK_EQ(scs_symlink_decrypt(ek, dir_a, enc, t), -EBADMSG);
	CHECK_EQ(scs_symlink_epoch("S1", &ep), -EBADMSG);
	CHECK_EQ(scs_symlink_epoch("", &ep), -EBADMSG);
	CHECK_EQ(scs_symlink_epoch("/etc/passwd", &ep), -EBADMSG);
	CHECK_EQ(scs_symlink_epoch("S1AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==", &ep), -EBADMSG);
	CHECK_EQ(scs_symlink_epoch("S2AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", &ep), -EBADMSG);
	/* Length limits. */
	static char big[SCS_SYMLINK_MAX + 2];
	memset(big, 'p', SCS_SYMLINK_MAX);
	big[SCS_SYMLINK_MAX] = 0;
	CHECK_EQ(scs_symlink_encrypt(ek, 1, dir_a, big, enc), 0);
	CHECK(strlen(enc) < SCS_SYMLINK_ENC_BUF);
	CHECK_EQ(scs_symlink_decrypt(ek, dir_a, enc, t), 0);
	CHECK(strcmp(t, big) == 0);
	big[SCS_SYMLINK_MAX] = 'p';
	big[SCS_SYMLINK_MAX + 1] = 0;
	CHECK_EQ(scs_symlink_encrypt(ek, 1, dir_a, big, enc), -ENAMETOOLONG);
	CHECK_EQ(scs_symlink_encrypt(ek, 1, dir_a, "", enc), -EINVAL);
}

static void test_dirid(void)
{
	uint8_t obj[SCS_DIRID_OBJ_LEN], id[16], bad[SCS_DIRID_OBJ_LEN + 1];
	scs_dirid_encode(dir_a, obj);
	CHECK_MEM(obj, "SCSD\x00\x01", 6);
	CHECK_MEM(obj + 6, dir_a, 16);
	CHECK_EQ(scs_dirid_decode(obj, sizeof obj, id), 0);
	CHECK_MEM(id, dir_a, 16);
	for (size_t len = 0; len < sizeof obj; len++)
		CHECK_EQ(scs_dirid_decode(obj, len, id), -EBADMSG);
	memcpy(bad, obj, sizeof obj);
	bad[sizeof obj] = 0;
	CHECK_EQ(scs_dirid_decode(bad, sizeof bad, id), -EBADMSG);
	for (int i = 0; i < 6; i++) {
		memcpy(bad, obj, sizeof obj);
		bad[i] ^= 2;
		CHECK_EQ(scs_dirid_decode(bad, sizeof obj, id), -EBADMSG);
	}
	/* Root id. */
	uint8_t gid[32], root[16], in[20 + 32], h[32];
	for (int i = 0; i < 32; i++)
		gid[i] = (uint8_t)i;
	scs_root_dir_id(gid, root);
	memcpy(in, "scsfs v1 root dir id", 20);
	memcpy(in + 20, gid, 32);
	scs_sha256(in, sizeof in, h);
	CHECK_MEM(root, h, 16);
}

/* ---- golden vectors ---- */

static char *golden_value(const char *name)
{
	static char text[16384];
	static size_t tlen;
	if (!tlen) {
		FILE *f = fopen("../golden/vectors/inputs.txt", "r");
		if (!f) {
			fprintf(stderr, "cannot open ../golden/vectors/inputs.txt (run from test/unit)\n");
			unit_failures++;
			return NULL;
		}
		tlen = fread(text, 1, sizeof text - 1, f);
		fclose(f);
	}
	size_t kl = strlen(name);
	for (char *l = text; l && *l; l = strchr(l, '\n'), l = l ? l + 1 : NULL) {
		if (strncmp(l, name, kl) == 0 && strncmp(l + kl, " = ", 3) == 0) {
			static char val[8192];
			char *v = l + kl + 3, *e = strchr(v, '\n');
			size_t vl = e ? (size_t)(e - v) : strlen(v);
			if (vl >= sizeof val)
				break;
			memcpy(val, v, vl);
			val[vl] = 0;
			return val;
		}
	}
	fprintf(stderr, "golden inputs.txt: no '%s'\n", name);
	unit_failures++;
	return NULL;
}

static int golden_hex(const char *k, uint8_t *out, size_t n)
{
	char *v = golden_value(k);
	if (!v || strlen(v) != 2 * n || scs_hex_decode(v, 2 * n, out, n) != (int)n) {
		unit_failures++;
		return -1;
	}
	return 0;
}

static void test_golden(void)
{
	uint8_t ek[32], did[16], nk[64];
	char plain[SCS_NAME_MAX + 1], t[SCS_SYMLINK_MAX + 1], *v, full[SCS_ENC_NAME_BUF];
	char stored[SCS_ENC_NAME_BUF], want_name[SCS_NAME_MAX + 1];
	int il;
	if (golden_hex("epoch_key", ek, 32) || golden_hex("dir_id", did, 16))
		return;
	CHECK_EQ(scs_name_key(ek, nk), 0);
	if (!(v = golden_value("name_plain")))
		return;
	snprintf(want_name, sizeof want_name, "%s", v);
	if (!(v = golden_value("name_enc")))
		return;
	CHECK_EQ(scs_name_decrypt(nk, did, v, strlen(v), plain), 0);
	CHECK(strcmp(plain, want_name) == 0);
	/* SIV is deterministic: encryption must still give the same bytes. */
	CHECK_EQ(scs_name_encrypt(nk, did, want_name, full, stored, &il), 0);
	CHECK(strcmp(full, v) == 0);

	if (!(v = golden_value("long_name_plain_char")))
		return;
	memset(want_name, v[0], 200);
	want_name[200] = 0;
	if (!(v = golden_value("long_name_stored")))
		return;
	CHECK_EQ(scs_name_encrypt(nk, did, want_name, full, stored, &il), 0);
	CHECK_EQ(il, 1);
	CHECK(strcmp(stored, v) == 0);
	CHECK_EQ(scs_name_long_check(v, strlen(v), full, strlen(full)), 0);

	if (!(v = golden_value("symlink_plain")))
		return;
	snprintf(want_name, sizeof want_name, "%s", v);
	if (!(v = golden_value("symlink_enc")))
		return;
	uint32_t ep = 0;
	CHECK_EQ(scs_symlink_epoch(v, &ep), 0);
	CHECK_EQ(ep, 7);
	CHECK_EQ(scs_symlink_decrypt(ek, did, v, t), 0);
	CHECK(strcmp(t, want_name) == 0);

	uint8_t obj[SCS_DIRID_OBJ_LEN], id[16];
	if (golden_hex("scsdir_obj", obj, sizeof obj) == 0) {
		CHECK_EQ(scs_dirid_decode(obj, sizeof obj, id), 0);
		CHECK_MEM(id, did, 16);
	}
	uint8_t gid[32], root[16], want_root[16];
	if (golden_hex("group_id", gid, 32) == 0 && golden_hex("root_dir_id", want_root, 16) == 0) {
		scs_root_dir_id(gid, root);
		CHECK_MEM(root, want_root, 16);
	}
}

/* Duplicate suffixes (names.h): exact form only; classify looks through it. */
static void test_duplicates(void)
{
	size_t bl = 0;
	char tag[SCS_DUP_TAG_LEN + 1];
	CHECK_EQ(scs_name_dup_split("abc (duplicate 0123abcd)", &bl, tag), 1);
	CHECK_EQ(bl, 3);
	CHECK(!strcmp(tag, "0123abcd"));
	CHECK_EQ(scs_name_dup_split(" (duplicate 0123abcd)", &bl, tag), 0);      /* nothing before */
	CHECK_EQ(scs_name_dup_split("abc (duplicate 0123ABCD)", &bl, tag), 0);
	CHECK_EQ(scs_name_dup_split("abc (duplicate 0123abc)", &bl, tag), 0);
	CHECK_EQ(scs_name_dup_split("abc (duplicate 0123abcde)", &bl, tag), 0);
	CHECK_EQ(scs_name_dup_split("abc (duplicate 0123abcd).txt", &bl, tag), 0);
	CHECK_EQ(scs_name_dup_split("abc(duplicate 0123abcd)", &bl, tag), 0);
	CHECK_EQ(scs_name_has_dup_marker("a (duplicate 0123abcd).txt"), 1);
	CHECK_EQ(scs_name_has_dup_marker("a (duplicate 0123abcd)"), 1);
	CHECK_EQ(scs_name_has_dup_marker("a (duplicate 0123abcd) (1).txt"), 1);
	CHECK_EQ(scs_name_has_dup_marker("a (duplicate (duplicate 0123abcd).txt"), 1);
	CHECK_EQ(scs_name_has_dup_marker("a (duplicate 0123abc).txt"), 0);
	CHECK_EQ(scs_name_has_dup_marker("a (duplicate 0123abcd"), 0);
	CHECK_EQ(scs_name_has_dup_marker("report (1).txt"), 0);
	/* classify: the duplicated name decides; the suffix is decoration */
	const char *enc = "AAAAAAAAAAAAAAAAAAAAAAAA";    /* 24 alphabet characters */
	char n[128];
	size_t el = 0;
	snprintf(n, sizeof n, "%s (duplicate 0123abcd)", enc);
	CHECK_EQ(scs_name_classify(n, &el), SCS_NAME_PLAIN_ENC);
	CHECK_EQ(el, strlen(enc));
	snprintf(n, sizeof n, "%s (1) (duplicate 0123abcd)", enc);
	CHECK_EQ(scs_name_classify(n, &el), SCS_NAME_PLAIN_ENC);
	CHECK_EQ(el, strlen(enc));
	CHECK_EQ(scs_name_classify(".scsdir (duplicate 0123abcd)", &el), SCS_NAME_RESERVED);
	CHECK_EQ(scs_name_classify("plain.txt (duplicate 0123abcd)", &el), SCS_NAME_FOREIGN);
	char dec[SCS_NAME_MAX + 1];
	CHECK_EQ(scs_name_decorate("report.txt", n + strlen(enc), strlen(n) - strlen(enc), dec), 0);
	CHECK(!strcmp(dec, "report (1) (duplicate 0123abcd).txt"));
}

int main(void)
{
	setup();
	test_name_key();
	test_names();
	test_decrypt_rejects();
	test_classify();
	test_decorate();
	test_decorated_flow();
	test_symlinks();
	test_dirid();
	test_golden();
	test_duplicates();
	return unit_done("names");
}
