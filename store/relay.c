/*
 * relay.c - copying signed fragments from one store into another (`weft
 * pull`): jobs with their token-derived keys, enrolled writers, then every
 * envelope through the coordinator's own check and apply path.
 *
 * Why a relay re-verifies instead of copying rows: the destination must be
 * able to say of every fragment it holds what a coordinator says of it,
 * whatever the source is (a file someone handed over, a coordinator across
 * a network). So each envelope is decoded and its signature checked here
 * (weft_envelope_check), then applied like a fresh delivery
 * (weft_store_apply_fragment): deduplicated by (job, writer, seq), a
 * replay with other content refused, merged into its run. Only the job
 * record and the writer list are taken as the source has them: they are
 * what the signatures are checked against, and no store holds anything
 * that would prove them (see weft/store.h).
 *
 * The source is read in one snapshot (a read transaction) and never
 * written. The destination is written in batches (WEFT_RELAY_BATCH
 * envelopes or RELAY_BATCH_BYTES, whichever comes first), each request
 * in its own savepoint, so a refused fragment never undoes another.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "store_internal.h"
#include <weft/base.h>

/* Envelope bytes applied in one transaction at most (the WAL grows by
 * about this much before a commit). */
#define RELAY_BATCH_BYTES ((size_t)64 * 1024 * 1024)

/* The schema version that added jobs, writers and envelopes. */
#define RELAY_MIN_SCHEMA_VERSION 2

enum { R_JOB_GET, R_JOB_ADD, R_JOB_END, R_WRITER_GET, R_WRITER_ADD, R_NSTMT };

static const char *const relay_sql[R_NSTMT] = {
	[R_JOB_GET] = "SELECT num, state, enrol_key, verifier FROM jobs "
		      "WHERE id = ?1",
	[R_JOB_ADD] = "INSERT INTO jobs (id, enrol_key, state, created_ns, "
		      "ended_ns, exit_code, command, user, host, cwd, git, "
		      "verifier) "
		      "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, "
		      "?12)",
	[R_JOB_END] = "UPDATE jobs SET state = 'ended', ended_ns = ?2, "
		      "exit_code = ?3 WHERE num = ?1 AND state = 'open'",
	[R_WRITER_GET] = "SELECT num FROM writers WHERE job = ?1 AND "
			 "pubkey = ?2",
	[R_WRITER_ADD] = "INSERT INTO writers (job, pubkey, enrolled_ns) "
			 "VALUES (?1, ?2, ?3)",
};

struct pending {
	char job[WEFT_JOB_ID_BYTES + 1];
	uint8_t pk[WEFT_PUBKEY_BYTES];
	uint64_t seq; /* as the source files it (pk: e's writer) */
	uint8_t *env; /* owned copy */
	size_t len;
	weft_verdict v;
};

struct weft_relay {
	weft_store *s;
	weft_store_writer *w;
	sqlite3_stmt *st[R_NSTMT];
	weft_relay_reject_fn rejected;
	void *ctx;
	bool in_tx;
	/* The open transaction holds job or writer rows (never together
	 * with envelopes: a batch of envelopes can then be applied again
	 * on its own, see batch_redo). */
	bool tx_rows;
	/* The envelopes of the open transaction, kept (copied) until it
	 * committed: their verdicts count only then, and a batch the store
	 * writer asks to redo (weft_store_writer_redo) is applied again. */
	struct pending *pend;
	size_t npend, pend_cap, pend_bytes;
	/* Counted when the batch commits: counts is what is stored. */
	weft_relay_counts counts, batch;
	/* The job last refused (and why): its writers and fragments are
	 * refused too. */
	char refused_job[WEFT_JOB_ID_BYTES + 1];
	int refused_reason;
	weft_fragment *frag; /* decode space, reused */
	/* weft_relay_set_progress: envelopes and bytes seen of total. */
	weft_progress_fn progress;
	void *progress_arg;
	uint64_t seen, seen_bytes, total;
};

static sqlite3_stmt *stmt(weft_relay *r, int i)
{
	sqlite3_reset(r->st[i]);
	sqlite3_clear_bindings(r->st[i]);
	return r->st[i];
}

int weft_relay_new(weft_store *dst, weft_relay_reject_fn rejected, void *ctx,
		   weft_relay **out)
{
	*out = NULL;
	weft_relay *r = calloc(1, sizeof(*r));
	if (!r)
		return WEFT_ENOMEM;
	r->s = dst;
	r->rejected = rejected;
	r->ctx = ctx;
	r->frag = malloc(sizeof(*r->frag));
	int err = r->frag ? weft_store_writer_new(dst, &r->w) : WEFT_ENOMEM;
	for (int i = 0; i < R_NSTMT && !err; i++)
		err = store_prepare(dst, relay_sql[i], &r->st[i]);
	if (err) {
		if (err == WEFT_EDB)
			store_save_errmsg(dst);
		weft_relay_free(r);
		return err;
	}
	weft_fragment_init(r->frag);
	*out = r;
	return WEFT_OK;
}

