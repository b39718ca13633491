/*
 * fuzz_check.h - shared by the schema fuzz targets: how a property
 * violation is reported (a trap, so libFuzzer saves the input), and the
 * one case in which re-encoding a decoded message may legitimately fail.
 */
#ifndef WEFT_FUZZ_CHECK_H
#define WEFT_FUZZ_CHECK_H

#define FUZZ_CHECK(cond)                                                       \
	do {                                                                   \
		if (!(cond))                                                   \
			__builtin_trap();                                      \
	} while (0)

/* The encoder writes every string as bin; an input may use fixstr, one
 * byte shorter. Canonical ints and headers never grow, so re-encoding
 * grows by at most one byte per string, and at most doubles a message
 * (every string takes at least its one header byte). Only an input that
 * close to its limit may fail to re-encode with WEFT_ETOOBIG. */
#define FUZZ_REENCODE_MAY_GROW_PAST(len, limit) ((len) > (limit) / 2)

/*
 * The property a record-like decoder is fuzzed for, as the whole target:
 * any input either fails cleanly (EMPTY holds of a: nothing left to
 * release) or decodes to a value a whose encoding one holds SIZE_OK,
 * decodes back to b with EQUAL, and re-encodes to the same bytes (the
 * encoding is canonical). T is the type and its functions' prefix
 * (T##_decode, T##_encode, T##_release), LIMIT the decoder's size limit,
 * STORAGE empty or static (for types too large for the stack). The
 * expressions name a, b, one and size.
 */
#define FUZZ_ROUNDTRIP(STORAGE, T, LIMIT, EMPTY, SIZE_OK, EQUAL)               \
	int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);          \
	int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)           \
	{                                                                      \
		STORAGE T a, b;                                                \
		if (T##_decode(data, size, &a) != WEFT_OK) {                   \
			FUZZ_CHECK(EMPTY);                                     \
			return 0;                                              \
		}                                                              \
		weft_buf one, two;                                             \
		weft_buf_init(&one);                                           \
		weft_buf_init(&two);                                           \
		int rc = T##_encode(&a, &one);                                 \
		if (rc == WEFT_ETOOBIG &&                                      \
		    FUZZ_REENCODE_MAY_GROW_PAST(size, LIMIT))                  \
			goto out;                                              \
		FUZZ_CHECK(rc == WEFT_OK);                                     \
		FUZZ_CHECK(SIZE_OK);                                           \
		FUZZ_CHECK(T##_decode(one.data, one.len, &b) == WEFT_OK);      \
		FUZZ_CHECK(EQUAL);                                             \
		FUZZ_CHECK(T##_encode(&b, &two) == WEFT_OK);                   \
		FUZZ_CHECK(one.len == two.len &&                               \
			   !memcmp(one.data, two.data, one.len));              \
		T##_release(&b);                                               \
	out:                                                                   \
		T##_release(&a);                                               \
		weft_buf_free(&one);                                           \
		weft_buf_free(&two);                                           \
		return 0;                                                      \
	}

#endif /* WEFT_FUZZ_CHECK_H */
