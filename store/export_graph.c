/*
 * export_graph.c - the graph every export walks (export.h): the DAG of a
 * scope, the facts of its tasks the DAG leaves out (times, command line,
 * executable, user), and the indices the formats need. Read-only: one
 * query over runs, processes and jobs beside weft_store_dag.
 */
#include <errno.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "export.h"
#include "store_internal.h"

/* A string and where it is: tasks by id. */
struct key_idx {
	const char *key;
	size_t i;
};

static int cmp_key(const void *a, const void *b)
{
	const struct key_idx *x = a, *y = b;
	int c = strcmp(x->key, y->key);
	return c ? c : (x->i > y->i) - (x->i < y->i);
}

static int cmp_key_only(const void *a, const void *b)
{
	return strcmp(((const struct key_idx *)a)->key,
		      ((const struct key_idx *)b)->key);
}

static size_t lookup(const struct key_idx *keys, size_t n, const char *key)
{
	struct key_idx k = {key, 0};
	const struct key_idx *hit =
		n ? bsearch(&k, keys, n, sizeof(*keys), cmp_key_only) : NULL;
	return hit ? hit->i : SIZE_MAX;
}

static void say(char err[WEFT_EXPORT_ERR_BYTES], const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void say(char err[WEFT_EXPORT_ERR_BYTES], const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, WEFT_EXPORT_ERR_BYTES, fmt, ap);
	va_end(ap);
}

/* A local run was made by whoever owns the store: weft run writes it as
 * its user, and a store is private to its owner. */
static char *store_owner(weft_store *s)
{
	const char *db = sqlite3_db_filename(s->db, "main");
	struct stat st;
	uid_t uid = db && db[0] && stat(db, &st) == 0 ? st.st_uid : getuid();
	struct passwd pw, *res = NULL;
	char buf[4096];
	if (getpwuid_r(uid, &pw, buf, sizeof(buf), &res) == 0 && res)
		return strdup(res->pw_name);
	char num[32];
	snprintf(num, sizeof(num), "uid %u", (unsigned)uid);
	return strdup(num);
}

/* The root process (no parent, else the first) of each run, its job's
 * user; the job spelled out so that runs_by_job is used. */
#define FACTS_SQL(where)                                                       \
	"SELECT r.id, r.started_ns, r.ended_ns, p.argv, p.exe, p.cwd, "        \
	"j.user, r.job FROM runs r "                                           \
	"LEFT JOIN processes p ON p.run = r.num AND p.seq = "                  \
	" (SELECT p2.seq FROM processes p2 WHERE p2.run = r.num "              \
	"  ORDER BY p2.ppid <> 0, p2.seq LIMIT 1) "                            \
	"LEFT JOIN jobs j ON j.id = r.job " where

static int load_facts(weft_store *s, const char *job, struct export_graph *g,
		      const struct key_idx *tasks)
{
	const weft_dag *d = g->d;
	sqlite3_stmt *st;
	int err = store_prepare_job(
		s, job ? FACTS_SQL("WHERE r.job = ?1") : FACTS_SQL(""), job,
		&st);
	if (err)
		return err;
	char *owner = NULL;
	int rc;
	while (!err && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *id = (const char *)sqlite3_column_text(st, 0);
		size_t t = id ? lookup(tasks, d->ntasks, id) : SIZE_MAX;
		if (t == SIZE_MAX)
			continue; /* a run that came after the DAG was read */
		struct export_task *f = &g->facts[t];
		f->started_ns = sqlite3_column_int64(st, 1);
		f->ended_ns = sqlite3_column_int64(st, 2);
		if (sqlite3_column_type(st, 3) != SQLITE_NULL &&
		    !(f->command = store_join_argv(
			      sqlite3_column_blob(st, 3),
			      (size_t)sqlite3_column_bytes(st, 3))))
			err = WEFT_ENOMEM;
		f->exe = store_column_dup(st, 4);
		f->cwd = store_column_dup(st, 5);
		f->job = store_column_dup(st, 7);
		if (sqlite3_column_type(st, 6) != SQLITE_NULL &&
		    sqlite3_column_bytes(st, 6) > 0) {
			f->user = store_column_dup(st, 6);
		} else {
			if (!owner && !(owner = store_owner(s)))
				err = WEFT_ENOMEM;
			f->user = owner ? strdup(owner) : NULL;
		}
		if (!f->user)
			err = WEFT_ENOMEM;
	}
	if (!err && rc != SQLITE_DONE)
		err = WEFT_EDB;
	free(owner);
	sqlite3_finalize(st);
	return err;
}

