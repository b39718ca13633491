/*
 * fuzz_report.c - libFuzzer target for weft_report_decode: any input either
 * fails cleanly or decodes to a report whose encoding decodes back to an
 * equal report and re-encodes to the same bytes.
 */
#include <stdlib.h>
#include <string.h>

#include "codec_equal.h"
#include "fuzz_check.h"
#include <weft/schema.h>

/* Left empty on error: nothing to release. */
FUZZ_ROUNDTRIP(, weft_report, WEFT_MAX_MESSAGE_BYTES,
	       !a.processes && !a.files && !a.warnings && !a.nprocesses &&
		       !a.nfiles && !a.nwarnings,
	       true, weft_report_equal(&a, &b))
