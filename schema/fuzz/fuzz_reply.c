/*
 * fuzz_reply.c - libFuzzer target for weft_reply_decode, what a wrapper
 * and `weft status` run on a coordinator's answer: any input either fails
 * cleanly (nothing left to release) or decodes to a reply that re-encodes
 * to the same bytes (acks with a detail shorter than the cut, statuses).
 */
#include <string.h>

#include "fuzz_check.h"
#include <weft/wire.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	weft_reply r, s;
	if (weft_reply_decode(data, size, &r) != WEFT_OK) {
		FUZZ_CHECK(!r.status.jobs && !r.status.njobs);
		return 0;
	}
	weft_buf one, two;
	weft_buf_init(&one);
	weft_buf_init(&two);
	int rc = r.kind == WEFT_REPLY_ACK
			 ? weft_reply_ack(r.ack.status, r.ack.reason,
					  r.ack.detail, r.ack.seq, &one)
			 : weft_reply_status(&r.status, &one);
	FUZZ_CHECK(rc == WEFT_OK);
	FUZZ_CHECK(weft_reply_decode(one.data, one.len, &s) == WEFT_OK);
	FUZZ_CHECK(s.kind == r.kind);
	rc = s.kind == WEFT_REPLY_ACK
		     ? weft_reply_ack(s.ack.status, s.ack.reason, s.ack.detail,
				      s.ack.seq, &two)
		     : weft_reply_status(&s.status, &two);
	FUZZ_CHECK(rc == WEFT_OK);
	FUZZ_CHECK(one.len == two.len && !memcmp(one.data, two.data, one.len));
	weft_reply_release(&s);
	weft_reply_release(&r);
	weft_buf_free(&one);
	weft_buf_free(&two);
	return 0;
}
