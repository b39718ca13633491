/*
 * ptrace_test.c - the ptrace backend run on real small workloads through
 * weft_backend_ptrace.run with the real classifier, asserting the report:
 * copies, exit codes and signals, fork/exec chains, orphans, threads that
 * share an fd table, a non-leader thread that execs, posix_spawn (vfork),
 * group-stops and signal delivery, a failed exec, and preflight.
 *
 * Workloads that need threads or exact syscalls are this test binary
 * itself, re-executed with "--child MODE ..." (see child_main).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <cmocka.h>

#include "../../schema/test_main.h"

#include <weft/backends.h>

extern char **environ;
extern const weft_backend weft_backend_ptrace; /* ptrace.c */

static char self_exe[PATH_MAX];
static char tmpdir[PATH_MAX];
static bool ptrace_usable;
static char skip_reason[WEFT_PREFLIGHT_DETAIL_BYTES];

/* ---- the re-executed workloads ---- */

static int child_fd = -1;

static void *thread_open(void *arg)
{
	child_fd = open(arg, O_RDONLY);
	return NULL;
}

static void *thread_exec(void *arg)
{
	char *argv[] = {"/bin/cat", arg, NULL};
	execv(argv[0], argv);
	_exit(99);
}

static volatile sig_atomic_t got_usr1;

static void on_usr1(int sig)
{
	(void)sig;
	got_usr1 = 1;
}

static int child_main(int argc, char **argv)
{
	const char *mode = argv[2];
	if (strcmp(mode, "threads") == 0 && argc == 4) {
		/* One thread opens, another (main) reads the shared fd. */
		pthread_t t;
		pthread_create(&t, NULL, thread_open, argv[3]);
		pthread_join(t, NULL);
		char buf[64];
		return child_fd >= 0 && read(child_fd, buf, sizeof(buf)) > 0
			       ? 0
			       : 1;
	}
	if (strcmp(mode, "thread-exec") == 0 && argc == 4) {
		pthread_t t;
		pthread_create(&t, NULL, thread_exec, argv[3]);
		for (;;)
			pause(); /* the exec replaces us */
	}
	if (strcmp(mode, "spawn") == 0 && argc == 5) {
		pid_t pid;
		char *cargv[] = {"/bin/cp", argv[3], argv[4], NULL};
		int st;
		if (posix_spawn(&pid, cargv[0], NULL, NULL, cargv, environ))
			return 1;
		return waitpid(pid, &st, 0) == pid && WIFEXITED(st)
			       ? WEXITSTATUS(st)
			       : 1;
	}
	if (strcmp(mode, "groupstop") == 0) {
		/* The real parent must still see its child stop and resume:
		 * the tracer leaves group-stops with PTRACE_LISTEN. */
		pid_t pid = fork();
		if (pid == 0) {
			raise(SIGSTOP);
			_exit(7);
		}
		int st;
		if (waitpid(pid, &st, WUNTRACED) != pid || !WIFSTOPPED(st))
			return 1;
		kill(pid, SIGCONT);
		if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st))
			return 2;
		return WEXITSTATUS(st);
	}
	if (strcmp(mode, "signal") == 0) {
		signal(SIGUSR1, on_usr1);
		raise(SIGUSR1);
		return got_usr1 ? 5 : 1;
	}
	return 100;
}

/* ---- helpers ---- */

struct traced {
	weft_report rep;
	weft_launch l;
	int err;
};

static void trace_argv_env(struct traced *t, char **argv, char **envp)
{
	memset(t, 0, sizeof(*t));
	weft_report_init(&t->rep);
	t->l.argv = argv;
	t->l.envp = envp;
	t->l.classifier = weft_classifier_new();
	assert_non_null(t->l.classifier);
	t->err = weft_backend_ptrace.run(&t->l, &t->rep);
	assert_int_equal(weft_classifier_finish(t->l.classifier, &t->rep), 0);
	weft_classifier_free(t->l.classifier);
}

static void trace_argv(struct traced *t, char **argv)
{
	trace_argv_env(t, argv, environ);
}

static void trace_sh(struct traced *t, const char *script)
{
	char *argv[] = {"/bin/sh", "-c", (char *)script, NULL};
	trace_argv(t, argv);
}

static void trace_self(struct traced *t, const char *mode, const char *a,
		       const char *b)
{
	char *argv[] = {self_exe,  "--child", (char *)mode,
			(char *)a, (char *)b, NULL};
	/* A sanitized build's leak checker stops the world with ptrace at
	 * exit, which fails in a process that is already traced. */
	char *envp[] = {"ASAN_OPTIONS=detect_leaks=0", NULL};
	trace_argv_env(t, argv, envp);
}

static void release(struct traced *t)
{
	weft_report_release(&t->rep);
}

