/*
 * records.c - weft_classifier_finish: the classifier's state as report
 * records.
 *
 * Paths were kept lexical during the run (resolving symlinks on the hot
 * path would cost syscalls per event). Here, once, the directory part of
 * each path is resolved through symlinks where it exists on disk now, so
 * two spellings of one file become one record. A file name that is a
 * symlink now is resolved too (the record is of the file it reaches, the
 * name used kept beside it), unless the run made that symlink itself: then
 * the link is what the run wrote.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "classifier_internal.h"

struct pending {
	char *path; /* owned */
	size_t len;
	char *used; /* owned: the name used, when path is a link's target */
	char *renamed_to; /* owned, or NULL */
	path_id src;      /* for the first stat */
	uint32_t flags;
	bool have_st; /* st: an lstat of path, which was no symlink */
	struct stat st;
};

/* Per directory id: its resolved spelling (malloc'd), or the marker for
 * "not on disk, keep it lexical". Directories repeat across files, so each
 * is resolved once. */
struct dir_cache {
	char **dirs;
};

static const char lexical_marker[1];

static const char *dir_resolved(struct dir_cache *dc,
				const struct path_table *t, path_id dir)
{
	if (!dc->dirs[dir]) {
		char *real = realpath(path_get(t, dir)->s, NULL);
		dc->dirs[dir] = real ? real : (char *)lexical_marker;
	}
	return dc->dirs[dir] == lexical_marker ? NULL : dc->dirs[dir];
}

/* The final spelling of path id: malloc'd, or NULL when out of memory. */
static char *final_path(struct dir_cache *dc, const struct path_table *t,
			path_id id, size_t *len)
{
	const struct path_ent *e = path_get(t, id);
	const char *dir =
		e->parent == PATH_NONE ? NULL : dir_resolved(dc, t, e->parent);
	const char *name = e->s;
	size_t dlen = 0, nlen = e->len;
	if (dir) {
		const struct path_ent *p = path_get(t, e->parent);
		name = e->s + (p->len == 1 ? 1 : p->len + 1);
		nlen = e->len - (size_t)(name - e->s);
		dlen = strlen(dir);
		if (dlen == 1) /* "/" */
			dlen = 0;
		if (dlen + 1 + nlen > WEFT_MAX_PATH_BYTES) {
			dir = NULL; /* resolved too long: keep lexical */
			name = e->s;
			nlen = e->len;
			dlen = 0;
		}
	}
	char *out = malloc(dlen + 1 + nlen + 1);
	if (!out)
		return NULL;
	if (dir) {
		memcpy(out, dir, dlen);
		out[dlen] = '/';
		memcpy(out + dlen + 1, name, nlen);
		*len = dlen + 1 + nlen;
	} else {
		memcpy(out, name, nlen);
		*len = nlen;
	}
	out[*len] = '\0';
	return out;
}

/* When path names a symlink now, replace it by the file the link reaches
 * and keep the name in *used. A dangling link stays as it is. */
static int resolve_last(struct pending *p)
{
	struct stat st;
	if (lstat(p->path, &st) != 0)
		return WEFT_OK;
	if (!S_ISLNK(st.st_mode)) {
		/* What the hashing would stat again (weft_file_rec). */
		p->st = st;
		p->have_st = true;
		return WEFT_OK;
	}
	char *real = realpath(p->path, NULL);
	if (!real)
		return errno == ENOMEM ? WEFT_ENOMEM : WEFT_OK;
	if (strlen(real) > WEFT_MAX_PATH_BYTES) {
		free(real);
		return WEFT_OK;
	}
	p->used = p->path;
	p->path = real;
	p->len = strlen(real);
	return WEFT_OK;
}

/* resolve_last over many paths: one lstat each, about 2.5 us on this
 * machine's tmpfs, 20 ms for a run of 8,000 files, so on a second CPU
 * (idle by now: the run ended) half of them. */
#define RESOLVE_PARALLEL_MIN 512

struct resolve_part {
	struct pending *pend;
	size_t n, first, step;
	int err;
};

