/*
 * weft/local.h - libweft_local: a local `weft run` as the distributed
 * system in one process (docs/design.md, "One code path, local or
 * distributed"). The coordinator runs in this process on inproc:// over
 * the project's store and the run ships through the wrapper's own
 * record, spool and delivery, so that nothing about storing a run is
 * written twice. It sits above worker-wrap and the coordinator, which do
 * not know each other.
 *
 * begin, then the tracer, then finish (or abandon): the coordinator
 * starts and the job is created while the workload runs.
 */
#ifndef WEFT_LOCAL_H
#define WEFT_LOCAL_H

#include <weft/base.h>
#include <weft/coordinator.h>
#include <weft/store.h>
#include <weft/wrap.h>

/* Where a run is stored. */
typedef struct weft_local_opts {
	const char *weft_dir; /* the project's .weft directory */
	/* The run's job (weft_wrap_job_info); its strings are borrowed
	 * until weft_local_finish or weft_local_abandon. */
	const weft_job_info *job;
	/* OpenLineage destination settings, or all zero for none. */
	const weft_coordinator_opts *ol;
	int verbose;
	/* Store the run after weft exits (weft_local_finish). */
	bool behind;
} weft_local_opts;

typedef struct weft_local weft_local;

/* Just before launch: start a coordinator on inproc://weft-run-RUNID over
 * the project's store and create the run's job (begun now) there, in a
 * thread of its own while the workload runs (with an OpenLineage
 * destination in o->ol, in weft_local_finish instead: the live sender
 * owns the run's STARTs until then). 0, or -1 after saying why (nothing
 * was started). */
int weft_local_begin(const weft_local_opts *o, const char *run_id,
		     weft_local **out);
/* After the workload (and hashing): the traced run r recorded, spooled
 * and delivered as one task of the job, the job ended with the run's exit
 * code, the coordinator stopped, l freed. Fragments delivered go to
 * progress (may be NULL). 0 when stored; -1 after saying why.
 *
 * With o->behind (and no OpenLineage destination), once r is recorded in
 * the spool (synced: a run whose weft then stops is stored by the
 * project's next `weft run`), the delivery and the job's end are left to
 * a forked process in a session of its own, and this returns 1 without
 * waiting for them: the user's prompt is back while the store is
 * written. That process holds the project's lock .weft/storing shared
 * until the run is stored; weft_local_wait_stored waits for it. So does
 * the process that checkpoints the store after (behind or not), until
 * nothing of weft's writes in .weft any more. Done
 * here as without behind when the fork is not safe (another thread, an
 * open store connection) or fails. */
int weft_local_finish(weft_local *l, const weft_report *r,
		      weft_progress_fn progress, void *progress_arg);
/* Before weft_local_finish: fn(arg) is run on a thread of its own while
 * the run is recorded, and has returned before it is stored (so it may
 * use and must close any store connection of the caller's: the storing
 * process is forked only when none is open). Run at once when no thread
 * can start, and by weft_local_abandon. */
void weft_local_beside(weft_local *l, void (*fn)(void *), void *arg);
/* The workload could not be traced: end the job with exit_code (weft's
 * own exit status; the job then has no run), stop, free l (NULL: no-op). */
void weft_local_abandon(weft_local *l, int exit_code);

/* Before reading the project's store at weft_dir: wait until every run
 * being stored after its `weft run` exited is stored (120 s at most),
 * saying so on stderr after a second when say. 0, or -1 after saying
 * that some run is still being stored. */
int weft_local_wait_stored(const char *weft_dir, bool say);
/* Then: store what runs of the project left in its spool, unstored when
 * they ended (a `weft run` killed after recording, or the process that
 * stored its run after it exited killed first), through a coordinator
 * of this process's over the project's store, as the next `weft run`
 * would; say how many fragments on stderr. Writers another process
 * holds, and writers for network coordinators, are left. Holds the
 * storing lock shared meanwhile, so that other readers wait for it; a
 * reader calls weft_local_wait_stored again after it (a writer it found
 * held may be another reader's to store). 0 when nothing is left (or
 * nothing was there), -1 otherwise. */
int weft_local_store_left(const char *weft_dir);
/* While a local run's job is open, its `weft run` holds a lock on the
 * file live/JOB_ID in the project's .weft directory, and removes the
 * file once the job has ended. The job of a run killed before its end
 * stays open in the store (nobody else holds its token to end it): the
 * file, no longer locked, says so. */
typedef enum weft_local_job_state {
	WEFT_LOCAL_JOB_UNMARKED,   /* no such file: not a local run's job,
				      or its run could not mark it */
	WEFT_LOCAL_JOB_RUNNING,    /* its weft run is still running */
	WEFT_LOCAL_JOB_INTERRUPTED /* its weft run stopped before the
				      job's end: nothing after is recorded */
} weft_local_job_state;

/* The state of job job_id's mark in weft_dir (an open job's). */
weft_local_job_state weft_local_job_state_of(const char *weft_dir,
					     const char *job_id);

/* Before launch: store the run's job and task start and send their
 * OpenLineage STARTs while the workload runs (weft_ol_live_start), for
 * the command of t about to be traced as run_id. NULL when no destination
 * is configured, or when they could not be stored (said on stderr; the
 * events then go once the run is stored). Stop with weft_ol_live_stop. */
weft_ol_live *weft_local_live_start(const weft_coordinator_opts *ol,
				    weft_store *store,
				    const weft_job_info *job,
				    const weft_wrap_trace *t,
				    const char *run_id);

#endif
