/*
 * test_main.h - for unit tests only: what cmocka test programs write the
 * same way, once: their main(), a scratch directory, a file's record in a
 * report. It lives in schema/,
 * the part every other depends on, so that a test in any folder can
 * include it (after cmocka.h).
 */
#ifndef WEFT_TEST_MAIN_H
#define WEFT_TEST_MAIN_H

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <weft/schema.h>

/* main(): runs the tests given (each a cmocka_unit_test(...)) as one
 * group, without group setup or teardown, and returns how many failed. A
 * macro because the tests are an array only main() can declare. */
#define WEFT_TEST_MAIN(...)                                                    \
	int main(void)                                                         \
	{                                                                      \
		const struct CMUnitTest tests[] = {__VA_ARGS__};               \
		return cmocka_run_group_tests(tests, NULL, NULL);              \
	}

/* A new directory weft-NAME-XXXXXX under $TMPDIR (an absolute one, else
 * /tmp), as its real path (tracers record real paths) in dir: 0, or -1. */
static inline int weft_test_tmpdir(const char *name, char *dir, size_t dirsz)
{
	const char *tmp = getenv("TMPDIR");
	char made[PATH_MAX], real[PATH_MAX];
	snprintf(made, sizeof(made), "%s/weft-%s-XXXXXX",
		 tmp && tmp[0] == '/' ? tmp : "/tmp", name);
	if (!mkdtemp(made) || !realpath(made, real))
		return -1;
	snprintf(dir, dirsz, "%s", real);
	return 0;
}

/* The record of the file dir/name in r, or NULL. */
static inline const weft_file_rec *
weft_test_file(const weft_report *r, const char *dir, const char *name)
{
	char path[PATH_MAX + 64];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	for (size_t i = 0; i < r->nfiles; i++)
		if (strcmp(r->files[i].path, path) == 0)
			return &r->files[i];
	return NULL;
}

#endif /* WEFT_TEST_MAIN_H */
