/*
 * preload_internal.h - what the collector side of the preload backend
 * shares: the batch decoder (decode.c), the run (collector.c: launch the
 * workload with the library in LD_PRELOAD, receive batches, feed the
 * classifier, reap), finding the library (libpath.c) and preflight
 * (preload_preflight.c).
 */
#ifndef WEFT_PRELOAD_INTERNAL_H
#define WEFT_PRELOAD_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "preload_wire.h"
#include <weft/backends.h>

/* ---- decode.c ---- */

/* One record of a checked batch; strings point into the batch. */
typedef struct pl_record {
	struct pl_rec r;
	bool has_stat;
	struct pl_stat st;
	const char *strs[PL_MAX_STR];
	unsigned nstr;
} pl_record;

typedef int (*pl_record_fn)(void *ctx, const pl_record *rec);

/* Check the whole batch buf[0..len) (header, every record, every string:
 * NUL-terminated inside its record, paths at most WEFT_MAX_PATH_BYTES,
 * the strings each kind needs), then, only if it is entirely valid, copy
 * its header to *hdr and call fn for each record in order. Returns 0,
 * fn's first non-zero result, or a weft_err (WEFT_ETRUNC, WEFT_EVERSION,
 * WEFT_EINVAL, WEFT_ETOOBIG) naming what was wrong. */
int pl_batch_decode(const uint8_t *buf, size_t len, struct pl_batch *hdr,
		    pl_record_fn fn, void *ctx);

/* ---- libpath.c ---- */

#define PL_LIBRARY_NAME "libweft_preload.so"
#define PL_LIBRARY_ENV "WEFT_PRELOAD_LIBRARY"

/* Where libweft_preload.so is: $WEFT_PRELOAD_LIBRARY, else next to the
 * weft executable, else ../lib/weft/ from it, else the install directory.
 * 0 with the path in out, or -1 with what was tried in out. */
int pl_library_path(char *out, size_t outsz);

/* ---- collector.c ---- */

typedef struct pl_stats {
	uint64_t batches, records, bad_batches, lost_batches;
	uint64_t held, synthesized_forks;
} pl_stats;

/* The traced run (weft_backend_preload.run with stats). */
int pl_trace(weft_launch *l, weft_report *warnings_to, pl_stats *stats);
/* Whether running path under the library would trace it: "" when yes,
 * else why not (static, secure-exec) in why. */
void pl_exec_blind(const char *path, char *why, size_t whysz);

/* ---- preload_preflight.c ---- */

int pl_preflight(weft_preflight *p, const char *command, int timeout_ms);
/* preflight's checks of the command alone (weft_backend.check_command). */
void pl_check_command(weft_preflight *p, const char *command);

#endif /* WEFT_PRELOAD_INTERNAL_H */
