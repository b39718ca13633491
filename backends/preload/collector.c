/*
 * collector.c - the preload backend's run: launch the workload with
 * libweft_preload.so in LD_PRELOAD and a datagram socket to report to,
 * turn the batches every process sends into weft_events for the one
 * classifier, and reap (weft is a child subreaper, so every orphan of the
 * workload comes back here) until no descendant is left.
 *
 * The socket is SOCK_DGRAM in a private 0700 directory: every process of
 * the tree sends to the one receive queue, so batches arrive in the order
 * they were sent (the library sends what others may act on before acting),
 * and SO_PASSCRED has the kernel vouch for each sender's pid.
 *
 * A process's records wait ("held") until the classifier knows it: the
 * FORK its parent sends after fork returns may come after the child's
 * first batch. Processes whose creation the library cannot see (a fork or
 * spawn inside libc: daemon, system, popen) get their FORK made here from
 * the ppid they report.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "launch_internal.h"
#include "preload_internal.h"
#include <weft/base.h>

#define PL_STREAM_BUCKETS 1024
/* How long records of a process wait for its FORK before weft makes it
 * from the reported ppid. */
#define PL_HOLD_MS 500
#define PL_POLL_MS 20
/* While the workload sends, the collector sleeps this long between drains
 * instead of waiting on the socket: a batch sent to a reader waiting on
 * it wakes that reader, which costs the sender a cross-CPU wakeup per
 * batch (measured: cp -r of 4,000 files, one batch a created file,
 * 168 ms traced against 130-140 with the pause). A sender that fills the
 * socket's queue (net.unix.max_dgram_qlen, 10 by default) meanwhile
 * waits at most this long. */
#define PL_BUSY_PAUSE_NS 100000
/* FORKs in one batch whose children are released after it. */
#define PL_RELEASE_MAX 64

struct pl_held {
	struct pl_held *next;
	size_t len;
	uint8_t data[];
};

/* What the collector knows of one process (one pid; a new first batch
 * starts over). */
struct pl_stream {
	struct pl_stream *next;
	pid_t pid, ppid;
	uint32_t next_seq;
	uint16_t how;
	bool ended;    /* its END arrived: its records are complete */
	bool exited;   /* its exit status is known */
	int exit_code;
	bool held;
	int64_t held_since_ms;
	struct pl_held *hold_head, *hold_tail;
};

struct pl_warned {
	struct pl_warned *next;
	char text[];
};

/* Children of weft from before the workload it keeps track of. */
#define PL_FOREIGN_MAX 16

typedef struct pl_run {
	weft_launch *l;
	weft_report *w;
	pl_stats stats;
	int sock;
	struct pl_stream *buckets[PL_STREAM_BUCKETS];
	size_t nheld;
	struct pl_warned *warned;
	const char *sock_path;
	dev_t sock_dev;
	ino_t sock_ino;
	pid_t sender; /* of the batch being fed */
	pid_t release[PL_RELEASE_MAX]; /* held streams its FORKs freed */
	size_t nrelease;
	bool oom;
	/* weft's children from before the workload (the coordinator `weft
	 * submit` started): not the workload's, so the run does not wait
	 * for them to end. */
	pid_t foreign[PL_FOREIGN_MAX];
	size_t nforeign;
} pl_run;

/* ---- streams ---- */

static struct pl_stream *stream_get(pl_run *r, pid_t pid, bool make)
{
	struct pl_stream **b = &r->buckets[(uint32_t)pid % PL_STREAM_BUCKETS];
	for (struct pl_stream *s = *b; s; s = s->next)
		if (s->pid == pid)
			return s;
	if (!make)
		return NULL;
	struct pl_stream *s = calloc(1, sizeof(*s));
	if (!s) {
		r->oom = true;
		return NULL;
	}
	s->pid = pid;
	s->next = *b;
	*b = s;
	return s;
}

static void hold_free(struct pl_stream *s)
{
	while (s->hold_head) {
		struct pl_held *h = s->hold_head;
		s->hold_head = h->next;
		free(h);
	}
	s->hold_tail = NULL;
}

static void streams_free(pl_run *r)
{
	for (size_t i = 0; i < PL_STREAM_BUCKETS; i++)
		while (r->buckets[i]) {
			struct pl_stream *s = r->buckets[i];
			r->buckets[i] = s->next;
			hold_free(s);
			free(s);
		}
	while (r->warned) {
		struct pl_warned *w = r->warned;
		r->warned = w->next;
		free(w);
	}
}

