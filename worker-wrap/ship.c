/*
 * ship.c - delivery: what the spool holds goes to the coordinator named in
 * each writer's state, at least once, within the caller's deadline. The
 * coordinator deduplicates by (job, writer, seq), so sending again after a
 * lost acknowledgement is always safe; deleting before the acknowledgement
 * never is. Every wait is bounded by the deadline, so a coordinator that
 * is down costs a wrapper at most its --ship-timeout.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <weft/wrap.h>
#include "wrap_internal.h"

/* One attempt waits at most this long for its reply (less when the
 * deadline is nearer). */
#define SHIP_CALL_TIMEOUT_MS 5000
#define SHIP_BACKOFF_BASE_MS 50
#define SHIP_BACKOFF_CAP_MS 2000
/* Distinct coordinators one shipper talks to (a spool rarely holds more
 * than one job's). */
#define SHIP_MAX_CLIENTS 16

/* What the coordinator said about one request, in delivery's terms. */
enum verdict {
	VERDICT_STORED,    /* committed (an enrolment: accepted) */
	VERDICT_DUPLICATE, /* already stored: as good as stored */
	VERDICT_REJECTED,  /* refused for good: the reason says why */
};

struct client_slot {
	char url[WEFT_WRAP_MAX_URL_BYTES + 1];
	weft_wrap_client *c;
};

struct weft_wrap_shipper {
	char tls_ca[WEFT_MAX_PATH_BYTES + 1];
	int64_t deadline_ms;
	FILE *msgs;
	weft_wrap_backoff backoff;
	struct client_slot clients[SHIP_MAX_CLIENTS];
	size_t nclients;
	weft_wrap_ship_stats stats;
	char last_err[512];    /* last transport error, said once per writer */
	bool said_unreachable; /* a client that cannot be opened: said once */
	/* weft_wrap_shipper_set_progress: fragments settled, bytes sent. */
	weft_progress_fn progress;
	void *progress_arg;
	uint64_t bytes_sent, expected;
	/* weft_wrap_shipper_set_local: this local run's coordinator. */
	char local_url[WEFT_WRAP_MAX_URL_BYTES + 1];
};

static void say(weft_wrap_shipper *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void say(weft_wrap_shipper *s, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	weft_vsay_to(s->msgs, fmt, ap);
	va_end(ap);
}

int weft_wrap_shipper_new(const char *tls_ca, int timeout_ms, FILE *msgs,
			  weft_wrap_shipper **out)
{
	weft_wrap_shipper *s = calloc(1, sizeof(*s));
	if (!s)
		return WEFT_ENOMEM;
	snprintf(s->tls_ca, sizeof(s->tls_ca), "%s", tls_ca ? tls_ca : "");
	s->deadline_ms = weft_mono_ms() + (timeout_ms > 0 ? timeout_ms : 0);
	s->msgs = msgs;
	weft_wrap_backoff_init(&s->backoff, SHIP_BACKOFF_BASE_MS,
			       SHIP_BACKOFF_CAP_MS, 0);
	*out = s;
	return WEFT_OK;
}

const weft_wrap_ship_stats *weft_wrap_shipper_stats(const weft_wrap_shipper *s)
{
	return &s->stats;
}

void weft_wrap_shipper_free(weft_wrap_shipper *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->nclients; i++)
		weft_wrap_client_close(s->clients[i].c);
	free(s);
}

static weft_wrap_client *client_for(weft_wrap_shipper *s, const char *url)
{
	for (size_t i = 0; i < s->nclients; i++)
		if (strcmp(s->clients[i].url, url) == 0)
			return s->clients[i].c;
	if (s->nclients == SHIP_MAX_CLIENTS)
		return NULL;
	char err[512];
	weft_wrap_client *c;
	if (weft_wrap_client_open(url, s->tls_ca, &c, err, sizeof(err)) !=
	    WEFT_OK) {
		snprintf(s->last_err, sizeof(s->last_err), "%s", err);
		if (!s->said_unreachable)
			say(s, "cannot reach the coordinator %s: %s", url, err);
		s->said_unreachable = true;
		return NULL;
	}
	struct client_slot *slot = &s->clients[s->nclients++];
	snprintf(slot->url, sizeof(slot->url), "%s", url);
	slot->c = c;
	return c;
}

