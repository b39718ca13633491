/*
 * wrap_ray.h - `weft wrap --ray`: a Ray worker's run cut into one record
 * per Ray task (docs/ray.md).
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
 * workload. The private header (wrap_ray_internal.h) says which file does
 * what.
 */
#ifndef WEFT_CLI_WRAP_RAY_H
#define WEFT_CLI_WRAP_RAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "weft_backends.h"
#include "weft_schema.h"
#include "weft_wire.h"
#include "weft_wrap.h"

/* Actor calls: one record per call (default) or one per actor. */
enum wrap_ray_granularity { WRAP_RAY_PER_CALL, WRAP_RAY_PER_ACTOR };

/* "call" or "actor" into *g: 0, or -1 for anything else. */
int wrap_ray_granularity_parse(const char *text, enum wrap_ray_granularity *g);

typedef struct wrap_ray wrap_ray;

/* One Ray task's record, ready to be shipped as its own task. */
typedef struct wrap_ray_task {
	char id[WEFT_MAX_TASK_BYTES + 1];   /* "ray.JOB.TASK@NODE" */
	char name[WEFT_MAX_TASK_BYTES + 1]; /* the function, "Actor.method" */
	weft_engine_id engine[WEFT_MAX_ENGINE_IDS];
	uint32_t nengine;
	weft_report report; /* files only; times, exit code, warnings */
} wrap_ray_task;

typedef struct wrap_ray_opts {
	enum wrap_ray_granularity granularity;
	int verbose;
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
	size_t part_bytes;       /* as cli_ship.part_bytes */
} wrap_ray_opts;

/* What shipping the wrapper's writer came to. */
typedef struct wrap_ray_ship_stats {
	size_t records;   /* runs recorded (tasks, the worker) */
	size_t fragments; /* spooled */
	size_t stored, duplicate, rejected, corrupt; /* verdicts */
	size_t left; /* not acknowledged: they stay in the spool */
	char writer_dir[WEFT_MAX_PATH_BYTES + 96];
	char last_err[256]; /* the last transport error, or "" */
} wrap_ray_ship_stats;

/* Before launch: a private directory holding the control socket and the
 * marker files, listening; WEFT_RAY_CONTROL and WEFT_RAY_MARKS set in this
 * process's environment (the workload inherits it). NULL after saying
 * why on stderr. */
wrap_ray *wrap_ray_new(const wrap_ray_opts *o);
/* cli_trace.observe: starts the threads on the first event, cuts the
 * classifier at each marker. */
void wrap_ray_observe(void *arg, weft_classifier *c, const weft_event *ev);
/* The worker exited: shipping has timeout_ms from now (--ship-timeout)
 * for everything recorded. Call it first thing after the tracer
 * returned. */
void wrap_ray_ship_deadline(wrap_ray *w, int timeout_ms);
/* After the workload ended (the tracer returned): stop serving, let the
 * recorder spool what is queued, then cut the run. worker holds the whole
 * run as cli_trace_run left it (its files are the last window);
 * afterwards it keeps its processes, its warnings and the files of the
 * windows outside every task, and *tasks (malloc'ed, *ntasks of them)
 * the tasks not yet recorded (actors with per-actor granularity, tasks
 * that never ended, any whose recording failed). The worker's identity
 * is completed from Ray's ids when the engine's variables gave none:
 * *task_out gets "ray.JOB.WORKER@NODE" then (untouched otherwise), and
 * engine ids are appended to engine/nengine. 0, or -1 after a message
 * (then worker is left whole). */
int wrap_ray_finish(wrap_ray *w, weft_report *worker, const char *node,
		    bool named_by_engine, char *task_out, size_t task_outsz,
		    weft_engine_id *engine, uint32_t *nengine,
		    wrap_ray_task **tasks, size_t *ntasks);
/* Tasks recorded (spooled) while the worker ran. */
size_t wrap_ray_recorded(const wrap_ray *w);
/* Whether the rest goes through the wrapper's writer (wrap_ray_record):
 * there is an env and the writer works. Otherwise the caller records
 * the rest its own way. */
bool wrap_ray_streaming(const wrap_ray *w);
/* After wrap_ray_finish: hash r, then sign and spool it as a run of the
 * wrapper's writer with identity id, name and parent. 0, or -1 with a
 * message in err. */
int wrap_ray_record(wrap_ray *w, const weft_wrap_identity *id, const char *name,
		    const char *parent, weft_report *r, char *err,
		    size_t errsz);
/* After the last wrap_ray_record: wait for the coordinator's
 * acknowledgements until the deadline, stop shipping; what is not
 * acknowledged stays in the spool ('weft flush', the next wrapper). */
void wrap_ray_ship_finish(wrap_ray *w, wrap_ray_ship_stats *st);
void wrap_ray_tasks_free(wrap_ray_task *tasks, size_t n);
/* Stop (if still serving or shipping), remove the directory, free. NULL
 * is fine. */
void wrap_ray_free(wrap_ray *w);

/* ---- In-cluster: a driver on a Ray node (weft run) ---- */

#define WRAP_RAY_ENV_HOOK "weft.ray.runtime_env_hook"

/* Whether a Ray cluster is in play for a command started here:
 * RAY_ADDRESS is set, or this node runs Ray (/tmp/ray/ray_current_cluster,
 * which `ray start` writes). why gets which. */
bool wrap_ray_detect(char *why, size_t whysz);
/* Set up this process's environment for a Ray driver: RAY_RUNTIME_ENV_HOOK
 * = weft.ray.runtime_env_hook (a hook of the user's own moves to
 * WEFT_RAY_USER_ENV_HOOK and still runs, first), python_path first on
 * PYTHONPATH (so the driver imports the hook), and WEFT_BIN = weft_binary
 * unless the user set it or weft_binary is plain "weft". 0, or -1 after
 * saying what conflicts (nothing is changed then). */
int wrap_ray_driver_env(const char *python_path, const char *weft_binary);

#endif /* WEFT_CLI_WRAP_RAY_H */
