/*
 * weft/wire.h - the distribution wire formats (DESIGN.md "Distribution"):
 * fragments, the signed envelope, the coordinator's requests and replies,
 * and the crypto both sides of a connection need (writer keys, envelope
 * signatures, the enrolment MAC derived from WEFT_JOB_TOKEN, job ids and
 * tokens).
 *
 * This is libweft_schema's second public header (weft/schema.h holds the
 * records and codecs every part uses; this one only what crosses between
 * workers and coordinators). Same conventions: msgpack maps with "v" first,
 * strict decoders, named limits below, int error codes from enum weft_err.
 *
 * Message flow (one nng REQ/REP exchange each; every reply is a weft_reply):
 *
 *   submitter:  JOB_CREATE {job, token, command, user, host, cwd, git, time,
 *               auth} -> ack stored | duplicate (same job again) | rejected
 *
 * JOB_CREATE proves the coordinator's submit key (weft_job_create_mac):
 * auth is a BLAKE2b-256 MAC under that key over the job id and every
 * field of the request, so only holders of the key create jobs, and one
 * creation is never good for another job id or other fields. auth may be
 * absent at decode (the coordinator then refuses: "not allowed").
 *   wrapper:    ENROL {job, writer public key, sig, mac}
 *               -> ack stored | duplicate (already enrolled) | rejected
 *   wrapper:    FRAGMENT {env: envelope bytes}, one per seq 1, 2, 3...
 *               -> ack stored | duplicate | rejected (reason) | retry
 *   submitter:  JOB_END {job, exit, time, sig, mac} -> ack
 *
 * ENROL and JOB_END prove the job token (weft_token_proof): sig is an
 * Ed25519 signature by the job key derived from the token
 * (weft_job_key), which a coordinator checks with the job's public
 * verifier; mac is the keyed BLAKE2b an older weft used (weft_enrol_key),
 * still sent so that jobs created by an older coordinator whose store was
 * migrated while they were open can be finished. Either may be absent;
 * a request with neither is malformed.
 *   anyone:     STATUS {job or none} -> status answer
 *
 * An envelope {v, job, writer, seq, payload, sig} carries one encoded
 * weft_fragment as its payload; sig is Ed25519 by the writer's key over
 * WEFT_ENVELOPE_DOMAIN (with its NUL) || job (36 bytes) || writer (32) || seq
 * (u64 big-endian) || BLAKE2b-256(payload). The writer id IS its public key.
 * The coordinator checks that the fragment's own job/writer/seq match the
 * envelope's.
 */
#ifndef WEFT_WIRE_H
#define WEFT_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <weft/schema.h>

/* ---- Named limits ---- */

/* A job id: a lowercase UUID in text, without its NUL. */
#define WEFT_JOB_ID_BYTES 36
/* WEFT_JOB_TOKEN: at least this many bytes (a generated one is 64 hex
 * digits), at most the max. */
#define WEFT_MIN_TOKEN_BYTES 16
#define WEFT_MAX_TOKEN_BYTES 256
/* Ed25519 keys and signatures; the MAC and payload hash (BLAKE2b-256). */
#define WEFT_PUBKEY_BYTES 32
#define WEFT_SECKEY_BYTES 64
#define WEFT_SIG_BYTES 64
#define WEFT_MAC_BYTES 32
/* Task identity strings (id, name, parent; engine id values). */
#define WEFT_MAX_TASK_BYTES 256
/* Engine ids in one fragment (Slurm job/step/proc, Ray job/worker/...). */
#define WEFT_MAX_ENGINE_IDS 16
/* The backend's preflight summary carried in a fragment. */
#define WEFT_MAX_PREFLIGHT_BYTES 1024
/* Parts one traced unit may be split into. */
#define WEFT_MAX_PARTS 100000
/* One fragment payload (the encoded weft_fragment). A wrapper splits a
 * run so that every part stays under it. */
