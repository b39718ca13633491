/*
 * cmd_pull.c - `weft pull SOURCE`: copy signed fragments from another
 * store (a weft.db, or a project holding one) or from a running
 * coordinator into this store, verifying each one here (store/relay.c).
 *
 * Nothing is trusted because of where it came from: every envelope's
 * signature is checked against the writer keys of its job and applied
 * like a fresh delivery, so duplicates cost nothing, a replay with other
 * content is refused, and what this store holds is never changed. The
 * counts say what happened; every refusal is one line on stderr; the exit
 * status is 1 when anything was refused.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cli.h"
#include <weft/coordinator.h>

/* How long one export page may take to arrive, and how often a "retry"
 * answer (a busy coordinator) is tried again. */
#define PULL_CALL_TIMEOUT_MS 60000
#define PULL_RETRIES 8

static const char pull_help[] =
	"usage: weft pull SOURCE [--job ID] [--store PATH] [--tls-ca FILE] "
	"[--json]\n\n"
	"Copy the jobs, enrolled writers and signed fragments of SOURCE into\n"
	"this store. Every fragment is verified here (its Ed25519 signature\n"
	"by a writer enrolled in its job) and stored like a fresh delivery:\n"
	"fragments already here are skipped, a different fragment under a\n"
	"stored (job, writer, seq) is refused, nothing stored is changed.\n"
	"Prints the counts and one line per refusal; exits 1 when anything\n"
	"was refused.\n\n"
	"SOURCE is a store file (weft.db), a directory holding .weft/weft.db\n"
	"(or a .weft directory), or a coordinator's URL (tcp://, ipc://,\n"
	"tls+tcp://): a coordinator hands out a job only after it ended.\n\n"
	"  --job ID        one job (an id or a unique prefix in a store; the\n"
	"                  full id for a coordinator)\n"
	"  --store PATH    the store to copy into (default: the project's,\n"
	"                  made in the working directory when there is none)\n"
	"  --tls-ca FILE   CA that signed a tls+tcp:// coordinator's "
	"certificate\n"
	"  --json          the counts as JSON\n";

struct pull {
	const char *source;
	weft_relay *relay;
	uint64_t open_jobs; /* a coordinator's jobs not handed out yet */
	bool json;
	cli_progress progress;
};

/* Text from the source, fit for a terminal: control bytes become '?'. */
static const char *printable(const char *in, char *out, size_t outsz)
{
	size_t i = 0;
	for (; in[i] && i + 1 < outsz; i++) {
		unsigned char c = (unsigned char)in[i];
		out[i] = c < 0x20 || c == 0x7f ? '?' : (char)c;
	}
	out[i] = '\0';
	return out;
}

static void print_reject(void *ctx, const char *job_in, const uint8_t *pk,
			 uint64_t seq, const weft_verdict *v)
{
	(void)ctx;
	char job[WEFT_JOB_ID_BYTES + 8], why[sizeof(v->detail)];
	printable(job_in, job, sizeof(job));
	printable(v->detail, why, sizeof(why));
	if (!pk) {
		cli_error("pull: job %s refused: %s (%s)", job,
			  weft_reject_name(v->reason), why);
		return;
	}
	char text[WEFT_PUBKEY_TEXT_BYTES];
	weft_pubkey_to_text(pk, text);
	if (seq)
		cli_error("pull: job %s, writer %.16s, seq %llu refused: %s "
			  "(%s)",
			  job, text, (unsigned long long)seq,
			  weft_reject_name(v->reason), why);
	else
		cli_error("pull: job %s, writer %.16s refused: %s (%s)", job,
			  text, weft_reject_name(v->reason), why);
}

/* ---- SOURCE ---- */

static bool is_url(const char *s)
{
	return strstr(s, "://") != NULL;
}

/* A store file from SOURCE: the file itself, DIR/.weft/weft.db, or
 * DIR/weft.db (DIR being a .weft). */
