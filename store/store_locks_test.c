/*
 * store_locks_test.c - a store opened by several connections and several
 * processes at once: opening a second connection in a process keeps the
 * first one's POSIX locks (closing any descriptor of a file drops them
 * all, and a writer without its locks loses commits to another process's
 * checkpoint), and processes creating a new store at the same moment all
 * open it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/wait.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "store_internal.h"
#include "store_testutil.h"

/* Whether this process holds any POSIX lock on path: asked from a child,
 * which holds none of them (locks are not inherited). */
static bool locked_by_us(const char *path)
{
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int fd = open(path, O_RDWR | O_CLOEXEC);
		struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
		if (fd < 0 || fcntl(fd, F_GETLK, &fl) != 0)
			_exit(2);
		_exit(fl.l_type != F_UNLCK && fl.l_pid == getppid() ? 1 : 0);
	}
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) != 2);
	return WEXITSTATUS(status) == 1;
}

static void second_open_keeps_locks(void **state)
{
	struct scratch *t = *state;
	char shm[sizeof(t->db) + 8];
	snprintf(shm, sizeof(shm), "%s-shm", t->db);
	weft_store *a, *b;
	assert_int_equal(weft_store_open(t->db, &a), WEFT_OK);
	/* A read transaction: a's WAL read lock is held in the -shm file. */
	assert_int_equal(sqlite3_exec(a->db,
				      "BEGIN; SELECT count(*) FROM runs;",
				      NULL, NULL, NULL),
			 SQLITE_OK);
	assert_true(locked_by_us(shm));
	/* Another connection of this process, as weft run's coordinator
	 * opens beside the hash cache's: a's locks stay. */
	assert_int_equal(weft_store_open(t->db, &b), WEFT_OK);
	assert_true(locked_by_us(shm));
	weft_store_close(b);
	assert_true(locked_by_us(shm));
	assert_int_equal(sqlite3_exec(a->db, "COMMIT", NULL, NULL, NULL),
			 SQLITE_OK);
	weft_store_close(a);
}

/* Several `weft run`s started at once in a new project: every one opens
 * the store it is creating with the others (none is refused busy). */
static void processes_create_at_once(void **state)
{
	struct scratch *t = *state;
	enum { ROUNDS = 20, PROCS = 6 };
	for (int round = 0; round < ROUNDS; round++) {
		char db[sizeof(t->db) + 16];
		snprintf(db, sizeof(db), "%s/r%d.db", t->dir, round);
		int gate[2];
		assert_int_equal(pipe(gate), 0);
		pid_t pids[PROCS];
		for (int i = 0; i < PROCS; i++) {
			pids[i] = fork();
			assert_true(pids[i] >= 0);
			if (pids[i] == 0) {
				char c;
				close(gate[1]);
				/* All start when the gate closes. */
				(void)!read(gate[0], &c, 1);
				weft_store *s;
				int err = weft_store_open(db, &s);
				if (err == WEFT_OK)
					weft_store_close(s);
				_exit(err == WEFT_OK ? 0 : 1);
			}
		}
		close(gate[0]);
		close(gate[1]);
		for (int i = 0; i < PROCS; i++) {
			int status;
			assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
			assert_true(WIFEXITED(status));
			assert_int_equal(WEXITSTATUS(status), 0);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(second_open_keeps_locks,
						scratch_setup,
						scratch_teardown),
		cmocka_unit_test_setup_teardown(processes_create_at_once,
						scratch_setup,
						scratch_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
