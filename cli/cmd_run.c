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
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "config.h"

extern char **environ;

static const char run_help[] =
	"usage: weft run [--tracer MODE] [--no-tracer-fallback]\n"
	"                [--report FILE] [-v|-vv] -- CMD [ARGS...]\n\n"
	"Run CMD traced, record every file it and its descendants read and\n"
	"wrote (with BLAKE2b-256 hashes) in the project's .weft/weft.db, and\n"
	"exit with CMD's exit status (128+N when a signal N killed it).\n\n"
	"  --tracer MODE   tracer backend: %s (default: tracer.mode of\n"
	"                  the config, WEFT_TRACER, else auto: the first\n"
	"                  backend that passes its preflight)\n"
	"  --no-tracer-fallback  never switch backends during the run\n"
	"  --report FILE   also write the run report as JSON to FILE\n"
	"  -v, -vv         more diagnostics on stderr\n\n"
	"Exit status: CMD's; 3 when the tracer's preflight failed and 125 when\n"
	"weft failed otherwise before starting CMD (CMD did not run); 126 when\n"
	"CMD is not executable; 127 when it is not found; 2 for bad arguments\n"
	"or a bad config (docs/config.md).\n";

static void print_help(void)
{
	char names[256];
	config_modes(names, sizeof(names));
	printf(run_help, names);
}

/* Find the executable CMD names the way a shell does: a name with a slash
 * is used as is, otherwise every PATH entry is tried. Returns 0 with the
 * path in out, WEFT_EXIT_NOTFOUND or WEFT_EXIT_NOEXEC. */
static int resolve_command(const char *cmd, char *out, size_t outsz)
{
	struct stat st;
	if (strchr(cmd, '/')) {
		if (stat(cmd, &st) != 0) {
			cli_error("%s: %s", cmd, strerror(errno));
			return errno == ENOENT || errno == ENOTDIR
				       ? WEFT_EXIT_NOTFOUND
				       : WEFT_EXIT_NOEXEC;
		}
		if (S_ISDIR(st.st_mode) || access(cmd, X_OK) != 0) {
			cli_error("%s: %s", cmd,
				  S_ISDIR(st.st_mode) ? "is a directory"
						      : "permission denied");
			return WEFT_EXIT_NOEXEC;
		}
		snprintf(out, outsz, "%s", cmd);
		return 0;
	}
	const char *path = getenv("PATH");
	if (!path || !*path)
		path = "/usr/local/bin:/usr/bin:/bin";
	bool found_unexecutable = false;
	for (const char *p = path;;) {
		const char *colon = strchrnul(p, ':');
		int len = (int)(colon - p);
		int n = snprintf(out, outsz, "%.*s%s%s", len, p,
				 len ? "/" : "", cmd);
		if (n > 0 && (size_t)n < outsz && stat(out, &st) == 0 &&
		    !S_ISDIR(st.st_mode)) {
			if (access(out, X_OK) == 0)
				return 0;
			found_unexecutable = true;
		}
		if (!*colon)
			break;
		p = colon + 1;
	}
	if (found_unexecutable) {
		cli_error("%s: permission denied", cmd);
		return WEFT_EXIT_NOEXEC;
	}
	cli_error("%s: command not found", cmd);
	return WEFT_EXIT_NOTFOUND;
}

static void new_run_id(char out[WEFT_MAX_NAME_BYTES])
{
	uint8_t b[16];
	if (getrandom(b, sizeof(b), 0) != (ssize_t)sizeof(b)) {
		/* Only a broken kernel gets here; time and pid still make a
		 * run id that is unique on this machine. */
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		memset(b, 0, sizeof(b));
		memcpy(b, &ts, sizeof(ts) < 12 ? sizeof(ts) : 12);
		pid_t pid = getpid();
		memcpy(b + 12, &pid, 4);
	}
	b[6] = (b[6] & 0x0f) | 0x40; /* version 4 */
	b[8] = (b[8] & 0x3f) | 0x80; /* RFC 4122 variant */
	snprintf(out, WEFT_MAX_NAME_BYTES,
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
		 "%02x%02x%02x%02x%02x%02x",
		 b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9],
		 b[10], b[11], b[12], b[13], b[14], b[15]);
}

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Terminal signals go to the whole foreground process group, the workload
 * included; weft itself must live on to record the run. A handler (not
 * SIG_IGN) so that the workload, after exec, gets the default action. */
