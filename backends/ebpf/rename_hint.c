/*
 * rename_hint.c - did a rename's new name exist before the rename? The
 * classifier needs it ("created": an atomic save over an existing file
 * replaces it, it does not create it), the BPF programs cannot look a
 * path up, and by the time the record reaches user space the rename has
 * happened. So the workload gets a seccomp filter that stops only
 * rename, renameat and renameat2 for user-space notification: a
 * supervisor thread here reads the new name from the process, looks it
 * up, notes the answer for that thread, and lets the syscall continue
 * unchanged (SECCOMP_USER_NOTIF_FLAG_CONTINUE). Renames are rare; every
 * other syscall never leaves the kernel.
 *
 * The filter is only installed with CAP_SYS_ADMIN (without it seccomp
 * demands no_new_privs, which would strip set-user-ID programs of their
 * privileges, and eBPF's point is to see them as they are); otherwise the
 * hint stays unknown. The thread serves until every process holding the
 * filter has ended, also after the run gave up tracing (lost), since an
 * unanswered notification would hang the workload's rename.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>

#include "ebpf_internal.h"

#define HINT_SLOTS 64

struct wb_hints {
	pthread_t thread;
	pthread_mutex_t mu;
	int listener;
	bool done;      /* the thread has finished */
	bool abandoned; /* the run left: the thread frees this */
	struct {
		pid_t tid;
		int8_t created;
	} slot[HINT_SLOTS];
};

/* ---- in the forked child (async-signal-safe) ---- */

int wb_hints_install(void)
{
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
			 offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
			 offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_rename, 3, 0),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_renameat, 2, 0),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_renameat2, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF),
	};
	struct sock_fprog prog = {.len = sizeof(f) / sizeof(f[0]), .filter = f};
	return (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER,
			    SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog);
}

/* Send fd over the socket sock (SCM_RIGHTS); 0 or -1. */
int wb_hints_send_fd(int sock, int fd)
{
	char c = 'L';
	struct iovec iov = {.iov_base = &c, .iov_len = 1};
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	memset(&u, 0, sizeof(u));
	struct msghdr m = {.msg_iov = &iov,
			   .msg_iovlen = 1,
			   .msg_control = u.buf,
			   .msg_controllen = sizeof(u.buf)};
	struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	return sendmsg(sock, &m, MSG_NOSIGNAL) == 1 ? 0 : -1;
}

int wb_hints_recv_fd(int sock)
{
	char c;
	struct iovec iov = {.iov_base = &c, .iov_len = 1};
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct msghdr m = {.msg_iov = &iov,
			   .msg_iovlen = 1,
			   .msg_control = u.buf,
			   .msg_controllen = sizeof(u.buf)};
	if (recvmsg(sock, &m, MSG_CMSG_CLOEXEC) != 1)
		return -1;
	struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
	if (!cm || cm->cmsg_type != SCM_RIGHTS ||
	    cm->cmsg_len != CMSG_LEN(sizeof(int)))
		return -1;
	int fd;
	memcpy(&fd, CMSG_DATA(cm), sizeof(int));
	return fd;
}

/* ---- the supervisor thread ---- */

/* Read the NUL-terminated string at addr of pid, a page at a time (the
 * string may end just before an unmapped page). */
static bool read_string(pid_t pid, uint64_t addr, char *buf, size_t bufsz)
{
	size_t got = 0;
	while (got < bufsz) {
		size_t page = 4096 - ((addr + got) & 4095);
		size_t want = page < bufsz - got ? page : bufsz - got;
		struct iovec local = {buf + got, want};
		struct iovec remote = {(void *)(uintptr_t)(addr + got), want};
		ssize_t n = process_vm_readv(pid, &local, 1, &remote, 1, 0);
		if (n <= 0)
			return false;
		if (memchr(buf + got, '\0', (size_t)n))
			return true;
		got += (size_t)n;
	}
	return false;
}

