/*
 * store_test.c - the SQLite store on real database files: opening and
 * migrating, refusing newer or foreign files, storing runs all-or-nothing,
 * and loading exactly what was stored.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <limits.h>
#include <stdint.h>
#include <unistd.h>
#include <time.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "store_testutil.h"
#include <weft/base.h>

static void sql_exec(const char *db, const char *sql)
{
	sqlite3 *h;
	assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
	assert_int_equal(sqlite3_exec(h, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(h);
}

static uint8_t *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	uint8_t *buf = malloc((size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	*len = (size_t)n;
	return buf;
}

/* A report using every field, with awkward bytes where bytes may be. */
static void full_report(weft_report *r, const char *id, int64_t started)
{
	weft_report_init(r);
	snprintf(r->run_id, sizeof(r->run_id), "%s", id);
	strcpy(r->backend, "ptrace");
	strcpy(r->node, "node-1");
	r->exit_code = 3;
	r->started_ns = started;
	r->ended_ns = started + 1000;
	r->dropped_events = UINT64_MAX - 1; /* the top bit must survive */

	const char *argv0[] = {"python", "train.py", "--lr", "0.1", NULL};
	weft_process_rec *p = add_process(r, 100, 0, argv0);
	p->exe = xstrdup("/usr/bin/python3");
	p->cwd = xstrdup("/home/u/\xff\xfeproj");
	p->exit_code = 3;
	p->exited = true;
	/* Schema 4: the executable's hash and the environment (a value in
	 * clear with awkward bytes, one hashed, an empty one). */
	p->has_exe_hash = true;
	hash_of(p->exe_hash, 0xcc);
	p->env_state = WEFT_ENV_LISTED;
	p->nenv = 3;
	p->env = calloc(3, sizeof(*p->env));
	assert_non_null(p->env);
	p->env[0].name = xstrdup("A");
	p->env[0].value = xstrdup("");
	p->env[1].name = xstrdup("CUDA_VISIBLE_DEVICES");
	p->env[1].value = xstrdup("0,\xff");
	p->env[2].name = xstrdup("HOME");
	hash_of(p->env[2].hash, 0xdd);
	/* Empty arguments and invalid UTF-8 must come back as they were. */
	const char *argv1[] = {"sh", "", "-c", "echo \xc3\x28", "", NULL};
	p = add_process(r, 101, 100, argv1);
	p->exit_code = 128 + 9;
	p->exited = false; /* exe and cwd stay NULL */
	p->env_state = WEFT_ENV_UNKNOWN;
	p->env_missing = xstrdup("gone");
	const char *argv2[] = {NULL};
	add_process(r, 99, 100, argv2); /* argc 0, pid lower than parent */

	/* Files in path-byte order, as get_run returns them. */
	weft_file_rec *f = add_file(r, "/data/in.csv", true, false);
	f->has_size = true;
	f->size = 1234;
	f->has_hash = true;
	hash_of(f->hash, 0xaa);
	f->has_first_stat = true;
	f->first_dev = UINT64_MAX;
	f->first_ino = (uint64_t)1 << 63;
	f->first_size = 1234;
	f->first_mtime_ns = -5; /* before 1970 */
	f = add_file(r, "/out/model.bin", false, true);
	f->created = true;
	f->has_size = true;
	f->size = 0;
	f->has_hash = true;
	hash_of(f->hash, 0xbb);
	f = add_file(r, "/out/tmp.123", false, true);
	f->renamed_to = xstrdup("/out/model.bin");
	f->hash_missing = xstrdup("renamed to /out/model.bin");
	f = add_file(r, "/scratch/\xff\x01gone", true, true);
	f->deleted = true;
	f->hash_missing = xstrdup("deleted by the run");
	f = add_file(r, "/scratch/\xff\x02", false, false); /* only stat'd */

	assert_int_equal(weft_report_warn(r, "first"), WEFT_OK);
	assert_int_equal(weft_report_warn(r, "bad bytes: %s", "\xff\xfe"),
			 WEFT_OK);
	assert_int_equal(weft_report_warn(r, "%s", ""), WEFT_OK);
}

