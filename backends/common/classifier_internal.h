/*
 * classifier_internal.h - the classifier's private state, shared by the
 * files that implement it:
 *   paths.c      path normalization and the interned path table (per-path
 *                state lives there, so every rule is one table update);
 *   fdtable.c    fd tables, open-file objects and cwd objects, all
 *                refcounted because fork, clone and dup share them;
 *   classifier.c tasks, processes and the event rules (feed);
 *   touches.c    what each process image did to each path (attribution);
 *   records.c    finish: turning the state into weft_report records.
 * Nothing here is part of weft/backends.h; backends only see the API there.
 */
#ifndef WEFT_CLASSIFIER_INTERNAL_H
#define WEFT_CLASSIFIER_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <weft/backends.h>

/* One past the highest fd number the classifier keeps a slot for. Linux's
 * default nr_open is 1 << 20; a table entry is 16 bytes, so this bounds one
 * fd table at 64 MiB. An fd beyond it is dropped and counted. */
#define CLS_MAX_FD (1 << 22)

/* Per-path state. The first five are what a weft_file_rec reports; the rest
 * steer the rules. */
enum {
	PATH_READ = 1u << 0,
	PATH_WRITTEN = 1u << 1,
	PATH_CREATED = 1u << 2,
	PATH_DELETED = 1u << 3,
	PATH_RENAMED = 1u << 4,  /* renamed_to is set */
	PATH_PRODUCED = 1u << 5, /* the run replaced the content: reads of it
				    are not inputs */
	PATH_IGNORED = 1u << 6,  /* /proc, /sys, /dev or an ignore prefix, or
				    below one */
	PATH_DIR = 1u << 7,      /* seen opened or used as a directory */
	PATH_HASCHILD = 1u << 8, /* some interned path lies below it, so it is
				    a directory */
	PATH_FIRST_STAT = 1u << 9,
	PATH_MOVED = 1u << 10,     /* renamed away and not produced again: no
				      content of the run's is here now */
	PATH_UPDATED = 1u << 11,   /* first modified by writing into what
				      was there (append, in place) */
	PATH_TRUNCATED = 1u << 12, /* truncated before any write: what was
				      there is not known to be kept */
	PATH_SYMLINK = 1u << 13,   /* a symlink the run made: the record is
				      the link, not its target */
	PATH_INTERLEAVED = 1u << 14, /* a process that had written it closed
					it after another had written: who
					wrote last is not known */
};
#define PATH_RECORD_MASK                                                       \
	(PATH_READ | PATH_WRITTEN | PATH_CREATED | PATH_DELETED | PATH_RENAMED)

/* Paths are referred to by index, because the entry array moves as it
 * grows while the strings (in the arena) never move. */
typedef uint32_t path_id;
#define PATH_NONE UINT32_MAX

/* A touch index, or where a version came from when no process of the run
 * made it (path_ent.writer, ofile.src, touch.src). */
#define TOUCH_NONE UINT32_MAX
#define SRC_BEFORE UINT32_MAX        /* as the run found it */
#define SRC_UNKNOWN (UINT32_MAX - 1) /* not the run's, not what it found */

struct path_ent {
	const char *s; /* normalized, absolute, NUL-terminated; in the arena */
	uint32_t len;
	uint32_t hash;
	uint32_t flags; /* PATH_* */
	path_id parent; /* PATH_NONE for "/" only */
	path_id renamed_to;
	uint64_t first_dev, first_ino;
	int64_t first_size, first_mtime_ns, first_ctime_ns;
	/* CLOCK_REALTIME of the first open and of the last write,
	 * publication, or close of a writable open file; 0 unknown. */
	int64_t first_open_ns, last_write_ns;
	uint32_t touches; /* the first touch of this path, or TOUCH_NONE */
	uint32_t writer;  /* the touch whose write made what is here now,
			     SRC_BEFORE or SRC_UNKNOWN */
	uint32_t gen;     /* counts the files (inodes) that had this name */
};

struct arena_block;

struct path_table {
	struct path_ent *ents;
	uint32_t n, cap;
	uint32_t *slots; /* open addressing: id + 1, 0 = empty */
	uint32_t nslots; /* a power of two, kept at most half full */
	struct arena_block *arena;
};

/* An open file description: what open() made, shared by dup and by fork
 * copies of an fd table. */
