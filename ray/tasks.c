/*
 * tasks.c - `weft wrap --ray`: markers to messages, and the
 * windows between cuts to Ray tasks. As the tracer's events come, each
 * marker is matched to its message and a task that ended is handed to
 * the recorder (wr_task_marked); at the end of the run, what was not
 * recorded then (per-actor records, tasks that never ended) is paired
 * from the messages of each thread, and the windows outside every task
 * go back to the worker's own record (wr_cut_run).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ray_internal.h"

/* Messages in thread order: indexes sorted by (tid, arrival). */
static const struct wr_msg *sort_base;

static int by_tid(const void *a, const void *b)
{
	size_t x = *(const size_t *)a, y = *(const size_t *)b;
	int64_t tx = sort_base[x].tid, ty = sort_base[y].tid;
	if (tx != ty)
		return tx < ty ? -1 : 1;
	return (x > y) - (x < y);
}

/* A task (or an actor's calls) and the windows it covers. */
struct group {
	char key[2 * WR_ID_BYTES + 32];
	size_t first; /* the begin message that named it */
	struct wr_range *ranges;
	size_t nranges;
	int64_t started, ended;
	bool failed, unfinished;
	bool done; /* recorded when it ended: its windows are not the
		      worker's, nothing more to do */
	size_t calls;
};

struct fref {
	const weft_file_rec *f;
	size_t win;
};

static int fref_cmp(const void *a, const void *b)
{
	const struct fref *x = a, *y = b;
	int r = strcmp(x->f->path, y->f->path);
	if (r)
		return r;
	return (x->win > y->win) - (x->win < y->win);
}

static const weft_report *window(const weft_ray_wrapper *w,
				 const weft_report *last, size_t i)
{
	return i < w->nmarks ? &w->windows[i] : last;
}

/* The files of the windows refs point at, one record per path (what a
 * path did in any of them), copied into out. */
static int merge_files(weft_report *out, struct fref *refs, size_t n)
{
	qsort(refs, n, sizeof(*refs), fref_cmp);
	for (size_t i = 0; i < n;) {
		size_t j = i + 1;
		while (j < n && strcmp(refs[j].f->path, refs[i].f->path) == 0)
			j++;
		weft_file_rec *r = weft_report_add_file(out);
		if (!r)
			return out->nfiles < WEFT_MAX_FILES ? WEFT_ENOMEM
							    : WEFT_OK;
		r->path = strdup(refs[i].f->path);
		if (!r->path)
			return WEFT_ENOMEM;
		for (size_t k = i; k < j; k++) {
			const weft_file_rec *f = refs[k].f;
			/* Windows in time order: the first write decides
			 * whether the task updated what was there. */
			if (f->written && !r->written)
				r->updated = f->updated && !r->created;
			r->read |= f->read;
			r->written |= f->written;
			r->created |= f->created;
			if (f->first_open_ns &&
			    (!r->first_open_ns ||
			     f->first_open_ns < r->first_open_ns))
				r->first_open_ns = f->first_open_ns;
			if (f->last_write_ns > r->last_write_ns)
				r->last_write_ns = f->last_write_ns;
			if (f->used_path && !r->used_path &&
			    !(r->used_path = strdup(f->used_path)))
				return WEFT_ENOMEM;
			/* Gone is what the last window left. */
			r->deleted = f->deleted;
			if (f->renamed_to && !r->renamed_to &&
			    !(r->renamed_to = strdup(f->renamed_to)))
				return WEFT_ENOMEM;
			if (f->has_first_stat && !r->has_first_stat) {
				r->has_first_stat = true;
				r->first_dev = f->first_dev;
				r->first_ino = f->first_ino;
				r->first_size = f->first_size;
				r->first_mtime_ns = f->first_mtime_ns;
				r->first_ctime_ns = f->first_ctime_ns;
			}
		}
		i = j;
	}
	return WEFT_OK;
}

/* Every file record of the windows for which pick says yes. */
static int collect(const weft_ray_wrapper *w, const weft_report *last,
		   size_t nwin, const bool *pick, weft_report *out)
{
	size_t n = 0;
	for (size_t i = 0; i < nwin; i++)
		if (pick[i])
			n += window(w, last, i)->nfiles;
	struct fref *refs = calloc(n ? n : 1, sizeof(*refs));
	if (!refs)
		return WEFT_ENOMEM;
	n = 0;
	for (size_t i = 0; i < nwin; i++) {
		const weft_report *r = window(w, last, i);
		for (size_t k = 0; pick[i] && k < r->nfiles; k++)
			refs[n++] = (struct fref){&r->files[k], i};
	}
	int err = merge_files(out, refs, n);
	free(refs);
	return err;
}

