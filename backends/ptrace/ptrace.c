/*
 * ptrace.c - the ptrace backend's tracing loop: launch the workload seized
 * (PTRACE_SEIZE, so group-stops can be told from signal stops and left
 * with PTRACE_LISTEN) under the seccomp filter of seccomp.c, follow every
 * fork, vfork, clone and exec, pass every signal on unchanged, and turn
 * stops into events for the classifier (decode.c) until every traced
 * thread has ended.
 *
 * A tracer failure must not kill the workload. Detaching is no way out:
 * with nobody tracing, a SECCOMP_RET_TRACE syscall fails with ENOSYS, so a
 * detached workload would break at its next open. After an internal error
 * the loop instead keeps serving stops without feeding anything (degraded)
 * and says so in the report's warnings.
 */
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "launch_internal.h"
#include "ptrace_internal.h"
#include "preflight_internal.h"
#include <weft/base.h>

#define PT_OPTIONS                                                             \
	(PTRACE_O_TRACESYSGOOD | PTRACE_O_TRACEFORK | PTRACE_O_TRACEVFORK |    \
	 PTRACE_O_TRACECLONE | PTRACE_O_TRACEEXEC | PTRACE_O_TRACESECCOMP |    \
	 PTRACE_O_EXITKILL)

void pt_feed(pt_run *r, weft_event *ev)
{
	if (r->degraded)
		return;
	ev->time_ns = (uint64_t)weft_real_ns();
	if (weft_launch_feed(r->l, "ptrace", ev))
		r->stats.events++;
}

static void degrade(pt_run *r, const char *what, int err)
{
	if (r->degraded)
		return;
	r->degraded = true;
	weft_report_warn(r->warnings,
			 "ptrace: internal error (%s: %s); the workload ran "
			 "on untraced from there, its records are incomplete",
			 what, strerror(err));
}

static void resume(pt_run *r, pid_t tid, int req, int sig)
{
	/* Attached mid-run there is no seccomp filter: every syscall stops
	 * at entry and exit, so the thread must always run to the next. */
	if (r->syscall_mode && req == PTRACE_CONT)
		req = PTRACE_SYSCALL;
	if (ptrace(req, tid, 0, (void *)(uintptr_t)sig) == 0 || errno == ESRCH)
		return; /* ESRCH: killed meanwhile; its exit will be reported */
	degrade(r, "resuming a tracee", errno);
}

static void feed_exit(pt_run *r, pid_t tid, pid_t tgid, int code, bool group)
{
	weft_event ev = {.kind = WEFT_EV_EXIT,
			 .pid = tid,
			 .tgid = tgid,
			 .ret = code,
			 .flags = group ? 1 : 0,
			 .created = WEFT_CREATED_UNKNOWN};
	pt_feed(r, &ev);
}

/* Clone flags the classifier uses (CLONE_PARENT: whose child it is); the
 * rest, and the exit signal in the low byte, are dropped. */
#define PT_CLONE_MASK                                                          \
	(CLONE_THREAD | CLONE_FILES | CLONE_FS | CLONE_VFORK | CLONE_PARENT)

static void feed_fork(pt_run *r, pid_t parent, pid_t ptgid, pid_t child,
		      uint64_t flags)
{
	weft_event ev = {.kind = WEFT_EV_FORK,
			 .pid = parent,
			 .tgid = ptgid,
			 .ret = child,
			 .flags = (int32_t)(flags & PT_CLONE_MASK),
			 .created = WEFT_CREATED_UNKNOWN};
	pt_feed(r, &ev);
}

/* ---- children whose first stop came before their parent's event ---- */

/* The parent's PTRACE_EVENT_FORK is normally next; it can be lost when the
 * parent is SIGKILLed in that stop. Then the child is announced from what
 * /proc says (flags guessed from thread-ness) rather than held forever. */
static void announce_held(pt_run *r, pt_thread *c)
{
	pid_t tgid = pt_read_tgid(c->tid);
	c->tgid = tgid ? tgid : c->tid;
	bool thread = c->tgid != c->tid;
	feed_fork(r, thread ? c->tgid : c->held_ppid,
		  thread ? c->tgid : c->held_ppid, c->tid,
		  thread ? (uint64_t)(CLONE_THREAD | CLONE_FILES | CLONE_FS)
			 : 0);
	c->announced = true;
	r->held--;
	resume(r, c->tid, PTRACE_CONT, 0);
}

