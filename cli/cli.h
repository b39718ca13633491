/*
 * cli.h - private to the weft executable: the subcommands, and the small
 * output helpers they share (JSON, text escaping, the project's store).
 */
#ifndef WEFT_CLI_H
#define WEFT_CLI_H

#include <stdbool.h>
#include <stdio.h>
#include <unistd.h> /* optind: where cli_parse left the arguments */

#include <weft/backends.h>
#include <weft/schema.h>
#include <weft/store.h>
#include <weft/wrap.h> /* the run pipeline; weft's exit statuses */

int cmd_run(int argc, char **argv);
int cmd_show(int argc, char **argv);
int cmd_dag(int argc, char **argv);
int cmd_export(int argc, char **argv);
/* The openlineage.* settings of cfg into o's ol_* fields, the API key
 * read into key now (cmd_coordinator.c): a bad key file is said before
 * anything runs. -1 after saying why not. */
struct weft_config;
struct weft_coordinator_opts;
int cli_openlineage_opts(const struct weft_config *cfg,
			 struct weft_coordinator_opts *o, char *key,
			 size_t keysz);
int cmd_lineage(int argc, char **argv);
int cmd_stale(int argc, char **argv);
int cmd_diff(int argc, char **argv);
int cmd_rerun(int argc, char **argv);
int cmd_tracer(int argc, char **argv);
int cmd_agent(int argc, char **argv);
int cmd_wrap(int argc, char **argv);
int cmd_flush(int argc, char **argv);
int cmd_job(int argc, char **argv);
int cmd_submit(int argc, char **argv);
int cmd_coordinator(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_pull(int argc, char **argv);
int cmd_task_collect(int argc, char **argv); /* cmd_collect.c */

/* "weft: " + message on stderr. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Print "try 'weft CMD --help'" after a usage error; returns
 * WEFT_EXIT_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* ---- Options (args.c) ---- */

/* What an option does with its value, and the type of what its to points
 * at. */
enum cli_opt_kind {
	CLI_FLAG,    /* bool: true */
	CLI_UNSET,   /* bool: false (--up beside --down) */
	CLI_SET,     /* int: value (--ray 1, --no-ray 0) */
	CLI_COUNT,   /* int: one more each time (-v -v) */
	CLI_STRING,  /* const char *: the value */
	CLI_SECONDS, /* int: ms from seconds, 0 to the ship timeout's max */
	CLI_INT,     /* int: a number from min to max */
	CLI_CALL,    /* anything: call(cmd, "--name", value, to) */
};

/* One option of a command; a table of them ends with {NULL}. */
typedef struct cli_opt {
	const char *name; /* long name, without "--" */
	char letter;	  /* short letter, 0 for none */
	enum cli_opt_kind kind;
	void *to;
	int value;	      /* CLI_SET */
	long long min, max;   /* CLI_INT */
	const char *expect;   /* CLI_INT: "expected ..." (NULL: min to max) */
	/* CLI_CALL: 0, or WEFT_EXIT_USAGE after the usage error. */
	int (*call)(const char *cmd, const char *opt, const char *arg,
		    void *to);
} cli_opt;

/* A command line but its options: its help (-h and --help are every
 * command's), and how many arguments follow the options. */
typedef struct cli_cmd {
	const char *name; /* in messages: "dag", "tracer check" */
	const char *help; /* what --help prints, unless help_fn does */
	void (*help_fn)(void);
	/* Options end at the first argument: a command to run follows. */
	bool stop_at_arg;
	/* More arguments are "unexpected" (CLI_ANY_ARGS: the command checks). */
	int max_args;
	/* The usage error when no argument is given (NULL: none needed). */
	const char *missing;
} cli_cmd;

#define CLI_ANY_ARGS (-1)

/* What cli_parse returns when the command goes on. */
#define CLI_GO (-1)

/* Parse argv[1..argc) by the table opts (ended by {NULL}). CLI_GO: go on, the arguments at
 * argv[optind..argc). Otherwise the command is over and exits with what
 * it returns: 0 after --help, WEFT_EXIT_USAGE after a usage error. */
int cli_parse(const cli_cmd *cmd, const cli_opt *opts, int argc,
	      char **argv);

/* --store PATH and --job ID of a command that reads a store. */
typedef struct cli_store_opts {
	const char *path, *job; /* as given, NULL when not */
	const char *id;		/* the job's whole id once opened, or NULL */
	char job_id[WEFT_JOB_ID_BYTES + 1];
	/* Once opened: the store's directory (the project's .weft, or the
	 * one --store names). */
	char dir[WEFT_MAX_PATH_BYTES + 16];
} cli_store_opts;

/* Their rows in a command's option table. */
#define CLI_STORE_OPTS(so)                                                   \
	{"job", 'j', CLI_STRING, &(so)->job},                                \
		{"store", 's', CLI_STRING, &(so)->path}

/* The store so names (cli_open_store_at, never created) with so->id the
 * job --job resolves to. NULL after saying why. */
weft_store *cli_store_open(cli_store_opts *so);

/* The directory path is in ("." for a bare name, "/" for one in the root)
 * into dir: the project of a .weft, the store directory of a store file. */
void cli_dir_of(const char *path, char *dir, size_t dirsz);

/* Open the store of the project around the working directory. With
 * create, make ./.weft when no project is found. On failure prints why and
 * returns NULL. weft_dir (may be NULL) receives the .weft path. */
weft_store *cli_open_store(bool create, char *weft_dir, size_t weft_dir_sz);

/* The store at path, or the project's when path is NULL (cmd_status.c).
 * Without create, a store that does not exist is an error (reading
 * commands never leave an empty store behind). On failure prints why and
 * returns NULL. */
weft_store *cli_open_store_at(const char *path, bool create);
/* A job id or unique prefix of one in s into out; -1 after saying why
 * not. */
int cli_resolve_job(weft_store *s, const char *text,
		    char out[WEFT_JOB_ID_BYTES + 1]);
/* The JSON key of a reject reason ("bad_signature"; NULL for
 * WEFT_REJECT_NONE), as status and pull print them (cmd_status.c). */
const char *cli_reject_key(int reason);
/* A job's incomplete tasks as a JSON array of {"id", "name", "node",
 * "parts_stored", "parts_expected"} (cmd_status.c; job show uses it). */
void json_status_tasks(FILE *out, const weft_status_job *j);
/* A job's refused fragments as JSON fields after others: ', "refused": N,
 * "refused_tasks": [{"id", "name", "node" (null when the fragment did not
 * decode), "writer", "seq", "reason", "detail"}]' (cmd_status.c; job
 * show and dag use it). */
void json_status_refusals(FILE *out, const weft_status_job *j);
/* The same as text lines: "  REFUSED: N fragments ..." and one line per
 * task; nothing when none was refused. */
void text_status_refusals(FILE *out, const weft_status_job *j);
/* Read job's status from s for the two above: *st owned by the caller
 * (weft_status_release) when 0; -1 when it cannot be read. */
int cli_job_status(weft_store *s, const char *job, weft_status *st);

/* ---- Tracing and shipping: worker-wrap (weft/wrap.h) ---- */


/* Paths of the operating system (/usr, /lib, /etc, ...): shared libraries
 * and locale files every run reads. Text views fold them away unless
 * asked; JSON always has them. */
bool cli_is_system_path(const char *path);

/* ---- JSON output ---- */

/* JSON strings are written by weft_json_string (weft/store.h): bytes
 * that are not valid UTF-8 as lone surrogates U+DC80..U+DCFF ("\udcXX"
 * for byte XX), the convention of Python's "surrogateescape": reversible,
 * and os.fsencode() restores the original bytes. (No json_string here:
 * the executable's own would shadow jansson's, which libweft_ray uses.) */
/* A hash as "blake2b-256:<hex>", or null. */
void json_hash_or_null(FILE *out, bool has, const uint8_t hash[32]);
/* ", \"exe_hash\": ..., \"env_state\": ..., \"env\": {...}" of a process
 * (nothing for records older than schema 4). */
void json_process_deps(FILE *out, const weft_process_rec *p);
/* weft_json_string, or null for NULL. */
void json_string_or_null(FILE *out, const char *s);
/* ", \"key\": " and s as by json_string_or_null: a member after others. */
void json_key_string(FILE *out, const char *key, const char *s);
/* lead, then "{\"key\": " and the string s: an object of an array opened
 * with its first member (lead: what goes before the element, as
 * i ? ", " : ""). */
void json_object_open(FILE *out, const char *lead, const char *key,
		      const char *s);
/* The n strings of v as JSON strings separated by ", " (no brackets). */
void json_strings(FILE *out, char *const *v, size_t n);
/* One difference of weft diff or rerun --check, as the fields of its
 * JSON object (no braces): "section", "change", "name", "a", "b". */
void json_diff_item_fields(FILE *out, const weft_diff_item *x);
/* Length of the whole, valid UTF-8 sequence at s (at most avail bytes), or
 * 0 when there is none. */
size_t json_utf8_len(const unsigned char *s, size_t avail);
void json_report(FILE *out, const weft_report *r);
void json_preflight(FILE *out, const weft_preflight *p);
/* The `check auto` document: {"backend": "auto", "ok", "selected_backend",
 * "summary", "command_checked", "results": [each backend's preflight]}.
 * selected is an index into results, or -1 (null). command may be NULL. */
void json_preflight_auto(FILE *out, const weft_preflight *results, size_t n,
			 int selected, const char *summary,
			 const char *command);
void json_dag(FILE *out, const weft_dag *d);

/* A task's parts as JSON fields after others: ", "parts_stored": N,
 * "parts_expected": M, "complete": B" (null, null, true outside a job). */
void json_parts(FILE *out, uint32_t stored, uint32_t expected);
/* ", INCOMPLETE: N of M parts stored" when stored < expected, else
 * nothing: what text views put beside a task. */
void text_parts(FILE *out, uint32_t stored, uint32_t expected);
/* "  " and the first width characters of a hash as text: what text views
 * show of it. */
void text_hash(FILE *out, const uint8_t hash[32], int width);
/* Why a weak edge is weak, as text views put beside it. */
void text_weak(FILE *out, bool write);

/* ---- Pictures and output files (cmd_export.c) ---- */

/* `weft dag --format svg|html`: d laid out by the store's renderer,
 * system inputs nobody wrote left out unless all. 0, or 1 after saying
 * why. */
int cli_dag_picture(weft_store *s, const weft_dag *d, const char *format,
		    bool all);
/* -o PATH of a printing command: standard output goes to a file beside
 * path from here on (nothing when path is NULL), which replaces path only
 * once whole. 0, or 1 after saying why not. */
int cli_output_to(const char *path);
/* At the end of such a command, on every path out once cli_output_to
 * succeeded: when rc is 0 and everything was written, the file becomes
 * path; otherwise it is removed and path is left as it was. rc, or 1
 * (said) when what was written could not be. */
int cli_output_done(const char *path, int rc);

/* ---- Progress on a terminal (progress.c) ---- */

/* One line on stderr saying how far a long piece of work has come: drawn
 * only on a terminal, never with --json, and only once the work has run
 * past a second; erased at the end. */
typedef struct cli_progress {
	const char *what, *unit; /* "verifying", "fragments" */
	bool on, drawn;
	int64_t start_ms, show_ms, drawn_ms;
	uint64_t done, total, bytes;
} cli_progress;

void cli_progress_begin(cli_progress *p, const char *what, const char *unit,
			bool json);
/* The next phase of the same work ("hashing", then "storing"): counts and
 * rate start again, the line still appears only a second after begin. */
void cli_progress_then(cli_progress *p, const char *what, const char *unit);
/* done of total units (total 0: not known), bytes so far (0: not shown). */
void cli_progress_update(cli_progress *p, uint64_t done, uint64_t total,
			 uint64_t bytes);
/* cli_progress_update with the progress as arg: the callback libraries
 * take (weft_progress_fn). */
void cli_progress_fn(void *arg, uint64_t done, uint64_t total, uint64_t bytes);
/* Take the line away before printing something else on stderr (NULL: the
 * one shown now; whatever weft says through weft_say does this); the next
 * update draws it again. */
void cli_progress_erase(cli_progress *p);

void cli_progress_end(cli_progress *p);
/* With -v: what was hashed while the run ran (weft_prehash_start), one
 * line on stderr; nothing for NULL. */
struct weft_prehash;
void cli_print_prehash(const struct weft_prehash *p);

/* ---- Escaping strings from outside (escape.c) ---- */

/* A path, argument, or name set by a writer on one line of text output:
 * control characters and invalid UTF-8 as C-style escapes (\n, \t,
 * \xHH), backslash doubled. */
void text_escaped(FILE *out, const char *s);
/* The same into out (cap bytes, always NUL-terminated when cap > 0, cut
 * when short): for messages that echo such a string. Returns the length
 * of the whole escaped string. */
size_t text_escape(char *out, size_t cap, const char *s);
/* A DOT string literal: quoted, the same escapes plus \" for a quote. */
void dot_string(FILE *out, const char *s);

#endif /* WEFT_CLI_H */
