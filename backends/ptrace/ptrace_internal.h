/*
 * ptrace_internal.h - what the files of the ptrace backend share: the
 * seccomp filter (seccomp.c), the table of traced threads (threads.c),
 * reading tracee memory and /proc (tracee.c), turning syscall stops into
 * weft_events (decode.c), and the tracing loop (ptrace.c) that preflight
 * (ptrace_preflight.c) also drives for its probe run.
 */
#ifndef WEFT_PTRACE_INTERNAL_H
#define WEFT_PTRACE_INTERNAL_H

#include <sched.h>
#include <time.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <linux/filter.h>

#include <weft/backends.h>

/* The syscall ABI this build traces; the filter lets every other ABI
 * (i386 and x32 on x86_64) through untraced. */
#if defined(__x86_64__)
#define PT_AUDIT_ARCH 0xc000003eu /* AUDIT_ARCH_X86_64 */
#define PT_ARCH_NAME "x86_64"
#elif defined(__aarch64__)
#define PT_AUDIT_ARCH 0xc00000b7u /* AUDIT_ARCH_AARCH64 */
#define PT_ARCH_NAME "aarch64"
#else
#define PT_AUDIT_ARCH 0u
#define PT_ARCH_NAME "unsupported"
#endif

/* The kernel's struct ptrace_syscall_info (linux/ptrace.h), copied because
 * that header and glibc's sys/ptrace.h do not mix. */
struct pt_syscall_info {
	uint8_t op;
	uint8_t pad[3];
	uint32_t arch;
	uint64_t instruction_pointer;
	uint64_t stack_pointer;
	union {
		struct {
			uint64_t nr;
			uint64_t args[6];
		} entry;
		struct {
			int64_t rval;
			uint8_t is_error;
		} exit;
		struct {
			uint64_t nr;
			uint64_t args[6];
			uint32_t ret_data;
		} seccomp;
	};
};
#define PT_SYSCALL_INFO_ENTRY 1
#define PT_SYSCALL_INFO_EXIT 2
#define PT_SYSCALL_INFO_SECCOMP 3

/* ---- seccomp.c ---- */

/* Room for the whole filter; pt_filter_build fails if it would not fit. */
#define PT_FILTER_MAX 128

typedef struct pt_filter {
	struct sock_filter insns[PT_FILTER_MAX];
	unsigned short len;
} pt_filter;

/* Build the filter (in the parent: the child must not allocate). */
int pt_filter_build(pt_filter *f);
/* Install it in the calling process; async-signal-safe, for the forked
 * child before execve. Returns 0 or -errno. */
int pt_filter_install(const pt_filter *f, bool no_new_privs);

/* ---- threads.c: traced threads by tid ---- */

/* A syscall seen at its seccomp stop whose exit stop was requested: the
 * event is complete but for ret (and, for opens, the stat). */
typedef struct pt_pending {
	weft_event ev;
	int nr;      /* syscall number; -1 when nothing is pending */
	char *paths; /* 2 * PT_PATH_BUF bytes, owned, allocated on first
			use; ev.path and ev.path2 point into it */
} pt_pending;

#define PT_PATH_BUF (WEFT_MAX_PATH_BYTES + 1)

typedef struct pt_thread {
	pid_t tid;
	pid_t tgid;       /* 0 until known (child stopped before the
			     parent's fork event) */
	bool started;     /* its first stop was seen */
	bool announced;   /* its FORK was fed: it may run */
	bool dead;        /* it ended before it was announced */
	int exit_code;    /* when dead */
	pid_t held_ppid;  /* parent process read from /proc when it was
			     held (its first stop came first) */
	bool clone_known; /* clone_flags hold the flags of the fork-like
			     syscall this thread is in */
	uint64_t clone_flags;
	pt_pending pending;
	bool waiting; /* in a blocking wait4/waitid: it competes for no CPU */
	uint32_t window;       /* pt_run.window when window_stops counted */
	uint32_t window_stops; /* its stops in that window */
} pt_thread;

typedef struct pt_threads {
	pt_thread **slots; /* open addressing, linear probing, NULL empty */
	size_t cap;        /* power of two */
	size_t n;
} pt_threads;

int pt_threads_init(pt_threads *t);
void pt_threads_free(pt_threads *t);
pt_thread *pt_threads_get(const pt_threads *t, pid_t tid);
/* A new zeroed entry for tid (which must not be present); NULL on ENOMEM. */
pt_thread *pt_threads_add(pt_threads *t, pid_t tid);
void pt_threads_remove(pt_threads *t, pid_t tid);

/* ---- tracee.c: tracee memory and /proc ---- */

/* Read a NUL-terminated string at addr of pid into buf (bufsz bytes,
 * including the NUL). Returns its length, or -1 when unreadable or longer
 * than bufsz - 1. Crosses pages one at a time so that a string ending
 * before an unmapped page is still read. */
ssize_t pt_read_string(pid_t pid, uint64_t addr, char *buf, size_t bufsz);
/* Read exactly len bytes; 0 or -1. */
int pt_read_mem(pid_t pid, uint64_t addr, void *buf, size_t len);
/* Argv of pid from /proc/PID/cmdline: *argv is an array of pointers into
 * one allocation (*block); free both with free(). Returns argc or -1. */
