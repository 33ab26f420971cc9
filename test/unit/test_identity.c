/* test_identity.c - identities (create, unlock, export/parse, parser
 * rejections), fingerprints, and passphrase input from files. */
#include "unit.h"

#include "scs/b64.h"
#include "scs/config.h"
#include "scs/identity.h"
#include "scs/passphrase.h"

#include <errno.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/rsa.h>
#include <openssl/x509.h>

static char *tmp;

static void write_text(const char *path, const char *s, size_t n)
{
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(s, 1, n, f) != n || fclose(f) != 0) {
		perror(path);
		exit(2);
	}
}

static void test_passphrase(void)
{
	char path[4096];
	struct scs_passphrase p;
	scs_err err = { 0 };
	snprintf(path, sizeof path, "%s/pass", tmp);

	write_text(path, "correct horse\n", 14);
	CHECK_EQ(scs_passphrase_get(path, NULL, SCS_PASS_NO_PROMPT, &p, &err), 0);
	CHECK_EQ(p.len, 13);
	CHECK(strcmp(p.buf, "correct horse") == 0);
	scs_passphrase_clear(&p);
	CHECK(p.buf == NULL);

	write_text(path, "crlf\r\n", 6);
	CHECK_EQ(scs_passphrase_get(path, NULL, 0, &p, &err), 0);
	CHECK(p.len == 4 && strcmp(p.buf, "crlf") == 0);
	scs_passphrase_clear(&p);

	/* Only one trailing newline is stripped. */
	write_text(path, "two\n\n", 5);
	CHECK_EQ(scs_passphrase_get(path, NULL, 0, &p, &err), 0);
	CHECK(p.len == 4 && memcmp(p.buf, "two\n", 4) == 0);
	scs_passphrase_clear(&p);

	write_text(path, "no newline", 10);
	CHECK_EQ(scs_passphrase_get(path, NULL, 0, &p, &err), 0);
	CHECK(p.len == 10);
	scs_passphrase_clear(&p);

	/* Through the environment variable. */
	write_text(path, "from env\n", 9);
	setenv(SCS_PASSPHRASE_ENV, path, 1);
	CHECK_EQ(scs_passphrase_get(NULL, NULL, SCS_PASS_NO_PROMPT, &p, &err), 0);
	CHECK(p.buf && strcmp(p.buf, "from env") == 0);
	scs_passphrase_clear(&p);
	unsetenv(SCS_PASSPHRASE_ENV);

	/* Empty, too long, missing, NUL inside. */
	write_text(path, "\n", 1);
	CHECK_EQ(scs_passphrase_get(path, NULL, SCS_PASS_NONEMPTY, &p, &err), -EINVAL);
	CHECK_EQ(scs_passphrase_get(path, NULL, 0, &p, &err), 0);
	CHECK_EQ(p.len, 0);
	scs_passphrase_clear(&p);
	char big[SCS_PASSPHRASE_MAX + 2];
	memset(big, 'x', sizeof big);
	write_text(path, big, SCS_PASSPHRASE_MAX);
	CHECK_EQ(scs_passphrase_get(path, NULL, 0, &p, &err), 0);
	CHECK_EQ(p.len, SCS_PASSPHRASE_MAX);
	scs_passphrase_clear(&p);
	big[SCS_PASSPHRASE_MAX] = '\n';
	write_text(path, big, SCS_PASSPHRASE_MAX + 1);
	CHECK_EQ(scs_passphrase_get(path, NULL, 0, &p, &err), 0);
	scs_passphrase_clear(&p);
	write_text(path, big, sizeof big);      /* MAX + 1 bytes then more */
	big[SCS_PASSPHRASE_MAX] = 'x';
	write_text(path, big, SCS_PASSPHRASE_MAX + 1);
	CHECK_EQ(scs_passphrase_get(path, NULL, 0, &p, &err), -EINVAL);
	CHECK(p.buf == NULL);
	write_text(path, "a\0b", 3);
	CHECK_EQ(scs_passphrase_get(path, NULL, 0, &p, &err), -EINVAL);
	char missing[4200];
	snprintf(missing, sizeof missing, "%s/nope", tmp);
	CHECK_EQ(scs_passphrase_get(missing, NULL, 0, &p, &err), -ENOENT);

	/* No file and no prompting allowed: the documented message. */
	CHECK_EQ(scs_passphrase_get(NULL, NULL, SCS_PASS_NO_PROMPT, &p, &err), -ENXIO);
	CHECK(strcmp(err.msg, "no passphrase: set SCSFS_PASSPHRASE_FILE or use --passphrase-file") == 0);
}

