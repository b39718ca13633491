/*
 * codec_message.c - the coordinator's requests and replies.
 *
 * Every message is a map: "v" first, then "t" (the kind, a small uint),
 * then the kind's own keys, all required but one of the two proofs of
 * ENROL and JOB_END ("sig", "mac"). Reading "t" second lets the
 * decoder pick the key set before it meets any other key, so the strict
 * unknown-key and duplicate-key checks of codec.h hold per kind.
 *
 * Requests carry proofs computed here from the token (weft_req_enrol,
 * weft_req_job_end), so a caller never builds one by hand; a job create
 * carries the token itself (the coordinator keeps only the public
 * verifier derived from it: weft_job_verifier).
 */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "wire_codec.h"

/* ---- Shared: a versioned map whose second key is "t" ---- */

static const char *const kind_key_name[1] = {"t"};
static const struct weft_rd_keys kind_keys = {kind_key_name, 1, 1};

/* Reads the header and the kind (within [1, max_kind]); *n is the number
 * of entries left. */
int wire_kind_read(struct weft_rd *rd, int max_kind, int *kind, uint32_t *n)
{
	uint32_t count, seen = 0;
	unsigned idx;
	int64_t k;
	int rc = weft_rd_versioned_map(rd, &count);
	if (rc == WEFT_OK && count == 0)
		rc = WEFT_EINVAL;
	if (rc == WEFT_OK)
		rc = weft_rd_key(rd, &kind_keys, &seen, &idx);
	if (rc == WEFT_OK)
		rc = weft_rd_int(rd, 1, max_kind, &k);
	if (rc)
		return rc;
	*kind = (int)k;
	*n = count - 1;
	return WEFT_OK;
}

/* The remaining n entries of a map of keys. */
int wire_entries_read(struct weft_rd *rd, uint32_t n,
		      const struct weft_rd_keys *keys, weft_rd_entry_fn entry,
		      void *ctx)
{
	uint32_t seen = 0;
	int rc = WEFT_OK;
	for (uint32_t i = 0; rc == WEFT_OK && i < n; i++) {
		unsigned key;
		rc = weft_rd_key(rd, keys, &seen, &key);
		if (rc == WEFT_OK)
			rc = entry(rd, ctx, key);
	}
	return rc ? rc : weft_rd_check_required(keys, seen);
}

int wire_message_read(const uint8_t *buf, size_t len, size_t max_len, int kind,
		      const struct weft_rd_keys *keys, weft_rd_entry_fn entry,
		      void *ctx)
{
	if (len > max_len)
		return WEFT_ETOOBIG;
	struct weft_rd rd;
	weft_rd_init(&rd, buf, len);
	uint32_t n;
	int got;
	int rc = wire_kind_read(&rd, WIRE_MAX_KIND, &got, &n);
	if (rc == WEFT_OK && got != kind)
		rc = WEFT_EINVAL;
	if (rc == WEFT_OK)
		rc = wire_entries_read(&rd, n, keys, entry, ctx);
	if (rc == WEFT_OK && rd.pos != len)
		rc = WEFT_ETRAILING;
	return rc;
}

void wire_kind_write(struct weft_wr *w, int kind, uint32_t nkeys)
{
	weft_wr_versioned_map(w, nkeys + 1);
	weft_wr_key_uint(w, "t", (uint64_t)kind);
}

/* ---- Shared: the strings describing a job ---- */

int wire_job_text_check(const weft_job_info *j)
{
	const char *cmd = j->command ? j->command : "";
	int rc = wire_str_check(cmd, WEFT_MAX_COMMAND_BYTES);
	if (rc || (rc = wire_str_check(j->user, WEFT_MAX_FIELD_BYTES)) ||
	    (rc = wire_str_check(j->host, WEFT_MAX_FIELD_BYTES)) ||
	    (rc = wire_str_check(j->cwd, WEFT_MAX_PATH_BYTES)) ||
	    (rc = wire_str_check(j->git, WEFT_MAX_FIELD_BYTES)))
		return rc;
	return WEFT_OK;
}

