/*
 * args.c - what the subcommands' option parsing shares: turning what
 * getopt_long reports about a bad option into the one usage error every
 * command gives.
 *
 * Each command keeps its own getopt_long loop (the options differ); only
 * the answer to a bad option is the same everywhere, so that a command
 * says "weft CMD: option '--x' needs a value" exactly like every other.
 */
#include <getopt.h>

#include "cli.h"

int cli_option_error(const char *cmd, char **argv, int c)
{
	if (c == ':')
		return cli_usage_error(cmd, "option '%s' needs a value",
				       argv[optind - 1]);
	return cli_usage_error(cmd, "unknown option '%s'", argv[optind - 1]);
}
