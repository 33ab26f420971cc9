#include "unit.h"

#include <stdint.h>
#include <unistd.h>

int unit_failures;

char *unit_tmpdir(const char *tag)
{
	const char *base = getenv("SCS_TEST_TMP");
	char tmpl[4096];
	snprintf(tmpl, sizeof tmpl, "%s/unit-%s-XXXXXX", base ? base : "/tmp", tag);
	char *d = mkdtemp(tmpl);
	if (!d) {
		perror("mkdtemp");
		exit(2);
	}
	return strdup(d);
}

size_t unit_unhex(const char *hex, unsigned char *out, size_t cap)
{
	size_t n = strlen(hex);
	if (n % 2 || n / 2 > cap) {
		fprintf(stderr, "unit_unhex: bad test vector\n");
		exit(2);
	}
	for (size_t i = 0; i < n / 2; i++) {
		unsigned v;
		if (sscanf(hex + 2 * i, "%2x", &v) != 1) {
			fprintf(stderr, "unit_unhex: bad test vector\n");
			exit(2);
		}
		out[i] = (unsigned char)v;
	}
	return n / 2;
}

int unit_done(const char *name)
{
	if (unit_failures) {
		fprintf(stderr, "%s: %d check(s) failed\n", name, unit_failures);
		return 1;
	}
	printf("%s: all checks passed\n", name);
	return 0;
}
