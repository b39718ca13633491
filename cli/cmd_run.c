/*
 * cmd_run.c - `weft run`: preflight the tracer, launch the command traced,
 * hash what it read and wrote, store the run, exit with its status.
 *
 * The order matters: everything that can fail without the workload (bad
 * arguments, command not found, tracer preflight, the store) is checked
 * before launch, so a workload is never started when weft could not record
 * it, and never started twice.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "config.h"
#include <weft/base.h>
#include <weft/local.h>
#include <weft/ray.h>

static const char run_help[] =
	"usage: weft run [--tracer MODE] [--no-tracer-fallback]\n"
	"                [--report FILE] [--ray | --no-ray] [--listen URL]\n"
	"                [--wait-stored] [--timings] [-v|-vv] -- CMD "
	"[ARGS...]\n\n"
	"Run CMD traced, record every file it and its descendants read and\n"
	"wrote (with BLAKE2b-256 hashes) in the project's .weft/weft.db, and\n"
	"exit with CMD's exit status (128+N when a signal N killed it).\n\n"
	"  --tracer MODE   tracer backend: %s (default: tracer.mode of\n"
	"                  the config, WEFT_TRACER, else auto: the first\n"
	"                  backend that passes its preflight)\n"
	"  --no-tracer-fallback  never switch backends during the run\n"
	"  --report FILE   also write the run report as JSON to FILE\n"
	"  --ray           CMD is a Ray driver (default when RAY_ADDRESS is\n"
	"                  set or this node runs Ray; --no-ray: never): the\n"
	"                  run becomes a job whose coordinator Ray's workers\n"
	"                  on every node reach over TCP, and every worker is\n"
	"                  traced (RAY_RUNTIME_ENV_HOOK; docs/ray.md); the\n"
	"                  same as 'weft submit --mode in-cluster'\n"
	"  --listen URL    with --ray: where that coordinator listens\n"
	"                  (default tcp://0.0.0.0:0, any free port)\n"
	"  --wait-stored   exit only once the run is stored (default: once\n"
	"                  it is safe in .weft/spool; the store is written\n"
	"                  after weft exits, and every weft command that\n"
	"                  reads the store waits for it)\n"
	"  --timings       say on stderr where weft's time went: preflight,\n"
	"                  tracing (the command's own run), hashing, storing\n"
	"  -v, -vv         more diagnostics on stderr\n\n"
	"Exit status: CMD's; 3 when the tracer's preflight failed and 125 "
	"when\n"
	"weft failed otherwise before starting CMD (CMD did not run); 126 "
	"when\n"
	"CMD is not executable; 127 when it is not found; 2 for bad arguments\n"
	"or a bad config (docs/config.md).\n";

static void print_help(void)
{
	char names[256];
	config_modes(names, sizeof(names));
	printf(run_help, names);
}

static int write_report_file(const char *path, const weft_report *r)
{
	FILE *f = fopen(path, "w");
	if (!f) {
		cli_error("cannot write the report %s: %s", path,
			  strerror(errno));
		return -1;
	}
	json_report(f, r);
	if (fclose(f) != 0) {
		cli_error("cannot write the report %s: %s", path,
			  strerror(errno));
		return -1;
	}
	return 0;
}

/* A Ray driver: the in-cluster job of `weft submit --mode in-cluster`,
 * whose coordinator (unlike this command's in-process one) the workers on
 * other nodes can reach, and which sets the driver's environment for Ray
 * (weft_ray_driver_env). */
static int run_ray_driver(char **cmd, const char *tracer, const char *listen,
			  int verbose)
{
	size_t n = 0;
	while (cmd[n])
		n++;
	char **av = calloc(n + 12, sizeof(*av));
	if (!av) {
		cli_error("out of memory");
		return WEFT_EXIT_INTERNAL;
	}
	size_t k = 0;
	av[k++] = "submit";
	av[k++] = "--mode";
	av[k++] = "in-cluster";
	if (listen) {
		av[k++] = "--listen";
		av[k++] = (char *)listen;
	}
	if (tracer) {
		av[k++] = "--tracer";
		av[k++] = (char *)tracer;
	}
	for (int i = 0; i < verbose && i < 2; i++)
		av[k++] = "-v";
	av[k++] = "--";
	for (size_t i = 0; i < n; i++)
		av[k++] = cmd[i];
	int rc = cmd_submit((int)k, av);
	free(av);
	return rc;
}

