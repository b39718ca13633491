/*
 * codec_reply.c - the coordinator's replies: the acknowledgement of one
 * request, and the answer to a status query.
 *
 * Ack: {v, t: 1, st (enum weft_ack_status), why (enum
 * weft_reject_reason), detail, seq}. Status: {v, t: 2, jobs: [job map],
 * rejects: [uint per reason], requests}, a job map being {id, ended,
 * created, endt, exit, cmd, frags, bytes, rejects, writers: [writer map],
 * ninc, inc: [task map]}, a writer map {pk, enrolled, frags, max, missing}
 * and a task map {id, name, node, parts, nparts}. All keys required, but
 * ninc and inc, written only when a job has incomplete tasks (so that an
 * older weft status still reads the answer about complete jobs).
 * Memory for a decoded status grows with the records actually read.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wire_codec.h"

/* Reject counters a status answer carries at least: what coordinators
 * sent before WEFT_REJECT_NOT_ALLOWED (reasons 0..10). */
#define STATUS_MIN_REJECT_REASONS 11

const char *weft_reject_name(int reason)
{
	switch (reason) {
	case WEFT_REJECT_NONE:
		return "none";
	case WEFT_REJECT_MALFORMED:
		return "malformed";
	case WEFT_REJECT_OVERSIZE:
		return "oversize";
	case WEFT_REJECT_UNKNOWN_JOB:
		return "unknown job";
	case WEFT_REJECT_JOB_ENDED:
		return "job ended";
	case WEFT_REJECT_UNENROLLED:
		return "unenrolled writer";
	case WEFT_REJECT_BAD_SIGNATURE:
		return "bad signature";
	case WEFT_REJECT_BAD_TOKEN:
		return "bad token";
	case WEFT_REJECT_REPLAY:
		return "replay with different content";
	case WEFT_REJECT_MISMATCH:
		return "fragment does not match its envelope";
	case WEFT_REJECT_JOB_EXISTS:
		return "job exists";
	case WEFT_REJECT_NOT_ALLOWED:
		return "not allowed";
	}
	return "unknown reason";
}

enum { A_ST, A_WHY, A_DETAIL, A_SEQ, A_NKEYS };
static const char *const ack_key_names[A_NKEYS] = {"st", "why", "detail",
						   "seq"};
static const struct weft_rd_keys ack_keys = {ack_key_names, A_NKEYS,
					     (1u << A_NKEYS) - 1};

enum { S_JOBS, S_REJECTS, S_REQUESTS, S_NKEYS };
static const char *const status_key_names[S_NKEYS] = {"jobs", "rejects",
						      "requests"};
static const struct weft_rd_keys status_keys = {status_key_names, S_NKEYS,
						(1u << S_NKEYS) - 1};

enum {
	J_ID,
	J_ENDED,
	J_CREATED,
	J_ENDT,
	J_EXIT,
	J_CMD,
	J_FRAGS,
	J_BYTES,
	J_REJECTS,
	J_WRITERS,
	J_NINC,
	J_INC,
	J_NREF,
	J_REF,
	J_NKEYS
};
static const char *const job_key_names[J_NKEYS] = {
	"id",    "ended",   "created", "endt", "exit", "cmd",  "frags",
	"bytes", "rejects", "writers", "ninc", "inc",  "nref", "ref",
};
static const struct weft_rd_keys job_keys = {
	job_key_names, J_NKEYS,
	((1u << J_NKEYS) - 1) & ~(1u << J_NINC) & ~(1u << J_INC) &
		~(1u << J_NREF) & ~(1u << J_REF)};

/* A refused fragment: its task, writer, seq, reason and detail. */
enum { R_ID, R_NAME, R_NODE, R_WRITER, R_SEQ, R_WHY, R_DETAIL, R_NKEYS };
static const char *const refusal_key_names[R_NKEYS] = {
	"id", "name", "node", "writer", "seq", "why", "detail",
};
static const struct weft_rd_keys refusal_keys = {refusal_key_names, R_NKEYS,
						 (1u << R_NKEYS) - 1};

