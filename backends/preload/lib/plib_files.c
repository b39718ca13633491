/*
 * plib_files.c - the wrapped file calls of libweft_preload.so. glibc
 * exports some calls under two names (open and open64, ...); both are
 * wrapped. Opens, closes, dups and path operations become records in
 * program order; reads, writes, mappings and cross-fd copies only set a
 * bit in the fd's slot (pl_note_io), reported once when the fd closes.
 *
 * stdio reaches the kernel through libc's internal aliases, not the PLT,
 * so fread/fwrite/fprintf are not wrapped one by one: fopen and fclose
 * are, and at fclose the slot's snapshot tells whether the stream read
 * (the offset moved) or wrote (size or mtime changed).
 */

#include "plib.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/uio.h>
#include <unistd.h>

#ifndef MAP_SHARED_VALIDATE
#define MAP_SHARED_VALIDATE 0x03
#endif
#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1u << 2)
#endif
#ifndef O_TMPFILE
#define O_TMPFILE (020000000 | O_DIRECTORY)
#endif

/* glibc's fortify entry points and the *2 variants, not in its headers. */
int __open_2(const char *path, int flags);
int __open64_2(const char *path, int flags);
int __openat_2(int dirfd, const char *path, int flags);
int __openat64_2(int dirfd, const char *path, int flags);
int renameat2(int od, const char *old, int nd, const char *new,
	      unsigned int flags);
int close_range(unsigned int first, unsigned int last, int flags);
void closefrom(int lowfd);

static bool needs_mode(int flags)
{
	return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE;
}

/* ---- opens ---- */

#define MODE_ARG(flags)                                                        \
	int mode = 0;                                                          \
	if (needs_mode(flags)) {                                               \
		va_list ap;                                                    \
		va_start(ap, flags);                                           \
		mode = va_arg(ap, int);                                        \
		va_end(ap);                                                    \
	}

#define NO_MODE int mode = 0
#define CREAT_MODE                                                             \
	int flags = O_CREAT | O_WRONLY | O_TRUNC;                              \
	int mode = (int)m

/* An open of libc: path, flags and mode set (mode_setup), the created
 * hint taken before the call, the fd noted after it. */
#define OPEN_WRAPPER(name, params, dirfd, mode_setup, args)                    \
	PL_EXPORT int name params                                              \
	{                                                                      \
		PL_REAL(name);                                                 \
		mode_setup;                                                    \
		int8_t created =                                               \
			pl_active ? pl_created_hint(dirfd, path, flags) : -1;  \
		int fd = real_fn args;                                         \
		if (fd >= 0)                                                   \
			pl_opened(fd, dirfd, path, flags, mode, created);      \
		return fd;                                                     \
	}

OPEN_WRAPPER(open, (const char *path, int flags, ...), AT_FDCWD,
	     MODE_ARG(flags), (path, flags, mode))
OPEN_WRAPPER(open64, (const char *path, int flags, ...), AT_FDCWD,
	     MODE_ARG(flags), (path, flags, mode))
OPEN_WRAPPER(openat, (int dirfd, const char *path, int flags, ...), dirfd,
	     MODE_ARG(flags), (dirfd, path, flags, mode))
OPEN_WRAPPER(openat64, (int dirfd, const char *path, int flags, ...), dirfd,
	     MODE_ARG(flags), (dirfd, path, flags, mode))
OPEN_WRAPPER(__open_2, (const char *path, int flags), AT_FDCWD, NO_MODE,
	     (path, flags))
OPEN_WRAPPER(__open64_2, (const char *path, int flags), AT_FDCWD, NO_MODE,
	     (path, flags))
OPEN_WRAPPER(__openat_2, (int dirfd, const char *path, int flags), dirfd,
	     NO_MODE, (dirfd, path, flags))
OPEN_WRAPPER(__openat64_2, (int dirfd, const char *path, int flags), dirfd,
	     NO_MODE, (dirfd, path, flags))
OPEN_WRAPPER(creat, (const char *path, mode_t m), AT_FDCWD, CREAT_MODE,
	     (path, m))
OPEN_WRAPPER(creat64, (const char *path, mode_t m), AT_FDCWD, CREAT_MODE,
	     (path, m))

