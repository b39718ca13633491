/*
 * store_lineage_test.c - the lineage of one file in a real store: up to
 * what produced its latest version, down to what that fed, weak edges
 * (versions not known), contents that go round, jobs' boundaries left
 * alone, an unknown path refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "store_internal.h"
#include "store_testutil.h"

/* ---- The oracle: the lineage as a walk over the whole DAG ----
 *
 * weft_store_lineage loads only the locations its walk reaches; this
 * reference builds the whole DAG (store_dag_links) and walks it in memory.
 * Both must give the same lineage for every file. */

/* Edges grouped by artifact and by task (counting sort by index). */
struct adjacency {
	size_t *by_art, *art_start; /* edge ids, and [start, start+1) */
	size_t *by_task, *task_start;
};

static int group(const struct dag_link *l, size_t n, size_t nkeys, bool by_task,
		 size_t **ids, size_t **start)
{
	*start = calloc(nkeys + 1, sizeof(**start));
	*ids = malloc((n ? n : 1) * sizeof(**ids));
	if (!*start || !*ids)
		return WEFT_ENOMEM;
	for (size_t i = 0; i < n; i++)
		(*start)[(by_task ? l[i].task : l[i].artifact) + 1]++;
	for (size_t k = 0; k < nkeys; k++)
		(*start)[k + 1] += (*start)[k];
	size_t *fill = malloc((nkeys + 1) * sizeof(*fill));
	if (!fill)
		return WEFT_ENOMEM;
	memcpy(fill, *start, (nkeys + 1) * sizeof(*fill));
	for (size_t i = 0; i < n; i++)
		(*ids)[fill[by_task ? l[i].task : l[i].artifact]++] = i;
	free(fill);
	return WEFT_OK;
}

/* The file's latest version: the last version written at a path it is
 * known by (its own, or the name a task used), else the last one read. */
static size_t find_root(const weft_dag *d, const struct dag_link *l,
			const char *path)
{
	size_t written = SIZE_MAX, read = SIZE_MAX;
	for (size_t i = 0; i < d->nedges; i++) {
		const weft_dag_edge *e = &d->edges[i];
		const char *p =
			e->path ? e->path : d->artifacts[l[i].artifact].path;
		if (strcmp(p, path) != 0 &&
		    strcmp(d->artifacts[l[i].artifact].path, path) != 0)
			continue;
		if (e->write)
			written = l[i].artifact;
		else
			read = l[i].artifact;
	}
	return written != SIZE_MAX ? written : read;
}

/* What the walk found, in the order found. */
struct found {
	size_t *arts, *tasks, *edges;
	size_t narts, ntasks, nedges;
	bool *art_seen, *task_seen, *edge_seen;
};

/* Move the parts of full that were found into out, in the order found
 * (the root first). */
static int take(weft_dag *full, const struct found *f, weft_dag *out)
{
	out->tasks = calloc(f->ntasks + 1, sizeof(*out->tasks));
	out->artifacts = calloc(f->narts + 1, sizeof(*out->artifacts));
	out->edges = calloc(f->nedges + 1, sizeof(*out->edges));
	if (!out->tasks || !out->artifacts || !out->edges)
		return WEFT_ENOMEM;
	/* Ownership moves: what is taken is cleared in full. */
	for (size_t i = 0; i < f->narts; i++) {
		out->artifacts[out->nartifacts++] = full->artifacts[f->arts[i]];
		memset(&full->artifacts[f->arts[i]], 0,
		       sizeof(*out->artifacts));
	}
	for (size_t i = 0; i < f->ntasks; i++) {
		out->tasks[out->ntasks++] = full->tasks[f->tasks[i]];
		memset(&full->tasks[f->tasks[i]], 0, sizeof(*out->tasks));
	}
	for (size_t i = 0; i < f->nedges; i++) {
		out->edges[out->nedges++] = full->edges[f->edges[i]];
		memset(&full->edges[f->edges[i]], 0, sizeof(*out->edges));
	}
	return WEFT_OK;
}

