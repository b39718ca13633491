/*
 * weft_spank.c - weft's SPANK plugin (weft_spank.so): `srun --weft[=MODE]`
 * and `sbatch --weft[=MODE]` trace every task of a step, with no wrapper in
 * the task's argv (Slurm 22.05 cannot rewrite a task's argv).
 *
 * In the task process, just before its exec (slurm_spank_task_init, as
 * the job's user), the plugin gives the task its identity (WEFT_TASK
 * "job.step.task@node", WEFT_NODE, WEFT_PARENT) and the env contract
 * (WEFT_TRACER, and WEFT_COORDINATOR / WEFT_SPOOL when plugstack.conf
 * names them), then, in a weft job (WEFT_JOB set: under weft submit),
 * starts the task's collector (`weft task-collect`, slurm/collect.c:
 * detached, its own session) and waits, at most WSP_COLLECTOR_TIMEOUT_MS,
 * for its "ok":
 *   preload  the collector binds the socket libweft_preload.so reports to;
 *            the plugin puts the library first in LD_PRELOAD and the
 *            socket in WEFT_PRELOAD_SOCK;
 *   ptrace   the task names the collector its tracer (PR_SET_PTRACER) and
 *            the collector seizes it;
 *   ebpf     the collector registers the task's pid with the node's weft
 *            agent (agent=);
 *   auto     ebpf when the agent is up and takes the task, else preload.
 * In slurmstepd (root), as each task's exit status is collected
 * (slurm_spank_task_exit), the plugin sends it to the task's collector
 * (abstract socket "weft-task/UID/JOB.STEP.TASK"), and once the step's
 * last task on the node ended it waits, bounded, until every collector
 * said it shipped (or spooled) its record: srun returns after that.
 *
 * plugstack.conf:  optional /path/weft_spank.so [default=MODE]
 *   [preload=/path/libweft_preload.so] [weft=/path/weft]
 *   [agent=/run/weft/agent.sock] [coordinator=URL] [spool=DIR]
 *   [ship_timeout=SEC]
 * default=MODE traces every job that does not say --weft=off.
 *
 * A failure inside the plugin never fails the task: every callback returns
 * success and says what went wrong with slurm_error (slurmd's log and the
 * job's stderr), and the task runs untraced. Only a malformed --weft on the
 * srun/sbatch command line is refused, before anything is launched.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <slurm/spank.h>

#include "spank_conf.h"

SPANK_PLUGIN(weft, 1);

#ifndef WEFT_SPANK_PRELOAD_DEFAULT
#define WEFT_SPANK_PRELOAD_DEFAULT "/usr/local/lib/weft/libweft_preload.so"
#endif
#ifndef WEFT_SPANK_AGENT_DEFAULT
#define WEFT_SPANK_AGENT_DEFAULT "/run/weft/agent.sock"
#endif
#ifndef WEFT_SPANK_WEFT_DEFAULT
#define WEFT_SPANK_WEFT_DEFAULT "/usr/local/bin/weft"
#endif

/* How long a task's exec may wait for its collector to be ready, at
 * most. */
#define WSP_COLLECTOR_TIMEOUT_MS 5000
/* How long slurmstepd waits, at the task's end, for its collector to
 * record and ship (beyond the ship timeout), at most. */
#define WSP_COLLECTOR_DONE_MS 30000
/* The collector's answer line. */
#define WSP_READY_BYTES 1024

static struct wsp_conf conf;
static int user_mode = WSP_MODE_UNSET;

static int opt_weft(int val, const char *arg, int remote);

static struct spank_option weft_option = {
	"weft",
	"MODE",
	"trace every task with weft; MODE: auto (default), preload, ebpf, "
	"ptrace, off (see weft's docs/slurm.md)",
	2, /* optional argument */
	0,
	opt_weft,
};

static int opt_weft(int val, const char *arg, int remote)
{
	(void)val;
	int m = wsp_mode_parse(arg);
	if (m < 0) {
		slurm_error("weft: --weft=%s: expected auto, preload, ebpf, "
			    "ptrace or off",
			    arg);
		/* Refused in srun/sbatch; on the node, never fail a task. */
		return remote ? 0 : -1;
	}
	user_mode = m;
	return 0;
}