static void sleep_ms(int64_t ms)
{
	struct timespec ts = {.tv_sec = ms / 1000,
			      .tv_nsec = (ms % 1000) * 1000000};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

int weft_wrap_read_ack(const uint8_t *reply, size_t len, int *status,
		       char *reason, size_t reasonsz)
{
	weft_reply r;
	int err = weft_reply_decode(reply, len, &r);
	if (err != WEFT_OK)
		return err;
	if (r.kind != WEFT_REPLY_ACK) {
		weft_reply_release(&r);
		return WEFT_ETYPE;
	}
	*status = r.ack.status;
	if (r.ack.status == WEFT_ACK_REJECTED)
		snprintf(reason, reasonsz, "%s%s%s",
			 weft_reject_name(r.ack.reason),
			 r.ack.detail[0] ? ": " : "", r.ack.detail);
	else if (r.ack.status != WEFT_ACK_STORED &&
		 r.ack.status != WEFT_ACK_DUPLICATE)
		err = WEFT_EIO; /* WEFT_ACK_RETRY */
	weft_reply_release(&r);
	return err;
}

/* Read a reply: WEFT_OK with a verdict, WEFT_EIO for "retry" (the
 * coordinator could not store it now), or a decode error. */
static int read_ack(const uint8_t *reply, size_t len, enum verdict *v,
		    char *reason, size_t reasonsz)
{
	int status;
	int err = weft_wrap_read_ack(reply, len, &status, reason, reasonsz);
	if (err == WEFT_OK)
		*v = status == WEFT_ACK_STORED      ? VERDICT_STORED
		     : status == WEFT_ACK_DUPLICATE ? VERDICT_DUPLICATE
						    : VERDICT_REJECTED;
	return err;
}

/* One attempt at one request within timeout_ms: WEFT_OK with a verdict
 * (a reply that is not an acknowledgement counts as a rejection),
 * WEFT_EIO (no answer in time, or "retry": s->last_err says which) or
 * WEFT_ENOMEM. */
static int call_once(weft_wrap_shipper *s, weft_wrap_client *c,
		     const uint8_t *req, size_t len, int timeout_ms,
		     enum verdict *v, char *reason, size_t reasonsz)
{
	uint8_t *reply;
	size_t rlen;
	int err = weft_wrap_client_call(c, req, len, timeout_ms, &reply, &rlen,
					s->last_err, sizeof(s->last_err));
	if (err != WEFT_OK) {
		s->stats.attempts_failed += err == WEFT_EIO;
		return err;
	}
	err = read_ack(reply, rlen, v, reason, reasonsz);
	free(reply);
	if (err == WEFT_EIO) {
		snprintf(s->last_err, sizeof(s->last_err),
			 "the coordinator asked to retry later");
		s->stats.attempts_failed++;
		return WEFT_EIO;
	}
	if (err != WEFT_OK) {
		*v = VERDICT_REJECTED;
		snprintf(reason, reasonsz,
			 "the coordinator's reply is not an acknowledgement "
			 "(%s)",
			 weft_strerror(err));
	}
	return WEFT_OK;
}

/* One request until it gets a verdict or the deadline passes (WEFT_EIO),
 * waiting with backoff between attempts; with once, one attempt of at
 * most timeout_ms (the caller waits and tries again). */
static int call(weft_wrap_shipper *s, weft_wrap_client *c, const uint8_t *req,
		size_t len, bool once, int timeout_ms, enum verdict *v,
		char *reason, size_t reasonsz)
{
	if (once)
		return call_once(s, c, req, len, timeout_ms, v, reason,
				 reasonsz);
	for (;;) {
		int64_t left = s->deadline_ms - weft_mono_ms();
		if (left <= 0)
			return WEFT_EIO;
		int err = call_once(s, c, req, len,
				    (int)(left < SHIP_CALL_TIMEOUT_MS
						  ? left
						  : SHIP_CALL_TIMEOUT_MS),
				    v, reason, reasonsz);
		if (err == WEFT_OK) {
			weft_wrap_backoff_reset(&s->backoff);
			return WEFT_OK;
		}
		if (err == WEFT_ENOMEM)
			return err;
		int64_t wait = weft_wrap_backoff_next(&s->backoff);
		left = s->deadline_ms - weft_mono_ms();
		if (left <= 0)
			return WEFT_EIO;
		sleep_ms(wait < left ? wait : left);
	}
}

/* The writer's enrolment (again after a restart: it is idempotent). A
 * refusal is said; the fragments then get their own verdicts. */
static int enrol(weft_wrap_shipper *s, weft_wrap_client *c,
		 const weft_spool_state *st, bool once, int timeout_ms)
{
	enum verdict v;
	char reason[512];
	int err = call(s, c, st->enrol, st->enrol_len, once, timeout_ms, &v,
		       reason, sizeof(reason));
	if (err == WEFT_OK && v == VERDICT_REJECTED)
		say(s,
		    "job %s: the coordinator %s refused this writer's "
		    "enrolment: %s",
		    st->job, st->coordinator, reason);
	return err;
}

/* Send fragment seq of w and settle its verdict: rejected, moved aside
 * (said); stored or duplicate, *acked (the caller deletes it). WEFT_OK
 * when it has a verdict or cannot be sent at all (corrupt: moved aside,
 * said; gone), WEFT_EIO or WEFT_ENOMEM to try again. */
static int deliver(weft_wrap_shipper *s, weft_wrap_client *c,
		   weft_spool_writer *w, uint64_t seq, bool once,
		   int timeout_ms, bool *acked)
{
	char reason[512], msg[1024];
	*acked = false;
	weft_buf b;
	weft_buf_init(&b);
	int err = weft_spool_get(w, seq, &b, msg, sizeof(msg));
	if (err == WEFT_EINVAL) {
		say(s, "%s", msg);
		s->stats.corrupt++;
	}
	if (err != WEFT_OK) {
		weft_buf_free(&b);
		return err == WEFT_ENOMEM ? err : WEFT_OK;
	}
	enum verdict v;
	err = call(s, c, b.data, b.len, once, timeout_ms, &v, reason,
		   sizeof(reason));
	s->bytes_sent += err ? 0 : b.len;
	weft_buf_free(&b);
	if (err)
		return err;
	if (s->progress) {
		const weft_wrap_ship_stats *k = &s->stats;
		/* This one included: it is settled below. */
		s->progress(s->progress_arg,
			    k->stored + k->duplicate + k->rejected + 1,
			    s->expected, s->bytes_sent);
	}
	if (v == VERDICT_REJECTED) {
		const weft_spool_state *st = weft_spool_writer_state(w);
		say(s,
		    "job %s: fragment %llu rejected by the coordinator: %s "
		    "(kept in %s/rejected/)",
		    st->job, (unsigned long long)seq, reason, wrap_spool_of(w));
		weft_spool_reject(w, seq, reason);
		s->stats.rejected++;
		return WEFT_OK;
	}
	*acked = true;
	if (v == VERDICT_STORED)
		s->stats.stored++;
	else
		s->stats.duplicate++;
	return WEFT_OK;
}

int wrap_ship_request(weft_wrap_shipper *s, const char *url,
		      const uint8_t *req, size_t len, bool *taken)
{
	weft_wrap_client *c = client_for(s, url);
	*taken = false;
	if (!c)
		return WEFT_EIO;
	enum verdict v;
	char reason[512];
	int err = call(s, c, req, len, false, 0, &v, reason,
		       sizeof(reason));
	if (err == WEFT_OK && v == VERDICT_REJECTED)
		say(s, "%s", reason);
	*taken = err == WEFT_OK && v != VERDICT_REJECTED;
	return err;
}

static int ship_fragments(weft_wrap_shipper *s, weft_spool_writer *w,
			  weft_wrap_client *c)
{
	uint64_t *seqs;
	size_t n, i = 0;
	int err = weft_spool_list(w, &seqs, &n);
	if (err)
		return err;
	for (; i < n && !err; i++) {
		bool acked;
		err = deliver(s, c, w, seqs[i], false, 0, &acked);
		if (err)
			break;
		if (acked)
			weft_spool_delete(w, seqs[i]);
	}
	s->stats.left += n - i;
	free(seqs);
	return err;
}

/* A writer left for later: its fragments count as left. */
static void count_left(weft_wrap_shipper *s, weft_spool_writer *w)
{
	uint64_t *seqs;
	size_t n;
	if (weft_spool_list(w, &seqs, &n) == WEFT_OK) {
		s->stats.left += n;
		free(seqs);
	}
	s->stats.writers_left++;
}

void weft_wrap_shipper_set_local(weft_wrap_shipper *s, const char *url)
{
	snprintf(s->local_url, sizeof(s->local_url), "%s", url);
}

/* Deliver w's requests to the coordinator at url. */
static int ship_writer_to(weft_wrap_shipper *s, weft_spool_writer *w,
			  const char *url)
{
	const weft_spool_state *st = weft_spool_writer_state(w);
	weft_wrap_client *c = client_for(s, url);
	if (!c) {
		count_left(s, w);
		return WEFT_EIO;
	}
	/* Enrol first, every time: the coordinator may never have seen this
	 * writer (it was down). */
	s->last_err[0] = '\0';
	int err = enrol(s, c, st, false, 0);
	if (err == WEFT_OK) {
		err = ship_fragments(s, w, c);
		if (err == WEFT_OK) {
			s->stats.writers_done++;
			return WEFT_OK;
		}
		s->stats.writers_left++;
	} else {
		count_left(s, w); /* not even enrolled: all of it */
	}
	if (err == WEFT_EIO)
		say(s,
		    "the coordinator %s did not answer in time (%s); what "
		    "is left stays in %s for %s",
		    url, s->last_err[0] ? s->last_err : "timeout",
		    weft_spool_writer_dir(w),
		    wrap_url_in_process(url)
			    ? "the project's next weft command ('weft run' "
			      "or a reader such as 'weft show')"
			    : "'weft flush'");
	return err;
}

int weft_wrap_ship_writer(weft_wrap_shipper *s, weft_spool_writer *w)
{
	return ship_writer_to(s, w, weft_spool_writer_state(w)->coordinator);
}

void weft_wrap_shipper_set_progress(weft_wrap_shipper *s, weft_progress_fn fn,
				    void *arg, uint64_t expected)
{
	s->progress = fn;
	s->progress_arg = arg;
	s->expected = expected;
}

int weft_wrap_ship_spool(weft_wrap_shipper *s, const char *spool)
{
	char **names;
	size_t n;
	int err = weft_spool_writers(spool, &names, &n);
	if (err)
		return err;
	int result = WEFT_OK;
	for (size_t i = 0; i < n; i++) {
		weft_spool_writer *w;
		bool busy;
		err = weft_spool_writer_open(spool, names[i], &w, &busy);
		if (err == WEFT_EINVAL) {
			say(s,
			    "spool %s/%s: its state file is unreadable; "
			    "moved to %s/corrupt/",
			    spool, names[i], spool);
			s->stats.corrupt++;
			continue;
		}
		if (err) {
			s->stats.writers_busy += busy;
			continue; /* another flush or wrapper has it */
		}
		if (s->deadline_ms - weft_mono_ms() <= 0) {
			count_left(s, w);
			weft_spool_writer_close(w, false);
			result = WEFT_EIO;
			continue;
		}
		/* A writer spooled for the coordinator in the process of a
		 * local run (which ended before its fragments were stored:
		 * killed, or its store refused them for a while) can be
		 * stored only by a later local run, through its own
		 * coordinator over the same project store: the writer's
		 * enrolment, signed with its job's token, is as valid there.
		 * A local run delivers nothing else. */
		const char *url = weft_spool_writer_state(w)->coordinator;
		bool here = wrap_url_in_process(url);
		if (s->local_url[0] && !here) {
			weft_spool_writer_close(w, false);
			continue;
		}
		if (here && !s->local_url[0]) {
			say(s,
			    "spool %s/%s: left by a local 'weft run' that "
			    "ended before storing it; that project's next "
			    "weft command ('weft run' or a reader such as "
			    "'weft show') stores it",
			    spool, names[i]);
			count_left(s, w);
			weft_spool_writer_close(w, false);
			result = WEFT_EIO;
			continue;
		}
		err = ship_writer_to(s, w, here ? s->local_url : url);
		weft_spool_writer_close(w, err == WEFT_OK);
		if (err)
			result = err == WEFT_ENOMEM ? err : WEFT_EIO;
	}
	weft_spool_names_free(names, n);
	return result;
}

/* ---- One attempt at a time: the streaming writer (stream.c) ---- */

weft_wrap_client *wrap_ship_client(weft_wrap_shipper *s, const char *url)
{
	return client_for(s, url);
}

int wrap_ship_enrol_once(weft_wrap_shipper *s, weft_wrap_client *c,
			 const weft_spool_state *st, int timeout_ms)
{
	return enrol(s, c, st, true, timeout_ms);
}

int wrap_ship_once(weft_wrap_shipper *s, weft_wrap_client *c,
		   weft_spool_writer *w, uint64_t seq, int timeout_ms,
		   bool *acked)
{
	return deliver(s, c, w, seq, true, timeout_ms, acked);
}

const char *wrap_ship_last_err(const weft_wrap_shipper *s)
{
	return s->last_err;
}
