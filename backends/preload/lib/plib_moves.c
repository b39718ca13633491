/*
 * plib_moves.c - outputs moved by calls the library cannot see. A
 * renameat2 issued as a raw syscall (or by a static helper) moves a file
 * without a record, and the report would name a path that no longer holds
 * the output. So the library remembers, for every file this process wrote,
 * its (device, inode) and where it was at close; the renames and unlinks
 * it does see keep that list current (matched by inode, looked at before
 * the call). At exit and before exec, an output that is no longer where
 * it was is looked for by inode in its directory: found, it becomes a
 * RENAME record; not found, a warning names it.
 *
 * Where it was is the name the collector knows it by: the open's path,
 * made absolute with the cwd (cached until a chdir) or its directory
 * fd's name, as written (symlinks and ".." are the kernel's to resolve
 * when the name is used), moved along by the renames seen while the fd
 * was open. So a written file's close costs no system call here. Only an
 * fd opened by an unknown directory fd, or not through an open the
 * library saw, asks the kernel (/proc/self/fd) at close.
 *
 * Up to PL_MOVES_MAX outputs a process image are followed (a warning
 * says when more were written); at exit, a directory of many of them is
 * read once rather than each looked at.
 */
#include "plib.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Outputs followed per process image; beyond, no recovery (said once).
 * An entry is about 100 bytes; a process that writes this many files
 * spends far more on writing them. */
#define PL_MOVES_MAX 65536

struct pl_written {
	uint64_t dev, ino;
	char *path;
	int next_inode; /* the next entry in its bucket of by_inode, or -1 */
};

/* Dense: entries 0..nmoves-1 are live (a dropped one is replaced by the
 * last), one per (dev, ino), indexed by a chained hash table: a `cp -r`
 * of 4,000 files looks up and checks every one. */
static struct pl_written *moves;
static int nmoves, cap;
static int *by_inode; /* nbuckets heads, -1 when empty */
static int nbuckets;  /* a power of two, 0 before the first */
static bool moves_full;

static uint32_t inode_hash(uint64_t dev, uint64_t ino)
{
	uint64_t h = (ino ^ (dev << 32 | dev >> 32)) * 0x9e3779b97f4a7c15ull;
	return (uint32_t)(h >> 32);
}

static int *inode_head(uint64_t dev, uint64_t ino)
{
	return &by_inode[inode_hash(dev, ino) & (uint32_t)(nbuckets - 1)];
}

static void link_entry(int i)
{
	struct pl_written *w = &moves[i];
	int *hi = inode_head(w->dev, w->ino);
	w->next_inode = *hi;
	*hi = i;
}

static void unlink_entry(int i)
{
	struct pl_written *w = &moves[i];
	int *l = inode_head(w->dev, w->ino);
	while (*l != i)
		l = &moves[*l].next_inode;
	*l = w->next_inode;
}

/* Room for one more entry; false when there is none (a full table, or
 * no memory: either way that output is not followed). */
static bool reserve(void)
{
	if (nmoves == PL_MOVES_MAX)
		return false;
	if (nmoves == cap) {
		int ncap = cap ? cap * 2 : 64;
		struct pl_written *m =
			realloc(moves, sizeof(*m) * (size_t)ncap);
		if (!m)
			return false;
		moves = m;
		cap = ncap;
	}
	if (nmoves < nbuckets)
		return true;
	int nb = nbuckets ? nbuckets * 2 : 128;
	int *bi = malloc(sizeof(int) * (size_t)nb);
	if (!bi)
		return nmoves < nbuckets * 2; /* chains a little longer */
	free(by_inode);
	by_inode = bi;
	nbuckets = nb;
	for (int i = 0; i < nb; i++)
		by_inode[i] = -1;
	for (int i = 0; i < nmoves; i++)
		link_entry(i);
	return true;
}

static int find_inode_entry(uint64_t dev, uint64_t ino)
{
	if (!nmoves)
		return -1;
	for (int i = *inode_head(dev, ino); i >= 0; i = moves[i].next_inode)
		if (moves[i].dev == dev && moves[i].ino == ino)
			return i;
	return -1;
}

