/* vault.c - an opened group folder: back end, verified keyring, unlocked
 * identity, epoch keys, and the scs_keyctx the file engine uses.
 *
 * Thread-safety: the keyctx callbacks run on every FUSE thread while
 * scs_vault_refresh may install a new keyring; state is swapped under a
 * rwlock, and arrays handed out by scs_vault_name_keys stay valid until
 * scs_vault_close (old generations are kept, they are small).  Refreshes
 * (the mount's refresher thread, its upload hook, a re-home) take turns. */
#include "scs/vault.h"
#include "scs/config.h"
#include "scs/identity.h"
#include "scs/keyring.h"
#include "scs/seen.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define NOT_MEMBER_MSG "you are not a member of this group; ask an admin to run " \
	"`scsctl member add` with the file from `scsctl id export`"

/* One generation of keyring-derived state. */
struct vstate {
	scs_keyring *kr;
	uint8_t (*keys)[SCS_KEY_LEN];           /* epoch i+1 at [i] */
	uint32_t nkeys;
	uint8_t (*name_keys)[SCS_SIV_KEY_LEN];  /* newest first */
	uint32_t *epochs;                       /* newest first */
	/* This identity in kr: a member, or removed (a refresh of a running
	 * mount saw the removal: keys are the ones held before it).  seq and
	 * by: the entry that last added or removed it and its author's name
	 * (pointing into kr). */
	int member;
	uint32_t mseq;
	const char *mby;
	struct vstate *older;                   /* kept until close */
};

struct scs_vault {
	scs_backend *be;
	scs_identity *id;
	struct vstate *st;
	int public_only;
	uint8_t root_id[SCS_DIR_ID_LEN];
	char group_fpr[SCS_FPR_TEXT_LEN];
	scs_keyctx kc;
	scs_keyctx kc_own;                      /* scs_vault_keyctx_own */
	scs_seen *seen;                         /* NULL: no memory of versions */
	pthread_rwlock_t lock;
	/* Looks at the keyring, one at a time; the start of the last one that
	 * succeeded (scs_vault_clock). */
	pthread_mutex_t rmu;
	uint64_t looked;
};

static void vstate_free(struct vstate *s)
{
	while (s) {
		struct vstate *o = s->older;
		scs_keyring_free(s->kr);
		scs_keyring_keys_free(s->keys, s->nkeys);
		if (s->name_keys) {
			scs_cleanse(s->name_keys, (size_t)s->nkeys * SCS_SIV_KEY_LEN);
			free(s->name_keys);
		}
		free(s->epochs);
		free(s);
		s = o;
	}
}

/* ---- keyctx callbacks ---- */

static uint32_t kc_write_epoch(void *arg)
{
	scs_vault *v = arg;
	pthread_rwlock_rdlock(&v->lock);
	uint32_t e = v->st->kr->epoch;
	pthread_rwlock_unlock(&v->lock);
	return e;
}

static int kc_epoch_key(void *arg, uint32_t epoch, uint8_t key[SCS_KEY_LEN])
{
	scs_vault *v = arg;
	int rc = -ENOKEY;
	pthread_rwlock_rdlock(&v->lock);
	if (epoch < v->st->kr->retired_below) {
		rc = -EKEYREVOKED;         /* retired after a completed re-key */
	} else if (v->st->keys && epoch >= 1 && epoch <= v->st->nkeys) {
		memcpy(key, v->st->keys[epoch - 1], SCS_KEY_LEN);
		rc = 0;
	}
	pthread_rwlock_unlock(&v->lock);
	return rc;
}

/* The key of any epoch held, retired ones too (scs_vault_keyctx_own). */
static int kc_epoch_key_held(void *arg, uint32_t epoch, uint8_t key[SCS_KEY_LEN])
{
	scs_vault *v = arg;
	int rc = -ENOKEY;
	pthread_rwlock_rdlock(&v->lock);
	if (v->st->keys && epoch >= 1 && epoch <= v->st->nkeys) {
		memcpy(key, v->st->keys[epoch - 1], SCS_KEY_LEN);
		rc = 0;
	}
	pthread_rwlock_unlock(&v->lock);
	return rc;
}