/* ---- feeding ---- */

static void feed(pl_run *r, weft_event *ev)
{
	ev->time_ns = (uint64_t)weft_real_ns();
	if (ev->tgid == 0)
		ev->tgid = ev->pid;
	weft_launch_feed(r->l, "preload", ev);
}

static weft_event event(uint16_t kind, pid_t pid)
{
	weft_event ev = {.kind = kind,
			 .pid = pid,
			 .tgid = pid,
			 .created = WEFT_CREATED_UNKNOWN};
	return ev;
}

/* A warning once per text (every process that execs the same static
 * binary says the same). */
static void warn_once(pl_run *r, const char *text)
{
	for (struct pl_warned *w = r->warned; w; w = w->next)
		if (strcmp(w->text, text) == 0)
			return;
	size_t n = strlen(text) + 1;
	struct pl_warned *w = malloc(sizeof(*w) + n);
	if (w) {
		memcpy(w->text, text, n);
		w->next = r->warned;
		r->warned = w;
	}
	weft_report_warn(r->w, "%s", text);
}

static void release(pl_run *r, struct pl_stream *s);

static void feed_io(pl_run *r, pid_t pid, int fd, unsigned bits)
{
	weft_event ev = event(0, pid);
	ev.fd = fd;
	ev.ret = 1;
	if (bits & PL_B_READ) {
		ev.kind = WEFT_EV_READ;
		feed(r, &ev);
	}
	if (bits & PL_B_WRITE) {
		ev.kind = WEFT_EV_WRITE;
		feed(r, &ev);
	}
}

static void feed_exit(pl_run *r, pid_t pid, int code)
{
	struct pl_stream *s = stream_get(r, pid, false);
	if (s && !s->exited) {
		s->exited = true;
		s->exit_code = code;
	}
	if (!weft_classifier_has_task(r->l->classifier, pid))
		return;
	weft_event ev = event(WEFT_EV_EXIT, pid);
	ev.ret = code;
	ev.flags = 1;
	feed(r, &ev);
}

/* Records that are one event as they come: its kind, how many of the
 * record's strings are its paths, and whether the path is taken from the
 * working directory (the library's truncate and chdir send no dirfd). */
static const struct plain_record {
	uint8_t kind;
	uint8_t npaths;
	bool at_cwd;
} plain[] = {
	[PL_R_RENAME] = {WEFT_EV_RENAME, 2, false},
	[PL_R_LINK] = {WEFT_EV_LINK, 2, false},
	[PL_R_UNLINK] = {WEFT_EV_UNLINK, 1, false},
	[PL_R_TRUNCATE] = {WEFT_EV_TRUNCATE, 1, true},
	[PL_R_CHDIR] = {WEFT_EV_CHDIR, 1, true},
	[PL_R_SETCLOEXEC] = {WEFT_EV_SETCLOEXEC, 0, false},
	[PL_R_FCHDIR] = {WEFT_EV_FCHDIR, 0, false},
};

