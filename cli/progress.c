/*
 * progress.c - one line on a terminal saying how far a long piece of work
 * has come (hashing and storing after a workload, verify, pull, flush):
 * counts, bytes and the rate, redrawn in place.
 *
 * Progress is for a person watching: it is drawn only when stderr is a
 * terminal, never with --json, and only once the work has run past a
 * second, so short runs print exactly what they printed before. The line
 * is erased at the end, leaving the command's own output as it was.
 * WEFT_PROGRESS_DELAY_MS sets the second (the tests draw at once).
 */
#include <inttypes.h>
#include <stdlib.h>
#include <unistd.h>

#include "cli.h"
#include <weft/base.h>
#include <weft/store.h>

/* The line on the terminal now, which cli_error takes away first. */
static cli_progress *shown;

#define PROGRESS_DELAY_MS 1000
/* Redrawn at most this often: a terminal is slow, the work is not. */
#define PROGRESS_REDRAW_MS 200

/* WEFT_PROGRESS_DELAY_MS, checked before the command began (main.c):
 * unset or empty, the default. */
static int64_t delay_ms(void)
{
	const char *s = getenv("WEFT_PROGRESS_DELAY_MS");
	char *end;
	long v = s ? strtol(s, &end, 10) : -1;
	if (!s || end == s || *end || v < 0)
		return PROGRESS_DELAY_MS;
	return v;
}

static void erase_shown(void)
{
	cli_progress_erase(NULL);
}

void cli_progress_begin(cli_progress *p, const char *what, const char *unit,
			bool json)
{
	*p = (cli_progress){.what = what, .unit = unit};
	p->on = !json && isatty(STDERR_FILENO);
	p->start_ms = weft_mono_ms();
	p->show_ms = p->start_ms + delay_ms();
	/* Whatever weft says meanwhile (cli_error, a library's warning)
	 * takes the line off first. */
	if (p->on)
		weft_say_before(erase_shown);
}

void cli_progress_then(cli_progress *p, const char *what, const char *unit)
{
	cli_progress_erase(p);
	p->what = what;
	p->unit = unit;
	p->start_ms = weft_mono_ms();
	p->done = p->total = p->bytes = 0;
}

/* 1234567 as "1,234,567". */
static const char *grouped(uint64_t n, char buf[32])
{
	char digits[24];
	int len = snprintf(digits, sizeof(digits), "%" PRIu64, n), o = 0;
	for (int i = 0; i < len; i++) {
		if (i && (len - i) % 3 == 0)
			buf[o++] = ',';
		buf[o++] = digits[i];
	}
	buf[o] = '\0';
	return buf;
}

/* Bytes in the largest binary unit that keeps the number at least 1. */
static void print_bytes(double b)
{
	static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
	size_t u = 0;
	for (; b >= 1024 && u + 1 < sizeof(units) / sizeof(units[0]); u++)
		b /= 1024;
	fprintf(stderr, u ? "%.1f %s" : "%.0f %s", b, units[u]);
}

static void draw(const cli_progress *p, int64_t t)
{
	char a[32], b[32];
	double secs = (double)(t - p->start_ms) / 1000.0;
	fprintf(stderr, "\rweft: %s: %s", p->what, grouped(p->done, a));
	if (p->total)
		fprintf(stderr, " of %s", grouped(p->total, b));
	fprintf(stderr, " %s", p->unit);
	if (p->bytes) {
		fputs(", ", stderr);
		print_bytes((double)p->bytes);
	}
	if (secs > 0) {
		fprintf(stderr, ", %s %s/s", grouped((uint64_t)(p->done / secs), a),
			p->unit);
		if (p->bytes) {
			fputs(", ", stderr);
			print_bytes(p->bytes / secs);
			fputs("/s", stderr);
		}
	}
	fputs("\033[K", stderr);
	fflush(stderr);
}

void cli_progress_update(cli_progress *p, uint64_t done, uint64_t total,
			 uint64_t bytes)
{
	p->done = done;
	p->total = total;
	p->bytes = bytes;
	if (!p->on)
		return;
	int64_t t = weft_mono_ms();
	if (t < p->show_ms || (p->drawn && t - p->drawn_ms < PROGRESS_REDRAW_MS))
		return;
	draw(p, t);
	shown = p;
	p->drawn = true;
	p->drawn_ms = t;
}

void cli_progress_fn(void *arg, uint64_t done, uint64_t total, uint64_t bytes)
{
	cli_progress_update(arg, done, total, bytes);
}

void cli_progress_erase(cli_progress *p)
{
	if (!p)
		p = shown;
	if (!p || !p->drawn)
		return;
	fputs("\r\033[K", stderr);
	fflush(stderr);
	p->drawn = false;
	if (shown == p)
		shown = NULL;
}

void cli_progress_end(cli_progress *p)
{
	cli_progress_erase(p);
	p->on = false;
}

void cli_print_prehash(const weft_prehash *p)
{
	if (!p)
		return;
	weft_prehash_stats s = weft_prehash_get_stats(p);
	fprintf(stderr,
		"weft: while the run ran: %llu files hashed (%.1f MiB), %llu "
		"known already, %llu left to the end (%llu changed or gone, "
		"%llu not reached)\n",
		(unsigned long long)s.hashed, s.bytes / 1048576.0,
		(unsigned long long)s.known,
		(unsigned long long)(s.missed + s.dropped),
		(unsigned long long)s.missed, (unsigned long long)s.dropped);
}
