/*
 * lineage.c - the lineage of one file: the part of the DAG that leads to
 * its latest version (up: the task that wrote it, the versions that task
 * read, who wrote those...) or that it fed (down: the tasks that read it,
 * the versions they wrote...).
 *
 * Which version a read was of depends on every record at its location
 * (versions.c), so the walk loads whole locations, one query each
 * (a location's chain from loc_heads, schema step 12; records older than
 * locations by node and path, file_io_by_path_not_loc),
 * resolves them as the DAG does, and follows only what the lineage
 * reaches: the cost follows the size of the lineage, not of the store.
 * Artifacts, ids and edges are the DAG's own (dag.c fills them), and
 * store_lineage_test.c checks the walk against the whole DAG.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_internal.h"

/* The rows of one location, resolved, and the artifacts made of them:
 * a written version by its writer row, a source or unknown one by the
 * first row that read it. */
struct group {
	sqlite3_int64 loc_fs, loc_path; /* loc_path 0: no location, then */
	sqlite3_int64 path;             /* the path and node name it is */
	char *node;
	struct vrow *rows;
	size_t n;
	ssize_t *wnode, *rnode; /* per row: artifact index, or -1 */
};

enum {
	Q_TASK,   /* one run as a DAG task */
	Q_RUN,    /* a run's rows: where each file is, what the run did */
	Q_LOC,    /* every row at a location */
	Q_LEGACY, /* every row of a node and path that has no location */
	Q_PATH,   /* the rows that name a path (or reached it by a link) */
	Q_FS,     /* a filesystem's name */
	Q_NSTMT
};

/* One file row's place and role, as a run's or a path's rows give it. */
struct ref {
	sqlite3_int64 run, path, loc_fs, loc_path;
	char *node, *text; /* the run's node, the row's path */
	bool read, wrote;  /* read or updated; wrote a version still there */
};

#define REF_COLUMNS                                                            \
	"f.run, f.path, f.loc_fs, f.loc_path, r.node, p.path, "                \
	"f.read OR f.updated, "                                                \
	"f.written AND NOT f.deleted AND f.renamed_to IS NULL "
/* chain: the file_io records (columns `cols` of f, at least its key,
 * location and predecessor) of the locations whose heads `seed` (a FROM
 * and WHERE ending in f, the head's record) selects, and each record's
 * predecessor at the same location. A chain runs down file_io's key
 * (put.c keeps it so), and the walk takes only steps down: a damaged
 * store whose chain loops ends it all the same. */
#define CHAIN_SQL(cols, seed)                                                  \
	"chain AS (SELECT " cols " FROM " seed " UNION ALL SELECT " cols       \
	" FROM chain c CROSS JOIN file_io f ON f.run = c.prev_run "            \
	"AND f.path = c.prev_path WHERE (c.prev_run, c.prev_path) < "          \
	"(c.run, c.path) AND f.loc_path = c.loc_path "                         \
	"AND f.loc_fs = c.loc_fs) "
/* Every record at the location (?1, ?2), all columns: each record is
 * looked up once, by its key. */
#define LOC_CHAIN_SQL                                                          \
	"WITH RECURSIVE " CHAIN_SQL(                                           \
		"f.*", "loc_heads h CROSS JOIN file_io f ON f.run = h.run "    \
		       "AND f.path = h.path WHERE h.loc_path = ?1 AND "        \
		       "h.loc_fs = ?2 AND f.loc_path = ?1 AND f.loc_fs = ?2")
/* here: the id of the path ?1; chain: the records at every location of
 * that path (on any filesystem), keys only. */
#define PATH_CHAIN_SQL                                                         \
	"WITH RECURSIVE here(id) AS (SELECT id FROM paths WHERE path = "       \
	"?1), " CHAIN_SQL(                                                     \
		"f.run, f.path, f.loc_path, f.loc_fs, f.prev_run, "            \
		"f.prev_path",                                                 \
		"here CROSS JOIN loc_heads h ON h.loc_path = here.id "         \
		"CROSS JOIN file_io f ON f.run = h.run AND f.path = h.path "   \
		"WHERE f.loc_path = h.loc_path AND f.loc_fs = h.loc_fs")
#define ROWS_WHERE " AND (?9 IS NULL OR r.job = ?9) "                          \
	"AND (f.read OR f.written OR f.updated) "                              \
	"ORDER BY r.started_ns, r.num, p.path"