static void batch_drop(weft_relay *r)
{
	memset(&r->batch, 0, sizeof(r->batch));
	for (size_t i = 0; i < r->npend; i++)
		free(r->pend[i].env);
	r->npend = r->pend_bytes = 0;
	r->in_tx = r->tx_rows = false;
}

static void rollback(weft_relay *r)
{
	for (int i = 0; i < R_NSTMT; i++)
		sqlite3_reset(r->st[i]);
	if (r->in_tx)
		weft_store_writer_rollback(r->w);
	batch_drop(r);
}

void weft_relay_free(weft_relay *r)
{
	if (!r)
		return;
	if (r->w)
		rollback(r);
	for (int i = 0; i < R_NSTMT; i++)
		sqlite3_finalize(r->st[i]);
	weft_store_writer_free(r->w);
	free(r->pend);
	free(r->frag);
	free(r);
}

static int begin(weft_relay *r)
{
	if (r->in_tx)
		return WEFT_OK;
	if (weft_store_writer_begin(r->w)) {
		store_save_errmsg(r->s);
		return WEFT_EDB;
	}
	r->in_tx = true;
	return WEFT_OK;
}

static void counts_add(weft_relay_counts *to, const weft_relay_counts *c)
{
	uint64_t *a = (uint64_t *)to;
	const uint64_t *b = (const uint64_t *)c;
	for (size_t i = 0; i < sizeof(*c) / sizeof(uint64_t); i++)
		a[i] += b[i];
}

static void refuse(weft_relay *r, const char *job, const uint8_t *pk,
		   uint64_t seq, const weft_verdict *v);
static void count_fragment(weft_relay *r, const char *job, const uint8_t *pk,
			   uint64_t seq, const weft_verdict *v, bool report);

/* Apply the kept envelopes again in a new transaction (the store writer
 * then runs each in its own savepoint, so that one failing request does
 * not take the others with it). */
static int batch_redo(weft_relay *r)
{
	if (weft_store_writer_begin(r->w)) {
		store_save_errmsg(r->s);
		return WEFT_EDB;
	}
	for (size_t i = 0; i < r->npend; i++) {
		struct pending *p = &r->pend[i];
		weft_envelope e;
		if (weft_envelope_check(p->env, p->len, &e, r->frag, &p->v))
			continue; /* cannot happen: it passed before */
		weft_store_apply_fragment(r->w, p->env, p->len, &e, r->frag,
					  weft_real_ns(), &p->v);
		weft_fragment_release(r->frag);
	}
	return weft_store_writer_commit(r->w);
}

static int commit(weft_relay *r)
{
	if (!r->in_tx)
		return WEFT_OK;
	for (int i = 0; i < R_NSTMT; i++)
		sqlite3_reset(r->st[i]);
	int err = weft_store_writer_commit(r->w); /* rolls back on failure */
	if (err && r->npend && weft_store_writer_redo(r->w))
		err = batch_redo(r);
	/* A request that could not be stored (a database error in its own
	 * savepoint) fails the pull, though the others committed: a relay
	 * has nobody to answer "retry" to. */
	for (size_t i = 0; !err && i < r->npend; i++)
		if (r->pend[i].v.status == WEFT_ACK_RETRY) {
			snprintf(r->s->errmsg, sizeof(r->s->errmsg), "%.200s",
				 r->pend[i].v.detail);
			err = WEFT_EDB;
		}
	if (err) {
		if (!r->s->errmsg[0])
			store_save_errmsg(r->s);
	} else {
		for (size_t i = 0; i < r->npend; i++) {
			struct pending *p = &r->pend[i];
			count_fragment(r, p->job, p->pk, p->seq, &p->v, true);
		}
		counts_add(&r->counts, &r->batch);
	}
	batch_drop(r);
	return err;
}

int weft_relay_finish(weft_relay *r)
{
	return commit(r);
}

const weft_relay_counts *weft_relay_get_counts(const weft_relay *r)
{
	return &r->counts;
}

static void refuse(weft_relay *r, const char *job, const uint8_t *pk,
		   uint64_t seq, const weft_verdict *v)
{
	if (r->rejected)
		r->rejected(r->ctx, job, pk, seq, v);
}

/* A database failure in the middle of a batch: nothing of it stays. */
static int db_failed(weft_relay *r)
{
	store_save_errmsg(r->s);
	rollback(r);
	return WEFT_EDB;
}

/* ---- Jobs ---- */

struct job_row {
	sqlite3_int64 num;
	bool ended;
	uint8_t key[WEFT_MAC_BYTES];
	bool has_vk;
	uint8_t vk[WEFT_PUBKEY_BYTES];
};

