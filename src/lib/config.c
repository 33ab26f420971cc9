/* config.c - XDG paths, atomic local files and the config file. */
#include "scs/config.h"
#include "scs/fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int scs_xdg_path(enum scs_xdg which, const char *sub, char *out, size_t cap)
{
	static const char *const env[] = { "XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME" };
	static const char *const dflt[] = { ".config", ".local/share", ".cache" };
	const char *base = getenv(env[which]);
	int n;
	if (base && base[0] == '/') {
		n = snprintf(out, cap, "%s/scsfs%s%s", base, sub ? "/" : "", sub ? sub : "");
	} else {
		const char *home = getenv("HOME");
		if (!home || home[0] != '/')
			return -ENOENT;
		n = snprintf(out, cap, "%s/%s/scsfs%s%s", home, dflt[which], sub ? "/" : "",
			     sub ? sub : "");
	}
	if (n < 0 || (size_t)n >= cap)
		return -ENAMETOOLONG;
	return 0;
}

int scs_mkdir_p(const char *path, mode_t mode)
{
	char buf[SCS_PATH_MAX];
	size_t n = strlen(path);
	if (n == 0 || n >= sizeof buf)
		return -ENAMETOOLONG;
	memcpy(buf, path, n + 1);
	for (char *p = buf + 1; ; p++) {
		if (*p == '/' || *p == '\0') {
			char c = *p;
			*p = '\0';
			if (mkdir(buf, mode) < 0 && errno != EEXIST)
				return -errno;
			*p = c;
			if (c == '\0')
				break;
		}
	}
	struct stat st;
	if (stat(path, &st) < 0)
		return -errno;
	return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}

