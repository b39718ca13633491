/*
 * cmd_lineage.c - `weft lineage PATH`: where a file came from (--up, the
 * default) or what it fed (--down), as an indented tree or as JSON in the
 * DAG's shapes plus the path, direction and root artifact.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

static const char lineage_help[] =
	"usage: weft lineage PATH [--up|--down] [--json] [--store PATH] "
	"[--job ID] [--all] [--processes]\n\n"
	"Follow one file through the recorded runs, version by version.\n"
	"--up (default): the task that wrote its latest version, the\n"
	"versions it read, the tasks that wrote those, and so on. --down:\n"
	"the tasks that read it, the versions they wrote, and so on. An edge\n"
	"weft cannot vouch for (version matched by place and time alone) is\n"
	"weak. Something already shown is marked\n"
	"\"(above)\" instead of repeated.\n\n"
	"  --up         what PATH came from (default)\n"
	"  --down       what PATH fed\n"
	"  --json       the lineage as JSON (the shapes of weft dag)\n"
	"  --job ID     only this job's tasks (an id or a unique prefix)\n"
	"  --store PATH the store to read (default: the project's)\n"
	"  --all        text: include system inputs (/usr, /lib, /etc...)\n"
	"  --processes  down to the process: the program that wrote each\n"
	"               file (the link step, the compile behind an object\n"
	"               file), not only the run (data through pipes is not\n"
	"               seen at this level)\n";

/* What the tree printer needs: the lineage and what it printed. */
struct tree {
	FILE *out;
	const weft_dag *d;
	bool down, all;
	size_t nhidden;
	bool *task_done, *art_done;
};

static size_t task_index(const weft_dag *d, const char *id)
{
	for (size_t i = 0; i < d->ntasks; i++)
		if (!strcmp(d->tasks[i].id, id))
			return i;
	return d->ntasks;
}

static size_t artifact_index(const weft_dag *d, const char *id)
{
	for (size_t i = 0; i < d->nartifacts; i++)
		if (!strcmp(d->artifacts[i].id, id))
			return i;
	return d->nartifacts;
}

static void indent(FILE *out, int depth)
{
	for (int i = 0; i < depth; i++)
		fputs("  ", out);
}

static void print_artifact(struct tree *t, size_t a, int depth);

/* Hidden unless --all, as in `weft dag`: system inputs that no task in the
 * lineage wrote. */
static bool hidden(const struct tree *t, size_t a)
{
	const weft_dag_artifact *art = &t->d->artifacts[a];
	if (t->all || a == 0 || !cli_is_system_path(art->path))
		return false;
	for (size_t e = 0; e < t->d->nedges; e++)
		if (t->d->edges[e].write && !strcmp(t->d->edges[e].to, art->id))
			return false;
	return true;
}

/* The end of a node's line: "  (above)" when it was printed before (its
 * subtree is not printed again), else marked done now. True when its
 * subtree follows. */
static bool first_visit(struct tree *t, bool *done)
{
	if (*done) {
		fputs("  (above)\n", t->out);
		return false;
	}
	fputc('\n', t->out);
	*done = true;
	return true;
}

static void print_task(struct tree *t, size_t i, const weft_dag_edge *via,
		       int depth)
{
	const weft_dag_task *task = &t->d->tasks[i];
	indent(t->out, depth);
	/* A process: its run's prefix and its index ("953859af/p12"). */
	const char *proc = strstr(task->id, "/p");
	fprintf(t->out, "%s task %.8s%s  ",
		t->down ? (via->update ? "updated by" : "read by")
			: "written by",
		task->id, proc ? proc : "");
	text_escaped(t->out, task->name ? task->name : "?");
	fputs("  [", t->out);
	text_escaped(t->out, task->backend ? task->backend : "?");
	fprintf(t->out, ", exit %d", task->exit_code);
	if (task->node) {
		fputs(", ", t->out);
		text_escaped(t->out, task->node);
	}
	fputc(']', t->out);
	if (via->path) {
		fputs("  as ", t->out);
		text_escaped(t->out, via->path);
	}
	if (via->weak)
		text_weak(t->out, via->write);
	if (!first_visit(t, &t->task_done[i]))
		return;
	/* Up: the artifacts it read; down: the artifacts it wrote. */
	for (size_t e = 0; e < t->d->nedges; e++) {
		const weft_dag_edge *edge = &t->d->edges[e];
		const char *tid = edge->write ? edge->from : edge->to;
		if (edge->write != t->down || strcmp(tid, task->id))
			continue;
		size_t a = artifact_index(t->d,
					  edge->write ? edge->to : edge->from);
		if (a < t->d->nartifacts && !hidden(t, a))
			print_artifact(t, a, depth + 1);
		else if (a < t->d->nartifacts && !t->art_done[a]) {
			t->art_done[a] = true;
			t->nhidden++;
		}
	}
}

static void print_artifact(struct tree *t, size_t a, int depth)
{
	const weft_dag_artifact *art = &t->d->artifacts[a];
	indent(t->out, depth);
	text_escaped(t->out, art->path);
	if (art->has_hash) {
		text_hash(t->out, art->hash, 24);
	} else {
		fputs(art->kind == WEFT_VERSION_UNKNOWN ? "  (version not known)"
							: "  (no hash)",
		      t->out);
	}
	if (!first_visit(t, &t->art_done[a]))
		return;
	/* Up: the tasks that wrote it; down: the tasks that read it. */
	for (size_t e = 0; e < t->d->nedges; e++) {
		const weft_dag_edge *edge = &t->d->edges[e];
		const char *aid = edge->write ? edge->to : edge->from;
		if (edge->write == t->down || strcmp(aid, art->id))
			continue;
		size_t i = task_index(t->d, edge->write ? edge->from : edge->to);
		if (i < t->d->ntasks)
			print_task(t, i, edge, depth + 1);
	}
}

