/*
 * cmd_wrap.c - `weft wrap`: one worker's share of a distributed job. Read
 * the env contract, preflight, trace the command, hash, cut the run into
 * signed fragments, spool them durably and ship them to the job's
 * coordinator; exit with the command's status, always.
 *
 * The workload comes first: everything that can fail without it (the
 * contract, the tracer's preflight) is checked before launch; everything
 * after it (hashing, signing, the network) can only warn. nng is touched
 * only after the workload ended: its threads must not exist when the
 * tracer forks.
 *
 * The tracer and the part after it (hash, record, spool, ship) are the
 * run pipeline of worker-wrap (weft/wrap.h), shared with `weft run`, `weft
 * submit --mode in-cluster` and the Slurm task collector: one path, local
 * or distributed.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "config.h"
#include <weft/base.h>
#include <weft/wrap.h>
#include <weft/ray.h>

static const char wrap_help[] =
	"usage: weft wrap [--task ID] [--ship-timeout SEC] [--tracer MODE]\n"
	"                 [--no-tracer-fallback] [--ray]\n"
	"                 [--ray-actor-granularity call|actor] [-v|-vv]\n"
	"                 -- CMD [ARGS...]\n\n"
	"Run CMD traced as one task of the job named by the env contract\n"
	"(WEFT_COORDINATOR, WEFT_JOB, WEFT_JOB_TOKEN; weft submit sets them),\n"
	"and ship what it read and wrote to the job's coordinator as signed\n"
	"fragments. Fragments are spooled (WEFT_SPOOL) before they are sent;\n"
	"what the coordinator has not acknowledged --ship-timeout after CMD\n"
	"exited stays there for 'weft flush' or the next wrapper.\n\n"
	"  --task ID          this task's name (default: from Slurm,\n"
	"                     job.step.task@node, or Ray, else pidPID@HOST)\n"
	"  --ship-timeout SEC wait at most this long after CMD exits for the\n"
	"                     coordinator's acknowledgements (default %d)\n"
	"  --tracer MODE      tracer backend: %s (default: WEFT_TRACER,\n"
	"                     the config, else auto)\n"
	"  --no-tracer-fallback  never switch backends during the run\n"
	"  --ray              CMD is a Ray worker (weft's runtime-env hook\n"
	"                     puts this in py_executable): each Ray task it\n"
	"                     runs is recorded as a task of its own, named\n"
	"                     from Ray's ids; I/O outside every task is the\n"
	"                     worker's own record (docs/ray.md)\n"
	"  --ray-actor-granularity call|actor\n"
	"                     actor method calls: one record per call\n"
	"                     (default) or one per actor (default from\n"
	"                     WEFT_RAY_ACTOR_GRANULARITY, else the config's\n"
	"                     ray.actor_granularity)\n"
	"  -v, -vv            more diagnostics on stderr\n\n"
	"Exit status: CMD's (128+N when a signal N killed it), whatever\n"
	"happened to the shipping; 2 for bad arguments or a bad env contract,\n"
	"3 when the tracer's preflight failed, 125 when weft failed otherwise\n"
	"before starting CMD, 126/127 when CMD is not executable / not found\n"
	"(CMD did not run in those cases).\n";

/* WEFT_WRAP_PART_BYTES: a smaller part budget (tests, tuning). */
static int part_bytes_from_env(size_t *out)
{
	const char *v = getenv("WEFT_WRAP_PART_BYTES");
	*out = 0;
	if (!v || !*v)
		return 0;
	char *end;
	errno = 0;
	unsigned long long n = strtoull(v, &end, 10);
	if (errno || *end || v[0] < '0' || v[0] > '9' ||
	    n < WEFT_WRAP_PART_BYTES_MIN || n > WEFT_WRAP_PART_BYTES_DEFAULT) {
		cli_error("WEFT_WRAP_PART_BYTES='%.32s': expected a number of "
			  "bytes from %d to %d",
			  v, WEFT_WRAP_PART_BYTES_MIN,
			  WEFT_WRAP_PART_BYTES_DEFAULT);
		return -1;
	}
	*out = (size_t)n;
	return 0;
}

struct wrap_opts {
	const char *task, *tracer;
	int ship_timeout_ms;
	bool no_fallback, ray;
	enum weft_ray_granularity granularity;
	bool granularity_set; /* by the flag or the variable */
	int verbose;
};

