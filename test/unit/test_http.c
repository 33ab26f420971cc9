/* test_http.c - the HTTP helpers and the Drive/OAuth reply parsers:
 * escaping, File resources (ids that could name files elsewhere are
 * refused, int64 strings, times, markers), list pages (paging token, Google
 * Docs skipped), error reasons, token replies; and one real request to a
 * local socket that answers with more than the cap (bounded). */
#include "scs/gdrive.h"
#include "scs/http.h"
#include "scs/oauth.h"
#include "unit.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>


static int parse(const char *json, struct scs_gdrive_meta *m)
{
	return scs_gdrive_parse_file(json, strlen(json), m);
}

static void test_escape(void)
{
	char *e = scs_http_escape("a b/'c'&=\xc3\xa9~._-");
	CHECK(e && !strcmp(e, "a%20b%2F%27c%27%26%3D%C3%A9~._-"));
	free(e);
}

static void test_file(void)
{
	struct scs_gdrive_meta m;
	CHECK_EQ(parse("{\"id\":\"1AbC_-9\",\"name\":\"x\",\"mimeType\":\"application/octet-stream\","
		       "\"size\":\"123456789012\",\"version\":\"42\","
		       "\"modifiedTime\":\"2026-11-23T10:15:30.250Z\","
		       "\"appProperties\":{\"m\":\"600\"}}", &m), 0);
	CHECK(!strcmp(m.id, "1AbC_-9") && !strcmp(m.name, "x"));
	CHECK_EQ(m.size, 123456789012ull);
	CHECK_EQ(m.version, 42);
	CHECK_EQ(m.mtime.tv_sec, 1795428930);
	CHECK_EQ(m.mtime.tv_nsec, 250000000);
	CHECK_EQ(m.perm, 0600);
	CHECK(!m.is_dir && !m.is_link && !m.foreign);

	/* nanoseconds kept in a private property while Drive's ms agree */
	CHECK_EQ(parse("{\"id\":\"t1\",\"name\":\"x\",\"modifiedTime\":\"2026-11-23T10:15:30.250Z\","
		       "\"appProperties\":{\"t\":\"1795428930.250123456\",\"a\":\"5.000000007\","
		       "\"m\":\"0\"}}", &m), 0);
	CHECK_EQ(m.mtime.tv_nsec, 250123456);
	CHECK_EQ(m.atime.tv_sec, 5);
	CHECK_EQ(m.atime.tv_nsec, 7);
	CHECK(m.has_perm && m.perm == 0);
	CHECK_EQ(parse("{\"id\":\"t1\",\"name\":\"x\",\"modifiedTime\":\"2026-11-23T10:15:31.000Z\","
		       "\"appProperties\":{\"t\":\"1795428930.250123456\",\"a\":\"x.1\"}}", &m), 0);
	CHECK_EQ(m.mtime.tv_sec, 1795428931);   /* changed since: Drive's time wins */
	CHECK_EQ(m.mtime.tv_nsec, 0);
	CHECK_EQ(m.atime.tv_sec, 1795428931);
	CHECK(!m.has_perm);

	CHECK_EQ(parse("{\"id\":\"d1\",\"name\":\"dir\",\"mimeType\":"
		       "\"application/vnd.google-apps.folder\"}", &m), 0);
	CHECK(m.is_dir && m.size == 0);
	CHECK_EQ(parse("{\"id\":\"l1\",\"name\":\"s\",\"appProperties\":{\"scsfs_link\":\"1\"}}", &m), 0);
	CHECK(m.is_link);
	CHECK(!m.pending);
	/* a member's new file whose content is not uploaded yet: regular files only */
	CHECK_EQ(parse("{\"id\":\"p1\",\"name\":\"n\",\"appProperties\":{\"p\":\"1\",\"m\":\"644\"}}",
		       &m), 0);
	CHECK(m.pending && !m.is_link && !m.is_dir);
	CHECK_EQ(parse("{\"id\":\"p2\",\"name\":\"n\",\"appProperties\":{\"p\":\"0\"}}", &m), 0);
	CHECK(!m.pending);
	CHECK_EQ(parse("{\"id\":\"p3\",\"name\":\"n\",\"appProperties\":{\"p\":1}}", &m), 0);
	CHECK(!m.pending);
	CHECK_EQ(parse("{\"id\":\"p4\",\"name\":\"s\",\"appProperties\":{\"p\":\"1\","
		       "\"scsfs_link\":\"1\"}}", &m), 0);
	CHECK(m.is_link && !m.pending);
	CHECK_EQ(parse("{\"id\":\"p5\",\"name\":\"d\",\"mimeType\":"
		       "\"application/vnd.google-apps.folder\",\"appProperties\":{\"p\":\"1\"}}",
		       &m), 0);
	CHECK(m.is_dir && !m.pending);
	CHECK_EQ(parse("{\"id\":\"g1\",\"name\":\"doc\",\"mimeType\":"
		       "\"application/vnd.google-apps.document\"}", &m), 0);
	CHECK(m.foreign);
	/* ids name cache files and go into URLs: only Drive's alphabet */
	CHECK_EQ(parse("{\"id\":\"../../etc\",\"name\":\"x\"}", &m), -EBADMSG);
	CHECK_EQ(parse("{\"id\":\"a?b\",\"name\":\"x\"}", &m), -EBADMSG);
	CHECK_EQ(parse("{\"id\":\"\",\"name\":\"x\"}", &m), -EBADMSG);
	CHECK_EQ(parse("{\"name\":\"x\"}", &m), -EBADMSG);
	CHECK_EQ(parse("[1,2]", &m), -EBADMSG);
	CHECK_EQ(parse("{\"id\":", &m), -EBADMSG);
	/* negative or junk sizes are not trusted */
	CHECK_EQ(parse("{\"id\":\"a\",\"name\":\"x\",\"size\":\"-5\"}", &m), 0);
	CHECK_EQ(m.size, 0);
	CHECK_EQ(parse("{\"id\":\"a\",\"name\":\"x\",\"size\":\"12x\"}", &m), 0);
	CHECK_EQ(m.size, 0);
}