/* Every file record of the windows of ranges. */
static int collect_ranges(const weft_ray_wrapper *w, const weft_report *last,
			  const struct wr_range *ranges, size_t nranges,
			  weft_report *out)
{
	size_t n = 0;
	for (size_t i = 0; i < nranges; i++)
		for (size_t k = ranges[i].from; k <= ranges[i].to; k++)
			n += window(w, last, k)->nfiles;
	struct fref *refs = calloc(n ? n : 1, sizeof(*refs));
	if (!refs)
		return WEFT_ENOMEM;
	n = 0;
	for (size_t i = 0; i < nranges; i++)
		for (size_t k = ranges[i].from; k <= ranges[i].to; k++) {
			const weft_report *r = window(w, last, k);
			for (size_t f = 0; f < r->nfiles; f++)
				refs[n++] = (struct fref){&r->files[f], k};
		}
	int err = merge_files(out, refs, n);
	free(refs);
	return err;
}

static void group_key(const weft_ray_wrapper *w, const struct wr_msg *m,
		      char *key, size_t keysz)
{
	if (w->g == WEFT_RAY_PER_ACTOR && m->actor && m->actor_id[0])
		snprintf(key, keysz, "a:%s", m->actor_id);
	else if (m->task_id[0])
		snprintf(key, keysz, "t:%s", m->task_id);
	else /* a task_scope outside Ray: one per scope */
		snprintf(key, keysz, "s:%lld:%llu", (long long)m->tid,
			 (unsigned long long)m->seq);
}

/* Groups by key: open addressing over indexes into the groups array
 * (slots hold index + 1; 0 is free), at most half full. */
struct group_index {
	size_t *slots;
	size_t nslots;
};

static size_t key_hash(const char *key)
{
	uint64_t h = 1469598103934665603u; /* FNV-1a */
	for (; *key; key++)
		h = (h ^ (unsigned char)*key) * 1099511628211u;
	return (size_t)h;
}

/* The group of key, or a new one appended to g (which has room). */
static struct group *group_for(struct group *g, size_t *ng,
			       struct group_index *ix, const char *key)
{
	size_t i = key_hash(key) & (ix->nslots - 1);
	for (; ix->slots[i]; i = (i + 1) & (ix->nslots - 1))
		if (strcmp(g[ix->slots[i] - 1].key, key) == 0)
			return &g[ix->slots[i] - 1];
	struct group *t = &g[(*ng)++];
	snprintf(t->key, sizeof(t->key), "%s", key);
	ix->slots[i] = *ng;
	return t;
}

/* Where a task whose end marker was not seen ends: before the next cut
 * its thread made, else at the end of the run. */
static size_t open_end(const weft_ray_wrapper *w, const struct wr_msg *s,
		       size_t nwin)
{
	for (size_t j = (size_t)s->cut + 1; j < w->nmarks; j++)
		if (w->marks[j].tid == s->tid)
			return j;
	return nwin - 1;
}

/* Task s (a begin) ended with m (NULL: never ended): its windows go to
 * its group. */
static int close_task(const weft_ray_wrapper *w, const struct wr_msg *s,
		      const struct wr_msg *m, size_t nwin, struct group *g,
		      size_t *ng, struct group_index *ix, size_t *unseen)
{
	if (s->cut < 0) {
		++*unseen;
		return WEFT_OK;
	}
	char key[sizeof(g->key)];
	if (s->recorded)
		snprintf(key, sizeof(key), "d:%zu", (size_t)(s - w->msgs));
	else
		group_key(w, s, key, sizeof(key));
	size_t before = *ng;
	struct group *t = group_for(g, ng, ix, key);
	if (*ng != before) {
		t->first = (size_t)(s - w->msgs);
		t->started = s->t_ns;
	}
	struct wr_range *r = realloc(t->ranges, (t->nranges + 1) * sizeof(*r));
	if (!r)
		return WEFT_ENOMEM;
	t->ranges = r;
	size_t to = m && m->cut >= 0 ? (size_t)m->cut : open_end(w, s, nwin);
	r[t->nranges++] = (struct wr_range){(size_t)s->cut + 1, to};
	t->calls++;
	if (s->t_ns < t->started)
		t->started = s->t_ns;
	int64_t end = m ? m->t_ns : weft_real_ns();
	if (end > t->ended)
		t->ended = end;
	t->failed |= m && m->failed;
	t->unfinished |= !m;
	t->done = s->recorded;
	return WEFT_OK;
}

