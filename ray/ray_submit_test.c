/*
 * ray_submit_test.c - the `ray job submit` rewrite: the runtime env gets
 * weft as the Python hook would give it, user fields are kept, conflicts
 * and malformed input are refused with a clear reason, options keep their
 * values, and the entrypoint runs under the wrapper with its shell text
 * intact.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <weft/ray.h>

static const char *const names[] = {"WEFT_COORDINATOR", "WEFT_JOB", NULL};
static const char *const values[] = {"tcp://10.0.0.1:7700", "job-1", NULL};
static const weft_ray_submit_opts opts = {"/opt/weft/bin/weft", "/opt/weft/py",
					  names, values};

static char *env_of(const char *json, char *err)
{
	return weft_ray_runtime_env_rewrite(json, &opts, err, 512);
}

static void test_env_defaults(void **state)
{
	(void)state;
	char err[512];
	char *out = env_of(NULL, err);
	assert_non_null(out);
	assert_string_equal(
		out,
		"{\"env_vars\": {\"WEFT_COORDINATOR\": "
		"\"tcp://10.0.0.1:7700\", \"WEFT_JOB\": \"job-1\", "
		"\"PYTHONPATH\": \"/opt/weft/py\", "
		"\"RAY_RUNTIME_ENV_HOOK\": \"weft.ray.runtime_env_hook\"}, "
		"\"worker_process_setup_hook\": \"weft.ray.worker_setup\"}");
	free(out);
}

static void test_env_user_fields(void **state)
{
	(void)state;
	char err[512];
	char *out = env_of("{\"pip\": [\"numpy\"], \"py_executable\": "
			   "\"/venv/bin/python -X dev\", "
			   "\"worker_process_setup_hook\": \"mine.setup\", "
			   "\"env_vars\": {\"PYTHONPATH\": \"/u\", "
			   "\"RAY_RUNTIME_ENV_HOOK\": \"their.hook\"}}",
			   err);
	assert_non_null(out);
	assert_string_equal(
		out,
		"{\"pip\": [\"numpy\"], \"py_executable\": "
		"\"/opt/weft/bin/weft "
		"wrap --ray -- /venv/bin/python -X dev\", "
		"\"worker_process_setup_hook\": \"weft.ray.worker_setup\", "
		"\"env_vars\": {\"PYTHONPATH\": \"/opt/weft/py:/u\", "
		"\"RAY_RUNTIME_ENV_HOOK\": \"weft.ray.runtime_env_hook\", "
		"\"WEFT_COORDINATOR\": \"tcp://10.0.0.1:7700\", \"WEFT_JOB\": "
		"\"job-1\", \"WEFT_RAY_USER_ENV_HOOK\": \"their.hook\", "
		"\"WEFT_RAY_USER_SETUP_HOOK\": \"mine.setup\"}}");
	/* Applied twice: the same. */
	char *again = env_of(out, err);
	assert_non_null(again);
	assert_string_equal(again, out);
	free(again);
	free(out);
}

static void expect_err(const char *json, const char *want)
{
	char err[512];
	char *out = env_of(json, err);
	if (out)
		fail_msg("accepted %s: %s", json, out);
	if (!strstr(err, want))
		fail_msg("%s: got \"%s\", expected \"%s\"", json, err, want);
}

static void test_env_refused(void **state)
{
	(void)state;
	expect_err("{\"env_vars\": {\"WEFT_JOB\": \"other\"}}",
		   "env_vars sets WEFT_JOB=\"other\", but this job is traced "
		   "by weft with WEFT_JOB=\"job-1\"");
	expect_err("{\"env_vars\": {\"N\": 3}}", "N is not a string");
	expect_err("[1]", "must be a JSON object");
	expect_err("{\"pip\": [}", "not valid JSON: line 1, column 10");
	expect_err("{\"py_executable\": 1}", "py_executable must be a string");
}

static char **rewrite(char **argv, char *err)
{
	char **out = NULL;
	if (weft_ray_submit_rewrite(argv, &opts, &out, err, 512) != 0)
		return NULL;
	return out;
}

static void test_argv(void **state)
{
	(void)state;
	char err[512];
	char *argv[] = {"ray",
			"job",
			"submit",
			"--address",
			"http://head:8265",
			"--no-wait",
			"--runtime-env-json={\"pip\": []}",
			"--",
			"python",
			"train.py",
			"--lr",
			"0.1",
			NULL};
	assert_true(weft_ray_submit_matches(argv));
	char **out = rewrite(argv, err);
	if (!out)
		fail_msg("%s", err);
	const char *want[] = {"ray",
			      "job",
			      "submit",
			      "--address",
			      "http://head:8265",
			      "--no-wait",
			      "--runtime-env-json",
			      NULL,
			      "--",
			      "/opt/weft/bin/weft",
			      "wrap",
			      "--",
			      "sh",
			      "-c",
			      "'python train.py --lr 0.1'"};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		if (want[i])
			assert_string_equal(out[i], want[i]);
	assert_non_null(strstr(out[7], "\"pip\": []"));
	assert_null(out[15]);
	weft_ray_submit_free(out);

	/* Shell text with quotes survives; no runtime env given. */
	char *argv2[] = {"/usr/bin/ray",
			 "job",
			 "submit",
			 "--",
			 "echo 'a b' && python x.py",
			 NULL};
	out = rewrite(argv2, err);
	assert_non_null(out);
	assert_string_equal(out[3], "--runtime-env-json");
	assert_string_equal(out[11], "'echo '\\''a b'\\'' && python x.py'");
	weft_ray_submit_free(out);
}

static void test_argv_refused(void **state)
{
	(void)state;
	char err[512];
	char *no_entry[] = {"ray", "job", "submit", "--address", "x", NULL};
	assert_null(rewrite(no_entry, err));
	assert_non_null(strstr(err, "no entrypoint"));
	char *bad_json[] = {"ray",   "job", "submit", "--runtime-env-json",
			    "{oops", "--",  "true",   NULL};
	assert_null(rewrite(bad_json, err));
	assert_non_null(strstr(err, "not valid JSON"));
	char *two[] = {"ray",    "job",
		       "submit", "--runtime-env-json",
		       "{}",     "--runtime-env-json",
		       "{}",     "--",
		       "true",   NULL};
	assert_null(rewrite(two, err));
	assert_non_null(strstr(err, "more than one runtime env"));

	char yaml[] = "/tmp/weft-ray-submit-test-XXXXXX";
	int fd = mkstemp(yaml);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "pip:\n  - numpy\n", 15), 15);
	close(fd);
	char *from_yaml[] = {"ray", "job", "submit", "--runtime-env",
			     yaml,  "--",  "true",   NULL};
	assert_null(rewrite(from_yaml, err));
	assert_non_null(strstr(err, "YAML is not supported"));
	unlink(yaml);
	char *missing[] = {
		"ray", "job",  "submit", "--runtime-env", "/nonexistent.json",
		"--",  "true", NULL};
	assert_null(rewrite(missing, err));
	assert_non_null(strstr(err, "cannot read the --runtime-env file"));
	char *not_ray[] = {"ray", "status", NULL};
	assert_false(weft_ray_submit_matches(not_ray));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_env_defaults),
		cmocka_unit_test(test_env_user_fields),
		cmocka_unit_test(test_env_refused),
		cmocka_unit_test(test_argv),
		cmocka_unit_test(test_argv_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