/* Breadth first from the root, artifacts before tasks: an artifact's
 * writers (up) or readers (down), a task's reads (up) or writes (down). */
static void walk(const weft_dag *d, const struct dag_link *l,
		 const struct adjacency *x, size_t root, bool down,
		 struct found *f)
{
	f->art_seen[root] = true;
	f->arts[f->narts++] = root;
	size_t ai = 0, ti = 0;
	while (ai < f->narts || ti < f->ntasks) {
		bool is_task = ai == f->narts;
		size_t k = is_task ? f->tasks[ti++] : f->arts[ai++];
		const size_t *ids = is_task ? x->by_task : x->by_art;
		const size_t *start = is_task ? x->task_start : x->art_start;
		for (size_t j = start[k]; j < start[k + 1]; j++) {
			size_t e = ids[j];
			bool write = d->edges[e].write;
			if (is_task ? write != down : write == down)
				continue;
			if (!f->edge_seen[e]) {
				f->edge_seen[e] = true;
				f->edges[f->nedges++] = e;
			}
			if (is_task && !f->art_seen[l[e].artifact]) {
				f->art_seen[l[e].artifact] = true;
				f->arts[f->narts++] = l[e].artifact;
			} else if (!is_task && !f->task_seen[l[e].task]) {
				f->task_seen[l[e].task] = true;
				f->tasks[f->ntasks++] = l[e].task;
			}
		}
	}
}

static int oracle_lineage(weft_store *s, const char *path, const char *job,
			  bool down, weft_dag *out)
{
	memset(out, 0, sizeof(*out));
	weft_dag full;
	struct dag_link *l = NULL;
	int err = store_dag_links(s, job, &full, &l);
	if (err)
		return err;
	struct adjacency x = {0};
	struct found f = {0};
	f.arts = malloc((full.nartifacts + 1) * sizeof(size_t));
	f.tasks = malloc((full.ntasks + 1) * sizeof(size_t));
	f.edges = malloc((full.nedges + 1) * sizeof(size_t));
	f.art_seen = calloc(full.nartifacts + 1, sizeof(bool));
	f.task_seen = calloc(full.ntasks + 1, sizeof(bool));
	f.edge_seen = calloc(full.nedges + 1, sizeof(bool));
	if (!f.arts || !f.tasks || !f.edges || !f.art_seen || !f.task_seen ||
	    !f.edge_seen)
		err = WEFT_ENOMEM;
	if (!err)
		err = group(l, full.nedges, full.nartifacts, false, &x.by_art,
			    &x.art_start);
	if (!err)
		err = group(l, full.nedges, full.ntasks, true, &x.by_task,
			    &x.task_start);
	size_t root = err ? SIZE_MAX : find_root(&full, l, path);
	if (!err && root == SIZE_MAX)
		err = WEFT_ENOTFOUND;
	if (!err)
		walk(&full, l, &x, root, down, &f);
	if (!err && job && !(out->job = strdup(job)))
		err = WEFT_ENOMEM;
	if (!err)
		err = take(&full, &f, out);
	if (err)
		weft_dag_release(out);
	weft_dag_release(&full);
	free(l);
	free(f.arts);
	free(f.tasks);
	free(f.edges);
	free(f.art_seen);
	free(f.task_seen);
	free(f.edge_seen);
	free(x.by_art);
	free(x.art_start);
	free(x.by_task);
	free(x.task_start);
	return err;
}

/* Store a run from a spec: space-separated
 * "<flags><path>[@<location>][=<hex byte>]", flags r and/or w, no "="
 * meaning no hash: the hash of the version written (w), else of the
 * version read (r). Files are opened when the run starts and written
 * then, on the filesystem "local test", or at the path location of the
 * filesystem "shared test" (a mount elsewhere). The run is named by id,
 * its command is the id too. */
