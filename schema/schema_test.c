/*
 * schema_test.c - unit tests for the msgpack codecs in schema/: round trips
 * of every record type at its edges, and one test per rejection rule with
 * input built by hand (with msgpack-c's packer, so the bad input is valid
 * msgpack that is wrong only in the way the test means).
 *
 * With WEFT_SCHEMA_CORPUS=<dir> set, the round-trip samples are also
 * written to <dir>/fuzz_<type>/ as seeds for the fuzz targets (that is how
 * schema/fuzz/corpus/ was made).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <msgpack.h>

#include "codec_equal.h"
#include <weft/schema.h>

/* ---- Decoding any type by name, checking the "left empty" rule ---- */

enum type { T_EVENT, T_PROCESS, T_FILE, T_REPORT };
static const char *const type_names[] = {"event", "process_rec", "file_rec",
					 "report"};

union any {
	weft_event ev;
	weft_process_rec p;
	weft_file_rec f;
	weft_report r;
};

static void release_any(enum type t, union any *u)
{
	switch (t) {
	case T_EVENT:
		weft_event_release(&u->ev);
		break;
	case T_PROCESS:
		weft_process_rec_release(&u->p);
		break;
	case T_FILE:
		weft_file_rec_release(&u->f);
		break;
	case T_REPORT:
		weft_report_release(&u->r);
		break;
	}
}

static size_t size_of(enum type t)
{
	switch (t) {
	case T_EVENT:
		return sizeof(weft_event);
	case T_PROCESS:
		return sizeof(weft_process_rec);
	case T_FILE:
		return sizeof(weft_file_rec);
	case T_REPORT:
		return sizeof(weft_report);
	}
	return 0;
}

/* Decode into u (pre-filled with garbage); on error, assert the decoder
 * left it all zero. */
static int decode_into(enum type t, const void *buf, size_t len, union any *u)
{
	memset(u, 0xa5, sizeof(*u));
	int rc = WEFT_EINVAL;
	switch (t) {
	case T_EVENT:
		rc = weft_event_decode(buf, len, &u->ev);
		break;
	case T_PROCESS:
		rc = weft_process_rec_decode(buf, len, &u->p);
		break;
	case T_FILE:
		rc = weft_file_rec_decode(buf, len, &u->f);
		break;
	case T_REPORT:
		rc = weft_report_decode(buf, len, &u->r);
		break;
	}
	if (rc != WEFT_OK) {
		static const uint8_t zero[sizeof(union any)];
		assert_memory_equal(u, zero, size_of(t));
	}
	return rc;
}

/* Decode and release: the error code only. */
static int decode_rc(enum type t, const void *buf, size_t len)
{
	union any u;
	int rc = decode_into(t, buf, len, &u);
	if (rc == WEFT_OK)
		release_any(t, &u);
	return rc;
}

static int encode_any(enum type t, const void *rec, weft_buf *out)
{
	switch (t) {
	case T_EVENT:
		return weft_event_encode(rec, out);
	case T_PROCESS:
		return weft_process_rec_encode(rec, out);
	case T_FILE:
		return weft_file_rec_encode(rec, out);
	case T_REPORT:
		return weft_report_encode(rec, out);
	}
	return WEFT_EINVAL;
}

static bool equal_any(enum type t, const void *a, const union any *b)
{
	switch (t) {
	case T_EVENT:
		return weft_event_equal(a, &b->ev);
	case T_PROCESS:
		return weft_process_rec_equal(a, &b->p);
	case T_FILE:
		return weft_file_rec_equal(a, &b->f);
	case T_REPORT:
		return weft_report_equal(a, &b->r);
	}
	return false;
}

/* Seeds for the fuzzers, when asked for (see the file comment). */
static void maybe_write_seed(enum type t, const weft_buf *b)
{
	const char *dir = getenv("WEFT_SCHEMA_CORPUS");
	if (!dir)
		return;
	static unsigned seq;
	char path[4096];
	snprintf(path, sizeof(path), "%s/fuzz_%s", dir, type_names[t]);
	if (mkdir(path, 0777) != 0 && errno != EEXIST)
		fail_msg("mkdir %s: %s", path, strerror(errno));
	snprintf(path, sizeof(path), "%s/fuzz_%s/seed_%03u", dir, type_names[t],
		 seq++);
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(b->data, 1, b->len, f), b->len);
	assert_int_equal(fclose(f), 0);
}

/* Every proper prefix of a valid message is WEFT_ETRUNC (for long
 * messages a sample of prefixes, to keep this linear-ish). */
static void check_prefixes(enum type t, const weft_buf *b)
{
	size_t step = b->len <= 4096 ? 1 : b->len / 1024;
	for (size_t n = 0; n < b->len; n += step)
		assert_int_equal(decode_rc(t, b->data, n), WEFT_ETRUNC);
	for (size_t n = b->len > 64 ? b->len - 64 : 0; n < b->len; n++)
		assert_int_equal(decode_rc(t, b->data, n), WEFT_ETRUNC);
}

/* Encode, decode, compare; then prefixes and trailing bytes. */
static void roundtrip(enum type t, const void *rec)
{
	weft_buf b;
	weft_buf_init(&b);
	assert_int_equal(encode_any(t, rec, &b), WEFT_OK);
	union any u;
	assert_int_equal(decode_into(t, b.data, b.len, &u), WEFT_OK);
	assert_true(equal_any(t, rec, &u));
	/* Canonical: the decoded copy encodes to the same bytes. */
	weft_buf again;
	weft_buf_init(&again);
	assert_int_equal(encode_any(t, &u, &again), WEFT_OK);
	assert_int_equal(again.len, b.len);
	assert_memory_equal(again.data, b.data, b.len);
	weft_buf_free(&again);
	release_any(t, &u);

	check_prefixes(t, &b);
	assert_int_equal(weft_buf_append(&b, "", 1), WEFT_OK);
	assert_int_equal(decode_rc(t, b.data, b.len), WEFT_ETRAILING);
	b.len--;
	if (b.len < 4096)
		maybe_write_seed(t, &b);
	weft_buf_free(&b);
}

/* ---- Samples ---- */

/* Bytes a path may hold: newline, tab, control, invalid UTF-8. */
static const char weird_path[] = "/data/a\nb\tc\x01\x7f\x80\x9f\xc3\x28"
				 "\xfe\xff/end";
static const char *const argv3[] = {"python3", "-c", "print('\xff\n')"};

static weft_event sample_event(void)
{
	weft_event ev = {0};
	ev.kind = WEFT_EV_OPEN;
	ev.pid = 4321;
	ev.tgid = 4320;
	ev.ret = 3;
	ev.fd = -100;
	ev.flags = 0101;
	ev.mode = 0644;
	ev.created = WEFT_CREATED_YES;
	ev.has_stat = true;
	ev.st_mode = 0100644;
	ev.st_dev = 2049;
	ev.st_ino = 1234567;
	ev.st_size = 42;
	ev.st_mtime_ns = 1700000000123456789;
	ev.time_ns = 1700000000987654321u;
	ev.path = weird_path;
	return ev;
}

static weft_process_rec sample_process(void)
{
	weft_process_rec p = {0};
	p.pid = 100;
	p.ppid = 1;
	p.argv = (char **)argv3;
	p.argc = 3;
	p.exe = "/usr/bin/python3";
	p.cwd = (char *)weird_path;
	p.exit_code = 137;
	p.exited = true;
	/* Schema 3: process images. */
	p.has_index = true;
	p.index = WEFT_MAX_PROCESSES - 1;
	p.has_parent = true;
	p.parent = 0;
	p.by_exec = true;
	p.execd = true;
	p.started_ns = 1;
	p.ended_ns = INT64_MAX;
	/* Schema 4: the executable's hash and the environment. */
	static weft_env_entry env[] = {
		{.name = "CUDA_VISIBLE_DEVICES", .value = "0,1"},
		{.name = "HOME", .hash = {1, 2, 3}},
		{.name = "a", .value = ""},
	};
	p.has_exe_hash = true;
	memset(p.exe_hash, 0xab, sizeof(p.exe_hash));
	p.env_state = WEFT_ENV_LISTED;
	p.env = env;
	p.nenv = 3;
	return p;
}

static weft_file_touch sample_touches[] = {
	{.proc = 0, .flags = WEFT_TOUCH_READ},
	{.proc = 3,
	 .flags = WEFT_TOUCH_ALL,
	 .src = WEFT_MAX_PROCESSES - 1,
	 .first_open_ns = 1,
	 .last_write_ns = INT64_MAX},
};

