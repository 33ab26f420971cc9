/* gen_vectors.c - writes the golden format-v1 vectors in this directory.
 *
 * Run once; the output is committed and must never be regenerated to make
 * a failing test pass (a failure means old data became unreadable).
 *
 *   cc -O2 -I../../../include gen_vectors.c ../../../build/src/lib/libscs.a \
 *      -lcrypto -ljansson -o /tmp/gen_vectors && (cd . && /tmp/gen_vectors)
 *
 * The object is built here from the specification (man/scsfs-format.5) by
 * hand -- header bytes at their offsets, HKDF wrap key, record AADs -- with
 * only the primitives taken from libscs, so test_format checks the library
 * against an independent construction.  Nonces are fixed: acceptable ONLY
 * in test data like this; the library always draws random nonces. */
#include "scs/crypto.h"
#include "scs/b64.h"
#include "scs/names.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK 32768
#define PLAIN 70000

static void label_bytes(const char *label, uint8_t *out, size_t n)
{
	uint8_t h[32];
	scs_sha256(label, strlen(label), h);
	memcpy(out, h, n);
}

static void put_hex(FILE *f, const char *k, const uint8_t *p, size_t n)
{
	char hex[2 * 64 + 1];
	scs_hex_encode(p, n, hex);
	fprintf(f, "%s = %s\n", k, hex);
}

static void be32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (24 - 8 * i));
}

static void be64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (56 - 8 * i));
}

static void die(const char *what)
{
	fprintf(stderr, "gen_vectors: %s failed\n", what);
	exit(1);
}

