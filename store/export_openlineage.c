/*
 * export_openlineage.c - weft's lineage as OpenLineage run events, for
 * `weft export --format openlineage` and for the outbox a coordinator
 * sends from (docs/interop.md, "OpenLineage").
 *
 * Events are built from the store's rows of one run at a time (its
 * file_io rows, its task and job), not from the job's whole DAG: an event
 * is then the same whenever it is made (while the job runs, for a live
 * destination, or long after, for an export) and costs what its task
 * holds, not what its job holds. Which version a task read is what its
 * file record says (the hash of the version at its first open); the
 * cross-task matching of the DAG is the consumer's work, by dataset name
 * and version.
 *
 * Determinism is the point of most choices here: run ids are name-based
 * UUIDs of weft's ids, event times are the recorded ones, datasets come
 * in path order, and nothing reads a clock.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "store_internal.h"

#define FACETS "https://openlineage.io/spec/facets/"

/* The outbox's event kinds (store.c, migrations 7 and 9): refs are
 * jobs.num, runs.num, and task_starts.num for a START announced as the
 * task started (built from the announcement alone: the same event
 * whenever it is made, before the task's record exists or after). */
enum {
	OL_JOB_START,
	OL_JOB_END,
	OL_TASK_START,
	OL_TASK_END,
	OL_TASK_ANNOUNCED
};

/* ---- Small writers ---- */

/* Every string in weft's JSON escaping (json_out.c): bytes that are not
 * UTF-8 become U+DC80+byte, so a path's bytes can be recovered. */
#define json_str weft_json_string

/* The length of s cut to at most max bytes at a character boundary. */
static size_t cut_len(const char *s, size_t max)
{
	size_t n = strlen(s);
	if (n <= max)
		return n;
	n = max;
	while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
		n--;
	return n;
}

/* RFC 3339 UTC, microseconds: what OpenLineage's date-time takes. */
static void json_time(FILE *out, int64_t ns)
{
	char text[WEFT_RFC3339_BYTES];
	weft_rfc3339(ns, text);
	fprintf(out, "\"%s\"", text);
}

/* A facet's opening: its key and the base facet's fields. */
static void facet_open(FILE *out, bool first, const char *key,
		       const char *schema)
{
	fprintf(out,
		"%s\"%s\": {\"_producer\": \"" WEFT_OL_PRODUCER
		"\", \"_schemaURL\": \"" FACETS "%s\"",
		first ? "" : ", ", key, schema);
}

void weft_ol_run_uuid(const char *kind, const char *id, char out[37])
{
	/* Name-based (RFC 9562 version 8: a hash other than SHA-1): the
	 * same task is the same run in every export and every sink. */
	uint8_t b[16];
	crypto_generichash_state st;
	crypto_generichash_init(&st, NULL, 0, sizeof(b));
	crypto_generichash_update(&st, (const uint8_t *)"weft openlineage", 17);
	crypto_generichash_update(&st, (const uint8_t *)kind, strlen(kind) + 1);
	crypto_generichash_update(&st, (const uint8_t *)id, strlen(id));
	crypto_generichash_final(&st, b, sizeof(b));
	b[6] = (uint8_t)((b[6] & 0x0f) | 0x80);
	b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
	char *p = out;
	for (int i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			*p++ = '-';
		p += sprintf(p, "%02x", b[i]);
	}
}

int weft_ol_namespace_check(const char *ns)
{
	size_t n = strlen(ns);
	if (n == 0 || n > WEFT_OL_MAX_NAMESPACE_BYTES)
		return WEFT_EINVAL;
	for (size_t i = 0; i < n; i++)
		if (ns[i] <= 0x20 || ns[i] >= 0x7f)
			return WEFT_EINVAL;
	return WEFT_OK;
}

/* ---- What one event is made of ---- */

/* A job as its OpenLineage run. */
struct ol_job {
	char *id, *command;
	int64_t created_ns, ended_ns;
	bool ended;
	int32_t exit_code;
};

/* A task (a run) and what its events name besides it. */
struct ol_task {
	char *id, *name, *node, *backend;
	int32_t exit_code;
	int64_t started_ns, ended_ns;
	char *parent_id, *parent_name; /* its parent task's run, or NULL */
	bool has_job;
	struct ol_job job;
};

/* One file record of a task. */
struct ol_file {
	char *path, *renamed_to, *fs, *loc_path;
	bool read, written, created, deleted, updated;
	bool has_hash, has_read_hash, has_size;
	uint8_t hash[32], read_hash[32];
	int64_t size;
};

static void ol_job_release(struct ol_job *j)
{
	free(j->id);
	free(j->command);
}

static void ol_task_release(struct ol_task *t)
{
	free(t->id);
	free(t->name);
	free(t->node);
	free(t->backend);
	free(t->parent_id);
	free(t->parent_name);
	ol_job_release(&t->job);
}

static void ol_files_free(struct ol_file *f, size_t n)
{
	static const size_t strings[] = {offsetof(struct ol_file, path),
					 offsetof(struct ol_file, renamed_to),
					 offsetof(struct ol_file, fs),
					 offsetof(struct ol_file, loc_path),
					 STORE_MEMBERS_END};
	store_free_members(f, n, sizeof(*f), strings);
}

/* A column as a malloc'd string ("" for NULL when empty_for_null). */
static int col_str(sqlite3_stmt *st, int i, bool empty_for_null, char **out)
{
	*out = NULL;
	if (sqlite3_column_type(st, i) == SQLITE_NULL && !empty_for_null)
		return WEFT_OK;
	const char *p = sqlite3_column_blob(st, i);
	size_t n = (size_t)sqlite3_column_bytes(st, i);
	if (!(*out = malloc(n + 1)))
		return WEFT_ENOMEM;
	if (n)
		memcpy(*out, p, n);
	(*out)[n] = '\0';
	return WEFT_OK;
}

