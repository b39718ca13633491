/*
 * manager_test.c - the tracer manager with backends made for the test:
 * a preflight that hangs fails as a timeout and one that crashes fails
 * as such, without hurting the caller; a backend that loses tracing
 * mid-run is replaced by the real ptrace backend attaching to the live
 * workload (its later writes recorded, the workload run once, its exit
 * status kept), or, with fallback disabled, the workload runs on untraced
 * and the report says so.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <cmocka.h>

#include "../../schema/test_main.h"

#include <weft/backends.h>
#include <weft/base.h>

static char tmpdir[PATH_MAX];
static char path_buf[PATH_MAX + 64];

static const char *in_tmp(const char *name)
{
	snprintf(path_buf, sizeof(path_buf), "%s/%s", tmpdir, name);
	return path_buf;
}

/* ---- test backends ---- */

static int hang_preflight(weft_preflight *p, const char *command, int ms)
{
	(void)ms;
	weft_preflight_begin(p, "hang", command);
	for (;;)
		pause();
	return 0;
}

static int crash_preflight(weft_preflight *p, const char *command, int ms)
{
	(void)ms;
	weft_preflight_begin(p, "crash", command);
	abort();
}

static int ok_preflight(weft_preflight *p, const char *command, int ms)
{
	(void)ms;
	weft_preflight_begin(p, "ok", command);
	weft_preflight_check(p, "always", true, "fine");
	snprintf(p->summary, sizeof(p->summary), "all good");
	return 0;
}

/* Starts the workload, then loses it at once (as an eBPF backend whose
 * agent died would): sets lost and returns with the workload running. */
static int lossy_run(weft_launch *l, weft_report *w)
{
	(void)w;
	pid_t pid = fork();
	if (pid < 0)
		return WEFT_EIO;
	if (pid == 0) {
		execve(l->argv[0], l->argv, l->envp);
		_exit(127);
	}
	l->root_pid = pid;
	l->lost = true;
	snprintf(l->lost_reason, sizeof(l->lost_reason),
		 "the test backend let go");
	l->lost_at_ns = weft_real_ns();
	return WEFT_OK;
}

static const weft_backend hang = {.name = "hang",
				  .preflight = hang_preflight};
static const weft_backend crash = {.name = "crash",
				   .preflight = crash_preflight};
static const weft_backend good = {.name = "ok", .preflight = ok_preflight};
static const weft_backend lossy = {.name = "lossy",
				   .preflight = ok_preflight,
				   .run = lossy_run};

/* ---- tests ---- */

static void test_preflight_hang_is_timeout(void **state)
{
	(void)state;
	weft_preflight p;
	weft_preflight_run(&hang, &p, "/bin/true", 200);
	assert_false(p.ok);
	assert_string_equal(p.backend, "hang");
	assert_string_equal(p.command_checked, "/bin/true");
	assert_int_equal(p.nchecks, 1);
	assert_string_equal(p.checks[0].name, "timeout");
	assert_non_null(strstr(p.summary, "did not finish within 200 ms"));
	/* The hanging child was ended and reaped: nothing left to wait for. */
	assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
	assert_int_equal(errno, ECHILD);
}

static void test_preflight_crash(void **state)
{
	(void)state;
	weft_preflight p;
	weft_preflight_run(&crash, &p, NULL, 5000);
	assert_false(p.ok);
	assert_string_equal(p.checks[0].name, "preflight");
	assert_non_null(strstr(p.summary, "crashed"));
}

static void test_preflight_result_comes_back(void **state)
{
	(void)state;
	weft_preflight p;
	weft_preflight_run(&good, &p, NULL, 5000);
	assert_true(p.ok);
	assert_string_equal(p.summary, "all good");
	assert_int_equal(p.nchecks, 1);
	assert_string_equal(p.checks[0].detail, "fine");
}

struct run {
	weft_report rep;
	weft_launch l;
	int err;
};

