/* identity.c - member identities: key generation, encrypted private keys,
 * the public identity file and its strict parser. */
#include "scs/identity.h"
#include "scs/b64.h"
#include "scs/config.h"
#include "scs/passphrase.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/x509.h>

#define FPR_LABEL "scsfs v1 member"
#define NO_IDENTITY_MSG "no identity; run `scsctl id new NAME` first"

static void put_u32be(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

int scs_member_fpr(const uint8_t ed_pub[SCS_ED25519_PUB_LEN], const uint8_t *spki,
		   size_t spki_len, uint8_t out[SCS_FPR_LEN])
{
	if (spki_len > SCS_SPKI_MAX)
		return -EINVAL;
	uint8_t buf[sizeof FPR_LABEL - 1 + 4 + SCS_ED25519_PUB_LEN + 4 + SCS_SPKI_MAX];
	size_t n = 0;
	memcpy(buf, FPR_LABEL, sizeof FPR_LABEL - 1);
	n += sizeof FPR_LABEL - 1;
	put_u32be(buf + n, SCS_ED25519_PUB_LEN);
	n += 4;
	memcpy(buf + n, ed_pub, SCS_ED25519_PUB_LEN);
	n += SCS_ED25519_PUB_LEN;
	put_u32be(buf + n, (uint32_t)spki_len);
	n += 4;
	memcpy(buf + n, spki, spki_len);
	n += spki_len;
	return scs_sha256(buf, n, out);
}

void scs_fpr_format(const uint8_t fpr[SCS_FPR_LEN], char *out)
{
	static const char hx[] = "0123456789abcdef";
	size_t o = 0;
	for (size_t i = 0; i < SCS_FPR_LEN; i++) {
		if (i && i % 2 == 0)
			out[o++] = ' ';
		out[o++] = hx[fpr[i] >> 4];
		out[o++] = hx[fpr[i] & 15];
	}
	out[o] = '\0';
}

int scs_fpr_parse(const char *text, uint8_t fpr[SCS_FPR_LEN])
{
	size_t n = 0;
	int hi = -1;
	for (const char *p = text; *p; p++) {
		int v;
		if (*p >= '0' && *p <= '9')
			v = *p - '0';
		else if (*p >= 'a' && *p <= 'f')
			v = *p - 'a' + 10;
		else if (*p >= 'A' && *p <= 'F')
			v = *p - 'A' + 10;
		else if (*p == ' ' || *p == ':' || *p == '-')
			continue;
		else
			return -EINVAL;
		if (hi < 0) {
			hi = v;
			continue;
		}
		if (n == SCS_FPR_LEN)
			return -EINVAL;
		fpr[n++] = (uint8_t)(hi << 4 | v);
		hi = -1;
	}
	return n == SCS_FPR_LEN && hi < 0 ? 0 : -EINVAL;
}

int scs_name_valid(const char *name)
{
	size_t n = strlen(name);
	if (n == 0 || n > SCS_NAME_LEN_MAX || name[0] == ' ' || name[n - 1] == ' ')
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)name[i];
		if (c < 0x20 || c == 0x7f)
			return 0;
	}
	/* UTF-8 validity: let jansson judge, it refuses invalid strings. */
	json_t *s = json_string(name);
	if (!s)
		return 0;
	json_decref(s);
	return 1;
}

int scs_identity_paths(char *dir, char *keyfile, char *pubfile)
{
	char d[SCS_PATH_MAX];
	int rc = scs_xdg_path(SCS_XDG_DATA, NULL, d, sizeof d);
	if (rc < 0)
		return rc;
	if (dir)
		snprintf(dir, SCS_PATH_MAX, "%s", d);
	if (keyfile && snprintf(keyfile, SCS_PATH_MAX, "%s/identity.key", d) >= SCS_PATH_MAX)
		return -ENAMETOOLONG;
	if (pubfile && snprintf(pubfile, SCS_PATH_MAX, "%s/identity.pub", d) >= SCS_PATH_MAX)
		return -ENAMETOOLONG;
	return 0;
}

void scs_identity_free(scs_identity *id)
{
	if (!id)
		return;
	EVP_PKEY_free(id->rsa);
	EVP_PKEY_free(id->ed25519);
	free(id->rsa_spki);
	scs_cleanse(id, sizeof *id);
	free(id);
}

/* Check and adopt an RSA SubjectPublicKeyInfo: canonical DER, RSA (not
 * RSA-PSS), SCS_RSA_MIN_BITS..SCS_RSA_MAX_BITS. */
