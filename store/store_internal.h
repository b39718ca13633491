/*
 * store_internal.h - what the files of libweft_store share and nobody else
 * sees: the store handle, statement helpers and the hash cache's internals.
 */
#ifndef WEFT_STORE_INTERNAL_H
#define WEFT_STORE_INTERNAL_H

#include <sqlite3.h>
#include <sys/types.h>
#include <stddef.h>
#include <stdint.h>

#include <stdatomic.h>
#include <stdbool.h>

#include <weft/store.h>

/* How long a writer waits for another process's lock before giving up. */
#define WEFT_STORE_BUSY_TIMEOUT_MS 5000

/* Bytes read per read(2) while hashing: large enough that the syscall cost
 * vanishes next to BLAKE2b, small enough to stay in L2/L3. */
#define WEFT_HASH_BUFFER_BYTES (1024 * 1024)

/* Hash-cache entries gathered by weft_report_hash_files before they are
 * written in one transaction. */
#define WEFT_HASH_CACHE_BATCH 4096

struct weft_store {
	sqlite3 *db;
	/* Prepared lazily: the hash cache is hit once per file. */
	sqlite3_stmt *cache_get;
	sqlite3_stmt *cache_put;
	/* Files whose content was read by weft_hash_file (cache misses), so
	 * tests can prove that unchanged inputs are not read again. */
	uint64_t hash_reads;
	/* SQLite's message for an error we had to roll back after (ROLLBACK
	 * replaces it); empty when sqlite3_errmsg is current. */
	char errmsg[256];
	/* weft_store_set_progress: long operations report through it. */
	weft_progress_fn progress;
	void *progress_arg;
	/* weft_store_use_prehash: hashes found while the run ran. */
	const weft_prehash *prehash;
	/* weft_store_defer_cache_writes: the hash cache entries kept for
	 * weft_store_write_deferred instead of written. */
	bool defer;
	struct weft_hash_cache_entry *deferred;
	size_t ndeferred, deferred_cap;
};

/* The hash cache's columns and the end of its CREATE TABLE: the table
 * of a store (store.c's first migration) and of a wrapper's cache of its
 * own (hash.c) are one table. */
#define STORE_HASH_CACHE_COLUMNS                                               \
	"  dev INTEGER NOT NULL,"                                              \
	"  ino INTEGER NOT NULL,"                                              \
	"  size INTEGER NOT NULL,"                                             \
	"  mtime_ns INTEGER NOT NULL,"                                         \
	"  ctime_ns INTEGER NOT NULL,"                                         \
	"  hash BLOB NOT NULL CHECK (length(hash) = 32),"                      \
	"  PRIMARY KEY (dev, ino)"                                             \
	") WITHOUT ROWID"

/* One hash-cache row. */
struct weft_hash_cache_entry {
	uint64_t dev, ino;
	int64_t size, mtime_ns, ctime_ns;
	uint8_t hash[32];
};

/* Look a file's stat up in the cache: WEFT_OK with hash filled,
 * WEFT_ENOTFOUND on a miss, WEFT_EDB on a database error. */
int store_cache_get(weft_store *s, const struct stat *st, uint8_t hash[32]);
/* Write entries to the cache in one transaction. */
int store_cache_put(weft_store *s, const struct weft_hash_cache_entry *e,
		    size_t n);

/* Read an open regular file to its end and hash it (hash.c). *stable: the
 * content read is the content the stat describes (size matched, nothing
 * changed while reading, ctime older than the clock's current tick).
 * abort (may be NULL) set while reading gives up with WEFT_EIO. with: a
 * buffer of WEFT_HASH_BUFFER_BYTES to read into, or NULL for one of its
 * own. */
int store_hash_fd(int fd, const struct stat *before, uint8_t hash[32],
		  bool *stable, const atomic_bool *abort, uint8_t *with);
