/*
 * cmd_job.c - `weft job list` and `weft job show ID`: the jobs `weft
 * submit` created in this project's store (the store its coordinator
 * wrote), with who started them where, when, how they ended, and what
 * their tasks recorded.
 */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include <weft/local.h>

static const char job_help[] =
	"usage: weft job list [--json]\n"
	"       weft job show ID [--json]\n\n"
	"The jobs recorded in this project's store (weft submit makes them).\n"
	"'list' prints one line per job, oldest first; 'show' one job (ID or\n"
	"a unique prefix of it): its command, user, host, working directory,\n"
	"git commit, times, exit status, and its tasks.\n\n"
	"  --json   machine-readable: list prints an array of the objects\n"
	"           show prints one of\n";

/* Whether r is a local run's job whose `weft run` stopped before its end
 * (weft_local_job_state_of in weft_dir, the project's .weft). */
static bool interrupted(const char *weft_dir, const weft_job_record *r)
{
	return !r->ended && weft_local_job_state_of(weft_dir, r->info.id) ==
				    WEFT_LOCAL_JOB_INTERRUPTED;
}

static void json_job(FILE *out, const weft_job_record *r, bool intr)
{
	char t[40];
	fputs("{\"id\": ", out);
	weft_json_string(out, r->info.id);
	json_key_string(out, "command", r->info.command ? r->info.command : "");
	json_key_string(out, "user", r->info.user);
	json_key_string(out, "host", r->info.host);
	json_key_string(out, "cwd", r->info.cwd);
	fputs(", \"git\": ", out);
	if (r->info.git[0])
		weft_json_string(out, r->info.git);
	else
		fputs("null", out);
	weft_rfc3339(r->info.created_ns, t);
	fprintf(out, ", \"created\": \"%s\", \"ended\": ", t);
	if (r->ended) {
		weft_rfc3339(r->ended_ns, t);
		fprintf(out, "\"%s\", \"exit_code\": %d", t, r->exit_code);
	} else {
		fputs("null, \"exit_code\": null", out);
	}
	fprintf(out, ", \"interrupted\": %s", intr ? "true" : "false");
	fprintf(out,
		", \"writers\": %llu, \"fragments\": %llu, \"tasks\": %llu, "
		"\"tasks_incomplete\": %llu",
		(unsigned long long)r->writers,
		(unsigned long long)r->fragments, (unsigned long long)r->tasks,
		(unsigned long long)r->tasks_incomplete);
}

/* ', "incomplete_tasks": [...]' of job show --json: each task with parts
 * missing, as status lists them. */
static void json_incomplete_tasks(weft_store *s, const char *job)
{
	weft_status st;
	fputs(", \"incomplete_tasks\": ", stdout);
	if (cli_job_status(s, job, &st)) {
		fputs("null, \"refused\": null, \"refused_tasks\": null",
		      stdout);
		return;
	}
	json_status_tasks(stdout, &st.jobs[0]);
	json_status_refusals(stdout, &st.jobs[0]);
	weft_status_release(&st);
}

static void text_state(FILE *out, const weft_job_record *r, bool intr)
{
	if (r->ended)
		fprintf(out, "exit %d", r->exit_code);
	else
		fputs(intr ? "INTERRUPTED" : "open", out);
}

static int job_list(weft_store *s, const char *dir, bool json)
{
	weft_job_record *jobs;
	size_t n;
	int err = weft_store_list_jobs(s, &jobs, &n);
	if (err != WEFT_OK) {
		cli_error("cannot list the jobs: %s", weft_store_errmsg(s));
		return 1;
	}
	if (json)
		fputc('[', stdout);
	for (size_t i = 0; i < n; i++) {
		const weft_job_record *r = &jobs[i];
		if (json) {
			fputs(i ? ",\n " : "", stdout);
			json_job(stdout, r, interrupted(dir, r));
			fputc('}', stdout);
			continue;
		}
		char t[40];
		weft_rfc3339(r->info.created_ns, t);
		printf("%.8s  %.19s  ", r->info.id, t);
		text_escaped(stdout, r->info.user);
		printf("  %4llu task%s  ", (unsigned long long)r->tasks,
		       r->tasks == 1 ? " " : "s");
		text_state(stdout, r, interrupted(dir, r));
		fputs("  ", stdout);
		text_escaped(stdout, r->info.command ? r->info.command : "");
		fputc('\n', stdout);
	}
	if (json)
		fputs("]\n", stdout);
	else if (n == 0)
		fputs("no jobs recorded in this project (weft submit makes "
		      "them)\n",
		      stderr);
	weft_job_records_free(jobs, n);
	return 0;
}

