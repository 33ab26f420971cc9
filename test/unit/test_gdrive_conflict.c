/* test_gdrive_conflict.c - the write-back uploader against the Drive
 * emulator (test/gdrive_emulator.py), through the back-end interface with a
 * fake conflict_name hook: an edit based on a version another writer has
 * replaced meanwhile is stored under the name the hook gives, and the other
 * writer's version stays. */
#include "scs/backend.h"
#include "scs/config.h"
#include "scs/gdrive.h"
#include "scs/http.h"
#include "unit.h"

#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char hook_path[256];
static int hook_calls;

static int fake_conflict_name(void *arg, const char *path, char *out, size_t cap)
{
	(void)arg;
	hook_calls++;
	snprintf(hook_path, sizeof hook_path, "%s", path);
	snprintf(out, cap, "%s.conflict", path);
	return 0;
}

static pid_t emu_pid;
static char endpoint[256];

static int start_emulator(const char *root)
{
	int p[2];
	if (pipe(p) < 0)
		return -1;
	emu_pid = fork();
	if (emu_pid == 0) {
		dup2(p[1], 1);
		close(p[0]);
		execlp("python3", "python3", "../gdrive_emulator.py", "--port", "0", "--root", root,
		       (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	FILE *f = fdopen(p[0], "r");
	char line[256] = "";
	if (!f || !fgets(line, sizeof line, f) || strncmp(line, "listening on ", 13))
		return -1;
	line[strcspn(line, "\n")] = '\0';
	snprintf(endpoint, sizeof endpoint, "%s", line + 13);
	return 0;      /* the pipe stays open: the emulator may keep writing */
}

static char *control(const char *body)
{
	char url[sizeof endpoint + 16];
	snprintf(url, sizeof url, "%s/__control", endpoint);
	const char *hdrs[] = { "Content-Type: application/json", NULL };
	struct scs_http_req rq;
	struct scs_http_resp rs;
	scs_err err = { 0 };
	scs_http_req_init(&rq, "POST", url);
	rq.headers = hdrs;
	rq.body = body;
	rq.body_len = strlen(body);
	if (scs_http_do(&rq, &rs, &err) < 0 || rs.status != 200)
		return NULL;
	char *out = strndup((char *)rs.body, rs.len);
	scs_http_resp_free(&rs);
	return out;
}

static int put(scs_backend *be, const char *path, const char *data, int flags)
{
	scs_obj *o;
	int r = scs_be_open(be, path, O_RDWR | flags, 0644, &o);
	if (r < 0)
		return r;
	ssize_t w = scs_obj_pwrite(o, data, strlen(data), 0);
	r = scs_obj_flush(o);
	int c = scs_obj_close(o);
	return w < 0 ? (int)w : r ? r : c;
}

static int wait_idle(const char *remote)
{
	char dir[SCS_PATH_MAX];
	scs_gdrive_cache_dir(remote, dir, sizeof dir);
	for (int i = 0; i < 300; i++) {
		struct scs_gdrive_status st;
		if (scs_gdrive_status_read(dir, &st) == 0 && st.files == 0 && st.last_sync)
			return 0;
		struct timespec ts = { 0, 100 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	return -1;
}

static int content_is(scs_backend *be, const char *path, const char *want)
{
	uint8_t *data = NULL;
	size_t len = 0;
	int ok = scs_be_read_file(be, path, 4096, &data, &len) == 0 && len == strlen(want) &&
		 !memcmp(data, want, len);
	free(data);
	return ok;
}

/* Drive (as B sees it) has want at path within 30 s. */
static int lands(scs_backend *be, const char *path, const char *want)
{
	for (int i = 0; i < 300; i++) {
		if (content_is(be, path, want))
			return 1;
		struct timespec ts = { 0, 100 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	return 0;
}

int main(void)
{
	char *tmp = unit_tmpdir("gdrive_conflict");
	char p[4096], cache_a[4096], cache_b[4096];
	snprintf(p, sizeof p, "%s/drive", tmp);
	mkdir(p, 0700);
	if (start_emulator(p) < 0) {
		fprintf(stderr, "cannot start the Drive emulator\n");
		return 1;
	}
	setenv("SCSFS_GDRIVE_ENDPOINT", endpoint, 1);
	snprintf(p, sizeof p, "%s/config", tmp);
	setenv("XDG_CONFIG_HOME", p, 1);
	snprintf(cache_a, sizeof cache_a, "%s/cache-a", tmp);
	snprintf(cache_b, sizeof cache_b, "%s/cache-b", tmp);

	/* signed in as the emulator's user */
	char *tok = control("{\"action\":\"issue_token\",\"client_id\":\"unit-client\"}");
	json_t *j = tok ? json_loads(tok, 0, NULL) : NULL;
	const char *rt = json_string_value(json_object_get(j, "refresh_token"));
	CHECK(rt != NULL);
	snprintf(p, sizeof p, "%s/config/scsfs", tmp);
	scs_mkdir_p(p, 0700);
	snprintf(p, sizeof p, "%s/config/scsfs/gdrive.json", tmp);
	char cred[1024];
	snprintf(cred, sizeof cred, "{\"client_id\":\"unit-client\",\"client_secret\":\"s\","
		 "\"refresh_token\":\"%s\"}", rt ? rt : "");
	CHECK_EQ(scs_local_write_atomic(p, cred, strlen(cred), 0600), 0);
	json_decref(j);
	free(tok);

	scs_err err = { 0 };
	const char *remote = "gdrive:/conflicts";
	CHECK_EQ(scs_gdrive_mkpath(remote, &err), 0);

	/* A: the write-back cache of a mount, with the fake hook */
	setenv("XDG_CACHE_HOME", cache_a, 1);
	struct scs_backend_opts o = { .write_back = 1, .upload_delay = 0.05 };
	scs_backend_set_opts(&o);
	scs_backend *a = NULL, *b = NULL;
	CHECK_EQ(scs_backend_open(remote, &a, &err), 0);
	if (!a) {
		fprintf(stderr, "%s\n", err.msg);
		kill(emu_pid, SIGTERM);
		return 1;
	}
	a->hooks.conflict_name = fake_conflict_name;
	CHECK_EQ(scs_be_start(a, &err), 0);
	CHECK_EQ(put(a, "f", "one", O_CREAT), 0);
	CHECK_EQ(wait_idle(remote), 0);

	/* A opens it (its edit is based on "one")... */
	scs_obj *ao;
	CHECK_EQ(scs_be_open(a, "f", O_RDWR, 0, &ao), 0);
	char buf[8] = "";
	CHECK_EQ(scs_obj_pread(ao, buf, 3, 0), 3);

	/* ...B, another machine without the write-back cache, replaces it... */
	setenv("XDG_CACHE_HOME", cache_b, 1);
	struct scs_backend_opts none = { 0 };
	scs_backend_set_opts(&none);
	CHECK_EQ(scs_backend_open(remote, &b, &err), 0);
	CHECK_EQ(put(b, "f", "other", O_TRUNC), 0);
	CHECK(content_is(b, "f", "other"));

	/* ...then A's edit lands: kept as the conflict copy, B's stays */
	CHECK_EQ(scs_obj_pwrite(ao, "ours!", 5, 0), 5);
	CHECK_EQ(scs_obj_flush(ao), 0);
	CHECK_EQ(scs_obj_close(ao), 0);
	CHECK(lands(b, "f.conflict", "ours!"));
	CHECK_EQ(hook_calls, 1);
	CHECK(!strcmp(hook_path, "f"));
	CHECK(content_is(b, "f", "other"));

	/* no conflict when nobody else wrote: a plain replace */
	CHECK_EQ(put(a, "g", "first", O_CREAT), 0);
	CHECK(lands(b, "g", "first"));
	CHECK_EQ(put(a, "g", "second", 0), 0);
	CHECK(lands(b, "g", "second"));
	CHECK_EQ(hook_calls, 1);

	scs_backend_close(a);
	scs_backend_close(b);
	kill(emu_pid, SIGTERM);
	waitpid(emu_pid, NULL, 0);
	free(tmp);
	return unit_done("gdrive_conflict");
}
