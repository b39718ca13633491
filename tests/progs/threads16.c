/*
 * threads16.c DIR - 16 threads at once, each opening DIR/in<i> and
 * copying it to DIR/out<i> 50 times over (open, read, write, close each
 * time): every in<i> must be recorded read and every out<i> written, with
 * one process record. For tracers that keep per-fd state shared by
 * threads (the preload library's slots).
 */
#include <fcntl.h>
#include <pthread.h>

#include "progs.h"

#define NTHREADS 16
#define ROUNDS 50

static const char *dir;

static void *worker(void *arg)
{
	long i = (long)arg;
	char in[4096], out[4096], buf[4096];
	snprintf(in, sizeof(in), "%s/in%ld", dir, i);
	snprintf(out, sizeof(out), "%s/out%ld", dir, i);
	for (int r = 0; r < ROUNDS; r++) {
		int a = open(in, O_RDONLY);
		int b = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (a < 0 || b < 0)
			die("open");
		ssize_t n;
		while ((n = read(a, buf, sizeof(buf))) > 0)
			write_all(b, buf, (size_t)n);
		close(a);
		close(b);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	usage_if(argc != 2, "threads16 DIR");
	dir = argv[1];
	pthread_t t[NTHREADS];
	for (long i = 0; i < NTHREADS; i++)
		if ((errno = pthread_create(&t[i], NULL, worker, (void *)i)))
			die("pthread_create");
	for (int i = 0; i < NTHREADS; i++)
		pthread_join(t[i], NULL);
	return 0;
}
