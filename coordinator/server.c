/*
 * server.c - the coordinator's request loop: nng REP contexts that decode
 * and verify requests on nng's worker threads, and one store writer thread
 * that applies them in batches and answers each only after its batch
 * committed.
 *
 * Why this split: checking an Ed25519 signature and decoding a fragment
 * are the CPU cost of ingest and parallelize freely; SQLite takes one
 * writer at a time and is fastest with many rows per transaction. A
 * context whose request is well-formed and signed hands it to the writer
 * queue and waits; the writer thread drains the queue (up to
 * COORD_BATCH requests) and commits once; a reply thread then sends every
 * answer of the batch (sending and freeing is off the one thread that
 * bounds throughput). Refusals
 * that need no store (malformed, oversize, bad signature) are answered by
 * the context at once.
 *
 * Shutdown (weft_coordinator_stop): new requests get WEFT_ACK_RETRY
 * ("shutting down": the sender tries again later, elsewhere or after the
 * restart), requests already taken (queued, or still being decoded and
 * checked: c->admitted) are committed and answered, then the socket
 * closes.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>

#include "coordinator_internal.h"
#include <weft/base.h>

/* Requests applied per transaction at most. */
#define COORD_BATCH 1024
/* While requests are being checked (c->admitted), the writer waits up to
 * COORD_GATHER_US for them before it begins a transaction of fewer than
 * COORD_GATHER_WANT: a commit writes every page the transaction touched,
 * and from 256 writers at once it took 4-7 requests (bench/ingest: the
 * store thread's CPU per fragment 49-64 us, against 40-57 gathering).
 * One request alone (a local `weft run`) is never waited with. */
#define COORD_GATHER_WANT 64
#define COORD_GATHER_US 2000

/* Jobs whose rejects are counted separately (status per job). */
#define COORD_MAX_REJECT_JOBS 4096
/* Request bytes held (received, not yet answered) at most; beyond it new
 * requests are answered "retry". */
#define COORD_MAX_HELD_BYTES ((size_t)256 * 1024 * 1024)
/* How long stop waits for queued requests to commit. */
#define COORD_STOP_WAIT_S 30

enum slot_state { SLOT_RECV, SLOT_WAIT, SLOT_SEND };

struct slot {
	weft_coordinator *c;
	nng_aio *aio;
	nng_ctx ctx;
	bool ctx_open;
	enum slot_state state;
	nng_msg *msg; /* the request, kept while its envelope is in use */
	size_t held;  /* its bytes, counted in held_bytes */
	weft_request req;
	weft_task_start start; /* req.kind WEFT_REQ_TASK_START */
	weft_envelope env;
	weft_fragment *frag;
	weft_verdict v;
	bool refused;      /* signed, refused: v is final, the writer thread
			      names it in the store (enrolled writers only) */
	bool admitted;     /* counted in c->admitted (under c->mu) */
	struct slot *next; /* writer queue */
	/* A direct call's (weft_coordinator_handle): no aio, no context; the
	 * reply is left here and done set, under c->mu. */
	bool direct, done;
	uint8_t *reply;
	size_t rlen;
};

struct job_rejects {
	char id[WEFT_JOB_ID_BYTES + 1];
	uint64_t n;
};

/* ---- Statistics ---- */

static void count_reject(weft_coordinator *c, int reason, const char *job)
{
	pthread_mutex_lock(&c->mu);
	if (reason > 0 && reason < WEFT_REJECT_REASON_MAX)
		c->rejects[reason]++;
	if (job && job[0]) {
		size_t i = 0;
		while (i < c->njrej && strcmp(c->jrej[i].id, job))
			i++;
		if (i == c->njrej && c->njrej < COORD_MAX_REJECT_JOBS) {
			if (c->njrej == c->jrej_cap) {
				size_t cap = c->jrej_cap ? 2 * c->jrej_cap : 16;
				void *p = realloc(c->jrej,
						  cap * sizeof(*c->jrej));
				if (p) {
					c->jrej = p;
					c->jrej_cap = cap;
				}
			}
			if (c->njrej < c->jrej_cap) {
				memcpy(c->jrej[i].id, job,
				       sizeof(c->jrej[i].id));
				c->jrej[i].n = 0;
				c->njrej++;
			}
		}
		if (i < c->njrej)
			c->jrej[i].n++;
	}
	pthread_mutex_unlock(&c->mu);
}

