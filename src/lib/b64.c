/* b64.c - base64url (RFC 4648 section 5, unpadded), standard base64 (padded)
 * and lowercase hex.  The decoders are strict: they accept exactly the
 * strings the encoders produce (no whitespace, no foreign characters, no
 * padding where there is none, no non-zero trailing bits), so every byte
 * string has one encoding and a stored name cannot be varied unseen. */
#include "scs/b64.h"

#include <errno.h>
#include <string.h>

static const char url_alpha[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
static const char std_alpha[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Value of c in the alphabet, or -1.  Only public data (ciphertext, public
 * keys, wrapped keys) is encoded here, so branches on it leak nothing. */
static int val(char c, int url)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == (url ? '-' : '+'))
		return 62;
	if (c == (url ? '_' : '/'))
		return 63;
	return -1;
}

static void encode(const uint8_t *in, size_t n, char *out, const char *alpha, int pad)
{
	size_t i = 0, o = 0;
	for (; i + 3 <= n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
		out[o++] = alpha[v >> 18 & 63];
		out[o++] = alpha[v >> 12 & 63];
		out[o++] = alpha[v >> 6 & 63];
		out[o++] = alpha[v & 63];
	}
	if (n - i == 1) {
		uint32_t v = (uint32_t)in[i] << 16;
		out[o++] = alpha[v >> 18 & 63];
		out[o++] = alpha[v >> 12 & 63];
		if (pad) {
			out[o++] = '=';
			out[o++] = '=';
		}
	} else if (n - i == 2) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
		out[o++] = alpha[v >> 18 & 63];
		out[o++] = alpha[v >> 12 & 63];
		out[o++] = alpha[v >> 6 & 63];
		if (pad)
			out[o++] = '=';
	}
	out[o] = '\0';
}

/* Decode n characters with no padding.  n % 4 == 1 is never valid; the
 * unused low bits of the last character must be zero. */
static long decode_unpadded(const char *in, size_t n, uint8_t *out, size_t outcap, int url)
{
	if (n % 4 == 1)
		return -EINVAL;
	size_t outlen = n / 4 * 3 + (n % 4 ? n % 4 - 1 : 0);
	if (outlen > outcap || outlen > (size_t)(~0UL >> 1))
		return -EINVAL;
	size_t o = 0;
	uint32_t acc = 0;
	int bits = 0;
	for (size_t i = 0; i < n; i++) {
		int v = val(in[i], url);
		if (v < 0)
			return -EINVAL;
		acc = (acc << 6 | (uint32_t)v) & 0xffffff;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (uint8_t)(acc >> bits);
		}
	}
	/* Leftover bits (2 or 4) must be zero: canonical encoding only. */
	if (bits && (acc & ((1u << bits) - 1)))
		return -EINVAL;
	return (long)o;
}

size_t scs_b64url_len(size_t n)
{
	return n / 3 * 4 + (n % 3 ? n % 3 + 1 : 0);
}

void scs_b64url_encode(const uint8_t *in, size_t n, char *out)
{
	encode(in, n, out, url_alpha, 0);
}

long scs_b64url_decode(const char *in, size_t n, uint8_t *out, size_t outcap)
{
	return decode_unpadded(in, n, out, outcap, 1);
}

int scs_b64url_is_alphabet(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (val(s[i], 1) < 0)
			return 0;
	return 1;
}

size_t scs_b64_len(size_t n)
{
	return (n + 2) / 3 * 4;
}

void scs_b64_encode(const uint8_t *in, size_t n, char *out)
{
	encode(in, n, out, std_alpha, 1);
}

long scs_b64_decode(const char *in, size_t n, uint8_t *out, size_t outcap)
{
	if (n % 4)
		return -EINVAL;
	size_t body = n;
	if (n >= 1 && in[n - 1] == '=')
		body--;
	if (n >= 2 && in[n - 2] == '=') {
		if (body != n - 1)
			return -EINVAL;
		body--;
	}
	/* After removing 0..2 '=' the rest must be pure alphabet, and the
	 * unpadded decoder rejects a lone leftover character. */
	return decode_unpadded(in, body, out, outcap, 0);
}

void scs_hex_encode(const uint8_t *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * n] = '\0';
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;      /* uppercase is not canonical: rejected */
}

int scs_hex_decode(const char *in, size_t n, uint8_t *out, size_t outcap)
{
	if (n % 2 || n / 2 > outcap || n / 2 > 0x7fffffff)
		return -EINVAL;
	for (size_t i = 0; i < n / 2; i++) {
		int hi = hexval(in[2 * i]), lo = hexval(in[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -EINVAL;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return (int)(n / 2);
}
