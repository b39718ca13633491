/*
 * store_ingest_test.c - unit tests for the fragment store: job create and
 * end, enrolment, idempotent ingest by (job, writer, seq) with every
 * rejection a coordinator relies on, parts merging into one run, status
 * with gaps, the job DAG across writers by content hash, and
 * re-verification that notices a tampered envelope.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <sqlite3.h>

#include "store_testutil.h"

static const char token[] = "0123456789abcdef0123456789abcdef";

struct fixture {
	struct scratch t;
	weft_store *s;
	weft_store_writer *w;
	char job[WEFT_JOB_ID_BYTES + 1];
	weft_writer_key k1, k2;
};

static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));
	scratch_init(&fx->t);
	store_writer_open(fx->t.db, &fx->s, &fx->w);
	new_job_keys(fx->job, &fx->k1, &fx->k2);
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;
	store_writer_close(&fx->s, &fx->w);
	scratch_fini(&fx->t);
	free(fx);
	return 0;
}

static void job_create(struct fixture *fx, const char *tok, int want)
{
	weft_verdict v;
	assert_int_equal(apply_job_create(fx->w, fx->job, tok, &v), want);
}

static int enrol(struct fixture *fx, const weft_writer_key *k, const char *tok,
		 weft_verdict *v)
{
	return apply_enrol(fx->w, fx->job, tok, k, v);
}

/* The status, or -reason when rejected. */
static int job_end(struct fixture *fx, const char *tok, int32_t code)
{
	weft_verdict v;
	int st = apply_job_end(fx->w, fx->job, tok, code, &v);
	return st == WEFT_ACK_REJECTED ? -v.reason : st;
}

static int ingest_spec(struct fixture *fx, const weft_writer_key *k,
		       uint64_t seq, const struct frag_spec *sp)
{
	weft_buf env;
	seal_fragment(fx->job, k, seq, sp, &env);
	int rc = ingest_envelope(fx->w, &env);
	weft_buf_free(&env);
	return rc;
}

static const struct frag_spec spec_a = {
	"run-a", "task-a", NULL, "node1", "/shared/out.bin", 0x11, true};

static void test_jobs_and_enrolment(void **state)
{
	struct fixture *fx = *state;
	weft_verdict v;
	assert_int_equal(enrol(fx, &fx->k1, token, &v), WEFT_ACK_REJECTED);
	assert_int_equal(v.reason, WEFT_REJECT_UNKNOWN_JOB);
	job_create(fx, token, WEFT_ACK_STORED);
	job_create(fx, token, WEFT_ACK_DUPLICATE);
	job_create(fx, "another-token-0123456789", WEFT_ACK_REJECTED);
	assert_int_equal(enrol(fx, &fx->k1, "wrong-token-0123456789", &v),
			 WEFT_ACK_REJECTED);
	assert_int_equal(v.reason, WEFT_REJECT_BAD_TOKEN);
	assert_int_equal(enrol(fx, &fx->k1, token, &v), WEFT_ACK_STORED);
	assert_int_equal(enrol(fx, &fx->k1, token, &v), WEFT_ACK_DUPLICATE);
	assert_int_equal(sql_count(fx->t.db, "writers"), 1);

	weft_job_record r;
	assert_int_equal(weft_store_get_job(fx->s, fx->job, &r), WEFT_OK);
	assert_string_equal(r.info.command, "sbatch job.sh");
	assert_string_equal(r.info.user, "ada");
	assert_int_equal(r.writers, 1);
	assert_false(r.ended);
	weft_job_record_release(&r);
	char prefix[9];
	memcpy(prefix, fx->job, 8);
	prefix[8] = '\0';
	assert_int_equal(weft_store_get_job(fx->s, prefix, &r), WEFT_OK);
	assert_string_equal(r.info.id, fx->job);
	weft_job_record_release(&r);
	assert_int_equal(weft_store_get_job(fx->s, "ffffffff", &r),
			 WEFT_ENOTFOUND);

	assert_int_equal(job_end(fx, "wrong-token-0123456789", 0),
			 -WEFT_REJECT_BAD_TOKEN);
	assert_int_equal(job_end(fx, token, 3), WEFT_ACK_STORED);
	assert_int_equal(job_end(fx, token, 3), WEFT_ACK_DUPLICATE);
	/* After the end: an enrolled writer may re-enrol and deliver what
	 * its spool still holds; one never enrolled delivers nothing
	 * (test_late_writer: unless it enrols with the token's proof). */
	assert_int_equal(enrol(fx, &fx->k1, token, &v), WEFT_ACK_DUPLICATE);
	assert_int_equal(ingest_spec(fx, &fx->k1, 1, &spec_a), WEFT_ACK_STORED);
	assert_int_equal(ingest_spec(fx, &fx->k2, 1, &spec_a),
			 -WEFT_REJECT_JOB_ENDED);

	weft_job_record *all;
	size_t n;
	assert_int_equal(weft_store_list_jobs(fx->s, &all, &n), WEFT_OK);
	assert_int_equal(n, 1);
	assert_true(all[0].ended);
	assert_int_equal(all[0].exit_code, 3);
	assert_int_equal(all[0].fragments, 1);
	weft_job_records_free(all, n);
}

