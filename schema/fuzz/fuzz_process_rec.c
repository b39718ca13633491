/*
 * fuzz_process_rec.c - libFuzzer target for weft_process_rec_decode (a
 * standalone record, with "v"): any input either fails cleanly or decodes to a
 * record whose encoding decodes back to an equal record and re-encodes to the
 * same bytes.
 */
#include <stdlib.h>
#include <string.h>

#include "codec_equal.h"
#include "fuzz_check.h"
#include "weft_schema.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	weft_process_rec a, b;
	if (weft_process_rec_decode(data, size, &a) != WEFT_OK) {
		/* Left empty on error: nothing to release. */
		FUZZ_CHECK(!a.argv && !a.exe && !a.cwd && !a.argc);
		return 0;
	}
	weft_buf one, two;
	weft_buf_init(&one);
	weft_buf_init(&two);
	int rc = weft_process_rec_encode(&a, &one);
	if (rc == WEFT_ETOOBIG &&
	    FUZZ_REENCODE_MAY_GROW_PAST(size, WEFT_MAX_MESSAGE_BYTES))
		goto out;
	FUZZ_CHECK(rc == WEFT_OK);
	FUZZ_CHECK(weft_process_rec_decode(one.data, one.len, &b) == WEFT_OK);
	FUZZ_CHECK(weft_process_rec_equal(&a, &b));
	FUZZ_CHECK(weft_process_rec_encode(&b, &two) == WEFT_OK);
	FUZZ_CHECK(one.len == two.len && !memcmp(one.data, two.data, one.len));
	weft_process_rec_release(&b);
out:
	weft_process_rec_release(&a);
	weft_buf_free(&one);
	weft_buf_free(&two);
	return 0;
}