/* Pair each thread's begins and ends (a stack: task_scope may nest) into
 * groups with window ranges. */
static int pair(weft_ray_wrapper *w, const size_t *order, size_t nwin,
		struct group **out, size_t *nout, size_t *unseen)
{
	size_t n = w->nmsgs, ng = 0;
	struct group *g = calloc(n ? n : 1, sizeof(*g));
	size_t *stack = calloc(n ? n : 1, sizeof(*stack));
	struct group_index ix = {.nslots = 16};
	while (ix.nslots < 2 * n)
		ix.nslots *= 2;
	ix.slots = calloc(ix.nslots, sizeof(*ix.slots));
	int err = g && stack && ix.slots ? WEFT_OK : WEFT_ENOMEM;
	for (size_t b = 0; !err && b < n;) {
		size_t e = b, depth = 0;
		while (e < n && w->msgs[order[e]].tid == w->msgs[order[b]].tid)
			e++;
		for (size_t k = b; !err && k < e; k++) {
			const struct wr_msg *m = &w->msgs[order[k]];
			if (m->begin) {
				stack[depth++] = order[k];
				continue;
			}
			if (!depth)
				continue; /* an end without its begin */
			const struct wr_msg *s = &w->msgs[stack[depth - 1]];
			if (s->task_id[0] && m->task_id[0] &&
			    strcmp(s->task_id, m->task_id) != 0)
				continue; /* not its end */
			depth--;
			err = close_task(w, s, m, nwin, g, &ng, &ix, unseen);
		}
		while (!err && depth)
			err = close_task(w, &w->msgs[stack[--depth]], NULL,
					 nwin, g, &ng, &ix, unseen);
		b = e;
	}
	free(stack);
	free(ix.slots);
	if (err) {
		for (size_t i = 0; g && i < ng; i++)
			free(g[i].ranges);
		free(g);
		return err;
	}
	*out = g;
	*nout = ng;
	return WEFT_OK;
}

/* The actor's name: "Counter" of "Counter.incr". */
static void actor_name(char *out, size_t outsz, const char *method)
{
	const char *dot = strrchr(method, '.');
	int len = dot ? (int)(dot - method) : (int)strlen(method);
	snprintf(out, outsz, "%.*s", len, method);
}

int wr_build_task(const weft_ray_wrapper *w, const struct wr_task_facts *f,
		  const struct wr_range *ranges, size_t nranges,
		  const weft_report *last, weft_ray_task *t)
{
	const struct wr_msg *m = f->first;
	memset(t, 0, sizeof(*t));
	weft_report_init(&t->report);
	const char *job = m->job_id[0] ? m->job_id : "nojob";
	if (f->per_actor) {
		snprintf(t->id, sizeof(t->id), "ray.%s.actor.%s@%s", job,
			 m->actor_id, f->node);
		actor_name(t->name, sizeof(t->name),
			   m->name[0] ? m->name : "actor");
	} else {
		if (m->task_id[0])
			snprintf(t->id, sizeof(t->id), "ray.%s.%s@%s", job,
				 m->task_id, f->node);
		else
			snprintf(t->id, sizeof(t->id), "ray.%s.%s.%lld.%llu@%s",
				 job, m->worker_id[0] ? m->worker_id : "w",
				 (long long)m->tid, (unsigned long long)m->seq,
				 f->node);
		snprintf(t->name, sizeof(t->name), "%s",
			 m->name[0] ? m->name : "task");
	}
	wr_engine_add(t->engine, &t->nengine, "ray_job", m->job_id);
	if (!f->per_actor)
		wr_engine_add(t->engine, &t->nengine, "ray_task", m->task_id);
	wr_engine_add(t->engine, &t->nengine, "ray_actor", m->actor_id);
	wr_engine_add(t->engine, &t->nengine, "ray_worker", m->worker_id);
	wr_engine_add(t->engine, &t->nengine, "ray_node", m->node_id);
	wr_engine_add(t->engine, &t->nengine, "ray_kind",
		      m->actor ? "actor_task" : "task");
	/* Where it ran: the worker's process and the thread (the first
	 * call's, for an actor's record). */
	char num[24];
	snprintf(num, sizeof(num), "%lld", (long long)m->pid);
	wr_engine_add(t->engine, &t->nengine, "pid", m->pid ? num : "");
	snprintf(num, sizeof(num), "%lld", (long long)m->tid);
	wr_engine_add(t->engine, &t->nengine, "tid", num);

	weft_report *r = &t->report;
	weft_uuid_new(r->run_id);
	snprintf(r->backend, sizeof(r->backend), "%s", f->backend);
	snprintf(r->node, sizeof(r->node), "%s", f->node);
	r->started_ns = f->started;
	r->ended_ns = f->ended;
	r->exit_code = f->failed || f->unfinished ? 1 : 0;
	int err = collect_ranges(w, last, ranges, nranges, r);
	if (f->per_actor && f->calls > 1)
		weft_report_warn(r,
				 "%zu calls of actor %s recorded as one "
				 "task (ray actor granularity 'actor')",
				 f->calls, m->actor_id);
	if (f->shared)
		weft_report_warn(r, "ran at the same time as other tasks of "
				    "its worker process: its records include "
				    "what they did meanwhile");
	if (f->unfinished)
		weft_report_warn(r, "did not end before its worker exited");
	else if (f->failed)
		weft_report_warn(r, "raised an exception");
	return err;
}

