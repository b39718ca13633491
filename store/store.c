/*
 * store.c - the SQLite store: opening a database, bringing its schema up to
 * date, and the helpers every part of the store uses. Storing a run is
 * put.c's, loading one runs.c's.
 *
 * The schema is a list of migration steps; PRAGMA user_version says how many
 * a database has had. Each step runs in its own transaction, so a crash
 * leaves the database at a step boundary. A database that has had more steps
 * than this code knows was written by a newer weft and is refused without
 * being modified.
 *
 * Paths, argv, exe, cwd and warnings are byte strings that need not be
 * UTF-8 and are stored as BLOBs so that what comes back is exactly what went
 * in. Unsigned 64-bit values (dev, inode, dropped events) are stored as the
 * signed integer with the same bits.
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "store_internal.h"

/*
 * The migration steps, oldest first. Never edit a step that has shipped;
 * append a new one.
 *
 * Room for what comes next: runs.job names the job a run belongs to (a jobs
 * table, writers and signed fragment envelopes are later steps that add
 * tables and reference runs.num). Children reference runs by the integer
 * runs.num, not the text id, to keep the large tables small.
 */

/* The outbox's triggers (from step 9 on): a job's start and end, a task's
 * announcement, a whole task (its START unless it was announced, then only
 * for the sinks added since, then its end), a run stored outside any job.
 * Since step 11 a store has them only once it has a sink
 * (store_ol_triggers): run over no sink, they cost a coordinator about a
 * tenth of its store time per fragment, to queue nothing. */
#define OL_TASK_EVENTS                                                         \
	"  INSERT OR IGNORE INTO ol_outbox (sink, kind, ref)"                  \
	"  SELECT k.id, CASE WHEN s.num IS NULL THEN 2 ELSE 4 END,"            \
	"  coalesce(s.num, NEW.run) FROM ol_sinks k LEFT JOIN task_starts s"   \
	"  ON s.job = NEW.job AND s.run_id = (SELECT id FROM runs"             \
	"  WHERE num = NEW.run) WHERE s.num IS NULL OR k.id > s.sinks_seen"    \
	"  ORDER BY k.id;"                                                     \
	"  INSERT OR IGNORE INTO ol_outbox (sink, kind, ref)"                  \
	"  SELECT id, 3, NEW.run FROM ol_sinks ORDER BY id;"
#define OL_TRIGGERS                                                            \
	"CREATE TRIGGER IF NOT EXISTS ol_job_start AFTER INSERT ON jobs BEGIN" \
	"  INSERT OR IGNORE INTO ol_outbox (sink, kind, ref)"                  \
	"  SELECT id, 0, NEW.num FROM ol_sinks;"                               \
	"END;"                                                                 \
	"CREATE TRIGGER IF NOT EXISTS ol_job_end AFTER UPDATE OF state ON "    \
	"jobs"                                                                 \
	"  WHEN NEW.state = 'ended' AND OLD.state <> 'ended' BEGIN"            \
	"  INSERT OR IGNORE INTO ol_outbox (sink, kind, ref)"                  \
	"  SELECT id, 1, NEW.num FROM ol_sinks;"                               \
	"END;"                                                                 \
	"CREATE TRIGGER IF NOT EXISTS ol_task_start AFTER INSERT ON "          \
	"task_starts"                                                          \
	"  BEGIN"                                                              \
	"  INSERT OR IGNORE INTO ol_outbox (sink, kind, ref)"                  \
	"  SELECT id, 4, NEW.num FROM ol_sinks WHERE id <= NEW.sinks_seen;"    \
	"END;"                                                                 \
	"CREATE TRIGGER IF NOT EXISTS ol_task_whole AFTER INSERT ON tasks"     \
	"  WHEN NEW.parts_stored >= NEW.nparts BEGIN" OL_TASK_EVENTS "END;"    \
	"CREATE TRIGGER IF NOT EXISTS ol_task_parts AFTER UPDATE OF"           \
	"  parts_stored ON tasks WHEN NEW.parts_stored >= NEW.nparts"          \
	"  AND OLD.parts_stored < OLD.nparts BEGIN" OL_TASK_EVENTS "END;"      \
	"CREATE TRIGGER IF NOT EXISTS ol_run AFTER INSERT ON runs"             \
	"  WHEN NEW.job IS NULL BEGIN"                                         \
	"  INSERT OR IGNORE INTO ol_outbox (sink, kind, ref)"                  \
	"  SELECT id, k.kind, NEW.num FROM ol_sinks,"                          \
	"  (SELECT 2 AS kind UNION ALL SELECT 3) k ORDER BY k.kind;"           \
	"END;"