int slurm_spank_init(spank_t sp, int ac, char **av)
{
	char err[512];
	wsp_conf_init(&conf, WEFT_SPANK_PRELOAD_DEFAULT,
		      WEFT_SPANK_AGENT_DEFAULT);
	wsp_conf_weft(&conf, WEFT_SPANK_WEFT_DEFAULT);
	for (int i = 0; i < ac; i++)
		if (wsp_conf_arg(&conf, av[i], err, sizeof(err)) != 0)
			slurm_error("weft: plugstack.conf: %s (ignored)", err);
	spank_context_t ctx = spank_context();
	if (ctx == S_CTX_LOCAL || ctx == S_CTX_REMOTE ||
	    ctx == S_CTX_ALLOCATOR) {
		spank_err_t rc = spank_option_register(sp, &weft_option);
		if (rc != ESPANK_SUCCESS)
			slurm_error("weft: cannot register --weft: %s",
				    spank_strerror(rc));
	}
	return 0;
}

/* The env contract and the task link, carried as SLURM_WEFT_* too: Slurm
 * hands SLURM_* variables to the job even under --export=NONE, so a job
 * submitted from inside `weft submit` keeps its contract there. */
static const char *const carried[] = {
	"WEFT_COORDINATOR", "WEFT_JOB",    "WEFT_JOB_TOKEN", "WEFT_TRACER",
	"WEFT_SPOOL",       "WEFT_PARENT", "WEFT_TASK",      "WEFT_TLS_CA",
};
#define N_CARRIED (sizeof(carried) / sizeof(carried[0]))
#define CARRY_PREFIX "SLURM_"

/* In srun/sbatch/salloc (their own environment is what they send). */
int slurm_spank_init_post_opt(spank_t sp, int ac, char **av)
{
	(void)sp;
	(void)ac;
	(void)av;
	spank_context_t ctx = spank_context();
	if (ctx != S_CTX_LOCAL && ctx != S_CTX_ALLOCATOR)
		return 0;
	/* The copies mirror this environment exactly: a contract variable
	 * unset here is not revived from an outer job's copy. */
	for (size_t i = 0; i < N_CARRIED; i++) {
		char name[64];
		const char *v = getenv(carried[i]);
		snprintf(name, sizeof(name), CARRY_PREFIX "%s", carried[i]);
		if ((v && *v ? setenv(name, v, 1) : unsetenv(name)) != 0)
			slurm_error("weft: cannot carry %s: %s", carried[i],
				    strerror(errno));
	}
	return 0;
}

/* The task this callback runs for. */
struct wsp_task {
	char name[WSP_MAX_TASK_BYTES + 1];
	char node[WSP_MAX_NODE_BYTES + 1];
	uint32_t job, step, task;
	int argc;
	char **argv;
};

/* var from the task's environment into buf; 0, or -1 when unset (or too
 * long, which is logged). */
static int task_getenv(spank_t sp, const char *var, char *buf, int len)
{
	spank_err_t rc = spank_getenv(sp, var, buf, len);
	if (rc == ESPANK_SUCCESS)
		return 0;
	if (rc != ESPANK_ENV_NOEXIST)
		slurm_error("weft: reading %s: %s", var, spank_strerror(rc));
	return -1;
}

static int task_get(spank_t sp, struct wsp_task *t)
{
	uint32_t job = 0, step = 0, task = 0, nodeid = 0;
	spank_err_t rc;
	memset(t, 0, sizeof(*t));
	if ((rc = spank_get_item(sp, S_JOB_ID, &job)) != ESPANK_SUCCESS ||
	    (rc = spank_get_item(sp, S_JOB_STEPID, &step)) != ESPANK_SUCCESS ||
	    (rc = spank_get_item(sp, S_TASK_GLOBAL_ID, &task)) !=
		    ESPANK_SUCCESS ||
	    (rc = spank_get_item(sp, S_JOB_NODEID, &nodeid)) !=
		    ESPANK_SUCCESS) {
		slurm_error("weft: task identity not available (%s): task "
			    "runs untraced",
			    spank_strerror(rc));
		return -1;
	}
	if (task_getenv(sp, "SLURMD_NODENAME", t->node, sizeof(t->node)) != 0 &&
	    gethostname(t->node, sizeof(t->node) - 1) != 0)
		snprintf(t->node, sizeof(t->node), "node%u", (unsigned)nodeid);
	if (wsp_task_name(t->name, sizeof(t->name), job, step, task, t->node) !=
	    0) {
		slurm_error("weft: task name for job %u on %s longer than %d "
			    "bytes: task runs untraced",
			    (unsigned)job, t->node, WSP_MAX_TASK_BYTES);
		return -1;
	}
	if (spank_get_item(sp, S_JOB_ARGV, &t->argc, &t->argv) !=
	    ESPANK_SUCCESS)
		t->argc = 0;
	t->job = job;
	t->step = step;
	t->task = task;
	return 0;
}