static bool col_hash(sqlite3_stmt *st, int i, uint8_t hash[32])
{
	if (sqlite3_column_bytes(st, i) != 32)
		return false;
	memcpy(hash, sqlite3_column_blob(st, i), 32);
	return true;
}

/* One row into *out (the statement stepped to it); WEFT_ENOTFOUND when
 * there was none. */
static int step_one(sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);
	return rc == SQLITE_ROW    ? WEFT_OK
	       : rc == SQLITE_DONE ? WEFT_ENOTFOUND
				   : WEFT_EDB;
}

static const char job_sql[] =
	"SELECT id, command, created_ns, state = 'ended', ended_ns, "
	"exit_code FROM jobs WHERE num = ?1";

static int job_load(weft_store *s, sqlite3_int64 num, struct ol_job *j)
{
	memset(j, 0, sizeof(*j));
	sqlite3_stmt *st;
	int err = store_prepare(s, job_sql, &st);
	if (err)
		return err;
	sqlite3_bind_int64(st, 1, num);
	if (!(err = step_one(st)) && !(err = col_str(st, 0, true, &j->id)))
		err = col_str(st, 1, true, &j->command);
	j->created_ns = sqlite3_column_int64(st, 2);
	j->ended = sqlite3_column_int(st, 3) != 0;
	j->ended_ns = sqlite3_column_int64(st, 4);
	j->exit_code = sqlite3_column_int(st, 5);
	sqlite3_finalize(st);
	if (err)
		ol_job_release(j);
	return err;
}

/* The task's parent is the first run of its job with the parent's task
 * id (as in the DAG). */
static const char task_sql[] =
	"SELECT r.id, coalesce(t.name, " STORE_ROOT_ARGV_SQL "), r.node, "
	"r.backend, r.exit_code, r.started_ns, r.ended_ns, pr.id, pt.name, "
	"j.num FROM runs r LEFT JOIN tasks t ON t.run = r.num "
	"LEFT JOIN jobs j ON j.num = t.job "
	"LEFT JOIN tasks pt ON pt.run = (SELECT t2.run FROM tasks t2 "
	"  WHERE t2.job = t.job AND t2.task_id = t.parent "
	"  ORDER BY t2.run LIMIT 1) "
	"LEFT JOIN runs pr ON pr.num = pt.run WHERE r.num = ?1";

static int task_load(weft_store *s, sqlite3_int64 run, struct ol_task *t)
{
	memset(t, 0, sizeof(*t));
	sqlite3_stmt *st;
	int err = store_prepare(s, task_sql, &st);
	if (err)
		return err;
	sqlite3_bind_int64(st, 1, run);
	err = step_one(st);
	if (!err)
		err = col_str(st, 0, true, &t->id);
	if (!err) {
		/* argv's NULs are spaces in a name. */
		const void *p = sqlite3_column_blob(st, 1);
		t->name =
			store_join_argv(p, (size_t)sqlite3_column_bytes(st, 1));
		err = t->name ? WEFT_OK : WEFT_ENOMEM;
	}
	if (!err)
		err = col_str(st, 2, true, &t->node);
	if (!err)
		err = col_str(st, 3, true, &t->backend);
	t->exit_code = sqlite3_column_int(st, 4);
	t->started_ns = sqlite3_column_int64(st, 5);
	t->ended_ns = sqlite3_column_int64(st, 6);
	if (!err)
		err = col_str(st, 7, false, &t->parent_id);
	if (!err && t->parent_id)
		err = col_str(st, 8, true, &t->parent_name);
	t->has_job = sqlite3_column_type(st, 9) != SQLITE_NULL;
	sqlite3_int64 job = sqlite3_column_int64(st, 9);
	sqlite3_finalize(st);
	if (!err && t->has_job)
		err = job_load(s, job, &t->job);
	if (err)
		ol_task_release(t);
	return err;
}

/* An announced task: what its START says. Its parent is the parent's
 * announcement when there is one, else the parent's record: whichever
 * came first, since an announcement after the record is not stored. */
static const char announced_sql[] =
	"SELECT s.run_id, s.name, s.node, s.backend, s.started_ns, "
	"coalesce(ps.run_id, pr.id), coalesce(ps.name, pt.name), s.job "
	"FROM task_starts s "
	"LEFT JOIN task_starts ps ON ps.num = (SELECT s2.num FROM "
	"  task_starts s2 WHERE s2.job = s.job AND s2.task_id = s.parent "
	"  ORDER BY s2.num LIMIT 1) "
	"LEFT JOIN tasks pt ON ps.num IS NULL AND pt.run = (SELECT t2.run "
	"  FROM tasks t2 WHERE t2.job = s.job AND t2.task_id = s.parent "
	"  ORDER BY t2.run LIMIT 1) "
	"LEFT JOIN runs pr ON pr.num = pt.run WHERE s.num = ?1";

static int announced_load(weft_store *s, sqlite3_int64 num, struct ol_task *t)
{
	memset(t, 0, sizeof(*t));
	sqlite3_stmt *st;
	int err = store_prepare(s, announced_sql, &st);
	if (err)
		return err;
	sqlite3_bind_int64(st, 1, num);
	err = step_one(st);
	if (!err)
		err = col_str(st, 0, true, &t->id);
	if (!err)
		err = col_str(st, 1, true, &t->name);
	if (!err)
		err = col_str(st, 2, true, &t->node);
	if (!err)
		err = col_str(st, 3, true, &t->backend);
	t->started_ns = sqlite3_column_int64(st, 4);
	if (!err)
		err = col_str(st, 5, false, &t->parent_id);
	if (!err && t->parent_id)
		err = col_str(st, 6, true, &t->parent_name);
	sqlite3_int64 job = sqlite3_column_int64(st, 7);
	sqlite3_finalize(st);
	t->has_job = true;
	if (!err)
		err = job_load(s, job, &t->job);
	if (err)
		ol_task_release(t);
	return err;
}

