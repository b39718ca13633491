/*
 * ingest.c - coordinator ingest throughput: M writers x K signed fragments
 * against one coordinator (in this process, over tcp:// on loopback; the
 * writers in this process too, or with --writers-process 1 in one of their
 * own, as wrappers are), and the same envelopes through a bare
 * single-thread loop (check: decode, verify, decode the fragment; then the
 * store insert, batched the same way) in the same run, as the ratio.
 *
 *   ingest [--writers M] [--fragments K] [--payload BYTES] [--dir DIR]
 *          [--contexts N] [--listen URL] [--bare-only 1] [--bare-batch N]
 *          [--null 1] [--writers-process 0|1]
 *
 * Fragments are signed before the clock starts (signing is the workers'
 * cost, not the coordinator's). Each writer is one nng REQ context with one
 * request outstanding, like a wrapper; writers share 8 connections.
 * Prints committed-and-acknowledged fragments/s, MB/s, p50/p99 latency of
 * an acknowledgement, and the bare loop's fragments/s.
 */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>

#include <weft/base.h>
#include <weft/coordinator.h>
#include <weft/store.h>

#define CONNECTIONS 8

static const char token[] = "bench-token-0123456789abcdef";

/* CPU time of the calling thread: steadier than wall time while other
 * programs share the machine. */
static double cpu_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double tv_s(struct timeval tv)
{
	return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
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
	w->t0 = weft_mono_s();
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
	w->lat[w->next++] = weft_mono_s() - w->t0;
	if (w->next < w->k)
		writer_send(w);
	else
		writer_finish(w);
}

/* CPU time of this process by thread name (comm), from /proc: where the
 * coordinator's and the writers' time goes. */
#define MAX_THREAD_GROUPS 32

struct cpu_groups {
	size_t n;
	char name[MAX_THREAD_GROUPS][16];
	double s[MAX_THREAD_GROUPS];
};

static void cpu_by_thread(struct cpu_groups *g)
{
	memset(g, 0, sizeof(*g));
	DIR *d = opendir("/proc/self/task");
	if (!d)
		return;
	long hz = sysconf(_SC_CLK_TCK);
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		char path[300], buf[1024];
		snprintf(path, sizeof(path), "/proc/self/task/%s/stat",
			 de->d_name);
		FILE *f = fopen(path, "r");
		if (!f)
			continue;
		size_t len = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
		buf[len] = '\0';
		/* pid (comm) state ppid ... field 14 utime, 15 stime */
		char *open = strchr(buf, '('), *close = strrchr(buf, ')');
		if (!open || !close)
			continue;
		char name[16];
		size_t nl = (size_t)(close - open - 1);
		if (nl > 15)
			nl = 15;
		memcpy(name, open + 1, nl);
		name[nl] = '\0';
		/* nng's threads are numbered: group them by their prefix. */
		for (size_t i = 0; i < nl; i++)
			if (name[i] >= '0' && name[i] <= '9') {
				name[i] = '\0';
				break;
			}
		unsigned long ut = 0, st = 0;
		char *p = close + 2;
		for (int field = 3; field < 14 && p; field++) {
			p = strchr(p, ' ');
			if (p)
				p++;
		}
		if (!p || sscanf(p, "%lu %lu", &ut, &st) != 2)
			continue;
		size_t i = 0;
		while (i < g->n && strcmp(g->name[i], name))
			i++;
		if (i == g->n) {
			if (g->n == MAX_THREAD_GROUPS)
				continue;
			snprintf(g->name[i], sizeof(g->name[i]), "%s", name);
			g->n++;
		}
		g->s[i] += (double)(ut + st) / (double)hz;
	}
	closedir(d);
}

/* The machine's CPU time by state (/proc/stat's first line, in seconds):
 * user nice system idle iowait irq softirq steal. */
struct sys_cpu {
	double t[8];
};