static void set_path(int i, char *p)
{
	free(moves[i].path);
	moves[i].path = p;
}

static void drop(int i)
{
	unlink_entry(i);
	free(moves[i].path);
	int last = --nmoves;
	if (i != last) {
		unlink_entry(last);
		moves[i] = moves[last];
		link_entry(i);
	}
}

/* ---- the names fds were opened by ---- */

static char pl_cwd[PATH_MAX];
static bool pl_cwd_ok;
static uint32_t pl_cwd_at; /* pl_cwd_gen when pl_cwd was read */

static const char *cwd_locked(void)
{
	uint32_t gen = atomic_load(&pl_cwd_gen);
	if (!pl_cwd_ok || pl_cwd_at != gen) {
		pl_cwd_ok = getcwd(pl_cwd, sizeof(pl_cwd)) && pl_cwd[0] == '/';
		pl_cwd_at = gen;
	}
	return pl_cwd_ok ? pl_cwd : NULL;
}

/* dirfd/path as an absolute name (malloc'd), as written: nothing
 * resolved or removed. NULL when the directory is not known. */
static char *name_of(int dirfd, const char *path)
{
	const char *base = NULL;
	if (!path[0])
		return NULL;
	if (path[0] == '/')
		return strdup(path);
	if (dirfd == AT_FDCWD)
		base = cwd_locked();
	else if ((unsigned)dirfd < PL_SLOTS && pl_names[dirfd] != PL_NAME_GONE)
		base = pl_names[dirfd];
	if (!base)
		return NULL;
	size_t b = strlen(base), n = strlen(path);
	if (b == 1)
		b = 0; /* "/" */
	if (b + 1 + n >= PATH_MAX)
		return NULL;
	char *s = malloc(b + n + 2);
	if (s) {
		memcpy(s, base, b);
		s[b] = '/';
		memcpy(s + b + 1, path, n + 1);
	}
	return s;
}

void pl_name_closed_locked(int fd)
{
	if ((unsigned)fd >= PL_SLOTS)
		return;
	char *n = pl_names[fd];
	pl_names[fd] = NULL;
	if (n != PL_NAME_GONE)
		free(n);
}

void pl_name_opened_locked(int fd, int dirfd, const char *path)
{
	if ((unsigned)fd >= PL_SLOTS)
		return;
	pl_name_closed_locked(fd); /* one left by a close not seen */
	pl_names[fd] = name_of(dirfd, path);
}

void pl_name_duped_locked(int old, int new)
{
	pl_name_closed_locked(new);
	if ((unsigned)old >= PL_SLOTS || (unsigned)new >= PL_SLOTS)
		return;
	char *n = pl_names[old];
	pl_names[new] = n && n != PL_NAME_GONE ? strdup(n) : n;
}

/* An open file's name (not a directory's). */
static bool output_name(int fd)
{
	char *n = pl_names[fd];
	return n && n != PL_NAME_GONE &&
	       (atomic_load_explicit(&pl_slots[fd], memory_order_relaxed) &
		PL_S_KNOWN);
}

/* The open files (dev, ino), known by name from: now known as to, or
 * (to PL_NAME_GONE) by no name, not followed when they close. from NULL:
 * whatever their name. */
static void rename_open(uint64_t dev, uint64_t ino, const char *from,
			const char *to)
{
	int max = atomic_load(&pl_max_fd);
	for (int fd = 0; fd <= max && fd < PL_SLOTS; fd++) {
		if (!output_name(fd) || pl_snaps[fd].dev != dev ||
		    pl_snaps[fd].ino != ino ||
		    (from && strcmp(pl_names[fd], from) != 0))
			continue;
		char *n = to == PL_NAME_GONE ? PL_NAME_GONE
			  : to               ? strdup(to)
					     : NULL;
		free(pl_names[fd]);
		pl_names[fd] = n; /* NULL, out of memory: asked at close */
	}
}

/* A hint, read without the lock: whether renames must be looked at. */
bool pl_moves_following(void)
{
	if (nmoves)
		return true;
	int max = atomic_load(&pl_max_fd);
	for (int fd = 0; fd <= max && fd < PL_SLOTS; fd++)
		if (output_name(fd))
			return true;
	return false;
}