static void assert_str_or_null(const char *a, const char *b)
{
	if (!a || !b)
		assert_ptr_equal(a, b);
	else
		assert_string_equal(a, b);
}

static void assert_reports_equal(const weft_report *a, const weft_report *b)
{
	assert_string_equal(a->run_id, b->run_id);
	assert_string_equal(a->backend, b->backend);
	assert_string_equal(a->node, b->node);
	assert_int_equal(a->exit_code, b->exit_code);
	assert_int_equal(a->started_ns, b->started_ns);
	assert_int_equal(a->ended_ns, b->ended_ns);
	assert_int_equal(a->dropped_events, b->dropped_events);
	assert_int_equal(a->nprocesses, b->nprocesses);
	for (size_t i = 0; i < a->nprocesses; i++) {
		const weft_process_rec *p = &a->processes[i],
				       *q = &b->processes[i];
		assert_int_equal(p->pid, q->pid);
		assert_int_equal(p->ppid, q->ppid);
		assert_int_equal(p->argc, q->argc);
		for (uint32_t k = 0; k < p->argc; k++)
			assert_string_equal(p->argv[k], q->argv[k]);
		assert_str_or_null(p->exe, q->exe);
		assert_str_or_null(p->cwd, q->cwd);
		assert_int_equal(p->exit_code, q->exit_code);
		assert_int_equal(p->exited, q->exited);
		assert_int_equal(p->has_exe_hash, q->has_exe_hash);
		if (p->has_exe_hash)
			assert_memory_equal(p->exe_hash, q->exe_hash, 32);
		assert_int_equal(p->env_state, q->env_state);
		assert_str_or_null(p->env_missing, q->env_missing);
		assert_int_equal(p->nenv, q->nenv);
		for (uint32_t k = 0; k < p->nenv; k++) {
			assert_string_equal(p->env[k].name, q->env[k].name);
			assert_str_or_null(p->env[k].value, q->env[k].value);
			if (!p->env[k].value)
				assert_memory_equal(p->env[k].hash,
						    q->env[k].hash, 32);
		}
	}
	assert_int_equal(a->nfiles, b->nfiles);
	for (size_t i = 0; i < a->nfiles; i++) {
		const weft_file_rec *f = &a->files[i], *g = &b->files[i];
		assert_string_equal(f->path, g->path);
		assert_int_equal(f->read, g->read);
		assert_int_equal(f->written, g->written);
		assert_int_equal(f->created, g->created);
		assert_int_equal(f->deleted, g->deleted);
		assert_str_or_null(f->renamed_to, g->renamed_to);
		assert_int_equal(f->has_size, g->has_size);
		if (f->has_size)
			assert_int_equal(f->size, g->size);
		assert_int_equal(f->has_hash, g->has_hash);
		if (f->has_hash)
			assert_memory_equal(f->hash, g->hash, 32);
		assert_str_or_null(f->hash_missing, g->hash_missing);
		assert_int_equal(f->has_first_stat, g->has_first_stat);
		if (f->has_first_stat) {
			assert_int_equal(f->first_dev, g->first_dev);
			assert_int_equal(f->first_ino, g->first_ino);
			assert_int_equal(f->first_size, g->first_size);
			assert_int_equal(f->first_mtime_ns, g->first_mtime_ns);
		}
	}
	assert_int_equal(a->nwarnings, b->nwarnings);
	for (size_t i = 0; i < a->nwarnings; i++)
		assert_string_equal(a->warnings[i], b->warnings[i]);
}

