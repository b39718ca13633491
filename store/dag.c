/*
 * dag.c - the lineage DAG: tasks (runs) joined through the file versions
 * they read and wrote (DESIGN.md "Store and DAG: lineage by file version").
 *
 * An artifact is a version: one content at one location. Every write
 * makes a version of its own, even when the bytes equal another's, so a
 * task depends on another exactly when it read, at the same location, a
 * version the other wrote (versions.c decides which). A read whose
 * version no recorded task wrote is of a "source" version, shared by every
 * reader of that content there; a read whose version is not known is
 * weak: linked to the last writer before it, or to an "unknown" version
 * of its own. Equal bytes elsewhere are listed apart, as "same content",
 * never as an edge.
 *
 * Ids are derived from what the version is (its writer's run id and its
 * location, or its location and hash), so the same records give the same
 * ids in any store they were pulled into. Everything is ordered by the
 * store's order (runs by start time, then insertion; a run's files by path
 * bytes): the same store always gives the same DAG.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_internal.h"

static uint64_t mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

int store_grow(void **arr, size_t *cap, size_t n, size_t sz)
{
	if (n < *cap)
		return WEFT_OK;
	size_t ncap = *cap ? *cap * 2 : 64;
	void *p = realloc(*arr, ncap * sz);
	if (!p)
		return WEFT_ENOMEM;
	*arr = p;
	*cap = ncap;
	return WEFT_OK;
}

void *store_slot(void **arr, size_t *cap, size_t n, size_t sz)
{
	if (store_grow(arr, cap, n, sz))
		return NULL;
	char *p = (char *)*arr + n * sz;
	memset(p, 0, sz);
	return p;
}

static char **member(void *obj, size_t off)
{
	return (char **)((char *)obj + off);
}

void store_release_members(void *obj, const size_t *offs)
{
	for (const size_t *o = offs; *o != STORE_MEMBERS_END; o++)
		free(*member(obj, *o));
}

void store_free_members(void *arr, size_t n, size_t sz, const size_t *offs)
{
	for (size_t i = 0; i < n; i++)
		store_release_members((char *)arr + i * sz, offs);
	free(arr);
}

int store_dup_members(void *dst, const void *src, const size_t *offs)
{
	int err = WEFT_OK;
	for (const size_t *o = offs; *o != STORE_MEMBERS_END; o++) {
		const char *s = *member((void *)src, *o);
		char **d = member(dst, *o);
		*d = s ? strdup(s) : NULL;
		if (s && !*d)
			err = WEFT_ENOMEM;
	}
	return err;
}

const size_t store_task_strings[] = {
	offsetof(weft_dag_task, id),         offsetof(weft_dag_task, name),
	offsetof(weft_dag_task, node),       offsetof(weft_dag_task, backend),
	offsetof(weft_dag_task, parent),     offsetof(weft_dag_task, exe),
	offsetof(weft_dag_task, started_by), STORE_MEMBERS_END};

const size_t store_artifact_strings[] = {
	offsetof(weft_dag_artifact, id), offsetof(weft_dag_artifact, path),
	offsetof(weft_dag_artifact, loc_fs),
	offsetof(weft_dag_artifact, loc_path), STORE_MEMBERS_END};

char *store_column_dup(sqlite3_stmt *st, int i)
{
	if (sqlite3_column_type(st, i) == SQLITE_NULL)
		return NULL;
	int n = sqlite3_column_bytes(st, i);
	const void *p = sqlite3_column_blob(st, i);
	char *s = malloc((size_t)n + 1);
	if (s) {
		if (n)
			memcpy(s, p, (size_t)n);
		s[n] = '\0';
	}
	return s;
}

int store_task_read(sqlite3_stmt *st, weft_dag_task *t)
{
	memset(t, 0, sizeof(*t));
	t->id = store_column_dup(st, 1);
	t->node = store_column_dup(st, 2);
	t->backend = store_column_dup(st, 3);
	t->exit_code = sqlite3_column_int(st, 4);
	t->parts_stored = (uint32_t)sqlite3_column_int64(st, 8);
	t->nparts = (uint32_t)sqlite3_column_int64(st, 9);
	/* A task's own name (a fragment's) before its command. */
	if (sqlite3_column_bytes(st, 6) > 0)
		t->name = store_column_dup(st, 6);
	else
		t->name = store_join_argv(sqlite3_column_blob(st, 5),
					  (size_t)sqlite3_column_bytes(st, 5));
	if (sqlite3_column_type(st, 7) != SQLITE_NULL &&
	    !(t->parent = store_column_dup(st, 7)))
		return WEFT_ENOMEM;
	if (!t->id || !t->node || !t->backend || !t->name)
		return WEFT_ENOMEM;
	if (!t->node[0]) {
		/* An unknown node is null in the DAG. */
		free(t->node);
		t->node = NULL;
	}
	return WEFT_OK;
}

