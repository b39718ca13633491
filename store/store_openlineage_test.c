/*
 * store_openlineage_test.c - OpenLineage events from the store
 * (export_openlineage.c) and the outbox the store's triggers fill: run
 * ids, dataset names (node-local and shared), a parent task that comes
 * after its children, exactly-once queueing of a task cut into parts,
 * a second handle seeing what was queued after it last looked, and
 * tasks announced as they start (TASK_START): their START at once and
 * once, the same bytes in every export, a sink added later served, and
 * the store step that brought the announcements in keeping the queue.
 */
#include "store_testutil.h"

static const char token[] = "0123456789abcdef0123456789abcdef";
/* A task of one part writing one file. */
static const struct frag_spec task_one = {.run = "r1",
					  .task = "t1",
					  .node = "n1",
					  .path = "/data/out",
					  .h = 7,
					  .write = true};
static const char triggers_sql[] =
	"SELECT count(*) FROM sqlite_master WHERE type = 'trigger'";

struct fixture {
	struct scratch t;
	weft_store *s, *reader; /* the writer's, and the sender's */
	weft_store_writer *w;
	char job[WEFT_JOB_ID_BYTES + 1];
	weft_writer_key k;
	int64_t sink;
};

static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));
	scratch_init(&fx->t);
	assert_int_equal(weft_store_open(fx->t.db, &fx->s), WEFT_OK);
	assert_int_equal(weft_store_open_sibling(fx->s, &fx->reader), WEFT_OK);
	assert_int_equal(weft_store_writer_new(fx->s, &fx->w), WEFT_OK);
	assert_int_equal(weft_ol_sink_add(fx->reader, "file:/x", 1, &fx->sink),
			 WEFT_OK);
	weft_uuid_new(fx->job);
	weft_writer_key_new(&fx->k);
	weft_verdict v;
	assert_int_equal(apply_job_create(fx->w, fx->job, token, &v),
			 WEFT_ACK_STORED);
	assert_int_equal(apply_enrol(fx->w, fx->job, token, &fx->k, &v),
			 WEFT_ACK_STORED);
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;
	weft_store_writer_free(fx->w);
	weft_store_close(fx->s);
	weft_store_close(fx->reader);
	scratch_fini(&fx->t);
	free(fx);
	return 0;
}

static void ingest(struct fixture *fx, uint64_t seq, const struct frag_spec *sp)
{
	weft_buf env;
	seal_fragment(fx->job, &fx->k, seq, sp, &env);
	assert_int_equal(ingest_envelope(fx->w, &env), WEFT_ACK_STORED);
	weft_buf_free(&env);
}

/* The next event for the sink through the reader handle, taken out;
 * NULL when none is ready. */
static char *next_event(struct fixture *fx)
{
	int64_t seq;
	char *json;
	size_t len;
	int err = weft_ol_outbox_next(fx->reader, fx->sink, NULL, &seq, &json,
				      &len);
	if (err == WEFT_ENOTFOUND)
		return NULL;
	assert_int_equal(err, WEFT_OK);
	assert_int_equal(strlen(json), len);
	assert_int_equal(weft_ol_outbox_sent(fx->reader, fx->sink, seq),
			 WEFT_OK);
	return json;
}

static char *export_text(weft_store *s, const char *job, const char *run)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&buf, &len);
	assert_non_null(m);
	assert_int_equal(weft_store_openlineage(s, job, run, NULL, m), WEFT_OK);
	fclose(m);
	return buf;
}

static void test_uuid(void **state)
{
	(void)state;
	char a[37], b[37], c[37];
	weft_ol_run_uuid("task", "run-1", a);
	weft_ol_run_uuid("task", "run-1", b);
	weft_ol_run_uuid("job", "run-1", c);
	assert_string_equal(a, b);
	assert_string_not_equal(a, c);
	assert_int_equal(strlen(a), 36);
	assert_int_equal(a[14], '8');           /* version 8 */
	assert_non_null(strchr("89ab", a[19])); /* RFC variant */
}