static const char files_sql[] =
	"SELECT p.path, rp.path, fs.name, lp.path, f.read, f.written, "
	"f.created, f.deleted, f.updated, a.hash, ra.hash, f.size "
	"FROM file_io f JOIN paths p ON p.id = f.path "
	"LEFT JOIN paths rp ON rp.id = f.renamed_to "
	"LEFT JOIN filesystems fs ON fs.id = f.loc_fs "
	"LEFT JOIN paths lp ON lp.id = f.loc_path "
	"LEFT JOIN artifacts a ON a.id = f.artifact "
	"LEFT JOIN artifacts ra ON ra.id = f.read_artifact "
	"WHERE f.run = ?1 ORDER BY p.path";

static int files_load(weft_store *s, sqlite3_int64 run, struct ol_file **out,
		      size_t *n)
{
	*out = NULL;
	*n = 0;
	sqlite3_stmt *st;
	int err = store_prepare(s, files_sql, &st);
	if (err)
		return err;
	sqlite3_bind_int64(st, 1, run);
	size_t cap = 0;
	int rc;
	while (!err && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		if ((err = store_grow((void **)out, &cap, *n, sizeof(**out))))
			break;
		struct ol_file *f = &(*out)[(*n)++];
		memset(f, 0, sizeof(*f));
		err = col_str(st, 0, true, &f->path);
		if (!err)
			err = col_str(st, 1, false, &f->renamed_to);
		if (!err && sqlite3_column_type(st, 2) != SQLITE_NULL &&
		    sqlite3_column_type(st, 3) != SQLITE_NULL &&
		    !(err = col_str(st, 2, false, &f->fs)))
			err = col_str(st, 3, false, &f->loc_path);
		f->read = sqlite3_column_int(st, 4) != 0;
		f->written = sqlite3_column_int(st, 5) != 0;
		f->created = sqlite3_column_int(st, 6) != 0;
		f->deleted = sqlite3_column_int(st, 7) != 0;
		f->updated = sqlite3_column_int(st, 8) != 0;
		f->has_hash = col_hash(st, 9, f->hash);
		f->has_read_hash = col_hash(st, 10, f->read_hash);
		f->has_size = sqlite3_column_type(st, 11) != SQLITE_NULL;
		f->size = sqlite3_column_int64(st, 11);
	}
	if (!err && rc != SQLITE_DONE)
		err = WEFT_EDB;
	sqlite3_finalize(st);
	if (err) {
		ol_files_free(*out, *n);
		*out = NULL;
		*n = 0;
	}
	return err;
}

/* ---- Names ---- */

/* A job's name: its command (cut), else its id. */
static void job_name(FILE *out, const struct ol_job *j)
{
	const char *name = j->command[0] ? j->command : j->id;
	char cut[WEFT_OL_MAX_NAME_PART_BYTES + 1];
	size_t n = cut_len(name, WEFT_OL_MAX_NAME_PART_BYTES);
	memcpy(cut, name, n);
	cut[n] = '\0';
	json_str(out, cut);
}

/* A task's job name: "<job name>.<task name>", like an orchestrator's
 * "dag.task"; a run outside any job is named by its command alone. */
static void task_job_name(FILE *out, const struct ol_task *t, const char *name)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&buf, &len);
	if (!m)
		return;
	if (t->has_job) {
		const char *jn = t->job.command[0] ? t->job.command : t->job.id;
		fwrite(jn, 1, cut_len(jn, WEFT_OL_MAX_NAME_PART_BYTES), m);
		fputc('.', m);
		/* `weft run`'s one task is named as its job. */
		if (!strcmp(jn, name))
			name = "task";
	}
	fwrite(name, 1, cut_len(name, WEFT_OL_MAX_NAME_PART_BYTES), m);
	if (fclose(m) == 0)
		json_str(out, buf);
	free(buf);
}

static bool system_path(const char *p)
{
	static const char *const dirs[] = {"/usr/",   "/lib/",    "/lib64/",
					   "/lib32/", "/etc/",    "/bin/",
					   "/sbin/",  "/var/lib/"};
	for (size_t i = 0; i < sizeof(dirs) / sizeof(*dirs); i++)
		if (!strncmp(p, dirs[i], strlen(dirs[i])))
			return true;
	return false;
}

/*
 * A file as a dataset (OpenLineage's naming spec: a "file" namespace and
 * the path). A node-local file (location "local <boot id> <dev>", or no
 * location: an older record) is "file://NODE" and its path there. A file
 * on a shared filesystem ("<fstype> <source>") is named where every node
 * names it alike: a source "server:/export" gives "file://server" and the
 * export's path joined with the path below the filesystem's root; any
 * other source ("beegfs_nodev") is the namespace's host as it is.
 */