static int on_record(void *ctx, const pl_record *d)
{
	pl_run *r = ctx;
	const struct pl_rec *rec = &d->r;
	pid_t pid = rec->pid > 0 ? rec->pid : r->sender;
	weft_event ev = event(0, pid);
	r->stats.records++;
	ev.fd = rec->fd;
	ev.fd2 = rec->fd2;
	ev.flags = rec->flags;
	ev.mode = rec->mode;
	ev.created = rec->created;
	switch (rec->kind) {
	case PL_R_IMAGE:
	case PL_R_EXEC: {
		unsigned first = rec->kind == PL_R_IMAGE ? 2 : 1;
		ev.kind = WEFT_EV_EXEC;
		ev.path = d->strs[0][0] ? d->strs[0] : NULL;
		ev.argv = d->strs + first;
		ev.argc = d->nstr - first;
		/* An image the library runs in reports itself while it
		 * starts: its environ is read now, and vouched for only if
		 * it still runs that program. An exec the library does not
		 * see from inside (static, secure) is reported before it
		 * happens: its environment is not known. */
		char *env = NULL;
		ev.env_state = WEFT_EV_ENV_UNKNOWN;
		if (rec->kind == PL_R_IMAGE && ev.path)
			ev.env_state = (uint8_t)weft_env_read_proc(
				pid, ev.path, &env, &ev.env_len);
		ev.env = env;
		feed(r, &ev);
		free(env);
		return 0;
	}
	case PL_R_OPEN:
		ev.kind = WEFT_EV_OPEN;
		ev.ret = rec->fd;
		ev.fd = rec->fd2;
		ev.path = d->strs[0];
		if (d->has_stat) {
			ev.has_stat = true;
			ev.st_mode = d->st.mode;
			ev.st_dev = d->st.dev;
			ev.st_ino = d->st.ino;
			ev.st_size = d->st.size;
			ev.st_mtime_ns = d->st.mtime_ns;
			ev.st_ctime_ns = d->st.ctime_ns;
		}
		feed(r, &ev);
		return 0;
	case PL_R_CLOSE:
		feed_io(r, pid, rec->fd, rec->bits);
		ev.kind = WEFT_EV_CLOSE;
		feed(r, &ev);
		return 0;
	case PL_R_IO:
		feed_io(r, pid, rec->fd, rec->bits);
		return 0;
	case PL_R_DUP:
		ev.kind = WEFT_EV_DUP;
		ev.ret = rec->fd2;
		feed(r, &ev);
		return 0;
	case PL_R_RENAME:
	case PL_R_LINK:
	case PL_R_UNLINK:
	case PL_R_TRUNCATE:
	case PL_R_CHDIR:
	case PL_R_SETCLOEXEC:
	case PL_R_FCHDIR: {
		const struct plain_record *p = &plain[rec->kind];
		ev.kind = p->kind;
		if (p->at_cwd)
			ev.fd = AT_FDCWD;
		ev.path = p->npaths > 0 ? d->strs[0] : NULL;
		ev.path2 = p->npaths > 1 ? d->strs[1] : NULL;
		feed(r, &ev);
		return 0;
	}
	case PL_R_FORK: {
		if (rec->ret <= 0 || rec->ret > INT32_MAX)
			return 0;
		ev.kind = WEFT_EV_FORK;
		ev.ret = rec->ret;
		ev.flags = 0;
		feed(r, &ev);
		/* Its held records go after the rest of this batch (a
		 * spawn's file actions are the child's first events). */
		struct pl_stream *c = stream_get(r, (pid_t)rec->ret, false);
		if (c && c->held && r->nrelease < PL_RELEASE_MAX)
			r->release[r->nrelease++] = c->pid;
		return 0;
	}
	case PL_R_EXIT:
		if (rec->pid > 0)
			feed_exit(r, rec->pid, (int)(rec->ret & 0xff));
		return 0;
	case PL_R_END: {
		struct pl_stream *s = stream_get(r, r->sender, false);
		if (s)
			s->ended = true;
		if (rec->bits & PL_B_CODE)
			feed_exit(r, r->sender, (int)(rec->ret & 0xff));
		return 0;
	}
	case PL_R_WARN:
		warn_once(r, d->strs[0]);
		return 0;
	}
	return 0;
}

static void feed_batch(pl_run *r, pid_t sender, const uint8_t *buf,
		       size_t len)
{
	struct pl_batch h;
	size_t first = r->nrelease;
	r->sender = sender;
	if (pl_batch_decode(buf, len, &h, on_record, r) != WEFT_OK)
		r->stats.bad_batches++;
	/* Releasing feeds more batches, which may release more. */
	while (r->nrelease > first) {
		pid_t pid = r->release[--r->nrelease];
		struct pl_stream *c = stream_get(r, pid, false);
		if (c && c->held)
			release(r, c);
	}
}

/* The classifier does not know s->pid: make its FORK from the ppid it
 * reported (the root stands in for a parent outside the run). */
static void synthesize_fork(pl_run *r, struct pl_stream *s)
{
	weft_classifier *c = r->l->classifier;
	pid_t parent = s->ppid > 0 && weft_classifier_has_task(c, s->ppid)
			       ? s->ppid
			       : r->l->root_pid;
	weft_event ev = event(WEFT_EV_FORK, parent);
	ev.ret = s->pid;
	feed(r, &ev);
	r->stats.synthesized_forks++;
}

static void release(pl_run *r, struct pl_stream *s)
{
	s->held = false;
	r->nheld--;
	if (!weft_classifier_has_task(r->l->classifier, s->pid))
		synthesize_fork(r, s);
	struct pl_held *h = s->hold_head;
	s->hold_head = s->hold_tail = NULL;
	while (h) {
		struct pl_held *next = h->next;
		feed_batch(r, s->pid, h->data, h->len);
		free(h);
		h = next;
	}
}