enum { T_ID, T_NAME, T_NODE, T_PARTS, T_NPARTS, T_NKEYS };
static const char *const task_key_names[T_NKEYS] = {
	"id", "name", "node", "parts", "nparts",
};
static const struct weft_rd_keys task_keys = {task_key_names, T_NKEYS,
					      (1u << T_NKEYS) - 1};

enum { W_PK, W_ENROLLED, W_FRAGS, W_MAX, W_MISSING, W_NKEYS };
static const char *const writer_key_names[W_NKEYS] = {
	"pk", "enrolled", "frags", "max", "missing",
};
static const struct weft_rd_keys writer_keys = {writer_key_names, W_NKEYS,
						(1u << W_NKEYS) - 1};

/* ---- Encoders ---- */

int weft_reply_ack(int status, int reason, const char *detail, uint64_t seq,
		   weft_buf *out)
{
	if (status < WEFT_ACK_STORED || status > WEFT_ACK_RETRY || reason < 0 ||
	    reason >= WEFT_REJECT_REASON_MAX)
		return WEFT_EINVAL;
	char cut[WEFT_MAX_REASON_BYTES + 1];
	/* A detail is for people: cut it rather than fail the reply. */
	snprintf(cut, sizeof(cut), "%s", detail ? detail : "");
	struct weft_wr w;
	weft_wr_init(&w, out);
	wire_kind_write(&w, WEFT_REPLY_ACK, A_NKEYS);
	weft_wr_key_uint(&w, "st", (uint64_t)status);
	weft_wr_key_uint(&w, "why", (uint64_t)reason);
	weft_wr_key_cstr(&w, "detail", cut);
	weft_wr_key_uint(&w, "seq", seq);
	return weft_wr_finish(&w);
}

static void writer_write(struct weft_wr *w, const weft_status_writer *sw)
{
	weft_wr_map(w, W_NKEYS);
	weft_wr_key_bin(w, "pk", sw->pk, WEFT_PUBKEY_BYTES);
	weft_wr_key_int(w, "enrolled", sw->enrolled_ns);
	weft_wr_key_uint(w, "frags", sw->fragments);
	weft_wr_key_uint(w, "max", sw->max_seq);
	weft_wr_key_uint(w, "missing", sw->missing);
}

/* The map of a listed task (incomplete or refused): its nkeys, the
 * names first. */
static void task_names_write(struct weft_wr *w, uint32_t nkeys, const char *id,
			     const char *name, const char *node)
{
	weft_wr_map(w, nkeys);
	weft_wr_key_cstr(w, "id", id);
	weft_wr_key_cstr(w, "name", name);
	weft_wr_key_cstr(w, "node", node);
}

static void task_write(struct weft_wr *w, const weft_status_task *t)
{
	task_names_write(w, T_NKEYS, t->id, t->name, t->node);
	weft_wr_key_uint(w, "parts", t->parts_stored);
	weft_wr_key_uint(w, "nparts", t->nparts);
}

static bool task_fits(const weft_status_task *t)
{
	return strnlen(t->id, sizeof(t->id)) < sizeof(t->id) &&
	       strnlen(t->name, sizeof(t->name)) < sizeof(t->name) &&
	       strnlen(t->node, sizeof(t->node)) < sizeof(t->node) &&
	       t->nparts <= WEFT_MAX_PARTS && t->parts_stored <= t->nparts;
}

static void refusal_write(struct weft_wr *w, const weft_status_refusal *r)
{
	task_names_write(w, R_NKEYS, r->id, r->name, r->node);
	weft_wr_key_bin(w, "writer", r->writer, WEFT_PUBKEY_BYTES);
	weft_wr_key_uint(w, "seq", r->seq);
	weft_wr_key_uint(w, "why", (uint64_t)r->reason);
	weft_wr_key_cstr(w, "detail", r->detail);
}

static bool refusal_fits(const weft_status_refusal *r)
{
	return strnlen(r->id, sizeof(r->id)) < sizeof(r->id) &&
	       strnlen(r->name, sizeof(r->name)) < sizeof(r->name) &&
	       strnlen(r->node, sizeof(r->node)) < sizeof(r->node) &&
	       strnlen(r->detail, sizeof(r->detail)) < sizeof(r->detail) &&
	       r->reason > WEFT_REJECT_NONE &&
	       r->reason < WEFT_REJECT_REASON_MAX;
}