void wire_job_text_write(struct weft_wr *w, const weft_job_info *j)
{
	weft_wr_key_cstr(w, "cmd", j->command ? j->command : "");
	weft_wr_key_cstr(w, "user", j->user);
	weft_wr_key_cstr(w, "host", j->host);
	weft_wr_key_cstr(w, "cwd", j->cwd);
	weft_wr_key_cstr(w, "git", j->git);
}

int wire_job_text_read(struct weft_rd *rd, weft_job_info *j, unsigned t)
{
	switch (t) {
	case WIRE_JOB_CMD:
		return weft_rd_cstr(rd, WEFT_MAX_COMMAND_BYTES, &j->command);
	case WIRE_JOB_USER:
		return weft_rd_fixed_str(rd, j->user, sizeof(j->user));
	case WIRE_JOB_HOST:
		return weft_rd_fixed_str(rd, j->host, sizeof(j->host));
	case WIRE_JOB_CWD:
		return weft_rd_fixed_str(rd, j->cwd, sizeof(j->cwd));
	case WIRE_JOB_GIT:
		return weft_rd_fixed_str(rd, j->git, sizeof(j->git));
	}
	return WEFT_EINVAL;
}

/* ---- Requests ---- */

/* Every request key, in one table: a kind's key set is a mask of it. */
enum {
	Q_JOB,
	Q_TOKEN,
	Q_CMD, /* Q_CMD..Q_GIT in WIRE_JOB_* order */
	Q_USER,
	Q_HOST,
	Q_CWD,
	Q_GIT,
	Q_TIME,
	Q_EXIT,
	Q_MAC,
	Q_WRITER,
	Q_ENV,
	Q_SIG,
	Q_AUTH,
	Q_NKEYS
};
static const char *const req_key_names[Q_NKEYS] = {
	"job",  "token", "cmd", "user",   "host", "cwd", "git",
	"time", "exit",  "mac", "writer", "env",  "sig", "auth",
};
#define B(k) (1u << (k))
/* Keys a request may leave out: one of the two proofs (checked after the
 * decode: at least one must be there); a job create's proof of the
 * submit key (absent: the coordinator refuses it as "not allowed", not
 * as malformed). */
#define REQ_OPTIONAL (B(Q_MAC) | B(Q_SIG) | B(Q_AUTH))
static const uint32_t req_key_sets[] = {
	[WEFT_REQ_JOB_CREATE] = B(Q_JOB) | B(Q_TOKEN) | B(Q_CMD) | B(Q_USER) |
				B(Q_HOST) | B(Q_CWD) | B(Q_GIT) | B(Q_TIME) |
				B(Q_AUTH),
	[WEFT_REQ_JOB_END] =
		B(Q_JOB) | B(Q_EXIT) | B(Q_TIME) | B(Q_MAC) | B(Q_SIG),
	[WEFT_REQ_ENROL] = B(Q_JOB) | B(Q_WRITER) | B(Q_MAC) | B(Q_SIG),
	[WEFT_REQ_FRAGMENT] = B(Q_ENV),
	[WEFT_REQ_STATUS] = 0, /* job optional */
};

int weft_req_job_create(const weft_job_info *j, const uint8_t *submit_key,
			weft_buf *out)
{
	if (weft_job_id_check(j->id) || weft_token_check(j->token))
		return WEFT_EINVAL;
	int rc = wire_job_text_check(j);
	if (rc)
		return rc;
	struct weft_wr w;
	weft_wr_init(&w, out);
	wire_kind_write(&w, WEFT_REQ_JOB_CREATE, submit_key ? 9 : 8);
	if (submit_key) {
		uint8_t mac[WEFT_MAC_BYTES];
		weft_job_create_mac(submit_key, j, mac);
		weft_wr_key_bin(&w, "auth", mac, WEFT_MAC_BYTES);
	}
	weft_wr_key_cstr(&w, "job", j->id);
	weft_wr_key_cstr(&w, "token", j->token);
	wire_job_text_write(&w, j);
	weft_wr_key_int(&w, "time", j->created_ns);
	return weft_wr_finish(&w);
}

/* Both proofs of token for a request: the job key's signature (sign
 * fills it from the job key) and the legacy MAC. */
