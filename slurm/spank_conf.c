/*
 * spank_conf.c - modes, plugstack.conf arguments, task names and the
 * LD_PRELOAD value for the SPANK plugin (see spank_conf.h). Everything that
 * comes from plugstack.conf or from the user's --weft is checked here, and a
 * bad value is named with what was expected.
 */
#include <stdio.h>
#include <string.h>

#include "spank_conf.h"

static const char *const mode_names[] = {
	[WSP_MODE_OFF] = "off",         [WSP_MODE_AUTO] = "auto",
	[WSP_MODE_PRELOAD] = "preload", [WSP_MODE_EBPF] = "ebpf",
	[WSP_MODE_PTRACE] = "ptrace",
};

#define N_MODES (int)(sizeof(mode_names) / sizeof(mode_names[0]))

int wsp_mode_parse(const char *s)
{
	if (!s || !*s)
		return WSP_MODE_AUTO;
	if (strcmp(s, "none") == 0)
		return WSP_MODE_OFF;
	for (int m = 0; m < N_MODES; m++)
		if (strcmp(s, mode_names[m]) == 0)
			return m;
	return -1;
}

const char *wsp_mode_name(int mode)
{
	return mode >= 0 && mode < N_MODES ? mode_names[mode] : "unset";
}

static int copy_value(char *out, size_t outsz, const char *v)
{
	size_t n = strlen(v);
	if (n == 0 || n >= outsz)
		return -1;
	memcpy(out, v, n + 1);
	return 0;
}

void wsp_conf_init(struct wsp_conf *c, const char *preload_default,
		   const char *agent_default)
{
	memset(c, 0, sizeof(*c));
	c->default_mode = WSP_MODE_UNSET;
	if (preload_default)
		copy_value(c->preload, sizeof(c->preload), preload_default);
	if (agent_default)
		copy_value(c->agent, sizeof(c->agent), agent_default);
	c->ship_timeout_s = -1;
}

void wsp_conf_weft(struct wsp_conf *c, const char *weft_default)
{
	if (weft_default)
		copy_value(c->weft, sizeof(c->weft), weft_default);
}

static int path_arg(char *out, size_t outsz, const char *key, const char *v,
		    char *err, size_t errsz)
{
	if (v[0] != '/' || copy_value(out, outsz, v) != 0) {
		snprintf(err, errsz,
			 "%s=%.200s: expected an absolute path of at most %zu "
			 "bytes",
			 key, v, outsz - 1);
		return -1;
	}
	return 0;
}

int wsp_conf_arg(struct wsp_conf *c, const char *arg, char *err, size_t errsz)
{
	const char *eq = strchr(arg, '=');
	if (!eq) {
		snprintf(err, errsz,
			 "argument '%.200s': expected key=value (default=, "
			 "preload=, weft=, agent=, coordinator=, spool=, "
			 "ship_timeout=)",
			 arg);
		return -1;
	}
	size_t klen = (size_t)(eq - arg);
	const char *v = eq + 1;
#define KEY(k) (klen == strlen(k) && strncmp(arg, k, klen) == 0)
	if (KEY("default")) {
		int m = wsp_mode_parse(*v ? v : "?");
		if (m < 0) {
			snprintf(err, errsz,
				 "default=%.64s: expected off, auto, preload, "
				 "ebpf or ptrace",
				 v);
			return -1;
		}
		c->default_mode = m;
		return 0;
	}
	if (KEY("preload"))
		return path_arg(c->preload, sizeof(c->preload), "preload", v,
				err, errsz);
	if (KEY("agent"))
		return path_arg(c->agent, sizeof(c->agent), "agent", v, err,
				errsz);
	if (KEY("weft"))
		return path_arg(c->weft, sizeof(c->weft), "weft", v, err,
				errsz);
	if (KEY("ship_timeout")) {
		int n = 0;
		const char *d = v;
		for (; *d >= '0' && *d <= '9' && n <= WSP_MAX_SHIP_TIMEOUT_S;
		     d++)
			n = n * 10 + (*d - '0');
		if (d == v || *d || n > WSP_MAX_SHIP_TIMEOUT_S) {
			snprintf(err, errsz,
				 "ship_timeout=%.64s: expected whole seconds "
				 "from 0 to %d",
				 v, WSP_MAX_SHIP_TIMEOUT_S);
			return -1;
		}
		c->ship_timeout_s = n;
		return 0;
	}
	if (KEY("spool"))
		return path_arg(c->spool, sizeof(c->spool), "spool", v, err,
				errsz);
	if (KEY("coordinator")) {
		if (!strstr(v, "://") ||
		    copy_value(c->coordinator, sizeof(c->coordinator), v) !=
			    0) {
			snprintf(err, errsz,
				 "coordinator=%.200s: expected an nng URL such "
				 "as tcp://HOST:PORT",
				 v);
			return -1;
		}
		return 0;
	}
#undef KEY
	snprintf(err, errsz,
		 "unknown argument '%.*s' (expected default=, preload=, "
		 "weft=, agent=, coordinator=, spool=, ship_timeout=)",
		 (int)(klen > 64 ? 64 : klen), arg);
	return -1;
}

