/*
 * cmd_submit.c - `weft submit`: start a job. Create the job record at the
 * coordinator (or start a coordinator for the job when none is given),
 * hand the env contract to CMD (sbatch, srun, ray job submit, a script),
 * record CMD's exit status and end the job. Exit with CMD's status.
 *
 * Where nng lives: a coordinator started here runs in a child process
 * forked before this process touches nng, and in-cluster mode (CMD traced
 * here as the job's driver task) shuts this process's nng down (nng_fini)
 * before the tracer forks, so nng threads are never copied into a fork.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "config.h"
#include <weft/base.h>
#include <weft/coordinator.h>
#include <weft/ray.h>
#include <weft/wrap.h>

static const char submit_help[] =
	"usage: weft submit [--coordinator URL [--submit-key FILE] |\n"
	"                    --listen URL]\n"
	"                   [--mode host-submit|in-cluster] [--task ID]\n"
	"                   [--ship-timeout SEC] -- CMD [ARGS...]\n\n"
	"Create a job, run CMD with the env contract (WEFT_COORDINATOR,\n"
	"WEFT_JOB, WEFT_JOB_TOKEN, ...) in its environment so that every\n"
	"'weft wrap' it starts ships to the job, and end the job when CMD\n"
	"exits, recording its exit status.\n\n"
	"  --coordinator URL  a running coordinator ('weft coordinator');\n"
	"                     without it, weft submit starts one for the\n"
	"                     job's duration over the project's store and\n"
	"                     prints its URL\n"
	"  --submit-key FILE  the submit key of the --coordinator (a copy of\n"
	"                     its coordinator.key; only its holders create\n"
	"                     jobs there); default: WEFT_SUBMIT_KEY, then\n"
	"                     coordinator.submit_key_file\n"
	"  --listen URL       where that coordinator listens (default\n"
	"                     tcp://0.0.0.0:0, any free port; the printed URL\n"
	"                     names this host)\n"
	"  --mode MODE        host-submit (default): CMD is a launcher, not\n"
	"                     traced; in-cluster: CMD is the job's driver and\n"
	"                     is traced as one of its tasks (weft wrap), with\n"
	"                     Ray's driver environment set (docs/ray.md)\n"
	"  --task ID          the driver task's name (in-cluster)\n"
	"  --ship-timeout SEC as for weft wrap (in-cluster)\n\n"
	"Exit status: CMD's; 2 for bad arguments; 125 when the job could not\n"
	"be created (CMD did not run).\n";

#define SUBMIT_SPAWN_TIMEOUT_MS 20000
#define SUBMIT_DEFAULT_LISTEN "tcp://0.0.0.0:0"

extern char **environ;

struct submit_opts {
	const char *coordinator, *listen, *task, *tracer, *submit_key;
	bool in_cluster;
	int ship_timeout_ms;
	int verbose;
};

/* --mode host-submit|in-cluster */
static int mode_arg(const char *cmd, const char *opt, const char *arg,
		    void *to)
{
	if (strcmp(arg, "in-cluster") == 0)
		*(bool *)to = true;
	else if (strcmp(arg, "host-submit") != 0)
		return cli_usage_error(cmd,
				       "%s '%s': expected host-submit or "
				       "in-cluster",
				       opt, arg);
	return 0;
}

static const cli_cmd submit_cmd = {
	.name = "submit",
	.help = submit_help,
	.stop_at_arg = true,
	.max_args = CLI_ANY_ARGS,
	.missing = "missing the command to run",
};

