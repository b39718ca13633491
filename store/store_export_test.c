/*
 * export_test.c - the exports and the picture on small hand-made stores:
 * a weak read stays, marked weft:weak true; an update is a
 * wasDerivedFrom and an isBasedOn; paths with a newline, a quote, '<',
 * '%', a space and an invalid UTF-8 byte come out escaped in JSON, in
 * file: URIs, in Graphviz labels and in the page's data; a run scope that
 * matches nothing or several runs is refused, naming it; a write that
 * fails is an error, not a short document. (The formats' own validators
 * run in tests/export_e2e.py.)
 */
#include "store_testutil.h"

/* One file of a run: read (the version of hash byte rh, 0: not known),
 * written (hash byte wh), or updated (both). */
struct spec {
	const char *path;
	bool read, written, updated;
	uint8_t rh, wh;
};

static void put_run(weft_store *s, const char *id, int64_t started,
		    int32_t exit_code, const struct spec *files, size_t n)
{
	weft_report r;
	weft_report_init(&r);
	/* Only what an export reads: ids, node, times, exit, root argv. */
	snprintf(r.run_id, sizeof(r.run_id), "%s", id);
	snprintf(r.node, sizeof(r.node), "n1");
	snprintf(r.backend, sizeof(r.backend), "ptrace");
	r.exit_code = exit_code;
	r.started_ns = started;
	r.ended_ns = started + 10;
	add_process(&r, 10, 0, (const char *const[]){"/bin/tool", id, NULL});
	for (size_t i = 0; i < n; i++) {
		const struct spec *sp = &files[i];
		weft_file_rec *f =
			add_file(&r, sp->path, sp->read, sp->written);
		f->updated = sp->updated;
		f->loc_fs = xstrdup("local test");
		f->loc_path = xstrdup(sp->path);
		f->first_open_ns = started;
		if (sp->rh) {
			f->has_read_hash = true;
			hash_of(f->read_hash, sp->rh);
		}
		if (sp->written) {
			f->last_write_ns = started + 5;
			f->has_hash = true;
			hash_of(f->hash, sp->wh);
			f->has_size = true;
			f->size = 100;
		}
	}
	assert_int_equal(weft_store_put_run(s, &r), WEFT_OK);
	weft_report_release(&r);
}

/* An export into memory: its return code, and the text in *text. */
static int prov_text(weft_store *s, const char *run, char **text)
{
	size_t len;
	char err[WEFT_EXPORT_ERR_BYTES];
	FILE *m = open_memstream(text, &len);
	assert_non_null(m);
	weft_export_scope sc = {NULL, run};
	int rc = weft_export_prov(s, &sc, m, err);
	fclose(m);
	return rc;
}

static char *crate_text(weft_store *s)
{
	char *text = NULL, err[WEFT_EXPORT_ERR_BYTES];
	size_t len;
	FILE *m = open_memstream(&text, &len);
	assert_non_null(m);
	weft_export_scope sc = {NULL, NULL};
	assert_int_equal(weft_export_rocrate(s, &sc, NULL, m, err), WEFT_OK);
	fclose(m);
	return text;
}

static void test_weak_read_kept(void **state)
{
	struct store_fixture *fx = *state;
	struct spec a[] = {{"/p/x", false, true, false, 0, 0x11}};
	struct spec b[] = {{"/p/x", true, false, false, 0, 0}};
	put_run(fx->s, "A", 100, 0, a, 1);
	put_run(fx->s, "B", 200, 0, b, 1);
	char *text = NULL;
	assert_int_equal(prov_text(fx->s, NULL, &text), WEFT_OK);
	/* B used a version it cannot vouch for: kept, and weak. */
	assert_non_null(strstr(text, "\"prov:activity\": \"weft:task/B\", "
				     "\"prov:entity\": \"weft:version/"));
	const char *used = strstr(text, "\"prov:activity\": \"weft:task/B\"");
	const char *end = strchr(used, '}');
	const char *weak = strstr(used, "\"weft:weak\": true}");
	assert_true(weak && weak < end);
	assert_non_null(strstr(text, "\"prov:informed\": \"weft:task/B\", "
				     "\"prov:informant\": \"weft:task/A\", "
				     "\"weft:weak\": true"));
	free(text);
	text = crate_text(fx->s);
	assert_non_null(strstr(text, "\"weft:weakObject\": [{\"@id\": "
				     "\"file://n1/p/x\"}]"));
	free(text);
}

static void test_update_derives(void **state)
{
	struct store_fixture *fx = *state;
	struct spec a[] = {{"/p/log", false, true, false, 0, 0x11}};
	struct spec b[] = {{"/p/log", false, true, true, 0x11, 0x22}};
	put_run(fx->s, "A", 100, 0, a, 1);
	put_run(fx->s, "B", 200, 3, b, 1);
	char *text = NULL;
	assert_int_equal(prov_text(fx->s, NULL, &text), WEFT_OK);
	const char *d = strstr(text, "\"wasDerivedFrom\": {");
	assert_non_null(d);
	assert_non_null(strstr(d, "\"prov:activity\": \"weft:task/B\", "
				  "\"prov:type\": {\"$\": \"prov:Revision\""));
	assert_non_null(strstr(text, "\"weft:update\": true"));
	free(text);
	text = crate_text(fx->s);
	/* Two versions of one path: both ids carry their version. */
	assert_non_null(strstr(text, "\"isBasedOn\": {\"@id\": "
				     "\"file://n1/p/log#v:"));
	assert_non_null(strstr(text, "FailedActionStatus\"},\n   \"error\": "
				     "\"exited with status 3\""));
	free(text);
}

