/*
 * wire_test.c - unit tests for the distribution wire formats (weft/wire.h):
 * ids and tokens, envelope signatures (every field the signature covers,
 * tampered one at a time), fragments, requests and replies round-tripped,
 * and the rejection rules (truncation, trailing bytes, keys of another
 * kind, limits).
 *
 * With WEFT_SCHEMA_CORPUS=<dir> set, the round-trip samples are also
 * written to <dir>/fuzz_<type>/ as seeds for the fuzz targets (that is how
 * schema/fuzz/corpus/fuzz_{envelope,fragment,request,reply} were made).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "codec_equal.h"
#include "limit_testutil.h"
#include <weft/wire.h>

static const char job_id[] = "0b7e4c1a-9d2f-4e6a-8c3b-5f1d2e3a4b5c";
static const char token[] = "0123456789abcdef0123456789abcdef";

static void save_seed(const char *type, const weft_buf *b)
{
	static int n;
	const char *dir = getenv("WEFT_SCHEMA_CORPUS");
	if (!dir)
		return;
	char path[4096];
	snprintf(path, sizeof(path), "%s/fuzz_%s", dir, type);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/fuzz_%s/seed_w%03d", dir, type, n++);
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(b->data, 1, b->len, f), b->len);
	fclose(f);
}

/* ---- Ids, tokens, keys ---- */

static void test_uuid_and_token(void **state)
{
	(void)state;
	char a[WEFT_JOB_ID_BYTES + 1], b[WEFT_JOB_ID_BYTES + 1];
	weft_uuid_new(a);
	weft_uuid_new(b);
	assert_int_equal(weft_job_id_check(a), 0);
	assert_string_not_equal(a, b);
	assert_int_equal(a[14], '4');
	assert_int_equal(weft_job_id_check(job_id), 0);
	assert_int_equal(
		weft_job_id_check("0B7E4C1A-9D2F-4E6A-8C3B-5F1D2E3A4B5C"), -1);
	assert_int_equal(
		weft_job_id_check("0b7e4c1a-9d2f-4e6a-8c3b-5f1d2e3a4b5"), -1);
	assert_int_equal(
		weft_job_id_check("0b7e4c1a-9d2f-4e6a-8c3b-5f1d2e3a4b5cc"), -1);
	assert_int_equal(
		weft_job_id_check("0b7e4c1a_9d2f-4e6a-8c3b-5f1d2e3a4b5c"), -1);
	assert_int_equal(weft_job_id_check(NULL), -1);

	char t[WEFT_TOKEN_TEXT_BYTES];
	weft_token_new(t);
	assert_int_equal(strlen(t), 64);
	assert_int_equal(weft_token_check(t), 0);
	assert_int_equal(weft_token_check("short"), -1);
	assert_int_equal(weft_token_check("0123456789abcdef 123"), -1);
	assert_length_limit(weft_token_check, WEFT_MAX_TOKEN_BYTES);
}

static void test_pubkey_text(void **state)
{
	(void)state;
	weft_writer_key k;
	assert_int_equal(weft_writer_key_new(&k), WEFT_OK);
	char text[WEFT_PUBKEY_TEXT_BYTES];
	weft_pubkey_to_text(k.pk, text);
	assert_int_equal(strlen(text), 64);
	uint8_t back[WEFT_PUBKEY_BYTES];
	assert_int_equal(weft_pubkey_from_text(text, back), WEFT_OK);
	assert_memory_equal(back, k.pk, WEFT_PUBKEY_BYTES);
	text[3] = 'G';
	assert_int_equal(weft_pubkey_from_text(text, back), WEFT_EINVAL);
	assert_int_equal(weft_pubkey_from_text("abcd", back), WEFT_EINVAL);
}

/* The job key is a function of the token alone; its signatures verify
 * only for the job, writer or exit code they were made for, and only
 * under their own domain (an enrolment never passes as a job end). */