static void text_tasks(weft_store *s, const char *job)
{
	weft_dag d;
	if (weft_store_dag(s, job, &d) != WEFT_OK)
		return;
	printf("tasks (%zu):\n", d.ntasks);
	for (size_t i = 0; i < d.ntasks; i++) {
		const weft_dag_task *t = &d.tasks[i];
		fputs("  ", stdout);
		text_escaped(stdout, t->name ? t->name : t->id);
		fputs("  on ", stdout);
		text_escaped(stdout, t->node ? t->node : "?");
		printf(", %s, exit %d", t->backend ? t->backend : "?",
		       t->exit_code);
		text_parts(stdout, t->parts_stored, t->nparts);
		fputc('\n', stdout);
	}
	weft_dag_release(&d);
}

static int job_show(weft_store *s, const char *dir, const char *id, bool json)
{
	weft_job_record r;
	int err = weft_store_get_job(s, id, &r);
	if (err == WEFT_ENOTFOUND) {
		cli_error("no job '%s' in this project", id);
		return 1;
	}
	if (err == WEFT_EINVAL) {
		cli_error("'%s' matches more than one job; give more of the id",
			  id);
		return 1;
	}
	if (err != WEFT_OK) {
		cli_error("cannot read job '%s': %s", id, weft_store_errmsg(s));
		return 1;
	}
	if (json) {
		json_job(stdout, &r, interrupted(dir, &r));
		json_incomplete_tasks(s, r.info.id);
		fputs("}\n", stdout);
		weft_job_record_release(&r);
		return 0;
	}
	char t[40];
	printf("job %s\n  command   ", r.info.id);
	text_escaped(stdout, r.info.command ? r.info.command : "");
	fputs("\n  user      ", stdout);
	text_escaped(stdout, r.info.user);
	fputc('@', stdout);
	text_escaped(stdout, r.info.host);
	fputs("\n  cwd       ", stdout);
	text_escaped(stdout, r.info.cwd);
	if (r.info.git[0]) {
		fputs("\n  git       ", stdout);
		text_escaped(stdout, r.info.git);
	}
	weft_rfc3339(r.info.created_ns, t);
	printf("\n  created   %s\n  ended     ", t);
	if (r.ended) {
		weft_rfc3339(r.ended_ns, t);
		printf("%s, ", t);
	}
	if (interrupted(dir, &r))
		fputs("never: INTERRUPTED (its weft run stopped before the "
		      "job's end)",
		      stdout);
	else
		text_state(stdout, &r, false);
	printf("\n  recorded  %llu task%s, %llu writer%s, %llu fragment%s\n",
	       (unsigned long long)r.tasks, r.tasks == 1 ? "" : "s",
	       (unsigned long long)r.writers, r.writers == 1 ? "" : "s",
	       (unsigned long long)r.fragments, r.fragments == 1 ? "" : "s");
	if (r.tasks_incomplete)
		printf("  INCOMPLETE %llu task%s with parts missing (marked "
		       "below)\n",
		       (unsigned long long)r.tasks_incomplete,
		       r.tasks_incomplete == 1 ? "" : "s");
	weft_status st;
	if (r.refused && cli_job_status(s, r.info.id, &st) == 0) {
		text_status_refusals(stdout, &st.jobs[0]);
		weft_status_release(&st);
	}
	text_tasks(s, r.info.id);
	weft_job_record_release(&r);
	return 0;
}

static const cli_cmd job_cmd = {
	.name = "job",
	.help = job_help,
	.max_args = CLI_ANY_ARGS,
	.missing = "missing 'list' or 'show ID'",
};

int cmd_job(int argc, char **argv)
{
	bool json = false;
	const cli_opt opts[] = {
		{"json", 'j', CLI_FLAG, &json},
		{NULL},
	};
	int c = cli_parse(&job_cmd, opts, argc, argv);
	if (c != CLI_GO)
		return c;
	const char *sub = argv[optind];
	int nargs = argc - optind - 1;
	if (strcmp(sub, "list") == 0 && nargs != 0)
		return cli_usage_error("job", "'list' takes no argument");
	if (strcmp(sub, "show") == 0 && nargs != 1)
		return cli_usage_error("job", "'show' takes one job id");
	if (strcmp(sub, "list") != 0 && strcmp(sub, "show") != 0)
		return cli_usage_error("job", "unknown subcommand '%s'", sub);
	char dir[WEFT_MAX_PATH_BYTES + 16];
	weft_store *s = cli_open_store(false, dir, sizeof(dir));
	if (!s)
		return 1;
	int rc = strcmp(sub, "list") == 0
			 ? job_list(s, dir, json)
			 : job_show(s, dir, argv[optind + 1], json);
	weft_store_close(s);
	return rc;
}
