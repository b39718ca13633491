/*
 * store_wal_test.c - the store's write-ahead log written in large writes
 * (wal_vfs.c): every connection weft opens uses that VFS; a reader in
 * another process, with SQLite's own VFS, only ever sees whole
 * transactions, also when a transaction's pages spill to the log before
 * it commits and are rewritten there; frames of a transaction that spilled
 * and rolled back never land on another process's transaction written
 * after it; a write that fails fails the commit and keeps everything
 * committed before; the file is sound after all of it.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "store_internal.h"
#include "store_testutil.h"

/* Transactions the writer commits; rows and blob bytes in each. */
#define TXNS 40
#define ROWS 300
#define BLOB 700

static void exec_ok(sqlite3 *db, const char *sql)
{
	char *msg = NULL;
	int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
	if (rc != SQLITE_OK)
		fail_msg("%s: %s", sql, msg ? msg : "?");
}

/* A connection of the store's, as weft opens one, in WAL mode. */
static sqlite3 *open_store(const char *path)
{
	sqlite3 *db;
	assert_int_equal(
		store_sqlite_open(path, &db,
				  SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE),
		SQLITE_OK);
	exec_ok(db, "PRAGMA journal_mode = WAL");
	exec_ok(db, "PRAGMA synchronous = NORMAL");
	return db;
}

/* SQLite finds nothing wrong in the file. */
static void assert_sound(sqlite3 *db)
{
	sqlite3_stmt *st;
	assert_int_equal(
		sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL),
		SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(st, 0), "ok");
	sqlite3_finalize(st);
}

/* The forked child pid exited 0. */
static void assert_child_ok(pid_t pid)
{
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

static void uses_the_store_vfs(void **state)
{
	struct scratch *t = *state;
	sqlite3 *db = open_store(t->db);
	sqlite3_vfs *vfs = NULL;
	assert_int_equal(sqlite3_file_control(db, "main",
					      SQLITE_FCNTL_VFS_POINTER, &vfs),
			 SQLITE_OK);
	assert_non_null(vfs);
	assert_string_equal(vfs->zName, "weft-unix");
	store_sqlite_close(db);
}

/* The reader: in a process of its own, with SQLite's default VFS. After
 * each commit the writer names on `go` (and waits for on `done`), it must
 * see that transaction, whole: the counter row says how many rows were
 * committed, and they must all be there. Exits 0, or 1 with the first
 * mismatch on stderr. */
static int reader(const char *path, int go, int done)
{
	sqlite3 *db;
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
		return 2;
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(db,
			       "SELECT (SELECT n FROM counter), "
			       "(SELECT count(*) FROM t), "
			       "(SELECT sum(length(b)) FROM t)",
			       -1, &st, NULL) != SQLITE_OK)
		return 3;
	for (long long i = 1; i <= TXNS; i++) {
		char c;
		if (read(go, &c, 1) != 1)
			return 4;
		if (sqlite3_step(st) != SQLITE_ROW) {
			fprintf(stderr, "after commit %lld: %s\n", i,
				sqlite3_errmsg(db));
			return 1;
		}
		long long n = sqlite3_column_int64(st, 0);
		long long rows = sqlite3_column_int64(st, 1);
		long long bytes = sqlite3_column_int64(st, 2);
		sqlite3_reset(st);
		if (n != i * ROWS || rows != n || bytes != n * BLOB) {
			fprintf(stderr,
				"after commit %lld: counter %lld, rows %lld, "
				"bytes %lld\n",
				i, n, rows, bytes);
			return 1;
		}
		if (write(done, &c, 1) != 1)
			return 4;
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
	return 0;
}

static void readers_see_whole_transactions(void **state)
{
	struct scratch *t = *state;
	sqlite3 *db = open_store(t->db);
	exec_ok(db, "CREATE TABLE t (id INTEGER PRIMARY KEY, b BLOB);"
		    "CREATE INDEX t_by_b ON t (b);"
		    "CREATE TABLE counter (n INTEGER);"
		    "INSERT INTO counter VALUES (0);");
	int go[2], done[2];
	assert_int_equal(pipe(go), 0);
	assert_int_equal(pipe(done), 0);
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(reader(t->db, go[0], done[1]));
	close(go[0]);
	close(done[1]);
	signal(SIGPIPE, SIG_IGN); /* a reader gone fails the write below */
	sqlite3_stmt *ins, *upd;
	assert_int_equal(sqlite3_prepare_v2(db,
					    "INSERT INTO t (b) VALUES "
					    "(randomblob(?1))",
					    -1, &ins, NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "UPDATE counter SET n = n + ?1",
					    -1, &upd, NULL),
			 SQLITE_OK);
	for (int i = 0; i < TXNS; i++) {
		/* Every other transaction with a small page cache: it spills
		 * pages to the log before its commit and rewrites some of
		 * them there; the others write each page once, at commit. */
		exec_ok(db, i % 2 ? "PRAGMA cache_size = 20"
				  : "PRAGMA cache_size = 2000");
		exec_ok(db, "BEGIN IMMEDIATE");
		for (int r = 0; r < ROWS; r++) {
			sqlite3_bind_int(ins, 1, BLOB);
			assert_int_equal(sqlite3_step(ins), SQLITE_DONE);
			sqlite3_reset(ins);
		}
		sqlite3_bind_int(upd, 1, ROWS);
		assert_int_equal(sqlite3_step(upd), SQLITE_DONE);
		sqlite3_reset(upd);
		exec_ok(db, "COMMIT");
		/* The reader looks now, before anything else is written. */
		char c = 'c';
		assert_int_equal(write(go[1], &c, 1), 1);
		assert_int_equal(read(done[0], &c, 1), 1);
	}
	close(go[1]);
	close(done[0]);
	sqlite3_finalize(ins);
	sqlite3_finalize(upd);
	assert_child_ok(pid);
	store_sqlite_close(db);

	/* And the file as a new connection finds it, log and all. */
	sqlite3 *check;
	assert_int_equal(
		sqlite3_open_v2(t->db, &check, SQLITE_OPEN_READONLY, NULL),
		SQLITE_OK);
	assert_sound(check);
	assert_int_equal(sql_int_on(check, "SELECT count(*) FROM t"),
			 TXNS * ROWS);
	sqlite3_close(check);
}

/* In a child whose files may not grow past the log's size plus 300 KB: a
 * transaction of 2 MB must fail at its commit. Exit 0 when it did. */
static int commit_past_the_limit(const char *path, const char *wal)
{
	sqlite3 *db = open_store(path);
	struct rlimit lim;
	off_t now = size_of(wal);
	if (now < 0)
		return 2;
	lim.rlim_cur = lim.rlim_max = (rlim_t)now + 300 * 1024;
	signal(SIGXFSZ, SIG_IGN); /* write() fails with EFBIG instead */
	if (setrlimit(RLIMIT_FSIZE, &lim) != 0)
		return 3;
	if (sqlite3_exec(db,
			 "BEGIN IMMEDIATE;"
			 "WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL "
			 "SELECT i + 1 FROM k WHERE i < 2000) "
			 "INSERT INTO t (b) SELECT randomblob(1000) FROM k;",
			 NULL, NULL, NULL) != SQLITE_OK)
		return 4;
	int rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	if (rc == SQLITE_OK) {
		fprintf(stderr, "the commit past the limit succeeded\n");
		return 1;
	}
	sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	store_sqlite_close(db);
	return 0;
}

static void failed_write_fails_the_commit(void **state)
{
	struct scratch *t = *state;
	char wal[sizeof(t->db) + 8];
	snprintf(wal, sizeof(wal), "%s-wal", t->db);
	sqlite3 *db = open_store(t->db);
	/* Kept open: the log stays (and the child's limit is above it). */
	exec_ok(db, "CREATE TABLE t (id INTEGER PRIMARY KEY, b BLOB);"
		    "INSERT INTO t (b) VALUES (x'01'), (x'02');");
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(commit_past_the_limit(t->db, wal));
	assert_child_ok(pid);

	/* What was committed before is there, nothing of the failed one,
	 * and the file is sound. */
	assert_int_equal(sql_int_on(db, "SELECT count(*) FROM t"), 2);
	assert_sound(db);
	/* And the log takes a transaction again. */
	exec_ok(db, "INSERT INTO t (b) VALUES (x'03')");
	store_sqlite_close(db);
}

/* Another process's transaction, committed with SQLite's own VFS: ROWS
 * rows of 4 KB, twice what the rolled-back one spilled. */
static int commit_elsewhere(const char *path)
{
	sqlite3 *db;
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) !=
	    SQLITE_OK)
		return 2;
	sqlite3_busy_timeout(db, 5000);
	int rc =
		sqlite3_exec(db,
			     "WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL "
			     "SELECT i + 1 FROM k WHERE i < 600) "
			     "INSERT INTO t (b) SELECT randomblob(4000) FROM k",
			     NULL, NULL, NULL);
	sqlite3_close(db);
	return rc == SQLITE_OK ? 0 : 1;
}

