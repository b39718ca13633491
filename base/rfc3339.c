/*
 * rfc3339.c - the one RFC 3339 formatter: UTC, 'T' and 'Z', with as many
 * digits of the second's fraction as the caller shows. Records, exports,
 * the CLI's views and the tracer log print microseconds; a preflight
 * verdict's probe time, whole seconds.
 */
#include <stdio.h>
#include <time.h>

#include <weft/base.h>

void weft_rfc3339_digits(int64_t ns, int digits, char out[WEFT_RFC3339_BYTES])
{
	/* Floor, so that a time before the epoch still reads forward. */
	int64_t secs = ns / 1000000000, frac = ns % 1000000000;
	if (frac < 0) {
		frac += 1000000000;
		secs--;
	}
	time_t t = (time_t)secs;
	struct tm tm;
	size_t n = 0;
	if (gmtime_r(&t, &tm))
		n = strftime(out, WEFT_RFC3339_BYTES, "%Y-%m-%dT%H:%M:%S", &tm);
	if (n == 0) {
		snprintf(out, WEFT_RFC3339_BYTES, "?");
		return;
	}
	if (digits > 9)
		digits = 9;
	if (digits <= 0) {
		snprintf(out + n, WEFT_RFC3339_BYTES - n, "Z");
		return;
	}
	for (int i = digits; i < 9; i++)
		frac /= 10;
	snprintf(out + n, WEFT_RFC3339_BYTES - n, ".%0*lldZ", digits,
		 (long long)frac);
}

void weft_rfc3339(int64_t ns, char out[WEFT_RFC3339_BYTES])
{
	weft_rfc3339_digits(ns, 6, out);
}
