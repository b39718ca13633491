/*
 * record_test.c - the ring-buffer record decoder (record.c): a record of
 * every shape decodes to the event it carries; a short, overlong or
 * unterminated one is rejected.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "ebpf_internal.h"
#include "../../schema/test_main.h"

/* A record of kind with the strings given (lengths with their NULs). */
static size_t build(uint8_t *out, uint16_t kind, const char *p, size_t pl,
		    const char *p2, size_t p2l, const char *argv, size_t al)
{
	struct wb_record r;
	memset(&r, 0, sizeof(r));
	r.kind = kind;
	r.pid = 42;
	r.tgid = 41;
	r.ret = 3;
	r.fd = -100;
	r.created = 1;
	r.path_len = (uint16_t)pl;
	r.path2_len = (uint16_t)p2l;
	r.argv_len = (uint32_t)al;
	memcpy(out, &r, sizeof(r));
	size_t n = sizeof(r);
	memcpy(out + n, p, pl);
	n += pl;
	memcpy(out + n, p2, p2l);
	n += p2l;
	memcpy(out + n, argv, al);
	return n + al;
}

static void test_open(void **state)
{
	(void)state;
	uint8_t buf[512];
	wb_decoded d = {0};
	size_t n = build(buf, WEFT_EV_OPEN, "/tmp/x", 7, "", 0, "", 0);
	assert_int_equal(wb_record_decode(buf, n, &d), 0);
	assert_int_equal(d.ev.kind, WEFT_EV_OPEN);
	assert_int_equal(d.ev.pid, 42);
	assert_int_equal(d.ev.tgid, 41);
	assert_int_equal(d.ev.fd, -100);
	assert_int_equal(d.ev.created, WEFT_CREATED_YES);
	assert_string_equal(d.ev.path, "/tmp/x");
	assert_null(d.ev.path2);
	wb_decoded_release(&d);
}

static void test_two_paths(void **state)
{
	(void)state;
	uint8_t buf[512];
	wb_decoded d = {0};
	size_t n = build(buf, WEFT_EV_RENAME, "a.tmp", 6, "a", 2, "", 0);
	assert_int_equal(wb_record_decode(buf, n, &d), 0);
	assert_string_equal(d.ev.path, "a.tmp");
	assert_string_equal(d.ev.path2, "a");
	wb_decoded_release(&d);
}

static void test_exec_argv(void **state)
{
	(void)state;
	uint8_t buf[512];
	wb_decoded d = {0};
	static const char args[] = "sh\0-c\0echo x"; /* 13 bytes with NUL */
	size_t n = build(buf, WEFT_EV_EXEC, "/bin/sh", 8, "", 0, args,
			 sizeof(args));
	assert_int_equal(wb_record_decode(buf, n, &d), 0);
	assert_int_equal(d.ev.argc, 3);
	assert_string_equal(d.ev.argv[0], "sh");
	assert_string_equal(d.ev.argv[2], "echo x");
	/* Cut inside the last argument: only the whole ones remain. */
	n = build(buf, WEFT_EV_EXEC, "/bin/sh", 8, "", 0, args, 9);
	assert_int_equal(wb_record_decode(buf, n, &d), 0);
	assert_int_equal(d.ev.argc, 2);
	assert_string_equal(d.ev.argv[1], "-c");
	wb_decoded_release(&d);
}

static void test_malformed(void **state)
{
	(void)state;
	uint8_t buf[512];
	wb_decoded d = {0};
	size_t n = build(buf, WEFT_EV_OPEN, "/tmp/x", 7, "", 0, "", 0);
	assert_int_equal(
		wb_record_decode(buf, sizeof(struct wb_record) - 1, &d),
		WEFT_ETRUNC);
	assert_int_equal(wb_record_decode(buf, n - 1, &d), WEFT_ETRUNC);
	n = build(buf, WEFT_EV_OPEN, "/tmp/xy", 7, "", 0, "", 0);
	assert_int_equal(wb_record_decode(buf, n, &d), WEFT_EINVAL);
	n = build(buf, WEFT_EV_OPEN, "/t\0mp", 6, "", 0, "", 0);
	assert_int_equal(wb_record_decode(buf, n, &d), WEFT_EINVAL);
	n = build(buf, WEFT_EV_KIND_MAX, "", 0, "", 0, "", 0);
	assert_int_equal(wb_record_decode(buf, n, &d), WEFT_EINVAL);
	n = build(buf, 0, "", 0, "", 0, "", 0);
	assert_int_equal(wb_record_decode(buf, n, &d), WEFT_EINVAL);
	wb_decoded_release(&d);
}

WEFT_TEST_MAIN(cmocka_unit_test(test_open), cmocka_unit_test(test_two_paths),
	       cmocka_unit_test(test_exec_argv),
	       cmocka_unit_test(test_malformed))
