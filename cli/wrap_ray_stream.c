/*
 * wrap_ray_stream.c - `weft wrap --ray`: one writer for everything the
 * wrapper records (each Ray task as it ends, then per-actor records,
 * tasks that never ended and the worker's own record), shipped while the
 * worker runs.
 *
 * The writer is made on the first record: a key pair, its enrolment
 * request and a spool directory (SPOOL/w-WRITER, locked by this wrapper
 * until the end). Each record is split into parts, each part sealed as a
 * fragment with the writer's next seq (1, 2, ... across records: a
 * fragment carries one task's record, a writer many tasks'; the
 * coordinator keeps one run per record by its run id) and spooled
 * durably (weft_spool_put) before anything is sent. The shipping thread
 * enrols the writer once, over one connection, then sends the fragments
 * in seq order as they are spooled, one request at a time, deleting each
 * once acknowledged (moving a rejected one aside, with its reason), with
 * backoff on transport failures, for as long as the worker runs. When
 * the worker exited, it has --ship-timeout for the rest; what is left
 * stays in the spool for 'weft flush' or the next wrapper on the node.
 *
 * The thread uses nng, so it is started only after the workload's fork
 * (wr_stream_start, from the first event the tracer feeds).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "wrap_ray_internal.h"

/* One request waits at most this long for its answer while the worker
 * runs (then it is sent again: the coordinator deduplicates); after the
 * worker exited, what is left of the deadline, at most SHIP_CALL_MAX_MS. */
#define SHIP_CALL_RUN_MS 1000
#define SHIP_CALL_MAX_MS 5000
#define SHIP_BACKOFF_BASE_MS 50
#define SHIP_BACKOFF_CAP_MS 2000

struct wr_stream {
	weft_wrap_env env;
	int verbose;
	/* The recording side (one thread at a time). */
	bool tried, failed;
	weft_writer_key key;
	uint64_t next_seq;
	/* Shared with the shipping thread, under lock. */
	pthread_mutex_t lock;
	pthread_cond_t cv; /* CLOCK_MONOTONIC */
	weft_spool_writer *sw;
	uint64_t ready; /* seqs 1..ready are spooled */
	uint64_t done;  /* seqs 1..done have a verdict (or were lost) */
	bool started, joined, abort;
	bool finishing; /* the worker exited: deadline_ms is set */
	bool closed;    /* and nothing more will be recorded */
	int64_t deadline_ms;
	pthread_t thread;
	wrap_ray_ship_stats st;
};

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

wr_stream *wr_stream_new(const weft_wrap_env *env, int verbose)
{
	wr_stream *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->env = *env;
	s->verbose = verbose;
	s->next_seq = 1;
	pthread_mutex_init(&s->lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s->cv, &ca);
	pthread_condattr_destroy(&ca);
	return s;
}

bool wr_stream_ok(const wr_stream *s)
{
	return s && !s->failed;
}

/* ---- Recording ---- */

/* The writer: a key pair, its enrolment, its spool directory. */
static int open_writer(wr_stream *s, char *err, size_t errsz)
{
	s->tried = true;
	if (weft_writer_key_new(&s->key) != WEFT_OK) {
		snprintf(err, errsz, "cannot make a writer key (libsodium)");
		return WEFT_EIO;
	}
	weft_spool_state st = {0};
	snprintf(st.coordinator, sizeof(st.coordinator), "%s",
		 s->env.coordinator);
	memcpy(st.job, s->env.job, sizeof(st.job));
	weft_pubkey_to_text(s->key.pk, st.writer);
	weft_buf enrol;
	weft_buf_init(&enrol);
	int rc = weft_req_enrol(s->env.job, s->env.token, s->key.pk, &enrol);
	weft_spool_writer *sw = NULL;
	if (rc == WEFT_OK) {
		st.enrol = enrol.data;
		st.enrol_len = enrol.len;
		rc = weft_spool_writer_create(s->env.spool, &st, &sw);
		if (rc != WEFT_OK)
			snprintf(err, errsz,
				 "cannot create a writer in the spool %s: %s "
				 "(%s)",
				 s->env.spool, weft_strerror(rc),
				 strerror(errno));
	} else {
		snprintf(err, errsz, "cannot encode the enrolment: %s",
			 weft_strerror(rc));
	}
	weft_buf_free(&enrol);
	if (rc != WEFT_OK) {
		sodium_memzero(&s->key, sizeof(s->key));
		return rc;
	}
	pthread_mutex_lock(&s->lock);
	s->sw = sw;
	snprintf(s->st.writer_dir, sizeof(s->st.writer_dir), "%s",
		 weft_spool_writer_dir(sw));
	pthread_mutex_unlock(&s->lock);
	return WEFT_OK;
}