static void release_held(pt_run *r, pid_t gone_tgid)
{
	for (size_t i = 0; r->held > 0 && i < r->threads.cap; i++) {
		pt_thread *c = r->threads.slots[i];
		if (c && c->started && !c->announced && !c->dead &&
		    (gone_tgid == 0 || c->held_ppid == gone_tgid ||
		     c->tgid == gone_tgid))
			announce_held(r, c);
	}
}

static pid_t read_ppid(pid_t tid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)tid);
	if (weft_read_small_file(path, buf, sizeof(buf)) <= 0)
		return 0;
	/* "pid (comm) state ppid ...": comm may hold spaces and parens. */
	char *p = strrchr(buf, ')');
	int ppid = 0;
	if (!p || sscanf(p + 1, " %*c %d", &ppid) != 1)
		return 0;
	return ppid;
}

/* ---- stops ---- */

static void on_exit_status(pt_run *r, pid_t tid, int status)
{
	int code = WIFEXITED(status) ? WEXITSTATUS(status)
				     : 128 + WTERMSIG(status);
	if (tid == r->l->root_pid)
		r->l->exit_code = code;
	pt_thread *t = pt_threads_get(&r->threads, tid);
	if (!t) {
		/* A child that died before we saw either its first stop or
		 * its parent's event: keep the verdict for that event. Not
		 * counted as live. */
		if (r->degraded || !(t = pt_threads_add(&r->threads, tid)))
			return;
		t->dead = true;
		t->exit_code = code;
		return;
	}
	if (t->dead)
		return;
	if (!t->announced) {
		t->dead = true;
		t->exit_code = code;
		r->live--;
		if (t->started)
			r->held--;
		return;
	}
	pid_t tgid = t->tgid;
	bool group = tid == tgid;
	feed_exit(r, tid, tgid, code, group);
	if (t->waiting)
		r->waiting--;
	pt_threads_remove(&r->threads, tid);
	r->live--;
	if (group && r->held > 0)
		release_held(r, tgid);
}

static void on_new_child(pt_run *r, pt_thread *parent, int event)
{
	unsigned long msg = 0;
	if (ptrace(PTRACE_GETEVENTMSG, parent->tid, 0, &msg) != 0) {
		if (errno != ESRCH)
			degrade(r, "PTRACE_GETEVENTMSG", errno);
		return;
	}
	pid_t ctid = (pid_t)msg;
	uint64_t flags;
	if (parent->clone_known)
		flags = parent->clone_flags;
	else if (event == PTRACE_EVENT_VFORK)
		flags = CLONE_VFORK | CLONE_VM;
	else if (event == PTRACE_EVENT_CLONE &&
		 pt_read_tgid(ctid) == parent->tgid)
		flags = CLONE_THREAD | CLONE_FILES | CLONE_FS;
	else
		flags = 0;
	parent->clone_known = false;

	pt_thread *c = pt_threads_get(&r->threads, ctid);
	if (c && c->dead && pt_read_tracer(ctid) == getpid()) {
		/* Not this child's early death: a stale record of an earlier
		 * thread with the same tid, and this one is alive. */
		pt_threads_remove(&r->threads, ctid);
		c = NULL;
	}
	bool held = c && c->started && !c->dead;
	if (!c) {
		if (!(c = pt_threads_add(&r->threads, ctid))) {
			degrade(r, "tracking a new thread", ENOMEM);
			return;
		}
		r->live++;
	}
	c->tgid = (flags & CLONE_THREAD) ? parent->tgid : ctid;
	c->announced = true;
	feed_fork(r, parent->tid, parent->tgid, ctid, flags);
	if (c->dead) {
		feed_exit(r, ctid, c->tgid, c->exit_code, ctid == c->tgid);
		pt_threads_remove(&r->threads, ctid);
	} else if (held) {
		r->held--;
		resume(r, ctid, PTRACE_CONT, 0);
	}
}

/* The filter lets syscalls of another ABI (i386, x32) through untraced:
 * say so when such a program runs, rather than report it as doing no I/O.
 * PTRACE_GET_SYSCALL_INFO fills arch at every stop. */
