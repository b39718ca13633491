/*
 * wire_crypto.c - the crypto both ends of a weft connection share: job ids
 * and tokens, writer key pairs, envelope signatures, and the proofs of
 * knowledge of WEFT_JOB_TOKEN (libsodium): signatures by a job key derived
 * from the token, and the legacy MACs an older weft made.
 *
 * Why a key pair for the token: whatever a coordinator keeps to check a
 * proof ends up in its store, and stores get copied. A MAC key checks and
 * makes proofs alike; an Ed25519 public key only checks them.
 *
 * It lives in schema/ because wrappers (signing) and coordinators and
 * stores (verifying) both need exactly the same bytes under the signature;
 * a second copy on either side would be a second format.
 *
 * Signatures cover a hash of the payload, not the payload: Ed25519 over
 * 64 KiB costs ~5x a BLAKE2b of it, and the hash binds the payload just
 * as well.
 */
#include <string.h>

#include <sodium.h>

#include "wire_codec.h"

int weft_crypto_init(void)
{
	return sodium_init() < 0 ? WEFT_EIO : WEFT_OK;
}

static void hex_lower(const uint8_t *b, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[b[i] >> 4];
		out[2 * i + 1] = digits[b[i] & 15];
	}
	out[2 * n] = '\0';
}

void weft_uuid_new(char out[WEFT_JOB_ID_BYTES + 1])
{
	uint8_t b[16];
	char hex[33];
	weft_crypto_init();
	randombytes_buf(b, sizeof(b));
	b[6] = (uint8_t)((b[6] & 0x0f) | 0x40); /* version 4 */
	b[8] = (uint8_t)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
	hex_lower(b, sizeof(b), hex);
	memcpy(out, hex, 8);
	out[8] = '-';
	memcpy(out + 9, hex + 8, 4);
	out[13] = '-';
	memcpy(out + 14, hex + 12, 4);
	out[18] = '-';
	memcpy(out + 19, hex + 16, 4);
	out[23] = '-';
	memcpy(out + 24, hex + 20, 12);
	out[36] = '\0';
}

