/*
 * weft_spank.c - weft's SPANK plugin (weft_spank.so): `srun --weft[=MODE]`
 * and `sbatch --weft[=MODE]` trace every task of a step, with no wrapper in
 * the task's argv (Slurm 22.05 cannot rewrite a task's argv).
 *
 * In slurmstepd, just before each task's exec (slurm_spank_task_init), the
 * plugin gives the task its identity (WEFT_TASK "job.step.task@node",
 * WEFT_NODE, WEFT_PARENT) and the env contract (WEFT_TRACER, and
 * WEFT_COORDINATOR / WEFT_SPOOL when plugstack.conf names them), then:
 *   preload  puts libweft_preload.so first in LD_PRELOAD;
 *   ebpf     registers the task's pid with the node's weft agent;
 *   ptrace   asks the node's weft agent to seize the task;
 *   auto     ebpf when the agent takes the task, else preload.
 *
 * plugstack.conf:  optional /path/weft_spank.so [default=MODE]
 *   [preload=/path/libweft_preload.so] [agent=/run/weft/agent.sock]
 *   [coordinator=URL] [spool=DIR]
 * default=MODE traces every job that does not say --weft=off.
 *
 * A failure inside the plugin never fails the task: every callback returns
 * success and says what went wrong with slurm_error (slurmd's log and the
 * job's stderr), and the task runs untraced. Only a malformed --weft on the
 * srun/sbatch command line is refused, before anything is launched.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
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

/* How long a task's exec may wait for the agent, at most. */
#define WSP_AGENT_TIMEOUT_MS 2000

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

/* LD_PRELOAD with the preload library first; 0, or -1 (logged) when the
 * library cannot be used, and the task's LD_PRELOAD is left alone. */
static int set_preload(spank_t sp, const struct wsp_task *t)
{
	char old[WSP_MAX_PRELOAD_BYTES], val[WSP_MAX_PRELOAD_BYTES];
	/* Checked as the task's user: what ld.so will be able to open. */
	if (access(conf.preload, R_OK) != 0) {
		slurm_error("weft: task %s: preload library %s: %s: task runs "
			    "untraced (set preload= in plugstack.conf)",
			    t->name, conf.preload, strerror(errno));
		return -1;
	}
	int had = task_getenv(sp, "LD_PRELOAD", old, sizeof(old)) == 0;
	if (wsp_preload_value(val, sizeof(val), conf.preload,
			      had ? old : NULL) != 0) {
		slurm_error("weft: task %s: LD_PRELOAD would be too long or "
			    "%s holds a space or colon: task runs untraced",
			    t->name, conf.preload);
		return -1;
	}
	task_setenv(sp, t, "LD_PRELOAD", val);
	return 0;
}

/* Register this task (the calling process, about to exec) with the node
 * agent. 0, or -1 with the reason in err.
 *
 * TODO(issues 5, 7): `weft agent` (backends/ebpf/agent.c, a SOCK_SEQPACKET
 * socket) registers the root pid of a wrapper that stays connected and
 * receives the records of that tree; a registration ends with its
 * connection. A task execs right after this call, so the agent needs a
 * request that keeps the records of a task nobody reads and ships them
 * itself (a fragment per task, to WEFT_COORDINATOR of the task's env), and
 * for ptrace one that seizes the pid. Until then this only checks that an
 * agent listens, and says registration is not available: ebpf/ptrace tasks
 * run untraced, auto falls back to preload. When it lands: send
 * {register-detached, pid=getpid(), task, env contract} and wait for the
 * ack within WSP_AGENT_TIMEOUT_MS, so the pid is in the filter map (or
 * seized) before exec. */
static int agent_register(const char *task, int mode, char *err, size_t errsz)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct timeval tv = {.tv_sec = WSP_AGENT_TIMEOUT_MS / 1000,
			     .tv_usec = (WSP_AGENT_TIMEOUT_MS % 1000) * 1000};
	if (strlen(conf.agent) >= sizeof(sa.sun_path)) {
		snprintf(err, errsz, "agent socket path %s too long",
			 conf.agent);
		return -1;
	}
	memcpy(sa.sun_path, conf.agent, strlen(conf.agent) + 1);
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errsz, "socket: %s", strerror(errno));
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		snprintf(err, errsz,
			 "no weft agent at %s (%s): start `weft agent` on "
			 "the node, or set agent= in plugstack.conf",
			 conf.agent, strerror(errno));
		close(fd);
		return -1;
	}
	close(fd);
	snprintf(err, errsz,
		 "the weft agent at %s is up, but this plugin cannot "
		 "register %s task %s with it yet (agent protocol pending)",
		 conf.agent, wsp_mode_name(mode), task);
	return -1;
}

/* Put the tracer in place for mode; the mode actually used, or OFF. */
static int start_tracer(spank_t sp, const struct wsp_task *t, int mode)
{
	char err[512];
	if (mode == WSP_MODE_PRELOAD)
		return set_preload(sp, t) == 0 ? mode : WSP_MODE_OFF;
	if (mode == WSP_MODE_EBPF || mode == WSP_MODE_PTRACE) {
		if (agent_register(t->name, mode, err, sizeof(err)) == 0)
			return mode;
		slurm_error("weft: task %s: %s: task runs untraced", t->name,
			    err);
		return WSP_MODE_OFF;
	}
	/* auto: the agent when it takes the task, else preload. */
	if (agent_register(t->name, WSP_MODE_EBPF, err, sizeof(err)) == 0)
		return WSP_MODE_EBPF;
	slurm_verbose("weft: task %s: %s; using preload", t->name, err);
	return set_preload(sp, t) == 0 ? WSP_MODE_PRELOAD : WSP_MODE_OFF;
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

int slurm_spank_task_init(spank_t sp, int ac, char **av)
{
	(void)ac;
	(void)av;
	restore_carried(sp);
	int mode = wsp_mode_effective(option_mode(sp), conf.default_mode);
	struct wsp_task t;
	char job[WSP_MAX_PATH_BYTES + 1];
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
	if (wsp_argv_is_weft(t.argc, t.argv)) {
		/* `srun --weft weft wrap -- CMD`: the wrapper traces; give it
		 * the identity only, no second tracer underneath. */
		set_contract(sp, &t, mode);
		return 0;
	}
	int used = start_tracer(sp, &t, mode);
	set_contract(sp, &t, used == WSP_MODE_OFF ? mode : used);
	if (used == WSP_MODE_OFF)
		task_setenv(sp, &t, "WEFT_UNTRACED", "1");
	return 0;
}
