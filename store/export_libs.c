/*
 * export_libs.c - libzip and Graphviz's libraries, loaded by the outputs
 * that use them instead of linked into weft.
 *
 * Only `weft export --format rocrate -o crate.zip` zips and only `weft
 * dag --format svg|html` lays a graph out, yet linked libraries are
 * loaded by every weft process: libzip (with libcrypto, libbz2, ...)
 * added about 1.3 ms and libgvc (libcgraph, libcdt, libpathplan,
 * libltdl, libexpat) about 0.35 ms to every `weft run`, `weft wrap` and
 * Slurm or Ray task start (issue 19). Loaded here, they cost only the
 * commands that use them; where one is missing, that command fails
 * naming the package and every other command works.
 *
 * A library is loaded once (pthread_once) and never unloaded: Graphviz
 * keeps its plugins loaded past its context's end.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>

#include "export_gvc.h"
#include "export_zip.h"

#if defined(WEFT_HAVE_LIBZIP) || defined(WEFT_HAVE_GVC)

/* The reason a load failed: dlerror()'s text, which names the file. */
#define WHY_BYTES 256

/* One library's state: loaded once, never unloaded; why is empty when
 * everything resolved. */
struct optional_lib {
	pthread_once_t once;
	char why[WHY_BYTES];
};

static void *open_lib(struct optional_lib *l, const char *soname)
{
	void *lib = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
	if (!lib && !l->why[0])
		snprintf(l->why, WHY_BYTES, "%s", dlerror());
	return lib;
}

/* name in lib, or NULL with the first failure kept in l->why. */
static void *sym(struct optional_lib *l, void *lib, const char *name)
{
	void *p = lib ? dlsym(lib, name) : NULL;
	if (!p && !l->why[0])
		snprintf(l->why, WHY_BYTES, "%s", dlerror());
	return p;
}

/* api once load has run and everything resolved; else NULL, with err
 * saying what needs the library (and which package holds it) and why. */
static const void *loaded(struct optional_lib *l, void (*load)(void),
			  const void *api, const char *needs, char *err,
			  size_t errsz)
{
	pthread_once(&l->once, load);
	if (!l->why[0])
		return api;
	snprintf(err, errsz, "%s: %s", needs, l->why);
	return NULL;
}

#ifdef WEFT_HAVE_LIBZIP

/* Debian's libzip4 (libzip 1.x). */
#define ZIP_SONAME "libzip.so.4"

static struct export_zip_api zip_api;
static struct optional_lib zip_lib = {PTHREAD_ONCE_INIT, ""};

static void zip_load(void)
{
	void *lib = open_lib(&zip_lib, ZIP_SONAME);
#define FROM_ZIP(f) zip_api.f = (__typeof__(zip_api.f))sym(&zip_lib, lib, #f);
	EXPORT_ZIP_API(FROM_ZIP)
#undef FROM_ZIP
}

const struct export_zip_api *export_zip(char *err, size_t errsz)
{
	return loaded(&zip_lib, zip_load, &zip_api,
		      "a zip needs libzip (install libzip4)", err, errsz);
}

#endif

#ifdef WEFT_HAVE_GVC

/* Debian's libcgraph6 and libgvc6 (Graphviz 2.4x; libgvc6 depends on
 * libcgraph6 and holds the dot layout and SVG plugins). */
#define CGRAPH_SONAME "libcgraph.so.6"
#define GVC_SONAME "libgvc.so.6"

static struct export_gvc_api gvc_api;
static struct optional_lib gvc_lib = {PTHREAD_ONCE_INIT, ""};

static void gvc_load(void)
{
	void *cg = open_lib(&gvc_lib, CGRAPH_SONAME);
	void *gv = open_lib(&gvc_lib, GVC_SONAME);
#define FROM(lib, f) gvc_api.f = (__typeof__(gvc_api.f))sym(&gvc_lib, lib, #f);
#define FROM_CGRAPH(f) FROM(cg, f)
#define FROM_GVC(f) FROM(gv, f)
	EXPORT_CGRAPH_API(FROM_CGRAPH)
	EXPORT_GVC_API(FROM_GVC)
#undef FROM_GVC
#undef FROM_CGRAPH
#undef FROM
}

const struct export_gvc_api *export_gvc(char *err, size_t errsz)
{
	return loaded(&gvc_lib, gvc_load, &gvc_api,
		      "svg and html need Graphviz's library (install libgvc6)",
		      err, errsz);
}

#endif

#endif /* WEFT_HAVE_LIBZIP || WEFT_HAVE_GVC */
