/*
 * launch.c - the steps every backend's launch of a workload takes the
 * same way: a spawn that runs nothing of weft's in the child, or the
 * forked child's wait for the go byte and its execve with the failure
 * reported back, and the root process given to the classifier
 * (launch_internal.h).
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
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

int weft_launch_spawn(char *const argv[], char *const envp[], pid_t *pid,
		      sigset_t *old)
{
	sigset_t all, none;
	sigfillset(&all);
	sigemptyset(&none);
	posix_spawnattr_t at;
	int e = posix_spawnattr_init(&at);
	if (e)
		return e;
	e = posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK);
	if (!e)
		e = posix_spawnattr_setsigmask(&at, &none);
	if (!e) {
		pthread_sigmask(SIG_BLOCK, &all, old);
		e = posix_spawn(pid, argv[0], NULL, &at, argv, envp);
		if (e)
			pthread_sigmask(SIG_SETMASK, old, NULL);
	}
	posix_spawnattr_destroy(&at);
	return e;
}

void weft_launch_exec_error(weft_launch *l, weft_report *w, const char *backend,
			    int err)
{
	l->exit_code = err == ENOENT ? 127 : 126;
	l->exec_errno = err;
	weft_report_warn(w, "%s: cannot execute %s: %s", backend, l->argv[0],
			 strerror(err));
	errno = err;
}

bool weft_launch_failed(weft_launch *l, weft_report *w, const char *backend,
			const char *before_exec, int failfd)
{
	struct weft_exec_failure f;
	if (read(failfd, &f, sizeof(f)) != (ssize_t)sizeof(f))
		return false;
	if (f.stage == 0) {
		weft_launch_exec_error(l, w, backend, f.err);
		return true;
	}
	l->exit_code = 126;
	weft_report_warn(w, "%s: cannot %s %s: %s", backend, before_exec,
			 l->argv[0], strerror(f.err));
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
