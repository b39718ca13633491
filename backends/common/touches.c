/*
 * touches.c - attribution: what each process image of the run did to each
 * path, and which version it saw (DESIGN.md "The classifier").
 *
 * A touch is one (process image, path) pair. The path remembers the touch
 * whose write made what is there now (path_ent.writer); an open remembers
 * the version it found (ofile.src). A process that reads content another
 * process of the run wrote gets that writer as its source, so lineage
 * inside a run (the object file `cc -c` wrote and `ld` read) is exact: the
 * classifier sees every event of the run in one order (c->seq).
 *
 * Cost: a touch is made on a process's first read, write or name change of
 * a path, never on the hot path after that (the open file caches it), and
 * lives in one array with an open-addressing index, so a run of 200,000
 * files pays about 60 bytes a file touched once.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "classifier_internal.h"

static uint32_t touch_hash(uint32_t proc, path_id id)
{
	uint32_t h = (proc * 0x9e3779b1u) ^ (id * 0x85ebca6bu);
	return h ^ (h >> 15);
}

void touch_table_free(struct touch_table *t)
{
	free(t->v);
	free(t->slots);
	memset(t, 0, sizeof(*t));
}

void touch_table_clear(struct weft_classifier *c)
{
	touch_table_free(&c->touches);
	for (path_id i = 0; i < c->paths.n; i++) {
		struct path_ent *e = path_get(&c->paths, i);
		e->touches = TOUCH_NONE;
		e->writer = SRC_BEFORE;
	}
	for (struct ofile *of = c->live_files; of; of = of->next) {
		of->touch = TOUCH_NONE;
		of->src = SRC_BEFORE;
	}
}

static struct touch *lookup(const struct touch_table *t, uint32_t proc,
			    path_id id)
{
	if (!t->n)
		return NULL;
	uint32_t mask = t->nslots - 1;
	for (uint32_t i = touch_hash(proc, id) & mask; t->slots[i];
	     i = (i + 1) & mask) {
		struct touch *x = &t->v[t->slots[i] - 1];
		if (x->proc == proc && x->path == id)
			return x;
	}
	return NULL;
}

const struct touch *touch_find(const struct weft_classifier *c, uint32_t proc,
			       path_id id)
{
	return lookup(&c->touches, proc, id);
}

static int touch_rehash(struct touch_table *t, uint32_t nslots)
{
	uint32_t *slots = calloc(nslots, sizeof(*slots));
	if (!slots)
		return WEFT_ENOMEM;
	for (uint32_t k = 0; k < t->n; k++) {
		uint32_t i =
			touch_hash(t->v[k].proc, t->v[k].path) & (nslots - 1);
		while (slots[i])
			i = (i + 1) & (nslots - 1);
		slots[i] = k + 1;
	}
	free(t->slots);
	t->slots = slots;
	t->nslots = nslots;
	return WEFT_OK;
}

static struct touch *touch_add(struct weft_classifier *c, struct proc *p,
			       path_id id, const struct ofile *of)
{
	struct touch_table *t = &c->touches;
	if (t->n >= TOUCH_NONE - 2)
		return NULL;
	if ((uint64_t)(t->n + 1) * 2 > t->nslots &&
	    touch_rehash(t, t->nslots ? t->nslots * 2 : 1024) != WEFT_OK)
		return NULL;
	if (table_grow((void **)&t->v, &t->cap, t->n, 512, sizeof(*t->v)) !=
	    WEFT_OK)
		return NULL;
	struct path_ent *e = path_get(&c->paths, id);
	uint32_t k = t->n++;
	struct touch *x = &t->v[k];
	*x = (struct touch){
		.proc = p->idx,
		.path = id,
		.next = e->touches,
		.first_seq = of ? of->open_seq : c->seq,
		.first_open_ns = of ? of->open_ns : c->now,
	};
	e->touches = k;
	p->acted = true;
	uint32_t mask = t->nslots - 1;
	uint32_t i = touch_hash(p->idx, id) & mask;
	while (t->slots[i])
		i = (i + 1) & mask;
	t->slots[i] = k + 1;
	return x;
}

struct touch *touch_get(struct weft_classifier *c, struct proc *p, path_id id,
			struct ofile *of)
{
	if (of && of->touch != TOUCH_NONE && of->touch < c->touches.n) {
		struct touch *x = &c->touches.v[of->touch];
		if (x->proc == p->idx && x->path == id)
			return x;
	}
	struct touch *x = lookup(&c->touches, p->idx, id);
	if (!x && !(x = touch_add(c, p, id, of))) {
		c->touches_lost++;
		return NULL;
	}
	if (of)
		of->touch = touch_index(c, x);
	return x;
}

/* The version an open file shows now: what the path holds when it is
 * still the file opened, else what it held at the open. */
static uint32_t version_through(const struct weft_classifier *c,
				const struct ofile *of)
{
	const struct path_ent *e = path_get(&c->paths, of->path);
	if (of->gen == e->gen && e->writer != SRC_BEFORE)
		return e->writer;
	return of->src;
}

static void set_src(struct touch *x, uint32_t src, uint64_t seq)
{
	if (x->flags & TOUCH_HAS_SRC)
		return;
	x->flags |= TOUCH_HAS_SRC;
	x->src = src;
	if (seq > x->first_seq)
		x->first_seq = seq;
}

