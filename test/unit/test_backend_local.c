/* test_backend_local.c - the local: back end, every operation. */
#include "unit.h"

#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "scs/backend.h"

struct seen {
	int n;
	char names[16][64];
	uint64_t sizes[16];
	uint32_t modes[16];
};

static int collect(void *arg, const char *name, const struct scs_attr *a)
{
	struct seen *s = arg;
	if (s->n < 16) {
		snprintf(s->names[s->n], sizeof s->names[0], "%s", name);
		s->sizes[s->n] = a->size;
		s->modes[s->n] = a->mode;
	}
	s->n++;
	return 0;
}

static int stop_at_first(void *arg, const char *name, const struct scs_attr *a)
{
	(void)name; (void)a;
	++*(int *)arg;
	return 42;
}

static int find(const struct seen *s, const char *name)
{
	for (int i = 0; i < s->n && i < 16; i++)
		if (!strcmp(s->names[i], name))
			return i;
	return -1;
}

static void test_open_errors(const char *dir)
{
	scs_backend *be = NULL;
	scs_err err = {0};
	char p[PATH_MAX];

	snprintf(p, sizeof p, "local:%s/missing", dir);
	CHECK_EQ(scs_backend_open(p, &be, &err), -ENOENT);
	CHECK(strstr(err.msg, "does not exist") != NULL);
	CHECK(be == NULL);

	CHECK_EQ(scs_backend_open("s3:bucket/x", &be, &err), -EINVAL);
	CHECK(strstr(err.msg, "use local:") != NULL);
	CHECK_EQ(scs_backend_open("ftp://x", &be, &err), -EINVAL);
	CHECK(strstr(err.msg, "unknown remote") != NULL);
	CHECK_EQ(scs_backend_open("local:relative/path", &be, &err), -EINVAL);
	CHECK_EQ(scs_backend_open("", &be, &err), -EINVAL);

	/* a file, not a directory */
	snprintf(p, sizeof p, "%s/plainfile", dir);
	FILE *f = fopen(p, "w");
	fputs("x", f);
	fclose(f);
	CHECK_EQ(scs_backend_open(p, &be, &err), -ENOTDIR);
	unlink(p);

	/* ~ expansion from $HOME */
	char *oldhome = getenv("HOME") ? strdup(getenv("HOME")) : NULL;
	setenv("HOME", dir, 1);
	CHECK_EQ(scs_backend_open("local:~", &be, &err), 0);
	if (be) {
		CHECK(!strcmp(be->remote, "local:~"));
		CHECK(!strcmp(be->ops->scheme, "local"));
		scs_backend_close(be);
	}
	mkdir(strcat(strcpy(p, dir), "/sub"), 0700);
	CHECK_EQ(scs_backend_open("~/sub", &be, &err), 0);
	scs_backend_close(be);
	rmdir(p);
	if (oldhome) {
		setenv("HOME", oldhome, 1);
		free(oldhome);
	}
}

