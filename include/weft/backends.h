/*
 * weft/backends.h - the tracers: the classifier every backend feeds, the
 * backend interface, preflight results, and the registry the CLI iterates.
 *
 * Backends do not classify. They normalize what they see into weft_event
 * (weft/schema.h) and feed the one classifier here, which keeps the
 * fd tables and turns events into per-path file records and process
 * records. The same event stream gives the same report whatever the backend.
 */
#ifndef WEFT_BACKENDS_H
#define WEFT_BACKENDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include <weft/schema.h>

/* ---- The classifier ---- */

typedef struct weft_classifier weft_classifier;

/* A classifier for one run. The backend seeds the root process with
 * weft_classifier_add_process (ppid 0) as soon as it knows its pid, before
 * feeding any of its events. Paths under any ignore prefix (e.g. the
 * project's .weft directory) never become file records. */
weft_classifier *weft_classifier_new(void);
void weft_classifier_free(weft_classifier *c);
int weft_classifier_ignore_prefix(weft_classifier *c, const char *abs_prefix);
/* fn(arg, path, ev) is called while events are fed, path absolute
 * (borrowed for the call): with ev the open, at the first open of a
 * regular file for reading that the run did not create or truncate, when
 * the open came with a stat (ev's st_* the identity of what the run found
 * there); with ev NULL, at the last close of a file the run wrote (what
 * is there may still change). fn NULL: none. */
typedef void (*weft_classifier_file_fn)(void *arg, const char *path,
					const weft_event *ev);
void weft_classifier_on_file(weft_classifier *c, weft_classifier_file_fn fn,
			     void *arg);
/* The environment variables whose values are recorded in clear
 * (record.env_values); every other value only as its hash. */
int weft_classifier_env_values(weft_classifier *c, const char *const *names,
			       size_t n);
/* Read /proc/PID/environ into a malloc'd block for an exec event
 * (enum weft_event_env: BLOCK, or UNKNOWN with *block NULL). expect_exe
 * not NULL: the read comes after the exec was reported, and the block is
 * vouched for only when the process still runs that executable. */
int weft_env_read_proc(pid_t pid, const char *expect_exe, char **block,
		       size_t *len);
/* Seed a process that already exists (attach, or the root): its cwd and
 * argv/exe as they are now. ppid 0 marks the root. */
int weft_classifier_add_process(weft_classifier *c, pid_t pid, pid_t ppid,
				const char *cwd, const char *exe,
				const char *const *argv, uint32_t argc);
/* Seed an already-open fd of a process (attach, inherited fds). */
int weft_classifier_add_fd(weft_classifier *c, pid_t pid, int fd,
			   const char *abs_path, int open_flags);
/* Feed one event. Events must arrive in the order the kernel completed
 * them per thread; order across unrelated processes does not matter.
 * Returns 0, or an error when out of memory (the event is then lost and
 * counted in dropped_events). */
int weft_classifier_feed(weft_classifier *c, const weft_event *ev);
/* Whether the classifier tracks thread pid, and an open fd of it (attach
 * seeds only what the events fed so far did not tell it). */
bool weft_classifier_has_task(const weft_classifier *c, pid_t pid);
bool weft_classifier_has_fd(const weft_classifier *c, pid_t pid, int fd);
/* True when a READ (or WRITE) on this fd can no longer change the report:
 * the open file is already marked read (written). A backend may use this
 * to skip work on the hot path; it is only an optimisation. */
bool weft_classifier_fd_read_known(const weft_classifier *c, pid_t pid, int fd);
bool weft_classifier_fd_write_known(const weft_classifier *c, pid_t pid,
				    int fd);
/* Finish: append the process and file records to *out (initialized by the
 * caller with weft_report_init; it may already hold warnings). Processes
 * still alive are recorded with exited false. Directory components are
 * resolved through symlinks where they exist on disk now (records that
 * turn out to name the same file are merged); file records are sorted by
 * path. Only paths the run read, wrote, created, deleted or renamed become
 * records. The classifier is spent: free it next. */
int weft_classifier_finish(weft_classifier *c, weft_report *out);

/* Cut the run into windows (one per Ray task, say): append to *out the
 * file records of what was done since the previous cut (or the start),
 * then forget it; fd tables and processes carry on, so a file opened
 * before the cut and read after it is read in the new window, and a file
 * one window wrote is an input of a later window that reads it. Process
 * records are not appended (finish gives them). */