static void test_job_key(void **state)
{
	(void)state;
	weft_writer_key a, b, other;
	assert_int_equal(weft_job_key(token, &a), WEFT_OK);
	assert_int_equal(weft_job_key(token, &b), WEFT_OK);
	assert_memory_equal(a.pk, b.pk, WEFT_PUBKEY_BYTES);
	assert_memory_equal(a.sk, b.sk, WEFT_SECKEY_BYTES);
	assert_int_equal(
		weft_job_key("0123456789abcdef0123456789abcdeF", &other),
		WEFT_OK);
	assert_memory_not_equal(a.pk, other.pk, WEFT_PUBKEY_BYTES);
	/* The verifier is not the legacy key, nor anything made from it. */
	uint8_t key[WEFT_MAC_BYTES];
	weft_enrol_key(token, key);
	assert_memory_not_equal(a.pk, key, WEFT_PUBKEY_BYTES);

	uint8_t pk[WEFT_PUBKEY_BYTES] = {1, 2, 3}, pk2[WEFT_PUBKEY_BYTES] = {9};
	uint8_t sig[WEFT_SIG_BYTES];
	assert_int_equal(weft_enrol_sign(&a, job_id, pk, sig), WEFT_OK);
	assert_int_equal(weft_enrol_verify(a.pk, job_id, pk, sig), WEFT_OK);
	assert_int_equal(weft_enrol_verify(a.pk, job_id, pk2, sig), WEFT_ESIG);
	assert_int_equal(weft_enrol_verify(other.pk, job_id, pk, sig),
			 WEFT_ESIG);
	assert_int_equal(
		weft_enrol_verify(a.pk, "00000000-0000-4000-8000-000000000000",
				  pk, sig),
		WEFT_ESIG);
	assert_int_equal(weft_job_end_sign(&a, job_id, 0, sig), WEFT_OK);
	assert_int_equal(weft_job_end_verify(a.pk, job_id, 0, sig), WEFT_OK);
	assert_int_equal(weft_job_end_verify(a.pk, job_id, -1, sig), WEFT_ESIG);
	uint8_t zero[WEFT_PUBKEY_BYTES] = {0};
	assert_int_equal(weft_enrol_verify(a.pk, job_id, zero, sig), WEFT_ESIG);
}

static void test_macs(void **state)
{
	(void)state;
	uint8_t pk[WEFT_PUBKEY_BYTES] = {1, 2, 3};
	uint8_t k1[WEFT_MAC_BYTES], k2[WEFT_MAC_BYTES];
	uint8_t m1[WEFT_MAC_BYTES], m2[WEFT_MAC_BYTES];
	weft_enrol_key(token, k1);
	weft_enrol_key("0123456789abcdef0123456789abcdeF", k2);
	assert_memory_not_equal(k1, k2, WEFT_MAC_BYTES);
	weft_enrol_mac(k1, job_id, pk, m1);
	weft_enrol_mac(k1, job_id, pk, m2);
	assert_true(weft_mac_equal(m1, m2));
	weft_enrol_mac(k2, job_id, pk, m2);
	assert_false(weft_mac_equal(m1, m2));
	pk[0] ^= 1;
	weft_enrol_mac(k1, job_id, pk, m2);
	assert_false(weft_mac_equal(m1, m2));
	/* The job-end MAC is another domain: never equal to an enrolment's. */
	weft_job_end_mac(k1, job_id, 0, m2);
	assert_false(weft_mac_equal(m1, m2));
	weft_job_end_mac(k1, job_id, 1, m1);
	assert_false(weft_mac_equal(m1, m2));
}

/* ---- Envelope ---- */

