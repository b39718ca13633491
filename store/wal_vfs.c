/*
 * wal_vfs.c - the store's SQLite files, with the write-ahead log written
 * in large writes.
 *
 * SQLite writes each page it commits to the log as two pwrite()s, the
 * frame's 24-byte header, then the page: a local run of 1,500 files
 * commits about 1,600 pages, 3,200 system calls, most of its commit's
 * time. This VFS is the system's ("unix") for every file; only a log's
 * xWrite differs: a frame that does not end a transaction is gathered in
 * a buffer and written with the frames after it, in one pwrite() per
 * STORE_WAL_BUFFER bytes.
 *
 * What another connection or process can see is unchanged. A
 * transaction becomes visible when SQLite writes the log's index (the
 * -shm file) after its frames, and the last of them is a commit frame
 * (its header names the database's size; every other frame's says 0):
 * the buffer is written out before that frame, which is written as
 * SQLite asked, so when its xWrite returns every byte of the transaction
 * is in the file, and a failed write fails the commit, as before. Every
 * other write (the log's own header, a frame rewritten in place, the
 * checksums rewritten) and every other call on the log (read, sync,
 * truncate, size, close) writes the buffer out first, so the file is
 * exactly what SQLite wrote whenever SQLite looks. A transaction that
 * spilled frames and then rolled back leaves them gathered: another
 * writer may then write the log where they were to go, so they are
 * written out (as SQLite would have written them, while the write lock is
 * still held) when the connection releases any lock on the log's index:
 * the database file is this VFS's too, and knows its log (a log's name
 * leads to its database's, sqlite3_filename_database). A log whose
 * database is not known gathers nothing. A crash loses at most frames of
 * a transaction that had not committed: the ones SQLite's own recovery
 * drops.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store_internal.h"

/* Bytes gathered before a write: about 55 writes for 1,600 pages. Under
 * 128 KiB: the unix VFS's xWrite passes write() at most 0x1ffff bytes,
 * the count masked to 17 bits (a 256 KiB write would be one of 0 bytes,
 * and SQLITE_FULL). */
#define STORE_WAL_BUFFER (120 * 1024)
/* A frame's header (wal.c: WAL_FRAME_HDRSIZE). */
#define WAL_FRAME_HEADER 24

/* A database or a log, over the unix VFS's file. */
struct store_file {
	sqlite3_file base;  /* pMethods: file_methods */
	sqlite3_file *real; /* the unix VFS's file, after this struct */
	/* A log: its database's file (NULL: not known, nothing gathered),
	 * and the bytes gathered, at file offset start. */
	struct store_file *db;
	unsigned char *buf;
	size_t len;
	sqlite3_int64 start;
	bool page_next; /* the last bytes gathered are a frame's header */
	/* A database: its name as SQLite passed it, its log while open,
	 * the next open database (dbs). */
	const char *name;
	struct store_file *wal;
	struct store_file *next;
};

static sqlite3_vfs *unix_vfs;
static sqlite3_vfs wal_vfs;
static sqlite3_io_methods file_methods;
/* The open databases, by name pointer; and their links to their logs. */
static pthread_mutex_t dbs_lock = PTHREAD_MUTEX_INITIALIZER;
static struct store_file *dbs;

static int flush(struct store_file *w)
{
	w->page_next = false;
	if (!w->len)
		return SQLITE_OK;
	size_t n = w->len;
	w->len = 0;
	return w->real->pMethods->xWrite(w->real, w->buf, (int)n, w->start);
}

static uint32_t be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

/* Whether a write can wait in the buffer: a header of a frame that does
 * not commit, or the page right after such a header. */
static bool can_wait(const struct store_file *w, const void *data, int amt,
		     sqlite3_int64 off)
{
	bool follows = !w->len || off == w->start + (sqlite3_int64)w->len;
	if (amt == WAL_FRAME_HEADER)
		return follows && be32((const unsigned char *)data + 4) == 0;
	return w->page_next && w->len && follows &&
	       (size_t)amt <= STORE_WAL_BUFFER;
}

