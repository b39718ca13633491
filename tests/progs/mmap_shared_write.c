/*
 * mmap_shared_write.c PATH CONTENT - overwrite an existing file of
 * CONTENT's length through a PROT_READ|PROT_WRITE, MAP_SHARED mapping only
 * (no write(2), no truncate). weft must record PATH written with CONTENT's
 * hash.
 */
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "progs.h"

int main(int argc, char **argv)
{
	usage_if(argc != 3, "mmap_shared_write PATH CONTENT");
	size_t len = strlen(argv[2]);
	int fd = open_or_die(argv[1], O_RDWR, "open");
	if (fd_size(fd) != len || len == 0) {
		fprintf(stderr, "file must already be %zu bytes\n", len);
		return 2;
	}
	char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED)
		die("mmap");
	close(fd);
	memcpy(m, argv[2], len);
	if (msync(m, len, MS_SYNC) != 0)
		die("msync");
	munmap(m, len);
	return 0;
}