static weft_file_rec sample_file(void)
{
	weft_file_rec f = {0};
	f.path = (char *)weird_path;
	f.read = true;
	f.written = true;
	f.renamed_to = "/data/final";
	f.has_size = true;
	f.size = 1 << 20;
	f.has_hash = true;
	for (int i = 0; i < 32; i++)
		f.hash[i] = (uint8_t)(0xff - i * 7);
	f.hash_missing = "kept for the test";
	f.has_first_stat = true;
	f.first_dev = UINT64_MAX;
	f.first_ino = 1;
	f.first_size = 0;
	f.first_mtime_ns = INT64_MIN;
	/* Schema 2: versions and locations. */
	f.first_ctime_ns = 1;
	f.used_path = "/data/link";
	f.updated = true;
	f.has_read_hash = true;
	for (int i = 0; i < 32; i++)
		f.read_hash[i] = (uint8_t)i;
	f.read_hash_missing = "also kept";
	f.has_final_stat = true;
	f.final_dev = 7;
	f.final_ino = UINT64_MAX;
	f.final_mtime_ns = -5;
	f.final_ctime_ns = INT64_MAX;
	f.first_open_ns = 1;
	f.last_write_ns = INT64_MAX;
	f.loc_fs = "nfs4 server:/export";
	f.loc_path = "/a b/\xff";
	/* Schema 3: attribution. */
	f.touches = sample_touches;
	f.ntouches = 2;
	return f;
}

/* A report owning copies of a few samples (release with
 * weft_report_release). */
static void sample_report(weft_report *r)
{
	weft_report_init(r);
	strcpy(r->run_id, "0b6f1c2e-93c1-4b8e-9e0a-5d3f7b2a1c00");
	strcpy(r->backend, "ptrace");
	strcpy(r->node, "node-07");
	r->exit_code = 1;
	r->started_ns = 1700000000000000000;
	r->ended_ns = 1700000001000000000;
	r->dropped_events = 17;
	for (int i = 0; i < 3; i++) {
		weft_process_rec *p = weft_report_add_process(r);
		assert_non_null(p);
		p->pid = 100 + i;
		p->ppid = i ? 100 : 0;
		if (i == 1) {
			p->argv = calloc(2, sizeof(char *));
			p->argv[0] = strdup("sh");
			p->argc = 1;
			p->exe = strdup("/bin/sh");
		}
		p->cwd = strdup("/home/u");
		p->exited = i != 2;
	}
	for (int i = 0; i < 4; i++) {
		weft_file_rec *f = weft_report_add_file(r);
		assert_non_null(f);
		char path[64];
		snprintf(path, sizeof(path), "/data/in\n%d\xff", i);
		f->path = strdup(path);
		f->read = i & 1;
		f->written = i & 2;
		f->has_hash = i == 3;
		memset(f->hash, 0xab, 32);
		if (i == 2)
			f->hash_missing = strdup("gone before hashing");
	}
	assert_int_equal(
		weft_report_warn(r, "preload: %s is static", "/bin/busybox"),
		WEFT_OK);
	assert_int_equal(weft_report_warn(r, "bytes \x80\xff\n"), WEFT_OK);
}

/* ---- Round trips ---- */

static void test_event_roundtrip_kinds(void **state)
{
	(void)state;
	for (int k = WEFT_EV_OPEN; k < WEFT_EV_KIND_MAX; k++) {
		weft_event ev = sample_event();
		ev.kind = (uint16_t)k;
		ev.has_stat = k == WEFT_EV_OPEN;
		ev.path = k == WEFT_EV_CLOSE ? NULL : weird_path;
		ev.path2 = k == WEFT_EV_RENAME ? "/tmp/new" : NULL;
		if (k == WEFT_EV_EXEC) {
			ev.argv = argv3;
			ev.argc = 3;
		}
		roundtrip(T_EVENT, &ev);
	}
}

static void test_event_roundtrip_edges(void **state)
{
	(void)state;
	weft_event ev = {0};
	ev.kind = WEFT_EV_KIND_MAX - 1;
	roundtrip(T_EVENT, &ev); /* every optional absent, zero values */

	ev = sample_event();
	ev.pid = INT32_MIN;
	ev.tgid = INT32_MAX;
	ev.ret = INT64_MIN;
	ev.fd = INT32_MIN;
	ev.fd2 = INT32_MAX;
	ev.flags = -1;
	ev.mode = INT32_MIN;
	ev.created = WEFT_CREATED_UNKNOWN;
	ev.st_mode = UINT32_MAX;
	ev.st_dev = UINT64_MAX;
	ev.st_size = INT64_MAX;
	ev.st_mtime_ns = INT64_MIN;
	ev.time_ns = UINT64_MAX;
	ev.path = "";
	ev.path2 = weird_path;
	roundtrip(T_EVENT, &ev);
	ev.ret = INT64_MAX;
	ev.created = WEFT_CREATED_NO;
	roundtrip(T_EVENT, &ev);

	/* exec with argv = {NULL}: present and empty, not absent. */
	static const char *const empty[] = {NULL};
	ev = sample_event();
	ev.kind = WEFT_EV_EXEC;
	ev.argv = empty;
	ev.argc = 0;
	roundtrip(T_EVENT, &ev);
	weft_buf b;
	weft_buf_init(&b);
	assert_int_equal(weft_event_encode(&ev, &b), WEFT_OK);
	weft_event out;
	assert_int_equal(weft_event_decode(b.data, b.len, &out), WEFT_OK);
	assert_non_null(out.argv);
	assert_null(out.argv[0]);
	weft_event_release(&out);
	weft_buf_free(&b);

	/* Empty strings as arguments. */
	static const char *const blanks[] = {"", "", "x"};
	ev.argv = blanks;
	ev.argc = 3;
	roundtrip(T_EVENT, &ev);
}

static void test_process_roundtrip(void **state)
{
	(void)state;
	weft_process_rec p = sample_process();
	roundtrip(T_PROCESS, &p);
	p = (weft_process_rec){.pid = 1}; /* root, nothing optional */
	roundtrip(T_PROCESS, &p);
	p.exit_code = 255;
	p.ppid = INT32_MAX;
	p.pid = INT32_MAX;
	static char *empty[] = {NULL};
	p.argv = empty;
	roundtrip(T_PROCESS, &p);
	p.exe = "";
	p.cwd = "/";
	roundtrip(T_PROCESS, &p);
	/* Schema 4: the parent's environment, or one not known. */
	p.has_parent = true;
	p.env_state = WEFT_ENV_PARENT;
	roundtrip(T_PROCESS, &p);
	p.env_state = WEFT_ENV_UNKNOWN;
	roundtrip(T_PROCESS, &p);
	p.env_missing = "gone before its environment was read";
	roundtrip(T_PROCESS, &p);
	p.env_missing = NULL;
	p.env_state = WEFT_ENV_LISTED; /* an empty environment */
	roundtrip(T_PROCESS, &p);
}

/* Environments the encoder refuses (and so the decoder, which checks the
 * same): unsorted or repeated names, a name with '=' or empty, entries
 * in a state that has none, the parent's environment without a parent,
 * clear values past the argv limit. */
