/*
 * run.c - a workload traced by eBPF: launched stopped (the child waits on
 * a pipe before execve), registered in the filter map (through the node
 * agent, or a load of our own), then released; records are decoded and
 * fed to the classifier until the root has been reaped and every traced
 * process has ended; then the ring buffer is drained, so the last writes
 * of short-lived processes are not lost.
 *
 * When the records stop coming (the agent went away, the ring buffer
 * reader failed), the run sets l->lost and returns at once, leaving the
 * workload running for the manager's fallback.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "ebpf_internal.h"
#include "launch_internal.h"
#include <weft/base.h>

/* How long the reader sleeps between looks at the ring buffer (it is
 * woken earlier only when a quarter of the buffer is waiting). */
#define WB_POLL_MS 20
/* How long the end-of-run drain through the agent may take. */
#define WB_SYNC_TIMEOUT_MS 10000

typedef struct pidset {
	pid_t *v;
	size_t n, cap;
} pidset;

typedef struct wb_tracing {
	weft_launch *l;
	weft_report *w;
	wb_load *ld; /* private load, or NULL */
	int agent;   /* agent socket, or -1 */
	uint32_t owner;
	int64_t rt_off;
	wb_decoded dec;
	pidset live; /* traced processes not yet ended */
	bool root_reaped;
	bool synced; /* the agent answered SYNC */
	uint64_t agent_dropped;
	uint64_t records, malformed;
	uint8_t *buf;         /* agent packets */
	wb_hints *hints;      /* rename targets looked up before the rename */
	wb_load_stats *stats; /* the caller's, or NULL */
	int root_pidfd;       /* readable when the root ends; -1 if none */
} wb_tracing;

/* ---- the set of live processes ---- */

static bool pidset_has(const pidset *s, pid_t p)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->v[i] == p)
			return true;
	return false;
}

static void pidset_add(pidset *s, pid_t p)
{
	if (pidset_has(s, p))
		return;
	if (s->n == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 16;
		pid_t *v = realloc(s->v, cap * sizeof(*v));
		if (!v)
			return; /* the end check then finds it gone */
		s->v = v;
		s->cap = cap;
	}
	s->v[s->n++] = p;
}

static void pidset_del(pidset *s, pid_t p)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->v[i] == p) {
			s->v[i] = s->v[--s->n];
			return;
		}
}

/* ---- records to events ---- */

static void exec_fixups(wb_tracing *r, weft_event *ev, char *exe, size_t exesz,
			char **block, char ***argv)
{
	char link[64];
	if (!ev->path || ev->path[0] != '/') {
		/* A relative exec name: the process knows what it runs. */
		snprintf(link, sizeof(link), "/proc/%d/exe", (int)ev->pid);
		ssize_t n = readlink(link, exe, exesz - 1);
		if (n > 0 && exe[0] == '/') {
			exe[n] = '\0';
			ev->path = exe;
		} else {
			ev->path = NULL;
		}
	}
	if (!(r->dec.rflags & WB_R_ARGV_TRUNCATED))
		return;
	/* Longer than the kernel side keeps: /proc has it all, while the
	 * process lives. */
	snprintf(link, sizeof(link), "/proc/%d/cmdline", (int)ev->pid);
	FILE *f = fopen(link, "re");
	if (!f)
		return;
	size_t cap = WEFT_MAX_ARGV_BYTES, n;
	char *b = malloc(cap + 1);
	if (b && (n = fread(b, 1, cap, f)) > 0) {
		b[n] = '\0';
		uint32_t argc = 0;
		for (size_t i = 0; i < n; i++)
			argc += b[i] == '\0';
		char **a = calloc(argc + 1, sizeof(*a));
		if (a) {
			uint32_t k = 0;
			for (size_t i = 0; i < n && k < argc;
			     i += strlen(b + i) + 1)
				a[k++] = b + i;
			ev->argv = (const char *const *)a;
			ev->argc = k;
			*argv = a;
			*block = b;
			b = NULL;
		}
	}
	free(b);
	fclose(f);
}

