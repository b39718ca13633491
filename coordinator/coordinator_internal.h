/*
 * coordinator_internal.h - private to libweft_coordinator: the coordinator
 * handle, shared by the lifecycle (coordinator.c) and the request loop
 * (server.c).
 */
#ifndef WEFT_COORDINATOR_INTERNAL_H
#define WEFT_COORDINATOR_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <curl/curl.h>
#include <nng/nng.h>

#include <weft/coordinator.h>
#include <weft/store.h>

struct slot;
struct job_rejects;
struct coord_ol;

struct weft_coordinator {
	nng_socket sock;
	bool sock_open;
	nng_listener listener;
	bool listening;
	char url[WEFT_COORD_MAX_URL_BYTES + 16];
	char store_path[WEFT_MAX_PATH_BYTES + 1];
	FILE *log;
	uint8_t submit_key[WEFT_SUBMIT_KEY_BYTES];      /* JOB_CREATE proofs */
	char submit_key_path[WEFT_MAX_PATH_BYTES + 32]; /* "": in memory */

	weft_store *store;
	bool keep_wal; /* weft_coordinator_opts' */
	weft_store_writer *writer;
	pthread_t writer_thread, replier_thread;
	bool writer_running, replier_running;

	struct slot *slots;
	int nslots;

	/* Guards everything below. cv: the writer queue has work or quit;
	 * reply_cv: committed requests to answer, or the writer is done;
	 * idle: queued, admitted or in_flight went down. */
	pthread_mutex_t mu;
	pthread_cond_t cv, reply_cv, idle;
	pthread_cond_t answered;    /* a direct call's reply is ready */
	struct slot *head, *tail;   /* to the writer */
	struct slot *rhead, *rtail; /* to the reply thread */
	size_t rqueued;
	size_t queued;  /* requests queued, being stored or being answered */
	size_t wqueued; /* requests in the writer's queue (head..tail) */
	/* Requests taken before stopping that are still being decoded and
	 * checked: not queued yet, but stop waits for them too. */
	size_t admitted;
	bool gathering; /* the writer waits for more of admitted (server.c) */
	bool writer_done;
	size_t held_bytes; /* request bytes received and not yet answered */
	int in_flight;     /* requests received and not yet answered */
	bool stopping, quit;
	int last_commit_err; /* of the last commit that wrote; 0 once one
				succeeds again */
	uint64_t requests;
	uint64_t rejects[WEFT_REJECT_REASON_MAX];
	struct job_rejects *jrej;
	size_t njrej, jrej_cap;

	/* connections.c: open connections (pipes) and when each last
	 * sent a request; conn_mu guards them, conn_cv wakes the reaper. */
	pthread_mutex_t conn_mu;
	pthread_cond_t conn_cv;
	struct conn *conns;
	int max_conns, idle_ms;
	pthread_t reaper;
	bool reaper_running, conn_quit;
	uint64_t conns_refused, conns_idle_closed;

	struct coord_ol *ol; /* openlineage.c; NULL when not configured */
};

/* server.c */
int coord_slots_start(weft_coordinator *c, int n);
int coord_writer_start(weft_coordinator *c);
/* Refuse new requests (RETRY) and wait until the queue is committed. */
void coord_drain(weft_coordinator *c);
/* Stop every slot's operation (a receive, or a reply being sent), each
 * callback done: no context is used after this, before the socket
 * closes. */
void coord_slots_quiet(weft_coordinator *c);
void coord_slots_stop(weft_coordinator *c);
void coord_writer_stop(weft_coordinator *c);
/* Set *stop under mu and wake the thread waiting on cv for it; then join
 * that thread t if *running (false after). */
void coord_thread_stop(pthread_mutex_t *mu, pthread_cond_t *cv, bool *stop,
		       pthread_t *t, bool *running);

/* connections.c: cap connections at max_conns, close those idle for
 * idle_ms (0: the defaults); before the listener starts. */
int coord_conns_start(weft_coordinator *c, int max_conns, int idle_ms);
void coord_conns_stop(weft_coordinator *c);
/* A request arrived on p: it is not idle. */
void coord_conn_active(weft_coordinator *c, nng_pipe p);

/* export.c: EXPORT requests, answered on the context's thread. */
bool coord_export_request(const uint8_t *buf, size_t len);
/* An encoded page into out (WEFT_OK), else the verdict to answer with. */
int coord_export(weft_coordinator *c, const uint8_t *buf, size_t len,
		 weft_buf *out, weft_verdict *v);

/* openlineage.c: register the sink and start the sender when o names a
 * destination (err says why not); stop it after sending what is ready
 * for at most its drain time. */
int coord_ol_start(weft_coordinator *c, const weft_coordinator_opts *o,
		   char *err, size_t errsz);
void coord_ol_stop(weft_coordinator *c);
/* The pieces of a sender, for the coordinator's thread and for a local
 * run's sender process (ol_live.c). coord_ol_new: a sender for o's
 * destination with a store handle of its own beside s (its sink
 * registered), not yet sending; coord_ol_run starts its thread;
 * coord_ol_halt stops it (after the drain time, or at_once: after the
 * event being sent) and frees it; coord_ol_free frees one never run.
 * coord_ol_dest: the sink's name in the store (malloc'ed; NULL when out
 * of memory). */
int coord_ol_new(const weft_coordinator_opts *o, weft_store *s,
		 const char *store_path, FILE *log, struct coord_ol **out,
		 char *err, size_t errsz);
int coord_ol_run(struct coord_ol *ol, char *err, size_t errsz);
void coord_ol_halt(struct coord_ol *ol, bool at_once);
void coord_ol_free(struct coord_ol *ol);
char *coord_ol_dest(const weft_coordinator_opts *o);
/* Without a store (s NULL), a sender sends only what it is handed:
 * coord_ol_send, one event to the destination (0 sent; else why in msg,
 * and *for_good when retrying cannot help), and coord_ol_backoff, the
 * wait after that many failures in a row. */
int coord_ol_send(struct coord_ol *ol, const char *json, size_t len,
		  long timeout_ms, bool *for_good, char *msg, size_t msgsz);
uint32_t coord_ol_backoff(struct coord_ol *ol, unsigned failures);

/* ol_curl.c: the libcurl functions the sender calls, from libcurl loaded
 * at the first call (weft does not link it); NULL with why in err when it
 * cannot be loaded. */
struct ol_curl_api {
	CURLcode (*global_init)(long flags);
	CURL *(*easy_init)(void);
	void (*easy_cleanup)(CURL *h);
	void (*easy_reset)(CURL *h);
	CURLcode (*easy_setopt)(CURL *h, CURLoption opt, ...);
	CURLcode (*easy_perform)(CURL *h);
	CURLcode (*easy_getinfo)(CURL *h, CURLINFO info, ...);
	const char *(*easy_strerror)(CURLcode rc);
	struct curl_slist *(*slist_append)(struct curl_slist *l, const char *s);
	void (*slist_free_all)(struct curl_slist *l);
};
const struct ol_curl_api *ol_curl(char *err, size_t errsz);

#endif /* WEFT_COORDINATOR_INTERNAL_H */
