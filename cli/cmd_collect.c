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

static const cli_cmd collect_cmd = {
	.name = "task-collect",
	.help = collect_help,
	.stop_at_arg = true,
	.max_args = CLI_ANY_ARGS,
};

static int parse_args(int argc, char **argv, weft_slurm_collect_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->ready_fd = -1;
	o->tracer = "preload";
	o->ship_timeout_ms = WEFT_WRAP_SHIP_TIMEOUT_DEFAULT_MS;
	const cli_opt opts[] = {
		{"pid", 0, CLI_INT, &o->pid, .min = 2, .max = INT_MAX,
		 .expect = "a process id"},
		{"ready-fd", 0, CLI_INT, &o->ready_fd, .min = 3, .max = 65535,
		 .expect = "a file descriptor from 3"},
		{"control", 0, CLI_STRING, &o->control},
		{"task", 0, CLI_STRING, &o->task},
		{"ship-timeout", 0, CLI_SECONDS, &o->ship_timeout_ms},
		{"tracer", 0, CLI_STRING, &o->tracer},
		{"agent", 0, CLI_STRING, &o->agent},
		{"verbose", 'v', CLI_COUNT, &o->verbose},
		{NULL},
	};
	int rc = cli_parse(&collect_cmd, opts, argc, argv);
	if (rc != CLI_GO)
		return rc;
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
	return CLI_GO;
}

int cmd_task_collect(int argc, char **argv)
{
	weft_slurm_collect_opts o;
	int rc = parse_args(argc, argv, &o);
	if (rc != CLI_GO)
		return rc;
	return weft_slurm_collect(&o);
}