static void hold(pl_run *r, struct pl_stream *s, const uint8_t *buf,
		 size_t len)
{
	struct pl_held *h = malloc(sizeof(*h) + len);
	if (!h) {
		r->oom = true;
		return;
	}
	memcpy(h->data, buf, len);
	h->len = len;
	h->next = NULL;
	if (s->hold_tail)
		s->hold_tail->next = h;
	else
		s->hold_head = h;
	s->hold_tail = h;
	if (!s->held) {
		s->held = true;
		s->held_since_ms = weft_mono_ms();
		r->nheld++;
		r->stats.held++;
	}
}

/* One datagram from sender (the kernel's word for its pid). */
static void on_batch(pl_run *r, pid_t sender, const uint8_t *buf, size_t len)
{
	struct pl_batch h;
	r->stats.batches++;
	if (len < sizeof(h)) {
		r->stats.bad_batches++;
		return;
	}
	memcpy(&h, buf, sizeof(h));
	if (h.magic != PL_MAGIC || h.pid != sender) {
		r->stats.bad_batches++;
		return;
	}
	struct pl_stream *s = stream_get(r, sender, true);
	if (!s)
		return;
	if (h.seq == UINT32_MAX) {
		/* From a signal handler, outside the sequence. */
	} else if (h.seq == 0) {
		if (s->ended || h.how != PL_HOW_EXEC) {
			/* A new process with this pid (or a fork child). */
			bool was_held = s->held;
			hold_free(s);
			if (was_held)
				r->nheld--;
			*s = (struct pl_stream){.next = s->next, .pid = sender};
		}
		s->ppid = h.ppid;
		s->how = h.how;
		s->ended = false;
		s->next_seq = 1;
	} else {
		if (h.seq != s->next_seq)
			r->stats.lost_batches +=
				h.seq > s->next_seq ? h.seq - s->next_seq : 1;
		s->next_seq = h.seq + 1;
	}
	if (s->held) {
		hold(r, s, buf, len);
		return;
	}
	if (!weft_classifier_has_task(r->l->classifier, sender)) {
		if (s->how == PL_HOW_FORKED || s->how == PL_HOW_SPAWNED) {
			hold(r, s, buf, len); /* its FORK is on its way */
			return;
		}
		synthesize_fork(r, s);
	}
	feed_batch(r, sender, buf, len);
}

static void release_stale(pl_run *r, bool all)
{
	if (!r->nheld)
		return;
	int64_t now = weft_mono_ms();
	for (size_t i = 0; i < PL_STREAM_BUCKETS && r->nheld; i++)
		for (struct pl_stream *s = r->buckets[i]; s; s = s->next)
			if (s->held &&
			    (all || now - s->held_since_ms >= PL_HOLD_MS))
				release(r, s);
}

/* Receive every queued datagram; returns how many. */
static size_t drain(pl_run *r, uint8_t *buf)
{
	size_t got = 0;
	for (;; got++) {
		struct iovec iov = {buf, PL_BATCH_MAX + 1};
		union {
			struct cmsghdr align;
			char b[CMSG_SPACE(sizeof(struct ucred))];
		} ctl;
		struct msghdr msg = {.msg_iov = &iov,
				     .msg_iovlen = 1,
				     .msg_control = ctl.b,
				     .msg_controllen = sizeof(ctl.b)};
		ssize_t n = recvmsg(r->sock, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return got;
		}
		pid_t sender = 0;
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c;
		     c = CMSG_NXTHDR(&msg, c))
			if (c->cmsg_level == SOL_SOCKET &&
			    c->cmsg_type == SCM_CREDENTIALS) {
				struct ucred cr;
				memcpy(&cr, CMSG_DATA(c), sizeof(cr));
				sender = cr.pid;
			}
		if (sender <= 0 || (msg.msg_flags & MSG_TRUNC) ||
		    n > PL_BATCH_MAX) {
			r->stats.bad_batches++;
			continue;
		}
		on_batch(r, sender, buf, (size_t)n);
	}
}

/* ---- the end of the run ---- */

