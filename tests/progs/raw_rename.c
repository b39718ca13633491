/*
 * raw_rename.c TMP FINAL [GONE] - write TMP through write(2), close it,
 * then move it to FINAL with a raw renameat2 syscall (no libc wrapper, so
 * an LD_PRELOAD tracer cannot see it); with GONE, also write GONE and
 * remove it with a raw unlinkat. A tracer must record FINAL as the output
 * (the preload backend finds it by inode) and say what it cannot recover.
 */
#include <fcntl.h>
#include <sys/syscall.h>

#include "progs.h"

static void write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		die(path);
	write_all(fd, text, strlen(text));
	close(fd);
}

int main(int argc, char **argv)
{
	usage_if(argc != 3 && argc != 4, "raw_rename TMP FINAL [GONE]");
	write_file(argv[1], "moved behind the tracer's back\n");
	if (syscall(SYS_renameat2, AT_FDCWD, argv[1], AT_FDCWD, argv[2], 0))
		die("renameat2");
	if (argc == 4) {
		write_file(argv[3], "removed behind the tracer's back\n");
		if (syscall(SYS_unlinkat, AT_FDCWD, argv[3], 0))
			die("unlinkat");
	}
	return 0;
}
