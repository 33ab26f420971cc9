/* auth.c - `scsctl auth gdrive [--client-id ID --client-secret S] [--device]`:
 * sign in to Google Drive and store the refresh token (0600) in
 * $XDG_CONFIG_HOME/scsfs/gdrive.json. */
#include "scsctl.h"
#include "scs/config.h"
#include "scs/crypto.h"
#include "scs/oauth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *read_secret_file(const char *path, scs_err *err)
{
	uint8_t *data;
	size_t len;
	int r = scs_local_read(path, 4096, &data, &len);
	if (r < 0) {
		scs_err_set(err, r, "cannot read the client secret from %s: %s", path, strerror(-r));
		return NULL;
	}
	while (len && (data[len - 1] == '\n' || data[len - 1] == '\r' || data[len - 1] == ' '))
		data[--len] = '\0';
	if (!len || memchr(data, '\0', len)) {
		scs_cleanse(data, len);
		free(data);
		scs_err_set(err, -EINVAL, "%s holds no client secret; put the secret on its first line",
			    path);
		return NULL;
	}
	return (char *)data;
}

int auth_main(int argc, char **argv)
{
	static const char usage[] = "auth gdrive [--client-id ID --client-secret S] [--device]";
	const char *id = NULL;
	char *secret = NULL;
	int device = 0;
	scs_err err = { 0 };
	if (argc < 2 || strcmp(argv[1], "gdrive"))
		return scsctl_usage(usage);
	for (int i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "--device")) {
			device = 1;
		} else if (!strcmp(argv[i], "--client-id") && i + 1 < argc) {
			id = argv[++i];
		} else if (!strcmp(argv[i], "--client-secret") && i + 1 < argc) {
			free(secret);
			secret = strdup(argv[++i]);
			/* Hide it from ps as far as we can. */
			scs_cleanse(argv[i], strlen(argv[i]));
		} else if (!strcmp(argv[i], "--client-secret-file") && i + 1 < argc) {
			free(secret);
			if (!(secret = read_secret_file(argv[++i], &err)))
				return scsctl_fail(&err);
		} else {
			free(secret);
			return scsctl_usage(usage);
		}
	}
	const char *sf = getenv("SCSFS_GDRIVE_CLIENT_SECRET_FILE");
	if (!secret && sf && *sf && !(secret = read_secret_file(sf, &err)))
		return scsctl_fail(&err);

	struct scs_oauth_cred c = { 0 }, old;
	int have_old = scs_oauth_load(&old, NULL) == 0;
	c.client_id = strdup(id ? id : have_old ? old.client_id : "");
	c.client_secret = secret ? secret : strdup(have_old && !id ? old.client_secret : "");
	if (have_old)
		scs_oauth_cred_free(&old);
	if (!c.client_id || !c.client_secret) {
		scs_oauth_cred_free(&c);
		return scsctl_failf("out of memory");
	}
	if (!c.client_id[0] || !c.client_secret[0]) {
		scs_oauth_cred_free(&c);
		return scsctl_failf("give --client-id ID and --client-secret S (or "
				    "SCSFS_GDRIVE_CLIENT_SECRET_FILE) from an OAuth client of type "
				    "\"Desktop app\" in the Google Cloud console; see README "
				    "\"Using Google Drive\"");
	}
	struct scs_gdrive_endpoints e;
	scs_gdrive_endpoints(&e);
	int r = device ? scs_oauth_device_flow(&e, &c, stdout, &err)
		       : scs_oauth_loopback_flow(&e, &c, stdout, 600, &err);
	if (r == 0)
		r = scs_oauth_save(&c, &err);
	scs_oauth_cred_free(&c);
	if (r < 0)
		return scsctl_fail(&err);
	printf("signed in to Google Drive; scsfs can now use gdrive: folders\n");
	return 0;
}
