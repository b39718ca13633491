/*
 * fuzz_task_start.c - libFuzzer target for the TASK_START decoder
 * (weft_task_start_decode), what a coordinator runs on every wrapper's
 * announcement: any input either fails cleanly (nothing left set) or
 * decodes to an announcement that re-encodes to bytes decoding to the
 * same announcement, whose encoding is then stable; the signature check
 * never accepts what was not signed.
 */
#include <string.h>

#include "fuzz_check.h"
#include <weft/wire.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const weft_task_start zero;
	weft_task_start ts, back;
	if (weft_task_start_decode(data, size, &ts) != WEFT_OK) {
		FUZZ_CHECK(!memcmp(&ts, &zero, sizeof(ts)));
		return 0;
	}
	weft_buf one, two;
	weft_buf_init(&one);
	weft_buf_init(&two);
	FUZZ_CHECK(weft_req_task_start(&ts, &one) == WEFT_OK);
	FUZZ_CHECK(weft_task_start_decode(one.data, one.len, &back) ==
		   WEFT_OK);
	FUZZ_CHECK(!memcmp(&ts, &back, sizeof(ts)));
	FUZZ_CHECK(weft_req_task_start(&back, &two) == WEFT_OK);
	FUZZ_CHECK(one.len == two.len && !memcmp(one.data, two.data, one.len));
	/* A verifier of all zeros is no key anybody signed with. */
	uint8_t vk[WEFT_PUBKEY_BYTES] = {0};
	FUZZ_CHECK(weft_task_start_verify(vk, &ts) != WEFT_OK);
	weft_buf_free(&one);
	weft_buf_free(&two);
	return 0;
}