/* ---- stdio streams ---- */

static int stdio_flags(const char *m)
{
	int flags;
	switch (m ? m[0] : 'r') {
	case 'w':
		flags = O_WRONLY | O_CREAT | O_TRUNC;
		break;
	case 'a':
		flags = O_WRONLY | O_CREAT | O_APPEND;
		break;
	default:
		flags = O_RDONLY;
	}
	for (const char *p = m ? m + 1 : ""; *p && *p != ','; p++) {
		if (*p == '+')
			flags = (flags & ~O_ACCMODE) | O_RDWR;
		else if (*p == 'x')
			flags |= O_EXCL;
		else if (*p == 'e')
			flags |= O_CLOEXEC;
	}
	return flags;
}

static FILE *fopened(FILE *f, const char *path, int flags, int8_t created)
{
	if (f)
		pl_opened(fileno(f), AT_FDCWD, path, flags, 0666, created);
	return f;
}

/* A stream about to close: its buffered writes reach the file first, so
 * that the size check at close sees them. */
static void stream_closing(FILE *f)
{
	int fd = f ? fileno(f) : -1;
	if (!pl_active || fd < 0)
		return;
	if ((unsigned)fd < PL_SLOTS &&
	    (atomic_load(&pl_slots[fd]) & PL_S_WRITABLE))
		fflush(f);
	pl_closing(fd);
}

/* A stdio open of libc: call is its helper, given real_fn. */
#define STREAM_WRAPPER(name, params, call)                                     \
	PL_EXPORT FILE *name params                                            \
	{                                                                      \
		PL_REAL(name);                                                 \
		return call;                                                   \
	}

/* fopen and fopen64 through real: the created hint first. */
static FILE *fopen_with(FILE *(*real)(const char *, const char *),
			const char *path, const char *m)
{
	int flags = stdio_flags(m);
	int8_t created = pl_active ? pl_created_hint(AT_FDCWD, path, flags) : -1;
	return fopened(real(path, m), path, flags, created);
}

STREAM_WRAPPER(fopen, (const char *path, const char *m),
	       fopen_with(real_fn, path, m))
STREAM_WRAPPER(fopen64, (const char *path, const char *m),
	       fopen_with(real_fn, path, m))

/* freopen and freopen64 through real (a NULL path reopens f itself:
 * nothing closes, nothing new opens). */
static FILE *freopen_with(FILE *(*real)(const char *, const char *, FILE *),
			  const char *path, const char *m, FILE *f)
{
	int flags = stdio_flags(m);
	int8_t created = pl_active && path
				 ? pl_created_hint(AT_FDCWD, path, flags)
				 : -1;
	if (path)
		stream_closing(f);
	FILE *r = real(path, m, f);
	return path ? fopened(r, path, flags, created) : r;
}

STREAM_WRAPPER(freopen, (const char *path, const char *m, FILE *f),
	       freopen_with(real_fn, path, m, f))
STREAM_WRAPPER(freopen64, (const char *path, const char *m, FILE *f),
	       freopen_with(real_fn, path, m, f))

PL_EXPORT int fclose(FILE *f)
{
	PL_REAL(fclose);
	stream_closing(f);
	return real_fn(f);
}

/* ---- directories (opendir opens inside libc) ---- */

PL_EXPORT DIR *opendir(const char *path)
{
	PL_REAL(opendir);
	DIR *d = real_fn(path);
	if (d)
		pl_opened(dirfd(d), AT_FDCWD, path,
			  O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0, 0);
	return d;
}

PL_EXPORT int closedir(DIR *d)
{
	PL_REAL(closedir);
	pl_closing(dirfd(d));
	return real_fn(d);
}

/* ---- reads and writes: one bit per fd lifetime ---- */

/* A libc read or write: the call, and bit noted on fd once it moved
 * bytes. */
#define IO_WRAPPER(name, bit, params, args)                                    \
	PL_EXPORT ssize_t name params                                          \
	{                                                                      \
		PL_REAL(name);                                                 \
		ssize_t done = real_fn args;                                   \
		if (done > 0)                                                  \
			pl_note_io(fd, bit);                                   \
		return done;                                                   \
	}