/* The coordinator's own counters into a status read from the store. */
static void add_counters(weft_coordinator *c, weft_status *st)
{
	pthread_mutex_lock(&c->mu);
	memcpy(st->rejects, c->rejects, sizeof(st->rejects));
	st->requests = c->requests;
	for (size_t j = 0; j < st->njobs; j++)
		for (size_t i = 0; i < c->njrej; i++)
			if (!strcmp(c->jrej[i].id, st->jobs[j].id))
				st->jobs[j].rejects = c->jrej[i].n;
	pthread_mutex_unlock(&c->mu);
}

/* ---- Replies ---- */

static const char *const kind_names[] = {
	"request",  "job create", "job end", "enrolment",
	"fragment", "status",     "export",  "task start",
};

static const char *kind_name(int kind)
{
	return kind > 0 && kind <= WEFT_REQ_TASK_START ? kind_names[kind]
						       : kind_names[0];
}

/* Drop what the slot's request held. */
static void slot_clear(struct slot *s)
{
	if (s->held) {
		pthread_mutex_lock(&s->c->mu);
		s->c->held_bytes -= s->held;
		pthread_mutex_unlock(&s->c->mu);
		s->held = 0;
	}
	weft_request_release(&s->req);
	memset(&s->req, 0, sizeof(s->req));
	s->refused = false;
	weft_fragment_release(s->frag);
	if (s->msg) {
		nng_msg_free(s->msg);
		s->msg = NULL;
	}
}

/* s is queued or answered: stop no longer waits for it as one being
 * checked (coord_drain). Under c->mu. */
static void unadmit(weft_coordinator *c, struct slot *s)
{
	if (s->admitted) {
		c->admitted--;
		s->admitted = false;
	}
}

/* A request is answered (or cannot be): take the next one. A direct
 * call's slot is its caller's again once done is set: not touched after. */
static void slot_done(struct slot *s)
{
	weft_coordinator *c = s->c;
	pthread_mutex_lock(&c->mu);
	c->in_flight--;
	unadmit(c, s); /* answered without the writer */
	if (c->gathering && !c->admitted)
		pthread_cond_signal(&c->cv);
	pthread_cond_broadcast(&c->idle);
	if (s->direct) {
		s->done = true;
		pthread_cond_broadcast(&c->answered);
		pthread_mutex_unlock(&c->mu);
		return;
	}
	pthread_mutex_unlock(&c->mu);
	s->state = SLOT_RECV;
	nng_ctx_recv(s->ctx, s->aio);
}

static void slot_send(struct slot *s, const weft_buf *b)
{
	nng_msg *m = NULL;
	slot_clear(s);
	if (s->direct) {
		/* No memory: no reply, which the caller reports. */
		s->reply = malloc(b->len ? b->len : 1);
		if (s->reply) {
			memcpy(s->reply, b->data, b->len);
			s->rlen = b->len;
		}
		slot_done(s);
		return;
	}
	if (nng_msg_alloc(&m, 0) != 0 || nng_msg_append(m, b->data, b->len)) {
		/* No memory for a reply: the sender times out and resends. */
		if (m)
			nng_msg_free(m);
		slot_done(s);
		return;
	}
	s->state = SLOT_SEND;
	nng_aio_set_msg(s->aio, m);
	nng_ctx_send(s->ctx, s->aio);
}

static void reply_verdict(struct slot *s, const weft_verdict *v)
{
	weft_coordinator *c = s->c;
	uint64_t seq = s->req.kind == WEFT_REQ_FRAGMENT ? s->env.seq : 0;
	if (v->status == WEFT_ACK_REJECTED) {
		const char *job = s->req.kind == WEFT_REQ_FRAGMENT ? s->env.job
				  : s->req.has_job                 ? s->req.job
								   : NULL;
		if (job && !job[0])
			job = NULL; /* the envelope did not decode */
		count_reject(c, v->reason, job);
		if (c->log)
			fprintf(c->log,
				"weft coordinator: rejected %s%s%s: %s (%s)\n",
				kind_name(s->req.kind), job ? " of job " : "",
				job ? job : "", weft_reject_name(v->reason),
				v->detail);
	}
	weft_buf b;
	weft_buf_init(&b);
	weft_reply_ack(v->status, v->reason, v->detail, seq, &b);
	slot_send(s, &b);
	weft_buf_free(&b);
}