static void warn_other_abi(pt_run *r, pt_thread *t)
{
	struct pt_syscall_info info;
	char exe[PT_PATH_BUF];
	memset(&info, 0, sizeof(info));
	if (r->warned_abi ||
	    ptrace(PTRACE_GET_SYSCALL_INFO, t->tid, (void *)sizeof(info),
		   &info) < 0 ||
	    info.arch == PT_AUDIT_ARCH)
		return;
	r->warned_abi = true;
	if (pt_read_exe(t->tid, exe, sizeof(exe)) != 0)
		snprintf(exe, sizeof(exe), "?");
	weft_report_warn(r->warnings,
			 "ptrace: %s (pid %d) runs with another syscall ABI "
			 "(audit arch %#x); its file accesses are not traced",
			 exe, (int)t->tid, info.arch);
}

static void on_exec(pt_run *r, pt_thread *t)
{
	unsigned long former = 0;
	if (ptrace(PTRACE_GETEVENTMSG, t->tid, 0, &former) == 0 &&
	    (pid_t)former != t->tid) {
		/* A non-leader thread exec'd and took the leader's tid; its
		 * old tid is gone without an exit report of its own. */
		pt_thread *old = pt_threads_get(&r->threads, (pid_t)former);
		if (old && old->announced) {
			feed_exit(r, old->tid, old->tgid, 0, false);
			if (old->waiting)
				r->waiting--;
			pt_threads_remove(&r->threads, old->tid);
			r->live--;
		}
	}
	t->tgid = t->tid;
	t->pending.nr = -1;
	t->clone_known = false;
	warn_other_abi(r, t);

	char exe[PT_PATH_BUF];
	char **argv = NULL, *block = NULL;
	int argc = pt_read_cmdline(t->tid, &argv, &block);
	weft_event ev = {.kind = WEFT_EV_EXEC,
			 .pid = t->tid,
			 .tgid = t->tid,
			 .created = WEFT_CREATED_UNKNOWN};
	if (pt_read_exe(t->tid, exe, sizeof(exe)) == 0)
		ev.path = exe;
	if (argc >= 0) {
		ev.argv = (const char *const *)argv;
		ev.argc = (uint32_t)argc;
	}
	/* Stopped at its exec: the block is this image's, exactly. */
	char *env = NULL;
	ev.env_state =
		(uint8_t)weft_env_read_proc(t->tid, NULL, &env, &ev.env_len);
	ev.env = env;
	pt_feed(r, &ev);
	free(env);
	free(argv);
	free(block);
}

static bool is_stop_signal(int sig)
{
	return sig == SIGSTOP || sig == SIGTSTP || sig == SIGTTIN ||
	       sig == SIGTTOU;
}

static void on_seccomp(pt_run *r, pt_thread *t)
{
	struct pt_syscall_info info;
	memset(&info, 0, sizeof(info));
	long n = ptrace(PTRACE_GET_SYSCALL_INFO, t->tid, (void *)sizeof(info),
			&info);
	if (n < 0 || info.op != PT_SYSCALL_INFO_SECCOMP ||
	    info.arch != PT_AUDIT_ARCH) {
		if (n < 0 && errno == ESRCH)
			return;
		r->stats.info_errors++;
		resume(r, t->tid, PTRACE_CONT, 0);
		return;
	}
	r->stats.seccomp_stops++;
	if (info.seccomp.nr == SYS_wait4 || info.seccomp.nr == SYS_waitid) {
		/* A blocking wait (the filter lets WNOHANG through): its
		 * exit stop says when the task can run again. */
		if (!t->waiting) {
			t->waiting = true;
			r->waiting++;
		}
		resume(r, t->tid, PTRACE_SYSCALL, 0);
		return;
	}
	int how = pt_decode_entry(r, t, &info);
	if (how < 0) {
		degrade(r, "decoding a syscall", ENOMEM);
		how = PT_RESUME_CONT;
	}
	resume(r, t->tid,
	       how == PT_RESUME_SYSCALL ? PTRACE_SYSCALL : PTRACE_CONT, 0);
}

/* An exit stop (after a seccomp stop asked for it, or in syscall mode):
 * complete the pending event. info and n are PTRACE_GET_SYSCALL_INFO's. */
