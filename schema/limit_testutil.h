/*
 * limit_testutil.h - for unit tests only: the edge of a named length
 * limit, checked the same way wherever a text check enforces one (job
 * tokens in schema/, Slurm task names in slurm/). Include after cmocka.h.
 */
#ifndef WEFT_LIMIT_TESTUTIL_H
#define WEFT_LIMIT_TESTUTIL_H

#include <stdlib.h>
#include <string.h>

/* check (0 accepted, -1 refused) takes a text of max bytes and refuses
 * one of max + 1. */
static inline void assert_length_limit(int (*check)(const char *), size_t max)
{
	char *s = malloc(max + 2);
	assert_non_null(s);
	memset(s, 'a', max + 1);
	s[max + 1] = '\0';
	assert_int_equal(check(s), -1);
	s[max] = '\0';
	assert_int_equal(check(s), 0);
	free(s);
}

#endif /* WEFT_LIMIT_TESTUTIL_H */
