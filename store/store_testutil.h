/*
 * store_testutil.h - helpers the store's cmocka tests share: a scratch
 * directory per test, files in it, report builders, and the fragment
 * store's fixtures (jobs, enrolment, sealed one-file fragments, a query's
 * count). Header-only so each *_test.c stays one self-contained program.
 */
#ifndef WEFT_STORE_TESTUTIL_H
#define WEFT_STORE_TESTUTIL_H

#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include <weft/store.h>

/* A store as builds before schema step 12 left it (no chains, the index
 * by location): to put before a test's SQL that makes an older store. */
#define STORE_BEFORE_STEP_12                                                   \
	"DROP TABLE loc_heads;"                                                \
	"ALTER TABLE file_io DROP COLUMN prev_run;"                            \
	"ALTER TABLE file_io DROP COLUMN prev_path;"                           \
	"CREATE INDEX file_io_by_location ON file_io (loc_path, loc_fs)"       \
	"  WHERE loc_path IS NOT NULL;"

/* 1 when every located record of file_io is on its location's chain
 * (step 12) exactly once, each chain going down file_io's key from its
 * head; else 0. */
#define STORE_CHAINS_WHOLE_SQL                                                 \
	"WITH RECURSIVE c AS (SELECT f.run, f.path, f.loc_path, f.loc_fs, "    \
	"f.prev_run, f.prev_path FROM loc_heads h JOIN file_io f "             \
	"ON f.run = h.run AND f.path = h.path AND f.loc_path = h.loc_path "    \
	"AND f.loc_fs = h.loc_fs UNION ALL SELECT f.run, f.path, f.loc_path, " \
	"f.loc_fs, f.prev_run, f.prev_path FROM c JOIN file_io f "             \
	"ON f.run = c.prev_run AND f.path = c.prev_path "                      \
	"WHERE (c.prev_run, c.prev_path) < (c.run, c.path) "                   \
	"AND f.loc_path = c.loc_path AND f.loc_fs = c.loc_fs) "                \
	"SELECT (SELECT count(*) FROM c) = (SELECT count(*) FROM file_io "     \
	"WHERE loc_path IS NOT NULL AND loc_fs IS NOT NULL) "                  \
	"AND (SELECT count(*) FROM (SELECT DISTINCT run, path FROM c)) = "     \
	"(SELECT count(*) FROM c) "                                            \
	"AND NOT EXISTS (SELECT 1 FROM c WHERE prev_run IS NOT NULL AND "      \
	"(prev_run, prev_path) NOT IN (SELECT run, path FROM c))"

struct scratch {
	char dir[256];
	char db[300];
};

