/*
 * classifier.c - the one fd-state machine every tracer backend feeds: tasks
 * and processes, and the rules that turn normalized events into per-path
 * state (see DESIGN.md, "The classifier").
 *
 * A task (thread, keyed by tid) points at its process, its fd table and its
 * cwd object; fork, clone, exec and exit reshape those exactly as the kernel
 * does, because a wrong fd table is a wrong record. The rules then only
 * touch the interned path entry (paths.c) an fd leads to.
 *
 * feed() sits on every backend's hot path: a READ or WRITE is a cached task
 * lookup, an array index and a bit test, with no allocation.
 */
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "classifier_internal.h"

#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif
#ifndef MAP_SHARED_VALIDATE
#define MAP_SHARED_VALIDATE 0x03
#endif
#ifndef MAP_TYPE
#define MAP_TYPE 0x0f
#endif

/* ---- Task table ---- */

static uint32_t task_slot(int32_t tid, uint32_t nslots)
{
	uint32_t h = (uint32_t)tid * 0x9e3779b1u;
	return (h ^ (h >> 16)) & (nslots - 1);
}

static struct task *task_lookup(const struct task_table *t, int32_t tid)
{
	if (!t->n)
		return NULL;
	for (uint32_t i = task_slot(tid, t->nslots);;
	     i = (i + 1) & (t->nslots - 1)) {
		struct task *e = t->slots[i];
		if (!e || e->tid == tid)
			return e;
	}
}

static struct task *task_find(struct weft_classifier *c, int32_t tid)
{
	if (c->last && c->last->tid == tid)
		return c->last;
	struct task *t = task_lookup(&c->tasks, tid);
	if (t)
		c->last = t;
	return t;
}

static void task_table_put(struct task_table *t, struct task *task)
{
	uint32_t i = task_slot(task->tid, t->nslots);
	while (t->slots[i])
		i = (i + 1) & (t->nslots - 1);
	t->slots[i] = task;
	t->n++;
}

static int task_table_reserve(struct task_table *t)
{
	if ((uint64_t)(t->n + 1) * 2 <= t->nslots)
		return WEFT_OK;
	uint32_t nslots = t->nslots ? t->nslots * 2 : 256;
	struct task **slots = calloc(nslots, sizeof(*slots));
	if (!slots)
		return WEFT_ENOMEM;
	struct task_table bigger = {.slots = slots, .nslots = nslots};
	for (uint32_t i = 0; i < t->nslots; i++)
		if (t->slots[i])
			task_table_put(&bigger, t->slots[i]);
	free(t->slots);
	*t = bigger;
	return WEFT_OK;
}

/* Backward-shift deletion keeps probe chains intact without tombstones,
 * which matters because tids come and go all run long. */
static void task_table_remove(struct task_table *t, int32_t tid)
{
	uint32_t mask = t->nslots - 1;
	uint32_t i = task_slot(tid, t->nslots);
	while (t->slots[i] && t->slots[i]->tid != tid)
		i = (i + 1) & mask;
	if (!t->slots[i])
		return;
	t->slots[i] = NULL;
	t->n--;
	for (uint32_t j = (i + 1) & mask; t->slots[j]; j = (j + 1) & mask) {
		uint32_t k = task_slot(t->slots[j]->tid, t->nslots);
		/* Move j into the hole unless its home k lies cyclically in
		 * (i, j]. */
		bool stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);
		if (!stays) {
			t->slots[i] = t->slots[j];
			t->slots[j] = NULL;
			i = j;
		}
	}
}

/* ---- Processes and tasks ---- */

static void proc_free(struct proc *p)
{
	for (uint32_t i = 0; i < p->argc; i++)
		free(p->argv[i]);
	free(p->argv);
	free(p->exe);
	free(p->cwd);
	free(p->env);
	free(p);
}

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

/* Replace what a process record says about its image. argv is cut at the
 * schema's limits so that every report we build can be encoded. */
static int proc_set_image(struct weft_classifier *c, struct proc *p,
			  const char *exe, const char *const *argv,
			  uint32_t argc, const char *cwd)
{
	uint32_t keep = 0;
	size_t bytes = 0;
	while (keep < argc && keep < WEFT_MAX_ARGC && argv && argv[keep]) {
		size_t n = strlen(argv[keep]);
		if (n > WEFT_MAX_ARGV_BYTES - bytes)
			break;
		bytes += n;
		keep++;
	}
	char **nargv = keep ? calloc(keep, sizeof(*nargv)) : NULL;
	char *nexe = dup_or_null(exe), *ncwd = dup_or_null(cwd);
	bool ok = (!keep || nargv) && (!exe || nexe) && (!cwd || ncwd);
	for (uint32_t i = 0; ok && i < keep; i++)
		ok = (nargv[i] = strdup(argv[i])) != NULL;
	if (!ok) {
		for (uint32_t i = 0; nargv && i < keep; i++)
			free(nargv[i]);
		free(nargv);
		free(nexe);
		free(ncwd);
		return WEFT_ENOMEM;
	}
	if (keep < argc)
		c->argv_truncated++;
	for (uint32_t i = 0; i < p->argc; i++)
		free(p->argv[i]);
	free(p->argv);
	free(p->exe);
	free(p->cwd);
	p->argv = nargv;
	p->argc = keep;
	p->exe = nexe;
	p->cwd = ncwd;
	return WEFT_OK;
}