static void task_setenv(spank_t sp, const struct wsp_task *t, const char *var,
			const char *val)
{
	spank_err_t rc = spank_setenv(sp, var, val, 1);
	if (rc != ESPANK_SUCCESS)
		slurm_error("weft: task %s: cannot set %s: %s", t->name, var,
			    spank_strerror(rc));
}

/* Put back what --export dropped from the contract (see carried[]). */
static void restore_carried(spank_t sp)
{
	char name[64], buf[WSP_MAX_PATH_BYTES + 1];
	for (size_t i = 0; i < N_CARRIED; i++) {
		snprintf(name, sizeof(name), CARRY_PREFIX "%s", carried[i]);
		if (task_getenv(sp, carried[i], buf, sizeof(buf)) == 0 ||
		    task_getenv(sp, name, buf, sizeof(buf)) != 0)
			continue;
		spank_err_t rc = spank_setenv(sp, carried[i], buf, 1);
		if (rc != ESPANK_SUCCESS)
			slurm_error("weft: cannot set %s: %s", carried[i],
				    spank_strerror(rc));
	}
}

/* The task's identity: WEFT_TASK "job.step.task@node" (what weft wrap
 * names it), WEFT_NODE, and WEFT_PARENT: the task whose environment
 * launched this one (the batch script, or a task that called srun). */
static void set_identity(spank_t sp, const struct wsp_task *t)
{
	char buf[WSP_MAX_TASK_BYTES + 1];
	if (task_getenv(sp, "WEFT_TASK", buf, sizeof(buf)) == 0 &&
	    strcmp(buf, t->name) != 0) {
		if (wsp_task_check(buf) == 0)
			task_setenv(sp, t, "WEFT_PARENT", buf);
		else
			slurm_error("weft: task %s: WEFT_TASK='%.64s' in its "
				    "environment is no task name: no parent",
				    t->name, buf);
	}
	task_setenv(sp, t, "WEFT_TASK", t->name);
	task_setenv(sp, t, "WEFT_NODE", t->node);
}

/* The env contract (DESIGN.md "Env contract"). WEFT_JOB and WEFT_JOB_TOKEN
 * are the job's own (weft submit puts them in the environment srun and
 * sbatch send); the plugin never invents them. */
static void set_contract(spank_t sp, const struct wsp_task *t, int mode)
{
	char buf[WSP_MAX_PATH_BYTES + 1];
	set_identity(sp, t);
	task_setenv(sp, t, "WEFT_TRACER", wsp_mode_name(mode));
	if (conf.coordinator[0] &&
	    task_getenv(sp, "WEFT_COORDINATOR", buf, sizeof(buf)) != 0)
		task_setenv(sp, t, "WEFT_COORDINATOR", conf.coordinator);
	if (conf.spool[0] && task_getenv(sp, "WEFT_SPOOL", buf, sizeof(buf)))
		task_setenv(sp, t, "WEFT_SPOOL", conf.spool);
	if (task_getenv(sp, "WEFT_JOB", buf, sizeof(buf)) != 0)
		slurm_verbose("weft: task %s: no WEFT_JOB in its environment "
			      "(not under weft submit): fragments stay in "
			      "the node's spool until `weft flush`",
			      t->name);
}

/* LD_PRELOAD with the preload library first, into val; 0, or -1 (logged)
 * when the library cannot be used. */
static int preload_value(spank_t sp, const struct wsp_task *t, char *val,
			 size_t valsz)
{
	char old[WSP_MAX_PRELOAD_BYTES];
	/* Checked as the task's user: what ld.so will be able to open. */
	if (access(conf.preload, R_OK) != 0) {
		slurm_error("weft: task %s: preload library %s: %s: task runs "
			    "untraced (set preload= in plugstack.conf)",
			    t->name, conf.preload, strerror(errno));
		return -1;
	}
	int had = task_getenv(sp, "LD_PRELOAD", old, sizeof(old)) == 0;
	if (wsp_preload_value(val, valsz, conf.preload, had ? old : NULL) !=
	    0) {
		slurm_error("weft: task %s: LD_PRELOAD would be too long or "
			    "%s holds a space or colon: task runs untraced",
			    t->name, conf.preload);
		return -1;
	}
	return 0;
}

/* Whether the node agent listens at conf.agent: 0, or -1 with the reason
 * in err. The collector registers the task with it (eBPF). */
