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

#include "store_testutil.h"

/* Store a run from a spec: space-separated "<flags><path>[=<hex byte>]",
 * flags r and/or w, no "=" meaning no hash: the hash of the version
 * written (w), else of the version read (r). Files are opened when the run
 * starts and written then, on the filesystem "local test". The run is
 * named by id, its command is the id too. */
static void run(weft_store *s, const char *id, int64_t started,
		const char *spec)
{
	weft_report r;
	weft_report_init(&r);
	strcpy(r.run_id, id);
	strcpy(r.backend, "ptrace");
	strcpy(r.node, "n1");
	r.started_ns = started;
	r.ended_ns = started + 1;
	const char *argv[] = {id, NULL};
	add_process(&r, 10, 0, argv);
	char *copy = xstrdup(spec), *save = NULL;
	for (char *tok = strtok_r(copy, " ", &save); tok;
	     tok = strtok_r(NULL, " ", &save)) {
		char *path = tok + strspn(tok, "rw");
		char *eq = strchr(path, '=');
		if (eq)
			*eq = '\0';
		bool rd = memchr(tok, 'r', (size_t)(path - tok)) != NULL;
		bool wr = memchr(tok, 'w', (size_t)(path - tok)) != NULL;
		weft_file_rec *f = add_file(&r, path, rd, wr);
		f->loc_fs = xstrdup("local test");
		f->loc_path = xstrdup(path);
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
		cmocka_unit_test_setup_teardown(test_unknown_path_and_job,
						scratch_setup,
						scratch_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