static int load_tasks(weft_store *s, const char *job, weft_dag *d,
		      sqlite3_int64 **nums)
{
	/* The job spelled out, so that runs_by_job is used (load_rows). */
	sqlite3_stmt *st;
	int err = store_prepare_job(s,
				    job ? STORE_TASKS_SQL("WHERE r.job = ?1 ")
					: STORE_TASKS_SQL(""),
				    job, &st);
	if (err)
		return err;
	size_t cap = 0, ncap = 0;
	int rc;
	while (!err && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		if ((err = store_grow((void **)&d->tasks, &cap, d->ntasks,
				      sizeof(*d->tasks))) ||
		    (err = store_grow((void **)nums, &ncap, d->ntasks,
				      sizeof(**nums))))
			break;
		(*nums)[d->ntasks] = sqlite3_column_int64(st, 0);
		/* Counted first, so that release frees a partial one. */
		err = store_task_read(st, &d->tasks[d->ntasks++]);
	}
	if (!err && rc != SQLITE_DONE)
		err = WEFT_EDB;
	sqlite3_finalize(st);
	return err;
}

/* ---- Building: nodes by row, edges by index, ids at the end ---- */

/* A source version is shared by its readers: keyed by location and
 * artifact id. */
struct source_slot {
	uint64_t loc;
	sqlite3_int64 art;
	size_t node; /* node index + 1; 0 empty */
};

struct pending_edge {
	size_t task, node, row;
	bool write, weak, update;
};

/* Process level: a run's processes (schema 3 rows) and each file row's
 * touches, loaded in the rows' order. */
struct pinfo {
	sqlite3_int64 seq, parent; /* parent -1: none */
	int32_t pid;
	int32_t exit_code;
	bool exited, by_exec;
	uint32_t argc;
	char *argv; /* NUL-separated, as stored */
	size_t argv_len;
	char *exe;
	ssize_t task; /* its DAG task, or -1 */
};

struct ptouch {
	uint32_t proc, flags, src;
	ssize_t node; /* the version it wrote (interim or final), or -1 */
};

struct dag_build {
	weft_dag *d;
	bool processes;
	struct pinfo *procs;    /* by task, in seq order */
	size_t nprocs, procs_cap;
	size_t *task_procs;     /* per run task: its first in procs[] */
	size_t *task_nprocs;
	struct ptouch *touches; /* by row */
	size_t ntouches, touches_cap;
	size_t *row_touches;    /* per row: its first in touches[] */
	size_t *row_ntouches;
	size_t *node_task;      /* per node: the task its id is made from */
	size_t node_task_cap;
	const struct vrow *rows;
	const sqlite3_int64 *nums; /* runs.num per task */
	char **fs_names;           /* by filesystems.id */
	size_t nfs, fs_cap;
	size_t *row_task;      /* per row: its task */
	ssize_t *written_node; /* per row: the version it wrote, or -1 */
	size_t *node_row;      /* per node: the row that names it */
	size_t nodes_cap, node_row_cap;
	struct source_slot *sources;
	size_t sources_cap, nsources;
	struct pending_edge *edges;
	size_t nedges, edges_cap;
};

/* A version node named by row; task: the task its id is made from. */
static int node_new_for(struct dag_build *b, int kind, size_t row, size_t task,
			size_t *out)
{
	weft_dag *d = b->d;
	int err = store_grow((void **)&d->artifacts, &b->nodes_cap,
			     d->nartifacts, sizeof(*d->artifacts));
	if (!err)
		err = store_grow((void **)&b->node_row, &b->node_row_cap,
				 d->nartifacts, sizeof(*b->node_row));
	if (!err)
		err = store_grow((void **)&b->node_task, &b->node_task_cap,
				 d->nartifacts, sizeof(*b->node_task));
	if (err)
		return err;
	weft_dag_artifact *a = &d->artifacts[d->nartifacts];
	memset(a, 0, sizeof(*a));
	a->kind = kind;
	b->node_row[d->nartifacts] = row;
	b->node_task[d->nartifacts] = task;
	*out = d->nartifacts++;
	return WEFT_OK;
}

static int node_new(struct dag_build *b, int kind, size_t row, size_t *out)
{
	return node_new_for(b, kind, row, b->row_task[row], out);
}

static int written_node(struct dag_build *b, size_t row, size_t *out)
{
	if (b->written_node[row] >= 0) {
		*out = (size_t)b->written_node[row];
		return WEFT_OK;
	}
	int err = node_new(b, WEFT_VERSION_WRITTEN, row, out);
	if (!err)
		b->written_node[row] = (ssize_t)*out;
	return err;
}

