/*
 * plib.h - what the files of libweft_preload.so share: the per-fd table
 * the read/write wrappers update with one atomic, the batch buffer and its
 * lock, the transport to the collector, and the real libc functions.
 *
 *   plib_core.c   state, init and end, batches, the socket, fd slots;
 *   plib_files.c  wrappers of file calls (open ... close, stdio, dirs);
 *   plib_procs.c  wrappers of process calls (fork, exec, spawn, wait,
 *                 exit).
 *
 * Hot path rule: a read or write wrapper calls the real function, then
 * pl_note_io, which is a relaxed load and, once per fd lifetime, an atomic
 * OR. No lock, no allocation, no syscall. Everything else takes the batch
 * lock (pl_lock) to append a record in program order.
 */
#ifndef WEFT_PLIB_H
#define WEFT_PLIB_H

#undef _FORTIFY_SOURCE
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "../preload_wire.h"

#define PL_EXPORT __attribute__((visibility("default")))

/* fds with a slot; I/O on higher fds is reported at once, per call. */
#define PL_SLOTS 65536
/* Inherited fds looked at when an image starts. */
#define PL_INHERIT_SCAN 32
/* argv bytes kept in an IMAGE or EXEC record. */
#define PL_MAX_ARGV_BYTES (40 * 1024)

/* Slot bits. PL_B_READ and PL_B_WRITE (the wire's) are I/O seen and not
 * yet reported; the rest say what the fd is. A zero slot is an fd the
 * library knows nothing about. */
enum {
	PL_S_KNOWN = 1u << 8,     /* a regular file (opened or inherited) */
	PL_S_UNTRACKED = 1u << 9, /* not a regular file: never reported */
	PL_S_RREP = 1u << 10,     /* a read already reported this lifetime
				     (or since the last Ray task boundary) */
	PL_S_WREP = 1u << 11,
	PL_S_RDONLY = 1u << 12,   /* opened O_RDONLY */
	PL_S_WRITABLE = 1u << 13, /* O_WRONLY or O_RDWR */
	PL_S_SNAP = 1u << 14,     /* pl_snaps[fd] holds a snapshot */
	PL_S_OPENED = 1u << 15,   /* the collector got an OPEN for it */
	/* A read-only open of a path this thread already reported as read:
	 * no OPEN sent (reads of it cannot change the report). Sent after
	 * all (pl_materialize_locked) if the fd is duplicated, inherited by
	 * a child or survives an exec. */
	PL_S_DEFERRED = 1u << 16,
	PL_S_CACHED = 1u << 17, /* bits 24..29: its stat-cache entry */
	PL_S_PUB = 1u << 18,    /* its open published (created, truncated) */
};
#define PL_S_CACHE_SHIFT 24
#define PL_S_CACHE_MASK (63u << PL_S_CACHE_SHIFT)

/* What an fd looked like when it was opened or inherited, so that I/O
 * the library cannot see (stdio's internal read and write, raw syscalls)
 * is noticed at close: the offset moved on a read-only fd, the size or
 * mtime changed on a writable one. */
struct pl_snap {
	int64_t size, mtime_ns, off;
	uint64_t key;      /* stat-cache key of the path it was opened by */
	uint64_t dev, ino; /* the file's, when pl_names[fd] is a name */
};

extern int pl_active;
extern _Atomic uint32_t *pl_slots;
extern struct pl_snap *pl_snaps;
extern _Atomic int pl_max_fd;
/* Per fd, under the lock: the absolute name a writable file or a
 * directory was opened by (the open's path joined to the cwd or to its
 * directory fd's name; malloc'd), PL_NAME_GONE when that name was
 * unlinked while the fd was open, NULL when not known (the kernel's
 * name is asked for when one is needed). plib_moves.c keeps them. */
extern char **pl_names;
#define PL_NAME_GONE ((char *)1)
extern _Atomic uint32_t pl_cwd_gen;

/* ---- real functions ---- */