static int64_t count_rows(const char *db)
{
	return sql_int(db, "SELECT (SELECT count(*) FROM runs) + "
			   "(SELECT count(*) FROM processes) + "
			   "(SELECT count(*) FROM file_io) + "
			   "(SELECT count(*) FROM paths) + "
			   "(SELECT count(*) FROM artifacts) + "
			   "(SELECT count(*) FROM warnings)");
}

static void test_open_creates_and_migrates(void **state)
{
	struct scratch *t = *state;
	weft_store *s;
	assert_int_equal(weft_store_open(t->db, &s), WEFT_OK);
	weft_store_close(s);
	assert_true(sql_int(t->db, "PRAGMA user_version") >= 1);
	int64_t v = sql_int(t->db, "PRAGMA user_version");
	/* WAL persists in the file; foreign keys are per connection, so
	 * check them by their effect below. */
	sqlite3 *h;
	assert_int_equal(sqlite3_open(t->db, &h), SQLITE_OK);
	sqlite3_stmt *st;
	sqlite3_prepare_v2(h, "PRAGMA journal_mode", -1, &st, NULL);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
	sqlite3_finalize(st);
	sqlite3_close(h);

	/* Opening again is a no-op. */
	assert_int_equal(weft_store_open(t->db, &s), WEFT_OK);
	assert_int_equal(sql_int(t->db, "PRAGMA user_version"), v);
	weft_store_close(s);
}

/* A store of schema 9 had three indexes on file_io that a path's
 * history scatters (by path, by content, by location); step 10 keeps
 * the one by location, drops the one by content and narrows the one by
 * path to the records whose location is not their path. The records
 * stay. */
static void test_file_io_indexes_narrowed(void **state)
{
	struct scratch *t = *state;
	weft_store *s;
	assert_int_equal(weft_store_open(t->db, &s), WEFT_OK);
	weft_report r;
	full_report(&r, "run-a", 2);
	assert_int_equal(weft_store_put_run(s, &r), WEFT_OK);
	weft_report_release(&r);
	weft_store_close(s);
	int64_t rows = sql_count(t->db, "file_io");
	assert_true(rows > 0);
	sql_exec(t->db, STORE_BEFORE_STEP_12
		 "DROP INDEX file_io_by_path_not_loc;"
		 "CREATE INDEX file_io_by_path ON file_io (path);"
		 "CREATE INDEX file_io_by_artifact ON file_io (artifact)"
		 "  WHERE artifact IS NOT NULL;"
		 "PRAGMA user_version = 9;");
	assert_int_equal(weft_store_open(t->db, &s), WEFT_OK);
	weft_store_close(s);
	assert_int_equal(sql_int(t->db, "PRAGMA user_version"), 12);
	/* Step 12 dropped the one by location (chains instead). */
	assert_int_equal(sql_int(t->db,
				 "SELECT group_concat(name, ' ') = "
				 "'file_io_by_path_not_loc "
				 "file_io_by_used_path' FROM (SELECT name FROM "
				 "sqlite_schema WHERE type = 'index' AND "
				 "tbl_name = 'file_io' AND sql IS NOT NULL "
				 "ORDER BY name)"),
			 1);
	assert_int_equal(sql_count(t->db, "file_io"), rows);
}

/* weft_store_open(path) fails with want and leaves the file's bytes as
 * they were. */
static void assert_open_refused_untouched(const char *path, int want)
{
	size_t n0, n1;
	uint8_t *before = slurp(path, &n0);
	weft_store *s = (weft_store *)1;
	assert_int_equal(weft_store_open(path, &s), want);
	assert_null(s);
	uint8_t *after = slurp(path, &n1);
	assert_int_equal(n0, n1);
	assert_memory_equal(before, after, n0);
	free(before);
	free(after);
}

static void test_newer_database_is_refused_untouched(void **state)
{
	struct scratch *t = *state;
	/* A rollback-journal database from a future weft. */
	sql_exec(t->db, "CREATE TABLE future (x); PRAGMA user_version = 999;");
	assert_open_refused_untouched(t->db, WEFT_EVERSION);
}