static const char *const fixed_sql[Q_NSTMT] = {
	[Q_TASK] = STORE_TASKS_SQL("WHERE r.num = ?1 "),
	[Q_RUN] = "SELECT " REF_COLUMNS
		  "FROM file_io f JOIN runs r ON r.num = f.run "
		  "JOIN paths p ON p.id = f.path WHERE f.run = ?1 "
		  "AND (f.read OR f.written OR f.updated) ORDER BY p.path",
	/* A record whose location is its path by its location's chain
	 * (loc_heads, then each record's predecessor), the others by
	 * file_io_by_path_not_loc (its WHERE written out, or SQLite would
	 * not use it), one reached by a link by file_io_by_used_path. */
	[Q_PATH] = PATH_CHAIN_SQL
	"SELECT " REF_COLUMNS "FROM file_io f JOIN runs r ON r.num = f.run "
	"JOIN paths p ON p.id = f.path "
	"WHERE ((f.run, f.path) IN (SELECT run, path FROM chain "
	"WHERE path = loc_path) "
	"OR (f.path = (SELECT id FROM here) "
	"AND f.loc_path IS NOT f.path) "
	"OR f.used_path = (SELECT id FROM here)) "
	"AND (?9 IS NULL OR r.job = ?9) "
	"AND (f.read OR f.written OR f.updated) "
	"ORDER BY r.started_ns, r.num",
	[Q_FS] = "SELECT name FROM filesystems WHERE id = ?1",
};

struct walk {
	weft_store *s;
	const char *job;
	bool down;
	weft_dag *d;
	sqlite3_stmt *st[Q_NSTMT];
	struct vrow_names names;
	struct group *groups;
	size_t ngroups, groups_cap;
	/* Tasks met (the walk's and those that name an artifact): */
	weft_dag_task *tasks;
	sqlite3_int64 *runs;
	ssize_t *out; /* per task met: its index in d->tasks, or -1 */
	size_t ntasks, tasks_cap, runs_cap, out_cap;
	/* Per artifact of the result: its group and row. */
	size_t *art_group, *art_row;
	size_t arts_cap, art_group_cap, art_row_cap, edges_cap, dtasks_cap;
	char **fs; /* filesystem names by id, read on use */
	size_t nfs;
};

static int step_done(sqlite3_stmt *st, int rc)
{
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? WEFT_OK : WEFT_EDB;
}

static void bind_job(struct walk *w, sqlite3_stmt *st)
{
	if (w->job)
		sqlite3_bind_text(st, 9, w->job, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, 9);
}

static const char *fs_name(struct walk *w, sqlite3_int64 id)
{
	if (id <= 0 || id > (1 << 24))
		return NULL;
	if ((size_t)id >= w->nfs) {
		size_t n = (size_t)id + 1;
		char **f = realloc(w->fs, n * sizeof(*f));
		if (!f)
			return NULL;
		memset(f + w->nfs, 0, (n - w->nfs) * sizeof(*f));
		w->fs = f;
		w->nfs = n;
	}
	if (!w->fs[id]) {
		sqlite3_stmt *st = w->st[Q_FS];
		sqlite3_bind_int64(st, 1, id);
		if (sqlite3_step(st) == SQLITE_ROW) {
			size_t n = (size_t)sqlite3_column_bytes(st, 0);
			if ((w->fs[id] = malloc(n + 1))) {
				memcpy(w->fs[id], sqlite3_column_blob(st, 0), n);
				w->fs[id][n] = '\0';
			}
		}
		sqlite3_reset(st);
	}
	return w->fs[id];
}

/* The task of run num, read on first sight (not yet in the result). */
static int task_met(struct walk *w, sqlite3_int64 num, size_t *out)
{
	for (size_t i = 0; i < w->ntasks; i++)
		if (w->runs[i] == num) {
			*out = i;
			return WEFT_OK;
		}
	int err = store_grow((void **)&w->tasks, &w->tasks_cap, w->ntasks,
			     sizeof(*w->tasks));
	if (!err)
		err = store_grow((void **)&w->runs, &w->runs_cap, w->ntasks,
				 sizeof(*w->runs));
	if (!err)
		err = store_grow((void **)&w->out, &w->out_cap, w->ntasks,
				 sizeof(*w->out));
	if (err)
		return err;
	sqlite3_stmt *st = w->st[Q_TASK];
	sqlite3_bind_int64(st, 1, num);
	int rc = sqlite3_step(st);
	if (rc != SQLITE_ROW)
		return step_done(st, rc == SQLITE_DONE ? SQLITE_ERROR : rc);
	w->runs[w->ntasks] = num;
	w->out[w->ntasks] = -1;
	*out = w->ntasks;
	err = store_task_read(st, &w->tasks[w->ntasks++]);
	sqlite3_reset(st);
	return err;
}