/* A refused fragment of an enrolled writer is named in the store (its
 * task, seq, reason), once however often it is resent; one from a writer
 * never enrolled is not stored at all (issue 14 item 4: refused tasks
 * named; item 7: no junk stored). */
static void test_refusals_named(void **state)
{
	struct fixture *fx = *state;
	weft_verdict v;
	job_create(fx, token, WEFT_ACK_STORED);
	assert_int_equal(enrol(fx, &fx->k1, token, &v), WEFT_ACK_STORED);
	assert_int_equal(ingest_spec(fx, &fx->k1, 1, &spec_a), WEFT_ACK_STORED);
	struct frag_spec other = spec_a;
	other.h = 0x22;
	for (int i = 0; i < 3; i++)
		assert_int_equal(ingest_spec(fx, &fx->k1, 1, &other),
				 -WEFT_REJECT_REPLAY);
	assert_int_equal(ingest_spec(fx, &fx->k2, 1, &spec_a),
			 -WEFT_REJECT_UNENROLLED);
	assert_int_equal(sql_count(fx->t.db, "refusals"), 1);
	weft_status st;
	assert_int_equal(weft_store_status(fx->s, fx->job, &st), WEFT_OK);
	assert_int_equal(st.jobs[0].refused, 1);
	assert_int_equal(st.jobs[0].nrefusals, 1);
	const weft_status_refusal *r = &st.jobs[0].refusals[0];
	assert_string_equal(r->id, "task-a");
	assert_string_equal(r->node, "node1");
	assert_int_equal(r->seq, 1);
	assert_int_equal(r->reason, WEFT_REJECT_REPLAY);
	assert_memory_equal(r->writer, fx->k1.pk, WEFT_PUBKEY_BYTES);
	assert_non_null(strstr(r->detail, "different content"));
	/* It crosses the wire as it is. */
	weft_buf b;
	weft_buf_init(&b);
	assert_int_equal(weft_reply_status(&st, &b), WEFT_OK);
	weft_reply rep;
	assert_int_equal(weft_reply_decode(b.data, b.len, &rep), WEFT_OK);
	assert_int_equal(rep.status.jobs[0].refused, 1);
	assert_string_equal(rep.status.jobs[0].refusals[0].id, "task-a");
	assert_int_equal(rep.status.jobs[0].refusals[0].reason,
			 WEFT_REJECT_REPLAY);
	weft_reply_release(&rep);
	weft_buf_free(&b);
	weft_status_release(&st);
	weft_job_record jr;
	assert_int_equal(weft_store_get_job(fx->s, fx->job, &jr), WEFT_OK);
	assert_int_equal(jr.refused, 1);
	weft_job_record_release(&jr);
}

static void test_ingest_idempotent(void **state)
{
	struct fixture *fx = *state;
	weft_verdict v;
	/* Unknown job first. */
	assert_int_equal(ingest_spec(fx, &fx->k1, 1, &spec_a),
			 -WEFT_REJECT_UNKNOWN_JOB);
	job_create(fx, token, WEFT_ACK_STORED);
	assert_int_equal(ingest_spec(fx, &fx->k1, 1, &spec_a),
			 -WEFT_REJECT_UNENROLLED);
	enrol(fx, &fx->k1, token, &v);

	weft_buf env;
	seal_fragment(fx->job, &fx->k1, 1, &spec_a, &env);
	assert_int_equal(ingest_envelope(fx->w, &env), WEFT_ACK_STORED);
	assert_int_equal(ingest_envelope(fx->w, &env), WEFT_ACK_DUPLICATE);
	assert_int_equal(sql_count(fx->t.db, "envelopes"), 1);
	assert_int_equal(sql_count(fx->t.db, "processes"), 1);

	/* Same seq, other content. */
	struct frag_spec other = spec_a;
	other.h = 0x12;
	assert_int_equal(ingest_spec(fx, &fx->k1, 1, &other),
			 -WEFT_REJECT_REPLAY);

	/* A flipped byte anywhere in the signed part: bad signature. */
	uint8_t *p = memmem(env.data, env.len, "tool", 4);
	assert_non_null(p);
	*p = 'T';
	assert_int_equal(ingest_envelope(fx->w, &env),
			 -WEFT_REJECT_BAD_SIGNATURE);
	/* Garbage. */
	weft_buf junk = {(uint8_t *)"\x81\xa1v\x01", 4, 4};
	assert_int_equal(ingest_envelope(fx->w, &junk), -WEFT_REJECT_MALFORMED);
	weft_buf_free(&env);

	/* Nothing of the refused ones stayed. */
	assert_int_equal(sql_count(fx->t.db, "envelopes"), 1);
	assert_int_equal(sql_count(fx->t.db, "runs"), 1);
	assert_int_equal(sql_count(fx->t.db, "file_io"), 1);

	/* Another writer may not add to run-a. */
	enrol(fx, &fx->k2, token, &v);
	assert_int_equal(ingest_spec(fx, &fx->k2, 1, &spec_a),
			 -WEFT_REJECT_MISMATCH);
}

