/* scs/buf.h - bounded buffers for parsing untrusted bytes (in the spirit of
 * OpenSSH's sshbuf).  Every parser of headers, names and identity/keyring
 * data reads through scs_rbuf; a read past the end sets err and returns
 * -EBADMSG, never touching memory outside [p, p+len).  Integers are
 * big-endian. */
#ifndef SCS_BUF_H
#define SCS_BUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct scs_rbuf {
	const uint8_t *p;
	size_t len;
	size_t off;
	int err;          /* sticky: first error, 0 if none */
} scs_rbuf;

void scs_rbuf_init(scs_rbuf *b, const void *p, size_t len);
size_t scs_rbuf_left(const scs_rbuf *b);
int scs_rbuf_u8(scs_rbuf *b, uint8_t *v);
int scs_rbuf_u16(scs_rbuf *b, uint16_t *v);
int scs_rbuf_u32(scs_rbuf *b, uint32_t *v);
int scs_rbuf_u64(scs_rbuf *b, uint64_t *v);
int scs_rbuf_bytes(scs_rbuf *b, void *out, size_t n);
/* Borrow n bytes in place (no copy). */
int scs_rbuf_ptr(scs_rbuf *b, const uint8_t **out, size_t n);
int scs_rbuf_skip(scs_rbuf *b, size_t n);

/* Fixed-capacity writer over caller memory; overflow sets err (-ENOBUFS). */
typedef struct scs_wbuf {
	uint8_t *p;
	size_t cap;
	size_t len;
	int err;
} scs_wbuf;

void scs_wbuf_init(scs_wbuf *b, void *p, size_t cap);
int scs_wbuf_u8(scs_wbuf *b, uint8_t v);
int scs_wbuf_u16(scs_wbuf *b, uint16_t v);
int scs_wbuf_u32(scs_wbuf *b, uint32_t v);
int scs_wbuf_u64(scs_wbuf *b, uint64_t v);
int scs_wbuf_bytes(scs_wbuf *b, const void *p, size_t n);
int scs_wbuf_zero(scs_wbuf *b, size_t n);

#endif
