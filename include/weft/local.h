/*
 * weft/local.h - libweft_local: a local `weft run` as the distributed
 * system in one process (docs/design.md, "One code path, local or
 * distributed"). The coordinator runs in this process on inproc:// over
 * the project's store and the run ships through the wrapper's own
 * record, spool and delivery, so that nothing about storing a run is
 * written twice. It sits above worker-wrap and the coordinator, which do
 * not know each other.
 */
#ifndef WEFT_LOCAL_H
#define WEFT_LOCAL_H

#include <weft/base.h>
#include <weft/coordinator.h>
#include <weft/store.h>
#include <weft/wrap.h>

/* Where and how a traced run is stored. */
typedef struct weft_local_ship_opts {
	const char *weft_dir; /* the project's .weft directory */
	/* The project's store, open (the run hashed with it): taken over
	 * by the coordinator, closed before weft_local_ship returns. */
	weft_store *store;
	const weft_job_info *job; /* the run's job (weft_wrap_job_info) */
	/* OpenLineage destination settings, or all zero for none. */
	const weft_coordinator_opts *ol;
	int verbose;
	weft_progress_fn progress; /* fragments delivered; may be NULL */
	void *progress_arg;
} weft_local_ship_opts;

/* Store the traced run r: a coordinator on inproc://weft-run-RUNID over
 * the store, the run's job created (begun when the run began), the run
 * recorded, spooled and delivered as one task, the job ended with the
 * run's exit code, the coordinator stopped. Start it only after the
 * workload has ended: nng's threads must not exist while a tracer forks.
 * 0 when stored; -1 after saying why on stderr. */
int weft_local_ship(const weft_local_ship_opts *o, const weft_report *r);

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