IO_WRAPPER(read, PL_B_READ, (int fd, void *b, size_t n), (fd, b, n))
IO_WRAPPER(pread, PL_B_READ, (int fd, void *b, size_t n, off_t o),
	   (fd, b, n, o))
IO_WRAPPER(pread64, PL_B_READ, (int fd, void *b, size_t n, off64_t o),
	   (fd, b, n, o))
IO_WRAPPER(readv, PL_B_READ, (int fd, const struct iovec *v, int c), (fd, v, c))
IO_WRAPPER(preadv, PL_B_READ, (int fd, const struct iovec *v, int c, off_t o),
	   (fd, v, c, o))
IO_WRAPPER(preadv64, PL_B_READ,
	   (int fd, const struct iovec *v, int c, off64_t o), (fd, v, c, o))
IO_WRAPPER(preadv2, PL_B_READ,
	   (int fd, const struct iovec *v, int c, off_t o, int fl),
	   (fd, v, c, o, fl))
IO_WRAPPER(preadv64v2, PL_B_READ,
	   (int fd, const struct iovec *v, int c, off64_t o, int fl),
	   (fd, v, c, o, fl))
IO_WRAPPER(write, PL_B_WRITE, (int fd, const void *b, size_t n), (fd, b, n))
IO_WRAPPER(pwrite, PL_B_WRITE, (int fd, const void *b, size_t n, off_t o),
	   (fd, b, n, o))
IO_WRAPPER(pwrite64, PL_B_WRITE, (int fd, const void *b, size_t n, off64_t o),
	   (fd, b, n, o))
IO_WRAPPER(writev, PL_B_WRITE, (int fd, const struct iovec *v, int c),
	   (fd, v, c))
IO_WRAPPER(pwritev, PL_B_WRITE, (int fd, const struct iovec *v, int c, off_t o),
	   (fd, v, c, o))
IO_WRAPPER(pwritev64, PL_B_WRITE,
	   (int fd, const struct iovec *v, int c, off64_t o), (fd, v, c, o))
IO_WRAPPER(pwritev2, PL_B_WRITE,
	   (int fd, const struct iovec *v, int c, off_t o, int fl),
	   (fd, v, c, o, fl))
IO_WRAPPER(pwritev64v2, PL_B_WRITE,
	   (int fd, const struct iovec *v, int c, off64_t o, int fl),
	   (fd, v, c, o, fl))

/* ---- cross-fd copies: a read on one side, a write on the other ---- */

static ssize_t xfer(int in, int out, ssize_t n)
{
	if (n > 0) {
		pl_note_io(in, PL_B_READ);
		pl_note_io(out, PL_B_WRITE);
	}
	return n;
}

PL_EXPORT ssize_t sendfile(int out, int in, off_t *o, size_t n)
{
	PL_REAL(sendfile);
	return xfer(in, out, real_fn(out, in, o, n));
}

PL_EXPORT ssize_t sendfile64(int out, int in, off64_t *o, size_t n)
{
	PL_REAL(sendfile64);
	return xfer(in, out, real_fn(out, in, o, n));
}

PL_EXPORT ssize_t copy_file_range(int in, off64_t *oi, int out, off64_t *oo,
				  size_t n, unsigned int fl)
{
	PL_REAL(copy_file_range);
	return xfer(in, out, real_fn(in, oi, out, oo, n, fl));
}

PL_EXPORT ssize_t splice(int in, off64_t *oi, int out, off64_t *oo, size_t n,
			 unsigned int fl)
{
	PL_REAL(splice);
	return xfer(in, out, real_fn(in, oi, out, oo, n, fl));
}

/* ---- mappings ---- */

static void *mapped(void *r, int prot, int flags, int fd)
{
	if (r == MAP_FAILED || fd < 0 || (flags & MAP_ANONYMOUS))
		return r;
	int type = flags & 0x0f; /* MAP_TYPE */
	if (prot & (PROT_READ | PROT_EXEC))
		pl_note_io(fd, PL_B_READ);
	if ((type == MAP_SHARED || type == MAP_SHARED_VALIDATE) &&
	    (prot & PROT_WRITE))
		pl_note_io(fd, PL_B_WRITE);
	return r;
}

