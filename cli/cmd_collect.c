/*
 * cmd_collect.c - `weft task-collect`: record one task that weft did not
 * launch, and ship it as `weft wrap` would (slurm/collect.c does;
 * weft/slurm.h). weft_spank.so starts it for every task of `srun --weft`
 * (docs/slurm.md, "How srun --weft tasks are recorded"); nobody else
 * needs to.
 *
 *   weft task-collect --pid PID --ready-fd FD --control NAME
 *                     [--task ID] [--ship-timeout SEC]
 *                     [--tracer preload|ptrace|ebpf] [--agent SOCKET]
 *                     [-v] -- CMD [ARGS...]
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include <weft/slurm.h>

static const char collect_help[] =
	"usage: weft task-collect --pid PID --ready-fd FD --control NAME\n"
	"                         [--task ID] [--ship-timeout SEC]\n"
	"                         [--tracer preload|ptrace|ebpf]\n"
	"                         [--agent SOCKET] [-v] -- CMD [ARGS...]\n\n"
	"Record the task PID (about to exec CMD) and ship it to the job of\n"
	"the env contract, as weft wrap does. weft_spank.so runs this for\n"
	"each task of `srun --weft`; see docs/slurm.md. Not meant to be run\n"
	"by hand.\n";

/* A decimal number from min to max into *out; 0, or -1. */
static int parse_number(const char *s, long min, long max, long *out)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || *end || end == s || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

static int parse_args(int argc, char **argv, weft_slurm_collect_opts *o)
{
	static const struct option opts[] = {
		{"pid", required_argument, NULL, 'p'},
		{"ready-fd", required_argument, NULL, 'r'},
		{"control", required_argument, NULL, 'c'},
		{"task", required_argument, NULL, 'T'},
		{"ship-timeout", required_argument, NULL, 'S'},
		{"tracer", required_argument, NULL, 't'},
		{"agent", required_argument, NULL, 'a'},
		{"verbose", no_argument, NULL, 'v'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	memset(o, 0, sizeof(*o));
	o->ready_fd = -1;
	o->tracer = "preload";
	o->ship_timeout_ms = WEFT_WRAP_SHIP_TIMEOUT_DEFAULT_MS;
	int c;
	long v;
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "+vh", opts, NULL)) != -1) {
		switch (c) {
		case 'p':
			if (parse_number(optarg, 2, INT_MAX, &v) != 0)
				return cli_usage_error("task-collect",
						       "--pid '%s': expected a "
						       "process id",
						       optarg);
			o->pid = (pid_t)v;
			break;
		case 'r':
			if (parse_number(optarg, 3, 65535, &v) != 0)
				return cli_usage_error("task-collect",
						       "--ready-fd '%s': "
						       "expected a file "
						       "descriptor from 3",
						       optarg);
			o->ready_fd = (int)v;
			break;
		case 'c':
			o->control = optarg;
			break;
		case 'T':
			o->task = optarg;
			break;
		case 'S':
			if (cli_seconds_arg("task-collect", "--ship-timeout",
					    optarg, &o->ship_timeout_ms) != 0)
				return WEFT_EXIT_USAGE;
			break;
		case 't':
			o->tracer = optarg;
			break;
		case 'a':
			o->agent = optarg;
			break;
		case 'v':
			o->verbose++;
			break;
		case 'h':
			fputs(collect_help, stdout);
			return -1;
		default:
			return cli_usage_error(
				"task-collect",
				"unknown option or missing value "
				"'%s'",
				argv[optind - 1]);
		}
	}
	if (!o->pid || o->ready_fd < 0 || !o->control)
		return cli_usage_error("task-collect", "--pid, --ready-fd and "
						       "--control are needed");
	if (!*o->control || strlen(o->control) > 100)
		return cli_usage_error("task-collect",
				       "--control '%.64s': expected a name of "
				       "1 to 100 bytes",
				       o->control);
	if (optind >= argc)
		return cli_usage_error("task-collect", "missing the command");
	o->argv = argv + optind;
	return 0;
}

int cmd_task_collect(int argc, char **argv)
{
	weft_slurm_collect_opts o;
	int rc = parse_args(argc, argv, &o);
	if (rc)
		return rc < 0 ? 0 : rc;
	return weft_slurm_collect(&o);
}
