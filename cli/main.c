/*
 * main.c - the weft command: global options, dispatch to subcommands, and
 * the helpers every subcommand shares (errors, finding the project store).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include <weft/base.h>
#include <weft/local.h>

static const struct command {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *summary;
} commands[] = {
	{"run", cmd_run, "trace a command and record what it read and wrote"},
	{"show", cmd_show, "show a recorded run (the latest by default)"},
	{"dag", cmd_dag, "print the lineage DAG of the recorded runs"},
	{"export", cmd_export,
	 "the lineage as OpenLineage, W3C PROV, RO-Crate, JSON or dot"},
	{"lineage", cmd_lineage, "where a file came from, or what it fed"},
	{"stale", cmd_stale, "which recorded outputs are out of date"},
	{"diff", cmd_diff, "what differs between two runs, jobs or versions"},
	{"rerun", cmd_rerun, "run a recorded run again; --check: reproduced?"},
	{"tracer", cmd_tracer, "check the tracer backends on this machine"},
	{"agent", cmd_agent, "serve this machine's one eBPF load to wrappers"},
	{"submit", cmd_submit, "start a job: its tasks ship to one store"},
	{"wrap", cmd_wrap, "trace one task of a job and ship it (weft submit)"},
	{"flush", cmd_flush, "send what the spool holds to its coordinator"},
	{"job", cmd_job, "list the recorded jobs, or show one"},
	{"coordinator", cmd_coordinator, "serve a store to a job's wrappers"},
	{"status", cmd_status, "jobs, writers, fragments, gaps and refusals"},
	{"verify", cmd_verify, "re-check every stored fragment's signature"},
	{"pull", cmd_pull, "copy signed fragments from a store or coordinator"},
	{"task-collect", cmd_task_collect,
	 "record a task weft_spank.so started (internal)"},
};

static void usage(FILE *out)
{
	fputs("usage: weft [--version] [--help] COMMAND [ARGS...]\n\n"
	      "weft records which files every process of a command read and\n"
	      "wrote, with content hashes, and builds a lineage DAG.\n\n"
	      "commands:\n",
	      out);
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(out, "  %-12s %s\n", commands[i].name,
			commands[i].summary);
	fputs("\n'weft COMMAND --help' describes one command.\n", out);
}

void cli_error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	weft_vsay(fmt, ap);
	va_end(ap);
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "weft %s: ", cmd);
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\ntry 'weft %s --help'\n", cmd);
	va_end(ap);
	return WEFT_EXIT_USAGE;
}

bool cli_is_system_path(const char *p)
{
	static const char *const prefixes[] = {"/usr/", "/lib/", "/lib64/",
					       "/lib32/", "/etc/", "/bin/",
					       "/sbin/", "/var/lib/", NULL};
	for (size_t i = 0; prefixes[i]; i++)
		if (strncmp(p, prefixes[i], strlen(prefixes[i])) == 0)
			return true;
	return false;
}

void cli_dir_of(const char *path, char *dir, size_t dirsz)
{
	const char *slash = strrchr(path, '/');
	if (!slash)
		snprintf(dir, dirsz, ".");
	else if (slash == path)
		snprintf(dir, dirsz, "/");
	else
		snprintf(dir, dirsz, "%.*s", (int)(slash - path), path);
}

weft_store *cli_open_store(bool create, char *weft_dir, size_t weft_dir_sz)
{
	char cwd[WEFT_MAX_PATH_BYTES + 1], dir[WEFT_MAX_PATH_BYTES + 16];
	if (!getcwd(cwd, sizeof(cwd))) {
		cli_error("cannot read the working directory: %s",
			  strerror(errno));
		return NULL;
	}
	int err = weft_store_find_dir(cwd, dir, sizeof(dir));
	if (err == WEFT_ENOTFOUND) {
		if (!create) {
			cli_error("no weft project here: no %s directory in %s "
				  "or above (weft run creates one)",
				  WEFT_DIR_NAME, cwd);
			return NULL;
		}
		snprintf(dir, sizeof(dir), "%s%s" WEFT_DIR_NAME, cwd,
			 strcmp(cwd, "/") == 0 ? "" : "/");
		/* The store is its owner's alone (docs/security.md). */
		if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
			cli_error("cannot create %s: %s", dir, strerror(errno));
			return NULL;
		}
	} else if (err != WEFT_OK) {
		cli_error("cannot look for a %s directory from %s: %s",
			  WEFT_DIR_NAME, cwd, weft_strerror(err));
		return NULL;
	}
	/* A reader sees every run whose weft has exited, also one still
	 * being stored after it (weft run --wait-stored), and one whose
	 * storing was cut short (its record left in the spool). */
	if (!create) {
		int waited = weft_local_wait_stored(dir, isatty(STDERR_FILENO));
		/* And every run whose storing was cut short; then, once
		 * more, for another reader that was storing them (this one
		 * left the writers it found held), unless it gave up. */
		weft_local_store_left(dir);
		if (waited == 0)
			weft_local_wait_stored(dir, isatty(STDERR_FILENO));
	}
	char db[sizeof(dir) + 16];
	snprintf(db, sizeof(db), "%s/" WEFT_DB_NAME, dir);
	weft_store *s = NULL;
	err = weft_store_open(db, &s);
	if (err != WEFT_OK) {
		if (err == WEFT_EVERSION)
			cli_error("%s was written by a newer weft; it is left "
				  "untouched",
				  db);
		else if (err == WEFT_EDB)
			cli_error("cannot open the store %s: not a weft "
				  "database, or unreadable; it is left "
				  "untouched",
				  db);
		else if (err == WEFT_EBUSY)
			cli_error(
				"cannot open the store %s: another process "
				"kept it locked for 5 s; it is left untouched "
				"(try again once that process is done)",
				db);
		else
			cli_error("cannot open the store %s: %s", db,
				  s ? weft_store_errmsg(s) : weft_strerror(err));
		weft_store_close(s);
		return NULL;
	}
	if (weft_dir)
		snprintf(weft_dir, weft_dir_sz, "%s", dir);
	return s;
}

