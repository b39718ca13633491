// SPDX-License-Identifier: GPL-2.0
/*
 * weft.bpf.c - the kernel side of the eBPF backend: turn the file-related
 * syscalls of registered process trees into records on a ring buffer.
 *
 * - The filter is checked first: task storage (per thread, set by user
 *   space on the root and copied to every child at sched_process_fork,
 *   in the kernel, so nothing a child does can happen before it is
 *   traced) naming a registration that is still in the owners array. An
 *   untraced thread costs one task-storage lookup (a pointer in its
 *   task_struct, no hashing) per program run.
 * - Arguments are saved at syscall entry (pending, per thread) and the
 *   record is made at exit: the return value is known then, and a path
 *   string is read after the kernel itself read it (at entry the page may
 *   not be resident yet and bpf_probe_read_user_str fails with EFAULT).
 * - Per (process, fd) state, bits in the task storage of the thread-group
 *   leader: after the first read (write) that moved bytes on an fd,
 *   further reads (writes) on it emit nothing and save nothing; an open,
 *   dup or close of that fd number resets them, and an exec all of them
 *   (the new program image is a process of its own).
 * - Two sets of syscall programs, the loader loads one: tp_btf on the
 *   raw sys_enter/sys_exit (default), or one tracepoint program per
 *   recorded syscall (syscalls/sys_enter_openat, ...; the kernel runs
 *   nothing for a process's other syscalls). Both share on_enter and
 *   on_exit; bench/overhead --ebpf-each compares them.
 * - Records without strings are reserved in the ring buffer and filled in
 *   place; records with paths are built in a per-CPU scratch and copied
 *   with one bpf_ringbuf_output of their real size. The reader is not
 *   woken per record (BPF_RB_NO_WAKEUP): it polls on a short timer, and
 *   is woken once when the waiting data grows past wakeup_bytes. A failed
 *   output is counted in `dropped`, never silent.
 * - Syscall numbers are x86_64's (the build enables this backend only
 *   there).
 */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "weft_ebpf.h"

char LICENSE[] SEC("license") = "GPL";

/* A kernel object pointer as a read-only BTF pointer (kernel 6.2+). */
extern void *bpf_rdonly_cast(const void *obj, __u32 btf_id) __ksym;

/* Wake the reader when this much is waiting (set before load). */
const volatile __u64 wakeup_bytes = 256 * 1024;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4 * 1024 * 1024); /* resized before load */
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct wb_task);
} tasks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct wb_fdbits);
} fdbits SEC(".maps");

/* owners[id % WB_MAX_OWNERS] == id while registration id is active. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, WB_MAX_OWNERS);
	__type(key, __u32);
	__type(value, __u32);
} owners SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct wb_scratch);
} scratch SEC(".maps");

/* Records lost (ring buffer full, a map full), per owner slot
 * (owner % WB_MAX_OWNERS): a run is told of its own losses only. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, WB_MAX_OWNERS);
	__type(key, __u32);
	__type(value, __u64);
} dropped SEC(".maps");

/* x86_64 syscall numbers. */
#define NR_read 0
#define NR_write 1
#define NR_open 2
#define NR_close 3
#define NR_mmap 9
#define NR_pread64 17
#define NR_pwrite64 18
#define NR_readv 19
#define NR_writev 20
#define NR_dup 32
#define NR_dup2 33
#define NR_sendfile 40
#define NR_fcntl 72
#define NR_truncate 76
#define NR_ftruncate 77
#define NR_chdir 80
#define NR_fchdir 81
#define NR_rename 82
#define NR_rmdir 84
#define NR_creat 85
#define NR_link 86
#define NR_unlink 87
#define NR_symlink 88
#define NR_openat 257
#define NR_unlinkat 263
#define NR_renameat 264
#define NR_linkat 265
#define NR_symlinkat 266
#define NR_splice 275
#define NR_dup3 292
#define NR_preadv 295
#define NR_pwritev 296
#define NR_renameat2 316
#define NR_copy_file_range 326
#define NR_preadv2 327
#define NR_pwritev2 328
#define NR_openat2 437

/* The weft_event kinds (weft/schema.h). */
enum {
	EV_OPEN = 1,
	EV_CLOSE,
	EV_READ,
	EV_WRITE,
	EV_DUP,
	EV_SETCLOEXEC,
	EV_MMAP,
	EV_XFER,
	EV_RENAME,
	EV_LINK,
	EV_UNLINK,
	EV_TRUNCATE,
	EV_FTRUNCATE,
	EV_CHDIR,
	EV_FCHDIR,
	EV_FORK,
	EV_EXEC,
	EV_EXIT,
};

