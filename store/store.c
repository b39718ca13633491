/*
 * store.c - the SQLite store: opening a database, bringing its schema up to
 * date, and storing and loading runs.
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

/* A column as a malloc'd NUL-terminated string; NULL stays NULL. */
static int column_bytes(sqlite3_stmt *st, int i, char **out)
{
	*out = NULL;
	if (sqlite3_column_type(st, i) == SQLITE_NULL)
		return WEFT_OK;
	const void *p = sqlite3_column_blob(st, i);
	int n = sqlite3_column_bytes(st, i);
	char *s = malloc((size_t)n + 1);
	if (!s)
		return WEFT_ENOMEM;
	if (n)
		memcpy(s, p, (size_t)n);
	s[n] = '\0';
	*out = s;
	return WEFT_OK;
}

/* A TEXT column into one of the report's fixed-size name fields. */
static int column_name(sqlite3_stmt *st, int i, char out[WEFT_MAX_NAME_BYTES])
{
	const unsigned char *t = sqlite3_column_text(st, i);
	int n = sqlite3_column_bytes(st, i);
	if (!t || n >= WEFT_MAX_NAME_BYTES) {
		out[0] = '\0';
		return t ? WEFT_EDB : WEFT_OK;
	}
	memcpy(out, t, (size_t)n + 1);
	return WEFT_OK;
}

static bool name_ok(const char name[WEFT_MAX_NAME_BYTES])
{
	return memchr(name, '\0', WEFT_MAX_NAME_BYTES) != NULL;
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

/* ---- Storing a run ---- */

/* The id of a row of a unique-valued table (paths, artifacts), inserting
 * it when absent. `get` selects id by ?1, `add` inserts ?1. */
int store_intern(weft_store *s, sqlite3_stmt *get, sqlite3_stmt *add,
		 const void *value, int len, sqlite3_int64 *id, bool *added)
{
	if (added)
		*added = false;
	sqlite3_reset(get);
	sqlite3_bind_blob(get, 1, value, len, SQLITE_STATIC);
	int rc = sqlite3_step(get);
	if (rc == SQLITE_ROW) {
		*id = sqlite3_column_int64(get, 0);
		sqlite3_reset(get);
		return WEFT_OK;
	}
	sqlite3_reset(get);
	if (rc != SQLITE_DONE)
		return WEFT_EDB;
	sqlite3_reset(add);
	sqlite3_bind_blob(add, 1, value, len, SQLITE_STATIC);
	if (sqlite3_step(add) != SQLITE_DONE) {
		sqlite3_reset(add);
		return WEFT_EDB;
	}
	sqlite3_reset(add);
	*id = sqlite3_last_insert_rowid(s->db);
	if (added)
		*added = true;
	return WEFT_OK;
}

int store_check_report(const weft_report *r)
{
	if (!name_ok(r->run_id) || !r->run_id[0] || !name_ok(r->backend) ||
	    !name_ok(r->node))
		return WEFT_EINVAL;
	for (size_t i = 0; i < r->nprocesses; i++) {
		const weft_process_rec *p = &r->processes[i];
		if (p->argc && !p->argv)
			return WEFT_EINVAL;
		for (uint32_t a = 0; a < p->argc; a++)
			if (!p->argv[a])
				return WEFT_EINVAL;
	}
	for (size_t i = 0; i < r->nfiles; i++)
		if (!r->files[i].path)
			return WEFT_EINVAL;
	for (size_t i = 0; i < r->nwarnings; i++)
		if (!r->warnings[i])
			return WEFT_EINVAL;
	return WEFT_OK;
}

const char *const store_put_sql[PUT_NSTMT] = {
	[PUT_RUN] = "INSERT INTO runs (id, backend, node, exit_code, "
		    "started_ns, ended_ns, dropped_events) "
		    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
	[PUT_PROCESS] = "INSERT INTO processes (run, seq, pid, ppid, argc, "
			"argv, exe, cwd, exit_code, exited, parent, by_exec, "
			"execd, started_ns, ended_ns, indexed, exe_hash, "
			"env_state, env, env_missing) "
			"VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, "
			"?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20)",
	[PUT_TOUCH] = "INSERT INTO touches (run, path, proc, flags, src, "
		      "first_open_ns, last_write_ns) "
		      "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
	[PUT_PATH_GET] = "SELECT id FROM paths WHERE path = ?1",
	[PUT_PATH_ADD] = "INSERT INTO paths (path) VALUES (?1)",
	[PUT_ARTIFACT_GET] = "SELECT id FROM artifacts WHERE hash = ?1",
	[PUT_ARTIFACT_ADD] = "INSERT INTO artifacts (hash) VALUES (?1)",
	[PUT_FS_GET] = "SELECT id FROM filesystems WHERE name = ?1",
	[PUT_FS_ADD] = "INSERT INTO filesystems (name) VALUES (?1)",
	[PUT_FILE] = "INSERT INTO file_io (run, path, artifact, read, "
		     "written, created, deleted, renamed_to, size, "
		     "hash_missing, first_dev, first_ino, first_mtime_ns, "
		     "first_ctime_ns, first_size, loc_fs, loc_path, "
		     "used_path, updated, read_artifact, read_hash_missing, "
		     "final_dev, final_ino, final_mtime_ns, final_ctime_ns, "
		     "first_open_ns, last_write_ns, prev_run, prev_path) "
		     "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, "
		     "?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, "
		     "?23, ?24, ?25, ?26, ?27, ?28, ?29)",
	[PUT_HEAD_GET] = "SELECT run, path FROM loc_heads "
			 "WHERE loc_path = ?1 AND loc_fs = ?2",
	[PUT_HEAD_SET] = "INSERT INTO loc_heads (loc_path, loc_fs, run, path) "
			 "VALUES (?1, ?2, ?3, ?4) ON CONFLICT (loc_path, "
			 "loc_fs) DO UPDATE SET run = ?3, path = ?4",
	[PUT_PREV_GET] = "SELECT prev_run, prev_path FROM file_io "
			 "WHERE run = ?1 AND path = ?2",
	[PUT_PREV_SET] = "UPDATE file_io SET prev_run = ?3, prev_path = ?4 "
			 "WHERE run = ?1 AND path = ?2",
	[PUT_WARNING] =
		"INSERT INTO warnings (run, seq, text) VALUES (?1, ?2, ?3)",
};

/* Step a fully bound insert and reset it for the next row. A constraint
 * failure means the report broke a rule (the same path twice in a run). */
int store_step_insert(sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc == SQLITE_DONE)
		return WEFT_OK;
	return (rc & 0xff) == SQLITE_CONSTRAINT ? WEFT_EINVAL : WEFT_EDB;
}

