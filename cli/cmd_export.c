/*
 * cmd_export.c - `weft export`: the recorded lineage in a format other
 * tools read. One table of formats; each entry parses nothing of its own
 * and calls one library function (the store owns exports, DESIGN.md).
 *
 * Output goes to a temporary file beside -o FILE, renamed over it once
 * complete: a failed export never leaves half a document under the name
 * a consumer watches.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "config.h"

/* What one export is asked for. */
struct export_req {
	weft_store *store;
	const char *job;  /* full id, or NULL */
	const char *run;  /* id or prefix, or NULL */
	const char *path; /* -o, or NULL */
	const char *store_path;
	const char *ns;
	bool all;
	FILE *out; /* where the document goes (not for a format that writes
		      path itself) */
};

static int export_openlineage(const struct export_req *r)
{
	if (r->job && r->run) {
		cli_error("--format openlineage exports a job or a run, not "
			  "both");
		return WEFT_EXIT_USAGE;
	}
	weft_ol_opts o = {.ns = r->ns, .system_inputs = r->all};
	int err = weft_store_openlineage(r->store, r->job, r->run, &o, r->out);
	if (err == WEFT_ENOTFOUND || err == WEFT_EINVAL) {
		cli_error("%s '%s' %s", r->job ? "job" : "run",
			  r->job ? r->job : r->run,
			  err == WEFT_EINVAL
				  ? "is ambiguous: give more of its id"
				  : "is not in the store");
		return 1;
	}
	if (err) {
		cli_error("cannot export OpenLineage events: %s",
			  err == WEFT_EIO ? strerror(errno)
					  : weft_store_errmsg(r->store));
		return 1;
	}
	return 0;
}

static int export_prov(const struct export_req *r)
{
	char err[WEFT_EXPORT_ERR_BYTES] = "";
	weft_export_scope sc = {r->job, r->run};
	if (weft_export_prov(r->store, &sc, r->out, err)) {
		cli_error("%s", err);
		return 1;
	}
	return 0;
}

/* The crate is a directory or a zip at path, written by the library
 * (whole or not at all), or the metadata alone to standard output. */
static int export_rocrate(const struct export_req *r)
{
	char err[WEFT_EXPORT_ERR_BYTES] = "";
	weft_export_scope sc = {r->job, r->run};
	if (weft_export_rocrate(r->store, &sc, r->path, stdout, err)) {
		cli_error("%s", err);
		return 1;
	}
	return 0;
}

/* json and dot are `weft dag`'s, run as it with stdout on the output. */
static int export_dag(const struct export_req *r, const char *format)
{
	if (r->run) {
		cli_error("--format %s exports a job (--job ID) or the whole "
			  "store, not one run",
			  format);
		return WEFT_EXIT_USAGE;
	}
	char *argv[8] = {"dag", "--format", (char *)format};
	int argc = 3;
	if (r->job) {
		argv[argc++] = "--job";
		argv[argc++] = (char *)r->job;
	}
	if (r->store_path) {
		argv[argc++] = "--store";
		argv[argc++] = (char *)r->store_path;
	}
	fflush(stdout);
	int saved = dup(STDOUT_FILENO);
	if (saved < 0 || dup2(fileno(r->out), STDOUT_FILENO) < 0) {
		cli_error("cannot redirect the output: %s", strerror(errno));
		if (saved >= 0)
			close(saved);
		return 1;
	}
	int rc = cmd_dag(argc, argv);
	fflush(stdout);
	dup2(saved, STDOUT_FILENO);
	close(saved);
	return rc;
}

static int export_json(const struct export_req *r)
{
	return export_dag(r, "json");
}

static int export_dot(const struct export_req *r)
{
	return export_dag(r, "dot");
}

static const struct export_format {
	const char *name;
	int (*fn)(const struct export_req *r);
	const char *what;
	bool writes_path; /* -o is the library's to write, not a file's */
} formats[] = {
	{"openlineage", export_openlineage,
	 "OpenLineage 2-0-2 run events, one JSON object a line"},
	{"json", export_json, "the DAG as `weft dag --format json`"},
	{"dot", export_dot, "the DAG as `weft dag --format dot`"},
	{"prov", export_prov, "W3C PROV-JSON: entities, activities, agents"},
	{"rocrate", export_rocrate,
	 "RO-Crate 1.1, Process Run Crate: -o DIR or -o FILE.zip", true},
};
#define NFORMATS (sizeof(formats) / sizeof(formats[0]))

static void export_help(void)
{
	fputs("usage: weft export --format FORMAT [--job ID | RUN] "
	      "[-o FILE]\n"
	      "                   [--store PATH] [--namespace NS] [--all]\n\n"
	      "Write the recorded lineage of a job (--job), of one run (RUN:\n"
	      "an id or a unique prefix) or of the whole store in FORMAT:\n\n",
	      stdout);
	for (size_t i = 0; i < NFORMATS; i++)
		printf("  %-12s %s\n", formats[i].name, formats[i].what);
	fputs("\n  --job ID       one job (an id or a unique prefix)\n"
	      "  -o FILE        write FILE (complete, or not at all) instead "
	      "of stdout;\n"
	      "                 rocrate: a directory, or a zip when FILE ends "
	      "in .zip\n"
	      "  --store PATH   the store to read (default: the project's)\n"
	      "  --namespace NS openlineage: the jobs' namespace (default:\n"
	      "                 openlineage.namespace, else \"weft\")\n"
	      "  --all          openlineage: also inputs in system "
	      "directories\n"
	      "                 (/usr, /lib, /etc, ...)\n",
	      stdout);
}