struct ofile {
	uint32_t refs; /* fd table slots pointing here */
	path_id path;  /* also kept for untracked files: they serve as dirfd */
	int32_t flags; /* open flags */
	bool tracked;  /* a regular file whose I/O can make records */
	uint32_t gen;  /* path's gen at the open: the same file while equal */
	uint32_t src;  /* the version at the open (as path_ent.writer) */
	uint32_t touch; /* the touch last used through it (a cache) */
	uint64_t open_seq;
	int64_t open_ns;
	struct ofile *prev, *next; /* live list (rename repoints paths), or
				      free list through next */
};

struct fdent {
	struct ofile *of;
	bool cloexec; /* per fd, not per open file */
};

struct fdtable {
	uint32_t refs; /* tasks using it (CLONE_FILES shares it) */
	uint32_t cap;
	uint32_t hi; /* no slot at or above hi is in use */
	struct fdent *ents;
};

/* The cwd object (Linux's fs_struct), shared under CLONE_FS. */
struct fsinfo {
	uint32_t refs;
	uint32_t len;
	char *cwd; /* NULL when unknown: relative paths cannot be resolved */
};

/* A process image: a pid from its fork or exec to its next exec or exit. */
struct proc {
	int32_t pid, ppid;
	uint32_t idx;    /* in procs[] */
	uint32_t parent; /* the image it came from, or TOUCH_NONE */
	bool by_exec;    /* parent is this pid's image before an exec */
	bool execd;      /* ended by an exec */
	bool seeded;     /* given by the backend (weft_classifier_add_process) */
	bool acted;      /* has touched a file */
	bool forked;     /* has started a process */
	char **argv;
	uint32_t argc;
	char *exe, *cwd;
	int32_t exit_code;
	bool exited;
	int64_t started_ns, ended_ns;
	struct task *tasks; /* live tasks of this process */
	/* Its environment (environ.c): enum weft_env_state; the block only
	 * when WEFT_ENV_LISTED (it differs from its parent's). */
	uint8_t env_state;
	char *env;
	size_t env_len;
};

struct task {
	int32_t tid;
	struct proc *proc;
	struct fdtable *fdt;
	struct fsinfo *fs;
	struct task *pnext, *pprev; /* in proc->tasks */
};

struct task_table {
	struct task **slots; /* linear probing, backward-shift deletion */
	uint32_t nslots, n;
};

/* What one process image did to one path. */
enum {
	/* WEFT_TOUCH_READ .. WEFT_TOUCH_UPDATED as in weft/schema.h, and: */
	TOUCH_BYTES = 1u << 16,    /* wrote bytes: its version is not empty
				      by truncation or creation alone */
	TOUCH_REPLACED = 1u << 17, /* replaced the content before writing:
				      its writes are no update */
	TOUCH_HAS_SRC = 1u << 18,  /* src is set */
};

struct touch {
	uint32_t proc;  /* index in procs[] */
	path_id path;
	uint32_t next;  /* the path's next touch, or TOUCH_NONE */
	uint32_t flags; /* WEFT_TOUCH_* and TOUCH_* */
	uint32_t src;   /* the version it read, updated or renamed: a touch
			   (its writer), SRC_BEFORE or SRC_UNKNOWN */
	uint64_t first_seq; /* when it first saw that version (open) */
	uint64_t write_seq; /* its last write, or close after writing */
	int64_t first_open_ns, last_write_ns;
};

struct touch_table {
	struct touch *v;
	uint32_t n, cap;
	uint32_t *slots; /* open addressing on (proc, path): index + 1 */
	uint32_t nslots; /* a power of two, kept at most half full */
};

struct weft_classifier {
	struct path_table paths;
	struct touch_table touches;
	uint64_t seq;           /* events fed: the order of everything */
	struct proc *cur;       /* the process of the event being fed */
	uint64_t touches_lost;  /* attribution not kept (out of memory) */
	struct task_table tasks;
	struct task *last; /* the last task looked up: events come in runs */
	struct ofile *live_files, *free_files;
	struct proc **procs; /* first-seen order */
	size_t nprocs, capprocs;
	/* Events lost, by reason; reported at finish. */
	uint64_t drop_nomem, drop_toolong, drop_unresolved, drop_bigfd,
		drop_invalid;
	uint64_t orphan_tasks;   /* tasks first seen without fork or seed */
	uint64_t argv_truncated; /* processes whose argv hit a limit */
	int64_t now; /* the time of the event being fed (0: unknown) */
	bool spent;
	char **env_values; /* names whose values are kept in clear */
	size_t nenv_values;
	weft_classifier_file_fn on_file; /* weft_classifier_on_file */
	void *on_file_arg;
};

/* ---- environ.c ---- */

