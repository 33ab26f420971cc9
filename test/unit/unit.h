/* unit.h - tiny assertion helpers for the C unit tests. */
#ifndef SCS_UNIT_H
#define SCS_UNIT_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern int unit_failures;

#define CHECK(cond) do { \
	if (!(cond)) { \
		fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
		unit_failures++; \
	} \
} while (0)

#define CHECK_EQ(a, b) do { \
	long long _a = (long long)(a), _b = (long long)(b); \
	if (_a != _b) { \
		fprintf(stderr, "%s:%d: %s == %lld, expected %s == %lld\n", \
			__FILE__, __LINE__, #a, _a, #b, _b); \
		unit_failures++; \
	} \
} while (0)

#define CHECK_MEM(a, b, n) CHECK(memcmp((a), (b), (n)) == 0)

/* Make a fresh empty directory for a test; returns a malloc'd path. */
char *unit_tmpdir(const char *tag);
/* Read a hex string into bytes (aborts on bad input: test data only). */
size_t unit_unhex(const char *hex, unsigned char *out, size_t cap);
/* Print a summary line and return the exit status for main(). */
int unit_done(const char *name);

#endif