/* Settings more than one command reads from the environment
 * (docs/config.md): a value weft does not understand stops the command
 * before it does anything, rather than quietly meaning the default. An
 * empty value is the default. */
static bool env_settings_ok(void)
{
	const char *v = getenv("WEFT_PREHASH");
	if (v && *v && strcmp(v, "on") && strcmp(v, "1") && strcmp(v, "off") &&
	    strcmp(v, "0")) {
		cli_error("WEFT_PREHASH='%.32s': expected on or off (1 or 0)",
			  v);
		return false;
	}
	v = getenv("WEFT_PROGRESS_DELAY_MS");
	if (v && *v) {
		char *end;
		errno = 0;
		unsigned long long ms = strtoull(v, &end, 10);
		if (errno || *end || v[0] < '0' || v[0] > '9' ||
		    ms > 86400000ULL) {
			cli_error("WEFT_PROGRESS_DELAY_MS='%.32s': expected a "
				  "number of milliseconds from 0 to 86400000",
				  v);
			return false;
		}
	}
	return true;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return WEFT_EXIT_USAGE;
	}
	const char *cmd = argv[1];
	if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "-V") == 0) {
		printf("weft %s\n", WEFT_VERSION);
		return 0;
	}
	if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 ||
	    strcmp(cmd, "help") == 0) {
		usage(stdout);
		return 0;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(cmd, commands[i].name) == 0)
			return env_settings_ok()
				       ? commands[i].fn(argc - 1, argv + 1)
				       : WEFT_EXIT_USAGE;
	if (cmd[0] == '-')
		cli_error("unknown option '%s'", cmd);
	else
		cli_error("unknown command '%s'", cmd);
	usage(stderr);
	return WEFT_EXIT_USAGE;
}
