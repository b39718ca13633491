/*
 * export_test.c - unit tests for the EXPORT request and page codec
 * (codec_export.c): round trips, the key only on an ended job, the named
 * limits at their edge, other kinds and trailing bytes refused, and every
 * truncation of a page failing cleanly.
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

static const char job[] = "0b8f9c3e-4a5d-4e6f-8a7b-1c2d3e4f5a6b";

static void test_request(void **state)
{
	(void)state;
	weft_buf b;
	weft_buf_init(&b);
	assert_int_equal(weft_req_export(job, 77, 5, &b), WEFT_OK);
	int kind;
	assert_int_equal(weft_message_kind(b.data, b.len, &kind), WEFT_OK);
	assert_int_equal(kind, WEFT_REQ_EXPORT);
	char id[WEFT_JOB_ID_BYTES + 1];
	uint64_t after, wafter;
	assert_int_equal(
		weft_export_request_decode(b.data, b.len, id, &after, &wafter),
		WEFT_OK);
	assert_string_equal(id, job);
	assert_int_equal(after, 77);
	assert_int_equal(wafter, 5);
	/* Trailing bytes, and what weft_request_decode knows (a status
	 * request) are not export requests. */
	weft_buf_append(&b, "", 1);
	assert_int_equal(
		weft_export_request_decode(b.data, b.len, id, &after, &wafter),
		WEFT_ETRAILING);
	assert_string_equal(id, "");
	b.len = 0;
	assert_int_equal(weft_req_status(job, &b), WEFT_OK);
	assert_int_equal(
		weft_export_request_decode(b.data, b.len, id, &after, &wafter),
		WEFT_EINVAL);
	assert_int_equal(weft_message_kind(b.data, b.len, &kind), WEFT_OK);
	assert_int_equal(kind, WEFT_REQ_STATUS);
	/* Nor does weft_request_decode take an export request. */
	b.len = 0;
	assert_int_equal(weft_req_export(job, 0, 0, &b), WEFT_OK);
	weft_request r;
	assert_int_not_equal(weft_request_decode(b.data, b.len, &r), WEFT_OK);
	assert_int_equal(weft_req_export("not-a-job", 0, 0, &b), WEFT_EINVAL);
	assert_int_equal(weft_message_kind((const uint8_t *)"\x90", 1, &kind),
			 WEFT_ETYPE);
	weft_buf_free(&b);
}

static void fill_page(weft_export_page *p, weft_export_writer *w,
		      weft_export_env *e, const weft_buf *env)
{
	memset(p, 0, sizeof(*p));
	strcpy(p->job.id, job);
	p->job.command = "srun -n 4 ./sim";
	strcpy(p->job.user, "ada");
	strcpy(p->job.host, "head");
	strcpy(p->job.cwd, "/home/ada/x");
	strcpy(p->job.git, "abc123");
	p->job.created_ns = 1;
	p->ended = true;
	p->ended_ns = 2;
	p->exit_code = 3;
	p->has_key = true;
	memset(p->key, 0xab, WEFT_MAC_BYTES);
	p->has_vk = true;
	memset(p->vk, 0xcd, WEFT_PUBKEY_BYTES);
	memset(w->pk, 0x11, WEFT_PUBKEY_BYTES);
	w->enrolled_ns = -4;
	p->writers = w;
	p->nwriters = 1;
	e->data = env->data;
	e->len = env->len;
	p->envs = e;
	p->nenvs = 1;
	p->next = 10;
	p->wnext = 20;
	p->more = true;
}