static void test_envelope_roundtrip_and_tamper(void **state)
{
	(void)state;
	weft_writer_key k, other;
	assert_int_equal(weft_writer_key_new(&k), WEFT_OK);
	assert_int_equal(weft_writer_key_new(&other), WEFT_OK);
	const uint8_t payload[] = "fragment bytes";
	weft_buf b;
	weft_buf_init(&b);
	assert_int_equal(
		weft_envelope_seal(job_id, &k, 7, payload, sizeof(payload), &b),
		WEFT_OK);
	save_seed("envelope", &b);
	weft_envelope e;
	assert_int_equal(weft_envelope_decode(b.data, b.len, &e), WEFT_OK);
	assert_string_equal(e.job, job_id);
	assert_int_equal(e.seq, 7);
	assert_memory_equal(e.writer, k.pk, WEFT_PUBKEY_BYTES);
	assert_int_equal(e.payload_len, sizeof(payload));
	assert_memory_equal(e.payload, payload, sizeof(payload));
	assert_false(e.payload_hashed);
	assert_int_equal(weft_envelope_verify(&e), WEFT_OK);
	/* The check keeps the payload's hash for what comes next. */
	uint8_t h[32];
	weft_payload_hash(payload, sizeof(payload), h);
	assert_true(e.payload_hashed);
	assert_memory_equal(e.payload_hash, h, 32);

	weft_envelope t = e;
	t.seq = 8;
	assert_int_equal(weft_envelope_verify(&t), WEFT_ESIG);
	assert_false(t.payload_hashed); /* a failed check keeps none */
	t = e;
	t.job[0] = '1';
	assert_int_equal(weft_envelope_verify(&t), WEFT_ESIG);
	t = e;
	memcpy(t.writer, other.pk, WEFT_PUBKEY_BYTES);
	assert_int_equal(weft_envelope_verify(&t), WEFT_ESIG);
	t = e; /* the hash e keeps is never trusted: hashed again */
	t.payload_len--;
	assert_int_equal(weft_envelope_verify(&t), WEFT_ESIG);
	t = e;
	t.sig[10] ^= 1;
	assert_int_equal(weft_envelope_verify(&t), WEFT_ESIG);

	/* A flipped payload byte in the encoded envelope. */
	uint8_t *copy = malloc(b.len);
	memcpy(copy, b.data, b.len);
	uint8_t *p = memmem(copy, b.len, "fragment", 8);
	assert_non_null(p);
	*p ^= 1;
	assert_int_equal(weft_envelope_decode(copy, b.len, &t), WEFT_OK);
	assert_int_equal(weft_envelope_verify(&t), WEFT_ESIG);
	free(copy);

	/* Every proper prefix is truncated; a trailing byte is refused. */
	for (size_t n = 0; n < b.len; n++)
		assert_int_equal(weft_envelope_decode(b.data, n, &t),
				 WEFT_ETRUNC);
	weft_buf_append(&b, "", 1);
	assert_int_equal(weft_envelope_decode(b.data, b.len, &t),
			 WEFT_ETRAILING);
	weft_buf_free(&b);
}

static void test_envelope_limits(void **state)
{
	(void)state;
	weft_writer_key k;
	weft_writer_key_new(&k);
	uint8_t *big = calloc(1, WEFT_MAX_PAYLOAD_BYTES + 1);
	weft_buf b;
	weft_buf_init(&b);
	assert_int_equal(weft_envelope_seal(job_id, &k, 1, big,
					    WEFT_MAX_PAYLOAD_BYTES + 1, &b),
			 WEFT_ETOOBIG);
	assert_int_equal(b.len, 0);
	assert_int_equal(weft_envelope_seal(job_id, &k, 1, big,
					    WEFT_MAX_PAYLOAD_BYTES, &b),
			 WEFT_OK);
	assert_true(b.len <= WEFT_MAX_ENVELOPE_BYTES);
	weft_envelope e;
	assert_int_equal(weft_envelope_decode(b.data, b.len, &e), WEFT_OK);
	assert_int_equal(weft_envelope_verify(&e), WEFT_OK);
	weft_buf_free(&b);
	assert_int_equal(weft_envelope_seal(job_id, &k, 0, big, 1, &b),
			 WEFT_EINVAL);
	assert_int_equal(weft_envelope_seal("nope", &k, 1, big, 1, &b),
			 WEFT_EINVAL);
	free(big);
}

/* ---- Fragment ---- */