static void on_syscall_exit(pt_run *r, pt_thread *t,
			    const struct pt_syscall_info *info, long n)
{
	if (t->waiting) { /* its wait returned (or was interrupted) */
		t->waiting = false;
		r->waiting--;
	}
	if (n < 0 || info->op != PT_SYSCALL_INFO_EXIT) {
		r->stats.info_errors++;
		if (t->pending.nr >= 0)
			r->l->dropped_events++;
		t->pending.nr = -1;
	} else if (t->pending.nr >= 0) {
		r->stats.exit_stops++;
		pt_decode_exit(r, t, info->exit.rval);
	}
	resume(r, t->tid, PTRACE_CONT, 0);
}

/* A syscall stop. Attached mid-run (syscall mode, no filter) entry stops
 * come too: they are decoded as the filter's stops would be. */
static void on_syscall_stop(pt_run *r, pt_thread *t)
{
	struct pt_syscall_info info;
	memset(&info, 0, sizeof(info));
	long n = ptrace(PTRACE_GET_SYSCALL_INFO, t->tid, (void *)sizeof(info),
			&info);
	if (n < 0 && errno == ESRCH)
		return;
	if (!r->syscall_mode || n < 0 || info.op != PT_SYSCALL_INFO_ENTRY) {
		on_syscall_exit(r, t, &info, n);
		return;
	}
	if (info.arch == PT_AUDIT_ARCH) {
		struct pt_syscall_info as_seccomp = info;
		as_seccomp.op = PT_SYSCALL_INFO_SECCOMP;
		as_seccomp.seccomp.nr = info.entry.nr;
		memcpy(as_seccomp.seccomp.args, info.entry.args,
		       sizeof(info.entry.args));
		r->stats.seccomp_stops++;
		if (pt_decode_entry(r, t, &as_seccomp) < 0)
			degrade(r, "decoding a syscall", ENOMEM);
	}
	resume(r, t->tid, PTRACE_SYSCALL, 0);
}

static void on_stop(pt_run *r, pid_t tid, int status)
{
	int sig = WSTOPSIG(status);
	int event = (int)((unsigned)status >> 16);
	pt_thread *t = pt_threads_get(&r->threads, tid);

	if (t && t->dead) {
		/* The tid of a thread that ended unannounced was reused. */
		pt_threads_remove(&r->threads, tid);
		t = NULL;
	}
	if (!t) {
		/* First stop of a new child whose parent's fork event is still
		 * to come: hold it, so nothing it does is fed before the FORK
		 * that creates it in the classifier. */
		if (r->degraded || !(t = pt_threads_add(&r->threads, tid))) {
			degrade(r, "tracking a new thread", ENOMEM);
			resume(r, tid, PTRACE_CONT, 0);
			return;
		}
		t->started = true;
		t->held_ppid = read_ppid(tid);
		r->live++;
		r->held++;
		return;
	}
	if (!t->started) {
		t->started = true;
		if (event == PTRACE_EVENT_STOP) {
			resume(r, tid, PTRACE_CONT, 0);
			return;
		}
	}
	if (r->degraded) {
		if (event == PTRACE_EVENT_STOP)
			resume(r, tid,
			       is_stop_signal(sig) ? PTRACE_LISTEN
						   : PTRACE_CONT,
			       0);
		else
			resume(r, tid, PTRACE_CONT,
			       event || sig == (SIGTRAP | 0x80) ? 0 : sig);
		return;
	}

	if (sig == (SIGTRAP | 0x80)) {
		on_syscall_stop(r, t);
		return;
	}
	switch (event) {
	case PTRACE_EVENT_SECCOMP:
		on_seccomp(r, t);
		return;
	case PTRACE_EVENT_FORK:
	case PTRACE_EVENT_VFORK:
	case PTRACE_EVENT_CLONE:
		on_new_child(r, t, event);
		resume(r, tid, PTRACE_CONT, 0);
		return;
	case PTRACE_EVENT_EXEC:
		on_exec(r, t);
		resume(r, tid, PTRACE_CONT, 0);
		return;
	case PTRACE_EVENT_STOP:
		/* Group-stop: stay stopped, but keep reporting (SIGCONT). */
		resume(r, tid,
		       is_stop_signal(sig) ? PTRACE_LISTEN : PTRACE_CONT, 0);
		return;
	case 0:
		/* Signal-delivery stop: the signal goes on unchanged. */
		r->stats.signals++;
		resume(r, tid, PTRACE_CONT, sig);
		return;
	default:
		resume(r, tid, PTRACE_CONT, 0);
		return;
	}
}

