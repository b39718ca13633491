/*
 * cmd_export.c - `weft export`: the lineage in a format other tools read.
 * Each format is one row of the table below, a library function of the
 * store (DESIGN.md: store/ owns exports); this file parses, picks the
 * row, and says what went wrong.
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

/* Write the export of sc to path (NULL: standard output). 0, or 1 after
 * saying why not. */
typedef int (*export_fn)(weft_store *s, const weft_export_scope *sc,
			 const char *path);

/* A single document to a file or standard output. The file is written
 * beside its final name and renamed over it once whole, so a failed
 * export never leaves half a document under the name asked for. */
static int export_document(weft_store *s, const weft_export_scope *sc,
			   const char *path,
			   int (*fn)(weft_store *, const weft_export_scope *,
				     FILE *, char *))
{
	char err[WEFT_EXPORT_ERR_BYTES] = "";
	if (!path) {
		int rc = fn(s, sc, stdout, err);
		if (rc)
			cli_error("%s", err);
		return rc ? 1 : 0;
	}
	size_t n = strlen(path) + 16;
	char *tmp = malloc(n);
	if (!tmp) {
		cli_error("out of memory");
		return 1;
	}
	snprintf(tmp, n, "%s.tmp%ld", path, (long)getpid());
	FILE *out = fopen(tmp, "w");
	if (!out) {
		cli_error("cannot create '%s': %s", tmp, strerror(errno));
		free(tmp);
		return 1;
	}
	int rc = fn(s, sc, out, err);
	if (fclose(out) && !rc) {
		snprintf(err, sizeof(err), "cannot write '%s': %s", tmp,
			 strerror(errno));
		rc = WEFT_EIO;
	}
	if (!rc && rename(tmp, path)) {
		snprintf(err, sizeof(err), "cannot rename '%s' to '%s': %s",
			 tmp, path, strerror(errno));
		rc = WEFT_EIO;
	}
	if (rc) {
		unlink(tmp);
		cli_error("%s", err);
	}
	free(tmp);
	return rc ? 1 : 0;
}

static int export_prov(weft_store *s, const weft_export_scope *sc,
		       const char *path)
{
	return export_document(s, sc, path, weft_export_prov);
}

static int export_rocrate(weft_store *s, const weft_export_scope *sc,
			  const char *path)
{
	char err[WEFT_EXPORT_ERR_BYTES] = "";
	if (weft_export_rocrate(s, sc, path, stdout, err)) {
		cli_error("%s", err);
		return 1;
	}
	return 0;
}

static const struct export_format {
	const char *name;
	export_fn fn;
	const char *summary;
} formats[] = {
	{"prov", export_prov, "W3C PROV-JSON: entities, activities, agents"},
	{"rocrate", export_rocrate,
	 "RO-Crate 1.1, Process Run Crate: -o DIR or -o FILE.zip"},
};

#define NFORMATS (sizeof(formats) / sizeof(formats[0]))

static void export_help(FILE *out)
{
	fputs("usage: weft export --format FORMAT [--job ID | RUN] "
	      "[-o FILE] [--store PATH]\n\n"
	      "Write the lineage of every recorded run, of one job or of one "
	      "run\n(an id or a unique prefix) in a format other tools "
	      "read.\nFiles are named with their hashes and sizes, never "
	      "copied.\n\n"
	      "  --format F   one of:\n",
	      out);
	for (size_t i = 0; i < NFORMATS; i++)
		fprintf(out, "                 %-8s %s\n", formats[i].name,
			formats[i].summary);
	fputs("  --job ID     only this job's tasks (an id or a unique "
	      "prefix)\n"
	      "  -o FILE      write there (default: standard output)\n"
	      "  --store PATH the store to read (default: the project's)\n",
	      out);
}

static bool hide_system(const char *path)
{
	return cli_is_system_path(path);
}

int cli_dag_picture(weft_store *s, const weft_dag *d, const char *format,
		    bool all)
{
	char err[WEFT_EXPORT_ERR_BYTES] = "";
	int f = strcmp(format, "html") ? WEFT_RENDER_SVG : WEFT_RENDER_HTML;
	if (weft_render_dag(s, d, f, all ? NULL : hide_system, stdout, err)) {
		cli_error("cannot draw the DAG: %s", err);
		return 1;
	}
	return 0;
}

int cli_output_to(const char *path)
{
	if (path && !freopen(path, "w", stdout)) {
		cli_error("cannot write '%s': %s", path, strerror(errno));
		return 1;
	}
	return 0;
}

int cli_output_done(const char *path, int rc)
{
	if (path && (fflush(stdout) || ferror(stdout))) {
		cli_error("cannot write '%s': %s", path, strerror(errno));
		return 1;
	}
	return rc;
}

int cmd_export(int argc, char **argv)
{
	static const struct option opts[] = {
		{"format", required_argument, NULL, 'f'},
		{"job", required_argument, NULL, 'j'},
		{"output", required_argument, NULL, 'o'},
		{"store", required_argument, NULL, 's'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *format = NULL, *job = NULL, *store_path = NULL;
	const char *path = NULL;
	int c;
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, ":f:j:o:s:h", opts, NULL)) != -1) {
		switch (c) {
		case 'f':
			format = optarg;
			break;
		case 'j':
			job = optarg;
			break;
		case 'o':
			path = optarg;
			break;
		case 's':
			store_path = optarg;
			break;
		case 'h':
			export_help(stdout);
			return 0;
		default:
			return cli_option_error("export", argv, c);
		}
	}
	const char *run = optind < argc ? argv[optind++] : NULL;
	if (optind < argc)
		return cli_usage_error("export", "unexpected argument '%s'",
				       argv[optind]);
	if (!format)
		return cli_usage_error("export", "--format is required");
	const struct export_format *f = NULL;
	for (size_t i = 0; i < NFORMATS && !f; i++)
		if (strcmp(formats[i].name, format) == 0)
			f = &formats[i];
	if (!f) {
		cli_usage_error("export", "unknown format '%s'", format);
		export_help(stderr);
		return WEFT_EXIT_USAGE;
	}
	if (path && !path[0])
		return cli_usage_error("export", "-o needs a file name");
	char job_id[WEFT_JOB_ID_BYTES + 1];
	weft_store *store = cli_open_store_job(store_path, job, job_id);
	if (!store)
		return 1;
	weft_export_scope sc = {job ? job_id : NULL, run};
	int rc = f->fn(store, &sc, path);
	weft_store_close(store);
	return rc;
}
