/*
 * jsonv.h - private to the weft executable: JSON documents read from
 * outside (a Ray runtime env given on a command line or in a file), as a
 * tree that can be changed and written back. Strict (RFC 8259, no
 * extensions), bounded (depth, size), errors with line:column and what was
 * expected. Object members keep their order; numbers keep their text.
 */
#ifndef WEFT_CLI_JSONV_H
#define WEFT_CLI_JSONV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#define JV_MAX_DEPTH 64
#define JV_MAX_BYTES (1u << 20)

enum jv_kind { JV_NULL, JV_BOOL, JV_NUMBER, JV_STRING, JV_ARRAY, JV_OBJECT };

typedef struct jv {
	enum jv_kind kind;
	bool b;             /* JV_BOOL */
	char *s;            /* JV_STRING (UTF-8, no NUL inside), JV_NUMBER
			       (its text) */
	char **keys;        /* JV_OBJECT: n keys, in document order */
	struct jv **items;  /* JV_ARRAY, JV_OBJECT: n values */
	size_t n, cap;
} jv;

/* Parse text (len bytes). NULL on error, with "line L, column C: what was
 * expected" in err. Duplicate object keys are an error. */
jv *jv_parse(const char *text, size_t len, char *err, size_t errsz);
void jv_free(jv *v);

jv *jv_new(enum jv_kind kind);
jv *jv_new_string(const char *s);

/* The member key of an object, or NULL. */
jv *jv_get(const jv *obj, const char *key);
/* Set member key of obj to val (replacing, in place, a member of that
 * name; else appended). obj owns val afterwards, also on failure.
 * 0, or -1 when out of memory. */
int jv_set(jv *obj, const char *key, jv *val);

/* Compact JSON on out. */
void jv_write(FILE *out, const jv *v);
/* Compact JSON in a new string (free()), or NULL. */
char *jv_to_string(const jv *v);

#endif /* WEFT_CLI_JSONV_H */