/* A process image; parent is the image it came from (NULL: none known). */
static struct proc *proc_new(struct weft_classifier *c, int32_t pid,
			     int32_t ppid, const struct proc *parent)
{
	if (c->nprocs == c->capprocs) {
		size_t cap = c->capprocs ? c->capprocs * 2 : 64;
		struct proc **procs = realloc(c->procs, cap * sizeof(*procs));
		if (!procs)
			return NULL;
		c->procs = procs;
		c->capprocs = cap;
	}
	struct proc *p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->pid = pid;
	p->ppid = ppid;
	p->idx = (uint32_t)c->nprocs;
	p->parent = parent ? parent->idx : TOUCH_NONE;
	p->started_ns = c->now;
	c->procs[c->nprocs++] = p;
	proc_env_inherit(c, p);
	return p;
}

/* Drop a process record that never got a task (an allocation failed right
 * after proc_new); it is always the last one. */
static void proc_abandon(struct weft_classifier *c, struct proc *p)
{
	if (c->nprocs && c->procs[c->nprocs - 1] == p) {
		c->nprocs--;
		proc_free(p);
	}
}

/* Make a task; takes over one reference each to fdt and fs. */
static struct task *task_new(struct weft_classifier *c, int32_t tid,
			     struct proc *p, struct fdtable *fdt,
			     struct fsinfo *fs)
{
	struct task *t = NULL;
	if (task_table_reserve(&c->tasks) == WEFT_OK)
		t = calloc(1, sizeof(*t));
	if (!t) {
		fdtable_put(c, fdt);
		fsinfo_put(fs);
		return NULL;
	}
	t->tid = tid;
	t->proc = p;
	t->fdt = fdt;
	t->fs = fs;
	t->pnext = p->tasks;
	if (p->tasks)
		p->tasks->pprev = t;
	p->tasks = t;
	task_table_put(&c->tasks, t);
	return t;
}

static void task_destroy(struct weft_classifier *c, struct task *t)
{
	task_table_remove(&c->tasks, t->tid);
	if (c->last == t)
		c->last = NULL;
	if (t->pprev)
		t->pprev->pnext = t->pnext;
	else
		t->proc->tasks = t->pnext;
	if (t->pnext)
		t->pnext->pprev = t->pprev;
	fdtable_put(c, t->fdt);
	fsinfo_put(t->fs);
	free(t);
}

/* The task an event comes from. One never seen (a backend that missed its
 * fork, or attached without seeding) joins its thread group leader when
 * that is known, else becomes a process with no known cwd or fds, so that
 * nothing is guessed about it. */
static struct task *task_get(struct weft_classifier *c, const weft_event *ev)
{
	struct task *t = task_find(c, ev->pid);
	if (t)
		return t;
	int32_t tgid = ev->tgid > 0 ? ev->tgid : ev->pid;
	struct task *leader = tgid != ev->pid ? task_find(c, tgid) : NULL;
	c->orphan_tasks++;
	if (leader) {
		leader->fdt->refs++;
		leader->fs->refs++;
		return task_new(c, ev->pid, leader->proc, leader->fdt,
				leader->fs);
	}
	struct proc *p = proc_new(c, tgid, 0, NULL);
	if (!p)
		return NULL;
	struct fdtable *fdt = fdtable_new();
	struct fsinfo *fs = fsinfo_new(NULL, 0);
	if (!fdt || !fs) {
		if (fdt)
			fdtable_put(c, fdt);
		if (fs)
			fsinfo_put(fs);
		proc_abandon(c, p);
		return NULL;
	}
	t = task_new(c, ev->pid, p, fdt, fs);
	if (!t)
		proc_abandon(c, p);
	return t;
}

/* ---- Public: lifetime and seeding ---- */

static int intern_abs(struct weft_classifier *c, const char *abs, path_id *id)
{
	char buf[WEFT_MAX_PATH_BYTES + 1];
	uint32_t len;
	if (!abs || abs[0] != '/')
		return WEFT_EINVAL;
	int err = path_normalize_len(NULL, 0, abs, strlen(abs), buf,
				     sizeof(buf), &len);
	if (err)
		return err;
	return path_intern(&c->paths, buf, len, id);
}

weft_classifier *weft_classifier_new(void)
{
	weft_classifier *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	if (path_table_init(&c->paths) != WEFT_OK) {
		weft_classifier_free(c);
		return NULL;
	}
	/* Kernel interfaces, not artifacts; but /dev/shm is a tmpfs like
	 * /tmp, where clusters put scratch data and jobs pass files (POSIX
	 * shared memory objects are files there too, and their reads and
	 * writes are as true as any other's). */
	static const char *const pseudo[] = {"/proc", "/sys", "/dev"};
	path_id shm;
	for (size_t i = 0; i < sizeof(pseudo) / sizeof(pseudo[0]); i++)
		if (weft_classifier_ignore_prefix(c, pseudo[i]) != WEFT_OK) {
			weft_classifier_free(c);
			return NULL;
		}
	if (intern_abs(c, "/dev/shm", &shm) != WEFT_OK) {
		weft_classifier_free(c);
		return NULL;
	}
	path_set_ignored(&c->paths, shm, false);
	return c;
}

void weft_classifier_free(weft_classifier *c)
{
	if (!c)
		return;
	for (uint32_t i = 0; i < c->tasks.nslots; i++) {
		struct task *t = c->tasks.slots[i];
		if (t) {
			fdtable_put(c, t->fdt);
			fsinfo_put(t->fs);
			free(t);
		}
	}
	free(c->tasks.slots);
	for (size_t i = 0; i < c->nprocs; i++)
		proc_free(c->procs[i]);
	free(c->procs);
	for (size_t i = 0; i < c->nenv_values; i++)
		free(c->env_values[i]);
	free(c->env_values);
	ofile_free_all(c);
	path_table_free(&c->paths);
	touch_table_free(&c->touches);
	free(c);
}

