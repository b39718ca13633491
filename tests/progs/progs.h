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
