/*
 * launch_internal.h - private to backends/: what the backends' launches of
 * a workload share. The child side runs between fork and execve, where
 * only async-signal-safe calls are allowed (weft may have threads); the
 * parent side tells the classifier about the process it started.
 */
#ifndef WEFT_LAUNCH_INTERNAL_H
#define WEFT_LAUNCH_INTERNAL_H

#include <signal.h>
#include <stdbool.h>
#include <sys/types.h>

#include <weft/backends.h>

/* What a child that could not exec writes on its failure pipe for the
 * parent to read (weft_launch_failed). */
struct weft_exec_failure {
	int err;   /* errno */
	int stage; /* 0: execve failed; 1: the backend's step before it */
};

/* In the child: every signal unblocked (it inherits weft's mask). */
void weft_child_unblock_signals(void);
/* In the child: wait for the byte on fd that lets it go on; _exit(126)
 * when fd is closed instead. */
void weft_child_wait_go(int fd);
/* In the child: execve argv with envp. When that fails, its errno goes to
 * failfd as a struct weft_exec_failure and the child exits as a shell
 * would: 127 for a missing program, else 126. */
_Noreturn void weft_child_exec(char *const argv[], char *const envp[],
			       int failfd);

/* Start argv with envp as a child that runs none of weft's code: glibc's
 * posix_spawn, a vfork-like clone, so weft's page tables are not copied
 * and its other threads do not fault on copies of their pages while the
 * child execs (a fork and a wait for a go byte cost a short run up to a
 * millisecond more). The child's signal mask is empty, handlers weft set
 * are default in it (ignored signals stay ignored, as across execve). The
 * calling thread's signals stay blocked on return, *old the mask to
 * restore once the caller knows the pid (a signal weft forwards must find
 * it). 0, or the errno of a failed spawn or execve (then no child and
 * the mask is restored). */
int weft_launch_spawn(char *const argv[], char *const envp[], pid_t *pid,
		      sigset_t *old);
/* The workload could not be executed (err: errno): l->exit_code is what a
 * shell gives (127 for a missing program, else 126), l->exec_errno and
 * errno are err, w warns "BACKEND: cannot execute ARGV0: why". */
void weft_launch_exec_error(weft_launch *l, weft_report *w, const char *backend,
			    int err);

/* After the run, in the parent: true when the child could not exec (a
 * weft_exec_failure came on failfd). Then l->exit_code is what a shell
 * gives (127 for a missing program, else 126), w warns "BACKEND: cannot
 * execute ARGV0: why" (stage 1: "cannot " before_exec " ARGV0: why"),
 * and errno is the child's. */
bool weft_launch_failed(weft_launch *l, weft_report *w, const char *backend,
			const char *before_exec, int failfd);

/* The process a backend launched (or collects), pid, running l->argv in
 * cwd, given to l->classifier before its first event. exe is the
 * program's path as the backend's records will name it, or NULL for
 * argv[0] made absolute when it is relative. */
void weft_launch_add_root(weft_launch *l, pid_t pid, const char *cwd,
			  const char *exe);

#endif /* WEFT_LAUNCH_INTERNAL_H */
