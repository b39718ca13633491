/*
 * weft/wrap.h - the worker side of distribution (libweft_wrap): the env
 * contract a wrapper reads, the task identity it takes from the engine
 * (Slurm, Ray) or the user, the spool that keeps every signed fragment
 * durable until the coordinator acknowledged it, retries with backoff, the
 * nng REQ client, and splitting a run into fragment-sized parts.
 *
 * And the run pipeline every entry point shares (weft run, weft wrap,
 * weft submit --mode in-cluster, the Slurm task collector): trace a
 * command through a backend (trace.c), hash, record, spool and ship it
 * (pipeline.c), the job record and its requests (job.c).
 *
 * Nothing here opens an nng socket except weft_wrap_client_open (and the
 * streaming writer's shipping thread): callers that fork a workload open
 * clients only after the fork (nng's threads must not be copied into a
 * child that uses nng too).
 */
#ifndef WEFT_WRAP_H
#define WEFT_WRAP_H

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <weft/backends.h>
#include <weft/base.h>
#include <weft/schema.h>
#include <weft/wire.h>

/* ---- Named limits ---- */

/* An nng URL in WEFT_COORDINATOR. */
#define WEFT_WRAP_MAX_URL_BYTES 1024
/* Tokens, job ids and task identities: the limits of weft/wire.h
 * (WEFT_MAX_TOKEN_BYTES, WEFT_JOB_ID_BYTES, WEFT_MAX_TASK_BYTES). */
/* One spool file (its payload is one signed envelope or a writer state). */
#define WEFT_WRAP_MAX_SPOOL_BYTES (WEFT_MAX_MESSAGE_BYTES)
/* Default and ceiling of --ship-timeout, in milliseconds. */
#define WEFT_WRAP_SHIP_TIMEOUT_DEFAULT_MS 3000
#define WEFT_WRAP_SHIP_TIMEOUT_MAX_MS (3600 * 1000)

/* ---- The env contract (DESIGN.md "Env contract") ---- */

typedef struct weft_wrap_env {
	char coordinator[WEFT_WRAP_MAX_URL_BYTES + 1]; /* "" when unset */
	char job[WEFT_JOB_ID_BYTES + 1];               /* lowercase UUID */
	char token[WEFT_MAX_TOKEN_BYTES + 1];
	char tracer[WEFT_MAX_NAME_BYTES];     /* "" when unset */
	char spool[WEFT_MAX_PATH_BYTES + 1];  /* always set */
	bool spool_from_env;                  /* else the default */
	char parent[WEFT_MAX_TASK_BYTES + 1]; /* "" when unset */
	char tls_ca[WEFT_MAX_PATH_BYTES + 1]; /* WEFT_TLS_CA or "" */
} weft_wrap_env;

/* A getenv-like lookup, so tests can pass their own environment. */
typedef const char *(*weft_wrap_getenv_fn)(const char *name);
/* The process environment (getenv) as a weft_wrap_getenv_fn. */
const char *weft_wrap_getenv(const char *name);

/* Read the contract. With require_job, WEFT_COORDINATOR, WEFT_JOB and
 * WEFT_JOB_TOKEN must all be set (what `weft wrap` needs); otherwise any
 * subset. Every variable that is set is checked strictly. WEFT_OK, or
 * WEFT_EINVAL with a message naming the variable, the value and what was
 * expected in err. The spool defaults to $XDG_CACHE_HOME/weft/spool,
 * $HOME/.cache/weft/spool, else /tmp/weft-spool-UID (only when
 * weft_wrap_private_dir accepts it). */
int weft_wrap_env_read(weft_wrap_env *e, weft_wrap_getenv_fn get,
		       bool require_job, char *err, size_t errsz);

/* The node's hash cache for wrappers (weft_hash_cache_open): WEFT_HASH_CACHE
 * when set (an absolute path; "off" disables), else
 * $XDG_CACHE_HOME/weft/hashes.db, $HOME/.cache/weft/hashes.db, else
 * /tmp/weft-hashes-UID/hashes.db (weft_wrap_private_dir checks the
 * directory). Returns out, or NULL for no cache ("off"; a path that does
 * not fit; a fallback directory that is not safe: then why says so). A
 * relative WEFT_HASH_CACHE is returned as it is, for the open to refuse
 * with a warning. */