/* A time in ns, left NULL when 0 (unknown). */
static void bind_known_ns(sqlite3_stmt *st, int i, int64_t ns)
{
	if (ns)
		sqlite3_bind_int64(st, i, ns);
}

/* A stat identity bound to parameters i.. i+3 (dev, ino, mtime_ns,
 * ctime_ns; an unknown ctime left NULL), as column_identity reads it. */
static void bind_identity(sqlite3_stmt *st, int i, uint64_t dev, uint64_t ino,
			  int64_t mtime_ns, int64_t ctime_ns)
{
	sqlite3_bind_int64(st, i, (sqlite3_int64)dev);
	sqlite3_bind_int64(st, i + 1, (sqlite3_int64)ino);
	sqlite3_bind_int64(st, i + 2, mtime_ns);
	bind_known_ns(st, i + 3, ctime_ns);
}

int store_put_process(sqlite3_stmt *st, sqlite3_int64 run, size_t seq,
		      const weft_process_rec *p)
{
	/* argv as one blob, every argument NUL-terminated: lossless, since
	 * an argument cannot hold a NUL. */
	size_t len = 0;
	for (uint32_t a = 0; a < p->argc; a++)
		len += strlen(p->argv[a]) + 1;
	if (len > (size_t)WEFT_MAX_MESSAGE_BYTES)
		return WEFT_ETOOBIG;
	char *argv = malloc(len ? len : 1);
	if (!argv)
		return WEFT_ENOMEM;
	size_t off = 0;
	for (uint32_t a = 0; a < p->argc; a++) {
		size_t n = strlen(p->argv[a]) + 1;
		memcpy(argv + off, p->argv[a], n);
		off += n;
	}
	sqlite3_bind_int64(st, 1, run);
	/* Touches name a process by its index in the whole report, which a
	 * part arriving out of order must keep. */
	sqlite3_bind_int64(st, 2, (sqlite3_int64)(p->has_index ? p->index : seq));
	sqlite3_bind_int(st, 3, p->pid);
	sqlite3_bind_int(st, 4, p->ppid);
	sqlite3_bind_int64(st, 5, p->argc);
	sqlite3_bind_blob(st, 6, argv, (int)len, SQLITE_STATIC);
	store_bind_bytes(st, 7, p->exe);
	store_bind_bytes(st, 8, p->cwd);
	sqlite3_bind_int(st, 9, p->exit_code);
	sqlite3_bind_int(st, 10, p->exited);
	if (p->has_parent)
		sqlite3_bind_int64(st, 11, p->parent);
	sqlite3_bind_int(st, 12, p->by_exec);
	sqlite3_bind_int(st, 13, p->execd);
	bind_known_ns(st, 14, p->started_ns);
	bind_known_ns(st, 15, p->ended_ns);
	sqlite3_bind_int(st, 16, p->has_index);
	if (p->has_exe_hash)
		sqlite3_bind_blob(st, 17, p->exe_hash, 32, SQLITE_STATIC);
	sqlite3_bind_int(st, 18, p->env_state);
	weft_buf env;
	weft_buf_init(&env);
	int err = WEFT_OK;
	if (p->env_state == WEFT_ENV_LISTED) {
		err = store_env_encode(p, &env);
		/* An empty environment is an empty blob, not NULL. */
		sqlite3_bind_blob(st, 19, env.data ? (void *)env.data : "",
				  (int)env.len, SQLITE_STATIC);
	}
	store_bind_bytes(st, 20, p->env_missing);
	if (!err)
		err = store_step_insert(st);
	else
		sqlite3_reset(st);
	weft_buf_free(&env);
	free(argv);
	return err;
}

int store_env_encode(const weft_process_rec *p, weft_buf *out)
{
	int err = WEFT_OK;
	for (uint32_t i = 0; i < p->nenv && !err; i++) {
		const weft_env_entry *e = &p->env[i];
		err = weft_buf_append(out, e->name, strlen(e->name) + 1);
		if (!err && e->value) {
			err = weft_buf_append(out, "v", 1);
			if (!err)
				err = weft_buf_append(out, e->value,
						      strlen(e->value) + 1);
		} else if (!err) {
			err = weft_buf_append(out, "h", 1);
			if (!err)
				err = weft_buf_append(out, e->hash, 32);
		}
	}
	return err;
}

