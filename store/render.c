/*
 * render.c - the picture of the lineage DAG: laid out by Graphviz's own
 * library (libgvc, loaded when a picture is asked for: export_libs.c),
 * as SVG or as one HTML page.
 *
 * The library and not the `dot` program: weft never runs a program the
 * user did not ask for (a tracer's CLI that execs helpers is one more
 * thing to trace, find on PATH and trust), and the layout's errors come
 * back as return codes instead of a child's exit status.
 *
 * The HTML page is self-contained, for a laptop with no network and for
 * a page attached to a ticket: the SVG inline, the styles and the script
 * in the page, the details of every node as JSON in a script element
 * (every '<' written as \u003c, so no path can close it). A click on a
 * file or a task highlights its lineage: everything upstream (what it
 * was made from: classes weft-up), downstream (what it fed: weft-down),
 * itself (weft-selected), and dims the rest (weft-dim); a panel shows
 * its details. #select=ID in the URL (a DAG id: a run id or "v:...")
 * selects ID when the page loads, so a link can point at one file's
 * lineage and a headless browser can check the highlighting.
 */
#include <stdlib.h>
#include <string.h>

#include "export.h"
#include "export_gvc.h"

/* Labels longer than this (bytes) show their end: a path's file name and
 * nearest directories say more than its root. */
#define LABEL_MAX 48

#ifdef WEFT_HAVE_GVC
/* s as a Graphviz label: backslashes doubled (Graphviz reads \n, \l, \N
 * in labels), control characters and invalid UTF-8 as visible \xHH, cut
 * to its last LABEL_MAX bytes (at a character's start) behind "...". */
static char *label_text(const char *s)
{
	size_t n = strlen(s);
	const char *p = s;
	if (n > LABEL_MAX) {
		p = s + n - LABEL_MAX;
		while ((*(const unsigned char *)p & 0xc0) == 0x80)
			p++;
	}
	char *buf = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&buf, &len);
	if (!m)
		return NULL;
	if (p != s)
		fputs("...", m);
	while (*p) {
		const unsigned char *u = (const unsigned char *)p;
		size_t k = weft_utf8_len(u, strlen(p));
		if (*u == '\\') {
			fputs("\\\\", m);
		} else if (k == 0 || *u < 0x20 || *u == 0x7f) {
			fprintf(m, "\\\\x%02x", *u);
			k = 1;
		} else {
			fwrite(p, 1, k, m);
		}
		p += k ? k : 1;
	}
	if (fclose(m)) {
		free(buf);
		return NULL;
	}
	return buf;
}
#endif

/* The element id of task t ("t<index>") or artifact a ("a<index>"). */
static void node_key(char out[32], char kind, size_t i)
{
	snprintf(out, 32, "%c%zu", kind, i);
}

/* ---- The details each node shows, as JSON for the page's script ---- */

static void data_task(FILE *out, const struct export_graph *g, size_t t)
{
	const weft_dag_task *task = &g->d->tasks[t];
	const struct export_task *f = &g->facts[t];
	char key[32], when[WEFT_RFC3339_BYTES];
	node_key(key, 't', t);
	fprintf(out, "\"%s\": {\"kind\": \"task\"", key);
	export_str_member(out, ", ", "id", task->id);
	export_str_member(out, ", ", "name", task->name);
	export_str_member(out, ", ", "command", f->command);
	export_str_member(out, ", ", "node", task->node);
	export_str_member(out, ", ", "backend", task->backend);
	fprintf(out, ", \"exit\": %d", task->exit_code);
	export_str_member(out, ", ", "user", f->user);
	export_str_member(out, ", ", "job", f->job);
	export_str_member(out, ", ", "cwd", f->cwd);
	weft_rfc3339(f->started_ns, when);
	export_str_member(out, ", ", "started", when);
	weft_rfc3339(f->ended_ns, when);
	export_str_member(out, ", ", "ended", when);
	fputc('}', out);
}