static int agent_up(char *err, size_t errsz)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(conf.agent) >= sizeof(sa.sun_path)) {
		snprintf(err, errsz, "agent socket path %s too long",
			 conf.agent);
		return -1;
	}
	memcpy(sa.sun_path, conf.agent, strlen(conf.agent) + 1);
	/* Non-blocking: an agent with a full backlog must not hold up
	 * the task's exec (EAGAIN: the task falls back to preload). */
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK,
			0);
	if (fd < 0) {
		snprintf(err, errsz, "socket: %s", strerror(errno));
		return -1;
	}
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		snprintf(err, errsz,
			 "no weft agent at %s (%s): start `weft agent` on "
			 "the node, or set agent= in plugstack.conf",
			 conf.agent, strerror(errno));
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

/* The collector's control socket: an abstract Unix name (per network
 * namespace, i.e. per node), from what both slurmstepd (task_exit) and the
 * task (task_init) know. */
static void control_name(char *out, size_t outsz, uid_t uid, uint32_t job,
			 uint32_t step, uint32_t task)
{
	snprintf(out, outsz, "weft-task/%u/%u.%u.%u", (unsigned)uid,
		 (unsigned)job, (unsigned)step, (unsigned)task);
}

static int is_var(const char *e, const char *name)
{
	size_t n = strlen(name);
	return strncmp(e, name, n) == 0 && e[n] == '=';
}

/* The collector's environment: the task's (the env contract, the Slurm
 * identity), without a preload of its own. NULL when out of memory. */
static char **collector_env(char **jenv)
{
	size_t n = 0, k = 0;
	while (jenv && jenv[n])
		n++;
	char **env = calloc(n + 1, sizeof(*env));
	if (!env)
		return NULL;
	for (size_t i = 0; i < n; i++)
		if (!is_var(jenv[i], "LD_PRELOAD") &&
		    !is_var(jenv[i], "WEFT_PRELOAD_SOCK") &&
		    !is_var(jenv[i], "WEFT_PRELOAD_SPAWNED"))
			env[k++] = jenv[i];
	env[k] = NULL;
	return env;
}

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The collector's answer, line by line, within one deadline. */
struct ready_reader {
	int fd;
	int64_t deadline;
	char buf[WSP_READY_BYTES];
	size_t got;
};

/* The next line (no newline) into line: 0, or -1 with why in line. */
static int read_line(struct ready_reader *rr, char *line, size_t linesz)
{
	for (;;) {
		char *nl = memchr(rr->buf, '\n', rr->got);
		if (nl) {
			size_t n = (size_t)(nl - rr->buf);
			snprintf(line, linesz, "%.*s", (int)n, rr->buf);
			memmove(rr->buf, nl + 1, rr->got - n - 1);
			rr->got -= n + 1;
			return 0;
		}
		if (rr->got >= sizeof(rr->buf) - 1) {
			snprintf(line, linesz,
				 "weft task-collect answered too long a line");
			return -1;
		}
		int64_t left = rr->deadline - mono_ms();
		if (left <= 0) {
			snprintf(line, linesz,
				 "weft task-collect did not answer within %d "
				 "ms",
				 WSP_COLLECTOR_TIMEOUT_MS);
			return -1;
		}
		struct pollfd p = {rr->fd, POLLIN, 0};
		int r = poll(&p, 1, (int)left);
		if (r <= 0)
			continue;
		ssize_t n = read(rr->fd, rr->buf + rr->got,
				 sizeof(rr->buf) - 1 - rr->got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			snprintf(line, linesz,
				 "weft task-collect ended without an answer "
				 "(its message, if any, is above)");
			return -1;
		}
		rr->got += (size_t)n;
	}
}

/* In the new collector process (a grandchild of the task, its own
 * session): fd 3 the answer pipe, stdin and stdout /dev/null, stderr the
 * task's; then exec weft. Never returns. */
static void collector_exec(int wfd, char **argv, char **env)
{
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	if (wfd != 3) {
		if (dup2(wfd, 3) != 3)
			_exit(126);
	} else {
		fcntl(3, F_SETFD, 0);
	}
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null >= 0) {
		dup2(null, 0);
		dup2(null, 1);
	}
	/* Nothing else of slurmstepd's (its sockets, the task's pipes). */
#ifdef SYS_close_range
	if (syscall(SYS_close_range, 4U, ~0U, 0U) != 0)
#endif
		for (int fd = 4; fd < 65536; fd++)
			close(fd);
	execve(argv[0], argv, env);
	_exit(127);
}