static const weft_file_rec *file(const struct traced *t, const char *name)
{
	return weft_test_file(&t->rep, tmpdir, name);
}

static const weft_process_rec *process_with_exe(const struct traced *t,
						const char *exe)
{
	for (size_t i = 0; i < t->rep.nprocesses; i++)
		if (t->rep.processes[i].exe &&
		    strcmp(t->rep.processes[i].exe, exe) == 0)
			return &t->rep.processes[i];
	return NULL;
}

static void put(const char *name, const char *text)
{
	char path[PATH_MAX + 64];
	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static char *in_tmp(const char *name)
{
	static char bufs[4][PATH_MAX + 64];
	static int next;
	char *b = bufs[next++ % 4];
	snprintf(b, sizeof(bufs[0]), "%s/%s", tmpdir, name);
	return b;
}

#define SKIP_UNLESS_USABLE()                                                   \
	do {                                                                   \
		if (!ptrace_usable) {                                          \
			print_message("skipped: %s\n", skip_reason);           \
			skip();                                                \
		}                                                              \
	} while (0)

/* ---- tests ---- */

/* Attach mid-run (the fallback path): a shell already running, with a
 * file open on fd 3, is taken over; what it reads and writes afterwards,
 * in itself and in a child, is recorded, the fd opened before the attach
 * included, and its exit status comes through. */
static pid_t attach_target;
static int attach_go = -1;

static void *release_when_traced(void *arg)
{
	(void)arg;
	for (int i = 0; i < 20000; i++) {
		char path[64], line[256];
		snprintf(path, sizeof(path), "/proc/%d/status",
			 (int)attach_target);
		FILE *f = fopen(path, "r");
		int tracer = 0;
		while (f && fgets(line, sizeof(line), f))
			if (sscanf(line, "TracerPid: %d", &tracer) == 1)
				break;
		if (f)
			fclose(f);
		if (tracer > 0)
			break;
		usleep(1000);
	}
	if (write(attach_go, "go\n", 3) != 3)
		perror("write");
	close(attach_go);
	return NULL;
}

static void test_attach_live_tree(void **state)
{
	(void)state;
	SKIP_UNLESS_USABLE();
	put("att_pre", "before\n");
	put("att_src", "source\n");
	unlink(in_tmp("att_dst"));
	unlink(in_tmp("att_dst2"));
	unlink(in_tmp("att_pre_copy"));
	/* Run from tmpdir: in_tmp's buffers would not hold six paths. */
	char script[] = "exec 3<att_pre; read go; cat <&3 > att_pre_copy; "
			"cat att_src > att_dst; "
			"/bin/sh -c 'cp att_src att_dst2'; exit 4";
	int go[2];
	assert_int_equal(pipe(go), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(go[0], 0);
		close(go[0]);
		if (chdir(tmpdir) != 0)
			_exit(126);
		close(go[1]);
		execl("/bin/sh", "sh", "-c", script, (char *)NULL);
		_exit(127);
	}
	close(go[0]);
	attach_target = pid;
	attach_go = go[1];
	/* The shell is blocked reading stdin (or about to): attach, and let
	 * it go only once it is traced. */
	usleep(20000);
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, release_when_traced, NULL),
			 0);
	struct traced t;
	memset(&t, 0, sizeof(t));
	weft_report_init(&t.rep);
	t.l.root_pid = pid;
	t.l.verbose = getenv("PT_DEBUG") ? 2 : 0;
	t.l.classifier = weft_classifier_new();
	assert_non_null(t.l.classifier);
	t.err = weft_backend_ptrace.attach(&t.l, &t.rep);
	pthread_join(th, NULL);
	assert_int_equal(weft_classifier_finish(t.l.classifier, &t.rep), 0);
	weft_classifier_free(t.l.classifier);

	assert_int_equal(t.err, 0);
	assert_int_equal(t.l.exit_code, 4);
	const weft_file_rec *pre = file(&t, "att_pre");
	assert_non_null(pre); /* open before the attach: seeded from /proc */
	assert_true(pre->read);
	const weft_file_rec *src = file(&t, "att_src");
	assert_non_null(src);
	assert_true(src->read);
	const weft_file_rec *dst = file(&t, "att_dst");
	const weft_file_rec *dst2 = file(&t, "att_dst2");
	assert_non_null(dst);
	assert_non_null(dst2); /* written by a child forked after attach */
	assert_true(dst->written);
	assert_true(dst->created);
	assert_true(dst2->written);
	assert_non_null(process_with_exe(&t, "/usr/bin/cp"));
	release(&t);
}