PL_EXPORT void *mmap(void *a, size_t n, int prot, int flags, int fd, off_t o)
{
	PL_REAL(mmap);
	return mapped(real_fn(a, n, prot, flags, fd, o), prot, flags, fd);
}

PL_EXPORT void *mmap64(void *a, size_t n, int prot, int flags, int fd,
		       off64_t o)
{
	PL_REAL(mmap64);
	return mapped(real_fn(a, n, prot, flags, fd, o), prot, flags, fd);
}

/* ---- truncation ---- */

PL_EXPORT int ftruncate(int fd, off_t len)
{
	PL_REAL(ftruncate);
	int r = real_fn(fd, len);
	if (r == 0)
		pl_note_io(fd, PL_B_WRITE);
	return r;
}

PL_EXPORT int ftruncate64(int fd, off64_t len)
{
	PL_REAL(ftruncate64);
	int r = real_fn(fd, len);
	if (r == 0)
		pl_note_io(fd, PL_B_WRITE);
	return r;
}

/* Before a call that publishes content at a path: the reads of this
 * process so far were of the old content, so they go first. */
static void before_publish(void)
{
	if (!pl_active)
		return;
	int saved = errno;
	pl_lock();
	pl_flush_io_locked(false);
	pl_unlock();
	errno = saved;
}

static void path_record(int kind, int fd, const char *p1, int fd2,
			const char *p2, int flags, int8_t created)
{
	pl_out o;
	pl_out_file(&o, kind, fd, fd2, flags, created, p1);
	if (p2)
		o.strs[o.nstr++] = p2;
	pl_emit(&o, true);
}

PL_EXPORT int truncate(const char *path, off_t len)
{
	PL_REAL(truncate);
	before_publish();
	int r = real_fn(path, len);
	if (r == 0)
		path_record(PL_R_TRUNCATE, AT_FDCWD, path, 0, NULL, 0, -1);
	return r;
}

PL_EXPORT int truncate64(const char *path, off64_t len)
{
	PL_REAL(truncate64);
	before_publish();
	int r = real_fn(path, len);
	if (r == 0)
		path_record(PL_R_TRUNCATE, AT_FDCWD, path, 0, NULL, 0, -1);
	return r;
}

/* ---- renames, links, unlinks ---- */

/* What a rename's two names held before it: whether the new one existed
 * (the created hint), and for the moves check (when it follows any
 * written file) the lstat of both. */
struct rename_look {
	int8_t created;
	bool have_old, have_new;
	struct stat old, new;
};

static void look_before_rename(int od, const char *old, int nd, const char *new,
			       struct rename_look *l)
{
	l->created = -1;
	l->have_old = l->have_new = false;
	if (!pl_active || !new)
		return;
	int saved = errno;
	if (fstatat(nd, new, &l->new, AT_SYMLINK_NOFOLLOW) == 0) {
		l->created = 0;
		l->have_new = true;
	} else if (errno == ENOENT) {
		l->created = 1;
	}
	l->have_old = old && pl_moves_following() &&
		      fstatat(od, old, &l->old, AT_SYMLINK_NOFOLLOW) == 0;
	errno = saved;
}

static int renamed(int r, int od, const char *old, int nd, const char *new,
		   unsigned flags, const struct rename_look *l)
{
	if (r == 0 && pl_active) {
		int saved = errno;
		if (l->have_old) {
			pl_lock();
			pl_moves_renamed(od, old, nd, new, flags, &l->old,
					 l->have_new ? &l->new : NULL);
			pl_unlock();
		}
		errno = saved;
		path_record(PL_R_RENAME, od, old, nd, new, (int)flags,
			    l->created);
	}
	return r;
}

/* Before the real unlink: the path still resolves. */
static void unlinking(int dirfd, const char *path)
{
	if (!pl_active)
		return;
	int saved = errno;
	pl_lock();
	pl_moves_unlinked(dirfd, path);
	pl_unlock();
	errno = saved;
}

PL_EXPORT int rename(const char *old, const char *new)
{
	PL_REAL(rename);
	struct rename_look l;
	look_before_rename(AT_FDCWD, old, AT_FDCWD, new, &l);
	before_publish();
	return renamed(real_fn(old, new), AT_FDCWD, old, AT_FDCWD, new, 0, &l);
}