static const char *const migrations[] = {
	/* 1: runs, processes, paths, artifacts, file I/O, warnings, the hash
	 * cache. */
	"CREATE TABLE runs ("
	"  num INTEGER PRIMARY KEY," /* insertion order */
	"  id TEXT NOT NULL UNIQUE CHECK (length(id) > 0),"
	"  job TEXT," /* NULL: a local run outside any job */
	"  backend TEXT NOT NULL,"
	"  node TEXT NOT NULL,"
	"  exit_code INTEGER NOT NULL,"
	"  started_ns INTEGER NOT NULL,"
	"  ended_ns INTEGER NOT NULL,"
	"  dropped_events INTEGER NOT NULL"
	");"
	"CREATE INDEX runs_by_start ON runs (started_ns, num);"
	"CREATE INDEX runs_by_job ON runs (job, started_ns, num)"
	"  WHERE job IS NOT NULL;"
	"CREATE TABLE processes ("
	"  run INTEGER NOT NULL REFERENCES runs (num) ON DELETE CASCADE,"
	"  seq INTEGER NOT NULL," /* position in the report */
	"  pid INTEGER NOT NULL,"
	"  ppid INTEGER NOT NULL,"
	"  argc INTEGER NOT NULL,"
	"  argv BLOB NOT NULL," /* every argument followed by a NUL byte */
	"  exe BLOB,"
	"  cwd BLOB,"
	"  exit_code INTEGER NOT NULL,"
	"  exited INTEGER NOT NULL,"
	"  PRIMARY KEY (run, seq)"
	") WITHOUT ROWID;"
	"CREATE TABLE paths ("
	"  id INTEGER PRIMARY KEY,"
	"  path BLOB NOT NULL UNIQUE"
	");"
	"CREATE TABLE artifacts (" /* content-addressed: one row per content */
	"  id INTEGER PRIMARY KEY,"
	"  hash BLOB NOT NULL UNIQUE CHECK (length(hash) = 32)" /* BLAKE2b-256
								 */
	");"
	"CREATE TABLE file_io ("
	"  run INTEGER NOT NULL REFERENCES runs (num) ON DELETE CASCADE,"
	"  path INTEGER NOT NULL REFERENCES paths (id),"
	"  artifact INTEGER REFERENCES artifacts (id)," /* NULL: no hash */
	"  read INTEGER NOT NULL,"
	"  written INTEGER NOT NULL,"
	"  created INTEGER NOT NULL,"
	"  deleted INTEGER NOT NULL,"
	"  renamed_to INTEGER REFERENCES paths (id),"
	"  size INTEGER," /* NULL: unknown */
	"  hash_missing BLOB,"
	/* State at the first open; all NULL when not known. */
	"  first_dev INTEGER,"
	"  first_ino INTEGER,"
	"  first_size INTEGER,"
	"  first_mtime_ns INTEGER,"
	"  PRIMARY KEY (run, path)"
	") WITHOUT ROWID;"
	"CREATE INDEX file_io_by_path ON file_io (path);"
	"CREATE INDEX file_io_by_artifact ON file_io (artifact)"
	"  WHERE artifact IS NOT NULL;"
	"CREATE TABLE warnings ("
	"  run INTEGER NOT NULL REFERENCES runs (num) ON DELETE CASCADE,"
	"  seq INTEGER NOT NULL,"
	"  text BLOB NOT NULL,"
	"  PRIMARY KEY (run, seq)"
	") WITHOUT ROWID;"
	/* One row per inode: a file whose size, mtime or ctime changed
	 * misses, and its new hash replaces the old row. */
	"CREATE TABLE hash_cache (" STORE_HASH_CACHE_COLUMNS ";",
	/* 2: distribution (DESIGN.md "Distribution"): jobs, enrolled
	 * writers, the raw signed envelopes (kept for audit, re-verify and
	 * re-merge), and tasks: what a fragment adds to the run it merges
	 * into (runs.job names the job by its id). A job keeps the key
	 * derived from its token (weft_enrol_key), never the token. */
	"CREATE TABLE jobs ("
	"  num INTEGER PRIMARY KEY,"
	"  id TEXT NOT NULL UNIQUE,"
	"  enrol_key BLOB NOT NULL CHECK (length(enrol_key) = 32),"
	"  state TEXT NOT NULL CHECK (state IN ('open', 'ended')),"
	"  created_ns INTEGER NOT NULL,"
	"  ended_ns INTEGER,"
	"  exit_code INTEGER,"
	"  command BLOB NOT NULL,"
	"  user BLOB NOT NULL,"
	"  host BLOB NOT NULL,"
	"  cwd BLOB NOT NULL,"
	"  git BLOB NOT NULL"
	");"
	"CREATE TABLE writers ("
	"  num INTEGER PRIMARY KEY,"
	"  job INTEGER NOT NULL REFERENCES jobs (num),"
	"  pubkey BLOB NOT NULL CHECK (length(pubkey) = 32),"
	"  enrolled_ns INTEGER NOT NULL,"
	"  UNIQUE (job, pubkey)"
	");"
	"CREATE TABLE envelopes ("
	"  num INTEGER PRIMARY KEY," /* arrival order */
	"  job INTEGER NOT NULL REFERENCES jobs (num),"
	"  writer INTEGER NOT NULL REFERENCES writers (num),"
	"  seq INTEGER NOT NULL,"
	"  payload_hash BLOB NOT NULL CHECK (length(payload_hash) = 32),"
	"  raw BLOB NOT NULL,"
	"  stored_ns INTEGER NOT NULL,"
	"  UNIQUE (job, writer, seq)"
	");"
	"CREATE TABLE tasks ("
	"  run INTEGER PRIMARY KEY REFERENCES runs (num) ON DELETE CASCADE,"
	"  job INTEGER NOT NULL REFERENCES jobs (num),"
	"  writer INTEGER NOT NULL REFERENCES writers (num),"
	"  task_id BLOB NOT NULL,"
	"  name BLOB NOT NULL,"
	"  parent BLOB,"          /* the launching task's task_id, or NULL */
	"  engine BLOB NOT NULL," /* key=value lines */
	"  preflight BLOB NOT NULL,"
	"  nparts INTEGER NOT NULL,"
	"  parts_stored INTEGER NOT NULL"
	");"
	"CREATE INDEX tasks_by_job ON tasks (job, task_id);",
	/* 3: lineage by file version (DESIGN.md "Store and DAG"). A file
	 * record gains its location (a filesystem, named in filesystems,
	 * and the path below its root, in paths), the name the run used
	 * when that was a symlink, whether the write updated what was there,
	 * the version read (read_artifact) or why it is unknown, the stat
	 * identity of the version written, and the times of the first open
	 * and the last write. Rows stored before have none of these (NULL):
	 * the DAG names their location by node and path and makes their
	 * reads weak (their hash was taken after the run, so it is not
	 * known to be the version read). */
	"CREATE TABLE filesystems ("
	"  id INTEGER PRIMARY KEY,"
	"  name BLOB NOT NULL UNIQUE"
	");"
	"ALTER TABLE file_io ADD COLUMN loc_fs INTEGER "
	"  REFERENCES filesystems (id);"
	"ALTER TABLE file_io ADD COLUMN loc_path INTEGER REFERENCES paths (id);"
	"ALTER TABLE file_io ADD COLUMN used_path INTEGER "
	"  REFERENCES paths (id);"
	"ALTER TABLE file_io ADD COLUMN updated INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE file_io ADD COLUMN first_ctime_ns INTEGER;"
	"ALTER TABLE file_io ADD COLUMN read_artifact INTEGER "
	"  REFERENCES artifacts (id);"
	"ALTER TABLE file_io ADD COLUMN read_hash_missing BLOB;"
	"ALTER TABLE file_io ADD COLUMN final_dev INTEGER;"
	"ALTER TABLE file_io ADD COLUMN final_ino INTEGER;"
	"ALTER TABLE file_io ADD COLUMN final_mtime_ns INTEGER;"
	"ALTER TABLE file_io ADD COLUMN final_ctime_ns INTEGER;"
	"ALTER TABLE file_io ADD COLUMN first_open_ns INTEGER;"
	"ALTER TABLE file_io ADD COLUMN last_write_ns INTEGER;"
	"CREATE INDEX file_io_by_location ON file_io (loc_path, loc_fs)"
	"  WHERE loc_path IS NOT NULL;"
	"CREATE INDEX file_io_by_used_path ON file_io (used_path)"
	"  WHERE used_path IS NOT NULL;",
	/* 4: job verifiers. A job keeps the Ed25519 public key derived from
	 * its token (weft_job_verifier): it checks the signatures that
	 * enrol writers and end the job, and cannot make them, so a copy of
	 * the store proves nothing. enrol_key (from which anyone can make
	 * the older MACs) is all zeros in jobs that have a verifier; a job
	 * created before this step keeps its enrol_key while it is open, so
	 * its wrappers can still enrol, and loses it (zeros) when it ends,
	 * here for jobs that have ended already. */
	"ALTER TABLE jobs ADD COLUMN verifier BLOB"
	"  CHECK (verifier IS NULL OR length(verifier) = 32);"
	"UPDATE jobs SET enrol_key = zeroblob(32) WHERE state = 'ended';",
	/* 5: refused fragments, so that status, job show and dag can name
	 * every task that was refused and why. Only fragments an enrolled
	 * writer of the job signed are kept (one row per (job, writer,
	 * seq): resending adds nothing); refusals of anything else are
	 * counted by the coordinator, never stored, or a flood of junk
	 * would grow the store. task_id, name and node are "" when the
	 * payload did not decode. */
	"CREATE TABLE refusals ("
	"  job INTEGER NOT NULL REFERENCES jobs (num),"
	"  writer INTEGER NOT NULL REFERENCES writers (num),"
	"  seq INTEGER NOT NULL,"
	"  task_id BLOB NOT NULL,"
	"  name BLOB NOT NULL,"
	"  node BLOB NOT NULL,"
	"  reason INTEGER NOT NULL,"
	"  detail BLOB NOT NULL,"
	"  refused_ns INTEGER NOT NULL,"
	"  PRIMARY KEY (job, writer, seq)"
	");",
	/* 6: lineage down to the process (DESIGN.md "The classifier"). A
	 * process row is one program image: it names the image it came
	 * from (parent: its seq in the run, by_exec when it is the same
	 * pid's image before an exec); schema 3 records give their seq.
	 * touches: what each process did to each file of the run, and the
	 * version it saw (src: the seq of the process of the run that wrote
	 * it, with the flags saying so). Rows stored before have neither:
	 * their runs stay whole in the process view. */
	"ALTER TABLE processes ADD COLUMN indexed INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE processes ADD COLUMN parent INTEGER;"
	"ALTER TABLE processes ADD COLUMN by_exec INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE processes ADD COLUMN execd INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE processes ADD COLUMN started_ns INTEGER;"
	"ALTER TABLE processes ADD COLUMN ended_ns INTEGER;"
	"CREATE TABLE touches ("
	"  run INTEGER NOT NULL REFERENCES runs (num) ON DELETE CASCADE,"
	"  path INTEGER NOT NULL REFERENCES paths (id),"
	"  proc INTEGER NOT NULL,"
	"  flags INTEGER NOT NULL,"
	"  src INTEGER,"
	"  first_open_ns INTEGER,"
	"  last_write_ns INTEGER,"
	"  PRIMARY KEY (run, path, proc)"
	") WITHOUT ROWID;",
	/* 7: the OpenLineage outbox (export_openlineage.c). A sink is a
	 * destination a coordinator sends events to (an endpoint's URL, or
	 * "file:" and a path); it is registered when a coordinator starts
	 * with one configured. Triggers queue one row per sink and event in
	 * the transaction that stores what the event is about, so an event
	 * is never lost nor queued twice, whatever path stored it (ingest,
	 * relay, a local run): a job's start and end, and a task's start and
	 * end once all of its parts are stored. A row names what to build
	 * the event from (kind 0/1: jobs.num, 2/3: runs.num), not the
	 * event's bytes: they are made when it is sent, the same bytes as
	 * `weft export --format openlineage`. A row leaves the outbox only
	 * when its destination took it; one the destination refused for
	 * good (a 4xx) stays, marked, for `weft status` to show. "IF NOT
	 * EXISTS": a store whose version number was set back (the tests'
	 * older stores) runs the step again. */
	"CREATE TABLE IF NOT EXISTS ol_sinks ("
	"  id INTEGER PRIMARY KEY,"
	"  dest BLOB NOT NULL UNIQUE,"
	"  added_ns INTEGER NOT NULL,"
	"  sent INTEGER NOT NULL DEFAULT 0,"
	"  last_error BLOB,"
	"  last_error_ns INTEGER"
	");"
	"CREATE TABLE IF NOT EXISTS ol_outbox ("
	"  seq INTEGER PRIMARY KEY," /* queue order */
	"  sink INTEGER NOT NULL REFERENCES ol_sinks (id) ON DELETE CASCADE,"
	"  kind INTEGER NOT NULL CHECK (kind BETWEEN 0 AND 3),"
	"  ref INTEGER NOT NULL,"
	"  attempts INTEGER NOT NULL DEFAULT 0,"
	"  refused INTEGER NOT NULL DEFAULT 0,"
	"  UNIQUE (sink, kind, ref)"
	");"
	"CREATE INDEX IF NOT EXISTS ol_outbox_by_sink ON ol_outbox (sink, "
	"refused, seq);"
	"CREATE TRIGGER IF NOT EXISTS ol_job_start AFTER INSERT ON jobs BEGIN"
	"  INSERT OR IGNORE INTO ol_outbox (sink, kind, ref)"
	"  SELECT id, 0, NEW.num FROM ol_sinks;"
	"END;"
	"CREATE TRIGGER IF NOT EXISTS ol_job_end AFTER UPDATE OF state ON jobs"
	"  WHEN NEW.state = 'ended' AND OLD.state <> 'ended' BEGIN"
	"  INSERT OR IGNORE INTO ol_outbox (sink, kind, ref)"
	"  SELECT id, 1, NEW.num FROM ol_sinks;"
	"END;"
	"CREATE TRIGGER IF NOT EXISTS ol_task_whole AFTER INSERT ON tasks"
	"  WHEN NEW.parts_stored >= NEW.nparts BEGIN"
	"  INSERT OR IGNORE INTO ol_outbox (sink, kind, ref)"
	"  SELECT id, k.kind, NEW.run FROM ol_sinks,"
	"  (SELECT 2 AS kind UNION ALL SELECT 3) k ORDER BY k.kind;"
	"END;"
	"CREATE TRIGGER IF NOT EXISTS ol_task_parts AFTER UPDATE OF "
	"parts_stored ON tasks"
	"  WHEN NEW.parts_stored >= NEW.nparts"
	"  AND OLD.parts_stored < OLD.nparts BEGIN"
	"  INSERT OR IGNORE INTO ol_outbox (sink, kind, ref)"
	"  SELECT id, k.kind, NEW.run FROM ol_sinks,"
	"  (SELECT 2 AS kind UNION ALL SELECT 3) k ORDER BY k.kind;"
	"END;"
	/* A run stored outside any job (weft_store_put_run) is whole. */
	"CREATE TRIGGER IF NOT EXISTS ol_run AFTER INSERT ON runs WHEN NEW.job "
	"IS NULL BEGIN"
	"  INSERT OR IGNORE INTO ol_outbox (sink, kind, ref)"
	"  SELECT id, k.kind, NEW.num FROM ol_sinks,"
	"  (SELECT 2 AS kind UNION ALL SELECT 3) k ORDER BY k.kind;"
	"END;",
	/* 8 (issue 17):
	 * what a process's result depends on besides files (schema 4):
	 * its executable's hash, and its environment: env_state as
	 * enum weft_env_state, env the variables of a WEFT_ENV_LISTED one
	 * (store_env_encode: name NUL, then 'h' and 32 hash bytes or 'v',
	 * the value and NUL, per variable), env_missing why one is not
	 * known. Rows stored before have env_state 0: not recorded. */
	"ALTER TABLE processes ADD COLUMN exe_hash BLOB;"
	"ALTER TABLE processes ADD COLUMN env_state INTEGER NOT NULL "
	"  DEFAULT 0;"
	"ALTER TABLE processes ADD COLUMN env BLOB;"
	"ALTER TABLE processes ADD COLUMN env_missing BLOB;",
	/* 9 (issue 16): tasks announced as they start (a wrapper's
	 * TASK_START, weft run's own record), so that their OpenLineage
	 * START goes out while they run: the outbox takes a fifth kind (4:
	 * task_starts.num), built from the announcement alone (no inputs
	 * yet), and a task whose record arrives after its announcement
	 * queues its end only, so that no START is sent twice. sinks_seen:
	 * the last sink the announcement's START was queued for; a sink
	 * added since gets it with the task's end. SQLite cannot change a
	 * CHECK: the outbox is made again, its rows and their order kept,
	 * and every trigger that fills it with it ("IF EXISTS", "IF NOT
	 * EXISTS": like step 7, it may run again on a store whose version
	 * number was set back). */
	"CREATE TABLE IF NOT EXISTS task_starts ("
	"  num INTEGER PRIMARY KEY,"
	"  job INTEGER NOT NULL REFERENCES jobs (num),"
	"  run_id TEXT NOT NULL,"
	"  task_id BLOB NOT NULL,"
	"  name BLOB NOT NULL,"
	"  parent BLOB," /* the launching task's task_id, or NULL */
	"  node BLOB NOT NULL,"
	"  backend TEXT NOT NULL,"
	"  started_ns INTEGER NOT NULL,"
	"  stored_ns INTEGER NOT NULL,"
	"  sinks_seen INTEGER NOT NULL,"
	"  UNIQUE (job, run_id)"
	");"
	"CREATE INDEX IF NOT EXISTS task_starts_by_task ON task_starts (job, "
	"task_id);"
	"DROP TRIGGER IF EXISTS ol_job_start;"
	"DROP TRIGGER IF EXISTS ol_job_end;"
	"DROP TRIGGER IF EXISTS ol_task_whole;"
	"DROP TRIGGER IF EXISTS ol_task_parts;"
	"DROP TRIGGER IF EXISTS ol_run;"
	"DROP TRIGGER IF EXISTS ol_task_start;"
	"CREATE TABLE ol_outbox_old AS SELECT * FROM ol_outbox;"
	"DROP TABLE ol_outbox;"
	"CREATE TABLE ol_outbox ("
	"  seq INTEGER PRIMARY KEY,"
	"  sink INTEGER NOT NULL REFERENCES ol_sinks (id) ON DELETE CASCADE,"
	"  kind INTEGER NOT NULL CHECK (kind BETWEEN 0 AND 4),"
	"  ref INTEGER NOT NULL,"
	"  attempts INTEGER NOT NULL DEFAULT 0,"
	"  refused INTEGER NOT NULL DEFAULT 0,"
	"  UNIQUE (sink, kind, ref)"
	");"
	"INSERT INTO ol_outbox SELECT seq, sink, kind, ref, attempts, refused "
	"  FROM ol_outbox_old ORDER BY seq;"
	"DROP TABLE ol_outbox_old;"
	"CREATE INDEX ol_outbox_by_sink ON ol_outbox (sink, refused, "
	"seq);" OL_TRIGGERS,
	/* 10: one index entry per file record that a path's history
	 * scatters, not three. A run that touches the files of earlier
	 * runs puts each record's entry beside that path's older ones, so
	 * once a path has a page of them every index by path, location or
	 * content costs a page per record in the commit and again in the
	 * checkpoint: the store phase grew with the project's history.
	 * file_io_by_artifact serves no query. file_io_by_path duplicated
	 * file_io_by_location for every record whose location is its path
	 * (all on the root filesystem): it now holds only the others (on
	 * another filesystem, or stored before locations), and a lookup by
	 * path asks both (lineage.c). The rows stay as they are. */
	"DROP INDEX IF EXISTS file_io_by_artifact;"
	"DROP INDEX IF EXISTS file_io_by_path;"
	"CREATE INDEX IF NOT EXISTS file_io_by_path_not_loc ON file_io (path)"
	"  WHERE loc_path IS NOT path;",
	/* 11: the outbox's triggers only in a store with a sink. Every
	 * task and run stored ran them, and their bodies cost as much over
	 * no sink as over one. Dropped here; a store that has a sink gets
	 * them back in the same transaction (restore_ol_triggers), a store
	 * without one when its first sink is registered (weft_ol_sink_add).
	 * What they queue is unchanged: nothing without a sink. */
	"DROP TRIGGER IF EXISTS ol_job_start;"
	"DROP TRIGGER IF EXISTS ol_job_end;"
	"DROP TRIGGER IF EXISTS ol_task_start;"
	"DROP TRIGGER IF EXISTS ol_task_whole;"
	"DROP TRIGGER IF EXISTS ol_task_parts;"
	"DROP TRIGGER IF EXISTS ol_run;",
	/* 12: a location's records chained, not indexed. file_io_by_location
	 * put every record beside its location's older ones, so once a
	 * location had a page of them (about 300 runs of the same files)
	 * each record cost a page of its own in the commit and again in
	 * the checkpoint. Now each located record names the one below it
	 * at its location in file_io's key order (prev_run, prev_path), and
	 * loc_heads the highest: a run writes only its own rows (at the end
	 * of file_io) and the few pages of loc_heads (chain_find). weft
	 * lineage walks a location's chain down from its head (lineage.c). */
	"CREATE TABLE loc_heads ("
	"  loc_path INTEGER NOT NULL,"
	"  loc_fs INTEGER NOT NULL,"
	"  run INTEGER NOT NULL,"
	"  path INTEGER NOT NULL,"
	"  PRIMARY KEY (loc_path, loc_fs)"
	") WITHOUT ROWID;"
	"ALTER TABLE file_io ADD COLUMN prev_run INTEGER;"
	"ALTER TABLE file_io ADD COLUMN prev_path INTEGER;" STORE_CHAIN_SQL
	"DROP INDEX IF EXISTS file_io_by_location;",
};

