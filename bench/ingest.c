/*
 * ingest.c - coordinator ingest throughput: M writers x K signed fragments
 * against one coordinator (in this process, over tcp:// on loopback), and
 * the same envelopes through a bare single-thread loop (check: decode,
 * verify, decode the fragment; then the store insert, batched the same
 * way) in the same run, as the ratio.
 *
 *   ingest [--writers M] [--fragments K] [--payload BYTES] [--dir DIR]
 *          [--contexts N] [--listen URL] [--bare-only 1]
 *
 * Fragments are signed before the clock starts (signing is the workers'
 * cost, not the coordinator's). Each writer is one nng REQ context with one
 * request outstanding, like a wrapper; writers share 8 connections.
 * Prints committed-and-acknowledged fragments/s, MB/s, p50/p99 latency of
 * an acknowledgement, and the bare loop's fragments/s.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>

#include "weft_coordinator.h"
#include "weft_store.h"

#define CONNECTIONS 8

static const char token[] = "bench-token-0123456789abcdef";

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A fragment of about payload bytes: one process and enough file records
 * (distinct paths, distinct hashes) to fill it. */
static void make_fragment(const char *job, const weft_writer_key *k, size_t w,
			  uint64_t seq, size_t payload, weft_buf *req)
{
	weft_fragment *f = malloc(sizeof(*f));
	weft_fragment_init(f);
	memcpy(f->job, job, sizeof(f->job));
	memcpy(f->writer, k->pk, WEFT_PUBKEY_BYTES);
	f->seq = seq;
	snprintf(f->task.id, sizeof(f->task.id), "w%zu.s%llu", w,
		 (unsigned long long)seq);
	snprintf(f->task.name, sizeof(f->task.name), "bench");
	f->nparts = 1;
	weft_report *r = &f->report;
	snprintf(r->run_id, sizeof(r->run_id), "run-%zu-%llu", w,
		 (unsigned long long)seq);
	snprintf(r->backend, sizeof(r->backend), "ptrace");
	snprintf(r->node, sizeof(r->node), "node%zu", w % 4);
	weft_process_rec *p = weft_report_add_process(r);
	p->pid = 100;
	p->argc = 1;
	p->argv = calloc(2, sizeof(char *));
	p->argv[0] = strdup("python3");
	p->cwd = strdup("/work");
	p->exited = true;
	/* A file record with a 40-byte path and a hash takes ~110 bytes. */
	size_t nfiles = payload > 300 ? (payload - 300) / 110 : 1;
	for (size_t i = 0; i < nfiles; i++) {
		weft_file_rec *fr = weft_report_add_file(r);
		char path[96];
		snprintf(path, sizeof(path), "/data/w%04zu/s%06llu/file%04zu",
			 w, (unsigned long long)seq, i);
		fr->path = strdup(path);
		fr->written = true;
		fr->has_size = true;
		fr->size = 4096;
		fr->has_hash = true;
		for (int b = 0; b < 32; b++)
			fr->hash[b] = (uint8_t)(w * 131 + seq * 7 + i * 13 + b);
	}
	weft_buf pl, env;
	weft_buf_init(&pl);
	weft_buf_init(&env);
	weft_fragment_encode(f, &pl);
	weft_envelope_seal(job, k, seq, pl.data, pl.len, &env);
	weft_buf_init(req);
	weft_req_fragment(env.data, env.len, req);
	weft_buf_free(&pl);
	weft_buf_free(&env);
	weft_fragment_release(f);
	free(f);
}

struct writer {
	nng_ctx ctx;
	nng_aio *aio;
	weft_buf *reqs;
	size_t k, next;
	bool sending;
	double t0;
	double *lat; /* this writer's latencies */
	struct bench *b;
};

struct bench {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	size_t active;
	size_t failures;
};

static void writer_send(struct writer *w)
{
	nng_msg *m;
	nng_msg_alloc(&m, 0);
	nng_msg_append(m, w->reqs[w->next].data, w->reqs[w->next].len);
	w->sending = true;
	w->t0 = now_s();
	nng_aio_set_msg(w->aio, m);
	nng_ctx_send(w->ctx, w->aio);
}

static void writer_finish(struct writer *w)
{
	pthread_mutex_lock(&w->b->mu);
	w->b->active--;
	pthread_cond_signal(&w->b->cv);
	pthread_mutex_unlock(&w->b->mu);
}

