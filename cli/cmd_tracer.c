/*
 * cmd_tracer.c - `weft tracer`, `weft tracer check MODE` and `weft tracer
 * use MODE`: the configured mode and where it came from, each backend's
 * strict preflight (for people or as JSON), what `auto` resolves to, and
 * writing tracer.mode into a config file. Also the auto selection `weft
 * run` shares. Backends are only ever reached through the registry.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "config.h"

static const char tracer_help[] =
	"usage: weft tracer\n"
	"       weft tracer check MODE [--json] [--command CMD]\n"
	"       weft tracer use MODE [--user]\n"
	"       weft tracer enable MODE [--binary PATH]\n\n"
	"Without arguments: the configured mode and where it came from, every\n"
	"backend's preflight verdict on this machine, and what auto picks.\n"
	"check MODE: run MODE's named checks (platform, privileges, kernel\n"
	"features, a real probe run) and print them; with --command, also\n"
	"what matters about CMD for that backend. MODE auto checks every\n"
	"backend and names the one auto picks. Exit 0 only when MODE works.\n"
	"use MODE: write tracer.mode into the project's .weft/config.toml\n"
	"(the user's ~/.weft/config.toml outside a project, or with --user).\n"
	"enable MODE: one-time setup so MODE works for users who are not\n"
	"root (ebpf: file capabilities cap_bpf,cap_perfmon on this weft\n"
	"binary; tracefs and bpffs mounted if absent). Run it as root; it\n"
	"prints what it changed and is safe to run again.\n"
	"\n  --json          {backend, ok, summary, command_checked, checks, "
	"warnings}\n"
	"                  (auto: {backend, ok, selected_backend, summary,\n"
	"                  command_checked, results: [...]})\n"
	"  --command CMD   also check CMD (exists, executable, setuid...)\n"
	"  --user          use: write the user file even inside a project\n"
	"  --binary PATH   enable: the weft binary to set up (default: this "
	"one)\n";

static void print_preflight(const weft_preflight *p)
{
	printf("%s: %s\n", p->backend, p->ok ? "ok" : "NOT usable");
	printf("  %s\n", p->summary);
	for (size_t i = 0; i < p->nchecks; i++) {
		printf("  [%s] %-14s ", p->checks[i].ok ? " ok " : "FAIL",
		       p->checks[i].name);
		text_escaped(stdout, p->checks[i].detail);
		putchar('\n');
	}
	for (size_t i = 0; i < p->nwarnings; i++) {
		fputs("  warning: ", stdout);
		text_escaped(stdout, p->warnings[i]);
		putchar('\n');
	}
}

/* One line on what auto resolves to, for `weft tracer` and `check auto`. */
static void auto_summary(const weft_preflight *results, int selected, char *buf,
			 size_t bufsz)
{
	char rejected[2048];
	weft_preflight_rejected(results, selected, rejected, sizeof(rejected));
	if (selected >= 0)
		snprintf(buf, bufsz,
			 "auto selects %s: the first backend in "
			 "auto order that passed its preflight%s%s",
			 results[selected].backend,
			 rejected[0] ? "; rejected: " : "", rejected);
	else
		snprintf(buf, bufsz, "no backend passed its preflight: %s",
			 rejected);
}

static const cli_cmd tracer_check_cmd = {
	.name = "tracer check",
	.help = tracer_help,
	.max_args = 1,
	.missing = "missing the MODE",
};

static int tracer_check(int argc, char **argv)
{
	bool json = false;
	const char *command = NULL;
	const cli_opt opts[] = {
		{"json", 'j', CLI_FLAG, &json},
		{"command", 'c', CLI_STRING, &command},
		{NULL},
	};
	int c = cli_parse(&tracer_check_cmd, opts, argc, argv);
	if (c != CLI_GO)
		return c;
	const char *mode = argv[optind];
	if (!config_mode_valid(mode)) {
		char modes[256];
		config_modes(modes, sizeof(modes));
		return cli_usage_error(
			"tracer check",
			"unknown tracer '%s'; expected one of %s", mode, modes);
	}
	weft_config cfg;
	if (config_load(&cfg, NULL, false, stderr) != 0)
		return WEFT_EXIT_USAGE;

	size_t n =
		strcmp(mode, CONFIG_MODE_AUTO) == 0 ? weft_backends_count() : 1;
	weft_preflight *p = calloc(n ? n : 1, sizeof(*p));
	if (!p) {
		cli_error("out of memory");
		return 1;
	}
	int ok;
	if (strcmp(mode, CONFIG_MODE_AUTO) == 0) {
		int sel = weft_preflight_auto(
			p, command, cfg.preflight_timeout_ms, false, false);
		char summary[4096];
		auto_summary(p, sel, summary, sizeof(summary));
		if (json) {
			json_preflight_auto(stdout, p, n, sel, summary,
					    command);
			putchar('\n');
		} else {
			for (size_t i = 0; i < n; i++)
				print_preflight(&p[i]);
			fputs("auto: ", stdout);
			text_escaped(stdout, summary);
			putchar('\n');
		}
		ok = sel >= 0;
	} else {
		weft_preflight_run(weft_backend_find(mode), p, command,
				   cfg.preflight_timeout_ms);
		if (json) {
			json_preflight(stdout, p);
			putchar('\n');
		} else {
			print_preflight(p);
		}
		ok = p->ok;
	}
	free(p);
	return ok ? 0 : 1;
}

