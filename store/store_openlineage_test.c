/*
 * store_openlineage_test.c - OpenLineage events from the store
 * (export_openlineage.c) and the outbox the store's triggers fill: run
 * ids, dataset names (node-local and shared), a parent task that comes
 * after its children, exactly-once queueing of a task cut into parts,
 * and a second handle seeing what was queued after it last looked.
 */
#include "store_testutil.h"

static const char token[] = "0123456789abcdef0123456789abcdef";

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
	struct frag_spec sp = {.run = "r1",
			       .task = "t1",
			       .node = "n1",
			       .path = "/data/out",
			       .h = 7,
			       .write = true};
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
	assert_int_equal(sql_int(fx->t.db, "SELECT count(*) FROM ol_outbox"),
			 0);
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
		cmocka_unit_test_setup_teardown(test_shared_name, setup,
						teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
