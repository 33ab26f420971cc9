/* test_keyring.c - the group keyring: building and verifying every entry
 * kind, epoch key unwrapping, the pin / high-water mark, and the attacks a
 * hostile server can try (tampering, forks, gaps, rollback, non-admin
 * signers, bad canaries, swapped wraps). */
#include "unit.h"

#include "scs/b64.h"
#include "scs/backend.h"
#include "scs/config.h"
#include "scs/identity.h"
#include "scs/keyring.h"
#include "scs/vault.h"

#include <errno.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/x509.h>

static char *tmp;
static scs_identity *alice, *bob, *carol;

struct blob {
	uint8_t *p;
	size_t n;
};

/* An identity in memory only (keys unlocked), no files. */
static scs_identity *mkid(const char *name)
{
	EVP_PKEY *rsa = NULL, *ed = NULL;
	uint8_t pub[32];
	unsigned char *der = NULL;
	scs_identity *id = NULL;
	if (scs_rsa_generate(3072, &rsa) < 0 || scs_ed25519_generate(&ed) < 0 ||
	    scs_ed25519_public(ed, pub) < 0) {
		fprintf(stderr, "keygen failed\n");
		exit(2);
	}
	int dl = i2d_PUBKEY(rsa, &der);
	if (scs_identity_from_keys(name, pub, der, (size_t)dl, &id, NULL) < 0)
		exit(2);
	OPENSSL_free(der);
	EVP_PKEY_free(id->rsa);
	id->rsa = rsa;
	id->ed25519 = ed;
	id->unlocked = 1;
	return id;
}

static scs_backend *new_remote(const char *tag)
{
	char dir[4096], kr[4200];
	scs_err err = { 0 };
	scs_backend *be = NULL;
	snprintf(dir, sizeof dir, "%s/remote-%s", tmp, tag);
	snprintf(kr, sizeof kr, "%s/.scsfs/keyring", dir);
	if (scs_mkdir_p(kr, 0755) < 0 || scs_backend_local_open(dir, &be, &err) < 0) {
		fprintf(stderr, "remote %s: %s\n", tag, err.msg);
		exit(2);
	}
	return be;
}

static void put(scs_backend *be, uint32_t seq, struct blob b)
{
	scs_err err = { 0 };
	if (scs_keyring_publish(be, seq, b.p, b.n, &err) < 0) {
		fprintf(stderr, "publish %u: %s\n", seq, err.msg);
		exit(2);
	}
}

static int load(scs_backend *be, scs_keyring **kr, scs_err *err)
{
	*kr = NULL;
	return scs_keyring_load(be, kr, err);
}

/* A remote holding entries [0, n) of chain c (NULL skipped). */
static scs_backend *remote_with(const char *tag, const struct blob *c, int n)
{
	scs_backend *be = new_remote(tag);
	for (int i = 0; i < n; i++)
		if (c[i].p)
			put(be, (uint32_t)i, c[i]);
	return be;
}

/* ---- hostile entry construction ---- */

typedef void (*mut_fn)(json_t *payload);

/* Decode entry e, let f change its payload, encode canonically again and
 * sign with signer (NULL: keep the old signature). */
