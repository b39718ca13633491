/*
 * hash.c - content hashes of the files a run touched: BLAKE2b-256 through
 * libsodium, with a cache in the store so that unchanged inputs are not read
 * again on the next run.
 *
 * The cache is keyed by (device, inode) and trusted only while size, mtime
 * and ctime are what they were when the content was read. ctime cannot be
 * set from user space, so a rewrite that restores size and mtime still
 * misses. Two races are closed by not caching at all: a file that changed
 * while we read it, and a file whose ctime is still the current tick of the
 * kernel's clock (a write later in that tick would leave every stat field
 * as it is; git calls such entries "racily clean").
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "store_internal.h"

static pthread_once_t sodium_once = PTHREAD_ONCE_INIT;
static int sodium_status;

static void sodium_setup(void)
{
	sodium_status = sodium_init();
}

static int64_t ts_ns(struct timespec ts)
{
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int store_cache_get(weft_store *s, const struct stat *st, uint8_t hash[32])
{
	if (!s->cache_get &&
	    store_prepare(s,
			  "SELECT hash FROM hash_cache WHERE dev = ?1 AND "
			  "ino = ?2 AND size = ?3 AND mtime_ns = ?4 AND "
			  "ctime_ns = ?5",
			  &s->cache_get))
		return WEFT_EDB;
	sqlite3_stmt *q = s->cache_get;
	sqlite3_bind_int64(q, 1, (sqlite3_int64)st->st_dev);
	sqlite3_bind_int64(q, 2, (sqlite3_int64)st->st_ino);
	sqlite3_bind_int64(q, 3, st->st_size);
	sqlite3_bind_int64(q, 4, ts_ns(st->st_mtim));
	sqlite3_bind_int64(q, 5, ts_ns(st->st_ctim));
	int rc = sqlite3_step(q), err;
	if (rc == SQLITE_ROW && sqlite3_column_bytes(q, 0) == 32) {
		memcpy(hash, sqlite3_column_blob(q, 0), 32);
		err = WEFT_OK;
	} else if (rc == SQLITE_ROW || rc == SQLITE_DONE) {
		err = WEFT_ENOTFOUND;
	} else {
		err = WEFT_EDB;
	}
	sqlite3_reset(q);
	return err;
}

int store_cache_put(weft_store *s, const struct weft_hash_cache_entry *e,
		    size_t n)
{
	if (!s->cache_put &&
	    store_prepare(s,
			  "INSERT OR REPLACE INTO hash_cache (dev, ino, size, "
			  "mtime_ns, ctime_ns, hash) "
			  "VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
			  &s->cache_put))
		return WEFT_EDB;
	if (store_exec(s, "BEGIN IMMEDIATE"))
		return WEFT_EDB;
	sqlite3_stmt *q = s->cache_put;
	for (size_t i = 0; i < n; i++) {
		sqlite3_bind_int64(q, 1, (sqlite3_int64)e[i].dev);
		sqlite3_bind_int64(q, 2, (sqlite3_int64)e[i].ino);
		sqlite3_bind_int64(q, 3, e[i].size);
		sqlite3_bind_int64(q, 4, e[i].mtime_ns);
		sqlite3_bind_int64(q, 5, e[i].ctime_ns);
		sqlite3_bind_blob(q, 6, e[i].hash, 32, SQLITE_STATIC);
		int rc = sqlite3_step(q);
		sqlite3_reset(q);
		if (rc != SQLITE_DONE) {
			store_save_errmsg(s);
			sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
			return WEFT_EDB;
		}
	}
	if (store_exec(s, "COMMIT")) {
		/* Left open, the transaction would fail every later BEGIN
		 * of a long-lived handle (wrap --ray's recorder). */
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
		return WEFT_EDB;
	}
	return WEFT_OK;
}

static bool same_state(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino &&
	       a->st_size == b->st_size &&
	       ts_ns(a->st_mtim) == ts_ns(b->st_mtim) &&
	       ts_ns(a->st_ctim) == ts_ns(b->st_ctim);
}

