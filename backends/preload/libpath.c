/*
 * libpath.c - finding libweft_preload.so: an explicit override, then next
 * to the weft executable (the build tree puts both in the build
 * directory), then the install layout (bin/weft and the libdir this
 * build installs to, lib/weft/ by default), then the install directory
 * compiled in.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "preload_internal.h"

#ifndef WEFT_PRELOAD_INSTALL_DIR
#define WEFT_PRELOAD_INSTALL_DIR "/usr/local/lib/weft"
#endif
/* The install's library directory seen from its bin/ (GNUInstallDirs:
 * ../lib/weft, or ../lib/x86_64-linux-gnu/weft for /usr on Debian). */
#ifndef WEFT_PRELOAD_REL_DIR
#define WEFT_PRELOAD_REL_DIR "../lib/weft"
#endif

static bool usable(const char *path)
{
	return access(path, R_OK) == 0;
}

int pl_library_path(char *out, size_t outsz)
{
	const char *env = getenv(PL_LIBRARY_ENV);
	if (env && *env) {
		if (env[0] == '/' && usable(env)) {
			snprintf(out, outsz, "%s", env);
			return 0;
		}
		snprintf(out, outsz, "%s=%s: not an absolute path to a "
				     "readable file",
			 PL_LIBRARY_ENV, env);
		return -1;
	}
	char exe[PATH_MAX], cand[PATH_MAX + 64];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n > 0) {
		exe[n] = '\0';
		char *slash = strrchr(exe, '/');
		if (slash)
			*slash = '\0';
		snprintf(cand, sizeof(cand), "%s/%s", exe, PL_LIBRARY_NAME);
		if (usable(cand)) {
			snprintf(out, outsz, "%s", cand);
			return 0;
		}
		snprintf(cand, sizeof(cand), "%s/" WEFT_PRELOAD_REL_DIR "/%s",
			 exe, PL_LIBRARY_NAME);
		char real[PATH_MAX];
		if (usable(cand) && realpath(cand, real)) {
			snprintf(out, outsz, "%s", real);
			return 0;
		}
	}
	snprintf(cand, sizeof(cand), "%s/%s", WEFT_PRELOAD_INSTALL_DIR,
		 PL_LIBRARY_NAME);
	if (usable(cand)) {
		snprintf(out, outsz, "%s", cand);
		return 0;
	}
	snprintf(out, outsz,
		 "%s not found next to the weft executable (%s), "
		 "in " WEFT_PRELOAD_REL_DIR "/ from it, nor in %s; set %s",
		 PL_LIBRARY_NAME, n > 0 ? exe : "?", WEFT_PRELOAD_INSTALL_DIR,
		 PL_LIBRARY_ENV);
	return -1;
}