static void writer_cb(void *arg)
{
	struct writer *w = arg;
	int rv = nng_aio_result(w->aio);
	if (rv != 0) {
		if (w->sending)
			nng_msg_free(nng_aio_get_msg(w->aio));
		pthread_mutex_lock(&w->b->mu);
		w->b->failures++;
		pthread_mutex_unlock(&w->b->mu);
		writer_finish(w);
		return;
	}
	if (w->sending) {
		w->sending = false;
		nng_ctx_recv(w->ctx, w->aio);
		return;
	}
	nng_msg *m = nng_aio_get_msg(w->aio);
	weft_reply r;
	bool ok = weft_reply_decode(nng_msg_body(m), nng_msg_len(m), &r) ==
			  WEFT_OK &&
		  r.kind == WEFT_REPLY_ACK && r.ack.status == WEFT_ACK_STORED;
	weft_reply_release(&r);
	nng_msg_free(m);
	if (!ok) {
		pthread_mutex_lock(&w->b->mu);
		w->b->failures++;
		pthread_mutex_unlock(&w->b->mu);
	}
	w->lat[w->next++] = now_s() - w->t0;
	if (w->next < w->k)
		writer_send(w);
	else
		writer_finish(w);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static int call_ok(const char *url, weft_buf *req)
{
	uint8_t *reply;
	size_t n;
	char err[256];
	weft_reply r;
	int rc = weft_coordinator_call(url, NULL, req->data, req->len, 10000,
				       &reply, &n, err, sizeof(err));
	weft_buf_free(req);
	if (rc) {
		fprintf(stderr, "ingest: %s\n", err);
		return -1;
	}
	rc = weft_reply_decode(reply, n, &r);
	free(reply);
	if (rc || r.kind != WEFT_REPLY_ACK || r.ack.status > 1) {
		fprintf(stderr, "ingest: refused: %s\n", r.ack.detail);
		return -1;
	}
	return 0;
}

/* The bare loop: one thread, check then insert, 1024 per transaction. */
static double bare_loop(const char *db, const char *job,
			const weft_writer_key *keys, size_t m, weft_buf **reqs,
			size_t k)
{
	weft_store *s;
	weft_store_writer *w;
	if (weft_store_open(db, &s) || weft_store_writer_new(s, &w))
		return 0;
	weft_job_info j = {0};
	memcpy(j.id, job, sizeof(j.id));
	snprintf(j.token, sizeof(j.token), "%s", token);
	weft_verdict v;
	weft_store_writer_begin(w);
	weft_store_apply_job_create(w, &j, &v);
	uint8_t key[WEFT_MAC_BYTES], mac[WEFT_MAC_BYTES];
	weft_enrol_key(token, key);
	for (size_t i = 0; i < m; i++) {
		weft_enrol_mac(key, job, keys[i].pk, mac);
		weft_store_apply_enrol(w, job, keys[i].pk, mac, 1, &v);
	}
	weft_store_writer_commit(w);
	weft_fragment *f = malloc(sizeof(*f));
	size_t n = 0, stored = 0;
	double t0 = now_s();
	weft_store_writer_begin(w);
	for (size_t seq = 0; seq < k; seq++)
		for (size_t i = 0; i < m; i++) {
			weft_request r;
			weft_envelope e;
			weft_buf *q = &reqs[i][seq];
			weft_request_decode(q->data, q->len, &r);
			if (weft_envelope_check(r.env, r.env_len, &e, f, &v) ==
			    WEFT_OK) {
				weft_store_apply_fragment(w, r.env, r.env_len,
							  &e, f, 1, &v);
				stored += v.status == WEFT_ACK_STORED;
				weft_fragment_release(f);
			}
			if (++n % 1024 == 0) {
				weft_store_writer_commit(w);
				weft_store_writer_begin(w);
			}
		}
	weft_store_writer_commit(w);
	double dt = now_s() - t0;
	free(f);
	weft_store_writer_free(w);
	weft_store_close(s);
	if (stored != n)
		fprintf(stderr, "ingest: bare loop stored %zu of %zu\n", stored,
			n);
	return (double)n / dt;
}

int main(int argc, char **argv)
{
	size_t m = 256, k = 60, payload = 1024;
	int contexts = 0;
	int bare_only = 0;
	const char *dir = "/tmp", *listen = "tcp://127.0.0.1:0";
	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--writers"))
			m = strtoul(argv[i + 1], NULL, 10);
		else if (!strcmp(argv[i], "--fragments"))
			k = strtoul(argv[i + 1], NULL, 10);
		else if (!strcmp(argv[i], "--payload"))
			payload = strtoul(argv[i + 1], NULL, 10);
		else if (!strcmp(argv[i], "--dir"))
			dir = argv[i + 1];
		else if (!strcmp(argv[i], "--contexts"))
			contexts = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--listen"))
			listen = argv[i + 1];
		else if (!strcmp(argv[i], "--bare-only"))
			bare_only = atoi(argv[i + 1]);
		else {
			fprintf(stderr, "ingest: unknown option %s\n", argv[i]);
			return 2;
		}
	}
	char db[512], bare_db[512];
	snprintf(db, sizeof(db), "%s/weft-bench-ingest-%d.db", dir, getpid());
	snprintf(bare_db, sizeof(bare_db), "%s/weft-bench-bare-%d.db", dir,
		 getpid());

	char job[WEFT_JOB_ID_BYTES + 1];
	weft_uuid_new(job);
	weft_writer_key *keys = calloc(m, sizeof(*keys));
	weft_buf **reqs = calloc(m, sizeof(*reqs));
	size_t bytes = 0;
	fprintf(stderr, "signing %zu x %zu fragments of ~%zu bytes...\n", m, k,
		payload);
	for (size_t i = 0; i < m; i++) {
		weft_writer_key_new(&keys[i]);
		reqs[i] = calloc(k, sizeof(weft_buf));
		for (size_t s = 0; s < k; s++) {
			make_fragment(job, &keys[i], i, s + 1, payload,
				      &reqs[i][s]);
			bytes += reqs[i][s].len;
		}
	}

	if (bare_only == 1) {
		/* The store stays, for measuring what reads it. */
		printf("bare loop (1 thread, check + insert): %.0f "
		       "fragments/s; store %s (job %s)\n",
		       bare_loop(bare_db, job, keys, m, reqs, k), bare_db, job);
		return 0;
	}
	weft_coordinator_opts o = {
		.listen_url = listen, .store_path = db, .contexts = contexts};
	weft_coordinator *c;
	char err[512];
	if (weft_coordinator_start(&o, &c, err, sizeof(err))) {
		fprintf(stderr, "ingest: %s\n", err);
		return 1;
	}
	const char *url = weft_coordinator_url(c);
	weft_job_info j = {0};
	memcpy(j.id, job, sizeof(j.id));
	snprintf(j.token, sizeof(j.token), "%s", token);
	weft_buf req;
	weft_buf_init(&req);
	weft_req_job_create(&j, &req);
	if (call_ok(url, &req))
		return 1;
	for (size_t i = 0; i < m; i++) {
		weft_buf_init(&req);
		weft_req_enrol(job, token, keys[i].pk, &req);
		if (call_ok(url, &req))
			return 1;
	}

	nng_socket socks[CONNECTIONS];
	for (int i = 0; i < CONNECTIONS; i++) {
		nng_req0_open(&socks[i]);
		nng_socket_set_ms(socks[i], NNG_OPT_REQ_RESENDTIME,
				  NNG_DURATION_INFINITE);
		if (nng_dial(socks[i], url, NULL, 0)) {
			fprintf(stderr, "ingest: cannot dial %s\n", url);
			return 1;
		}
	}
	struct bench b = {.active = m};
	pthread_mutex_init(&b.mu, NULL);
	pthread_cond_init(&b.cv, NULL);
	struct writer *ws = calloc(m, sizeof(*ws));
	double *lat = calloc(m * k, sizeof(double));
	for (size_t i = 0; i < m; i++) {
		ws[i].b = &b;
		ws[i].reqs = reqs[i];
		ws[i].k = k;
		ws[i].lat = lat + i * k;
		nng_ctx_open(&ws[i].ctx, socks[i % CONNECTIONS]);
		nng_aio_alloc(&ws[i].aio, writer_cb, &ws[i]);
	}
	double t0 = now_s();
	for (size_t i = 0; i < m; i++)
		writer_send(&ws[i]);
	pthread_mutex_lock(&b.mu);
	while (b.active)
		pthread_cond_wait(&b.cv, &b.mu);
	pthread_mutex_unlock(&b.mu);
	double dt = now_s() - t0;
	for (size_t i = 0; i < m; i++) {
		nng_aio_free(ws[i].aio);
		nng_ctx_close(ws[i].ctx);
	}
	for (int i = 0; i < CONNECTIONS; i++)
		nng_close(socks[i]);
	weft_coordinator_stop(c);

	size_t n = m * k;
	qsort(lat, n, sizeof(double), cmp_double);
	double rate = (double)n / dt;
	double bare = bare_loop(bare_db, job, keys, m, reqs, k);
	printf("writers %zu, fragments %zu x %zu = %zu, request ~%zu bytes, "
	       "failures %zu\n",
	       m, m, k, n, bytes / n, b.failures);
	printf("coordinator: %.0f fragments/s, %.1f MB/s, ack latency p50 "
	       "%.1f ms, p99 %.1f ms\n",
	       rate, (double)bytes / dt / 1e6, lat[n / 2] * 1e3,
	       lat[n * 99 / 100] * 1e3);
	printf("bare loop (1 thread, check + insert): %.0f fragments/s; "
	       "coordinator / bare = %.2f\n",
	       bare, rate / bare);
	for (size_t i = 0; i < m; i++) {
		for (size_t s = 0; s < k; s++)
			weft_buf_free(&reqs[i][s]);
		free(reqs[i]);
	}
	free(reqs);
	free(keys);
	free(ws);
	free(lat);
	const char *const sfx[] = {"", "-wal", "-shm"};
	for (int i = 0; i < 3; i++) {
		char path[600];
		snprintf(path, sizeof(path), "%s%s", db, sfx[i]);
		unlink(path);
		snprintf(path, sizeof(path), "%s%s", bare_db, sfx[i]);
		unlink(path);
	}
	return b.failures ? 1 : 0;
}
