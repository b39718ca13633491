/*
 * prehash.c - hashing the files a run reads while it runs, on a thread of
 * its own, so that the hashing after the run finds their content known.
 *
 * The classifier, on the tracer's feeding thread, offers the first open
 * for reading of each regular file (weft_classifier_on_input), with the
 * identity its open saw (device, inode, size, mtime, ctime); it is
 * queued. The thread skips
 * what the hash cache already knows, else opens the file, hashes it when
 * its identity is still the one the open saw, and keeps the hash under
 * that identity when it is stable by the hash cache's rule (nothing
 * changed while reading, ctime older than the clock's tick). The hashing
 * after the run (hash.c) looks a file's identity up here before reading
 * it: the same trust the hash cache gets, so nothing is vouched for that
 * the end would not vouch for. A file changed after the thread read it
 * has another identity, is not found here, and is read at the end.
 *
 * The path only says where to look: whatever is found there is kept
 * under the identity it has, so a file that replaced the one opened is
 * never taken for it.
 *
 * The feeding thread never waits on the hasher's work: a full queue drops
 * the offer (the end reads that file), a seen identity is not offered
 * twice (a loop that opens one file a million times queues it once), and
 * it wakes the hasher only for a batch.
 *
 * When the run has ended (weft_prehash_finish), what is still queued is
 * hashed by a second thread beside the first (the CPUs the workload used
 * are free then, and the end would read those files anyway, on one), and
 * the file being read is finished rather than given up.
 */
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "store_internal.h"

/* Offers waiting for the thread; more are dropped. */
#define PREHASH_QUEUE 8192
/* At the run's end, a queue of at most this many inputs of at most
 * PREHASH_LEAVE_BYTES together is left to the end's hashing, whose store
 * connection is open already: the thread would first open one of its own
 * (and read the store's schema) to look them up, 0.4-0.7 ms that a
 * `weft run -- true` under ptrace or eBPF (the loader's and libc's
 * opens) waited for. */
#define PREHASH_LEAVE_FILES 16
#define PREHASH_LEAVE_BYTES (16 << 20)
/* The feeding thread wakes the hasher only when this many offers wait
 * (a wakeup on another CPU costs the tracer tens of microseconds, paid by
 * the workload under ptrace); otherwise the hasher looks every
 * PREHASH_POLL_MS. */
#define PREHASH_BATCH 64
#define PREHASH_POLL_MS 5
/* Cache lookups made in one read transaction of the hash cache (ended
 * sooner when the queue is empty): each transaction of its own took two
 * fcntl locks, a third of a lookup's cost; a transaction held longer
 * would keep the log from being checkpointed past it. */
#define PREHASH_CACHE_TXN 256
/* Hashes kept (80 bytes each, in a table up to twice as large); more
 * are left to the end. */
#define PREHASH_MEMO_MAX (1u << 19)
/* Identities remembered as offered: a table of PREHASH_SEEN_FIRST slots
 * that doubles when half full, up to PREHASH_SEEN_SLOTS (powers of two);
 * past half of that, nothing more is offered. It starts small: the
 * feeding thread's first touch of each page of a large zeroed table
 * cost two page faults (and, from the second, a TLB flush on every CPU
 * running one of weft's threads) for nearly every offer. */
#define PREHASH_SEEN_FIRST (1u << 12)
#define PREHASH_SEEN_SLOTS (1u << 20)

struct prehash_id {
	uint64_t dev, ino;
	int64_t size, mtime_ns, ctime_ns;
};

struct prehash_item {
	struct prehash_id id; /* an input's, as its open saw it */
	bool output;          /* else an input */
	char *path;
};

struct memo_ent {
	struct prehash_id id;
	uint8_t hash[32];
	bool used;
	bool cached; /* found in the hash cache, not read */
};

/* A hashing thread's own: its hash cache connection and read buffer. */
struct prehash_worker {
	weft_prehash *p;
	pthread_t thread;
	bool started;
	weft_store *cache;
	uint8_t *buf; /* WEFT_HASH_BUFFER_BYTES, reused */
	bool cache_tried;
	unsigned cache_reads; /* lookups in the open read transaction */
};

