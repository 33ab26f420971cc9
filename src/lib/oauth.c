/* oauth.c - OAuth 2.0 for installed apps against Google (or the emulator):
 * the device flow, the loopback redirect with PKCE (S256) and state, and
 * refresh-token sessions.  Tokens are never logged. */
#include "scs/oauth.h"
#include "scs/b64.h"
#include "scs/config.h"
#include "scs/crypto.h"
#include "scs/http.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdarg.h>
#include <sys/time.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CRED_FILE "gdrive.json"
#define TOKEN_REPLY_MAX (64u << 10)

void scs_gdrive_endpoints(struct scs_gdrive_endpoints *e)
{
	const char *b = getenv("SCSFS_GDRIVE_ENDPOINT");
	if (b && *b && strlen(b) < SCS_URL_MAX - 64) {
		size_t n = strlen(b);
		while (n > 0 && b[n - 1] == '/')
			n--;
		snprintf(e->api, sizeof e->api, "%.*s/drive/v3", (int)n, b);
		snprintf(e->upload, sizeof e->upload, "%.*s/upload/drive/v3", (int)n, b);
		snprintf(e->token, sizeof e->token, "%.*s/token", (int)n, b);
		snprintf(e->device, sizeof e->device, "%.*s/device/code", (int)n, b);
		snprintf(e->auth, sizeof e->auth, "%.*s/o/oauth2/v2/auth", (int)n, b);
		return;
	}
	snprintf(e->api, sizeof e->api, "https://www.googleapis.com/drive/v3");
	snprintf(e->upload, sizeof e->upload, "https://www.googleapis.com/upload/drive/v3");
	snprintf(e->token, sizeof e->token, "https://oauth2.googleapis.com/token");
	snprintf(e->device, sizeof e->device, "https://oauth2.googleapis.com/device/code");
	snprintf(e->auth, sizeof e->auth, "https://accounts.google.com/o/oauth2/v2/auth");
}

static void free_secret(char **p)
{
	if (*p) {
		scs_cleanse(*p, strlen(*p));
		free(*p);
		*p = NULL;
	}
}

void scs_oauth_cred_free(struct scs_oauth_cred *c)
{
	free_secret(&c->client_id);
	free_secret(&c->client_secret);
	free_secret(&c->refresh_token);
}

static char *dup_str(json_t *o, const char *key, size_t max)
{
	const char *s = json_string_value(json_object_get(o, key));
	if (!s || strlen(s) > max)
		return NULL;
	return strdup(s);
}

int scs_oauth_load(struct scs_oauth_cred *c, scs_err *err)
{
	memset(c, 0, sizeof *c);
	char path[SCS_PATH_MAX];
	int r = scs_xdg_path(SCS_XDG_CONFIG, CRED_FILE, path, sizeof path);
	if (r < 0)
		return scs_err_set(err, r, "cannot find the config directory; set $HOME");
	uint8_t *data;
	size_t len;
	r = scs_local_read(path, 64 << 10, &data, &len);
	if (r == -ENOENT)
		return scs_err_set(err, -ENOENT, "not signed in to Google Drive; sign in with "
				   "`scsctl auth gdrive --client-id ID --client-secret S`");
	if (r < 0)
		return scs_err_set(err, r, "cannot read %s: %s", path, strerror(-r));
	json_t *j = json_loadb((const char *)data, len, 0, NULL);
	scs_cleanse(data, len);
	free(data);
	if (j && json_is_object(j)) {
		c->client_id = dup_str(j, "client_id", 1024);
		c->client_secret = dup_str(j, "client_secret", 1024);
		c->refresh_token = dup_str(j, "refresh_token", 4096);
	}
	json_decref(j);
	if (!c->client_id || !c->client_secret || !c->refresh_token) {
		scs_oauth_cred_free(c);
		return scs_err_set(err, -EINVAL, "%s is damaged; sign in again with "
				   "`scsctl auth gdrive`", path);
	}
	return 0;
}

