/*
 * task_start_test.c - unit tests for the TASK_START request
 * (codec_task_start.c) and its signature (wire_crypto.c): a round trip,
 * a signature that holds for its fields only and for its job's token
 * only, the limits at their edge, and what the decoder refuses (other
 * kinds, unknown, missing and empty keys, trailing bytes, every
 * truncation).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <weft/wire.h>
#include "test_main.h"

static const char token[] = "0123456789abcdef0123456789abcdef";

static void fill(weft_task_start *ts)
{
	memset(ts, 0, sizeof(*ts));
	strcpy(ts->job, "0b8f9c3e-4a5d-4e6f-8a7b-1c2d3e4f5a6b");
	strcpy(ts->run, "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d");
	strcpy(ts->task, "4242.0.3@cn07");
	strcpy(ts->name, "./step --n 3");
	strcpy(ts->node, "cn07");
	strcpy(ts->backend, "ptrace");
	ts->started_ns = 1700000000123456789;
}

static void test_roundtrip(void **state)
{
	(void)state;
	weft_task_start ts, back;
	fill(&ts);
	assert_int_equal(weft_task_start_sign(&ts, token), WEFT_OK);
	weft_buf b;
	weft_buf_init(&b);
	assert_int_equal(weft_req_task_start(&ts, &b), WEFT_OK);
	int kind;
	assert_int_equal(weft_message_kind(b.data, b.len, &kind), WEFT_OK);
	assert_int_equal(kind, WEFT_REQ_TASK_START);
	assert_int_equal(weft_task_start_decode(b.data, b.len, &back),
			 WEFT_OK);
	assert_memory_equal(&ts, &back, sizeof(ts));
	/* The requests every coordinator knows do not take it. */
	weft_request r;
	assert_int_not_equal(weft_request_decode(b.data, b.len, &r), WEFT_OK);
	weft_buf_free(&b);
}

static void test_signature(void **state)
{
	(void)state;
	uint8_t vk[WEFT_PUBKEY_BYTES], other[WEFT_PUBKEY_BYTES];
	assert_int_equal(weft_job_verifier(token, vk), WEFT_OK);
	assert_int_equal(
		weft_job_verifier("fedcba9876543210fedcba9876543210", other),
		WEFT_OK);
	weft_task_start ts;
	fill(&ts);
	assert_int_equal(weft_task_start_sign(&ts, token), WEFT_OK);
	assert_int_equal(weft_task_start_verify(vk, &ts), WEFT_OK);
	assert_int_equal(weft_task_start_verify(other, &ts), WEFT_ESIG);
	/* Every field is covered: change one, the signature fails. */
	weft_task_start t = ts;
	t.started_ns++;
	assert_int_equal(weft_task_start_verify(vk, &t), WEFT_ESIG);
	t = ts;
	strcpy(t.parent, "x");
	assert_int_equal(weft_task_start_verify(vk, &t), WEFT_ESIG);
	t = ts;
	/* Moving a byte between fields changes the digest too. */
	strcpy(t.task, "4242.0.3@cn0");
	strcpy(t.name, "7./step --n 3");
	assert_int_equal(weft_task_start_verify(vk, &t), WEFT_ESIG);
	t = ts;
	t.run[0] = 'a';
	assert_int_equal(weft_task_start_verify(vk, &t), WEFT_ESIG);
	t = ts;
	t.job[0] = '1';
	assert_int_equal(weft_task_start_verify(vk, &t), WEFT_ESIG);
	assert_int_equal(weft_task_start_sign(&ts, "short"), WEFT_EINVAL);
}