static int print_tree(FILE *out, const weft_dag *d, bool down, bool all)
{
	struct tree t = {.out = out, .d = d, .down = down, .all = all};
	t.task_done = calloc(d->ntasks + 1, sizeof(bool));
	t.art_done = calloc(d->nartifacts + 1, sizeof(bool));
	int err = t.task_done && t.art_done ? WEFT_OK : WEFT_ENOMEM;
	if (!err) {
		print_artifact(&t, 0, 0);
		if (d->ntasks == 0)
			fprintf(out, "  (%s)\n",
				down ? "no recorded task read it"
				     : "no recorded task wrote it");
		if (t.nhidden)
			fprintf(out,
				"(%zu system input%s not shown; --all shows "
				"them)\n",
				t.nhidden, t.nhidden == 1 ? "" : "s");
	}
	free(t.task_done);
	free(t.art_done);
	return err;
}

/* The DAG's JSON with the path, direction and root in front: json_dag
 * written to memory, its opening replaced. */
static int print_json(FILE *out, const weft_dag *d, const char *path,
		      bool down)
{
	static const char head[] = "{\"weft\": 1, ";
	char *buf = NULL;
	size_t len = 0;
	FILE *mem = open_memstream(&buf, &len);
	if (!mem)
		return WEFT_ENOMEM;
	json_dag(mem, d);
	if (fclose(mem) || len < sizeof(head) - 1 ||
	    memcmp(buf, head, sizeof(head) - 1)) {
		free(buf);
		return WEFT_ENOMEM;
	}
	fputs(head, out);
	fputs("\"path\": ", out);
	weft_json_string(out, path);
	fprintf(out, ", \"direction\": \"%s\", \"root\": ",
		down ? "down" : "up");
	weft_json_string(out, d->artifacts[0].id);
	fprintf(out, ",\n %s", buf + sizeof(head) - 1);
	free(buf);
	return WEFT_OK;
}

/* path's lineage: within whole, the processes' DAG, when it is given,
 * else from the store. */
static int lineage_of(weft_store *s, const weft_dag *whole, const char *path,
		      const char *job, bool down, weft_dag *d)
{
	if (whole)
		return weft_dag_lineage(whole, path, down, d);
	return weft_store_lineage(s, path, job, down, d);
}

static const cli_cmd lineage_cmd = {
	.name = "lineage",
	.help = lineage_help,
	.max_args = 1,
	.missing = "missing PATH",
};

int cmd_lineage(int argc, char **argv)
{
	cli_store_opts so = {0};
	bool down = false, json = false, all = false, processes = false;
	const cli_opt opts[] = {
		{"up", 'u', CLI_UNSET, &down},
		{"down", 'd', CLI_FLAG, &down},
		{"json", 'J', CLI_FLAG, &json},
		{"all", 'a', CLI_FLAG, &all},
		{"processes", 'p', CLI_FLAG, &processes},
		CLI_STORE_OPTS(&so),
		{NULL},
	};
	int c = cli_parse(&lineage_cmd, opts, argc, argv);
	if (c != CLI_GO)
		return c;
	char cwd[PATH_MAX], path[WEFT_MAX_PATH_BYTES + 1];
	if (!getcwd(cwd, sizeof(cwd))) {
		cli_error("cannot get the working directory: %m");
		return 1;
	}
	/* Paths come from outside: echoed escaped, never raw. */
	char shown[4 * WEFT_MAX_PATH_BYTES + 16];
	if (weft_path_normalize(cwd, argv[optind], path, sizeof(path))) {
		text_escape(shown, sizeof(shown), argv[optind]);
		cli_error("path too long: '%s'", shown);
		return 1;
	}
	weft_store *store = cli_store_open(&so);
	if (!store)
		return 1;
	weft_dag d, whole = {0};
	int err = processes ? weft_store_dag_processes(store, so.id, &whole)
			    : WEFT_OK;
	if (!err)
		err = lineage_of(store, processes ? &whole : NULL, path, so.id,
				 down, &d);
	/* A name no task used may lead, through symlinks, to one they did:
	 * records name the file a link reaches. */
	char *real = err == WEFT_ENOTFOUND ? realpath(path, NULL) : NULL;
	if (real && strcmp(real, path) != 0 &&
	    strlen(real) <= WEFT_MAX_PATH_BYTES) {
		snprintf(path, sizeof(path), "%s", real);
		err = lineage_of(store, processes ? &whole : NULL, path, so.id,
				 down, &d);
	}
	free(real);
	weft_dag_release(&whole);
	text_escape(shown, sizeof(shown), path);
	if (err == WEFT_ENOTFOUND)
		cli_error("no recorded run read or wrote '%s'%s%s", shown,
			  so.id ? " in job " : "", so.id ? so.id : "");
	else if (err)
		cli_error("cannot read the lineage of '%s': %s", shown,
			  err == WEFT_EDB ? weft_store_errmsg(store)
					  : "out of memory");
	if (!err) {
		if (json)
			err = print_json(stdout, &d, path, down);
		else
			err = print_tree(stdout, &d, down, all);
		weft_dag_release(&d);
	}
	weft_store_close(store);
	return err ? 1 : 0;
}
