/*
 * store_checkpoint_test.c - a local run's checkpoint after weft exits
 * (weft_store_checkpoint_behind): what was committed through a connection
 * closed with weft_store_keep_wal is only in the write-ahead log; a forked
 * process of its own copies it into the database, which then holds it on
 * its own, and none is forked while this process still has a connection.
 * The descriptor the caller names (a lock) stays open in that process
 * until the checkpoint is done.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "store_internal.h"
#include "store_testutil.h"

/* A row committed in a new table of the store at db, which is closed
 * with its log kept. */
static void commit_kept(const char *db)
{
	weft_store *s;
	assert_int_equal(weft_store_open(db, &s), WEFT_OK);
	assert_int_equal(sqlite3_exec(s->db,
				      "CREATE TABLE probe (x);"
				      "INSERT INTO probe VALUES (42);",
				      NULL, NULL, NULL),
			 SQLITE_OK);
	weft_store_keep_wal(s);
	weft_store_close(s);
}

/* The rows of probe in the database file alone: a copy of it without
 * its log. -1 when the copy has no such table. */
static int probe_rows_alone(const struct scratch *t)
{
	char copy[sizeof(t->dir) + 16], buf[65536];
	snprintf(copy, sizeof(copy), "%s/alone.db", t->dir);
	int in = open(t->db, O_RDONLY | O_CLOEXEC);
	int out = open(copy, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(in >= 0 && out >= 0);
	ssize_t n;
	while ((n = read(in, buf, sizeof(buf))) > 0)
		assert_int_equal(write(out, buf, (size_t)n), n);
	assert_int_equal(n, 0);
	close(in);
	close(out);
	sqlite3 *db;
	assert_int_equal(sqlite3_open_v2(copy, &db, SQLITE_OPEN_READONLY, NULL),
			 SQLITE_OK);
	sqlite3_stmt *st;
	int rows = -1;
	if (sqlite3_prepare_v2(db, "SELECT count(*) FROM probe", -1, &st,
			       NULL) == SQLITE_OK) {
		if (sqlite3_step(st) == SQLITE_ROW)
			rows = sqlite3_column_int(st, 0);
		sqlite3_finalize(st);
	}
	sqlite3_close(db);
	unlink(copy);
	return rows;
}

static void checkpointed_by_a_child(void **state)
{
	struct scratch *t = *state;
	char wal[sizeof(t->db) + 8];
	snprintf(wal, sizeof(wal), "%s-wal", t->db);
	commit_kept(t->db);
	/* Closed without a checkpoint: the row is in the log only. */
	assert_true(size_of(wal) > 0);
	assert_int_equal(probe_rows_alone(t), -1);

	assert_int_equal(store_sqlite_open_count(), 0);
	assert_int_equal(weft_store_checkpoint_behind(t->db, -1), WEFT_OK);
	/* A child did it, and succeeded. */
	int status;
	pid_t pid = waitpid(-1, &status, 0);
	assert_true(pid > 0);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	/* The log copied into the database and cut to nothing. */
	assert_int_equal(size_of(wal), 0);
	assert_int_equal(probe_rows_alone(t), 1);
}

static void held_until_checkpointed(void **state)
{
	struct scratch *t = *state;
	char wal[sizeof(t->db) + 8];
	snprintf(wal, sizeof(wal), "%s-wal", t->db);
	commit_kept(t->db);
	assert_true(size_of(wal) > 0);
	int p[2];
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	assert_int_equal(weft_store_checkpoint_behind(t->db, p[1]), WEFT_OK);
	close(p[1]);
	/* End of file: the child closed its copy, after the checkpoint. */
	char c;
	assert_int_equal(read(p[0], &c, 1), 0);
	close(p[0]);
	assert_int_equal(size_of(wal), 0);
	assert_int_equal(probe_rows_alone(t), 1);
	int status;
	assert_true(waitpid(-1, &status, 0) > 0);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static void done_here_with_a_connection_open(void **state)
{
	struct scratch *t = *state;
	weft_store *other;
	assert_int_equal(weft_store_open(t->db, &other), WEFT_OK);
	commit_kept(t->db);
	assert_int_equal(store_sqlite_open_count(), 1);
	assert_int_equal(weft_store_checkpoint_behind(t->db, -1), WEFT_OK);
	/* No fork: SQLite's files of this process would be the child's. */
	errno = 0;
	assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
	assert_int_equal(errno, ECHILD);
	/* The log's pages are in the database already (the checkpoint
	 * ran here; the log stays while other is open). */
	assert_int_equal(probe_rows_alone(t), 1);
	weft_store_close(other);
	assert_int_equal(store_sqlite_open_count(), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(checkpointed_by_a_child,
						scratch_setup,
						scratch_teardown),
		cmocka_unit_test_setup_teardown(held_until_checkpointed,
						scratch_setup,
						scratch_teardown),
		cmocka_unit_test_setup_teardown(
			done_here_with_a_connection_open, scratch_setup,
			scratch_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
