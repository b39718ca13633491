/*
 * enable.c - one-time machine setup a backend may need (`weft tracer
 * enable MODE`): file capabilities on the weft binary, so that a user who
 * is not root may use the backend, and kernel filesystems mounted where
 * they are absent. Every step says what it changed, or that nothing
 * needed changing, so running it twice is harmless.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>

#include <weft/backends.h>

int weft_enable_file_caps(const char *binary, const char *caps_text,
			  FILE *out)
{
	cap_t want = cap_from_text(caps_text);
	if (!want) {
		fprintf(out, "weft: internal error: bad capability text '%s'\n",
			caps_text);
		return -1;
	}
	struct stat st;
	if (stat(binary, &st) != 0 || !S_ISREG(st.st_mode)) {
		fprintf(out, "weft: cannot set capabilities on %s: %s\n",
			binary, errno ? strerror(errno) : "not a file");
		cap_free(want);
		return -1;
	}
	cap_t have = cap_get_file(binary);
	if (have && cap_compare(have, want) == 0) {
		fprintf(out, "unchanged: %s already has file capabilities "
			     "%s\n",
			binary, caps_text);
		cap_free(have);
		cap_free(want);
		return 0;
	}
	if (have)
		cap_free(have);
	int rc = cap_set_file(binary, want);
	int e = errno;
	cap_free(want);
	if (rc != 0) {
		fprintf(out,
			"weft: cannot set file capabilities %s on %s: %s%s\n",
			caps_text, binary, strerror(e),
			e == EPERM ? " (this needs root, or CAP_SETFCAP; "
				     "run it as root once: sudo weft tracer "
				     "enable ...)"
				   : e == ENOTSUP || e == EOPNOTSUPP
					   ? " (the filesystem does not "
					     "support extended attributes)"
					   : "");
		return -1;
	}
	fprintf(out, "changed: %s now has file capabilities %s\n", binary,
		caps_text);
	return 0;
}

int weft_enable_mount(const char *path, const char *fstype,
		      unsigned long magic, FILE *out)
{
	struct statfs sf;
	if (statfs(path, &sf) == 0 && (unsigned long)sf.f_type == magic) {
		fprintf(out, "unchanged: %s is mounted at %s\n", fstype, path);
		return 0;
	}
	if (mount(fstype, path, fstype, 0, NULL) != 0) {
		int e = errno;
		fprintf(out, "weft: cannot mount %s at %s: %s%s\n", fstype,
			path, strerror(e),
			e == EPERM ? " (this needs root or CAP_SYS_ADMIN)" : "");
		return -1;
	}
	fprintf(out, "changed: mounted %s at %s\n", fstype, path);
	return 0;
}
