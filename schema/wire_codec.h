/*
 * wire_codec.h - private to libweft_schema: the readers and writers the
 * distribution codecs (codec_fragment.c, codec_envelope.c, codec_message.c,
 * codec_reply.c, codec_export.c) share on top of codec.h, and the raw
 * envelope signer.
 */
#ifndef WEFT_WIRE_CODEC_H
#define WEFT_WIRE_CODEC_H

#include "codec.h"
#include <weft/wire.h>

/* A job id (a lowercase UUID) into out. */
int wire_rd_job(struct weft_rd *rd, char out[WEFT_JOB_ID_BYTES + 1]);
/* A bin of exactly n bytes, copied to out. */
int wire_rd_fixed_bin(struct weft_rd *rd, uint8_t *out, size_t n);
/* A string field of at most max bytes, checked before writing. */
int wire_str_check(const char *s, size_t max);
/* An array header of exactly two elements: a [key, value] entry. */
int wire_rd_pair(struct weft_rd *rd);

/* Where a fragment comes from, the first keys of both an envelope and a
 * fragment: "job", "writer" (its public key) and "seq" (from 1). A map's
 * key enum lists them first, in this order. */
enum { WIRE_ORIGIN_JOB, WIRE_ORIGIN_WRITER, WIRE_ORIGIN_SEQ };
void wire_origin_write(struct weft_wr *w, const char *job,
		       const uint8_t writer[WEFT_PUBKEY_BYTES], uint64_t seq);
/* The value of origin key k (WIRE_ORIGIN_*) into job, writer or seq. */
int wire_origin_read(struct weft_rd *rd, unsigned k,
		     char job[WEFT_JOB_ID_BYTES + 1],
		     uint8_t writer[WEFT_PUBKEY_BYTES], uint64_t *seq);

/* The strings describing a job (weft_job_info: cmd, user, host, cwd, git),
 * with the same keys and limits in a job create request and an export
 * page (codec_message.c). A map's key enum lists them in this order. */
enum { WIRE_JOB_CMD, WIRE_JOB_USER, WIRE_JOB_HOST, WIRE_JOB_CWD, WIRE_JOB_GIT };
/* Every string within its limit (a NULL command is ""), before writing. */
int wire_job_text_check(const weft_job_info *j);
/* The five keys and their values, in the order above. */
void wire_job_text_write(struct weft_wr *w, const weft_job_info *j);
/* The value of string key t (WIRE_JOB_*) into j; the command is
 * allocated. */
int wire_job_text_read(struct weft_rd *rd, weft_job_info *j, unsigned t);

/* Kinds ("t") a message may carry at all. */
#define WIRE_MAX_KIND 127

/* Messages (codec_message.c): a versioned map whose second key is "t",
 * the kind, within [1, max_kind]; *n is the number of entries left. */
int wire_kind_read(struct weft_rd *rd, int max_kind, int *kind, uint32_t *n);
/* The remaining n entries of a map of keys (unknown, duplicate and
 * missing required keys checked). */
int wire_entries_read(struct weft_rd *rd, uint32_t n,
		      const struct weft_rd_keys *keys, weft_rd_entry_fn entry,
		      void *ctx);
/* A whole message of one kind in buf (at most max_len bytes): the kind
 * checked, then its entries by keys, and nothing after them. */
int wire_message_read(const uint8_t *buf, size_t len, size_t max_len, int kind,
		      const struct weft_rd_keys *keys, weft_rd_entry_fn entry,
		      void *ctx);
/* Header of a message of kind with nkeys keys besides "v" and "t". */
void wire_kind_write(struct weft_wr *w, int kind, uint32_t nkeys);

/* TASK_START (codec_task_start.c): every field within its limit. */
int wire_task_start_check(const weft_task_start *ts);

/* Ed25519 signature of (job, key->pk, seq, BLAKE2b-256(payload)). */
int weft_envelope_sign_raw(const char *job, const weft_writer_key *key,
			   uint64_t seq, const uint8_t *payload, size_t len,
			   uint8_t sig[WEFT_SIG_BYTES]);

#endif /* WEFT_WIRE_CODEC_H */