/* A sample fragment of a new writer, whose key is k. */
static void fill_fragment(weft_fragment *f, weft_writer_key *k)
{
	assert_int_equal(weft_writer_key_new(k), WEFT_OK);
	weft_fragment_init(f);
	memcpy(f->job, job_id, sizeof(job_id));
	memcpy(f->writer, k->pk, WEFT_PUBKEY_BYTES);
	f->seq = 3;
	strcpy(f->task.id, "123.0.4@node7");
	strcpy(f->task.name, "python train.py");
	strcpy(f->task.parent, "123.0.0@node1");
	strcpy(f->task.engine[0].key, "slurm_job");
	strcpy(f->task.engine[0].value, "123");
	strcpy(f->task.engine[1].key, "slurm_node");
	strcpy(f->task.engine[1].value, "node7");
	f->task.nengine = 2;
	strcpy(f->preflight, "ptrace: ok (5 checks)");
	f->part = 1;
	f->nparts = 2;
	weft_report *r = &f->report;
	strcpy(r->run_id, "6a1c2d3e-0000-4000-8000-000000000001");
	strcpy(r->backend, "ptrace");
	strcpy(r->node, "node7");
	r->exit_code = 3;
	r->started_ns = 1000;
	r->ended_ns = 2000;
	weft_process_rec *p = weft_report_add_process(r);
	p->pid = 42;
	p->argc = 2;
	p->argv = calloc(3, sizeof(char *));
	p->argv[0] = strdup("cat");
	p->argv[1] = strdup("/in");
	p->cwd = strdup("/tmp");
	p->exited = true;
	weft_file_rec *fr = weft_report_add_file(r);
	fr->path = strdup("/in");
	fr->read = true;
	fr->has_hash = true;
	memset(fr->hash, 0xab, 32);
	weft_report_warn(r, "a warning");
	r->dropped_events = 5;
}

static void test_fragment_roundtrip(void **state)
{
	(void)state;
	weft_writer_key k;
	weft_fragment f, g;
	fill_fragment(&f, &k);
	weft_buf b;
	weft_buf_init(&b);
	assert_int_equal(weft_fragment_encode(&f, &b), WEFT_OK);
	save_seed("fragment", &b);
	assert_int_equal(weft_fragment_decode(b.data, b.len, &g), WEFT_OK);
	assert_string_equal(g.job, f.job);
	assert_memory_equal(g.writer, f.writer, WEFT_PUBKEY_BYTES);
	assert_int_equal(g.seq, 3);
	assert_string_equal(g.task.id, f.task.id);
	assert_string_equal(g.task.name, f.task.name);
	assert_string_equal(g.task.parent, f.task.parent);
	assert_int_equal(g.task.nengine, 2);
	assert_string_equal(g.task.engine[1].key, "slurm_node");
	assert_string_equal(g.task.engine[1].value, "node7");
	assert_string_equal(g.preflight, f.preflight);
	assert_int_equal(g.part, 1);
	assert_int_equal(g.nparts, 2);
	assert_true(weft_report_equal(&f.report, &g.report));
	weft_fragment_release(&g);

	for (size_t n = 0; n < b.len; n++)
		assert_int_not_equal(weft_fragment_decode(b.data, n, &g),
				     WEFT_OK);

	/* Header rules. */
	weft_buf_free(&b);
	f.part = 2;
	assert_int_equal(weft_fragment_encode(&f, &b), WEFT_EINVAL);
	f.part = 0;
	f.seq = 0;
	assert_int_equal(weft_fragment_encode(&f, &b), WEFT_EINVAL);
	f.seq = 1;
	f.task.id[0] = '\0';
	assert_int_equal(weft_fragment_encode(&f, &b), WEFT_EINVAL);
	strcpy(f.task.id, "t");
	f.task.nengine = WEFT_MAX_ENGINE_IDS + 1;
	assert_int_equal(weft_fragment_encode(&f, &b), WEFT_ETOOBIG);
	f.task.nengine = 0;
	strcpy(f.job, "not-a-job");
	assert_int_equal(weft_fragment_encode(&f, &b), WEFT_EINVAL);
	assert_int_equal(b.len, 0);
	weft_fragment_release(&f);
}