struct weft_prehash {
	struct prehash_worker w[2]; /* the second only to finish */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool quit;         /* under mu */
	bool finishing;    /* under mu: the queue's end ends the threads */
	int running;       /* under mu: threads started and not ended */
	atomic_bool abort; /* quit, for the file being read */
	atomic_bool ended; /* finishing: no waiting for a clock tick */
	struct prehash_item q[PREHASH_QUEUE];
	size_t head, n; /* under mu */
	/* The feeding thread's alone: hashes of identities offered. */
	uint64_t *seen;
	size_t nseen, seen_slots;
	/* The threads', under memo_mu, until weft_prehash_stop; read-only
	 * after. */
	pthread_mutex_t memo_mu;
	struct memo_ent *memo;
	size_t nmemo, memo_slots;
	char *cache_path;
	/* Counted by both threads, read by either: weft_prehash_stats. */
	atomic_uint_fast64_t offered, known, hashed, missed, dropped, bytes;
};

static uint64_t id_hash(const struct prehash_id *id)
{
	uint64_t v[5] = {id->dev, id->ino, (uint64_t)id->size,
			 (uint64_t)id->mtime_ns, (uint64_t)id->ctime_ns};
	uint64_t h = 0x9e3779b97f4a7c15ULL;
	for (int i = 0; i < 5; i++) {
		h ^= v[i];
		h *= 0xff51afd7ed558ccdULL;
		h ^= h >> 33;
	}
	return h ? h : 1;
}

static bool id_eq(const struct prehash_id *a, const struct prehash_id *b)
{
	return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
	       a->mtime_ns == b->mtime_ns && a->ctime_ns == b->ctime_ns;
}