static void test_limits(void **state)
{
	(void)state;
	weft_task_start ts;
	weft_buf b;
	weft_buf_init(&b);
	fill(&ts);
	memset(ts.task, 'x', WEFT_MAX_TASK_BYTES);
	memset(ts.name, 'y', WEFT_MAX_TASK_BYTES);
	memset(ts.parent, 'z', WEFT_MAX_TASK_BYTES);
	memset(ts.node, 'n', WEFT_MAX_NAME_BYTES - 1);
	assert_int_equal(weft_req_task_start(&ts, &b), WEFT_OK);
	weft_task_start back;
	assert_int_equal(weft_task_start_decode(b.data, b.len, &back),
			 WEFT_OK);
	assert_string_equal(back.parent, ts.parent);
	/* One byte over, or a required field empty: not encoded. */
	fill(&ts);
	ts.node[0] = '\0';
	assert_int_equal(weft_req_task_start(&ts, &b), WEFT_EINVAL);
	fill(&ts);
	ts.task[0] = '\0';
	assert_int_equal(weft_req_task_start(&ts, &b), WEFT_EINVAL);
	fill(&ts);
	strcpy(ts.run, "run-1");
	assert_int_equal(weft_req_task_start(&ts, &b), WEFT_EINVAL);
	fill(&ts);
	memset(ts.node, 'n', sizeof(ts.node));
	assert_int_equal(weft_req_task_start(&ts, &b), WEFT_EINVAL);
	weft_buf_free(&b);
}

/* A message like the request with one key's name or value changed. */
static void put_str(weft_buf *b, const char *s)
{
	size_t n = strlen(s);
	uint8_t h[2] = {0xd9, (uint8_t)n}; /* str 8 */
	weft_buf_append(b, h, 2);
	weft_buf_append(b, s, n);
}

static void forged(weft_buf *b, const char *key8, const char *node)
{
	static const uint8_t head[] = {0x8b, 0xa1, 'v', WEFT_SCHEMA_VERSION, 0xa1, 't', 0x07};
	b->len = 0;
	weft_buf_append(b, head, sizeof(head));
	const char *k[] = {"job",  "run",     "task", "name",
			   "parent", "node",  "backend"};
	const char *v[] = {"0b8f9c3e-4a5d-4e6f-8a7b-1c2d3e4f5a6b",
			   "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d",
			   "t",
			   "",
			   "",
			   node,
			   "ptrace"};
	for (int i = 0; i < 7; i++) {
		put_str(b, k[i]);
		put_str(b, v[i]);
	}
	put_str(b, key8);
	weft_buf_append(b, "\x05", 1);
	put_str(b, "sig");
	uint8_t sig[2 + WEFT_SIG_BYTES] = {0xc4, WEFT_SIG_BYTES};
	weft_buf_append(b, sig, sizeof(sig));
}

static void test_rejects(void **state)
{
	(void)state;
	weft_buf b;
	weft_buf_init(&b);
	weft_task_start ts;
	forged(&b, "time", "cn07");
	assert_int_equal(weft_task_start_decode(b.data, b.len, &ts), WEFT_OK);
	assert_int_equal(ts.started_ns, 5);
	/* An unknown key in place of a required one. */
	forged(&b, "tame", "cn07");
	assert_int_not_equal(weft_task_start_decode(b.data, b.len, &ts),
			     WEFT_OK);
	assert_string_equal(ts.job, "");
	/* An empty node. */
	forged(&b, "time", "");
	assert_int_equal(weft_task_start_decode(b.data, b.len, &ts),
			 WEFT_EINVAL);
	/* Trailing bytes. */
	forged(&b, "time", "cn07");
	weft_buf_append(&b, "", 1);
	assert_int_equal(weft_task_start_decode(b.data, b.len, &ts),
			 WEFT_ETRAILING);
	/* Every truncation fails, and leaves nothing set. */
	forged(&b, "time", "cn07");
	for (size_t n = 0; n < b.len; n++) {
		assert_int_not_equal(weft_task_start_decode(b.data, n, &ts),
				     WEFT_OK);
		assert_string_equal(ts.task, "");
	}
	weft_buf_free(&b);
	weft_buf_init(&b);
	/* Another kind of request. */
	b.len = 0;
	assert_int_equal(weft_req_status(NULL, &b), WEFT_OK);
	assert_int_equal(weft_task_start_decode(b.data, b.len, &ts),
			 WEFT_EINVAL);
	weft_buf_free(&b);
}

WEFT_TEST_MAIN(cmocka_unit_test(test_roundtrip),
	       cmocka_unit_test(test_signature), cmocka_unit_test(test_limits),
	       cmocka_unit_test(test_rejects))
