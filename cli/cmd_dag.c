/*
 * cmd_dag.c - `weft dag`: the lineage DAG of the recorded runs as text (for
 * people), Graphviz dot, or the stable JSON of DESIGN.md.
 *
 * Text and dot leave out inputs that no task wrote and that live in system
 * directories (shared libraries, locale files): every run reads them and
 * they bury the lineage. --all keeps them; JSON always has everything.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char dag_help[] =
	"usage: weft dag [--job ID] [--store PATH] "
	"[--format text|dot|json|svg|html] [--all] [--processes] [-o FILE]\n\n"
	"Print the lineage DAG of every run recorded in this project: tasks\n"
	"(runs), artifacts (file versions: one content, BLAKE2b-256, at one\n"
	"location) and edges (artifact -> task for reads, task -> artifact\n"
	"for writes). A task depends on another when it read the version\n"
	"the other wrote there; the same bytes elsewhere are never an edge.\n"
	"An edge weft cannot vouch for (version matched by place and time\n"
	"alone, a write not hashed) is weak.\n\n"
	"  --job ID     only this job's tasks (an id or a unique prefix):\n"
	"               every node's fragments, joined by file versions\n"
	"  --store PATH the store to read (default: the project's)\n"
	"  --format F   text (default), dot (Graphviz), json, svg (laid out\n"
	"               by Graphviz) or html (the SVG in one page: click a\n"
	"               node to highlight its lineage)\n"
	"  --all        not json: include system inputs (/usr, /lib, /etc...)\n"
	"  --processes  down to the process: each program a run started that\n"
	"               read or wrote a file is a task of its own, and the\n"
	"               files one wrote and another read within a run are\n"
	"               edges between them (data through pipes is not seen)\n"
	"  -o FILE      write there instead of standard output\n";

/*
 * What the printers look up, built once in O(E log N): a task's edges, an
 * artifact by id, an artifact's writers. Scanning every edge per task and
 * per read instead took 11 s for a job of 1,000,000 file records.
 */
struct dag_index {
	const weft_dag *d;
	size_t *edge_art;   /* per edge: its artifact, or SIZE_MAX */
	size_t *task_first; /* task t's edges: by_task[task_first[t]..[t+1]] */
	size_t *by_task;    /* edge indices grouped by task, in edge order */
	size_t *art_first;  /* artifact a's write edges: writes[art_first..] */
	size_t *writes;
	bool *read;         /* per artifact: some edge reads it */
};

/* Indices 0..n-1 sorted by id (and index, so the first of equal ids
 * comes first, as a scan would find it). */
struct id_sort {
	const char *const *ids;
};

static int cmp_by_id(const void *x, const void *y, void *arg)
{
	const struct id_sort *s = arg;
	size_t a = *(const size_t *)x, b = *(const size_t *)y;
	int c = strcmp(s->ids[a], s->ids[b]);
	return c ? c : (a > b) - (a < b);
}

static size_t *sorted_by_id(const char *const *ids, size_t n)
{
	size_t *order = malloc((n ? n : 1) * sizeof(*order));
	if (!order)
		return NULL;
	for (size_t i = 0; i < n; i++)
		order[i] = i;
	struct id_sort s = {ids};
	qsort_r(order, n, sizeof(*order), cmp_by_id, &s);
	return order;
}

/* The first index whose id is id, or SIZE_MAX. */
static size_t find_id(const char *const *ids, const size_t *order, size_t n,
		      const char *id)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (strcmp(ids[order[mid]], id) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < n && strcmp(ids[order[lo]], id) == 0 ? order[lo] : SIZE_MAX;
}

static void dag_index_free(struct dag_index *x)
{
	free(x->edge_art);
	free(x->task_first);
	free(x->by_task);
	free(x->art_first);
	free(x->writes);
	free(x->read);
}

/* Entries of key[] (SIZE_MAX: none) grouped by key, in index order:
 * first[k]..first[k+1] indexes out[]. */
static int group(const size_t *key, size_t n, size_t nkeys, size_t **first,
		 size_t **out)
{
	*first = calloc(nkeys + 1, sizeof(**first));
	*out = malloc((n ? n : 1) * sizeof(**out));
	size_t *next = malloc((nkeys ? nkeys : 1) * sizeof(*next));
	if (!*first || !*out || !next) {
		free(next);
		return -1;
	}
	for (size_t i = 0; i < n; i++)
		if (key[i] != SIZE_MAX)
			(*first)[key[i] + 1]++;
	for (size_t k = 0; k < nkeys; k++)
		(*first)[k + 1] += (*first)[k];
	memcpy(next, *first, nkeys * sizeof(*next));
	for (size_t i = 0; i < n; i++)
		if (key[i] != SIZE_MAX)
			(*out)[next[key[i]]++] = i;
	free(next);
	return 0;
}