const char store_ol_triggers[] = OL_TRIGGERS;
#undef OL_TRIGGERS
#undef OL_TASK_EVENTS

#define STORE_SCHEMA_VERSION ((int)(sizeof(migrations) / sizeof(migrations[0])))

static const char *vfs_name;

static void sqlite_setup(void)
{
	/* Refused (harmlessly) when SQLite was initialised already. */
	sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
	vfs_name = store_vfs_register();
}

static atomic_int open_connections;

int store_sqlite_open(const char *path, sqlite3 **db, int flags)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, sqlite_setup);
	int rc = sqlite3_open_v2(path, db, flags | SQLITE_OPEN_NOMUTEX,
				 vfs_name);
	if (*db) /* made even when the open failed; closed all the same */
		atomic_fetch_add(&open_connections, 1);
	return rc;
}

int store_sqlite_close(sqlite3 *db)
{
	/* SQLITE_BUSY (a statement left unfinalized) leaves it open. */
	int rc = sqlite3_close(db);
	if (db && rc == SQLITE_OK)
		atomic_fetch_sub(&open_connections, 1);
	return rc;
}

int store_sqlite_open_count(void)
{
	return atomic_load(&open_connections);
}

int store_prepare(weft_store *s, const char *sql, sqlite3_stmt **stmt)
{
	if (sqlite3_prepare_v2(s->db, sql, -1, stmt, NULL) != SQLITE_OK) {
		*stmt = NULL;
		return WEFT_EDB;
	}
	return WEFT_OK;
}

