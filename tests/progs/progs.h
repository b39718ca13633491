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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

#endif /* WEFT_TEST_PROGS_H */