static void test_namespace(scs_backend *be, const char *dir)
{
	struct scs_attr a;
	CHECK_EQ(scs_be_stat(be, "", &a), 0);
	CHECK(S_ISDIR(a.mode));
	CHECK_EQ(scs_be_stat(be, "nope", &a), -ENOENT);

	CHECK_EQ(scs_be_mkdir(be, "d", 0700), 0);
	CHECK_EQ(scs_be_mkdir(be, "d", 0700), -EEXIST);
	CHECK_EQ(scs_be_mkdir(be, "d/e", 0755), 0);
	CHECK_EQ(scs_be_write_file(be, "d/f", "hello", 5), 0);
	CHECK_EQ(scs_be_stat(be, "d/f", &a), 0);
	CHECK_EQ(a.size, 5);
	CHECK(S_ISREG(a.mode));
	CHECK_EQ(a.nlink, 1);

	/* symlinks: stored, read back, never followed by stat */
	CHECK_EQ(scs_be_symlink(be, "S1target", "d/l"), 0);
	CHECK_EQ(scs_be_stat(be, "d/l", &a), 0);
	CHECK(S_ISLNK(a.mode));
	char buf[64];
	CHECK_EQ(scs_be_readlink(be, "d/l", buf, sizeof buf), 8);
	CHECK(!strcmp(buf, "S1target"));
	CHECK_EQ(scs_be_readlink(be, "d/l", buf, 8), -ENAMETOOLONG);
	CHECK_EQ(scs_be_readlink(be, "d/f", buf, sizeof buf), -EINVAL);

	/* hard links */
	CHECK_EQ(scs_be_link(be, "d/f", "d/g"), 0);
	CHECK_EQ(scs_be_stat(be, "d/g", &a), 0);
	CHECK_EQ(a.nlink, 2);
	CHECK_EQ(scs_be_link(be, "d/f", "d/g"), -EEXIST);

	/* list with attributes, and early stop */
	struct seen s = {0};
	CHECK_EQ(scs_be_list(be, "d", collect, &s), 0);
	CHECK_EQ(s.n, 4);
	int i = find(&s, "f");
	CHECK(i >= 0);
	if (i >= 0) {
		CHECK_EQ(s.sizes[i], 5);
		CHECK(S_ISREG(s.modes[i]));
	}
	i = find(&s, "e");
	CHECK(i >= 0 && S_ISDIR(s.modes[i]));
	i = find(&s, "l");
	CHECK(i >= 0 && S_ISLNK(s.modes[i]));
	int calls = 0;
	CHECK_EQ(scs_be_list(be, "d", stop_at_first, &calls), 42);
	CHECK_EQ(calls, 1);
	CHECK_EQ(scs_be_list(be, "d/f", collect, &s), -ENOTDIR);
	CHECK_EQ(scs_be_list(be, "zz", collect, &s), -ENOENT);

	/* rename, with flags */
	CHECK_EQ(scs_be_write_file(be, "d/h", "abc", 3), 0);
	CHECK_EQ(scs_be_rename(be, "d/h", "d/f", RENAME_NOREPLACE), -EEXIST);
	CHECK_EQ(scs_be_rename(be, "d/h", "d/f", RENAME_EXCHANGE), 0);
	CHECK_EQ(scs_be_stat(be, "d/f", &a), 0);
	CHECK_EQ(a.size, 3);
	CHECK_EQ(scs_be_rename(be, "d/h", "d/f", 0), 0);      /* replaces */
	CHECK_EQ(scs_be_stat(be, "d/f", &a), 0);
	CHECK_EQ(a.size, 5);
	CHECK_EQ(scs_be_stat(be, "d/h", &a), -ENOENT);

	/* metadata */
	CHECK_EQ(scs_be_chmod(be, "d/f", 0640), 0);
	CHECK_EQ(scs_be_stat(be, "d/f", &a), 0);
	CHECK_EQ(a.mode & 07777, 0640);
	CHECK_EQ(scs_be_chown(be, "d/f", (uint32_t)-1, (uint32_t)-1), 0);
	CHECK_EQ(scs_be_chown(be, "d/f", getuid(), getgid()), 0);
	struct timespec ts[2] = { { 1000, 5 }, { 2000, 7 } };
	CHECK_EQ(scs_be_utimens(be, "d/f", ts), 0);
	CHECK_EQ(scs_be_stat(be, "d/f", &a), 0);
	CHECK_EQ(a.atime.tv_sec, 1000);
	CHECK_EQ(a.mtime.tv_sec, 2000);
	CHECK_EQ(a.mtime.tv_nsec, 7);
	/* utimens on a symlink changes the link, not a target */
	CHECK_EQ(scs_be_utimens(be, "d/l", ts), 0);
	struct statvfs sv;
	CHECK_EQ(scs_be_statfs(be, &sv), 0);
	CHECK(sv.f_bsize > 0);

	/* removal */
	CHECK_EQ(scs_be_rmdir(be, "d"), -ENOTEMPTY);
	CHECK_EQ(scs_be_unlink(be, "d/e"), -EISDIR);
	CHECK_EQ(scs_be_rmdir(be, "d/e"), 0);
	CHECK_EQ(scs_be_unlink(be, "d/l"), 0);
	CHECK_EQ(scs_be_unlink(be, "d/g"), 0);
	CHECK_EQ(scs_be_unlink(be, "d/f"), 0);
	CHECK_EQ(scs_be_unlink(be, "d/f"), -ENOENT);
	CHECK_EQ(scs_be_rmdir(be, "d"), 0);

	/* a symlink planted in the folder is never followed to open objects */
	char p[PATH_MAX];
	snprintf(p, sizeof p, "%s/esc", dir);
	CHECK_EQ(symlink("/etc", p), 0);
	scs_obj *o = NULL;
	CHECK(scs_be_open(be, "esc/passwd", O_RDONLY, 0, &o) < 0);
	CHECK(o == NULL);
	CHECK(scs_be_open(be, "esc", O_RDONLY, 0, &o) < 0);
	uint8_t *data = NULL;
	size_t len = 0;
	CHECK(scs_be_read_file(be, "esc/passwd", 1 << 20, &data, &len) < 0);
	CHECK(data == NULL);
	unlink(p);
}

