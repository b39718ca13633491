/*
 * weft/schema.h - every byte format that crosses a process or machine
 * boundary, and the in-memory records those formats carry.
 *
 * The records here (trace events, process records, file records, run
 * reports) are the contract between the tracer backends, the classifier, the
 * store and the CLI. The msgpack codecs are the contract on the wire: one
 * schema version, hard limits with names, and strict decoders that reject
 * anything they do not fully understand with an error code and never crash.
 *
 * Memory: an encoder writes into a weft_buf the caller owns
 * (weft_buf_free). A decoder allocates what it returns; the matching
 * *_release frees it. Strings are NUL-terminated byte strings: paths may hold
 * any byte but NUL and need not be UTF-8.
 */
#ifndef WEFT_SCHEMA_H
#define WEFT_SCHEMA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- Version and hard limits (everything sized from outside is here) ---- */

/* The schema version every encoder writes. A decoder takes any version from
 * WEFT_SCHEMA_MIN_VERSION up: version 1 lacks the file records' locations,
 * versions read and stat identities (DESIGN.md "Store and DAG"), which are
 * optional keys, so its records decode with those fields absent; version
 * 2 lacks the attribution of file records to processes (process images,
 * their parents and the per-process touches of a file), optional too;
 * version 3 lacks what a process's result depends on besides files (its
 * executable's hash and its environment), optional too. */
#define WEFT_SCHEMA_VERSION 4
#define WEFT_SCHEMA_MIN_VERSION 1

/* A path, in bytes, without the terminating NUL (Linux PATH_MAX is 4096
 * including it, so 4095 is the longest path a syscall can name). */
#define WEFT_MAX_PATH_BYTES 4096
/* All argv strings of one process together, in bytes. */
#define WEFT_MAX_ARGV_BYTES (128 * 1024)
/* Arguments of one process. */
#define WEFT_MAX_ARGC 4096
/* Process records in one report. */
#define WEFT_MAX_PROCESSES 65536
/* File records in one report. */
#define WEFT_MAX_FILES (1024 * 1024)
/* Warnings in one report, and bytes of one warning. */
#define WEFT_MAX_WARNINGS 1024
#define WEFT_MAX_WARNING_BYTES 1024
/* Backend names ("ptrace", ...), run ids and similar short strings. */
#define WEFT_MAX_NAME_BYTES 64
/* Environment variables of one process, and bytes of one variable's name.
 * Values kept in clear (record.env_values) count against
 * WEFT_MAX_ARGV_BYTES together. */
#define WEFT_MAX_ENV_ENTRIES 4096
#define WEFT_MAX_ENV_NAME_BYTES 1024
/* One encoded message (event, report, fragment) on any transport. */
#define WEFT_MAX_MESSAGE_BYTES (64 * 1024 * 1024)
/* One encoded trace event. */
#define WEFT_MAX_EVENT_BYTES (WEFT_MAX_ARGV_BYTES + 3 * WEFT_MAX_PATH_BYTES + 512)

/* ---- Error codes (0 is success; all errors are negative) ---- */

enum weft_err {
	WEFT_OK = 0,
	WEFT_ENOMEM = -1,   /* allocation failed */
	WEFT_ETRUNC = -2,   /* input ended inside a value */
	WEFT_EVERSION = -3, /* schema version not in WEFT_SCHEMA_MIN_VERSION ..
			       WEFT_SCHEMA_VERSION */
	WEFT_ETYPE = -4,    /* a value has the wrong msgpack type */
	WEFT_ETOOBIG = -5,  /* a limit above was exceeded */
	WEFT_EINVAL = -6, /* a value is out of its range, or a key is missing */
	WEFT_ETRAILING = -7, /* bytes after the end of the message */
	WEFT_EIO = -8,       /* an operating-system call failed; see errno */
	WEFT_ENOTFOUND = -9, /* the thing asked for does not exist */
	WEFT_EDB = -10,      /* the SQLite store reported an error */
	WEFT_EUNSUPPORTED = -11, /* not available on this machine or build */
	WEFT_ESIG = -12,      /* a signature or MAC does not verify */
	WEFT_EBUSY = -13,     /* another process kept a lock past the timeout */
};

