/* scs/b64.h - base64url (RFC 4648 section 5, no padding) and standard
 * base64, strict decoders for untrusted input, plus lowercase hex. */
#ifndef SCS_B64_H
#define SCS_B64_H

#include <stddef.h>
#include <stdint.h>

/* Length of the base64url encoding of n bytes, without padding or NUL. */
size_t scs_b64url_len(size_t n);
/* Encode; out must hold scs_b64url_len(n) + 1 bytes (NUL-terminated). */
void scs_b64url_encode(const uint8_t *in, size_t n, char *out);
/* Strict decode (rejects padding, foreign characters, non-canonical
 * trailing bits).  Returns decoded length, or -EINVAL.  out holds outcap. */
long scs_b64url_decode(const char *in, size_t n, uint8_t *out, size_t outcap);
/* True if every one of the n characters is in the base64url alphabet. */
int scs_b64url_is_alphabet(const char *s, size_t n);

/* Standard base64 with padding (for JSON fields).  Same conventions. */
size_t scs_b64_len(size_t n);
void scs_b64_encode(const uint8_t *in, size_t n, char *out);
long scs_b64_decode(const char *in, size_t n, uint8_t *out, size_t outcap);

/* Lowercase hex; out holds 2n+1.  Decode returns -EINVAL on bad input. */
void scs_hex_encode(const uint8_t *in, size_t n, char *out);
int scs_hex_decode(const char *in, size_t n, uint8_t *out, size_t outcap);

#endif
