/* fuzz_identity.c - the public identity parser (what `scsctl id export`
 * prints and `member add` reads) on arbitrary bytes.  Whatever parses must
 * export and parse again to the same identity. */
#include "scs/identity.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	scs_identity *id = NULL, *again = NULL;
	scs_err err;
	if (scs_identity_parse(data, size, &id, &err) != 0) {
		if (id || err.code != -EBADMSG || !err.msg[0] || strchr(err.msg, '\n'))
			abort();
		return 0;
	}
	if (!id || id->unlocked || !scs_name_valid(id->name))
		abort();
	char *json;
	size_t len;
	if (scs_identity_export(id, &json, &len) != 0)
		abort();
	if (scs_identity_parse(json, len, &again, &err) != 0 ||
	    memcmp(again->fpr, id->fpr, sizeof id->fpr) != 0 || strcmp(again->name, id->name) != 0)
		abort();
	free(json);
	scs_identity_free(again);
	scs_identity_free(id);
	return 0;
}
