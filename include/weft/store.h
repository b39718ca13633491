/*
 * weft/store.h - the SQLite store: runs, processes, artifacts, paths, I/O
 * edges, the hash cache; content hashing; the lineage DAG.
 *
 * One database file (.weft/weft.db in a project), WAL mode, migrations keyed
 * by PRAGMA user_version, bound parameters only. A report is stored in one
 * transaction: it is either all there or not at all.
 */
#ifndef WEFT_STORE_H
#define WEFT_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>

#include <weft/base.h>
#include <weft/schema.h>
#include <weft/wire.h>

/* The store's directory inside a project, and the database in it. */
#define WEFT_DIR_NAME ".weft"
#define WEFT_DB_NAME "weft.db"

typedef struct weft_store weft_store;

/* Walk up from start_dir (absolute) looking for a .weft directory, like git
 * finds .git. On success writes the .weft directory's absolute path to out.
 * WEFT_ENOTFOUND when there is none up to /. */
int weft_store_find_dir(const char *start_dir, char *out, size_t outsz);

/* Open (creating when absent) the database at db_path and bring its schema
 * to the current version. A database from a newer weft is refused
 * (WEFT_EVERSION) and left untouched; one another process keeps locked
 * past WEFT_STORE_BUSY_TIMEOUT_MS (5 s) is WEFT_EBUSY, not a database
 * WEFT_EDB. A handle (like every handle of this library) is used by one
 * thread at a time; another thread opens its own (weft_store_open_sibling). */
int weft_store_open(const char *db_path, weft_store **out);
void weft_store_close(weft_store *s);
/* s's close leaves the write-ahead log as it is, even as the last
 * connection: no checkpoint (weft_store_checkpoint_behind does it). */
void weft_store_keep_wal(weft_store *s);
/* After the last write through connections closed with
 * weft_store_keep_wal: the log of the database at db_path synced (what
 * was committed is on disk when this returns), and its checkpoint (the
 * log copied into the database and cut to nothing) left to a process of
 * its own, which this one does not wait for. Done here, waiting, when
 * this process has another thread or an open connection of this library
 * (a fork would copy them half-way), or the fork fails. WEFT_EIO when
 * the sync failed (what was committed may not be on disk); a checkpoint
 * that fails only leaves the log to the next connection that closes
 * last, and is not an error. hold, when not -1, is a close-on-exec
 * descriptor (a lock) that process keeps open until the checkpoint is
 * done: who waits for the lock waits for the checkpoint too (the caller
 * closes its own; one without close-on-exec is closed with what the
 * process inherited from weft's caller). */
int weft_store_checkpoint_behind(const char *db_path, int hold);
/* True when this process may fork and go on using this library in the
 * child: it has no other thread (a lock one holds would stay held in the
 * child) and no connection of this library open (SQLite keeps one list
 * of open files per process, and the child's copy would name locks the
 * child does not hold). */
bool weft_store_fork_safe(void);
/* The last SQLite error message of this handle, for the user. */
const char *weft_store_errmsg(const weft_store *s);
/* Long operations of this handle (weft_store_verify, a relay pulling from
 * it into another store, weft_report_hash_files with it as the cache:
 * files done of all, bytes hashed) report their progress to fn (NULL:
 * none). */
void weft_store_set_progress(weft_store *s, weft_progress_fn fn, void *arg);

/* Store one finished, hashed run. Returns WEFT_EINVAL when a run with the
 * same id exists (nothing changes). */
int weft_store_put_run(weft_store *s, const weft_report *r);
/* Load a run into *out (initialized by the callee). run_id NULL: the latest
 * run; a unique prefix of an id is accepted. WEFT_ENOTFOUND when none. */
int weft_store_get_run(weft_store *s, const char *run_id, weft_report *out);

typedef struct weft_run_summary {
	char run_id[WEFT_MAX_NAME_BYTES];
	char backend[WEFT_MAX_NAME_BYTES];
	int32_t exit_code;
	int64_t started_ns, ended_ns;
	char *command; /* the root's argv joined by spaces (owned) */
} weft_run_summary;

/* All runs, oldest first. Free with weft_run_summaries_free. */
int weft_store_list_runs(weft_store *s, weft_run_summary **out, size_t *n);
void weft_run_summaries_free(weft_run_summary *runs, size_t n);

/* ---- Hashing ---- */

/* BLAKE2b-256 (libsodium crypto_generichash) of a file's content. With a
 * store, the cache keyed by (device, inode, size, mtime_ns, ctime_ns) is
 * consulted first and updated after a read; *cache_hit (may be NULL) says
 * whether the file was read at all. st receives the file's stat (may be
 * NULL). WEFT_EIO with errno set when the file cannot be opened or read;
 * WEFT_EINVAL for something that is not a regular file. */
int weft_hash_file(weft_store *cache, const char *path, uint8_t hash[32],
		   struct stat *st, bool *cache_hit);

/* Fill size, hash or hash_missing of every file record that should have
 * one (read or written, not deleted), using the cache; add a warning for
 * each input whose (device, inode, size, mtime) differs from its first
 * open. cache may be NULL. */
int weft_report_hash_files(weft_store *cache, weft_report *r);

