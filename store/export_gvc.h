/*
 * export_gvc.h - private to libweft_store: Graphviz's functions that
 * `weft dag --format svg|html` calls (render.c), from libcgraph and
 * libgvc loaded when a picture is drawn (export_libs.c) instead of
 * linked into every weft process. Named and typed as in <gvc.h>, so a
 * call through the table is checked like a direct call. WEFT_HAVE_GVC:
 * the header was found at build time. (Apart from export_zip.h: <gvc.h>
 * declares names, such as path, that other files use for variables.)
 */
#ifndef WEFT_STORE_EXPORT_GVC_H
#define WEFT_STORE_EXPORT_GVC_H

#include <stddef.h>

#ifdef WEFT_HAVE_GVC
#include <gvc.h>

/* The names, each once: the table's members and what is looked up.
 * libcgraph's graph (Agdirected is data, the kind of graph), then
 * libgvc's layout and rendering. */
#define EXPORT_CGRAPH_API(F)                                                   \
	F(Agdirected)                                                          \
	F(agopen)                                                              \
	F(agclose)                                                             \
	F(agnode)                                                              \
	F(agedge)                                                              \
	F(agattr)                                                              \
	F(agsafeset)
#define EXPORT_GVC_API(F)                                                      \
	F(gvContext)                                                           \
	F(gvFreeContext)                                                       \
	F(gvLayout)                                                            \
	F(gvFreeLayout)                                                        \
	F(gvRenderData)                                                        \
	F(gvFreeRenderData)

/* A pointer to f, of f's type in the library's header. */
#define EXPORT_API_MEMBER(f) __typeof__(f) *f;

struct export_gvc_api {
	EXPORT_CGRAPH_API(EXPORT_API_MEMBER)
	EXPORT_GVC_API(EXPORT_API_MEMBER)
};

/* Graphviz's libraries, loaded on the first call; NULL when they cannot
 * be, with err naming the package to install and the loader's reason. */
const struct export_gvc_api *export_gvc(char *err, size_t errsz);
#endif

#endif /* WEFT_STORE_EXPORT_GVC_H */