static void test_process_env_refused(void **state)
{
	(void)state;
	weft_env_entry two[2] = {{.name = "B"}, {.name = "A"}};
	weft_process_rec p = {
		.pid = 1, .env_state = WEFT_ENV_LISTED, .env = two, .nenv = 2};
	weft_buf b;
	weft_buf_init(&b);
	assert_int_equal(weft_process_rec_encode(&p, &b), WEFT_EINVAL);
	two[1].name = "B";
	assert_int_equal(weft_process_rec_encode(&p, &b), WEFT_EINVAL);
	two[1].name = "C=D";
	assert_int_equal(weft_process_rec_encode(&p, &b), WEFT_EINVAL);
	two[0].name = "";
	two[1].name = "C";
	assert_int_equal(weft_process_rec_encode(&p, &b), WEFT_EINVAL);
	two[0].name = "A";
	p.env_state = WEFT_ENV_PARENT;
	assert_int_equal(weft_process_rec_encode(&p, &b), WEFT_EINVAL);
	p.nenv = 0;
	assert_int_equal(weft_process_rec_encode(&p, &b), WEFT_EINVAL);
	p.env_state = WEFT_ENV_LISTED;
	p.env_missing = "why";
	assert_int_equal(weft_process_rec_encode(&p, &b), WEFT_EINVAL);
	p.env_missing = NULL;
	static char big[WEFT_MAX_ARGV_BYTES / 2 + 2];
	memset(big, 'x', sizeof(big) - 1);
	two[0].value = big;
	two[1].value = big;
	p.nenv = 2;
	assert_int_equal(weft_process_rec_encode(&p, &b), WEFT_ETOOBIG);
	two[1].value = NULL;
	assert_int_equal(weft_process_rec_encode(&p, &b), WEFT_OK);
	weft_buf_free(&b);

	/* The decoder's own checks: an entry with both a hash and a value,
	 * or neither; env and enveq together. */
	static const char both[] =
		"\206\241v\004\243pid\001\244ppid\000\244exit\000"
		"\246exited\302\243env\221\203\241n\241A\241v\241x"
		"\241h\304\040"
		"0123456789abcdef0123456789abcdef";
	weft_process_rec d;
	assert_int_equal(weft_process_rec_decode((const uint8_t *)both,
						 sizeof(both) - 1, &d),
			 WEFT_EINVAL);
	static const char neither[] =
		"\206\241v\004\243pid\001\244ppid\000\244exit\000"
		"\246exited\302\243env\221\201\241n\241A";
	/* (too short for any entry, so refused as truncated) */
	assert_int_not_equal(weft_process_rec_decode((const uint8_t *)neither,
						     sizeof(neither) - 1, &d),
			     WEFT_OK);
	static const char twice[] =
		"\210\241v\004\243pid\001\244ppid\000\244exit\000"
		"\246exited\302\243par\000\243env\220\245enveq\303";
	assert_int_equal(weft_process_rec_decode((const uint8_t *)twice,
						 sizeof(twice) - 1, &d),
			 WEFT_EINVAL);
	/* A schema 3 record (no xh, env) still decodes, its environment
	 * not recorded. */
	static const char v3[] = "\205\241v\003\243pid\001\244ppid\000"
				 "\244exit\000\246exited\302";
	assert_int_equal(weft_process_rec_decode((const uint8_t *)v3,
						 sizeof(v3) - 1, &d),
			 WEFT_OK);
	assert_int_equal(d.env_state, WEFT_ENV_NONE);
	assert_false(d.has_exe_hash);
	weft_process_rec_release(&d);
}

static void test_file_roundtrip(void **state)
{
	(void)state;
	weft_file_rec f = sample_file();
	roundtrip(T_FILE, &f);
	f = (weft_file_rec){.path = "/x"};
	roundtrip(T_FILE, &f);
	f.deleted = true;
	f.created = true;
	f.has_size = true; /* size 0 */
	roundtrip(T_FILE, &f);
	f.size = INT64_MAX;
	f.has_hash = true; /* all-zero hash */
	roundtrip(T_FILE, &f);
}

static void test_report_roundtrip(void **state)
{
	(void)state;
	weft_report r;
	weft_report_init(&r);
	roundtrip(T_REPORT, &r); /* empty: empty arrays and names */
	sample_report(&r);
	roundtrip(T_REPORT, &r);

	/* The decoded report must keep weft_report_warn's growth scheme:
	 * appending to it after decode is safe (ASan watches). */
	weft_buf b;
	weft_buf_init(&b);
	assert_int_equal(weft_report_encode(&r, &b), WEFT_OK);
	weft_report out;
	for (int n = 0; n < 3; n++) {
		assert_int_equal(weft_report_decode(b.data, b.len, &out),
				 WEFT_OK);
		for (int i = 0; i < 40; i++)
			assert_int_equal(weft_report_warn(&out, "w%d", i),
					 WEFT_OK);
		assert_non_null(weft_report_add_process(&out));
		assert_non_null(weft_report_add_file(&out));
		weft_report_release(&out);
		assert_int_equal(weft_report_warn(&r, "more"), WEFT_OK);
		b.len = 0;
		assert_int_equal(weft_report_encode(&r, &b), WEFT_OK);
	}
	weft_buf_free(&b);
	weft_report_release(&r);
}

/* weft_report_warn stops at the limit plus one "dropped" marker: such a
 * report round-trips, and one warning more does not decode. */
static void test_report_warning_limit(void **state)
{
	(void)state;
	weft_report r;
	weft_report_init(&r);
	for (int i = 0; i < WEFT_MAX_WARNINGS + 10; i++)
		weft_report_warn(&r, "warning %d", i);
	assert_int_equal(r.nwarnings, WEFT_MAX_WARNINGS + 1);
	roundtrip(T_REPORT, &r);

	/* Longest warning accepted, one byte more refused. */
	char *big = malloc(WEFT_MAX_WARNING_BYTES + 2);
	memset(big, 'w', WEFT_MAX_WARNING_BYTES + 1);
	big[WEFT_MAX_WARNING_BYTES] = '\0';
	free(r.warnings[0]);
	r.warnings[0] = big;
	roundtrip(T_REPORT, &r);
	big[WEFT_MAX_WARNING_BYTES] = 'w';
	big[WEFT_MAX_WARNING_BYTES + 1] = '\0';
	weft_buf b;
	weft_buf_init(&b);
	assert_int_equal(weft_report_encode(&r, &b), WEFT_ETOOBIG);
	assert_int_equal(b.len, 0);
	weft_buf_free(&b);

	/* One warning too many. */
	big[WEFT_MAX_WARNING_BYTES] = '\0';
	r.nwarnings = WEFT_MAX_WARNINGS + 2;
	char **w = realloc(r.warnings, r.nwarnings * sizeof(char *));
	assert_non_null(w);
	r.warnings = w;
	r.warnings[r.nwarnings - 1] = strdup("one too many");
	assert_int_equal(weft_report_encode(&r, &b), WEFT_ETOOBIG);
	weft_report_release(&r);
}

/* ---- Limits at the edge, both directions ---- */

static char *string_of(size_t n, char c)
{
	char *s = malloc(n + 1);
	assert_non_null(s);
	memset(s, c, n);
	s[n] = '\0';
	return s;
}

static void test_path_limit(void **state)
{
	(void)state;
	char *max = string_of(WEFT_MAX_PATH_BYTES, '\xee');
	char *over = string_of(WEFT_MAX_PATH_BYTES + 1, '/');
	max[0] = '/'; /* file records hold absolute paths only */
	weft_buf b;
	weft_buf_init(&b);

	weft_event ev = sample_event();
	ev.path = max;
	ev.path2 = max;
	roundtrip(T_EVENT, &ev);
	ev.path2 = over;
	assert_int_equal(weft_event_encode(&ev, &b), WEFT_ETOOBIG);

	weft_process_rec p = sample_process();
	p.exe = max;
	p.cwd = max;
	roundtrip(T_PROCESS, &p);
	p.cwd = over;
	assert_int_equal(weft_process_rec_encode(&p, &b), WEFT_ETOOBIG);

	weft_file_rec f = sample_file();
	f.path = max;
	f.renamed_to = max;
	roundtrip(T_FILE, &f);
	f.renamed_to = over;
	assert_int_equal(weft_file_rec_encode(&f, &b), WEFT_ETOOBIG);
	f.renamed_to = NULL;
	f.path = over;
	assert_int_equal(weft_file_rec_encode(&f, &b), WEFT_ETOOBIG);
	assert_int_equal(b.len, 0); /* failed encodes leave nothing */

	weft_buf_free(&b);
	free(max);
	free(over);
}

/* A file record of schema `version` built by hand: the five required
 * keys, path as bin, every flag `flags`. */
static void pack_file_rec(msgpack_sbuffer *sb, int version, const char *path,
			  bool flags)
{
	msgpack_packer pk;
	msgpack_sbuffer_init(sb);
	msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 6);
	const char *keys[] = {"v", "path", "rd", "wr", "cr", "del"};
	for (int k = 0; k < 6; k++) {
		msgpack_pack_str(&pk, strlen(keys[k]));
		msgpack_pack_str_body(&pk, keys[k], strlen(keys[k]));
		if (k == 0) {
			msgpack_pack_uint8(&pk, (uint8_t)version);
		} else if (k == 1) {
			msgpack_pack_bin(&pk, strlen(path));
			msgpack_pack_bin_body(&pk, path, strlen(path));
		} else if (flags) {
			msgpack_pack_true(&pk);
		} else {
			msgpack_pack_false(&pk);
		}
	}
}

/* Every path a file record carries is absolute and normalized: the
 * encoder refuses another, and so does the decoder (a signed fragment
 * with "../x" is no record). */