static int source_node(struct dag_build *b, size_t row, size_t *out)
{
	const struct vrow *r = &b->rows[row];
	if (b->nsources + 1 > b->sources_cap / 2) {
		size_t cap = b->sources_cap ? b->sources_cap * 2 : 256;
		struct source_slot *t = calloc(cap, sizeof(*t));
		if (!t)
			return WEFT_ENOMEM;
		for (size_t i = 0; i < b->sources_cap; i++) {
			if (!b->sources[i].node)
				continue;
			size_t j = mix64(b->sources[i].loc ^
					 (uint64_t)b->sources[i].art) &
				   (cap - 1);
			while (t[j].node)
				j = (j + 1) & (cap - 1);
			t[j] = b->sources[i];
		}
		free(b->sources);
		b->sources = t;
		b->sources_cap = cap;
	}
	size_t mask = b->sources_cap - 1;
	size_t i = mix64(r->loc ^ (uint64_t)r->read_art) & mask;
	for (; b->sources[i].node; i = (i + 1) & mask)
		if (b->sources[i].loc == r->loc &&
		    b->sources[i].art == r->read_art) {
			*out = b->sources[i].node - 1;
			return WEFT_OK;
		}
	int err = node_new(b, WEFT_VERSION_SOURCE, row, out);
	if (err)
		return err;
	b->sources[i] = (struct source_slot){r->loc, r->read_art, *out + 1};
	b->nsources++;
	return WEFT_OK;
}

static int edge_add_for(struct dag_build *b, size_t task, size_t row,
			size_t node, bool write, bool weak, bool update)
{
	int err = store_grow((void **)&b->edges, &b->edges_cap, b->nedges,
			     sizeof(*b->edges));
	if (err)
		return err;
	b->edges[b->nedges++] =
		(struct pending_edge){task, node, row, write, weak, update};
	return WEFT_OK;
}

static int edge_add(struct dag_build *b, size_t row, size_t node, bool write,
		    bool weak, bool update)
{
	return edge_add_for(b, b->row_task[row], row, node, write, weak,
			    update);
}

/* The version row i's run read (the one it found at its first open):
 * another row's write, a source version, or an unknown one (weak). */
static int input_node(struct dag_build *b, size_t i, size_t *node, bool *weak)
{
	const struct vrow *r = &b->rows[i];
	if (r->src >= 0) {
		*weak = r->weak;
		return written_node(b, (size_t)r->src, node);
	}
	if (r->read_art) {
		*weak = false;
		return source_node(b, i, node);
	}
	*weak = true;
	return node_new(b, WEFT_VERSION_UNKNOWN, i, node);
}

static int process_edges(struct dag_build *b, size_t i);

/* The nodes and edges of every row, in row order. */
static int build_edges(struct dag_build *b, size_t nrows)
{
	int err = WEFT_OK;
	for (size_t i = 0; !err && i < nrows; i++) {
		const struct vrow *r = &b->rows[i];
		size_t node;
		if (b->processes && b->row_ntouches && b->row_ntouches[i]) {
			err = process_edges(b, i);
			continue;
		}
		if (r->flags & (VR_READ | VR_UPDATED)) {
			bool weak;
			err = input_node(b, i, &node, &weak);
			if (!err)
				err = edge_add(b, i, node, false, weak,
					       r->flags & VR_UPDATED);
		}
		if (!err && (r->flags & VR_WRITTEN) && !(r->flags & VR_GONE)) {
			err = written_node(b, i, &node);
			if (!err)
				err = edge_add(b, i, node, true, !r->art,
					       false);
		}
	}
	return err;
}

static void fnv(uint64_t *h, const void *p, size_t n)
{
	const uint8_t *s = p;
	for (size_t i = 0; i < n; i++)
		*h = (*h ^ s[i]) * 0x100000001b3ULL;
}

static void fnv_str(uint64_t *h, const char *s)
{
	fnv(h, s ? s : "", s ? strlen(s) + 1 : 1);
}

int store_version_fill(weft_dag_artifact *a, const struct vrow *r,
		       const char *fs, const weft_dag_task *task)
{
	bool written = a->kind == WEFT_VERSION_WRITTEN;
	const uint8_t *hash =
		written ? (r->art ? r->hash : NULL)
		: a->kind == WEFT_VERSION_SOURCE && r->read_art ? r->read_hash
								: NULL;
	if (hash) {
		a->has_hash = true;
		memcpy(a->hash, hash, 32);
	}
	if (a->kind == WEFT_VERSION_INTERIM)
		; /* what it held in between is not known */
	else if (written ? r->size >= 0 : (r->flags & VR_FIRST) != 0) {
		a->has_size = true;
		a->size = written ? r->size : r->first_size;
	}
	bool located = fs && r->loc_path;
	if (!(a->path = strdup(r->path)) ||
	    (located && (!(a->loc_fs = strdup(fs)) ||
			 !(a->loc_path = strdup(r->loc_path)))))
		return WEFT_ENOMEM;
	/* The id from what the version is: its writer (or reader) and its
	 * location, or for a source version its location and content. */
	uint64_t h = 0xcbf29ce484222325ULL;
	static const char kinds[] = "wsui";
	fnv(&h, &kinds[a->kind], 1);
	if (a->kind != WEFT_VERSION_SOURCE)
		fnv_str(&h, task->id);
	fnv_str(&h, located ? fs : task->node);
	fnv_str(&h, located ? r->loc_path : r->path);
	if (a->kind == WEFT_VERSION_SOURCE)
		fnv(&h, hash, 32);
	if (!(a->id = malloc(19)))
		return WEFT_ENOMEM;
	snprintf(a->id, 19, "v:%016llx", (unsigned long long)h);
	return WEFT_OK;
}