static void reply_status(struct slot *s, weft_status *st)
{
	add_counters(s->c, st);
	weft_buf b;
	weft_buf_init(&b);
	int err = weft_reply_status(st, &b);
	if (err) {
		weft_verdict v = {WEFT_ACK_RETRY, WEFT_REJECT_NONE, ""};
		snprintf(v.detail, sizeof(v.detail), "status: %s",
			 weft_strerror(err));
		reply_verdict(s, &v);
	} else {
		slot_send(s, &b);
	}
	weft_buf_free(&b);
}

/* ---- The writer thread ---- */

static void enqueue(struct slot *s)
{
	weft_coordinator *c = s->c;
	s->state = SLOT_WAIT;
	s->next = NULL;
	pthread_mutex_lock(&c->mu);
	if (c->tail)
		c->tail->next = s;
	else
		c->head = s;
	c->tail = s;
	c->queued++;
	unadmit(c, s);
	/* Wake the writer when the queue was empty (a busy writer takes
	 * the whole queue when it is done anyway), or when what it gathers
	 * is all there. */
	if (++c->wqueued == 1 ||
	    (c->gathering && (c->wqueued >= COORD_GATHER_WANT || !c->admitted)))
		pthread_cond_signal(&c->cv);
	pthread_mutex_unlock(&c->mu);
}

/* Under c->mu, with requests queued: wait (COORD_GATHER_US at most) for
 * those still being checked, while they would make the transaction
 * larger. */
static void gather(weft_coordinator *c)
{
	if (c->wqueued >= COORD_GATHER_WANT || !c->admitted || c->quit)
		return;
	struct timespec until = weft_mono_deadline(COORD_GATHER_US * 1000L);
	c->gathering = true;
	while (c->wqueued < COORD_GATHER_WANT && c->admitted && !c->quit)
		if (pthread_cond_timedwait(&c->cv, &c->mu, &until) != 0)
			break;
	c->gathering = false;
}

static void apply_one(weft_coordinator *c, struct slot *s, int64_t now)
{
	weft_request *r = &s->req;
	switch (r->kind) {
	case WEFT_REQ_JOB_CREATE:
		weft_store_apply_job_create(c->writer, &r->job_info, &s->v);
		break;
	case WEFT_REQ_JOB_END:
		weft_store_apply_job_end(c->writer, r->job, r->exit_code,
					 r->ended_ns, &r->proof, &s->v);
		break;
	case WEFT_REQ_ENROL:
		weft_store_apply_enrol(c->writer, r->job, r->writer, &r->proof,
				       now, &s->v);
		break;
	case WEFT_REQ_TASK_START:
		weft_store_apply_task_start(c->writer, &s->start, now, &s->v);
		break;
	case WEFT_REQ_FRAGMENT:
		if (s->refused)
			weft_store_apply_refused(c->writer, &s->env,
						 s->frag->task.id[0] ? s->frag
								     : NULL,
						 now, &s->v);
		else
			weft_store_apply_fragment(c->writer, r->env, r->env_len,
						  &s->env, s->frag, now, &s->v);
		break;
	}
}

static void answer_status(weft_coordinator *c, struct slot *s)
{
	weft_status st;
	int err = weft_store_status(c->store,
				    s->req.has_job ? s->req.job : NULL, &st);
	if (err == WEFT_ENOTFOUND) {
		memset(&st, 0, sizeof(st));
		err = WEFT_OK;
	}
	if (err) {
		weft_verdict v = {WEFT_ACK_RETRY, WEFT_REJECT_NONE, ""};
		snprintf(v.detail, sizeof(v.detail), "status: %s",
			 weft_store_errmsg(c->store));
		reply_verdict(s, &v);
		return;
	}
	reply_status(s, &st);
	weft_status_release(&st);
}

/* Apply a batch in one transaction. Status requests are answered here
 * (they read the store, which is this thread's); the others, their
 * verdicts final once the commit returned, go to the reply thread, so
 * that this thread spends its time on the store only. */
