/*
 * ingest.c - the fragment store's write side: job create and end, writer
 * enrolment, and idempotent ingest of signed envelopes, each merged into
 * the run (and task) it describes.
 *
 * A weft_store_writer holds its prepared statements for the life of the
 * coordinator: at thousands of fragments a second, preparing per request
 * would cost more than the inserts. Each request's verdict is
 * all-or-nothing on its own and the batch commits whatever the other
 * requests did: a fragment that starts a new run (nearly all) is checked
 * completely before its first write and then written without a savepoint
 * (fragment_unguarded); everything else runs inside a savepoint of the
 * caller's batch transaction (in_savepoint). The writer also caches ids
 * (writers, paths, artifacts) and runs checkpoints on a thread of its
 * own (see bench/ingest and docs/benchmarks.md for what each saves).
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_internal.h"

enum {
	W_SAVEPOINT,
	W_RELEASE,
	W_ROLLBACK_TO,
	W_JOB_GET,
	W_JOB_ADD,
	W_JOB_END,
	W_WRITER_GET,
	W_WRITER_ADD,
	W_ENV_GET,
	W_ENV_ADD,
	W_RUN_GET,
	W_RUN_ADD,
	W_TASK_ADD,
	W_TASK_PART,
	W_RUN_DROPPED,
	W_PROC_NEXT,
	W_WARN_NEXT,
	W_PATH_INS,
	W_ARTIFACT_INS,
	W_FS_INS,
	W_REFUSAL_ADD,
	W_START_ADD,
	W_NSTMT
};

static const char *const writer_sql[W_NSTMT] = {
	[W_SAVEPOINT] = "SAVEPOINT req",
	[W_RELEASE] = "RELEASE req",
	[W_ROLLBACK_TO] = "ROLLBACK TO req",
	[W_JOB_GET] = "SELECT num, state, enrol_key, verifier FROM jobs "
		      "WHERE id = ?1",
	/* enrol_key all zeros: the job has a verifier instead. */
	[W_JOB_ADD] = "INSERT INTO jobs (id, enrol_key, verifier, state, "
		      "created_ns, command, user, host, cwd, git) "
		      "VALUES (?1, zeroblob(32), ?2, 'open', ?3, ?4, ?5, ?6, "
		      "?7, ?8)",
	/* A job from before verifiers loses its legacy key as it ends: no
	 * enrolment needs it any more. */
	[W_JOB_END] = "UPDATE jobs SET state = 'ended', ended_ns = ?2, "
		      "exit_code = ?3, enrol_key = zeroblob(32) WHERE num = ?1",
	[W_WRITER_GET] = "SELECT num FROM writers WHERE job = ?1 AND "
			 "pubkey = ?2",
	[W_WRITER_ADD] = "INSERT INTO writers (job, pubkey, enrolled_ns) "
			 "VALUES (?1, ?2, ?3)",
	[W_ENV_GET] = "SELECT payload_hash FROM envelopes WHERE job = ?1 AND "
		      "writer = ?2 AND seq = ?3",
	/* A (job, writer, seq) already stored inserts nothing (changes 0):
	 * the unguarded path tells duplicates this way, without a lookup
	 * first. */
	[W_ENV_ADD] = "INSERT INTO envelopes (job, writer, seq, payload_hash, "
		      "raw, stored_ns) VALUES (?1, ?2, ?3, ?4, ?5, ?6) "
		      "ON CONFLICT (job, writer, seq) DO NOTHING",
	[W_RUN_GET] = "SELECT r.num, t.job, t.writer FROM runs r "
		      "LEFT JOIN tasks t ON t.run = r.num WHERE r.id = ?1",
	[W_RUN_ADD] = "INSERT INTO runs (id, job, backend, node, exit_code, "
		      "started_ns, ended_ns, dropped_events) "
		      "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
	[W_TASK_ADD] = "INSERT INTO tasks (run, job, writer, task_id, name, "
		       "parent, engine, preflight, nparts, parts_stored) "
		       "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 1)",
	[W_TASK_PART] = "UPDATE tasks SET parts_stored = parts_stored + 1 "
			"WHERE run = ?1",
	/* Parts may each carry the run's count or only one may: the
	 * largest is right either way. */
	[W_RUN_DROPPED] = "UPDATE runs SET dropped_events = "
			  "max(dropped_events, ?2) WHERE num = ?1",
	[W_PROC_NEXT] = "SELECT coalesce(max(seq) + 1, 0) FROM processes "
			"WHERE run = ?1",
	[W_WARN_NEXT] = "SELECT coalesce(max(seq) + 1, 0) FROM warnings "
			"WHERE run = ?1",
	/* Insert first, look up when it was there (changes 0): most paths
	 * and hashes the cache does not know are new ones. */
	[W_PATH_INS] = "INSERT INTO paths (path) VALUES (?1) "
		       "ON CONFLICT (path) DO NOTHING",
	[W_ARTIFACT_INS] = "INSERT INTO artifacts (hash) VALUES (?1) "
			   "ON CONFLICT (hash) DO NOTHING",
	[W_FS_INS] = "INSERT INTO filesystems (name) VALUES (?1) "
		     "ON CONFLICT (name) DO NOTHING",
	/* The first refusal of a (job, writer, seq) is kept. */
	[W_REFUSAL_ADD] = "INSERT INTO refusals (job, writer, seq, task_id, "
			  "name, node, reason, detail, refused_ns) VALUES "
			  "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) "
			  "ON CONFLICT (job, writer, seq) DO NOTHING",
	/* Nothing when the task's record is there already (its START is
	 * queued with it) or it was announced before. The START goes to
	 * every sink there is now (sinks_seen). */
	[W_START_ADD] = "INSERT INTO task_starts (job, run_id, task_id, name, "
			"parent, node, backend, started_ns, stored_ns, "
			"sinks_seen) SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, "
			"(SELECT coalesce(max(id), 0) FROM ol_sinks) "
			"WHERE NOT EXISTS "
			"(SELECT 1 FROM runs r JOIN tasks t ON t.run = r.num "
			"WHERE r.id = ?2 AND t.job = ?1) "
			"ON CONFLICT (job, run_id) DO NOTHING",
};

/* Writers looked up, kept across batches (a writer row is never deleted;
 * the cache is dropped whenever a transaction does not commit, since a
 * row it holds may have been inserted by it). Open addressing, cleared
 * when half full. */
#define WRITER_CACHE_SLOTS 8192

struct writer_cache_entry {
	sqlite3_int64 job, num; /* num 0: empty */
	uint8_t pk[WEFT_PUBKEY_BYTES];
};

/* Path and artifact ids, kept across transactions like the writers (rows
 * of paths and artifacts are never deleted or changed): a job's tasks
 * read the same inputs over and over. Dropped with the writer cache, and
 * when a savepoint rolled back after adding to it. The slots in use are
 * listed (intern_used), so that dropping a few entries touches those
 * alone: the table is 2 MiB, mostly pages never written, and clearing it
 * whole cost a short run's coordinator over a millisecond. */