int weft_classifier_ignore_prefix(weft_classifier *c, const char *abs_prefix)
{
	path_id id;
	int err = intern_abs(c, abs_prefix, &id);
	if (err)
		return err;
	path_set_ignored(&c->paths, id, true);
	return WEFT_OK;
}

int weft_classifier_add_process(weft_classifier *c, pid_t pid, pid_t ppid,
				const char *cwd, const char *exe,
				const char *const *argv, uint32_t argc)
{
	char buf[WEFT_MAX_PATH_BYTES + 1];
	uint32_t len = 0;
	if (pid <= 0 || (cwd && cwd[0] != '/'))
		return WEFT_EINVAL;
	if (cwd) {
		int err = path_normalize_len(NULL, 0, cwd, strlen(cwd), buf,
					     sizeof(buf), &len);
		if (err)
			return err;
	}
	/* A tid still known here is stale: the kernel does not reuse a live
	 * one, so we missed its exit. */
	struct task *old = task_find(c, pid);
	if (old)
		task_destroy(c, old);
	struct proc *p = proc_new(c, pid, ppid, NULL);
	if (!p)
		return WEFT_ENOMEM;
	p->seeded = true;
	int err = proc_set_image(c, p, exe, argv, argc, cwd ? buf : NULL);
	struct fdtable *fdt = err ? NULL : fdtable_new();
	struct fsinfo *fs = fdt ? fsinfo_new(cwd ? buf : NULL, len) : NULL;
	if (!fs) {
		if (fdt)
			fdtable_put(c, fdt);
		proc_abandon(c, p);
		return WEFT_ENOMEM;
	}
	if (!task_new(c, pid, p, fdt, fs)) {
		proc_abandon(c, p);
		return WEFT_ENOMEM;
	}
	return WEFT_OK;
}

int weft_classifier_add_fd(weft_classifier *c, pid_t pid, int fd,
			   const char *abs_path, int open_flags)
{
	struct task *t = task_find(c, pid);
	if (!t)
		return WEFT_ENOTFOUND;
	path_id id;
	int err = intern_abs(c, abs_path, &id);
	if (err)
		return err;
	err = fdtable_reserve(t->fdt, fd);
	if (err)
		return err;
	/* Seeded fds come from /proc/PID/fd or inheritance: regular files
	 * as far as the caller knows; /dev and the like are ignored by
	 * path anyway. */
	struct ofile *of = ofile_new(c, id, open_flags, true);
	if (!of)
		return WEFT_ENOMEM;
	fdtable_install(c, t->fdt, fd, of, (open_flags & O_CLOEXEC) != 0);
	return WEFT_OK;
}

/* ---- Rules ---- */

/* An event that could not be applied: count why, for finish's warning. */
static int drop(struct weft_classifier *c, int err)
{
	switch (err) {
	case WEFT_ENOMEM:
		c->drop_nomem++;
		return WEFT_ENOMEM;
	case WEFT_ETOOBIG:
		c->drop_toolong++;
		break;
	case WEFT_ENOTFOUND:
		c->drop_unresolved++;
		break;
	default:
		c->drop_invalid++;
		return err;
	}
	/* Only running out of memory is the backend's business (the header
	 * promises errors only then); the rest is counted and reported. */
	return WEFT_OK;
}

/* Resolve path against dirfd (AT_FDCWD: the task's cwd; absolute paths
 * ignore dirfd) and intern it. */
/* /proc/self/cwd/x, /proc/PID/fd/N and /proc/PID/root/x are magic links
 * the kernel follows to a real file: rewrite them to the path they reach,
 * from what the classifier knows of that process (its cwd, its fd table),
 * so that I/O through them is not lost among the /proc paths that are
 * never artifacts. Unknown processes or fds leave the path as it is.
 * buf holds a normalized path of *len bytes and has room for
 * WEFT_MAX_PATH_BYTES. */
static int resolve_proc_link(struct weft_classifier *c, struct task *t,
			     char *buf, uint32_t *len)
{
	const char *p = buf + 6, *end = buf + *len;
	struct task *who = NULL;
	if (strncmp(p, "self/", 5) == 0 || strcmp(p, "self") == 0) {
		who = t;
		p += 4;
	} else if (strncmp(p, "thread-self/", 12) == 0) {
		who = t;
		p += 11;
	} else {
		char *num_end;
		long pid = strtol(p, &num_end, 10);
		if (num_end == p || (*num_end != '/' && *num_end != '\0') ||
		    pid <= 0 || pid > INT32_MAX)
			return WEFT_OK;
		who = task_find(c, (int32_t)pid);
		p = num_end;
	}
	if (!who || *p != '/')
		return WEFT_OK;
	p++;
	const char *base = NULL, *rest;
	size_t blen = 0;
	if (strncmp(p, "cwd", 3) == 0 && (p[3] == '/' || p[3] == '\0')) {
		base = who->fs->cwd;
		blen = who->fs->len;
		rest = p + 3;
	} else if (strncmp(p, "root", 4) == 0 &&
		   (p[4] == '/' || p[4] == '\0')) {
		base = "/";
		blen = 1;
		rest = p + 4;
	} else if (strncmp(p, "fd/", 3) == 0) {
		char *num_end;
		long fd = strtol(p + 3, &num_end, 10);
		if (num_end == p + 3 || (*num_end != '/' && *num_end != '\0') ||
		    fd < 0 || fd > INT32_MAX)
			return WEFT_OK;
		struct ofile *of = fdtable_get(who->fdt, (int)fd);
		if (!of)
			return WEFT_OK;
		const struct path_ent *e = path_get(&c->paths, of->path);
		base = e->s;
		blen = e->len;
		rest = num_end;
	} else {
		return WEFT_OK;
	}
	char tail[WEFT_MAX_PATH_BYTES + 1];
	size_t tlen = (size_t)(end - rest);
	memcpy(tail, rest, tlen);
	tail[tlen] = '\0';
	/* "" after the link means the link's own target. */
	return path_normalize_len(base, blen, tlen ? tail + 1 : ".",
				  tlen ? tlen - 1 : 1, buf,
				  WEFT_MAX_PATH_BYTES + 1, len);
}

