/*
 * agent.c - `weft agent`, the node's one load of the eBPF programs.
 *
 * Start order: take the lock beside the socket (one agent per socket;
 * a second one started in a race leaves quietly), load and attach the
 * programs one after another (load.c), then listen. Wrappers connect
 * over a SOCK_SEQPACKET Unix socket and register the root pid of their
 * workload; the agent grants it only when the credentials the caller
 * had when it connected (SO_PEERCRED and /proc at accept), and still
 * has, could ptrace that process under the kernel's rules
 * (agent_access.c), puts it in the filter map under the connection's
 * owner id, and from then on forwards every record of that tree, one
 * packet per record. SYNC drains the ring buffer and answers SYNCED after
 * the last record, so a wrapper's end-of-run drain loses nothing. A
 * connection that closes takes its processes out of the filter map.
 * With no client for the idle timeout the agent exits, unloading
 * everything.
 *
 * One thread, one epoll loop: records are read on a short timer (the
 * programs wake the agent only when a quarter of the buffer waits).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "ebpf_internal.h"
#include <weft/base.h>

#define AGENT_MAX_CLIENTS 256
#define AGENT_POLL_MS 20
#define AGENT_SNDBUF (4 * 1024 * 1024)
/* After the last registration ends, the syscall programs stay attached
 * this long before they are detached: the next run of a burst (task
 * after task of a Slurm step or a Ray worker) registers without waiting
 * for their attach, and a detach (which waits for the kernel's RCU grace
 * periods, milliseconds) does not hold up a wrapper that is registering. */
#define AGENT_SYSCALLS_LINGER_MS 1000
/* What the agent keeps for one client whose socket is full, beyond the
 * socket's own buffer; past it that client's records are dropped (and
 * counted for it), never waited for. */
#define AGENT_CLIENT_QUEUE_BYTES (4 * 1024 * 1024)

/* A packet waiting for its client's socket to take it. */
typedef struct packet {
	struct packet *next;
	size_t len;
	uint32_t records; /* in it (0: a control message) */
	uint8_t data[];
} packet;

typedef struct client {
	int fd;         /* -1: free slot */
	uint8_t *batch; /* records waiting to be sent (WB_BATCH_BYTES) */
	size_t batched;
	uint32_t batch_records;
	packet *qhead, *qtail; /* what its socket did not take yet */
	size_t qbytes;         /* of records in the queue */
	bool ctl_queued;       /* a reply waits: its next request too */
	uint32_t events;       /* what epoll watches for it */
	uint32_t owner;
	pid_t peer_pid;
	uid_t peer_uid;
	wb_creds creds; /* the connecting process's, captured at accept */
	int creds_err;  /* 0, -ESRCH (gone) or -EPERM (changed) at accept */
	uint64_t dropped_base; /* its slot's kernel drops when it came */
	bool registered;       /* has a process in the filter */
	uint64_t send_drops;   /* its records dropped: it did not read */
} client;

typedef struct agent {
	wb_load *ld;
	int listen_fd, epoll_fd;
	client clients[AGENT_MAX_CLIENTS];
	size_t nclients;
	size_t nregistered; /* clients with a registration */
	/* Nobody is registered but the syscall programs are attached,
	 * since idle_since_ms (detached AGENT_SYSCALLS_LINGER_MS later). */
	bool lingering;
	int64_t idle_since_ms;
	uint32_t next_owner;
	int verbose;
	FILE *err;
} agent;

static volatile sig_atomic_t stop_requested;

static void on_stop_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static client *client_by_owner(agent *a, uint32_t owner)
{
	for (size_t i = 0; i < AGENT_MAX_CLIENTS; i++)
		if (a->clients[i].fd >= 0 && a->clients[i].owner == owner)
			return &a->clients[i];
	return NULL;
}

/* ---- sending: never blocking, a bounded queue per client ----
 *
 * A packet goes straight to the socket when nothing of the client's is
 * queued and the socket takes it; else to the back of its queue, sent
 * when epoll says the socket is writable (client_write). Records past
 * AGENT_CLIENT_QUEUE_BYTES are dropped and counted for that client only:
 * one client that stops reading never holds up the agent or anyone
 * else. Replies are never dropped; while one waits, the client's next
 * request is not read (one answer at a time bounds them). */