const char *weft_wrap_hash_cache_path(weft_wrap_getenv_fn get, char *out,
				      size_t outsz, char *why, size_t whysz);
/* weft_wrap_hash_cache_path of the process environment into buf (NULL:
 * no cache); why there is none, when that is news, goes into r's
 * warnings ("no hash cache: ..."), or to msgs when r is NULL. */
const char *weft_wrap_hash_cache(char buf[WEFT_MAX_PATH_BYTES], weft_report *r,
				 FILE *msgs);
/* A directory in a place every user may write to (/tmp), for this user
 * alone: created 0700 when missing; used only when it is a directory,
 * not a symbolic link, owned by this user and not writable by others.
 * 0, or WEFT_EINVAL with err naming it and what is wrong. */
int weft_wrap_private_dir(const char *dir, char *err, size_t errsz);

/* Checkers shared by the contract and the command line (0 or -1). */
int weft_wrap_check_url(const char *url);
int weft_wrap_check_task(const char *task);
/* "3", "0.5", "120": seconds from 0 to WEFT_WRAP_SHIP_TIMEOUT_MAX_MS / 1000,
 * into milliseconds (-1 for anything else). */
int weft_wrap_parse_seconds(const char *text, int *ms);

/* ---- Task identity ---- */

typedef struct weft_wrap_identity {
	char task[WEFT_MAX_TASK_BYTES + 1];         /* "job.step.task@node" */
	char node[WEFT_MAX_NAME_BYTES];             /* the node's name */
	const char *source;                         /* "slurm", "ray", "--task",
						       "host" (static) */
	weft_engine_id engine[WEFT_MAX_ENGINE_IDS]; /* the engine's own ids
						       ("slurm_job": "123") */
	uint32_t nengine;
} weft_wrap_identity;

/* The identity of this task: --task when given (flag_task not NULL), else
 * Slurm's SLURM_JOB_ID/SLURM_STEP_ID/SLURM_PROCID and SLURMD_NODENAME
 * (SLURM_NODEID names the node when the name is missing), else Ray's
 * RAY_JOB_ID with RAY_WORKER_ID or RAY_TASK_ID and RAY_NODE_ID, else
 * "pidPID@HOST". hostname names the node when the engine gives none.
 * WEFT_EINVAL with a message in err for a malformed variable. */
int weft_wrap_identity_get(weft_wrap_identity *id, const char *flag_task,
			   weft_wrap_getenv_fn get, const char *hostname,
			   char *err, size_t errsz);

/* ---- Backoff: exponential with jitter ---- */

typedef struct weft_wrap_backoff {
	uint32_t base_ms, cap_ms;
	uint32_t attempt;
	uint64_t rng; /* xorshift state, never 0 */
} weft_wrap_backoff;

/* base_ms doubles per attempt up to cap_ms; seed 0 takes one from the
 * clock and pid. */
void weft_wrap_backoff_init(weft_wrap_backoff *b, uint32_t base_ms,
			    uint32_t cap_ms, uint64_t seed);
/* The next wait: uniform in [d/2, d] where d = min(cap, base * 2^attempt)
 * ("equal jitter": never zero, so retries do not spin, and spread so that
 * many writers do not retry in step). */
uint32_t weft_wrap_backoff_next(weft_wrap_backoff *b);
void weft_wrap_backoff_reset(weft_wrap_backoff *b);

