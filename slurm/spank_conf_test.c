/*
 * spank_conf_test.c - the SPANK plugin's pure part: modes from --weft and
 * default=, every plugstack.conf argument (good and bad), task names for
 * each kind of step, and the LD_PRELOAD it builds.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "../schema/limit_testutil.h"
#include "spank_conf.h"

static void test_modes(void **state)
{
	(void)state;
	assert_int_equal(wsp_mode_parse(NULL), WSP_MODE_AUTO);
	assert_int_equal(wsp_mode_parse(""), WSP_MODE_AUTO);
	assert_int_equal(wsp_mode_parse("preload"), WSP_MODE_PRELOAD);
	assert_int_equal(wsp_mode_parse("ebpf"), WSP_MODE_EBPF);
	assert_int_equal(wsp_mode_parse("ptrace"), WSP_MODE_PTRACE);
	assert_int_equal(wsp_mode_parse("off"), WSP_MODE_OFF);
	assert_int_equal(wsp_mode_parse("none"), WSP_MODE_OFF);
	assert_int_equal(wsp_mode_parse("Preload"), -1);
	assert_int_equal(wsp_mode_parse("preload "), -1);
	assert_string_equal(wsp_mode_name(WSP_MODE_PRELOAD), "preload");
	assert_string_equal(wsp_mode_name(WSP_MODE_UNSET), "unset");
	assert_string_equal(wsp_mode_name(99), "unset");
}

static void test_effective(void **state)
{
	(void)state;
	assert_int_equal(wsp_mode_effective(WSP_MODE_UNSET, WSP_MODE_UNSET),
			 WSP_MODE_OFF);
	assert_int_equal(wsp_mode_effective(WSP_MODE_UNSET, WSP_MODE_PRELOAD),
			 WSP_MODE_PRELOAD);
	/* --weft=off beats a site-wide default. */
	assert_int_equal(wsp_mode_effective(WSP_MODE_OFF, WSP_MODE_PRELOAD),
			 WSP_MODE_OFF);
	assert_int_equal(wsp_mode_effective(WSP_MODE_EBPF, WSP_MODE_OFF),
			 WSP_MODE_EBPF);
}

static void test_conf_args(void **state)
{
	(void)state;
	struct wsp_conf c;
	char err[512];
	wsp_conf_init(&c, "/b/libweft_preload.so", "/run/weft/agent.sock");
	assert_int_equal(c.default_mode, WSP_MODE_UNSET);
	assert_string_equal(c.preload, "/b/libweft_preload.so");
	assert_int_equal(wsp_conf_arg(&c, "default=preload", err, sizeof(err)),
			 0);
	assert_int_equal(c.default_mode, WSP_MODE_PRELOAD);
	assert_int_equal(
		wsp_conf_arg(&c, "preload=/opt/w/lib.so", err, sizeof(err)), 0);
	assert_string_equal(c.preload, "/opt/w/lib.so");
	assert_int_equal(
		wsp_conf_arg(&c, "agent=/run/a.sock", err, sizeof(err)), 0);
	assert_string_equal(c.agent, "/run/a.sock");
	assert_int_equal(wsp_conf_arg(&c, "coordinator=tcp://head:7700", err,
				      sizeof(err)),
			 0);
	assert_string_equal(c.coordinator, "tcp://head:7700");
	assert_int_equal(
		wsp_conf_arg(&c, "spool=/var/spool/weft", err, sizeof(err)), 0);
	assert_string_equal(c.spool, "/var/spool/weft");
	assert_int_equal(c.ship_timeout_s, -1);
	wsp_conf_weft(&c, "/b/weft");
	assert_string_equal(c.weft, "/b/weft");
	assert_int_equal(wsp_conf_arg(&c, "weft=/opt/w/weft", err, sizeof(err)),
			 0);
	assert_string_equal(c.weft, "/opt/w/weft");
	assert_int_equal(wsp_conf_arg(&c, "ship_timeout=7", err, sizeof(err)),
			 0);
	assert_int_equal(c.ship_timeout_s, 7);
	assert_int_equal(wsp_conf_arg(&c, "ship_timeout=0", err, sizeof(err)),
			 0);
	assert_int_equal(c.ship_timeout_s, 0);
}

static void test_conf_bad_args(void **state)
{
	(void)state;
	struct wsp_conf c;
	char err[512];
	wsp_conf_init(&c, "/b/p.so", "/a.sock");
	assert_int_equal(wsp_conf_arg(&c, "default=fast", err, sizeof(err)),
			 -1);
	assert_non_null(strstr(err, "default=fast"));
	assert_int_equal(wsp_conf_arg(&c, "default=", err, sizeof(err)), -1);
	assert_int_equal(c.default_mode, WSP_MODE_UNSET);
	assert_int_equal(wsp_conf_arg(&c, "preload=lib.so", err, sizeof(err)),
			 -1);
	assert_non_null(strstr(err, "absolute path"));
	assert_string_equal(c.preload, "/b/p.so"); /* unchanged */
	assert_int_equal(wsp_conf_arg(&c, "coordinator=head", err, sizeof(err)),
			 -1);
	assert_non_null(strstr(err, "nng URL"));
	assert_int_equal(wsp_conf_arg(&c, "verbose", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "key=value"));
	assert_int_equal(wsp_conf_arg(&c, "colour=red", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "unknown argument 'colour'"));
	assert_int_equal(wsp_conf_arg(&c, "weft=weft", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "absolute path"));
	static const char *const bad_timeouts[] = {
		"ship_timeout=", "ship_timeout=-1", "ship_timeout=1.5",
		"ship_timeout=601", "ship_timeout=99999999999999999999"};
	for (size_t i = 0; i < 5; i++) {
		assert_int_equal(
			wsp_conf_arg(&c, bad_timeouts[i], err, sizeof(err)),
			-1);
		assert_non_null(strstr(err, "whole seconds"));
	}
	assert_int_equal(c.ship_timeout_s, -1);
	/* A path one byte over the limit. */
	char big[WSP_MAX_PATH_BYTES + 16] = "spool=/";
	memset(big + 7, 'a', WSP_MAX_PATH_BYTES);
	big[7 + WSP_MAX_PATH_BYTES] = '\0';
	assert_int_equal(wsp_conf_arg(&c, big, err, sizeof(err)), -1);
	big[7 + WSP_MAX_PATH_BYTES - 1] = '\0';
	assert_int_equal(wsp_conf_arg(&c, big, err, sizeof(err)), 0);
}

