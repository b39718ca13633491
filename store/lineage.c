/*
 * lineage.c - the lineage of one file: the part of the DAG that leads to
 * it (up: the tasks that wrote it, what they read, who wrote that...) or
 * that it fed (down: the tasks that read it, what they wrote...).
 *
 * Same artifacts and edges as dag.c (content hash, else a weak "path:"
 * artifact; the read of a file a task also wrote is known by its path),
 * but walked breadth-first from the file with one indexed lookup per step
 * (file_io_by_artifact, file_io_by_path, file_io's (run, path) key), so
 * the cost follows the size of the lineage, not of the store. Visited sets
 * keep cycles finite.
 */
#include <stdlib.h>
#include <string.h>

#include "store_internal.h"

/* An artifact's key in the store: a hashed artifact by its artifacts.id,
 * a path-only one by its paths.id. */
#define KEY_HASHED(id) ((uint64_t)(id) << 1)
#define KEY_PATH(id) ((uint64_t)(id) << 1 | 1)

/* A sorted map from a store key to an index into the result. */
struct key_map {
	struct key_ent {
		uint64_t key;
		size_t idx;
	} * v;
	size_t n, cap;
};

/* Position of key in m (or where it goes); *found says whether it is. */
static size_t key_map_pos(const struct key_map *m, uint64_t key, bool *found)
{
	size_t lo = 0, hi = m->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (m->v[mid].key < key)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = lo < m->n && m->v[lo].key == key;
	return lo;
}

static int key_map_put(struct key_map *m, size_t pos, uint64_t key, size_t idx)
{
	if (m->n == m->cap) {
		size_t cap = m->cap ? m->cap * 2 : 32;
		struct key_ent *v = realloc(m->v, cap * sizeof(*v));
		if (!v)
			return WEFT_ENOMEM;
		m->v = v;
		m->cap = cap;
	}
	memmove(&m->v[pos + 1], &m->v[pos], (m->n - pos) * sizeof(*m->v));
	m->v[pos] = (struct key_ent){key, idx};
	m->n++;
	return WEFT_OK;
}

/* Make room for one more element of an array of *cap elements. */
enum {
	Q_TASK,         /* one run's row */
	Q_TASK_FILES,   /* a run's reads (?2 = 0) or writes (?2 = 1) */
	Q_WRITERS_HASH, /* runs that wrote an artifact */
	Q_WRITERS_PATH, /* runs that wrote a path, unhashed */
	Q_READERS_HASH, /* runs that read an artifact (and did not write it) */
	Q_READERS_PATH, /* runs that read a path known by path alone */
	Q_NSTMT
};

/* What makes a file record part of the lineage: as in dag.c. */
#define LIVE_SQL "NOT f.deleted AND f.renamed_to IS NULL "
#define JOB_SQL "AND (?2 IS NULL OR r.job = ?2) "
#define RUNS_SQL                                                               \
	"SELECT DISTINCT f.run, r.started_ns FROM file_io f "                  \
	"JOIN runs r ON r.num = f.run WHERE " LIVE_SQL JOB_SQL
#define RUNS_ORDER "ORDER BY r.started_ns, f.run"

