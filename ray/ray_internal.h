/*
 * ray_internal.h - private to libweft_ray's worker wrapper (`weft wrap
 * --ray`): the state its files share and what each gives the others.
 *
 *   worker.c    setting up (the directory, the socket), the threads'
 *               start and stop, observe (the cuts), the end of the run,
 *               the public calls
 *   control.c   the control socket: the serving thread, messages
 *   tasks.c     markers to messages, windows to tasks (online as tasks
 *               end, and at the end of the run)
 *   record.c    the recorder thread: hash, then the wrapper's writer
 *               (weft_wrap_stream of libweft_wrap: one writer for the
 *               whole wrapper, shipped by a thread of its own while the
 *               worker runs)
 *   driver.c    in-cluster: a Ray driver's environment
 *   submit.c    host-submit: the `ray job submit` rewrite
 *
 * Threads: the tracer's feeding thread (observe: cuts, marks, windows,
 * open tasks; messages' cut and recorded marks under lock), the serving
 * thread (appends messages, under lock), the recorder (queue, unrecorded,
 * worker_task under lock; the tasks it takes are its own; the stream's
 * recording side), the shipper (the stream's sending side, under the
 * stream's own lock). None exists before the workload's fork.
 */
#ifndef WEFT_RAY_INTERNAL_H
#define WEFT_RAY_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/un.h>

#include <weft/ray.h>

#define WR_NMARKS 8            /* mark.0 ... mark.7: seq % 8 */
#define WR_MSG_MAX_BYTES 65536 /* one control message */
#define WR_MAX_CONNS 64        /* one per worker process, normally one */
#define WR_ID_BYTES WEFT_MAX_NAME_BYTES

/* One control message, as the serving thread took it. */
struct wr_msg {
	bool begin; /* else end */
	bool actor; /* kind "actor_task" */
	bool failed;
	int64_t pid, tid; /* the process and thread that ran it */
	uint64_t seq;
	int64_t t_ns;
	long cut;      /* the marker matched to it (index into marks), or -1 */
	bool recorded; /* a begin whose task was recorded when it ended */
	char name[WEFT_MAX_TASK_BYTES / 2];
	char task_id[WR_ID_BYTES], actor_id[WR_ID_BYTES], job_id[WR_ID_BYTES],
		node_id[WR_ID_BYTES], worker_id[WR_ID_BYTES];
};

/* A marker seen by the tracer: cut j ends window j. */
struct wr_mark {
	pid_t tid;
	int idx; /* which marker file */
};

/* A task begun and not yet ended (the feeding thread's). */
struct wr_open_task {
	size_t msg; /* its begin, in msgs */
	struct wr_msg m;
};

struct weft_ray_wrapper {
	enum weft_ray_granularity g;
	int verbose;
	FILE *diag; /* diagnostics ("weft: ..." lines), or NULL */
	char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
	size_t dirlen;
	int listen_fd, wake[2];
	/* The serving thread and what it collects. */
	bool started, start_failed, joined;
	pthread_t thread;
	pthread_mutex_t lock;
	struct wr_msg *msgs;
	size_t nmsgs, capmsgs, bad;
	char bad_reason[160];
	/* The feeding thread's: cut j ends window j (marks[j]). */
	bool ignored;
	struct wr_mark *marks;
	weft_report *windows;
	size_t nmarks, capmarks, cut_failed;
	struct wr_open_task *open;
	size_t nopen, capopen;
	long last_end_cut; /* the latest cut that ended a task */
	/* Recording each task when it ends: the recorder thread takes
	 * finished tasks from the queue (under lock), hashes them and
	 * hands them to the stream. */
	bool record, rec_started, rec_stop, rec_joined, worker_named;
	weft_wrap_env task_env; /* parent: the worker */
	char worker_task[WEFT_MAX_TASK_BYTES + 1];
	char node[WEFT_MAX_NAME_BYTES], backend[WEFT_MAX_NAME_BYTES];
	size_t part_bytes;
	pthread_t recorder;
	pthread_cond_t rec_cv;
	weft_ray_task **queue;
	size_t qhead, nqueue, capqueue;
	weft_ray_task **unrecorded; /* recording failed: for the caller */
	size_t nunrecorded, capunrecorded, recorded;
	char rec_err[256];
	weft_wrap_stream *stream; /* NULL without env */
};

/* ---- worker.c ---- */

bool wr_push_ptr(void ***v, size_t *n, size_t *cap, void *p);
void wr_engine_add(weft_engine_id *e, uint32_t *n, const char *key,
		   const char *value);
/* "weft: " + a line on w->diag (nothing when it is NULL). */
void wr_say(const weft_ray_wrapper *w, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* ---- control.c ---- */

/* The serving thread: accepts the worker's connections, takes each
 * message into w->msgs and answers it; ends when w->wake[0] is readable. */
void *wr_serve(void *arg);

/* ---- tasks.c ---- */

/* Marker j was just cut: match it to its message, and hand a task that
 * ended there to the recorder (wr_record_now). */
void wr_task_marked(weft_ray_wrapper *w, size_t j);
/* The first message with Ray's job and worker ids (names the worker
 * when its environment did not); the caller holds the lock or the
 * threads are done. */
const struct wr_msg *wr_naming_msg(const weft_ray_wrapper *w);
/* The end of the run (every thread done): worker->files is the last
 * window; the tasks not yet recorded (plus the recorder's failures) into
 * *tasks, the windows outside every task back into worker. WEFT_OK or
 * an error (worker is then whole again). */
int wr_cut_run(weft_ray_wrapper *w, weft_report *worker, const char *node,
	       weft_ray_task **tasks, size_t *ntasks);

/* What a task (or an actor's calls) is, for wr_build_task. */
struct wr_task_facts {
	const struct wr_msg *first;
	bool per_actor, failed, unfinished, shared;
	size_t calls;
	int64_t started, ended;
	const char *node, *backend;
};
/* Windows [from, to], for wr_build_task. */
struct wr_range {
	size_t from, to;
};
/* t for the task f describes, its files those of the windows of ranges
 * (last: the window after the last cut, or NULL while running). */
int wr_build_task(const weft_ray_wrapper *w, const struct wr_task_facts *f,
		  const struct wr_range *ranges, size_t nranges,
		  const weft_report *last, weft_ray_task *t);

/* ---- record.c ---- */

void *wr_recorder(void *arg);
/* Task b ended with end at cut j: queue it for the recorder. False when
 * it stays for the end of the run. */
bool wr_record_now(weft_ray_wrapper *w, const struct wr_open_task *b,
		   const struct wr_msg *end, size_t j, bool shared);

#endif /* WEFT_RAY_INTERNAL_H */
