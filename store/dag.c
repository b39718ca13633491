/*
 * dag.c - the lineage DAG: tasks (runs) joined through the artifacts they
 * read and wrote.
 *
 * Artifacts are content-addressed: every file record with a hash names the
 * artifact of that hash, whatever its path and whichever run or node saw
 * it, so task B depends on task A exactly when B read content A wrote.
 * A record without a hash can only be matched by its path; it becomes a
 * "path:" artifact and its edges are weak, shown as such and never merged
 * with a hashed artifact.
 *
 * Everything is ordered by the store's own order (runs by start time, then
 * insertion; a run's files by path bytes), so the same store always gives
 * the same DAG.
 */
#include <stdlib.h>
#include <string.h>

#include "store_internal.h"

/* Open-addressing tables, sized to a power of two at most half full. */

/* Artifacts by their store row: (artifacts.id << 1 | 1) for a hashed one,
 * (paths.id << 1) for one known by its path alone (both columns are unique
 * in the store, so a row is an artifact). No strings hashed or compared. */
struct artifact_slot {
	uint64_t key;
	size_t art; /* artifact index + 1; 0 is empty */
};

struct artifact_index {
	struct artifact_slot *slots;
	size_t cap;
};

/* The edges of one task (a task's rows come together, and an edge names
 * its task, so a repeat can only come from the same task): emptied when
 * the next task starts, which keeps it small. */
struct edge_set {
	uint64_t *slots; /* edge key + 1; 0 is empty */
	size_t cap, n;
	size_t *used; /* the n slots in use, to empty them */
	size_t used_cap;
};

struct dag_builder {
	weft_dag *dag;
	size_t artifacts_cap, path_from_write_cap, edges_cap;
	/* Per artifact: its path came from a write (a later write cannot
	 * replace it, a write replaces a read's). */
	bool *path_from_write;
	struct artifact_index index;
	struct edge_set edges;
};

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

/* Find an artifact by key: its slot, holding art 0 when absent. */
static struct artifact_slot *index_slot(struct artifact_index *x, uint64_t key)
{
	size_t mask = x->cap - 1;
	for (size_t i = mix64(key) & mask;; i = (i + 1) & mask) {
		struct artifact_slot *e = &x->slots[i];
		if (!e->art || e->key == key)
			return e;
	}
}

static int index_reserve(struct dag_builder *b)
{
	if (b->dag->nartifacts + 1 <= b->index.cap / 2)
		return WEFT_OK;
	struct artifact_index x = {NULL, b->index.cap ? b->index.cap * 2 : 256};
	x.slots = calloc(x.cap, sizeof(*x.slots));
	if (!x.slots)
		return WEFT_ENOMEM;
	for (size_t i = 0; i < b->index.cap; i++)
		if (b->index.slots[i].art)
			*index_slot(&x, b->index.slots[i].key) =
				b->index.slots[i];
	free(b->index.slots);
	b->index = x;
	return WEFT_OK;
}

static void edge_set_clear(struct edge_set *set)
{
	for (size_t i = 0; i < set->n; i++)
		set->slots[set->used[i]] = 0;
	set->n = 0;
}

/* Add key to the set; *added says whether it was new. */
static int edge_set_add(struct edge_set *set, uint64_t key, bool *added)
{
	int err = store_grow((void **)&set->used, &set->used_cap, set->n,
			     sizeof(*set->used));
	if (err)
		return err;
	if (set->n + 1 > set->cap / 2) {
		size_t cap = set->cap ? set->cap * 2 : 256;
		uint64_t *slots = calloc(cap, sizeof(*slots));
		if (!slots)
			return WEFT_ENOMEM;
		for (size_t u = 0; u < set->n; u++) {
			uint64_t v = set->slots[set->used[u]];
			size_t j = mix64(v - 1) & (cap - 1);
			while (slots[j])
				j = (j + 1) & (cap - 1);
			slots[j] = v;
			set->used[u] = j;
		}
		free(set->slots);
		set->slots = slots;
		set->cap = cap;
	}
	size_t mask = set->cap - 1;
	for (size_t i = mix64(key) & mask;; i = (i + 1) & mask) {
		if (set->slots[i] == key + 1) {
			*added = false;
			return WEFT_OK;
		}
		if (!set->slots[i]) {
			set->slots[i] = key + 1;
			set->used[set->n++] = i;
			*added = true;
			return WEFT_OK;
		}
	}
}

