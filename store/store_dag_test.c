/*
 * store_dag_test.c - the lineage DAG built from runs in a real store, by
 * file version (DESIGN.md "Store and DAG: lineage by file version"): a
 * read depends on the writer of the version it read at the same location,
 * found by stat identity, else by hash and time; the last writer before
 * the open among identical ones; never a writer after the open; equal
 * bytes elsewhere only as "same content"; unknown versions weak; records
 * from before locations weak; ids stable across stores.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "store_testutil.h"

/* Store a run named id (its command is id too) from a spec of
 * space-separated tokens "<flags><path>[=HH][<HH][@N][>TO]":
 *   flags: r read, w written, u updated, d deleted, t tiny (2 bytes);
 *   =HH  the version written has hash byte HH;
 *   <HH  the version read has hash byte HH;
 *   @N   stat identity N: of the version read (r, u) at the first open,
 *        and of the version written (w), so that they can match;
 *   >TO  renamed to TO.
 * The first open is at started, the last write at started + 5, the run
 * ends at started + 10. Every file is on the filesystem "local test". */
static void run(weft_store *s, const char *id, int64_t started,
		const char *spec)
{
	static uint64_t unique = 1000; /* identities that match nothing */
	weft_report r;
	report_of_run(&r, id, started, started + 10);
	char *copy = xstrdup(spec), *save = NULL;
	for (char *tok = strtok_r(copy, " ", &save); tok;
	     tok = strtok_r(NULL, " ", &save)) {
		size_t nflags = strspn(tok, "rwudt");
		char *path = tok + nflags;
		char *to = strchr(path, '>'), *id_at = strchr(path, '@');
		char *wh = strchr(path, '='), *rh = strchr(path, '<');
		for (char *p = path; *p; p++)
			if (strchr("><@=", *p))
				*p = '\0';
		bool has = false;
#define FLAG(c) (memchr(tok, c, nflags) != NULL)
		weft_file_rec *f = add_file(&r, path, FLAG('r'), FLAG('w'));
		f->updated = FLAG('u');
		f->deleted = FLAG('d');
		int64_t size = FLAG('t') ? 2 : 100;
#undef FLAG
		uint64_t ident = id_at ? strtoull(id_at + 1, NULL, 10) : 0;
		f->loc_fs = xstrdup("local test");
		f->loc_path = xstrdup(path);
		f->first_open_ns = started;
		if (f->written)
			f->last_write_ns = started + 5;
		if (to)
			f->renamed_to = xstrdup(to + 1);
		if (f->read || f->updated) {
			f->has_first_stat = true;
			f->first_ino = ident ? ident : unique++;
			f->first_size = size;
			f->first_mtime_ns = f->first_ctime_ns =
				(int64_t)f->first_ino;
		}
		if (rh) {
			f->has_read_hash = true;
			hash_of(f->read_hash,
				(uint8_t)strtoul(rh + 1, NULL, 16));
		}
		if (wh) {
			f->has_hash = has = true;
			hash_of(f->hash, (uint8_t)strtoul(wh + 1, NULL, 16));
			f->has_size = true;
			f->size = size;
			f->has_final_stat = true;
			f->final_ino = ident ? ident : unique++;
			f->final_mtime_ns = f->final_ctime_ns =
				(int64_t)f->final_ino;
		}
		(void)has;
	}
	free(copy);
	assert_int_equal(weft_store_put_run(s, &r), WEFT_OK);
	weft_report_release(&r);
}

/* The task-to-task dependencies as sorted "reader<writer" words ("<~"
 * weak, "<+" an update), and the same-content links "path=path". */
static void deps(const weft_dag *d, char *out, size_t outsz)
{
	char words[64][128];
	size_t n = 0;
	for (size_t i = 0; i < d->nedges; i++) {
		const weft_dag_edge *e = &d->edges[i];
		if (e->write)
			continue;
		for (size_t k = 0; k < d->nedges; k++) {
			const weft_dag_edge *w = &d->edges[k];
			if (w->write && !strcmp(w->to, e->from) && n < 64)
				snprintf(words[n++], sizeof(words[0]),
					 "%s<%s%s", e->to,
					 e->weak     ? "~"
					 : e->update ? "+"
						     : "",
					 w->from);
		}
	}
	for (size_t i = 0; i < d->nsame && n < 64; i++) {
		const char *a = NULL, *b = NULL;
		for (size_t k = 0; k < d->nartifacts; k++) {
			if (!strcmp(d->artifacts[k].id, d->same[i].artifact))
				a = d->artifacts[k].path;
			if (!strcmp(d->artifacts[k].id, d->same[i].same_as))
				b = d->artifacts[k].path;
		}
		snprintf(words[n++], sizeof(words[0]), "%s=%s", a, b);
	}
	qsort(words, n, sizeof(words[0]),
	      (int (*)(const void *, const void *))strcmp);
	size_t len = 0;
	out[0] = '\0';
	for (size_t i = 0; i < n; i++)
		len += (size_t)snprintf(out + len, outsz - len, "%s%s",
					i ? " " : "", words[i]);
}

