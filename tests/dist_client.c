/*
 * dist_client.c - a small test client of the coordinator protocol, for
 * tests/dist_coordinator.py: it creates and ends jobs, enrols writer keys
 * and sends fragments (good ones, and each kind of bad one) through the
 * public wire API (weft/wire.h) and weft_coordinator_call, and prints
 * each acknowledgement as one line:
 *
 *   stored | duplicate | retry: DETAIL | rejected REASON: DETAIL
 *
 * Usage: dist_client URL COMMAND ARGS...
 *   keygen KEYFILE
 *   create JOB TOKEN [COMMAND]   (proved with the submit key in the file
 *        $WEFT_SUBMIT_KEY; without it, no proof)
 *   end JOB TOKEN EXIT
 *   enrol JOB TOKEN KEYFILE
 *   frag JOB KEYFILE SEQ RUN TASK NODE [OPTIONS] FILE...
 *        FILE: r:PATH:HH or w:PATH:HH (HH: the hash's repeated byte, in
 *        hex, or "-" for none); OPTIONS: --parent TASK, --part I/N,
 *        --tamper (flip a payload byte after signing), --seq-in-payload N
 *   many JOB KEYFILE FROM TO RUNPREFIX   (seqs FROM..TO, resent until each
 *        is acknowledged; prints "stored N duplicate M rejected K")
 *   oversize JOB KEYFILE SEQ   (an envelope over WEFT_MAX_ENVELOPE_BYTES)
 *   raw FILE                   (the file's bytes as a request)
 * Exit: 0 when every request got a reply, 3 when one could not be sent.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <weft/coordinator.h>
#include <weft/wire.h>

#define CALL_TIMEOUT_MS 5000

static const char *url;

static int die(const char *fmt, const char *arg)
{
	fprintf(stderr, "dist_client: ");
	fprintf(stderr, fmt, arg);
	fputc('\n', stderr);
	exit(2);
}

/* Send req; fill *ack. WEFT_EIO when there was no reply. */
static int call(const weft_buf *req, weft_ack *ack, bool quiet)
{
	uint8_t *reply;
	size_t rlen;
	char err[512];
	int rc = weft_coordinator_call(url, NULL, req->data, req->len,
				       CALL_TIMEOUT_MS, &reply, &rlen, err,
				       sizeof(err));
	if (rc) {
		if (!quiet)
			fprintf(stderr, "dist_client: %s\n", err);
		return WEFT_EIO;
	}
	weft_reply r;
	rc = weft_reply_decode(reply, rlen, &r);
	free(reply);
	if (rc || r.kind != WEFT_REPLY_ACK) {
		weft_reply_release(&r);
		die("the reply is not an acknowledgement%s", "");
	}
	*ack = r.ack;
	return WEFT_OK;
}

static void print_ack(const weft_ack *a)
{
	switch (a->status) {
	case WEFT_ACK_STORED:
		puts("stored");
		break;
	case WEFT_ACK_DUPLICATE:
		puts("duplicate");
		break;
	case WEFT_ACK_RETRY:
		printf("retry: %s\n", a->detail);
		break;
	default:
		printf("rejected %s: %s\n", weft_reject_name(a->reason),
		       a->detail);
	}
	fflush(stdout);
}

static int call_and_print(weft_buf *req)
{
	weft_ack a;
	int rc = call(req, &a, false);
	weft_buf_free(req);
	if (rc)
		return 3;
	print_ack(&a);
	return 0;
}

static void key_load(const char *path, weft_writer_key *k)
{
	FILE *f = fopen(path, "rb");
	if (!f || fread(k, sizeof(*k), 1, f) != 1)
		die("cannot read key file %s", path);
	fclose(f);
}

static int keygen(const char *path)
{
	weft_writer_key k;
	weft_writer_key_new(&k);
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(&k, sizeof(k), 1, f) != 1 || fclose(f))
		die("cannot write %s", path);
	char pk[WEFT_PUBKEY_TEXT_BYTES];
	weft_pubkey_to_text(k.pk, pk);
	puts(pk);
	return 0;
}

/* r:PATH:HH or w:PATH:HH into a file record of r: a file on a shared
 * filesystem (every node names it alike), written at time 1, read (that
 * version, hash HH) at time 2. */
static void add_file(weft_report *r, const char *spec)
{
	if (strlen(spec) < 4 || spec[1] != ':' ||
	    (spec[0] != 'r' && spec[0] != 'w'))
		die("bad file spec '%s'", spec);
	const char *hh = strrchr(spec, ':');
	weft_file_rec *f = weft_report_add_file(r);
	f->path = strndup(spec + 2, (size_t)(hh - spec - 2));
	f->read = spec[0] == 'r';
	f->written = spec[0] == 'w';
	f->loc_fs = strdup("nfs4 server:/export");
	f->loc_path = strdup(f->path);
	if (f->written)
		f->last_write_ns = 1;
	else
		f->first_open_ns = 2;
	if (strcmp(hh + 1, "-")) {
		f->has_hash = true;
		memset(f->hash, (int)strtoul(hh + 1, NULL, 16), 32);
		if (f->read) {
			f->has_read_hash = true;
			memcpy(f->read_hash, f->hash, 32);
		}
	} else {
		f->hash_missing = strdup("gone before hashing");
	}
}

