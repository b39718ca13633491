/*
 * weft_base.h - libweft_base, the lowest layer: what every part of weft
 * needs and none should own a copy of. The clock (one monotonic clock
 * for durations and deadlines, one realtime clock for what records and
 * people see), RFC 3339 timestamps, and the one line weft says on
 * stderr. Nothing here depends on any other part.
 */
#ifndef WEFT_BASE_H
#define WEFT_BASE_H

#include <stdarg.h>
#include <stdint.h>

/* ---- The clock (clock.c) ---- */

/* CLOCK_MONOTONIC: durations, deadlines, timeouts. Never goes back. */
int64_t weft_mono_ns(void);
int64_t weft_mono_ms(void);
/* CLOCK_REALTIME, nanoseconds since the epoch: start and end times that
 * records carry and people read. */
int64_t weft_real_ns(void);

/* ---- Messages (say.c) ---- */

/* "weft: " + message + newline on stderr: what weft says to the user
 * about itself (errors, warnings), never the workload's output. */
void weft_say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void weft_vsay(const char *fmt, va_list ap)
	__attribute__((format(printf, 1, 0)));

#endif /* WEFT_BASE_H */
