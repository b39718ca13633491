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
	struct copy_ends c = open_copy_ends(argc, argv, "sendfile_copy IN OUT");
	for (;;) {
		ssize_t n = sendfile(c.out, c.in, NULL, 1 << 20);
		if (n < 0)
			die("sendfile");
		if (n == 0)
			break;
	}
	close_copy(c.in, c.out);
	return 0;
}