static void test_fpr_text(void)
{
	uint8_t f[SCS_FPR_LEN], g[SCS_FPR_LEN];
	char t[SCS_FPR_TEXT_LEN];
	for (int i = 0; i < SCS_FPR_LEN; i++)
		f[i] = (uint8_t)(i * 37 + 5);
	scs_fpr_format(f, t);
	CHECK_EQ(strlen(t), 79);
	CHECK(strncmp(t, "052a 4f74 ", 10) == 0);
	CHECK_EQ(scs_fpr_parse(t, g), 0);
	CHECK_MEM(f, g, SCS_FPR_LEN);
	/* Without spaces, upper case, with colons. */
	char hex[65];
	scs_hex_encode(f, SCS_FPR_LEN, hex);
	for (char *p = hex; *p; p++)
		if (*p >= 'a')
			*p = (char)(*p - 32);
	memset(g, 0, sizeof g);
	CHECK_EQ(scs_fpr_parse(hex, g), 0);
	CHECK_MEM(f, g, SCS_FPR_LEN);
	CHECK_EQ(scs_fpr_parse("0a:0b", g), -EINVAL);
	hex[63] = 'g';
	CHECK_EQ(scs_fpr_parse(hex, g), -EINVAL);
	hex[63] = '\0';
	CHECK_EQ(scs_fpr_parse(hex, g), -EINVAL);   /* odd length */

	CHECK(scs_name_valid("alice"));
	CHECK(scs_name_valid("Alice Smith"));
	CHECK(scs_name_valid("J\xc3\xb6rg"));
	CHECK(!scs_name_valid(""));
	CHECK(!scs_name_valid(" alice"));
	CHECK(!scs_name_valid("alice "));
	CHECK(!scs_name_valid("a\nb"));
	CHECK(!scs_name_valid("\xff\xfe"));
	char longname[SCS_NAME_LEN_MAX + 2];
	memset(longname, 'n', sizeof longname);
	longname[SCS_NAME_LEN_MAX + 1] = '\0';
	CHECK(!scs_name_valid(longname));
	longname[SCS_NAME_LEN_MAX] = '\0';
	CHECK(scs_name_valid(longname));
}

/* The fingerprint is exactly the documented bytes. */
static void check_fpr_bytes(const scs_identity *id)
{
	uint8_t buf[4096], h[32];
	size_t n = 0;
	memcpy(buf, "scsfs v1 member", 15);
	n = 15;
	buf[n++] = 0; buf[n++] = 0; buf[n++] = 0; buf[n++] = 32;
	memcpy(buf + n, id->ed_pub, 32);
	n += 32;
	buf[n++] = (uint8_t)(id->rsa_spki_len >> 24);
	buf[n++] = (uint8_t)(id->rsa_spki_len >> 16);
	buf[n++] = (uint8_t)(id->rsa_spki_len >> 8);
	buf[n++] = (uint8_t)id->rsa_spki_len;
	memcpy(buf + n, id->rsa_spki, id->rsa_spki_len);
	n += id->rsa_spki_len;
	scs_sha256(buf, n, h);
	CHECK_MEM(h, id->fpr, 32);
}

static char *pub_json(const char *ver, const char *name, const char *spki, const char *ed,
		      const char *extra)
{
	static char buf[16384];
	snprintf(buf, sizeof buf, "{\"scsfs_identity\":%s,\"name\":\"%s\",\"rsa_spki\":\"%s\","
		 "\"ed25519\":\"%s\"%s}", ver, name, spki, ed, extra);
	return buf;
}

static int parse_str(const char *s, scs_err *err)
{
	scs_identity *id = NULL;
	int rc = scs_identity_parse(s, strlen(s), &id, err);
	scs_identity_free(id);
	return rc;
}

