/*
 * record.c - a traced run becomes signed fragments in the spool: a fresh
 * writer key per wrapper (so a writer's sequence is one run's parts and
 * nothing else), its enrolment request kept with it (so whoever delivers
 * the spool later can enrol it without the token's owner), the run cut
 * into parts under the wire's payload limit, each part sealed in an
 * envelope and spooled durably before anything is sent.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include <weft/wrap.h>
#include "wrap_internal.h"

static void fill_task(weft_fragment *f, const weft_wrap_run *run)
{
	const weft_wrap_identity *id = run->id;
	snprintf(f->task.id, sizeof(f->task.id), "%s", id->task);
	snprintf(f->task.name, sizeof(f->task.name), "%s",
		 run->name ? run->name : "");
	snprintf(f->task.parent, sizeof(f->task.parent), "%s",
		 run->env->parent);
	memcpy(f->task.engine, id->engine, sizeof(id->engine));
	f->task.nengine = id->nengine;
	snprintf(f->preflight, sizeof(f->preflight), "%s",
		 run->preflight ? run->preflight : "");
}

void weft_wrap_part_view(const weft_report *r, const weft_wrap_part *p,
			 weft_report *view)
{
	*view = *r;
	view->nprocesses = p->proc_end - p->proc_begin;
	view->processes =
		view->nprocesses ? r->processes + p->proc_begin : NULL;
	view->nfiles = p->file_end - p->file_begin;
	view->files = view->nfiles ? r->files + p->file_begin : NULL;
	if (!p->warnings) {
		view->warnings = NULL;
		view->nwarnings = 0;
		view->dropped_events = 0;
	}
}

int wrap_seal_part(const weft_wrap_run *run, const weft_writer_key *key,
		   const weft_report *r, const weft_wrap_part *p, uint64_t seq,
		   size_t i, size_t n, weft_buf *req)
{
	weft_fragment f;
	weft_fragment_init(&f);
	memcpy(f.job, run->env->job, sizeof(f.job));
	memcpy(f.writer, key->pk, sizeof(f.writer));
	f.seq = seq;
	f.part = (uint32_t)i;
	f.nparts = (uint32_t)n;
	fill_task(&f, run);
	weft_wrap_part_view(r, p, &f.report);
	weft_buf payload, env;
	weft_buf_init(&payload);
	weft_buf_init(&env);
	int err = weft_fragment_encode(&f, &payload);
	if (!err)
		err = weft_envelope_seal(run->env->job, key, f.seq,
					 payload.data, payload.len, &env);
	if (!err)
		err = weft_req_fragment(env.data, env.len, req);
	weft_buf_free(&payload);
	weft_buf_free(&env);
	return err;
}

/* Seal and spool part i of n as seq i + 1. */
static int spool_part(weft_spool_writer *w, const weft_wrap_run *run,
		      const weft_writer_key *key, const weft_report *r,
		      const weft_wrap_part *p, size_t i, size_t n)
{
	weft_buf req;
	weft_buf_init(&req);
	int err = wrap_seal_part(run, key, r, p, i + 1, i, n, &req);
	if (!err)
		err = weft_spool_put(w, i + 1, req.data, req.len);
	weft_buf_free(&req);
	return err;
}

int wrap_writer_new(const weft_wrap_env *env, weft_writer_key *key,
		    weft_spool_writer **w, char *err, size_t errsz)
{
	if (weft_writer_key_new(key) != WEFT_OK) {
		snprintf(err, errsz, "cannot make a writer key (libsodium)");
		return WEFT_EIO;
	}
	weft_spool_state st = {0};
	snprintf(st.coordinator, sizeof(st.coordinator), "%s",
		 env->coordinator);
	memcpy(st.job, env->job, sizeof(st.job));
	weft_pubkey_to_text(key->pk, st.writer);
	weft_buf enrol;
	weft_buf_init(&enrol);
	int rc = weft_req_enrol(env->job, env->token, key->pk, &enrol);
	if (rc == WEFT_OK) {
		st.enrol = enrol.data;
		st.enrol_len = enrol.len;
		rc = weft_spool_writer_create(env->spool, &st, w);
		if (rc != WEFT_OK)
			snprintf(err, errsz,
				 "cannot create a writer in the spool %s: %s "
				 "(%m)",
				 env->spool, weft_strerror(rc));
	} else {
		snprintf(err, errsz, "cannot encode the enrolment: %s",
			 weft_strerror(rc));
	}
	weft_buf_free(&enrol);
	if (rc != WEFT_OK)
		sodium_memzero(key, sizeof(*key));
	return rc;
}