static struct blob mutate(struct blob e, mut_fn f, EVP_PKEY *signer)
{
	json_t *o = json_loadb((const char *)e.p, e.n, 0, NULL);
	json_t *pv = json_object_get(o, "payload");
	uint8_t *pl = malloc(e.n);
	long n = scs_b64_decode(json_string_value(pv), json_string_length(pv), pl, e.n);
	json_t *p = json_loadb((const char *)pl, (size_t)n, 0, NULL);
	free(pl);
	f(p);
	char *np = json_dumps(p, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(p);
	struct blob out = { 0 };
	if (signer) {
		scs_kr_entry_seal((uint8_t *)np, strlen(np), signer, &out.p, &out.n);
	} else {
		char *b = malloc(scs_b64_len(strlen(np)) + 1);
		scs_b64_encode((uint8_t *)np, strlen(np), b);
		json_t *no = json_pack("{s:s, s:O}", "payload", b, "sig", json_object_get(o, "sig"));
		char *s = json_dumps(no, JSON_COMPACT | JSON_SORT_KEYS);
		out.p = (uint8_t *)s;
		out.n = strlen(s);
		json_decref(no);
		free(b);
	}
	free(np);
	json_decref(o);
	return out;
}

static void make_member_admin(json_t *p)
{
	json_t *ms = json_object_get(p, "members");
	json_object_set_new(json_array_get(ms, json_array_size(ms) - 1), "role", json_string("admin"));
}

static void bump_epoch(json_t *p)
{
	json_object_set_new(p, "epoch", json_integer(json_integer_value(json_object_get(p, "epoch")) + 1));
}

static void random_canary(json_t *p)
{
	uint8_t c[SCS_KR_CANARY_LEN];
	char b[64];
	scs_random(c, sizeof c);
	scs_b64_encode(c, sizeof c, b);
	json_object_set_new(p, "canary", json_string(b));
}

static void swap_wraps(json_t *p)
{
	json_t *ws = json_object_get(p, "wraps");
	json_t *a = json_array_get(ws, 0), *b = json_array_get(ws, 1);
	json_t *ka = json_deep_copy(json_object_get(a, "key"));
	json_object_set(a, "key", json_object_get(b, "key"));
	json_object_set_new(b, "key", ka);
}

static void extra_field(json_t *p)
{
	json_object_set_new(p, "note", json_string("hi"));
}

static void drop_wraps(json_t *p)
{
	json_object_del(p, "wraps");
}

static void second_member(json_t *p)
{
	json_t *ms = json_object_get(p, "members");
	json_t *m = json_deep_copy(json_array_get(ms, 0));
	json_object_set_new(m, "name", json_string("twin"));
	json_array_append_new(ms, m);
}

static void rename_first(json_t *p)
{
	json_object_set_new(json_array_get(json_object_get(p, "members"), 0), "name",
			    json_string("alicia"));
}

static void drop_snapshot_files(json_t *p)
{
	json_object_del(p, "snapshot_files");
}

static void lazy_false(json_t *p)
{
	json_object_set_new(p, "lazy", json_false());
}

static void snapshot_on_add(json_t *p)
{
	json_object_set_new(p, "lazy", json_true());
}

static void version_two(json_t *p)
{
	json_object_set_new(p, "version", json_integer(2));
}

/* ---- the valid chain ---- */

static struct blob chain[6];
static uint8_t k1[32], k2[32], k3[32];
static scs_keyring *states[6];     /* state after entry i */

static void extend(int i, const struct scs_kr_change *c, const scs_identity *signer, uint8_t *newkey)
{
	scs_err err = { 0 };
	uint8_t (*keys)[32] = NULL;
	uint32_t nk = 0;
	scs_keyring *kr = states[i - 1];
	/* the signer unwraps the keys it needs from the state so far */
	if (scs_keyring_unlock(kr, signer, &keys, &nk, &err) < 0) {
		fprintf(stderr, "unlock for entry %d: %s\n", i, err.msg);
		exit(2);
	}
	if (scs_keyring_make_entry(kr, c, signer, (const uint8_t (*)[32])keys, nk, newkey,
				   &chain[i].p, &chain[i].n, &err) < 0) {
		fprintf(stderr, "entry %d: %s\n", i, err.msg);
		exit(2);
	}
	scs_keyring_keys_free(keys, nk);
}

/* states[i] = state after applying chain[0..i] (rebuilt from bytes). */
static void build_states(int upto)
{
	scs_err err = { 0 };
	scs_keyring *kr = NULL;
	for (int i = 0; i <= upto; i++) {
		if (scs_keyring_apply(&kr, (uint32_t)i, chain[i].p, chain[i].n, &err) < 0) {
			fprintf(stderr, "apply %d: %s\n", i, err.msg);
			exit(2);
		}
	}
	scs_keyring_free(states[upto]);
	states[upto] = kr;
}

static void make_chain(void)
{
	scs_err err = { 0 };
	CHECK_EQ(scs_keyring_make_genesis(alice, k1, &chain[0].p, &chain[0].n, &err), 0);
	build_states(0);
	struct scs_kr_change add_bob = { .kind = SCS_KR_ADD, .member = bob, .role = SCS_ROLE_MEMBER };
	extend(1, &add_bob, alice, NULL);
	build_states(1);
	struct scs_kr_change rot = { .kind = SCS_KR_ROTATE };
	extend(2, &rot, alice, k2);
	build_states(2);
	struct scs_kr_change promote = { .kind = SCS_KR_SET_ROLE, .subject = bob->fpr,
					 .role = SCS_ROLE_ADMIN };
	extend(3, &promote, alice, NULL);
	build_states(3);
	struct scs_kr_change add_carol = { .kind = SCS_KR_ADD, .member = carol, .role = SCS_ROLE_MEMBER };
	extend(4, &add_carol, bob, NULL);       /* bob is an admin now */
	build_states(4);
	struct scs_kr_change rm_bob = { .kind = SCS_KR_REMOVE, .subject = bob->fpr };
	extend(5, &rm_bob, alice, k3);
	build_states(5);
}

static void check_keys(const scs_keyring *kr, const scs_identity *who, uint32_t want,
		       const uint8_t *const *expect)
{
	scs_err err = { 0 };
	uint8_t (*keys)[32] = NULL;
	uint32_t nk = 0;
	CHECK_EQ(scs_keyring_unlock(kr, who, &keys, &nk, &err), 0);
	CHECK_EQ(nk, want);
	for (uint32_t i = 0; keys && i < nk && i < want; i++)
		CHECK_MEM(keys[i], expect[i], 32);
	scs_keyring_keys_free(keys, nk);
}

static void test_valid_chain(void)
{
	scs_err err = { 0 };
	scs_keyring *kr;
	const uint8_t *all[] = { k1, k2, k3 };

	scs_backend *be = remote_with("valid", chain, 6);
	CHECK_EQ(load(be, &kr, &err), 0);
	if (!kr)
		return;
	CHECK_EQ(kr->seq, 5);
	CHECK_EQ(kr->epoch, 3);
	uint8_t gid[32];
	scs_sha256(chain[0].p, chain[0].n, gid);
	CHECK_MEM(kr->group_id, gid, 32);
	uint8_t head[32];
	scs_sha256(chain[5].p, chain[5].n, head);
	CHECK_MEM(kr->head, head, 32);
	size_t n;
	const struct scs_member *m = scs_keyring_members(kr, &n);
	CHECK_EQ(n, 2);
	CHECK(strcmp(m[0].name, "alice") == 0 && m[0].role == SCS_ROLE_ADMIN);
	CHECK(strcmp(m[1].name, "carol") == 0 && m[1].role == SCS_ROLE_MEMBER);
	CHECK(scs_keyring_member(kr, bob->fpr) == NULL);
	CHECK(scs_keyring_member(kr, carol->fpr) != NULL);

	/* Every current member opens every epoch; carol joined in epoch 2 and
	 * gets epoch 1 through the box; bob was removed. */
	check_keys(kr, alice, 3, all);
	check_keys(kr, carol, 3, all);
	uint8_t (*keys)[32] = NULL;
	uint32_t nk = 0;
	CHECK_EQ(scs_keyring_unlock(kr, bob, &keys, &nk, &err), -EACCES);
	CHECK(strstr(err.msg, "not a member") != NULL);
	CHECK(keys == NULL);
	/* Before his removal bob could read epochs 1 and 2. */
	check_keys(states[4], bob, 2, all);
	check_keys(states[1], bob, 1, all);

	/* Writers: members of the epoch the file claims. */
	CHECK(scs_keyring_writer(kr, bob->fpr, 2) != NULL);
	CHECK(scs_keyring_writer(kr, bob->fpr, 3) == NULL);
	CHECK(scs_keyring_writer(kr, carol->fpr, 1) == NULL);
	CHECK(scs_keyring_writer(kr, carol->fpr, 3) != NULL);
	CHECK(scs_keyring_writer(kr, alice->fpr, 1) != NULL);

	/* Loading the stored bytes gives the same state as building it. */
	CHECK_MEM(states[5]->head, kr->head, 32);

	/* Someone else already wrote seq 6: publish refuses, never replaces. */
	CHECK_EQ(scs_keyring_publish(be, 5, chain[5].p, chain[5].n, &err), -EEXIST);

	char fpr[SCS_FPR_TEXT_LEN];
	scs_group_fpr(kr, fpr);
	CHECK_EQ(strlen(fpr), 79);
	scs_keyring_free(kr);
	scs_backend_close(be);
}

static void test_pin(void)
{
	scs_err err = { 0 };
	scs_keyring *kr = NULL, *old = NULL, *forked = NULL;
	char data[4096];
	snprintf(data, sizeof data, "%s/pin-data", tmp);
	setenv("XDG_DATA_HOME", data, 1);

	scs_backend *be = remote_with("pin", chain, 6);
	CHECK_EQ(load(be, &kr, &err), 0);
	if (!kr)
		return;
	CHECK_EQ(scs_keyring_pin_check(kr, 1, &err), -ENOENT);
	CHECK(strstr(err.msg, "scsctl join") != NULL);
	/* Pin at seq 3, then see the newer keyring: the mark moves to 5. */
	CHECK_EQ(scs_keyring_pin_write(states[3], &err), 0);
	CHECK_EQ(scs_keyring_pin_check(kr, 0, &err), 0);
	CHECK_EQ(scs_keyring_pin_check(kr, 1, &err), 0);
	CHECK_EQ(scs_keyring_pin_check(states[4], 0, &err), -EBADMSG);   /* now below the mark */
	CHECK(strstr(err.msg, "rolled back") != NULL);

	/* Rollback: the server drops the newest entries. */
	scs_backend *rb = remote_with("rollback", chain, 4);
	CHECK_EQ(load(rb, &old, &err), 0);     /* a valid chain by itself */
	if (old) {
		CHECK_EQ(scs_keyring_pin_check(old, 1, &err), -EBADMSG);
		CHECK(strstr(err.msg, "the keyring was rolled back") != NULL);
	}

	/* Fork: a different (validly signed) entry 1. */
	struct blob alt[2] = { chain[0], { 0 } };
	struct scs_kr_change add_carol = { .kind = SCS_KR_ADD, .member = carol, .role = SCS_ROLE_MEMBER };
	uint8_t (*keys)[32] = NULL;
	uint32_t nk;
	CHECK_EQ(scs_keyring_unlock(states[0], alice, &keys, &nk, &err), 0);
	CHECK_EQ(scs_keyring_make_entry(states[0], &add_carol, alice, (const uint8_t (*)[32])keys, nk,
					NULL, &alt[1].p, &alt[1].n, &err), 0);
	scs_keyring_keys_free(keys, nk);
	scs_backend *fb = remote_with("fork-pin", alt, 2);
	CHECK_EQ(load(fb, &forked, &err), 0);
	if (forked) {
		CHECK_EQ(scs_keyring_pin_write(states[1], &err), 0);   /* we saw the real entry 1 */
		CHECK_EQ(scs_keyring_pin_check(forked, 1, &err), -EBADMSG);
		CHECK(strstr(err.msg, "rewritten") != NULL);
	}

	/* A pin file whose genesis is not this group's. */
	char hex[65], path[4200];
	scs_hex_encode(kr->group_id, 32, hex);
	snprintf(path, sizeof path, "%s/scsfs/groups/%s.json", data, hex);
	char text[512];
	snprintf(text, sizeof text, "{\"genesis\":\"%064d\",\"head\":\"%s\",\"scsfs_pin\":1,\"seq\":0}", 0, hex);
	CHECK_EQ(scs_local_write_atomic(path, text, strlen(text), 0600), 0);
	CHECK_EQ(scs_keyring_pin_check(kr, 0, &err), -EBADMSG);
	CHECK(strstr(err.msg, "does not match the pinned") != NULL);
	CHECK_EQ(scs_local_write_atomic(path, "{\"x\":1}", 7, 0600), 0);
	CHECK_EQ(scs_keyring_pin_check(kr, 0, &err), -EBADMSG);

	free(alt[1].p);
	scs_keyring_free(forked);
	scs_keyring_free(old);
	scs_keyring_free(kr);
	scs_backend_close(fb);
	scs_backend_close(rb);
	scs_backend_close(be);
}

/* Store chain[0..n) with entry i replaced by bad; expect load to fail with
 * a message containing want. */
/* Another process of this machine (a mount's re-key pass, another scsctl)
 * adds entry 5 and pins it just after a listing of the keyring. */
static const struct scs_backend_ops *race_orig;
static struct scs_backend_ops race_ops;
static int race_armed;

static int race_list(scs_backend *be, const char *dir, scs_list_cb cb, void *arg)
{
	int r = race_orig->list(be, dir, cb, arg);
	if (race_armed && strcmp(dir, SCS_KEYRING_DIR) == 0) {
		scs_err err = { 0 };
		race_armed = 0;
		put(be, 5, chain[5]);
		CHECK_EQ(scs_keyring_pin_write(states[5], &err), 0);
	}
	return r;
}

static void test_pin_race(void)
{
	scs_err err = { 0 };
	scs_keyring *kr = NULL;
	char data[4096];
	snprintf(data, sizeof data, "%s/pin-race-data", tmp);
	setenv("XDG_DATA_HOME", data, 1);

	scs_backend *be = remote_with("pin-race", chain, 5);
	CHECK_EQ(scs_keyring_pin_write(states[4], &err), 0);
	race_orig = be->ops;
	race_ops = *be->ops;
	race_ops.list = race_list;
	be->ops = &race_ops;
	race_armed = 1;
	/* The listing ends at 4, the pin then says 5: listed again, not a rollback. */
	CHECK_EQ(scs_keyring_load_pinned(be, NULL, 0, &kr, &err), 0);
	CHECK(!race_armed);
	CHECK(kr && kr->seq == 5);
	scs_keyring_free(kr);
	kr = NULL;
	be->ops = race_orig;

	/* A refresh: the head it holds must still be in the keyring. */
	CHECK_EQ(scs_keyring_load_pinned(be, states[3]->head, 3, &kr, &err), 0);
	scs_keyring_free(kr);
	kr = NULL;
	CHECK_EQ(scs_keyring_load_pinned(be, states[2]->head, 3, &kr, &err), -EBADMSG);
	CHECK(strstr(err.msg, "rewrites history") != NULL);
	CHECK(kr == NULL);

	/* Entries really gone stay a rollback. */
	scs_backend *rb = remote_with("pin-race-rollback", chain, 4);
	CHECK_EQ(scs_keyring_load_pinned(rb, NULL, 0, &kr, &err), -EBADMSG);
	CHECK(strstr(err.msg, "the keyring was rolled back") != NULL);
	CHECK(kr == NULL);
	scs_backend_close(rb);
	scs_backend_close(be);
}

static void expect_refused(const char *tag, int n, int i, struct blob bad, const char *want)
{
	scs_err err = { 0 };
	scs_keyring *kr = NULL;
	scs_backend *be = new_remote(tag);
	for (int j = 0; j < n; j++)
		put(be, (uint32_t)j, j == i ? bad : chain[j]);
	int rc = load(be, &kr, &err);
	CHECK_EQ(rc, -EBADMSG);
	if (want && !strstr(err.msg, want))
		fprintf(stderr, "%s: message \"%s\" lacks \"%s\"\n", tag, err.msg, want),
			unit_failures++;
	scs_keyring_free(kr);
	scs_backend_close(be);
}

/* expect_refused for chain[i] changed by f and signed again by alice. */
static void refuse_mutated(const char *tag, int n, int i, mut_fn f, const char *want)
{
	struct blob t = mutate(chain[i], f, alice->ed25519);
	expect_refused(tag, n, i, t, want);
	free(t.p);
}

static void test_tampering(void)
{
	/* Payload changed, signature kept. */
	struct blob t = mutate(chain[1], make_member_admin, NULL);
	expect_refused("tamper-payload", 3, 1, t, "bad signature");
	free(t.p);
	/* Signature changed. */
	t.n = chain[1].n;
	t.p = malloc(t.n);
	memcpy(t.p, chain[1].p, t.n);
	t.p[t.n - 5] = t.p[t.n - 5] == 'A' ? 'B' : 'A';
	expect_refused("tamper-sig", 3, 1, t, NULL);
	free(t.p);
	/* Whitespace added (not the canonical bytes). */
	t.n = chain[1].n + 1;
	t.p = malloc(t.n);
	t.p[0] = ' ';
	memcpy(t.p + 1, chain[1].p, chain[1].n);
	expect_refused("noncanonical", 2, 1, t, "canonical");
	free(t.p);
	/* Unsorted payload keys, validly signed. */
	{
		json_t *o = json_loadb((const char *)chain[1].p, chain[1].n, 0, NULL);
		json_t *pv = json_object_get(o, "payload");
		uint8_t pl[65536];
		long n = scs_b64_decode(json_string_value(pv), json_string_length(pv), pl, sizeof pl);
		json_t *p = json_loadb((const char *)pl, (size_t)n, 0, NULL);
		json_t *a = json_incref(json_object_get(p, "author"));
		json_object_del(p, "author");
		json_object_set_new(p, "author", a);                 /* now last */
		char *np = json_dumps(p, JSON_COMPACT);            /* insertion order, not sorted */
		char *sorted = json_dumps(p, JSON_COMPACT | JSON_SORT_KEYS);
		CHECK(strcmp(np, sorted) != 0);
		CHECK_EQ(scs_kr_entry_seal((uint8_t *)np, strlen(np), alice->ed25519, &t.p, &t.n), 0);
		expect_refused("unsorted", 2, 1, t, "canonical");
		free(t.p);
		free(np);
		free(sorted);
		json_decref(p);
		json_decref(o);
	}
	/* Unknown or missing fields, future version (validly signed). */
	refuse_mutated("extra-field", 3, 2, extra_field, "unknown field");
	refuse_mutated("missing-field", 3, 2, drop_wraps, "missing or extra");
	refuse_mutated("version", 2, 1, version_two, "version");
	/* Rule violations, validly signed by an admin. */
	refuse_mutated("epoch-jump", 3, 2, bump_epoch, "epoch must rise by exactly one");
	refuse_mutated("add-epoch", 2, 1, bump_epoch, "epoch must not change");
	refuse_mutated("add-changes-others", 2, 1, rename_first, "changes other members");
	refuse_mutated("genesis-two", 1, 0, second_member, NULL);
	/* An entry too large to be read. */
	t.n = SCS_KR_ENTRY_MAX + 1;
	t.p = calloc(1, t.n);
	memset(t.p, ' ', t.n);
	expect_refused("too-large", 2, 1, t, "too large");
	free(t.p);
	/* An entry of another group spliced in after our genesis. */
	{
		scs_err err = { 0 };
		struct blob g2 = { 0 }, e2 = { 0 };
		uint8_t k[32], (*keys)[32] = NULL;
		uint32_t nk;
		scs_keyring *other = NULL;
		CHECK_EQ(scs_keyring_make_genesis(alice, k, &g2.p, &g2.n, &err), 0);
		CHECK_EQ(scs_keyring_apply(&other, 0, g2.p, g2.n, &err), 0);
		CHECK_EQ(scs_keyring_unlock(other, alice, &keys, &nk, &err), 0);
		struct scs_kr_change add = { .kind = SCS_KR_ADD, .member = bob, .role = SCS_ROLE_MEMBER };
		CHECK_EQ(scs_keyring_make_entry(other, &add, alice, (const uint8_t (*)[32])keys, nk,
						NULL, &e2.p, &e2.n, &err), 0);
		expect_refused("other-group", 2, 1, e2, "another group");
		scs_keyring_keys_free(keys, nk);
		scs_keyring_free(other);
		free(g2.p);
		free(e2.p);
	}
}

static void test_structure(void)
{
	scs_err err = { 0 };
	scs_keyring *kr = NULL;
	/* Gap: entries 0 and 2. */
	struct blob gap[3] = { chain[0], { 0 }, chain[2] };
	scs_backend *be = remote_with("gap", gap, 3);
	CHECK_EQ(load(be, &kr, &err), -EBADMSG);
	CHECK(strstr(err.msg, "00000001 is missing") != NULL);
	scs_backend_close(be);

	/* An entry stored under the wrong number. */
	be = new_remote("renamed");
	put(be, 0, chain[0]);
	put(be, 1, chain[2]);
	CHECK_EQ(load(be, &kr, &err), -EBADMSG);
	CHECK(strstr(err.msg, "claims to be entry 2") != NULL);
	scs_backend_close(be);

	/* Fork: a second object for seq 1, as a sync client names it. */
	be = remote_with("fork", chain, 2);
	CHECK_EQ(scs_be_create_file(be, SCS_KEYRING_DIR "/00000001 (1).entry", chain[1].p, chain[1].n), 0);
	CHECK_EQ(load(be, &kr, &err), -EBADMSG);
	CHECK(strstr(err.msg, "forked") != NULL);
	scs_backend_close(be);

	/* Foreign object refused; temp objects of an interrupted write ignored. */
	be = remote_with("foreign", chain, 2);
	CHECK_EQ(scs_be_create_file(be, SCS_KEYRING_DIR "/00000002.entry.tmp-0123456789abcdef", "x", 1), 0);
	CHECK_EQ(load(be, &kr, &err), 0);
	CHECK(kr && kr->seq == 1);
	scs_keyring_free(kr);
	kr = NULL;
	CHECK_EQ(scs_be_create_file(be, SCS_KEYRING_DIR "/notes.txt", "x", 1), 0);
	CHECK_EQ(load(be, &kr, &err), -EBADMSG);
	CHECK(strstr(err.msg, "notes.txt") != NULL);
	scs_backend_close(be);

	/* No keyring at all, and an empty one. */
	char dir[4096];
	snprintf(dir, sizeof dir, "%s/remote-none", tmp);
	scs_mkdir_p(dir, 0755);
	CHECK_EQ(scs_backend_local_open(dir, &be, &err), 0);
	CHECK_EQ(load(be, &kr, &err), -ENOENT);
	scs_backend_close(be);
	be = new_remote("empty");
	CHECK_EQ(load(be, &kr, &err), -ENOENT);
	scs_backend_close(be);
	/* Genesis missing: first entry is not a genesis. */
	be = new_remote("nogenesis");
	put(be, 0, chain[1]);
	CHECK_EQ(load(be, &kr, &err), -EBADMSG);
	scs_backend_close(be);
}

static void test_signers(void)
{
	scs_err err = { 0 };
	struct blob e = { 0 };
	uint8_t (*keys)[32] = NULL;
	uint32_t nk;
	scs_keyring *kr;
	struct scs_kr_change rot = { .kind = SCS_KR_ROTATE };

	/* bob is a plain member after entry 1: his rotate is refused. */
	CHECK_EQ(scs_keyring_unlock(states[1], bob, &keys, &nk, &err), 0);
	CHECK_EQ(scs_keyring_make_entry(states[1], &rot, bob, (const uint8_t (*)[32])keys, nk, NULL,
					&e.p, &e.n, &err), 0);
	scs_keyring_keys_free(keys, nk);
	kr = states[1];
	CHECK_EQ(scs_keyring_apply(&kr, 2, e.p, e.n, &err), -EBADMSG);
	CHECK(strstr(err.msg, "not an admin") != NULL);
	CHECK_EQ(kr->seq, 1);                 /* state unchanged */
	expect_refused("non-admin", 3, 2, e, "not an admin");
	free(e.p);

	/* bob was an admin, then removed in entry 5: he can no longer sign. */
	keys = calloc(3, 32);
	memcpy(keys[0], k1, 32);
	memcpy(keys[1], k2, 32);
	memcpy(keys[2], k3, 32);       /* as if he had kept a copy: it does not help */
	CHECK_EQ(scs_keyring_make_entry(states[5], &rot, bob, (const uint8_t (*)[32])keys, 3, NULL,
					&e.p, &e.n, &err), 0);
	free(keys);
	expect_refused("removed-admin", 7, 6, e, "not an admin");
	free(e.p);

	/* An outsider who was never a member. */
	scs_identity *eve = mkid("eve");
	struct blob g = { 0 };
	uint8_t ek[32];
	CHECK_EQ(scs_keyring_make_genesis(eve, ek, &g.p, &g.n, &err), 0);
	keys = calloc(1, 32);
	memcpy(keys[0], k1, 32);
	struct scs_kr_change add_eve = { .kind = SCS_KR_ADD, .member = eve, .role = SCS_ROLE_ADMIN };
	CHECK_EQ(scs_keyring_make_entry(states[0], &add_eve, eve, (const uint8_t (*)[32])keys, 1, NULL,
					&e.p, &e.n, &err), 0);
	free(keys);
	expect_refused("outsider", 2, 1, e, "not an admin");
	free(e.p);
	free(g.p);
	scs_identity_free(eve);
}

static void test_canary_and_wraps(void)
{
	scs_err err = { 0 };
	scs_keyring *kr;
	uint8_t (*keys)[32] = NULL;
	uint32_t nk = 0;

	/* A wrong canary is signed by an admin, so the log accepts it, but no
	 * member accepts the key. */
	struct blob c[3] = { chain[0], chain[1], mutate(chain[2], random_canary, alice->ed25519) };
	scs_backend *be = remote_with("canary", c, 3);
	CHECK_EQ(load(be, &kr, &err), 0);
	if (kr) {
		CHECK_EQ(scs_keyring_unlock(kr, alice, &keys, &nk, &err), -EBADMSG);
		CHECK(strstr(err.msg, "canary") != NULL);
		CHECK(keys == NULL);
		scs_keyring_free(kr);
	}
	scs_backend_close(be);
	free(c[2].p);

	/* Wraps swapped between members: each wrap's label names its member. */
	c[2] = mutate(chain[2], swap_wraps, alice->ed25519);
	be = remote_with("swap", c, 3);
	CHECK_EQ(load(be, &kr, &err), 0);
	if (kr) {
		CHECK_EQ(scs_keyring_unlock(kr, alice, &keys, &nk, &err), -EBADMSG);
		CHECK_EQ(scs_keyring_unlock(kr, bob, &keys, &nk, &err), -EBADMSG);
		scs_keyring_free(kr);
	}
	scs_backend_close(be);
	free(c[2].p);
}

static void test_parse_api(void)
{
	struct scs_kr_entry e;
	uint8_t *payload, sig[64];
	size_t plen;
	scs_err err = { 0 };
	CHECK_EQ(scs_kr_entry_parse(chain[5].p, chain[5].n, &e, &payload, &plen, sig, &err), 0);
	CHECK_EQ(e.kind, SCS_KR_REMOVE);
	CHECK_EQ(e.seq, 5);
	CHECK_EQ(e.epoch, 3);
	CHECK_EQ(e.nwraps, 2);
	CHECK_EQ(e.box_len, 12 + 2 * 32 + 16);
	CHECK_MEM(e.subject, bob->fpr, 32);
	CHECK(e.created_at > 1600000000);
	CHECK(payload[0] == '{');
	free(payload);
	scs_kr_entry_clear(&e);
	CHECK_EQ(scs_kr_entry_parse((const uint8_t *)"{}", 2, &e, &payload, &plen, sig, &err), -EBADMSG);
	CHECK_EQ(scs_kr_entry_parse((const uint8_t *)"[", 1, &e, &payload, &plen, sig, &err), -EBADMSG);
}

/* Removal snapshots: the object format, the keyring load that fetches and
 * checks them, and the writer rule they feed. */
static void test_snapshots(void)
{
	scs_err err = { 0 };
	uint8_t key1[32], recs[4 * SCS_SNAP_REC_LEN], *obj = NULL, hash[32];
	size_t olen = 0;
	uint32_t count = 0;
	struct blob c[3] = { { 0 } };
	scs_keyring *kr = NULL;

	/* Encode sorts and drops duplicates: records 2, 1, 2, 3 -> 1, 2, 3. */
	const uint8_t order[4] = { 2, 1, 2, 3 };
	for (int i = 0; i < 4; i++)
		memset(recs + i * SCS_SNAP_REC_LEN, order[i], SCS_SNAP_REC_LEN);
	CHECK_EQ(scs_keyring_make_genesis(alice, key1, &c[0].p, &c[0].n, &err), 0);
	CHECK_EQ(scs_keyring_apply(&kr, 0, c[0].p, c[0].n, &err), 0);
	CHECK_EQ(scs_kr_snapshot_encode(kr->group_id, bob->fpr, recs, 4, &obj, &olen, &count), 0);
	CHECK_EQ(count, 3);
	CHECK_EQ(olen, SCS_SNAP_HEAD_LEN + 3 * SCS_SNAP_REC_LEN);
	CHECK_EQ(SCS_SNAP_HEAD_LEN, 76);
	CHECK(memcmp(obj, "SCSSNAP1", 8) == 0);
	CHECK_EQ(obj[SCS_SNAP_HEAD_LEN], 1);
	CHECK_EQ(obj[SCS_SNAP_HEAD_LEN + 2 * SCS_SNAP_REC_LEN], 3);

	/* The strict parser. */
	uint8_t g[32], sub[32];
	const uint8_t *r;
	uint32_t n;
	CHECK_EQ(scs_kr_snapshot_parse(obj, olen, g, sub, &r, &n, &err), 0);
	CHECK_EQ(n, 3);
	CHECK_MEM(sub, bob->fpr, 32);
	CHECK_EQ(scs_kr_snapshot_parse(obj, olen - 1, g, sub, &r, &n, &err), -EBADMSG);
	CHECK_EQ(scs_kr_snapshot_parse(obj, 10, g, sub, &r, &n, &err), -EBADMSG);
	uint8_t *bad = malloc(olen);
	memcpy(bad, obj, olen);
	bad[0] = 'X';
	CHECK_EQ(scs_kr_snapshot_parse(bad, olen, g, sub, &r, &n, &err), -EBADMSG);
	memcpy(bad, obj, olen);
	memset(bad + SCS_SNAP_HEAD_LEN, 2, SCS_SNAP_REC_LEN);          /* 2, 2, 3: a duplicate */
	CHECK_EQ(scs_kr_snapshot_parse(bad, olen, g, sub, &r, &n, &err), -EBADMSG);
	CHECK(strstr(err.msg, "ascending") != NULL);
	memcpy(bad, obj, olen);
	bad[SCS_SNAP_HEAD_LEN - 1] = 4;                                  /* count 4, 3 records */
	CHECK_EQ(scs_kr_snapshot_parse(bad, olen, g, sub, &r, &n, &err), -EBADMSG);

	/* genesis, add bob, remove bob naming the snapshot (lazy). */
	struct scs_kr_change add = { .kind = SCS_KR_ADD, .member = bob, .role = SCS_ROLE_MEMBER };
	uint8_t (*keys)[32] = malloc(32);
	memcpy(keys[0], key1, 32);
	CHECK_EQ(scs_keyring_make_entry(kr, &add, alice, (const uint8_t (*)[32])keys, 1, NULL,
					&c[1].p, &c[1].n, &err), 0);
	CHECK_EQ(scs_keyring_apply(&kr, 1, c[1].p, c[1].n, &err), 0);
	scs_backend *be = new_remote("snap");
	CHECK_EQ(scs_kr_snapshot_store(be, obj, olen, hash, &err), 0);
	CHECK_EQ(scs_kr_snapshot_store(be, obj, olen, hash, &err), 0);   /* a retry: fine */
	struct scs_kr_change rm = { .kind = SCS_KR_REMOVE, .subject = bob->fpr, .snapshot = hash,
				    .snapshot_files = count, .lazy = 1 };
	CHECK_EQ(scs_keyring_make_entry(kr, &rm, alice, (const uint8_t (*)[32])keys, 1, NULL,
					&c[2].p, &c[2].n, &err), 0);
	free(keys);
	CHECK_EQ(scs_keyring_apply(&kr, 2, c[2].p, c[2].n, &err), 0);
	CHECK(kr->entries[2].has_snapshot && kr->entries[2].lazy && !kr->entries[2].snap_loaded);
	CHECK_EQ(kr->entries[2].snapshot_files, 3);
	CHECK_EQ(scs_keyring_rekey_wanted(kr), 0);                      /* lazy */
	scs_keyring_free(kr);
	for (int i = 0; i < 3; i++)
		put(be, (uint32_t)i, c[i]);
	CHECK_EQ(load(be, &kr, &err), 0);
	if (kr) {
		CHECK(kr->entries[2].snap_loaded);
		CHECK_EQ(kr->entries[2].nsnap, 3);
		/* The writer rule. */
		scs_header h;
		memset(&h, 0, sizeof h);
		h.epoch = 1;
		memset(h.file_id, 2, sizeof h.file_id);
		memset(h.content_hash, 2, sizeof h.content_hash);   /* record 2 */
		const struct scs_member *m;
		const struct scs_kr_entry *rme;
		CHECK_EQ(scs_keyring_header_writer(kr, bob->fpr, &h, &m, &rme), 0);
		CHECK(m && strcmp(m->name, "bob") == 0);
		h.content_hash[31] ^= 1;                            /* changed after the removal */
		CHECK_EQ(scs_keyring_header_writer(kr, bob->fpr, &h, &m, &rme), -EKEYREJECTED);
		CHECK(rme == &kr->entries[2]);
		CHECK_EQ(scs_keyring_header_writer(kr, alice->fpr, &h, &m, &rme), 0);
		CHECK_EQ(scs_keyring_header_writer(kr, carol->fpr, &h, &m, &rme), -EPERM);
		h.epoch = 2;
		CHECK_EQ(scs_keyring_header_writer(kr, bob->fpr, &h, &m, &rme), -EPERM);
		scs_keyring_free(kr);
	}
	/* The snapshot object deleted, or other bytes under its name. */
	char path[128], full[8192];
	scs_kr_snapshot_path(hash, path);
	snprintf(full, sizeof full, "%s/remote-snap/%s", tmp, path);
	CHECK_EQ(unlink(full), 0);
	CHECK_EQ(load(be, &kr, &err), -EBADMSG);
	CHECK(strstr(err.msg, "missing") != NULL && strstr(err.msg, "00000002") != NULL);
	memcpy(bad, obj, olen);
	bad[olen - 1] ^= 1;
	CHECK_EQ(scs_local_write_atomic(full, bad, olen, 0644), 0);
	CHECK_EQ(load(be, &kr, &err), -EBADMSG);
	CHECK(strstr(err.msg, "does not match its hash") != NULL);
	/* Stored right again: accepted again. */
	CHECK_EQ(scs_local_write_atomic(full, obj, olen, 0644), 0);
	CHECK_EQ(load(be, &kr, &err), 0);
	scs_keyring_free(kr);
	kr = NULL;
	/* The entry's new fields: both snapshot fields or neither, lazy only
	 * as true, neither on another kind. */
	mut_fn muts[] = { drop_snapshot_files, lazy_false, snapshot_on_add };
	for (size_t i = 0; i < sizeof muts / sizeof muts[0]; i++) {
		int on_add = muts[i] == snapshot_on_add;
		scs_keyring *kx = NULL;
		CHECK_EQ(scs_keyring_apply(&kx, 0, c[0].p, c[0].n, &err), 0);
		if (!on_add)
			CHECK_EQ(scs_keyring_apply(&kx, 1, c[1].p, c[1].n, &err), 0);
		struct blob m = mutate(c[on_add ? 1 : 2], muts[i], alice->ed25519);
		CHECK_EQ(scs_keyring_apply(&kx, on_add ? 1 : 2, m.p, m.n, &err), -EBADMSG);
		CHECK(strstr(err.msg, muts[i] == lazy_false ? "wrong type" : "missing or extra fields"));
		free(m.p);
		scs_keyring_free(kx);
	}
	free(bad);
	free(obj);
	for (int i = 0; i < 3; i++)
		free(c[i].p);
	scs_backend_close(be);
}

/* The vault over a real identity on disk, a group made as `scsctl init`
 * makes it, and a keyring that changes under it. */
static void test_vault(void)
{
	char data[4096], cfg[4200], passf[4200], remote[4200], cmd[8600];
	scs_err err = { 0 };
	scs_identity *me = NULL;
	scs_vault *v = NULL;
	snprintf(data, sizeof data, "%s/vault-data", tmp);
	snprintf(cfg, sizeof cfg, "%s/vault-config", tmp);
	snprintf(passf, sizeof passf, "%s/vault-pass", tmp);
	setenv("XDG_DATA_HOME", data, 1);
	setenv("XDG_CONFIG_HOME", cfg, 1);
	unsetenv("SCSFS_PASSPHRASE_FILE");
	CHECK_EQ(scs_local_write_atomic(passf, "pw\n", 3, 0600), 0);
	struct scs_vault_opts o = { .passphrase_file = passf, .no_prompt = 1 };

	/* The ordered checks, each with its message. */
	snprintf(remote, sizeof remote, "local:%s/vault-none", tmp);
	CHECK_EQ(scs_vault_open(remote, &o, &v, &err), -ENOENT);
	CHECK(strstr(err.msg, "does not exist; check the path or run `scsctl init local:") != NULL);
	snprintf(remote, sizeof remote, "%s/vault-remote", tmp);
	scs_mkdir_p(remote, 0755);
	snprintf(remote, sizeof remote, "local:%s/vault-remote", tmp);
	CHECK_EQ(scs_vault_open(remote, &o, &v, &err), -ENOENT);
	CHECK(strstr(err.msg, "is not an scsfs folder (no .scsfs/); run `scsctl init` on an empty folder") != NULL);
	CHECK_EQ(scs_vault_open(NULL, &o, &v, &err), -ENOENT);      /* no default remote yet */
	CHECK(strstr(err.msg, "no remote given") != NULL);

	scs_backend *be = new_remote("vault");
	snprintf(remote, sizeof remote, "local:%s/remote-vault", tmp);
	CHECK_EQ(scs_vault_open(remote, &o, &v, &err), -ENOENT);
	CHECK(strcmp(err.msg, "no identity; run `scsctl id new NAME` first") == 0);
	CHECK_EQ(scs_identity_create("me", "pw", 2, &me, &err), 0);
	if (!me)
		return;
	CHECK_EQ(scs_vault_open(remote, &o, &v, &err), -ENOENT);    /* empty keyring */

	/* Genesis, pinned, default remote: what `scsctl init` does. */
	struct blob g = { 0 };
	uint8_t k1v[32];
	scs_keyring *kr = NULL;
	CHECK_EQ(scs_keyring_make_genesis(me, k1v, &g.p, &g.n, &err), 0);
	put(be, 0, g);
	CHECK_EQ(load(be, &kr, &err), 0);
	CHECK_EQ(scs_vault_open(remote, &o, &v, &err), -ENOENT);
	CHECK(strstr(err.msg, "not pinned") != NULL);
	CHECK_EQ(scs_keyring_pin_write(kr, &err), 0);
	CHECK_EQ(scs_config_set(SCS_CONFIG_DEFAULT_REMOTE, remote, &err), 0);

	/* A wrong passphrase, then the right one through the environment. */
	char wrongf[4300];
	snprintf(wrongf, sizeof wrongf, "%s.wrong", passf);
	CHECK_EQ(scs_local_write_atomic(wrongf, "nope\n", 5, 0600), 0);
	struct scs_vault_opts wo = { .passphrase_file = wrongf, .no_prompt = 1 };
	CHECK_EQ(scs_vault_open(NULL, &wo, &v, &err), -EACCES);
	CHECK(strcmp(err.msg, "wrong passphrase for identity me; try again") == 0);
	struct scs_vault_opts none = { .no_prompt = 1 };
	CHECK_EQ(scs_vault_open(NULL, &none, &v, &err), -ENXIO);
	setenv("SCSFS_PASSPHRASE_FILE", passf, 1);
	CHECK_EQ(scs_vault_open(NULL, &none, &v, &err), 0);
	unsetenv("SCSFS_PASSPHRASE_FILE");
	if (!v)
		return;

	const scs_keyctx *kc = scs_vault_keyctx(v);
	uint8_t key[32], pub[32], rid[16];
	CHECK_EQ(kc->write_epoch(kc->arg), 1);
	CHECK_EQ(kc->epoch_key(kc->arg, 1, key), 0);
	CHECK_MEM(key, k1v, 32);
	CHECK_EQ(kc->epoch_key(kc->arg, 2, key), -ENOKEY);
	CHECK_EQ(kc->epoch_key(kc->arg, 0, key), -ENOKEY);
	CHECK_EQ(kc->writer_pub(kc->arg, me->fpr, &(scs_header){ .epoch = 1 }, pub, NULL), 0);
	CHECK_MEM(pub, me->ed_pub, 32);
	CHECK_EQ(kc->writer_pub(kc->arg, alice->fpr, &(scs_header){ .epoch = 1 }, pub, NULL), -EPERM);
	CHECK(kc->sign_key != NULL);
	CHECK_MEM(kc->self_fpr, me->fpr, 32);
	scs_root_dir_id(kr->group_id, rid);
	CHECK_MEM(scs_vault_root_dir_id(v), rid, 16);
	const uint8_t (*nk)[SCS_SIV_KEY_LEN];
	const uint32_t *eps;
	CHECK_EQ(scs_vault_name_keys(v, &nk, &eps), 1);
	uint8_t want[64];
	scs_name_key(k1v, want);
	CHECK_MEM(nk[0], want, 64);
	CHECK_EQ(eps[0], 1);
	char fpr[SCS_FPR_TEXT_LEN];
	scs_group_fpr(kr, fpr);
	CHECK(strcmp(scs_vault_group_fpr(v), fpr) == 0);
	CHECK_EQ(scs_vault_refresh(v, &err), 0);                  /* unchanged */
	CHECK_EQ(scs_vault_epoch(v), 1);

	/* Another admin machine adds alice and rotates: the open vault follows. */
	struct blob e1 = { 0 }, e2 = { 0 };
	uint8_t (*keys)[32] = NULL, k2v[32];
	uint32_t n;
	struct scs_kr_change add = { .kind = SCS_KR_ADD, .member = alice, .role = SCS_ROLE_MEMBER };
	CHECK_EQ(scs_keyring_unlock(kr, me, &keys, &n, &err), 0);
	CHECK_EQ(scs_keyring_make_entry(kr, &add, me, (const uint8_t (*)[32])keys, n, NULL,
					&e1.p, &e1.n, &err), 0);
	scs_keyring_keys_free(keys, n);
	CHECK_EQ(scs_keyring_apply(&kr, 1, e1.p, e1.n, &err), 0);
	struct scs_kr_change rot = { .kind = SCS_KR_ROTATE };
	CHECK_EQ(scs_keyring_unlock(kr, me, &keys, &n, &err), 0);
	CHECK_EQ(scs_keyring_make_entry(kr, &rot, me, (const uint8_t (*)[32])keys, n, k2v,
					&e2.p, &e2.n, &err), 0);
	scs_keyring_keys_free(keys, n);
	put(be, 1, e1);
	put(be, 2, e2);
	const uint8_t (*old_nk)[SCS_SIV_KEY_LEN] = nk;
	CHECK_EQ(scs_vault_refresh(v, &err), 0);
	CHECK_EQ(kc->write_epoch(kc->arg), 2);
	CHECK_EQ(kc->epoch_key(kc->arg, 2, key), 0);
	CHECK_MEM(key, k2v, 32);
	CHECK_EQ(kc->epoch_key(kc->arg, 1, key), 0);
	CHECK_MEM(key, k1v, 32);
	CHECK_EQ(kc->writer_pub(kc->arg, alice->fpr, &(scs_header){ .epoch = 2 }, pub, NULL), 0);
	CHECK_EQ(scs_vault_name_keys(v, &nk, &eps), 2);
	CHECK(eps[0] == 2 && eps[1] == 1);
	CHECK_MEM(old_nk[0], want, 64);          /* arrays handed out earlier stay valid */
	scs_vault_close(v);
	v = NULL;

	/* The pin moved to entry 2: dropping entry 2 is now a rollback. */
	snprintf(cmd, sizeof cmd, "rm %s/remote-vault/.scsfs/keyring/00000002.entry", tmp);
	CHECK_EQ(system(cmd), 0);
	CHECK_EQ(scs_vault_open(NULL, &o, &v, &err), -EBADMSG);
	CHECK(strstr(err.msg, "the keyring was rolled back") != NULL);
	CHECK(v == NULL);
	put(be, 2, e2);

	/* Someone who is not a member: the message that tells them what to do. */
	char other[4200];
	snprintf(other, sizeof other, "%s/vault-data-other", tmp);
	setenv("XDG_DATA_HOME", other, 1);
	scs_identity *stranger = NULL;
	CHECK_EQ(scs_identity_create("stranger", "pw", 2, &stranger, &err), 0);
	scs_keyring *cur = NULL;
	CHECK_EQ(load(be, &cur, &err), 0);
	if (cur)
		CHECK_EQ(scs_keyring_pin_write(cur, &err), 0);
	CHECK_EQ(scs_vault_open(NULL, &o, &v, &err), -EACCES);
	CHECK(strcmp(err.msg, "you are not a member of this group; ask an admin to run `scsctl member "
		     "add` with the file from `scsctl id export`") == 0);
	setenv("XDG_DATA_HOME", data, 1);
	/* public_only: no passphrase needed. */
	struct scs_vault_opts po = { .public_only = 1, .no_prompt = 1 };
	CHECK_EQ(scs_vault_open(NULL, &po, &v, &err), 0);
	if (v) {
		CHECK(scs_vault_keyctx(v)->sign_key == NULL);
		CHECK_EQ(scs_vault_keyring(v)->seq, 2);
		scs_vault_close(v);
	}
	scs_keyring_free(cur);
	scs_identity_free(stranger);
	free(g.p);
	free(e1.p);
	free(e2.p);
	scs_keyring_free(kr);
	scs_identity_free(me);
	scs_backend_close(be);
}

/* Names of entry kinds, as `scsctl log` prints them and the format spells them. */
static void test_kind_names(void)
{
	CHECK(strcmp(scs_kr_kind_name(SCS_KR_GENESIS), "genesis") == 0);
	CHECK(strcmp(scs_kr_kind_name(SCS_KR_ADD), "add") == 0);
	CHECK(strcmp(scs_kr_kind_name(SCS_KR_REMOVE), "remove") == 0);
	CHECK(strcmp(scs_kr_kind_name(SCS_KR_SET_ROLE), "set_role") == 0);
	CHECK(strcmp(scs_kr_kind_name(SCS_KR_ROTATE), "rotate") == 0);
	CHECK(strcmp(scs_kr_kind_name(0), "?") == 0);
	CHECK(strcmp(scs_kr_kind_name(SCS_KR_RETIRE), "retire") == 0);
	CHECK(strcmp(scs_kr_kind_name(SCS_KR_RETIRE + 1), "?") == 0);
}

int main(void)
{
	tmp = unit_tmpdir("keyring");
	alice = mkid("alice");
	bob = mkid("bob");
	carol = mkid("carol");
	make_chain();
	test_valid_chain();
	test_pin();
	test_pin_race();
	test_tampering();
	test_structure();
	test_signers();
	test_canary_and_wraps();
	test_parse_api();
	test_snapshots();
	test_vault();
	test_kind_names();
	for (int i = 0; i < 6; i++) {
		free(chain[i].p);
		scs_keyring_free(states[i]);
	}
	scs_identity_free(alice);
	scs_identity_free(bob);
	scs_identity_free(carol);
	return unit_done("keyring");
}