static int file_write(sqlite3_file *f, const void *data, int amt,
		      sqlite3_int64 off)
{
	struct store_file *w = (struct store_file *)f;
	if (!w->db || amt <= 0 || !can_wait(w, data, amt, off)) {
		int rc = flush(w);
		return rc ? rc
			  : w->real->pMethods->xWrite(w->real, data, amt, off);
	}
	if (!w->buf && !(w->buf = malloc(STORE_WAL_BUFFER)))
		return w->real->pMethods->xWrite(w->real, data, amt, off);
	bool header = amt == WAL_FRAME_HEADER;
	if (w->len + (size_t)amt > STORE_WAL_BUFFER) {
		int rc = flush(w);
		if (rc)
			return rc;
	}
	if (!w->len)
		w->start = off;
	memcpy(w->buf + w->len, data, (size_t)amt);
	w->len += (size_t)amt;
	w->page_next = header;
	return SQLITE_OK;
}

/* Every other call sees the file as SQLite wrote it. */
#define REAL(f) (((struct store_file *)(f))->real)
#define FLUSHED(f)                                                             \
	do {                                                                   \
		int rc_ = flush((struct store_file *)(f));                     \
		if (rc_)                                                       \
			return rc_;                                            \
	} while (0)

static int file_close(sqlite3_file *f)
{
	struct store_file *w = (struct store_file *)f;
	int rc = flush(w);
	free(w->buf);
	w->buf = NULL;
	pthread_mutex_lock(&dbs_lock);
	if (w->db) /* a log */
		w->db->wal = NULL;
	if (w->name) { /* a database */
		struct store_file **p = &dbs;
		while (*p && *p != w)
			p = &(*p)->next;
		if (*p)
			*p = w->next;
		if (w->wal)
			w->wal->db = NULL;
	}
	pthread_mutex_unlock(&dbs_lock);
	int rc2 = w->real->pMethods->xClose(w->real);
	return rc ? rc : rc2;
}

static int file_read(sqlite3_file *f, void *data, int amt, sqlite3_int64 off)
{
	FLUSHED(f);
	return REAL(f)->pMethods->xRead(REAL(f), data, amt, off);
}

static int file_truncate(sqlite3_file *f, sqlite3_int64 size)
{
	FLUSHED(f);
	return REAL(f)->pMethods->xTruncate(REAL(f), size);
}

static int file_sync(sqlite3_file *f, int flags)
{
	FLUSHED(f);
	return REAL(f)->pMethods->xSync(REAL(f), flags);
}

static int file_size(sqlite3_file *f, sqlite3_int64 *size)
{
	FLUSHED(f);
	return REAL(f)->pMethods->xFileSize(REAL(f), size);
}

static int file_lock(sqlite3_file *f, int level)
{
	FLUSHED(f);
	return REAL(f)->pMethods->xLock(REAL(f), level);
}

static int file_unlock(sqlite3_file *f, int level)
{
	FLUSHED(f);
	return REAL(f)->pMethods->xUnlock(REAL(f), level);
}

static int file_check_reserved(sqlite3_file *f, int *out)
{
	return REAL(f)->pMethods->xCheckReservedLock(REAL(f), out);
}

static int file_control(sqlite3_file *f, int op, void *arg)
{
	FLUSHED(f);
	return REAL(f)->pMethods->xFileControl(REAL(f), op, arg);
}

static int file_sector_size(sqlite3_file *f)
{
	return REAL(f)->pMethods->xSectorSize(REAL(f));
}

static int file_device_characteristics(sqlite3_file *f)
{
	return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f));
}

/* The unix VFS's methods are of version 3; any older lack these. */
#define HAS(f, version) (REAL(f)->pMethods->iVersion >= (version))

static int file_shm_map(sqlite3_file *f, int page, int size, int extend,
			void volatile **out)
{
	FLUSHED(f);
	if (!HAS(f, 2))
		return SQLITE_IOERR_SHMMAP;
	return REAL(f)->pMethods->xShmMap(REAL(f), page, size, extend, out);
}

static int file_shm_lock(sqlite3_file *f, int offset, int n, int flags)
{
	struct store_file *db = (struct store_file *)f;
	/* A database's: frames its log still gathers when a lock goes are
	 * of no transaction (a commit wrote its own); written out while
	 * the lock is still held, as SQLite would have. */
	if ((flags & SQLITE_SHM_UNLOCK) && db->wal)
		(void)flush(db->wal);
	FLUSHED(f);
	if (!HAS(f, 2))
		return SQLITE_IOERR_SHMLOCK;
	return REAL(f)->pMethods->xShmLock(REAL(f), offset, n, flags);
}

static void file_shm_barrier(sqlite3_file *f)
{
	/* A database's, before SQLite publishes a transaction in the
	 * log's index: its frames are all written by then (the commit
	 * frame wrote them); should any be gathered, out they go. */
	struct store_file *db = (struct store_file *)f;
	if (db->wal)
		(void)flush(db->wal);
	(void)flush(db);
	if (HAS(f, 2))
		REAL(f)->pMethods->xShmBarrier(REAL(f));
}