/* Watch for what the client's state needs: its requests unless a reply
 * waits, writability while anything waits. */
static void client_watch(agent *a, client *c)
{
	uint32_t ev = (c->ctl_queued ? 0 : EPOLLIN) | (c->qhead ? EPOLLOUT : 0);
	if (ev == c->events)
		return;
	struct epoll_event e = {.events = ev, .data.ptr = c};
	epoll_ctl(a->epoll_fd, EPOLL_CTL_MOD, c->fd, &e);
	c->events = ev;
}

static void queue_free(client *c)
{
	while (c->qhead) {
		packet *p = c->qhead;
		c->qhead = p->next;
		free(p);
	}
	c->qtail = NULL;
	c->qbytes = 0;
	c->ctl_queued = false;
}

/* Send data (records of them; 0: a control message) to c without
 * blocking, queueing what the socket does not take now. */
static void client_send(agent *a, client *c, const void *data, size_t len,
			uint32_t records)
{
	if (!c->qhead) {
		ssize_t n = send(c->fd, data, len, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n == (ssize_t)len)
			return;
		if (n >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
			c->send_drops += records; /* it is going away */
			return;
		}
	}
	packet *p = NULL;
	if (records == 0 || c->qbytes + len <= AGENT_CLIENT_QUEUE_BYTES)
		p = malloc(sizeof(*p) + len);
	if (!p) {
		c->send_drops += records;
		return;
	}
	p->next = NULL;
	p->len = len;
	p->records = records;
	memcpy(p->data, data, len);
	if (c->qtail)
		c->qtail->next = p;
	else
		c->qhead = p;
	c->qtail = p;
	if (records)
		c->qbytes += len;
	else
		c->ctl_queued = true;
	client_watch(a, c);
}

/* The socket is writable: send what waits, in order. */
static void client_write(agent *a, client *c)
{
	while (c->qhead) {
		packet *p = c->qhead;
		ssize_t n = send(c->fd, p->data, p->len,
				 MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n != (ssize_t)p->len)
			c->send_drops += p->records;
		c->qhead = p->next;
		if (p->records)
			c->qbytes -= p->len;
		free(p);
	}
	if (!c->qhead) {
		c->qtail = NULL;
		c->ctl_queued = false;
	}
	client_watch(a, c);
}

static void flush(agent *a, client *c)
{
	if (c->batched == 0)
		return;
	client_send(a, c, c->batch, c->batched, c->batch_records);
	c->batched = 0;
	c->batch_records = 0;
}

static void flush_all(agent *a)
{
	for (size_t i = 0; i < AGENT_MAX_CLIENTS; i++)
		if (a->clients[i].fd >= 0)
			flush(a, &a->clients[i]);
}

/* A record from the ring buffer: into the batch of the connection that
 * owns it (one send per batch, not per record). */
static int forward(void *ctx, const void *data, size_t len)
{
	agent *a = ctx;
	struct wb_record r;
	if (len < sizeof(r) || len > WB_BATCH_BYTES - sizeof(uint32_t))
		return 0;
	memcpy(&r, data, sizeof(r));
	client *c = client_by_owner(a, r.owner);
	if (!c)
		return 0; /* its wrapper left */
	if (c->batched + sizeof(uint32_t) + len > WB_BATCH_BYTES)
		flush(a, c);
	uint32_t n = (uint32_t)len;
	memcpy(c->batch + c->batched, &n, sizeof(n));
	memcpy(c->batch + c->batched + sizeof(n), data, len);
	c->batched += sizeof(n) + len;
	c->batch_records++;
	return 0;
}

/* ---- permission: could the caller ptrace pid? (agent_access.c) ---- */

/* At accept: the connecting process as it is, which must be what
 * SO_PEERCRED says it was at connect (else it changed in between). */
static void capture_creds(client *c, const struct ucred *cred)
{
	c->creds_err = wb_creds_read(cred->pid, &c->creds);
	if (c->creds_err == 0 &&
	    (c->creds.ended || c->creds.uid[1] != cred->uid ||
	     c->creds.gid[1] != cred->gid))
		c->creds_err = -EPERM;
}

/* 0 (*start: the judged target's start time), or -errno with why said
 * (at most a wb_msg's text). */
