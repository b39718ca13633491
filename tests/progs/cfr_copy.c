/*
 * cfr_copy.c IN OUT - copy IN to OUT (created/truncated) with
 * copy_file_range(2) only. weft must record IN read and OUT written.
 * Exits 77 (skip) when the kernel or filesystem refuses copy_file_range.
 */
#include <fcntl.h>

#include "progs.h"

int main(int argc, char **argv)
{
	struct copy_ends c = open_copy_ends(argc, argv, "cfr_copy IN OUT");
	for (;;) {
		ssize_t n =
			copy_file_range(c.in, NULL, c.out, NULL, 1 << 20, 0);
		if (n < 0) {
			if (errno == ENOSYS || errno == EXDEV ||
			    errno == EOPNOTSUPP) {
				fprintf(stderr, "copy_file_range: %s\n",
					strerror(errno));
				return PROG_SKIP;
			}
			die("copy_file_range");
		}
		if (n == 0)
			break;
	}
	close_copy(c.in, c.out);
	return 0;
}
