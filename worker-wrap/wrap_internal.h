/*
 * wrap_internal.h - private to libweft_wrap: what its files share.
 */
#ifndef WEFT_WRAP_INTERNAL_H
#define WEFT_WRAP_INTERNAL_H

#include <stddef.h>

/* Format a message for the user into err; returns WEFT_EINVAL. */
int wrap_fail(char *err, size_t errsz, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif /* WEFT_WRAP_INTERNAL_H */