static void test_objects(scs_backend *be)
{
	scs_obj *o = NULL;
	CHECK_EQ(scs_be_open(be, "obj", O_RDWR, 0600, &o), -ENOENT);
	CHECK_EQ(scs_be_open(be, "obj", O_RDWR | O_CREAT | O_EXCL, 0600, &o), 0);
	if (!o)
		return;
	scs_obj *o2 = NULL;
	CHECK_EQ(scs_be_open(be, "obj", O_RDWR | O_CREAT | O_EXCL, 0600, &o2), -EEXIST);

	static uint8_t big[300000], back[300000];
	for (size_t i = 0; i < sizeof big; i++)
		big[i] = (uint8_t)(i * 31 + 7);
	CHECK_EQ(scs_obj_pwrite(o, big, sizeof big, 100), (ssize_t)sizeof big);
	CHECK_EQ(scs_obj_pread(o, back, sizeof back, 100), (ssize_t)sizeof back);
	CHECK_MEM(back, big, sizeof big);
	/* short read at EOF, 0 past it */
	CHECK_EQ(scs_obj_pread(o, back, 1000, 100 + sizeof big - 10), 10);
	CHECK_EQ(scs_obj_pread(o, back, 1000, 1000000), 0);
	/* the gap before 100 reads as zeros */
	CHECK_EQ(scs_obj_pread(o, back, 100, 0), 100);
	CHECK(back[0] == 0 && back[99] == 0);

	struct scs_attr a;
	CHECK_EQ(scs_obj_fstat(o, &a), 0);
	CHECK_EQ(a.size, 100 + sizeof big);
	int r = scs_obj_fallocate(o, 0, 1 << 20);
	CHECK(r == 0 || r == -EOPNOTSUPP);
	CHECK_EQ(scs_obj_fstat(o, &a), 0);
	CHECK_EQ(a.size, r == 0 ? 1 << 20 : 100 + sizeof big);
	CHECK_EQ(scs_obj_ftruncate(o, 50), 0);
	CHECK_EQ(scs_obj_fstat(o, &a), 0);
	CHECK_EQ(a.size, 50);
	CHECK_EQ(scs_obj_fsync(o, 0), 0);
	CHECK_EQ(scs_obj_fsync(o, 1), 0);
	CHECK_EQ(scs_obj_close(o), 0);

	/* read-only objects refuse writes */
	CHECK_EQ(scs_be_open(be, "obj", O_RDONLY, 0, &o), 0);
	CHECK_EQ(scs_obj_pwrite(o, "x", 1, 0), -EBADF);
	CHECK_EQ(scs_obj_close(o), 0);
	/* O_TRUNC */
	CHECK_EQ(scs_be_open(be, "obj", O_RDWR | O_TRUNC, 0, &o), 0);
	CHECK_EQ(scs_obj_fstat(o, &a), 0);
	CHECK_EQ(a.size, 0);
	CHECK_EQ(scs_obj_close(o), 0);
	CHECK_EQ(scs_be_unlink(be, "obj"), 0);
}

