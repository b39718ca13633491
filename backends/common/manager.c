/*
 * manager.c - the tracer manager: preflight isolated in a child process
 * and bounded by a deadline, the traced run with fallback when the active
 * backend stops working mid-run, and the tracer log.
 *
 * A preflight runs in a forked child for two reasons. A check that hangs
 * must fail as a timeout, whatever the backend does, so the deadline is
 * enforced from outside. And a probe run reaps its children with
 * waitpid(-1): inside weft, in the middle of a run that lost its tracer,
 * it would reap the workload's.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <weft/backends.h>
#include <weft/base.h>

/* ---- The tracer log ---- */

static FILE *log_file;
static int log_level;

void weft_log_set(FILE *f, int level)
{
	log_file = f;
	log_level = level;
}

void weft_log(int level, const char *fmt, ...)
{
	if (!log_file || level > log_level)
		return;
	char when[WEFT_RFC3339_BYTES];
	weft_rfc3339(weft_real_ns(), when);
	va_list ap;
	va_start(ap, fmt);
	fprintf(log_file, "%s [%d] ", when, (int)getpid());
	vfprintf(log_file, fmt, ap);
	fputc('\n', log_file);
	fflush(log_file);
	va_end(ap);
}

/* ---- Feeding ---- */

bool weft_launch_feed(weft_launch *l, const char *backend,
		      const weft_event *ev)
{
	if (l->verbose >= 2)
		fprintf(stderr,
			"weft %s: ev kind=%d pid=%d tgid=%d ret=%lld fd=%d "
			"fd2=%d flags=%#x path=%s path2=%s\n",
			backend, ev->kind, ev->pid, ev->tgid, (long long)ev->ret,
			ev->fd, ev->fd2, (unsigned)ev->flags,
			ev->path ? ev->path : "-", ev->path2 ? ev->path2 : "-");
	if (l->observe)
		l->observe(l->observe_arg, l->classifier, ev);
	if (weft_classifier_feed(l->classifier, ev) == 0)
		return true;
	l->dropped_events++;
	return false;
}

/* ---- Preflight in a child, with a deadline ---- */

static void preflight_failed(weft_preflight *p, const weft_backend *b,
			     const char *command, const char *check,
			     const char *why)
{
	weft_preflight_begin(p, b->name, command);
	weft_preflight_check(p, check, false, "%s", why);
	snprintf(p->summary, sizeof(p->summary), "%s", why);
}

static int remove_entry(const char *path, const struct stat *st, int flag,
			struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (flag == FTW_DP)
		rmdir(path);
	else
		unlink(path);
	return 0;
}

/* A scratch directory for one preflight's probes (its TMPDIR), removed
 * whole by the parent afterwards: a probe killed at the deadline cannot
 * clean up after itself. "" when it cannot be made (the probes then use
 * TMPDIR and say so if that fails too). */
static void scratch_make(char *dir, size_t dirsz)
{
	const char *tmp = getenv("TMPDIR");
	snprintf(dir, dirsz, "%s/weft-preflight-XXXXXX",
		 tmp && tmp[0] == '/' ? tmp : "/tmp");
	if (!mkdtemp(dir))
		dir[0] = '\0';
}