/* ---- launch ---- */

static bool has_cap_sys_admin(void)
{
	FILE *f = fopen("/proc/self/status", "re");
	char line[256];
	unsigned long long caps = 0;
	if (!f)
		return false;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "CapEff: %llx", &caps) == 1)
			break;
	fclose(f);
	return caps & (1ull << 21); /* CAP_SYS_ADMIN */
}

/* Fork the workload, stopped before execve until it is seized. Returns 0
 * with *pid and *go (write a byte to let it exec) and *failfd (its
 * weft_exec_failure pipe: EOF means execve succeeded; stage 1 is the
 * seccomp filter). */
static int launch(pt_run *r, const pt_filter *f, bool nnp, pid_t *pid_out,
		  int *go_out, int *fail_out)
{
	int sync[2], fail[2];
	if (pipe2(sync, O_CLOEXEC) != 0)
		return WEFT_EIO;
	if (pipe2(fail, O_CLOEXEC) != 0) {
		close(sync[0]);
		close(sync[1]);
		return WEFT_EIO;
	}
	pid_t pid = fork();
	if (pid < 0) {
		int e = errno;
		close(sync[0]);
		close(sync[1]);
		close(fail[0]);
		close(fail[1]);
		errno = e;
		return WEFT_EIO;
	}
	if (pid == 0) {
		/* Child: async-signal-safe calls only (the parent may have
		 * threads). Untraced until the byte arrives, so no tracked
		 * syscall may run before it. */
		weft_child_unblock_signals();
		/* The parent's ends: with sync[1] held here too, a parent
		 * killed before the byte (a preflight's helper at its
		 * deadline) would leave this child waiting forever. */
		close(sync[1]);
		close(fail[0]);
		weft_child_wait_go(sync[0]);
		int e = pt_filter_install(f, nnp);
		if (e == 0)
			weft_child_exec(r->l->argv, r->l->envp, fail[1]);
		struct weft_exec_failure lf = {-e, 1};
		if (write(fail[1], &lf, sizeof(lf)) < 0)
			_exit(127);
		_exit(126);
	}
	close(sync[0]);
	close(fail[1]);
	if (ptrace(PTRACE_SEIZE, pid, 0, (void *)(uintptr_t)PT_OPTIONS) != 0) {
		int e = errno;
		close(sync[1]); /* the child exits without exec */
		close(fail[0]);
		waitpid(pid, NULL, 0);
		errno = e;
		return WEFT_EIO;
	}
	*pid_out = pid;
	*go_out = sync[1];
	*fail_out = fail[0];
	return 0;
}

/* Where the workload runs (WEFT_PTRACE_PIN=auto). Each stop wakes the
 * tracer and then the task: on one CPU two context switches, about 7 us a
 * stop here; across CPUs two wakeups, about 68 us. So the tracer and
 * every task share the tracer's CPU while one task can run. While more
 * can, one CPU costs their parallelism and more cost the wakeups, so the
 * task that stops most decides, by the time between its stops in each
 * PIN_WINDOW_NS less what a stop costs: the work c it does between two.
 * Pinned, c over PIN_UNPIN_NS gives every task its CPUs back; unpinned,
 * c under PIN_PIN_NS pins them again (a task that stops after every
 * 93 us of work or less loses more to wakeups than one CPU takes from
 * the others). So a pipeline whose end stops at every file (tar czf
 * into gzip) stays on one CPU, and tasks that compute get every CPU. A
 * task blocked in a wait for its children competes for nothing: a shell
 * running one command after another (`sh -c 'a && b'`), make waiting for
 * its one job, Python's subprocess.run count as one task. Children
 * inherit the mask of their parent. */
#define PIN_WINDOW_NS (10 * 1000 * 1000)
#define PIN_STOP_NS (7 * 1000)     /* a stop on one CPU */
#define PIN_WAKEUPS_NS (68 * 1000) /* a stop across CPUs */
#define PIN_UNPIN_NS (150 * 1000)
#define PIN_PIN_NS (93 * 1000)