/* The hash p found for the file with st's identity: WEFT_OK, with
 * *cached (may be NULL) true when it came from the hash cache (nothing to
 * record there), or WEFT_ENOTFOUND (also for p NULL). Only after
 * weft_prehash_stop. */
int store_prehash_get(const weft_prehash *p, const struct stat *st,
		      uint8_t hash[32], bool *cached);
/* Offers p's threads have not taken yet (tests). */
size_t store_prehash_queued(weft_prehash *p);

/* A stat holding only an identity (device, inode, size, mtime, ctime),
 * to look it up with store_cache_get or store_prehash_get (hash.c). */
void store_identity_stat(struct stat *st, uint64_t dev, uint64_t ino,
			 int64_t size, int64_t mtime_ns, int64_t ctime_ns);

/* Keep SQLite's current message for weft_store_errmsg. */
void store_save_errmsg(weft_store *s);
/* Make the database at db_path (created when create) and its -wal, -shm
 * and -journal readable by their owner only (store.c). */
void store_make_private(const char *db_path, bool create);
/* sqlite3_open_v2 for every connection weft makes: a connection is used
 * by one thread at a time (SQLITE_OPEN_NOMUTEX: no lock per call), and
 * SQLite keeps no memory statistics (a lock per allocation otherwise).
 * Together about a tenth of a coordinator's store time per fragment.
 * The files are those of store_vfs_register's VFS. */
int store_sqlite_open(const char *path, sqlite3 **db, int flags);
/* sqlite3_close for a connection store_sqlite_open made: this process's
 * open connections are counted (weft_store_checkpoint_behind forks only
 * when there are none). */
int store_sqlite_close(sqlite3 *db);
/* Register the VFS whose write-ahead logs are written in large writes
 * (wal_vfs.c) and return its name; NULL (SQLite's default VFS then) when
 * SQLite has no "unix" VFS. Called once, by store_sqlite_open. */
const char *store_vfs_register(void);
/* The connections store_sqlite_open made and store_sqlite_close did not
 * close yet. */
int store_sqlite_open_count(void);
/* The -wal file's size limit after a checkpoint (PRAGMA
 * journal_size_limit): a log cut to nothing once a checkpoint caught up. */
#define STORE_WAL_LIMIT "67108864"
/* The outbox's triggers, CREATE ... IF NOT EXISTS: a store has them once
 * it has a sink (store.c, step 11; weft_ol_sink_add). */
extern const char store_ol_triggers[];
/* sqlite3_prepare_v2 wrapped to return a weft_err. */
int store_prepare(weft_store *s, const char *sql, sqlite3_stmt **stmt);
/* store_prepare, and job (borrowed: it must outlive the statement)
 * bound to ?1 when not NULL, for a query of one job or of all (jobs.c). */
int store_prepare_job(weft_store *s, const char *sql, const char *job,
		      sqlite3_stmt **stmt);
/* store_prepare, and num bound to ?1 (jobs.c). */
int store_prepare_num(weft_store *s, const char *sql, sqlite3_int64 num,
		      sqlite3_stmt **stmt);
/* Run SQL without results (BEGIN, COMMIT, ...). */
int store_exec(weft_store *s, const char *sql);
/* Reads one row of a query into ctx: WEFT_OK to go on. */
typedef int (*store_row_fn)(sqlite3_stmt *st, void *ctx);
/* Each row of st (prepared, bound) read by row until one fails, then st
 * finalized: WEFT_OK after the last row, WEFT_EDB when a step fails,
 * else what row returned. */
int store_each_row(sqlite3_stmt *st, store_row_fn row, void *ctx);
/* store_each_row over the rows of sql (no parameters). */
int store_query(weft_store *s, const char *sql, store_row_fn row, void *ctx);

/* The root process's command line of a stored run: argv joined by spaces
 * (from the NUL-terminated argv blob of the processes table). Returns a
 * malloc'd string ("" when the run has no process), or NULL on ENOMEM. */
char *store_join_argv(const void *blob, size_t len);

