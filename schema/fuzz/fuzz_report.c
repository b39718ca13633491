/*
 * fuzz_report.c - libFuzzer target for weft_report_decode: any input either
 * fails cleanly or decodes to a report whose encoding decodes back to an
 * equal report and re-encodes to the same bytes.
 */
#include <stdlib.h>
#include <string.h>

#include "codec_equal.h"
#include "fuzz_check.h"
#include "weft_schema.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	weft_report a, b;
	if (weft_report_decode(data, size, &a) != WEFT_OK) {
		/* Left empty on error: nothing to release. */
		FUZZ_CHECK(!a.processes && !a.files && !a.warnings &&
			   !a.nprocesses && !a.nfiles && !a.nwarnings);
		return 0;
	}
	weft_buf one, two;
	weft_buf_init(&one);
	weft_buf_init(&two);
	int rc = weft_report_encode(&a, &one);
	if (rc == WEFT_ETOOBIG &&
	    FUZZ_REENCODE_MAY_GROW_PAST(size, WEFT_MAX_MESSAGE_BYTES))
		goto out;
	FUZZ_CHECK(rc == WEFT_OK);
	FUZZ_CHECK(weft_report_decode(one.data, one.len, &b) == WEFT_OK);
	FUZZ_CHECK(weft_report_equal(&a, &b));
	FUZZ_CHECK(weft_report_encode(&b, &two) == WEFT_OK);
	FUZZ_CHECK(one.len == two.len && !memcmp(one.data, two.data, one.len));
	weft_report_release(&b);
out:
	weft_report_release(&a);
	weft_buf_free(&one);
	weft_buf_free(&two);
	return 0;
}