/* --ray-actor-granularity call|actor */
static int granularity_arg(const char *cmd, const char *opt, const char *arg,
			   void *to)
{
	struct wrap_opts *o = to;
	if (weft_ray_granularity_parse(arg, &o->granularity) != 0)
		return cli_usage_error(cmd, "%s '%s': expected call or actor",
				       opt, arg);
	o->granularity_set = true;
	return 0;
}

static void wrap_help_print(void)
{
	char names[256];
	config_modes(names, sizeof(names));
	printf(wrap_help, WEFT_WRAP_SHIP_TIMEOUT_DEFAULT_MS / 1000, names);
}

static const cli_cmd wrap_cmd = {
	.name = "wrap",
	.help_fn = wrap_help_print,
	.stop_at_arg = true,
	.max_args = CLI_ANY_ARGS,
	.missing = "missing the command to run",
};

static int parse_args(int argc, char **argv, struct wrap_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->ship_timeout_ms = WEFT_WRAP_SHIP_TIMEOUT_DEFAULT_MS;
	const char *g = getenv("WEFT_RAY_ACTOR_GRANULARITY");
	if (g && *g && weft_ray_granularity_parse(g, &o->granularity) != 0)
		return cli_usage_error("wrap",
				       "WEFT_RAY_ACTOR_GRANULARITY='%.32s': "
				       "expected call or actor",
				       g);
	o->granularity_set = g && *g;
	const cli_opt opts[] = {
		{"task", 0, CLI_STRING, &o->task},
		{"ship-timeout", 0, CLI_SECONDS, &o->ship_timeout_ms},
		{"tracer", 't', CLI_STRING, &o->tracer},
		{"no-tracer-fallback", 0, CLI_FLAG, &o->no_fallback},
		{"ray", 0, CLI_FLAG, &o->ray},
		{"ray-actor-granularity", 0, CLI_CALL, o,
		 .call = granularity_arg},
		{"verbose", 'v', CLI_COUNT, &o->verbose},
		{NULL},
	};
	return cli_parse(&wrap_cmd, opts, argc, argv);
}

/* The node's hash cache (WEFT_HASH_CACHE, docs/distributed.md), opened
 * at the first hashing and kept for the records after it; the hashes made
 * while the workload ran (none without a cache). */
static weft_store *hash_cache;
static const weft_prehash *prehashed;

static int hash_and_ship(const weft_wrap_ship_opts *ship, weft_report *r)
{
	weft_wrap_hash_files(&hash_cache, ship->id->task, prehashed, r,
			     ship->verbose, NULL, NULL);
	return weft_wrap_ship_report(ship, r);
}

/* The task's files hashed and its record shipped, with what is left to
 * wait for on a terminal past a second (cli_progress): the files hashed,
 * then the fragments delivered. */
static int hash_and_ship_shown(weft_wrap_ship_opts *ship, weft_report *r,
			       cli_progress *progress)
{
	weft_wrap_hash_files(&hash_cache, ship->id->task, prehashed, r,
			     ship->verbose, cli_progress_fn, progress);
	cli_progress_then(progress, "shipping", "fragments");
	ship->progress = cli_progress_fn;
	ship->progress_arg = progress;
	return weft_wrap_ship_report(ship, r);
}

/* What earlier wrappers on this node left behind, in what is left of the
 * time (until deadline_ms). */
static void ship_others(const weft_wrap_ship_opts *ship, int64_t deadline_ms)
{
	int64_t left = deadline_ms - weft_mono_ms();
	weft_wrap_shipper *sh;
	if (left > 0 && weft_wrap_shipper_new(ship->env->tls_ca, (int)left,
					      stderr, &sh) == WEFT_OK) {
		weft_wrap_ship_spool(sh, ship->env->spool);
		weft_wrap_shipper_free(sh);
	}
}

/* Without the wrapper's writer (it could not be made): each record a
 * writer of its own, shipped one after the other. */