/* Same location: the filesystem and path below it when both have one,
 * else the path. */
static bool same_location(const weft_dag_artifact *a,
			  const weft_dag_artifact *b)
{
	if (a->loc_fs && b->loc_fs)
		return strcmp(a->loc_fs, b->loc_fs) == 0 &&
		       strcmp(a->loc_path, b->loc_path) == 0;
	return a->path && b->path && strcmp(a->path, b->path) == 0;
}

static int cmp_informed(const void *a, const void *b)
{
	const struct export_informed *x = a, *y = b;
	if (x->informed != y->informed)
		return (x->informed > y->informed) -
		       (x->informed < y->informed);
	return (x->informant > y->informant) - (x->informant < y->informant);
}

/* Edges (only writes with writes_only) grouped by key[edge] (an
 * artifact or a task index, of nkeys): group k is
 * out[first[k]..first[k+1]), in edge order. */
static int group_edges(const struct export_graph *g, const size_t *key,
		       size_t nkeys, bool writes_only, size_t **first,
		       size_t **out)
{
	const weft_dag *d = g->d;
	*first = calloc(nkeys + 2, sizeof(**first));
	*out = malloc((d->nedges + 1) * sizeof(**out));
	if (!*first || !*out)
		return WEFT_ENOMEM;
#define KEPT(i) (key[i] != SIZE_MAX && (!writes_only || d->edges[i].write))
	for (size_t i = 0; i < d->nedges; i++)
		if (KEPT(i))
			(*first)[key[i] + 2]++;
	for (size_t k = 0; k < nkeys; k++)
		(*first)[k + 2] += (*first)[k + 1];
	for (size_t i = 0; i < d->nedges; i++)
		if (KEPT(i))
			(*out)[(*first)[key[i] + 1]++] = i;
#undef KEPT
	return WEFT_OK;
}

/* The version task t wrote at a's location (when its read of a was an
 * update): g->updated of it becomes a. */
static void link_update(struct export_graph *g, size_t t, size_t a)
{
	const weft_dag *d = g->d;
	for (size_t k = g->task_first[t]; k < g->task_first[t + 1]; k++) {
		size_t b = g->edge_art[g->task_edges[k]];
		if (d->edges[g->task_edges[k]].write && b != SIZE_MAX &&
		    b != a && same_location(&d->artifacts[a], &d->artifacts[b]))
			g->updated[b] = a;
	}
}

/* Updates (the version a task's update read changed into the version it
 * wrote at that location) and who read what whom wrote. */
