/*
 * ebpf_internal.h - what the user-space files of the eBPF backend share:
 * loading and attaching the programs (load.c), decoding ring-buffer
 * records into weft_events (record.c), a traced run fed either by a
 * private load or by the node agent (run.c), the agent's wire protocol
 * (agent.c serves it, agent_client.c speaks it) and preflight
 * (ebpf_preflight.c).
 */
#ifndef WEFT_EBPF_INTERNAL_H
#define WEFT_EBPF_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <weft/backends.h>
#include "weft_ebpf.h"

/* ---- load.c: the programs and maps of one load ---- */

/* Default ring buffer: 4 MiB (WEFT_EBPF_RINGBUF_BYTES overrides; a power
 * of two, at least one page). */
#define WB_RINGBUF_DEFAULT (4u * 1024 * 1024)

typedef struct wb_load wb_load;

/* A record from the ring buffer: data/len as the kernel wrote it. */
typedef int (*wb_record_fn)(void *ctx, const void *data, size_t len);

typedef struct wb_load_stats {
	bool agent;       /* served by the node agent (no load of ours) */
	double load_ms;   /* open + verify + load */
	double attach_ms; /* attach every program, one after another */
	unsigned attached;
} wb_load_stats;

/* Load and attach; on failure *err says which step and why. fn gets
 * every record (run on the caller's thread, from wb_drain). */
int wb_load_open(wb_load **out, size_t ringbuf_bytes, wb_record_fn fn,
		 void *ctx, wb_load_stats *stats, char *err, size_t errsz);
void wb_load_close(wb_load *ld);
/* Which syscall programs a load uses: false the two raw tracepoints
 * (tp_btf/sys_enter, sys_exit; the default), true one per recorded
 * syscall (WEFT_EBPF_SYSCALLS=each). */
bool wb_syscalls_each(void);
/* Ring buffer size from WEFT_EBPF_RINGBUF_BYTES, or the default. */
size_t wb_ringbuf_bytes(void);
/* Trace pid (a single-threaded process: its children follow in the
 * kernel) for registration owner (not 0); stop tracing everything of
 * owner. */
int wb_track(wb_load *ld, pid_t pid, uint32_t owner);
void wb_untrack_owner(wb_load *ld, uint32_t owner);
/* Attach or detach the syscall programs (the process tracepoints stay):
 * the agent detaches them while nobody is registered, so that an idle
 * agent costs other processes nothing. With one program per syscall
 * (WEFT_EBPF_SYSCALLS=each) a detach is a no-op: each tracepoint's
 * teardown waits for a kernel grace period (0.5-7 s for all of them), so
 * they stay attached until the load is closed. 0 or -errno. */
int wb_syscalls_attach(wb_load *ld, bool on);
/* Consume everything the kernel has written so far. */
int wb_drain(wb_load *ld);
/* The fd to add to an epoll set (readable on wakeups). */
int wb_epoll_fd(wb_load *ld);
/* Records of owner's slot (owner % WB_MAX_OWNERS) lost in the kernel so
 * far (summed over CPUs). */
uint64_t wb_dropped(wb_load *ld, uint32_t owner);

/* ---- record.c: ring-buffer records to weft_event ---- */

typedef struct wb_decoded {
	weft_event ev;
	uint32_t owner;
	uint16_t rflags;
	/* argv pointers into the record (argc of them); owned. */
	const char **argv;
	uint32_t argv_cap;
} wb_decoded;

/* Decode one record (len bytes, from the kernel or the agent's socket)
 * into d->ev, whose strings point into buf. Returns 0, WEFT_ETRUNC or
 * WEFT_EINVAL for a malformed record, WEFT_ENOMEM. Frees nothing:
 * wb_decoded_release frees the argv array once done with d. */
int wb_record_decode(const uint8_t *buf, size_t len, wb_decoded *d);
void wb_decoded_release(wb_decoded *d);
/* CLOCK_REALTIME - CLOCK_MONOTONIC now, in ns (record times are
 * monotonic). */
int64_t wb_realtime_offset(void);

/* ---- agent protocol (SOCK_SEQPACKET: one message per packet) ---- */

enum wb_msg_type {
	WB_MSG_REGISTER = 1,   /* client: trace the tree of pid */
	WB_MSG_DEREGISTER = 2, /* client: stop tracing pid's tree */
	WB_MSG_SYNC = 3,       /* client: drain, then answer SYNC */
	WB_MSG_REPLY = 4,      /* agent: status of REGISTER / DEREGISTER */
	WB_MSG_SYNCED = 5,     /* agent: every record before SYNC was sent */
};

/* Control messages; records travel in batches (a u32 length, then the
 * record, repeated; at most WB_BATCH_BYTES a packet), told apart by size:
 * a control message is smaller than any batch. */
#define WB_BATCH_BYTES (64 * 1024)
/* Bumped whenever the protocol, the records or what the kernel side
 * reports change (4: an exec resets the per-fd bits): a wrapper never
 * talks to an agent of another weft build's format. */
#define WB_PROTO_VERSION 4

typedef struct wb_msg {
	uint32_t type; /* enum wb_msg_type */
	int32_t pid;
	int32_t status;   /* REPLY: 0 or -errno */
	uint32_t version; /* REGISTER: WB_PROTO_VERSION */
	uint64_t dropped; /* REPLY/SYNCED: records the agent lost */
	char text[64];    /* REPLY: why it failed */
} wb_msg;