typedef int (*proof_sign_fn)(const weft_writer_key *jk, const char *job,
			     const void *what, uint8_t sig[WEFT_SIG_BYTES]);

static int end_sign(const weft_writer_key *jk, const char *job,
		    const void *what, uint8_t sig[WEFT_SIG_BYTES])
{
	return weft_job_end_sign(jk, job, *(const int32_t *)what, sig);
}

static int enrol_sign(const weft_writer_key *jk, const char *job,
		      const void *what, uint8_t sig[WEFT_SIG_BYTES])
{
	return weft_enrol_sign(jk, job, what, sig);
}

static int token_proof(const char *token, const char *job, const void *what,
		       proof_sign_fn sign, weft_token_proof *p)
{
	weft_writer_key jk;
	uint8_t key[WEFT_MAC_BYTES];
	int rc = weft_job_key(token, &jk);
	if (!rc)
		rc = sign(&jk, job, what, p->sig);
	weft_enrol_key(token, key);
	if (sign == end_sign)
		weft_job_end_mac(key, job, *(const int32_t *)what, p->mac);
	else
		weft_enrol_mac(key, job, what, p->mac);
	sodium_memzero(&jk, sizeof(jk));
	sodium_memzero(key, sizeof(key));
	return rc;
}

/* A request proved by the job's token: JOB_END (its exit code and end
 * time) when pk is NULL, else ENROL (the writer's key pk). */
static int proved_request(const char *job, const char *token, int32_t exit_code,
			  int64_t ended_ns, const uint8_t *pk, weft_buf *out)
{
	if (weft_job_id_check(job) || weft_token_check(token))
		return WEFT_EINVAL;
	weft_token_proof p;
	int rc = pk ? token_proof(token, job, pk, enrol_sign, &p)
		    : token_proof(token, job, &exit_code, end_sign, &p);
	if (rc)
		return rc;
	struct weft_wr w;
	weft_wr_init(&w, out);
	wire_kind_write(&w, pk ? WEFT_REQ_ENROL : WEFT_REQ_JOB_END, pk ? 4 : 5);
	weft_wr_key_cstr(&w, "job", job);
	if (pk) {
		weft_wr_key_bin(&w, "writer", pk, WEFT_PUBKEY_BYTES);
	} else {
		weft_wr_key_int(&w, "exit", exit_code);
		weft_wr_key_int(&w, "time", ended_ns);
	}
	weft_wr_key_bin(&w, "sig", p.sig, WEFT_SIG_BYTES);
	weft_wr_key_bin(&w, "mac", p.mac, WEFT_MAC_BYTES);
	return weft_wr_finish(&w);
}

int weft_req_job_end(const char *job, const char *token, int32_t exit_code,
		     int64_t ended_ns, weft_buf *out)
{
	return proved_request(job, token, exit_code, ended_ns, NULL, out);
}

int weft_req_enrol(const char *job, const char *token,
		   const uint8_t pk[WEFT_PUBKEY_BYTES], weft_buf *out)
{
	return proved_request(job, token, 0, 0, pk, out);
}

int weft_req_fragment(const uint8_t *env, size_t len, weft_buf *out)
{
	if (len > WEFT_MAX_ENVELOPE_BYTES)
		return WEFT_ETOOBIG;
	struct weft_wr w;
	weft_wr_init(&w, out);
	wire_kind_write(&w, WEFT_REQ_FRAGMENT, 1);
	weft_wr_key_bin(&w, "env", env, len);
	return weft_wr_finish(&w);
}

int weft_req_status(const char *job, weft_buf *out)
{
	if (job && weft_job_id_check(job))
		return WEFT_EINVAL;
	struct weft_wr w;
	weft_wr_init(&w, out);
	wire_kind_write(&w, WEFT_REQ_STATUS, job ? 1 : 0);
	if (job)
		weft_wr_key_cstr(&w, "job", job);
	return weft_wr_finish(&w);
}