int weft_classifier_cut(weft_classifier *c, weft_report *out);

/* Lexically normalize path against base (both may be NULL-free byte
 * strings; base absolute): join, drop "." and empty components, resolve
 * ".." textually. Writes at most outsz bytes; WEFT_ETOOBIG when longer. */
int weft_path_normalize(const char *base, const char *path, char *out,
			size_t outsz);

/* ---- Preflight ---- */

#define WEFT_PREFLIGHT_MAX_CHECKS 24
#define WEFT_PREFLIGHT_DETAIL_BYTES 512

typedef struct weft_check {
	char name[WEFT_MAX_NAME_BYTES];            /* "ptrace_scope" */
	bool ok;
	char detail[WEFT_PREFLIGHT_DETAIL_BYTES]; /* what was found */
} weft_check;

typedef struct weft_preflight {
	char backend[WEFT_MAX_NAME_BYTES];
	bool ok;                                   /* every check ok */
	char summary[WEFT_PREFLIGHT_DETAIL_BYTES];
	char command_checked[WEFT_MAX_PATH_BYTES];  /* "" when none */
	weft_check checks[WEFT_PREFLIGHT_MAX_CHECKS];
	size_t nchecks;
	char warnings[8][WEFT_PREFLIGHT_DETAIL_BYTES];
	size_t nwarnings;
} weft_preflight;

/* Start a result: zeroed, ok until a check fails. command may be NULL. */
void weft_preflight_begin(weft_preflight *p, const char *backend,
			  const char *command);