static int link_tasks(struct export_graph *g)
{
	const weft_dag *d = g->d;
	size_t *first = NULL, *writes = NULL;
	int err = group_edges(g, g->edge_art, d->nartifacts, true, &first,
			      &writes);
	size_t cap = d->nedges + 1;
	if (!err && !(g->informed = malloc(cap * sizeof(*g->informed))))
		err = WEFT_ENOMEM;
	for (size_t i = 0; !err && i < d->nedges; i++) {
		const weft_dag_edge *e = &d->edges[i];
		size_t t = g->edge_task[i], a = g->edge_art[i];
		if (e->write || t == SIZE_MAX || a == SIZE_MAX)
			continue;
		if (e->update)
			link_update(g, t, a);
		/* A version has one writer (dag.c); its readers each got
		 * the informed relation once per edge, merged below. */
		for (size_t k = first[a]; k < first[a + 1]; k++) {
			size_t w = g->edge_task[writes[k]];
			if (w == SIZE_MAX || w == t)
				continue;
			if (g->ninformed == cap) {
				void *p =
					realloc(g->informed,
						2 * cap * sizeof(*g->informed));
				if (!p) {
					err = WEFT_ENOMEM;
					break;
				}
				g->informed = p;
				cap *= 2;
			}
			g->informed[g->ninformed++] = (struct export_informed){
				t, w, e->weak || d->edges[writes[k]].weak};
		}
	}
	free(first);
	free(writes);
	if (err)
		return err;
	/* One relation per pair, strong when any edge behind it is. */
	qsort(g->informed, g->ninformed, sizeof(*g->informed), cmp_informed);
	size_t n = 0;
	for (size_t i = 0; i < g->ninformed; i++) {
		if (n && !cmp_informed(&g->informed[n - 1], &g->informed[i]))
			g->informed[n - 1].weak &= g->informed[i].weak;
		else
			g->informed[n++] = g->informed[i];
	}
	g->ninformed = n;
	return WEFT_OK;
}

static int index_edges(struct export_graph *g, struct key_idx **tasks_out)
{
	const weft_dag *d = g->d;
	size_t nt = d->ntasks, na = d->nartifacts, ne = d->nedges;
	struct key_idx *tasks = malloc((nt + 1) * sizeof(*tasks));
	struct key_idx *arts = malloc((na + 1) * sizeof(*arts));
	g->facts = calloc(nt + 1, sizeof(*g->facts));
	g->task_in = calloc(nt + 1, sizeof(*g->task_in));
	g->art_in = calloc(na + 1, sizeof(*g->art_in));
	g->edge_task = malloc((ne + 1) * sizeof(*g->edge_task));
	g->edge_art = malloc((ne + 1) * sizeof(*g->edge_art));
	g->updated = malloc((na + 1) * sizeof(*g->updated));
	g->parent = malloc((nt + 1) * sizeof(*g->parent));
	g->art_task = malloc((na + 1) * sizeof(*g->art_task));
	*tasks_out = tasks;
	if (!tasks || !arts || !g->facts || !g->task_in || !g->art_in ||
	    !g->edge_task || !g->edge_art || !g->updated || !g->parent ||
	    !g->art_task) {
		free(arts);
		return WEFT_ENOMEM;
	}
	for (size_t i = 0; i < nt; i++)
		tasks[i] = (struct key_idx){d->tasks[i].id, i};
	for (size_t i = 0; i < na; i++) {
		arts[i] = (struct key_idx){d->artifacts[i].id, i};
		g->updated[i] = SIZE_MAX;
	}
	qsort(tasks, nt, sizeof(*tasks), cmp_key);
	qsort(arts, na, sizeof(*arts), cmp_key);
	for (size_t i = 0; i < ne; i++) {
		const weft_dag_edge *e = &d->edges[i];
		g->edge_task[i] = lookup(tasks, nt, e->write ? e->from : e->to);
		g->edge_art[i] = lookup(arts, na, e->write ? e->to : e->from);
	}
	free(arts);
	return WEFT_OK;
}

/* Each task's parent, and each artifact's first task. */
static void link_parents(struct export_graph *g, const struct key_idx *tasks)
{
	const weft_dag *d = g->d;
	for (size_t t = 0; t < d->ntasks; t++)
		g->parent[t] = d->tasks[t].parent ? lookup(tasks, d->ntasks,
							   d->tasks[t].parent)
						  : SIZE_MAX;
	for (size_t a = 0; a < d->nartifacts; a++)
		g->art_task[a] = SIZE_MAX;
	for (size_t i = d->nedges; i-- > 0;)
		if (g->edge_art[i] != SIZE_MAX)
			g->art_task[g->edge_art[i]] = g->edge_task[i];
}

