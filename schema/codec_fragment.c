/*
 * codec_fragment.c - the msgpack codec for a fragment: the record of one
 * traced unit (or one part of it) that a wrapper signs and ships.
 *
 * Map: "v" first, then job (UUID text), writer (bin 32), seq (uint >= 1),
 * task (map: id, name, parent (bin), engine (array of [key, value])),
 * pre (the preflight summary), part, parts, body. The body is a complete
 * encoded weft_report (versioned itself) in a bin: the report codec is
 * reused as it is, and a decoder can hand the header to its caller
 * before it touches the records. Every key is required.
 */
#include <string.h>

#include "wire_codec.h"

enum {
	F_JOB, /* F_JOB..F_SEQ in WIRE_ORIGIN_* order */
	F_WRITER,
	F_SEQ,
	F_TASK,
	F_PRE,
	F_PART,
	F_PARTS,
	F_BODY,
	F_NKEYS
};
static const char *const frag_key_names[F_NKEYS] = {
	"job", "writer", "seq", "task", "pre", "part", "parts", "body",
};
static const struct weft_rd_keys frag_keys = {
	frag_key_names,
	F_NKEYS,
	(1u << F_NKEYS) - 1,
};

enum { T_ID, T_NAME, T_PARENT, T_ENGINE, T_NKEYS };
static const char *const task_key_names[T_NKEYS] = {
	"id",
	"name",
	"parent",
	"engine",
};
static const struct weft_rd_keys task_keys = {
	task_key_names,
	T_NKEYS,
	(1u << T_NKEYS) - 1,
};

void weft_fragment_init(weft_fragment *f)
{
	memset(f, 0, sizeof(*f));
	weft_report_init(&f->report);
}

void weft_fragment_release(weft_fragment *f)
{
	weft_report_release(&f->report);
	weft_fragment_init(f);
}

static bool fixed_ok(const char *s, size_t cap)
{
	return strnlen(s, cap) < cap;
}

static int header_check(const weft_fragment *f)
{
	const weft_task_identity *t = &f->task;
	if (weft_job_id_check(f->job) || f->seq == 0 || f->nparts == 0 ||
	    f->nparts > WEFT_MAX_PARTS || f->part >= f->nparts)
		return WEFT_EINVAL;
	if (!fixed_ok(t->id, sizeof(t->id)) ||
	    !fixed_ok(t->name, sizeof(t->name)) ||
	    !fixed_ok(t->parent, sizeof(t->parent)) ||
	    !fixed_ok(f->preflight, sizeof(f->preflight)) ||
	    t->nengine > WEFT_MAX_ENGINE_IDS)
		return WEFT_ETOOBIG;
	if (!t->id[0])
		return WEFT_EINVAL;
	for (uint32_t i = 0; i < t->nengine; i++)
		if (!fixed_ok(t->engine[i].key, sizeof(t->engine[i].key)) ||
		    !fixed_ok(t->engine[i].value, sizeof(t->engine[i].value)))
			return WEFT_ETOOBIG;
	return WEFT_OK;
}

static void task_write(struct weft_wr *w, const weft_task_identity *t)
{
	weft_wr_map(w, T_NKEYS);
	weft_wr_key_cstr(w, "id", t->id);
	weft_wr_key_cstr(w, "name", t->name);
	weft_wr_key_cstr(w, "parent", t->parent);
	weft_wr_key(w, "engine");
	weft_wr_array(w, t->nengine);
	for (uint32_t i = 0; i < t->nengine; i++) {
		weft_wr_array(w, 2);
		weft_wr_cstr(w, t->engine[i].key);
		weft_wr_cstr(w, t->engine[i].value);
	}
}