static int64_t ts_ns(struct timespec ts)
{
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static struct prehash_id id_of_stat(const struct stat *st)
{
	return (struct prehash_id){(uint64_t)st->st_dev, (uint64_t)st->st_ino,
				   st->st_size, ts_ns(st->st_mtim),
				   ts_ns(st->st_ctim)};
}

/* ---- The memo: identity -> hash ---- */

static struct memo_ent *memo_slot(struct memo_ent *m, size_t slots,
				  const struct prehash_id *id)
{
	for (size_t i = id_hash(id) & (slots - 1);; i = (i + 1) & (slots - 1))
		if (!m[i].used || id_eq(&m[i].id, id))
			return &m[i];
}

/* Keep hash under id; false when there is no room (the end reads the
 * file). */
static bool memo_put_locked(weft_prehash *p, const struct prehash_id *id,
			    const uint8_t hash[32], bool cached)
{
	if (p->nmemo >= PREHASH_MEMO_MAX)
		return false;
	if ((p->nmemo + 1) * 2 > p->memo_slots) {
		size_t slots = p->memo_slots ? p->memo_slots * 2 : 1024;
		struct memo_ent *m = calloc(slots, sizeof(*m));
		if (!m)
			return false;
		for (size_t i = 0; i < p->memo_slots; i++)
			if (p->memo[i].used)
				*memo_slot(m, slots, &p->memo[i].id) =
					p->memo[i];
		free(p->memo);
		p->memo = m;
		p->memo_slots = slots;
	}
	struct memo_ent *e = memo_slot(p->memo, p->memo_slots, id);
	if (!e->used)
		p->nmemo++;
	e->id = *id;
	memcpy(e->hash, hash, 32);
	e->used = true;
	e->cached = cached;
	return true;
}

static bool memo_put(weft_prehash *p, const struct prehash_id *id,
		     const uint8_t hash[32], bool cached)
{
	pthread_mutex_lock(&p->memo_mu);
	bool kept = memo_put_locked(p, id, hash, cached);
	pthread_mutex_unlock(&p->memo_mu);
	return kept;
}

int store_prehash_get(const weft_prehash *p, const struct stat *st,
		      uint8_t hash[32], bool *cached)
{
	if (!p || !p->memo_slots)
		return WEFT_ENOTFOUND;
	struct prehash_id id = id_of_stat(st);
	const struct memo_ent *e = memo_slot(p->memo, p->memo_slots, &id);
	if (!e->used)
		return WEFT_ENOTFOUND;
	memcpy(hash, e->hash, 32);
	if (cached)
		*cached = e->cached;
	return WEFT_OK;
}

/* store_prehash_get while a thread may still change the memo: the
 * second thread of weft_prehash_finish can grow (move) it meanwhile. */
static bool memo_get(weft_prehash *p, const struct stat *st, uint8_t hash[32])
{
	pthread_mutex_lock(&p->memo_mu);
	bool got = store_prehash_get(p, st, hash, NULL) == WEFT_OK;
	pthread_mutex_unlock(&p->memo_mu);
	return got;
}

/* ---- The thread ---- */

/* The hash cache at path, read-only, for store_cache_get; NULL when it
 * cannot be opened (every file is then hashed). */
static weft_store *open_cache(const char *path)
{
	weft_store *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	if (store_sqlite_open(path, &s->db, SQLITE_OPEN_READONLY) !=
	    SQLITE_OK) {
		weft_store_close(s);
		return NULL;
	}
	sqlite3_busy_timeout(s->db, 100);
	/* A node's hash cache is guarded as weft_hash_cache_open guards it:
	 * no schema code with side effects, damaged pages found. */
	sqlite3_db_config(s->db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, (int *)NULL);
	sqlite3_db_config(s->db, SQLITE_DBCONFIG_DEFENSIVE, 1, (int *)NULL);
	if (store_exec(s, "PRAGMA cell_size_check = ON")) {
		weft_store_close(s);
		return NULL;
	}
	return s;
}

/* Whether st's ctime is older than the coarse clock's current tick (the
 * hash cache's rule: a write later in that tick would change nothing a
 * stat shows), after waiting a few ticks for it if need be; not waited
 * for once the run has ended (the end reads such a file at once, without
 * waiting: it keeps no hash by identity for it). */
static bool tick_passed(weft_prehash *p, const struct stat *st)
{
	struct timespec res, now;
	if (clock_getres(CLOCK_REALTIME_COARSE, &res) != 0)
		return false;
	for (int tries = 0; tries < 4 && !atomic_load(&p->abort); tries++) {
		if (clock_gettime(CLOCK_REALTIME_COARSE, &now) != 0)
			return false;
		if (ts_ns(st->st_ctim) < ts_ns(now))
			return true;
		if (atomic_load(&p->ended))
			return false;
		nanosleep(&res, NULL);
	}
	return false;
}

/* Ends the read transaction of the hash cache, if one is open: the
 * lookups made in it saw the cache as it was at its first. */
static void cache_rest(struct prehash_worker *w)
{
	if (w->cache_reads) {
		(void)store_exec(w->cache, "COMMIT");
		w->cache_reads = 0;
	}
}

static void hash_one(struct prehash_worker *w, const struct prehash_item *it)
{
	weft_prehash *p = w->p;
	uint8_t hash[32];
	if (!it->output) {
		struct stat st;
		store_identity_stat(&st, it->id.dev, it->id.ino, it->id.size,
				    it->id.mtime_ns, it->id.ctime_ns);
		if (!w->cache_tried && p->cache_path) {
			w->cache_tried = true;
			w->cache = open_cache(p->cache_path);
		}
		if (w->cache && !w->cache_reads &&
		    store_exec(w->cache, "BEGIN") == WEFT_OK)
			w->cache_reads = 1;
		else if (w->cache_reads && ++w->cache_reads > PREHASH_CACHE_TXN)
			cache_rest(w);
		/* Known already: kept (when there is room), so that the
		 * end need not look it up. */
		if (w->cache &&
		    store_cache_get(w->cache, &st, hash) == WEFT_OK) {
			(void)memo_put(p, &it->id, hash, true);
			atomic_fetch_add(&p->known, 1);
			return;
		}
	}
	/* Not opened unless it is a regular file now: opening a device can
	 * have side effects (weft_hash_file's rule). */
	struct stat pre;
	int fd = stat(it->path, &pre) == 0 && S_ISREG(pre.st_mode)
			 ? open(it->path,
				O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)
			 : -1;
	if (fd < 0) {
		atomic_fetch_add(&p->missed, 1);
		return;
	}
	struct stat now;
	struct prehash_id id;
	bool ok =
		fstat(fd, &now) == 0 && S_ISREG(now.st_mode) && now.st_size > 0;
	if (ok && it->output && memo_get(p, &now, hash)) {
		/* Closed again unchanged: not read twice. */
		atomic_fetch_add(&p->known, 1);
		close(fd);
		return;
	}
	if (ok) {
		/* An input as its open saw it; an output as it is now. */
		id = id_of_stat(&now);
		ok = it->output ? tick_passed(p, &now) : id_eq(&id, &it->id);
	}
	bool stable = false;
	if (ok && fcntl(fd, F_SETFL, 0) == 0 &&
	    store_hash_fd(fd, &now, hash, &stable, &p->abort, w->buf) ==
		    WEFT_OK &&
	    stable) {
		if (memo_put(p, &id, hash, false)) {
			atomic_fetch_add(&p->hashed, 1);
			atomic_fetch_add(&p->bytes, (uint64_t)now.st_size);
		} else {
			atomic_fetch_add(&p->dropped, 1);
		}
	} else {
		atomic_fetch_add(&p->missed, 1);
	}
	close(fd);
}

/* The next file to hash, waited for; false when told to quit, or when
 * finishing and nothing is left. */
static bool next_item(struct prehash_worker *w, struct prehash_item *it)
{
	weft_prehash *p = w->p;
	pthread_mutex_lock(&p->mu);
	while (!p->quit && !p->n && !p->finishing) {
		if (w->cache_reads) {
			/* Nothing queued: no snapshot held while idle. */
			pthread_mutex_unlock(&p->mu);
			cache_rest(w);
			pthread_mutex_lock(&p->mu);
			continue;
		}
		/* Woken by a batch, else it looks every PREHASH_POLL_MS. */
		struct timespec until =
			weft_mono_deadline(PREHASH_POLL_MS * 1000000L);
		pthread_cond_timedwait(&p->cv, &p->mu, &until);
	}
	bool got = !p->quit && p->n;
	if (got) {
		*it = p->q[p->head];
		p->head = (p->head + 1) % PREHASH_QUEUE;
		p->n--;
	}
	pthread_mutex_unlock(&p->mu);
	return got;
}

static void *prehash_main(void *arg)
{
	struct prehash_worker *w = arg;
	/* The workload, and the tracer that waits on its every stop, come
	 * first: the first thread gets what CPU they leave (nice 19; not
	 * SCHED_IDLE, which could starve it while it holds a lock of
	 * malloc's or SQLite's that they need). The second starts when the
	 * workload has ended. */
	if (w == &w->p->w[0])
		(void)setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 19);
	struct prehash_item it;
	while (next_item(w, &it)) {
		hash_one(w, &it);
		free(it.path);
	}
	cache_rest(w);
	weft_store_close(w->cache);
	w->cache = NULL;
	weft_prehash *p = w->p;
	pthread_mutex_lock(&p->mu);
	p->running--;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

/* A thread for w (all signals blocked: they are the tracer's business),
 * on cpus when given. */
static bool worker_start(struct prehash_worker *w, const cpu_set_t *cpus)
{
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	if (cpus)
		pthread_attr_setaffinity_np(&attr, sizeof(*cpus), cpus);
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pthread_mutex_lock(&w->p->mu);
	w->started = pthread_create(&w->thread, &attr, prehash_main, w) == 0;
	w->p->running += w->started;
	pthread_mutex_unlock(&w->p->mu);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	return w->started;
}

weft_prehash *weft_prehash_start(const char *cache_path, int away_from_cpu)
{
	const char *off = getenv("WEFT_PREHASH");
	if (off && (!strcmp(off, "off") || !strcmp(off, "0")))
		return NULL;
	weft_prehash *p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->mu = (pthread_mutex_t)PTHREAD_MUTEX_INITIALIZER;
	p->memo_mu = (pthread_mutex_t)PTHREAD_MUTEX_INITIALIZER;
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&p->cv, &ca);
	pthread_condattr_destroy(&ca);
	atomic_init(&p->abort, false);
	atomic_init(&p->ended, false);
	p->seen_slots = PREHASH_SEEN_FIRST;
	p->seen = calloc(p->seen_slots, sizeof(*p->seen));
	for (int i = 0; i < 2; i++)
		p->w[i].p = p;
	p->w[0].buf = malloc(WEFT_HASH_BUFFER_BYTES);
	p->cache_path = cache_path ? strdup(cache_path) : NULL;
	if (!p->seen || !p->w[0].buf || (cache_path && !p->cache_path)) {
		weft_prehash_free(p);
		return NULL;
	}
	/* The thread keeps off the tracer's CPU, where the ptrace backend
	 * pins itself and a single-task workload: every stop there is a
	 * switch between the two, and a third runnable thread on that CPU
	 * slows each one (bench/realistic: ptrace 2.2x -> 2.8x on pycsv). */
	cpu_set_t cpus;
	bool away = away_from_cpu >= 0 && away_from_cpu < CPU_SETSIZE &&
		    sched_getaffinity(0, sizeof(cpus), &cpus) == 0 &&
		    CPU_ISSET(away_from_cpu, &cpus) && CPU_COUNT(&cpus) > 1;
	if (away)
		CPU_CLR(away_from_cpu, &cpus);
	if (!worker_start(&p->w[0], away ? &cpus : NULL)) {
		weft_prehash_free(p);
		return NULL;
	}
	return p;
}