/* Whether a job here and a source's job came from the same token: by
 * their verifiers, or (jobs an older weft made) their legacy keys. */
static bool same_token(const struct job_row *row, const weft_relay_job *j)
{
	if (row->has_vk || j->has_vk)
		return row->has_vk && j->has_vk &&
		       !memcmp(row->vk, j->vk, WEFT_PUBKEY_BYTES);
	return weft_mac_equal(row->key, j->key);
}

static int job_get(weft_relay *r, const char *id, struct job_row *row)
{
	sqlite3_stmt *st = stmt(r, R_JOB_GET);
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_DONE)
		return WEFT_ENOTFOUND;
	if (rc != SQLITE_ROW || sqlite3_column_bytes(st, 2) != WEFT_MAC_BYTES)
		return WEFT_EDB;
	row->num = sqlite3_column_int64(st, 0);
	row->ended = !strcmp((const char *)sqlite3_column_text(st, 1), "ended");
	memcpy(row->key, sqlite3_column_blob(st, 2), WEFT_MAC_BYTES);
	row->has_vk = sqlite3_column_bytes(st, 3) == WEFT_PUBKEY_BYTES;
	if (row->has_vk)
		memcpy(row->vk, sqlite3_column_blob(st, 3), WEFT_PUBKEY_BYTES);
	sqlite3_reset(st);
	return WEFT_OK;
}

static int job_add(weft_relay *r, const weft_relay_job *j)
{
	const weft_job_info *i = &j->info;
	sqlite3_stmt *st = stmt(r, R_JOB_ADD);
	sqlite3_bind_text(st, 1, i->id, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 2, j->key, WEFT_MAC_BYTES, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, j->ended ? "ended" : "open", -1,
			  SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, i->created_ns);
	if (j->ended) {
		sqlite3_bind_int64(st, 5, j->ended_ns);
		sqlite3_bind_int(st, 6, j->exit_code);
	}
	store_bind_job_text(st, 7, i);
	if (j->has_vk)
		sqlite3_bind_blob(st, 12, j->vk, WEFT_PUBKEY_BYTES,
				  SQLITE_STATIC);
	return store_step_insert(st);
}

/* has_key: the source holds a key or a verifier for the job (a store row
 * without either is refused: storing it would give the job a key nobody
 * derived). */
static int put_job(weft_relay *r, const weft_relay_job *j, bool has_key,
		   weft_verdict *v)
{
	memset(v, 0, sizeof(*v));
	r->refused_job[0] = '\0';
	/* A job starts a transaction: the writer's job cache never sees a
	 * row change under it. */
	int err = commit(r);
	if (!err)
		err = begin(r);
	if (err)
		return err;
	r->tx_rows = true;
	const char *id = j->info.id;
	r->batch.jobs++;
	struct job_row row;
	if (weft_job_id_check(id))
		store_verdict(v, WEFT_ACK_REJECTED, WEFT_REJECT_MALFORMED,
			      "the source's job id is not a job id");
	else if (!has_key)
		store_verdict(v, WEFT_ACK_REJECTED, WEFT_REJECT_MALFORMED,
			      "the source holds no key for job %s", id);
	else if ((err = job_get(r, id, &row)) == WEFT_OK) {
		if (!same_token(&row, j)) {
			store_verdict(
				v, WEFT_ACK_REJECTED, WEFT_REJECT_JOB_EXISTS,
				"job %s exists here with another token", id);
		} else {
			store_verdict(v, WEFT_ACK_DUPLICATE, WEFT_REJECT_NONE,
				      "job %s exists", id);
			if (j->ended && !row.ended) {
				sqlite3_stmt *st = stmt(r, R_JOB_END);
				sqlite3_bind_int64(st, 1, row.num);
				sqlite3_bind_int64(st, 2, j->ended_ns);
				sqlite3_bind_int(st, 3, j->exit_code);
				if (store_step_insert(st))
					return db_failed(r);
			}
		}
	} else if (err == WEFT_ENOTFOUND) {
		err = job_add(r, j);
		if (err == WEFT_EINVAL)
			store_verdict(
				v, WEFT_ACK_REJECTED, WEFT_REJECT_MALFORMED,
				"the source's record of job %s does not fit "
				"this store",
				id);
		else if (err)
			return db_failed(r);
		else
			store_verdict(v, WEFT_ACK_STORED, WEFT_REJECT_NONE,
				      "%s", "");
	} else {
		return db_failed(r);
	}
	if (v->status == WEFT_ACK_REJECTED) {
		r->batch.jobs_rejected++;
		snprintf(r->refused_job, sizeof(r->refused_job), "%s", id);
		r->refused_reason = v->reason;
		refuse(r, id, NULL, 0, v);
	} else if (v->status == WEFT_ACK_STORED) {
		r->batch.jobs_stored++;
	} else {
		r->batch.jobs_present++;
	}
	return WEFT_OK;
}