int store_each_row(sqlite3_stmt *st, store_row_fn row, void *ctx)
{
	int err = WEFT_OK, rc;
	while (!err && (rc = sqlite3_step(st)) == SQLITE_ROW)
		err = row(st, ctx);
	if (!err && rc != SQLITE_DONE)
		err = WEFT_EDB;
	sqlite3_finalize(st);
	return err;
}

int store_query(weft_store *s, const char *sql, store_row_fn row, void *ctx)
{
	sqlite3_stmt *st;
	int err = store_prepare(s, sql, &st);
	return err ? err : store_each_row(st, row, ctx);
}

int store_exec(weft_store *s, const char *sql)
{
	return sqlite3_exec(s->db, sql, NULL, NULL, NULL) == SQLITE_OK
		       ? WEFT_OK
		       : WEFT_EDB;
}

static int read_user_version(weft_store *s, int *version)
{
	sqlite3_stmt *st;
	int err = store_prepare(s, "PRAGMA user_version", &st);
	if (err)
		return err;
	if (sqlite3_step(st) == SQLITE_ROW) {
		*version = sqlite3_column_int(st, 0);
		err = WEFT_OK;
	} else {
		err = WEFT_EDB;
	}
	sqlite3_finalize(st);
	return err;
}

/* A failure worth trying again (weft_store_open): SQLite answers
 * SQLITE_BUSY without waiting for the busy handler while another process
 * switches a new database to WAL or recovers its WAL. */
