/*
 * weft_backends.h - the tracers: the classifier every backend feeds, the
 * backend interface, preflight results, and the registry the CLI iterates.
 *
 * Backends do not classify. They normalize what they see into weft_event
 * (schema/weft_schema.h) and feed the one classifier here, which keeps the
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

#include "weft_schema.h"

struct stat;
struct utsname;

/* ---- The classifier ---- */

typedef struct weft_classifier weft_classifier;

/* A classifier for one run. The backend seeds the root process with
 * weft_classifier_add_process (ppid 0) as soon as it knows its pid, before
 * feeding any of its events. Paths under any ignore prefix (e.g. the
 * project's .weft directory) never become file records. */
weft_classifier *weft_classifier_new(void);
void weft_classifier_free(weft_classifier *c);
int weft_classifier_ignore_prefix(weft_classifier *c, const char *abs_prefix);
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
/* The verdict: when every check passed, the summary "BACKEND works:
 * SYSNAME RELEASE MACHINE, " fmt " in N ms" (what works, how the probe went
 * and how long the preflight took since start), else
 * weft_preflight_summarize_failure. */
void weft_preflight_conclude(weft_preflight *p, const struct utsname *u,
			     int64_t start, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* The "platform" check (Linux, and its release); u is uname's answer.
 * Returns whether this is Linux. */
bool weft_preflight_platform(weft_preflight *p, struct utsname *u);
/* stat(2) of the command for the "command" check: a missing one fails
 * it. */
bool weft_preflight_stat_command(weft_preflight *p, const char *command,
				 struct stat *st);
/* The command is a regular file this user may execute, else the "command"
 * check fails: "not an executable file". */
bool weft_preflight_command_executable(weft_preflight *p, const char *command,
				       const struct stat *st);
/* A preflight probe's directory: a fresh $TMPDIR (or /tmp) directory
 * weft-BACKEND-probe-XXXXXX, resolved into real (PATH_MAX bytes), holding
 * "src", a small file for the probe to read. Returns 0, or -1 with why
 * (the directory removed again). */
int weft_probe_dir_make(const char *backend, char *real, char *why,
			size_t whysz);
/* Remove a probe directory: its src, tmp and dst, then itself. */
void weft_probe_dir_remove(const char *real);
/* Read a small text file (/proc, /sys) into buf, NUL-terminated, trailing
 * newlines dropped. Returns its length, or -1 when unreadable. */
ssize_t weft_read_small_file(const char *path, char *buf, size_t bufsz);

/* ---- The backend interface ---- */

typedef struct weft_launch {
	char *const *argv;        /* the workload; argv[0] already resolved to
	                             an executable path by the caller */
	char *const *envp;        /* its environment */
	int verbose;              /* 0, 1 (-v), 2 (-vv): diagnostics to stderr */
	weft_classifier *classifier; /* where events go */
	/* Filled by the backend: */
	pid_t root_pid;
	int exit_code;            /* the workload's: 0..255, 128+signal */
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
	/* Attach to the live tree rooted at l->root_pid (a child of this
	 * process) and trace it as run does, to its end. NULL when this
	 * backend cannot attach to live processes. */
	int (*attach)(weft_launch *l, weft_report *warnings_to);
	/* One-time machine setup (`weft tracer enable MODE`) for binary (the
	 * weft executable): say on out what changed or was already so.
	 * Idempotent; 0, or -1 after saying what was not permitted. NULL when
	 * the backend needs no setup. */
	int (*enable)(const char *binary, FILE *out);
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

/* ---- Collecting a task weft did not launch (preload/collector.c) ----
 *
 * `weft task-collect`, for the tasks weft_spank.so preloads: l->root_pid is
 * the task (about to exec, not a child of weft), l->argv its command,
 * l->classifier where its events go. open binds the socket (its path into
 * sock: the task's WEFT_PRELOAD_SOCK) and seeds the root with cwd; pump
 * takes what is queued (poll weft_preload_collect_fd for POLLIN); exit
 * records the root's end with code (0..255, 128+signal; -1: unknown, take
 * the library's own report of it) and returns the code recorded (-1 when
 * none is known; exit_code is then 0); close takes the
 * rest, warns in the report about what is incomplete, removes the socket
 * and frees. */
typedef struct weft_preload_collect weft_preload_collect;
int weft_preload_collect_open(weft_launch *l, weft_report *warnings_to,
			      const char *cwd, char *sock, size_t socksz,
			      weft_preload_collect **out);
int weft_preload_collect_fd(const weft_preload_collect *c);
void weft_preload_collect_pump(weft_preload_collect *c);
int weft_preload_collect_exit(weft_preload_collect *c, int code);
void weft_preload_collect_close(weft_preload_collect *c);

/* The same for ptrace (ptrace/attach.c): open seizes l->root_pid (the
 * task, which allowed it with PR_SET_PTRACER where Yama asks; an EPERM is
 * retried for up to wait_ms) and seeds it from /proc; err says why not.
 * run serves its stops with PTRACE_SYSCALL until it and every descendant
 * ended (l->exit_code set), then frees c. */
typedef struct weft_ptrace_collect weft_ptrace_collect;
int weft_ptrace_collect_open(weft_launch *l, weft_report *warnings_to,
			     int wait_ms, weft_ptrace_collect **out,
			     char *err, size_t errsz);
void weft_ptrace_collect_run(weft_ptrace_collect *c);

/* The same for eBPF (ebpf/run.c): open registers l->root_pid with the
 * node agent at agent_path (never starting one) and seeds it with cwd;
 * err says why not. run follows its records until it ended (its pidfd)
 * and, for a short while, its descendants; exit_code is the caller's to
 * set. Then frees c. */
typedef struct weft_ebpf_collect weft_ebpf_collect;
int weft_ebpf_collect_open(weft_launch *l, weft_report *warnings_to,
			   const char *agent_path, const char *cwd,
			   weft_ebpf_collect **out, char *err, size_t errsz);
void weft_ebpf_collect_run(weft_ebpf_collect *c);

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

/* A preflight probe's launch of argv: a fixed environment (LC_ALL=C,
 * PATH=/usr/bin:/bin), a fresh report and a classifier of its own.
 * Returns 0 or WEFT_ENOMEM; either way the caller frees l->classifier and
 * releases rep. */
int weft_probe_launch(weft_launch *l, weft_report *rep, char *const *argv);

/* CLOCK_MONOTONIC in ms, for deadlines and durations (manager.c). */
int64_t weft_mono_ms(void);

/* The tracer log (.weft/tracer.log with -v/-vv): lines with a UTC time
 * and pid, written when level <= the level set; f NULL turns it off. */
void weft_log_set(FILE *f, int level);
void weft_log(int level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif /* WEFT_BACKENDS_H */
