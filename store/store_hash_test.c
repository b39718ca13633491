/*
 * store_hash_test.c - content hashing and the hash cache on real files: known
 * BLAKE2b-256 values, what the cache trusts and what makes it miss, refused
 * file kinds, and filling a report's records (reasons for missing hashes,
 * inputs that changed, no second read of unchanged inputs).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include <cmocka.h>
#include <sodium.h>

#include "store_internal.h"
#include "store_testutil.h"

/* Let the kernel's coarse clock move past the ctime of files just written:
 * the cache refuses "racily clean" files whose ctime is the current tick. */
static void settle(void)
{
	struct timespec ts = {0, 30 * 1000 * 1000};
	nanosleep(&ts, NULL);
}

static void hex_to_hash(const char *hex, uint8_t h[32])
{
	char text[WEFT_HASH_TEXT_BYTES];
	snprintf(text, sizeof(text), "blake2b-256:%s", hex);
	assert_int_equal(weft_hash_from_text(text, h), WEFT_OK);
}

static void test_known_values(void **state)
{
	struct scratch *t = *state;
	char p[400];
	uint8_t h[32], want[32];
	struct stat st;
	bool hit = true;

	/* `printf '' | b2sum -l 256` and `printf abc | b2sum -l 256`. */
	write_file(scratch_path(t, "empty", p, sizeof(p)), "", 0);
	assert_int_equal(weft_hash_file(NULL, p, h, &st, &hit), WEFT_OK);
	hex_to_hash("0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cd"
		    "f12fe3a8",
		    want);
	assert_memory_equal(h, want, 32);
	assert_false(hit);
	assert_int_equal(st.st_size, 0);

	write_file(scratch_path(t, "abc", p, sizeof(p)), "abc", 3);
	assert_int_equal(weft_hash_file(NULL, p, h, NULL, NULL), WEFT_OK);
	hex_to_hash("bddd813c634239723171ef3fee98579b94964e3bb1cb3e427262c8c0"
		    "68d52319",
		    want);
	assert_memory_equal(h, want, 32);
}

static void test_file_larger_than_buffer(void **state)
{
	struct scratch *t = *state;
	char p[400];
	size_t n = 3 * WEFT_HASH_BUFFER_BYTES + 7;
	uint8_t *data = malloc(n), h[32], want[32];
	assert_non_null(data);
	for (size_t i = 0; i < n; i++)
		data[i] = (uint8_t)(i * 2654435761u >> 13);
	write_file(scratch_path(t, "big", p, sizeof(p)), data, n);
	assert_true(sodium_init() >= 0);
	crypto_generichash(want, 32, data, n, NULL, 0);
	struct stat st;
	assert_int_equal(weft_hash_file(NULL, p, h, &st, NULL), WEFT_OK);
	assert_memory_equal(h, want, 32);
	assert_int_equal(st.st_size, (off_t)n);
	free(data);
}