/* Seal part p of r (i of n) as seq: the request to send, into req. */
static int seal_part(wr_stream *s, const weft_wrap_run *run,
		     const weft_report *r, const weft_wrap_part *p,
		     uint64_t seq, size_t i, size_t n, weft_buf *req)
{
	weft_fragment f;
	weft_fragment_init(&f);
	memcpy(f.job, s->env.job, sizeof(f.job));
	memcpy(f.writer, s->key.pk, sizeof(f.writer));
	f.seq = seq;
	f.part = (uint32_t)i;
	f.nparts = (uint32_t)n;
	const weft_wrap_identity *id = run->id;
	snprintf(f.task.id, sizeof(f.task.id), "%s", id->task);
	snprintf(f.task.name, sizeof(f.task.name), "%s",
		 run->name ? run->name : "");
	snprintf(f.task.parent, sizeof(f.task.parent), "%s", run->env->parent);
	memcpy(f.task.engine, id->engine, sizeof(id->engine));
	f.task.nengine = id->nengine;
	snprintf(f.preflight, sizeof(f.preflight), "%s",
		 run->preflight ? run->preflight : "");
	weft_wrap_part_view(r, p, &f.report);
	weft_buf payload, env;
	weft_buf_init(&payload);
	weft_buf_init(&env);
	int err = weft_fragment_encode(&f, &payload);
	if (!err)
		err = weft_envelope_seal(s->env.job, &s->key, seq, payload.data,
					 payload.len, &env);
	if (!err)
		err = weft_req_fragment(env.data, env.len, req);
	weft_buf_free(&payload);
	weft_buf_free(&env);
	return err;
}

/* ---- Spooling (or deleting) several fragments at once ----
 *
 * Each weft_spool_put is durable on its own (the file fsynced, renamed,
 * the directory fsynced), each weft_spool_delete fsyncs the directory:
 * one after the other, every fragment waits for journal commits of its
 * own. Done from several threads at once, the file system commits them
 * together (ext4 and xfs batch concurrent fsyncs into one journal
 * commit), and nothing is less durable. */

#define SPOOL_THREADS 8

struct spool_job {
	weft_spool_writer *sw;
	const uint64_t *seqs;
	const weft_buf *bufs; /* NULL: delete */
	size_t n, next;
	int err;
	pthread_mutex_t lock;
};

static void *spool_worker(void *arg)
{
	struct spool_job *j = arg;
	for (;;) {
		pthread_mutex_lock(&j->lock);
		size_t i = j->next++;
		pthread_mutex_unlock(&j->lock);
		if (i >= j->n)
			break;
		int rc = j->bufs ? weft_spool_put(j->sw, j->seqs[i],
						  j->bufs[i].data,
						  j->bufs[i].len)
				 : weft_spool_delete(j->sw, j->seqs[i]);
		if (rc != WEFT_OK) {
			pthread_mutex_lock(&j->lock);
			if (!j->err)
				j->err = rc;
			pthread_mutex_unlock(&j->lock);
		}
	}
	return NULL;
}

