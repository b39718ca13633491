/*
 * clock.c - weft's two clocks. Durations and deadlines come from the
 * monotonic clock (a clock step must not cut a timeout short or make a
 * run last a negative time); what a record says happened when comes
 * from the realtime clock.
 */
#include <time.h>

#include <weft/base.h>

static int64_t clock_ns(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t weft_mono_ns(void)
{
	return clock_ns(CLOCK_MONOTONIC);
}

int64_t weft_mono_ms(void)
{
	return clock_ns(CLOCK_MONOTONIC) / 1000000;
}

double weft_mono_s(void)
{
	return (double)clock_ns(CLOCK_MONOTONIC) / 1e9;
}

struct timespec weft_mono_deadline(int64_t ns)
{
	int64_t at = clock_ns(CLOCK_MONOTONIC) + ns;
	return (struct timespec){.tv_sec = at / 1000000000,
				 .tv_nsec = at % 1000000000};
}

int64_t weft_real_ns(void)
{
	return clock_ns(CLOCK_REALTIME);
}
