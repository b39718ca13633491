/*
 * coordinator_test.c - unit tests of libweft_coordinator in one process,
 * over a scratch store, on inproc:// and, the way `weft run` uses it, in
 * process (no listener: requests through weft_coordinator_handle), the
 * same requests and answers either way, the status it answers,
 * what is in the store after weft_coordinator_stop, a task's start
 * announced, and start errors that name what failed.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <sys/resource.h>
#include <time.h>

#include <weft/coordinator.h>
#include <weft/store.h>

static const char token[] = "coordinator-test-token-0123";
static const uint8_t submit_key[WEFT_SUBMIT_KEY_BYTES] = {1, 2, 3};

struct fx {
	char dir[64], db[96];
	weft_coordinator *c;
	bool direct; /* in_process: weft_coordinator_handle, not nng */
	char job[WEFT_JOB_ID_BYTES + 1];
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "/tmp/weft-coord-test-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->db, sizeof(f->db), "%s/s.db", f->dir);
	weft_uuid_new(f->job);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	weft_coordinator_stop(f->c);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

/* Send req to the coordinator (over nng, or directly) and decode its
 * reply. */
static void call_reply(struct fx *f, weft_buf *req, weft_reply *r)
{
	uint8_t *reply;
	size_t n;
	char err[256];
	if (f->direct)
		assert_int_equal(weft_coordinator_handle(f->c, req->data,
							 req->len, &reply, &n),
				 WEFT_OK);
	else
		assert_int_equal(
			weft_coordinator_call(weft_coordinator_url(f->c), NULL,
					      req->data, req->len, 5000, &reply,
					      &n, err, sizeof(err)),
			WEFT_OK);
	weft_buf_free(req);
	assert_int_equal(weft_reply_decode(reply, n, r), WEFT_OK);
	free(reply);
}

/* Send req and decode its acknowledgement. */
static weft_ack call(struct fx *f, weft_buf *req)
{
	weft_reply r;
	call_reply(f, req, &r);
	assert_int_equal(r.kind, WEFT_REPLY_ACK);
	return r.ack;
}

static void start(struct fx *f, const char *url)
{
	weft_coordinator_opts o = {.listen_url = url,
				   .in_process = f->direct,
				   .store_path = f->db,
				   .submit_key = submit_key,
				   .contexts = 4};
	char err[512];
	assert_int_equal(weft_coordinator_start(&o, &f->c, err, sizeof(err)),
			 WEFT_OK);
}

/* The fixture's job, stored. */
static void create_job(struct fx *f)
{
	weft_buf req;
	weft_buf_init(&req);
	weft_job_info j = {0};
	memcpy(j.id, f->job, sizeof(j.id));
	strcpy(j.token, token);
	j.command = "weft run -- make";
	assert_int_equal(weft_req_job_create(&j, submit_key, &req), WEFT_OK);
	assert_int_equal(call(f, &req).status, WEFT_ACK_STORED);
}

/* A new writer key *k enrolled in the fixture's job, and *fr the first
 * fragment of its task (a run with no id and no records yet). */
static void enrol_for_fragment(struct fx *f, weft_writer_key *k,
			       weft_fragment *fr)
{
	weft_buf req;
	weft_buf_init(&req);
	weft_writer_key_new(k);
	assert_int_equal(weft_req_enrol(f->job, token, k->pk, &req), WEFT_OK);
	assert_int_equal(call(f, &req).status, WEFT_ACK_STORED);
	weft_fragment_init(fr);
	memcpy(fr->job, f->job, sizeof(fr->job));
	memcpy(fr->writer, k->pk, 32);
	fr->seq = 1;
	strcpy(fr->task.id, "local");
	fr->nparts = 1;
	strcpy(fr->report.backend, "ptrace");
	strcpy(fr->report.node, "here");
}

/* A job created, a writer enrolled, a fragment stored (then a
 * duplicate), the status, the job ended: all in the store after stop. */
