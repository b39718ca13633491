/*
 * export_rocrate.c - the lineage as an RO-Crate 1.1 that conforms to the
 * Process Run Crate profile 0.5 (Workflow Run RO-Crate): what publishing
 * reproducible work asks for (WorkflowHub, Zenodo, ro-crate-py read it).
 *
 * Process Run Crate and not Workflow Run Crate: that profile requires the
 * workflow itself (a ComputationalWorkflow file) as the crate's main
 * entity, and weft sees tasks, not a workflow definition; a Process Run
 * Crate describes exactly what weft knows, "an implicit workflow" of
 * executed tools linked by the files one wrote and the next read.
 *
 * One CreateAction per task: its instrument (a SoftwareApplication per
 * executable), object (the versions it read) and result (those it
 * wrote), agent (the user), start and end time, and action status
 * (FailedActionStatus with an error for a non-zero exit). Files are
 * metadata only, as weft records them: each version is a File whose @id
 * is the absolute file: URI of the path its task used (the node in the
 * authority for a node-local filesystem, so that /tmp/x on two machines
 * are two files); versions that would share an @id get the version id as
 * a fragment. Hash, location and weak edges use terms of weft's own
 * namespace (WEFT_EXPORT_NS), declared in the crate's context.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "export.h"
#include "export_zip.h"

#define PROFILE "https://w3id.org/ro/wfrun/process/0.5"
#define METADATA_NAME "ro-crate-metadata.json"

/* Each kept artifact's @id, and each task's executable's. */
struct crate {
	const struct export_graph *g;
	FILE *out;
	char **file_id; /* per artifact, NULL when not kept */
	bool *first_tool, *first_user; /* per task: each tool, user once */
};

static bool local_location(const weft_dag_artifact *a)
{
	return a->loc_fs && strncmp(a->loc_fs, "local ", 6) == 0;
}

/* The node of a task that used artifact a, for a file: URI's authority. */
static const char *artifact_node(const struct export_graph *g, size_t a)
{
	size_t t = g->art_task[a];
	return t == SIZE_MAX ? NULL : g->d->tasks[t].node;
}

static char *file_uri(const struct export_graph *g, size_t a, bool version)
{
	const weft_dag_artifact *art = &g->d->artifacts[a];
	char *buf = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&buf, &len);
	if (!m)
		return NULL;
	const char *node = local_location(art) ? artifact_node(g, a) : NULL;
	fputs("file://", m);
	if (node)
		export_iri_escaped(m, node, NULL);
	const char *path = art->path ? art->path : "/";
	export_iri_escaped(m, path[0] == '/' ? path : "/", "/!$&'()*+,;=:@");
	if (version || !art->path || art->path[0] != '/') {
		fputc('#', m);
		export_iri_escaped(m, art->id, ":");
	}
	if (fclose(m)) {
		free(buf);
		return NULL;
	}
	return buf;
}

static int cmp_str_ptr(const void *a, const void *b)
{
	return strcmp(**(char *const *const *)a, **(char *const *const *)b);
}

/* Every kept artifact's @id: its file: URI, with the version as a
 * fragment where two would be the same. */
static int name_files(struct crate *c)
{
	const weft_dag *d = c->g->d;
	size_t n = d->nartifacts;
	c->file_id = calloc(n + 1, sizeof(*c->file_id));
	char ***order = malloc((n + 1) * sizeof(*order));
	if (!c->file_id || !order) {
		free(order);
		return WEFT_ENOMEM;
	}
	size_t k = 0;
	int err = WEFT_OK;
	for (size_t a = 0; a < n && !err; a++) {
		if (!c->g->art_in[a])
			continue;
		if (!(c->file_id[a] = file_uri(c->g, a, false)))
			err = WEFT_ENOMEM;
		order[k++] = &c->file_id[a];
	}
	if (!err)
		qsort(order, k, sizeof(*order), cmp_str_ptr);
	bool *clash = calloc(k + 1, sizeof(*clash));
	if (!err && !clash)
		err = WEFT_ENOMEM;
	for (size_t i = 1; !err && i < k; i++)
		if (strcmp(*order[i - 1], *order[i]) == 0)
			clash[i - 1] = clash[i] = true;
	for (size_t i = 0; !err && i < k; i++) {
		if (!clash[i])
			continue;
		size_t a = (size_t)(order[i] - c->file_id);
		free(c->file_id[a]);
		if (!(c->file_id[a] = file_uri(c->g, a, true)))
			err = WEFT_ENOMEM;
	}
	free(clash);
	free(order);
	return err;
}