static int ship_ray_apart(weft_wrap_ship_opts *ship,
			  const weft_wrap_identity *id, weft_report *report,
			  weft_ray_task *tasks, size_t n)
{
	int rc = hash_and_ship(ship, report);
	weft_wrap_env env = *ship->env;
	snprintf(env.parent, sizeof(env.parent), "%s", id->task);
	for (size_t i = 0; i < n; i++) {
		weft_wrap_identity tid;
		weft_ray_task_identity(&tasks[i], id->node, &tid);
		weft_wrap_ship_opts ts = *ship;
		ts.env = &env;
		ts.id = &tid;
		ts.name = tasks[i].name;
		/* A coordinator that did not answer will not answer the
		 * next task either: the rest go to the spool at once. */
		if (rc != 0)
			ts.ship_timeout_ms = 0;
		rc |= hash_and_ship(&ts, &tasks[i].report);
	}
	return rc;
}

/* A Ray worker exited. The tasks that ended while it ran were recorded
 * and shipped then, through the wrapper's one writer; now, through the
 * same writer: the worker's own record (its processes, the I/O outside
 * every task), then what was left for the end (per-actor records, tasks
 * that never ended), each task its worker's child. Everything is
 * spooled; the coordinator has until deadline_ms (--ship-timeout after
 * the worker exited) to acknowledge it. */
static void ship_ray(weft_ray_wrapper *ray, weft_wrap_ship_opts *ship,
		     weft_wrap_identity *id, weft_report *report,
		     int64_t deadline_ms)
{
	weft_ray_task *tasks;
	size_t n;
	bool named = strcmp(id->source, "host") != 0;
	char task[sizeof(id->task)];
	snprintf(task, sizeof(task), "%s", id->task);
	if (weft_ray_wrapper_finish(ray, report, id->node, named, task,
				    sizeof(task), id->engine, &id->nengine,
				    &tasks, &n) != 0)
		n = 0;
	if (!named && strcmp(task, id->task) != 0) {
		/* Named from Ray's ids now: the DAG shows the name. */
		snprintf(id->task, sizeof(id->task), "%s", task);
		id->source = "ray";
	}
	int rc = 0;
	if (!weft_ray_wrapper_streaming(ray)) {
		weft_ray_wrapper_ship_finish(ray, &(weft_wrap_stream_stats){0});
		rc = ship_ray_apart(ship, id, report, tasks, n);
		weft_ray_tasks_free(tasks, n);
		if (rc == 0)
			ship_others(ship, deadline_ms);
		return;
	}
	char name[WEFT_MAX_TASK_BYTES + 1];
	if (strcmp(id->source, "host") != 0)
		snprintf(name, sizeof(name), "%s", id->task);
	else
		weft_wrap_task_name(name, sizeof(name), report);
	size_t during = weft_ray_wrapper_recorded(ray);
	weft_wrap_stream_stats st;
	rc = weft_ray_wrapper_record_rest(ray, id, name, ship->env->parent,
					  report, tasks, n, &st);
	weft_ray_tasks_free(tasks, n);
	if (st.left)
		fprintf(stderr,
			"weft: Ray worker %s: %zu of %zu fragments not yet "
			"acknowledged by %s (%s); kept in %s ('weft flush' "
			"sends them)\n",
			id->task, st.left, st.fragments, ship->env->coordinator,
			st.last_err[0] ? st.last_err : "timeout",
			st.writer_dir);
	else if (ship->verbose)
		fprintf(stderr,
			"weft: Ray worker %s: %zu records (%zu tasks shipped "
			"while it ran) in %zu fragments shipped to %s (%zu "
			"stored, %zu already there, %zu rejected)\n",
			id->task, st.records, during, st.fragments,
			ship->env->coordinator, st.stored, st.duplicate,
			st.rejected);
	if (rc == 0 && !st.left)
		ship_others(ship, deadline_ms);
}