int scs_oauth_save(const struct scs_oauth_cred *c, scs_err *err)
{
	char dir[SCS_PATH_MAX], path[SCS_PATH_MAX];
	int r = scs_xdg_path(SCS_XDG_CONFIG, NULL, dir, sizeof dir);
	if (r == 0)
		r = scs_xdg_path(SCS_XDG_CONFIG, CRED_FILE, path, sizeof path);
	if (r < 0)
		return scs_err_set(err, r, "cannot find the config directory; set $HOME");
	r = scs_mkdir_p(dir, 0700);
	if (r < 0)
		return scs_err_set(err, r, "cannot create %s: %s", dir, strerror(-r));
	json_t *j = json_pack("{s:s, s:s, s:s}", "client_id", c->client_id,
			      "client_secret", c->client_secret, "refresh_token", c->refresh_token);
	char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	if (!s)
		return scs_err_set(err, -ENOMEM, "out of memory");
	r = scs_local_write_atomic(path, s, strlen(s), 0600);
	scs_cleanse(s, strlen(s));
	free(s);
	if (r < 0)
		return scs_err_set(err, r, "cannot write %s: %s", path, strerror(-r));
	return 0;
}

void scs_oauth_token_free(struct scs_oauth_token *t)
{
	free_secret(&t->access_token);
	free_secret(&t->refresh_token);
}

int scs_oauth_parse_token(const void *json, size_t len, struct scs_oauth_token *t)
{
	memset(t, 0, sizeof *t);
	if (len > TOKEN_REPLY_MAX)
		return -EFBIG;
	json_t *j = json_loadb(json, len, JSON_REJECT_DUPLICATES, NULL);
	if (!j || !json_is_object(j)) {
		json_decref(j);
		return -EBADMSG;
	}
	const char *e = json_string_value(json_object_get(j, "error"));
	if (e) {
		snprintf(t->error, sizeof t->error, "%s", e);
		json_decref(j);
		return 0;
	}
	t->access_token = dup_str(j, "access_token", 4096);
	t->refresh_token = dup_str(j, "refresh_token", 4096);
	json_t *ei = json_object_get(j, "expires_in");
	t->expires_in = json_is_integer(ei) ? (long)json_integer_value(ei) : 3599;
	if (t->expires_in < 0 || t->expires_in > 86400 * 365)
		t->expires_in = 3599;
	json_decref(j);
	if (!t->access_token) {
		scs_oauth_token_free(t);
		return -EBADMSG;
	}
	return 0;
}

/* POST a form (bounded reply) to url. */
static int post_raw(const char *url, const char *form, struct scs_http_resp *rs, scs_err *err)
{
	static const char *const hdrs[] = {
		"Content-Type: application/x-www-form-urlencoded", "Accept: application/json", NULL };
	struct scs_http_req rq;
	scs_http_req_init(&rq, "POST", url);
	rq.headers = hdrs;
	rq.body = form;
	rq.body_len = strlen(form);
	rq.max_resp = TOKEN_REPLY_MAX;
	rq.timeout_s = 60;
	return scs_http_do(&rq, rs, err);
}

/* POST a form to url; the reply is parsed into t.  Transport errors and
 * non-JSON replies fail; OAuth errors come back in t->error. */
static int post_form(const char *url, const char *form, struct scs_oauth_token *t, scs_err *err)
{
	struct scs_http_resp rs;
	int r = post_raw(url, form, &rs, err);
	if (r < 0)
		return r;
	r = scs_oauth_parse_token(rs.body ? rs.body : (const uint8_t *)"", rs.len, t);
	if (rs.body)
		scs_cleanse(rs.body, rs.len);
	long st = rs.status;
	scs_http_resp_free(&rs);
	if (r < 0)
		return scs_err_set(err, -EPROTO, "the sign-in server gave an unreadable reply "
				   "(HTTP %ld); try again later", st);
	return 0;
}

