/*
 * checkpoint.c - a local run's checkpoint, done after weft has exited.
 *
 * SQLite copies the write-ahead log into weft.db (a checkpoint: the run's
 * pages written at their places, two syncs, the log cut to nothing) when
 * the last connection closes, and `weft run` waited for it: 4-8 ms of a
 * 1,500-file run's store phase, 16-32 ms of a 4,000-file one's. What a
 * run stored is safe once the log is synced (WAL, synchronous=NORMAL:
 * the checkpoint only moves it), so weft syncs the log itself and leaves
 * the copy to a process of its own that nobody waits for.
 *
 * That process is a fork, not a new program (which would load weft's
 * libraries again): forking is safe only when this process has no other
 * thread (a lock one holds would stay held in the child) and no SQLite
 * connection open (SQLite keeps one list of open files per process, and
 * the child's copy would name locks the child does not hold). When
 * either is not so, or the fork fails, the checkpoint is done here,
 * waiting. A checkpoint that fails or is interrupted (the machine stops,
 * Slurm ends the step) loses nothing: the log stays, and the next
 * connection to close last copies it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store_internal.h"

void weft_store_keep_wal(weft_store *s)
{
	if (s && s->db)
		sqlite3_db_config(s->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1,
				  NULL);
}

/* The log's bytes on disk. Only SQLite's own descriptors hold its locks,
 * and none is on the -wal file: closing this one drops nothing. */
static int sync_wal(const char *db_path)
{
	char path[WEFT_MAX_PATH_BYTES + 8];
	if (snprintf(path, sizeof(path), "%s-wal", db_path) >=
	    (int)sizeof(path))
		return WEFT_EINVAL;
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? WEFT_OK : WEFT_EIO; /* no log */
	int err = fdatasync(fd) == 0 ? WEFT_OK : WEFT_EIO;
	close(fd);
	return err;
}

/* The checkpoint by a connection of its own, which SQLite completes when
 * it closes as the last one (and leaves to the last one otherwise). Only
 * an existing store: never one made again where it was removed. */
static int checkpoint(const char *db_path)
{
	sqlite3 *db = NULL;
	int rc = store_sqlite_open(db_path, &db, SQLITE_OPEN_READWRITE);
	if (rc == SQLITE_OK) {
		int persist = 1; /* as every connection of weft's */
		sqlite3_file_control(db, "main", SQLITE_FCNTL_PERSIST_WAL,
				     &persist);
		sqlite3_busy_timeout(db, WEFT_STORE_BUSY_TIMEOUT_MS);
		/* A read first: the connection sees the log only then. */
		rc = sqlite3_exec(db,
				  "PRAGMA journal_size_limit = " STORE_WAL_LIMIT
				  "; PRAGMA user_version",
				  NULL, NULL, NULL);
		if (rc == SQLITE_OK)
			rc = sqlite3_wal_checkpoint_v2(
				db, "main", SQLITE_CHECKPOINT_PASSIVE, NULL,
				NULL);
	}
	if (store_sqlite_close(db) != SQLITE_OK && rc == SQLITE_OK)
		rc = SQLITE_ERROR;
	return rc == SQLITE_OK ? WEFT_OK : WEFT_EDB;
}

/* Threads of this process, from /proc/self/stat (its 20th field); 0 when
 * it cannot be read. */
static long threads(void)
{
	char buf[1024];
	int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	/* After the command's name, which may hold spaces and ')'. */
	char *p = strrchr(buf, ')');
	for (int field = 2; p && field < 20; field++)
		p = strchr(p + 1, ' ');
	return p ? strtol(p + 1, NULL, 10) : 0;
}

bool weft_store_fork_safe(void)
{
	return store_sqlite_open_count() == 0 && threads() == 1;
}

/* The forked child (weft_detach), the checkpoint, then gone: of what it
 * inherited only hold (as its descriptor 3) stays open until then. */
static void child(const char *db_path, int hold, int ready)
{
	weft_detach(ready);
	if (hold >= 0 && hold != 3 && dup2(hold, 3) != 3)
		hold = -1; /* the checkpoint without it, not none */
	closefrom(hold >= 0 ? 4 : 3);
	_exit(checkpoint(db_path) == WEFT_OK ? 0 : 1);
}

int weft_store_checkpoint_behind(const char *db_path, int hold)
{
	int err = sync_wal(db_path);
	if (err)
		return err;
	int ready[2];
	if (weft_store_fork_safe() && pipe2(ready, O_CLOEXEC) == 0) {
		pid_t pid = fork();
		if (pid == 0) {
			close(ready[0]);
			child(db_path, hold, ready[1]); /* does not return */
		}
		close(ready[1]);
		char c;
		/* Its end of the pipe closes once it is in its session. */
		while (pid > 0 && read(ready[0], &c, 1) < 0 && errno == EINTR)
			;
		close(ready[0]);
		if (pid > 0)
			return WEFT_OK; /* init (or a subreaper) reaps it */
	}
	(void)checkpoint(db_path); /* its failure: the log just stays */
	return WEFT_OK;
}
