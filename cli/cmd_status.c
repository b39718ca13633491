/*
 * cmd_status.c - `weft status`: what a coordinator (or a store) knows about
 * its jobs: each job's state, its writers, the fragments stored, the gaps
 * in each writer's sequence (fragments still to come, or lost), and the
 * requests the coordinator refused, by reason.
 *
 * Also the helpers the store-reading commands share: opening the store
 * named by --store (or the project's), resolving a job id prefix, and the
 * JSON keys of reject reasons.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include <weft/coordinator.h>
#include <weft/local.h>

static const char status_help[] =
	"usage: weft status [--coordinator URL [--tls-ca FILE] | --store "
	"PATH]\n"
	"                   [--job ID] [--json]\n\n"
	"Jobs, their writers, fragments stored, gaps in each writer's\n"
	"sequence, and the requests refused (by reason). Asks the running\n"
	"coordinator at URL (its refusals since it started included), else\n"
	"reads the store (the project's .weft/weft.db by default).\n\n"
	"  --coordinator URL  ask this coordinator (tcp://, tls+tcp://, "
	"ipc://)\n"
	"  --tls-ca FILE      CA certificate to check a tls+tcp:// "
	"coordinator\n"
	"  --store PATH       read this store file instead\n"
	"  --job ID           one job (an id, or a prefix of one in a store)\n"
	"  --json             machine-readable output\n";

/* How long a coordinator has to answer. */
#define STATUS_TIMEOUT_MS 5000

weft_store *cli_open_store_at(const char *path, bool create)
{
	if (!path)
		return cli_open_store(create, NULL, 0);
	struct stat st;
	if (!create && stat(path, &st) != 0) {
		cli_error("cannot open the store %s: %s", path,
			  strerror(errno));
		return NULL;
	}
	weft_store *s;
	int err = weft_store_open(path, &s);
	if (err) {
		cli_error("cannot open the store %s: %s", path,
			  weft_strerror(err));
		return NULL;
	}
	return s;
}

int cli_resolve_job(weft_store *s, const char *text,
		    char out[WEFT_JOB_ID_BYTES + 1])
{
	weft_job_record r;
	int err = weft_store_get_job(s, text, &r);
	if (err == WEFT_ENOTFOUND)
		cli_error("no job '%s' in this store", text);
	else if (err == WEFT_EINVAL)
		cli_error("job '%s' is ambiguous: give more of its id", text);
	else if (err)
		cli_error("cannot read job '%s': %s", text,
			  weft_store_errmsg(s));
	if (err)
		return -1;
	memcpy(out, r.info.id, WEFT_JOB_ID_BYTES + 1);
	weft_job_record_release(&r);
	return 0;
}

weft_store *cli_store_open(cli_store_opts *so)
{
	weft_store *s;
	if (so->path) {
		s = cli_open_store_at(so->path, false);
		cli_dir_of(so->path, so->dir, sizeof(so->dir));
	} else {
		s = cli_open_store(false, so->dir, sizeof(so->dir));
	}
	so->id = NULL;
	if (s && so->job) {
		if (cli_resolve_job(s, so->job, so->job_id)) {
			weft_store_close(s);
			return NULL;
		}
		so->id = so->job_id;
	}
	return s;
}

/* JSON keys of the reject reasons (enum weft_reject_reason). */
static const char *const reject_keys[WEFT_REJECT_REASON_MAX] = {
	[WEFT_REJECT_NONE] = NULL,
	[WEFT_REJECT_MALFORMED] = "malformed",
	[WEFT_REJECT_OVERSIZE] = "oversize",
	[WEFT_REJECT_UNKNOWN_JOB] = "unknown_job",
	[WEFT_REJECT_JOB_ENDED] = "job_ended",
	[WEFT_REJECT_UNENROLLED] = "unenrolled_writer",
	[WEFT_REJECT_BAD_SIGNATURE] = "bad_signature",
	[WEFT_REJECT_BAD_TOKEN] = "bad_token",
	[WEFT_REJECT_REPLAY] = "replay",
	[WEFT_REJECT_MISMATCH] = "mismatch",
	[WEFT_REJECT_JOB_EXISTS] = "job_exists",
	[WEFT_REJECT_NOT_ALLOWED] = "not_allowed",
};

