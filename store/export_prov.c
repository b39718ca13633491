/*
 * export_prov.c - the lineage as W3C PROV-JSON (the W3C member submission
 * "PROV-JSON"), for tools that speak PROV (python's prov package, ProvToolbox,
 * ProvStore).
 *
 * weft's model maps onto PROV almost one to one (docs/interop.md): a file
 * version is an entity, a task an activity, the user who ran it an agent;
 * a read is `used`, a write `wasGeneratedBy`, the version an append or an
 * in-place write changed is what the new one `wasDerivedFrom` (a
 * prov:Revision), a task that read what another wrote `wasInformedBy` it,
 * and a task its parent launched `wasStartedBy` it. What weft cannot
 * vouch for stays, marked weft:weak true, as in `weft dag`: a reader of
 * PROV must be able to tell a weak edge from a strong one, and a dropped
 * edge would hide that the file was used at all.
 *
 * Identifiers are qualified names in the weft namespace (WEFT_EXPORT_NS)
 * derived from the DAG's own ids, so two exports of the same records are
 * the same document. Relations are blank-node ids (_:u1...) numbered in
 * the DAG's stable order.
 */
#include <stdlib.h>
#include <string.h>

#include "export.h"

/* The qualified name of a DAG node: weft:version/<hex> for an artifact
 * ("v:<hex>"), weft:task/<run id> for a task, weft:user/<name>. Bytes a
 * PROV-N local name cannot hold are %XX. */
static void qname(FILE *out, const char *kind, const char *id)
{
	fprintf(out, "\"weft:%s/", kind);
	if (strncmp(id, "v:", 2) == 0)
		id += 2;
	export_iri_escaped(out, id, NULL);
	fputc('"', out);
}

static void art_qname(FILE *out, const struct export_graph *g, size_t a)
{
	qname(out, "version", g->d->artifacts[a].id);
}

static void task_qname(FILE *out, const struct export_graph *g, size_t t)
{
	qname(out, "task", g->d->tasks[t].id);
}

/* Separators between the members of one JSON object. */
struct section {
	FILE *out;
	size_t n;         /* members written */
	size_t relations; /* blank-node ids handed out, over the document */
	const bool *first_user; /* per task: the first of its user's */
};

static void member(struct section *s, const char *key)
{
	fputs(s->n++ ? ",\n  " : "\n  ", s->out);
	weft_json_string(s->out, key);
	fputs(": ", s->out);
}

static void attr_str(FILE *out, const char *key, const char *v)
{
	export_str_member(out, ", ", key, v);
}

static void attr_time(FILE *out, const char *key, int64_t ns)
{
	if (ns <= 0)
		return;
	char t[WEFT_RFC3339_BYTES];
	weft_rfc3339(ns, t);
	fprintf(out, ", \"%s\": \"%s\"", key, t);
}

/* A relation's opening: its blank-node id. */
static void relation(struct section *s, const char *prefix)
{
	char id[40];
	snprintf(id, sizeof(id), "_:%s%zu", prefix, ++s->relations);
	member(s, id);
	fputc('{', s->out);
}

/* An entity, activity or agent's opening, up to its prov:type. */
static void element(struct section *s, const char *kind, const char *id,
		    const char *type)
{
	fputs(s->n++ ? ",\n  " : "\n  ", s->out);
	qname(s->out, kind, id);
	fprintf(s->out,
		": {\"prov:type\": {\"$\": \"%s\", "
		"\"type\": \"prov:QUALIFIED_NAME\"}",
		type);
}

/* Same bytes at another location is not a dependency (DESIGN.md): no
 * relation, a weak note on the read version naming the written one. */
static void same_content(FILE *out, const weft_dag *d, const char *id)
{
	size_t n = 0;
	for (size_t i = 0; i < d->nsame; i++) {
		if (strcmp(d->same[i].artifact, id) != 0)
			continue;
		fputs(n++ ? ", " : ", \"weft:sameContentAs\": [", out);
		fputs("{\"$\": ", out);
		qname(out, "version", d->same[i].same_as);
		fputs(", \"type\": \"prov:QUALIFIED_NAME\"}", out);
	}
	if (n)
		fputc(']', out);
}