static int may_register(const client *c, pid_t pid, uint64_t *start, char *why,
			size_t whysz)
{
	wb_creds now, target;
	if (c->creds_err == -ESRCH ||
	    (c->creds_err == 0 && (wb_creds_read(c->peer_pid, &now) != 0 ||
				   now.ended || now.start != c->creds.start))) {
		snprintf(why, whysz,
			 "the process that connected (pid %d) ended",
			 (int)c->peer_pid);
		return -EPERM;
	}
	if (c->creds_err != 0 || !wb_creds_same(&now, &c->creds)) {
		snprintf(why, whysz,
			 "pid %d's credentials changed since it connected",
			 (int)c->peer_pid);
		return -EPERM;
	}
	if (pid <= 0 || wb_creds_read(pid, &target) != 0 || target.ended) {
		snprintf(why, whysz, "no process %d", (int)pid);
		return -ESRCH;
	}
	int scope = wb_ptrace_scope();
	bool ancestor =
		scope == WB_YAMA_RELATIONAL && wb_is_ancestor(c->peer_pid, pid);
	*start = target.start;
	return wb_may_ptrace(&c->creds, &target, scope, ancestor, why, whysz);
}

/* After the target went into the filter map: still the process that was
 * judged (not a reused pid)? */
static bool same_start(pid_t pid, uint64_t start)
{
	wb_creds c;
	return wb_creds_read(pid, &c) == 0 && c.start == start;
}

/* ---- connections ---- */

/* The syscall programs run only while someone is registered, and for
 * AGENT_SYSCALLS_LINGER_MS after: an agent idle longer costs the
 * machine's other processes nothing. */
static int set_registered(agent *a, client *c, bool on)
{
	if (c->registered == on)
		return 0;
	if (on && a->nregistered == 0) {
		/* A no-op while they linger. */
		int rc = wb_syscalls_attach(a->ld, true);
		if (rc != 0)
			return rc;
		a->lingering = false;
	}
	c->registered = on;
	if (on)
		a->nregistered++;
	else if (--a->nregistered == 0) {
		a->lingering = true;
		a->idle_since_ms = weft_mono_ms();
	}
	return 0;
}

/* Detach the syscall programs once nobody registered for the linger. */
static void detach_when_idle(agent *a)
{
	if (!a->lingering ||
	    weft_mono_ms() - a->idle_since_ms < AGENT_SYSCALLS_LINGER_MS)
		return;
	int64_t t0 = weft_mono_ns();
	wb_syscalls_attach(a->ld, false);
	a->lingering = false;
	if (a->verbose)
		fprintf(a->err,
			"weft agent: nobody registered for %d ms; syscall "
			"programs detached in %.1f ms\n",
			AGENT_SYSCALLS_LINGER_MS,
			(double)(weft_mono_ns() - t0) / 1e6);
}

static void client_close(agent *a, client *c)
{
	wb_untrack_owner(a->ld, c->owner);
	set_registered(a, c, false);
	epoll_ctl(a->epoll_fd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	c->fd = -1;
	free(c->batch);
	c->batch = NULL;
	queue_free(c);
	a->nclients--;
	if (a->verbose)
		fprintf(a->err, "weft agent: owner %u left\n", c->owner);
}

static bool owner_slot_taken(agent *a, const client *c)
{
	for (size_t i = 0; i < AGENT_MAX_CLIENTS; i++)
		if (&a->clients[i] != c && a->clients[i].fd >= 0 &&
		    a->clients[i].owner % WB_MAX_OWNERS ==
			    c->owner % WB_MAX_OWNERS)
			return true;
	return false;
}

static void client_accept(agent *a)
{
	int fd = accept4(a->listen_fd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0)
		return;
	struct ucred cred;
	socklen_t len = sizeof(cred);
	client *c = NULL;
	for (size_t i = 0; i < AGENT_MAX_CLIENTS && !c; i++)
		if (a->clients[i].fd < 0)
			c = &a->clients[i];
	uint8_t *batch = c ? malloc(WB_BATCH_BYTES) : NULL;
	if (!batch ||
	    getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
		free(batch);
		close(fd);
		return;
	}
	int sz = AGENT_SNDBUF;
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sz, sizeof(sz)) != 0)
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	memset(c, 0, sizeof(*c));
	c->fd = fd;
	c->batch = batch;
	/* An owner id whose slot in the owners array no connection uses. */
	do {
		c->owner = ++a->next_owner;
	} while (c->owner == 0 || owner_slot_taken(a, c));
	/* Its slot's count so far is earlier connections' losses. */
	c->dropped_base = wb_dropped(a->ld, c->owner);
	c->peer_pid = cred.pid;
	c->peer_uid = cred.uid;
	capture_creds(c, &cred);
	c->events = EPOLLIN;
	struct epoll_event ev = {.events = c->events, .data.ptr = c};
	epoll_ctl(a->epoll_fd, EPOLL_CTL_ADD, fd, &ev);
	a->nclients++;
}