#define WEFT_MAX_PAYLOAD_BYTES (4 * 1024 * 1024)
/* What a fragment's header adds to its report body at most: a wrapper
 * splitting a run keeps each part's encoded report under
 * WEFT_MAX_PAYLOAD_BYTES - WEFT_FRAGMENT_OVERHEAD_BYTES. */
#define WEFT_FRAGMENT_OVERHEAD_BYTES (16 * 1024)
/* One envelope: the payload plus ids and signature. */
#define WEFT_MAX_ENVELOPE_BYTES (WEFT_MAX_PAYLOAD_BYTES + 1024)
/* One request message. Requests up to this size are read and answered
 * (an oversize envelope inside gets an "oversize" rejection); larger ones
 * are dropped by the transport. A reply (a status answer) may be up to
 * WEFT_MAX_MESSAGE_BYTES. */
#define WEFT_MAX_REQUEST_BYTES (2 * WEFT_MAX_ENVELOPE_BYTES)
/* Job create: user, host, git commit; the command (argv joined). */
#define WEFT_MAX_FIELD_BYTES 256
#define WEFT_MAX_COMMAND_BYTES WEFT_MAX_ARGV_BYTES
/* The human-readable detail of a rejection. */
#define WEFT_MAX_REASON_BYTES 256
/* Jobs and writers in one status answer. */
#define WEFT_MAX_STATUS_JOBS 4096
#define WEFT_MAX_STATUS_WRITERS 65536

/* Domain-separation tags: a signature or MAC made for one purpose never
 * verifies for another. */
#define WEFT_ENVELOPE_DOMAIN "weft-envelope-v1"
#define WEFT_ENROL_DOMAIN "weft-enrol-v1"
#define WEFT_JOB_END_DOMAIN "weft-job-end-v1"
#define WEFT_ENROL_SIG_DOMAIN "weft-enrol-sig-v2"
#define WEFT_JOB_END_SIG_DOMAIN "weft-job-end-sig-v2"
#define WEFT_JOB_CREATE_DOMAIN "weft-job-create-v1"

/* A coordinator's submit key: the secret a JOB_CREATE proves (a MAC
 * key, BLAKE2b). In a key file as 64 hex digits and a newline. */
#define WEFT_SUBMIT_KEY_BYTES 32

/* ---- Ids, tokens, keys (libsodium; wire_crypto.c) ---- */

typedef struct weft_job_info weft_job_info; /* below, with the requests */

/* sodium_init(); safe to call many times and from many threads. WEFT_EIO
 * when libsodium cannot start. Every function below calls it. */
int weft_crypto_init(void);
/* A fresh random (version 4) UUID, lowercase, NUL-terminated. */
void weft_uuid_new(char out[WEFT_JOB_ID_BYTES + 1]);
/* 0 when id is a lowercase UUID of exactly 36 characters, else -1. */
int weft_job_id_check(const char *id);
/* A fresh job token: 64 lowercase hex digits (256 random bits). */
#define WEFT_TOKEN_TEXT_BYTES (64 + 1)
void weft_token_new(char out[WEFT_TOKEN_TEXT_BYTES]);
/* 0 when token is an acceptable WEFT_JOB_TOKEN (printable ASCII, no
 * space, WEFT_MIN..WEFT_MAX_TOKEN_BYTES long), else -1. */
int weft_token_check(const char *token);

typedef struct weft_writer_key {
	uint8_t pk[WEFT_PUBKEY_BYTES];
	uint8_t sk[WEFT_SECKEY_BYTES];
} weft_writer_key;

/* A new Ed25519 key pair. */
int weft_writer_key_new(weft_writer_key *k);
/* Public key as 64 lowercase hex digits (the writer id in text). */
#define WEFT_PUBKEY_TEXT_BYTES (2 * WEFT_PUBKEY_BYTES + 1)
void weft_pubkey_to_text(const uint8_t pk[WEFT_PUBKEY_BYTES],
			 char out[WEFT_PUBKEY_TEXT_BYTES]);
int weft_pubkey_from_text(const char *text, uint8_t pk[WEFT_PUBKEY_BYTES]);