static int make_task(const weft_ray_wrapper *w, const struct group *g,
		     const weft_report *worker, const char *node,
		     const weft_report *last, const int *owners,
		     weft_ray_task *t)
{
	struct wr_task_facts f = {
		.first = &w->msgs[g->first],
		.per_actor = g->key[0] == 'a',
		.failed = g->failed,
		.unfinished = g->unfinished,
		.calls = g->calls,
		.started = g->started,
		.ended = g->ended,
		.node = node,
		.backend = worker->backend,
	};
	for (size_t i = 0; i < g->nranges; i++)
		for (size_t k = g->ranges[i].from; k <= g->ranges[i].to; k++)
			f.shared |= owners[k] > 1;
	return wr_build_task(w, &f, g->ranges, g->nranges, last, t);
}

/* Ray's ids name the worker when its environment did not: the first
 * message that has them (the same rule for tasks recorded during the run
 * and at the end). */
const struct wr_msg *wr_naming_msg(const weft_ray_wrapper *w)
{
	for (size_t i = 0; i < w->nmsgs; i++)
		if (w->msgs[i].job_id[0] && w->msgs[i].worker_id[0])
			return &w->msgs[i];
	return NULL;
}

/* Marker j was just cut: the message it follows, and when that is an end,
 * its task. The message is there already (the shim opens the marker only
 * after the wrapper answered), but so may be later ones of the thread
 * when the tracer's events come late (eBPF, preload): it is the first of
 * the thread after the last one matched whose seq % 8 is the marker's;
 * those passed over lost their marker. Pairing follows pair()'s rule (the
 * innermost begin of the thread whose task id matches), so the end of the
 * run agrees about what was recorded here. */
void wr_task_marked(weft_ray_wrapper *w, size_t j)
{
	pid_t tid = w->marks[j].tid;
	struct wr_msg m;
	size_t at = SIZE_MAX;
	pthread_mutex_lock(&w->lock);
	size_t from = 0;
	for (size_t i = w->nmsgs; i-- > 0;)
		if (w->msgs[i].tid == tid && w->msgs[i].cut >= 0) {
			from = i + 1;
			break;
		}
	for (size_t i = from; i < w->nmsgs; i++)
		if (w->msgs[i].tid == tid &&
		    w->msgs[i].seq % WR_NMARKS == (uint64_t)w->marks[j].idx) {
			w->msgs[i].cut = (long)j;
			m = w->msgs[i];
			at = i;
			break;
		}
	pthread_mutex_unlock(&w->lock);
	if (at == SIZE_MAX)
		return;
	if (m.begin) {
		if (w->nopen == w->capopen) {
			size_t cap = w->capopen ? 2 * w->capopen : 8;
			struct wr_open_task *o =
				realloc(w->open, cap * sizeof(*o));
			if (!o)
				return; /* the end of the run pairs it */
			w->open = o;
			w->capopen = cap;
		}
		w->open[w->nopen++] = (struct wr_open_task){at, m};
		return;
	}
	size_t k = w->nopen;
	while (k > 0 && w->open[k - 1].m.tid != tid)
		k--;
	if (k == 0)
		return; /* an end without its begin */
	struct wr_open_task b = w->open[k - 1];
	if (b.m.task_id[0] && m.task_id[0] &&
	    strcmp(b.m.task_id, m.task_id) != 0)
		return; /* not its end */
	memmove(&w->open[k - 1], &w->open[k],
		(w->nopen - k) * sizeof(*w->open));
	w->nopen--;
	/* Shared: another task ended inside this one, or is still open and
	 * began before this one ended. */
	bool shared = w->last_end_cut > b.m.cut;
	for (size_t i = 0; i < w->nopen; i++)
		shared |= w->open[i].m.cut < (long)j;
	if ((long)j > w->last_end_cut)
		w->last_end_cut = (long)j;
	if (w->record &&
	    !(w->g == WEFT_RAY_PER_ACTOR && b.m.actor && b.m.actor_id[0]))
		wr_record_now(w, &b, &m, j, shared);
}

