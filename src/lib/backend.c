/* backend.c - choosing a back end from a REMOTE string. */
#include "scs/backend.h"
#include "scs/gdrive.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct scs_backend_opts be_opts;

void scs_backend_set_opts(const struct scs_backend_opts *o)
{
	be_opts = *o;
}

void scs_backend_get_opts(struct scs_backend_opts *o)
{
	*o = be_opts;
}

int scs_is_tmp_name(const char *name)
{
	const char *p = strstr(name, SCS_TMP_INFIX);
	if (!p || p == name)
		return 0;
	p += sizeof SCS_TMP_INFIX - 1;
	size_t n = strlen(p);
	if (n != 16)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f')))
			return 0;
	return 1;
}

static int open_local(const char *spec, const char *remote, scs_backend **out, scs_err *err)
{
	char path[PATH_MAX];
	if (spec[0] == '~' && (spec[1] == '/' || spec[1] == '\0')) {
		const char *home = getenv("HOME");
		if (!home || !*home)
			return scs_err_set(err, -EINVAL,
				"cannot expand '~' in %s: $HOME is not set; give an absolute path", remote);
		if ((size_t)snprintf(path, sizeof path, "%s%s", home, spec + 1) >= sizeof path)
			return scs_err_set(err, -ENAMETOOLONG, "path of %s is too long", remote);
	} else if (spec[0] == '/') {
		if (strlen(spec) >= sizeof path)
			return scs_err_set(err, -ENAMETOOLONG, "path of %s is too long", remote);
		strcpy(path, spec);
	} else {
		return scs_err_set(err, -EINVAL,
			"remote %s: local: needs an absolute path (local:/path or local:~/path)", remote);
	}
	int r = scs_backend_local_open(path, out, err);
	if (r < 0)
		return r;
	free((*out)->remote);
	(*out)->remote = strdup(remote);
	if (!(*out)->remote) {
		scs_backend_close(*out);
		*out = NULL;
		return scs_err_set(err, -ENOMEM, "out of memory");
	}
	return 0;
}

int scs_backend_open(const char *remote, scs_backend **out, scs_err *err)
{
	*out = NULL;
	if (!remote || !*remote)
		return scs_err_set(err, -EINVAL,
			"no remote given; pass REMOTE (local:/path) or set a default with `scsctl init`");
	if (strncmp(remote, "local:", 6) == 0)
		return open_local(remote + 6, remote, out, err);
	if (remote[0] == '/' || (remote[0] == '~' && (remote[1] == '/' || !remote[1])))
		return open_local(remote, remote, out, err);
	if (strncmp(remote, "gdrive:", 7) == 0)
		return scs_backend_gdrive_open(remote + 7, remote, out, err);
	return scs_err_set(err, -EINVAL,
		"unknown remote '%s'; use local:/path/to/folder (or an absolute path)", remote);
}

void scs_backend_close(scs_backend *be)
{
	if (!be)
		return;
	char *remote = be->remote;
	be->ops->close(be);
	free(remote);
}