static int dag_index_build(const weft_dag *d, struct dag_index *x)
{
	memset(x, 0, sizeof(*x));
	x->d = d;
	const char **tids = malloc((d->ntasks + 1) * sizeof(*tids));
	const char **aids = malloc((d->nartifacts + 1) * sizeof(*aids));
	size_t *edge_task = malloc((d->nedges + 1) * sizeof(*edge_task));
	size_t *write_art = malloc((d->nedges + 1) * sizeof(*write_art));
	x->edge_art = malloc((d->nedges + 1) * sizeof(*x->edge_art));
	size_t *torder = NULL, *aorder = NULL;
	int err = -1;
	if (!tids || !aids || !edge_task || !write_art || !x->edge_art)
		goto out;
	for (size_t i = 0; i < d->ntasks; i++)
		tids[i] = d->tasks[i].id;
	for (size_t i = 0; i < d->nartifacts; i++)
		aids[i] = d->artifacts[i].id;
	if (!(torder = sorted_by_id(tids, d->ntasks)) ||
	    !(aorder = sorted_by_id(aids, d->nartifacts)))
		goto out;
	for (size_t i = 0; i < d->nedges; i++) {
		const weft_dag_edge *e = &d->edges[i];
		edge_task[i] = find_id(tids, torder, d->ntasks,
				       e->write ? e->from : e->to);
		x->edge_art[i] = find_id(aids, aorder, d->nartifacts,
					 e->write ? e->to : e->from);
		write_art[i] = e->write ? x->edge_art[i] : SIZE_MAX;
	}
	if (group(edge_task, d->nedges, d->ntasks, &x->task_first,
		  &x->by_task) ||
	    group(write_art, d->nedges, d->nartifacts, &x->art_first,
		  &x->writes) ||
	    !(x->read = calloc(d->nartifacts + 1, sizeof(*x->read))))
		goto out;
	for (size_t i = 0; i < d->nedges; i++)
		if (!d->edges[i].write && x->edge_art[i] != SIZE_MAX)
			x->read[x->edge_art[i]] = true;
	err = 0;
out:
	free(tids);
	free(aids);
	free(edge_task);
	free(write_art);
	free(torder);
	free(aorder);
	if (err) {
		dag_index_free(x);
		cli_error("out of memory");
	}
	return err;
}

/* Hidden unless --all: system inputs nobody in the DAG produced, and at
 * process level the versions a process made that the run replaced before
 * anyone read them (a temporary file created empty, then written by the
 * compiler it was made for). */
static bool hidden(const struct dag_index *x, size_t a, bool all)
{
	const weft_dag_artifact *art = &x->d->artifacts[a];
	if (all)
		return false;
	if (art->kind == WEFT_VERSION_INTERIM)
		return !x->read[a];
	return art->path && cli_is_system_path(art->path) &&
	       x->art_first[a + 1] == x->art_first[a];
}

/* A task's id for people: a run's first 8 characters, a process's run
 * prefix and its index ("953859af/p12"). */
static void print_short_id(FILE *out, const char *id)
{
	const char *p = strstr(id, "/p");
	fprintf(out, "%.8s%s", id, p ? p : "");
}

static void print_artifact_line(FILE *out, const struct dag_index *x,
				const weft_dag_edge *e, size_t ai)
{
	const weft_dag *d = x->d;
	const weft_dag_artifact *a = &d->artifacts[ai];
	fprintf(out, "  %s ",
		e->write    ? "writes"
		: e->update ? "updates"
			    : "reads ");
	text_escaped(out, e->path ? e->path : a->path ? a->path : a->id);
	if (e->path) {
		fputs(" (-> ", out);
		text_escaped(out, a->path);
		fputc(')', out);
	}
	if (a->has_hash)
		text_hash(out, a->hash, 24);
	if (e->weak)
		text_weak(out, e->write);
	if (!e->write) {
		/* Which tasks produced what this task read. */
		for (size_t k = x->art_first[ai]; k < x->art_first[ai + 1];
		     k++) {
			const weft_dag_edge *w = &d->edges[x->writes[k]];
			if (strcmp(w->from, e->to) != 0) {
				fputs("  <- ", out);
				print_short_id(out, w->from);
			}
		}
	}
	fputc('\n', out);
}