static int resolve(struct weft_classifier *c, struct task *t, int dirfd,
		   const char *path, path_id *id)
{
	char buf[WEFT_MAX_PATH_BYTES + 1];
	const char *base = NULL;
	size_t blen = 0;
	uint32_t len;
	if (!path)
		return WEFT_EINVAL;
	if (path[0] != '/') {
		if (dirfd == AT_FDCWD) {
			base = t->fs->cwd;
			blen = t->fs->len;
		} else {
			struct ofile *of = fdtable_get(t->fdt, dirfd);
			if (of) {
				const struct path_ent *e =
					path_get(&c->paths, of->path);
				base = e->s;
				blen = e->len;
			}
		}
		if (!base)
			return WEFT_ENOTFOUND;
	}
	int err = path_normalize_len(base, blen, path, strlen(path), buf,
				     sizeof(buf), &len);
	if (err)
		return err;
	if (len > 6 && memcmp(buf, "/proc/", 6) == 0) {
		err = resolve_proc_link(c, t, buf, &len);
		if (err)
			return err;
	}
	return path_intern(&c->paths, buf, len, id);
}

static void note_read(struct weft_classifier *c, struct task *t,
		      struct ofile *of)
{
	if (!of || !of->tracked)
		return;
	struct path_ent *e = path_get(&c->paths, of->path);
	if (e->flags & PATH_IGNORED)
		return;
	/* Reading what the run itself wrote is not an input of the run;
	 * of the process, it is when another process wrote it. */
	if (!(e->flags & PATH_PRODUCED))
		e->flags |= PATH_READ;
	touch_read(c, t->proc, of);
}

/* The first change to content that was there decides whether the run
 * updated it (its version at first open is an input) or replaced it. */
static void note_write(struct weft_classifier *c, struct task *t,
		       struct ofile *of)
{
	if (!of || !of->tracked)
		return;
	struct path_ent *e = path_get(&c->paths, of->path);
	if (e->flags & PATH_IGNORED)
		return;
	if (!(e->flags & (PATH_WRITTEN | PATH_PRODUCED | PATH_TRUNCATED)))
		e->flags |= PATH_UPDATED;
	e->flags |= PATH_WRITTEN;
	e->last_write_ns = c->now;
	touch_write(c, t->proc, of);
}

/* truncate, ftruncate: the length is not in the event, so what was there
 * is not known to be kept; a later write is then no update (a missing
 * update edge rather than a false one). */
static void note_truncate(struct weft_classifier *c, struct task *t,
			  path_id id, struct ofile *of)
{
	struct path_ent *e = path_get(&c->paths, id);
	if (e->flags & PATH_IGNORED)
		return;
	if (!(e->flags & PATH_WRITTEN))
		e->flags |= PATH_TRUNCATED;
	e->flags |= PATH_WRITTEN;
	e->last_write_ns = c->now;
	touch_replace(c, t->proc, id, of, 0);
}

static void mark(struct weft_classifier *c, path_id id, uint32_t set)
{
	struct path_ent *e = path_get(&c->paths, id);
	if (!(e->flags & PATH_IGNORED))
		e->flags |= set;
}

/* The run replaced the content at this path: its own output from now on,
 * and there again if it had been deleted. */
static void mark_produced(struct weft_classifier *c, path_id id, uint32_t extra)
{
	struct path_ent *e = path_get(&c->paths, id);
	if (e->flags & PATH_IGNORED)
		return;
	e->flags |= PATH_WRITTEN | PATH_PRODUCED | extra;
	e->flags &= ~(PATH_DELETED | PATH_MOVED);
	e->last_write_ns = c->now;
}