/* Task i (met) into the result, if not there yet. */
static int task_reach(struct walk *w, size_t i)
{
	if (w->out[i] >= 0)
		return WEFT_OK;
	weft_dag *d = w->d;
	int err = store_grow((void **)&d->tasks, &w->dtasks_cap, d->ntasks,
			     sizeof(*d->tasks));
	if (err)
		return err;
	/* A copy of the strings: the cache keeps its own. */
	const weft_dag_task *t = &w->tasks[i];
	weft_dag_task *o = &d->tasks[d->ntasks++];
	*o = *t;
	o->id = strdup(t->id);
	o->name = t->name ? strdup(t->name) : NULL;
	o->node = t->node ? strdup(t->node) : NULL;
	o->backend = t->backend ? strdup(t->backend) : NULL;
	o->parent = t->parent ? strdup(t->parent) : NULL;
	w->out[i] = (ssize_t)(d->ntasks - 1);
	if (!o->id || (t->name && !o->name) || (t->node && !o->node) ||
	    (t->backend && !o->backend) || (t->parent && !o->parent))
		return WEFT_ENOMEM;
	return WEFT_OK;
}

static void ref_free(struct ref *r, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(r[i].node);
		free(r[i].text);
	}
	free(r);
}

/* Every row a statement gives, as refs. */
static int refs_read(sqlite3_stmt *st, struct ref **out, size_t *n)
{
	size_t cap = 0;
	int rc, err = WEFT_OK;
	*out = NULL;
	*n = 0;
	while (!err && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		if ((err = store_grow((void **)out, &cap, *n, sizeof(**out))))
			break;
		struct ref *f = &(*out)[(*n)++];
		memset(f, 0, sizeof(*f));
		f->run = sqlite3_column_int64(st, 0);
		f->path = sqlite3_column_int64(st, 1);
		f->loc_fs = sqlite3_column_int64(st, 2);
		f->loc_path = sqlite3_column_int64(st, 3);
		const char *node = (const char *)sqlite3_column_text(st, 4);
		f->node = strdup(node ? node : "");
		size_t len = (size_t)sqlite3_column_bytes(st, 5);
		if ((f->text = malloc(len + 1))) {
			memcpy(f->text, sqlite3_column_blob(st, 5), len);
			f->text[len] = '\0';
		}
		f->read = sqlite3_column_int(st, 6);
		f->wrote = sqlite3_column_int(st, 7);
		if (!f->node || !f->text)
			err = WEFT_ENOMEM;
	}
	if (!err)
		return step_done(st, rc);
	sqlite3_reset(st);
	return err;
}