static void warn_incomplete(pl_run *r)
{
	char pids[200] = "";
	size_t len = 0, count = 0;
	for (size_t i = 0; i < PL_STREAM_BUCKETS; i++)
		for (struct pl_stream *s = r->buckets[i]; s; s = s->next) {
			if (s->ended)
				continue;
			if (++count <= 8)
				len += (size_t)snprintf(
					pids + len, sizeof(pids) - len, "%s%d%s",
					count > 1 ? ", " : "", (int)s->pid,
					s->exited && s->exit_code > 128
						? " (killed by a signal)"
						: "");
			if (len >= sizeof(pids))
				len = sizeof(pids) - 1;
		}
	if (count)
		weft_report_warn(r->w,
				 "preload: tracing incomplete: %zu process%s "
				 "ended without their last report (%s%s); "
				 "file accesses after their last report are "
				 "missing",
				 count, count == 1 ? "" : "es", pids,
				 count > 8 ? ", ..." : "");
	if (r->stats.lost_batches || r->stats.bad_batches)
		weft_report_warn(r->w,
				 "preload: tracing incomplete: %llu reports "
				 "lost and %llu malformed ones rejected",
				 (unsigned long long)r->stats.lost_batches,
				 (unsigned long long)r->stats.bad_batches);
	if (r->oom)
		weft_report_warn(r->w, "preload: tracing incomplete: out of "
				       "memory in the collector");
}

/* ---- launch ---- */

static bool is_var(const char *e, const char *name)
{
	size_t n = strlen(name);
	return strncmp(e, name, n) == 0 && e[n] == '=';
}

/* The workload's environment: the caller's, with the library first in
 * LD_PRELOAD and the socket path. */
static char **workload_env(char *const *envp, const char *lib,
			   const char *sock, char **owned, size_t nowned)
{
	size_t n = 0;
	while (envp && envp[n])
		n++;
	char **env = calloc(n + 3, sizeof(*env));
	if (!env)
		return NULL;
	size_t k = 0;
	const char *old = NULL;
	for (size_t i = 0; i < n; i++) {
		if (is_var(envp[i], "LD_PRELOAD"))
			old = envp[i] + strlen("LD_PRELOAD=");
		else if (!is_var(envp[i], PL_ENV_SOCK) &&
			 !is_var(envp[i], PL_ENV_SPAWNED))
			env[k++] = envp[i];
	}
	size_t a = strlen(lib) + (old ? strlen(old) : 0) + 32;
	size_t b = strlen(sock) + 32;
	if (nowned < 2 || !(owned[0] = malloc(a)) || !(owned[1] = malloc(b))) {
		free(env);
		return NULL;
	}
	snprintf(owned[0], a, "LD_PRELOAD=%s%s%s", lib,
		 old && *old ? ":" : "", old && *old ? old : "");
	snprintf(owned[1], b, "%s=%s", PL_ENV_SOCK, sock);
	env[k++] = owned[0];
	env[k++] = owned[1];
	env[k] = NULL;
	return env;
}

/* A private directory with the socket in it. */
static int make_socket(char *dir, size_t dirsz, char *path, size_t pathsz)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	const char *tmp = getenv("TMPDIR");
	for (int i = 0; i < 2; i++) {
		const char *base = i == 0 && tmp && tmp[0] == '/' ? tmp : "/tmp";
		snprintf(dir, dirsz, "%s/weft-preload-XXXXXX", base);
		if (strlen(dir) + 6 >= sizeof(a.sun_path))
			continue;
		if (mkdtemp(dir))
			break;
		dir[0] = '\0';
	}
	if (!dir[0])
		return -1;
	snprintf(path, pathsz, "%s/sock", dir);
	/* dir was checked to leave room for "/sock" in sun_path. */
	memcpy(a.sun_path, path, strlen(path) + 1);
	int s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	int one = 1, big = 8 << 20;
	if (s < 0 ||
	    setsockopt(s, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)) != 0 ||
	    bind(s, (struct sockaddr *)&a, sizeof(a)) != 0) {
		int e = errno;
		if (s >= 0)
			close(s);
		rmdir(dir);
		errno = e;
		return -1;
	}
	/* Bigger when permitted (root: SO_RCVBUFFORCE). */
	if (setsockopt(s, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof(big)) != 0)
		setsockopt(s, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
	return s;
}

/* The root under the name the library gives an image: its real path,
 * links resolved. */
static void seed_root(weft_launch *l, pid_t pid, const char *cwd)
{
	char exe[PATH_MAX];
	weft_launch_add_root(l, pid, cwd,
			     realpath(l->argv[0], exe) ? exe : l->argv[0]);
}