/* A short English description of a weft_err code ("input truncated"). */
const char *weft_strerror(int err);

/* ---- A growable byte buffer, the encoders' output ---- */

typedef struct weft_buf {
	uint8_t *data;
	size_t len;
	size_t cap;
} weft_buf;

void weft_buf_init(weft_buf *b);
int weft_buf_append(weft_buf *b, const void *data, size_t len);
void weft_buf_free(weft_buf *b);

/* ---- Trace events: what a backend feeds the classifier ----
 *
 * A backend normalizes every syscall it sees into one weft_event, after the
 * syscall returned (ret is the kernel's return value: a new fd, a byte count,
 * 0, or -errno). Failed syscalls may be fed; the classifier ignores them.
 * pid is the thread id that made the call, tgid its thread group. Which
 * fields matter depends on the kind; the comment on each kind says.
 * Strings are borrowed for the duration of the feed call.
 */
enum weft_event_kind {
	WEFT_EV_OPEN = 1,   /* path relative to dirfd (fd; AT_FDCWD = -100),
	                       flags (O_*), mode, ret = new fd; created: see
	                       below; st_*: optional stat of the opened file */
	WEFT_EV_CLOSE,      /* fd */
	WEFT_EV_READ,       /* fd, ret = bytes (read, pread, readv, preadv) */
	WEFT_EV_WRITE,      /* fd, ret = bytes (write, pwrite, writev, pwritev) */
	WEFT_EV_DUP,        /* fd = old fd, fd2 = new fd (= ret), flags:
	                       O_CLOEXEC when the new fd is close-on-exec
	                       (dup3 with O_CLOEXEC, F_DUPFD_CLOEXEC) */
	WEFT_EV_SETCLOEXEC, /* fd, flags: O_CLOEXEC set, 0 cleared (F_SETFD) */
	WEFT_EV_MMAP,       /* fd, prot = PROT_*, flags = MAP_* (ret = address) */
	WEFT_EV_XFER,       /* sendfile, copy_file_range, splice: fd = in fd,
	                       fd2 = out fd, ret = bytes moved */
	WEFT_EV_RENAME,     /* fd/path = old dirfd/path, fd2/path2 = new;
	                       flags = renameat2 flags (RENAME_EXCHANGE ...);
	                       created: whether the new name existed before
	                       (weft_created_hint) */
	WEFT_EV_LINK,       /* fd/path = old dirfd/path, fd2/path2 = new;
	                       symlink: fd = -1, path = target text, not a file */
	WEFT_EV_UNLINK,     /* fd/path = dirfd/path, flags = AT_REMOVEDIR */
	WEFT_EV_TRUNCATE,   /* fd/path = dirfd/path (truncate: AT_FDCWD) */
	WEFT_EV_FTRUNCATE,  /* fd */
	WEFT_EV_CHDIR,      /* path (chdir) */
	WEFT_EV_FCHDIR,     /* fd */
	WEFT_EV_FORK,       /* pid = parent thread, ret = child's id,
	                       flags = clone flags (CLONE_THREAD, CLONE_FILES,
	                       CLONE_FS, CLONE_VFORK); fork and vfork without
	                       sharing pass 0 (or CLONE_VFORK) */
	WEFT_EV_EXEC,       /* pid = tgid after exec (a non-leader thread that
	                       execs takes the leader's id), path = exe (absolute),
	                       argv/argc */
	WEFT_EV_EXIT,       /* a thread or process ended: ret = exit code, or
	                       128 + signal when killed; flags = 1 when the whole
	                       thread group ended (process exit) */
	WEFT_EV_KIND_MAX
};

/* Values of weft_event.created for WEFT_EV_OPEN. */
enum weft_created_hint {
	WEFT_CREATED_UNKNOWN = -1, /* backend could not tell */
	WEFT_CREATED_NO = 0,       /* the file existed before the open */
	WEFT_CREATED_YES = 1,      /* this open created it */
};

/* What a backend knows of a process's environment at an exec (the
 * environ block the kernel gave the new image). */
