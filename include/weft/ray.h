/*
 * weft/ray.h - libweft_ray: weft's side of Ray (docs/ray.md). Three
 * entry points: the worker wrapper (`weft wrap --ray`: a Ray worker's run
 * cut into one record per Ray task), a driver's environment for the
 * in-cluster mode (`weft run` on a Ray node), and the `ray job submit`
 * rewrite for host-submit (`weft submit -- ray job submit ...`). Nothing
 * here parses weft's own command line or prints to stdout; diagnostics
 * go to the FILE the caller gives.
 *
 * The worker wrapper:
 *
 * The worker's shim (python-shim/weft/ray.py) tells the wrapper over a
 * control socket (AF_UNIX, SOCK_SEQPACKET, one JSON object per packet,
 * answered "ok") when a task or actor method begins and ends, with Ray's
 * ids; after each answer the task's thread opens one of the marker files
 * mark.0 ... mark.7 beside the socket (mark.(seq % 8)). The tracer sees
 * that open in the thread's own stream of system calls, whatever the
 * backend and however late its events arrive, and the wrapper cuts the
 * classifier exactly there (weft_classifier_cut). Each marker is matched
 * to its message (same thread, seq modulo 8) as it comes; when a task
 * ends, the windows between its cuts become its record, which a recorder
 * thread hashes, signs and spools at once as fragments of the wrapper's
 * one writer (seq 1, 2, ...), and a shipping thread sends to the
 * coordinator while the worker goes on: one enrolment, one connection.
 * What is left for the end of the run: per-actor records, tasks that
 * never ended, and the worker's own record, which keeps the windows
 * outside every task; they go through the same writer.
 *
 * Threads and forks: the socket and the marker files are made before the
 * workload is forked, the serving, recorder and shipping threads only
 * after (they start with the first event the tracer feeds), so no thread
 * of weft's, and nothing of nng, exists when a backend forks the
 * workload. The private header (ray_internal.h) says which file does
 * what.
 */
#ifndef WEFT_RAY_H
#define WEFT_RAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <weft/backends.h>
#include <weft/schema.h>
#include <weft/wire.h>
#include <weft/wrap.h>

/* Actor calls: one record per call (default) or one per actor. */
enum weft_ray_granularity { WEFT_RAY_PER_CALL, WEFT_RAY_PER_ACTOR };

/* "call" or "actor" into *g: 0, or -1 for anything else. */
int weft_ray_granularity_parse(const char *text, enum weft_ray_granularity *g);

typedef struct weft_ray_wrapper weft_ray_wrapper;

/* One Ray task's record, ready to be shipped as its own task. */
typedef struct weft_ray_task {
	char id[WEFT_MAX_TASK_BYTES + 1];   /* "ray.JOB.TASK@NODE" */
	char name[WEFT_MAX_TASK_BYTES + 1]; /* the function, "Actor.method" */
	weft_engine_id engine[WEFT_MAX_ENGINE_IDS];
	uint32_t nengine;
	weft_report report; /* files only; times, exit code, warnings */
} weft_ray_task;

typedef struct weft_ray_opts {
	enum weft_ray_granularity granularity;
	int verbose;
	FILE *diag; /* "weft: ..." lines for people (stderr), or NULL */
	/* The job's contract: each task's record is spooled as soon as it
	 * ended (hashed then, by a thread of its own) and shipped while the
	 * worker runs. NULL: every task is left for the caller after the
	 * worker exited (tests of the cutting alone). */
	const weft_wrap_env *env;
	const char *worker_task; /* the worker's task id (the tasks' parent) */
	bool worker_named;       /* by the engine or --task: else it is
				    renamed from Ray's ids */
	const char *node;        /* the node's name for the tasks */
	const char *backend;     /* the tracer's name */
	size_t part_bytes;       /* records per part at most (weft_wrap_run) */
} weft_ray_opts;

/* Before launch: a private directory holding the control socket and the
 * marker files, listening; WEFT_RAY_CONTROL and WEFT_RAY_MARKS set in this
 * process's environment (the workload inherits it). NULL with the reason
 * in err. */
weft_ray_wrapper *weft_ray_wrapper_new(const weft_ray_opts *o, char *err,
				       size_t errsz);
/* The tracer's observe hook (every event before it is fed): starts the threads
 * on the first event, cuts the classifier at each marker. */
void weft_ray_wrapper_observe(void *arg, weft_classifier *c,
			      const weft_event *ev);
/* The worker exited: shipping has timeout_ms from now (--ship-timeout)
 * for everything recorded. Call it first thing after the tracer
 * returned. */
void weft_ray_wrapper_ship_deadline(weft_ray_wrapper *w, int timeout_ms);
/* After the workload ended (the tracer returned): stop serving, let the
 * recorder spool what is queued, then cut the run. worker holds the whole
 * run as the tracer left it (its files are the last window);
 * afterwards it keeps its processes, its warnings and the files of the
 * windows outside every task, and *tasks (malloc'ed, *ntasks of them)
 * the tasks not yet recorded (actors with per-actor granularity, tasks
 * that never ended, any whose recording failed). The worker's identity
 * is completed from Ray's ids when the engine's variables gave none:
 * *task_out gets "ray.JOB.WORKER@NODE" then (untouched otherwise), and
 * engine ids are appended to engine/nengine. 0, or -1 after a message
 * on diag (then worker is left whole). */