struct frag_opts {
	const char *parent;
	uint32_t part, nparts;
	bool tamper;
	uint64_t payload_seq; /* 0: the envelope's */
};

/* Encode and seal one fragment into env. */
static void build_fragment(const char *job, const weft_writer_key *k,
			   uint64_t seq, const char *run, const char *task,
			   const char *node, const struct frag_opts *o,
			   char **files, int nfiles, weft_buf *env)
{
	weft_fragment *f = malloc(sizeof(*f));
	weft_fragment_init(f);
	snprintf(f->job, sizeof(f->job), "%s", job);
	memcpy(f->writer, k->pk, WEFT_PUBKEY_BYTES);
	f->seq = o->payload_seq ? o->payload_seq : seq;
	snprintf(f->task.id, sizeof(f->task.id), "%s", task);
	snprintf(f->task.name, sizeof(f->task.name), "%s", task);
	if (o->parent)
		snprintf(f->task.parent, sizeof(f->task.parent), "%s",
			 o->parent);
	snprintf(f->task.engine[0].key, sizeof(f->task.engine[0].key),
		 "test_node");
	snprintf(f->task.engine[0].value, sizeof(f->task.engine[0].value), "%s",
		 node);
	f->task.nengine = 1;
	snprintf(f->preflight, sizeof(f->preflight), "test: no tracer");
	f->part = o->part;
	f->nparts = o->nparts ? o->nparts : 1;
	weft_report *r = &f->report;
	snprintf(r->run_id, sizeof(r->run_id), "%s", run);
	snprintf(r->backend, sizeof(r->backend), "ptrace");
	snprintf(r->node, sizeof(r->node), "%s", node);
	/* Fixed times: the same arguments make the same fragment, so a
	 * resend is a duplicate, not a replay. */
	r->started_ns = 1700000000000000000 + (int64_t)seq;
	r->ended_ns = r->started_ns + 1000;
	weft_process_rec *p = weft_report_add_process(r);
	p->pid = 1000 + (int32_t)seq;
	p->argc = 1;
	p->argv = calloc(2, sizeof(char *));
	p->argv[0] = strdup(task);
	p->cwd = strdup("/");
	p->exited = true;
	for (int i = 0; i < nfiles; i++)
		add_file(r, files[i]);
	weft_buf payload;
	weft_buf_init(&payload);
	if (weft_fragment_encode(f, &payload))
		die("cannot encode the fragment%s", "");
	weft_buf_init(env);
	if (weft_envelope_seal(job, k, seq, payload.data, payload.len, env))
		die("cannot seal the fragment%s", "");
	if (o->tamper) {
		/* The payload's last byte (its report's dropped-event count,
		 * a fixint) sits just before the "sig" key: flipping it
		 * keeps the payload well-formed but changes what was
		 * signed. */
		uint8_t *t = memmem(env->data, env->len, "\xa3sig", 4);
		if (!t)
			die("nothing to tamper with%s", "");
		t[-1] ^= 0x01;
	}
	weft_buf_free(&payload);
	weft_fragment_release(f);
	free(f);
}

static int frag(int argc, char **argv)
{
	if (argc < 6)
		die("frag needs JOB KEYFILE SEQ RUN TASK NODE%s", "");
	weft_writer_key k;
	key_load(argv[1], &k);
	struct frag_opts o = {0};
	int i = 6;
	for (; i < argc && !strncmp(argv[i], "--", 2); i++) {
		if (!strcmp(argv[i], "--parent") && i + 1 < argc)
			o.parent = argv[++i];
		else if (!strcmp(argv[i], "--part") && i + 1 < argc)
			sscanf(argv[++i], "%u/%u", &o.part, &o.nparts);
		else if (!strcmp(argv[i], "--tamper"))
			o.tamper = true;
		else if (!strcmp(argv[i], "--seq-in-payload") && i + 1 < argc)
			o.payload_seq = strtoull(argv[++i], NULL, 10);
		else
			die("unknown option %s", argv[i]);
	}
	weft_buf env, req;
	build_fragment(argv[0], &k, strtoull(argv[2], NULL, 10), argv[3],
		       argv[4], argv[5], &o, argv + i, argc - i, &env);
	weft_buf_init(&req);
	weft_req_fragment(env.data, env.len, &req);
	weft_buf_free(&env);
	return call_and_print(&req);
}