static int graph_build(weft_store *s, const char *job, struct export_graph *g,
		       char err[WEFT_EXPORT_ERR_BYTES])
{
	struct key_idx *tasks = NULL;
	int rc = index_edges(g, &tasks);
	if (!rc)
		rc = group_edges(g, g->edge_task, g->d->ntasks, false,
				 &g->task_first, &g->task_edges);
	if (!rc)
		rc = load_facts(s, job, g, tasks);
	if (!rc)
		link_parents(g, tasks);
	if (!rc)
		rc = link_tasks(g);
	free(tasks);
	if (rc == WEFT_EDB)
		say(err, "cannot read the store: %s", weft_store_errmsg(s));
	else if (rc)
		say(err, "%s", weft_strerror(rc));
	return rc;
}

/* The task sc->run names: equal to an id, else the one id it starts. */
static int find_run(const weft_dag *d, const char *run, size_t *out,
		    char err[WEFT_EXPORT_ERR_BYTES])
{
	size_t n = 0, len = strlen(run);
	*out = SIZE_MAX;
	for (size_t i = 0; i < d->ntasks; i++) {
		if (strcmp(d->tasks[i].id, run) == 0) {
			*out = i;
			return WEFT_OK;
		}
		if (len && strncmp(d->tasks[i].id, run, len) == 0 && !n++)
			*out = i;
	}
	if (n == 1)
		return WEFT_OK;
	if (n == 0) {
		say(err, "no recorded run has the id '%s'", run);
		return WEFT_ENOTFOUND;
	}
	say(err, "'%s' starts the ids of %zu runs: give more of the id", run,
	    n);
	return WEFT_EINVAL;
}

int export_graph_load(weft_store *s, const weft_export_scope *sc,
		      struct export_graph *g, char err[WEFT_EXPORT_ERR_BYTES])
{
	memset(g, 0, sizeof(*g));
	err[0] = '\0';
	int rc = weft_store_dag(s, sc->job, &g->own);
	if (rc == WEFT_ENOTFOUND) {
		/* A job whose fragments have not arrived: an empty graph. */
		memset(&g->own, 0, sizeof(g->own));
		rc = WEFT_OK;
	}
	if (rc) {
		say(err, "cannot read the DAG: %s", weft_store_errmsg(s));
		return rc;
	}
	g->d = &g->own;
	g->owns = true;
	if ((rc = graph_build(s, sc->job, g, err)))
		return rc;
	const weft_dag *d = g->d;
	size_t only = SIZE_MAX;
	if (sc->run && (rc = find_run(d, sc->run, &only, err)))
		return rc;
	for (size_t t = 0; t < d->ntasks; t++)
		g->task_in[t] = only == SIZE_MAX || t == only;
	for (size_t i = 0; i < d->nedges; i++)
		if (g->edge_art[i] != SIZE_MAX &&
		    (only == SIZE_MAX || g->edge_task[i] == only))
			g->art_in[g->edge_art[i]] = true;
	if (only == SIZE_MAX) /* artifacts without edges, kept all the same */
		for (size_t a = 0; a < d->nartifacts; a++)
			g->art_in[a] = true;
	return WEFT_OK;
}

int export_graph_over(weft_store *s, const weft_dag *d,
		      weft_render_hide_fn hide, struct export_graph *g,
		      char err[WEFT_EXPORT_ERR_BYTES])
{
	memset(g, 0, sizeof(*g));
	err[0] = '\0';
	g->d = d;
	int rc = graph_build(s, d->job, g, err);
	if (rc)
		return rc;
	for (size_t t = 0; t < d->ntasks; t++)
		g->task_in[t] = true;
	for (size_t a = 0; a < d->nartifacts; a++)
		g->art_in[a] = true;
	if (!hide)
		return WEFT_OK;
	for (size_t a = 0; a < d->nartifacts; a++)
		if (d->artifacts[a].path && hide(d->artifacts[a].path))
			g->art_in[a] = false;
	for (size_t i = 0; i < d->nedges; i++)
		if (d->edges[i].write && g->edge_art[i] != SIZE_MAX)
			g->art_in[g->edge_art[i]] = true; /* someone wrote it */
	return WEFT_OK;
}

