/*
 * decode.c - turning a tracked syscall into a weft_event. At the seccomp
 * (entry) stop the arguments are read: path strings must be read now,
 * before the kernel (or another thread) can change the memory, and an
 * O_CREAT open must look for its target now to tell "created" from
 * "existed". The exit stop is requested only when the return value can
 * change the report; a read or write the classifier already knows about,
 * and every close, cost one stop instead of two.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "ptrace_internal.h"

#ifndef O_TMPFILE
#define O_TMPFILE (020000000 | O_DIRECTORY)
#endif

static int fd_arg(uint64_t a)
{
	return (int)(int32_t)a;
}

static void begin(pt_thread *t, int nr, uint16_t kind)
{
	memset(&t->pending.ev, 0, sizeof(t->pending.ev));
	t->pending.ev.kind = kind;
	t->pending.ev.created = WEFT_CREATED_UNKNOWN;
	t->pending.nr = nr;
}

/* Read path i (0 or 1) of the pending event from the tracee. An unreadable
 * path stays NULL: the syscall itself will fail with EFAULT, unless the
 * memory changed under it, which pt_decode_exit counts as dropped. */
static int read_path(pt_thread *t, int i, uint64_t addr)
{
	pt_pending *p = &t->pending;
	if (!p->paths) {
		p->paths = malloc(2 * PT_PATH_BUF);
		if (!p->paths)
			return WEFT_ENOMEM;
	}
	char *buf = p->paths + (size_t)i * PT_PATH_BUF;
	ssize_t n = pt_read_string(t->tid, addr, buf, PT_PATH_BUF);
	const char *s = n >= 0 ? buf : NULL;
	if (i == 0)
		p->ev.path = s;
	else
		p->ev.path2 = s;
	return 0;
}

/* Whether an O_CREAT open (without O_EXCL) will create its target: look it
 * up now, relative to the tracee's cwd or dirfd through /proc. */
static int8_t created_hint(pid_t tid, int dirfd, const char *path)
{
	char full[64 + PT_PATH_BUF];
	int n;
	if (!path)
		return WEFT_CREATED_UNKNOWN;
	if (path[0] == '/')
		n = snprintf(full, sizeof(full), "%s", path);
	else if (dirfd == AT_FDCWD)
		n = snprintf(full, sizeof(full), "/proc/%d/cwd/%s", (int)tid,
			     path);
	else
		n = snprintf(full, sizeof(full), "/proc/%d/fd/%d/%s", (int)tid,
			     dirfd, path);
	if (n < 0 || (size_t)n >= sizeof(full))
		return WEFT_CREATED_UNKNOWN;
	struct stat st;
	if (stat(full, &st) == 0)
		return WEFT_CREATED_NO;
	/* ENOENT: nothing there now, so a successful open creates it. */
	return errno == ENOENT ? WEFT_CREATED_YES : WEFT_CREATED_UNKNOWN;
}

static int open_entry(pt_thread *t, int nr, int dirfd, uint64_t path_addr,
		      int flags, int mode)
{
	begin(t, nr, WEFT_EV_OPEN);
	weft_event *ev = &t->pending.ev;
	ev->fd = dirfd;
	ev->flags = flags;
	ev->mode = mode;
	int err = read_path(t, 0, path_addr);
	if (err)
		return err;
	if ((flags & O_TMPFILE) == O_TMPFILE)
		ev->created = WEFT_CREATED_UNKNOWN; /* path is the directory */
	else if (!(flags & O_CREAT))
		ev->created = WEFT_CREATED_NO;
	else if (flags & O_EXCL)
		ev->created = WEFT_CREATED_YES; /* if it succeeds */
	else
		ev->created = created_hint(t->tid, dirfd, ev->path);
	return PT_RESUME_SYSCALL;
}

static int two_paths(pt_thread *t, int nr, uint16_t kind, int fd, uint64_t a,
		     int fd2, uint64_t b, int flags)
{
	begin(t, nr, kind);
	t->pending.ev.fd = fd;
	t->pending.ev.fd2 = fd2;
	t->pending.ev.flags = flags;
	int err = read_path(t, 0, a);
	if (!err)
		err = read_path(t, 1, b);
	if (err)
		return err;
	/* A rename over an existing name does not create it; look now,
	 * before the rename replaces it. */
	if (kind == WEFT_EV_RENAME)
		t->pending.ev.created =
			created_hint(t->tid, fd2, t->pending.ev.path2);
	return PT_RESUME_SYSCALL;
}

