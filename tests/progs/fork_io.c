/*
 * fork_io.c IN OUT - fork; the child (no exec) copies IN to OUT and exits
 * 3; the parent waits and exits 0. Prints "parent=PID child=PID" so the
 * test can check the process records (child's ppid = parent, exit 3) and
 * that the child's I/O is recorded.
 */
#include <fcntl.h>
#include <sys/wait.h>

#include "progs.h"

int main(int argc, char **argv)
{
	usage_if(argc != 3, "fork_io IN OUT");
	fflush(stdout);
	pid_t child = fork();
	if (child < 0)
		die("fork");
	if (child == 0) {
		int in = open(argv[1], O_RDONLY);
		int out = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (in < 0 || out < 0)
			die("child open");
		copy_fd(in, out);
		close(in);
		close(out);
		_exit(3);
	}
	printf("parent=%d child=%d\n", (int)getpid(), (int)child);
	int status;
	if (waitpid(child, &status, 0) != child)
		die("waitpid");
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 3) {
		fprintf(stderr, "child status %#x, expected exit 3\n", status);
		return 1;
	}
	return 0;
}