/* ---- The spool ----
 *
 * SPOOL/w-WRITER/ is one writer's: its state (coordinator, job, writer id,
 * the enrolment request) and one file per signed fragment envelope,
 * f-SEQ (20 digits: name order is seq order). Each file is written to a
 * temporary name, fsynced, renamed, and the directory fsynced; a file is
 * deleted only after the coordinator acknowledged it. A writer's directory
 * is locked (flock) by whoever writes or delivers it, so a wrapper and a
 * `weft flush` never deliver the same writer at once; a lock left by a
 * dead process goes with it. Files that do not read back (truncated,
 * corrupt) are moved to SPOOL/corrupt/, rejected fragments to
 * SPOOL/rejected/ with the reason beside them.
 *
 * Every spool file is a small container: "WEFTSPL" 0x01, a kind byte, the
 * payload length (u32 big-endian), the first 16 bytes of the payload's
 * BLAKE2b, then the payload.
 */

enum weft_spool_kind {
	WEFT_SPOOL_FRAGMENT = 1,
	WEFT_SPOOL_STATE = 2,
};

#define WEFT_SPOOL_MAGIC "WEFTSPL\x01"
#define WEFT_SPOOL_HEADER_BYTES (8 + 1 + 4 + 16)

/* Wrap payload in the container. */
int weft_spool_encode(int kind, const uint8_t *payload, size_t len,
		      weft_buf *out);
/* Check a whole spool file: magic, kind, length, checksum. On success
 * *payload points into buf and *len is its length. WEFT_ETRUNC, WEFT_EINVAL
 * (bad magic, kind or checksum), WEFT_ETOOBIG or WEFT_ETRAILING. */
int weft_spool_decode(const uint8_t *buf, size_t buflen, int want_kind,
		      const uint8_t **payload, size_t *len);

/* What a writer's state file holds. */
typedef struct weft_spool_state {
	char coordinator[WEFT_WRAP_MAX_URL_BYTES + 1];
	char job[WEFT_JOB_ID_BYTES + 1];
	char writer[2 * 32 + 1]; /* the writer's public key, hex */
	uint8_t *enrol;          /* the enrolment request, as sent (owned) */
	size_t enrol_len;
} weft_spool_state;

int weft_spool_state_encode(const weft_spool_state *s, weft_buf *out);
/* Strict: every key once, known keys only, values checked. *s owns enrol
 * after success (weft_spool_state_release). */
int weft_spool_state_decode(const uint8_t *buf, size_t len,
			    weft_spool_state *s);
void weft_spool_state_release(weft_spool_state *s);

typedef struct weft_spool_writer weft_spool_writer;

/* Create SPOOL/w-WRITER (and SPOOL) holding state, locked by the caller
 * until weft_spool_writer_close. */
int weft_spool_writer_create(const char *spool, const weft_spool_state *st,
			     weft_spool_writer **out);
/* Lock an existing writer directory (name "w-..." under spool). WEFT_OK;
 * WEFT_ENOTFOUND when it is gone or someone else holds it (busy set then);
 * WEFT_EINVAL when its state does not read back (it was moved aside). */
int weft_spool_writer_open(const char *spool, const char *name,
			   weft_spool_writer **out, bool *busy);
const weft_spool_state *weft_spool_writer_state(const weft_spool_writer *w);
const char *weft_spool_writer_dir(const weft_spool_writer *w);
/* Durably store one fragment envelope under seq. */
int weft_spool_put(weft_spool_writer *w, uint64_t seq, const uint8_t *env,
		   size_t len);
/* The seqs spooled, ascending (malloc'ed; free()). */
int weft_spool_list(weft_spool_writer *w, uint64_t **seqs, size_t *n);
/* Read one back into out (the envelope bytes). WEFT_EINVAL after moving a
 * corrupt file aside (a message in err); WEFT_ENOTFOUND when it is gone. */
int weft_spool_get(weft_spool_writer *w, uint64_t seq, weft_buf *out, char *err,
		   size_t errsz);
/* Acknowledged: delete it (and fsync the directory). */
int weft_spool_delete(weft_spool_writer *w, uint64_t seq);
/* Rejected: move it to SPOOL/rejected/ with reason in a .reason file. */
int weft_spool_reject(weft_spool_writer *w, uint64_t seq, const char *reason);
/* Unlock; with remove_if_empty, remove the directory when no fragment is
 * left. */
void weft_spool_writer_close(weft_spool_writer *w, bool remove_if_empty);

