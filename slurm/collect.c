/*
 * collect.c - the Slurm per-task collector behind `weft task-collect`:
 * record one task that weft did not launch, and ship it as `weft wrap`
 * would. weft_spank.so starts it for every task of `srun --weft`
 * (docs/slurm.md, "How srun --weft tasks are recorded"); nobody else
 * needs to. The tracer is the backend's, through its collect_* entries
 * (weft/backends.h); the recording and shipping are worker-wrap's.
 *
 * The plugin runs it from the task process just before the task execs
 * (slurm_spank_task_init): detached (its own session, not a child of the
 * task), with the task's environment (the env contract, the Slurm
 * identity) and a pipe on FD. The collector
 *   1. reads the env contract and the task identity, binds the control
 *      socket (abstract Unix name NAME), opens a pidfd of PID, and puts
 *      its tracer in place (the backend's collect_open): preload binds the
 *      socket the library reports to (a private directory); ptrace seizes
 *      PID (which allowed it with PR_SET_PTRACER); ebpf registers PID with
 *      the node agent at SOCKET.
 *      Then it writes one line on FD: "ok preload SOCKPATH" (the plugin
 *      puts SOCKPATH in the task's WEFT_PRELOAD_SOCK and the library in
 *      its LD_PRELOAD), "ok ptrace", "ok ebpf", or "error WHY" (the task
 *      runs untraced and the plugin says WHY). Only then does the task
 *      exec;
 *   2. takes the task's records while it runs;
 *   3. learns the task's end from the pidfd (ptrace: as its tracer) and
 *      its exit status from the plugin in slurmstepd
 *      (slurm_spank_task_exit connects to NAME and sends "exit
 *      WAITSTATUS"; ptrace sees it itself; preload falls back to the
 *      library's own exit report, else 0 with a warning, when slurmstepd
 *      says nothing within WAIT_EXIT_MS);
 *   4. hashes, records, signs, spools and ships (weft_wrap_ship_report, as
 *      weft wrap does) and answers "done" on the control connection:
 *      slurmstepd waits for that (bounded) before it ends the step, so a
 *      step's end means its tasks' records are shipped or spooled.
 * It never touches the task's outcome: a failure before the "ok" line
 * only leaves the task untraced; after it, only the record suffers (a
 * warning in it, or a message on the task's stderr).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <weft/backends.h>
#include <weft/base.h>
#include <weft/slurm.h>
#include <weft/store.h>
#include <weft/wrap.h>

extern char **environ;

/* After the task ended, how long to wait for slurmstepd's exit status. */
#define WAIT_EXIT_MS 10000
/* After the task ended, the collector's whole remaining life at most
 * (hashing and shipping included), beyond the ship timeout. */
#define AFTER_END_S 60
#define POLL_MS 100
/* How long the task may take to allow its tracer (PR_SET_PTRACER). */
#define SEIZE_WAIT_MS 3000
/* The answer line: "ok preload SOCKPATH" at most. */
#define READY_BYTES (PATH_MAX + 32)

/* A decimal from 0 to max (a wait status) into *out; 0, or -1. */
static int parse_status(const char *s, long max, long *out)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || *end || end == s || v < 0 || v > max)
		return -1;
	*out = v;
	return 0;
}

/* The answer to the plugin, once: "ok ..." or "error ...". False when
 * the plugin did not take it (it gave up waiting: the task runs
 * untraced). */
static bool ready_say(int *fd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static bool ready_say(int *fd, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if ((size_t)n > sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	line[n++] = '\n';
	bool ok = false;
	if (*fd >= 0) {
		ok = write(*fd, line, (size_t)n) == n;
		close(*fd);
	}
	*fd = -1;
	return ok;
}

/* The control socket: abstract name "NAME" (per network namespace; the
 * task's node). SEQPACKET, so one message is one request. */
static int control_listen(const char *name)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	size_t n = strlen(name);
	memcpy(a.sun_path + 1, name, n);
	int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK,
		       0);
	if (s < 0)
		return -1;
	if (bind(s, (struct sockaddr *)&a,
		 (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n)) !=
		    0 ||
	    listen(s, 4) != 0) {
		int e = errno;
		close(s);
		errno = e;
		return -1;
	}
	return s;
}

