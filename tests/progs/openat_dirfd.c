/*
 * openat_dirfd.c DIR IN OUT - open DIR as a directory fd, chdir("/") so
 * the cwd is no help, then openat(dirfd, IN) and read it, and
 * openat(dirfd, OUT) (created/truncated) and write IN's content. weft must
 * resolve both against DIR: DIR/IN read, DIR/OUT written.
 */
#include <fcntl.h>

#include "progs.h"

int main(int argc, char **argv)
{
	usage_if(argc != 4, "openat_dirfd DIR IN OUT");
	int dfd = open_or_die(argv[1], O_RDONLY | O_DIRECTORY, "open DIR");
	if (chdir("/") != 0)
		die("chdir");
	int in = openat(dfd, argv[2], O_RDONLY);
	if (in < 0)
		die("openat IN");
	int out = openat(dfd, argv[3], O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (out < 0)
		die("openat OUT");
	copy_fd(in, out);
	close(dfd);
	close_copy(in, out);
	return 0;
}