#define AT_FDCWD -100
#define AT_REMOVEDIR 0x200
#define O_WRONLY 01
#define O_CREAT 0100
#define O_EXCL 0200
#define O_TRUNC 01000
#define O_CLOEXEC 02000000
#define FD_CLOEXEC 1
#define F_DUPFD 0
#define F_SETFD 2
#define F_DUPFD_CLOEXEC 1030
#define PROT_READ 1
#define PROT_WRITE 2
#define MAP_SHARED 1
#define MAP_TYPE 0xf
#define MAP_ANONYMOUS 0x20
#define CLONE_VM 0x100
#define CLONE_FS 0x200
#define CLONE_FILES 0x400
#define CLONE_VFORK 0x4000
#define CLONE_PARENT 0x8000
#define CLONE_THREAD 0x10000
/* include/linux/fs.h: the open created the file. */
#define FMODE_CREATED 0x100000
#define CREATED_UNKNOWN -1
#define CREATED_NO 0
#define CREATED_YES 1

static __always_inline void count_drop(__u32 owner)
{
	__u32 slot = owner % WB_MAX_OWNERS;
	__u64 *n = bpf_map_lookup_elem(&dropped, &slot);
	if (n)
		*n += 1;
}

/* Whether the registration w names is still active. */
static __always_inline bool active(struct wb_task *w)
{
	__u32 slot = w->owner % WB_MAX_OWNERS;
	__u32 *cur = bpf_map_lookup_elem(&owners, &slot);
	return cur && *cur == w->owner;
}

/* The state of task t when its registration is active, else NULL. */
static __always_inline struct wb_task *tracked(struct task_struct *t)
{
	struct wb_task *w = bpf_task_storage_get(&tasks, t, 0, 0);
	return w && active(w) ? w : NULL;
}

/* A zeroed record of kind for the current thread in the CPU's scratch. */
static __always_inline struct wb_scratch *record(__u16 kind, __u32 owner)
{
	__u32 zero = 0;
	struct wb_scratch *s = bpf_map_lookup_elem(&scratch, &zero);
	if (!s)
		return NULL;
	__u64 id = bpf_get_current_pid_tgid();
	__builtin_memset(&s->rec, 0, sizeof(s->rec));
	s->rec.kind = kind;
	s->rec.owner = owner;
	s->rec.pid = (__s32)id;
	s->rec.tgid = (__s32)(id >> 32);
	s->rec.created = CREATED_UNKNOWN;
	/* Stamped in submit(): records with strings (open, rename, link,
	 * unlink, exec) are where a task's first open is. */
	return s;
}

/* The wakeup flag for a record of size: wake the reader once, when this
 * record takes the waiting data past wakeup_bytes; a wakeup per record
 * above it would cost the workload more than the reader's 20 ms timer
 * does. */
static __always_inline __u64 wakeup_flag(__u64 size)
{
	__u64 avail = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA);
	return avail < wakeup_bytes && avail + size >= wakeup_bytes
		       ? BPF_RB_FORCE_WAKEUP
		       : BPF_RB_NO_WAKEUP;
}

/* A record without strings (close, read, write, dup, fork, ...),
 * reserved in the ring buffer and filled in place: no scratch, no copy.
 * NULL (and counted) when the buffer is full. */
static __always_inline struct wb_record *fixed(__u16 kind, __u32 owner)
{
	struct wb_record *r = bpf_ringbuf_reserve(&events, sizeof(*r), 0);
	if (!r) {
		count_drop(owner);
		return NULL;
	}
	__u64 id = bpf_get_current_pid_tgid();
	__builtin_memset(r, 0, sizeof(*r));
	r->kind = kind;
	r->owner = owner;
	r->pid = (__s32)id;
	r->tgid = (__s32)(id >> 32);
	r->created = CREATED_UNKNOWN;
	/* When a change happened, in the kernel's order (user space adds
	 * the offset to CLOCK_REALTIME): one task's open against another's
	 * write decides lineage. Other records (read, close, exit, ...) are
	 * stamped by user space when it takes them: later than they were,
	 * which only makes a writer look later (an edge missed, never a
	 * false one), and saves a clock read (~4% of an open/read/close
	 * loop) on each. Opens are stamped in submit(). */
	if (kind == EV_WRITE || kind == EV_MMAP || kind == EV_XFER ||
	    kind == EV_FTRUNCATE)
		r->time_ns = bpf_ktime_get_ns();
	return r;
}