/* Build "k=v&k=v" from NULL-terminated pairs, values escaped. */
static char *form(const char *k1, ...)
{
	va_list ap;
	size_t cap = 1, n = 0;
	char *out = calloc(1, 1);
	va_start(ap, k1);
	for (const char *k = k1; k && out; k = va_arg(ap, const char *)) {
		const char *v = va_arg(ap, const char *);
		char *ev = scs_http_escape(v ? v : "");
		if (!ev) {
			free(out);
			out = NULL;
			break;
		}
		size_t need = n + strlen(k) + strlen(ev) + 3;
		if (need > cap) {
			char *no = realloc(out, need);
			if (!no) {
				free(out);
				out = NULL;
				scs_cleanse(ev, strlen(ev));
				free(ev);
				break;
			}
			out = no;
			cap = need;
		}
		n += (size_t)sprintf(out + n, "%s%s=%s", n ? "&" : "", k, ev);
		scs_cleanse(ev, strlen(ev));
		free(ev);
	}
	va_end(ap);
	return out;
}

static void free_form(char *f)
{
	if (f) {
		scs_cleanse(f, strlen(f));
		free(f);
	}
}

static int grant_error(const char *e, scs_err *err)
{
	if (!strcmp(e, "invalid_grant"))
		return scs_err_set(err, -EACCES, "Google Drive refused the stored sign-in "
				   "(invalid_grant); sign in again with `scsctl auth gdrive`");
	if (!strcmp(e, "invalid_client") || !strcmp(e, "unauthorized_client"))
		return scs_err_set(err, -EACCES, "Google does not accept the client id/secret (%s); "
				   "check them in the Google Cloud console and run `scsctl auth gdrive` again", e);
	if (!strcmp(e, "access_denied"))
		return scs_err_set(err, -EACCES, "access was denied in the browser; run `scsctl "
				   "auth gdrive` again and allow access");
	if (!strcmp(e, "expired_token"))
		return scs_err_set(err, -ETIMEDOUT, "the sign-in code expired before it was entered; "
				   "run `scsctl auth gdrive` again");
	return scs_err_set(err, -EACCES, "sign-in failed (%.60s); run `scsctl auth gdrive` again", e);
}

/* ---- device flow ---- */