static void test_foreign_file_is_refused(void **state)
{
	struct scratch *t = *state;
	const char junk[] = "this is not a database, it is a text file\n"
			    "with more than one hundred bytes in it so that "
			    "sqlite reads a whole header from it ...........";
	write_file(t->db, junk, sizeof(junk));
	weft_store *s;
	assert_int_equal(weft_store_open(t->db, &s), WEFT_EDB);
	assert_null(s);
	size_t n;
	uint8_t *after = slurp(t->db, &n);
	assert_int_equal(n, sizeof(junk));
	assert_memory_equal(after, junk, n);
	free(after);

	char missing[400];
	scratch_path(t, "no/such/dir/weft.db", missing, sizeof(missing));
	assert_int_equal(weft_store_open(missing, &s), WEFT_EDB);
}

/* A file another process keeps locked past the busy timeout is busy, not
 * "not a weft database": the error says so, and the file is untouched. */
static void test_locked_file_is_busy(void **state)
{
	struct scratch *t = *state;
	sql_exec(t->db,
		 "CREATE TABLE other (x); INSERT INTO other VALUES (1);");
	sqlite3 *holder;
	assert_int_equal(sqlite3_open(t->db, &holder), SQLITE_OK);
	assert_int_equal(
		sqlite3_exec(holder, "BEGIN EXCLUSIVE", NULL, NULL, NULL),
		SQLITE_OK);
	assert_open_refused_untouched(t->db, WEFT_EBUSY);
	sqlite3_exec(holder, "ROLLBACK", NULL, NULL, NULL);
	sqlite3_close(holder);
}

static void test_round_trip(void **state)
{
	struct scratch *t = *state;
	weft_store *s;
	assert_int_equal(weft_store_open(t->db, &s), WEFT_OK);
	weft_report r, back;
	full_report(&r, "0f1e2d3c-aaaa-bbbb-cccc-000000000001", 1000);
	assert_int_equal(weft_store_put_run(s, &r), WEFT_OK);
	assert_int_equal(weft_store_get_run(s, r.run_id, &back), WEFT_OK);
	assert_reports_equal(&r, &back);
	weft_report_release(&back);

	/* Latest, and survives closing the handle. */
	weft_store_close(s);
	assert_int_equal(weft_store_open(t->db, &s), WEFT_OK);
	assert_int_equal(weft_store_get_run(s, NULL, &back), WEFT_OK);
	assert_reports_equal(&r, &back);
	weft_report_release(&back);

	/* An empty report (no processes, files or warnings) too. */
	weft_report e;
	weft_report_init(&e);
	strcpy(e.run_id, "empty");
	assert_int_equal(weft_store_put_run(s, &e), WEFT_OK);
	assert_int_equal(weft_store_get_run(s, "empty", &back), WEFT_OK);
	assert_reports_equal(&e, &back);
	weft_report_release(&back);

	weft_report_release(&r);
	weft_store_close(s);
}

static void test_files_come_back_in_path_byte_order(void **state)
{
	struct scratch *t = *state;
	weft_store *s;
	assert_int_equal(weft_store_open(t->db, &s), WEFT_OK);
	weft_report r, back;
	weft_report_init(&r);
	strcpy(r.run_id, "order");
	/* Not in order, and with bytes above 0x7f that a signed or
	 * locale-aware comparison would misplace. */
	const char *paths[] = {"/b", "/\xe9t\xe9", "/a/b", "/a", "/B", "/a0"};
	const char *sorted[] = {"/B", "/a", "/a/b", "/a0", "/b", "/\xe9t\xe9"};
	for (size_t i = 0; i < 6; i++)
		add_file(&r, paths[i], true, false);
	assert_int_equal(weft_store_put_run(s, &r), WEFT_OK);
	assert_int_equal(weft_store_get_run(s, "order", &back), WEFT_OK);
	assert_int_equal(back.nfiles, 6);
	for (size_t i = 0; i < 6; i++)
		assert_string_equal(back.files[i].path, sorted[i]);
	weft_report_release(&back);
	weft_report_release(&r);
	weft_store_close(s);
}