/* ---- the outputs followed ---- */

void pl_moves_note_written(int fd)
{
	char kname[PATH_MAX];
	const char *path;
	uint64_t dev, ino;
	char *name = (unsigned)fd < PL_SLOTS ? pl_names[fd] : NULL;
	if (name == PL_NAME_GONE)
		return; /* its name was unlinked while it was open */
	if (name) {
		path = name;
		dev = pl_snaps[fd].dev;
		ino = pl_snaps[fd].ino;
	} else {
		char proc[64];
		struct stat st;
		snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
		ssize_t n = readlink(proc, kname, sizeof(kname) - 1);
		if (n <= 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
			return;
		/* No name left (unlinked while open, or an O_TMPFILE never
		 * linked): no path can name it wrongly, and the kernel's
		 * "PATH (deleted)" is no place to look for it. */
		if (st.st_nlink == 0)
			return;
		kname[n] = '\0';
		if (kname[0] != '/')
			return; /* not a path */
		path = kname;
		dev = st.st_dev;
		ino = st.st_ino;
	}
	int i = find_inode_entry(dev, ino);
	if (i >= 0) {
		if (strcmp(moves[i].path, path) != 0) {
			char *p = strdup(path);
			if (p)
				set_path(i, p);
		}
		return;
	}
	char *p = strdup(path);
	if (!p)
		return;
	if (!reserve()) {
		free(p);
		moves_full = true;
		return;
	}
	i = nmoves++;
	moves[i] = (struct pl_written){dev, ino, p, -1};
	link_entry(i);
}

/* dirfd/path made absolute, its directory resolved through symlinks as
 * the kernel's fd names are. */
static bool absolute(int dirfd, const char *path, char *out, size_t outsz)
{
	char joined[PATH_MAX * 2], dir[PATH_MAX];
	if (path[0] == '/') {
		snprintf(joined, sizeof(joined), "%s", path);
	} else {
		char base[PATH_MAX];
		if (dirfd == AT_FDCWD) {
			if (!getcwd(base, sizeof(base)))
				return false;
		} else {
			char proc[64];
			snprintf(proc, sizeof(proc), "/proc/self/fd/%d", dirfd);
			ssize_t n = readlink(proc, base, sizeof(base) - 1);
			if (n <= 0)
				return false;
			base[n] = '\0';
		}
		snprintf(joined, sizeof(joined), "%s/%s", base, path);
	}
	char *slash = strrchr(joined, '/');
	*slash = '\0';
	if (!realpath(joined[0] ? joined : "/", dir))
		return false;
	int n = snprintf(out, outsz, "%s/%s", strcmp(dir, "/") ? dir : "",
			 slash + 1);
	return n > 0 && (size_t)n < outsz;
}

/* dirfd/path's name for an entry: as written, else made absolute with
 * the kernel's name of its directory fd. NULL: none. */
static char *entry_name(int dirfd, const char *path)
{
	char a[PATH_MAX];
	char *n = name_of(dirfd, path);
	if (n || !path[0])
		return n;
	return absolute(dirfd, path, a, sizeof(a)) ? strdup(a) : NULL;
}

/* Forget the entry of (dev, ino); with name, only when by that name. */
static void forget(uint64_t dev, uint64_t ino, const char *name)
{
	int i = find_inode_entry(dev, ino);
	if (i >= 0 && (!name || strcmp(moves[i].path, name) == 0))
		drop(i);
}

/* The file st is now called to (NULL: not known; then not followed). */
static void move_to(const struct stat *st, const char *to)
{
	int i = find_inode_entry(st->st_dev, st->st_ino);
	char *p = i >= 0 && to ? strdup(to) : NULL;
	if (p)
		set_path(i, p);
	else if (i >= 0)
		drop(i);
	rename_open(st->st_dev, st->st_ino, NULL, to);
}

void pl_moves_renamed(int od, const char *old, int nd, const char *new,
		      unsigned flags, const struct stat *moved,
		      const struct stat *replaced)
{
	/* Two names of one file: the rename did nothing. */
	if (replaced && replaced->st_dev == moved->st_dev &&
	    replaced->st_ino == moved->st_ino)
		return;
	char *to = entry_name(nd, new);
	if (replaced && S_ISREG(replaced->st_mode)) {
		uint64_t dev = replaced->st_dev, ino = replaced->st_ino;
		if (flags & RENAME_EXCHANGE) {
			char *from = entry_name(od, old);
			move_to(replaced, from);
			free(from);
		} else if (replaced->st_nlink <= 1) {
			/* Gone: forgotten, or a later file reusing its
			 * inode would look like it. */
			forget(dev, ino, NULL);
			rename_open(dev, ino, NULL, PL_NAME_GONE);
		} else if (to) {
			/* Another name of it stays: only this one went. */
			forget(dev, ino, to);
			rename_open(dev, ino, to, PL_NAME_GONE);
		}
	}
	if (S_ISREG(moved->st_mode))
		move_to(moved, to);
	free(to);
}

void pl_moves_unlinked(int dirfd, const char *path)
{
	struct stat st;
	if (!pl_moves_following() ||
	    fstatat(dirfd, path, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
	    !S_ISREG(st.st_mode))
		return;
	if (st.st_nlink <= 1) {
		forget(st.st_dev, st.st_ino, NULL);
		rename_open(st.st_dev, st.st_ino, NULL, PL_NAME_GONE);
		return;
	}
	/* Another name of it stays: only what went by this one. */
	char *n = entry_name(dirfd, path);
	if (n) {
		forget(st.st_dev, st.st_ino, n);
		rename_open(st.st_dev, st.st_ino, n, PL_NAME_GONE);
	}
	free(n);
}

static void close_dir(DIR *d)
{
	PL_REAL(closedir);
	real_fn(d);
}

/* The name in dir of the file (dev, ino), or false. */
static bool find_inode(const char *dir, uint64_t dev, uint64_t ino, char *out,
		       size_t outsz)
{
	PL_REAL(opendir);
	DIR *d = real_fn(dir);
	bool found = false;
	if (!d)
		return false;
	struct dirent *e;
	while (!found && (e = readdir(d)))
		if (e->d_ino == ino) {
			struct stat st;
			snprintf(out, outsz, "%s/%s", dir, e->d_name);
			found = lstat(out, &st) == 0 && S_ISREG(st.st_mode) &&
				st.st_dev == dev && st.st_ino == ino;
		}
	close_dir(d);
	return found;
}

/* The entries' paths by directory, then name. */
static int by_dir_then_name(const void *x, const void *y)
{
	const char *a = moves[*(const int *)x].path;
	const char *b = moves[*(const int *)y].path;
	size_t da = (size_t)(strrchr(a, '/') - a);
	size_t db = (size_t)(strrchr(b, '/') - b);
	int r = memcmp(a, b, da < db ? da : db);
	if (r || da != db)
		return r ? r : da < db ? -1 : 1;
	return strcmp(a + da + 1, b + db + 1);
}

/* A directory holding this many followed outputs is read once rather
 * than each looked at with lstat. */
#define PL_MOVES_SCAN_MIN 16

/* ok[i] for the entries ix[0..n) of one directory that its listing
 * shows still in place: their name, with their inode number. What it
 * does not show (another inode number: a moved file, or a filesystem
 * whose listing numbers differ from stat's, as overlayfs's may) is left
 * to lstat. */
static void mark_listed(const int *ix, int n, bool *ok)
{
	const char *first = moves[ix[0]].path;
	size_t dlen = (size_t)(strrchr(first, '/') - first);
	char dir[PATH_MAX];
	if (dlen >= sizeof(dir))
		return;
	memcpy(dir, first, dlen);
	dir[dlen ? dlen : 1] = '\0';
	if (!dlen)
		dir[0] = '/';
	PL_REAL(opendir);
	DIR *d = real_fn(dir);
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d))) {
		int lo = 0, hi = n;
		while (lo < hi) {
			int mid = (lo + hi) / 2;
			int r = strcmp(moves[ix[mid]].path + dlen + 1,
				       e->d_name);
			if (r == 0) {
				ok[ix[mid]] = moves[ix[mid]].ino == e->d_ino;
				break;
			}
			if (r < 0)
				lo = mid + 1;
			else
				hi = mid;
		}
	}
	close_dir(d);
}