static void sys_cpu(struct sys_cpu *c)
{
	memset(c, 0, sizeof(*c));
	FILE *f = fopen("/proc/stat", "r");
	unsigned long long v[8] = {0};
	if (f && fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0],
			&v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]) == 8)
		for (int i = 0; i < 8; i++)
			c->t[i] = (double)v[i] / (double)sysconf(_SC_CLK_TCK);
	if (f)
		fclose(f);
}

static void print_sys(const struct sys_cpu *a, const struct sys_cpu *b,
		      double wall)
{
	static const char *const names[] = {"user",    "nice",   "system",
					    "idle",    "iowait", "irq",
					    "softirq", "steal"};
	printf("machine, CPUs by state over the timed part:");
	for (int i = 0; i < 8; i++)
		printf(" %s %.2f", names[i], (b->t[i] - a->t[i]) / wall);
	printf("\n");
}

static void print_cpu(const struct cpu_groups *a, const struct cpu_groups *b,
		      size_t n, double wall, double writers_cpu)
{
	double total = writers_cpu > 0 ? writers_cpu : 0;
	printf("CPU per fragment by thread (us):");
	for (size_t i = 0; i < b->n; i++) {
		double before = 0;
		for (size_t j = 0; j < a->n; j++)
			if (!strcmp(a->name[j], b->name[i]))
				before = a->s[j];
		double d = b->s[i] - before;
		total += d;
		if (d > 0)
			printf(" %s %.0f", b->name[i], d / (double)n * 1e6);
	}
	if (writers_cpu >= 0)
		printf("; writers' process %.0f",
		       writers_cpu / (double)n * 1e6);
	printf("; total %.0f us = %.2f CPUs busy\n", total / (double)n * 1e6,
	       total / wall);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* What a writers' run measured (wall time from the first send to the last
 * acknowledgement; cpu_s: the writers' process's, when it is their own). */
struct writers_result {
	double dt, p50, p99, cpu_s;
	size_t failures;
};

/* In the writers' own process: ready_fd is told once they are connected,
 * and the clock starts when a byte arrives on go_fd. */
struct go {
	int ready_fd, go_fd;
};

/* The writers against url: m REQ contexts on CONNECTIONS connections,
 * each sending its k requests one after the other. cpu0 and cpu1 take
 * this process's CPU by thread right before the first send and after the
 * last answer; go is NULL in the coordinator's process. */

static int run_writers(const char *url, size_t m, size_t k, weft_buf **reqs,
		       const struct go *go, struct cpu_groups *cpu0,
		       struct cpu_groups *cpu1, struct writers_result *res)
{
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
	char byte = 'r';
	if (go && (write(go->ready_fd, &byte, 1) != 1 ||
		   read(go->go_fd, &byte, 1) != 1))
		return 1;
	struct rusage ru0, ru1;
	getrusage(RUSAGE_SELF, &ru0);
	cpu_by_thread(cpu0);
	double t0 = weft_mono_s();
	for (size_t i = 0; i < m; i++)
		writer_send(&ws[i]);
	pthread_mutex_lock(&b.mu);
	while (b.active)
		pthread_cond_wait(&b.cv, &b.mu);
	pthread_mutex_unlock(&b.mu);
	res->dt = weft_mono_s() - t0;
	cpu_by_thread(cpu1);
	getrusage(RUSAGE_SELF, &ru1);
	res->cpu_s = tv_s(ru1.ru_utime) + tv_s(ru1.ru_stime) -
		     tv_s(ru0.ru_utime) - tv_s(ru0.ru_stime);
	for (size_t i = 0; i < m; i++) {
		nng_aio_free(ws[i].aio);
		nng_ctx_close(ws[i].ctx);
	}
	for (int i = 0; i < CONNECTIONS; i++)
		nng_close(socks[i]);
	size_t n = m * k;
	qsort(lat, n, sizeof(double), cmp_double);
	res->p50 = lat[n / 2];
	res->p99 = lat[n * 99 / 100];
	res->failures = b.failures;
	free(ws);
	free(lat);
	return 0;
}