/* ---- Hashing while the workload runs ----
 *
 * A thread that hashes each regular file the run opens for reading, as
 * it is opened, so that weft_report_hash_files after the run finds its
 * content known instead of reading it then. A hash is kept only under the
 * identity (device, inode, size, mtime, ctime) the run's open saw and
 * only when it is stable by the hash cache's rule; the end takes it for a
 * file whose identity is that one, exactly as it takes the hash cache's. */
typedef struct weft_prehash weft_prehash;
typedef struct weft_prehash_stats {
	uint64_t offered; /* files queued */
	uint64_t known;   /* already in the hash cache, or hashed: not read */
	uint64_t hashed;  /* read and kept */
	uint64_t missed;  /* gone, changed or unreadable: left to the end */
	uint64_t dropped; /* not reached (queue full, or the run ended) */
	uint64_t bytes;   /* of the files hashed */
} weft_prehash_stats;
/* Start the thread. cache_path (may be NULL): a hash cache (a store or a
 * wrapper's cache) whose entries need no reading, looked at read-only.
 * away_from_cpu: a CPU the thread keeps off when there is another (the
 * tracer's, weft_launch.cpu); -1: none.
 * NULL when it cannot start, or when WEFT_PREHASH is "off" or "0" in the
 * environment: hashing then all happens after the run. */
weft_prehash *weft_prehash_start(const char *cache_path, int away_from_cpu);
/* Offer a file the run opened for reading: path absolute, ev the open with
 * its stat (the classifier's weft_classifier_on_input). Queued once per
 * identity; never waits for the hashing. p may be NULL. */
void weft_prehash_offer(weft_prehash *p, const char *path,
			const weft_event *ev);
/* End the thread: a file being read is abandoned, the queue dropped.
 * What was hashed stays for weft_store_use_prehash. */
void weft_prehash_stop(weft_prehash *p);
/* The run has ended: hash what is queued (the file being read too), on a
 * second thread beside the first when more than one file waits, then end
 * them, as weft_prehash_stop. progress (may be NULL) is called about every
 * 100 ms meanwhile with the files of the queue done, their count, and the
 * bytes read. */
void weft_prehash_finish(weft_prehash *p,
			 void (*progress)(void *arg, uint64_t done,
					  uint64_t total, uint64_t bytes),
			 void *arg);
weft_prehash_stats weft_prehash_get_stats(const weft_prehash *p);
void weft_prehash_free(weft_prehash *p);
/* weft_hash_file and weft_report_hash_files through cache take a file's
 * hash from p (stopped) when its identity is one p hashed, and record it
 * in the cache as a read would. p must outlive that use; NULL: none. */
void weft_store_use_prehash(weft_store *cache, const weft_prehash *p);
/* From now on the new hash cache entries of weft_report_hash_files
 * through cache are kept in memory, not written, until
 * weft_store_write_deferred (on another thread, while the caller does
 * something else; weft_store_close drops what is left: a cache entry
 * lost costs only a read later). cache may be NULL. */
void weft_store_defer_cache_writes(weft_store *cache);
/* Write the entries kept, in one transaction, and keep none. */
int weft_store_write_deferred(weft_store *cache);

/* ---- A hash cache of its own (wrappers on a worker node) ----
 *
 * The same cache in a small database that holds only the hash_cache table,
 * shared by every wrapper of one user on one node (WAL, a short busy
 * timeout). path must be absolute; missing parent directories are made
 * (0700). The handle is a weft_store good only for weft_hash_file,
 * weft_report_hash_files, weft_hash_cache_reads and weft_store_close. On
 * failure (not a database, unreadable, ...) *out is NULL and err says why.
 * Cache writes that fail are ignored: a cache costs a re-read, never a
 * record. */
int weft_hash_cache_open(const char *path, weft_store **out, char *err,
			 size_t errsz);
/* Files whose content the handle's hashing read (cache misses) so far. */
uint64_t weft_hash_cache_reads(const weft_store *cache);
/* weft_report_hash_files with the cache at path (NULL: none) through
 * *cache, opened on first use and kept for the next call (the caller
 * closes it with weft_store_close; one handle per thread). A cache that
 * cannot be opened is skipped with a warning in r; hashing goes on
 * without it. *hashed and *nread (may be NULL) receive the files hashed
 * and how many of them were read rather than found in the cache. pre
 * (may be NULL): hashes made while the run ran (weft_prehash_start),
 * used through the cache when there is one. progress (may be NULL):
 * called as weft_store_set_progress says, when there is a cache. */
int weft_report_hash_files_cached(weft_store **cache, const char *path,
				  const weft_prehash *pre, weft_report *r,
				  size_t *hashed, size_t *nread,
				  weft_progress_fn progress,
				  void *progress_arg);

/* ---- The lineage DAG ---- */

enum weft_dag_task_kind {
	WEFT_DAG_RUN,     /* a run (a job's task) */
	WEFT_DAG_PROCESS, /* one program image of a run (--processes) */
};