/* Which entries are in place, found with a listing per directory of
 * many; NULL when there is no memory for it (lstat each, then). */
static bool *listed_in_place(void)
{
	int *ix = malloc(sizeof(int) * (size_t)nmoves);
	bool *ok = calloc((size_t)nmoves, sizeof(bool));
	if (!ix || !ok) {
		free(ix);
		free(ok);
		return NULL;
	}
	for (int i = 0; i < nmoves; i++)
		ix[i] = i;
	qsort(ix, (size_t)nmoves, sizeof(int), by_dir_then_name);
	for (int g = 0, end; g < nmoves; g = end) {
		const char *p = moves[ix[g]].path;
		size_t dlen = (size_t)(strrchr(p, '/') - p);
		for (end = g + 1; end < nmoves; end++) {
			const char *q = moves[ix[end]].path;
			if ((size_t)(strrchr(q, '/') - q) != dlen ||
			    memcmp(p, q, dlen) != 0)
				break;
		}
		if (end - g >= PL_MOVES_SCAN_MIN)
			mark_listed(ix + g, end - g, ok);
	}
	free(ix);
	return ok;
}

void pl_moves_check_locked(void)
{
	bool *ok = nmoves >= PL_MOVES_SCAN_MIN ? listed_in_place() : NULL;
	for (int i = 0; i < nmoves; i++) {
		struct pl_written *w = &moves[i];
		struct stat st;
		if (ok && ok[i])
			continue;
		int e = lstat(w->path, &st) == 0 ? 0 : errno;
		if (e == 0 && st.st_dev == w->dev && st.st_ino == w->ino)
			continue;
		/* Opened through a symlink: the name still reaches it. */
		if (e == 0 && S_ISLNK(st.st_mode) && stat(w->path, &st) == 0 &&
		    st.st_dev == w->dev && st.st_ino == w->ino)
			continue;
		/* A path this process may not look at (a file it inherited
		 * open, in a directory it cannot search): nothing says it
		 * moved, and the end's hashing of the path says what it
		 * could not check. */
		if (e != 0 && e != ENOENT && e != ENOTDIR)
			continue;
		char dir[PATH_MAX], found[PATH_MAX * 2];
		snprintf(dir, sizeof(dir), "%s", w->path);
		char *slash = strrchr(dir, '/');
		if (slash == dir)
			slash[1] = '\0';
		else if (slash)
			*slash = '\0';
		pl_out o;
		if (find_inode(dir, w->dev, w->ino, found, sizeof(found)) &&
		    strlen(found) < PATH_MAX) {
			pl_out_init(&o, PL_R_RENAME);
			o.r.fd = o.r.fd2 = AT_FDCWD;
			o.strs[o.nstr++] = w->path;
			o.strs[o.nstr++] = found;
			pl_append_locked(&o);
			char *p = strdup(found);
			if (p)
				set_path(i, p);
			continue;
		}
		char text[PATH_MAX + 200];
		snprintf(text, sizeof(text),
			 "preload: %.700s, written by pid %d, was moved or "
			 "removed by a call preload cannot see (a raw syscall?): "
			 "its record may name the wrong path",
			 w->path, (int)pl_self());
		pl_out_init(&o, PL_R_WARN);
		o.strs[o.nstr++] = text;
		pl_append_locked(&o);
	}
	free(ok);
	if (moves_full) {
		pl_out o;
		pl_out_init(&o, PL_R_WARN);
		o.strs[o.nstr++] = "preload: a process wrote more files than "
				   "are followed for moves preload cannot see";
		pl_append_locked(&o);
		moves_full = false;
	}
}

/* A fork child did not write its parent's outputs: the parent checks
 * them. */
void pl_moves_forget(void)
{
	for (int i = 0; i < nmoves; i++)
		free(moves[i].path);
	for (int i = 0; i < nbuckets; i++)
		by_inode[i] = -1;
	nmoves = 0;
	moves_full = false;
}
