/* scs/oauth.h - OAuth 2.0 for Google Drive (installed-app flows).
 *
 * Credentials (client id, client secret, refresh token) live in
 * $XDG_CONFIG_HOME/scsfs/gdrive.json, mode 0600, written atomically.
 * Tokens never reach logs, messages or argv. */
#ifndef SCS_OAUTH_H
#define SCS_OAUTH_H

#include <pthread.h>
#include <stdio.h>
#include <time.h>
#include "scs/err.h"

#define SCS_GDRIVE_SCOPE "https://www.googleapis.com/auth/drive.file"
#define SCS_URL_MAX 512

/* Every Google base URL; SCSFS_GDRIVE_ENDPOINT=http://127.0.0.1:PORT
 * replaces all of them (the emulator serves every path from one base). */
struct scs_gdrive_endpoints {
	char api[SCS_URL_MAX];      /* .../drive/v3 */
	char upload[SCS_URL_MAX];   /* .../upload/drive/v3 */
	char token[SCS_URL_MAX];
	char device[SCS_URL_MAX];
	char auth[SCS_URL_MAX];
};
void scs_gdrive_endpoints(struct scs_gdrive_endpoints *e);

struct scs_oauth_cred {
	char *client_id;
	char *client_secret;
	char *refresh_token;
};
/* -ENOENT (with a "sign in with `scsctl auth gdrive`" message) if absent. */
int scs_oauth_load(struct scs_oauth_cred *c, scs_err *err);
int scs_oauth_save(const struct scs_oauth_cred *c, scs_err *err);
void scs_oauth_cred_free(struct scs_oauth_cred *c);   /* cleanses */

/* Interactive sign-in; messages for the user go to out.  On success the
 * refresh token is stored in c->refresh_token (malloc'd). */
int scs_oauth_device_flow(const struct scs_gdrive_endpoints *e, struct scs_oauth_cred *c,
			  FILE *out, scs_err *err);
int scs_oauth_loopback_flow(const struct scs_gdrive_endpoints *e, struct scs_oauth_cred *c,
			    FILE *out, int timeout_s, scs_err *err);

/* A running session: an access token refreshed before expiry. */
struct scs_oauth {
	struct scs_gdrive_endpoints ep;
	struct scs_oauth_cred cred;
	pthread_mutex_t lock;
	char access[4096];
	time_t expiry;
	long margin;              /* refresh this many seconds before expiry */
	unsigned gen;             /* +1 at each refresh */
};
int scs_oauth_open(struct scs_oauth **out, scs_err *err);
void scs_oauth_close(struct scs_oauth *o);
/* Write "Authorization: Bearer <token>" into hdr; *gen gets the token's
 * generation.  stale_gen >= 0: the caller got a 401 with that generation;
 * refresh unless someone already did. */
int scs_oauth_header(struct scs_oauth *o, char *hdr, size_t cap, unsigned *gen,
		     long stale_gen, scs_err *err);

/* Parse a token endpoint reply (bounded JSON).  Exposed for the fuzzer.
 * Fills access/refresh (malloc'd, may be NULL), expires_in and the error
 * code string (static storage copied into errbuf). */
struct scs_oauth_token {
	char *access_token;
	char *refresh_token;
	long expires_in;
	char error[64];
};
int scs_oauth_parse_token(const void *json, size_t len, struct scs_oauth_token *t);
void scs_oauth_token_free(struct scs_oauth_token *t);

#endif
