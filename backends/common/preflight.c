/*
 * preflight.c - building preflight results: named checks that fold into one
 * verdict, and warnings. Each backend's own checks live in its folder.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <weft/backends.h>

void weft_preflight_begin(weft_preflight *p, const char *backend,
			  const char *command)
{
	memset(p, 0, sizeof(*p));
	snprintf(p->backend, sizeof(p->backend), "%s", backend);
	if (command)
		snprintf(p->command_checked, sizeof(p->command_checked), "%s",
			 command);
	p->ok = true; /* until a check fails */
}

void weft_preflight_check(weft_preflight *p, const char *name, bool ok,
			  const char *fmt, ...)
{
	if (p->nchecks >= WEFT_PREFLIGHT_MAX_CHECKS) {
		p->ok = false;
		return;
	}
	weft_check *c = &p->checks[p->nchecks++];
	snprintf(c->name, sizeof(c->name), "%s", name);
	c->ok = ok;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c->detail, sizeof(c->detail), fmt, ap);
	va_end(ap);
	if (!ok)
		p->ok = false;
}

void weft_preflight_warn(weft_preflight *p, const char *fmt, ...)
{
	if (p->nwarnings >= sizeof(p->warnings) / sizeof(p->warnings[0]))
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(p->warnings[p->nwarnings++], sizeof(p->warnings[0]), fmt, ap);
	va_end(ap);
}

void weft_preflight_summarize_failure(weft_preflight *p)
{
	for (size_t i = 0; i < p->nchecks; i++)
		if (!p->checks[i].ok) {
			int n = snprintf(p->summary, sizeof(p->summary),
					 "%s unavailable: %s: %.400s",
					 p->backend, p->checks[i].name,
					 p->checks[i].detail);
			/* A detail cut short says so. */
			if (n >= (int)sizeof(p->summary))
				memcpy(p->summary + sizeof(p->summary) - 4,
				       "...", 4);
			return;
		}
}
