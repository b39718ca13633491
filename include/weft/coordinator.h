/*
 * weft/coordinator.h - the coordinator (libweft_coordinator): an nng REP
 * server that creates and ends jobs, enrols writers, verifies signed
 * fragment envelopes and stores them in the fragment store, acknowledging
 * each only after its transaction committed (DESIGN.md "Delivery").
 *
 * Threads: nng's own, plus a pool of aio contexts (each decodes and
 * verifies on nng's worker threads) and ONE store writer thread that
 * commits batches. Requests are answered with a weft_reply (weft/wire.h).
 * One started in_process listens on nothing and starts no nng thread:
 * its requests come through weft_coordinator_handle (a local run's).
 *
 * nng must not be used before fork() in a process whose child uses nng
 * too: start an in-process coordinator only after forking any child that
 * ships fragments, or run one in a child with weft_coordinator_spawn.
 */
#ifndef WEFT_COORDINATOR_H
#define WEFT_COORDINATOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

#include <weft/wire.h>

/* Bound of a listen URL, with the port a "tcp://host:0" got. */
#define WEFT_COORD_MAX_URL_BYTES 1024
/* Default number of concurrent request contexts. */
#define WEFT_COORD_DEFAULT_CONTEXTS 256
/* Connections open at once at most; more are closed as they come. */
#define WEFT_COORD_DEFAULT_MAX_CONNECTIONS 1024
/* A connection that sent no complete request for this long is closed
 * (an idle one, or one whose request is still half-sent). Wrappers and
 * clients connect again when they need to. */
#define WEFT_COORD_DEFAULT_IDLE_MS (60 * 1000)

/* The submit key file a coordinator makes beside its store when none is
 * named (submit_key.c). */
#define WEFT_SUBMIT_KEY_FILE_NAME "coordinator.key"

typedef struct weft_coordinator_opts {
	const char *listen_url; /* tcp://, tls+tcp://, ipc://, inproc:// */
	/* Listen on nothing: listen_url only names the coordinator, and
	 * requests come through weft_coordinator_handle from this process
	 * (a local `weft run`'s). No nng socket, no nng thread. */
	bool in_process;
	const char *store_path; /* the SQLite fragment store (created) */
	/* Stop leaves the store's write-ahead log unsynced and not
	 * checkpointed, for weft_store_checkpoint_behind (a local run's). */
	bool keep_wal;
	/* Job creation needs a proof of the submit key: submit_key when
	 * given (an in-process coordinator's, never written down), else
	 * the key in submit_key_file (NULL: WEFT_SUBMIT_KEY_FILE_NAME
	 * beside the store), made (0600) when absent. */
	const uint8_t *submit_key;
	const char *submit_key_file;
	const char *tls_cert;   /* PEM files, for tls+tcp:// only */
	const char *tls_key;
	int contexts; /* 0: WEFT_COORD_DEFAULT_CONTEXTS */
	int max_connections; /* 0: WEFT_COORD_DEFAULT_MAX_CONNECTIONS */
	int idle_timeout_ms; /* 0: WEFT_COORD_DEFAULT_IDLE_MS */
	FILE *log;    /* one line per rejection; may be NULL */
	/* OpenLineage (docs/interop.md): send every event the store queues
	 * to ol_url (POST URL/api/v1/lineage; ol_api_key, when not NULL,
	 * as a bearer token) or append it to ol_file (one JSON object a
	 * line), from a thread of its own; neither: no events. */
	const char *ol_url, *ol_api_key, *ol_file;
	const char *ol_namespace; /* NULL: WEFT_OL_DEFAULT_NAMESPACE */
	int ol_drain_ms;          /* how long stop goes on sending (0: 2000) */
} weft_coordinator_opts;

typedef struct weft_coordinator weft_coordinator;

/* Open the store, start the writer thread, listen, and return: requests
 * are served in the background from then on. On error a message naming
 * what failed (the URL, the store path, the certificate) is in err. */
int weft_coordinator_start(const weft_coordinator_opts *o,
			   weft_coordinator **out, char *err, size_t errsz);
/* One request from this process, decoded, checked, stored and answered
 * as one that came over nng (the same handler, batch and reply bytes);
 * returns once answered. On success *reply is malloc'ed (free()); else
 * WEFT_ENOMEM. For an in_process coordinator, or any other. */
int weft_coordinator_handle(weft_coordinator *c, const uint8_t *req, size_t len,
			    uint8_t **reply, size_t *rlen);
/* The URL it listens on, with the port filled in for ":0". */
const char *weft_coordinator_url(const weft_coordinator *c);
/* The submit key file it uses ("" for a key given in memory). */
const char *weft_coordinator_submit_key_file(const weft_coordinator *c);
/* Stop accepting, let requests in flight finish, commit, close the store,
 * free. WEFT_OK, or the store's error from the last commit that wrote
 * (an earlier failure is forgotten once a later commit succeeded). */