static void ignore_in_weft(int sig)
{
	(void)sig;
}

/* SIGTERM and SIGHUP are meant for the job, not for its recorder: pass them
 * to the workload's root and record its end. (Killing weft instead would
 * take the traced workload with it: ptrace's EXITKILL.) The backend sets
 * root_pid before it lets the workload run. */
static weft_launch *volatile forward_to;

static void forward_signal(int sig)
{
	weft_launch *l = forward_to;
	if (l && l->root_pid > 0)
		kill(l->root_pid, sig);
}

static void print_checks(const weft_preflight *p, int verbose)
{
	for (size_t i = 0; i < p->nchecks; i++)
		if (!p->checks[i].ok || verbose >= 2)
			fprintf(stderr, "weft: preflight %s: %s %s: %s\n",
				p->backend, p->checks[i].name,
				p->checks[i].ok ? "ok" : "FAILED",
				p->checks[i].detail);
}

/* auto: the first registered backend whose preflight passes, or NULL
 * (after explaining every failure; the workload is then not started). */
static const weft_backend *preflight_auto(const char *command,
					  int timeout_ms, int verbose)
{
	size_t n = cli_nbackends();
	weft_preflight *p = calloc(n ? n : 1, sizeof(*p));
	if (!p) {
		cli_error("out of memory");
		return NULL;
	}
	int sel = cli_preflight_auto(p, command, timeout_ms, true);
	for (size_t i = 0; i < n; i++)
		if (p[i].backend[0] && (!p[i].ok || verbose >= 2))
			print_checks(&p[i], verbose);
	char rejected[2048];
	cli_rejected(p, sel, rejected, sizeof(rejected));
	const weft_backend *b = sel >= 0 ? weft_backends[sel] : NULL;
	if (!b)
		cli_error("tracer auto: no backend passed its preflight (%s); "
			  "the command was not started ('weft tracer check "
			  "auto', or 'weft tracer check MODE' for one backend, "
			  "explains)",
			  rejected);
	else if (verbose >= 1)
		fprintf(stderr, "weft: tracer auto: picked %s, the first in "
				"auto order that passed its preflight%s%s\n",
			b->name, rejected[0] ? "; rejected: " : "", rejected);
	free(p);
	return b;
}