static int source_db(const char *src, char *out, size_t outsz)
{
	struct stat st;
	if (stat(src, &st)) {
		cli_error("pull: %s: %s", src, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		snprintf(out, outsz, "%s", src);
		return 0;
	}
	static const char *const tails[] = {WEFT_DIR_NAME "/" WEFT_DB_NAME,
					    WEFT_DB_NAME};
	for (size_t i = 0; i < 2; i++) {
		int n = snprintf(out, outsz, "%s/%s", src, tails[i]);
		if (n > 0 && (size_t)n < outsz && !stat(out, &st) &&
		    S_ISREG(st.st_mode))
			return 0;
	}
	cli_error("pull: %s holds no weft store (no %s/%s in it)", src,
		  WEFT_DIR_NAME, WEFT_DB_NAME);
	return -1;
}

static int pull_store_file(struct pull *p, weft_store *dst, const char *path,
			   const char *job)
{
	weft_store *src;
	int err = weft_store_open_readonly(path, &src);
	if (err) {
		if (err == WEFT_EVERSION)
			cli_error("pull: %s is a weft store from before jobs "
				  "existed: it has no fragments",
				  path);
		else if (err == WEFT_EDB)
			cli_error("pull: %s is not a weft store, or "
				  "unreadable",
				  path);
		else
			cli_error("pull: cannot open %s: %s", path,
				  weft_strerror(err));
		return -1;
	}
	if (weft_store_same_file(src, dst)) {
		cli_error("pull: %s is the store being pulled into", path);
		weft_store_close(src);
		return -1;
	}
	char id[WEFT_JOB_ID_BYTES + 1];
	if (job) {
		weft_job_record jr;
		err = weft_store_get_job(src, job, &jr);
		if (err == WEFT_ENOTFOUND)
			cli_error("pull: no job '%s' in %s", job, path);
		else if (err == WEFT_EINVAL)
			cli_error(
				"pull: job '%s' is ambiguous in %s: give more "
				"of its id",
				job, path);
		else if (err)
			cli_error("pull: cannot read job '%s' in %s: %s", job,
				  path, weft_store_errmsg(src));
		if (err) {
			weft_store_close(src);
			return -1;
		}
		memcpy(id, jr.info.id, sizeof(id));
		weft_job_record_release(&jr);
	}
	err = weft_relay_pull_store(p->relay, src, job ? id : NULL);
	if (err == WEFT_EVERSION)
		cli_error("pull: %s was written by a newer weft", path);
	else if (err)
		cli_error("pull: %s", weft_store_errmsg(dst));
	weft_store_close(src);
	return err ? -1 : 0;
}

/* ---- A coordinator ---- */

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/* Every page of one job into the relay. */
static int pull_remote_job(struct pull *p, weft_store *dst, const char *url,
			   const char *tls_ca, const char *job)
{
	uint64_t after = 0, wafter = 0;
	bool first = true;
	int retries = 0;
	for (;;) {
		uint8_t *raw;
		weft_export_page page;
		weft_ack ack;
		bool is_page;
		char err[512];
		int rc = weft_coordinator_export(
			url, tls_ca, job, after, wafter, PULL_CALL_TIMEOUT_MS,
			&raw, &page, &ack, &is_page, err, sizeof(err));
		if (rc) {
			cli_error("pull: %s", err);
			return -1;
		}
		if (!is_page) {
			free(raw);
			if (ack.status == WEFT_ACK_RETRY &&
			    retries++ < PULL_RETRIES) {
				sleep_ms(100L << (retries < 6 ? retries : 6));
				continue;
			}
			if (ack.reason == WEFT_REJECT_MALFORMED)
				cli_error("pull: %s does not export fragments "
					  "(a weft from before `weft pull`?): "
					  "%s",
					  url, ack.detail);
			else
				cli_error(
					"pull: %s refused job %s: %s (%s)", url,
					job,
					ack.status == WEFT_ACK_RETRY
						? "busy, try again later"
						: weft_reject_name(ack.reason),
					ack.detail);
			return -1;
		}
		retries = 0;
		weft_verdict v;
		int err2 = strcmp(page.job.id, job)
				   ? WEFT_EINVAL
				   : weft_relay_put_page(p->relay, &page, first,
							 &v);
		if (!err2 && first && v.status == WEFT_ACK_RETRY) {
			/* Still open: its key is not handed out yet. */
			p->open_jobs++;
			cli_error("pull: job %s is still open at %s: pull it "
				  "again after it ended",
				  job, url);
			weft_export_page_release(&page);
			free(raw);
			return 0;
		}
		first = false;
		bool more = page.more;
		bool stuck = more && page.next == after && page.wnext == wafter;
		after = page.next;
		wafter = page.wnext;
		weft_export_page_release(&page);
		free(raw);
		if (err2 == WEFT_EINVAL) {
			cli_error("pull: %s answered with a page of another "
				  "job",
				  url);
			return -1;
		}
		if (err2) {
			cli_error("pull: %s", weft_store_errmsg(dst));
			return -1;
		}
		if (stuck) {
			cli_error("pull: %s sent a page of job %s that does "
				  "not advance",
				  url, job);
			return -1;
		}
		if (!more)
			return 0;
	}
}

static int pull_coordinator(struct pull *p, weft_store *dst, const char *url,
			    const char *tls_ca, const char *job)
{
	if (job) {
		if (weft_job_id_check(job)) {
			cli_error("pull: give a coordinator the full job id, "
				  "not '%s'",
				  job);
			return -1;
		}
		return pull_remote_job(p, dst, url, tls_ca, job);
	}
	weft_status st;
	char err[512];
	if (weft_coordinator_query_status(url, tls_ca, NULL,
					  PULL_CALL_TIMEOUT_MS, &st, err,
					  sizeof(err))) {
		cli_error("pull: %s", err);
		return -1;
	}
	uint64_t expected = 0;
	for (size_t i = 0; i < st.njobs; i++)
		expected += st.jobs[i].fragments;
	weft_relay_set_progress(p->relay, cli_progress_fn, &p->progress,
				expected);
	int rc = 0;
	for (size_t i = 0; i < st.njobs && !rc; i++)
		rc = pull_remote_job(p, dst, url, tls_ca, st.jobs[i].id);
	weft_status_release(&st);
	return rc;
}

/* ---- Output ---- */

static void print_json(const struct pull *p, const weft_relay_counts *c,
		       const char *store)
{
	printf("{\"weft\": 1, \"source\": ");
	weft_json_string(stdout, p->source);
	printf(", \"store\": ");
	weft_json_string(stdout, store);
	printf(", \"jobs\": {\"pulled\": %llu, \"stored\": %llu, "
	       "\"present\": %llu, \"rejected\": %llu, \"open\": %llu}, "
	       "\"writers\": {\"pulled\": %llu, \"stored\": %llu, "
	       "\"present\": %llu}, "
	       "\"fragments\": {\"pulled\": %llu, \"stored\": %llu, "
	       "\"duplicate\": %llu, \"rejected\": %llu}, \"rejects\": {",
	       (unsigned long long)c->jobs, (unsigned long long)c->jobs_stored,
	       (unsigned long long)c->jobs_present,
	       (unsigned long long)c->jobs_rejected,
	       (unsigned long long)p->open_jobs, (unsigned long long)c->writers,
	       (unsigned long long)c->writers_stored,
	       (unsigned long long)c->writers_present,
	       (unsigned long long)c->fragments, (unsigned long long)c->stored,
	       (unsigned long long)c->duplicate,
	       (unsigned long long)c->rejected);
	const char *sep = "";
	for (int i = 1; i < WEFT_REJECT_REASON_MAX; i++) {
		if (!cli_reject_key(i))
			continue;
		printf("%s\"%s\": %llu", sep, cli_reject_key(i),
		       (unsigned long long)c->rejects[i]);
		sep = ", ";
	}
	printf("}}\n");
}

static const char *plural(uint64_t n)
{
	return n == 1 ? "" : "s";
}

static void print_text(const struct pull *p, const weft_relay_counts *c)
{
	printf("pulled from %s:\n", p->source);
	printf("  jobs:      %llu (%llu new, %llu already here, %llu "
	       "refused%s)\n",
	       (unsigned long long)c->jobs, (unsigned long long)c->jobs_stored,
	       (unsigned long long)c->jobs_present,
	       (unsigned long long)c->jobs_rejected,
	       p->open_jobs ? ", and some still open at the source" : "");
	printf("  writers:   %llu (%llu new, %llu already here)\n",
	       (unsigned long long)c->writers,
	       (unsigned long long)c->writers_stored,
	       (unsigned long long)c->writers_present);
	printf("  fragments: %llu (%llu stored, %llu already here, %llu "
	       "refused)\n",
	       (unsigned long long)c->fragments, (unsigned long long)c->stored,
	       (unsigned long long)c->duplicate,
	       (unsigned long long)c->rejected);
	for (int i = 1; i < WEFT_REJECT_REASON_MAX; i++)
		if (c->rejects[i])
			printf("    %llu fragment%s refused: %s\n",
			       (unsigned long long)c->rejects[i],
			       plural(c->rejects[i]), weft_reject_name(i));
}

static const cli_cmd pull_cmd = {
	.name = "pull",
	.help = pull_help,
	.max_args = 1,
	.missing = "SOURCE is missing",
};

int cmd_pull(int argc, char **argv)
{
	const char *job = NULL, *store_path = NULL, *tls_ca = NULL;
	struct pull p = {0};
	const cli_opt opts[] = {
		{"job", 'j', CLI_STRING, &job},
		{"store", 's', CLI_STRING, &store_path},
		{"tls-ca", 'C', CLI_STRING, &tls_ca},
		{"json", 'J', CLI_FLAG, &p.json},
		{NULL},
	};
	int c = cli_parse(&pull_cmd, opts, argc, argv);
	if (c != CLI_GO)
		return c;
	p.source = argv[optind];
	bool remote = is_url(p.source);
	if (tls_ca && !remote)
		return cli_usage_error("pull",
				       "--tls-ca is for a coordinator URL");
	char db[WEFT_MAX_PATH_BYTES + 32];
	if (!remote && source_db(p.source, db, sizeof(db)))
		return 1;

	char weft_dir[WEFT_MAX_PATH_BYTES + 1] = "";
	char dst_path[sizeof(weft_dir) + 16];
	weft_store *dst =
		store_path ? cli_open_store_at(store_path, true)
			   : cli_open_store(true, weft_dir, sizeof(weft_dir));
	if (!dst)
		return 1;
	snprintf(dst_path, sizeof(dst_path), "%s/weft.db", weft_dir);
	int err = weft_relay_new(dst, print_reject, &p, &p.relay);
	if (err) {
		cli_error("pull: cannot write the store: %s",
			  err == WEFT_EDB ? weft_store_errmsg(dst)
					  : weft_strerror(err));
		weft_store_close(dst);
		return 1;
	}
	cli_progress_begin(&p.progress, "pulling", "fragments", p.json);
	weft_relay_set_progress(p.relay, cli_progress_fn, &p.progress, 0);
	int rc = remote ? pull_coordinator(&p, dst, p.source, tls_ca, job)
			: pull_store_file(&p, dst, db, job);
	cli_progress_end(&p.progress);
	if (!rc && weft_relay_finish(p.relay)) {
		cli_error("pull: %s", weft_store_errmsg(dst));
		rc = -1;
	}
	const weft_relay_counts *n = weft_relay_get_counts(p.relay);
	if (p.json)
		print_json(&p, n, store_path ? store_path : dst_path);
	else if (!rc || n->jobs || n->fragments)
		print_text(&p, n); /* not after failing before any job */
	bool refused = n->rejected || n->jobs_rejected;
	weft_relay_free(p.relay);
	weft_store_close(dst);
	return rc || refused ? 1 : 0;
}
