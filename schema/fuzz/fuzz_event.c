/*
 * fuzz_event.c - libFuzzer target for weft_event_decode: any input either
 * fails cleanly or decodes to an event whose encoding decodes back to an
 * equal event and re-encodes to the same bytes (the encoding is canonical).
 */
#include <stdlib.h>
#include <string.h>

#include "codec_equal.h"
#include "fuzz_check.h"
#include "weft_schema.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	weft_event a, b;
	if (weft_event_decode(data, size, &a) != WEFT_OK) {
		/* Left empty on error: nothing to release. */
		FUZZ_CHECK(!a.path && !a.path2 && !a.argv && !a.argc);
		return 0;
	}
	weft_buf one, two;
	weft_buf_init(&one);
	weft_buf_init(&two);
	int rc = weft_event_encode(&a, &one);
	if (rc == WEFT_ETOOBIG &&
	    FUZZ_REENCODE_MAY_GROW_PAST(size, WEFT_MAX_EVENT_BYTES))
		goto out;
	FUZZ_CHECK(rc == WEFT_OK);
	FUZZ_CHECK(one.len <= size + a.argc + 2);
	FUZZ_CHECK(weft_event_decode(one.data, one.len, &b) == WEFT_OK);
	FUZZ_CHECK(weft_event_equal(&a, &b));
	FUZZ_CHECK(weft_event_encode(&b, &two) == WEFT_OK);
	FUZZ_CHECK(one.len == two.len && !memcmp(one.data, two.data, one.len));
	weft_event_release(&b);
out:
	weft_event_release(&a);
	weft_buf_free(&one);
	weft_buf_free(&two);
	return 0;
}