int store_edge_fill(weft_dag_edge *e, const weft_dag_task *task,
		    const weft_dag_artifact *a, const struct vrow *r,
		    bool write, bool weak, bool update)
{
	/* Borrowed: the ids of the DAG's own task and artifact. */
	e->from = write ? task->id : a->id;
	e->to = write ? a->id : task->id;
	e->write = write;
	e->weak = weak;
	e->update = update;
	/* The name this task used, where the artifact shows another. */
	const char *used = r->used ? r->used : r->path;
	if (strcmp(used, a->path) != 0 && !(e->path = strdup(used)))
		return WEFT_ENOMEM;
	return WEFT_OK;
}

static const char *fs_name(const struct dag_build *b, const struct vrow *r)
{
	return r->loc_fs > 0 && (size_t)r->loc_fs < b->nfs
		       ? b->fs_names[r->loc_fs]
		       : NULL;
}

static int edges_finish(struct dag_build *b)
{
	weft_dag *d = b->d;
	d->edges = calloc(b->nedges ? b->nedges : 1, sizeof(*d->edges));
	if (!d->edges)
		return WEFT_ENOMEM;
	for (size_t i = 0; i < b->nedges; i++) {
		const struct pending_edge *p = &b->edges[i];
		int err = store_edge_fill(&d->edges[d->nedges++],
					  &d->tasks[p->task],
					  &d->artifacts[p->node],
					  &b->rows[p->row], p->write, p->weak,
					  p->update);
		if (err)
			return err;
	}
	return WEFT_OK;
}

static int by_art(const void *x, const void *y, void *ctx)
{
	const weft_dag_artifact *arts = ctx;
	const weft_dag_artifact *a = &arts[*(const size_t *)x];
	const weft_dag_artifact *c = &arts[*(const size_t *)y];
	int r = memcmp(a->hash, c->hash, 32);
	if (r)
		return r;
	return *(const size_t *)x < *(const size_t *)y ? -1 : 1;
}

static bool same_location(const weft_dag_artifact *a,
			  const weft_dag_artifact *c)
{
	if (!a->loc_fs || !c->loc_fs)
		return !a->loc_fs && !c->loc_fs && !strcmp(a->path, c->path);
	return !strcmp(a->loc_fs, c->loc_fs) &&
	       !strcmp(a->loc_path, c->loc_path);
}

static bool same_content_candidate(const weft_dag_artifact *s)
{
	return s->kind == WEFT_VERSION_SOURCE && s->has_hash && s->has_size &&
	       s->size >= WEFT_DAG_SAME_CONTENT_MIN;
}

/* Source versions whose bytes a task wrote elsewhere. */
static int same_content(weft_dag *d)
{
	size_t nw = 0, cap = 0, nsrc = 0;
	size_t *w = NULL;
	int err = WEFT_OK;
	for (size_t i = 0; i < d->nartifacts; i++)
		nsrc += same_content_candidate(&d->artifacts[i]);
	if (!nsrc)
		return WEFT_OK; /* nothing to look for: no sort */
	for (size_t i = 0; !err && i < d->nartifacts; i++)
		if (d->artifacts[i].kind == WEFT_VERSION_WRITTEN &&
		    d->artifacts[i].has_hash &&
		    !(err = store_grow((void **)&w, &cap, nw, sizeof(*w))))
			w[nw++] = i;
	if (err || !nw) {
		free(w);
		return err;
	}
	qsort_r(w, nw, sizeof(*w), by_art, d->artifacts);
	size_t same_cap = 0;
	for (size_t i = 0; !err && i < d->nartifacts; i++) {
		const weft_dag_artifact *s = &d->artifacts[i];
		if (!same_content_candidate(s))
			continue;
		size_t lo = 0, hi = nw;
		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;
			if (memcmp(d->artifacts[w[mid]].hash, s->hash, 32) < 0)
				lo = mid + 1;
			else
				hi = mid;
		}
		for (; !err && lo < nw &&
		       !memcmp(d->artifacts[w[lo]].hash, s->hash, 32);
		     lo++) {
			const weft_dag_artifact *o = &d->artifacts[w[lo]];
			if (same_location(s, o))
				continue;
			if ((err = store_grow((void **)&d->same, &same_cap,
					      d->nsame, sizeof(*d->same))))
				break;
			weft_dag_same *m = &d->same[d->nsame++];
			m->artifact = strdup(s->id);
			m->same_as = strdup(o->id);
			if (!m->artifact || !m->same_as)
				err = WEFT_ENOMEM;
		}
	}
	free(w);
	return err;
}