PL_EXPORT int renameat(int od, const char *old, int nd, const char *new)
{
	PL_REAL(renameat);
	struct rename_look l;
	look_before_rename(od, old, nd, new, &l);
	before_publish();
	return renamed(real_fn(od, old, nd, new), od, old, nd, new, 0, &l);
}

PL_EXPORT int renameat2(int od, const char *old, int nd, const char *new,
			unsigned int flags)
{
	PL_REAL(renameat2);
	struct rename_look l;
	look_before_rename(od, old, nd, new, &l);
	before_publish();
	return renamed(real_fn(od, old, nd, new, flags), od, old, nd, new,
		       flags, &l);
}

PL_EXPORT int link(const char *old, const char *new)
{
	PL_REAL(link);
	before_publish();
	int r = real_fn(old, new);
	if (r == 0)
		path_record(PL_R_LINK, AT_FDCWD, old, AT_FDCWD, new, 0, 1);
	return r;
}

PL_EXPORT int linkat(int od, const char *old, int nd, const char *new,
		     int flags)
{
	PL_REAL(linkat);
	before_publish();
	int r = real_fn(od, old, nd, new, flags);
	if (r == 0)
		path_record(PL_R_LINK, od, old, nd, new, flags, 1);
	return r;
}

PL_EXPORT int symlink(const char *target, const char *new)
{
	PL_REAL(symlink);
	int r = real_fn(target, new);
	if (r == 0)
		path_record(PL_R_LINK, -1, target, AT_FDCWD, new, 0, 1);
	return r;
}

PL_EXPORT int symlinkat(const char *target, int nd, const char *new)
{
	PL_REAL(symlinkat);
	int r = real_fn(target, nd, new);
	if (r == 0)
		path_record(PL_R_LINK, -1, target, nd, new, 0, 1);
	return r;
}

PL_EXPORT int unlink(const char *path)
{
	PL_REAL(unlink);
	unlinking(AT_FDCWD, path);
	int r = real_fn(path);
	if (r == 0)
		path_record(PL_R_UNLINK, AT_FDCWD, path, 0, NULL, 0, -1);
	return r;
}

PL_EXPORT int unlinkat(int dirfd, const char *path, int flags)
{
	PL_REAL(unlinkat);
	if (!(flags & AT_REMOVEDIR))
		unlinking(dirfd, path);
	int r = real_fn(dirfd, path, flags);
	if (r == 0 && !(flags & AT_REMOVEDIR))
		path_record(PL_R_UNLINK, dirfd, path, 0, NULL, flags, -1);
	return r;
}

/* remove() unlinks inside libc; a directory it removes is no record. */
PL_EXPORT int remove(const char *path)
{
	PL_REAL(remove);
	struct stat st;
	bool dir = pl_active && lstat(path, &st) == 0 && S_ISDIR(st.st_mode);
	if (!dir)
		unlinking(AT_FDCWD, path);
	int r = real_fn(path);
	if (r == 0 && !dir)
		path_record(PL_R_UNLINK, AT_FDCWD, path, 0, NULL, 0, -1);
	return r;
}

/* ---- POSIX shared memory (libc opens and unlinks inside) ---- */

/* The file glibc's shm_open and shm_unlink act on: /dev/shm/ and the name
 * without its leading slashes. False for a name glibc refuses (empty, too
 * long, another slash), which then opens or unlinks nothing. */
static bool shm_path(const char *name, char *out, size_t n)
{
	if (!name)
		return false;
	while (*name == '/')
		name++;
	size_t len = strlen(name);
	if (!len || len + 1 >= NAME_MAX || strchr(name, '/') ||
	    len + sizeof("/dev/shm/") > n)
		return false;
	memcpy(out, "/dev/shm/", sizeof("/dev/shm/") - 1);
	memcpy(out + sizeof("/dev/shm/") - 1, name, len + 1);
	return true;
}

/* Whether path names the file open at fd (a libc that put its shared
 * memory elsewhere than /dev/shm: then nothing is said of the path). */
