/*
 * wrap_spool_test.c - the spool on a real directory: fragments come back
 * in seq order and byte for byte, a locked writer is left alone, a
 * corrupt or truncated file is moved aside (never trusted, never fatal),
 * rejected fragments keep their reason, and an emptied writer leaves no
 * trace.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <fcntl.h>
#include <ftw.h>

#include <cmocka.h>

#include <weft/wrap.h>

static int rm_one(const char *path, const struct stat *st, int flag,
		  struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int setup(void **state)
{
	char *dir = malloc(256);
	snprintf(dir, 256, "%s/weft-spool-test-XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!mkdtemp(dir))
		return -1;
	strcat(dir, "/spool"); /* created by the first writer */
	*state = dir;
	return 0;
}

static int teardown(void **state)
{
	char *dir = *state;
	*strrchr(dir, '/') = '\0';
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(dir);
	return 0;
}

static void make_state(weft_spool_state *s, char hexdigit)
{
	static uint8_t enrol[] = {0x81, 0xa1, 'v', 0x01, 0x00, 0xff};
	memset(s, 0, sizeof(*s));
	strcpy(s->coordinator, "tcp://127.0.0.1:7700");
	strcpy(s->job, "0b5e3c9a-1d2f-4e6a-8b7c-9d0e1f2a3b4c");
	memset(s->writer, hexdigit, 64);
	s->enrol = enrol;
	s->enrol_len = sizeof(enrol);
}

/* A new writer of spool, its state make_state's of hexdigit. */
static weft_spool_writer *writer_create(const char *spool, weft_spool_state *st,
					char hexdigit)
{
	make_state(st, hexdigit);
	weft_spool_writer *w;
	assert_int_equal(weft_spool_writer_create(spool, st, &w), WEFT_OK);
	return w;
}

static void path_of(char *out, const char *spool, const char *wname,
		    const char *file)
{
	snprintf(out, 512, "%s/%s/%s", spool, wname, file);
}

static void test_put_list_get_delete(void **state)
{
	const char *spool = *state;
	weft_spool_state st;
	weft_spool_writer *w = writer_create(spool, &st, 'a');
	const char *msgs[] = {"zero", "one", "two-with-\0-nul"};
	uint64_t order[] = {2, 0, 10}; /* spooled out of order */
	for (int i = 0; i < 3; i++)
		assert_int_equal(weft_spool_put(w, order[i],
						(const uint8_t *)msgs[i],
						strlen(msgs[i]) + 1),
				 WEFT_OK);
	uint64_t *seqs;
	size_t n;
	assert_int_equal(weft_spool_list(w, &seqs, &n), WEFT_OK);
	assert_int_equal(n, 3);
	assert_int_equal(seqs[0], 0);
	assert_int_equal(seqs[1], 2);
	assert_int_equal(seqs[2], 10);
	free(seqs);
	weft_buf b;
	weft_buf_init(&b);
	char err[512];
	assert_int_equal(weft_spool_get(w, 0, &b, err, sizeof(err)), WEFT_OK);
	assert_int_equal(b.len, strlen("one") + 1);
	assert_memory_equal(b.data, "one", b.len);
	weft_buf_free(&b);
	assert_int_equal(weft_spool_delete(w, 0), WEFT_OK);
	weft_buf_init(&b);
	assert_int_equal(weft_spool_get(w, 0, &b, err, sizeof(err)),
			 WEFT_ENOTFOUND);
	weft_buf_free(&b);

	/* While we hold it, nobody else may deliver it. */
	char **names;
	assert_int_equal(weft_spool_writers(spool, &names, &n), WEFT_OK);
	assert_int_equal(n, 1);
	weft_spool_writer *other;
	bool busy;
	assert_int_equal(weft_spool_writer_open(spool, names[0], &other, &busy),
			 WEFT_ENOTFOUND);
	assert_true(busy);
	weft_spool_writer_close(w, true); /* not empty: stays */
	assert_int_equal(weft_spool_writer_open(spool, names[0], &other, &busy),
			 WEFT_OK);
	const weft_spool_state *got = weft_spool_writer_state(other);
	assert_string_equal(got->coordinator, st.coordinator);
	assert_string_equal(got->job, st.job);
	assert_int_equal(got->enrol_len, st.enrol_len);
	assert_memory_equal(got->enrol, st.enrol, st.enrol_len);
	assert_int_equal(weft_spool_list(other, &seqs, &n), WEFT_OK);
	assert_int_equal(n, 2);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(weft_spool_delete(other, seqs[i]), WEFT_OK);
	free(seqs);
	char dir[512];
	snprintf(dir, sizeof(dir), "%s", weft_spool_writer_dir(other));
	weft_spool_writer_close(other, true);
	struct stat sb;
	assert_int_not_equal(stat(dir, &sb), 0); /* gone */
	weft_spool_names_free(names, 1);
}

