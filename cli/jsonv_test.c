/*
 * jsonv_test.c - the strict JSON reader: documents that must parse and
 * write back the same, and bad ones with the line:column and expectation
 * of their message.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "jsonv.h"

static void roundtrip(const char *in, const char *want)
{
	char err[256];
	jv *v = jv_parse(in, strlen(in), err, sizeof(err));
	if (!v)
		fail_msg("%s: %s", in, err);
	char *out = jv_to_string(v);
	assert_non_null(out);
	assert_string_equal(out, want);
	free(out);
	jv_free(v);
}

static void bad(const char *in, const char *want_err)
{
	char err[256];
	jv *v = jv_parse(in, strlen(in), err, sizeof(err));
	if (v)
		fail_msg("%s parsed", in);
	if (!strstr(err, want_err))
		fail_msg("%s: got \"%s\", expected \"%s\"", in, err, want_err);
}

static void test_good(void **state)
{
	(void)state;
	roundtrip("{}", "{}");
	roundtrip(" [1, -2.5e+3, 0, true, false, null] ",
		  "[1, -2.5e+3, 0, true, false, null]");
	roundtrip("{\"b\":1,\"a\":{\"c\":[]}}", "{\"b\": 1, \"a\": {\"c\": []}}");
	roundtrip("\"\\u00e9\\ud83d\\ude00 \\\"q\\\" \\n\"",
		  "\"\xc3\xa9\xf0\x9f\x98\x80 \\\"q\\\" \\n\"");
	roundtrip("\"\xc3\xa9\"", "\"\xc3\xa9\"");
}

static void test_bad(void **state)
{
	(void)state;
	bad("", "line 1, column 1: expected a value");
	bad("{\"a\":1,}", "line 1, column 8: expected a member name");
	bad("{\"a\" 1}", "line 1, column 6: expected ':'");
	bad("[1 2]", "line 1, column 4: expected ',' or ']'");
	bad("{\n  \"a\": tru\n}", "line 2, column 8: expected a value");
	bad("{\"a\":1,\"a\":2}", "a duplicate");
	bad("01", "expected the end of the document");
	bad("1.", "expected a digit after '.'");
	bad("\"a\nb\"", "control characters must be escaped");
	bad("\"\\x\"", "expected one of");
	bad("\"\\ud800\"", "unpaired surrogate");
	bad("\"\\u0000\"", "other than \\u0000");
	bad("\"abc", "closing the string");
	bad("\"\xff\"", "expected UTF-8 text, found byte 0xff");
	bad("[] []", "expected the end of the document");
	char deep[200];
	memset(deep, '[', sizeof(deep) - 1);
	deep[sizeof(deep) - 1] = '\0';
	bad(deep, "at most 64 levels");
}

static void test_set_get(void **state)
{
	(void)state;
	char err[256];
	const char *in = "{\"x\":1,\"y\":2}";
	jv *v = jv_parse(in, strlen(in), err, sizeof(err));
	assert_non_null(v);
	assert_int_equal(jv_set(v, "x", jv_new_string("one")), 0);
	assert_int_equal(jv_set(v, "z", jv_new(JV_NULL)), 0);
	assert_string_equal(jv_get(v, "x")->s, "one");
	assert_null(jv_get(v, "nope"));
	char *out = jv_to_string(v);
	assert_string_equal(out, "{\"x\": \"one\", \"y\": 2, \"z\": null}");
	free(out);
	jv_free(v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good),
		cmocka_unit_test(test_bad),
		cmocka_unit_test(test_set_get),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