static void test_parts_and_gaps(void **state)
{
	struct fixture *fx = *state;
	weft_verdict v;
	job_create(fx, token, WEFT_ACK_STORED);
	enrol(fx, &fx->k1, token, &v);
	struct frag_spec p0 = {"run-p", "task-p", NULL, "node1", "/a",
			       1,       true,     0,    3};
	struct frag_spec p2 = {"run-p", "task-p", NULL, "node1", "/b",
			       2,       false,    2,    3};
	assert_int_equal(ingest_spec(fx, &fx->k1, 1, &p0), WEFT_ACK_STORED);
	assert_int_equal(ingest_spec(fx, &fx->k1, 3, &p2), WEFT_ACK_STORED);
	assert_int_equal(sql_count(fx->t.db, "runs"), 1);
	assert_int_equal(sql_count(fx->t.db, "processes"), 2);
	assert_int_equal(sql_int(fx->t.db, "SELECT max(seq) FROM processes"),
			 1);
	assert_int_equal(sql_int(fx->t.db, "SELECT parts_stored FROM tasks"),
			 2);
	/* A part repeating a path of the same run is malformed. */
	struct frag_spec again = p0;
	again.part = 1;
	assert_int_equal(ingest_spec(fx, &fx->k1, 4, &again),
			 -WEFT_REJECT_MALFORMED);

	weft_status st;
	assert_int_equal(weft_store_status(fx->s, NULL, &st), WEFT_OK);
	assert_int_equal(st.njobs, 1);
	assert_int_equal(st.jobs[0].fragments, 2);
	assert_true(st.jobs[0].bytes > 0);
	assert_int_equal(st.jobs[0].nwriters, 1);
	assert_int_equal(st.jobs[0].writers[0].max_seq, 3);
	assert_int_equal(st.jobs[0].writers[0].missing, 1);
	assert_string_equal(st.jobs[0].command, "sbatch job.sh");
	weft_status_release(&st);
	char other[WEFT_JOB_ID_BYTES + 1];
	weft_uuid_new(other);
	assert_int_equal(weft_store_status(fx->s, other, &st), WEFT_ENOTFOUND);
}

/* A task's later part stored after another run's record at the same
 * location: it goes into the location's chain below that record (file_io
 * key order), and the walk finds both. */
static void test_late_part_chained(void **state)
{
	struct fixture *fx = *state;
	weft_verdict v;
	job_create(fx, token, WEFT_ACK_STORED);
	enrol(fx, &fx->k1, token, &v);
	struct frag_spec p0 = {"run-p", "task-p", NULL, "node1", "/p/a",
			       1,       true,     0,    2,       "/a"};
	struct frag_spec q = {"run-q", "task-q", NULL, "node1", "/p/b",
			      2,       true,     0,    1,       "/b"};
	struct frag_spec p1 = {"run-p", "task-p", NULL, "node1", "/p/b",
			       2,       false,    1,    2,       "/b"};
	assert_int_equal(ingest_spec(fx, &fx->k1, 1, &p0), WEFT_ACK_STORED);
	assert_int_equal(ingest_spec(fx, &fx->k1, 2, &q), WEFT_ACK_STORED);
	assert_int_equal(ingest_spec(fx, &fx->k1, 3, &p1), WEFT_ACK_STORED);
	assert_int_equal(sql_int(fx->t.db, STORE_CHAINS_WHOLE_SQL), 1);
	assert_int_equal(sql_int(fx->t.db,
				 "SELECT r.id = 'run-q' FROM loc_heads h "
				 "JOIN runs r ON r.num = h.run "
				 "JOIN paths p ON p.id = h.loc_path "
				 "WHERE p.path = CAST('/b' AS BLOB)"),
			 1);
	weft_dag d;
	assert_int_equal(weft_store_lineage(fx->s, "/p/b", NULL, true, &d),
			 WEFT_OK);
	assert_int_equal(d.ntasks, 1); /* run-p read what run-q wrote */
	weft_dag_release(&d);
}