static void test_page(void **state)
{
	(void)state;
	weft_writer_key k;
	assert_int_equal(weft_writer_key_new(&k), WEFT_OK);
	weft_buf env, b;
	weft_buf_init(&env);
	weft_buf_init(&b);
	assert_int_equal(weft_envelope_seal(job, &k, 1,
					    (const uint8_t *)"payload", 7,
					    &env),
			 WEFT_OK);
	weft_export_page p, q;
	weft_export_writer w;
	weft_export_env e;
	fill_page(&p, &w, &e, &env);
	assert_int_equal(weft_reply_export(&p, &b), WEFT_OK);
	int kind;
	assert_int_equal(weft_message_kind(b.data, b.len, &kind), WEFT_OK);
	assert_int_equal(kind, WEFT_REPLY_EXPORT);
	assert_int_equal(weft_export_page_decode(b.data, b.len, &q), WEFT_OK);
	assert_string_equal(q.job.id, job);
	assert_string_equal(q.job.command, "srun -n 4 ./sim");
	assert_string_equal(q.job.cwd, "/home/ada/x");
	assert_true(q.ended && q.has_key);
	assert_memory_equal(q.key, p.key, WEFT_MAC_BYTES);
	assert_true(q.has_vk);
	assert_memory_equal(q.vk, p.vk, WEFT_PUBKEY_BYTES);
	assert_int_equal(q.exit_code, 3);
	assert_int_equal(q.nwriters, 1);
	assert_int_equal(q.writers[0].enrolled_ns, -4);
	assert_int_equal(q.nenvs, 1);
	assert_int_equal(q.envs[0].len, env.len);
	assert_memory_equal(q.envs[0].data, env.data, env.len);
	assert_true(q.envs[0].data >= b.data &&
		    q.envs[0].data < b.data + b.len);
	assert_int_equal(q.next, 10);
	assert_int_equal(q.wnext, 20);
	assert_true(q.more);
	weft_export_page_release(&q);

	/* Every truncation fails, and leaves nothing to release. */
	for (size_t n = 0; n < b.len; n++) {
		assert_int_not_equal(weft_export_page_decode(b.data, n, &q),
				     WEFT_OK);
		assert_null(q.writers);
		assert_null(q.envs);
		assert_null(q.job.command);
	}

	/* An open job never carries its key or verifier. */
	p.ended = false;
	b.len = 0;
	assert_int_equal(weft_reply_export(&p, &b), WEFT_EINVAL);
	p.has_key = false;
	assert_int_equal(weft_reply_export(&p, &b), WEFT_EINVAL);
	p.has_vk = false;
	assert_int_equal(weft_reply_export(&p, &b), WEFT_OK);
	assert_int_equal(weft_export_page_decode(b.data, b.len, &q), WEFT_OK);
	assert_false(q.has_key || q.has_vk);
	weft_export_page_release(&q);
	/* An ack is not a page, a page not an ack. */
	weft_reply r;
	assert_int_not_equal(weft_reply_decode(b.data, b.len, &r), WEFT_OK);
	b.len = 0;
	assert_int_equal(weft_reply_ack(WEFT_ACK_REJECTED,
					WEFT_REJECT_UNKNOWN_JOB, "no job", 0,
					&b),
			 WEFT_OK);
	assert_int_equal(weft_export_page_decode(b.data, b.len, &q),
			 WEFT_EINVAL);
	weft_buf_free(&env);
	weft_buf_free(&b);
}

static void test_limits(void **state)
{
	(void)state;
	weft_buf env, b;
	weft_buf_init(&env);
	weft_buf_init(&b);
	weft_buf_append(&env, "x", 1);
	weft_export_page p;
	weft_export_writer w;
	weft_export_env e;
	fill_page(&p, &w, &e, &env);
	/* WEFT_MAX_EXPORT_ENVELOPES envelopes: fine; one more: refused. */
	weft_export_env *many =
		calloc(WEFT_MAX_EXPORT_ENVELOPES + 1, sizeof(*many));
	assert_non_null(many);
	for (size_t i = 0; i <= WEFT_MAX_EXPORT_ENVELOPES; i++) {
		many[i].data = env.data;
		many[i].len = 1;
	}
	p.envs = many;
	p.nenvs = WEFT_MAX_EXPORT_ENVELOPES;
	assert_int_equal(weft_reply_export(&p, &b), WEFT_OK);
	weft_export_page q;
	assert_int_equal(weft_export_page_decode(b.data, b.len, &q), WEFT_OK);
	assert_int_equal(q.nenvs, WEFT_MAX_EXPORT_ENVELOPES);
	weft_export_page_release(&q);
	p.nenvs++;
	b.len = 0;
	assert_int_equal(weft_reply_export(&p, &b), WEFT_EINVAL);
	free(many);
	/* One envelope over WEFT_MAX_ENVELOPE_BYTES: refused. */
	uint8_t *big = calloc(1, WEFT_MAX_ENVELOPE_BYTES + 1);
	assert_non_null(big);
	weft_export_env one = {big, WEFT_MAX_ENVELOPE_BYTES + 1};
	p.envs = &one;
	p.nenvs = 1;
	assert_int_equal(weft_reply_export(&p, &b), WEFT_EINVAL);
	one.len = WEFT_MAX_ENVELOPE_BYTES;
	assert_int_equal(weft_reply_export(&p, &b), WEFT_OK);
	assert_int_equal(weft_export_page_decode(b.data, b.len, &q), WEFT_OK);
	assert_int_equal(q.envs[0].len, WEFT_MAX_ENVELOPE_BYTES);
	weft_export_page_release(&q);
	free(big);
	/* Writers over the limit: refused. */
	p.envs = NULL;
	p.nenvs = 0;
	p.nwriters = WEFT_MAX_EXPORT_WRITERS + 1;
	b.len = 0;
	assert_int_equal(weft_reply_export(&p, &b), WEFT_EINVAL);
	weft_buf_free(&env);
	weft_buf_free(&b);
}

WEFT_TEST_MAIN(cmocka_unit_test(test_request), cmocka_unit_test(test_page),
	       cmocka_unit_test(test_limits))
