/*
 * store_relay_test.c - unit tests for the relay (`weft pull`): a pull into
 * an empty store verifies there and gives the same DAG, a second pull is
 * all duplicates, a tampered envelope in the source is refused and leaves
 * the destination as it was, a replay with other content is refused
 * without losing what was stored, a job held under another token is
 * refused whole, and the source file is never written.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <sqlite3.h>

#include "store_testutil.h"

static const char token[] = "0123456789abcdef0123456789abcdef";
static const char other_token[] = "fedcba9876543210fedcba9876543210";

/* One store and its writer. */
struct side {
	char db[320];
	weft_store *s;
	weft_store_writer *w;
};

struct fixture {
	struct scratch t;
	struct side a, b; /* a: the source, b: the destination */
	char job[WEFT_JOB_ID_BYTES + 1], job2[WEFT_JOB_ID_BYTES + 1];
	weft_writer_key k1, k2;
	/* What the reject callback saw last. */
	int rejects, last_reason;
	uint64_t last_seq;
};

static void side_open(struct side *sd)
{
	store_writer_open(sd->db, &sd->s, &sd->w);
}

static void side_close(struct side *sd)
{
	store_writer_close(&sd->s, &sd->w);
}

static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));
	scratch_init(&fx->t);
	scratch_path(&fx->t, "a.db", fx->a.db, sizeof(fx->a.db));
	scratch_path(&fx->t, "b.db", fx->b.db, sizeof(fx->b.db));
	side_open(&fx->a);
	side_open(&fx->b);
	new_job_keys(fx->job, &fx->k1, &fx->k2);
	weft_uuid_new(fx->job2);
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;
	side_close(&fx->a);
	side_close(&fx->b);
	scratch_fini(&fx->t);
	free(fx);
	return 0;
}

static void job_create(struct side *sd, const char *job, const char *tok,
		       int want)
{
	weft_verdict v;
	assert_int_equal(apply_job_create(sd->w, job, tok, &v), want);
}

static void enrol(struct side *sd, const char *job, const char *tok,
		  const weft_writer_key *k)
{
	weft_verdict v;
	assert_int_not_equal(apply_enrol(sd->w, job, tok, k, &v),
			     WEFT_ACK_REJECTED);
}

static void job_end(struct side *sd, const char *job, int32_t code)
{
	weft_verdict v;
	assert_int_equal(apply_job_end(sd->w, job, token, code, &v),
			 WEFT_ACK_STORED);
}

/* A one-file fragment of run `run` (task "task-RUN" on node1): writes (or
 * reads) path with content hash byte h. Returns the ingest status, or
 * -reason. */
static int put_fragment(struct side *sd, const char *job,
			const weft_writer_key *k, uint64_t seq, const char *run,
			const char *path, uint8_t h, bool write)
{
	char task[WEFT_MAX_TASK_BYTES + 1];
	snprintf(task, sizeof(task), "task-%s", run);
	struct frag_spec sp = {.run = run,
			       .task = task,
			       .node = "node1",
			       .path = path,
			       .h = h,
			       .write = write};
	weft_buf env;
	seal_fragment(job, k, seq, &sp, &env);
	int rc = ingest_envelope(sd->w, &env);
	weft_buf_free(&env);
	return rc;
}

/* The source: job with two writers; k1 writes /shared/x (seq 1) and
 * /shared/y (seq 2), k2 reads /shared/x (seq 1). */
static void make_source(struct fixture *fx)
{
	struct side *a = &fx->a;
	job_create(a, fx->job, token, WEFT_ACK_STORED);
	enrol(a, fx->job, token, &fx->k1);
	enrol(a, fx->job, token, &fx->k2);
	assert_int_equal(put_fragment(a, fx->job, &fx->k1, 1, "run-1",
				      "/shared/x", 0x11, true),
			 WEFT_ACK_STORED);
	assert_int_equal(put_fragment(a, fx->job, &fx->k1, 2, "run-1b",
				      "/shared/y", 0x22, true),
			 WEFT_ACK_STORED);
	assert_int_equal(put_fragment(a, fx->job, &fx->k2, 1, "run-2",
				      "/shared/x", 0x11, false),
			 WEFT_ACK_STORED);
}

