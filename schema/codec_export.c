/*
 * codec_export.c - the EXPORT request and its page (weft/wire.h "Export"):
 * what `weft pull tcp://...` asks a coordinator for, page by page.
 *
 * Kept apart from codec_message.c and codec_reply.c so that the requests
 * every wrapper sends keep their decoder unchanged: a server reads a
 * message's kind first (weft_message_kind) and hands an EXPORT here.
 * Same conventions: "v" first, then "t", every key of a kind required
 * except the job key of an open job, strict limits before allocation.
 */
#include <stdlib.h>
#include <string.h>

#include "wire_codec.h"

int weft_message_kind(const uint8_t *buf, size_t len, int *kind)
{
	*kind = 0;
	if (len > WEFT_MAX_MESSAGE_BYTES)
		return WEFT_ETOOBIG;
	struct weft_rd rd;
	weft_rd_init(&rd, buf, len);
	uint32_t n;
	return wire_kind_read(&rd, WIRE_MAX_KIND, kind, &n);
}

/* ---- The request ---- */

enum { Q_JOB, Q_AFTER, Q_WAFTER, Q_NKEYS };
static const char *const req_key_names[Q_NKEYS] = {"job", "after", "wafter"};
static const struct weft_rd_keys req_keys = {req_key_names, Q_NKEYS,
					     (1u << Q_NKEYS) - 1};

int weft_req_export(const char *job, uint64_t after, uint64_t wafter,
		    weft_buf *out)
{
	if (!job || weft_job_id_check(job))
		return WEFT_EINVAL;
	struct weft_wr w;
	weft_wr_init(&w, out);
	wire_kind_write(&w, WEFT_REQ_EXPORT, Q_NKEYS);
	weft_wr_key_cstr(&w, "job", job);
	weft_wr_key_uint(&w, "after", after);
	weft_wr_key_uint(&w, "wafter", wafter);
	return weft_wr_finish(&w);
}

struct req_ctx {
	char *job;
	uint64_t *after, *wafter;
};

static int req_read_entry(struct weft_rd *rd, void *ctx, unsigned key)
{
	struct req_ctx *c = ctx;
	switch (key) {
	case Q_JOB:
		return wire_rd_job(rd, c->job);
	case Q_AFTER:
		return weft_rd_uint(rd, INT64_MAX, c->after);
	case Q_WAFTER:
		return weft_rd_uint(rd, INT64_MAX, c->wafter);
	}
	return WEFT_EINVAL;
}

int weft_export_request_decode(const uint8_t *buf, size_t len,
			       char job[WEFT_JOB_ID_BYTES + 1], uint64_t *after,
			       uint64_t *wafter)
{
	job[0] = '\0';
	*after = *wafter = 0;
	struct req_ctx c = {job, after, wafter};
	int rc = wire_message_read(buf, len, WEFT_MAX_REQUEST_BYTES,
				   WEFT_REQ_EXPORT, &req_keys, req_read_entry,
				   &c);
	if (rc) {
		job[0] = '\0';
		*after = *wafter = 0;
	}
	return rc;
}

/* ---- The page ---- */

enum { P_JOB, P_WRITERS, P_ENVS, P_NEXT, P_WNEXT, P_MORE, P_NKEYS };
static const char *const page_key_names[P_NKEYS] = {"job",  "writers", "envs",
						    "next", "wnext",   "more"};
static const struct weft_rd_keys page_keys = {page_key_names, P_NKEYS,
					      (1u << P_NKEYS) - 1};

enum {
	J_ID,
	J_ENDED,
	J_KEY,
	J_CREATED,
	J_ENDT,
	J_EXIT,
	J_CMD, /* J_CMD..J_GIT in WIRE_JOB_* order */
	J_USER,
	J_HOST,
	J_CWD,
	J_GIT,
	J_VK,
	J_NKEYS
};
static const char *const job_key_names[J_NKEYS] = {
	"id",  "ended", "key",  "created", "endt", "exit",
	"cmd", "user",  "host", "cwd",     "git",  "vk",
};
static const struct weft_rd_keys job_keys = {
	job_key_names, J_NKEYS,
	((1u << J_NKEYS) - 1) & ~(1u << J_KEY) & ~(1u << J_VK)};

/* Fewest bytes of a writer entry: [bin32, int]. */
#define WRITER_MIN_BYTES (1 + 2 + WEFT_PUBKEY_BYTES + 1)

static int page_check(const weft_export_page *p)
{
	if (weft_job_id_check(p->job.id) ||
	    ((p->has_key || p->has_vk) && !p->ended) ||
	    p->nwriters > WEFT_MAX_EXPORT_WRITERS ||
	    p->nenvs > WEFT_MAX_EXPORT_ENVELOPES)
		return WEFT_EINVAL;
	int rc = wire_job_text_check(&p->job);
	if (rc)
		return rc;
	size_t total = 0;
	for (size_t i = 0; i < p->nenvs; i++) {
		if (p->envs[i].len > WEFT_MAX_ENVELOPE_BYTES)
			return WEFT_EINVAL;
		total += p->envs[i].len;
	}
	/* Everything else in a page is bounded well below the headroom. */
	if (total > WEFT_MAX_MESSAGE_BYTES - 8 * 1024 * 1024)
		return WEFT_ETOOBIG;
	return WEFT_OK;
}