/* The first task from task on (the tasks are in the order of the rows
 * read) of the run num; ntasks when none is. */
static size_t task_at_run(const struct dag_build *b, size_t task,
			  sqlite3_int64 run)
{
	while (task < b->d->ntasks && b->nums[task] != run)
		task++;
	return task;
}

static int fs_name_row(sqlite3_stmt *st, void *ctx)
{
	struct dag_build *b = ctx;
	sqlite3_int64 id = sqlite3_column_int64(st, 0);
	if (id <= 0 || id > (1 << 24))
		return WEFT_OK; /* not one a row could name sensibly */
	int err = WEFT_OK;
	while (!err && b->nfs <= (size_t)id) {
		err = store_grow((void **)&b->fs_names, &b->fs_cap, b->nfs,
				 sizeof(char *));
		if (!err)
			b->fs_names[b->nfs++] = NULL;
	}
	if (!err && !(b->fs_names[id] = store_column_dup(st, 1)))
		err = WEFT_ENOMEM;
	return err;
}

static int load_fs_names(weft_store *s, struct dag_build *b)
{
	return store_query(s, "SELECT id, name FROM filesystems ORDER BY id",
			   fs_name_row, b);
}

/* Every file row of the DAG, with its task, in the tasks' order. */
static int load_rows(weft_store *s, const char *job, struct dag_build *b,
		     struct vrow **rows, size_t *nrows,
		     struct vrow_names *names)
{
	/* With the job spelled out, SQLite walks runs_by_job in run order
	 * and each run's file_io by its key, sorting only within a run. */
	char sql[2048];
	snprintf(sql, sizeof(sql),
		 "SELECT %s FROM runs r JOIN file_io f ON f.run = r.num %s "
		 "WHERE %s (f.read OR f.written OR f.updated) "
		 "ORDER BY r.started_ns, r.num, p.path",
		 store_vrow_sql_columns, store_vrow_sql_joins,
		 job ? "r.job = ?1 AND" : "");
	sqlite3_stmt *st;
	int err = store_prepare_job(s, sql, job, &st);
	if (err)
		return err;
	size_t cap = 0, tcap = 0, task = 0;
	int rc;
	while (!err && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		if ((err = store_grow((void **)rows, &cap, *nrows,
				      sizeof(**rows))) ||
		    (err = store_grow((void **)&b->row_task, &tcap, *nrows,
				      sizeof(*b->row_task))))
			break;
		struct vrow *v = &(*rows)[(*nrows)++];
		err = store_vrow_read(st, names, v);
		/* Same order as the tasks: advance to this row's run. */
		task = task_at_run(b, task, v->run);
		if (task == b->d->ntasks)
			err = err ? err : WEFT_EDB;
		b->row_task[*nrows - 1] = task;
	}
	if (!err && rc != SQLITE_DONE)
		err = WEFT_EDB;
	sqlite3_finalize(st);
	return err;
}

/* ---- Process level ---- */

/* A row's path against a stored one, as SQLite orders BLOBs: bytes, then
 * length. */
static int path_cmp(const char *a, const char *b, size_t blen)
{
	size_t alen = strlen(a);
	int r = memcmp(a, b, alen < blen ? alen : blen);
	return r ? r : (alen > blen) - (alen < blen);
}


/* Every indexed process of the DAG's runs, and the touches of every row,
 * both in the rows' order (runs by start, a run's files by path bytes). */