void pl_exec_blind(const char *path, char *why, size_t whysz)
{
	why[0] = '\0';
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	struct stat st;
	unsigned char hdr[64];
	ssize_t n = pread(fd, hdr, sizeof(hdr), 0);
	bool reg = fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
	if (reg && ((st.st_mode & S_ISUID) && st.st_uid != getuid()))
		snprintf(why, whysz, "set-user-ID (secure-exec: the dynamic "
				     "linker ignores LD_PRELOAD)");
	else if (reg && (st.st_mode & S_ISGID) && st.st_gid != getgid())
		snprintf(why, whysz, "set-group-ID (secure-exec: the dynamic "
				     "linker ignores LD_PRELOAD)");
	if (!why[0] && reg && n == (ssize_t)sizeof(hdr) &&
	    memcmp(hdr, "\177ELF", 4) == 0 && hdr[4] == 2) {
		uint64_t phoff;
		uint16_t phentsize, phnum;
		memcpy(&phoff, hdr + 0x20, 8);
		memcpy(&phentsize, hdr + 0x36, 2);
		memcpy(&phnum, hdr + 0x38, 2);
		bool interp = false;
		for (unsigned i = 0; i < phnum && i < 256 && phentsize >= 4;
		     i++) {
			uint32_t type;
			if (pread(fd, &type, 4, (off_t)(phoff + i * phentsize)) !=
			    4)
				break;
			if (type == 3 /* PT_INTERP */)
				interp = true;
		}
		if (!interp)
			snprintf(why, whysz, "a static binary (no PT_INTERP)");
	}
	close(fd);
}

/* The socket's name is how every new image reaches weft; the workload
 * can remove it (it is in its environment). Then tracing is lost from
 * here on: say so, and let the manager fall back. */
static bool socket_gone(pl_run *r)
{
	struct stat st;
	return stat(r->sock_path, &st) != 0 || st.st_ino != r->sock_ino ||
	       st.st_dev != r->sock_dev;
}

/* Every child of this process (all its threads'), from /proc: *n of them
 * into v (at most max), or -1 when /proc cannot say. */
static int list_children(pid_t *v, size_t max, size_t *n)
{
	char path[64];
	*n = 0;
	DIR *d = opendir("/proc/self/task");
	if (!d)
		return -1;
	struct dirent *e;
	int rc = 0;
	while ((e = readdir(d))) {
		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%.20s/children",
			 e->d_name);
		FILE *f = fopen(path, "re");
		if (!f) {
			rc = -1;
			continue;
		}
		long pid;
		while (fscanf(f, "%ld", &pid) == 1)
			if (*n < max)
				v[(*n)++] = (pid_t)pid;
			else
				rc = -1;
		fclose(f);
	}
	closedir(d);
	return rc;
}

static bool is_foreign(const pl_run *r, pid_t p)
{
	for (size_t i = 0; i < r->nforeign; i++)
		if (r->foreign[i] == p)
			return true;
	return false;
}

/* Whether every child left is one from before the workload. */
static bool only_foreign_left(const pl_run *r)
{
	pid_t v[PL_FOREIGN_MAX + 1];
	size_t n;
	if (list_children(v, PL_FOREIGN_MAX + 1, &n) != 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!is_foreign(r, v[i]))
			return false;
	return true;
}

/* Reap until no descendant of the workload is left, feeding batches as
 * they come. */
static void run_loop(pl_run *r, uint8_t *buf)
{
	/* Also wake when the root ends (its pidfd becomes readable), so a
	 * short run does not wait out the timer. */
	int root_pidfd = (int)syscall(SYS_pidfd_open, r->l->root_pid, 0);
	bool root_reaped = false;
	for (;;) {
		bool busy = drain(r, buf) > 0;
		if (socket_gone(r)) {
			weft_launch *l = r->l;
			l->lost = true;
			l->lost_at_ns = weft_real_ns();
			snprintf(l->lost_reason, sizeof(l->lost_reason),
				 "its socket %.300s was removed or replaced "
				 "by the workload",
				 r->sock_path);
			goto done;
		}
		release_stale(r, false);
		for (;;) {
			int status;
			pid_t p = waitpid(-1, &status, WNOHANG);
			if (p > 0) {
				/* What it sent before dying is queued:
				 * take it before its exit. */
				drain(r, buf);
				int code = WIFEXITED(status)
						   ? WEXITSTATUS(status)
						   : 128 + WTERMSIG(status);
				if (p == r->l->root_pid) {
					r->l->exit_code = code;
					root_reaped = true;
				}
				feed_exit(r, p, code);
				continue;
			}
			if (p < 0 && errno == EINTR)
				continue;
			if (p < 0)
				goto done; /* ECHILD: nobody left */
			if (r->nforeign && only_foreign_left(r))
				goto done;
			break;
		}
		/* Busy: a pause, the socket left out (see PL_BUSY_PAUSE_NS);
		 * idle: wait for the next batch. */
		struct pollfd pfd[2] = {
			{.fd = busy ? -1 : r->sock, .events = POLLIN},
			{.fd = root_reaped ? -1 : root_pidfd, .events = POLLIN},
		};
		struct timespec wait = {
			.tv_sec = busy ? 0 : PL_POLL_MS / 1000,
			.tv_nsec = busy ? PL_BUSY_PAUSE_NS
					: PL_POLL_MS % 1000 * 1000000L,
		};
		ppoll(pfd, 2, &wait, NULL);
	}
done:
	if (root_pidfd >= 0)
		close(root_pidfd);
}