static void test_task_names(void **state)
{
	(void)state;
	char n[WSP_MAX_TASK_BYTES + 1];
	assert_int_equal(wsp_task_name(n, sizeof(n), 42, 0, 3, "n2"), 0);
	assert_string_equal(n, "42.0.3@n2");
	assert_int_equal(
		wsp_task_name(n, sizeof(n), 42, WSP_STEP_BATCH, 0, "n1"), 0);
	assert_string_equal(n, "42.batch.0@n1");
	assert_int_equal(
		wsp_task_name(n, sizeof(n), 7, WSP_STEP_EXTERN, 0, "n1"), 0);
	assert_string_equal(n, "7.extern.0@n1");
	assert_int_equal(
		wsp_task_name(n, sizeof(n), 7, WSP_STEP_INTERACTIVE, 0, "x"),
		0);
	assert_string_equal(n, "7.interactive.0@x");
	assert_int_equal(wsp_task_name(n, sizeof(n), 7, 1, 0, ""), -1);
	assert_int_equal(wsp_task_name(n, sizeof(n), 7, 1, 0, NULL), -1);
	assert_int_equal(wsp_task_name(n, sizeof(n), 7, 1, 0, "n 1"), -1);
	assert_int_equal(wsp_task_name(n, sizeof(n), 7, 1, 0, "n\n1"), -1);
	assert_int_equal(wsp_task_name(n, sizeof(n), 7, 1, 0, "n\x80"), -1);
	assert_int_equal(wsp_task_name(n, 8, 4294967295U, 1, 0, "n1"), -1);
}

static void test_task_check(void **state)
{
	(void)state;
	assert_int_equal(wsp_task_check("42.batch.0@n1"), 0);
	assert_int_equal(wsp_task_check(""), -1);
	assert_int_equal(wsp_task_check("my task"), -1);
	assert_int_equal(wsp_task_check("t\x7f"), -1);
	assert_length_limit(wsp_task_check, WSP_MAX_TASK_BYTES);
}

static void test_preload_value(void **state)
{
	(void)state;
	char v[64];
	assert_int_equal(wsp_preload_value(v, sizeof(v), "/w/p.so", NULL), 0);
	assert_string_equal(v, "/w/p.so");
	assert_int_equal(wsp_preload_value(v, sizeof(v), "/w/p.so", ""), 0);
	assert_string_equal(v, "/w/p.so");
	assert_int_equal(wsp_preload_value(v, sizeof(v), "/w/p.so", "/x/a.so"),
			 0);
	assert_string_equal(v, "/w/p.so:/x/a.so");
	/* Already there (an srun inside a traced batch script): as is. */
	assert_int_equal(
		wsp_preload_value(v, sizeof(v), "/w/p.so", "/x/a.so /w/p.so"),
		0);
	assert_string_equal(v, "/x/a.so /w/p.so");
	/* A prefix of another entry is not a match. */
	assert_int_equal(
		wsp_preload_value(v, sizeof(v), "/w/p.so", "/w/p.so.1"), 0);
	assert_string_equal(v, "/w/p.so:/w/p.so.1");
	assert_int_equal(wsp_preload_value(v, sizeof(v), "/w d/p.so", NULL),
			 -1);
	assert_int_equal(wsp_preload_value(v, sizeof(v), "/w:d/p.so", NULL),
			 -1);
	assert_int_equal(wsp_preload_value(v, 8, "/w/p.so", "/x/a.so"), -1);
}

static void test_argv_is_weft(void **state)
{
	(void)state;
	char *a[] = {"/usr/local/bin/weft", "wrap", "--", "x", NULL};
	char *b[] = {"weft", NULL};
	char *c[] = {"./weftish", NULL};
	char *d[] = {"/bin/sh", "-c", "weft wrap -- x", NULL};
	assert_true(wsp_argv_is_weft(4, a));
	assert_true(wsp_argv_is_weft(1, b));
	assert_false(wsp_argv_is_weft(1, c));
	assert_false(wsp_argv_is_weft(3, d));
	assert_false(wsp_argv_is_weft(0, NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_modes),
		cmocka_unit_test(test_effective),
		cmocka_unit_test(test_conf_args),
		cmocka_unit_test(test_conf_bad_args),
		cmocka_unit_test(test_task_names),
		cmocka_unit_test(test_task_check),
		cmocka_unit_test(test_preload_value),
		cmocka_unit_test(test_argv_is_weft),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
