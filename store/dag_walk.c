/*
 * dag_walk.c - the lineage of one file within a DAG already built, walked
 * in memory: what `weft lineage --processes` shows (the process-level DAG
 * has no per-location walk of its own, see lineage.c).
 */
#include <stdlib.h>
#include <string.h>

#include "store_internal.h"

/* Edges borrow their ids from the DAG's tasks and artifacts: an id
 * pointer names one node. An open-addressing map from pointer to index. */
struct ptrmap {
	const char **keys;
	size_t *vals;
	size_t cap;
};

static size_t ptr_slot(const void *p, size_t cap)
{
	uint64_t x = (uint64_t)(uintptr_t)p;
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	return (size_t)x & (cap - 1);
}

static int ptrmap_init(struct ptrmap *m, size_t n)
{
	m->cap = 16;
	while (m->cap < 2 * n + 2)
		m->cap *= 2;
	m->keys = calloc(m->cap, sizeof(*m->keys));
	m->vals = calloc(m->cap, sizeof(*m->vals));
	return m->keys && m->vals ? WEFT_OK : WEFT_ENOMEM;
}

static void ptrmap_put(struct ptrmap *m, const char *k, size_t v)
{
	size_t i = ptr_slot(k, m->cap);
	while (m->keys[i] && m->keys[i] != k)
		i = (i + 1) & (m->cap - 1);
	m->keys[i] = k;
	m->vals[i] = v;
}

static size_t ptrmap_get(const struct ptrmap *m, const char *k)
{
	for (size_t i = ptr_slot(k, m->cap); m->keys[i];
	     i = (i + 1) & (m->cap - 1))
		if (m->keys[i] == k)
			return m->vals[i];
	return SIZE_MAX;
}

static int task_copy(weft_dag_task *o, const weft_dag_task *t)
{
	*o = *t;
	int err = store_dup_members(o, t, store_task_strings);
	o->argv = t->argc ? calloc(t->argc, sizeof(*o->argv)) : NULL;
	o->argc = o->argv ? t->argc : 0;
	if (t->argc && !o->argv)
		err = WEFT_ENOMEM;
	for (uint32_t i = 0; i < o->argc; i++)
		if (t->argv[i] && !(o->argv[i] = strdup(t->argv[i])))
			err = WEFT_ENOMEM;
	return err;
}

static int artifact_copy(weft_dag_artifact *o, const weft_dag_artifact *a)
{
	*o = *a;
	return store_dup_members(o, a, store_artifact_strings);
}

/* The file's latest version: its last written one (artifacts are in run
 * order), else the last one read. */
static size_t root_of(const weft_dag *d, const char *path)
{
	size_t any = SIZE_MAX, written = SIZE_MAX;
	for (size_t i = 0; i < d->nartifacts; i++) {
		const weft_dag_artifact *a = &d->artifacts[i];
		if (!a->path || strcmp(a->path, path) != 0)
			continue;
		any = i;
		if (a->kind == WEFT_VERSION_WRITTEN)
			written = i;
	}
	return written != SIZE_MAX ? written : any;
}