#define INTERN_CACHE_SLOTS 65536
#define INTERN_CACHE_MAX (INTERN_CACHE_SLOTS / 2)

struct intern_entry {
	uint64_t hash; /* of kind and bytes; 0: empty */
	sqlite3_int64 id;
	int len;
	uint8_t *key;
};

/* Checkpoints (copying the WAL into the database file, with an fsync) run
 * on a thread of their own with its own connection, started when the WAL
 * first reaches CKPT_PAGES: done by the writer's commit, as SQLite's
 * automatic checkpoint does, one stalls every acknowledgement waiting
 * for it (32 MB and an fsync at a time). A PASSIVE checkpoint never
 * blocks the writer. Should it fall behind (a reader holding an old
 * snapshot keeps it from finishing), the writer checkpoints itself from
 * CKPT_PAGES_HARD on, so the WAL stays bounded. */
#define CKPT_PAGES 4096
#define CKPT_PAGES_HARD 16384

struct checkpointer {
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool started, failed, want, quit;
	char *path;
	int signalled; /* the WAL's size in pages when last asked */
};

struct job_row {
	sqlite3_int64 num;
	bool ended;
	bool has_vk;                   /* else a job from before verifiers */
	uint8_t vk[WEFT_PUBKEY_BYTES]; /* the token's public verifier */
	uint8_t key[WEFT_MAC_BYTES];   /* legacy: while open and !has_vk */
};

struct weft_store_writer {
	weft_store *s;
	sqlite3_stmt *st[W_NSTMT];
	sqlite3_stmt *put[PUT_NSTMT];
	/* The last job looked up, for this transaction only (another
	 * process may end it between transactions). */
	bool job_cached;
	char job_id[WEFT_JOB_ID_BYTES + 1];
	struct job_row job;
	struct writer_cache_entry *writers;
	size_t nwriters;
	struct intern_entry *interned;
	uint32_t *intern_used; /* ninterned slot numbers */
	size_t ninterned;
	uint64_t intern_adds; /* ever: a savepoint sees whether it added */
	/* Per kind (STORE_INTERN_*): the last value not in the cache was
	 * already stored, so the next is looked up before it is inserted. */
	bool intern_stored[STORE_INTERN_FS + 1];
	/* This transaction runs every request in its own savepoint (after a
	 * transaction had to be rolled back, see weft_store_writer_redo). */
	bool isolated, isolate_next;
	/* A request failed part-way outside a savepoint: the transaction
	 * can only roll back. */
	bool failed;
	/* The last commit failed because of that: apply the batch again. */
	bool redo;
	struct checkpointer ckpt;
};

static void *checkpointer_main(void *arg)
{
	struct checkpointer *k = arg;
	pthread_setname_np(pthread_self(), "weft-checkpoint");
	sqlite3 *db = NULL;
	if (store_sqlite_open(k->path, &db, SQLITE_OPEN_READWRITE) !=
	    SQLITE_OK) {
		store_sqlite_close(db);
		pthread_mutex_lock(&k->mu);
		k->failed = true; /* the writer checkpoints itself then */
		pthread_mutex_unlock(&k->mu);
		return NULL;
	}
	sqlite3_busy_timeout(db, WEFT_STORE_BUSY_TIMEOUT_MS);
	sqlite3_exec(db, "PRAGMA synchronous = NORMAL", NULL, NULL, NULL);
	pthread_mutex_lock(&k->mu);
	for (;;) {
		while (!k->want && !k->quit)
			pthread_cond_wait(&k->cv, &k->mu);
		if (k->quit)
			break;
		k->want = false;
		pthread_mutex_unlock(&k->mu);
		sqlite3_wal_checkpoint_v2(db, "main", SQLITE_CHECKPOINT_PASSIVE,
					  NULL, NULL);
		pthread_mutex_lock(&k->mu);
	}
	pthread_mutex_unlock(&k->mu);
	store_sqlite_close(db);
	return NULL;
}

/* sqlite3_wal_hook: after each commit, with the WAL's size in pages. */
static int wal_hook(void *arg, sqlite3 *db, const char *name, int pages)
{
	struct checkpointer *k = arg;
	/* Once per CKPT_PAGES new frames, not after every commit: a
	 * checkpoint copies the newest version of every page in its range
	 * and syncs, so many small ones cost far more than a few large. The
	 * WAL starts over (pages drops) once a checkpoint caught up. */
	if (pages < k->signalled)
		k->signalled = 0;
	if (pages - k->signalled < CKPT_PAGES)
		return SQLITE_OK;
	k->signalled = pages;
	pthread_mutex_lock(&k->mu);
	if (!k->started && !k->failed && k->path) {
		if (pthread_create(&k->thread, NULL, checkpointer_main, k) == 0)
			k->started = true;
		else
			k->failed = true;
	}
	bool background = k->started && !k->failed;
	if (background) {
		k->want = true;
		pthread_cond_signal(&k->cv);
	}
	pthread_mutex_unlock(&k->mu);
	if (!background || pages >= CKPT_PAGES_HARD)
		sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE,
					  NULL, NULL);
	return SQLITE_OK;
}

static void checkpointer_stop(struct checkpointer *k)
{
	pthread_mutex_lock(&k->mu);
	k->quit = true;
	pthread_cond_signal(&k->cv);
	bool started = k->started;
	pthread_mutex_unlock(&k->mu);
	if (started)
		pthread_join(k->thread, NULL);
	pthread_mutex_destroy(&k->mu);
	pthread_cond_destroy(&k->cv);
	free(k->path);
}

static void intern_drop(weft_store_writer *w)
{
	for (size_t i = 0; i < w->ninterned; i++) {
		struct intern_entry *e = &w->interned[w->intern_used[i]];
		free(e->key);
		memset(e, 0, sizeof(*e));
	}
	w->ninterned = 0;
}

static void caches_drop(weft_store_writer *w)
{
	w->job_cached = false;
	if (w->nwriters)
		memset(w->writers, 0,
		       WRITER_CACHE_SLOTS * sizeof(*w->writers));
	w->nwriters = 0;
	intern_drop(w);
}

