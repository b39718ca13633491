/*
 * submit.c - host-submit: the `ray job submit` rewrite of weft/ray.h.
 *
 * The runtime env gets what python-shim/weft/ray.py's runtime_env_hook
 * gives a runtime env, plus RAY_RUNTIME_ENV_HOOK for the driver, so that a
 * `ray.init()` in the driver applies the hook to anything it submits with
 * a runtime env of its own:
 *   - py_executable, when the user set one, runs under
 *     `WEFT wrap --ray -- <theirs>` (unset, the driver's hook sets it from
 *     the driver's own interpreter, the one Ray would use);
 *   - env_vars gain the env contract (a different value already there is
 *     a conflict), the weft package on PYTHONPATH, and
 *     RAY_RUNTIME_ENV_HOOK=weft.ray.runtime_env_hook (a user's own hook
 *     moves to WEFT_RAY_USER_ENV_HOOK and still runs first);
 *   - worker_process_setup_hook becomes weft.ray.worker_setup, a user's own
 *     moving to env_vars WEFT_RAY_USER_SETUP_HOOK, still called.
 * The entrypoint runs as `WEFT wrap -- sh -c '<entrypoint>'`: Ray runs the
 * entrypoint words joined by spaces with a shell, so this keeps whatever
 * the user's shell text does, under the wrapper.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include <weft/ray.h>

#define HOOK_ENV "weft.ray.runtime_env_hook"
#define HOOK_SETUP "weft.ray.worker_setup"

/* Options of `ray job submit` that take a value (Ray 2.43). */
static const char *const value_opts[] = {
	"--address",
	"--job-id",
	"--submission-id",
	"--runtime-env",
	"--runtime-env-json",
	"--metadata-json",
	"--working-dir",
	"--entrypoint-num-cpus",
	"--entrypoint-num-gpus",
	"--entrypoint-memory",
	"--entrypoint-resources",
	"--log-style",
	"--log-color",
	"--headers",
	"--verify",
	NULL,
};

static const char *base_name(const char *p)
{
	const char *s = strrchr(p, '/');
	return s ? s + 1 : p;
}

bool weft_ray_submit_matches(char *const *argv)
{
	return argv[0] && strcmp(base_name(argv[0]), "ray") == 0 && argv[1] &&
	       strcmp(argv[1], "job") == 0 && argv[2] &&
	       strcmp(argv[2], "submit") == 0;
}

static bool takes_value(const char *opt, size_t len)
{
	for (size_t i = 0; value_opts[i]; i++)
		if (strlen(value_opts[i]) == len &&
		    strncmp(opt, value_opts[i], len) == 0)
			return true;
	return false;
}

static bool is_wrapped(const char *py)
{
	/* "<...>/weft wrap ..." */
	const char *sp = strchr(py, ' ');
	if (!sp)
		return false;
	size_t n = (size_t)(sp - py);
	return n >= 4 && strncmp(sp - 4, "weft", 4) == 0 &&
	       (n == 4 || sp[-5] == '/') && strncmp(sp + 1, "wrap", 4) == 0 &&
	       (sp[5] == ' ' || sp[5] == '\0');
}

static int oom(char *err, size_t errsz)
{
	snprintf(err, errsz, "out of memory");
	return -1;
}

/* obj[key] = the string value (replacing a member of that name in
 * place, else appended). */
static int set_string(json_t *obj, const char *key, const char *value,
		      char *err, size_t errsz)
{
	if (json_object_set_new(obj, key, json_string(value)) == 0)
		return 0;
	snprintf(err, errsz,
		 "cannot set %s to \"%s\" in the runtime env "
		 "(out of memory, or not UTF-8)",
		 key, value);
	return -1;
}

/* Set env_vars[name] = value unless it holds another value already. */
static int merge_var(json_t *vars, const char *name, const char *value,
		     char *err, size_t errsz)
{
	const char *have = json_string_value(json_object_get(vars, name));
	if (have && strcmp(have, value) != 0) {
		snprintf(err, errsz,
			 "runtime_env env_vars sets %s=\"%s\", but this job "
			 "is traced by weft with %s=\"%s\"; remove it from "
			 "env_vars (weft sets it)",
			 name, have, name, value);
		return -1;
	}
	return have ? 0 : set_string(vars, name, value, err, errsz);
}