static void check(weft_store *s, const char *want)
{
	weft_dag d;
	char got[4096];
	assert_int_equal(weft_store_dag(s, NULL, &d), WEFT_OK);
	deps(&d, got, sizeof(got));
	assert_string_equal(got, want);
	weft_dag_release(&d);
}

static const weft_dag_artifact *artifact_at(const weft_dag *d, const char *path,
					    int kind)
{
	for (size_t i = 0; i < d->nartifacts; i++)
		if (!strcmp(d->artifacts[i].path, path) &&
		    d->artifacts[i].kind == kind)
			return &d->artifacts[i];
	fail_msg("no artifact of kind %d at %s", kind, path);
	return NULL;
}

static void test_chain(void **state)
{
	struct store_fixture *fx = *state;
	/* Inserted out of order: tasks follow start time. */
	run(fx->s, "C", 300, "r/p/y<22");
	run(fx->s, "A", 100, "w/p/x=11");
	run(fx->s, "B", 200, "r/p/x<11 w/p/y=22");
	check(fx->s, "B<A C<B");
	weft_dag d;
	assert_int_equal(weft_store_dag(fx->s, NULL, &d), WEFT_OK);
	assert_string_equal(d.tasks[0].id, "A");
	assert_string_equal(d.tasks[0].name, "A");
	assert_int_equal(d.nartifacts, 2);
	const weft_dag_artifact *x =
		artifact_at(&d, "/p/x", WEFT_VERSION_WRITTEN);
	assert_true(x->has_hash && x->has_size && x->size == 100);
	assert_string_equal(x->loc_fs, "local test");
	assert_string_equal(x->loc_path, "/p/x");
	assert_int_equal(strlen(x->id), 18);
	assert_memory_equal(x->id, "v:", 2);
	for (size_t i = 0; i < d.nedges; i++) {
		assert_false(d.edges[i].weak);
		assert_null(d.edges[i].path); /* every task used these names */
	}
	weft_dag_release(&d);
}

static void test_same_bytes_elsewhere(void **state)
{
	struct store_fixture *fx = *state;
	/* B reads y holding what A wrote to x: no dependency, a same-content
	 * link; not for a 2-byte content, which proves nothing. */
	run(fx->s, "A", 100, "w/p/x=11 tw/p/one=33");
	run(fx->s, "B", 200, "r/p/y<11 tr/p/two<33");
	check(fx->s, "/p/y=/p/x");
	weft_dag d;
	assert_int_equal(weft_store_dag(fx->s, NULL, &d), WEFT_OK);
	artifact_at(&d, "/p/y", WEFT_VERSION_SOURCE);
	weft_dag_release(&d);
	/* Five parallel writers of one content, one reader of each. */
	run(fx->s, "P1", 300, "w/o/1=44");
	run(fx->s, "P2", 300, "w/o/2=44");
	run(fx->s, "F", 400, "r/o/1<44 r/o/2<44");
	check(fx->s, "/p/y=/p/x F<P1 F<P2");
}

static void test_identity_beats_time(void **state)
{
	struct store_fixture *fx = *state;
	/* B's version is not known by hash (it changed before hashing),
	 * but its identity is what A left; B2's is what C left. */
	run(fx->s, "A", 100, "w/p/x=11@5");
	run(fx->s, "B", 200, "r/p/x@5");
	run(fx->s, "C", 300, "w/p/x=11@6");
	run(fx->s, "B2", 400, "r/p/x@6");
	check(fx->s, "B2<C B<A");
}

static void test_never_a_later_writer(void **state)
{
	struct store_fixture *fx = *state;
	/* B reads x; then A writes the very same bytes there. */
	run(fx->s, "B", 100, "r/p/x<11");
	run(fx->s, "A", 200, "w/p/x=11");
	check(fx->s, "");
}

static void test_rerun_identical(void **state)
{
	struct store_fixture *fx = *state;
	run(fx->s, "A1", 100, "w/p/o=11");
	run(fx->s, "R1", 200, "r/p/o<11");
	run(fx->s, "A2", 300, "w/p/o=11");
	run(fx->s, "R2", 400, "r/p/o<11");
	check(fx->s, "R1<A1 R2<A2");
}