/* own: a header of a retired epoch is accepted if this identity signed it. */
static int writer_pub(scs_vault *v, const uint8_t fpr[SCS_FPR_LEN], const scs_header *h,
		      uint8_t pub[SCS_ED25519_PUB_LEN], scs_err *why, int own)
{
	const struct scs_member *m;
	const struct scs_kr_entry *removal;
	int rc;
	pthread_rwlock_rdlock(&v->lock);
	if (h->epoch < v->st->kr->retired_below &&
	    !(own && scs_ct_equal(fpr, v->id->fpr, SCS_FPR_LEN))) {
		rc = -EKEYREVOKED;         /* nobody writes in a retired epoch */
	} else {
		rc = scs_keyring_header_writer(v->st->kr, fpr, h, &m, &removal);
		if (rc == 0)
			memcpy(pub, m->ed25519, SCS_ED25519_PUB_LEN);
		else if (rc == -EKEYREJECTED)
			scs_err_set(why, rc, "written by %s after %s was removed from the group "
				    "(keyring entry %u)", m->name, m->name, removal->seq);
	}
	pthread_rwlock_unlock(&v->lock);
	return rc;
}

static int kc_writer_pub(void *arg, const uint8_t fpr[SCS_FPR_LEN], const scs_header *h,
			 uint8_t pub[SCS_ED25519_PUB_LEN], scs_err *why)
{
	return writer_pub(arg, fpr, h, pub, why, 0);
}

static int kc_writer_pub_own(void *arg, const uint8_t fpr[SCS_FPR_LEN], const scs_header *h,
			     uint8_t pub[SCS_ED25519_PUB_LEN], scs_err *why)
{
	return writer_pub(arg, fpr, h, pub, why, 1);
}

static int kc_observe(void *arg, const scs_header *h, const char *where, int ours,
		      uint64_t *newer)
{
	scs_vault *v = arg;
	return scs_seen_observe(v->seen, h->file_id, h->file_version, h->content_hash, where, ours,
				newer);
}

/* ---- opening ---- */

int scs_vault_resolve_remote(const char *remote, char *out, size_t cap, scs_err *err)
{
	if (!remote || !*remote) {
		int rc = scs_config_get(SCS_CONFIG_DEFAULT_REMOTE, out, cap, err);
		if (rc == -ENOENT)
			return scs_err_set(err, -ENOENT, "no remote given and no default remote set; give "
					   "REMOTE (local:/path) or run `scsctl init REMOTE`");
		return rc;
	}
	/* A bare path means local:, made absolute so it names the same folder
	 * from anywhere (it becomes the default remote). */
	int n;
	if (remote[0] == '/' || remote[0] == '~') {
		n = snprintf(out, cap, "local:%s", remote);
	} else if (!strchr(remote, ':')) {
		char cwd[SCS_PATH_MAX];
		if (!getcwd(cwd, sizeof cwd))
			return scs_err_set(err, -errno, "cannot resolve %s: %s", remote, strerror(errno));
		n = snprintf(out, cap, "local:%s/%s", strcmp(cwd, "/") ? cwd : "", remote);
	} else {
		n = snprintf(out, cap, "%s", remote);
	}
	if (n < 0 || (size_t)n >= cap)
		return scs_err_set(err, -ENAMETOOLONG, "remote %s is too long", remote);
	/* "local:/x/" -> "local:/x" */
	while (n > 7 && out[n - 1] == '/' && strncmp(out, "local:", 6) == 0)
		out[--n] = '\0';
	return 0;
}

/* The folder path of a local remote, for messages. */
static const char *remote_path(const char *remote)
{
	return strncmp(remote, "local:", 6) == 0 ? remote + 6 : remote;
}

/* Epochs whose names can still be read: those held, down to the oldest
 * one not retired. */
static uint32_t live_epochs(const struct vstate *s)
{
	uint32_t gone = s->kr->retired_below > 1 ? s->kr->retired_below - 1 : 0;
	return s->nkeys > gone ? s->nkeys - gone : 0;
}

/* The name keys of s->keys (newest first). */
static int derive_names(struct vstate *s, scs_err *err)
{
	s->name_keys = calloc(s->nkeys ? s->nkeys : 1, SCS_SIV_KEY_LEN);
	s->epochs = calloc(s->nkeys ? s->nkeys : 1, sizeof *s->epochs);
	if (!s->name_keys || !s->epochs)
		return scs_err_set(err, -ENOMEM, "out of memory");
	/* Names of retired epochs are not readable any more. */
	uint32_t live = live_epochs(s);
	for (uint32_t i = 0; i < live; i++) {
		uint32_t ep = s->nkeys - i;
		s->epochs[i] = ep;
		int rc = scs_name_key(s->keys[ep - 1], s->name_keys[i]);
		if (rc < 0)
			return scs_err_set(err, rc, "cannot derive the name keys");
	}
	return 0;
}

