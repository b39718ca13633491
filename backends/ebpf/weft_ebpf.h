/*
 * weft_ebpf.h - what the kernel side (weft.bpf.c) and user space (ebpf.c)
 * of the eBPF backend share: the record the programs put on the ring
 * buffer, the per-(tgid, fd) state bits, and the map sizes.
 *
 * A record is a fixed header followed by up to three strings (path, path2,
 * argv block: NUL-separated arguments) whose lengths the header gives; its
 * kind is a weft_event_kind (weft/schema.h) so user space only
 * copies fields. Records are variable-size: a 20-byte unlink costs 20
 * bytes of ring buffer plus the header, not 4 KiB.
 *
 * Included by the BPF program (where vmlinux.h gives the types) and by
 * user space (where stdint.h does).
 */
#ifndef WEFT_EBPF_H
#define WEFT_EBPF_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

/* Longest path string read from a process, NUL included (PATH_MAX). */
#define WB_PATH_MAX 4096
/* Bytes of an exec's argument block kept (the rest is marked truncated
 * and read from /proc by user space when the process is still there). */
#define WB_ARGV_MAX 8192
/* Scratch per CPU: two paths and an argv block. A power of two, so an
 * offset masked with WB_DATA_MAX - 1 is in bounds for the verifier. */
#define WB_DATA_MAX 16384

/* Registrations at once (the agent's connections; a private load uses
 * one). An owner id maps to slot owner % WB_MAX_OWNERS of the owners
 * array, which holds the id while it is registered. */
#define WB_MAX_OWNERS 1024

/* Flags of wb_record.rflags. */
#define WB_R_ARGV_TRUNCATED 1u /* the argv block was cut at WB_ARGV_MAX */
#define WB_R_HAS_STAT 2u       /* st_* are valid */
#define WB_R_SECURE 4u         /* an exec that gained privileges (AT_SECURE:
				  set-user-ID, set-group-ID, file
				  capabilities): the process and its
				  children are traced no further */

/* Per-process fd state (task storage of the thread-group leader): a read
 * bit and a write bit for each of the first WB_FD_BITS fds; an fd beyond
 * has no state, so each of its reads and writes is reported. */
#define WB_FD_READ 1u
#define WB_FD_WRITE 2u
#define WB_FD_BITS 1024
#define WB_FD_WORDS (WB_FD_BITS / 64)

struct wb_fdbits {
	__u64 rd[WB_FD_WORDS];
	__u64 wr[WB_FD_WORDS];
};

/* A syscall's arguments between its entry and its exit. */
struct wb_pending {
	__u64 args[5];
	__s64 nr; /* -1: nothing pending */
};

/* Per-thread state (task storage): which registration the thread's
 * process belongs to (set by user space for the root, copied to every
 * child at sched_process_fork), and its pending syscall. A thread without
 * it, or whose owner is no longer in the owners array, is not traced. */
struct wb_task {
	__u32 owner;
	__u32 pad;
	struct wb_pending p;
};

struct wb_record {
	__u16 kind;   /* enum weft_event_kind, or WB_KIND_* */
	__u16 rflags; /* WB_R_* */
	__u32 owner;  /* registration the process belongs to */
	__s32 pid;
	__s32 tgid;
	__s64 ret;
	__s32 fd;
	__s32 fd2;
	__s32 flags;
	__s32 mode;
	__s32 created; /* enum weft_created_hint */
	__u32 st_mode;
	__u64 st_dev; /* user-space encoding (new_encode_dev) */
	__u64 st_ino;
	__s64 st_size;
	__s64 st_mtime_ns;
	__s64 st_ctime_ns;
	__u64 time_ns;  /* CLOCK_MONOTONIC from the kernel (0 for reads);
			   user space makes it CLOCK_REALTIME */
	__u16 path_len; /* bytes of path, NUL included; 0 = none */
	__u16 path2_len;
	__u32 argv_len; /* bytes of the argv block */
			/* path, path2, argv follow */
};

/* The per-CPU scratch where a record is built before it is copied to the
 * ring buffer in one bpf_ringbuf_output. */
struct wb_scratch {
	struct wb_record rec;
	char data[WB_DATA_MAX];
};

#endif /* WEFT_EBPF_H */