int pl_trace(weft_launch *l, weft_report *w, pl_stats *stats)
{
	char lib[PATH_MAX + 256], cwd[PATH_MAX], dir[PATH_MAX],
		sock_path[PATH_MAX + 8], why[256];
	if (pl_library_path(lib, sizeof(lib)) != 0) {
		weft_report_warn(w, "preload: %s", lib);
		errno = ENOENT;
		return WEFT_EIO;
	}
	if (!getcwd(cwd, sizeof(cwd)))
		return WEFT_EIO;
	pl_run r = {.l = l, .w = w, .sock = -1};
	uint8_t *buf = malloc(PL_BATCH_MAX + 1);
	char *owned[2] = {NULL, NULL};
	char **env = NULL;
	int err = WEFT_OK;
	if (!buf)
		return WEFT_ENOMEM;
	r.sock = make_socket(dir, sizeof(dir), sock_path, sizeof(sock_path));
	if (r.sock < 0) {
		free(buf);
		return WEFT_EIO;
	}
	struct stat sst;
	if (stat(sock_path, &sst) == 0) {
		r.sock_dev = sst.st_dev;
		r.sock_ino = sst.st_ino;
	}
	r.sock_path = sock_path;
	env = workload_env(l->envp, lib, sock_path, owned, 2);
	if (!env) {
		err = WEFT_ENOMEM;
		goto out;
	}
	pl_exec_blind(l->argv[0], why, sizeof(why));
	if (why[0])
		weft_report_warn(w,
				 "preload: %s is %s: its file accesses are not "
				 "traced",
				 l->argv[0], why);

	if (list_children(r.foreign, PL_FOREIGN_MAX, &r.nforeign) != 0 &&
	    r.nforeign)
		weft_report_warn(w, "preload: weft has more than %d other "
				    "children; the run may wait for them",
				 PL_FOREIGN_MAX);
	int old_subreaper = 0;
	prctl(PR_GET_CHILD_SUBREAPER, &old_subreaper, 0, 0, 0);
	prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
	pid_t pid;
	sigset_t mask;
	int e = weft_launch_spawn(l->argv, env, &pid, &mask);
	if (e) {
		prctl(PR_SET_CHILD_SUBREAPER, old_subreaper, 0, 0, 0);
		weft_launch_exec_error(l, w, "preload", e);
		err = WEFT_EIO;
		goto out;
	}
	l->root_pid = pid;
	l->exit_code = 0;
	pthread_sigmask(SIG_SETMASK, &mask, NULL);
	seed_root(l, pid, cwd);

	run_loop(&r, buf);
	drain(&r, buf);
	release_stale(&r, true);
	prctl(PR_SET_CHILD_SUBREAPER, old_subreaper, 0, 0, 0);
	if (l->lost) {
		/* The workload runs on; the manager takes it from here. */
		err = WEFT_OK;
		goto out;
	}

	warn_incomplete(&r);
	if (l->verbose >= 1)
		fprintf(stderr,
			"weft preload: %llu batches, %llu records, %llu held, "
			"%llu forks made, %llu lost, %llu malformed\n",
			(unsigned long long)r.stats.batches,
			(unsigned long long)r.stats.records,
			(unsigned long long)r.stats.held,
			(unsigned long long)r.stats.synthesized_forks,
			(unsigned long long)r.stats.lost_batches,
			(unsigned long long)r.stats.bad_batches);
out:
	if (stats)
		*stats = r.stats;
	streams_free(&r);
	close(r.sock);
	unlink(sock_path);
	rmdir(dir);
	free(owned[0]);
	free(owned[1]);
	free(env);
	free(buf);
	return err;
}