static bool missing_path(const weft_event *ev)
{
	switch (ev->kind) {
	case WEFT_EV_OPEN:
	case WEFT_EV_UNLINK:
	case WEFT_EV_TRUNCATE:
	case WEFT_EV_CHDIR:
		return ev->ret >= 0 && !ev->path;
	case WEFT_EV_RENAME:
	case WEFT_EV_LINK:
		return ev->ret >= 0 && (!ev->path || !ev->path2);
	default:
		return false;
	}
}

static int on_record(void *ctx, const void *data, size_t len)
{
	wb_tracing *r = ctx;
	if (wb_record_decode(data, len, &r->dec) != 0) {
		r->malformed++;
		r->l->dropped_events++;
		return 0;
	}
	weft_event *ev = &r->dec.ev;
	if (r->ld && r->dec.owner != r->owner)
		return 0; /* the agent sends only ours */
	r->records++;
	if (r->dec.rflags & WB_R_SECURE)
		weft_report_warn(r->w,
				 "ebpf: pid %d ran %s, which gained privileges by "
				 "it (set-user-ID, set-group-ID or file "
				 "capabilities): neither it nor what it started "
				 "was traced further, as you could not trace it "
				 "yourself",
				 (int)ev->tgid, ev->path ? ev->path : "?");
	if (missing_path(ev)) {
		/* It succeeded on a path the kernel side could not read. */
		r->l->dropped_events++;
		return 0;
	}
	char exe[PATH_MAX];
	char *block = NULL, **argv = NULL;
	if (ev->kind == WEFT_EV_EXEC)
		exec_fixups(r, ev, exe, sizeof(exe), &block, &argv);
	else if (ev->kind == WEFT_EV_RENAME)
		ev->created = wb_hints_take(r->hints, ev->pid);
	else if (ev->kind == WEFT_EV_FORK && !(ev->flags & 0x10000))
		pidset_add(&r->live, (pid_t)ev->ret);
	else if (ev->kind == WEFT_EV_EXIT && (ev->flags & 1))
		pidset_del(&r->live, ev->tgid);
	if (ev->time_ns == 0) {
		ev->time_ns = (uint64_t)weft_real_ns();
	} else {
		ev->time_ns += (uint64_t)r->rt_off;
	}
	/* The environ block, read after the exec was reported: vouched
	 * for only while the process still runs that program. */
	char *env = NULL;
	if (ev->kind == WEFT_EV_EXEC) {
		ev->env_state = WEFT_EV_ENV_UNKNOWN;
		if (ev->path)
			ev->env_state = (uint8_t)weft_env_read_proc(
				ev->tgid, ev->path, &env, &ev->env_len);
		ev->env = env;
	}
	weft_launch_feed(r->l, "ebpf", ev);
	if (ev->kind == WEFT_EV_EXEC) {
		ev->env = NULL;
		ev->env_len = 0;
		ev->env_state = WEFT_EV_ENV_NONE;
	}
	free(env);
	free(argv);
	free(block);
	return 0;
}

/* ---- where records come from ---- */

static void lose(wb_tracing *r, const char *fmt, const char *detail)
{
	weft_launch *l = r->l;
	if (l->lost)
		return;
	l->lost = true;
	l->lost_at_ns = weft_real_ns();
	snprintf(l->lost_reason, sizeof(l->lost_reason), fmt, detail);
}

