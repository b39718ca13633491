/*
 * cmd_tracer.c - `weft tracer` and `weft tracer check MODE`: each backend's
 * strict preflight, for people or as JSON. Exit 0 only when the backend
 * checked can work here.
 */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define PREFLIGHT_TIMEOUT_MS 2000

static const char tracer_help[] =
	"usage: weft tracer\n"
	"       weft tracer check MODE [--json] [--command CMD]\n\n"
	"Without arguments: every backend's preflight verdict on this machine.\n"
	"check MODE: run MODE's named checks (platform, privileges, kernel\n"
	"features, a real probe run) and print them; with --command, also\n"
	"what matters about CMD for that backend. Exit 0 only when MODE works.\n"
	"\n  --json          {backend, ok, summary, command_checked, checks, "
	"warnings}\n"
	"  --command CMD   also check CMD (exists, executable, setuid...)\n";

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

static int tracer_check(int argc, char **argv)
{
	static const struct option opts[] = {
		{"json", no_argument, NULL, 'j'},
		{"command", required_argument, NULL, 'c'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	bool json = false;
	const char *command = NULL;
	int c;
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "jc:h", opts, NULL)) != -1) {
		switch (c) {
		case 'j': json = true; break;
		case 'c': command = optarg; break;
		case 'h': fputs(tracer_help, stdout); return 0;
		case ':':
			return cli_usage_error("tracer check",
					       "option '%s' needs a value",
					       argv[optind - 1]);
		default:
			return cli_usage_error("tracer check",
					       "unknown option '%s'",
					       argv[optind - 1]);
		}
	}
	if (optind >= argc)
		return cli_usage_error("tracer check", "missing the MODE");
	if (argc - optind > 1)
		return cli_usage_error("tracer check",
				       "unexpected argument '%s'",
				       argv[optind + 1]);
	const weft_backend *b = weft_backend_find(argv[optind]);
	if (!b)
		return cli_usage_error("tracer check", "unknown tracer '%s'",
				       argv[optind]);
	weft_preflight *p = calloc(1, sizeof(*p));
	if (!p) {
		cli_error("out of memory");
		return 1;
	}
	b->preflight(p, command, PREFLIGHT_TIMEOUT_MS);
	if (json) {
		json_preflight(stdout, p);
		putchar('\n');
	} else {
		print_preflight(p);
	}
	int ok = p->ok;
	free(p);
	return ok ? 0 : 1;
}

int cmd_tracer(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "check") == 0)
		return tracer_check(argc - 1, argv + 1);
	if (argc >= 2 &&
	    (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		fputs(tracer_help, stdout);
		return 0;
	}
	if (argc >= 2)
		return cli_usage_error("tracer", "unknown subcommand '%s'",
				       argv[1]);
	weft_preflight *p = calloc(1, sizeof(*p));
	if (!p) {
		cli_error("out of memory");
		return 1;
	}
	for (size_t i = 0; weft_backends[i]; i++) {
		weft_backends[i]->preflight(p, NULL, PREFLIGHT_TIMEOUT_MS);
		print_preflight(p);
	}
	free(p);
	return 0;
}