static int load_attribution(weft_store *s, const char *job,
			    struct dag_build *b, const struct vrow *rows,
			    size_t nrows)
{
	weft_dag *d = b->d;
	char sql[1024];
	sqlite3_stmt *st;
	size_t nt = d->ntasks;
	b->task_procs = calloc(nt ? nt : 1, sizeof(*b->task_procs));
	b->task_nprocs = calloc(nt ? nt : 1, sizeof(*b->task_nprocs));
	b->row_touches = calloc(nrows ? nrows : 1, sizeof(*b->row_touches));
	b->row_ntouches = calloc(nrows ? nrows : 1, sizeof(*b->row_ntouches));
	if (!b->task_procs || !b->task_nprocs || !b->row_touches ||
	    !b->row_ntouches)
		return WEFT_ENOMEM;
	snprintf(sql, sizeof(sql),
		 "SELECT r.num, pr.seq, pr.pid, pr.argc, pr.argv, pr.exe, "
		 "pr.exit_code, pr.exited, pr.parent, pr.by_exec FROM runs r "
		 "JOIN processes pr ON pr.run = r.num WHERE %s pr.indexed "
		 "ORDER BY r.started_ns, r.num, pr.seq",
		 job ? "r.job = ?1 AND" : "");
	int err = store_prepare_job(s, sql, job, &st);
	if (err)
		return err;
	size_t task = 0;
	int rc;
	while (!err && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		task = task_at_run(b, task, sqlite3_column_int64(st, 0));
		if (task == nt) {
			err = WEFT_EDB;
			break;
		}
		struct pinfo *p = store_slot((void **)&b->procs, &b->procs_cap,
					     b->nprocs, sizeof(*p));
		if (!p) {
			err = WEFT_ENOMEM;
			break;
		}
		if (!b->task_nprocs[task])
			b->task_procs[task] = b->nprocs;
		b->nprocs++;
		p->task = -1;
		p->seq = sqlite3_column_int64(st, 1);
		p->pid = sqlite3_column_int(st, 2);
		p->argc = (uint32_t)sqlite3_column_int64(st, 3);
		p->argv_len = (size_t)sqlite3_column_bytes(st, 4);
		p->argv = store_column_dup(st, 4);
		p->exe = store_column_dup(st, 5);
		p->exit_code = sqlite3_column_int(st, 6);
		p->exited = sqlite3_column_int(st, 7) != 0;
		p->parent = sqlite3_column_type(st, 8) == SQLITE_NULL
				    ? -1
				    : sqlite3_column_int64(st, 8);
		p->by_exec = sqlite3_column_int(st, 9) != 0;
		b->task_nprocs[task]++;
		/* seq is the index touches name: 0, 1, 2... in a run. */
		if (!p->argv || p->seq != (sqlite3_int64)b->task_nprocs[task] - 1)
			err = p->argv ? WEFT_EDB : WEFT_ENOMEM;
	}
	if (!err && rc != SQLITE_DONE)
		err = WEFT_EDB;
	sqlite3_finalize(st);
	if (err)
		return err;

	snprintf(sql, sizeof(sql),
		 "SELECT r.num, p.path, t.proc, t.flags, t.src FROM runs r "
		 "JOIN touches t ON t.run = r.num JOIN paths p ON "
		 "p.id = t.path %s ORDER BY r.started_ns, r.num, p.path, "
		 "t.proc",
		 job ? "WHERE r.job = ?1" : "");
	if ((err = store_prepare_job(s, sql, job, &st)))
		return err;
	task = 0;
	size_t row = 0;
	while (!err && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		task = task_at_run(b, task, sqlite3_column_int64(st, 0));
		const char *path = (const char *)sqlite3_column_blob(st, 1);
		int plen = sqlite3_column_bytes(st, 1);
		/* The row of (task, path), if the DAG has one (rows of a
		 * file only deleted are not loaded). Both lists are in
		 * (run, path bytes) order. */
		int c = 1;
		while (row < nrows &&
		       (b->row_task[row] < task ||
			(b->row_task[row] == task &&
			 (c = path_cmp(rows[row].path, path, (size_t)plen)) < 0)))
			row++;
		if (row == nrows || b->row_task[row] != task || c != 0)
			continue;
		if ((err = store_grow((void **)&b->touches, &b->touches_cap,
				      b->ntouches, sizeof(*b->touches))))
			break;
		if (!b->row_ntouches[row])
			b->row_touches[row] = b->ntouches;
		uint32_t proc = (uint32_t)sqlite3_column_int64(st, 2);
		if (proc >= b->task_nprocs[task])
			continue; /* names no process stored: nothing to say */
		b->touches[b->ntouches++] = (struct ptouch){
			proc, (uint32_t)sqlite3_column_int64(st, 3),
			(uint32_t)sqlite3_column_int64(st, 4), -1};
		b->row_ntouches[row]++;
	}
	if (!err && rc != SQLITE_DONE)
		err = WEFT_EDB;
	sqlite3_finalize(st);
	return err;
}

static char **argv_split(const char *blob, size_t len, uint32_t argc)
{
	char **argv = calloc(argc ? argc : 1, sizeof(*argv));
	size_t off = 0;
	for (uint32_t i = 0; argv && i < argc; i++) {
		const char *a = off < len ? blob + off : "";
		if (!(argv[i] = strdup(a))) {
			for (uint32_t k = 0; k < i; k++)
				free(argv[k]);
			free(argv);
			return NULL;
		}
		off += strlen(a) + 1;
	}
	return argv;
}

/* The DAG task of process seq of run task, made (with the processes it
 * came from, so that started_by names a task) on first use. */