static void round_trip(struct fx *f, const char *url)
{
	start(f, url);
	assert_string_equal(weft_coordinator_url(f->c), url);
	weft_buf req;
	weft_buf_init(&req);
	create_job(f);

	weft_writer_key k;
	weft_fragment fr;
	enrol_for_fragment(f, &k, &fr);
	strcpy(fr.report.run_id, "run-local-1");
	weft_buf payload, env;
	weft_buf_init(&payload);
	weft_buf_init(&env);
	assert_int_equal(weft_fragment_encode(&fr, &payload), WEFT_OK);
	assert_int_equal(weft_envelope_seal(f->job, &k, 1, payload.data,
					    payload.len, &env),
			 WEFT_OK);
	assert_int_equal(weft_req_fragment(env.data, env.len, &req), WEFT_OK);
	weft_buf again;
	weft_buf_init(&again);
	weft_buf_append(&again, req.data, req.len);
	weft_ack a = call(f, &req);
	assert_int_equal(a.status, WEFT_ACK_STORED);
	assert_int_equal(a.seq, 1);
	assert_int_equal(call(f, &again).status, WEFT_ACK_DUPLICATE);
	weft_buf_free(&payload);
	weft_buf_free(&env);

	/* Bytes that are no request: refused as such. */
	weft_buf_append(&req, "\xc1junk", 5);
	weft_ack bad = call(f, &req);
	assert_int_equal(bad.status, WEFT_ACK_REJECTED);
	assert_int_equal(bad.reason, WEFT_REJECT_MALFORMED);

	assert_int_equal(weft_req_status(NULL, &req), WEFT_OK);
	weft_reply sr;
	call_reply(f, &req, &sr);
	assert_int_equal(sr.kind, WEFT_REPLY_STATUS);
	weft_status *st = &sr.status;
	assert_int_equal(st->njobs, 1);
	assert_int_equal(st->jobs[0].fragments, 1);
	assert_int_equal(st->jobs[0].nwriters, 1);
	assert_true(st->requests >= 6);
	assert_int_equal(st->rejects[WEFT_REJECT_MALFORMED], 1);
	weft_reply_release(&sr);

	assert_int_equal(weft_req_job_end(f->job, token, 0, 2, &req), WEFT_OK);
	assert_int_equal(call(f, &req).status, WEFT_ACK_STORED);
	assert_int_equal(weft_coordinator_stop(f->c), WEFT_OK);
	f->c = NULL;

	/* Everything acknowledged is in the store. */
	weft_store *s;
	assert_int_equal(weft_store_open(f->db, &s), WEFT_OK);
	weft_job_record r;
	assert_int_equal(weft_store_get_job(s, f->job, &r), WEFT_OK);
	assert_true(r.ended);
	assert_int_equal(r.fragments, 1);
	assert_int_equal(r.tasks, 1);
	weft_job_record_release(&r);
	weft_store_close(s);
}

static void test_inproc_round_trip(void **state)
{
	round_trip(*state, "inproc://weft-coordinator-test");
}

/* In process (a local `weft run`'s): the same answers through
 * weft_coordinator_handle, and nothing listens on the URL, which only
 * names the coordinator. */
static void test_in_process(void **state)
{
	struct fx *f = *state;
	f->direct = true;
	round_trip(f, "inproc://weft-coordinator-test-direct");

	start(f, "inproc://weft-coordinator-test-direct");
	weft_buf req;
	weft_buf_init(&req);
	assert_int_equal(weft_req_status(NULL, &req), WEFT_OK);
	uint8_t *reply = NULL;
	size_t n;
	char err[256];
	assert_int_equal(weft_coordinator_call(weft_coordinator_url(f->c), NULL,
					       req.data, req.len, 300, &reply,
					       &n, err, sizeof(err)),
			 WEFT_EIO);
	assert_null(reply);
	weft_buf_free(&req);
}

/* A task start: stored once (then a duplicate), refused when not signed
 * with the job's token or malformed; the store holds one. */