/* The job key: an Ed25519 key pair derived from the token alone (its seed
 * is a keyed BLAKE2b-256 of the token under a fixed domain string). Its
 * public half, the job's verifier, is what coordinators and stores keep:
 * it checks the proofs below and cannot make them. Only holders of the
 * token can sign. */
int weft_job_key(const char *token, weft_writer_key *k);
/* The verifier alone (weft_job_key's pk). */
int weft_job_verifier(const char *token, uint8_t vk[WEFT_PUBKEY_BYTES]);
/* Signature by the job key over WEFT_ENROL_SIG_DOMAIN (with its NUL) ||
 * job (36 bytes) || the writer's public key: the token's holder lets this
 * writer write into this job. */
int weft_enrol_sign(const weft_writer_key *job_key, const char *job,
		    const uint8_t pk[WEFT_PUBKEY_BYTES],
		    uint8_t sig[WEFT_SIG_BYTES]);
/* WEFT_OK when sig is that signature for vk, else WEFT_ESIG. */
int weft_enrol_verify(const uint8_t vk[WEFT_PUBKEY_BYTES], const char *job,
		      const uint8_t pk[WEFT_PUBKEY_BYTES],
		      const uint8_t sig[WEFT_SIG_BYTES]);
/* The same over WEFT_JOB_END_SIG_DOMAIN || job || exit code (s32
 * big-endian): the job ends with this status. */
int weft_job_end_sign(const weft_writer_key *job_key, const char *job,
		      int32_t exit_code, uint8_t sig[WEFT_SIG_BYTES]);
int weft_job_end_verify(const uint8_t vk[WEFT_PUBKEY_BYTES], const char *job,
			int32_t exit_code, const uint8_t sig[WEFT_SIG_BYTES]);

/* How a request proves the job token: a signature by the job key, a
 * legacy MAC, or both (see the message flow above). */
typedef struct weft_token_proof {
	bool has_sig, has_mac;
	uint8_t sig[WEFT_SIG_BYTES];
	uint8_t mac[WEFT_MAC_BYTES];
} weft_token_proof;

/* Legacy (an older weft; kept for jobs it created): the enrolment
 * key, BLAKE2b-256 of the token keyed with a fixed domain string. Anyone
 * holding it can make the MACs below, so stores no longer keep it once
 * a job has ended, and new jobs never get one. */
void weft_enrol_key(const char *token, uint8_t key[WEFT_MAC_BYTES]);
/* MAC proving the token for (job, writer). */
void weft_enrol_mac(const uint8_t key[WEFT_MAC_BYTES], const char *job,
		    const uint8_t pk[WEFT_PUBKEY_BYTES],
		    uint8_t mac[WEFT_MAC_BYTES]);
/* MAC proving the token for ending the job with exit_code. */
void weft_job_end_mac(const uint8_t key[WEFT_MAC_BYTES], const char *job,
		      int32_t exit_code, uint8_t mac[WEFT_MAC_BYTES]);
/* A fresh random submit key. */
void weft_submit_key_new(uint8_t key[WEFT_SUBMIT_KEY_BYTES]);
/* The proof of a JOB_CREATE: BLAKE2b-256 keyed with the submit key over
 * WEFT_JOB_CREATE_DOMAIN (with its NUL) || job id (36 bytes) || token,
 * command, user, host, cwd, git (each u32 big-endian length || bytes) ||
 * created_ns (i64 big-endian). */
void weft_job_create_mac(const uint8_t key[WEFT_SUBMIT_KEY_BYTES],
			 const weft_job_info *j, uint8_t mac[WEFT_MAC_BYTES]);
/* Constant-time comparison: true when equal. */
bool weft_mac_equal(const uint8_t a[WEFT_MAC_BYTES],
		    const uint8_t b[WEFT_MAC_BYTES]);

/* ---- Fragments: the record of one traced unit, or one part of it ---- */

typedef struct weft_engine_id {
	char key[WEFT_MAX_NAME_BYTES]; /* "slurm_job", "ray_node", ... */
	char value[WEFT_MAX_TASK_BYTES + 1];
} weft_engine_id;