static void test_parse_rejections(const scs_identity *id)
{
	scs_err err = { 0 };
	char spki[2048], ed[64], edspki[128];
	scs_b64_encode(id->rsa_spki, id->rsa_spki_len, spki);
	scs_b64_encode(id->ed_pub, 32, ed);

	CHECK_EQ(parse_str(pub_json("1", "bob", spki, ed, ""), &err), 0);
	/* Field order and whitespace do not matter for this file. */
	char spaced[16384];
	snprintf(spaced, sizeof spaced, " {\n \"ed25519\" : \"%s\", \"name\":\"bob\", \"rsa_spki\":\"%s\","
		 "\"scsfs_identity\":1}\n", ed, spki);
	CHECK_EQ(parse_str(spaced, &err), 0);

	CHECK_EQ(parse_str(pub_json("2", "bob", spki, ed, ""), &err), -EBADMSG);
	CHECK_EQ(parse_str(pub_json("\"1\"", "bob", spki, ed, ""), &err), -EBADMSG);
	CHECK_EQ(parse_str(pub_json("1", "", spki, ed, ""), &err), -EBADMSG);
	CHECK_EQ(parse_str(pub_json("1", "b\\nob", spki, ed, ""), &err), -EBADMSG);
	CHECK_EQ(parse_str(pub_json("1", "b\\u0000ob", spki, ed, ""), &err), -EBADMSG);
	CHECK_EQ(parse_str(pub_json("1", "bob", spki, ed, ",\"extra\":1"), &err), -EBADMSG);
	CHECK_EQ(parse_str(pub_json("1", "bob", spki, ed, ",\"name\":\"eve\""), &err), -EBADMSG);
	CHECK(strstr(err.msg, "JSON") != NULL);     /* duplicate key refused by the parser */
	CHECK_EQ(parse_str(pub_json("1", "bob", spki, "AAAA", ""), &err), -EBADMSG);
	CHECK_EQ(parse_str(pub_json("1", "bob", spki, "!!notb64!!", ""), &err), -EBADMSG);
	CHECK_EQ(parse_str(pub_json("1", "bob", "AAAA", ed, ""), &err), -EBADMSG);
	/* An Ed25519 key where the RSA key belongs. */
	EVP_PKEY *k = NULL;
	unsigned char *der = NULL;
	CHECK_EQ(scs_ed25519_generate(&k), 0);
	int dl = i2d_PUBKEY(k, &der);
	scs_b64_encode(der, (size_t)dl, edspki);
	OPENSSL_free(der);
	EVP_PKEY_free(k);
	CHECK_EQ(parse_str(pub_json("1", "bob", edspki, ed, ""), &err), -EBADMSG);
	CHECK(strstr(err.msg, "not an RSA key") != NULL);
	/* RSA below 3072 bits. */
	char small[1024];
	der = NULL;
	k = EVP_RSA_gen(2048);
	CHECK(k != NULL);
	dl = i2d_PUBKEY(k, &der);
	scs_b64_encode(der, (size_t)dl, small);
	OPENSSL_free(der);
	EVP_PKEY_free(k);
	CHECK_EQ(parse_str(pub_json("1", "bob", small, ed, ""), &err), -EBADMSG);
	CHECK(strstr(err.msg, "2048 bits") != NULL);
	/* Not JSON, trailing garbage, not an object, too large. */
	CHECK_EQ(parse_str("nonsense", &err), -EBADMSG);
	char trail[16400];
	snprintf(trail, sizeof trail, "%s{}", pub_json("1", "bob", spki, ed, ""));
	CHECK_EQ(parse_str(trail, &err), -EBADMSG);
	CHECK_EQ(parse_str("[1,2,3]", &err), -EBADMSG);
	char *huge = malloc(SCS_IDENTITY_PUB_MAX + 10);
	memset(huge, ' ', SCS_IDENTITY_PUB_MAX + 9);
	huge[SCS_IDENTITY_PUB_MAX + 9] = '\0';
	memcpy(huge, pub_json("1", "bob", spki, ed, ""), strlen(pub_json("1", "bob", spki, ed, "")));
	CHECK_EQ(parse_str(huge, &err), -EBADMSG);
	free(huge);
}

