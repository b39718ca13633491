/*
 * store_dag_test.c - the lineage DAG built from runs in a real store:
 * dependencies through content hashes across paths and runs, weak edges for
 * hashless files, what is left out, and a stable order.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "store_testutil.h"

struct fixture {
	struct scratch t;
	weft_store *s;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	if (!f)
		return -1;
	scratch_init(&f->t);
	if (weft_store_open(f->t.db, &f->s) != WEFT_OK)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	weft_store_close(f->s);
	scratch_fini(&f->t);
	free(f);
	return 0;
}

/* A run: id, start time, and file records given as "rw" flags, path and
 * hash byte (0: no hash). */
struct io {
	const char *flags; /* any of r, w, d (deleted) */
	const char *path;
	uint8_t hash;
	const char *renamed_to;
};

static void put_run(weft_store *s, const char *id, int64_t started,
		    const char *cmd, const struct io *io)
{
	weft_report r;
	weft_report_init(&r);
	strcpy(r.run_id, id);
	strcpy(r.backend, "ptrace");
	strcpy(r.node, started % 2 ? "" : "node-a");
	r.exit_code = (int32_t)(started % 7);
	r.started_ns = started;
	const char *argv[] = {cmd, "--flag", NULL};
	add_process(&r, 10, 0, argv);
	for (; io && io->path; io++) {
		weft_file_rec *f =
			add_file(&r, io->path, strchr(io->flags, 'r') != NULL,
				 strchr(io->flags, 'w') != NULL);
		f->deleted = strchr(io->flags, 'd') != NULL;
		if (io->renamed_to)
			f->renamed_to = xstrdup(io->renamed_to);
		if (io->hash) {
			f->has_hash = true;
			hash_of(f->hash, io->hash);
		}
	}
	assert_int_equal(weft_store_put_run(s, &r), WEFT_OK);
	weft_report_release(&r);
}

static const char *hid(uint8_t byte, char buf[WEFT_HASH_TEXT_BYTES])
{
	uint8_t h[32];
	hash_of(h, byte);
	weft_hash_to_text(h, buf);
	return buf;
}

/* Compare the edges with "from > to kind[ weak]" lines. */
static void assert_edges(const weft_dag *d, const char *const *want, size_t n)
{
	char line[512];
	for (size_t i = 0; i < d->nedges && i < n; i++) {
		const weft_dag_edge *e = &d->edges[i];
		snprintf(line, sizeof(line), "%s > %s %s%s", e->from, e->to,
			 e->write ? "write" : "read", e->weak ? " weak" : "");
		assert_string_equal(line, want[i]);
	}
	assert_int_equal(d->nedges, n);
}

static void test_chain_through_hashes(void **state)
{
	struct fixture *fx = *state;
	char x[WEFT_HASH_TEXT_BYTES], y[WEFT_HASH_TEXT_BYTES];
	const struct io a[] = {{"w", "/p/x", 0x11}, {0}};
	const struct io b[] = {{"r", "/p/x", 0x11}, {"w", "/p/y", 0x22}, {0}};
	const struct io c[] = {{"r", "/p/y", 0x22}, {0}};
	/* Inserted out of order: tasks follow start time. */
	put_run(fx->s, "run-c", 301, "c", c);
	put_run(fx->s, "run-a", 100, "a", a);
	put_run(fx->s, "run-b", 200, "b", b);

	weft_dag d;
	assert_int_equal(weft_store_dag(fx->s, NULL, &d), WEFT_OK);
	assert_null(d.job);
	assert_int_equal(d.ntasks, 3);
	assert_string_equal(d.tasks[0].id, "run-a");
	assert_string_equal(d.tasks[1].id, "run-b");
	assert_string_equal(d.tasks[2].id, "run-c");
	assert_string_equal(d.tasks[0].name, "a --flag");
	assert_string_equal(d.tasks[0].node, "node-a");
	assert_string_equal(d.tasks[0].backend, "ptrace");
	assert_int_equal(d.tasks[0].exit_code, 100 % 7);
	assert_null(d.tasks[0].parent);
	assert_null(d.tasks[2].node); /* empty node is unknown */

	assert_int_equal(d.nartifacts, 2);
	assert_string_equal(d.artifacts[0].id, hid(0x11, x));
	assert_string_equal(d.artifacts[0].path, "/p/x");
	assert_true(d.artifacts[0].has_hash);
	uint8_t h[32];
	hash_of(h, 0x11);
	assert_memory_equal(d.artifacts[0].hash, h, 32);
	assert_string_equal(d.artifacts[1].id, hid(0x22, y));
	assert_string_equal(d.artifacts[1].path, "/p/y");

	char w[4][256];
	snprintf(w[0], sizeof(w[0]), "run-a > %s write", x);
	snprintf(w[1], sizeof(w[1]), "%s > run-b read", x);
	snprintf(w[2], sizeof(w[2]), "run-b > %s write", y);
	snprintf(w[3], sizeof(w[3]), "%s > run-c read", y);
	const char *want[] = {w[0], w[1], w[2], w[3]};
	assert_edges(&d, want, 4);
	weft_dag_release(&d);

	/* Content A wrote, read at another path by a later run: the same
	 * artifact, so the dependency on A holds across paths. */
	const struct io e[] = {{"r", "/copies/x.bak", 0x11}, {0}};
	put_run(fx->s, "run-e", 400, "e", e);
	assert_int_equal(weft_store_dag(fx->s, NULL, &d), WEFT_OK);
	assert_int_equal(d.ntasks, 4);
	assert_int_equal(d.nartifacts, 2);
	assert_int_equal(d.nedges, 5);
	assert_string_equal(d.edges[4].from, x);
	assert_string_equal(d.edges[4].to, "run-e");
	assert_false(d.edges[4].write);
	assert_false(d.edges[4].weak);
	assert_string_equal(d.artifacts[0].path, "/p/x");
	weft_dag_release(&d);
}