/* One text value of a query (malloc'd), to compare rows byte for byte. */
static char *text(const char *db_path, const char *sql)
{
	sqlite3 *db;
	assert_int_equal(sqlite3_open(db_path, &db), SQLITE_OK);
	sqlite3_stmt *st;
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	const char *t = (const char *)sqlite3_column_text(st, 0);
	char *out = strdup(t ? t : "");
	sqlite3_finalize(st);
	sqlite3_close(db);
	return out;
}

/* Every stored envelope, in arrival order, as hex. */
#define ENVELOPES_HEX                                                          \
	"SELECT group_concat(h, ',') FROM (SELECT hex(payload_hash) || "       \
	"hex(raw) AS h FROM envelopes ORDER BY num)"

static void on_reject(void *ctx, const char *job, const uint8_t *pk,
		      uint64_t seq, const weft_verdict *v)
{
	(void)job;
	(void)pk;
	struct fixture *fx = ctx;
	fx->rejects++;
	fx->last_reason = v->reason;
	fx->last_seq = seq;
}

/* Pull a (opened read-only for the pull) into b. */
static weft_relay_counts pull(struct fixture *fx, const char *job, int want)
{
	weft_store *src;
	assert_int_equal(weft_store_open_readonly(fx->a.db, &src), WEFT_OK);
	weft_relay *r;
	assert_int_equal(weft_relay_new(fx->b.s, on_reject, fx, &r), WEFT_OK);
	assert_int_equal(weft_relay_pull_store(r, src, job), want);
	weft_relay_counts c = *weft_relay_get_counts(r);
	weft_relay_free(r);
	weft_store_close(src);
	return c;
}

/* The file's bytes, to prove the source is never written. */
static uint8_t *slurp(const char *path, size_t *n)
{
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	*n = (size_t)ftell(f);
	fseek(f, 0, SEEK_SET);
	uint8_t *b = malloc(*n ? *n : 1);
	assert_int_equal(fread(b, 1, *n, f), *n);
	fclose(f);
	return b;
}

static void assert_same_dag(struct fixture *fx, const char *job)
{
	weft_dag da, db;
	assert_int_equal(weft_store_dag(fx->a.s, job, &da), WEFT_OK);
	assert_int_equal(weft_store_dag(fx->b.s, job, &db), WEFT_OK);
	assert_int_equal(da.ntasks, db.ntasks);
	assert_int_equal(da.nartifacts, db.nartifacts);
	assert_int_equal(da.nedges, db.nedges);
	for (size_t i = 0; i < da.ntasks; i++)
		assert_string_equal(da.tasks[i].id, db.tasks[i].id);
	for (size_t i = 0; i < da.nartifacts; i++)
		assert_string_equal(da.artifacts[i].id, db.artifacts[i].id);
	for (size_t i = 0; i < da.nedges; i++) {
		assert_string_equal(da.edges[i].from, db.edges[i].from);
		assert_string_equal(da.edges[i].to, db.edges[i].to);
	}
	weft_dag_release(&da);
	weft_dag_release(&db);
}