static void ref(FILE *out, const char *prefix, const char *id)
{
	fprintf(out, "{\"@id\": \"%s", prefix);
	export_iri_escaped(out, id, "/:@");
	fputs("\"}", out);
}

static void file_ref(const struct crate *c, size_t a)
{
	fputs("{\"@id\": ", c->out);
	weft_json_string(c->out, c->file_id[a]);
	fputc('}', c->out);
}

static void prop_str(FILE *out, const char *key, const char *v)
{
	export_str_member(out, ",\n   ", key, v);
}

/* The kept edges of task t of one direction, as a list of file refs;
 * with weak_only, only the weak ones (nothing when there are none). */
static void task_files(const struct crate *c, size_t t, const char *key,
		       bool write, bool weak_only)
{
	const struct export_graph *g = c->g;
	size_t n = 0;
	for (size_t k = g->task_first[t]; k < g->task_first[t + 1]; k++) {
		size_t i = g->task_edges[k];
		const weft_dag_edge *e = &g->d->edges[i];
		if (e->write != write || !export_edge_in(g, i) ||
		    (weak_only && !e->weak))
			continue;
		fprintf(c->out, n++ ? ", " : ",\n   \"%s\": [", key);
		file_ref(c, g->edge_art[i]);
	}
	if (n)
		fputc(']', c->out);
	else if (!weak_only)
		fprintf(c->out, ",\n   \"%s\": []", key);
}

/* The tool of task t: its executable, else its command's name. */
static const char *software_of(const struct export_graph *g, size_t t)
{
	const char *exe = g->facts[t].exe;
	return exe && exe[0]         ? exe
	       : g->d->tasks[t].name ? g->d->tasks[t].name
				     : "unknown";
}

static void action(const struct crate *c, size_t t)
{
	const struct export_graph *g = c->g;
	const weft_dag_task *task = &g->d->tasks[t];
	const struct export_task *f = &g->facts[t];
	FILE *out = c->out;
	fputs(",\n  {\"@id\": \"#task-", out);
	export_iri_escaped(out, task->id, "/:@");
	fputs("\", \"@type\": \"CreateAction\"", out);
	prop_str(out, "name", task->name);
	prop_str(out, "description", f->command);
	fputs(",\n   \"instrument\": ", out);
	ref(out, "#software-", software_of(g, t));
	fputs(",\n   \"agent\": ", out);
	ref(out, "#user-", export_user_of(g, t));
	char when[WEFT_RFC3339_BYTES];
	weft_rfc3339(f->started_ns, when);
	fprintf(out, ",\n   \"startTime\": \"%s\"", when);
	weft_rfc3339(f->ended_ns, when);
	fprintf(out, ",\n   \"endTime\": \"%s\"", when);
	task_files(c, t, "object", false, false);
	task_files(c, t, "result", true, false);
	task_files(c, t, "weft:weakObject", false, true);
	task_files(c, t, "weft:weakResult", true, true);
	if (task->exit_code == 0) {
		fputs(",\n   \"actionStatus\": {\"@id\": "
		      "\"http://schema.org/CompletedActionStatus\"}",
		      out);
	} else {
		fprintf(out,
			",\n   \"actionStatus\": {\"@id\": "
			"\"http://schema.org/FailedActionStatus\"},\n"
			"   \"error\": \"exited with status %d\"",
			task->exit_code);
	}
	export_task_members(out, ",\n   ", g, t);
	if (task->parent) {
		fputs(",\n   \"weft:parentTask\": ", out);
		ref(out, "#task-", task->parent);
	}
	fputc('}', out);
}

