/*
 * jobs.c - the fragment store's read side: job records, the status of
 * jobs and their writers (fragments stored, gaps in each writer's
 * sequence), and re-verification of every stored envelope.
 *
 * Verification trusts nothing but the writer keys stored with each job:
 * it decodes the raw envelope again, checks that it names the job, writer
 * and seq it is filed under, that its payload hash is the one recorded,
 * and its Ed25519 signature.
 */
#include <stdlib.h>
#include <string.h>

#include "store_internal.h"

void store_column_fixed(sqlite3_stmt *st, int i, char *out, size_t cap)
{
	size_t n = (size_t)sqlite3_column_bytes(st, i);
	const void *p = sqlite3_column_blob(st, i);
	if (n >= cap)
		n = cap - 1;
	if (n)
		memcpy(out, p, n);
	out[n] = '\0';
}

int store_job_text_from_row(sqlite3_stmt *st, int first, weft_job_info *info)
{
	int err = WEFT_OK;
	size_t n = (size_t)sqlite3_column_bytes(st, first);
	info->command = malloc(n + 1);
	if (info->command)
		store_column_fixed(st, first, info->command, n + 1);
	else
		err = WEFT_ENOMEM;
	store_column_fixed(st, first + 1, info->user, sizeof(info->user));
	store_column_fixed(st, first + 2, info->host, sizeof(info->host));
	store_column_fixed(st, first + 3, info->cwd, sizeof(info->cwd));
	store_column_fixed(st, first + 4, info->git, sizeof(info->git));
	return err;
}

static int step_done(int rc)
{
	return rc == SQLITE_DONE ? WEFT_OK : WEFT_EDB;
}

/* The end of a read of the jobs (one snapshot) by st, rc its last step
 * (SQLITE_ROW: stopped before the end): SQLite's message kept for an
 * error, WEFT_ENOTFOUND when job was named and found is 0. */
static int jobs_read_end(weft_store *s, sqlite3_stmt *st, int err, int rc,
			 const char *job, uint64_t found)
{
	if (!err && rc != SQLITE_ROW)
		err = step_done(rc);
	if (err == WEFT_EDB)
		store_save_errmsg(s);
	sqlite3_finalize(st);
	sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
	if (!err && job && found == 0)
		err = WEFT_ENOTFOUND;
	return err;
}

/* ---- Status ---- */

/* A job's writers as they are read (the array's room). */
struct writer_list {
	weft_status_job *j;
	size_t cap;
};

static int writer_row(sqlite3_stmt *st, void *ctx)
{
	struct writer_list *l = ctx;
	weft_status_writer *w = store_slot((void **)&l->j->writers, &l->cap,
					   l->j->nwriters, sizeof(*w));
	if (!w)
		return WEFT_ENOMEM;
	l->j->nwriters++;
	if (sqlite3_column_bytes(st, 0) == WEFT_PUBKEY_BYTES)
		memcpy(w->pk, sqlite3_column_blob(st, 0), WEFT_PUBKEY_BYTES);
	w->enrolled_ns = sqlite3_column_int64(st, 1);
	w->fragments = (uint64_t)sqlite3_column_int64(st, 2);
	w->max_seq = (uint64_t)sqlite3_column_int64(st, 3);
	w->missing = w->max_seq > w->fragments ? w->max_seq - w->fragments : 0;
	return WEFT_OK;
}

static int load_writers(weft_store *s, sqlite3_int64 job, weft_status_job *j)
{
	sqlite3_stmt *st;
	int err = store_prepare_num(
		s,
		"SELECT w.pubkey, w.enrolled_ns, count(e.num), "
		"coalesce(max(e.seq), 0) FROM writers w "
		"LEFT JOIN envelopes e ON e.writer = w.num "
		"WHERE w.job = ?1 GROUP BY w.num ORDER BY w.num",
		job, &st);
	struct writer_list l = {j, 0};
	return err ? err : store_each_row(st, writer_row, &l);
}