static int job_write(struct weft_wr *w, const weft_status_job *j)
{
	if (weft_job_id_check(j->id) ||
	    strnlen(j->command, sizeof(j->command)) >= sizeof(j->command) ||
	    j->ntasks > j->incomplete || j->nrefusals > j->refused)
		return WEFT_EINVAL;
	if (j->nwriters > WEFT_MAX_STATUS_WRITERS ||
	    j->ntasks > WEFT_MAX_STATUS_TASKS ||
	    j->nrefusals > WEFT_MAX_STATUS_TASKS)
		return WEFT_ETOOBIG;
	for (size_t i = 0; i < j->ntasks; i++)
		if (!task_fits(&j->tasks[i]))
			return WEFT_EINVAL;
	for (size_t i = 0; i < j->nrefusals; i++)
		if (!refusal_fits(&j->refusals[i]))
			return WEFT_EINVAL;
	weft_wr_map(w,
		    J_NKEYS - (j->incomplete ? 0 : 2) - (j->refused ? 0 : 2));
	weft_wr_key_cstr(w, "id", j->id);
	weft_wr_key_bool(w, "ended", j->ended);
	weft_wr_key_int(w, "created", j->created_ns);
	weft_wr_key_int(w, "endt", j->ended_ns);
	weft_wr_key_int(w, "exit", j->exit_code);
	weft_wr_key_cstr(w, "cmd", j->command);
	weft_wr_key_uint(w, "frags", j->fragments);
	weft_wr_key_uint(w, "bytes", j->bytes);
	weft_wr_key_uint(w, "rejects", j->rejects);
	weft_wr_key(w, "writers");
	weft_wr_array(w, (uint32_t)j->nwriters);
	for (size_t i = 0; i < j->nwriters; i++)
		writer_write(w, &j->writers[i]);
	if (j->incomplete) {
		weft_wr_key_uint(w, "ninc", j->incomplete);
		weft_wr_key(w, "inc");
		weft_wr_array(w, (uint32_t)j->ntasks);
		for (size_t i = 0; i < j->ntasks; i++)
			task_write(w, &j->tasks[i]);
	}
	if (j->refused) {
		weft_wr_key_uint(w, "nref", j->refused);
		weft_wr_key(w, "ref");
		weft_wr_array(w, (uint32_t)j->nrefusals);
		for (size_t i = 0; i < j->nrefusals; i++)
			refusal_write(w, &j->refusals[i]);
	}
	return WEFT_OK;
}

int weft_reply_status(const weft_status *st, weft_buf *out)
{
	if (st->njobs > WEFT_MAX_STATUS_JOBS)
		return WEFT_ETOOBIG;
	struct weft_wr w;
	weft_wr_init(&w, out);
	wire_kind_write(&w, WEFT_REPLY_STATUS, S_NKEYS);
	weft_wr_key(&w, "jobs");
	weft_wr_array(&w, (uint32_t)st->njobs);
	for (size_t i = 0; i < st->njobs && !w.err; i++) {
		int rc = job_write(&w, &st->jobs[i]);
		if (rc)
			w.err = rc;
	}
	weft_wr_key(&w, "rejects");
	weft_wr_array(&w, WEFT_REJECT_REASON_MAX);
	for (int i = 0; i < WEFT_REJECT_REASON_MAX; i++)
		weft_wr_uint(&w, st->rejects[i]);
	weft_wr_key_uint(&w, "requests", st->requests);
	return weft_wr_finish(&w);
}

/* ---- Decoders ---- */

static int ack_read_entry(struct weft_rd *rd, void *ctx, unsigned key)
{
	weft_ack *a = ctx;
	int64_t v;
	int rc;
	switch (key) {
	case A_ST:
		rc = weft_rd_int(rd, WEFT_ACK_STORED, WEFT_ACK_RETRY, &v);
		a->status = (int)v;
		return rc;
	case A_WHY:
		rc = weft_rd_int(rd, 0, WEFT_REJECT_REASON_MAX - 1, &v);
		a->reason = (int)v;
		return rc;
	case A_DETAIL:
		return weft_rd_fixed_str(rd, a->detail, sizeof(a->detail));
	case A_SEQ:
		return weft_rd_uint(rd, UINT64_MAX, &a->seq);
	}
	return WEFT_EINVAL;
}

