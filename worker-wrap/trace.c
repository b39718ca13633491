/*
 * trace.c - the path every traced command takes, shared by `weft run`,
 * `weft wrap` and `weft submit --mode in-cluster`: find the command, pick
 * and preflight the tracer (before anything is launched), then trace it
 * through the manager with weft's signal handling, and finish the report.
 * What goes wrong is said on stderr here, in the words the user acts on:
 * the executable is a library of the one weft executable.
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <weft/backends.h>
#include <weft/base.h>
#include <weft/store.h>
#include <weft/wrap.h>

extern char **environ;

int weft_wrap_resolve_command(const char *cmd, char *out, size_t outsz)
{
	struct stat st;
	if (strchr(cmd, '/')) {
		if (stat(cmd, &st) != 0) {
			int e = errno;
			weft_say("%s: %s", cmd, strerror(e));
			return e == ENOENT || e == ENOTDIR ? WEFT_EXIT_NOTFOUND
							   : WEFT_EXIT_NOEXEC;
		}
		if (S_ISDIR(st.st_mode) || access(cmd, X_OK) != 0) {
			weft_say("%s: %s", cmd,
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
		int n = snprintf(out, outsz, "%.*s%s%s", len, p, len ? "/" : "",
				 cmd);
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
		weft_say("%s: permission denied", cmd);
		return WEFT_EXIT_NOEXEC;
	}
	weft_say("%s: command not found", cmd);
	return WEFT_EXIT_NOTFOUND;
}

void weft_wrap_prehash_start(weft_wrap_trace *t, const char *cache_path)
{
	/* Every backend, ptrace too: it pins itself and a single-task
	 * workload to one CPU while it stops often, and the thread keeps off
	 * that CPU (bench/realistic, 9 rounds against no thread under
	 * ptrace: cp -r 0.92x, tar 0.94x, postmark 0.92x, the rest even;
	 * 300 fresh files of 200 KB read by cat 0.59x). The CPU is chosen
	 * once, here, by the backend that pins (WEFT_PTRACE_PIN), and given
	 * back to it (weft_launch.cpu): asked twice, the answers differed in
	 * about one run of thirty. Else the thread keeps off this thread's
	 * CPU. */
	t->cpu = t->backend->pin_cpu ? t->backend->pin_cpu() : sched_getcpu();
	t->prehash = weft_prehash_start(cache_path, t->cpu);
}