static void data_artifact(FILE *out, const struct export_graph *g, size_t a)
{
	const weft_dag_artifact *art = &g->d->artifacts[a];
	static const char *const kinds[] = {"written", "source", "unknown"};
	char key[32], text[WEFT_HASH_TEXT_BYTES];
	node_key(key, 'a', a);
	fprintf(out, "\"%s\": {\"kind\": \"file\"", key);
	export_str_member(out, ", ", "id", art->id);
	export_str_member(out, ", ", "path", art->path);
	export_str_member(out, ", ", "hash", export_hash_text(art, text));
	if (art->has_size)
		fprintf(out, ", \"size\": %lld", (long long)art->size);
	export_str_member(out, ", ", "version", kinds[art->kind]);
	export_str_member(out, ", ", "filesystem", art->loc_fs);
	export_str_member(out, ", ", "location", art->loc_path);
	fputc('}', out);
}

/* {"nodes": {key: details}, "edges": [[from key, to key, weak]]}: the
 * nodes and edges drawn. Same-content links are no lineage: left out. */
static void page_data(FILE *out, const struct export_graph *g)
{
	const weft_dag *d = g->d;
	size_t n = 0;
	fputs("{\"nodes\": {", out);
	for (size_t t = 0; t < d->ntasks; t++) {
		fputs(n++ ? ",\n" : "\n", out);
		data_task(out, g, t);
	}
	for (size_t a = 0; a < d->nartifacts; a++) {
		if (!g->art_in[a])
			continue;
		fputs(n++ ? ",\n" : "\n", out);
		data_artifact(out, g, a);
	}
	fputs("},\n\"edges\": [", out);
	n = 0;
	for (size_t i = 0; i < d->nedges; i++) {
		if (!export_edge_in(g, i))
			continue;
		char t[32], a[32];
		node_key(t, 't', g->edge_task[i]);
		node_key(a, 'a', g->edge_art[i]);
		bool w = d->edges[i].write;
		fprintf(out, "%s[\"%s\", \"%s\", %s]", n++ ? ",\n" : "\n",
			w ? t : a, w ? a : t,
			d->edges[i].weak ? "true" : "false");
	}
	fputs("]}", out);
}

/* The page around the SVG. The script finds lineage by walking the
 * edges of the data, not the SVG, so that what is highlighted is what
 * the DAG says. */
static const char page_head[] =
	"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
	"<title>weft lineage</title>\n<style>\n"
	"body{margin:0;font:14px system-ui,sans-serif;display:flex;"
	"height:100vh}\n"
	"#weft-graph{flex:1;overflow:auto;background:#fff}\n"
	"#weft-details{width:28em;overflow:auto;border-left:1px solid #ccc;"
	"padding:0 1em;background:#fafafa}\n"
	"#weft-details td{vertical-align:top;padding:2px 6px;"
	"word-break:break-all}\n"
	"#weft-details td:first-child{color:#666;white-space:nowrap}\n"
	"g.node{cursor:pointer}\n"
	".weft-dim{opacity:.2}\n"
	".weft-selected polygon,.weft-selected ellipse{stroke:#c00;"
	"stroke-width:3px}\n"
	".weft-up polygon,.weft-up ellipse{fill:#ffe08a}\n"
	".weft-down polygon,.weft-down ellipse{fill:#a8e6a8}\n"
	"g.edge.weft-lineage path{stroke:#c00;stroke-width:2px}\n"
	"</style></head><body>\n<div id=\"weft-graph\">\n";