typedef struct weft_dag_task {
	char *id;   /* the run id; "<run id>/p<index>" for a process */
	char *name; /* the command, as the user typed it */
	char *node; /* hostname, or NULL */
	char *backend;
	int32_t exit_code;
	char *parent; /* parent task id, or NULL */
	/* A job's task: parts stored of the parts it was cut into (fewer:
	 * the task is incomplete). 0, 0 for a run outside any job. */
	uint32_t parts_stored, nparts;
	/* A process (kind WEFT_DAG_PROCESS): parent is its run's id. */
	int kind; /* enum weft_dag_task_kind */
	int32_t pid;
	char **argv;
	uint32_t argc;
	char *exe;
	bool exited;         /* exit_code is its status; else it exec'd on
				or ran past the end of tracing */
	char *started_by;    /* the process it came from (by fork or exec),
				a task of the DAG, or NULL */
	bool by_exec;
} weft_dag_task;

/* An artifact is a file version: one content at one location
 * (DESIGN.md "Store and DAG: lineage by file version"). */
enum weft_dag_version_kind {
	WEFT_VERSION_WRITTEN, /* a task wrote it (the write edge says which) */
	WEFT_VERSION_SOURCE,  /* read, and no recorded task wrote it there */
	WEFT_VERSION_UNKNOWN, /* read, but which version is not known */
	WEFT_VERSION_INTERIM, /* process level: written by a process, then
				 replaced or removed within its run (no
				 hash: weft hashes what is there at the
				 end) */
};

typedef struct weft_dag_artifact {
	char *id;   /* "v:" + 16 hex digits, stable for the same records */
	char *path; /* the path its writer used (else its first reader) */
	bool has_hash;
	uint8_t hash[32];
	int kind;       /* enum weft_dag_version_kind */
	char *loc_fs;   /* location: filesystem and path below its root; */
	char *loc_path; /* both NULL for records older than locations */
	bool has_size;
	int64_t size;
} weft_dag_artifact;

typedef struct weft_dag_edge {
	/* Artifact id for reads, task id for writes: the id strings of the
	 * DAG's own tasks and artifacts, not copies (valid while they are). */
	char *from;
	char *to;
	bool write;  /* false: read edge (artifact -> task) */
	bool weak;   /* not known to be this version: matched by location
			and time alone */
	bool update; /* a read edge for the version a write updated */
	char *path;  /* the path the task used (a symlink's name) */
} weft_dag_edge;

/* A read version no task wrote at its location whose bytes a task wrote
 * elsewhere: the same content, not a dependency (a copy weft did not see
 * made, or chance). Never for contents under WEFT_DAG_SAME_CONTENT_MIN
 * bytes, which prove nothing. */
#define WEFT_DAG_SAME_CONTENT_MIN 64
typedef struct weft_dag_same {
	char *artifact; /* the read version */
	char *same_as;  /* a written version with the same bytes */
} weft_dag_same;

typedef struct weft_dag {
	char *job; /* NULL for the whole local store */
	weft_dag_task *tasks;
	size_t ntasks;
	weft_dag_artifact *artifacts;
	size_t nartifacts;
	weft_dag_edge *edges;
	size_t nedges;
	weft_dag_same *same;
	size_t nsame;
} weft_dag;

/* The DAG of every run in the store (job NULL) or of one job. Tasks in run
 * order; artifacts and edges in a stable order (same store, same DAG). */
int weft_store_dag(weft_store *s, const char *job, weft_dag *out);
/* The same, at process level: every process of a run that read or wrote
 * a file is a task of its own (a child of its run, which stays a task),
 * and edges join processes, within a run (through the versions one wrote
 * and another read) and across runs and nodes as between runs. Runs
 * recorded without attribution (older records, Ray tasks) stay whole. */
int weft_store_dag_processes(weft_store *s, const char *job, weft_dag *out);
void weft_dag_release(weft_dag *d);
/* The part of d that produced path's latest version (down false) or that
 * it fed (down true), as weft_store_lineage, walked in memory over d
 * (any level). WEFT_ENOTFOUND when d has no version of path. */
int weft_dag_lineage(const weft_dag *d, const char *path, bool down,
		     weft_dag *out);

/* The lineage of one file (path absolute, normalized): the part of the DAG
 * that produced its latest content (down false: the tasks that wrote it,
 * what they read, who wrote that, ...) or that it fed (down true: the
 * tasks that read it, what they wrote, ...), within one job when job is
 * not NULL. artifacts[0] is the file itself; cycles end where a node was
 * seen. WEFT_ENOTFOUND when the store has no record of the path. Release
 * with weft_dag_release. */
int weft_store_lineage(weft_store *s, const char *path, const char *job,
		       bool down, weft_dag *out);

/* ---- Staleness (`weft stale`) ----
 *
 * An output is what the last run that wrote a path left there. It is out
 * of date when an input of that run is not, on disk, the version the run
 * read (changed, removed, or not known to be the same: weft says fresh
 * only when it can vouch), when a run upstream is out of date, or when
 * the output was changed or removed since. Files are compared by stat
 * identity first; content is hashed (through the hash cache) only when
 * the identity is not one a recorded version had. */
