/*
 * ol_curl.c - libcurl for the OpenLineage sender, loaded when a sender
 * first needs it instead of linked into weft.
 *
 * Only a coordinator (or `weft run`) with openlineage.url set speaks
 * HTTP, yet a linked libcurl and the 33 libraries it pulls in are loaded
 * by every weft process: about 3.5 ms of every `weft run`, `weft wrap`
 * and Slurm or Ray task start (docs/benchmarks.md, "Issue 19: after, and
 * the floors"). Loaded here, they cost only the processes that send.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>

#include "coordinator_internal.h"

/* The soname of Debian's libcurl4 (and of every libcurl since 7.16). */
#define OL_CURL_SONAME "libcurl.so.4"

static struct ol_curl_api api;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static char why[256];
static bool loaded;

static void *sym(void *lib, const char *name)
{
	void *p = dlsym(lib, name);
	if (!p && !why[0])
		snprintf(why, sizeof(why), "%s has no %s", OL_CURL_SONAME,
			 name);
	return p;
}

static void load(void)
{
	void *lib = dlopen(OL_CURL_SONAME, RTLD_NOW | RTLD_LOCAL);
	if (!lib) {
		snprintf(why, sizeof(why), "%s", dlerror());
		return;
	}
	api.global_init = (CURLcode(*)(long))sym(lib, "curl_global_init");
	api.easy_init = (CURL * (*)(void)) sym(lib, "curl_easy_init");
	api.easy_cleanup = (void (*)(CURL *))sym(lib, "curl_easy_cleanup");
	api.easy_reset = (void (*)(CURL *))sym(lib, "curl_easy_reset");
	api.easy_setopt = (CURLcode(*)(CURL *, CURLoption, ...))sym(
		lib, "curl_easy_setopt");
	api.easy_perform = (CURLcode(*)(CURL *))sym(lib, "curl_easy_perform");
	api.easy_getinfo = (CURLcode(*)(CURL *, CURLINFO, ...))sym(
		lib, "curl_easy_getinfo");
	api.easy_strerror =
		(const char *(*)(CURLcode))sym(lib, "curl_easy_strerror");
	api.slist_append =
		(struct curl_slist * (*)(struct curl_slist *, const char *))
			sym(lib, "curl_slist_append");
	api.slist_free_all =
		(void (*)(struct curl_slist *))sym(lib, "curl_slist_free_all");
	if (why[0])
		return; /* kept loaded: a library is never unloaded here */
	CURLcode rc = api.global_init(CURL_GLOBAL_DEFAULT);
	if (rc != CURLE_OK) {
		snprintf(why, sizeof(why), "curl_global_init: %s",
			 api.easy_strerror(rc));
		return;
	}
	loaded = true;
}

const struct ol_curl_api *ol_curl(char *err, size_t errsz)
{
	pthread_once(&once, load);
	if (loaded)
		return &api;
	snprintf(err, errsz,
		 "openlineage.url needs libcurl (install libcurl4): %s", why);
	return NULL;
}