static void reply(agent *a, client *c, uint32_t type, int status,
		  uint64_t dropped, const char *text)
{
	wb_msg m = {.type = type, .status = status, .dropped = dropped};
	snprintf(m.text, sizeof(m.text), "%s", text ? text : "");
	client_send(a, c, &m, sizeof(m), 0);
}

static void client_message(agent *a, client *c)
{
	wb_msg m;
	ssize_t n = recv(c->fd, &m, sizeof(m), MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n != (ssize_t)sizeof(m)) {
		client_close(a, c); /* gone, or not speaking our protocol */
		return;
	}
	char why[sizeof(m.text)] = "";
	int rc;
	switch (m.type) {
	case WB_MSG_REGISTER:
		if (m.version != WB_PROTO_VERSION) {
			snprintf(why, sizeof(why),
				 "agent protocol %d, wrapper's %u",
				 WB_PROTO_VERSION, m.version);
			reply(a, c, WB_MSG_REPLY, -EPROTO, 0, why);
			return;
		}
		uint64_t start = 0;
		rc = may_register(c, m.pid, &start, why, sizeof(why));
		/* Before the root runs: it waits for our reply. */
		if (rc == 0 && (rc = set_registered(a, c, true)) != 0)
			snprintf(why, sizeof(why),
				 "attaching the syscall programs: %s",
				 strerror(-rc));
		if (rc == 0 && (rc = wb_track(a->ld, m.pid, c->owner)) != 0)
			snprintf(why, sizeof(why), "filter map: %s",
				 strerror(-rc));
		if (rc == 0 && !same_start(m.pid, start)) {
			wb_untrack_owner(a->ld, c->owner);
			rc = -ESRCH;
			snprintf(why, sizeof(why), "no process %d", m.pid);
		}
		if (a->verbose)
			fprintf(a->err,
				"weft agent: uid %d pid %d registers %d: %s\n",
				(int)c->peer_uid, (int)c->peer_pid, m.pid,
				rc ? why : "ok");
		reply(a, c, WB_MSG_REPLY, rc, 0, why);
		return;
	case WB_MSG_DEREGISTER:
		wb_untrack_owner(a->ld, c->owner);
		set_registered(a, c, false);
		reply(a, c, WB_MSG_REPLY, 0, 0, "");
		return;
	case WB_MSG_SYNC:
		wb_drain(a->ld);
		flush(a, c);
		reply(a, c, WB_MSG_SYNCED, 0,
		      wb_dropped(a->ld, c->owner) - c->dropped_base +
			      c->send_drops,
		      "");
		return;
	default:
		client_close(a, c);
		return;
	}
}

/* ---- start ---- */

static int make_dirs(const char *sock_path)
{
	char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s", sock_path);
	char *slash = strrchr(dir, '/');
	if (!slash || slash == dir)
		return 0;
	*slash = '\0';
	/* Root's agent serves every user (SO_PEERCRED decides), so its
	 * directory is searchable; a user's agent is the user's alone. */
	mode_t mode = geteuid() == 0 ? 0755 : 0700;
	if (mkdir(dir, mode) != 0 && errno != EEXIST)
		return -1;
	return 0;
}