static void software(const struct crate *c, size_t t)
{
	const char *exe = software_of(c->g, t);
	fputs(",\n  {\"@id\": \"#software-", c->out);
	export_iri_escaped(c->out, exe, "/:@");
	fputs("\", \"@type\": \"SoftwareApplication\"", c->out);
	prop_str(c->out, "name", export_basename(exe));
	if (exe[0] == '/')
		prop_str(c->out, "weft:executable", exe);
	fputc('}', c->out);
}

static void person(const struct crate *c, size_t t)
{
	fputs(",\n  {\"@id\": \"#user-", c->out);
	export_iri_escaped(c->out, c->g->facts[t].user, "/:@");
	fputs("\", \"@type\": \"Person\"", c->out);
	prop_str(c->out, "name", c->g->facts[t].user);
	fputc('}', c->out);
}

static void file_entity(const struct crate *c, size_t a)
{
	const weft_dag *d = c->g->d;
	const weft_dag_artifact *art = &d->artifacts[a];
	static const char *const kinds[] = {"written", "source", "unknown"};
	FILE *out = c->out;
	fputs(",\n  {\"@id\": ", out);
	weft_json_string(out, c->file_id[a]);
	fputs(", \"@type\": \"File\"", out);
	prop_str(out, "name", art->path ? export_basename(art->path) : art->id);
	prop_str(out, "alternateName", art->path);
	if (art->has_size)
		fprintf(out, ",\n   \"contentSize\": \"%lld\"",
			(long long)art->size);
	char text[WEFT_HASH_TEXT_BYTES];
	prop_str(out, "weft:hash", export_hash_text(art, text));
	prop_str(out, "weft:versionId", art->id);
	fprintf(out, ",\n   \"weft:version\": \"%s\"", kinds[art->kind]);
	prop_str(out, "weft:filesystem", art->loc_fs);
	prop_str(out, "weft:locationPath", art->loc_path);
	size_t prev = c->g->updated[a];
	if (prev != SIZE_MAX && c->g->art_in[prev]) {
		/* What an append or in-place write changed. */
		fputs(",\n   \"isBasedOn\": ", out);
		file_ref(c, prev);
	}
	fputc('}', out);
}

static void root_dataset(const struct crate *c, const weft_export_scope *sc)
{
	const struct export_graph *g = c->g;
	const weft_dag *d = g->d;
	FILE *out = c->out;
	/* The crate's date is its records' (the last task's end), so that
	 * the same records give the same crate. */
	int64_t latest = 0;
	for (size_t t = 0; t < d->ntasks; t++)
		if (g->task_in[t] && g->facts[t].ended_ns > latest)
			latest = g->facts[t].ended_ns;
	if (!latest)
		latest = (int64_t)time(NULL) * 1000000000;
	char when[WEFT_RFC3339_BYTES];
	weft_rfc3339(latest, when);
	fputs(",\n  {\"@id\": \"./\", \"@type\": \"Dataset\",\n   \"name\": ",
	      out);
	if (sc->run || sc->job) {
		fprintf(out, "\"weft lineage of %s ", sc->run ? "run" : "job");
		export_iri_escaped(out, sc->run ? sc->run : sc->job, "-:@");
		fputc('"', out);
	} else {
		fputs("\"weft lineage of every recorded run\"", out);
	}
	fputs(",\n   \"description\": \"What each task read and wrote, as "
	      "weft traced it: file versions named by path, BLAKE2b-256 "
	      "hash and size (no file content is in this crate).\"",
	      out);
	fprintf(out, ",\n   \"datePublished\": \"%s\"", when);
	fputs(",\n   \"conformsTo\": {\"@id\": \"" PROFILE "\"}", out);
	fputs(",\n   \"hasPart\": [", out);
	size_t n = 0;
	for (size_t a = 0; a < d->nartifacts; a++) {
		if (!g->art_in[a])
			continue;
		fputs(n++ ? ", " : "", out);
		file_ref(c, a);
	}
	fputs("],\n   \"mentions\": [", out);
	n = 0;
	for (size_t t = 0; t < d->ntasks; t++) {
		if (!g->task_in[t])
			continue;
		fputs(n++ ? ", " : "", out);
		ref(out, "#task-", d->tasks[t].id);
	}
	fputs("]}", out);
}

