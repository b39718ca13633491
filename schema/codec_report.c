/*
 * codec_report.c - the msgpack codec for a run report (weft_report): what
 * `weft run` / `weft wrap` produce for one traced unit.
 *
 * Map: "v" first, then run, backend, node (bin, < WEFT_MAX_NAME_BYTES),
 * exit (0..255), start, end (int ns), procs (array of process record maps),
 * files (array of file record maps), warn (array of bin), dropped (uint),
 * all required: an empty list is an empty array, never a missing key.
 * Records are appended through weft_report_add_*, so a decoded report
 * obeys the same limits as one built in memory, and memory grows with
 * records actually read, not with the counts the input claims.
 */
#include <stdlib.h>
#include <string.h>

#include "codec.h"

enum {
	R_RUN,
	R_BACKEND,
	R_NODE,
	R_EXIT,
	R_START,
	R_END,
	R_PROCS,
	R_FILES,
	R_WARN,
	R_DROPPED,
	R_NKEYS
};
static const char *const report_key_names[R_NKEYS] = {
	"run", "backend", "node",  "exit", "start",
	"end", "procs",   "files", "warn", "dropped",
};
static const struct weft_rd_keys report_keys = {
	report_key_names,
	R_NKEYS,
	(1u << R_NKEYS) - 1,
};

/* weft_report_warn keeps at most this many (the last one says the rest
 * were dropped). */
#define MAX_WARNINGS (WEFT_MAX_WARNINGS + 1)

static int name_check(const char name[WEFT_MAX_NAME_BYTES])
{
	return strnlen(name, WEFT_MAX_NAME_BYTES) < WEFT_MAX_NAME_BYTES
		       ? WEFT_OK
		       : WEFT_ETOOBIG;
}

static int report_check(const weft_report *r)
{
	if (name_check(r->run_id) || name_check(r->backend) ||
	    name_check(r->node))
		return WEFT_ETOOBIG;
	if (r->exit_code < 0 || r->exit_code > 255)
		return WEFT_EINVAL;
	if (r->nprocesses > WEFT_MAX_PROCESSES || r->nfiles > WEFT_MAX_FILES ||
	    r->nwarnings > MAX_WARNINGS)
		return WEFT_ETOOBIG;
	if ((r->nprocesses && !r->processes) || (r->nfiles && !r->files) ||
	    (r->nwarnings && !r->warnings))
		return WEFT_EINVAL;
	for (size_t i = 0; i < r->nwarnings; i++) {
		if (!r->warnings[i])
			return WEFT_EINVAL;
		if (strnlen(r->warnings[i], WEFT_MAX_WARNING_BYTES + 1) >
		    WEFT_MAX_WARNING_BYTES)
			return WEFT_ETOOBIG;
	}
	return WEFT_OK;
}

int weft_report_encode(const weft_report *r, weft_buf *out)
{
	int rc = report_check(r);
	if (rc)
		return rc;
	struct weft_wr w;
	weft_wr_init(&w, out);
	weft_wr_versioned_map(&w, R_NKEYS);
	weft_wr_key_cstr(&w, "run", r->run_id);
	weft_wr_key_cstr(&w, "backend", r->backend);
	weft_wr_key_cstr(&w, "node", r->node);
	weft_wr_key_int(&w, "exit", r->exit_code);
	weft_wr_key_int(&w, "start", r->started_ns);
	weft_wr_key_int(&w, "end", r->ended_ns);
	weft_wr_key(&w, "procs");
	weft_wr_array(&w, (uint32_t)r->nprocesses);
	for (size_t i = 0; rc == WEFT_OK && i < r->nprocesses; i++)
		rc = weft_process_rec_write(&w, &r->processes[i], false);
	weft_wr_key(&w, "files");
	weft_wr_array(&w, (uint32_t)r->nfiles);
	for (size_t i = 0; rc == WEFT_OK && i < r->nfiles; i++)
		rc = weft_file_rec_write(&w, &r->files[i], false);
	weft_wr_key(&w, "warn");
	weft_wr_array(&w, (uint32_t)r->nwarnings);
	for (size_t i = 0; i < r->nwarnings; i++)
		weft_wr_cstr(&w, r->warnings[i]);
	weft_wr_key_uint(&w, "dropped", r->dropped_events);
	if (rc && !w.err)
		w.err = rc;
	return weft_wr_finish(&w);
}

static int processes_read(struct weft_rd *rd, weft_report *r)
{
	uint32_t n;
	int rc = weft_rd_array(rd, WEFT_MAX_PROCESSES,
			       weft_process_rec_min_bytes(), &n);
	for (uint32_t i = 0; rc == WEFT_OK && i < n; i++) {
		weft_process_rec *p = weft_report_add_process(r);
		if (!p)
			return WEFT_ENOMEM; /* the count is within the limit */
		rc = weft_process_rec_read(rd, p, false);
	}
	return rc;
}

static int files_read(struct weft_rd *rd, weft_report *r)
{
	uint32_t n;
	int rc = weft_rd_array(rd, WEFT_MAX_FILES, weft_file_rec_min_bytes(),
			       &n);
	for (uint32_t i = 0; rc == WEFT_OK && i < n; i++) {
		weft_file_rec *f = weft_report_add_file(r);
		if (!f)
			return WEFT_ENOMEM;
		rc = weft_file_rec_read(rd, f, false);
	}
	return rc;
}

static int warnings_read(struct weft_rd *rd, weft_report *r)
{
	uint32_t n;
	int rc = weft_rd_array(rd, MAX_WARNINGS, 1, &n);
	for (uint32_t i = 0; rc == WEFT_OK && i < n; i++) {
		char *text;
		rc = weft_rd_cstr(rd, WEFT_MAX_WARNING_BYTES, &text);
		if (rc)
			break;
		rc = weft_report_push_warning(r, text);
		if (rc)
			free(text);
	}
	return rc;
}

static int report_read_entry(struct weft_rd *rd, void *ctx, unsigned key)
{
	weft_report *r = ctx;
	int64_t v = 0;
	int rc;
	switch (key) {
	case R_RUN:
		return weft_rd_fixed_str(rd, r->run_id, WEFT_MAX_NAME_BYTES);
	case R_BACKEND:
		return weft_rd_fixed_str(rd, r->backend, WEFT_MAX_NAME_BYTES);
	case R_NODE:
		return weft_rd_fixed_str(rd, r->node, WEFT_MAX_NAME_BYTES);
	case R_EXIT:
		rc = weft_rd_int(rd, 0, 255, &v);
		r->exit_code = (int32_t)v;
		return rc;
	case R_START:
		return weft_rd_i64(rd, &r->started_ns);
	case R_END:
		return weft_rd_i64(rd, &r->ended_ns);
	case R_PROCS:
		return processes_read(rd, r);
	case R_FILES:
		return files_read(rd, r);
	case R_WARN:
		return warnings_read(rd, r);
	case R_DROPPED:
		return weft_rd_uint(rd, UINT64_MAX, &r->dropped_events);
	}
	return WEFT_EINVAL;
}

int weft_report_decode(const uint8_t *buf, size_t len, weft_report *r)
{
	weft_report_init(r);
	int rc = weft_rd_message(buf, len, WEFT_MAX_MESSAGE_BYTES, &report_keys,
				 report_read_entry, r);
	if (rc)
		weft_report_release(r);
	return rc;
}
