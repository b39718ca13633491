/*
 * cmd_dag.c - `weft dag`: the lineage DAG of the recorded runs as text (for
 * people), Graphviz dot, or the stable JSON of DESIGN.md.
 *
 * Text and dot leave out inputs that no task wrote and that live in system
 * directories (shared libraries, locale files): every run reads them and
 * they bury the lineage. --all keeps them; JSON always has everything.
 */
#include <getopt.h>
#include <string.h>

#include "cli.h"

static const char dag_help[] =
	"usage: weft dag [--job ID] [--store PATH] [--format text|dot|json] "
	"[--all]\n\n"
	"Print the lineage DAG of every run recorded in this project: tasks\n"
	"(runs), artifacts (file contents, by BLAKE2b-256 hash) and edges\n"
	"(artifact -> task for reads, task -> artifact for writes). A task\n"
	"depends on another when it read content the other wrote, whatever\n"
	"the path. An edge matched by path alone (no hash) is weak.\n\n"
	"  --job ID     only this job's tasks (an id or a unique prefix):\n"
	"               every node's fragments, joined by content hash\n"
	"  --store PATH the store to read (default: the project's)\n"
	"  --format F   text (default), dot (Graphviz) or json\n"
	"  --all        text/dot: include system inputs (/usr, /lib, /etc...)\n";

static const weft_dag_artifact *find_artifact(const weft_dag *d,
					      const char *id)
{
	for (size_t i = 0; i < d->nartifacts; i++)
		if (strcmp(d->artifacts[i].id, id) == 0)
			return &d->artifacts[i];
	return NULL;
}

static bool artifact_written(const weft_dag *d, const char *id)
{
	for (size_t i = 0; i < d->nedges; i++)
		if (d->edges[i].write && strcmp(d->edges[i].to, id) == 0)
			return true;
	return false;
}

/* Hidden unless --all: system inputs nobody in the DAG produced. */
static bool hidden(const weft_dag *d, const weft_dag_artifact *a, bool all)
{
	return !all && a->path && cli_is_system_path(a->path) &&
	       !artifact_written(d, a->id);
}

static void print_artifact_line(FILE *out, const weft_dag *d,
				const weft_dag_edge *e,
				const weft_dag_artifact *a)
{
	fprintf(out, "  %s ", e->write ? "writes" : "reads ");
	text_escaped(out, a->path ? a->path : a->id);
	if (a->has_hash) {
		char text[WEFT_HASH_TEXT_BYTES];
		weft_hash_to_text(a->hash, text);
		fprintf(out, "  %.24s", text);
	}
	if (e->weak)
		fputs("  (weak: matched by path, no hash)", out);
	if (!e->write) {
		/* Which tasks produced what this task read. */
		for (size_t j = 0; j < d->nedges; j++) {
			const weft_dag_edge *w = &d->edges[j];
			if (w->write && strcmp(w->to, a->id) == 0 &&
			    strcmp(w->from, e->to) != 0)
				fprintf(out, "  <- %.8s", w->from);
		}
	}
	fputc('\n', out);
}

static void print_text(FILE *out, const weft_dag *d, bool all)
{
	size_t nhidden = 0;
	for (size_t i = 0; i < d->nartifacts; i++)
		nhidden += hidden(d, &d->artifacts[i], all);
	fprintf(out, "%zu task%s, %zu artifact%s, %zu edge%s\n", d->ntasks,
		d->ntasks == 1 ? "" : "s", d->nartifacts,
		d->nartifacts == 1 ? "" : "s", d->nedges,
		d->nedges == 1 ? "" : "s");
	for (size_t t = 0; t < d->ntasks; t++) {
		const weft_dag_task *task = &d->tasks[t];
		fprintf(out, "\ntask %.8s  ", task->id);
		text_escaped(out, task->name ? task->name : "?");
		fprintf(out, "  [%s, exit %d%s%s]\n",
			task->backend ? task->backend : "?", task->exit_code,
			task->node ? ", " : "", task->node ? task->node : "");
		/* Reads first, then writes: the order data flows. */
		for (int pass = 0; pass < 2; pass++) {
			for (size_t i = 0; i < d->nedges; i++) {
				const weft_dag_edge *e = &d->edges[i];
				const char *tid = e->write ? e->from : e->to;
				const char *aid = e->write ? e->to : e->from;
				if (e->write != (pass == 1) ||
				    strcmp(tid, task->id) != 0)
					continue;
				const weft_dag_artifact *a =
					find_artifact(d, aid);
				if (a && !hidden(d, a, all))
					print_artifact_line(out, d, e, a);
			}
		}
	}
	if (nhidden)
		fprintf(out,
			"\n(%zu system input%s not shown; --all shows them)\n",
			nhidden, nhidden == 1 ? "" : "s");
}