static __always_inline void fixed_submit(struct wb_record *r)
{
	bpf_ringbuf_submit(r, wakeup_flag(sizeof(*r)));
}

/* Copy the record and datalen bytes of its data to the ring buffer. */
static __always_inline void submit(struct wb_scratch *s, __u32 datalen)
{
	__u64 size = sizeof(s->rec) + (datalen & (WB_DATA_MAX - 1));
	s->rec.time_ns = bpf_ktime_get_ns();
	if (bpf_ringbuf_output(&events, s, size, wakeup_flag(size)) != 0)
		count_drop(s->rec.owner);
}

/* Read a user string into the data at off; its length with the NUL, or 0
 * when unreadable. */
static __always_inline __u32 read_user_path(struct wb_scratch *s, __u32 off,
					    __u64 uptr)
{
	if (off > WB_DATA_MAX - WB_PATH_MAX)
		return 0;
	long n = bpf_probe_read_user_str(&s->data[off], WB_PATH_MAX,
					 (const void *)uptr);
	return n > 0 ? (__u32)n : 0;
}

/* ---- per (process, fd) state ---- */

static __always_inline struct wb_fdbits *fd_bits(bool create)
{
	struct task_struct *t = bpf_get_current_task_btf();
	return bpf_task_storage_get(&fdbits, t->group_leader, 0,
				    create ? BPF_LOCAL_STORAGE_GET_F_CREATE
					   : 0);
}

/* Whether every bit of what (WB_FD_READ, WB_FD_WRITE) is set for fd. */
static __always_inline bool fd_known(int fd, __u32 what)
{
	if (fd < 0 || fd >= WB_FD_BITS)
		return false;
	struct wb_fdbits *b = fd_bits(false);
	if (!b)
		return false;
	__u32 w = ((__u32)fd >> 6) & (WB_FD_WORDS - 1);
	__u64 m = 1ull << (fd & 63);
	if ((what & WB_FD_READ) && !(b->rd[w] & m))
		return false;
	if ((what & WB_FD_WRITE) && !(b->wr[w] & m))
		return false;
	return true;
}

static __always_inline void fd_mark(int fd, __u32 what)
{
	if (fd < 0 || fd >= WB_FD_BITS)
		return;
	struct wb_fdbits *b = fd_bits(true);
	if (!b)
		return;
	__u32 w = ((__u32)fd >> 6) & (WB_FD_WORDS - 1);
	__u64 m = 1ull << (fd & 63);
	/* Atomic (threads share the bits), and only when a bit changes: a
	 * locked operation costs more than the load. */
	if ((what & WB_FD_READ) && !(b->rd[w] & m))
		__sync_fetch_and_or(&b->rd[w], m);
	if ((what & WB_FD_WRITE) && !(b->wr[w] & m))
		__sync_fetch_and_or(&b->wr[w], m);
}

static __always_inline void fd_reset(int fd)
{
	if (fd < 0 || fd >= WB_FD_BITS)
		return;
	struct wb_fdbits *b = fd_bits(false);
	if (!b)
		return;
	__u32 w = ((__u32)fd >> 6) & (WB_FD_WORDS - 1);
	__u64 m = 1ull << (fd & 63);
	if (b->rd[w] & m)
		__sync_fetch_and_and(&b->rd[w], ~m);
	if (b->wr[w] & m)
		__sync_fetch_and_and(&b->wr[w], ~m);
}

/* ---- entry ---- */

static __always_inline void save(struct wb_task *w, long nr, const __u64 *a)
{
	w->p.nr = nr;
	w->p.args[0] = a[0];
	w->p.args[1] = a[1];
	w->p.args[2] = a[2];
	w->p.args[3] = a[3];
	w->p.args[4] = a[4];
}

static __always_inline bool interesting(long nr)
{
	switch (nr) {
	case NR_open:
	case NR_openat:
	case NR_openat2:
	case NR_creat:
	case NR_dup:
	case NR_dup2:
	case NR_dup3:
	case NR_fcntl:
	case NR_sendfile:
	case NR_copy_file_range:
	case NR_splice:
	case NR_rename:
	case NR_renameat:
	case NR_renameat2:
	case NR_link:
	case NR_linkat:
	case NR_symlink:
	case NR_symlinkat:
	case NR_unlink:
	case NR_unlinkat:
	case NR_rmdir:
	case NR_truncate:
	case NR_ftruncate:
	case NR_chdir:
	case NR_fchdir:
		return true;
	default:
		return false;
	}
}