/* Start this task's collector (weft task-collect) and wait, bounded, until
 * it listens: 0 with its preload socket in sock, or -1 with why in err.
 * Runs in the task process, as the user, just before its exec. */
static int start_collector(spank_t sp, const struct wsp_task *t, int mode,
			   char *sock, size_t socksz, char *err, size_t errsz)
{
	char **jenv = NULL;
	if (access(conf.weft, X_OK) != 0) {
		snprintf(err, errsz,
			 "weft %.512s: %s (set weft= in plugstack.conf)",
			 conf.weft, strerror(errno));
		return -1;
	}
	if (t->argc < 1 || !t->argv) {
		snprintf(err, errsz, "the task's command is not known");
		return -1;
	}
	if (spank_get_item(sp, S_JOB_ENV, &jenv) != ESPANK_SUCCESS || !jenv) {
		snprintf(err, errsz, "the task's environment is not known");
		return -1;
	}
	char pid[32], ctl[128], timeout[32];
	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	control_name(ctl, sizeof(ctl), getuid(), t->job, t->step, t->task);
	snprintf(timeout, sizeof(timeout), "%d",
		 conf.ship_timeout_s < 0 ? 3 : conf.ship_timeout_s);
	const char *fixed[] = {conf.weft,
			       "task-collect",
			       "--pid",
			       pid,
			       "--ready-fd",
			       "3",
			       "--control",
			       ctl,
			       "--task",
			       t->name,
			       "--ship-timeout",
			       timeout,
			       "--tracer",
			       wsp_mode_name(mode),
			       "--agent",
			       conf.agent,
			       "--"};
	size_t nfixed = sizeof(fixed) / sizeof(fixed[0]);
	char **argv = calloc(nfixed + (size_t)t->argc + 1, sizeof(*argv));
	char **env = collector_env(jenv);
	int fds[2] = {-1, -1};
	if (!argv || !env || pipe2(fds, O_CLOEXEC) != 0) {
		snprintf(err, errsz, "%s",
			 argv && env ? strerror(errno) : "out of memory");
		free(argv);
		free(env);
		return -1;
	}
	for (size_t i = 0; i < nfixed; i++)
		argv[i] = (char *)fixed[i];
	for (int i = 0; i < t->argc; i++)
		argv[nfixed + (size_t)i] = t->argv[i];
	pid_t a = fork();
	if (a == 0) {
		/* Detached: not a child of the task (its shell's wait), not
		 * in its process group or session (its signals). */
		setsid();
		pid_t b = fork();
		if (b == 0) {
			close(fds[0]);
			collector_exec(fds[1], argv, env);
		}
		if (b > 0) {
			/* Its pid first: ptrace needs it (PR_SET_PTRACER). */
			char line[32];
			int n = snprintf(line, sizeof(line), "pid %d\n",
					 (int)b);
			ssize_t w = write(fds[1], line, (size_t)n);
			(void)w;
		}
		_exit(b < 0 ? 1 : 0);
	}
	int saved = errno;
	close(fds[1]);
	free(argv);
	free(env);
	if (a < 0) {
		close(fds[0]);
		snprintf(err, errsz, "fork: %s", strerror(saved));
		return -1;
	}
	int status;
	while (waitpid(a, &status, 0) < 0 && errno == EINTR)
		;
	char line[WSP_READY_BYTES];
	struct ready_reader rr = {
		.fd = fds[0], .deadline = mono_ms() + WSP_COLLECTOR_TIMEOUT_MS};
	int rc = read_line(&rr, line, sizeof(line));
	if (rc == 0 && strncmp(line, "pid ", 4) == 0) {
		/* Yama (ptrace_scope 1) lets only ancestors trace, unless
		 * the tracee names its tracer. */
		long b = strtol(line + 4, NULL, 10);
		if (mode == WSP_MODE_PTRACE && b > 0 &&
		    prctl(PR_SET_PTRACER, (unsigned long)b, 0, 0, 0) != 0 &&
		    errno != EINVAL)
			slurm_verbose("weft: task %s: PR_SET_PTRACER: %s",
				      t->name, strerror(errno));
		rc = read_line(&rr, line, sizeof(line));
	}
	close(fds[0]); /* a collector that answers late finds it closed */
	if (rc != 0) {
		snprintf(err, errsz, "%s", line);
		return -1;
	}
	if ((mode == WSP_MODE_PTRACE && strcmp(line, "ok ptrace") == 0) ||
	    (mode == WSP_MODE_EBPF && strcmp(line, "ok ebpf") == 0))
		return 0;
	if (mode == WSP_MODE_PRELOAD &&
	    strncmp(line, "ok preload /", 12) == 0 &&
	    strlen(line + 11) < socksz) {
		snprintf(sock, socksz, "%s", line + 11);
		return 0;
	}
	snprintf(err, errsz, "%s",
		 strncmp(line, "error ", 6) == 0 ? line + 6 : line);
	return -1;
}

