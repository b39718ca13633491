/*
 * fuzz_request.c - libFuzzer target for weft_request_decode, what a
 * coordinator runs on every message from the network: any input either
 * fails cleanly or decodes to a request of a known kind whose fields hold
 * their invariants (a fragment's envelope lies inside the input and is
 * then decoded as the coordinator would).
 */
#include <string.h>

#include "fuzz_check.h"
#include <weft/wire.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static weft_request r;
	if (weft_request_decode(data, size, &r) != WEFT_OK) {
		FUZZ_CHECK(r.kind == 0 && !r.job_info.command);
		return 0;
	}
	FUZZ_CHECK(r.kind >= WEFT_REQ_JOB_CREATE && r.kind <= WEFT_REQ_STATUS);
	if (r.has_job)
		FUZZ_CHECK(weft_job_id_check(r.job) == 0);
	if (r.kind == WEFT_REQ_JOB_CREATE) {
		FUZZ_CHECK(r.job_info.command != NULL);
		FUZZ_CHECK(weft_token_check(r.job_info.token) == 0);
	}
	if (r.kind == WEFT_REQ_FRAGMENT) {
		FUZZ_CHECK(r.env >= data && r.env + r.env_len <= data + size);
		weft_envelope e;
		if (weft_envelope_decode(r.env, r.env_len, &e) == WEFT_OK)
			(void)weft_envelope_verify(&e);
	}
	weft_request_release(&r);
	return 0;
}