int store_env_decode(const uint8_t *blob, size_t len, weft_process_rec *p)
{
	size_t n = 0;
	for (size_t off = 0; off < len;) {
		const uint8_t *nul = memchr(blob + off, 0, len - off);
		if (!nul || nul == blob + off || nul + 1 >= blob + len)
			return WEFT_EDB;
		off = (size_t)(nul - blob) + 1;
		if (blob[off] == 'h') {
			off += 33;
		} else if (blob[off] == 'v') {
			const uint8_t *end =
				memchr(blob + off + 1, 0, len - off - 1);
			if (!end)
				return WEFT_EDB;
			off = (size_t)(end - blob) + 1;
		} else {
			return WEFT_EDB;
		}
		if (off > len || ++n > WEFT_MAX_ENV_ENTRIES)
			return WEFT_EDB;
	}
	p->env = n ? calloc(n, sizeof(*p->env)) : NULL;
	if (n && !p->env)
		return WEFT_ENOMEM;
	p->env_state = WEFT_ENV_LISTED;
	for (size_t off = 0; off < len;) {
		weft_env_entry *e = &p->env[p->nenv];
		const char *name = (const char *)blob + off;
		off += strlen(name) + 1;
		if (!(e->name = strdup(name)))
			return WEFT_ENOMEM;
		p->nenv++;
		if (blob[off] == 'h') {
			memcpy(e->hash, blob + off + 1, 32);
			off += 33;
		} else {
			const char *v = (const char *)blob + off + 1;
			if (!(e->value = strdup(v)))
				return WEFT_ENOMEM;
			off += strlen(v) + 2;
		}
	}
	return WEFT_OK;
}

struct put_ctx {
	weft_store *s;
	sqlite3_stmt **stmts;
	/* The filesystem of the last file: most files of a run share one. */
	char *fs;
	sqlite3_int64 fs_id;
};

static int put_intern(void *ctx, int kind, const void *value, int len,
		      sqlite3_int64 *id)
{
	struct put_ctx *p = ctx;
	static const int get_of[] = {[STORE_INTERN_PATH] = PUT_PATH_GET,
				     [STORE_INTERN_ARTIFACT] = PUT_ARTIFACT_GET,
				     [STORE_INTERN_FS] = PUT_FS_GET};
	bool fs = kind == STORE_INTERN_FS;
	if (fs && p->fs && strlen(p->fs) == (size_t)len &&
	    !memcmp(p->fs, value, (size_t)len)) {
		*id = p->fs_id;
		return WEFT_OK;
	}
	int get = get_of[kind];
	int err = store_intern(p->s, p->stmts[get], p->stmts[get + 1], value,
			       len, id, NULL);
	if (!err && fs) {
		free(p->fs);
		if ((p->fs = strndup(value, (size_t)len)))
			p->fs_id = *id;
	}
	return err;
}



static int put_touches(sqlite3_stmt *st, sqlite3_int64 run,
		       sqlite3_int64 path, const weft_file_rec *f)
{
	int err = WEFT_OK;
	for (uint32_t i = 0; i < f->ntouches && !err; i++) {
		const weft_file_touch *t = &f->touches[i];
		sqlite3_bind_int64(st, 1, run);
		sqlite3_bind_int64(st, 2, path);
		sqlite3_bind_int64(st, 3, t->proc);
		sqlite3_bind_int64(st, 4, t->flags);
		if (t->flags & WEFT_TOUCH_SRC_RUN)
			sqlite3_bind_int64(st, 5, t->src);
		bind_known_ns(st, 6, t->first_open_ns);
		bind_known_ns(st, 7, t->last_write_ns);
		err = store_step_insert(st);
	}
	return err;
}

/* A record's key in file_io, the order of a location's chain. */
struct io_key {
	sqlite3_int64 run, path;
};

static bool key_below(struct io_key a, struct io_key b)
{
	return a.run < b.run || (a.run == b.run && a.path < b.path);
}

/* One row's two integers from get (bound with two), *found false when
 * there is none or they are NULL. */
static int get_key(sqlite3_stmt *get, sqlite3_int64 a, sqlite3_int64 b,
		   struct io_key *out, bool *found)
{
	sqlite3_bind_int64(get, 1, a);
	sqlite3_bind_int64(get, 2, b);
	int rc = sqlite3_step(get);
	*found = rc == SQLITE_ROW && sqlite3_column_type(get, 0) != SQLITE_NULL;
	if (*found)
		*out = (struct io_key){sqlite3_column_int64(get, 0),
				       sqlite3_column_int64(get, 1)};
	sqlite3_reset(get);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? WEFT_OK : WEFT_EDB;
}

/* Where a record goes in its location's chain (schema step 12): every
 * record at a location names the one below it in file_io's key order
 * (its predecessor, bound to the insert's ?28 and ?29), loc_heads the
 * highest. Records nearly always come in key order (a new run's number
 * is the highest), so the new one is the head; one that comes late (a
 * task's later part, a location reached by two paths in one run) is put
 * after the first record below it, and *succ is the one above it, whose
 * predecessor it becomes. */