static void metadata(const struct crate *c, const weft_export_scope *sc)
{
	const struct export_graph *g = c->g;
	FILE *out = c->out;
	fputs("{\"@context\": [\"https://w3id.org/ro/crate/1.1/context\", "
	      "{\"weft\": \"" WEFT_EXPORT_NS "\"}],\n \"@graph\": [\n"
	      "  {\"@id\": \"" METADATA_NAME "\", \"@type\": \"CreativeWork\","
	      "\n   \"conformsTo\": {\"@id\": "
	      "\"https://w3id.org/ro/crate/1.1\"},"
	      "\n   \"about\": {\"@id\": \"./\"}}",
	      out);
	root_dataset(c, sc);
	fputs(",\n  {\"@id\": \"" PROFILE "\", \"@type\": \"CreativeWork\", "
	      "\"name\": \"Process Run Crate\", \"version\": \"0.5\"}",
	      out);
	for (size_t t = 0; t < g->d->ntasks; t++)
		if (g->task_in[t])
			action(c, t);
	for (size_t t = 0; t < g->d->ntasks; t++)
		if (c->first_tool[t])
			software(c, t);
	for (size_t t = 0; t < g->d->ntasks; t++)
		if (c->first_user[t])
			person(c, t);
	for (size_t a = 0; a < g->d->nartifacts; a++)
		if (g->art_in[a])
			file_entity(c, a);
	fputs("\n]}\n", out);
}

static void say(char err[WEFT_EXPORT_ERR_BYTES], const char *what,
		const char *path, const char *why)
{
	snprintf(err, WEFT_EXPORT_ERR_BYTES, "cannot %s '%s': %s", what, path,
		 why);
}

/* path.tmpPID, for a write that replaces path only once whole. */
static char *temp_name(const char *path)
{
	size_t n = strlen(path) + 32;
	char *tmp = malloc(n);
	if (tmp)
		snprintf(tmp, n, "%s.tmp%ld", path, (long)getpid());
	return tmp;
}

/* Once tmp holds the whole file (written): rename it over path; else, or
 * when that fails, remove it (err says why when not yet). */
static int replace_with(const char *tmp, const char *path, bool written,
			char err[WEFT_EXPORT_ERR_BYTES])
{
	if (written && rename(tmp, path) == 0)
		return WEFT_OK;
	if (written)
		say(err, "replace", path, strerror(errno));
	unlink(tmp);
	return WEFT_EIO;
}

static int write_zip(const char *path, const char *buf, size_t len,
		     char err[WEFT_EXPORT_ERR_BYTES])
{
#ifdef WEFT_HAVE_LIBZIP
	char why[WEFT_EXPORT_ERR_BYTES / 2];
	const struct export_zip_api *zip = export_zip(why, sizeof(why));
	if (!zip) {
		say(err, "write", path, why);
		return WEFT_EUNSUPPORTED;
	}
	char *tmp = temp_name(path);
	if (!tmp)
		return WEFT_ENOMEM;
	int zerr = 0;
	bool written = false;
	zip_t *z = zip->zip_open(tmp, ZIP_CREATE | ZIP_TRUNCATE, &zerr);
	if (!z) {
		zip_error_t ze;
		zip->zip_error_init_with_code(&ze, zerr);
		say(err, "create", tmp, zip->zip_error_strerror(&ze));
		zip->zip_error_fini(&ze);
		free(tmp);
		return WEFT_EIO;
	}
	zip_source_t *src = zip->zip_source_buffer(z, buf, len, 0);
	if (!src ||
	    zip->zip_file_add(z, METADATA_NAME, src, ZIP_FL_ENC_UTF_8) < 0) {
		say(err, "add " METADATA_NAME " to", tmp, zip->zip_strerror(z));
		zip->zip_source_free(src);
		zip->zip_discard(z);
	} else if (zip->zip_close(z) < 0) {
		say(err, "write", tmp, zip->zip_strerror(z));
		zip->zip_discard(z);
	} else {
		written = true;
	}
	int rc = replace_with(tmp, path, written, err);
	free(tmp);
	return rc;
#else
	(void)buf;
	(void)len;
	say(err, "write the zip", path,
	    "this weft was built without libzip (install libzip-dev and "
	    "rebuild, or give a directory)");
	return WEFT_EUNSUPPORTED;
#endif
}