static void test_fragment_sealed(void **state)
{
	(void)state;
	/* The path a wrapper takes: fragment -> envelope -> request, and the
	 * coordinator's way back. */
	weft_writer_key k;
	weft_fragment f, g;
	fill_fragment(&f, &k);
	weft_buf payload, env, req;
	weft_buf_init(&payload);
	weft_buf_init(&env);
	weft_buf_init(&req);
	assert_int_equal(weft_fragment_encode(&f, &payload), WEFT_OK);
	assert_int_equal(weft_envelope_seal(f.job, &k, f.seq, payload.data,
					    payload.len, &env),
			 WEFT_OK);
	save_seed("envelope", &env);
	assert_int_equal(weft_req_fragment(env.data, env.len, &req), WEFT_OK);
	save_seed("request", &req);

	weft_request r;
	assert_int_equal(weft_request_decode(req.data, req.len, &r), WEFT_OK);
	assert_int_equal(r.kind, WEFT_REQ_FRAGMENT);
	weft_envelope e;
	assert_int_equal(weft_envelope_decode(r.env, r.env_len, &e), WEFT_OK);
	assert_int_equal(weft_envelope_verify(&e), WEFT_OK);
	assert_int_equal(weft_fragment_decode(e.payload, e.payload_len, &g),
			 WEFT_OK);
	assert_int_equal(g.seq, e.seq);
	assert_memory_equal(g.writer, e.writer, WEFT_PUBKEY_BYTES);
	weft_fragment_release(&g);
	weft_request_release(&r);
	weft_fragment_release(&f);
	weft_buf_free(&payload);
	weft_buf_free(&env);
	weft_buf_free(&req);
}

/* ---- Requests ---- */

