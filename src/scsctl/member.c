/* member.c - scsctl member add IDFILE [--admin] | member remove NAME|FPR |
 * member role NAME|FPR admin|member | member list, and rekey rotate: change
 * and show who belongs to the group.
 *
 * A change is one new keyring entry, signed by an admin and stored with
 * create_file under the next sequence number (scsfs-format(5), KEYRING).
 * Every check that needs no secret (we are an admin, the newcomer is not a
 * member yet, the last admin stays) runs before the passphrase is asked.
 * The entry is verified against the keyring exactly as every member will
 * verify it before it is stored, so a bug here can never leave the group
 * with a keyring nobody accepts.  If another admin stored that sequence
 * number first (-EEXIST), the keyring is read and verified again, the
 * change checked against the new state and built once more; a second
 * collision gives up and says so.  Afterwards the keyring is read back and
 * this machine's high-water mark moves to the new entry. */
#include "scsctl.h"
#include "scs/config.h"
#include "scs/identity.h"
#include "scs/keyring.h"
#include "scs/rekey.h"
#include "scs/vault.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define ADD_USAGE    "member add IDFILE [--admin] [--remote REMOTE]"
#define REMOVE_USAGE "member remove NAME|FPR [--lazy] [--remote REMOTE]"
#define LIST_USAGE   "member list [--remote REMOTE]"
#define ROLE_USAGE   "member role NAME|FPR admin|member [--remote REMOTE]"
#define ROTATE_USAGE "rekey rotate [--remote REMOTE]"
#define USAGE        "member add IDFILE [--admin] | member remove NAME|FPR [--lazy] | " \
		     "member role NAME|FPR admin|member | member list"

struct change {
	int kind;                          /* SCS_KR_ADD, _REMOVE, _SET_ROLE or _ROTATE */
	const scs_identity *newcomer;      /* add */
	int role;                          /* add, set_role */
	uint8_t subject[SCS_FPR_LEN];      /* remove, set_role */
	char name[SCS_NAME_LEN_MAX + 1];   /* the member added, removed or changed */
	const uint8_t *snapshot;           /* remove: the snapshot's hash */
	uint32_t snapshot_files;           /* remove */
	int lazy;                          /* remove --lazy */
};

/* ---- shared by the subcommands ---- */

int scsctl_open_public(const char *remote, scs_vault **v)
{
	scs_err err = { 0 };
	struct scs_vault_opts o = { .passphrase_file = scsctl.passphrase_file, .public_only = 1 };
	return scs_vault_open(remote, &o, v, &err) < 0 ? scsctl_fail(&err) : 0;
}

void scsctl_date(int64_t t, int with_time, char *out, size_t cap)
{
	struct tm tm;
	time_t tt = (time_t)t;
	if (t < 0 || !gmtime_r(&tt, &tm) ||
	    !strftime(out, cap, with_time ? "%Y-%m-%d %H:%M UTC" : "%Y-%m-%d", &tm))
		snprintf(out, cap, "?");
}

/* Parse "[--remote REMOTE]" and the other options of a member subcommand
 * (admin: --admin of add, --lazy of remove); positional arguments are
 * collected in pos (at most npos). */
static int parse_args(int argc, char **argv, const char **remote, int *admin,
		      const char **pos, int npos, int *got)
{
	const char *flag = npos && strcmp(argv[1], "remove") == 0 ? "--lazy" : "--admin";
	*got = 0;
	for (int i = 2; i < argc; i++) {
		if (scsctl_remote_arg(argc, argv, &i, remote))
			continue;
		if (admin && strcmp(argv[i], flag) == 0)
			*admin = 1;
		else if ((argv[i][0] == '-' && argv[i][1] != '\0') || *got >= npos)
			return -1;
		else
			pos[(*got)++] = argv[i];
	}
	return 0;
}

/* ---- checks against one state of the keyring ---- */

static int count_admins(const scs_keyring *kr)
{
	size_t n;
	const struct scs_member *m = scs_keyring_members(kr, &n);
	int a = 0;
	for (size_t i = 0; i < n; i++)
		a += m[i].role == SCS_ROLE_ADMIN;
	return a;
}

