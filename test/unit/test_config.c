/* test_config.c - XDG paths, atomic local files, the config file. */
#include "unit.h"

#include "scs/config.h"

#include <errno.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

static char *tmp;

static void test_xdg(void)
{
	char out[SCS_PATH_MAX];
	setenv("HOME", "/home/u", 1);
	unsetenv("XDG_CONFIG_HOME");
	unsetenv("XDG_DATA_HOME");
	unsetenv("XDG_CACHE_HOME");
	CHECK_EQ(scs_xdg_path(SCS_XDG_CONFIG, "config", out, sizeof out), 0);
	CHECK(strcmp(out, "/home/u/.config/scsfs/config") == 0);
	CHECK_EQ(scs_xdg_path(SCS_XDG_DATA, NULL, out, sizeof out), 0);
	CHECK(strcmp(out, "/home/u/.local/share/scsfs") == 0);
	CHECK_EQ(scs_xdg_path(SCS_XDG_CACHE, "x", out, sizeof out), 0);
	CHECK(strcmp(out, "/home/u/.cache/scsfs/x") == 0);
	setenv("XDG_DATA_HOME", "/xdg/data", 1);
	CHECK_EQ(scs_xdg_path(SCS_XDG_DATA, "groups", out, sizeof out), 0);
	CHECK(strcmp(out, "/xdg/data/scsfs/groups") == 0);
	/* A relative XDG variable is ignored, as the spec says. */
	setenv("XDG_DATA_HOME", "relative/data", 1);
	CHECK_EQ(scs_xdg_path(SCS_XDG_DATA, NULL, out, sizeof out), 0);
	CHECK(strcmp(out, "/home/u/.local/share/scsfs") == 0);
	unsetenv("XDG_DATA_HOME");
	unsetenv("HOME");
	CHECK_EQ(scs_xdg_path(SCS_XDG_DATA, NULL, out, sizeof out), -ENOENT);
	setenv("HOME", "/home/u", 1);
	char small[10];
	CHECK_EQ(scs_xdg_path(SCS_XDG_DATA, NULL, small, sizeof small), -ENAMETOOLONG);
}

static void test_files(void)
{
	char dir[4096], path[4200];
	snprintf(dir, sizeof dir, "%s/a/b/c", tmp);
	CHECK_EQ(scs_mkdir_p(dir, 0700), 0);
	CHECK_EQ(scs_mkdir_p(dir, 0700), 0);             /* existing is fine */
	struct stat st;
	CHECK(stat(dir, &st) == 0 && S_ISDIR(st.st_mode) && (st.st_mode & 0777) == 0700);
	snprintf(path, sizeof path, "%s/f", dir);
	CHECK_EQ(scs_local_write_atomic(path, "hello", 5, 0600), 0);
	CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600 && st.st_size == 5);
	CHECK_EQ(scs_local_write_atomic(path, "bye", 3, 0640), 0);   /* replaces */
	uint8_t *d;
	size_t n;
	CHECK_EQ(scs_local_read(path, 100, &d, &n), 0);
	CHECK(n == 3 && memcmp(d, "bye", 4) == 0);           /* NUL-terminated */
	free(d);
	CHECK_EQ(scs_local_read(path, 2, &d, &n), -EFBIG);
	CHECK(d == NULL);
	CHECK_EQ(scs_local_read(dir, 100, &d, &n), -EINVAL);
	CHECK_EQ(scs_mkdir_p(path, 0700), -ENOTDIR);
	/* No temp file is left beside it. */
	char cmd[4400];
	snprintf(cmd, sizeof cmd, "test $(ls -A '%s' | wc -l) -eq 1", dir);
	CHECK_EQ(system(cmd), 0);
}

static void test_config(void)
{
	char cfgdir[4096], cfg[4200], val[SCS_CONFIG_VALUE_MAX];
	scs_err err = { 0 };
	snprintf(cfgdir, sizeof cfgdir, "%s/config", tmp);
	setenv("XDG_CONFIG_HOME", cfgdir, 1);
	snprintf(cfg, sizeof cfg, "%s/scsfs/config", cfgdir);

	CHECK_EQ(scs_config_get("default_remote", val, sizeof val, &err), -ENOENT);
	CHECK_EQ(scs_config_set("default_remote", "local:/srv/a", &err), 0);
	struct stat st;
	CHECK(stat(cfg, &st) == 0 && (st.st_mode & 0777) == 0600);
	CHECK_EQ(scs_config_get("default_remote", val, sizeof val, &err), 0);
	CHECK(strcmp(val, "local:/srv/a") == 0);

	/* Hand-edited file: comments and other keys survive a rewrite. */
	FILE *f = fopen(cfg, "w");
	fputs("# my settings\n\n  default_remote\t=  local:/old path  \nother_key = 7\n", f);
	fclose(f);
	CHECK_EQ(scs_config_get("default_remote", val, sizeof val, &err), 0);
	CHECK(strcmp(val, "local:/old path") == 0);
	CHECK_EQ(scs_config_get("other_key", val, sizeof val, &err), 0);
	CHECK(strcmp(val, "7") == 0);
	CHECK_EQ(scs_config_set("default_remote", "local:/new", &err), 0);
	uint8_t *d;
	size_t n;
	CHECK_EQ(scs_local_read(cfg, 4096, &d, &n), 0);
	CHECK(strcmp((char *)d, "# my settings\n\ndefault_remote = local:/new\nother_key = 7\n") == 0);
	free(d);
	CHECK_EQ(scs_config_set("new_key", "x", &err), 0);
	CHECK_EQ(scs_config_get("new_key", val, sizeof val, &err), 0);
	CHECK(strcmp(val, "x") == 0);
	CHECK_EQ(scs_config_set("new_key", NULL, &err), 0);   /* removal */
	CHECK_EQ(scs_config_get("new_key", val, sizeof val, &err), -ENOENT);
	CHECK_EQ(scs_config_get("default_remote", val, sizeof val, &err), 0);
	CHECK(strcmp(val, "local:/new") == 0);

	/* Invalid keys and values are refused. */
	CHECK_EQ(scs_config_set("Bad Key", "x", &err), -EINVAL);
	CHECK_EQ(scs_config_set("k", "two\nlines", &err), -EINVAL);
	CHECK_EQ(scs_config_set("k", " padded", &err), -EINVAL);
	CHECK_EQ(scs_config_set("k", "", &err), -EINVAL);
	char small[4];
	CHECK_EQ(scs_config_get("default_remote", small, sizeof small, &err), -ENAMETOOLONG);

	/* A malformed line is reported with its number. */
	f = fopen(cfg, "a");
	fputs("this line has no equals sign\n", f);
	fclose(f);
	CHECK_EQ(scs_config_get("default_remote", val, sizeof val, &err), -EINVAL);
	CHECK(strstr(err.msg, "line 5") != NULL);
}

int main(void)
{
	tmp = unit_tmpdir("config");
	test_xdg();
	test_files();
	test_config();
	return unit_done("config");
}
