/*
 * fuzz_fragment.c - libFuzzer target for weft_fragment_decode: any input
 * either fails cleanly or decodes to a fragment whose encoding decodes back
 * to an equal fragment and re-encodes to the same bytes.
 */
#include <string.h>

#include "codec_equal.h"
#include "fuzz_check.h"
#include <weft/wire.h>

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

/* The fragment is large: a and b are static, off the stack. */
FUZZ_ROUNDTRIP(static, weft_fragment, WEFT_MAX_PAYLOAD_BYTES,
	       !a.report.processes && !a.report.files && !a.report.warnings,
	       true,
	       header_equal(&a, &b) && weft_report_equal(&a.report, &b.report))