static void test_pull_into_empty_then_again(void **state)
{
	struct fixture *fx = *state;
	make_source(fx);
	/* Close the source's writable handle: its WAL goes into the file,
	 * whose bytes must then stay as they are. */
	side_close(&fx->a);
	size_t n0, n1;
	uint8_t *before = slurp(fx->a.db, &n0);

	weft_relay_counts c = pull(fx, NULL, WEFT_OK);
	assert_int_equal(c.jobs, 1);
	assert_int_equal(c.jobs_stored, 1);
	assert_int_equal(c.writers_stored, 2);
	assert_int_equal(c.fragments, 3);
	assert_int_equal(c.stored, 3);
	assert_int_equal(c.rejected, 0);
	assert_int_equal(fx->rejects, 0);

	uint8_t *after = slurp(fx->a.db, &n1);
	assert_int_equal(n0, n1);
	assert_memory_equal(before, after, n0);
	free(before);
	free(after);

	weft_verify_counts v;
	assert_int_equal(weft_store_verify(fx->b.s, fx->job, &v, NULL, NULL),
			 WEFT_OK);
	assert_int_equal(v.envelopes, 3);
	assert_int_equal(v.ok, 3);
	assert_int_equal(v.writers, 2);
	/* Same key, same record: the token's job end MAC holds here. */
	assert_int_equal(sql_int(fx->b.db, "SELECT count(*) FROM jobs WHERE "
					   "command = CAST('sbatch job.sh' AS "
					   "BLOB) AND git = CAST('abc123' AS "
					   "BLOB) AND created_ns = 100"),
			 1);
	side_open(&fx->a);
	assert_same_dag(fx, fx->job);

	/* The source's job ends; a second pull is all duplicates and ends
	 * the job here too. */
	job_end(&fx->a, fx->job, 3);
	c = pull(fx, fx->job, WEFT_OK);
	assert_int_equal(c.jobs_present, 1);
	assert_int_equal(c.jobs_stored, 0);
	assert_int_equal(c.writers_present, 2);
	assert_int_equal(c.writers_stored, 0);
	assert_int_equal(c.duplicate, 3);
	assert_int_equal(c.stored, 0);
	assert_int_equal(c.rejected, 0);
	assert_int_equal(sql_int(fx->b.db, "SELECT count(*) FROM envelopes"),
			 3);
	assert_int_equal(sql_int(fx->b.db, "SELECT count(*) FROM runs"), 3);
	assert_int_equal(sql_int(fx->b.db, "SELECT count(*) FROM jobs WHERE "
					   "state = 'ended' AND exit_code = 3 "
					   "AND ended_ns = 900"),
			 1);
	/* The job's verifier came along: the token's end is a duplicate,
	 * and a forged one is refused. */
	weft_token_proof proof;
	token_proof_of(fx->job, token, NULL, 3, &proof);
	weft_verdict vd;
	assert_int_equal(weft_store_writer_begin(fx->b.w), WEFT_OK);
	weft_store_apply_job_end(fx->b.w, fx->job, 3, 950, &proof, &vd);
	assert_int_equal(weft_store_writer_commit(fx->b.w), WEFT_OK);
	assert_int_equal(vd.status, WEFT_ACK_DUPLICATE);
	token_proof_of(fx->job, "another-token-0123456789", NULL, 3, &proof);
	assert_int_equal(weft_store_writer_begin(fx->b.w), WEFT_OK);
	weft_store_apply_job_end(fx->b.w, fx->job, 3, 950, &proof, &vd);
	assert_int_equal(weft_store_writer_commit(fx->b.w), WEFT_OK);
	assert_int_equal(vd.reason, WEFT_REJECT_BAD_TOKEN);
	token_proof_of(fx->job, token, NULL, 3, &proof);
	assert_int_equal(weft_store_writer_begin(fx->b.w), WEFT_OK);
	weft_store_apply_job_end(fx->b.w, fx->job, 3, 950, &proof, &vd);
	assert_int_equal(weft_store_writer_commit(fx->b.w), WEFT_OK);
	assert_int_equal(vd.status, WEFT_ACK_DUPLICATE);
	assert_same_dag(fx, fx->job);
}