#define STORE_RETRY 1

static int busy_or(const weft_store *s, int err)
{
	return (sqlite3_extended_errcode(s->db) & 0xff) == SQLITE_BUSY
		       ? STORE_RETRY
		       : err;
}

/* Step 11 dropped the outbox's triggers: a store with a sink keeps them. */
static int restore_ol_triggers(weft_store *s)
{
	sqlite3_stmt *st;
	int err = store_prepare(s, "SELECT 1 FROM ol_sinks LIMIT 1", &st);
	if (err)
		return err;
	int rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc == SQLITE_DONE)
		return WEFT_OK;
	if (rc != SQLITE_ROW)
		return WEFT_EDB;
	return store_exec(s, store_ol_triggers) ? WEFT_EDB : WEFT_OK;
}

/* Apply the steps the database lacks, each in its own transaction. The
 * version is read again inside the transaction because another process may
 * have migrated the database since we looked. */
static int migrate(weft_store *s)
{
	for (;;) {
		if (store_exec(s, "BEGIN IMMEDIATE"))
			return busy_or(s, WEFT_EDB);
		int version;
		int err = read_user_version(s, &version);
		if (err)
			goto fail;
		if (version > STORE_SCHEMA_VERSION) {
			err = WEFT_EVERSION;
			goto fail;
		}
		if (version == STORE_SCHEMA_VERSION)
			return store_exec(s, "COMMIT");
		char bump[64];
		snprintf(bump, sizeof(bump), "PRAGMA user_version = %d",
			 version + 1);
		if (store_exec(s, migrations[version]) ||
		    (version + 1 == 11 && restore_ol_triggers(s)) ||
		    store_exec(s, bump) || store_exec(s, "COMMIT")) {
			err = WEFT_EDB;
			goto fail;
		}
		continue;
	fail:
		err = busy_or(s, err);
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
		return err;
	}
}