/* Writer directory names under spool, oldest first (by state mtime);
 * free with weft_spool_names_free. A missing spool is an empty one. */
int weft_spool_writers(const char *spool, char ***names, size_t *n);
void weft_spool_names_free(char **names, size_t n);

/* ---- The client: an nng REQ socket, or a coordinator in this process ---- */

typedef struct weft_wrap_client weft_wrap_client;

/* A REQ socket dialing url in the background (a coordinator that is down
 * is not an error here; calls then time out). tls_ca: the CA file for
 * tls+tcp:// (may be NULL or ""). On error a message is in err. */
int weft_wrap_client_open(const char *url, const char *tls_ca,
			  weft_wrap_client **out, char *err, size_t errsz);
/* One request and its reply within timeout_ms. On success *reply is
 * malloc'ed (free()). WEFT_EIO (a message in err) on timeout or any
 * transport error. */
int weft_wrap_client_call(weft_wrap_client *c, const uint8_t *req, size_t len,
			  int timeout_ms, uint8_t **reply, size_t *rlen,
			  char *err, size_t errsz);
void weft_wrap_client_close(weft_wrap_client *c);
/* A coordinator in this process (a local run's): clients of url call
 * fn(arg, ...) instead of opening an nng socket (which would start nng's
 * threads for one caller). fn answers like weft_wrap_client_call, a
 * malloc'ed reply on WEFT_OK. One at a time: WEFT_EBUSY when another url
 * is set. Clear it only once every client of it is closed. */
typedef int (*weft_wrap_local_fn)(void *arg, const uint8_t *req, size_t len,
				  uint8_t **reply, size_t *rlen);
int weft_wrap_local_endpoint_set(const char *url, weft_wrap_local_fn fn,
				 void *arg);
void weft_wrap_local_endpoint_clear(void);
/* Stop nng's threads (nng_fini) after every client is closed, so that a
 * fork that follows copies none; nng starts again on next use. */
void weft_wrap_quiesce(void);

/* ---- Delivery: the spool to the coordinator ----
 *
 * A shipper sends what writers hold: the enrolment request first (again
 * after a restart: enrolment is idempotent), then each fragment in seq
 * order, one request at a time; a fragment is deleted once acknowledged
 * (stored or duplicate), moved aside when rejected (the reason printed),
 * and retried with backoff on any transport failure until the deadline.
 * What is left at the deadline stays in the spool.
 */

typedef struct weft_wrap_ship_stats {
	size_t stored, duplicate, rejected, corrupt; /* fragments */
	size_t writers_done, writers_busy, writers_left;
	size_t left;         /* fragments still spooled */
	int attempts_failed; /* transport failures (each retried) */
} weft_wrap_ship_stats;

typedef struct weft_wrap_shipper weft_wrap_shipper;

/* Everything must be done within timeout_ms from now. msgs (may be NULL)
 * receives one "weft: ..." line per problem. */
int weft_wrap_shipper_new(const char *tls_ca, int timeout_ms, FILE *msgs,
			  weft_wrap_shipper **out);
/* Deliver one writer the caller holds. WEFT_OK when nothing is left of
 * it, WEFT_EIO when the deadline came first. */
int weft_wrap_ship_writer(weft_wrap_shipper *s, weft_spool_writer *w);
/* Deliver every writer of the spool that nobody else holds, oldest
 * first. WEFT_OK when all delivered, WEFT_EIO when some are left. A
 * writer a local `weft run` spooled for the coordinator in its own
 * process (inproc://) goes to weft_wrap_shipper_set_local's coordinator,
 * and without one is left, said on msgs. */
int weft_wrap_ship_spool(weft_wrap_shipper *s, const char *spool);
/* This shipper's process is a local `weft run` whose coordinator, at
 * url, stores into the project of the spool it delivers: writers that
 * earlier local runs of the project left in it go there, and
 * weft_wrap_ship_spool delivers no other writer. */
void weft_wrap_shipper_set_local(weft_wrap_shipper *s, const char *url);
/* weft_wrap_shipper_set_local(s, url), then weft_wrap_ship_spool(s,
 * spool), saying on stderr how many fragments earlier local runs had left
 * there that are now stored. */
