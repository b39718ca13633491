/*
 * local.c - `weft run`'s storing: the distributed path in one process (a
 * coordinator over the project's store, a job, the wrapper's
 * record/spool/delivery, the job's end), and the run's live OpenLineage
 * START before launch.
 *
 * The coordinator listens on nothing: it is named inproc://weft-run-ID,
 * and the wrapper's client of that URL hands each request to
 * weft_coordinator_handle (the same bytes, handler, batch and reply as over
 * nng). nng would start a dozen threads and a socket per request for one
 * caller in the same process: 1.5-2 ms of a short run.
 *
 * The coordinator's start and the job's creation (its first commit, with
 * the WAL's sync) do not wait for the workload: a thread does them while
 * the tracer launches it, so a short run does not pay them after its
 * end (unless an OpenLineage destination is set: see weft_local_begin).
 * That thread and every thread it starts (the store writer's, the
 * replier's) block all signals: the tracer's SIGCHLD and the SIGTERM it
 * forwards go to the thread that expects them. None of them forks.
 *
 * The store's checkpoint at the end is not waited for: the coordinator
 * closes its connection with the log kept, and weft_store_checkpoint_behind
 * syncs the log and leaves the copy into weft.db to a process of its own.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include <weft/local.h>

/* The coordinator is in this process: a delivery that takes longer than
 * this is a bug or a full disk, not a network. */
#define LOCAL_SHIP_TIMEOUT_MS 60000
/* The directory of the marks of jobs whose run is live (local.h). */
#define LOCAL_LIVE_DIR "live"
/* The lock held (shared) by every process storing a run after its `weft
 * run` exited (local.h, weft_local_wait_stored). */
#define LOCAL_STORING_NAME "storing"
/* How long weft_local_wait_stored waits, and when it says so. */
#define LOCAL_STORING_WAIT_MS 120000
#define LOCAL_STORING_SAY_MS 1000

struct weft_local {
	pthread_t thread;
	char db[WEFT_MAX_PATH_BYTES + 32];
	weft_wrap_env env;
	weft_job_info job; /* a copy; command borrowed from the caller's */
	weft_coordinator_opts co;
	uint8_t submit_key[WEFT_SUBMIT_KEY_BYTES];
	int verbose;
	bool threaded; /* begin_main runs beside the workload */
	bool behind;   /* weft_local_opts.behind, and threaded */
	char dir[WEFT_MAX_PATH_BYTES + 16]; /* the project's .weft */
	/* Set by begin_main: */
	weft_coordinator *c; /* NULL when it could not start */
	int job_rc;          /* 0: the job is stored */
	/* The job's mark (weft_local_job_state_of), locked while fd >= 0. */
	char live[WEFT_MAX_PATH_BYTES + 64];
	int live_fd;
	/* weft_local_beside's work, and its thread while it runs. */
	void (*beside)(void *);
	void *beside_arg;
	pthread_t beside_thread;
	bool beside_started;
};

/* The mark of job_id in weft_dir (local.h) into path (for "", their
 * directory); false when too long. */
static bool live_path(const char *weft_dir, const char *job_id, char *path,
		      size_t size)
{
	return snprintf(path, size, "%s/" LOCAL_LIVE_DIR "/%s", weft_dir,
			job_id) < (int)size;
}

/* Mark l's job as running (local.h): its file, locked by this process
 * until end. Without it (a read-only directory) a killed run's job
 * shows only as open. The lock file is close-on-exec: the workload does
 * not hold it, so it marks weft's own life. */