enum weft_stale_why {
	WEFT_STALE_INPUT_CHANGED,  /* path: an input, now other content */
	WEFT_STALE_INPUT_GONE,     /* path: an input, gone */
	WEFT_STALE_INPUT_UNKNOWN,  /* path: an input weft cannot compare
				      (no hash or identity recorded, or
				      unreadable now) */
	WEFT_STALE_UPSTREAM,       /* path: an input another run made, and
				      run (that run) is out of date */
	WEFT_STALE_OUTPUT_CHANGED, /* the output itself changed since */
	WEFT_STALE_OUTPUT_GONE,    /* the output itself was removed */
	WEFT_STALE_OUTPUT_UNKNOWN, /* the output cannot be compared */
};
/* "input_changed", "input_removed", ... (the JSON names). */
const char *weft_stale_why_name(int why);

typedef struct weft_stale_cause {
	int why; /* enum weft_stale_why */
	char *path;
	char *run; /* WEFT_STALE_UPSTREAM: the run upstream; else NULL */
} weft_stale_cause;

typedef struct weft_stale_output {
	char *path; /* the output */
	char *run;  /* the run that made it */
	weft_stale_cause *causes;
	size_t ncauses;
	char **chain; /* run ids to re-run, upstream first, ending with run */
	size_t nchain;
} weft_stale_output;

typedef struct weft_stale_result {
	weft_stale_output *stale; /* by path */
	size_t nstale;
	size_t checked;      /* outputs checked */
	uint64_t hashed;     /* files whose content had to be read */
	char **not_recorded; /* paths asked about that no run left there */
	size_t nnot_recorded;
} weft_stale_result;

/* The outputs under root (absolute; NULL: every output), or with npaths
 * the outputs at paths (absolute, normalized) and every output upstream
 * of them. Release with weft_stale_result_release. */
int weft_store_stale(weft_store *s, const char *root, const char *const *paths,
		     size_t npaths, weft_stale_result *out);
void weft_stale_result_release(weft_stale_result *r);

/* ---- Differences (`weft diff`, `weft rerun --check`) ---- */
enum weft_diff_section {
	WEFT_DIFF_FILE,    /* --file: the two versions themselves */
	WEFT_DIFF_INPUT,   /* a file read, by the version read */
	WEFT_DIFF_OUTPUT,  /* a file written, by the version left */
	WEFT_DIFF_EXE,     /* an executable, by its hash */
	WEFT_DIFF_ENV,     /* a variable of the root's environment */
	WEFT_DIFF_COMMAND, /* the root's command line */
	WEFT_DIFF_CWD,     /* the root's working directory */
	WEFT_DIFF_EXIT,    /* the exit status */
};
enum weft_diff_change {
	WEFT_DIFF_SAME,
	WEFT_DIFF_ADDED,   /* only in B */
	WEFT_DIFF_REMOVED, /* only in A */
	WEFT_DIFF_CHANGED,
	WEFT_DIFF_UNKNOWN, /* cannot be compared (not recorded) */
};
typedef struct weft_diff_item {
	int section; /* enum weft_diff_section */
	int change;  /* enum weft_diff_change */
	char *name;  /* path, variable or executable */
	char *a, *b; /* each side's value as text (a hash, "\"value\"" of a
			variable kept in clear, ...), NULL when absent or
			unknown */
	int depth;   /* --file: 0 for the runs that made the two versions,
			1 for the runs that made their differing inputs... */
	char *via;   /* --file: the path the two runs made (their versions
			differ) */
} weft_diff_item;
typedef struct weft_diff {
	char *a, *b;           /* the run or job ids compared */
	weft_diff_item *items; /* --file: breadth first, nearest first */
	size_t nitems;
} weft_diff;
/* a and b: runs (or tasks, which are runs) or jobs, by id or unique
 * prefix. Only what differs (or cannot be compared). */
int weft_store_diff(weft_store *s, const char *a, const char *b,
		    weft_diff *out);
/* The same for two loaded runs (weft rerun --check). */
int weft_diff_reports(const weft_report *a, const weft_report *b,
		      weft_diff *out);
/* Two versions of path (va, vb: the run that made each, by id prefix;
 * both NULL: its last two different contents): the runs that made them
 * compared, inputs that are the same included, then the runs that made
 * each differing input, nearest first. WEFT_ENOTFOUND without two
 * versions. */
int weft_store_diff_file(weft_store *s, const char *path, const char *va,
			 const char *vb, weft_diff *out);
void weft_diff_release(weft_diff *d);
const char *weft_diff_section_name(int section);
const char *weft_diff_change_name(int change);

/* ---- The fragment store: jobs, writers, signed envelopes ----
 *
 * What a coordinator writes (DESIGN.md "Delivery"). One weft_store_writer
 * per store handle, used by one thread: begin, apply any number of
 * requests, commit. A refused request never undoes another. A request's
 * verdict is final only after the commit succeeded; when it fails, every
 * verdict of the batch becomes WEFT_ACK_RETRY. Requests run without a
 * savepoint where they can (much cheaper); one that then fails part-way
 * (a database error) fails the commit with weft_store_writer_redo true:
 * apply the same requests again after the next begin, which runs each in
 * its own savepoint, so that only the failing one is answered "retry".
 *
 * Ingest is idempotent by (job, writer, seq): the same envelope again is a
 * duplicate, another one under the same seq a "replay with different
 * content". A stored fragment merges into the run named by its
 * report.run_id (a run's parts merge into one run), which belongs to the
 * job and carries its task identity (the tasks table). Writers enrolled
 * before a job ended may still deliver (late spools), and a writer may
 * enrol after the end with a proof made from the job's token.
 */