static void test_duplicate_id_changes_nothing(void **state)
{
	struct scratch *t = *state;
	weft_store *s;
	assert_int_equal(weft_store_open(t->db, &s), WEFT_OK);
	weft_report r, r2, back;
	full_report(&r, "dup", 5);
	assert_int_equal(weft_store_put_run(s, &r), WEFT_OK);
	int64_t rows = count_rows(t->db);
	full_report(&r2, "dup", 99);
	add_file(&r2, "/new/path/never/stored", true, false);
	assert_int_equal(weft_store_put_run(s, &r2), WEFT_EINVAL);
	assert_non_null(strstr(weft_store_errmsg(s), "UNIQUE"));
	assert_int_equal(count_rows(t->db), rows);
	assert_int_equal(weft_store_get_run(s, "dup", &back), WEFT_OK);
	assert_reports_equal(&r, &back);
	weft_report_release(&back);
	weft_report_release(&r);
	weft_report_release(&r2);
	weft_store_close(s);
}

static void test_failed_put_is_rolled_back(void **state)
{
	struct scratch *t = *state;
	weft_store *s;
	assert_int_equal(weft_store_open(t->db, &s), WEFT_OK);
	weft_report r;
	full_report(&r, "first", 1);
	assert_int_equal(weft_store_put_run(s, &r), WEFT_OK);
	int64_t rows = count_rows(t->db);
	weft_report_release(&r);

	/* The same path twice in one run breaks file_io's key half-way
	 * through: the run row and earlier files must vanish too. */
	full_report(&r, "broken", 2);
	add_file(&r, "/data/in.csv", false, true);
	assert_int_equal(weft_store_put_run(s, &r), WEFT_EINVAL);
	assert_non_null(strstr(weft_store_errmsg(s), "file_io"));
	assert_true(strlen(weft_store_errmsg(s)) > 0);
	assert_int_equal(count_rows(t->db), rows);
	weft_report back;
	assert_int_equal(weft_store_get_run(s, "broken", &back),
			 WEFT_ENOTFOUND);
	weft_report_release(&r);

	/* Reports that are not well formed are refused up front. */
	weft_report_init(&r);
	assert_int_equal(weft_store_put_run(s, &r), WEFT_EINVAL); /* no id */
	memset(r.run_id, 'x', sizeof(r.run_id));                  /* no NUL */
	assert_int_equal(weft_store_put_run(s, &r), WEFT_EINVAL);
	strcpy(r.run_id, "nullpath");
	weft_file_rec *f = weft_report_add_file(&r);
	assert_non_null(f);
	assert_int_equal(weft_store_put_run(s, &r), WEFT_EINVAL);
	weft_report_release(&r);
	assert_int_equal(count_rows(t->db), rows);
	weft_store_close(s);
}

static void put_simple(weft_store *s, const char *id, int64_t started,
		       const char *cmd)
{
	weft_report r;
	weft_report_init(&r);
	strcpy(r.run_id, id);
	strcpy(r.backend, "ptrace");
	r.started_ns = started;
	r.ended_ns = started + 1;
	const char *child[] = {"child", NULL};
	const char *root[] = {cmd, "arg", NULL};
	/* The root is the parentless process even when not listed first. */
	add_process(&r, 2, 1, child);
	add_process(&r, 1, 0, root);
	assert_int_equal(weft_store_put_run(s, &r), WEFT_OK);
	weft_report_release(&r);
}