static void pin_set(pt_run *r, bool pin)
{
	if (pin == r->pinned_now)
		return;
	r->pinned_now = pin;
	const cpu_set_t *mask = pin ? &r->pin_mask : &r->free_mask;
	for (size_t i = 0; i < r->threads.cap; i++) {
		pt_thread *t = r->threads.slots[i];
		if (t && !t->dead)
			sched_setaffinity(t->tid, sizeof(*mask), mask);
	}
	sched_setaffinity(0, sizeof(*mask), mask);
}

/* While on: the tracer's wait is interrupted every PIN_WINDOW_NS, so that
 * a window ends even when no task stops (they compute). Periodic: one
 * that fires outside the wait is not the last. */
static void pin_timer(pt_run *r, bool on)
{
	if (!r->has_timer || on == r->timer_on)
		return;
	r->timer_on = on;
	struct timespec w = {0, on ? PIN_WINDOW_NS : 0};
	struct itimerspec it = {.it_interval = w, .it_value = w};
	timer_settime(r->timer, 0, &it, NULL);
}

/* The window timer's signal, for this thread alone: it only ends the
 * tracer's wait (no SA_RESTART). */
#define PIN_TICK_SIGNAL (SIGRTMIN + 1)

static void pin_tick(int sig)
{
	(void)sig;
}

static void tick_start(pt_run *r, struct sigaction *old, sigset_t *old_sigs)
{
	struct sigevent ev = {.sigev_notify = SIGEV_THREAD_ID,
			      .sigev_signo = PIN_TICK_SIGNAL};
	ev._sigev_un._tid = (pid_t)syscall(SYS_gettid);
	struct sigaction sa = {.sa_handler = pin_tick};
	sigemptyset(&sa.sa_mask);
	sigset_t tick;
	sigemptyset(&tick);
	sigaddset(&tick, PIN_TICK_SIGNAL);
	if (sigaction(PIN_TICK_SIGNAL, &sa, old) != 0)
		return;
	pthread_sigmask(SIG_UNBLOCK, &tick, old_sigs);
	if (timer_create(CLOCK_MONOTONIC, &ev, &r->timer) == 0) {
		r->has_timer = true;
		return;
	}
	/* No timer: windows end at stops only. */
	pthread_sigmask(SIG_SETMASK, old_sigs, NULL);
	sigaction(PIN_TICK_SIGNAL, old, NULL);
}

static void tick_stop(pt_run *r, const struct sigaction *old,
		      const sigset_t *old_sigs)
{
	timer_delete(r->timer);
	r->has_timer = r->timer_on = false;
	pthread_sigmask(SIG_SETMASK, old_sigs, NULL);
	sigaction(PIN_TICK_SIGNAL, old, NULL);
}

/* After each event of the workload (t: the task it stopped, or NULL),
 * and when the timer ended a wait. */
static void pin_update(pt_run *r, pt_thread *t)
{
	if (!r->pin_auto)
		return;
	if (r->live <= r->waiting + 1) { /* live - waiting <= 1 */
		pin_timer(r, false);
		r->contended = false;
		pin_set(r, true);
		return;
	}
	int64_t now = weft_mono_ns();
	if (!r->contended) { /* a second task can run: watch the stops */
		r->contended = true;
		r->window++;
		r->window_ns = now;
		r->window_most = 0;
		pin_timer(r, r->pinned_now);
		return;
	}
	if (t) {
		if (t->window != r->window) {
			t->window = r->window;
			t->window_stops = 0;
		}
		if (++t->window_stops > r->window_most)
			r->window_most = t->window_stops;
	}
	int64_t took = now - r->window_ns;
	if (took < PIN_WINDOW_NS)
		return;
	/* The work between two stops of the task that stopped most. */
	int64_t cost = r->pinned_now ? PIN_STOP_NS : PIN_WAKEUPS_NS;
	int64_t work = r->window_most ? took / r->window_most - cost : took;
	pin_set(r, r->pinned_now ? work <= PIN_UNPIN_NS : work < PIN_PIN_NS);
	r->window++;
	r->window_ns = now;
	r->window_most = 0;
	pin_timer(r, r->pinned_now);
}