/* -v: what was hashed while the workload ran. */
static void print_summary(const weft_report *r)
{
	size_t in = 0, sys = 0, out = 0;
	for (size_t i = 0; i < r->nfiles; i++) {
		const weft_file_rec *f = &r->files[i];
		if (f->read && cli_is_system_path(f->path))
			sys++;
		else
			in += f->read;
		out += f->written && !f->deleted && !f->renamed_to;
	}
	fprintf(stderr,
		"weft: run %.8s recorded (%s): %zu input%s (+%zu system), %zu "
		"output%s, %zu warning%s; 'weft show' for details\n",
		r->run_id, r->backend, in, in == 1 ? "" : "s", sys, out,
		out == 1 ? "" : "s", r->nwarnings,
		r->nwarnings == 1 ? "" : "s");
}

static const cli_cmd run_cmd = {
	.name = "run",
	.help_fn = print_help,
	.stop_at_arg = true,
	.max_args = CLI_ANY_ARGS,
	.missing = "missing the command to run",
};

/* weft_local_beside's work: the hash cache's new entries, then closed. */
static void write_hash_cache(void *store)
{
	(void)weft_store_write_deferred(store);
	weft_store_close(store);
}

int cmd_run(int argc, char **argv)
{
	const char *tracer = NULL, *report_path = NULL, *listen = NULL;
	bool no_fallback = false, timings = false, wait_stored = false;
	int ray = -1; /* -1: detect */
	int verbose = 0;
	const cli_opt opts[] = {
		{"tracer", 't', CLI_STRING, &tracer},
		{"no-tracer-fallback", 0, CLI_FLAG, &no_fallback},
		{"report", 'r', CLI_STRING, &report_path},
		{"ray", 0, CLI_SET, &ray, .value = 1},
		{"no-ray", 0, CLI_SET, &ray, .value = 0},
		{"listen", 0, CLI_STRING, &listen},
		{"wait-stored", 0, CLI_FLAG, &wait_stored},
		{"timings", 0, CLI_FLAG, &timings},
		{"verbose", 'v', CLI_COUNT, &verbose},
		{NULL},
	};
	int c = cli_parse(&run_cmd, opts, argc, argv);
	if (c != CLI_GO)
		return c;
	/* A bad config stops here, before anything is launched. */
	weft_config cfg;
	if (config_load(&cfg, tracer, no_fallback, stderr) != 0)
		return WEFT_EXIT_USAGE;
	/* And a bad OpenLineage key file. */
	weft_coordinator_opts ol = {0};
	char ol_key[4097];
	if (cli_openlineage_opts(&cfg, &ol, ol_key, sizeof(ol_key)) != 0)
		return WEFT_EXIT_USAGE;
	char why[128] = "--ray";
	if (ray < 0)
		ray = weft_ray_detect(why, sizeof(why));
	if (listen && !ray)
		return cli_usage_error("run", "--listen is for a Ray driver "
					      "(--ray)");
	if (ray && (report_path || no_fallback || timings || wait_stored))
		return cli_usage_error("run",
				       "%s is not supported for a Ray "
				       "driver (%s; --no-ray to trace "
				       "only this command)",
				       report_path   ? "--report"
				       : timings     ? "--timings"
				       : wait_stored ? "--wait-stored"
						     : "--no-tracer-fallback",
				       why);
	if (ray) {
		fprintf(stderr, "weft: %s: CMD runs as a Ray driver, every Ray "
				"worker traced (--no-ray: this command only)\n",
			why);
		return run_ray_driver(argv + optind, tracer, listen, verbose);
	}
	/* Where the time goes (--timings): the ends of preflight, tracing,
	 * hashing and storing. */
	int64_t at[5];
	at[0] = weft_mono_ns();
	weft_wrap_trace t;
	weft_wrap_tracer_opts to;
	const char *env_names[WEFT_WRAP_MAX_ENV_VALUES];
	config_tracer_opts(&cfg, env_names, &to);
	int rc = weft_wrap_trace_prepare(&t, argv + optind, &to, verbose);
	at[1] = weft_mono_ns();
	if (rc != 0)
		return rc;

	char weft_dir[WEFT_MAX_PATH_BYTES + 16];
	weft_store *store = cli_open_store(true, weft_dir, sizeof(weft_dir));
	if (!store)
		return WEFT_EXIT_INTERNAL;
	FILE *log = verbose ? weft_wrap_log_open(weft_dir, verbose) : NULL;

	weft_report report;
	weft_report_init(&report);
	weft_uuid_new(report.run_id);
	weft_log(1, "run %s: %s", report.run_id, t.exe);
	weft_job_info job;
	/* May run git: before any thread of weft's exists. */
	weft_wrap_job_info_sans_user(&job, t.cmd);
	/* The run's files hashed as it opens and closes them, the store's
	 * hash cache consulted first. */
	char db[sizeof(weft_dir) + 16];
	snprintf(db, sizeof(db), "%s/" WEFT_DB_NAME, weft_dir);
	weft_wrap_prehash_start(&t, db);
	weft_ol_live *live =
		weft_local_live_start(&ol, store, &job, &t, report.run_id);
	/* The run's coordinator and job, made while the workload runs. */
	const weft_local_opts lo = {
		.weft_dir = weft_dir,
		.job = &job,
		.ol = &ol,
		.verbose = verbose,
		/* -v says how delivery went: it has to wait to see it. */
		.behind = !wait_stored && !verbose,
	};
	weft_local *local;
	rc = weft_local_begin(&lo, report.run_id, &local) == 0
		     ? weft_wrap_trace_run(&t, weft_dir, &report)
		     : WEFT_EXIT_INTERNAL;
	weft_ol_live_stop(live);
	at[2] = weft_mono_ns();
	if (rc != 0) {
		weft_prehash_free(t.prehash);
		weft_local_abandon(local, rc);
		free(job.command);
		weft_report_release(&report);
		weft_store_close(store);
		weft_wrap_log_close(log);
		return rc;
	}
	/* What is left to wait for, on a terminal past a second. */
	cli_progress progress;
	cli_progress_begin(&progress, "hashing", "files", false);
	weft_prehash_finish(t.prehash, cli_progress_fn, &progress);
	weft_store_set_progress(store, cli_progress_fn, &progress);
	weft_store_use_prehash(store, t.prehash);
	weft_store_defer_cache_writes(store);
	int err = weft_report_hash_files(store, &report);
	if (verbose) {
		cli_progress_erase(&progress);
		cli_print_prehash(t.prehash);
	}
	weft_store_use_prehash(store, NULL);
	weft_prehash_free(t.prehash);
	if (err != WEFT_OK)
		weft_report_warn(&report, "hashing incomplete: %s",
				 weft_strerror(err));

	at[3] = weft_mono_ns();
	int status = t.status;
	/* The hash cache is done with: its new entries are written while
	 * the run is recorded, on the CPU the workload left, and it is
	 * closed; the coordinator writes the store. */
	weft_store_set_progress(store, NULL, NULL);
	weft_local_beside(local, write_hash_cache, store);
	cli_progress_then(&progress, "storing", "fragments");
	int shipped = weft_local_finish(local, &report, cli_progress_fn,
					&progress);
	free(job.command);
	cli_progress_end(&progress);
	if (shipped < 0) {
		cli_error("could not store the run in %s (the workload exited "
			  "%d)",
			  weft_dir, status);
		err = WEFT_EIO;
	}
	at[4] = weft_mono_ns();
	if (report_path && write_report_file(report_path, &report) != 0)
		err = WEFT_EIO;
	if (timings)
		fprintf(stderr,
			"weft: timings: preflight %.1f ms, trace %.1f ms, hash "
			"%.1f ms, store %.1f ms%s\n",
			(at[1] - at[0]) / 1e6, (at[2] - at[1]) / 1e6,
			(at[3] - at[2]) / 1e6, (at[4] - at[3]) / 1e6,
			shipped > 0 ? " (spooled; stored after weft exits)"
				    : "");
	for (size_t i = 0; i < report.nwarnings; i++)
		if (verbose >= 1)
			fprintf(stderr, "weft: warning: %s\n",
				report.warnings[i]);
	print_summary(&report);
	/* Not freed as the process ends: each page the free would touch is
	 * shared with the storing process (forked above unless the run was
	 * stored before exiting) and would be copied first (3-5 ms for
	 * 8,000 file records). A sanitizer build frees it, so that a leak
	 * anywhere else still shows. */
#ifdef WEFT_SANITIZE
	weft_report_release(&report);
#endif
	weft_wrap_log_close(log);
	/* The workload's status is weft's status, whatever happened to the
	 * recording (which the messages above describe). */
	return status;
}