static void test_namespace_check(void **state)
{
	(void)state;
	assert_int_equal(weft_ol_namespace_check("lab-a"), WEFT_OK);
	assert_int_equal(weft_ol_namespace_check(""), WEFT_EINVAL);
	assert_int_equal(weft_ol_namespace_check("a b"), WEFT_EINVAL);
	char big[WEFT_OL_MAX_NAMESPACE_BYTES + 2];
	memset(big, 'n', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(weft_ol_namespace_check(big), WEFT_EINVAL);
	big[WEFT_OL_MAX_NAMESPACE_BYTES] = '\0';
	assert_int_equal(weft_ol_namespace_check(big), WEFT_OK);
}

/* Queued once per event, in order, and seen by the other handle. */
static void test_outbox_order(void **state)
{
	struct fixture *fx = *state;
	char *e = next_event(fx);
	assert_non_null(strstr(e, "\"eventType\": \"START\""));
	assert_non_null(strstr(e, "\"jobType\": \"JOB\""));
	free(e);
	assert_null(next_event(fx));
	/* Stored after the reader last looked. */
	struct frag_spec sp = task_one;
	ingest(fx, 1, &sp);
	e = next_event(fx);
	assert_non_null(e);
	assert_non_null(strstr(e, "\"START\""));
	assert_non_null(strstr(e, "\"outputs\": []"));
	free(e);
	e = next_event(fx);
	assert_non_null(strstr(e, "\"COMPLETE\""));
	assert_non_null(strstr(e, "{\"namespace\": \"file://n1\", \"name\": "
				  "\"/data/out\""));
	assert_non_null(strstr(e, "\"datasetVersion\": \"blake2b-256:0707"));
	free(e);
	assert_null(next_event(fx));
	weft_verdict v;
	assert_int_equal(apply_job_end(fx->w, fx->job, token, 3, &v),
			 WEFT_ACK_STORED);
	e = next_event(fx);
	assert_non_null(strstr(e, "\"FAIL\""));
	assert_non_null(strstr(e, "exited with status 3"));
	free(e);
	assert_null(next_event(fx));
	weft_ol_sink_status *st;
	size_t n;
	assert_int_equal(weft_ol_outbox_status(fx->reader, &st, &n), WEFT_OK);
	assert_int_equal(n, 1);
	assert_int_equal(st[0].sent, 4);
	assert_int_equal(st[0].waiting, 0);
	weft_ol_sink_status_free(st, n);
	/* Committed: another connection sees it. */
	assert_int_equal(sql_int(fx->t.db, "SELECT sent FROM ol_sinks"), 4);
	assert_int_equal(sql_count(fx->t.db, "ol_outbox"), 0);
}

/* A task cut into two parts is queued once, when whole. */
static void test_parts(void **state)
{
	struct fixture *fx = *state;
	free(next_event(fx)); /* the job's start */
	struct frag_spec sp = {.run = "r2",
			       .task = "t2",
			       .node = "n1",
			       .path = "/a",
			       .h = 1,
			       .write = true,
			       .part = 0,
			       .nparts = 2};
	ingest(fx, 1, &sp);
	assert_null(next_event(fx));
	sp.part = 1;
	sp.path = "/b";
	ingest(fx, 2, &sp);
	weft_buf env; /* a duplicate changes nothing */
	seal_fragment(fx->job, &fx->k, 2, &sp, &env);
	assert_int_equal(ingest_envelope(fx->w, &env), WEFT_ACK_DUPLICATE);
	weft_buf_free(&env);
	char *start = next_event(fx), *end = next_event(fx);
	assert_non_null(strstr(end, "\"/a\""));
	assert_non_null(strstr(end, "\"/b\""));
	assert_null(next_event(fx));
	free(start);
	free(end);
}

/* A Ray task stored before its worker waits for it; its parent facet
 * names the worker's run. */
static void test_parent_waits(void **state)
{
	struct fixture *fx = *state;
	free(next_event(fx));
	struct frag_spec child = {.run = "rc",
				  .task = "child",
				  .parent = "worker",
				  .node = "n1",
				  .path = "/c",
				  .h = 2,
				  .write = true};
	ingest(fx, 1, &child);
	assert_null(next_event(fx));
	struct frag_spec worker = {.run = "rw",
				   .task = "worker",
				   .node = "n1",
				   .path = "/w",
				   .h = 3,
				   .write = true};
	ingest(fx, 2, &worker);
	char uuid[37], want[64];
	weft_ol_run_uuid("task", "rw", uuid);
	snprintf(want, sizeof(want), "\"runId\": \"%s\"", uuid);
	char *e = next_event(fx);
	assert_non_null(strstr(e, "\"parent\""));
	assert_non_null(strstr(strstr(e, "\"parent\""), want));
	free(e);
	for (int i = 0; i < 3; i++)
		free(next_event(fx));
	assert_null(next_event(fx));
}

/* Shared filesystems are named by their server and export. */
static void test_shared_name(void **state)
{
	struct fixture *fx = *state;
	struct frag_spec sp = {.run = "rs",
			       .task = "ts",
			       .node = "n9",
			       .path = "/mnt/x/in",
			       .h = 4,
			       .loc = "/d/in"};
	ingest(fx, 1, &sp);
	char *text = export_text(fx->s, NULL, "rs");
	assert_non_null(strstr(text, "{\"namespace\": \"file://server\", "
				     "\"name\": \"/export/d/in\""));
	assert_non_null(strstr(text, "\"datasetVersion\""));
	char *again = export_text(fx->s, NULL, "rs");
	assert_string_equal(text, again);
	free(text);
	free(again);
	char *m = NULL;
	size_t len;
	FILE *f = open_memstream(&m, &len);
	assert_int_equal(weft_store_openlineage(fx->s, NULL, "nope", NULL, f),
			 WEFT_ENOTFOUND);
	fclose(f);
	free(m);
}

/* Announce task (run id run, parent or NULL) signed with tok. */
static int announce(struct fixture *fx, const char *run, const char *task,
		    const char *parent, const char *tok)
{
	weft_task_start ts = {.started_ns = 50};
	strcpy(ts.job, fx->job);
	strcpy(ts.run, run);
	strcpy(ts.task, task);
	strcpy(ts.name, task);
	if (parent)
		strcpy(ts.parent, parent);
	strcpy(ts.node, "n1");
	strcpy(ts.backend, "ptrace");
	assert_int_equal(weft_task_start_sign(&ts, tok), WEFT_OK);
	weft_verdict v;
	assert_int_equal(weft_store_writer_begin(fx->w), WEFT_OK);
	weft_store_apply_task_start(fx->w, &ts, 60, &v);
	assert_int_equal(weft_store_writer_commit(fx->w), WEFT_OK);
	return v.status == WEFT_ACK_REJECTED ? -v.reason : v.status;
}

static const char run_a[] = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d";

/* The lines of text that hold needle, joined. */
static char *lines_with(const char *text, const char *needle)
{
	char *out = calloc(1, strlen(text) + 1);
	for (const char *p = text; *p;) {
		const char *nl = strchr(p, '\n');
		size_t n = nl ? (size_t)(nl - p) + 1 : strlen(p);
		char *line = strndup(p, n);
		if (strstr(line, needle))
			strcat(out, line);
		free(line);
		p += n;
	}
	return out;
}

/* START when announced, COMPLETE only when the record comes, and an
 * export that says what was sent, byte for byte. */
static void test_announced(void **state)
{
	struct fixture *fx = *state;
	free(next_event(fx)); /* the job's start */
	assert_int_equal(announce(fx, run_a, "t1", NULL, token),
			 WEFT_ACK_STORED);
	assert_int_equal(announce(fx, run_a, "t1", NULL, token),
			 WEFT_ACK_DUPLICATE);
	char *start = next_event(fx);
	assert_non_null(start);
	assert_non_null(strstr(start, "\"eventType\": \"START\""));
	assert_non_null(strstr(start, "\"inputs\": [], \"outputs\": []"));
	char uuid[37], want[64];
	weft_ol_run_uuid("task", run_a, uuid);
	snprintf(want, sizeof(want), "\"runId\": \"%s\"", uuid);
	assert_non_null(strstr(start, want));
	assert_null(next_event(fx));
	/* Before the record, the export has the START alone. */
	char *early = export_text(fx->s, fx->job, NULL);
	char *early_start = lines_with(early, want);
	assert_int_equal(strlen(early_start), strlen(start) + 1);
	assert_memory_equal(early_start, start, strlen(start));
	struct frag_spec sp = task_one;
	sp.run = run_a;
	ingest(fx, 1, &sp);
	char *end = next_event(fx);
	assert_non_null(strstr(end, "\"COMPLETE\""));
	assert_non_null(strstr(end, want));
	assert_null(next_event(fx));
	/* Exported twice, the same; and the task's lines are the two that
	 * were sent. */
	char *text = export_text(fx->s, fx->job, NULL);
	char *again = export_text(fx->s, fx->job, NULL);
	assert_string_equal(text, again);
	char *mine = lines_with(text, want), *sent = NULL;
	assert_true(asprintf(&sent, "%s\n%s\n", start, end) > 0);
	assert_string_equal(mine, sent);
	free(mine);
	mine = export_text(fx->s, NULL, run_a);
	assert_string_equal(mine, sent);
	/* Announced after its record: nothing more. */
	assert_int_equal(announce(fx, run_a, "t1", NULL, token),
			 WEFT_ACK_DUPLICATE);
	assert_null(next_event(fx));
	free(early);
	free(early_start);
	free(mine);
	free(sent);
	free(text);
	free(again);
	free(start);
	free(end);
}

/* Not proved with the job's token, or for no job: refused, nothing
 * queued; a task announced after its record is stored: no second
 * START. */
static void test_announce_refused(void **state)
{
	struct fixture *fx = *state;
	free(next_event(fx));
	assert_int_equal(
		announce(fx, run_a, "t1", NULL, "fedcba9876543210fedcba98"),
		-WEFT_REJECT_BAD_TOKEN);
	char job[WEFT_JOB_ID_BYTES + 1];
	memcpy(job, fx->job, sizeof(job));
	weft_uuid_new(fx->job);
	assert_int_equal(announce(fx, run_a, "t1", NULL, token),
			 -WEFT_REJECT_UNKNOWN_JOB);
	memcpy(fx->job, job, sizeof(job));
	assert_null(next_event(fx));
	struct frag_spec sp = {.run = run_a,
			       .task = "t1",
			       .node = "n1",
			       .path = "/o",
			       .h = 1,
			       .write = true};
	ingest(fx, 1, &sp);
	assert_int_equal(announce(fx, run_a, "t1", NULL, token),
			 WEFT_ACK_DUPLICATE);
	char *start = next_event(fx), *end = next_event(fx);
	assert_non_null(strstr(start, "\"START\""));
	assert_non_null(strstr(end, "\"COMPLETE\""));
	assert_null(next_event(fx));
	free(start);
	free(end);
}

/* A sink added after the announcement gets the START with the end; a
 * child's START waits for its parent's announcement and names it. */
static void test_announce_sinks_parents(void **state)
{
	struct fixture *fx = *state;
	free(next_event(fx));
	static const char run_c[] = "1b2c3d4e-5f60-4a1b-8c2d-3e4f5a6b7c8d";
	assert_int_equal(announce(fx, run_c, "child", "worker", token),
			 WEFT_ACK_STORED);
	assert_null(next_event(fx)); /* its parent is not known yet */
	assert_int_equal(announce(fx, run_a, "worker", NULL, token),
			 WEFT_ACK_STORED);
	char uuid[37], want[64];
	weft_ol_run_uuid("task", run_a, uuid);
	snprintf(want, sizeof(want), "\"runId\": \"%s\"", uuid);
	char *child = next_event(fx), *worker = next_event(fx);
	assert_non_null(strstr(strstr(child, "\"parent\""), want));
	assert_non_null(strstr(worker, want));
	assert_null(next_event(fx));
	int64_t second;
	assert_int_equal(weft_ol_sink_add(fx->reader, "file:/y", 2, &second),
			 WEFT_OK);
	struct frag_spec sp = {.run = run_a,
			       .task = "worker",
			       .node = "n1",
			       .path = "/w",
			       .h = 2,
			       .write = true};
	ingest(fx, 1, &sp);
	/* The first sink: the end only. */
	char *end = next_event(fx);
	assert_non_null(strstr(end, "\"COMPLETE\""));
	assert_null(next_event(fx));
	/* The second: the worker's START (as announced), then its end. */
	int64_t seq;
	char *json;
	size_t len;
	assert_int_equal(weft_ol_outbox_next(fx->reader, second, NULL, &seq,
					     &json, &len),
			 WEFT_OK);
	assert_string_equal(json, worker);
	assert_int_equal(weft_ol_outbox_sent(fx->reader, second, seq),
			 WEFT_OK);
	free(json);
	assert_int_equal(weft_ol_outbox_next(fx->reader, second, NULL, &seq,
					     &json, &len),
			 WEFT_OK);
	assert_string_equal(json, end);
	free(json);
	free(child);
	free(worker);
	free(end);
}

/* Close the fixture's handles, change the database with sql (a store as
 * an older weft left it), and open them again: the store's steps run. */
static void reopen_after(struct fixture *fx, const char *sql)
{
	weft_store_writer_free(fx->w);
	weft_store_close(fx->s);
	weft_store_close(fx->reader);
	sqlite3 *db;
	assert_int_equal(sqlite3_open(fx->t.db, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(weft_store_open(fx->t.db, &fx->s), WEFT_OK);
	assert_int_equal(weft_store_open_sibling(fx->s, &fx->reader), WEFT_OK);
	assert_int_equal(weft_store_writer_new(fx->s, &fx->w), WEFT_OK);
	assert_int_equal(sql_int(fx->t.db, "PRAGMA user_version"), 12);
}

/* Store step 9 on a store from before it: the queue and its order kept,
 * announcements queue their START. */
static void test_step_9(void **state)
{
	struct fixture *fx = *state;
	/* The outbox as step 7 made it, holding the job's START and two
	 * rows out of insertion order. */
	reopen_after(fx, STORE_BEFORE_STEP_12
		     "DROP TABLE task_starts;"
		     "DROP TABLE ol_outbox;"
		     "CREATE TABLE ol_outbox ("
		     "  seq INTEGER PRIMARY KEY,"
		     "  sink INTEGER NOT NULL REFERENCES ol_sinks (id)"
		     "  ON DELETE CASCADE,"
		     "  kind INTEGER NOT NULL CHECK (kind BETWEEN 0 AND 3),"
		     "  ref INTEGER NOT NULL,"
		     "  attempts INTEGER NOT NULL DEFAULT 0,"
		     "  refused INTEGER NOT NULL DEFAULT 0,"
		     "  UNIQUE (sink, kind, ref));"
		     "INSERT INTO ol_outbox VALUES (5, 1, 0, 1, 2, 0);"
		     "INSERT INTO ol_outbox VALUES (3, 1, 3, 9, 0, 1);"
		     "PRAGMA user_version = 8;");
	/* Step 11 kept the outbox's triggers: the store has a sink. */
	assert_int_equal(sql_int(fx->t.db, triggers_sql), 6);
	assert_int_equal(sql_int(fx->t.db, "SELECT group_concat(seq || ':' || "
					   "kind || ':' || attempts || ':' || "
					   "refused, ' ') = '3:3:0:1 5:0:2:0' "
					   "FROM (SELECT * FROM ol_outbox "
					   "ORDER BY seq)"),
			 1);
	assert_int_equal(announce(fx, run_a, "t1", NULL, token),
			 WEFT_ACK_STORED);
	assert_int_equal(sql_int(fx->t.db, "SELECT count(*) FROM ol_outbox "
					   "WHERE kind = 4 AND seq > 5"),
			 1);
	char *job_start = next_event(fx), *start = next_event(fx);
	assert_non_null(strstr(job_start, "\"jobType\": \"JOB\""));
	assert_non_null(strstr(start, "\"jobType\": \"TASK\""));
	assert_null(next_event(fx)); /* the refused row stays */
	free(job_start);
	free(start);
}

/* The outbox's triggers exist only in a store with a sink (step 11): a
 * store from before the step without one loses them, stores a task
 * without queueing anything, and its first sink brings them back for
 * what is stored from then on. */
static void test_triggers_need_a_sink(void **state)
{
	struct fixture *fx = *state;
	assert_int_equal(sql_int(fx->t.db, triggers_sql), 6);
	reopen_after(fx, STORE_BEFORE_STEP_12 "DELETE FROM ol_outbox;"
					      "DELETE FROM ol_sinks;"
					      "PRAGMA user_version = 10;");
	assert_int_equal(sql_int(fx->t.db, triggers_sql), 0);
	struct frag_spec sp = task_one;
	ingest(fx, 1, &sp);
	assert_int_equal(sql_count(fx->t.db, "ol_outbox"), 0);

	assert_int_equal(weft_ol_sink_add(fx->reader, "file:/z", 3, &fx->sink),
			 WEFT_OK);
	assert_int_equal(sql_int(fx->t.db, triggers_sql), 6);
	/* Registering it again changes nothing. */
	int64_t again;
	assert_int_equal(weft_ol_sink_add(fx->reader, "file:/z", 4, &again),
			 WEFT_OK);
	assert_int_equal(again, fx->sink);
	sp.run = "r2";
	sp.task = "t2";
	sp.path = "/data/out2";
	ingest(fx, 2, &sp);
	assert_int_equal(sql_count(fx->t.db, "ol_outbox"), 2);
	char *start = next_event(fx), *end = next_event(fx);
	assert_non_null(strstr(start, "\"START\""));
	assert_non_null(strstr(start, "\"name\": \"sbatch job.sh.t2\""));
	assert_non_null(strstr(end, "\"COMPLETE\""));
	assert_null(next_event(fx));
	free(start);
	free(end);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_uuid),
		cmocka_unit_test(test_namespace_check),
		cmocka_unit_test_setup_teardown(test_outbox_order, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_parts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_parent_waits, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_announced, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_announce_refused, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_announce_sinks_parents,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_step_9, setup, teardown),
		cmocka_unit_test_setup_teardown(test_triggers_need_a_sink,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_shared_name, setup,
						teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
