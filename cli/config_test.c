/*
 * config_test.c - unit tests of cli/config.c: the TOML-subset parser (what
 * it accepts, every kind of error with its line:column, unknown keys as
 * warnings), precedence of flags > WEFT_TRACER > project > user >
 * defaults, and the line-preserving writer of `weft tracer use`.
 */
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

#include "config.h"
#include <weft/backends.h>

/* Messages go to a memory stream so the tests can read them. */
struct capture {
	char *buf;
	size_t len;
	FILE *f;
};

static void cap_open(struct capture *c)
{
	c->buf = NULL;
	c->len = 0;
	c->f = open_memstream(&c->buf, &c->len);
	assert_non_null(c->f);
}

static void cap_close(struct capture *c)
{
	fclose(c->f);
	free(c->buf);
}

static const char *cap_text(struct capture *c)
{
	fflush(c->f);
	return c->buf ? c->buf : "";
}

static int parse_str(weft_config *cfg, const char *text, struct capture *c)
{
	return config_parse(cfg, CONFIG_PROJECT_FILE, "t.toml", text,
			    strlen(text), c->f);
}

/* text parses into cfg without a word of warning. */
static void parse_quiet(weft_config *cfg, const char *text)
{
	struct capture cap;
	cap_open(&cap);
	assert_int_equal(parse_str(cfg, text, &cap), 0);
	assert_string_equal(cap_text(&cap), "");
	cap_close(&cap);
}

/* The name of a registered backend, so tests do not hard-code one. */
static const char *some_backend(void)
{
	return weft_backends[0]->name;
}

static void test_defaults(void **state)
{
	(void)state;
	weft_config c;
	config_defaults(&c);
	assert_string_equal(c.mode, "auto");
	assert_true(c.fallback_enabled);
	assert_int_equal(c.preflight_timeout_ms, 2000);
	assert_int_equal(c.mode_from, CONFIG_DEFAULT);
	assert_string_equal(c.ray_weft_binary, "weft");
	assert_string_equal(c.ray_python_path, WEFT_PYTHON_SHIM_DIR);
	assert_string_equal(c.ray_actor_granularity, "call");
	parse_quiet(&c, "[ray]\nweft_binary = \"/opt/w\"\n"
			"python_path = \"/opt/py\"\n"
			"actor_granularity = \"actor\"\n");
	assert_string_equal(c.ray_weft_binary, "/opt/w");
	assert_string_equal(c.ray_python_path, "/opt/py");
	assert_string_equal(c.ray_actor_granularity, "actor");

	/* record.env_values: none by default; an array of names, the last
	 * file to set it decides the whole list. */
	config_defaults(&c);
	assert_int_equal(c.nenv_values, 0);
	struct capture cap;
	cap_open(&cap);
	assert_int_equal(parse_str(&c,
				   "[record]\nenv_values = [ \"CUDA_VISIBLE_"
				   "DEVICES\", \"OMP_NUM_THREADS\", ]\n",
				   &cap),
			 0);
	assert_int_equal(c.nenv_values, 2);
	assert_string_equal(c.env_values[0], "CUDA_VISIBLE_DEVICES");
	assert_string_equal(c.env_values[1], "OMP_NUM_THREADS");
	assert_int_equal(parse_str(&c, "record.env_values = []\n", &cap), 0);
	assert_int_equal(c.nenv_values, 0);
	assert_string_equal(cap_text(&cap), "");
	cap_close(&cap);
}