static void live_mark(weft_local *l, const char *weft_dir)
{
	char dir[sizeof(l->live)];
	l->live_fd = -1;
	if (!live_path(weft_dir, "", dir, sizeof(dir)) ||
	    !live_path(weft_dir, l->job.id, l->live, sizeof(l->live)))
		return;
	if (mkdir(dir, 0700) != 0 && errno != EEXIST)
		return;
	int fd = open(l->live, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return;
	/* Blocking: a `weft status` holds it shared for a moment. */
	while (flock(fd, LOCK_EX) != 0)
		if (errno != EINTR) {
			close(fd);
			unlink(l->live);
			return;
		}
	l->live_fd = fd;
}

/* The job ended (or was never stored): no mark; else the mark stays,
 * unlocked, and says the job was interrupted. */
static void live_unmark(weft_local *l, bool job_open)
{
	if (l->live_fd < 0)
		return;
	if (!job_open)
		unlink(l->live);
	close(l->live_fd);
	l->live_fd = -1;
}

weft_local_job_state weft_local_job_state_of(const char *weft_dir,
					     const char *job_id)
{
	char path[WEFT_MAX_PATH_BYTES + 64];
	if (weft_job_id_check(job_id) != WEFT_OK ||
	    !live_path(weft_dir, job_id, path, sizeof(path)))
		return WEFT_LOCAL_JOB_UNMARKED;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return WEFT_LOCAL_JOB_UNMARKED;
	weft_local_job_state st = WEFT_LOCAL_JOB_INTERRUPTED;
	if (flock(fd, LOCK_SH | LOCK_NB) != 0)
		st = errno == EWOULDBLOCK ? WEFT_LOCAL_JOB_RUNNING
					  : WEFT_LOCAL_JOB_UNMARKED;
	close(fd); /* and the shared lock with it */
	return st;
}

/* The run's task identity: the engine's when its variables say so, else
 * (also when they are malformed) this host's. */
static void task_identity(weft_wrap_identity *id, const char *host)
{
	char err[1024];
	if (weft_wrap_identity_get(id, NULL, weft_wrap_getenv, host, err,
				   sizeof(err)) != WEFT_OK)
		weft_wrap_identity_get(id, "run", weft_wrap_getenv, host, err,
				       sizeof(err));
}

static int local_call(void *arg, const uint8_t *req, size_t len,
		      uint8_t **reply, size_t *rlen)
{
	return weft_coordinator_handle(arg, req, len, reply, rlen);
}

/* A request to the in-process coordinator; 0 when accepted. */
static int call(const char *url, int encoded, weft_buf *req, const char *what)
{
	int rc = encoded == WEFT_OK
			 ? weft_wrap_coordinator_call(url, NULL, req, what)
			 : -1;
	weft_buf_free(req);
	return rc;
}

/* Start l's coordinator and make it this process's local endpoint; 0, or
 * -1 after saying why (l->c NULL then). */
static int start(weft_local *l)
{
	char err[1024];
	if (weft_coordinator_start(&l->co, &l->c, err, sizeof(err)) !=
	    WEFT_OK) {
		weft_say("cannot start the local coordinator: %s", err);
		l->c = NULL;
		return -1;
	}
	if (weft_wrap_local_endpoint_set(l->env.coordinator, local_call,
					 l->c) != WEFT_OK) {
		weft_say("cannot start the local coordinator: another one "
			 "runs in this process");
		weft_coordinator_stop(l->c);
		l->c = NULL;
		return -1;
	}
	return 0;
}

/* Stop l's coordinator (its threads and its store connection). */
static int stop(weft_local *l)
{
	if (!l->c)
		return 0;
	weft_wrap_local_endpoint_clear();
	int rc = weft_coordinator_stop(l->c) == WEFT_OK ? 0 : -1;
	l->c = NULL;
	return rc;
}

static void *begin_main(void *arg)
{
	weft_local *l = arg;
	l->job_rc = -1;
	/* The user, looked up here beside the workload
	 * (weft_wrap_job_info_sans_user). */
	if (!l->job.user[0])
		weft_wrap_job_user(&l->job);
	if (start(l) != 0)
		return NULL;
	weft_buf req;
	weft_buf_init(&req);
	l->job_rc = call(l->env.coordinator,
			 weft_req_job_create(&l->job, l->submit_key, &req),
			 &req, "recording the run");
	/* To store the run after weft exits, the end forks: no thread and
	 * no store connection may be left then (weft_store_fork_safe). */
	if (l->behind && stop(l) != 0)
		l->behind = false; /* the end starts it again */
	return NULL;
}

/* A local coordinator's settings: the project's store at weft_dir, on
 * inproc://weft-NAME, with a submit key of its own (nobody else reaches
 * an inproc:// coordinator: a key of this process alone, never written
 * down), ol's OpenLineage settings (NULL: none). NULL after saying why. */
static weft_local *local_new(const char *weft_dir, const char *name,
			     const weft_coordinator_opts *ol)
{
	weft_local *l = calloc(1, sizeof(*l));
	if (!l) {
		weft_say("out of memory");
		return NULL;
	}
	l->live_fd = -1;
	snprintf(l->db, sizeof(l->db), "%s/" WEFT_DB_NAME, weft_dir);
	snprintf(l->dir, sizeof(l->dir), "%s", weft_dir);
	snprintf(l->env.coordinator, sizeof(l->env.coordinator),
		 "inproc://weft-%s", name);
	if (snprintf(l->env.spool, sizeof(l->env.spool), "%s/spool",
		     weft_dir) >= (int)sizeof(l->env.spool)) {
		weft_say("the project path %s is too long for its spool "
			 "directory",
			 weft_dir);
		free(l);
		return NULL;
	}
	weft_submit_key_new(l->submit_key);
	if (ol)
		l->co = *ol;
	l->co.listen_url = l->env.coordinator;
	l->co.in_process = true;
	l->co.store_path = l->db;
	l->co.keep_wal = true; /* end: weft_store_checkpoint_behind */
	l->co.submit_key = l->submit_key;
	return l;
}

int weft_local_begin(const weft_local_opts *o, const char *run_id,
		     weft_local **out)
{
	*out = NULL;
	char name[WEFT_MAX_NAME_BYTES + 8];
	snprintf(name, sizeof(name), "run-%s", run_id);
	weft_local *l = local_new(o->weft_dir, name, o->ol);
	if (!l)
		return -1;
	l->job = *o->job;
	/* The run's job begins with the run, now. */
	l->job.created_ns = weft_real_ns();
	memcpy(l->env.job, l->job.id, sizeof(l->env.job));
	snprintf(l->env.token, sizeof(l->env.token), "%s", l->job.token);
	l->verbose = o->verbose;
	live_mark(l, o->weft_dir);

	/* With an OpenLineage destination the run's STARTs are the live
	 * sender's (weft_local_live_start) until the workload ends: a
	 * coordinator running meanwhile would send them a second time. */
	l->threaded = !o->ol->ol_url && !o->ol->ol_file;
	l->behind = o->behind && l->threaded;
	if (!l->threaded) {
		*out = l;
		return 0;
	}
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int e = pthread_create(&l->thread, NULL, begin_main, l);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (e != 0) {
		weft_say("cannot start the local coordinator: %s",
			 strerror(e));
		live_unmark(l, false);
		free(l);
		return -1;
	}
	*out = l;
	return 0;
}

/* The lock every process storing a run after its weft exited holds
 * shared (local.h): an fd holding it, or -1. Made when missing only
 * with create: a reader (root, say, in another user's project) makes
 * no file there. */
static int storing_lock(const char *dir, bool create)
{
	char path[WEFT_MAX_PATH_BYTES + 32];
	if (snprintf(path, sizeof(path), "%s/" LOCAL_STORING_NAME, dir) >=
	    (int)sizeof(path))
		return -1;
	int fd = open(path,
		      (create ? O_RDWR | O_CREAT : O_RDONLY) | O_CLOEXEC |
			      O_NOFOLLOW,
		      0600);
	if (fd < 0)
		return -1;
	/* A reader holds it exclusively only for a moment. */
	while (flock(fd, LOCK_SH) != 0)
		if (errno != EINTR) {
			close(fd);
			return -1;
		}
	return fd;
}

/* After begin_main's work: end the job (when it was created) with
 * exit_code, stop the coordinator, free l; rc, or -1 when any of it
 * failed. */
static int end(weft_local *l, int rc, int exit_code, int64_t ended_ns)
{
	/* Stopped after the job's creation (behind): started again. */
	if (!l->c && l->job_rc == 0 && start(l) != 0)
		rc = -1;
	bool job_open = l->c && l->job_rc == 0;
	if (job_open) {
		weft_buf req;
		weft_buf_init(&req);
		if (call(l->env.coordinator,
			 weft_req_job_end(l->job.id, l->job.token, exit_code,
					  ended_ns, &req),
			 &req, "ending the run's job") != 0)
			rc = -1;
		else
			job_open = false;
	}
	live_unmark(l, job_open);
	bool started = l->c != NULL;
	if (stop(l) != 0)
		rc = -1;
	/* The run is on disk when weft exits; the store's checkpoint
	 * happens after, in a process only readers of the storing lock
	 * wait for (one who removes .weft, say). */
	int err = WEFT_OK;
	if (started) {
		int hold = storing_lock(l->dir, true);
		err = weft_store_checkpoint_behind(l->db, hold);
		if (hold >= 0)
			close(hold);
	}
	if (err) {
		weft_say("cannot sync the store %s to disk: %s", l->db,
			 weft_strerror(err));
		rc = -1;
	}
	sodium_memzero(l->submit_key, sizeof(l->submit_key));
	free(l);
	return rc;
}

/* What begin_main did, done (or waited for). */
static void begun(weft_local *l)
{
	if (l->threaded)
		pthread_join(l->thread, NULL);
	else
		begin_main(l);
}

/* Test hook (tests/run_e2e.py): the storing process, and a reader
 * storing leftovers, wait until the file WEFT_STORE_BEHIND_HOLD names
 * exists (60 s at most), holding the storing lock. */
static void hold_for_tests(void)
{
	const char *hold = getenv("WEFT_STORE_BEHIND_HOLD");
	for (int i = 0; hold && *hold && i < 6000 && access(hold, F_OK) != 0;
	     i++)
		usleep(10000);
}

/* The forked child of behind (weft_detach: nothing of weft's caller
 * kept), holding the storing lock, the spool writer's lock and the job's
 * mark (descriptors it shares with its parent, weft's own): the run
 * stored as weft_local_finish would have, then gone. */
static void behind_child(weft_local *l, const weft_wrap_ship_opts *ship,
			 weft_spool_writer *w, size_t nfrag, int exit_code,
			 int64_t ended_ns, int ready)
{
	weft_detach(ready);
	hold_for_tests();
	weft_wrap_ship_opts s = *ship;
	s.progress = NULL;
	int rc = -1;
	if (start(l) == 0)
		rc = weft_wrap_ship_task(&s, w, nfrag) == 0 ? 0 : -1;
	else
		weft_spool_writer_close(w, false); /* the next run stores it */
	_exit(end(l, rc, exit_code, ended_ns) == 0 ? 0 : 1);
}

/* Store the recorded run w after weft exits, in a forked process: 0 when
 * that process took it over (l freed), -1 when it cannot (l and w are
 * the caller's still). */
static int behind(weft_local *l, const weft_wrap_ship_opts *ship,
		  weft_spool_writer *w, size_t nfrag, int exit_code,
		  int64_t ended_ns)
{
	int ready[2];
	if (l->c || !weft_store_fork_safe())
		return -1;
	int lock = storing_lock(l->dir, true);
	if (lock < 0)
		return -1;
	if (pipe2(ready, O_CLOEXEC) != 0) {
		close(lock);
		return -1;
	}
	pid_t pid = fork();
	if (pid == 0) {
		close(ready[0]);
		behind_child(l, ship, w, nfrag, exit_code, ended_ns, ready[1]);
	}
	close(ready[1]);
	char c;
	/* Its end of the pipe closes once it is in its session. */
	while (pid > 0 && read(ready[0], &c, 1) < 0 && errno == EINTR)
		;
	close(ready[0]);
	close(lock); /* the child's copy holds it */
	if (pid < 0)
		return -1;
	/* The child holds the writer's lock and the job's mark now. */
	weft_spool_writer_close(w, false);
	if (l->live_fd >= 0)
		close(l->live_fd);
	sodium_memzero(l->submit_key, sizeof(l->submit_key));
	free(l);
	return 0;
}

/* Whether the spool holds this run's writer alone: what earlier runs
 * left there is stored with it, and said on stderr (weft_wrap_ship_task),
 * so not after weft exits, where nobody would read it. */
static bool spool_alone(const weft_local *l)
{
	char **names;
	size_t n;
	if (weft_spool_writers(l->env.spool, &names, &n) != WEFT_OK)
		return false;
	weft_spool_names_free(names, n);
	return n == 1;
}

void weft_local_beside(weft_local *l, void (*fn)(void *), void *arg)
{
	l->beside = fn;
	l->beside_arg = arg;
}

static void *beside_main(void *arg)
{
	weft_local *l = arg;
	l->beside(l->beside_arg);
	return NULL;
}

/* weft_local_beside's work started (every signal blocked in its thread:
 * they are the workload's and weft's main thread's), or done now. */
static void beside_start(weft_local *l)
{
	if (!l->beside)
		return;
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	l->beside_started =
		pthread_create(&l->beside_thread, NULL, beside_main, l) == 0;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (!l->beside_started) {
		l->beside(l->beside_arg);
		l->beside = NULL; /* done: not again at beside_end */
	}
}

/* And ended. */
static void beside_end(weft_local *l)
{
	if (l->beside_started)
		pthread_join(l->beside_thread, NULL);
	else if (l->beside)
		l->beside(l->beside_arg);
	l->beside = NULL;
	l->beside_started = false;
}

int weft_local_finish(weft_local *l, const weft_report *r,
		      weft_progress_fn progress, void *progress_arg)
{
	begun(l);
	if (l->job_rc != 0) {
		beside_end(l);
		return end(l, -1, r->exit_code, r->ended_ns);
	}
	weft_wrap_identity id;
	task_identity(&id, r->node);
	weft_wrap_ship_opts ship = {
		.env = &l->env,
		.id = &id,
		.ship_timeout_ms = LOCAL_SHIP_TIMEOUT_MS,
		.local = true,
		.verbose = l->verbose,
		.progress = progress,
		.progress_arg = progress_arg,
	};
	weft_spool_writer *w;
	size_t nfrag;
	int rc = -1;
	beside_start(l);
	int recorded = weft_wrap_record_task(&ship, r, &w, &nfrag);
	beside_end(l);
	if (recorded != 0)
		return end(l, -1, r->exit_code, r->ended_ns);
	/* The run is in the spool, synced: nothing is lost if weft stops
	 * now. */
	if (l->behind && spool_alone(l) &&
	    behind(l, &ship, w, nfrag, r->exit_code, r->ended_ns) == 0)
		return 1;
	if (l->c || start(l) == 0)
		rc = weft_wrap_ship_task(&ship, w, nfrag) == 0 ? 0 : -1;
	else
		weft_spool_writer_close(w, false); /* the next run stores it */
	return end(l, rc, r->exit_code, r->ended_ns);
}

int weft_local_store_left(const char *weft_dir)
{
	char **names, name[32];
	size_t n;
	char spool[WEFT_MAX_PATH_BYTES + 16];
	if (snprintf(spool, sizeof(spool), "%s/spool", weft_dir) >=
		    (int)sizeof(spool) ||
	    weft_spool_writers(spool, &names, &n) != WEFT_OK)
		return -1;
	weft_spool_names_free(names, n);
	if (n == 0)
		return 0;
	/* Held shared while storing, as a run's storing process holds it:
	 * another reader waits for this one (weft_local_wait_stored)
	 * rather than read before the leftovers are stored. (A project
	 * whose runs never stored after exiting has no such file: then
	 * two readers may still race.) */
	int lock = storing_lock(weft_dir, false);
	/* A coordinator of this process's over the project's store, as a
	 * `weft run` starts: a leftover writer's enrolment is signed with
	 * its job's token, which the store knows. */
	snprintf(name, sizeof(name), "left-%ld", (long)getpid());
	weft_local *l = local_new(weft_dir, name, NULL);
	if (!l) {
		if (lock >= 0)
			close(lock);
		return -1;
	}
	weft_wrap_shipper *sh = NULL;
	int rc = -1;
	hold_for_tests();
	if (start(l) == 0 && weft_wrap_shipper_new(NULL, LOCAL_SHIP_TIMEOUT_MS,
						   stderr, &sh) == WEFT_OK)
		rc = weft_wrap_ship_left(sh, l->env.spool,
					 l->env.coordinator) == WEFT_OK
			     ? 0
			     : -1;
	weft_wrap_shipper_free(sh);
	bool started = l->c != NULL;
	if (stop(l) != 0 ||
	    (started && weft_store_checkpoint_behind(l->db, lock) != WEFT_OK))
		rc = -1;
	sodium_memzero(l->submit_key, sizeof(l->submit_key));
	free(l);
	if (lock >= 0)
		close(lock);
	return rc;
}

int weft_local_wait_stored(const char *weft_dir, bool say)
{
	char path[WEFT_MAX_PATH_BYTES + 32];
	if (snprintf(path, sizeof(path), "%s/" LOCAL_STORING_NAME, weft_dir) >=
	    (int)sizeof(path))
		return 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return 0; /* no run was ever stored behind */
	int rc = -1;
	for (int waited = 0; waited <= LOCAL_STORING_WAIT_MS; waited += 10) {
		if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
			rc = 0;
			break;
		}
		if (errno != EWOULDBLOCK && errno != EINTR) {
			rc = 0; /* not a lock anyone can hold */
			break;
		}
		if (say && waited == LOCAL_STORING_SAY_MS)
			weft_say("waiting for an earlier 'weft run' to finish "
				 "storing its run");
		usleep(10000);
	}
	close(fd); /* and the lock with it */
	if (rc != 0)
		weft_say("an earlier 'weft run' is still storing its run "
			 "after %d s; what follows may not show it",
			 LOCAL_STORING_WAIT_MS / 1000);
	return rc;
}

