/*
 * stream.c - the streaming writer of weft/wrap.h: one writer for many
 * records (the Ray worker wrapper's tasks as they end, then what is left
 * at the end of the worker), spooled at once and shipped by a thread of
 * its own while the workload runs.
 *
 * It is the one-shot path cut in time: the writer is made as
 * weft_wrap_record makes one (wrap_writer_new), parts are sealed by the
 * same code (wrap_seal_part), and each fragment is delivered by the
 * shipper's own delivery (wrap_ship_once: verdicts, rejections, corrupt
 * files, the messages). What is the stream's own is time: the fragments
 * of a batch of records are spooled side by side (wrap_spool_many), the
 * acknowledged ones deleted in batches, and the thread waits on a
 * condition variable between attempts, so that a new record, the end of
 * the workload or an abort wakes it at once.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include <weft/wrap.h>
#include "wrap_internal.h"

/* One request waits at most this long for its answer while the workload
 * runs (then it is sent again: the coordinator deduplicates); after it
 * exited, what is left of the deadline, at most SHIP_CALL_MAX_MS. */
#define SHIP_CALL_RUN_MS 1000
#define SHIP_CALL_MAX_MS 5000
#define SHIP_BACKOFF_BASE_MS 50
#define SHIP_BACKOFF_CAP_MS 2000

struct weft_wrap_stream {
	weft_wrap_env env;
	FILE *msgs;
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
	bool finishing; /* the workload exited: deadline_ms is set */
	bool closed;    /* and nothing more will be recorded */
	int64_t deadline_ms;
	pthread_t thread;
	weft_wrap_stream_stats st;
	/* The shipping thread's (read by others after the join). */
	weft_wrap_shipper *sh;
};

weft_wrap_stream *weft_wrap_stream_new(const weft_wrap_env *env, FILE *msgs)
{
	weft_wrap_stream *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	/* The shipper's own deadline is not used: the stream gives each
	 * attempt its time. */
	if (weft_wrap_shipper_new(env->tls_ca, 0, msgs, &s->sh) != WEFT_OK) {
		free(s);
		return NULL;
	}
	s->env = *env;
	s->msgs = msgs;
	s->next_seq = 1;
	pthread_mutex_init(&s->lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s->cv, &ca);
	pthread_condattr_destroy(&ca);
	return s;
}

bool weft_wrap_stream_ok(const weft_wrap_stream *s)
{
	return s && !s->failed;
}

/* ---- Recording ---- */