/* Append a check; its ok folds into p->ok. */
void weft_preflight_check(weft_preflight *p, const char *name, bool ok,
			  const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
void weft_preflight_warn(weft_preflight *p, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* The summary of a failed preflight: "BACKEND unavailable: CHECK: DETAIL"
 * of its first failing check. */
void weft_preflight_summarize_failure(weft_preflight *p);

/* ---- The backend interface ---- */

typedef struct weft_launch {
	char *const *argv;        /* the workload; argv[0] already resolved to
	                             an executable path by the caller */
	char *const *envp;        /* its environment */
	int verbose;              /* 0, 1 (-v), 2 (-vv): diagnostics to stderr */
	weft_classifier *classifier; /* where events go */
	/* The CPU the backend's pin_cpu chose (has_cpu), where run pins
	 * its tracing thread; the caller's own helper threads keep off it.
	 * Else the backend takes the CPU it is on. */
	bool has_cpu;
	int cpu;
	/* Filled by the backend: */
	pid_t root_pid;
	int exit_code;            /* the workload's: 0..255, 128+signal */
	int exec_errno; /* set by run when the workload could not be executed
			 * (then exit_code is a shell's 126 or 127) */
	uint64_t dropped_events;
	/* Set by run (or attach) when tracing was lost while the workload
	 * lives on (ring buffer reader died, agent gone, transport broken):
	 * the backend then returns 0 at once, without waiting for the
	 * workload, leaving root_pid (a child of this process) running and
	 * every tracing resource released. The manager attaches the next
	 * backend that can (fallback), or waits for the workload untraced. */
	bool lost;
	char lost_reason[WEFT_PREFLIGHT_DETAIL_BYTES];
	int64_t lost_at_ns;       /* CLOCK_REALTIME */
	/* Optional (NULL: none): shown every event just before it is fed,
	 * in the thread that feeds, with the classifier; it may cut the
	 * classifier there (weft_classifier_cut). `weft wrap --ray` cuts a
	 * Ray worker's run at task boundaries this way. */
	void (*observe)(void *arg, weft_classifier *c, const weft_event *ev);
	void *observe_arg;
} weft_launch;

/* What collecting a task weft did not launch needs besides the launch
 * (the collect_* entries of weft_backend). */
typedef struct weft_collect_opts {
	const char *cwd;        /* the task's working directory */
	const char *agent_path; /* the node agent's socket (collect_needs_agent) */
	int seize_wait_ms;      /* how long the task may take to allow its
				   tracer (PR_SET_PTRACER) */
} weft_collect_opts;
/* One task's collection, each backend's own. */
typedef struct weft_collect weft_collect;

/*
 * A backend is a const table. The manager (the CLI's run path) preflights,
 * then calls run; run launches the workload, traces it to its end and
 * stops (releases everything it set up) before returning. attach is the
 * same from the middle: the workload already runs, and every live process
 * of the tree rooted at l->root_pid is taken over (fd tables seeded from
 * /proc/PID/fd and fdinfo) and traced to the end.
 */
typedef struct weft_backend {
	const char *name;
	/* Fill *p with this backend's named checks. command is the workload
	 * to check compatibility with, or NULL. timeout_ms bounds the whole
	 * preflight (a check that hangs fails as a timeout). */
	int (*preflight)(weft_preflight *p, const char *command, int timeout_ms);
	/* The command's own checks of preflight (it exists, can run under
	 * this backend), in-process and without a probe: what a reused
	 * verdict adds for each command. NULL: no verdict is reused. */
	void (*check_command)(weft_preflight *p, const char *command);
	/* Write what this backend's verdict depends on besides weft's own
	 * binary and the machine (a library it loads: its identity, with
	 * weft_preflight_key_stat) to key. NULL when nothing. */
	void (*preflight_state)(FILE *key);
	/* Launch l->argv traced, feed l->classifier until every traced process
	 * has ended, set exit_code. Returns 0, or an error when the workload
	 * could not be launched (then it did not run). A tracing failure after
	 * launch never kills the workload; it becomes a warning, or sets
	 * l->lost (above). */
	int (*run)(weft_launch *l, weft_report *warnings_to);
	/* The CPU run will pin its tracing thread to, chosen now, given back
	 * in weft_launch.cpu (the caller's helper threads keep off it); -1
	 * when it will not pin. NULL: it never pins. */
	int (*pin_cpu)(void);
	/* Attach to the live tree rooted at l->root_pid (a child of this
	 * process) and trace it as run does, to its end. NULL when this
	 * backend cannot attach to live processes. */
	int (*attach)(weft_launch *l, weft_report *warnings_to);
	/* One-time machine setup (`weft tracer enable MODE`) for binary (the
	 * weft executable): say on out what changed or was already so.
	 * Idempotent; 0, or -1 after saying what was not permitted. NULL when
	 * the backend needs no setup. */
	int (*enable)(const char *binary, FILE *out);

	/*
	 * Collecting a task weft did not launch: `weft task-collect`
	 * (slurm/collect.c), for the tasks of `srun --weft`. l->root_pid is
	 * the task (about to exec, not a child of weft), l->argv its
	 * command, l->classifier where its events go. NULL collect_open:
	 * this backend cannot.
	 *
	 * collect_open puts the tracer in place before the task execs;
	 * ready gets what the task must be told, the words after "ok " of
	 * the collector's answer ("ptrace", "preload SOCKPATH"); err why
	 * not. While the task runs, collect_fd (NULL or -1: none) is polled
	 * for POLLIN and collect_pump (may be NULL) takes what is queued.
	 * collect_wait (NULL: the caller polls until the task's pidfd says
	 * it ended) takes the records until the task, and what the backend
	 * follows of its descendants, ended; true when the backend knows
	 * the exit status itself (l->exit_code, as the task's tracer).
	 * collect_end records the task's end with code (0..255,
	 * 128+signal; -1: unknown) and returns the code recorded (-1: none
	 * known; l->exit_code is then 0). collect_close takes the rest,
	 * warns in the report about what is incomplete, and frees c; it may
	 * come straight after collect_open (the task went on untraced).
	 */
	int (*collect_open)(weft_launch *l, weft_report *warnings_to,
			    const weft_collect_opts *o, weft_collect **out,
			    char *ready, size_t readysz, char *err,
			    size_t errsz);
	int (*collect_fd)(const weft_collect *c);
	void (*collect_pump)(weft_collect *c);
	bool (*collect_wait)(weft_collect *c);
	int (*collect_end)(weft_collect *c, int code);
	void (*collect_close)(weft_collect *c);
	/* collect_open needs weft_collect_opts.agent_path. */
	bool collect_needs_agent;
} weft_backend;

/* Feed one event of a run to l->classifier (with -vv, print it on stderr
 * first, tagged with backend); a classifier failure counts in
 * l->dropped_events. True when fed. */
bool weft_launch_feed(weft_launch *l, const char *backend,
		      const weft_event *ev);

/* Every backend built in, in auto order (eBPF, preload, ptrace); NULL
 * terminated. */
extern const weft_backend *const weft_backends[];
const weft_backend *weft_backend_find(const char *name);
/* How many backends are registered. */
size_t weft_backends_count(void);

/* ---- Machine setup helpers for enable (enable.c) ---- */

/* Give binary exactly the file capabilities caps_text ("cap_bpf,
 * cap_perfmon=ep", cap_from_text syntax) unless it has them already. */
int weft_enable_file_caps(const char *binary, const char *caps_text,
			  FILE *out);
/* Mount fstype at path unless a filesystem with that statfs magic is
 * there already. */
int weft_enable_mount(const char *path, const char *fstype,
		      unsigned long magic, FILE *out);

/* ---- The manager (manager.c) ---- */

/* Preflight b in a child process (its own process group), bounded by
 * timeout_ms from outside: a backend that hangs or crashes fails with a
 * "timeout" or "preflight" check. Never reaps a child of the caller. */
void weft_preflight_run(const weft_backend *b, weft_preflight *p,
			const char *command, int timeout_ms);
/* weft_preflight_run's verdict for b, reused while the machine state it
 * depends on is unchanged (preflight_reuse.c: the boot, the kernel, the
 * weft binary, the credentials, namespaces, mounts, the sysctls that
 * gate tracing, WEFT_* variables, b->preflight_state), then the
 * command's own checks. Only passed verdicts are kept, in a directory
 * only the user can write; anything else probes as weft_preflight_run. */
void weft_preflight_reuse(const weft_backend *b, weft_preflight *p,
			  const char *command, int timeout_ms);
/* Preflight the registered backends in registry (auto) order into
 * results[i] (one per backend, the caller's; select.c); with first_only,
 * stop after the first that passes (the rest get an empty backend name);
 * with reuse, a passed verdict is reused while the machine is unchanged
 * (weft_preflight_reuse). Returns the index of the first that passed, or
 * -1 when none did. */
int weft_preflight_auto(weft_preflight *results, const char *command,
			int timeout_ms, bool first_only, bool reuse);
/* "ebpf: SUMMARY; preload: SUMMARY" of the backends before selected (all
 * when selected is -1) that were checked and failed, into buf. */
void weft_preflight_rejected(const weft_preflight *results, int selected,
			     char *buf, size_t bufsz);
/* "TAG: PATH dev ino size mtime ctime mode uid gid" of path to key. */
void weft_preflight_key_stat(FILE *key, const char *tag, const char *path);
/* Run l under b to the workload's end. When b loses tracing mid-run
 * (l->lost) and fallback_enabled, the next backend in auto order that can
 * attach and passes its preflight takes over the live tree; the report
 * gets a warning with the window. Otherwise the workload runs on
 * untraced, and the report says tracing was incomplete and why. The
 * workload is never started twice. Returns b->run's launch error, or 0. */
int weft_manager_trace(const weft_backend *b, weft_launch *l,
		       weft_report *r, bool fallback_enabled,
		       int preflight_timeout_ms);

/* The tracer log (.weft/tracer.log with -v/-vv): lines with a UTC time
 * and pid, written when level <= the level set; f NULL turns it off. */
void weft_log_set(FILE *f, int level);
void weft_log(int level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* ---- The node agent (backends/ebpf/agent.c) ----
 *
 * `weft agent`: one load of the eBPF programs per node, shared by every
 * wrapper on it. Wrappers connect to its Unix socket, register the root
 * pid of their workload (allowed only for processes the caller could
 * ptrace itself) and receive the records of that tree. Started on demand
 * by the first wrapper; exits after an idle timeout with no client. */

typedef struct weft_agent_options {
	const char *socket_path; /* NULL: the default for this user */
	int idle_timeout_ms;     /* exit after this long without a client;
				    0: never */
	size_t ringbuf_bytes;    /* 0: the default */
	int verbose;
} weft_agent_options;

/* Default idle timeout (WEFT_AGENT_IDLE_MS overrides). */
#define WEFT_AGENT_IDLE_MS_DEFAULT 60000

/* Serve until idle. Returns 0, or a weft_err after saying on err what
 * failed (WEFT_EUNSUPPORTED when this weft has no eBPF backend). */
int weft_agent_serve(const weft_agent_options *o, FILE *err);

#endif /* WEFT_BACKENDS_H */
