/*
 * fuzz_export.c - libFuzzer target for the EXPORT request and page
 * decoders (weft_export_request_decode, weft_export_page_decode), what a
 * coordinator runs on a relay's request and `weft pull` on a
 * coordinator's answer: any input either fails cleanly (nothing left to
 * release) or decodes to a message that re-encodes to bytes decoding to
 * the same message, whose encoding is then stable.
 */
#include <string.h>

#include "fuzz_check.h"
#include <weft/wire.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void page_roundtrip(const uint8_t *data, size_t size)
{
	weft_export_page p, q;
	if (weft_export_page_decode(data, size, &p) != WEFT_OK) {
		FUZZ_CHECK(!p.writers && !p.envs && !p.job.command);
		return;
	}
	weft_buf one, two;
	weft_buf_init(&one);
	weft_buf_init(&two);
	int rc = weft_reply_export(&p, &one);
	FUZZ_CHECK(rc == WEFT_OK ||
		   (rc == WEFT_ETOOBIG &&
		    FUZZ_REENCODE_MAY_GROW_PAST(size, WEFT_MAX_MESSAGE_BYTES)));
	if (rc == WEFT_OK) {
		FUZZ_CHECK(weft_export_page_decode(one.data, one.len, &q) ==
			   WEFT_OK);
		FUZZ_CHECK(q.nenvs == p.nenvs && q.nwriters == p.nwriters &&
			   q.more == p.more && q.next == p.next &&
			   q.wnext == p.wnext && q.has_key == p.has_key &&
			   q.has_vk == p.has_vk && !strcmp(q.job.id, p.job.id));
		for (size_t i = 0; i < p.nenvs; i++)
			FUZZ_CHECK(q.envs[i].len == p.envs[i].len &&
				   !memcmp(q.envs[i].data, p.envs[i].data,
					   p.envs[i].len));
		FUZZ_CHECK(weft_reply_export(&q, &two) == WEFT_OK);
		FUZZ_CHECK(one.len == two.len &&
			   !memcmp(one.data, two.data, one.len));
		weft_export_page_release(&q);
	}
	weft_export_page_release(&p);
	weft_buf_free(&one);
	weft_buf_free(&two);
}

static void request_roundtrip(const uint8_t *data, size_t size)
{
	char job[WEFT_JOB_ID_BYTES + 1], job2[WEFT_JOB_ID_BYTES + 1];
	uint64_t after, wafter, after2, wafter2;
	if (weft_export_request_decode(data, size, job, &after, &wafter) !=
	    WEFT_OK) {
		FUZZ_CHECK(!job[0] && !after && !wafter);
		return;
	}
	weft_buf one;
	weft_buf_init(&one);
	FUZZ_CHECK(weft_req_export(job, after, wafter, &one) == WEFT_OK);
	FUZZ_CHECK(weft_export_request_decode(one.data, one.len, job2, &after2,
					      &wafter2) == WEFT_OK);
	FUZZ_CHECK(!strcmp(job, job2) && after == after2 && wafter == wafter2);
	weft_buf_free(&one);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int kind;
	(void)weft_message_kind(data, size, &kind);
	page_roundtrip(data, size);
	request_roundtrip(data, size);
	return 0;
}
