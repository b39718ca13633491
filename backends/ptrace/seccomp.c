/*
 * seccomp.c - the seccomp-bpf filter that makes ptrace affordable: the
 * tracee stops (SECCOMP_RET_TRACE) only at the syscalls weft records and
 * runs every other syscall at full speed. mmap and fcntl are narrowed in
 * the filter itself (anonymous maps and fcntl commands that do not touch
 * the fd table never stop), because malloc and stdio call them often.
 * A wait for a child stops only when it blocks (no WNOHANG).
 *
 * Only the native ABI is traced. Syscalls of another ABI (i386 programs,
 * x32) are allowed untraced: a tracer that misread their numbers would be
 * worse than one that says what it does not see.
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/seccomp.h>

#include "ptrace_internal.h"

/* Tracked with no condition, hottest first (the filter is a linear scan). */
static const int tracked[] = {
	SYS_read,
	SYS_close,
	SYS_openat,
	SYS_write,
	SYS_pread64,
	SYS_pwrite64,
	SYS_readv,
	SYS_writev,
	SYS_preadv,
	SYS_pwritev,
	SYS_preadv2,
	SYS_pwritev2,
	SYS_openat2,
	SYS_dup,
	SYS_dup3,
	SYS_sendfile,
	SYS_copy_file_range,
	SYS_splice,
	SYS_renameat,
	SYS_renameat2,
	SYS_linkat,
	SYS_symlinkat,
	SYS_unlinkat,
	SYS_truncate,
	SYS_ftruncate,
	SYS_chdir,
	SYS_fchdir,
	SYS_clone,
	SYS_clone3,
#ifdef SYS_open
	SYS_open,
#endif
#ifdef SYS_creat
	SYS_creat,
#endif
#ifdef SYS_dup2
	SYS_dup2,
#endif
#ifdef SYS_rename
	SYS_rename,
#endif
#ifdef SYS_link
	SYS_link,
#endif
#ifdef SYS_symlink
	SYS_symlink,
#endif
#ifdef SYS_unlink
	SYS_unlink,
#endif
#ifdef SYS_rmdir
	SYS_rmdir,
#endif
#ifdef SYS_fork
	SYS_fork,
#endif
#ifdef SYS_vfork
	SYS_vfork,
#endif
};

#define NTRACKED (sizeof(tracked) / sizeof(tracked[0]))

/* Offset of the low 32 bits of argument i in struct seccomp_data. */
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define ARG_LO(i) (offsetof(struct seccomp_data, args) + 8 * (i))
#else
#define ARG_LO(i) (offsetof(struct seccomp_data, args) + 8 * (i) + 4)
#endif

#define X32_SYSCALL_BIT 0x40000000u

/* Jump targets are resolved once the program length is known: forward-only
 * classic BPF cannot jump back to a shared "return" instruction. */
enum { L_NONE, L_ALLOW, L_TRACE, L_MMAP, L_FCNTL, L_WAIT4, L_WAITID, L_N };

struct asm_state {
	pt_filter *f;
	unsigned char jt[PT_FILTER_MAX], jf[PT_FILTER_MAX];
	int err;
};

static void emit(struct asm_state *a, unsigned short code, unsigned k, int jt,
		 int jf)
{
	if (a->f->len >= PT_FILTER_MAX) {
		a->err = -1;
		return;
	}
	struct sock_filter in = {code, 0, 0, k};
	a->jt[a->f->len] = (unsigned char)jt;
	a->jf[a->f->len] = (unsigned char)jf;
	a->f->insns[a->f->len++] = in;
}

/* Allowed when argument arg has a bit of flags set, else traced. */
static void allow_if_set(struct asm_state *a, int arg, unsigned flags)
{
	emit(a, BPF_LD | BPF_W | BPF_ABS, ARG_LO(arg), 0, 0);
	emit(a, BPF_JMP | BPF_JSET | BPF_K, flags, L_ALLOW, L_TRACE);
}