static int derive_state(struct vstate *s, const scs_identity *id, scs_err *err)
{
	int rc = scs_keyring_unlock(s->kr, id, &s->keys, &s->nkeys, err);
	return rc < 0 ? rc : derive_names(s, err);
}

/* A removed member's new state: the epoch keys it held before (files of
 * those epochs stay readable until re-keyed or retired; nothing newer). */
static int keep_keys(struct vstate *s, const struct vstate *old, scs_err *err)
{
	if (old->nkeys) {
		s->keys = malloc((size_t)old->nkeys * SCS_KEY_LEN);
		if (!s->keys)
			return scs_err_set(err, -ENOMEM, "out of memory");
		memcpy(s->keys, old->keys, (size_t)old->nkeys * SCS_KEY_LEN);
		s->nkeys = old->nkeys;
	}
	return derive_names(s, err);
}

/* The newest entry that founded the group with fpr, added or removed it,
 * and the name its author had in the state before it (*by). */
static const struct scs_kr_entry *membership_entry(const scs_keyring *kr, const uint8_t *fpr,
						    const char **by)
{
	for (size_t i = kr->nentries; i-- > 0; ) {
		const struct scs_kr_entry *e = &kr->entries[i];
		int mine = e->kind == SCS_KR_GENESIS ? !memcmp(e->author, fpr, SCS_FPR_LEN) :
			(e->kind == SCS_KR_ADD || e->kind == SCS_KR_REMOVE) && e->has_subject &&
			!memcmp(e->subject, fpr, SCS_FPR_LEN);
		if (!mine)
			continue;
		const struct scs_kr_entry *p = i ? &kr->entries[i - 1] : e;
		*by = "an admin";
		for (size_t j = 0; j < p->nmembers; j++)
			if (memcmp(p->members[j].fpr, e->author, SCS_FPR_LEN) == 0)
				*by = p->members[j].name;
		return e;
	}
	return NULL;
}

static void set_membership(struct vstate *s, const uint8_t *fpr)
{
	const struct scs_kr_entry *e = membership_entry(s->kr, fpr, &s->mby);
	s->member = scs_keyring_member(s->kr, fpr) != NULL;
	s->mseq = e ? e->seq : 0;
	if (!e)
		s->mby = "an admin";
}

/* The refusal for someone who is not a member: a former member is told
 * who removed them and when (from the verified keyring). */
static int not_member(const scs_keyring *kr, const scs_identity *id, scs_err *err)
{
	const char *by;
	const struct scs_kr_entry *e = membership_entry(kr, id->fpr, &by);
	if (e && e->kind == SCS_KR_REMOVE)
		return scs_err_set(err, -EACCES, "you are not a member of this group any more (%s "
				   "removed you in keyring entry %u); ask an admin to run `scsctl member "
				   "add` with the file from `scsctl id export` if you should be", by, e->seq);
	return scs_err_set(err, -EACCES, NOT_MEMBER_MSG);
}

/* Load, verify against the pin, check membership.  removed (may be NULL):
 * a keyring that removed this identity is accepted (*removed = 1) rather
 * than refused, for a running mount to follow. */
/* Load, verify and pin the keyring.  A refresh passes the head it already
 * holds (entry `seq`): the new keyring must extend it, checked before the
 * pin moves, so a rewritten history never reaches the pin. */
static int load_keyring(scs_backend *be, const scs_identity *id, const uint8_t *head,
			uint32_t seq, scs_keyring **out, int *removed, scs_err *err)
{
	scs_keyring *kr;
	const char *by;
	int rc = scs_keyring_load_pinned(be, head, seq, &kr, err);
	if (rc < 0)
		return rc;
	if (!scs_keyring_member(kr, id->fpr)) {
		const struct scs_kr_entry *e = membership_entry(kr, id->fpr, &by);
		if (removed && e && e->kind == SCS_KR_REMOVE)
			*removed = 1;
		else
			rc = not_member(kr, id, err);
	}
	if (rc < 0) {
		scs_keyring_free(kr);
		return rc;
	}
	*out = kr;
	return 0;
}