/* The entry of syscall nr with its first five arguments a (nr is a
 * constant in each per-syscall program: the compiler keeps only its
 * case). */
static __always_inline int on_enter(long nr, const __u64 *a)
{
	struct wb_task *p = tracked(bpf_get_current_task_btf());
	if (!p)
		return 0;
	int fd;

	switch (nr) {
	case NR_read:
	case NR_pread64:
	case NR_readv:
	case NR_preadv:
	case NR_preadv2:
		fd = (int)a[0];
		if (!fd_known(fd, WB_FD_READ))
			save(p, nr, a);
		return 0;
	case NR_write:
	case NR_pwrite64:
	case NR_writev:
	case NR_pwritev:
	case NR_pwritev2:
		fd = (int)a[0];
		if (!fd_known(fd, WB_FD_WRITE))
			save(p, nr, a);
		return 0;
	case NR_close: {
		/* At entry: close releases the fd even when it fails. */
		fd = (int)a[0];
		fd_reset(fd);
		struct wb_record *r = fixed(EV_CLOSE, p->owner);
		if (!r)
			return 0;
		r->fd = fd;
		fixed_submit(r);
		return 0;
	}
	case NR_mmap: {
		int prot = (int)a[2];
		int flags = (int)a[3];
		fd = (int)a[4];
		if (flags & MAP_ANONYMOUS)
			return 0;
		__u32 bits = 0;
		if (prot & PROT_READ)
			bits |= WB_FD_READ;
		if ((flags & MAP_TYPE) == MAP_SHARED && (prot & PROT_WRITE))
			bits |= WB_FD_WRITE;
		if (bits && !fd_known(fd, bits))
			save(p, nr, a);
		return 0;
	}
	default:
		if (interesting(nr))
			save(p, nr, a);
		return 0;
	}
}

/* ---- exit ---- */

static __always_inline __u64 encode_dev(__u32 dev)
{
	/* Kernel dev_t (major << 20 | minor) to what stat(2) reports. */
	__u32 major = dev >> 20, minor = dev & 0xfffff;
	return (minor & 0xff) | (major << 8) | ((__u64)(minor & ~0xffu) << 12);
}

/* What the open that returned fd made: stat of the file and whether it
 * created it. */
static __always_inline void stat_fd(struct wb_record *r, int fd)
{
	/* Direct loads through BTF pointers (tp_btf): no helper call per
	 * field; a fault reads as 0. Only the fd array needs a helper, for
	 * its variable index. */
	struct task_struct *t = bpf_get_current_task_btf();
	struct fdtable *fdt = t->files->fdt;
	if (!fdt || fd < 0 || (unsigned int)fd >= fdt->max_fds)
		return;
	struct file **fds = fdt->fd;
	struct file *f = NULL;
	bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]);
	if (!f)
		return;
	/* The file as a read-only BTF pointer (bpf_rdonly_cast): its fields
	 * and its inode's are then plain loads, not a helper call each. */
	struct file *ff =
		bpf_rdonly_cast(f, bpf_core_type_id_kernel(struct file));
	unsigned int fmode = ff->f_mode;
	struct inode *ino = ff->f_inode;
	if (!ino)
		return;
	r->rflags |= WB_R_HAS_STAT;
	r->st_mode = ino->i_mode;
	r->st_ino = ino->i_ino;
	r->st_size = ino->i_size;
	r->st_dev = encode_dev(ino->i_sb->s_dev);
	if (bpf_core_field_exists(ino->i_mtime_sec))
		r->st_mtime_ns =
			ino->i_mtime_sec * 1000000000ll + ino->i_mtime_nsec;
	/* The top bit of i_ctime_nsec is the multigrain "queried" flag
	 * (I_CTIME_QUERIED), not part of the time. */
	if (bpf_core_field_exists(ino->i_ctime_sec))
		r->st_ctime_ns = ino->i_ctime_sec * 1000000000ll +
				 (ino->i_ctime_nsec & 0x3fffffffu);
	if (r->flags & O_CREAT)
		r->created = (fmode & FMODE_CREATED) ? CREATED_YES : CREATED_NO;
}

static __always_inline void emit_open(struct wb_scratch *s, int dirfd,
				      __u64 path, int flags, int mode, long ret)
{
	s->rec.fd = dirfd;
	s->rec.flags = flags;
	s->rec.mode = mode;
	s->rec.created = (flags & O_CREAT) ? CREATED_UNKNOWN : CREATED_NO;
	s->rec.path_len = read_user_path(s, 0, path);
	if (ret >= 0) {
		fd_reset((int)ret);
		stat_fd(&s->rec, (int)ret);
	}
	submit(s, s->rec.path_len);
}