int weft_job_id_check(const char *id)
{
	if (!id || strnlen(id, WEFT_JOB_ID_BYTES + 1) != WEFT_JOB_ID_BYTES)
		return -1;
	for (int i = 0; i < WEFT_JOB_ID_BYTES; i++) {
		char c = id[i];
		bool dash = i == 8 || i == 13 || i == 18 || i == 23;
		if (dash ? c != '-'
			 : !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
			return -1;
	}
	return 0;
}

void weft_token_new(char out[WEFT_TOKEN_TEXT_BYTES])
{
	uint8_t b[32];
	weft_crypto_init();
	randombytes_buf(b, sizeof(b));
	hex_lower(b, sizeof(b), out);
	sodium_memzero(b, sizeof(b));
}

int weft_token_check(const char *token)
{
	if (!token)
		return -1;
	size_t n = strnlen(token, WEFT_MAX_TOKEN_BYTES + 1);
	if (n < WEFT_MIN_TOKEN_BYTES || n > WEFT_MAX_TOKEN_BYTES)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (token[i] <= ' ' || token[i] > '~')
			return -1;
	return 0;
}

int weft_writer_key_new(weft_writer_key *k)
{
	if (weft_crypto_init())
		return WEFT_EIO;
	return crypto_sign_ed25519_keypair(k->pk, k->sk) ? WEFT_EIO : WEFT_OK;
}

void weft_pubkey_to_text(const uint8_t pk[WEFT_PUBKEY_BYTES],
			 char out[WEFT_PUBKEY_TEXT_BYTES])
{
	hex_lower(pk, WEFT_PUBKEY_BYTES, out);
}

int weft_pubkey_from_text(const char *text, uint8_t pk[WEFT_PUBKEY_BYTES])
{
	size_t n = strnlen(text, WEFT_PUBKEY_TEXT_BYTES);
	if (n != 2 * WEFT_PUBKEY_BYTES)
		return WEFT_EINVAL;
	for (size_t i = 0; i < n; i++)
		if (!((text[i] >= '0' && text[i] <= '9') ||
		      (text[i] >= 'a' && text[i] <= 'f')))
			return WEFT_EINVAL;
	size_t got = 0;
	if (sodium_hex2bin(pk, WEFT_PUBKEY_BYTES, text, n, NULL, &got, NULL) ||
	    got != WEFT_PUBKEY_BYTES)
		return WEFT_EINVAL;
	return WEFT_OK;
}

/* The key that turns a token into an enrolment key: a constant, so the
 * derived key is a domain-separated hash of the token (tokens are up to
 * 256 bytes, longer than a BLAKE2b key may be). */
static const char token_kdf_key[] = "weft job token -> enrolment key v1";

void weft_enrol_key(const char *token, uint8_t key[WEFT_MAC_BYTES])
{
	weft_crypto_init();
	crypto_generichash(key, WEFT_MAC_BYTES, (const uint8_t *)token,
			   strlen(token), (const uint8_t *)token_kdf_key,
			   sizeof(token_kdf_key) - 1);
}

/* The key that turns a token into the job key's seed (v2: signatures). */
static const char token_seed_key[] = "weft job token -> job key seed v2";

int weft_job_key(const char *token, weft_writer_key *k)
{
	uint8_t seed[crypto_sign_ed25519_SEEDBYTES];
	if (weft_crypto_init())
		return WEFT_EIO;
	crypto_generichash(seed, sizeof(seed), (const uint8_t *)token,
			   strlen(token), (const uint8_t *)token_seed_key,
			   sizeof(token_seed_key) - 1);
	int rc = crypto_sign_ed25519_seed_keypair(k->pk, k->sk, seed);
	sodium_memzero(seed, sizeof(seed));
	return rc ? WEFT_EIO : WEFT_OK;
}

int weft_job_verifier(const char *token, uint8_t vk[WEFT_PUBKEY_BYTES])
{
	weft_writer_key k;
	int err = weft_job_key(token, &k);
	if (!err)
		memcpy(vk, k.pk, WEFT_PUBKEY_BYTES);
	sodium_memzero(&k, sizeof(k));
	return err;
}

/* What a job-key signature covers: domain (with its NUL) || job (36
 * bytes, NUL-padded) || extra (a writer key, or an exit code). */
#define JOB_SIGNED_MAX (32 + WEFT_JOB_ID_BYTES + WEFT_PUBKEY_BYTES)

static size_t job_signed(const char *domain, const char *job,
			 const uint8_t *extra, size_t extra_len,
			 uint8_t m[JOB_SIGNED_MAX])
{
	size_t d = strlen(domain) + 1, o = 0;
	memcpy(m, domain, d);
	o += d;
	memset(m + o, 0, WEFT_JOB_ID_BYTES);
	memcpy(m + o, job, strnlen(job, WEFT_JOB_ID_BYTES));
	o += WEFT_JOB_ID_BYTES;
	memcpy(m + o, extra, extra_len);
	return o + extra_len;
}

static int job_sign(const weft_writer_key *k, const char *domain,
		    const char *job, const uint8_t *extra, size_t extra_len,
		    uint8_t sig[WEFT_SIG_BYTES])
{
	uint8_t m[JOB_SIGNED_MAX];
	if (weft_crypto_init())
		return WEFT_EIO;
	size_t n = job_signed(domain, job, extra, extra_len, m);
	return crypto_sign_ed25519_detached(sig, NULL, m, n, k->sk) ? WEFT_EIO
								    : WEFT_OK;
}

static int job_verify(const uint8_t vk[WEFT_PUBKEY_BYTES], const char *domain,
		      const char *job, const uint8_t *extra, size_t extra_len,
		      const uint8_t sig[WEFT_SIG_BYTES])
{
	uint8_t m[JOB_SIGNED_MAX];
	if (weft_crypto_init())
		return WEFT_EIO;
	size_t n = job_signed(domain, job, extra, extra_len, m);
	return crypto_sign_ed25519_verify_detached(sig, m, n, vk) ? WEFT_ESIG
								  : WEFT_OK;
}

static void exit_code_be(int32_t exit_code, uint8_t be[4])
{
	uint32_t u = (uint32_t)exit_code;
	be[0] = (uint8_t)(u >> 24);
	be[1] = (uint8_t)(u >> 16);
	be[2] = (uint8_t)(u >> 8);
	be[3] = (uint8_t)u;
}

int weft_enrol_sign(const weft_writer_key *job_key, const char *job,
		    const uint8_t pk[WEFT_PUBKEY_BYTES],
		    uint8_t sig[WEFT_SIG_BYTES])
{
	return job_sign(job_key, WEFT_ENROL_SIG_DOMAIN, job, pk,
			WEFT_PUBKEY_BYTES, sig);
}

int weft_enrol_verify(const uint8_t vk[WEFT_PUBKEY_BYTES], const char *job,
		      const uint8_t pk[WEFT_PUBKEY_BYTES],
		      const uint8_t sig[WEFT_SIG_BYTES])
{
	return job_verify(vk, WEFT_ENROL_SIG_DOMAIN, job, pk, WEFT_PUBKEY_BYTES,
			  sig);
}

int weft_job_end_sign(const weft_writer_key *job_key, const char *job,
		      int32_t exit_code, uint8_t sig[WEFT_SIG_BYTES])
{
	uint8_t be[4];
	exit_code_be(exit_code, be);
	return job_sign(job_key, WEFT_JOB_END_SIG_DOMAIN, job, be, sizeof(be),
			sig);
}

int weft_job_end_verify(const uint8_t vk[WEFT_PUBKEY_BYTES], const char *job,
			int32_t exit_code, const uint8_t sig[WEFT_SIG_BYTES])
{
	uint8_t be[4];
	exit_code_be(exit_code, be);
	return job_verify(vk, WEFT_JOB_END_SIG_DOMAIN, job, be, sizeof(be),
			  sig);
}

/* MAC over domain (with its NUL) || job (36 bytes) || extra. */
static void job_mac(const uint8_t key[WEFT_MAC_BYTES], const char *domain,
		    const char *job, const uint8_t *extra, size_t extra_len,
		    uint8_t mac[WEFT_MAC_BYTES])
{
	crypto_generichash_state st;
	weft_crypto_init();
	crypto_generichash_init(&st, key, WEFT_MAC_BYTES, WEFT_MAC_BYTES);
	crypto_generichash_update(&st, (const uint8_t *)domain,
				  strlen(domain) + 1);
	crypto_generichash_update(&st, (const uint8_t *)job,
				  strnlen(job, WEFT_JOB_ID_BYTES));
	crypto_generichash_update(&st, extra, extra_len);
	crypto_generichash_final(&st, mac, WEFT_MAC_BYTES);
}

void weft_enrol_mac(const uint8_t key[WEFT_MAC_BYTES], const char *job,
		    const uint8_t pk[WEFT_PUBKEY_BYTES],
		    uint8_t mac[WEFT_MAC_BYTES])
{
	job_mac(key, WEFT_ENROL_DOMAIN, job, pk, WEFT_PUBKEY_BYTES, mac);
}

void weft_job_end_mac(const uint8_t key[WEFT_MAC_BYTES], const char *job,
		      int32_t exit_code, uint8_t mac[WEFT_MAC_BYTES])
{
	uint8_t be[4];
	exit_code_be(exit_code, be);
	job_mac(key, WEFT_JOB_END_DOMAIN, job, be, sizeof(be), mac);
}

void weft_submit_key_new(uint8_t key[WEFT_SUBMIT_KEY_BYTES])
{
	weft_crypto_init();
	randombytes_buf(key, WEFT_SUBMIT_KEY_BYTES);
}

/* A time as i64 big-endian. */
static void time_field(crypto_generichash_state *st, int64_t ns)
{
	uint8_t be[8];
	uint64_t t = (uint64_t)ns;
	for (int i = 0; i < 8; i++)
		be[i] = (uint8_t)(t >> (8 * (7 - i)));
	crypto_generichash_update(st, be, sizeof(be));
}

static void mac_field(crypto_generichash_state *st, const char *s)
{
	size_t n = s ? strlen(s) : 0;
	uint8_t be[4] = {(uint8_t)(n >> 24), (uint8_t)(n >> 16),
			 (uint8_t)(n >> 8), (uint8_t)n};
	crypto_generichash_update(st, be, sizeof(be));
	crypto_generichash_update(st, (const uint8_t *)(s ? s : ""), n);
}

void weft_job_create_mac(const uint8_t key[WEFT_SUBMIT_KEY_BYTES],
			 const weft_job_info *j, uint8_t mac[WEFT_MAC_BYTES])
{
	crypto_generichash_state st;
	weft_crypto_init();
	crypto_generichash_init(&st, key, WEFT_SUBMIT_KEY_BYTES,
				WEFT_MAC_BYTES);
	crypto_generichash_update(&st, (const uint8_t *)WEFT_JOB_CREATE_DOMAIN,
				  sizeof(WEFT_JOB_CREATE_DOMAIN));
	uint8_t id[WEFT_JOB_ID_BYTES] = {0};
	memcpy(id, j->id, strnlen(j->id, WEFT_JOB_ID_BYTES));
	crypto_generichash_update(&st, id, sizeof(id));
	/* Length-prefixed: no two field lists hash alike. */
	const char *fields[] = {j->token, j->command, j->user,
				j->host,  j->cwd,     j->git};
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
		mac_field(&st, fields[i]);
	time_field(&st, j->created_ns);
	crypto_generichash_final(&st, mac, WEFT_MAC_BYTES);
}

/* What a task start's signature covers besides the domain and the job:
 * BLAKE2b-256 of its fields, length-prefixed like a job create's. */
static void task_start_digest(const weft_task_start *ts, uint8_t out[32])
{
	crypto_generichash_state st;
	weft_crypto_init();
	crypto_generichash_init(&st, NULL, 0, 32);
	const char *fields[] = {ts->run,    ts->task, ts->name,
				ts->parent, ts->node, ts->backend};
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
		mac_field(&st, fields[i]);
	time_field(&st, ts->started_ns);
	crypto_generichash_final(&st, out, 32);
}

int weft_task_start_sign(weft_task_start *ts, const char *token)
{
	weft_writer_key jk;
	uint8_t digest[32];
	if (wire_task_start_check(ts) || weft_token_check(token))
		return WEFT_EINVAL;
	task_start_digest(ts, digest);
	int rc = weft_job_key(token, &jk);
	if (!rc)
		rc = job_sign(&jk, WEFT_TASK_START_SIG_DOMAIN, ts->job, digest,
			      sizeof(digest), ts->sig);
	sodium_memzero(&jk, sizeof(jk));
	return rc;
}

int weft_task_start_verify(const uint8_t vk[WEFT_PUBKEY_BYTES],
			   const weft_task_start *ts)
{
	uint8_t digest[32];
	if (wire_task_start_check(ts))
		return WEFT_ESIG;
	task_start_digest(ts, digest);
	return job_verify(vk, WEFT_TASK_START_SIG_DOMAIN, ts->job, digest,
			  sizeof(digest), ts->sig);
}

bool weft_mac_equal(const uint8_t a[WEFT_MAC_BYTES],
		    const uint8_t b[WEFT_MAC_BYTES])
{
	return sodium_memcmp(a, b, WEFT_MAC_BYTES) == 0;
}

void weft_payload_hash(const uint8_t *payload, size_t len, uint8_t out[32])
{
	weft_crypto_init();
	crypto_generichash(out, 32, payload, len, NULL, 0);
}

/* What an envelope signature covers. */
#define SIGNED_BYTES                                                           \
	(sizeof(WEFT_ENVELOPE_DOMAIN) + WEFT_JOB_ID_BYTES +                    \
	 WEFT_PUBKEY_BYTES + 8 + 32)

static void signed_message(const char *job, const uint8_t *writer, uint64_t seq,
			   const uint8_t *payload, size_t len,
			   uint8_t m[SIGNED_BYTES])
{
	size_t o = 0;
	memcpy(m, WEFT_ENVELOPE_DOMAIN, sizeof(WEFT_ENVELOPE_DOMAIN));
	o += sizeof(WEFT_ENVELOPE_DOMAIN);
	memset(m + o, 0, WEFT_JOB_ID_BYTES);
	memcpy(m + o, job, strnlen(job, WEFT_JOB_ID_BYTES));
	o += WEFT_JOB_ID_BYTES;
	memcpy(m + o, writer, WEFT_PUBKEY_BYTES);
	o += WEFT_PUBKEY_BYTES;
	for (int i = 7; i >= 0; i--)
		m[o++] = (uint8_t)(seq >> (8 * i));
	weft_payload_hash(payload, len, m + o);
}

int weft_envelope_sign_raw(const char *job, const weft_writer_key *key,
			   uint64_t seq, const uint8_t *payload, size_t len,
			   uint8_t sig[WEFT_SIG_BYTES])
{
	uint8_t m[SIGNED_BYTES];
	if (weft_crypto_init())
		return WEFT_EIO;
	signed_message(job, key->pk, seq, payload, len, m);
	return crypto_sign_ed25519_detached(sig, NULL, m, sizeof(m), key->sk)
		       ? WEFT_EIO
		       : WEFT_OK;
}

int weft_envelope_verify(weft_envelope *e)
{
	uint8_t m[SIGNED_BYTES];
	e->payload_hashed = false;
	if (weft_crypto_init())
		return WEFT_EIO;
	signed_message(e->job, e->writer, e->seq, e->payload, e->payload_len,
		       m);
	if (crypto_sign_ed25519_verify_detached(e->sig, m, sizeof(m),
						e->writer))
		return WEFT_ESIG;
	/* The hash is the signed message's last 32 bytes. */
	memcpy(e->payload_hash, m + SIGNED_BYTES - 32, 32);
	e->payload_hashed = true;
	return WEFT_OK;
}