/* The group of f's location, loaded and resolved on first use. */
static int group_for(struct walk *w, const struct ref *f, size_t *out)
{
	bool legacy = f->loc_path == 0;
	for (size_t i = 0; i < w->ngroups; i++) {
		const struct group *g = &w->groups[i];
		if (legacy ? !g->loc_path && g->path == f->path &&
				     !strcmp(g->node, f->node)
			   : g->loc_path == f->loc_path &&
				     g->loc_fs == f->loc_fs) {
			*out = i;
			return WEFT_OK;
		}
	}
	sqlite3_stmt *st = w->st[legacy ? Q_LEGACY : Q_LOC];
	sqlite3_bind_int64(st, 1, legacy ? f->path : f->loc_path);
	if (legacy)
		sqlite3_bind_text(st, 2, f->node, -1, SQLITE_STATIC);
	else
		sqlite3_bind_int64(st, 2, f->loc_fs);
	bind_job(w, st);
	struct group g = {.loc_fs = f->loc_fs,
			  .loc_path = f->loc_path,
			  .path = f->path,
			  .node = strdup(f->node)};
	size_t cap = 0;
	int rc, err = g.node ? WEFT_OK : WEFT_ENOMEM;
	while (!err && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (!(err = store_grow((void **)&g.rows, &cap, g.n,
				       sizeof(*g.rows))))
			err = store_vrow_read(st, &w->names, &g.rows[g.n++]);
	}
	if (!err)
		err = step_done(st, rc);
	else
		sqlite3_reset(st);
	if (!err)
		err = store_versions_resolve(g.rows, g.n);
	g.wnode = malloc((g.n + 1) * sizeof(*g.wnode));
	g.rnode = malloc((g.n + 1) * sizeof(*g.rnode));
	if (!err && (!g.wnode || !g.rnode))
		err = WEFT_ENOMEM;
	for (size_t i = 0; !err && i < g.n; i++)
		g.wnode[i] = g.rnode[i] = -1;
	if (!err)
		err = store_grow((void **)&w->groups, &w->groups_cap,
				 w->ngroups, sizeof(*w->groups));
	if (err) {
		struct vrow_names none = {0};
		store_vrows_free(g.rows, g.n, &none);
		free(g.wnode);
		free(g.rnode);
		free(g.node);
		return err;
	}
	w->groups[w->ngroups] = g;
	*out = w->ngroups++;
	return WEFT_OK;
}

/* The row of run with this path in group g, preferring one that did what
 * the walk follows (read up, wrote down); SIZE_MAX when none. */
static size_t row_of(const struct group *g, sqlite3_int64 run,
		     const char *path)
{
	for (size_t i = 0; i < g->n; i++)
		if (g->rows[i].run == run && !strcmp(g->rows[i].path, path))
			return i;
	return SIZE_MAX;
}

/* An artifact of the result, named by row `row` of group gi. */
static int artifact_new(struct walk *w, int kind, size_t gi, size_t row,
			size_t *out)
{
	weft_dag *d = w->d;
	int err = store_grow((void **)&d->artifacts, &w->arts_cap,
			     d->nartifacts, sizeof(*d->artifacts));
	if (!err)
		err = store_grow((void **)&w->art_group, &w->art_group_cap,
				 d->nartifacts, sizeof(*w->art_group));
	if (!err)
		err = store_grow((void **)&w->art_row, &w->art_row_cap,
				 d->nartifacts, sizeof(*w->art_row));
	size_t task;
	const struct vrow *r = &w->groups[gi].rows[row];
	if (!err)
		err = task_met(w, r->run, &task);
	if (err)
		return err;
	weft_dag_artifact *a = &d->artifacts[d->nartifacts];
	memset(a, 0, sizeof(*a));
	a->kind = kind;
	w->art_group[d->nartifacts] = gi;
	w->art_row[d->nartifacts] = row;
	*out = d->nartifacts++; /* counted first: release frees it */
	return store_version_fill(a, r, fs_name(w, r->loc_fs),
				  &w->tasks[task]);
}

/* Which row names the version row `row` read: (defining row, kind). */
static size_t read_namer(const struct group *g, size_t row, int *kind)
{
	const struct vrow *r = &g->rows[row];
	if (r->src >= 0) {
		*kind = WEFT_VERSION_WRITTEN;
		return (size_t)r->src;
	}
	*kind = r->read_art ? WEFT_VERSION_SOURCE : WEFT_VERSION_UNKNOWN;
	if (r->read_art)
		for (size_t k = 0; k < row; k++)
			if (g->rows[k].src < 0 &&
			    g->rows[k].read_art == r->read_art &&
			    (g->rows[k].flags & (VR_READ | VR_UPDATED)))
				return k;
	return row;
}

/* The artifact of (namer, kind) in group gi, made on first use. */
static int artifact_of(struct walk *w, size_t gi, size_t namer, int kind,
		       size_t *out)
{
	ssize_t *slot = kind == WEFT_VERSION_WRITTEN
				? &w->groups[gi].wnode[namer]
				: &w->groups[gi].rnode[namer];
	if (*slot < 0) {
		int err = artifact_new(w, kind, gi, namer, out);
		if (err)
			return err;
		/* artifact_new may have moved the groups: look again. */
		slot = kind == WEFT_VERSION_WRITTEN
			       ? &w->groups[gi].wnode[namer]
			       : &w->groups[gi].rnode[namer];
		*slot = (ssize_t)*out;
	}
	*out = (size_t)*slot;
	return WEFT_OK;
}