static __always_inline void emit_paths(struct wb_scratch *s, int fd, __u64 a,
				       int fd2, __u64 b, int flags)
{
	s->rec.fd = fd;
	s->rec.fd2 = fd2;
	s->rec.flags = flags;
	__u32 n = read_user_path(s, 0, a);
	s->rec.path_len = n;
	__u32 m = 0;
	if (b) {
		m = read_user_path(s, n & (WB_DATA_MAX - 1), b);
		s->rec.path2_len = m;
	}
	submit(s, n + m);
}

static __always_inline void on_exit_nr(long nr, struct wb_task *p,
				       struct wb_pending *a, long ret)
{
	struct wb_scratch *s;
	struct wb_record *r;
	int fd = (int)a->args[0];
	__u16 kind;

	switch (nr) {
	case NR_read:
	case NR_pread64:
	case NR_readv:
	case NR_preadv:
	case NR_preadv2:
	case NR_write:
	case NR_pwrite64:
	case NR_writev:
	case NR_pwritev:
	case NR_pwritev2: {
		bool rd = nr == NR_read || nr == NR_pread64 || nr == NR_readv ||
			  nr == NR_preadv || nr == NR_preadv2;
		if (ret <= 0)
			return; /* moved nothing: changes no record */
		fd_mark(fd, rd ? WB_FD_READ : WB_FD_WRITE);
		kind = rd ? EV_READ : EV_WRITE;
		break;
	}
	case NR_mmap: {
		if (ret < 0 && ret > -4096)
			return;
		int prot = (int)a->args[2], flags = (int)a->args[3];
		fd = (int)a->args[4];
		__u32 bits = 0;
		if (prot & PROT_READ)
			bits |= WB_FD_READ;
		if ((flags & MAP_TYPE) == MAP_SHARED && (prot & PROT_WRITE))
			bits |= WB_FD_WRITE;
		fd_mark(fd, bits);
		if (!(r = fixed(EV_MMAP, p->owner)))
			return;
		r->ret = ret;
		r->fd = fd;
		r->mode = prot;
		r->flags = flags;
		fixed_submit(r);
		return;
	}
	case NR_sendfile:
	case NR_copy_file_range:
	case NR_splice: {
		if (ret <= 0)
			return;
		int in = nr == NR_sendfile ? (int)a->args[1] : (int)a->args[0];
		int out = nr == NR_sendfile ? (int)a->args[0] : (int)a->args[2];
		if (fd_known(in, WB_FD_READ) && fd_known(out, WB_FD_WRITE))
			return;
		fd_mark(in, WB_FD_READ);
		fd_mark(out, WB_FD_WRITE);
		if (!(r = fixed(EV_XFER, p->owner)))
			return;
		r->ret = ret;
		r->fd = in;
		r->fd2 = out;
		fixed_submit(r);
		return;
	}
	default:
		kind = 0;
		break;
	}
	if (kind) {
		if (!(r = fixed(kind, p->owner)))
			return;
		r->ret = ret;
		r->fd = fd;
		fixed_submit(r);
		return;
	}

	/* Everything else is reported only when it succeeded. */
	if (ret < 0)
		return;
	switch (nr) {
	case NR_open:
	case NR_creat:
	case NR_openat:
	case NR_openat2:
		if (!(s = record(EV_OPEN, p->owner)))
			return;
		s->rec.ret = ret;
		if (nr == NR_open)
			emit_open(s, AT_FDCWD, a->args[0], (int)a->args[1],
				  (int)a->args[2], ret);
		else if (nr == NR_creat)
			emit_open(s, AT_FDCWD, a->args[0],
				  O_CREAT | O_WRONLY | O_TRUNC, (int)a->args[1],
				  ret);
		else if (nr == NR_openat)
			emit_open(s, (int)a->args[0], a->args[1],
				  (int)a->args[2], (int)a->args[3], ret);
		else {
			__u64 how[2] = {0, 0}; /* struct open_how */
			bpf_probe_read_user(how, sizeof(how),
					    (const void *)a->args[2]);
			emit_open(s, (int)a->args[0], a->args[1], (int)how[0],
				  (int)how[1], ret);
		}
		return;
	case NR_dup:
	case NR_dup2:
	case NR_dup3:
	case NR_fcntl: {
		kind = EV_DUP;
		int flags = 0;
		if (nr == NR_dup3)
			flags = ((int)a->args[2] & O_CLOEXEC) ? O_CLOEXEC : 0;
		if (nr == NR_fcntl) {
			int cmd = (int)a->args[1];
			if (cmd == F_DUPFD_CLOEXEC)
				flags = O_CLOEXEC;
			else if (cmd == F_SETFD) {
				kind = EV_SETCLOEXEC;
				flags = ((int)a->args[2] & FD_CLOEXEC)
						? O_CLOEXEC
						: 0;
			} else if (cmd != F_DUPFD)
				return;
		}
		if (kind == EV_DUP)
			fd_reset((int)ret);
		if (!(r = fixed(kind, p->owner)))
			return;
		r->ret = ret;
		r->fd = fd;
		r->fd2 = kind == EV_DUP ? (int)ret : 0;
		r->flags = flags;
		fixed_submit(r);
		return;
	}
	case NR_ftruncate:
	case NR_fchdir:
		if (!(r = fixed(nr == NR_ftruncate ? EV_FTRUNCATE : EV_FCHDIR,
				p->owner)))
			return;
		r->ret = ret;
		r->fd = fd;
		fixed_submit(r);
		return;
	}

