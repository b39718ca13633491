/*
 * args.c - the one option parser of the subcommands: each describes its
 * options as a table (cli_opt) and cli_parse turns argv into values,
 * prints --help, and gives the usage errors every command gives, so that
 * "weft CMD: option '--x' needs a value" reads the same everywhere.
 *
 * getopt_long does the parsing (GNU's rules for "--opt=value", grouped
 * short letters, "--" and permutation); the tables only spare each command
 * its own option array, optstring and switch.
 */
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* More than any command has: cli_parse refuses a longer table. */
#define CLI_MAX_OPTS 24
/* getopt_long's value for opts[i]: beyond every short letter. */
#define CLI_OPT_BASE 256

/* The usage error for a bad option getopt_long reported as c (':' a
 * missing value, anything else an unknown option) at argv[optind - 1]. */
static int option_error(const char *cmd, char **argv, int c)
{
	if (c == ':')
		return cli_usage_error(cmd, "option '%s' needs a value",
				       argv[optind - 1]);
	return cli_usage_error(cmd, "unknown option '%s'", argv[optind - 1]);
}

/* A duration (--ship-timeout, --timeout) in seconds into *ms. */
static int seconds_arg(const char *cmd, const char *opt, const char *arg,
		       int *ms)
{
	if (weft_wrap_parse_seconds(arg, ms) == 0)
		return 0;
	return cli_usage_error(cmd, "%s '%s': expected seconds from 0 to %d",
			       opt, arg, WEFT_WRAP_SHIP_TIMEOUT_MAX_MS / 1000);
}

/* A whole decimal number from min to max. */
static int parse_int(const char *s, long long min, long long max,
		     long long *out)
{
	char *end;
	long long v = strtoll(s, &end, 10);
	if (!*s || *end || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

/* The long name as a user writes it, for messages: "--timeout". */
static void opt_name(const cli_opt *o, char *buf, size_t bufsz)
{
	snprintf(buf, bufsz, "--%s", o->name);
}

static int opt_set(const cli_cmd *cmd, const cli_opt *o, const char *arg)
{
	char name[64];
	long long v;
	opt_name(o, name, sizeof(name));
	switch (o->kind) {
	case CLI_FLAG:
		*(bool *)o->to = true;
		return 0;
	case CLI_UNSET:
		*(bool *)o->to = false;
		return 0;
	case CLI_SET:
		*(int *)o->to = o->value;
		return 0;
	case CLI_COUNT:
		(*(int *)o->to)++;
		return 0;
	case CLI_STRING:
		*(const char **)o->to = arg;
		return 0;
	case CLI_SECONDS:
		return seconds_arg(cmd->name, name, arg, (int *)o->to);
	case CLI_INT:
		if (parse_int(arg, o->min, o->max, &v) == 0) {
			*(int *)o->to = (int)v;
			return 0;
		}
		if (o->expect)
			return cli_usage_error(cmd->name,
					       "%s '%s': expected %s", name,
					       arg, o->expect);
		return cli_usage_error(cmd->name,
				       "%s '%s': expected %lld to %lld", name,
				       arg, o->min, o->max);
	case CLI_CALL:
		return o->call(cmd->name, name, arg, o->to);
	}
	return WEFT_EXIT_INTERNAL;
}

static bool takes_value(const cli_opt *o)
{
	return o->kind == CLI_STRING || o->kind == CLI_SECONDS ||
	       o->kind == CLI_INT || o->kind == CLI_CALL;
}

int cli_parse(const cli_cmd *cmd, const cli_opt *opts, int argc, char **argv)
{
	struct option lopts[CLI_MAX_OPTS + 2];
	char shorts[3 * CLI_MAX_OPTS + 8], *p = shorts;
	size_t n = 0;
	/* '+': options end at the first argument (CMD ARGS... follow); ':':
	 * a missing value is told apart from an unknown option. */
	if (cmd->stop_at_arg)
		*p++ = '+';
	*p++ = ':';
	for (; opts[n].name; n++) {
		const cli_opt *o = &opts[n];
		if (n == CLI_MAX_OPTS) {
			cli_error("%s: too many options", cmd->name);
			return WEFT_EXIT_INTERNAL;
		}
		bool arg = takes_value(o);
		lopts[n] = (struct option){
			o->name, arg ? required_argument : no_argument, NULL,
			CLI_OPT_BASE + (int)n};
		if (o->letter) {
			*p++ = o->letter;
			if (arg)
				*p++ = ':';
		}
	}
	lopts[n] = (struct option){"help", no_argument, NULL, 'h'};
	lopts[n + 1] = (struct option){NULL, 0, NULL, 0};
	*p++ = 'h';
	*p = '\0';

	int c;
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, shorts, lopts, NULL)) != -1) {
		const cli_opt *o = NULL;
		if (c == 'h') {
			if (cmd->help_fn)
				cmd->help_fn();
			else
				fputs(cmd->help, stdout);
			return 0;
		}
		if (c >= CLI_OPT_BASE)
			o = &opts[c - CLI_OPT_BASE];
		for (size_t i = 0; !o && c != '?' && c != ':' && i < n; i++)
			if (opts[i].letter == c)
				o = &opts[i];
		if (!o)
			return option_error(cmd->name, argv, c);
		int rc = opt_set(cmd, o, optarg);
		if (rc)
			return rc;
	}
	int nargs = argc - optind;
	if (cmd->missing && nargs == 0)
		return cli_usage_error(cmd->name, "%s", cmd->missing);
	if (cmd->max_args >= 0 && nargs > cmd->max_args)
		return cli_usage_error(cmd->name, "unexpected argument '%s'",
				       argv[optind + cmd->max_args]);
	return CLI_GO;
}