static const char page_tail[] =
	"<script>\n"
	"(function () {\n"
	"  var data = JSON.parse(document.getElementById('weft-data')"
	".textContent);\n"
	"  var up = {}, down = {}, byId = {};\n"
	"  Object.keys(data.nodes).forEach(function (k) {\n"
	"    byId[data.nodes[k].id] = k; });\n"
	"  data.edges.forEach(function (e) {\n"
	"    (down[e[0]] = down[e[0]] || []).push(e[1]);\n"
	"    (up[e[1]] = up[e[1]] || []).push(e[0]); });\n"
	"  function walk(start, adj) {\n"
	"    var seen = {}, stack = [start];\n"
	"    while (stack.length) {\n"
	"      (adj[stack.pop()] || []).forEach(function (m) {\n"
	"        if (!seen[m] && m !== start) { seen[m] = true; "
	"stack.push(m); } }); }\n"
	"    return seen; }\n"
	"  var marks = ['weft-selected', 'weft-up', 'weft-down', 'weft-dim',"
	" 'weft-lineage'];\n"
	"  function clear() {\n"
	"    document.querySelectorAll('#weft-graph g').forEach(function (el)"
	" {\n"
	"      marks.forEach(function (c) { el.classList.remove(c); }); });\n"
	"    delete document.body.dataset.selected; }\n"
	"  function details(key) {\n"
	"    var box = document.getElementById('weft-details');\n"
	"    box.textContent = '';\n"
	"    var n = data.nodes[key], h = document.createElement('h3');\n"
	"    h.textContent = n.kind === 'task' ? 'Task' : 'File version';\n"
	"    box.appendChild(h);\n"
	"    var table = document.createElement('table');\n"
	"    Object.keys(n).forEach(function (f) {\n"
	"      if (f === 'kind') return;\n"
	"      var tr = table.insertRow(), a = tr.insertCell(), "
	"b = tr.insertCell();\n"
	"      a.textContent = f; b.textContent = String(n[f]); });\n"
	"    box.appendChild(table); }\n"
	"  function select(key) {\n"
	"    clear();\n"
	"    if (!data.nodes[key]) return;\n"
	"    var u = walk(key, up), d = walk(key, down);\n"
	"    Object.keys(data.nodes).forEach(function (k) {\n"
	"      var el = document.getElementById(k);\n"
	"      if (!el) return;\n"
	"      el.classList.add(k === key ? 'weft-selected' : u[k] ? "
	"'weft-up' : d[k] ? 'weft-down' : 'weft-dim'); });\n"
	"    data.edges.forEach(function (e, i) {\n"
	"      var el = document.getElementById('e' + i);\n"
	"      if (!el) return;\n"
	"      var on = (u[e[0]] && (u[e[1]] || e[1] === key)) ||\n"
	"               (d[e[1]] && (d[e[0]] || e[0] === key));\n"
	"      el.classList.add(on ? 'weft-lineage' : 'weft-dim'); });\n"
	"    document.body.dataset.selected = key;\n"
	"    var sel = document.getElementById(key);\n"
	"    if (sel) sel.scrollIntoView({block: 'center', inline: "
	"'center'});\n"
	"    details(key); }\n"
	"  document.getElementById('weft-graph').addEventListener('click',\n"
	"    function (ev) {\n"
	"      var g = ev.target.closest('g.node');\n"
	"      if (g) select(g.id); else clear(); });\n"
	"  function fromHash() {\n"
	"    var m = /^#select=(.*)$/.exec(location.hash);\n"
	"    if (!m) return;\n"
	"    var id = decodeURIComponent(m[1]);\n"
	"    select(byId[id] || id); }\n"
	"  window.addEventListener('hashchange', fromHash);\n"
	"  fromHash();\n"
	"})();\n"
	"</script>\n</body></html>\n";

#ifdef WEFT_HAVE_GVC

/* Set an attribute; Graphviz copies the strings. */
static void set(const struct export_gvc_api *gv, void *obj, const char *name,
		const char *value)
{
	gv->agsafeset(obj, (char *)name, (char *)value, (char *)"");
}

static int set_label(const struct export_gvc_api *gv, void *obj,
		     const char *attr, const char *text)
{
	char *l = label_text(text ? text : "?");
	if (!l)
		return WEFT_ENOMEM;
	set(gv, obj, attr, l);
	free(l);
	return WEFT_OK;
}

