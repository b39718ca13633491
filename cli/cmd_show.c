/*
 * cmd_show.c - `weft show [RUN] [--json]`: one recorded run, for people
 * (inputs, outputs, processes, warnings) or as the stable report JSON.
 */
#include <string.h>

#include "cli.h"

static const char show_help[] =
	"usage: weft show [RUN] [--json] [--all]\n\n"
	"Show a recorded run: its command, processes, the files it read\n"
	"(inputs) and wrote (outputs) with hashes, and warnings. RUN is a run\n"
	"id or a unique prefix of one; the latest run by default.\n\n"
	"  --json   the run report as JSON (the format of 'weft run "
	"--report')\n"
	"  --all    list system inputs (/usr, /lib, /etc...) and temporary\n"
	"           files (created and deleted by the run) too; by default\n"
	"           they are counted, not listed\n";

static void print_hash(FILE *out, const weft_file_rec *f)
{
	if (f->has_hash) {
		/* A prefix is enough for people; --json has the whole hash. */
		text_hash(out, f->hash, 28);
	} else if (f->hash_missing) {
		fputs("  (no hash: ", out);
		text_escaped(out, f->hash_missing);
		fputc(')', out);
	}
	if ((f->read || f->updated) && f->read_hash_missing) {
		fputs("  (version read not known: ", out);
		text_escaped(out, f->read_hash_missing);
		fputc(')', out);
	}
	if (f->has_size)
		fprintf(out, "  %lld B", (long long)f->size);
}

static void print_files(FILE *out, const weft_report *r, const char *title,
			int which, bool all)
{
	size_t n = 0, folded = 0;
	for (size_t i = 0; i < r->nfiles; i++) {
		const weft_file_rec *f = &r->files[i];
		bool pick = which == 0   ? f->read
			    : which == 1 ? f->written && !f->deleted &&
						   !f->renamed_to
					 : f->deleted || f->renamed_to;
		if (!pick)
			continue;
		/* Folded unless --all: system inputs, and files that lived
		 * only within the run (temporaries, shared memory objects). */
		if (!all &&
		    (which == 0 ? cli_is_system_path(f->path)
				: which == 2 && f->created && f->deleted)) {
			folded++;
			continue;
		}
		if (n++ == 0)
			fprintf(out, "%s:\n", title);
		fputs("  ", out);
		text_escaped(out, f->path);
		if (which == 2) {
			if (f->renamed_to) {
				fputs("  renamed to ", out);
				text_escaped(out, f->renamed_to);
			} else {
				fputs("  deleted", out);
			}
		} else {
			if (which == 1 && f->created)
				fputs("  (created)", out);
			print_hash(out, f);
		}
		fputc('\n', out);
	}
	if (folded && which == 0)
		fprintf(out, "%s  (+%zu system input%s; --all lists them)\n",
			n ? "" : "inputs:\n", folded, folded == 1 ? "" : "s");
	else if (folded)
		fprintf(out,
			"%s  (+%zu temporary file%s, created and deleted by "
			"the run; --all lists them)\n",
			n ? "" : "removed or moved:\n", folded,
			folded == 1 ? "" : "s");
}

static void print_report(FILE *out, const weft_report *r, bool all)
{
	char started[40];
	weft_rfc3339(r->started_ns, started);
	double secs = (double)(r->ended_ns - r->started_ns) / 1e9;
	fprintf(out, "run %s\n", r->run_id);
	if (r->nprocesses) {
		fputs("command:", out);
		for (uint32_t i = 0; i < r->processes[0].argc; i++) {
			fputc(' ', out);
			text_escaped(out, r->processes[0].argv[i]);
		}
		fputc('\n', out);
	}
	fputs("tracer ", out);
	text_escaped(out, r->backend);
	fputs(" on ", out);
	text_escaped(out, r->node[0] ? r->node : "?");
	fprintf(out, ", started %s, %.3f s, exit %d\n", started, secs,
		r->exit_code);
	fprintf(out, "processes: %zu\n", r->nprocesses);
	print_files(out, r, "inputs", 0, all);
	print_files(out, r, "outputs", 1, all);
	print_files(out, r, "removed or moved", 2, all);
	if (r->nwarnings) {
		fputs("warnings:\n", out);
		for (size_t i = 0; i < r->nwarnings; i++) {
			fputs("  ", out);
			text_escaped(out, r->warnings[i]);
			fputc('\n', out);
		}
	}
	if (r->dropped_events)
		fprintf(out, "dropped events: %llu (the record is incomplete)\n",
			(unsigned long long)r->dropped_events);
}

static const cli_cmd show_cmd = {
	.name = "show",
	.help = show_help,
	.max_args = CLI_ANY_ARGS,
};

int cmd_show(int argc, char **argv)
{
	bool json = false, all = false;
	const cli_opt opts[] = {
		{"json", 'j', CLI_FLAG, &json},
		{"all", 'a', CLI_FLAG, &all},
		{NULL},
	};
	int c = cli_parse(&show_cmd, opts, argc, argv);
	if (c != CLI_GO)
		return c;
	if (argc - optind > 1)
		return cli_usage_error("show", "one run at a time");
	const char *run = optind < argc ? argv[optind] : NULL;

	weft_store *store = cli_open_store(false, NULL, 0);
	if (!store)
		return 1;
	weft_report r;
	int err = weft_store_get_run(store, run, &r);
	if (err != WEFT_OK) {
		char shown[4 * WEFT_MAX_PATH_BYTES + 16] = "";
		if (run)
			text_escape(shown, sizeof(shown), run);
		if (err == WEFT_ENOTFOUND)
			cli_error(run ? "no run '%s' in this project"
				      : "no runs recorded in this project yet%s",
				  shown);
		else if (err == WEFT_EINVAL)
			cli_error("'%s' matches more than one run; give more "
				  "of the id",
				  shown);
		else
			cli_error("cannot read the store: %s",
				  weft_store_errmsg(store));
		weft_store_close(store);
		return 1;
	}
	if (json)
		json_report(stdout, &r);
	else
		print_report(stdout, &r, all);
	weft_report_release(&r);
	weft_store_close(store);
	return 0;
}