static const cli_cmd tracer_use_cmd = {
	.name = "tracer use",
	.help = tracer_help,
	.max_args = 1,
};

static int tracer_use(int argc, char **argv)
{
	bool user_only = false;
	const cli_opt opts[] = {
		{"user", 'u', CLI_FLAG, &user_only},
		{NULL},
	};
	int c = cli_parse(&tracer_use_cmd, opts, argc, argv);
	if (c != CLI_GO)
		return c;
	char modes[256];
	config_modes(modes, sizeof(modes));
	if (optind >= argc)
		return cli_usage_error("tracer use",
				       "missing the MODE (one of %s)", modes);
	const char *mode = argv[optind];
	if (!config_mode_valid(mode))
		return cli_usage_error(
			"tracer use", "unknown tracer '%s'; expected one of %s",
			mode, modes);
	char user[CONFIG_PATH_BYTES], project[CONFIG_PATH_BYTES];
	config_paths(user, project);
	bool to_project = project[0] && !user_only;
	const char *path = to_project ? project : user;
	if (!path[0]) {
		cli_error("HOME is not set (or not absolute): no user config "
			  "file to write");
		return 1;
	}
	if (config_write_mode(path, mode, stderr) != 0)
		return 1;
	printf("tracer.mode = \"%s\" written to %s (%s)\n", mode, path,
	       to_project ? "project file" : "user file");
	/* Say when something stronger hides what was just written. */
	const char *env = getenv("WEFT_TRACER");
	if (env && *env)
		printf("note: WEFT_TRACER=%s is set and overrides it\n", env);
	else if (!to_project && project[0])
		printf("note: the project file %s, when it sets tracer.mode, "
		       "overrides it here\n",
		       project);
	return 0;
}

static const cli_cmd tracer_enable_cmd = {
	.name = "tracer enable",
	.help = tracer_help,
	.max_args = 1,
	.missing = "missing the MODE",
};

static int tracer_enable(int argc, char **argv)
{
	const char *binary = NULL;
	const cli_opt opts[] = {
		{"binary", 'b', CLI_STRING, &binary},
		{NULL},
	};
	int c = cli_parse(&tracer_enable_cmd, opts, argc, argv);
	if (c != CLI_GO)
		return c;
	const weft_backend *b = weft_backend_find(argv[optind]);
	if (!b) {
		char modes[256];
		config_modes(modes, sizeof(modes));
		return cli_usage_error("tracer enable",
				       "unknown tracer '%s'; expected one of "
				       "%s",
				       argv[optind], modes);
	}
	char self[WEFT_MAX_PATH_BYTES + 1];
	if (!binary) {
		ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
		if (n <= 0) {
			cli_error("cannot find this weft binary "
				  "(/proc/self/exe); name it with --binary");
			return 1;
		}
		self[n] = '\0';
		binary = self;
	}
	if (!b->enable) {
		printf("unchanged: the %s tracer needs no setup\n", b->name);
		return 0;
	}
	if (b->enable(binary, stdout) != 0)
		return 1;
	printf("next: 'weft tracer check %s' shows whether it works\n",
	       b->name);
	return 0;
}

static void print_origin(const char *what, enum config_source s,
			 const weft_config *cfg)
{
	printf("%s%s", what, config_source_name(s));
	if (s == CONFIG_USER_FILE)
		printf(" %s", cfg->user_file);
	else if (s == CONFIG_PROJECT_FILE)
		printf(" %s", cfg->project_file);
	puts(")");
}

static int tracer_status(void)
{
	weft_config cfg;
	if (config_load(&cfg, NULL, false, stderr) != 0)
		return WEFT_EXIT_USAGE;
	char what[128];
	snprintf(what, sizeof(what), "mode: %s (", cfg.mode);
	print_origin(what, cfg.mode_from, &cfg);
	snprintf(what, sizeof(what), "fallback: %s (",
		 cfg.fallback_enabled ? "enabled" : "disabled");
	print_origin(what, cfg.fallback_from, &cfg);
	snprintf(what, sizeof(what), "preflight timeout: %d ms (",
		 cfg.preflight_timeout_ms);
	print_origin(what, cfg.timeout_from, &cfg);
	putchar('\n');

	size_t n = weft_backends_count();
	weft_preflight *p = calloc(n ? n : 1, sizeof(*p));
	if (!p) {
		cli_error("out of memory");
		return 1;
	}
	int sel = weft_preflight_auto(p, NULL, cfg.preflight_timeout_ms, false,
				      false);
	for (size_t i = 0; i < n; i++)
		print_preflight(&p[i]);
	char summary[4096];
	auto_summary(p, sel, summary, sizeof(summary));
	fputs("\nauto: ", stdout);
	text_escaped(stdout, summary);
	putchar('\n');
	free(p);
	return 0;
}

int cmd_tracer(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "check") == 0)
		return tracer_check(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "use") == 0)
		return tracer_use(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "enable") == 0)
		return tracer_enable(argc - 1, argv + 1);
	if (argc >= 2 &&
	    (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		fputs(tracer_help, stdout);
		return 0;
	}
	if (argc >= 2)
		return cli_usage_error("tracer", "unknown subcommand '%s'",
				       argv[1]);
	return tracer_status();
}