int weft_relay_put_job(weft_relay *r, const weft_relay_job *j, weft_verdict *v)
{
	return put_job(r, j, true, v);
}

/* ---- Writers ---- */

int weft_relay_put_writer(weft_relay *r, const char *job,
			  const uint8_t pk[WEFT_PUBKEY_BYTES],
			  int64_t enrolled_ns, weft_verdict *v)
{
	memset(v, 0, sizeof(*v));
	if (r->refused_job[0] && !strcmp(job, r->refused_job)) {
		store_verdict(v, WEFT_ACK_REJECTED, r->refused_reason,
			      "job %s was refused", job);
		return WEFT_OK;
	}
	int err = r->in_tx && !r->tx_rows ? commit(r) : WEFT_OK;
	if (!err)
		err = begin(r);
	if (err)
		return err;
	r->tx_rows = true;
	r->batch.writers++;
	struct job_row row;
	err = job_get(r, job, &row);
	if (err == WEFT_ENOTFOUND) {
		store_verdict(v, WEFT_ACK_REJECTED, WEFT_REJECT_UNKNOWN_JOB,
			      "no job %s", job);
		refuse(r, job, pk, 0, v);
		return WEFT_OK;
	}
	if (err)
		return db_failed(r);
	sqlite3_stmt *st = stmt(r, R_WRITER_GET);
	sqlite3_bind_int64(st, 1, row.num);
	sqlite3_bind_blob(st, 2, pk, WEFT_PUBKEY_BYTES, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc == SQLITE_ROW) {
		r->batch.writers_present++;
		store_verdict(v, WEFT_ACK_DUPLICATE, WEFT_REJECT_NONE,
			      "writer already enrolled");
		return WEFT_OK;
	}
	if (rc != SQLITE_DONE)
		return db_failed(r);
	st = stmt(r, R_WRITER_ADD);
	sqlite3_bind_int64(st, 1, row.num);
	sqlite3_bind_blob(st, 2, pk, WEFT_PUBKEY_BYTES, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, enrolled_ns);
	if (store_step_insert(st))
		return db_failed(r);
	r->batch.writers_stored++;
	store_verdict(v, WEFT_ACK_STORED, WEFT_REJECT_NONE, "%s", "");
	return WEFT_OK;
}

/* ---- Envelopes ---- */

static void count_fragment(weft_relay *r, const char *job, const uint8_t *pk,
			   uint64_t seq, const weft_verdict *v, bool report)
{
	switch (v->status) {
	case WEFT_ACK_STORED:
		r->batch.stored++;
		break;
	case WEFT_ACK_DUPLICATE:
		r->batch.duplicate++;
		break;
	default:
		r->batch.rejected++;
		if (v->reason > 0 && v->reason < WEFT_REJECT_REASON_MAX)
			r->batch.rejects[v->reason]++;
		if (report)
			refuse(r, job, pk, seq, v);
	}
}

/* Keep a copy of an applied envelope until its batch commits. */
static int pend_add(weft_relay *r, const char *job, const uint8_t *pk,
		    uint64_t seq, const uint8_t *env, size_t len,
		    const weft_verdict *v)
{
	if (store_grow((void **)&r->pend, &r->pend_cap, r->npend,
		       sizeof(*r->pend)))
		return WEFT_ENOMEM;
	struct pending *p = &r->pend[r->npend];
	p->env = malloc(len ? len : 1);
	if (!p->env)
		return WEFT_ENOMEM;
	memcpy(p->env, env, len);
	p->len = len;
	snprintf(p->job, sizeof(p->job), "%s", job);
	memcpy(p->pk, pk, WEFT_PUBKEY_BYTES);
	p->seq = seq;
	p->v = *v;
	r->npend++;
	r->pend_bytes += len;
	return WEFT_OK;
}