static void test_tampered_source(void **state)
{
	struct fixture *fx = *state;
	make_source(fx);
	/* A clean pull first: what is stored must survive the bad one. */
	weft_relay_counts c = pull(fx, NULL, WEFT_OK);
	assert_int_equal(c.stored, 3);
	char *before = text(fx->b.db, ENVELOPES_HEX);

	tamper_envelope(fx->a.db, &fx->k1, 2, "/shared/y");
	c = pull(fx, NULL, WEFT_OK);
	assert_int_equal(c.fragments, 3);
	assert_int_equal(c.duplicate, 2);
	assert_int_equal(c.rejected, 1);
	assert_int_equal(c.rejects[WEFT_REJECT_BAD_SIGNATURE], 1);
	assert_int_equal(fx->rejects, 1);
	assert_int_equal(fx->last_reason, WEFT_REJECT_BAD_SIGNATURE);
	assert_int_equal(fx->last_seq, 2);
	assert_int_equal(sql_int(fx->b.db, "SELECT count(*) FROM envelopes"),
			 3);
	char *after = text(fx->b.db, ENVELOPES_HEX);
	assert_string_equal(before, after);
	free(before);
	free(after);
	weft_verify_counts v;
	assert_int_equal(weft_store_verify(fx->b.s, NULL, &v, NULL, NULL),
			 WEFT_OK);
	assert_int_equal(v.ok, 3);

	/* Into a fresh store: the good ones arrive, the bad one does not. */
	side_close(&fx->b);
	remove(fx->b.db);
	side_open(&fx->b);
	fx->rejects = 0;
	c = pull(fx, NULL, WEFT_OK);
	assert_int_equal(c.stored, 2);
	assert_int_equal(c.rejected, 1);
	assert_int_equal(fx->rejects, 1);
	assert_int_equal(sql_int(fx->b.db, "SELECT count(*) FROM envelopes"),
			 2);
	assert_int_equal(sql_int(fx->b.db, "SELECT count(*) FROM runs WHERE "
					   "id = 'run-1b'"),
			 0);
	assert_int_equal(weft_store_verify(fx->b.s, NULL, &v, NULL, NULL),
			 WEFT_OK);
	assert_int_equal(v.envelopes, 2);
	assert_int_equal(v.ok, 2);
}

static void test_conflicting_replay(void **state)
{
	struct fixture *fx = *state;
	make_source(fx);
	/* The destination holds the same job (same token) where writer k1
	 * signed other content as its seq 1. */
	job_create(&fx->b, fx->job, token, WEFT_ACK_STORED);
	enrol(&fx->b, fx->job, token, &fx->k1);
	assert_int_equal(put_fragment(&fx->b, fx->job, &fx->k1, 1, "run-9",
				      "/shared/z", 0x33, true),
			 WEFT_ACK_STORED);
	char *mine = text(fx->b.db, ENVELOPES_HEX);

	weft_relay_counts c = pull(fx, NULL, WEFT_OK);
	assert_int_equal(c.jobs_present, 1);
	assert_int_equal(c.writers_present, 1);
	assert_int_equal(c.writers_stored, 1);
	assert_int_equal(c.rejected, 1);
	assert_int_equal(c.rejects[WEFT_REJECT_REPLAY], 1);
	assert_int_equal(fx->last_reason, WEFT_REJECT_REPLAY);
	assert_int_equal(fx->last_seq, 1);
	/* k1's seq 2 and k2's seq 1 are new: stored. seq 2 names a run of
	 * its own, so nothing conflicts with it. */
	assert_int_equal(c.stored, 2);
	/* What was stored stays: run-9 and its envelope, unchanged. */
	assert_int_equal(sql_int(fx->b.db, "SELECT count(*) FROM runs WHERE "
					   "id = 'run-9'"),
			 1);
	assert_int_equal(sql_int(fx->b.db, "SELECT count(*) FROM runs WHERE "
					   "id = 'run-1'"),
			 0);
	char *first = text(fx->b.db, "SELECT hex(payload_hash) || hex(raw) "
				     "FROM envelopes WHERE num = 1");
	assert_string_equal(mine, first);
	free(mine);
	free(first);
	weft_verify_counts v;
	assert_int_equal(weft_store_verify(fx->b.s, NULL, &v, NULL, NULL),
			 WEFT_OK);
	assert_int_equal(v.envelopes, 3);
	assert_int_equal(v.ok, 3);
}

static void test_job_under_other_token(void **state)
{
	struct fixture *fx = *state;
	make_source(fx);
	job_create(&fx->b, fx->job, other_token, WEFT_ACK_STORED);
	weft_relay_counts c = pull(fx, NULL, WEFT_OK);
	assert_int_equal(c.jobs_rejected, 1);
	assert_int_equal(fx->rejects, 1);
	assert_int_equal(fx->last_reason, WEFT_REJECT_JOB_EXISTS);
	assert_int_equal(c.writers_stored, 0);
	assert_int_equal(c.stored, 0);
	assert_int_equal(c.rejected, 3);
	assert_int_equal(c.rejects[WEFT_REJECT_JOB_EXISTS], 3);
	assert_int_equal(sql_int(fx->b.db, "SELECT count(*) FROM writers"), 0);
	assert_int_equal(sql_int(fx->b.db, "SELECT count(*) FROM envelopes"),
			 0);
}