int main(void)
{
	uint8_t epoch_key[32], seed[32], file_id[16], file_key[32], writer[32];
	uint8_t wrap_nonce[12], dir_id[16], group_id[32];
	label_bytes("scsfs golden epoch key", epoch_key, 32);
	label_bytes("scsfs golden writer seed", seed, 32);
	label_bytes("scsfs golden file id", file_id, 16);
	label_bytes("scsfs golden file key", file_key, 32);
	label_bytes("scsfs golden writer fpr", writer, 32);
	label_bytes("scsfs golden wrap nonce", wrap_nonce, 12);
	label_bytes("scsfs golden dir id", dir_id, 16);
	label_bytes("scsfs golden group id", group_id, 32);
	const uint32_t epoch = 7;
	const uint64_t file_version = 3;

	/* ---- file object ---- */
	const size_t nrec = (PLAIN + CHUNK - 1) / CHUNK;
	size_t objlen = 256 + nrec * 28 + PLAIN;
	uint8_t *obj = calloc(1, objlen), *pt = malloc(PLAIN);
	for (size_t k = 0; k < PLAIN; k++)
		pt[k] = (uint8_t)(k * 31 + k / 251);
	scs_gcm *fk = scs_gcm_new(file_key);
	if (!obj || !pt || !fk)
		die("setup");
	for (size_t i = 0; i < nrec; i++) {
		uint8_t *rec = obj + 256 + i * (CHUNK + 28), aad[11 + 16 + 8 + 1];
		size_t len = i + 1 < nrec ? CHUNK : PLAIN - i * CHUNK;
		char lbl[64];
		snprintf(lbl, sizeof lbl, "scsfs golden record nonce %zu", i);
		label_bytes(lbl, rec, 12);
		memcpy(aad, "scsfs chunk", 11);
		memcpy(aad + 11, file_id, 16);
		be64(aad + 27, i);
		aad[35] = i + 1 == nrec;
		if (scs_gcm_seal(fk, rec, aad, sizeof aad, pt + i * CHUNK, len, rec + 12,
				 rec + 12 + len))
			die("record seal");
	}
	scs_gcm_free(fk);

	uint8_t *h = obj;
	memcpy(h, "SCSF", 4);
	h[4] = 0, h[5] = 1;
	be32(h + 6, epoch);
	memcpy(h + 10, file_id, 16);
	be64(h + 26, file_version);
	memcpy(h + 34, writer, 32);
	memcpy(h + 66, wrap_nonce, 12);
	uint8_t wk[32];
	if (scs_hkdf(epoch_key, 32, NULL, 0, "scsfs v1 file-key wrap", 22, wk, 32) ||
	    scs_gcm_seal1(wk, wrap_nonce, h, 66, file_key, 32, h + 78, h + 110))
		die("wrap");
	if (scs_sha256(obj + 256, objlen - 256, h + 126))
		die("content hash");
	/* 158..191 reserved zero (calloc). */
	uint8_t msg[19 + 192];
	memcpy(msg, "scsfs v1 header sig", 19);
	memcpy(msg + 19, h, 192);
	EVP_PKEY *sk = EVP_PKEY_new_raw_private_key_ex(NULL, "ED25519", NULL, seed, 32);
	if (!sk || scs_ed25519_sign(sk, msg, sizeof msg, h + 192))
		die("sign");
	uint8_t pub[32];
	scs_ed25519_public(sk, pub);
	EVP_PKEY_free(sk);
	FILE *f = fopen("file-70000.obj", "wb");
	if (!f || fwrite(obj, 1, objlen, f) != objlen || fclose(f))
		die("write file-70000.obj");

	/* ---- names, symlink, .scsdir, root id ---- */
	uint8_t nk[64];
	char full[SCS_ENC_NAME_BUF], stored[SCS_ENC_NAME_BUF], lfull[SCS_ENC_NAME_BUF];
	char lstored[SCS_ENC_NAME_BUF], longname[201];
	int il;
	const char *name = "Quarterly report – final (v2).odt";
	if (scs_name_key(epoch_key, nk) || scs_name_encrypt(nk, dir_id, name, full, stored, &il))
		die("name");
	memset(longname, 'L', 200);
	longname[200] = 0;
	if (scs_name_encrypt(nk, dir_id, longname, lfull, lstored, &il) || !il)
		die("long name");

	const char *target = "../shared/plans/2027 budget.xlsx";
	uint8_t sym_nonce[12], sk2[32], saad[13 + 16 + 4], raw[4 + 12 + 256 + 16];
	size_t tn = strlen(target);
	label_bytes("scsfs golden symlink nonce", sym_nonce, 12);
	if (scs_hkdf(epoch_key, 32, NULL, 0, "scsfs v1 symlink key", 20, sk2, 32))
		die("symlink key");
	memcpy(saad, "scsfs symlink", 13);
	memcpy(saad + 13, dir_id, 16);
	be32(saad + 29, epoch);
	be32(raw, epoch);
	memcpy(raw + 4, sym_nonce, 12);
	if (scs_gcm_seal1(sk2, sym_nonce, saad, sizeof saad, (const uint8_t *)target, tn,
			  raw + 16, raw + 16 + tn))
		die("symlink");
	char sym[SCS_SYMLINK_ENC_BUF];
	memcpy(sym, "S1", 2);
	scs_b64url_encode(raw, 16 + tn + 16, sym + 2);

	uint8_t scsdir[22], root[16], rin[20 + 32], rh[32];
	memcpy(scsdir, "SCSD\x00\x01", 6);
	memcpy(scsdir + 6, dir_id, 16);
	memcpy(rin, "scsfs v1 root dir id", 20);
	memcpy(rin + 20, group_id, 32);
	scs_sha256(rin, sizeof rin, rh);
	memcpy(root, rh, 16);

	f = fopen("inputs.txt", "w");
	if (!f)
		die("inputs.txt");
	fprintf(f, "# scsfs format v1 golden vectors (see README).  Hex unless noted.\n");
	fprintf(f, "# file-70000.obj: 70000 bytes of plaintext, byte k = (k*31 + k/251) & 0xff\n");
	put_hex(f, "epoch_key", epoch_key, 32);
	fprintf(f, "epoch = %u\n", epoch);
	put_hex(f, "writer_seed", seed, 32);
	put_hex(f, "writer_pub", pub, 32);
	put_hex(f, "writer_fpr", writer, 32);
	put_hex(f, "file_id", file_id, 16);
	put_hex(f, "file_key", file_key, 32);
	fprintf(f, "file_version = %llu\n", (unsigned long long)file_version);
	put_hex(f, "wrap_nonce", wrap_nonce, 12);
	put_hex(f, "dir_id", dir_id, 16);
	fprintf(f, "name_plain = %s\n", name);
	fprintf(f, "name_enc = %s\n", full);
	fprintf(f, "long_name_plain_char = L\n");
	fprintf(f, "long_name_len = 200\n");
	fprintf(f, "long_name_enc = %s\n", lfull);
	fprintf(f, "long_name_stored = %s\n", lstored);
	fprintf(f, "symlink_plain = %s\n", target);
	fprintf(f, "symlink_enc = %s\n", sym);
	put_hex(f, "scsdir_obj", scsdir, 22);
	put_hex(f, "group_id", group_id, 32);
	put_hex(f, "root_dir_id", root, 16);
	if (fclose(f))
		die("inputs.txt");
	free(obj);
	free(pt);
	return 0;
}
