/*
 * mmap_private_write.c PATH - map a file PROT_READ|PROT_WRITE, MAP_PRIVATE
 * and scribble on the private copy. The file does not change: weft must
 * record PATH read (a PROT_READ file mapping) and NOT written.
 */
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "progs.h"

int main(int argc, char **argv)
{
	usage_if(argc != 2, "mmap_private_write PATH");
	int fd = open_or_die(argv[1], O_RDONLY, "open");
	size_t len = fd_size(fd);
	if (len == 0) {
		fprintf(stderr, "empty file\n");
		return 2;
	}
	char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	if (m == MAP_FAILED)
		die("mmap");
	close(fd);
	memset(m, 'X', len);
	munmap(m, len);
	return 0;
}
