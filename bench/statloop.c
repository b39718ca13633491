/*
 * statloop.c - a process busy with syscalls weft does not record: N times
 * stat(2) of one file and getppid(2). bench/overhead runs it untraced and
 * untraced beside a node agent that traces another process, to show what
 * the agent's programs cost a process that does no recorded I/O (with one
 * program per recorded syscall: nothing but the kernel's syscall-tracing
 * entry path).
 *
 * usage: statloop [N [FILE]]   (N defaults to 1000000, FILE to "/").
 * Prints "statloop N=<n> seconds=<s> us_per_iter=<u> cpu=<c>", cpu being
 * this process's user+system CPU time (getrusage).
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>

#include "loop_report.h"

int main(int argc, char **argv)
{
	long n = argc > 1 ? strtol(argv[1], NULL, 10) : 1000000;
	const char *path = argc > 2 ? argv[2] : "/";
	if (n <= 0) {
		fprintf(stderr, "usage: statloop [N [FILE]]\n");
		return 2;
	}
	struct timespec a;
	struct stat st;
	long sum = 0;
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (long i = 0; i < n; i++) {
		if (stat(path, &st) != 0) {
			perror(path);
			return 1;
		}
		sum += getppid();
	}
	loop_report("statloop", n, &a);
	return sum == 0; /* keeps the calls */
}
