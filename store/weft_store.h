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

#endif /* WEFT_STORE_H */