void *pl_real(const char *name);
#define PL_REAL(name)                                                          \
	static __typeof__(name) *real_fn;                                      \
	if (!real_fn)                                                          \
		real_fn = (__typeof__(name) *)pl_real(#name)

/* ---- records ---- */

/* One record to append. strs may hold NULLs (sent as ""). */
typedef struct pl_out {
	struct pl_rec r;
	const struct pl_stat *st;
	const char *strs[PL_MAX_STR];
	unsigned nstr;
} pl_out;

void pl_out_init(pl_out *o, int kind);
/* pl_out_init, then a record of kind about fd: fd2 its directory or
 * second fd, the open flags, created (1, 0, or -1: not known), and its
 * first path (NULL: none). */
void pl_out_file(pl_out *o, int kind, int fd, int fd2, int flags,
		 int8_t created, const char *path);
/* Append argv's strings (at most argc when argc >= 0, else up to its NULL)
 * while they fit PL_MAX_STR strings and PL_MAX_ARGV_BYTES bytes. */
void pl_out_add_argv(pl_out *o, int argc, char *const argv[]);
/* Append under the lock; with send_now the batch is sent before
 * returning (what other processes may act on: publications, forks). */
void pl_emit(pl_out *o, bool send_now);
/* The lock, for sequences that must stay together (fork). */
void pl_lock(void);
void pl_unlock(void);
/* Whether this thread holds it (a signal handler that interrupted it). */
bool pl_lock_held_here(void);
/* Under the lock: append, send. */
void pl_append_locked(pl_out *o);
void pl_send_locked(void);

/* Report the pending reads and writes of every known fd (before a
 * publication, fork, exec, and at the end); with at_end, also what the
 * snapshots say. Under the lock. */
void pl_flush_io_locked(bool heuristics);
/* Send the OPENs held back for deferred fds (before fork, exec, spawn);
 * one fd, or all with fd -1. Under the lock. */
void pl_materialize_locked(int fd);
/* The reads and writes to report for slot value s of fd about to close
 * (or at the end): seen ones, and unseen ones the snapshot reveals. */
uint32_t pl_unreported_bits(int fd, uint32_t s, bool heuristics);

/* ---- fd slots ---- */

void pl_note_io_slow(int fd, uint32_t bit);

static inline void pl_note_io(int fd, uint32_t bit)
{
	if (!pl_active)
		return;
	if ((unsigned)fd >= PL_SLOTS) {
		pl_note_io_slow(fd, bit);
		return;
	}
	uint32_t s = atomic_load_explicit(&pl_slots[fd], memory_order_relaxed);
	/* Seen or reported already, or not a file: nothing to do. */
	if (s & (bit | (bit << 10) | PL_S_UNTRACKED))
		return;
	if (!(s & PL_S_KNOWN)) {
		pl_note_io_slow(fd, bit);
		return;
	}
	/* A plain store, not a locked OR (the largest cost here): a bit
	 * lost to a race with another thread's first I/O on the same fd
	 * is found again at close by the snapshot check, and a slot
	 * revived by a race with close only names an fd the collector has
	 * already closed. */
	atomic_store_explicit(&pl_slots[fd], s | bit, memory_order_relaxed);
}

/* A successful open of fd: the OPEN record and the slot. st: the file's
 * stat when known. */
void pl_opened(int fd, int dirfd, const char *path, int flags, int mode,
	       int8_t created);
/* fd is going away (close, dup2 over it, fclose): report what it did.
 * Call before the real close. */
void pl_closing(int fd);
/* The created hint for an O_CREAT open, looked up before it. */
int8_t pl_created_hint(int dirfd, const char *path, int flags);
/* Keep the collector's socket out of the way of fd-wide operations. */
bool pl_is_own_fd(int fd);
void pl_move_own_fd(void);
/* The workload closes our fd: let it, and make a new one when needed. */
void pl_forget_own_fd(void);
int pl_own_fd(void);

/* ---- plib_moves.c: outputs moved by calls not seen (all locked) ---- */

void pl_moves_note_written(int fd);
/* The rename of old (its lstat before: moved) to new (what was there
 * before, or NULL: replaced) succeeded. */
void pl_moves_renamed(int od, const char *old, int nd, const char *new,
		      unsigned flags, const struct stat *moved,
		      const struct stat *replaced);
/* Before the unlink of dirfd/path. */
void pl_moves_unlinked(int dirfd, const char *path);
/* Whether a rename needs its old name's lstat for pl_moves_renamed. */
bool pl_moves_following(void);
/* fd (a writable file or a directory) was opened by dirfd/path. */
void pl_name_opened_locked(int fd, int dirfd, const char *path);
/* fd is closing: its name goes. */
void pl_name_closed_locked(int fd);
/* new is a copy of old. */
void pl_name_duped_locked(int old, int new);
void pl_moves_check_locked(void);
void pl_moves_forget(void);

/* ---- process ---- */

void pl_init_image(int argc, char **argv);
void pl_end(void);
extern int pl_exit_code;
extern bool pl_exit_known;
void pl_atfork_prepare(void);
void pl_atfork_parent(void);
void pl_atfork_child(void);
extern __thread int pl_in_fork_wrapper;
/* Set the how of the next batch (fork and spawn children). */
void pl_set_identity(pid_t pid, pid_t ppid, uint16_t how);
pid_t pl_self(void);
/* Nothing sent yet in this image (or since the fork). */
bool pl_first_batch_pending(void);
/* Warn (a record) once per exec target: static or secure-exec. Returns
 * true when the target is one the library will not run in. */
bool pl_check_exec_target(const char *path, int fd);
/* envp plus this library's variables (malloc'd array; free it). */
char **pl_env_for_exec(char *const *envp, bool spawned);
/* Whether the current environ already has the library's variables. */
void pl_ensure_environ(void);

#endif /* WEFT_PLIB_H */