int weft_store_writer_new(weft_store *s, weft_store_writer **out)
{
	*out = NULL;
	weft_store_writer *w = calloc(1, sizeof(*w));
	if (!w)
		return WEFT_ENOMEM;
	w->s = s;
	pthread_mutex_init(&w->ckpt.mu, NULL);
	pthread_cond_init(&w->ckpt.cv, NULL);
	const char *path = sqlite3_db_filename(s->db, "main");
	if (path && path[0]) /* not for a temporary or memory database */
		w->ckpt.path = strdup(path);
	w->writers = calloc(WRITER_CACHE_SLOTS, sizeof(*w->writers));
	w->interned = calloc(INTERN_CACHE_SLOTS, sizeof(*w->interned));
	w->intern_used = calloc(INTERN_CACHE_MAX, sizeof(*w->intern_used));
	if (!w->writers || !w->interned || !w->intern_used) {
		free(w->writers);
		free(w->interned);
		free(w->intern_used);
		checkpointer_stop(&w->ckpt);
		free(w);
		return WEFT_ENOMEM;
	}
	/* A coordinator's connection writes thousands of rows a second: a
	 * larger page cache; checkpoints on their own thread (wal_hook), and
	 * the WAL file cut back to 64 MiB when it starts over; savepoint and
	 * statement journals in memory (in a temporary file they cost a
	 * write(2) per page touched, half the time of an insert). No
	 * foreign-key checks: each costs a lookup in the parent table per
	 * row, and every id this writer binds it has just read or inserted
	 * itself (nothing is ever deleted). All of these only affect this
	 * connection, and weft_store_writer_free restores what matters. */
	int err = store_exec(s, "PRAGMA cache_size = -65536") ||
				  store_exec(s, "PRAGMA temp_store = MEMORY") ||
				  store_exec(s, "PRAGMA journal_size_limit "
						"= " STORE_WAL_LIMIT) ||
				  store_exec(s, "PRAGMA foreign_keys = OFF")
			  ? WEFT_EDB
			  : WEFT_OK;
	if (!err) /* replaces SQLite's automatic checkpoint */
		sqlite3_wal_hook(s->db, wal_hook, &w->ckpt);
	for (int i = 0; i < W_NSTMT && !err; i++)
		err = store_prepare(s, writer_sql[i], &w->st[i]);
	for (int i = 0; i < PUT_NSTMT && !err; i++)
		err = store_prepare(s, store_put_sql[i], &w->put[i]);
	if (err) {
		store_save_errmsg(s);
		weft_store_writer_free(w);
		return err;
	}
	*out = w;
	return WEFT_OK;
}

void weft_store_writer_free(weft_store_writer *w)
{
	if (!w)
		return;
	/* Back to SQLite's automatic checkpoint and foreign-key checks for
	 * whoever uses the connection next. */
	sqlite3_wal_autocheckpoint(w->s->db, 1000);
	sqlite3_exec(w->s->db, "PRAGMA foreign_keys = ON", NULL, NULL, NULL);
	checkpointer_stop(&w->ckpt);
	for (int i = 0; i < W_NSTMT; i++)
		sqlite3_finalize(w->st[i]);
	for (int i = 0; i < PUT_NSTMT; i++)
		sqlite3_finalize(w->put[i]);
	intern_drop(w);
	free(w->interned);
	free(w->intern_used);
	free(w->writers);
	free(w);
}

int weft_store_writer_begin(weft_store_writer *w)
{
	w->s->errmsg[0] = '\0';
	w->job_cached = false;
	w->isolated = w->isolate_next;
	w->isolate_next = false;
	w->failed = false;
	w->redo = false;
	return store_exec(w->s, "BEGIN IMMEDIATE");
}

int weft_store_writer_commit(weft_store_writer *w)
{
	if (w->failed) {
		snprintf(w->s->errmsg, sizeof(w->s->errmsg), "%s",
			 "a request failed part-way; the transaction was "
			 "rolled back");
		sqlite3_exec(w->s->db, "ROLLBACK", NULL, NULL, NULL);
		caches_drop(w);
		w->redo = w->isolate_next = true;
		return WEFT_EDB;
	}
	if (store_exec(w->s, "COMMIT") == WEFT_OK)
		return WEFT_OK;
	store_save_errmsg(w->s);
	sqlite3_exec(w->s->db, "ROLLBACK", NULL, NULL, NULL);
	caches_drop(w);
	return WEFT_EDB;
}

bool weft_store_writer_redo(const weft_store_writer *w)
{
	return w->redo;
}

void weft_store_writer_rollback(weft_store_writer *w)
{
	sqlite3_exec(w->s->db, "ROLLBACK", NULL, NULL, NULL);
	caches_drop(w);
}

/* ---- Verdicts ---- */

void store_verdict(weft_verdict *v, int status, int reason, const char *fmt,
		   ...)
{
	v->status = status;
	v->reason = reason;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(v->detail, sizeof(v->detail), fmt, ap);
	va_end(ap);
}

#define STORED(v) store_verdict(v, WEFT_ACK_STORED, WEFT_REJECT_NONE, "%s", "")
#define DUPLICATE(v, ...)                                                      \
	store_verdict(v, WEFT_ACK_DUPLICATE, WEFT_REJECT_NONE, __VA_ARGS__)
#define REJECT(v, reason, ...)                                                 \
	store_verdict(v, WEFT_ACK_REJECTED, reason, __VA_ARGS__)

/* A database failure: nothing of this request stays, and the sender is
 * told to come back (the failure may be a full disk, not its fault). */
static void db_failed(weft_store_writer *w, weft_verdict *v)
{
	store_verdict(v, WEFT_ACK_RETRY, WEFT_REJECT_NONE, "store error: %s",
		      sqlite3_errmsg(w->s->db));
}

/* ---- Statement helpers ---- */

static sqlite3_stmt *stmt(weft_store_writer *w, int i)
{
	sqlite3_reset(w->st[i]);
	sqlite3_clear_bindings(w->st[i]);
	return w->st[i];
}

static int run_stmt(weft_store_writer *w, int i)
{
	return store_step_insert(stmt(w, i));
}

/* Step a query expected to return at most one row: WEFT_OK with a row,
 * WEFT_ENOTFOUND without, WEFT_EDB on error. The row stays readable until
 * the statement is next used. */
static int query_row(sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		return WEFT_OK;
	return rc == SQLITE_DONE ? WEFT_ENOTFOUND : WEFT_EDB;
}

static int job_get(weft_store_writer *w, const char *id, struct job_row *j)
{
	if (w->job_cached && !strcmp(w->job_id, id)) {
		*j = w->job;
		return WEFT_OK;
	}
	sqlite3_stmt *st = stmt(w, W_JOB_GET);
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	int err = query_row(st);
	if (err)
		return err;
	j->num = sqlite3_column_int64(st, 0);
	j->ended =
		strcmp((const char *)sqlite3_column_text(st, 1), "ended") == 0;
	if (sqlite3_column_bytes(st, 2) != WEFT_MAC_BYTES)
		return WEFT_EDB;
	memcpy(j->key, sqlite3_column_blob(st, 2), WEFT_MAC_BYTES);
	j->has_vk = sqlite3_column_bytes(st, 3) == WEFT_PUBKEY_BYTES;
	if (j->has_vk)
		memcpy(j->vk, sqlite3_column_blob(st, 3), WEFT_PUBKEY_BYTES);
	w->job = *j;
	memcpy(w->job_id, id, sizeof(w->job_id));
	w->job_cached = true;
	return WEFT_OK;
}