/* 0 if we are an admin, else the refusal (exit status 1). */
static int require_admin(const scs_keyring *kr, const scs_identity *self, const char *what)
{
	const struct scs_member *me = scs_keyring_member(kr, self->fpr);
	if (!me)
		return scsctl_failf("you are no longer a member of this group; ask an admin");
	if (me->role == SCS_ROLE_ADMIN)
		return 0;
	size_t n, used = 0;
	const struct scs_member *m = scs_keyring_members(kr, &n);
	char names[400] = "";
	for (size_t i = 0; i < n; i++) {
		if (m[i].role != SCS_ROLE_ADMIN)
			continue;
		if (used + strlen(m[i].name) + 8 > sizeof names) {
			snprintf(names + used, sizeof names - used, ", ...");
			break;
		}
		used += (size_t)snprintf(names + used, sizeof names - used, "%s%s",
					 used ? ", " : "", m[i].name);
	}
	return scsctl_failf("only an admin can %s; ask one of: %s", what, names);
}

/* The member named text, or whose fingerprint text is, or NULL. */
static const struct scs_member *find_member(const scs_keyring *kr, const char *text)
{
	size_t n;
	const struct scs_member *m = scs_keyring_members(kr, &n);
	for (size_t i = 0; i < n; i++)
		if (strcmp(m[i].name, text) == 0)
			return &m[i];
	uint8_t fpr[SCS_FPR_LEN];
	if (scs_fpr_parse(text, fpr) == 0)
		return scs_keyring_member(kr, fpr);
	return NULL;
}

/* Everything about c that the state kr decides (run again after a reload). */
static int check_change(const scs_keyring *kr, const scs_identity *self, const struct change *c)
{
	char fpr[SCS_FPR_TEXT_LEN];
	size_t n;
	const struct scs_member *m = scs_keyring_members(kr, &n);
	static const char *what[] = { [SCS_KR_ADD] = "add members", [SCS_KR_REMOVE] = "remove members",
				      [SCS_KR_SET_ROLE] = "change a member's role",
				      [SCS_KR_ROTATE] = "rotate the group key" };
	if (require_admin(kr, self, what[c->kind]))
		return 1;
	if (c->kind == SCS_KR_ROTATE)
		return 0;
	if (c->kind == SCS_KR_ADD) {
		const struct scs_member *same = scs_keyring_member(kr, c->newcomer->fpr);
		if (same)
			return scsctl_failf("%s is already a member of this group (as %s, %s); nothing "
					    "to do", c->name, same->name, scs_role_name(same->role));
		for (size_t i = 0; i < n; i++)
			if (strcmp(m[i].name, c->name) == 0) {
				scs_fpr_format(m[i].fpr, fpr);
				return scsctl_failf("the group already has a member named %s (fingerprint "
						    "%s); ask the newcomer to create their identity under "
						    "another name", c->name, fpr);
			}
		if (n >= SCS_KR_MEMBERS_MAX)
			return scsctl_failf("the group already has %d members, the most it can have",
					    SCS_KR_MEMBERS_MAX);
		return 0;
	}
	const struct scs_member *s = scs_keyring_member(kr, c->subject);
	if (!s)
		return scsctl_failf("%s is not a member of this group (any more); see `scsctl member "
				    "list`", c->name);
	if (c->kind == SCS_KR_SET_ROLE && s->role == c->role)
		return scsctl_failf("%s is already %s; nothing to do", s->name,
				    c->role == SCS_ROLE_ADMIN ? "an admin" : "a member (not an admin)");
	if (s->role == SCS_ROLE_ADMIN && count_admins(kr) == 1)
		return scsctl_failf("%s is the group's last admin and cannot be %s; make another "
				    "member an admin first (`scsctl member role NAME admin`, or `scsctl "
				    "member add IDFILE --admin`)", s->name,
				    c->kind == SCS_KR_SET_ROLE ? "made a plain member" : "removed");
	return 0;
}

/* ---- writing ---- */

static void free_kr(scs_keyring **kr)
{
	scs_keyring_free(*kr);
	*kr = NULL;
}