int weft_wrap_ship_left(weft_wrap_shipper *s, const char *spool,
			const char *url);
const weft_wrap_ship_stats *weft_wrap_shipper_stats(const weft_wrap_shipper *s);
/* Each fragment settled (stored, already there, refused) reports how many
 * are settled and the bytes sent so far to fn, of expected (0: not
 * known). */
void weft_wrap_shipper_set_progress(weft_wrap_shipper *s, weft_progress_fn fn,
				    void *arg, uint64_t expected);
void weft_wrap_shipper_free(weft_wrap_shipper *s);

/* ---- Recording a traced run: sign and spool ---- */

typedef struct weft_wrap_run {
	const weft_wrap_env *env; /* coordinator, job, token, parent,
				     spool */
	const weft_wrap_identity *id;
	const char *name;      /* the task for people: the command */
	const char *preflight; /* the backend's preflight summary */
	size_t part_bytes;     /* records per part at most; 0: the
				  largest the wire allows */
} weft_wrap_run;

/* The default part budget: what a fragment payload may hold minus its
 * header. */
#define WEFT_WRAP_PART_BYTES_DEFAULT                                           \
	(WEFT_MAX_PAYLOAD_BYTES - WEFT_FRAGMENT_OVERHEAD_BYTES)
#define WEFT_WRAP_PART_BYTES_MIN 1024

/* Make a writer (a fresh Ed25519 key pair, its enrolment request), cut r
 * into parts, sign each as a fragment (seq 1, 2, ...), and spool them all
 * durably. On success *out is the writer, still locked (ship it, then
 * weft_spool_writer_close) and *nfragments the number spooled. The secret
 * key never leaves this call. On error a message is in err and nothing is
 * left in the spool. */
int weft_wrap_record(const weft_wrap_run *run, const weft_report *r,
		     weft_spool_writer **out, size_t *nfragments, char *err,
		     size_t errsz);

/* ---- Streaming: one writer for many records, shipped as they come ----
 *
 * For a wrapper that records while its workload runs (the Ray worker
 * wrapper: one record per Ray task as it ends). The writer is made on the
 * first record: a key pair, its enrolment request and SPOOL/w-WRITER,
 * locked until the end. Each record is cut into parts, each sealed as a
 * fragment with the writer's next seq (1, 2, ... across records: the
 * coordinator keeps one run per record by its run id) and spooled durably
 * before anything is sent. A shipping thread of the stream's own enrols
 * the writer once, over one connection, then sends the fragments in seq
 * order as they are spooled, one request at a time, through the same
 * delivery as a shipper's (acknowledged: deleted, in batches; rejected or
 * corrupt: moved aside and said on msgs; transport failures: backoff),
 * for as long as the workload runs. After weft_wrap_stream_deadline it
 * has until then for the rest; what is left stays in the spool for
 * 'weft flush' or the next wrapper on the node.
 *
 * The shipping thread uses nng: start it only after the workload's fork.
 */

typedef struct weft_wrap_stream weft_wrap_stream;

typedef struct weft_wrap_stream_stats {
	size_t records;                              /* recorded */
	size_t fragments;                            /* spooled */
	size_t stored, duplicate, rejected, corrupt; /* verdicts */
	size_t left; /* not acknowledged: they stay in the spool */
	char writer_dir[WEFT_MAX_PATH_BYTES + 96];
	char last_err[256]; /* the last transport error, or "" */
} weft_wrap_stream_stats;

/* Nothing is opened yet. msgs (may be NULL) receives one "weft: ..." line
 * per problem. NULL when out of memory. */
weft_wrap_stream *weft_wrap_stream_new(const weft_wrap_env *env, FILE *msgs);
/* Start the shipping thread (after the workload's fork). 0 or -1. */
int weft_wrap_stream_start(weft_wrap_stream *s);
/* Cut each of nrec records (runs[i] for reports[i]) into fragments of
 * the stream's writer (seqs following the last), seal and spool them
 * durably, side by side, then let the shipping thread have them. All of
 * them or none: on error a message is in err and nothing of these
 * records is spooled (a caller may try them one by one). One recording
 * thread at a time. */