/* Same-content links are few: a linear search is enough. */
static size_t artifact_by_id(const weft_dag *d, const char *id)
{
	size_t i = 0;
	while (i < d->nartifacts && strcmp(d->artifacts[i].id, id) != 0)
		i++;
	return i;
}

static void print_text(FILE *out, const struct dag_index *x, bool all)
{
	const weft_dag *d = x->d;
	size_t nhidden = 0;
	for (size_t i = 0; i < d->nartifacts; i++)
		nhidden += hidden(x, i, all);
	fprintf(out, "%zu task%s, %zu artifact%s, %zu edge%s\n", d->ntasks,
		d->ntasks == 1 ? "" : "s", d->nartifacts,
		d->nartifacts == 1 ? "" : "s", d->nedges,
		d->nedges == 1 ? "" : "s");
	for (size_t t = 0; t < d->ntasks; t++) {
		const weft_dag_task *task = &d->tasks[t];
		bool shown = task->kind != WEFT_DAG_PROCESS;
		for (size_t k = x->task_first[t];
		     !shown && k < x->task_first[t + 1]; k++) {
			size_t a = x->edge_art[x->by_task[k]];
			shown = a != SIZE_MAX && !hidden(x, a, all);
		}
		if (!shown)
			continue; /* a process that only started others */
		fputs("\ntask ", out);
		print_short_id(out, task->id);
		fputs("  ", out);
		text_escaped(out, task->name ? task->name : "?");
		fprintf(out, "  [%s, exit %d%s",
			task->backend ? task->backend : "?", task->exit_code,
			task->node ? ", " : "");
		text_escaped(out, task->node ? task->node : "");
		text_parts(out, task->parts_stored, task->nparts);
		fputs("]\n", out);
		/* Reads first, then writes: the order data flows. */
		for (int pass = 0; pass < 2; pass++) {
			for (size_t k = x->task_first[t];
			     k < x->task_first[t + 1]; k++) {
				size_t i = x->by_task[k];
				const weft_dag_edge *e = &d->edges[i];
				if (e->write != (pass == 1))
					continue;
				size_t a = x->edge_art[i];
				if (a != SIZE_MAX && !hidden(x, a, all))
					print_artifact_line(out, x, e, a);
			}
		}
	}
	if (d->nsame)
		fputs("\nsame content, not a dependency (weak):\n", out);
	for (size_t i = 0; i < d->nsame; i++) {
		size_t a = artifact_by_id(d, d->same[i].artifact);
		size_t o = artifact_by_id(d, d->same[i].same_as);
		if (a == d->nartifacts || o == d->nartifacts)
			continue;
		fputs("  ", out);
		text_escaped(out, d->artifacts[a].path);
		fputs("  same content as  ", out);
		text_escaped(out, d->artifacts[o].path);
		fputc('\n', out);
	}
	if (nhidden)
		fprintf(out,
			"\n(%zu system input%s not shown; --all shows them)\n",
			nhidden, nhidden == 1 ? "" : "s");
}

static void dot_node(FILE *out, const char *id, const char *shape,
		     const char *label)
{
	fputs("  ", out);
	dot_string(out, id);
	fprintf(out, " [shape=%s, label=", shape);
	dot_string(out, label);
	fputs("];\n", out);
}

static void print_dot(FILE *out, const struct dag_index *x, bool all)
{
	const weft_dag *d = x->d;
	fputs("digraph weft {\n  rankdir=LR;\n", out);
	for (size_t i = 0; i < d->ntasks; i++) {
		const weft_dag_task *t = &d->tasks[i];
		dot_node(out, t->id, "box", t->name ? t->name : t->id);
	}
	for (size_t i = 0; i < d->nartifacts; i++) {
		const weft_dag_artifact *a = &d->artifacts[i];
		if (hidden(x, i, all))
			continue;
		dot_node(out, a->id, "ellipse", a->path ? a->path : a->id);
	}
	for (size_t i = 0; i < d->nedges; i++) {
		const weft_dag_edge *e = &d->edges[i];
		if (x->edge_art[i] != SIZE_MAX &&
		    hidden(x, x->edge_art[i], all))
			continue;
		fputs("  ", out);
		dot_string(out, e->from);
		fputs(" -> ", out);
		dot_string(out, e->to);
		fputs(e->weak     ? " [style=dashed];\n"
		      : e->update ? " [label=\"update\"];\n"
				  : ";\n",
		      out);
	}
	for (size_t i = 0; i < d->nsame; i++) {
		fputs("  ", out);
		dot_string(out, d->same[i].artifact);
		fputs(" -> ", out);
		dot_string(out, d->same[i].same_as);
		fputs(" [style=dotted, dir=none, label=\"same content\"];\n",
		      out);
	}
	fputs("}\n", out);
}

