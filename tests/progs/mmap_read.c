/*
 * mmap_read.c PATH - read a file only through a PROT_READ, MAP_PRIVATE
 * mapping (no read(2) at all) and print the sum of its bytes. weft must
 * record PATH read.
 */
#include <fcntl.h>
#include <sys/mman.h>

#include "progs.h"

int main(int argc, char **argv)
{
	usage_if(argc != 2, "mmap_read PATH");
	size_t len;
	const unsigned char *m = map_whole(argv[1], PROT_READ, &len);
	unsigned long sum = 0;
	for (size_t i = 0; i < len; i++)
		sum += m[i];
	munmap((void *)m, len);
	printf("sum=%lu\n", sum);
	return 0;
}
