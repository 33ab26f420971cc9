/* scs/file.h - the content engine: random-access plaintext reads and writes
 * on an encrypted object (format.h) through any back end.  No FUSE here.
 *
 * Thread-safe: one scs_file may be shared by every open of the same inode;
 * reads run in parallel, writes are serialised per file.
 * Writes go to the object in place (re-sealing only the touched chunks);
 * the header (content_hash, file_version, signature) is rewritten by
 * scs_file_flush / scs_file_sync / scs_file_close when anything changed.
 * Authentication failures return -EBADMSG and log one line naming the
 * file (its display name given at open). */
#ifndef SCS_FILE_H
#define SCS_FILE_H

#include <stdint.h>
#include <sys/types.h>
#include "scs/backend.h"
#include "scs/keyctx.h"

typedef struct scs_file scs_file;

/* Create a new empty file object at path (O_EXCL).  display names the file
 * in log lines (a plaintext path); it is copied.  The header is signed and
 * written by the first scs_file_flush / scs_file_sync / scs_file_close
 * (one signature for a file created, written and closed); until then the
 * object's header bytes are zeros and other readers cannot open it. */
int scs_file_create(scs_backend *be, const char *path, uint32_t mode,
		    const scs_keyctx *k, const char *display, scs_file **out);
/* Open an existing object; writable opens the object O_RDWR.  Verifies the
 * header (signature, writer, epoch), unwraps the file key, and asks the
 * key context's observe (seen.h) whether it is an old version put back:
 * then -EBADMSG and a log line naming `scsctl forget`. */
int scs_file_open(scs_backend *be, const char *path, int writable,
		  const scs_keyctx *k, const char *display, scs_file **out);

ssize_t scs_file_pread(scs_file *f, void *buf, size_t n, uint64_t off);
ssize_t scs_file_pwrite(scs_file *f, const void *buf, size_t n, uint64_t off);
int scs_file_truncate(scs_file *f, uint64_t size);
uint64_t scs_file_size(scs_file *f);
int scs_file_flush(scs_file *f);                 /* re-sign if dirty */
int scs_file_sync(scs_file *f, int datasync);    /* flush + backend fsync */
int scs_file_close(scs_file *f);                 /* flush + free; returns flush error */
/* Close without sealing what was written since the last flush: for an
 * open file whose content moved to another object (scsfs rehome.c). */
int scs_file_discard(scs_file *f);
/* Change the display name (after a rename). */
void scs_file_set_display(scs_file *f, const char *display);
uint32_t scs_file_epoch(scs_file *f);

/* Authenticate a whole object: header, every record, content hash.
 * 0, or -EBADMSG with the reason in err (err->code -ESTALE: an old
 * version put back, see scs_file_open), -EACCES: epoch key unknown or
 * retired.  err->msg does not name the file: prefix your plaintext path.
 * Logs nothing. */
int scs_file_verify(scs_backend *be, const char *path, const scs_keyctx *k, scs_err *err);

/* Re-encrypt the object at src into a new object at dst (created O_EXCL
 * with mode): the current write epoch, a fresh file id and key.  src is
 * authenticated whole first (as scs_file_verify), so damage is never
 * laundered into a valid file.  dst is complete and synced on success; the
 * caller switches it in (rename over src, after checking that src did not
 * change meanwhile).  On failure dst does not exist.  For the re-key pass
 * and for moving a file of an older epoch to the current one. */
int scs_file_rewrite(scs_backend *be, const char *src, const char *dst, uint32_t mode,
		     const scs_keyctx *k, const char *display, scs_err *err);

/* Plaintext size of an object from its size (for getattr without opening).
 * Returns 0 for objects too short to be valid (being created). */
uint64_t scs_file_plain_size(uint64_t object_size);

#endif
