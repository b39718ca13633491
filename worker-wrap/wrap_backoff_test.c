/*
 * wrap_backoff_test.c - retry waits grow, stay capped, are never zero, and
 * are spread (two writers with different seeds do not retry in step); and
 * fragment splitting keeps every record exactly once, in order, under the
 * budget.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <weft/wrap.h>

static void test_backoff_grows_and_caps(void **state)
{
	(void)state;
	weft_wrap_backoff b;
	weft_wrap_backoff_init(&b, 100, 2000, 12345);
	uint32_t prev_max = 0;
	for (int i = 0; i < 40; i++) {
		uint32_t d = 100u << (i < 5 ? i : 5);
		if (d > 2000)
			d = 2000;
		uint32_t w = weft_wrap_backoff_next(&b);
		assert_true(w >= d - d / 2 && w <= d);
		assert_true(w > 0);
		prev_max = d;
	}
	assert_int_equal(prev_max, 2000);
	weft_wrap_backoff_reset(&b);
	assert_true(weft_wrap_backoff_next(&b) <= 100);
}

static void test_backoff_jitter_spreads(void **state)
{
	(void)state;
	weft_wrap_backoff a, b;
	weft_wrap_backoff_init(&a, 1000, 1000, 1);
	weft_wrap_backoff_init(&b, 1000, 1000, 2);
	int same = 0;
	uint32_t lo = UINT32_MAX, hi = 0;
	for (int i = 0; i < 200; i++) {
		uint32_t x = weft_wrap_backoff_next(&a);
		same += x == weft_wrap_backoff_next(&b);
		lo = x < lo ? x : lo;
		hi = x > hi ? x : hi;
	}
	assert_true(same < 20);
	assert_true(hi - lo > 250); /* uses the jitter range [500, 1000] */
}

static void test_backoff_tiny_values(void **state)
{
	(void)state;
	weft_wrap_backoff b;
	weft_wrap_backoff_init(&b, 0, 0, 0);
	for (int i = 0; i < 100; i++)
		assert_int_equal(weft_wrap_backoff_next(&b), 1);
}

/* A report of np processes and nf files with paths of pathlen bytes. */
static void make_report(weft_report *r, size_t np, size_t nf, size_t pathlen)
{
	weft_report_init(r);
	for (size_t i = 0; i < np; i++) {
		weft_process_rec *p = weft_report_add_process(r);
		p->pid = (int32_t)(i + 1);
		p->cwd = strdup("/");
	}
	for (size_t i = 0; i < nf; i++) {
		weft_file_rec *f = weft_report_add_file(r);
		f->path = malloc(pathlen + 1);
		memset(f->path, 'a' + (int)(i % 26), pathlen);
		f->path[0] = '/';
		f->path[pathlen] = '\0';
		f->read = true;
	}
	weft_report_warn(r, "a warning");
}

static void check_cover(const weft_report *r, const weft_wrap_part *p, size_t n)
{
	size_t next_p = 0, next_f = 0;
	assert_true(n >= 1);
	assert_true(p[0].warnings);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(p[i].proc_begin, next_p);
		assert_int_equal(p[i].file_begin, next_f);
		assert_true(p[i].proc_end >= p[i].proc_begin);
		assert_true(p[i].file_end >= p[i].file_begin);
		if (i)
			assert_false(p[i].warnings);
		next_p = p[i].proc_end;
		next_f = p[i].file_end;
	}
	assert_int_equal(next_p, r->nprocesses);
	assert_int_equal(next_f, r->nfiles);
}

/* r split under budget into *n parts, which must cover it. */
static weft_wrap_part *split_covering(const weft_report *r, size_t budget,
				      size_t *n)
{
	weft_wrap_part *p;
	assert_int_equal(weft_wrap_split(r, budget, &p, n), WEFT_OK);
	check_cover(r, p, *n);
	return p;
}

static void test_split_one_part(void **state)
{
	(void)state;
	weft_report r;
	make_report(&r, 3, 10, 20);
	size_t n;
	weft_wrap_part *p = split_covering(&r, 1 << 20, &n);
	assert_int_equal(n, 1);
	free(p);
	weft_report_release(&r);
}

static void test_split_many_parts(void **state)
{
	(void)state;
	weft_report r;
	make_report(&r, 50, 1000, 300);
	size_t n, budget = 8 * 1024;
	weft_wrap_part *p = split_covering(&r, budget, &n);
	assert_true(n > 30);
	/* Each part's records really encode under the budget. */
	for (size_t i = 0; i < n; i++) {
		size_t total = 0;
		for (size_t k = p[i].file_begin; k < p[i].file_end; k++) {
			weft_buf b;
			weft_buf_init(&b);
			assert_int_equal(weft_file_rec_encode(&r.files[k], &b),
					 WEFT_OK);
			total += b.len;
			weft_buf_free(&b);
		}
		assert_true(total <= budget);
	}
	free(p);
	weft_report_release(&r);
}

static void test_split_empty_and_oversize_record(void **state)
{
	(void)state;
	weft_report r;
	weft_report_init(&r);
	weft_wrap_part *p;
	size_t n;
	assert_int_equal(weft_wrap_split(&r, 100, &p, &n), WEFT_OK);
	assert_int_equal(n, 1);
	free(p);
	weft_report_release(&r);
	/* A record over the budget travels alone, between its neighbours. */
	make_report(&r, 0, 3, 100);
	free(r.files[1].path);
	r.files[1].path = malloc(4001);
	memset(r.files[1].path, 'z', 4000);
	r.files[1].path[0] = '/';
	r.files[1].path[4000] = '\0';
	p = split_covering(&r, 1000, &n);
	assert_int_equal(n, 3);
	assert_int_equal(p[1].file_begin, 1);
	assert_int_equal(p[1].file_end, 2);
	free(p);
	weft_report_release(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_backoff_grows_and_caps),
		cmocka_unit_test(test_backoff_jitter_spreads),
		cmocka_unit_test(test_backoff_tiny_values),
		cmocka_unit_test(test_split_one_part),
		cmocka_unit_test(test_split_many_parts),
		cmocka_unit_test(test_split_empty_and_oversize_record),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