/* The writers' process, forked before this process used nng (nng must not
 * be used on both sides of a fork): it reads the coordinator's URL, runs
 * the writers and writes back what they measured. */
struct writers_proc {
	pid_t pid;
	int to, from; /* pipes to and from it */
};

static int writers_fork(struct writers_proc *wp, size_t m, size_t k,
			weft_buf **reqs)
{
	int down[2], up[2];
	if (pipe(down) || pipe(up))
		return 1;
	fflush(NULL);
	wp->pid = fork();
	if (wp->pid < 0)
		return 1;
	if (wp->pid > 0) {
		close(down[0]);
		close(up[1]);
		wp->to = down[1];
		wp->from = up[0];
		return 0;
	}
	close(down[1]);
	close(up[0]);
	char url[256];
	size_t len = 0;
	/* The URL, then a newline. */
	while (len + 1 < sizeof(url) && read(down[0], url + len, 1) == 1 &&
	       url[len] != '\n')
		len++;
	url[len] = '\0';
	struct go go = {up[1], down[0]};
	struct cpu_groups c0, c1;
	struct writers_result res = {0};
	int rc = len ? run_writers(url, m, k, reqs, &go, &c0, &c1, &res) : 1;
	if (rc || write(up[1], &res, sizeof(res)) != (ssize_t)sizeof(res))
		_exit(1);
	_exit(0);
}

/* Run the forked writers against url; cpu0 and cpu1: this process's CPU
 * by thread around their timed part. */
static int writers_remote(struct writers_proc *wp, const char *url,
			  struct cpu_groups *cpu0, struct cpu_groups *cpu1,
			  struct writers_result *res)
{
	char byte = 'g';
	int status;
	if (dprintf(wp->to, "%s\n", url) < 0 || read(wp->from, &byte, 1) != 1)
		goto failed;
	cpu_by_thread(cpu0);
	if (write(wp->to, &byte, 1) != 1 ||
	    read(wp->from, res, sizeof(*res)) != (ssize_t)sizeof(*res))
		goto failed;
	cpu_by_thread(cpu1);
	waitpid(wp->pid, &status, 0);
	return 0;
failed:
	fprintf(stderr, "ingest: the writers' process failed\n");
	waitpid(wp->pid, &status, 0);
	return 1;
}

/* --null 1: a REP server that answers every request "stored" at once,
 * with the coordinator's number of contexts: what nng and the writers
 * cost without any checking or storing. */
struct null_ctx {
	nng_ctx ctx;
	nng_aio *aio;
	bool sending;
	const weft_buf *ack;
};

static void null_cb(void *arg)
{
	struct null_ctx *n = arg;
	int rv = nng_aio_result(n->aio);
	if (rv == NNG_ECLOSED || rv == NNG_ECANCELED)
		return;
	if (n->sending || rv != 0) {
		if (rv != 0 && n->sending)
			nng_msg_free(nng_aio_get_msg(n->aio));
		n->sending = false;
		nng_ctx_recv(n->ctx, n->aio);
		return;
	}
	nng_msg *m = nng_aio_get_msg(n->aio);
	nng_msg_clear(m);
	nng_msg_append(m, n->ack->data, n->ack->len);
	n->sending = true;
	nng_aio_set_msg(n->aio, m);
	nng_ctx_send(n->ctx, n->aio);
}