static void run(weft_store *s, const char *id, int64_t started,
		const char *spec)
{
	weft_report r;
	report_of_run(&r, id, started, started + 1);
	char *copy = xstrdup(spec), *save = NULL;
	for (char *tok = strtok_r(copy, " ", &save); tok;
	     tok = strtok_r(NULL, " ", &save)) {
		char *path = tok + strspn(tok, "rw");
		char *eq = strchr(path, '=');
		if (eq)
			*eq = '\0';
		char *at = strchr(path, '@');
		if (at)
			*at = '\0';
		bool rd = memchr(tok, 'r', (size_t)(path - tok)) != NULL;
		bool wr = memchr(tok, 'w', (size_t)(path - tok)) != NULL;
		weft_file_rec *f = add_file(&r, path, rd, wr);
		f->loc_fs = xstrdup(at ? "shared test" : "local test");
		f->loc_path = xstrdup(at ? at + 1 : path);
		f->first_open_ns = started;
		f->last_write_ns = wr ? started : 0;
		if (eq && wr) {
			f->has_hash = true;
			hash_of(f->hash, (uint8_t)strtoul(eq + 1, NULL, 16));
		} else if (eq) {
			f->has_read_hash = true;
			hash_of(f->read_hash,
				(uint8_t)strtoul(eq + 1, NULL, 16));
		}
	}
	free(copy);
	assert_int_equal(weft_store_put_run(s, &r), WEFT_OK);
	weft_report_release(&r);
}

/* The lineage as one line: "tasks | artifact paths | edges", an edge as
 * "from>to" with task ids and artifact paths, "~" for weak. */
static void summary(const weft_dag *d, char *out, size_t outsz)
{
	size_t n = 0;
	for (size_t i = 0; i < d->ntasks; i++)
		n += (size_t)snprintf(out + n, outsz - n, "%s ",
				      d->tasks[i].id);
	n += (size_t)snprintf(out + n, outsz - n, "|");
	for (size_t i = 0; i < d->nartifacts; i++)
		n += (size_t)snprintf(out + n, outsz - n, " %s",
				      d->artifacts[i].path);
	n += (size_t)snprintf(out + n, outsz - n, " |");
	for (size_t i = 0; i < d->nedges; i++) {
		const weft_dag_edge *e = &d->edges[i];
		const char *ids[2] = {e->from, e->to};
		n += (size_t)snprintf(out + n, outsz - n, " ");
		for (int k = 0; k < 2; k++) {
			const char *name = ids[k];
			for (size_t a = 0; a < d->nartifacts; a++)
				if (!strcmp(d->artifacts[a].id, ids[k]))
					name = d->artifacts[a].path;
			n += (size_t)snprintf(out + n, outsz - n, "%s%s", name,
					      k ? "" : (e->weak ? "~" : ">"));
		}
		assert_true(n < outsz);
	}
}

static void check(weft_store *s, const char *path, bool down, const char *want)
{
	weft_dag d;
	char got[1024];
	assert_int_equal(weft_store_lineage(s, path, NULL, down, &d), WEFT_OK);
	summary(&d, got, sizeof(got));
	assert_string_equal(got, want);
	weft_dag_release(&d);
}

/* A writes x, B reads x and writes y, C reads y and writes z. */
static void three_runs(weft_store *s)
{
	run(s, "C", 300, "r/p/y=22 w/p/z=33 r/usr/lib/libc=99");
	run(s, "A", 100, "w/p/x=11 r/usr/lib/libc=99");
	run(s, "B", 200, "r/p/x=11 w/p/y=22");
	run(s, "other", 400, "r/p/q=44 w/p/r=55");
}