static int on_open(struct weft_classifier *c, const weft_event *ev)
{
	if (ev->ret < 0)
		return WEFT_OK;
	struct task *t = task_get(c, ev);
	if (!t)
		return drop(c, WEFT_ENOMEM);
	path_id id;
	int err = resolve(c, t, ev->fd, ev->path, &id);
	if (!err)
		err = fdtable_reserve(t->fdt, (int)ev->ret);
	if (err == WEFT_ETOOBIG && ev->ret >= CLS_MAX_FD) {
		c->drop_bigfd++;
		return WEFT_OK;
	}
	if (err)
		return drop(c, err);
	bool isdir = (ev->has_stat && S_ISDIR(ev->st_mode)) ||
		     (ev->flags & O_DIRECTORY);
	bool regular = !(ev->has_stat && !S_ISREG(ev->st_mode)) &&
		       !(ev->flags & (O_DIRECTORY | O_PATH));
	struct ofile *of = ofile_new(c, id, ev->flags, regular);
	if (!of)
		return drop(c, WEFT_ENOMEM);
	fdtable_install(c, t->fdt, (int)ev->ret, of,
			(ev->flags & O_CLOEXEC) != 0);
	if (isdir)
		mark(c, id, PATH_DIR);
	if (!regular)
		return WEFT_OK;

	int acc = ev->flags & O_ACCMODE;
	bool wr = acc == O_WRONLY || acc == O_RDWR;
	touch_note_open(c, of, ev);
	if (ev->flags & O_CREAT) {
		bool created = ev->created == WEFT_CREATED_YES ||
			       (ev->created == WEFT_CREATED_UNKNOWN &&
				(ev->flags & O_EXCL));
		if (created) {
			mark_produced(c, id, PATH_CREATED);
			touch_replace(c, t->proc, id, of, WEFT_TOUCH_CREATED);
		}
	}
	if ((ev->flags & O_TRUNC) && wr) {
		mark_produced(c, id, 0);
		touch_replace(c, t->proc, id, of, 0);
	}
	struct path_ent *e = path_get(&c->paths, id);
	if (!e->first_open_ns)
		e->first_open_ns = c->now;
	if (ev->has_stat && !(e->flags & PATH_FIRST_STAT)) {
		e->flags |= PATH_FIRST_STAT;
		e->first_dev = ev->st_dev;
		e->first_ino = ev->st_ino;
		e->first_size = ev->st_size;
		e->first_mtime_ns = ev->st_mtime_ns;
		e->first_ctime_ns = ev->st_ctime_ns;
		if (c->on_file && acc != O_WRONLY &&
		    !(e->flags & (PATH_IGNORED | PATH_PRODUCED)))
			c->on_file(c->on_file_arg, e->s, ev);
	}
	return WEFT_OK;
}

void weft_classifier_on_file(weft_classifier *c, weft_classifier_file_fn fn,
			     void *arg)
{
	c->on_file = fn;
	c->on_file_arg = arg;
}

static void on_dup(struct weft_classifier *c, const weft_event *ev)
{
	struct task *t = task_find(c, ev->pid);
	if (ev->ret < 0 || !t || ev->fd == ev->fd2)
		return;
	struct ofile *of = fdtable_get(t->fdt, ev->fd);
	if (!of) {
		/* An alias of something we do not track (a pipe): whatever
		 * fd2 held is closed all the same. */
		fdtable_close(c, t->fdt, ev->fd2);
		return;
	}
	if (fdtable_reserve(t->fdt, ev->fd2) != WEFT_OK) {
		c->drop_bigfd++;
		return;
	}
	fdtable_install(c, t->fdt, ev->fd2, of, (ev->flags & O_CLOEXEC) != 0);
}

/* Open files follow their path through renames. */
static void repoint_files(struct weft_classifier *c, path_id from, path_id to)
{
	for (struct ofile *of = c->live_files; of; of = of->next)
		if (of->path == from)
			of->path = to;
}

/* "created" names the path, not the content: the new name was created by
 * this rename only when nothing existed there before. Backends that know
 * say so in the hint; otherwise the name inherits the source's (a temp
 * file the run created, renamed to a fresh name, is a created output). */
static void rename_one(struct weft_classifier *c, struct task *t, path_id from,
		       path_id to, int8_t created_hint)
{
	struct path_ent *e = path_get(&c->paths, from);
	uint32_t created = created_hint == WEFT_CREATED_YES  ? PATH_CREATED
			   : created_hint == WEFT_CREATED_NO ? 0
							     : e->flags & PATH_CREATED;
	touch_rename(c, t->proc, from, to,
		     created ? WEFT_TOUCH_CREATED : 0);
	if (!(e->flags & PATH_IGNORED)) {
		/* The content lives on at to: not deleted, and no longer the
		 * run's output at from. */
		e->renamed_to = to;
		e->flags |= PATH_RENAMED | PATH_MOVED;
		e->flags &= ~PATH_PRODUCED;
	}
	mark_produced(c, to, created);
}

static bool has_prefix_dir(const struct path_ent *e, const struct path_ent *d)
{
	return e->len > d->len && memcmp(e->s, d->s, d->len) == 0 &&
	       (d->len == 1 || e->s[d->len] == '/');
}

/* to + (the part of e below from), interned. */
static int rebase(struct weft_classifier *c, path_id eid, path_id from,
		  path_id to, path_id *out)
{
	char buf[WEFT_MAX_PATH_BYTES + 1];
	const struct path_ent *e = path_get(&c->paths, eid);
	const struct path_ent *f = path_get(&c->paths, from);
	const struct path_ent *t = path_get(&c->paths, to);
	size_t tail = e->len - (f->len == 1 ? 0 : f->len);
	size_t tlen = t->len == 1 ? 0 : t->len;
	if (tlen + tail > WEFT_MAX_PATH_BYTES)
		return WEFT_ETOOBIG;
	memcpy(buf, t->s, tlen);
	memcpy(buf + tlen, e->s + e->len - tail, tail);
	return path_intern(&c->paths, buf, (uint32_t)(tlen + tail), out);
}

/* A directory moved: every known path below it moves too. O(paths), but
 * directory renames are rare next to file I/O. */
