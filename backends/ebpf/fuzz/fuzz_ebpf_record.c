/*
 * fuzz_ebpf_record.c - libFuzzer target for wb_record_decode, the decoder
 * of ring-buffer records (which also arrive over the agent's socket): any
 * input either fails cleanly or gives an event whose strings lie inside
 * the input and end there with their NUL, and whose argv entries do too.
 */
#include <stdlib.h>
#include <string.h>

#include "ebpf_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_inside(const uint8_t *data, size_t size, const char *s)
{
	if (!s)
		return;
	const char *lo = (const char *)data, *hi = lo + size;
	if (s < lo || s >= hi || !memchr(s, '\0', (size_t)(hi - s)))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	wb_decoded d;
	memset(&d, 0, sizeof(d));
	if (wb_record_decode(data, size, &d) == 0) {
		check_inside(data, size, d.ev.path);
		check_inside(data, size, d.ev.path2);
		if (d.ev.kind < WEFT_EV_OPEN || d.ev.kind >= WEFT_EV_KIND_MAX)
			abort();
		for (uint32_t i = 0; i < d.ev.argc; i++)
			check_inside(data, size, d.ev.argv[i]);
	}
	wb_decoded_release(&d);
	return 0;
}