static void test_unknown_version_is_weak(void **state)
{
	struct store_fixture *fx = *state;
	/* Neither hash nor a matching identity: likely A's, not known. A read
	 * nobody could have written stays alone. */
	run(fx->s, "A", 100, "w/p/x=11");
	run(fx->s, "B", 200, "r/p/x r/p/q");
	check(fx->s, "B<~A");
	weft_dag d;
	assert_int_equal(weft_store_dag(fx->s, NULL, &d), WEFT_OK);
	const weft_dag_artifact *q =
		artifact_at(&d, "/p/q", WEFT_VERSION_UNKNOWN);
	assert_false(q->has_hash);
	weft_dag_release(&d);
}

static void test_update_edges(void **state)
{
	struct store_fixture *fx = *state;
	/* A writes log, B appends to it (the version it updated is A's),
	 * C reads the result. */
	run(fx->s, "A", 100, "w/log=11@5");
	run(fx->s, "B", 200, "uw/log=22@5");
	run(fx->s, "C", 300, "r/log<22");
	check(fx->s, "B<+A C<B");
}

static void test_read_then_gone(void **state)
{
	struct store_fixture *fx = *state;
	/* B reads x then deletes it; a temporary renamed into place is a
	 * version at its new name only. */
	run(fx->s, "A", 100, "w/p/x=11 w/p/.tmp>/p/final w/p/final=55");
	run(fx->s, "B", 200, "rd/p/x<11 r/p/final<55");
	check(fx->s, "B<A B<A");
	weft_dag d;
	assert_int_equal(weft_store_dag(fx->s, NULL, &d), WEFT_OK);
	for (size_t i = 0; i < d.nartifacts; i++)
		assert_string_not_equal(d.artifacts[i].path, "/p/.tmp");
	weft_dag_release(&d);
}

static void test_records_without_locations(void **state)
{
	struct store_fixture *fx = *state;
	/* As a store of schema 1 holds them: no location, no version read,
	 * no times. A read becomes weak, never a strong edge. */
	run(fx->s, "A", 100, "w/p/x=11");
	run(fx->s, "B", 200, "r/p/x<11");
	run(fx->s, "C", 300, "r/p/y<11");
	sqlite3 *h;
	assert_int_equal(sqlite3_open(fx->t.db, &h), SQLITE_OK);
	assert_int_equal(sqlite3_exec(h,
				      "UPDATE file_io SET loc_fs = NULL, "
				      "loc_path = NULL, read_artifact = NULL, "
				      "first_open_ns = NULL, last_write_ns = "
				      "NULL, final_ino = NULL, first_dev = "
				      "NULL",
				      NULL, NULL, NULL),
			 SQLITE_OK);
	sqlite3_close(h);
	check(fx->s, "B<~A");
}

static void test_stable_ids(void **state)
{
	struct store_fixture *fx = *state;
	run(fx->s, "A", 100, "w/p/x=11");
	run(fx->s, "B", 200, "r/p/x<11 r/p/in<77 w/p/y=22");
	/* The same records in another store, in another order. */
	char other[4200];
	snprintf(other, sizeof(other), "%s.2", fx->t.db);
	weft_store *s2;
	assert_int_equal(weft_store_open(other, &s2), WEFT_OK);
	run(s2, "Z", 50, "w/p/z=99");
	run(s2, "B", 200, "r/p/x<11 r/p/in<77 w/p/y=22");
	run(s2, "A", 100, "w/p/x=11");
	weft_dag d, d2;
	assert_int_equal(weft_store_dag(fx->s, NULL, &d), WEFT_OK);
	assert_int_equal(weft_store_dag(s2, NULL, &d2), WEFT_OK);
	for (size_t i = 0; i < d.nartifacts; i++) {
		bool found = false;
		for (size_t k = 0; k < d2.nartifacts; k++)
			found |= !strcmp(d.artifacts[i].id, d2.artifacts[k].id);
		assert_true(found);
	}
	weft_dag_release(&d);
	weft_dag_release(&d2);
	weft_store_close(s2);
	unlink(other);
}

static void test_empty(void **state)
{
	struct store_fixture *fx = *state;
	weft_dag d;
	assert_int_equal(weft_store_dag(fx->s, NULL, &d), WEFT_OK);
	assert_int_equal(d.ntasks + d.nartifacts + d.nedges + d.nsame, 0);
	weft_dag_release(&d);
	assert_int_equal(weft_store_dag(fx->s, "job-1", &d), WEFT_ENOTFOUND);
	assert_null(d.tasks);
}

#define T(fn)                                                                  \
	cmocka_unit_test_setup_teardown(fn, store_fixture_setup,               \
					store_fixture_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_chain),
		T(test_same_bytes_elsewhere),
		T(test_identity_beats_time),
		T(test_never_a_later_writer),
		T(test_rerun_identical),
		T(test_unknown_version_is_weak),
		T(test_update_edges),
		T(test_read_then_gone),
		T(test_records_without_locations),
		T(test_stable_ids),
		T(test_empty),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