static bool same_file(int fd, const char *path)
{
	struct stat a, b;
	int saved = errno;
	bool same = fstat(fd, &a) == 0 && stat(path, &b) == 0 &&
		    a.st_dev == b.st_dev && a.st_ino == b.st_ino;
	errno = saved;
	return same;
}

PL_EXPORT int shm_open(const char *name, int flags, mode_t mode)
{
	PL_REAL(shm_open);
	char path[NAME_MAX + sizeof("/dev/shm/")];
	bool seen = pl_active && shm_path(name, path, sizeof(path));
	/* The flags glibc opens with: the caller's, not following a link,
	 * closed on exec. */
	int opened = flags | O_NOFOLLOW | O_CLOEXEC;
	int8_t created = seen ? pl_created_hint(AT_FDCWD, path, opened) : -1;
	int fd = real_fn(name, flags, mode);
	if (fd >= 0 && seen && same_file(fd, path))
		pl_opened(fd, AT_FDCWD, path, opened, (int)mode, created);
	return fd;
}

PL_EXPORT int shm_unlink(const char *name)
{
	PL_REAL(shm_unlink);
	char path[NAME_MAX + sizeof("/dev/shm/")];
	struct stat st;
	int saved = errno;
	/* Said only of a file that was there and is gone after. */
	bool seen = pl_active && shm_path(name, path, sizeof(path)) &&
		    lstat(path, &st) == 0;
	errno = saved;
	if (seen)
		unlinking(AT_FDCWD, path);
	int r = real_fn(name);
	if (r == 0 && seen) {
		saved = errno;
		bool gone = lstat(path, &st) != 0 && errno == ENOENT;
		errno = saved;
		if (gone)
			path_record(PL_R_UNLINK, AT_FDCWD, path, 0, NULL, 0,
				    -1);
	}
	return r;
}

/* ---- fd table operations ---- */

/* new is now a copy of old. The slot follows (minus what old has seen,
 * which old reports), the collector gets the DUP unless old is something
 * it never tracks (a pipe, a socket). */
static void duped(int old, int new, int cloexec)
{
	if (!pl_active || new < 0 || old == new)
		return;
	uint32_t s = 0;
	if ((unsigned)old < PL_SLOTS &&
	    (atomic_load(&pl_slots[old]) & PL_S_DEFERRED)) {
		pl_lock();
		pl_materialize_locked(old);
		pl_unlock();
	}
	/* Names only where one is kept (a pipe's dup takes no lock). */
	bool named = ((unsigned)old < PL_SLOTS && pl_names[old]) ||
		     ((unsigned)new < PL_SLOTS &&pl_names[new]);
	if (named && !pl_lock_held_here()) {
		pl_lock();
		pl_name_duped_locked(old, new);
		pl_unlock();
	}
	if ((unsigned)old < PL_SLOTS && (unsigned)new < PL_SLOTS) {
		s = atomic_load(&pl_slots[old]);
		/* Not PL_S_CACHED: the key is old's. */
		uint32_t keep = s & (PL_S_KNOWN | PL_S_UNTRACKED | PL_S_OPENED |
				     PL_S_RDONLY | PL_S_WRITABLE | PL_S_SNAP);
		pl_snaps[new] = pl_snaps[old];
		atomic_store(&pl_slots[new], keep);
		int m = atomic_load(&pl_max_fd);
		while (new > m &&
		       !atomic_compare_exchange_weak(&pl_max_fd, &m, new))
			;
	}
	/* Pipes and sockets: nothing the collector knows. Directories it
	 * does know (OPENED): their copies serve as dirfds. */
	if ((s & PL_S_UNTRACKED) && !(s & PL_S_OPENED))
		return;
	pl_out o;
	pl_out_init(&o, PL_R_DUP);
	o.r.fd = old;
	o.r.fd2 = new;
	o.r.flags = cloexec ? O_CLOEXEC : 0;
	pl_emit(&o, false);
}

static bool fd_open(int fd)
{
	PL_REAL(fcntl);
	return real_fn(fd, F_GETFD) >= 0;
}

/* dup2/dup3 onto new closes what new held, when old is valid. */
static void dup_target(int old, int new)
{
	if (!pl_active || old == new)
		return;
	if (pl_is_own_fd(new))
		pl_move_own_fd();
	else if (fd_open(old))
		pl_closing(new);
}

