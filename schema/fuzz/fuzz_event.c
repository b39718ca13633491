/*
 * fuzz_event.c - libFuzzer target for weft_event_decode: any input either
 * fails cleanly or decodes to an event whose encoding decodes back to an
 * equal event and re-encodes to the same bytes (the encoding is canonical).
 */
#include <stdlib.h>
#include <string.h>

#include "codec_equal.h"
#include "fuzz_check.h"
#include <weft/schema.h>

/* Left empty on error: nothing to release. */
FUZZ_ROUNDTRIP(, weft_event, WEFT_MAX_EVENT_BYTES,
	       !a.path && !a.path2 && !a.argv && !a.argc,
	       one.len <= size + a.argc + 2, weft_event_equal(&a, &b))