static int rename_tree(struct weft_classifier *c, struct task *t,
		       path_id from, path_id to)
{
	mark(c, to, PATH_DIR);
	uint32_t n = c->paths.n; /* paths rebase() adds are not below from */
	for (path_id i = 0; i < n; i++) {
		const struct path_ent *e = path_get(&c->paths, i);
		if (!(e->flags & PATH_RECORD_MASK) ||
		    (e->flags & (PATH_DELETED | PATH_MOVED)) ||
		    !has_prefix_dir(e, path_get(&c->paths, from)))
			continue;
		path_id ni;
		int err = rebase(c, i, from, to, &ni);
		if (err)
			return err;
		rename_one(c, t, i, ni, WEFT_CREATED_UNKNOWN);
	}
	for (struct ofile *of = c->live_files; of; of = of->next) {
		if (!has_prefix_dir(path_get(&c->paths, of->path),
				    path_get(&c->paths, from)))
			continue;
		path_id ni;
		int err = rebase(c, of->path, from, to, &ni);
		if (err)
			return err;
		of->path = ni;
	}
	return WEFT_OK;
}

static int on_rename(struct weft_classifier *c, const weft_event *ev)
{
	if (ev->ret < 0)
		return WEFT_OK;
	struct task *t = task_get(c, ev);
	if (!t)
		return drop(c, WEFT_ENOMEM);
	path_id a, b;
	int err = resolve(c, t, ev->fd, ev->path, &a);
	if (!err)
		err = resolve(c, t, ev->fd2, ev->path2, &b);
	if (err)
		return drop(c, err);
	if (a == b)
		return WEFT_OK;
	const uint32_t dirbits = PATH_DIR | PATH_HASCHILD;
	bool adir = path_get(&c->paths, a)->flags & dirbits;
	if (ev->flags & RENAME_EXCHANGE) {
		bool bdir = path_get(&c->paths, b)->flags & dirbits;
		/* Each name now holds what the other did: a new version of
		 * each, of unknown origin to the renamer's readers. */
		if (!adir) {
			mark_produced(c, a, 0);
			touch_replace(c, t->proc, a, NULL, 0);
		}
		if (!bdir) {
			mark_produced(c, b, 0);
			touch_replace(c, t->proc, b, NULL, 0);
		}
		/* Swap through a path no open file can hold. */
		repoint_files(c, a, PATH_NONE);
		repoint_files(c, b, a);
		repoint_files(c, PATH_NONE, b);
		return WEFT_OK;
	}
	if (adir) {
		err = rename_tree(c, t, a, b);
		return err ? drop(c, err) : WEFT_OK;
	}
	rename_one(c, t, a, b, ev->created);
	repoint_files(c, a, b);
	return WEFT_OK;
}

static int on_path_event(struct weft_classifier *c, const weft_event *ev)
{
	if (ev->ret < 0)
		return WEFT_OK;
	if (ev->kind == WEFT_EV_UNLINK && (ev->flags & AT_REMOVEDIR))
		return WEFT_OK;
	struct task *t = task_get(c, ev);
	if (!t)
		return drop(c, WEFT_ENOMEM);
	path_id id;
	int err;
	switch (ev->kind) {
	case WEFT_EV_LINK:
		/* Only the new name matters; a symlink's target (fd -1) is
		 * text, not a file. link and symlink never replace an
		 * existing name (EEXIST), so the name is always created. */
		err = resolve(c, t, ev->fd2, ev->path2, &id);
		if (err)
			return drop(c, err);
		mark_produced(c, id,
			      PATH_CREATED | (ev->fd == -1 ? PATH_SYMLINK : 0));
		touch_replace(c, t->proc, id, NULL, WEFT_TOUCH_CREATED);
		return WEFT_OK;
	case WEFT_EV_UNLINK:
		err = resolve(c, t, ev->fd, ev->path, &id);
		if (err)
			return drop(c, err);
		if (!(path_get(&c->paths, id)->flags & PATH_IGNORED)) {
			/* What appears here later is not the run's. */
			path_get(&c->paths, id)->flags |= PATH_DELETED;
			path_get(&c->paths, id)->flags &= ~PATH_PRODUCED;
		}
		touch_delete(c, t->proc, id);
		return WEFT_OK;
	case WEFT_EV_TRUNCATE:
		err = resolve(c, t, ev->fd, ev->path, &id);
		if (err)
			return drop(c, err);
		note_truncate(c, t, id, NULL);
		return WEFT_OK;
	case WEFT_EV_CHDIR:
		err = resolve(c, t, AT_FDCWD, ev->path, &id);
		if (err)
			return drop(c, err);
		mark(c, id, PATH_DIR);
		{
			const struct path_ent *e = path_get(&c->paths, id);
			err = fsinfo_set(t->fs, e->s, e->len);
		}
		return err ? drop(c, err) : WEFT_OK;
	}
	return WEFT_OK;
}

static int on_fchdir(struct weft_classifier *c, const weft_event *ev)
{
	if (ev->ret < 0)
		return WEFT_OK;
	struct task *t = task_get(c, ev);
	if (!t)
		return drop(c, WEFT_ENOMEM);
	struct ofile *of = fdtable_get(t->fdt, ev->fd);
	if (!of) {
		/* Somewhere we cannot name: later relative paths are
		 * dropped rather than resolved against the old cwd. */
		fsinfo_set(t->fs, NULL, 0);
		return drop(c, WEFT_ENOTFOUND);
	}
	const struct path_ent *e = path_get(&c->paths, of->path);
	int err = fsinfo_set(t->fs, e->s, e->len);
	return err ? drop(c, err) : WEFT_OK;
}