int scs_vault_open(const char *remote, const struct scs_vault_opts *o,
		   scs_vault **out, scs_err *err)
{
	char rem[SCS_PATH_MAX];
	*out = NULL;
	scs_err_clear(err);
	int rc = scs_vault_resolve_remote(remote, rem, sizeof rem, err);
	if (rc < 0)
		return rc;
	scs_vault *v = calloc(1, sizeof *v);
	if (!v)
		return scs_err_set(err, -ENOMEM, "out of memory");
	pthread_rwlock_init(&v->lock, NULL);
	pthread_mutex_init(&v->rmu, NULL);
	v->public_only = o && o->public_only;

	/* 1. the folder exists and is readable */
	rc = scs_backend_open(rem, &v->be, err);
	if (rc == -ENOENT && strncmp(rem, "local:", 6) == 0)   /* gdrive: says its own */
		rc = scs_err_set(err, -ENOENT, "folder %s does not exist; check the path or run "
				 "`scsctl init local:%s`", remote_path(rem), remote_path(rem));
	if (rc < 0)
		goto fail;
	/* 2. it is an scsfs group */
	struct scs_attr a;
	rc = scs_be_stat(v->be, ".scsfs", &a);
	if (rc == -ENOENT || (rc == 0 && (a.mode & 0170000) != 0040000)) {
		rc = scs_err_set(err, -ENOENT, "%s is not an scsfs folder (no .scsfs/); run `scsctl "
				 "init` on an empty folder", remote_path(rem));
		goto fail;
	}
	if (rc < 0) {
		scs_err_set(err, rc, "cannot read %s/.scsfs: %s", remote_path(rem), strerror(-rc));
		goto fail;
	}
	/* 3. this user has an identity */
	rc = scs_identity_load(&v->id, err);
	if (rc < 0)
		goto fail;
	/* 4. the keyring verifies against the pin; 5. we are a member */
	v->st = calloc(1, sizeof *v->st);
	if (!v->st) {
		rc = scs_err_set(err, -ENOMEM, "out of memory");
		goto fail;
	}
	rc = load_keyring(v->be, v->id, NULL, 0, &v->st->kr, NULL, err);
	if (rc < 0)
		goto fail;
	set_membership(v->st, v->id->fpr);
	scs_group_fpr(v->st->kr, v->group_fpr);
	scs_root_dir_id(v->st->kr->group_id, v->root_id);
	/* only then the passphrase and the epoch keys */
	if (!v->public_only) {
		rc = scs_identity_unlock_prompt(v->id, o ? o->passphrase_file : NULL,
						 o && o->no_prompt, err);
		if (rc < 0)
			goto fail;
		rc = derive_state(v->st, v->id, err);
		if (rc < 0)
			goto fail;
	}
	v->kc.arg = v;
	v->kc.write_epoch = kc_write_epoch;
	v->kc.epoch_key = kc_epoch_key;
	v->kc.writer_pub = kc_writer_pub;
	/* This member's memory of file versions (replay detection); without
	 * it (no data directory) nothing is detected, nothing fails. */
	char sp[SCS_PATH_MAX];
	if (!v->public_only && scs_seen_path(v->st->kr->group_id, SCS_GROUP_ID_LEN, sp,
					     sizeof sp) == 0 && scs_seen_open(sp, &v->seen) == 0)
		v->kc.observe = kc_observe;
	v->kc.self_fpr = v->id->fpr;
	v->kc.sign_key = v->public_only ? NULL : v->id->ed25519;
	v->kc_own = v->kc;
	v->kc_own.epoch_key = kc_epoch_key_held;
	v->kc_own.writer_pub = kc_writer_pub_own;
	v->looked = scs_vault_clock();
	*out = v;
	return 0;
fail:
	scs_vault_close(v);
	return rc;
}

void scs_vault_close(scs_vault *v)
{
	if (!v)
		return;
	/* The back end first: draining its upload queue may still ask the core
	 * (through the hooks) to name a conflict copy, which takes the keys. */
	scs_backend_close(v->be);
	vstate_free(v->st);
	scs_seen_close(v->seen);
	scs_identity_free(v->id);
	pthread_rwlock_destroy(&v->lock);
	pthread_mutex_destroy(&v->rmu);
	free(v);
}

