/*
 * backoff.c - how long a writer waits before retrying a coordinator:
 * exponential, capped, with jitter so that the writers of a large job that
 * lost the coordinator together do not come back together.
 */
#include <time.h>
#include <unistd.h>

#include <weft/wrap.h>

void weft_wrap_backoff_init(weft_wrap_backoff *b, uint32_t base_ms,
			    uint32_t cap_ms, uint64_t seed)
{
	if (seed == 0) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		seed = ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)ts.tv_sec ^
		       ((uint64_t)getpid() << 40);
	}
	b->base_ms = base_ms ? base_ms : 1;
	b->cap_ms = cap_ms < b->base_ms ? b->base_ms : cap_ms;
	b->attempt = 0;
	b->rng = seed ? seed : 0x9e3779b97f4a7c15ull;
}

static uint64_t xorshift(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

uint32_t weft_wrap_backoff_next(weft_wrap_backoff *b)
{
	uint64_t d = b->base_ms;
	for (uint32_t i = 0; i < b->attempt && d < b->cap_ms; i++)
		d *= 2;
	if (d > b->cap_ms)
		d = b->cap_ms;
	if (b->attempt < 64)
		b->attempt++;
	uint64_t half = d / 2;
	return (uint32_t)(d - half + xorshift(&b->rng) % (half + 1));
}

void weft_wrap_backoff_reset(weft_wrap_backoff *b)
{
	b->attempt = 0;
}