static int listen_on(const char *path)
{
	struct sockaddr_un sa;
	int fd = wb_unix_socket(path, SOCK_NONBLOCK, &sa);
	if (fd < 0)
		return -1;
	unlink(path); /* stale: the lock says no agent holds it */
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
	    chmod(path, geteuid() == 0 ? 0666 : 0600) != 0 ||
	    listen(fd, 64) != 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

static int serve(agent *a, int idle_ms)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
	epoll_ctl(a->epoll_fd, EPOLL_CTL_ADD, a->listen_fd, &ev);
	int64_t idle_since = weft_mono_ms();
	while (!stop_requested) {
		struct epoll_event evs[32];
		int n = epoll_wait(a->epoll_fd, evs, 32, AGENT_POLL_MS);
		if (n < 0 && errno != EINTR)
			return WEFT_EIO;
		if (wb_drain(a->ld) < 0)
			return WEFT_EIO;
		flush_all(a);
		detach_when_idle(a);
		for (int i = 0; i < n; i++) {
			client *c = evs[i].data.ptr;
			if (!c) {
				client_accept(a);
				continue;
			}
			if (c->fd >= 0 && (evs[i].events & EPOLLOUT))
				client_write(a, c);
			if (c->fd >= 0 &&
			    (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
				client_message(a, c);
		}
		if (a->nclients > 0)
			idle_since = weft_mono_ms();
		else if (idle_ms > 0 && weft_mono_ms() - idle_since >= idle_ms)
			break;
	}
	return 0;
}

int weft_agent_serve(const weft_agent_options *o, FILE *err)
{
	char path[PATH_MAX], lock_path[PATH_MAX + 8];
	if (o->socket_path)
		snprintf(path, sizeof(path), "%s", o->socket_path);
	else if (wb_agent_socket_path(path, sizeof(path)) != 0) {
		fprintf(err, "weft agent: no socket path: XDG_RUNTIME_DIR is "
			     "not set (or set WEFT_AGENT_SOCKET)\n");
		return WEFT_EINVAL;
	}
	if (make_dirs(path) != 0) {
		fprintf(err,
			"weft agent: cannot create the directory of %s: "
			"%s\n",
			path, strerror(errno));
		return WEFT_EIO;
	}
	snprintf(lock_path, sizeof(lock_path), "%s.lock", path);
	int lock = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (lock < 0 || flock(lock, LOCK_EX | LOCK_NB) != 0) {
		int e = errno;
		if (lock >= 0)
			close(lock);
		if (e == EWOULDBLOCK) {
			if (o->verbose)
				fprintf(err,
					"weft agent: another agent "
					"serves %s\n",
					path);
			return 0;
		}
		fprintf(err, "weft agent: %s: %s\n", lock_path, strerror(e));
		return WEFT_EIO;
	}
	agent a = {.listen_fd = -1, .verbose = o->verbose, .err = err};
	for (size_t i = 0; i < AGENT_MAX_CLIENTS; i++)
		a.clients[i].fd = -1;
	char why[512];
	wb_load_stats st = {0};
	size_t rb = o->ringbuf_bytes ? o->ringbuf_bytes : wb_ringbuf_bytes();
	int rc = wb_load_open(&a.ld, rb, forward, &a, &st, why, sizeof(why));
	if (rc != 0) {
		fprintf(err, "weft agent: %s\n", why);
		close(lock);
		return WEFT_EUNSUPPORTED;
	}
	/* Loaded and attached once, to know they work; the syscall ones
	 * stay for the linger (the wrapper that started this agent
	 * registers within it), then wait for a registration. */
	a.lingering = true;
	a.idle_since_ms = weft_mono_ms();
	if (o->verbose)
		fprintf(err,
			"weft agent: loaded in %.1f ms, %u programs attached "
			"in %.1f ms, ring buffer %zu bytes; serving %s\n",
			st.load_ms, st.attached, st.attach_ms, rb, path);
	a.listen_fd = listen_on(path);
	a.epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	if (a.listen_fd < 0 || a.epoll_fd < 0) {
		fprintf(err, "weft agent: cannot listen on %s: %s\n", path,
			strerror(errno));
		rc = WEFT_EIO;
	} else {
		struct sigaction sa = {.sa_handler = on_stop_signal};
		sigaction(SIGTERM, &sa, NULL);
		sigaction(SIGINT, &sa, NULL);
		signal(SIGPIPE, SIG_IGN);
		rc = serve(&a, o->idle_timeout_ms);
	}
	for (size_t i = 0; i < AGENT_MAX_CLIENTS; i++)
		if (a.clients[i].fd >= 0)
			client_close(&a, &a.clients[i]);
	if (a.listen_fd >= 0) {
		unlink(path);
		close(a.listen_fd);
	}
	if (a.epoll_fd >= 0)
		close(a.epoll_fd);
	wb_load_close(a.ld);
	close(lock);
	return rc;
}