static int one_path(pt_thread *t, int nr, uint16_t kind, int fd, uint64_t a,
		    int flags)
{
	begin(t, nr, kind);
	t->pending.ev.fd = fd;
	t->pending.ev.flags = flags;
	int err = read_path(t, 0, a);
	return err ? err : PT_RESUME_SYSCALL;
}

static int fd_only(pt_thread *t, int nr, uint16_t kind, int fd)
{
	begin(t, nr, kind);
	t->pending.ev.fd = fd;
	return PT_RESUME_SYSCALL;
}

static int io_entry(pt_run *r, pt_thread *t, int nr, uint16_t kind, int fd)
{
	weft_classifier *c = r->l->classifier;
	bool known = kind == WEFT_EV_READ
			     ? weft_classifier_fd_read_known(c, t->tid, fd)
			     : weft_classifier_fd_write_known(c, t->tid, fd);
	if (known) {
		r->stats.skipped++;
		return PT_RESUME_CONT;
	}
	return fd_only(t, nr, kind, fd);
}

static int xfer_entry(pt_run *r, pt_thread *t, int nr, int in, int out)
{
	weft_classifier *c = r->l->classifier;
	if (weft_classifier_fd_read_known(c, t->tid, in) &&
	    weft_classifier_fd_write_known(c, t->tid, out)) {
		r->stats.skipped++;
		return PT_RESUME_CONT;
	}
	begin(t, nr, WEFT_EV_XFER);
	t->pending.ev.fd = in;
	t->pending.ev.fd2 = out;
	return PT_RESUME_SYSCALL;
}

static int mmap_entry(pt_run *r, pt_thread *t, int nr, const uint64_t *a)
{
	int prot = (int)a[2], flags = (int)a[3], fd = fd_arg(a[4]);
	weft_classifier *c = r->l->classifier;
	if (flags & MAP_ANONYMOUS)
		return PT_RESUME_CONT;
	bool reads = prot & PROT_READ;
	bool writes = (flags & MAP_TYPE) == MAP_SHARED && (prot & PROT_WRITE);
	if ((!reads || weft_classifier_fd_read_known(c, t->tid, fd)) &&
	    (!writes || weft_classifier_fd_write_known(c, t->tid, fd))) {
		r->stats.skipped++;
		return PT_RESUME_CONT;
	}
	begin(t, nr, WEFT_EV_MMAP);
	t->pending.ev.fd = fd;
	t->pending.ev.mode = prot;
	t->pending.ev.flags = flags;
	return PT_RESUME_SYSCALL;
}

static void note_clone(pt_thread *t, uint64_t flags)
{
	t->clone_known = true;
	t->clone_flags = flags;
}

