/*
 * wrap_env_test.c - the env contract and task identity: every variable
 * checked strictly, named in the error, and identities built the way the
 * engines' users read them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include <weft/wrap.h>

/* A fake environment: NAME=VALUE strings, NULL-terminated. */
static const char *const *fake_env;

static const char *fake_get(const char *name)
{
	size_t n = strlen(name);
	for (const char *const *e = fake_env; e && *e; e++)
		if (strncmp(*e, name, n) == 0 && (*e)[n] == '=')
			return *e + n + 1;
	return NULL;
}

#define JOB "0b5e3c9a-1d2f-4e6a-8b7c-9d0e1f2a3b4c"
#define TOKEN "0123456789abcdef0123456789abcdef"

static int read_env(weft_wrap_env *e, bool require, char *err,
		    const char *const *env)
{
	fake_env = env;
	return weft_wrap_env_read(e, fake_get, require, err, 512);
}

static void test_full_contract(void **state)
{
	(void)state;
	const char *env[] = {"WEFT_COORDINATOR=tcp://10.1.2.3:7700",
			     "WEFT_JOB=" JOB,
			     "WEFT_JOB_TOKEN=" TOKEN,
			     "WEFT_TRACER=ptrace",
			     "WEFT_SPOOL=/var/tmp/spool",
			     "WEFT_PARENT=42.0.0@n1",
			     NULL};
	weft_wrap_env e;
	char err[512] = "";
	assert_int_equal(read_env(&e, true, err, env), WEFT_OK);
	assert_string_equal(e.coordinator, "tcp://10.1.2.3:7700");
	assert_string_equal(e.job, "0b5e3c9a-1d2f-4e6a-8b7c-9d0e1f2a3b4c");
	assert_string_equal(e.token, TOKEN);
	assert_string_equal(e.tracer, "ptrace");
	assert_string_equal(e.spool, "/var/tmp/spool");
	assert_true(e.spool_from_env);
	assert_string_equal(e.parent, "42.0.0@n1");
}

static void test_missing_required(void **state)
{
	(void)state;
	const char *env[] = {"WEFT_COORDINATOR=tcp://h:1", "WEFT_JOB=" JOB,
			     NULL};
	weft_wrap_env e;
	char err[512] = "";
	assert_int_equal(read_env(&e, true, err, env), WEFT_EINVAL);
	assert_non_null(strstr(err, "WEFT_JOB_TOKEN is not set"));
	/* Not required: fine, and the spool has its default. */
	assert_int_equal(read_env(&e, false, err, env), WEFT_OK);
	assert_false(e.spool_from_env);
	assert_true(e.spool[0] == '/');
}

/* The error of an environment of var alone, which must be refused. */
static void bad_env_error(const char *var, char err[512])
{
	const char *env[] = {var, NULL};
	weft_wrap_env e;
	err[0] = '\0';
	assert_int_equal(read_env(&e, false, err, env), WEFT_EINVAL);
}

static void expect_bad(const char *var, const char *needle)
{
	char err[512];
	bad_env_error(var, err);
	if (!strstr(err, needle))
		fail_msg("%s: error '%s' lacks '%s'", var, err, needle);
}

static void test_bad_values(void **state)
{
	(void)state;
	expect_bad("WEFT_COORDINATOR=10.0.0.1:7700", "WEFT_COORDINATOR=");
	expect_bad("WEFT_COORDINATOR=http://x", "nng URL");
	expect_bad("WEFT_COORDINATOR=tcp://", "WEFT_COORDINATOR");
	expect_bad("WEFT_COORDINATOR=tcp://a b:1", "WEFT_COORDINATOR");
	expect_bad("WEFT_JOB=1234", "expected a job id");
	expect_bad("WEFT_JOB=0B5E3C9A-1D2F-4E6A-8B7C-9D0E1F2A3B4C",
		   "lowercase");
	expect_bad("WEFT_JOB=0b5e3c9a-1d2f-4e6a-8b7c-9d0e1f2a3b4g", "WEFT_JOB");
	expect_bad("WEFT_JOB=0b5e3c9a01d2f-4e6a-8b7c-9d0e1f2a3b4c", "WEFT_JOB");
	expect_bad("WEFT_JOB_TOKEN=short", "WEFT_JOB_TOKEN");
	expect_bad("WEFT_JOB_TOKEN=0123456789abcdef 0123", "WEFT_JOB_TOKEN");
	expect_bad("WEFT_SPOOL=relative/dir", "absolute path");
	expect_bad("WEFT_PARENT=has space", "WEFT_PARENT");
	expect_bad("WEFT_TRACER=a\tb", "WEFT_TRACER");
	expect_bad("WEFT_TLS_CA=ca.pem", "WEFT_TLS_CA");
}