enum weft_event_env {
	WEFT_EV_ENV_NONE = 0,    /* not looked at (replays, older backends) */
	WEFT_EV_ENV_BLOCK = 1,   /* env/env_len hold the block */
	WEFT_EV_ENV_UNKNOWN = 2, /* looked, could not vouch for it (the
				    process was gone or exec'd again) */
};

typedef struct weft_event {
	uint16_t kind;      /* enum weft_event_kind */
	int32_t pid;        /* thread id making the call */
	int32_t tgid;       /* its thread group (process) id */
	int64_t ret;        /* syscall return value */
	int32_t fd;         /* first fd or dirfd, as the kind says */
	int32_t fd2;        /* second fd or dirfd */
	int32_t flags;      /* O_*, MAP_*, clone or rename flags */
	int32_t mode;       /* open mode, or PROT_* for mmap */
	int8_t created;     /* enum weft_created_hint (opens, renames) */
	bool has_stat;      /* st_* below are valid (opens only) */
	uint32_t st_mode;   /* S_IFREG, S_IFDIR, ... and permission bits */
	uint64_t st_dev, st_ino;
	int64_t st_size, st_mtime_ns;
	int64_t st_ctime_ns; /* 0 when the backend could not read it */
	uint64_t time_ns;    /* CLOCK_REALTIME when seen; 0 if unknown */
	const char *path;    /* NUL-terminated; NULL when the kind has none */
	const char *path2;
	const char *const *argv; /* exec only; argc entries */
	uint32_t argc;
	/* Exec only, not encoded (the raw environment never leaves the
	 * tracing process; the classifier keeps names and value hashes):
	 * "NAME=VALUE" strings, each NUL-terminated, env_len bytes. */
	uint8_t env_state; /* enum weft_event_env */
	const char *env;
	size_t env_len;
} weft_event;

/* Encode one event as a msgpack map appended to out. */
int weft_event_encode(const weft_event *ev, weft_buf *out);
/* Decode exactly one event occupying all of buf[0..len). On success the
 * strings in *ev are allocated; free them with weft_event_release. On error
 * *ev is left zeroed (nothing to release). */
int weft_event_decode(const uint8_t *buf, size_t len, weft_event *ev);
void weft_event_release(weft_event *ev);

/* ---- Process and file records, the run report ---- */

/* One environment variable of a process (schema 4): its name and, by
 * default, only the BLAKE2b-256 of its value (weft_env_value_hash); the
 * value itself only for names the user listed (record.env_values). */
typedef struct weft_env_entry {
	char *name;
	char *value; /* in clear, or NULL: then hash is set */
	uint8_t hash[32];
} weft_env_entry;

/* What a process record says of its environment (schema 4). */
enum weft_env_state {
	WEFT_ENV_NONE = 0,    /* not recorded (records before schema 4) */
	WEFT_ENV_LISTED = 1,  /* env/nenv are its variables, by name */
	WEFT_ENV_PARENT = 2,  /* the same as the image it came from (parent):
				 a fork, or an exec that kept it */
	WEFT_ENV_UNKNOWN = 3, /* the tracer could not read it; env_missing
				 says why */
};

/* The hash of an environment value: BLAKE2b-256 of a domain tag and the
 * value, so an env hash is never mistaken for a file's content hash. */
void weft_env_value_hash(const char *value, size_t len, uint8_t out[32]);

typedef struct weft_process_rec {
	int32_t pid;
	int32_t ppid;        /* 0 for the run's root process */
	char **argv;         /* argc strings, from the last exec */
	uint32_t argc;
	char *exe;           /* absolute path of the last exec'd image, or NULL */
	char *cwd;           /* working directory at start, absolute */
	int32_t exit_code;   /* 0..255, 128+signal when killed */
	bool exited;         /* false: still running when tracing ended */
	/* Schema 3. A process is one program image: a pid from its fork or
	 * exec to its next exec or its exit. */
	bool has_index;
	uint32_t index;      /* its position among the run's processes, the
				number file records' touches name */
	bool has_parent;
	uint32_t parent;     /* index of the image it came from: the one
				that forked it, or (by_exec) its own pid's
				image before the exec */
	bool by_exec;
	bool execd;          /* this image ended by an exec, not an exit */
	int64_t started_ns, ended_ns; /* CLOCK_REALTIME; 0 unknown */
	/* Schema 4: what its result depends on besides files. */
	bool has_exe_hash;
	uint8_t exe_hash[32]; /* BLAKE2b-256 of exe, hashed after the run */
	uint8_t env_state;    /* enum weft_env_state */
	weft_env_entry *env;  /* WEFT_ENV_LISTED: sorted by name, unique */
	uint32_t nenv;
	char *env_missing; /* WEFT_ENV_UNKNOWN: why, or NULL */
} weft_process_rec;