int pt_decode_entry(pt_run *r, pt_thread *t, const struct pt_syscall_info *info)
{
	const uint64_t *a = info->seccomp.args;
	int nr = (int)info->seccomp.nr;
	weft_event ev;

	t->pending.nr = -1;
	switch (nr) {
	case SYS_read:
	case SYS_pread64:
	case SYS_readv:
	case SYS_preadv:
	case SYS_preadv2:
		return io_entry(r, t, nr, WEFT_EV_READ, fd_arg(a[0]));
	case SYS_write:
	case SYS_pwrite64:
	case SYS_writev:
	case SYS_pwritev:
	case SYS_pwritev2:
		return io_entry(r, t, nr, WEFT_EV_WRITE, fd_arg(a[0]));
	case SYS_close:
		/* Fed at entry: close releases the fd even when it fails with
		 * EINTR, and EBADF means there was nothing to release. */
		memset(&ev, 0, sizeof(ev));
		ev.kind = WEFT_EV_CLOSE;
		ev.pid = t->tid;
		ev.tgid = t->tgid;
		ev.fd = fd_arg(a[0]);
		ev.created = WEFT_CREATED_UNKNOWN;
		pt_feed(r, &ev);
		return PT_RESUME_CONT;
#ifdef SYS_open
	case SYS_open:
		return open_entry(t, nr, AT_FDCWD, a[0], (int)a[1], (int)a[2]);
#endif
#ifdef SYS_creat
	case SYS_creat:
		return open_entry(t, nr, AT_FDCWD, a[0],
				  O_CREAT | O_WRONLY | O_TRUNC, (int)a[1]);
#endif
	case SYS_openat:
		return open_entry(t, nr, fd_arg(a[0]), a[1], (int)a[2],
				  (int)a[3]);
	case SYS_openat2: {
		uint64_t how[2] = {0, 0}; /* struct open_how: flags, mode */
		if (a[3] < sizeof(how) ||
		    pt_read_mem(t->tid, a[2], how, sizeof(how)) != 0)
			return PT_RESUME_CONT; /* fails with EFAULT/EINVAL */
		return open_entry(t, nr, fd_arg(a[0]), a[1], (int)how[0],
				  (int)how[1]);
	}
	case SYS_dup:
		return fd_only(t, nr, WEFT_EV_DUP, fd_arg(a[0]));
#ifdef SYS_dup2
	case SYS_dup2:
		return fd_only(t, nr, WEFT_EV_DUP, fd_arg(a[0]));
#endif
	case SYS_dup3:
		fd_only(t, nr, WEFT_EV_DUP, fd_arg(a[0]));
		t->pending.ev.flags = ((int)a[2] & O_CLOEXEC) ? O_CLOEXEC : 0;
		return PT_RESUME_SYSCALL;
	case SYS_fcntl:
		switch ((int)a[1]) {
		case F_DUPFD:
			return fd_only(t, nr, WEFT_EV_DUP, fd_arg(a[0]));
		case F_DUPFD_CLOEXEC:
			fd_only(t, nr, WEFT_EV_DUP, fd_arg(a[0]));
			t->pending.ev.flags = O_CLOEXEC;
			return PT_RESUME_SYSCALL;
		case F_SETFD:
			fd_only(t, nr, WEFT_EV_SETCLOEXEC, fd_arg(a[0]));
			t->pending.ev.flags =
				((int)a[2] & FD_CLOEXEC) ? O_CLOEXEC : 0;
			return PT_RESUME_SYSCALL;
		default:
			return PT_RESUME_CONT;
		}
	case SYS_mmap:
		return mmap_entry(r, t, nr, a);
	case SYS_sendfile:
		return xfer_entry(r, t, nr, fd_arg(a[1]), fd_arg(a[0]));
	case SYS_copy_file_range:
	case SYS_splice:
		return xfer_entry(r, t, nr, fd_arg(a[0]), fd_arg(a[2]));
#ifdef SYS_rename
	case SYS_rename:
		return two_paths(t, nr, WEFT_EV_RENAME, AT_FDCWD, a[0],
				 AT_FDCWD, a[1], 0);
#endif
	case SYS_renameat:
		return two_paths(t, nr, WEFT_EV_RENAME, fd_arg(a[0]), a[1],
				 fd_arg(a[2]), a[3], 0);
	case SYS_renameat2:
		return two_paths(t, nr, WEFT_EV_RENAME, fd_arg(a[0]), a[1],
				 fd_arg(a[2]), a[3], (int)a[4]);
#ifdef SYS_link
	case SYS_link:
		return two_paths(t, nr, WEFT_EV_LINK, AT_FDCWD, a[0], AT_FDCWD,
				 a[1], 0);
#endif
	case SYS_linkat:
		return two_paths(t, nr, WEFT_EV_LINK, fd_arg(a[0]), a[1],
				 fd_arg(a[2]), a[3], (int)a[4]);
#ifdef SYS_symlink
	case SYS_symlink:
		return two_paths(t, nr, WEFT_EV_LINK, -1, a[0], AT_FDCWD, a[1],
				 0);
#endif
	case SYS_symlinkat:
		return two_paths(t, nr, WEFT_EV_LINK, -1, a[0], fd_arg(a[1]),
				 a[2], 0);
#ifdef SYS_unlink
	case SYS_unlink:
		return one_path(t, nr, WEFT_EV_UNLINK, AT_FDCWD, a[0], 0);
#endif
#ifdef SYS_rmdir
	case SYS_rmdir:
		return one_path(t, nr, WEFT_EV_UNLINK, AT_FDCWD, a[0],
				AT_REMOVEDIR);
#endif
	case SYS_unlinkat:
		return one_path(t, nr, WEFT_EV_UNLINK, fd_arg(a[0]), a[1],
				(int)a[2] & AT_REMOVEDIR);
	case SYS_truncate:
		return one_path(t, nr, WEFT_EV_TRUNCATE, AT_FDCWD, a[0], 0);
	case SYS_ftruncate:
		return fd_only(t, nr, WEFT_EV_FTRUNCATE, fd_arg(a[0]));
	case SYS_chdir:
		return one_path(t, nr, WEFT_EV_CHDIR, AT_FDCWD, a[0], 0);
	case SYS_fchdir:
		return fd_only(t, nr, WEFT_EV_FCHDIR, fd_arg(a[0]));
	/* Fork-like calls: the child arrives with PTRACE_EVENT_FORK/VFORK/
	 * CLONE inside the syscall; only the flags are needed from here. */
	case SYS_clone:
		note_clone(t, a[0]);
		return PT_RESUME_CONT;
	case SYS_clone3: {
		uint64_t flags; /* first member of struct clone_args */
		if (a[1] >= sizeof(flags) &&
		    pt_read_mem(t->tid, a[0], &flags, sizeof(flags)) == 0)
			note_clone(t, flags);
		else
			t->clone_known = false;
		return PT_RESUME_CONT;
	}
#ifdef SYS_fork
	case SYS_fork:
		note_clone(t, 0);
		return PT_RESUME_CONT;
#endif
#ifdef SYS_vfork
	case SYS_vfork:
		note_clone(t, CLONE_VFORK | CLONE_VM);
		return PT_RESUME_CONT;
#endif
	default:
		return PT_RESUME_CONT;
	}
}

