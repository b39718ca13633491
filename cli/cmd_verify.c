/*
 * cmd_verify.c - `weft verify`: re-check every signed envelope a store
 * keeps (of one job, or all) against the writer keys enrolled with its
 * job, and print the counts. Exit 1 when any fails.
 */
#include <string.h>

#include "cli.h"

static const char verify_help[] =
	"usage: weft verify [--job ID] [--store PATH] [--json]\n\n"
	"Re-check every stored fragment: its envelope decodes, names the job,\n"
	"writer and seq it is filed under and the payload hash recorded, and\n"
	"its Ed25519 signature holds for the writer key enrolled with the\n"
	"job. Prints the counts and one line per failure; exits 1 when any\n"
	"fragment fails.\n\n"
	"  --job ID      one job (an id or a unique prefix)\n"
	"  --store PATH  the store to check (default: the project's)\n"
	"  --json        the counts as JSON\n";

static void print_bad(void *ctx, const char *job, const uint8_t *pk,
		      uint64_t seq, const char *why)
{
	(void)ctx;
	char text[WEFT_PUBKEY_TEXT_BYTES];
	weft_pubkey_to_text(pk, text);
	cli_error("job %s, writer %.16s, seq %llu: %s", job, text,
		  (unsigned long long)seq, why);
}

static const cli_cmd verify_cmd = {
	.name = "verify",
	.help = verify_help,
};

int cmd_verify(int argc, char **argv)
{
	cli_store_opts so = {0};
	bool json = false;
	const cli_opt opts[] = {
		CLI_STORE_OPTS(&so),
		{"json", 'J', CLI_FLAG, &json},
		{NULL},
	};
	int c = cli_parse(&verify_cmd, opts, argc, argv);
	if (c != CLI_GO)
		return c;
	weft_store *s = cli_store_open(&so);
	if (!s)
		return 1;
	weft_verify_counts n;
	cli_progress pr;
	cli_progress_begin(&pr, "verifying", "fragments", json);
	weft_store_set_progress(s, cli_progress_fn, &pr);
	int err = weft_store_verify(s, so.id, &n, print_bad, NULL);
	cli_progress_end(&pr);
	if (err) {
		cli_error("cannot verify: %s", weft_store_errmsg(s));
		weft_store_close(s);
		return 1;
	}
	weft_store_close(s);
	uint64_t bad = n.bad_signature + n.malformed + n.mismatch;
	if (json)
		printf("{\"jobs\": %llu, \"writers\": %llu, \"fragments\": "
		       "%llu, \"ok\": %llu, \"bad_signature\": %llu, "
		       "\"malformed\": %llu, \"mismatch\": %llu}\n",
		       (unsigned long long)n.jobs,
		       (unsigned long long)n.writers,
		       (unsigned long long)n.envelopes,
		       (unsigned long long)n.ok,
		       (unsigned long long)n.bad_signature,
		       (unsigned long long)n.malformed,
		       (unsigned long long)n.mismatch);
	else
		printf("%llu fragment%s of %llu job%s and %llu writer%s: %llu "
		       "verified, %llu bad signature, %llu malformed, %llu "
		       "not matching their records\n",
		       (unsigned long long)n.envelopes,
		       n.envelopes == 1 ? "" : "s", (unsigned long long)n.jobs,
		       n.jobs == 1 ? "" : "s", (unsigned long long)n.writers,
		       n.writers == 1 ? "" : "s", (unsigned long long)n.ok,
		       (unsigned long long)n.bad_signature,
		       (unsigned long long)n.malformed,
		       (unsigned long long)n.mismatch);
	return bad ? 1 : 0;
}
