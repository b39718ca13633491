/*
 * cmd_diff.c - `weft diff A B [--json]`, `weft diff --file PATH [A B]
 * [--json]`: what differs between two runs, tasks or jobs, or why two
 * versions of a file differ (weft_store_diff, weft_store_diff_file).
 * Exit 0 when nothing differs, 1 when something does, 2 for bad
 * arguments, 3 when the store could not answer.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

static const char diff_help[] =
	"usage: weft diff A B [--json]\n"
	"       weft diff --file PATH [A B] [--json]\n\n"
	"What differs between two runs, tasks or jobs (ids or unique\n"
	"prefixes): inputs added, removed or changed (by version), outputs,\n"
	"the command line, the working directory, executables (by hash), the\n"
	"environment (names, and values by hash unless listed in\n"
	"record.env_values), the exit status.\n"
	"With --file: two versions of PATH (made by runs A and B; default\n"
	"its last two different contents): the runs that made them compared,\n"
	"then the runs that made each input that differs, nearest first.\n\n"
	"  --json   {\"weft\": 1, \"a\", \"b\", \"path\", \"items\": "
	"[{\"depth\",\n"
	"           \"via\", \"section\", \"change\", \"name\", \"a\", "
	"\"b\"}]}\n\n"
	"Exit status: 0 when nothing differs, 1 when something does, 2 for\n"
	"bad arguments, 3 when the store could not answer.\n";

static void print_json(FILE *out, const weft_diff *d, const char *path)
{
	fputs("{\"weft\": 1, \"a\": ", out);
	weft_json_string(out, d->a);
	json_key_string(out, "b", d->b);
	json_key_string(out, "path", path);
	fputs(", \"items\": [", out);
	for (size_t i = 0; i < d->nitems; i++) {
		const weft_diff_item *x = &d->items[i];
		fprintf(out, "%s{\"depth\": %d, \"via\": ", i ? ", " : "",
			x->depth);
		json_string_or_null(out, x->via);
		fputs(", ", out);
		json_diff_item_fields(out, x);
		fputc('}', out);
	}
	fputs("]}\n", out);
}

static const char *noun(int section)
{
	switch (section) {
	case WEFT_DIFF_INPUT:
		return "input";
	case WEFT_DIFF_OUTPUT:
		return "output";
	case WEFT_DIFF_EXE:
		return "executable";
	case WEFT_DIFF_ENV:
		return "environment variable";
	default:
		return "";
	}
}

static void print_value(FILE *out, const char *v)
{
	if (v)
		text_escaped(out, v);
	else
		fputs("(not known)", out);
}

/* One difference as a phrase: "`x` changed", "`X` differs", ... */
static void print_item(FILE *out, const weft_diff_item *x, bool lineage)
{
	switch (x->section) {
	case WEFT_DIFF_COMMAND:
	case WEFT_DIFF_CWD:
	case WEFT_DIFF_EXIT:
		fprintf(out, "%s: ", weft_diff_section_name(x->section));
		print_value(out, x->a);
		fputs(" -> ", out);
		print_value(out, x->b);
		return;
	}
	fputc('`', out);
	text_escaped(out, x->name);
	fputc('`', out);
	const char *what = lineage ? "" : noun(x->section);
	switch (x->change) {
	case WEFT_DIFF_SAME:
		fputs(" is the same", out);
		return;
	case WEFT_DIFF_ADDED:
		fprintf(out, " %s%sadded", what, *what ? " " : "");
		return;
	case WEFT_DIFF_REMOVED:
		fprintf(out, " %s%sremoved", what, *what ? " " : "");
		return;
	case WEFT_DIFF_UNKNOWN:
		fprintf(out, " %s%snot known to be the same (not recorded)",
			what, *what ? " " : "");
		return;
	}
	if (x->section == WEFT_DIFF_ENV || x->section == WEFT_DIFF_EXE) {
		fprintf(out, " differs");
		if (x->section == WEFT_DIFF_ENV && x->a && x->b &&
		    x->a[0] == '"') {
			fputs(" (", out);
			text_escaped(out, x->a);
			fputs(" -> ", out);
			text_escaped(out, x->b);
			fputc(')', out);
		}
		return;
	}
	fprintf(out, " %s%schanged", what, *what ? " " : "");
}

static void print_runs(FILE *out, const weft_diff *d)
{
	fprintf(out, "A %s\nB %s\n", d->a, d->b);
	if (!d->nitems)
		fputs("no differences\n", out);
	for (size_t i = 0; i < d->nitems; i++) {
		fputs("  ", out);
		print_item(out, &d->items[i], false);
		fputc('\n', out);
	}
}

