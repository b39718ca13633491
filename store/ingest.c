/*
 * ingest.c - the fragment store's write side: job create and end, writer
 * enrolment, and idempotent ingest of signed envelopes, each merged into
 * the run (and task) it describes.
 *
 * A weft_store_writer holds its prepared statements for the life of the
 * coordinator: at thousands of fragments a second, preparing per request
 * would cost more than the inserts. Each request runs inside a savepoint
 * of the caller's batch transaction, so its verdict is all-or-nothing on
 * its own and the batch commits whatever the other requests did.
 */
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
	W_NSTMT
};

static const char *const writer_sql[W_NSTMT] = {
	[W_SAVEPOINT] = "SAVEPOINT req",
	[W_RELEASE] = "RELEASE req",
	[W_ROLLBACK_TO] = "ROLLBACK TO req",
	[W_JOB_GET] = "SELECT num, state, enrol_key FROM jobs WHERE id = ?1",
	[W_JOB_ADD] = "INSERT INTO jobs (id, enrol_key, state, created_ns, "
		      "command, user, host, cwd, git) "
		      "VALUES (?1, ?2, 'open', ?3, ?4, ?5, ?6, ?7, ?8)",
	[W_JOB_END] = "UPDATE jobs SET state = 'ended', ended_ns = ?2, "
		      "exit_code = ?3 WHERE num = ?1",
	[W_WRITER_GET] = "SELECT num FROM writers WHERE job = ?1 AND "
			 "pubkey = ?2",
	[W_WRITER_ADD] = "INSERT INTO writers (job, pubkey, enrolled_ns) "
			 "VALUES (?1, ?2, ?3)",
	[W_ENV_GET] = "SELECT payload_hash FROM envelopes WHERE job = ?1 AND "
		      "writer = ?2 AND seq = ?3",
	[W_ENV_ADD] = "INSERT INTO envelopes (job, writer, seq, payload_hash, "
		      "raw, stored_ns) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
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

struct job_row {
	sqlite3_int64 num;
	bool ended;
	uint8_t key[WEFT_MAC_BYTES];
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
};

static void caches_drop(weft_store_writer *w)
{
	w->job_cached = false;
	memset(w->writers, 0, WRITER_CACHE_SLOTS * sizeof(*w->writers));
	w->nwriters = 0;
}

int weft_store_writer_new(weft_store *s, weft_store_writer **out)
{
	*out = NULL;
	weft_store_writer *w = calloc(1, sizeof(*w));
	if (!w)
		return WEFT_ENOMEM;
	w->s = s;
	w->writers = calloc(WRITER_CACHE_SLOTS, sizeof(*w->writers));
	if (!w->writers) {
		free(w);
		return WEFT_ENOMEM;
	}
	/* A coordinator's connection writes thousands of rows a second: a
	 * larger page cache, and checkpoints (which copy the WAL into the
	 * database) less often. Both only affect this connection. */
	int err = store_exec(s, "PRAGMA cache_size = -65536") ||
				  store_exec(s,
					     "PRAGMA wal_autocheckpoint = 8192")
			  ? WEFT_EDB
			  : WEFT_OK;
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
	for (int i = 0; i < W_NSTMT; i++)
		sqlite3_finalize(w->st[i]);
	for (int i = 0; i < PUT_NSTMT; i++)
		sqlite3_finalize(w->put[i]);
	free(w->writers);
	free(w);
}

int weft_store_writer_begin(weft_store_writer *w)
{
	w->s->errmsg[0] = '\0';
	w->job_cached = false;
	return store_exec(w->s, "BEGIN IMMEDIATE");
}

int weft_store_writer_commit(weft_store_writer *w)
{
	if (store_exec(w->s, "COMMIT") == WEFT_OK)
		return WEFT_OK;
	store_save_errmsg(w->s);
	sqlite3_exec(w->s->db, "ROLLBACK", NULL, NULL, NULL);
	caches_drop(w);
	return WEFT_EDB;
}

void weft_store_writer_rollback(weft_store_writer *w)
{
	sqlite3_exec(w->s->db, "ROLLBACK", NULL, NULL, NULL);
	caches_drop(w);
}

/* ---- Verdicts ---- */

static void verdict(weft_verdict *v, int status, int reason, const char *fmt,
		    ...) __attribute__((format(printf, 4, 5)));

static void verdict(weft_verdict *v, int status, int reason, const char *fmt,
		    ...)
{
	v->status = status;
	v->reason = reason;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(v->detail, sizeof(v->detail), fmt, ap);
	va_end(ap);
}

#define STORED(v) verdict(v, WEFT_ACK_STORED, WEFT_REJECT_NONE, "%s", "")
#define DUPLICATE(v, ...)                                                      \
	verdict(v, WEFT_ACK_DUPLICATE, WEFT_REJECT_NONE, __VA_ARGS__)
#define REJECT(v, reason, ...)                                                 \
	verdict(v, WEFT_ACK_REJECTED, reason, __VA_ARGS__)

/* A database failure: nothing of this request stays, and the sender is
 * told to come back (the failure may be a full disk, not its fault). */
static void db_failed(weft_store_writer *w, weft_verdict *v)
{
	verdict(v, WEFT_ACK_RETRY, WEFT_REJECT_NONE, "store error: %s",
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
	if (run_stmt(w, W_SAVEPOINT)) {
		db_failed(w, v);
		return;
	}
	int err = fn(w, arg, v);
	if (err == WEFT_EDB || err == WEFT_ENOMEM) {
		if (err == WEFT_ENOMEM)
			verdict(v, WEFT_ACK_RETRY, WEFT_REJECT_NONE,
				"out of memory");
		else
			db_failed(w, v);
	}
	/* No statement may stay in the middle of a result across the
	 * savepoint's end. */
	for (int i = W_JOB_GET; i < W_NSTMT; i++)
		sqlite3_reset(w->st[i]);
	if (err || v->status == WEFT_ACK_REJECTED)
		run_stmt(w, W_ROLLBACK_TO);
	run_stmt(w, W_RELEASE);
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

/* Whether a request's MAC is the one the job's token makes (refused with
 * "bad token" when not). */
static bool token_proved(const uint8_t want[WEFT_MAC_BYTES],
			 const uint8_t got[WEFT_MAC_BYTES], const char *what,
			 const char *job, weft_verdict *v)
{
	if (weft_mac_equal(want, got))
		return true;
	REJECT(v, WEFT_REJECT_BAD_TOKEN, "%s not proved with job %s's token",
	       what, job);
	return false;
}

static int job_create(weft_store_writer *w, const void *arg, weft_verdict *v)
{
	const weft_job_info *j = arg;
	uint8_t key[WEFT_MAC_BYTES];
	weft_enrol_key(j->token, key);
	struct job_row row;
	int err = job_get(w, j->id, &row);
	if (err == WEFT_OK) {
		if (weft_mac_equal(key, row.key))
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
	sqlite3_bind_blob(st, 2, key, WEFT_MAC_BYTES, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, j->created_ns);
	store_bind_bytes(st, 4, j->command ? j->command : "");
	store_bind_bytes(st, 5, j->user);
	store_bind_bytes(st, 6, j->host);
	store_bind_bytes(st, 7, j->cwd);
	store_bind_bytes(st, 8, j->git);
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
	const uint8_t *mac;
};

static int job_end(weft_store_writer *w, const void *arg, weft_verdict *v)
{
	const struct job_end_arg *a = arg;
	struct job_row row;
	int err = job_for_request(w, a->job, &row, v);
	if (err || v->status == WEFT_ACK_REJECTED)
		return err;
	uint8_t mac[WEFT_MAC_BYTES];
	weft_job_end_mac(row.key, a->job, a->exit_code, mac);
	if (!token_proved(mac, a->mac, "job end", a->job, v))
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
			      const uint8_t mac[WEFT_MAC_BYTES],
			      weft_verdict *v)
{
	struct job_end_arg a = {job, exit_code, ended_ns, mac};
	in_savepoint(w, job_end, &a, v);
}

/* ---- Enrolment ---- */

struct enrol_arg {
	const char *job;
	const uint8_t *pk, *mac;
	int64_t now_ns;
};

static int enrol(weft_store_writer *w, const void *arg, weft_verdict *v)
{
	const struct enrol_arg *a = arg;
	struct job_row row;
	int err = job_for_request(w, a->job, &row, v);
	if (err || v->status == WEFT_ACK_REJECTED)
		return err;
	uint8_t mac[WEFT_MAC_BYTES];
	weft_enrol_mac(row.key, a->job, a->pk, mac);
	if (!token_proved(mac, a->mac, "enrolment", a->job, v))
		return WEFT_OK;
	sqlite3_int64 num;
	err = writer_get(w, row.num, a->pk, &num);
	if (err == WEFT_OK) {
		/* Even after the end: a late spool enrols again first. */
		DUPLICATE(v, "writer already enrolled");
		return WEFT_OK;
	}
	if (err != WEFT_ENOTFOUND)
		return err;
	if (row.ended) {
		REJECT(v, WEFT_REJECT_JOB_ENDED, "job %s has ended", a->job);
		return WEFT_OK;
	}
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
			    const uint8_t mac[WEFT_MAC_BYTES], int64_t now_ns,
			    weft_verdict *v)
{
	struct enrol_arg a = {job, pk, mac, now_ns};
	in_savepoint(w, enrol, &a, v);
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
	st = stmt(w, W_RUN_ADD);
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
	err = store_step_insert(st);
	free(engine);
	return err ? WEFT_EDB : WEFT_OK;
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
		err = store_put_file(w->s, w->put, run, &r->files[i]);
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
	weft_payload_hash(e->payload, e->payload_len, hash);
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

void weft_store_apply_fragment(weft_store_writer *w, const uint8_t *env,
			       size_t len, const weft_envelope *e,
			       const weft_fragment *f, int64_t now_ns,
			       weft_verdict *v)
{
	struct fragment_arg a = {env, len, e, f, now_ns};
	in_savepoint(w, fragment, &a, v);
}

/* ---- Checking an envelope before it is applied ---- */

int weft_envelope_check(const uint8_t *env, size_t len, weft_envelope *e,
			weft_fragment *f, weft_verdict *v)
{
	memset(v, 0, sizeof(*v));
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
		weft_fragment_release(f);
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
	err = weft_store_writer_begin(w);
	if (!err) {
		weft_store_apply_fragment(w, env, len, &e, f, now_ns, v);
		err = weft_store_writer_commit(w);
	}
	if (err)
		db_failed(w, v);
	weft_fragment_release(f);
	free(f);
	return err;
}