/* The keyring as it is now, verified against this machine's pin (which
 * moves forward if it grew). */
static int load_verified(scs_backend *be, scs_keyring **kr)
{
	scs_err err = { 0 };
	if (scs_keyring_load_pinned(be, NULL, 0, kr, &err) < 0) {
		free_kr(kr);
		return scsctl_fail(&err);
	}
	return 0;
}

/* Test hooks for crash injection: SCSFS_REKEY_STOP=snapshot|entry
 * (scs_rekey_stop: right after the removal snapshot is stored, right after
 * the remove entry is); SCSFS_REMOVE_STOP=snapshot|entry is the older
 * spelling. */
static void remove_stop(const char *step)
{
	const char *s = getenv("SCSFS_REMOVE_STOP");
	if (s && strcmp(s, step) == 0) {
		fprintf(stderr, "member remove: SCSFS_REMOVE_STOP=%s reached, exiting abruptly\n", s);
		_exit(9);
	}
	scs_rekey_stop(step);
}

/* Build c on top of *kr, verify it as the next entry (kr grows by it), and
 * store it.  0, -EEXIST (another entry has that number now), or 1 (a
 * message was printed). */
static int build_and_store(scs_backend *be, scs_keyring **kr, scs_identity *self,
			   const struct change *c)
{
	scs_err err = { 0 };
	uint8_t (*keys)[SCS_KEY_LEN] = NULL, new_key[SCS_KEY_LEN], *entry = NULL;
	uint32_t nkeys = 0, seq = (*kr)->seq + 1;
	size_t len = 0;
	struct scs_kr_change ch = { .kind = c->kind, .member = c->newcomer,
				    .subject = c->subject, .role = c->role, .snapshot = c->snapshot,
				    .snapshot_files = c->snapshot_files, .lazy = c->lazy };
	int rc = scs_keyring_unlock(*kr, self, &keys, &nkeys, &err);
	if (rc == 0)
		rc = scs_keyring_make_entry(*kr, &ch, self, (const uint8_t (*)[SCS_KEY_LEN])keys,
					    nkeys, new_key, &entry, &len, &err);
	/* The new epoch key (a removal) is in the entry, wrapped to each member. */
	scs_cleanse(new_key, sizeof new_key);
	scs_keyring_keys_free(keys, nkeys);
	if (rc == 0) {
		rc = scs_keyring_apply(kr, seq, entry, len, &err);
		if (rc < 0) {
			char m[sizeof err.msg];
			snprintf(m, sizeof m, "%s", err.msg);
			scs_err_set(&err, rc, "the new keyring entry does not verify, nothing was written "
				    "(a bug in scsctl; please report it): %s", m);
		}
	}
	if (rc == 0)
		rc = scs_keyring_publish(be, seq, entry, len, &err);
	if (rc == 0 && c->kind == SCS_KR_REMOVE)
		remove_stop("entry");
	free(entry);
	if (rc == -EEXIST)
		return rc;
	return rc < 0 ? scsctl_fail(&err) : 0;
}

/* Check, sign and store c; on success *out is the keyring read back with
 * our entry in it (the pin has moved to it). */
static int apply_change(scs_vault *v, const struct change *c, scs_keyring **out)
{
	scs_backend *be = scs_vault_backend(v);
	scs_identity *self = scs_vault_identity(v);
	scs_keyring *kr = NULL;
	scs_err err = { 0 };
	uint8_t mine[SCS_SHA256_LEN];
	uint32_t seq = 0;
	int rc = 1;
	*out = NULL;
	for (int attempt = 0;; attempt++) {
		if (load_verified(be, &kr) || check_change(kr, self, c))
			goto out;
		if (!self->unlocked &&
		    scs_identity_unlock_prompt(self, scsctl.passphrase_file, 0, &err) < 0) {
			scsctl_fail(&err);
			goto out;
		}
		seq = kr->seq + 1;
		rc = build_and_store(be, &kr, self, c);
		if (rc != -EEXIST)
			break;
		free_kr(&kr);
		if (attempt > 0) {
			rc = scsctl_failf("another admin wrote keyring entry %u first as well; nothing "
					  "was changed: see `scsctl log` and run the command again", seq);
			goto out;
		}
		printf("another admin changed the group at the same time (keyring entry %u); "
		       "checking again on top of their change\n", seq);
		fflush(stdout);
		rc = 1;
	}
	if (rc)
		goto out;
	memcpy(mine, kr->head, sizeof mine);
	free_kr(&kr);
	/* Read back what is stored and verify it as every member will. */
	if ((rc = load_verified(be, &kr)) != 0)
		goto out;
	if (kr->seq < seq || memcmp(kr->entries[seq].hash, mine, sizeof mine) != 0) {
		rc = scsctl_failf("keyring entry %u was replaced right after it was written; see "
				  "`scsctl log`", seq);
		goto out;
	}
	*out = kr;
	kr = NULL;
out:
	scs_keyring_free(kr);
	return rc;
}