/* The slot of h in seen (slots a power of two): h's, or the empty one
 * where it goes. */
static uint64_t *seen_slot(uint64_t *seen, size_t slots, uint64_t h)
{
	for (size_t i = h & (slots - 1);; i = (i + 1) & (slots - 1))
		if (seen[i] == h || !seen[i])
			return &seen[i];
}

/* Whether id was offered before; remembers it. True (offer nothing)
 * once PREHASH_SEEN_SLOTS is half full, or when the table cannot grow. */
static bool seen_before(weft_prehash *p, const struct prehash_id *id)
{
	if ((p->nseen + 1) * 2 > p->seen_slots) {
		size_t slots = p->seen_slots * 2;
		uint64_t *t = slots <= PREHASH_SEEN_SLOTS
				      ? calloc(slots, sizeof(*t))
				      : NULL;
		if (!t)
			return true;
		for (size_t i = 0; i < p->seen_slots; i++)
			if (p->seen[i])
				*seen_slot(t, slots, p->seen[i]) = p->seen[i];
		free(p->seen);
		p->seen = t;
		p->seen_slots = slots;
	}
	uint64_t h = id_hash(id);
	uint64_t *e = seen_slot(p->seen, p->seen_slots, h);
	if (*e)
		return true;
	*e = h;
	p->nseen++;
	return false;
}