int weft_relay_put_envelope(weft_relay *r, const char *job, const uint8_t *pk,
			    uint64_t seq, const uint8_t *env, size_t len)
{
	weft_verdict v;
	memset(&v, 0, sizeof(v));
	/* Who a refusal names: the source's filing, else the envelope's. */
	uint8_t who[WEFT_PUBKEY_BYTES] = {0};
	weft_envelope e;
	if (pk)
		memcpy(who, pk, WEFT_PUBKEY_BYTES);
	else if (weft_envelope_decode(env, len, &e) == WEFT_OK) {
		memcpy(who, e.writer, WEFT_PUBKEY_BYTES);
		seq = e.seq;
	}
	int err = r->in_tx && r->tx_rows ? commit(r) : WEFT_OK;
	if (!err)
		err = begin(r);
	if (err)
		return err;
	r->batch.fragments++;
	if (r->progress)
		r->progress(r->progress_arg, ++r->seen, r->total,
			    r->seen_bytes += len);
	if (r->refused_job[0] && !strcmp(job, r->refused_job)) {
		/* Said once for the job, not once per fragment. */
		store_verdict(&v, WEFT_ACK_REJECTED, r->refused_reason,
			      "job %s was refused", job);
		count_fragment(r, job, who, seq, &v, false);
		return WEFT_OK;
	}
	if (weft_envelope_check(env, len, &e, r->frag, &v)) {
		count_fragment(r, job, who, seq, &v, true);
		return WEFT_OK;
	}
	if (strcmp(e.job, job) ||
	    (pk && (memcmp(e.writer, pk, WEFT_PUBKEY_BYTES) || e.seq != seq))) {
		weft_fragment_release(r->frag);
		store_verdict(
			&v, WEFT_ACK_REJECTED, WEFT_REJECT_MISMATCH,
			"the envelope names another job, writer or seq than "
			"the source files it under");
		count_fragment(r, job, who, seq, &v, true);
		return WEFT_OK;
	}
	weft_store_apply_fragment(r->w, env, len, &e, r->frag, weft_real_ns(),
				  &v);
	weft_fragment_release(r->frag);
	if ((err = pend_add(r, job, who, seq, env, len, &v))) {
		rollback(r);
		return err;
	}
	/* A "retry" verdict: the transaction failed (commit says whether
	 * the batch can be applied again) or the store did. */
	if (v.status == WEFT_ACK_RETRY || r->npend >= WEFT_RELAY_BATCH ||
	    r->pend_bytes >= RELAY_BATCH_BYTES)
		return commit(r);
	return WEFT_OK;
}

/* ---- Reading a source store ---- */

static int user_version(sqlite3 *db, int *version)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) !=
	    SQLITE_OK)
		return WEFT_EDB;
	int err = WEFT_EDB;
	if (sqlite3_step(st) == SQLITE_ROW) {
		*version = sqlite3_column_int(st, 0);
		err = WEFT_OK;
	}
	sqlite3_finalize(st);
	return err;
}

int weft_store_open_readonly(const char *db_path, weft_store **out)
{
	*out = NULL;
	struct stat sb;
	if (stat(db_path, &sb))
		return errno == ENOENT || errno == ENOTDIR ? WEFT_ENOTFOUND
							   : WEFT_EIO;
	if (!S_ISREG(sb.st_mode))
		return WEFT_EINVAL;
	store_make_private(db_path, false);
	weft_store *s = calloc(1, sizeof(*s));
	if (!s)
		return WEFT_ENOMEM;
	int rc = store_sqlite_open(db_path, &s->db, SQLITE_OPEN_READONLY);
	int version = 0, err = WEFT_OK;
	if (rc != SQLITE_OK)
		err = rc == SQLITE_NOMEM ? WEFT_ENOMEM : WEFT_EDB;
	if (!err) {
		sqlite3_extended_result_codes(s->db, 1);
		sqlite3_busy_timeout(s->db, WEFT_STORE_BUSY_TIMEOUT_MS);
		/* A file someone handed over may be crafted: its schema
		 * (views, defaults) calls no function with side effects,
		 * and damaged pages are found rather than read past (SQLite's
		 * advice for untrusted database files). */
		sqlite3_db_config(s->db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0,
				  (int *)NULL);
		sqlite3_db_config(s->db, SQLITE_DBCONFIG_DEFENSIVE, 1,
				  (int *)NULL);
		sqlite3_exec(s->db, "PRAGMA cell_size_check = ON", NULL, NULL,
			     NULL);
		err = user_version(s->db, &version);
	}
	if (!err && version < RELAY_MIN_SCHEMA_VERSION)
		err = WEFT_EVERSION;
	if (err) {
		if (s->db)
			store_save_errmsg(s);
		weft_store_close(s);
		return err;
	}
	*out = s;
	return WEFT_OK;
}