uint64_t scs_vault_clock(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static int refresh_locked(scs_vault *v, scs_err *err);

int scs_vault_refresh_since(scs_vault *v, uint64_t since, scs_err *err)
{
	scs_err_clear(err);
	pthread_mutex_lock(&v->rmu);
	int rc = 0;
	if (v->looked < since) {
		uint64_t start = scs_vault_clock();
		rc = refresh_locked(v, err);
		if (rc == 0)
			v->looked = start;
	}
	pthread_mutex_unlock(&v->rmu);
	return rc;
}

int scs_vault_refresh(scs_vault *v, scs_err *err)
{
	return scs_vault_refresh_since(v, UINT64_MAX, err);
}

static int refresh_locked(scs_vault *v, scs_err *err)
{
	char next[64];
	struct scs_attr a;
	/* Cheap test first: is there an entry after the one we have? */
	pthread_rwlock_rdlock(&v->lock);
	uint32_t seq = v->st->kr->seq;
	const uint8_t *head = v->st->kr->head;
	uint8_t oldhead[SCS_SHA256_LEN];
	memcpy(oldhead, head, sizeof oldhead);
	pthread_rwlock_unlock(&v->lock);
	scs_keyring_entry_path(seq + 1, next);
	int rc = scs_be_stat(v->be, next, &a);
	if (rc == -ENOENT)
		return 0;
	if (rc < 0)
		return scs_err_set(err, rc, "cannot check the keyring: %s", strerror(-rc));

	struct vstate *ns = calloc(1, sizeof *ns);
	if (!ns)
		return scs_err_set(err, -ENOMEM, "out of memory");
	int removed = 0;
	rc = load_keyring(v->be, v->id, oldhead, seq, &ns->kr, &removed, err);
	if (rc == 0)
		set_membership(ns, v->id->fpr);
	if (rc == 0 && !v->public_only && removed) {
		pthread_rwlock_rdlock(&v->lock);
		rc = keep_keys(ns, v->st, err);
		pthread_rwlock_unlock(&v->lock);
	} else if (rc == 0 && !v->public_only) {
		rc = derive_state(ns, v->id, err);
	}
	if (rc < 0) {
		vstate_free(ns);
		return rc;
	}
	pthread_rwlock_wrlock(&v->lock);
	ns->older = v->st;
	v->st = ns;
	pthread_rwlock_unlock(&v->lock);
	return 0;
}

/* ---- accessors ---- */

scs_backend *scs_vault_backend(scs_vault *v)
{
	return v->be;
}

const scs_keyctx *scs_vault_keyctx(scs_vault *v)
{
	return &v->kc;
}

const scs_keyctx *scs_vault_keyctx_own(scs_vault *v)
{
	return &v->kc_own;
}

const uint8_t *scs_vault_root_dir_id(scs_vault *v)
{
	return v->root_id;
}

uint32_t scs_vault_epoch(scs_vault *v)
{
	return kc_write_epoch(v);
}

int scs_vault_name_keys(scs_vault *v, const uint8_t (**keys)[SCS_SIV_KEY_LEN], const uint32_t **epochs)
{
	pthread_rwlock_rdlock(&v->lock);
	*keys = (const uint8_t (*)[SCS_SIV_KEY_LEN])v->st->name_keys;
	*epochs = v->st->epochs;
	int n = v->st->name_keys ? (int)live_epochs(v->st) : 0;
	pthread_rwlock_unlock(&v->lock);
	return n;
}

int scs_vault_membership(scs_vault *v, uint32_t *seq, const char **by)
{
	pthread_rwlock_rdlock(&v->lock);
	int m = v->st->member;
	if (seq)
		*seq = v->st->mseq;
	if (by)
		*by = v->st->mby;
	pthread_rwlock_unlock(&v->lock);
	return m;
}

int scs_vault_epoch_key(scs_vault *v, uint32_t epoch, uint8_t key[SCS_KEY_LEN])
{
	return kc_epoch_key(v, epoch, key);
}

struct scs_seen *scs_vault_seen(scs_vault *v)
{
	return v->seen;
}

const char *scs_vault_group_fpr(scs_vault *v)
{
	return v->group_fpr;
}

const char *scs_vault_remote(scs_vault *v)
{
	return v->be->remote;
}

struct scs_identity *scs_vault_identity(scs_vault *v)
{
	return v->id;
}

const struct scs_keyring *scs_vault_keyring(scs_vault *v)
{
	pthread_rwlock_rdlock(&v->lock);
	const scs_keyring *kr = v->st->kr;
	pthread_rwlock_unlock(&v->lock);
	return kr;
}