/* The edge between task (met) and artifact art for row `row` of group
 * gi, reaching the task. */
static int edge_add(struct walk *w, size_t task, size_t art, size_t gi,
		    size_t row, bool write)
{
	int err = task_reach(w, task);
	if (err)
		return err;
	weft_dag *d = w->d;
	const weft_dag_task *t = &d->tasks[w->out[task]];
	const char *aid = d->artifacts[art].id;
	const struct vrow *r = &w->groups[gi].rows[row];
	/* One edge per record, as dag.c makes them: a task that reached a
	 * version by two names has an edge for each (the name it used where
	 * that is not the artifact's, as store_edge_fill labels it). */
	const char *used = r->used ? r->used : r->path;
	const char *label = strcmp(used, d->artifacts[art].path) ? used : NULL;
	for (size_t i = 0; i < d->nedges; i++) {
		const weft_dag_edge *e = &d->edges[i];
		if (e->write == write &&
		    !strcmp(e->from, write ? t->id : aid) &&
		    !strcmp(e->to, write ? aid : t->id) &&
		    (e->path && label ? !strcmp(e->path, label)
				      : e->path == label))
			return WEFT_OK;
	}
	if ((err = store_grow((void **)&d->edges, &w->edges_cap, d->nedges,
			      sizeof(*d->edges))))
		return err;
	weft_dag_edge *e = &d->edges[d->nedges++];
	memset(e, 0, sizeof(*e));
	/* As dag.c: a write of no hash, a likely source, an unknown
	 * version are weak. */
	bool weak = write ? !r->art
			  : r->weak || (r->src < 0 && !r->read_art);
	return store_edge_fill(e, t, &d->artifacts[art], r, write, weak,
			       !write && (r->flags & VR_UPDATED));
}

/* Visit an artifact: its writer (up) or its readers (down). */
static int visit_artifact(struct walk *w, size_t art)
{
	size_t gi = w->art_group[art], row = w->art_row[art];
	int kind = w->d->artifacts[art].kind;
	size_t task;
	int err = WEFT_OK;
	if (!w->down) {
		if (kind != WEFT_VERSION_WRITTEN)
			return WEFT_OK; /* nobody wrote it */
		err = task_met(w, w->groups[gi].rows[row].run, &task);
		return err ? err : edge_add(w, task, art, gi, row, true);
	}
	for (size_t i = 0; !err && i < w->groups[gi].n; i++) {
		const struct vrow *r = &w->groups[gi].rows[i];
		int k;
		if (!(r->flags & (VR_READ | VR_UPDATED)) ||
		    read_namer(&w->groups[gi], i, &k) != row || k != kind)
			continue;
		if (!(err = task_met(w, r->run, &task)))
			err = edge_add(w, task, art, gi, i, false);
	}
	return err;
}

/* Visit a task of the result: the versions it read (up) or wrote
 * (down). */
static int visit_task(struct walk *w, size_t out_task)
{
	size_t task = 0;
	while (w->out[task] != (ssize_t)out_task)
		task++;
	sqlite3_stmt *st = w->st[Q_RUN];
	sqlite3_bind_int64(st, 1, w->runs[task]);
	struct ref *refs;
	size_t n;
	int err = refs_read(st, &refs, &n);
	for (size_t i = 0; !err && i < n; i++) {
		const struct ref *f = &refs[i];
		if (w->down ? !f->wrote : !f->read)
			continue;
		size_t gi, row, art;
		if ((err = group_for(w, f, &gi)))
			break;
		row = row_of(&w->groups[gi], f->run, f->text);
		if (row == SIZE_MAX)
			continue; /* another job's: not in this walk */
		int kind = WEFT_VERSION_WRITTEN;
		size_t namer = w->down ? row
				       : read_namer(&w->groups[gi], row, &kind);
		err = artifact_of(w, gi, namer, kind, &art);
		if (!err)
			err = edge_add(w, task, art, gi, row, w->down);
	}
	ref_free(refs, n);
	return err;
}

/* The root: the file's latest version: the last one written at a path it
 * is known by (its own, or the name a task used), else the last one read
 * there. */