/* ---- member add ---- */

/* The public identity in path ("-": standard input), strictly parsed. */
static int read_idfile(const char *path, scs_identity **id)
{
	scs_err err = { 0 };
	uint8_t *data = NULL;
	size_t len = 0;
	int rc;
	if (strcmp(path, "-") == 0) {
		data = malloc(SCS_IDENTITY_PUB_MAX + 1);
		if (!data)
			return scsctl_failf("out of memory");
		while (len <= SCS_IDENTITY_PUB_MAX) {
			ssize_t r = read(0, data + len, SCS_IDENTITY_PUB_MAX + 1 - len);
			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0) {
				if (r < 0)
					len = SCS_IDENTITY_PUB_MAX + 2;   /* read error */
				break;
			}
			len += (size_t)r;
		}
		rc = len > SCS_IDENTITY_PUB_MAX + 1 ? -EIO : len > SCS_IDENTITY_PUB_MAX ? -EFBIG : 0;
	} else {
		rc = scs_local_read(path, SCS_IDENTITY_PUB_MAX, &data, &len);
	}
	if (rc == -EFBIG)
		rc = scsctl_failf("%s is larger than a public identity (%d bytes at most); it should "
				  "hold the output of `scsctl id export`", path, SCS_IDENTITY_PUB_MAX);
	else if (rc < 0)
		rc = scsctl_failf("cannot read %s: %s", path, strerror(-rc));
	else if (scs_identity_parse(data, len, id, &err) < 0)
		rc = scsctl_failf("%s is not a valid public identity (%s); ask the newcomer for the "
				  "output of `scsctl id export`", path, err.msg);
	free(data);
	return rc ? 1 : 0;
}

static int member_add(int argc, char **argv)
{
	const char *remote = NULL, *idfile = NULL;
	int admin = 0, got;
	if (parse_args(argc, argv, &remote, &admin, &idfile, 1, &got) < 0 || got != 1)
		return scsctl_usage(ADD_USAGE);
	scs_identity *nc = NULL;
	scs_vault *v = NULL;
	scs_keyring *kr = NULL;
	char fpr[SCS_FPR_TEXT_LEN], gfpr[SCS_FPR_TEXT_LEN];
	int ret = 1;
	if (read_idfile(idfile, &nc) || scsctl_open_public(remote, &v))
		goto out;
	struct change c = { .kind = SCS_KR_ADD, .newcomer = nc,
			    .role = admin ? SCS_ROLE_ADMIN : SCS_ROLE_MEMBER };
	snprintf(c.name, sizeof c.name, "%s", nc->name);
	/* Refusals that need no secret come first; then show who this is, so
	 * the admin can compare before typing the passphrase (or stop). */
	if (check_change(scs_vault_keyring(v), scs_vault_identity(v), &c))
		goto out;
	scs_fpr_format(nc->fpr, fpr);
	printf("adding %s as %s\nfingerprint: %s\ncompare this fingerprint with %s over a channel "
	       "you trust before they use the folder\n", nc->name,
	       admin ? "an admin" : "a member", fpr, nc->name);
	fflush(stdout);
	if (apply_change(v, &c, &kr))
		goto out;
	size_t n;
	scs_keyring_members(kr, &n);
	scs_group_fpr(kr, gfpr);
	printf("%s added (keyring entry %u, epoch %u, %zu members)\n"
	       "send %s the group fingerprint: %s\n"
	       "they run: scsctl join %s --fingerprint '%s'; then scsfs %s MOUNTPOINT\n",
	       nc->name, kr->seq, kr->epoch, n, nc->name, gfpr,
	       scs_vault_remote(v), gfpr, scs_vault_remote(v));
	ret = fflush(stdout) == 0 ? 0 : scsctl_failf("cannot write to standard output");
out:
	scs_keyring_free(kr);
	scs_vault_close(v);
	scs_identity_free(nc);
	return ret;
}