static int add_nodes(const struct export_gvc_api *gv, Agraph_t *gr,
		     const struct export_graph *g, Agnode_t **tnode,
		     Agnode_t **anode)
{
	const weft_dag *d = g->d;
	char key[32];
	int err = WEFT_OK;
	for (size_t t = 0; !err && t < d->ntasks; t++) {
		const weft_dag_task *task = &d->tasks[t];
		node_key(key, 't', t);
		Agnode_t *n = tnode[t] = gv->agnode(gr, key, 1);
		set(gv, n, "id", key);
		set(gv, n, "class", task->exit_code ? "task failed" : "task");
		set(gv, n, "shape", "box");
		set(gv, n, "style", "filled");
		set(gv, n, "fillcolor",
		    task->exit_code ? "#f4b6b6" : "#cfe2ff");
		char *name = label_text(task->name ? task->name : task->id);
		char *node = label_text(task->node ? task->node : "");
		char *buf = NULL;
		if (name && node &&
		    asprintf(&buf, "%s\\n%s%s exit %d", name, node,
			     task->node ? "," : "", task->exit_code) > 0)
			set(gv, n, "label", buf);
		else
			err = WEFT_ENOMEM;
		free(buf);
		free(name);
		free(node);
		if (!err)
			err = set_label(gv, n, "tooltip", task->id);
	}
	for (size_t a = 0; !err && a < d->nartifacts; a++) {
		const weft_dag_artifact *art = &d->artifacts[a];
		if (!g->art_in[a])
			continue;
		node_key(key, 'a', a);
		Agnode_t *n = anode[a] = gv->agnode(gr, key, 1);
		set(gv, n, "id", key);
		set(gv, n, "class", "file");
		set(gv, n, "shape", "ellipse");
		set(gv, n, "style", "filled");
		set(gv, n, "fillcolor", "#ffffff");
		err = set_label(gv, n, "label",
				art->path ? art->path : art->id);
		if (!err)
			err = set_label(gv, n, "tooltip",
					art->path ? art->path : art->id);
	}
	return err;
}

static void add_edges(const struct export_gvc_api *gv, Agraph_t *gr,
		      const struct export_graph *g, Agnode_t **tnode,
		      Agnode_t **anode)
{
	const weft_dag *d = g->d;
	size_t drawn = 0;
	for (size_t i = 0; i < d->nedges; i++) {
		if (!export_edge_in(g, i))
			continue;
		const weft_dag_edge *e = &d->edges[i];
		Agnode_t *t = tnode[g->edge_task[i]],
			 *a = anode[g->edge_art[i]];
		Agedge_t *ed = gv->agedge(gr, e->write ? t : a,
					  e->write ? a : t, NULL, 1);
		/* The page's script finds edge k of its data as "e<k>". */
		char key[32];
		snprintf(key, sizeof(key), "e%zu", drawn++);
		set(gv, ed, "id", key);
		if (e->weak)
			set(gv, ed, "style", "dashed");
		if (e->update)
			set(gv, ed, "label", "update");
	}
}

/* The DAG as SVG text (malloc'd, *len bytes). */
static int layout_svg(const struct export_graph *g, char **svg,
		      unsigned int *len, char err[WEFT_EXPORT_ERR_BYTES])
{
	const struct export_gvc_api *gv =
		export_gvc(err, WEFT_EXPORT_ERR_BYTES);
	if (!gv)
		return WEFT_EUNSUPPORTED;
	const weft_dag *d = g->d;
	Agnode_t **tnode = calloc(d->ntasks + 1, sizeof(*tnode));
	Agnode_t **anode = calloc(d->nartifacts + 1, sizeof(*anode));
	GVC_t *gvc = gv->gvContext();
	Agraph_t *gr = gv->agopen((char *)"weft", *gv->Agdirected, NULL);
	int rc = !tnode || !anode || !gvc || !gr ? WEFT_ENOMEM : WEFT_OK;
	if (!rc) {
		set(gv, gr, "rankdir", "LR");
		set(gv, gr, "fontname", "sans-serif");
		gv->agattr(gr, AGNODE, (char *)"fontname",
			   (char *)"sans-serif");
		gv->agattr(gr, AGNODE, (char *)"fontsize", (char *)"10");
		rc = add_nodes(gv, gr, g, tnode, anode);
	}
	if (!rc)
		add_edges(gv, gr, g, tnode, anode);
	if (!rc && gv->gvLayout(gvc, gr, "dot") != 0) {
		snprintf(err, WEFT_EXPORT_ERR_BYTES,
			 "Graphviz could not lay the DAG out (is the dot "
			 "layout plugin of libgvc installed?)");
		rc = WEFT_EUNSUPPORTED;
	} else if (!rc) {
		char *out = NULL;
		if (gv->gvRenderData(gvc, gr, "svg", &out, len) != 0 || !out) {
			snprintf(err, WEFT_EXPORT_ERR_BYTES,
				 "Graphviz could not render SVG (is its core "
				 "plugin installed?)");
			rc = WEFT_EUNSUPPORTED;
		} else if (!(*svg = malloc(*len + 1))) {
			rc = WEFT_ENOMEM;
		} else {
			memcpy(*svg, out, *len);
			(*svg)[*len] = '\0';
		}
		if (out)
			gv->gvFreeRenderData(out);
		gv->gvFreeLayout(gvc, gr);
	}
	if (gr)
		gv->agclose(gr);
	if (gvc)
		gv->gvFreeContext(gvc);
	free(tnode);
	free(anode);
	if (rc == WEFT_ENOMEM)
		snprintf(err, WEFT_EXPORT_ERR_BYTES, "out of memory");
	return rc;
}

