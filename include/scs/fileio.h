/* scs/fileio.h - small helpers for whole files on local disk. */
#ifndef SCS_FILEIO_H
#define SCS_FILEIO_H

#include <stddef.h>
#include <stdint.h>

/* Read the whole regular file open on fd (at most max bytes: -EFBIG beyond,
 * also if it grows past max while being read; -EINVAL if not a regular
 * file).  *data is NUL-terminated (not counted in *len); free with free().
 * fd is closed in every case. */
int scs_fd_read_all(int fd, size_t max, uint8_t **data, size_t *len);

#endif