static void test_up(void **state)
{
	struct scratch *t = *state;
	weft_store *s;
	assert_int_equal(weft_store_open(t->db, &s), WEFT_OK);
	three_runs(s);
	check(s, "/p/z", false,
	      "C B A | /p/z /p/y /usr/lib/libc /p/x | C>/p/z /p/y>C "
	      "/usr/lib/libc>C B>/p/y /p/x>B A>/p/x /usr/lib/libc>A");
	/* The first file: its writer and what that read. */
	check(s, "/p/x", false,
	      "A | /p/x /usr/lib/libc | A>/p/x /usr/lib/libc>A");
	weft_store_close(s);
}

static void test_down(void **state)
{
	struct scratch *t = *state;
	weft_store *s;
	assert_int_equal(weft_store_open(t->db, &s), WEFT_OK);
	three_runs(s);
	check(s, "/p/x", true,
	      "B C | /p/x /p/y /p/z | /p/x>B B>/p/y /p/y>C C>/p/z");
	/* Down from a shared input: every task that read it. */
	check(s, "/usr/lib/libc", true,
	      "A C B | /usr/lib/libc /p/x /p/z /p/y | /usr/lib/libc>A "
	      "/usr/lib/libc>C A>/p/x /p/x>B C>/p/z B>/p/y /p/y>C");
	check(s, "/p/z", true, "| /p/z |");
	weft_store_close(s);
}

static void test_weak_edges(void **state)
{
	struct scratch *t = *state;
	weft_store *s;
	assert_int_equal(weft_store_open(t->db, &s), WEFT_OK);
	/* w has no hash: B depends on A by its path alone. */
	run(s, "A", 100, "w/p/w");
	run(s, "B", 200, "r/p/w w/p/v=44");
	check(s, "/p/v", false, "B A | /p/v /p/w | B>/p/v /p/w~B A~/p/w");
	check(s, "/p/w", true, "B | /p/w /p/v | /p/w~B B>/p/v");
	/* A file a task read and rewrote: the version it read is not known
	 * (its hash is of what it wrote), so it is likely B's: weak. */
	run(s, "C", 300, "rw/p/v=45");
	check(s, "/p/v", false,
	      "C B A | /p/v /p/v /p/w | C>/p/v /p/v~C B>/p/v /p/w~B A~/p/w");
	weft_store_close(s);
}

static void test_cycle_ends(void **state)
{
	struct scratch *t = *state;
	weft_store *s;
	assert_int_equal(weft_store_open(t->db, &s), WEFT_OK);
	/* The same contents go round: A makes c2 from c1, B c1 from c2.
	 * By version there is no cycle: A read the c1 that was there before
	 * B wrote its own, so the walk ends at that earlier version. */
	run(s, "A", 100, "r/p/c1=55 w/p/c2=66");
	run(s, "B", 200, "r/p/c2=66 w/p/c1=55");
	check(s, "/p/c1", false,
	      "B A | /p/c1 /p/c2 /p/c1 | B>/p/c1 /p/c2>B A>/p/c2 /p/c1>A");
	check(s, "/p/c1", true, "| /p/c1 |");
	check(s, "/p/c2", true, "B | /p/c2 /p/c1 | /p/c2>B B>/p/c1");
	weft_store_close(s);
}

/* Everything of a lineage as sorted lines, order aside. */
static int line_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static char *flatten(const weft_dag *d)
{
	size_t n = d->ntasks + d->nartifacts + d->nedges, k = 0, len = 1;
	char **lines = calloc(n + 1, sizeof(char *));
	char buf[2048];
	for (size_t i = 0; i < d->ntasks; i++) {
		snprintf(buf, sizeof(buf), "task %s", d->tasks[i].id);
		lines[k++] = xstrdup(buf);
	}
	for (size_t i = 0; i < d->nartifacts; i++) {
		const weft_dag_artifact *a = &d->artifacts[i];
		snprintf(buf, sizeof(buf), "art %s %s %d %d", a->id, a->path,
			 a->kind, a->has_hash);
		lines[k++] = xstrdup(buf);
	}
	for (size_t i = 0; i < d->nedges; i++) {
		const weft_dag_edge *e = &d->edges[i];
		snprintf(buf, sizeof(buf), "edge %s>%s %d%d%d %s", e->from,
			 e->to, e->write, e->weak, e->update,
			 e->path ? e->path : "-");
		lines[k++] = xstrdup(buf);
	}
	qsort(lines, k, sizeof(char *), line_cmp);
	for (size_t i = 0; i < k; i++)
		len += strlen(lines[i]) + 1;
	char *out = calloc(1, len);
	for (size_t i = 0; i < k; i++) {
		strcat(out, lines[i]);
		strcat(out, "\n");
		free(lines[i]);
	}
	free(lines);
	return out;
}

