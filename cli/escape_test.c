/*
 * escape_test.c - unit tests for escape.c: what a terminal or Graphviz
 * gets from a string weft did not write (control bytes, escape
 * sequences, invalid UTF-8, quotes, backslashes), and that valid UTF-8
 * passes unchanged.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "cli.h"
#include "../schema/test_main.h"

typedef void (*print_fn)(FILE *out, const char *s);

/* What print writes for s, as a string (the caller frees it). */
static char *printed(print_fn print, const char *s)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	assert_non_null(f);
	print(f, s);
	fclose(f);
	return buf;
}

static void assert_prints(print_fn print, const char *in, const char *want)
{
	char *got = printed(print, in);
	assert_string_equal(got, want);
	free(got);
}

static void test_text(void **state)
{
	(void)state;
	assert_prints(text_escaped, "plain /a/b.txt", "plain /a/b.txt");
	assert_prints(text_escaped, "node\x1b[2J\x1b]0;owned\x07",
		      "node\\x1b[2J\\x1b]0;owned\\x07");
	assert_prints(text_escaped, "a\nb\tc\r\x7f", "a\\nb\\tc\\x0d\\x7f");
	assert_prints(text_escaped, "back\\slash", "back\\\\slash");
	assert_prints(text_escaped, "caf\xc3\xa9 \xe2\x9c\x93",
		      "caf\xc3\xa9 \xe2\x9c\x93");
	/* Invalid UTF-8: a lone continuation, a cut sequence, an overlong
	 * slash, a C1 control written as UTF-8 passes (it is valid). */
	assert_prints(text_escaped, "\x80x\xc3", "\\x80x\\xc3");
	assert_prints(text_escaped, "\xc0\xaf", "\\xc0\\xaf");
	assert_prints(text_escaped, "say \"hi\"", "say \"hi\"");
}

static void test_dot(void **state)
{
	(void)state;
	assert_prints(dot_string, "a", "\"a\"");
	assert_prints(dot_string, "x\"; evil [label=\"y",
		      "\"x\\\"; evil [label=\\\"y\"");
	assert_prints(dot_string, "\x1b[31m\xff\n\\",
		      "\"\\x1b[31m\\xff\\n\\\\\"");
	assert_prints(dot_string, "caf\xc3\xa9", "\"caf\xc3\xa9\"");
}

static void test_buffer(void **state)
{
	(void)state;
	char out[8];
	assert_int_equal(text_escape(out, sizeof(out), "a\x1b"), 5);
	assert_string_equal(out, "a\\x1b");
	/* Cut, still terminated; the whole length is returned. */
	assert_int_equal(text_escape(out, sizeof(out), "\x01\x02\x03"), 12);
	assert_string_equal(out, "\\x01\\x0");
	assert_int_equal(text_escape(out, 1, "abc"), 3);
	assert_string_equal(out, "");
}

WEFT_TEST_MAIN(cmocka_unit_test(test_text), cmocka_unit_test(test_dot),
	       cmocka_unit_test(test_buffer))