/* SQL returning the argv blob of the root process of the run with rowid
 * `r.num`, to embed in queries over runs r. The root is the first process
 * without a parent, else the first process. */
#define STORE_ROOT_ARGV_SQL                                                    \
	"(SELECT argv FROM processes p WHERE p.run = r.num "                   \
	"ORDER BY p.ppid <> 0, p.seq LIMIT 1)"

/* Schema step 12's chains built for every located record of file_io,
 * in (run, path) order, loc_heads empty and no record chained before. */
#define STORE_CHAIN_SQL                                                        \
	"CREATE TEMP TABLE loc_chain AS SELECT run, path, "                    \
	"  lag(run) OVER w AS prev_run, lag(path) OVER w AS prev_path, "       \
	"  row_number() OVER w = count(*) OVER (PARTITION BY loc_path, "       \
	"  loc_fs) AS head, loc_path, loc_fs "                                 \
	"  FROM file_io WHERE loc_path IS NOT NULL AND loc_fs IS NOT NULL "    \
	"  WINDOW w AS (PARTITION BY loc_path, loc_fs ORDER BY run, path);"    \
	"UPDATE file_io SET prev_run = c.prev_run, prev_path = c.prev_path "   \
	"  FROM temp.loc_chain c WHERE c.prev_run IS NOT NULL "                \
	"  AND file_io.run = c.run AND file_io.path = c.path;"                 \
	"INSERT INTO loc_heads (loc_path, loc_fs, run, path) "                 \
	"  SELECT loc_path, loc_fs, run, path FROM temp.loc_chain WHERE head;" \
	"DROP TABLE temp.loc_chain;"

/* ---- Storing report records (put.c), shared with ingest.c ---- */

/* The statements a report's rows are written with (store_put_sql). */
enum {
	PUT_RUN,
	PUT_PROCESS,
	PUT_PATH_GET,
	PUT_PATH_ADD,
	PUT_ARTIFACT_GET,
	PUT_ARTIFACT_ADD,
	PUT_FS_GET,
	PUT_FS_ADD,
	PUT_FILE,
	PUT_HEAD_GET,
	PUT_HEAD_SET,
	PUT_PREV_GET,
	PUT_PREV_SET,
	PUT_TOUCH,
	PUT_WARNING,
	PUT_NSTMT
};
extern const char *const store_put_sql[PUT_NSTMT];

/* A C string as a BLOB (SQLITE_STATIC), or NULL. */
int store_bind_bytes(sqlite3_stmt *st, int i, const char *s);
/* A job's text (command, "" when NULL; user, host, cwd, git) bound to
 * five parameters from first on, the order of the jobs table (jobs.c). */
void store_bind_job_text(sqlite3_stmt *st, int first, const weft_job_info *j);
/* The id of a row of a unique-valued table (paths, artifacts), inserting
 * it when absent; *added (when not NULL) says which. */
int store_intern(weft_store *s, sqlite3_stmt *get, sqlite3_stmt *add,
		 const void *value, int len, sqlite3_int64 *id, bool *added);
/* WEFT_EINVAL when a report's strings are missing or unterminated. */
int store_check_report(const weft_report *r);
/* Step a bound insert and reset it: WEFT_EINVAL on a constraint. */
int store_step_insert(sqlite3_stmt *st);
/* One process row (seq: its position in the run). */
/* A process's environment as stored (processes.env), and back. */
int store_env_encode(const weft_process_rec *p, weft_buf *out);
int store_env_decode(const uint8_t *blob, size_t len, weft_process_rec *p);
/* exe_hash, env_state, env, env_missing at columns col.. col+3. */
int store_column_process_env(sqlite3_stmt *st, int col, weft_process_rec *p);
int store_put_process(sqlite3_stmt *st, sqlite3_int64 run, size_t seq,
		      const weft_process_rec *p);