typedef struct weft_task_identity {
	char id[WEFT_MAX_TASK_BYTES + 1];     /* unique in the job, non-empty:
						 "123.0.4@node7", "--task" value */
	char name[WEFT_MAX_TASK_BYTES + 1];   /* for people: the command */
	char parent[WEFT_MAX_TASK_BYTES + 1]; /* WEFT_PARENT, or "" */
	weft_engine_id engine[WEFT_MAX_ENGINE_IDS];
	uint32_t nengine;
} weft_task_identity;

/*
 * A fragment: header fields here, the body in report. report.run_id names
 * the wrapper invocation (a UUID, the same in every part of one run);
 * report.backend, node, exit_code, started_ns, ended_ns are the header's
 * backend, node, exit status and times; its processes, files, warnings and
 * dropped_events are the body. Every part repeats the header; a part's
 * body holds its share of the records (a part may hold none).
 *
 * To encode parts of one report without copying, point report.processes
 * and report.files at slices of the full arrays (and leave the fragment
 * unreleased: the encoder does not take ownership).
 */
typedef struct weft_fragment {
	char job[WEFT_JOB_ID_BYTES + 1];
	uint8_t writer[WEFT_PUBKEY_BYTES];
	uint64_t seq; /* >= 1 */
	weft_task_identity task;
	char preflight[WEFT_MAX_PREFLIGHT_BYTES + 1]; /* summary, may be "" */
	uint32_t part, nparts;                        /* 0 <= part < nparts */
	weft_report report;
} weft_fragment;

/* Zero the header and init the report. */
void weft_fragment_init(weft_fragment *f);
/* Release what a decode allocated (the report's records). */
void weft_fragment_release(weft_fragment *f);
/* Append one encoded fragment to out. WEFT_ETOOBIG when it would exceed
 * WEFT_MAX_PAYLOAD_BYTES (nothing is appended then), WEFT_EINVAL for a
 * header out of range (bad job id, seq 0, part >= nparts, empty task id). */
int weft_fragment_encode(const weft_fragment *f, weft_buf *out);
/* Decode exactly one fragment occupying buf[0..len); on error *f is left
 * initialized and empty. */
int weft_fragment_decode(const uint8_t *buf, size_t len, weft_fragment *f);

/* ---- The signed envelope ---- */

typedef struct weft_envelope {
	char job[WEFT_JOB_ID_BYTES + 1];
	uint8_t writer[WEFT_PUBKEY_BYTES];
	uint64_t seq;
	const uint8_t *payload; /* decode: points into the decoded buffer */
	size_t payload_len;
	uint8_t sig[WEFT_SIG_BYTES];
	/* Set by weft_envelope_verify when the signature holds: the
	 * payload's hash it computed (weft_payload_hash), for what is
	 * done with the envelope next, not hashed again. */
	bool payload_hashed;
	uint8_t payload_hash[32];
} weft_envelope;

/* Sign payload as (job, key->pk, seq) and append the encoded envelope to
 * out. WEFT_ETOOBIG for a payload over WEFT_MAX_PAYLOAD_BYTES. */
int weft_envelope_seal(const char *job, const weft_writer_key *key,
		       uint64_t seq, const uint8_t *payload, size_t len,
		       weft_buf *out);
/* Decode an envelope; e->payload points into buf (no allocation, nothing
 * to release). Checks shape and limits only, not the signature. A payload
 * over WEFT_MAX_PAYLOAD_BYTES is WEFT_ETOOBIG. */
int weft_envelope_decode(const uint8_t *buf, size_t len, weft_envelope *e);
/* WEFT_OK when e->sig is e->writer's signature of e's contents (the
 * payload hashed afresh, never the hash kept in e; then kept in
 * e->payload_hash), WEFT_ESIG otherwise. */
int weft_envelope_verify(weft_envelope *e);
/* The BLAKE2b-256 of the payload (what the signature covers). */
void weft_payload_hash(const uint8_t *payload, size_t len, uint8_t out[32]);

