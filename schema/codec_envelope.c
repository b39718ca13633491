/*
 * codec_envelope.c - the signed envelope {v, job, writer, seq, payload,
 * sig} and the field readers the distribution codecs share.
 *
 * The envelope is what a store keeps verbatim and what relays pass on, so
 * its decoder does not copy: the payload is a slice of the input. Every
 * key is required; job is the UUID text, writer the 32-byte Ed25519
 * public key, sig the 64-byte signature (see weft/wire.h for what it
 * covers).
 */
#include <string.h>

#include "wire_codec.h"

int wire_rd_job(struct weft_rd *rd, char out[WEFT_JOB_ID_BYTES + 1])
{
	int rc = weft_rd_fixed_str(rd, out, WEFT_JOB_ID_BYTES + 1);
	if (rc == WEFT_OK && weft_job_id_check(out))
		rc = WEFT_EINVAL;
	return rc;
}

int wire_rd_fixed_bin(struct weft_rd *rd, uint8_t *out, size_t n)
{
	const uint8_t *data;
	size_t got;
	int rc = weft_rd_bytes(rd, true, n, &data, &got);
	if (rc)
		return rc;
	if (got != n)
		return WEFT_EINVAL;
	memcpy(out, data, n);
	return WEFT_OK;
}

int wire_str_check(const char *s, size_t max)
{
	if (!s)
		return WEFT_EINVAL;
	return strnlen(s, max + 1) > max ? WEFT_ETOOBIG : WEFT_OK;
}

int wire_rd_pair(struct weft_rd *rd)
{
	uint32_t two;
	int rc = weft_rd_array(rd, 2, 1, &two);
	if (rc == WEFT_OK && two != 2)
		rc = WEFT_EINVAL;
	return rc;
}

void wire_origin_write(struct weft_wr *w, const char *job,
		       const uint8_t writer[WEFT_PUBKEY_BYTES], uint64_t seq)
{
	weft_wr_key_cstr(w, "job", job);
	weft_wr_key_bin(w, "writer", writer, WEFT_PUBKEY_BYTES);
	weft_wr_key_uint(w, "seq", seq);
}

int wire_origin_read(struct weft_rd *rd, unsigned k,
		     char job[WEFT_JOB_ID_BYTES + 1],
		     uint8_t writer[WEFT_PUBKEY_BYTES], uint64_t *seq)
{
	switch (k) {
	case WIRE_ORIGIN_JOB:
		return wire_rd_job(rd, job);
	case WIRE_ORIGIN_WRITER:
		return wire_rd_fixed_bin(rd, writer, WEFT_PUBKEY_BYTES);
	case WIRE_ORIGIN_SEQ: {
		int rc = weft_rd_uint(rd, UINT64_MAX, seq);
		return rc ? rc : *seq == 0 ? WEFT_EINVAL : WEFT_OK;
	}
	}
	return WEFT_EINVAL;
}

/* E_JOB..E_SEQ in WIRE_ORIGIN_* order. */
enum { E_JOB, E_WRITER, E_SEQ, E_PAYLOAD, E_SIG, E_NKEYS };
static const char *const env_key_names[E_NKEYS] = {
	"job", "writer", "seq", "payload", "sig",
};
static const struct weft_rd_keys env_keys = {
	env_key_names,
	E_NKEYS,
	(1u << E_NKEYS) - 1,
};

static int envelope_write(weft_buf *out, const weft_envelope *e)
{
	struct weft_wr w;
	weft_wr_init(&w, out);
	weft_wr_versioned_map(&w, E_NKEYS);
	wire_origin_write(&w, e->job, e->writer, e->seq);
	weft_wr_key_bin(&w, "payload", e->payload, e->payload_len);
	weft_wr_key_bin(&w, "sig", e->sig, WEFT_SIG_BYTES);
	return weft_wr_finish(&w);
}

int weft_envelope_seal(const char *job, const weft_writer_key *key,
		       uint64_t seq, const uint8_t *payload, size_t len,
		       weft_buf *out)
{
	if (weft_job_id_check(job) || seq == 0 || (!payload && len))
		return WEFT_EINVAL;
	if (len > WEFT_MAX_PAYLOAD_BYTES)
		return WEFT_ETOOBIG;
	weft_envelope e;
	memcpy(e.job, job, WEFT_JOB_ID_BYTES + 1);
	memcpy(e.writer, key->pk, WEFT_PUBKEY_BYTES);
	e.seq = seq;
	e.payload = payload;
	e.payload_len = len;
	int rc = weft_envelope_sign_raw(job, key, seq, payload, len, e.sig);
	return rc ? rc : envelope_write(out, &e);
}

static int env_read_entry(struct weft_rd *rd, void *ctx, unsigned key)
{
	weft_envelope *e = ctx;
	switch (key) {
	case E_JOB:
	case E_WRITER:
	case E_SEQ:
		return wire_origin_read(rd, key - E_JOB, e->job, e->writer,
					&e->seq);
	case E_PAYLOAD:
		return weft_rd_bytes(rd, true, WEFT_MAX_PAYLOAD_BYTES,
				     &e->payload, &e->payload_len);
	case E_SIG:
		return wire_rd_fixed_bin(rd, e->sig, WEFT_SIG_BYTES);
	}
	return WEFT_EINVAL;
}

int weft_envelope_decode(const uint8_t *buf, size_t len, weft_envelope *e)
{
	memset(e, 0, sizeof(*e));
	int rc = weft_rd_message(buf, len, WEFT_MAX_ENVELOPE_BYTES, &env_keys,
				 env_read_entry, e);
	if (rc)
		memset(e, 0, sizeof(*e));
	return rc;
}