/* json_dag, with the job's refused tasks (json_status_refusals) after
 * its last field when j is not NULL. */
static int json_dag_job(FILE *out, const weft_dag *d, const weft_status_job *j)
{
	if (!j) {
		json_dag(out, d);
		return 0;
	}
	char *buf = NULL;
	size_t len = 0;
	FILE *mem = open_memstream(&buf, &len);
	if (!mem)
		return 1;
	json_dag(mem, d);
	if (fclose(mem) || len < 2 || memcmp(buf + len - 2, "}\n", 2)) {
		free(buf);
		return 1;
	}
	fwrite(buf, 1, len - 2, out);
	json_status_refusals(out, j);
	fputs("}\n", out);
	free(buf);
	return 0;
}

static const cli_cmd dag_cmd = {
	.name = "dag",
	.help = dag_help,
};

int cmd_dag(int argc, char **argv)
{
	const char *format = "text", *out_path = NULL;
	cli_store_opts so = {0};
	bool all = false, processes = false;
	const cli_opt opts[] = {
		{"format", 'f', CLI_STRING, &format},
		{"all", 'a', CLI_FLAG, &all},
		{"processes", 'p', CLI_FLAG, &processes},
		CLI_STORE_OPTS(&so),
		{"output", 'o', CLI_STRING, &out_path},
		{NULL},
	};
	int c = cli_parse(&dag_cmd, opts, argc, argv);
	if (c != CLI_GO)
		return c;
	bool picture = !strcmp(format, "svg") || !strcmp(format, "html");
	if (strcmp(format, "text") && strcmp(format, "dot") &&
	    strcmp(format, "json") && !picture)
		return cli_usage_error("dag",
				       "unknown format '%s' (expected text, "
				       "dot, json, svg or html)",
				       format);
	if (cli_output_to(out_path))
		return 1;
	weft_store *store = cli_store_open(&so);
	if (!store)
		return cli_output_done(out_path, 1);
	weft_dag d;
	int err = processes ? weft_store_dag_processes(store, so.id, &d)
			    : weft_store_dag(store, so.id, &d);
	if (err == WEFT_ENOTFOUND) {
		/* A job whose fragments have not arrived yet. */
		memset(&d, 0, sizeof(d));
		d.job = strdup(so.job_id);
		err = d.job ? WEFT_OK : WEFT_ENOMEM;
	}
	if (err != WEFT_OK) {
		cli_error("cannot read the DAG: %s", weft_store_errmsg(store));
		weft_store_close(store);
		return cli_output_done(out_path, 1);
	}
	/* A job's refused tasks are named beside its DAG: they are not in
	 * it, or only in part. */
	weft_status st = {0};
	const weft_status_job *sj = NULL;
	if (so.id && cli_job_status(store, so.id, &st) == 0)
		sj = &st.jobs[0];
	struct dag_index x;
	int rc = 0;
	if (strcmp(format, "json") == 0)
		rc = json_dag_job(stdout, &d, sj);
	else if (picture)
		rc = cli_dag_picture(store, &d, format, all);
	else if (dag_index_build(&d, &x)) {
		rc = 1;
	} else {
		if (strcmp(format, "dot") == 0)
			print_dot(stdout, &x, all);
		else
			print_text(stdout, &x, all);
		dag_index_free(&x);
	}
	if (sj && sj->refused && strcmp(format, "json")) {
		/* dot stays a graph: the names go to stderr there. */
		FILE *out = strcmp(format, "dot") ? stdout : stderr;
		text_status_refusals(out, sj);
	}
	weft_status_release(&st);
	weft_dag_release(&d);
	weft_store_close(store);
	return cli_output_done(out_path, rc);
}
