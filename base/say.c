/*
 * say.c - the one way weft's libraries and its executable talk to the
 * user about weft itself: a line on stderr that starts with "weft: ", so
 * it stands apart from the workload's own output on the same terminal.
 */
#include <stdarg.h>
#include <stdio.h>

#include <weft/base.h>

/* weft_say_before: what the executable does before a line appears. */
static void (*say_before)(void);

void weft_say_before(void (*fn)(void))
{
	say_before = fn;
}

void weft_vsay_to(FILE *out, const char *fmt, va_list ap)
{
	if (!out)
		return;
	if (say_before)
		say_before();
	fputs("weft: ", out);
	vfprintf(out, fmt, ap);
	fputc('\n', out);
}

void weft_say_to(FILE *out, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	weft_vsay_to(out, fmt, ap);
	va_end(ap);
}

void weft_vsay(const char *fmt, va_list ap)
{
	weft_vsay_to(stderr, fmt, ap);
}

void weft_say(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	weft_vsay(fmt, ap);
	va_end(ap);
}