static void test_file_paths_checked(void **state)
{
	(void)state;
	static const char *const bad[] = {"",        "x",   "/a//b", "/a/./b",
					  "/a/../b", "/a/", "/..",   "./a"};
	weft_buf b;
	weft_buf_init(&b);
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		assert_false(weft_path_ok(bad[i]));
		weft_file_rec f = {.path = (char *)bad[i]};
		assert_int_equal(weft_file_rec_encode(&f, &b), WEFT_EINVAL);
		f = (weft_file_rec){.path = "/ok",
				    .renamed_to = (char *)bad[i]};
		assert_int_equal(weft_file_rec_encode(&f, &b), WEFT_EINVAL);
		/* The same record built by hand reaches the decoder. */
		msgpack_sbuffer sb;
		pack_file_rec(&sb, WEFT_SCHEMA_VERSION, bad[i], false);
		weft_file_rec out;
		assert_int_equal(
			weft_file_rec_decode((uint8_t *)sb.data, sb.size, &out),
			WEFT_EINVAL);
		msgpack_sbuffer_destroy(&sb);
	}
	assert_true(weft_path_ok("/"));
	assert_true(weft_path_ok("/a/.b/..c/b.."));
	assert_int_equal(b.len, 0);
	weft_buf_free(&b);
}

/* A record of schema 1 (no versions, no locations) still decodes, with
 * those fields absent. */
static void test_file_schema1_decodes(void **state)
{
	(void)state;
	msgpack_sbuffer sb;
	pack_file_rec(&sb, 1, "/data", true);
	weft_file_rec f;
	assert_int_equal(weft_file_rec_decode((uint8_t *)sb.data, sb.size, &f),
			 WEFT_OK);
	assert_string_equal(f.path, "/data");
	assert_true(f.read && f.written);
	assert_false(f.has_read_hash || f.has_final_stat || f.updated);
	assert_null(f.loc_fs);
	assert_null(f.loc_path);
	weft_file_rec_release(&f);
	msgpack_sbuffer_destroy(&sb);
}

static void test_argv_limits(void **state)
{
	(void)state;
	weft_buf b;
	weft_buf_init(&b);
	const char **argv = calloc(WEFT_MAX_ARGC + 1, sizeof(char *));
	assert_non_null(argv);
	char *chunk = string_of(WEFT_MAX_ARGV_BYTES / WEFT_MAX_ARGC, 'a');

	/* WEFT_MAX_ARGC arguments of WEFT_MAX_ARGV_BYTES in total. */
	for (int i = 0; i < WEFT_MAX_ARGC; i++)
		argv[i] = chunk;
	weft_process_rec p = {
		.pid = 2, .argv = (char **)argv, .argc = WEFT_MAX_ARGC};
	roundtrip(T_PROCESS, &p);
	weft_event ev = sample_event();
	ev.kind = WEFT_EV_EXEC;
	ev.argv = argv;
	ev.argc = WEFT_MAX_ARGC;
	roundtrip(T_EVENT, &ev);

	/* One argument more. */
	argv[WEFT_MAX_ARGC] = "";
	p.argc = ev.argc = WEFT_MAX_ARGC + 1;
	assert_int_equal(weft_process_rec_encode(&p, &b), WEFT_ETOOBIG);
	assert_int_equal(weft_event_encode(&ev, &b), WEFT_ETOOBIG);

	/* One byte more. */
	char *longer = string_of(WEFT_MAX_ARGV_BYTES / WEFT_MAX_ARGC + 1, 'b');
	argv[0] = longer;
	p.argc = ev.argc = WEFT_MAX_ARGC;
	assert_int_equal(weft_process_rec_encode(&p, &b), WEFT_ETOOBIG);
	assert_int_equal(weft_event_encode(&ev, &b), WEFT_ETOOBIG);

	/* Every field within its limit, the whole event over
	 * WEFT_MAX_EVENT_BYTES: the encoder refuses it. */
	argv[0] = chunk;
	char *path = string_of(WEFT_MAX_PATH_BYTES, 'p');
	ev.path = ev.path2 = path;
	assert_int_equal(weft_event_encode(&ev, &b), WEFT_ETOOBIG);
	assert_int_equal(b.len, 0);

	/* NULL entries and a NULL argv with a count are caller bugs. */
	argv[1] = NULL;
	assert_int_equal(weft_process_rec_encode(&p, &b), WEFT_EINVAL);
	p.argv = NULL;
	assert_int_equal(weft_process_rec_encode(&p, &b), WEFT_EINVAL);

	free(path);
	free(longer);
	free(chunk);
	free(argv);
	weft_buf_free(&b);
}

static void test_name_limit(void **state)
{
	(void)state;
	weft_report r;
	weft_report_init(&r);
	memset(r.node, 'n', WEFT_MAX_NAME_BYTES - 1);
	memset(r.backend, '\xff', WEFT_MAX_NAME_BYTES - 1);
	roundtrip(T_REPORT, &r);
	memset(r.run_id, 'r', WEFT_MAX_NAME_BYTES); /* no NUL at all */
	weft_buf b;
	weft_buf_init(&b);
	assert_int_equal(weft_report_encode(&r, &b), WEFT_ETOOBIG);
	weft_buf_free(&b);
}

static void test_encode_rejects_bad_values(void **state)
{
	(void)state;
	weft_buf b;
	weft_buf_init(&b);
	weft_event ev = sample_event();
	ev.kind = 0;
	assert_int_equal(weft_event_encode(&ev, &b), WEFT_EINVAL);
	ev.kind = WEFT_EV_KIND_MAX;
	assert_int_equal(weft_event_encode(&ev, &b), WEFT_EINVAL);
	ev = sample_event();
	ev.created = 2;
	assert_int_equal(weft_event_encode(&ev, &b), WEFT_EINVAL);
	ev = sample_event();
	ev.st_size = -1;
	assert_int_equal(weft_event_encode(&ev, &b), WEFT_EINVAL);
	ev.has_stat = false; /* then st_* are not carried */
	assert_int_equal(weft_event_encode(&ev, &b), WEFT_OK);

	/* Exit codes are 0..255; negative ones are rejected. */
	weft_process_rec p = sample_process();
	p.exit_code = -1;
	size_t before = b.len;
	assert_int_equal(weft_process_rec_encode(&p, &b), WEFT_EINVAL);
	p.exit_code = 256;
	assert_int_equal(weft_process_rec_encode(&p, &b), WEFT_EINVAL);
	p = sample_process();
	p.pid = 0;
	assert_int_equal(weft_process_rec_encode(&p, &b), WEFT_EINVAL);
	p = sample_process();
	p.ppid = -1;
	assert_int_equal(weft_process_rec_encode(&p, &b), WEFT_EINVAL);

	weft_file_rec f = sample_file();
	f.path = NULL;
	assert_int_equal(weft_file_rec_encode(&f, &b), WEFT_EINVAL);
	f = sample_file();
	f.size = -1;
	assert_int_equal(weft_file_rec_encode(&f, &b), WEFT_EINVAL);
	/* A touch naming a process or flag beyond the limits. */
	weft_file_touch bad_touch = {.proc = WEFT_MAX_PROCESSES,
				     .flags = WEFT_TOUCH_READ};
	f = sample_file();
	f.touches = &bad_touch;
	f.ntouches = 1;
	assert_int_equal(weft_file_rec_encode(&f, &b), WEFT_EINVAL);
	bad_touch.proc = 0;
	bad_touch.flags = WEFT_TOUCH_ALL + 1;
	assert_int_equal(weft_file_rec_encode(&f, &b), WEFT_EINVAL);

	weft_report r;
	weft_report_init(&r);
	r.exit_code = -1;
	assert_int_equal(weft_report_encode(&r, &b), WEFT_EINVAL);
	r.exit_code = 0;
	weft_process_rec *bad = weft_report_add_process(&r); /* pid 0 */
	assert_non_null(bad);
	assert_int_equal(weft_report_encode(&r, &b), WEFT_EINVAL);
	weft_report_release(&r);
	assert_int_equal(b.len, before); /* nothing half-written */
	weft_buf_free(&b);
}

/* Encoders append: two messages in one buffer, each decodable alone. */
static void test_encode_appends(void **state)
{
	(void)state;
	weft_buf b;
	weft_buf_init(&b);
	weft_event ev = sample_event();
	assert_int_equal(weft_event_encode(&ev, &b), WEFT_OK);
	size_t first = b.len;
	ev.pid = 7;
	assert_int_equal(weft_event_encode(&ev, &b), WEFT_OK);
	weft_event out;
	assert_int_equal(weft_event_decode(b.data + first, b.len - first, &out),
			 WEFT_OK);
	assert_int_equal(out.pid, 7);
	weft_event_release(&out);
	assert_int_equal(weft_event_decode(b.data, first, &out), WEFT_OK);
	assert_int_equal(out.pid, 4321);
	weft_event_release(&out);
	assert_int_equal(weft_event_decode(b.data, b.len, &out),
			 WEFT_ETRAILING);
	weft_buf_free(&b);
}