static int write_dir(const char *path, const char *buf, size_t len,
		     char err[WEFT_EXPORT_ERR_BYTES])
{
	struct stat st;
	if (mkdir(path, 0777) && errno != EEXIST) {
		say(err, "make the directory", path, strerror(errno));
		return WEFT_EIO;
	}
	if (stat(path, &st) || !S_ISDIR(st.st_mode)) {
		say(err, "write a crate into", path, "not a directory");
		return WEFT_EINVAL;
	}
	size_t n = strlen(path) + sizeof(METADATA_NAME) + 2;
	char *file = malloc(n);
	char *tmp = NULL;
	if (!file || (snprintf(file, n, "%s/" METADATA_NAME, path),
		      !(tmp = temp_name(file)))) {
		free(file);
		return WEFT_ENOMEM;
	}
	FILE *f = fopen(tmp, "w");
	bool written = false;
	if (!f) {
		say(err, "create", tmp, strerror(errno));
	} else {
		written = fwrite(buf, 1, len, f) == len;
		written = !fclose(f) && written;
		if (!written)
			say(err, "write", tmp, strerror(errno));
	}
	int rc = replace_with(tmp, file, written, err);
	free(tmp);
	free(file);
	return rc;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return n >= m && strcmp(s + n - m, suffix) == 0;
}

int weft_export_rocrate(weft_store *s, const weft_export_scope *sc,
			const char *path, FILE *out,
			char err[WEFT_EXPORT_ERR_BYTES])
{
	struct export_graph g;
	struct crate c = {&g, NULL, NULL, NULL, NULL};
	char *buf = NULL;
	size_t len = 0;
	int rc = export_graph_load(s, sc, &g, err);
	if (!rc && (!(c.first_tool = export_first_of(&g, software_of)) ||
		    !(c.first_user = export_first_of(&g, export_user_of))))
		rc = WEFT_ENOMEM;
	if (!rc)
		rc = name_files(&c);
	if (rc && !err[0])
		snprintf(err, WEFT_EXPORT_ERR_BYTES, "%s", weft_strerror(rc));
	if (!rc && !(c.out = open_memstream(&buf, &len))) {
		snprintf(err, WEFT_EXPORT_ERR_BYTES, "out of memory");
		rc = WEFT_ENOMEM;
	}
	if (!rc) {
		metadata(&c, sc);
		if (fclose(c.out)) {
			snprintf(err, WEFT_EXPORT_ERR_BYTES, "out of memory");
			rc = WEFT_ENOMEM;
		}
	}
	if (!rc && !path) {
		fwrite(buf, 1, len, out);
		rc = export_check_written(out, "the crate's metadata", err);
	} else if (!rc) {
		rc = ends_with(path, ".zip") ? write_zip(path, buf, len, err)
					     : write_dir(path, buf, len, err);
	}
	free(buf);
	if (c.file_id)
		for (size_t a = 0; a < g.d->nartifacts; a++)
			free(c.file_id[a]);
	free(c.file_id);
	free(c.first_tool);
	free(c.first_user);
	export_graph_free(&g);
	return rc;
}