static int find_root(struct walk *w, const char *path)
{
	sqlite3_stmt *st = w->st[Q_PATH];
	sqlite3_bind_blob(st, 1, path, (int)strlen(path), SQLITE_STATIC);
	bind_job(w, st);
	struct ref *refs;
	size_t n, art;
	int err = refs_read(st, &refs, &n);
	ssize_t pick = -1;
	for (size_t i = 0; !err && i < n; i++)
		if (refs[i].wrote || (pick < 0 || !refs[pick].wrote))
			pick = (ssize_t)i; /* the last write, else last read */
	if (!err && pick < 0)
		err = WEFT_ENOTFOUND;
	size_t gi = 0, row = SIZE_MAX;
	if (!err)
		err = group_for(w, &refs[pick], &gi);
	if (!err)
		row = row_of(&w->groups[gi], refs[pick].run, refs[pick].text);
	if (!err && row == SIZE_MAX)
		err = WEFT_EDB; /* the rows disagree with the index */
	if (!err) {
		int kind = WEFT_VERSION_WRITTEN;
		size_t namer = refs[pick].wrote
				       ? row
				       : read_namer(&w->groups[gi], row, &kind);
		err = artifact_of(w, gi, namer, kind, &art);
	}
	ref_free(refs, n);
	return err;
}

/* Breadth first from the root: artifacts and tasks in the order reached,
 * artifacts first. */
static int walk_all(struct walk *w)
{
	size_t ai = 0, ti = 0;
	int err = WEFT_OK;
	while (!err && (ai < w->d->nartifacts || ti < w->d->ntasks))
		err = ai < w->d->nartifacts ? visit_artifact(w, ai++)
					    : visit_task(w, ti++);
	return err;
}

static int prepare(struct walk *w)
{
	char sql[2048];
	int err = WEFT_OK;
	for (int i = 0; !err && i < Q_NSTMT; i++) {
		const char *text = fixed_sql[i];
		if (i == Q_LOC)
			snprintf(sql, sizeof(sql),
				 LOC_CHAIN_SQL
				 "SELECT %s FROM chain f JOIN runs "
				 "r ON r.num = f.run %s WHERE "
				 "1" ROWS_WHERE,
				 store_vrow_sql_columns, store_vrow_sql_joins);
		else if (i == Q_LEGACY)
			snprintf(sql, sizeof(sql),
				 "SELECT %s FROM file_io f JOIN runs r ON "
				 "r.num = f.run %s WHERE f.loc_path IS NULL "
				 "AND f.loc_path IS NOT f.path AND f.path = ?1 "
				 "AND r.node = ?2" ROWS_WHERE,
				 store_vrow_sql_columns, store_vrow_sql_joins);
		if (i == Q_LOC || i == Q_LEGACY)
			text = sql;
		err = store_prepare(w->s, text, &w->st[i]);
	}
	return err;
}

int weft_store_lineage(weft_store *s, const char *path, const char *job,
		       bool down, weft_dag *out)
{
	memset(out, 0, sizeof(*out));
	s->errmsg[0] = '\0';
	struct walk w = {.s = s, .job = job, .down = down, .d = out};
	int err = WEFT_OK;
	if (job && !(out->job = strdup(job)))
		return WEFT_ENOMEM;
	/* One read transaction: the whole walk sees one snapshot. */
	if ((err = store_exec(s, "BEGIN")))
		goto out;
	err = prepare(&w);
	if (!err)
		err = find_root(&w, path);
	if (!err)
		err = walk_all(&w);
	if (err == WEFT_EDB)
		store_save_errmsg(s);
	for (int i = 0; i < Q_NSTMT; i++)
		sqlite3_finalize(w.st[i]);
	sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
out:
	for (size_t i = 0; i < w.ngroups; i++) {
		struct vrow_names none = {0};
		store_vrows_free(w.groups[i].rows, w.groups[i].n, &none);
		free(w.groups[i].wnode);
		free(w.groups[i].rnode);
		free(w.groups[i].node);
	}
	free(w.groups);
	struct vrow_names *names = &w.names;
	store_vrows_free(NULL, 0, names);
	weft_dag cache = {.tasks = w.tasks, .ntasks = w.ntasks};
	weft_dag_release(&cache);
	free(w.runs);
	free(w.out);
	free(w.art_group);
	free(w.art_row);
	for (size_t i = 0; i < w.nfs; i++)
		free(w.fs[i]);
	free(w.fs);
	if (err)
		weft_dag_release(out);
	return err;
}