/* A status list (a job's incomplete or refused tasks): sql selects the
 * rows of job (?1), with the count of them all in column count_col; the
 * first WEFT_MAX_STATUS_TASKS rows go through row into *arr (items of
 * size bytes), their number to *n, the count to *total. */
typedef void (*status_row_fn)(sqlite3_stmt *st, void *item);

static int load_status_list(weft_store *s, const char *sql, sqlite3_int64 job,
			    int count_col, void **arr, size_t *n,
			    uint64_t *total, size_t size, status_row_fn row)
{
	sqlite3_stmt *st;
	int err = store_prepare_num(s, sql, job, &st);
	if (err)
		return err;
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		*total = (uint64_t)sqlite3_column_int64(st, count_col);
		if (!*arr) {
			size_t cap = *total < WEFT_MAX_STATUS_TASKS
					     ? (size_t)*total
					     : WEFT_MAX_STATUS_TASKS;
			*arr = calloc(cap, size);
			if (!*arr) {
				err = WEFT_ENOMEM;
				break;
			}
		}
		if (*n == WEFT_MAX_STATUS_TASKS || *n == *total)
			break;
		row(st, (char *)*arr + size * (*n)++);
	}
	if (!err && rc != SQLITE_ROW)
		err = step_done(rc);
	sqlite3_finalize(st);
	return err;
}

static void incomplete_row(sqlite3_stmt *st, void *item)
{
	weft_status_task *t = item;
	store_column_fixed(st, 0, t->id, sizeof(t->id));
	store_column_fixed(st, 1, t->name, sizeof(t->name));
	store_column_fixed(st, 2, t->node, sizeof(t->node));
	t->parts_stored = (uint32_t)sqlite3_column_int64(st, 3);
	t->nparts = (uint32_t)sqlite3_column_int64(st, 4);
}

/* The job's tasks with fewer parts stored than they were cut into: how
 * many, and the first WEFT_MAX_STATUS_TASKS of them. */
static int load_incomplete(weft_store *s, sqlite3_int64 job, weft_status_job *j)
{
	return load_status_list(
		s,
		"SELECT t.task_id, t.name, r.node, t.parts_stored, t.nparts, "
		"count(*) OVER () FROM tasks t JOIN runs r ON r.num = t.run "
		"WHERE t.job = ?1 AND t.parts_stored < t.nparts ORDER BY t.run",
		job, 5, (void **)&j->tasks, &j->ntasks, &j->incomplete,
		sizeof(*j->tasks), incomplete_row);
}

static void refused_row(sqlite3_stmt *st, void *item)
{
	weft_status_refusal *r = item;
	store_column_fixed(st, 0, r->id, sizeof(r->id));
	store_column_fixed(st, 1, r->name, sizeof(r->name));
	store_column_fixed(st, 2, r->node, sizeof(r->node));
	if (sqlite3_column_bytes(st, 3) == WEFT_PUBKEY_BYTES)
		memcpy(r->writer, sqlite3_column_blob(st, 3),
		       WEFT_PUBKEY_BYTES);
	r->seq = (uint64_t)sqlite3_column_int64(st, 4);
	r->reason = sqlite3_column_int(st, 5);
	if (r->reason <= WEFT_REJECT_NONE ||
	    r->reason >= WEFT_REJECT_REASON_MAX)
		r->reason = WEFT_REJECT_MALFORMED;
	store_column_fixed(st, 6, r->detail, sizeof(r->detail));
}

/* The job's refused fragments (its enrolled writers' own, refused): how
 * many, and the first WEFT_MAX_STATUS_TASKS of them, oldest first. */
static int load_refused(weft_store *s, sqlite3_int64 job, weft_status_job *j)
{
	return load_status_list(
		s,
		"SELECT f.task_id, f.name, f.node, w.pubkey, f.seq, f.reason, "
		"f.detail, count(*) OVER () FROM refusals f JOIN writers w ON "
		"w.num = f.writer WHERE f.job = ?1 "
		"ORDER BY f.refused_ns, f.writer, f.seq",
		job, 7, (void **)&j->refusals, &j->nrefusals, &j->refused,
		sizeof(*j->refusals), refused_row);
}