static void test_requests(void **state)
{
	(void)state;
	weft_buf b;
	weft_buf_init(&b);
	weft_request r;

	weft_job_info j = {0};
	strcpy(j.id, job_id);
	strcpy(j.token, token);
	j.command = "sbatch job.sh";
	strcpy(j.user, "ada");
	strcpy(j.host, "laptop");
	strcpy(j.cwd, "/home/ada/proj");
	strcpy(j.git, "0123abcd");
	j.created_ns = 12345;
	uint8_t skey[WEFT_SUBMIT_KEY_BYTES], proof[WEFT_MAC_BYTES];
	memset(skey, 7, sizeof(skey));
	assert_int_equal(weft_req_job_create(&j, skey, &b), WEFT_OK);
	save_seed("request", &b);
	assert_int_equal(weft_request_decode(b.data, b.len, &r), WEFT_OK);
	assert_int_equal(r.kind, WEFT_REQ_JOB_CREATE);
	/* The proof binds the submit key, the job id and every field. */
	assert_true(r.has_auth);
	weft_job_create_mac(skey, &j, proof);
	assert_true(weft_mac_equal(r.auth, proof));
	skey[0] ^= 1;
	weft_job_create_mac(skey, &j, proof);
	assert_false(weft_mac_equal(r.auth, proof));
	skey[0] ^= 1;
	weft_job_info other = r.job_info;
	other.id[0] = other.id[0] == 'a' ? 'b' : 'a';
	weft_job_create_mac(skey, &other, proof);
	assert_false(weft_mac_equal(r.auth, proof));
	other = r.job_info;
	other.created_ns++;
	weft_job_create_mac(skey, &other, proof);
	assert_false(weft_mac_equal(r.auth, proof));
	other = r.job_info;
	other.command = "sbatch job.shx";
	weft_job_create_mac(skey, &other, proof);
	assert_false(weft_mac_equal(r.auth, proof));
	assert_string_equal(r.job_info.id, job_id);
	assert_string_equal(r.job_info.token, token);
	assert_string_equal(r.job_info.command, "sbatch job.sh");
	assert_string_equal(r.job_info.user, "ada");
	assert_string_equal(r.job_info.host, "laptop");
	assert_string_equal(r.job_info.cwd, "/home/ada/proj");
	assert_string_equal(r.job_info.git, "0123abcd");
	assert_int_equal(r.job_info.created_ns, 12345);
	weft_request_release(&r);
	for (size_t n = 0; n < b.len; n++)
		assert_int_not_equal(weft_request_decode(b.data, n, &r),
				     WEFT_OK);
	weft_buf_free(&b);
	/* Without a key: no proof, still well-formed (the coordinator
	 * refuses it with its reason). */
	assert_int_equal(weft_req_job_create(&j, NULL, &b), WEFT_OK);
	assert_int_equal(weft_request_decode(b.data, b.len, &r), WEFT_OK);
	assert_false(r.has_auth);
	weft_request_release(&r);
	weft_buf_free(&b);
	strcpy(j.token, "short");
	assert_int_equal(weft_req_job_create(&j, skey, &b), WEFT_EINVAL);

	uint8_t key[WEFT_MAC_BYTES], mac[WEFT_MAC_BYTES];
	weft_enrol_key(token, key);
	assert_int_equal(weft_req_job_end(job_id, token, 2, 999, &b), WEFT_OK);
	save_seed("request", &b);
	assert_int_equal(weft_request_decode(b.data, b.len, &r), WEFT_OK);
	assert_int_equal(r.kind, WEFT_REQ_JOB_END);
	assert_string_equal(r.job, job_id);
	assert_int_equal(r.exit_code, 2);
	assert_int_equal(r.ended_ns, 999);
	weft_job_end_mac(key, job_id, 2, mac);
	assert_true(r.proof.has_mac && r.proof.has_sig);
	assert_true(weft_mac_equal(mac, r.proof.mac));
	uint8_t vk[WEFT_PUBKEY_BYTES];
	assert_int_equal(weft_job_verifier(token, vk), WEFT_OK);
	assert_int_equal(weft_job_end_verify(vk, job_id, 2, r.proof.sig),
			 WEFT_OK);
	assert_int_equal(weft_job_end_verify(vk, job_id, 3, r.proof.sig),
			 WEFT_ESIG);
	weft_request_release(&r);
	weft_buf_free(&b);

	weft_writer_key k;
	weft_writer_key_new(&k);
	assert_int_equal(weft_req_enrol(job_id, token, k.pk, &b), WEFT_OK);
	save_seed("request", &b);
	assert_int_equal(weft_request_decode(b.data, b.len, &r), WEFT_OK);
	assert_int_equal(r.kind, WEFT_REQ_ENROL);
	assert_memory_equal(r.writer, k.pk, WEFT_PUBKEY_BYTES);
	weft_enrol_mac(key, job_id, k.pk, mac);
	assert_true(weft_mac_equal(mac, r.proof.mac));
	assert_int_equal(weft_enrol_verify(vk, job_id, k.pk, r.proof.sig),
			 WEFT_OK);
	weft_buf_free(&b);

	assert_int_equal(weft_req_status(NULL, &b), WEFT_OK);
	save_seed("request", &b);
	assert_int_equal(weft_request_decode(b.data, b.len, &r), WEFT_OK);
	assert_int_equal(r.kind, WEFT_REQ_STATUS);
	assert_false(r.has_job);
	weft_buf_free(&b);
	assert_int_equal(weft_req_status(job_id, &b), WEFT_OK);
	save_seed("request", &b);
	assert_int_equal(weft_request_decode(b.data, b.len, &r), WEFT_OK);
	assert_true(r.has_job);
	assert_string_equal(r.job, job_id);
	weft_buf_free(&b);
}