typedef struct weft_verdict {
	int status; /* enum weft_ack_status */
	int reason; /* enum weft_reject_reason */
	char detail[WEFT_MAX_REASON_BYTES + 1];
} weft_verdict;

typedef struct weft_store_writer weft_store_writer;

int weft_store_writer_new(weft_store *s, weft_store_writer **out);
void weft_store_writer_free(weft_store_writer *w);
/* BEGIN IMMEDIATE. */
int weft_store_writer_begin(weft_store_writer *w);
/* COMMIT; on failure the batch is rolled back and WEFT_EDB returned. */
int weft_store_writer_commit(weft_store_writer *w);
/* After a failed commit: whether it failed because one request failed
 * part-way, so that applying the batch again (isolated) stores the rest. */
bool weft_store_writer_redo(const weft_store_writer *w);
void weft_store_writer_rollback(weft_store_writer *w);

void weft_store_apply_job_create(weft_store_writer *w, const weft_job_info *j,
				 weft_verdict *v);
/* A job keeps only the public verifier of its token (weft_job_verifier):
 * ends and enrolments must carry a signature by the token's job key. Jobs
 * stored by an older weft (no verifier) take the legacy MAC while open. */
void weft_store_apply_job_end(weft_store_writer *w, const char *job,
			      int32_t exit_code, int64_t ended_ns,
			      const weft_token_proof *proof, weft_verdict *v);
/* Enrolment is accepted after the job ended too (a late spool carries
 * the proof its wrapper made while it had the token), except in jobs
 * an older weft created. */
void weft_store_apply_enrol(weft_store_writer *w, const char *job,
			    const uint8_t pk[WEFT_PUBKEY_BYTES],
			    const weft_token_proof *proof, int64_t now_ns,
			    weft_verdict *v);
/* A task announced as it starts (TASK_START, signed by the job key):
 * its OpenLineage START is queued now, built from the announcement, and
 * not again when its record comes. Duplicate when announced before or
 * when its record is stored already (its START went with it). */
void weft_store_apply_task_start(weft_store_writer *w,
				 const weft_task_start *ts, int64_t now_ns,
				 weft_verdict *v);
/* A verified envelope (e decoded from env[0..len), its signature checked)
 * and its decoded payload f (whose job, writer and seq equal e's). */
void weft_store_apply_fragment(weft_store_writer *w, const uint8_t *env,
			       size_t len, const weft_envelope *e,
			       const weft_fragment *f, int64_t now_ns,
			       weft_verdict *v);

/* Check one raw envelope the way a coordinator does before storing it:
 * decode, signature, payload decode, header against envelope. On success
 * *e and *f are filled (release f); otherwise v says why (rejected). */
int weft_envelope_check(const uint8_t *env, size_t len, weft_envelope *e,
			weft_fragment *f, weft_verdict *v);
/* The same, and *signed_ok says whether the writer's signature held (e is
 * then whole). On a refusal after it held, f keeps what decoded (empty
 * when the payload did not): release f in every case. */
int weft_envelope_check_signed(const uint8_t *env, size_t len, weft_envelope *e,
			       weft_fragment *f, weft_verdict *v,
			       bool *signed_ok);
/* Name a refused fragment (v rejected) in the store, when e's writer is
 * enrolled in e's job: its task (from f; NULL when the payload did not
 * decode), seq, reason and detail, for status, job show and dag. Anything
 * else is not stored. weft_store_apply_fragment does this itself; a
 * coordinator calls it for signed envelopes weft_envelope_check_signed
 * refused. v is not changed. */
void weft_store_apply_refused(weft_store_writer *w, const weft_envelope *e,
			      const weft_fragment *f, int64_t now_ns,
			      const weft_verdict *v);
/* Check and store one envelope in its own transaction (tests, `weft pull`,
 * the benchmark's bare loop). */
int weft_store_ingest_envelope(weft_store_writer *w, const uint8_t *env,
			       size_t len, int64_t now_ns, weft_verdict *v);

/* The status of every job (job NULL) or one (WEFT_ENOTFOUND when absent):
 * what weft_status holds except the coordinator's reject counters. Free
 * with weft_status_release. */
int weft_store_status(weft_store *s, const char *job, weft_status *out);

/* One job's record. */
typedef struct weft_job_record {
	weft_job_info info; /* token is "" (the store never has it) */
	bool ended;
	int64_t ended_ns;
	int32_t exit_code; /* -1 while open */
	uint64_t writers, fragments, tasks;
	uint64_t tasks_incomplete; /* tasks with parts missing */
	uint64_t refused; /* fragments of enrolled writers refused (named by
			     weft_store_status) */
} weft_job_record;

/* Every job, oldest first. Free with weft_job_records_free. */
int weft_store_list_jobs(weft_store *s, weft_job_record **out, size_t *n);
/* One job by id or unique prefix; WEFT_ENOTFOUND when none, WEFT_EINVAL
 * when the prefix is ambiguous. Release with weft_job_record_release. */