static void test_accepts_subset(void **state)
{
	(void)state;
	char doc[1024];
	snprintf(doc, sizeof(doc),
		 "# a comment\r\n"
		 "\n"
		 "  [ tracer ]   # trailing comment\n"
		 "mode = \"%s\"\n"
		 "\tfallback_enabled=false\n"
		 "preflight_timeout_ms = 1_500\n"
		 "[other]\n"
		 "s = \"q\\\" b\\\\ n\\n t\\t u\\u00e9\\u20ac\"\n"
		 "i = -42\n"
		 "b = true",
		 some_backend());
	weft_config c;
	config_defaults(&c);
	struct capture cap;
	cap_open(&cap);
	assert_int_equal(parse_str(&c, doc, &cap), 0);
	assert_string_equal(c.mode, some_backend());
	assert_int_equal(c.mode_from, CONFIG_PROJECT_FILE);
	assert_false(c.fallback_enabled);
	assert_int_equal(c.preflight_timeout_ms, 1500);
	/* other.* are unknown: warned, one line each, with the line. */
	assert_non_null(
		strstr(cap_text(&cap), "t.toml:8: unknown key 'other.s'"));
	assert_non_null(
		strstr(cap_text(&cap), "t.toml:10: unknown key 'other.b'"));
	cap_close(&cap);

	config_defaults(&c);
	parse_quiet(&c, "tracer . preflight_timeout_ms = 600000 # max\n");
	assert_int_equal(c.preflight_timeout_ms, 600000);
}

static void test_coordinator_limits(void **state)
{
	(void)state;
	weft_config c;
	config_defaults(&c);
	assert_int_equal(c.coord_max_connections, 0);
	assert_int_equal(c.coord_idle_timeout_ms, 0);
	parse_quiet(&c, "[coordinator]\nmax_connections = 64\n"
			"idle_timeout_ms = 5000\n"
			"submit_key_file = \"/etc/weft/k\"\n");
	assert_string_equal(c.coord_submit_key_file, "/etc/weft/k");
	assert_int_equal(c.coord_max_connections, 64);
	assert_int_equal(c.coord_idle_timeout_ms, 5000);
}

static void test_unknown_key_warns(void **state)
{
	(void)state;
	weft_config c;
	config_defaults(&c);
	struct capture cap;
	cap_open(&cap);
	assert_int_equal(parse_str(&c, "\n[tracer]\nmdoe = \"auto\"\n", &cap),
			 0);
	assert_string_equal(cap_text(&cap),
			    "weft: warning: t.toml:3: unknown key "
			    "'tracer.mdoe' (ignored)\n");
	assert_string_equal(c.mode, "auto");
	assert_int_equal(c.mode_from, CONFIG_DEFAULT);
	cap_close(&cap);
}