static void test_cp(void **state)
{
	(void)state;
	SKIP_UNLESS_USABLE();
	struct traced t;
	put("cp_src", "payload\n");
	unlink(in_tmp("cp_dst"));
	char *argv[] = {"/bin/cp", in_tmp("cp_src"), in_tmp("cp_dst"), NULL};
	trace_argv(&t, argv);
	assert_int_equal(t.err, 0);
	assert_int_equal(t.l.exit_code, 0);
	assert_true(t.l.root_pid > 0);
	const weft_file_rec *src = file(&t, "cp_src");
	const weft_file_rec *dst = file(&t, "cp_dst");
	assert_non_null(src);
	assert_non_null(dst);
	assert_true(src->read);
	assert_false(src->written);
	assert_true(dst->written);
	assert_true(dst->created);
	assert_false(dst->read);
	assert_int_equal(t.l.dropped_events, 0);
	release(&t);
}

static void test_overwrite_not_created(void **state)
{
	(void)state;
	SKIP_UNLESS_USABLE();
	struct traced t;
	put("ow_src", "a\n");
	put("ow_dst", "old\n");
	char *argv[] = {"/bin/cp", in_tmp("ow_src"), in_tmp("ow_dst"), NULL};
	trace_argv(&t, argv);
	const weft_file_rec *dst = file(&t, "ow_dst");
	assert_non_null(dst);
	assert_true(dst->written);
	assert_false(dst->created); /* existed before: O_CREAT checked */
	release(&t);
}

static void test_exit_code(void **state)
{
	(void)state;
	SKIP_UNLESS_USABLE();
	struct traced t;
	trace_sh(&t, "exit 3");
	assert_int_equal(t.err, 0);
	assert_int_equal(t.l.exit_code, 3);
	release(&t);
}

static void test_killed_by_signal(void **state)
{
	(void)state;
	SKIP_UNLESS_USABLE();
	struct traced t;
	trace_sh(&t, "kill -TERM $$");
	assert_int_equal(t.l.exit_code, 128 + SIGTERM);
	release(&t);
}

static void test_fork_exec_chain(void **state)
{
	(void)state;
	SKIP_UNLESS_USABLE();
	struct traced t;
	char script[3 * PATH_MAX];
	put("chain_in", "chain\n");
	unlink(in_tmp("chain_out"));
	unlink(in_tmp("chain_out2"));
	snprintf(script, sizeof(script),
		 "/bin/cat %s | /bin/sh -c '/bin/cat > %s'; /bin/cp %s %s",
		 in_tmp("chain_in"), in_tmp("chain_out"), in_tmp("chain_out"),
		 in_tmp("chain_out2"));
	trace_sh(&t, script);
	assert_int_equal(t.l.exit_code, 0);
	assert_true(file(&t, "chain_in")->read);
	assert_true(file(&t, "chain_out")->written);
	assert_true(file(&t, "chain_out")->created);
	assert_true(file(&t, "chain_out2")->created);
	/* sh, cat, sh (-> cat), cat, cp: every one recorded and ended, by
	 * an exit or by the exec that started the next image. */
	assert_true(t.rep.nprocesses >= 5);
	for (size_t i = 0; i < t.rep.nprocesses; i++)
		assert_true(t.rep.processes[i].exited ||
			    t.rep.processes[i].execd);
	const weft_process_rec *cp = process_with_exe(&t, "/usr/bin/cp");
	assert_non_null(cp);
	assert_int_equal(cp->ppid, t.l.root_pid);
	release(&t);
}

static void test_orphan_followed(void **state)
{
	(void)state;
	SKIP_UNLESS_USABLE();
	struct traced t;
	char script[2 * PATH_MAX];
	unlink(in_tmp("orphan_out"));
	/* The subshell's parent exits at once; the grandchild writes later
	 * and the run must wait for it. */
	snprintf(script, sizeof(script), "(sleep 0.3; echo late > %s) & exit 4",
		 in_tmp("orphan_out"));
	trace_sh(&t, script);
	assert_int_equal(t.l.exit_code, 4);
	const weft_file_rec *f = file(&t, "orphan_out");
	assert_non_null(f);
	assert_true(f->written);
	release(&t);
}

static void test_threads_share_fds(void **state)
{
	(void)state;
	SKIP_UNLESS_USABLE();
	struct traced t;
	put("thr_in", "threads\n");
	trace_self(&t, "threads", in_tmp("thr_in"), NULL);
	assert_int_equal(t.l.exit_code, 0);
	const weft_file_rec *f = file(&t, "thr_in");
	assert_non_null(f);
	assert_true(f->read); /* opened by one thread, read by another */
	release(&t);
}

static void test_thread_exec(void **state)
{
	(void)state;
	SKIP_UNLESS_USABLE();
	struct traced t;
	put("texec_in", "exec from a thread\n");
	trace_self(&t, "thread-exec", in_tmp("texec_in"), NULL);
	assert_int_equal(t.l.exit_code, 0);
	assert_true(file(&t, "texec_in")->read);
	const weft_process_rec *cat = process_with_exe(&t, "/usr/bin/cat");
	assert_non_null(cat);
	assert_int_equal(cat->pid, t.l.root_pid); /* took the leader's id */
	release(&t);
}