static int parse_args(int argc, char **argv, struct submit_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->ship_timeout_ms = WEFT_WRAP_SHIP_TIMEOUT_DEFAULT_MS;
	const cli_opt opts[] = {
		{"coordinator", 'c', CLI_STRING, &o->coordinator},
		{"listen", 'l', CLI_STRING, &o->listen},
		{"submit-key", 0, CLI_STRING, &o->submit_key},
		{"mode", 'm', CLI_CALL, &o->in_cluster, .call = mode_arg},
		{"task", 0, CLI_STRING, &o->task},
		{"ship-timeout", 0, CLI_SECONDS, &o->ship_timeout_ms},
		{"tracer", 't', CLI_STRING, &o->tracer},
		{"verbose", 'v', CLI_COUNT, &o->verbose},
		{NULL},
	};
	int rc = cli_parse(&submit_cmd, opts, argc, argv);
	if (rc != CLI_GO)
		return rc;
	const char *urls[] = {o->coordinator, o->listen};
	for (int i = 0; i < 2; i++)
		if (urls[i] && weft_wrap_check_url(urls[i]) != 0)
			return cli_usage_error(
				"submit",
				"%s '%s': expected an nng URL such as "
				"tcp://HOST:PORT",
				i ? "--listen" : "--coordinator", urls[i]);
	if (o->coordinator && o->listen)
		return cli_usage_error("submit", "--listen is for the "
						 "coordinator weft submit "
						 "starts; not with "
						 "--coordinator");
	if (o->submit_key && !o->coordinator)
		return cli_usage_error("submit", "--submit-key is for a "
						 "--coordinator weft submit "
						 "did not start");
	return CLI_GO;
}

/* "tcp://0.0.0.0:PORT" is where it listens, not where to reach it. */
static void advertised_url(const char *url, char *out, size_t outsz)
{
	const char *any[] = {
		"tcp://0.0.0.0:", "tcp://*:", "tcp://:", "tcp://[::]:", NULL};
	char host[256] = "";
	gethostname(host, sizeof(host) - 1);
	for (size_t i = 0; any[i]; i++) {
		size_t n = strlen(any[i]);
		if (strncmp(url, any[i], n) == 0 && host[0]) {
			snprintf(out, outsz, "tcp://%s:%s", host, url + n);
			return;
		}
	}
	snprintf(out, outsz, "%s", url);
}

static pid_t spawned = -1;

static int start_coordinator(const char *listen, char *url, size_t urlsz,
			     uint8_t key[WEFT_SUBMIT_KEY_BYTES])
{
	char weft_dir[WEFT_MAX_PATH_BYTES + 16];
	weft_store *store = cli_open_store(true, weft_dir, sizeof(weft_dir));
	if (!store)
		return -1;
	weft_store_close(store);
	char db[sizeof(weft_dir) + 16], got[WEFT_COORD_MAX_URL_BYTES],
		err[1024];
	snprintf(db, sizeof(db), "%s/" WEFT_DB_NAME, weft_dir);
	/* Named, so that a coordinator.submit_key_file in the config (a
	 * long-lived coordinator's) is not this one's. */
	char keyfile[sizeof(db) + 32];
	weft_submit_key_default_path(db, keyfile, sizeof(keyfile));
	weft_coordinator_opts o = {
		.listen_url = listen ? listen : SUBMIT_DEFAULT_LISTEN,
		.store_path = db,
		.submit_key_file = keyfile,
	};
	if (weft_coordinator_spawn("/proc/self/exe", &o,
				   SUBMIT_SPAWN_TIMEOUT_MS, &spawned, got,
				   sizeof(got), err, sizeof(err)) != WEFT_OK) {
		cli_error("submit: cannot start a coordinator: %s", err);
		return -1;
	}
	advertised_url(got, url, urlsz);
	if (weft_submit_key_load(keyfile, false, key, err, sizeof(err))) {
		cli_error("submit: the coordinator it started: %s", err);
		return -1;
	}
	return 0;
}

/* The submit key of a --coordinator: --submit-key, WEFT_SUBMIT_KEY,
 * coordinator.submit_key_file; 0, or -1 after saying what is missing. */
