/* fileio.c - whole-file reads shared by the local back end and the
 * per-user state files. */
#include "scs/fileio.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

int scs_fd_read_all(int fd, size_t max, uint8_t **data, size_t *len)
{
	*data = NULL;
	*len = 0;
	struct stat st;
	int rc = 0;
	uint8_t *buf = NULL;
	if (fstat(fd, &st) < 0) {
		rc = -errno;
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = -EINVAL;
		goto out;
	}
	if ((uint64_t)st.st_size > max) {
		rc = -EFBIG;
		goto out;
	}
	/* Sized for what fstat says, plus one byte to notice growth; grows up
	 * to max + 1 if the file is being appended to meanwhile. */
	size_t cap = (size_t)st.st_size + 1, n = 0;
	buf = malloc(cap);
	if (!buf) {
		rc = -ENOMEM;
		goto out;
	}
	for (;;) {
		ssize_t r = read(fd, buf + n, cap - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = -errno;
			goto out;
		}
		if (r == 0)
			break;
		n += (size_t)r;
		if (n > max) {
			rc = -EFBIG;
			goto out;
		}
		if (n == cap) {
			size_t ncap = cap * 2 > max + 1 ? max + 1 : cap * 2;
			uint8_t *nb = realloc(buf, ncap + 1);
			if (!nb) {
				rc = -ENOMEM;
				goto out;
			}
			buf = nb;
			cap = ncap;
		}
	}
	if (n == cap) {              /* room for the terminating NUL */
		uint8_t *nb = realloc(buf, cap + 1);
		if (!nb) {
			rc = -ENOMEM;
			goto out;
		}
		buf = nb;
	}
	buf[n] = '\0';
	*data = buf;
	*len = n;
	buf = NULL;
out:
	free(buf);
	close(fd);
	return rc;
}