int pt_filter_build(pt_filter *f)
{
	if (PT_AUDIT_ARCH == 0)
		return WEFT_EUNSUPPORTED;
	struct asm_state a = {.f = f};
	unsigned short at[L_N] = {0};
	f->len = 0;

	emit(&a, BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch),
	     0, 0);
	emit(&a, BPF_JMP | BPF_JEQ | BPF_K, PT_AUDIT_ARCH, L_NONE, L_ALLOW);
	emit(&a, BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr), 0,
	     0);
	emit(&a, BPF_JMP | BPF_JGE | BPF_K, X32_SYSCALL_BIT, L_ALLOW, L_NONE);
	for (size_t i = 0; i < NTRACKED; i++)
		emit(&a, BPF_JMP | BPF_JEQ | BPF_K, (unsigned)tracked[i],
		     L_TRACE, L_NONE);
	emit(&a, BPF_JMP | BPF_JEQ | BPF_K, SYS_mmap, L_MMAP, L_NONE);
	emit(&a, BPF_JMP | BPF_JEQ | BPF_K, SYS_fcntl, L_FCNTL, L_NONE);
	emit(&a, BPF_JMP | BPF_JEQ | BPF_K, SYS_wait4, L_WAIT4, L_NONE);
	emit(&a, BPF_JMP | BPF_JEQ | BPF_K, SYS_waitid, L_WAITID, L_NONE);
	emit(&a, BPF_JMP | BPF_JA, 0, L_ALLOW, 0); /* k patched below */

	at[L_MMAP] = f->len;
	allow_if_set(&a, 3, MAP_ANONYMOUS);

	at[L_FCNTL] = f->len;
	emit(&a, BPF_LD | BPF_W | BPF_ABS, ARG_LO(1), 0, 0);
	emit(&a, BPF_JMP | BPF_JEQ | BPF_K, F_DUPFD, L_TRACE, L_NONE);
	emit(&a, BPF_JMP | BPF_JEQ | BPF_K, F_DUPFD_CLOEXEC, L_TRACE, L_NONE);
	emit(&a, BPF_JMP | BPF_JEQ | BPF_K, F_SETFD, L_TRACE, L_ALLOW);

	/* A wait that blocks: the task stops competing for a CPU until it
	 * returns (where the workload runs, ptrace.c). WNOHANG polls run. */
	at[L_WAIT4] = f->len;
	allow_if_set(&a, 2, WNOHANG);
	at[L_WAITID] = f->len;
	allow_if_set(&a, 3, WNOHANG);

	at[L_ALLOW] = f->len;
	emit(&a, BPF_RET | BPF_K, SECCOMP_RET_ALLOW, 0, 0);
	at[L_TRACE] = f->len;
	emit(&a, BPF_RET | BPF_K, SECCOMP_RET_TRACE, 0, 0);
	if (a.err)
		return WEFT_ETOOBIG;

	for (unsigned short i = 0; i < f->len; i++) {
		struct sock_filter *in = &f->insns[i];
		if (BPF_CLASS(in->code) != BPF_JMP)
			continue;
		if (BPF_OP(in->code) == BPF_JA) {
			in->k = at[a.jt[i]] - i - 1u;
			continue;
		}
		int t = a.jt[i] ? at[a.jt[i]] - i - 1 : 0;
		int e = a.jf[i] ? at[a.jf[i]] - i - 1 : 0;
		if (t < 0 || t > 255 || e < 0 || e > 255)
			return WEFT_ETOOBIG;
		in->jt = (unsigned char)t;
		in->jf = (unsigned char)e;
	}
	return 0;
}

int pt_filter_install(const pt_filter *f, bool no_new_privs)
{
	struct sock_fprog prog = {
		.len = f->len,
		.filter = (struct sock_filter *)f->insns,
	};
	if (no_new_privs && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
		return -errno;
	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) != 0)
		return -errno;
	return 0;
}