static void entities(struct section *s, const struct export_graph *g)
{
	const weft_dag *d = g->d;
	static const char *const kinds[] = {"written", "source", "unknown"};
	for (size_t a = 0; a < d->nartifacts; a++) {
		if (!g->art_in[a])
			continue;
		const weft_dag_artifact *art = &d->artifacts[a];
		FILE *out = s->out;
		element(s, "version", art->id, "weft:FileVersion");
		attr_str(out, "prov:label", art->path);
		attr_str(out, "weft:path", art->path);
		attr_str(out, "weft:id", art->id);
		char text[WEFT_HASH_TEXT_BYTES];
		attr_str(out, "weft:hash", export_hash_text(art, text));
		if (art->has_size)
			fprintf(out, ", \"weft:size\": %lld",
				(long long)art->size);
		attr_str(out, "weft:filesystem", art->loc_fs);
		attr_str(out, "weft:locationPath", art->loc_path);
		fprintf(out, ", \"weft:version\": \"%s\"", kinds[art->kind]);
		same_content(out, d, art->id);
		fputc('}', out);
	}
}

static void activities(struct section *s, const struct export_graph *g)
{
	const weft_dag *d = g->d;
	for (size_t t = 0; t < d->ntasks; t++) {
		if (!g->task_in[t])
			continue;
		const weft_dag_task *task = &d->tasks[t];
		const struct export_task *f = &g->facts[t];
		FILE *out = s->out;
		element(s, "task", task->id, "weft:Task");
		attr_time(out, "prov:startTime", f->started_ns);
		attr_time(out, "prov:endTime", f->ended_ns);
		attr_str(out, "prov:label", task->name);
		export_task_members(out, ", ", g, t);
		fputc('}', out);
	}
}

static void agents(struct section *s, const struct export_graph *g)
{
	for (size_t t = 0; t < g->d->ntasks; t++) {
		if (!s->first_user[t])
			continue;
		element(s, "user", g->facts[t].user, "prov:Person");
		fputs(", \"prov:label\": ", s->out);
		weft_json_string(s->out, g->facts[t].user);
		fputc('}', s->out);
	}
}

/* used (write false) or wasGeneratedBy (write true). */
static void io_relations(struct section *s, const struct export_graph *g,
			 bool write)
{
	const weft_dag *d = g->d;
	for (size_t i = 0; i < d->nedges; i++) {
		const weft_dag_edge *e = &d->edges[i];
		if (e->write != write || !export_edge_in(g, i))
			continue;
		relation(s, write ? "g" : "u");
		FILE *out = s->out;
		fputs(write ? "\"prov:entity\": " : "\"prov:activity\": ", out);
		if (write)
			art_qname(out, g, g->edge_art[i]);
		else
			task_qname(out, g, g->edge_task[i]);
		fputs(write ? ", \"prov:activity\": " : ", \"prov:entity\": ",
		      out);
		if (write)
			task_qname(out, g, g->edge_task[i]);
		else
			art_qname(out, g, g->edge_art[i]);
		attr_str(out, "weft:usedPath", e->path);
		if (e->update)
			fputs(", \"weft:update\": true", out);
		fprintf(out, ", \"weft:weak\": %s}",
			e->weak ? "true" : "false");
	}
}