/* One packet from the agent: a batch of records, or SYNCED. */
static int agent_packet(wb_tracing *r)
{
	ssize_t n = recv(r->agent, r->buf, WB_BATCH_BYTES, MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	if (n <= 0) {
		lose(r, "the weft agent went away (%s)",
		     n == 0 ? "connection closed" : strerror(errno));
		return -1;
	}
	if ((size_t)n == sizeof(wb_msg)) {
		wb_msg m;
		memcpy(&m, r->buf, sizeof(m));
		if (m.type == WB_MSG_SYNCED) {
			r->synced = true;
			r->agent_dropped = m.dropped;
		}
		return 1;
	}
	for (size_t at = 0; at < (size_t)n;) {
		uint32_t len;
		if ((size_t)n - at < sizeof(len)) {
			r->malformed++;
			break;
		}
		memcpy(&len, r->buf + at, sizeof(len));
		at += sizeof(len);
		if (len > (size_t)n - at) {
			r->malformed++;
			r->l->dropped_events++;
			break;
		}
		on_record(r, r->buf + at, len);
		at += len;
	}
	return 1;
}

/* Take what the private load's ring buffer holds; -1 when that fails. */
static int drain_private(wb_tracing *r)
{
	int n = wb_drain(r->ld);
	if (n >= 0)
		return 0;
	lose(r, "reading the eBPF ring buffer failed (%s)", strerror(-n));
	return -1;
}

/* Wait up to timeout_ms for records and take what came; -1 when tracing
 * is lost. */
static int source_wait(wb_tracing *r, int timeout_ms)
{
	/* Also wake when the root ends (its pidfd becomes readable), so a
	 * short run does not wait out the timer. */
	struct pollfd p[2] = {
		{.fd = r->ld ? wb_epoll_fd(r->ld) : r->agent, .events = POLLIN},
		{.fd = r->root_reaped ? -1 : r->root_pidfd, .events = POLLIN},
	};
	poll(p, 2, timeout_ms);
	if (r->ld)
		return drain_private(r);
	if (!(p[0].revents & (POLLIN | POLLHUP | POLLERR)))
		return 0;
	for (int i = 0; i < 4096; i++) {
		int n = agent_packet(r);
		if (n < 0)
			return -1;
		if (n == 0)
			break;
	}
	return 0;
}

/* Take every record written so far; -1 when tracing is lost. */
static int source_drain(wb_tracing *r)
{
	if (r->ld)
		return drain_private(r);
	wb_msg m = {.type = WB_MSG_SYNC};
	r->synced = false;
	if (send(r->agent, &m, sizeof(m), MSG_NOSIGNAL) != (ssize_t)sizeof(m)) {
		lose(r, "the weft agent went away (%s)", strerror(errno));
		return -1;
	}
	int64_t t0 = weft_mono_ms();
	while (!r->synced) {
		struct pollfd p = {.fd = r->agent, .events = POLLIN};
		poll(&p, 1, 100);
		while (!r->synced) {
			int n = agent_packet(r);
			if (n < 0)
				return -1;
			if (n == 0)
				break;
		}
		if (weft_mono_ms() - t0 >= WB_SYNC_TIMEOUT_MS) {
			lose(r, "the weft agent did not answer (%s)",
			     "no SYNC reply");
			return -1;
		}
	}
	return 0;
}

/* ---- the run ---- */

/* Fork the workload, waiting before execve until a byte comes on *go.
 * With hints, the child first installs the rename filter and sends its
 * listener back on the same socket (rename_hint.c). */
static pid_t launch(weft_launch *l, bool hints, int *go, int *failfd,
		    int *listener)
{
	int sync[2], fail[2];
	*listener = -1;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sync) != 0)
		return -1;
	if (pipe2(fail, O_CLOEXEC) != 0) {
		close(sync[0]);
		close(sync[1]);
		return -1;
	}
	pid_t pid = fork();
	if (pid == 0) {
		/* Async-signal-safe only: the parent may have threads. */
		weft_child_unblock_signals();
		/* The parent's ends: a parent killed before the byte must
		 * leave this child an end of file, not a wait forever. */
		close(sync[1]);
		close(fail[0]);
		int lfd = hints ? wb_hints_install() : -1;
		if (lfd >= 0 ? wb_hints_send_fd(sync[0], lfd) != 0
			     : write(sync[0], "-", 1) != 1)
			_exit(126);
		weft_child_wait_go(sync[0]);
		weft_child_exec(l->argv, l->envp, fail[1]);
	}
	int e = errno;
	close(sync[0]);
	close(fail[1]);
	if (pid < 0) {
		close(sync[1]);
		close(fail[0]);
		errno = e;
		return -1;
	}
	/* The listener, or the plain byte of a child without one. */
	*listener = hints ? wb_hints_recv_fd(sync[1]) : -1;
	if (!hints) {
		char c;
		if (read(sync[1], &c, 1) != 1)
			*listener = -1;
	}
	*go = sync[1];
	*failfd = fail[0];
	return pid;
}