static inline int scratch_rm_one(const char *path, const struct stat *st,
				 int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static inline void scratch_init(struct scratch *t)
{
	const char *tmp = getenv("TMPDIR");
	snprintf(t->dir, sizeof(t->dir), "%s/weft-store-test-XXXXXX",
		 tmp && tmp[0] ? tmp : "/tmp");
	if (!mkdtemp(t->dir)) {
		perror("mkdtemp");
		abort();
	}
	snprintf(t->db, sizeof(t->db), "%s/weft.db", t->dir);
}

static inline void scratch_fini(struct scratch *t)
{
	nftw(t->dir, scratch_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* dir/name, in a static-free caller buffer. */
/* cmocka group/test fixtures: *state is a fresh scratch directory. */
static inline int scratch_setup(void **state)
{
	struct scratch *t = calloc(1, sizeof(*t));
	if (!t)
		return -1;
	scratch_init(t);
	*state = t;
	return 0;
}

static inline int scratch_teardown(void **state)
{
	scratch_fini(*state);
	free(*state);
	return 0;
}

static inline char *scratch_path(const struct scratch *t, const char *name,
				 char *out, size_t outsz)
{
	snprintf(out, outsz, "%s/%s", t->dir, name);
	return out;
}

/* A file's size, -1 when it is not there. */
static inline off_t size_of(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 ? st.st_size : -1;
}

static inline void write_file(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || write(fd, data, len) != (ssize_t)len || close(fd)) {
		perror(path);
		abort();
	}
}

static inline char *xstrdup(const char *s)
{
	char *p = strdup(s);
	if (!p)
		abort();
	return p;
}

/* A cmocka fixture with a store open in a scratch directory: *state is
 * a struct store_fixture. */
struct store_fixture {
	struct scratch t;
	weft_store *s;
};

static inline int store_fixture_setup(void **state)
{
	struct store_fixture *f = calloc(1, sizeof(*f));
	if (!f)
		return -1;
	scratch_init(&f->t);
	if (weft_store_open(f->t.db, &f->s) != WEFT_OK)
		return -1;
	*state = f;
	return 0;
}

static inline int store_fixture_teardown(void **state)
{
	struct store_fixture *f = *state;
	weft_store_close(f->s);
	scratch_fini(&f->t);
	free(f);
	return 0;
}

/* A store at db and its fragment writer, opened (asserted) and closed
 * (both NULL after). */
static inline void store_writer_open(const char *db, weft_store **s,
				     weft_store_writer **w)
{
	assert_int_equal(weft_store_open(db, s), WEFT_OK);
	assert_int_equal(weft_store_writer_new(*s, w), WEFT_OK);
}

static inline void store_writer_close(weft_store **s, weft_store_writer **w)
{
	weft_store_writer_free(*w);
	weft_store_close(*s);
	*w = NULL;
	*s = NULL;
}

/* A fresh job id and two writers' keys for it. */
static inline void new_job_keys(char *job, weft_writer_key *k1,
				weft_writer_key *k2)
{
	weft_uuid_new(job);
	weft_writer_key_new(k1);
	weft_writer_key_new(k2);
}

/* A process record with argv from a NULL-terminated list. */
static inline weft_process_rec *
add_process(weft_report *r, int32_t pid, int32_t ppid, const char *const *argv)
{
	weft_process_rec *p = weft_report_add_process(r);
	if (!p)
		abort();
	p->pid = pid;
	p->ppid = ppid;
	while (argv[p->argc])
		p->argc++;
	p->argv = calloc(p->argc ? p->argc : 1, sizeof(char *));
	if (!p->argv)
		abort();
	for (uint32_t i = 0; i < p->argc; i++)
		p->argv[i] = xstrdup(argv[i]);
	return p;
}

/* A ptrace report of run id on node n1 from started to ended, with one
 * process (pid 10) whose command is the id. */
static inline void report_of_run(weft_report *r, const char *id,
				 int64_t started, int64_t ended)
{
	weft_report_init(r);
	strcpy(r->run_id, id);
	strcpy(r->backend, "ptrace");
	strcpy(r->node, "n1");
	r->started_ns = started;
	r->ended_ns = ended;
	const char *argv[] = {id, NULL};
	add_process(r, 10, 0, argv);
}

static inline weft_file_rec *add_file(weft_report *r, const char *path,
				      bool read, bool written)
{
	weft_file_rec *f = weft_report_add_file(r);
	if (!f)
		abort();
	f->path = xstrdup(path);
	f->read = read;
	f->written = written;
	return f;
}

static inline void hash_of(uint8_t h[32], uint8_t byte)
{
	memset(h, byte, 32);
}

/* One integer a query returns on the connection h. */
static inline int64_t sql_int_on(sqlite3 *h, const char *sql)
{
	sqlite3_stmt *st;
	assert_int_equal(sqlite3_prepare_v2(h, sql, -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	int64_t v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

/* One integer a query returns, read on a separate connection (so it sees
 * only what was committed). */
static inline int64_t sql_int(const char *db, const char *sql)
{
	sqlite3 *h;
	assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
	int64_t v = sql_int_on(h, sql);
	sqlite3_close(h);
	return v;
}

/* The number of rows of table in db. */
static inline int64_t sql_count(const char *db, const char *table)
{
	char sql[128];
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", table);
	return sql_int(db, sql);
}

/* ---- The fragment store: jobs, writers, fragments ---- */

/* Each request is applied by w in its own transaction, as a coordinator
 * applies it; the result is the verdict's status (v says why). */

static inline int apply_job_create(weft_store_writer *w, const char *job,
				   const char *tok, weft_verdict *v)
{
	weft_job_info j = {0};
	strcpy(j.id, job);
	strcpy(j.token, tok);
	j.command = "sbatch job.sh";
	strcpy(j.user, "ada");
	strcpy(j.host, "head");
	strcpy(j.cwd, "/home/ada");
	strcpy(j.git, "abc123");
	j.created_ns = 100;
	assert_int_equal(weft_store_writer_begin(w), WEFT_OK);
	weft_store_apply_job_create(w, &j, v);
	assert_int_equal(weft_store_writer_commit(w), WEFT_OK);
	return v->status;
}

/* The proofs a wrapper sends for enrolling k in job (k not NULL) or a
 * submitter for ending job with code, made from tok. */
static inline void token_proof_of(const char *job, const char *tok,
				  const weft_writer_key *k, int32_t code,
				  weft_token_proof *p)
{
	weft_buf b;
	weft_buf_init(&b);
	weft_request r;
	if (k)
		assert_int_equal(weft_req_enrol(job, tok, k->pk, &b), WEFT_OK);
	else
		assert_int_equal(weft_req_job_end(job, tok, code, 900, &b),
				 WEFT_OK);
	assert_int_equal(weft_request_decode(b.data, b.len, &r), WEFT_OK);
	*p = r.proof;
	weft_request_release(&r);
	weft_buf_free(&b);
}

/* Enrol k in job with the proofs made from tok (at time 200). */
static inline int apply_enrol(weft_store_writer *w, const char *job,
			      const char *tok, const weft_writer_key *k,
			      weft_verdict *v)
{
	weft_token_proof p;
	token_proof_of(job, tok, k, 0, &p);
	assert_int_equal(weft_store_writer_begin(w), WEFT_OK);
	weft_store_apply_enrol(w, job, k->pk, &p, 200, v);
	assert_int_equal(weft_store_writer_commit(w), WEFT_OK);
	return v->status;
}

/* End job with code, the proofs made from tok (at time 900). */
static inline int apply_job_end(weft_store_writer *w, const char *job,
				const char *tok, int32_t code, weft_verdict *v)
{
	weft_token_proof p;
	token_proof_of(job, tok, NULL, code, &p);
	assert_int_equal(weft_store_writer_begin(w), WEFT_OK);
	weft_store_apply_job_end(w, job, code, 900, &p, v);
	assert_int_equal(weft_store_writer_commit(w), WEFT_OK);
	return v->status;
}

/* A one-file fragment: the task reads or writes path with content hash
 * byte h (0: no hash). */
struct frag_spec {
	const char *run, *task, *parent, *node, *path;
	uint8_t h;
	bool write;
	uint32_t part, nparts;
	/* When set: the file's location on a shared filesystem ("nfs4
	 * server:/export" and this path below it), the version read (h),
	 * written at time 10 and first opened at time 20. */
	const char *loc;
};

/* sp as fragment seq of job by k (one "tool" process), sealed into env
 * (initialized here; the caller frees it). */
static inline void seal_fragment(const char *job, const weft_writer_key *k,
				 uint64_t seq, const struct frag_spec *sp,
				 weft_buf *env)
{
	weft_fragment f;
	weft_fragment_init(&f);
	strcpy(f.job, job);
	memcpy(f.writer, k->pk, WEFT_PUBKEY_BYTES);
	f.seq = seq;
	strcpy(f.task.id, sp->task);
	strcpy(f.task.name, sp->task);
	if (sp->parent)
		strcpy(f.task.parent, sp->parent);
	f.part = sp->part;
	f.nparts = sp->nparts ? sp->nparts : 1;
	weft_report *r = &f.report;
	strcpy(r->run_id, sp->run);
	strcpy(r->backend, "ptrace");
	strcpy(r->node, sp->node);
	r->started_ns = (int64_t)seq;
	weft_process_rec *p = weft_report_add_process(r);
	p->pid = (int32_t)(100 + seq);
	p->argc = 1;
	p->argv = calloc(2, sizeof(char *));
	p->argv[0] = strdup("tool");
	p->exited = true;
	weft_file_rec *fr = weft_report_add_file(r);
	fr->path = strdup(sp->path);
	fr->read = !sp->write;
	fr->written = sp->write;
	if (sp->h) {
		fr->has_hash = true;
		memset(fr->hash, sp->h, 32);
	}
	if (sp->loc) {
		fr->loc_fs = strdup("nfs4 server:/export");
		fr->loc_path = strdup(sp->loc);
		if (sp->write) {
			fr->last_write_ns = 10;
		} else {
			fr->first_open_ns = 20;
			fr->has_read_hash = sp->h != 0;
			memset(fr->read_hash, sp->h, 32);
		}
	}
	weft_buf payload;
	weft_buf_init(&payload);
	assert_int_equal(weft_fragment_encode(&f, &payload), WEFT_OK);
	weft_buf_init(env);
	assert_int_equal(
		weft_envelope_seal(job, k, seq, payload.data, payload.len, env),
		WEFT_OK);
	weft_buf_free(&payload);
	weft_fragment_release(&f);
}

/* Ingest an envelope (at time 1000) in w's own transaction; returns the
 * status, or -reason when rejected. */
static inline int ingest_envelope(weft_store_writer *w, const weft_buf *env)
{
	weft_verdict v;
	assert_int_equal(
		weft_store_ingest_envelope(w, env->data, env->len, 1000, &v),
		WEFT_OK);
	return v.status == WEFT_ACK_REJECTED ? -v.reason : v.status;
}

/* Flip the case of the byte after needle inside the payload of (writer
 * k, seq) stored in db behind the store's back, keeping the recorded
 * payload hash consistent (so only the signature can tell). */
static inline void tamper_envelope(const char *db_path,
				   const weft_writer_key *k, uint64_t seq,
				   const char *needle)
{
	sqlite3 *db;
	assert_int_equal(sqlite3_open(db_path, &db), SQLITE_OK);
	sqlite3_stmt *st;
	assert_int_equal(sqlite3_prepare_v2(db,
					    "SELECT e.num, e.raw FROM "
					    "envelopes e JOIN writers w ON "
					    "w.num = e.writer WHERE w.pubkey "
					    "= ?1 AND e.seq = ?2",
					    -1, &st, NULL),
			 SQLITE_OK);
	sqlite3_bind_blob(st, 1, k->pk, WEFT_PUBKEY_BYTES, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)seq);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	sqlite3_int64 num = sqlite3_column_int64(st, 0);
	size_t n = (size_t)sqlite3_column_bytes(st, 1);
	uint8_t *raw = malloc(n);
	memcpy(raw, sqlite3_column_blob(st, 1), n);
	sqlite3_finalize(st);
	uint8_t *p = memmem(raw, n, needle, strlen(needle));
	assert_non_null(p);
	p[1] ^= 0x20;
	weft_envelope e;
	assert_int_equal(weft_envelope_decode(raw, n, &e), WEFT_OK);
	uint8_t h[32];
	weft_payload_hash(e.payload, e.payload_len, h);
	assert_int_equal(sqlite3_prepare_v2(db,
					    "UPDATE envelopes SET raw = ?1, "
					    "payload_hash = ?2 WHERE num = ?3",
					    -1, &st, NULL),
			 SQLITE_OK);
	sqlite3_bind_blob(st, 1, raw, (int)n, SQLITE_STATIC);
	sqlite3_bind_blob(st, 2, h, 32, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, num);
	assert_int_equal(sqlite3_step(st), SQLITE_DONE);
	sqlite3_finalize(st);
	sqlite3_close(db);
	free(raw);
}

#endif /* WEFT_STORE_TESTUTIL_H */
