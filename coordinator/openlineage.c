/*
 * openlineage.c - the coordinator's OpenLineage sender: one thread that
 * sends what the store's outbox holds for this coordinator's destination
 * (an HTTP endpoint, or a file it appends to), in the order it was
 * queued, and takes each event out only once the destination has it.
 *
 * The outbox is filled by the store itself, in the transaction that
 * stores a task or its start (store.c, migrations 7 and 9): the ingest
 * path never waits for a destination, and a destination that is down,
 * slow or gone loses nothing: its events wait in the store (for the next
 * coordinator over it, if this one stops first) and `weft status` counts
 * them. A local run's first events may be sent before its coordinator
 * exists, by the pieces below run in a process of its own (ol_live.c).
 * The thread
 * has a store handle of its own; its reads do not block the writer
 * (WAL), its writes are one short transaction per event.
 *
 * Life cycle: coord_ol_start (before the listener: nothing is stored
 * before the sink is registered) -> running: next, send, mark, or back
 * off -> coord_ol_stop: keep sending what is ready for at most the drain
 * time, then leave the rest queued.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>

#include <sodium.h>

#include "coordinator_internal.h"
#include <weft/base.h>

/* Retry waits: doubling from the base up to the cap, with jitter. */
#define OL_BACKOFF_BASE_MS 200
#define OL_BACKOFF_CAP_MS 10000
/* How often an idle sender looks for new events. */
#define OL_POLL_MS 100
/* One request at most; a destination that takes longer is down. */
#define OL_REQUEST_TIMEOUT_MS 10000
#define OL_CONNECT_TIMEOUT_MS 3000
#define OL_DEFAULT_DRAIN_MS 2000
/* An API key file at most, and what of a refusal's body is kept. */
#define OL_MAX_KEY_BYTES 4096
#define OL_BODY_KEPT 200

struct coord_ol {
	FILE *log; /* may be NULL */
	weft_store *store;
	int64_t sink;
	char *endpoint; /* URL/api/v1/lineage, or NULL */
	char *auth;     /* "Authorization: Bearer KEY", or NULL */
	char *file;     /* or the file appended to */
	char ns[WEFT_OL_MAX_NAMESPACE_BYTES + 1];
	weft_ol_opts opts;
	int drain_ms;
	const struct ol_curl_api *cu; /* libcurl, for an endpoint */
	CURL *curl;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool stop;
	int64_t deadline_ms; /* once stopping */
	uint64_t rng;
};

int weft_ol_api_key_load(const char *path, char *key, size_t keysz, char *err,
			 size_t errsz)
{
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errsz, "%s: %s", path, strerror(errno));
		return WEFT_EIO;
	}
	struct stat st;
	const char *why = NULL;
	if (fstat(fd, &st) != 0)
		why = strerror(errno);
	else if (!S_ISREG(st.st_mode))
		why = "not a regular file";
	else if (st.st_uid != geteuid())
		why = "owned by another user";
	else if (st.st_mode & 077)
		why = "readable or writable by others than its owner (chmod "
		      "600 it)";
	else if (st.st_size > OL_MAX_KEY_BYTES || (size_t)st.st_size >= keysz)
		why = "larger than an API key (4096 bytes at most)";
	ssize_t n = why ? 0 : read(fd, key, keysz - 1);
	if (!why && n < 0)
		why = strerror(errno);
	close(fd);
	if (!why) {
		while (n > 0 && (key[n - 1] == '\n' || key[n - 1] == '\r' ||
				 key[n - 1] == ' ' || key[n - 1] == '\t'))
			n--;
		key[n] = '\0';
		/* It goes into a header line: nothing that could end it. */
		for (ssize_t i = 0; i < n && !why; i++)
			if (key[i] <= 0x20 || key[i] >= 0x7f)
				why = "holds spaces or control characters; "
				      "expected one token";
		if (!why && n == 0)
			why = "empty";
	}
	if (why) {
		sodium_memzero(key, keysz);
		snprintf(err, errsz, "API key file %s: %s", path, why);
		return WEFT_EINVAL;
	}
	return WEFT_OK;
}

/* ---- Sending one event ---- */

struct body {
	char text[OL_BODY_KEPT + 1];
	size_t len;
};