	/* Calls naming paths. */
	if (!(s = record(0, p->owner)))
		return;
	s->rec.ret = ret;
	switch (nr) {
	case NR_rename:
		s->rec.kind = EV_RENAME;
		emit_paths(s, AT_FDCWD, a->args[0], AT_FDCWD, a->args[1], 0);
		return;
	case NR_renameat:
	case NR_renameat2:
		s->rec.kind = EV_RENAME;
		emit_paths(s, (int)a->args[0], a->args[1], (int)a->args[2],
			   a->args[3],
			   nr == NR_renameat2 ? (int)a->args[4] : 0);
		return;
	case NR_link:
		s->rec.kind = EV_LINK;
		emit_paths(s, AT_FDCWD, a->args[0], AT_FDCWD, a->args[1], 0);
		return;
	case NR_linkat:
		s->rec.kind = EV_LINK;
		emit_paths(s, (int)a->args[0], a->args[1], (int)a->args[2],
			   a->args[3], (int)a->args[4]);
		return;
	case NR_symlink:
		s->rec.kind = EV_LINK;
		emit_paths(s, -1, a->args[0], AT_FDCWD, a->args[1], 0);
		return;
	case NR_symlinkat:
		s->rec.kind = EV_LINK;
		emit_paths(s, -1, a->args[0], (int)a->args[1], a->args[2], 0);
		return;
	case NR_unlink:
		s->rec.kind = EV_UNLINK;
		emit_paths(s, AT_FDCWD, a->args[0], 0, 0, 0);
		return;
	case NR_rmdir:
		s->rec.kind = EV_UNLINK;
		emit_paths(s, AT_FDCWD, a->args[0], 0, 0, AT_REMOVEDIR);
		return;
	case NR_unlinkat:
		s->rec.kind = EV_UNLINK;
		emit_paths(s, (int)a->args[0], a->args[1], 0, 0,
			   (int)a->args[2] & AT_REMOVEDIR);
		return;
	case NR_truncate:
		s->rec.kind = EV_TRUNCATE;
		emit_paths(s, AT_FDCWD, a->args[0], 0, 0, 0);
		return;
	case NR_chdir:
		s->rec.kind = EV_CHDIR;
		emit_paths(s, AT_FDCWD, a->args[0], 0, 0, 0);
		return;
	}
}

/* Argument i of a syscall tracepoint (syscalls/sys_enter_*), which hands
 * BPF the syscall's own nargs arguments: the kernel refuses to attach a
 * program that reads past them (EACCES), so only those are read. */
#define ctx_arg(ctx, i, nargs) ((i) < (nargs) ? (ctx)->args[i] : 0)

/* The exit of syscall nr: the record, made from what its entry saved. */
static __always_inline int on_exit(long nr, long ret)
{
	/* Nothing pending is the common case: settle it before the owner
	 * check. A stale entry (its exit never came: exec, a kill) is not
	 * this syscall's. */
	struct wb_task *w =
		bpf_task_storage_get(&tasks, bpf_get_current_task_btf(), 0, 0);
	if (!w || w->p.nr != nr || !active(w))
		return 0;
	struct wb_pending copy = w->p;
	w->p.nr = -1;
	on_exit_nr(nr, w, &copy, ret);
	return 0;
}