static void test_errors(void **state)
{
	(void)state;
	static const struct {
		const char *doc, *msg;
	} cases[] = {
		{"tracer.mode = ptrace\n",
		 "t.toml:1:15: expected a string, an integer or true/false"},
		{"\n\ntracer.mode = 'x'\n",
		 "t.toml:3:15: literal 'strings' are not supported"},
		{"a = [1]\n", "t.toml:1:6: expected a \"string\" or ]"},
		{"a = {b = 1}\n", "t.toml:1:5: inline tables are not"},
		{"a = [\"x\" \"y\"]\n", "t.toml:1:10: expected , or ]"},
		{"a = [\"x\",\n\"y\"]\n", "t.toml:1:10: expected a \"string\""},
		{"record.env_values = \"X\"\n",
		 "record.env_values: expected an array of variable names, "
		 "found a string"},
		{"record.env_values = [\"A=B\"]\n",
		 "\"A=B\" is not a variable name"},
		{"record.env_values = [\"\"]\n", "\"\" is not a variable name"},
		{"a = 1.5\n", "t.toml:1:5: expected an integer (floats"},
		{"a = 1979-05-27\n", "t.toml:1:5: expected an integer (floats"},
		{"a = 0x10\n", "t.toml:1:5: expected a decimal integer without "
			       "leading zeros"},
		{"a = 99999999999999999999\n", "t.toml:1:5: integer out of "
					       "range"},
		{"a = \"open\n", "t.toml:1:10: expected a closing \" before "
				 "the end of the line"},
		{"a = \"\"\"x\"\"\"\n", "t.toml:1:5: multi-line strings"},
		{"ebpf.ringbuf_bytes = 5000\n",
		 "t.toml:1:22: "
		 "ebpf.ringbuf_bytes: expected a "
		 "power of two"},
		{"[ebpf]\nagent_idle_timeout_ms = -1\n",
		 "t.toml:2:25: ebpf.agent_idle_timeout_ms: expected an "
		 "integer"},
		{"[coordinator]\nmax_connections = 0\n",
		 "t.toml:2:19: coordinator.max_connections: expected an "
		 "integer from 1 to 65536"},
		{"coordinator.idle_timeout_ms = \"1\"\n",
		 "t.toml:1:31: coordinator.idle_timeout_ms: expected an "
		 "integer from 1 to 86400000"},
		{"coordinator.submit_key_file = \"k\"\n",
		 "t.toml:1:31: coordinator.submit_key_file: expected an "
		 "absolute path"},
		{"ray.weft_binary = 3\n", "t.toml:1:19: ray.weft_binary: "
					  "expected a non-empty string"},
		{"[ray]\npython_path = \"\"\n", "t.toml:2:15: "
						"ray.python_path: expected "
						"a non-empty string"},
		{"ray.actor_granularity = \"method\"\n",
		 "t.toml:1:25: ray.actor_granularity: expected \"call\" or "
		 "\"actor\", found another string"},
		{"[ray]\nactor_granularity = 1\n",
		 "t.toml:2:21: ray.actor_granularity: expected \"call\" or "
		 "\"actor\", found an integer"},
		{"a = \"bad \\q\"\n", "t.toml:1:10: unsupported escape; "
				      "expected \\\", \\\\, \\n, \\t or "
				      "\\uXXXX"},
		{"a = \"\\u12g4\"\n", "t.toml:1:6: expected 4 hex digits"},
		{"a = \"\\ud800\"\n", "t.toml:1:6: \\uD800 is not allowed"},
		{"a = \"x\x01\"\n", "t.toml:1:7: control character 0x01 in a "
				    "string"},
		{"\"q\" = 1\n", "t.toml:1:1: quoted keys are not supported"},
		{"= 1\n", "t.toml:1:1: expected a key"},
		{"a 1\n", "t.toml:1:3: expected = after the key 'a'"},
		{"a = 1 2\n", "t.toml:1:7: expected a comment (#) or the end "
			      "of the line"},
		{"[tracer\n", "t.toml:1:8: expected ] to close"},
		{"[[t]]\n", "t.toml:1:1: arrays of tables"},
		{"[t]\n[t]\n", "t.toml:2:1: table [t] is already defined at "
			       "line 1"},
		{"[tracer]\nmode = \"auto\"\n\nmode = \"auto\"\n",
		 "t.toml:4:1: key 'tracer.mode' is already set at line 2"},
		{"tracer.mode = \"bogus\"\n",
		 "t.toml:1:15: tracer.mode: unknown tracer \"bogus\"; expected "
		 "one of auto"},
		{"tracer.mode = 1\n", "t.toml:1:15: tracer.mode: expected a "
				      "string (one of auto"},
		{"tracer.fallback_enabled = \"no\"\n",
		 "t.toml:1:27: tracer.fallback_enabled: expected true or "
		 "false, found a string"},
		{"tracer.preflight_timeout_ms = true\n",
		 "t.toml:1:31: tracer.preflight_timeout_ms: expected an "
		 "integer, found a boolean"},
		{"tracer.preflight_timeout_ms = 0\n",
		 "t.toml:1:31: tracer.preflight_timeout_ms: 0 is out of range; "
		 "expected an integer from 1 to 600000"},
		{"tracer.preflight_timeout_ms = 600001\n",
		 "t.toml:1:31: tracer.preflight_timeout_ms: 600001 is out of "
		 "range"},
		{"a = 1 # bad\x02\n", "t.toml:1:12: control character 0x02 in "
				      "a comment"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		weft_config c;
		config_defaults(&c);
		struct capture cap;
		cap_open(&cap);
		int rc = parse_str(&c, cases[i].doc, &cap);
		const char *out = cap_text(&cap);
		if (rc != -1 || !strstr(out, cases[i].msg))
			fail_msg("case %zu: %s\n  rc %d, expected message "
				 "containing:\n  %s\n  got: %s",
				 i, cases[i].doc, rc, cases[i].msg, out);
		cap_close(&cap);
	}
	/* A NUL byte: the length is explicit, so the parser sees it. */
	weft_config c;
	config_defaults(&c);
	struct capture cap;
	cap_open(&cap);
	assert_int_equal(config_parse(&c, CONFIG_USER_FILE, "n.toml",
				      "a = 1\nb\0 = 2\n", 12, cap.f),
			 -1);
	assert_non_null(strstr(cap_text(&cap), "n.toml:2:2: NUL byte"));
	cap_close(&cap);
}

static char tmpdir[64];

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	char *buf = calloc(1, 8192);
	assert_non_null(buf);
	size_t n = fread(buf, 1, 8191, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static void test_precedence(void **state)
{
	(void)state;
	char user[128], proj[128], missing[128];
	snprintf(user, sizeof(user), "%s/user.toml", tmpdir);
	snprintf(proj, sizeof(proj), "%s/proj.toml", tmpdir);
	snprintf(missing, sizeof(missing), "%s/none.toml", tmpdir);
	char doc[256];
	snprintf(doc, sizeof(doc),
		 "[tracer]\nmode = \"%s\"\npreflight_timeout_ms = 111\n"
		 "fallback_enabled = false\n",
		 some_backend());
	write_file(user, doc);
	write_file(proj, "[tracer]\nmode = \"auto\"\n"
			 "preflight_timeout_ms = 222\n");
	weft_config c;
	struct capture cap;
	cap_open(&cap);

	/* Nothing: defaults; a missing file is no error. */
	assert_int_equal(
		config_resolve(&c, missing, NULL, NULL, NULL, false, cap.f), 0);
	assert_string_equal(c.mode, "auto");
	assert_int_equal(c.mode_from, CONFIG_DEFAULT);

	/* User file alone. */
	assert_int_equal(
		config_resolve(&c, user, missing, NULL, NULL, false, cap.f), 0);
	assert_string_equal(c.mode, some_backend());
	assert_int_equal(c.mode_from, CONFIG_USER_FILE);
	assert_int_equal(c.preflight_timeout_ms, 111);
	assert_false(c.fallback_enabled);

	/* The project wins over the user, key by key. */
	assert_int_equal(
		config_resolve(&c, user, proj, NULL, NULL, false, cap.f), 0);
	assert_string_equal(c.mode, "auto");
	assert_int_equal(c.mode_from, CONFIG_PROJECT_FILE);
	assert_int_equal(c.preflight_timeout_ms, 222);
	assert_int_equal(c.timeout_from, CONFIG_PROJECT_FILE);
	assert_false(c.fallback_enabled); /* only the user file sets it */
	assert_int_equal(c.fallback_from, CONFIG_USER_FILE);
	assert_string_equal(c.project_file, proj);

	/* WEFT_TRACER wins over the files; "" counts as unset. */
	assert_int_equal(config_resolve(&c, user, proj, some_backend(), NULL,
					false, cap.f),
			 0);
	assert_string_equal(c.mode, some_backend());
	assert_int_equal(c.mode_from, CONFIG_ENV);
	assert_int_equal(config_resolve(&c, user, proj, "", NULL, false, cap.f),
			 0);
	assert_int_equal(c.mode_from, CONFIG_PROJECT_FILE);

	/* Flags win over everything. */
	assert_int_equal(config_resolve(&c, user, proj, some_backend(), "auto",
					true, cap.f),
			 0);
	assert_string_equal(c.mode, "auto");
	assert_int_equal(c.mode_from, CONFIG_FLAG);
	assert_false(c.fallback_enabled);
	assert_int_equal(c.fallback_from, CONFIG_FLAG);
	assert_string_equal(cap_text(&cap), "");

	/* Bad env or flag values: errors naming where they came from. */
	assert_int_equal(
		config_resolve(&c, NULL, NULL, "bogus", NULL, false, cap.f),
		-1);
	assert_non_null(strstr(cap_text(&cap),
			       "environment variable WEFT_TRACER=\"bogus\": "
			       "unknown tracer; expected one of auto"));
	assert_int_equal(
		config_resolve(&c, NULL, NULL, NULL, "nope", false, cap.f), -1);
	assert_non_null(strstr(cap_text(&cap), "--tracer \"nope\": unknown "
					       "tracer"));

	/* A broken file is an error even when a flag would override it:
	 * it is broken for every other command too. */
	write_file(proj, "[tracer]\nmode = ptrace\n");
	assert_int_equal(
		config_resolve(&c, user, proj, NULL, "auto", false, cap.f), -1);
	char want[200];
	snprintf(want, sizeof(want), "%s:2:8: expected a string", proj);
	assert_non_null(strstr(cap_text(&cap), want));
	cap_close(&cap);
	unlink(user);
	unlink(proj);
}

static void check_write(const char *before, const char *mode, const char *after)
{
	char path[128];
	snprintf(path, sizeof(path), "%s/w.toml", tmpdir);
	unlink(path);
	if (before)
		write_file(path, before);
	struct capture cap;
	cap_open(&cap);
	assert_int_equal(config_write_mode(path, mode, cap.f), 0);
	cap_close(&cap);
	char *got = slurp(path);
	assert_string_equal(got, after);
	free(got);
	/* What was written parses back to the mode. */
	weft_config c;
	cap_open(&cap);
	assert_int_equal(config_load_file(&c, CONFIG_USER_FILE, path, cap.f),
			 0);
	assert_string_equal(c.mode, mode);
	cap_close(&cap);
	unlink(path);
}

static void test_write_mode(void **state)
{
	(void)state;
	const char *b = some_backend();
	char want[512], before[512];
	/* No file yet. */
	snprintf(want, sizeof(want), "tracer.mode = \"%s\"\n", b);
	check_write(NULL, b, want);
	/* Replace the value only; the comment and other lines stay. */
	snprintf(want, sizeof(want),
		 "# mine\n[tracer]\nmode   =   \"%s\"  # chosen\nx = 1\n", b);
	check_write("# mine\n[tracer]\nmode   =   \"auto\"  # chosen\nx = 1\n",
		    b, want);
	/* Add it to an existing [tracer] table. */
	snprintf(want, sizeof(want),
		 "[a]\nk = 1\n[tracer]\nmode = \"%s\"\nfallback_enabled = "
		 "true\n",
		 b);
	check_write("[a]\nk = 1\n[tracer]\nfallback_enabled = true\n", b, want);
	/* No [tracer]: a root dotted key before the first table. */
	snprintf(before, sizeof(before), "# top\n[a]\nk = 1\n");
	snprintf(want, sizeof(want),
		 "# top\ntracer.mode = \"%s\"\n[a]\nk = "
		 "1\n",
		 b);
	check_write(before, b, want);
	/* A last line without a newline. */
	snprintf(want, sizeof(want), "x = 1\ntracer.mode = \"%s\"\n", b);
	check_write("x = 1", b, want);

	/* A broken file is left as it is. */
	char path[128];
	snprintf(path, sizeof(path), "%s/w.toml", tmpdir);
	write_file(path, "x = nope\n");
	struct capture cap;
	cap_open(&cap);
	assert_int_equal(config_write_mode(path, b, cap.f), -1);
	assert_non_null(strstr(cap_text(&cap), "w.toml:1:5: expected a "
					       "string"));
	assert_int_equal(config_write_mode(path, "bogus", cap.f), -1);
	assert_non_null(strstr(cap_text(&cap), "unknown tracer \"bogus\""));
	cap_close(&cap);
	char *got = slurp(path);
	assert_string_equal(got, "x = nope\n");
	free(got);
	unlink(path);

	/* A missing directory (~/.weft) is created. */
	snprintf(path, sizeof(path), "%s/sub/config.toml", tmpdir);
	cap_open(&cap);
	assert_int_equal(config_write_mode(path, "auto", cap.f), 0);
	cap_close(&cap);
	unlink(path);
	snprintf(path, sizeof(path), "%s/sub", tmpdir);
	rmdir(path);
}

int main(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/weft-config-test-XXXXXX");
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 1;
	}
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_accepts_subset),
		cmocka_unit_test(test_coordinator_limits),
		cmocka_unit_test(test_unknown_key_warns),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_precedence),
		cmocka_unit_test(test_write_mode),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	rmdir(tmpdir);
	return rc;
}
