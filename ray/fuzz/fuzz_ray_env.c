/*
 * fuzz_ray_env.c - libFuzzer target for the runtime env a user gives
 * `weft submit -- ray job submit --runtime-env-json ...`: any text either
 * fails with a message, or rewrites to a JSON object that rewrites again
 * to the same text (the rewrite is idempotent: a runtime env weft already
 * made is left as it is).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <weft/ray.h>

static const char *const names[] = {"WEFT_COORDINATOR", "WEFT_JOB", NULL};
static const char *const values[] = {"tcp://10.0.0.1:7700", "job-1", NULL};
static const weft_ray_submit_opts opts = {"/opt/weft/bin/weft", "/opt/weft/py",
					  names, values, NULL};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > WEFT_RAY_ENV_MAX_BYTES)
		return 0;
	char *text = malloc(size + 1), err[512];
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	err[0] = '\0';
	char *once =
		weft_ray_runtime_env_rewrite(text, &opts, err, sizeof(err));
	free(text);
	if (!once) {
		if (!err[0])
			abort(); /* every failure says why */
		return 0;
	}
	char *twice =
		weft_ray_runtime_env_rewrite(once, &opts, err, sizeof(err));
	if (!twice || strcmp(once, twice) != 0)
		abort(); /* what we write, we read, and leave as it is */
	free(twice);
	free(once);
	return 0;
}