bool weft_store_same_file(weft_store *a, weft_store *b)
{
	const char *pa = sqlite3_db_filename(a->db, "main");
	const char *pb = sqlite3_db_filename(b->db, "main");
	struct stat sa, sb;
	if (!pa || !pb || !pa[0] || !pb[0] || stat(pa, &sa) || stat(pb, &sb))
		return false;
	return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

/* The columns job_from_row reads, for a query over jobs. */
#define JOB_ROW_SQL                                                            \
	"SELECT num, id, enrol_key, state, created_ns, "                       \
	"coalesce(ended_ns, 0), coalesce(exit_code, -1), "                     \
	"command, user, host, cwd, git, verifier FROM jobs "

/* A JOB_ROW_SQL row into j (j->info.command malloc'd, to be freed also
 * after an error); *has_key: the row holds a key. */
static int job_from_row(sqlite3_stmt *st, weft_relay_job *j, bool *has_key)
{
	memset(j, 0, sizeof(*j));
	weft_job_info *i = &j->info;
	store_column_fixed(st, 1, i->id, sizeof(i->id));
	*has_key = sqlite3_column_bytes(st, 2) == WEFT_MAC_BYTES;
	if (*has_key)
		memcpy(j->key, sqlite3_column_blob(st, 2), WEFT_MAC_BYTES);
	j->has_vk = sqlite3_column_bytes(st, 12) == WEFT_PUBKEY_BYTES;
	if (j->has_vk) {
		memcpy(j->vk, sqlite3_column_blob(st, 12), WEFT_PUBKEY_BYTES);
		*has_key = true;
	}
	const unsigned char *state = sqlite3_column_text(st, 3);
	j->ended = state && !strcmp((const char *)state, "ended");
	i->created_ns = sqlite3_column_int64(st, 4);
	j->ended_ns = sqlite3_column_int64(st, 5);
	j->exit_code = sqlite3_column_int(st, 6);
	return store_job_text_from_row(st, 7, i);
}

/* Which store an error came from: the source's message goes into the
 * destination's handle, so that weft_store_errmsg(dst) says it. */
static int source_failed(weft_relay *r, weft_store *src)
{
	snprintf(r->s->errmsg, sizeof(r->s->errmsg), "source store: %s",
		 sqlite3_errmsg(src->db));
	return WEFT_EDB;
}

/* One source row of a job's writers or envelopes, put into r. */
typedef int (*pull_row_fn)(weft_relay *r, sqlite3_stmt *st, const char *job);

/* Every row of sql (?1: the source job's num), in order, each put by
 * put_row until one fails. */
static int pull_rows(weft_relay *r, weft_store *src, const char *sql,
		     sqlite3_int64 num, const char *job, pull_row_fn put_row)
{
	sqlite3_stmt *st;
	if (store_prepare(src, sql, &st))
		return source_failed(r, src);
	sqlite3_bind_int64(st, 1, num);
	int rc, err = WEFT_OK;
	while (!err && (rc = sqlite3_step(st)) == SQLITE_ROW)
		err = put_row(r, st, job);
	if (!err && rc != SQLITE_DONE)
		err = source_failed(r, src);
	sqlite3_finalize(st);
	return err;
}

#define PULL_WRITERS_SQL                                                       \
	"SELECT pubkey, enrolled_ns FROM writers WHERE job = ?1 ORDER BY num"

static int pull_writer(weft_relay *r, sqlite3_stmt *st, const char *job)
{
	if (sqlite3_column_bytes(st, 0) != WEFT_PUBKEY_BYTES)
		return WEFT_OK; /* the schema's CHECK makes this impossible */
	uint8_t pk[WEFT_PUBKEY_BYTES];
	memcpy(pk, sqlite3_column_blob(st, 0), WEFT_PUBKEY_BYTES);
	weft_verdict v;
	return weft_relay_put_writer(r, job, pk, sqlite3_column_int64(st, 1),
				     &v);
}

#define PULL_ENVELOPES_SQL                                                     \
	"SELECT w.pubkey, e.seq, e.raw FROM envelopes e "                      \
	"JOIN writers w ON w.num = e.writer WHERE e.job = ?1 ORDER BY e.num"

static int pull_envelope(weft_relay *r, sqlite3_stmt *st, const char *job)
{
	const uint8_t *pk = sqlite3_column_blob(st, 0);
	if (sqlite3_column_bytes(st, 0) != WEFT_PUBKEY_BYTES)
		pk = NULL;
	uint64_t seq = (uint64_t)sqlite3_column_int64(st, 1);
	const uint8_t *raw = sqlite3_column_blob(st, 2);
	size_t len = (size_t)sqlite3_column_bytes(st, 2);
	return weft_relay_put_envelope(r, job, pk, seq,
				       raw ? raw : (const uint8_t *)"", len);
}

/* What a pull from src will see, for its progress. */
static int count_envelopes(weft_relay *r, weft_store *src, const char *job)
{
	sqlite3_stmt *st;
	if (store_prepare_job(src,
			      "SELECT count(*) FROM envelopes e JOIN jobs j "
			      "ON j.num = e.job WHERE ?1 IS NULL OR j.id = ?1",
			      job, &st))
		return source_failed(r, src);
	int err = WEFT_OK;
	if (sqlite3_step(st) == SQLITE_ROW)
		r->total += (uint64_t)sqlite3_column_int64(st, 0);
	else
		err = source_failed(r, src);
	sqlite3_finalize(st);
	return err;
}

void weft_relay_set_progress(weft_relay *r, weft_progress_fn fn, void *arg,
			     uint64_t expected)
{
	r->progress = fn;
	r->progress_arg = arg;
	r->total = expected;
}

int weft_relay_pull_store(weft_relay *r, weft_store *src, const char *job)
{
	int sv, dv;
	if (user_version(src->db, &sv))
		return source_failed(r, src);
	if (user_version(r->s->db, &dv)) {
		store_save_errmsg(r->s);
		return WEFT_EDB;
	}
	if (sv > dv)
		return WEFT_EVERSION;
	sqlite3_stmt *st;
	/* One snapshot: a coordinator writing the source meanwhile adds
	 * nothing half-seen. */
	if (store_exec(src, "BEGIN"))
		return source_failed(r, src);
	if (store_prepare(src,
			  JOB_ROW_SQL "WHERE ?1 IS NULL OR id = ?1 "
				      "ORDER BY created_ns, num",
			  &st)) {
		int err = source_failed(r, src);
		sqlite3_exec(src->db, "ROLLBACK", NULL, NULL, NULL);
		return err;
	}
	if (job)
		sqlite3_bind_text(st, 1, job, -1, SQLITE_STATIC);
	int rc, err = r->progress ? count_envelopes(r, src, job) : WEFT_OK;
	size_t njobs = 0;
	while (!err && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		njobs++;
		weft_relay_job j;
		bool has_key;
		err = job_from_row(st, &j, &has_key);
		sqlite3_int64 num = sqlite3_column_int64(st, 0);
		weft_verdict v;
		if (!err)
			err = put_job(r, &j, has_key, &v);
		if (!err && v.status != WEFT_ACK_REJECTED)
			err = pull_rows(r, src, PULL_WRITERS_SQL, num,
					j.info.id, pull_writer);
		if (!err)
			err = pull_rows(r, src, PULL_ENVELOPES_SQL, num,
					j.info.id, pull_envelope);
		free(j.info.command);
	}
	if (!err && rc != SQLITE_DONE)
		err = source_failed(r, src);
	sqlite3_finalize(st);
	sqlite3_exec(src->db, "ROLLBACK", NULL, NULL, NULL);
	if (!err)
		err = commit(r);
	if (!err && job && njobs == 0)
		err = WEFT_ENOTFOUND;
	return err;
}

/* ---- Exporting one page (a coordinator answering EXPORT) ---- */

/* The writers of a page: those after wafter, one more than fit to tell
 * whether more are left. */
static int export_writers(weft_store *s, sqlite3_int64 job, uint64_t wafter,
			  weft_export_page *p, bool *more_writers)
{
	sqlite3_stmt *st;
	int err = store_prepare(s,
				"SELECT num, pubkey, enrolled_ns FROM writers "
				"WHERE job = ?1 AND num > ?2 ORDER BY num "
				"LIMIT ?3",
				&st);
	if (err)
		return err;
	sqlite3_bind_int64(st, 1, job);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)wafter);
	sqlite3_bind_int64(st, 3, WEFT_MAX_EXPORT_WRITERS + 1);
	size_t cap = 0;
	int rc;
	*more_writers = false;
	p->wnext = wafter;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (p->nwriters == WEFT_MAX_EXPORT_WRITERS) {
			*more_writers = true;
			break;
		}
		if (sqlite3_column_bytes(st, 1) != WEFT_PUBKEY_BYTES)
			continue;
		if ((err = store_grow((void **)&p->writers, &cap, p->nwriters,
				      sizeof(*p->writers))))
			break;
		weft_export_writer *w = &p->writers[p->nwriters++];
		memcpy(w->pk, sqlite3_column_blob(st, 1), WEFT_PUBKEY_BYTES);
		w->enrolled_ns = sqlite3_column_int64(st, 2);
		p->wnext = (uint64_t)sqlite3_column_int64(st, 0);
	}
	if (!err && !*more_writers && rc != SQLITE_DONE)
		err = WEFT_EDB;
	sqlite3_finalize(st);
	return err;
}