void pt_loop(pt_run *r)
{
	for (;;) {
		if (!r->degraded && r->live == 0)
			return;
		if (!r->degraded && r->held > 0 && r->held == r->live)
			release_held(r, 0); /* nobody left to announce them */
		int status;
		pid_t pid = waitpid(-1, &status, __WALL);
		if (pid < 0) {
			if (errno == EINTR) {
				/* The window's end, or a signal. */
				pin_update(r, NULL);
				continue;
			}
			if (errno != ECHILD)
				degrade(r, "waitpid", errno);
			return;
		}
		if (WIFSTOPPED(status))
			on_stop(r, pid, status);
		else if (WIFEXITED(status) || WIFSIGNALED(status))
			on_exit_status(r, pid, status);
		/* Which task stopped counts only while several can run. */
		pin_update(r, r->contended ? pt_threads_get(&r->threads, pid)
					   : NULL);
		if (r->degraded && r->held > 0) {
			release_held(r, 0);
			r->held = 0;
		}
	}
}

static void seed_root(pt_run *r, pid_t pid, const char *cwd)
{
	weft_launch_add_root(r->l, pid, cwd, NULL);
	pt_seed_fds(r, pid, false);
}

int pt_trace(weft_launch *l, weft_report *w, const pt_options *o,
	     pt_stats *stats)
{
	pt_filter f;
	char cwd[PATH_MAX];
	int err = pt_filter_build(&f);
	if (err)
		return err;
	if (!getcwd(cwd, sizeof(cwd)))
		return WEFT_EIO;

	pt_run r = {.l = l, .warnings = w};
	if (pt_threads_init(&r.threads) != 0)
		return WEFT_ENOMEM;
	pt_thread *root = NULL;

	/* Orphans of the workload must come back to us, not to init, so
	 * they are reaped here and their exits counted. */
	int old_subreaper = 0;
	prctl(PR_GET_CHILD_SUBREAPER, &old_subreaper, 0, 0, 0);
	prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);

	cpu_set_t old_mask;
	bool pinned = false;
	if (o && o->pin_cpu >= 0 &&
	    sched_getaffinity(0, sizeof(old_mask), &old_mask) == 0) {
		CPU_ZERO(&r.pin_mask);
		CPU_SET(o->pin_cpu, &r.pin_mask);
		pinned = sched_setaffinity(0, sizeof(r.pin_mask),
					   &r.pin_mask) == 0;
		if (!pinned)
			weft_say("cannot run on CPU %d (WEFT_PTRACE_PIN): %s: "
				 "the workload runs unpinned",
				 o->pin_cpu, strerror(errno));
	}

	bool nnp = !has_cap_sys_admin();
	pid_t pid;
	int go, failfd;
	err = launch(&r, &f, nnp, &pid, &go, &failfd);
	if (err)
		goto out;
	if (nnp)
		weft_report_warn(w, "ptrace: running unprivileged with "
				    "no_new_privs: set-user-ID and "
				    "set-group-ID programs run without "
				    "their privileges");
	l->root_pid = pid;
	l->exit_code = 0;
	if (pinned && !o->pin_workload)
		sched_setaffinity(pid, sizeof(old_mask), &old_mask);
	struct sigaction old_tick;
	sigset_t old_sigs;
	if (pinned && o->pin_workload && o->unpin_when_parallel) {
		r.pin_auto = r.pinned_now = true;
		r.free_mask = old_mask;
		tick_start(&r, &old_tick, &old_sigs);
	}
	root = pt_threads_add(&r.threads, pid);
	if (!root) {
		close(go); /* the child exits without exec */
		close(failfd);
		waitpid(pid, NULL, __WALL);
		err = WEFT_ENOMEM;
		goto out;
	}
	root->tgid = pid;
	root->started = root->announced = true;
	r.live = 1;
	seed_root(&r, pid, cwd);
	if (write(go, "g", 1) != 1)
		degrade(&r, "starting the workload", errno);
	close(go);

	pt_loop(&r);

	if (weft_launch_failed(l, w, "ptrace", "install the seccomp filter for",
			       failfd))
		err = WEFT_EIO;
	close(failfd);
	if (l->verbose >= 1)
		fprintf(stderr,
			"weft ptrace: %llu seccomp stops, %llu exit stops, "
			"%llu skipped, %llu events, %llu signals, %llu "
			"info errors\n",
			(unsigned long long)r.stats.seccomp_stops,
			(unsigned long long)r.stats.exit_stops,
			(unsigned long long)r.stats.skipped,
			(unsigned long long)r.stats.events,
			(unsigned long long)r.stats.signals,
			(unsigned long long)r.stats.info_errors);
