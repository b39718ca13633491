/*
 * thread_io.c IN OUT - a second thread opens IN and OUT; the main thread,
 * after joining it, reads IN and writes a copy to OUT. Threads share one fd
 * table: weft must record IN read and OUT written (with IN's content), and
 * list one process, not one per thread.
 */
#include <fcntl.h>
#include <pthread.h>

#include "progs.h"

static const char *in_path, *out_path;
static int in_fd = -1, out_fd = -1;

static void *opener(void *arg)
{
	(void)arg;
	in_fd = open(in_path, O_RDONLY);
	out_fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	return NULL;
}

int main(int argc, char **argv)
{
	usage_if(argc != 3, "thread_io IN OUT");
	in_path = argv[1];
	out_path = argv[2];
	pthread_t t;
	int err = pthread_create(&t, NULL, opener, NULL);
	if (err != 0) {
		errno = err;
		die("pthread_create");
	}
	pthread_join(t, NULL);
	if (in_fd < 0 || out_fd < 0)
		die("open in thread");
	char buf[4096];
	for (;;) {
		ssize_t n = read(in_fd, buf, sizeof(buf));
		if (n < 0)
			die("read");
		if (n == 0)
			break;
		write_all(out_fd, buf, (size_t)n);
	}
	close(in_fd);
	if (close(out_fd) != 0)
		die("close");
	return 0;
}
