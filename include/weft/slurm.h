/*
 * weft/slurm.h - libweft_slurm: the Slurm side of weft that runs outside
 * Slurm's own processes. Today the per-task collector (collect.c) that
 * weft_spank.so starts for every task of `srun --weft`; the plugin itself
 * (weft_spank.c) is a module Slurm loads, built apart.
 */
#ifndef WEFT_SLURM_H
#define WEFT_SLURM_H

#include <sys/types.h>

typedef struct weft_slurm_collect_opts {
	pid_t pid;           /* the task, about to exec argv */
	int ready_fd;        /* where the plugin waits for "ok ..." */
	const char *control; /* the control socket's abstract name */
	const char *task;    /* the plugin's name for the task, or NULL */
	const char *tracer;  /* a backend that can collect (collect_open) */
	const char *agent;   /* the node agent's socket, or NULL */
	int ship_timeout_ms;
	int verbose;
	char **argv; /* the task's command, NULL-terminated */
} weft_slurm_collect_opts;

/* Record the task o->pid that weft did not launch and ship it to the job
 * of the env contract, as `weft wrap` does (docs/slurm.md). Answers the
 * plugin on o->ready_fd ("ok ..." or "error WHY"), says on stderr what
 * went wrong after that. Returns weft's exit status: 0 when the record
 * was acknowledged, 1 when it stays spooled, WEFT_EXIT_USAGE or
 * WEFT_EXIT_INTERNAL when the task was not traced. */
int weft_slurm_collect(const weft_slurm_collect_opts *o);

#endif /* WEFT_SLURM_H */