int weft_ray_wrapper_finish(weft_ray_wrapper *w, weft_report *worker,
			    const char *node, bool named_by_engine,
			    char *task_out, size_t task_outsz,
			    weft_engine_id *engine, uint32_t *nengine,
			    weft_ray_task **tasks, size_t *ntasks);
/* Tasks recorded (spooled) while the worker ran. */
size_t weft_ray_wrapper_recorded(const weft_ray_wrapper *w);
/* Whether the rest goes through the wrapper's writer (weft_ray_wrapper_record):
 * there is an env and the writer works. Otherwise the caller records
 * the rest its own way. */
bool weft_ray_wrapper_streaming(const weft_ray_wrapper *w);
/* After weft_ray_wrapper_finish: hash r, then sign and spool it as a run of the
 * wrapper's writer with identity id, name and parent. 0, or -1 with a
 * message in err. */
int weft_ray_wrapper_record(weft_ray_wrapper *w, const weft_wrap_identity *id,
			    const char *name, const char *parent,
			    weft_report *r, char *err, size_t errsz);
/* After weft_ray_wrapper_finish, when streaming: the worker's own record
 * (worker, as id, named name, child of parent) and then the tasks left
 * (each a child of the worker) through weft_ray_wrapper_record, then
 * weft_ray_wrapper_ship_finish into *st. 0, or -1 when some record could
 * not be made (said on diag, "task ID: not recorded: ..."). */
int weft_ray_wrapper_record_rest(weft_ray_wrapper *w,
				 const weft_wrap_identity *id, const char *name,
				 const char *parent, weft_report *worker,
				 weft_ray_task *tasks, size_t n,
				 weft_wrap_stream_stats *st);
/* The identity of task t of a worker on node (engine ids, source "ray"). */
void weft_ray_task_identity(const weft_ray_task *t, const char *node,
			    weft_wrap_identity *id);
/* After the last weft_ray_wrapper_record: wait for the coordinator's
 * acknowledgements until the deadline, stop shipping; what is not
 * acknowledged stays in the spool ('weft flush', the next wrapper). */
void weft_ray_wrapper_ship_finish(weft_ray_wrapper *w,
				  weft_wrap_stream_stats *st);
void weft_ray_tasks_free(weft_ray_task *tasks, size_t n);
/* Stop (if still serving or shipping), remove the directory, free. NULL
 * is fine. */
void weft_ray_wrapper_free(weft_ray_wrapper *w);

/* ---- In-cluster: a driver on a Ray node (weft run) ---- */

#define WEFT_RAY_ENV_HOOK "weft.ray.runtime_env_hook"

/* Whether a Ray cluster is in play for a command started here:
 * RAY_ADDRESS is set, or this node runs Ray (/tmp/ray/ray_current_cluster,
 * which `ray start` writes). why gets which. */
bool weft_ray_detect(char *why, size_t whysz);
/* Set up this process's environment for a Ray driver: RAY_RUNTIME_ENV_HOOK
 * = weft.ray.runtime_env_hook (a hook of the user's own moves to
 * WEFT_RAY_USER_ENV_HOOK and still runs, first), python_path first on
 * PYTHONPATH (so the driver imports the hook), and WEFT_BIN = weft_binary
 * unless the user set it or weft_binary is plain "weft". 0, or -1 with
 * what conflicts in err (nothing is changed then). */
int weft_ray_driver_env(const char *python_path, const char *weft_binary,
			char *err, size_t errsz);

/* ---- Host-submit: `weft submit -- ray job submit ...` ----
 *
 * The command line is rewritten so that the job's runtime env carries
 * weft (as the Python hook python-shim/weft/ray.py would make it) and the
 * entrypoint, the driver, is traced too. The rewrite and the Python hook
 * agree field by field (tests/ray_submit_e2e.py checks it). A runtime
 * env is strict JSON (jansson: no duplicate names, no NUL in strings,
 * nesting bounded) of at most WEFT_RAY_ENV_MAX_BYTES in a file.
 */

#define WEFT_RAY_ENV_MAX_BYTES (1u << 20)

typedef struct weft_ray_submit_opts {
	const char *weft_binary; /* the weft command on the cluster's nodes */
	const char *python_path; /* the weft Python package's dir there */
	/* The env contract (WEFT_COORDINATOR, ...): names and values; NULL
	 * terminated. */
	const char *const *contract_names;
	const char *const *contract_values;
	/* Where the runtime env (which holds WEFT_JOB_TOKEN) is written, 0600,
	 * for `--runtime-env FILE`: never on Ray's command line, where every
	 * user of the machine could read it (ps). NULL: passed as
	 * --runtime-env-json, for a dry run that launches nothing. */
	const char *env_file;
} weft_ray_submit_opts;

/* Whether argv (the command after `weft submit --`) is `ray job submit`. */
bool weft_ray_submit_matches(char *const *argv);

/* The rewritten command line in *out (NULL terminated; free with
 * weft_ray_submit_free). 0, or -1 with the reason in err (a malformed user
 * runtime env, a conflicting setting, an unreadable --runtime-env file):
 * then nothing may be submitted. */
int weft_ray_submit_rewrite(char *const *argv, const weft_ray_submit_opts *o,
			    char ***out, char *err, size_t errsz);
void weft_ray_submit_free(char **argv);

/* The runtime env transform alone, on a JSON object text (NULL: none);
 * a new JSON string (free()) or NULL with err. */
char *weft_ray_runtime_env_rewrite(const char *json,
				   const weft_ray_submit_opts *o, char *err,
				   size_t errsz);

#endif /* WEFT_RAY_H */