int weft_dag_lineage(const weft_dag *d, const char *path, bool down,
		     weft_dag *out)
{
	memset(out, 0, sizeof(*out));
	size_t root = root_of(d, path);
	if (root == SIZE_MAX)
		return WEFT_ENOTFOUND;
	struct ptrmap tasks = {0}, arts = {0};
	size_t *first = NULL, *byn = NULL;
	size_t *eart = malloc((d->nedges + 1) * sizeof(*eart));
	size_t *etask = malloc((d->nedges + 1) * sizeof(*etask));
	bool *tseen = calloc(d->ntasks + 1, 1), *aseen = calloc(d->nartifacts + 1, 1);
	bool *eseen = calloc(d->nedges + 1, 1);
	size_t *queue = malloc((d->ntasks + d->nartifacts + 1) * sizeof(*queue));
	size_t *tnew = malloc((d->ntasks + 1) * sizeof(*tnew));
	size_t *anew = malloc((d->nartifacts + 1) * sizeof(*anew));
	int err = eart && etask && tseen && aseen && eseen && queue && tnew &&
				  anew
			  ? WEFT_OK
			  : WEFT_ENOMEM;
	if (!err)
		err = ptrmap_init(&tasks, d->ntasks);
	if (!err)
		err = ptrmap_init(&arts, d->nartifacts);
	if (err)
		goto out;
	for (size_t i = 0; i < d->ntasks; i++)
		ptrmap_put(&tasks, d->tasks[i].id, i);
	for (size_t i = 0; i < d->nartifacts; i++)
		ptrmap_put(&arts, d->artifacts[i].id, i);
	for (size_t i = 0; i < d->nedges; i++) {
		const weft_dag_edge *e = &d->edges[i];
		etask[i] = ptrmap_get(&tasks, e->write ? e->from : e->to);
		eart[i] = ptrmap_get(&arts, e->write ? e->to : e->from);
	}
	/* Each node's edges, grouped (counting sort): tasks first, then
	 * artifacts, in one index. */
	size_t nn = d->ntasks + d->nartifacts;
	first = calloc(nn + 2, sizeof(*first));
	byn = malloc((2 * d->nedges + 1) * sizeof(*byn));
	if (!first || !byn) {
		err = WEFT_ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < d->nedges; i++)
		if (etask[i] != SIZE_MAX && eart[i] != SIZE_MAX) {
			first[etask[i] + 2]++;
			first[d->ntasks + eart[i] + 2]++;
		}
	for (size_t k = 2; k < nn + 2; k++)
		first[k] += first[k - 1];
	for (size_t i = 0; i < d->nedges; i++)
		if (etask[i] != SIZE_MAX && eart[i] != SIZE_MAX) {
			byn[first[etask[i] + 1]++] = i;
			byn[first[d->ntasks + eart[i] + 1]++] = i;
		}
	/* Breadth first (tasks marked by the high bit in the queue). Up: an
	 * artifact's writers, then what they read; down: its readers, then
	 * what they wrote. */
	const size_t TASK = (size_t)1 << (sizeof(size_t) * 8 - 1);
	size_t head = 0, tail = 0;
	queue[tail++] = root;
	aseen[root] = true;
	while (head < tail) {
		size_t q = queue[head++];
		bool is_task = q & TASK;
		size_t n = q & ~TASK;
		size_t node = is_task ? n : d->ntasks + n;
		for (size_t k = first[node]; k < first[node + 1]; k++) {
			size_t i = byn[k];
			const weft_dag_edge *e = &d->edges[i];
			/* Up: artifact <- write <- task <- read <- artifact. */
			bool follow = is_task ? etask[i] == n && e->write == down
					      : eart[i] == n && e->write != down;
			if (!follow)
				continue;
			eseen[i] = true;
			if (is_task && !aseen[eart[i]]) {
				aseen[eart[i]] = true;
				queue[tail++] = eart[i];
			} else if (!is_task && !tseen[etask[i]]) {
				tseen[etask[i]] = true;
				queue[tail++] = etask[i] | TASK;
			}
		}
	}
	/* Copy what was reached: the root first, then in the DAG's order. */
	size_t nt = 0, na = 0, ne = 0;
	for (size_t i = 0; i < d->ntasks; i++)
		nt += tseen[i];
	for (size_t i = 0; i < d->nartifacts; i++)
		na += aseen[i];
	for (size_t i = 0; i < d->nedges; i++)
		ne += eseen[i];
	out->tasks = calloc(nt + 1, sizeof(*out->tasks));
	out->artifacts = calloc(na + 1, sizeof(*out->artifacts));
	out->edges = calloc(ne + 1, sizeof(*out->edges));
	if (!out->tasks || !out->artifacts || !out->edges ||
	    (d->job && !(out->job = strdup(d->job)))) {
		err = WEFT_ENOMEM;
		goto out;
	}
	for (size_t i = 0; !err && i < d->ntasks; i++)
		if (tseen[i]) {
			tnew[i] = out->ntasks;
			err = task_copy(&out->tasks[out->ntasks++],
					&d->tasks[i]);
		}
	if (!err) {
		anew[root] = 0;
		err = artifact_copy(&out->artifacts[out->nartifacts++],
				    &d->artifacts[root]);
	}
	for (size_t i = 0; !err && i < d->nartifacts; i++)
		if (aseen[i] && i != root) {
			anew[i] = out->nartifacts;
			err = artifact_copy(&out->artifacts[out->nartifacts++],
					    &d->artifacts[i]);
		}
	for (size_t i = 0; !err && i < d->nedges; i++) {
		if (!eseen[i])
			continue;
		const weft_dag_edge *e = &d->edges[i];
		weft_dag_edge *o = &out->edges[out->nedges++];
		*o = *e;
		o->path = NULL;
		const char *tid = out->tasks[tnew[etask[i]]].id;
		const char *aid = out->artifacts[anew[eart[i]]].id;
		o->from = e->write ? (char *)tid : (char *)aid;
		o->to = e->write ? (char *)aid : (char *)tid;
		if (e->path && !(o->path = strdup(e->path)))
			err = WEFT_ENOMEM;
	}
out:
	free(first);
	free(byn);
	free(tasks.keys);
	free(tasks.vals);
	free(arts.keys);
	free(arts.vals);
	free(eart);
	free(etask);
	free(tseen);
	free(aseen);
	free(eseen);
	free(queue);
	free(tnew);
	free(anew);
	if (err)
		weft_dag_release(out);
	return err;
}