static int load_submit_key(const struct submit_opts *o,
			   uint8_t key[WEFT_SUBMIT_KEY_BYTES])
{
	const char *path = o->submit_key;
	const char *env = getenv("WEFT_SUBMIT_KEY");
	weft_config cfg;
	if (!path && env && env[0])
		path = env;
	if (!path) {
		if (config_load(&cfg, NULL, false, stderr) != 0)
			return -1;
		if (cfg.coord_submit_key_file[0])
			path = cfg.coord_submit_key_file;
	}
	if (!path) {
		cli_error("submit: creating a job at %s needs that "
			  "coordinator's submit key: give --submit-key FILE, "
			  "set WEFT_SUBMIT_KEY=FILE, or coordinator."
			  "submit_key_file in the config (FILE: a copy of "
			  "its " WEFT_SUBMIT_KEY_FILE_NAME
			  ", beside its store; see docs/security.md)",
			  o->coordinator);
		return -1;
	}
	char err[1024];
	if (weft_submit_key_load(path, false, key, err, sizeof(err))) {
		cli_error("submit: %s", err);
		return -1;
	}
	return 0;
}

static void stop_coordinator(void)
{
	if (spawned <= 0)
		return;
	kill(spawned, SIGTERM);
	int st;
	while (waitpid(spawned, &st, 0) < 0 && errno == EINTR)
		;
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		cli_error("submit: the coordinator (pid %d) did not stop "
			  "cleanly",
			  (int)spawned);
	spawned = -1;
}

/* Run CMD untraced (host-submit: it is a launcher), signals passed on. */
static volatile pid_t launched = -1;

static void pass_signal(int sig)
{
	if (launched > 0)
		kill(launched, sig);
}

static int run_launcher(char **cmd)
{
	char exe[WEFT_MAX_PATH_BYTES + 1];
	int rc = weft_wrap_resolve_command(cmd[0], exe, sizeof(exe));
	if (rc != 0)
		return rc;
	struct sigaction sa = {.sa_handler = pass_signal}, old[3];
	sigemptyset(&sa.sa_mask);
	const int sigs[3] = {SIGINT, SIGTERM, SIGHUP};
	for (int i = 0; i < 3; i++)
		sigaction(sigs[i], &sa, &old[i]);
	pid_t pid = fork();
	if (pid == 0) {
		for (int i = 0; i < 3; i++)
			sigaction(sigs[i], &old[i], NULL);
		execv(exe, cmd);
		_exit(errno == ENOENT ? WEFT_EXIT_NOTFOUND : WEFT_EXIT_NOEXEC);
	}
	if (pid < 0) {
		cli_error("submit: cannot start %s: %s", cmd[0],
			  strerror(errno));
		rc = WEFT_EXIT_INTERNAL;
	} else {
		launched = pid;
		int st;
		while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
			;
		launched = -1;
		rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	}
	for (int i = 0; i < 3; i++)
		sigaction(sigs[i], &old[i], NULL);
	return rc;
}

/* in-cluster: CMD is the job's driver, traced as one of its tasks. */
static int run_driver(weft_wrap_trace *t, const struct submit_opts *o,
		      const weft_wrap_env *env)
{
	weft_wrap_identity id;
	char err[512], host[WEFT_MAX_NAME_BYTES] = "";
	gethostname(host, sizeof(host) - 1);
	/* Checked before the job was created; cannot fail here. */
	weft_wrap_identity_get(&id, o->task ? o->task : "driver",
			       weft_wrap_getenv, host, err, sizeof(err));
	weft_report report;
	weft_report_init(&report);
	weft_uuid_new(report.run_id);
	int rc = weft_wrap_trace_run(t, env->spool, &report);
	if (rc == 0) {
		snprintf(report.node, sizeof(report.node), "%s", id.node);
		weft_store *cache = NULL;
		weft_wrap_hash_files(&cache, id.task, NULL, &report, o->verbose,
				     NULL, NULL);
		weft_store_close(cache);
		weft_wrap_ship_opts ship = {
			.env = env,
			.id = &id,
			.ship_timeout_ms = o->ship_timeout_ms,
			.verbose = o->verbose,
		};
		weft_wrap_ship_report(&ship, &report);
		rc = t->status;
	}
	weft_report_release(&report);
	return rc;
}