static int many(int argc, char **argv)
{
	if (argc != 5)
		die("many needs JOB KEYFILE FROM TO RUNPREFIX%s", "");
	weft_writer_key k;
	key_load(argv[1], &k);
	uint64_t from = strtoull(argv[2], NULL, 10);
	uint64_t to = strtoull(argv[3], NULL, 10);
	unsigned long stored = 0, dup = 0, rejected = 0;
	time_t deadline = time(NULL) + 120;
	for (uint64_t seq = from; seq <= to; seq++) {
		char run[48], file[96];
		snprintf(run, sizeof(run), "%s-%llu", argv[4],
			 (unsigned long long)seq);
		snprintf(file, sizeof(file), "w:/data/%s:%02x", run,
			 (unsigned)(seq % 251) + 1);
		char *files[] = {file};
		struct frag_opts o = {0};
		weft_buf env, req;
		build_fragment(argv[0], &k, seq, run, run, "node1", &o, files,
			       1, &env);
		weft_buf_init(&req);
		weft_req_fragment(env.data, env.len, &req);
		weft_buf_free(&env);
		weft_ack a;
		for (;;) {
			/* The coordinator may be down (killed, restarting):
			 * resend until it answers. */
			if (call(&req, &a, true) == WEFT_OK &&
			    a.status != WEFT_ACK_RETRY)
				break;
			if (time(NULL) > deadline) {
				fprintf(stderr,
					"dist_client: no answer for seq %llu\n",
					(unsigned long long)seq);
				return 3;
			}
			usleep(50 * 1000);
		}
		weft_buf_free(&req);
		stored += a.status == WEFT_ACK_STORED;
		dup += a.status == WEFT_ACK_DUPLICATE;
		rejected += a.status == WEFT_ACK_REJECTED;
		if (a.status == WEFT_ACK_REJECTED)
			print_ack(&a);
	}
	printf("stored %lu duplicate %lu rejected %lu\n", stored, dup,
	       rejected);
	return 0;
}

/* A request whose envelope is a bin just over the envelope limit:
 * {"v": 1, "t": 4, "env": bin32}. */
static int oversize(void)
{
	size_t n = WEFT_MAX_ENVELOPE_BYTES + 1;
	weft_buf req;
	weft_buf_init(&req);
	const uint8_t head[] = {0x83, 0xa1, 'v', 1,   0xa1, 't',
				4,    0xa3, 'e', 'n', 'v',  0xc6};
	uint8_t len[4] = {(uint8_t)(n >> 24), (uint8_t)(n >> 16),
			  (uint8_t)(n >> 8), (uint8_t)n};
	uint8_t *body = calloc(1, n);
	weft_buf_append(&req, head, sizeof(head));
	weft_buf_append(&req, len, sizeof(len));
	weft_buf_append(&req, body, n);
	free(body);
	return call_and_print(&req);
}

static int raw(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		die("cannot read %s", path);
	weft_buf req;
	weft_buf_init(&req);
	uint8_t chunk[65536];
	size_t n;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		weft_buf_append(&req, chunk, n);
	fclose(f);
	return call_and_print(&req);
}

int main(int argc, char **argv)
{
	if (argc < 3)
		die("usage: dist_client URL COMMAND ARGS...%s", "");
	url = argv[1];
	const char *cmd = argv[2];
	argc -= 3;
	argv += 3;
	weft_buf req;
	weft_buf_init(&req);
	if (!strcmp(cmd, "keygen") && argc == 1)
		return keygen(argv[0]);
	if (!strcmp(cmd, "create") && argc >= 2) {
		weft_job_info j = {0};
		snprintf(j.id, sizeof(j.id), "%s", argv[0]);
		snprintf(j.token, sizeof(j.token), "%s", argv[1]);
		j.command = argc > 2 ? argv[2] : "test job";
		snprintf(j.user, sizeof(j.user), "tester");
		snprintf(j.host, sizeof(j.host), "testhost");
		snprintf(j.cwd, sizeof(j.cwd), "/");
		const char *kf = getenv("WEFT_SUBMIT_KEY");
		uint8_t key[WEFT_SUBMIT_KEY_BYTES];
		char err[1024];
		if (kf && kf[0] &&
		    weft_submit_key_load(kf, false, key, err, sizeof(err)))
			die("%s", err);
		if (weft_req_job_create(&j, kf && kf[0] ? key : NULL, &req))
			die("bad job id or token%s", "");
		return call_and_print(&req);
	}
	if (!strcmp(cmd, "end") && argc == 3) {
		if (weft_req_job_end(argv[0], argv[1], atoi(argv[2]), 1, &req))
			die("bad job id or token%s", "");
		return call_and_print(&req);
	}
	if (!strcmp(cmd, "enrol") && argc == 3) {
		weft_writer_key k;
		key_load(argv[2], &k);
		if (weft_req_enrol(argv[0], argv[1], k.pk, &req))
			die("bad job id or token%s", "");
		return call_and_print(&req);
	}
	if (!strcmp(cmd, "frag"))
		return frag(argc, argv);
	if (!strcmp(cmd, "many"))
		return many(argc, argv);
	if (!strcmp(cmd, "oversize"))
		return oversize();
	if (!strcmp(cmd, "raw") && argc == 1)
		return raw(argv[0]);
	return die("unknown command or arguments: %s", cmd);
}