/* Two sets of syscall programs; the loader loads one of them
 * (WEFT_EBPF_SYSCALLS, load.c).
 *
 * "raw" (the default): tp_btf on the raw sys_enter and sys_exit, one
 * program each for every syscall of every process; the arguments are
 * plain loads from the registers. */
SEC("tp_btf/sys_enter")
int BPF_PROG(weft_sys_enter, struct pt_regs *regs, long nr)
{
	/* x86_64 syscall arguments: di, si, dx, r10, r8. */
	__u64 a[5] = {regs->di, regs->si, regs->dx, regs->r10, regs->r8};
	return on_enter(nr, a);
}

SEC("tp_btf/sys_exit")
int BPF_PROG(weft_sys_exit, struct pt_regs *regs, long ret)
{
	return on_exit(regs->orig_ax, ret);
}

/* "each": one program per syscall tracepoint (name, number, how many
 * arguments the syscall has), for exactly the syscalls weft records: a
 * process's other syscalls run no program at all (the kernel checks a
 * bitmap of enabled syscalls and returns), and close needs no exit
 * program. The x86_64 sendfile is the kernel's sendfile64. */
#define WEFT_ENTER(name, NR, nargs)                                            \
	SEC("tracepoint/syscalls/sys_enter_" #name)                            \
	int weft_enter_##name(struct trace_event_raw_sys_enter *ctx)           \
	{                                                                      \
		__u64 a[5] = {ctx_arg(ctx, 0, nargs), ctx_arg(ctx, 1, nargs),  \
			      ctx_arg(ctx, 2, nargs), ctx_arg(ctx, 3, nargs),  \
			      ctx_arg(ctx, 4, nargs)};                         \
		return on_enter(NR, a);                                        \
	}
#define WEFT_EXIT(name, NR)                                                    \
	SEC("tracepoint/syscalls/sys_exit_" #name)                             \
	int weft_exit_##name(struct trace_event_raw_sys_exit *ctx)             \
	{                                                                      \
		return on_exit(NR, ctx->ret);                                  \
	}
#define WEFT_SYSCALL(name, NR, nargs)                                          \
	WEFT_ENTER(name, NR, nargs) WEFT_EXIT(name, NR)

WEFT_SYSCALL(read, NR_read, 3)
WEFT_SYSCALL(pread64, NR_pread64, 4)
WEFT_SYSCALL(readv, NR_readv, 3)
WEFT_SYSCALL(preadv, NR_preadv, 5)
WEFT_SYSCALL(preadv2, NR_preadv2, 6)
WEFT_SYSCALL(write, NR_write, 3)
WEFT_SYSCALL(pwrite64, NR_pwrite64, 4)
WEFT_SYSCALL(writev, NR_writev, 3)
WEFT_SYSCALL(pwritev, NR_pwritev, 5)
WEFT_SYSCALL(pwritev2, NR_pwritev2, 6)
WEFT_ENTER(close, NR_close, 1)
WEFT_SYSCALL(mmap, NR_mmap, 6)
WEFT_SYSCALL(open, NR_open, 3)
WEFT_SYSCALL(openat, NR_openat, 4)
WEFT_SYSCALL(openat2, NR_openat2, 4)
WEFT_SYSCALL(creat, NR_creat, 2)
WEFT_SYSCALL(dup, NR_dup, 1)
WEFT_SYSCALL(dup2, NR_dup2, 2)
WEFT_SYSCALL(dup3, NR_dup3, 3)
WEFT_SYSCALL(fcntl, NR_fcntl, 3)
WEFT_SYSCALL(sendfile64, NR_sendfile, 4)
WEFT_SYSCALL(copy_file_range, NR_copy_file_range, 6)
WEFT_SYSCALL(splice, NR_splice, 6)
WEFT_SYSCALL(rename, NR_rename, 2)
WEFT_SYSCALL(renameat, NR_renameat, 4)
WEFT_SYSCALL(renameat2, NR_renameat2, 5)
WEFT_SYSCALL(link, NR_link, 2)
WEFT_SYSCALL(linkat, NR_linkat, 5)
WEFT_SYSCALL(symlink, NR_symlink, 2)
WEFT_SYSCALL(symlinkat, NR_symlinkat, 3)
WEFT_SYSCALL(unlink, NR_unlink, 1)
WEFT_SYSCALL(unlinkat, NR_unlinkat, 3)
WEFT_SYSCALL(rmdir, NR_rmdir, 1)
WEFT_SYSCALL(truncate, NR_truncate, 2)
WEFT_SYSCALL(ftruncate, NR_ftruncate, 2)
WEFT_SYSCALL(chdir, NR_chdir, 1)
WEFT_SYSCALL(fchdir, NR_fchdir, 1)

/* ---- processes ---- */

SEC("tp_btf/sched_process_fork")
int BPF_PROG(weft_fork, struct task_struct *parent, struct task_struct *child)
{
	__u32 ptgid = parent->tgid, ctgid = child->tgid;
	struct wb_task *p = tracked(parent);
	if (!p)
		return 0;
	__u32 owner = p->owner;
	struct wb_task *c = bpf_task_storage_get(
		&tasks, child, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!c) {
		count_drop(owner); /* the child would go untraced */
		return 0;
	}
	c->owner = owner;
	c->p.nr = -1;
	int flags = 0;
	if (ctgid == ptgid) {
		flags |= CLONE_THREAD;
	} else {
		if (child->real_parent != parent &&
		    child->real_parent != parent->group_leader)
			flags |= CLONE_PARENT;
	}
	if (child->files == parent->files)
		flags |= CLONE_FILES;
	if (child->fs == parent->fs)
		flags |= CLONE_FS;
	if (child->vfork_done)
		flags |= CLONE_VFORK;
	struct wb_record *r = fixed(EV_FORK, owner);
	if (!r)
		return 0;
	r->pid = parent->pid;
	r->tgid = ptgid;
	r->ret = child->pid;
	r->flags = flags;
	fixed_submit(r);
	return 0;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(weft_exec, struct task_struct *t, pid_t old_pid,
	     struct linux_binprm *bprm)
{
	__u32 tgid = t->tgid;
	struct wb_task *p = tracked(t);
	if (!p)
		return 0;
	__u32 owner = p->owner;
	p->p.nr = -1;
	/* A new program image is a process of its own: its first read and
	 * write on each inherited fd are its own to report. */
	bpf_task_storage_delete(&fdbits, t);
	struct wb_scratch *s;
	if (old_pid != t->pid) {
		/* A non-leader thread exec'd and took the leader's id; its
		 * old id is gone without an exit of its own. */
		struct wb_record *r = fixed(EV_EXIT, owner);
		if (r) {
			r->pid = old_pid;
			r->tgid = tgid;
			fixed_submit(r);
		}
	}
	if (!(s = record(EV_EXEC, owner)))
		return 0;
	s->rec.pid = t->pid;
	s->rec.tgid = tgid;
	long n = bpf_probe_read_kernel_str(s->data, WB_PATH_MAX, bprm->interp);
	__u32 plen = n > 0 ? (__u32)n : 0;
	s->rec.path_len = plen;
	unsigned long start = t->mm->arg_start, end = t->mm->arg_end;
	__u64 alen = end > start ? end - start : 0;
	if (alen > WB_ARGV_MAX) {
		alen = WB_ARGV_MAX;
		s->rec.rflags |= WB_R_ARGV_TRUNCATED;
	}
	plen &= WB_PATH_MAX * 2 - 1;
	if (plen > WB_PATH_MAX)
		plen = WB_PATH_MAX;
	if (alen > 0 &&
	    bpf_probe_read_user(&s->data[plen], alen & (WB_ARGV_MAX * 2 - 1),
				(const void *)start) == 0)
		s->rec.argv_len = alen;
	else
		s->rec.rflags |= WB_R_ARGV_TRUNCATED;
	/* A program that gained privileges by this exec is one the kernel
	 * would no longer let the registration's owner ptrace: nothing more
	 * of it, or of what it starts, goes to them. User space says so in
	 * the run's warnings. */
	bool secure = BPF_CORE_READ_BITFIELD_PROBED(bprm, secureexec);
	if (secure)
		s->rec.rflags |= WB_R_SECURE;
	submit(s, plen + s->rec.argv_len);
	if (secure)
		bpf_task_storage_delete(&tasks, t);
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(weft_exit, struct task_struct *t)
{
	__u32 tgid = t->tgid, tid = t->pid;
	struct wb_task *p = tracked(t);
	if (!p)
		return 0;
	__u32 owner = p->owner;
	int code = t->exit_code;
	bool group_dead = t->signal->live.counter == 0;
	struct wb_record *r = fixed(EV_EXIT, owner);
	if (r) {
		r->pid = tid;
		r->tgid = tgid;
		r->ret = (code & 0x7f) ? 128 + (code & 0x7f)
				       : (code >> 8) & 0xff;
		r->flags = group_dead ? 1 : 0;
		fixed_submit(r);
	}
	return 0;
}