static int chain_find(sqlite3_stmt *const *put, sqlite3_stmt *file,
		      sqlite3_int64 loc, sqlite3_int64 fs, struct io_key key,
		      bool *head, struct io_key *succ)
{
	struct io_key at, below;
	bool found;
	int err = get_key(put[PUT_HEAD_GET], loc, fs, &at, &found);
	*head = true;
	if (err || !found)
		return err; /* the location's first record */
	if (key_below(at, key)) {
		below = at; /* the usual case: above the head */
	} else {
		*head = false;
		for (;;) {
			if ((err = get_key(put[PUT_PREV_GET], at.run, at.path,
					   &below, &found)))
				return err;
			if (!found || key_below(below, key))
				break;
			if (!key_below(below, at))
				return WEFT_EDB; /* a damaged chain: not down */
			at = below;
		}
		*succ = at;
		if (!found)
			return WEFT_OK; /* the lowest now */
	}
	sqlite3_bind_int64(file, 28, below.run);
	sqlite3_bind_int64(file, 29, below.path);
	return WEFT_OK;
}

/* The record just stored made the head or its successor's predecessor. */
static int chain_link(sqlite3_stmt *const *put, sqlite3_int64 loc,
		      sqlite3_int64 fs, struct io_key key, bool head,
		      struct io_key succ)
{
	sqlite3_stmt *st = put[head ? PUT_HEAD_SET : PUT_PREV_SET];
	sqlite3_bind_int64(st, 1, head ? loc : succ.run);
	sqlite3_bind_int64(st, 2, head ? fs : succ.path);
	sqlite3_bind_int64(st, 3, key.run);
	sqlite3_bind_int64(st, 4, key.path);
	return store_step_insert(st) ? WEFT_EDB : WEFT_OK;
}

int store_put_file_with(sqlite3_stmt *const *put, store_intern_fn intern,
			void *ctx, sqlite3_int64 run, const weft_file_rec *f)
{
	sqlite3_stmt *st = put[PUT_FILE];
	sqlite3_int64 path, renamed = 0, artifact = 0, fs = 0, loc = 0,
			    used = 0, read = 0;
	int err = intern(ctx, STORE_INTERN_PATH, f->path, (int)strlen(f->path),
			 &path);
	if (!err && f->renamed_to)
		err = intern(ctx, STORE_INTERN_PATH, f->renamed_to,
			     (int)strlen(f->renamed_to), &renamed);
	if (!err && f->has_hash)
		err = intern(ctx, STORE_INTERN_ARTIFACT, f->hash, 32,
			     &artifact);
	if (!err && f->has_read_hash)
		err = intern(ctx, STORE_INTERN_ARTIFACT, f->read_hash, 32,
			     &read);
	if (!err && f->used_path)
		err = intern(ctx, STORE_INTERN_PATH, f->used_path,
			     (int)strlen(f->used_path), &used);
	if (!err && f->loc_fs)
		err = intern(ctx, STORE_INTERN_FS, f->loc_fs,
			     (int)strlen(f->loc_fs), &fs);
	if (!err && f->loc_path) {
		/* Mostly the path itself (a file on the root filesystem). */
		if (!strcmp(f->loc_path, f->path))
			loc = path;
		else
			err = intern(ctx, STORE_INTERN_PATH, f->loc_path,
				     (int)strlen(f->loc_path), &loc);
	}
	if (err)
		return err;
	sqlite3_bind_int64(st, 1, run);
	sqlite3_bind_int64(st, 2, path);
	if (f->has_hash)
		sqlite3_bind_int64(st, 3, artifact);
	sqlite3_bind_int(st, 4, f->read);
	sqlite3_bind_int(st, 5, f->written);
	sqlite3_bind_int(st, 6, f->created);
	sqlite3_bind_int(st, 7, f->deleted);
	if (f->renamed_to)
		sqlite3_bind_int64(st, 8, renamed);
	if (f->has_size)
		sqlite3_bind_int64(st, 9, f->size);
	store_bind_bytes(st, 10, f->hash_missing);
	if (f->has_first_stat) {
		bind_identity(st, 11, f->first_dev, f->first_ino,
			      f->first_mtime_ns, f->first_ctime_ns);
		sqlite3_bind_int64(st, 15, f->first_size);
	}
	if (f->loc_fs && f->loc_path) {
		sqlite3_bind_int64(st, 16, fs);
		sqlite3_bind_int64(st, 17, loc);
	}
	if (f->used_path)
		sqlite3_bind_int64(st, 18, used);
	sqlite3_bind_int(st, 19, f->updated);
	if (f->has_read_hash)
		sqlite3_bind_int64(st, 20, read);
	store_bind_bytes(st, 21, f->read_hash_missing);
	if (f->has_final_stat)
		bind_identity(st, 22, f->final_dev, f->final_ino,
			      f->final_mtime_ns, f->final_ctime_ns);
	bind_known_ns(st, 26, f->first_open_ns);
	bind_known_ns(st, 27, f->last_write_ns);
	bool located = f->loc_fs && f->loc_path, head = false;
	struct io_key key = {run, path}, succ = {0, 0};
	if (located &&
	    (err = chain_find(put, st, loc, fs, key, &head, &succ))) {
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
		return err;
	}
	err = store_step_insert(st);
	if (!err && located)
		err = chain_link(put, loc, fs, key, head, succ);
	return err ? err : put_touches(put[PUT_TOUCH], run, path, f);
}

