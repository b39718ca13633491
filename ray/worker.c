/*
 * weft_ray_wrapper.c - `weft wrap --ray`: setting up before the fork (the
 * private directory, the control socket, the marker files), the threads started
 * after it, the cuts at the markers (observe), and the end of the run
 * (weft_ray_wrapper.h says how the pieces fit, wrap_ray_internal.h which file
 * does what).
 */
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ray_internal.h"
#include <weft/store.h>

int weft_ray_granularity_parse(const char *text, enum weft_ray_granularity *g)
{
	if (strcmp(text, "call") == 0)
		*g = WEFT_RAY_PER_CALL;
	else if (strcmp(text, "actor") == 0)
		*g = WEFT_RAY_PER_ACTOR;
	else
		return -1;
	return 0;
}

bool wr_push_ptr(void ***v, size_t *n, size_t *cap, void *p)
{
	if (*n == *cap) {
		size_t c = *cap ? 2 * *cap : 16;
		void **nv = realloc(*v, c * sizeof(*nv));
		if (!nv)
			return false;
		*v = nv;
		*cap = c;
	}
	(*v)[(*n)++] = p;
	return true;
}

void wr_engine_add(weft_engine_id *e, uint32_t *n, const char *key,
		   const char *value)
{
	if (!value[0] || *n >= WEFT_MAX_ENGINE_IDS)
		return;
	snprintf(e[*n].key, sizeof(e[*n].key), "%s", key);
	snprintf(e[*n].value, sizeof(e[*n].value), "%s", value);
	++*n;
}

void wr_say(const weft_ray_wrapper *w, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	weft_vsay_to(w->diag, fmt, ap);
	va_end(ap);
}

/* ---- setting up, before the fork ---- */

static void remove_dir(weft_ray_wrapper *w)
{
	char p[sizeof(w->dir) + 16];
	if (!w->dir[0])
		return;
	for (int i = 0; i < WR_NMARKS; i++) {
		snprintf(p, sizeof(p), "%s/mark.%d", w->dir, i);
		unlink(p);
	}
	snprintf(p, sizeof(p), "%s/ctl", w->dir);
	unlink(p);
	rmdir(w->dir);
	w->dir[0] = '\0';
}

static int make_dir(weft_ray_wrapper *w, char *err, size_t errsz)
{
	const char *tmp = getenv("TMPDIR");
	/* The socket path must fit sun_path with "/ctl" and the marker
	 * names after it. */
	if (!tmp || tmp[0] != '/' ||
	    strlen(tmp) + sizeof("/weft-ray-XXXXXX/mark.0") > sizeof(w->dir))
		tmp = "/tmp";
	snprintf(w->dir, sizeof(w->dir), "%s/weft-ray-XXXXXX", tmp);
	if (!mkdtemp(w->dir)) {
		snprintf(err, errsz,
			 "wrap --ray: cannot make a directory for the control "
			 "socket in %s: %s",
			 tmp, strerror(errno));
		w->dir[0] = '\0';
		return -1;
	}
	w->dirlen = strlen(w->dir);
	char p[sizeof(w->dir) + 16];
	for (int i = 0; i < WR_NMARKS; i++) {
		snprintf(p, sizeof(p), "%s/mark.%d", w->dir, i);
		int fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0) {
			snprintf(err, errsz, "wrap --ray: cannot make %s: %s",
				 p, strerror(errno));
			return -1;
		}
		close(fd);
	}
	return 0;
}

