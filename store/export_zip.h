/*
 * export_zip.h - private to libweft_store: libzip's functions that
 * `weft export --format rocrate -o crate.zip` calls (export_rocrate.c),
 * from libzip loaded when a zip is written (export_libs.c) instead of
 * linked into every weft process. Named and typed as in <zip.h>, so a
 * call through the table is checked like a direct call. WEFT_HAVE_LIBZIP:
 * the header was found at build time.
 */
#ifndef WEFT_STORE_EXPORT_ZIP_H
#define WEFT_STORE_EXPORT_ZIP_H

#include <stddef.h>

#ifdef WEFT_HAVE_LIBZIP
#include <zip.h>

/* The functions, each once: the table's members and what is looked up. */
#define EXPORT_ZIP_API(F)                                                      \
	F(zip_open)                                                            \
	F(zip_source_buffer)                                                   \
	F(zip_source_free)                                                     \
	F(zip_file_add)                                                        \
	F(zip_close)                                                           \
	F(zip_discard)                                                         \
	F(zip_strerror)                                                        \
	F(zip_error_init_with_code)                                            \
	F(zip_error_strerror)                                                  \
	F(zip_error_fini)

/* A pointer to f, of f's type in the library's header. */
#define EXPORT_API_MEMBER(f) __typeof__(f) *f;

struct export_zip_api {
	EXPORT_ZIP_API(EXPORT_API_MEMBER)
};

/* libzip, loaded on the first call; NULL when it cannot be, with err
 * naming the package to install and the loader's reason. */
const struct export_zip_api *export_zip(char *err, size_t errsz);
#endif

#endif /* WEFT_STORE_EXPORT_ZIP_H */