#else

static int layout_svg(const struct export_graph *g, char **svg,
		      unsigned int *len, char err[WEFT_EXPORT_ERR_BYTES])
{
	(void)g;
	(void)svg;
	(void)len;
	snprintf(err, WEFT_EXPORT_ERR_BYTES,
		 "this weft was built without Graphviz's library: install "
		 "libgraphviz-dev and rebuild for svg and html");
	return WEFT_EUNSUPPORTED;
}

#endif

/* The page: head, the SVG element (the XML prologue left out), the data
 * with every '<' escaped, the script. */
static int write_page(FILE *out, const struct export_graph *g, const char *svg)
{
	char *data = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&data, &len);
	if (!m)
		return WEFT_ENOMEM;
	page_data(m, g);
	if (fclose(m)) {
		free(data);
		return WEFT_ENOMEM;
	}
	const char *start = strstr(svg, "<svg");
	fputs(page_head, out);
	fputs(start ? start : svg, out);
	fputs("</div>\n<aside id=\"weft-details\"><h3>weft lineage</h3>"
	      "<p>Click a file or a task: what it came from turns yellow, "
	      "what it fed green.</p></aside>\n"
	      "<script type=\"application/json\" id=\"weft-data\">",
	      out);
	for (size_t i = 0; i < len; i++) {
		if (data[i] == '<')
			fputs("\\u003c", out);
		else
			fputc(data[i], out);
	}
	fputs("</script>\n", out);
	fputs(page_tail, out);
	free(data);
	return WEFT_OK;
}

int weft_render_dag(weft_store *s, const weft_dag *d, int format,
		    weft_render_hide_fn hide, FILE *out,
		    char err[WEFT_EXPORT_ERR_BYTES])
{
	struct export_graph g;
	char *svg = NULL;
	unsigned int len = 0;
	int rc = export_graph_over(s, d, hide, &g, err);
	size_t nodes = d->ntasks;
	for (size_t a = 0; !rc && a < d->nartifacts; a++)
		nodes += g.art_in[a];
	if (!rc && nodes > WEFT_RENDER_MAX_NODES) {
		snprintf(err, WEFT_EXPORT_ERR_BYTES,
			 "%zu tasks and files are more than a picture can show "
			 "(at most %d): draw one job (--job ID), or one file's "
			 "lineage (weft lineage PATH)",
			 nodes, WEFT_RENDER_MAX_NODES);
		rc = WEFT_ETOOBIG;
	}
	if (!rc)
		rc = layout_svg(&g, &svg, &len, err);
	if (!rc && format == WEFT_RENDER_HTML) {
		if ((rc = write_page(out, &g, svg)))
			snprintf(err, WEFT_EXPORT_ERR_BYTES, "out of memory");
	} else if (!rc) {
		fwrite(svg, 1, len, out);
	}
	if (!rc)
		rc = export_check_written(out, "the picture", err);
	free(svg);
	export_graph_free(&g);
	return rc;
}