/* The runtime env's member name as a string in *v, NULL when it is not
 * there; -1 with the message (a kind of string) when it is no string. */
static int string_member(json_t *env, const char *name, const char *kind,
			 const char **v, char *err, size_t errsz)
{
	json_t *m = json_object_get(env, name);
	*v = json_string_value(m); /* NULL for NULL or a non-string */
	if (m && !*v) {
		snprintf(err, errsz, "runtime_env %s must be a %sstring", name,
			 kind);
		return -1;
	}
	return 0;
}

static int rewrite_env(json_t *env, const weft_ray_submit_opts *o, char *err,
		       size_t errsz)
{
	const char *theirs;
	if (string_member(env, "py_executable", "", &theirs, err, errsz) != 0)
		return -1;
	if (theirs && !is_wrapped(theirs)) {
		size_t n = strlen(o->weft_binary) + strlen(theirs) + 32;
		char *w = malloc(n);
		if (!w)
			return oom(err, errsz);
		snprintf(w, n, "%s wrap --ray -- %s", o->weft_binary, theirs);
		int rc = set_string(env, "py_executable", w, err, errsz);
		free(w);
		if (rc != 0)
			return -1;
	}

	json_t *vars = json_object_get(env, "env_vars");
	if (!vars) {
		if (json_object_set_new(env, "env_vars", json_object()) != 0)
			return oom(err, errsz);
		vars = json_object_get(env, "env_vars");
	}
	if (!json_is_object(vars)) {
		snprintf(err, errsz,
			 "runtime_env env_vars must be an object "
			 "mapping names to strings");
		return -1;
	}
	const char *key;
	json_t *val;
	json_object_foreach(vars, key, val) if (!json_is_string(val))
	{
		snprintf(err, errsz,
			 "runtime_env env_vars must map strings to "
			 "strings; %s is not a string",
			 key);
		return -1;
	}
	for (size_t i = 0; o->contract_names[i]; i++)
		if (merge_var(vars, o->contract_names[i], o->contract_values[i],
			      err, errsz) != 0)
			return -1;

	/* The weft package first on PYTHONPATH. */
	const char *pp = json_string_value(json_object_get(vars, "PYTHONPATH"));
	size_t plen = strlen(o->python_path);
	bool present = false;
	for (const char *q = pp; q && *q;) {
		const char *c = strchrnul(q, ':');
		if ((size_t)(c - q) == plen &&
		    strncmp(q, o->python_path, plen) == 0)
			present = true;
		q = *c ? c + 1 : c;
	}
	if (!present) {
		size_t n = plen + (pp ? strlen(pp) : 0) + 2;
		char *v = malloc(n);
		if (!v)
			return oom(err, errsz);
		snprintf(v, n, "%s%s%s", o->python_path, pp ? ":" : "",
			 pp ? pp : "");
		int rc = set_string(vars, "PYTHONPATH", v, err, errsz);
		free(v);
		if (rc != 0)
			return -1;
	}

	/* The driver's ray.init() runs the Python hook; a user's own hook
	 * still runs, first. */
	const char *envhook = json_string_value(
		json_object_get(vars, "RAY_RUNTIME_ENV_HOOK"));
	if (envhook && strcmp(envhook, HOOK_ENV) != 0 &&
	    merge_var(vars, "WEFT_RAY_USER_ENV_HOOK", envhook, err, errsz) != 0)
		return -1;
	if (set_string(vars, "RAY_RUNTIME_ENV_HOOK", HOOK_ENV, err, errsz) != 0)
		return -1;

	const char *setup;
	if (string_member(env, "worker_process_setup_hook",
			  "\"module.function\" ", &setup, err, errsz) != 0)
		return -1;
	if (setup && strcmp(setup, HOOK_SETUP) != 0 &&
	    merge_var(vars, "WEFT_RAY_USER_SETUP_HOOK", setup, err,
		      errsz) != 0)
		return -1;
	return set_string(env, "worker_process_setup_hook", HOOK_SETUP, err,
			  errsz);
}

