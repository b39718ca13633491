/*
 * fork_many.c N IN OUTDIR - fork N children, at most 32 alive at once;
 * child i reads IN, writes OUTDIR/c<i> and exits with status i % 100.
 * The parent reaps them all. Every child must have a process record
 * (ppid the parent, its exit status) and its output a file record.
 */
#include <fcntl.h>
#include <sys/wait.h>

#include "progs.h"

#define MAX_ALIVE 32

static void child(int i, const char *in, const char *outdir)
{
	char out[4096], buf[256];
	int a = open(in, O_RDONLY);
	if (a < 0)
		die(in);
	ssize_t n = read(a, buf, sizeof(buf));
	close(a);
	snprintf(out, sizeof(out), "%s/c%d", outdir, i);
	int b = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (b < 0 || n < 0)
		die(out);
	write_all(b, buf, (size_t)n);
	close(b);
	_exit(i % 100);
}

int main(int argc, char **argv)
{
	usage_if(argc != 4, "fork_many N IN OUTDIR");
	int n = atoi(argv[1]), alive = 0, bad = 0;
	for (int i = 0; i < n; i++) {
		if (alive == MAX_ALIVE) {
			int st;
			if (wait(&st) < 0)
				die("wait");
			alive--;
		}
		pid_t pid = fork();
		if (pid < 0)
			die("fork");
		if (pid == 0)
			child(i, argv[2], argv[3]);
		alive++;
	}
	while (alive > 0) {
		int st;
		if (wait(&st) < 0)
			die("wait");
		if (!WIFEXITED(st))
			bad++;
		alive--;
	}
	printf("forked %d\n", n);
	return bad ? 1 : 0;
}