const char *cli_reject_key(int reason)
{
	return reason >= 0 && reason < WEFT_REJECT_REASON_MAX
		       ? reject_keys[reason]
		       : NULL;
}

static uint64_t job_gaps(const weft_status_job *j)
{
	uint64_t n = 0;
	for (size_t i = 0; i < j->nwriters; i++)
		n += j->writers[i].missing;
	return n;
}

static void json_time_or_null(FILE *out, int64_t ns, bool set)
{
	char t[40];
	if (!set) {
		fputs("null", out);
		return;
	}
	weft_rfc3339(ns, t);
	fprintf(out, "\"%s\"", t);
}

void json_status_refusals(FILE *out, const weft_status_job *j)
{
	fprintf(out, ", \"refused\": %llu, \"refused_tasks\": [",
		(unsigned long long)j->refused);
	for (size_t i = 0; i < j->nrefusals; i++) {
		const weft_status_refusal *r = &j->refusals[i];
		char pk[WEFT_PUBKEY_TEXT_BYTES];
		weft_pubkey_to_text(r->writer, pk);
		fputs(i ? ", {\"id\": " : "{\"id\": ", out);
		const char *names[3] = {r->id, r->name, r->node};
		for (int k = 0; k < 3; k++) {
			if (k)
				fputs(k == 1 ? ", \"name\": " : ", \"node\": ",
				      out);
			if (r->id[0])
				weft_json_string(out, names[k]);
			else
				fputs("null", out);
		}
		/* A reason this weft has no key for (a newer coordinator's,
		 * or none) is named, not printed as a null pointer. */
		const char *key = cli_reject_key(r->reason);
		fprintf(out,
			", \"writer\": \"%s\", \"seq\": %llu, \"reason\": "
			"\"%s\", \"detail\": ",
			pk, (unsigned long long)r->seq, key ? key : "unknown");
		weft_json_string(out, r->detail);
		fputc('}', out);
	}
	fputc(']', out);
}

void text_status_refusals(FILE *out, const weft_status_job *j)
{
	if (!j->refused)
		return;
	fprintf(out,
		"  REFUSED: %llu fragment%s of this job's writers refused "
		"(their tasks are missing or partial)\n",
		(unsigned long long)j->refused, j->refused == 1 ? "" : "s");
	for (size_t i = 0; i < j->nrefusals; i++) {
		const weft_status_refusal *r = &j->refusals[i];
		char pk[WEFT_PUBKEY_TEXT_BYTES];
		weft_pubkey_to_text(r->writer, pk);
		fputs("  refused task ", out);
		if (r->id[0]) {
			text_escaped(out, r->id);
			fputs("  ", out);
			text_escaped(out, r->name);
			fputs("  on ", out);
			text_escaped(out, r->node[0] ? r->node : "?");
		} else {
			fputs("(did not decode)", out);
		}
		fprintf(out, "  writer %.16s seq %llu: %s: ", pk,
			(unsigned long long)r->seq,
			weft_reject_name(r->reason));
		text_escaped(out, r->detail);
		fputc('\n', out);
	}
	if (j->refused > j->nrefusals)
		fprintf(out, "  (and %llu more)\n",
			(unsigned long long)(j->refused - j->nrefusals));
}

int cli_job_status(weft_store *s, const char *job, weft_status *st)
{
	if (weft_store_status(s, job, st) != WEFT_OK)
		return -1;
	if (st->njobs != 1) {
		weft_status_release(st);
		return -1;
	}
	return 0;
}

void json_status_tasks(FILE *out, const weft_status_job *j)
{
	fputc('[', out);
	for (size_t i = 0; i < j->ntasks; i++) {
		const weft_status_task *t = &j->tasks[i];
		json_object_open(out, i ? ", " : "", "id", t->id);
		json_key_string(out, "name", t->name);
		json_key_string(out, "node", t->node);
		fprintf(out, ", \"parts_stored\": %u, \"parts_expected\": %u}",
			t->parts_stored, t->nparts);
	}
	fputc(']', out);
}