void weft_prehash_offer(weft_prehash *p, const char *path, const weft_event *ev)
{
	if (!p || !path || path[0] != '/')
		return;
	struct prehash_id id = {0};
	if (ev) {
		if (!ev->has_stat || !S_ISREG(ev->st_mode) ||
		    !ev->st_ctime_ns || ev->st_size <= 0)
			return;
		id = (struct prehash_id){ev->st_dev, ev->st_ino, ev->st_size,
					 ev->st_mtime_ns, ev->st_ctime_ns};
		if (seen_before(p, &id))
			return;
	}
	char *copy = strdup(path);
	if (!copy)
		return;
	/* The thread holds the lock only to take an item, never while it
	 * reads: this waits at most for that. */
	pthread_mutex_lock(&p->mu);
	if (p->n == PREHASH_QUEUE || p->quit) {
		pthread_mutex_unlock(&p->mu);
		free(copy);
		atomic_fetch_add(&p->dropped, 1);
		return;
	}
	p->q[(p->head + p->n) % PREHASH_QUEUE] =
		(struct prehash_item){id, !ev, copy};
	if (++p->n == PREHASH_BATCH)
		pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
	atomic_fetch_add(&p->offered, 1);
}

/* Drop what is queued (the end reads it). Under mu, or with the
 * threads joined. */