/* A source whose job row holds no 32-byte key (a crafted file, written
 * past the CHECK): the job is refused, with its writers and fragments,
 * not stored under a key nobody derived (all zeros). */
static void test_job_without_key(void **state)
{
	struct fixture *fx = *state;
	make_source(fx);
	sqlite3 *db;
	assert_int_equal(sqlite3_open(fx->a.db, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db,
				      "PRAGMA ignore_check_constraints = ON; "
				      "UPDATE jobs SET enrol_key = x'00', "
				      "verifier = NULL",
				      NULL, NULL, NULL),
			 SQLITE_OK);
	sqlite3_close(db);
	weft_relay_counts c = pull(fx, NULL, WEFT_OK);
	assert_int_equal(c.jobs, 1);
	assert_int_equal(c.jobs_rejected, 1);
	assert_int_equal(fx->last_reason, WEFT_REJECT_MALFORMED);
	assert_int_equal(c.stored, 0);
	assert_int_equal(c.rejected, 3);
	assert_int_equal(sql_int(fx->b.db, "SELECT count(*) FROM jobs"), 0);
	assert_int_equal(sql_int(fx->b.db, "SELECT count(*) FROM writers"), 0);
	assert_int_equal(sql_int(fx->b.db, "SELECT count(*) FROM envelopes"),
			 0);
}

static void test_one_job_and_sources(void **state)
{
	struct fixture *fx = *state;
	make_source(fx);
	job_create(&fx->a, fx->job2, token, WEFT_ACK_STORED);
	enrol(&fx->a, fx->job2, token, &fx->k2);
	assert_int_equal(put_fragment(&fx->a, fx->job2, &fx->k2, 1, "run-j2",
				      "/shared/w", 0x44, true),
			 WEFT_ACK_STORED);
	weft_relay_counts c = pull(fx, fx->job2, WEFT_OK);
	assert_int_equal(c.jobs, 1);
	assert_int_equal(c.stored, 1);
	assert_int_equal(sql_int(fx->b.db, "SELECT count(*) FROM jobs"), 1);
	char nojob[WEFT_JOB_ID_BYTES + 1];
	weft_uuid_new(nojob);
	c = pull(fx, nojob, WEFT_ENOTFOUND);
	assert_int_equal(c.jobs, 0);
	c = pull(fx, NULL, WEFT_OK);
	assert_int_equal(c.jobs, 2);
	assert_int_equal(c.stored, 3);
	assert_int_equal(c.duplicate, 1);

	/* What is not a store is named as such. */
	weft_store *s;
	char path[320];
	scratch_path(&fx->t, "absent.db", path, sizeof(path));
	assert_int_equal(weft_store_open_readonly(path, &s), WEFT_ENOTFOUND);
	assert_null(s);
	assert_int_equal(weft_store_open_readonly(fx->t.dir, &s), WEFT_EINVAL);
	scratch_path(&fx->t, "text.db", path, sizeof(path));
	char junk[4096];
	memset(junk, 'x', sizeof(junk));
	write_file(path, junk, sizeof(junk));
	assert_int_equal(weft_store_open_readonly(path, &s), WEFT_EDB);
	assert_int_equal(weft_store_open_readonly(fx->a.db, &s), WEFT_OK);
	assert_true(weft_store_same_file(s, fx->a.s));
	assert_false(weft_store_same_file(s, fx->b.s));
	weft_store_close(s);
}

/* A coordinator's export, page by page (one envelope a page), fed to a
 * relay: the same as pulling the store file; an open job's page has no
 * key and nothing else. */