/* The wire format as another msgpack implementation sees it: a map whose
 * first key is "v" = 1, strings as bin. */
static void test_wire_format_with_msgpack_c(void **state)
{
	(void)state;
	weft_buf b;
	weft_buf_init(&b);
	weft_file_rec f = sample_file();
	assert_int_equal(weft_file_rec_encode(&f, &b), WEFT_OK);
	msgpack_unpacked up;
	msgpack_unpacked_init(&up);
	size_t off = 0;
	assert_int_equal(
		msgpack_unpack_next(&up, (const char *)b.data, b.len, &off),
		MSGPACK_UNPACK_SUCCESS);
	assert_int_equal(off, b.len);
	msgpack_object o = up.data;
	assert_int_equal(o.type, MSGPACK_OBJECT_MAP);
	assert_int_equal(o.via.map.size, 21); /* "v" and every field */
	msgpack_object_kv *kv = o.via.map.ptr;
	assert_int_equal(kv[0].key.type, MSGPACK_OBJECT_STR);
	assert_memory_equal(kv[0].key.via.str.ptr, "v", 1);
	assert_int_equal(kv[0].val.type, MSGPACK_OBJECT_POSITIVE_INTEGER);
	assert_int_equal(kv[0].val.via.u64, WEFT_SCHEMA_VERSION);
	assert_memory_equal(kv[1].key.via.str.ptr, "path", 4);
	assert_int_equal(kv[1].val.type, MSGPACK_OBJECT_BIN);
	assert_int_equal(kv[1].val.via.bin.size, strlen(weird_path));
	msgpack_unpacked_destroy(&up);
	weft_buf_free(&b);
}

/* ---- Hand-built input ---- */

/* A map entry for hand-built messages; val writes the value. */
enum vt { V_INT, V_UINT, V_BIN, V_STR, V_NIL, V_BOOL, V_FLOAT, V_RAW };
struct fv {
	const char *key;
	enum vt t;
	int64_t i;
	const char *s; /* V_BIN, V_STR, V_RAW bytes */
	size_t n;      /* their length */
	bool optional;
};

#define INT(k, v)                                                              \
	{                                                                      \
		k, V_INT, v, NULL, 0, false                                    \
	}
#define BOOL(k, v)                                                             \
	{                                                                      \
		k, V_BOOL, v, NULL, 0, false                                   \
	}
#define BIN(k, v)                                                              \
	{                                                                      \
		k, V_BIN, 0, v, sizeof(v) - 1, false                           \
	}
#define OPT_BIN(k, v)                                                          \
	{                                                                      \
		k, V_BIN, 0, v, sizeof(v) - 1, true                            \
	}
#define OPT_RAW(k, v)                                                          \
	{                                                                      \
		k, V_RAW, 0, v, sizeof(v) - 1, true                            \
	}
#define OPT_INT(k, v)                                                          \
	{                                                                      \
		k, V_INT, v, NULL, 0, true                                     \
	}
#define RAW(k, v)                                                              \
	{                                                                      \
		k, V_RAW, 0, v, sizeof(v) - 1, false                           \
	}

static void pack_value(msgpack_packer *pk, msgpack_sbuffer *sb,
		       const struct fv *f)
{
	switch (f->t) {
	case V_INT:
		msgpack_pack_int64(pk, f->i);
		break;
	case V_UINT:
		msgpack_pack_uint64(pk, (uint64_t)f->i);
		break;
	case V_BIN:
		msgpack_pack_bin(pk, f->n);
		msgpack_pack_bin_body(pk, f->s, f->n);
		break;
	case V_STR:
		msgpack_pack_str(pk, f->n);
		msgpack_pack_str_body(pk, f->s, f->n);
		break;
	case V_NIL:
		msgpack_pack_nil(pk);
		break;
	case V_BOOL:
		if (f->i)
			msgpack_pack_true(pk);
		else
			msgpack_pack_false(pk);
		break;
	case V_FLOAT:
		msgpack_pack_double(pk, 1.5);
		break;
	case V_RAW:
		msgpack_sbuffer_write(sb, f->s, f->n);
		break;
	}
}

/* Pack fields[0..n) as one map, into sb (cleared first). */
static void pack_map(msgpack_sbuffer *sb, const struct fv *fields, size_t n)
{
	msgpack_sbuffer_clear(sb);
	msgpack_packer pk;
	msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, n);
	for (size_t i = 0; i < n; i++) {
		size_t kl = strlen(fields[i].key);
		msgpack_pack_str(&pk, kl);
		msgpack_pack_str_body(&pk, fields[i].key, kl);
		pack_value(&pk, sb, &fields[i]);
	}
}

/* Hand-built nested values (raw msgpack). */
#define ARGV2                                                                  \
	"\x92\xc4\x01"                                                         \
	"a\xa1"                                                                \
	"b" /* ["a", "b"] */
#define STAT_MAP                                                               \
	"\x85\xa4mode\x01\xa3"                                                 \
	"dev\x02\xa3ino\x03\xa4size\x04\xa5mtime\x05"
#define FIRST_MAP                                                              \
	"\x84\xa3"                                                             \
	"dev\x02\xa3ino\x03\xa4size\x04\xa5mtime\xff"
#define HASH32                                                                 \
	"\xc4\x20"                                                             \
	"0123456789abcdef0123456789abcdef"
#define PROC_MAP                                                               \
	"\x84\xa3pid\x05\xa4ppid\x00\xa4"                                      \
	"exit\x00\xa6"                                                         \
	"exited\xc3"
#define FILE_MAP                                                               \
	"\x85\xa4path\xc4\x02/x\xa2rd\xc3\xa2wr\xc2\xa2"                       \
	"cr\xc2\xa3"                                                           \
	"del\xc2"

static const struct fv event_fields[] = {
	INT("v", 1),
	INT("k", 1),
	INT("pid", 5),
	INT("tgid", 5),
	INT("ret", 3),
	INT("fd", -100),
	INT("fd2", 0),
	INT("fl", 0),
	INT("mode", 0),
	INT("cr", 0),
	INT("t", 0),
	OPT_BIN("p", "/tmp/\xff\n"),
	OPT_BIN("p2", "/b"),
	OPT_RAW("argv", ARGV2),
	OPT_RAW("st", STAT_MAP),
};
static const struct fv process_fields[] = {
	INT("v", 1),
	INT("pid", 5),
	INT("ppid", 0),
	INT("exit", 0),
	BOOL("exited", 1),
	OPT_RAW("argv", ARGV2),
	OPT_BIN("exe", "/bin/x"),
	OPT_BIN("cwd", "/"),
};
static const struct fv file_fields[] = {
	INT("v", 1),
	BIN("path", "/p"),
	BOOL("rd", 1),
	BOOL("wr", 0),
	BOOL("cr", 0),
	BOOL("del", 0),
	OPT_BIN("ren", "/q"),
	OPT_INT("size", 9),
	OPT_RAW("hash", HASH32),
	OPT_BIN("nohash", "why"),
	OPT_RAW("first", FIRST_MAP),
};
static const struct fv report_fields[] = {
	INT("v", 1),
	BIN("run", "r-1"),
	BIN("backend", "ebpf"),
	BIN("node", "n1"),
	INT("exit", 0),
	INT("start", -1),
	INT("end", 2),
	RAW("procs", "\x92" PROC_MAP PROC_MAP),
	RAW("files", "\x91" FILE_MAP),
	RAW("warn", "\x92\xc4\x01w\xa0"),
	INT("dropped", 0),
};

struct schema {
	enum type t;
	const struct fv *fields;
	size_t n;
};
static const struct schema schemas[] = {
	{T_EVENT, event_fields, sizeof(event_fields) / sizeof(struct fv)},
	{T_PROCESS, process_fields, sizeof(process_fields) / sizeof(struct fv)},
	{T_FILE, file_fields, sizeof(file_fields) / sizeof(struct fv)},
	{T_REPORT, report_fields, sizeof(report_fields) / sizeof(struct fv)},
};

/* The hand-built messages are valid as they are; each rule below breaks
 * one thing. */