_Static_assert(sizeof(wb_msg) < sizeof(uint32_t) + sizeof(struct wb_record),
	       "control messages must be smaller than records");

/* The socket path for this user: $XDG_RUNTIME_DIR/weft/agent.sock, or
 * /run/weft/agent.sock for root (WEFT_AGENT_SOCKET overrides). */
int wb_agent_socket_path(char *out, size_t outsz);

/* agent_client.c: connect to the agent, starting it when it is not
 * running (unless start is false). Returns a connected fd or -1. */
int wb_agent_connect(bool start, int verbose);
/* Register pid; 0, or -errno with why filled. */
int wb_agent_register(int fd, pid_t pid, char *why, size_t whysz);
/* Connect to the agent at path (never starting one); fd or -1. */
int wb_agent_connect_path(const char *path);

/* ---- rename_hint.c: whether a rename's new name existed ---- */

typedef struct wb_hints wb_hints;

/* In the forked child before execve (async-signal-safe): install the
 * seccomp filter that stops renames for notification; the listener fd,
 * or -1 with errno. */
int wb_hints_install(void);
/* Pass the listener from the child to the parent over a Unix socket. */
int wb_hints_send_fd(int sock, int fd);
int wb_hints_recv_fd(int sock);
/* Serve the listener on a thread of its own (takes the fd). */
wb_hints *wb_hints_start(int listener);
/* The hint for the last rename of thread tid (and forget it); unknown
 * when none or h is NULL. */
int8_t wb_hints_take(wb_hints *h, pid_t tid);
/* The run is over: join the thread, or leave it serving processes that
 * still hold the filter. */
void wb_hints_stop(wb_hints *h);

/* ---- procfs.c ---- */

struct sockaddr_un;
/* CapEff of pid (0: this process); 0 when unreadable. */
uint64_t wb_cap_effective(pid_t pid);
#define WB_CAP_SYS_PTRACE 19
#define WB_CAP_SYS_ADMIN 21
#define WB_CAP_PERFMON 38
#define WB_CAP_BPF 39
/* A SOCK_SEQPACKET Unix socket (SOCK_CLOEXEC | flags) and sa, the
 * address of path, for the agent's socket; -1 with errno (ENAMETOOLONG
 * when path is too long). */
int wb_unix_socket(const char *path, int flags, struct sockaddr_un *sa);

/* ---- agent_access.c: who may register what ---- */

/* A process's credentials as /proc shows them. */
typedef struct wb_creds {
	pid_t pid, ppid;
	uint64_t start;          /* start time (stat field 22): the pid's
				    identity across reuse */
	uint32_t uid[4], gid[4]; /* real, effective, saved, filesystem */
	uint64_t groups_hash;    /* the supplementary groups */
	uint64_t cap_eff, cap_prm;
	bool dumpable; /* its /proc files belong to its euid and egid */
	bool ended;    /* a zombie: nobody holds these credentials */
} wb_creds;

/* Yama's ptrace_scope values. */
#define WB_YAMA_RELATIONAL 1 /* only descendants (or CAP_SYS_PTRACE) */
#define WB_YAMA_ADMIN 2      /* only with CAP_SYS_PTRACE */
#define WB_YAMA_NO_ATTACH 3  /* nobody */

/* Read pid's credentials: 0, or -ESRCH (no such process) or -EPROTO
 * (a /proc this code cannot read). */
int wb_creds_read(pid_t pid, wb_creds *c);
/* The same process with the same credentials (dumpable and state
 * aside). */
bool wb_creds_same(const wb_creds *a, const wb_creds *b);
/* /proc/sys/kernel/yama/ptrace_scope; 0 without Yama. */
int wb_ptrace_scope(void);
/* Whether ancestor is a parent, grandparent... of pid. */
bool wb_is_ancestor(pid_t ancestor, pid_t pid);
/* Whether caller could PTRACE_ATTACH target under the kernel's rules
 * (ids, capability subset, dumpable, Yama scope; ancestor: the caller is
 * one of the target's); 0, or -EPERM with why said. */
int wb_may_ptrace(const wb_creds *caller, const wb_creds *target, int scope,
		  bool ancestor, char *why, size_t whysz);

/* ---- run.c ---- */

/* Trace l under a private load or the agent (per WEFT_EBPF_AGENT). */
int wb_run(weft_launch *l, weft_report *w);
/* Where a run's records come from. */
enum wb_source {
	WB_SOURCE_PRIVATE,     /* a load of its own */
	WB_SOURCE_AGENT,       /* the agent, started when needed */
	WB_SOURCE_AGENT_IF_UP, /* the agent when one answers, else private */
};
/* The same with an explicit source, for preflight's probe; stats (may be
 * NULL) say which it got and what the load cost. */
int wb_trace(weft_launch *l, weft_report *w, enum wb_source src,
	     wb_load_stats *stats);

/* ebpf_preflight.c */
int wb_preflight(weft_preflight *p, const char *command, int timeout_ms);
/* preflight's checks of the command alone (weft_backend.check_command). */
void wb_check_command(weft_preflight *p, const char *command);

#endif /* WEFT_EBPF_INTERNAL_H */
