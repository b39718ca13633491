/*
 * cmd_flush.c - `weft flush`: deliver what a spool holds. Wrappers leave
 * fragments there when the coordinator did not acknowledge them within
 * their --ship-timeout; this sends them (each writer once, oldest first,
 * skipping writers another wrapper or flush is delivering right now).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include <weft/wrap.h>

#define FLUSH_TIMEOUT_DEFAULT_MS 30000

static const char flush_help[] =
	"usage: weft flush [--spool DIR] [--timeout SEC]\n\n"
	"Send every fragment left in the spool to its coordinator (the one\n"
	"each wrapper was shipping to), deleting each once acknowledged.\n\n"
	"  --spool DIR     the spool (default: WEFT_SPOOL, else\n"
	"                  $XDG_CACHE_HOME/weft/spool or ~/.cache/weft/spool)\n"
	"  --timeout SEC   give up after SEC seconds (default 30); what is\n"
	"                  left stays spooled\n\n"
	"Exit status: 0 when everything was delivered (stored, or there\n"
	"already); 1 when fragments are left because a coordinator did not\n"
	"answer, or when a coordinator refused any (those are moved to the\n"
	"writer's rejected/ and the reason printed) or a state file was\n"
	"corrupt (moved to corrupt/); 2 for bad arguments.\n";

static const cli_cmd flush_cmd = {
	.name = "flush",
	.help = flush_help,
	.stop_at_arg = true,
};

int cmd_flush(int argc, char **argv)
{
	const char *spool = NULL;
	int timeout_ms = FLUSH_TIMEOUT_DEFAULT_MS;
	const cli_opt opts[] = {
		{"spool", 's', CLI_STRING, &spool},
		{"timeout", 't', CLI_SECONDS, &timeout_ms},
		{NULL},
	};
	int c = cli_parse(&flush_cmd, opts, argc, argv);
	if (c != CLI_GO)
		return c;
	weft_wrap_env env;
	char err[1024];
	if (weft_wrap_env_read(&env, weft_wrap_getenv, false, err,
			       sizeof(err)) != WEFT_OK) {
		cli_error("%s", err);
		return WEFT_EXIT_USAGE;
	}
	if (spool) {
		if (spool[0] != '/' || strlen(spool) >= sizeof(env.spool))
			return cli_usage_error("flush",
					       "--spool '%s': expected an "
					       "absolute path",
					       spool);
		/* A spool named on the command line must be there: an
		 * absent one would read as empty, hiding a mistyped path.
		 * (The default spool may not exist yet: nothing to send.) */
		struct stat st;
		int bad = stat(spool, &st) != 0	 ? errno
			  : !S_ISDIR(st.st_mode) ? ENOTDIR
						 : 0;
		if (bad)
			return cli_usage_error("flush", "--spool '%s': %s",
					       spool,
					       bad == ENOENT
						       ? "no such directory"
						       : strerror(bad));
		snprintf(env.spool, sizeof(env.spool), "%s", spool);
	}
	weft_wrap_shipper *s;
	if (weft_wrap_shipper_new(env.tls_ca, timeout_ms, stderr,
				  &s) != WEFT_OK) {
		cli_error("out of memory");
		return WEFT_EXIT_INTERNAL;
	}
	cli_progress progress;
	cli_progress_begin(&progress, "flushing", "fragments", false);
	weft_wrap_shipper_set_progress(s, cli_progress_fn, &progress, 0);
	int rc = weft_wrap_ship_spool(s, env.spool);
	cli_progress_end(&progress);
	const weft_wrap_ship_stats *st = weft_wrap_shipper_stats(s);
	fprintf(stderr,
		"weft: flush %s: %zu fragment%s stored, %zu already there, "
		"%zu rejected, %zu corrupt; %zu left%s\n",
		env.spool, st->stored, st->stored == 1 ? "" : "s",
		st->duplicate, st->rejected, st->corrupt, st->left,
		st->writers_busy ? " (some writers are being delivered by "
				   "another process)"
				 : "");
	/* A refusal is a loss unless someone acts on it: never exit 0. */
	bool failed = st->left > 0 || st->rejected > 0 || st->corrupt > 0 ||
		      rc != WEFT_OK;
	if (st->rejected > 0 || st->corrupt > 0)
		cli_error("flush %s: %zu fragment%s refused or unreadable: "
			  "they were not delivered (see the reasons above)",
			  env.spool, st->rejected + st->corrupt,
			  st->rejected + st->corrupt == 1 ? " was" : "s were");
	weft_wrap_shipper_free(s);
	return failed ? 1 : 0;
}