/* What an open job's mark says (weft_local_job_state_of), per job of st;
 * NULL: not known (a coordinator's answer). */
typedef const weft_local_job_state *job_marks;

static bool interrupted(job_marks m, size_t i)
{
	return m && m[i] == WEFT_LOCAL_JOB_INTERRUPTED;
}

static void json_status(FILE *out, const weft_status *st, const char *url,
			const char *store, job_marks marks)
{
	fputs("{\"weft\": 1, \"source\": ", out);
	weft_json_string(out, url ? "coordinator" : "store");
	fputs(url ? ", \"url\": " : ", \"store\": ", out);
	weft_json_string(out, url ? url : store);
	if (url) {
		fprintf(out, ", \"requests\": %llu, \"rejects\": {",
			(unsigned long long)st->requests);
		for (int r = 1; r < WEFT_REJECT_REASON_MAX; r++)
			fprintf(out, "%s\"%s\": %llu", r > 1 ? ", " : "",
				reject_keys[r],
				(unsigned long long)st->rejects[r]);
		fputs("}", out);
	} else {
		fputs(", \"requests\": null, \"rejects\": null", out);
	}
	fputs(", \"jobs\": [", out);
	for (size_t i = 0; i < st->njobs; i++) {
		const weft_status_job *j = &st->jobs[i];
		fprintf(out,
			"%s{\"id\": \"%s\", \"state\": \"%s\", "
			"\"created\": ",
			i ? ", " : "", j->id, j->ended ? "ended" : "open");
		json_time_or_null(out, j->created_ns, true);
		fputs(", \"ended\": ", out);
		json_time_or_null(out, j->ended_ns, j->ended);
		if (j->ended)
			fprintf(out, ", \"exit_code\": %d", j->exit_code);
		else
			fputs(", \"exit_code\": null", out);
		fprintf(out, ", \"interrupted\": %s",
			!marks                  ? "null"
			: interrupted(marks, i) ? "true"
						: "false");
		json_key_string(out, "command", j->command);
		fprintf(out,
			", \"fragments\": %llu, \"bytes\": %llu, \"gaps\": "
			"%llu, \"rejects\": ",
			(unsigned long long)j->fragments,
			(unsigned long long)j->bytes,
			(unsigned long long)job_gaps(j));
		if (url)
			fprintf(out, "%llu", (unsigned long long)j->rejects);
		else
			fputs("null", out);
		fputs(", \"writers\": [", out);
		for (size_t w = 0; w < j->nwriters; w++) {
			const weft_status_writer *sw = &j->writers[w];
			char pk[WEFT_PUBKEY_TEXT_BYTES];
			weft_pubkey_to_text(sw->pk, pk);
			fprintf(out, "%s{\"id\": \"%s\", \"enrolled\": ",
				w ? ", " : "", pk);
			json_time_or_null(out, sw->enrolled_ns, true);
			fprintf(out,
				", \"fragments\": %llu, \"max_seq\": %llu, "
				"\"missing\": %llu}",
				(unsigned long long)sw->fragments,
				(unsigned long long)sw->max_seq,
				(unsigned long long)sw->missing);
		}
		fprintf(out, "], \"incomplete\": %llu, \"incomplete_tasks\": ",
			(unsigned long long)j->incomplete);
		json_status_tasks(out, j);
		json_status_refusals(out, j);
		fputc('}', out);
	}
	fputs("]}\n", out);
}