/* A store holds job secrets and every path a job used: its files are
 * for their owner alone. SQLite would create the database 0644 (less the
 * umask) and gives its -wal and -shm the database's mode.
 *
 * Another connection of this process may have these files open (the
 * coordinator's beside weft run's hash cache, a sibling): closing any
 * ordinary descriptor of a file drops every POSIX lock this process holds
 * on it, SQLite's included, and a writer that lost its locks loses
 * commits to the next checkpoint of another process. So the files are
 * looked at through O_PATH descriptors, whose close drops no lock, and
 * changed by path through /proc/self/fd; only a database this call
 * creates (O_EXCL: nobody had it open) gets an ordinary descriptor. */
void store_make_private(const char *db_path, bool create)
{
	static const char *const suffixes[] = {"", "-wal", "-shm", "-journal"};
	char path[WEFT_MAX_PATH_BYTES + 16], proc[64];
	if (!db_path[0] || strcmp(db_path, ":memory:") == 0 ||
	    strncmp(db_path, "file:", 5) == 0)
		return;
	for (size_t i = 0; i < sizeof(suffixes) / sizeof(*suffixes); i++) {
		int n = snprintf(path, sizeof(path), "%s%s", db_path,
				 suffixes[i]);
		if (n < 0 || (size_t)n >= sizeof(path))
			return;
		if (i == 0 && create) {
			int fd = open(path,
				      O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
					      O_CLOEXEC,
				      0600);
			if (fd >= 0) {
				close(fd); /* new, 0600 whatever the umask */
				continue;
			}
		}
		int fd = open(path, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			continue; /* missing: SQLite says what is wrong */
		struct stat st;
		/* One an older weft made readable by others tightened, by
		 * its owner only. */
		if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
		    st.st_uid == geteuid() && (st.st_mode & 077)) {
			snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
			(void)chmod(proc, st.st_mode & 0600);
		}
		close(fd);
	}
}

