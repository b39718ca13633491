/*
 * sendfile_copy.c IN OUT - copy IN to OUT (created/truncated) with
 * sendfile(2) only: no read or write of file data in user space. weft must
 * record IN read and OUT written.
 */
#include <fcntl.h>
#include <sys/sendfile.h>

#include "progs.h"

int main(int argc, char **argv)
{
	usage_if(argc != 3, "sendfile_copy IN OUT");
	int in = open_or_die(argv[1], O_RDONLY, "open IN");
	int out =
		open_or_die(argv[2], O_WRONLY | O_CREAT | O_TRUNC, "open OUT");
	for (;;) {
		ssize_t n = sendfile(out, in, NULL, 1 << 20);
		if (n < 0)
			die("sendfile");
		if (n == 0)
			break;
	}
	close_copy(in, out);
	return 0;
}