int weft_store_put_run(weft_store *s, const weft_report *r)
{
	s->errmsg[0] = '\0';
	int err = store_check_report(r);
	if (err)
		return err;
	sqlite3_stmt *stmts[PUT_NSTMT] = {0};
	for (int i = 0; i < PUT_NSTMT; i++)
		if ((err = store_prepare(s, store_put_sql[i], &stmts[i])))
			goto out;
	/* IMMEDIATE: take the write lock now (waiting up to the busy
	 * timeout) rather than fail half-way when upgrading a read lock. */
	if ((err = store_exec(s, "BEGIN IMMEDIATE")))
		goto out;

	sqlite3_stmt *st = stmts[PUT_RUN];
	sqlite3_bind_text(st, 1, r->run_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, r->backend, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, r->node, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 4, r->exit_code);
	sqlite3_bind_int64(st, 5, r->started_ns);
	sqlite3_bind_int64(st, 6, r->ended_ns);
	sqlite3_bind_int64(st, 7, (sqlite3_int64)r->dropped_events);
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		/* The only constraint a valid report can break here is the
		 * unique run id. */
		err = (rc & 0xff) == SQLITE_CONSTRAINT ? WEFT_EINVAL : WEFT_EDB;
		goto rollback;
	}
	sqlite3_int64 run = sqlite3_last_insert_rowid(s->db);

	for (size_t i = 0; i < r->nprocesses && !err; i++)
		err = store_put_process(stmts[PUT_PROCESS], run, i,
					&r->processes[i]);
	struct put_ctx pc = {s, stmts, NULL, 0};
	for (size_t i = 0; i < r->nfiles && !err; i++)
		err = store_put_file_with(stmts, put_intern, &pc, run,
					  &r->files[i]);
	free(pc.fs);
	for (size_t i = 0; i < r->nwarnings && !err; i++) {
		st = stmts[PUT_WARNING];
		sqlite3_bind_int64(st, 1, run);
		sqlite3_bind_int64(st, 2, (sqlite3_int64)i);
		store_bind_bytes(st, 3, r->warnings[i]);
		err = store_step_insert(st);
	}
	if (!err && store_exec(s, "COMMIT"))
		err = WEFT_EDB;
	if (!err)
		goto out;
rollback:
	/* The failing statement's message, before ROLLBACK replaces it. */
	store_save_errmsg(s);
	sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
out:
	for (int i = 0; i < PUT_NSTMT; i++)
		sqlite3_finalize(stmts[i]);
	return err;
}

/* ---- Loading runs ---- */

int store_column_process_env(sqlite3_stmt *st, int col, weft_process_rec *p)
{
	if (sqlite3_column_type(st, col) != SQLITE_NULL) {
		if (sqlite3_column_bytes(st, col) != 32)
			return WEFT_EDB;
		p->has_exe_hash = true;
		memcpy(p->exe_hash, sqlite3_column_blob(st, col), 32);
	}
	int state = sqlite3_column_int(st, col + 1);
	if (state < WEFT_ENV_NONE || state > WEFT_ENV_UNKNOWN)
		return WEFT_EDB;
	if (state == WEFT_ENV_LISTED)
		return store_env_decode(
			sqlite3_column_blob(st, col + 2),
			(size_t)sqlite3_column_bytes(st, col + 2), p);
	p->env_state = (uint8_t)state;
	if (state == WEFT_ENV_PARENT && !p->has_parent)
		p->env_state = WEFT_ENV_NONE;
	if (state == WEFT_ENV_UNKNOWN)
		return column_bytes(st, col + 3, &p->env_missing);
	return WEFT_OK;
}

/* The rowid of the run named by id (NULL: latest; else exact id or unique
 * prefix). */
static int resolve_run(weft_store *s, const char *id, sqlite3_int64 *num)
{
	static const char *const latest =
		"SELECT num FROM runs ORDER BY started_ns DESC, num DESC "
		"LIMIT 1";
	static const char *const exact = "SELECT num FROM runs WHERE id = ?1";
	/* substr, not LIKE or GLOB: an id may contain their wildcards. */
	static const char *const prefix =
		"SELECT num FROM runs WHERE substr(id, 1, length(?1)) = ?1 "
		"LIMIT 2";
	if (id && !id[0])
		return WEFT_EINVAL;
	const char *const queries[] = {id ? exact : latest, prefix};
	for (int q = 0; q < (id ? 2 : 1); q++) {
		sqlite3_stmt *st;
		int err = store_prepare(s, queries[q], &st);
		if (err)
			return err;
		if (id)
			sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
		int found = 0, rc;
		while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
			*num = sqlite3_column_int64(st, 0);
			found++;
		}
		sqlite3_finalize(st);
		if (rc != SQLITE_DONE)
			return WEFT_EDB;
		if (found == 1)
			return WEFT_OK;
		if (found > 1)
			return WEFT_EINVAL; /* ambiguous prefix */
	}
	return WEFT_ENOTFOUND;
}