int weft_wrap_stream_record(weft_wrap_stream *s, const weft_wrap_run *runs,
			    const weft_report *const *reports, size_t nrec,
			    char *err, size_t errsz);
/* Whether recording works (the writer was made, or not yet tried). */
bool weft_wrap_stream_ok(const weft_wrap_stream *s);
/* The workload exited: from now, shipping has timeout_ms for what is
 * spooled (a second call changes nothing). */
void weft_wrap_stream_deadline(weft_wrap_stream *s, int timeout_ms);
/* Wait until every record is acknowledged or the deadline passed, stop
 * the thread, unlock the writer (kept in the spool when something is
 * left). */
void weft_wrap_stream_finish(weft_wrap_stream *s, weft_wrap_stream_stats *st);
/* Stop at once (if running) and free. NULL is fine. */
void weft_wrap_stream_free(weft_wrap_stream *s);

/* ---- Threads ---- */

/* A thread of weft's own, with SIGTERM, SIGHUP, SIGINT and SIGQUIT
 * blocked: they are for the main thread, which passes them on to the
 * workload. 0 or -1. */
int weft_wrap_thread_start(pthread_t *t, void *(*fn)(void *), void *arg);

/* ---- Announcing a task as it starts ---- */

/* How long the announcement's sender tries to reach the coordinator. */
#define WEFT_WRAP_ANNOUNCE_TIMEOUT_MS 10000

/* Tell the coordinator of env that the task id (running argv, traced by
 * backend, as run run_id) starts now, so that its OpenLineage START goes
 * out while it runs (TASK_START). Call it just before the workload is
 * launched: it forks a sender that outlives this call (never this
 * process's child, nothing to wait for) and opens no nng socket in this
 * process. Best effort: when it cannot be sent, the task's fragments
 * carry its start. WEFT_EINVAL for fields out of range (a bad token);
 * WEFT_EIO when the sender could not be forked. */
int weft_wrap_announce(const weft_wrap_env *env, const weft_wrap_identity *id,
		       char *const *argv, const char *backend,
		       const char *run_id);
/* The announcement itself, signed with token: task id of job (launched
 * by task parent, or "") runs argv now, as run run_id. What
 * weft_wrap_announce sends, and what `weft run` stores before its
 * workload starts. */
int weft_wrap_task_start(const char *job, const char *token,
			 const char *parent, const weft_wrap_identity *id,
			 char *const *argv, const char *backend,
			 const char *run_id, weft_task_start *ts);

/* ---- Splitting a run into fragment parts ---- */

typedef struct weft_wrap_part {
	size_t proc_begin, proc_end; /* report->processes[begin..end) */
	size_t file_begin, file_end; /* report->files[begin..end) */
	bool warnings;               /* this part carries the warnings */
} weft_wrap_part;

/* Cut r into parts whose records encode to at most budget bytes each
 * (processes first, then files, in order; the warnings in part 0, counted
 * against its budget); a record larger than budget gets a part of its
 * own. Always at least one part. WEFT_ETOOBIG when one record (or the
 * warnings) exceed what a fragment can carry at all. *parts is malloc'ed
 * (free()). */
int weft_wrap_split(const weft_report *r, size_t budget, weft_wrap_part **parts,
		    size_t *nparts);

/* A shallow view of r holding part p's slices only (the warnings only in
 * the part that carries them), to encode as that part's fragment. */
void weft_wrap_part_view(const weft_report *r, const weft_wrap_part *p,
			 weft_report *view);

/* The coordinator's answer to one request: WEFT_OK with *status
 * WEFT_ACK_STORED, WEFT_ACK_DUPLICATE or WEFT_ACK_REJECTED (then the
 * reason, "bad_signature: ...", in reason); WEFT_EIO when it asked to
 * retry later; another error when the reply is not an acknowledgement. */
int weft_wrap_read_ack(const uint8_t *reply, size_t len, int *status,
		       char *reason, size_t reasonsz);