static const char *const lineage_sql[Q_NSTMT] = {
	[Q_TASK] = "SELECT r.id, r.node, r.backend, "
		   "r.exit_code, " STORE_ROOT_ARGV_SQL ", t.name, "
		   "(SELECT r2.id FROM tasks t2 JOIN runs r2 ON r2.num = t2.run"
		   " WHERE t2.job = t.job AND t2.task_id = t.parent "
		   " ORDER BY r2.num LIMIT 1) "
		   "FROM runs r LEFT JOIN tasks t ON t.run = r.num "
		   "WHERE r.num = ?1",
	[Q_TASK_FILES] = "SELECT f.path, p.path, f.artifact, a.hash, "
			 "f.written FROM file_io f "
			 "JOIN paths p ON p.id = f.path "
			 "LEFT JOIN artifacts a ON a.id = f.artifact "
			 "WHERE f.run = ?1 AND " LIVE_SQL
			 "AND CASE WHEN ?2 THEN f.written ELSE f.read END "
			 "ORDER BY p.path",
	[Q_WRITERS_HASH] =
		RUNS_SQL "AND f.artifact = ?1 AND f.written " RUNS_ORDER,
	[Q_WRITERS_PATH] = RUNS_SQL "AND f.path = ?1 AND f.written "
				    "AND f.artifact IS NULL " RUNS_ORDER,
	[Q_READERS_HASH] = RUNS_SQL "AND f.artifact = ?1 AND f.read "
				    "AND NOT f.written " RUNS_ORDER,
	[Q_READERS_PATH] =
		RUNS_SQL "AND f.path = ?1 AND f.read "
			 "AND (f.written OR f.artifact IS NULL) " RUNS_ORDER,
};

struct walk {
	weft_store *s;
	const char *job;
	bool down;
	weft_dag *d;
	sqlite3_stmt *st[Q_NSTMT];
	struct key_map tasks, artifacts; /* run num / artifact key -> index */
	uint64_t *art_keys;              /* per artifact, its key */
	sqlite3_int64 *task_nums;        /* per task, its run num */
	size_t tasks_cap, artifacts_cap, keys_cap, nums_cap, edges_cap;
};

static char *col_text(sqlite3_stmt *st, int i)
{
	if (sqlite3_column_type(st, i) == SQLITE_NULL)
		return NULL;
	size_t n = (size_t)sqlite3_column_bytes(st, i);
	char *s = malloc(n + 1);
	if (s) {
		memcpy(s, sqlite3_column_blob(st, i), n);
		s[n] = '\0';
	}
	return s;
}

static int step_done(sqlite3_stmt *st, int rc)
{
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? WEFT_OK : WEFT_EDB;
}

/* Fill task t from run num. */
static int load_task(struct walk *w, sqlite3_int64 num, weft_dag_task *t)
{
	sqlite3_stmt *st = w->st[Q_TASK];
	sqlite3_bind_int64(st, 1, num);
	int rc = sqlite3_step(st);
	if (rc != SQLITE_ROW)
		return step_done(st, rc == SQLITE_DONE ? SQLITE_ERROR : rc);
	int err = WEFT_OK;
	t->id = col_text(st, 0);
	t->node = col_text(st, 1);
	t->backend = col_text(st, 2);
	t->exit_code = sqlite3_column_int(st, 3);
	if (sqlite3_column_bytes(st, 5) > 0)
		t->name = col_text(st, 5);
	else
		t->name = store_join_argv(sqlite3_column_blob(st, 4),
					  (size_t)sqlite3_column_bytes(st, 4));
	if (sqlite3_column_type(st, 6) != SQLITE_NULL &&
	    !(t->parent = col_text(st, 6)))
		err = WEFT_ENOMEM;
	if (!t->id || !t->node || !t->backend || !t->name)
		err = WEFT_ENOMEM;
	else if (!t->node[0]) {
		free(t->node);
		t->node = NULL;
	}
	sqlite3_reset(st);
	return err;
}

/* The task of run num, added on first sight; *added says whether new. */
static int task_for(struct walk *w, sqlite3_int64 num, size_t *out, bool *added)
{
	bool found;
	size_t pos = key_map_pos(&w->tasks, (uint64_t)num, &found);
	*added = !found;
	if (found) {
		*out = w->tasks.v[pos].idx;
		return WEFT_OK;
	}
	weft_dag *d = w->d;
	int err = store_grow((void **)&d->tasks, &w->tasks_cap, d->ntasks,
			     sizeof(*d->tasks));
	if (!err)
		err = store_grow((void **)&w->task_nums, &w->nums_cap,
				 d->ntasks, sizeof(*w->task_nums));
	if (!err)
		err = key_map_put(&w->tasks, pos, (uint64_t)num, d->ntasks);
	if (err)
		return err;
	weft_dag_task *t = &d->tasks[d->ntasks];
	memset(t, 0, sizeof(*t));
	w->task_nums[d->ntasks] = num;
	*out = d->ntasks++; /* counted first, so release frees a partial one */
	return load_task(w, num, t);
}