static void text_status(FILE *out, const weft_status *st, const char *url,
			const char *store, job_marks marks)
{
	if (url) {
		fputs("coordinator ", out);
		text_escaped(out, url);
		fprintf(out, ": %llu request%s answered",
			(unsigned long long)st->requests,
			st->requests == 1 ? "" : "s");
		uint64_t total = 0;
		for (int r = 1; r < WEFT_REJECT_REASON_MAX; r++)
			total += st->rejects[r];
		fprintf(out, ", %llu refused", (unsigned long long)total);
		const char *sep = ": ";
		for (int r = 1; r < WEFT_REJECT_REASON_MAX; r++)
			if (st->rejects[r]) {
				fprintf(out, "%s%s %llu", sep,
					weft_reject_name(r),
					(unsigned long long)st->rejects[r]);
				sep = ", ";
			}
		fputc('\n', out);
	} else {
		fputs("store ", out);
		text_escaped(out, store ? store : "(project)");
		fputc('\n', out);
	}
	if (st->njobs == 0)
		fputs("no jobs\n", out);
	for (size_t i = 0; i < st->njobs; i++) {
		const weft_status_job *j = &st->jobs[i];
		fprintf(out, "\njob %s  %s", j->id,
			j->ended ? "ended" : "open");
		if (j->ended)
			fprintf(out, " (exit %d)", j->exit_code);
		else if (marks && marks[i] == WEFT_LOCAL_JOB_RUNNING)
			fputs(" (its weft run is running)", out);
		else if (interrupted(marks, i))
			fputs(" (INTERRUPTED: its weft run stopped before the "
			      "job's end)",
			      out);
		fputs("  ", out);
		text_escaped(out, j->command);
		fprintf(out,
			"\n  %zu writer%s, %llu fragment%s (%llu bytes), %llu "
			"missing",
			j->nwriters, j->nwriters == 1 ? "" : "s",
			(unsigned long long)j->fragments,
			j->fragments == 1 ? "" : "s",
			(unsigned long long)j->bytes,
			(unsigned long long)job_gaps(j));
		if (url)
			fprintf(out, ", %llu refused",
				(unsigned long long)j->rejects);
		fputc('\n', out);
		for (size_t w = 0; w < j->nwriters; w++) {
			const weft_status_writer *sw = &j->writers[w];
			char pk[WEFT_PUBKEY_TEXT_BYTES];
			weft_pubkey_to_text(sw->pk, pk);
			fprintf(out,
				"  writer %.16s  %llu fragment%s, seq up to "
				"%llu",
				pk, (unsigned long long)sw->fragments,
				sw->fragments == 1 ? "" : "s",
				(unsigned long long)sw->max_seq);
			if (sw->missing)
				fprintf(out, ", %llu missing (gaps)",
					(unsigned long long)sw->missing);
			fputc('\n', out);
		}
		if (j->incomplete)
			fprintf(out,
				"  INCOMPLETE: %llu task%s with parts "
				"missing\n",
				(unsigned long long)j->incomplete,
				j->incomplete == 1 ? "" : "s");
		for (size_t t = 0; t < j->ntasks; t++) {
			const weft_status_task *task = &j->tasks[t];
			fputs("  task ", out);
			text_escaped(out, task->id);
			fputs("  ", out);
			text_escaped(out, task->name);
			fputs("  on ", out);
			text_escaped(out, task->node[0] ? task->node : "?");
			text_parts(out, task->parts_stored, task->nparts);
			fputc('\n', out);
		}
		if (j->incomplete > j->ntasks)
			fprintf(out, "  (and %llu more)\n",
				(unsigned long long)(j->incomplete -
						     j->ntasks));
		text_status_refusals(out, j);
	}
}

/* Each OpenLineage destination: what waits, what went, the last error. */
static void text_status_ol(FILE *out, const weft_ol_sink_status *k, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		fputs("openlineage ", out);
		text_escaped(out, k[i].dest);
		fprintf(out, ": %llu event%s waiting, %llu sent",
			(unsigned long long)k[i].waiting,
			k[i].waiting == 1 ? "" : "s",
			(unsigned long long)k[i].sent);
		if (k[i].refused)
			fprintf(out, ", %llu refused by it (kept)",
				(unsigned long long)k[i].refused);
		fputc('\n', out);
		if (k[i].last_error && (k[i].waiting || k[i].refused)) {
			char when[40];
			weft_rfc3339(k[i].last_error_ns, when);
			fprintf(out, "  last error (%s): ", when);
			text_escaped(out, k[i].last_error);
			fputc('\n', out);
		}
	}
}