int weft_store_get_job(weft_store *s, const char *id, weft_job_record *out);
void weft_job_record_release(weft_job_record *r);
void weft_job_records_free(weft_job_record *jobs, size_t n);

/* Re-check every stored envelope (of one job, or all): decodes, its
 * signature by the writer key stored with the job, its payload hash. */
typedef struct weft_verify_counts {
	uint64_t envelopes, ok, bad_signature, malformed, mismatch;
	uint64_t jobs, writers;
} weft_verify_counts;
/* bad (may be NULL) is called for each envelope that fails. */
typedef void (*weft_verify_bad_fn)(void *ctx, const char *job,
				   const uint8_t pk[WEFT_PUBKEY_BYTES],
				   uint64_t seq, const char *why);
int weft_store_verify(weft_store *s, const char *job, weft_verify_counts *c,
		      weft_verify_bad_fn bad, void *ctx);

/* ---- Relay: copying signed fragments between stores (`weft pull`) ----
 *
 * A relay copies jobs from a source (another store file, or a coordinator's
 * export answers) into this store: each job's record with the key derived
 * from its token (a store never has the token, so weft_store_apply_job_create
 * cannot be used), its enrolled writers (public key, enrolment time), then
 * every envelope, checked by weft_envelope_check and applied by
 * weft_store_apply_fragment exactly as a coordinator does: a duplicate is a
 * no-op, another payload under a stored (job, writer, seq) is refused as a
 * replay, nothing stored is changed. Signatures hold end to end: what is
 * stored here is the source's envelope bytes, verified here.
 *
 * What a relay cannot prove: that the source's writer list is honest. A
 * store keeps no enrolment proof, and could not keep one it cannot forge
 * (it holds the job key the MAC is made with). A job that exists here
 * under another key is refused (with its writers and fragments).
 *
 * Envelopes are applied in batches of WEFT_RELAY_BATCH per transaction,
 * kept (copied) until it committed: a batch the store writer asks to redo
 * (weft_store_writer_redo) is applied again, and verdicts are counted and
 * reported only once committed. One relay writes from one thread.
 */
#define WEFT_RELAY_BATCH 512

/* A job as a relay copies it. */
typedef struct weft_relay_job {
	weft_job_info info;          /* token "" */
	uint8_t key[WEFT_MAC_BYTES]; /* legacy (no verifier): zeros once ended
				      */
	bool has_vk;                 /* the token's public verifier */
	uint8_t vk[WEFT_PUBKEY_BYTES];
	bool ended;
	int64_t ended_ns;
	int32_t exit_code; /* -1 while open */
} weft_relay_job;

typedef struct weft_relay_counts {
	uint64_t jobs, jobs_stored, jobs_present, jobs_rejected;
	uint64_t writers, writers_stored, writers_present;
	uint64_t fragments, stored, duplicate, rejected;
	uint64_t rejects[WEFT_REJECT_REASON_MAX]; /* fragments, by reason */
} weft_relay_counts;

/* Called for each refusal: of a job (pk NULL, seq 0) or of one fragment
 * (pk and seq as the source files it). */
typedef void (*weft_relay_reject_fn)(void *ctx, const char *job,
				     const uint8_t *pk, uint64_t seq,
				     const weft_verdict *v);

typedef struct weft_relay weft_relay;

/* A relay into dst (which must stay open while the relay lives). */
int weft_relay_new(weft_store *dst, weft_relay_reject_fn rejected, void *ctx,
		   weft_relay **out);
/* Each envelope put reports fragments and bytes seen so far to fn, of
 * expected (0: not known; a pull from a store file adds what it holds). */
void weft_relay_set_progress(weft_relay *r, weft_progress_fn fn, void *arg,
			     uint64_t expected);
/* Frees; a batch not yet committed is rolled back (call finish first). */
void weft_relay_free(weft_relay *r);
/* Copy one job's record. v: stored (new here), duplicate (here with the
 * same key; an open one is ended when the source's has ended), rejected
 * (malformed, or here with another key: then its writers and fragments
 * are refused too). Commits the batch before it. WEFT_EDB on a store
 * error. */
int weft_relay_put_job(weft_relay *r, const weft_relay_job *j, weft_verdict *v);
/* Copy one writer of a job put before (stored, or duplicate when
 * enrolled here already). */
int weft_relay_put_writer(weft_relay *r, const char *job,
			  const uint8_t pk[WEFT_PUBKEY_BYTES],
			  int64_t enrolled_ns, weft_verdict *v);
/* Check and apply one envelope of job (pk and seq: where the source
 * files it; pk NULL when the source does not say). Its verdict is counted
 * (and a refusal reported to the callback) when its batch commits, or at
 * once when the envelope is refused before the store is asked (a bad
 * signature). WEFT_EDB when the store failed (the batch is rolled back:
 * nothing of it is counted). */
int weft_relay_put_envelope(weft_relay *r, const char *job, const uint8_t *pk,
			    uint64_t seq, const uint8_t *env, size_t len);
/* Commit what is pending. */
int weft_relay_finish(weft_relay *r);
/* What was copied, counted after each commit. */
const weft_relay_counts *weft_relay_get_counts(const weft_relay *r);