static int file_shm_unmap(sqlite3_file *f, int delete_flag)
{
	FLUSHED(f);
	return HAS(f, 2) ? REAL(f)->pMethods->xShmUnmap(REAL(f), delete_flag)
			 : SQLITE_OK;
}

static int file_fetch(sqlite3_file *f, sqlite3_int64 off, int amt, void **out)
{
	FLUSHED(f);
	*out = NULL; /* no mapping: SQLite reads instead */
	return HAS(f, 3) ? REAL(f)->pMethods->xFetch(REAL(f), off, amt, out)
			 : SQLITE_OK;
}

static int file_unfetch(sqlite3_file *f, sqlite3_int64 off, void *p)
{
	return HAS(f, 3) ? REAL(f)->pMethods->xUnfetch(REAL(f), off, p)
			 : SQLITE_OK;
}

/* Where the unix VFS's file goes: after the wrapper, aligned. */
#define REAL_OFFSET ((sizeof(struct store_file) + 15) & ~(size_t)15)

/* A log's database file among the open ones (dbs_lock held). */
static struct store_file *db_of(sqlite3_filename log)
{
	const char *name = sqlite3_filename_database(log);
	for (struct store_file *d = dbs; d && name; d = d->next)
		if (d->name == name)
			return d;
	return NULL;
}

static int vfs_open(sqlite3_vfs *vfs, sqlite3_filename name, sqlite3_file *f,
		    int flags, int *out_flags)
{
	(void)vfs;
	bool log = flags & SQLITE_OPEN_WAL;
	if (!log && !(flags & SQLITE_OPEN_MAIN_DB))
		/* Journals, temporary files: the unix VFS's own, in place. */
		return unix_vfs->xOpen(unix_vfs, name, f, flags, out_flags);
	struct store_file *w = (struct store_file *)f;
	memset(w, 0, sizeof(*w));
	w->real = (sqlite3_file *)((char *)f + REAL_OFFSET);
	int rc = unix_vfs->xOpen(unix_vfs, name, w->real, flags, out_flags);
	if (rc != SQLITE_OK || !w->real->pMethods) {
		w->base.pMethods = NULL; /* nothing to close */
		return rc != SQLITE_OK ? rc : SQLITE_CANTOPEN;
	}
	w->base.pMethods = &file_methods;
	pthread_mutex_lock(&dbs_lock);
	if (log) {
		struct store_file *db = name ? db_of(name) : NULL;
		if (db && !db->wal) {
			db->wal = w;
			w->db = db;
		}
	} else if (name) {
		w->name = name;
		w->next = dbs;
		dbs = w;
	}
	pthread_mutex_unlock(&dbs_lock);
	return SQLITE_OK;
}

static sqlite3_io_methods file_methods = {
	.iVersion = 3,
	.xClose = file_close,
	.xRead = file_read,
	.xWrite = file_write,
	.xTruncate = file_truncate,
	.xSync = file_sync,
	.xFileSize = file_size,
	.xLock = file_lock,
	.xUnlock = file_unlock,
	.xCheckReservedLock = file_check_reserved,
	.xFileControl = file_control,
	.xSectorSize = file_sector_size,
	.xDeviceCharacteristics = file_device_characteristics,
	.xShmMap = file_shm_map,
	.xShmLock = file_shm_lock,
	.xShmBarrier = file_shm_barrier,
	.xShmUnmap = file_shm_unmap,
	.xFetch = file_fetch,
	.xUnfetch = file_unfetch,
};

const char *store_vfs_register(void)
{
	if (wal_vfs.zName)
		return wal_vfs.zName;
	unix_vfs = sqlite3_vfs_find("unix");
	if (!unix_vfs || unix_vfs->iVersion < 1)
		return NULL; /* SQLite's default, whatever it is */
	wal_vfs = *unix_vfs;
	wal_vfs.szOsFile = (int)(REAL_OFFSET + (size_t)unix_vfs->szOsFile);
	wal_vfs.zName = "weft-unix";
	wal_vfs.xOpen = vfs_open;
	wal_vfs.pNext = NULL;
	if (sqlite3_vfs_register(&wal_vfs, 0) != SQLITE_OK) {
		wal_vfs.zName = NULL;
		return NULL;
	}
	return wal_vfs.zName;
}
