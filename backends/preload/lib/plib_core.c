/*
 * plib_core.c - libweft_preload.so's state: image start and end, the
 * batch buffer and its lock, the datagram socket to the collector, and
 * the per-fd slots that turn every read and write of an open-file
 * lifetime into one bit.
 *
 * Order is what the collector relies on: records of one process arrive in
 * program order (one buffer, appended under one lock), and whatever
 * another process may act on (a file published, a child forked) is sent
 * before the call returns, so the kernel's datagram queue orders it
 * before anything the other process does next.
 */

#include "plib.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#ifndef O_TMPFILE
#define O_TMPFILE (020000000 | O_DIRECTORY)
#endif

int pl_active;
_Atomic uint32_t *pl_slots;
struct pl_snap *pl_snaps;
char **pl_names;
_Atomic int pl_max_fd = -1;
_Atomic uint32_t pl_cwd_gen;
int pl_exit_code;
bool pl_exit_known;
__thread int pl_in_fork_wrapper;

static struct sockaddr_un pl_addr;
static socklen_t pl_addrlen;
static int pl_sock = -1;
static bool pl_broken;
static pid_t pl_pid, pl_ppid;
static uint16_t pl_how;
static uint32_t pl_seq;
static _Alignas(8) unsigned char pl_buf[PL_BATCH_MAX];
static size_t pl_len = sizeof(struct pl_batch);
static _Atomic int pl_lock_word;
static __thread int pl_lock_held;
static _Atomic int pl_ended;

void *pl_real(const char *name)
{
	void *f = dlsym(RTLD_NEXT, name);
	if (!f) {
		/* Nothing to forward to: the process cannot go on sanely. */
		static const char msg[] = "weft preload: a libc function is "
					  "missing\n";
		if (write(2, msg, sizeof(msg) - 1) < 0)
			_exit(127);
		_exit(127);
	}
	return f;
}

/* Our own calls go to libc directly, never through our wrappers. */
static ssize_t sys_send(int fd, const void *b, size_t n)
{
	PL_REAL(sendto);
	return real_fn(fd, b, n, MSG_NOSIGNAL, (struct sockaddr *)&pl_addr,
		       pl_addrlen);
}

static int sys_close(int fd)
{
	PL_REAL(close);
	return real_fn(fd);
}

/* fcntl is wrapped (F_DUPFD makes records): ours goes around it. */
static int sys_fcntl(int fd, int cmd, long arg)
{
	PL_REAL(fcntl);
	return real_fn(fd, cmd, arg);
}

pid_t pl_self(void)
{
	return pl_pid;
}

bool pl_first_batch_pending(void)
{
	return pl_seq == 0;
}

/* ---- the socket ---- */

int pl_own_fd(void)
{
	return pl_sock;
}

bool pl_is_own_fd(int fd)
{
	return pl_sock >= 0 && fd == pl_sock;
}

/* High in the fd table, where programs that take the lowest free fd never
 * look, and close-on-exec: the workload's fd table keeps its shape. */
static int high_fd(int fd)
{
	struct rlimit rl;
	int floor = 1000;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 1100)
		floor = rl.rlim_cur > 64 ? (int)rl.rlim_cur - 32 : 10;
	int h = sys_fcntl(fd, F_DUPFD_CLOEXEC, floor);
	if (h < 0)
		return fd;
	sys_close(fd);
	return h;
}

