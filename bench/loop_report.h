/*
 * loop_report.h - the one line the syscall-loop workloads (openreadclose,
 * statloop) print: bench/overhead parses "NAME N=<n> seconds=<s>
 * us_per_iter=<u> cpu=<c>" from each, so both must print it the same way.
 * cpu is this process's user+system CPU time (getrusage), in which the
 * kernel-side cost of a tracer's programs is counted even on a busy machine.
 */
#ifndef WEFT_BENCH_LOOP_REPORT_H
#define WEFT_BENCH_LOOP_REPORT_H

#include <stdio.h>
#include <time.h>
#include <sys/resource.h>

/* Print the report of n iterations that ran from start until now. */
static inline void loop_report(const char *name, long n,
			       const struct timespec *start)
{
	struct timespec end;
	clock_gettime(CLOCK_MONOTONIC, &end);
	double s = (double)(end.tv_sec - start->tv_sec) +
		   (double)(end.tv_nsec - start->tv_nsec) / 1e9;
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	double cpu = (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
		     (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
	printf("%s N=%ld seconds=%.3f us_per_iter=%.3f cpu=%.3f\n", name, n, s,
	       s * 1e6 / (double)n, cpu);
}

#endif
