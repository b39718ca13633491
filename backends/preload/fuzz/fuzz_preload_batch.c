/*
 * fuzz_preload_batch.c - libFuzzer target for pl_batch_decode, the
 * collector's reader of what libweft_preload.so sends from inside the
 * traced workload: any input is rejected whole or yields records whose
 * strings all lie inside the input and are NUL-terminated there.
 */
#include <stdint.h>
#include <string.h>

#include "preload_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct span {
	const uint8_t *lo, *hi;
	int records;
};

static int check(void *ctx, const pl_record *d)
{
	struct span *s = ctx;
	s->records++;
	if (d->r.kind < PL_R_IMAGE || d->r.kind >= PL_R_KIND_MAX ||
	    d->nstr > PL_MAX_STR)
		__builtin_trap();
	for (unsigned i = 0; i < d->nstr; i++) {
		const uint8_t *p = (const uint8_t *)d->strs[i];
		if (p < s->lo || p >= s->hi ||
		    !memchr(p, '\0', (size_t)(s->hi - p)))
			__builtin_trap();
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* The collector hands the decoder an aligned receive buffer. */
	static _Alignas(8) uint8_t buf[PL_BATCH_MAX + 1];
	if (size > sizeof(buf))
		return 0;
	memcpy(buf, data, size);
	struct span s = {buf, buf + size, 0};
	struct pl_batch h;
	int rc = pl_batch_decode(buf, size, &h, check, &s);
	if (rc != WEFT_OK && s.records != 0)
		__builtin_trap(); /* a bad batch must hand on nothing */
	return 0;
}