/* One file_io row and its touches, with the path and artifact ids found
 * by intern(ctx, kind, value, len, &id) (the coordinator's writer caches
 * them); put: the PUT_* statements (all but PUT_RUN,
 * PUT_PROCESS and PUT_WARNING are used). */
enum { STORE_INTERN_PATH, STORE_INTERN_ARTIFACT, STORE_INTERN_FS };
typedef int (*store_intern_fn)(void *ctx, int kind, const void *value, int len,
			       sqlite3_int64 *id);
int store_put_file_with(sqlite3_stmt *const *put, store_intern_fn intern,
			void *ctx, sqlite3_int64 run, const weft_file_rec *f);

/* ---- Job rows (jobs.c), shared with relay.c ---- */

/* A copy of a TEXT or BLOB column, NUL-terminated; NULL for NULL (and
 * when out of memory). */
char *store_column_dup(sqlite3_stmt *st, int i);
/* A TEXT or BLOB column into a fixed array of cap bytes, cut to fit and
 * terminated (the wire's limits are the store's, so nothing a
 * coordinator stored is cut). */
void store_column_fixed(sqlite3_stmt *st, int i, char *out, size_t cap);
/* The strings of a jobs row: the columns command, user, host, cwd, git
 * from column first on, into info (info->command malloc'd: the caller
 * frees it, also after WEFT_ENOMEM, when the others are still read). */
int store_job_text_from_row(sqlite3_stmt *st, int first, weft_job_info *info);

/* Room for element n of the array *arr of *cap elements of sz bytes:
 * the array doubles (from 64) when full. WEFT_OK or WEFT_ENOMEM. */
int store_grow(void **arr, size_t *cap, size_t n, size_t sz);
/* store_grow, and element n zeroed: its address, NULL when out of
 * memory. */
void *store_slot(void **arr, size_t *cap, size_t n, size_t sz);

/* A struct's owned strings (char * members) as offsetof()s, the list
 * ended by STORE_MEMBERS_END: named once for the code that frees them
 * and the code that copies them (dag.c). */
#define STORE_MEMBERS_END SIZE_MAX
/* Free the members offs of obj; of each of the n elements (sz bytes
 * each) of arr, then arr. */
void store_release_members(void *obj, const size_t *offs);
void store_free_members(void *arr, size_t n, size_t sz, const size_t *offs);
/* dst's members offs: copies of src's, NULL staying NULL. Every one is
 * tried: WEFT_ENOMEM leaves those that failed NULL, the rest copied. */
int store_dup_members(void *dst, const void *src, const size_t *offs);
/* The owned strings of a DAG task (argv aside) and of an artifact. */
extern const size_t store_task_strings[], store_artifact_strings[];

/* ---- Verdicts (ingest.c) ---- */

/* Fill v: status (enum weft_ack_status), reason (enum weft_reject_reason)
 * and the detail, printf-style. */
void store_verdict(weft_verdict *v, int status, int reason, const char *fmt,
		   ...) __attribute__((format(printf, 4, 5)));

/* ---- Locations (location.c) ---- */

struct store_mount {
	uint64_t dev; /* makedev(major, minor) as st_dev */
	char *root;   /* the filesystem's directory mounted here */
	char *point;  /* where, in this mount namespace */
	char *fstype, *source;
};

struct store_mounts {
	struct store_mount *ents;
	size_t n;
	char boot_id[64];
	bool loaded, reloaded;
};

/* Whether files of fstype ("nfs4", "fuse.sshfs") are on a filesystem
 * several machines mount. */
bool store_fstype_shared(const char *fstype);
/* Replace m's table by the mountinfo text given (tests), or by this
 * process's own (load; also reads the boot id once). */
int store_mounts_parse(const char *text, struct store_mounts *m);
int store_mounts_load(struct store_mounts *m);
void store_mounts_free(struct store_mounts *m);
/* The location of path (absolute, resolved) on device dev (when has_dev):
 * *fs and *fs_path malloc'd, both NULL when it cannot be named. */
