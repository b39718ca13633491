/*
 * wrap_internal.h - private to libweft_wrap: what its files share. The
 * one-shot path (weft_wrap_record, then a shipper) and the streaming
 * writer (stream.c) make writers, seal parts and deliver fragments
 * through the same functions.
 */
#ifndef WEFT_WRAP_INTERNAL_H
#define WEFT_WRAP_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <weft/wrap.h>

/* Whether url names a coordinator in the sending process (inproc://: a
 * local `weft run`'s), which no other process can reach. */
bool wrap_url_in_process(const char *url);

/* Format a message for the user into err; returns WEFT_EINVAL. */
int wrap_fail(char *err, size_t errsz, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* ---- record.c ---- */

/* A fresh writer for env's job: a key pair (into key; wiped on error),
 * its enrolment request, SPOOL/w-WRITER created and locked. */
int wrap_writer_new(const weft_wrap_env *env, weft_writer_key *key,
		    weft_spool_writer **w, char *err, size_t errsz);
/* r cut into parts under run's budget, at most WEFT_MAX_PARTS (*parts
 * malloc'ed); an error with a message naming the task. */
int wrap_split_run(const weft_wrap_run *run, const weft_report *r,
		   weft_wrap_part **parts, size_t *n, char *err, size_t errsz);
/* Part p (i of n) of r as fragment seq, sealed with key: the request to
 * send (and spool), into req. */
int wrap_seal_part(const weft_wrap_run *run, const weft_writer_key *key,
		   const weft_report *r, const weft_wrap_part *p, uint64_t seq,
		   size_t i, size_t n, weft_buf *req);

/* ---- spool.c ---- */

/* The spool directory w lives in. */
const char *wrap_spool_of(const weft_spool_writer *w);
/* Put bufs[i] as seqs[i] (bufs NULL: delete seqs[i]), all of them, from
 * several threads so that their fsyncs share journal commits. WEFT_OK or
 * the first error (some may have been done then). */
int wrap_spool_many(weft_spool_writer *w, const uint64_t *seqs,
		    const weft_buf *bufs, size_t n);

/* ---- ship.c: one attempt at a time, for a caller that waits between
 * attempts itself (stream.c) ---- */

/* The client for url (opened at the first call; a failure is said once). */
weft_wrap_client *wrap_ship_client(weft_wrap_shipper *s, const char *url);
/* One attempt at the writer's enrolment: WEFT_OK when answered (a
 * refusal is said), WEFT_EIO to try again. */
int wrap_ship_enrol_once(weft_wrap_shipper *s, weft_wrap_client *c,
			 const weft_spool_state *st, int timeout_ms);
/* One attempt at fragment seq: WEFT_OK when it has a verdict (*acked when
 * stored or duplicate: the caller deletes it; a rejected or corrupt one
 * is moved aside and said), WEFT_EIO or WEFT_ENOMEM to try again. The
 * counts are in the shipper's stats. */
int wrap_ship_once(weft_wrap_shipper *s, weft_wrap_client *c,
		   weft_spool_writer *w, uint64_t seq, int timeout_ms,
		   bool *acked);
/* The last transport error ("" when none). */
const char *wrap_ship_last_err(const weft_wrap_shipper *s);
/* One request to the coordinator at url, retried like a fragment until
 * it is answered or the shipper's deadline passes (WEFT_EIO). *taken:
 * stored or already there; a refusal is said on the shipper's msgs. */
int wrap_ship_request(weft_wrap_shipper *s, const char *url,
		      const uint8_t *req, size_t len, bool *taken);

#endif /* WEFT_WRAP_INTERNAL_H */