/* A fragment (seq) of run naming paths[0..n), each written, with content
 * hash byte hashes[i] (NULL: the first 0x11, the others none), ingested
 * by k1: its status. */
static int ingest_paths(struct fixture *fx, uint64_t seq, const char *run,
			const char *const *paths, const uint8_t *hashes, int n)
{
	struct frag_spec sp = {run,      "t",
			       NULL,     "node1",
			       paths[0], hashes ? hashes[0] : 0x11,
			       true};
	weft_fragment f;
	weft_fragment_init(&f);
	weft_buf env, payload;
	seal_fragment(fx->job, &fx->k1, seq, &sp, &env);
	weft_envelope e;
	assert_int_equal(weft_envelope_decode(env.data, env.len, &e), WEFT_OK);
	assert_int_equal(weft_fragment_decode(e.payload, e.payload_len, &f),
			 WEFT_OK);
	for (int i = 1; i < n; i++) {
		weft_file_rec *fr = weft_report_add_file(&f.report);
		fr->path = strdup(paths[i]);
		fr->written = true;
		if (hashes) {
			fr->has_hash = true;
			memset(fr->hash, hashes[i], sizeof(fr->hash));
		}
	}
	weft_buf_free(&env);
	weft_buf_init(&payload);
	weft_buf_init(&env);
	assert_int_equal(weft_fragment_encode(&f, &payload), WEFT_OK);
	assert_int_equal(weft_envelope_seal(fx->job, &fx->k1, seq, payload.data,
					    payload.len, &env),
			 WEFT_OK);
	int rc = ingest_envelope(fx->w, &env);
	weft_buf_free(&payload);
	weft_buf_free(&env);
	weft_fragment_release(&f);
	return rc;
}

/* One fragment naming the same path twice is malformed, whatever the
 * order of its records (a wrapper sends them in path order; the check
 * sorts anything else); nothing of it is stored. */
static void test_path_twice_in_one_fragment(void **state)
{
	struct fixture *fx = *state;
	weft_verdict v;
	job_create(fx, token, WEFT_ACK_STORED);
	enrol(fx, &fx->k1, token, &v);
	static const char *const cases[][3] = {
		{"/a", "/b", "/c"}, /* in order, no repeat: stored */
		{"/a", "/a", "/c"}, /* in order, repeated */
		{"/b", "/c", "/b"}, /* out of order, repeated */
		{"/c", "/a", "/b"}, /* out of order, no repeat: stored */
	};
	static const int want[] = {WEFT_ACK_STORED, -WEFT_REJECT_MALFORMED,
				   -WEFT_REJECT_MALFORMED, WEFT_ACK_STORED};
	for (int c = 0; c < 4; c++) {
		char run[16];
		snprintf(run, sizeof(run), "run-%d", c);
		assert_int_equal(ingest_paths(fx, (uint64_t)c + 1, run,
					      cases[c], NULL, 3),
				 want[c]);
	}
	assert_int_equal(sql_count(fx->t.db, "runs"), 2);
	assert_int_equal(sql_count(fx->t.db, "file_io"), 6);
}

/* Paths and contents stored already and new ones, in runs after one
 * another and mixed in one run, each run through a writer of its own
 * (a new `weft run`'s coordinator: nothing in its cache; it looks a
 * value up first or inserts it first by what the last one was): every
 * record names its own path and content, each stored once. */
static void test_known_and_new_values(void **state)
{
	struct fixture *fx = *state;
	weft_verdict v;
	job_create(fx, token, WEFT_ACK_STORED);
	enrol(fx, &fx->k1, token, &v);
	static const char *const p1[] = {"/d/x", "/d/y"};
	static const char *const p3[] = {"/d/w", "/d/x", "/d/y", "/d/z"};
	static const char *const p4[] = {"/d/v", "/d/x"};
	static const char *const *const paths[] = {p1, p1, p3, p4};
	static const uint8_t h1[] = {1, 2}, h3[] = {4, 1, 2, 3}, h4[] = {5, 1};
	static const uint8_t *const hashes[] = {h1, h1, h3, h4};
	static const int n[] = {2, 2, 4, 2};
	for (int i = 0; i < 4; i++) {
		char run[16];
		snprintf(run, sizeof(run), "run-%d", i);
		store_writer_close(&fx->s, &fx->w);
		store_writer_open(fx->t.db, &fx->s, &fx->w);
		assert_int_equal(ingest_paths(fx, (uint64_t)i + 1, run,
					      paths[i], hashes[i], n[i]),
				 WEFT_ACK_STORED);
	}
	assert_int_equal(sql_count(fx->t.db, "file_io"), 10);
	/* /d/v /d/w /d/x /d/y /d/z, and the spec's own first path is one of
	 * them; contents 1..5. */
	assert_int_equal(
		sql_int(fx->t.db,
			"SELECT count(*) FROM paths "
			"WHERE substr(path, 1, 3) = CAST('/d/' AS BLOB)"),
		5);
	assert_int_equal(sql_count(fx->t.db, "artifacts"), 5);
	/* Every record's path and content as sent: path /d/x always has
	 * content 1, /d/y 2, /d/z 3, /d/w 4, /d/v 5. */
	assert_int_equal(
		sql_int(fx->t.db,
			"SELECT count(*) FROM file_io f "
			"JOIN paths p ON p.id = f.path "
			"JOIN artifacts a ON a.id = f.artifact "
			"WHERE hex(substr(a.hash, 1, 1)) = "
			"CASE CAST(p.path AS TEXT) WHEN '/d/x' THEN '01' "
			"WHEN '/d/y' THEN '02' WHEN '/d/z' THEN '03' "
			"WHEN '/d/w' THEN '04' WHEN '/d/v' THEN '05' END"),
		10);
}

