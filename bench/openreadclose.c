/*
 * openreadclose.c - the tracer overhead workload: N times open, read and
 * close one small file. Each iteration is three tracked syscalls that do
 * almost no work in the kernel, so the time is dominated by what a tracer
 * adds per syscall (stops, wakeups, event handling): the worst case for
 * ptrace, and the loop bench/overhead runs untraced, under weft and under
 * strace to print ratios.
 *
 * usage: openreadclose [N [FILE]]   (N defaults to 1000000; without FILE a
 * 64-byte temporary file is made and removed). Prints one line:
 * "openreadclose N=<n> seconds=<s> us_per_iter=<u> cpu=<c>", where cpu is
 * this process's user+system CPU time (getrusage), in which the kernel-side
 * cost of a tracer's programs is counted even when the machine is busy.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "loop_report.h"

int main(int argc, char **argv)
{
	long n = argc > 1 ? strtol(argv[1], NULL, 10) : 1000000;
	char tmp[] = "/tmp/weft-openreadclose-XXXXXX";
	const char *path = argc > 2 ? argv[2] : NULL;
	if (n <= 0) {
		fprintf(stderr, "usage: openreadclose [N [FILE]]\n");
		return 2;
	}
	if (!path) {
		int fd = mkstemp(tmp);
		char data[64];
		memset(data, 'w', sizeof(data));
		if (fd < 0 || write(fd, data, sizeof(data)) != sizeof(data)) {
			perror("openreadclose: temporary file");
			return 1;
		}
		close(fd);
		path = tmp;
	}
	struct timespec a;
	char buf[256];
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (long i = 0; i < n; i++) {
		int fd = open(path, O_RDONLY);
		if (fd < 0) {
			perror(path);
			return 1;
		}
		if (read(fd, buf, sizeof(buf)) < 0) {
			perror("read");
			return 1;
		}
		close(fd);
	}
	loop_report("openreadclose", n, &a);
	if (path == tmp)
		unlink(tmp);
	return 0;
}