static void test_cache_hit_and_miss(void **state)
{
	struct scratch *t = *state;
	weft_store *s;
	assert_int_equal(weft_store_open(t->db, &s), WEFT_OK);
	char p[400];
	uint8_t h1[32], h2[32], h3[32];
	bool hit;
	struct stat st1, st2;
	write_file(scratch_path(t, "f", p, sizeof(p)), "hello", 5);
	settle();

	assert_int_equal(weft_hash_file(s, p, h1, &st1, &hit), WEFT_OK);
	assert_false(hit);
	assert_int_equal(s->hash_reads, 1);
	assert_int_equal(weft_hash_file(s, p, h2, &st2, &hit), WEFT_OK);
	assert_true(hit);
	assert_int_equal(s->hash_reads, 1);
	assert_memory_equal(h1, h2, 32);
	assert_int_equal(st2.st_ino, st1.st_ino);
	assert_int_equal(st2.st_size, 5);

	/* Same size, other content, mtime put back: ctime still moves, so
	 * the cache must miss and the new content be hashed. */
	int fd = open(p, O_WRONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, "jello", 5, 0), 5);
	struct timespec times[2] = {st1.st_atim, st1.st_mtim};
	assert_int_equal(futimens(fd, times), 0);
	close(fd);
	settle();
	assert_int_equal(weft_hash_file(s, p, h3, NULL, &hit), WEFT_OK);
	assert_false(hit);
	assert_int_equal(s->hash_reads, 2);
	assert_memory_not_equal(h1, h3, 32);
	uint8_t want[32];
	crypto_generichash(want, 32, (const uint8_t *)"jello", 5, NULL, 0);
	assert_memory_equal(h3, want, 32);
	/* And the new state is cached in place of the old. */
	assert_int_equal(weft_hash_file(s, p, h2, NULL, &hit), WEFT_OK);
	assert_true(hit);
	assert_memory_equal(h2, h3, 32);

	/* A new file at the same path is another inode: a miss. */
	char q[400];
	write_file(scratch_path(t, "g", q, sizeof(q)), "jello", 5);
	assert_int_equal(rename(q, p), 0);
	settle();
	assert_int_equal(weft_hash_file(s, p, h2, NULL, &hit), WEFT_OK);
	assert_false(hit);
	assert_memory_equal(h2, h3, 32);
	weft_store_close(s);
}

static void test_cache_survives_reopen(void **state)
{
	struct scratch *t = *state;
	weft_store *s;
	char p[400];
	uint8_t h[32];
	bool hit;
	write_file(scratch_path(t, "f", p, sizeof(p)), "persist", 7);
	settle();
	assert_int_equal(weft_store_open(t->db, &s), WEFT_OK);
	assert_int_equal(weft_hash_file(s, p, h, NULL, &hit), WEFT_OK);
	assert_false(hit);
	weft_store_close(s);
	assert_int_equal(weft_store_open(t->db, &s), WEFT_OK);
	assert_int_equal(weft_hash_file(s, p, h, NULL, &hit), WEFT_OK);
	assert_true(hit);
	assert_int_equal(s->hash_reads, 0);
	weft_store_close(s);
}

static void test_refused_kinds(void **state)
{
	struct scratch *t = *state;
	char p[400], link[400];
	uint8_t h[32], want[32];
	struct stat st;

	errno = 0;
	assert_int_equal(weft_hash_file(NULL,
					scratch_path(t, "nope", p, sizeof(p)),
					h, NULL, NULL),
			 WEFT_EIO);
	assert_int_equal(errno, ENOENT);

	assert_int_equal(weft_hash_file(NULL, t->dir, h, &st, NULL),
			 WEFT_EINVAL);
	assert_true(S_ISDIR(st.st_mode));

	/* A FIFO with no writer: must be refused, not block forever. */
	assert_int_equal(mkfifo(scratch_path(t, "fifo", p, sizeof(p)), 0600),
			 0);
	assert_int_equal(weft_hash_file(NULL, p, h, NULL, NULL), WEFT_EINVAL);
	assert_int_equal(weft_hash_file(NULL, "/dev/null", h, NULL, NULL),
			 WEFT_EINVAL);

	/* Symlinks are followed: the record names what was opened. */
	write_file(scratch_path(t, "target", p, sizeof(p)), "abc", 3);
	assert_int_equal(
		symlink(p, scratch_path(t, "link", link, sizeof(link))), 0);
	assert_int_equal(weft_hash_file(NULL, link, h, &st, NULL), WEFT_OK);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(weft_hash_file(NULL, p, want, NULL, NULL), WEFT_OK);
	assert_memory_equal(h, want, 32);
	/* A dangling symlink is a file that is gone. */
	assert_int_equal(unlink(p), 0);
	errno = 0;
	assert_int_equal(weft_hash_file(NULL, link, h, NULL, NULL), WEFT_EIO);
	assert_int_equal(errno, ENOENT);
}

