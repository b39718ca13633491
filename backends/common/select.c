/*
 * select.c - picking a backend in auto order: preflight the registered
 * backends one after the other and name the first that passed, and say
 * why the ones before it were passed over. `weft tracer`, `weft tracer
 * check auto` and every traced run (worker-wrap) pick the same way.
 */
#include <stdio.h>
#include <string.h>

#include <weft/backends.h>

size_t weft_backends_count(void)
{
	size_t n = 0;
	while (weft_backends[n])
		n++;
	return n;
}

int weft_preflight_auto(weft_preflight *results, const char *command,
			int timeout_ms, bool first_only, bool reuse)
{
	int selected = -1;
	for (size_t i = 0; weft_backends[i]; i++) {
		memset(&results[i], 0, sizeof(results[i]));
		if (selected >= 0 && first_only)
			continue;
		if (reuse)
			weft_preflight_reuse(weft_backends[i], &results[i],
					     command, timeout_ms);
		else
			weft_preflight_run(weft_backends[i], &results[i],
					   command, timeout_ms);
		if (results[i].ok && selected < 0)
			selected = (int)i;
	}
	return selected;
}

void weft_preflight_rejected(const weft_preflight *results, int selected,
			     char *buf, size_t bufsz)
{
	buf[0] = '\0';
	size_t end = selected >= 0 ? (size_t)selected : weft_backends_count();
	for (size_t i = 0; i < end; i++) {
		if (!results[i].backend[0] || results[i].ok)
			continue;
		size_t n = strlen(buf);
		snprintf(buf + n, bufsz - n, "%s%s: %s", n ? "; " : "",
			 results[i].backend, results[i].summary);
	}
}