static void test_handbuilt_valid(void **state)
{
	(void)state;
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	for (size_t s = 0; s < 4; s++) {
		pack_map(&sb, schemas[s].fields, schemas[s].n);
		assert_int_equal(decode_rc(schemas[s].t, sb.data, sb.size),
				 WEFT_OK);
		weft_buf b = {(uint8_t *)sb.data, sb.size, sb.alloc};
		check_prefixes(schemas[s].t, &b);
	}
	msgpack_sbuffer_destroy(&sb);
}

/* Each key missing: WEFT_EINVAL when it is required ("v" included), fine
 * when optional. */
static void test_missing_keys(void **state)
{
	(void)state;
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	struct fv tmp[16];
	for (size_t s = 0; s < 4; s++) {
		const struct schema *sc = &schemas[s];
		for (size_t drop = 0; drop < sc->n; drop++) {
			size_t m = 0;
			for (size_t i = 0; i < sc->n; i++)
				if (i != drop)
					tmp[m++] = sc->fields[i];
			pack_map(&sb, tmp, m);
			int want = sc->fields[drop].optional ? WEFT_OK
							     : WEFT_EINVAL;
			assert_int_equal(decode_rc(sc->t, sb.data, sb.size),
					 want);
		}
	}
	msgpack_sbuffer_destroy(&sb);
}

/* Keys in any order after "v" (reversed, and rotated by each amount)
 * decode as in the encoders' order; a key repeated after later ones is
 * still a duplicate. */
static void test_key_order(void **state)
{
	(void)state;
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	struct fv tmp[18];
	for (size_t s = 0; s < 4; s++) {
		const struct schema *sc = &schemas[s];
		size_t n = sc->n - 1; /* after "v" */
		const struct fv *f = sc->fields + 1;
		tmp[0] = sc->fields[0];
		for (size_t i = 0; i < n; i++)
			tmp[1 + i] = f[n - 1 - i];
		pack_map(&sb, tmp, sc->n);
		assert_int_equal(decode_rc(sc->t, sb.data, sb.size), WEFT_OK);
		for (size_t r = 1; r < n; r++) {
			for (size_t i = 0; i < n; i++)
				tmp[1 + i] = f[(i + r) % n];
			pack_map(&sb, tmp, sc->n);
			assert_int_equal(decode_rc(sc->t, sb.data, sb.size),
					 WEFT_OK);
			/* The first key of the rotation again, at the end. */
			tmp[sc->n] = f[r];
			pack_map(&sb, tmp, sc->n + 1);
			assert_int_equal(decode_rc(sc->t, sb.data, sb.size),
					 WEFT_EINVAL);
		}
	}
	msgpack_sbuffer_destroy(&sb);
}

/* Each key twice: WEFT_EINVAL, also when both values are nil. */
static void test_duplicate_keys(void **state)
{
	(void)state;
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	struct fv tmp[17];
	for (size_t s = 0; s < 4; s++) {
		const struct schema *sc = &schemas[s];
		memcpy(tmp, sc->fields, sc->n * sizeof(*tmp));
		for (size_t dup = 0; dup < sc->n; dup++) {
			tmp[sc->n] = sc->fields[dup];
			pack_map(&sb, tmp, sc->n + 1);
			assert_int_equal(decode_rc(sc->t, sb.data, sb.size),
					 WEFT_EINVAL);
		}
	}
	struct fv nils[] = {INT("v", 1), {"p", V_NIL}, {"p", V_NIL}};
	memcpy(tmp, event_fields, 11 * sizeof(*tmp));
	tmp[11] = nils[1];
	tmp[12] = nils[2];
	pack_map(&sb, tmp, 13);
	assert_int_equal(decode_rc(T_EVENT, sb.data, sb.size), WEFT_EINVAL);
	msgpack_sbuffer_destroy(&sb);
}

/* Each value of a wrong type: WEFT_ETYPE ("v" too); nil is accepted for
 * optional values only. */
static void test_wrong_types(void **state)
{
	(void)state;
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	struct fv tmp[16];
	for (size_t s = 0; s < 4; s++) {
		const struct schema *sc = &schemas[s];
		for (size_t k = 0; k < sc->n; k++) {
			memcpy(tmp, sc->fields, sc->n * sizeof(*tmp));
			tmp[k].t = V_FLOAT;
			pack_map(&sb, tmp, sc->n);
			assert_int_equal(decode_rc(sc->t, sb.data, sb.size),
					 WEFT_ETYPE);
			tmp[k].t = V_NIL;
			pack_map(&sb, tmp, sc->n);
			int want = tmp[k].optional ? WEFT_OK : WEFT_ETYPE;
			assert_int_equal(decode_rc(sc->t, sb.data, sb.size),
					 want);
			/* An int where a string or bool is due, and the
			 * other way round. */
			enum vt other =
				sc->fields[k].t == V_INT ? V_BIN : V_INT;
			tmp[k].t = other;
			tmp[k].s = "1";
			tmp[k].n = 1;
			tmp[k].i = 1;
			pack_map(&sb, tmp, sc->n);
			assert_int_equal(decode_rc(sc->t, sb.data, sb.size),
					 WEFT_ETYPE);
		}
	}
	/* Not a map at all; a key that is not a str. */
	assert_int_equal(decode_rc(T_EVENT, "\x91\x01", 2), WEFT_ETYPE);
	assert_int_equal(decode_rc(T_REPORT, "\xc0", 1), WEFT_ETYPE);
	assert_int_equal(decode_rc(T_FILE, "\x81\x01\x01", 3), WEFT_ETYPE);
	assert_int_equal(decode_rc(T_PROCESS, "\x81\xc4\x01v\x01", 5),
			 WEFT_ETYPE);
	/* A hash as str (hex text sent as the bytes) is the wrong type. */
	memcpy(tmp, file_fields, sizeof(file_fields));
	tmp[8] = (struct fv){
		"hash", V_STR, 0, "0123456789abcdef0123456789abcdef", 32, true};
	pack_map(&sb, tmp, 11);
	assert_int_equal(decode_rc(T_FILE, sb.data, sb.size), WEFT_ETYPE);
	msgpack_sbuffer_destroy(&sb);
}

/* Replace key k of schema s with value v and decode. */
static int decode_with(enum type t, const struct fv *v)
{
	const struct schema *sc = &schemas[t];
	struct fv tmp[16];
	memcpy(tmp, sc->fields, sc->n * sizeof(*tmp));
	size_t k = 0;
	while (k < sc->n && strcmp(tmp[k].key, v->key) != 0)
		k++;
	assert_true(k < sc->n);
	tmp[k] = *v;
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	pack_map(&sb, tmp, sc->n);
	int rc = decode_rc(t, sb.data, sb.size);
	msgpack_sbuffer_destroy(&sb);
	return rc;
}

static void test_version(void **state)
{
	(void)state;
	for (int t = 0; t < 4; t++) {
		const int64_t bad[] = {0,         WEFT_SCHEMA_VERSION + 1,
				       -1,        255,
				       INT64_MIN, INT64_MAX};
		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			struct fv v = INT("v", bad[i]);
			assert_int_equal(decode_with(t, &v), WEFT_EVERSION);
		}
		struct fv v = {"v", V_UINT, -1}; /* UINT64_MAX */
		assert_int_equal(decode_with(t, &v), WEFT_EVERSION);
		v = (struct fv)BIN("v", "1");
		assert_int_equal(decode_with(t, &v), WEFT_ETYPE);
	}
	/* "v" must come first. */
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	struct fv tmp[16];
	memcpy(tmp, process_fields, sizeof(process_fields));
	tmp[0] = process_fields[1];
	tmp[1] = process_fields[0];
	pack_map(&sb, tmp, 8);
	assert_int_equal(decode_rc(T_PROCESS, sb.data, sb.size), WEFT_EINVAL);
	/* A message of a newer version with keys this version does not know
	 * is a version error, not an unknown-key one. */
	memcpy(tmp, event_fields, sizeof(event_fields));
	tmp[0].i = WEFT_SCHEMA_VERSION + 1;
	tmp[1] = (struct fv)BIN("kind2", "x");
	pack_map(&sb, tmp, 15);
	assert_int_equal(decode_rc(T_EVENT, sb.data, sb.size), WEFT_EVERSION);
	msgpack_sbuffer_destroy(&sb);
	assert_int_equal(decode_rc(T_EVENT, "\x80", 1), WEFT_EINVAL);
}

