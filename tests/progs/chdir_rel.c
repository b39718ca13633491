/*
 * chdir_rel.c DIR IN OUT - chdir(DIR), then open IN and OUT by paths
 * relative to the new cwd (IN may use ".."), and copy IN to OUT. weft must
 * resolve both against DIR, the cwd at the time of the open.
 */
#include <fcntl.h>

#include "progs.h"

int main(int argc, char **argv)
{
	usage_if(argc != 4, "chdir_rel DIR IN OUT");
	if (chdir(argv[1]) != 0)
		die("chdir");
	int in = open_or_die(argv[2], O_RDONLY, "open IN");
	int out =
		open_or_die(argv[3], O_WRONLY | O_CREAT | O_TRUNC, "open OUT");
	copy_fd(in, out);
	close_copy(in, out);
	return 0;
}
