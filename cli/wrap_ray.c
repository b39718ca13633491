/*
 * wrap_ray.c - `weft wrap --ray`: the control socket, the cuts at the
 * markers, the windows given to Ray's tasks, and their records (wrap_ray.h
 * says how the pieces fit).
 *
 * Three threads touch this state: the tracer's feeding thread (observe:
 * the cuts, the marks, windows and open arrays; the messages' cut and
 * recorded marks under the lock), the serving thread (appends messages,
 * under the lock) and the recorder (the queue, writers and unrecorded
 * arrays, under the lock; the tasks it takes are its own). wrap_ray_finish
 * runs after all of them are done.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "jsonv.h"
#include "wrap_ray.h"

#define NMARKS 8            /* mark.0 ... mark.7: seq % 8 */
#define MSG_MAX_BYTES 65536 /* one control message */
#define MAX_CONNS 64        /* one per worker process, normally one */
#define ID_BYTES WEFT_MAX_NAME_BYTES

struct msg {
	bool begin; /* else end */
	bool actor; /* kind "actor_task" */
	bool failed;
	int64_t pid, tid; /* the process and thread that ran it */
	uint64_t seq;
	int64_t t_ns;
	long cut;      /* the marker matched to it (index into marks), or -1 */
	bool recorded; /* a begin whose task was recorded when it ended */
	char name[WEFT_MAX_TASK_BYTES / 2];
	char task_id[ID_BYTES], actor_id[ID_BYTES], job_id[ID_BYTES],
		node_id[ID_BYTES], worker_id[ID_BYTES];
};

struct mark {
	pid_t tid;
	int idx; /* which marker file */
};

struct wrap_ray {
	enum wrap_ray_granularity g;
	int verbose;
	char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
	size_t dirlen;
	int listen_fd, wake[2];
	/* The serving thread and what it collects. */
	bool started, start_failed, joined;
	pthread_t thread;
	pthread_mutex_t lock;
	struct msg *msgs;
	size_t nmsgs, capmsgs, bad;
	char bad_reason[160];
	/* The feeding thread's: cut j ends window j (marks[j]). */
	bool ignored;
	struct mark *marks;
	weft_report *windows;
	size_t nmarks, capmarks, cut_failed;
	/* Tasks begun and not yet ended (the feeding thread's), and the
	 * latest cut that ended a task. */
	struct open_task *open;
	size_t nopen, capopen;
	long last_end_cut;
	/* Recording each task when it ends: the recorder thread takes
	 * finished tasks from the queue (under lock), hashes and spools
	 * them. */
	bool record, rec_started, rec_stop, rec_joined, worker_named;
	weft_wrap_env task_env; /* parent: the worker */
	char worker_task[WEFT_MAX_TASK_BYTES + 1];
	char node[WEFT_MAX_NAME_BYTES], backend[WEFT_MAX_NAME_BYTES];
	size_t part_bytes;
	pthread_t recorder;
	pthread_cond_t rec_cv;
	wrap_ray_task **queue;
	size_t qhead, nqueue, capqueue;
	weft_spool_writer **writers;
	size_t nwriters, capwriters;
	wrap_ray_task **unrecorded; /* recording failed: for the caller */
	size_t nunrecorded, capunrecorded, recorded;
	char rec_err[256];
};

struct open_task {
	size_t msg; /* its begin, in msgs */
	struct msg m;
};

int wrap_ray_granularity_parse(const char *text, enum wrap_ray_granularity *g)
{
	if (strcmp(text, "call") == 0)
		*g = WRAP_RAY_PER_CALL;
	else if (strcmp(text, "actor") == 0)
		*g = WRAP_RAY_PER_ACTOR;
	else
		return -1;
	return 0;
}

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- setting up, before the fork ---- */

static void remove_dir(wrap_ray *w)
{
	char p[sizeof(w->dir) + 16];
	if (!w->dir[0])
		return;
	for (int i = 0; i < NMARKS; i++) {
		snprintf(p, sizeof(p), "%s/mark.%d", w->dir, i);
		unlink(p);
	}
	snprintf(p, sizeof(p), "%s/ctl", w->dir);
	unlink(p);
	rmdir(w->dir);
	w->dir[0] = '\0';
}

static int make_dir(wrap_ray *w)
{
	const char *tmp = getenv("TMPDIR");
	/* The socket path must fit sun_path with "/ctl" and the marker
	 * names after it. */
	if (!tmp || tmp[0] != '/' ||
	    strlen(tmp) + sizeof("/weft-ray-XXXXXX/mark.0") > sizeof(w->dir))
		tmp = "/tmp";
	snprintf(w->dir, sizeof(w->dir), "%s/weft-ray-XXXXXX", tmp);
	if (!mkdtemp(w->dir)) {
		cli_error("wrap --ray: cannot make a directory for the control "
			  "socket in %s: %s",
			  tmp, strerror(errno));
		w->dir[0] = '\0';
		return -1;
	}
	w->dirlen = strlen(w->dir);
	char p[sizeof(w->dir) + 16];
	for (int i = 0; i < NMARKS; i++) {
		snprintf(p, sizeof(p), "%s/mark.%d", w->dir, i);
		int fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0) {
			cli_error("wrap --ray: cannot make %s: %s", p,
				  strerror(errno));
			return -1;
		}
		close(fd);
	}
	return 0;
}

static int make_socket(wrap_ray *w)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	int n = snprintf(a.sun_path, sizeof(a.sun_path), "%s/ctl", w->dir);
	if (n < 0 || (size_t)n >= sizeof(a.sun_path)) {
		cli_error("wrap --ray: the control socket path %s/ctl is too "
			  "long",
			  w->dir);
		return -1;
	}
	w->listen_fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (w->listen_fd < 0 ||
	    bind(w->listen_fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
	    listen(w->listen_fd, MAX_CONNS) != 0) {
		cli_error("wrap --ray: cannot listen on %s: %s", a.sun_path,
			  strerror(errno));
		return -1;
	}
	if (pipe2(w->wake, O_CLOEXEC) != 0) {
		w->wake[0] = w->wake[1] = -1;
		cli_error("wrap --ray: cannot make a pipe: %s",
			  strerror(errno));
		return -1;
	}
	if (setenv("WEFT_RAY_CONTROL", a.sun_path, 1) != 0 ||
	    setenv("WEFT_RAY_MARKS", w->dir, 1) != 0) {
		cli_error("wrap --ray: cannot set the worker's environment: %s",
			  strerror(errno));
		return -1;
	}
	return 0;
}

