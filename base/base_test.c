/*
 * base_test.c - libweft_base: the RFC 3339 formats every caller prints
 * (checked against times worked out by hand), the clocks' directions, and
 * the deadlines made from the monotonic one.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <weft/base.h>
#include "../schema/test_main.h"

/* 2026-11-23T09:34:51Z is 1795426491 s after the epoch. */
#define T0 1795426491LL

static void test_rfc3339_microseconds(void **state)
{
	(void)state;
	char out[WEFT_RFC3339_BYTES];
	weft_rfc3339(T0 * 1000000000 + 123456789, out);
	assert_string_equal(out, "2026-11-23T09:34:51.123456Z");
	weft_rfc3339(0, out);
	assert_string_equal(out, "1970-01-01T00:00:00.000000Z");
	/* Truncated, never rounded up into the next second. */
	weft_rfc3339(T0 * 1000000000 + 999999999, out);
	assert_string_equal(out, "2026-11-23T09:34:51.999999Z");
}

static void test_rfc3339_digits(void **state)
{
	(void)state;
	char out[WEFT_RFC3339_BYTES];
	weft_rfc3339_digits(T0 * 1000000000 + 123456789, 0, out);
	assert_string_equal(out, "2026-11-23T09:34:51Z");
	weft_rfc3339_digits(T0 * 1000000000 + 123456789, 3, out);
	assert_string_equal(out, "2026-11-23T09:34:51.123Z");
	weft_rfc3339_digits(T0 * 1000000000 + 123456789, 9, out);
	assert_string_equal(out, "2026-11-23T09:34:51.123456789Z");
	/* Before the epoch: the second below, and the fraction above it. */
	weft_rfc3339_digits(-1, 9, out);
	assert_string_equal(out, "1969-12-31T23:59:59.999999999Z");
}

static void test_clocks(void **state)
{
	(void)state;
	int64_t a = weft_mono_ns(), b = weft_mono_ns();
	assert_true(b >= a);
	assert_true(weft_mono_ms() >= a / 1000000);
	/* After 2020-01-01: the realtime clock is the epoch's. */
	assert_true(weft_real_ns() > 1577836800LL * 1000000000);
}

static int64_t ts_ns(struct timespec t)
{
	return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static void test_mono_deadline(void **state)
{
	(void)state;
	/* Past a second boundary or not, a valid timespec that far ahead
	 * of the clock read around it. */
	for (int64_t ns = 0; ns <= 3500000000LL; ns += 700000001LL) {
		int64_t before = weft_mono_ns();
		struct timespec d = weft_mono_deadline(ns);
		int64_t after = weft_mono_ns();
		assert_true(d.tv_nsec >= 0 && d.tv_nsec < 1000000000);
		assert_true(ts_ns(d) >= before + ns && ts_ns(d) <= after + ns);
	}
}

WEFT_TEST_MAIN(cmocka_unit_test(test_rfc3339_microseconds),
	       cmocka_unit_test(test_rfc3339_digits),
	       cmocka_unit_test(test_clocks),
	       cmocka_unit_test(test_mono_deadline))
