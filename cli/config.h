/*
 * config.h - private to the weft executable: weft's settings (tracer.mode,
 * tracer.fallback_enabled, tracer.preflight_timeout_ms), where each came
 * from, the strict TOML-subset parser of the config files, and the writer
 * behind `weft tracer use`. docs/config.md is the user's view of this.
 *
 * Precedence, strongest first: flags > WEFT_TRACER > the project's
 * .weft/config.toml > ~/.weft/config.toml > defaults. Every error is
 * printed (to the FILE * given) with file:line:column, the value and what
 * was expected; functions return 0 or -1.
 */
#ifndef WEFT_CLI_CONFIG_H
#define WEFT_CLI_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include <weft/schema.h>
#include <weft/wrap.h>

#define CONFIG_TIMEOUT_MIN_MS 1
#define CONFIG_TIMEOUT_MAX_MS 600000
/* coordinator.max_connections and coordinator.idle_timeout_ms at most
 * (a day). */
#define CONFIG_COORD_MAX_CONNECTIONS 65536
#define CONFIG_COORD_MAX_IDLE_MS 86400000
#define CONFIG_TIMEOUT_DEFAULT_MS 2000
#define CONFIG_PATH_BYTES (WEFT_MAX_PATH_BYTES + 32)
/* The mode that tries every registered backend in registry order. */
#define CONFIG_MODE_AUTO "auto"
/* record.env_values: names whose values are recorded in clear. */
#define CONFIG_MAX_ENV_VALUES 64
#define CONFIG_ENV_NAME_BYTES 128

enum config_source {
	CONFIG_DEFAULT,
	CONFIG_USER_FILE,
	CONFIG_PROJECT_FILE,
	CONFIG_ENV,
	CONFIG_FLAG,
};

typedef struct weft_config {
	char mode[WEFT_MAX_NAME_BYTES]; /* "auto" or a registered backend */
	bool fallback_enabled;
	int preflight_timeout_ms;
	enum config_source mode_from, fallback_from, timeout_from;
	/* Ray host-submit (docs/ray.md): the weft command on the cluster's
	 * nodes, and the directory holding the weft Python package there. */
	char ray_weft_binary[CONFIG_PATH_BYTES];
	char ray_python_path[CONFIG_PATH_BYTES];
	/* `weft wrap --ray`'s actor calls: "call" (a record per call, the
	 * default) or "actor" (per actor). WEFT_RAY_ACTOR_GRANULARITY and
	 * --ray-actor-granularity win, in that order. */
	char ray_actor_granularity[8];
	/* eBPF (docs/config.md): 0 when not set in a file. config_load
	 * hands them to the backend as WEFT_EBPF_RINGBUF_BYTES and
	 * WEFT_AGENT_IDLE_MS, unless those are set already (env wins). */
	long long ebpf_ringbuf_bytes;
	long long agent_idle_timeout_ms;
	bool agent_idle_set;
	/* `weft coordinator` (docs/config.md): 0 when not set (the
	 * library's defaults); --max-connections and --idle-timeout win. */
	int coord_max_connections;
	int coord_idle_timeout_ms;
	/* coordinator.submit_key_file: the submit key a coordinator keeps
	 * and `weft submit --coordinator` proves; "" when not set. */
	char coord_submit_key_file[CONFIG_PATH_BYTES];
	/* OpenLineage (docs/interop.md): where `weft coordinator` and
	 * `weft run` send every task's events: an endpoint (POST
	 * URL/api/v1/lineage), its API key's file (owner-only), a file to
	 * append them to; "" when not set. The jobs' namespace ("": weft). */
	char ol_url[CONFIG_PATH_BYTES];
	char ol_api_key_file[CONFIG_PATH_BYTES];
	char ol_file[CONFIG_PATH_BYTES];
	char ol_namespace[256];
	/* record.env_values (docs/config.md): the environment variables
	 * whose values are recorded in clear; the rest only as hashes. */
	char env_values[CONFIG_MAX_ENV_VALUES][CONFIG_ENV_NAME_BYTES];
	size_t nenv_values;
	/* The files consulted; "" when there is none (no HOME, no project). */
	char user_file[CONFIG_PATH_BYTES];
	char project_file[CONFIG_PATH_BYTES];
} weft_config;

/* The defaults: auto, fallback enabled, 2000 ms, no files. */
void config_defaults(weft_config *c);

/* "default", "user file", "project file", "env WEFT_TRACER", "flag". */
const char *config_source_name(enum config_source s);
/* The tracer settings of c for weft_wrap_trace_prepare, which copies
 * env_names; the strings are c's, and c must outlive the trace. */
void config_tracer_opts(const weft_config *c,
			const char *env_names[WEFT_WRAP_MAX_ENV_VALUES],
			weft_wrap_tracer_opts *o);

/* True for "auto" and every registered backend's name. */
bool config_mode_valid(const char *mode);
/* "auto, ptrace, ..." (registry order) into buf. */
void config_modes(char *buf, size_t bufsz);

/* Parse a config document; name is what messages call it (a path).
 * Settings it holds are applied to c with source src. Unknown keys are
 * warned about on err. Returns 0, or -1 after printing the error. */
int config_parse(weft_config *c, enum config_source src, const char *name,
		 const char *text, size_t len, FILE *err);

/* config_parse of a file; a missing file is not an error (returns 0). */
int config_load_file(weft_config *c, enum config_source src, const char *path,
		     FILE *err);

/* Layer everything onto c (which config_resolve first resets to the
 * defaults): user_file, project_file (either may be NULL or ""), the value
 * of WEFT_TRACER (NULL or "" when unset), then the flags (flag_mode NULL
 * when not given). */
int config_resolve(weft_config *c, const char *user_file,
		   const char *project_file, const char *env_tracer,
		   const char *flag_mode, bool no_fallback, FILE *err);

/* config_resolve with the real files ($HOME/.weft/config.toml and the
 * .weft of the project around the working directory) and environment. */
int config_load(weft_config *c, const char *flag_mode, bool no_fallback,
		FILE *err);

/* The user file ($HOME/.weft/config.toml) and the project file (the
 * nearest .weft at or above the working directory, + config.toml) into
 * the buffers; "" for each that does not apply. */
void config_paths(char user[CONFIG_PATH_BYTES],
		  char project[CONFIG_PATH_BYTES]);

/* Set tracer.mode in the file at path, keeping every other line: replace
 * the existing tracer.mode value, or add it to the [tracer] table, or add
 * `tracer.mode = "MODE"` before the first table. The file (and its
 * directory, one level) is created when missing. An existing file that
 * does not parse is left untouched (error printed). */
int config_write_mode(const char *path, const char *mode, FILE *err);

#endif /* WEFT_CLI_CONFIG_H */