static void test_identity_files(void)
{
	char data[4096], dir[4096], keyf[4096], pubf[4096];
	scs_err err = { 0 };
	scs_identity *id = NULL, *pub = NULL, *back = NULL;
	snprintf(data, sizeof data, "%s/data", tmp);
	setenv("XDG_DATA_HOME", data, 1);

	CHECK_EQ(scs_identity_load(&pub, &err), -ENOENT);
	CHECK(strcmp(err.msg, "no identity; run `scsctl id new NAME` first") == 0);

	CHECK_EQ(scs_identity_create("bad\nname", "pw", 2, &id, &err), -EINVAL);
	CHECK_EQ(scs_identity_create("alice", "pw one", 6, &id, &err), 0);
	if (!id)
		return;
	CHECK(id->unlocked && id->rsa && id->ed25519);
	CHECK_EQ(EVP_PKEY_get_bits(id->rsa), 3072);
	check_fpr_bytes(id);

	CHECK_EQ(scs_identity_paths(dir, keyf, pubf), 0);
	struct stat st;
	CHECK(stat(dir, &st) == 0 && (st.st_mode & 0777) == 0700);
	CHECK(stat(keyf, &st) == 0 && (st.st_mode & 0777) == 0600);
	CHECK(stat(pubf, &st) == 0 && (st.st_mode & 0777) == 0600);
	/* The private keys are PKCS#8 PBES2 with scrypt. */
	uint8_t *kd;
	size_t kl;
	CHECK_EQ(scs_local_read(keyf, 1 << 20, &kd, &kl), 0);
	CHECK(strstr((char *)kd, "-----BEGIN ENCRYPTED PRIVATE KEY-----") != NULL);
	CHECK(strstr((char *)kd, "BEGIN PRIVATE KEY") == NULL);
	free(kd);

	/* Never overwritten. */
	scs_identity *again = NULL;
	CHECK_EQ(scs_identity_create("mallory", "x", 1, &again, &err), -EEXIST);
	CHECK(again == NULL);

	CHECK_EQ(scs_identity_load(&pub, &err), 0);
	if (pub) {
		CHECK(strcmp(pub->name, "alice") == 0);
		CHECK_MEM(pub->fpr, id->fpr, SCS_FPR_LEN);
		CHECK(!pub->unlocked);
		CHECK_EQ(scs_identity_unlock(pub, "pw two", 6, &err), -EACCES);
		CHECK(strcmp(err.msg, "wrong passphrase for identity alice; try again") == 0);
		CHECK(!pub->unlocked);
		CHECK_EQ(scs_identity_unlock(pub, "pw one", 6, &err), 0);
		CHECK(pub->unlocked && pub->ed25519);
		/* The unlocked keys work: sign with the loaded key, verify with the created one. */
		uint8_t sig[64];
		CHECK_EQ(scs_ed25519_sign(pub->ed25519, "m", 1, sig), 0);
		CHECK_EQ(scs_ed25519_verify(id->ed_pub, "m", 1, sig), 0);
		uint8_t ct[512], pt[64];
		size_t cl = sizeof ct, pl = sizeof pt;
		CHECK_EQ(scs_rsa_oaep_encrypt(id->rsa, "L", 1, (const uint8_t *)"key", 3, ct, &cl), 0);
		CHECK_EQ(scs_rsa_oaep_decrypt(pub->rsa, "L", 1, ct, cl, pt, &pl), 0);
		CHECK(pl == 3 && memcmp(pt, "key", 3) == 0);
	}

	/* Export / parse round trip. */
	char *json;
	size_t jl;
	CHECK_EQ(scs_identity_export(id, &json, &jl), 0);
	CHECK(json[jl - 1] == '\n');
	CHECK(strncmp(json, "{\"ed25519\":", 11) == 0);
	CHECK_EQ(scs_identity_parse(json, jl, &back, &err), 0);
	if (back) {
		CHECK(strcmp(back->name, "alice") == 0);
		CHECK_MEM(back->fpr, id->fpr, SCS_FPR_LEN);
		CHECK_EQ(back->rsa_spki_len, id->rsa_spki_len);
		CHECK(!back->unlocked);
	}
	free(json);

	/* A key file that does not match the public identity is refused. */
	if (pub && back) {
		char other[4200];
		snprintf(other, sizeof other, "%s/data2", tmp);
		setenv("XDG_DATA_HOME", other, 1);
		scs_identity *bob = NULL;
		CHECK_EQ(scs_identity_create("bob", "pw one", 6, &bob, &err), 0);
		char bobkey[4096];
		scs_identity_paths(NULL, bobkey, NULL);
		setenv("XDG_DATA_HOME", data, 1);
		CHECK_EQ(rename(bobkey, keyf), 0);
		CHECK_EQ(scs_identity_unlock(back, "pw one", 6, &err), -EBADMSG);
		CHECK(strstr(err.msg, "does not belong") != NULL);
		/* A damaged identity.pub is reported as such. */
		write_text(pubf, "{}", 2);
		scs_identity *dmg = NULL;
		CHECK_EQ(scs_identity_load(&dmg, &err), -EBADMSG);
		CHECK(strstr(err.msg, "is damaged") != NULL);
		test_parse_rejections(bob ? bob : id);
		scs_identity_free(bob);
	}
	scs_identity_free(back);
	scs_identity_free(pub);
	scs_identity_free(id);
}

int main(void)
{
	tmp = unit_tmpdir("identity");
	test_passphrase();
	test_fpr_text();
	test_identity_files();
	return unit_done("identity");
}