void export_graph_free(struct export_graph *g)
{
	static const size_t fact_strings[] = {
		offsetof(struct export_task, command),
		offsetof(struct export_task, exe),
		offsetof(struct export_task, cwd),
		offsetof(struct export_task, user),
		offsetof(struct export_task, job),
		STORE_MEMBERS_END};
	store_free_members(g->facts, g->facts && g->d ? g->d->ntasks : 0,
			   sizeof(*g->facts), fact_strings);
	free(g->task_in);
	free(g->art_in);
	free(g->edge_task);
	free(g->edge_art);
	free(g->updated);
	free(g->parent);
	free(g->art_task);
	free(g->task_first);
	free(g->task_edges);
	free(g->informed);
	if (g->owns)
		weft_dag_release(&g->own);
	memset(g, 0, sizeof(*g));
}

bool export_edge_in(const struct export_graph *g, size_t i)
{
	size_t t = g->edge_task[i], a = g->edge_art[i];
	return t != SIZE_MAX && a != SIZE_MAX && g->task_in[t] && g->art_in[a];
}

void export_iri_escaped(FILE *out, const char *s, const char *keep)
{
	static const char hex[] = "0123456789ABCDEF";
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		unsigned char c = *p;
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '.' ||
		    c == '_' || c == '~' || (keep && strchr(keep, c))) {
			fputc(c, out);
		} else {
			fputc('%', out);
			fputc(hex[c >> 4], out);
			fputc(hex[c & 15], out);
		}
	}
}

const char *export_basename(const char *path)
{
	const char *slash = strrchr(path, '/');
	return slash && slash[1] ? slash + 1 : path;
}

const char *export_hash_text(const weft_dag_artifact *a,
			     char text[WEFT_HASH_TEXT_BYTES])
{
	if (!a->has_hash)
		return NULL;
	weft_hash_to_text(a->hash, text);
	return text;
}

const char *export_user_of(const struct export_graph *g, size_t t)
{
	return g->facts[t].user;
}

bool *export_first_of(const struct export_graph *g, export_key_fn key)
{
	const weft_dag *d = g->d;
	struct key_idx *keys = malloc((d->ntasks + 1) * sizeof(*keys));
	bool *first = calloc(d->ntasks + 1, sizeof(*first));
	if (!keys || !first) {
		free(keys);
		free(first);
		return NULL;
	}
	size_t n = 0;
	for (size_t t = 0; t < d->ntasks; t++)
		if (g->task_in[t])
			keys[n++] = (struct key_idx){key(g, t), t};
	qsort(keys, n, sizeof(*keys), cmp_key);
	for (size_t i = 0; i < n; i++)
		first[keys[i].i] =
			i == 0 || strcmp(keys[i - 1].key, keys[i].key);
	free(keys);
	return first;
}

void export_str_member(FILE *out, const char *sep, const char *key,
		       const char *v)
{
	if (!v)
		return;
	fprintf(out, "%s\"%s\": ", sep, key);
	weft_json_string(out, v);
}

void export_task_members(FILE *out, const char *sep,
			 const struct export_graph *g, size_t t)
{
	const weft_dag_task *task = &g->d->tasks[t];
	const struct export_task *f = &g->facts[t];
	export_str_member(out, sep, "weft:runId", task->id);
	export_str_member(out, sep, "weft:command", f->command);
	export_str_member(out, sep, "weft:executable", f->exe);
	export_str_member(out, sep, "weft:cwd", f->cwd);
	export_str_member(out, sep, "weft:node", task->node);
	export_str_member(out, sep, "weft:backend", task->backend);
	export_str_member(out, sep, "weft:job", f->job);
	fprintf(out, "%s\"weft:exitCode\": %d", sep, task->exit_code);
	if (task->parts_stored < task->nparts)
		fprintf(out, "%s\"weft:complete\": false", sep);
}

int export_check_written(FILE *out, const char *what,
			 char err[WEFT_EXPORT_ERR_BYTES])
{
	if (fflush(out) == 0 && !ferror(out))
		return WEFT_OK;
	say(err, "cannot write %s: %s", what, strerror(errno));
	return WEFT_EIO;
}