/* A copy of len bytes as a string. */
static char *bytes_dup(const void *p, size_t len)
{
	char *s = malloc(len + 1);
	if (s) {
		if (len)
			memcpy(s, p, len);
		s[len] = '\0';
	}
	return s;
}

/* The artifact of a file record, created on first appearance: key as in
 * struct artifact_slot, hash NULL for a path-only one. */
static int artifact_for(struct dag_builder *b, uint64_t key,
			const uint8_t *hash, const void *path, size_t path_len,
			bool from_write, size_t *out)
{
	weft_dag *d = b->dag;
	int err = index_reserve(b);
	if (err)
		return err;
	struct artifact_slot *slot = index_slot(&b->index, key);
	if (slot->art) {
		*out = slot->art - 1;
		weft_dag_artifact *a = &d->artifacts[*out];
		if (from_write && !b->path_from_write[*out]) {
			char *p = bytes_dup(path, path_len);
			if (!p)
				return WEFT_ENOMEM;
			free(a->path);
			a->path = p;
			b->path_from_write[*out] = true;
		}
		return WEFT_OK;
	}
	if ((err = store_grow((void **)&d->artifacts, &b->artifacts_cap,
			      d->nartifacts, sizeof(*d->artifacts))) ||
	    (err = store_grow((void **)&b->path_from_write,
			      &b->path_from_write_cap, d->nartifacts,
			      sizeof(bool))))
		return err;
	char *id;
	if (hash) {
		id = malloc(WEFT_HASH_TEXT_BYTES);
		if (id)
			weft_hash_to_text(hash, id);
	} else {
		id = malloc(path_len + 6);
		if (id) {
			memcpy(id, "path:", 5);
			memcpy(id + 5, path, path_len);
			id[path_len + 5] = '\0';
		}
	}
	if (!id)
		return WEFT_ENOMEM;
	weft_dag_artifact *a = &d->artifacts[d->nartifacts];
	memset(a, 0, sizeof(*a));
	a->id = id;
	a->path = bytes_dup(path, path_len);
	if (!a->path) {
		free(id);
		a->id = NULL;
		return WEFT_ENOMEM;
	}
	if (hash) {
		a->has_hash = true;
		memcpy(a->hash, hash, 32);
	}
	b->path_from_write[d->nartifacts] = from_write;
	slot->key = key;
	slot->art = d->nartifacts + 1;
	*out = d->nartifacts++;
	return WEFT_OK;
}

static int add_edge(struct dag_builder *b, size_t task, size_t artifact,
		    bool write)
{
	weft_dag *d = b->dag;
	bool added;
	uint64_t key = (uint64_t)task << 33 | (uint64_t)artifact << 1 | write;
	int err = edge_set_add(&b->edges, key, &added);
	if (err || !added)
		return err;
	if ((err = store_grow((void **)&d->edges, &b->edges_cap, d->nedges,
			      sizeof(*d->edges))))
		return err;
	const char *tid = d->tasks[task].id, *aid = d->artifacts[artifact].id;
	weft_dag_edge *e = &d->edges[d->nedges];
	e->from = strdup(write ? tid : aid);
	e->to = strdup(write ? aid : tid);
	e->write = write;
	e->weak = !d->artifacts[artifact].has_hash;
	d->nedges++; /* counted before the check, so release frees both */
	return e->from && e->to ? WEFT_OK : WEFT_ENOMEM;
}

/* Column helpers: a copy of a text or blob column, NULL when NULL. */
static char *column_dup(sqlite3_stmt *st, int i)
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