/* The writer: a key pair, its enrolment, its spool directory. */
static int open_writer(weft_wrap_stream *s, char *err, size_t errsz)
{
	s->tried = true;
	weft_spool_writer *sw;
	int rc = wrap_writer_new(&s->env, &s->key, &sw, err, errsz);
	if (rc != WEFT_OK)
		return rc;
	pthread_mutex_lock(&s->lock);
	s->sw = sw;
	snprintf(s->st.writer_dir, sizeof(s->st.writer_dir), "%s",
		 weft_spool_writer_dir(sw));
	pthread_mutex_unlock(&s->lock);
	return WEFT_OK;
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

int weft_wrap_stream_record(weft_wrap_stream *s, const weft_wrap_run *runs,
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
		weft_wrap_part *parts;
		size_t n;
		rc = wrap_split_run(run, reports[r], &parts, &n, err, errsz);
		if (rc != WEFT_OK)
			break;
		for (size_t i = 0; rc == WEFT_OK && i < n; i++) {
			weft_buf *b = pending_add(&p, seq);
			rc = b ? wrap_seal_part(run, &s->key, reports[r],
						&parts[i], seq, i, n, b)
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
			rc = wrap_spool_many(s->sw, p.seqs, p.bufs, p.n);
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
		rc = wrap_spool_many(s->sw, p.seqs, p.bufs, p.n);
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

/* ---- Shipping (its own thread) ---- */

/* Acknowledged fragments are deleted in batches (wrap_spool_many): one
 * acknowledged and not yet deleted is sent again by the next 'weft flush'
 * if the wrapper dies first, and the coordinator answers "already
 * there". */
#define DELETE_BATCH 64

struct shipping {
	weft_wrap_stream *s;
	weft_wrap_client *c;
	bool enrolled;
	weft_wrap_backoff backoff;
	uint64_t acked[DELETE_BATCH]; /* to delete */
	size_t nacked;
};

static void delete_acked(struct shipping *sh, weft_spool_writer *sw)
{
	if (sh->nacked)
		wrap_spool_many(sw, sh->acked, NULL, sh->nacked);
	sh->nacked = 0;
}

/* The time one request may wait for its answer now (under lock). */
static int call_timeout(const weft_wrap_stream *s)
{
	if (!s->finishing)
		return SHIP_CALL_RUN_MS;
	int64_t left = s->deadline_ms - weft_mono_ms();
	return left <= 0                 ? 0
	       : left > SHIP_CALL_MAX_MS ? SHIP_CALL_MAX_MS
					 : (int)left;
}

/* One attempt at fragment seq (after the enrolment, once): WEFT_OK when
 * it has a verdict (or cannot be sent at all), else try again later. */
static int ship_one(struct shipping *sh, weft_spool_writer *sw, uint64_t seq)
{
	weft_wrap_stream *s = sh->s;
	pthread_mutex_lock(&s->lock);
	int timeout = call_timeout(s);
	pthread_mutex_unlock(&s->lock);
	if (timeout <= 0)
		return WEFT_EIO;
	if (!sh->c &&
	    !(sh->c = wrap_ship_client(sh->s->sh, s->env.coordinator)))
		return WEFT_EIO;
	if (!sh->enrolled) {
		if (wrap_ship_enrol_once(s->sh, sh->c,
					 weft_spool_writer_state(sw),
					 timeout) != WEFT_OK)
			return WEFT_EIO;
		sh->enrolled = true;
	}
	bool acked;
	int rc = wrap_ship_once(s->sh, sh->c, sw, seq, timeout, &acked);
	if (rc == WEFT_OK && acked) {
		sh->acked[sh->nacked++] = seq;
		if (sh->nacked == DELETE_BATCH)
			delete_acked(sh, sw);
	}
	return rc;
}

static void wait_until(weft_wrap_stream *s, int64_t at_ms)
{
	struct timespec ts;
	ts.tv_sec = at_ms / 1000;
	ts.tv_nsec = (at_ms % 1000) * 1000000;
	pthread_cond_timedwait(&s->cv, &s->lock, &ts);
}

static void *ship_thread(void *arg)
{
	weft_wrap_stream *s = arg;
	struct shipping sh = {.s = s};
	weft_wrap_backoff_init(&sh.backoff, SHIP_BACKOFF_BASE_MS,
			       SHIP_BACKOFF_CAP_MS, 0);
	pthread_mutex_lock(&s->lock);
	for (;;) {
		if (s->abort)
			break;
		bool late = s->finishing && weft_mono_ms() >= s->deadline_ms;
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
		const char *why = wrap_ship_last_err(s->sh);
		snprintf(s->st.last_err, sizeof(s->st.last_err), "%s",
			 why[0] ? why : "timeout");
		/* Wait, woken early by the end of the run or abort. */
		int64_t at = weft_mono_ms() + weft_wrap_backoff_next(&sh.backoff);
		if (s->finishing && at > s->deadline_ms)
			at = s->deadline_ms;
		if (!s->abort)
			wait_until(s, at);
	}
	weft_spool_writer *sw = s->sw;
	pthread_mutex_unlock(&s->lock);
	if (sw)
		delete_acked(&sh, sw);
	return NULL;
}

int weft_wrap_stream_start(weft_wrap_stream *s)
{
	pthread_mutex_lock(&s->lock);
	int rc = 0;
	if (!s->started) {
		rc = weft_wrap_thread_start(&s->thread, ship_thread, s);
		s->started = rc == 0;
	}
	pthread_mutex_unlock(&s->lock);
	return rc;
}

void weft_wrap_stream_deadline(weft_wrap_stream *s, int timeout_ms)
{
	pthread_mutex_lock(&s->lock);
	if (!s->finishing) {
		s->finishing = true;
		s->deadline_ms = weft_mono_ms() + (timeout_ms > 0 ? timeout_ms : 0);
		pthread_cond_broadcast(&s->cv);
	}
	pthread_mutex_unlock(&s->lock);
}

static void join(weft_wrap_stream *s)
{
	if (s->started && !s->joined) {
		pthread_join(s->thread, NULL);
		s->joined = true;
	}
}

void weft_wrap_stream_finish(weft_wrap_stream *s, weft_wrap_stream_stats *st)
{
	weft_wrap_stream_deadline(s, 0); /* no-op when the deadline is set */
	/* The workload has ended: no fork follows, nng may start here. */
	weft_wrap_stream_start(s);
	pthread_mutex_lock(&s->lock);
	s->closed = true;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->lock);
	join(s);
	const weft_wrap_ship_stats *v = weft_wrap_shipper_stats(s->sh);
	s->st.stored = v->stored;
	s->st.duplicate = v->duplicate;
	s->st.rejected = v->rejected;
	s->st.corrupt = v->corrupt;
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

void weft_wrap_stream_free(weft_wrap_stream *s)
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
	weft_wrap_shipper_free(s->sh); /* closes the client */
	sodium_memzero(&s->key, sizeof(s->key));
	pthread_cond_destroy(&s->cv);
	pthread_mutex_destroy(&s->lock);
	free(s);
}