/* A connection from slurmstepd (root) or from this user; others are
 * closed. */
static int control_accept(int lsock)
{
	int c = accept4(lsock, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (c < 0)
		return -1;
	struct ucred cr;
	socklen_t len = sizeof(cr);
	if (getsockopt(c, SOL_SOCKET, SO_PEERCRED, &cr, &len) != 0 ||
	    (cr.uid != 0 && cr.uid != getuid())) {
		close(c);
		return -1;
	}
	return c;
}

/* "exit WAITSTATUS" into *code (0..255, 128+signal); 0, or -1. */
static int control_read(int c, int *code)
{
	char msg[64];
	ssize_t n = recv(c, msg, sizeof(msg) - 1, 0);
	if (n <= 0)
		return -1;
	msg[n] = '\0';
	long st;
	if (strncmp(msg, "exit ", 5) != 0 ||
	    parse_status(msg + 5, INT_MAX, &st))
		return -1;
	int s = (int)st;
	*code = WIFEXITED(s)     ? WEXITSTATUS(s)
		: WIFSIGNALED(s) ? 128 + WTERMSIG(s)
				 : (s & 0xff);
	return 0;
}

/* The task's working directory (where its relative paths start). */
static void task_cwd(pid_t pid, char *out, size_t outsz)
{
	char link[64];
	snprintf(link, sizeof(link), "/proc/%d/cwd", (int)pid);
	ssize_t n = readlink(link, out, outsz - 1);
	if (n <= 0 && !getcwd(out, outsz))
		snprintf(out, outsz, "/");
	else if (n > 0)
		out[n] = '\0';
}

/* Step 3: until the task ended and its status is known (or it is not
 * coming). The status, or -1 when only the pidfd told. */
static int collect_until_end(const weft_backend *b, weft_collect *c, int pidfd,
			     int lsock, int *conn, weft_report *report)
{
	int64_t ended_at = -1;
	int code = -1;
	for (;;) {
		struct pollfd p[4] = {
			{c && b->collect_fd ? b->collect_fd(c) : -1, POLLIN, 0},
			{pidfd, POLLIN, 0},
			{lsock, POLLIN, 0},
			{*conn, POLLIN, 0},
		};
		int r = poll(p, *conn >= 0 ? 4 : 3, POLL_MS);
		if (r < 0 && errno != EINTR)
			break;
		if (c && b->collect_pump)
			b->collect_pump(c);
		if (p[1].revents && ended_at < 0)
			ended_at = weft_mono_ms();
		/* p[3] is about the connection polled: one accepted below
		 * replaces it and has not been polled yet. */
		int polled = *conn;
		if (p[2].revents & POLLIN) {
			int a = control_accept(lsock);
			if (a >= 0) {
				if (*conn >= 0)
					close(*conn);
				*conn = a;
			}
		}
		if (*conn >= 0 && *conn == polled &&
		    (p[3].revents & (POLLIN | POLLHUP))) {
			if (control_read(*conn, &code) == 0)
				return code; /* slurmstepd reaped it */
			close(*conn);
			*conn = -1;
		}
		if (ended_at >= 0 &&
		    weft_mono_ms() - ended_at >= WAIT_EXIT_MS) {
			if (report)
				weft_report_warn(
					report,
					"the task's exit status did not come "
					"from slurmstepd within %d ms",
					WAIT_EXIT_MS);
			return -1;
		}
	}
	return -1;
}

/* "ebpf, preload or ptrace": the backends that can collect, for the
 * answer to a --tracer that cannot. */
static void collecting_backends(char *out, size_t outsz)
{
	size_t n = 0, len = 0, k = 0;
	for (size_t i = 0; weft_backends[i]; i++)
		n += weft_backends[i]->collect_open != NULL;
	out[0] = '\0';
	for (size_t i = 0; weft_backends[i] && len < outsz; i++) {
		if (!weft_backends[i]->collect_open)
			continue;
		k++;
		int w = snprintf(out + len, outsz - len, "%s%s",
				 k == 1   ? ""
				 : k == n ? " or "
					  : ", ",
				 weft_backends[i]->name);
		if (w < 0)
			break;
		len += (size_t)w;
	}
}

/* Steps 2 and 3 and the record, with the backend in place and the task
 * told: c is closed here. */
static void collect_task(const weft_slurm_collect_opts *o,
			 const weft_backend *b, weft_collect *c,
			 weft_launch *launch, int pidfd, int lsock, int *conn,
			 weft_report *report)
{
	unsigned after_end_s =
		(unsigned)(o->ship_timeout_ms / 1000 + AFTER_END_S);
	/* ptrace follows the task to its end itself and knows its status
	 * as its tracer (before its parent did); eBPF follows it to its
	 * end; preload's records are pumped below while it runs. */
	bool known = b->collect_wait ? b->collect_wait(c) : false;
	int code = -1;
	if (!known)
		/* The status from slurmstepd (the task is not ours to
		 * reap). */
		code = collect_until_end(b, c, pidfd, lsock, conn, report);
	alarm(after_end_s);
	report->ended_ns = weft_real_ns();
	if (known)
		/* slurmstepd's word too, so it waits for the shipping. */
		collect_until_end(b, NULL, pidfd, lsock, conn, NULL);
	/* No word from slurmstepd: what the backend knows of the root's
	 * end, if it does. */
	if (b->collect_end(c, code) < 0)
		weft_report_warn(report, "the task's exit status is "
					 "not known; recorded as 0");
	b->collect_close(c);
	report->exit_code = launch->exit_code;
	report->dropped_events += launch->dropped_events;
}

int weft_slurm_collect(const weft_slurm_collect_opts *o)
{
	/* Not the task's: its signals, its terminal, its pipes' ends. */
	signal(SIGPIPE, SIG_IGN);
	signal(SIGINT, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	signal(SIGTERM, SIG_IGN);
	int ready = o->ready_fd;
	fcntl(ready, F_SETFD, FD_CLOEXEC);

	weft_wrap_env env;
	weft_wrap_identity id;
	char err[1024], host[WEFT_MAX_NAME_BYTES] = "";
	gethostname(host, sizeof(host) - 1);
	const weft_backend *b = weft_backend_find(o->tracer);
	if (!b || !b->collect_open) {
		char names[256];
		collecting_backends(names, sizeof(names));
		ready_say(&ready,
			  "error weft task-collect: tracer %.32s: "
			  "expected %s",
			  o->tracer, names);
		return WEFT_EXIT_USAGE;
	}
	if (b->collect_needs_agent && (!o->agent || o->agent[0] != '/')) {
		ready_say(&ready,
			  "error weft task-collect: --tracer %s needs "
			  "--agent SOCKET",
			  b->name);
		return WEFT_EXIT_USAGE;
	}
	if (weft_wrap_env_read(&env, weft_wrap_getenv, true, err,
			       sizeof(err)) != WEFT_OK) {
		ready_say(&ready, "error %s", err);
		return WEFT_EXIT_USAGE;
	}
	/* The identity from the task's Slurm variables (with the engine's
	 * ids); the plugin's name when they disagree. */
	if (weft_wrap_identity_get(&id, NULL, weft_wrap_getenv, host, err,
				   sizeof(err)) != WEFT_OK ||
	    (o->task && strcmp(id.task, o->task) != 0 &&
	     weft_wrap_identity_get(&id, o->task, weft_wrap_getenv, host, err,
				    sizeof(err)) != WEFT_OK)) {
		ready_say(&ready, "error %s", err);
		return WEFT_EXIT_USAGE;
	}
	const char *node = getenv("SLURMD_NODENAME");
	if (node && *node)
		snprintf(id.node, sizeof(id.node), "%s", node);

	int pidfd = (int)syscall(SYS_pidfd_open, o->pid, 0);
	if (pidfd < 0) {
		ready_say(&ready, "error pidfd_open of task pid %d: %s",
			  (int)o->pid, strerror(errno));
		return WEFT_EXIT_INTERNAL;
	}
	int lsock = control_listen(o->control);
	if (lsock < 0) {
		ready_say(&ready, "error control socket @%s: %s", o->control,
			  strerror(errno));
		close(pidfd);
		return WEFT_EXIT_INTERNAL;
	}
	weft_classifier *cls = weft_classifier_new();
	if (!cls || weft_classifier_ignore_prefix(cls, env.spool) != WEFT_OK) {
		ready_say(&ready, "error out of memory");
		weft_classifier_free(cls);
		return WEFT_EXIT_INTERNAL;
	}
	weft_report report;
	weft_report_init(&report);
	weft_uuid_new(report.run_id);
	snprintf(report.backend, sizeof(report.backend), "%s", b->name);
	snprintf(report.node, sizeof(report.node), "%s", id.node);
	weft_launch launch = {
		.argv = o->argv,
		.envp = environ,
		.verbose = o->verbose,
		.classifier = cls,
		.root_pid = o->pid,
	};
	char cwd[PATH_MAX], answer[READY_BYTES];
	task_cwd(o->pid, cwd, sizeof(cwd));
	weft_collect_opts co = {
		.cwd = cwd,
		.agent_path = o->agent,
		.seize_wait_ms = SEIZE_WAIT_MS,
	};
	weft_collect *c;
	int e = b->collect_open(&launch, &report, &co, &c, answer,
				sizeof(answer), err, sizeof(err));
	if (e != WEFT_OK) {
		ready_say(&ready, "error %s", err);
		weft_classifier_free(cls);
		weft_report_release(&report);
		return WEFT_EXIT_INTERNAL;
	}
	report.started_ns = weft_real_ns();
	int conn = -1;
	if (!ready_say(&ready, "ok %s", answer)) {
		/* The task went on untraced: nothing of it to record (a
		 * seized task is let go as this process exits). */
		b->collect_close(c);
		weft_classifier_free(cls);
		weft_report_release(&report);
		return WEFT_EXIT_INTERNAL;
	}
	collect_task(o, b, c, &launch, pidfd, lsock, &conn, &report);
	e = weft_classifier_finish(cls, &report);
	weft_classifier_free(cls);
	if (e != WEFT_OK)
		weft_report_warn(&report, "recording incomplete: %s",
				 weft_strerror(e));
	/* The node's hash cache: the node's other tasks often read the
	 * same inputs (docs/distributed.md, WEFT_HASH_CACHE). */
	weft_store *cache = NULL;
	weft_wrap_hash_files(&cache, id.task, NULL, &report, o->verbose, NULL,
			     NULL);
	weft_store_close(cache);
	weft_wrap_ship_opts ship = {
		.env = &env,
		.id = &id,
		.ship_timeout_ms = o->ship_timeout_ms,
		.others = false,
		.verbose = o->verbose,
	};
	int rc = weft_wrap_ship_report(&ship, &report);
	weft_report_release(&report);
	if (conn < 0) /* slurmstepd came late: it waits for the answer */
		conn = control_accept(lsock);
	if (conn >= 0) {
		ssize_t w = send(conn, "done", 4, MSG_NOSIGNAL);
		(void)w;
		close(conn);
	}
	close(lsock);
	close(pidfd);
	return rc;
}