/* ---- The run pipeline (trace.c, pipeline.c, job.c) ----
 *
 * These say what went wrong on stderr themselves ("weft: ..."), in the
 * words the user acts on, and return the exit status weft leaves with. */

/* Exit statuses of weft itself (the workload's own status passes through
 * unchanged). */
#define WEFT_EXIT_USAGE 2      /* bad arguments */
#define WEFT_EXIT_PREFLIGHT 3  /* the tracer cannot work: not launched */
#define WEFT_EXIT_INTERNAL 125 /* weft failed before launching the workload */
#define WEFT_EXIT_NOEXEC 126   /* command found but not executable */
#define WEFT_EXIT_NOTFOUND 127 /* command not found */

/* The tracer mode that preflights the backends in auto order. */
#define WEFT_WRAP_MODE_AUTO "auto"
/* record.env_values: names whose values are recorded in clear. */
#define WEFT_WRAP_MAX_ENV_VALUES 64
/* Creating and ending a job: the coordinator must be there by then. */
#define WEFT_WRAP_CALL_TIMEOUT_MS 20000

/* How to trace: the tracer settings of the config. The strings are not
 * copied: they must outlive the trace. */
typedef struct weft_wrap_tracer_opts {
	const char *mode;      /* WEFT_WRAP_MODE_AUTO or a registered backend */
	const char *mode_from; /* where mode was set, for the tracer log */
	bool fallback_enabled;
	int preflight_timeout_ms;
	const char *const *env_values; /* record.env_values */
	size_t nenv_values;            /* at most WEFT_WRAP_MAX_ENV_VALUES */
} weft_wrap_tracer_opts;

typedef struct weft_wrap_trace {
	char **cmd; /* argv as the user typed it */
	weft_wrap_tracer_opts opts;
	const char *env_values[WEFT_WRAP_MAX_ENV_VALUES];
	int verbose;
	char exe[WEFT_MAX_PATH_BYTES + 1]; /* cmd[0] resolved */
	const weft_backend *backend;       /* selected and preflighted */
	int status;                        /* the workload's exit status */
	/* Optional: every event before it is fed (weft_launch.observe). */
	void (*observe)(void *arg, weft_classifier *c, const weft_event *ev);
	void *observe_arg;
	/* Optional: offered the run's inputs as they are first opened and
	 * its outputs as they are closed, to hash them while it runs
	 * (weft_prehash_start, <weft/store.h>). */
	struct weft_prehash *prehash;
	int cpu; /* the one prehash keeps off, where ptrace pins itself;
		    -1: none */
} weft_wrap_trace;

/* Find the executable CMD names the way a shell does (a name with a slash
 * as is, else PATH). 0 with the path in out, or WEFT_EXIT_NOTFOUND /
 * WEFT_EXIT_NOEXEC after saying why. */
int weft_wrap_resolve_command(const char *cmd, char *out, size_t outsz);
/* Before launch: resolve cmd[0], pick the backend of o and preflight it
 * (auto: the first that passes). 0, or the exit status to leave with
 * (127, 126, WEFT_EXIT_PREFLIGHT) after explaining. Nothing is started. */
int weft_wrap_trace_prepare(weft_wrap_trace *t, char **cmd,
			    const weft_wrap_tracer_opts *o, int verbose);
/* Launch and trace to the end through the manager (fallback included),
 * SIGINT/SIGQUIT ignored in weft, SIGTERM/SIGHUP passed to the workload;
 * fill report (initialized by the caller) with backend, node, times,
 * exit code, processes and files. Paths under ignore_dir (may be NULL)
 * are never records. 0 when the workload ran (t->status is its status),
 * else the exit status to leave with after explaining: a shell's 127 or
 * 126 when execve refused the program (a missing interpreter), or
 * WEFT_EXIT_INTERNAL when it could not be started. */
int weft_wrap_trace_run(weft_wrap_trace *t, const char *ignore_dir,
			weft_report *report);