static int process_task(struct dag_build *b, size_t task, uint32_t seq,
			size_t *out)
{
	struct pinfo *p = &b->procs[b->task_procs[task] + seq];
	if (p->task >= 0) {
		*out = (size_t)p->task;
		return WEFT_OK;
	}
	size_t parent = SIZE_MAX;
	if (p->parent >= 0 && (size_t)p->parent < b->task_nprocs[task] &&
	    (uint32_t)p->parent < seq) {
		int err = process_task(b, task, (uint32_t)p->parent, &parent);
		if (err)
			return err;
	}
	weft_dag *d = b->d;
	weft_dag_task *t = realloc(d->tasks, (d->ntasks + 1) * sizeof(*t));
	if (!t)
		return WEFT_ENOMEM;
	d->tasks = t;
	const weft_dag_task *run = &d->tasks[task];
	t = &d->tasks[d->ntasks++];
	memset(t, 0, sizeof(*t));
	t->kind = WEFT_DAG_PROCESS;
	size_t n = strlen(run->id) + 24;
	if ((t->id = malloc(n)))
		snprintf(t->id, n, "%s/p%u", run->id, seq);
	t->name = store_join_argv(p->argv, p->argv_len);
	t->node = run->node ? strdup(run->node) : NULL;
	t->backend = strdup(run->backend);
	t->parent = strdup(run->id);
	t->pid = p->pid;
	t->argc = p->argc;
	t->argv = argv_split(p->argv, p->argv_len, p->argc);
	t->exe = p->exe ? strdup(p->exe) : NULL;
	t->exited = p->exited;
	t->exit_code = p->exited ? p->exit_code : 0;
	t->by_exec = p->by_exec;
	if (parent != SIZE_MAX)
		t->started_by = strdup(d->tasks[parent].id);
	if (!t->id || !t->name || (run->node && !t->node) || !t->backend ||
	    !t->parent || !t->argv || (p->exe && !t->exe) ||
	    (parent != SIZE_MAX && !t->started_by))
		return WEFT_ENOMEM;
	p->task = (ssize_t)(d->ntasks - 1);
	*out = (size_t)p->task;
	return WEFT_OK;
}

/* The version process proc of row i's run wrote there: the row's final
 * version when its write made what is there at the end, else one it
 * replaced or removed within the run. */
static int process_written(struct dag_build *b, size_t i, size_t k,
			   size_t ptask, size_t *node)
{
	struct ptouch *t = &b->touches[k];
	const struct vrow *r = &b->rows[i];
	if (t->node >= 0) {
		*node = (size_t)t->node;
		return WEFT_OK;
	}
	int err = (t->flags & WEFT_TOUCH_FINAL) && (r->flags & VR_WRITTEN) &&
				  !(r->flags & VR_GONE)
			  ? written_node(b, i, node)
			  : node_new_for(b, WEFT_VERSION_INTERIM, i, ptask,
					 node);
	if (!err)
		t->node = (ssize_t)*node;
	return err;
}

/* Row i, process by process: what each read (and from whom) and wrote. */
static int process_edges(struct dag_build *b, size_t i)
{
	size_t task = b->row_task[i], first = b->row_touches[i];
	size_t n = b->row_ntouches[i];
	const struct vrow *r = &b->rows[i];
	int err = WEFT_OK;
	for (size_t k = first; !err && k < first + n; k++) {
		const struct ptouch t = b->touches[k];
		size_t ptask, node;
		bool weak = t.flags & WEFT_TOUCH_WEAK;
		if ((err = process_task(b, task, t.proc, &ptask)))
			break;
		if (t.flags & (WEFT_TOUCH_READ | WEFT_TOUCH_UPDATED |
			       WEFT_TOUCH_RENAMED)) {
			bool update = t.flags & WEFT_TOUCH_UPDATED;
			bool edge = true;
			if (t.flags & WEFT_TOUCH_SRC_RUN) {
				/* Another process of the run wrote it (its
				 * own writes are no input of it). */
				size_t w = first;
				while (w < first + n &&
				       b->touches[w].proc != t.src)
					w++;
				size_t wtask;
				edge = t.src != t.proc && w < first + n;
				if (edge)
					err = process_task(b, task, t.src,
							   &wtask);
				if (edge && !err)
					err = process_written(b, i, w, wtask,
							      &node);
			} else if (t.flags & WEFT_TOUCH_SRC_UNKNOWN) {
				weak = true;
				err = node_new_for(b, WEFT_VERSION_UNKNOWN, i,
						   ptask, &node);
			} else {
				bool w;
				err = input_node(b, i, &node, &w);
				weak |= w;
			}
			if (!err && edge)
				err = edge_add_for(b, ptask, i, node, false,
						   weak, update);
		}
		if (!err && (t.flags & WEFT_TOUCH_WRITTEN)) {
			err = process_written(b, i, k, ptask, &node);
			/* The final version without a hash: as at run level. */
			bool unhashed =
				!err && !r->art &&
				b->d->artifacts[node].kind == WEFT_VERSION_WRITTEN;
			if (!err)
				err = edge_add_for(
					b, ptask, i, node, true,
					(t.flags & WEFT_TOUCH_WEAK) || unhashed,
					false);
		}
	}
	return err;
}