/* ---- member remove ---- */

struct snap_walk {
	const uint8_t *subject;
	const uint8_t *pub;                /* the subject's Ed25519 key */
	uint8_t *recs;
	size_t n, cap;
};

static int snap_each(void *arg, const char *rpath, const scs_header *h)
{
	struct snap_walk *w = arg;
	(void)rpath;
	/* Only headers the member really signed (a header the storage made up
	 * in their name must not become acceptable later). */
	if (memcmp(h->writer, w->subject, SCS_FPR_LEN) != 0 || scs_header_verify(h, w->pub) < 0)
		return 0;
	if (w->n == w->cap) {
		size_t cap = w->cap ? 2 * w->cap : 256;
		if (cap > SCS_SNAP_FILES_MAX)
			return -E2BIG;
		uint8_t *r = realloc(w->recs, cap * SCS_SNAP_REC_LEN);
		if (!r)
			return -ENOMEM;
		w->recs = r;
		w->cap = cap;
	}
	uint8_t *r = w->recs + w->n++ * SCS_SNAP_REC_LEN;
	memcpy(r, h->file_id, SCS_FILE_ID_LEN);
	memcpy(r + SCS_FILE_ID_LEN, h->content_hash, SCS_SHA256_LEN);
	return 0;
}

/* The removal snapshot: every file whose header the member being removed
 * signed (the signature checked with their public key; no secret needed),
 * as (file id, content hash), stored under its hash before the
 * entry that names it.  Readers accept the member's signature after the
 * removal only on these.  Test hook: remove_stop("snapshot") once it is
 * stored (the entry is not written). */
static int make_snapshot(scs_vault *v, struct change *c, uint8_t hash[SCS_SHA256_LEN])
{
	scs_err err = { 0 };
	const struct scs_member *m = scs_keyring_member(scs_vault_keyring(v), c->subject);
	if (!m)
		return scsctl_failf("%s is not a member of this group (any more)", c->name);
	struct snap_walk w = { .subject = c->subject, .pub = m->ed25519 };
	uint8_t *data = NULL;
	size_t len = 0;
	int rc = scs_rekey_headers(scs_vault_backend(v), snap_each, &w, &err);
	if (rc == -E2BIG)
		rc = scs_err_set(&err, rc, "%s wrote more than %u files; scsfs cannot record them "
				 "for the removal", c->name, SCS_SNAP_FILES_MAX);
	if (rc == 0) {
		rc = scs_kr_snapshot_encode(scs_vault_keyring(v)->group_id, c->subject, w.recs, w.n,
					    &data, &len, &c->snapshot_files);
		if (rc < 0)
			scs_err_set(&err, rc, "cannot record the files %s wrote: %s", c->name,
				    strerror(-rc));
	}
	if (rc == 0)
		rc = scs_kr_snapshot_store(scs_vault_backend(v), data, len, hash, &err);
	free(w.recs);
	free(data);
	if (rc < 0)
		return scsctl_fail(&err);
	c->snapshot = hash;
	remove_stop("snapshot");
	return 0;
}

/* Open the group (no passphrase yet), check that we are an admin and find
 * the member named (or fingerprinted) who: 0, or 1 with a message printed
 * (*v may then still need closing). */