static void set_first_stat(weft_file_rec *f, const char *path)
{
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	f->has_first_stat = true;
	f->first_dev = st.st_dev;
	f->first_ino = st.st_ino;
	f->first_size = st.st_size;
	f->first_mtime_ns =
		(int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
}

static size_t count_warnings(const weft_report *r, const char *needle)
{
	size_t n = 0;
	for (size_t i = 0; i < r->nwarnings; i++)
		n += strstr(r->warnings[i], needle) != NULL;
	return n;
}

static void test_report_hash_files(void **state)
{
	struct scratch *t = *state;
	weft_store *s;
	assert_int_equal(weft_store_open(t->db, &s), WEFT_OK);
	char in[400], out[400], gone[400], changed[400], rw[400], tmp[400],
		del[400], idle[400];
	write_file(scratch_path(t, "in", in, sizeof(in)), "input", 5);
	write_file(scratch_path(t, "out", out, sizeof(out)), "output!", 7);
	write_file(scratch_path(t, "changed", changed, sizeof(changed)), "v1",
		   2);
	write_file(scratch_path(t, "rw", rw, sizeof(rw)), "old", 3);
	scratch_path(t, "gone", gone, sizeof(gone));
	scratch_path(t, "tmp", tmp, sizeof(tmp));
	scratch_path(t, "del", del, sizeof(del));
	write_file(scratch_path(t, "idle", idle, sizeof(idle)), "x", 1);

	weft_report r;
	weft_report_init(&r);
	strcpy(r.run_id, "h");
	weft_file_rec *f = add_file(&r, in, true, false);
	set_first_stat(f, in);
	f->hash_missing = xstrdup("stale reason"); /* replaced by a hash */
	add_file(&r, out, false, true);
	add_file(&r, gone, true, false);
	f = add_file(&r, t->dir, true, false);
	f = add_file(&r, changed, true, false);
	set_first_stat(f, changed);
	f = add_file(&r, rw, true, true);
	set_first_stat(f, rw);
	f = add_file(&r, tmp, false, true);
	f->renamed_to = xstrdup(out);
	f = add_file(&r, del, true, true);
	f->deleted = true;
	add_file(&r, idle, false, false);

	/* Someone else rewrites an input; the run rewrites its own. */
	write_file(changed, "v2 longer", 9);
	write_file(rw, "new content", 11);
	settle();

	assert_int_equal(weft_report_hash_files(s, &r), WEFT_OK);
	uint8_t want[32];
	crypto_generichash(want, 32, (const uint8_t *)"input", 5, NULL, 0);
	f = &r.files[0];
	assert_true(f->has_hash);
	assert_memory_equal(f->hash, want, 32);
	assert_true(f->has_size);
	assert_int_equal(f->size, 5);
	assert_null(f->hash_missing);
	f = &r.files[1];
	assert_true(f->has_hash);
	assert_int_equal(f->size, 7);
	f = &r.files[2];
	assert_false(f->has_hash);
	assert_false(f->has_size);
	assert_string_equal(f->hash_missing, "gone before hashing");
	f = &r.files[3];
	assert_false(f->has_hash);
	assert_string_equal(f->hash_missing, "not a regular file");
	f = &r.files[4];
	assert_true(f->has_hash);
	assert_int_equal(f->size, 9);
	f = &r.files[5];
	assert_true(f->has_hash);
	f = &r.files[6];
	assert_false(f->has_hash);
	assert_non_null(f->hash_missing);
	assert_true(strncmp(f->hash_missing, "renamed to ", 11) == 0);
	assert_string_equal(f->hash_missing + 11, out);
	f = &r.files[7];
	assert_false(f->has_hash);
	assert_string_equal(f->hash_missing, "deleted by the run");
	f = &r.files[8];
	assert_false(f->has_hash);
	assert_null(f->hash_missing);

	/* Exactly one warning: the input someone else changed. */
	assert_int_equal(r.nwarnings, 1);
	assert_int_equal(count_warnings(&r, "input changed during the run: "),
			 1);
	assert_non_null(strstr(r.warnings[0], changed));

	/* Second pass over unchanged files: nothing is read, same result,
	 * and the changed input is not reported twice. */
	uint64_t reads = s->hash_reads;
	assert_int_equal(reads, 4);
	uint8_t first[32];
	memcpy(first, r.files[0].hash, 32);
	assert_int_equal(weft_report_hash_files(s, &r), WEFT_OK);
	assert_int_equal(s->hash_reads, reads);
	assert_memory_equal(r.files[0].hash, first, 32);
	assert_true(r.files[1].has_hash);
	assert_int_equal(r.nwarnings, 1);

	/* Without a cache it still works, reading everything. */
	weft_report_release(&r);
	weft_report_init(&r);
	add_file(&r, in, true, false);
	assert_int_equal(weft_report_hash_files(NULL, &r), WEFT_OK);
	assert_true(r.files[0].has_hash);
	assert_memory_equal(r.files[0].hash, first, 32);
	weft_report_release(&r);
	weft_store_close(s);
}

/* The reason for a file this process may not read. */
static int unreadable_reason_ok(const char *path)
{
	weft_report r;
	weft_report_init(&r);
	add_file(&r, path, true, false);
	int ok = weft_report_hash_files(NULL, &r) == WEFT_OK &&
		 !r.files[0].has_hash && r.files[0].hash_missing &&
		 strncmp(r.files[0].hash_missing, "permission denied: ", 19) ==
			 0;
	weft_report_release(&r);
	return ok;
}

static void test_permission_denied(void **state)
{
	struct scratch *t = *state;
	char p[400];
	write_file(scratch_path(t, "secret", p, sizeof(p)), "s", 1);
	assert_int_equal(chmod(p, 0), 0);
	if (geteuid() != 0) {
		assert_true(unreadable_reason_ok(p));
		return;
	}
	/* Root reads everything: try as nobody in a child, for whom the
	 * scratch directory (mode 0700) is closed. */
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		if (setgid(65534) != 0 || setuid(65534) != 0)
			_exit(77);
		_exit(unreadable_reason_ok(p) ? 0 : 1);
	}
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	if (WEXITSTATUS(status) == 77) {
		print_message("skipped: cannot drop root privileges\n");
		skip();
	}
	assert_int_equal(WEXITSTATUS(status), 0);
}