static const weft_dag_task *task_named(const weft_dag *d, const char *name)
{
	for (size_t i = 0; i < d->ntasks; i++)
		if (!strcmp(d->tasks[i].name, name))
			return &d->tasks[i];
	return NULL;
}

static void test_dag_across_writers(void **state)
{
	struct fixture *fx = *state;
	weft_verdict v;
	job_create(fx, token, WEFT_ACK_STORED);
	enrol(fx, &fx->k1, token, &v);
	enrol(fx, &fx->k2, token, &v);
	/* A on node1 writes content 0x11 on a shared filesystem; B on node2,
	 * which mounts it elsewhere, reads that version: a dependency across
	 * nodes, with the path B used beside the artifact. */
	struct frag_spec a = spec_a;
	a.loc = "/out.bin";
	assert_int_equal(ingest_spec(fx, &fx->k1, 1, &a), WEFT_ACK_STORED);
	struct frag_spec b = {"run-b",           "task-b", "task-a", "node2",
			      "/node2/copy.bin", 0x11,     false};
	b.loc = "/out.bin";
	assert_int_equal(ingest_spec(fx, &fx->k2, 1, &b), WEFT_ACK_STORED);

	weft_dag d;
	assert_int_equal(weft_store_dag(fx->s, fx->job, &d), WEFT_OK);
	assert_int_equal(d.ntasks, 2);
	const weft_dag_task *ta = task_named(&d, "task-a");
	const weft_dag_task *tb = task_named(&d, "task-b");
	assert_non_null(ta);
	assert_non_null(tb);
	assert_string_equal(ta->node, "node1");
	assert_string_equal(tb->node, "node2");
	assert_null(ta->parent);
	assert_non_null(tb->parent);
	assert_string_equal(tb->parent, ta->id);
	assert_int_equal(d.nartifacts, 1);
	assert_int_equal(d.nedges, 2);
	bool wrote = false, read = false;
	for (size_t i = 0; i < d.nedges; i++) {
		if (d.edges[i].write && !strcmp(d.edges[i].from, ta->id))
			wrote = true;
		if (!d.edges[i].write && !strcmp(d.edges[i].to, tb->id) &&
		    !strcmp(d.edges[i].from, d.artifacts[0].id))
			read = !d.edges[i].weak && d.edges[i].path &&
			       !strcmp(d.edges[i].path, "/node2/copy.bin");
	}
	assert_true(wrote && read);
	assert_string_equal(d.artifacts[0].path, "/shared/out.bin");
	assert_string_equal(d.artifacts[0].loc_fs, "nfs4 server:/export");
	weft_dag_release(&d);
	/* The local DAG (no job) still has them; another job has nothing. */
	char other[WEFT_JOB_ID_BYTES + 1];
	weft_uuid_new(other);
	assert_int_equal(weft_store_dag(fx->s, other, &d), WEFT_ENOTFOUND);
}

static void bad_cb(void *ctx, const char *job, const uint8_t *pk, uint64_t seq,
		   const char *why)
{
	(void)job;
	(void)pk;
	(void)why;
	*(uint64_t *)ctx = seq;
}

static void test_verify(void **state)
{
	struct fixture *fx = *state;
	weft_verdict v;
	job_create(fx, token, WEFT_ACK_STORED);
	enrol(fx, &fx->k1, token, &v);
	struct frag_spec b = spec_a;
	assert_int_equal(ingest_spec(fx, &fx->k1, 1, &spec_a), WEFT_ACK_STORED);
	b.run = "run-b2";
	b.path = "/other";
	assert_int_equal(ingest_spec(fx, &fx->k1, 2, &b), WEFT_ACK_STORED);
	weft_verify_counts c;
	uint64_t bad_seq = 0;
	assert_int_equal(weft_store_verify(fx->s, NULL, &c, bad_cb, &bad_seq),
			 WEFT_OK);
	assert_int_equal(c.envelopes, 2);
	assert_int_equal(c.ok, 2);
	assert_int_equal(c.jobs, 1);
	assert_int_equal(c.writers, 1);

	/* Tamper with seq 2's stored bytes behind the store's back: the
	 * signature (over the payload hash) no longer holds. */
	tamper_envelope(fx->t.db, &fx->k1, 2, "/other");

	assert_int_equal(
		weft_store_verify(fx->s, fx->job, &c, bad_cb, &bad_seq),
		WEFT_OK);
	assert_int_equal(c.ok, 1);
	assert_int_equal(c.bad_signature, 1);
	assert_int_equal(bad_seq, 2);
}

