/*
 * weft/base.h - libweft_base, the lowest layer: what every part of weft
 * needs and none should own a copy of. The clock (one monotonic clock
 * for durations and deadlines, one realtime clock for what records and
 * people see), RFC 3339 timestamps, and the one line weft says on
 * stderr. Nothing here depends on any other part.
 */
#ifndef WEFT_BASE_H
#define WEFT_BASE_H

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

/* ---- The clock (clock.c) ---- */

/* CLOCK_MONOTONIC: durations, deadlines, timeouts. Never goes back. */
int64_t weft_mono_ns(void);
int64_t weft_mono_ms(void);
/* The same in seconds, for the ratios benchmarks and tests print. */
double weft_mono_s(void);
/* The monotonic time ns from now: a deadline for pthread_cond_timedwait
 * on a condition variable made with CLOCK_MONOTONIC. */
struct timespec weft_mono_deadline(int64_t ns);
/* CLOCK_REALTIME, nanoseconds since the epoch: start and end times that
 * records carry and people read. */
int64_t weft_real_ns(void);

/* ---- RFC 3339 times (rfc3339.c) ---- */

#define WEFT_RFC3339_BYTES 40
/* ns since the epoch as RFC 3339 UTC with microseconds, what records,
 * exports and the tracer log show: 2026-11-23T09:34:51.123456Z */
void weft_rfc3339(int64_t ns, char out[WEFT_RFC3339_BYTES]);
/* The same with digits (0..9) of the second's fraction; 0 gives whole
 * seconds: 2026-11-23T09:34:51Z */
void weft_rfc3339_digits(int64_t ns, int digits, char out[WEFT_RFC3339_BYTES]);

/* ---- Messages (say.c) ---- */

/* "weft: " + message + newline on stderr: what weft says to the user
 * about itself (errors, warnings), never the workload's output. */
void weft_say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void weft_vsay(const char *fmt, va_list ap)
	__attribute__((format(printf, 1, 0)));
/* fn (NULL: nothing) runs before each line is said: the executable takes
 * its progress line off the terminal there. */
void weft_say_before(void (*fn)(void));
/* The same line on out (a library's messages stream; NULL: nothing). */
void weft_say_to(FILE *out, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void weft_vsay_to(FILE *out, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));

/* ---- A forked child that goes on after weft exits (detach.c) ---- */

/* In a child just forked to go on after weft has exited: default handlers
 * for the signals weft catches and none blocked, a session of its own,
 * ready closed (the parent waits for that: by then the child is out of
 * weft's process group), /dev/null as 0, 1 and 2, and every descriptor
 * weft inherited from its caller (not close-on-exec) closed. */
void weft_detach(int ready);

/* ---- Progress ---- */

/* How far a long operation has come: done of total units (total 0 when not
 * known), bytes so far (0 when the work has none). Called from the
 * operation's own thread, as often as it likes: the receiver decides when
 * to show anything. */
typedef void (*weft_progress_fn)(void *arg, uint64_t done, uint64_t total,
				 uint64_t bytes);

#endif /* WEFT_BASE_H */