int weft_fragment_encode(const weft_fragment *f, weft_buf *out)
{
	int rc = header_check(f);
	if (rc)
		return rc;
	weft_buf body;
	weft_buf_init(&body);
	rc = weft_report_encode(&f->report, &body);
	if (rc)
		return rc;
	if (body.len > WEFT_MAX_PAYLOAD_BYTES) {
		weft_buf_free(&body);
		return WEFT_ETOOBIG;
	}
	struct weft_wr w;
	weft_wr_init(&w, out);
	weft_wr_versioned_map(&w, F_NKEYS);
	wire_origin_write(&w, f->job, f->writer, f->seq);
	weft_wr_key(&w, "task");
	task_write(&w, &f->task);
	weft_wr_key_cstr(&w, "pre", f->preflight);
	weft_wr_key_uint(&w, "part", f->part);
	weft_wr_key_uint(&w, "parts", f->nparts);
	weft_wr_key_bin(&w, "body", body.data, body.len);
	weft_buf_free(&body);
	if (!w.err && out->len - w.start > WEFT_MAX_PAYLOAD_BYTES)
		w.err = WEFT_ETOOBIG;
	return weft_wr_finish(&w);
}

static int engine_read(struct weft_rd *rd, weft_task_identity *t)
{
	uint32_t n;
	/* [key, value]: a fixarray header and two one-byte strings. */
	int rc = weft_rd_array(rd, WEFT_MAX_ENGINE_IDS, 3, &n);
	for (uint32_t i = 0; rc == WEFT_OK && i < n; i++) {
		rc = wire_rd_pair(rd);
		if (rc == WEFT_OK)
			rc = weft_rd_fixed_str(rd, t->engine[i].key,
					       sizeof(t->engine[i].key));
		if (rc == WEFT_OK)
			rc = weft_rd_fixed_str(rd, t->engine[i].value,
					       sizeof(t->engine[i].value));
		if (rc == WEFT_OK && !t->engine[i].key[0])
			rc = WEFT_EINVAL;
		t->nengine = i + 1;
	}
	return rc;
}

static int task_read_entry(struct weft_rd *rd, void *ctx, unsigned key)
{
	weft_task_identity *t = ctx;
	switch (key) {
	case T_ID: {
		int rc = weft_rd_fixed_str(rd, t->id, sizeof(t->id));
		return rc ? rc : t->id[0] ? WEFT_OK : WEFT_EINVAL;
	}
	case T_NAME:
		return weft_rd_fixed_str(rd, t->name, sizeof(t->name));
	case T_PARENT:
		return weft_rd_fixed_str(rd, t->parent, sizeof(t->parent));
	case T_ENGINE:
		return engine_read(rd, t);
	}
	return WEFT_EINVAL;
}

static int u32_read(struct weft_rd *rd, uint32_t max, uint32_t *v)
{
	uint64_t u;
	int rc = weft_rd_uint(rd, max, &u);
	if (rc == WEFT_OK)
		*v = (uint32_t)u;
	return rc;
}

static int frag_read_entry(struct weft_rd *rd, void *ctx, unsigned key)
{
	weft_fragment *f = ctx;
	int rc;
	switch (key) {
	case F_JOB:
	case F_WRITER:
	case F_SEQ:
		return wire_origin_read(rd, key - F_JOB, f->job, f->writer,
					&f->seq);
	case F_TASK:
		return weft_rd_fields(rd, &task_keys, false, task_read_entry,
				      &f->task);
	case F_PRE:
		return weft_rd_fixed_str(rd, f->preflight,
					 sizeof(f->preflight));
	case F_PART:
		return u32_read(rd, WEFT_MAX_PARTS - 1, &f->part);
	case F_PARTS:
		rc = u32_read(rd, WEFT_MAX_PARTS, &f->nparts);
		return rc ? rc : f->nparts ? WEFT_OK : WEFT_EINVAL;
	case F_BODY: {
		const uint8_t *data;
		size_t n;
		rc = weft_rd_bytes(rd, true, WEFT_MAX_PAYLOAD_BYTES, &data, &n);
		return rc ? rc : weft_report_decode(data, n, &f->report);
	}
	}
	return WEFT_EINVAL;
}

int weft_fragment_decode(const uint8_t *buf, size_t len, weft_fragment *f)
{
	weft_fragment_init(f);
	int rc = weft_rd_message(buf, len, WEFT_MAX_PAYLOAD_BYTES, &frag_keys,
				 frag_read_entry, f);
	if (rc == WEFT_OK && f->part >= f->nparts)
		rc = WEFT_EINVAL;
	if (rc)
		weft_fragment_release(f);
	return rc;
}