int store_hash_fd(int fd, const struct stat *before, uint8_t hash[32],
		  bool *stable, const atomic_bool *abort, uint8_t *with)
{
	*stable = false;
	uint8_t *buf = with ? with : malloc(WEFT_HASH_BUFFER_BYTES);
	if (!buf)
		return WEFT_ENOMEM;
	(void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	crypto_generichash_state state;
	crypto_generichash_init(&state, NULL, 0, 32);
	int64_t total = 0;
	int err = WEFT_OK;
	for (;;) {
		ssize_t n = read(fd, buf, WEFT_HASH_BUFFER_BYTES);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			err = WEFT_EIO;
			break;
		}
		if (n == 0)
			break;
		if (abort && atomic_load(abort)) {
			err = WEFT_EIO; /* abandoned: no hash */
			break;
		}
		crypto_generichash_update(&state, buf, (size_t)n);
		total += n;
	}
	int saved = errno;
	if (!with)
		free(buf);
	errno = saved;
	if (err)
		return err;
	crypto_generichash_final(&state, hash, 32);

	struct stat after;
	struct timespec now;
	if (fstat(fd, &after) == 0 && same_state(before, &after) &&
	    total == before->st_size &&
	    clock_gettime(CLOCK_REALTIME_COARSE, &now) == 0 &&
	    ts_ns(after.st_ctim) < ts_ns(now))
		*stable = true;
	return WEFT_OK;
}

/* weft_hash_file, with the cache write either done at once (pending NULL)
 * or left in *pending, with *queued set, for the caller to write in one
 * transaction with others; known, when not NULL, is path's state (its
 * mode and identity) as a stat of it found a moment ago, taken instead
 * of one more. */