int cmd_wrap(int argc, char **argv)
{
	struct wrap_opts o;
	int rc = parse_args(argc, argv, &o);
	if (rc != CLI_GO)
		return rc;
	weft_wrap_env env;
	weft_wrap_identity id;
	char err[1024], host[WEFT_MAX_NAME_BYTES] = "";
	gethostname(host, sizeof(host) - 1);
	if (weft_wrap_env_read(&env, weft_wrap_getenv, true, err,
			       sizeof(err)) != WEFT_OK ||
	    weft_wrap_identity_get(&id, o.task, weft_wrap_getenv, host, err,
				   sizeof(err)) != WEFT_OK) {
		cli_error("wrap: %s; the command was not started", err);
		return WEFT_EXIT_USAGE;
	}
	weft_wrap_ship_opts ship = {
		.env = &env,
		.id = &id,
		.ship_timeout_ms = o.ship_timeout_ms,
		.others = true,
		.verbose = o.verbose,
	};
	weft_config cfg;
	if (part_bytes_from_env(&ship.part_bytes) != 0 ||
	    config_load(&cfg, o.tracer, o.no_fallback, stderr) != 0)
		return WEFT_EXIT_USAGE;
	/* The flag, then the variable, then the config (checked there). */
	if (!o.granularity_set)
		weft_ray_granularity_parse(cfg.ray_actor_granularity,
					   &o.granularity);
	weft_wrap_trace t;
	weft_wrap_tracer_opts to;
	const char *env_names[WEFT_WRAP_MAX_ENV_VALUES];
	config_tracer_opts(&cfg, env_names, &to);
	rc = weft_wrap_trace_prepare(&t, argv + optind, &to, o.verbose);
	if (rc != 0)
		return rc;
	/* Before the fork: the control socket; its thread starts after. */
	weft_ray_wrapper *ray = NULL;
	if (o.ray) {
		weft_ray_opts ro = {
			.granularity = o.granularity,
			.verbose = o.verbose,
			.diag = stderr,
			.env = &env,
			.worker_task = id.task,
			.worker_named = strcmp(id.source, "host") != 0,
			.node = id.node,
			.backend = t.backend->name,
			.part_bytes = ship.part_bytes,
		};
		if (!(ray = weft_ray_wrapper_new(&ro, err, sizeof(err)))) {
			cli_error("%s", err);
			return WEFT_EXIT_INTERNAL;
		}
		t.observe = weft_ray_wrapper_observe;
		t.observe_arg = ray;
	}

	weft_report report;
	weft_report_init(&report);
	weft_uuid_new(report.run_id);
	/* Its OpenLineage START, now; not for a Ray worker named later. */
	if (!ray || strcmp(id.source, "host") != 0)
		weft_wrap_announce(&env, &id, argv + optind, t.backend->name,
				   report.run_id);
	/* The workload's files hashed while it runs, the node's hash cache
	 * consulted first; without a cache nothing at the end would use
	 * them. */
	char cache_path[WEFT_MAX_PATH_BYTES], why[WEFT_MAX_PATH_BYTES + 128];
	const char *cache_at = weft_wrap_hash_cache_path(
		weft_wrap_getenv, cache_path, sizeof(cache_path), why,
		sizeof(why));
	if (cache_at)
		weft_wrap_prehash_start(&t, cache_at);
	/* The spool is weft's own business, even for a wrapped wrapper. */
	rc = weft_wrap_trace_run(&t, env.spool, &report);
	/* What is left to wait for, on a terminal past a second; not for a
	 * Ray worker's wrapper (its tasks were shipped as they ended). */
	cli_progress progress;
	cli_progress_begin(&progress, "hashing", "files", false);
	if (rc == 0)
		weft_prehash_finish(t.prehash, ray ? NULL : cli_progress_fn,
				    &progress);
	else
		weft_prehash_stop(t.prehash);
	prehashed = t.prehash;
	if (o.verbose) {
		cli_progress_erase(&progress);
		cli_print_prehash(t.prehash);
	}
	/* The worker exited: from here, --ship-timeout for what is left. */
	int64_t deadline_ms = weft_mono_ms() + o.ship_timeout_ms;
	if (ray)
		weft_ray_wrapper_ship_deadline(ray, o.ship_timeout_ms);
	if (rc != 0) {
		cli_progress_end(&progress);
		weft_report_release(&report);
		weft_ray_wrapper_free(ray);
		weft_prehash_free(t.prehash);
		return rc;
	}
	/* The engine's name for the node (SLURMD_NODENAME) wins over the
	 * host name: it is what the job's users know. */
	snprintf(report.node, sizeof(report.node), "%s", id.node);
	if (ray) {
		ship_ray(ray, &ship, &id, &report, deadline_ms);
		weft_ray_wrapper_free(ray);
	} else {
		hash_and_ship_shown(&ship, &report, &progress);
	}
	cli_progress_end(&progress);
	weft_store_close(hash_cache);
	hash_cache = NULL;
	prehashed = NULL;
	weft_prehash_free(t.prehash);
	weft_report_release(&report);
	return t.status;
}