static size_t keep_body(char *p, size_t size, size_t n, void *arg)
{
	struct body *b = arg;
	size_t got = size * n, room = OL_BODY_KEPT - b->len;
	size_t take = got < room ? got : room;
	memcpy(b->text + b->len, p, take);
	b->len += take;
	b->text[b->len] = '\0';
	return got;
}

/* 0 sent; else why in msg, and *for_good when retrying cannot help (the
 * endpoint refused this event as it is). */
static int send_http(struct coord_ol *ol, const char *json, size_t len,
		     long timeout_ms, bool *for_good, char *msg, size_t msgsz)
{
	CURL *h = ol->curl;
	struct curl_slist *hdr =
		ol->cu->slist_append(NULL, "Content-Type: application/json");
	if (ol->auth)
		hdr = ol->cu->slist_append(hdr, ol->auth);
	struct body body = {.len = 0};
	ol->cu->easy_reset(h);
	ol->cu->easy_setopt(h, CURLOPT_URL, ol->endpoint);
	ol->cu->easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	ol->cu->easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
	ol->cu->easy_setopt(h, CURLOPT_POSTFIELDS, json);
	ol->cu->easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	ol->cu->easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
	ol->cu->easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
			 timeout_ms < OL_CONNECT_TIMEOUT_MS
				 ? timeout_ms
				 : (long)OL_CONNECT_TIMEOUT_MS);
	ol->cu->easy_setopt(h, CURLOPT_WRITEFUNCTION, keep_body);
	ol->cu->easy_setopt(h, CURLOPT_WRITEDATA, &body);
	ol->cu->easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	CURLcode rc = ol->cu->easy_perform(h);
	ol->cu->slist_free_all(hdr);
	*for_good = false;
	if (rc != CURLE_OK) {
		snprintf(msg, msgsz, "POST %s: %s", ol->endpoint,
			 ol->cu->easy_strerror(rc));
		return -1;
	}
	long code = 0;
	ol->cu->easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
	if (code >= 200 && code < 300)
		return 0;
	/* The event itself is wrong for this endpoint: sending it again
	 * gets the same answer. A bad key or URL (401, 403, 404) is the
	 * configuration's fault: fixed, everything waiting goes. */
	*for_good = code == 400 || code == 413 || code == 415 || code == 422;
	for (size_t i = 0; i < body.len; i++)
		if ((unsigned char)body.text[i] < 0x20)
			body.text[i] = ' ';
	snprintf(msg, msgsz, "POST %s: HTTP %ld%s%s", ol->endpoint, code,
		 body.len ? ": " : "", body.text);
	return -1;
}

/* One line appended, whole or not at all, and on disk before it counts
 * as sent. */
static int send_file(struct coord_ol *ol, const char *json, size_t len,
		     char *msg, size_t msgsz)
{
	int fd =
		open(ol->file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		snprintf(msg, msgsz, "%s: %s", ol->file, strerror(errno));
		return -1;
	}
	struct stat st;
	char *line = malloc(len + 1);
	int rc = -1;
	if (!line || fstat(fd, &st) != 0) {
		snprintf(msg, msgsz, "%s: %s", ol->file,
			 line ? strerror(errno) : "out of memory");
	} else {
		memcpy(line, json, len);
		line[len] = '\n';
		ssize_t n = write(fd, line, len + 1);
		if (n == (ssize_t)len + 1 && fsync(fd) == 0) {
			rc = 0;
		} else {
			snprintf(msg, msgsz, "%s: %s", ol->file,
				 n < 0 || n == (ssize_t)len + 1
					 ? strerror(errno)
					 : "short write");
			/* No half line for the reader to choke on. */
			if (n > 0 && ftruncate(fd, st.st_size) != 0)
				snprintf(msg, msgsz,
					 "%s: short write, and cannot cut it "
					 "back: %s",
					 ol->file, strerror(errno));
		}
	}
	free(line);
	close(fd);
	return rc;
}

int coord_ol_send(struct coord_ol *ol, const char *json, size_t len,
		  long timeout_ms, bool *for_good, char *msg, size_t msgsz)
{
	*for_good = false;
	return ol->endpoint ? send_http(ol, json, len, timeout_ms, for_good,
					msg, msgsz)
			    : send_file(ol, json, len, msg, msgsz);
}

/* ---- The thread ---- */