static int check_rsa_spki(const uint8_t *spki, size_t len, EVP_PKEY **out, scs_err *err)
{
	if (len == 0 || len > SCS_SPKI_MAX)
		return scs_err_set(err, -EBADMSG, "RSA public key has an invalid size");
	const unsigned char *p = spki;
	EVP_PKEY *k = d2i_PUBKEY(NULL, &p, (long)len);
	if (!k || p != spki + len) {
		EVP_PKEY_free(k);
		return scs_err_set(err, -EBADMSG, "RSA public key is not a valid DER SubjectPublicKeyInfo");
	}
	if (!EVP_PKEY_is_a(k, "RSA")) {
		EVP_PKEY_free(k);
		return scs_err_set(err, -EBADMSG, "the encryption key is not an RSA key");
	}
	int bits = EVP_PKEY_get_bits(k);
	if (bits < SCS_RSA_MIN_BITS || bits > SCS_RSA_MAX_BITS) {
		EVP_PKEY_free(k);
		return scs_err_set(err, -EBADMSG, "RSA key has %d bits; %d to %d are accepted",
				   bits, SCS_RSA_MIN_BITS, SCS_RSA_MAX_BITS);
	}
	/* Canonical: re-encoding gives the same bytes (one fingerprint per key). */
	unsigned char *der = NULL;
	int dl = i2d_PUBKEY(k, &der);
	int same = dl == (int)len && memcmp(der, spki, len) == 0;
	OPENSSL_free(der);
	if (!same) {
		EVP_PKEY_free(k);
		return scs_err_set(err, -EBADMSG, "RSA public key is not in canonical DER form");
	}
	*out = k;
	return 0;
}

int scs_identity_from_keys(const char *name, const uint8_t ed_pub[SCS_ED25519_PUB_LEN],
			   const uint8_t *spki, size_t spki_len, scs_identity **out, scs_err *err)
{
	*out = NULL;
	if (!scs_name_valid(name))
		return scs_err_set(err, -EBADMSG, "invalid member name (1 to %d bytes of UTF-8, "
				   "no control characters, no leading or trailing space)", SCS_NAME_LEN_MAX);
	scs_identity *id = calloc(1, sizeof *id);
	if (!id)
		return scs_err_set(err, -ENOMEM, "out of memory");
	snprintf(id->name, sizeof id->name, "%s", name);
	memcpy(id->ed_pub, ed_pub, SCS_ED25519_PUB_LEN);
	int rc = check_rsa_spki(spki, spki_len, &id->rsa, err);
	if (rc < 0)
		goto fail;
	id->rsa_spki = malloc(spki_len);
	if (!id->rsa_spki) {
		rc = scs_err_set(err, -ENOMEM, "out of memory");
		goto fail;
	}
	memcpy(id->rsa_spki, spki, spki_len);
	id->rsa_spki_len = spki_len;
	EVP_PKEY *ed = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, ed_pub, SCS_ED25519_PUB_LEN);
	if (!ed) {
		rc = scs_err_set(err, -EBADMSG, "invalid Ed25519 public key");
		goto fail;
	}
	EVP_PKEY_free(ed);
	rc = scs_member_fpr(id->ed_pub, id->rsa_spki, id->rsa_spki_len, id->fpr);
	if (rc < 0) {
		scs_err_set(err, rc, "cannot compute the fingerprint");
		goto fail;
	}
	*out = id;
	return 0;
fail:
	scs_identity_free(id);
	return rc;
}

int scs_identity_export(const scs_identity *id, char **json, size_t *len)
{
	char *spki = malloc(scs_b64_len(id->rsa_spki_len) + 1);
	char ed[64];
	if (!spki)
		return -ENOMEM;
	scs_b64_encode(id->rsa_spki, id->rsa_spki_len, spki);
	scs_b64_encode(id->ed_pub, SCS_ED25519_PUB_LEN, ed);
	json_t *o = json_pack("{s:i, s:s, s:s, s:s}", "scsfs_identity", 1, "name", id->name,
			      "rsa_spki", spki, "ed25519", ed);
	free(spki);
	if (!o)
		return -ENOMEM;
	char *s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(o);
	if (!s)
		return -ENOMEM;
	size_t n = strlen(s);
	char *r = malloc(n + 2);
	if (!r) {
		free(s);
		return -ENOMEM;
	}
	memcpy(r, s, n);
	r[n] = '\n';
	r[n + 1] = '\0';
	free(s);
	*json = r;
	if (len)
		*len = n + 1;
	return 0;
}

