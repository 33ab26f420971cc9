/* http.c - libcurl wrapper: one easy handle per thread (each keeps its own
 * connections alive for the next request), one share for the DNS cache,
 * bounded replies. */
#include "scs/http.h"

#include <curl/curl.h>
#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static pthread_once_t once = PTHREAD_ONCE_INIT;
static pthread_key_t handle_key;
static CURLSH *share;
static pthread_mutex_t share_locks[CURL_LOCK_DATA_LAST];
static int init_failed;

static void lock_cb(CURL *h, curl_lock_data d, curl_lock_access a, void *u)
{
	(void)h; (void)a; (void)u;
	pthread_mutex_lock(&share_locks[d]);
}

static void unlock_cb(CURL *h, curl_lock_data d, void *u)
{
	(void)h; (void)u;
	pthread_mutex_unlock(&share_locks[d]);
}

static void handle_free(void *h)
{
	curl_easy_cleanup(h);
}

static void global_init(void)
{
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK ||
	    pthread_key_create(&handle_key, handle_free) != 0) {
		init_failed = 1;
		return;
	}
	for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_init(&share_locks[i], NULL);
	share = curl_share_init();
	if (share) {
		curl_share_setopt(share, CURLSHOPT_LOCKFUNC, lock_cb);
		curl_share_setopt(share, CURLSHOPT_UNLOCKFUNC, unlock_cb);
		curl_share_setopt(share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
		/* Not CURL_LOCK_DATA_CONNECT: "It is not supported to share
		 * connections between multiple concurrent threads" (libcurl's
		 * CURLSHOPT_SHARE); done anyway, a request now and then waited on
		 * a connection another thread was using until LOW_SPEED_TIME. */
	}
}

static CURL *thread_handle(void)
{
	pthread_once(&once, global_init);
	if (init_failed)
		return NULL;
	CURL *h = pthread_getspecific(handle_key);
	if (h) {
		curl_easy_reset(h);
		return h;
	}
	h = curl_easy_init();
	if (h && pthread_setspecific(handle_key, h) != 0) {
		curl_easy_cleanup(h);
		return NULL;
	}
	return h;
}

void scs_http_req_init(struct scs_http_req *rq, const char *method, const char *url)
{
	memset(rq, 0, sizeof *rq);
	rq->method = method;
	rq->url = url;
	rq->body_fd = -1;
}

void scs_http_resp_free(struct scs_http_resp *resp)
{
	free(resp->body);
	resp->body = NULL;
	resp->len = 0;
}

struct ctx {
	const struct scs_http_req *rq;
	struct scs_http_resp *resp;
	CURL *h;
	size_t cap;
	uint64_t sent;
	int too_big;
	int io_err;
};

static size_t write_cb(char *p, size_t sz, size_t nm, void *u)
{
	struct ctx *c = u;
	size_t n = sz * nm;
	long st = 0;
	curl_easy_getinfo(c->h, CURLINFO_RESPONSE_CODE, &st);
	if (c->rq->out_buf && st >= 200 && st < 300) {
		if (c->resp->written + n > c->rq->out_max) {
			c->too_big = 1;
			return 0;
		}
		memcpy((uint8_t *)c->rq->out_buf + c->resp->written, p, n);
		c->resp->written += n;
		return n;
	}
	if (c->resp->len + n > c->cap) {
		c->too_big = 1;
		return 0;
	}
	uint8_t *nb = realloc(c->resp->body, c->resp->len + n + 1);
	if (!nb) {
		c->io_err = ENOMEM;
		return 0;
	}
	memcpy(nb + c->resp->len, p, n);
	c->resp->body = nb;
	c->resp->len += n;
	nb[c->resp->len] = '\0';
	return n;
}

static size_t read_cb(char *p, size_t sz, size_t nm, void *u)
{
	struct ctx *c = u;
	size_t want = sz * nm;
	uint64_t left = c->rq->body_len - c->sent;
	if (want > left)
		want = (size_t)left;
	if (!want)
		return 0;
	ssize_t r;
	do
		r = pread(c->rq->body_fd, p, want, (off_t)(c->rq->body_off + c->sent));
	while (r < 0 && errno == EINTR);
	if (r <= 0) {
		c->io_err = r < 0 ? errno : EIO;
		return CURL_READFUNC_ABORT;
	}
	c->sent += (uint64_t)r;
	return (size_t)r;
}