/* Per pair of runs, one sentence: "`p` changed because `q` changed; `r`
 * is the same; `X` differs", nearest first. */
static void print_lineage(FILE *out, const weft_diff *d)
{
	fprintf(out, "A made by run %s\nB made by run %s\n", d->a, d->b);
	size_t i = 1;
	if (d->nitems && d->items[0].change == WEFT_DIFF_SAME) {
		fputc('`', out);
		text_escaped(out, d->items[0].name);
		fputs("` is the same in both versions\n", out);
	}
	while (i < d->nitems) {
		const char *via = d->items[i].via;
		int depth = d->items[i].depth;
		size_t j = i;
		while (j < d->nitems && d->items[j].depth == depth &&
		       d->items[j].via && !strcmp(d->items[j].via, via))
			j++;
		fputc('`', out);
		text_escaped(out, via);
		fputs("` changed because ", out);
		bool any = false;
		for (size_t k = i; k < j; k++) {
			/* Causes only: what the run read, ran and was given. */
			int sec = d->items[k].section;
			if (d->items[k].change == WEFT_DIFF_SAME ||
			    sec == WEFT_DIFF_OUTPUT || sec == WEFT_DIFF_EXIT)
				continue;
			fputs(any ? "; " : "", out);
			print_item(out, &d->items[k], true);
			any = true;
		}
		if (!any)
			fputs("nothing weft recorded differs (the step is "
			      "not deterministic, or used what weft does not "
			      "see)",
			      out);
		for (size_t k = i; k < j; k++) {
			/* Inputs that are the same, system files left out
			 * (--json has them). */
			if (d->items[k].change != WEFT_DIFF_SAME ||
			    cli_is_system_path(d->items[k].name))
				continue;
			fputs("; ", out);
			print_item(out, &d->items[k], true);
		}
		fputc('\n', out);
		i = j;
	}
}

static const cli_cmd diff_cmd = {
	.name = "diff",
	.help = diff_help,
	.max_args = CLI_ANY_ARGS,
};

int cmd_diff(int argc, char **argv)
{
	bool json = false;
	const char *file = NULL;
	const cli_opt opts[] = {
		{"json", 0, CLI_FLAG, &json},
		{"file", 0, CLI_STRING, &file},
		{NULL},
	};
	int c = cli_parse(&diff_cmd, opts, argc, argv);
	if (c != CLI_GO)
		return c;
	int nargs = argc - optind;
	if (!file && nargs != 2)
		return cli_usage_error("diff", "expected two runs, tasks or "
					       "jobs (A B), or --file PATH");
	if (file && nargs != 0 && nargs != 2)
		return cli_usage_error("diff", "--file PATH takes no version "
					       "or two (A B)");
	char path[WEFT_MAX_PATH_BYTES + 1], cwd[PATH_MAX];
	if (file) {
		if (!getcwd(cwd, sizeof(cwd)) ||
		    weft_path_normalize(cwd, file, path, sizeof(path))) {
			cli_error("bad path (too long, or no working "
				  "directory)");
			return 2;
		}
	}
	char weft_dir[WEFT_MAX_PATH_BYTES + 16];
	weft_store *store = cli_open_store(false, weft_dir, sizeof(weft_dir));
	if (!store)
		return 3;
	weft_diff d;
	const char *a = nargs ? argv[optind] : NULL;
	const char *b = nargs ? argv[optind + 1] : NULL;
	int err = file ? weft_store_diff_file(store, path, a, b, &d)
		       : weft_store_diff(store, a, b, &d);
	int rc = 0;
	if (err == WEFT_ENOTFOUND) {
		char shown[4 * WEFT_MAX_PATH_BYTES + 16];
		text_escape(shown, sizeof(shown), file ? path : "");
		if (file)
			cli_error("'%s': not two recorded versions%s", shown,
				  a ? " made by those runs" : "");
		else
			cli_error("no run or job with those ids");
		rc = 3;
	} else if (err == WEFT_EINVAL) {
		cli_error("an id prefix names several runs or jobs");
		rc = 2;
	} else if (err) {
		cli_error("cannot compare: %s",
			  err == WEFT_EDB ? weft_store_errmsg(store)
					  : weft_strerror(err));
		rc = 3;
	} else {
		if (json)
			print_json(stdout, &d, file ? path : NULL);
		else if (file)
			print_lineage(stdout, &d);
		else
			print_runs(stdout, &d);
		rc = 0;
		for (size_t i = 0; i < d.nitems; i++)
			if (d.items[i].change != WEFT_DIFF_SAME)
				rc = 1;
		weft_diff_release(&d);
	}
	weft_store_close(store);
	return rc;
}