static int load_tasks(weft_store *s, const char *job, weft_dag *d,
		      sqlite3_int64 **nums)
{
/* A fragment's parent names a task identity; the DAG names tasks by run
 * id, so the parent is resolved within the job. */
#define TASKS_SQL(where)                                                       \
	"SELECT r.num, r.id, r.node, r.backend, "                              \
	"r.exit_code, " STORE_ROOT_ARGV_SQL ", t.name, "                       \
	"(SELECT r2.id FROM tasks t2 JOIN runs r2 ON r2.num = t2.run "         \
	" WHERE t2.job = t.job AND t2.task_id = t.parent "                     \
	" ORDER BY r2.num LIMIT 1), t.parts_stored, t.nparts "                 \
	"FROM runs r LEFT JOIN tasks t ON t.run = r.num " where                \
	"ORDER BY r.started_ns, r.num"
	/* The job spelled out, so that runs_by_job is used (load_edges). */
	sqlite3_stmt *st;
	int err = store_prepare(
		s, job ? TASKS_SQL("WHERE r.job = ?1 ") : TASKS_SQL(""), &st);
#undef TASKS_SQL
	if (err)
		return err;
	if (job)
		sqlite3_bind_text(st, 1, job, -1, SQLITE_STATIC);
	size_t cap = 0, ncap = 0;
	int rc;
	while (!err && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		if ((err = store_grow((void **)&d->tasks, &cap, d->ntasks,
				      sizeof(*d->tasks))) ||
		    (err = store_grow((void **)nums, &ncap, d->ntasks,
				      sizeof(**nums))))
			break;
		weft_dag_task *t = &d->tasks[d->ntasks];
		memset(t, 0, sizeof(*t));
		(*nums)[d->ntasks++] = sqlite3_column_int64(st, 0);
		t->id = column_dup(st, 1);
		t->node = column_dup(st, 2);
		t->backend = column_dup(st, 3);
		t->exit_code = sqlite3_column_int(st, 4);
		t->parts_stored = (uint32_t)sqlite3_column_int64(st, 8);
		t->nparts = (uint32_t)sqlite3_column_int64(st, 9);
		/* A task's own name (a fragment's) before its command. */
		if (sqlite3_column_bytes(st, 6) > 0)
			t->name = column_dup(st, 6);
		else
			t->name = store_join_argv(
				sqlite3_column_blob(st, 5),
				(size_t)sqlite3_column_bytes(st, 5));
		if (sqlite3_column_type(st, 7) != SQLITE_NULL &&
		    !(t->parent = column_dup(st, 7)))
			err = WEFT_ENOMEM;
		if (!t->id || !t->node || !t->backend || !t->name)
			err = WEFT_ENOMEM;
		else if (!t->node[0]) {
			/* An unknown node is null in the DAG. */
			free(t->node);
			t->node = NULL;
		}
	}
	if (!err && rc != SQLITE_DONE)
		err = WEFT_EDB;
	sqlite3_finalize(st);
	return err;
}