static void test_get_latest_prefix_and_missing(void **state)
{
	struct scratch *t = *state;
	weft_store *s;
	weft_report back;
	assert_int_equal(weft_store_open(t->db, &s), WEFT_OK);
	assert_int_equal(weft_store_get_run(s, NULL, &back), WEFT_ENOTFOUND);

	put_simple(s, "abc111", 300, "late");
	put_simple(s, "abc222", 100, "early");
	put_simple(s, "abd333", 300, "late-inserted-last");
	put_simple(s, "ab", 200, "short");

	/* Latest by start time, ties broken by insertion order. */
	assert_int_equal(weft_store_get_run(s, NULL, &back), WEFT_OK);
	assert_string_equal(back.run_id, "abd333");
	weft_report_release(&back);

	assert_int_equal(weft_store_get_run(s, "abc2", &back), WEFT_OK);
	assert_string_equal(back.run_id, "abc222");
	weft_report_release(&back);
	assert_int_equal(weft_store_get_run(s, "abc", &back), WEFT_EINVAL);
	assert_int_equal(back.nfiles, 0);
	/* An exact id wins over being a prefix of others. */
	assert_int_equal(weft_store_get_run(s, "ab", &back), WEFT_OK);
	assert_string_equal(back.run_id, "ab");
	weft_report_release(&back);
	assert_int_equal(weft_store_get_run(s, "abd", &back), WEFT_OK);
	assert_string_equal(back.run_id, "abd333");
	weft_report_release(&back);
	assert_int_equal(weft_store_get_run(s, "zzz", &back), WEFT_ENOTFOUND);
	/* Wildcards are not wildcards. */
	assert_int_equal(weft_store_get_run(s, "a%", &back), WEFT_ENOTFOUND);
	assert_int_equal(weft_store_get_run(s, "a_", &back), WEFT_ENOTFOUND);
	assert_int_equal(weft_store_get_run(s, "a*", &back), WEFT_ENOTFOUND);
	assert_int_equal(weft_store_get_run(s, "", &back), WEFT_EINVAL);

	weft_run_summary *runs;
	size_t n;
	assert_int_equal(weft_store_list_runs(s, &runs, &n), WEFT_OK);
	assert_int_equal(n, 4);
	const char *order[] = {"abc222", "ab", "abc111", "abd333"};
	const char *cmds[] = {"early arg", "short arg", "late arg",
			      "late-inserted-last arg"};
	for (size_t i = 0; i < n; i++) {
		assert_string_equal(runs[i].run_id, order[i]);
		assert_string_equal(runs[i].command, cmds[i]);
		assert_string_equal(runs[i].backend, "ptrace");
	}
	assert_int_equal(runs[0].started_ns, 100);
	assert_int_equal(runs[0].ended_ns, 101);
	weft_run_summaries_free(runs, n);
	weft_store_close(s);
}

static void test_list_empty_and_without_processes(void **state)
{
	struct scratch *t = *state;
	weft_store *s;
	assert_int_equal(weft_store_open(t->db, &s), WEFT_OK);
	weft_run_summary *runs;
	size_t n;
	assert_int_equal(weft_store_list_runs(s, &runs, &n), WEFT_OK);
	assert_int_equal(n, 0);
	weft_run_summaries_free(runs, n);
	weft_report r;
	weft_report_init(&r);
	strcpy(r.run_id, "noproc");
	assert_int_equal(weft_store_put_run(s, &r), WEFT_OK);
	assert_int_equal(weft_store_list_runs(s, &runs, &n), WEFT_OK);
	assert_int_equal(n, 1);
	assert_string_equal(runs[0].command, "");
	weft_run_summaries_free(runs, n);
	weft_store_close(s);
}