/* What one process of the run did to one file (schema 3). */
enum weft_touch_flag {
	WEFT_TOUCH_READ = 1u << 0,    /* read content it did not write */
	WEFT_TOUCH_WRITTEN = 1u << 1, /* wrote, truncated or published it */
	WEFT_TOUCH_CREATED = 1u << 2,
	WEFT_TOUCH_DELETED = 1u << 3,
	WEFT_TOUCH_RENAMED = 1u << 4, /* renamed it away (to the record's
					 renamed_to, or a later name) */
	WEFT_TOUCH_UPDATED = 1u << 5, /* wrote into the version it found
					 (append, in place): that version is
					 an input */
	WEFT_TOUCH_FINAL = 1u << 6,   /* its write made the record's final
					 content (the record's hash) */
	WEFT_TOUCH_SRC_RUN = 1u << 7, /* the version it read, updated or
					 renamed is the one process src of
					 this run wrote; without this or
					 SRC_UNKNOWN it is the version the
					 run found (the record's read
					 version) */
	WEFT_TOUCH_SRC_UNKNOWN = 1u << 8, /* a version the run did not
					     write and did not first see: the
					     file changed under the run */
	WEFT_TOUCH_WEAK = 1u << 9,    /* not sure of that version: its
					 writer wrote again after this
					 process opened the file, or
					 several processes wrote it in
					 turn */
};
#define WEFT_TOUCH_ALL ((1u << 10) - 1)

typedef struct weft_file_touch {
	uint32_t proc;  /* index of the process (weft_process_rec.index) */
	uint32_t flags; /* enum weft_touch_flag */
	uint32_t src;   /* with WEFT_TOUCH_SRC_RUN: the writer's index */
	int64_t first_open_ns, last_write_ns; /* this process's; 0 unknown */
} weft_file_touch;

typedef struct weft_file_rec {
	char *path;       /* absolute, normalized; symlinks resolved, the
			     last component too (the file it reached) */
	char *used_path;  /* the name the run used when it differs from
			     path (through a symlink), else NULL */
	bool read;        /* the run read content it did not itself write */
	bool written;     /* the run wrote or published it */
	bool created;     /* the run created it */
	bool deleted;     /* the run removed it (and it is gone) */
	bool updated;     /* the run wrote into content that existed at its
			     first open without replacing it first (append,
			     in-place update): that version is an input */
	char *renamed_to; /* the run renamed it to this path, or NULL */
	bool has_size;
	int64_t size;        /* bytes at the end of the run */
	bool has_hash;
	uint8_t hash[32];   /* BLAKE2b-256 of the content at the end: the
			       version the run wrote */
	char *hash_missing; /* why there is no hash ("gone before hashing"),
			       or NULL */
	/* Identity and state at the first open: the version a read is of. */
	bool has_first_stat;
	uint64_t first_dev, first_ino;
	int64_t first_size, first_mtime_ns;
	int64_t first_ctime_ns; /* 0: unknown (schema 1, or not read) */
	/* The version read (at the first open): its hash when known (the file
	 * unchanged at the end, or found by its identity in the hash cache);
	 * else read_hash_missing says why. */
	bool has_read_hash;
	uint8_t read_hash[32];
	char *read_hash_missing;
	/* Identity of the content at the end (the version written). */
	bool has_final_stat;
	uint64_t final_dev, final_ino;
	int64_t final_mtime_ns, final_ctime_ns;
	/* CLOCK_REALTIME of the run's first open of the file and of its last
	 * write or publication; 0 when unknown. */
	int64_t first_open_ns, last_write_ns;
	/* Where the file lives, as every node of a job names it: the
	 * filesystem ("local <boot id> <major>:<minor>" or "<fstype>
	 * <source>" for a shared one) and the path below its root. NULL when
	 * unknown (schema 1). */
	char *loc_fs;
	char *loc_path;
	/* Schema 3: which of the run's processes did what to it, one touch
	 * per process, in process order. None for records older than
	 * schema 3 or cut from a long-running process (Ray tasks). */
	weft_file_touch *touches;
	uint32_t ntouches;
	/* Never encoded: the file as the classifier found it when it made
	 * the report after the run (an lstat of path, no symlink then),
	 * which the hashing takes instead of a stat of its own, for that is
	 * the same moment's state: after the run ended. */
	bool has_end_stat;
	uint32_t end_mode;
	uint64_t end_dev, end_ino;
	int64_t end_size, end_mtime_ns, end_ctime_ns;
} weft_file_rec;