static void test_export_pages(void **state)
{
	struct fixture *fx = *state;
	make_source(fx);
	weft_buf out;
	weft_buf_init(&out);
	weft_export_page p;
	assert_int_equal(weft_store_export(fx->a.s, fx->job, 0, 0, 1, &out),
			 WEFT_OK);
	assert_int_equal(weft_export_page_decode(out.data, out.len, &p),
			 WEFT_OK);
	assert_false(p.ended);
	assert_false(p.has_key || p.has_vk);
	assert_int_equal(p.nwriters, 0);
	assert_int_equal(p.nenvs, 0);
	assert_false(p.more);
	assert_string_equal(p.job.command, "sbatch job.sh");
	weft_export_page_release(&p);
	char nojob[WEFT_JOB_ID_BYTES + 1];
	weft_uuid_new(nojob);
	assert_int_equal(weft_store_export(fx->a.s, nojob, 0, 0, 1, &out),
			 WEFT_ENOTFOUND);

	job_end(&fx->a, fx->job, 0);
	weft_relay *r;
	assert_int_equal(weft_relay_new(fx->b.s, on_reject, fx, &r), WEFT_OK);
	uint64_t after = 0, wafter = 0;
	size_t pages = 0;
	bool more = true;
	while (more) {
		out.len = 0;
		assert_int_equal(weft_store_export(fx->a.s, fx->job, after,
						   wafter, 1, &out),
				 WEFT_OK);
		assert_int_equal(weft_export_page_decode(out.data, out.len, &p),
				 WEFT_OK);
		assert_true(p.has_vk && !p.has_key);
		assert_true(p.nenvs <= 1);
		/* Writers come before any envelope, on the first page. */
		assert_int_equal(p.nwriters, pages == 0 ? 2 : 0);
		weft_verdict v;
		assert_int_equal(weft_relay_put_page(r, &p, pages == 0, &v),
				 WEFT_OK);
		if (pages == 0)
			assert_int_equal(v.status, WEFT_ACK_STORED);
		more = p.more;
		after = p.next;
		wafter = p.wnext;
		weft_export_page_release(&p);
		pages++;
	}
	assert_int_equal(pages, 3);
	assert_int_equal(weft_relay_finish(r), WEFT_OK);
	const weft_relay_counts *c = weft_relay_get_counts(r);
	assert_int_equal(c->stored, 3);
	assert_int_equal(c->writers_stored, 2);
	weft_relay_free(r);
	weft_buf_free(&out);
	weft_verify_counts v;
	assert_int_equal(weft_store_verify(fx->b.s, NULL, &v, NULL, NULL),
			 WEFT_OK);
	assert_int_equal(v.ok, 3);
	assert_same_dag(fx, fx->job);
	assert_int_equal(sql_int(fx->b.db, "SELECT count(*) FROM jobs WHERE "
					   "state = 'ended'"),
			 1);
}

/* More fragments than one relay batch: every batch commits, the counts
 * add up across them, and a second relay sees them all as duplicates. */
static void test_many_batches(void **state)
{
	struct fixture *fx = *state;
	job_create(&fx->a, fx->job, token, WEFT_ACK_STORED);
	enrol(&fx->a, fx->job, token, &fx->k1);
	const uint64_t n = 2 * WEFT_RELAY_BATCH + 7;
	for (uint64_t i = 1; i <= n; i++) {
		char run[32], path[64];
		snprintf(run, sizeof(run), "run-%llu", (unsigned long long)i);
		snprintf(path, sizeof(path), "/shared/f%llu",
			 (unsigned long long)i);
		assert_int_equal(put_fragment(&fx->a, fx->job, &fx->k1, i, run,
					      path, (uint8_t)(i % 255 + 1),
					      true),
				 WEFT_ACK_STORED);
	}
	weft_relay_counts c = pull(fx, NULL, WEFT_OK);
	assert_int_equal(c.stored, n);
	assert_int_equal(sql_int(fx->b.db, "SELECT count(*) FROM envelopes"),
			 (int64_t)n);
	assert_int_equal(sql_int(fx->b.db, "SELECT count(*) FROM runs"),
			 (int64_t)n);
	c = pull(fx, NULL, WEFT_OK);
	assert_int_equal(c.duplicate, n);
	assert_int_equal(c.stored, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_pull_into_empty_then_again,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_tampered_source, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_conflicting_replay, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_job_under_other_token,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_job_without_key, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_one_job_and_sources, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_export_pages, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_many_batches, setup,
						teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
