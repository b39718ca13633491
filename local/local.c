/*
 * local.c - `weft run`'s storing: the distributed path in one process (a
 * coordinator on inproc:// over the project's store, a job, the wrapper's
 * record/spool/delivery, the job's end), and the run's live OpenLineage
 * START before launch.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <weft/local.h>

/* The coordinator is in this process: a delivery that takes longer than
 * this is a bug or a full disk, not a network. */
#define LOCAL_SHIP_TIMEOUT_MS 60000

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

/* A request to the in-process coordinator; 0 when accepted. */
static int call(const char *url, int encoded, weft_buf *req, const char *what)
{
	int rc = encoded == WEFT_OK
			 ? weft_wrap_coordinator_call(url, NULL, req, what)
			 : -1;
	weft_buf_free(req);
	return rc;
}

int weft_local_ship(const weft_local_ship_opts *o, const weft_report *r)
{
	char db[WEFT_MAX_PATH_BYTES + 32], err[1024];
	weft_wrap_env env = {0};
	snprintf(db, sizeof(db), "%s/" WEFT_DB_NAME, o->weft_dir);
	snprintf(env.coordinator, sizeof(env.coordinator),
		 "inproc://weft-run-%s", r->run_id);
	if (snprintf(env.spool, sizeof(env.spool), "%s/spool", o->weft_dir) >=
	    (int)sizeof(env.spool)) {
		weft_say("the project path %s is too long for its spool "
			 "directory",
			 o->weft_dir);
		weft_store_close(o->store);
		return -1;
	}
	weft_job_info j = *o->job;
	/* The run's job began when the run did, not when it is stored. */
	if (r->started_ns)
		j.created_ns = r->started_ns;
	/* Nobody else reaches an inproc:// coordinator: a key of this run
	 * alone, never written down. */
	uint8_t submit_key[WEFT_SUBMIT_KEY_BYTES];
	weft_submit_key_new(submit_key);
	weft_coordinator_opts co = *o->ol; /* OpenLineage settings */
	co.listen_url = env.coordinator;
	co.store_path = db;
	co.store = o->store; /* the coordinator's from now on */
	co.submit_key = submit_key;
	/* One wrapper, this one, sends one request at a time: a couple of
	 * contexts, not a cluster's 256. */
	co.contexts = 2;
	weft_coordinator *c;
	if (weft_coordinator_start(&co, &c, err, sizeof(err)) != WEFT_OK) {
		weft_say("cannot start the local coordinator: %s", err);
		return -1;
	}
	memcpy(env.job, j.id, sizeof(env.job));
	snprintf(env.token, sizeof(env.token), "%s", j.token);
	weft_buf req;
	weft_buf_init(&req);
	int rc = call(env.coordinator,
		      weft_req_job_create(&j, submit_key, &req), &req,
		      "recording the run");
	if (rc == 0) {
		weft_wrap_identity id;
		task_identity(&id, r->node);
		weft_wrap_ship_opts ship = {
			.env = &env,
			.id = &id,
			.ship_timeout_ms = LOCAL_SHIP_TIMEOUT_MS,
			.verbose = o->verbose,
			.progress = o->progress,
			.progress_arg = o->progress_arg,
		};
		rc = weft_wrap_ship_report(&ship, r) == 0 ? 0 : -1;
		weft_buf_init(&req);
		if (call(env.coordinator,
			 weft_req_job_end(j.id, j.token, r->exit_code,
					  r->ended_ns, &req),
			 &req, "ending the run's job") != 0)
			rc = -1;
	}
	if (weft_coordinator_stop(c) != WEFT_OK)
		rc = -1;
	return rc;
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
	gethostname(host, sizeof(host) - 1);
	task_identity(&id, host);
	if (weft_wrap_task_start(job->id, job->token, "", &id, t->cmd,
				 t->backend->name, run_id, &ts) == WEFT_OK &&
	    weft_ol_live_start(ol, store, job, &ts, &live, err,
			       sizeof(err)) != WEFT_OK)
		weft_say("%s (the run's events go once it is stored)", err);
	return live;
}