/* dot identifiers: quoted, with " and \ escaped and the rest as text. */
static void dot_id(FILE *out, const char *s)
{
	fputc('"', out);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fputc('\\', out);
		if (*s == '\n')
			fputs("\\n", out);
		else
			fputc(*s, out);
	}
	fputc('"', out);
}

static void print_dot(FILE *out, const weft_dag *d, bool all)
{
	fputs("digraph weft {\n  rankdir=LR;\n", out);
	for (size_t i = 0; i < d->ntasks; i++) {
		const weft_dag_task *t = &d->tasks[i];
		fputs("  ", out);
		dot_id(out, t->id);
		fputs(" [shape=box, label=", out);
		dot_id(out, t->name ? t->name : t->id);
		fputs("];\n", out);
	}
	for (size_t i = 0; i < d->nartifacts; i++) {
		const weft_dag_artifact *a = &d->artifacts[i];
		if (hidden(d, a, all))
			continue;
		fputs("  ", out);
		dot_id(out, a->id);
		fputs(" [shape=ellipse, label=", out);
		dot_id(out, a->path ? a->path : a->id);
		fputs("];\n", out);
	}
	for (size_t i = 0; i < d->nedges; i++) {
		const weft_dag_edge *e = &d->edges[i];
		const weft_dag_artifact *a =
			find_artifact(d, e->write ? e->to : e->from);
		if (a && hidden(d, a, all))
			continue;
		fputs("  ", out);
		dot_id(out, e->from);
		fputs(" -> ", out);
		dot_id(out, e->to);
		fputs(e->weak ? " [style=dashed];\n" : ";\n", out);
	}
	fputs("}\n", out);
}

int cmd_dag(int argc, char **argv)
{
	static const struct option opts[] = {
		{"format", required_argument, NULL, 'f'},
		{"all", no_argument, NULL, 'a'},
		{"job", required_argument, NULL, 'j'},
		{"store", required_argument, NULL, 's'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *format = "text", *job = NULL, *store_path = NULL;
	bool all = false;
	int c;
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, ":f:aj:s:h", opts, NULL)) != -1) {
		switch (c) {
		case 'f': format = optarg; break;
		case 'j': job = optarg; break;
		case 's': store_path = optarg; break;
		case 'a': all = true; break;
		case 'h': fputs(dag_help, stdout); return 0;
		case ':':
			return cli_usage_error("dag", "option '%s' needs a value",
					       argv[optind - 1]);
		default:
			return cli_usage_error("dag", "unknown option '%s'",
					       argv[optind - 1]);
		}
	}
	if (optind < argc)
		return cli_usage_error("dag", "unexpected argument '%s'",
				       argv[optind]);
	if (strcmp(format, "text") && strcmp(format, "dot") &&
	    strcmp(format, "json"))
		return cli_usage_error("dag",
				       "unknown format '%s' (expected text, "
				       "dot or json)",
				       format);
	weft_store *store = cli_open_store_at(store_path);
	if (!store)
		return 1;
	char job_id[WEFT_JOB_ID_BYTES + 1];
	if (job && cli_resolve_job(store, job, job_id)) {
		weft_store_close(store);
		return 1;
	}
	weft_dag d;
	int err = weft_store_dag(store, job ? job_id : NULL, &d);
	if (err == WEFT_ENOTFOUND) {
		/* A job whose fragments have not arrived yet. */
		memset(&d, 0, sizeof(d));
		d.job = strdup(job_id);
		err = d.job ? WEFT_OK : WEFT_ENOMEM;
	}
	if (err != WEFT_OK) {
		cli_error("cannot read the DAG: %s", weft_store_errmsg(store));
		weft_store_close(store);
		return 1;
	}
	if (strcmp(format, "json") == 0)
		json_dag(stdout, &d);
	else if (strcmp(format, "dot") == 0)
		print_dot(stdout, &d, all);
	else
		print_text(stdout, &d, all);
	weft_dag_release(&d);
	weft_store_close(store);
	return 0;
}