/* More files than one cache batch: every one is cached, none read twice. */
static void test_many_files_cached(void **state)
{
	struct scratch *t = *state;
	weft_store *s;
	assert_int_equal(weft_store_open(t->db, &s), WEFT_OK);
	const size_t n = WEFT_HASH_CACHE_BATCH + 100;
	weft_report r;
	weft_report_init(&r);
	char p[400], name[32];
	for (size_t i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "f%zu", i);
		scratch_path(t, name, p, sizeof(p));
		write_file(p, name, strlen(name));
		add_file(&r, p, true, false);
	}
	settle();
	assert_int_equal(weft_report_hash_files(s, &r), WEFT_OK);
	assert_int_equal(s->hash_reads, n);
	assert_int_equal(weft_report_hash_files(s, &r), WEFT_OK);
	assert_int_equal(s->hash_reads, n);
	for (size_t i = 0; i < n; i++)
		assert_true(r.files[i].has_hash);
	weft_report_release(&r);
	weft_store_close(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
			test_known_values, scratch_setup, scratch_teardown),
		cmocka_unit_test_setup_teardown(test_file_larger_than_buffer,
						scratch_setup,
						scratch_teardown),
		cmocka_unit_test_setup_teardown(test_cache_hit_and_miss,
						scratch_setup,
						scratch_teardown),
		cmocka_unit_test_setup_teardown(test_cache_survives_reopen,
						scratch_setup,
						scratch_teardown),
		cmocka_unit_test_setup_teardown(
			test_refused_kinds, scratch_setup, scratch_teardown),
		cmocka_unit_test_setup_teardown(test_report_hash_files,
						scratch_setup,
						scratch_teardown),
		cmocka_unit_test_setup_teardown(test_permission_denied,
						scratch_setup,
						scratch_teardown),
		cmocka_unit_test_setup_teardown(test_many_files_cached,
						scratch_setup,
						scratch_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
