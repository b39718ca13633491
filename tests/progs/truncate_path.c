/*
 * truncate_path.c PATH LENGTH - truncate(2) by path, no open: publication
 * without a write. weft must record PATH written (not read).
 */
#include <stdlib.h>

#include "progs.h"

int main(int argc, char **argv)
{
	usage_if(argc != 3, "truncate_path PATH LENGTH");
	if (truncate(argv[1], (off_t)strtoll(argv[2], NULL, 10)) != 0)
		die("truncate");
	return 0;
}
