/*
 * ray_submit.h - private to the weft executable: `weft submit -- ray job
 * submit ...` (Ray host-submit). The command line is rewritten so that the
 * job's runtime env carries weft (as the Python hook python-shim/weft/ray.py
 * would make it) and the entrypoint, the driver, is traced too. docs/ray.md
 * is the user's view; the rewrite and the Python hook agree field by field
 * (tests/ray_submit_test.py checks it).
 */
#ifndef WEFT_CLI_RAY_SUBMIT_H
#define WEFT_CLI_RAY_SUBMIT_H

#include <stdbool.h>
#include <stddef.h>

typedef struct ray_submit_opts {
	const char *weft_binary;  /* the weft command on the cluster's nodes */
	const char *python_path;  /* the weft Python package's dir there */
	/* The env contract (WEFT_COORDINATOR, ...): names and values; NULL
	 * terminated. */
	const char *const *contract_names;
	const char *const *contract_values;
	/* Where the runtime env (which holds WEFT_JOB_TOKEN) is written, 0600,
	 * for `--runtime-env FILE`: never on Ray's command line, where every
	 * user of the machine could read it (ps). NULL: passed as
	 * --runtime-env-json, for a dry run that launches nothing. */
	const char *env_file;
} ray_submit_opts;

/* Whether argv (the command after `weft submit --`) is `ray job submit`. */
bool ray_submit_matches(char *const *argv);

/* The rewritten command line in *out (NULL terminated; free with
 * ray_submit_free). 0, or -1 with the reason in err (a malformed user
 * runtime env, a conflicting setting, an unreadable --runtime-env file):
 * then nothing may be submitted. */
int ray_submit_rewrite(char *const *argv, const ray_submit_opts *o,
		       char ***out, char *err, size_t errsz);
void ray_submit_free(char **argv);

/* The runtime env transform alone, on a JSON object text (NULL: none);
 * a new JSON string (free()) or NULL with err. */
char *ray_runtime_env_rewrite(const char *json, const ray_submit_opts *o,
			      char *err, size_t errsz);

#endif /* WEFT_CLI_RAY_SUBMIT_H */