/* A base64 JSON string field decoded into out (cap bytes); returns length. */
static long b64_field(json_t *o, const char *key, uint8_t *out, size_t cap)
{
	json_t *v = json_object_get(o, key);
	if (!json_is_string(v))
		return -EBADMSG;
	long n = scs_b64_decode(json_string_value(v), json_string_length(v), out, cap);
	return n < 0 ? -EBADMSG : n;
}

int scs_identity_parse(const void *data, size_t len, scs_identity **out, scs_err *err)
{
	*out = NULL;
	if (len > SCS_IDENTITY_PUB_MAX)
		return scs_err_set(err, -EBADMSG, "public identity is larger than %d bytes",
				   SCS_IDENTITY_PUB_MAX);
	json_error_t je;
	json_t *o = json_loadb(data, len, JSON_REJECT_DUPLICATES, &je);
	if (!o)
		return scs_err_set(err, -EBADMSG, "public identity is not valid JSON (%s, line %d)",
				   je.text, je.line);
	int rc = -EBADMSG;
	uint8_t spki[SCS_SPKI_MAX], ed[SCS_ED25519_PUB_LEN + 1];
	if (!json_is_object(o) || json_object_size(o) != 4) {
		scs_err_set(err, rc, "public identity must be an object with exactly the fields "
			    "scsfs_identity, name, rsa_spki, ed25519");
		goto out;
	}
	json_t *ver = json_object_get(o, "scsfs_identity");
	json_t *name = json_object_get(o, "name");
	if (!json_is_integer(ver) || json_integer_value(ver) != 1) {
		scs_err_set(err, rc, "not a version 1 scsfs public identity (field scsfs_identity)");
		goto out;
	}
	if (!json_is_string(name) || strlen(json_string_value(name)) != json_string_length(name)) {
		scs_err_set(err, rc, "public identity: field name must be a string");
		goto out;
	}
	long el = b64_field(o, "ed25519", ed, sizeof ed);
	if (el != SCS_ED25519_PUB_LEN) {
		scs_err_set(err, rc, "public identity: field ed25519 must be 32 bytes in base64");
		goto out;
	}
	long sl = b64_field(o, "rsa_spki", spki, sizeof spki);
	if (sl <= 0) {
		scs_err_set(err, rc, "public identity: field rsa_spki must be a DER key in base64");
		goto out;
	}
	rc = scs_identity_from_keys(json_string_value(name), ed, spki, (size_t)sl, out, err);
	if (rc < 0) {
		char m[sizeof err->msg];
		if (err) {
			snprintf(m, sizeof m, "%s", err->msg);
			scs_err_set(err, -EBADMSG, "public identity: %s", m);
		}
		rc = -EBADMSG;
	}
out:
	json_decref(o);
	return rc;
}

static int read_pub(const char *path, scs_identity **out, scs_err *err)
{
	uint8_t *data;
	size_t len;
	int rc = scs_local_read(path, SCS_IDENTITY_PUB_MAX, &data, &len);
	if (rc == -ENOENT)
		return scs_err_set(err, -ENOENT, NO_IDENTITY_MSG);
	if (rc < 0)
		return scs_err_set(err, rc, "cannot read %s: %s", path, strerror(-rc));
	rc = scs_identity_parse(data, len, out, err);
	free(data);
	if (rc < 0 && err) {
		char m[sizeof err->msg];
		snprintf(m, sizeof m, "%s", err->msg);
		scs_err_set(err, rc, "%s is damaged: %s", path, m);
	}
	return rc;
}

int scs_identity_load(scs_identity **out, scs_err *err)
{
	char pub[SCS_PATH_MAX];
	if (scs_identity_paths(NULL, NULL, pub) < 0)
		return scs_err_set(err, -ENOENT, "cannot find the data directory: set HOME or XDG_DATA_HOME");
	return read_pub(pub, out, err);
}

/* ---- private keys ---- */

/* Private keys (and the epoch and file keys they open) are about to be in
 * this process's memory: keep them out of core dumps. */
static void no_core_dumps(void)
{
	struct rlimit rl = { 0, 0 };
	(void)setrlimit(RLIMIT_CORE, &rl);
}