static int count_entries(void *arg, const char *name, const struct scs_attr *a)
{
	(void)a;
	struct seen *s = arg;
	collect(s, name, a);
	return 0;
}

static void test_whole_files(scs_backend *be)
{
	uint8_t *data = NULL;
	size_t len = 0;
	CHECK_EQ(scs_be_read_file(be, "w", 100, &data, &len), -ENOENT);
	CHECK_EQ(scs_be_write_file(be, "w", "first", 5), 0);
	CHECK_EQ(scs_be_read_file(be, "w", 100, &data, &len), 0);
	CHECK_EQ(len, 5);
	CHECK(data && !memcmp(data, "first", 5));
	free(data);
	/* write_file replaces atomically, leaving no temp object behind */
	CHECK_EQ(scs_be_write_file(be, "w", "second!", 7), 0);
	CHECK_EQ(scs_be_read_file(be, "w", 100, &data, &len), 0);
	CHECK_EQ(len, 7);
	CHECK(data && !memcmp(data, "second!", 7));
	free(data);
	CHECK_EQ(scs_be_read_file(be, "w", 6, &data, &len), -EFBIG);
	CHECK(data == NULL);
	CHECK_EQ(scs_be_read_file(be, "w", 7, &data, &len), 0);
	free(data);
	/* empty objects */
	CHECK_EQ(scs_be_write_file(be, "empty", "", 0), 0);
	CHECK_EQ(scs_be_read_file(be, "empty", 10, &data, &len), 0);
	CHECK_EQ(len, 0);
	free(data);

	/* create_file never replaces */
	CHECK_EQ(scs_be_create_file(be, "c", "one", 3), 0);
	CHECK_EQ(scs_be_create_file(be, "c", "two", 3), -EEXIST);
	CHECK_EQ(scs_be_read_file(be, "c", 100, &data, &len), 0);
	CHECK(len == 3 && data && !memcmp(data, "one", 3));
	free(data);
	CHECK_EQ(scs_be_create_file(be, "nodir/c", "x", 1), -ENOENT);
	CHECK_EQ(scs_be_write_file(be, "nodir/c", "x", 1), -ENOENT);

	struct seen s = {0};
	CHECK_EQ(scs_be_list(be, "", count_entries, &s), 0);
	CHECK_EQ(s.n, 3);             /* w, empty, c: no temp objects left */
	for (int i = 0; i < s.n && i < 16; i++)
		CHECK(!scs_is_tmp_name(s.names[i]));
	CHECK(scs_is_tmp_name("abc" SCS_TMP_INFIX "0123456789abcdef"));
	CHECK(!scs_is_tmp_name("abc" SCS_TMP_INFIX "0123456789abcdeg"));
	CHECK(!scs_is_tmp_name("abc" SCS_TMP_INFIX "0123"));
	CHECK(!scs_is_tmp_name(SCS_TMP_INFIX "0123456789abcdef"));
	CHECK(!scs_is_tmp_name("abcdef"));
	scs_be_unlink(be, "w");
	scs_be_unlink(be, "empty");
	scs_be_unlink(be, "c");
}

int main(void)
{
	char *dir = unit_tmpdir("backend");
	test_open_errors(dir);

	scs_backend *be = NULL;
	scs_err err = {0};
	char remote[PATH_MAX];
	snprintf(remote, sizeof remote, "local:%s", dir);
	CHECK_EQ(scs_backend_open(remote, &be, &err), 0);
	if (!be)
		return unit_done("backend_local");
	test_namespace(be, dir);
	test_objects(be);
	test_whole_files(be);
	scs_backend_close(be);
	rmdir(dir);
	free(dir);
	return unit_done("backend_local");
}