static int make_socket(weft_ray_wrapper *w, char *err, size_t errsz)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	int n = snprintf(a.sun_path, sizeof(a.sun_path), "%s/ctl", w->dir);
	if (n < 0 || (size_t)n >= sizeof(a.sun_path)) {
		snprintf(err, errsz,
			 "wrap --ray: the control socket path %s/ctl is too "
			 "long",
			 w->dir);
		return -1;
	}
	w->listen_fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (w->listen_fd < 0 ||
	    bind(w->listen_fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
	    listen(w->listen_fd, WR_MAX_CONNS) != 0) {
		snprintf(err, errsz, "wrap --ray: cannot listen on %s: %s",
			 a.sun_path, strerror(errno));
		return -1;
	}
	if (pipe2(w->wake, O_CLOEXEC) != 0) {
		w->wake[0] = w->wake[1] = -1;
		snprintf(err, errsz, "wrap --ray: cannot make a pipe: %s",
			 strerror(errno));
		return -1;
	}
	if (setenv("WEFT_RAY_CONTROL", a.sun_path, 1) != 0 ||
	    setenv("WEFT_RAY_MARKS", w->dir, 1) != 0) {
		snprintf(err, errsz,
			 "wrap --ray: cannot set the worker's environment: %s",
			 strerror(errno));
		return -1;
	}
	return 0;
}

weft_ray_wrapper *weft_ray_wrapper_new(const weft_ray_opts *o, char *err,
				       size_t errsz)
{
	weft_ray_wrapper *w = calloc(1, sizeof(*w));
	if (!w) {
		snprintf(err, errsz, "out of memory");
		return NULL;
	}
	w->g = o->granularity;
	w->verbose = o->verbose;
	w->diag = o->diag;
	w->listen_fd = w->wake[0] = w->wake[1] = -1;
	w->last_end_cut = -1;
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->rec_cv, NULL);
	if (o->env) {
		w->record = true;
		w->task_env = *o->env;
		snprintf(w->worker_task, sizeof(w->worker_task), "%s",
			 o->worker_task);
		w->worker_named = o->worker_named;
		snprintf(w->node, sizeof(w->node), "%s", o->node);
		snprintf(w->backend, sizeof(w->backend), "%s", o->backend);
		w->part_bytes = o->part_bytes;
		if (!(w->stream = weft_wrap_stream_new(o->env, o->diag))) {
			snprintf(err, errsz, "out of memory");
			weft_ray_wrapper_free(w);
			return NULL;
		}
	}
	if (make_dir(w, err, errsz) != 0 || make_socket(w, err, errsz) != 0) {
		weft_ray_wrapper_free(w);
		return NULL;
	}
	return w;
}

/* ---- the cuts (the feeding thread) ---- */

static bool is_marker(const weft_ray_wrapper *w, const char *path, int *idx)
{
	if (strncmp(path, w->dir, w->dirlen) != 0 ||
	    strncmp(path + w->dirlen, "/mark.", 6) != 0)
		return false;
	const char *d = path + w->dirlen + 6;
	if (d[0] < '0' || d[0] >= '0' + WR_NMARKS || d[1])
		return false;
	*idx = d[0] - '0';
	return true;
}

void weft_ray_wrapper_observe(void *arg, weft_classifier *c,
			      const weft_event *ev)
{
	weft_ray_wrapper *w = arg;
	if (!w->started && !w->start_failed) {
		/* The workload exists: threads are safe from here on. */
		if (weft_wrap_thread_start(&w->thread, wr_serve, w) == 0)
			w->started = true;
		else
			w->start_failed = true;
		/* Without the recorder and the shipper, tasks are recorded
		 * at the end. */
		if (w->record && weft_wrap_stream_start(w->stream) == 0 &&
		    weft_wrap_thread_start(&w->recorder, wr_recorder, w) == 0)
			w->rec_started = true;
		else
			w->record = false;
	}
	if (!w->ignored) {
		w->ignored = true;
		weft_classifier_ignore_prefix(c, w->dir);
	}
	int idx;
	if (ev->kind != WEFT_EV_OPEN || ev->ret < 0 || !ev->path ||
	    !is_marker(w, ev->path, &idx))
		return;
	if (w->nmarks == w->capmarks) {
		size_t cap = w->capmarks ? 2 * w->capmarks : 64;
		struct wr_mark *m = realloc(w->marks, cap * sizeof(*m));
		if (m)
			w->marks = m;
		weft_report *r =
			m ? realloc(w->windows, cap * sizeof(*r)) : NULL;
		if (r)
			w->windows = r;
		if (!m || !r) {
			w->cut_failed++;
			return;
		}
		w->capmarks = cap;
	}
	weft_report *win = &w->windows[w->nmarks];
	weft_report_init(win);
	if (weft_classifier_cut(c, win) != WEFT_OK)
		w->cut_failed++;
	w->marks[w->nmarks++] = (struct wr_mark){.tid = ev->pid, .idx = idx};
	wr_task_marked(w, w->nmarks - 1);
}

