/*
 * orphan.c OUT CONTENT - fork; the parent prints "parent=PID child=PID"
 * and exits at once; the child waits until it has been reparented (its
 * parent is gone), then writes CONTENT to OUT. weft must follow the orphan:
 * OUT recorded written with CONTENT's hash, and weft exits only after it.
 */
#include <fcntl.h>
#include <time.h>

#include "progs.h"

int main(int argc, char **argv)
{
	usage_if(argc != 3, "orphan OUT CONTENT");
	pid_t parent = getpid();
	fflush(stdout);
	pid_t child = fork();
	if (child < 0)
		die("fork");
	if (child > 0) {
		printf("parent=%d child=%d\n", (int)parent, (int)child);
		return 0;
	}
	/* Up to 10 s for the parent to exit. */
	struct timespec nap = {0, 5 * 1000 * 1000};
	for (int i = 0; getppid() == parent; i++) {
		if (i == 2000) {
			fprintf(stderr, "orphan: parent never exited\n");
			_exit(1);
		}
		nanosleep(&nap, NULL);
	}
	int fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		die("open");
	write_all(fd, argv[2], strlen(argv[2]));
	if (close(fd) != 0)
		die("close");
	_exit(0);
}