static void dataset_id(FILE *out, const struct ol_task *t, const char *path,
		       const struct ol_file *f)
{
	const char *src = NULL;
	if (f && f->fs && strncmp(f->fs, "local ", 6) != 0)
		src = strchr(f->fs, ' ');
	fputs("{\"namespace\": ", out);
	if (!src) {
		char ns[WEFT_MAX_NAME_BYTES + 8];
		snprintf(ns, sizeof(ns), "file://%s", t->node);
		json_str(out, ns);
		fputs(", \"name\": ", out);
		json_str(out, path);
		return;
	}
	src++;
	const char *colon = strstr(src, ":/");
	char *ns = NULL, *name = NULL;
	const char *below = f->loc_path;
	if (colon) {
		size_t rootlen = strlen(colon + 1);
		while (rootlen > 0 && colon[rootlen] == '/')
			rootlen--; /* "server:/" exports the root */
		if (asprintf(&ns, "file://%.*s", (int)(colon - src), src) < 0)
			ns = NULL;
		if (asprintf(&name, "%.*s%s", (int)rootlen, colon + 1, below) <
		    0)
			name = NULL;
	} else if (asprintf(&ns, "file://%s", src) < 0) {
		ns = NULL;
	}
	json_str(out, ns ? ns : "file");
	fputs(", \"name\": ", out);
	json_str(out, name ? name : below);
	free(ns);
	free(name);
}

static void version_facet(FILE *out, bool first, const uint8_t hash[32])
{
	char text[WEFT_HASH_TEXT_BYTES];
	weft_hash_to_text(hash, text);
	facet_open(out, first, "version",
		   "1-0-1/DatasetVersionDatasetFacet.json#/$defs/"
		   "DatasetVersionDatasetFacet");
	fprintf(out, ", \"datasetVersion\": \"%s\"}", text);
}

static void lifecycle_facet(FILE *out, bool first, const char *change,
			    const struct ol_task *t, const char *prev,
			    const struct ol_file *prev_file)
{
	facet_open(out, first, "lifecycleStateChange",
		   "1-0-1/LifecycleStateChangeDatasetFacet.json#/$defs/"
		   "LifecycleStateChangeDatasetFacet");
	fprintf(out, ", \"lifecycleStateChange\": \"%s\"", change);
	if (prev) {
		fputs(", \"previousIdentifier\": ", out);
		dataset_id(out, t, prev, prev_file);
		fputc('}', out);
	}
	fputc('}', out);
}

/* ---- Datasets of a task ---- */

static bool is_input(const struct ol_file *f, const weft_ol_opts *o)
{
	/* A file the task created did not exist before it: never input. */
	if (!(f->read || f->updated) || f->created)
		return false;
	return o->system_inputs || f->written || !system_path(f->path);
}

static void write_inputs(FILE *out, const struct ol_task *t,
			 const struct ol_file *files, size_t n,
			 const weft_ol_opts *o)
{
	fputs(", \"inputs\": [", out);
	bool first = true;
	for (size_t i = 0; i < n; i++) {
		const struct ol_file *f = &files[i];
		if (!is_input(f, o))
			continue;
		fputs(first ? "" : ", ", out);
		first = false;
		dataset_id(out, t, f->path, f);
		fputs(", \"facets\": {", out);
		if (f->has_read_hash)
			version_facet(out, true, f->read_hash);
		fputs("}}", out);
	}
	fputc(']', out);
}