static struct writer_cache_entry *
writer_slot(weft_store_writer *w, sqlite3_int64 job,
	    const uint8_t pk[WEFT_PUBKEY_BYTES])
{
	uint64_t h;
	memcpy(&h, pk, sizeof(h)); /* a public key's bytes are uniform */
	h ^= (uint64_t)job * 0x9e3779b97f4a7c15ULL;
	for (size_t i = h & (WRITER_CACHE_SLOTS - 1);;
	     i = (i + 1) & (WRITER_CACHE_SLOTS - 1)) {
		struct writer_cache_entry *e = &w->writers[i];
		if (!e->num ||
		    (e->job == job && !memcmp(e->pk, pk, WEFT_PUBKEY_BYTES)))
			return e;
	}
}

static int writer_get(weft_store_writer *w, sqlite3_int64 job,
		      const uint8_t pk[WEFT_PUBKEY_BYTES], sqlite3_int64 *num)
{
	struct writer_cache_entry *e = writer_slot(w, job, pk);
	if (e->num) {
		*num = e->num;
		return WEFT_OK;
	}
	sqlite3_stmt *st = stmt(w, W_WRITER_GET);
	sqlite3_bind_int64(st, 1, job);
	sqlite3_bind_blob(st, 2, pk, WEFT_PUBKEY_BYTES, SQLITE_STATIC);
	int err = query_row(st);
	if (err)
		return err;
	*num = sqlite3_column_int64(st, 0);
	if (w->nwriters + 1 > WRITER_CACHE_SLOTS / 2) {
		caches_drop(w);
		e = writer_slot(w, job, pk);
	}
	e->job = job;
	e->num = *num;
	memcpy(e->pk, pk, WEFT_PUBKEY_BYTES);
	w->nwriters++;
	return WEFT_OK;
}

/* Run one request body inside a savepoint: kept when it returns WEFT_OK,
 * undone otherwise; a database error becomes a RETRY verdict. */
typedef int (*apply_fn)(weft_store_writer *w, const void *arg, weft_verdict *v);

static void in_savepoint(weft_store_writer *w, apply_fn fn, const void *arg,
			 weft_verdict *v)
{
	memset(v, 0, sizeof(*v));
	if (w->failed) {
		store_verdict(
			v, WEFT_ACK_RETRY, WEFT_REJECT_NONE, "%s",
			"store error: the transaction is being rolled back");
		return;
	}
	if (run_stmt(w, W_SAVEPOINT)) {
		db_failed(w, v);
		return;
	}
	uint64_t adds = w->intern_adds;
	int err = fn(w, arg, v);
	if (err == WEFT_EDB || err == WEFT_ENOMEM) {
		if (err == WEFT_ENOMEM)
			store_verdict(v, WEFT_ACK_RETRY, WEFT_REJECT_NONE,
				      "out of memory");
		else
			db_failed(w, v);
	}
	/* No statement may stay in the middle of a result across the
	 * savepoint's end. */
	for (int i = W_JOB_GET; i < W_NSTMT; i++)
		sqlite3_reset(w->st[i]);
	if (err || v->status == WEFT_ACK_REJECTED) {
		run_stmt(w, W_ROLLBACK_TO);
		if (w->intern_adds != adds)
			intern_drop(w); /* it may name rows just undone */
	}
	run_stmt(w, W_RELEASE);
	if (err && sqlite3_get_autocommit(w->s->db))
		w->failed = true; /* SQLite rolled everything back */
}

/* ---- Jobs ---- */

/* The job a request names; an unknown one is refused (v says so). */
static int job_for_request(weft_store_writer *w, const char *job,
			   struct job_row *row, weft_verdict *v)
{
	int err = job_get(w, job, row);
	if (err == WEFT_ENOTFOUND) {
		REJECT(v, WEFT_REJECT_UNKNOWN_JOB, "no job %s", job);
		return WEFT_OK;
	}
	return err;
}

/* What a proof of the token is for: enrolling a writer, or ending the
 * job with an exit code. */
struct proof_for {
	const char *what;  /* "enrolment", "job end" */
	const uint8_t *pk; /* enrolment: the writer */
	int32_t exit_code; /* job end */
};

/* Whether p proves the job's token for f (refused with "bad token" when
 * not). A job with a verifier takes only its signature; a job from before
 * verifiers takes the legacy MAC while it is open (its key is gone once
 * it ended). */
static bool token_proved(const struct job_row *row, const char *job,
			 const weft_token_proof *p, const struct proof_for *f,
			 weft_verdict *v)
{
	bool ok = false;
	if (row->has_vk && p->has_sig)
		ok = (f->pk ? weft_enrol_verify(row->vk, job, f->pk, p->sig)
			    : weft_job_end_verify(row->vk, job, f->exit_code,
						  p->sig)) == WEFT_OK;
	else if (!row->has_vk && !row->ended && p->has_mac) {
		uint8_t mac[WEFT_MAC_BYTES];
		if (f->pk)
			weft_enrol_mac(row->key, job, f->pk, mac);
		else
			weft_job_end_mac(row->key, job, f->exit_code, mac);
		ok = weft_mac_equal(mac, p->mac);
	}
	if (!ok)
		REJECT(v, WEFT_REJECT_BAD_TOKEN,
		       "%s not proved with job %s's token", f->what, job);
	return ok;
}

static int job_create(weft_store_writer *w, const void *arg, weft_verdict *v)
{
	const weft_job_info *j = arg;
	uint8_t vk[WEFT_PUBKEY_BYTES];
	if (weft_job_verifier(j->token, vk))
		return WEFT_ENOMEM; /* libsodium cannot start: retry */
	struct job_row row;
	int err = job_get(w, j->id, &row);
	if (err == WEFT_OK) {
		uint8_t key[WEFT_MAC_BYTES];
		weft_enrol_key(j->token, key);
		bool same = row.has_vk ? !memcmp(vk, row.vk, sizeof(vk))
				       : weft_mac_equal(key, row.key);
		if (same)
			DUPLICATE(v, "job %s exists", j->id);
		else
			REJECT(v, WEFT_REJECT_JOB_EXISTS,
			       "job %s exists with another token", j->id);
		return WEFT_OK;
	}
	if (err != WEFT_ENOTFOUND)
		return err;
	sqlite3_stmt *st = stmt(w, W_JOB_ADD);
	sqlite3_bind_text(st, 1, j->id, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 2, vk, WEFT_PUBKEY_BYTES, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, j->created_ns);
	store_bind_job_text(st, 4, j);
	err = store_step_insert(st);
	if (err)
		return WEFT_EDB;
	STORED(v);
	return WEFT_OK;
}

void weft_store_apply_job_create(weft_store_writer *w, const weft_job_info *j,
				 weft_verdict *v)
{
	if (weft_job_id_check(j->id) || weft_token_check(j->token)) {
		memset(v, 0, sizeof(*v));
		REJECT(v, WEFT_REJECT_MALFORMED, "bad job id or token");
		return;
	}
	in_savepoint(w, job_create, j, v);
}

struct job_end_arg {
	const char *job;
	int32_t exit_code;
	int64_t ended_ns;
	const weft_token_proof *proof;
};