static void test_task_start(void **state)
{
	struct fx *f = *state;
	start(f, "inproc://weft-coordinator-test-start");
	create_job(f);
	weft_task_start ts = {.started_ns = 1234};
	memcpy(ts.job, f->job, sizeof(ts.job));
	weft_uuid_new(ts.run);
	strcpy(ts.task, "t@n1");
	strcpy(ts.name, "make all");
	strcpy(ts.node, "n1");
	strcpy(ts.backend, "ptrace");
	assert_int_equal(weft_task_start_sign(&ts, token), WEFT_OK);
	weft_buf req, again;
	weft_buf_init(&req);
	weft_buf_init(&again);
	assert_int_equal(weft_req_task_start(&ts, &req), WEFT_OK);
	weft_buf_append(&again, req.data, req.len);
	assert_int_equal(call(f, &req).status, WEFT_ACK_STORED);
	assert_int_equal(call(f, &again).status, WEFT_ACK_DUPLICATE);
	assert_int_equal(weft_task_start_sign(&ts, "another-token-0123456789"),
			 WEFT_OK);
	assert_int_equal(weft_req_task_start(&ts, &req), WEFT_OK);
	weft_ack a = call(f, &req);
	assert_int_equal(a.status, WEFT_ACK_REJECTED);
	assert_int_equal(a.reason, WEFT_REJECT_BAD_TOKEN);
	assert_int_equal(weft_req_task_start(&ts, &req), WEFT_OK);
	req.len--; /* cut short */
	a = call(f, &req);
	assert_int_equal(a.status, WEFT_ACK_REJECTED);
	assert_int_equal(a.reason, WEFT_REJECT_MALFORMED);
	assert_int_equal(weft_coordinator_stop(f->c), WEFT_OK);
	f->c = NULL;
	weft_store *s;
	assert_int_equal(weft_store_open(f->db, &s), WEFT_OK);
	char *buf = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&buf, &len);
	assert_int_equal(weft_store_openlineage(s, f->job, NULL, NULL, m),
			 WEFT_OK);
	fclose(m);
	/* The job's START and the task's, nothing else yet. */
	assert_non_null(strstr(buf, "\"jobType\": \"TASK\""));
	assert_null(strstr(strstr(buf, "\"jobType\": \"TASK\"") + 1,
			   "\"jobType\": \"TASK\""));
	assert_non_null(strstr(buf, "make all"));
	free(buf);
	weft_store_close(s);
}

/* A request sent on its own thread: what the call returned. */
struct sender {
	const char *url;
	weft_buf req;
	int rc;
	weft_reply reply;
};

static void *send_main(void *arg)
{
	struct sender *x = arg;
	uint8_t *reply = NULL;
	size_t n = 0;
	char err[256];
	x->rc = weft_coordinator_call(x->url, NULL, x->req.data, x->req.len,
				      20000, &reply, &n, err, sizeof(err));
	if (x->rc == WEFT_OK)
		x->rc = weft_reply_decode(reply, n, &x->reply);
	free(reply);
	return NULL;
}

/* The coordinator's count of requests taken, by a status request (which
 * counts itself). */
static uint64_t requests_taken(struct fx *f)
{
	weft_buf req;
	weft_buf_init(&req);
	assert_int_equal(weft_req_status(NULL, &req), WEFT_OK);
	weft_reply r;
	call_reply(f, &req, &r);
	assert_int_equal(r.kind, WEFT_REPLY_STATUS);
	uint64_t n = r.status.requests;
	weft_reply_release(&r);
	return n;
}

/* Stop while a large fragment is still being decoded and checked (taken
 * before the stop, not queued yet): it is stored and answered, not left
 * for a writer thread that has already quit. */
