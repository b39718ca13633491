/*
 * env.c - the env contract (DESIGN.md "Env contract"): WEFT_COORDINATOR,
 * WEFT_JOB, WEFT_JOB_TOKEN, WEFT_TRACER, WEFT_SPOOL, WEFT_PARENT (and
 * WEFT_TLS_CA), read strictly. The values come from whatever launched the
 * worker (a batch script, Ray, a user's shell), so each is checked and a
 * bad one is named with what was expected.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include <weft/wrap.h>
#include "wrap_internal.h"

int wrap_fail(char *err, size_t errsz, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errsz, fmt, ap);
	va_end(ap);
	return WEFT_EINVAL;
}

const char *weft_wrap_getenv(const char *name)
{
	return getenv(name);
}

static bool printable(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s <= ' ' || (unsigned char)*s >= 0x7f)
			return false;
	return true;
}

int weft_wrap_check_url(const char *url)
{
	static const char *const schemes[] = {
		"tcp://",      "tcp4://",     "tcp6://", "tls+tcp://",
		"tls+tcp4://", "tls+tcp6://", "ipc://",  "abstract://",
		"inproc://",   "ws://",       "wss://",  NULL};
	size_t n = strlen(url);
	if (n == 0 || n > WEFT_WRAP_MAX_URL_BYTES || !printable(url))
		return -1;
	for (size_t i = 0; schemes[i]; i++) {
		size_t k = strlen(schemes[i]);
		if (strncmp(url, schemes[i], k) == 0)
			return url[k] ? 0 : -1;
	}
	return -1;
}

int weft_wrap_check_task(const char *task)
{
	size_t n = strlen(task);
	return n && n <= WEFT_MAX_TASK_BYTES && printable(task) ? 0 : -1;
}

int weft_wrap_parse_seconds(const char *text, int *ms)
{
	char *end;
	if (!text[0] || strspn(text, "0123456789.") != strlen(text))
		return -1;
	errno = 0;
	double v = strtod(text, &end);
	if (errno || end == text || *end || !(v >= 0) ||
	    v * 1000 > WEFT_WRAP_SHIP_TIMEOUT_MAX_MS)
		return -1;
	*ms = (int)(v * 1000 + 0.5);
	return 0;
}

static int read_token(weft_wrap_env *e, const char *v, char *err, size_t errsz)
{
	size_t n = strlen(v);
	if (weft_token_check(v) != 0)
		/* Never echo a secret, not even a bad one. */
		return wrap_fail(err, errsz,
				 "WEFT_JOB_TOKEN: expected %d to %d printable "
				 "characters without spaces (got %zu bytes)",
				 WEFT_MIN_TOKEN_BYTES, WEFT_MAX_TOKEN_BYTES, n);
	memcpy(e->token, v, n + 1);
	return 0;
}

int weft_wrap_private_dir(const char *dir, char *err, size_t errsz)
{
	/* Made here, 0700 whatever the umask; or one that was there. */
	if (mkdir(dir, 0700) == 0 && chmod(dir, 0700) != 0)
		return wrap_fail(err, errsz, "cannot make %s private: %s", dir,
				 strerror(errno));
	struct stat st;
	if (lstat(dir, &st) != 0)
		return wrap_fail(err, errsz, "cannot create %s: %s", dir,
				 strerror(errno));
	const char *wrong = NULL;
	if (S_ISLNK(st.st_mode))
		wrong = "it is a symbolic link";
	else if (!S_ISDIR(st.st_mode))
		wrong = "it is not a directory";
	else if (st.st_uid != geteuid())
		wrong = "another user owns it";
	else if (st.st_mode & 022)
		wrong = "others may write to it";
	if (wrong)
		return wrap_fail(err, errsz,
				 "%s is not used: %s (remove it, or set a "
				 "home directory or XDG_CACHE_HOME)",
				 dir, wrong);
	return 0;
}

/* The fallback of the spool and the hash cache when this user has no
 * usable home or cache directory: /tmp/weft-<what>-UID. */
static int tmp_fallback(char *out, size_t outsz, const char *what)
{
	return snprintf(out, outsz, "/tmp/weft-%s-%u", what,
			(unsigned)geteuid());
}

static int default_spool(weft_wrap_env *e, weft_wrap_getenv_fn get)
{
	const char *xdg = get("XDG_CACHE_HOME"), *home = get("HOME");
	int n;
	if (xdg && xdg[0] == '/')
		n = snprintf(e->spool, sizeof(e->spool), "%s/weft/spool", xdg);
	else if (home && home[0] == '/' && strcmp(home, "/") != 0)
		n = snprintf(e->spool, sizeof(e->spool), "%s/.cache/weft/spool",
			     home);
	else
		n = tmp_fallback(e->spool, sizeof(e->spool), "spool");
	return n > 0 && (size_t)n < sizeof(e->spool) ? 0 : -1;
}