void weft_local_abandon(weft_local *l, int exit_code)
{
	if (!l)
		return;
	if (l->threaded)
		pthread_join(l->thread, NULL);
	beside_end(l);
	end(l, 0, exit_code, weft_real_ns());
}

weft_ol_live *weft_local_live_start(const weft_coordinator_opts *ol,
				    weft_store *store,
				    const weft_job_info *job,
				    const weft_wrap_trace *t,
				    const char *run_id)
{
	char host[WEFT_MAX_NAME_BYTES] = "", err[1024];
	weft_wrap_identity id;
	weft_task_start ts;
	weft_ol_live *live = NULL;
	if (!ol->ol_url && !ol->ol_file)
		return NULL;
	/* The job is stored now, with its user. */
	weft_job_info j = *job;
	if (!j.user[0])
		weft_wrap_job_user(&j);
	gethostname(host, sizeof(host) - 1);
	task_identity(&id, host);
	if (weft_wrap_task_start(j.id, j.token, "", &id, t->cmd,
				 t->backend->name, run_id, &ts) == WEFT_OK &&
	    weft_ol_live_start(ol, store, &j, &ts, &live, err, sizeof(err)) !=
		    WEFT_OK)
		weft_say("%s (the run's events go once it is stored)", err);
	return live;
}