static int dag_build(weft_store *s, const char *job, bool processes,
		     weft_dag *out, struct dag_link **links);

int weft_store_dag(weft_store *s, const char *job, weft_dag *out)
{
	return dag_build(s, job, false, out, NULL);
}

int weft_store_dag_processes(weft_store *s, const char *job, weft_dag *out)
{
	return dag_build(s, job, true, out, NULL);
}

int store_dag_links(weft_store *s, const char *job, weft_dag *out,
		    struct dag_link **links)
{
	return dag_build(s, job, false, out, links);
}

static int dag_build(weft_store *s, const char *job, bool processes,
		     weft_dag *out, struct dag_link **links)
{
	memset(out, 0, sizeof(*out));
	s->errmsg[0] = '\0';
	struct dag_build b = {.d = out, .processes = processes};
	struct vrow *rows = NULL;
	struct vrow_names names = {0};
	size_t nrows = 0;
	sqlite3_int64 *nums = NULL;
	int err = WEFT_OK;
	if (job && !(out->job = strdup(job)))
		return WEFT_ENOMEM;
	/* One read transaction: tasks and edges from the same snapshot. */
	if ((err = store_exec(s, "BEGIN")))
		goto out;
	err = load_tasks(s, job, out, &nums);
	b.nums = nums;
	if (!err && job && out->ntasks == 0)
		err = WEFT_ENOTFOUND;
	if (!err)
		err = load_fs_names(s, &b);
	if (!err)
		err = load_rows(s, job, &b, &rows, &nrows, &names);
	if (!err && processes)
		err = load_attribution(s, job, &b, rows, nrows);
	if (err == WEFT_EDB)
		store_save_errmsg(s);
	sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
	if (!err)
		err = store_versions_resolve(rows, nrows);
	b.rows = rows;
	if (!err && nrows) {
		b.written_node = malloc(nrows * sizeof(*b.written_node));
		if (!b.written_node)
			err = WEFT_ENOMEM;
		for (size_t i = 0; !err && i < nrows; i++)
			b.written_node[i] = -1;
	}
	if (!err)
		err = build_edges(&b, nrows);
	for (size_t i = 0; !err && i < out->nartifacts; i++) {
		const struct vrow *r = &rows[b.node_row[i]];
		err = store_version_fill(&out->artifacts[i], r, fs_name(&b, r),
					 &out->tasks[b.node_task[i]]);
	}
	if (!err)
		err = edges_finish(&b);
	if (!err)
		err = same_content(out);
	if (!err && links) {
		*links = malloc((b.nedges ? b.nedges : 1) * sizeof(**links));
		if (!*links)
			err = WEFT_ENOMEM;
		for (size_t i = 0; !err && i < b.nedges; i++)
			(*links)[i] = (struct dag_link){b.edges[i].task,
							b.edges[i].node};
	}
out:
	store_vrows_free(rows, nrows, &names);
	for (size_t i = 0; i < b.nfs; i++)
		free(b.fs_names[i]);
	free(b.fs_names);
	free(nums);
	free(b.row_task);
	free(b.written_node);
	free(b.node_row);
	free(b.sources);
	free(b.edges);
	free(b.node_task);
	for (size_t i = 0; i < b.nprocs; i++) {
		free(b.procs[i].argv);
		free(b.procs[i].exe);
	}
	free(b.procs);
	free(b.task_procs);
	free(b.task_nprocs);
	free(b.touches);
	free(b.row_touches);
	free(b.row_ntouches);
	if (err)
		weft_dag_release(out);
	return err;
}

void weft_dag_release(weft_dag *d)
{
	static const size_t same_strings[] = {offsetof(weft_dag_same, artifact),
					      offsetof(weft_dag_same, same_as),
					      STORE_MEMBERS_END};
	for (size_t i = 0; i < d->ntasks; i++) {
		for (uint32_t a = 0; a < d->tasks[i].argc; a++)
			free(d->tasks[i].argv[a]);
		free(d->tasks[i].argv);
	}
	store_free_members(d->tasks, d->ntasks, sizeof(*d->tasks),
			   store_task_strings);
	store_free_members(d->artifacts, d->nartifacts, sizeof(*d->artifacts),
			   store_artifact_strings);
	for (size_t i = 0; i < d->nedges; i++) {
		free(d->edges[i].path); /* from and to are borrowed */
	}
	free(d->edges);
	store_free_members(d->same, d->nsame, sizeof(*d->same), same_strings);
	free(d->job);
	memset(d, 0, sizeof(*d));
}
