/*
 * mmap_private_write.c PATH - map a file PROT_READ|PROT_WRITE, MAP_PRIVATE
 * and scribble on the private copy. The file does not change: weft must
 * record PATH read (a PROT_READ file mapping) and NOT written.
 */
#include <fcntl.h>
#include <sys/mman.h>

#include "progs.h"

int main(int argc, char **argv)
{
	usage_if(argc != 2, "mmap_private_write PATH");
	size_t len;
	char *m = map_whole(argv[1], PROT_READ | PROT_WRITE, &len);
	memset(m, 'X', len);
	munmap(m, len);
	return 0;
}