/* Wait ms, or less when stopped; the lock is held. */
static void wait_ms(struct coord_ol *ol, int64_t ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	pthread_cond_timedwait(&ol->cv, &ol->mu, &ts);
}

uint32_t coord_ol_backoff(struct coord_ol *ol, unsigned failures)
{
	uint64_t d = OL_BACKOFF_BASE_MS;
	for (unsigned i = 1; i < failures && d < OL_BACKOFF_CAP_MS; i++)
		d *= 2;
	if (d > OL_BACKOFF_CAP_MS)
		d = OL_BACKOFF_CAP_MS;
	ol->rng ^= ol->rng << 13;
	ol->rng ^= ol->rng >> 7;
	ol->rng ^= ol->rng << 17;
	return (uint32_t)(d / 2 + ol->rng % (d / 2 + 1));
}

static void log_line(struct coord_ol *ol, const char *what, const char *why)
{
	if (ol->log)
		fprintf(ol->log, "weft coordinator: openlineage: %s: %s\n",
			what, why);
}

static void *sender_main(void *arg)
{
	struct coord_ol *ol = arg;
	unsigned failures = 0;
	char msg[512], last[512] = "";
	for (;;) {
		pthread_mutex_lock(&ol->mu);
		bool stopping = ol->stop;
		int64_t left = ol->deadline_ms - weft_mono_ms();
		pthread_mutex_unlock(&ol->mu);
		if (stopping && left <= 0)
			break;
		int64_t seq = 0;
		char *json = NULL;
		size_t len = 0;
		int err = weft_ol_outbox_next(ol->store, ol->sink, &ol->opts,
					      &seq, &json, &len);
		int64_t wait = 0;
		if (err == WEFT_ENOTFOUND) {
			if (stopping)
				break;
			wait = OL_POLL_MS;
		} else if (err) {
			snprintf(msg, sizeof(msg), "%s",
				 weft_store_errmsg(ol->store));
			log_line(ol, "reading the outbox", msg);
			wait = coord_ol_backoff(ol, ++failures);
		} else {
			bool for_good = false;
			long timeout = stopping && left < OL_REQUEST_TIMEOUT_MS
					       ? (long)left
					       : OL_REQUEST_TIMEOUT_MS;
			int rc = coord_ol_send(ol, json, len, timeout,
					       &for_good, msg, sizeof(msg));
			free(json);
			if (rc == 0) {
				failures = 0;
				last[0] = '\0';
				err = weft_ol_outbox_sent(ol->store, ol->sink,
							  seq);
			} else {
				err = weft_ol_outbox_failed(ol->store, ol->sink,
							    seq, for_good, msg,
							    weft_real_ns());
				/* Said once per kind of failure, not per
				 * retry. */
				if (strcmp(msg, last) != 0)
					log_line(ol,
						 "cannot send (kept, "
						 "retried)",
						 msg);
				snprintf(last, sizeof(last), "%s", msg);
				if (!for_good)
					wait = coord_ol_backoff(ol, ++failures);
			}
			if (err)
				log_line(ol, "updating the outbox",
					 weft_store_errmsg(ol->store));
		}
		if (wait) {
			pthread_mutex_lock(&ol->mu);
			/* A retry that would outlast the drain is left to
			 * the next coordinator over this store. */
			if (ol->stop && wait >= ol->deadline_ms - weft_mono_ms())
				ol->deadline_ms = 0;
			else
				wait_ms(ol, wait);
			pthread_mutex_unlock(&ol->mu);
		}
	}
	return NULL;
}

void coord_ol_free(struct coord_ol *ol)
{
	if (!ol)
		return;
	if (ol->curl)
		ol->cu->easy_cleanup(ol->curl);
	weft_store_close(ol->store);
	if (ol->auth)
		sodium_memzero(ol->auth, strlen(ol->auth));
	free(ol->auth);
	free(ol->endpoint);
	free(ol->file);
	pthread_mutex_destroy(&ol->mu);
	pthread_cond_destroy(&ol->cv);
	free(ol);
}

/* The sink's name in the store: the endpoint's URL, or "file:" and the
 * path. NULL when out of memory. */