int scs_oauth_device_flow(const struct scs_gdrive_endpoints *e, struct scs_oauth_cred *c,
			  FILE *out, scs_err *err)
{
	char *f = form("client_id", c->client_id, "scope", SCS_GDRIVE_SCOPE, NULL);
	if (!f)
		return scs_err_set(err, -ENOMEM, "out of memory");
	struct scs_http_resp rs;
	int r = post_raw(e->device, f, &rs, err);
	free_form(f);
	if (r < 0)
		return r;
	json_t *j = rs.body ? json_loadb((const char *)rs.body, rs.len, 0, NULL) : NULL;
	long st = rs.status;
	scs_http_resp_free(&rs);
	if (!j || !json_is_object(j)) {
		json_decref(j);
		return scs_err_set(err, -EPROTO, "the device sign-in endpoint gave an unreadable "
				   "reply (HTTP %ld); try again later", st);
	}
	const char *je = json_string_value(json_object_get(j, "error"));
	if (je) {
		r = grant_error(je, err);
		json_decref(j);
		return r;
	}
	char *device_code = dup_str(j, "device_code", 2048);
	const char *user_code = json_string_value(json_object_get(j, "user_code"));
	const char *vurl = json_string_value(json_object_get(j, "verification_url"));
	if (!vurl)
		vurl = json_string_value(json_object_get(j, "verification_uri"));
	json_t *iv = json_object_get(j, "interval"), *ex = json_object_get(j, "expires_in");
	long interval = json_is_integer(iv) ? (long)json_integer_value(iv) : 5;
	long expires = json_is_integer(ex) ? (long)json_integer_value(ex) : 1800;
	if (interval < 1 || interval > 60)
		interval = 5;
	if (expires < 1 || expires > 3600)
		expires = 1800;
	if (!device_code || !user_code || !vurl || strlen(user_code) > 64 || strlen(vurl) > 512) {
		free(device_code);
		json_decref(j);
		return scs_err_set(err, -EPROTO, "the device sign-in reply lacks a code; try again later");
	}
	fprintf(out, "To sign in to Google Drive, open %s on any device and enter the code: %s\n",
		vurl, user_code);
	fflush(out);
	json_decref(j);

	time_t deadline = time(NULL) + expires;
	r = -ETIMEDOUT;
	scs_err_set(err, -ETIMEDOUT, "the code was not entered in time; run `scsctl auth gdrive "
		    "--device` again");
	while (time(NULL) < deadline) {
		sleep((unsigned)interval);
		f = form("client_id", c->client_id, "client_secret", c->client_secret,
			 "device_code", device_code,
			 "grant_type", "urn:ietf:params:oauth:grant-type:device_code", NULL);
		if (!f) {
			r = scs_err_set(err, -ENOMEM, "out of memory");
			break;
		}
		struct scs_oauth_token t;
		r = post_form(e->token, f, &t, err);
		free_form(f);
		if (r < 0)
			break;
		if (!strcmp(t.error, "authorization_pending")) {
			r = -ETIMEDOUT;
			continue;
		}
		if (!strcmp(t.error, "slow_down")) {
			interval += 5;
			r = -ETIMEDOUT;
			continue;
		}
		if (t.error[0]) {
			r = grant_error(t.error, err);
			break;
		}
		if (!t.refresh_token) {
			scs_oauth_token_free(&t);
			r = scs_err_set(err, -EPROTO, "Google gave no refresh token; revoke scsfs's access "
					"in your Google account and sign in again");
			break;
		}
		free_secret(&c->refresh_token);
		c->refresh_token = t.refresh_token;
		t.refresh_token = NULL;
		scs_oauth_token_free(&t);
		scs_err_clear(err);
		r = 0;
		break;
	}
	free_secret(&device_code);
	return r;
}

/* ---- loopback redirect with PKCE ---- */

/* Value of query parameter key in the request target q (decoded in place
 * into out).  0 if found. */
static int query_param(const char *q, const char *key, char *out, size_t cap)
{
	size_t k = strlen(key);
	const char *p = strchr(q, '?');
	if (!p)
		return -1;
	p++;
	while (*p && *p != ' ') {
		const char *amp = p;
		while (*amp && *amp != '&' && *amp != ' ')
			amp++;
		if ((size_t)(amp - p) > k && !strncmp(p, key, k) && p[k] == '=') {
			size_t n = 0;
			for (const char *s = p + k + 1; s < amp; s++) {
				if (n + 1 >= cap)
					return -1;
				if (*s == '%' && s + 2 < amp && isxdigit((unsigned char)s[1]) &&
				    isxdigit((unsigned char)s[2])) {
					char h[3] = { s[1], s[2], 0 };
					out[n++] = (char)strtol(h, NULL, 16);
					s += 2;
				} else {
					out[n++] = *s == '+' ? ' ' : *s;
				}
			}
			out[n] = '\0';
			return 0;
		}
		p = *amp == '&' ? amp + 1 : amp;
	}
	return -1;
}

static void rand_b64(char *out, size_t nbytes)
{
	uint8_t b[64];
	scs_random(b, nbytes);
	scs_b64url_encode(b, nbytes, out);
	scs_cleanse(b, sizeof b);
}

