/*
 * record.c - `weft wrap --ray`: each Ray task recorded when it
 * ends. The feeding thread queues the task (wr_record_now); the recorder
 * thread hashes its files (right after it ended, so a later task changing
 * them does not change what this one is recorded to have written) and
 * hands it to the wrapper's writer (weft_wrap_stream_record: the tasks
 * queued meanwhile go together), which spools it and has it shipped
 * while the worker runs. A task that cannot be
 * recorded is kept for the end of the run (w->unrecorded).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ray_internal.h"
#include <weft/store.h>

/* Tasks the recorder takes at once: their fragments are spooled side by
 * side (weft_wrap_stream_record), which costs little more than one. */
#define RECORD_BATCH 64

/* What one task's record needs besides its report. */
struct rec {
	weft_wrap_identity id;
	weft_wrap_env env;
};

/* Hash t (through the node's hash cache: cache is this thread's own
 * connection, opened at the first task) and fill the run that records it
 * as a child of parent. */
static void prepare(weft_ray_wrapper *w, const char *parent, weft_ray_task *t,
		    struct rec *rec, const char *preflight, weft_wrap_run *run,
		    weft_store **cache, const char *cache_path)
{
	int e = weft_report_hash_files_cached(
		cache, cache_path, NULL, &t->report, NULL, NULL, NULL, NULL);
	if (e != WEFT_OK)
		weft_report_warn(&t->report, "hashing incomplete: %s",
				 weft_strerror(e));
	memset(&rec->id, 0, sizeof(rec->id));
	rec->id.source = "ray";
	snprintf(rec->id.task, sizeof(rec->id.task), "%s", t->id);
	snprintf(rec->id.node, sizeof(rec->id.node), "%s", w->node);
	memcpy(rec->id.engine, t->engine, sizeof(rec->id.engine));
	rec->id.nengine = t->nengine;
	rec->env = w->task_env;
	snprintf(rec->env.parent, sizeof(rec->env.parent), "%s", parent);
	*run = (weft_wrap_run){
		.env = &rec->env,
		.id = &rec->id,
		.name = t->name,
		.preflight = preflight,
		.part_bytes = w->part_bytes,
	};
}

void *wr_recorder(void *arg)
{
	weft_ray_wrapper *w = arg;
	char err[256], parent[sizeof(w->worker_task)], preflight[128];
	snprintf(preflight, sizeof(preflight), "%s: preflight passed",
		 w->backend);
	weft_ray_task *batch[RECORD_BATCH];
	struct rec *recs = malloc(RECORD_BATCH * sizeof(*recs));
	weft_wrap_run runs[RECORD_BATCH];
	const weft_report *reports[RECORD_BATCH];
	int rcs[RECORD_BATCH];
	/* The environment is settled (the workload runs): getenv is safe. */
	char cache_buf[WEFT_MAX_PATH_BYTES];
	const char *cache_path = weft_wrap_hash_cache(cache_buf, NULL, w->diag);
	weft_store *cache = NULL;
	pthread_mutex_lock(&w->lock);
	for (;;) {
		while (w->qhead == w->nqueue && !w->rec_stop)
			pthread_cond_wait(&w->rec_cv, &w->lock);
		if (w->qhead == w->nqueue)
			break;
		size_t n = 0, room = recs ? RECORD_BATCH : 1;
		while (n < room && w->qhead < w->nqueue)
			batch[n++] = w->queue[w->qhead++];
		snprintf(parent, sizeof(parent), "%s", w->worker_task);
		pthread_mutex_unlock(&w->lock);
		struct rec one;
		for (size_t i = 0; i < n; i++) {
			prepare(w, parent, batch[i], recs ? &recs[i] : &one,
				preflight, &runs[i], &cache, cache_path);
			reports[i] = &batch[i]->report;
		}
		int rc = weft_wrap_stream_record(w->stream, runs, reports, n,
						 err, sizeof(err));
		for (size_t i = 0; i < n; i++)
			rcs[i] = rc;
		/* The batch failed: one by one, so one bad record does not
		 * take the others with it. */
		for (size_t i = 0; rc != WEFT_OK && n > 1 && i < n; i++)
			rcs[i] = weft_wrap_stream_record(w->stream, &runs[i],
							 &reports[i], 1, err,
							 sizeof(err));
		pthread_mutex_lock(&w->lock);
		for (size_t i = 0; i < n; i++) {
			weft_ray_task *t = batch[i];
			if (rcs[i] == WEFT_OK) {
				weft_ray_tasks_free(t, 1);
				w->recorded++;
				continue;
			}
			if (!w->rec_err[0])
				snprintf(w->rec_err, sizeof(w->rec_err), "%s",
					 err);
			/* For the caller to record after the run; failing
			 * that it is lost, and said so. */
			if (!wr_push_ptr((void ***)&w->unrecorded,
					 &w->nunrecorded, &w->capunrecorded, t))
				weft_ray_tasks_free(t, 1);
		}
	}
	pthread_mutex_unlock(&w->lock);
	weft_store_close(cache);
	free(recs);
	return NULL;
}

bool wr_record_now(weft_ray_wrapper *w, const struct wr_open_task *b,
		   const struct wr_msg *end, size_t j, bool shared)
{
	struct wr_task_facts f = {
		.first = &b->m,
		.failed = end->failed,
		.shared = shared,
		.calls = 1,
		.started = b->m.t_ns,
		.ended = end->t_ns,
		.node = w->node,
		.backend = w->backend,
	};
	struct wr_range r = {(size_t)b->m.cut + 1, j};
	weft_ray_task *t = malloc(sizeof(*t));
	if (!t)
		return false;
	if (wr_build_task(w, &f, &r, 1, NULL, t) != WEFT_OK) {
		weft_ray_tasks_free(t, 1);
		return false;
	}
	pthread_mutex_lock(&w->lock);
	if (!w->worker_named) {
		const struct wr_msg *m = wr_naming_msg(w);
		if (m)
			snprintf(w->worker_task, sizeof(w->worker_task),
				 "ray.%s.%s@%s", m->job_id, m->worker_id,
				 w->node);
		w->worker_named = true;
	}
	bool ok = wr_push_ptr((void ***)&w->queue, &w->nqueue, &w->capqueue, t);
	if (ok) {
		w->msgs[b->msg].recorded = true;
		pthread_cond_signal(&w->rec_cv);
	}
	pthread_mutex_unlock(&w->lock);
	if (!ok)
		weft_ray_tasks_free(t, 1);
	return ok;
}