/* Put bufs[i] as seqs[i] (bufs NULL: delete seqs[i]), all of them, from
 * up to SPOOL_THREADS threads (the caller's one of them). WEFT_OK or the
 * first error (some may have been done then). */
static int spool_many(weft_spool_writer *sw, const uint64_t *seqs,
		      const weft_buf *bufs, size_t n)
{
	struct spool_job j = {.sw = sw, .seqs = seqs, .bufs = bufs, .n = n};
	pthread_mutex_init(&j.lock, NULL);
	pthread_t t[SPOOL_THREADS - 1];
	size_t nt = 0;
	while (nt + 1 < SPOOL_THREADS && nt + 1 < n &&
	       wr_thread_start(&t[nt], spool_worker, &j) == 0)
		nt++;
	spool_worker(&j);
	for (size_t i = 0; i < nt; i++)
		pthread_join(t[i], NULL);
	pthread_mutex_destroy(&j.lock);
	return j.err;
}

/* Fragments sealed and not yet spooled, in seq order. */
struct pending {
	uint64_t *seqs;
	weft_buf *bufs;
	size_t n, cap, bytes;
};

static void pending_clear(struct pending *p)
{
	for (size_t i = 0; i < p->n; i++)
		weft_buf_free(&p->bufs[i]);
	p->n = p->bytes = 0;
}

static void pending_free(struct pending *p)
{
	pending_clear(p);
	free(p->seqs);
	free(p->bufs);
}

/* A slot for one more fragment (its buf initialized), or NULL. */
static weft_buf *pending_add(struct pending *p, uint64_t seq)
{
	if (p->n == p->cap) {
		size_t cap = p->cap ? 2 * p->cap : 16;
		uint64_t *s = realloc(p->seqs, cap * sizeof(*s));
		if (s)
			p->seqs = s;
		weft_buf *b = s ? realloc(p->bufs, cap * sizeof(*b)) : NULL;
		if (!b)
			return NULL;
		p->bufs = b;
		p->cap = cap;
	}
	p->seqs[p->n] = seq;
	weft_buf_init(&p->bufs[p->n]);
	return &p->bufs[p->n++];
}

/* At most this many bytes of sealed fragments wait in memory. */
#define PENDING_MAX_BYTES (16u << 20)

