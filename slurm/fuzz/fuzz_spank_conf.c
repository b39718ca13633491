/*
 * fuzz_spank_conf.c - libFuzzer target for what the SPANK plugin takes from
 * outside: a plugstack.conf argument (wsp_conf_arg), a --weft value
 * (wsp_mode_parse), a node name (wsp_task_name) and a task's LD_PRELOAD
 * (wsp_preload_value). The input is split at its first NUL: the first part
 * is the argument, value, node name and library; the rest the LD_PRELOAD
 * already there. Every call either fails cleanly or leaves NUL-terminated
 * strings within their limits; a built LD_PRELOAD starts with the library
 * or keeps the task's own value unchanged.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "spank_conf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_conf(const char *arg)
{
	struct wsp_conf c;
	char err[512];
	wsp_conf_init(&c, "/b/libweft_preload.so", "/run/weft/agent.sock");
	int rc = wsp_conf_arg(&c, arg, err, sizeof(err));
	FUZZ_CHECK(rc == 0 || (rc == -1 && memchr(err, 0, sizeof(err))));
	FUZZ_CHECK(memchr(c.preload, 0, sizeof(c.preload)) &&
		   c.preload[0] == '/');
	FUZZ_CHECK(memchr(c.agent, 0, sizeof(c.agent)) && c.agent[0] == '/');
	FUZZ_CHECK(memchr(c.spool, 0, sizeof(c.spool)));
	FUZZ_CHECK(!c.spool[0] || c.spool[0] == '/');
	FUZZ_CHECK(memchr(c.coordinator, 0, sizeof(c.coordinator)));
	FUZZ_CHECK(c.default_mode >= WSP_MODE_UNSET &&
		   c.default_mode <= WSP_MODE_PTRACE);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *in = malloc(size + 1);
	if (!in)
		return 0;
	memcpy(in, data, size);
	in[size] = '\0';
	size_t first = strlen(in);
	const char *rest = first < size ? in + first + 1 : NULL;

	check_conf(in);
	int m = wsp_mode_parse(in);
	FUZZ_CHECK(m == -1 || strcmp(wsp_mode_name(m), "unset") != 0);

	char name[WSP_MAX_TASK_BYTES + 1];
	if (wsp_task_name(name, sizeof(name), 4294967295U, 0xfffffffbU, 7,
			  in) == 0)
		FUZZ_CHECK(strlen(name) <= WSP_MAX_TASK_BYTES &&
			   strstr(name, in));

	char val[256];
	if (wsp_preload_value(val, sizeof(val), in, rest) == 0) {
		size_t n = strlen(in);
		FUZZ_CHECK((strncmp(val, in, n) == 0 &&
			    (val[n] == '\0' || val[n] == ':')) ||
			   (rest && strcmp(val, rest) == 0));
	}
	free(in);
	return 0;
}