static int write_all(int fd, const void *data, size_t len)
{
	const uint8_t *p = data;
	while (len) {
		ssize_t w = write(fd, p, len);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

static int write_atomic(const char *path, const void *data, size_t len, mode_t mode, int sync)
{
	char tmp[SCS_PATH_MAX], dir[SCS_PATH_MAX];
	if (snprintf(tmp, sizeof tmp, "%s.tmp-XXXXXX", path) >= (int)sizeof tmp)
		return -ENAMETOOLONG;
	int fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int rc = 0;
	if (fchmod(fd, mode) < 0)
		rc = -errno;
	if (rc == 0)
		rc = write_all(fd, data, len);
	if (rc == 0 && sync && fsync(fd) < 0)
		rc = -errno;
	if (close(fd) < 0 && rc == 0)
		rc = -errno;
	if (rc == 0 && rename(tmp, path) < 0)
		rc = -errno;
	if (rc < 0) {
		unlink(tmp);
		return rc;
	}
	if (!sync)
		return 0;
	snprintf(dir, sizeof dir, "%s", path);
	int dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		(void)fsync(dfd);
		close(dfd);
	}
	return 0;
}

int scs_local_write_atomic(const char *path, const void *data, size_t len, mode_t mode)
{
	return write_atomic(path, data, len, mode, 1);
}

int scs_local_replace(const char *path, const void *data, size_t len, mode_t mode)
{
	return write_atomic(path, data, len, mode, 0);
}

int scs_local_read(const char *path, size_t max, uint8_t **data, size_t *len)
{
	*data = NULL;
	*len = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -errno;
	return scs_fd_read_all(fd, max, data, len);
}

/* ---- config file ---- */

static int valid_key(const char *k)
{
	if (!*k || strlen(k) > 64)
		return 0;
	for (; *k; k++)
		if (!((*k >= 'a' && *k <= 'z') || (*k >= '0' && *k <= '9') || *k == '_'))
			return 0;
	return 1;
}

static int config_path(char *out, size_t cap, scs_err *err)
{
	int rc = scs_xdg_path(SCS_XDG_CONFIG, "config", out, cap);
	if (rc < 0)
		return scs_err_set(err, rc, "cannot find the config directory: set HOME or XDG_CONFIG_HOME");
	return 0;
}

/* Find the config file (path[SCS_PATH_MAX]) and read it; a missing file
 * is an empty one. */
static int load_config(char *path, char **text, scs_err *err)
{
	uint8_t *data;
	size_t len;
	int rc = config_path(path, SCS_PATH_MAX, err);
	if (rc < 0)
		return rc;
	rc = scs_local_read(path, SCS_CONFIG_MAX, &data, &len);
	if (rc == -ENOENT) {
		*text = strdup("");
		return *text ? 0 : -ENOMEM;
	}
	if (rc < 0)
		return scs_err_set(err, rc, "cannot read %s: %s", path, strerror(-rc));
	if (memchr(data, '\0', len)) {
		free(data);
		return scs_err_set(err, -EINVAL, "%s contains a NUL byte; fix or remove it", path);
	}
	*text = (char *)data;
	return 0;
}

/* Split one line into key and value (in place).  Returns 1 for a setting,
 * 0 for blank/comment, -1 for a malformed line. */
static int parse_line(char *line, char **key, char **val)
{
	while (*line == ' ' || *line == '\t')
		line++;
	if (*line == '\0' || *line == '#')
		return 0;
	char *eq = strchr(line, '=');
	if (!eq)
		return -1;
	char *ke = eq;
	while (ke > line && (ke[-1] == ' ' || ke[-1] == '\t'))
		ke--;
	*ke = '\0';
	char *v = eq + 1;
	while (*v == ' ' || *v == '\t')
		v++;
	char *ve = v + strlen(v);
	while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t' || ve[-1] == '\r'))
		ve--;
	*ve = '\0';
	*key = line;
	*val = v;
	return valid_key(line) ? 1 : -1;
}

int scs_config_get(const char *key, char *out, size_t cap, scs_err *err)
{
	char path[SCS_PATH_MAX];
	char *text;
	int rc = load_config(path, &text, err);
	if (rc < 0)
		return rc;
	rc = -ENOENT;
	unsigned lineno = 0;
	for (char *line = text, *next; line; line = next) {
		char *k, *v;
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		lineno++;
		int t = parse_line(line, &k, &v);
		if (t < 0) {
			rc = scs_err_set(err, -EINVAL, "%s: malformed line %u (expected `key = value`); fix it",
					 path, lineno);
			break;
		}
		if (t == 1 && strcmp(k, key) == 0) {
			if (strlen(v) >= cap) {
				rc = scs_err_set(err, -ENAMETOOLONG, "%s: value of %s is too long", path, key);
				break;
			}
			strcpy(out, v);
			rc = 0;   /* the last setting wins */
		}
	}
	free(text);
	return rc;
}

int scs_config_set(const char *key, const char *value, scs_err *err)
{
	if (!valid_key(key))
		return scs_err_set(err, -EINVAL, "invalid config key \"%s\"", key);
	if (value && (strchr(value, '\n') || strchr(value, '\r') || strlen(value) >= SCS_CONFIG_VALUE_MAX ||
		      value[0] == ' ' || value[0] == '\t' || !*value ||
		      value[strlen(value) - 1] == ' ' || value[strlen(value) - 1] == '\t'))
		return scs_err_set(err, -EINVAL, "invalid value for config key %s", key);
	char path[SCS_PATH_MAX], dir[SCS_PATH_MAX];
	char *text;
	int rc = load_config(path, &text, err);
	if (rc < 0)
		return rc;
	size_t cap = strlen(text) + strlen(key) + (value ? strlen(value) : 0) + 8;
	char *out = malloc(cap);
	if (!out) {
		free(text);
		return scs_err_set(err, -ENOMEM, "out of memory");
	}
	size_t n = 0;
	int done = 0;
	/* Copy every line, replacing the first setting of key and dropping later ones. */
	for (char *line = text; *line; ) {
		char *nl = strchr(line, '\n');
		size_t ll = nl ? (size_t)(nl - line) : strlen(line);
		char copy[SCS_CONFIG_VALUE_MAX + 128];
		int keep = 1;
		if (ll < sizeof copy) {
			memcpy(copy, line, ll);
			copy[ll] = '\0';
			char *k, *v;
			if (parse_line(copy, &k, &v) == 1 && strcmp(k, key) == 0) {
				keep = 0;
				if (value && !done)
					n += (size_t)sprintf(out + n, "%s = %s\n", key, value);
				done = 1;
			}
		}
		if (keep) {
			memcpy(out + n, line, ll);
			n += ll;
			out[n++] = '\n';
		}
		line += ll + (nl ? 1 : 0);
	}
	if (!done && value)
		n += (size_t)sprintf(out + n, "%s = %s\n", key, value);
	free(text);
	snprintf(dir, sizeof dir, "%s", path);
	char *slash = strrchr(dir, '/');
	*slash = '\0';
	rc = scs_mkdir_p(dir, 0700);
	if (rc == 0)
		rc = scs_local_write_atomic(path, out, n, 0600);
	free(out);
	if (rc < 0)
		return scs_err_set(err, rc, "cannot write %s: %s", path, strerror(-rc));
	return 0;
}