static int open_for_subject(const char *remote, const char *who, const char *what,
			    scs_vault **v, const struct scs_member **s)
{
	if (scsctl_open_public(remote, v))
		return 1;
	const scs_keyring *cur = scs_vault_keyring(*v);
	if (require_admin(cur, scs_vault_identity(*v), what))
		return 1;
	*s = find_member(cur, who);
	if (!*s)
		return scsctl_failf("no member of this group is named %s or has that fingerprint; "
				    "see `scsctl member list`", who);
	return 0;
}

static int member_remove(int argc, char **argv)
{
	const char *remote = NULL, *who = NULL;
	int got, lazy = 0;
	uint8_t snap[SCS_SHA256_LEN];
	if (parse_args(argc, argv, &remote, &lazy, &who, 1, &got) < 0 || got != 1)
		return scsctl_usage(REMOVE_USAGE);
	scs_vault *v = NULL;
	scs_keyring *kr = NULL;
	const struct scs_member *s;
	int ret = 1;
	if (open_for_subject(remote, who, "remove members", &v, &s))
		goto out;
	const scs_keyring *cur = scs_vault_keyring(v);
	const scs_identity *self = scs_vault_identity(v);
	struct change c = { .kind = SCS_KR_REMOVE, .lazy = lazy };
	memcpy(c.subject, s->fpr, SCS_FPR_LEN);
	snprintf(c.name, sizeof c.name, "%s", s->name);
	if (check_change(cur, self, &c))
		goto out;
	scs_err err = { 0 };
	if (scs_identity_unlock_prompt(scs_vault_identity(v), scsctl.passphrase_file, 0, &err) < 0) {
		scsctl_fail(&err);
		goto out;
	}
	if (make_snapshot(v, &c, snap) || apply_change(v, &c, &kr))
		goto out;
	int was_me = memcmp(c.subject, self->fpr, SCS_FPR_LEN) == 0;
	printf("%s removed; new epoch %u: files written from now on are unreadable to them\n"
	       "the %u files %s wrote so far stay accepted; anything %s writes from now on "
	       "with an old key is refused\n", c.name, kr->epoch, c.snapshot_files, c.name, c.name);
	if (lazy)
		printf("re-key is lazy: no mount re-encrypts the existing files in the background; "
		       "until an admin runs `scsctl rekey run`, %s can still read every file that "
		       "exists now (if they reach the storage)\n", c.name);
	else
		printf("existing files are re-encrypted by an admin's mount in the background, or "
		       "now with `scsctl rekey run`; until then, files written before the removal "
		       "stay readable to them\n");
	if (was_me)
		printf("you are no longer a member of this group\n");
	ret = fflush(stdout) == 0 ? 0 : scsctl_failf("cannot write to standard output");
out:
	scs_keyring_free(kr);
	scs_vault_close(v);
	return ret;
}

/* ---- member role ---- */

/* A set_role entry: the member list stays, one role changes, no new epoch
 * (an admin holds no key a member lacks: the role only says who may sign). */
static int member_role(int argc, char **argv)
{
	const char *remote = NULL, *pos[2];
	int got;
	if (parse_args(argc, argv, &remote, NULL, pos, 2, &got) < 0 || got != 2)
		return scsctl_usage(ROLE_USAGE);
	int role;
	if (strcmp(pos[1], "admin") == 0)
		role = SCS_ROLE_ADMIN;
	else if (strcmp(pos[1], "member") == 0)
		role = SCS_ROLE_MEMBER;
	else
		return scsctl_usage(ROLE_USAGE);
	scs_vault *v = NULL;
	scs_keyring *kr = NULL;
	const struct scs_member *s;
	int ret = 1;
	if (open_for_subject(remote, pos[0], "change a member's role", &v, &s))
		goto out;
	const scs_keyring *cur = scs_vault_keyring(v);
	struct change c = { .kind = SCS_KR_SET_ROLE, .role = role };
	memcpy(c.subject, s->fpr, SCS_FPR_LEN);
	snprintf(c.name, sizeof c.name, "%s", s->name);
	if (check_change(cur, scs_vault_identity(v), &c) || apply_change(v, &c, &kr))
		goto out;
	printf("%s is now %s (keyring entry %u)\n", c.name,
	       role == SCS_ROLE_ADMIN ? "an admin: they can add and remove members" :
	       "a member: they can no longer add or remove members", kr->seq);
	ret = fflush(stdout) == 0 ? 0 : scsctl_failf("cannot write to standard output");
out:
	scs_keyring_free(kr);
	scs_vault_close(v);
	return ret;
}