int wsp_mode_effective(int user_mode, int default_mode)
{
	if (user_mode != WSP_MODE_UNSET)
		return user_mode;
	if (default_mode != WSP_MODE_UNSET)
		return default_mode;
	return WSP_MODE_OFF;
}

int wsp_task_name(char *out, size_t outsz, uint32_t job, uint32_t step,
		  uint32_t task, const char *node)
{
	char stepbuf[16];
	const char *s = stepbuf;
	switch (step) {
	case WSP_STEP_BATCH:
		s = "batch";
		break;
	case WSP_STEP_EXTERN:
		s = "extern";
		break;
	case WSP_STEP_INTERACTIVE:
		s = "interactive";
		break;
	case WSP_STEP_PENDING:
		s = "pending";
		break;
	default:
		snprintf(stepbuf, sizeof(stepbuf), "%u", (unsigned)step);
	}
	if (!node || !*node)
		return -1;
	int n = snprintf(out, outsz, "%u.%s.%u@%s", (unsigned)job, s,
			 (unsigned)task, node);
	return n > 0 && (size_t)n < outsz && wsp_task_check(out) == 0 ? 0 : -1;
}

int wsp_task_check(const char *name)
{
	size_t n = strlen(name);
	if (n == 0 || n > WSP_MAX_TASK_BYTES)
		return -1;
	for (; *name; name++)
		if ((unsigned char)*name <= ' ' || (unsigned char)*name >= 0x7f)
			return -1;
	return 0;
}

/* Whether the space- or colon-separated list holds item. */
static int list_has(const char *list, const char *item)
{
	size_t n = strlen(item);
	for (const char *p = list; *p;) {
		size_t k = strcspn(p, " :");
		if (k == n && strncmp(p, item, n) == 0)
			return 1;
		p += k;
		p += strspn(p, " :");
	}
	return 0;
}

int wsp_preload_value(char *out, size_t outsz, const char *lib,
		      const char *existing)
{
	if (!lib || !*lib || strpbrk(lib, " :"))
		return -1;
	int n;
	if (!existing || !*existing || list_has(existing, lib))
		n = existing && *existing ? snprintf(out, outsz, "%s", existing)
					  : snprintf(out, outsz, "%s", lib);
	else
		n = snprintf(out, outsz, "%s:%s", lib, existing);
	return n > 0 && (size_t)n < outsz ? 0 : -1;
}

int wsp_argv_is_weft(int argc, char *const argv[])
{
	if (argc < 1 || !argv || !argv[0])
		return 0;
	const char *base = strrchr(argv[0], '/');
	base = base ? base + 1 : argv[0];
	return strcmp(base, "weft") == 0;
}