static int export_contract(const weft_wrap_env *e, const char *tracer,
			   bool in_cluster, const char *task)
{
	if (setenv("WEFT_COORDINATOR", e->coordinator, 1) ||
	    setenv("WEFT_JOB", e->job, 1) ||
	    setenv("WEFT_JOB_TOKEN", e->token, 1) ||
	    (tracer && setenv("WEFT_TRACER", tracer, 1)) ||
	    (in_cluster && setenv("WEFT_PARENT", task ? task : "driver", 1))) {
		cli_error("submit: cannot set the env contract: %s",
			  strerror(errno));
		return -1;
	}
	return 0;
}

/* `ray job submit`: its runtime env and entrypoint rewritten for weft
 * (weft/ray.h) with this job's contract, into *out. With env NULL a dry
 * run with placeholder values: every problem of the user's runtime env
 * shows before a job exists. 0, or WEFT_EXIT_USAGE after saying why. */
static int ray_rewrite(char **cmd, const weft_config *cfg,
		       const weft_wrap_env *env, const char *tracer,
		       const char *env_file, char ***out)
{
	const char *names[5] = {"WEFT_COORDINATOR", "WEFT_JOB",
				"WEFT_JOB_TOKEN", NULL, NULL};
	const char *values[5] = {"?", "?", "?", NULL, NULL};
	if (env) {
		values[0] = env->coordinator;
		values[1] = env->job;
		values[2] = env->token;
	}
	if (tracer) {
		names[3] = "WEFT_TRACER";
		values[3] = tracer;
	}
	weft_ray_submit_opts ro = {cfg->ray_weft_binary, cfg->ray_python_path,
				   names, values, env_file};
	char err[1024];
	char **argv = NULL;
	if (weft_ray_submit_rewrite(cmd, &ro, &argv, err, sizeof(err)) != 0) {
		cli_error("submit: %s; nothing was submitted", err);
		return WEFT_EXIT_USAGE;
	}
	if (out)
		*out = argv;
	else
		weft_ray_submit_free(argv);
	return 0;
}