static void test_artifact_path_prefers_first_write(void **state)
{
	struct fixture *fx = *state;
	char z[WEFT_HASH_TEXT_BYTES];
	/* Read (at one path) before anyone is seen writing it (at another),
	 * then written at two paths: the first write names it. */
	const struct io reader[] = {{"r", "/in/z", 0x33}, {0}};
	const struct io writer[] = {
		{"w", "/out/z1", 0x33}, {"w", "/out/z2", 0x33}, {0}};
	const struct io writer2[] = {{"w", "/later/z", 0x33}, {0}};
	put_run(fx->s, "r1", 10, "reader", reader);
	put_run(fx->s, "w1", 20, "writer", writer);
	put_run(fx->s, "w2", 30, "writer2", writer2);
	weft_dag d;
	assert_int_equal(weft_store_dag(fx->s, NULL, &d), WEFT_OK);
	assert_int_equal(d.nartifacts, 1);
	assert_string_equal(d.artifacts[0].id, hid(0x33, z));
	assert_string_equal(d.artifacts[0].path, "/out/z1");
	/* w1 wrote it twice: one edge. */
	char w[3][256];
	snprintf(w[0], sizeof(w[0]), "%s > r1 read", z);
	snprintf(w[1], sizeof(w[1]), "w1 > %s write", z);
	snprintf(w[2], sizeof(w[2]), "w2 > %s write", z);
	const char *want[] = {w[0], w[1], w[2]};
	assert_edges(&d, want, 3);
	weft_dag_release(&d);
}

static void test_hashless_files_are_weak_and_by_path(void **state)
{
	struct fixture *fx = *state;
	char x[WEFT_HASH_TEXT_BYTES];
	/* The writer's hash is known, the reader's is not: they must not be
	 * merged (a path match is never silently a content match). */
	const struct io w1[] = {{"w", "/p/a", 0}, {"w", "/p/b", 0x44}, {0}};
	const struct io r1[] = {{"r", "/p/a", 0}, {"r", "/p/b", 0}, {0}};
	put_run(fx->s, "w1", 1, "w", w1);
	put_run(fx->s, "r1", 2, "r", r1);
	weft_dag d;
	assert_int_equal(weft_store_dag(fx->s, NULL, &d), WEFT_OK);
	assert_int_equal(d.nartifacts, 3);
	assert_string_equal(d.artifacts[0].id, "path:/p/a");
	assert_false(d.artifacts[0].has_hash);
	assert_string_equal(d.artifacts[1].id, hid(0x44, x));
	assert_string_equal(d.artifacts[2].id, "path:/p/b");
	char w[1][256];
	snprintf(w[0], sizeof(w[0]), "w1 > %s write", x);
	const char *want[] = {"w1 > path:/p/a write weak", w[0],
			      "path:/p/a > r1 read weak",
			      "path:/p/b > r1 read weak"};
	assert_edges(&d, want, 4);
	weft_dag_release(&d);
}

