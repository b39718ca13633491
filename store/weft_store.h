/*
 * weft_store.h - the SQLite store: runs, processes, artifacts, paths, I/O
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
#include <sys/stat.h>

#include "weft_schema.h"
#include "weft_wire.h"

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
 * (WEFT_EVERSION) and left untouched. */
int weft_store_open(const char *db_path, weft_store **out);
void weft_store_close(weft_store *s);
/* The last SQLite error message of this handle, for the user. */
const char *weft_store_errmsg(const weft_store *s);

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

/* ---- The lineage DAG ---- */

typedef struct weft_dag_task {
	char *id;        /* the run id */
	char *name;      /* the command, as the user typed it */
	char *node;      /* hostname, or NULL */
	char *backend;
	int32_t exit_code;
	char *parent;    /* parent task id, or NULL */
} weft_dag_task;

typedef struct weft_dag_artifact {
	char *id;        /* "blake2b-256:<hex>" when hashed, else "path:<path>" */
	char *path;      /* where it was first written, else first seen */
	bool has_hash;
	uint8_t hash[32];
} weft_dag_artifact;

typedef struct weft_dag_edge {
	char *from;      /* artifact id for reads, task id for writes */
	char *to;
	bool write;      /* false: read edge (artifact -> task) */
	bool weak;       /* matched by path alone (no hash) */
} weft_dag_edge;

typedef struct weft_dag {
	char *job;       /* NULL for the whole local store */
	weft_dag_task *tasks;
	size_t ntasks;
	weft_dag_artifact *artifacts;
	size_t nartifacts;
	weft_dag_edge *edges;
	size_t nedges;
} weft_dag;

/* The DAG of every run in the store (job NULL) or of one job. Tasks in run
 * order; artifacts and edges in a stable order (same store, same DAG). */
int weft_store_dag(weft_store *s, const char *job, weft_dag *out);
void weft_dag_release(weft_dag *d);

/* The lineage of one file (path absolute, normalized): the part of the DAG
 * that produced its latest content (down false: the tasks that wrote it,
 * what they read, who wrote that, ...) or that it fed (down true: the
 * tasks that read it, what they wrote, ...), within one job when job is
 * not NULL. artifacts[0] is the file itself; cycles end where a node was
 * seen. WEFT_ENOTFOUND when the store has no record of the path. Release
 * with weft_dag_release. */
int weft_store_lineage(weft_store *s, const char *path, const char *job,
		       bool down, weft_dag *out);

/* ---- The fragment store: jobs, writers, signed envelopes ----
 *
 * What a coordinator writes (DESIGN.md "Delivery"). One weft_store_writer
 * per store handle, used by one thread: begin, apply any number of
 * requests (each in its own savepoint, so one refused or failing request
 * never undoes another), commit. A request's verdict is final only after
 * the commit succeeded; when it fails, every verdict of the batch becomes
 * WEFT_ACK_RETRY.
 *
 * Ingest is idempotent by (job, writer, seq): the same envelope again is a
 * duplicate, another one under the same seq a "replay with different
 * content". A stored fragment merges into the run named by its
 * report.run_id (a run's parts merge into one run), which belongs to the
 * job and carries its task identity (the tasks table). Writers enrolled
 * before a job ended may still deliver (late spools); nobody may enrol
 * after.
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
void weft_store_writer_rollback(weft_store_writer *w);

void weft_store_apply_job_create(weft_store_writer *w, const weft_job_info *j,
				 weft_verdict *v);
void weft_store_apply_job_end(weft_store_writer *w, const char *job,
			      int32_t exit_code, int64_t ended_ns,
			      const uint8_t mac[WEFT_MAC_BYTES],
			      weft_verdict *v);
void weft_store_apply_enrol(weft_store_writer *w, const char *job,
			    const uint8_t pk[WEFT_PUBKEY_BYTES],
			    const uint8_t mac[WEFT_MAC_BYTES], int64_t now_ns,
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

#endif /* WEFT_STORE_H */