void touch_note_open(struct weft_classifier *c, struct ofile *of,
		     const weft_event *ev)
{
	const struct path_ent *e = path_get(&c->paths, of->path);
	of->gen = e->gen;
	of->open_seq = c->seq;
	of->open_ns = c->now;
	of->touch = TOUCH_NONE;
	of->src = e->writer;
	/* Nothing of the run's is there: the version the run found, unless
	 * its identity differs from the one the run first saw (the file
	 * changed under the run). */
	if (of->src == SRC_BEFORE && ev && ev->has_stat &&
	    (e->flags & PATH_FIRST_STAT) &&
	    (ev->st_dev != e->first_dev || ev->st_ino != e->first_ino ||
	     ev->st_size != e->first_size ||
	     ev->st_mtime_ns != e->first_mtime_ns ||
	     ev->st_ctime_ns != e->first_ctime_ns))
		of->src = SRC_UNKNOWN;
}

void touch_read(struct weft_classifier *c, struct proc *p, struct ofile *of)
{
	struct touch *x = touch_get(c, p, of->path, of);
	if (!x)
		return;
	uint32_t v = version_through(c, of);
	if (v == touch_index(c, x))
		return; /* its own content */
	x->flags |= WEFT_TOUCH_READ;
	set_src(x, v, of->open_seq);
}

void touch_write(struct weft_classifier *c, struct proc *p, struct ofile *of)
{
	struct touch *x = touch_get(c, p, of->path, of);
	if (!x)
		return;
	struct path_ent *e = path_get(&c->paths, of->path);
	uint32_t self = touch_index(c, x), v = version_through(c, of);
	if (v != self) {
		/* A new version made by writing into the one there: an
		 * update of it, unless that one is empty by truncation or
		 * creation alone (nothing of it is kept that matters).
		 * Content the run found counts as an update here; finish
		 * drops it when that content was empty. */
		bool empty = v < c->touches.n &&
			     !(c->touches.v[v].flags & TOUCH_BYTES);
		if (!(x->flags & TOUCH_REPLACED) && !empty) {
			x->flags |= WEFT_TOUCH_UPDATED;
			set_src(x, v, c->seq);
		}
		if (of->gen == e->gen)
			e->writer = self;
	}
	x->flags |= WEFT_TOUCH_WRITTEN | TOUCH_BYTES;
	x->write_seq = c->seq;
	x->last_write_ns = c->now;
}

void touch_replace(struct weft_classifier *c, struct proc *p, path_id id,
		   struct ofile *of, uint32_t extra)
{
	struct path_ent *e = path_get(&c->paths, id);
	if (e->flags & PATH_IGNORED)
		return;
	struct touch *x = touch_get(c, p, id, of);
	if (!x)
		return;
	x->flags |= WEFT_TOUCH_WRITTEN | TOUCH_REPLACED | extra;
	x->flags &= ~TOUCH_BYTES;
	x->write_seq = c->seq;
	x->last_write_ns = c->now;
	e->writer = touch_index(c, x);
	if (of)
		of->src = e->writer;
}

void touch_delete(struct weft_classifier *c, struct proc *p, path_id id)
{
	struct path_ent *e = path_get(&c->paths, id);
	if (e->flags & PATH_IGNORED)
		return;
	struct touch *x = touch_get(c, p, id, NULL);
	if (x)
		x->flags |= WEFT_TOUCH_DELETED;
	e->writer = SRC_UNKNOWN;
	e->gen++;
}

void touch_rename(struct weft_classifier *c, struct proc *p, path_id from,
		  path_id to, uint32_t created)
{
	struct path_ent *f = path_get(&c->paths, from);
	struct path_ent *t = path_get(&c->paths, to);
	uint32_t v = f->writer;
	bool bytes = v >= c->touches.n || (c->touches.v[v].flags & TOUCH_BYTES);
	if (!(f->flags & PATH_IGNORED)) {
		/* The renamer takes the version it moves as an input: what
		 * is at the new name is that content. */
		struct touch *x = touch_get(c, p, from, NULL);
		if (x) {
			x->flags |= WEFT_TOUCH_RENAMED;
			set_src(x, v, c->seq);
		}
		f->writer = SRC_UNKNOWN;
		f->gen++;
	}
	if (t->flags & PATH_IGNORED)
		return;
	t->gen++;
	touch_replace(c, p, to, NULL, created);
	if (bytes && t->writer < c->touches.n)
		c->touches.v[t->writer].flags |= TOUCH_BYTES;
	/* Open files follow their path through the rename (repoint_files):
	 * they are the file now named to. */
	for (struct ofile *of = c->live_files; of; of = of->next)
		if (of->path == from)
			of->gen = t->gen;
}

void touch_note_close(struct weft_classifier *c, struct proc *p,
		      const struct ofile *of)
{
	if (!p || !of->tracked || (of->flags & O_ACCMODE) == O_RDONLY)
		return;
	struct path_ent *e = path_get(&c->paths, of->path);
	struct touch *x = lookup(&c->touches, p->idx, of->path);
	if (!x || !(x->flags & TOUCH_BYTES))
		return;
	/* Backends may report only a file's first write through an fd: its
	 * writes end here at the latest. */
	x->write_seq = c->seq;
	if (c->now > x->last_write_ns)
		x->last_write_ns = c->now;
	/* It wrote, then another process did, and it could have written
	 * again unseen since: who wrote last is not known. */
	if (e->writer != touch_index(c, x))
		e->flags |= PATH_INTERLEAVED;
}