static int open_socket(void)
{
	int s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return -1;
	/* A collector that stops reading must not hang the workload. */
	struct timeval tv = {5, 0};
	setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	int big = 1 << 20;
	setsockopt(s, SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
	return high_fd(s);
}

/* The workload wants our fd number (dup2 onto it): move out of the way. */
void pl_move_own_fd(void)
{
	if (pl_sock < 0)
		return;
	int s = sys_fcntl(pl_sock, F_DUPFD_CLOEXEC, pl_sock + 1);
	if (s >= 0)
		sys_close(pl_sock);
	pl_sock = s;
}

void pl_forget_own_fd(void)
{
	pl_sock = -1;
}

/* ---- the lock ---- */

void pl_lock(void)
{
	while (atomic_exchange_explicit(&pl_lock_word, 1,
					memory_order_acquire))
		sched_yield();
	pl_lock_held = 1;
}

void pl_unlock(void)
{
	pl_lock_held = 0;
	atomic_store_explicit(&pl_lock_word, 0, memory_order_release);
}

bool pl_lock_held_here(void)
{
	return pl_lock_held;
}

/* ---- batches ---- */

void pl_out_init(pl_out *o, int kind)
{
	memset(&o->r, 0, sizeof(o->r));
	o->r.kind = (uint16_t)kind;
	o->r.created = -1;
	o->st = NULL;
	o->nstr = 0;
}

void pl_out_file(pl_out *o, int kind, int fd, int fd2, int flags,
		 int8_t created, const char *path)
{
	pl_out_init(o, kind);
	o->r.fd = fd;
	o->r.fd2 = fd2;
	o->r.flags = flags;
	o->r.created = created;
	if (path)
		o->strs[o->nstr++] = path;
}

void pl_out_add_argv(pl_out *o, int argc, char *const argv[])
{
	size_t bytes = 0;
	for (int i = 0; argv && (argc < 0 || i < argc) && argv[i] &&
			o->nstr < PL_MAX_STR;
	     i++) {
		size_t len = strlen(argv[i]) + 1;
		if (bytes + len > PL_MAX_ARGV_BYTES)
			break;
		bytes += len;
		o->strs[o->nstr++] = argv[i];
	}
}

static size_t align_up(size_t n)
{
	return (n + PL_ALIGN - 1) & ~(size_t)(PL_ALIGN - 1);
}

static void fill_header(unsigned char *buf, size_t len, uint32_t seq,
			uint16_t how)
{
	struct pl_batch h = {
		.magic = PL_MAGIC,
		.version = PL_VERSION,
		.how = seq == 0 ? how : PL_HOW_CONT,
		.pid = pl_pid,
		.ppid = pl_ppid,
		.seq = seq,
		.len = (uint32_t)len,
	};
	memcpy(buf, &h, sizeof(h));
}

/* Send buf; on a broken socket (closed by the workload, fd reused) make a
 * new one and try again. A collector that is gone or stuck breaks the
 * channel: from then on nothing is sent, and the collector, missing this
 * process's END, says the record is incomplete. */
static bool send_batch(const unsigned char *buf, size_t len)
{
	if (pl_broken)
		return false;
	for (int attempt = 0; attempt < 2; attempt++) {
		if (pl_sock < 0 && (pl_sock = open_socket()) < 0)
			break;
		ssize_t n;
		do
			n = sys_send(pl_sock, buf, len);
		while (n < 0 && errno == EINTR);
		if (n == (ssize_t)len)
			return true;
		if (n < 0 && (errno == EBADF || errno == ENOTSOCK ||
			      errno == EISCONN || errno == EOPNOTSUPP ||
			      errno == EPROTOTYPE)) {
			pl_sock = -1; /* not ours any more: leave it */
			continue;
		}
		break;
	}
	pl_broken = true;
	return false;
}

void pl_send_locked(void)
{
	if (pl_len <= sizeof(struct pl_batch))
		return;
	int saved = errno;
	pid_t now = getpid();
	if (now != pl_pid) {
		/* A child made by a raw clone, past our fork wrapper and the
		 * atfork handlers: it is someone else now. */
		pl_set_identity(now, pl_pid, PL_HOW_FORKED_SELF);
		pl_len = sizeof(struct pl_batch);
		errno = saved;
		return;
	}
	fill_header(pl_buf, pl_len, pl_seq, pl_how);
	send_batch(pl_buf, pl_len);
	pl_seq++;
	pl_len = sizeof(struct pl_batch);
	errno = saved;
}

static size_t out_size(const pl_out *o, size_t *lens)
{
	size_t n = sizeof(struct pl_rec) + (o->st ? sizeof(struct pl_stat) : 0);
	for (unsigned i = 0; i < o->nstr; i++) {
		lens[i] = o->strs[i] ? strlen(o->strs[i]) : 0;
		n += lens[i] + 1;
	}
	return align_up(n);
}

static void write_out(unsigned char *dst, pl_out *o, const size_t *lens,
		      size_t size)
{
	o->r.size = (uint16_t)size;
	o->r.nstr = (uint16_t)o->nstr;
	if (o->st)
		o->r.bits |= PL_B_STAT;
	unsigned char *p = dst;
	memcpy(p, &o->r, sizeof(o->r));
	p += sizeof(o->r);
	if (o->st) {
		memcpy(p, o->st, sizeof(*o->st));
		p += sizeof(*o->st);
	}
	for (unsigned i = 0; i < o->nstr; i++) {
		if (lens[i])
			memcpy(p, o->strs[i], lens[i]);
		p[lens[i]] = '\0';
		p += lens[i] + 1;
	}
	memset(p, 0, (size_t)(dst + size - p));
}

void pl_append_locked(pl_out *o)
{
	size_t lens[PL_MAX_STR];
	size_t size = out_size(o, lens);
	/* Strings are bounded (paths, argv cut at PL_MAX_ARGV_BYTES) so a
	 * record always fits an empty batch. */
	if (size > PL_BATCH_MAX - sizeof(struct pl_batch) || size > 0xfff8)
		return;
	if (pl_len + size > PL_BATCH_MAX)
		pl_send_locked();
	write_out(pl_buf + pl_len, o, lens, size);
	pl_len += size;
}

/* A record from inside a signal handler that interrupted this thread
 * holding the lock: sent on its own, outside the numbered sequence. */
static void emit_alone(pl_out *o)
{
	size_t lens[PL_MAX_STR];
	size_t size = out_size(o, lens);
	_Alignas(8) unsigned char buf[sizeof(struct pl_batch) + 8192];
	if (sizeof(struct pl_batch) + size > sizeof(buf))
		return;
	fill_header(buf, sizeof(struct pl_batch) + size, UINT32_MAX, 0);
	write_out(buf + sizeof(struct pl_batch), o, lens, size);
	send_batch(buf, sizeof(struct pl_batch) + size);
}

void pl_emit(pl_out *o, bool send_now)
{
	if (!pl_active)
		return;
	if (pl_lock_held) {
		emit_alone(o);
		return;
	}
	int saved = errno;
	pl_lock();
	pl_append_locked(o);
	if (send_now)
		pl_send_locked();
	pl_unlock();
	errno = saved;
}

/* ---- fd slots ---- */

static void bump_max_fd(int fd)
{
	int m = atomic_load_explicit(&pl_max_fd, memory_order_relaxed);
	while (fd > m && !atomic_compare_exchange_weak(&pl_max_fd, &m, fd))
		;
}

static int64_t ts_ns(struct timespec t)
{
	return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static void snapshot(int fd, const struct stat *st, int64_t off)
{
	pl_snaps[fd].size = st->st_size;
	pl_snaps[fd].mtime_ns = ts_ns(st->st_mtim);
	pl_snaps[fd].off = off;
}

static uint32_t access_bits(int flags)
{
	int acc = flags & O_ACCMODE;
	return acc == O_RDONLY ? PL_S_RDONLY : PL_S_WRITABLE;
}

/* First I/O on an fd the library did not open (inherited, or made by a
 * call it does not wrap: pipe, socket, accept): look once. */
void pl_note_io_slow(int fd, uint32_t bit)
{
	pl_out o;
	if (fd < 0)
		return;
	if ((unsigned)fd >= PL_SLOTS) {
		/* No slot: report every such call (rare). */
		pl_out_init(&o, PL_R_IO);
		o.r.fd = fd;
		o.r.bits = (uint8_t)bit;
		pl_emit(&o, false);
		return;
	}
	struct stat st;
	uint32_t v;
	if (fstat(fd, &st) != 0)
		return;
	if (!S_ISREG(st.st_mode)) {
		v = PL_S_UNTRACKED;
	} else {
		int fl = sys_fcntl(fd, F_GETFL, 0);
		v = PL_S_KNOWN | bit | (fl >= 0 ? access_bits(fl) : 0);
	}
	uint32_t zero = 0;
	if (!atomic_compare_exchange_strong(&pl_slots[fd], &zero, v)) {
		atomic_fetch_or(&pl_slots[fd], v & (PL_B_READ | PL_B_WRITE));
	} else if (pl_names[fd] && !pl_lock_held) {
		/* The name of an fd closed by a call not seen: not this
		 * one's. */
		pl_lock();
		pl_name_closed_locked(fd);
		pl_unlock();
	}
	bump_max_fd(fd);
}

uint32_t pl_unreported_bits(int fd, uint32_t s, bool heuristics)
{
	uint32_t bits = s & (PL_B_READ | PL_B_WRITE);
	if (!heuristics || !(s & PL_S_KNOWN) || (unsigned)fd >= PL_SLOTS)
		return bits;
	if ((s & PL_S_RDONLY) && !(s & (PL_B_READ | PL_S_RREP))) {
		off_t off = lseek(fd, 0, SEEK_CUR);
		if (off > pl_snaps[fd].off)
			bits |= PL_B_READ;
	}
	if ((s & PL_S_WRITABLE) && (s & PL_S_SNAP) &&
	    !(s & (PL_B_WRITE | PL_S_WREP))) {
		struct stat st;
		if (fstat(fd, &st) == 0 &&
		    (st.st_size != pl_snaps[fd].size ||
		     ts_ns(st.st_mtim) != pl_snaps[fd].mtime_ns))
			bits |= PL_B_WRITE;
	}
	return bits;
}

static void note_reported(int fd, uint32_t s, uint32_t bits);

void pl_flush_io_locked(bool heuristics)
{
	int max = atomic_load(&pl_max_fd);
	for (int fd = 0; fd <= max && fd < PL_SLOTS; fd++) {
		uint32_t s = atomic_load_explicit(&pl_slots[fd],
						  memory_order_relaxed);
		if (!(s & PL_S_KNOWN))
			continue;
		if (s & PL_S_DEFERRED) {
			/* Its reads are of a path already reported read. */
			atomic_fetch_and(&pl_slots[fd], ~(uint32_t)PL_B_READ);
			continue;
		}
		uint32_t bits = pl_unreported_bits(fd, s, heuristics);
		if (!bits)
			continue;
		uint32_t rep = ((bits & PL_B_READ) ? PL_S_RREP : 0) |
			       ((bits & PL_B_WRITE) ? PL_S_WREP : 0);
		atomic_fetch_and(&pl_slots[fd], ~(PL_B_READ | PL_B_WRITE));
		atomic_fetch_or(&pl_slots[fd], rep);
		note_reported(fd, s, bits);
		if (heuristics && ((bits & PL_B_WRITE) ||
				   (s & (PL_S_WREP | PL_S_PUB))))
			pl_moves_note_written(fd);
		pl_out o;
		pl_out_init(&o, PL_R_IO);
		o.r.fd = fd;
		o.r.bits = (uint8_t)bits;
		pl_append_locked(&o);
	}
}

void pl_materialize_locked(int only)
{
	int max = only >= 0 ? only : atomic_load(&pl_max_fd);
	for (int fd = only >= 0 ? only : 0; fd <= max && fd < PL_SLOTS; fd++) {
		uint32_t s = atomic_load(&pl_slots[fd]);
		if (!(s & PL_S_DEFERRED))
			continue;
		char proc[64], path[PATH_MAX];
		snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
		ssize_t n = readlink(proc, path, sizeof(path) - 1);
		atomic_fetch_and(&pl_slots[fd], ~(uint32_t)PL_S_DEFERRED);
		if (n <= 0 || path[0] != '/')
			continue; /* gone meanwhile: nothing to say */
		path[n] = '\0';
		atomic_fetch_or(&pl_slots[fd], PL_S_OPENED);
		pl_out o;
		pl_out_file(&o, PL_R_OPEN, fd, AT_FDCWD, O_RDONLY, 0, path);
		pl_append_locked(&o);
	}
}

/* ---- opens ---- */

int8_t pl_created_hint(int dirfd, const char *path, int flags)
{
	struct stat st;
#ifdef O_TMPFILE
	if ((flags & O_TMPFILE) == O_TMPFILE)
		return -1; /* path is the directory */
#endif
	if (!(flags & O_CREAT))
		return 0;
	if (flags & O_EXCL)
		return 1;
	if (!path)
		return -1;
	if (fstatat(dirfd, path, &st, 0) == 0)
		return 0;
	return errno == ENOENT ? 1 : -1;
}

/* ---- Ray task boundaries ----
 *
 * Under `weft wrap --ray` the wrapper cuts this process's record into one
 * window per task at each open of a marker file in WEFT_RAY_MARKS. What
 * was reported once per fd lifetime (a read, a write) or once per path
 * (read_reported) must be reported again in the next window, or a file
 * kept open across tasks counts only for the first task that used it. */
static char pl_marks[PATH_MAX];
static size_t pl_marks_len; /* 0: not under wrap --ray */
/* Bumped at each boundary: read_reported flags of older ones are stale. */
static _Atomic uint32_t pl_mark_gen;

static void marks_init(void)
{
	const char *m = getenv("WEFT_RAY_MARKS");
	if (!m || m[0] != '/')
		return;
	size_t n = strlen(m);
	while (n > 1 && m[n - 1] == '/')
		n--;
	if (n >= sizeof(pl_marks))
		return;
	memcpy(pl_marks, m, n);
	pl_marks[n] = '\0';
	pl_marks_len = n;
}

static bool is_marker(const char *path)
{
	return pl_marks_len && path && path[0] == '/' &&
	       memcmp(path, pl_marks, pl_marks_len) == 0 &&
	       path[pl_marks_len] == '/';
}

/* A marker is being opened (its OPEN not appended yet): report what is
 * pending, so it lands in the window that ends here, then forget what
 * was reported, so the next read or write of every open fd lands in the
 * next one. Under the lock. */
static void task_boundary_locked(void)
{
	/* Held-back OPENs first: reads of them count again from now on. */
	pl_materialize_locked(-1);
	pl_flush_io_locked(true);
	int max = atomic_load(&pl_max_fd);
	for (int fd = 0; fd <= max && fd < PL_SLOTS; fd++) {
		uint32_t s = atomic_load(&pl_slots[fd]);
		if (!(s & PL_S_KNOWN))
			continue;
		/* What the snapshot checks at close compare against: now, so
		 * unseen I/O of the last window is not counted again. */
		if (s & PL_S_RDONLY) {
			off_t off = lseek(fd, 0, SEEK_CUR);
			if (off >= 0)
				pl_snaps[fd].off = off;
		}
		struct stat st;
		if ((s & PL_S_WRITABLE) && (s & PL_S_SNAP) &&
		    fstat(fd, &st) == 0)
			snapshot(fd, &st, pl_snaps[fd].off);
		/* An atomic AND: a racing first read's plain store either saw
		 * RREP (and stored nothing) or did not (nothing to clear). */
		atomic_fetch_and(&pl_slots[fd],
				 ~(uint32_t)(PL_S_RREP | PL_S_WREP));
	}
	atomic_fetch_add(&pl_mark_gen, 1);
}

/* Per-thread cache of the stat sent with read-only opens: the collector
 * keeps only the first stat of a path, so a path this process already
 * sent needs no new fstat (an open/read/close loop would pay one syscall
 * in four for it). Keyed by the path text, its dirfd and the cwd. */
#define PL_STATC 64
struct pl_statc {
	uint64_t key;
	bool read_reported; /* a read through this path went out */
	struct pl_stat st;
};
static __thread struct pl_statc pl_statc[PL_STATC]
	__attribute__((tls_model("initial-exec")));
/* pl_mark_gen when this thread's read_reported flags were last valid. */
static __thread uint32_t pl_statc_gen
	__attribute__((tls_model("initial-exec")));

static uint64_t statc_key(int dirfd, const char *path)
{
	uint64_t h = 0x9e3779b97f4a7c15ull;
	if (path[0] != '/')
		h ^= ((uint64_t)(uint32_t)dirfd << 32) |
		     atomic_load_explicit(&pl_cwd_gen, memory_order_relaxed);
	/* Eight bytes at a time: this runs on every open. */
	size_t n = strlen(path), i = 0;
	for (; i + 8 <= n; i += 8) {
		uint64_t w;
		memcpy(&w, path + i, 8);
		h = (h ^ w) * 0xff51afd7ed558ccdull;
		h ^= h >> 32;
	}
	/* The tail: the path's last eight bytes when it has eight (they
	 * overlap the words above), else its bytes one by one. Not a
	 * memcpy of n - i bytes into w: the word read back from the stack
	 * right after the copy stalls (no store-to-load forwarding). */
	uint64_t w = 0;
	if (n >= 8)
		memcpy(&w, path + n - 8, 8);
	else
		for (size_t j = n; j-- > 0;)
			w = w << 8 | (unsigned char)path[j];
	h = (h ^ w ^ n) * 0xc4ceb9fe1a85ec53ull;
	h ^= h >> 29;
	return h ? h : 1;
}

/* A read through a cached path went out: later read-only opens of the
 * same path by this thread need not be sent. */
static void note_reported(int fd, uint32_t s, uint32_t bits)
{
	if (!(bits & PL_B_READ) || !(s & PL_S_CACHED) ||
	    (unsigned)fd >= PL_SLOTS)
		return;
	struct pl_statc *c =
		&pl_statc[(s & PL_S_CACHE_MASK) >> PL_S_CACHE_SHIFT];
	if (c->key == pl_snaps[fd].key)
		c->read_reported = true;
}

static bool stat_fd(int fd, struct pl_stat *out, struct stat *st)
{
	if (fstat(fd, st) != 0)
		return false;
	memset(out, 0, sizeof(*out));
	out->mode = st->st_mode;
	out->dev = st->st_dev;
	out->ino = st->st_ino;
	out->size = st->st_size;
	out->mtime_ns = ts_ns(st->st_mtim);
	out->ctime_ns = ts_ns(st->st_ctim);
	return true;
}

/* Whether an open publishes content (the run's output from now on): the
 * collector must have it before any other process reads the file. */
static bool publishes(int flags, int8_t created)
{
	bool wr = (flags & O_ACCMODE) != O_RDONLY;
	return ((flags & O_CREAT) && created != 0) || ((flags & O_TRUNC) && wr);
}

void pl_opened(int fd, int dirfd, const char *path, int flags, int mode,
	       int8_t created)
{
	if (!pl_active || fd < 0)
		return;
	int saved = errno;
	struct pl_stat ps;
	struct stat st;
	bool have = false, writable = (flags & O_ACCMODE) != O_RDONLY;
	struct pl_statc *c = NULL;
	uint64_t key = 0;
	if (!writable && path && (path[0] == '/' || dirfd == AT_FDCWD)) {
		uint32_t gen = atomic_load_explicit(&pl_mark_gen,
						    memory_order_relaxed);
		if (gen != pl_statc_gen) {
			/* A task boundary since: reads count again. */
			for (int i = 0; i < PL_STATC; i++)
				pl_statc[i].read_reported = false;
			pl_statc_gen = gen;
		}
		key = statc_key(dirfd, path);
		c = &pl_statc[key % PL_STATC];
		if (c->key == key && c->read_reported &&
		    (unsigned)fd < PL_SLOTS && S_ISREG(c->st.mode)) {
			/* Nothing this lifetime can add but reads of a path
			 * already read: hold the OPEN back. */
			pl_snaps[fd].key = key;
			atomic_store_explicit(&pl_slots[fd],
					      PL_S_KNOWN | PL_S_RDONLY |
						      PL_S_DEFERRED,
					      memory_order_relaxed);
			bump_max_fd(fd);
			errno = saved;
			return;
		}
		if (c->key == key) {
			ps = c->st;
			have = true;
		} else {
			c->key = 0;
			c->read_reported = false;
			have = stat_fd(fd, &ps, &st);
			if (have) {
				c->st = ps;
				c->key = key;
			}
		}
	} else {
		have = stat_fd(fd, &ps, &st);
	}
	if ((unsigned)fd < PL_SLOTS) {
		uint32_t v = PL_S_OPENED;
		if (have && !S_ISREG(ps.mode)) {
			v |= PL_S_UNTRACKED;
		} else {
			v |= PL_S_KNOWN | access_bits(flags);
			if (publishes(flags, created))
				v |= PL_S_PUB;
			pl_snaps[fd].off = 0;
			pl_snaps[fd].dev = ps.dev;
			pl_snaps[fd].ino = ps.ino;
			if (c && c->key == key) {
				pl_snaps[fd].key = key;
				v |= PL_S_CACHED | (uint32_t)(c - pl_statc)
							   << PL_S_CACHE_SHIFT;
			}
			if (writable && have && !c) {
				snapshot(fd, &st, 0);
				v |= PL_S_SNAP;
			}
		}
		atomic_store_explicit(&pl_slots[fd], v, memory_order_relaxed);
		bump_max_fd(fd);
	}
	pl_out o;
	pl_out_file(&o, PL_R_OPEN, fd, dirfd, flags, created, path);
	o.r.mode = mode;
	o.st = have ? &ps : NULL;
	bool pub = publishes(flags, created);
	bool mark = is_marker(path);
	/* The name the moves check follows it by: a written file's (not
	 * an O_TMPFILE's: path is its directory), a directory's (for files
	 * opened under it). */
	bool dir = have && S_ISDIR(ps.mode);
	bool named = path && (unsigned)fd < PL_SLOTS &&
		     (dir || (have && S_ISREG(ps.mode) && writable &&
			      (flags & O_TMPFILE) != O_TMPFILE));
	if (pl_lock_held) {
		emit_alone(&o);
	} else {
		pl_lock();
		if (named)
			pl_name_opened_locked(fd, dirfd, path);
		if (mark)
			task_boundary_locked();
		/* Reads before this publication were of the old content. */
		if (pub)
			pl_flush_io_locked(false);
		pl_append_locked(&o);
		if (pub)
			pl_send_locked();
		pl_unlock();
	}
	errno = saved;
}

void pl_closing(int fd)
{
	if (!pl_active || fd < 0 || pl_is_own_fd(fd))
		return;
	uint32_t s = PL_S_OPENED;
	if ((unsigned)fd < PL_SLOTS) {
		/* Load and store, not an exchange: the fd is still open, so
		 * no open can take its slot meanwhile, and a read racing
		 * with its own close is the program's bug. */
		s = atomic_load_explicit(&pl_slots[fd], memory_order_relaxed);
		if (s)
			atomic_store_explicit(&pl_slots[fd], 0,
					      memory_order_relaxed);
	}
	if (!(s & (PL_S_KNOWN | PL_S_OPENED)) || (s & PL_S_DEFERRED))
		return;
	int saved = errno;
	pl_out o;
	pl_out_init(&o, PL_R_CLOSE);
	o.r.fd = fd;
	o.r.bits = (uint8_t)pl_unreported_bits(fd, s, true);
	note_reported(fd, s, o.r.bits);
	bool written = (o.r.bits & PL_B_WRITE) || (s & (PL_S_WREP | PL_S_PUB));
	if (pl_lock_held) {
		emit_alone(&o); /* its name, if any, goes at the next open */
	} else {
		pl_lock();
		if (written)
			pl_moves_note_written(fd);
		pl_name_closed_locked(fd);
		pl_append_locked(&o);
		pl_unlock();
	}
	errno = saved;
}

/* ---- image start and end ---- */

static char pl_lib_path[PATH_MAX];
static char pl_sock_path[sizeof(pl_addr.sun_path)];

void pl_set_identity(pid_t pid, pid_t ppid, uint16_t how)
{
	pl_pid = pid;
	pl_ppid = ppid;
	pl_how = how;
	pl_seq = 0;
	pl_len = sizeof(struct pl_batch);
}

/* Regular files the image inherited: known, with a snapshot so that
 * writes it makes through stdio (invisible here) show at the end. */
static void scan_inherited(void)
{
	for (int fd = 0; fd < PL_INHERIT_SCAN; fd++) {
		struct stat st;
		if (fstat(fd, &st) != 0)
			continue;
		if (!S_ISREG(st.st_mode)) {
			atomic_store(&pl_slots[fd], PL_S_UNTRACKED);
			continue;
		}
		int fl = sys_fcntl(fd, F_GETFL, 0);
		off_t off = lseek(fd, 0, SEEK_CUR);
		snapshot(fd, &st, off < 0 ? 0 : off);
		atomic_store(&pl_slots[fd], PL_S_KNOWN | PL_S_SNAP |
						    (fl >= 0 ? access_bits(fl)
							     : 0));
		bump_max_fd(fd);
	}
}

static void emit_image(int argc, char **argv)
{
	char exe[PATH_MAX], cwd[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	exe[n > 0 ? n : 0] = '\0';
	if (!getcwd(cwd, sizeof(cwd)))
		cwd[0] = '\0';
	pl_out o;
	pl_out_init(&o, PL_R_IMAGE);
	o.strs[o.nstr++] = exe;
	o.strs[o.nstr++] = cwd;
	pl_out_add_argv(&o, argc, argv);
	/* Sent now: a process killed early still has its record. */
	pl_emit(&o, true);
}

__attribute__((constructor)) static void pl_init(int argc, char **argv,
						 char **envp)
{
	(void)envp;
	const char *sock = getenv(PL_ENV_SOCK);
	if (!sock || !*sock || strlen(sock) >= sizeof(pl_addr.sun_path))
		return;
	size_t slot_bytes = PL_SLOTS * sizeof(*pl_slots);
	size_t snap_bytes = PL_SLOTS * sizeof(*pl_snaps);
	size_t name_bytes = PL_SLOTS * sizeof(*pl_names);
	void *m = mmap(NULL, slot_bytes + snap_bytes + name_bytes,
		       PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
		       0);
	if (m == MAP_FAILED)
		return;
	pl_slots = m;
	pl_snaps = (struct pl_snap *)((char *)m + slot_bytes);
	pl_names = (char **)((char *)m + slot_bytes + snap_bytes);
	pl_addr.sun_family = AF_UNIX;
	snprintf(pl_sock_path, sizeof(pl_sock_path), "%s", sock);
	memcpy(pl_addr.sun_path, sock, strlen(sock) + 1);
	pl_addrlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) +
				 strlen(sock) + 1);
	Dl_info info;
	if (dladdr((void *)pl_init_image, &info) && info.dli_fname)
		snprintf(pl_lib_path, sizeof(pl_lib_path), "%s",
			 info.dli_fname);
	uint16_t how = PL_HOW_EXEC;
	if (getenv(PL_ENV_SPAWNED)) {
		how = PL_HOW_SPAWNED;
		unsetenv(PL_ENV_SPAWNED); /* not the workload's business */
	}
	pl_set_identity(getpid(), getppid(), how);
	marks_init();
	pthread_atfork(pl_atfork_prepare, pl_atfork_parent, pl_atfork_child);
	scan_inherited();
	pl_active = 1;
	pl_init_image(argc, argv);
}

void pl_init_image(int argc, char **argv)
{
	emit_image(argc, argv);
}

void pl_end(void)
{
	if (!pl_active || atomic_exchange(&pl_ended, 1))
		return;
	int saved = errno;
	pl_lock();
	pl_flush_io_locked(true);
	pl_moves_check_locked();
	pl_out o;
	pl_out_init(&o, PL_R_END);
	if (pl_exit_known) {
		o.r.bits = PL_B_CODE;
		o.r.ret = pl_exit_code & 0xff;
	}
	pl_append_locked(&o);
	pl_send_locked();
	pl_active = 0;
	pl_unlock();
	errno = saved;
}

/* After every atexit handler; only stdio's own cleanup is still to come,
 * and its writes would be unseen: flush the streams now. */
__attribute__((destructor)) static void pl_fini(void)
{
	if (!pl_active)
		return;
	fflush(NULL);
	pl_end();
}

/* ---- fork ---- */

void pl_atfork_prepare(void)
{
	if (!pl_active)
		return;
	pl_lock();
	pl_materialize_locked(-1); /* the child inherits them */
	pl_flush_io_locked(false);
	pl_send_locked();
}

void pl_atfork_parent(void)
{
	if (pl_active)
		pl_unlock();
}

void pl_atfork_child(void)
{
	if (!pl_active)
		return;
	pl_set_identity(getpid(), pl_pid,
			pl_in_fork_wrapper ? PL_HOW_FORKED
					   : PL_HOW_FORKED_SELF);
	atomic_store(&pl_ended, 0);
	pl_exit_known = false;
	pl_moves_forget();
	pl_unlock();
}

/* ---- the environment of exec'd images ---- */

static bool is_var(const char *e, const char *name)
{
	size_t n = strlen(name);
	return strncmp(e, name, n) == 0 && e[n] == '=';
}

static char *make_var(const char *name, const char *v1, const char *v2)
{
	size_t n = strlen(name) + strlen(v1) + (v2 ? strlen(v2) + 1 : 0) + 2;
	char *s = malloc(n);
	if (s)
		snprintf(s, n, "%s=%s%s%s", name, v1, v2 ? ":" : "",
			 v2 ? v2 : "");
	return s;
}

/* LD_PRELOAD with this library first (kept once), the socket, and the
 * spawn marker when asked; everything else as the caller gave it. Strings
 * of the result that are not the caller's are leaked on success (exec
 * replaced the image) and freed by pl_env_free on failure. */
char **pl_env_for_exec(char *const *envp, bool spawned)
{
	size_t n = 0;
	while (envp && envp[n])
		n++;
	char **out = calloc(n + 4, sizeof(*out));
	if (!out)
		return NULL;
	size_t k = 0;
	const char *preload = NULL;
	for (size_t i = 0; i < n; i++) {
		if (is_var(envp[i], "LD_PRELOAD")) {
			preload = envp[i] + strlen("LD_PRELOAD=");
			continue;
		}
		if (is_var(envp[i], PL_ENV_SOCK) ||
		    is_var(envp[i], PL_ENV_SPAWNED))
			continue;
		out[k++] = envp[i];
	}
	bool has_ours = preload && pl_lib_path[0] &&
			strstr(preload, pl_lib_path) != NULL;
	out[k++] = has_ours ? make_var("LD_PRELOAD", preload, NULL)
			    : make_var("LD_PRELOAD", pl_lib_path,
				       preload && *preload ? preload : NULL);
	out[k++] = make_var(PL_ENV_SOCK, pl_sock_path, NULL);
	if (spawned)
		out[k++] = make_var(PL_ENV_SPAWNED, "1", NULL);
	out[k] = NULL;
	for (size_t i = 0; i < k; i++)
		if (!out[i]) {
			free(out);
			return NULL;
		}
	return out;
}

void pl_ensure_environ(void)
{
	const char *p = getenv("LD_PRELOAD");
	if (!p || !pl_lib_path[0] || !strstr(p, pl_lib_path)) {
		char *v = make_var("X", pl_lib_path, p && *p ? p : NULL);
		if (v) {
			setenv("LD_PRELOAD", v + 2, 1);
			free(v);
		}
	}
	const char *s = getenv(PL_ENV_SOCK);
	if (!s || strcmp(s, pl_sock_path) != 0)
		setenv(PL_ENV_SOCK, pl_sock_path, 1);
}