static void test_paths_and_artifacts_are_shared(void **state)
{
	struct scratch *t = *state;
	weft_store *s;
	assert_int_equal(weft_store_open(t->db, &s), WEFT_OK);
	for (int run = 0; run < 3; run++) {
		weft_report r;
		weft_report_init(&r);
		snprintf(r.run_id, sizeof(r.run_id), "run%d", run);
		weft_file_rec *f = add_file(&r, "/same/path", true, false);
		f->has_hash = true;
		hash_of(f->hash, 7);
		f = add_file(&r, "/other/path", false, true);
		f->has_hash = true;
		hash_of(f->hash, 7); /* same content, other path */
		assert_int_equal(weft_store_put_run(s, &r), WEFT_OK);
		weft_report_release(&r);
	}
	assert_int_equal(sql_int(t->db, "SELECT count(*) FROM paths"), 2);
	assert_int_equal(sql_int(t->db, "SELECT count(*) FROM artifacts"), 1);
	assert_int_equal(sql_int(t->db, "SELECT count(*) FROM file_io"), 6);
	weft_store_close(s);
}

/* 100k files in one put: prepared statements in one transaction. The time
 * is printed, not asserted (timings belong to bench/). */
static void test_large_report(void **state)
{
	struct scratch *t = *state;
	weft_store *s;
	assert_int_equal(weft_store_open(t->db, &s), WEFT_OK);
	weft_report r, back;
	weft_report_init(&r);
	strcpy(r.run_id, "big");
	const size_t n = 100000;
	char path[64];
	for (size_t i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "/data/shard-%07zu.bin", i);
		weft_file_rec *f = add_file(&r, path, i % 2 == 0, i % 2 == 1);
		f->has_hash = true;
		memset(f->hash, 0, 32);
		memcpy(f->hash, &i, sizeof(i));
		f->has_size = true;
		f->size = (int64_t)i;
	}
	double t0 = weft_mono_s();
	assert_int_equal(weft_store_put_run(s, &r), WEFT_OK);
	double t1 = weft_mono_s();
	assert_int_equal(weft_store_get_run(s, "big", &back), WEFT_OK);
	double t2 = weft_mono_s();
	print_message("store: put_run of %zu files: %.3f s, get_run: %.3f s\n",
		      n, t1 - t0, t2 - t1);
	assert_reports_equal(&r, &back);
	weft_report_release(&back);
	weft_report_release(&r);
	weft_store_close(s);
	/* Once the last connection has closed, a copy of weft.db alone
	 * has this run. */
	char copy[PATH_MAX + 16];
	snprintf(copy, sizeof(copy), "%s.copy", t->db);
	size_t len;
	uint8_t *bytes = slurp(t->db, &len);
	FILE *f = fopen(copy, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(bytes, 1, len, f), len);
	fclose(f);
	free(bytes);
	assert_int_equal(sql_int(copy, "SELECT count(*) FROM runs WHERE "
				       "id = 'big'"),
			 1);
	unlink(copy);
}

/* Reading a store writes neither its file nor its write-ahead log; what
 * was written before is read back by another connection. */
static void test_readers_write_nothing(void **state)
{
	struct scratch *t = *state;
	weft_store *s;
	assert_int_equal(weft_store_open(t->db, &s), WEFT_OK);
	put_simple(s, "one", 1, "one");
	put_simple(s, "two", 2, "two");
	weft_store_close(s);
	char wal[PATH_MAX + 8];
	snprintf(wal, sizeof(wal), "%s-wal", t->db);
	size_t dlen, wlen;
	uint8_t *db0 = slurp(t->db, &dlen), *wal0 = slurp(wal, &wlen);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(weft_store_open(t->db, &s), WEFT_OK);
		weft_report back;
		assert_int_equal(weft_store_get_run(s, NULL, &back), WEFT_OK);
		assert_string_equal(back.run_id, "two");
		weft_report_release(&back);
		weft_dag d;
		assert_int_equal(weft_store_dag(s, NULL, &d), WEFT_OK);
		assert_int_equal(d.ntasks, 2);
		weft_dag_release(&d);
		weft_store_close(s);
	}
	size_t dlen1, wlen1;
	uint8_t *db1 = slurp(t->db, &dlen1), *wal1 = slurp(wal, &wlen1);
	assert_int_equal(dlen1, dlen);
	assert_memory_equal(db1, db0, dlen);
	assert_int_equal(wlen1, wlen);
	assert_memory_equal(wal1, wal0, wlen);
	free(db0);
	free(db1);
	free(wal0);
	free(wal1);
}