/* Bytes of a msgpack map written by hand: {v:1, t:kind, extra...}. */
static void test_request_rejections(void **state)
{
	(void)state;
	weft_request r;
	/* {"v":1,"t":5,"env":<bin 0>}: a key of another kind. */
	const uint8_t other_kind[] = {0x83, 0xa1, 'v', 1,   0xa1, 't', 5,
				      0xa3, 'e',  'n', 'v', 0xc4, 0};
	/* {"v":1,"t":9}: no such kind. */
	const uint8_t bad_kind[] = {0x82, 0xa1, 'v', 1, 0xa1, 't', 9};
	/* {"v":99,...}: another version. */
	const uint8_t bad_v[] = {0x82, 0xa1, 'v', 99, 0xa1, 't', 5};
	/* {"v":1,"t":4}: a fragment without its envelope. */
	const uint8_t missing[] = {0x82, 0xa1, 'v', 1, 0xa1, 't', 4};
	/* {"v":1,"x":5}: the kind must come second. */
	const uint8_t no_t[] = {0x82, 0xa1, 'v', 1, 0xa1, 'x', 5};
	/* {"v":1,"t":5}: status of every job. */
	const uint8_t ok[] = {0x82, 0xa1, 'v', 1, 0xa1, 't', 5};
	const struct {
		const uint8_t *msg;
		size_t len;
		int rc;
	} cases[] = {
		{other_kind, sizeof(other_kind), WEFT_EINVAL},
		{bad_kind, sizeof(bad_kind), WEFT_EINVAL},
		{bad_v, sizeof(bad_v), WEFT_EVERSION},
		{missing, sizeof(missing), WEFT_EINVAL},
		{no_t, sizeof(no_t), WEFT_EINVAL},
		{ok, sizeof(ok), WEFT_OK},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_int_equal(
			weft_request_decode(cases[i].msg, cases[i].len, &r),
			cases[i].rc);
}

/* ---- Replies ---- */

static void test_ack(void **state)
{
	(void)state;
	weft_buf b;
	weft_buf_init(&b);
	weft_reply r;
	assert_int_equal(weft_reply_ack(WEFT_ACK_REJECTED, WEFT_REJECT_REPLAY,
					"seq 4 differs", 4, &b),
			 WEFT_OK);
	save_seed("reply", &b);
	assert_int_equal(weft_reply_decode(b.data, b.len, &r), WEFT_OK);
	assert_int_equal(r.kind, WEFT_REPLY_ACK);
	assert_int_equal(r.ack.status, WEFT_ACK_REJECTED);
	assert_int_equal(r.ack.reason, WEFT_REJECT_REPLAY);
	assert_string_equal(r.ack.detail, "seq 4 differs");
	assert_int_equal(r.ack.seq, 4);
	weft_reply_release(&r);
	for (size_t n = 0; n < b.len; n++)
		assert_int_not_equal(weft_reply_decode(b.data, n, &r), WEFT_OK);
	weft_buf_free(&b);
	assert_int_equal(weft_reply_ack(4, 0, "", 0, &b), WEFT_EINVAL);
	assert_int_equal(weft_reply_ack(0, WEFT_REJECT_REASON_MAX, "", 0, &b),
			 WEFT_EINVAL);
	/* A long detail is cut, not refused. */
	char longer[2 * WEFT_MAX_REASON_BYTES];
	memset(longer, 'x', sizeof(longer) - 1);
	longer[sizeof(longer) - 1] = '\0';
	assert_int_equal(weft_reply_ack(WEFT_ACK_STORED, 0, longer, 1, &b),
			 WEFT_OK);
	assert_int_equal(weft_reply_decode(b.data, b.len, &r), WEFT_OK);
	assert_int_equal(strlen(r.ack.detail), WEFT_MAX_REASON_BYTES);
	weft_buf_free(&b);
	assert_string_equal(weft_reject_name(WEFT_REJECT_REPLAY),
			    "replay with different content");
	assert_string_equal(weft_reject_name(99), "unknown reason");
}

static void test_status_reply(void **state)
{
	(void)state;
	weft_status_writer ws[2] = {
		{.enrolled_ns = 5, .fragments = 3, .max_seq = 5, .missing = 2},
		{.enrolled_ns = 6},
	};
	ws[0].pk[0] = 7;
	weft_status_task ts[1] = {{.parts_stored = 12, .nparts = 429}};
	strcpy(ts[0].id, "task-1");
	strcpy(ts[0].name, "train");
	strcpy(ts[0].node, "node7");
	weft_status_job jobs[2] = {
		{.ended = true,
		 .created_ns = 1,
		 .ended_ns = 2,
		 .exit_code = 0,
		 .fragments = 3,
		 .bytes = 300,
		 .rejects = 1,
		 .writers = ws,
		 .nwriters = 2,
		 .incomplete = 2,
		 .tasks = ts,
		 .ntasks = 1},
		{.exit_code = -1},
	};
	strcpy(jobs[0].id, job_id);
	strcpy(jobs[0].command, "sbatch x");
	weft_uuid_new(jobs[1].id);
	weft_status st = {.jobs = jobs, .njobs = 2, .requests = 10};
	st.rejects[WEFT_REJECT_BAD_SIGNATURE] = 4;
	weft_buf b;
	weft_buf_init(&b);
	assert_int_equal(weft_reply_status(&st, &b), WEFT_OK);
	save_seed("reply", &b);
	weft_reply r;
	assert_int_equal(weft_reply_decode(b.data, b.len, &r), WEFT_OK);
	assert_int_equal(r.kind, WEFT_REPLY_STATUS);
	assert_int_equal(r.status.njobs, 2);
	assert_int_equal(r.status.requests, 10);
	assert_int_equal(r.status.rejects[WEFT_REJECT_BAD_SIGNATURE], 4);
	const weft_status_job *j = &r.status.jobs[0];
	assert_string_equal(j->id, job_id);
	assert_true(j->ended);
	assert_string_equal(j->command, "sbatch x");
	assert_int_equal(j->bytes, 300);
	assert_int_equal(j->nwriters, 2);
	assert_int_equal(j->writers[0].pk[0], 7);
	assert_int_equal(j->writers[0].missing, 2);
	assert_int_equal(j->incomplete, 2);
	assert_int_equal(j->ntasks, 1);
	assert_string_equal(j->tasks[0].name, "train");
	assert_string_equal(j->tasks[0].node, "node7");
	assert_int_equal(j->tasks[0].parts_stored, 12);
	assert_int_equal(j->tasks[0].nparts, 429);
	assert_int_equal(r.status.jobs[1].exit_code, -1);
	assert_int_equal(r.status.jobs[1].nwriters, 0);
	assert_int_equal(r.status.jobs[1].incomplete, 0);
	weft_reply_release(&r);
	/* More parts stored than expected, or more tasks than counted: not
	 * a status. */
	ts[0].parts_stored = 430;
	b.len = 0;
	assert_int_equal(weft_reply_status(&st, &b), WEFT_EINVAL);
	ts[0].parts_stored = 12;
	jobs[0].incomplete = 0;
	assert_int_equal(weft_reply_status(&st, &b), WEFT_EINVAL);
	jobs[0].incomplete = 2;
	b.len = 0;
	assert_int_equal(weft_reply_status(&st, &b), WEFT_OK);
	for (size_t n = 0; n < b.len; n++) {
		assert_int_not_equal(weft_reply_decode(b.data, n, &r), WEFT_OK);
		assert_null(r.status.jobs);
	}
	weft_buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_uuid_and_token),
		cmocka_unit_test(test_pubkey_text),
		cmocka_unit_test(test_macs),
		cmocka_unit_test(test_job_key),
		cmocka_unit_test(test_envelope_roundtrip_and_tamper),
		cmocka_unit_test(test_envelope_limits),
		cmocka_unit_test(test_fragment_roundtrip),
		cmocka_unit_test(test_fragment_sealed),
		cmocka_unit_test(test_requests),
		cmocka_unit_test(test_request_rejections),
		cmocka_unit_test(test_ack),
		cmocka_unit_test(test_status_reply),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