out:
	if (r.has_timer)
		tick_stop(&r, &old_tick, &old_sigs);
	if (pinned)
		sched_setaffinity(0, sizeof(old_mask), &old_mask);
	prctl(PR_SET_CHILD_SUBREAPER, old_subreaper, 0, 0, 0);
	if (stats)
		*stats = r.stats;
	pt_threads_free(&r.threads);
	return err;
}

/* WEFT_PTRACE_PIN chooses where the tracer and the workload run. Every
 * stop wakes the tracer and then the tracee; across vCPUs each wakeup
 * costs tens of microseconds here, on one CPU it is a context switch.
 * Measured on 1,000,000 open/read/close (bench/openreadclose.c, 2 vCPUs):
 * both pinned to one CPU 16.2 us per iteration; only the tracer pinned
 * 20 us in some runs and 263 us in others (nothing keeps the tracee on the
 * tracer's CPU); unpinned 18..133 us. So:
 *   "auto" (default): the tracer and the workload on the tracer's CPU
 *          while one task of the workload can run (the others, if any,
 *          blocked waiting for their children); both unpinned while more
 *          can (pin_update);
 *   "on":  pinned for the whole run (a CPU-bound parallel workload loses
 *          its parallelism); N: the same on CPU N;
 *   "tracer": only the tracer pinned, the workload free;
 *   "off": no pinning. */
static void options_from_env(pt_options *o, const weft_launch *l)
{
	const char *v = getenv("WEFT_PTRACE_PIN");
	int here = l->has_cpu ? l->cpu : sched_getcpu();
	o->pin_cpu = -1;
	o->pin_workload = false;
	o->unpin_when_parallel = false;
	if (v && strcmp(v, "off") == 0)
		return;
	if (!v || !*v || strcmp(v, "auto") == 0) {
		o->pin_cpu = here;
		o->pin_workload = true;
		o->unpin_when_parallel = true;
		return;
	}
	if (strcmp(v, "tracer") == 0 || strcmp(v, "on") == 0) {
		o->pin_cpu = here;
		o->pin_workload = strcmp(v, "on") == 0;
		return;
	}
	char *end;
	long cpu = strtol(v, &end, 10);
	if (!*end && cpu >= 0 && cpu < CPU_SETSIZE) {
		o->pin_cpu = (int)cpu;
		o->pin_workload = true;
		return;
	}
	weft_say("WEFT_PTRACE_PIN=%s is not auto, on, tracer, off or a CPU "
		 "number: the workload runs unpinned",
		 v);
}

/* The CPU options_from_env will pin the tracer to, chosen now (an
 * explicit one as it is: run says what is wrong with it); -1 for "off"
 * or what options_from_env will refuse. */
static int ptrace_pin_cpu(void)
{
	const char *v = getenv("WEFT_PTRACE_PIN");
	if (!v || !*v || strcmp(v, "auto") == 0 || strcmp(v, "tracer") == 0 ||
	    strcmp(v, "on") == 0)
		return sched_getcpu();
	char *end;
	long cpu = strtol(v, &end, 10);
	return end != v && !*end && cpu >= 0 && cpu < CPU_SETSIZE ? (int)cpu
								  : -1;
}

static int ptrace_run(weft_launch *l, weft_report *warnings_to)
{
	pt_options o;
	options_from_env(&o, l);
	return pt_trace(l, warnings_to, &o, NULL);
}

const weft_backend weft_backend_ptrace = {
	.name = "ptrace",
	.preflight = pt_preflight,
	.check_command = pt_check_command,
	.run = ptrace_run,
	.pin_cpu = ptrace_pin_cpu,
	.attach = pt_attach,
	.collect_open = pt_collect_open,
	.collect_wait = pt_collect_wait,
	.collect_end = pt_collect_end,
	.collect_close = pt_collect_close,
};
