/*
 * launch.c - the steps every backend's launch of a workload takes the
 * same way: the forked child's wait for the go byte and its execve with
 * the failure reported back, and the root process given to the
 * classifier (launch_internal.h).
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "launch_internal.h"

void weft_child_unblock_signals(void)
{
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
}

void weft_child_wait_go(int fd)
{
	char c;
	if (read(fd, &c, 1) != 1)
		_exit(126);
}

_Noreturn void weft_child_exec(char *const argv[], char *const envp[],
			       int failfd)
{
	execve(argv[0], argv, envp);
	struct weft_exec_failure f = {errno, 0};
	if (write(failfd, &f, sizeof(f)) < 0)
		_exit(127);
	_exit(f.err == ENOENT ? 127 : 126);
}

bool weft_launch_failed(weft_launch *l, weft_report *w, const char *backend,
			const char *before_exec, int failfd)
{
	struct weft_exec_failure f;
	if (read(failfd, &f, sizeof(f)) != (ssize_t)sizeof(f))
		return false;
	l->exit_code = f.stage == 0 && f.err == ENOENT ? 127 : 126;
	weft_report_warn(w, "%s: cannot %s %s: %s", backend,
			 f.stage == 0 ? "execute" : before_exec, l->argv[0],
			 strerror(f.err));
	errno = f.err;
	return true;
}

void weft_launch_add_root(weft_launch *l, pid_t pid, const char *cwd,
			  const char *exe)
{
	uint32_t argc = 0;
	while (l->argv[argc] && argc < WEFT_MAX_ARGC)
		argc++;
	char abs[PATH_MAX];
	if (!exe) {
		exe = l->argv[0];
		if (exe[0] != '/' && realpath(exe, abs))
			exe = abs;
	}
	weft_classifier_add_process(l->classifier, pid, 0, cwd, exe,
				    (const char *const *)l->argv, argc);
}