static void rolled_back_frames_stay_unwritten(void **state)
{
	struct scratch *t = *state;
	sqlite3 *db = open_store(t->db);
	/* Kept open: the log is not checkpointed away meanwhile. */
	exec_ok(db, "CREATE TABLE t (id INTEGER PRIMARY KEY, b BLOB);"
		    "PRAGMA wal_checkpoint(TRUNCATE)");
	/* (Nothing in the log: the rollback below reads none of it.)
	 * A transaction that spills pages to the log (a 20-page cache),
	 * then rolls back: its frames are past the log's end as SQLite
	 * sees it, where the next writer writes. */
	exec_ok(db, "PRAGMA cache_size = 20");
	exec_ok(db, "BEGIN IMMEDIATE;"
		    "WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL "
		    "SELECT i + 1 FROM k WHERE i < 300) "
		    "INSERT INTO t (b) SELECT randomblob(4000) FROM k;"
		    "ROLLBACK");
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(commit_elsewhere(t->db));
	assert_child_ok(pid);
	/* This connection reads the log again: the other transaction is
	 * there, whole, and the file is sound. */
	assert_int_equal(sql_int_on(db, "SELECT count(*) FROM t"), 600);
	assert_int_equal(sql_int_on(db, "SELECT sum(length(b)) FROM t"),
			 600 * 4000);
	assert_sound(db);
	store_sqlite_close(db);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
			uses_the_store_vfs, scratch_setup, scratch_teardown),
		cmocka_unit_test_setup_teardown(readers_see_whole_transactions,
						scratch_setup,
						scratch_teardown),
		cmocka_unit_test_setup_teardown(
			rolled_back_frames_stay_unwritten, scratch_setup,
			scratch_teardown),
		cmocka_unit_test_setup_teardown(failed_write_fails_the_commit,
						scratch_setup,
						scratch_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