/* Open a store file for reading only: nothing in it is written, migrated
 * or created (SQLite may add the -wal and -shm files of a WAL database
 * beside it). WEFT_ENOTFOUND when there is no such file, WEFT_EINVAL when
 * it is not a regular file, WEFT_EVERSION when it is a weft store from
 * before jobs existed, WEFT_EDB when it is not a database.
 * weft_relay_pull_store refuses a source newer than its destination. */
int weft_store_open_readonly(const char *db_path, weft_store **out);
/* The same database file (device and inode) behind both handles. */
bool weft_store_same_file(weft_store *a, weft_store *b);
/* Relay every job of src (job NULL) or one job (its full id) into r, in
 * the source's order, from one read snapshot of src. WEFT_ENOTFOUND when
 * job is not in src, WEFT_EDB on a store error (in either store). */
int weft_relay_pull_store(weft_relay *r, weft_store *src, const char *job);

/* The coordinator's side of a remote relay: one export page of job (see
 * weft/wire.h "Export"): its record (the key only when it has ended), the
 * writers after wafter, then, once no writer is left, the envelopes after
 * after up to max_bytes (WEFT_MAX_EXPORT_BYTES; at least one envelope),
 * from one read snapshot, appended to out as an encoded page.
 * WEFT_ENOTFOUND when there is no such job. */
int weft_store_export(weft_store *s, const char *job, uint64_t after,
		      uint64_t wafter, size_t max_bytes, weft_buf *out);
/* Relay one decoded export page of job: with first, its job record (v:
 * the job's verdict; a page without the key, an open job, is not put:
 * v->status is then WEFT_ACK_RETRY), then its writers and envelopes. */
int weft_relay_put_page(weft_relay *r, const weft_export_page *p, bool first,
			weft_verdict *v);

/* ---- JSON text (json_out.c): what every JSON document of weft writes ---- */

/* A JSON string. Bytes that are not valid UTF-8 are written as lone
 * surrogates U+DC80..U+DCFF ("\udcXX" for byte XX), the convention of
 * Python's "surrogateescape": reversible, and os.fsencode() restores the
 * original bytes. */
void weft_json_string(FILE *out, const char *s);
/* Length of the whole, valid UTF-8 sequence at s (at most avail bytes), or
 * 0 when there is none. */
size_t weft_utf8_len(const unsigned char *s, size_t avail);
/* RFC 3339 times: weft_rfc3339 (weft/base.h). */

/* ---- Exports: W3C PROV-JSON, RO-Crate, the picture ----
 *
 * Each reads the DAG (weft_store_dag) and, for what the DAG does not
 * carry, the runs' own rows: start and end times, the root process's
 * argv and executable, the job's user. Nothing is written to the store.
 * Files are named, never copied: weft records metadata only.
 * docs/interop.md maps weft's model to each format.
 */

/* What an export covers: every run in the store (both NULL), one job
 * (its full id), or one run (an id or a unique prefix of one; with job,
 * a run of that job). */
typedef struct weft_export_scope {
	const char *job;
	const char *run;
} weft_export_scope;

/* Why an export failed, for the user: names the run, path or store
 * error. */
#define WEFT_EXPORT_ERR_BYTES 512

/* W3C PROV-JSON (export_prov.c): an entity per file version, an
 * activity per task, an agent per user; used, wasGeneratedBy,
 * wasDerivedFrom (the version an update changed), wasInformedBy (a task
 * read what another wrote), wasStartedBy (a task's parent task),
 * wasAssociatedWith. A weak edge carries weft:weak true. WEFT_ENOTFOUND
 * when sc->run matches no run, WEFT_EINVAL when it matches several,
 * WEFT_EDB, WEFT_EIO (out failed); err says which. */
int weft_export_prov(weft_store *s, const weft_export_scope *sc, FILE *out,
		     char err[WEFT_EXPORT_ERR_BYTES]);

/* An RO-Crate 1.1 (Process Run Crate 0.5 profile) (export_rocrate.c):
 * one CreateAction per task with its instrument (the command's
 * SoftwareApplication), object and result files (hash, size), agent,
 * times and action status. path NULL: ro-crate-metadata.json to out;
 * a path ending in ".zip": a zip archive holding it (replaced whole);
 * otherwise a directory (made when absent) that receives it. Errors as
 * weft_export_prov. */
int weft_export_rocrate(weft_store *s, const weft_export_scope *sc,
			const char *path, FILE *out,
			char err[WEFT_EXPORT_ERR_BYTES]);

/* The picture (render.c): d laid out by Graphviz's library. */
enum weft_render_format {
	WEFT_RENDER_SVG,  /* an SVG document */
	WEFT_RENDER_HTML, /* one self-contained page: the SVG, styles and a
			     script inline, nothing fetched; a click on a
			     file or task highlights its lineage up and down
			     and shows its details; #select=ID (a DAG id)
			     in the URL selects ID when the page loads */
};
/* The most nodes (tasks and drawn files) a picture lays out: Graphviz's
 * dot layout grows faster than linearly, and a drawing of more cannot be
 * read anyway. A larger DAG is refused (WEFT_ETOOBIG), naming --job and
 * weft lineage as the way to a smaller one. */
