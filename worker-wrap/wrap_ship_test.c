/*
 * wrap_ship_test.c - recording and delivery against a scripted nng REP
 * server in this process: fragments are signed, spooled and deleted only
 * once acknowledged; "retry" and silence are retried with backoff within
 * the deadline; rejections are moved aside with their reason; a spool left
 * by a writer that gave up is delivered by the next shipper; a
 * coordinator in this process (a local endpoint) is called directly.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>

#include <weft/wrap.h>

/* ---- A scripted coordinator ---- */

struct server {
	nng_socket sock;
	pthread_t thread;
	char url[128];
	int retry_first;     /* answer RETRY to this many fragment requests */
	uint64_t reject_seq; /* reject this seq (0: none) */
	int enrols, fragments, stored_once;
	uint64_t seen[64]; /* seqs stored */
};

/* The scripted answer to one request, into out. */
static void answer(struct server *s, const void *buf, size_t len, weft_buf *out)
{
	weft_request rq;
	int status = WEFT_ACK_STORED, reason = WEFT_REJECT_NONE;
	uint64_t seq = 0;
	if (weft_request_decode(buf, len, &rq) != WEFT_OK) {
		status = WEFT_ACK_REJECTED;
		reason = WEFT_REJECT_MALFORMED;
	} else if (rq.kind == WEFT_REQ_ENROL) {
		s->enrols++;
	} else if (rq.kind == WEFT_REQ_FRAGMENT) {
		weft_envelope e;
		assert_int_equal(weft_envelope_decode(rq.env, rq.env_len, &e),
				 WEFT_OK);
		assert_int_equal(weft_envelope_verify(&e), WEFT_OK);
		seq = e.seq;
		s->fragments++;
		if (s->retry_first > 0) {
			s->retry_first--;
			status = WEFT_ACK_RETRY;
		} else if (seq == s->reject_seq) {
			status = WEFT_ACK_REJECTED;
			reason = WEFT_REJECT_BAD_SIGNATURE;
		} else if (seq < 64 && s->seen[seq]++) {
			status = WEFT_ACK_DUPLICATE;
		}
	}
	if (rq.kind)
		weft_request_release(&rq);
	weft_reply_ack(status, reason, reason ? "scripted" : "", seq, out);
}

static void *serve(void *arg)
{
	struct server *s = arg;
	for (;;) {
		void *buf;
		size_t len;
		if (nng_recv(s->sock, &buf, &len, NNG_FLAG_ALLOC) != 0)
			return NULL;
		weft_buf out;
		weft_buf_init(&out);
		answer(s, buf, len, &out);
		nng_free(buf, len);
		nng_send(s->sock, out.data, out.len, 0);
		weft_buf_free(&out);
	}
}

/* The same server as a local endpoint: called in the caller's thread. */
static int answer_local(void *arg, const uint8_t *req, size_t len,
			uint8_t **reply, size_t *rlen)
{
	weft_buf out;
	weft_buf_init(&out);
	answer(arg, req, len, &out);
	*reply = out.data;
	*rlen = out.len;
	return WEFT_OK;
}

static void server_start(struct server *s, const char *url)
{
	snprintf(s->url, sizeof(s->url), "%s", url);
	assert_int_equal(nng_rep0_open(&s->sock), 0);
	assert_int_equal(nng_listen(s->sock, url, NULL, 0), 0);
	assert_int_equal(pthread_create(&s->thread, NULL, serve, s), 0);
}

static void server_stop(struct server *s)
{
	nng_close(s->sock);
	pthread_join(s->thread, NULL);
}

/* ---- Fixtures ---- */

struct fixture {
	char dir[256];
	weft_wrap_env env;
	weft_wrap_identity id;
	weft_report report;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "/tmp/weft-ship-test-XXXXXX");
	if (!f || !mkdtemp(f->dir))
		return -1;
	snprintf(f->env.spool, sizeof(f->env.spool), "%s/spool", f->dir);
	snprintf(f->env.coordinator, sizeof(f->env.coordinator),
		 "ipc://%s/coord.sock", f->dir);
	snprintf(f->env.job, sizeof(f->env.job),
		 "0b5e3c9a-1d2f-4e6a-8b7c-9d0e1f2a3b4c");
	snprintf(f->env.token, sizeof(f->env.token),
		 "0123456789abcdef0123456789abcdef");
	snprintf(f->id.task, sizeof(f->id.task), "t1@n1");
	snprintf(f->id.node, sizeof(f->id.node), "n1");
	weft_report *r = &f->report;
	weft_report_init(r);
	weft_uuid_new(r->run_id);
	snprintf(r->backend, sizeof(r->backend), "ptrace");
	snprintf(r->node, sizeof(r->node), "n1");
	for (int i = 0; i < 40; i++) {
		weft_file_rec *fr = weft_report_add_file(r);
		char path[600];
		snprintf(path, sizeof(path), "/data/%03d-%0500d", i, 0);
		fr->path = strdup(path);
		fr->read = true;
	}
	*state = f;
	return 0;
}