static int load_header(weft_store *s, sqlite3_int64 num, weft_report *r)
{
	sqlite3_stmt *st;
	int err = store_prepare(s,
				"SELECT r.id, r.backend, r.node, r.exit_code, "
				"r.started_ns, r.ended_ns, r.dropped_events, "
				"t.parts_stored, t.nparts FROM runs r "
				"LEFT JOIN tasks t ON t.run = r.num "
				"WHERE r.num = ?1",
				&st);
	if (err)
		return err;
	sqlite3_bind_int64(st, 1, num);
	if (sqlite3_step(st) != SQLITE_ROW) {
		err = WEFT_EDB;
	} else {
		err = column_name(st, 0, r->run_id);
		if (!err)
			err = column_name(st, 1, r->backend);
		if (!err)
			err = column_name(st, 2, r->node);
		r->exit_code = sqlite3_column_int(st, 3);
		r->started_ns = sqlite3_column_int64(st, 4);
		r->ended_ns = sqlite3_column_int64(st, 5);
		r->dropped_events = (uint64_t)sqlite3_column_int64(st, 6);
		r->parts_stored = (uint32_t)sqlite3_column_int64(st, 7);
		r->parts_expected = (uint32_t)sqlite3_column_int64(st, 8);
	}
	sqlite3_finalize(st);
	return err;
}

/* Split a NUL-terminated-arguments blob back into argc strings. */
static int split_argv(const char *blob, size_t len, uint32_t argc,
		      weft_process_rec *p)
{
	if (argc == 0)
		return len == 0 ? WEFT_OK : WEFT_EDB;
	if (argc > WEFT_MAX_ARGC || len == 0 || blob[len - 1] != '\0')
		return WEFT_EDB;
	p->argv = calloc(argc, sizeof(char *));
	if (!p->argv)
		return WEFT_ENOMEM;
	size_t off = 0;
	for (uint32_t a = 0; a < argc; a++) {
		if (off >= len)
			return WEFT_EDB; /* fewer arguments than argc */
		p->argv[a] = strdup(blob + off);
		p->argc = a + 1; /* so release frees what exists */
		if (!p->argv[a])
			return WEFT_ENOMEM;
		off += strlen(p->argv[a]) + 1;
	}
	return off == len ? WEFT_OK : WEFT_EDB;
}

/* Each row of sql, a query of the run num (bound to ?1), read by row
 * (store_each_row). */
static int load_rows(weft_store *s, const char *sql, sqlite3_int64 num,
		     store_row_fn row, void *ctx)
{
	sqlite3_stmt *st;
	int err = store_prepare_num(s, sql, num, &st);
	return err ? err : store_each_row(st, row, ctx);
}

static int process_row(sqlite3_stmt *st, void *ctx)
{
	weft_report *r = ctx;
	weft_process_rec *p = weft_report_add_process(r);
	if (!p)
		return WEFT_ENOMEM;
	p->pid = sqlite3_column_int(st, 0);
	p->ppid = sqlite3_column_int(st, 1);
	sqlite3_int64 argc = sqlite3_column_int64(st, 2);
	const char *blob = sqlite3_column_blob(st, 3);
	size_t len = (size_t)sqlite3_column_bytes(st, 3);
	int err;
	if (argc < 0 || argc > WEFT_MAX_ARGC)
		err = WEFT_EDB;
	else
		err = split_argv(blob, len, (uint32_t)argc, p);
	if (!err)
		err = column_bytes(st, 4, &p->exe);
	if (!err)
		err = column_bytes(st, 5, &p->cwd);
	p->exit_code = sqlite3_column_int(st, 6);
	p->exited = sqlite3_column_int(st, 7) != 0;
	/* Images of schema 3: their seq is their index (older rows
	 * are numbered by arrival). */
	sqlite3_int64 seq = sqlite3_column_int64(st, 8);
	if (sqlite3_column_int(st, 14) && seq >= 0 &&
	    seq < WEFT_MAX_PROCESSES) {
		p->has_index = true;
		p->index = (uint32_t)seq;
	}
	if (sqlite3_column_type(st, 9) != SQLITE_NULL) {
		sqlite3_int64 par = sqlite3_column_int64(st, 9);
		p->has_parent = par >= 0 && par < WEFT_MAX_PROCESSES;
		p->parent = (uint32_t)par;
	}
	p->by_exec = sqlite3_column_int(st, 10) != 0;
	p->execd = sqlite3_column_int(st, 11) != 0;
	p->started_ns = sqlite3_column_int64(st, 12);
	p->ended_ns = sqlite3_column_int64(st, 13);
	if (!err)
		err = store_column_process_env(st, 15, p);
	return err;
}

static int load_processes(weft_store *s, sqlite3_int64 num, weft_report *r)
{
	return load_rows(s,
			 "SELECT pid, ppid, argc, argv, exe, cwd, "
			 "exit_code, exited, seq, parent, by_exec, "
			 "execd, started_ns, ended_ns, indexed, "
			 "exe_hash, env_state, env, env_missing "
			 "FROM processes WHERE run = ?1 ORDER BY seq",
			 num, process_row, r);
}

/* Where load_touches is: the run's files, their path ids (in r's
 * order, which is path-byte order as the touches come) and the file the
 * last touch was of. */
struct touch_load {
	weft_report *r;
	const sqlite3_int64 *ids;
	size_t fi;
};