static int8_t lookup(const struct seccomp_notif *n)
{
	int dirfd = AT_FDCWD;
	uint64_t addr = n->data.args[1];
	if (n->data.nr != SYS_rename) {
		dirfd = (int)n->data.args[2];
		addr = n->data.args[3];
	}
	char name[WB_PATH_MAX], full[WB_PATH_MAX + 64];
	if (!read_string((pid_t)n->pid, addr, name, sizeof(name)))
		return WEFT_CREATED_UNKNOWN;
	int len;
	if (name[0] == '/')
		len = snprintf(full, sizeof(full), "%s", name);
	else if (dirfd == AT_FDCWD)
		len = snprintf(full, sizeof(full), "/proc/%d/cwd/%s",
			       (int)n->pid, name);
	else
		len = snprintf(full, sizeof(full), "/proc/%d/fd/%d/%s",
			       (int)n->pid, dirfd, name);
	struct stat st;
	if (len < 0 || (size_t)len >= sizeof(full))
		return WEFT_CREATED_UNKNOWN;
	if (lstat(full, &st) == 0)
		return WEFT_CREATED_NO;
	return errno == ENOENT ? WEFT_CREATED_YES : WEFT_CREATED_UNKNOWN;
}

static void note(struct wb_hints *h, pid_t tid, int8_t created)
{
	pthread_mutex_lock(&h->mu);
	size_t free_slot = HINT_SLOTS;
	for (size_t i = 0; i < HINT_SLOTS; i++) {
		if (h->slot[i].tid == tid) {
			free_slot = i;
			break;
		}
		if (!h->slot[i].tid && free_slot == HINT_SLOTS)
			free_slot = i;
	}
	if (free_slot == HINT_SLOTS)
		free_slot = (size_t)tid % HINT_SLOTS; /* full: overwrite */
	h->slot[free_slot].tid = tid;
	h->slot[free_slot].created = created;
	pthread_mutex_unlock(&h->mu);
}

static void *serve(void *arg)
{
	struct wb_hints *h = arg;
	struct seccomp_notif n;
	struct seccomp_notif_resp resp;
	for (;;) {
		struct pollfd p = {.fd = h->listener, .events = POLLIN};
		if (poll(&p, 1, -1) < 0 && errno == EINTR)
			continue;
		if (p.revents & (POLLHUP | POLLERR | POLLNVAL))
			break; /* no process holds the filter any more */
		memset(&n, 0, sizeof(n));
		if (ioctl(h->listener, SECCOMP_IOCTL_NOTIF_RECV, &n) != 0)
			continue; /* ENOENT: its caller was killed meanwhile */
		note(h, (pid_t)n.pid, lookup(&n));
		memset(&resp, 0, sizeof(resp));
		resp.id = n.id;
		resp.flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
		ioctl(h->listener, SECCOMP_IOCTL_NOTIF_SEND, &resp);
	}
	close(h->listener);
	pthread_mutex_lock(&h->mu);
	h->done = true;
	bool free_it = h->abandoned;
	pthread_mutex_unlock(&h->mu);
	if (free_it) {
		pthread_mutex_destroy(&h->mu);
		free(h);
	}
	return NULL;
}

wb_hints *wb_hints_start(int listener)
{
	wb_hints *h = calloc(1, sizeof(*h));
	if (!h) {
		close(listener);
		return NULL;
	}
	h->listener = listener;
	pthread_mutex_init(&h->mu, NULL);
	if (pthread_create(&h->thread, NULL, serve, h) != 0) {
		close(listener);
		pthread_mutex_destroy(&h->mu);
		free(h);
		return NULL;
	}
	return h;
}

int8_t wb_hints_take(wb_hints *h, pid_t tid)
{
	int8_t c = WEFT_CREATED_UNKNOWN;
	if (!h)
		return c;
	pthread_mutex_lock(&h->mu);
	for (size_t i = 0; i < HINT_SLOTS; i++)
		if (h->slot[i].tid == tid) {
			c = h->slot[i].created;
			h->slot[i].tid = 0;
			break;
		}
	pthread_mutex_unlock(&h->mu);
	return c;
}

void wb_hints_stop(wb_hints *h)
{
	if (!h)
		return;
	pthread_mutex_lock(&h->mu);
	if (!h->done) {
		/* Processes with the filter may live on (the run lost its
		 * tracer, or one escaped): keep answering them; the thread
		 * frees this when the last is gone. */
		h->abandoned = true;
		pthread_mutex_unlock(&h->mu);
		pthread_detach(h->thread);
		return;
	}
	pthread_mutex_unlock(&h->mu);
	pthread_join(h->thread, NULL);
	pthread_mutex_destroy(&h->mu);
	free(h);
}