/* json_status with an "openlineage" array after its last field. */
static int json_status_ol(const weft_status *st, const char *url,
			  const char *store, job_marks marks,
			  const weft_ol_sink_status *k, size_t n)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *mem = open_memstream(&buf, &len);
	if (!mem)
		return 1;
	json_status(mem, st, url, store, marks);
	if (fclose(mem) || len < 2 || memcmp(buf + len - 2, "}\n", 2)) {
		free(buf);
		return 1;
	}
	fwrite(buf, 1, len - 2, stdout);
	fputs(", \"openlineage\": [", stdout);
	for (size_t i = 0; i < n; i++) {
		json_object_open(stdout, i ? ", " : "", "destination",
				 k[i].dest);
		fprintf(stdout,
			", \"waiting\": %llu, \"sent\": %llu, \"refused\": "
			"%llu, \"last_error\": ",
			(unsigned long long)k[i].waiting,
			(unsigned long long)k[i].sent,
			(unsigned long long)k[i].refused);
		if (k[i].last_error)
			weft_json_string(stdout, k[i].last_error);
		else
			fputs("null", stdout);
		fputc('}', stdout);
	}
	fputs("]}\n", stdout);
	free(buf);
	return 0;
}

static const cli_cmd status_cmd = {
	.name = "status",
	.help = status_help,
};

/* The marks of st's open jobs (weft_local_job_state_of) in the store's
 * directory dir. */
static weft_local_job_state *read_marks(const char *dir, const weft_status *st)
{
	weft_local_job_state *m = calloc(st->njobs ? st->njobs : 1, sizeof(*m));
	for (size_t i = 0; m && i < st->njobs; i++)
		if (!st->jobs[i].ended)
			m[i] = weft_local_job_state_of(dir, st->jobs[i].id);
	return m;
}

int cmd_status(int argc, char **argv)
{
	const char *url = NULL, *ca = NULL;
	cli_store_opts so = {0};
	bool json = false;
	const cli_opt opts[] = {
		{"coordinator", 'c', CLI_STRING, &url},
		{"tls-ca", 'C', CLI_STRING, &ca},
		CLI_STORE_OPTS(&so),
		{"json", 'J', CLI_FLAG, &json},
		{NULL},
	};
	int c = cli_parse(&status_cmd, opts, argc, argv);
	if (c != CLI_GO)
		return c;
	if (url && so.path)
		return cli_usage_error("status", "--coordinator and --store "
						 "exclude each other");
	weft_status st;
	char err[1024];
	weft_ol_sink_status *sinks = NULL;
	size_t nsinks = 0;
	weft_local_job_state *marks = NULL;
	if (url) {
		if (so.job && weft_job_id_check(so.job))
			return cli_usage_error("status",
					       "--job '%s' is not a job id (a "
					       "lowercase UUID)",
					       so.job);
		if (weft_coordinator_query_status(url, ca, so.job,
						  STATUS_TIMEOUT_MS, &st, err,
						  sizeof(err))) {
			cli_error("%s", err);
			return 1;
		}
	} else {
		weft_store *s = cli_store_open(&so);
		if (!s)
			return 1;
		int e = weft_store_status(s, so.id, &st);
		if (e) {
			cli_error("cannot read the status: %s",
				  weft_store_errmsg(s));
			weft_store_close(s);
			return 1;
		}
		/* The OpenLineage outbox is the store's, not in a
		 * coordinator's answer. */
		if (weft_ol_outbox_status(s, &sinks, &nsinks))
			cli_error("cannot read the OpenLineage outbox: %s",
				  weft_store_errmsg(s));
		weft_store_close(s);
		marks = read_marks(so.dir, &st);
	}
	int rc = 0;
	if (json)
		rc = json_status_ol(&st, url,
				    so.path ? so.path : ".weft/weft.db", marks,
				    sinks, nsinks);
	else
		text_status(stdout, &st, url, so.path, marks);
	free(marks);
	if (!json)
		text_status_ol(stdout, sinks, nsinks);
	weft_ol_sink_status_free(sinks, nsinks);
	weft_status_release(&st);
	return rc;
}
