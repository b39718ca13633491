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

#endif /* WEFT_FUZZ_CHECK_H */