int cmd_submit(int argc, char **argv)
{
	struct submit_opts o;
	int rc = parse_args(argc, argv, &o);
	if (rc != CLI_GO)
		return rc;
	char **cmd = argv + optind;
	weft_wrap_env env;
	char err[1024];
	if (weft_wrap_env_read(&env, weft_wrap_getenv, false, err,
			       sizeof(err)) != WEFT_OK) {
		cli_error("submit: %s", err);
		return WEFT_EXIT_USAGE;
	}
	if (o.task && weft_wrap_check_task(o.task) != 0)
		return cli_usage_error("submit",
				       "--task '%s': expected 1 to %d "
				       "printable characters without spaces",
				       o.task, WEFT_MAX_TASK_BYTES);
	/* Everything that can fail without CMD fails before the job. */
	weft_wrap_trace t;
	weft_config cfg; /* t keeps pointers into it */
	if (o.in_cluster) {
		if (config_load(&cfg, o.tracer, false, stderr) != 0)
			return WEFT_EXIT_USAGE;
		/* The driver's environment for Ray, as weft run --ray sets
		 * it (docs/ray.md): the runtime-env hook, the weft package on
		 * PYTHONPATH. Unused by a driver that does not call
		 * ray.init(). */
		if (weft_ray_driver_env(cfg.ray_python_path,
					cfg.ray_weft_binary, err,
					sizeof(err)) != 0) {
			cli_error("%s", err);
			return WEFT_EXIT_USAGE;
		}
		weft_wrap_tracer_opts to;
		const char *env_names[WEFT_WRAP_MAX_ENV_VALUES];
		config_tracer_opts(&cfg, env_names, &to);
		rc = weft_wrap_trace_prepare(&t, cmd, &to, o.verbose);
		if (rc != 0)
			return rc;
	}
	/* Ray host-submit: the runtime env checked before the job exists. */
	bool ray = !o.in_cluster && weft_ray_submit_matches(cmd);
	if (ray) {
		if (config_load(&cfg, o.tracer, false, stderr) != 0)
			return WEFT_EXIT_USAGE;
		rc = ray_rewrite(cmd, &cfg, NULL, o.tracer, NULL, NULL);
		if (rc != 0)
			return rc;
	}
	uint8_t submit_key[WEFT_SUBMIT_KEY_BYTES];
	if (o.coordinator && load_submit_key(&o, submit_key) != 0)
		return WEFT_EXIT_INTERNAL;
	weft_job_info j;
	weft_wrap_job_info(&j, cmd);
	char url[WEFT_WRAP_MAX_URL_BYTES + 1];
	if (o.coordinator)
		snprintf(url, sizeof(url), "%s", o.coordinator);
	else if (start_coordinator(o.listen, url, sizeof(url), submit_key) !=
		 0) {
		free(j.command);
		stop_coordinator();
		return WEFT_EXIT_INTERNAL;
	}
	weft_buf req;
	weft_buf_init(&req);
	rc = weft_req_job_create(&j, submit_key, &req);
	if (rc != WEFT_OK) {
		cli_error("submit: cannot encode the job: %s",
			  weft_strerror(rc));
	} else {
		rc = weft_wrap_coordinator_call(url, env.tls_ca, &req,
						"creating the job");
	}
	weft_buf_free(&req);
	free(j.command);
	snprintf(env.coordinator, sizeof(env.coordinator), "%s", url);
	memcpy(env.job, j.id, sizeof(env.job));
	snprintf(env.token, sizeof(env.token), "%s", j.token);
	if (rc != 0 || export_contract(&env, o.tracer, o.in_cluster, o.task)) {
		stop_coordinator();
		return WEFT_EXIT_INTERNAL;
	}
	fprintf(stderr, "weft: job %s: coordinator %s%s\n", j.id, url,
		o.coordinator ? "" : " (started for this job)");
	/* No nng threads across the tracer's fork. */
	weft_wrap_quiesce();
	char **ray_cmd = NULL;
	int status;
	/* The runtime env holds the token: a file in a directory of our own
	 * (mkdtemp: 0700, a name nobody can guess), removed when the job
	 * ends, never a command-line argument. */
	char env_dir[] = "/tmp/weft-ray-env-XXXXXX", env_file[64] = "";
	bool private_dir = ray && mkdtemp(env_dir);
	if (private_dir)
		snprintf(env_file, sizeof(env_file), "%s/runtime_env.json",
			 env_dir);
	if (ray && !private_dir) {
		cli_error("submit: cannot make a private directory for the "
			  "runtime env: %s",
			  strerror(errno));
		status = WEFT_EXIT_INTERNAL;
	} else if (ray && ray_rewrite(cmd, &cfg, &env, o.tracer, env_file,
				      &ray_cmd) != 0)
		status = WEFT_EXIT_USAGE;
	else if (o.in_cluster)
		status = run_driver(&t, &o, &env);
	else
		status = run_launcher(ray_cmd ? ray_cmd : cmd);
	weft_ray_submit_free(ray_cmd);
	if (private_dir) {
		unlink(env_file);
		rmdir(env_dir);
	}

	weft_buf_init(&req);
	if (weft_req_job_end(j.id, j.token, status, weft_real_ns(), &req) !=
		    WEFT_OK ||
	    weft_wrap_coordinator_call(url, env.tls_ca, &req,
				       "ending the job") != 0)
		cli_error("submit: job %s is not marked ended (CMD exited %d)",
			  j.id, status);
	weft_buf_free(&req);
	stop_coordinator();
	return status;
}