/* After prepare: t->prehash for the run, with the hash cache at cache_path
 * (weft_prehash_start), whatever the backend; NULL when none. Its thread
 * keeps off t->cpu: where the run's tracer will pin itself
 * (weft_backend.pin_cpu), else the CPU this thread is on. The caller
 * stops and frees it. */
void weft_wrap_prehash_start(weft_wrap_trace *t, const char *cache_path);
/* -v/-vv: the tracer log WEFT_DIR/tracer.log (appended) at that level;
 * NULL (after a message) when it cannot be written. */
FILE *weft_wrap_log_open(const char *weft_dir, int level);
void weft_wrap_log_close(FILE *log);

/* Where a traced run goes. */
typedef struct weft_wrap_ship_opts {
	const weft_wrap_env *env;     /* coordinator, job, spool... */
	const weft_wrap_identity *id; /* the task */
	int ship_timeout_ms;
	size_t part_bytes; /* 0: the wire's limit */
	bool others;       /* then also deliver what other writers left */
	/* env->coordinator is this process's, over the store of the
	 * project whose spool is env->spool (a local `weft run`): then also
	 * deliver what earlier local runs of the project left there. */
	bool local;
	int verbose;
	const char *name; /* the task for people; NULL: from the identity
			     (engine, --task) or the command */
	weft_progress_fn progress; /* fragments of this run delivered (may
				      be NULL) */
	void *progress_arg;
} weft_wrap_ship_opts;

/* After the tracer: sign the hashed run r as fragments, spool them and
 * ship them within s->ship_timeout_ms. 0 when all were acknowledged, 1
 * when some stay spooled (said on stderr). */
int weft_wrap_ship_report(const weft_wrap_ship_opts *s, const weft_report *r);
/* weft_wrap_ship_report in its two halves. Record: sign r as fragments
 * and spool them durably; 0 with *w the writer (still locked) and *nfrag
 * the fragments, or 1 after saying why. Ship: deliver w's fragments (then
 * close w) as weft_wrap_ship_report does; 0 or 1 as it returns. */
int weft_wrap_record_task(const weft_wrap_ship_opts *s, const weft_report *r,
			  weft_spool_writer **w, size_t *nfrag);
int weft_wrap_ship_task(const weft_wrap_ship_opts *s, weft_spool_writer *w,
			size_t nfrag);
/* The command line of r's root for people, cut to outsz: the name of a
 * task nobody named. */
void weft_wrap_task_name(char *out, size_t outsz, const weft_report *r);
/* Hash r's files through the node's hash cache (WEFT_HASH_CACHE; opened
 * into *cache at the first call, kept for later ones: weft_store_close it
 * at the end) and pre (may be NULL: weft_wrap_prehash_start's). A
 * failure is a warning in r; with verbose, one line on stderr says how
 * many files were read and how many came from the cache. progress (may
 * be NULL): files hashed so far (weft_store_set_progress). */
struct weft_store;
void weft_wrap_hash_files(struct weft_store **cache, const char *task,
			  const struct weft_prehash *pre, weft_report *r,
			  int verbose, weft_progress_fn progress,
			  void *progress_arg);

/* A new job record for cmd: fresh id and token, the command joined, user,
 * host, cwd, git commit of cwd's repository, now. j->command is malloc'ed
 * (free it). */
void weft_wrap_job_info(weft_job_info *j, char **cmd);
/* The same with j->user left empty, for weft_wrap_job_user later: the
 * user database's lookup (0.1-0.2 ms from files here, more from a
 * directory service) made off the path to the workload's start. */
void weft_wrap_job_info_sans_user(weft_job_info *j, char **cmd);
/* j->user: the name of this process's user, else $USER. Thread-safe. */
void weft_wrap_job_user(weft_job_info *j);
/* Send one request (job create or end) to the coordinator at url,
 * retrying with backoff for up to WEFT_WRAP_CALL_TIMEOUT_MS: 0 when
 * stored (or already), -1 after saying why not, prefixed with what. */
int weft_wrap_coordinator_call(const char *url, const char *tls_ca,
			       const weft_buf *req, const char *what);
#endif /* WEFT_WRAP_H */