/* The artifact of key (hash NULL: path-only), added on first sight. */
static int artifact_for(struct walk *w, uint64_t key, const uint8_t *hash,
			const char *path, size_t *out, bool *added)
{
	bool found;
	size_t pos = key_map_pos(&w->artifacts, key, &found);
	*added = !found;
	if (found) {
		*out = w->artifacts.v[pos].idx;
		return WEFT_OK;
	}
	weft_dag *d = w->d;
	int err = store_grow((void **)&d->artifacts, &w->artifacts_cap,
			     d->nartifacts, sizeof(*d->artifacts));
	if (!err)
		err = store_grow((void **)&w->art_keys, &w->keys_cap,
				 d->nartifacts, sizeof(*w->art_keys));
	if (!err)
		err = key_map_put(&w->artifacts, pos, key, d->nartifacts);
	if (err)
		return err;
	weft_dag_artifact *a = &d->artifacts[d->nartifacts];
	memset(a, 0, sizeof(*a));
	w->art_keys[d->nartifacts] = key;
	*out = d->nartifacts++;
	size_t n = strlen(path);
	a->path = strdup(path);
	a->id = malloc(hash ? WEFT_HASH_TEXT_BYTES : n + 6);
	if (!a->path || !a->id)
		return WEFT_ENOMEM;
	if (hash) {
		a->has_hash = true;
		memcpy(a->hash, hash, 32);
		weft_hash_to_text(hash, a->id);
	} else {
		memcpy(a->id, "path:", 5);
		memcpy(a->id + 5, path, n + 1);
	}
	return WEFT_OK;
}

/* An edge between task and artifact, unless the same one was added since
 * edge index `since` (a node's edges are all added while it is visited). */
static int add_edge(struct walk *w, size_t task, size_t art, bool write,
		    size_t since)
{
	weft_dag *d = w->d;
	const char *tid = d->tasks[task].id, *aid = d->artifacts[art].id;
	const char *from = write ? tid : aid, *to = write ? aid : tid;
	for (size_t i = since; i < d->nedges; i++)
		if (d->edges[i].write == write &&
		    !strcmp(d->edges[i].from, from) &&
		    !strcmp(d->edges[i].to, to))
			return WEFT_OK;
	int err = store_grow((void **)&d->edges, &w->edges_cap, d->nedges,
			     sizeof(*d->edges));
	if (err)
		return err;
	weft_dag_edge *e = &d->edges[d->nedges++];
	e->from = strdup(from);
	e->to = strdup(to);
	e->write = write;
	e->weak = !d->artifacts[art].has_hash;
	return e->from && e->to ? WEFT_OK : WEFT_ENOMEM;
}

/* Visit an artifact: the tasks that wrote it (up) or read it (down). */
static int visit_artifact(struct walk *w, size_t art)
{
	uint64_t key = w->art_keys[art];
	bool path_only = key & 1;
	int q = w->down ? (path_only ? Q_READERS_PATH : Q_READERS_HASH)
			: (path_only ? Q_WRITERS_PATH : Q_WRITERS_HASH);
	sqlite3_stmt *st = w->st[q];
	sqlite3_bind_int64(st, 1, (sqlite3_int64)(key >> 1));
	if (w->job)
		sqlite3_bind_text(st, 2, w->job, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, 2);
	/* Collected first: task_for runs another statement. */
	sqlite3_int64 *runs = NULL;
	size_t n = 0, cap = 0;
	int rc, err = WEFT_OK;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if ((err = store_grow((void **)&runs, &cap, n, sizeof(*runs))))
			break;
		runs[n++] = sqlite3_column_int64(st, 0);
	}
	if (!err)
		err = step_done(st, rc);
	else
		sqlite3_reset(st);
	size_t since = w->d->nedges;
	for (size_t i = 0; !err && i < n; i++) {
		size_t task;
		bool added;
		err = task_for(w, runs[i], &task, &added);
		if (!err)
			err = add_edge(w, task, art, !w->down, since);
	}
	free(runs);
	return err;
}