typedef struct weft_report {
	char run_id[WEFT_MAX_NAME_BYTES];  /* UUID text */
	char backend[WEFT_MAX_NAME_BYTES]; /* "ptrace", "preload", "ebpf" */
	char node[WEFT_MAX_NAME_BYTES];    /* hostname of the machine traced */
	int32_t exit_code;
	int64_t started_ns, ended_ns;      /* CLOCK_REALTIME */
	weft_process_rec *processes;
	size_t nprocesses;
	weft_file_rec *files;
	size_t nfiles;
	char **warnings;
	size_t nwarnings;
	uint64_t dropped_events;
	/* Not encoded: what a store knows of a job's task it loaded (parts
	 * stored of the parts it was cut into; fewer is an incomplete
	 * record). 0, 0 for a run outside any job. */
	uint32_t parts_stored, parts_expected;
} weft_report;

void weft_report_init(weft_report *r);
void weft_report_release(weft_report *r);
/* Append a copy of a formatted warning (truncated to
 * WEFT_MAX_WARNING_BYTES; beyond WEFT_MAX_WARNINGS warnings one final
 * "further warnings dropped" stands for the rest). */
int weft_report_warn(weft_report *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Append a zeroed record and return it, or NULL when out of memory or
 * the named limit is reached. */
weft_process_rec *weft_report_add_process(weft_report *r);
weft_file_rec *weft_report_add_file(weft_report *r);

int weft_report_encode(const weft_report *r, weft_buf *out);
/* Decode exactly one report occupying all of buf[0..len) into *r (which
 * the decoder initializes). On error *r is left empty. */
int weft_report_decode(const uint8_t *buf, size_t len, weft_report *r);

/* Standalone record codecs (used inside reports and, later, fragments). */
int weft_process_rec_encode(const weft_process_rec *p, weft_buf *out);
int weft_process_rec_decode(const uint8_t *buf, size_t len,
			    weft_process_rec *p);
void weft_process_rec_release(weft_process_rec *p);
int weft_file_rec_encode(const weft_file_rec *f, weft_buf *out);
int weft_file_rec_decode(const uint8_t *buf, size_t len, weft_file_rec *f);
void weft_file_rec_release(weft_file_rec *f);
/* True when p is an absolute, normalized path: starts with '/', and no
 * component is empty, "." or ".." (no "//", no trailing '/', except "/"
 * itself). Every path a file record carries must be one; a decoder
 * refuses a record with another (WEFT_EINVAL). */
bool weft_path_ok(const char *p);

/* ---- Hash text ---- */

/* "blake2b-256:" + 64 lowercase hex digits + NUL. */
#define WEFT_HASH_TEXT_BYTES (12 + 64 + 1)
void weft_hash_to_text(const uint8_t hash[32], char out[WEFT_HASH_TEXT_BYTES]);
/* Parse the text form; WEFT_EINVAL when it is not one. */
int weft_hash_from_text(const char *text, uint8_t hash[32]);

/* ---- Distribution ----
 *
 * Fragments, the signed envelope, coordinator requests and replies, and
 * the crypto both ends need are in this library's second public header,
 * weft/wire.h. */

#endif /* WEFT_SCHEMA_H */