static int touch_row(sqlite3_stmt *st, void *ctx)
{
	struct touch_load *tl = ctx;
	weft_report *r = tl->r;
	sqlite3_int64 path = sqlite3_column_int64(st, 0);
	while (tl->fi < r->nfiles && tl->ids[tl->fi] != path)
		tl->fi++;
	if (tl->fi == r->nfiles)
		return WEFT_EDB; /* a touch of no file of the run */
	weft_file_rec *f = &r->files[tl->fi];
	if (!f->touches) {
		sqlite3_int64 n = sqlite3_column_int64(st, 6);
		if (n <= 0 || n > WEFT_MAX_PROCESSES)
			return WEFT_EDB;
		if (!(f->touches = calloc((size_t)n, sizeof(*f->touches))))
			return WEFT_ENOMEM;
	}
	weft_file_touch *t = &f->touches[f->ntouches++];
	t->proc = (uint32_t)sqlite3_column_int64(st, 1);
	t->flags = (uint32_t)sqlite3_column_int64(st, 2) & WEFT_TOUCH_ALL;
	t->src = (uint32_t)sqlite3_column_int64(st, 3);
	t->first_open_ns = sqlite3_column_int64(st, 4);
	t->last_write_ns = sqlite3_column_int64(st, 5);
	return WEFT_OK;
}

/* The touches of the files loaded (ids: their path ids, in r's order,
 * which is path-byte order as here). */
static int load_touches(weft_store *s, sqlite3_int64 num, weft_report *r,
			const sqlite3_int64 *ids)
{
	struct touch_load tl = {r, ids, 0};
	return load_rows(s,
			 "SELECT t.path, t.proc, t.flags, t.src, "
			 "t.first_open_ns, t.last_write_ns, "
			 "(SELECT count(*) FROM touches u WHERE "
			 "u.run = t.run AND u.path = t.path) "
			 "FROM touches t JOIN paths p ON p.id = t.path "
			 "WHERE t.run = ?1 ORDER BY p.path, t.proc",
			 num, touch_row, &tl);
}

/* A 32-byte hash column into hash (*has set), or NULL (left unset);
 * WEFT_EDB for any other value. */
static int column_hash(sqlite3_stmt *st, int i, bool *has, uint8_t hash[32])
{
	if (sqlite3_column_type(st, i) == SQLITE_NULL)
		return WEFT_OK;
	if (sqlite3_column_bytes(st, i) != 32)
		return WEFT_EDB;
	*has = true;
	memcpy(hash, sqlite3_column_blob(st, i), 32);
	return WEFT_OK;
}

/* A stat identity at columns col.. col+3 (dev, ino, mtime_ns, ctime_ns);
 * false, and nothing read, when it is NULL. */
static bool column_identity(sqlite3_stmt *st, int col, uint64_t *dev,
			    uint64_t *ino, int64_t *mtime_ns, int64_t *ctime_ns)
{
	if (sqlite3_column_type(st, col) == SQLITE_NULL)
		return false;
	*dev = (uint64_t)sqlite3_column_int64(st, col);
	*ino = (uint64_t)sqlite3_column_int64(st, col + 1);
	*mtime_ns = sqlite3_column_int64(st, col + 2);
	*ctime_ns = sqlite3_column_int64(st, col + 3);
	return true;
}

/* Where load_files is: the run, and the path ids of its files in order
 * (load_touches matches the touches to them). */
struct file_load {
	weft_report *r;
	sqlite3_int64 *ids;
	size_t capids;
};

static int file_row(sqlite3_stmt *st, void *ctx)
{
	struct file_load *fl = ctx;
	weft_report *r = fl->r;
	weft_file_rec *f = weft_report_add_file(r);
	if (!f)
		return WEFT_ENOMEM;
	if (store_grow((void **)&fl->ids, &fl->capids, r->nfiles - 1,
		       sizeof(*fl->ids)))
		return WEFT_ENOMEM;
	fl->ids[r->nfiles - 1] = sqlite3_column_int64(st, 26);
	f->read = sqlite3_column_int(st, 1) != 0;
	f->written = sqlite3_column_int(st, 2) != 0;
	f->created = sqlite3_column_int(st, 3) != 0;
	f->deleted = sqlite3_column_int(st, 4) != 0;
	f->updated = sqlite3_column_int(st, 15) != 0;
	if (sqlite3_column_type(st, 6) != SQLITE_NULL) {
		f->has_size = true;
		f->size = sqlite3_column_int64(st, 6);
	}
	/* The version first read, and the version written. */
	f->has_first_stat = column_identity(st, 9, &f->first_dev, &f->first_ino,
					    &f->first_mtime_ns,
					    &f->first_ctime_ns);
	if (f->has_first_stat)
		f->first_size = sqlite3_column_int64(st, 13);
	f->has_final_stat = column_identity(st, 18, &f->final_dev, &f->final_ino,
					    &f->final_mtime_ns,
					    &f->final_ctime_ns);
	int err = column_hash(st, 16, &f->has_read_hash, f->read_hash);
	if (!err)
		err = column_hash(st, 7, &f->has_hash, f->hash);
	if (!err)
		err = column_bytes(st, 0, &f->path);
	if (!err)
		err = column_bytes(st, 5, &f->renamed_to);
	if (!err)
		err = column_bytes(st, 8, &f->hash_missing);
	if (!err)
		err = column_bytes(st, 14, &f->used_path);
	if (!err)
		err = column_bytes(st, 17, &f->read_hash_missing);
	f->first_open_ns = sqlite3_column_int64(st, 22);
	f->last_write_ns = sqlite3_column_int64(st, 23);
	if (!err && sqlite3_column_type(st, 24) != SQLITE_NULL &&
	    sqlite3_column_type(st, 25) != SQLITE_NULL) {
		err = column_bytes(st, 24, &f->loc_fs);
		if (!err)
			err = column_bytes(st, 25, &f->loc_path);
	}
	return err;
}