/* The walk gives what the whole DAG gives for each of paths, both ways. */
static void same_as_whole(weft_store *s, const char *const *paths, size_t n)
{
	for (size_t i = 0; i < n; i++)
		for (int down = 0; down < 2; down++) {
			weft_dag a, b;
			assert_int_equal(
				weft_store_lineage(s, paths[i], NULL, down, &a),
				WEFT_OK);
			assert_int_equal(
				oracle_lineage(s, paths[i], NULL, down, &b),
				WEFT_OK);
			char *fa = flatten(&a), *fb = flatten(&b);
			if (strcmp(fa, fb) != 0)
				fail_msg("%s %s:\nwalk:\n%s\nwhole DAG:\n%s",
					 paths[i], down ? "down" : "up", fa,
					 fb);
			assert_string_equal(a.artifacts[0].id,
					    b.artifacts[0].id);
			free(fa);
			free(fb);
			weft_dag_release(&a);
			weft_dag_release(&b);
		}
}

/* The walk gives what the whole DAG gives, for every path, both ways:
 * versions, updates, symlink names, deletions, renames, weak reads,
 * records without locations, another job's records left out. */
static void test_same_as_the_whole_dag(void **state)
{
	struct scratch *t = *state;
	weft_store *s;
	assert_int_equal(weft_store_open(t->db, &s), WEFT_OK);
	three_runs(s);
	run(s, "D", 500, "r/p/z=33 w/p/x=77");
	run(s, "E", 600, "r/p/x=77 rw/p/log=12");
	run(s, "F", 700, "rw/p/log=13 r/p/w r/p/q=44");
	run(s, "G", 800, "w/p/w=90 r/p/z=33");
	run(s, "H", 900, "r/p/x=11 r/p/w w/p/out=91");
	/* Records whose location is not their path (a shared filesystem
	 * mounted at /mnt/s), one named like a local file's location. */
	run(s, "I", 1000, "r/mnt/s/d@/d=44 w/mnt/s/e@/e=45 r/p/out=91");
	run(s, "J", 1100, "r/mnt/s/e@/e=45 w/mnt/s/p/x@/p/x=46");
	/* One location by two paths in one run (the filesystem mounted at
	 * /mnt/t too), the second path known from before: its record comes
	 * below the first in file_io's key and goes into the chain behind
	 * it. */
	run(s, "K", 1200, "r/mnt/t/d@/d=44 r/mnt/s/d@/d=44 w/mnt/t/k@/k=47");
	assert_int_equal(sql_int(t->db, STORE_CHAINS_WHOLE_SQL), 1);
	/* Records an older weft stored: no location, no version read (and
	 * so on no location's chain: the chains are built again). */
	sqlite3 *h;
	assert_int_equal(sqlite3_open(t->db, &h), SQLITE_OK);
	assert_int_equal(sqlite3_exec(h,
				      "UPDATE file_io SET loc_fs = NULL, "
				      "loc_path = NULL, read_artifact = NULL "
				      "WHERE run IN (SELECT num FROM runs "
				      "WHERE id IN ('F', 'G'));"
				      "DELETE FROM loc_heads;"
				      "UPDATE file_io SET prev_run = NULL, "
				      "prev_path = NULL;" STORE_CHAIN_SQL,
				      NULL, NULL, NULL),
			 SQLITE_OK);
	sqlite3_close(h);
	assert_int_equal(sql_int(t->db, STORE_CHAINS_WHOLE_SQL), 1);
	const char *paths[] = {"/p/x",     "/p/y",     "/p/z",
			       "/p/w",     "/p/log",   "/p/q",
			       "/p/r",     "/p/out",   "/usr/lib/libc",
			       "/mnt/s/d", "/mnt/s/e", "/mnt/s/p/x",
			       "/mnt/t/d", "/mnt/t/k"};
	same_as_whole(s, paths, sizeof(paths) / sizeof(*paths));
	weft_store_close(s);
}