int scs_oauth_loopback_flow(const struct scs_gdrive_endpoints *e, struct scs_oauth_cred *c,
			    FILE *out, int timeout_s, scs_err *err)
{
	char verifier[64], state[32], challenge[48];
	uint8_t h[SCS_SHA256_LEN];
	rand_b64(verifier, 32);           /* 43 characters */
	rand_b64(state, 16);
	scs_sha256(verifier, strlen(verifier), h);
	scs_b64url_encode(h, sizeof h, challenge);

	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return scs_err_set(err, -errno, "cannot open a local socket: %s", strerror(errno));
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof a;
	if (bind(s, (struct sockaddr *)&a, sizeof a) < 0 || listen(s, 4) < 0 ||
	    getsockname(s, (struct sockaddr *)&a, &al) < 0) {
		int en = errno;
		close(s);
		return scs_err_set(err, -en, "cannot listen on 127.0.0.1: %s", strerror(en));
	}
	char redirect[64];
	snprintf(redirect, sizeof redirect, "http://127.0.0.1:%u", (unsigned)ntohs(a.sin_port));
	char *eid = scs_http_escape(c->client_id), *ered = scs_http_escape(redirect),
	     *escope = scs_http_escape(SCS_GDRIVE_SCOPE);
	if (!eid || !ered || !escope) {
		free(eid); free(ered); free(escope);
		close(s);
		return scs_err_set(err, -ENOMEM, "out of memory");
	}
	fprintf(out, "Open this address in a browser on this machine to sign in to Google Drive:\n"
		"%s?client_id=%s&redirect_uri=%s&response_type=code&scope=%s&code_challenge=%s"
		"&code_challenge_method=S256&state=%s&access_type=offline&prompt=consent\n",
		e->auth, eid, ered, escope, challenge, state);
	fflush(out);
	free(eid); free(ered); free(escope);

	char code[1024] = "";
	int r = -ETIMEDOUT;
	scs_err_set(err, -ETIMEDOUT, "no answer from the browser in time; run `scsctl auth gdrive` "
		    "again (or use --device on a machine without a browser)");
	time_t deadline = time(NULL) + timeout_s;
	while (time(NULL) < deadline) {
		struct pollfd p = { .fd = s, .events = POLLIN };
		int pr = poll(&p, 1, 1000);
		if (pr <= 0)
			continue;
		int cfd = accept4(s, NULL, NULL, SOCK_CLOEXEC);
		if (cfd < 0)
			continue;
		char req[8192];
		size_t n = 0;
		struct timeval tv = { .tv_sec = 10 };
		setsockopt(cfd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
		while (n < sizeof req - 1) {
			ssize_t k = recv(cfd, req + n, sizeof req - 1 - n, 0);
			if (k <= 0)
				break;
			n += (size_t)k;
			req[n] = '\0';
			if (strstr(req, "\r\n\r\n"))
				break;
		}
		req[n] = '\0';
		char *eol = strstr(req, "\r\n");
		if (eol)
			*eol = '\0';
		char got_state[64] = "", e2[64] = "";
		int ok = strncmp(req, "GET /", 5) == 0 &&
			 query_param(req, "state", got_state, sizeof got_state) == 0 &&
			 strlen(got_state) == strlen(state) &&
			 scs_ct_equal(got_state, state, strlen(state));
		const char *msg;
		if (!ok) {
			msg = "This request does not belong to the sign-in in progress.";
		} else if (query_param(req, "error", e2, sizeof e2) == 0) {
			msg = "Sign-in was not completed. You can close this window.";
			r = grant_error(e2, err);
		} else if (query_param(req, "code", code, sizeof code) == 0) {
			msg = "scsfs is signed in to Google Drive. You can close this window.";
			r = 0;
		} else {
			msg = "The answer carried no code.";
		}
		char resp[512];
		int rl = snprintf(resp, sizeof resp, "HTTP/1.1 %s\r\nContent-Type: text/plain\r\n"
				  "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
				  ok ? "200 OK" : "400 Bad Request", strlen(msg), msg);
		(void)!send(cfd, resp, (size_t)rl, MSG_NOSIGNAL);
		close(cfd);
		scs_cleanse(req, sizeof req);
		if (ok && (r == 0 || e2[0]))
			break;
	}
	close(s);
	if (r < 0) {
		scs_cleanse(verifier, sizeof verifier);
		return r;
	}
	char *f = form("code", code, "client_id", c->client_id, "client_secret", c->client_secret,
		       "redirect_uri", redirect, "grant_type", "authorization_code",
		       "code_verifier", verifier, NULL);
	scs_cleanse(code, sizeof code);
	scs_cleanse(verifier, sizeof verifier);
	if (!f)
		return scs_err_set(err, -ENOMEM, "out of memory");
	struct scs_oauth_token t;
	r = post_form(e->token, f, &t, err);
	free_form(f);
	if (r < 0)
		return r;
	if (t.error[0])
		return grant_error(t.error, err);
	if (!t.refresh_token) {
		scs_oauth_token_free(&t);
		return scs_err_set(err, -EPROTO, "Google gave no refresh token; revoke scsfs's access "
				   "in your Google account and sign in again");
	}
	free_secret(&c->refresh_token);
	c->refresh_token = t.refresh_token;
	t.refresh_token = NULL;
	scs_oauth_token_free(&t);
	return 0;
}

/* ---- sessions ---- */

int scs_oauth_open(struct scs_oauth **out, scs_err *err)
{
	*out = NULL;
	struct scs_oauth *o = calloc(1, sizeof *o);
	if (!o)
		return scs_err_set(err, -ENOMEM, "out of memory");
	int r = scs_oauth_load(&o->cred, err);
	if (r < 0) {
		free(o);
		return r;
	}
	scs_gdrive_endpoints(&o->ep);
	pthread_mutex_init(&o->lock, NULL);
	*out = o;
	return 0;
}

void scs_oauth_close(struct scs_oauth *o)
{
	if (!o)
		return;
	scs_oauth_cred_free(&o->cred);
	scs_cleanse(o->access, sizeof o->access);
	pthread_mutex_destroy(&o->lock);
	free(o);
}

static int refresh_locked(struct scs_oauth *o, scs_err *err)
{
	char *f = form("client_id", o->cred.client_id, "client_secret", o->cred.client_secret,
		       "refresh_token", o->cred.refresh_token, "grant_type", "refresh_token", NULL);
	if (!f)
		return scs_err_set(err, -ENOMEM, "out of memory");
	struct scs_oauth_token t;
	int r = post_form(o->ep.token, f, &t, err);
	free_form(f);
	if (r < 0)
		return r;
	if (t.error[0])
		return grant_error(t.error, err);
	if (strlen(t.access_token) >= sizeof o->access) {
		scs_oauth_token_free(&t);
		return scs_err_set(err, -EPROTO, "the access token from Google is too long");
	}
	scs_cleanse(o->access, sizeof o->access);
	strcpy(o->access, t.access_token);
	o->expiry = time(NULL) + t.expires_in;
	/* Refresh a minute early (a quarter of the lifetime for short ones). */
	o->margin = t.expires_in >= 240 ? 60 : t.expires_in / 4;
	o->gen++;
	scs_oauth_token_free(&t);
	return 0;
}

int scs_oauth_header(struct scs_oauth *o, char *hdr, size_t cap, unsigned *gen,
		     long stale_gen, scs_err *err)
{
	int r = 0;
	pthread_mutex_lock(&o->lock);
	/* Refresh shortly before expiry, when absent, or after a 401 on the
	 * current token. */
	if (!o->access[0] || time(NULL) + o->margin >= o->expiry ||
	    (stale_gen >= 0 && (unsigned)stale_gen == o->gen))
		r = refresh_locked(o, err);
	if (!r) {
		if ((size_t)snprintf(hdr, cap, "Authorization: Bearer %s", o->access) >= cap)
			r = scs_err_set(err, -ENAMETOOLONG, "access token too long");
		*gen = o->gen;
	}
	pthread_mutex_unlock(&o->lock);
	return r;
}