static void corrupt_file(const char *path, long off, int truncate_to)
{
	int fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	if (truncate_to >= 0) {
		assert_int_equal(ftruncate(fd, truncate_to), 0);
	} else {
		char c;
		assert_int_equal(pread(fd, &c, 1, off), 1);
		c ^= 0x20;
		assert_int_equal(pwrite(fd, &c, 1, off), 1);
	}
	close(fd);
}

static void test_corrupt_fragment_moved_aside(void **state)
{
	const char *spool = *state;
	weft_spool_state st;
	weft_spool_writer *w = writer_create(spool, &st, 'b');
	for (uint64_t s = 0; s < 3; s++)
		assert_int_equal(
			weft_spool_put(w, s, (const uint8_t *)"payload", 7),
			WEFT_OK);
	char p[512], wname[80];
	snprintf(wname, sizeof(wname), "w-%s", st.writer);
	path_of(p, spool, wname, "f-00000000000000000000");
	corrupt_file(p, WEFT_SPOOL_HEADER_BYTES + 2, -1); /* a flipped bit */
	path_of(p, spool, wname, "f-00000000000000000001");
	corrupt_file(p, 0, 20); /* truncated inside the header */
	weft_buf b;
	weft_buf_init(&b);
	char err[512] = "";
	assert_int_equal(weft_spool_get(w, 0, &b, err, sizeof(err)),
			 WEFT_EINVAL);
	assert_non_null(strstr(err, "f-00000000000000000000"));
	assert_non_null(strstr(err, "corrupt"));
	assert_int_equal(weft_spool_get(w, 1, &b, err, sizeof(err)),
			 WEFT_EINVAL);
	assert_int_equal(b.len, 0);
	assert_int_equal(weft_spool_get(w, 2, &b, err, sizeof(err)), WEFT_OK);
	weft_buf_free(&b);
	uint64_t *seqs;
	size_t n;
	assert_int_equal(weft_spool_list(w, &seqs, &n), WEFT_OK);
	assert_int_equal(n, 1); /* the two bad ones are out of the way */
	free(seqs);
	snprintf(p, sizeof(p), "%s/corrupt/%s.f-00000000000000000000", spool,
		 wname);
	struct stat sb;
	assert_int_equal(stat(p, &sb), 0);
	/* Rejected: moved with its reason. */
	assert_int_equal(weft_spool_reject(w, 2, "bad signature"), WEFT_OK);
	snprintf(p, sizeof(p), "%s/rejected/%s.f-00000000000000000002.reason",
		 spool, wname);
	FILE *f = fopen(p, "r");
	assert_non_null(f);
	char line[64] = "";
	assert_non_null(fgets(line, sizeof(line), f));
	fclose(f);
	assert_string_equal(line, "bad signature\n");
	weft_spool_writer_close(w, true);
}

static void test_corrupt_state_moved_aside(void **state)
{
	const char *spool = *state;
	weft_spool_state st;
	weft_spool_writer *w = writer_create(spool, &st, 'c');
	assert_int_equal(weft_spool_put(w, 0, (const uint8_t *)"x", 1),
			 WEFT_OK);
	weft_spool_writer_close(w, true);
	char p[512], wname[80];
	snprintf(wname, sizeof(wname), "w-%s", st.writer);
	path_of(p, spool, wname, "state");
	corrupt_file(p, WEFT_SPOOL_HEADER_BYTES + 5, -1);
	/* A temporary left by a crash is cleaned up too. */
	path_of(p, spool, wname, ".tmp-f-00000000000000000001");
	fclose(fopen(p, "w"));
	bool busy;
	assert_int_equal(weft_spool_writer_open(spool, wname, &w, &busy),
			 WEFT_EINVAL);
	assert_false(busy);
	snprintf(p, sizeof(p), "%s/corrupt/%s/state", spool, wname);
	struct stat sb;
	assert_int_equal(stat(p, &sb), 0);
	char **names;
	size_t n;
	assert_int_equal(weft_spool_writers(spool, &names, &n), WEFT_OK);
	assert_int_equal(n, 0);
	weft_spool_names_free(names, n);
}