int weft_coordinator_stop(weft_coordinator *c);
/* How many coordinators of this process stopped without waiting for their
 * socket's close, which had not ended within 5 s (Debian 12's nng 1.5 can
 * wait forever closing a connection whose peer keeps sending): what they
 * acknowledged is committed, their socket is left to the process's end. */
unsigned weft_coordinator_closes_left(void);

/* The default submit key file of a coordinator over store_path. */
void weft_submit_key_default_path(const char *store_path, char *out,
				  size_t outsz);
/* Read the submit key in path: a regular file of the caller's, that no
 * one else may read or write, holding 64 hex digits. With create, a file
 * that does not exist is made first (mode 0600, a fresh random key).
 * WEFT_ENOTFOUND when absent (and not created); another error with a
 * message naming the path and what is wrong in err. */
int weft_submit_key_load(const char *path, bool create,
			 uint8_t key[WEFT_SUBMIT_KEY_BYTES], char *err,
			 size_t errsz);

/* Read an OpenLineage API key: one token in a regular file of the
 * caller's that no one else may read or write (at most 4096 bytes;
 * trailing blanks dropped). On failure err names the file and what is
 * wrong with it. */
int weft_ol_api_key_load(const char *path, char *key, size_t keysz, char *err,
			 size_t errsz);

/* ---- OpenLineage while a local run's workload runs (ol_live.c) ---- */

typedef struct weft_ol_live weft_ol_live;
typedef struct weft_store weft_store; /* weft_store.h */

/* For `weft run`, just before its workload is launched, when o names an
 * OpenLineage destination: store job j and its task's start ts (signed
 * with j's token) through store (the run's own handle), and fork a
 * sender (no nng, no SQLite in it) that sends their STARTs, and what
 * else was waiting, while the workload runs. The run's coordinator later
 * creates the same job again (a duplicate) and sends the rest. *out
 * stays NULL when o names no destination. On error, a message in err;
 * nothing is sent early then, and nothing is lost. */
int weft_ol_live_start(const weft_coordinator_opts *o, weft_store *store,
		       const weft_job_info *j, const weft_task_start *ts,
		       weft_ol_live **out, char *err, size_t errsz);
/* The workload ended: stop the sender (after the request in flight) and
 * mark what it delivered sent. NULL does nothing. */
void weft_ol_live_stop(weft_ol_live *l);

/* `weft coordinator`: start, write the URL and a newline to ready_fd (when
 * >= 0) once listening, serve until SIGTERM or SIGINT, stop. Returns the
 * process exit status (0 after a clean stop). */
int weft_coordinator_serve(const weft_coordinator_opts *o, int ready_fd,
			   FILE *msgs);

/* Run `weft_exe coordinator --listen URL --store PATH [--tls-cert/key]
 * [--submit-key-file FILE]
 * [--quiet when o->log is NULL] --ready-fd N` in a child (its messages go
 * to the caller's stderr) and wait (at most timeout_ms) until it listens.
 * On success *pid is the child and url_out its URL. The child stays in the
 * caller's process group and gets SIGTERM when the caller dies
 * (PR_SET_PDEATHSIG). Stop it with kill(pid, SIGTERM) and waitpid:
 * it exits 0 once everything it acknowledged is committed. */
int weft_coordinator_spawn(const char *weft_exe, const weft_coordinator_opts *o,
			   int timeout_ms, pid_t *pid, char *url_out,
			   size_t urlsz, char *err, size_t errsz);

/* One request to the coordinator at url and its reply (malloc'ed, free())
 * within timeout_ms: a fresh REQ socket, so only for short-lived callers.
 * WEFT_EIO with a message in err when it cannot be reached or does not
 * answer in time. tls_ca: CA file for tls+tcp:// (NULL: not checked). */
int weft_coordinator_call(const char *url, const char *tls_ca,
			  const uint8_t *req, size_t len, int timeout_ms,
			  uint8_t **reply, size_t *rlen, char *err,
			  size_t errsz);

/* Ask the coordinator at url for its status (job NULL: every job). On
 * success *st is owned by the caller (weft_status_release). tls_ca may be
 * NULL. */
int weft_coordinator_query_status(const char *url, const char *tls_ca,
				  const char *job, int timeout_ms,
				  weft_status *st, char *err, size_t errsz);

/* Ask the coordinator at url for one export page of job (weft/wire.h
 * "Export"). On success *raw holds the reply (free() it after releasing
 * the page: the page's envelopes point into it) and either *is_page and
 * *page is decoded, or *ack is the coordinator's refusal (rejected with a
 * reason, or retry). WEFT_EIO (message in err) when it cannot be reached
 * or answers with something else. */
int weft_coordinator_export(const char *url, const char *tls_ca,
			    const char *job, uint64_t after, uint64_t wafter,
			    int timeout_ms, uint8_t **raw,
			    weft_export_page *page, weft_ack *ack,
			    bool *is_page, char *err, size_t errsz);

#endif /* WEFT_COORDINATOR_H */