char *weft_ray_runtime_env_rewrite(const char *json,
				   const weft_ray_submit_opts *o, char *err,
				   size_t errsz)
{
	json_error_t je;
	/* Strict as RFC 8259 asks of a document read from outside: one
	 * value, no duplicate member names, no NUL in strings; jansson
	 * bounds the nesting (2048 levels), the caller the size. */
	json_t *env =
		json ? json_loads(json,
				  JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je)
		     : json_object();
	if (!env) {
		if (json)
			snprintf(err, errsz,
				 "the runtime env is not valid JSON: line %d, "
				 "column %d: %s",
				 je.line, je.column, je.text);
		else
			oom(err, errsz);
		return NULL;
	}
	if (!json_is_object(env)) {
		snprintf(err, errsz,
			 "the runtime env must be a JSON object "
			 "({...})");
		json_decref(env);
		return NULL;
	}
	char *out = NULL;
	/* Members in the order they came (jansson keeps insertion order),
	 * ", " and ": " between them: what Ray and people read. */
	if (rewrite_env(env, o, err, errsz) == 0 && !(out = json_dumps(env, 0)))
		oom(err, errsz);
	json_decref(env);
	return out;
}

static char *read_file(const char *path, char *err, size_t errsz)
{
	FILE *f = fopen(path, "re");
	if (!f) {
		snprintf(err, errsz,
			 "cannot read the --runtime-env file %s: %s", path,
			 strerror(errno));
		return NULL;
	}
	char *buf = malloc(WEFT_RAY_ENV_MAX_BYTES + 1);
	size_t n = buf ? fread(buf, 1, WEFT_RAY_ENV_MAX_BYTES + 1, f) : 0;
	fclose(f);
	if (!buf) {
		oom(err, errsz);
		return NULL;
	}
	if (n > WEFT_RAY_ENV_MAX_BYTES) {
		free(buf);
		snprintf(err, errsz,
			 "the --runtime-env file %s is larger "
			 "than %u bytes",
			 path, WEFT_RAY_ENV_MAX_BYTES);
		return NULL;
	}
	buf[n] = '\0';
	return buf;
}

/* sh -c's argument quoted for a shell: '...' with ' as '\''. */
static char *shell_quote(const char *s)
{
	size_t n = 3;
	for (const char *p = s; *p; p++)
		n += *p == '\'' ? 4 : 1;
	char *q = malloc(n), *o = q;
	if (!q)
		return NULL;
	*o++ = '\'';
	for (const char *p = s; *p; p++) {
		if (*p == '\'') {
			memcpy(o, "'\\''", 4);
			o += 4;
		} else {
			*o++ = *p;
		}
	}
	*o++ = '\'';
	*o = '\0';
	return q;
}

void weft_ray_submit_free(char **argv)
{
	for (size_t i = 0; argv && argv[i]; i++)
		free(argv[i]);
	free(argv);
}

/* text into a new file only its owner can read: created here (never an
 * existing file or a symlink), 0600 whatever the umask. */
static int write_private(const char *path, const char *text, char *err,
			 size_t errsz)
{
	int fd =
		open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		     0600);
	size_t n = strlen(text);
	if (fd < 0 || fchmod(fd, 0600) != 0 ||
	    write(fd, text, n) != (ssize_t)n) {
		snprintf(err, errsz, "cannot write the runtime env to %s: %s",
			 path, strerror(errno));
		if (fd >= 0) {
			close(fd);
			unlink(path);
		}
		return -1;
	}
	close(fd);
	return 0;
}