static int on_fork(struct weft_classifier *c, const weft_event *ev)
{
	if (ev->ret <= 0)
		return WEFT_OK;
	int32_t child = (int32_t)ev->ret;
	struct task *old = task_find(c, child);
	if (old && old->tid != ev->pid)
		task_destroy(c, old); /* stale: we missed its exit */
	struct task *parent = task_get(c, ev);
	if (!parent)
		return drop(c, WEFT_ENOMEM);
	struct fdtable *fdt;
	if (ev->flags & CLONE_FILES) {
		fdt = parent->fdt;
		fdt->refs++;
	} else if (!(fdt = fdtable_copy(parent->fdt))) {
		return drop(c, WEFT_ENOMEM);
	}
	struct fsinfo *fs;
	if (ev->flags & CLONE_FS) {
		fs = parent->fs;
		fs->refs++;
	} else if (!(fs = fsinfo_copy(parent->fs))) {
		fdtable_put(c, fdt);
		return drop(c, WEFT_ENOMEM);
	}
	struct proc *pp = parent->proc, *p = pp;
	if (!(ev->flags & CLONE_THREAD)) {
		pp->forked = true;
		/* A new process: argv and exe are the parent's until it
		 * execs. */
		p = proc_new(c, child,
			     (ev->flags & CLONE_PARENT) ? pp->ppid : pp->pid,
			     pp);
		if (!p ||
		    proc_set_image(c, p, pp->exe, (const char *const *)pp->argv,
				   pp->argc, parent->fs->cwd)) {
			if (p)
				proc_abandon(c, p);
			fdtable_put(c, fdt);
			fsinfo_put(fs);
			return drop(c, WEFT_ENOMEM);
		}
	}
	if (!task_new(c, child, p, fdt, fs)) {
		if (p != pp)
			proc_abandon(c, p);
		return drop(c, WEFT_ENOMEM);
	}
	return WEFT_OK;
}

/* A thread other than the leader exec'd after the leader's own thread had
 * ended: the kernel gives it the group's id, so re-key one of its tasks. */
static struct task *exec_by_other_thread(struct weft_classifier *c,
					 int32_t tgid)
{
	for (size_t i = c->nprocs; i-- > 0;) {
		struct proc *p = c->procs[i];
		if (p->pid != tgid || !p->tasks)
			continue;
		struct task *t = p->tasks;
		task_table_remove(&c->tasks, t->tid);
		t->tid = tgid;
		task_table_put(&c->tasks, t); /* a slot was just freed */
		return t;
	}
	return NULL;
}

static int on_exec(struct weft_classifier *c, const weft_event *ev)
{
	if (ev->ret < 0)
		return WEFT_OK;
	struct task *t = task_find(c, ev->pid);
	if (!t)
		t = exec_by_other_thread(c, ev->pid);
	if (!t)
		t = task_get(c, ev);
	if (!t)
		return drop(c, WEFT_ENOMEM);
	struct proc *p = t->proc;
	c->cur = p;
	/* exec kills every other thread of the group. */
	while (p->tasks != t || t->pnext) {
		struct task *other = p->tasks != t ? p->tasks : t->pnext;
		task_destroy(c, other);
	}
	if (t->fdt->refs > 1) {
		/* Still shared: with another process (CLONE_FILES without
		 * CLONE_THREAD). exec unshares it. */
		struct fdtable *own = fdtable_copy(t->fdt);
		if (!own)
			return drop(c, WEFT_ENOMEM);
		fdtable_put(c, t->fdt);
		t->fdt = own;
	}
	fdtable_close_on_exec(c, t->fdt);
	/* An image that touched no file and started no process before its
	 * exec did nothing but exec (the gap between fork and exec, or weft's
	 * own launcher becoming the workload): the new image replaces it
	 * rather than add a record that says nothing (5,000 processes
	 * started by a shell would otherwise cost 10,000 records). */
	if (!p->acted && !p->forked) {
		int err = proc_set_image(c, p, ev->path, ev->argv, ev->argc,
					 t->fs->cwd);
		if (!err)
			err = proc_env_exec(c, p, ev);
		p->seeded = false;
		return err ? drop(c, err) : WEFT_OK;
	}
	/* A new program image: a process of its own, that came from the
	 * old one (which ends here, by the exec). */
	struct proc *np = proc_new(c, p->pid, p->ppid, p);
	if (!np)
		return drop(c, WEFT_ENOMEM);
	np->by_exec = true;
	int err =
		proc_set_image(c, np, ev->path, ev->argv, ev->argc, t->fs->cwd);
	if (!err)
		err = proc_env_exec(c, np, ev);
	if (err) {
		proc_abandon(c, np);
		return drop(c, err);
	}
	p->execd = true;
	p->ended_ns = c->now;
	t->pprev = t->pnext = NULL;
	p->tasks = NULL;
	t->proc = np;
	np->tasks = t;
	c->cur = np;
	return WEFT_OK;
}

static void on_task_exit(struct weft_classifier *c, const weft_event *ev)
{
	struct task *t = task_find(c, ev->pid);
	if (!t)
		return;
	c->cur = t->proc;
	if (!(ev->flags & 1)) {
		task_destroy(c, t);
		return;
	}
	struct proc *p = t->proc;
	p->exit_code = (int32_t)ev->ret;
	p->exited = true;
	p->ended_ns = c->now;
	while (p->tasks)
		task_destroy(c, p->tasks);
}