/* Only a task of a weft job can be recorded (weft submit gives the
 * contract; the plugin never invents a job): whether this is one, saying
 * why not (loud: the user asked with --weft) when not. */
static int in_weft_job(spank_t sp, const struct wsp_task *t, int loud)
{
	char buf[WSP_MAX_PATH_BYTES + 1];
	if (task_getenv(sp, "WEFT_JOB", buf, sizeof(buf)) == 0)
		return 1;
	if (loud)
		slurm_error("weft: task %s: no WEFT_JOB in its environment "
			    "(run the job under `weft submit`): task runs "
			    "untraced",
			    t->name);
	else
		slurm_verbose("weft: task %s: not in a weft job: untraced",
			      t->name);
	return 0;
}

/* Preload with its collector: 0, or -1 (logged) and the task untraced. */
static int start_preload(spank_t sp, const struct wsp_task *t, int loud)
{
	char err[WSP_READY_BYTES + 256], sock[WSP_MAX_PATH_BYTES + 1],
		val[WSP_MAX_PRELOAD_BYTES];
	if (!in_weft_job(sp, t, loud))
		return -1;
	if (preload_value(sp, t, val, sizeof(val)) != 0)
		return -1;
	if (start_collector(sp, t, WSP_MODE_PRELOAD, sock, sizeof(sock), err,
			    sizeof(err)) != 0) {
		slurm_error("weft: task %s: no collector: %s: task runs "
			    "untraced",
			    t->name, err);
		return -1;
	}
	task_setenv(sp, t, "LD_PRELOAD", val);
	task_setenv(sp, t, "WEFT_PRELOAD_SOCK", sock);
	return 0;
}

/* ptrace (the collector seizes this process before it execs) or eBPF
 * (the collector registers it with the node agent): 0, or -1 with why in
 * err (the caller logs it). */
static int start_other(spank_t sp, const struct wsp_task *t, int mode,
		       char *err, size_t errsz)
{
	char buf[WSP_MAX_PATH_BYTES + 1];
	if (mode == WSP_MODE_EBPF && agent_up(err, errsz) != 0)
		return -1;
	return start_collector(sp, t, mode, buf, sizeof(buf), err, errsz);
}

/* Put the tracer in place for mode; the mode actually used, or OFF. */
static int start_tracer(spank_t sp, const struct wsp_task *t, int mode,
			int loud)
{
	char err[WSP_READY_BYTES + 256] = "";
	if (mode == WSP_MODE_PRELOAD)
		return start_preload(sp, t, loud) == 0 ? mode : WSP_MODE_OFF;
	if (mode == WSP_MODE_EBPF || mode == WSP_MODE_PTRACE) {
		if (!in_weft_job(sp, t, loud))
			return WSP_MODE_OFF;
		if (start_other(sp, t, mode, err, sizeof(err)) == 0)
			return mode;
		slurm_error("weft: task %s: %s: %s: task runs untraced",
			    t->name, wsp_mode_name(mode), err);
		return WSP_MODE_OFF;
	}
	/* auto: eBPF when the node agent takes the task, else preload. */
	if (in_weft_job(sp, t, 0) &&
	    start_other(sp, t, WSP_MODE_EBPF, err, sizeof(err)) == 0)
		return WSP_MODE_EBPF;
	if (err[0])
		slurm_verbose("weft: task %s: ebpf: %s; using preload", t->name,
			      err);
	return start_preload(sp, t, loud) == 0 ? WSP_MODE_PRELOAD
					       : WSP_MODE_OFF;
}

/* How srun/sbatch forward --weft in the job's environment. */
#define WSP_OPTION_ENV "SLURM_SPANK__SLURM_SPANK_OPTION_weft_weft"

/* --weft as the step got it: the callback's value, else what
 * spank_option_getopt finds, else the forwarded variable itself (the batch
 * step of `sbatch --export=NONE` carries it in its environment, yet Slurm
 * 22.05 neither calls the callback nor answers getopt there). */
