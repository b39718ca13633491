/*
 * driver.c - in-cluster: a Ray driver started by `weft run` (or
 * `weft submit --mode in-cluster`) on a Ray node. Whether Ray is in play,
 * and the driver's environment: weft's runtime-env hook for ray.init(),
 * the weft package on PYTHONPATH, the weft binary for the workers.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <weft/ray.h>

#define RAY_CURRENT_CLUSTER "/tmp/ray/ray_current_cluster"

bool weft_ray_detect(char *why, size_t whysz)
{
	const char *addr = getenv("RAY_ADDRESS");
	if (addr && *addr) {
		snprintf(why, whysz, "RAY_ADDRESS is set");
		return true;
	}
	if (access(RAY_CURRENT_CLUSTER, F_OK) == 0) {
		snprintf(why, whysz, "this node runs Ray (%s)",
			 RAY_CURRENT_CLUSTER);
		return true;
	}
	why[0] = '\0';
	return false;
}

/* Whether dir is an entry of the colon-separated list. */
static bool in_path_list(const char *list, const char *dir)
{
	size_t n = strlen(dir);
	for (const char *p = list; p && *p;) {
		const char *colon = strchrnul(p, ':');
		if ((size_t)(colon - p) == n && strncmp(p, dir, n) == 0)
			return true;
		p = *colon ? colon + 1 : colon;
	}
	return false;
}

int weft_ray_driver_env(const char *python_path, const char *weft_binary,
			char *err, size_t errsz)
{
	const char *hook = getenv("RAY_RUNTIME_ENV_HOOK");
	const char *chained = getenv("WEFT_RAY_USER_ENV_HOOK");
	bool user_hook = hook && *hook && strcmp(hook, WEFT_RAY_ENV_HOOK) != 0;
	if (user_hook && chained && *chained && strcmp(chained, hook) != 0) {
		snprintf(err, errsz,
			 "RAY_RUNTIME_ENV_HOOK=%s and "
			 "WEFT_RAY_USER_ENV_HOOK=%s: "
			 "weft runs one hook of yours before its own (%s), not "
			 "two; unset one of them; the command was not started",
			 hook, chained, WEFT_RAY_ENV_HOOK);
		return -1;
	}
	const char *old = getenv("PYTHONPATH");
	char *path = NULL;
	if (!old || !*old) {
		path = strdup(python_path);
	} else if (!in_path_list(old, python_path)) {
		size_t n = strlen(python_path) + strlen(old) + 2;
		if ((path = malloc(n)))
			snprintf(path, n, "%s:%s", python_path, old);
	}
	const char *bin = getenv("WEFT_BIN");
	int rc = 0;
	if ((user_hook && setenv("WEFT_RAY_USER_ENV_HOOK", hook, 1) != 0) ||
	    setenv("RAY_RUNTIME_ENV_HOOK", WEFT_RAY_ENV_HOOK, 1) != 0 ||
	    (path && setenv("PYTHONPATH", path, 1) != 0) ||
	    ((!bin || !*bin) && strcmp(weft_binary, "weft") != 0 &&
	     setenv("WEFT_BIN", weft_binary, 1) != 0)) {
		snprintf(err, errsz,
			 "cannot set the Ray driver's environment: %s",
			 strerror(errno));
		rc = -1;
	}
	free(path);
	return rc;
}