static int writer_read_entry(struct weft_rd *rd, void *ctx, unsigned key)
{
	weft_status_writer *sw = ctx;
	switch (key) {
	case W_PK:
		return wire_rd_fixed_bin(rd, sw->pk, WEFT_PUBKEY_BYTES);
	case W_ENROLLED:
		return weft_rd_i64(rd, &sw->enrolled_ns);
	case W_FRAGS:
		return weft_rd_uint(rd, UINT64_MAX, &sw->fragments);
	case W_MAX:
		return weft_rd_uint(rd, UINT64_MAX, &sw->max_seq);
	case W_MISSING:
		return weft_rd_uint(rd, UINT64_MAX, &sw->missing);
	}
	return WEFT_EINVAL;
}

static int writer_read(struct weft_rd *rd, void *item, void *ctx)
{
	(void)ctx;
	return weft_rd_fields(rd, &writer_keys, false, writer_read_entry, item);
}

static int task_read_entry(struct weft_rd *rd, void *ctx, unsigned key)
{
	weft_status_task *t = ctx;
	uint64_t v;
	int rc;
	switch (key) {
	case T_ID:
		return weft_rd_fixed_str(rd, t->id, sizeof(t->id));
	case T_NAME:
		return weft_rd_fixed_str(rd, t->name, sizeof(t->name));
	case T_NODE:
		return weft_rd_fixed_str(rd, t->node, sizeof(t->node));
	case T_PARTS:
	case T_NPARTS:
		rc = weft_rd_uint(rd, WEFT_MAX_PARTS, &v);
		*(key == T_PARTS ? &t->parts_stored : &t->nparts) = (uint32_t)v;
		return rc;
	}
	return WEFT_EINVAL;
}

static int task_read(struct weft_rd *rd, void *item, void *ctx)
{
	(void)ctx;
	int rc = weft_rd_fields(rd, &task_keys, false, task_read_entry, item);
	const weft_status_task *t = item;
	return rc ? rc : t->parts_stored > t->nparts ? WEFT_EINVAL : WEFT_OK;
}

static int refusal_read_entry(struct weft_rd *rd, void *ctx, unsigned key)
{
	weft_status_refusal *r = ctx;
	int64_t v;
	int rc;
	switch (key) {
	case R_ID:
		return weft_rd_fixed_str(rd, r->id, sizeof(r->id));
	case R_NAME:
		return weft_rd_fixed_str(rd, r->name, sizeof(r->name));
	case R_NODE:
		return weft_rd_fixed_str(rd, r->node, sizeof(r->node));
	case R_WRITER:
		return wire_rd_fixed_bin(rd, r->writer, WEFT_PUBKEY_BYTES);
	case R_SEQ:
		return weft_rd_uint(rd, UINT64_MAX, &r->seq);
	case R_WHY:
		rc = weft_rd_int(rd, 1, WEFT_REJECT_REASON_MAX - 1, &v);
		r->reason = (int)v;
		return rc;
	case R_DETAIL:
		return weft_rd_fixed_str(rd, r->detail, sizeof(r->detail));
	}
	return WEFT_EINVAL;
}

static int refusal_read(struct weft_rd *rd, void *item, void *ctx)
{
	(void)ctx;
	return weft_rd_fields(rd, &refusal_keys, false, refusal_read_entry,
			      item);
}