/* Two handles on one file: a reader holding a snapshot does not block the
 * writer (WAL), and sees the new run once its snapshot ends. */
static void test_two_handles(void **state)
{
	struct scratch *t = *state;
	weft_store *w, *rd;
	assert_int_equal(weft_store_open(t->db, &w), WEFT_OK);
	assert_int_equal(weft_store_open(t->db, &rd), WEFT_OK);
	put_simple(w, "one", 1, "one");
	weft_dag d;
	assert_int_equal(weft_store_dag(rd, NULL, &d), WEFT_OK);
	assert_int_equal(d.ntasks, 1);
	weft_dag_release(&d);
	sqlite3 *h;
	assert_int_equal(sqlite3_open(t->db, &h), SQLITE_OK);
	assert_int_equal(sqlite3_exec(h, "BEGIN; SELECT count(*) FROM runs;",
				      NULL, NULL, NULL),
			 SQLITE_OK);
	put_simple(w, "two", 2, "two");
	sqlite3_exec(h, "COMMIT", NULL, NULL, NULL);
	sqlite3_close(h);
	weft_report back;
	assert_int_equal(weft_store_get_run(rd, NULL, &back), WEFT_OK);
	assert_string_equal(back.run_id, "two");
	weft_report_release(&back);
	weft_store_close(rd);
	weft_store_close(w);
}

static void test_errmsg(void **state)
{
	struct scratch *t = *state;
	weft_store *s;
	assert_int_equal(weft_store_open(t->db, &s), WEFT_OK);
	assert_non_null(weft_store_errmsg(s));
	assert_string_equal(weft_store_errmsg(NULL), "no database");
	weft_store_close(s);
	weft_store_close(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_file_io_indexes_narrowed,
						scratch_setup,
						scratch_teardown),
		cmocka_unit_test_setup_teardown(test_open_creates_and_migrates,
						scratch_setup,
						scratch_teardown),
		cmocka_unit_test_setup_teardown(
			test_newer_database_is_refused_untouched, scratch_setup,
			scratch_teardown),
		cmocka_unit_test_setup_teardown(test_foreign_file_is_refused,
						scratch_setup,
						scratch_teardown),
		cmocka_unit_test_setup_teardown(test_locked_file_is_busy,
						scratch_setup,
						scratch_teardown),
		cmocka_unit_test_setup_teardown(test_round_trip, scratch_setup,
						scratch_teardown),
		cmocka_unit_test_setup_teardown(
			test_files_come_back_in_path_byte_order, scratch_setup,
			scratch_teardown),
		cmocka_unit_test_setup_teardown(
			test_duplicate_id_changes_nothing, scratch_setup,
			scratch_teardown),
		cmocka_unit_test_setup_teardown(test_failed_put_is_rolled_back,
						scratch_setup,
						scratch_teardown),
		cmocka_unit_test_setup_teardown(
			test_get_latest_prefix_and_missing, scratch_setup,
			scratch_teardown),
		cmocka_unit_test_setup_teardown(
			test_list_empty_and_without_processes, scratch_setup,
			scratch_teardown),
		cmocka_unit_test_setup_teardown(
			test_paths_and_artifacts_are_shared, scratch_setup,
			scratch_teardown),
		cmocka_unit_test_setup_teardown(
			test_large_report, scratch_setup, scratch_teardown),
		cmocka_unit_test_setup_teardown(test_readers_write_nothing,
						scratch_setup,
						scratch_teardown),
		cmocka_unit_test_setup_teardown(test_two_handles, scratch_setup,
						scratch_teardown),
		cmocka_unit_test_setup_teardown(test_errmsg, scratch_setup,
						scratch_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