/* The version checked, WAL on, the schema brought up to date. */
static int open_schema(weft_store *s)
{
	/* Check the version before anything that writes: switching to WAL
	 * rewrites the file header, and a newer weft's file stays as it is. */
	int version, err = read_user_version(s, &version);
	if (err)
		return busy_or(s, err);
	if (version > STORE_SCHEMA_VERSION)
		return WEFT_EVERSION;
	/* WAL lets readers (weft dag) run beside the writer; synchronous
	 * NORMAL is durable across application crashes and, in WAL mode,
	 * never corrupts on power loss. */
	if (store_exec(s, "PRAGMA journal_mode = WAL") ||
	    store_exec(s, "PRAGMA synchronous = NORMAL") ||
	    store_exec(s, "PRAGMA foreign_keys = ON") ||
	    store_exec(s, "PRAGMA journal_size_limit = " STORE_WAL_LIMIT))
		return busy_or(s, WEFT_EDB);
	/* The -wal and -shm files stay when the last connection closes
	 * (after its checkpoint, which leaves weft.db complete on its own,
	 * the WAL cut to nothing): making, syncing into the directory and
	 * deleting them again cost every short `weft run` about a
	 * millisecond. */
	int persist = 1;
	sqlite3_file_control(s->db, "main", SQLITE_FCNTL_PERSIST_WAL,
			     &persist);
	/* The version only grows: a store already current needs no write
	 * transaction to find that out. */
	return version == STORE_SCHEMA_VERSION ? WEFT_OK : migrate(s);
}