static int job_end(weft_store_writer *w, const void *arg, weft_verdict *v)
{
	const struct job_end_arg *a = arg;
	struct job_row row;
	int err = job_for_request(w, a->job, &row, v);
	if (err || v->status == WEFT_ACK_REJECTED)
		return err;
	if (row.ended && !row.has_vk) {
		/* A job from before verifiers: nothing left to check a
		 * proof with, and nothing to change. */
		DUPLICATE(v, "job %s had ended", a->job);
		return WEFT_OK;
	}
	struct proof_for f = {"job end", NULL, a->exit_code};
	if (!token_proved(&row, a->job, a->proof, &f, v))
		return WEFT_OK;
	if (row.ended) {
		DUPLICATE(v, "job %s had ended", a->job);
		return WEFT_OK;
	}
	sqlite3_stmt *st = stmt(w, W_JOB_END);
	sqlite3_bind_int64(st, 1, row.num);
	sqlite3_bind_int64(st, 2, a->ended_ns);
	sqlite3_bind_int(st, 3, a->exit_code);
	if (store_step_insert(st))
		return WEFT_EDB;
	w->job_cached = false;
	STORED(v);
	return WEFT_OK;
}

void weft_store_apply_job_end(weft_store_writer *w, const char *job,
			      int32_t exit_code, int64_t ended_ns,
			      const weft_token_proof *proof, weft_verdict *v)
{
	struct job_end_arg a = {job, exit_code, ended_ns, proof};
	in_savepoint(w, job_end, &a, v);
}

/* ---- Enrolment ---- */

struct enrol_arg {
	const char *job;
	const uint8_t *pk;
	const weft_token_proof *proof;
	int64_t now_ns;
};

static int enrol(weft_store_writer *w, const void *arg, weft_verdict *v)
{
	const struct enrol_arg *a = arg;
	struct job_row row;
	int err = job_for_request(w, a->job, &row, v);
	if (err || v->status == WEFT_ACK_REJECTED)
		return err;
	sqlite3_int64 num;
	err = writer_get(w, row.num, a->pk, &num);
	if (err != WEFT_OK && err != WEFT_ENOTFOUND)
		return err;
	if (err == WEFT_OK && row.ended && !row.has_vk) {
		/* A late spool of a job from before verifiers: enrolled
		 * before the end, and its legacy key is gone. */
		DUPLICATE(v, "writer already enrolled");
		return WEFT_OK;
	}
	struct proof_for f = {"enrolment", a->pk, 0};
	if (!token_proved(&row, a->job, a->proof, &f, v)) {
		if (row.ended && !row.has_vk)
			REJECT(v, WEFT_REJECT_JOB_ENDED,
			       "job %s has ended (created by an older weft, "
			       "it takes no late writers)",
			       a->job);
		return WEFT_OK;
	}
	if (err == WEFT_OK) {
		/* Even after the end: a late spool enrols again first. */
		DUPLICATE(v, "writer already enrolled");
		return WEFT_OK;
	}
	/* After the end too: the proof was made by a holder of the token,
	 * for this job and this writer (a wrapper that could not reach the
	 * coordinator in time spooled it with its fragments). */
	sqlite3_stmt *st = stmt(w, W_WRITER_ADD);
	sqlite3_bind_int64(st, 1, row.num);
	sqlite3_bind_blob(st, 2, a->pk, WEFT_PUBKEY_BYTES, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, a->now_ns);
	if (store_step_insert(st))
		return WEFT_EDB;
	STORED(v);
	return WEFT_OK;
}

void weft_store_apply_enrol(weft_store_writer *w, const char *job,
			    const uint8_t pk[WEFT_PUBKEY_BYTES],
			    const weft_token_proof *proof, int64_t now_ns,
			    weft_verdict *v)
{
	struct enrol_arg a = {job, pk, proof, now_ns};
	in_savepoint(w, enrol, &a, v);
}

/* ---- Task starts ---- */

struct task_start_arg {
	const weft_task_start *ts;
	int64_t now_ns;
};

static int task_start(weft_store_writer *w, const void *arg, weft_verdict *v)
{
	const struct task_start_arg *a = arg;
	const weft_task_start *ts = a->ts;
	struct job_row row;
	int err = job_for_request(w, ts->job, &row, v);
	if (err || v->status == WEFT_ACK_REJECTED)
		return err;
	/* Only the job key signs one (a job from before verifiers has
	 * none): its record, later, says the same. */
	if (!row.has_vk || weft_task_start_verify(row.vk, ts) != WEFT_OK) {
		REJECT(v, WEFT_REJECT_BAD_TOKEN,
		       "task start of %s not proved with job %s's token",
		       ts->task, ts->job);
		return WEFT_OK;
	}
	sqlite3_stmt *st = stmt(w, W_START_ADD);
	sqlite3_bind_int64(st, 1, row.num);
	sqlite3_bind_text(st, 2, ts->run, -1, SQLITE_STATIC);
	store_bind_bytes(st, 3, ts->task);
	store_bind_bytes(st, 4, ts->name);
	if (ts->parent[0])
		store_bind_bytes(st, 5, ts->parent);
	store_bind_bytes(st, 6, ts->node);
	sqlite3_bind_text(st, 7, ts->backend, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 8, ts->started_ns);
	sqlite3_bind_int64(st, 9, a->now_ns);
	if (store_step_insert(st))
		return WEFT_EDB;
	if (sqlite3_changes(w->s->db) == 0)
		DUPLICATE(v, "task %s: start or record stored already",
			  ts->task);
	else
		STORED(v);
	return WEFT_OK;
}

void weft_store_apply_task_start(weft_store_writer *w,
				 const weft_task_start *ts, int64_t now_ns,
				 weft_verdict *v)
{
	struct task_start_arg a = {ts, now_ns};
	in_savepoint(w, task_start, &a, v);
}

/* ---- Paths and artifacts ---- */

static uint64_t intern_hash(int kind, const void *value, int len)
{
	/* FNV-1a; an artifact's bytes are a hash already. */
	uint64_t h = 0xcbf29ce484222325ULL ^ (uint64_t)kind;
	const uint8_t *p = value;
	for (int i = 0; i < len; i++)
		h = (h ^ p[i]) * 0x100000001b3ULL;
	return h ? h : 1;
}