/* Copy header value (trimmed) if name matches (case-insensitive). */
static void grab(const char *line, size_t n, const char *name, char *out, size_t cap)
{
	size_t k = strlen(name);
	if (n <= k || strncasecmp(line, name, k) != 0 || line[k] != ':')
		return;
	const char *v = line + k + 1;
	const char *e = line + n;
	while (v < e && (*v == ' ' || *v == '\t'))
		v++;
	while (e > v && (e[-1] == '\r' || e[-1] == '\n' || e[-1] == ' '))
		e--;
	size_t m = (size_t)(e - v);
	if (m >= cap)
		m = cap - 1;
	memcpy(out, v, m);
	out[m] = '\0';
}

static size_t header_cb(char *p, size_t sz, size_t nm, void *u)
{
	struct ctx *c = u;
	size_t n = sz * nm;
	/* A new status line (after 100 Continue or a redirect) resets the set. */
	if (n > 5 && strncmp(p, "HTTP/", 5) == 0) {
		c->resp->location[0] = c->resp->range[0] = '\0';
		c->resp->retry_after = -1;
		return n;
	}
	grab(p, n, "Location", c->resp->location, sizeof c->resp->location);
	grab(p, n, "Range", c->resp->range, sizeof c->resp->range);
	char ra[32] = "";
	grab(p, n, "Retry-After", ra, sizeof ra);
	if (ra[0] && isdigit((unsigned char)ra[0])) {
		long v = strtol(ra, NULL, 10);
		c->resp->retry_after = v > 3600 ? 3600 : (int)v;
	}
	return n;
}

int scs_http_do(const struct scs_http_req *rq, struct scs_http_resp *resp, scs_err *err)
{
	memset(resp, 0, sizeof *resp);
	resp->retry_after = -1;
	CURL *h = thread_handle();
	if (!h)
		return scs_err_set(err, -ENOMEM, "cannot start libcurl");
	struct ctx c = { .rq = rq, .resp = resp, .h = h,
			 .cap = rq->max_resp ? rq->max_resp : SCS_HTTP_MAX_JSON };
	struct curl_slist *hl = NULL;
	for (const char *const *p = rq->headers; p && *p; p++) {
		struct curl_slist *t = curl_slist_append(hl, *p);
		if (!t)
			goto nomem;
		hl = t;
	}
	/* Never wait for "100 Continue". */
	struct curl_slist *t = curl_slist_append(hl, "Expect:");
	if (!t)
		goto nomem;
	hl = t;

	if (share)
		curl_easy_setopt(h, CURLOPT_SHARE, share);
	curl_easy_setopt(h, CURLOPT_URL, rq->url);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 15L);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, 60L);
	if (rq->timeout_s > 0)
		curl_easy_setopt(h, CURLOPT_TIMEOUT, rq->timeout_s);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &c);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, header_cb);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, &c);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "scsfs/0.1");

	const char *m = rq->method ? rq->method : "GET";
	int has_body = rq->body || rq->body_fd >= 0 ||
		       !strcmp(m, "POST") || !strcmp(m, "PUT") || !strcmp(m, "PATCH");
	if (has_body) {
		curl_easy_setopt(h, CURLOPT_POST, 1L);
		if (rq->body_fd >= 0) {
			curl_easy_setopt(h, CURLOPT_READFUNCTION, read_cb);
			curl_easy_setopt(h, CURLOPT_READDATA, &c);
			curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)rq->body_len);
		} else {
			curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)rq->body_len);
			curl_easy_setopt(h, CURLOPT_POSTFIELDS, rq->body ? rq->body : "");
		}
		if (strcmp(m, "POST"))
			curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, m);
	} else if (strcmp(m, "GET")) {
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, m);
	}

	CURLcode cr = curl_easy_perform(h);
	curl_slist_free_all(hl);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp->status);
	if (c.too_big) {
		scs_http_resp_free(resp);
		return scs_err_set(err, -EFBIG, "reply from %s is larger than expected", rq->url);
	}
	if (c.io_err) {
		scs_http_resp_free(resp);
		return scs_err_set(err, -c.io_err, "local I/O failed during a request: %s",
				   strerror(c.io_err));
	}
	if (cr != CURLE_OK) {
		scs_http_resp_free(resp);
		resp->status = 0;
		return scs_err_set(err, -EIO, "network error talking to the server: %s; "
				   "check the connection", curl_easy_strerror(cr));
	}
	return 0;
nomem:
	curl_slist_free_all(hl);
	return scs_err_set(err, -ENOMEM, "out of memory");
}

char *scs_http_escape(const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = strlen(s);
	char *o = malloc(3 * n + 1), *q = o;
	if (!o)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (isalnum(ch) || ch == '-' || ch == '_' || ch == '.' || ch == '~') {
			*q++ = (char)ch;
		} else {
			*q++ = '%';
			*q++ = hex[ch >> 4];
			*q++ = hex[ch & 15];
		}
	}
	*q = '\0';
	return o;
}