int weft_store_status(weft_store *s, const char *job, weft_status *out)
{
	memset(out, 0, sizeof(*out));
	s->errmsg[0] = '\0';
	sqlite3_stmt *st;
	int err = store_prepare_job(
		s,
		"SELECT j.num, j.id, j.state, j.created_ns, "
		"coalesce(j.ended_ns, 0), coalesce(j.exit_code, -1), "
		"substr(j.command, 1, 256), "
		"(SELECT count(*) FROM envelopes e WHERE e.job = j.num), "
		"(SELECT coalesce(sum(length(raw)), 0) FROM envelopes e "
		" WHERE e.job = j.num) "
		"FROM jobs j WHERE ?1 IS NULL OR j.id = ?1 "
		"ORDER BY j.created_ns, j.num",
		job, &st);
	if (err)
		return err;
	if ((err = store_exec(s, "BEGIN"))) {
		sqlite3_finalize(st);
		return err;
	}
	size_t cap = 0;
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (out->njobs == WEFT_MAX_STATUS_JOBS)
			break; /* the oldest ones: a status answer has room
				  for no more */
		weft_status_job *j = store_slot((void **)&out->jobs, &cap,
						out->njobs, sizeof(*j));
		if (!j) {
			err = WEFT_ENOMEM;
			break;
		}
		out->njobs++;
		store_column_fixed(st, 1, j->id, sizeof(j->id));
		j->ended = !strcmp((const char *)sqlite3_column_text(st, 2),
				   "ended");
		j->created_ns = sqlite3_column_int64(st, 3);
		j->ended_ns = sqlite3_column_int64(st, 4);
		j->exit_code = sqlite3_column_int(st, 5);
		store_column_fixed(st, 6, j->command, sizeof(j->command));
		j->fragments = (uint64_t)sqlite3_column_int64(st, 7);
		j->bytes = (uint64_t)sqlite3_column_int64(st, 8);
		if ((err = load_writers(s, sqlite3_column_int64(st, 0), j)) ||
		    (err = load_incomplete(s, sqlite3_column_int64(st, 0),
					   j)) ||
		    (err = load_refused(s, sqlite3_column_int64(st, 0), j)))
			break;
	}
	err = jobs_read_end(s, st, err, rc, job, out->njobs);
	if (err)
		weft_status_release(out);
	return err;
}

/* ---- Job records ---- */

#define JOB_COLUMNS                                                            \
	"SELECT id, created_ns, command, user, host, cwd, git, state, "        \
	"coalesce(ended_ns, 0), coalesce(exit_code, -1), "                     \
	"(SELECT count(*) FROM writers w WHERE w.job = j.num), "               \
	"(SELECT count(*) FROM envelopes e WHERE e.job = j.num), "             \
	"(SELECT count(*) FROM tasks t WHERE t.job = j.num), "                 \
	"(SELECT count(*) FROM tasks t WHERE t.job = j.num AND "               \
	" t.parts_stored < t.nparts), "                                        \
	"(SELECT count(*) FROM refusals f WHERE f.job = j.num) FROM jobs j "

static int job_from_row(sqlite3_stmt *st, weft_job_record *r)
{
	memset(r, 0, sizeof(*r));
	weft_job_info *i = &r->info;
	store_column_fixed(st, 0, i->id, sizeof(i->id));
	i->created_ns = sqlite3_column_int64(st, 1);
	int err = store_job_text_from_row(st, 2, i);
	if (err)
		return err;
	r->ended = !strcmp((const char *)sqlite3_column_text(st, 7), "ended");
	r->ended_ns = sqlite3_column_int64(st, 8);
	r->exit_code = sqlite3_column_int(st, 9);
	r->writers = (uint64_t)sqlite3_column_int64(st, 10);
	r->fragments = (uint64_t)sqlite3_column_int64(st, 11);
	r->tasks = (uint64_t)sqlite3_column_int64(st, 12);
	r->tasks_incomplete = (uint64_t)sqlite3_column_int64(st, 13);
	r->refused = (uint64_t)sqlite3_column_int64(st, 14);
	return WEFT_OK;
}