/* Apply envelopes in one transaction, as a coordinator batch does; each
 * verdict's status (or -reason) into got. Returns the commit's result. */
static int apply_batch(struct fixture *fx, weft_buf *envs, size_t n, int *got)
{
	assert_int_equal(weft_store_writer_begin(fx->w), WEFT_OK);
	for (size_t i = 0; i < n; i++) {
		weft_envelope e;
		weft_fragment f;
		weft_verdict v;
		assert_int_equal(weft_envelope_check(envs[i].data, envs[i].len,
						     &e, &f, &v),
				 WEFT_OK);
		weft_store_apply_fragment(fx->w, envs[i].data, envs[i].len, &e,
					  &f, 1000, &v);
		got[i] = v.status == WEFT_ACK_REJECTED ? -v.reason : v.status;
		weft_fragment_release(&f);
	}
	return weft_store_writer_commit(fx->w);
}

static void exec_sql(struct fixture *fx, const char *sql)
{
	sqlite3 *db;
	assert_int_equal(sqlite3_open(fx->t.db, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
}

/* Fragments that start a run are stored without a savepoint; one that
 * fails part-way (here a trigger refuses its file record, which the checks
 * before the first write cannot know) fails the commit with redo set, and
 * the same batch applied again (now one savepoint per request) stores the
 * others. */
static void test_batch_redo(void **state)
{
	struct fixture *fx = *state;
	weft_verdict v;
	job_create(fx, token, WEFT_ACK_STORED);
	enrol(fx, &fx->k1, token, &v);
	exec_sql(fx, "CREATE TRIGGER refuse BEFORE INSERT ON file_io "
		     "WHEN (SELECT path FROM paths WHERE id = NEW.path) = "
		     "CAST('/bad' AS BLOB) "
		     "BEGIN SELECT RAISE(ABORT, 'injected'); END");
	struct frag_spec sp[3] = {
		{"run-1", "t1", NULL, "n", "/ok/1", 0x21, true, 0, 0},
		{"run-2", "t2", NULL, "n", "/bad", 0x22, true, 0, 0},
		{"run-3", "t3", NULL, "n", "/ok/3", 0x23, true, 0, 0},
	};
	weft_buf envs[3];
	for (int i = 0; i < 3; i++)
		seal_fragment(fx->job, &fx->k1, (uint64_t)i + 1, &sp[i],
			      &envs[i]);
	int got[3];
	assert_int_equal(apply_batch(fx, envs, 3, got), WEFT_EDB);
	assert_true(weft_store_writer_redo(fx->w));
	assert_int_equal(sql_count(fx->t.db, "envelopes"), 0);
	assert_int_equal(sql_count(fx->t.db, "paths"), 0);
	assert_int_equal(apply_batch(fx, envs, 3, got), WEFT_OK);
	assert_false(weft_store_writer_redo(fx->w));
	assert_int_equal(got[0], WEFT_ACK_STORED);
	/* Isolated, the trigger's constraint error reads as a record the
	 * run repeats (a database error would be RETRY). */
	assert_int_equal(got[1], -WEFT_REJECT_MALFORMED);
	assert_int_equal(got[2], WEFT_ACK_STORED);
	assert_int_equal(sql_count(fx->t.db, "envelopes"), 2);
	assert_int_equal(sql_count(fx->t.db, "runs"), 2);
	assert_int_equal(sql_count(fx->t.db, "file_io"), 2);
	/* The path the undone request added (and the writer cached) is
	 * gone with it; once the cause is gone the request is stored. */
	assert_int_equal(sql_count(fx->t.db, "paths"), 2);
	exec_sql(fx, "DROP TRIGGER refuse");
	assert_int_equal(ingest_envelope(fx->w, &envs[1]), WEFT_ACK_STORED);
	assert_int_equal(ingest_envelope(fx->w, &envs[1]), WEFT_ACK_DUPLICATE);
	assert_int_equal(sql_int(fx->t.db,
				 "SELECT count(*) FROM file_io f JOIN "
				 "paths p ON p.id = f.path WHERE p.path = "
				 "CAST('/bad' AS BLOB)"),
			 1);
	/* A replay naming a new run (the unguarded path's duplicate check
	 * is the envelope insert itself): refused, nothing of it stored. */
	struct frag_spec other = sp[0];
	other.run = "run-4";
	other.path = "/ok/4";
	assert_int_equal(ingest_spec(fx, &fx->k1, 1, &other),
			 -WEFT_REJECT_REPLAY);
	assert_int_equal(sql_count(fx->t.db, "runs"), 3);
	assert_int_equal(sql_count(fx->t.db, "paths"), 3);
	/* The same path and hash again from a new run: the cached ids. */
	other = sp[0];
	other.run = "run-5";
	assert_int_equal(ingest_spec(fx, &fx->k1, 5, &other), WEFT_ACK_STORED);
	assert_int_equal(sql_count(fx->t.db, "paths"), 3);
	assert_int_equal(sql_count(fx->t.db, "artifacts"), 3);
	assert_int_equal(sql_int(fx->t.db,
				 "SELECT count(DISTINCT artifact) FROM "
				 "file_io WHERE path = (SELECT path FROM "
				 "file_io WHERE run = (SELECT num FROM runs "
				 "WHERE id = 'run-1'))"),
			 1);
	for (int i = 0; i < 3; i++)
		weft_buf_free(&envs[i]);
}

/* Everything a job's row holds, as a copy of the store would give it: the
 * bytes of every BLOB column of jobs, for the test to try as a key. */
static void stored_job_blobs(struct fixture *fx, uint8_t keys[8][32], int *n)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	assert_int_equal(sqlite3_open(fx->t.db, &db), SQLITE_OK);
	assert_int_equal(
		sqlite3_prepare_v2(db, "SELECT * FROM jobs", -1, &st, NULL),
		SQLITE_OK);
	*n = 0;
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	for (int c = 0; c < sqlite3_column_count(st) && *n < 8; c++)
		if (sqlite3_column_bytes(st, c) == 32 &&
		    sqlite3_column_type(st, c) == SQLITE_BLOB)
			memcpy(keys[(*n)++], sqlite3_column_blob(st, c), 32);
	sqlite3_finalize(st);
	sqlite3_close(db);
}

/* Issue 14 item 3: nothing a copy of the store holds proves the token:
 * every 32-byte value of the job's row, used as the token-derived key,
 * enrols no writer and ends no job. */
static void test_store_copy_proves_nothing(void **state)
{
	struct fixture *fx = *state;
	job_create(fx, token, WEFT_ACK_STORED);
	uint8_t keys[8][32];
	int n;
	stored_job_blobs(fx, keys, &n);
	for (int i = 0; i < n; i++) {
		weft_token_proof p;
		memset(&p, 0, sizeof(p));
		p.has_mac = true;
		weft_enrol_mac(keys[i], fx->job, fx->k2.pk, p.mac);
		weft_verdict v;
		assert_int_equal(weft_store_writer_begin(fx->w), WEFT_OK);
		weft_store_apply_enrol(fx->w, fx->job, fx->k2.pk, &p, 200, &v);
		assert_int_equal(weft_store_writer_commit(fx->w), WEFT_OK);
		assert_int_equal(v.status, WEFT_ACK_REJECTED);
		assert_int_equal(v.reason, WEFT_REJECT_BAD_TOKEN);
		weft_job_end_mac(keys[i], fx->job, 7, p.mac);
		assert_int_equal(weft_store_writer_begin(fx->w), WEFT_OK);
		weft_store_apply_job_end(fx->w, fx->job, 7, 900, &p, &v);
		assert_int_equal(weft_store_writer_commit(fx->w), WEFT_OK);
		assert_int_equal(v.status, WEFT_ACK_REJECTED);
		assert_int_equal(v.reason, WEFT_REJECT_BAD_TOKEN);
	}
	assert_int_equal(sql_count(fx->t.db, "writers"), 0);
	assert_int_equal(sql_int(fx->t.db, "SELECT count(*) FROM jobs "
					   "WHERE state = 'ended'"),
			 0);
	/* The token itself still does both. */
	weft_verdict v;
	assert_int_equal(enrol(fx, &fx->k1, token, &v), WEFT_ACK_STORED);
	assert_int_equal(job_end(fx, token, 0), WEFT_ACK_STORED);
}

/* Issue 14 item 4: a writer that could not enrol before the job ended
 * (the coordinator was away) enrols late with the proof it made while it
 * had the token, and its fragments are stored; a late enrolment without
 * that proof is still refused. */
static void test_late_writer(void **state)
{
	struct fixture *fx = *state;
	weft_verdict v;
	job_create(fx, token, WEFT_ACK_STORED);
	assert_int_equal(job_end(fx, token, 0), WEFT_ACK_STORED);
	assert_int_equal(enrol(fx, &fx->k2, "wrong-token-0123456789", &v),
			 WEFT_ACK_REJECTED);
	assert_int_equal(v.reason, WEFT_REJECT_BAD_TOKEN);
	assert_int_equal(ingest_spec(fx, &fx->k2, 1, &spec_a),
			 -WEFT_REJECT_JOB_ENDED);
	assert_int_equal(enrol(fx, &fx->k2, token, &v), WEFT_ACK_STORED);
	assert_int_equal(enrol(fx, &fx->k2, token, &v), WEFT_ACK_DUPLICATE);
	assert_int_equal(ingest_spec(fx, &fx->k2, 1, &spec_a), WEFT_ACK_STORED);
	assert_int_equal(sql_count(fx->t.db, "tasks"), 1);
}

/* A store an older weft wrote (jobs keep enrol_key, no verifier), with
 * one open and one ended job, is migrated: the ended job's key is
 * erased; the open one still enrols with the legacy MAC until it ends,
 * then its key is erased too and it takes no late writers. */
static void test_store_from_older_weft(void **state)
{
	struct fixture *fx = *state;
	weft_store_writer_free(fx->w);
	weft_store_close(fx->s);
	uint8_t key[WEFT_MAC_BYTES];
	weft_enrol_key(token, key);
	char sql[2048], hex[2 * WEFT_MAC_BYTES + 1];
	for (int i = 0; i < WEFT_MAC_BYTES; i++)
		sprintf(hex + 2 * i, "%02x", key[i]);
	snprintf(sql, sizeof(sql),
		 STORE_BEFORE_STEP_12
		 "ALTER TABLE jobs DROP COLUMN verifier;"
		 "DROP TABLE refusals;" /* step 5 */
		 "DROP TABLE touches;"  /* step 6 */
		 "ALTER TABLE processes DROP COLUMN indexed;"
		 "ALTER TABLE processes DROP COLUMN parent;"
		 "ALTER TABLE processes DROP COLUMN by_exec;"
		 "ALTER TABLE processes DROP COLUMN execd;"
		 "ALTER TABLE processes DROP COLUMN started_ns;"
		 "ALTER TABLE processes DROP COLUMN ended_ns;"
		 "ALTER TABLE processes DROP COLUMN exe_hash;" /* step 8 */
		 "ALTER TABLE processes DROP COLUMN env_state;"
		 "ALTER TABLE processes DROP COLUMN env;"
		 "ALTER TABLE processes DROP COLUMN env_missing;"
		 "INSERT INTO jobs (id, enrol_key, state, created_ns, command, "
		 "user, host, cwd, git) VALUES ('%s', x'%s', 'open', 1, '', "
		 "'', '', '', '');"
		 "INSERT INTO jobs (id, enrol_key, state, created_ns, command, "
		 "user, host, cwd, git) VALUES "
		 "('00000000-0000-4000-8000-000000000000', x'%s', 'ended', 1, "
		 "'', '', '', '', '');"
		 "PRAGMA user_version = 3;",
		 fx->job, hex, hex);
	sqlite3 *db;
	assert_int_equal(sqlite3_open(fx->t.db, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);

	store_writer_open(fx->t.db, &fx->s, &fx->w);
	assert_int_equal(sql_int(fx->t.db, "SELECT count(*) FROM jobs WHERE "
					   "enrol_key = zeroblob(32)"),
			 1);
	weft_verdict v;
	assert_int_equal(enrol(fx, &fx->k1, token, &v), WEFT_ACK_STORED);
	assert_int_equal(job_end(fx, "wrong-token-0123456789", 0),
			 -WEFT_REJECT_BAD_TOKEN);
	assert_int_equal(job_end(fx, token, 0), WEFT_ACK_STORED);
	assert_int_equal(sql_int(fx->t.db, "SELECT count(*) FROM jobs WHERE "
					   "enrol_key = zeroblob(32)"),
			 2);
	assert_int_equal(enrol(fx, &fx->k1, token, &v), WEFT_ACK_DUPLICATE);
	assert_int_equal(enrol(fx, &fx->k2, token, &v), WEFT_ACK_REJECTED);
	assert_int_equal(v.reason, WEFT_REJECT_JOB_ENDED);
	assert_int_equal(ingest_spec(fx, &fx->k1, 1, &spec_a), WEFT_ACK_STORED);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_jobs_and_enrolment, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_refusals_named, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_ingest_idempotent, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_path_twice_in_one_fragment,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_known_and_new_values,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_parts_and_gaps, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_late_part_chained, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_dag_across_writers, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_verify, setup, teardown),
		cmocka_unit_test_setup_teardown(test_batch_redo, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_store_copy_proves_nothing,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_late_writer, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_store_from_older_weft,
						setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