static int hash_file(weft_store *cache, const char *path, uint8_t hash[32],
		     const struct stat *known, struct stat *st_out,
		     bool *cache_hit, struct weft_hash_cache_entry *pending,
		     bool *queued)
{
	if (cache_hit)
		*cache_hit = false;
	if (queued)
		*queued = false;
	pthread_once(&sodium_once, sodium_setup);
	if (sodium_status < 0)
		return WEFT_EUNSUPPORTED;

	/* Follow symlinks: a file record names what the program opened.
	 * Opening a device or FIFO can block or have side effects, so refuse
	 * those before opening; the fstat below has the final word. */
	struct stat st;
	if (known)
		st = *known;
	else if (stat(path, &st) != 0)
		return WEFT_EIO;
	if (st_out)
		*st_out = st;
	if (!S_ISREG(st.st_mode))
		return WEFT_EINVAL;
	bool stable = true, cached = false;
	int fd = -1, err = WEFT_OK;
	/* Known to the run's prehash thread by this identity: nothing to
	 * open. It read the file itself (stable then: the cache learns it
	 * below as from a read), or found the identity in the cache when
	 * the run opened the file (the open itself showed the caller may
	 * read it). Any other cache entry is only given once the file
	 * opens for this caller, as below. */
	if (cache &&
	    store_prehash_get(cache->prehash, &st, hash, &cached) == WEFT_OK) {
		if (cache_hit)
			*cache_hit = true;
		if (cached)
			return WEFT_OK;
		goto learn;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return WEFT_EIO;
	if (fstat(fd, &st) != 0) {
		err = WEFT_EIO;
		goto out;
	}
	if (st_out)
		*st_out = st;
	if (!S_ISREG(st.st_mode)) {
		err = WEFT_EINVAL;
		goto out;
	}
	if (cache && store_cache_get(cache, &st, hash) == WEFT_OK) {
		if (cache_hit)
			*cache_hit = true;
		goto out;
	}
	/* O_NONBLOCK kept a FIFO from blocking the open; regular files
	 * ignore it, but clear it anyway for mandatory-lock oddities. */
	(void)fcntl(fd, F_SETFL, 0);
	err = store_hash_fd(fd, &st, hash, &stable, NULL, NULL);
	if (err)
		goto out;
	if (cache)
		cache->hash_reads++;
learn:
	if (!cache || !stable)
		goto out;
	struct weft_hash_cache_entry e = {
		.dev = st.st_dev,
		.ino = st.st_ino,
		.size = st.st_size,
		.mtime_ns = ts_ns(st.st_mtim),
		.ctime_ns = ts_ns(st.st_ctim),
	};
	memcpy(e.hash, hash, 32);
	if (pending) {
		*pending = e;
		*queued = true;
	} else {
		/* A cache, not a record: a failed write costs a re-read. */
		(void)store_cache_put(cache, &e, 1);
	}
out:
	if (fd >= 0) {
		int saved = errno;
		close(fd);
		errno = saved;
	}
	return err;
}

void store_identity_stat(struct stat *st, uint64_t dev, uint64_t ino,
			 int64_t size, int64_t mtime_ns, int64_t ctime_ns)
{
	memset(st, 0, sizeof(*st));
	st->st_dev = (dev_t)dev;
	st->st_ino = (ino_t)ino;
	st->st_size = size;
	st->st_mtim.tv_sec = mtime_ns / 1000000000;
	st->st_mtim.tv_nsec = mtime_ns % 1000000000;
	st->st_ctim.tv_sec = ctime_ns / 1000000000;
	st->st_ctim.tv_nsec = ctime_ns % 1000000000;
}

void weft_store_use_prehash(weft_store *cache, const weft_prehash *p)
{
	cache->prehash = p;
}

int weft_hash_file(weft_store *cache, const char *path, uint8_t hash[32],
		   struct stat *st, bool *cache_hit)
{
	return hash_file(cache, path, hash, NULL, st, cache_hit, NULL, NULL);
}

/* Why a hash is missing, into *why (replacing it), *has cleared. */
static int set_reason(char **why, bool *has, const char *fmt, va_list ap)
{
	char text[WEFT_MAX_PATH_BYTES + 64];
	vsnprintf(text, sizeof(text), fmt, ap);
	char *copy = strdup(text);
	if (!copy)
		return WEFT_ENOMEM;
	free(*why);
	*why = copy;
	*has = false;
	return WEFT_OK;
}

__attribute__((format(printf, 2, 3))) static int
set_missing(weft_file_rec *f, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int err = set_reason(&f->hash_missing, &f->has_hash, fmt, ap);
	va_end(ap);
	return err;
}

/* Why a file could not be hashed, from hash_file's result and errno. */
static int explain_failure(weft_file_rec *f, int err, int errnum)
{
	if (err == WEFT_EINVAL)
		return set_missing(f, "not a regular file");
	if (err != WEFT_EIO)
		return set_missing(f, "cannot hash: %s", weft_strerror(err));
	switch (errnum) {
	case ENOENT:
	case ENOTDIR:
		return set_missing(f, "gone before hashing");
	case EACCES:
	case EPERM:
		return set_missing(f,
				   "permission denied: not readable by uid %u",
				   (unsigned)geteuid());
	default:
		return set_missing(f, "cannot read: %s", strerror(errnum));
	}
}

/* Warn once about an input that changed, also when called again over the
 * same report. Past the warning limit is not an error. */
static int warn_changed(weft_report *r, const char *path)
{
	static const char prefix[] = "input changed during the run: ";
	size_t n = sizeof(prefix) - 1;
	for (size_t i = 0; i < r->nwarnings; i++)
		if (!strncmp(r->warnings[i], prefix, n) &&
		    !strcmp(r->warnings[i] + n, path))
			return WEFT_OK;
	int err = weft_report_warn(r, "%s%s", prefix, path);
	return err == WEFT_ENOMEM ? err : WEFT_OK;
}

/* Kept for weft_store_write_deferred; false when there is no room. */
static bool defer_pending(weft_store *cache,
			  const struct weft_hash_cache_entry *pending, size_t n)
{
	if (cache->deferred_cap - cache->ndeferred < n) {
		size_t cap = cache->deferred_cap ? cache->deferred_cap : 1024;
		while (cap - cache->ndeferred < n)
			cap *= 2;
		struct weft_hash_cache_entry *d =
			realloc(cache->deferred, cap * sizeof(*d));
		if (!d)
			return false;
		cache->deferred = d;
		cache->deferred_cap = cap;
	}
	memcpy(cache->deferred + cache->ndeferred, pending,
	       n * sizeof(*pending));
	cache->ndeferred += n;
	return true;
}

static void flush_pending(weft_store *cache,
			  struct weft_hash_cache_entry *pending, size_t *n)
{
	if (*n && !(cache->defer && defer_pending(cache, pending, *n)))
		(void)store_cache_put(cache, pending, *n); /* see hash_file */
	*n = 0;
}

void weft_store_defer_cache_writes(weft_store *cache)
{
	if (cache)
		cache->defer = true;
}

int weft_store_write_deferred(weft_store *cache)
{
	if (!cache || !cache->ndeferred)
		return WEFT_OK;
	int err = store_cache_put(cache, cache->deferred, cache->ndeferred);
	cache->ndeferred = 0;
	return err;
}

/* Whether st is the file as it was at the run's first open of it. */
static bool same_as_first(const weft_file_rec *f, const struct stat *st)
{
	return f->has_first_stat && (uint64_t)st->st_dev == f->first_dev &&
	       (uint64_t)st->st_ino == f->first_ino &&
	       st->st_size == f->first_size &&
	       ts_ns(st->st_mtim) == f->first_mtime_ns &&
	       (!f->first_ctime_ns || ts_ns(st->st_ctim) == f->first_ctime_ns);
}

__attribute__((format(printf, 2, 3))) static int
set_read_missing(weft_file_rec *f, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int err = set_reason(&f->read_hash_missing, &f->has_read_hash, fmt,
			     ap);
	va_end(ap);
	return err;
}

/* The version a read (or update) was of: the content at the end when the
 * file is still as it was at the first open, else the node's cache entry
 * for that identity, else unknown (the store may still find it through a
 * version a task wrote with that identity). */
static int find_read_version(weft_store *cache, weft_file_rec *f,
			     const struct stat *end, bool end_hashed)
{
	if (!f->read && !f->updated)
		return WEFT_OK;
	if (!f->has_first_stat)
		return set_read_missing(f, "no identity at its first open");
	if (end_hashed && !f->written && same_as_first(f, end)) {
		memcpy(f->read_hash, f->hash, 32);
		f->has_read_hash = true;
		return WEFT_OK;
	}
	if (cache && f->first_ctime_ns) {
		struct stat id;
		store_identity_stat(&id, f->first_dev, f->first_ino,
				    f->first_size, f->first_mtime_ns,
				    f->first_ctime_ns);
		if (store_prehash_get(cache->prehash, &id, f->read_hash,
				      NULL) == WEFT_OK ||
		    store_cache_get(cache, &id, f->read_hash) == WEFT_OK) {
			f->has_read_hash = true;
			return WEFT_OK;
		}
	}
	return set_read_missing(f, f->deleted      ? "deleted before hashing"
				   : f->renamed_to ? "renamed before hashing"
						   : "changed before hashing");
}

static int locate(struct store_mounts *m, weft_file_rec *f,
		  const struct stat *end, bool have_end)
{
	bool has_dev = have_end || f->has_first_stat;
	uint64_t dev = have_end ? (uint64_t)end->st_dev : f->first_dev;
	free(f->loc_fs);
	free(f->loc_path);
	return store_locate(m, f->path, has_dev, dev, &f->loc_fs, &f->loc_path);
}

/* Order of process indices by executable path (qsort_r). */
static int exe_order(const void *a, const void *b, void *ctx)
{
	const weft_report *r = ctx;
	return strcmp(r->processes[*(const size_t *)a].exe,
		      r->processes[*(const size_t *)b].exe);
}

static int file_by_path(const void *key, const void *elem)
{
	return strcmp(key, ((const weft_file_rec *)elem)->path);
}

/* Every process's executable, hashed once per path after the run
 * (DESIGN.md: what a result depends on besides files). An executable
 * the run itself wrote is not hashed: what is there now need not be
 * what that process ran. One that cannot be read keeps no hash. */
static int hash_executables(weft_store *cache, weft_report *r,
			    struct weft_hash_cache_entry *pending,
			    size_t *npending)
{
	size_t n = 0;
	size_t *idx =
		r->nprocesses ? malloc(r->nprocesses * sizeof(*idx)) : NULL;
	if (r->nprocesses && !idx)
		return WEFT_ENOMEM;
	for (size_t i = 0; i < r->nprocesses; i++)
		if (r->processes[i].exe && r->processes[i].exe[0] == '/')
			idx[n++] = i;
	if (n)
		qsort_r(idx, n, sizeof(*idx), exe_order, r);
	for (size_t i = 0; i < n;) {
		const char *exe = r->processes[idx[i]].exe;
		size_t j = i + 1;
		while (j < n && strcmp(r->processes[idx[j]].exe, exe) == 0)
			j++;
		/* (bsearch must not see a NULL array, even empty) */
		const weft_file_rec *f =
			r->nfiles ? bsearch(exe, r->files, r->nfiles,
					    sizeof(*r->files), file_by_path)
				  : NULL;
		uint8_t h[32];
		struct stat st;
		bool queued = false;
		if ((!f || !f->written) &&
		    hash_file(cache, exe, h, NULL, &st, NULL,
			      cache ? &pending[*npending] : NULL,
			      &queued) == WEFT_OK) {
			for (size_t k = i; k < j; k++) {
				weft_process_rec *p = &r->processes[idx[k]];
				p->has_exe_hash = true;
				memcpy(p->exe_hash, h, 32);
			}
			if (queued && ++*npending == WEFT_HASH_CACHE_BATCH)
				flush_pending(cache, pending, npending);
		}
		i = j;
	}
	free(idx);
	return WEFT_OK;
}

int weft_report_hash_files(weft_store *cache, weft_report *r)
{
	struct weft_hash_cache_entry *pending = NULL;
	size_t npending = 0;
	if (cache) {
		pending = malloc(WEFT_HASH_CACHE_BATCH * sizeof(*pending));
		if (!pending)
			return WEFT_ENOMEM;
	}
	struct store_mounts mounts = {0};
	int err = WEFT_OK;
	uint64_t bytes = 0;
	for (size_t i = 0; i < r->nfiles && !err; i++) {
		weft_file_rec *f = &r->files[i];
		struct stat st;
		bool have_stat = false, hashed = false;
		if (cache && cache->progress)
			cache->progress(cache->progress_arg, i, r->nfiles,
					bytes);
		if (f->renamed_to) {
			err = set_missing(f, "renamed to %s", f->renamed_to);
		} else if (f->deleted) {
			err = set_missing(f, "deleted by the run");
		} else if (f->read || f->written) {
			bool queued = false;
			struct stat end;
			if (f->has_end_stat) {
				store_identity_stat(&end, f->end_dev,
						    f->end_ino, f->end_size,
						    f->end_mtime_ns,
						    f->end_ctime_ns);
				end.st_mode = (mode_t)f->end_mode;
			}
			int rc = hash_file(
				cache, f->path, f->hash,
				f->has_end_stat ? &end : NULL, &st, NULL,
				cache ? &pending[npending] : NULL, &queued);
			/* st is valid on success and for a non-regular
			 * file. */
			have_stat = rc == WEFT_OK || rc == WEFT_EINVAL;
			if (rc == WEFT_OK) {
				hashed = true;
				f->has_hash = true;
				f->has_size = true;
				f->size = st.st_size;
				bytes += (uint64_t)st.st_size;
				free(f->hash_missing);
				f->hash_missing = NULL;
				if (queued &&
				    ++npending == WEFT_HASH_CACHE_BATCH)
					flush_pending(cache, pending,
						      &npending);
			} else {
				f->has_hash = false;
				f->has_size = false;
				if (rc == WEFT_ENOMEM)
					err = rc;
				else
					err = explain_failure(f, rc, errno);
			}
		}
		if (!err && hashed && f->written) {
			/* The identity of the version written, by which a
			 * later reader's first open finds it. */
			f->has_final_stat = true;
			f->final_dev = (uint64_t)st.st_dev;
			f->final_ino = (uint64_t)st.st_ino;
			f->final_mtime_ns = ts_ns(st.st_mtim);
			f->final_ctime_ns = ts_ns(st.st_ctim);
		}
		if (!err)
			err = find_read_version(cache, f, &st, hashed);
		if (!err)
			err = locate(&mounts, f, &st, have_stat);
		/* An input the run itself rewrote changed by its own hand;
		 * only a change by someone else is worth a warning. */
		if (!err && have_stat && f->read && !f->written &&
		    f->has_first_stat && !same_as_first(f, &st))
			err = warn_changed(r, f->path);
	}
	store_mounts_free(&mounts);
	if (!err)
		err = hash_executables(cache, r, pending, &npending);
	if (cache)
		flush_pending(cache, pending, &npending);
	free(pending);
	return err;
}

/* ---- A hash cache of its own ---- */

/* A wrapper waits this long for another wrapper's cache write; past it
 * the write is dropped (a re-read later), the task never waits long. */
#define HASH_CACHE_BUSY_TIMEOUT_MS 1000

static const char hash_cache_schema[] =
	"CREATE TABLE IF NOT EXISTS hash_cache (" STORE_HASH_CACHE_COLUMNS;

/* mkdir -p of path's parent directory, 0700 for what is made. */
static void make_parents(const char *path)
{
	char dir[WEFT_MAX_PATH_BYTES];
	int n = snprintf(dir, sizeof(dir), "%s", path);
	if (n <= 0 || (size_t)n >= sizeof(dir))
		return;
	for (char *p = dir + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		(void)mkdir(dir, 0700); /* EEXIST or not: open says */
		*p = '/';
	}
}

int weft_hash_cache_open(const char *path, weft_store **out, char *err,
			 size_t errsz)
{
	*out = NULL;
	if (!path || path[0] != '/') {
		snprintf(err, errsz, "not an absolute path");
		return WEFT_EINVAL;
	}
	make_parents(path);
	store_make_private(path, true);
	weft_store *s = calloc(1, sizeof(*s));
	if (!s) {
		snprintf(err, errsz, "%s", weft_strerror(WEFT_ENOMEM));
		return WEFT_ENOMEM;
	}
	int rc = store_sqlite_open(path, &s->db,
				   SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
	int e = WEFT_OK;
	if (rc != SQLITE_OK) {
		e = rc == SQLITE_NOMEM ? WEFT_ENOMEM : WEFT_EDB;
	} else {
		sqlite3_extended_result_codes(s->db, 1);
		sqlite3_busy_timeout(s->db, HASH_CACHE_BUSY_TIMEOUT_MS);
		/* Anyone on the node may have written the file: no schema
		 * code with side effects, damaged pages found. */
		sqlite3_db_config(s->db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0,
				  (int *)NULL);
		sqlite3_db_config(s->db, SQLITE_DBCONFIG_DEFENSIVE, 1,
				  (int *)NULL);
		/* The probe reads the table's root page: a file that is not
		 * a database, or a damaged one, fails here, not later. */
		if (store_exec(s, "PRAGMA journal_mode = WAL") ||
		    store_exec(s, "PRAGMA synchronous = NORMAL") ||
		    store_exec(s, "PRAGMA cell_size_check = ON") ||
		    store_exec(s, hash_cache_schema) ||
		    store_exec(s, "SELECT count(*) FROM hash_cache "
				  "WHERE dev = -1"))
			e = WEFT_EDB;
	}
	if (e) {
		snprintf(err, errsz, "%s",
			 s->db ? weft_store_errmsg(s) : weft_strerror(e));
		weft_store_close(s);
		return e;
	}
	*out = s;
	return WEFT_OK;
}

uint64_t weft_hash_cache_reads(const weft_store *cache)
{
	return cache ? cache->hash_reads : 0;
}

static size_t count_hashed(const weft_report *r)
{
	size_t n = 0;
	for (size_t i = 0; i < r->nfiles; i++)
		n += r->files[i].has_hash;
	/* And each executable hashed once (hash_executables). */
	for (size_t i = 0; i < r->nprocesses; i++) {
		const weft_process_rec *p = &r->processes[i];
		bool first = p->has_exe_hash;
		for (size_t k = 0; first && k < i; k++)
			first = !r->processes[k].has_exe_hash ||
				strcmp(r->processes[k].exe, p->exe) != 0;
		n += first;
	}
	return n;
}

int weft_report_hash_files_cached(weft_store **cache, const char *path,
				  const weft_prehash *pre, weft_report *r,
				  size_t *hashed, size_t *nread,
				  weft_progress_fn progress, void *progress_arg)
{
	if (path && !*cache) {
		char why[256];
		int e = weft_hash_cache_open(path, cache, why, sizeof(why));
		if (e == WEFT_ENOMEM)
			return e;
		if (e && weft_report_warn(r,
					  "hash cache %s not used (%s): every "
					  "file was read; remove it or set "
					  "WEFT_HASH_CACHE",
					  path, why) == WEFT_ENOMEM)
			return WEFT_ENOMEM;
	}
	uint64_t before = weft_hash_cache_reads(*cache);
	if (*cache) {
		weft_store_use_prehash(*cache, pre);
		weft_store_set_progress(*cache, progress, progress_arg);
	}
	int err = weft_report_hash_files(*cache, r);
	if (*cache) { /* pre and progress may end before the cache */
		weft_store_use_prehash(*cache, NULL);
		weft_store_set_progress(*cache, NULL, NULL);
	}
	size_t n = count_hashed(r);
	if (hashed)
		*hashed = n;
	if (nread)
		*nread = *cache ? (size_t)(weft_hash_cache_reads(*cache) -
					   before)
				: n;
	return err;
}