static void run_batch(weft_coordinator *c, struct slot *batch)
{
	int64_t now = weft_real_ns();
	int err;
	bool writes = false;
	/* A second round when a request failed part-way outside a
	 * savepoint: the writer then isolates each request. */
	for (int round = 0; round < 2; round++) {
		err = weft_store_writer_begin(c->writer);
		for (struct slot *s = batch; s && !err; s = s->next)
			if (s->req.kind != WEFT_REQ_STATUS) {
				apply_one(c, s, now);
				writes = true;
			}
		if (!err)
			err = weft_store_writer_commit(c->writer);
		if (!err || !weft_store_writer_redo(c->writer))
			break;
	}
	/* The store's state is the last commit's: one that wrote and
	 * succeeded (space came back) clears an earlier failure. */
	if (!err && writes)
		c->last_commit_err = WEFT_OK;
	if (err) {
		c->last_commit_err = err;
		if (c->log)
			fprintf(c->log,
				"weft coordinator: store %s: commit failed: "
				"%s\n",
				c->store_path, weft_store_errmsg(c->store));
	}
	struct slot *replies = NULL, *last = NULL;
	size_t nstatus = 0, nreplies = 0;
	while (batch) {
		struct slot *s = batch;
		batch = s->next;
		s->next = NULL;
		if (s->req.kind == WEFT_REQ_STATUS) {
			answer_status(c, s);
			nstatus++;
			continue;
		}
		if (err) {
			/* Nothing of the batch is stored: have it resent. */
			s->v.status = WEFT_ACK_RETRY;
			s->v.reason = WEFT_REJECT_NONE;
			snprintf(s->v.detail, sizeof(s->v.detail),
				 "store error: %s",
				 weft_store_errmsg(c->store));
		}
		if (s->direct) {
			/* A caller in this process: answering is a copy, not
			 * worth a hand-over to the reply thread. */
			weft_verdict v = s->v;
			reply_verdict(s, &v);
			nstatus++;
			continue;
		}
		if (last)
			last->next = s;
		else
			replies = s;
		last = s;
		nreplies++;
	}
	pthread_mutex_lock(&c->mu);
	c->queued -= nstatus; /* and the direct calls answered */
	if (replies) {
		if (c->rtail)
			c->rtail->next = replies;
		else
			c->rhead = replies;
		c->rtail = last;
		c->rqueued += nreplies;
		pthread_cond_signal(&c->reply_cv);
	}
	pthread_cond_broadcast(&c->idle);
	pthread_mutex_unlock(&c->mu);
}

/* Lock c->mu, then wait on cv until there is a list at *head or *stop is
 * set. */
static void lock_until(weft_coordinator *c, pthread_cond_t *cv,
		       struct slot *const *head, const bool *stop)
{
	pthread_mutex_lock(&c->mu);
	while (!*head && !*stop)
		pthread_cond_wait(cv, &c->mu);
}

static void *writer_main(void *arg)
{
	weft_coordinator *c = arg;
	pthread_setname_np(pthread_self(), "weft-store");
	for (;;) {
		lock_until(c, &c->cv, &c->head, &c->quit);
		if (!c->head && c->quit) {
			pthread_mutex_unlock(&c->mu);
			break;
		}
		gather(c);
		struct slot *batch = c->head, *last = c->head;
		size_t n = 1;
		while (last->next && n < COORD_BATCH) {
			last = last->next;
			n++;
		}
		c->head = last->next;
		if (!c->head)
			c->tail = NULL;
		last->next = NULL;
		c->wqueued -= n;
		pthread_mutex_unlock(&c->mu);

		run_batch(c, batch);
	}
	return NULL;
}

/* The reply thread: encodes and sends the answers of committed batches,
 * and frees what their requests held. */
static void *replier_main(void *arg)
{
	weft_coordinator *c = arg;
	pthread_setname_np(pthread_self(), "weft-reply");
	for (;;) {
		lock_until(c, &c->reply_cv, &c->rhead, &c->writer_done);
		struct slot *list = c->rhead;
		size_t n = c->rqueued;
		c->rhead = c->rtail = NULL;
		c->rqueued = 0;
		bool done = c->writer_done;
		pthread_mutex_unlock(&c->mu);
		if (!list && done)
			break;
		while (list) {
			struct slot *s = list;
			list = s->next;
			weft_verdict v = s->v;
			reply_verdict(s, &v);
		}
		pthread_mutex_lock(&c->mu);
		c->queued -= n;
		pthread_cond_broadcast(&c->idle);
		pthread_mutex_unlock(&c->mu);
	}
	return NULL;
}

/* ---- Contexts ---- */

