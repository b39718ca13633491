/*
 * lineage.c - the lineage of one file: the part of the DAG that leads to
 * its latest version (up: the task that wrote it, the versions that task
 * read, who wrote those...) or that it fed (down: the tasks that read it,
 * the versions they wrote...).
 *
 * Which version a read was of depends on every record at its location and
 * their times (versions.c), so the lineage is walked over the DAG of the
 * job (or of the store) rather than record by record: the answer is the
 * DAG's own, by construction. Visited sets keep cycles finite.
 */
#include <stdlib.h>
#include <string.h>

#include "store_internal.h"

/* Edges grouped by artifact and by task (counting sort by index). */
struct adjacency {
	size_t *by_art, *art_start; /* edge ids, and [start, start+1) */
	size_t *by_task, *task_start;
};

static int group(const struct dag_link *l, size_t n, size_t nkeys, bool by_task,
		 size_t **ids, size_t **start)
{
	*start = calloc(nkeys + 1, sizeof(**start));
	*ids = malloc((n ? n : 1) * sizeof(**ids));
	if (!*start || !*ids)
		return WEFT_ENOMEM;
	for (size_t i = 0; i < n; i++)
		(*start)[(by_task ? l[i].task : l[i].artifact) + 1]++;
	for (size_t k = 0; k < nkeys; k++)
		(*start)[k + 1] += (*start)[k];
	size_t *fill = malloc((nkeys + 1) * sizeof(*fill));
	if (!fill)
		return WEFT_ENOMEM;
	memcpy(fill, *start, (nkeys + 1) * sizeof(*fill));
	for (size_t i = 0; i < n; i++)
		(*ids)[fill[by_task ? l[i].task : l[i].artifact]++] = i;
	free(fill);
	return WEFT_OK;
}

/* The file's latest version: the last version written at a path it is
 * known by (its own, or the name a task used), else the last one read. */
static size_t find_root(const weft_dag *d, const struct dag_link *l,
			const char *path)
{
	size_t written = SIZE_MAX, read = SIZE_MAX;
	for (size_t i = 0; i < d->nedges; i++) {
		const weft_dag_edge *e = &d->edges[i];
		const char *p =
			e->path ? e->path : d->artifacts[l[i].artifact].path;
		if (strcmp(p, path) != 0 &&
		    strcmp(d->artifacts[l[i].artifact].path, path) != 0)
			continue;
		if (e->write)
			written = l[i].artifact;
		else
			read = l[i].artifact;
	}
	return written != SIZE_MAX ? written : read;
}

/* What the walk found, in the order found. */
struct found {
	size_t *arts, *tasks, *edges;
	size_t narts, ntasks, nedges;
	bool *art_seen, *task_seen, *edge_seen;
};

/* Move the parts of full that were found into out, in the order found
 * (the root first). */
static int take(weft_dag *full, const struct found *f, weft_dag *out)
{
	out->tasks = calloc(f->ntasks + 1, sizeof(*out->tasks));
	out->artifacts = calloc(f->narts + 1, sizeof(*out->artifacts));
	out->edges = calloc(f->nedges + 1, sizeof(*out->edges));
	if (!out->tasks || !out->artifacts || !out->edges)
		return WEFT_ENOMEM;
	/* Ownership moves: what is taken is cleared in full. */
	for (size_t i = 0; i < f->narts; i++) {
		out->artifacts[out->nartifacts++] = full->artifacts[f->arts[i]];
		memset(&full->artifacts[f->arts[i]], 0,
		       sizeof(*out->artifacts));
	}
	for (size_t i = 0; i < f->ntasks; i++) {
		out->tasks[out->ntasks++] = full->tasks[f->tasks[i]];
		memset(&full->tasks[f->tasks[i]], 0, sizeof(*out->tasks));
	}
	for (size_t i = 0; i < f->nedges; i++) {
		out->edges[out->nedges++] = full->edges[f->edges[i]];
		memset(&full->edges[f->edges[i]], 0, sizeof(*out->edges));
	}
	return WEFT_OK;
}

/* Breadth first from the root, artifacts before tasks: an artifact's
 * writers (up) or readers (down), a task's reads (up) or writes (down). */
static void walk(const weft_dag *d, const struct dag_link *l,
		 const struct adjacency *x, size_t root, bool down,
		 struct found *f)
{
	f->art_seen[root] = true;
	f->arts[f->narts++] = root;
	size_t ai = 0, ti = 0;
	while (ai < f->narts || ti < f->ntasks) {
		bool is_task = ai == f->narts;
		size_t k = is_task ? f->tasks[ti++] : f->arts[ai++];
		const size_t *ids = is_task ? x->by_task : x->by_art;
		const size_t *start = is_task ? x->task_start : x->art_start;
		for (size_t j = start[k]; j < start[k + 1]; j++) {
			size_t e = ids[j];
			bool write = d->edges[e].write;
			if (is_task ? write != down : write == down)
				continue;
			if (!f->edge_seen[e]) {
				f->edge_seen[e] = true;
				f->edges[f->nedges++] = e;
			}
			if (is_task && !f->art_seen[l[e].artifact]) {
				f->art_seen[l[e].artifact] = true;
				f->arts[f->narts++] = l[e].artifact;
			} else if (!is_task && !f->task_seen[l[e].task]) {
				f->task_seen[l[e].task] = true;
				f->tasks[f->ntasks++] = l[e].task;
			}
		}
	}
}

int weft_store_lineage(weft_store *s, const char *path, const char *job,
		       bool down, weft_dag *out)
{
	memset(out, 0, sizeof(*out));
	weft_dag full;
	struct dag_link *l = NULL;
	int err = store_dag_links(s, job, &full, &l);
	if (err)
		return err;
	struct adjacency x = {0};
	struct found f = {0};
	f.arts = malloc((full.nartifacts + 1) * sizeof(size_t));
	f.tasks = malloc((full.ntasks + 1) * sizeof(size_t));
	f.edges = malloc((full.nedges + 1) * sizeof(size_t));
	f.art_seen = calloc(full.nartifacts + 1, sizeof(bool));
	f.task_seen = calloc(full.ntasks + 1, sizeof(bool));
	f.edge_seen = calloc(full.nedges + 1, sizeof(bool));
	if (!f.arts || !f.tasks || !f.edges || !f.art_seen || !f.task_seen ||
	    !f.edge_seen)
		err = WEFT_ENOMEM;
	if (!err)
		err = group(l, full.nedges, full.nartifacts, false, &x.by_art,
			    &x.art_start);
	if (!err)
		err = group(l, full.nedges, full.ntasks, true, &x.by_task,
			    &x.task_start);
	size_t root = err ? SIZE_MAX : find_root(&full, l, path);
	if (!err && root == SIZE_MAX)
		err = WEFT_ENOTFOUND;
	if (!err)
		walk(&full, l, &x, root, down, &f);
	if (!err && job && !(out->job = strdup(job)))
		err = WEFT_ENOMEM;
	if (!err)
		err = take(&full, &f, out);
	if (err)
		weft_dag_release(out);
	weft_dag_release(&full);
	free(l);
	free(f.arts);
	free(f.tasks);
	free(f.edges);
	free(f.art_seen);
	free(f.task_seen);
	free(f.edge_seen);
	free(x.by_art);
	free(x.art_start);
	free(x.by_task);
	free(x.task_start);
	return err;
}