/* store_intern_fn for the writer: the cache, else insert-or-look-up. */
static int writer_intern(void *ctx, int kind, const void *value, int len,
			 sqlite3_int64 *id)
{
	weft_store_writer *w = ctx;
	uint64_t h = intern_hash(kind, value, len);
	struct intern_entry *e;
	for (size_t i = h & (INTERN_CACHE_SLOTS - 1);;
	     i = (i + 1) & (INTERN_CACHE_SLOTS - 1)) {
		e = &w->interned[i];
		if (!e->hash)
			break;
		if (e->hash == h && e->len == len &&
		    !memcmp(e->key, value, (size_t)len)) {
			*id = e->id;
			return WEFT_OK;
		}
	}
	static const int ins_of[] = {[STORE_INTERN_PATH] = W_PATH_INS,
				     [STORE_INTERN_ARTIFACT] = W_ARTIFACT_INS,
				     [STORE_INTERN_FS] = W_FS_INS};
	static const int get_of[] = {[STORE_INTERN_PATH] = PUT_PATH_GET,
				     [STORE_INTERN_ARTIFACT] = PUT_ARTIFACT_GET,
				     [STORE_INTERN_FS] = PUT_FS_GET};
	/* A value is either stored already (a run reading the inputs of
	 * earlier runs, writing its outputs again) or new (another job's
	 * files), mostly many in a row: the order of the last one saves
	 * the second statement. */
	int get = get_of[kind];
	int err;
	if (w->intern_stored[kind]) {
		bool added;
		err = store_intern(w->s, w->put[get], w->put[get + 1], value,
				   len, id, &added);
		if (err)
			return err;
		w->intern_stored[kind] = !added;
	} else {
		sqlite3_stmt *st = stmt(w, ins_of[kind]);
		sqlite3_bind_blob(st, 1, value, len, SQLITE_STATIC);
		if (store_step_insert(st))
			return WEFT_EDB;
		if (sqlite3_changes(w->s->db) == 1) {
			*id = sqlite3_last_insert_rowid(w->s->db);
		} else {
			err = store_intern(w->s, w->put[get], w->put[get + 1],
					   value, len, id, NULL);
			if (err)
				return err;
			w->intern_stored[kind] = true;
		}
	}
	if (w->ninterned + 1 > INTERN_CACHE_MAX) {
		intern_drop(w);
		return WEFT_OK; /* the next lookup starts a new cache */
	}
	uint8_t *key = malloc((size_t)len);
	if (!key)
		return WEFT_OK; /* a cache: the row is stored either way */
	memcpy(key, value, (size_t)len);
	e->hash = h;
	e->id = *id;
	e->len = len;
	e->key = key;
	w->intern_used[w->ninterned++] = (uint32_t)(e - w->interned);
	w->intern_adds++;
	return WEFT_OK;
}

/* ---- Fragments ---- */

struct fragment_arg {
	const uint8_t *env;
	size_t len;
	const weft_envelope *e;
	const weft_fragment *f;
	int64_t now_ns;
};

/* The task identity's engine ids as "key=value" lines. */
static char *engine_text(const weft_task_identity *t)
{
	size_t n = 1;
	for (uint32_t i = 0; i < t->nengine; i++)
		n += strlen(t->engine[i].key) + strlen(t->engine[i].value) + 2;
	char *s = malloc(n), *p = s;
	if (!s)
		return NULL;
	*p = '\0';
	for (uint32_t i = 0; i < t->nengine; i++)
		p += sprintf(p, "%s=%s\n", t->engine[i].key,
			     t->engine[i].value);
	return s;
}

/* A new run for a fragment, with its task. */
static int run_add(weft_store_writer *w, const struct fragment_arg *a,
		   sqlite3_int64 job, sqlite3_int64 writer, sqlite3_int64 *run)
{
	const weft_report *r = &a->f->report;
	sqlite3_stmt *st = stmt(w, W_RUN_ADD);
	sqlite3_bind_text(st, 1, r->run_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, a->e->job, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, r->backend, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, r->node, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 5, r->exit_code);
	sqlite3_bind_int64(st, 6, r->started_ns);
	sqlite3_bind_int64(st, 7, r->ended_ns);
	sqlite3_bind_int64(st, 8, (sqlite3_int64)r->dropped_events);
	if (store_step_insert(st))
		return WEFT_EDB;
	*run = sqlite3_last_insert_rowid(w->s->db);

	const weft_fragment *f = a->f;
	char *engine = engine_text(&f->task);
	if (!engine)
		return WEFT_ENOMEM;
	st = stmt(w, W_TASK_ADD);
	sqlite3_bind_int64(st, 1, *run);
	sqlite3_bind_int64(st, 2, job);
	sqlite3_bind_int64(st, 3, writer);
	store_bind_bytes(st, 4, f->task.id);
	store_bind_bytes(st, 5, f->task.name);
	store_bind_bytes(st, 6, f->task.parent[0] ? f->task.parent : NULL);
	store_bind_bytes(st, 7, engine);
	store_bind_bytes(st, 8, f->preflight);
	sqlite3_bind_int64(st, 9, f->nparts);
	int err = store_step_insert(st);
	free(engine);
	return err ? WEFT_EDB : WEFT_OK;
}

/* The run a fragment merges into: a new one for the first part that
 * arrives, else the existing one, which must be this writer's in this job
 * (a run id is not a capability: another writer naming it is refused). */
static int merge_run(weft_store_writer *w, const struct fragment_arg *a,
		     sqlite3_int64 job, sqlite3_int64 writer,
		     sqlite3_int64 *run, bool *created, weft_verdict *v)
{
	const weft_report *r = &a->f->report;
	sqlite3_stmt *st = stmt(w, W_RUN_GET);
	sqlite3_bind_text(st, 1, r->run_id, -1, SQLITE_STATIC);
	int err = query_row(st);
	if (err == WEFT_OK) {
		*run = sqlite3_column_int64(st, 0);
		*created = false;
		if (sqlite3_column_type(st, 1) == SQLITE_NULL ||
		    sqlite3_column_int64(st, 1) != job ||
		    sqlite3_column_int64(st, 2) != writer)
			REJECT(v, WEFT_REJECT_MISMATCH,
			       "run %s belongs to another writer or job",
			       r->run_id);
		return WEFT_OK;
	}
	if (err != WEFT_ENOTFOUND)
		return err;
	*created = true;
	return run_add(w, a, job, writer, run);
}

static int next_seq(weft_store_writer *w, int which, sqlite3_int64 run,
		    sqlite3_int64 *seq)
{
	sqlite3_stmt *st = stmt(w, which);
	sqlite3_bind_int64(st, 1, run);
	int err = query_row(st);
	if (!err)
		*seq = sqlite3_column_int64(st, 0);
	return err == WEFT_ENOTFOUND ? WEFT_EDB : err;
}

/* The records of one part: processes and warnings after those of the
 * parts already merged; a file path a second time in one run is refused
 * (a wrapper splits records, it never repeats one). */
static int merge_records(weft_store_writer *w, const weft_report *r,
			 sqlite3_int64 run, bool created, weft_verdict *v)
{
	sqlite3_int64 pseq = 0, wseq = 0;
	int err = WEFT_OK;
	if (!created) {
		sqlite3_stmt *st = stmt(w, W_TASK_PART);
		sqlite3_bind_int64(st, 1, run);
		if (store_step_insert(st))
			return WEFT_EDB;
		st = stmt(w, W_RUN_DROPPED);
		sqlite3_bind_int64(st, 1, run);
		sqlite3_bind_int64(st, 2, (sqlite3_int64)r->dropped_events);
		if (store_step_insert(st))
			return WEFT_EDB;
		if ((r->nprocesses &&
		     (err = next_seq(w, W_PROC_NEXT, run, &pseq))) ||
		    (r->nwarnings &&
		     (err = next_seq(w, W_WARN_NEXT, run, &wseq))))
			return err;
	}
	for (size_t i = 0; i < r->nprocesses && !err; i++)
		err = store_put_process(w->put[PUT_PROCESS], run,
					(size_t)pseq + i, &r->processes[i]);
	for (size_t i = 0; i < r->nfiles && !err; i++)
		err = store_put_file_with(w->put, writer_intern, w,
					  run, &r->files[i]);
	for (size_t i = 0; i < r->nwarnings && !err; i++) {
		sqlite3_stmt *st = w->put[PUT_WARNING];
		sqlite3_bind_int64(st, 1, run);
		sqlite3_bind_int64(st, 2, wseq + (sqlite3_int64)i);
		store_bind_bytes(st, 3, r->warnings[i]);
		err = store_step_insert(st);
	}
	if (err == WEFT_EINVAL || err == WEFT_ETOOBIG) {
		REJECT(v, WEFT_REJECT_MALFORMED,
		       "a record repeats one stored for run %s", r->run_id);
		return WEFT_OK;
	}
	return err;
}

