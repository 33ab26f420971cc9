/* fuzz_drive_json.c - the parsers of Drive and OAuth replies on arbitrary
 * bytes: files.get (a File resource), files.list pages, Drive error bodies
 * and token endpoint replies.  Whatever parses must satisfy the parsers'
 * promises (usable ids only, bounded strings); crashes and sanitizer
 * reports abort. */
#include "scs/gdrive.h"
#include "scs/oauth.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_meta(const struct scs_gdrive_meta *m)
{
	size_t n = strlen(m->id);
	if (n < 1 || n > SCS_GDRIVE_ID_MAX || strspn(m->id, "abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") != n)
		abort();      /* ids name cache files and URLs: never anything else */
	size_t rn = strlen(m->rev);
	if (rn > SCS_GDRIVE_REV_MAX || strspn(m->rev, "abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.=") != rn)
		abort();      /* revisions go into journal lines */
	if (strlen(m->name) > SCS_GDRIVE_NAME_MAX || (m->is_dir && m->is_link) ||
	    (m->perm & ~07777u))
		abort();
	if ((m->pending != 0 && m->pending != 1) || (m->pending && (m->is_dir || m->is_link)))
		abort();      /* the mark of a new file's missing content: regular files only */
}

static int each(void *arg, const struct scs_gdrive_meta *m)
{
	(void)arg;
	check_meta(m);
	if (m->foreign || !m->name[0])
		abort();      /* skipped, never handed out */
	return 0;
}

static int change(void *arg, const char *file_id, const struct scs_gdrive_meta *m)
{
	(void)arg;
	size_t n = strlen(file_id);
	if (n < 1 || n > SCS_GDRIVE_ID_MAX || strspn(file_id, "abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") != n)
		abort();
	if (m) {
		each(NULL, m);
		size_t pn = strlen(m->parent);
		if (strcmp(m->id, file_id) || pn > SCS_GDRIVE_ID_MAX ||
		    strspn(m->parent, "abcdefghijklmnopqrstuvwxyz"
			   "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") != pn)
			abort();   /* parents build paths and URLs */
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct scs_gdrive_meta m;
	if (scs_gdrive_parse_file(data, size, &m) == 0)
		check_meta(&m);
	char next[1024];
	if (scs_gdrive_parse_list(data, size, each, NULL, next, sizeof next) == 0 &&
	    strlen(next) >= sizeof next)
		abort();
	char news[1024];
	if (scs_gdrive_parse_changes(data, size, change, NULL, next, sizeof next, news,
				     sizeof news) == 0 &&
	    (strlen(next) >= sizeof next || strlen(news) >= sizeof news))
		abort();
	char reason[64], msg[200];
	scs_gdrive_error_reason(data, size, reason, sizeof reason, msg, sizeof msg);
	if (strlen(reason) >= sizeof reason || strlen(msg) >= sizeof msg)
		abort();
	struct scs_oauth_token t;
	if (scs_oauth_parse_token(data, size, &t) == 0) {
		if (!t.error[0] && !t.access_token)
			abort();
		if (t.expires_in < 0)
			abort();
		scs_oauth_token_free(&t);
	}
	return 0;
}
