/*
 * preload_test.c - the collector's batch decoder (decode.c) against
 * batches built here byte by byte: what a valid batch yields, and that
 * every kind of damage (magic, version, lengths, alignment, unterminated
 * or oversized strings, unknown kinds, non-zero padding) rejects the whole
 * batch before a single record is handed on. Also the library lookup
 * override (libpath.c).
 */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "preload_internal.h"

/* ---- building batches ---- */

typedef struct builder {
	_Alignas(8) uint8_t buf[PL_BATCH_MAX + 64];
	size_t len;
} builder;

static void begin(builder *b)
{
	struct pl_batch h = {PL_MAGIC, PL_VERSION, PL_HOW_EXEC, 42, 1, 0, 0};
	memset(b, 0, sizeof(*b));
	memcpy(b->buf, &h, sizeof(h));
	b->len = sizeof(h);
}

static void finish(builder *b)
{
	uint32_t len = (uint32_t)b->len;
	memcpy(b->buf + offsetof(struct pl_batch, len), &len, sizeof(len));
}

/* Append a record; strs NULL-terminated. Returns its offset. */
static size_t add(builder *b, int kind, const struct pl_stat *st,
		  const char *const *strs)
{
	size_t off = b->len;
	struct pl_rec r = {.kind = (uint16_t)kind, .fd = 3, .fd2 = AT_FDCWD,
			   .flags = O_RDONLY, .created = -1};
	size_t n = sizeof(r) + (st ? sizeof(*st) : 0);
	for (size_t i = 0; strs && strs[i]; i++, r.nstr++)
		n += strlen(strs[i]) + 1;
	n = (n + 7) & ~(size_t)7;
	r.size = (uint16_t)n;
	if (st)
		r.bits |= PL_B_STAT;
	uint8_t *p = b->buf + off;
	memcpy(p, &r, sizeof(r));
	p += sizeof(r);
	if (st) {
		memcpy(p, st, sizeof(*st));
		p += sizeof(*st);
	}
	for (size_t i = 0; strs && strs[i]; i++) {
		memcpy(p, strs[i], strlen(strs[i]) + 1);
		p += strlen(strs[i]) + 1;
	}
	b->len += n;
	return off;
}

static struct pl_rec *rec_at(builder *b, size_t off)
{
	return (struct pl_rec *)(b->buf + off);
}

struct seen {
	int n;
	pl_record first;
	char path[64];
};

static int collect(void *ctx, const pl_record *d)
{
	struct seen *s = ctx;
	if (s->n++ == 0) {
		s->first = *d;
		if (d->nstr)
			snprintf(s->path, sizeof(s->path), "%s", d->strs[0]);
	}
	return 0;
}

static int decode(builder *b, struct seen *s)
{
	struct pl_batch h;
	memset(s, 0, sizeof(*s));
	return pl_batch_decode(b->buf, b->len, &h, collect, s);
}

/* ---- valid batches ---- */

static void valid_open_close(void **state)
{
	(void)state;
	builder b;
	struct seen s;
	struct pl_stat st = {.mode = 0100644, .dev = 7, .ino = 99, .size = 5};
	const char *path[] = {"dir/file.txt", NULL};
	begin(&b);
	add(&b, PL_R_OPEN, &st, path);
	size_t c = add(&b, PL_R_CLOSE, NULL, NULL);
	rec_at(&b, c)->bits = PL_B_READ;
	finish(&b);
	assert_int_equal(decode(&b, &s), WEFT_OK);
	assert_int_equal(s.n, 2);
	assert_int_equal(s.first.r.kind, PL_R_OPEN);
	assert_true(s.first.has_stat);
	assert_int_equal(s.first.st.ino, 99);
	assert_string_equal(s.path, "dir/file.txt");
}

static void valid_image_with_argv(void **state)
{
	(void)state;
	builder b;
	struct seen s;
	const char *strs[] = {"/usr/bin/cp", "/work", "cp", "a", "b", NULL};
	begin(&b);
	add(&b, PL_R_IMAGE, NULL, strs);
	finish(&b);
	assert_int_equal(decode(&b, &s), WEFT_OK);
	assert_int_equal(s.first.nstr, 5);
}

/* ---- damage ---- */

static void bad_header(void **state)
{
	(void)state;
	builder b;
	struct seen s;
	const char *path[] = {"f", NULL};
	begin(&b);
	add(&b, PL_R_OPEN, NULL, path);
	finish(&b);
	b.buf[0] ^= 1;
	assert_int_equal(decode(&b, &s), WEFT_EINVAL);
	b.buf[0] ^= 1;
	b.buf[4] = 9; /* version */
	assert_int_equal(decode(&b, &s), WEFT_EVERSION);
	b.buf[4] = PL_VERSION;
	b.len -= 8; /* header says more than there is */
	assert_int_equal(decode(&b, &s), WEFT_ETRUNC);
	b.len += 8;
	assert_int_equal(pl_batch_decode(b.buf, 10, &(struct pl_batch){0},
					 collect, &s),
			 WEFT_ETRUNC);
	assert_int_equal(s.n, 0);
}

