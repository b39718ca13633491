/*
 * export.c - EXPORT requests (weft/wire.h "Export"): the coordinator's
 * answer, one page of a job's signed envelopes read from its store, and
 * the client call `weft pull URL` makes.
 *
 * A page is read through a read-only connection of its own, opened per
 * request: the store writer thread and its transaction are never touched,
 * so exporting a large job slows ingest only by the I/O it costs. Pages
 * are bounded (WEFT_MAX_EXPORT_BYTES) and so are the exports answered at
 * once (COORD_MAX_EXPORTS; more are told to retry), so exports hold at
 * most a few pages of memory, and keep at most that many of nng's
 * callback threads busy reading, whoever asks.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coordinator_internal.h"

/* Export pages being read or encoded at once, in this process. */
#define COORD_MAX_EXPORTS 4

static pthread_mutex_t exports_mu = PTHREAD_MUTEX_INITIALIZER;
static int exports_running;

static bool export_slot_take(void)
{
	pthread_mutex_lock(&exports_mu);
	bool ok = exports_running < COORD_MAX_EXPORTS;
	if (ok)
		exports_running++;
	pthread_mutex_unlock(&exports_mu);
	return ok;
}

static void export_slot_give(void)
{
	pthread_mutex_lock(&exports_mu);
	exports_running--;
	pthread_mutex_unlock(&exports_mu);
}

bool coord_export_request(const uint8_t *buf, size_t len)
{
	int kind;
	return weft_message_kind(buf, len, &kind) == WEFT_OK &&
	       kind == WEFT_REQ_EXPORT;
}

int coord_export(weft_coordinator *c, const uint8_t *buf, size_t len,
		 weft_buf *out, weft_verdict *v)
{
	memset(v, 0, sizeof(*v));
	weft_buf_init(out);
	char job[WEFT_JOB_ID_BYTES + 1];
	uint64_t after, wafter;
	int err = weft_export_request_decode(buf, len, job, &after, &wafter);
	if (err) {
		v->status = WEFT_ACK_REJECTED;
		v->reason = err == WEFT_ETOOBIG ? WEFT_REJECT_OVERSIZE
						: WEFT_REJECT_MALFORMED;
		snprintf(v->detail, sizeof(v->detail),
			 "export request of %zu bytes: %s", len,
			 weft_strerror(err));
		return err;
	}
	if (!export_slot_take()) {
		v->status = WEFT_ACK_RETRY;
		snprintf(v->detail, sizeof(v->detail),
			 "%d exports running: try again later",
			 COORD_MAX_EXPORTS);
		return WEFT_EIO;
	}
	weft_store *s;
	err = weft_store_open_readonly(c->store_path, &s);
	if (!err) {
		err = weft_store_export(s, job, after, wafter,
					WEFT_MAX_EXPORT_BYTES, out);
		if (err && err != WEFT_ENOTFOUND)
			snprintf(v->detail, sizeof(v->detail), "export: %s",
				 err == WEFT_EDB ? weft_store_errmsg(s)
						 : weft_strerror(err));
		weft_store_close(s);
	} else {
		snprintf(v->detail, sizeof(v->detail),
			 "export: store %.160s: %s", c->store_path,
			 weft_strerror(err));
	}
	export_slot_give();
	if (err == WEFT_ENOTFOUND) {
		v->status = WEFT_ACK_REJECTED;
		v->reason = WEFT_REJECT_UNKNOWN_JOB;
		snprintf(v->detail, sizeof(v->detail), "no job %s", job);
	} else if (err) {
		v->status = WEFT_ACK_RETRY;
	}
	return err;
}

int weft_coordinator_export(const char *url, const char *tls_ca,
			    const char *job, uint64_t after, uint64_t wafter,
			    int timeout_ms, uint8_t **raw,
			    weft_export_page *page, weft_ack *ack,
			    bool *is_page, char *err, size_t errsz)
{
	memset(page, 0, sizeof(*page));
	memset(ack, 0, sizeof(*ack));
	*raw = NULL;
	*is_page = false;
	weft_buf req;
	weft_buf_init(&req);
	int rc = weft_req_export(job, after, wafter, &req);
	if (rc) {
		snprintf(err, errsz, "job id %s: %s", job, weft_strerror(rc));
		weft_buf_free(&req);
		return rc;
	}
	size_t rlen;
	rc = weft_coordinator_call(url, tls_ca, req.data, req.len, timeout_ms,
				   raw, &rlen, err, errsz);
	weft_buf_free(&req);
	if (rc)
		return rc;
	int kind;
	rc = weft_message_kind(*raw, rlen, &kind);
	if (rc == WEFT_OK && kind == WEFT_REPLY_EXPORT) {
		rc = weft_export_page_decode(*raw, rlen, page);
		*is_page = rc == WEFT_OK;
	} else if (rc == WEFT_OK) {
		weft_reply r;
		rc = weft_reply_decode(*raw, rlen, &r);
		if (rc == WEFT_OK && r.kind != WEFT_REPLY_ACK)
			rc = WEFT_EINVAL;
		if (rc == WEFT_OK)
			*ack = r.ack;
		weft_reply_release(&r);
	}
	if (rc) {
		snprintf(err, errsz,
			 "%s answered an export request with something else "
			 "than a page or an acknowledgement: %s",
			 url, weft_strerror(rc));
		free(*raw);
		*raw = NULL;
	}
	return rc;
}