static void test_unknown_key(void **state)
{
	(void)state;
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	struct fv tmp[17];
	for (size_t s = 0; s < 4; s++) {
		const struct schema *sc = &schemas[s];
		memcpy(tmp, sc->fields, sc->n * sizeof(*tmp));
		tmp[sc->n] = (struct fv)INT("extra", 0);
		pack_map(&sb, tmp, sc->n + 1);
		assert_int_equal(decode_rc(sc->t, sb.data, sb.size),
				 WEFT_EINVAL);
		/* "v" inside a nested record is an unknown key there. */
		tmp[sc->n] = (struct fv)INT("v", 1);
		pack_map(&sb, tmp + 1, sc->n);
		assert_int_equal(decode_rc(sc->t, sb.data, sb.size),
				 WEFT_EINVAL);
	}
	/* A key longer than any schema key, and one claiming 4 GB. */
	memcpy(tmp, event_fields, sizeof(event_fields));
	tmp[14] = (struct fv)INT("a_key_far_too_long_for_any_map", 0);
	pack_map(&sb, tmp, 15);
	assert_int_equal(decode_rc(T_EVENT, sb.data, sb.size), WEFT_EINVAL);
	assert_int_equal(
		decode_rc(T_EVENT, "\x82\xa1v\x01\xdb\xff\xff\xff\xff", 9),
		WEFT_EINVAL);
	msgpack_sbuffer_destroy(&sb);
	/* Nested records reject "v" (decoded without version). */
	static const char nested_v[] = "\x8b\xa1v\x01\xa3run\xa0\xa7"
				       "backend\xa0\xa4node\xa0\xa4"
				       "exit\x00\xa5start\x00\xa3"
				       "end\x00\xa5procs\x91\x85\xa1v\x01"
				       "\xa3pid\x05\xa4ppid\x00\xa4"
				       "exit\x00\xa6"
				       "exited\xc3\xa5"
				       "files\x90\xa4warn\x90\xa7"
				       "dropped\x00";
	assert_int_equal(decode_rc(T_REPORT, nested_v, sizeof(nested_v) - 1),
			 WEFT_EINVAL);
}

/* Ints outside the field's range, and enum values out of range. */
static void test_int_ranges(void **state)
{
	(void)state;
	const struct {
		enum type t;
		struct fv v;
		int want;
	} cases[] = {
		{T_EVENT, INT("k", 0), WEFT_EINVAL},
		{T_EVENT, INT("k", WEFT_EV_KIND_MAX), WEFT_EINVAL},
		{T_EVENT, INT("k", WEFT_EV_KIND_MAX - 1), WEFT_OK},
		{T_EVENT, INT("k", 65536 + 1), WEFT_EINVAL},
		{T_EVENT, INT("cr", 2), WEFT_EINVAL},
		{T_EVENT, INT("cr", -2), WEFT_EINVAL},
		{T_EVENT, INT("cr", -1), WEFT_OK},
		{T_EVENT, INT("pid", (int64_t)INT32_MAX + 1), WEFT_EINVAL},
		{T_EVENT, INT("fd", (int64_t)INT32_MIN - 1), WEFT_EINVAL},
		{T_EVENT, INT("fd", INT32_MIN), WEFT_OK},
		{T_EVENT, INT("ret", INT64_MIN), WEFT_OK},
		{T_EVENT, {"ret", V_UINT, INT64_MIN}, WEFT_EINVAL}, /* 2^63 */
		{T_EVENT, INT("t", -1), WEFT_EINVAL},
		{T_EVENT, {"t", V_UINT, -1}, WEFT_OK},
		{T_EVENT,
		 RAW("st", "\x85\xa4mode\xce\xff\xff\xff\xff\xa3"
			   "dev\x02\xa3ino\x03\xa4size\x04\xa5"
			   "mtime\x05"),
		 WEFT_OK},
		{T_EVENT,
		 RAW("st", "\x85\xa4mode\xcf\x00\x00\x00\x01\x00\x00"
			   "\x00\x00\xa3"
			   "dev\x02\xa3ino\x03\xa4size\x04\xa5"
			   "mtime\x05"),
		 WEFT_EINVAL},
		{T_EVENT,
		 RAW("st", "\x85\xa4mode\x01\xa3"
			   "dev\x02\xa3ino\x03\xa4size\xff\xa5"
			   "mtime\x05"),
		 WEFT_EINVAL},
		{T_EVENT,
		 RAW("st", "\x84\xa4mode\x01\xa3"
			   "dev\x02\xa3ino\x03\xa4size\x04"),
		 WEFT_EINVAL},
		{T_PROCESS, INT("exit", -1), WEFT_EINVAL},
		{T_PROCESS, INT("exit", 256), WEFT_EINVAL},
		{T_PROCESS, INT("exit", 255), WEFT_OK},
		{T_PROCESS, INT("pid", 0), WEFT_EINVAL},
		{T_PROCESS, INT("ppid", -1), WEFT_EINVAL},
		{T_FILE, INT("size", -1), WEFT_EINVAL},
		{T_FILE, INT("size", INT64_MAX), WEFT_OK},
		{T_FILE,
		 RAW("first", "\x84\xa3"
			      "dev\x02\xa3ino\xff\xa4size"
			      "\x04\xa5mtime\xff"),
		 WEFT_EINVAL},
		{T_FILE,
		 RAW("first", "\x83\xa3"
			      "dev\x02\xa3ino\x01\xa4size"
			      "\x04"),
		 WEFT_EINVAL},
		{T_FILE,
		 RAW("first", "\x84\xa3"
			      "dev\x02\xa3ino\x01\xa4size"
			      "\x04\xa2mt\x01"),
		 WEFT_EINVAL},
		{T_FILE,
		 RAW("hash", "\xc4\x1f"
			     "0123456789abcdef0123456789abcde"),
		 WEFT_EINVAL},
		{T_FILE,
		 RAW("hash", "\xc4\x21"
			     "0123456789abcdef0123456789abcdef!"),
		 WEFT_EINVAL},
		{T_REPORT, INT("exit", 256), WEFT_EINVAL},
		{T_REPORT, INT("dropped", -1), WEFT_EINVAL},
		{T_REPORT, INT("start", INT64_MIN), WEFT_OK},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = decode_with(cases[i].t, &cases[i].v);
		if (rc != cases[i].want)
			fail_msg("case %zu (%s): got %d, want %d", i,
				 cases[i].v.key, rc, cases[i].want);
	}
}

/* Non-minimal int encodings and str instead of bin are accepted, and the
 * re-encoding is canonical. */
static void test_liberal_encodings(void **state)
{
	(void)state;
	static const char msg[] =
		"\xde\x00\x05"                              /* map16 of 5 */
		"\xa1v\xd3\x00\x00\x00\x00\x00\x00\x00\x01" /* v: int64 1 */
		"\xd9\x03pid\xcd\x00\x05" /* str8 key, uint16 5 */
		"\xa4ppid\xd0\x00"        /* int8 0 */
		"\xa4"
		"exit\xce\x00\x00\x00\x00" /* uint32 0 */
		"\xa6"
		"exited\xc2";
	weft_process_rec p;
	assert_int_equal(weft_process_rec_decode((const uint8_t *)msg,
						 sizeof(msg) - 1, &p),
			 WEFT_OK);
	assert_int_equal(p.pid, 5);
	weft_buf b;
	weft_buf_init(&b);
	assert_int_equal(weft_process_rec_encode(&p, &b), WEFT_OK);
	assert_true(b.len < sizeof(msg) - 1);
	weft_process_rec_release(&p);
	weft_buf_free(&b);

	/* Paths as fixstr, str8 and str16. */
	char path300[301];
	memset(path300, 'x', 300);
	path300[0] = '/';
	struct fv v[] = {
		{"path", V_STR, 0, "/s", 2},
		{"path", V_STR, 0, path300, 40},
		{"path", V_STR, 0, path300, 300},
	};
	for (int i = 0; i < 3; i++)
		assert_int_equal(decode_with(T_FILE, &v[i]), WEFT_OK);
}