static int load_edges(weft_store *s, const char *job, struct dag_builder *b,
		      const sqlite3_int64 *nums)
{
	/* Two statements, not "?1 IS NULL OR r.job = ?1": with the job
	 * spelled out, SQLite walks runs_by_job in run order and each run's
	 * file_io by its key, sorting only within a run, instead of scanning
	 * every file record of the store and sorting them all. */
	static const char *const sql[2] = {
		"SELECT f.run, p.path, a.hash, f.read, f.written, f.path, "
		"f.artifact "
		"FROM runs r JOIN file_io f ON f.run = r.num "
		"JOIN paths p ON p.id = f.path "
		"LEFT JOIN artifacts a ON a.id = f.artifact "
		/* Deleted files and temporaries renamed away are gone: no
		 * artifact to depend on. */
		"WHERE NOT f.deleted AND f.renamed_to IS NULL "
		"AND (f.read OR f.written) "
		"ORDER BY r.started_ns, r.num, p.path",
		"SELECT f.run, p.path, a.hash, f.read, f.written, f.path, "
		"f.artifact "
		"FROM runs r JOIN file_io f ON f.run = r.num "
		"JOIN paths p ON p.id = f.path "
		"LEFT JOIN artifacts a ON a.id = f.artifact "
		"WHERE r.job = ?1 AND NOT f.deleted AND f.renamed_to IS NULL "
		"AND (f.read OR f.written) "
		"ORDER BY r.started_ns, r.num, p.path",
	};
	sqlite3_stmt *st;
	int err = store_prepare(s, sql[job != NULL], &st);
	if (err)
		return err;
	if (job)
		sqlite3_bind_text(st, 1, job, -1, SQLITE_STATIC);
	size_t task = 0;
	int rc;
	while (!err && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		sqlite3_int64 run = sqlite3_column_int64(st, 0);
		/* Same order as the tasks: advance to this row's run. */
		if (task < b->dag->ntasks && nums[task] != run)
			edge_set_clear(&b->edges);
		while (task < b->dag->ntasks && nums[task] != run)
			task++;
		if (task == b->dag->ntasks) {
			err = WEFT_EDB;
			break;
		}
		const void *path = sqlite3_column_blob(st, 1);
		size_t path_len = (size_t)sqlite3_column_bytes(st, 1);
		const uint8_t *hash = NULL;
		if (sqlite3_column_type(st, 2) != SQLITE_NULL &&
		    sqlite3_column_bytes(st, 2) == 32)
			hash = sqlite3_column_blob(st, 2);
		bool read = sqlite3_column_int(st, 3);
		bool written = sqlite3_column_int(st, 4);
		uint64_t path_key = (uint64_t)sqlite3_column_int64(st, 5) << 1;
		uint64_t hash_key =
			(uint64_t)sqlite3_column_int64(st, 6) << 1 | 1;
		if (!path && path_len == 0)
			path = "";
		size_t art;
		if (read) {
			/* The hash of a file the run also wrote is of what
			 * it wrote, not of what it read: what was read is
			 * known by its path alone. Linking the read to the
			 * hash would make the task depend on itself. */
			bool by_hash = hash && !written;
			err = artifact_for(b, by_hash ? hash_key : path_key,
					   by_hash ? hash : NULL, path,
					   path_len, false, &art);
			if (!err)
				err = add_edge(b, task, art, false);
		}
		if (!err && written) {
			err = artifact_for(b, hash ? hash_key : path_key, hash,
					   path, path_len, true, &art);
			if (!err)
				err = add_edge(b, task, art, true);
		}
	}
	if (!err && rc != SQLITE_DONE)
		err = WEFT_EDB;
	sqlite3_finalize(st);
	return err;
}

int weft_store_dag(weft_store *s, const char *job, weft_dag *out)
{
	memset(out, 0, sizeof(*out));
	s->errmsg[0] = '\0';
	struct dag_builder b = {.dag = out};
	sqlite3_int64 *nums = NULL;
	int err = WEFT_OK;
	if (job && !(out->job = strdup(job)))
		return WEFT_ENOMEM;
	/* One read transaction: tasks and edges from the same snapshot. */
	if ((err = store_exec(s, "BEGIN")))
		goto out;
	err = load_tasks(s, job, out, &nums);
	if (!err && job && out->ntasks == 0)
		err = WEFT_ENOTFOUND;
	if (!err)
		err = load_edges(s, job, &b, nums);
	if (err == WEFT_EDB)
		store_save_errmsg(s);
	sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
out:
	free(nums);
	free(b.path_from_write);
	free(b.index.slots);
	free(b.edges.slots);
	free(b.edges.used);
	if (err)
		weft_dag_release(out);
	return err;
}

void weft_dag_release(weft_dag *d)
{
	for (size_t i = 0; i < d->ntasks; i++) {
		free(d->tasks[i].id);
		free(d->tasks[i].name);
		free(d->tasks[i].node);
		free(d->tasks[i].backend);
		free(d->tasks[i].parent);
	}
	free(d->tasks);
	for (size_t i = 0; i < d->nartifacts; i++) {
		free(d->artifacts[i].id);
		free(d->artifacts[i].path);
	}
	free(d->artifacts);
	for (size_t i = 0; i < d->nedges; i++) {
		free(d->edges[i].from);
		free(d->edges[i].to);
	}
	free(d->edges);
	free(d->job);
	memset(d, 0, sizeof(*d));
}
