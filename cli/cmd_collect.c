/*
 * cmd_collect.c - `weft task-collect`: record one task that weft did not
 * launch, and ship it as `weft wrap` would. weft_spank.so starts it for
 * every task of `srun --weft` (docs/slurm.md, "How srun --weft tasks are
 * recorded"); nobody else needs to.
 *
 *   weft task-collect --pid PID --ready-fd FD --control NAME
 *                     [--task ID] [--ship-timeout SEC]
 *                     [--tracer preload|ptrace|ebpf] [--agent SOCKET]
 *                     [-v] -- CMD [ARGS...]
 *
 * The plugin runs it from the task process just before the task execs
 * (slurm_spank_task_init): detached (its own session, not a child of the
 * task), with the task's environment (the env contract, the Slurm
 * identity) and a pipe on FD. The collector
 *   1. reads the env contract and the task identity, binds the control
 *      socket (abstract Unix name NAME), opens a pidfd of PID, and puts
 *      its tracer in place: preload binds the socket the library reports
 *      to (a private directory); ptrace seizes PID (which allowed it with
 *      PR_SET_PTRACER); ebpf registers PID with the node agent at SOCKET.
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
 *   4. hashes, records, signs, spools and ships (cli_ship_run, as weft wrap)
 *      and answers "done" on the control connection: slurmstepd waits for
 *      that (bounded) before it ends the step, so a step's end means its
 *      tasks' records are shipped or spooled.
 * It never touches the task's outcome: a failure before the "ok" line
 * only leaves the task untraced; after it, only the record suffers (a
 * warning in it, or a message on the task's stderr).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
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

#include "cli.h"
#include "weft_wrap.h"

/* After the task ended, how long to wait for slurmstepd's exit status. */
#define WAIT_EXIT_MS 10000
/* After the task ended, the collector's whole remaining life at most
 * (hashing and shipping included), beyond the ship timeout. */
#define AFTER_END_S 60
#define POLL_MS 100
/* How long the task may take to allow its tracer (PR_SET_PTRACER). */
#define SEIZE_WAIT_MS 3000

static const char collect_help[] =
	"usage: weft task-collect --pid PID --ready-fd FD --control NAME\n"
	"                         [--task ID] [--ship-timeout SEC]\n"
	"                         [--tracer preload|ptrace|ebpf]\n"
	"                         [--agent SOCKET] [-v] -- CMD [ARGS...]\n\n"
	"Record the task PID (about to exec CMD) and ship it to the job of\n"
	"the env contract, as weft wrap does. weft_spank.so runs this for\n"
	"each task of `srun --weft`; see docs/slurm.md. Not meant to be run\n"
	"by hand.\n";

struct collect_opts {
	pid_t pid;
	int ready_fd;
	const char *control, *task, *tracer, *agent;
	int ship_timeout_ms;
	int verbose;
};

static int parse_pid(const char *s, long max, long *out)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || *end || end == s || v < 0 || v > max)
		return -1;
	*out = v;
	return 0;
}