/* ---- Coordinator requests ---- */

enum weft_req_kind {
	WEFT_REQ_JOB_CREATE = 1,
	WEFT_REQ_JOB_END = 2,
	WEFT_REQ_ENROL = 3,
	WEFT_REQ_FRAGMENT = 4,
	WEFT_REQ_STATUS = 5,
};

/* The job record a submitter creates. Strings may be "" (unknown), except
 * the job id and the token. */
struct weft_job_info {
	char id[WEFT_JOB_ID_BYTES + 1];
	char token[WEFT_MAX_TOKEN_BYTES + 1];
	char *command; /* argv joined by spaces; owned after decode */
	char user[WEFT_MAX_FIELD_BYTES + 1];
	char host[WEFT_MAX_FIELD_BYTES + 1];
	char cwd[WEFT_MAX_PATH_BYTES + 1];
	char git[WEFT_MAX_FIELD_BYTES + 1]; /* commit of cwd's repository */
	int64_t created_ns;
};

/* A decoded request. Only the fields of its kind are set. */
typedef struct weft_request {
	int kind; /* enum weft_req_kind */
	/* JOB_CREATE; has_auth: the request carried its proof (not yet
	 * checked: weft_job_create_mac) */
	weft_job_info job_info;
	bool has_auth;
	uint8_t auth[WEFT_MAC_BYTES];
	/* JOB_END, ENROL, STATUS (has_job: STATUS may ask about all jobs) */
	char job[WEFT_JOB_ID_BYTES + 1];
	bool has_job;
	/* JOB_END */
	int32_t exit_code;
	int64_t ended_ns;
	/* JOB_END, ENROL */
	weft_token_proof proof;
	/* ENROL */
	uint8_t writer[WEFT_PUBKEY_BYTES];
	/* FRAGMENT: the envelope bytes, pointing into the decoded buffer */
	const uint8_t *env;
	size_t env_len;
} weft_request;

/* Encoders: each appends one request message to out. submit_key: the
 * coordinator's (NULL: the request carries no proof, and a coordinator
 * refuses it). */
int weft_req_job_create(const weft_job_info *j, const uint8_t *submit_key,
			weft_buf *out);
int weft_req_job_end(const char *job, const char *token, int32_t exit_code,
		     int64_t ended_ns, weft_buf *out);
int weft_req_enrol(const char *job, const char *token,
		   const uint8_t pk[WEFT_PUBKEY_BYTES], weft_buf *out);
/* env: an envelope as weft_envelope_seal made it (not re-checked). */
int weft_req_fragment(const uint8_t *env, size_t len, weft_buf *out);
/* job NULL: every job. */
int weft_req_status(const char *job, weft_buf *out);

/* Decode one request; FRAGMENT's env points into buf. The envelope inside
 * is only checked to be a bin of at most WEFT_MAX_REQUEST_BYTES (so an
 * oversize one can be named as such): decode it with
 * weft_envelope_decode. Release with weft_request_release. */
int weft_request_decode(const uint8_t *buf, size_t len, weft_request *r);
void weft_request_release(weft_request *r);

/* ---- Coordinator replies ---- */

enum weft_ack_status {
	WEFT_ACK_STORED = 0,    /* committed (an enrolment or job: accepted) */
	WEFT_ACK_DUPLICATE = 1, /* already stored with the same content */
	WEFT_ACK_REJECTED = 2,  /* refused for good: see reason */
	WEFT_ACK_RETRY = 3,     /* the coordinator could not store it now
				   (store error, shutting down): send again
				   later, like a transport failure */
};

