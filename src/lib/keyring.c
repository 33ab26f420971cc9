/* keyring.c - the group keyring: strict parsing, verification of the
 * signed hash chain, the local pin / high-water mark, epoch key unwrapping,
 * and building new entries.  The exact format is in man/scsfs-format.5
 * (KEYRING); the comments here name the rule each check enforces. */
#include "scs/keyring.h"
#include "scs/b64.h"
#include "scs/config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/x509.h>

#define SIG_LABEL    "scsfs v1 keyring entry"
#define WRAP_LABEL   "scsfs v1 epoch wrap"
#define CANARY_INFO  "scsfs v1 canary"
#define BOX_INFO     "scsfs v1 prev epochs"
#define NOT_MEMBER_MSG "you are not a member of this group; ask an admin to run " \
	"`scsctl member add` with the file from `scsctl id export`"

static const char *const kind_names[] = {
	[SCS_KR_GENESIS] = "genesis", [SCS_KR_ADD] = "add", [SCS_KR_REMOVE] = "remove",
	[SCS_KR_SET_ROLE] = "set_role", [SCS_KR_ROTATE] = "rotate", [SCS_KR_RETIRE] = "retire",
};

/* Payload fields, and which kinds carry which (exactly these, no others). */
enum {
	F_VERSION = 1 << 0, F_KIND = 1 << 1, F_SEQ = 1 << 2, F_EPOCH = 1 << 3,
	F_AUTHOR = 1 << 4, F_GROUP = 1 << 5, F_PREV = 1 << 6, F_NONCE = 1 << 7,
	F_SUBJECT = 1 << 8, F_MEMBERS = 1 << 9, F_WRAPS = 1 << 10, F_CANARY = 1 << 11,
	F_BOX = 1 << 12, F_CREATED = 1 << 13, F_RETIRE = 1 << 14, F_SNAPSHOT = 1 << 15,
	F_SNAPFILES = 1 << 16, F_LAZY = 1 << 17,
};
static const struct { const char *name; unsigned bit; } fields[] = {
	{ "version", F_VERSION }, { "kind", F_KIND }, { "seq", F_SEQ }, { "epoch", F_EPOCH },
	{ "author", F_AUTHOR }, { "group", F_GROUP }, { "prev", F_PREV }, { "nonce", F_NONCE },
	{ "subject", F_SUBJECT }, { "members", F_MEMBERS }, { "wraps", F_WRAPS },
	{ "canary", F_CANARY }, { "prev_epochs_box", F_BOX }, { "created_at", F_CREATED },
	{ "retire_below", F_RETIRE }, { "snapshot", F_SNAPSHOT }, { "snapshot_files", F_SNAPFILES },
	{ "lazy", F_LAZY },
};
#define F_COMMON (F_VERSION | F_KIND | F_SEQ | F_EPOCH | F_AUTHOR | F_MEMBERS | F_CREATED)
#define F_NEWEPOCH (F_WRAPS | F_CANARY | F_BOX)
static const unsigned kind_fields[] = {
	[SCS_KR_GENESIS] = F_COMMON | F_NONCE | F_NEWEPOCH,
	[SCS_KR_ADD] = F_COMMON | F_GROUP | F_PREV | F_SUBJECT | F_WRAPS,
	[SCS_KR_REMOVE] = F_COMMON | F_GROUP | F_PREV | F_SUBJECT | F_NEWEPOCH,
	[SCS_KR_SET_ROLE] = F_COMMON | F_GROUP | F_PREV | F_SUBJECT,
	[SCS_KR_ROTATE] = F_COMMON | F_GROUP | F_PREV | F_NEWEPOCH,
	[SCS_KR_RETIRE] = F_COMMON | F_GROUP | F_PREV | F_RETIRE,
};
/* Fields a kind may carry besides those (a remove entry: its snapshot,
 * both fields or neither, and "lazy":true). */
static const unsigned kind_optional[SCS_KR_RETIRE + 1] = {
	[SCS_KR_REMOVE] = F_SNAPSHOT | F_SNAPFILES | F_LAZY,
};

static int new_epoch_kind(int kind)
{
	return kind == SCS_KR_GENESIS || kind == SCS_KR_REMOVE || kind == SCS_KR_ROTATE;
}