static void scratch_remove(const char *dir)
{
	if (dir[0])
		nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

void weft_preflight_run(const weft_backend *b, weft_preflight *p,
			const char *command, int timeout_ms)
{
	int fds[2];
	char scratch[PATH_MAX];
	if (pipe2(fds, O_CLOEXEC) != 0) {
		preflight_failed(p, b, command, "preflight",
				 "cannot create a pipe for the preflight");
		return;
	}
	scratch_make(scratch, sizeof(scratch));
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0) {
		close(fds[0]);
		close(fds[1]);
		scratch_remove(scratch);
		preflight_failed(p, b, command, "preflight",
				 "cannot fork the preflight");
		return;
	}
	if (pid == 0) {
		/* Its own process group, so a timeout ends the probe's
		 * children too; and it dies with weft. */
		setpgid(0, 0);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		close(fds[0]);
		if (scratch[0])
			setenv("TMPDIR", scratch, 1);
		weft_preflight *mine = calloc(1, sizeof(*mine));
		if (!mine)
			_exit(1);
		b->preflight(mine, command, timeout_ms);
		const char *at = (const char *)mine;
		size_t left = sizeof(*mine);
		while (left) {
			ssize_t n = write(fds[1], at, left);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				_exit(1);
			at += n;
			left -= (size_t)n;
		}
		_exit(0);
	}
	close(fds[1]);
	setpgid(pid, pid); /* either side may win the race; both agree */

	int64_t deadline = weft_mono_ms() + (timeout_ms > 0 ? timeout_ms : 0);
	char *at = (char *)p;
	size_t got = 0;
	bool timed_out = false;
	while (got < sizeof(*p)) {
		int64_t left = deadline - weft_mono_ms();
		if (left <= 0) {
			timed_out = true;
			break;
		}
		struct pollfd pfd = {.fd = fds[0], .events = POLLIN};
		int r = poll(&pfd, 1, (int)(left > 1000000 ? 1000000 : left));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			continue;
		ssize_t n = read(fds[0], at + got, sizeof(*p) - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fds[0]);
	if (got < sizeof(*p))
		kill(-pid, SIGKILL);
	int status = 0;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	scratch_remove(scratch);
	if (timed_out) {
		char why[128];
		snprintf(why, sizeof(why),
			 "the preflight did not finish within %d ms "
			 "(tracer.preflight_timeout_ms)",
			 timeout_ms);
		preflight_failed(p, b, command, "timeout", why);
	} else if (got < sizeof(*p)) {
		preflight_failed(p, b, command, "preflight",
				 WIFSIGNALED(status)
					 ? "the preflight crashed"
					 : "the preflight ended without a "
					   "result");
	}
	/* The struct came whole from a child of this very binary; make its
	 * strings terminated all the same. */
	p->backend[sizeof(p->backend) - 1] = '\0';
	p->summary[sizeof(p->summary) - 1] = '\0';
	p->command_checked[sizeof(p->command_checked) - 1] = '\0';
	if (p->nchecks > WEFT_PREFLIGHT_MAX_CHECKS)
		p->nchecks = WEFT_PREFLIGHT_MAX_CHECKS;
	if (p->nwarnings > 8)
		p->nwarnings = 8;
	for (size_t i = 0; i < p->nchecks; i++) {
		p->checks[i].name[sizeof(p->checks[i].name) - 1] = '\0';
		p->checks[i].detail[sizeof(p->checks[i].detail) - 1] = '\0';
	}
	for (size_t i = 0; i < p->nwarnings; i++)
		p->warnings[i][sizeof(p->warnings[i]) - 1] = '\0';
}

/* ---- The run, with fallback ---- */

/* The workload lost its tracer and nobody takes over: wait for its root
 * (our child) untraced, and reap what else of it has ended. */
static void wait_untraced(weft_launch *l)
{
	int status;
	pid_t r;
	while ((r = waitpid(l->root_pid, &status, __WALL)) < 0 &&
	       errno == EINTR)
		;
	if (r == l->root_pid)
		l->exit_code = WIFEXITED(status) ? WEXITSTATUS(status)
						 : 128 + WTERMSIG(status);
	while (waitpid(-1, &status, __WALL | WNOHANG) > 0)
		;
}

/* The next backend after `from` in registry order that can attach and
 * passes its preflight now; NULL when none. */
static const weft_backend *fallback_for(const weft_backend *from,
					int timeout_ms, char *why,
					size_t whysz)
{
	bool after = false;
	why[0] = '\0';
	weft_preflight *p = calloc(1, sizeof(*p));
	if (!p) {
		snprintf(why, whysz, "out of memory");
		return NULL;
	}
	const weft_backend *found = NULL;
	/* A backend outside the registry (tests) is followed by all. */
	after = true;
	for (size_t i = 0; weft_backends[i]; i++)
		after = after && weft_backends[i] != from;
	for (size_t i = 0; weft_backends[i] && !found; i++) {
		const weft_backend *b = weft_backends[i];
		if (b == from) {
			after = true;
			continue;
		}
		if (!after || !b->attach)
			continue;
		weft_preflight_run(b, p, NULL, timeout_ms);
		weft_log(1, "fallback candidate %s: %s: %s", b->name,
			 p->ok ? "ok" : "failed", p->summary);
		if (p->ok) {
			found = b;
		} else {
			size_t n = strlen(why);
			snprintf(why + n, whysz - n, "%s%s: %s", n ? "; " : "",
				 b->name, p->summary);
		}
	}
	free(p);
	if (!found && !why[0])
		snprintf(why, whysz, "no backend after %s can attach to "
				     "running processes",
			 from->name);
	return found;
}

int weft_manager_trace(const weft_backend *b, weft_launch *l,
		       weft_report *r, bool fallback_enabled,
		       int preflight_timeout_ms)
{
	/* Orphans of the workload come back to weft, whichever backend
	 * traces them, and while none does. */
	int old_subreaper = 0;
	prctl(PR_GET_CHILD_SUBREAPER, &old_subreaper, 0, 0, 0);
	prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);

	weft_log(1, "starting %s on %s", b->name, l->argv[0]);
	l->lost = false;
	int err = b->run(l, r);
	const weft_backend *active = b;
	while (err == WEFT_OK && l->lost) {
		char when[40], why[1024];
		weft_rfc3339(l->lost_at_ns, when);
		weft_log(1, "%s lost tracing at %s: %s", active->name, when,
			 l->lost_reason);
		const weft_backend *next = NULL;
		if (fallback_enabled)
			next = fallback_for(active, preflight_timeout_ms, why,
					    sizeof(why));
		if (!next) {
			weft_report_warn(
				r,
				"tracing incomplete: %s stopped tracing at %s "
				"(%s); %s; the workload ran on untraced to its "
				"end, file accesses after that time are "
				"missing",
				active->name, when, l->lost_reason,
				fallback_enabled
					? why
					: "fallback is disabled "
					  "(--no-tracer-fallback, "
					  "tracer.fallback_enabled)");
			wait_untraced(l);
			break;
		}
		int64_t lost_at = l->lost_at_ns;
		char reason[sizeof(l->lost_reason)];
		snprintf(reason, sizeof(reason), "%s", l->lost_reason);
		l->lost = false;
		int64_t attach_at = weft_real_ns();
		weft_log(1, "falling back to %s (attaching to the live tree of "
			    "pid %d)",
			 next->name, (int)l->root_pid);
		err = next->attach(l, r);
		char until[40];
		weft_rfc3339(attach_at, until);
		weft_report_warn(
			r,
			"tracer fallback: %s stopped tracing at %s (%s); %s "
			"attached to the running processes at %s (%.1f ms "
			"later). File accesses in that window may be missing; "
			"files open at the switch were taken from /proc",
			active->name, when, reason, next->name, until,
			(double)(attach_at - lost_at) / 1e6);
		active = next;
		if (err != WEFT_OK) {
			weft_report_warn(r, "tracing incomplete: %s could not "
					    "attach (%s)",
					 next->name, weft_strerror(err));
			wait_untraced(l);
			err = WEFT_OK;
		}
	}
	if (err == WEFT_OK) {
		/* A root that ended untraced (in a fallback's window) is
		 * still ours to reap, with its status. */
		int status;
		pid_t w = waitpid(l->root_pid, &status, __WALL | WNOHANG);
		if (w == l->root_pid)
			l->exit_code = WIFEXITED(status)
					       ? WEXITSTATUS(status)
					       : 128 + WTERMSIG(status);
	}
	weft_log(1, "%s stopped; workload exit %d, %llu dropped events",
		 active->name, l->exit_code,
		 (unsigned long long)l->dropped_events);
	prctl(PR_SET_CHILD_SUBREAPER, old_subreaper, 0, 0, 0);
	return err;
}