/* Identity and state of the file an open returned, through the tracee's
 * new fd (not the path: it may have been replaced since): the classifier
 * keeps it to notice an input changing under the run. One stat of a /proc
 * magic link; perf puts all of the tracer's own work at ~1-2% of the loop,
 * the stops' context switches being the rest, so cheaper variants (pidfd_getfd
 * + fstat is three syscalls) were not worth having. */
static void stat_opened(pt_thread *t, int fd, weft_event *ev)
{
	char path[64];
	struct stat st;
	snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int)t->tid, fd);
	if (stat(path, &st) != 0)
		return;
	ev->has_stat = true;
	ev->st_mode = st.st_mode;
	ev->st_dev = st.st_dev;
	ev->st_ino = st.st_ino;
	ev->st_size = st.st_size;
	ev->st_mtime_ns =
		(int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
	ev->st_ctime_ns =
		(int64_t)st.st_ctim.tv_sec * 1000000000 + st.st_ctim.tv_nsec;
}

void pt_decode_exit(pt_run *r, pt_thread *t, int64_t ret)
{
	pt_pending *p = &t->pending;
	weft_event *ev = &p->ev;
	if (p->nr < 0)
		return;
	p->nr = -1;
	ev->pid = t->tid;
	ev->tgid = t->tgid;
	ev->ret = ret;
	if (ret >= 0) {
		bool needs_path = ev->kind == WEFT_EV_OPEN ||
				  ev->kind == WEFT_EV_UNLINK ||
				  ev->kind == WEFT_EV_TRUNCATE ||
				  ev->kind == WEFT_EV_CHDIR;
		bool needs_path2 =
			ev->kind == WEFT_EV_RENAME || ev->kind == WEFT_EV_LINK;
		if ((needs_path && !ev->path) ||
		    (needs_path2 && (!ev->path || !ev->path2))) {
			/* It succeeded on a path we could not read. */
			r->l->dropped_events++;
			return;
		}
		if (ev->kind == WEFT_EV_OPEN)
			stat_opened(t, (int)ret, ev);
		else if (ev->kind == WEFT_EV_DUP)
			ev->fd2 = (int32_t)ret;
	}
	pt_feed(r, ev);
}
