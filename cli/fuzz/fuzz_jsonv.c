/*
 * fuzz_jsonv.c - libFuzzer target for the strict JSON reader: any bytes
 * either parse, and then write back to a document that parses to the same
 * text, or fail with a message.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "jsonv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[256];
	jv *v = jv_parse((const char *)data, size, err, sizeof(err));
	if (!v) {
		if (!err[0])
			abort(); /* every failure says why */
		return 0;
	}
	char *once = jv_to_string(v);
	jv_free(v);
	if (!once)
		return 0;
	jv *again = jv_parse(once, strlen(once), err, sizeof(err));
	if (!again)
		abort(); /* what we write, we read */
	char *twice = jv_to_string(again);
	if (!twice || strcmp(once, twice) != 0)
		abort();
	free(twice);
	free(once);
	jv_free(again);
	return 0;
}