/* ---- the end of the run ---- */

/* Stop serving; let the recorder spool what is queued, then stop it. */
static void stop(weft_ray_wrapper *w)
{
	if (w->started && !w->joined) {
		char b = 1;
		if (write(w->wake[1], &b, 1) != 1)
			pthread_cancel(w->thread);
		pthread_join(w->thread, NULL);
		w->joined = true;
	}
	if (w->rec_started && !w->rec_joined) {
		pthread_mutex_lock(&w->lock);
		w->rec_stop = true;
		pthread_cond_broadcast(&w->rec_cv);
		pthread_mutex_unlock(&w->lock);
		pthread_join(w->recorder, NULL);
		w->rec_joined = true;
	}
}

void weft_ray_wrapper_ship_deadline(weft_ray_wrapper *w, int timeout_ms)
{
	if (w->stream)
		weft_wrap_stream_deadline(w->stream, timeout_ms);
}

int weft_ray_wrapper_finish(weft_ray_wrapper *w, weft_report *worker,
			    const char *node, bool named_by_engine,
			    char *task_out, size_t task_outsz,
			    weft_engine_id *engine, uint32_t *nengine,
			    weft_ray_task **tasks, size_t *ntasks)
{
	*tasks = NULL;
	*ntasks = 0;
	stop(w);
	/* Ray's ids name the worker when its environment did not. */
	const struct wr_msg *m = named_by_engine ? NULL : wr_naming_msg(w);
	if (m) {
		snprintf(task_out, task_outsz, "ray.%s.%s@%s", m->job_id,
			 m->worker_id, node);
		wr_engine_add(engine, nengine, "ray_job", m->job_id);
		wr_engine_add(engine, nengine, "ray_worker", m->worker_id);
		wr_engine_add(engine, nengine, "ray_node", m->node_id);
	}
	if (w->rec_err[0])
		weft_report_warn(worker,
				 "recording a Ray task when it ended failed "
				 "(first: %s); recorded after the worker "
				 "exited instead",
				 w->rec_err);
	if (w->bad)
		weft_report_warn(worker,
				 "%zu control messages from the Ray shim were "
				 "refused (first: %s)",
				 w->bad, w->bad_reason);
	if (w->cut_failed)
		weft_report_warn(worker,
				 "%zu task boundaries could not be cut (out of "
				 "memory): those tasks' I/O is in the worker's "
				 "record",
				 w->cut_failed);
	if (w->start_failed)
		weft_report_warn(worker, "the Ray control socket was not "
					 "served: the worker is recorded "
					 "whole");
	if (!w->nmsgs)
		return 0;
	return wr_cut_run(w, worker, node, tasks, ntasks);
}

size_t weft_ray_wrapper_recorded(const weft_ray_wrapper *w)
{
	return w->recorded;
}

bool weft_ray_wrapper_streaming(const weft_ray_wrapper *w)
{
	return w->stream && weft_wrap_stream_ok(w->stream);
}