int weft_ray_submit_rewrite(char *const *argv, const weft_ray_submit_opts *o,
			    char ***out, char *err, size_t errsz)
{
	size_t argc = 0;
	while (argv[argc])
		argc++;
	/* At most: ray job submit, the options, a new runtime env pair, the
	 * seven words of the wrapped entrypoint, NULL. */
	char **nv = calloc(argc + 12, sizeof(*nv));
	if (!nv)
		return oom(err, errsz);
	size_t k = 0, i = 3;
	char *env_text = NULL;
	bool env_given = false;
	for (size_t j = 0; j < 3; j++)
		if (!(nv[k++] = strdup(argv[j])))
			goto nomem;
	/* Options up to the entrypoint ("--", or the first word that is
	 * not an option). */
	for (; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--") == 0) {
			i++;
			break;
		}
		if (a[0] != '-')
			break;
		const char *eq = strchr(a, '=');
		size_t nlen = eq ? (size_t)(eq - a) : strlen(a);
		bool json =
			nlen == 18 && strncmp(a, "--runtime-env-json", 18) == 0;
		bool file = nlen == 13 && strncmp(a, "--runtime-env", 13) == 0;
		const char *val = eq ? eq + 1 : NULL;
		if (!eq && takes_value(a, nlen)) {
			if (i + 1 >= argc) {
				snprintf(err, errsz,
					 "ray job submit option %s "
					 "needs a value",
					 a);
				goto fail;
			}
			val = argv[++i];
		}
		if (json || file) {
			if (env_given) {
				snprintf(err, errsz,
					 "ray job submit got more than one "
					 "runtime env (--runtime-env, "
					 "--runtime-env-json)");
				goto fail;
			}
			env_given = true;
			free(env_text);
			env_text =
				json ? strdup(val) : read_file(val, err, errsz);
			if (!env_text) {
				if (json)
					oom(err, errsz);
				goto fail; /* read_file said why */
			}
			if (file && !strchr("{ \t\r\n", env_text[0])) {
				snprintf(err, errsz,
					 "weft reads the --runtime-env file %s "
					 "as JSON, and it is not (YAML is not "
					 "supported): pass the runtime env as "
					 "--runtime-env-json instead",
					 val);
				goto fail;
			}
			continue;
		}
		if (!(nv[k++] = strdup(a)))
			goto nomem;
		if (!eq && takes_value(a, nlen) && !(nv[k++] = strdup(val)))
			goto nomem;
	}
	if (i >= argc) {
		snprintf(err, errsz,
			 "ray job submit has no entrypoint (the "
			 "command after --)");
		goto fail;
	}
	char *env = weft_ray_runtime_env_rewrite(env_text, o, err, errsz);
	if (!env) {
		if (env_text && strstr(err, "not valid JSON"))
			snprintf(err + strlen(err), errsz - strlen(err),
				 " (in the %s)",
				 "runtime env given to ray job submit");
		goto fail;
	}
	free(env_text);
	env_text = NULL;
	if (o->env_file) {
		if (write_private(o->env_file, env, err, errsz) != 0) {
			free(env);
			goto fail;
		}
		free(env);
		nv[k++] = strdup("--runtime-env");
		nv[k++] = strdup(o->env_file);
	} else {
		nv[k++] = strdup("--runtime-env-json");
		nv[k++] = env;
	}

	/* The entrypoint: Ray joins its words with spaces and runs them with
	 * a shell; the same text, under the wrapper. */
	size_t len = 1;
	for (size_t j = i; j < argc; j++)
		len += strlen(argv[j]) + 1;
	char *joined = malloc(len);
	if (!joined)
		goto nomem;
	joined[0] = '\0';
	for (size_t j = i; j < argc; j++) {
		if (j > i)
			strcat(joined, " ");
		strcat(joined, argv[j]);
	}
	char *quoted = shell_quote(joined);
	free(joined);
	if (!quoted)
		goto nomem;
	nv[k++] = strdup("--");
	nv[k++] = strdup(o->weft_binary);
	nv[k++] = strdup("wrap");
	nv[k++] = strdup("--");
	nv[k++] = strdup("sh");
	nv[k++] = strdup("-c");
	nv[k++] = quoted;
	for (size_t j = 0; j < k; j++)
		if (!nv[j])
			goto nomem;
	*out = nv;
	return 0;
nomem:
	oom(err, errsz);
fail:
	free(env_text);
	weft_ray_submit_free(nv);
	return -1;
}