int pt_read_cmdline(pid_t pid, char ***argv, char **block);
/* readlink /proc/PID/exe into buf; 0 or -1. */
int pt_read_exe(pid_t pid, char *buf, size_t bufsz);
/* The thread group of tid from /proc/TID/status; 0 when unknown. */
pid_t pt_read_tgid(pid_t tid);
/* The pid tracing tid, from /proc/TID/status; 0 when none or unknown. */
pid_t pt_read_tracer(pid_t tid);

/* ---- the run (ptrace.c) and the decoder (decode.c) ---- */

typedef struct pt_stats {
	uint64_t seccomp_stops; /* stops with PTRACE_SYSCALL_INFO_SECCOMP */
	uint64_t exit_stops;    /* with PTRACE_SYSCALL_INFO_EXIT */
	uint64_t info_errors;   /* PTRACE_GET_SYSCALL_INFO failed or had an
				   unexpected op */
	uint64_t skipped;       /* exit stops saved by *_known */
	uint64_t events;        /* events fed */
	uint64_t signals;       /* signals passed on */
} pt_stats;

typedef struct pt_options {
	int pin_cpu;       /* -1: no pinning; else the tracer runs on it */
	bool pin_workload; /* and the root tracee (and what it starts) too */
	bool unpin_when_parallel; /* undo both while more than one task
				     of the workload can run */
} pt_options;

typedef struct pt_run {
	weft_launch *l;
	weft_report *warnings;
	pt_threads threads;
	pt_stats stats;
	size_t live;     /* traced threads not yet ended */
	size_t held;     /* of those, stopped until their parent's event */
	bool degraded;   /* after an internal error: keep the workload
			    running, feed nothing */
	bool warned_abi; /* a program of another ABI was reported */
	bool syscall_mode; /* attached mid-run: PTRACE_SYSCALL, no filter */
	size_t waiting;    /* of the live threads, those t->waiting */
	bool pin_auto;     /* pinned while one task can run, or while the
			      tasks that can stop often (ptrace.c) */
	bool pinned_now;   /* every task and the tracer on pin_mask */
	cpu_set_t pin_mask;  /* the tracer's CPU */
	cpu_set_t free_mask; /* the affinity to give back */
	/* While more than one task can run: the current window (its
	 * number, start, and the most stops one task made in it), and a
	 * timer that ends windows while pinned (pin_update). */
	bool contended;
	uint32_t window;
	int64_t window_ns;
	uint32_t window_most;
	bool has_timer, timer_on;
	timer_t timer;
} pt_run;

/* What to do with a thread after its seccomp stop. */
enum pt_resume {
	PT_RESUME_CONT,    /* nothing more to see: PTRACE_CONT */
	PT_RESUME_SYSCALL, /* the exit stop is needed: PTRACE_SYSCALL */
};

/* Feed one event; a classifier failure counts as a dropped event. */
void pt_feed(pt_run *r, weft_event *ev);
/* The seccomp stop of t: feed what is complete at entry, or fill
 * t->pending and ask for the exit stop. Returns enum pt_resume, or a
 * weft_err on an internal error. */
int pt_decode_entry(pt_run *r, pt_thread *t,
		    const struct pt_syscall_info *info);
/* The exit stop of t: complete t->pending with ret and feed it. */
void pt_decode_exit(pt_run *r, pt_thread *t, int64_t ret);

/* The whole traced run with options; weft_backend_ptrace.run is this with
 * options from the environment. stats may be NULL. */
int pt_trace(weft_launch *l, weft_report *warnings_to, const pt_options *o,
	     pt_stats *stats);

/* Serve stops until every traced thread has ended. */
void pt_loop(pt_run *r);
/* Seed the classifier with pid's open regular files from /proc/PID/fd
 * and fdinfo (flags, close-on-exec). Standard streams are skipped, and
 * with only_unknown so is every fd the classifier already tracks. */
void pt_seed_fds(pt_run *r, pid_t pid, bool only_unknown);
/* attach.c: weft_backend_ptrace.attach. */
int pt_attach(weft_launch *l, weft_report *warnings_to);
/* Collecting a task weft did not launch (attach.c; weft_backend's
 * collect_* entries): seize it, trace it to its end. */
int pt_collect_open(weft_launch *l, weft_report *w, const weft_collect_opts *o,
		    weft_collect **out, char *ready, size_t readysz, char *err,
		    size_t errsz);
bool pt_collect_wait(weft_collect *c);
int pt_collect_end(weft_collect *c, int code);
void pt_collect_close(weft_collect *c);


/* ptrace_preflight.c: weft_backend_ptrace.preflight. */
int pt_preflight(weft_preflight *p, const char *command, int timeout_ms);
/* preflight's checks of the command alone (weft_backend.check_command). */
void pt_check_command(weft_preflight *p, const char *command);

#endif /* WEFT_PTRACE_INTERNAL_H */
