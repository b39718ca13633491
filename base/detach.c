/*
 * detach.c - a forked child that goes on after weft exits (the store's
 * checkpoint, a local run's storing) leaves weft's caller behind.
 */
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <weft/base.h>

/* Close every descriptor above 2 that weft did not open itself: those it
 * inherited from its caller (a pipe whose reader waits for its end),
 * which, unlike weft's own, are not close-on-exec. */
static void close_inherited(void)
{
	DIR *d = opendir("/proc/self/fd");
	if (!d)
		return;
	int self = dirfd(d), fds[256];
	size_t n = 0;
	for (struct dirent *e; (e = readdir(d)) != NULL && n < 256;) {
		int fd = atoi(e->d_name);
		int flags = fd > 2 && fd != self ? fcntl(fd, F_GETFD) : -1;
		if (flags >= 0 && !(flags & FD_CLOEXEC))
			fds[n++] = fd;
	}
	closedir(d);
	for (size_t i = 0; i < n; i++)
		close(fds[i]);
}

void weft_detach(int ready)
{
	/* Its handlers name the workload. */
	static const int caught[] = {SIGHUP,  SIGINT,  SIGQUIT,
				     SIGTERM, SIGPIPE, SIGCHLD};
	sigset_t none;
	sigemptyset(&none);
	for (size_t i = 0; i < sizeof(caught) / sizeof(*caught); i++)
		signal(caught[i], SIG_DFL);
	sigprocmask(SIG_SETMASK, &none, NULL);
	/* A session of its own before weft exits: whoever kills weft's
	 * process group once weft is done (a job's end) leaves it be. */
	setsid();
	close(ready);
	/* Not weft's terminal or pipes: a `weft run | tee` sees its end
	 * when weft exits. */
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	for (int fd = 0; fd < 3 && null >= 0; fd++)
		dup2(null, fd);
	if (null > 2)
		close(null);
	close_inherited();
}
