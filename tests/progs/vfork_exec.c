/*
 * vfork_exec.c PROG [ARGS...] - vfork, and in the child execv PROG with
 * ARGS (argv[0] = PROG); the parent waits and exits with the child's
 * status. Prints "parent=PID child=PID" so the test can check the child's
 * process record (ppid, final argv and exe) and its I/O.
 */
#include <sys/wait.h>

#include "progs.h"

int main(int argc, char **argv)
{
	usage_if(argc < 2, "vfork_exec PROG [ARGS...]");
	fflush(stdout);
	pid_t child = vfork();
	if (child < 0)
		die("vfork");
	if (child == 0) {
		execv(argv[1], argv + 1);
		_exit(127);
	}
	printf("parent=%d child=%d\n", (int)getpid(), (int)child);
	int status;
	if (waitpid(child, &status, 0) != child)
		die("waitpid");
	return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}