static void test_stop_waits_for_checking(void **state)
{
	struct fx *f = *state;
	start(f, "inproc://weft-coordinator-test-stop");
	create_job(f);
	weft_writer_key k;
	weft_fragment fr;
	enrol_for_fragment(f, &k, &fr);
	weft_uuid_new(fr.report.run_id);
	/* About 3 MB of file records: milliseconds to decode and check. */
	for (int i = 0; i < 40000; i++) {
		weft_file_rec *r = weft_report_add_file(&fr.report);
		assert_non_null(r);
		char p[64];
		snprintf(p, sizeof(p), "/data/set-%03d/part-%06d.csv", i / 1000,
			 i);
		r->path = strdup(p);
		r->read = true;
	}
	weft_buf payload, env;
	weft_buf_init(&payload);
	weft_buf_init(&env);
	assert_int_equal(weft_fragment_encode(&fr, &payload), WEFT_OK);
	assert_true(payload.len > 1000000);
	assert_int_equal(weft_envelope_seal(f->job, &k, 1, payload.data,
					    payload.len, &env),
			 WEFT_OK);
	struct sender x = {.url = weft_coordinator_url(f->c)};
	weft_buf_init(&x.req);
	assert_int_equal(weft_req_fragment(env.data, env.len, &x.req), WEFT_OK);
	weft_buf_free(&payload);
	weft_buf_free(&env);
	weft_fragment_release(&fr);

	uint64_t before = requests_taken(f), polls = 0;
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, send_main, &x), 0);
	/* Each poll counts itself; the fragment counts once taken. */
	while (requests_taken(f) < before + ++polls + 1) {
		assert_true(polls < 20000); /* it never arrived */
		struct timespec ms = {0, 1000000};
		nanosleep(&ms, NULL);
	}
	assert_int_equal(weft_coordinator_stop(f->c), WEFT_OK);
	f->c = NULL;
	assert_int_equal(pthread_join(t, NULL), 0);
	weft_buf_free(&x.req);
	assert_int_equal(x.rc, WEFT_OK);
	assert_int_equal(x.reply.kind, WEFT_REPLY_ACK);
	assert_int_equal(x.reply.ack.status, WEFT_ACK_STORED);
	weft_reply_release(&x.reply);

	weft_store *s;
	assert_int_equal(weft_store_open(f->db, &s), WEFT_OK);
	weft_job_record r;
	assert_int_equal(weft_store_get_job(s, f->job, &r), WEFT_OK);
	assert_int_equal(r.fragments, 1);
	weft_job_record_release(&r);
	weft_store_close(s);
}

/* A commit that failed (the disk was full) and a later one that succeeded:
 * stopping reports no error, the store has recovered. File writes are
 * made to fail with RLIMIT_FSIZE (EFBIG), as a full disk would. */
static void test_commit_error_clears(void **state)
{
	struct fx *f = *state;
	start(f, "inproc://weft-coordinator-test-full");
	weft_buf req;
	weft_buf_init(&req);
	create_job(f);

	struct rlimit old, full = {.rlim_cur = 0};
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	full.rlim_max = old.rlim_max;
	void (*old_xfsz)(int) = signal(SIGXFSZ, SIG_IGN);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &full), 0);
	weft_writer_key k;
	weft_writer_key_new(&k);
	assert_int_equal(weft_req_enrol(f->job, token, k.pk, &req), WEFT_OK);
	weft_ack a = call(f, &req);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	signal(SIGXFSZ, old_xfsz);
	assert_int_equal(a.status, WEFT_ACK_RETRY);

	/* Space came back: the resent request is stored. */
	assert_int_equal(weft_req_enrol(f->job, token, k.pk, &req), WEFT_OK);
	assert_int_equal(call(f, &req).status, WEFT_ACK_STORED);
	int stopped = weft_coordinator_stop(f->c);
	f->c = NULL;
	assert_int_equal(stopped, WEFT_OK);
}

/* Job creation only with a proof of the submit key, bound to the job
 * id; the key file is made for the coordinator's owner alone. */
