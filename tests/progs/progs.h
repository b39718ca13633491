/*
 * progs.h - tiny helpers shared by the conformance workloads in tests/progs:
 * fail loudly (message on stderr, exit 1) and move whole buffers through
 * read/write. Every workload is one small program exercising one
 * syscall-level behaviour that weft must record; conformance.py runs it
 * under `weft run` and checks the report.
 */
#ifndef WEFT_TEST_PROGS_H
#define WEFT_TEST_PROGS_H

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* Exit status that conformance.py reads as "skip: not supported here". */
#define PROG_SKIP 77

static inline void die(const char *what)
{
	fprintf(stderr, "%s: %s\n", what, strerror(errno));
	exit(1);
}

static inline void usage_if(int bad, const char *usage)
{
	if (bad) {
		fprintf(stderr, "usage: %s\n", usage);
		exit(2);
	}
}

static inline void write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			die("write");
		}
		p += n;
		len -= (size_t)n;
	}
}

/* Read fd to its end; returns the number of bytes read (content dropped). */
static inline size_t drain(int fd)
{
	char buf[4096];
	size_t total = 0;
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			die("read");
		}
		if (n == 0)
			return total;
		total += (size_t)n;
	}
}

/* open(2) (a file it creates gets mode 0644), or die naming what. */
static inline int open_or_die(const char *path, int flags, const char *what)
{
	int fd = open(path, flags, 0644);
	if (fd < 0)
		die(what);
	return fd;
}

/* The size of an open file. */
static inline size_t fd_size(int fd)
{
	struct stat st;
	if (fstat(fd, &st) != 0)
		die("fstat");
	return (size_t)st.st_size;
}

/* Map the whole of a file that must not be empty (an empty one exits 2:
 * there is nothing to map). The fd is closed: the mapping outlives it. */
static inline void *map_whole(const char *path, int prot, size_t *len)
{
	int fd = open_or_die(path, O_RDONLY, "open");
	*len = fd_size(fd);
	if (*len == 0) {
		fprintf(stderr, "empty file\n");
		exit(2);
	}
	void *m = mmap(NULL, *len, prot, MAP_PRIVATE, fd, 0);
	if (m == MAP_FAILED)
		die("mmap");
	close(fd);
	return m;
}

/* The two ends of a copy IN OUT: IN opened for reading, OUT created or
 * truncated for writing. */
struct copy_ends {
	int in, out;
};

static inline struct copy_ends open_copy_ends(int argc, char **argv,
					      const char *usage)
{
	usage_if(argc != 3, usage);
	struct copy_ends c;
	c.in = open_or_die(argv[1], O_RDONLY, "open IN");
	c.out = open_or_die(argv[2], O_WRONLY | O_CREAT | O_TRUNC, "open OUT");
	return c;
}

/* Copy in to out through read/write until in ends. */
static inline void copy_fd(int in, int out)
{
	char buf[4096];
	ssize_t n;
	while ((n = read(in, buf, sizeof(buf))) > 0)
		write_all(out, buf, (size_t)n);
	if (n < 0)
		die("read");
}

/* Close a copy's source, then its destination, whose close must succeed
 * (a write error may only show there). */
static inline void close_copy(int in, int out)
{
	close(in);
	if (close(out) != 0)
		die("close");
}

#endif /* WEFT_TEST_PROGS_H */
