/*
 * trunc_mmap.c PATH CONTENT - O_TRUNC an existing file, write CONTENT, then
 * read it back through a PROT_READ mmap of a second open. The run read only
 * what it wrote itself: weft must record PATH written and NOT read.
 */
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "progs.h"

int main(int argc, char **argv)
{
	usage_if(argc != 3, "trunc_mmap PATH CONTENT");
	size_t len = strlen(argv[2]);
	int fd = open(argv[1], O_WRONLY | O_TRUNC);
	if (fd < 0)
		die("open O_TRUNC");
	write_all(fd, argv[2], len);
	if (close(fd) != 0)
		die("close");

	fd = open(argv[1], O_RDONLY);
	if (fd < 0)
		die("open O_RDONLY");
	struct stat st;
	if (fstat(fd, &st) != 0)
		die("fstat");
	if ((size_t)st.st_size != len || len == 0) {
		fprintf(stderr, "size %lld, expected %zu\n",
			(long long)st.st_size, len);
		return 1;
	}
	void *m = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
	if (m == MAP_FAILED)
		die("mmap");
	int same = memcmp(m, argv[2], len) == 0;
	munmap(m, len);
	close(fd);
	if (!same) {
		fprintf(stderr, "read back differs\n");
		return 1;
	}
	return 0;
}