static int pem_encrypted(BIO *bio, EVP_PKEY *k, const char *pass, size_t passlen)
{
	if (passlen > INT32_MAX)
		return -EINVAL;
	X509_ALGOR *pbe = PKCS5_pbe2_set_scrypt(EVP_aes_256_cbc(), NULL, 0, NULL,
						SCS_SCRYPT_N, SCS_SCRYPT_R, SCS_SCRYPT_P);
	if (!pbe)
		return -EIO;
	PKCS8_PRIV_KEY_INFO *inf = EVP_PKEY2PKCS8(k);
	if (!inf) {
		X509_ALGOR_free(pbe);
		return -EIO;
	}
	X509_SIG *p8 = PKCS8_set0_pbe(pass, (int)passlen, inf, pbe);
	PKCS8_PRIV_KEY_INFO_free(inf);       /* clears the key bytes */
	if (!p8) {
		X509_ALGOR_free(pbe);
		return -EIO;
	}
	int ok = PEM_write_bio_PKCS8(bio, p8);
	X509_SIG_free(p8);
	return ok ? 0 : -EIO;
}

static EVP_PKEY *pem_decrypt_next(BIO *bio, const char *pass, size_t passlen, int *bad_pass)
{
	*bad_pass = 0;
	X509_SIG *p8 = PEM_read_bio_PKCS8(bio, NULL, NULL, NULL);
	if (!p8)
		return NULL;
	PKCS8_PRIV_KEY_INFO *inf = PKCS8_decrypt(p8, pass, (int)passlen);
	X509_SIG_free(p8);
	if (!inf) {
		*bad_pass = 1;
		return NULL;
	}
	EVP_PKEY *k = EVP_PKCS82PKEY(inf);
	PKCS8_PRIV_KEY_INFO_free(inf);
	return k;
}

int scs_identity_unlock(scs_identity *id, const char *pass, size_t passlen, scs_err *err)
{
	char keyfile[SCS_PATH_MAX];
	if (id->unlocked)
		return 0;
	if (scs_identity_paths(NULL, keyfile, NULL) < 0)
		return scs_err_set(err, -ENOENT, "cannot find the data directory: set HOME or XDG_DATA_HOME");
	if (passlen > INT32_MAX)
		return scs_err_set(err, -EINVAL, "passphrase too long");
	no_core_dumps();
	uint8_t *data;
	size_t len;
	int rc = scs_local_read(keyfile, SCS_IDENTITY_KEY_MAX, &data, &len);
	if (rc == -ENOENT)
		return scs_err_set(err, -ENOENT, "%s is missing; the identity cannot be used "
				   "(restore it from a backup or create a new one)", keyfile);
	if (rc < 0)
		return scs_err_set(err, rc, "cannot read %s: %s", keyfile, strerror(-rc));
	BIO *bio = BIO_new_mem_buf(data, (int)len);
	EVP_PKEY *rsa = NULL, *ed = NULL;
	int bad1 = 0, bad2 = 0;
	if (bio) {
		rsa = pem_decrypt_next(bio, pass, passlen, &bad1);
		if (rsa)
			ed = pem_decrypt_next(bio, pass, passlen, &bad2);
	}
	BIO_free(bio);
	free(data);
	if (bad1 || bad2) {
		rc = scs_err_set(err, -EACCES, "wrong passphrase for identity %s; try again", id->name);
		goto fail;
	}
	if (!rsa || !ed) {
		rc = scs_err_set(err, -EBADMSG, "%s is damaged (expected two encrypted private keys); "
				 "restore it from a backup", keyfile);
		goto fail;
	}
	/* The private keys must be those of the public identity. */
	uint8_t edpub[SCS_ED25519_PUB_LEN];
	unsigned char *der = NULL;
	int dl = EVP_PKEY_is_a(rsa, "RSA") ? i2d_PUBKEY(rsa, &der) : -1;
	if (!EVP_PKEY_is_a(ed, "ED25519") || scs_ed25519_public(ed, edpub) < 0 || dl <= 0 ||
	    (size_t)dl != id->rsa_spki_len || memcmp(der, id->rsa_spki, id->rsa_spki_len) != 0 ||
	    memcmp(edpub, id->ed_pub, sizeof edpub) != 0) {
		OPENSSL_free(der);
		rc = scs_err_set(err, -EBADMSG, "%s does not belong to the public identity %s; "
				 "restore the matching pair of files", keyfile, id->name);
		goto fail;
	}
	OPENSSL_free(der);
	EVP_PKEY_free(id->rsa);
	id->rsa = rsa;
	id->ed25519 = ed;
	id->unlocked = 1;
	return 0;
fail:
	EVP_PKEY_free(rsa);
	EVP_PKEY_free(ed);
	return rc;
}

