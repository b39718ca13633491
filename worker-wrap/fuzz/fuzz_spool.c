/*
 * fuzz_spool.c - libFuzzer target for the spool file reader: any bytes
 * (a truncated, corrupted or hostile spool file) either fail cleanly or
 * read back to a payload that re-encodes to the same file; a writer state
 * that decodes re-encodes to the same text. Two entry points: the
 * container as a whole, and the state text inside it (which a checksum
 * would otherwise keep the fuzzer from reaching).
 */
#include <stdlib.h>
#include <string.h>

#include <weft/wrap.h>

#define CHECK(cond)                                                            \
	do {                                                                   \
		if (!(cond))                                                   \
			__builtin_trap();                                      \
	} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void state_roundtrip(const uint8_t *data, size_t size)
{
	weft_spool_state s;
	if (weft_spool_state_decode(data, size, &s) != WEFT_OK) {
		CHECK(!s.enrol && !s.enrol_len);
		return;
	}
	weft_buf b;
	weft_buf_init(&b);
	CHECK(weft_spool_state_encode(&s, &b) == WEFT_OK);
	CHECK(b.len == size && !memcmp(b.data, data, size));
	weft_buf_free(&b);
	weft_spool_state_release(&s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size && data[0] == 'w') {
		state_roundtrip(data, size);
		return 0;
	}
	for (int kind = WEFT_SPOOL_FRAGMENT; kind <= WEFT_SPOOL_STATE; kind++) {
		const uint8_t *p;
		size_t n;
		if (weft_spool_decode(data, size, kind, &p, &n) != WEFT_OK)
			continue;
		CHECK(p == data + WEFT_SPOOL_HEADER_BYTES && n <= size);
		weft_buf b;
		weft_buf_init(&b);
		CHECK(weft_spool_encode(kind, p, n, &b) == WEFT_OK);
		CHECK(b.len == size && !memcmp(b.data, data, size));
		weft_buf_free(&b);
		if (kind == WEFT_SPOOL_STATE)
			state_roundtrip(p, n);
	}
	return 0;
}