/* Open the output: stdout, or a temporary file beside path. */
static FILE *open_out(const char *path, char **tmp)
{
	*tmp = NULL;
	if (!path || !strcmp(path, "-"))
		return stdout;
	if (asprintf(tmp, "%s.tmp.%d", path, (int)getpid()) < 0) {
		*tmp = NULL;
		cli_error("out of memory");
		return NULL;
	}
	FILE *f = fopen(*tmp, "wx");
	if (!f) {
		cli_error("cannot write %s: %s", *tmp, strerror(errno));
		free(*tmp);
		*tmp = NULL;
	}
	return f;
}

/* Close the output; the temporary file replaces path when ok. */
static int close_out(FILE *f, const char *path, char *tmp, bool ok)
{
	if (f == stdout) {
		if (fflush(stdout) == 0)
			return ok ? 0 : 1;
		cli_error("cannot write the output: %s", strerror(errno));
		return 1;
	}
	if (fclose(f) != 0 && ok) {
		cli_error("cannot write %s: %s", tmp, strerror(errno));
		ok = false;
	}
	if (ok && rename(tmp, path) != 0) {
		cli_error("cannot rename %s to %s: %s", tmp, path,
			  strerror(errno));
		ok = false;
	}
	if (!ok)
		unlink(tmp);
	free(tmp);
	return ok ? 0 : 1;
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

/* The file -o PATH is written as until it is whole (cli_output_done). */
static char output_tmp[PATH_MAX + 32];

int cli_output_to(const char *path)
{
	if (!path)
		return 0;
	snprintf(output_tmp, sizeof(output_tmp), "%s.tmp.%d", path,
		 (int)getpid());
	if (!freopen(output_tmp, "wx", stdout)) {
		cli_error("cannot write '%s': %s", output_tmp, strerror(errno));
		output_tmp[0] = '\0';
		return 1;
	}
	return 0;
}

int cli_output_done(const char *path, int rc)
{
	if (!path || !output_tmp[0])
		return rc;
	if (fflush(stdout) || ferror(stdout)) {
		cli_error("cannot write '%s': %s", output_tmp, strerror(errno));
		rc = 1;
	}
	if (rc == 0 && rename(output_tmp, path) != 0) {
		cli_error("cannot rename '%s' to '%s': %s", output_tmp, path,
			  strerror(errno));
		rc = 1;
	}
	if (rc != 0)
		unlink(output_tmp);
	output_tmp[0] = '\0';
	return rc;
}

static const cli_cmd export_cmd = {
	.name = "export",
	.help_fn = export_help,
	.max_args = 1,
};

int cmd_export(int argc, char **argv)
{
	const char *format = NULL, *output = NULL, *ns = NULL;
	struct export_req r = {0};
	cli_store_opts so = {0};
	const cli_opt opts[] = {
		{"format", 'f', CLI_STRING, &format},
		CLI_STORE_OPTS(&so),
		{"output", 'o', CLI_STRING, &output},
		{"namespace", 'n', CLI_STRING, &ns},
		{"all", 'a', CLI_FLAG, &r.all},
		{NULL},
	};
	int c = cli_parse(&export_cmd, opts, argc, argv);
	if (c != CLI_GO)
		return c;
	if (optind < argc)
		r.run = argv[optind];
	if (!format)
		return cli_usage_error("export", "--format is required");
	const struct export_format *fmt = NULL;
	for (size_t i = 0; i < NFORMATS && !fmt; i++)
		if (!strcmp(formats[i].name, format))
			fmt = &formats[i];
	if (!fmt)
		return cli_usage_error("export",
				       "unknown format '%s' (expected "
				       "openlineage, json, dot, prov or "
				       "rocrate)",
				       format);
	if (output && !output[0])
		return cli_usage_error("export", "-o needs a file name");
	weft_config cfg;
	if (!ns) {
		if (config_load(&cfg, NULL, false, stderr) != 0)
			return WEFT_EXIT_USAGE;
		ns = cfg.ol_namespace[0] ? cfg.ol_namespace : NULL;
	} else if (weft_ol_namespace_check(ns) != WEFT_OK) {
		return cli_usage_error("export",
				       "--namespace '%s': expected 1 to %d "
				       "printable ASCII characters without "
				       "spaces",
				       ns, WEFT_OL_MAX_NAMESPACE_BYTES);
	}
	r.ns = ns;
	r.store = cli_store_open(&so);
	if (!r.store)
		return 1;
	r.store_path = so.path;
	r.job = so.id;
	r.path = output;
	char *tmp = NULL;
	r.out = fmt->writes_path ? stdout : open_out(output, &tmp);
	int rc = 1;
	if (fmt->writes_path) {
		rc = fmt->fn(&r);
	} else if (r.out) {
		rc = fmt->fn(&r);
		rc = close_out(r.out, output, tmp, rc == 0) ? (rc ? rc : 1)
							    : rc;
	}
	weft_store_close(r.store);
	return rc;
}