static void test_left_out_and_deduplicated(void **state)
{
	struct fixture *fx = *state;
	char o[WEFT_HASH_TEXT_BYTES], i[WEFT_HASH_TEXT_BYTES];
	const struct io run[] = {
		/* A temporary renamed into place, and the place. */
		{"w", "/out/.tmp123", 0, "/out/final"},
		{"w", "/out/final", 0x55},
		/* Scratch written, read back and deleted. */
		{"rwd", "/scratch/s", 0},
		{"rd", "/scratch/in", 0x66},
		/* The same content read at two paths: one edge. */
		{"r", "/in/one", 0x77},
		{"r", "/in/two", 0x77},
		/* Neither read nor written (only looked at). */
		{"", "/etc/ld.so.cache", 0x99},
		{0}};
	put_run(fx->s, "t", 1, "t", run);
	weft_dag d;
	assert_int_equal(weft_store_dag(fx->s, NULL, &d), WEFT_OK);
	assert_int_equal(d.nartifacts, 2);
	assert_string_equal(d.artifacts[0].id, hid(0x77, i));
	assert_string_equal(d.artifacts[0].path, "/in/one");
	assert_string_equal(d.artifacts[1].id, hid(0x55, o));
	char w[2][256];
	snprintf(w[0], sizeof(w[0]), "%s > t read", i);
	snprintf(w[1], sizeof(w[1]), "t > %s write", o);
	const char *want[] = {w[0], w[1]};
	assert_edges(&d, want, 2);
	weft_dag_release(&d);
}

static void test_read_and_written_is_no_self_loop(void **state)
{
	struct fixture *fx = *state;
	char n[WEFT_HASH_TEXT_BYTES];
	/* Updated in place: the hash is of what the run wrote; what it
	 * read is known by path only. */
	const struct io run[] = {{"rw", "/db/state", 0x88}, {0}};
	put_run(fx->s, "u", 1, "u", run);
	weft_dag d;
	assert_int_equal(weft_store_dag(fx->s, NULL, &d), WEFT_OK);
	hid(0x88, n);
	char w[1][256];
	snprintf(w[0], sizeof(w[0]), "u > %s write", n);
	const char *want[] = {"path:/db/state > u read weak", w[0]};
	assert_edges(&d, want, 2);
	weft_dag_release(&d);
}

static void test_stable_and_empty(void **state)
{
	struct fixture *fx = *state;
	weft_dag d, d2;
	assert_int_equal(weft_store_dag(fx->s, NULL, &d), WEFT_OK);
	assert_int_equal(d.ntasks + d.nartifacts + d.nedges, 0);
	weft_dag_release(&d);
	assert_int_equal(weft_store_dag(fx->s, "job-1", &d), WEFT_ENOTFOUND);
	assert_null(d.tasks);

	/* Same start time: insertion order decides. */
	const struct io a[] = {{"w", "/b", 1}, {"w", "/a", 2}, {0}};
	const struct io b[] = {{"r", "/a", 2}, {"r", "/b", 1}, {0}};
	put_run(fx->s, "zz", 5, "zz", a);
	put_run(fx->s, "aa", 5, "aa", b);
	assert_int_equal(weft_store_dag(fx->s, NULL, &d), WEFT_OK);
	assert_int_equal(weft_store_dag(fx->s, NULL, &d2), WEFT_OK);
	assert_string_equal(d.tasks[0].id, "zz");
	/* Artifacts by first appearance: zz's files in path order. */
	char h2[WEFT_HASH_TEXT_BYTES];
	assert_string_equal(d.artifacts[0].id, hid(2, h2));
	assert_int_equal(d.nedges, d2.nedges);
	for (size_t i = 0; i < d.nedges; i++) {
		assert_string_equal(d.edges[i].from, d2.edges[i].from);
		assert_string_equal(d.edges[i].to, d2.edges[i].to);
	}
	assert_int_equal(d.nedges, 4);
	weft_dag_release(&d);
	weft_dag_release(&d2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_chain_through_hashes,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_artifact_path_prefers_first_write, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			test_hashless_files_are_weak_and_by_path, setup,
			teardown),
		cmocka_unit_test_setup_teardown(test_left_out_and_deduplicated,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_read_and_written_is_no_self_loop, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stable_and_empty, setup,
						teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
