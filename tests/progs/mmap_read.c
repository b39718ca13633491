/*
 * mmap_read.c PATH - read a file only through a PROT_READ, MAP_PRIVATE
 * mapping (no read(2) at all) and print the sum of its bytes. weft must
 * record PATH read.
 */
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "progs.h"

int main(int argc, char **argv)
{
	usage_if(argc != 2, "mmap_read PATH");
	int fd = open_or_die(argv[1], O_RDONLY, "open");
	size_t len = fd_size(fd);
	if (len == 0) {
		fprintf(stderr, "empty file\n");
		return 1;
	}
	const unsigned char *m = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
	if (m == MAP_FAILED)
		die("mmap");
	close(fd); /* the mapping outlives the fd */
	unsigned long sum = 0;
	for (size_t i = 0; i < len; i++)
		sum += m[i];
	munmap((void *)m, len);
	printf("sum=%lu\n", sum);
	return 0;
}