/* The payload's hash: the one its signature check computed (a 1.2 MB
 * fragment takes about 1.5 ms to hash), else computed here. */
static void envelope_hash(const weft_envelope *e, uint8_t out[32])
{
	if (e->payload_hashed)
		memcpy(out, e->payload_hash, 32);
	else
		weft_payload_hash(e->payload, e->payload_len, out);
}

static int fragment(weft_store_writer *w, const void *arg, weft_verdict *v)
{
	const struct fragment_arg *a = arg;
	const weft_envelope *e = a->e;
	char pk[WEFT_PUBKEY_TEXT_BYTES];
	weft_pubkey_to_text(e->writer, pk);
	struct job_row job;
	int err = job_for_request(w, e->job, &job, v);
	if (err || v->status == WEFT_ACK_REJECTED)
		return err;
	sqlite3_int64 writer;
	err = writer_get(w, job.num, e->writer, &writer);
	if (err == WEFT_ENOTFOUND) {
		if (job.ended)
			REJECT(v, WEFT_REJECT_JOB_ENDED,
			       "job %s has ended and writer %.16s was not "
			       "enrolled",
			       e->job, pk);
		else
			REJECT(v, WEFT_REJECT_UNENROLLED,
			       "writer %.16s is not enrolled in job %s", pk,
			       e->job);
		return WEFT_OK;
	}
	if (err)
		return err;

	uint8_t hash[32];
	envelope_hash(e, hash);
	sqlite3_stmt *st = stmt(w, W_ENV_GET);
	sqlite3_bind_int64(st, 1, job.num);
	sqlite3_bind_int64(st, 2, writer);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)e->seq);
	err = query_row(st);
	if (err == WEFT_OK) {
		bool same = sqlite3_column_bytes(st, 0) == 32 &&
			    !memcmp(sqlite3_column_blob(st, 0), hash, 32);
		if (same)
			DUPLICATE(v, "seq %llu already stored",
				  (unsigned long long)e->seq);
		else
			REJECT(v, WEFT_REJECT_REPLAY,
			       "seq %llu of writer %.16s was stored with "
			       "different content",
			       (unsigned long long)e->seq, pk);
		return WEFT_OK;
	}
	if (err != WEFT_ENOTFOUND)
		return err;
	if (e->seq > INT64_MAX) {
		REJECT(v, WEFT_REJECT_OVERSIZE, "seq out of range");
		return WEFT_OK;
	}
	if (store_check_report(&a->f->report)) {
		REJECT(v, WEFT_REJECT_MALFORMED, "fragment report incomplete");
		return WEFT_OK;
	}

	st = stmt(w, W_ENV_ADD);
	sqlite3_bind_int64(st, 1, job.num);
	sqlite3_bind_int64(st, 2, writer);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)e->seq);
	sqlite3_bind_blob(st, 4, hash, 32, SQLITE_STATIC);
	sqlite3_bind_blob(st, 5, a->env, (int)a->len, SQLITE_STATIC);
	sqlite3_bind_int64(st, 6, a->now_ns);
	if (store_step_insert(st))
		return WEFT_EDB;

	sqlite3_int64 run;
	bool created;
	err = merge_run(w, a, job.num, writer, &run, &created, v);
	if (err || v->status == WEFT_ACK_REJECTED)
		return err;
	err = merge_records(w, &a->f->report, run, created, v);
	if (err || v->status == WEFT_ACK_REJECTED)
		return err;
	STORED(v);
	return WEFT_OK;
}

static int cmp_path(const void *x, const void *y)
{
	return strcmp(*(char *const *)x, *(char *const *)y);
}

/* Whether a report names one path in two file records (the file_io key
 * (run, path) would refuse the second). */
static int paths_repeat(const weft_report *r, bool *repeat)
{
	*repeat = false;
	/* A wrapper sends its records in path order (the classifier's): one
	 * pass tells, and only records in any other order are sorted. */
	size_t k = 1;
	while (k < r->nfiles &&
	       strcmp(r->files[k - 1].path, r->files[k].path) < 0)
		k++;
	if (k >= r->nfiles)
		return WEFT_OK;
	char **p = malloc(r->nfiles * sizeof(*p));
	if (!p)
		return WEFT_ENOMEM;
	for (size_t i = 0; i < r->nfiles; i++)
		p[i] = r->files[i].path;
	qsort(p, r->nfiles, sizeof(*p), cmp_path);
	for (size_t i = 1; i < r->nfiles && !*repeat; i++)
		*repeat = !strcmp(p[i - 1], p[i]);
	free(p);
	return WEFT_OK;
}

/*
 * The common case without a savepoint: a savepoint makes SQLite copy every
 * page a request touches that the transaction had touched before (about
 * as much work as the inserts), and nearly every fragment starts a new
 * run, whose refusals can all be found before the first write. So:
 * lookups and checks first, then the envelope (whose insert is also the
 * duplicate check: a conflict writes nothing), then the run and its
 * records. A failure after the first write (a database error, or a
 * refusal the checks missed) marks the transaction failed: it rolls back
 * at commit and the caller applies the batch again, every request in its
 * own savepoint (weft_store_writer_redo). Returns true when the request
 * needs the savepoint path instead (its run exists: a later part, or a
 * refusal that needs the run's rows) and nothing was written.
 */