static int job_read_entry(struct weft_rd *rd, void *ctx, unsigned key)
{
	weft_status_job *j = ctx;
	switch (key) {
	case J_ID:
		return wire_rd_job(rd, j->id);
	case J_ENDED:
		return weft_rd_bool(rd, &j->ended);
	case J_CREATED:
		return weft_rd_i64(rd, &j->created_ns);
	case J_ENDT:
		return weft_rd_i64(rd, &j->ended_ns);
	case J_EXIT:
		return weft_rd_i32(rd, &j->exit_code);
	case J_CMD:
		return weft_rd_fixed_str(rd, j->command, sizeof(j->command));
	case J_FRAGS:
		return weft_rd_uint(rd, UINT64_MAX, &j->fragments);
	case J_BYTES:
		return weft_rd_uint(rd, UINT64_MAX, &j->bytes);
	case J_REJECTS:
		return weft_rd_uint(rd, UINT64_MAX, &j->rejects);
	case J_WRITERS:
		return weft_rd_list(rd, WEFT_MAX_STATUS_WRITERS,
				    weft_rd_min_map_bytes(&writer_keys),
				    sizeof(*j->writers), (void **)&j->writers,
				    &j->nwriters, writer_read, NULL);
	case J_NINC:
		return weft_rd_uint(rd, UINT64_MAX, &j->incomplete);
	case J_INC:
		return weft_rd_list(rd, WEFT_MAX_STATUS_TASKS,
				    weft_rd_min_map_bytes(&task_keys),
				    sizeof(*j->tasks), (void **)&j->tasks,
				    &j->ntasks, task_read, NULL);
	case J_NREF:
		return weft_rd_uint(rd, UINT64_MAX, &j->refused);
	case J_REF:
		return weft_rd_list(rd, WEFT_MAX_STATUS_TASKS,
				    weft_rd_min_map_bytes(&refusal_keys),
				    sizeof(*j->refusals), (void **)&j->refusals,
				    &j->nrefusals, refusal_read, NULL);
	}
	return WEFT_EINVAL;
}

static int job_read(struct weft_rd *rd, void *item, void *ctx)
{
	(void)ctx;
	int rc = weft_rd_fields(rd, &job_keys, false, job_read_entry, item);
	const weft_status_job *j = item;
	return rc ? rc
	       : j->ntasks > j->incomplete || j->nrefusals > j->refused
		       ? WEFT_EINVAL
		       : WEFT_OK;
}

static int status_read_entry(struct weft_rd *rd, void *ctx, unsigned key)
{
	weft_status *st = ctx;
	uint32_t n;
	int rc;
	switch (key) {
	case S_JOBS:
		return weft_rd_list(rd, WEFT_MAX_STATUS_JOBS,
				    weft_rd_min_map_bytes(&job_keys),
				    sizeof(*st->jobs), (void **)&st->jobs,
				    &st->njobs, job_read, NULL);
	case S_REJECTS:
		rc = weft_rd_array(rd, WEFT_REJECT_REASON_MAX, 1, &n);
		/* A coordinator older than the last reasons sends fewer. */
		if (rc == WEFT_OK && n < STATUS_MIN_REJECT_REASONS)
			rc = WEFT_EINVAL;
		for (uint32_t i = 0; rc == WEFT_OK && i < n; i++)
			rc = weft_rd_uint(rd, UINT64_MAX, &st->rejects[i]);
		return rc;
	case S_REQUESTS:
		return weft_rd_uint(rd, UINT64_MAX, &st->requests);
	}
	return WEFT_EINVAL;
}

int weft_reply_decode(const uint8_t *buf, size_t len, weft_reply *r)
{
	memset(r, 0, sizeof(*r));
	if (len > WEFT_MAX_MESSAGE_BYTES)
		return WEFT_ETOOBIG;
	struct weft_rd rd;
	weft_rd_init(&rd, buf, len);
	uint32_t n;
	int rc = wire_kind_read(&rd, WEFT_REPLY_STATUS, &r->kind, &n);
	if (rc == WEFT_OK && r->kind == WEFT_REPLY_ACK)
		rc = wire_entries_read(&rd, n, &ack_keys, ack_read_entry,
				       &r->ack);
	else if (rc == WEFT_OK)
		rc = wire_entries_read(&rd, n, &status_keys, status_read_entry,
				       &r->status);
	if (rc == WEFT_OK && rd.pos != len)
		rc = WEFT_ETRAILING;
	if (rc) {
		weft_reply_release(r);
		memset(r, 0, sizeof(*r));
	}
	return rc;
}

void weft_status_release(weft_status *st)
{
	for (size_t i = 0; i < st->njobs; i++) {
		free(st->jobs[i].writers);
		free(st->jobs[i].tasks);
		free(st->jobs[i].refusals);
	}
	free(st->jobs);
	st->jobs = NULL;
	st->njobs = 0;
}

void weft_reply_release(weft_reply *r)
{
	weft_status_release(&r->status);
}