/* The envelopes of a page, copied into arena (p->envs point into it once
 * it stops growing: offsets first, pointers at the end). */
static int export_envelopes(weft_store *s, sqlite3_int64 job, uint64_t after,
			    size_t max_bytes, weft_export_page *p,
			    weft_buf *arena)
{
	sqlite3_stmt *st;
	int err = store_prepare(s,
				"SELECT num, raw FROM envelopes WHERE job = ?1 "
				"AND num > ?2 ORDER BY num",
				&st);
	if (err)
		return err;
	sqlite3_bind_int64(st, 1, job);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)after);
	size_t cap = 0;
	int rc;
	p->next = after;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		size_t len = (size_t)sqlite3_column_bytes(st, 1);
		if (p->nenvs == WEFT_MAX_EXPORT_ENVELOPES ||
		    (p->nenvs && arena->len + len > max_bytes)) {
			p->more = true;
			break;
		}
		if (len > WEFT_MAX_ENVELOPE_BYTES)
			continue; /* no coordinator stores one: skip, not stop
				   */
		if ((err = store_grow((void **)&p->envs, &cap, p->nenvs,
				      sizeof(*p->envs))) ||
		    (err = weft_buf_append(arena, sqlite3_column_blob(st, 1),
					   len)))
			break;
		p->envs[p->nenvs].data = NULL;
		p->envs[p->nenvs++].len = len;
		p->next = (uint64_t)sqlite3_column_int64(st, 0);
	}
	if (!err && !p->more && rc != SQLITE_DONE)
		err = WEFT_EDB;
	sqlite3_finalize(st);
	size_t off = 0;
	for (size_t i = 0; i < p->nenvs; i++) {
		p->envs[i].data = arena->data + off;
		off += p->envs[i].len;
	}
	return err;
}

