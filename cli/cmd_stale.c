/*
 * cmd_stale.c - `weft stale [PATH...] [--json]`: which recorded outputs are
 * out of date, why, and the runs to re-run in order (weft_store_stale).
 * Exit 0 when nothing is, 1 when something is (like `make -q`), 2 for bad
 * arguments, 3 when weft could not answer.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

static const char stale_help[] =
	"usage: weft stale [PATH...] [--json]\n\n"
	"Which recorded outputs are out of date: an input on disk is not the\n"
	"version they were made from (changed, removed, or not known to be\n"
	"the same), a run upstream is out of date, or the output was changed\n"
	"or removed since. Without PATH: every output under the project's\n"
	"directory; with PATHs: those outputs and every output upstream of\n"
	"them. Each one comes with the runs to re-run, in order.\n"
	"Files are compared by stat identity; content is hashed only when the\n"
	"identity changed.\n\n"
	"  --json   {\"weft\": 1, \"stale\": [...], \"checked\", \"hashed\",\n"
	"           \"not_recorded\": [...]} (README.md)\n\n"
	"Exit status: 0 when nothing is out of date, 1 when something is (or\n"
	"a PATH is no recorded output), 2 for bad arguments, 3 when the store\n"
	"could not be read.\n";

static void print_json(FILE *out, const weft_stale_result *r)
{
	fputs("{\"weft\": 1, \"stale\": [", out);
	for (size_t i = 0; i < r->nstale; i++) {
		const weft_stale_output *o = &r->stale[i];
		json_object_open(out, i ? ", " : "", "path", o->path);
		json_key_string(out, "run", o->run);
		fputs(", \"causes\": [", out);
		for (size_t k = 0; k < o->ncauses; k++) {
			const weft_stale_cause *c = &o->causes[k];
			fprintf(out,
				"%s{\"why\": \"%s\", \"path\": ", k ? ", " : "",
				weft_stale_why_name(c->why));
			weft_json_string(out, c->path);
			json_key_string(out, "run", c->run);
			fputc('}', out);
		}
		fputs("], \"rerun\": [", out);
		json_strings(out, o->chain, o->nchain);
		fputs("]}", out);
	}
	fprintf(out,
		"], \"checked\": %zu, \"hashed\": %llu, \"not_recorded\": [",
		r->checked, (unsigned long long)r->hashed);
	json_strings(out, r->not_recorded, r->nnot_recorded);
	fputs("]}\n", out);
}

static const char *why_text(int why)
{
	switch (why) {
	case WEFT_STALE_INPUT_CHANGED:
		return "input changed";
	case WEFT_STALE_INPUT_GONE:
		return "input removed";
	case WEFT_STALE_INPUT_UNKNOWN:
		return "input not known to be the same";
	case WEFT_STALE_UPSTREAM:
		return "made by a run that is out of date";
	case WEFT_STALE_OUTPUT_CHANGED:
		return "changed since it was made";
	case WEFT_STALE_OUTPUT_GONE:
		return "removed since it was made";
	case WEFT_STALE_OUTPUT_UNKNOWN:
		return "not known to be what was made";
	}
	return "?";
}

static void print_text(FILE *out, const weft_stale_result *r)
{
	for (size_t i = 0; i < r->nstale; i++) {
		const weft_stale_output *o = &r->stale[i];
		text_escaped(out, o->path);
		fputs(": out of date\n", out);
		for (size_t k = 0; k < o->ncauses; k++) {
			const weft_stale_cause *c = &o->causes[k];
			fputs("  ", out);
			text_escaped(out, c->path);
			fprintf(out, ": %s", why_text(c->why));
			if (c->run)
				fprintf(out, " (run %.8s)", c->run);
			fputc('\n', out);
		}
		fputs("  re-run:", out);
		for (size_t k = 0; k < o->nchain; k++)
			fprintf(out, "%s %.8s", k ? " ->" : "", o->chain[k]);
		fputc('\n', out);
	}
	for (size_t i = 0; i < r->nnot_recorded; i++) {
		text_escaped(out, r->not_recorded[i]);
		fputs(": no recorded run left this file\n", out);
	}
	if (!r->nstale && !r->nnot_recorded)
		fprintf(out, "up to date: %zu outputs checked\n", r->checked);
	else
		fprintf(out, "%zu of %zu outputs out of date\n", r->nstale,
			r->checked);
}

static const cli_cmd stale_cmd = {
	.name = "stale",
	.help = stale_help,
	.max_args = CLI_ANY_ARGS,
};

int cmd_stale(int argc, char **argv)
{
	bool json = false;
	const cli_opt opts[] = {
		{"json", 0, CLI_FLAG, &json},
		{NULL},
	};
	int c = cli_parse(&stale_cmd, opts, argc, argv);
	if (c != CLI_GO)
		return c;
	char cwd[PATH_MAX];
	if (!getcwd(cwd, sizeof(cwd))) {
		cli_error("cannot get the working directory: %m");
		return 3;
	}
	size_t npaths = (size_t)(argc - optind);
	char **paths = calloc(npaths ? npaths : 1, sizeof(*paths));
	if (!paths) {
		cli_error("out of memory");
		return 3;
	}
	int rc = 0;
	for (size_t i = 0; i < npaths && !rc; i++) {
		char shown[4 * WEFT_MAX_PATH_BYTES + 16];
		paths[i] = malloc(WEFT_MAX_PATH_BYTES + 1);
		if (!paths[i] ||
		    weft_path_normalize(cwd, argv[optind + (int)i], paths[i],
					WEFT_MAX_PATH_BYTES + 1)) {
			text_escape(shown, sizeof(shown),
				    argv[optind + (int)i]);
			cli_error("path too long: '%s'", shown);
			rc = 2;
		}
	}
	char weft_dir[WEFT_MAX_PATH_BYTES + 16];
	weft_store *store =
		rc ? NULL : cli_open_store(false, weft_dir, sizeof(weft_dir));
	if (!rc && !store)
		rc = 3;
	if (!rc) {
		/* The project is the directory holding .weft. */
		char project[sizeof(weft_dir)];
		cli_dir_of(weft_dir, project, sizeof(project));
		weft_stale_result r;
		int err = weft_store_stale(
			store, project, (const char *const *)paths, npaths, &r);
		if (err) {
			cli_error("cannot tell what is out of date: %s",
				  err == WEFT_EDB ? weft_store_errmsg(store)
						  : weft_strerror(err));
			rc = 3;
		} else {
			if (json)
				print_json(stdout, &r);
			else
				print_text(stdout, &r);
			rc = r.nstale || r.nnot_recorded ? 1 : 0;
			weft_stale_result_release(&r);
		}
	}
	weft_store_close(store);
	for (size_t i = 0; i < npaths; i++)
		free(paths[i]);
	free(paths);
	return rc;
}
