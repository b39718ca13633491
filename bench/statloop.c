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
#include <sys/resource.h>
#include <sys/stat.h>

int main(int argc, char **argv)
{
	long n = argc > 1 ? strtol(argv[1], NULL, 10) : 1000000;
	const char *path = argc > 2 ? argv[2] : "/";
	if (n <= 0) {
		fprintf(stderr, "usage: statloop [N [FILE]]\n");
		return 2;
	}
	struct timespec a, b;
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
	clock_gettime(CLOCK_MONOTONIC, &b);
	double s = (double)(b.tv_sec - a.tv_sec) +
		   (double)(b.tv_nsec - a.tv_nsec) / 1e9;
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	double cpu = (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
		     (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
	printf("statloop N=%ld seconds=%.3f us_per_iter=%.3f cpu=%.3f\n", n, s,
	       s * 1e6 / (double)n, cpu);
	return sum == 0; /* keeps the calls */
}