static bool warned(const struct run *r, const char *needle)
{
	for (size_t i = 0; i < r->rep.nwarnings; i++)
		if (strstr(r->rep.warnings[i], needle))
			return true;
	return false;
}

static void put_src(void)
{
	FILE *f = fopen(in_tmp("src"), "w");
	assert_non_null(f);
	fputs("data\n", f);
	fclose(f);
	unlink(in_tmp("dst"));
}

/* The workload: waits until it is traced again (its TracerPid set by
 * the takeover) or, untraced, about a second; then reads src and writes
 * dst in a child, and exits 6: with or without fallback, it runs to that
 * end. */
static void lossy_trace(struct run *r, bool fallback)
{
	put_src();
	static char script[3 * PATH_MAX];
	snprintf(script, sizeof(script),
		 "cd '%s' && i=0; while [ $i -lt 100 ] && ! grep -q "
		 "'^TracerPid:[[:space:]]*[1-9]' /proc/$$/status; do "
		 "sleep 0.01; i=$((i+1)); done; /bin/cp src dst && exit 6",
		 tmpdir);
	static char *argv[] = {"/bin/sh", "-c", script, NULL};
	static char *envp[] = {"PATH=/usr/bin:/bin", NULL};
	memset(r, 0, sizeof(*r));
	weft_report_init(&r->rep);
	r->l.argv = argv;
	r->l.envp = envp;
	r->l.classifier = weft_classifier_new();
	assert_non_null(r->l.classifier);
	r->err = weft_manager_trace(&lossy, &r->l, &r->rep, fallback, 10000);
	assert_int_equal(weft_classifier_finish(r->l.classifier, &r->rep), 0);
	weft_classifier_free(r->l.classifier);
	assert_int_equal(r->err, 0);
	assert_int_equal(r->l.exit_code, 6);
}

static const weft_file_rec *file(const struct run *r, const char *name)
{
	return weft_test_file(&r->rep, tmpdir, name);
}

static void test_fallback_attaches_ptrace(void **state)
{
	(void)state;
	weft_preflight p;
	weft_preflight_run(weft_backend_find("ptrace"), &p, NULL, 10000);
	if (!p.ok) {
		print_message("skipped: ptrace unusable here: %s\n", p.summary);
		skip();
	}
	struct run r;
	lossy_trace(&r, true);
	assert_true(warned(&r, "tracer fallback: lossy stopped tracing"));
	assert_true(warned(&r, "ptrace attached"));
	const weft_file_rec *src = file(&r, "src"), *dst = file(&r, "dst");
	assert_non_null(src);
	assert_non_null(dst);
	assert_true(src->read);
	assert_true(dst->written);
	assert_true(dst->created);
	/* Run once: dst was written by one cp. */
	struct stat st;
	assert_int_equal(stat(in_tmp("dst"), &st), 0);
	weft_report_release(&r.rep);
}

static void test_no_fallback_runs_untraced(void **state)
{
	(void)state;
	struct run r;
	lossy_trace(&r, false);
	assert_true(warned(&r, "tracing incomplete: lossy stopped tracing"));
	assert_true(warned(&r, "fallback is disabled"));
	assert_null(file(&r, "dst")); /* nobody traced the copy */
	struct stat st;
	assert_int_equal(stat(in_tmp("dst"), &st), 0); /* but it ran */
	weft_report_release(&r.rep);
}

static int setup(void **state)
{
	(void)state;
	return weft_test_tmpdir("manager-test", tmpdir, sizeof(tmpdir));
}

static int teardown(void **state)
{
	(void)state;
	unlink(in_tmp("src"));
	unlink(in_tmp("dst"));
	rmdir(tmpdir);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_preflight_hang_is_timeout),
		cmocka_unit_test(test_preflight_crash),
		cmocka_unit_test(test_preflight_result_comes_back),
		cmocka_unit_test(test_fallback_attaches_ptrace),
		cmocka_unit_test(test_no_fallback_runs_untraced),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