int wrap_split_run(const weft_wrap_run *run, const weft_report *r,
		   weft_wrap_part **parts, size_t *n, char *err, size_t errsz)
{
	size_t budget = run->part_bytes ? run->part_bytes
					: WEFT_WRAP_PART_BYTES_DEFAULT;
	int rc = weft_wrap_split(r, budget, parts, n);
	if (rc != WEFT_OK) {
		snprintf(err, errsz,
			 "cannot cut the run of %s into parts of %zu bytes: %s",
			 run->id->task, budget, weft_strerror(rc));
		return rc;
	}
	if (*n > WEFT_MAX_PARTS) {
		snprintf(err, errsz,
			 "the run of %s needs %zu parts (at most %d)",
			 run->id->task, *n, WEFT_MAX_PARTS);
		free(*parts);
		*parts = NULL;
		return WEFT_ETOOBIG;
	}
	return WEFT_OK;
}

/* The whole run sealed as its one part, into req, when that fits the part
 * budget: most runs do, and then no record is encoded twice (cutting
 * encodes every record once to learn its size, weft_wrap_split). req is
 * left empty when the run needs cutting. Whatever fits here, cutting
 * would have left whole too: the fragment holds every record. */
static int seal_whole(const weft_wrap_run *run, const weft_writer_key *key,
		      const weft_report *r, weft_buf *req)
{
	const weft_wrap_part whole = {
		.proc_end = r->nprocesses,
		.file_end = r->nfiles,
		.warnings = true,
	};
	size_t budget = run->part_bytes ? run->part_bytes
					: WEFT_WRAP_PART_BYTES_DEFAULT;
	/* Not even tried when the paths alone are over the budget (a file
	 * record is its path and at least 24 bytes more): sealing all of a
	 * run that large would be work thrown away. */
	size_t least = 0;
	for (size_t i = 0; i < r->nfiles && least <= budget; i++)
		least += strlen(r->files[i].path) + 24;
	if (least > budget)
		return WEFT_OK;
	int err = wrap_seal_part(run, key, r, &whole, 1, 0, 1, req);
	if (err == WEFT_ETOOBIG || (err == WEFT_OK && req->len > budget)) {
		weft_buf_free(req);
		weft_buf_init(req);
		err = WEFT_OK;
	}
	return err;
}

/* Spool r into w as one part or as the parts it is cut into; *n their
 * count. */
static int spool_run(weft_spool_writer *w, const weft_wrap_run *run,
		     const weft_writer_key *key, const weft_report *r,
		     size_t *n, char *err, size_t errsz)
{
	weft_buf req;
	weft_buf_init(&req);
	int rc = seal_whole(run, key, r, &req);
	if (rc == WEFT_OK && req.len) {
		*n = 1;
		rc = weft_spool_put(w, 1, req.data, req.len);
	}
	weft_buf_free(&req);
	if (rc != WEFT_OK || *n == 1) {
		if (rc != WEFT_OK)
			snprintf(err, errsz,
				 "cannot spool fragment 1 of 1 in %s: %s",
				 weft_spool_writer_dir(w), weft_strerror(rc));
		return rc;
	}
	weft_wrap_part *parts = NULL;
	rc = wrap_split_run(run, r, &parts, n, err, errsz);
	for (size_t i = 0; rc == WEFT_OK && i < *n; i++) {
		rc = spool_part(w, run, key, r, &parts[i], i, *n);
		if (rc != WEFT_OK)
			snprintf(err, errsz,
				 "cannot spool fragment %zu of %zu in %s: %s",
				 i + 1, *n, weft_spool_writer_dir(w),
				 weft_strerror(rc));
	}
	free(parts);
	return rc;
}

int weft_wrap_record(const weft_wrap_run *run, const weft_report *r,
		     weft_spool_writer **out, size_t *nfragments, char *err,
		     size_t errsz)
{
	*out = NULL;
	*nfragments = 0;
	weft_writer_key key;
	weft_spool_writer *w = NULL;
	size_t n = 0;
	int rc = wrap_writer_new(run->env, &key, &w, err, errsz);
	if (rc == WEFT_OK)
		rc = spool_run(w, run, &key, r, &n, err, errsz);
	sodium_memzero(&key, sizeof(key));
	if (rc != WEFT_OK) {
		/* Half a run would be delivered as gaps: take it all back. */
		if (w) {
			uint64_t *seqs;
			size_t k;
			if (weft_spool_list(w, &seqs, &k) == WEFT_OK) {
				for (size_t i = 0; i < k; i++)
					weft_spool_delete(w, seqs[i]);
				free(seqs);
			}
			weft_spool_writer_close(w, true);
		}
		return rc;
	}
	*out = w;
	*nfragments = n;
	return WEFT_OK;
}