/* A store from before schema step 12 (records by location in an index):
 * its records are chained when it is opened, and the walk finds them
 * and what is stored after. */
static void test_chains_of_an_older_store(void **state)
{
	struct scratch *t = *state;
	weft_store *s;
	assert_int_equal(weft_store_open(t->db, &s), WEFT_OK);
	three_runs(s);
	run(s, "D", 500, "r/p/z=33 w/p/x=77");
	run(s, "E", 600, "r/p/x=77 rw/p/log=12");
	run(s, "F", 700, "rw/p/log=13 r/mnt/s/e@/e=45 r/mnt/t/e@/e=45");
	weft_store_close(s);
	sqlite3 *h;
	assert_int_equal(sqlite3_open(t->db, &h), SQLITE_OK);
	assert_int_equal(sqlite3_exec(h,
				      STORE_BEFORE_STEP_12
				      "PRAGMA user_version = 11;",
				      NULL, NULL, NULL),
			 SQLITE_OK);
	sqlite3_close(h);
	assert_int_equal(weft_store_open(t->db, &s), WEFT_OK);
	assert_int_equal(sql_int(t->db, "PRAGMA user_version"), 12);
	assert_int_equal(sql_int(t->db, STORE_CHAINS_WHOLE_SQL), 1);
	assert_int_equal(sql_int(t->db, "SELECT count(*) FROM sqlite_schema "
					"WHERE name = 'file_io_by_location'"),
			 0);
	run(s, "G", 800, "r/p/x=77 w/p/z=34 r/mnt/t/e@/e=45");
	assert_int_equal(sql_int(t->db, STORE_CHAINS_WHOLE_SQL), 1);
	const char *paths[] = {"/p/x",   "/p/y",     "/p/z",
			       "/p/log", "/mnt/s/e", "/mnt/t/e"};
	same_as_whole(s, paths, sizeof(paths) / sizeof(*paths));
	weft_store_close(s);
}

static void test_unknown_path_and_job(void **state)
{
	struct scratch *t = *state;
	weft_store *s;
	weft_dag d;
	assert_int_equal(weft_store_open(t->db, &s), WEFT_OK);
	three_runs(s);
	assert_int_equal(weft_store_lineage(s, "/p/nope", NULL, false, &d),
			 WEFT_ENOTFOUND);
	assert_int_equal(d.ntasks, 0);
	/* Local runs belong to no job: none of them is in job "j". */
	assert_int_equal(weft_store_lineage(s, "/p/z", "j", false, &d),
			 WEFT_ENOTFOUND);
	weft_store_close(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_up, scratch_setup,
						scratch_teardown),
		cmocka_unit_test_setup_teardown(test_down, scratch_setup,
						scratch_teardown),
		cmocka_unit_test_setup_teardown(test_weak_edges, scratch_setup,
						scratch_teardown),
		cmocka_unit_test_setup_teardown(test_cycle_ends, scratch_setup,
						scratch_teardown),
		cmocka_unit_test_setup_teardown(test_same_as_the_whole_dag,
						scratch_setup,
						scratch_teardown),
		cmocka_unit_test_setup_teardown(test_chains_of_an_older_store,
						scratch_setup,
						scratch_teardown),
		cmocka_unit_test_setup_teardown(test_unknown_path_and_job,
						scratch_setup,
						scratch_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