int wr_cut_run(weft_ray_wrapper *w, weft_report *worker, const char *node,
	       weft_ray_task **tasks, size_t *ntasks)
{
	/* The last window is what the tracer left in worker->files. */
	weft_report last;
	weft_report_init(&last);
	last.files = worker->files;
	last.nfiles = worker->nfiles;
	worker->files = NULL;
	worker->nfiles = 0;
	size_t nwin = w->nmarks + 1, n = w->nmsgs, ng = 0, unseen = 0;
	size_t *order = malloc(n * sizeof(*order));
	int *owners = calloc(nwin, sizeof(*owners));
	bool *mine = calloc(nwin, sizeof(*mine));
	struct group *g = NULL;
	int err = order && owners && mine ? WEFT_OK : WEFT_ENOMEM;
	if (!err) {
		/* Markers were matched to messages as they came. */
		for (size_t i = 0; i < n; i++)
			order[i] = i;
		sort_base = w->msgs;
		qsort(order, n, sizeof(*order), by_tid);
		err = pair(w, order, nwin, &g, &ng, &unseen);
	}
	for (size_t i = 0; !err && i < ng; i++)
		for (size_t r = 0; r < g[i].nranges; r++)
			for (size_t k = g[i].ranges[r].from;
			     k <= g[i].ranges[r].to; k++)
				owners[k]++;
	weft_ray_task *t = NULL;
	size_t room = ng + w->nunrecorded;
	if (!err && room && !(t = calloc(room, sizeof(*t))))
		err = WEFT_ENOMEM;
	size_t made = 0;
	for (size_t i = 0; !err && i < ng; i++)
		if (!g[i].done)
			err = make_task(w, &g[i], worker, node, &last, owners,
					&t[made++]);
	/* Those the recorder could not spool: recorded by the caller. */
	for (size_t i = 0; !err && i < w->nunrecorded; i++) {
		t[made++] = *w->unrecorded[i];
		free(w->unrecorded[i]);
		w->unrecorded[i] = NULL;
	}
	if (!err)
		w->nunrecorded = 0;
	if (err == WEFT_OK) {
		for (size_t k = 0; k < nwin; k++)
			mine[k] = owners[k] == 0;
		err = collect(w, &last, nwin, mine, worker);
	}
	if (!err && unseen)
		weft_report_warn(
			worker,
			"%zu Ray tasks' boundaries were not seen by the "
			"tracer: their I/O is in this worker's record",
			unseen);
	for (size_t i = 0; i < ng; i++)
		free(g[i].ranges);
	free(g);
	free(order);
	free(owners);
	free(mine);
	if (err) {
		/* Whole again: every window back into the worker. */
		weft_ray_tasks_free(t, made);
		bool *all = malloc(nwin * sizeof(*all));
		for (size_t k = 0; all && k < nwin; k++)
			all[k] = true;
		for (size_t i = 0; i < worker->nfiles; i++)
			weft_file_rec_release(&worker->files[i]);
		free(worker->files);
		worker->files = NULL;
		worker->nfiles = 0;
		if (!all || collect(w, &last, nwin, all, worker) != WEFT_OK) {
			weft_report_warn(worker, "out of memory: file records "
						 "lost");
		}
		free(all);
		weft_report_release(&last);
		wr_say(w,
		       "wrap --ray: cannot cut the worker's run into tasks: "
		       "%s; it is recorded whole",
		       weft_strerror(err));
		return -1;
	}
	weft_report_release(&last);
	if (w->verbose)
		wr_say(w,
		       "wrap --ray: %zu task%s (%zu recorded as they "
		       "ended), %zu boundaries seen, %zu control messages\n",
		       made + w->recorded, made + w->recorded == 1 ? "" : "s",
		       w->recorded, w->nmarks, w->nmsgs);
	*tasks = t;
	*ntasks = made;
	return 0;
}