static void reap(wb_tracing *r)
{
	int status;
	pid_t p;
	while ((p = waitpid(-1, &status, WNOHANG | __WALL)) > 0)
		if (p == r->l->root_pid) {
			r->l->exit_code = WIFEXITED(status)
						  ? WEXITSTATUS(status)
						  : 128 + WTERMSIG(status);
			r->root_reaped = true;
		}
}

/* Processes whose end never came (a record lost): gone is gone. */
static void prune_live(wb_tracing *r)
{
	for (size_t i = 0; i < r->live.n;) {
		if (kill(r->live.v[i], 0) != 0 && errno == ESRCH)
			r->live.v[i] = r->live.v[--r->live.n];
		else
			i++;
	}
}

/* Feed records until the workload has ended; 0, or -1 when lost. */
static int follow(wb_tracing *r)
{
	int idle_rounds = 0;
	for (;;) {
		if (source_wait(r, WB_POLL_MS) < 0)
			return -1;
		reap(r);
		if (!r->root_reaped)
			continue;
		/* The root's end (and every end before it) is in the
		 * buffer: its exit record is written before its parent is
		 * told. */
		if (source_drain(r) < 0)
			return -1;
		if (r->live.n == 0)
			return 0;
		if (++idle_rounds % 10 == 0)
			prune_live(r);
		if (r->live.n == 0)
			return source_drain(r);
	}
}

static int load_private(wb_tracing *r)
{
	char err[512];
	if (wb_load_open(&r->ld, wb_ringbuf_bytes(), on_record, r, r->stats,
			 err, sizeof(err)) != 0) {
		weft_report_warn(r->w, "ebpf: %s", err);
		return WEFT_EUNSUPPORTED;
	}
	r->owner = 1;
	return 0;
}

static int start_source(wb_tracing *r, enum wb_source src)
{
	if (src != WB_SOURCE_PRIVATE) {
		r->agent =
			wb_agent_connect(src == WB_SOURCE_AGENT, r->l->verbose);
		if (r->agent >= 0) {
			r->buf = malloc(WB_BATCH_BYTES);
			if (r->stats)
				r->stats->agent = r->buf != NULL;
			if (r->buf)
				return 0;
			close(r->agent);
			r->agent = -1;
		}
		if (r->l->verbose >= 1)
			fprintf(stderr, "weft ebpf: no agent; loading the "
					"programs for this run\n");
	}
	return load_private(r);
}

/* Register the root with the agent; an agent that refuses (another weft
 * build's, or one that cannot trace it) is left for a load of our own. */
static int register_root(wb_tracing *r, pid_t pid)
{
	if (r->ld)
		return wb_track(r->ld, pid, r->owner);
	char why[256];
	int rc = wb_agent_register(r->agent, pid, why, sizeof(why));
	if (rc == 0)
		return 0;
	if (r->l->verbose >= 1)
		fprintf(stderr,
			"weft ebpf: the agent refused pid %d (%s); "
			"loading the programs for this run\n",
			(int)pid, why);
	close(r->agent);
	r->agent = -1;
	free(r->buf);
	r->buf = NULL;
	if (r->stats)
		r->stats->agent = false;
	if (load_private(r) != 0)
		return WEFT_EUNSUPPORTED;
	return wb_track(r->ld, pid, r->owner);
}

static void stop_source(wb_tracing *r)
{
	/* This run's losses only: the kernel counts them per owner, the
	 * agent adds what this wrapper did not read in time. */
	uint64_t lost = 0;
	const char *why = NULL;
	if (r->ld) {
		lost = wb_dropped(r->ld, r->owner);
		why = "the kernel's ring buffer was full";
		wb_load_close(r->ld);
		r->ld = NULL;
	}
	if (r->agent >= 0) {
		lost = r->agent_dropped;
		why = "this run did not read them from the weft agent in "
		      "time, or the kernel's ring buffer was full";
		close(r->agent);
		r->agent = -1;
	}
	r->l->dropped_events += lost;
	if (lost)
		weft_report_warn(r->w,
				 "ebpf: %llu records of this run were lost "
				 "(%s); the record is incomplete",
				 (unsigned long long)lost, why);
	free(r->buf);
	r->buf = NULL;
	if (r->root_pidfd >= 0)
		close(r->root_pidfd);
	r->root_pidfd = -1;
	wb_hints_stop(r->hints);
	r->hints = NULL;
	wb_decoded_release(&r->dec);
	free(r->live.v);
}

