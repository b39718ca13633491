/*
 * spawn_cat.c IN OUT - posix_spawnp `cat IN` with a file action that opens
 * OUT (created/truncated) as the child's stdout, so the open happens in the
 * child between glibc's clone(CLONE_VM|CLONE_VFORK) and exec. Prints
 * "parent=PID child=PID". weft must record IN read, OUT written, and the
 * child process (argv cat IN) with the parent as ppid.
 */
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>

#include "progs.h"

extern char **environ;

int main(int argc, char **argv)
{
	usage_if(argc != 3, "spawn_cat IN OUT");
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 1, argv[2],
					 O_WRONLY | O_CREAT | O_TRUNC, 0644);
	char *cargv[] = {"cat", argv[1], NULL};
	pid_t child;
	int err = posix_spawnp(&child, "cat", &fa, NULL, cargv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (err != 0) {
		errno = err;
		die("posix_spawnp");
	}
	printf("parent=%d child=%d\n", (int)getpid(), (int)child);
	int status;
	if (waitpid(child, &status, 0) != child)
		die("waitpid");
	return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}