static int load_files(weft_store *s, sqlite3_int64 num, weft_report *r)
{
	struct file_load fl = {r, NULL, 0};
	/* BLOBs compare with memcmp: files come back in path-byte order. */
	int err = load_rows(
		s,
		"SELECT p.path, f.read, f.written, f.created, f.deleted, "
		"rp.path, f.size, a.hash, f.hash_missing, f.first_dev, "
		"f.first_ino, f.first_mtime_ns, f.first_ctime_ns, "
		"f.first_size, up.path, f.updated, ra.hash, "
		"f.read_hash_missing, f.final_dev, f.final_ino, "
		"f.final_mtime_ns, f.final_ctime_ns, f.first_open_ns, "
		"f.last_write_ns, fs.name, lp.path, f.path "
		"FROM file_io f JOIN paths p ON p.id = f.path "
		"LEFT JOIN paths rp ON rp.id = f.renamed_to "
		"LEFT JOIN artifacts a ON a.id = f.artifact "
		"LEFT JOIN paths up ON up.id = f.used_path "
		"LEFT JOIN artifacts ra ON ra.id = f.read_artifact "
		"LEFT JOIN filesystems fs ON fs.id = f.loc_fs "
		"LEFT JOIN paths lp ON lp.id = f.loc_path "
		"WHERE f.run = ?1 ORDER BY p.path",
		num, file_row, &fl);
	if (!err && r->nfiles)
		err = load_touches(s, num, r, fl.ids);
	free(fl.ids);
	return err;
}

static int warning_row(sqlite3_stmt *st, void *ctx)
{
	weft_report *r = ctx;
	/* Appended directly, not through weft_report_warn: a stored
	 * warning may hold bytes a format string must not see. */
	if (r->nwarnings >= WEFT_MAX_WARNINGS + 1)
		return WEFT_EDB;
	char **w = realloc(r->warnings, (r->nwarnings + 1) * sizeof(char *));
	if (!w)
		return WEFT_ENOMEM;
	r->warnings = w;
	int err = column_bytes(st, 0, &w[r->nwarnings]);
	if (!err)
		r->nwarnings++;
	return err;
}

static int load_warnings(weft_store *s, sqlite3_int64 num, weft_report *r)
{
	return load_rows(s,
			 "SELECT text FROM warnings WHERE run = ?1 ORDER BY seq",
			 num, warning_row, r);
}

int weft_store_get_run(weft_store *s, const char *run_id, weft_report *out)
{
	weft_report_init(out);
	s->errmsg[0] = '\0';
	sqlite3_int64 num = 0;
	/* One read transaction, so the run is read from one snapshot. */
	int err = store_exec(s, "BEGIN");
	if (err)
		return err;
	err = resolve_run(s, run_id, &num);
	if (!err)
		err = load_header(s, num, out);
	if (!err)
		err = load_processes(s, num, out);
	if (!err)
		err = load_files(s, num, out);
	if (!err)
		err = load_warnings(s, num, out);
	/* Said where every reader of the run looks: its warnings. */
	if (!err && out->parts_stored < out->parts_expected &&
	    weft_report_warn(out,
			     "incomplete: %u of %u parts of this task are "
			     "stored (its wrapper died while spooling, or "
			     "parts are still to be delivered)",
			     out->parts_stored,
			     out->parts_expected) == WEFT_ENOMEM)
		err = WEFT_ENOMEM;
	if (err == WEFT_EDB)
		store_save_errmsg(s);
	sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
	if (err)
		weft_report_release(out);
	return err;
}

int weft_store_list_runs(weft_store *s, weft_run_summary **out, size_t *n)
{
	*out = NULL;
	*n = 0;
	sqlite3_stmt *st;
	int err = store_prepare(s,
				"SELECT id, backend, exit_code, started_ns, "
				"ended_ns, " STORE_ROOT_ARGV_SQL " FROM runs r "
				"ORDER BY started_ns, num",
				&st);
	if (err)
		return err;
	weft_run_summary *runs = NULL;
	size_t count = 0, cap = 0;
	int rc;
	while (!err && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (count == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			weft_run_summary *p =
				realloc(runs, ncap * sizeof(*runs));
			if (!p) {
				err = WEFT_ENOMEM;
				break;
			}
			runs = p;
			cap = ncap;
		}
		weft_run_summary *sum = &runs[count];
		memset(sum, 0, sizeof(*sum));
		err = column_name(st, 0, sum->run_id);
		if (!err)
			err = column_name(st, 1, sum->backend);
		sum->exit_code = sqlite3_column_int(st, 2);
		sum->started_ns = sqlite3_column_int64(st, 3);
		sum->ended_ns = sqlite3_column_int64(st, 4);
		const void *argv = sqlite3_column_blob(st, 5);
		sum->command = store_join_argv(
			argv, (size_t)sqlite3_column_bytes(st, 5));
		count++;
		if (!err && !sum->command)
			err = WEFT_ENOMEM;
	}
	if (!err && rc != SQLITE_DONE)
		err = WEFT_EDB;
	sqlite3_finalize(st);
	if (err) {
		weft_run_summaries_free(runs, count);
		return err;
	}
	*out = runs;
	*n = count;
	return WEFT_OK;
}

void weft_run_summaries_free(weft_run_summary *runs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(runs[i].command);
	free(runs);
}