static const char weird[] = "/p/a b\n\"<%\xff.txt";

static void test_weird_path_escaped(void **state)
{
	struct store_fixture *fx = *state;
	struct spec a[] = {{weird, false, true, false, 0, 0x11}};
	put_run(fx->s, "A", 100, 0, a, 1);
	char *text = NULL;
	assert_int_equal(prov_text(fx->s, NULL, &text), WEFT_OK);
	assert_non_null(
		strstr(text, "\"weft:path\": \"/p/a b\\n\\\"<%\\udcff.txt\""));
	free(text);
	text = crate_text(fx->s);
	assert_non_null(strstr(text, "\"@id\": \"file://n1/p/a%20b%0A%22%3C"
				     "%25%FF.txt\""));
	free(text);
	/* The picture: a visible \xff in the label, nothing that closes the
	 * page's script in its data. */
	weft_dag d;
	assert_int_equal(weft_store_dag(fx->s, NULL, &d), WEFT_OK);
	char *page = NULL, err[WEFT_EXPORT_ERR_BYTES];
	size_t len;
	FILE *m = open_memstream(&page, &len);
	int rc = weft_render_dag(fx->s, &d, WEFT_RENDER_HTML, NULL, m, err);
	fclose(m);
	if (rc == WEFT_EUNSUPPORTED) {
		/* A build without Graphviz's header, or a machine without its
		 * library, says what to install; nothing else to check. */
		assert_true(strstr(err, "libgraphviz-dev") ||
			    strstr(err, "install libgvc6"));
	} else {
		assert_int_equal(rc, WEFT_OK);
		assert_non_null(strstr(page, "\\xff.txt"));
		const char *data = strstr(page, "id=\"weft-data\">");
		assert_non_null(data);
		const char *end = strstr(data, "</script>");
		assert_non_null(strstr(data, "\\u003c%"));
		assert_true(memchr(data + 15, '<', (size_t)(end - data - 15)) ==
			    NULL);
	}
	free(page);
	weft_dag_release(&d);
}

static void test_run_scope(void **state)
{
	struct store_fixture *fx = *state;
	struct spec a[] = {{"/p/x", false, true, false, 0, 0x11}};
	struct spec b[] = {{"/p/x", true, false, false, 0x11, 0}};
	put_run(fx->s, "run-1", 100, 0, a, 1);
	put_run(fx->s, "run-2", 200, 0, b, 1);
	char *text = NULL;
	assert_int_equal(prov_text(fx->s, "run-2", &text), WEFT_OK);
	assert_null(strstr(text, "weft:task/run-1\": {"));
	assert_non_null(strstr(text, "weft:task/run-2\": {"));
	free(text);
	char err[WEFT_EXPORT_ERR_BYTES];
	weft_export_scope sc = {NULL, "run-"};
	FILE *null = fopen("/dev/null", "w");
	assert_int_equal(weft_export_prov(fx->s, &sc, null, err), WEFT_EINVAL);
	assert_non_null(strstr(err, "'run-' starts the ids of 2 runs"));
	sc.run = "nope";
	assert_int_equal(weft_export_rocrate(fx->s, &sc, NULL, null, err),
			 WEFT_ENOTFOUND);
	assert_non_null(strstr(err, "'nope'"));
	fclose(null);
}

static void test_write_fails(void **state)
{
	struct store_fixture *fx = *state;
	struct spec a[] = {{"/p/x", false, true, false, 0, 0x11}};
	put_run(fx->s, "A", 100, 0, a, 1);
	FILE *full = fopen("/dev/full", "w");
	if (!full)
		skip();
	char err[WEFT_EXPORT_ERR_BYTES];
	weft_export_scope sc = {NULL, NULL};
	assert_int_equal(weft_export_prov(fx->s, &sc, full, err), WEFT_EIO);
	assert_non_null(strstr(err, "cannot write the PROV document"));
	fclose(full);
}

static void test_picture_limit(void **state)
{
	struct store_fixture *fx = *state;
	/* One task writing one file more than a picture holds. */
	size_t n = WEFT_RENDER_MAX_NODES;
	struct spec *files = calloc(n, sizeof(*files));
	char(*paths)[32] = calloc(n, sizeof(*paths));
	assert_true(files && paths);
	for (size_t i = 0; i < n; i++) {
		snprintf(paths[i], sizeof(paths[i]), "/p/f%zu", i);
		files[i] =
			(struct spec){paths[i], false, true,
				      false,    0,     (uint8_t)(i % 250 + 1)};
	}
	put_run(fx->s, "A", 100, 0, files, n);
	weft_dag d;
	assert_int_equal(weft_store_dag(fx->s, NULL, &d), WEFT_OK);
	char err[WEFT_EXPORT_ERR_BYTES];
	FILE *null = fopen("/dev/null", "w");
	assert_int_equal(
		weft_render_dag(fx->s, &d, WEFT_RENDER_SVG, NULL, null, err),
		WEFT_ETOOBIG);
	assert_non_null(strstr(err, "5001 tasks and files"));
	fclose(null);
	weft_dag_release(&d);
	free(files);
	free(paths);
}

#define T(fn)                                                                  \
	cmocka_unit_test_setup_teardown(fn, store_fixture_setup,                \
					store_fixture_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_weak_read_kept),     T(test_update_derives),
		T(test_weird_path_escaped), T(test_run_scope),
		T(test_write_fails),        T(test_picture_limit),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