int wb_trace(weft_launch *l, weft_report *w, enum wb_source src,
	     wb_load_stats *stats)
{
	wb_tracing r = {
		.l = l, .w = w, .agent = -1, .stats = stats, .root_pidfd = -1};
	char cwd[PATH_MAX];
	if (!getcwd(cwd, sizeof(cwd)))
		return WEFT_EIO;
	r.rt_off = wb_realtime_offset();
	int err = start_source(&r, src);
	if (err)
		return err;
	int go, failfd, listener;
	bool admin = wb_cap_effective(0) & (1ull << WB_CAP_SYS_ADMIN);
	pid_t pid = launch(l, admin, &go, &failfd, &listener);
	if (pid < 0) {
		stop_source(&r);
		return WEFT_EIO;
	}
	l->root_pid = pid;
	l->exit_code = 0;
	r.root_pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (listener >= 0)
		r.hints = wb_hints_start(listener);
	if (register_root(&r, pid) != 0) {
		close(go); /* the child exits without exec */
		close(failfd);
		waitpid(pid, NULL, 0);
		stop_source(&r);
		return WEFT_EUNSUPPORTED;
	}
	pidset_add(&r.live, pid);
	weft_launch_add_root(l, pid, cwd, NULL);
	if (write(go, "g", 1) != 1)
		weft_report_warn(w, "ebpf: starting the workload: %s",
				 strerror(errno));
	close(go);

	if (follow(&r) < 0) {
		/* Lost: the workload runs on; the manager takes over. */
		close(failfd);
		stop_source(&r);
		return 0;
	}
	if (weft_launch_failed(l, w, "ebpf", NULL, failfd))
		err = WEFT_EIO;
	close(failfd);
	if (l->verbose >= 1)
		fprintf(stderr,
			"weft ebpf: %llu records (%s), %llu malformed, %llu "
			"dropped\n",
			(unsigned long long)r.records,
			r.ld ? "private load" : "agent",
			(unsigned long long)r.malformed,
			(unsigned long long)l->dropped_events);
	stop_source(&r);
	return err;
}

/* WEFT_EBPF_AGENT: "off" loads the programs for every run; anything else
 * (the default) uses the node's agent, starting it when needed, and
 * loads privately only when the agent cannot be reached. */
int wb_run(weft_launch *l, weft_report *w)
{
	const char *v = getenv("WEFT_EBPF_AGENT");
	bool agent = !(v && (strcmp(v, "off") == 0 || strcmp(v, "0") == 0));
	return wb_trace(l, w, agent ? WB_SOURCE_AGENT : WB_SOURCE_PRIVATE,
			NULL);
}

/* `weft tracer enable ebpf`: a user who is not root runs the programs
 * through file capabilities on weft; tracefs mounted if it is not. */
static int wb_enable(const char *binary, FILE *out)
{
	int rc = weft_enable_file_caps(binary, "cap_bpf,cap_perfmon=ep", out);
	if (weft_enable_mount("/sys/kernel/tracing", "tracefs", 0x74726163,
			      out) != 0)
		rc = -1;
	return rc;
}


/* ---- Collecting a task weft did not launch (weft task-collect) ----
 *
 * The SPANK plugin's eBPF tasks: the node's agent (at agent_path, never
 * started from here) registers the task's pid, which the agent allows
 * because this process could trace it (same uid); records come as for a
 * wrapper. The task is not our child: its end is its pidfd's, its exit
 * status the caller's to set (slurmstepd tells it). Descendants that
 * outlive it are followed for a short while only: the step's end waits
 * for this record. */

/* After the task ended, how long its descendants are still followed. */
#define WB_COLLECT_AFTER_MS 2000

typedef struct wb_collect {
	wb_tracing r;
	bool stopped; /* stop_source done */
} wb_collect;