static int null_server(const char *listen, int contexts, char *url,
		       size_t urlsz, nng_socket *sock)
{
	static weft_buf ack;
	weft_buf_init(&ack);
	weft_reply_ack(WEFT_ACK_STORED, WEFT_REJECT_NONE, "", 1, &ack);
	nng_listener l;
	if (nng_rep0_open(sock) || nng_listener_create(&l, *sock, listen) ||
	    nng_listener_start(l, 0))
		return -1;
	int port = 0;
	nng_listener_get_int(l, NNG_OPT_TCP_BOUND_PORT, &port);
	snprintf(url, urlsz, "tcp://127.0.0.1:%d", port);
	struct null_ctx *n = calloc((size_t)contexts, sizeof(*n));
	for (int i = 0; i < contexts; i++) {
		n[i].ack = &ack;
		nng_ctx_open(&n[i].ctx, *sock);
		nng_aio_alloc(&n[i].aio, null_cb, &n[i]);
		nng_ctx_recv(n[i].ctx, n[i].aio);
	}
	return 0; /* n lives until exit */
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

/* The bare loop: one thread, check then insert, bare_batch (1024) per
 * transaction. */
static size_t bare_batch = 1024;

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
	for (size_t i = 0; i < m; i++) {
		weft_buf b;
		weft_request r;
		weft_buf_init(&b);
		if (weft_req_enrol(job, token, keys[i].pk, &b) == WEFT_OK &&
		    weft_request_decode(b.data, b.len, &r) == WEFT_OK) {
			weft_store_apply_enrol(w, job, keys[i].pk, &r.proof, 1,
					       &v);
			weft_request_release(&r);
		}
		weft_buf_free(&b);
	}
	weft_store_writer_commit(w);
	/* The signature check alone (payload hash and Ed25519), on up to
	 * 2,000 envelopes: the part of "check" no store design changes. */
	size_t nv = 0;
	double tv = 0;
	for (size_t seq = 0; seq < k && nv < 2000; seq++)
		for (size_t i = 0; i < m && nv < 2000; i++, nv++) {
			weft_request r;
			weft_envelope e;
			weft_buf *q = &reqs[i][seq];
			weft_request_decode(q->data, q->len, &r);
			weft_envelope_decode(r.env, r.env_len, &e);
			double t1 = cpu_s();
			weft_envelope_verify(&e);
			tv += cpu_s() - t1;
			weft_request_release(&r);
		}
	fprintf(stderr, "bare loop: signature check alone %.1f us CPU\n",
		tv / (double)nv * 1e6);
	weft_fragment *f = malloc(sizeof(*f));
	size_t n = 0, stored = 0;
	double t0 = weft_mono_s(), c0 = cpu_s(), tcheck = 0, tcommit = 0;
	weft_store_writer_begin(w);
	for (size_t seq = 0; seq < k; seq++)
		for (size_t i = 0; i < m; i++) {
			weft_request r;
			weft_envelope e;
			weft_buf *q = &reqs[i][seq];
			double t1 = cpu_s();
			weft_request_decode(q->data, q->len, &r);
			int ok = weft_envelope_check(r.env, r.env_len, &e, f,
						     &v) == WEFT_OK;
			tcheck += cpu_s() - t1;
			if (ok) {
				weft_store_apply_fragment(w, r.env, r.env_len,
							  &e, f, 1, &v);
				stored += v.status == WEFT_ACK_STORED;
				weft_fragment_release(f);
			}
			weft_request_release(&r);
			if (++n % bare_batch == 0) {
				t1 = cpu_s();
				weft_store_writer_commit(w);
				tcommit += cpu_s() - t1;
				weft_store_writer_begin(w);
			}
		}
	double t1 = cpu_s();
	weft_store_writer_commit(w);
	tcommit += cpu_s() - t1;
	double dt = weft_mono_s() - t0, dc = cpu_s() - c0;
	fprintf(stderr,
		"bare loop: CPU per fragment %.1f us check (decode, verify, "
		"decode), %.1f us insert (%.1f us of it commit); wall %.1f "
		"us\n",
		tcheck / (double)n * 1e6, (dc - tcheck) / (double)n * 1e6,
		tcommit / (double)n * 1e6, dt / (double)n * 1e6);
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
	int bare_only = 0, null = 0, writers_process = 0;
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
		else if (!strcmp(argv[i], "--bare-batch"))
			bare_batch = strtoul(argv[i + 1], NULL, 10);
		else if (!strcmp(argv[i], "--null"))
			null = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--writers-process"))
			writers_process = atoi(argv[i + 1]);
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

	struct writers_proc wp = {0};
	if (bare_only == 1)
		writers_process = 0;
	if (writers_process && writers_fork(&wp, m, k, reqs)) {
		fprintf(stderr, "ingest: cannot start the writers' process\n");
		return 1;
	}
	if (bare_only == 1) {
		/* The store stays, for measuring what reads it. */
		printf("bare loop (1 thread, check + insert): %.0f "
		       "fragments/s; store %s (job %s)\n",
		       bare_loop(bare_db, job, keys, m, reqs, k), bare_db, job);
		return 0;
	}
	uint8_t submit_key[WEFT_SUBMIT_KEY_BYTES];
	weft_submit_key_new(submit_key);
	weft_coordinator_opts o = {.listen_url = listen,
				   .store_path = db,
				   .submit_key = submit_key,
				   .contexts = contexts};
	weft_coordinator *c = NULL;
	char err[512], null_url[128];
	nng_socket null_sock;
	const char *url = null_url;
	if (null) {
		if (null_server(listen, contexts > 0 ? contexts : 256, null_url,
				sizeof(null_url), &null_sock)) {
			fprintf(stderr, "ingest: null server failed\n");
			return 1;
		}
	} else if (weft_coordinator_start(&o, &c, err, sizeof(err))) {
		fprintf(stderr, "ingest: %s\n", err);
		return 1;
	} else {
		url = weft_coordinator_url(c);
	}
	weft_job_info j = {0};
	memcpy(j.id, job, sizeof(j.id));
	snprintf(j.token, sizeof(j.token), "%s", token);
	weft_buf req;
	weft_buf_init(&req);
	weft_req_job_create(&j, submit_key, &req);
	if (call_ok(url, &req))
		return 1;
	for (size_t i = 0; i < m && !null; i++) {
		weft_buf_init(&req);
		weft_req_enrol(job, token, keys[i].pk, &req);
		if (call_ok(url, &req))
			return 1;
	}

	struct writers_result res;
	struct cpu_groups cpu0, cpu1;
	struct sys_cpu sys0, sys1;
	double writers_cpu = -1;
	sys_cpu(&sys0);
	if (writers_process) {
		if (writers_remote(&wp, url, &cpu0, &cpu1, &res))
			return 1;
		writers_cpu = res.cpu_s;
	} else if (run_writers(url, m, k, reqs, NULL, &cpu0, &cpu1, &res)) {
		return 1;
	}
	sys_cpu(&sys1);
	if (c)
		weft_coordinator_stop(c);
	else
		nng_close(null_sock);
	double dt = res.dt;
	size_t n = m * k;
	double rate = (double)n / dt;
	double bare = null ? 1 : bare_loop(bare_db, job, keys, m, reqs, k);
	printf("writers %zu (%s), fragments %zu x %zu = %zu, request ~%zu "
	       "bytes, failures %zu\n",
	       m,
	       writers_process ? "in a process of their own"
			       : "in this process",
	       m, k, n, bytes / n, res.failures);
	printf("coordinator: %.0f fragments/s, %.1f MB/s, ack latency p50 "
	       "%.1f ms, p99 %.1f ms\n",
	       rate, (double)bytes / dt / 1e6, res.p50 * 1e3, res.p99 * 1e3);
	printf("bare loop (1 thread, check + insert): %.0f fragments/s; "
	       "coordinator / bare = %.2f\n",
	       bare, rate / bare);
	print_cpu(&cpu0, &cpu1, n, dt, writers_cpu);
	print_sys(&sys0, &sys1, dt);
	for (size_t i = 0; i < m; i++) {
		for (size_t s = 0; s < k; s++)
			weft_buf_free(&reqs[i][s]);
		free(reqs[i]);
	}
	free(reqs);
	free(keys);
	const char *const sfx[] = {"", "-wal", "-shm"};
	for (int i = 0; i < 3; i++) {
		char path[600];
		snprintf(path, sizeof(path), "%s%s", db, sfx[i]);
		unlink(path);
		snprintf(path, sizeof(path), "%s%s", bare_db, sfx[i]);
		unlink(path);
	}
	return res.failures ? 1 : 0;
}
