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
#include <weft/schema.h>

/* Left empty on error: nothing to release. */
FUZZ_ROUNDTRIP(, weft_process_rec, WEFT_MAX_MESSAGE_BYTES,
	       !a.argv && !a.exe && !a.cwd && !a.argc, true,
	       weft_process_rec_equal(&a, &b))