int scs_identity_create(const char *name, const char *pass, size_t passlen,
			scs_identity **out, scs_err *err)
{
	char dir[SCS_PATH_MAX], keyfile[SCS_PATH_MAX], pubfile[SCS_PATH_MAX];
	*out = NULL;
	if (!scs_name_valid(name))
		return scs_err_set(err, -EINVAL, "invalid name \"%s\": use 1 to %d bytes, no control "
				   "characters, no leading or trailing space", name, SCS_NAME_LEN_MAX);
	if (scs_identity_paths(dir, keyfile, pubfile) < 0)
		return scs_err_set(err, -ENOENT, "cannot find the data directory: set HOME or XDG_DATA_HOME");
	struct stat st;
	if (stat(pubfile, &st) == 0 || stat(keyfile, &st) == 0)
		return scs_err_set(err, -EEXIST, "an identity already exists in %s; `scsctl id show` "
				   "prints it (remove the directory first only if you will never need "
				   "that identity again)", dir);
	int rc = scs_mkdir_p(dir, 0700);
	if (rc < 0)
		return scs_err_set(err, rc, "cannot create %s: %s", dir, strerror(-rc));
	if (chmod(dir, 0700) < 0)
		return scs_err_set(err, -errno, "cannot make %s private: %s", dir, strerror(errno));

	EVP_PKEY *rsa = NULL, *ed = NULL;
	scs_identity *id = NULL;
	BIO *bio = NULL;
	no_core_dumps();
	char *json = NULL;
	unsigned char *der = NULL;
	uint8_t edpub[SCS_ED25519_PUB_LEN];
	if (scs_rsa_generate(SCS_RSA_BITS, &rsa) < 0 || scs_ed25519_generate(&ed) < 0 ||
	    scs_ed25519_public(ed, edpub) < 0) {
		rc = scs_err_set(err, -EIO, "key generation failed");
		goto out;
	}
	int dl = i2d_PUBKEY(rsa, &der);
	if (dl <= 0) {
		rc = scs_err_set(err, -EIO, "cannot encode the RSA public key");
		goto out;
	}
	rc = scs_identity_from_keys(name, edpub, der, (size_t)dl, &id, err);
	if (rc < 0)
		goto out;
	bio = BIO_new(BIO_s_mem());
	if (!bio || pem_encrypted(bio, rsa, pass, passlen) < 0 ||
	    pem_encrypted(bio, ed, pass, passlen) < 0) {
		rc = scs_err_set(err, -EIO, "cannot encrypt the private keys");
		goto out;
	}
	char *pem;
	long pl = BIO_get_mem_data(bio, &pem);
	rc = scs_local_write_atomic(keyfile, pem, (size_t)pl, 0600);
	if (rc < 0) {
		scs_err_set(err, rc, "cannot write %s: %s", keyfile, strerror(-rc));
		goto out;
	}
	size_t jl;
	rc = scs_identity_export(id, &json, &jl);
	if (rc == 0)
		rc = scs_local_write_atomic(pubfile, json, jl, 0600);
	if (rc < 0) {
		unlink(keyfile);
		scs_err_set(err, rc, "cannot write %s: %s", pubfile, strerror(-rc));
		goto out;
	}
	EVP_PKEY_free(id->rsa);
	id->rsa = rsa;
	id->ed25519 = ed;
	id->unlocked = 1;
	rsa = ed = NULL;
	*out = id;
	id = NULL;
out:
	OPENSSL_free(der);
	free(json);
	BIO_free(bio);
	EVP_PKEY_free(rsa);
	EVP_PKEY_free(ed);
	scs_identity_free(id);
	return rc;
}

int scs_identity_unlock_prompt(scs_identity *id, const char *passphrase_file, int no_prompt,
			       scs_err *err)
{
	char prompt[SCS_NAME_LEN_MAX + 64];
	const char *env = getenv(SCS_PASSPHRASE_ENV);
	int from_file = (passphrase_file && *passphrase_file) || (env && *env);
	snprintf(prompt, sizeof prompt, "Passphrase for identity %s: ", id->name);
	for (int attempt = 0; ; attempt++) {
		struct scs_passphrase pp;
		int rc = scs_passphrase_get(passphrase_file, prompt, no_prompt ? SCS_PASS_NO_PROMPT : 0,
					    &pp, err);
		if (rc < 0)
			return rc;
		rc = scs_identity_unlock(id, pp.buf, pp.len, err);
		scs_passphrase_clear(&pp);
		/* Only the terminal gets another try; a file would say the same. */
		if (rc != -EACCES || from_file || attempt == 2)
			return rc;
		fprintf(stderr, "%s\n", err ? err->msg : "wrong passphrase");
	}
}