const char *weft_wrap_hash_cache_path(weft_wrap_getenv_fn get, char *out,
				      size_t outsz, char *why, size_t whysz)
{
	why[0] = '\0';
	const char *v = get("WEFT_HASH_CACHE");
	const char *xdg = get("XDG_CACHE_HOME"), *home = get("HOME");
	int n;
	if (v && !strcmp(v, "off"))
		return NULL;
	/* The same places as the default spool (default_spool). */
	if (v && *v)
		n = snprintf(out, outsz, "%s", v);
	else if (xdg && xdg[0] == '/')
		n = snprintf(out, outsz, "%s/weft/hashes.db", xdg);
	else if (home && home[0] == '/' && strcmp(home, "/") != 0)
		n = snprintf(out, outsz, "%s/.cache/weft/hashes.db", home);
	else {
		/* A directory of its own: a cache file, or its -wal, that
		 * another user made in /tmp would feed us false hashes. */
		char dir[WEFT_MAX_PATH_BYTES];
		n = tmp_fallback(dir, sizeof(dir), "hashes");
		if (n <= 0 || (size_t)n >= sizeof(dir) ||
		    weft_wrap_private_dir(dir, why, whysz) != 0)
			return NULL;
		n = snprintf(out, outsz, "%s/hashes.db", dir);
	}
	return n > 0 && (size_t)n < outsz ? out : NULL;
}

const char *weft_wrap_hash_cache(char buf[WEFT_MAX_PATH_BYTES], weft_report *r,
				 FILE *msgs)
{
	char why[WEFT_MAX_PATH_BYTES + 128];
	const char *at = weft_wrap_hash_cache_path(
		weft_wrap_getenv, buf, WEFT_MAX_PATH_BYTES, why, sizeof(why));
	if (why[0] && r)
		weft_report_warn(r, "no hash cache: %s", why);
	else if (why[0])
		weft_say_to(msgs, "no hash cache: %s", why);
	return at;
}


static int read_path(char *out, size_t outsz, const char *name, const char *v,
		     char *err, size_t errsz)
{
	if (v[0] != '/' || strlen(v) >= outsz)
		return wrap_fail(err, errsz,
				 "%s='%.200s': expected an absolute path of at "
				 "most %zu bytes",
				 name, v, outsz - 1);
	snprintf(out, outsz, "%s", v);
	return 0;
}

static int read_optional(weft_wrap_env *e, weft_wrap_getenv_fn get, char *err,
			 size_t errsz)
{
	const char *v = get("WEFT_TRACER");
	if (v && *v) {
		if (strlen(v) >= sizeof(e->tracer) || !printable(v))
			return wrap_fail(
				err, errsz,
				"WEFT_TRACER='%.64s': expected a tracer "
				"mode (auto, ebpf, preload, ptrace)",
				v);
		snprintf(e->tracer, sizeof(e->tracer), "%s", v);
	}
	v = get("WEFT_PARENT");
	if (v && *v) {
		if (weft_wrap_check_task(v) != 0)
			return wrap_fail(
				err, errsz,
				"WEFT_PARENT='%.200s': expected a task "
				"identity of 1 to %d printable characters "
				"without spaces",
				v, WEFT_MAX_TASK_BYTES);
		snprintf(e->parent, sizeof(e->parent), "%s", v);
	}
	v = get("WEFT_TLS_CA");
	if (v && *v &&
	    read_path(e->tls_ca, sizeof(e->tls_ca), "WEFT_TLS_CA", v, err,
		      errsz) != 0)
		return WEFT_EINVAL;
	v = get("WEFT_SPOOL");
	if (v && *v) {
		e->spool_from_env = true;
		return read_path(e->spool, sizeof(e->spool), "WEFT_SPOOL", v,
				 err, errsz);
	}
	if (default_spool(e, get) != 0)
		return wrap_fail(err, errsz,
				 "no spool directory: set WEFT_SPOOL");
	char tmp[WEFT_MAX_PATH_BYTES + 1];
	tmp_fallback(tmp, sizeof(tmp), "spool");
	if (strcmp(e->spool, tmp) == 0 &&
	    weft_wrap_private_dir(e->spool, err, errsz) != 0)
		return WEFT_EINVAL;
	return WEFT_OK;
}

int weft_wrap_env_read(weft_wrap_env *e, weft_wrap_getenv_fn get,
		       bool require_job, char *err, size_t errsz)
{
	memset(e, 0, sizeof(*e));
	const char *url = get("WEFT_COORDINATOR"), *job = get("WEFT_JOB"),
		   *token = get("WEFT_JOB_TOKEN");
	if (require_job) {
		const char *missing = !url || !*url       ? "WEFT_COORDINATOR"
				      : !job || !*job     ? "WEFT_JOB"
				      : !token || !*token ? "WEFT_JOB_TOKEN"
							  : NULL;
		if (missing)
			return wrap_fail(
				err, errsz,
				"%s is not set: weft wrap runs inside a "
				"job (weft submit sets the env contract; "
				"docs/distributed.md)",
				missing);
	}
	if (url && *url) {
		if (weft_wrap_check_url(url) != 0)
			return wrap_fail(
				err, errsz,
				"WEFT_COORDINATOR='%.200s': expected an "
				"nng URL such as tcp://HOST:PORT, "
				"tls+tcp://HOST:PORT or ipc:///PATH",
				url);
		snprintf(e->coordinator, sizeof(e->coordinator), "%s", url);
	}
	if (job && *job) {
		if (weft_job_id_check(job) != 0)
			return wrap_fail(
				err, errsz,
				"WEFT_JOB='%.64s': expected a job id (a "
				"lowercase UUID such as "
				"0b5e3c9a-1d2f-4e6a-8b7c-9d0e1f2a3b4c)",
				job);
		memcpy(e->job, job, WEFT_JOB_ID_BYTES + 1);
	}
	if (token && *token && read_token(e, token, err, errsz) != 0)
		return WEFT_EINVAL;
	return read_optional(e, get, err, errsz);
}
