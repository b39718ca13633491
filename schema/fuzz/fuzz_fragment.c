/*
 * fuzz_fragment.c - libFuzzer target for weft_fragment_decode: any input
 * either fails cleanly or decodes to a fragment whose encoding decodes back
 * to an equal fragment and re-encodes to the same bytes.
 */
#include <string.h>

#include "codec_equal.h"
#include "fuzz_check.h"
#include "weft_wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool header_equal(const weft_fragment *a, const weft_fragment *b)
{
	if (strcmp(a->job, b->job) || memcmp(a->writer, b->writer, 32) ||
	    a->seq != b->seq || a->part != b->part || a->nparts != b->nparts ||
	    strcmp(a->preflight, b->preflight) ||
	    strcmp(a->task.id, b->task.id) ||
	    strcmp(a->task.name, b->task.name) ||
	    strcmp(a->task.parent, b->task.parent) ||
	    a->task.nengine != b->task.nengine)
		return false;
	for (uint32_t i = 0; i < a->task.nengine; i++)
		if (strcmp(a->task.engine[i].key, b->task.engine[i].key) ||
		    strcmp(a->task.engine[i].value, b->task.engine[i].value))
			return false;
	return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static weft_fragment a, b; /* large: keep them off the stack */
	if (weft_fragment_decode(data, size, &a) != WEFT_OK) {
		FUZZ_CHECK(!a.report.processes && !a.report.files &&
			   !a.report.warnings);
		return 0;
	}
	weft_buf one, two;
	weft_buf_init(&one);
	weft_buf_init(&two);
	int rc = weft_fragment_encode(&a, &one);
	if (rc == WEFT_ETOOBIG &&
	    FUZZ_REENCODE_MAY_GROW_PAST(size, WEFT_MAX_PAYLOAD_BYTES))
		goto out;
	FUZZ_CHECK(rc == WEFT_OK);
	FUZZ_CHECK(weft_fragment_decode(one.data, one.len, &b) == WEFT_OK);
	FUZZ_CHECK(header_equal(&a, &b));
	FUZZ_CHECK(weft_report_equal(&a.report, &b.report));
	FUZZ_CHECK(weft_fragment_encode(&b, &two) == WEFT_OK);
	FUZZ_CHECK(one.len == two.len && !memcmp(one.data, two.data, one.len));
	weft_fragment_release(&b);
out:
	weft_fragment_release(&a);
	weft_buf_free(&one);
	weft_buf_free(&two);
	return 0;
}