static void test_token_never_echoed(void **state)
{
	(void)state;
	char err[512];
	bad_env_error("WEFT_JOB_TOKEN=sec ret-secret-secret", err);
	assert_null(strstr(err, "ret-secret"));
}

static void test_default_spool(void **state)
{
	(void)state;
	const char *xdg[] = {"XDG_CACHE_HOME=/c", "HOME=/home/u", NULL};
	const char *home[] = {"HOME=/home/u", NULL};
	const char *none[] = {NULL};
	weft_wrap_env e;
	char err[512];
	assert_int_equal(read_env(&e, false, err, xdg), WEFT_OK);
	assert_string_equal(e.spool, "/c/weft/spool");
	assert_int_equal(read_env(&e, false, err, home), WEFT_OK);
	assert_string_equal(e.spool, "/home/u/.cache/weft/spool");
	assert_int_equal(read_env(&e, false, err, none), WEFT_OK);
	assert_non_null(strstr(e.spool, "/tmp/weft-spool-"));
}

static int identity(weft_wrap_identity *id, const char *task,
		    const char *const *env, char *err)
{
	fake_env = env;
	return weft_wrap_identity_get(id, task, fake_get, "host1", err, 512);
}

static void test_identity_slurm(void **state)
{
	(void)state;
	const char *env[] = {"SLURM_JOB_ID=4242",    "SLURM_STEP_ID=3",
			     "SLURM_PROCID=17",      "SLURM_NODEID=2",
			     "SLURMD_NODENAME=cn07", NULL};
	weft_wrap_identity id;
	char err[512];
	assert_int_equal(identity(&id, NULL, env, err), WEFT_OK);
	assert_string_equal(id.task, "4242.3.17@cn07");
	assert_string_equal(id.node, "cn07");
	assert_string_equal(id.source, "slurm");
	/* A batch script: no step; no node name but a node number. */
	const char *batch[] = {"SLURM_JOB_ID=9", "SLURM_NODEID=4", NULL};
	assert_int_equal(identity(&id, NULL, batch, err), WEFT_OK);
	assert_string_equal(id.task, "9.batch.0@node4");
	/* --task wins over the engine. */
	assert_int_equal(identity(&id, "prep", env, err), WEFT_OK);
	assert_string_equal(id.task, "prep");
	assert_string_equal(id.source, "--task");
}

static void test_identity_bad(void **state)
{
	(void)state;
	const char *env[] = {"SLURM_JOB_ID=12a", NULL};
	weft_wrap_identity id;
	char err[512] = "";
	assert_int_equal(identity(&id, NULL, env, err), WEFT_EINVAL);
	assert_non_null(strstr(err, "SLURM_JOB_ID='12a'"));
	const char *env2[] = {"SLURM_JOB_ID=1", "SLURMD_NODENAME=a/b", NULL};
	assert_int_equal(identity(&id, NULL, env2, err), WEFT_EINVAL);
	assert_non_null(strstr(err, "SLURMD_NODENAME"));
	const char *none[] = {NULL};
	assert_int_equal(identity(&id, "two words", none, err), WEFT_EINVAL);
	assert_non_null(strstr(err, "--task"));
}

static void test_identity_ray_and_host(void **state)
{
	(void)state;
	const char *ray[] = {"RAY_JOB_ID=02000000", "RAY_WORKER_ID=ab12", NULL};
	const char *none[] = {NULL};
	weft_wrap_identity id;
	char err[512];
	assert_int_equal(identity(&id, NULL, ray, err), WEFT_OK);
	assert_string_equal(id.task, "ray.02000000.ab12@host1");
	assert_string_equal(id.source, "ray");
	assert_int_equal(identity(&id, NULL, none, err), WEFT_OK);
	assert_string_equal(id.source, "host");
	assert_non_null(strstr(id.task, "@host1"));
}

static void test_parse_seconds(void **state)
{
	(void)state;
	int ms = -7;
	assert_int_equal(weft_wrap_parse_seconds("3", &ms), 0);
	assert_int_equal(ms, 3000);
	assert_int_equal(weft_wrap_parse_seconds("0.25", &ms), 0);
	assert_int_equal(ms, 250);
	assert_int_equal(weft_wrap_parse_seconds("0", &ms), 0);
	assert_int_equal(ms, 0);
	const char *bad[] = {"",    "-1",   " 3",  "3s",   "nan",
			     "inf", "0x10", "1e3", "3601", "1..2"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(weft_wrap_parse_seconds(bad[i], &ms), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_full_contract),
		cmocka_unit_test(test_missing_required),
		cmocka_unit_test(test_bad_values),
		cmocka_unit_test(test_token_never_echoed),
		cmocka_unit_test(test_default_spool),
		cmocka_unit_test(test_identity_slurm),
		cmocka_unit_test(test_identity_bad),
		cmocka_unit_test(test_identity_ray_and_host),
		cmocka_unit_test(test_parse_seconds),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