static void test_job_create_needs_submit_key(void **state)
{
	struct fx *f = *state;
	weft_coordinator_opts o = {.listen_url = "inproc://weft-submit-key",
				   .store_path = f->db,
				   .contexts = 2};
	char err[512], path[160];
	assert_int_equal(weft_coordinator_start(&o, &f->c, err, sizeof(err)),
			 WEFT_OK);
	snprintf(path, sizeof(path), "%s/" WEFT_SUBMIT_KEY_FILE_NAME, f->dir);
	assert_string_equal(weft_coordinator_submit_key_file(f->c), path);
	struct stat sb;
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	uint8_t key[WEFT_SUBMIT_KEY_BYTES];
	assert_int_equal(
		weft_submit_key_load(path, false, key, err, sizeof(err)),
		WEFT_OK);

	weft_job_info j = {0};
	memcpy(j.id, f->job, sizeof(j.id));
	strcpy(j.token, token);
	j.command = "sbatch x";
	weft_buf req;
	weft_buf_init(&req);
	assert_int_equal(weft_req_job_create(&j, NULL, &req), WEFT_OK);
	weft_ack a = call(f, &req);
	assert_int_equal(a.status, WEFT_ACK_REJECTED);
	assert_int_equal(a.reason, WEFT_REJECT_NOT_ALLOWED);
	assert_string_equal(weft_reject_name(a.reason), "not allowed");
	assert_int_equal(weft_req_job_create(&j, submit_key, &req), WEFT_OK);
	assert_int_equal(call(f, &req).reason, WEFT_REJECT_NOT_ALLOWED);
	/* A proof made for another job id is no proof for this one. */
	weft_job_info other = j;
	weft_uuid_new(other.id);
	uint8_t mac[WEFT_MAC_BYTES];
	weft_job_create_mac(key, &other, mac);
	weft_request r;
	assert_int_equal(weft_req_job_create(&j, key, &req), WEFT_OK);
	assert_int_equal(weft_request_decode(req.data, req.len, &r), WEFT_OK);
	assert_false(weft_mac_equal(mac, r.auth));
	weft_request_release(&r);
	assert_int_equal(call(f, &req).status, WEFT_ACK_STORED);
	assert_int_equal(weft_req_job_create(&j, key, &req), WEFT_OK);
	assert_int_equal(call(f, &req).status, WEFT_ACK_DUPLICATE);

	weft_status st;
	assert_int_equal(weft_coordinator_query_status(
				 weft_coordinator_url(f->c), NULL, NULL, 5000,
				 &st, err, sizeof(err)),
			 WEFT_OK);
	assert_int_equal(st.njobs, 1);
	assert_int_equal(st.rejects[WEFT_REJECT_NOT_ALLOWED], 2);
	weft_status_release(&st);
	assert_int_equal(weft_coordinator_stop(f->c), WEFT_OK);
	f->c = NULL;

	/* A key file others may read is refused, naming it. */
	assert_int_equal(chmod(path, 0640), 0);
	assert_int_not_equal(
		weft_coordinator_start(&o, &f->c, err, sizeof(err)), WEFT_OK);
	assert_non_null(strstr(err, path));
	assert_non_null(strstr(err, "chmod 600"));
	f->c = NULL;
}

static void test_start_errors(void **state)
{
	struct fx *f = *state;
	char err[512];
	weft_coordinator *c;
	weft_coordinator_opts o = {.listen_url = "bogus://x",
				   .store_path = f->db};
	assert_int_not_equal(weft_coordinator_start(&o, &c, err, sizeof(err)),
			     WEFT_OK);
	assert_non_null(strstr(err, "bogus://x"));
	o.listen_url = "tcp://127.0.0.1:0";
	o.store_path = "/nonexistent/dir/s.db";
	assert_int_not_equal(weft_coordinator_start(&o, &c, err, sizeof(err)),
			     WEFT_OK);
	assert_non_null(strstr(err, "/nonexistent/dir/s.db"));
	o.store_path = f->db;
	o.tls_cert = "/nonexistent.pem";
	assert_int_not_equal(weft_coordinator_start(&o, &c, err, sizeof(err)),
			     WEFT_OK);
	assert_non_null(strstr(err, "tls+tcp"));
	/* A port: its real number is in the URL. */
	o.tls_cert = NULL;
	assert_int_equal(weft_coordinator_start(&o, &f->c, err, sizeof(err)),
			 WEFT_OK);
	assert_null(strstr(weft_coordinator_url(f->c), ":0"));
	assert_non_null(strstr(weft_coordinator_url(f->c), "tcp://127.0.0.1:"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_task_start, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_inproc_round_trip, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_in_process, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_commit_error_clears, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_stop_waits_for_checking,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_job_create_needs_submit_key, setup, teardown),
		cmocka_unit_test_setup_teardown(test_start_errors, setup,
						teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