wrap_ray *wrap_ray_new(const wrap_ray_opts *o)
{
	wrap_ray *w = calloc(1, sizeof(*w));
	if (!w) {
		cli_error("out of memory");
		return NULL;
	}
	w->g = o->granularity;
	w->verbose = o->verbose;
	w->listen_fd = w->wake[0] = w->wake[1] = -1;
	w->last_end_cut = -1;
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->rec_cv, NULL);
	if (o->env) {
		w->record = true;
		w->task_env = *o->env;
		snprintf(w->worker_task, sizeof(w->worker_task), "%s",
			 o->worker_task);
		w->worker_named = o->worker_named;
		snprintf(w->node, sizeof(w->node), "%s", o->node);
		snprintf(w->backend, sizeof(w->backend), "%s", o->backend);
		w->part_bytes = o->part_bytes;
	}
	if (make_dir(w) != 0 || make_socket(w) != 0) {
		wrap_ray_free(w);
		return NULL;
	}
	return w;
}

/* ---- the control socket (the serving thread) ---- */

/* A Ray id: letters, digits, '_', '.', '-' kept, anything else '_'. */
static void copy_id(char *out, size_t outsz, const char *in)
{
	size_t i = 0;
	for (; in && in[i] && i + 1 < outsz; i++) {
		char ch = in[i];
		bool ok = (ch >= '0' && ch <= '9') ||
			  (ch >= 'a' && ch <= 'z') ||
			  (ch >= 'A' && ch <= 'Z') || strchr("_.-", ch);
		out[i] = ok ? ch : '_';
	}
	out[i] = '\0';
}

/* A name for people: control characters and spaces become '_'; a name
 * cut short loses its last, partial UTF-8 sequence. */
static void copy_name(char *out, size_t outsz, const char *in)
{
	size_t i = 0;
	for (; in && in[i] && i + 1 < outsz; i++) {
		unsigned char ch = (unsigned char)in[i];
		out[i] = ch <= ' ' || ch == 0x7f ? '_' : (char)ch;
	}
	if (in && in[i]) {
		size_t k = i;
		while (k > 0 && ((unsigned char)out[k - 1] & 0xc0) == 0x80)
			k--;
		if (k > 0 && ((unsigned char)out[k - 1] & 0xc0) == 0xc0)
			i = k - 1;
	}
	out[i] = '\0';
}

static const char *str_member(const jv *o, const char *key)
{
	const jv *v = jv_get(o, key);
	return v && v->kind == JV_STRING ? v->s : NULL;
}

static bool int_member(const jv *o, const char *key, int64_t *out)
{
	const jv *v = jv_get(o, key);
	if (!v || v->kind != JV_NUMBER)
		return false;
	char *end;
	errno = 0;
	long long n = strtoll(v->s, &end, 10);
	if (errno || *end || n < 0)
		return false;
	*out = n;
	return true;
}

