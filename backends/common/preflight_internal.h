/*
 * preflight_internal.h - private to backends/: what the three backends'
 * preflights share (the platform and command checks, the probe's
 * directory and launch, the verdict line, small /proc reads). Not part of
 * weft/backends.h: nothing outside the tracers preflights anything itself.
 */
#ifndef WEFT_PREFLIGHT_INTERNAL_H
#define WEFT_PREFLIGHT_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <weft/backends.h>

struct stat;
struct utsname;

/* The verdict: when every check passed, the summary "BACKEND works:
 * SYSNAME RELEASE MACHINE, " fmt " in N ms" (what works, how the probe went
 * and how long the preflight took since start), else
 * weft_preflight_summarize_failure. */
void weft_preflight_conclude(weft_preflight *p, const struct utsname *u,
			     int64_t start, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* The "platform" check (Linux, and its release); u is uname's answer.
 * Returns whether this is Linux. */
bool weft_preflight_platform(weft_preflight *p, struct utsname *u);
/* stat(2) of the command for the "command" check: a missing one fails
 * it. */
bool weft_preflight_stat_command(weft_preflight *p, const char *command,
				 struct stat *st);
/* The command is a regular file this user may execute, else the "command"
 * check fails: "not an executable file". */
bool weft_preflight_command_executable(weft_preflight *p, const char *command,
				       const struct stat *st);
/* A preflight probe's directory: a fresh $TMPDIR (or /tmp) directory
 * weft-BACKEND-probe-XXXXXX, resolved into real (PATH_MAX bytes), holding
 * "src", a small file for the probe to read. Returns 0, or -1 with why
 * (the directory removed again). */
int weft_probe_dir_make(const char *backend, char *real, char *why,
			size_t whysz);
/* Remove a probe directory: its src, tmp and dst, then itself. */
void weft_probe_dir_remove(const char *real);
/* Read a small text file (/proc, /sys) into buf, NUL-terminated, trailing
 * newlines dropped. Returns its length, or -1 when unreadable. */
ssize_t weft_read_small_file(const char *path, char *buf, size_t bufsz);
/* A preflight probe's launch of argv: a fixed environment (LC_ALL=C,
 * PATH=/usr/bin:/bin), a fresh report and a classifier of its own.
 * Returns 0 or WEFT_ENOMEM; either way the caller frees l->classifier and
 * releases rep. */
int weft_probe_launch(weft_launch *l, weft_report *rep, char *const *argv);

#endif /* WEFT_PREFLIGHT_INTERNAL_H */