static void bad_record_sizes(void **state)
{
	(void)state;
	builder b;
	struct seen s;
	const char *path[] = {"f", NULL};
	begin(&b);
	size_t off = add(&b, PL_R_OPEN, NULL, path);
	finish(&b);
	rec_at(&b, off)->size = 41; /* not aligned */
	assert_int_equal(decode(&b, &s), WEFT_EINVAL);
	rec_at(&b, off)->size = 4096; /* past the batch */
	assert_int_equal(decode(&b, &s), WEFT_ETRUNC);
	rec_at(&b, off)->size = 0;
	assert_int_equal(decode(&b, &s), WEFT_EINVAL);
	assert_int_equal(s.n, 0);
}

static void bad_strings(void **state)
{
	(void)state;
	builder b;
	struct seen s;
	const char *path[] = {"abcdefg", NULL};
	begin(&b);
	size_t off = add(&b, PL_R_OPEN, NULL, path);
	finish(&b);
	/* The string runs to the end of its record without a NUL. */
	memset(b.buf + off + sizeof(struct pl_rec), 'x',
	       rec_at(&b, off)->size - sizeof(struct pl_rec));
	assert_int_equal(decode(&b, &s), WEFT_ETRUNC);

	/* An OPEN needs exactly one string. */
	begin(&b);
	add(&b, PL_R_OPEN, NULL, NULL);
	finish(&b);
	assert_int_equal(decode(&b, &s), WEFT_EINVAL);

	/* Non-zero padding. */
	const char *two[] = {"ab", NULL};
	begin(&b);
	off = add(&b, PL_R_UNLINK, NULL, two);
	finish(&b);
	b.buf[off + rec_at(&b, off)->size - 1] = 1;
	assert_int_equal(decode(&b, &s), WEFT_EINVAL);

	/* Too many strings. */
	begin(&b);
	off = add(&b, PL_R_EXEC, NULL, two);
	finish(&b);
	rec_at(&b, off)->nstr = PL_MAX_STR + 1;
	assert_int_equal(decode(&b, &s), WEFT_ETOOBIG);
	assert_int_equal(s.n, 0);
}

static void oversized_path_and_warning(void **state)
{
	(void)state;
	builder b;
	struct seen s;
	char *big = malloc(WEFT_MAX_PATH_BYTES + 1);
	memset(big, 'p', WEFT_MAX_PATH_BYTES);
	big[WEFT_MAX_PATH_BYTES] = '\0';
	const char *strs[] = {big, NULL};
	begin(&b);
	add(&b, PL_R_CHDIR, NULL, strs);
	finish(&b);
	assert_int_equal(decode(&b, &s), WEFT_EINVAL);
	big[WEFT_MAX_PATH_BYTES - 1] = '\0'; /* 4095 bytes: the longest */
	begin(&b);
	add(&b, PL_R_CHDIR, NULL, strs);
	finish(&b);
	assert_int_equal(decode(&b, &s), WEFT_OK);
	big[WEFT_MAX_WARNING_BYTES] = '\0';
	begin(&b);
	add(&b, PL_R_WARN, NULL, strs);
	finish(&b);
	assert_int_equal(decode(&b, &s), WEFT_EINVAL);
	free(big);
}

static void unknown_kind_rejects_all(void **state)
{
	(void)state;
	builder b;
	struct seen s;
	const char *path[] = {"f", NULL};
	begin(&b);
	add(&b, PL_R_OPEN, NULL, path); /* valid, but must not be handed on */
	size_t off = add(&b, PL_R_HELLO, NULL, NULL);
	finish(&b);
	rec_at(&b, off)->kind = PL_R_KIND_MAX;
	assert_int_equal(decode(&b, &s), WEFT_EINVAL);
	assert_int_equal(s.n, 0);
	rec_at(&b, off)->kind = 0;
	assert_int_equal(decode(&b, &s), WEFT_EINVAL);
}

/* ---- the library lookup ---- */

static void library_override(void **state)
{
	(void)state;
	char out[4096];
	setenv(PL_LIBRARY_ENV, "relative/lib.so", 1);
	assert_int_equal(pl_library_path(out, sizeof(out)), -1);
	assert_non_null(strstr(out, PL_LIBRARY_ENV));
	setenv(PL_LIBRARY_ENV, "/no/such/libweft_preload.so", 1);
	assert_int_equal(pl_library_path(out, sizeof(out)), -1);
	setenv(PL_LIBRARY_ENV, "/proc/self/exe", 1);
	assert_int_equal(pl_library_path(out, sizeof(out)), 0);
	assert_string_equal(out, "/proc/self/exe");
	unsetenv(PL_LIBRARY_ENV);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(valid_open_close),
		cmocka_unit_test(valid_image_with_argv),
		cmocka_unit_test(bad_header),
		cmocka_unit_test(bad_record_sizes),
		cmocka_unit_test(bad_strings),
		cmocka_unit_test(oversized_path_and_warning),
		cmocka_unit_test(unknown_kind_rejects_all),
		cmocka_unit_test(library_override),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
