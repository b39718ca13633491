/*
 * fuzz_file_rec.c - libFuzzer target for weft_file_rec_decode (a standalone
 * record, with "v"): any input either fails cleanly or decodes to a record
 * whose encoding decodes back to an equal record and re-encodes to the
 * same bytes.
 */
#include <stdlib.h>
#include <string.h>

#include "codec_equal.h"
#include "fuzz_check.h"
#include <weft/schema.h>

/* Left empty on error: nothing to release. */
FUZZ_ROUNDTRIP(, weft_file_rec, WEFT_MAX_MESSAGE_BYTES,
	       !a.path && !a.renamed_to && !a.hash_missing, true,
	       weft_file_rec_equal(&a, &b))