static void put_u32be(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

const char *scs_role_name(int role)
{
	return role == SCS_ROLE_ADMIN ? "admin" : role == SCS_ROLE_MEMBER ? "member" : "?";
}

const char *scs_kr_kind_name(int kind)
{
	return kind >= SCS_KR_GENESIS && kind <= SCS_KR_RETIRE ? kind_names[kind] : "?";
}

void scs_keyring_entry_path(uint32_t seq, char out[64])
{
	snprintf(out, 64, SCS_KEYRING_DIR "/%08u.entry", seq);
}

/* ---- members ---- */

static void members_free(struct scs_member *m, size_t n)
{
	if (!m)
		return;
	for (size_t i = 0; i < n; i++)
		free(m[i].spki);
	free(m);
}

static int member_copy(struct scs_member *dst, const struct scs_member *src)
{
	*dst = *src;
	dst->spki = malloc(src->spki_len);
	if (!dst->spki)
		return -ENOMEM;
	memcpy(dst->spki, src->spki, src->spki_len);
	return 0;
}

static int member_equal(const struct scs_member *a, const struct scs_member *b)
{
	return strcmp(a->name, b->name) == 0 && memcmp(a->fpr, b->fpr, SCS_FPR_LEN) == 0 &&
	       a->role == b->role && memcmp(a->ed25519, b->ed25519, SCS_ED25519_PUB_LEN) == 0 &&
	       a->spki_len == b->spki_len && memcmp(a->spki, b->spki, a->spki_len) == 0;
}

static const struct scs_member *find_member(const struct scs_member *m, size_t n,
					    const uint8_t fpr[SCS_FPR_LEN])
{
	for (size_t i = 0; i < n; i++)
		if (memcmp(m[i].fpr, fpr, SCS_FPR_LEN) == 0)
			return &m[i];
	return NULL;
}

static int member_from_identity(struct scs_member *m, const scs_identity *id, int role)
{
	memset(m, 0, sizeof *m);
	snprintf(m->name, sizeof m->name, "%s", id->name);
	memcpy(m->fpr, id->fpr, SCS_FPR_LEN);
	memcpy(m->ed25519, id->ed_pub, SCS_ED25519_PUB_LEN);
	m->role = role;
	m->spki = malloc(id->rsa_spki_len);
	if (!m->spki)
		return -ENOMEM;
	memcpy(m->spki, id->rsa_spki, id->rsa_spki_len);
	m->spki_len = id->rsa_spki_len;
	return 0;
}

/* A member record's keys are well formed and its fingerprint is theirs. */
static int member_check_keys(const struct scs_member *m, scs_err *err)
{
	scs_identity *id;
	int rc = scs_identity_from_keys(m->name, m->ed25519, m->spki, m->spki_len, &id, err);
	if (rc < 0)
		return -EBADMSG;
	int ok = memcmp(id->fpr, m->fpr, SCS_FPR_LEN) == 0;
	scs_identity_free(id);
	if (!ok)
		return scs_err_set(err, -EBADMSG, "member %s: fingerprint does not match the keys", m->name);
	return 0;
}

const struct scs_member *scs_keyring_members(const scs_keyring *kr, size_t *n)
{
	const struct scs_kr_entry *last = &kr->entries[kr->nentries - 1];
	*n = last->nmembers;
	return last->members;
}

const struct scs_member *scs_keyring_member(const scs_keyring *kr, const uint8_t fpr[SCS_FPR_LEN])
{
	size_t n;
	const struct scs_member *m = scs_keyring_members(kr, &n);
	return find_member(m, n, fpr);
}

const struct scs_member *scs_keyring_writer(const scs_keyring *kr, const uint8_t fpr[SCS_FPR_LEN],
					    uint32_t epoch)
{
	/* Members of any state whose epoch was `epoch`; newest first. */
	for (size_t i = kr->nentries; i-- > 0; ) {
		const struct scs_kr_entry *e = &kr->entries[i];
		if (e->epoch < epoch)
			break;
		if (e->epoch != epoch)
			continue;
		const struct scs_member *m = find_member(e->members, e->nmembers, fpr);
		if (m)
			return m;
	}
	return NULL;
}

static int snap_cmp(const void *a, const void *b)
{
	return memcmp(a, b, SCS_SNAP_REC_LEN);
}

int scs_keyring_header_writer(const scs_keyring *kr, const uint8_t fpr[SCS_FPR_LEN],
			      const scs_header *h, const struct scs_member **m,
			      const struct scs_kr_entry **removal)
{
	*removal = NULL;
	*m = scs_keyring_writer(kr, fpr, h->epoch);
	if (!*m)
		return -EPERM;
	if (scs_keyring_member(kr, fpr))
		return 0;                /* still a member */
	/* Removed: the newest removal's snapshot lists every file they had
	 * written (a later removal's list includes an earlier one's). */
	const struct scs_kr_entry *r = NULL;
	for (size_t i = kr->nentries; i-- > 0 && !r; )
		if (kr->entries[i].kind == SCS_KR_REMOVE &&
		    memcmp(kr->entries[i].subject, fpr, SCS_FPR_LEN) == 0)
			r = &kr->entries[i];
	if (!r || !r->has_snapshot)
		return 0;                /* a keyring from before snapshots: the old rule */
	uint8_t key[SCS_SNAP_REC_LEN];
	memcpy(key, h->file_id, SCS_FILE_ID_LEN);
	memcpy(key + SCS_FILE_ID_LEN, h->content_hash, SCS_SHA256_LEN);
	if (r->snap_loaded && r->nsnap &&
	    bsearch(key, r->snap, r->nsnap, SCS_SNAP_REC_LEN, snap_cmp))
		return 0;                /* a version they wrote while a member */
	*removal = r;
	return -EKEYREJECTED;
}

int scs_keyring_rekey_wanted(const scs_keyring *kr)
{
	uint32_t below = kr->retired_below > 1 ? kr->retired_below : 1;
	for (size_t i = kr->nentries; i-- > 0; ) {
		const struct scs_kr_entry *e = &kr->entries[i];
		if (e->epoch <= below)
			break;
		if ((e->kind == SCS_KR_REMOVE && !e->lazy) || e->kind == SCS_KR_ROTATE)
			return 1;
	}
	return 0;
}

/* ---- parsing ---- */

void scs_kr_entry_clear(struct scs_kr_entry *e)
{
	for (size_t i = 0; i < e->nwraps; i++)
		free(e->wraps[i].ct);
	free(e->wraps);
	free(e->box);
	free(e->snap);
	members_free(e->members, e->nmembers);
	memset(e, 0, sizeof *e);
}

void scs_keyring_free(scs_keyring *kr)
{
	if (!kr)
		return;
	for (size_t i = 0; i < kr->nentries; i++)
		scs_kr_entry_clear(&kr->entries[i]);
	free(kr->entries);
	free(kr);
}

/* Strict lowercase hex of exactly n bytes. */
static int get_hex(json_t *v, uint8_t *out, size_t n)
{
	if (!json_is_string(v) || json_string_length(v) != 2 * n)
		return -EBADMSG;
	const char *s = json_string_value(v);
	for (size_t i = 0; i < 2 * n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return -EBADMSG;
	return scs_hex_decode(s, 2 * n, out, n) == (int)n ? 0 : -EBADMSG;
}

/* Base64 into a fresh buffer of at most max bytes (min..max). */
static int get_b64_alloc(json_t *v, size_t min, size_t max, uint8_t **out, size_t *len)
{
	*out = NULL;
	*len = 0;
	if (!json_is_string(v) || json_string_length(v) > scs_b64_len(max))
		return -EBADMSG;
	uint8_t *buf = malloc(max ? max : 1);
	if (!buf)
		return -ENOMEM;
	long n = scs_b64_decode(json_string_value(v), json_string_length(v), buf, max);
	if (n < 0 || (size_t)n < min || (size_t)n > max) {
		free(buf);
		return -EBADMSG;
	}
	*out = buf;
	*len = (size_t)n;
	return 0;
}

static int get_b64_fixed(json_t *v, uint8_t *out, size_t n)
{
	if (!json_is_string(v) || json_string_length(v) != scs_b64_len(n))
		return -EBADMSG;
	return scs_b64_decode(json_string_value(v), json_string_length(v), out, n) == (long)n
	       ? 0 : -EBADMSG;
}

static int get_u32(json_t *v, uint32_t *out)
{
	if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > UINT32_MAX)
		return -EBADMSG;
	*out = (uint32_t)json_integer_value(v);
	return 0;
}

static int parse_member(json_t *o, struct scs_member *m, scs_err *err)
{
	memset(m, 0, sizeof *m);
	json_t *name = json_object_get(o, "name"), *role = json_object_get(o, "role");
	if (!json_is_object(o) || json_object_size(o) != 5 || !json_is_string(name) ||
	    !json_is_string(role))
		return scs_err_set(err, -EBADMSG, "a member record must have exactly the fields "
				   "ed25519, fpr, name, role, rsa_spki");
	const char *nm = json_string_value(name);
	if (strlen(nm) != json_string_length(name) || !scs_name_valid(nm))
		return scs_err_set(err, -EBADMSG, "a member record has an invalid name");
	snprintf(m->name, sizeof m->name, "%s", nm);
	if (strcmp(json_string_value(role), "admin") == 0)
		m->role = SCS_ROLE_ADMIN;
	else if (strcmp(json_string_value(role), "member") == 0)
		m->role = SCS_ROLE_MEMBER;
	else
		return scs_err_set(err, -EBADMSG, "member %s has an unknown role", m->name);
	if (get_hex(json_object_get(o, "fpr"), m->fpr, SCS_FPR_LEN) < 0 ||
	    get_b64_fixed(json_object_get(o, "ed25519"), m->ed25519, SCS_ED25519_PUB_LEN) < 0 ||
	    get_b64_alloc(json_object_get(o, "rsa_spki"), 1, SCS_SPKI_MAX, &m->spki, &m->spki_len) < 0)
		return scs_err_set(err, -EBADMSG, "member %s has a malformed key or fingerprint", m->name);
	return 0;
}

static int parse_members(json_t *a, struct scs_kr_entry *e, scs_err *err)
{
	if (!json_is_array(a) || json_array_size(a) == 0 || json_array_size(a) > SCS_KR_MEMBERS_MAX)
		return scs_err_set(err, -EBADMSG, "members must be a list of 1 to %d records",
				   SCS_KR_MEMBERS_MAX);
	size_t n = json_array_size(a);
	e->members = calloc(n, sizeof *e->members);
	if (!e->members)
		return scs_err_set(err, -ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		int rc = parse_member(json_array_get(a, i), &e->members[i], err);
		e->nmembers = i + 1;
		if (rc < 0)
			return rc;
		for (size_t j = 0; j < i; j++)
			if (memcmp(e->members[j].fpr, e->members[i].fpr, SCS_FPR_LEN) == 0 ||
			    strcmp(e->members[j].name, e->members[i].name) == 0)
				return scs_err_set(err, -EBADMSG, "member %s is listed twice",
						   e->members[i].name);
	}
	return 0;
}

static int parse_wraps(json_t *a, struct scs_kr_entry *e, scs_err *err)
{
	if (!json_is_array(a) || json_array_size(a) == 0 || json_array_size(a) > SCS_KR_MEMBERS_MAX)
		return scs_err_set(err, -EBADMSG, "wraps must be a list of 1 to %d records",
				   SCS_KR_MEMBERS_MAX);
	size_t n = json_array_size(a);
	e->wraps = calloc(n, sizeof *e->wraps);
	if (!e->wraps)
		return scs_err_set(err, -ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		json_t *w = json_array_get(a, i);
		e->nwraps = i + 1;
		if (!json_is_object(w) || json_object_size(w) != 2 ||
		    get_hex(json_object_get(w, "fpr"), e->wraps[i].fpr, SCS_FPR_LEN) < 0 ||
		    get_b64_alloc(json_object_get(w, "key"), 1, SCS_KR_WRAP_MAX, &e->wraps[i].ct,
				  &e->wraps[i].ct_len) < 0)
			return scs_err_set(err, -EBADMSG, "a wrap record must be exactly {fpr, key}");
	}
	return 0;
}

static int parse_payload(const uint8_t *p, size_t plen, struct scs_kr_entry *e, scs_err *err)
{
	json_error_t je;
	json_t *o = json_loadb((const char *)p, plen, JSON_REJECT_DUPLICATES, &je);
	if (!o)
		return scs_err_set(err, -EBADMSG, "payload is not valid JSON (%s)", je.text);
	int rc = -EBADMSG;
	if (!json_is_object(o)) {
		scs_err_set(err, rc, "payload is not a JSON object");
		goto out;
	}
	/* Canonical form only: compact, sorted keys, exactly what we write. */
	char *canon = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
	int same = canon && strlen(canon) == plen && memcmp(canon, p, plen) == 0;
	free(canon);
	if (!same) {
		scs_err_set(err, rc, "payload is not in canonical form");
		goto out;
	}
	unsigned have = 0;
	const char *key;
	json_t *v;
	json_object_foreach(o, key, v) {
		unsigned bit = 0;
		for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
			if (strcmp(fields[i].name, key) == 0)
				bit = fields[i].bit;
		if (!bit) {
			scs_err_set(err, rc, "payload has an unknown field \"%.40s\"", key);
			goto out;
		}
		have |= bit;
	}
	uint32_t ver;
	if (get_u32(json_object_get(o, "version"), &ver) < 0 || ver != SCS_KEYRING_VERSION) {
		scs_err_set(err, rc, "unsupported keyring entry version (this scsfs reads version %d); "
			    "upgrade scsfs", SCS_KEYRING_VERSION);
		goto out;
	}
	json_t *kind = json_object_get(o, "kind");
	e->kind = 0;
	for (int k = SCS_KR_GENESIS; k <= SCS_KR_RETIRE; k++)
		if (json_is_string(kind) && strcmp(json_string_value(kind), kind_names[k]) == 0)
			e->kind = k;
	if (!e->kind) {
		scs_err_set(err, rc, "unknown entry kind");
		goto out;
	}
	unsigned opt = have & ~kind_fields[e->kind];
	if ((have & kind_fields[e->kind]) != kind_fields[e->kind] ||
	    (opt & ~kind_optional[e->kind]) ||
	    !(opt & F_SNAPSHOT) != !(opt & F_SNAPFILES)) {
		scs_err_set(err, rc, "a %s entry has missing or extra fields", kind_names[e->kind]);
		goto out;
	}
	json_t *created = json_object_get(o, "created_at");
	if (get_u32(json_object_get(o, "seq"), &e->seq) < 0 ||
	    get_u32(json_object_get(o, "epoch"), &e->epoch) < 0 ||
	    !json_is_integer(created) || json_integer_value(created) < 0 ||
	    get_hex(json_object_get(o, "author"), e->author, SCS_FPR_LEN) < 0 ||
	    ((have & F_GROUP) && get_hex(json_object_get(o, "group"), e->group, SCS_GROUP_ID_LEN) < 0) ||
	    ((have & F_PREV) && get_hex(json_object_get(o, "prev"), e->prev, SCS_SHA256_LEN) < 0) ||
	    ((have & F_RETIRE) && get_u32(json_object_get(o, "retire_below"), &e->retire_below) < 0) ||
	    ((have & F_SUBJECT) && get_hex(json_object_get(o, "subject"), e->subject, SCS_FPR_LEN) < 0) ||
	    ((have & F_SNAPSHOT) && get_b64_fixed(json_object_get(o, "snapshot"), e->snapshot,
						   SCS_SHA256_LEN) < 0) ||
	    ((have & F_SNAPFILES) && (get_u32(json_object_get(o, "snapshot_files"), &e->snapshot_files) < 0 ||
				      e->snapshot_files > SCS_SNAP_FILES_MAX)) ||
	    ((have & F_LAZY) && !json_is_true(json_object_get(o, "lazy"))) ||
	    ((have & F_NONCE) && get_b64_fixed(json_object_get(o, "nonce"), e->nonce, SCS_KR_NONCE_LEN) < 0) ||
	    ((have & F_CANARY) && get_b64_fixed(json_object_get(o, "canary"), e->canary, SCS_KR_CANARY_LEN) < 0) ||
	    ((have & F_BOX) && get_b64_alloc(json_object_get(o, "prev_epochs_box"), 0,
					     SCS_GCM_NONCE_LEN + SCS_KR_EPOCHS_MAX * SCS_KEY_LEN + SCS_GCM_TAG_LEN,
					     &e->box, &e->box_len) < 0)) {
		scs_err_set(err, rc, "a field of the %s entry has the wrong type or size", kind_names[e->kind]);
		goto out;
	}
	e->created_at = json_integer_value(created);
	e->has_subject = !!(have & F_SUBJECT);
	e->has_canary = !!(have & F_CANARY);
	e->has_wraps = !!(have & F_WRAPS);
	e->has_snapshot = !!(have & F_SNAPSHOT);
	e->lazy = !!(have & F_LAZY);
	rc = parse_members(json_object_get(o, "members"), e, err);
	if (rc == 0 && e->has_wraps)
		rc = parse_wraps(json_object_get(o, "wraps"), e, err);
out:
	json_decref(o);
	return rc;
}

int scs_kr_entry_parse(const uint8_t *data, size_t len, struct scs_kr_entry *e,
		       uint8_t **payload, size_t *plen, uint8_t sig[SCS_ED25519_SIG_LEN], scs_err *err)
{
	memset(e, 0, sizeof *e);
	*payload = NULL;
	*plen = 0;
	if (len > SCS_KR_ENTRY_MAX)
		return scs_err_set(err, -EBADMSG, "entry is larger than %u bytes", SCS_KR_ENTRY_MAX);
	json_error_t je;
	json_t *o = json_loadb((const char *)data, len, JSON_REJECT_DUPLICATES, &je);
	if (!o)
		return scs_err_set(err, -EBADMSG, "entry is not valid JSON (%s)", je.text);
	int rc = -EBADMSG;
	json_t *pv = json_object_get(o, "payload"), *sv = json_object_get(o, "sig");
	if (!json_is_object(o) || json_object_size(o) != 2 || !json_is_string(pv) || !json_is_string(sv)) {
		scs_err_set(err, rc, "entry must be exactly {\"payload\": ..., \"sig\": ...}");
		goto out;
	}
	/* The object bytes must be exactly the canonical form (they are hashed). */
	size_t pl = json_string_length(pv), sl = json_string_length(sv);
	const char *pfx = "{\"payload\":\"", *mid = "\",\"sig\":\"", *sfx = "\"}";
	size_t want = strlen(pfx) + pl + strlen(mid) + sl + strlen(sfx);
	if (want != len || memcmp(data, pfx, strlen(pfx)) != 0 ||
	    memcmp(data + strlen(pfx), json_string_value(pv), pl) != 0 ||
	    memcmp(data + strlen(pfx) + pl, mid, strlen(mid)) != 0 ||
	    memcmp(data + strlen(pfx) + pl + strlen(mid), json_string_value(sv), sl) != 0 ||
	    memcmp(data + len - strlen(sfx), sfx, strlen(sfx)) != 0) {
		scs_err_set(err, rc, "entry is not in canonical form");
		goto out;
	}
	if (get_b64_fixed(sv, sig, SCS_ED25519_SIG_LEN) < 0) {
		scs_err_set(err, rc, "entry signature is malformed");
		goto out;
	}
	if (get_b64_alloc(pv, 2, SCS_KR_ENTRY_MAX, payload, plen) < 0) {
		scs_err_set(err, rc, "entry payload is not base64");
		goto out;
	}
	rc = parse_payload(*payload, *plen, e, err);
	if (rc < 0) {
		free(*payload);
		*payload = NULL;
		scs_kr_entry_clear(e);
	}
out:
	json_decref(o);
	return rc;
}

/* ---- verification ---- */

static int count_admins(const struct scs_member *m, size_t n)
{
	int a = 0;
	for (size_t i = 0; i < n; i++)
		a += m[i].role == SCS_ROLE_ADMIN;
	return a;
}

/* wraps[i] is for members[i], one per member, in order. */
static int wraps_cover(const struct scs_kr_entry *e)
{
	if (e->nwraps != e->nmembers)
		return 0;
	for (size_t i = 0; i < e->nwraps; i++)
		if (memcmp(e->wraps[i].fpr, e->members[i].fpr, SCS_FPR_LEN) != 0)
			return 0;
	return 1;
}

static size_t box_size(uint32_t epoch)
{
	return epoch <= 1 ? 0 : SCS_GCM_NONCE_LEN + (size_t)(epoch - 1) * SCS_KEY_LEN + SCS_GCM_TAG_LEN;
}

/* The change an entry makes, against the previous state p (NULL for genesis). */
static int check_change(const struct scs_kr_entry *p, const struct scs_kr_entry *e, scs_err *err)
{
	const char *k = kind_names[e->kind];
	size_t pn = p ? p->nmembers : 0;
	if (new_epoch_kind(e->kind)) {
		if (e->epoch != (p ? p->epoch + 1 : 1) || e->epoch > SCS_KR_EPOCHS_MAX)
			return scs_err_set(err, -EBADMSG, "%s entry %u: epoch must rise by exactly one",
					   k, e->seq);
		if (!wraps_cover(e))
			return scs_err_set(err, -EBADMSG, "%s entry %u: the new epoch key is not wrapped "
					   "exactly once to each member", k, e->seq);
		if (e->box_len != box_size(e->epoch))
			return scs_err_set(err, -EBADMSG, "%s entry %u: the box of older epoch keys has "
					   "the wrong size", k, e->seq);
	} else if (e->epoch != p->epoch) {
		return scs_err_set(err, -EBADMSG, "%s entry %u: the epoch must not change", k, e->seq);
	}
	switch (e->kind) {
	case SCS_KR_GENESIS:
		if (e->seq != 0 || e->nmembers != 1 || e->members[0].role != SCS_ROLE_ADMIN ||
		    memcmp(e->members[0].fpr, e->author, SCS_FPR_LEN) != 0)
			return scs_err_set(err, -EBADMSG, "genesis entry: its author must be the only "
					   "member, an admin");
		return member_check_keys(&e->members[0], err);
	case SCS_KR_ADD: {
		const struct scs_member *nm = &e->members[e->nmembers - 1];
		if (e->nmembers != pn + 1 || memcmp(nm->fpr, e->subject, SCS_FPR_LEN) != 0 ||
		    find_member(p->members, pn, e->subject))
			return scs_err_set(err, -EBADMSG, "add entry %u: the member list must be the old "
					   "one plus the new member", e->seq);
		for (size_t i = 0; i < pn; i++)
			if (!member_equal(&p->members[i], &e->members[i]))
				return scs_err_set(err, -EBADMSG, "add entry %u changes other members", e->seq);
		if (e->nwraps != 1 || memcmp(e->wraps[0].fpr, e->subject, SCS_FPR_LEN) != 0)
			return scs_err_set(err, -EBADMSG, "add entry %u: the epoch key must be wrapped to "
					   "the new member only", e->seq);
		return member_check_keys(nm, err);
	}
	case SCS_KR_REMOVE: {
		if (!find_member(p->members, pn, e->subject) || e->nmembers + 1 != pn)
			return scs_err_set(err, -EBADMSG, "remove entry %u: the member list must be the "
					   "old one without the removed member", e->seq);
		for (size_t i = 0, j = 0; i < pn; i++) {
			if (memcmp(p->members[i].fpr, e->subject, SCS_FPR_LEN) == 0)
				continue;
			if (!member_equal(&p->members[i], &e->members[j++]))
				return scs_err_set(err, -EBADMSG, "remove entry %u changes other members",
						   e->seq);
		}
		return 0;
	}
	case SCS_KR_SET_ROLE: {
		int changed = 0;
		if (e->nmembers != pn)
			return scs_err_set(err, -EBADMSG, "set_role entry %u changes the member list", e->seq);
		for (size_t i = 0; i < pn; i++) {
			struct scs_member m = p->members[i];
			if (memcmp(m.fpr, e->subject, SCS_FPR_LEN) == 0 && m.role != e->members[i].role) {
				m.role = e->members[i].role;
				changed = 1;
			}
			if (!member_equal(&m, &e->members[i]))
				return scs_err_set(err, -EBADMSG, "set_role entry %u changes more than the "
						   "role of its subject", e->seq);
		}
		if (!changed)
			return scs_err_set(err, -EBADMSG, "set_role entry %u changes nothing", e->seq);
		return 0;
	}
	case SCS_KR_RETIRE:
		/* After a completed re-key pass: epochs below retire_below are
		 * refused from now on.  The bound only rises, and never past
		 * the current epoch (the current key is never retired). */
		if (e->retire_below <= (p->retire_below > 1 ? p->retire_below : 1) ||
		    e->retire_below > e->epoch)
			return scs_err_set(err, -EBADMSG, "retire entry %u: the retired bound must rise "
					   "and stay at most the current epoch", e->seq);
		/* and, like a rotate, the member list stays */
		/* fall through */
	case SCS_KR_ROTATE:
		if (e->nmembers != pn)
			return scs_err_set(err, -EBADMSG, "rotate entry %u changes the member list", e->seq);
		for (size_t i = 0; i < pn; i++)
			if (!member_equal(&p->members[i], &e->members[i]))
				return scs_err_set(err, -EBADMSG, "rotate entry %u changes the member list",
						   e->seq);
		return 0;
	}
	return -EBADMSG;
}

static int verify_sig(const uint8_t *payload, size_t plen, const uint8_t sig[SCS_ED25519_SIG_LEN],
		      const uint8_t pub[SCS_ED25519_PUB_LEN])
{
	size_t n = sizeof SIG_LABEL - 1 + plen;
	uint8_t *msg = malloc(n);
	if (!msg)
		return -ENOMEM;
	memcpy(msg, SIG_LABEL, sizeof SIG_LABEL - 1);
	memcpy(msg + sizeof SIG_LABEL - 1, payload, plen);
	int rc = scs_ed25519_verify(pub, msg, n, sig);
	free(msg);
	return rc;
}

int scs_keyring_apply(scs_keyring **krp, uint32_t seq, const uint8_t *data, size_t len, scs_err *err)
{
	scs_keyring *kr = *krp;
	const struct scs_kr_entry *p = kr ? &kr->entries[kr->nentries - 1] : NULL;
	struct scs_kr_entry e;
	uint8_t *payload, sig[SCS_ED25519_SIG_LEN];
	size_t plen;
	char m[sizeof err->msg];
	int rc = scs_kr_entry_parse(data, len, &e, &payload, &plen, sig, err);
	if (rc < 0) {
		if (err) {
			snprintf(m, sizeof m, "%s", err->msg);
			scs_err_set(err, rc, "keyring entry %08u is malformed: %s", seq, m);
		}
		return rc;
	}
	rc = -EBADMSG;
	if (e.seq != seq) {
		scs_err_set(err, rc, "keyring entry %08u claims to be entry %u (entries were renamed or "
			    "moved)", seq, e.seq);
		goto fail;
	}
	if (!p && e.kind != SCS_KR_GENESIS) {
		scs_err_set(err, rc, "keyring entry %08u is not a genesis entry", seq);
		goto fail;
	}
	if (p) {
		if (e.kind == SCS_KR_GENESIS || e.seq != p->seq + 1) {
			scs_err_set(err, rc, "keyring entry %08u: sequence numbers must rise by one", seq);
			goto fail;
		}
		if (memcmp(e.group, kr->group_id, SCS_GROUP_ID_LEN) != 0) {
			scs_err_set(err, rc, "keyring entry %08u belongs to another group", seq);
			goto fail;
		}
		if (memcmp(e.prev, kr->head, SCS_SHA256_LEN) != 0) {
			scs_err_set(err, rc, "keyring entry %08u does not follow entry %08u (broken hash "
				    "chain: an entry was replaced)", seq, seq - 1);
			goto fail;
		}
	}
	/* The signer must be an admin of the state before the entry (genesis:
	 * its own sole admin). */
	const struct scs_member *signer = p ? find_member(p->members, p->nmembers, e.author)
					    : find_member(e.members, e.nmembers, e.author);
	if (!signer || signer->role != SCS_ROLE_ADMIN) {
		scs_err_set(err, rc, "keyring entry %08u was written by someone who is not an admin "
			    "of the group; it is refused", seq);
		goto fail;
	}
	if (verify_sig(payload, plen, sig, signer->ed25519) < 0) {
		scs_err_set(err, rc, "keyring entry %08u has a bad signature (it was tampered with)", seq);
		goto fail;
	}
	rc = check_change(p, &e, err);
	if (rc < 0)
		goto fail;
	/* The retired bound is part of the state after each entry. */
	if (e.kind != SCS_KR_RETIRE)
		e.retire_below = p ? p->retire_below : 0;
	rc = -EBADMSG;
	if (count_admins(e.members, e.nmembers) == 0) {
		scs_err_set(err, rc, "keyring entry %08u leaves the group without an admin", seq);
		goto fail;
	}
	if (scs_sha256(data, len, e.hash) < 0) {
		rc = scs_err_set(err, -EIO, "hashing failed");
		goto fail;
	}
	if (!kr) {
		kr = calloc(1, sizeof *kr);
		if (!kr) {
			rc = scs_err_set(err, -ENOMEM, "out of memory");
			goto fail;
		}
		memcpy(kr->group_id, e.hash, SCS_GROUP_ID_LEN);
	}
	if (kr->nentries >= SCS_KR_ENTRIES_MAX) {
		rc = scs_err_set(err, -EBADMSG, "the keyring has too many entries");
		goto fail_kr;
	}
	struct scs_kr_entry *ne = realloc(kr->entries, (kr->nentries + 1) * sizeof *ne);
	if (!ne) {
		rc = scs_err_set(err, -ENOMEM, "out of memory");
		goto fail_kr;
	}
	kr->entries = ne;
	kr->entries[kr->nentries++] = e;
	kr->seq = e.seq;
	kr->epoch = e.epoch;
	kr->retired_below = e.retire_below;
	memcpy(kr->head, e.hash, SCS_SHA256_LEN);
	*krp = kr;
	free(payload);
	return 0;
fail_kr:
	if (!*krp)
		free(kr);
fail:
	free(payload);
	scs_kr_entry_clear(&e);
	return rc;
}

/* ---- loading from the back end ---- */

struct listing {
	uint32_t *seqs;
	size_t n, cap;
	int fork;
	int foreign;
	char bad[256];
};

/* "snap-<64 lowercase hex>" */
static int snap_name(const char *name)
{
	size_t pl = sizeof SCS_SNAP_PREFIX - 1;
	if (strncmp(name, SCS_SNAP_PREFIX, pl) != 0 || strlen(name) != pl + 2 * SCS_SHA256_LEN)
		return 0;
	for (const char *p = name + pl; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return 0;
	return 1;
}

static int list_cb(void *arg, const char *name, const struct scs_attr *a)
{
	struct listing *l = arg;
	size_t n = strlen(name);
	(void)a;
	if (name[0] == '.' || scs_is_tmp_name(name))
		return 0;
	int digits = 0;
	while (digits < 8 && name[digits] >= '0' && name[digits] <= '9')
		digits++;
	if (digits == 8 && n == 14 && strcmp(name + 8, ".entry") == 0) {
		if (l->n >= SCS_KR_ENTRIES_MAX)
			return -E2BIG;
		if (l->n == l->cap) {
			size_t nc = l->cap ? l->cap * 2 : 16;
			uint32_t *s = realloc(l->seqs, nc * sizeof *s);
			if (!s)
				return -ENOMEM;
			l->seqs = s;
			l->cap = nc;
		}
		l->seqs[l->n++] = (uint32_t)strtoul(name, NULL, 10);
		return 0;
	}
	if (snap_name(name))
		return 0;        /* fetched through the remove entry that names it */
	if (!l->fork && !l->foreign)
		snprintf(l->bad, sizeof l->bad, "%s", name);
	if (digits == 8 || (n >= 6 && strcmp(name + n - 6, ".entry") == 0))
		l->fork = 1;    /* "00000003 (1).entry", "00000003.entry (conflict)"... */
	else
		l->foreign = 1;
	return 0;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

/* Fetch and check the snapshot of every remove entry that names one. */
static int load_snapshots(scs_backend *be, scs_keyring *kr, scs_err *err)
{
	for (size_t i = 0; i < kr->nentries; i++) {
		const struct scs_kr_entry *e = &kr->entries[i];
		if (!e->has_snapshot)
			continue;
		char path[128];
		uint8_t *data;
		size_t len;
		scs_kr_snapshot_path(e->snapshot, path);
		int rc = scs_be_read_file(be, path, SCS_SNAP_MAX, &data, &len);
		if (rc == -ENOENT)
			return scs_err_set(err, -EBADMSG, "keyring entry %08u: its removal snapshot %s is "
					   "missing (deleted or not synced yet); the keyring is refused "
					   "until it is back", e->seq, path);
		if (rc == -EFBIG)
			return scs_err_set(err, -EBADMSG, "keyring entry %08u: its removal snapshot %s is "
					   "too large (tampered with); the keyring is refused", e->seq, path);
		if (rc < 0)
			return scs_err_set(err, rc, "cannot read %s: %s", path, strerror(-rc));
		rc = scs_keyring_snapshot_attach(kr, e->seq, data, len, err);
		free(data);
		if (rc < 0)
			return rc;
	}
	return 0;
}

int scs_keyring_load(scs_backend *be, scs_keyring **out, scs_err *err)
{
	struct listing l = { 0 };
	scs_keyring *kr = NULL;
	*out = NULL;
	int rc = scs_be_list(be, SCS_KEYRING_DIR, list_cb, &l);
	if (rc == -ENOENT) {
		rc = scs_err_set(err, -ENOENT, "%s has no keyring (" SCS_KEYRING_DIR " is missing); "
				 "it is damaged or not an scsfs group", be->remote);
		goto out;
	}
	if (rc < 0) {
		scs_err_set(err, rc, "cannot list %s/" SCS_KEYRING_DIR ": %s", be->remote, strerror(-rc));
		goto out;
	}
	if (l.fork) {
		rc = scs_err_set(err, -EBADMSG, "the keyring is forked: \"%s\" is a second version of an "
				 "entry (two admins changed the group at once, or a sync client made a "
				 "copy); ask an admin to resolve it", l.bad);
		goto out;
	}
	if (l.foreign) {
		rc = scs_err_set(err, -EBADMSG, "unexpected object \"%s\" in " SCS_KEYRING_DIR
				 "; remove it if you know where it came from", l.bad);
		goto out;
	}
	if (l.n == 0) {
		rc = scs_err_set(err, -ENOENT, "the keyring of %s is empty; it is damaged or not an "
				 "scsfs group", be->remote);
		goto out;
	}
	qsort(l.seqs, l.n, sizeof *l.seqs, cmp_u32);
	for (size_t i = 0; i < l.n; i++) {
		if (l.seqs[i] != i) {
			rc = scs_err_set(err, -EBADMSG, "keyring entry %08zu is missing (the entries jump "
					 "to %08u); the keyring was damaged or tampered with", i, l.seqs[i]);
			goto out;
		}
		char path[64];
		uint8_t *data;
		size_t len;
		scs_keyring_entry_path(l.seqs[i], path);
		rc = scs_be_read_file(be, path, SCS_KR_ENTRY_MAX, &data, &len);
		if (rc == -EFBIG) {
			rc = scs_err_set(err, -EBADMSG, "keyring entry %08zu is too large", i);
			goto out;
		}
		if (rc < 0) {
			scs_err_set(err, rc, "cannot read %s: %s", path, strerror(-rc));
			goto out;
		}
		rc = scs_keyring_apply(&kr, l.seqs[i], data, len, err);
		free(data);
		if (rc < 0)
			goto out;
	}
	rc = load_snapshots(be, kr, err);
	if (rc < 0)
		goto out;
	*out = kr;
	kr = NULL;
	rc = 0;
out:
	scs_keyring_free(kr);
	free(l.seqs);
	return rc;
}

void scs_group_fpr(const scs_keyring *kr, char out[SCS_FPR_TEXT_LEN])
{
	scs_fpr_format(kr->group_id, out);
}

/* ---- pin / high-water mark ---- */

static int pin_path(const uint8_t gid[SCS_GROUP_ID_LEN], char *out, char *dir)
{
	char hex[2 * SCS_GROUP_ID_LEN + 1], sub[2 * SCS_GROUP_ID_LEN + 16];
	scs_hex_encode(gid, SCS_GROUP_ID_LEN, hex);
	snprintf(sub, sizeof sub, "groups/%s.json", hex);
	int rc = scs_xdg_path(SCS_XDG_DATA, sub, out, SCS_PATH_MAX);
	if (rc == 0 && dir)
		rc = scs_xdg_path(SCS_XDG_DATA, "groups", dir, SCS_PATH_MAX);
	return rc;
}

static int pin_store(const uint8_t gid[SCS_GROUP_ID_LEN], uint32_t seq,
		     const uint8_t head[SCS_SHA256_LEN], scs_err *err)
{
	char path[SCS_PATH_MAX], dir[SCS_PATH_MAX];
	char g[2 * SCS_SHA256_LEN + 1], h[2 * SCS_SHA256_LEN + 1], text[512];
	if (pin_path(gid, path, dir) < 0)
		return scs_err_set(err, -ENOENT, "cannot find the data directory: set HOME or XDG_DATA_HOME");
	scs_hex_encode(gid, SCS_GROUP_ID_LEN, g);
	scs_hex_encode(head, SCS_SHA256_LEN, h);
	int n = snprintf(text, sizeof text, "{\"genesis\":\"%s\",\"head\":\"%s\",\"scsfs_pin\":1,"
			 "\"seq\":%u}\n", g, h, seq);
	int rc = scs_mkdir_p(dir, 0700);
	if (rc == 0)
		rc = scs_local_write_atomic(path, text, (size_t)n, 0600);
	if (rc < 0)
		return scs_err_set(err, rc, "cannot write %s: %s", path, strerror(-rc));
	return 0;
}

int scs_keyring_pin_write(const scs_keyring *kr, scs_err *err)
{
	return pin_store(kr->group_id, kr->seq, kr->head, err);
}

/* behind (may be NULL): set when the keyring ends before the pin. */
static int pin_check(const scs_keyring *kr, int update, int *behind, scs_err *err)
{
	char path[SCS_PATH_MAX], fpr[SCS_FPR_TEXT_LEN];
	if (pin_path(kr->group_id, path, NULL) < 0)
		return scs_err_set(err, -ENOENT, "cannot find the data directory: set HOME or XDG_DATA_HOME");
	scs_group_fpr(kr, fpr);
	uint8_t *data;
	size_t len;
	int rc = scs_local_read(path, SCS_PIN_MAX, &data, &len);
	if (rc == -ENOENT)
		return scs_err_set(err, -ENOENT, "this machine has not pinned the group %s; compare its "
				   "fingerprint with an admin, then run `scsctl join REMOTE --fingerprint "
				   "FPR`", fpr);
	if (rc < 0)
		return scs_err_set(err, rc, "cannot read %s: %s", path, strerror(-rc));
	json_error_t je;
	json_t *o = json_loadb((const char *)data, len, JSON_REJECT_DUPLICATES, &je);
	free(data);
	uint8_t gid[SCS_GROUP_ID_LEN], head[SCS_SHA256_LEN];
	uint32_t seq, ver;
	if (!o || !json_is_object(o) || json_object_size(o) != 4 ||
	    get_u32(json_object_get(o, "scsfs_pin"), &ver) < 0 || ver != 1 ||
	    get_hex(json_object_get(o, "genesis"), gid, sizeof gid) < 0 ||
	    get_hex(json_object_get(o, "head"), head, sizeof head) < 0 ||
	    get_u32(json_object_get(o, "seq"), &seq) < 0) {
		json_decref(o);
		return scs_err_set(err, -EBADMSG, "%s is damaged; remove it and pin the group again "
				   "with `scsctl join`", path);
	}
	json_decref(o);
	if (memcmp(gid, kr->group_id, sizeof gid) != 0)
		return scs_err_set(err, -EBADMSG, "the keyring's genesis does not match the pinned "
				   "group %s; the folder may have been replaced", fpr);
	if (kr->seq < seq) {
		if (behind)
			*behind = 1;
		return scs_err_set(err, -EBADMSG, "the keyring was rolled back: it ends at entry %u but "
				   "this machine has already seen entry %u; newer entries were removed "
				   "from .scsfs/keyring (restore them, or ask an admin)", kr->seq, seq);
	}
	if (memcmp(kr->entries[seq].hash, head, sizeof head) != 0)
		return scs_err_set(err, -EBADMSG, "the keyring was rewritten: entry %u differs from the "
				   "one this machine saw before (a fork); ask an admin which is right", seq);
	if (update && kr->seq > seq)
		return pin_store(kr->group_id, kr->seq, kr->head, err);
	return 0;
}

int scs_keyring_pin_check(const scs_keyring *kr, int update, scs_err *err)
{
	return pin_check(kr, update, NULL, err);
}

#define PIN_RELISTS 3

int scs_keyring_load_pinned(scs_backend *be, const uint8_t *head, uint32_t head_seq,
			    scs_keyring **out, scs_err *err)
{
	*out = NULL;
	for (int i = 0;; i++) {
		scs_keyring *kr;
		int behind = 0, rc = scs_keyring_load(be, &kr, err);
		if (rc < 0)
			return rc;
		if (head && (kr->seq < head_seq ||
			     memcmp(kr->entries[head_seq].hash, head, SCS_SHA256_LEN) != 0))
			rc = scs_err_set(err, -EBADMSG, "the keyring changed under this mount in a "
					 "way that rewrites history (entry %u differs); refused",
					 head_seq);
		if (rc == 0)
			rc = pin_check(kr, 1, &behind, err);
		if (rc == 0) {
			*out = kr;
			return 0;
		}
		scs_keyring_free(kr);
		/* Not a rollback yet: another process of this machine may have
		 * added an entry and pinned it after our listing began.  The
		 * pin is written once the entry is stored, so a listing begun
		 * after the pin was read holds it. */
		if (!behind || i + 1 == PIN_RELISTS)
			return rc;
		scs_err_clear(err);
	}
}

/* ---- epoch keys ---- */

static const uint8_t *binding_of(const struct scs_kr_entry *e)
{
	return e->kind == SCS_KR_GENESIS ? e->nonce : e->group;
}

static size_t wrap_label(uint8_t *out, const uint8_t binding[32], uint32_t epoch,
			 const uint8_t fpr[SCS_FPR_LEN])
{
	size_t n = sizeof WRAP_LABEL - 1;
	memcpy(out, WRAP_LABEL, n);
	memcpy(out + n, binding, 32);
	n += 32;
	put_u32be(out + n, epoch);
	n += 4;
	memcpy(out + n, fpr, SCS_FPR_LEN);
	return n + SCS_FPR_LEN;
}
#define WRAP_LABEL_MAX (sizeof WRAP_LABEL - 1 + 32 + 4 + SCS_FPR_LEN)

static int canary_op(int seal, const uint8_t key[SCS_KEY_LEN], const uint8_t binding[32],
		     uint32_t epoch, uint8_t canary[SCS_KR_CANARY_LEN])
{
	uint8_t ck[SCS_KEY_LEN], aad[36], dummy[1];
	int rc = scs_hkdf(key, SCS_KEY_LEN, NULL, 0, CANARY_INFO, sizeof CANARY_INFO - 1, ck, sizeof ck);
	memcpy(aad, binding, 32);
	put_u32be(aad + 32, epoch);
	if (rc == 0 && seal)
		rc = scs_random(canary, SCS_GCM_NONCE_LEN);
	if (rc == 0)
		rc = seal ? scs_gcm_seal1(ck, canary, aad, sizeof aad, dummy, 0, dummy,
					  canary + SCS_GCM_NONCE_LEN)
			  : scs_gcm_open1(ck, canary, aad, sizeof aad, dummy, 0,
					  canary + SCS_GCM_NONCE_LEN, dummy);
	scs_cleanse(ck, sizeof ck);
	return rc;
}

static int box_op(int seal, const uint8_t key[SCS_KEY_LEN], const uint8_t gid[SCS_GROUP_ID_LEN],
		  uint32_t epoch, uint8_t (*old)[SCS_KEY_LEN], uint8_t *box)
{
	uint8_t bk[SCS_KEY_LEN], aad[sizeof BOX_INFO - 1 + SCS_GROUP_ID_LEN + 4];
	size_t n = (size_t)(epoch - 1) * SCS_KEY_LEN;
	int rc = scs_hkdf(key, SCS_KEY_LEN, NULL, 0, BOX_INFO, sizeof BOX_INFO - 1, bk, sizeof bk);
	memcpy(aad, BOX_INFO, sizeof BOX_INFO - 1);
	memcpy(aad + sizeof BOX_INFO - 1, gid, SCS_GROUP_ID_LEN);
	put_u32be(aad + sizeof BOX_INFO - 1 + SCS_GROUP_ID_LEN, epoch);
	if (rc == 0 && seal)
		rc = scs_random(box, SCS_GCM_NONCE_LEN);
	if (rc == 0)
		rc = seal ? scs_gcm_seal1(bk, box, aad, sizeof aad, (uint8_t *)old, n,
					  box + SCS_GCM_NONCE_LEN, box + SCS_GCM_NONCE_LEN + n)
			  : scs_gcm_open1(bk, box, aad, sizeof aad, box + SCS_GCM_NONCE_LEN, n,
					  box + SCS_GCM_NONCE_LEN + n, (uint8_t *)old);
	scs_cleanse(bk, sizeof bk);
	return rc;
}

void scs_keyring_keys_free(uint8_t (*keys)[SCS_KEY_LEN], uint32_t nkeys)
{
	if (!keys)
		return;
	scs_cleanse(keys, (size_t)nkeys * SCS_KEY_LEN);
	free(keys);
}

/* Index of the entry that introduced epoch ep (genesis, remove or rotate). */
static const struct scs_kr_entry *epoch_intro(const scs_keyring *kr, uint32_t ep)
{
	for (size_t i = 0; i < kr->nentries; i++)
		if (kr->entries[i].epoch == ep)
			return &kr->entries[i];
	return NULL;
}

int scs_keyring_unlock(const scs_keyring *kr, const scs_identity *self,
		       uint8_t (**keys)[SCS_KEY_LEN], uint32_t *nkeys, scs_err *err)
{
	uint32_t E = kr->epoch;
	*keys = NULL;
	*nkeys = 0;
	if (!self->unlocked)
		return scs_err_set(err, -EINVAL, "identity is locked");
	/* Our newest wrap of the current epoch key (the entry that made the
	 * epoch, or the add entry that let us in). */
	const struct scs_kr_entry *we = NULL;
	const struct scs_kr_wrap *w = NULL;
	for (size_t i = kr->nentries; i-- > 0 && !w; ) {
		const struct scs_kr_entry *e = &kr->entries[i];
		if (e->epoch != E)
			break;
		for (size_t j = 0; j < e->nwraps; j++)
			if (memcmp(e->wraps[j].fpr, self->fpr, SCS_FPR_LEN) == 0) {
				we = e;
				w = &e->wraps[j];
				break;
			}
	}
	if (!w)
		return scs_err_set(err, -EACCES, NOT_MEMBER_MSG);
	uint8_t (*k)[SCS_KEY_LEN] = calloc(E, SCS_KEY_LEN);
	if (!k)
		return scs_err_set(err, -ENOMEM, "out of memory");
	uint8_t label[WRAP_LABEL_MAX];
	size_t ll = wrap_label(label, binding_of(we), E, self->fpr);
	size_t klen = SCS_KEY_LEN;
	int rc = scs_rsa_oaep_decrypt(self->rsa, label, ll, w->ct, w->ct_len, k[E - 1], &klen);
	if (rc < 0 || klen != SCS_KEY_LEN) {
		rc = scs_err_set(err, -EBADMSG, "the epoch %u key wrapped to you in keyring entry %u "
				 "does not open; ask an admin to run `scsctl rekey run`", E, we->seq);
		goto fail;
	}
	const struct scs_kr_entry *in = epoch_intro(kr, E);
	if (canary_op(0, k[E - 1], binding_of(in), E, (uint8_t *)in->canary) < 0) {
		rc = scs_err_set(err, -EBADMSG, "the epoch %u key fails its canary (keyring entry %u "
				 "wraps a wrong key); ask an admin", E, we->seq);
		goto fail;
	}
	/* Older keys: each epoch's intro entry boxes all keys before it. */
	if (E > 1) {
		if (box_op(0, k[E - 1], kr->group_id, E, k, in->box) < 0) {
			rc = scs_err_set(err, -EBADMSG, "the older epoch keys in keyring entry %u do not "
					 "open; ask an admin", in->seq);
			goto fail;
		}
		for (uint32_t ep = 1; ep < E; ep++) {
			const struct scs_kr_entry *ie = epoch_intro(kr, ep);
			if (!ie || canary_op(0, k[ep - 1], binding_of(ie), ep, (uint8_t *)ie->canary) < 0) {
				rc = scs_err_set(err, -EBADMSG, "the key of epoch %u fails its canary; "
						 "ask an admin", ep);
				goto fail;
			}
		}
	}
	*keys = k;
	*nkeys = E;
	return 0;
fail:
	scs_keyring_keys_free(k, E);
	return rc;
}

/* ---- building entries ---- */

static json_t *hex_json(const uint8_t *p, size_t n)
{
	char s[2 * 64 + 1];
	scs_hex_encode(p, n, s);
	return json_string(s);
}

static json_t *b64_json(const uint8_t *p, size_t n)
{
	char *s = malloc(scs_b64_len(n) + 1);
	if (!s)
		return NULL;
	scs_b64_encode(p, n, s);
	json_t *j = json_string(s);
	free(s);
	return j;
}

static json_t *payload_json(const struct scs_kr_entry *e)
{
	json_t *o = json_object(), *ms = json_array();
	unsigned f = kind_fields[e->kind];
	json_object_set_new(o, "version", json_integer(SCS_KEYRING_VERSION));
	json_object_set_new(o, "kind", json_string(kind_names[e->kind]));
	json_object_set_new(o, "seq", json_integer(e->seq));
	json_object_set_new(o, "epoch", json_integer(e->epoch));
	json_object_set_new(o, "author", hex_json(e->author, SCS_FPR_LEN));
	json_object_set_new(o, "created_at", json_integer(e->created_at));
	if (f & F_GROUP)
		json_object_set_new(o, "group", hex_json(e->group, SCS_GROUP_ID_LEN));
	if (f & F_PREV)
		json_object_set_new(o, "prev", hex_json(e->prev, SCS_SHA256_LEN));
	if (f & F_NONCE)
		json_object_set_new(o, "nonce", b64_json(e->nonce, SCS_KR_NONCE_LEN));
	if (f & F_RETIRE)
		json_object_set_new(o, "retire_below", json_integer(e->retire_below));
	if (f & F_SUBJECT)
		json_object_set_new(o, "subject", hex_json(e->subject, SCS_FPR_LEN));
	if (e->has_snapshot) {
		json_object_set_new(o, "snapshot", b64_json(e->snapshot, SCS_SHA256_LEN));
		json_object_set_new(o, "snapshot_files", json_integer(e->snapshot_files));
	}
	if (e->lazy)
		json_object_set_new(o, "lazy", json_true());
	if (f & F_CANARY)
		json_object_set_new(o, "canary", b64_json(e->canary, SCS_KR_CANARY_LEN));
	if (f & F_BOX)
		json_object_set_new(o, "prev_epochs_box", b64_json(e->box, e->box_len));
	for (size_t i = 0; i < e->nmembers; i++) {
		const struct scs_member *m = &e->members[i];
		json_array_append_new(ms, json_pack("{s:o, s:o, s:s, s:s, s:o}",
			"ed25519", b64_json(m->ed25519, SCS_ED25519_PUB_LEN),
			"fpr", hex_json(m->fpr, SCS_FPR_LEN), "name", m->name,
			"role", scs_role_name(m->role), "rsa_spki", b64_json(m->spki, m->spki_len)));
	}
	json_object_set_new(o, "members", ms);
	if (f & F_WRAPS) {
		json_t *ws = json_array();
		for (size_t i = 0; i < e->nwraps; i++)
			json_array_append_new(ws, json_pack("{s:o, s:o}",
				"fpr", hex_json(e->wraps[i].fpr, SCS_FPR_LEN),
				"key", b64_json(e->wraps[i].ct, e->wraps[i].ct_len)));
		json_object_set_new(o, "wraps", ws);
	}
	return o;
}

int scs_kr_entry_seal(const uint8_t *payload, size_t plen, EVP_PKEY *sign_key,
		      uint8_t **entry, size_t *len)
{
	uint8_t sig[SCS_ED25519_SIG_LEN];
	uint8_t *msg = malloc(sizeof SIG_LABEL - 1 + plen);
	if (!msg)
		return -ENOMEM;
	memcpy(msg, SIG_LABEL, sizeof SIG_LABEL - 1);
	memcpy(msg + sizeof SIG_LABEL - 1, payload, plen);
	int rc = scs_ed25519_sign(sign_key, msg, sizeof SIG_LABEL - 1 + plen, sig);
	free(msg);
	if (rc < 0)
		return rc;
	size_t cap = scs_b64_len(plen) + scs_b64_len(sizeof sig) + 32;
	char *out = malloc(cap);
	if (!out)
		return -ENOMEM;
	size_t n = (size_t)sprintf(out, "{\"payload\":\"");
	scs_b64_encode(payload, plen, out + n);
	n += strlen(out + n);
	n += (size_t)sprintf(out + n, "\",\"sig\":\"");
	scs_b64_encode(sig, sizeof sig, out + n);
	n += strlen(out + n);
	n += (size_t)sprintf(out + n, "\"}");
	*entry = (uint8_t *)out;
	*len = n;
	return 0;
}

static int wrap_to(struct scs_kr_wrap *w, const struct scs_member *m, const uint8_t binding[32],
		   uint32_t epoch, const uint8_t key[SCS_KEY_LEN])
{
	const unsigned char *p = m->spki;
	EVP_PKEY *pub = d2i_PUBKEY(NULL, &p, (long)m->spki_len);
	if (!pub)
		return -EINVAL;
	uint8_t label[WRAP_LABEL_MAX];
	size_t ll = wrap_label(label, binding, epoch, m->fpr);
	memcpy(w->fpr, m->fpr, SCS_FPR_LEN);
	w->ct_len = (size_t)EVP_PKEY_get_size(pub);
	w->ct = malloc(w->ct_len);
	int rc = w->ct ? scs_rsa_oaep_encrypt(pub, label, ll, key, SCS_KEY_LEN, w->ct, &w->ct_len)
		       : -ENOMEM;
	EVP_PKEY_free(pub);
	return rc;
}

/* Sign e (made by signer) into entry bytes. */
static int finish_entry(struct scs_kr_entry *e, const scs_identity *signer,
			uint8_t **entry, size_t *len, scs_err *err)
{
	json_t *o = payload_json(e);
	char *p = o ? json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(o);
	if (!p)
		return scs_err_set(err, -ENOMEM, "cannot encode the keyring entry");
	int rc = scs_kr_entry_seal((const uint8_t *)p, strlen(p), signer->ed25519, entry, len);
	free(p);
	if (rc < 0)
		return scs_err_set(err, rc, "cannot sign the keyring entry");
	return 0;
}

int scs_keyring_make_genesis(const scs_identity *admin, uint8_t epoch_key[SCS_KEY_LEN],
			     uint8_t **entry, size_t *len, scs_err *err)
{
	struct scs_kr_entry e;
	memset(&e, 0, sizeof e);
	scs_err_clear(err);
	if (!admin->unlocked)
		return scs_err_set(err, -EINVAL, "identity is locked");
	e.kind = SCS_KR_GENESIS;
	e.epoch = 1;
	e.created_at = (int64_t)time(NULL);
	memcpy(e.author, admin->fpr, SCS_FPR_LEN);
	int rc = -ENOMEM;
	e.members = calloc(1, sizeof *e.members);
	e.wraps = calloc(1, sizeof *e.wraps);
	e.box = malloc(1);
	if (!e.members || !e.wraps || !e.box)
		goto out;
	e.nmembers = 1;
	rc = member_from_identity(&e.members[0], admin, SCS_ROLE_ADMIN);
	if (rc == 0)
		rc = scs_random(e.nonce, sizeof e.nonce);
	if (rc == 0)
		rc = scs_random(epoch_key, SCS_KEY_LEN);
	e.nwraps = 1;
	if (rc == 0)
		rc = wrap_to(&e.wraps[0], &e.members[0], e.nonce, 1, epoch_key);
	if (rc == 0)
		rc = canary_op(1, epoch_key, e.nonce, 1, e.canary);
	if (rc == 0)
		rc = finish_entry(&e, admin, entry, len, err);
out:
	if (rc < 0) {
		scs_cleanse(epoch_key, SCS_KEY_LEN);
		if (!err || !err->code)
			scs_err_set(err, rc, "cannot create the genesis entry: %s", strerror(-rc));
	}
	scs_kr_entry_clear(&e);
	return rc;
}

int scs_keyring_make_entry(const scs_keyring *kr, const struct scs_kr_change *c,
			   const scs_identity *signer, const uint8_t (*keys)[SCS_KEY_LEN],
			   uint32_t nkeys, uint8_t new_key[SCS_KEY_LEN],
			   uint8_t **entry, size_t *len, scs_err *err)
{
	const struct scs_kr_entry *p = &kr->entries[kr->nentries - 1];
	struct scs_kr_entry e;
	uint8_t key[SCS_KEY_LEN];
	memset(&e, 0, sizeof e);
	scs_err_clear(err);
	if (!signer->unlocked)
		return scs_err_set(err, -EINVAL, "identity is locked");
	if (c->kind < SCS_KR_ADD || c->kind > SCS_KR_RETIRE)
		return scs_err_set(err, -EINVAL, "invalid keyring change");
	if (nkeys != kr->epoch)
		return scs_err_set(err, -EINVAL, "the epoch keys do not match the keyring");
	e.kind = c->kind;
	e.seq = kr->seq + 1;
	e.epoch = new_epoch_kind(c->kind) ? kr->epoch + 1 : kr->epoch;
	e.created_at = (int64_t)time(NULL);
	e.retire_below = c->kind == SCS_KR_RETIRE ? c->retire_below : 0;
	memcpy(e.author, signer->fpr, SCS_FPR_LEN);
	memcpy(e.group, kr->group_id, SCS_GROUP_ID_LEN);
	memcpy(e.prev, kr->head, SCS_SHA256_LEN);
	int rc = -ENOMEM;
	e.members = calloc(p->nmembers + 1, sizeof *e.members);
	if (!e.members)
		goto out;
	for (size_t i = 0; i < p->nmembers; i++) {
		if (c->kind == SCS_KR_REMOVE && memcmp(p->members[i].fpr, c->subject, SCS_FPR_LEN) == 0)
			continue;
		if ((rc = member_copy(&e.members[e.nmembers], &p->members[i])) < 0)
			goto out;
		if (c->kind == SCS_KR_SET_ROLE && memcmp(p->members[i].fpr, c->subject, SCS_FPR_LEN) == 0)
			e.members[e.nmembers].role = c->role;
		e.nmembers++;
	}
	if (c->kind == SCS_KR_ADD) {
		if ((rc = member_from_identity(&e.members[e.nmembers], c->member, c->role)) < 0)
			goto out;
		e.nmembers++;
		memcpy(e.subject, c->member->fpr, SCS_FPR_LEN);
	} else if (c->kind != SCS_KR_ROTATE && c->kind != SCS_KR_RETIRE) {
		memcpy(e.subject, c->subject, SCS_FPR_LEN);
	}
	if (c->kind == SCS_KR_REMOVE) {
		e.has_snapshot = c->snapshot != NULL;
		if (c->snapshot)
			memcpy(e.snapshot, c->snapshot, SCS_SHA256_LEN);
		e.snapshot_files = c->snapshot_files;
		e.lazy = !!c->lazy;
	}
	if (c->kind == SCS_KR_ADD) {
		e.wraps = calloc(1, sizeof *e.wraps);
		if (!e.wraps)
			goto out;
		e.nwraps = 1;
		rc = wrap_to(&e.wraps[0], &e.members[e.nmembers - 1], e.group, e.epoch, keys[e.epoch - 1]);
	} else if (new_epoch_kind(c->kind)) {
		e.wraps = calloc(e.nmembers, sizeof *e.wraps);
		e.box_len = box_size(e.epoch);
		e.box = malloc(e.box_len);
		if (!e.wraps || !e.box)
			goto out;
		rc = scs_random(key, sizeof key);
		for (size_t i = 0; rc == 0 && i < e.nmembers; i++) {
			rc = wrap_to(&e.wraps[i], &e.members[i], e.group, e.epoch, key);
			e.nwraps = i + 1;
		}
		if (rc == 0)
			rc = canary_op(1, key, e.group, e.epoch, e.canary);
		if (rc == 0)
			rc = box_op(1, key, e.group, e.epoch, (uint8_t (*)[SCS_KEY_LEN])keys, e.box);
		if (rc == 0 && new_key)
			memcpy(new_key, key, SCS_KEY_LEN);
	} else {
		rc = 0;
	}
	if (rc == 0)
		rc = finish_entry(&e, signer, entry, len, err);
out:
	scs_cleanse(key, sizeof key);
	if (rc < 0 && (!err || !err->code))
		scs_err_set(err, rc, "cannot build the keyring entry: %s", strerror(-rc));
	scs_kr_entry_clear(&e);
	return rc;
}

int scs_keyring_publish(scs_backend *be, uint32_t seq, const uint8_t *entry, size_t len,
			scs_err *err)
{
	char path[64];
	scs_keyring_entry_path(seq, path);
	int rc = scs_be_create_file(be, path, entry, len);
	if (rc == -EEXIST)
		return scs_err_set(err, -EEXIST, "keyring entry %08u was written by someone else at the "
				   "same time; run the command again", seq);
	if (rc < 0)
		return scs_err_set(err, rc, "cannot write %s: %s", path, strerror(-rc));
	return 0;
}

/* ---- removal snapshots ---- */

void scs_kr_snapshot_path(const uint8_t hash[SCS_SHA256_LEN], char out[128])
{
	char hex[2 * SCS_SHA256_LEN + 1];
	scs_hex_encode(hash, SCS_SHA256_LEN, hex);
	snprintf(out, 128, SCS_KEYRING_DIR "/" SCS_SNAP_PREFIX "%s", hex);
}

int scs_kr_snapshot_encode(const uint8_t group[SCS_GROUP_ID_LEN], const uint8_t subject[SCS_FPR_LEN],
			   uint8_t *recs, size_t n, uint8_t **out, size_t *len, uint32_t *count)
{
	size_t k = 0;
	*out = NULL;
	if (n)
		qsort(recs, n, SCS_SNAP_REC_LEN, snap_cmp);
	for (size_t i = 0; i < n; i++)
		if (k == 0 || memcmp(recs + (k - 1) * SCS_SNAP_REC_LEN, recs + i * SCS_SNAP_REC_LEN,
				     SCS_SNAP_REC_LEN) != 0)
			memmove(recs + k++ * SCS_SNAP_REC_LEN, recs + i * SCS_SNAP_REC_LEN, SCS_SNAP_REC_LEN);
	if (k > SCS_SNAP_FILES_MAX)
		return -E2BIG;
	uint8_t *b = malloc(SCS_SNAP_HEAD_LEN + k * SCS_SNAP_REC_LEN);
	if (!b)
		return -ENOMEM;
	memcpy(b, SCS_SNAP_MAGIC, SCS_SNAP_MAGIC_LEN);
	memcpy(b + SCS_SNAP_MAGIC_LEN, group, SCS_GROUP_ID_LEN);
	memcpy(b + SCS_SNAP_MAGIC_LEN + SCS_GROUP_ID_LEN, subject, SCS_FPR_LEN);
	put_u32be(b + SCS_SNAP_HEAD_LEN - 4, (uint32_t)k);
	if (k)
		memcpy(b + SCS_SNAP_HEAD_LEN, recs, k * SCS_SNAP_REC_LEN);
	*out = b;
	*len = SCS_SNAP_HEAD_LEN + k * SCS_SNAP_REC_LEN;
	*count = (uint32_t)k;
	return 0;
}

int scs_kr_snapshot_parse(const uint8_t *data, size_t len, uint8_t group[SCS_GROUP_ID_LEN],
			  uint8_t subject[SCS_FPR_LEN], const uint8_t **recs, uint32_t *count,
			  scs_err *err)
{
	*recs = NULL;
	*count = 0;
	if (len < SCS_SNAP_HEAD_LEN || memcmp(data, SCS_SNAP_MAGIC, SCS_SNAP_MAGIC_LEN) != 0)
		return scs_err_set(err, -EBADMSG, "not a removal snapshot (bad magic or too short)");
	const uint8_t *c = data + SCS_SNAP_HEAD_LEN - 4;
	uint32_t n = (uint32_t)c[0] << 24 | (uint32_t)c[1] << 16 | (uint32_t)c[2] << 8 | c[3];
	if (n > SCS_SNAP_FILES_MAX || len != SCS_SNAP_HEAD_LEN + (size_t)n * SCS_SNAP_REC_LEN)
		return scs_err_set(err, -EBADMSG, "the removal snapshot's size does not match its count");
	const uint8_t *r = data + SCS_SNAP_HEAD_LEN;
	for (uint32_t i = 1; i < n; i++)
		if (memcmp(r + (size_t)(i - 1) * SCS_SNAP_REC_LEN, r + (size_t)i * SCS_SNAP_REC_LEN,
			   SCS_SNAP_REC_LEN) >= 0)
			return scs_err_set(err, -EBADMSG, "the removal snapshot's records are not in "
					   "strictly ascending order");
	memcpy(group, data + SCS_SNAP_MAGIC_LEN, SCS_GROUP_ID_LEN);
	memcpy(subject, data + SCS_SNAP_MAGIC_LEN + SCS_GROUP_ID_LEN, SCS_FPR_LEN);
	*recs = r;
	*count = n;
	return 0;
}

int scs_kr_snapshot_store(scs_backend *be, const uint8_t *data, size_t len,
			  uint8_t hash[SCS_SHA256_LEN], scs_err *err)
{
	char path[128];
	if (scs_sha256(data, len, hash) < 0)
		return scs_err_set(err, -EIO, "hashing failed");
	scs_kr_snapshot_path(hash, path);
	int rc = scs_be_create_file(be, path, data, len);
	if (rc == -EEXIST) {
		/* A retried removal: the same files make the same object. */
		uint8_t *old = NULL, h2[SCS_SHA256_LEN];
		size_t ol = 0;
		rc = scs_be_read_file(be, path, SCS_SNAP_MAX, &old, &ol);
		if (rc == 0 && (scs_sha256(old, ol, h2) < 0 || memcmp(h2, hash, sizeof h2) != 0))
			rc = scs_err_set(err, -EBADMSG, "%s exists with other contents (tampered "
					 "with); remove it and run the command again", path);
		free(old);
		if (rc == -EBADMSG)
			return rc;
	}
	if (rc < 0)
		return scs_err_set(err, rc, "cannot write %s: %s", path, strerror(-rc));
	return 0;
}

int scs_keyring_snapshot_attach(scs_keyring *kr, uint32_t seq, const uint8_t *data, size_t len,
				scs_err *err)
{
	if (seq >= kr->nentries || kr->entries[seq].kind != SCS_KR_REMOVE ||
	    !kr->entries[seq].has_snapshot)
		return scs_err_set(err, -EINVAL, "keyring entry %08u names no removal snapshot", seq);
	struct scs_kr_entry *e = &kr->entries[seq];
	uint8_t h[SCS_SHA256_LEN], group[SCS_GROUP_ID_LEN], subject[SCS_FPR_LEN];
	const uint8_t *recs;
	uint32_t n;
	char path[128], m[sizeof err->msg];
	scs_kr_snapshot_path(e->snapshot, path);
	if (scs_sha256(data, len, h) < 0)
		return scs_err_set(err, -EIO, "hashing failed");
	if (memcmp(h, e->snapshot, sizeof h) != 0)
		return scs_err_set(err, -EBADMSG, "keyring entry %08u: its removal snapshot %s does not "
				   "match its hash (replaced or tampered with); the keyring is refused",
				   seq, path);
	if (scs_kr_snapshot_parse(data, len, group, subject, &recs, &n, err) < 0) {
		snprintf(m, sizeof m, "%s", err ? err->msg : "malformed");
		return scs_err_set(err, -EBADMSG, "keyring entry %08u: removal snapshot %s: %s", seq,
				   path, m);
	}
	if (memcmp(group, kr->group_id, sizeof group) != 0 ||
	    memcmp(subject, e->subject, sizeof subject) != 0 || n != e->snapshot_files)
		return scs_err_set(err, -EBADMSG, "keyring entry %08u: removal snapshot %s is for "
				   "another group, member or count than the entry says", seq, path);
	uint8_t *copy = malloc(n ? (size_t)n * SCS_SNAP_REC_LEN : 1);
	if (!copy)
		return scs_err_set(err, -ENOMEM, "out of memory");
	if (n)
		memcpy(copy, recs, (size_t)n * SCS_SNAP_REC_LEN);
	free(e->snap);
	e->snap = copy;
	e->nsnap = n;
	e->snap_loaded = 1;
	return 0;
}