int wr_stream_record_many(wr_stream *s, const weft_wrap_run *runs,
			  const weft_report *const *reports, size_t nrec,
			  char *err, size_t errsz)
{
	if (s->failed) {
		snprintf(err, errsz, "the wrapper's writer could not be made");
		return WEFT_EIO;
	}
	if (!s->tried) {
		int rc = open_writer(s, err, errsz);
		if (rc != WEFT_OK) {
			s->failed = true;
			return rc;
		}
	}
	uint64_t first = s->next_seq, seq = first;
	struct pending p = {0};
	int rc = WEFT_OK;
	for (size_t r = 0; rc == WEFT_OK && r < nrec; r++) {
		const weft_wrap_run *run = &runs[r];
		size_t budget = run->part_bytes ? run->part_bytes
						: WEFT_WRAP_PART_BYTES_DEFAULT;
		weft_wrap_part *parts;
		size_t n;
		rc = weft_wrap_split(reports[r], budget, &parts, &n);
		if (rc != WEFT_OK) {
			snprintf(err, errsz,
				 "cannot cut the record of %s into parts of "
				 "%zu bytes: %s",
				 run->id->task, budget, weft_strerror(rc));
			break;
		}
		if (n > WEFT_MAX_PARTS) {
			snprintf(err, errsz,
				 "the record of %s needs %zu parts (at most "
				 "%d)",
				 run->id->task, n, WEFT_MAX_PARTS);
			free(parts);
			rc = WEFT_ETOOBIG;
			break;
		}
		for (size_t i = 0; rc == WEFT_OK && i < n; i++) {
			weft_buf *b = pending_add(&p, seq);
			rc = b ? seal_part(s, run, reports[r], &parts[i], seq,
					   i, n, b)
			       : WEFT_ENOMEM;
			if (rc != WEFT_OK) {
				snprintf(err, errsz,
					 "cannot seal fragment %zu of %zu of "
					 "%s: %s",
					 i + 1, n, run->id->task,
					 weft_strerror(rc));
				break;
			}
			seq++;
			p.bytes += b->len;
			if (p.bytes < PENDING_MAX_BYTES)
				continue;
			rc = spool_many(s->sw, p.seqs, p.bufs, p.n);
			pending_clear(&p);
			if (rc != WEFT_OK)
				snprintf(err, errsz,
					 "cannot spool fragments in %s: %s",
					 weft_spool_writer_dir(s->sw),
					 weft_strerror(rc));
		}
		free(parts);
	}
	if (rc == WEFT_OK && p.n) {
		rc = spool_many(s->sw, p.seqs, p.bufs, p.n);
		if (rc != WEFT_OK)
			snprintf(err, errsz, "cannot spool fragments in %s: %s",
				 weft_spool_writer_dir(s->sw),
				 weft_strerror(rc));
	}
	pending_free(&p);
	if (rc != WEFT_OK) {
		/* Half a record would be delivered as gaps: take the batch
		 * back (nothing of it was sent: ready has not moved); its
		 * seqs go to the next record. */
		for (uint64_t q = first; q < seq; q++)
			weft_spool_delete(s->sw, q);
		return rc;
	}
	s->next_seq = seq;
	pthread_mutex_lock(&s->lock);
	s->ready = seq - 1;
	s->st.records += nrec;
	s->st.fragments += (size_t)(seq - first);
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->lock);
	return WEFT_OK;
}

int wr_stream_record(wr_stream *s, const weft_wrap_run *run,
		     const weft_report *r, char *err, size_t errsz)
{
	return wr_stream_record_many(s, run, &r, 1, err, errsz);
}

/* ---- Shipping (its own thread) ---- */

enum verdict { V_STORED, V_DUPLICATE, V_REJECTED };

/* Acknowledged fragments are deleted in batches (see spool_many): one
 * acknowledged and not yet deleted is sent again by the next 'weft flush'
 * if the wrapper dies first, and the coordinator answers "already
 * there". */
#define DELETE_BATCH 64

struct shipper {
	wr_stream *s;
	weft_wrap_client *c;
	bool enrolled;
	weft_wrap_backoff backoff;
	char err[256];
	uint64_t acked[DELETE_BATCH]; /* to delete */
	size_t nacked;
};

static void delete_acked(struct shipper *sh, weft_spool_writer *sw)
{
	if (sh->nacked)
		spool_many(sw, sh->acked, NULL, sh->nacked);
	sh->nacked = 0;
}

/* The time one request may wait for its answer now (under lock). */
static int call_timeout(const wr_stream *s)
{
	if (!s->finishing)
		return SHIP_CALL_RUN_MS;
	int64_t left = s->deadline_ms - mono_ms();
	return left <= 0                 ? 0
	       : left > SHIP_CALL_MAX_MS ? SHIP_CALL_MAX_MS
					 : (int)left;
}

/* One request, one verdict: WEFT_OK with *v, or WEFT_EIO (no answer,
 * "retry", or the time is up: try again later). */