static void test_writers_oldest_first(void **state)
{
	const char *spool = *state;
	weft_spool_state st;
	weft_spool_writer *w;
	const char digits[] = "fed";
	for (int i = 0; i < 3; i++) {
		w = writer_create(spool, &st, digits[i]);
		assert_int_equal(weft_spool_put(w, 0, (const uint8_t *)"x", 1),
				 WEFT_OK);
		weft_spool_writer_close(w, true);
		usleep(20000); /* distinct mtimes */
	}
	char **names;
	size_t n;
	assert_int_equal(weft_spool_writers(spool, &names, &n), WEFT_OK);
	assert_int_equal(n, 3);
	for (int i = 0; i < 3; i++)
		assert_int_equal(names[i][2], digits[i]);
	weft_spool_names_free(names, n);
	/* A missing spool is an empty one. */
	assert_int_equal(weft_spool_writers("/nonexistent/spool", &names, &n),
			 WEFT_OK);
	assert_int_equal(n, 0);
}

static void test_container_and_state_codecs(void **state)
{
	(void)state;
	weft_buf b;
	weft_buf_init(&b);
	assert_int_equal(weft_spool_encode(WEFT_SPOOL_FRAGMENT,
					   (const uint8_t *)"abc", 3, &b),
			 WEFT_OK);
	const uint8_t *p;
	size_t n;
	assert_int_equal(
		weft_spool_decode(b.data, b.len, WEFT_SPOOL_FRAGMENT, &p, &n),
		WEFT_OK);
	assert_int_equal(n, 3);
	assert_int_equal(
		weft_spool_decode(b.data, b.len, WEFT_SPOOL_STATE, &p, &n),
		WEFT_EINVAL);
	assert_int_equal(weft_spool_decode(b.data, b.len - 1,
					   WEFT_SPOOL_FRAGMENT, &p, &n),
			 WEFT_ETRUNC);
	weft_buf_append(&b, "x", 1);
	assert_int_equal(
		weft_spool_decode(b.data, b.len, WEFT_SPOOL_FRAGMENT, &p, &n),
		WEFT_ETRAILING);
	weft_buf_free(&b);

	weft_spool_state s, back;
	make_state(&s, '0');
	weft_buf_init(&b);
	assert_int_equal(weft_spool_state_encode(&s, &b), WEFT_OK);
	assert_int_equal(weft_spool_state_decode(b.data, b.len, &back),
			 WEFT_OK);
	assert_string_equal(back.writer, s.writer);
	weft_spool_state_release(&back);
	/* Strict: an unknown line, a bad URL, odd hex all refused. */
	const char *bad[] = {
		"weft-spool-state 2\n",
		"weft-spool-state 1\ncoordinator http://x\njob "
		"0b5e3c9a-1d2f-4e6a-8b7c-9d0e1f2a3b4c\nwriter "
		"00000000000000000000000000000000000000000000000000000000000000"
		"00"
		"\nenrol 00\n",
		"weft-spool-state 1\ncoordinator tcp://x:1\njob "
		"0b5e3c9a-1d2f-4e6a-8b7c-9d0e1f2a3b4c\nwriter "
		"00000000000000000000000000000000000000000000000000000000000000"
		"00"
		"\nenrol 0\n",
		"weft-spool-state 1\ncoordinator tcp://x:1\njob "
		"0b5e3c9a-1d2f-4e6a-8b7c-9d0e1f2a3b4c\nwriter "
		"00000000000000000000000000000000000000000000000000000000000000"
		"00"
		"\nenrol 00\nextra 1\n",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_not_equal(
			weft_spool_state_decode((const uint8_t *)bad[i],
						strlen(bad[i]), &back),
			WEFT_OK);
	weft_buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_put_list_get_delete, setup,
						teardown),
		cmocka_unit_test_setup_teardown(
			test_corrupt_fragment_moved_aside, setup, teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_state_moved_aside,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_writers_oldest_first,
						setup, teardown),
		cmocka_unit_test(test_container_and_state_codecs),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