PL_EXPORT int dup(int old)
{
	PL_REAL(dup);
	int r = real_fn(old);
	duped(old, r, 0);
	return r;
}

PL_EXPORT int dup2(int old, int new)
{
	PL_REAL(dup2);
	dup_target(old, new);
	int r = real_fn(old, new);
	if (r >= 0)
		duped(old, r, 0);
	return r;
}

PL_EXPORT int dup3(int old, int new, int flags)
{
	PL_REAL(dup3);
	dup_target(old, new);
	int r = real_fn(old, new, flags);
	if (r >= 0)
		duped(old, r, flags & O_CLOEXEC);
	return r;
}

static int fcntl_done(int fd, int cmd, long arg, int r)
{
	if (r < 0 || !pl_active)
		return r;
	if (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC) {
		duped(fd, r, cmd == F_DUPFD_CLOEXEC);
	} else if (cmd == F_SETFD) {
		uint32_t s = (unsigned)fd < PL_SLOTS
				     ? atomic_load(&pl_slots[fd])
				     : 0;
		if ((s & PL_S_UNTRACKED) && !(s & PL_S_OPENED))
			return r;
		pl_out o;
		pl_out_init(&o, PL_R_SETCLOEXEC);
		o.r.fd = fd;
		o.r.flags = (arg & FD_CLOEXEC) ? O_CLOEXEC : 0;
		pl_emit(&o, false);
	}
	return r;
}

PL_EXPORT int fcntl(int fd, int cmd, ...)
{
	PL_REAL(fcntl);
	va_list ap;
	va_start(ap, cmd);
	long arg = va_arg(ap, long);
	va_end(ap);
	return fcntl_done(fd, cmd, arg, real_fn(fd, cmd, arg));
}

PL_EXPORT int fcntl64(int fd, int cmd, ...)
{
	PL_REAL(fcntl64);
	va_list ap;
	va_start(ap, cmd);
	long arg = va_arg(ap, long);
	va_end(ap);
	return fcntl_done(fd, cmd, arg, real_fn(fd, cmd, arg));
}

PL_EXPORT int close(int fd)
{
	PL_REAL(close);
	if (pl_is_own_fd(fd))
		pl_forget_own_fd(); /* the workload wants the number free */
	else
		pl_closing(fd);
	return real_fn(fd);
}

/* Every fd of a range the library has a slot for, before it closes. */
static void closing_range(unsigned first, unsigned last)
{
	if (!pl_active)
		return;
	int max = atomic_load(&pl_max_fd);
	for (unsigned fd = first; fd <= last && (int)fd <= max; fd++)
		pl_closing((int)fd);
	int own = pl_own_fd();
	if (own >= 0 && (unsigned)own >= first && (unsigned)own <= last)
		pl_forget_own_fd(); /* a new one at the next send */
}

PL_EXPORT int close_range(unsigned int first, unsigned int last, int flags)
{
	PL_REAL(close_range);
	if (!(flags & CLOSE_RANGE_CLOEXEC))
		closing_range(first, last);
	return real_fn(first, last, flags);
}

PL_EXPORT void closefrom(int lowfd)
{
	PL_REAL(closefrom);
	closing_range(lowfd < 0 ? 0 : (unsigned)lowfd, ~0u);
	real_fn(lowfd);
}

/* ---- the working directory ---- */

PL_EXPORT int chdir(const char *path)
{
	PL_REAL(chdir);
	int r = real_fn(path);
	if (r == 0 && pl_active) {
		atomic_fetch_add(&pl_cwd_gen, 1);
		pl_out o;
		pl_out_init(&o, PL_R_CHDIR);
		o.strs[o.nstr++] = path;
		pl_emit(&o, false);
	}
	return r;
}

PL_EXPORT int fchdir(int fd)
{
	PL_REAL(fchdir);
	int r = real_fn(fd);
	if (r == 0 && pl_active) {
		atomic_fetch_add(&pl_cwd_gen, 1);
		pl_out o;
		pl_out_init(&o, PL_R_FCHDIR);
		o.r.fd = fd;
		pl_emit(&o, false);
	}
	return r;
}