static int call(struct shipper *sh, const uint8_t *req, size_t len,
		enum verdict *v, char *reason, size_t reasonsz)
{
	wr_stream *s = sh->s;
	pthread_mutex_lock(&s->lock);
	int timeout = call_timeout(s);
	pthread_mutex_unlock(&s->lock);
	if (timeout <= 0)
		return WEFT_EIO;
	if (!sh->c &&
	    weft_wrap_client_open(s->env.coordinator, s->env.tls_ca, &sh->c,
				  sh->err, sizeof(sh->err)) != WEFT_OK)
		return WEFT_EIO;
	uint8_t *reply;
	size_t rlen;
	if (weft_wrap_client_call(sh->c, req, len, timeout, &reply, &rlen,
				  sh->err, sizeof(sh->err)) != WEFT_OK)
		return WEFT_EIO;
	int status;
	int err = weft_wrap_read_ack(reply, rlen, &status, reason, reasonsz);
	free(reply);
	if (err == WEFT_EIO) {
		snprintf(sh->err, sizeof(sh->err),
			 "the coordinator asked to retry later");
		return WEFT_EIO;
	}
	if (err != WEFT_OK) {
		*v = V_REJECTED;
		snprintf(reason, reasonsz,
			 "the coordinator's reply is not an acknowledgement");
		return WEFT_OK;
	}
	*v = status == WEFT_ACK_STORED	    ? V_STORED
	     : status == WEFT_ACK_DUPLICATE ? V_DUPLICATE
					    : V_REJECTED;
	return WEFT_OK;
}

/* Send fragment seq (after the enrolment, once): WEFT_OK when it has a
 * verdict (or cannot be sent at all: corrupt, gone), WEFT_EIO to retry. */
static int ship_one(struct shipper *sh, weft_spool_writer *sw, uint64_t seq)
{
	wr_stream *s = sh->s;
	enum verdict v;
	char reason[512], msg[1024];
	if (!sh->enrolled) {
		const weft_spool_state *st = weft_spool_writer_state(sw);
		if (call(sh, st->enrol, st->enrol_len, &v, reason,
			 sizeof(reason)) != WEFT_OK)
			return WEFT_EIO;
		sh->enrolled = true;
		if (v == V_REJECTED)
			fprintf(stderr,
				"weft: job %s: the coordinator %s refused "
				"this wrapper's writer: %s\n",
				s->env.job, s->env.coordinator, reason);
	}
	weft_buf b;
	weft_buf_init(&b);
	int rc = weft_spool_get(sw, seq, &b, msg, sizeof(msg));
	if (rc != WEFT_OK) {
		weft_buf_free(&b);
		if (rc == WEFT_EINVAL)
			fprintf(stderr, "weft: %s\n", msg);
		pthread_mutex_lock(&s->lock);
		s->st.corrupt += rc == WEFT_EINVAL;
		pthread_mutex_unlock(&s->lock);
		return rc == WEFT_ENOMEM ? WEFT_EIO : WEFT_OK;
	}
	rc = call(sh, b.data, b.len, &v, reason, sizeof(reason));
	weft_buf_free(&b);
	if (rc != WEFT_OK)
		return rc;
	if (v == V_REJECTED) {
		fprintf(stderr,
			"weft: job %s: fragment %llu rejected by the "
			"coordinator: %s (kept in %s/rejected/)\n",
			s->env.job, (unsigned long long)seq, reason,
			s->env.spool);
		weft_spool_reject(sw, seq, reason);
	} else {
		sh->acked[sh->nacked++] = seq;
		if (sh->nacked == DELETE_BATCH)
			delete_acked(sh, sw);
	}
	pthread_mutex_lock(&s->lock);
	if (v == V_REJECTED)
		s->st.rejected++;
	else if (v == V_STORED)
		s->st.stored++;
	else
		s->st.duplicate++;
	pthread_mutex_unlock(&s->lock);
	return WEFT_OK;
}

static void wait_until(wr_stream *s, int64_t at_ms)
{
	struct timespec ts;
	ts.tv_sec = at_ms / 1000;
	ts.tv_nsec = (at_ms % 1000) * 1000000;
	pthread_cond_timedwait(&s->cv, &s->lock, &ts);
}