static void offer_file(void *arg, const char *path, const weft_event *ev)
{
	weft_prehash_offer(arg, path, ev);
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
static const weft_backend *preflight_auto(const char *command, int timeout_ms,
					  int verbose)
{
	size_t n = weft_backends_count();
	weft_preflight *p = calloc(n ? n : 1, sizeof(*p));
	if (!p) {
		weft_say("out of memory");
		return NULL;
	}
	int sel = weft_preflight_auto(p, command, timeout_ms, true, true);
	/* The failed checks when nothing passed (why the command did not
	 * start); once a backend passed, the ones before it are rejected in
	 * one line with -v, their checks with -vv. */
	for (size_t i = 0; i < n; i++)
		if (p[i].backend[0] && ((!p[i].ok && sel < 0) || verbose >= 2))
			print_checks(&p[i], verbose);
	char rejected[2048];
	weft_preflight_rejected(p, sel, rejected, sizeof(rejected));
	const weft_backend *b = sel >= 0 ? weft_backends[sel] : NULL;
	if (!b)
		weft_say("tracer auto: no backend passed its preflight (%s); "
			 "the command was not started ('weft tracer check "
			 "auto', or 'weft tracer check MODE' for one backend, "
			 "explains)",
			 rejected);
	else if (verbose >= 1)
		fprintf(stderr,
			"weft: tracer auto: picked %s, the first in "
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
		weft_say("out of memory");
		return -1;
	}
	weft_preflight_reuse(b, p, command, timeout_ms);
	int ok = p->ok;
	print_checks(p, verbose);
	if (!ok)
		weft_say("tracer preflight failed for '%s': %s; the command "
			 "was not started ('weft tracer check %s' explains)",
			 b->name, p->summary, b->name);
	free(p);
	return ok ? 0 : -1;
}

int weft_wrap_trace_prepare(weft_wrap_trace *t, char **cmd,
			    const weft_wrap_tracer_opts *o, int verbose)
{
	memset(t, 0, sizeof(*t));
	t->cmd = cmd;
	t->opts = *o;
	t->verbose = verbose;
	if (o->nenv_values > WEFT_WRAP_MAX_ENV_VALUES) {
		weft_say("record.env_values: more than %d names",
			 WEFT_WRAP_MAX_ENV_VALUES);
		return WEFT_EXIT_INTERNAL;
	}
	for (size_t i = 0; i < o->nenv_values; i++)
		t->env_values[i] = o->env_values[i];
	t->opts.env_values = t->env_values;
	int rc = weft_wrap_resolve_command(cmd[0], t->exe, sizeof(t->exe));
	if (rc != 0)
		return rc;
	if (strcmp(o->mode, WEFT_WRAP_MODE_AUTO) == 0) {
		t->backend = preflight_auto(t->exe, o->preflight_timeout_ms,
					    verbose);
		if (!t->backend)
			return WEFT_EXIT_PREFLIGHT;
	} else {
		/* The caller checked the mode: it is registered. */
		t->backend = weft_backend_find(o->mode);
		if (preflight_or_explain(t->backend, t->exe,
					 o->preflight_timeout_ms, verbose) != 0)
			return WEFT_EXIT_PREFLIGHT;
	}
	weft_log(1, "tracer %s selected (mode %s from %s)", t->backend->name,
		 o->mode, o->mode_from);
	return 0;
}

/* The interpreter exe names, when it is one that is missing: the program
 * its #! line names, or the dynamic loader (PT_INTERP) it was linked for.
 * Writes what to say about it to out ("its #! line names PATH, which is
 * missing"); false when exe names none or the one it names exists (then
 * what is missing is not known here). */
static bool missing_interpreter(const char *exe, char *out, size_t outsz)
{
	char buf[512], path[256] = "";
	bool script = true;
	int fd = open(exe, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
	if (n > 2 && buf[0] == '#' && buf[1] == '!') {
		buf[n] = '\0';
		const char *p = buf + 2;
		p += strspn(p, " \t");
		size_t len = strcspn(p, " \t\r\n");
		if (len < sizeof(path)) {
			memcpy(path, p, len);
			path[len] = '\0';
		}
	} else if (n >= (ssize_t)sizeof(Elf64_Ehdr) &&
		   !memcmp(buf, ELFMAG, SELFMAG) &&
		   buf[EI_CLASS] == ELFCLASS64) {
		/* 64-bit only: what this machine runs. */
		Elf64_Ehdr eh;
		memcpy(&eh, buf, sizeof(eh));
		script = false;
		for (unsigned i = 0; i < eh.e_phnum && i < 64; i++) {
			Elf64_Phdr ph;
			off_t at =
				(off_t)eh.e_phoff + (off_t)i * eh.e_phentsize;
			if (pread(fd, &ph, sizeof(ph), at) !=
			    (ssize_t)sizeof(ph))
				break;
			if (ph.p_type != PT_INTERP)
				continue;
			if (ph.p_filesz > 0 && ph.p_filesz < sizeof(path) &&
			    pread(fd, path, ph.p_filesz, (off_t)ph.p_offset) ==
				    (ssize_t)ph.p_filesz)
				path[ph.p_filesz - 1] = '\0';
			break;
		}
	}
	close(fd);
	struct stat st;
	if (!path[0] || stat(path, &st) == 0)
		return false;
	snprintf(out, outsz,
		 script ? "its #! line names %s, which is missing"
			: "its dynamic loader %s is missing",
		 path);
	return true;
}

int weft_wrap_trace_run(weft_wrap_trace *t, const char *ignore_dir,
			weft_report *report)
{
	weft_classifier *cls = weft_classifier_new();
	if (!cls ||
	    (ignore_dir &&
	     weft_classifier_ignore_prefix(cls, ignore_dir) != WEFT_OK) ||
	    weft_classifier_env_values(cls, t->env_values,
				       t->opts.nenv_values) != WEFT_OK) {
		weft_say("out of memory");
		weft_classifier_free(cls);
		return WEFT_EXIT_INTERNAL;
	}
	if (t->prehash)
		weft_classifier_on_file(cls, offer_file, t->prehash);
	snprintf(report->backend, sizeof(report->backend), "%s",
		 t->backend->name);
	if (gethostname(report->node, sizeof(report->node)) != 0)
		report->node[0] = '\0';
	report->node[sizeof(report->node) - 1] = '\0';

	/* argv[0] stays as the user typed it (the process record shows the
	 * command line); exec uses the resolved path. */
	char **cmd = t->cmd;
	char *saved_arg0 = cmd[0];
	cmd[0] = t->exe;
	weft_launch launch = {
		.argv = cmd,
		.envp = environ,
		.verbose = t->verbose,
		.classifier = cls,
		.has_cpu = t->prehash && t->cpu >= 0,
		.cpu = t->cpu,
		.observe = t->observe,
		.observe_arg = t->observe_arg,
	};
	struct sigaction sa = {.sa_handler = ignore_in_weft}, old_int, old_quit;
	struct sigaction fwd = {.sa_handler = forward_signal}, old_term,
			 old_hup;
	sigemptyset(&sa.sa_mask);
	sigemptyset(&fwd.sa_mask);
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGQUIT, &sa, &old_quit);
	forward_to = &launch;
	sigaction(SIGTERM, &fwd, &old_term);
	sigaction(SIGHUP, &fwd, &old_hup);

	report->started_ns = weft_real_ns();
	int err = weft_manager_trace(t->backend, &launch, report,
				     t->opts.fallback_enabled,
				     t->opts.preflight_timeout_ms);
	report->ended_ns = weft_real_ns();
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGQUIT, &old_quit, NULL);
	sigaction(SIGTERM, &old_term, NULL);
	sigaction(SIGHUP, &old_hup, NULL);
	forward_to = NULL;
	cmd[0] = saved_arg0;
	if (err != WEFT_OK && launch.exec_errno) {
		/* As a shell says it, with its status: nothing ran. */
		struct stat st;
		char interp[320];
		bool there =
			launch.exec_errno == ENOENT && stat(t->exe, &st) == 0;
		if (there &&
		    missing_interpreter(t->exe, interp, sizeof(interp)))
			weft_say("cannot execute %s: %s (%s)", saved_arg0,
				 strerror(launch.exec_errno), interp);
		else
			weft_say("cannot execute %s: %s%s", saved_arg0,
				 strerror(launch.exec_errno),
				 there ? " (its interpreter is missing: the "
					 "program its #! line names, or the "
					 "dynamic loader it was linked for)"
				       : "");
		weft_classifier_free(cls);
		return launch.exit_code;
	}
	if (err != WEFT_OK) {
		weft_say("could not start %s under the %s tracer: %s",
			 saved_arg0, t->backend->name, weft_strerror(err));
		weft_classifier_free(cls);
		return WEFT_EXIT_INTERNAL;
	}
	report->exit_code = launch.exit_code;
	report->dropped_events += launch.dropped_events;
	t->status = launch.exit_code;

	err = weft_classifier_finish(cls, report);
	weft_classifier_free(cls);
	if (err != WEFT_OK)
		weft_report_warn(report, "recording incomplete: %s",
				 weft_strerror(err));
	/* The root's argv as the user typed it, not the resolved path. */
	if (report->nprocesses && report->processes[0].argc &&
	    strcmp(report->processes[0].argv[0], t->exe) == 0) {
		char *typed = strdup(saved_arg0);
		if (typed) {
			free(report->processes[0].argv[0]);
			report->processes[0].argv[0] = typed;
		}
	}
	return 0;
}

FILE *weft_wrap_log_open(const char *weft_dir, int level)
{
	char path[WEFT_MAX_PATH_BYTES + 32];
	snprintf(path, sizeof(path), "%s/tracer.log", weft_dir);
	FILE *f = fopen(path, "ae");
	if (!f) {
		weft_say("cannot write the tracer log %s: %s (going on "
			 "without it)",
			 path, strerror(errno));
		return NULL;
	}
	weft_log_set(f, level);
	return f;
}

void weft_wrap_log_close(FILE *log)
{
	if (!log)
		return;
	weft_log_set(NULL, 0);
	fclose(log);
}