int weft_classifier_feed(weft_classifier *c, const weft_event *ev)
{
	struct task *t;
	if (c->spent)
		return WEFT_EINVAL;
	c->now = (int64_t)ev->time_ns;
	c->seq++;
	c->cur = NULL;
	switch (ev->kind) {
	case WEFT_EV_READ:
		/* The hot path: no task creation, an unknown task has no
		 * fds we know. */
		if (ev->ret > 0 && (t = task_find(c, ev->pid)))
			note_read(c, t, fdtable_get(t->fdt, ev->fd));
		return WEFT_OK;
	case WEFT_EV_WRITE:
		if (ev->ret > 0 && (t = task_find(c, ev->pid)))
			note_write(c, t, fdtable_get(t->fdt, ev->fd));
		return WEFT_OK;
	case WEFT_EV_OPEN:
		return on_open(c, ev);
	case WEFT_EV_CLOSE:
		/* close releases the fd even when it reports EINTR or EIO. */
		if ((t = task_find(c, ev->pid))) {
			c->cur = t->proc;
			fdtable_close(c, t->fdt, ev->fd);
		}
		return WEFT_OK;
	case WEFT_EV_DUP:
		on_dup(c, ev);
		return WEFT_OK;
	case WEFT_EV_SETCLOEXEC:
		if ((t = task_find(c, ev->pid)) && ev->ret >= 0 &&
		    fdtable_get(t->fdt, ev->fd))
			t->fdt->ents[ev->fd].cloexec =
				(ev->flags & O_CLOEXEC) != 0;
		return WEFT_OK;
	case WEFT_EV_MMAP:
		if (ev->ret < 0 || ev->fd < 0 || (ev->flags & MAP_ANONYMOUS) ||
		    !(t = task_find(c, ev->pid)))
			return WEFT_OK;
		{
			struct ofile *of = fdtable_get(t->fdt, ev->fd);
			int type = ev->flags & MAP_TYPE;
			/* PROT_EXEC maps read the file as much as PROT_READ
			 * does (shared libraries). */
			if (ev->mode & (PROT_READ | PROT_EXEC))
				note_read(c, t, of);
			if ((type == MAP_SHARED ||
			     type == MAP_SHARED_VALIDATE) &&
			    (ev->mode & PROT_WRITE))
				note_write(c, t, of);
		}
		return WEFT_OK;
	case WEFT_EV_XFER:
		if (ev->ret > 0 && (t = task_find(c, ev->pid))) {
			note_read(c, t, fdtable_get(t->fdt, ev->fd));
			note_write(c, t, fdtable_get(t->fdt, ev->fd2));
		}
		return WEFT_OK;
	case WEFT_EV_FTRUNCATE:
		if (ev->ret >= 0 && (t = task_find(c, ev->pid))) {
			struct ofile *of = fdtable_get(t->fdt, ev->fd);
			if (of && of->tracked)
				note_truncate(c, t, of->path, of);
		}
		return WEFT_OK;
	case WEFT_EV_RENAME:
		return on_rename(c, ev);
	case WEFT_EV_LINK:
	case WEFT_EV_UNLINK:
	case WEFT_EV_TRUNCATE:
	case WEFT_EV_CHDIR:
		return on_path_event(c, ev);
	case WEFT_EV_FCHDIR:
		return on_fchdir(c, ev);
	case WEFT_EV_FORK:
		return on_fork(c, ev);
	case WEFT_EV_EXEC:
		return on_exec(c, ev);
	case WEFT_EV_EXIT:
		on_task_exit(c, ev);
		return WEFT_OK;
	}
	return drop(c, WEFT_EINVAL);
}

/* ---- Hot-path queries ---- */

static const struct ofile *known_file(const weft_classifier *c, pid_t pid,
				      int fd, const struct proc **p)
{
	const struct task *t = c->last && c->last->tid == pid
				       ? c->last
				       : task_lookup(&c->tasks, pid);
	*p = t ? t->proc : NULL;
	return t ? fdtable_get(t->fdt, fd) : NULL;
}

/* This process's touch of what of leads to, or NULL. */
static const struct touch *known_touch(const weft_classifier *c,
				       const struct proc *p,
				       const struct ofile *of)
{
	if (of->touch < c->touches.n) {
		const struct touch *x = &c->touches.v[of->touch];
		if (x->proc == p->idx && x->path == of->path)
			return x;
	}
	return touch_find(c, p->idx, of->path);
}

bool weft_classifier_has_task(const weft_classifier *c, pid_t pid)
{
	return task_lookup(&c->tasks, pid) != NULL;
}

bool weft_classifier_has_fd(const weft_classifier *c, pid_t pid, int fd)
{
	const struct task *t = task_lookup(&c->tasks, pid);
	return t && fd >= 0 && fdtable_get(t->fdt, fd) != NULL;
}

/* Known: nothing a further read (write) through the fd can change, for
 * the run and for the process making it. */
bool weft_classifier_fd_read_known(const weft_classifier *c, pid_t pid, int fd)
{
	const struct proc *p;
	const struct ofile *of = known_file(c, pid, fd, &p);
	if (!of || !of->tracked)
		return true;
	const struct path_ent *e = path_get(&c->paths, of->path);
	if (e->flags & PATH_IGNORED)
		return true;
	const struct touch *x = known_touch(c, p, of);
	return x && (e->flags & (PATH_READ | PATH_PRODUCED)) &&
	       ((x->flags & WEFT_TOUCH_READ) ||
		e->writer == touch_index(c, x));
}

bool weft_classifier_fd_write_known(const weft_classifier *c, pid_t pid, int fd)
{
	const struct proc *p;
	const struct ofile *of = known_file(c, pid, fd, &p);
	if (!of || !of->tracked)
		return true;
	const struct path_ent *e = path_get(&c->paths, of->path);
	if (e->flags & PATH_IGNORED)
		return true;
	const struct touch *x = known_touch(c, p, of);
	return x && (x->flags & TOUCH_BYTES) &&
	       e->writer == touch_index(c, x);
}