#define WEFT_RENDER_MAX_NODES 5000
/* Whether to leave out an artifact no task wrote (system inputs); NULL:
 * keep every artifact. */
typedef bool (*weft_render_hide_fn)(const char *path);
/* d from weft_store_dag on s (the task details come from s).
 * WEFT_EUNSUPPORTED when this build has no Graphviz, WEFT_ETOOBIG past
 * WEFT_RENDER_MAX_NODES; WEFT_EDB, WEFT_EIO, WEFT_ENOMEM; err says
 * which. */
int weft_render_dag(weft_store *s, const weft_dag *d, int format,
		    weft_render_hide_fn hide, FILE *out,
		    char err[WEFT_EXPORT_ERR_BYTES]);

/* ---- OpenLineage (export_openlineage.c) ----
 *
 * weft's lineage as OpenLineage 2-0-2 run events (docs/interop.md): a run
 * per task with a START and a COMPLETE or FAIL event, and a run per job
 * (the tasks' parent). Files are datasets named by the spec's naming
 * rules: "file://HOST" and the path for a node-local file, the shared
 * filesystem's server and the path there for a shared one. The same store
 * gives the same bytes: run ids are name-based UUIDs of weft's ids, times
 * are the recorded ones, datasets come in path order.
 */
#define WEFT_OL_SPEC_URL "https://openlineage.io/spec/2-0-2/OpenLineage.json"
#define WEFT_OL_PRODUCER                                                       \
	"https://github.com/weft-lineage/weft/tree/v" WEFT_VERSION
/* The jobs' namespace when none is configured. */
#define WEFT_OL_DEFAULT_NAMESPACE "weft"
/* A namespace at most; a job name's part taken from a command or a task
 * name at most (cut at a character boundary: consumers keep names in
 * columns of a few hundred bytes). */
#define WEFT_OL_MAX_NAMESPACE_BYTES 255
#define WEFT_OL_MAX_NAME_PART_BYTES 200

typedef struct weft_ol_opts {
	const char *ns;     /* jobs' namespace; NULL: the default */
	bool system_inputs; /* also inputs under /usr, /lib, /etc, ... */
} weft_ol_opts;

/* WEFT_OK when ns can be a namespace: 1 to WEFT_OL_MAX_NAMESPACE_BYTES
 * printable ASCII bytes. */
int weft_ol_namespace_check(const char *ns);

/* Every event of one job (job: its full id), of one task (run: a run id
 * or a unique prefix), or of the whole store (both NULL), one JSON object
 * a line, into out: a job's START, its tasks' START and COMPLETE/FAIL in
 * the order they started, its end. WEFT_ENOTFOUND when the job or run is
 * not there, WEFT_EINVAL for an ambiguous prefix, WEFT_EIO when out fails. */
int weft_store_openlineage(weft_store *s, const char *job, const char *run,
			   const weft_ol_opts *o, FILE *out);

/* The name-based UUID (version 8, from BLAKE2b) of the OpenLineage run of
 * a weft task ("task", its run id) or job ("job", its id). */
void weft_ol_run_uuid(const char *kind, const char *id, char out[37]);

/* Another connection to s's database, for another thread of the process
 * that opened s (a coordinator's sender). Never open a store file twice
 * in one process with weft_store_open: it would drop the locks SQLite
 * holds on it. */
int weft_store_open_sibling(weft_store *s, weft_store **out);

/* The outbox: events waiting for a destination (a sink). dest names it
 * (a URL, or "file:" and a path); registering it again is a no-op. Only
 * what is stored after a sink is registered is queued for it. */
int weft_ol_sink_add(weft_store *s, const char *dest, int64_t now_ns,
		     int64_t *sink);
/* The next event to send to sink: its seq and JSON (one line, no newline;
 * malloc'd). A task whose parent task is not stored yet waits for it
 * (or for its job's end). WEFT_ENOTFOUND when nothing is ready. */
int weft_ol_outbox_next(weft_store *s, int64_t sink, const weft_ol_opts *o,
			int64_t *seq, char **json, size_t *len);
/* The same, the first ready one after seq after (to read ahead of what
 * was sent). */
int weft_ol_outbox_after(weft_store *s, int64_t sink, const weft_ol_opts *o,
			 int64_t after, int64_t *seq, char **json, size_t *len);
/* The destination took event seq: it leaves the outbox. */
int weft_ol_outbox_sent(weft_store *s, int64_t sink, int64_t seq);
/* Sending event seq failed with why: for_good (the destination refused
 * it) keeps it aside, never sent again; else it waits for the next try. */
int weft_ol_outbox_failed(weft_store *s, int64_t sink, int64_t seq,
			  bool for_good, const char *why, int64_t now_ns);

typedef struct weft_ol_sink_status {
	char *dest;
	uint64_t waiting, refused, sent;
	char *last_error; /* NULL when none */
	int64_t last_error_ns;
} weft_ol_sink_status;
/* Every sink, in the order they were added. */
int weft_ol_outbox_status(weft_store *s, weft_ol_sink_status **out, size_t *n);
void weft_ol_sink_status_free(weft_ol_sink_status *st, size_t n);

#endif /* WEFT_STORE_H */