static void test_posix_spawn(void **state)
{
	(void)state;
	SKIP_UNLESS_USABLE();
	struct traced t;
	put("spawn_in", "spawned\n");
	unlink(in_tmp("spawn_out"));
	trace_self(&t, "spawn", in_tmp("spawn_in"), in_tmp("spawn_out"));
	assert_int_equal(t.l.exit_code, 0);
	assert_true(file(&t, "spawn_in")->read);
	assert_true(file(&t, "spawn_out")->created);
	assert_non_null(process_with_exe(&t, "/usr/bin/cp"));
	release(&t);
}

static void test_group_stop(void **state)
{
	(void)state;
	SKIP_UNLESS_USABLE();
	struct traced t;
	trace_self(&t, "groupstop", NULL, NULL);
	assert_int_equal(t.l.exit_code, 7);
	release(&t);
}

static void test_signal_delivered(void **state)
{
	(void)state;
	SKIP_UNLESS_USABLE();
	struct traced t;
	trace_self(&t, "signal", NULL, NULL);
	assert_int_equal(t.l.exit_code, 5);
	release(&t);
}

static void test_exec_failure(void **state)
{
	(void)state;
	SKIP_UNLESS_USABLE();
	struct traced t;
	char *argv[] = {"/nonexistent/weft-no-such-program", NULL};
	trace_argv(&t, argv);
	assert_int_not_equal(t.err, 0);
	assert_int_equal(t.l.exit_code, 127);
	assert_true(t.rep.nwarnings >= 1);
	release(&t);
}

static void test_preflight(void **state)
{
	(void)state;
	weft_preflight p;
	assert_int_equal(weft_backend_ptrace.preflight(&p, "/bin/sh", 10000),
			 0);
	const char *want[] = {"platform", "architecture", "ptrace_scope",
			      "seccomp",  "syscall_info", "probe",
			      "command"};
	assert_int_equal(p.nchecks, sizeof(want) / sizeof(want[0]));
	for (size_t i = 0; i < p.nchecks; i++)
		assert_string_equal(p.checks[i].name, want[i]);
	assert_string_equal(p.command_checked, "/bin/sh");
	if (!p.ok) {
		print_message("skipped: ptrace preflight failed here: %s\n",
			      p.summary);
		skip();
	}
	assert_non_null(strstr(p.summary, "ptrace works"));

	weft_preflight_begin(&p, "x", NULL);
	assert_int_equal(weft_backend_ptrace.preflight(
				 &p, "/nonexistent/weft-cmd", 10000),
			 0);
	assert_false(p.ok);
	assert_string_equal(p.checks[p.nchecks - 1].name, "command");
	assert_false(p.checks[p.nchecks - 1].ok);
	assert_non_null(strstr(p.summary, "command"));
}

static void test_preflight_timeout(void **state)
{
	(void)state;
	SKIP_UNLESS_USABLE();
	weft_preflight p;
	weft_backend_ptrace.preflight(&p, NULL, 0);
	assert_false(p.ok);
	assert_non_null(strstr(p.summary, "timeout after 0 ms"));
}

static int group_setup(void **state)
{
	(void)state;
	weft_preflight p;
	if (weft_test_tmpdir("ptrace-test", tmpdir, sizeof(tmpdir)) != 0)
		return -1;
	weft_backend_ptrace.preflight(&p, NULL, 10000);
	ptrace_usable = p.ok;
	snprintf(skip_reason, sizeof(skip_reason), "%s", p.summary);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	char cmd[PATH_MAX + 16];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
	if (argc >= 3 && strcmp(argv[1], "--child") == 0)
		return child_main(argc, argv);
	ssize_t n = readlink("/proc/self/exe", self_exe, sizeof(self_exe) - 1);
	if (n <= 0)
		return 1;
	self_exe[n] = '\0';
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cp),
		cmocka_unit_test(test_overwrite_not_created),
		cmocka_unit_test(test_exit_code),
		cmocka_unit_test(test_killed_by_signal),
		cmocka_unit_test(test_fork_exec_chain),
		cmocka_unit_test(test_orphan_followed),
		cmocka_unit_test(test_threads_share_fds),
		cmocka_unit_test(test_thread_exec),
		cmocka_unit_test(test_posix_spawn),
		cmocka_unit_test(test_group_stop),
		cmocka_unit_test(test_signal_delivered),
		cmocka_unit_test(test_exec_failure),
		cmocka_unit_test(test_attach_live_tree),
		cmocka_unit_test(test_preflight),
		cmocka_unit_test(test_preflight_timeout),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