static void test_embedded_nul(void **state)
{
	(void)state;
	const struct {
		enum type t;
		struct fv v;
	} cases[] = {
		{T_EVENT, BIN("p", "/a\0b")},
		{T_EVENT, {"p2", V_STR, 0, "\0", 1}},
		{T_EVENT, RAW("argv", "\x92\xc4\x01"
				      "a\xa2"
				      "b\0")},
		{T_PROCESS, BIN("exe", "/bin/\0")},
		{T_PROCESS, BIN("cwd", "\0/")},
		{T_FILE, BIN("path", "/a\0")},
		{T_FILE, BIN("ren", "/a\0")},
		{T_FILE, BIN("nohash", "\0")},
		{T_REPORT, BIN("node", "n\0")},
		{T_REPORT, BIN("run", "\0")},
		{T_REPORT, RAW("warn", "\x91\xc4\x01\0")},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_int_equal(decode_with(cases[i].t, &cases[i].v),
				 WEFT_EINVAL);
}

#define NAME63 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde"

/* Lengths and counts over a limit: WEFT_ETOOBIG, checked on the claim
 * before the bytes are there (so before anything is allocated); counts
 * within the limit that the input cannot hold: WEFT_ETRUNC. */
static void test_oversize_claims(void **state)
{
	(void)state;
	const struct {
		enum type t;
		struct fv v;
		int want;
	} cases[] = {
		/* path of 4097 bytes claimed, 4 GB claimed */
		{T_EVENT, RAW("p", "\xc5\x10\x01"), WEFT_ETOOBIG},
		{T_EVENT, RAW("p", "\xc6\xff\xff\xff\xff"), WEFT_ETOOBIG},
		{T_EVENT, RAW("p", "\xdb\xff\xff\xff\xff"), WEFT_ETOOBIG},
		{T_EVENT, RAW("p", "\xc5\x10\x00"), WEFT_ETRUNC},
		{T_FILE, RAW("path", "\xc5\x10\x01"), WEFT_ETOOBIG},
		{T_FILE, RAW("nohash", "\xc5\x04\x01"), WEFT_ETOOBIG},
		{T_PROCESS, RAW("exe", "\xda\x10\x01"), WEFT_ETOOBIG},
		/* argc 4097 and 4 G; 4096 claimed with no bytes */
		{T_EVENT, RAW("argv", "\xdc\x10\x01"), WEFT_ETOOBIG},
		{T_EVENT, RAW("argv", "\xdd\xff\xff\xff\xff"), WEFT_ETOOBIG},
		{T_PROCESS, RAW("argv", "\xdc\x10\x00"), WEFT_ETRUNC},
		/* one argument longer than all of argv may be */
		{T_PROCESS, RAW("argv", "\x91\xc6\x00\x02\x00\x01"),
		 WEFT_ETOOBIG},
		/* names: 64 bytes is one too many */
		{T_REPORT, RAW("run", "\xc4\x40"), WEFT_ETOOBIG},
		{T_REPORT, RAW("backend", "\xc4\x3f" NAME63), WEFT_OK},
		/* records and warnings */
		{T_REPORT, RAW("procs", "\xdd\x00\x01\x00\x01"), WEFT_ETOOBIG},
		{T_REPORT, RAW("procs", "\xdd\x00\x01\x00\x00"), WEFT_ETRUNC},
		{T_REPORT, RAW("files", "\xdd\x00\x10\x00\x01"), WEFT_ETOOBIG},
		{T_REPORT, RAW("files", "\xdd\x00\x10\x00\x00"), WEFT_ETRUNC},
		{T_REPORT, RAW("files", "\xdd\xff\xff\xff\xff"), WEFT_ETOOBIG},
		{T_REPORT, RAW("warn", "\xdc\x04\x02"), WEFT_ETOOBIG},
		{T_REPORT, RAW("warn", "\xdc\x04\x01"), WEFT_ETRUNC},
		{T_REPORT, RAW("warn", "\x91\xc5\x04\x01"), WEFT_ETOOBIG},
		/* a map claiming 4 G entries */
		{T_FILE, RAW("first", "\xdf\xff\xff\xff\xff"), WEFT_ETRUNC},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = decode_with(cases[i].t, &cases[i].v);
		if (rc != cases[i].want)
			fail_msg("case %zu (%s): got %d, want %d", i,
				 cases[i].v.key, rc, cases[i].want);
	}
	assert_int_equal(decode_rc(T_EVENT, "\xdf\xff\xff\xff\xff\xa1v\x01", 8),
			 WEFT_ETRUNC);
}

/* Whole messages over their size limit are refused before parsing. */
static void test_message_size_limits(void **state)
{
	(void)state;
	size_t n = WEFT_MAX_MESSAGE_BYTES + 1;
	uint8_t *big = calloc(1, n);
	assert_non_null(big);
	assert_int_equal(decode_rc(T_EVENT, big, WEFT_MAX_EVENT_BYTES + 1),
			 WEFT_ETOOBIG);
	assert_int_equal(decode_rc(T_REPORT, big, n), WEFT_ETOOBIG);
	assert_int_equal(decode_rc(T_PROCESS, big, n), WEFT_ETOOBIG);
	assert_int_equal(decode_rc(T_FILE, big, n), WEFT_ETOOBIG);
	free(big);
}

static void test_truncated_and_trailing_handbuilt(void **state)
{
	(void)state;
	for (int t = 0; t < 4; t++)
		assert_int_equal(decode_rc(t, "", 0), WEFT_ETRUNC);
	/* A fixint where a 9-byte int64 is announced. */
	assert_int_equal(decode_rc(T_EVENT, "\x81\xa1v\xd3\x00", 5),
			 WEFT_ETRUNC);
	/* Two messages back to back are one message and trailing bytes. */
	static const char two[] = "\x81\xa1v\x7f\x81\xa1v\x01";
	assert_int_equal(decode_rc(T_EVENT, two, 4), WEFT_EVERSION);
	weft_process_rec p = sample_process();
	weft_buf b;
	weft_buf_init(&b);
	assert_int_equal(weft_process_rec_encode(&p, &b), WEFT_OK);
	assert_int_equal(weft_process_rec_encode(&p, &b), WEFT_OK);
	assert_int_equal(decode_rc(T_PROCESS, b.data, b.len), WEFT_ETRAILING);
	weft_buf_free(&b);
}

/* A small deterministic mutation pass over valid messages (every byte
 * flipped to a few values): nothing may crash or leak, and whatever
 * decodes must re-encode. The fuzz targets do this at scale. */
static void test_mutations(void **state)
{
	(void)state;
	static const uint8_t repl[] = {0x00, 0x7f, 0xc0, 0xc1, 0xc4,
				       0xd3, 0xdb, 0xdd, 0xdf, 0xff};
	weft_report r;
	sample_report(&r);
	weft_event ev = sample_event();
	ev.argv = argv3;
	ev.argc = 3;
	weft_process_rec p = sample_process();
	weft_file_rec f = sample_file();
	const void *recs[] = {&ev, &p, &f, &r};
	for (int t = 0; t < 4; t++) {
		weft_buf b, out;
		weft_buf_init(&b);
		weft_buf_init(&out);
		assert_int_equal(encode_any(t, recs[t], &b), WEFT_OK);
		for (size_t i = 0; i < b.len; i++) {
			uint8_t orig = b.data[i];
			for (size_t j = 0; j < sizeof(repl); j++) {
				b.data[i] = repl[j];
				union any u;
				if (decode_into(t, b.data, b.len, &u) ==
				    WEFT_OK) {
					out.len = 0;
					assert_int_equal(
						encode_any(t, &u, &out),
						WEFT_OK);
					release_any(t, &u);
				}
			}
			b.data[i] = orig;
		}
		weft_buf_free(&b);
		weft_buf_free(&out);
	}
	weft_report_release(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_event_roundtrip_kinds),
		cmocka_unit_test(test_event_roundtrip_edges),
		cmocka_unit_test(test_process_roundtrip),
		cmocka_unit_test(test_process_env_refused),
		cmocka_unit_test(test_file_roundtrip),
		cmocka_unit_test(test_report_roundtrip),
		cmocka_unit_test(test_report_warning_limit),
		cmocka_unit_test(test_path_limit),
		cmocka_unit_test(test_argv_limits),
		cmocka_unit_test(test_file_paths_checked),
		cmocka_unit_test(test_file_schema1_decodes),
		cmocka_unit_test(test_name_limit),
		cmocka_unit_test(test_encode_rejects_bad_values),
		cmocka_unit_test(test_encode_appends),
		cmocka_unit_test(test_wire_format_with_msgpack_c),
		cmocka_unit_test(test_handbuilt_valid),
		cmocka_unit_test(test_missing_keys),
		cmocka_unit_test(test_key_order),
		cmocka_unit_test(test_duplicate_keys),
		cmocka_unit_test(test_wrong_types),
		cmocka_unit_test(test_version),
		cmocka_unit_test(test_unknown_key),
		cmocka_unit_test(test_int_ranges),
		cmocka_unit_test(test_liberal_encodings),
		cmocka_unit_test(test_embedded_nul),
		cmocka_unit_test(test_oversize_claims),
		cmocka_unit_test(test_message_size_limits),
		cmocka_unit_test(test_truncated_and_trailing_handbuilt),
		cmocka_unit_test(test_mutations),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