struct names {
	int n;
	char got[4][SCS_GDRIVE_NAME_MAX + 1];
};

static int collect(void *arg, const struct scs_gdrive_meta *m)
{
	struct names *c = arg;
	if (c->n < 4)
		snprintf(c->got[c->n], sizeof c->got[0], "%s", m->name);
	c->n++;
	return 0;
}

static void test_list(void)
{
	const char *page = "{\"nextPageToken\":\"tok2\",\"files\":["
		"{\"id\":\"a\",\"name\":\"one\"},"
		"{\"id\":\"b\",\"name\":\"gdoc\",\"mimeType\":\"application/vnd.google-apps.document\"},"
		"{\"id\":\"../x\",\"name\":\"bad\"},"
		"{\"id\":\"c\",\"name\":\"two\"}]}";
	struct names c = { 0 };
	char next[64];
	CHECK_EQ(scs_gdrive_parse_list(page, strlen(page), collect, &c, next, sizeof next), 0);
	CHECK_EQ(c.n, 2);
	CHECK(!strcmp(c.got[0], "one") && !strcmp(c.got[1], "two"));
	CHECK(!strcmp(next, "tok2"));
	const char *last = "{\"files\":[]}";
	CHECK_EQ(scs_gdrive_parse_list(last, strlen(last), collect, &c, next, sizeof next), 0);
	CHECK(next[0] == '\0');
	CHECK_EQ(scs_gdrive_parse_list(page, strlen(page), collect, &c, next, 3), -EBADMSG);
	const char *bad = "{\"files\":{}}";
	CHECK_EQ(scs_gdrive_parse_list(bad, strlen(bad), collect, &c, next, sizeof next), -EBADMSG);
}