/* Visit a task: what it read (up) or wrote (down). */
static int visit_task(struct walk *w, size_t task)
{
	sqlite3_stmt *st = w->st[Q_TASK_FILES];
	sqlite3_bind_int64(st, 1, w->task_nums[task]);
	sqlite3_bind_int(st, 2, w->down);
	size_t since = w->d->nedges;
	int rc, err = WEFT_OK;
	while (!err && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		const uint8_t *hash = NULL;
		if (sqlite3_column_type(st, 2) != SQLITE_NULL &&
		    sqlite3_column_bytes(st, 3) == 32)
			hash = sqlite3_column_blob(st, 3);
		/* Up, the read of a file the task also wrote is known by
		 * its path alone (its hash is of what was written). */
		if (!w->down && sqlite3_column_int(st, 4))
			hash = NULL;
		uint64_t key = hash ? KEY_HASHED(sqlite3_column_int64(st, 2))
				    : KEY_PATH(sqlite3_column_int64(st, 0));
		char *path = col_text(st, 1);
		size_t art;
		bool added;
		err = path ? artifact_for(w, key, hash, path, &art, &added)
			   : WEFT_ENOMEM;
		if (!err)
			err = add_edge(w, task, art, w->down, since);
		free(path);
	}
	if (!err)
		return step_done(st, rc);
	sqlite3_reset(st);
	return err;
}

/* The root: the file's latest content (its latest write, else its latest
 * read), path-only when that has no hash. */
static int find_root(struct walk *w, const char *path)
{
	sqlite3_stmt *st;
	int err = store_prepare(
		w->s,
		"SELECT f.path, f.artifact, a.hash FROM paths p "
		"JOIN file_io f ON f.path = p.id "
		"JOIN runs r ON r.num = f.run "
		"LEFT JOIN artifacts a ON a.id = f.artifact "
		"WHERE p.path = ?1 AND " LIVE_SQL JOB_SQL
		"AND (f.read OR f.written) "
		"ORDER BY f.written DESC, r.started_ns DESC, r.num DESC "
		"LIMIT 1",
		&st);
	if (err)
		return err;
	sqlite3_bind_blob(st, 1, path, (int)strlen(path), SQLITE_STATIC);
	if (w->job)
		sqlite3_bind_text(st, 2, w->job, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		const uint8_t *hash = NULL;
		if (sqlite3_column_type(st, 1) != SQLITE_NULL &&
		    sqlite3_column_bytes(st, 2) == 32)
			hash = sqlite3_column_blob(st, 2);
		uint64_t key = hash ? KEY_HASHED(sqlite3_column_int64(st, 1))
				    : KEY_PATH(sqlite3_column_int64(st, 0));
		size_t art;
		bool added;
		err = artifact_for(w, key, hash, path, &art, &added);
	} else {
		err = rc == SQLITE_DONE ? WEFT_ENOTFOUND : WEFT_EDB;
	}
	sqlite3_finalize(st);
	return err;
}

/* Breadth first: tasks and artifacts are visited in the order found. */
static int walk_all(struct walk *w)
{
	size_t ti = 0, ai = 0;
	int err = WEFT_OK;
	while (!err && (ti < w->d->ntasks || ai < w->d->nartifacts)) {
		if (ai < w->d->nartifacts)
			err = visit_artifact(w, ai++);
		else
			err = visit_task(w, ti++);
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
	for (int i = 0; !err && i < Q_NSTMT; i++)
		err = store_prepare(s, lineage_sql[i], &w.st[i]);
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
	free(w.tasks.v);
	free(w.artifacts.v);
	free(w.art_keys);
	free(w.task_nums);
	if (err)
		weft_dag_release(out);
	return err;
}