int weft_ray_wrapper_record(weft_ray_wrapper *w, const weft_wrap_identity *id,
			    const char *name, const char *parent,
			    weft_report *r, char *err, size_t errsz)
{
	/* The node's hash cache (WEFT_HASH_CACHE), a connection of this
	 * call's own: the recorder thread has its own. */
	char cache_buf[WEFT_MAX_PATH_BYTES];
	const char *cache_path = weft_wrap_hash_cache(cache_buf, r, w->diag);
	weft_store *cache = NULL;
	int e = weft_report_hash_files_cached(&cache, cache_path, NULL, r, NULL,
					      NULL, NULL, NULL);
	weft_store_close(cache);
	if (e != WEFT_OK)
		weft_report_warn(r, "hashing incomplete: %s", weft_strerror(e));
	weft_wrap_env env = w->task_env;
	snprintf(env.parent, sizeof(env.parent), "%s", parent ? parent : "");
	char preflight[128];
	snprintf(preflight, sizeof(preflight), "%s: preflight passed",
		 r->backend);
	weft_wrap_run run = {
		.env = &env,
		.id = id,
		.name = name,
		.preflight = preflight,
		.part_bytes = w->part_bytes,
	};
	const weft_report *one = r;
	return weft_wrap_stream_record(w->stream, &run, &one, 1, err, errsz) ==
			       WEFT_OK
		       ? 0
		       : -1;
}

void weft_ray_task_identity(const weft_ray_task *t, const char *node,
			    weft_wrap_identity *id)
{
	memset(id, 0, sizeof(*id));
	id->source = "ray";
	snprintf(id->task, sizeof(id->task), "%s", t->id);
	snprintf(id->node, sizeof(id->node), "%s", node);
	memcpy(id->engine, t->engine, sizeof(id->engine));
	id->nengine = t->nengine;
}

int weft_ray_wrapper_record_rest(weft_ray_wrapper *w,
				 const weft_wrap_identity *id, const char *name,
				 const char *parent, weft_report *worker,
				 weft_ray_task *tasks, size_t n,
				 weft_wrap_stream_stats *st)
{
	char err[1024];
	int rc = 0;
	if (weft_ray_wrapper_record(w, id, name, parent, worker, err,
				    sizeof(err)) != 0) {
		wr_say(w, "task %s: not recorded: %s", id->task, err);
		rc = -1;
	}
	for (size_t i = 0; i < n; i++) {
		weft_wrap_identity tid;
		weft_ray_task_identity(&tasks[i], id->node, &tid);
		if (weft_ray_wrapper_record(w, &tid, tasks[i].name, id->task,
					    &tasks[i].report, err,
					    sizeof(err)) != 0) {
			wr_say(w, "task %s: not recorded: %s", tid.task, err);
			rc = -1;
		}
	}
	weft_ray_wrapper_ship_finish(w, st);
	return rc;
}

void weft_ray_wrapper_ship_finish(weft_ray_wrapper *w,
				  weft_wrap_stream_stats *st)
{
	memset(st, 0, sizeof(*st));
	if (w->stream)
		weft_wrap_stream_finish(w->stream, st);
}

void weft_ray_tasks_free(weft_ray_task *tasks, size_t n)
{
	for (size_t i = 0; tasks && i < n; i++)
		weft_report_release(&tasks[i].report);
	free(tasks);
}

void weft_ray_wrapper_free(weft_ray_wrapper *w)
{
	if (!w)
		return;
	stop(w);
	weft_wrap_stream_free(w->stream);
	if (w->listen_fd >= 0)
		close(w->listen_fd);
	for (int i = 0; i < 2; i++)
		if (w->wake[i] >= 0)
			close(w->wake[i]);
	remove_dir(w);
	for (size_t i = 0; i < w->nmarks; i++)
		weft_report_release(&w->windows[i]);
	free(w->windows);
	free(w->marks);
	free(w->msgs);
	free(w->open);
	for (size_t i = w->qhead; i < w->nqueue; i++)
		weft_ray_tasks_free(w->queue[i], 1);
	free(w->queue);
	for (size_t i = 0; i < w->nunrecorded; i++)
		weft_ray_tasks_free(w->unrecorded[i], 1);
	free(w->unrecorded);
	pthread_cond_destroy(&w->rec_cv);
	pthread_mutex_destroy(&w->lock);
	free(w);
}