/* A new image from a fork: the environment of the image it came from. */
void proc_env_inherit(const struct weft_classifier *c, struct proc *child);
/* An exec into p (whose parent is set): the event's environment. */
int proc_env_exec(struct weft_classifier *c, struct proc *p,
		  const weft_event *ev);
/* p's environment into rec (whose has_parent is set). */
int proc_env_record(const struct weft_classifier *c, const struct proc *p,
		    weft_process_rec *rec);

/* ---- paths.c ---- */

/* Room for element n of the table array *arr of *cap elements of sz bytes:
 * the array doubles (from first) when full. WEFT_OK or WEFT_ENOMEM. */
int table_grow(void **arr, uint32_t *cap, uint32_t n, uint32_t first,
	       size_t sz);

int path_table_init(struct path_table *t);
void path_table_free(struct path_table *t);
/* Normalize like weft_path_normalize, with known lengths; *len gets the
 * length of the result. */
int path_normalize_len(const char *base, size_t blen, const char *path,
		       size_t plen, char *out, size_t outsz, uint32_t *len);
/* Intern an absolute normalized path (and its ancestors). */
int path_intern(struct path_table *t, const char *s, uint32_t len, path_id *id);
/* Mark an interned path and everything below it ignored, or tracked. */
void path_set_ignored(struct path_table *t, path_id id, bool ignored);

static inline struct path_ent *path_get(const struct path_table *t, path_id id)
{
	return &t->ents[id];
}

/* ---- touches.c ---- */

void touch_table_free(struct touch_table *t);
/* Forget every touch (a cut starts a new window). */
void touch_table_clear(struct weft_classifier *c);
/* The touch of process p on path id, made when missing (of: the open
 * file it comes through, or NULL); NULL when out of memory (counted). */
struct touch *touch_get(struct weft_classifier *c, struct proc *p,
			path_id id, struct ofile *of);
const struct touch *touch_find(const struct weft_classifier *c, uint32_t proc,
			       path_id id);
static inline uint32_t touch_index(const struct weft_classifier *c,
				   const struct touch *t)
{
	return (uint32_t)(t - c->touches.v);
}
/* The rules, per process: read, write, replace (truncate, create, publish:
 * a new version with nothing of the old), delete, rename. */
void touch_read(struct weft_classifier *c, struct proc *p, struct ofile *of);
void touch_write(struct weft_classifier *c, struct proc *p, struct ofile *of);
void touch_replace(struct weft_classifier *c, struct proc *p, path_id id,
		   struct ofile *of, uint32_t extra);
void touch_delete(struct weft_classifier *c, struct proc *p, path_id id);
void touch_rename(struct weft_classifier *c, struct proc *p, path_id from,
		  path_id to, uint32_t created);
/* An open: the version it finds (of->src, of->gen). */
void touch_note_open(struct weft_classifier *c, struct ofile *of,
		     const weft_event *ev);
/* A reference to a writable open file dropped by process p (close, exit,
 * exec): its writes through it are over. */
void touch_note_close(struct weft_classifier *c, struct proc *p,
		      const struct ofile *of);

/* ---- fdtable.c ---- */

struct ofile *ofile_new(struct weft_classifier *c, path_id path, int32_t flags,
			bool tracked);
void ofile_free_all(struct weft_classifier *c);

struct fdtable *fdtable_new(void);
struct fdtable *fdtable_copy(const struct fdtable *src);
void fdtable_put(struct weft_classifier *c, struct fdtable *t);
/* Make slot fd exist; WEFT_ETOOBIG beyond CLS_MAX_FD. */
int fdtable_reserve(struct fdtable *t, int fd);
/* Point reserved slot fd at of, closing what it held. */
void fdtable_install(struct weft_classifier *c, struct fdtable *t, int fd,
		     struct ofile *of, bool cloexec);
void fdtable_close(struct weft_classifier *c, struct fdtable *t, int fd);
void fdtable_close_on_exec(struct weft_classifier *c, struct fdtable *t);

static inline struct ofile *fdtable_get(const struct fdtable *t, int fd)
{
	return (uint32_t)fd < t->hi ? t->ents[fd].of : NULL;
}

struct fsinfo *fsinfo_new(const char *cwd, size_t len);
struct fsinfo *fsinfo_copy(const struct fsinfo *src);
void fsinfo_put(struct fsinfo *fs);
/* Replace the cwd; NULL makes it unknown. */
int fsinfo_set(struct fsinfo *fs, const char *cwd, size_t len);

#endif /* WEFT_CLASSIFIER_INTERNAL_H */
