/*
 * fdtable.c - the kernel-side objects the classifier mirrors: fd tables,
 * open file descriptions and cwd objects.
 *
 * They are refcounted for the same reasons the kernel's are: fork copies an
 * fd table but the copies point at the same open files (an O_TRUNC open in
 * the parent is the child's open too), CLONE_FILES and CLONE_FS share the
 * table or the cwd outright, dup aliases an open file. An fd table is an
 * array indexed by fd, so a READ costs one bounds check and one load.
 *
 * Open-file objects are recycled through a free list owned by the
 * classifier: an open/close loop then allocates nothing after warm-up.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include "classifier_internal.h"

/* ---- Open files ---- */

struct ofile *ofile_new(struct weft_classifier *c, path_id path, int32_t flags,
			bool tracked)
{
	struct ofile *of = c->free_files;
	if (of)
		c->free_files = of->next;
	else if (!(of = malloc(sizeof(*of))))
		return NULL;
	of->refs = 0;
	of->touch = TOUCH_NONE;
	of->src = SRC_BEFORE;
	of->gen = path_get(&c->paths, path)->gen;
	of->open_seq = c->seq;
	of->open_ns = c->now;
	of->path = path;
	of->flags = flags;
	of->tracked = tracked;
	of->prev = NULL;
	of->next = c->live_files;
	if (c->live_files)
		c->live_files->prev = of;
	c->live_files = of;
	return of;
}

static void ofile_put(struct weft_classifier *c, struct ofile *of)
{
	touch_note_close(c, c->cur, of);
	if (--of->refs)
		return;
	/* Writes through a file end at its last close at the latest: the
	 * bound a reader's open is compared with (backends may report only
	 * a file's first write). */
	if (of->tracked && (of->flags & O_ACCMODE) != O_RDONLY) {
		struct path_ent *e = path_get(&c->paths, of->path);
		if ((e->flags & PATH_WRITTEN) && c->now > e->last_write_ns)
			e->last_write_ns = c->now;
		if (c->on_file && (e->flags & PATH_WRITTEN) &&
		    !(e->flags & PATH_IGNORED) && of->gen == e->gen)
			c->on_file(c->on_file_arg, e->s, NULL);
	}
	if (of->prev)
		of->prev->next = of->next;
	else
		c->live_files = of->next;
	if (of->next)
		of->next->prev = of->prev;
	of->prev = NULL;
	of->next = c->free_files;
	c->free_files = of;
}

void ofile_free_all(struct weft_classifier *c)
{
	struct ofile *lists[2] = {c->live_files, c->free_files};
	for (int i = 0; i < 2; i++) {
		struct ofile *of = lists[i];
		while (of) {
			struct ofile *next = of->next;
			free(of);
			of = next;
		}
	}
	c->live_files = c->free_files = NULL;
}

/* ---- fd tables ---- */

struct fdtable *fdtable_new(void)
{
	struct fdtable *t = calloc(1, sizeof(*t));
	if (t)
		t->refs = 1;
	return t;
}

static uint32_t fd_capacity_for(uint32_t n)
{
	uint32_t cap = 64;
	while (cap < n)
		cap *= 2;
	return cap;
}

struct fdtable *fdtable_copy(const struct fdtable *src)
{
	struct fdtable *t = fdtable_new();
	if (!t)
		return NULL;
	if (src->hi) {
		t->cap = fd_capacity_for(src->hi);
		t->ents = calloc(t->cap, sizeof(*t->ents));
		if (!t->ents) {
			free(t);
			return NULL;
		}
		memcpy(t->ents, src->ents, src->hi * sizeof(*t->ents));
		t->hi = src->hi;
		for (uint32_t i = 0; i < t->hi; i++)
			if (t->ents[i].of)
				t->ents[i].of->refs++;
	}
	return t;
}

void fdtable_put(struct weft_classifier *c, struct fdtable *t)
{
	if (--t->refs)
		return;
	for (uint32_t i = 0; i < t->hi; i++)
		if (t->ents[i].of)
			ofile_put(c, t->ents[i].of);
	free(t->ents);
	free(t);
}

int fdtable_reserve(struct fdtable *t, int fd)
{
	if (fd < 0 || fd >= CLS_MAX_FD)
		return WEFT_ETOOBIG;
	if ((uint32_t)fd < t->cap)
		return WEFT_OK;
	uint32_t cap = fd_capacity_for((uint32_t)fd + 1);
	struct fdent *ents = realloc(t->ents, cap * sizeof(*ents));
	if (!ents)
		return WEFT_ENOMEM;
	memset(ents + t->cap, 0, (cap - t->cap) * sizeof(*ents));
	t->ents = ents;
	t->cap = cap;
	return WEFT_OK;
}

void fdtable_install(struct weft_classifier *c, struct fdtable *t, int fd,
		     struct ofile *of, bool cloexec)
{
	struct ofile *old = t->ents[fd].of;
	of->refs++; /* before dropping old: they may be the same */
	t->ents[fd].of = of;
	t->ents[fd].cloexec = cloexec;
	if ((uint32_t)fd >= t->hi)
		t->hi = (uint32_t)fd + 1;
	if (old)
		ofile_put(c, old);
}

void fdtable_close(struct weft_classifier *c, struct fdtable *t, int fd)
{
	struct ofile *of = fdtable_get(t, fd);
	if (!of)
		return;
	t->ents[fd].of = NULL;
	t->ents[fd].cloexec = false;
	/* Keep hi tight for the common "open the lowest fd, close it" loop,
	 * so fork copies and exec scans stay short. */
	while (t->hi && !t->ents[t->hi - 1].of)
		t->hi--;
	ofile_put(c, of);
}

void fdtable_close_on_exec(struct weft_classifier *c, struct fdtable *t)
{
	for (uint32_t i = 0; i < t->hi; i++)
		if (t->ents[i].of && t->ents[i].cloexec)
			fdtable_close(c, t, (int)i);
}

/* ---- cwd objects ---- */

struct fsinfo *fsinfo_new(const char *cwd, size_t len)
{
	struct fsinfo *fs = calloc(1, sizeof(*fs));
	if (!fs)
		return NULL;
	fs->refs = 1;
	if (fsinfo_set(fs, cwd, len) != WEFT_OK) {
		free(fs);
		return NULL;
	}
	return fs;
}

struct fsinfo *fsinfo_copy(const struct fsinfo *src)
{
	return fsinfo_new(src->cwd, src->len);
}

void fsinfo_put(struct fsinfo *fs)
{
	if (--fs->refs)
		return;
	free(fs->cwd);
	free(fs);
}

int fsinfo_set(struct fsinfo *fs, const char *cwd, size_t len)
{
	char *copy = NULL;
	if (cwd) {
		copy = malloc(len + 1);
		if (!copy)
			return WEFT_ENOMEM;
		memcpy(copy, cwd, len);
		copy[len] = '\0';
	}
	free(fs->cwd);
	fs->cwd = copy;
	fs->len = cwd ? (uint32_t)len : 0;
	return WEFT_OK;
}