static void drop_queued_locked(weft_prehash *p)
{
	for (; p->n; p->n--, p->head = (p->head + 1) % PREHASH_QUEUE) {
		free(p->q[p->head].path);
		atomic_fetch_add(&p->dropped, 1);
	}
}

/* Whether the queue is a few small inputs (PREHASH_LEAVE_FILES). Under
 * mu. */
static bool few_small_inputs_locked(const weft_prehash *p)
{
	if (p->n > PREHASH_LEAVE_FILES)
		return false;
	int64_t bytes = 0;
	for (size_t i = 0; i < p->n; i++) {
		const struct prehash_item *it =
			&p->q[(p->head + i) % PREHASH_QUEUE];
		if (it->output)
			return false;
		bytes += it->id.size;
	}
	return bytes <= PREHASH_LEAVE_BYTES;
}

size_t store_prehash_queued(weft_prehash *p)
{
	pthread_mutex_lock(&p->mu);
	size_t n = p->n;
	pthread_mutex_unlock(&p->mu);
	return n;
}

static void join_workers(weft_prehash *p)
{
	for (int i = 0; i < 2; i++) {
		if (p->w[i].started)
			pthread_join(p->w[i].thread, NULL);
		p->w[i].started = false;
	}
}

void weft_prehash_finish(weft_prehash *p,
			 void (*progress)(void *arg, uint64_t done,
					  uint64_t total, uint64_t bytes),
			 void *arg)
{
	if (!p || !p->w[0].started)
		return;
	atomic_store(&p->ended, true);
	pthread_mutex_lock(&p->mu);
	p->finishing = true;
	/* The file being read, if any, is finished all the same. */
	if (few_small_inputs_locked(p))
		drop_queued_locked(p);
	size_t total = p->n;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	/* A second thread when there is more than the first's next file;
	 * without one (no memory, no thread) the first does it all. */
	if (total > 1 && (p->w[1].buf = malloc(WEFT_HASH_BUFFER_BYTES)))
		(void)worker_start(&p->w[1], NULL);
	uint64_t bytes0 = atomic_load(&p->bytes);
	pthread_mutex_lock(&p->mu);
	while (p->running) {
		if (progress) {
			size_t left = p->n;
			pthread_mutex_unlock(&p->mu);
			progress(arg, total - left, total,
				 atomic_load(&p->bytes) - bytes0);
			pthread_mutex_lock(&p->mu);
			if (!p->running)
				break;
		}
		struct timespec until = weft_mono_deadline(100 * 1000000L);
		pthread_cond_timedwait(&p->cv, &p->mu, &until);
	}
	pthread_mutex_unlock(&p->mu);
	join_workers(p);
}

void weft_prehash_stop(weft_prehash *p)
{
	if (!p || !p->w[0].started)
		return;
	pthread_mutex_lock(&p->mu);
	p->quit = true;
	atomic_store(&p->abort, true);
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	join_workers(p);
	drop_queued_locked(p);
}

weft_prehash_stats weft_prehash_get_stats(const weft_prehash *p)
{
	weft_prehash_stats s = {0};
	if (p) {
		s.offered = atomic_load(&p->offered);
		s.known = atomic_load(&p->known);
		s.hashed = atomic_load(&p->hashed);
		s.missed = atomic_load(&p->missed);
		s.dropped = atomic_load(&p->dropped);
		s.bytes = atomic_load(&p->bytes);
	}
	return s;
}

void weft_prehash_free(weft_prehash *p)
{
	if (!p)
		return;
	weft_prehash_stop(p);
	pthread_mutex_destroy(&p->mu);
	pthread_mutex_destroy(&p->memo_mu);
	pthread_cond_destroy(&p->cv);
	free(p->seen);
	free(p->w[0].buf);
	free(p->w[1].buf);
	free(p->memo);
	free(p->cache_path);
	free(p);
}