static void reject_now(struct slot *s, int reason, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void reject_now(struct slot *s, int reason, const char *fmt, ...)
{
	weft_verdict v = {WEFT_ACK_REJECTED, reason, ""};
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(v.detail, sizeof(v.detail), fmt, ap);
	va_end(ap);
	reply_verdict(s, &v);
}

/* The request body of len bytes: msg's (kept until the answer), or a
 * direct caller's (who waits for the answer). */
static void handle_request(struct slot *s, nng_msg *msg, const uint8_t *body,
			   size_t len)
{
	weft_coordinator *c = s->c;
	pthread_mutex_lock(&c->mu);
	c->requests++;
	bool stopping = c->stopping;
	/* Decoded fragments take a few times their bytes: bound what is
	 * held at once, whatever many writers send together. */
	bool busy = c->held_bytes + len > COORD_MAX_HELD_BYTES;
	if (!stopping && !busy) {
		c->held_bytes += len;
		s->held = len;
		/* Stop waits for it from now on (coord_drain). */
		c->admitted++;
		s->admitted = true;
	}
	pthread_mutex_unlock(&c->mu);
	s->msg = msg;
	if (stopping || busy) {
		weft_verdict v = {WEFT_ACK_RETRY, WEFT_REJECT_NONE, ""};
		snprintf(v.detail, sizeof(v.detail), "%s",
			 stopping ? "coordinator shutting down"
				  : "coordinator busy");
		reply_verdict(s, &v);
		return;
	}
	if (coord_export_request(body, len)) { /* export.c: a relay's page */
		weft_buf b;
		weft_verdict v;
		if (coord_export(c, body, len, &b, &v) == WEFT_OK)
			slot_send(s, &b);
		else
			reply_verdict(s, &v);
		weft_buf_free(&b);
		return;
	}
	int kind, err;
	if (weft_message_kind(body, len, &kind) == WEFT_OK &&
	    kind == WEFT_REQ_TASK_START) {
		/* A task began: its OpenLineage START is queued once stored. */
		s->req.kind = kind;
		err = weft_task_start_decode(body, len, &s->start);
		s->req.has_job = err == WEFT_OK;
		memcpy(s->req.job, s->start.job, sizeof(s->req.job));
	} else {
		err = weft_request_decode(body, len, &s->req);
	}
	if (err) {
		reject_now(s,
			   err == WEFT_ETOOBIG ? WEFT_REJECT_OVERSIZE
					       : WEFT_REJECT_MALFORMED,
			   "request of %zu bytes: %s", len, weft_strerror(err));
		return;
	}
	if (s->req.kind == WEFT_REQ_JOB_CREATE) {
		uint8_t mac[WEFT_MAC_BYTES];
		weft_job_create_mac(c->submit_key, &s->req.job_info, mac);
		if (!s->req.has_auth || !weft_mac_equal(mac, s->req.auth)) {
			reject_now(s, WEFT_REJECT_NOT_ALLOWED,
				   s->req.has_auth
					   ? "its proof is not made with this "
					     "coordinator's submit key"
					   : "job creation needs a proof of "
					     "the coordinator's submit key");
			return;
		}
	}
	if (s->req.kind == WEFT_REQ_FRAGMENT) {
		weft_verdict v;
		bool signed_ok;
		if (weft_envelope_check_signed(s->req.env, s->req.env_len,
					       &s->env, s->frag, &v,
					       &signed_ok)) {
			if (!signed_ok) {
				reply_verdict(s, &v);
				return;
			}
			/* A writer's own signed fragment, refused: the
			 * store names it when the writer is enrolled. */
			s->v = v;
			s->refused = true;
		}
	}
	enqueue(s);
}

static void slot_cb(void *arg)
{
	struct slot *s = arg;
	weft_coordinator *c = s->c;
	int rv = nng_aio_result(s->aio);
	switch (s->state) {
	case SLOT_RECV:
		if (rv == NNG_ECLOSED || rv == NNG_ECANCELED)
			return; /* shutting down */
		if (rv != 0) {
			nng_ctx_recv(s->ctx, s->aio);
			return;
		}
		pthread_mutex_lock(&c->mu);
		c->in_flight++;
		pthread_mutex_unlock(&c->mu);
		nng_msg *m = nng_aio_get_msg(s->aio);
		coord_conn_active(c, nng_msg_get_pipe(m));
		handle_request(s, m, nng_msg_body(m), nng_msg_len(m));
		return;
	case SLOT_SEND:
		if (rv != 0)
			nng_msg_free(nng_aio_get_msg(s->aio));
		slot_done(s);
		return;
	case SLOT_WAIT:
		return; /* not reached: no aio runs while waiting */
	}
}

int weft_coordinator_handle(weft_coordinator *c, const uint8_t *req, size_t len,
			    uint8_t **reply, size_t *rlen)
{
	*reply = NULL;
	*rlen = 0;
	struct slot *s = calloc(1, sizeof(*s));
	weft_fragment *f = malloc(sizeof(*f));
	if (!s || !f) {
		free(s);
		free(f);
		return WEFT_ENOMEM;
	}
	weft_fragment_init(f);
	s->c = c;
	s->frag = f;
	s->direct = true;
	pthread_mutex_lock(&c->mu);
	c->in_flight++;
	pthread_mutex_unlock(&c->mu);
	handle_request(s, NULL, req, len);
	pthread_mutex_lock(&c->mu);
	while (!s->done)
		pthread_cond_wait(&c->answered, &c->mu);
	pthread_mutex_unlock(&c->mu);
	/* Answered: slot_send cleared the request (the fragment released). */
	free(f);
	*reply = s->reply;
	*rlen = s->rlen;
	free(s);
	return *reply ? WEFT_OK : WEFT_ENOMEM;
}

int coord_slots_start(weft_coordinator *c, int n)
{
	c->slots = calloc((size_t)n, sizeof(struct slot));
	if (!c->slots)
		return WEFT_ENOMEM;
	c->nslots = n;
	for (int i = 0; i < n; i++) {
		struct slot *s = &c->slots[i];
		s->c = c;
		s->frag = malloc(sizeof(*s->frag));
		if (!s->frag)
			return WEFT_ENOMEM;
		weft_fragment_init(s->frag);
		if (nng_aio_alloc(&s->aio, slot_cb, s) != 0)
			return WEFT_EIO;
		if (nng_ctx_open(&s->ctx, c->sock) != 0)
			return WEFT_EIO;
		s->ctx_open = true;
	}
	for (int i = 0; i < n; i++) {
		c->slots[i].state = SLOT_RECV;
		nng_ctx_recv(c->slots[i].ctx, c->slots[i].aio);
	}
	return WEFT_OK;
}

int coord_writer_start(weft_coordinator *c)
{
	if (pthread_create(&c->replier_thread, NULL, replier_main, c) != 0)
		return WEFT_EIO;
	c->replier_running = true;
	if (pthread_create(&c->writer_thread, NULL, writer_main, c) != 0)
		return WEFT_EIO;
	c->writer_running = true;
	return WEFT_OK;
}

void coord_drain(weft_coordinator *c)
{
	struct timespec deadline;
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += COORD_STOP_WAIT_S;
	pthread_mutex_lock(&c->mu);
	c->stopping = true;
	/* Everything taken before now gets committed and answered: what is
	 * queued, and what is still being checked (it would otherwise reach
	 * the queue after the writer quit, and never be answered). */
	while ((c->queued > 0 || c->admitted > 0) &&
	       pthread_cond_timedwait(&c->idle, &c->mu, &deadline) != ETIMEDOUT)
		;
	pthread_mutex_unlock(&c->mu);
}

void coord_slots_quiet(weft_coordinator *c)
{
	/* A callback that takes the next request meanwhile (slot_done)
	 * is refused by the stopped aio, without a callback. */
	for (int i = 0; i < c->nslots; i++)
		if (c->slots[i].aio)
			nng_aio_stop(c->slots[i].aio);
}

void coord_slots_stop(weft_coordinator *c)
{
	coord_slots_quiet(c);
	for (int i = 0; i < c->nslots; i++) {
		struct slot *s = &c->slots[i];
		if (s->frag)
			slot_clear(s);
		if (s->ctx_open)
			nng_ctx_close(s->ctx);
		if (s->aio)
			nng_aio_free(s->aio);
		free(s->frag);
	}
	free(c->slots);
	c->slots = NULL;
	c->nslots = 0;
}

void coord_thread_stop(pthread_mutex_t *mu, pthread_cond_t *cv, bool *stop,
		       pthread_t *t, bool *running)
{
	pthread_mutex_lock(mu);
	*stop = true;
	pthread_cond_signal(cv);
	pthread_mutex_unlock(mu);
	if (*running)
		pthread_join(*t, NULL);
	*running = false;
}

void coord_writer_stop(weft_coordinator *c)
{
	coord_thread_stop(&c->mu, &c->cv, &c->quit, &c->writer_thread,
			  &c->writer_running);
	/* The writer has handed over its last batch: the replier ends once
	 * it answered it. */
	coord_thread_stop(&c->mu, &c->reply_cv, &c->writer_done,
			  &c->replier_thread, &c->replier_running);
}