static int req_read_entry(struct weft_rd *rd, void *ctx, unsigned key)
{
	weft_request *r = ctx;
	weft_job_info *j = &r->job_info;
	int64_t v;
	int rc;
	switch (key) {
	case Q_JOB:
		r->has_job = true;
		rc = wire_rd_job(rd, r->job);
		memcpy(j->id, r->job, sizeof(j->id));
		return rc;
	case Q_TOKEN:
		rc = weft_rd_fixed_str(rd, j->token, sizeof(j->token));
		return rc                           ? rc
		       : weft_token_check(j->token) ? WEFT_EINVAL
						    : WEFT_OK;
	case Q_CMD:
	case Q_USER:
	case Q_HOST:
	case Q_CWD:
	case Q_GIT:
		return wire_job_text_read(rd, j, key - Q_CMD);
	case Q_TIME:
		rc = weft_rd_i64(rd, &v);
		j->created_ns = r->ended_ns = v;
		return rc;
	case Q_EXIT:
		return weft_rd_i32(rd, &r->exit_code);
	case Q_MAC:
		r->proof.has_mac = true;
		return wire_rd_fixed_bin(rd, r->proof.mac, WEFT_MAC_BYTES);
	case Q_SIG:
		r->proof.has_sig = true;
		return wire_rd_fixed_bin(rd, r->proof.sig, WEFT_SIG_BYTES);
	case Q_AUTH:
		r->has_auth = true;
		return wire_rd_fixed_bin(rd, r->auth, WEFT_MAC_BYTES);
	case Q_WRITER:
		return wire_rd_fixed_bin(rd, r->writer, WEFT_PUBKEY_BYTES);
	case Q_ENV:
		return weft_rd_bytes(rd, true, WEFT_MAX_REQUEST_BYTES, &r->env,
				     &r->env_len);
	}
	return WEFT_EINVAL;
}

/* A kind's keys are numbered within its own set; map[] turns them back
 * into the Q_ numbers of the whole table. */
struct req_ctx {
	weft_request *r;
	const unsigned *map;
};

static int req_remap_entry(struct weft_rd *rd, void *ctx, unsigned key)
{
	struct req_ctx *c = ctx;
	return req_read_entry(rd, c->r, c->map[key]);
}

int weft_request_decode(const uint8_t *buf, size_t len, weft_request *r)
{
	memset(r, 0, sizeof(*r));
	if (len > WEFT_MAX_REQUEST_BYTES)
		return WEFT_ETOOBIG;
	struct weft_rd rd;
	weft_rd_init(&rd, buf, len);
	uint32_t n;
	int rc = wire_kind_read(&rd, WEFT_REQ_STATUS, &r->kind, &n);
	if (rc == WEFT_OK) {
		/* Keys outside the kind's set are unknown keys. */
		const char *names[Q_NKEYS];
		unsigned map[Q_NKEYS], nk = 0;
		uint32_t set = req_key_sets[r->kind];
		if (r->kind == WEFT_REQ_STATUS)
			set = B(Q_JOB);
		for (unsigned i = 0; i < Q_NKEYS; i++)
			if (set & B(i)) {
				map[nk] = i;
				names[nk++] = req_key_names[i];
			}
		uint32_t required = 0;
		for (unsigned i = 0; i < nk; i++)
			if (!(B(map[i]) & REQ_OPTIONAL))
				required |= 1u << i;
		struct weft_rd_keys keys = {
			names, nk, r->kind == WEFT_REQ_STATUS ? 0 : required};
		struct req_ctx ctx = {r, map};
		rc = wire_entries_read(&rd, n, &keys, req_remap_entry, &ctx);
	}
	if (rc == WEFT_OK &&
	    (r->kind == WEFT_REQ_ENROL || r->kind == WEFT_REQ_JOB_END) &&
	    !r->proof.has_sig && !r->proof.has_mac)
		rc = WEFT_EINVAL; /* a proof is missing */
	if (rc == WEFT_OK && rd.pos != len)
		rc = WEFT_ETRAILING;
	if (rc) {
		weft_request_release(r);
		memset(r, 0, sizeof(*r));
	}
	return rc;
}

void weft_request_release(weft_request *r)
{
	free(r->job_info.command);
	r->job_info.command = NULL;
}
