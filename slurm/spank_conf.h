/*
 * spank_conf.h - the pure part of the SPANK plugin (weft_spank.so): tracer
 * modes, the plugstack.conf arguments, the task identity string and the
 * LD_PRELOAD value. Nothing here calls Slurm, so it is unit-tested without
 * a cluster (spank_conf_test.c) and the plugin's glue (weft_spank.c) stays
 * small.
 */
#ifndef WEFT_SPANK_CONF_H
#define WEFT_SPANK_CONF_H

#include <stddef.h>
#include <stdint.h>

/* Internal to the plugin: not exported from weft_spank.so, whose only
 * symbols are what Slurm's plugin loader looks up. */
#pragma GCC visibility push(hidden)

/* Longest path (preload library, agent socket, spool) and URL accepted
 * from plugstack.conf, NUL excluded. */
#define WSP_MAX_PATH_BYTES 4095
#define WSP_MAX_URL_BYTES 1024
/* A task identity "job.step.task@node" (as weft wrap's). */
#define WSP_MAX_TASK_BYTES 256
/* A node name. */
#define WSP_MAX_NODE_BYTES 64
/* The LD_PRELOAD value the plugin builds (ours plus the task's own). */
#define WSP_MAX_PRELOAD_BYTES 8192

/* Slurm's special step ids (slurm.h), named as weft wrap names them. */
#define WSP_STEP_INTERACTIVE 0xfffffffaU
#define WSP_STEP_BATCH 0xfffffffbU
#define WSP_STEP_EXTERN 0xfffffffcU
#define WSP_STEP_PENDING 0xfffffffdU

enum wsp_mode {
	WSP_MODE_UNSET = -1, /* neither --weft nor default= */
	WSP_MODE_OFF = 0,
	WSP_MODE_AUTO,
	WSP_MODE_PRELOAD,
	WSP_MODE_EBPF,
	WSP_MODE_PTRACE,
};

/* "off", "auto", "preload", "ebpf", "ptrace" (also "none" for off);
 * NULL or "" is auto (a bare --weft). -1 for anything else. */
int wsp_mode_parse(const char *s);
const char *wsp_mode_name(int mode);

struct wsp_conf {
	int default_mode;                        /* default=, else UNSET */
	char preload[WSP_MAX_PATH_BYTES + 1];    /* preload= */
	char agent[WSP_MAX_PATH_BYTES + 1];      /* agent= (Unix socket) */
	char coordinator[WSP_MAX_URL_BYTES + 1]; /* coordinator=, or "" */
	char spool[WSP_MAX_PATH_BYTES + 1];      /* spool=, or "" */
	char weft[WSP_MAX_PATH_BYTES + 1];       /* weft= (the collector) */
	int ship_timeout_s;                      /* ship_timeout=, or -1 */
};

/* Longest ship_timeout= (seconds): what a task's end may wait for its
 * collector to ship. */
#define WSP_MAX_SHIP_TIMEOUT_S 600

/* The weft executable (weft task-collect) where this build puts it; a
 * site sets weft= in plugstack.conf for its installed copy. */
void wsp_conf_weft(struct wsp_conf *c, const char *weft_default);

/* The built-in defaults: no tracing unless asked, the preload library and
 * agent socket where this build puts them. */
void wsp_conf_init(struct wsp_conf *c, const char *preload_default,
		   const char *agent_default);

/* One plugstack.conf argument "key=value". 0, or -1 with a message naming
 * the argument and what was expected in err (the caller logs it and goes
 * on with the rest). */
int wsp_conf_arg(struct wsp_conf *c, const char *arg, char *err, size_t errsz);

/* The mode a task is traced with: --weft when given, else default=, else
 * off. */
int wsp_mode_effective(int user_mode, int default_mode);

/* "job.step.task@node" into out; the step by number or as batch, extern,
 * interactive. 0, or -1 when it does not fit, or node is empty or holds a
 * space or a non-printable byte. */
int wsp_task_name(char *out, size_t outsz, uint32_t job, uint32_t step,
		  uint32_t task, const char *node);

/* Whether name is a task identity weft wrap accepts (in WEFT_PARENT,
 * --task): 1 to WSP_MAX_TASK_BYTES printable bytes, no space. One it would
 * refuse would stop the wrapped command, not just its tracing. 0 or -1. */
int wsp_task_check(const char *name);

/* The LD_PRELOAD for a task: lib first, then what the task already had
 * (existing may be NULL), lib not repeated. 0, or -1 when it does not fit
 * or lib holds a separator (space or colon) that ld.so would split on. */
int wsp_preload_value(char *out, size_t outsz, const char *lib,
		      const char *existing);

/* Whether the task's command is weft itself (weft wrap traces it; no
 * second tracer goes in underneath). */
int wsp_argv_is_weft(int argc, char *const argv[]);

#pragma GCC visibility pop

#endif /* WEFT_SPANK_CONF_H */