static void *ship_thread(void *arg)
{
	wr_stream *s = arg;
	struct shipper sh = {.s = s};
	weft_wrap_backoff_init(&sh.backoff, SHIP_BACKOFF_BASE_MS,
			       SHIP_BACKOFF_CAP_MS, 0);
	pthread_mutex_lock(&s->lock);
	for (;;) {
		if (s->abort)
			break;
		bool late = s->finishing && mono_ms() >= s->deadline_ms;
		if (late || (s->closed && s->done == s->ready))
			break;
		if (s->done == s->ready && sh.nacked) {
			/* Caught up: delete what was acknowledged. */
			weft_spool_writer *sw = s->sw;
			pthread_mutex_unlock(&s->lock);
			delete_acked(&sh, sw);
			pthread_mutex_lock(&s->lock);
			continue;
		}
		if (s->done == s->ready) {
			if (s->finishing)
				wait_until(s, s->deadline_ms);
			else
				pthread_cond_wait(&s->cv, &s->lock);
			continue;
		}
		uint64_t seq = s->done + 1;
		weft_spool_writer *sw = s->sw;
		pthread_mutex_unlock(&s->lock);
		int rc = ship_one(&sh, sw, seq);
		pthread_mutex_lock(&s->lock);
		if (rc == WEFT_OK) {
			s->done = seq;
			weft_wrap_backoff_reset(&sh.backoff);
			continue;
		}
		snprintf(s->st.last_err, sizeof(s->st.last_err), "%s",
			 sh.err[0] ? sh.err : "timeout");
		/* Wait, woken early by the end of the run or abort. */
		int64_t at = mono_ms() + weft_wrap_backoff_next(&sh.backoff);
		if (s->finishing && at > s->deadline_ms)
			at = s->deadline_ms;
		if (!s->abort)
			wait_until(s, at);
	}
	weft_spool_writer *sw = s->sw;
	pthread_mutex_unlock(&s->lock);
	if (sw)
		delete_acked(&sh, sw);
	weft_wrap_client_close(sh.c);
	return NULL;
}

int wr_stream_start(wr_stream *s)
{
	pthread_mutex_lock(&s->lock);
	int rc = 0;
	if (!s->started) {
		rc = wr_thread_start(&s->thread, ship_thread, s);
		s->started = rc == 0;
	}
	pthread_mutex_unlock(&s->lock);
	return rc;
}

void wr_stream_deadline(wr_stream *s, int timeout_ms)
{
	pthread_mutex_lock(&s->lock);
	if (!s->finishing) {
		s->finishing = true;
		s->deadline_ms = mono_ms() + (timeout_ms > 0 ? timeout_ms : 0);
		pthread_cond_broadcast(&s->cv);
	}
	pthread_mutex_unlock(&s->lock);
}

static void join(wr_stream *s)
{
	if (s->started && !s->joined) {
		pthread_join(s->thread, NULL);
		s->joined = true;
	}
}

void wr_stream_finish(wr_stream *s, wrap_ray_ship_stats *st)
{
	wr_stream_deadline(s, 0); /* no-op when the deadline is set */
	/* The workload has ended: no fork follows, nng may start here. */
	wr_stream_start(s);
	pthread_mutex_lock(&s->lock);
	s->closed = true;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->lock);
	join(s);
	s->st.left = (size_t)(s->ready - s->done);
	if (s->sw) {
		/* What is left: every fragment after done, for whoever
		 * delivers the spool next. */
		weft_spool_writer_close(s->sw, true);
		s->sw = NULL;
	}
	sodium_memzero(&s->key, sizeof(s->key));
	*st = s->st;
}

void wr_stream_free(wr_stream *s)
{
	if (!s)
		return;
	pthread_mutex_lock(&s->lock);
	s->abort = true;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->lock);
	join(s);
	if (s->sw)
		weft_spool_writer_close(s->sw, true);
	sodium_memzero(&s->key, sizeof(s->key));
	pthread_cond_destroy(&s->cv);
	pthread_mutex_destroy(&s->lock);
	free(s);
}