int store_locate(struct store_mounts *m, const char *path, bool has_dev,
		 uint64_t dev, char **fs, char **fs_path);

/* ---- Versions (versions.c): which version a read was of ---- */

enum {
	VR_READ = 1,
	VR_WRITTEN = 2,
	VR_UPDATED = 4, /* the write updated what was there */
	VR_GONE = 8,    /* deleted or renamed away by the run */
	VR_FIRST = 16,  /* first stat identity known */
	VR_FINAL = 32,  /* identity of the version written known */
};

/* One file_io row as the resolver sees it. */
struct vrow {
	sqlite3_int64 run;
	char *path, *used, *loc_path; /* owned; used and loc_path may be NULL */
	sqlite3_int64 loc_fs;         /* filesystems.id, 0 for none */
	uint64_t loc;                 /* location key (one per location) */
	sqlite3_int64 art, read_art;  /* artifacts.id written / read, 0 none */
	uint8_t hash[32], read_hash[32]; /* their hashes */
	int64_t t_open, t_write;  /* the run's start / end when unknown */
	int64_t first_size, size; /* size -1: unknown */
	uint64_t first_ino, final_ino;
	int64_t first_mtime, first_ctime, final_mtime, final_ctime;
	uint8_t flags; /* VR_* */
	/* Resolved: the row that wrote the version read (-1: none known),
	 * and whether that is only likely (the version is unknown). */
	ssize_t src;
	bool weak;
};

/* Node names of rows without a location, shared by the rows read. */
struct vrow_names {
	char **nodes;
	size_t nnodes, nodes_cap;
};

/* The columns store_vrow_read takes, for "SELECT <columns> FROM file_io f
 * JOIN runs r ON r.num = f.run <joins> ...". */
extern const char *const store_vrow_sql_columns;
extern const char *const store_vrow_sql_joins;
int store_vrow_read(sqlite3_stmt *st, struct vrow_names *names, struct vrow *v);
void store_vrows_free(struct vrow *rows, size_t n, struct vrow_names *names);
/* Fill src and weak of every row. */
int store_versions_resolve(struct vrow *rows, size_t n);

/* ---- The DAG (dag.c), shared with lineage.c ---- */

/* The tasks (runs) of a DAG: "SELECT ... FROM runs r ... <where> ORDER BY
 * start"; a row into t with store_task_read (column 0 is runs.num). */
#define STORE_TASKS_SQL(where)                                                 \
	"SELECT r.num, r.id, r.node, r.backend, "                              \
	"r.exit_code, " STORE_ROOT_ARGV_SQL ", t.name, "                       \
	"(SELECT r2.id FROM tasks t2 JOIN runs r2 ON r2.num = t2.run "         \
	" WHERE t2.job = t.job AND t2.task_id = t.parent "                     \
	" ORDER BY r2.num LIMIT 1), t.parts_stored, t.nparts "                 \
	"FROM runs r LEFT JOIN tasks t ON t.run = r.num " where                \
	"ORDER BY r.started_ns, r.num"
int store_task_read(sqlite3_stmt *st, weft_dag_task *t);
/* An artifact (its kind set) from the row that names it: a written
 * version's writer row, a source or unknown version's first reader row;
 * fs the name of the row's filesystem (NULL: none), task the row's. */
int store_version_fill(weft_dag_artifact *a, const struct vrow *r,
		       const char *fs, const weft_dag_task *task);
/* An edge between task and a, for row r of the task. */
int store_edge_fill(weft_dag_edge *e, const weft_dag_task *task,
		    const weft_dag_artifact *a, const struct vrow *r,
		    bool write, bool weak, bool update);

/* Edge i of a DAG as indices: its task and its artifact. */
struct dag_link {
	size_t task, artifact;
};
/* weft_store_dag, and (links not NULL) a malloc'd dag_link per edge. */
int store_dag_links(weft_store *s, const char *job, weft_dag *out,
		    struct dag_link **links);

#endif /* WEFT_STORE_INTERNAL_H */