static void test_errors_and_tokens(void)
{
	const char *e = "{\"error\":{\"code\":403,\"message\":\"User Rate Limit Exceeded\","
			"\"errors\":[{\"domain\":\"usageLimits\",\"reason\":\"userRateLimitExceeded\"}]}}";
	char reason[32], msg[8];
	scs_gdrive_error_reason(e, strlen(e), reason, sizeof reason, msg, sizeof msg);
	CHECK(!strcmp(reason, "userRateLimitExceeded"));
	CHECK(!strcmp(msg, "User Ra"));   /* truncated, terminated */
	scs_gdrive_error_reason("nonsense", 8, reason, sizeof reason, msg, sizeof msg);
	CHECK(reason[0] == '\0' && msg[0] == '\0');

	struct scs_oauth_token t;
	const char *ok = "{\"access_token\":\"ya29.x\",\"expires_in\":3599,\"refresh_token\":\"1//r\"}";
	CHECK_EQ(scs_oauth_parse_token(ok, strlen(ok), &t), 0);
	CHECK(t.access_token && !strcmp(t.access_token, "ya29.x"));
	CHECK(t.refresh_token && !strcmp(t.refresh_token, "1//r"));
	CHECK_EQ(t.expires_in, 3599);
	scs_oauth_token_free(&t);
	CHECK(t.access_token == NULL);
	const char *ig = "{\"error\":\"invalid_grant\",\"error_description\":\"Bad\"}";
	CHECK_EQ(scs_oauth_parse_token(ig, strlen(ig), &t), 0);
	CHECK(!strcmp(t.error, "invalid_grant") && !t.access_token);
	CHECK_EQ(scs_oauth_parse_token("{}", 2, &t), -EBADMSG);
	CHECK_EQ(scs_oauth_parse_token("<html>", 6, &t), -EBADMSG);
}

/* A one-shot server: answers with a 200 and a body of n bytes. */
struct srv {
	int fd;
	size_t n;
};

static void *serve(void *arg)
{
	struct srv *s = arg;
	int c = accept(s->fd, NULL, NULL);
	if (c < 0)
		return NULL;
	char buf[4096];
	(void)!recv(c, buf, sizeof buf, 0);
	char head[128];
	int hl = snprintf(head, sizeof head, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n"
			  "Retry-After: 7\r\n\r\n", s->n);
	(void)!send(c, head, (size_t)hl, MSG_NOSIGNAL);
	memset(buf, 'z', sizeof buf);
	for (size_t left = s->n; left;) {
		size_t k = left < sizeof buf ? left : sizeof buf;
		if (send(c, buf, k, MSG_NOSIGNAL) <= 0)
			break;
		left -= k;
	}
	close(c);
	return NULL;
}

static int get(size_t body, size_t cap, struct scs_http_resp *rs)
{
	struct srv s = { .n = body };
	s.fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof a;
	if (bind(s.fd, (struct sockaddr *)&a, sizeof a) || listen(s.fd, 1) ||
	    getsockname(s.fd, (struct sockaddr *)&a, &al))
		abort();
	pthread_t th;
	pthread_create(&th, NULL, serve, &s);
	char url[64];
	snprintf(url, sizeof url, "http://127.0.0.1:%u/x", (unsigned)ntohs(a.sin_port));
	struct scs_http_req rq;
	scs_http_req_init(&rq, "GET", url);
	rq.max_resp = cap;
	rq.timeout_s = 10;
	int r = scs_http_do(&rq, rs, NULL);
	pthread_join(th, NULL);
	close(s.fd);
	return r;
}

static void test_bounded_reply(void)
{
	struct scs_http_resp rs;
	CHECK_EQ(get(1000, 4096, &rs), 0);
	CHECK_EQ(rs.status, 200);
	CHECK_EQ(rs.len, 1000);
	CHECK_EQ(rs.retry_after, 7);
	scs_http_resp_free(&rs);
	CHECK_EQ(get(100000, 4096, &rs), -EFBIG);
	CHECK(rs.body == NULL);
}

int main(void)
{
	test_escape();
	test_file();
	test_list();
	test_errors_and_tokens();
	test_bounded_reply();
	return unit_done("http");
}