static int rm_one(const char *p, const struct stat *st, int flag,
		  struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(p);
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	weft_report_release(&f->report);
	nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

static size_t record_in(struct fixture *f, size_t part_bytes,
			weft_spool_writer **w)
{
	weft_wrap_run run = {.env = &f->env,
			     .id = &f->id,
			     .name = "cat data",
			     .preflight = "ptrace: ok",
			     .part_bytes = part_bytes};
	size_t n;
	char err[512];
	assert_int_equal(
		weft_wrap_record(&run, &f->report, w, &n, err, sizeof(err)),
		WEFT_OK);
	return n;
}

static size_t record(struct fixture *f, weft_spool_writer **w)
{
	return record_in(f, 4096, w);
}

/* The paths of the files in fragment seq of w (part seq - 1 of n),
 * appended to *paths (one per line); the fragment's request size into
 * *len. */
static void fragment_paths(weft_spool_writer *w, uint64_t seq, size_t n,
			   char **paths, size_t *len)
{
	weft_buf b;
	weft_buf_init(&b);
	char err[512];
	assert_int_equal(weft_spool_get(w, seq, &b, err, sizeof(err)), WEFT_OK);
	*len = b.len;
	weft_request r;
	weft_envelope e;
	weft_fragment fr;
	assert_int_equal(weft_request_decode(b.data, b.len, &r), WEFT_OK);
	assert_int_equal(weft_envelope_decode(r.env, r.env_len, &e), WEFT_OK);
	assert_int_equal(weft_fragment_decode(e.payload, e.payload_len, &fr),
			 WEFT_OK);
	assert_int_equal(fr.seq, seq);
	assert_int_equal(fr.part, seq - 1);
	assert_int_equal(fr.nparts, n);
	for (size_t i = 0; i < fr.report.nfiles; i++) {
		const char *p = fr.report.files[i].path;
		size_t have = *paths ? strlen(*paths) : 0;
		*paths = realloc(*paths, have + strlen(p) + 2);
		sprintf(*paths + have, "%s\n", p);
	}
	weft_fragment_release(&fr);
	weft_request_release(&r);
	weft_buf_free(&b);
}

/* A run that fits the part budget is one fragment, sealed whole; one
 * twice its budget is cut; both hold the same records in the same
 * order. */
static void test_one_part_when_it_fits(void **state)
{
	struct fixture *f = *state;
	char *want = NULL;
	for (size_t i = 0; i < f->report.nfiles; i++) {
		size_t have = want ? strlen(want) : 0;
		want = realloc(want,
			       have + strlen(f->report.files[i].path) + 2);
		sprintf(want + have, "%s\n", f->report.files[i].path);
	}
	weft_spool_writer *w;
	assert_int_equal(record_in(f, 0, &w), 1); /* the default budget */
	char *whole = NULL;
	size_t len;
	fragment_paths(w, 1, 1, &whole, &len);
	assert_string_equal(whole, want);
	weft_spool_writer_close(w, false);

	/* A budget of exactly the whole request: still one part. */
	assert_int_equal(record_in(f, len, &w), 1);
	weft_spool_writer_close(w, false);

	/* Half of it: cut, as weft_wrap_split cuts. */
	size_t n = record_in(f, len / 2, &w);
	assert_true(n > 1);
	char *cut = NULL;
	for (uint64_t seq = 1; seq <= n; seq++)
		fragment_paths(w, seq, n, &cut, &len);
	assert_string_equal(cut, want);
	weft_spool_writer_close(w, false);
	free(want);
	free(whole);
	free(cut);
}

static size_t spooled(struct fixture *f)
{
	char **names;
	size_t nw, total = 0;
	assert_int_equal(weft_spool_writers(f->env.spool, &names, &nw),
			 WEFT_OK);
	for (size_t i = 0; i < nw; i++) {
		weft_spool_writer *w;
		bool busy;
		if (weft_spool_writer_open(f->env.spool, names[i], &w, &busy))
			continue;
		uint64_t *seqs;
		size_t k;
		assert_int_equal(weft_spool_list(w, &seqs, &k), WEFT_OK);
		total += k;
		free(seqs);
		weft_spool_writer_close(w, false);
	}
	weft_spool_names_free(names, nw);
	return total;
}

/* ---- Tests ---- */

/* The fixture's report recorded by *w and shipped by a new *sh (10 s
 * deadline), successfully; the number of fragments recorded. */
static size_t record_and_ship(struct fixture *f, weft_spool_writer **w,
			      weft_wrap_shipper **sh)
{
	size_t n = record(f, w);
	assert_int_equal(weft_wrap_shipper_new(NULL, 10000, NULL, sh), WEFT_OK);
	assert_int_equal(weft_wrap_ship_writer(*sh, *w), WEFT_OK);
	return n;
}

static void test_all_acknowledged(void **state)
{
	struct fixture *f = *state;
	struct server s = {0};
	server_start(&s, f->env.coordinator);
	weft_spool_writer *w;
	size_t n = record(f, &w);
	assert_true(n > 3); /* 40 files of ~510 bytes in 4 KiB parts */
	assert_int_equal(spooled(f), 0); /* ours is locked: not counted */
	weft_wrap_shipper *sh;
	assert_int_equal(weft_wrap_shipper_new(NULL, 10000, NULL, &sh),
			 WEFT_OK);
	assert_int_equal(weft_wrap_ship_writer(sh, w), WEFT_OK);
	const weft_wrap_ship_stats *st = weft_wrap_shipper_stats(sh);
	assert_int_equal(st->stored, n);
	assert_int_equal(st->left, 0);
	assert_int_equal(s.enrols, 1);
	assert_int_equal(s.fragments, (int)n);
	weft_spool_writer_close(w, true);
	weft_wrap_shipper_free(sh);
	server_stop(&s);
	assert_int_equal(spooled(f), 0);
	struct stat sb;
	assert_int_equal(stat(f->env.spool, &sb), 0); /* stays, empty */
}

static void test_retry_and_reject(void **state)
{
	struct fixture *f = *state;
	struct server s = {.retry_first = 2, .reject_seq = 2};
	server_start(&s, f->env.coordinator);
	weft_spool_writer *w;
	weft_wrap_shipper *sh;
	size_t n = record_and_ship(f, &w, &sh);
	const weft_wrap_ship_stats *st = weft_wrap_shipper_stats(sh);
	assert_int_equal(st->stored, n - 1);
	assert_int_equal(st->rejected, 1);
	assert_true(st->attempts_failed >= 2);
	char p[sizeof(f->env.spool) + 16];
	snprintf(p, sizeof(p), "%s/rejected", f->env.spool);
	struct stat sb;
	assert_int_equal(stat(p, &sb), 0);
	weft_spool_writer_close(w, true);
	weft_wrap_shipper_free(sh);
	server_stop(&s);
}

static void test_down_then_flushed(void **state)
{
	struct fixture *f = *state;
	weft_spool_writer *w;
	size_t n = record(f, &w);
	weft_wrap_shipper *sh;
	int64_t t0 = weft_mono_ms();
	assert_int_equal(weft_wrap_shipper_new(NULL, 300, NULL, &sh), WEFT_OK);
	assert_int_equal(weft_wrap_ship_writer(sh, w), WEFT_EIO);
	int64_t took = weft_mono_ms() - t0;
	assert_true(took >= 290);
	assert_int_equal(weft_wrap_shipper_stats(sh)->left, n);
	weft_spool_writer_close(w, true); /* not empty: kept */
	weft_wrap_shipper_free(sh);
	assert_int_equal(spooled(f), n);

	/* The coordinator is back: the next shipper delivers all of it. */
	struct server s = {0};
	server_start(&s, f->env.coordinator);
	assert_int_equal(weft_wrap_shipper_new(NULL, 10000, NULL, &sh),
			 WEFT_OK);
	assert_int_equal(weft_wrap_ship_spool(sh, f->env.spool), WEFT_OK);
	assert_int_equal(weft_wrap_shipper_stats(sh)->stored, n);
	assert_int_equal(weft_wrap_shipper_stats(sh)->writers_done, 1);
	weft_wrap_shipper_free(sh);
	assert_int_equal(spooled(f), 0);
	server_stop(&s);
}

/* A local endpoint's URL is served by its function, not nng: nothing
 * listens on it, yet everything is stored; another URL cannot be set
 * meanwhile; once cleared, the URL is nng's again (nobody there). */
static void test_local_endpoint(void **state)
{
	struct fixture *f = *state;
	struct server s = {0};
	assert_int_equal(weft_wrap_local_endpoint_set(f->env.coordinator,
						      answer_local, &s),
			 WEFT_OK);
	assert_int_equal(weft_wrap_local_endpoint_set("inproc://other",
						      answer_local, &s),
			 WEFT_EBUSY);
	weft_spool_writer *w;
	weft_wrap_shipper *sh;
	size_t n = record_and_ship(f, &w, &sh);
	assert_int_equal(weft_wrap_shipper_stats(sh)->stored, n);
	assert_int_equal(s.enrols, 1);
	assert_int_equal(s.fragments, (int)n);
	weft_wrap_shipper_free(sh);
	weft_spool_writer_close(w, true);

	weft_wrap_local_endpoint_clear();
	weft_wrap_client *c;
	char err[256];
	assert_int_equal(weft_wrap_client_open(f->env.coordinator, NULL, &c,
					       err, sizeof(err)),
			 WEFT_OK);
	uint8_t *reply;
	size_t rlen;
	assert_int_equal(weft_wrap_client_call(c, (const uint8_t *)"x", 1, 200,
					       &reply, &rlen, err, sizeof(err)),
			 WEFT_EIO);
	weft_wrap_client_close(c);
	assert_int_equal(s.enrols, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_all_acknowledged, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_retry_and_reject, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_down_then_flushed, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_one_part_when_it_fits,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_local_endpoint, setup,
						teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