static int preload_run(weft_launch *l, weft_report *warnings_to)
{
	return pl_trace(l, warnings_to, NULL);
}

/* A kept verdict is of one library: the one a run would load. */
static void preload_state(FILE *key)
{
	char lib[PATH_MAX + 256];
	if (pl_library_path(lib, sizeof(lib)) == 0)
		weft_preflight_key_stat(key, "preload library", lib);
	else
		fprintf(key, "preload library: none: %s\n", lib);
}

/* ---- Collecting a task weft did not launch (weft task-collect) ----
 *
 * The SPANK plugin's tasks (docs/slurm.md): the task process is not a
 * child of weft, so nothing here forks or reaps. The caller binds the
 * socket before the task execs, pumps it while the task runs, and says
 * when the task ended and with what status (pidfd, slurmstepd). */

typedef struct pl_collect {
	pl_run r;
	uint8_t *buf;
	char dir[PATH_MAX];
	char sock_path[PATH_MAX + 8];
} pl_collect;

/* The task's answer carries the socket: "preload SOCKPATH" (the plugin
 * puts SOCKPATH in its WEFT_PRELOAD_SOCK, the library in LD_PRELOAD). */
static int collect_open(weft_launch *l, weft_report *w,
			const weft_collect_opts *o, weft_collect **out,
			char *ready, size_t readysz, char *err, size_t errsz)
{
	*out = NULL;
	pl_collect *c = calloc(1, sizeof(*c));
	if (!c || !(c->buf = malloc(PL_BATCH_MAX + 1))) {
		free(c);
		snprintf(err, errsz, "preload socket: %s",
			 weft_strerror(WEFT_ENOMEM));
		return WEFT_ENOMEM;
	}
	c->r.l = l;
	c->r.w = w;
	c->r.sock = make_socket(c->dir, sizeof(c->dir), c->sock_path,
				sizeof(c->sock_path));
	if (c->r.sock < 0 || strlen(c->sock_path) + 9 > readysz) {
		if (c->r.sock >= 0) {
			close(c->r.sock);
			unlink(c->sock_path);
			rmdir(c->dir);
		}
		free(c->buf);
		free(c);
		snprintf(err, errsz, "preload socket: %s",
			 weft_strerror(WEFT_EIO));
		return WEFT_EIO;
	}
	struct stat sst;
	if (stat(c->sock_path, &sst) == 0) {
		c->r.sock_dev = sst.st_dev;
		c->r.sock_ino = sst.st_ino;
	}
	c->r.sock_path = c->sock_path;
	l->exit_code = 0;
	seed_root(l, l->root_pid, o->cwd);
	snprintf(ready, readysz, "preload %s", c->sock_path);
	*out = (weft_collect *)c;
	return WEFT_OK;
}

static int collect_fd(const weft_collect *wc)
{
	const pl_collect *c = (const pl_collect *)wc;
	return c->r.sock;
}

static void collect_pump(weft_collect *wc)
{
	pl_collect *c = (pl_collect *)wc;
	drain(&c->r, c->buf);
	release_stale(&c->r, false);
}

/* Without a word from slurmstepd (code -1): what the library said of the
 * root's end, if it did. */
static int collect_end(weft_collect *wc, int code)
{
	pl_collect *c = (pl_collect *)wc;
	pl_run *r = &c->r;
	drain(r, c->buf);
	release_stale(r, true);
	struct pl_stream *s = stream_get(r, r->l->root_pid, false);
	if (code < 0)
		code = s && s->exited ? s->exit_code : -1;
	r->l->exit_code = code < 0 ? 0 : code;
	if (code >= 0 && (!s || !s->exited))
		feed_exit(r, r->l->root_pid, code);
	return code;
}

static void collect_close(weft_collect *wc)
{
	pl_collect *c = (pl_collect *)wc;
	if (!c)
		return;
	drain(&c->r, c->buf);
	release_stale(&c->r, true);
	warn_incomplete(&c->r);
	streams_free(&c->r);
	close(c->r.sock);
	unlink(c->sock_path);
	rmdir(c->dir);
	free(c->buf);
	free(c);
}

const weft_backend weft_backend_preload = {
	.name = "preload",
	.preflight = pl_preflight,
	.check_command = pl_check_command,
	.preflight_state = preload_state,
	.run = preload_run,
	.attach = NULL,
	.collect_open = collect_open,
	.collect_fd = collect_fd,
	.collect_pump = collect_pump,
	.collect_end = collect_end,
	.collect_close = collect_close,
};
