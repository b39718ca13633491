/*
 * cmd_rerun.c - `weft rerun RUN [--check] [--tracer MODE] [--json]`: run
 * a recorded run's command again, traced, in its recorded working
 * directory (as `weft run` does), and with --check say whether every
 * output came out bit-identical, and what differed upstream when one did
 * not (weft_diff_reports).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

static const char rerun_help[] =
	"usage: weft rerun RUN [--check] [--json] [--tracer MODE]\n\n"
	"Run the command of a recorded run (an id or a unique prefix) again,\n"
	"traced, in its recorded working directory, with the environment\n"
	"weft rerun is given. Refused when that directory or an input of the\n"
	"run is gone.\n\n"
	"  --check  compare: every output bit-identical? Each one that is\n"
	"           not is named, with what differed upstream (inputs,\n"
	"           executables, environment, command line)\n"
	"  --json   with --check: {\"weft\": 1, \"run\", \"rerun\",\n"
	"           \"reproduced\", \"outputs\": [...], \"upstream\": [...]}\n"
	"  --tracer MODE  as for weft run\n\n"
	"Exit status: without --check the command's; with --check 0 only when\n"
	"every output was reproduced, 1 otherwise; 2 for bad arguments, 3 "
	"when\n"
	"the run cannot be re-run (named), 125 when weft failed.\n";

static void print_item_json(FILE *out, const weft_diff_item *x, bool first)
{
	fputs(first ? "{" : ", {", out);
	json_diff_item_fields(out, x);
	fputc('}', out);
}

static int check(weft_store *s, const weft_report *old, const char *new_id,
		 bool json)
{
	weft_report now;
	int err = weft_store_get_run(s, new_id, &now);
	if (err) {
		cli_error("cannot read the new run %s: %s", new_id,
			  weft_strerror(err));
		return 125;
	}
	weft_diff d;
	err = weft_diff_reports(old, &now, &d);
	weft_report_release(&now);
	if (err) {
		cli_error("cannot compare the runs: %s", weft_strerror(err));
		return 125;
	}
	size_t bad = 0, upstream = 0;
	for (size_t i = 0; i < d.nitems; i++) {
		const weft_diff_item *x = &d.items[i];
		if (x->section == WEFT_DIFF_OUTPUT)
			bad += x->change != WEFT_DIFF_SAME;
		else if (x->section != WEFT_DIFF_EXIT)
			upstream++;
	}
	if (json) {
		fputs("{\"weft\": 1, \"run\": ", stdout);
		weft_json_string(stdout, d.a);
		fputs(", \"rerun\": ", stdout);
		weft_json_string(stdout, d.b);
		fprintf(stdout, ", \"reproduced\": %s, \"outputs\": [",
			bad ? "false" : "true");
		bool first = true;
		for (size_t i = 0; i < d.nitems; i++)
			if (d.items[i].section == WEFT_DIFF_OUTPUT) {
				print_item_json(stdout, &d.items[i], first);
				first = false;
			}
		fputs("], \"upstream\": [", stdout);
		first = true;
		for (size_t i = 0; i < d.nitems; i++)
			if (d.items[i].section != WEFT_DIFF_OUTPUT) {
				print_item_json(stdout, &d.items[i], first);
				first = false;
			}
		fputs("]}\n", stdout);
	} else {
		for (size_t i = 0; i < d.nitems; i++) {
			const weft_diff_item *x = &d.items[i];
			if (x->section != WEFT_DIFF_OUTPUT)
				continue;
			fputs("not reproduced: ", stdout);
			text_escaped(stdout, x->name);
			fprintf(stdout, " (%s)\n",
				x->change == WEFT_DIFF_REMOVED
					? "not written by the re-run"
				: x->change == WEFT_DIFF_ADDED
					? "written only by the re-run"
					: "other content");
		}
		if (bad && !upstream)
			fputs("nothing weft recorded differs upstream: the "
			      "command is not deterministic (or used what weft "
			      "does not see)\n",
			      stdout);
		for (size_t i = 0; bad && i < d.nitems; i++) {
			const weft_diff_item *x = &d.items[i];
			if (x->section == WEFT_DIFF_OUTPUT ||
			    x->section == WEFT_DIFF_EXIT)
				continue;
			fprintf(stdout, "upstream: %s %s ",
				weft_diff_section_name(x->section),
				weft_diff_change_name(x->change));
			text_escaped(stdout, x->name);
			fputc('\n', stdout);
		}
		if (!bad)
			fprintf(stdout,
				"reproduced: every output of %s is "
				"bit-identical\n",
				d.a);
	}
	weft_diff_release(&d);
	return bad ? 1 : 0;
}

static const cli_cmd rerun_cmd = {
	.name = "rerun",
	.help = rerun_help,
	.max_args = CLI_ANY_ARGS,
};

int cmd_rerun(int argc, char **argv)
{
	bool do_check = false, json = false;
	const char *tracer = NULL;
	const cli_opt opts[] = {
		{"check", 0, CLI_FLAG, &do_check},
		{"json", 0, CLI_FLAG, &json},
		{"tracer", 0, CLI_STRING, &tracer},
		{NULL},
	};
	int c = cli_parse(&rerun_cmd, opts, argc, argv);
	if (c != CLI_GO)
		return c;
	if (optind + 1 != argc)
		return cli_usage_error("rerun", "expected one RUN");
	char weft_dir[WEFT_MAX_PATH_BYTES + 16];
	weft_store *store = cli_open_store(false, weft_dir, sizeof(weft_dir));
	if (!store)
		return 3;
	weft_report old;
	int err = weft_store_get_run(store, argv[optind], &old);
	weft_store_close(store);
	if (err) {
		cli_error("no recorded run '%s'%s", argv[optind],
			  err == WEFT_EINVAL ? " (ambiguous prefix)" : "");
		return err == WEFT_EINVAL ? 2 : 3;
	}
	const weft_process_rec *root = NULL;
	for (size_t i = 0; i < old.nprocesses && !root; i++)
		if (old.processes[i].ppid == 0 || !old.processes[i].has_parent)
			root = &old.processes[i];
	int rc = 0;
	struct stat st;
	char shown[4 * WEFT_MAX_PATH_BYTES + 16];
	if (!root || !root->argc || !root->cwd) {
		cli_error("run %s has no recorded command or working directory",
			  old.run_id);
		rc = 3;
	} else if (stat(root->cwd, &st) != 0 || !S_ISDIR(st.st_mode)) {
		text_escape(shown, sizeof(shown), root->cwd);
		cli_error("cannot re-run %s: its working directory '%s' is "
			  "gone",
			  old.run_id, shown);
		rc = 3;
	}
	for (size_t i = 0; !rc && i < old.nfiles; i++) {
		const weft_file_rec *f = &old.files[i];
		if (f->read && !f->written && !f->deleted && !f->renamed_to &&
		    stat(f->path, &st) != 0) {
			text_escape(shown, sizeof(shown), f->path);
			cli_error("cannot re-run %s: its input '%s' is gone",
				  old.run_id, shown);
			rc = 3;
		}
	}
	if (!rc && chdir(root->cwd) != 0) {
		cli_error("cannot enter %s: %s", root->cwd, strerror(errno));
		rc = 3;
	}
	char again[WEFT_MAX_PATH_BYTES + 16];
	weft_store *s2 =
		rc ? NULL : cli_open_store(false, again, sizeof(again));
	if (!rc && (!s2 || strcmp(again, weft_dir) != 0)) {
		cli_error("cannot re-run %s: its working directory is not in "
			  "this project (%s)",
			  old.run_id, weft_dir);
		rc = 3;
	}
	weft_store_close(s2);
	if (rc) {
		weft_report_release(&old);
		return rc;
	}
	/* Through weft run: one way to trace and record. */
	char **args = calloc((size_t)root->argc + 5, sizeof(*args));
	if (!args) {
		weft_report_release(&old);
		return 125;
	}
	int n = 0;
	args[n++] = "run";
	if (tracer) {
		args[n++] = "--tracer";
		args[n++] = (char *)tracer;
	}
	args[n++] = "--";
	for (uint32_t i = 0; i < root->argc; i++)
		args[n++] = root->argv[i];
	int status = cmd_run(n, args);
	free(args);
	if (do_check) {
		weft_store *s = cli_open_store(false, again, sizeof(again));
		weft_report latest;
		if (!s || weft_store_get_run(s, NULL, &latest) != WEFT_OK) {
			cli_error("the re-run was not recorded");
			rc = 125;
		} else {
			char id[WEFT_MAX_NAME_BYTES];
			snprintf(id, sizeof(id), "%s", latest.run_id);
			weft_report_release(&latest);
			rc = strcmp(id, old.run_id) == 0
				     ? 125
				     : check(s, &old, id, json);
		}
		weft_store_close(s);
	} else {
		rc = status;
	}
	weft_report_release(&old);
	return rc;
}
