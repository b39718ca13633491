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
	int in = open(argv[2], O_RDONLY);
	if (in < 0)
		die("open IN");
	int out = open(argv[3], O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (out < 0)
		die("open OUT");
	char buf[4096];
	ssize_t n;
	while ((n = read(in, buf, sizeof(buf))) > 0)
		write_all(out, buf, (size_t)n);
	if (n < 0)
		die("read");
	close(in);
	if (close(out) != 0)
		die("close");
	return 0;
}
