/*
 * splice_copy.c IN OUT - copy IN to OUT (created/truncated) through a pipe
 * with splice(2) only: file -> pipe -> file. weft must record IN read and
 * OUT written, and no record for the pipe.
 */
#include <fcntl.h>

#include "progs.h"

int main(int argc, char **argv)
{
	struct copy_ends c = open_copy_ends(argc, argv, "splice_copy IN OUT");
	int p[2];
	if (pipe(p) != 0)
		die("pipe");
	for (;;) {
		ssize_t n = splice(c.in, NULL, p[1], NULL, 65536, 0);
		if (n < 0)
			die("splice in");
		if (n == 0)
			break;
		while (n > 0) {
			ssize_t m =
				splice(p[0], NULL, c.out, NULL, (size_t)n, 0);
			if (m <= 0)
				die("splice out");
			n -= m;
		}
	}
	close_copy(c.in, c.out);
	return 0;
}