/* Every row of a job query into a growing array. */
static int collect_jobs(sqlite3_stmt *st, weft_job_record **out, size_t *n,
			size_t max)
{
	size_t cap = 0;
	int rc, err = WEFT_OK;
	while (*n < max && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (*n == cap) {
			size_t ncap = cap ? 2 * cap : 16;
			void *p = realloc(*out, ncap * sizeof(**out));
			if (!p)
				return WEFT_ENOMEM;
			*out = p;
			cap = ncap;
		}
		err = job_from_row(st, &(*out)[*n]);
		(*n)++;
		if (err)
			return err;
	}
	return *n == max ? WEFT_OK : step_done(rc);
}

int weft_store_list_jobs(weft_store *s, weft_job_record **out, size_t *n)
{
	*out = NULL;
	*n = 0;
	sqlite3_stmt *st;
	int err = store_prepare(s, JOB_COLUMNS "ORDER BY created_ns, num", &st);
	if (err)
		return err;
	err = collect_jobs(st, out, n, SIZE_MAX);
	sqlite3_finalize(st);
	if (err) {
		weft_job_records_free(*out, *n);
		*out = NULL;
		*n = 0;
	}
	return err;
}

int weft_store_get_job(weft_store *s, const char *id, weft_job_record *out)
{
	memset(out, 0, sizeof(*out));
	if (!id || !id[0])
		return WEFT_EINVAL;
	sqlite3_stmt *st;
	/* substr, not LIKE: an id prefix is matched byte for byte. */
	int err = store_prepare(s,
				JOB_COLUMNS
				"WHERE id = ?1 OR substr(id, 1, length(?1)) = "
				"?1 ORDER BY id = ?1 DESC LIMIT 2",
				&st);
	if (err)
		return err;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	weft_job_record *found = NULL;
	size_t n = 0;
	err = collect_jobs(st, &found, &n, 2);
	sqlite3_finalize(st);
	if (!err && n == 0)
		err = WEFT_ENOTFOUND;
	else if (!err && n == 2 && strcmp(found[0].info.id, id) != 0)
		err = WEFT_EINVAL; /* ambiguous prefix */
	if (!err) {
		*out = found[0];
		found[0].info.command = NULL;
	}
	weft_job_records_free(found, n);
	return err;
}

void weft_job_record_release(weft_job_record *r)
{
	free(r->info.command);
	r->info.command = NULL;
}

void weft_job_records_free(weft_job_record *jobs, size_t n)
{
	for (size_t i = 0; jobs && i < n; i++)
		weft_job_record_release(&jobs[i]);
	free(jobs);
}

/* ---- Verification ---- */

int store_prepare_job(weft_store *s, const char *sql, const char *job,
		      sqlite3_stmt **st)
{
	int err = store_prepare(s, sql, st);
	if (!err && job)
		sqlite3_bind_text(*st, 1, job, -1, SQLITE_STATIC);
	return err;
}

int store_prepare_num(weft_store *s, const char *sql, sqlite3_int64 num,
		      sqlite3_stmt **st)
{
	int err = store_prepare(s, sql, st);
	if (!err)
		sqlite3_bind_int64(*st, 1, num);
	return err;
}

void store_bind_job_text(sqlite3_stmt *st, int first, const weft_job_info *j)
{
	store_bind_bytes(st, first, j->command ? j->command : "");
	store_bind_bytes(st, first + 1, j->user);
	store_bind_bytes(st, first + 2, j->host);
	store_bind_bytes(st, first + 3, j->cwd);
	store_bind_bytes(st, first + 4, j->git);
}

static int count_rows(weft_store *s, const char *sql, const char *job,
		      uint64_t *n)
{
	sqlite3_stmt *st;
	int err = store_prepare_job(s, sql, job, &st);
	if (err)
		return err;
	if (sqlite3_step(st) == SQLITE_ROW)
		*n = (uint64_t)sqlite3_column_int64(st, 0);
	else
		err = WEFT_EDB;
	sqlite3_finalize(st);
	return err;
}