/* Why a request was rejected. Stable numbers (they cross the wire). */
enum weft_reject_reason {
	WEFT_REJECT_NONE = 0,
	WEFT_REJECT_MALFORMED = 1, /* not a request / envelope / fragment */
	WEFT_REJECT_OVERSIZE = 2,  /* over a limit above */
	WEFT_REJECT_UNKNOWN_JOB = 3,
	WEFT_REJECT_JOB_ENDED = 4,
	WEFT_REJECT_UNENROLLED = 5, /* writer not enrolled for the job */
	WEFT_REJECT_BAD_SIGNATURE = 6,
	WEFT_REJECT_BAD_TOKEN = 7,   /* enrolment or job end MAC wrong */
	WEFT_REJECT_REPLAY = 8,      /* (job, writer, seq) stored with
					different content */
	WEFT_REJECT_MISMATCH = 9,    /* fragment header != envelope ids */
	WEFT_REJECT_JOB_EXISTS = 10, /* job create: same id, other token */
	/* job create without a valid proof of the coordinator's submit key */
	WEFT_REJECT_NOT_ALLOWED = 11,
	WEFT_REJECT_REASON_MAX
};

/* "malformed", "oversize", "unknown job", "job ended", "unenrolled writer",
 * "bad signature", "bad token", "replay with different content",
 * "fragment does not match its envelope", "job exists", "not allowed". */
const char *weft_reject_name(int reason);

typedef struct weft_ack {
	int status; /* enum weft_ack_status */
	int reason; /* enum weft_reject_reason; NONE unless rejected */
	char detail[WEFT_MAX_REASON_BYTES + 1]; /* for people; may be "" */
	uint64_t seq; /* FRAGMENT: the envelope's seq, else 0 */
} weft_ack;

/* What a coordinator knows about one writer of a job. */
typedef struct weft_status_writer {
	uint8_t pk[WEFT_PUBKEY_BYTES];
	int64_t enrolled_ns;
	uint64_t fragments; /* stored */
	uint64_t max_seq;   /* highest stored seq, 0 when none */
	uint64_t missing;   /* seqs in 1..max_seq not stored (gaps) */
} weft_status_writer;

/* Incomplete tasks one status answer lists per job at most (the count of
 * them, weft_status_job.incomplete, is exact). */
#define WEFT_MAX_STATUS_TASKS 1024

/* A task of a job with fewer parts stored than it was cut into: its
 * wrapper was killed while spooling, or parts are still on their way. */
typedef struct weft_status_task {
	char id[WEFT_MAX_TASK_BYTES + 1];
	char name[WEFT_MAX_FIELD_BYTES + 1]; /* truncated for display */
	char node[WEFT_MAX_NAME_BYTES];
	uint32_t parts_stored, nparts;
} weft_status_task;

/* A fragment an enrolled writer of the job signed and the coordinator
 * refused: the task it was (part of), and why. id, name and node are ""
 * when its payload did not decode. */
typedef struct weft_status_refusal {
	char id[WEFT_MAX_TASK_BYTES + 1];
	char name[WEFT_MAX_FIELD_BYTES + 1]; /* truncated for display */
	char node[WEFT_MAX_NAME_BYTES];
	uint8_t writer[WEFT_PUBKEY_BYTES];
	uint64_t seq;
	int reason; /* enum weft_reject_reason */
	char detail[WEFT_MAX_REASON_BYTES + 1];
} weft_status_refusal;

typedef struct weft_status_job {
	char id[WEFT_JOB_ID_BYTES + 1];
	bool ended;
	int64_t created_ns, ended_ns;           /* ended_ns 0 while open */
	int32_t exit_code;                      /* -1 while open or unknown */
	char command[WEFT_MAX_FIELD_BYTES + 1]; /* truncated for display */
	uint64_t fragments, bytes; /* envelopes stored, their bytes */
	uint64_t rejects;          /* fragments rejected for this job
				      since the coordinator started */
	weft_status_writer *writers;
	size_t nwriters;
	uint64_t incomplete;     /* tasks with parts missing */
	weft_status_task *tasks; /* the first of them (WEFT_MAX_STATUS_TASKS) */
	size_t ntasks;
	uint64_t refused; /* refused fragments of enrolled writers, stored */
	weft_status_refusal *refusals; /* the first of them (at most
					  WEFT_MAX_STATUS_TASKS) */
	size_t nrefusals;
} weft_status_job;

