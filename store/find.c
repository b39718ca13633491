/*
 * find.c - locating a project's .weft directory, the way git finds .git:
 * the nearest one at or above the working directory.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <weft/store.h>

int weft_store_find_dir(const char *start_dir, char *out, size_t outsz)
{
	char dir[WEFT_MAX_PATH_BYTES + 1];
	if (start_dir[0] != '/' || strlen(start_dir) >= sizeof(dir))
		return WEFT_EINVAL;
	strcpy(dir, start_dir);
	for (;;) {
		size_t n = strlen(dir);
		while (n > 1 && dir[n - 1] == '/')
			dir[--n] = '\0';
		int len = snprintf(out, outsz, "%s%s" WEFT_DIR_NAME,
				   dir, n == 1 ? "" : "/");
		if (len < 0 || (size_t)len >= outsz)
			return WEFT_ETOOBIG;
		struct stat st;
		if (stat(out, &st) == 0 && S_ISDIR(st.st_mode))
			return WEFT_OK;
		if (n == 1)
			return WEFT_ENOTFOUND;
		char *slash = strrchr(dir, '/');
		if (slash == dir)
			dir[1] = '\0';
		else
			*slash = '\0';
	}
}