int weft_reply_export(const weft_export_page *p, weft_buf *out)
{
	int rc = page_check(p);
	if (rc)
		return rc;
	const weft_job_info *j = &p->job;
	struct weft_wr w;
	weft_wr_init(&w, out);
	wire_kind_write(&w, WEFT_REPLY_EXPORT, P_NKEYS);
	weft_wr_key(&w, "job");
	weft_wr_map(&w, J_NKEYS - 2 + p->has_key + p->has_vk);
	weft_wr_key_cstr(&w, "id", j->id);
	weft_wr_key_bool(&w, "ended", p->ended);
	if (p->has_key)
		weft_wr_key_bin(&w, "key", p->key, WEFT_MAC_BYTES);
	if (p->has_vk)
		weft_wr_key_bin(&w, "vk", p->vk, WEFT_PUBKEY_BYTES);
	weft_wr_key_int(&w, "created", j->created_ns);
	weft_wr_key_int(&w, "endt", p->ended_ns);
	weft_wr_key_int(&w, "exit", p->exit_code);
	wire_job_text_write(&w, j);
	weft_wr_key(&w, "writers");
	weft_wr_array(&w, (uint32_t)p->nwriters);
	for (size_t i = 0; i < p->nwriters; i++) {
		weft_wr_array(&w, 2);
		weft_wr_bin(&w, p->writers[i].pk, WEFT_PUBKEY_BYTES);
		weft_wr_int(&w, p->writers[i].enrolled_ns);
	}
	weft_wr_key(&w, "envs");
	weft_wr_array(&w, (uint32_t)p->nenvs);
	for (size_t i = 0; i < p->nenvs; i++)
		weft_wr_bin(&w, p->envs[i].data, p->envs[i].len);
	weft_wr_key_uint(&w, "next", p->next);
	weft_wr_key_uint(&w, "wnext", p->wnext);
	weft_wr_key_bool(&w, "more", p->more);
	return weft_wr_finish(&w);
}

static int job_read_entry(struct weft_rd *rd, void *ctx, unsigned key)
{
	weft_export_page *p = ctx;
	weft_job_info *j = &p->job;
	switch (key) {
	case J_ID:
		return wire_rd_job(rd, j->id);
	case J_ENDED:
		return weft_rd_bool(rd, &p->ended);
	case J_KEY:
		p->has_key = true;
		return wire_rd_fixed_bin(rd, p->key, WEFT_MAC_BYTES);
	case J_VK:
		p->has_vk = true;
		return wire_rd_fixed_bin(rd, p->vk, WEFT_PUBKEY_BYTES);
	case J_CREATED:
		return weft_rd_i64(rd, &j->created_ns);
	case J_ENDT:
		return weft_rd_i64(rd, &p->ended_ns);
	case J_EXIT:
		return weft_rd_i32(rd, &p->exit_code);
	case J_CMD:
	case J_USER:
	case J_HOST:
	case J_CWD:
	case J_GIT:
		return wire_job_text_read(rd, j, key - J_CMD);
	}
	return WEFT_EINVAL;
}

/* [pk, enrolled] */
static int writer_read(struct weft_rd *rd, void *item, void *ctx)
{
	weft_export_writer *w = item;
	(void)ctx;
	int rc = wire_rd_pair(rd);
	if (rc == WEFT_OK)
		rc = wire_rd_fixed_bin(rd, w->pk, WEFT_PUBKEY_BYTES);
	if (rc == WEFT_OK)
		rc = weft_rd_i64(rd, &w->enrolled_ns);
	return rc;
}

static int env_read(struct weft_rd *rd, void *item, void *ctx)
{
	weft_export_env *e = item;
	(void)ctx;
	return weft_rd_bytes(rd, true, WEFT_MAX_ENVELOPE_BYTES, &e->data,
			     &e->len);
}

static int page_read_entry(struct weft_rd *rd, void *ctx, unsigned key)
{
	weft_export_page *p = ctx;
	switch (key) {
	case P_JOB:
		return weft_rd_fields(rd, &job_keys, false, job_read_entry, p);
	case P_WRITERS:
		return weft_rd_list(rd, WEFT_MAX_EXPORT_WRITERS,
				    WRITER_MIN_BYTES, sizeof(*p->writers),
				    (void **)&p->writers, &p->nwriters,
				    writer_read, NULL);
	case P_ENVS:
		return weft_rd_list(rd, WEFT_MAX_EXPORT_ENVELOPES, 1,
				    sizeof(*p->envs), (void **)&p->envs,
				    &p->nenvs, env_read, NULL);
	case P_NEXT:
		return weft_rd_uint(rd, INT64_MAX, &p->next);
	case P_WNEXT:
		return weft_rd_uint(rd, INT64_MAX, &p->wnext);
	case P_MORE:
		return weft_rd_bool(rd, &p->more);
	}
	return WEFT_EINVAL;
}

int weft_export_page_decode(const uint8_t *buf, size_t len, weft_export_page *p)
{
	memset(p, 0, sizeof(*p));
	int rc = wire_message_read(buf, len, WEFT_MAX_MESSAGE_BYTES,
				   WEFT_REPLY_EXPORT, &page_keys,
				   page_read_entry, p);
	if (rc == WEFT_OK && p->has_key && !p->ended)
		rc = WEFT_EINVAL;
	if (rc) {
		weft_export_page_release(p);
		memset(p, 0, sizeof(*p));
	}
	return rc;
}

void weft_export_page_release(weft_export_page *p)
{
	free(p->job.command);
	free(p->writers);
	free(p->envs);
	p->job.command = NULL;
	p->writers = NULL;
	p->envs = NULL;
	p->nwriters = p->nenvs = 0;
}