int weft_store_open(const char *db_path, weft_store **out)
{
	*out = NULL;
	weft_store *s = calloc(1, sizeof(*s));
	if (!s)
		return WEFT_ENOMEM;
	store_make_private(db_path, true);
	int rc = store_sqlite_open(db_path, &s->db,
				   SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
	if (rc != SQLITE_OK) {
		int err = rc == SQLITE_NOMEM ? WEFT_ENOMEM : WEFT_EDB;
		weft_store_close(s);
		return err;
	}
	sqlite3_extended_result_codes(s->db, 1);
	sqlite3_busy_timeout(s->db, WEFT_STORE_BUSY_TIMEOUT_MS);

	/* A database other processes are creating at the same moment
	 * (several `weft run`s started at once in a new project) can be
	 * busy without waiting: try again within the busy timeout. */
	int err;
	int64_t until = weft_mono_ms() + WEFT_STORE_BUSY_TIMEOUT_MS;
	while ((err = open_schema(s)) == STORE_RETRY && weft_mono_ms() < until)
		usleep(2000);
	if (err == STORE_RETRY)
		err = WEFT_EBUSY;
	if (err) {
		weft_store_close(s);
		return err;
	}
	*out = s;
	return WEFT_OK;
}

void weft_store_close(weft_store *s)
{
	if (!s)
		return;
	sqlite3_finalize(s->cache_get);
	sqlite3_finalize(s->cache_put);
	store_sqlite_close(s->db);
	free(s->deferred);
	free(s);
}

const char *weft_store_errmsg(const weft_store *s)
{
	if (!s || !s->db)
		return "no database";
	if (s->errmsg[0])
		return s->errmsg;
	return sqlite3_errmsg(s->db);
}

void weft_store_set_progress(weft_store *s, weft_progress_fn fn, void *arg)
{
	s->progress = fn;
	s->progress_arg = arg;
}

void store_save_errmsg(weft_store *s)
{
	snprintf(s->errmsg, sizeof(s->errmsg), "%s", sqlite3_errmsg(s->db));
}

/* ---- Binding and reading byte strings ---- */

/* A C string as a BLOB, or NULL. SQLITE_STATIC: every caller steps the
 * statement before the string can go away. */
int store_bind_bytes(sqlite3_stmt *st, int i, const char *s)
{
	if (!s)
		return sqlite3_bind_null(st, i);
	return sqlite3_bind_blob(st, i, s, (int)strlen(s), SQLITE_STATIC);
}

char *store_join_argv(const void *blob, size_t len)
{
	char *s = malloc(len + 1);
	if (!s)
		return NULL;
	if (len)
		memcpy(s, blob, len);
	/* Drop the last argument's terminator; the others become spaces. */
	if (len && s[len - 1] == '\0')
		len--;
	for (size_t i = 0; i < len; i++)
		if (s[i] == '\0')
			s[i] = ' ';
	s[len] = '\0';
	return s;
}