static int option_mode(spank_t sp)
{
	char *arg = NULL, buf[64];
	if (user_mode != WSP_MODE_UNSET)
		return user_mode;
	if (spank_option_getopt(sp, &weft_option, &arg) != ESPANK_SUCCESS) {
		if (task_getenv(sp, WSP_OPTION_ENV, buf, sizeof(buf)) != 0)
			return WSP_MODE_UNSET;
		/* A bare --weft is forwarded as "(null)". */
		arg = strcmp(buf, "(null)") == 0 ? NULL : buf;
	}
	int m = wsp_mode_parse(arg);
	if (m < 0)
		slurm_error("weft: --weft=%s: expected auto, preload, ebpf, "
			    "ptrace or off: task runs untraced",
			    arg);
	return m < 0 ? WSP_MODE_OFF : m;
}

/* A preload socket the task inherited (from a traced batch script or a
 * traced task that called srun) belongs to another task's collector: the
 * library sends nothing without it. */
static void drop_inherited_socket(spank_t sp)
{
	char buf[WSP_MAX_PATH_BYTES + 1];
	if (task_getenv(sp, "WEFT_PRELOAD_SOCK", buf, sizeof(buf)) == 0)
		spank_unsetenv(sp, "WEFT_PRELOAD_SOCK");
}

int slurm_spank_task_init(spank_t sp, int ac, char **av)
{
	(void)ac;
	(void)av;
	restore_carried(sp);
	int asked = option_mode(sp);
	int mode = wsp_mode_effective(asked, conf.default_mode);
	struct wsp_task t;
	char job[WSP_MAX_PATH_BYTES + 1];
	drop_inherited_socket(sp);
	if (mode == WSP_MODE_OFF) {
		/* Not traced here, but inside a weft job (`weft submit --
		 * sbatch`, then `srun weft wrap` in the script): the steps'
		 * wrappers still learn who launched them. */
		if (task_getenv(sp, "WEFT_JOB", job, sizeof(job)) == 0 &&
		    task_get(sp, &t) == 0)
			set_identity(sp, &t);
		return 0;
	}
	if (task_get(sp, &t) != 0)
		return 0;
	/* A plugstack default= outside a weft job: the task is left as it
	 * is (no identity, no contract, no WEFT_UNTRACED); only weft jobs
	 * are recorded. An explicit --weft says why below. */
	if (asked == WSP_MODE_UNSET &&
	    task_getenv(sp, "WEFT_JOB", job, sizeof(job)) != 0) {
		slurm_verbose("weft: task %s: not in a weft job: untraced",
			      t.name);
		return 0;
	}
	/* The identity and the contract first: the collector reads them. */
	set_contract(sp, &t, mode);
	if (wsp_argv_is_weft(t.argc, t.argv)) {
		/* `srun --weft weft wrap -- CMD`: the wrapper traces; give it
		 * the identity only, no second tracer underneath. */
		return 0;
	}
	int used = start_tracer(sp, &t, mode, asked != WSP_MODE_UNSET);
	if (used != WSP_MODE_OFF && used != mode)
		task_setenv(sp, &t, "WEFT_TRACER", wsp_mode_name(used));
	if (used == WSP_MODE_OFF)
		task_setenv(sp, &t, "WEFT_UNTRACED", "1");
	return 0;
}

/* In slurmstepd: the connections to this step's collectors that have the
 * exit status and have not answered yet, and how many tasks have ended. */
#define WSP_MAX_PENDING 1024
static int pending[WSP_MAX_PENDING];
static char pending_task[WSP_MAX_PENDING][48];
static int npending;
static uint32_t nexited;

/* Wait (one deadline for all) until every pending collector answered
 * "done": it recorded and shipped (or spooled) its task. */
static void wait_collectors(void)
{
	int wait_ms =
		WSP_COLLECTOR_DONE_MS +
		(conf.ship_timeout_s < 0 ? 3 : conf.ship_timeout_s) * 1000;
	int64_t deadline = mono_ms() + wait_ms;
	int left = npending;
	while (left > 0) {
		struct pollfd p[WSP_MAX_PENDING];
		for (int i = 0; i < npending; i++)
			p[i] = (struct pollfd){pending[i], POLLIN, 0};
		int64_t ms = deadline - mono_ms();
		if (ms <= 0)
			break;
		int r = poll(p, (nfds_t)npending, (int)ms);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		for (int i = 0; i < npending; i++)
			if (pending[i] >= 0 && p[i].revents) {
				char reply[16];
				ssize_t n = recv(pending[i], reply,
						 sizeof(reply), MSG_DONTWAIT);
				if (n < 0 &&
				    (errno == EAGAIN || errno == EINTR))
					continue;
				if (n != 4 || memcmp(reply, "done", 4) != 0)
					slurm_error(
						"weft: task %s: its "
						"collector ended without "
						"saying it shipped (its "
						"message, if any, is above)",
						pending_task[i]);
				close(pending[i]);
				pending[i] = -1;
				left--;
			}
	}
	for (int i = 0; i < npending; i++)
		if (pending[i] >= 0) {
			slurm_error(
				"weft: task %s: its collector did not finish "
				"within %d s: its record may be incomplete, "
				"or wait in the spool for `weft flush`",
				pending_task[i], wait_ms / 1000);
			close(pending[i]);
		}
	npending = 0;
}

