/*
 * store_prehash_test.c - hashing while the run runs (prehash.c) on real
 * files: what it hashed is taken at the end without a read and is the
 * content's true hash; a file that changed after it was hashed is read at
 * the end, and the version the run read is still known; a file that is
 * not the one the run opened is never taken for it; outputs at their
 * close; what the hash cache knows is not read; one offer per identity;
 * what is still queued when the run ends is hashed by finishing.
 */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>

#include <cmocka.h>
#include <sodium.h>

#include "../schema/test_main.h"
#include "store_internal.h"
#include "store_testutil.h"

static void settle(void)
{
	struct timespec ts = {0, 30 * 1000 * 1000};
	nanosleep(&ts, NULL);
}

static int64_t ns(struct timespec ts)
{
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* The open of path for reading as a tracer reports it: with its stat. */
static weft_event open_event(const char *path)
{
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	weft_event ev = {0};
	ev.kind = WEFT_EV_OPEN;
	ev.flags = O_RDONLY;
	ev.ret = 3;
	ev.has_stat = true;
	ev.st_mode = st.st_mode;
	ev.st_dev = st.st_dev;
	ev.st_ino = st.st_ino;
	ev.st_size = st.st_size;
	ev.st_mtime_ns = ns(st.st_mtim);
	ev.st_ctime_ns = ns(st.st_ctim);
	ev.path = path;
	return ev;
}

/* Wait (up to a minute: a loaded machine) until p has dealt with n
 * files, then stop it. Nothing here depends on how long that takes. */
static void finish(weft_prehash *p, uint64_t n)
{
	for (int i = 0; i < 6000; i++) {
		weft_prehash_stats s = weft_prehash_get_stats(p);
		if (s.hashed + s.known + s.missed >= n)
			break;
		struct timespec ts = {0, 10 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	weft_prehash_stop(p);
}

/* p offered, hashed, found known and missed that many files. */
static void assert_counts(const weft_prehash *p, uint64_t offered,
			  uint64_t hashed, uint64_t known, uint64_t missed)
{
	weft_prehash_stats st = weft_prehash_get_stats(p);
	assert_int_equal(st.offered, offered);
	assert_int_equal(st.hashed, hashed);
	assert_int_equal(st.known, known);
	assert_int_equal(st.missed, missed);
}

/* got is the BLAKE2b-256 of content. */
static void assert_hash(const uint8_t got[32], const char *content)
{
	uint8_t h[32];
	crypto_generichash(h, 32, (const uint8_t *)content, strlen(content),
			   NULL, 0);
	assert_memory_equal(got, h, 32);
}

/* path's record in r, read (and written), with ev its first open. */
static void add_input(weft_report *r, const char *path, bool written,
		      const weft_event *ev)
{
	weft_file_rec *f = add_file(r, path, true, written);
	f->first_dev = ev->st_dev;
	f->first_ino = ev->st_ino;
	f->has_first_stat = ev->has_stat;
	assert_true(f->has_first_stat);
	f->first_size = ev->st_size;
	f->first_mtime_ns = ev->st_mtime_ns;
	f->first_ctime_ns = ev->st_ctime_ns;
}

/* After the run: r hashed through a store at t->db that takes p's
 * hashes; the files read then. */
static uint64_t hash_at_end(const struct scratch *t, weft_prehash *p,
			    weft_report *r)
{
	weft_store *s;
	assert_int_equal(weft_store_open(t->db, &s), WEFT_OK);
	weft_store_use_prehash(s, p);
	assert_int_equal(weft_report_hash_files(s, r), WEFT_OK);
	uint64_t reads = s->hash_reads;
	weft_store_close(s);
	return reads;
}

static void test_inputs_taken_unread(void **state)
{
	struct scratch *t = *state;
	char a[400], b[400];
	write_file(scratch_path(t, "a", a, sizeof(a)), "alpha", 5);
	write_file(scratch_path(t, "b", b, sizeof(b)), "bravo!", 6);
	settle();
	weft_prehash *p = weft_prehash_start(NULL, -1);
	assert_non_null(p);
	weft_event ea = open_event(a), eb = open_event(b);
	weft_prehash_offer(p, a, &ea);
	weft_prehash_offer(p, b, &eb);
	finish(p, 2);
	assert_counts(p, 2, 2, 0, 0);
	assert_int_equal(weft_prehash_get_stats(p).bytes, 11);

	weft_report r;
	weft_report_init(&r);
	add_input(&r, a, false, &ea);
	add_input(&r, b, false, &eb);
	assert_int_equal(hash_at_end(t, p, &r), 0); /* nothing read then */
	assert_true(r.files[0].has_hash);
	assert_hash(r.files[0].hash, "alpha");
	assert_true(r.files[0].has_read_hash);
	assert_hash(r.files[0].read_hash, "alpha");
	assert_hash(r.files[1].hash, "bravo!");
	weft_report_release(&r);

	/* And the store's cache learned them, as from a read. */
	weft_prehash_free(p);
	weft_store *s;
	assert_int_equal(weft_store_open(t->db, &s), WEFT_OK);
	uint8_t h[32];
	bool hit = false;
	assert_int_equal(weft_hash_file(s, a, h, NULL, &hit), WEFT_OK);
	assert_true(hit);
	weft_store_close(s);
}

struct progress_seen {
	int calls;
	uint64_t last_total;
};

static void on_progress(void *arg, uint64_t done, uint64_t total,
			uint64_t bytes)
{
	struct progress_seen *ps = arg;
	(void)bytes;
	assert_true(done <= total);
	ps->calls++;
	ps->last_total = total;
}

/* The run ends with files still queued: finishing hashes every one (none
 * dropped, nothing read at the end), each with its true hash. */
static void test_finish_hashes_the_queue(void **state)
{
	struct scratch *t = *state;
	enum { N = 300 };
	static char paths[N][400];
	weft_event ev[N];
	for (int i = 0; i < N; i++) {
		char name[32], text[32];
		snprintf(name, sizeof(name), "q%d", i);
		snprintf(text, sizeof(text), "queued file %d", i);
		write_file(scratch_path(t, name, paths[i], sizeof(paths[i])),
			   text, strlen(text));
	}
	settle();
	for (int i = 0; i < N; i++)
		ev[i] = open_event(paths[i]);
	weft_prehash *p = weft_prehash_start(NULL, -1);
	assert_non_null(p);
	for (int i = 0; i < N; i++)
		weft_prehash_offer(p, paths[i], &ev[i]);
	struct progress_seen ps = {0};
	weft_prehash_finish(p, on_progress, &ps);
	assert_counts(p, N, N, 0, 0);
	assert_int_equal(weft_prehash_get_stats(p).dropped, 0);
	if (ps.calls)
		assert_true(ps.last_total <= N);

	weft_report r;
	weft_report_init(&r);
	for (int i = 0; i < N; i++)
		add_input(&r, paths[i], false, &ev[i]);
	assert_int_equal(hash_at_end(t, p, &r), 0); /* nothing read then */
	for (int i = 0; i < N; i += 37) {
		char text[32];
		snprintf(text, sizeof(text), "queued file %d", i);
		assert_true(r.files[i].has_hash);
		assert_hash(r.files[i].hash, text);
	}
	weft_report_release(&r);
	weft_prehash_free(p);
}

/* A file of n MiB at path, made by the run. */
static void write_big(const char *path, int mib)
{
	static char block[1 << 20];
	memset(block, 'b', sizeof(block));
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	for (int i = 0; i < mib; i++)
		assert_int_equal(fwrite(block, 1, sizeof(block), f),
				 sizeof(block));
	assert_int_equal(fclose(f), 0);
}

/* The run ends while the thread reads a large output: that one is
 * finished; a few small inputs still queued are left to the end (whose
 * store connection is open), unless an output is among them. */
static void test_few_inputs_left_to_the_end(void **state)
{
	struct scratch *t = *state;
	char big[400], in[3][400], out[400];
	write_big(scratch_path(t, "big", big, sizeof(big)), 64);
	for (int i = 0; i < 3; i++) {
		char name[8] = {'i', (char)('0' + i), 0};
		write_file(scratch_path(t, name, in[i], sizeof(in[i])), name,
			   2);
	}
	write_file(scratch_path(t, "o", out, sizeof(out)), "out", 3);
	settle();
	weft_event ev[3];
	for (int i = 0; i < 3; i++)
		ev[i] = open_event(in[i]);
	for (int with_output = 0; with_output < 2; with_output++) {
		weft_prehash *p = weft_prehash_start(NULL, -1);
		assert_non_null(p);
		weft_prehash_offer(p, big, NULL);
		/* Taken: the thread reads 64 MiB from now on. */
		for (int i = 0; i < 6000 && store_prehash_queued(p); i++)
			settle();
		assert_int_equal(store_prehash_queued(p), 0);
		for (int i = 0; i < 3; i++)
			weft_prehash_offer(p, in[i], &ev[i]);
		if (with_output)
			weft_prehash_offer(p, out, NULL);
		weft_prehash_finish(p, NULL, NULL);
		weft_prehash_stats s = weft_prehash_get_stats(p);
		assert_int_equal(s.dropped, with_output ? 0 : 3);
		assert_int_equal(s.hashed, with_output ? 5 : 1);

		weft_report r;
		weft_report_init(&r);
		for (int i = 0; i < 3; i++)
			add_input(&r, in[i], false, &ev[i]);
		add_file(&r, big, false, true);
		assert_int_equal(hash_at_end(t, p, &r), with_output ? 0 : 3);
		for (int i = 0; i < 3; i++) {
			char name[8] = {'i', (char)('0' + i), 0};
			assert_hash(r.files[i].hash, name);
		}
		assert_true(r.files[3].has_hash);
		weft_report_release(&r);
		weft_prehash_free(p);
	}
}

static void test_changed_after_hashing(void **state)
{
	struct scratch *t = *state;
	char c[400];
	write_file(scratch_path(t, "c", c, sizeof(c)), "first", 5);
	settle();
	weft_prehash *p = weft_prehash_start(NULL, -1);
	weft_event ec = open_event(c);
	weft_prehash_offer(p, c, &ec);
	finish(p, 1);
	assert_counts(p, 1, 1, 0, 0);
	/* The run rewrites what it read. */
	write_file(c, "second version", 14);
	settle();

	weft_report r;
	weft_report_init(&r);
	add_input(&r, c, true, &ec);
	assert_int_equal(hash_at_end(t, p, &r), 1); /* what is there now */
	assert_hash(r.files[0].hash, "second version");
	/* What the run read: the version hashed while it ran. */
	assert_true(r.files[0].has_read_hash);
	assert_hash(r.files[0].read_hash, "first");
	weft_report_release(&r);
	weft_prehash_free(p);
}

static void test_other_file_never_taken(void **state)
{
	weft_prehash *p = weft_prehash_start(NULL, -1);
	struct scratch *t = *state;
	char x[400], y[400];
	write_file(scratch_path(t, "x", x, sizeof(x)), "the one opened", 14);
	write_file(scratch_path(t, "y", y, sizeof(y)), "another file!!", 14);
	settle();
	/* The run opened x; by the time the thread looks, y is at that
	 * path. */
	weft_event ex = open_event(x);
	assert_int_equal(rename(y, x), 0);
	weft_prehash_offer(p, x, &ex);
	finish(p, 1);
	assert_counts(p, 1, 0, 0, 1);

	weft_report r;
	weft_report_init(&r);
	add_input(&r, x, false, &ex);
	assert_int_equal(hash_at_end(t, p, &r), 1);
	assert_hash(r.files[0].hash, "another file!!");
	/* What the run read is gone: unknown, not y's content. */
	assert_false(r.files[0].has_read_hash);
	assert_non_null(r.files[0].read_hash_missing);
	weft_report_release(&r);
	weft_prehash_free(p);
}

static void test_outputs_at_close(void **state)
{
	weft_prehash *p = weft_prehash_start(NULL, -1);
	struct scratch *t = *state;
	char o[400];
	write_file(scratch_path(t, "o", o, sizeof(o)), "made by the run", 15);
	weft_prehash_offer(p, o, NULL);
	weft_prehash_offer(p, o, NULL); /* closed twice: read once */
	finish(p, 2);
	assert_counts(p, 2, 1, 1, 0);

	weft_report r;
	weft_report_init(&r);
	add_file(&r, o, false, true);
	assert_int_equal(hash_at_end(t, p, &r), 0);
	assert_hash(r.files[0].hash, "made by the run");
	assert_true(r.files[0].has_final_stat);
	weft_prehash_free(p);
	weft_report_release(&r);
}

static void test_cached_not_read_and_offered_once(void **state)
{
	struct scratch *t = *state;
	char k[400];
	write_file(scratch_path(t, "k", k, sizeof(k)), "known", 5);
	settle();
	weft_store *s;
	assert_int_equal(weft_store_open(t->db, &s), WEFT_OK);
	uint8_t h[32];
	assert_int_equal(weft_hash_file(s, k, h, NULL, NULL), WEFT_OK);
	weft_store_close(s);

	weft_prehash *p = weft_prehash_start(t->db, -1);
	weft_event ek = open_event(k);
	for (int i = 0; i < 100000; i++) /* a loop opening one file */
		weft_prehash_offer(p, k, &ek);
	finish(p, 1);
	assert_counts(p, 1, 0, 1, 0);

	/* Still that file at the end: the cache's hash, nothing read. */
	weft_report r;
	weft_report_init(&r);
	add_input(&r, k, false, &ek);
	assert_int_equal(hash_at_end(t, p, &r), 0);
	assert_hash(r.files[0].hash, "known");
	assert_true(r.files[0].has_read_hash);
	assert_hash(r.files[0].read_hash, "known");
	weft_report_release(&r);
	weft_prehash_free(p);
}

static void test_off(void **state)
{
	(void)state;
	setenv("WEFT_PREHASH", "off", 1);
	assert_null(weft_prehash_start(NULL, -1));
	unsetenv("WEFT_PREHASH");
	weft_prehash_offer(NULL, "/x", NULL); /* NULL: nothing */
	weft_prehash_stop(NULL);
	weft_prehash_free(NULL);
}

WEFT_TEST_MAIN(
	cmocka_unit_test_setup_teardown(test_inputs_taken_unread, scratch_setup,
					scratch_teardown),
	cmocka_unit_test_setup_teardown(test_finish_hashes_the_queue,
					scratch_setup, scratch_teardown),
	cmocka_unit_test_setup_teardown(test_few_inputs_left_to_the_end,
					scratch_setup, scratch_teardown),
	cmocka_unit_test_setup_teardown(test_changed_after_hashing,
					scratch_setup, scratch_teardown),
	cmocka_unit_test_setup_teardown(test_other_file_never_taken,
					scratch_setup, scratch_teardown),
	cmocka_unit_test_setup_teardown(test_outputs_at_close, scratch_setup,
					scratch_teardown),
	cmocka_unit_test_setup_teardown(test_cached_not_read_and_offered_once,
					scratch_setup, scratch_teardown),
	cmocka_unit_test(test_off))