static int parse_args(int argc, char **argv, struct collect_opts *o)
{
	static const struct option opts[] = {
		{"pid", required_argument, NULL, 'p'},
		{"ready-fd", required_argument, NULL, 'r'},
		{"control", required_argument, NULL, 'c'},
		{"task", required_argument, NULL, 'T'},
		{"ship-timeout", required_argument, NULL, 'S'},
		{"tracer", required_argument, NULL, 't'},
		{"agent", required_argument, NULL, 'a'},
		{"verbose", no_argument, NULL, 'v'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	memset(o, 0, sizeof(*o));
	o->ready_fd = -1;
	o->tracer = "preload";
	o->ship_timeout_ms = WEFT_WRAP_SHIP_TIMEOUT_DEFAULT_MS;
	int c;
	long v;
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "+vh", opts, NULL)) != -1) {
		switch (c) {
		case 'p':
			if (parse_pid(optarg, INT_MAX, &v) != 0 || v < 2)
				return cli_usage_error("task-collect",
						       "--pid '%s': expected a "
						       "process id",
						       optarg);
			o->pid = (pid_t)v;
			break;
		case 'r':
			if (parse_pid(optarg, 65535, &v) != 0 || v < 3)
				return cli_usage_error("task-collect",
						       "--ready-fd '%s': "
						       "expected a file "
						       "descriptor from 3",
						       optarg);
			o->ready_fd = (int)v;
			break;
		case 'c':
			o->control = optarg;
			break;
		case 'T':
			o->task = optarg;
			break;
		case 'S':
			if (cli_seconds_arg("task-collect", "--ship-timeout",
					    optarg, &o->ship_timeout_ms) != 0)
				return WEFT_EXIT_USAGE;
			break;
		case 't':
			o->tracer = optarg;
			break;
		case 'a':
			o->agent = optarg;
			break;
		case 'v':
			o->verbose++;
			break;
		case 'h':
			fputs(collect_help, stdout);
			return -1;
		default:
			return cli_usage_error(
				"task-collect",
				"unknown option or missing value "
				"'%s'",
				argv[optind - 1]);
		}
	}
	if (!o->pid || o->ready_fd < 0 || !o->control)
		return cli_usage_error("task-collect", "--pid, --ready-fd and "
						       "--control are needed");
	if (!*o->control || strlen(o->control) > 100)
		return cli_usage_error("task-collect",
				       "--control '%.64s': expected a name of "
				       "1 to 100 bytes",
				       o->control);
	if (optind >= argc)
		return cli_usage_error("task-collect", "missing the command");
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
	if (strncmp(msg, "exit ", 5) != 0 || parse_pid(msg + 5, INT_MAX, &st))
		return -1;
	int s = (int)st;
	*code = WIFEXITED(s)     ? WEXITSTATUS(s)
		: WIFSIGNALED(s) ? 128 + WTERMSIG(s)
				 : (s & 0xff);
	return 0;
}

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t real_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
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
static int collect_until_end(weft_preload_collect *pc, int pidfd, int lsock,
			     int *conn, weft_report *report)
{
	int64_t ended_at = -1;
	int code = -1;
	for (;;) {
		struct pollfd p[4] = {
			{pc ? weft_preload_collect_fd(pc) : -1, POLLIN, 0},
			{pidfd, POLLIN, 0},
			{lsock, POLLIN, 0},
			{*conn, POLLIN, 0},
		};
		int r = poll(p, *conn >= 0 ? 4 : 3, POLL_MS);
		if (r < 0 && errno != EINTR)
			break;
		if (pc)
			weft_preload_collect_pump(pc);
		if (p[1].revents && ended_at < 0)
			ended_at = mono_ms();
		/* p[3] is about the connection polled: one accepted below
		 * replaces it and has not been polled yet. */
		int polled = *conn;
		if (p[2].revents & POLLIN) {
			int c = control_accept(lsock);
			if (c >= 0) {
				if (*conn >= 0)
					close(*conn);
				*conn = c;
			}
		}
		if (*conn >= 0 && *conn == polled &&
		    (p[3].revents & (POLLIN | POLLHUP))) {
			if (control_read(*conn, &code) == 0)
				return code; /* slurmstepd reaped it */
			close(*conn);
			*conn = -1;
		}
		if (ended_at >= 0 && mono_ms() - ended_at >= WAIT_EXIT_MS) {
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

int cmd_task_collect(int argc, char **argv)
{
	struct collect_opts o;
	int rc = parse_args(argc, argv, &o);
	if (rc)
		return rc < 0 ? 0 : rc;
	/* Not the task's: its signals, its terminal, its pipes' ends. */
	signal(SIGPIPE, SIG_IGN);
	signal(SIGINT, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	signal(SIGTERM, SIG_IGN);
	int ready = o.ready_fd;
	fcntl(ready, F_SETFD, FD_CLOEXEC);

	weft_wrap_env env;
	weft_wrap_identity id;
	char err[1024], host[WEFT_MAX_NAME_BYTES] = "";
	gethostname(host, sizeof(host) - 1);
	bool ptrace_mode = strcmp(o.tracer, "ptrace") == 0;
	bool ebpf_mode = strcmp(o.tracer, "ebpf") == 0;
	if (!ptrace_mode && !ebpf_mode && strcmp(o.tracer, "preload") != 0) {
		ready_say(&ready,
			  "error weft task-collect: tracer %.32s: "
			  "expected preload, ptrace or ebpf",
			  o.tracer);
		return WEFT_EXIT_USAGE;
	}
	if (ebpf_mode && (!o.agent || o.agent[0] != '/')) {
		ready_say(&ready,
			  "error weft task-collect: --tracer ebpf needs "
			  "--agent SOCKET");
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
	    (o.task && strcmp(id.task, o.task) != 0 &&
	     weft_wrap_identity_get(&id, o.task, weft_wrap_getenv, host, err,
				    sizeof(err)) != WEFT_OK)) {
		ready_say(&ready, "error %s", err);
		return WEFT_EXIT_USAGE;
	}
	const char *node = getenv("SLURMD_NODENAME");
	if (node && *node)
		snprintf(id.node, sizeof(id.node), "%s", node);

	int pidfd = (int)syscall(SYS_pidfd_open, o.pid, 0);
	if (pidfd < 0) {
		ready_say(&ready, "error pidfd_open of task pid %d: %s",
			  (int)o.pid, strerror(errno));
		return WEFT_EXIT_INTERNAL;
	}
	int lsock = control_listen(o.control);
	if (lsock < 0) {
		ready_say(&ready, "error control socket @%s: %s", o.control,
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
	snprintf(report.backend, sizeof(report.backend), "%s", o.tracer);
	snprintf(report.node, sizeof(report.node), "%s", id.node);
	weft_launch launch = {
		.argv = argv + optind,
		.envp = environ,
		.verbose = o.verbose,
		.classifier = cls,
		.root_pid = o.pid,
	};
	char cwd[PATH_MAX], sock[PATH_MAX + 16];
	task_cwd(o.pid, cwd, sizeof(cwd));
	weft_preload_collect *pc = NULL;
	weft_ptrace_collect *ptc = NULL;
	weft_ebpf_collect *ebc = NULL;
	int e;
	if (ptrace_mode)
		e = weft_ptrace_collect_open(&launch, &report, SEIZE_WAIT_MS,
					     &ptc, err, sizeof(err));
	else if (ebpf_mode)
		e = weft_ebpf_collect_open(&launch, &report, o.agent, cwd, &ebc,
					   err, sizeof(err));
	else
		e = weft_preload_collect_open(&launch, &report, cwd, sock,
					      sizeof(sock), &pc);
	if (e != WEFT_OK) {
		if (ptrace_mode || ebpf_mode)
			ready_say(&ready, "error %s", err);
		else
			ready_say(&ready, "error preload socket: %s",
				  weft_strerror(e));
		weft_classifier_free(cls);
		weft_report_release(&report);
		return WEFT_EXIT_INTERNAL;
	}
	report.started_ns = real_ns();
	int conn = -1, code;
	bool taken = ptrace_mode ? ready_say(&ready, "ok ptrace")
		     : ebpf_mode ? ready_say(&ready, "ok ebpf")
				 : ready_say(&ready, "ok preload %s", sock);
	if (!taken) {
		/* The task went on untraced: nothing of it to record (a
		 * seized task is let go as this process exits). */
		if (pc)
			weft_preload_collect_close(pc);
		weft_classifier_free(cls);
		weft_report_release(&report);
		return WEFT_EXIT_INTERNAL;
	}
	if (ptrace_mode) {
		/* To the end of the task and of all it started; its status
		 * as its tracer saw it (before its parent did). */
		weft_ptrace_collect_run(ptc);
		alarm((unsigned)(o.ship_timeout_ms / 1000 + AFTER_END_S));
		report.ended_ns = real_ns();
		/* slurmstepd's word too, so it waits for the shipping. */
		collect_until_end(NULL, pidfd, lsock, &conn, NULL);
	} else if (ebpf_mode) {
		weft_ebpf_collect_run(ebc);
		/* The status from slurmstepd (the task is not ours to
		 * reap). */
		code = collect_until_end(NULL, pidfd, lsock, &conn, &report);
		alarm((unsigned)(o.ship_timeout_ms / 1000 + AFTER_END_S));
		report.ended_ns = real_ns();
		launch.exit_code = code < 0 ? 0 : code;
		if (code < 0)
			weft_report_warn(&report, "the task's exit status is "
						  "not known; recorded as 0");
	} else {
		code = collect_until_end(pc, pidfd, lsock, &conn, &report);
		alarm((unsigned)(o.ship_timeout_ms / 1000 + AFTER_END_S));
		report.ended_ns = real_ns();
		/* No word from slurmstepd: what the library said of the
		 * root's end, if it did. */
		if (weft_preload_collect_exit(pc, code) < 0)
			weft_report_warn(&report, "the task's exit status is "
						  "not known; recorded as 0");
		weft_preload_collect_close(pc);
	}
	report.exit_code = launch.exit_code;
	report.dropped_events += launch.dropped_events;
	e = weft_classifier_finish(cls, &report);
	weft_classifier_free(cls);
	if (e != WEFT_OK)
		weft_report_warn(&report, "recording incomplete: %s",
				 weft_strerror(e));
	/* The node's hash cache: the node's other tasks often read the
	 * same inputs (docs/distributed.md, WEFT_HASH_CACHE). */
	weft_store *cache = NULL;
	weft_wrap_hash_files(&cache, id.task, &report, o.verbose);
	weft_store_close(cache);
	weft_wrap_ship_opts ship = {
		.env = &env,
		.id = &id,
		.ship_timeout_ms = o.ship_timeout_ms,
		.others = false,
		.verbose = o.verbose,
	};
	rc = weft_wrap_ship_report(&ship, &report);
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