/* In slurmstepd (root), as Slurm collects each task's exit status: hand
 * it to the task's collector, if the task has one. When the step's last
 * task on this node has ended, wait (bounded) until every collector
 * recorded and shipped: the step then ends only after its tasks' records
 * are out (the end of a step kills what is left of it, collectors
 * included, where proctrack is cgroup), and srun returns after that. */
int slurm_spank_task_exit(spank_t sp, int ac, char **av)
{
	(void)ac;
	(void)av;
	if (spank_context() != S_CTX_REMOTE)
		return 0;
	uint32_t job = 0, step = 0, task = 0, ntasks = 0;
	uid_t uid = 0;
	int status = 0;
	if (spank_get_item(sp, S_JOB_ID, &job) != ESPANK_SUCCESS ||
	    spank_get_item(sp, S_JOB_STEPID, &step) != ESPANK_SUCCESS ||
	    spank_get_item(sp, S_TASK_GLOBAL_ID, &task) != ESPANK_SUCCESS ||
	    spank_get_item(sp, S_JOB_UID, &uid) != ESPANK_SUCCESS ||
	    spank_get_item(sp, S_TASK_EXIT_STATUS, &status) != ESPANK_SUCCESS)
		return 0;
	if (spank_get_item(sp, S_JOB_LOCAL_TASK_COUNT, &ntasks) !=
	    ESPANK_SUCCESS)
		ntasks = 0;
	nexited++;
	char name[128];
	control_name(name, sizeof(name), uid, job, step, task);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	size_t n = strlen(name);
	memcpy(sa.sun_path + 1, name, n);
	/* Non-blocking: a connect to a listener whose backlog is full
	 * (anyone on the node can bind the abstract name first and not
	 * accept) would block slurmstepd for good. A Unix socket connects
	 * at once or fails (EAGAIN); nothing else here waits unbounded. */
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK,
			0);
	if (fd >= 0 &&
	    connect(fd, (struct sockaddr *)&sa,
		    (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 +
				n)) != 0) {
		close(fd); /* no collector: the task was not traced */
		fd = -1;
	}
	struct ucred cr = {.uid = (uid_t)-1};
	socklen_t len = sizeof(cr);
	if (fd >= 0 &&
	    (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) != 0 ||
	     cr.uid != uid)) {
		slurm_error("weft: task %u.%u.%u: @%s is not the task's "
			    "collector (uid %u): exit status not sent",
			    (unsigned)job, (unsigned)step, (unsigned)task, name,
			    (unsigned)cr.uid);
		close(fd);
		fd = -1;
	}
	char msg[64];
	int m = snprintf(msg, sizeof(msg), "exit %d", status);
	if (fd >= 0 &&
	    send(fd, msg, (size_t)m, MSG_NOSIGNAL | MSG_DONTWAIT) != m) {
		slurm_error("weft: task %u.%u.%u: cannot send its exit status "
			    "to its collector: %s",
			    (unsigned)job, (unsigned)step, (unsigned)task,
			    strerror(errno));
		close(fd);
		fd = -1;
	}
	if (fd >= 0 && npending < WSP_MAX_PENDING) {
		pending[npending] = fd;
		snprintf(pending_task[npending], sizeof(pending_task[0]),
			 "%u.%u.%u", (unsigned)job, (unsigned)step,
			 (unsigned)task);
		npending++;
	} else if (fd >= 0) {
		close(fd); /* it has its status; nobody waits for it */
	}
	if (npending && (nexited >= ntasks || npending == WSP_MAX_PENDING))
		wait_collectors();
	return 0;
}

/* In slurmstepd at the step's end: what is still pending (tasks Slurm
 * did not count). */
int slurm_spank_exit(spank_t sp, int ac, char **av)
{
	(void)sp;
	(void)ac;
	(void)av;
	if (spank_context() == S_CTX_REMOTE && npending)
		wait_collectors();
	return 0;
}