/* One message: NULL when recorded, else why not (the reply). */
static const char *take_message(wrap_ray *w, const char *buf, size_t len)
{
	char err[160];
	jv *o = jv_parse(buf, len, err, sizeof(err));
	if (!o)
		return "err malformed JSON";
	const char *why = NULL;
	struct msg m = {.cut = -1, .t_ns = now_ns()};
	int64_t v = 0, seq = 0;
	const char *event = str_member(o, "event"),
		   *kind = str_member(o, "kind");
	const jv *failed = jv_get(o, "failed");
	if (o->kind != JV_OBJECT)
		why = "err not an object";
	else if (!int_member(o, "v", &v) || v != 1)
		why = "err unsupported version (this wrapper speaks v 1)";
	else if (!event ||
		 (strcmp(event, "begin") != 0 && strcmp(event, "end") != 0))
		why = "err event must be begin or end";
	else if (!int_member(o, "tid", &m.tid) || !int_member(o, "seq", &seq))
		why = "err tid and seq must be numbers";
	if (why) {
		jv_free(o);
		return why;
	}
	m.seq = (uint64_t)seq;
	if (!int_member(o, "pid", &m.pid))
		m.pid = 0;
	m.begin = strcmp(event, "begin") == 0;
	m.actor = kind && strcmp(kind, "actor_task") == 0;
	m.failed = failed && failed->kind == JV_BOOL && failed->b;
	copy_name(m.name, sizeof(m.name), str_member(o, "name"));
	copy_id(m.task_id, sizeof(m.task_id), str_member(o, "task_id"));
	copy_id(m.actor_id, sizeof(m.actor_id), str_member(o, "actor_id"));
	copy_id(m.job_id, sizeof(m.job_id), str_member(o, "job_id"));
	copy_id(m.node_id, sizeof(m.node_id), str_member(o, "node_id"));
	copy_id(m.worker_id, sizeof(m.worker_id), str_member(o, "worker_id"));
	jv_free(o);
	pthread_mutex_lock(&w->lock);
	if (w->nmsgs == w->capmsgs) {
		size_t cap = w->capmsgs ? 2 * w->capmsgs : 64;
		struct msg *p = realloc(w->msgs, cap * sizeof(*p));
		if (!p) {
			pthread_mutex_unlock(&w->lock);
			return "err out of memory";
		}
		w->msgs = p;
		w->capmsgs = cap;
	}
	w->msgs[w->nmsgs++] = m;
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

static void note_bad(wrap_ray *w, const char *why)
{
	pthread_mutex_lock(&w->lock);
	if (!w->bad++)
		snprintf(w->bad_reason, sizeof(w->bad_reason), "%s", why);
	pthread_mutex_unlock(&w->lock);
}

static void *serve(void *arg)
{
	wrap_ray *w = arg;
	char *buf = malloc(MSG_MAX_BYTES);
	int conns[MAX_CONNS];
	size_t nconns = 0;
	struct pollfd p[2 + MAX_CONNS];
	while (buf) {
		p[0] = (struct pollfd){.fd = w->wake[0], .events = POLLIN};
		p[1] = (struct pollfd){.fd = w->listen_fd, .events = POLLIN};
		for (size_t i = 0; i < nconns; i++)
			p[2 + i] = (struct pollfd){.fd = conns[i],
						   .events = POLLIN};
		if (poll(p, 2 + nconns, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[0].revents)
			break;
		for (size_t i = nconns; i-- > 0;) {
			if (!p[2 + i].revents)
				continue;
			ssize_t n = recv(conns[i], buf, MSG_MAX_BYTES,
					 MSG_TRUNC | MSG_DONTWAIT);
			if (n < 0 && (errno == EAGAIN || errno == EINTR))
				continue;
			if (n <= 0) {
				close(conns[i]);
				conns[i] = conns[--nconns];
				continue;
			}
			const char *reply =
				n > MSG_MAX_BYTES
					? "err message too long"
					: take_message(w, buf, (size_t)n);
			if (reply)
				note_bad(w, reply + 4);
			else
				reply = "ok";
			send(conns[i], reply, strlen(reply),
			     MSG_NOSIGNAL | MSG_DONTWAIT);
		}
		if (p[1].revents & POLLIN) {
			int c = accept4(w->listen_fd, NULL, NULL, SOCK_CLOEXEC);
			if (c >= 0 && nconns < MAX_CONNS)
				conns[nconns++] = c;
			else if (c >= 0)
				close(c);
		}
	}
	for (size_t i = 0; i < nconns; i++)
		close(conns[i]);
	free(buf);
	return NULL;
}

/* ---- the cuts (the feeding thread) ---- */

static bool is_marker(const wrap_ray *w, const char *path, int *idx)
{
	if (strncmp(path, w->dir, w->dirlen) != 0 ||
	    strncmp(path + w->dirlen, "/mark.", 6) != 0)
		return false;
	const char *d = path + w->dirlen + 6;
	if (d[0] < '0' || d[0] >= '0' + NMARKS || d[1])
		return false;
	*idx = d[0] - '0';
	return true;
}

static void task_marked(wrap_ray *w, size_t j);
static void *record_tasks(void *arg);

void wrap_ray_observe(void *arg, weft_classifier *c, const weft_event *ev)
{
	wrap_ray *w = arg;
	if (!w->started && !w->start_failed) {
		/* The workload exists: threads are safe from here on. */
		if (pthread_create(&w->thread, NULL, serve, w) == 0)
			w->started = true;
		else
			w->start_failed = true;
		/* Without the recorder, tasks are recorded at the end. */
		if (w->record &&
		    pthread_create(&w->recorder, NULL, record_tasks, w) == 0)
			w->rec_started = true;
		else
			w->record = false;
	}
	if (!w->ignored) {
		w->ignored = true;
		weft_classifier_ignore_prefix(c, w->dir);
	}
	int idx;
	if (ev->kind != WEFT_EV_OPEN || ev->ret < 0 || !ev->path ||
	    !is_marker(w, ev->path, &idx))
		return;
	if (w->nmarks == w->capmarks) {
		size_t cap = w->capmarks ? 2 * w->capmarks : 64;
		struct mark *m = realloc(w->marks, cap * sizeof(*m));
		if (m)
			w->marks = m;
		weft_report *r =
			m ? realloc(w->windows, cap * sizeof(*r)) : NULL;
		if (r)
			w->windows = r;
		if (!m || !r) {
			w->cut_failed++;
			return;
		}
		w->capmarks = cap;
	}
	weft_report *win = &w->windows[w->nmarks];
	weft_report_init(win);
	if (weft_classifier_cut(c, win) != WEFT_OK)
		w->cut_failed++;
	w->marks[w->nmarks++] = (struct mark){.tid = ev->pid, .idx = idx};
	task_marked(w, w->nmarks - 1);
}

/* ---- after the run: windows to tasks ---- */

static void stop(wrap_ray *w)
{
	if (w->started && !w->joined) {
		char b = 1;
		if (write(w->wake[1], &b, 1) != 1)
			pthread_cancel(w->thread);
		pthread_join(w->thread, NULL);
		w->joined = true;
	}
	if (w->rec_started && !w->rec_joined) {
		pthread_mutex_lock(&w->lock);
		w->rec_stop = true;
		pthread_cond_broadcast(&w->rec_cv);
		pthread_mutex_unlock(&w->lock);
		pthread_join(w->recorder, NULL);
		w->rec_joined = true;
	}
}

/* Messages in thread order: indexes sorted by (tid, arrival). */
static const struct msg *sort_base;

static int by_tid(const void *a, const void *b)
{
	size_t x = *(const size_t *)a, y = *(const size_t *)b;
	int64_t tx = sort_base[x].tid, ty = sort_base[y].tid;
	if (tx != ty)
		return tx < ty ? -1 : 1;
	return (x > y) - (x < y);
}

/* A task (or an actor's calls) and the windows it covers. */
struct range {
	size_t from, to; /* windows [from, to] */
};

struct group {
	char key[2 * ID_BYTES + 32];
	size_t first; /* the begin message that named it */
	struct range *ranges;
	size_t nranges;
	int64_t started, ended;
	bool failed, unfinished;
	bool done; /* recorded when it ended: its windows are not the
		      worker's, nothing more to do */
	size_t calls;
};

struct fref {
	const weft_file_rec *f;
	size_t win;
};

static int fref_cmp(const void *a, const void *b)
{
	const struct fref *x = a, *y = b;
	int r = strcmp(x->f->path, y->f->path);
	if (r)
		return r;
	return (x->win > y->win) - (x->win < y->win);
}

static const weft_report *window(const wrap_ray *w, const weft_report *last,
				 size_t i)
{
	return i < w->nmarks ? &w->windows[i] : last;
}

/* The files of the windows refs point at, one record per path (what a
 * path did in any of them), copied into out. */
static int merge_files(weft_report *out, struct fref *refs, size_t n)
{
	qsort(refs, n, sizeof(*refs), fref_cmp);
	for (size_t i = 0; i < n;) {
		size_t j = i + 1;
		while (j < n && strcmp(refs[j].f->path, refs[i].f->path) == 0)
			j++;
		weft_file_rec *r = weft_report_add_file(out);
		if (!r)
			return out->nfiles < WEFT_MAX_FILES ? WEFT_ENOMEM
							    : WEFT_OK;
		r->path = strdup(refs[i].f->path);
		if (!r->path)
			return WEFT_ENOMEM;
		for (size_t k = i; k < j; k++) {
			const weft_file_rec *f = refs[k].f;
			r->read |= f->read;
			r->written |= f->written;
			r->created |= f->created;
			/* Gone is what the last window left. */
			r->deleted = f->deleted;
			if (f->renamed_to && !r->renamed_to &&
			    !(r->renamed_to = strdup(f->renamed_to)))
				return WEFT_ENOMEM;
			if (f->has_first_stat && !r->has_first_stat) {
				r->has_first_stat = true;
				r->first_dev = f->first_dev;
				r->first_ino = f->first_ino;
				r->first_size = f->first_size;
				r->first_mtime_ns = f->first_mtime_ns;
			}
		}
		i = j;
	}
	return WEFT_OK;
}

/* Every file record of the windows for which pick says yes. */
static int collect(const wrap_ray *w, const weft_report *last, size_t nwin,
		   const bool *pick, weft_report *out)
{
	size_t n = 0;
	for (size_t i = 0; i < nwin; i++)
		if (pick[i])
			n += window(w, last, i)->nfiles;
	struct fref *refs = calloc(n ? n : 1, sizeof(*refs));
	if (!refs)
		return WEFT_ENOMEM;
	n = 0;
	for (size_t i = 0; i < nwin; i++) {
		const weft_report *r = window(w, last, i);
		for (size_t k = 0; pick[i] && k < r->nfiles; k++)
			refs[n++] = (struct fref){&r->files[k], i};
	}
	int err = merge_files(out, refs, n);
	free(refs);
	return err;
}

/* Every file record of the windows of ranges. */
static int collect_ranges(const wrap_ray *w, const weft_report *last,
			  const struct range *ranges, size_t nranges,
			  weft_report *out)
{
	size_t n = 0;
	for (size_t i = 0; i < nranges; i++)
		for (size_t k = ranges[i].from; k <= ranges[i].to; k++)
			n += window(w, last, k)->nfiles;
	struct fref *refs = calloc(n ? n : 1, sizeof(*refs));
	if (!refs)
		return WEFT_ENOMEM;
	n = 0;
	for (size_t i = 0; i < nranges; i++)
		for (size_t k = ranges[i].from; k <= ranges[i].to; k++) {
			const weft_report *r = window(w, last, k);
			for (size_t f = 0; f < r->nfiles; f++)
				refs[n++] = (struct fref){&r->files[f], k};
		}
	int err = merge_files(out, refs, n);
	free(refs);
	return err;
}

static void group_key(const wrap_ray *w, const struct msg *m, char *key,
		      size_t keysz)
{
	if (w->g == WRAP_RAY_PER_ACTOR && m->actor && m->actor_id[0])
		snprintf(key, keysz, "a:%s", m->actor_id);
	else if (m->task_id[0])
		snprintf(key, keysz, "t:%s", m->task_id);
	else /* a task_scope outside Ray: one per scope */
		snprintf(key, keysz, "s:%lld:%llu", (long long)m->tid,
			 (unsigned long long)m->seq);
}

/* Groups by key: open addressing over indexes into the groups array
 * (slots hold index + 1; 0 is free), at most half full. */
struct group_index {
	size_t *slots;
	size_t nslots;
};

static size_t key_hash(const char *key)
{
	uint64_t h = 1469598103934665603u; /* FNV-1a */
	for (; *key; key++)
		h = (h ^ (unsigned char)*key) * 1099511628211u;
	return (size_t)h;
}

/* The group of key, or a new one appended to g (which has room). */
static struct group *group_for(struct group *g, size_t *ng,
			       struct group_index *ix, const char *key)
{
	size_t i = key_hash(key) & (ix->nslots - 1);
	for (; ix->slots[i]; i = (i + 1) & (ix->nslots - 1))
		if (strcmp(g[ix->slots[i] - 1].key, key) == 0)
			return &g[ix->slots[i] - 1];
	struct group *t = &g[(*ng)++];
	snprintf(t->key, sizeof(t->key), "%s", key);
	ix->slots[i] = *ng;
	return t;
}

/* Where a task whose end marker was not seen ends: before the next cut
 * its thread made, else at the end of the run. */
static size_t open_end(const wrap_ray *w, const struct msg *s, size_t nwin)
{
	for (size_t j = (size_t)s->cut + 1; j < w->nmarks; j++)
		if (w->marks[j].tid == s->tid)
			return j;
	return nwin - 1;
}

/* Task s (a begin) ended with m (NULL: never ended): its windows go to
 * its group. */
static int close_task(const wrap_ray *w, const struct msg *s,
		      const struct msg *m, size_t nwin, struct group *g,
		      size_t *ng, struct group_index *ix, size_t *unseen)
{
	if (s->cut < 0) {
		++*unseen;
		return WEFT_OK;
	}
	char key[sizeof(g->key)];
	if (s->recorded)
		snprintf(key, sizeof(key), "d:%zu", (size_t)(s - w->msgs));
	else
		group_key(w, s, key, sizeof(key));
	size_t before = *ng;
	struct group *t = group_for(g, ng, ix, key);
	if (*ng != before) {
		t->first = (size_t)(s - w->msgs);
		t->started = s->t_ns;
	}
	struct range *r = realloc(t->ranges, (t->nranges + 1) * sizeof(*r));
	if (!r)
		return WEFT_ENOMEM;
	t->ranges = r;
	size_t to = m && m->cut >= 0 ? (size_t)m->cut : open_end(w, s, nwin);
	r[t->nranges++] = (struct range){(size_t)s->cut + 1, to};
	t->calls++;
	if (s->t_ns < t->started)
		t->started = s->t_ns;
	int64_t end = m ? m->t_ns : now_ns();
	if (end > t->ended)
		t->ended = end;
	t->failed |= m && m->failed;
	t->unfinished |= !m;
	t->done = s->recorded;
	return WEFT_OK;
}

/* Pair each thread's begins and ends (a stack: task_scope may nest) into
 * groups with window ranges. */
static int pair(wrap_ray *w, const size_t *order, size_t nwin,
		struct group **out, size_t *nout, size_t *unseen)
{
	size_t n = w->nmsgs, ng = 0;
	struct group *g = calloc(n ? n : 1, sizeof(*g));
	size_t *stack = calloc(n ? n : 1, sizeof(*stack));
	struct group_index ix = {.nslots = 16};
	while (ix.nslots < 2 * n)
		ix.nslots *= 2;
	ix.slots = calloc(ix.nslots, sizeof(*ix.slots));
	int err = g && stack && ix.slots ? WEFT_OK : WEFT_ENOMEM;
	for (size_t b = 0; !err && b < n;) {
		size_t e = b, depth = 0;
		while (e < n && w->msgs[order[e]].tid == w->msgs[order[b]].tid)
			e++;
		for (size_t k = b; !err && k < e; k++) {
			const struct msg *m = &w->msgs[order[k]];
			if (m->begin) {
				stack[depth++] = order[k];
				continue;
			}
			if (!depth)
				continue; /* an end without its begin */
			const struct msg *s = &w->msgs[stack[depth - 1]];
			if (s->task_id[0] && m->task_id[0] &&
			    strcmp(s->task_id, m->task_id) != 0)
				continue; /* not its end */
			depth--;
			err = close_task(w, s, m, nwin, g, &ng, &ix, unseen);
		}
		while (!err && depth)
			err = close_task(w, &w->msgs[stack[--depth]], NULL,
					 nwin, g, &ng, &ix, unseen);
		b = e;
	}
	free(stack);
	free(ix.slots);
	if (err) {
		for (size_t i = 0; g && i < ng; i++)
			free(g[i].ranges);
		free(g);
		return err;
	}
	*out = g;
	*nout = ng;
	return WEFT_OK;
}

static void engine_add(weft_engine_id *e, uint32_t *n, const char *key,
		       const char *value)
{
	if (!value[0] || *n >= WEFT_MAX_ENGINE_IDS)
		return;
	snprintf(e[*n].key, sizeof(e[*n].key), "%s", key);
	snprintf(e[*n].value, sizeof(e[*n].value), "%s", value);
	++*n;
}

/* The actor's name: "Counter" of "Counter.incr". */
static void actor_name(char *out, size_t outsz, const char *method)
{
	const char *dot = strrchr(method, '.');
	int len = dot ? (int)(dot - method) : (int)strlen(method);
	snprintf(out, outsz, "%.*s", len, method);
}

/* What a task (or an actor's calls) is: t filled for the task first
 * names, covering ranges. */
struct task_facts {
	const struct msg *first;
	bool per_actor, failed, unfinished, shared;
	size_t calls;
	int64_t started, ended;
	const char *node, *backend;
};

static int build_task(const wrap_ray *w, const struct task_facts *f,
		      const struct range *ranges, size_t nranges,
		      const weft_report *last, wrap_ray_task *t)
{
	const struct msg *m = f->first;
	memset(t, 0, sizeof(*t));
	weft_report_init(&t->report);
	const char *job = m->job_id[0] ? m->job_id : "nojob";
	if (f->per_actor) {
		snprintf(t->id, sizeof(t->id), "ray.%s.actor.%s@%s", job,
			 m->actor_id, f->node);
		actor_name(t->name, sizeof(t->name),
			   m->name[0] ? m->name : "actor");
	} else {
		if (m->task_id[0])
			snprintf(t->id, sizeof(t->id), "ray.%s.%s@%s", job,
				 m->task_id, f->node);
		else
			snprintf(t->id, sizeof(t->id), "ray.%s.%s.%lld.%llu@%s",
				 job, m->worker_id[0] ? m->worker_id : "w",
				 (long long)m->tid, (unsigned long long)m->seq,
				 f->node);
		snprintf(t->name, sizeof(t->name), "%s",
			 m->name[0] ? m->name : "task");
	}
	engine_add(t->engine, &t->nengine, "ray_job", m->job_id);
	if (!f->per_actor)
		engine_add(t->engine, &t->nengine, "ray_task", m->task_id);
	engine_add(t->engine, &t->nengine, "ray_actor", m->actor_id);
	engine_add(t->engine, &t->nengine, "ray_worker", m->worker_id);
	engine_add(t->engine, &t->nengine, "ray_node", m->node_id);
	engine_add(t->engine, &t->nengine, "ray_kind",
		   m->actor ? "actor_task" : "task");
	/* Where it ran: the worker's process and the thread (the first
	 * call's, for an actor's record). */
	char num[24];
	snprintf(num, sizeof(num), "%lld", (long long)m->pid);
	engine_add(t->engine, &t->nengine, "pid", m->pid ? num : "");
	snprintf(num, sizeof(num), "%lld", (long long)m->tid);
	engine_add(t->engine, &t->nengine, "tid", num);

	weft_report *r = &t->report;
	weft_uuid_new(r->run_id);
	snprintf(r->backend, sizeof(r->backend), "%s", f->backend);
	snprintf(r->node, sizeof(r->node), "%s", f->node);
	r->started_ns = f->started;
	r->ended_ns = f->ended;
	r->exit_code = f->failed || f->unfinished ? 1 : 0;
	int err = collect_ranges(w, last, ranges, nranges, r);
	if (f->per_actor && f->calls > 1)
		weft_report_warn(r,
				 "%zu calls of actor %s recorded as one "
				 "task (ray actor granularity 'actor')",
				 f->calls, m->actor_id);
	if (f->shared)
		weft_report_warn(r, "ran at the same time as other tasks of "
				    "its worker process: its records include "
				    "what they did meanwhile");
	if (f->unfinished)
		weft_report_warn(r, "did not end before its worker exited");
	else if (f->failed)
		weft_report_warn(r, "raised an exception");
	return err;
}

static int make_task(const wrap_ray *w, const struct group *g,
		     const weft_report *worker, const char *node,
		     const weft_report *last, const int *owners,
		     wrap_ray_task *t)
{
	struct task_facts f = {
		.first = &w->msgs[g->first],
		.per_actor = g->key[0] == 'a',
		.failed = g->failed,
		.unfinished = g->unfinished,
		.calls = g->calls,
		.started = g->started,
		.ended = g->ended,
		.node = node,
		.backend = worker->backend,
	};
	for (size_t i = 0; i < g->nranges; i++)
		for (size_t k = g->ranges[i].from; k <= g->ranges[i].to; k++)
			f.shared |= owners[k] > 1;
	return build_task(w, &f, g->ranges, g->nranges, last, t);
}

/* ---- recording each task when it ends ---- */

/* Ray's ids name the worker when its environment did not: the first
 * message that has them (the same rule for tasks recorded during the run
 * and at the end). */
static const struct msg *naming_msg(const wrap_ray *w)
{
	for (size_t i = 0; i < w->nmsgs; i++)
		if (w->msgs[i].job_id[0] && w->msgs[i].worker_id[0])
			return &w->msgs[i];
	return NULL;
}

/* Hash and spool one task (the recorder thread, without the lock). */
static int record_one(const wrap_ray *w, const char *parent, wrap_ray_task *t,
		      weft_spool_writer **out, char *err, size_t errsz)
{
	int e = weft_report_hash_files(NULL, &t->report);
	if (e != WEFT_OK)
		weft_report_warn(&t->report, "hashing incomplete: %s",
				 weft_strerror(e));
	weft_wrap_identity id = {.source = "ray"};
	snprintf(id.task, sizeof(id.task), "%s", t->id);
	snprintf(id.node, sizeof(id.node), "%s", w->node);
	memcpy(id.engine, t->engine, sizeof(id.engine));
	id.nengine = t->nengine;
	weft_wrap_env env = w->task_env;
	snprintf(env.parent, sizeof(env.parent), "%s", parent);
	char preflight[128];
	snprintf(preflight, sizeof(preflight), "%s: preflight passed",
		 w->backend);
	weft_wrap_run run = {
		.env = &env,
		.id = &id,
		.name = t->name,
		.preflight = preflight,
		.part_bytes = w->part_bytes,
	};
	size_t nfrag;
	return weft_wrap_record(&run, &t->report, out, &nfrag, err, errsz);
}

static bool push_ptr(void ***v, size_t *n, size_t *cap, void *p)
{
	if (*n == *cap) {
		size_t c = *cap ? 2 * *cap : 16;
		void **nv = realloc(*v, c * sizeof(*nv));
		if (!nv)
			return false;
		*v = nv;
		*cap = c;
	}
	(*v)[(*n)++] = p;
	return true;
}

static void *record_tasks(void *arg)
{
	wrap_ray *w = arg;
	char err[256], parent[sizeof(w->worker_task)];
	pthread_mutex_lock(&w->lock);
	for (;;) {
		while (w->qhead == w->nqueue && !w->rec_stop)
			pthread_cond_wait(&w->rec_cv, &w->lock);
		if (w->qhead == w->nqueue)
			break;
		wrap_ray_task *t = w->queue[w->qhead++];
		snprintf(parent, sizeof(parent), "%s", w->worker_task);
		pthread_mutex_unlock(&w->lock);
		weft_spool_writer *sw = NULL;
		int rc = record_one(w, parent, t, &sw, err, sizeof(err));
		pthread_mutex_lock(&w->lock);
		if (rc == WEFT_OK &&
		    push_ptr((void ***)&w->writers, &w->nwriters,
			     &w->capwriters, sw)) {
			wrap_ray_tasks_free(t, 1);
			w->recorded++;
			continue;
		}
		if (rc == WEFT_OK) { /* no room to keep the writer */
			weft_spool_writer_close(sw, false);
			snprintf(err, sizeof(err), "out of memory");
		}
		if (!w->rec_err[0])
			snprintf(w->rec_err, sizeof(w->rec_err), "%s", err);
		/* For the caller to record after the run; failing that it is
		 * lost, and said so. */
		if (!push_ptr((void ***)&w->unrecorded, &w->nunrecorded,
			      &w->capunrecorded, t))
			wrap_ray_tasks_free(t, 1);
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

/* Task b ended at cut j: hand its record to the recorder. False when it
 * stays for the end of the run. */
static bool record_now(wrap_ray *w, const struct open_task *b,
		       const struct msg *end, size_t j, bool shared)
{
	struct task_facts f = {
		.first = &b->m,
		.failed = end->failed,
		.shared = shared,
		.calls = 1,
		.started = b->m.t_ns,
		.ended = end->t_ns,
		.node = w->node,
		.backend = w->backend,
	};
	struct range r = {(size_t)b->m.cut + 1, j};
	wrap_ray_task *t = malloc(sizeof(*t));
	if (!t)
		return false;
	if (build_task(w, &f, &r, 1, NULL, t) != WEFT_OK) {
		wrap_ray_tasks_free(t, 1);
		return false;
	}
	pthread_mutex_lock(&w->lock);
	if (!w->worker_named) {
		const struct msg *m = naming_msg(w);
		if (m)
			snprintf(w->worker_task, sizeof(w->worker_task),
				 "ray.%s.%s@%s", m->job_id, m->worker_id,
				 w->node);
		w->worker_named = true;
	}
	bool ok = push_ptr((void ***)&w->queue, &w->nqueue, &w->capqueue, t);
	if (ok) {
		w->msgs[b->msg].recorded = true;
		pthread_cond_signal(&w->rec_cv);
	}
	pthread_mutex_unlock(&w->lock);
	if (!ok)
		wrap_ray_tasks_free(t, 1);
	return ok;
}

/* Marker j was just cut: the message it follows, and when that is an end,
 * its task. The message is there already (the shim opens the marker only
 * after the wrapper answered), but so may be later ones of the thread
 * when the tracer's events come late (eBPF, preload): it is the first of
 * the thread after the last one matched whose seq % 8 is the marker's;
 * those passed over lost their marker. Pairing follows pair()'s rule (the
 * innermost begin of the thread whose task id matches), so the end of the
 * run agrees about what was recorded here. */
static void task_marked(wrap_ray *w, size_t j)
{
	pid_t tid = w->marks[j].tid;
	struct msg m;
	size_t at = SIZE_MAX;
	pthread_mutex_lock(&w->lock);
	size_t from = 0;
	for (size_t i = w->nmsgs; i-- > 0;)
		if (w->msgs[i].tid == tid && w->msgs[i].cut >= 0) {
			from = i + 1;
			break;
		}
	for (size_t i = from; i < w->nmsgs; i++)
		if (w->msgs[i].tid == tid &&
		    w->msgs[i].seq % NMARKS == (uint64_t)w->marks[j].idx) {
			w->msgs[i].cut = (long)j;
			m = w->msgs[i];
			at = i;
			break;
		}
	pthread_mutex_unlock(&w->lock);
	if (at == SIZE_MAX)
		return;
	if (m.begin) {
		if (w->nopen == w->capopen) {
			size_t cap = w->capopen ? 2 * w->capopen : 8;
			struct open_task *o =
				realloc(w->open, cap * sizeof(*o));
			if (!o)
				return; /* the end of the run pairs it */
			w->open = o;
			w->capopen = cap;
		}
		w->open[w->nopen++] = (struct open_task){at, m};
		return;
	}
	size_t k = w->nopen;
	while (k > 0 && w->open[k - 1].m.tid != tid)
		k--;
	if (k == 0)
		return; /* an end without its begin */
	struct open_task b = w->open[k - 1];
	if (b.m.task_id[0] && m.task_id[0] &&
	    strcmp(b.m.task_id, m.task_id) != 0)
		return; /* not its end */
	memmove(&w->open[k - 1], &w->open[k],
		(w->nopen - k) * sizeof(*w->open));
	w->nopen--;
	/* Shared: another task ended inside this one, or is still open and
	 * began before this one ended. */
	bool shared = w->last_end_cut > b.m.cut;
	for (size_t i = 0; i < w->nopen; i++)
		shared |= w->open[i].m.cut < (long)j;
	if ((long)j > w->last_end_cut)
		w->last_end_cut = (long)j;
	if (w->record &&
	    !(w->g == WRAP_RAY_PER_ACTOR && b.m.actor && b.m.actor_id[0]))
		record_now(w, &b, &m, j, shared);
}

int wrap_ray_finish(wrap_ray *w, weft_report *worker, const char *node,
		    bool named_by_engine, char *task_out, size_t task_outsz,
		    weft_engine_id *engine, uint32_t *nengine,
		    wrap_ray_task **tasks, size_t *ntasks,
		    weft_spool_writer ***writers, size_t *nwriters)
{
	*tasks = NULL;
	*ntasks = 0;
	stop(w);
	/* What the recorder spooled is the caller's now. */
	*writers = w->writers;
	*nwriters = w->nwriters;
	w->writers = NULL;
	w->nwriters = w->capwriters = 0;
	/* Ray's ids name the worker when its environment did not. */
	const struct msg *m = named_by_engine ? NULL : naming_msg(w);
	if (m) {
		snprintf(task_out, task_outsz, "ray.%s.%s@%s", m->job_id,
			 m->worker_id, node);
		engine_add(engine, nengine, "ray_job", m->job_id);
		engine_add(engine, nengine, "ray_worker", m->worker_id);
		engine_add(engine, nengine, "ray_node", m->node_id);
	}
	if (w->rec_err[0])
		weft_report_warn(worker,
				 "recording a Ray task when it ended failed "
				 "(first: %s); recorded after the worker "
				 "exited instead",
				 w->rec_err);
	if (w->bad)
		weft_report_warn(worker,
				 "%zu control messages from the Ray shim were "
				 "refused (first: %s)",
				 w->bad, w->bad_reason);
	if (w->cut_failed)
		weft_report_warn(worker,
				 "%zu task boundaries could not be cut (out of "
				 "memory): those tasks' I/O is in the worker's "
				 "record",
				 w->cut_failed);
	if (w->start_failed)
		weft_report_warn(worker, "the Ray control socket was not "
					 "served: the worker is recorded "
					 "whole");
	if (!w->nmsgs)
		return 0;

	/* The last window is what cli_trace_run left in worker->files. */
	weft_report last;
	weft_report_init(&last);
	last.files = worker->files;
	last.nfiles = worker->nfiles;
	worker->files = NULL;
	worker->nfiles = 0;
	size_t nwin = w->nmarks + 1, n = w->nmsgs, ng = 0, unseen = 0;
	size_t *order = malloc(n * sizeof(*order));
	int *owners = calloc(nwin, sizeof(*owners));
	bool *mine = calloc(nwin, sizeof(*mine));
	struct group *g = NULL;
	int err = order && owners && mine ? WEFT_OK : WEFT_ENOMEM;
	if (!err) {
		/* Markers were matched to messages as they came. */
		for (size_t i = 0; i < n; i++)
			order[i] = i;
		sort_base = w->msgs;
		qsort(order, n, sizeof(*order), by_tid);
		err = pair(w, order, nwin, &g, &ng, &unseen);
	}
	for (size_t i = 0; !err && i < ng; i++)
		for (size_t r = 0; r < g[i].nranges; r++)
			for (size_t k = g[i].ranges[r].from;
			     k <= g[i].ranges[r].to; k++)
				owners[k]++;
	wrap_ray_task *t = NULL;
	size_t room = ng + w->nunrecorded;
	if (!err && room && !(t = calloc(room, sizeof(*t))))
		err = WEFT_ENOMEM;
	size_t made = 0;
	for (size_t i = 0; !err && i < ng; i++)
		if (!g[i].done)
			err = make_task(w, &g[i], worker, node, &last, owners,
					&t[made++]);
	/* Those the recorder could not spool: recorded by the caller. */
	for (size_t i = 0; !err && i < w->nunrecorded; i++) {
		t[made++] = *w->unrecorded[i];
		free(w->unrecorded[i]);
		w->unrecorded[i] = NULL;
	}
	if (!err)
		w->nunrecorded = 0;
	if (err == WEFT_OK) {
		for (size_t k = 0; k < nwin; k++)
			mine[k] = owners[k] == 0;
		err = collect(w, &last, nwin, mine, worker);
	}
	if (!err && unseen)
		weft_report_warn(
			worker,
			"%zu Ray tasks' boundaries were not seen by the "
			"tracer: their I/O is in this worker's record",
			unseen);
	for (size_t i = 0; i < ng; i++)
		free(g[i].ranges);
	free(g);
	free(order);
	free(owners);
	free(mine);
	if (err) {
		/* Whole again: every window back into the worker. */
		wrap_ray_tasks_free(t, made);
		bool *all = malloc(nwin * sizeof(*all));
		for (size_t k = 0; all && k < nwin; k++)
			all[k] = true;
		for (size_t i = 0; i < worker->nfiles; i++)
			weft_file_rec_release(&worker->files[i]);
		free(worker->files);
		worker->files = NULL;
		worker->nfiles = 0;
		if (!all || collect(w, &last, nwin, all, worker) != WEFT_OK) {
			weft_report_warn(worker, "out of memory: file records "
						 "lost");
		}
		free(all);
		weft_report_release(&last);
		cli_error("wrap --ray: cannot cut the worker's run into "
			  "tasks: %s; it is recorded whole",
			  weft_strerror(err));
		return -1;
	}
	weft_report_release(&last);
	if (w->verbose)
		fprintf(stderr,
			"weft: wrap --ray: %zu task%s (%zu recorded as they "
			"ended), %zu boundaries seen, %zu control messages\n",
			made + w->recorded, made + w->recorded == 1 ? "" : "s",
			w->recorded, w->nmarks, w->nmsgs);
	*tasks = t;
	*ntasks = made;
	return 0;
}

void wrap_ray_tasks_free(wrap_ray_task *tasks, size_t n)
{
	for (size_t i = 0; tasks && i < n; i++)
		weft_report_release(&tasks[i].report);
	free(tasks);
}

void wrap_ray_free(wrap_ray *w)
{
	if (!w)
		return;
	stop(w);
	if (w->listen_fd >= 0)
		close(w->listen_fd);
	for (int i = 0; i < 2; i++)
		if (w->wake[i] >= 0)
			close(w->wake[i]);
	remove_dir(w);
	for (size_t i = 0; i < w->nmarks; i++)
		weft_report_release(&w->windows[i]);
	free(w->windows);
	free(w->marks);
	free(w->msgs);
	free(w->open);
	for (size_t i = w->qhead; i < w->nqueue; i++)
		wrap_ray_tasks_free(w->queue[i], 1);
	free(w->queue);
	for (size_t i = 0; i < w->nunrecorded; i++)
		wrap_ray_tasks_free(w->unrecorded[i], 1);
	free(w->unrecorded);
	for (size_t i = 0; i < w->nwriters; i++)
		weft_spool_writer_close(w->writers[i], false);
	free(w->writers);
	pthread_cond_destroy(&w->rec_cv);
	pthread_mutex_destroy(&w->lock);
	free(w);
}

/* ---- In-cluster ---- */

#define RAY_CURRENT_CLUSTER "/tmp/ray/ray_current_cluster"

bool wrap_ray_detect(char *why, size_t whysz)
{
	const char *addr = getenv("RAY_ADDRESS");
	if (addr && *addr) {
		snprintf(why, whysz, "RAY_ADDRESS is set");
		return true;
	}
	if (access(RAY_CURRENT_CLUSTER, F_OK) == 0) {
		snprintf(why, whysz, "this node runs Ray (%s)",
			 RAY_CURRENT_CLUSTER);
		return true;
	}
	why[0] = '\0';
	return false;
}

/* Whether dir is an entry of the colon-separated list. */
static bool in_path_list(const char *list, const char *dir)
{
	size_t n = strlen(dir);
	for (const char *p = list; p && *p;) {
		const char *colon = strchrnul(p, ':');
		if ((size_t)(colon - p) == n && strncmp(p, dir, n) == 0)
			return true;
		p = *colon ? colon + 1 : colon;
	}
	return false;
}

int wrap_ray_driver_env(const char *python_path, const char *weft_binary)
{
	const char *hook = getenv("RAY_RUNTIME_ENV_HOOK");
	const char *chained = getenv("WEFT_RAY_USER_ENV_HOOK");
	bool user_hook = hook && *hook && strcmp(hook, WRAP_RAY_ENV_HOOK) != 0;
	if (user_hook && chained && *chained && strcmp(chained, hook) != 0) {
		cli_error("RAY_RUNTIME_ENV_HOOK=%s and "
			  "WEFT_RAY_USER_ENV_HOOK=%s: weft runs one hook of "
			  "yours before its own (%s), not two; unset one of "
			  "them; the command was not started",
			  hook, chained, WRAP_RAY_ENV_HOOK);
		return -1;
	}
	const char *old = getenv("PYTHONPATH");
	char *path = NULL;
	if (!old || !*old) {
		path = strdup(python_path);
	} else if (!in_path_list(old, python_path)) {
		size_t n = strlen(python_path) + strlen(old) + 2;
		if ((path = malloc(n)))
			snprintf(path, n, "%s:%s", python_path, old);
	}
	const char *bin = getenv("WEFT_BIN");
	int rc = 0;
	if ((user_hook && setenv("WEFT_RAY_USER_ENV_HOOK", hook, 1) != 0) ||
	    setenv("RAY_RUNTIME_ENV_HOOK", WRAP_RAY_ENV_HOOK, 1) != 0 ||
	    (path && setenv("PYTHONPATH", path, 1) != 0) ||
	    ((!bin || !*bin) && strcmp(weft_binary, "weft") != 0 &&
	     setenv("WEFT_BIN", weft_binary, 1) != 0)) {
		cli_error("cannot set the Ray driver's environment: %s",
			  strerror(errno));
		rc = -1;
	}
	free(path);
	return rc;
}