static void derivations(struct section *s, const struct export_graph *g)
{
	const weft_dag *d = g->d;
	/* The writer of each updated version: its activity. */
	for (size_t i = 0; i < d->nedges; i++) {
		size_t b = g->edge_art[i];
		if (!d->edges[i].write || !export_edge_in(g, i) ||
		    g->updated[b] == SIZE_MAX || !g->art_in[g->updated[b]])
			continue;
		relation(s, "d");
		fputs("\"prov:generatedEntity\": ", s->out);
		art_qname(s->out, g, b);
		fputs(", \"prov:usedEntity\": ", s->out);
		art_qname(s->out, g, g->updated[b]);
		fputs(", \"prov:activity\": ", s->out);
		task_qname(s->out, g, g->edge_task[i]);
		fputs(", \"prov:type\": {\"$\": \"prov:Revision\", "
		      "\"type\": \"prov:QUALIFIED_NAME\"}}",
		      s->out);
	}
}

static void informed(struct section *s, const struct export_graph *g)
{
	for (size_t i = 0; i < g->ninformed; i++) {
		const struct export_informed *r = &g->informed[i];
		if (!g->task_in[r->informed] || !g->task_in[r->informant])
			continue;
		relation(s, "i");
		fputs("\"prov:informed\": ", s->out);
		task_qname(s->out, g, r->informed);
		fputs(", \"prov:informant\": ", s->out);
		task_qname(s->out, g, r->informant);
		fprintf(s->out, ", \"weft:weak\": %s}",
			r->weak ? "true" : "false");
	}
}

/* A task's parent (the task that launched it: a Ray worker for its
 * tasks) started it. */
static void started(struct section *s, const struct export_graph *g)
{
	const weft_dag *d = g->d;
	for (size_t t = 0; t < d->ntasks; t++) {
		size_t p = g->parent[t];
		if (!g->task_in[t] || p == SIZE_MAX || !g->task_in[p])
			continue;
		relation(s, "s");
		fputs("\"prov:activity\": ", s->out);
		task_qname(s->out, g, t);
		fputs(", \"prov:starter\": ", s->out);
		task_qname(s->out, g, p);
		fputc('}', s->out);
	}
}

static void associations(struct section *s, const struct export_graph *g)
{
	for (size_t t = 0; t < g->d->ntasks; t++) {
		if (!g->task_in[t])
			continue;
		relation(s, "a");
		fputs("\"prov:activity\": ", s->out);
		task_qname(s->out, g, t);
		fputs(", \"prov:agent\": ", s->out);
		qname(s->out, "user", g->facts[t].user);
		fputc('}', s->out);
	}
}

typedef void (*section_fn)(struct section *s, const struct export_graph *g);

int weft_export_prov(weft_store *st, const weft_export_scope *sc, FILE *out,
		     char err[WEFT_EXPORT_ERR_BYTES])
{
	struct export_graph g;
	int rc = export_graph_load(st, sc, &g, err);
	bool *first_user = rc ? NULL : export_first_of(&g, export_user_of);
	if (!rc && !first_user) {
		snprintf(err, WEFT_EXPORT_ERR_BYTES, "out of memory");
		rc = WEFT_ENOMEM;
	}
	if (rc) {
		export_graph_free(&g);
		return rc;
	}
	fputs("{\"prefix\": {\"weft\": \"" WEFT_EXPORT_NS "\"}", out);
	static const struct {
		const char *name;
		section_fn fn;
	} sections[] = {
		{"entity", entities},
		{"activity", activities},
		{"agent", agents},
		{"used", NULL},
		{"wasGeneratedBy", NULL},
		{"wasDerivedFrom", derivations},
		{"wasInformedBy", informed},
		{"wasStartedBy", started},
		{"wasAssociatedWith", associations},
	};
	struct section s = {out, 0, 0, first_user};
	for (size_t i = 0; i < sizeof(sections) / sizeof(sections[0]); i++) {
		fprintf(out, ",\n \"%s\": {", sections[i].name);
		s.n = 0;
		if (sections[i].fn)
			sections[i].fn(&s, &g);
		else
			io_relations(&s, &g, strcmp(sections[i].name, "used"));
		fputs(s.n ? "\n }" : "}", out);
	}
	fputs("}\n", out);
	free(first_user);
	export_graph_free(&g);
	return export_check_written(out, "the PROV document", err);
}
