/*
 * plib_moves.c - outputs moved by calls the library cannot see. A
 * renameat2 issued as a raw syscall (or by a static helper) moves a file
 * without a record, and the report would name a path that no longer holds
 * the output. So the library remembers, for every file this process wrote,
 * its (device, inode) and where it was at close (the kernel's own name for
 * the fd); the renames and unlinks it does see keep that list current. At
 * exit and before exec, an output that is no longer where it was is looked
 * for by inode in its directory: found, it becomes a RENAME record; not
 * found, a warning names it.
 *
 * Not on the hot path: this runs when a written fd closes, and at renames
 * and unlinks.
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

/* Outputs followed per process image; beyond, no recovery (said once). */
#define PL_MOVES_MAX 256

struct pl_written {
	uint64_t dev, ino;
	char *path;
};

static struct pl_written moves[PL_MOVES_MAX];
static int nmoves;
static bool moves_full;

/* Under the lock (every caller holds it). */
static struct pl_written *find_path(const char *path)
{
	for (int i = 0; i < nmoves; i++)
		if (moves[i].path && strcmp(moves[i].path, path) == 0)
			return &moves[i];
	return NULL;
}

static void drop(struct pl_written *w)
{
	free(w->path);
	*w = moves[--nmoves];
	moves[nmoves].path = NULL;
}

void pl_moves_note_written(int fd)
{
	char proc[64], path[PATH_MAX];
	struct stat st;
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(proc, path, sizeof(path) - 1);
	if (n <= 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
		return;
	path[n] = '\0';
	if (path[0] != '/')
		return; /* deleted already, or not a path */
	for (int i = 0; i < nmoves; i++)
		if (moves[i].dev == st.st_dev && moves[i].ino == st.st_ino) {
			if (strcmp(moves[i].path, path) != 0) {
				char *p = strdup(path);
				if (p) {
					free(moves[i].path);
					moves[i].path = p;
				}
			}
			return;
		}
	if (nmoves == PL_MOVES_MAX) {
		moves_full = true;
		return;
	}
	char *p = strdup(path);
	if (!p)
		return;
	moves[nmoves++] = (struct pl_written){st.st_dev, st.st_ino, p};
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

void pl_moves_renamed(int od, const char *old, int nd, const char *new)
{
	char a[PATH_MAX], b[PATH_MAX];
	if (!nmoves || !absolute(od, old, a, sizeof(a)) ||
	    !absolute(nd, new, b, sizeof(b)))
		return;
	/* What was at the new name is gone (replaced), whatever inode
	 * number it had: forget it, or a later file reusing its inode
	 * would look like it. */
	struct pl_written *w;
	while ((w = find_path(b)))
		drop(w);
	w = find_path(a);
	char *p = w ? strdup(b) : NULL;
	if (p) {
		free(w->path);
		w->path = p;
	}
}

void pl_moves_unlinked(int dirfd, const char *path)
{
	char a[PATH_MAX];
	if (!nmoves || !absolute(dirfd, path, a, sizeof(a)))
		return;
	struct pl_written *w;
	while ((w = find_path(a)))
		drop(w);
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

void pl_moves_check_locked(void)
{
	for (int i = 0; i < nmoves; i++) {
		struct pl_written *w = &moves[i];
		struct stat st;
		int e = lstat(w->path, &st) == 0 ? 0 : errno;
		if (e == 0 && st.st_dev == w->dev && st.st_ino == w->ino)
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
			if (p) {
				free(w->path);
				w->path = p;
			}
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
	nmoves = 0;
	moves_full = false;
}