int weft_store_export(weft_store *s, const char *job, uint64_t after,
		      uint64_t wafter, size_t max_bytes, weft_buf *out)
{
	if (max_bytes > WEFT_MAX_EXPORT_BYTES)
		max_bytes = WEFT_MAX_EXPORT_BYTES;
	s->errmsg[0] = '\0';
	if (after > INT64_MAX || wafter > INT64_MAX)
		return WEFT_EINVAL;
	sqlite3_stmt *st;
	if (store_exec(s, "BEGIN"))
		return WEFT_EDB;
	int err = store_prepare(s, JOB_ROW_SQL "WHERE id = ?1", &st);
	weft_export_page p;
	memset(&p, 0, sizeof(p));
	weft_buf arena;
	weft_buf_init(&arena);
	sqlite3_int64 num = 0;
	if (!err) {
		sqlite3_bind_text(st, 1, job, -1, SQLITE_STATIC);
		int rc = sqlite3_step(st);
		if (rc == SQLITE_ROW) {
			num = sqlite3_column_int64(st, 0);
			weft_relay_job j;
			bool has_key;
			err = job_from_row(st, &j, &has_key);
			p.job = j.info;
			p.ended = j.ended;
			p.has_vk = j.ended && j.has_vk;
			memcpy(p.vk, j.vk, WEFT_PUBKEY_BYTES);
			p.has_key = j.ended && has_key && !j.has_vk;
			if (p.has_key)
				memcpy(p.key, j.key, WEFT_MAC_BYTES);
			p.ended_ns = j.ended_ns;
			p.exit_code = j.exit_code;
		} else {
			err = rc == SQLITE_DONE ? WEFT_ENOTFOUND : WEFT_EDB;
		}
		sqlite3_finalize(st);
	}
	/* An open job: its record only (no key, so nothing to store its
	 * writers and fragments under). */
	bool more_writers = false;
	if (!err && p.ended)
		err = export_writers(s, num, wafter, &p, &more_writers);
	if (!err && p.ended && !more_writers)
		err = export_envelopes(s, num, after, max_bytes, &p, &arena);
	if (more_writers) {
		p.more = true;
		p.next = after;
	}
	if (err == WEFT_EDB)
		store_save_errmsg(s);
	sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
	if (!err)
		err = weft_reply_export(&p, out);
	weft_export_page_release(&p);
	weft_buf_free(&arena);
	return err;
}

int weft_relay_put_page(weft_relay *r, const weft_export_page *p, bool first,
			weft_verdict *v)
{
	memset(v, 0, sizeof(*v));
	const char *job = p->job.id;
	int err = WEFT_OK;
	if (first) {
		if (!p->has_key && !p->has_vk) {
			store_verdict(v, WEFT_ACK_RETRY, WEFT_REJECT_NONE,
				      "job %s is still open at the source",
				      job);
			return WEFT_OK;
		}
		weft_relay_job j;
		memset(&j, 0, sizeof(j));
		j.info = p->job;
		memcpy(j.key, p->key, WEFT_MAC_BYTES);
		j.has_vk = p->has_vk;
		memcpy(j.vk, p->vk, WEFT_PUBKEY_BYTES);
		j.ended = p->ended;
		j.ended_ns = p->ended_ns;
		j.exit_code = p->exit_code;
		err = weft_relay_put_job(r, &j, v);
	}
	for (size_t i = 0; !err && i < p->nwriters; i++) {
		weft_verdict wv;
		err = weft_relay_put_writer(r, job, p->writers[i].pk,
					    p->writers[i].enrolled_ns, &wv);
	}
	for (size_t i = 0; !err && i < p->nenvs; i++)
		err = weft_relay_put_envelope(r, job, NULL, 0, p->envs[i].data,
					      p->envs[i].len);
	return err;
}