char *coord_ol_dest(const weft_coordinator_opts *o)
{
	char *dest = NULL;
	size_t n = o->ol_url ? strlen(o->ol_url) : 0;
	while (n > 0 && o->ol_url[n - 1] == '/')
		n--;
	if (o->ol_url ? asprintf(&dest, "%.*s/api/v1/lineage", (int)n,
				 o->ol_url) < 0
		      : asprintf(&dest, "file:%s", o->ol_file) < 0)
		return NULL;
	return dest;
}

int coord_ol_new(const weft_coordinator_opts *o, weft_store *s,
		 const char *store_path, FILE *log, struct coord_ol **out,
		 char *err, size_t errsz)
{
	if (o->ol_url && o->ol_file) {
		snprintf(err, errsz, "openlineage: a URL or a file, not both");
		return WEFT_EINVAL;
	}
	struct coord_ol *ol = calloc(1, sizeof(*ol));
	if (!ol)
		return WEFT_ENOMEM;
	pthread_mutex_init(&ol->mu, NULL);
	pthread_cond_init(&ol->cv, NULL);
	ol->log = log;
	ol->drain_ms =
		o->ol_drain_ms > 0 ? o->ol_drain_ms : OL_DEFAULT_DRAIN_MS;
	ol->rng = (uint64_t)weft_real_ns() | 1;
	snprintf(ol->ns, sizeof(ol->ns), "%s",
		 o->ol_namespace ? o->ol_namespace : WEFT_OL_DEFAULT_NAMESPACE);
	ol->opts.ns = ol->ns;
	char *dest = coord_ol_dest(o);
	int e = WEFT_ENOMEM;
	if (!dest)
		goto fail;
	if (o->ol_url) {
		ol->endpoint = strdup(dest);
		if (o->ol_api_key &&
		    asprintf(&ol->auth, "Authorization: Bearer %s",
			     o->ol_api_key) < 0)
			ol->auth = NULL;
		if (!(ol->cu = ol_curl(err, errsz))) {
			e = WEFT_EUNSUPPORTED;
			goto fail;
		}
		if (ol->endpoint)
			ol->curl = ol->cu->easy_init();
		if (!ol->curl || (o->ol_api_key && !ol->auth)) {
			snprintf(err, errsz,
				 "openlineage: cannot set up "
				 "libcurl");
			goto fail;
		}
	} else if (!(ol->file = strdup(o->ol_file))) {
		goto fail;
	}
	if (s && ((e = weft_store_open_sibling(s, &ol->store)) ||
		  (e = weft_ol_sink_add(ol->store, dest, weft_real_ns(),
					&ol->sink)))) {
		snprintf(err, errsz, "openlineage: store %s: %s", store_path,
			 ol->store ? weft_store_errmsg(ol->store)
				   : weft_strerror(e));
		goto fail;
	}
	free(dest);
	*out = ol;
	return WEFT_OK;
fail:
	free(dest);
	coord_ol_free(ol);
	return e ? e : WEFT_ENOMEM;
}

int coord_ol_run(struct coord_ol *ol, char *err, size_t errsz)
{
	if (pthread_create(&ol->thread, NULL, sender_main, ol) != 0) {
		snprintf(err, errsz, "openlineage: cannot start its thread");
		return WEFT_EIO;
	}
	return WEFT_OK;
}

void coord_ol_halt(struct coord_ol *ol, bool at_once)
{
	pthread_mutex_lock(&ol->mu);
	if (!ol->stop) {
		ol->stop = true;
		ol->deadline_ms = weft_mono_ms() + (at_once ? 0 : ol->drain_ms);
	}
	pthread_cond_signal(&ol->cv);
	pthread_mutex_unlock(&ol->mu);
	pthread_join(ol->thread, NULL);
	coord_ol_free(ol);
}

int coord_ol_start(weft_coordinator *c, const weft_coordinator_opts *o,
		   char *err, size_t errsz)
{
	if (!o->ol_url && !o->ol_file)
		return WEFT_OK;
	struct coord_ol *ol;
	int e = coord_ol_new(o, c->store, c->store_path, c->log, &ol, err,
			     errsz);
	if (!e && (e = coord_ol_run(ol, err, errsz)))
		coord_ol_free(ol);
	if (!e)
		c->ol = ol;
	return e;
}

void coord_ol_stop(weft_coordinator *c)
{
	if (c->ol)
		coord_ol_halt(c->ol, false);
	c->ol = NULL;
}