/* The row of path in files (sorted by path), or NULL. */
static const struct ol_file *file_by_path(const struct ol_file *files, size_t n,
					  const char *path)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(files[mid].path, path);
		if (c == 0)
			return &files[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* The row of files that renamed a file which existed before the task
 * to path, or NULL. A file the task created and then renamed (a
 * temporary file saved under its final name) is no rename of a
 * dataset: the destination says what happened to it. */
static const struct ol_file *renamed_from(const struct ol_file *files, size_t n,
					  const char *path)
{
	for (size_t i = 0; i < n; i++)
		if (files[i].renamed_to && !files[i].created &&
		    !strcmp(files[i].renamed_to, path))
			return &files[i];
	return NULL;
}

/* One output: the dataset, its version, what happened to it. */
static void write_output(FILE *out, const struct ol_task *t, const char *path,
			 const struct ol_file *f, const struct ol_file *from)
{
	dataset_id(out, t, path, f ? f : from);
	fputs(", \"facets\": {", out);
	bool first = true;
	if (f && f->has_hash && !f->deleted) {
		version_facet(out, true, f->hash);
		first = false;
	}
	const char *change = from         ? "RENAME"
			     : f->deleted ? "DROP"
			     : f->created ? "CREATE"
			     : f->updated ? NULL
					  : "OVERWRITE";
	if (change)
		lifecycle_facet(out, first, change, t, from ? from->path : NULL,
				from);
	fputc('}', out);
	if (f && f->has_size && !f->deleted) {
		fputs(", \"outputFacets\": {", out);
		facet_open(out, true, "outputStatistics",
			   "1-0-2/OutputStatisticsOutputDatasetFacet.json#/"
			   "$defs/OutputStatisticsOutputDatasetFacet");
		fprintf(out, ", \"size\": %lld, \"fileCount\": 1}}",
			(long long)f->size);
	}
	fputc('}', out);
}

static void write_outputs(FILE *out, const struct ol_task *t,
			  const struct ol_file *files, size_t n)
{
	fputs(", \"outputs\": [", out);
	bool first = true;
	for (size_t i = 0; i < n; i++) {
		const struct ol_file *f = &files[i];
		const char *path = f->path;
		const struct ol_file *dest = f, *from = NULL;
		if (f->renamed_to) {
			/* Said at the destination (below, when it has a
			 * row of its own). */
			if (f->created || file_by_path(files, n, f->renamed_to))
				continue;
			path = f->renamed_to;
			dest = NULL;
			from = f;
		} else if (f->deleted) {
			/* A file made and removed within the task was never
			 * anybody's dataset. */
			if (f->created)
				continue;
		} else if (!f->written) {
			continue;
		} else {
			from = renamed_from(files, n, f->path);
		}
		fputs(first ? "" : ", ", out);
		first = false;
		write_output(out, t, path, dest, from);
	}
	fputc(']', out);
}

/* ---- Events ---- */

static void event_open(FILE *out, int64_t ns, const char *type)
{
	fputs("{\"eventTime\": ", out);
	json_time(out, ns);
	fprintf(out,
		", \"producer\": \"" WEFT_OL_PRODUCER
		"\", \"schemaURL\": \"" WEFT_OL_SPEC_URL
		"#/$defs/RunEvent\", \"eventType\": \"%s\"",
		type);
}

static void engine_facet(FILE *out)
{
	facet_open(out, true, "processing_engine",
		   "1-1-1/ProcessingEngineRunFacet.json#/$defs/"
		   "ProcessingEngineRunFacet");
	fputs(", \"name\": \"weft\", \"version\": \"" WEFT_VERSION
	      "\", \"openlineageAdapterVersion\": \"" WEFT_VERSION "\"}",
	      out);
}

/* The error facet of a run that ended with a nonzero status. */
static void error_facet(FILE *out, int32_t code)
{
	facet_open(out, false, "errorMessage",
		   "1-0-1/ErrorMessageRunFacet.json#/$defs/"
		   "ErrorMessageRunFacet");
	if (code > 128 && code < 128 + 65)
		fprintf(out,
			", \"message\": \"killed by signal %d (exit status "
			"%d)\"",
			code - 128, code);
	else
		fprintf(out, ", \"message\": \"exited with status %d\"", code);
	/* Required, and not known for a black-box process. */
	fputs(", \"programmingLanguage\": \"unknown\"}", out);
}

static void job_type_facet(FILE *out, const char *type)
{
	fputs(", \"facets\": {", out);
	facet_open(out, true, "jobType",
		   "2-0-4/JobTypeJobFacet.json#/$defs/JobTypeJobFacet");
	fprintf(out,
		", \"processingType\": \"BATCH\", \"integration\": \"WEFT\", "
		"\"jobType\": \"%s\"}}",
		type);
}

/* "run": {...}, "job": {...} of a job's run, for the parent facet. */
static void job_ref(FILE *out, const char *ns, const struct ol_job *j)
{
	char uuid[37];
	weft_ol_run_uuid("job", j->id, uuid);
	fprintf(out, "\"run\": {\"runId\": \"%s\"}, \"job\": {\"namespace\": ",
		uuid);
	json_str(out, ns);
	fputs(", \"name\": ", out);
	job_name(out, j);
	fputc('}', out);
}

static void write_job_event(FILE *out, const char *ns, const struct ol_job *j,
			    bool end)
{
	bool fail = end && j->exit_code != 0;
	event_open(out, end ? j->ended_ns : j->created_ns,
		   !end   ? "START"
		   : fail ? "FAIL"
			  : "COMPLETE");
	char uuid[37];
	weft_ol_run_uuid("job", j->id, uuid);
	fprintf(out, ", \"run\": {\"runId\": \"%s\", \"facets\": {", uuid);
	engine_facet(out);
	if (fail)
		error_facet(out, j->exit_code);
	fputs("}}, \"job\": {\"namespace\": ", out);
	json_str(out, ns);
	fputs(", \"name\": ", out);
	job_name(out, j);
	job_type_facet(out, "JOB");
	fputs("}, \"inputs\": [], \"outputs\": []}", out);
}

/* The parent facet: the task's parent task (a Ray worker's task's
 * worker) when stored, else its job; the root is always the job. */
static void parent_facet(FILE *out, const char *ns, const struct ol_task *t)
{
	facet_open(out, false, "parent",
		   "1-2-0/ParentRunFacet.json#/$defs/ParentRunFacet");
	fputs(", ", out);
	if (t->parent_id) {
		char uuid[37];
		weft_ol_run_uuid("task", t->parent_id, uuid);
		fprintf(out,
			"\"run\": {\"runId\": \"%s\"}, \"job\": "
			"{\"namespace\": ",
			uuid);
		json_str(out, ns);
		fputs(", \"name\": ", out);
		task_job_name(out, t, t->parent_name);
		fputc('}', out);
	} else {
		job_ref(out, ns, &t->job);
	}
	fputs(", \"root\": {", out);
	job_ref(out, ns, &t->job);
	fputs("}}", out);
}

static void write_task_event(FILE *out, const char *ns, const struct ol_task *t,
			     const struct ol_file *files, size_t n,
			     const weft_ol_opts *o, bool end)
{
	bool fail = end && t->exit_code != 0;
	event_open(out, end ? t->ended_ns : t->started_ns,
		   !end   ? "START"
		   : fail ? "FAIL"
			  : "COMPLETE");
	char uuid[37];
	weft_ol_run_uuid("task", t->id, uuid);
	fprintf(out, ", \"run\": {\"runId\": \"%s\", \"facets\": {", uuid);
	engine_facet(out);
	if (t->has_job)
		parent_facet(out, ns, t);
	if (fail)
		error_facet(out, t->exit_code);
	fputs("}}, \"job\": {\"namespace\": ", out);
	json_str(out, ns);
	fputs(", \"name\": ", out);
	task_job_name(out, t, t->name);
	job_type_facet(out, "TASK");
	fputc('}', out);
	write_inputs(out, t, files, n, o);
	if (end)
		write_outputs(out, t, files, n);
	else
		fputs(", \"outputs\": []", out);
	fputc('}', out);
}

static const char *ns_of(const weft_ol_opts *o)
{
	return o && o->ns ? o->ns : WEFT_OL_DEFAULT_NAMESPACE;
}

/* Event kind of the thing ref (jobs.num or runs.num), a line without its
 * newline. */
static int write_event(weft_store *s, int kind, sqlite3_int64 ref,
		       const weft_ol_opts *o, FILE *out)
{
	const char *ns = ns_of(o);
	int err;
	if (kind == OL_JOB_START || kind == OL_JOB_END) {
		struct ol_job j;
		if ((err = job_load(s, ref, &j)))
			return err;
		write_job_event(out, ns, &j, kind == OL_JOB_END);
		ol_job_release(&j);
		return WEFT_OK;
	}
	struct ol_task t;
	struct ol_file *files;
	size_t n;
	weft_ol_opts dflt = {0};
	if (kind == OL_TASK_ANNOUNCED) {
		/* Nothing of its files is known yet. */
		if ((err = announced_load(s, ref, &t)))
			return err;
		write_task_event(out, ns, &t, NULL, 0, o ? o : &dflt, false);
		ol_task_release(&t);
		return WEFT_OK;
	}
	if ((err = task_load(s, ref, &t)))
		return err;
	if ((err = files_load(s, ref, &files, &n))) {
		ol_task_release(&t);
		return err;
	}
	write_task_event(out, ns, &t, files, n, o ? o : &dflt,
			 kind == OL_TASK_END);
	ol_files_free(files, n);
	ol_task_release(&t);
	return WEFT_OK;
}

/* ---- Export ---- */

/* The announcement of a run's task (task_starts.num), 0 when none. */
static sqlite3_int64 announced_of(weft_store *s, sqlite3_int64 run)
{
	sqlite3_stmt *st;
	sqlite3_int64 num = 0;
	if (store_prepare(s,
			  "SELECT s.num FROM tasks t JOIN runs r ON "
			  "r.num = t.run JOIN task_starts s ON s.job = t.job "
			  "AND s.run_id = r.id WHERE t.run = ?1",
			  &st))
		return 0;
	sqlite3_bind_int64(st, 1, run);
	if (sqlite3_step(st) == SQLITE_ROW)
		num = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return num;
}

/* A run's START (as it was sent: from its announcement when there was
 * one) and its end. */
static int export_run(weft_store *s, sqlite3_int64 run, const weft_ol_opts *o,
		      FILE *out)
{
	sqlite3_int64 announced = announced_of(s, run);
	int err = announced ? write_event(s, OL_TASK_ANNOUNCED, announced, o,
					  out)
			    : write_event(s, OL_TASK_START, run, o, out);
	fputc('\n', out);
	if (!err)
		err = write_event(s, OL_TASK_END, run, o, out);
	fputc('\n', out);
	return err;
}

/* Every run the query (bound with ?1 = arg when arg) returns. */
static int export_runs(weft_store *s, const char *sql, sqlite3_int64 arg,
		       const weft_ol_opts *o, FILE *out)
{
	sqlite3_stmt *st;
	int err = store_prepare(s, sql, &st), rc;
	if (err)
		return err;
	sqlite3_bind_int64(st, 1, arg);
	while (!err && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		sqlite3_int64 ref = sqlite3_column_int64(st, 0);
		/* A task announced whose record is not stored (yet, or ever):
		 * its START, as it was sent. */
		if (sqlite3_column_count(st) > 1 && sqlite3_column_int(st, 1)) {
			err = write_event(s, OL_TASK_ANNOUNCED, ref, o, out);
			fputc('\n', out);
		} else {
			err = export_run(s, ref, o, out);
		}
	}
	if (!err && rc != SQLITE_DONE)
		err = WEFT_EDB;
	sqlite3_finalize(st);
	return err;
}

static int export_job(weft_store *s, sqlite3_int64 job, const weft_ol_opts *o,
		      FILE *out)
{
	struct ol_job j;
	int err = job_load(s, job, &j);
	if (err)
		return err;
	write_job_event(out, ns_of(o), &j, false);
	fputc('\n', out);
	err = export_runs(s,
			  "SELECT r.num, 0, r.started_ns FROM tasks t JOIN "
			  "runs r ON r.num = t.run WHERE t.job = ?1 UNION ALL "
			  "SELECT s.num, 1, s.started_ns FROM task_starts s "
			  "WHERE s.job = ?1 AND NOT EXISTS (SELECT 1 FROM "
			  "tasks t JOIN runs r ON r.num = t.run WHERE "
			  "t.job = s.job AND r.id = s.run_id) ORDER BY 3, 2, 1",
			  job, o, out);
	if (!err && j.ended) {
		write_job_event(out, ns_of(o), &j, true);
		fputc('\n', out);
	}
	ol_job_release(&j);
	return err;
}

/* rowid of the thing named: a job by full id, a run by id or prefix. */
static int resolve(weft_store *s, const char *sql, const char *name,
		   sqlite3_int64 *num)
{
	sqlite3_stmt *st;
	int err = store_prepare(s, sql, &st), found = 0, rc;
	if (err)
		return err;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW && found < 2) {
		*num = sqlite3_column_int64(st, 0);
		found++;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return WEFT_EDB;
	return found == 1 ? WEFT_OK : found ? WEFT_EINVAL : WEFT_ENOTFOUND;
}

static int export_all(weft_store *s, const weft_ol_opts *o, FILE *out)
{
	sqlite3_stmt *st;
	int err = store_prepare(s, "SELECT num FROM jobs ORDER BY num", &st);
	int rc;
	if (err)
		return err;
	while (!err && (rc = sqlite3_step(st)) == SQLITE_ROW)
		err = export_job(s, sqlite3_column_int64(st, 0), o, out);
	if (!err && rc != SQLITE_DONE)
		err = WEFT_EDB;
	sqlite3_finalize(st);
	if (err)
		return err;
	/* Runs outside any job (stored by an older weft run). */
	return export_runs(s,
			   "SELECT num FROM runs r WHERE NOT EXISTS (SELECT 1 "
			   "FROM tasks t WHERE t.run = r.num) AND ?1 = ?1 "
			   "ORDER BY started_ns, num",
			   0, o, out);
}

int weft_store_openlineage(weft_store *s, const char *job, const char *run,
			   const weft_ol_opts *o, FILE *out)
{
	s->errmsg[0] = '\0';
	/* One read transaction: one snapshot of a store being written. */
	int err = store_exec(s, "BEGIN");
	if (err)
		return err;
	sqlite3_int64 num = 0;
	if (job) {
		err = resolve(s, "SELECT num FROM jobs WHERE id = ?1", job,
			      &num);
		if (!err)
			err = export_job(s, num, o, out);
	} else if (run) {
		err = resolve(s,
			      "SELECT num FROM runs WHERE id = ?1 UNION ALL "
			      "SELECT num FROM runs WHERE substr(id, 1, "
			      "length(?1)) = ?1 AND id <> ?1 AND NOT EXISTS "
			      "(SELECT 1 FROM runs WHERE id = ?1)",
			      run, &num);
		if (!err)
			err = export_run(s, num, o, out);
	} else {
		err = export_all(s, o, out);
	}
	if (err == WEFT_EDB)
		store_save_errmsg(s);
	sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
	if (!err && (fflush(out) || ferror(out)))
		err = WEFT_EIO;
	return err;
}

/* ---- The outbox ---- */

int weft_store_open_sibling(weft_store *s, weft_store **out)
{
	*out = NULL;
	const char *path = sqlite3_db_filename(s->db, "main");
	if (!path || !path[0])
		return WEFT_EINVAL;
	weft_store *o = calloc(1, sizeof(*o));
	if (!o)
		return WEFT_ENOMEM;
	/* Not weft_store_open: its files are open in this process already,
	 * and closing any descriptor of them (as making them private does)
	 * drops the process's POSIX locks on them, SQLite's included. */
	int rc = store_sqlite_open(path, &o->db, SQLITE_OPEN_READWRITE);
	if (rc == SQLITE_OK) {
		sqlite3_extended_result_codes(o->db, 1);
		sqlite3_busy_timeout(o->db, WEFT_STORE_BUSY_TIMEOUT_MS);
		rc = sqlite3_exec(o->db, "PRAGMA foreign_keys = ON", NULL, NULL,
				  NULL);
	}
	if (rc != SQLITE_OK) {
		weft_store_close(o);
		return rc == SQLITE_NOMEM ? WEFT_ENOMEM : WEFT_EDB;
	}
	*out = o;
	return WEFT_OK;
}

int weft_ol_sink_add(weft_store *s, const char *dest, int64_t now_ns,
		     int64_t *sink)
{
	sqlite3_stmt *st;
	/* The sink and the triggers that queue its events in one
	 * transaction: whatever another connection stores is queued for it
	 * from here on, and nothing before. */
	if (store_exec(s, "BEGIN IMMEDIATE"))
		return WEFT_EDB;
	int err =
		store_exec(s, store_ol_triggers)
			? WEFT_EDB
			: store_prepare(s,
					"INSERT INTO ol_sinks (dest, added_ns) "
					"VALUES (?1, ?2) ON CONFLICT (dest) DO "
					"UPDATE SET dest = dest RETURNING id",
					&st);
	if (!err) {
		store_bind_bytes(st, 1, dest);
		sqlite3_bind_int64(st, 2, now_ns);
		err = step_one(st) ? WEFT_EDB : WEFT_OK;
		if (!err)
			*sink = sqlite3_column_int64(st, 0);
		sqlite3_finalize(st);
	}
	if (!err && store_exec(s, "COMMIT"))
		err = WEFT_EDB;
	if (err)
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	return err;
}

/* The next row of the sink that is ready. A task whose parent task is
 * not stored yet waits (a Ray worker's record comes after its tasks'),
 * so that its events name the parent they will always name; at its job's
 * end it goes with the job as its parent. An announced START waits
 * likewise, for its parent's announcement or record. */
static int outbox_drop(weft_store *s, int64_t sink, int64_t seq);

static const char next_sql[] =
	"SELECT o.seq, o.kind, o.ref FROM ol_outbox o "
	"LEFT JOIN tasks t ON o.kind IN (2, 3) AND t.run = o.ref "
	"LEFT JOIN task_starts s ON o.kind = 4 AND s.num = o.ref "
	"LEFT JOIN jobs j ON j.num = coalesce(t.job, s.job) "
	"WHERE o.sink = ?1 AND o.seq > ?2 AND o.refused = 0 AND (o.kind < 2 "
	"OR coalesce(t.parent, s.parent) IS NULL OR j.state = 'ended' OR "
	"EXISTS (SELECT 1 FROM tasks t2 WHERE t2.job = j.num AND "
	"t2.task_id = coalesce(t.parent, s.parent)) OR (o.kind = 4 AND "
	"EXISTS (SELECT 1 FROM task_starts s2 WHERE s2.job = j.num AND "
	"s2.task_id = s.parent))) "
	"ORDER BY o.seq LIMIT 1";

int weft_ol_outbox_next(weft_store *s, int64_t sink, const weft_ol_opts *o,
			int64_t *seq, char **json, size_t *len)
{
	return weft_ol_outbox_after(s, sink, o, 0, seq, json, len);
}

int weft_ol_outbox_after(weft_store *s, int64_t sink, const weft_ol_opts *o,
			 int64_t after, int64_t *seq, char **json, size_t *len)
{
	*json = NULL;
	*len = 0;
	s->errmsg[0] = '\0';
	int err = store_exec(s, "BEGIN");
	if (err)
		return err;
	sqlite3_stmt *st;
	for (;;) {
		if ((err = store_prepare(s, next_sql, &st)))
			break;
		sqlite3_bind_int64(st, 1, sink);
		sqlite3_bind_int64(st, 2, after);
		err = step_one(st);
		*seq = sqlite3_column_int64(st, 0);
		int kind = sqlite3_column_int(st, 1);
		sqlite3_int64 ref = sqlite3_column_int64(st, 2);
		sqlite3_finalize(st);
		if (err)
			break;
		FILE *m = open_memstream(json, len);
		if (!m) {
			err = WEFT_ENOMEM;
			break;
		}
		err = write_event(s, kind, ref, o, m);
		if (fclose(m) && !err)
			err = WEFT_ENOMEM;
		if (err != WEFT_ENOTFOUND)
			break;
		/* What it was about is gone: nothing to send. */
		free(*json);
		*json = NULL;
		sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
		if ((err = outbox_drop(s, sink, *seq)) ||
		    (err = store_exec(s, "BEGIN")))
			return err;
	}
	if (err == WEFT_EDB)
		store_save_errmsg(s);
	sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
	if (err) {
		free(*json);
		*json = NULL;
		*len = 0;
	}
	return err;
}

/* Run sql with ?1 = sink, ?2 = seq, ?3 = text, ?4 = time in one
 * transaction. */
static int outbox_update(weft_store *s, const char *const *sql, size_t nsql,
			 int64_t sink, int64_t seq, const char *text,
			 int64_t ns)
{
	int err = store_exec(s, "BEGIN IMMEDIATE");
	for (size_t i = 0; i < nsql && !err; i++) {
		sqlite3_stmt *st;
		if ((err = store_prepare(s, sql[i], &st)))
			break;
		int np = sqlite3_bind_parameter_count(st);
		sqlite3_bind_int64(st, 1, sink);
		if (np >= 2)
			sqlite3_bind_int64(st, 2, seq);
		if (np >= 3)
			store_bind_bytes(st, 3, text);
		if (np >= 4)
			sqlite3_bind_int64(st, 4, ns);
		err = sqlite3_step(st) == SQLITE_DONE ? WEFT_OK : WEFT_EDB;
		sqlite3_finalize(st);
	}
	if (!err && store_exec(s, "COMMIT"))
		err = WEFT_EDB;
	if (err) {
		store_save_errmsg(s);
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	}
	return err;
}

static int outbox_drop(weft_store *s, int64_t sink, int64_t seq)
{
	static const char *const sql[] = {
		"DELETE FROM ol_outbox WHERE sink = ?1 AND seq = ?2",
	};
	return outbox_update(s, sql, 1, sink, seq, NULL, 0);
}

int weft_ol_outbox_sent(weft_store *s, int64_t sink, int64_t seq)
{
	static const char *const sql[] = {
		"UPDATE ol_sinks SET sent = sent + (SELECT count(*) FROM "
		"ol_outbox WHERE sink = ?1 AND seq = ?2) WHERE id = ?1",
		"DELETE FROM ol_outbox WHERE sink = ?1 AND seq = ?2",
	};
	return outbox_update(s, sql, 2, sink, seq, NULL, 0);
}

int weft_ol_outbox_failed(weft_store *s, int64_t sink, int64_t seq,
			  bool for_good, const char *why, int64_t now_ns)
{
	static const char *const sql[] = {
		"UPDATE ol_sinks SET last_error = ?3, last_error_ns = ?4 "
		"WHERE id = ?1 AND ?2 = ?2",
		"UPDATE ol_outbox SET attempts = attempts + 1 WHERE sink = ?1 "
		"AND seq = ?2",
		"UPDATE ol_outbox SET refused = 1 WHERE sink = ?1 AND seq = ?2",
	};
	return outbox_update(s, sql, for_good ? 3 : 2, sink, seq, why, now_ns);
}

int weft_ol_outbox_status(weft_store *s, weft_ol_sink_status **out, size_t *n)
{
	*out = NULL;
	*n = 0;
	sqlite3_stmt *st;
	int err = store_prepare(
		s,
		"SELECT k.dest, k.sent, k.last_error, k.last_error_ns, "
		"(SELECT count(*) FROM ol_outbox o WHERE o.sink = k.id AND "
		"o.refused = 0), (SELECT count(*) FROM ol_outbox o WHERE "
		"o.sink = k.id AND o.refused = 1) FROM ol_sinks k ORDER BY "
		"k.id",
		&st);
	if (err)
		return err;
	size_t cap = 0;
	int rc;
	while (!err && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		if ((err = store_grow((void **)out, &cap, *n, sizeof(**out))))
			break;
		weft_ol_sink_status *k = &(*out)[(*n)++];
		memset(k, 0, sizeof(*k));
		err = col_str(st, 0, true, &k->dest);
		k->sent = (uint64_t)sqlite3_column_int64(st, 1);
		if (!err)
			err = col_str(st, 2, false, &k->last_error);
		k->last_error_ns = sqlite3_column_int64(st, 3);
		k->waiting = (uint64_t)sqlite3_column_int64(st, 4);
		k->refused = (uint64_t)sqlite3_column_int64(st, 5);
	}
	if (!err && rc != SQLITE_DONE)
		err = WEFT_EDB;
	sqlite3_finalize(st);
	if (err) {
		weft_ol_sink_status_free(*out, *n);
		*out = NULL;
		*n = 0;
	}
	return err;
}

void weft_ol_sink_status_free(weft_ol_sink_status *st, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(st[i].dest);
		free(st[i].last_error);
	}
	free(st);
}