static bool fragment_unguarded(weft_store_writer *w,
			       const struct fragment_arg *a, weft_verdict *v)
{
	const weft_envelope *e = a->e;
	const weft_report *r = &a->f->report;
	struct job_row job;
	sqlite3_int64 writer;
	bool repeat;
	int err = job_for_request(w, e->job, &job, v);
	if (!err && v->status != WEFT_ACK_REJECTED)
		err = writer_get(w, job.num, e->writer, &writer);
	if (err || v->status == WEFT_ACK_REJECTED || e->seq > INT64_MAX ||
	    store_check_report(r))
		return true; /* refused or failed on the path that says why */
	if ((err = paths_repeat(r, &repeat)))
		goto failed_clean;
	if (repeat)
		return true;
	sqlite3_stmt *st = stmt(w, W_RUN_GET);
	sqlite3_bind_text(st, 1, r->run_id, -1, SQLITE_STATIC);
	err = query_row(st);
	if (err == WEFT_OK)
		return true;
	if (err != WEFT_ENOTFOUND)
		goto failed_clean;

	uint8_t hash[32];
	envelope_hash(e, hash);
	st = stmt(w, W_ENV_ADD);
	sqlite3_bind_int64(st, 1, job.num);
	sqlite3_bind_int64(st, 2, writer);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)e->seq);
	sqlite3_bind_blob(st, 4, hash, 32, SQLITE_STATIC);
	sqlite3_bind_blob(st, 5, a->env, (int)a->len, SQLITE_STATIC);
	sqlite3_bind_int64(st, 6, a->now_ns);
	if (store_step_insert(st)) {
		err = WEFT_EDB;
		goto failed_clean;
	}
	if (sqlite3_changes(w->s->db) == 0)
		return true; /* stored before: the savepoint path says how */

	sqlite3_int64 run;
	err = run_add(w, a, job.num, writer, &run);
	if (!err)
		err = merge_records(w, r, run, true, v);
	if (!err && v->status != WEFT_ACK_REJECTED) {
		STORED(v);
		return false;
	}
	w->failed = true;
	if (!err) {
		store_verdict(
			v, WEFT_ACK_RETRY, WEFT_REJECT_NONE, "%s",
			"store error: the transaction is being rolled back");
		return false;
	}
failed_clean:
	/* Some errors (a full disk, I/O) make SQLite roll the whole
	 * transaction back itself. */
	if (sqlite3_get_autocommit(w->s->db))
		w->failed = true;
	if (err == WEFT_ENOMEM)
		store_verdict(v, WEFT_ACK_RETRY, WEFT_REJECT_NONE,
			      "out of memory");
	else
		db_failed(w, v);
	return false;
}

void weft_store_apply_refused(weft_store_writer *w, const weft_envelope *e,
			      const weft_fragment *f, int64_t now_ns,
			      const weft_verdict *v)
{
	struct job_row job;
	sqlite3_int64 writer;
	if (w->failed || v->status != WEFT_ACK_REJECTED || e->seq > INT64_MAX ||
	    job_get(w, e->job, &job) ||
	    writer_get(w, job.num, e->writer, &writer)) {
		sqlite3_reset(w->st[W_JOB_GET]);
		sqlite3_reset(w->st[W_WRITER_GET]);
		return; /* not an enrolled writer's: counted, not stored */
	}
	sqlite3_stmt *st = stmt(w, W_REFUSAL_ADD);
	sqlite3_bind_int64(st, 1, job.num);
	sqlite3_bind_int64(st, 2, writer);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)e->seq);
	store_bind_bytes(st, 4, f ? f->task.id : "");
	store_bind_bytes(st, 5, f ? f->task.name : "");
	store_bind_bytes(st, 6, f ? f->report.node : "");
	sqlite3_bind_int(st, 7, v->reason);
	store_bind_bytes(st, 8, v->detail);
	sqlite3_bind_int64(st, 9, now_ns);
	int err = store_step_insert(st);
	sqlite3_reset(w->st[W_JOB_GET]);
	sqlite3_reset(w->st[W_WRITER_GET]);
	sqlite3_reset(st);
	/* A failed insert fails the batch like any (it is applied again). */
	if (err)
		w->failed = true;
}

void weft_store_apply_fragment(weft_store_writer *w, const uint8_t *env,
			       size_t len, const weft_envelope *e,
			       const weft_fragment *f, int64_t now_ns,
			       weft_verdict *v)
{
	struct fragment_arg a = {env, len, e, f, now_ns};
	memset(v, 0, sizeof(*v));
	if (!w->isolated && !w->failed) {
		bool guard = fragment_unguarded(w, &a, v);
		for (int i = W_JOB_GET; i < W_NSTMT; i++)
			sqlite3_reset(w->st[i]);
		if (!guard)
			return;
		memset(v, 0, sizeof(*v));
	}
	in_savepoint(w, fragment, &a, v);
	weft_store_apply_refused(w, e, f, now_ns, v);
}

/* ---- Checking an envelope before it is applied ---- */

int weft_envelope_check(const uint8_t *env, size_t len, weft_envelope *e,
			weft_fragment *f, weft_verdict *v)
{
	bool signed_ok;
	int err = weft_envelope_check_signed(env, len, e, f, v, &signed_ok);
	if (err)
		weft_fragment_release(f);
	return err;
}

int weft_envelope_check_signed(const uint8_t *env, size_t len, weft_envelope *e,
			       weft_fragment *f, weft_verdict *v,
			       bool *signed_ok)
{
	memset(v, 0, sizeof(*v));
	*signed_ok = false;
	weft_fragment_init(f);
	int err = weft_envelope_decode(env, len, e);
	if (err) {
		REJECT(v,
		       err == WEFT_ETOOBIG ? WEFT_REJECT_OVERSIZE
					   : WEFT_REJECT_MALFORMED,
		       "envelope: %s", weft_strerror(err));
		return err;
	}
	err = weft_envelope_verify(e);
	if (err) {
		REJECT(v, WEFT_REJECT_BAD_SIGNATURE,
		       "seq %llu: signature does not verify",
		       (unsigned long long)e->seq);
		return err;
	}
	*signed_ok = true;
	err = weft_fragment_decode(e->payload, e->payload_len, f);
	if (err) {
		REJECT(v,
		       err == WEFT_ETOOBIG ? WEFT_REJECT_OVERSIZE
					   : WEFT_REJECT_MALFORMED,
		       "seq %llu: fragment: %s", (unsigned long long)e->seq,
		       weft_strerror(err));
		return err;
	}
	if (strcmp(f->job, e->job) || f->seq != e->seq ||
	    memcmp(f->writer, e->writer, WEFT_PUBKEY_BYTES)) {
		REJECT(v, WEFT_REJECT_MISMATCH,
		       "seq %llu: the fragment names another job, writer or "
		       "seq than its envelope",
		       (unsigned long long)e->seq);
		return WEFT_EINVAL;
	}
	return WEFT_OK;
}

int weft_store_ingest_envelope(weft_store_writer *w, const uint8_t *env,
			       size_t len, int64_t now_ns, weft_verdict *v)
{
	weft_envelope e;
	weft_fragment *f = malloc(sizeof(*f));
	if (!f)
		return WEFT_ENOMEM;
	int err = weft_envelope_check(env, len, &e, f, v);
	if (err) {
		free(f);
		return WEFT_OK; /* the verdict says why */
	}
	for (int round = 0; round < 2; round++) {
		err = weft_store_writer_begin(w);
		if (!err) {
			weft_store_apply_fragment(w, env, len, &e, f, now_ns,
						  v);
			err = weft_store_writer_commit(w);
		}
		if (!err || !weft_store_writer_redo(w))
			break;
	}
	if (err)
		db_failed(w, v);
	weft_fragment_release(f);
	free(f);
	return err;
}
