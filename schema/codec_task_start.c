/*
 * codec_task_start.c - the TASK_START request (weft/wire.h "Task start"):
 * a wrapper telling its coordinator that a task began, so that the
 * task's OpenLineage START goes out while it runs.
 *
 * Kept apart from codec_message.c, like EXPORT, so that the requests
 * older coordinators know keep their decoder unchanged. Same
 * conventions: "v" first, then "t", every key required, each string
 * within its named limit before anything is kept.
 */
#include <string.h>

#include "wire_codec.h"

enum {
	Q_JOB,
	Q_RUN,
	Q_TASK,
	Q_NAME,
	Q_PARENT,
	Q_NODE,
	Q_BACKEND,
	Q_TIME,
	Q_SIG,
	Q_NKEYS
};
static const char *const key_names[Q_NKEYS] = {
	"job", "run", "task", "name", "parent", "node", "backend", "time", "sig",
};
static const struct weft_rd_keys keys = {key_names, Q_NKEYS,
					 (1u << Q_NKEYS) - 1};

/* A string of at most max bytes, non-empty when required. */
static int field_check(const char *s, size_t cap, bool required)
{
	size_t n = strnlen(s, cap);
	return n == cap || (required && n == 0) ? WEFT_EINVAL : WEFT_OK;
}

int wire_task_start_check(const weft_task_start *ts)
{
	if (weft_job_id_check(ts->job) || weft_job_id_check(ts->run) ||
	    field_check(ts->task, sizeof(ts->task), true) ||
	    field_check(ts->name, sizeof(ts->name), false) ||
	    field_check(ts->parent, sizeof(ts->parent), false) ||
	    field_check(ts->node, sizeof(ts->node), true) ||
	    field_check(ts->backend, sizeof(ts->backend), true))
		return WEFT_EINVAL;
	return WEFT_OK;
}

int weft_req_task_start(const weft_task_start *ts, weft_buf *out)
{
	if (wire_task_start_check(ts))
		return WEFT_EINVAL;
	struct weft_wr w;
	weft_wr_init(&w, out);
	wire_kind_write(&w, WEFT_REQ_TASK_START, Q_NKEYS);
	const char *text[] = {ts->job,    ts->run,  ts->task,   ts->name,
			      ts->parent, ts->node, ts->backend};
	for (int k = Q_JOB; k <= Q_BACKEND; k++)
		weft_wr_key_cstr(&w, key_names[k], text[k]);
	weft_wr_key_int(&w, "time", ts->started_ns);
	weft_wr_key_bin(&w, "sig", ts->sig, WEFT_SIG_BYTES);
	return weft_wr_finish(&w);
}

static int read_entry(struct weft_rd *rd, void *ctx, unsigned key)
{
	weft_task_start *ts = ctx;
	int rc;
	switch (key) {
	case Q_JOB:
		return wire_rd_job(rd, ts->job);
	case Q_RUN:
		return wire_rd_job(rd, ts->run);
	case Q_TASK:
		rc = weft_rd_fixed_str(rd, ts->task, sizeof(ts->task));
		return rc ? rc : ts->task[0] ? WEFT_OK : WEFT_EINVAL;
	case Q_NAME:
		return weft_rd_fixed_str(rd, ts->name, sizeof(ts->name));
	case Q_PARENT:
		return weft_rd_fixed_str(rd, ts->parent, sizeof(ts->parent));
	case Q_NODE:
		rc = weft_rd_fixed_str(rd, ts->node, sizeof(ts->node));
		return rc ? rc : ts->node[0] ? WEFT_OK : WEFT_EINVAL;
	case Q_BACKEND:
		rc = weft_rd_fixed_str(rd, ts->backend, sizeof(ts->backend));
		return rc ? rc : ts->backend[0] ? WEFT_OK : WEFT_EINVAL;
	case Q_TIME:
		return weft_rd_i64(rd, &ts->started_ns);
	case Q_SIG:
		return wire_rd_fixed_bin(rd, ts->sig, WEFT_SIG_BYTES);
	}
	return WEFT_EINVAL;
}

int weft_task_start_decode(const uint8_t *buf, size_t len,
			   weft_task_start *ts)
{
	memset(ts, 0, sizeof(*ts));
	int rc = wire_message_read(buf, len, WEFT_MAX_REQUEST_BYTES,
				   WEFT_REQ_TASK_START, &keys, read_entry, ts);
	if (rc)
		memset(ts, 0, sizeof(*ts));
	return rc;
}