/* One stored envelope: NULL when it holds, else why not. */
static const char *check_stored(sqlite3_stmt *st, weft_verify_counts *c)
{
	const char *job = (const char *)sqlite3_column_text(st, 0);
	const void *pk = sqlite3_column_blob(st, 1);
	uint64_t seq = (uint64_t)sqlite3_column_int64(st, 2);
	const uint8_t *raw = sqlite3_column_blob(st, 3);
	size_t len = (size_t)sqlite3_column_bytes(st, 3);
	const void *hash = sqlite3_column_blob(st, 4);
	weft_envelope e;
	if (weft_envelope_decode(raw, len, &e) != WEFT_OK) {
		c->malformed++;
		return "the stored envelope does not decode";
	}
	/* The signature check hashes the payload; only a payload whose
	 * signature fails is hashed apart, to tell a mismatch from it. */
	bool sig_ok = weft_envelope_verify(&e) == WEFT_OK;
	uint8_t h[32];
	if (sig_ok)
		memcpy(h, e.payload_hash, 32);
	else
		weft_payload_hash(e.payload, e.payload_len, h);
	if (strcmp(e.job, job) || e.seq != seq ||
	    sqlite3_column_bytes(st, 1) != WEFT_PUBKEY_BYTES ||
	    memcmp(e.writer, pk, WEFT_PUBKEY_BYTES) ||
	    sqlite3_column_bytes(st, 4) != 32 || memcmp(h, hash, 32)) {
		c->mismatch++;
		return "the envelope does not match the job, writer, seq or "
		       "payload hash it is filed under";
	}
	if (!sig_ok) {
		c->bad_signature++;
		return "bad signature";
	}
	c->ok++;
	return NULL;
}

int weft_store_verify(weft_store *s, const char *job, weft_verify_counts *c,
		      weft_verify_bad_fn bad, void *ctx)
{
	memset(c, 0, sizeof(*c));
	s->errmsg[0] = '\0';
	if (store_exec(s, "BEGIN"))
		return WEFT_EDB;
	int err = count_rows(s,
			     "SELECT count(*) FROM jobs WHERE ?1 IS NULL OR "
			     "id = ?1",
			     job, &c->jobs);
	if (!err)
		err = count_rows(s,
				 "SELECT count(*) FROM writers w JOIN jobs j "
				 "ON j.num = w.job WHERE ?1 IS NULL OR "
				 "j.id = ?1",
				 job, &c->writers);
	sqlite3_stmt *st = NULL;
	if (!err)
		err = store_prepare_job(
			s,
			"SELECT j.id, w.pubkey, e.seq, e.raw, e.payload_hash "
			"FROM envelopes e JOIN jobs j ON j.num = e.job "
			"JOIN writers w ON w.num = e.writer "
			"WHERE ?1 IS NULL OR j.id = ?1 ORDER BY e.num",
			job, &st);
	uint64_t total = 0, bytes = 0;
	if (!err && s->progress)
		err = count_rows(s,
				 "SELECT count(*) FROM envelopes e JOIN jobs j "
				 "ON j.num = e.job WHERE ?1 IS NULL OR "
				 "j.id = ?1",
				 job, &total);
	int rc = SQLITE_DONE;
	while (!err && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		c->envelopes++;
		bytes += (uint64_t)sqlite3_column_bytes(st, 3);
		if (s->progress)
			s->progress(s->progress_arg, c->envelopes, total,
				    bytes);
		const char *why = check_stored(st, c);
		if (why && bad) {
			uint8_t pk[WEFT_PUBKEY_BYTES] = {0};
			if (sqlite3_column_bytes(st, 1) == WEFT_PUBKEY_BYTES)
				memcpy(pk, sqlite3_column_blob(st, 1),
				       WEFT_PUBKEY_BYTES);
			bad(ctx, (const char *)sqlite3_column_text(st, 0), pk,
			    (uint64_t)sqlite3_column_int64(st, 2), why);
		}
	}
	return jobs_read_end(s, st, err, rc, job, c->jobs);
}