static int collect_open(weft_launch *l, weft_report *w,
			const weft_collect_opts *o, weft_collect **out,
			char *ready, size_t readysz, char *err, size_t errsz)
{
	*out = NULL;
	const char *agent_path = o->agent_path, *cwd = o->cwd;
	wb_collect *c = calloc(1, sizeof(*c));
	if (!c) {
		snprintf(err, errsz, "out of memory");
		return WEFT_ENOMEM;
	}
	wb_tracing *r = &c->r;
	*r = (wb_tracing){.l = l, .w = w, .agent = -1, .root_pidfd = -1};
	r->rt_off = wb_realtime_offset();
	pid_t pid = l->root_pid;
	r->agent = wb_agent_connect_path(agent_path);
	if (r->agent < 0) {
		snprintf(err, errsz,
			 "no weft agent at %s (%s): start `weft agent` on the "
			 "node",
			 agent_path, strerror(errno));
		free(c);
		return WEFT_EUNSUPPORTED;
	}
	char why[256] = "out of memory";
	int rc = -ENOMEM;
	if ((r->buf = malloc(WB_BATCH_BYTES)))
		rc = wb_agent_register(r->agent, pid, why, sizeof(why));
	if (rc != 0) {
		snprintf(err, errsz,
			 "the weft agent at %s did not take task pid %d: %s",
			 agent_path, (int)pid, why);
		stop_source(r);
		free(c);
		return WEFT_EUNSUPPORTED;
	}
	r->root_pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	pidset_add(&r->live, pid);
	weft_launch_add_root(l, pid, cwd, l->argv[0]);
	snprintf(ready, readysz, "ebpf");
	*out = (weft_collect *)c;
	return WEFT_OK;
}

/* The task is not ours to reap: its exit status comes from slurmstepd
 * (collect_end). */
static bool collect_wait(weft_collect *wc)
{
	wb_collect *c = (wb_collect *)wc;
	wb_tracing *r = &c->r;
	int64_t ended_at = -1;
	for (int rounds = 0;; rounds++) {
		if (source_wait(r, WB_POLL_MS) < 0)
			break;
		if (ended_at < 0) {
			struct pollfd p = {r->root_pidfd, POLLIN, 0};
			if (r->root_pidfd >= 0 && poll(&p, 1, 0) != 1 &&
			    kill(r->l->root_pid, 0) == 0)
				continue;
			ended_at = weft_mono_ms();
			r->root_reaped = true;
		}
		if (source_drain(r) < 0)
			break;
		if (rounds % 10 == 0)
			prune_live(r);
		if (r->live.n == 0 ||
		    weft_mono_ms() - ended_at >= WB_COLLECT_AFTER_MS)
			break;
	}
	if (r->l->lost)
		weft_report_warn(r->w, "tracing incomplete: %s",
				 r->l->lost_reason);
	else if (r->live.n)
		weft_report_warn(r->w,
				 "ebpf: %zu process%s of the task still ran "
				 "when it ended; what they did after that is "
				 "not recorded",
				 r->live.n, r->live.n == 1 ? "" : "es");
	if (r->l->verbose >= 1)
		fprintf(stderr,
			"weft ebpf: %llu records (agent), %llu malformed, %llu "
			"dropped\n",
			(unsigned long long)r->records,
			(unsigned long long)r->malformed,
			(unsigned long long)r->l->dropped_events);
	stop_source(r);
	c->stopped = true;
	return false;
}

static int collect_end(weft_collect *wc, int code)
{
	wb_collect *c = (wb_collect *)wc;
	c->r.l->exit_code = code < 0 ? 0 : code;
	return code;
}

static void collect_close(weft_collect *wc)
{
	wb_collect *c = (wb_collect *)wc;
	if (!c)
		return;
	if (!c->stopped)
		stop_source(&c->r);
	free(c);
}

const weft_backend weft_backend_ebpf = {
	.name = "ebpf",
	.preflight = wb_preflight,
	.check_command = wb_check_command,
	.run = wb_run,
	.enable = wb_enable,
	.collect_open = collect_open,
	.collect_wait = collect_wait,
	.collect_end = collect_end,
	.collect_close = collect_close,
	.collect_needs_agent = true,
};