typedef struct weft_status {
	weft_status_job *jobs;
	size_t njobs;
	/* Rejections since the coordinator started, by reason (index: enum
	 * weft_reject_reason; [0] unused). */
	uint64_t rejects[WEFT_REJECT_REASON_MAX];
	uint64_t requests; /* requests answered since start */
} weft_status;

enum weft_reply_kind {
	WEFT_REPLY_ACK = 1,
	WEFT_REPLY_STATUS = 2,
};

typedef struct weft_reply {
	int kind; /* enum weft_reply_kind */
	weft_ack ack;
	weft_status status; /* owned after decode: weft_reply_release */
} weft_reply;

int weft_reply_ack(int status, int reason, const char *detail, uint64_t seq,
		   weft_buf *out);
int weft_reply_status(const weft_status *st, weft_buf *out);
/* Decode one reply (either kind). Release with weft_reply_release. */
int weft_reply_decode(const uint8_t *buf, size_t len, weft_reply *r);
void weft_reply_release(weft_reply *r);
/* Free a status's jobs and writers (one the caller built with malloc). */
void weft_status_release(weft_status *st);

/* ---- Export: a coordinator's fragments for a relay (`weft pull URL`) ----
 *
 *   anyone:  EXPORT {job, after, wafter} -> an export page, or an ack
 *            (rejected: unknown job, malformed; retry)
 *
 * A page holds the job's record, the writers enrolled after writer cursor
 * wafter and the envelopes stored after cursor after, in arrival order,
 * as the coordinator keeps them (the bytes the writers signed). The
 * client asks again with the page's next and wnext until more is false;
 * cursors are opaque (start from 0). A page holds no envelope while it
 * still has writers to send, so every envelope comes after its writer.
 *
 * The job's verifier (weft_job_verifier of its token; "vk") is in a page
 * only once the job has ended, like its writers and envelopes: an open
 * job's page has its record and nothing else. A job an older weft
 * created has no verifier; its page carries the legacy "key" instead
 * (weft_enrol_key, all zeros once the job ended: see the store).
 *
 * Page: {v, t: 3, job: {id, ended, key | vk (ended only), created, endt,
 * exit, cmd, user, host, cwd, git}, writers: [[pk, enrolled]...], envs:
 * [bin...], next, wnext, more}.
 */
enum { WEFT_REQ_EXPORT = 6 };
enum { WEFT_REPLY_EXPORT = 3 };
/* Envelope bytes in one page at most (a page always holds at least one
 * envelope when one is left, and one envelope is at most
 * WEFT_MAX_ENVELOPE_BYTES), envelopes and writers in one page at most.
 * A whole page stays far below WEFT_MAX_MESSAGE_BYTES. */
#define WEFT_MAX_EXPORT_BYTES (16 * 1024 * 1024)
#define WEFT_MAX_EXPORT_ENVELOPES 65536
#define WEFT_MAX_EXPORT_WRITERS 65536

typedef struct weft_export_writer {
	uint8_t pk[WEFT_PUBKEY_BYTES];
	int64_t enrolled_ns;
} weft_export_writer;

typedef struct weft_export_env {
	const uint8_t *data; /* decode: points into the decoded buffer */
	size_t len;
} weft_export_env;

typedef struct weft_export_page {
	weft_job_info job; /* token ""; command owned after decode */
	bool ended;
	int64_t ended_ns;  /* 0 while open */
	int32_t exit_code; /* -1 while open */
	bool has_key;      /* only when ended: a job without a verifier */
	uint8_t key[WEFT_MAC_BYTES];
	bool has_vk; /* only when ended */
	uint8_t vk[WEFT_PUBKEY_BYTES];
	weft_export_writer *writers; /* owned after decode */
	size_t nwriters;
	weft_export_env *envs; /* the array owned after decode */
	size_t nenvs;
	uint64_t next, wnext; /* cursors for the next request */
	bool more;
} weft_export_page;