static int preflight_or_explain(const weft_backend *b, const char *command,
				int timeout_ms, int verbose)
{
	weft_preflight *p = calloc(1, sizeof(*p));
	if (!p) {
		cli_error("out of memory");
		return -1;
	}
	b->preflight(p, command, timeout_ms);
	int ok = p->ok;
	print_checks(p, verbose);
	if (!ok)
		cli_error("tracer preflight failed for '%s': %s; the command "
			  "was not started ('weft tracer check %s' explains)",
			  b->name, p->summary, b->name);
	free(p);
	return ok ? 0 : -1;
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

int cmd_run(int argc, char **argv)
{
	static const struct option opts[] = {
		{"tracer", required_argument, NULL, 't'},
		{"no-tracer-fallback", no_argument, NULL, 'F'},
		{"report", required_argument, NULL, 'r'},
		{"verbose", no_argument, NULL, 'v'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *tracer = NULL, *report_path = NULL;
	bool no_fallback = false;
	int verbose = 0, c;
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "+t:r:vh", opts, NULL)) != -1) {
		switch (c) {
		case 't': tracer = optarg; break;
		case 'F': no_fallback = true; break;
		case 'r': report_path = optarg; break;
		case 'v': verbose++; break;
		case 'h': print_help(); return 0;
		case ':':
			return cli_usage_error("run", "option '%s' needs a value",
					       argv[optind - 1]);
		default:
			return cli_usage_error("run", "unknown option '%s'",
					       argv[optind - 1]);
		}
	}
	if (optind >= argc)
		return cli_usage_error("run", "missing the command to run");
	/* A bad config stops here, before anything is launched. */
	weft_config cfg;
	if (config_load(&cfg, tracer, no_fallback, stderr) != 0)
		return WEFT_EXIT_USAGE;
	/* cfg.fallback_enabled is resolved but not used yet: switching
	 * backends mid-run needs a second backend that can attach to live
	 * processes, which this weft does not have. */

	char **cmd = argv + optind;
	char exe[WEFT_MAX_PATH_BYTES + 1];
	int rc = resolve_command(cmd[0], exe, sizeof(exe));
	if (rc != 0)
		return rc;
	const weft_backend *backend;
	if (strcmp(cfg.mode, CONFIG_MODE_AUTO) == 0) {
		backend = preflight_auto(exe, cfg.preflight_timeout_ms, verbose);
		if (!backend)
			return WEFT_EXIT_PREFLIGHT;
	} else {
		/* config_load accepted the mode: it is registered. */
		backend = weft_backend_find(cfg.mode);
		if (preflight_or_explain(backend, exe, cfg.preflight_timeout_ms,
					 verbose) != 0)
			return WEFT_EXIT_PREFLIGHT;
	}

	char weft_dir[WEFT_MAX_PATH_BYTES + 16];
	weft_store *store = cli_open_store(true, weft_dir, sizeof(weft_dir));
	if (!store)
		return WEFT_EXIT_INTERNAL;
	weft_classifier *cls = weft_classifier_new();
	if (!cls || weft_classifier_ignore_prefix(cls, weft_dir) != WEFT_OK) {
		cli_error("out of memory");
		weft_classifier_free(cls);
		weft_store_close(store);
		return WEFT_EXIT_INTERNAL;
	}

	weft_report report;
	weft_report_init(&report);
	new_run_id(report.run_id);
	snprintf(report.backend, sizeof(report.backend), "%s", backend->name);
	if (gethostname(report.node, sizeof(report.node)) != 0)
		report.node[0] = '\0';
	report.node[sizeof(report.node) - 1] = '\0';

	/* argv[0] stays as the user typed it (the process record shows the
	 * command line); exec uses the resolved path. */
	char *saved_arg0 = cmd[0];
	cmd[0] = exe;
	weft_launch launch = {
		.argv = cmd,
		.envp = environ,
		.verbose = verbose,
		.classifier = cls,
	};
	struct sigaction sa = {.sa_handler = ignore_in_weft}, old_int, old_quit;
	struct sigaction fwd = {.sa_handler = forward_signal}, old_term, old_hup;
	sigemptyset(&sa.sa_mask);
	sigemptyset(&fwd.sa_mask);
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGQUIT, &sa, &old_quit);
	forward_to = &launch;
	sigaction(SIGTERM, &fwd, &old_term);
	sigaction(SIGHUP, &fwd, &old_hup);

	report.started_ns = now_ns();
	int err = backend->run(&launch, &report);
	report.ended_ns = now_ns();
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGQUIT, &old_quit, NULL);
	sigaction(SIGTERM, &old_term, NULL);
	sigaction(SIGHUP, &old_hup, NULL);
	forward_to = NULL;
	cmd[0] = saved_arg0;
	if (err != WEFT_OK) {
		cli_error("could not start %s under the %s tracer: %s",
			  saved_arg0, backend->name, weft_strerror(err));
		weft_classifier_free(cls);
		weft_report_release(&report);
		weft_store_close(store);
		return WEFT_EXIT_INTERNAL;
	}
	report.exit_code = launch.exit_code;
	report.dropped_events += launch.dropped_events;

	err = weft_classifier_finish(cls, &report);
	weft_classifier_free(cls);
	if (err != WEFT_OK)
		weft_report_warn(&report, "recording incomplete: %s",
				 weft_strerror(err));
	/* The root's argv as the user typed it, not the resolved path. */
	if (report.nprocesses && report.processes[0].argc &&
	    strcmp(report.processes[0].argv[0], exe) == 0) {
		char *typed = strdup(saved_arg0);
		if (typed) {
			free(report.processes[0].argv[0]);
			report.processes[0].argv[0] = typed;
		}
	}
	err = weft_report_hash_files(store, &report);
	if (err != WEFT_OK)
		weft_report_warn(&report, "hashing incomplete: %s",
				 weft_strerror(err));

	int status = launch.exit_code;
	err = weft_store_put_run(store, &report);
	if (err != WEFT_OK)
		cli_error("could not store the run in %s: %s (the workload "
			  "exited %d)",
			  weft_dir, weft_store_errmsg(store), status);
	if (report_path && write_report_file(report_path, &report) != 0)
		err = WEFT_EIO;
	for (size_t i = 0; i < report.nwarnings; i++)
		if (verbose >= 1)
			fprintf(stderr, "weft: warning: %s\n",
				report.warnings[i]);
	print_summary(&report);
	weft_report_release(&report);
	weft_store_close(store);
	/* The workload's status is weft's status, whatever happened to the
	 * recording (which the messages above describe). */
	return status;
}