static void *resolve_part(void *arg)
{
	struct resolve_part *r = arg;
	for (size_t i = r->first; i < r->n && !r->err; i += r->step)
		if (!(r->pend[i].flags & PATH_SYMLINK))
			r->err = resolve_last(&r->pend[i]);
	return NULL;
}

/* resolve_last for every pending path but the run's own symlinks. */
static int resolve_all(struct pending *pend, size_t n)
{
	struct resolve_part a = {pend, n, 0, 1, WEFT_OK}, b = a;
	pthread_t t;
	bool two =
		n >= RESOLVE_PARALLEL_MIN && sysconf(_SC_NPROCESSORS_ONLN) > 1;
	if (two) {
		a.step = b.step = 2;
		b.first = 1;
		/* No signal of the tracer's (a forwarded SIGTERM, a
		 * window's timer) goes to the helper instead. */
		sigset_t all, old;
		sigfillset(&all);
		pthread_sigmask(SIG_SETMASK, &all, &old);
		two = pthread_create(&t, NULL, resolve_part, &b) == 0;
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		if (!two)
			a.step = 1; /* all here */
	}
	resolve_part(&a);
	if (two)
		pthread_join(t, NULL);
	return a.err ? a.err : b.err;
}

static int64_t ts_ns(struct timespec t)
{
	return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static int pending_cmp(const void *a, const void *b)
{
	const struct pending *x = a, *y = b;
	size_t n = x->len < y->len ? x->len : y->len;
	int r = memcmp(x->path, y->path, n);
	if (r)
		return r;
	return (x->len > y->len) - (x->len < y->len);
}

/* Processes go first into an empty report: their index there is the one
 * the classifier gave them, which touches name. */
static int add_processes(struct weft_classifier *c, weft_report *out)
{
	size_t lost = 0;
	if (out->nprocesses)
		return WEFT_EINVAL;
	for (size_t i = 0; i < c->nprocs; i++) {
		struct proc *p = c->procs[i];
		weft_process_rec *rec = weft_report_add_process(out);
		if (!rec) {
			if (out->nprocesses < WEFT_MAX_PROCESSES)
				return WEFT_ENOMEM;
			lost++;
			continue;
		}
		/* The classifier is spent: hand the strings over. */
		rec->pid = p->pid;
		rec->ppid = p->ppid;
		rec->argv = p->argv;
		rec->argc = p->argc;
		rec->exe = p->exe;
		rec->cwd = p->cwd;
		rec->exit_code = p->exit_code;
		rec->exited = p->exited;
		rec->has_index = true;
		rec->index = (uint32_t)i;
		rec->has_parent = p->parent != TOUCH_NONE;
		rec->parent = p->parent;
		rec->by_exec = p->by_exec;
		rec->execd = p->execd;
		rec->started_ns = p->started_ns > 0 ? p->started_ns : 0;
		rec->ended_ns = p->ended_ns > 0 ? p->ended_ns : 0;
		int err = proc_env_record(c, p, rec);
		if (err)
			return err;
		p->argv = NULL;
		p->argc = 0;
		p->exe = p->cwd = NULL;
	}
	if (lost)
		weft_report_warn(out,
				 "%zu process records beyond the limit of %d "
				 "were left out",
				 lost, WEFT_MAX_PROCESSES);
	return WEFT_OK;
}

static int touch_by_proc(const void *a, const void *b)
{
	const struct touch *x = *(const struct touch *const *)a;
	const struct touch *y = *(const struct touch *const *)b;
	if (x->proc != y->proc)
		return (x->proc > y->proc) - (x->proc < y->proc);
	return (x->first_seq > y->first_seq) - (x->first_seq < y->first_seq);
}

/* The touches of the path ids pend[0..n) (spellings of one file) as the
 * record's, one per process in process order: who did what, and which
 * version each saw. nprocs: processes the report kept. */
static int add_touches(const struct weft_classifier *c,
		       const struct pending *pend, size_t n, size_t nprocs,
		       weft_file_rec *rec)
{
	const struct touch_table *tt = &c->touches;
	const struct path_table *t = &c->paths;
	size_t count = 0;
	uint32_t pflags = 0;
	const struct touch *last = NULL; /* the writer of what is there */
	for (size_t k = 0; k < n; k++) {
		const struct path_ent *e = path_get(t, pend[k].src);
		pflags |= e->flags;
		for (uint32_t x = e->touches; x != TOUCH_NONE;
		     x = tt->v[x].next)
			count++;
		if (e->writer < tt->n &&
		    (!last || tt->v[e->writer].write_seq > last->write_seq))
			last = &tt->v[e->writer];
	}
	if (!count)
		return WEFT_OK;
	const struct touch **all = malloc(count * sizeof(*all));
	weft_file_touch *out = calloc(count, sizeof(*out));
	if (!all || !out) {
		free(all);
		free(out);
		return WEFT_ENOMEM;
	}
	size_t m = 0;
	for (size_t k = 0; k < n; k++)
		for (uint32_t x = path_get(t, pend[k].src)->touches;
		     x != TOUCH_NONE; x = tt->v[x].next)
			all[m++] = &tt->v[x];
	qsort(all, m, sizeof(*all), touch_by_proc);
	bool gone = pflags & (PATH_DELETED | PATH_MOVED);
	uint32_t nout = 0;
	for (size_t i = 0; i < m;) {
		/* One process's touches of the spellings: the first one it
		 * made says which version it saw. */
		const struct touch *first = all[i];
		uint32_t flags = 0;
		uint64_t write_seq = 0;
		int64_t open_ns = 0, write_ns = 0;
		bool is_last = false;
		size_t j = i;
		for (; j < m && all[j]->proc == first->proc; j++) {
			const struct touch *x = all[j];
			flags |= x->flags;
			is_last |= x == last;
			if (x->write_seq > write_seq)
				write_seq = x->write_seq;
			if (x->first_open_ns &&
			    (!open_ns || x->first_open_ns < open_ns))
				open_ns = x->first_open_ns;
			if (x->last_write_ns > write_ns)
				write_ns = x->last_write_ns;
		}
		const struct touch *srct = first;
		for (size_t k = i; k < j; k++)
			if (all[k]->flags & TOUCH_HAS_SRC) {
				srct = all[k];
				break;
			}
		i = j;
		uint32_t f = flags & (WEFT_TOUCH_READ | WEFT_TOUCH_WRITTEN |
				      WEFT_TOUCH_CREATED | WEFT_TOUCH_DELETED |
				      WEFT_TOUCH_RENAMED | WEFT_TOUCH_UPDATED);
		if (!f || first->proc >= nprocs)
			continue;
		weft_file_touch *o = &out[nout++];
		o->proc = first->proc;
		o->first_open_ns = open_ns > 0 ? open_ns : 0;
		o->last_write_ns = write_ns > 0 ? write_ns : 0;
		if (is_last && !gone)
			f |= WEFT_TOUCH_FINAL;
		if (srct->flags & TOUCH_HAS_SRC) {
			uint32_t s = srct->src;
			if (s < tt->n && tt->v[s].proc < nprocs) {
				f |= WEFT_TOUCH_SRC_RUN;
				o->src = tt->v[s].proc;
				/* Its writer wrote again after this process
				 * first saw the file. */
				if (tt->v[s].write_seq > srct->first_seq)
					f |= WEFT_TOUCH_WEAK;
			} else if (s != SRC_BEFORE) {
				f |= WEFT_TOUCH_SRC_UNKNOWN;
			} else if ((f & WEFT_TOUCH_UPDATED) &&
				   !(f & (WEFT_TOUCH_READ |
					  WEFT_TOUCH_RENAMED)) &&
				   !(rec->has_first_stat &&
				     rec->first_size > 0)) {
				/* An update of content the run found empty
				 * (or never saw): a plain write. */
				f &= ~WEFT_TOUCH_UPDATED;
			}
		}
		if (pflags & PATH_INTERLEAVED)
			f |= WEFT_TOUCH_WEAK;
		o->flags = f;
	}
	free(all);
	if (!nout) {
		free(out);
		return WEFT_OK;
	}
	rec->touches = out;
	rec->ntouches = nout;
	return WEFT_OK;
}

/* Collect, spell, sort and merge the file records; with_touches: and
 * which process did what (not for a cut, whose report has no processes). */
static int add_files(struct weft_classifier *c, weft_report *out,
		     bool with_touches)
{
	const struct path_table *t = &c->paths;
	struct dir_cache dc = {calloc(t->n, sizeof(char *))};
	size_t n = 0, lost = 0;
	for (path_id i = 0; i < t->n; i++) {
		uint32_t f = path_get(t, i)->flags;
		n += (f & PATH_RECORD_MASK) && !(f & PATH_IGNORED);
	}
	struct pending *pend = calloc(n ? n : 1, sizeof(*pend));
	int err = dc.dirs && pend ? WEFT_OK : WEFT_ENOMEM;
	size_t np = 0;
	for (path_id i = 0; !err && i < t->n; i++) {
		const struct path_ent *e = path_get(t, i);
		if (!(e->flags & PATH_RECORD_MASK) || (e->flags & PATH_IGNORED))
			continue;
		struct pending *p = &pend[np++];
		p->src = i;
		p->flags = e->flags;
		p->path = final_path(&dc, t, i, &p->len);
		if (!p->path) {
			err = WEFT_ENOMEM;
			break;
		}
		if (e->renamed_to != PATH_NONE) {
			size_t rlen;
			p->renamed_to =
				final_path(&dc, t, e->renamed_to, &rlen);
			if (!p->renamed_to)
				err = WEFT_ENOMEM;
		}
	}
	if (!err)
		err = resolve_all(pend, np);
	if (!err)
		qsort(pend, np, sizeof(*pend), pending_cmp);
	for (size_t i = 0; !err && i < np;) {
		/* Spellings that resolved to the same path are one file. */
		size_t j = i + 1;
		struct pending *p = &pend[i];
		path_id stat_src =
			p->flags & PATH_FIRST_STAT ? p->src : PATH_NONE;
		int64_t first_open = path_get(t, p->src)->first_open_ns;
		int64_t last_write = path_get(t, p->src)->last_write_ns;
		bool used_direct = !p->used;
		/* Reads under the spelling that created the file. */
		bool read_by_creator = (p->flags & PATH_CREATED) &&
				       (p->flags & PATH_READ);
		for (; j < np && pending_cmp(p, &pend[j]) == 0; j++) {
			if (pend[j].flags & PATH_CREATED)
				read_by_creator |= pend[j].flags & PATH_READ;
			const struct path_ent *o = path_get(t, pend[j].src);
			p->flags |= pend[j].flags;
			if (!p->renamed_to) {
				p->renamed_to = pend[j].renamed_to;
				pend[j].renamed_to = NULL;
			}
			if (stat_src == PATH_NONE &&
			    (pend[j].flags & PATH_FIRST_STAT))
				stat_src = pend[j].src;
			if (o->first_open_ns &&
			    (!first_open || o->first_open_ns < first_open))
				first_open = o->first_open_ns;
			if (o->last_write_ns > last_write)
				last_write = o->last_write_ns;
			used_direct |= !pend[j].used;
			if (!p->have_st && pend[j].have_st) {
				p->st = pend[j].st;
				p->have_st = true;
			}
			if (!p->used) {
				p->used = pend[j].used;
				pend[j].used = NULL;
			}
		}
		weft_file_rec *rec = weft_report_add_file(out);
		if (!rec) {
			if (out->nfiles < WEFT_MAX_FILES)
				err = WEFT_ENOMEM;
			lost++;
			i = j;
			continue;
		}
		rec->path = p->path;
		p->path = NULL;
		rec->renamed_to = p->renamed_to;
		p->renamed_to = NULL;
		if (!used_direct) {
			rec->used_path = p->used;
			p->used = NULL;
		}
		rec->first_open_ns = first_open;
		rec->last_write_ns = last_write;
		rec->read = p->flags & PATH_READ;
		/* Read through another name (a symlink) of a file the run
		 * created: its own content, no input. */
		if (j > i + 1 && (p->flags & PATH_CREATED))
			rec->read = read_by_creator;
		rec->written = p->flags & PATH_WRITTEN;
		rec->created = p->flags & PATH_CREATED;
		rec->deleted = p->flags & PATH_DELETED;
		if (p->have_st) {
			rec->has_end_stat = true;
			rec->end_mode = p->st.st_mode;
			rec->end_dev = (uint64_t)p->st.st_dev;
			rec->end_ino = (uint64_t)p->st.st_ino;
			rec->end_size = p->st.st_size;
			rec->end_mtime_ns = ts_ns(p->st.st_mtim);
			rec->end_ctime_ns = ts_ns(p->st.st_ctim);
		}
		if (stat_src != PATH_NONE) {
			const struct path_ent *s = path_get(t, stat_src);
			rec->has_first_stat = true;
			rec->first_dev = s->first_dev;
			rec->first_ino = s->first_ino;
			rec->first_size = s->first_size;
			rec->first_mtime_ns = s->first_mtime_ns;
			rec->first_ctime_ns = s->first_ctime_ns;
		}
		/* An update of content that was there: not of a file the run
		 * created, nor of an empty one (an empty version proves
		 * nothing and is what a creation looks like to a backend
		 * that cannot tell). */
		rec->updated = (p->flags & PATH_UPDATED) &&
			       !(p->flags & PATH_CREATED) &&
			       rec->has_first_stat && rec->first_size > 0;
		if (with_touches)
			err = add_touches(c, p, j - i, out->nprocesses, rec);
		i = j;
	}
	if (lost && !err)
		weft_report_warn(out,
				 "%zu file records beyond the limit of %d were "
				 "left out",
				 lost, WEFT_MAX_FILES);
	for (size_t i = 0; pend && i < np; i++) {
		free(pend[i].path);
		free(pend[i].used);
		free(pend[i].renamed_to);
	}
	free(pend);
	for (path_id i = 0; dc.dirs && i < t->n; i++)
		if (dc.dirs[i] != lexical_marker)
			free(dc.dirs[i]);
	free(dc.dirs);
	return err;
}

int weft_classifier_finish(weft_classifier *c, weft_report *out)
{
	if (c->spent)
		return WEFT_EINVAL;
	c->spent = true;
	int err = add_processes(c, out);
	if (!err)
		err = add_files(c, out, true);
	uint64_t dropped = c->drop_nomem + c->drop_toolong +
			   c->drop_unresolved + c->drop_bigfd + c->drop_invalid;
	if (dropped) {
		out->dropped_events += dropped;
		weft_report_warn(
			out,
			"classifier dropped %llu events: %llu with a path "
			"longer than %d bytes, %llu relative to an unknown "
			"directory fd or cwd, %llu on an fd above %d, %llu out "
			"of memory, %llu malformed",
			(unsigned long long)dropped,
			(unsigned long long)c->drop_toolong,
			WEFT_MAX_PATH_BYTES,
			(unsigned long long)c->drop_unresolved,
			(unsigned long long)c->drop_bigfd, CLS_MAX_FD - 1,
			(unsigned long long)c->drop_nomem,
			(unsigned long long)c->drop_invalid);
	}
	if (c->orphan_tasks)
		weft_report_warn(out,
				 "%llu threads or processes appeared without a "
				 "fork or seed event; their inherited fds and "
				 "cwd were unknown",
				 (unsigned long long)c->orphan_tasks);
	if (c->touches_lost)
		weft_report_warn(out,
				 "out of memory: %llu uses of files by a "
				 "process were not attributed to it",
				 (unsigned long long)c->touches_lost);
	if (c->argv_truncated)
		weft_report_warn(out,
				 "%llu processes had argv cut to the limits "
				 "(%d arguments, %d bytes)",
				 (unsigned long long)c->argv_truncated,
				 WEFT_MAX_ARGC, WEFT_MAX_ARGV_BYTES);
	return err;
}

int weft_classifier_cut(weft_classifier *c, weft_report *out)
{
	if (c->spent)
		return WEFT_EINVAL;
	int err = add_files(c, out, false);
	/* A new window: what each path did is forgotten, what it is (a
	 * directory, ignored) is kept, and so are fd tables and processes. */
	touch_table_clear(c);
	const uint32_t keep = PATH_IGNORED | PATH_DIR | PATH_HASCHILD;
	for (path_id i = 0; i < c->paths.n; i++) {
		struct path_ent *e = path_get(&c->paths, i);
		e->flags &= keep;
		e->renamed_to = PATH_NONE;
	}
	return err;
}