int weft_req_export(const char *job, uint64_t after, uint64_t wafter,
		    weft_buf *out);
/* Decode an EXPORT request (what weft_request_decode does not know). */
int weft_export_request_decode(const uint8_t *buf, size_t len,
			       char job[WEFT_JOB_ID_BYTES + 1], uint64_t *after,
			       uint64_t *wafter);
/* WEFT_EINVAL for a page out of range (a key on an open job, more
 * envelopes or writers than the limits, an envelope over
 * WEFT_MAX_ENVELOPE_BYTES); WEFT_ETOOBIG when over WEFT_MAX_MESSAGE_BYTES. */
int weft_reply_export(const weft_export_page *p, weft_buf *out);
/* Decode one page; envs point into buf. Release with
 * weft_export_page_release (also after a failed decode). */
int weft_export_page_decode(const uint8_t *buf, size_t len,
			    weft_export_page *p);
void weft_export_page_release(weft_export_page *p);
/* ---- Task start: a wrapper says that a task began ----
 *
 *   wrapper:  TASK_START {job, run, task, name, parent, node, backend,
 *             time, sig} -> ack stored | duplicate | rejected
 *
 * What the coordinator needs to send the task's OpenLineage START while
 * the task runs (docs/interop.md). Best effort: sent once, by a process
 * the wrapper forks before the workload; nothing depends on it arriving,
 * since the task's fragments carry the same fields later. run is the
 * run id the fragments will carry (a UUID); time the start. sig is the
 * job key's signature (weft_job_key) over WEFT_TASK_START_SIG_DOMAIN
 * (with its NUL) || job (36 bytes) || BLAKE2b-256 of run, task, name,
 * parent, node, backend (each u32 big-endian length || bytes) and time
 * (i64 big-endian): only the token's holders announce tasks, and one
 * announcement is never good for other fields. Decoded apart from
 * weft_request_decode, like EXPORT: a coordinator reads the kind first;
 * an older one refuses the message as malformed, and the wrapper lets
 * it be.
 */
enum { WEFT_REQ_TASK_START = 7 };
#define WEFT_TASK_START_SIG_DOMAIN "weft-task-start-sig-v1"

typedef struct weft_task_start {
	char job[WEFT_JOB_ID_BYTES + 1];
	char run[WEFT_JOB_ID_BYTES + 1];     /* the run id: a UUID */
	char task[WEFT_MAX_TASK_BYTES + 1];  /* non-empty */
	char name[WEFT_MAX_TASK_BYTES + 1];  /* for people; may be "" */
	char parent[WEFT_MAX_TASK_BYTES + 1]; /* WEFT_PARENT, or "" */
	char node[WEFT_MAX_NAME_BYTES];      /* non-empty */
	char backend[WEFT_MAX_NAME_BYTES];   /* non-empty */
	int64_t started_ns;
	uint8_t sig[WEFT_SIG_BYTES];
} weft_task_start;

/* Sign ts (every field but sig set) with the job key of token, into
 * ts->sig. WEFT_EINVAL for fields out of range or a bad token. */
int weft_task_start_sign(weft_task_start *ts, const char *token);
/* WEFT_OK when ts->sig is the signature of ts for the job verifier vk,
 * else WEFT_ESIG. */
int weft_task_start_verify(const uint8_t vk[WEFT_PUBKEY_BYTES],
			   const weft_task_start *ts);
/* Append the request (ts signed); WEFT_EINVAL for fields out of range. */
int weft_req_task_start(const weft_task_start *ts, weft_buf *out);
/* Decode one TASK_START request: every key required, each string within
 * its limit; on error *ts is zeroed. */
int weft_task_start_decode(const uint8_t *buf, size_t len,
			   weft_task_start *ts);

/* The kind ("t") of a request or reply message, read from its first two
 * keys only: how a server tells an EXPORT from the requests
 * weft_request_decode knows, and a client a page from an ack. */
int weft_message_kind(const uint8_t *buf, size_t len, int *kind);

#endif /* WEFT_WIRE_H */