/* ---- rekey rotate ---- */

/* A rotate entry: a new epoch with the same members, for when an epoch key
 * may have leaked without anyone leaving (a lost laptop whose owner made a
 * new identity, say).  New writes use the new key at once; the re-key pass
 * moves the rest, as after a removal. */
int scsctl_rotate(int argc, char **argv)
{
	const char *remote = NULL;
	int got;
	if (parse_args(argc, argv, &remote, NULL, NULL, 0, &got) < 0)
		return scsctl_usage(ROTATE_USAGE);
	scs_vault *v = NULL;
	scs_keyring *kr = NULL;
	int ret = 1;
	if (scsctl_open_public(remote, &v))
		goto out;
	struct change c = { .kind = SCS_KR_ROTATE };
	if (check_change(scs_vault_keyring(v), scs_vault_identity(v), &c) ||
	    apply_change(v, &c, &kr))
		goto out;
	printf("group key rotated: new epoch %u (keyring entry %u); files written from now on use "
	       "it\nexisting files are re-encrypted by an admin's mount in the background, or now "
	       "with `scsctl rekey run`\n", kr->epoch, kr->seq);
	ret = fflush(stdout) == 0 ? 0 : scsctl_failf("cannot write to standard output");
out:
	scs_keyring_free(kr);
	scs_vault_close(v);
	return ret;
}

/* ---- member list ---- */

/* The newest entry that let m in (its add, or the genesis for the founder). */
static const struct scs_kr_entry *joined_at(const scs_keyring *kr, const struct scs_member *m)
{
	for (size_t i = kr->nentries; i-- > 0; ) {
		const struct scs_kr_entry *e = &kr->entries[i];
		if ((e->kind == SCS_KR_ADD && memcmp(e->subject, m->fpr, SCS_FPR_LEN) == 0) ||
		    (e->kind == SCS_KR_GENESIS && memcmp(e->author, m->fpr, SCS_FPR_LEN) == 0))
			return e;
	}
	return NULL;
}

static int member_list(int argc, char **argv)
{
	const char *remote = NULL;
	int got;
	if (parse_args(argc, argv, &remote, NULL, NULL, 0, &got) < 0)
		return scsctl_usage(LIST_USAGE);
	scs_vault *v;
	if (scsctl_open_public(remote, &v))
		return 1;
	const scs_keyring *kr = scs_vault_keyring(v);
	size_t n;
	const struct scs_member *m = scs_keyring_members(kr, &n);
	int w = 4;
	for (size_t i = 0; i < n; i++)
		if ((int)strlen(m[i].name) > w)
			w = (int)strlen(m[i].name);
	printf("%-*s  %-6s  %-79s  %s\n", w, "NAME", "ROLE", "FINGERPRINT", "SINCE");
	for (size_t i = 0; i < n; i++) {
		char fpr[SCS_FPR_TEXT_LEN], date[32];
		const struct scs_kr_entry *e = joined_at(kr, &m[i]);
		scs_fpr_format(m[i].fpr, fpr);
		scsctl_date(e ? e->created_at : -1, 0, date, sizeof date);
		printf("%-*s  %-6s  %s  entry %u, %s\n", w, m[i].name, scs_role_name(m[i].role), fpr,
		       e ? e->seq : 0, date);
	}
	scs_vault_close(v);
	return fflush(stdout) == 0 ? 0 : scsctl_failf("cannot write to standard output");
}

int member_main(int argc, char **argv)
{
	if (argc < 2)
		return scsctl_usage(USAGE);
	if (strcmp(argv[1], "add") == 0)
		return member_add(argc, argv);
	if (strcmp(argv[1], "remove") == 0)
		return member_remove(argc, argv);
	if (strcmp(argv[1], "list") == 0)
		return member_list(argc, argv);
	if (strcmp(argv[1], "role") == 0)
		return member_role(argc, argv);
	return scsctl_usage(USAGE);
}
