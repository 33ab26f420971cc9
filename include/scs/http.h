/* scs/http.h - a small libcurl wrapper for the Drive and OAuth clients.
 *
 * One CURL easy handle per thread, kept with its own live connections for
 * the thread's next request (libcurl does not support sharing connections
 * between concurrent threads); the DNS cache is shared.  Every
 * response body is bounded: by max_resp, or by out_max into out_buf.
 * No retries here: callers (backend_gdrive.c, oauth.c) decide. */
#ifndef SCS_HTTP_H
#define SCS_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include "scs/err.h"

#define SCS_HTTP_MAX_JSON (4u << 20)   /* default cap of a JSON reply */

struct scs_http_req {
	const char *method;             /* "GET", "POST", "PUT", "PATCH", "DELETE" */
	const char *url;
	const char *const *headers;     /* NULL-terminated "Name: value" list, may be NULL */
	const void *body;               /* request body in memory, or ... */
	size_t body_len;
	int body_fd;                    /* ... body_len bytes of this file from body_off (-1: none) */
	uint64_t body_off;
	size_t max_resp;                /* cap on an in-memory reply (0: SCS_HTTP_MAX_JSON) */
	void *out_buf;                  /* 2xx bodies go here (NULL: in body, malloc'd) */
	uint64_t out_max;               /* at most this many bytes into out_buf */
	long timeout_s;                 /* whole-request timeout (0: none; a stall still fails) */
};

struct scs_http_resp {
	long status;                    /* HTTP status; 0 if the transport failed */
	uint8_t *body;                  /* NUL-terminated in-memory body (free with scs_http_resp_free) */
	size_t len;
	uint64_t written;               /* bytes written to out_buf */
	char location[2048];            /* Location header */
	char range[128];                /* Range header (308 replies) */
	int retry_after;                /* Retry-After in seconds, -1 if absent */
};

/* 0 with resp->status set (any status), -EIO on a transport failure (the
 * message names it), -EFBIG when the reply exceeded its cap, -ENOMEM. */
int scs_http_do(const struct scs_http_req *rq, struct scs_http_resp *resp, scs_err *err);
void scs_http_resp_free(struct scs_http_resp *resp);
/* An initialised request (body_fd -1). */
void scs_http_req_init(struct scs_http_req *rq, const char *method, const char *url);

/* Percent-encode s for a query or form value (malloc'd). */
char *scs_http_escape(const char *s);

#endif
