/*
 * classifier_test.c - unit tests of the fd-state classifier: one
 * hand-written event stream per rule, checked against the weft_report
 * records it must produce. The last test is a micro-benchmark of the
 * open/read/close hot path; it prints its cost and asserts nothing about
 * time.
 */
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <weft/backends.h>

#define ROOT 100

/* ---- Event builders ---- */

static weft_event ev_new(uint16_t kind, int pid)
{
	weft_event e;
	memset(&e, 0, sizeof(e));
	e.kind = kind;
	e.pid = pid;
	e.tgid = pid;
	e.created = WEFT_CREATED_UNKNOWN;
	return e;
}

static void feed(weft_classifier *c, const weft_event *e)
{
	assert_int_equal(weft_classifier_feed(c, e), WEFT_OK);
}

static void openat_ex(weft_classifier *c, int pid, int dirfd, const char *path,
		      int flags, int fd, int created)
{
	weft_event e = ev_new(WEFT_EV_OPEN, pid);
	e.fd = dirfd;
	e.path = path;
	e.flags = flags;
	e.ret = fd;
	e.created = (int8_t)created;
	feed(c, &e);
}

static void open_f(weft_classifier *c, int pid, const char *path, int flags,
		   int fd)
{
	openat_ex(c, pid, AT_FDCWD, path, flags, fd, WEFT_CREATED_UNKNOWN);
}

static void open_stat(weft_classifier *c, int pid, const char *path, int fd,
		      uint32_t st_mode)
{
	weft_event e = ev_new(WEFT_EV_OPEN, pid);
	e.fd = AT_FDCWD;
	e.path = path;
	e.flags = O_RDONLY;
	e.ret = fd;
	e.has_stat = true;
	e.st_mode = st_mode;
	e.st_dev = 8;
	e.st_ino = 1234;
	e.st_size = 42;
	e.st_mtime_ns = 777;
	feed(c, &e);
}

static void fd_ev(weft_classifier *c, uint16_t kind, int pid, int fd,
		  int64_t ret)
{
	weft_event e = ev_new(kind, pid);
	e.fd = fd;
	e.ret = ret;
	feed(c, &e);
}

static void rd(weft_classifier *c, int pid, int fd, int64_t ret)
{
	fd_ev(c, WEFT_EV_READ, pid, fd, ret);
}

static void wr(weft_classifier *c, int pid, int fd, int64_t ret)
{
	fd_ev(c, WEFT_EV_WRITE, pid, fd, ret);
}

static void cl(weft_classifier *c, int pid, int fd)
{
	fd_ev(c, WEFT_EV_CLOSE, pid, fd, 0);
}

static void two_paths(weft_classifier *c, uint16_t kind, int pid, int fd,
		      const char *path, int fd2, const char *path2, int flags)
{
	weft_event e = ev_new(kind, pid);
	e.fd = fd;
	e.path = path;
	e.fd2 = fd2;
	e.path2 = path2;
	e.flags = flags;
	feed(c, &e);
}

static void ren(weft_classifier *c, int pid, const char *from, const char *to,
		int flags)
{
	two_paths(c, WEFT_EV_RENAME, pid, AT_FDCWD, from, AT_FDCWD, to, flags);
}

static void path_ev(weft_classifier *c, uint16_t kind, int pid,
		    const char *path, int flags)
{
	weft_event e = ev_new(kind, pid);
	e.fd = AT_FDCWD;
	e.path = path;
	e.flags = flags;
	feed(c, &e);
}

static void fork_ev(weft_classifier *c, int pid, int child, int flags)
{
	weft_event e = ev_new(WEFT_EV_FORK, pid);
	e.ret = child;
	e.flags = flags;
	feed(c, &e);
}

static void exec_ev(weft_classifier *c, int pid, const char *exe,
		    const char *const *argv, uint32_t argc)
{
	weft_event e = ev_new(WEFT_EV_EXEC, pid);
	e.path = exe;
	e.argv = argv;
	e.argc = argc;
	feed(c, &e);
}

static void exit_ev(weft_classifier *c, int pid, int code, int whole)
{
	weft_event e = ev_new(WEFT_EV_EXIT, pid);
	e.ret = code;
	e.flags = whole;
	feed(c, &e);
}

static weft_classifier *setup(void)
{
	weft_classifier *c = weft_classifier_new();
	assert_non_null(c);
	const char *argv[] = {"sh", "-c", "x"};
	assert_int_equal(weft_classifier_add_process(c, ROOT, 0, "/w",
						     "/bin/sh", argv, 3),
			 WEFT_OK);
	return c;
}

static void finish(weft_classifier *c, weft_report *r)
{
	weft_report_init(r);
	assert_int_equal(weft_classifier_finish(c, r), WEFT_OK);
	weft_classifier_free(c);
}

/* ---- Report checks ---- */

static const weft_file_rec *find_file(const weft_report *r, const char *path)
{
	for (size_t i = 0; i < r->nfiles; i++)
		if (strcmp(r->files[i].path, path) == 0)
			return &r->files[i];
	return NULL;
}

/* Assert that path has a record whose flags are exactly those in want:
 * r read, w written, c created, d deleted. */
static void expect_file(const weft_report *r, const char *path,
			const char *want)
{
	const weft_file_rec *f = find_file(r, path);
	if (!f)
		fail_msg("no record for %s", path);
	char got[8];
	snprintf(got, sizeof(got), "%s%s%s%s", f->read ? "r" : "",
		 f->written ? "w" : "", f->created ? "c" : "",
		 f->deleted ? "d" : "");
	if (strcmp(got, want) != 0)
		fail_msg("%s: flags \"%s\", want \"%s\"", path, got, want);
}

static void expect_no_file(const weft_report *r, const char *path)
{
	if (find_file(r, path))
		fail_msg("unexpected record for %s", path);
}

/* The last image of pid (the program it ran last). */
static const weft_process_rec *find_proc(const weft_report *r, int pid)
{
	for (size_t i = r->nprocesses; i-- > 0;)
		if (r->processes[i].pid == pid)
			return &r->processes[i];
	return NULL;
}

/* ---- Environments (schema 4) ---- */

static void exec_env(weft_classifier *c, int pid, const char *exe,
		     const char *block, size_t len, int state)
{
	const char *argv[] = {exe};
	weft_event e = ev_new(WEFT_EV_EXEC, pid);
	e.path = exe;
	e.argv = argv;
	e.argc = 1;
	e.env_state = (uint8_t)state;
	e.env = block;
	e.env_len = len;
	feed(c, &e);
}

static const weft_env_entry *env_get(const weft_process_rec *p,
				     const char *name)
{
	for (uint32_t i = 0; i < p->nenv; i++)
		if (!strcmp(p->env[i].name, name))
			return &p->env[i];
	return NULL;
}

/* The truth, written first: the root's environment listed (sorted, the
 * first of a repeated name, listed values in clear, others hashed, a
 * string without '=' left out); a child that kept it says "the parent's";
 * one whose environment changed lists its own; one whose environment the
 * backend could not read is unknown; one never looked at is not
 * recorded. */
static void test_environment(void **state)
{
	(void)state;
	weft_classifier *c = setup();
	const char *listed[] = {"MODE"};
	assert_int_equal(weft_classifier_env_values(c, listed, 1), WEFT_OK);
	static const char env1[] = "Z=1\0MODE=fast\0junk\0A=secret\0Z=2\0";
	static const char env2[] = "MODE=slow\0";
	exec_env(c, ROOT, "/bin/sh", env1, sizeof(env1) - 1, WEFT_EV_ENV_BLOCK);
	/* ROOT + 1 keeps it, ROOT + 2 changes it, ROOT + 3 unknown, ROOT +
	 * 4 forks without exec (inherits). */
	for (int k = 1; k <= 4; k++)
		fork_ev(c, ROOT, ROOT + k, 0);
	exec_env(c, ROOT + 1, "/bin/cat", env1, sizeof(env1) - 1,
		 WEFT_EV_ENV_BLOCK);
	exec_env(c, ROOT + 2, "/bin/env", env2, sizeof(env2) - 1,
		 WEFT_EV_ENV_BLOCK);
	exec_env(c, ROOT + 3, "/bin/tr", NULL, 0, WEFT_EV_ENV_UNKNOWN);
	int fd = 3;
	open_f(c, ROOT + 4, "/w/x", O_RDONLY, fd);
	rd(c, ROOT + 4, fd, 1);
	weft_report r;
	finish(c, &r);
	const weft_process_rec *root = find_proc(&r, ROOT);
	assert_int_equal(root->env_state, WEFT_ENV_LISTED);
	assert_int_equal(root->nenv, 3); /* A, MODE, Z */
	assert_string_equal(root->env[0].name, "A");
	assert_null(root->env[0].value);
	uint8_t h[32];
	weft_env_value_hash("secret", 6, h);
	assert_memory_equal(root->env[0].hash, h, 32);
	assert_string_equal(env_get(root, "MODE")->value, "fast");
	weft_env_value_hash("1", 1, h);
	assert_memory_equal(env_get(root, "Z")->hash, h, 32);
	assert_int_equal(find_proc(&r, ROOT + 1)->env_state, WEFT_ENV_PARENT);
	const weft_process_rec *p2 = find_proc(&r, ROOT + 2);
	assert_int_equal(p2->env_state, WEFT_ENV_LISTED);
	assert_int_equal(p2->nenv, 1);
	assert_string_equal(p2->env[0].value, "slow");
	const weft_process_rec *p3 = find_proc(&r, ROOT + 3);
	assert_int_equal(p3->env_state, WEFT_ENV_UNKNOWN);
	assert_non_null(p3->env_missing);
	assert_int_equal(find_proc(&r, ROOT + 4)->env_state, WEFT_ENV_PARENT);
	/* Every record encodes (sorted, unique names). */
	weft_buf b;
	weft_buf_init(&b);
	assert_int_equal(weft_report_encode(&r, &b), WEFT_OK);
	weft_buf_free(&b);
	weft_report_release(&r);

	/* A replay without environments records none. */
	c = setup();
	exec_ev(c, ROOT, "/bin/sh", NULL, 0);
	finish(c, &r);
	assert_int_equal(find_proc(&r, ROOT)->env_state, WEFT_ENV_NONE);
	weft_report_release(&r);
}

/* ---- weft_path_normalize ---- */

static void norm_is(const char *base, const char *path, const char *want)
{
	char out[WEFT_MAX_PATH_BYTES + 1];
	assert_int_equal(weft_path_normalize(base, path, out, sizeof(out)),
			 WEFT_OK);
	assert_string_equal(out, want);
}

static void test_normalize(void **state)
{
	(void)state;
	norm_is("/w", "a.txt", "/w/a.txt");
	norm_is("/w/", "./a//b/./c", "/w/a/b/c");
	norm_is("/w/x", "../y", "/w/y");
	norm_is("/w", "../../../../etc", "/etc");
	norm_is("/ignored", "/abs/../p", "/p");
	norm_is("/", ".", "/");
	norm_is("/a/b", "", "/a/b");
	norm_is(NULL, "/a/b/..", "/a");
	norm_is(NULL, "/..", "/");
	norm_is(NULL, "/a/.../b", "/a/.../b"); /* "..." is a name */
	norm_is(NULL, "/new\nline/\xff\xfe", "/new\nline/\xff\xfe");
	/* Names that merely start with dots, and the already-clean fast
	 * path against a base that is not clean. */
	norm_is("/", ".hidden/..x/x..", "/.hidden/..x/x..");
	norm_is("/w/./", "a", "/w/a");
	norm_is("/w", "a/.", "/w/a");
	norm_is("/w", "a/..", "/w");
	norm_is("/w", "..", "/");
	norm_is(NULL, "/a/", "/a");
	norm_is(NULL, "//a", "/a");
	norm_is(NULL, "/", "/");
	norm_is(NULL, "/.", "/");

	char out[WEFT_MAX_PATH_BYTES + 1];
	/* A relative path needs an absolute base. */
	assert_int_equal(weft_path_normalize(NULL, "a", out, sizeof(out)),
			 WEFT_EINVAL);
	assert_int_equal(weft_path_normalize("rel", "a", out, sizeof(out)),
			 WEFT_EINVAL);
	/* The result must fit outsz with its NUL. */
	assert_int_equal(weft_path_normalize(NULL, "/abc", out, 4),
			 WEFT_ETOOBIG);
	assert_int_equal(weft_path_normalize(NULL, "/abc", out, 5), WEFT_OK);

	/* Exactly WEFT_MAX_PATH_BYTES is fine, one more is too big, and a
	 * long intermediate with a short result is fine. */
	static char big[WEFT_MAX_PATH_BYTES + 8];
	memset(big, 'a', sizeof(big));
	big[0] = '/';
	big[WEFT_MAX_PATH_BYTES] = '\0';
	static char res[WEFT_MAX_PATH_BYTES + 8];
	assert_int_equal(weft_path_normalize(NULL, big, res, sizeof(res)),
			 WEFT_OK);
	assert_int_equal(strlen(res), WEFT_MAX_PATH_BYTES);
	big[WEFT_MAX_PATH_BYTES] = 'a';
	big[WEFT_MAX_PATH_BYTES + 1] = '\0';
	assert_int_equal(weft_path_normalize(NULL, big, res, sizeof(res)),
			 WEFT_ETOOBIG);
	assert_int_equal(weft_path_normalize(big, "../x", res, sizeof(res)),
			 WEFT_OK);
	assert_string_equal(res, "/x");
}

/* ---- open / read / write ---- */

static void test_read_records_input_with_first_stat(void **state)
{
	(void)state;
	weft_classifier *c = setup();
	open_stat(c, ROOT, "in.txt", 3, S_IFREG | 0644);
	rd(c, ROOT, 3, 10);
	cl(c, ROOT, 3);
	weft_report r;
	finish(c, &r);
	assert_int_equal(r.nfiles, 1);
	expect_file(&r, "/w/in.txt", "r");
	const weft_file_rec *f = find_file(&r, "/w/in.txt");
	assert_true(f->has_first_stat);
	assert_int_equal(f->first_dev, 8);
	assert_int_equal(f->first_ino, 1234);
	assert_int_equal(f->first_size, 42);
	assert_int_equal(f->first_mtime_ns, 777);
	weft_report_release(&r);
}

static void test_no_bytes_no_record(void **state)
{
	(void)state;
	weft_classifier *c = setup();
	open_f(c, ROOT, "/w/empty", O_RDONLY, 3);
	rd(c, ROOT, 3, 0);  /* EOF moved nothing */
	rd(c, ROOT, 3, -4); /* EINTR */
	open_f(c, ROOT, "/w/out", O_WRONLY, 4);
	wr(c, ROOT, 4, -28); /* ENOSPC */
	wr(c, ROOT, 4, 0);
	open_f(c, ROOT, "/w/failed", O_RDONLY, -2); /* ENOENT */
	rd(c, ROOT, -2, 5);
	weft_report r;
	finish(c, &r);
	assert_int_equal(r.nfiles, 0);
	weft_report_release(&r);
}

static void test_write_records_output(void **state)
{
	(void)state;
	weft_classifier *c = setup();
	open_f(c, ROOT, "/w/log", O_WRONLY | O_APPEND, 3);
	wr(c, ROOT, 3, 5);
	weft_report r;
	finish(c, &r);
	expect_file(&r, "/w/log", "w");
	weft_report_release(&r);
}

static void test_reading_own_output_is_not_input(void **state)
{
	(void)state;
	weft_classifier *c = setup();
	openat_ex(c, ROOT, AT_FDCWD, "out.bin", O_RDWR | O_CREAT, 3,
		  WEFT_CREATED_YES);
	wr(c, ROOT, 3, 100);
	rd(c, ROOT, 3, 100);
	cl(c, ROOT, 3);
	open_f(c, ROOT, "out.bin", O_RDONLY, 3);
	rd(c, ROOT, 3, 100);
	weft_report r;
	finish(c, &r);
	expect_file(&r, "/w/out.bin", "wc");
	weft_report_release(&r);
}

static void test_trunc_with_write_produces(void **state)
{
	(void)state;
	weft_classifier *c = setup();
	/* O_TRUNC with write access: written, produced, no write needed. */
	open_f(c, ROOT, "/w/t", O_WRONLY | O_TRUNC, 3);
	open_f(c, ROOT, "/w/t", O_RDONLY, 4);
	rd(c, ROOT, 4, 1);
	/* O_TRUNC read-only is not a write. */
	open_f(c, ROOT, "/w/ro", O_RDONLY | O_TRUNC, 5);
	rd(c, ROOT, 5, 1);
	/* A read before the truncation was a real input. */
	open_f(c, ROOT, "/w/rw", O_RDONLY, 6);
	rd(c, ROOT, 6, 1);
	open_f(c, ROOT, "/w/rw", O_WRONLY | O_TRUNC, 7);
	weft_report r;
	finish(c, &r);
	expect_file(&r, "/w/t", "w");
	expect_file(&r, "/w/ro", "r");
	expect_file(&r, "/w/rw", "rw");
	weft_report_release(&r);
}

static void test_creat_hints(void **state)
{
	(void)state;
	weft_classifier *c = setup();
	int fl = O_WRONLY | O_CREAT;
	openat_ex(c, ROOT, AT_FDCWD, "yes", fl, 3, WEFT_CREATED_YES);
	openat_ex(c, ROOT, AT_FDCWD, "no", fl, 4, WEFT_CREATED_NO);
	openat_ex(c, ROOT, AT_FDCWD, "unk", fl, 5, WEFT_CREATED_UNKNOWN);
	openat_ex(c, ROOT, AT_FDCWD, "excl", fl | O_EXCL, 6,
		  WEFT_CREATED_UNKNOWN);
	openat_ex(c, ROOT, AT_FDCWD, "no-excl", fl | O_EXCL, 7,
		  WEFT_CREATED_NO);
	weft_report r;
	finish(c, &r);
	expect_file(&r, "/w/yes", "wc");
	expect_file(&r, "/w/excl", "wc");
	expect_no_file(&r, "/w/no");
	expect_no_file(&r, "/w/unk");
	expect_no_file(&r, "/w/no-excl");
	weft_report_release(&r);
}

static void test_non_regular_files_are_not_artifacts(void **state)
{
	(void)state;
	weft_classifier *c = setup();
	open_stat(c, ROOT, "/w/dir", 3, S_IFDIR | 0755);
	open_stat(c, ROOT, "/w/fifo", 4, S_IFIFO | 0644);
	open_stat(c, ROOT, "/w/sock", 5, S_IFSOCK | 0644);
	open_f(c, ROOT, "/w/dir2", O_RDONLY | O_DIRECTORY, 6);
	for (int fd = 3; fd <= 6; fd++) {
		rd(c, ROOT, fd, 10);
		wr(c, ROOT, fd, 10);
	}
	weft_report r;
	finish(c, &r);
	assert_int_equal(r.nfiles, 0);
	weft_report_release(&r);
}

static void test_pseudo_and_ignored_paths(void **state)
{
	(void)state;
	weft_classifier *c = setup();
	assert_int_equal(weft_classifier_ignore_prefix(c, "/w/.weft"), WEFT_OK);
	const char *paths[] = {"/proc/self/maps",  "/sys/kernel/x", "/dev/null",
			       "/w/.weft/weft.db", "/w/.weft",      "/proc"};
	for (int i = 0; i < 6; i++) {
		open_f(c, ROOT, paths[i], O_RDWR | O_CREAT | O_TRUNC, 3 + i);
		rd(c, ROOT, 3 + i, 1);
		wr(c, ROOT, 3 + i, 1);
	}
	/* A sibling that only shares a prefix of bytes is not ignored. */
	open_f(c, ROOT, "/w/.weftx", O_RDONLY, 20);
	rd(c, ROOT, 20, 1);
	path_ev(c, WEFT_EV_UNLINK, ROOT, "/dev/mqueue/x", 0);
	weft_report r;
	finish(c, &r);
	assert_int_equal(r.nfiles, 1);
	expect_file(&r, "/w/.weftx", "r");
	weft_report_release(&r);
}

/* /dev/shm is a tmpfs of ordinary files (scratch space, files passed
 * between tasks): recorded like /tmp, though the rest of /dev is not. */
static void test_dev_shm_is_tracked(void **state)
{
	(void)state;
	weft_classifier *c = setup();
	openat_ex(c, ROOT, AT_FDCWD, "/dev/shm/job/part.bin",
		  O_WRONLY | O_CREAT, 3, WEFT_CREATED_YES);
	wr(c, ROOT, 3, 100);
	cl(c, ROOT, 3);
	/* Only the first is under /dev/shm. */
	const char *reads[] = {"/dev/shm/in.csv", "/dev/shmx",
			       "/dev/shm/../zero"};
	for (int i = 0; i < 3; i++) {
		open_f(c, ROOT, reads[i], O_RDONLY, 4 + i);
		rd(c, ROOT, 4 + i, 10);
	}
	weft_report r;
	finish(c, &r);
	assert_int_equal(r.nfiles, 2);
	expect_file(&r, "/dev/shm/job/part.bin", "wc");
	expect_file(&r, "/dev/shm/in.csv", "r");
	weft_report_release(&r);
}

static void test_unknown_fds_and_seeded_fds(void **state)
{
	(void)state;
	weft_classifier *c = setup();
	rd(c, ROOT, 0, 100); /* inherited stdin, a pipe we never saw */
	wr(c, ROOT, 1, 100);
	assert_int_equal(
		weft_classifier_add_fd(c, ROOT, 2, "/w/err.log", O_WRONLY),
		WEFT_OK);
	wr(c, ROOT, 2, 10);
	assert_int_equal(weft_classifier_add_fd(c, 999, 2, "/w/x", O_WRONLY),
			 WEFT_ENOTFOUND);
	assert_int_equal(weft_classifier_add_fd(c, ROOT, 5, "rel", O_WRONLY),
			 WEFT_EINVAL);
	rd(c, 4242, 3, 10); /* a task never seen */
	weft_report r;
	finish(c, &r);
	assert_int_equal(r.nfiles, 1);
	expect_file(&r, "/w/err.log", "w");
	weft_report_release(&r);
}

/* ---- Path resolution ---- */

static void test_relative_paths_dirfd_and_cwd(void **state)
{
	(void)state;
	weft_classifier *c = setup();
	open_f(c, ROOT, "/data", O_RDONLY | O_DIRECTORY, 3);
	openat_ex(c, ROOT, 3, "sub/../a.csv", O_RDONLY, 4,
		  WEFT_CREATED_UNKNOWN);
	rd(c, ROOT, 4, 1);
	openat_ex(c, ROOT, 3, "/abs/b", O_RDONLY, 5, WEFT_CREATED_UNKNOWN);
	rd(c, ROOT, 5, 1);
	path_ev(c, WEFT_EV_CHDIR, ROOT, "../srv", 0);
	open_f(c, ROOT, "c", O_RDONLY, 6);
	rd(c, ROOT, 6, 1);
	fd_ev(c, WEFT_EV_FCHDIR, ROOT, 3, 0);
	open_f(c, ROOT, "d", O_RDONLY, 7);
	rd(c, ROOT, 7, 1);
	/* Relative to a dirfd we never saw: dropped and counted. */
	openat_ex(c, ROOT, 9, "e", O_RDONLY, 8, WEFT_CREATED_UNKNOWN);
	rd(c, ROOT, 8, 1);
	weft_report r;
	weft_report_init(&r);
	weft_report_warn(&r, "earlier warning");
	assert_int_equal(weft_classifier_finish(c, &r), WEFT_OK);
	weft_classifier_free(c);
	assert_int_equal(r.nfiles, 4);
	expect_file(&r, "/data/a.csv", "r");
	expect_file(&r, "/abs/b", "r");
	expect_file(&r, "/srv/c", "r");
	expect_file(&r, "/data/d", "r");
	assert_int_equal(r.dropped_events, 1);
	assert_int_equal(r.nwarnings, 2);
	assert_string_equal(r.warnings[0], "earlier warning");
	assert_non_null(strstr(r.warnings[1], "dropped 1 events"));
	weft_report_release(&r);
}

static void test_too_long_path_is_dropped_and_counted(void **state)
{
	(void)state;
	weft_classifier *c = setup();
	static char big[WEFT_MAX_PATH_BYTES + 2];
	memset(big, 'a', sizeof(big) - 1);
	big[0] = '/';
	open_f(c, ROOT, big, O_RDONLY, 3);
	rd(c, ROOT, 3, 1);
	path_ev(c, WEFT_EV_UNLINK, ROOT, big, 0);
	weft_report r;
	weft_report_init(&r);
	r.dropped_events = 5; /* the backend's own */
	assert_int_equal(weft_classifier_finish(c, &r), WEFT_OK);
	weft_classifier_free(c);
	assert_int_equal(r.nfiles, 0);
	assert_int_equal(r.dropped_events, 7);
	assert_int_equal(r.nwarnings, 1);
	assert_non_null(strstr(r.warnings[0], "2 with a path longer"));
	weft_report_release(&r);
}

/* ---- mmap, cross-fd I/O ---- */

static void mmap_ev(weft_classifier *c, int fd, int prot, int flags)
{
	weft_event e = ev_new(WEFT_EV_MMAP, ROOT);
	e.fd = fd;
	e.mode = prot;
	e.flags = flags;
	e.ret = 0x7f0000000000;
	feed(c, &e);
}

static void test_mmap(void **state)
{
	(void)state;
	weft_classifier *c = setup();
	open_f(c, ROOT, "/w/lib.so", O_RDONLY, 3);
	mmap_ev(c, 3, PROT_READ, MAP_PRIVATE);
	open_f(c, ROOT, "/w/shared", O_RDWR, 4);
	mmap_ev(c, 4, PROT_WRITE, MAP_SHARED);
	open_f(c, ROOT, "/w/private", O_RDWR, 5);
	mmap_ev(c, 5, PROT_WRITE, MAP_PRIVATE);
	open_f(c, ROOT, "/w/shared-ro", O_RDONLY, 7);
	mmap_ev(c, 7, PROT_READ, MAP_SHARED);
	mmap_ev(c, -1, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS);
	open_f(c, ROOT, "/w/anon", O_RDWR, 6);
	mmap_ev(c, 6, PROT_READ, MAP_SHARED | MAP_ANONYMOUS);
	weft_report r;
	finish(c, &r);
	assert_int_equal(r.nfiles, 3);
	expect_file(&r, "/w/lib.so", "r");
	expect_file(&r, "/w/shared-ro", "r");
	expect_file(&r, "/w/shared", "w");
	weft_report_release(&r);
}

static void test_xfer(void **state)
{
	(void)state;
	weft_classifier *c = setup();
	open_f(c, ROOT, "/w/src", O_RDONLY, 3);
	open_f(c, ROOT, "/w/dst", O_WRONLY, 4);
	weft_event e = ev_new(WEFT_EV_XFER, ROOT);
	e.fd = 3;
	e.fd2 = 4;
	e.ret = 0; /* nothing moved */
	feed(c, &e);
	open_f(c, ROOT, "/w/src2", O_RDONLY, 5);
	open_f(c, ROOT, "/w/dst2", O_WRONLY, 6);
	e.fd = 5;
	e.fd2 = 6;
	e.ret = 4096;
	feed(c, &e);
	weft_report r;
	finish(c, &r);
	assert_int_equal(r.nfiles, 2);
	expect_file(&r, "/w/src2", "r");
	expect_file(&r, "/w/dst2", "w");
	weft_report_release(&r);
}

/* ---- dup, cloexec, exec ---- */

static void dup_ev(weft_classifier *c, int pid, int fd, int fd2, int flags)
{
	weft_event e = ev_new(WEFT_EV_DUP, pid);
	e.fd = fd;
	e.fd2 = fd2;
	e.ret = fd2;
	e.flags = flags;
	feed(c, &e);
}

static void test_dup_aliases_and_closes_target(void **state)
{
	(void)state;
	weft_classifier *c = setup();
	open_f(c, ROOT, "/w/a", O_RDONLY, 3);
	open_f(c, ROOT, "/w/b", O_RDONLY, 4);
	dup_ev(c, ROOT, 3, 4, 0); /* dup2(3, 4): 4 (was b) is now a */
	cl(c, ROOT, 3);
	rd(c, ROOT, 4, 1);
	open_f(c, ROOT, "/w/c", O_RDONLY, 5);
	dup_ev(c, ROOT, 0, 5, 0); /* dup2 of an untracked fd closes 5 */
	rd(c, ROOT, 5, 1);
	weft_report r;
	finish(c, &r);
	assert_int_equal(r.nfiles, 1);
	expect_file(&r, "/w/a", "r");
	weft_report_release(&r);
}

static void test_cloexec_closed_on_exec(void **state)
{
	(void)state;
	weft_classifier *c = setup();
	open_f(c, ROOT, "/w/keep", O_RDONLY, 3);
	open_f(c, ROOT, "/w/gone", O_RDONLY | O_CLOEXEC, 4);
	dup_ev(c, ROOT, 3, 5, O_CLOEXEC); /* dup3 with O_CLOEXEC */
	open_f(c, ROOT, "/w/cleared", O_RDONLY | O_CLOEXEC, 6);
	weft_event e = ev_new(WEFT_EV_SETCLOEXEC, ROOT);
	e.fd = 6;
	e.flags = 0;
	feed(c, &e);
	open_f(c, ROOT, "/w/set", O_RDONLY, 7);
	e.fd = 7;
	e.flags = O_CLOEXEC;
	feed(c, &e);
	const char *argv[] = {"cat"};
	exec_ev(c, ROOT, "/bin/cat", argv, 1);
	for (int fd = 3; fd <= 7; fd++)
		rd(c, ROOT, fd, 1);
	weft_report r;
	finish(c, &r);
	assert_int_equal(r.nfiles, 2);
	expect_file(&r, "/w/keep", "r");
	expect_file(&r, "/w/cleared", "r");
	weft_report_release(&r);
}

/* ---- fork, clone, exec, exit ---- */

static void test_fork_copies_fd_table(void **state)
{
	(void)state;
	weft_classifier *c = setup();
	open_f(c, ROOT, "/w/shared-open", O_RDONLY, 3);
	fork_ev(c, ROOT, 200, 0);
	cl(c, 200, 3); /* the child's close leaves the parent's fd */
	rd(c, ROOT, 3, 1);
	open_f(c, 200, "/w/child-only", O_RDONLY, 4);
	rd(c, ROOT, 4, 1); /* fd 4 is not the parent's */
	weft_report r;
	finish(c, &r);
	assert_int_equal(r.nfiles, 1);
	expect_file(&r, "/w/shared-open", "r");
	weft_report_release(&r);
}

static void test_clone_files_shares_fd_table(void **state)
{
	(void)state;
	weft_classifier *c = setup();
	fork_ev(c, ROOT, 200, CLONE_FILES);
	open_f(c, 200, "/w/by-child", O_RDONLY, 3);
	rd(c, ROOT, 3, 1); /* the parent sees the child's fd */
	open_f(c, ROOT, "/w/closed", O_RDONLY, 4);
	cl(c, 200, 4);
	rd(c, ROOT, 4, 1);
	/* exec unshares the table: the child's later close stays its own. */
	open_f(c, ROOT, "/w/kept", O_RDONLY, 6);
	const char *argv[] = {"x"};
	exec_ev(c, 200, "/bin/x", argv, 1);
	open_f(c, ROOT, "/w/after", O_RDONLY, 5);
	cl(c, 200, 6);
	rd(c, ROOT, 6, 1);
	rd(c, 200, 5, 1); /* not the child's */
	weft_report r;
	finish(c, &r);
	assert_int_equal(r.nfiles, 2);
	expect_file(&r, "/w/by-child", "r");
	expect_file(&r, "/w/kept", "r");
	weft_report_release(&r);
}

static void test_clone_fs_shares_cwd(void **state)
{
	(void)state;
	weft_classifier *c = setup();
	fork_ev(c, ROOT, 200, CLONE_FS);
	fork_ev(c, ROOT, 300, 0);
	path_ev(c, WEFT_EV_CHDIR, 200, "/elsewhere", 0);
	open_f(c, ROOT, "a", O_RDONLY, 3);
	rd(c, ROOT, 3, 1);
	open_f(c, 300, "b", O_RDONLY, 3);
	rd(c, 300, 3, 1);
	weft_report r;
	finish(c, &r);
	expect_file(&r, "/elsewhere/a", "r");
	expect_file(&r, "/w/b", "r");
	weft_report_release(&r);
}

static void test_threads_share_process(void **state)
{
	(void)state;
	weft_classifier *c = setup();
	fork_ev(c, ROOT, 101,
		CLONE_THREAD | CLONE_FILES | CLONE_FS | CLONE_VM |
			CLONE_SIGHAND);
	open_f(c, 101, "/w/t", O_RDONLY, 3);
	rd(c, ROOT, 3, 1);
	exit_ev(c, 101, 0, 0); /* a thread ends, the process lives on */
	rd(c, ROOT, 3, 1);
	weft_report r;
	finish(c, &r);
	assert_int_equal(r.nprocesses, 1);
	assert_false(r.processes[0].exited);
	expect_file(&r, "/w/t", "r");
	weft_report_release(&r);
}

static void test_exec_replaces_image_and_kills_threads(void **state)
{
	(void)state;
	weft_classifier *c = setup();
	fork_ev(c, ROOT, 101, CLONE_THREAD | CLONE_FILES | CLONE_FS);
	const char *argv[] = {"python", "train.py"};
	exec_ev(c, ROOT, "/usr/bin/python", argv, 2);
	/* Thread 101 is gone: its events make a new, unknown task. */
	open_f(c, ROOT, "/w/x", O_RDONLY, 3);
	rd(c, 101, 3, 1);
	weft_report r;
	finish(c, &r);
	const weft_process_rec *p = find_proc(&r, ROOT);
	assert_non_null(p);
	assert_int_equal(p->argc, 2);
	assert_string_equal(p->argv[1], "train.py");
	assert_string_equal(p->exe, "/usr/bin/python");
	assert_string_equal(p->cwd, "/w");
	expect_no_file(&r, "/w/x");
	weft_report_release(&r);
}

static void test_exec_by_thread_after_leader_ended(void **state)
{
	(void)state;
	weft_classifier *c = setup();
	fork_ev(c, ROOT, 101, CLONE_THREAD | CLONE_FILES | CLONE_FS);
	open_f(c, ROOT, "/w/kept", O_RDONLY, 3);
	exit_ev(c, ROOT, 0, 0); /* the leader thread alone ends */
	const char *argv[] = {"y"};
	exec_ev(c, ROOT, "/bin/y", argv, 1); /* thread 101 exec'd */
	rd(c, ROOT, 3, 1);
	weft_report r;
	finish(c, &r);
	/* The seeded root had touched nothing: the exec'd image replaces
	 * it (weft's launcher becoming the workload). */
	assert_int_equal(r.nprocesses, 1);
	assert_string_equal(r.processes[0].exe, "/bin/y");
	expect_file(&r, "/w/kept", "r");
	assert_int_equal(r.nwarnings, 0);
	weft_report_release(&r);
}

static void test_process_records(void **state)
{
	(void)state;
	weft_classifier *c = setup();
	fork_ev(c, ROOT, 200, 0);
	path_ev(c, WEFT_EV_CHDIR, ROOT, "/moved", 0);
	fork_ev(c, 200, 300, 0);
	const char *argv[] = {"make", "-j2"};
	exec_ev(c, 300, "/usr/bin/make", argv, 2);
	exit_ev(c, 300, 2, 1);
	exit_ev(c, 200, 128 + 9, 1);
	weft_report r;
	finish(c, &r);
	/* One record per program image; 300's image between its fork and
	 * its exec touched nothing and started nothing: make replaced it. */
	assert_int_equal(r.nprocesses, 3);
	/* First-seen order. */
	assert_int_equal(r.processes[0].pid, ROOT);
	assert_int_equal(r.processes[1].pid, 200);
	assert_int_equal(r.processes[2].pid, 300);
	const weft_process_rec *root = &r.processes[0], *p2 = &r.processes[1],
			       *p3 = &r.processes[2];
	for (uint32_t i = 0; i < 3; i++) {
		assert_true(r.processes[i].has_index);
		assert_int_equal(r.processes[i].index, i);
	}
	assert_false(root->has_parent);
	assert_true(p2->has_parent);
	assert_int_equal(p2->parent, 0);
	assert_false(p2->by_exec);
	assert_int_equal(p3->parent, 1);
	assert_false(p3->by_exec);
	assert_false(p3->execd);
	assert_int_equal(root->ppid, 0);
	assert_false(root->exited);
	assert_int_equal(p2->ppid, ROOT);
	assert_true(p2->exited);
	assert_int_equal(p2->exit_code, 137);
	/* Inherited until exec. */
	assert_string_equal(p2->exe, "/bin/sh");
	assert_int_equal(p2->argc, 3);
	assert_string_equal(p2->argv[0], "sh");
	assert_string_equal(p2->cwd, "/w"); /* forked before the chdir */
	assert_int_equal(p3->ppid, 200);
	assert_true(p3->exited);
	assert_int_equal(p3->exit_code, 2);
	assert_string_equal(p3->exe, "/usr/bin/make");
	assert_int_equal(p3->argc, 2);
	weft_report_release(&r);
}

static void test_pid_reuse_makes_new_process(void **state)
{
	(void)state;
	weft_classifier *c = setup();
	fork_ev(c, ROOT, 200, 0);
	open_f(c, 200, "/w/old", O_RDONLY, 3);
	exit_ev(c, 200, 0, 1);
	fork_ev(c, ROOT, 200, 0);
	rd(c, 200, 3, 1); /* the new 200 never had fd 3 */
	weft_report r;
	finish(c, &r);
	assert_int_equal(r.nprocesses, 3);
	assert_true(r.processes[1].exited);
	assert_false(r.processes[2].exited);
	assert_int_equal(r.nfiles, 0);
	weft_report_release(&r);
}

/* I/O through /proc magic links reaches the real file. */
static void test_proc_magic_links(void **state)
{
	(void)state;
	weft_classifier *c = setup();
	open_f(c, ROOT, "/w/a", O_RDONLY, 3);
	open_f(c, ROOT, "/proc/self/fd/3", O_WRONLY, 4);
	wr(c, ROOT, 4, 1);
	open_f(c, ROOT, "/proc/self/cwd/b", O_RDONLY, 5);
	rd(c, ROOT, 5, 1);
	char p[64];
	snprintf(p, sizeof(p), "/proc/%d/cwd/sub/../c", ROOT);
	open_f(c, ROOT, p, O_RDONLY, 6);
	rd(c, ROOT, 6, 1);
	open_f(c, ROOT, "/proc/self/fd/99", O_RDONLY, 7); /* unknown fd */
	rd(c, ROOT, 7, 1);
	open_f(c, ROOT, "/proc/self/status", O_RDONLY, 8);
	rd(c, ROOT, 8, 1);
	weft_report r;
	finish(c, &r);
	assert_int_equal(r.nfiles, 3);
	expect_file(&r, "/w/a", "w");
	expect_file(&r, "/w/b", "r");
	expect_file(&r, "/w/c", "r");
	weft_report_release(&r);
}

/* ---- Publication: rename, link, unlink, truncate ---- */

static void test_rename_atomic_save(void **state)
{
	(void)state;
	weft_classifier *c = setup();
	openat_ex(c, ROOT, AT_FDCWD, "f.tmp", O_WRONLY | O_CREAT | O_EXCL, 3,
		  WEFT_CREATED_UNKNOWN);
	wr(c, ROOT, 3, 10);
	ren(c, ROOT, "f.tmp", "f", 0);
	wr(c, ROOT, 3, 10);
	/* An open file follows its path: reading it after the rename reads
	 * the run's own output, not the old name. */
	open_f(c, ROOT, "/w/src", O_RDONLY, 4);
	ren(c, ROOT, "src", "dst", 0);
	assert_true(weft_classifier_fd_read_known(c, ROOT, 4));
	rd(c, ROOT, 4, 10);
	weft_report r;
	finish(c, &r);
	assert_int_equal(r.nfiles, 4);
	expect_file(&r, "/w/src", "");
	assert_string_equal(find_file(&r, "/w/src")->renamed_to, "/w/dst");
	expect_file(&r, "/w/dst", "w");
	expect_file(&r, "/w/f.tmp", "wc");
	assert_string_equal(find_file(&r, "/w/f.tmp")->renamed_to, "/w/f");
	/* Without a hint the new name inherits created: the run made this
	 * content. */
	expect_file(&r, "/w/f", "wc");
	assert_null(find_file(&r, "/w/f")->renamed_to);
	weft_report_release(&r);
}

/* "created" is about the name: a rename over a name that existed before
 * (the backend says so) does not create it, one onto a free name does. */
static void test_rename_created_hint(void **state)
{
	(void)state;
	weft_classifier *c = setup();
	openat_ex(c, ROOT, AT_FDCWD, "a.tmp", O_WRONLY | O_CREAT | O_EXCL, 3,
		  WEFT_CREATED_YES);
	wr(c, ROOT, 3, 10);
	weft_event e = ev_new(WEFT_EV_RENAME, ROOT);
	e.fd = e.fd2 = AT_FDCWD;
	e.path = "a.tmp";
	e.path2 = "existing";
	e.created = WEFT_CREATED_NO;
	feed(c, &e);
	e.path = "/w/in";
	e.path2 = "fresh";
	e.created = WEFT_CREATED_YES;
	feed(c, &e);
	weft_report r;
	finish(c, &r);
	expect_file(&r, "/w/existing", "w");
	expect_file(&r, "/w/fresh", "wc");
	weft_report_release(&r);
}

static void test_rename_of_input_and_failed_rename(void **state)
{
	(void)state;
	weft_classifier *c = setup();
	open_f(c, ROOT, "/w/in", O_RDONLY, 3);
	rd(c, ROOT, 3, 1);
	ren(c, ROOT, "/w/in", "/w/moved", 0);
	rd(c, ROOT, 3, 1); /* reads /w/moved now, which the run produced */
	weft_event e = ev_new(WEFT_EV_RENAME, ROOT);
	e.fd = e.fd2 = AT_FDCWD;
	e.path = "/w/a";
	e.path2 = "/w/b";
	e.ret = -2;
	feed(c, &e);
	weft_report r;
	finish(c, &r);
	assert_int_equal(r.nfiles, 2);
	expect_file(&r, "/w/in", "r");
	assert_string_equal(find_file(&r, "/w/in")->renamed_to, "/w/moved");
	expect_file(&r, "/w/moved", "w");
	weft_report_release(&r);
}

static void test_rename_exchange(void **state)
{
	(void)state;
	weft_classifier *c = setup();
	ren(c, ROOT, "/w/a", "/w/b", 2 /* RENAME_EXCHANGE */);
	weft_report r;
	finish(c, &r);
	assert_int_equal(r.nfiles, 2);
	expect_file(&r, "/w/a", "w");
	expect_file(&r, "/w/b", "w");
	assert_null(find_file(&r, "/w/a")->renamed_to);
	assert_null(find_file(&r, "/w/b")->renamed_to);
	weft_report_release(&r);
}

static void test_rename_directory_moves_children(void **state)
{
	(void)state;
	weft_classifier *c = setup();
	openat_ex(c, ROOT, AT_FDCWD, "out.tmp/x.o", O_WRONLY | O_CREAT, 3,
		  WEFT_CREATED_YES);
	wr(c, ROOT, 3, 1);
	open_f(c, ROOT, "out.tmp/sub/in", O_RDONLY, 4);
	rd(c, ROOT, 4, 1);
	open_f(c, ROOT, "out.tmp/open", O_WRONLY, 5);
	path_ev(c, WEFT_EV_UNLINK, ROOT, "out.tmp/gone", 0);
	openat_ex(c, ROOT, AT_FDCWD, "out.tmp/a", O_WRONLY | O_CREAT, 6,
		  WEFT_CREATED_YES);
	ren(c, ROOT, "out.tmp/a", "out.tmp/b", 0);
	ren(c, ROOT, "out.tmp", "out", 0);
	wr(c, ROOT, 5, 1); /* the open file moved with its directory */
	weft_report r;
	finish(c, &r);
	expect_file(&r, "/w/out/x.o", "wc");
	expect_file(&r, "/w/out.tmp/x.o", "wc");
	assert_string_equal(find_file(&r, "/w/out.tmp/x.o")->renamed_to,
			    "/w/out/x.o");
	expect_file(&r, "/w/out/sub/in", "w");
	expect_file(&r, "/w/out.tmp/sub/in", "r");
	expect_file(&r, "/w/out/open", "w");
	expect_no_file(&r, "/w/out.tmp/open");
	expect_file(&r, "/w/out.tmp/gone", "d");
	expect_no_file(&r, "/w/out/gone");
	/* a had already moved to b: only b moves on. */
	expect_no_file(&r, "/w/out/a");
	expect_file(&r, "/w/out/b", "wc");
	expect_file(&r, "/w/out.tmp/b", "wc");
	assert_string_equal(find_file(&r, "/w/out.tmp/b")->renamed_to,
			    "/w/out/b");
	/* The directories themselves are not file records. */
	expect_no_file(&r, "/w/out");
	expect_no_file(&r, "/w/out.tmp");
	weft_report_release(&r);
}

static void test_link_and_symlink(void **state)
{
	(void)state;
	weft_classifier *c = setup();
	two_paths(c, WEFT_EV_LINK, ROOT, AT_FDCWD, "/w/src", AT_FDCWD, "hard",
		  0);
	two_paths(c, WEFT_EV_LINK, ROOT, -1, "../target/text", AT_FDCWD, "sym",
		  0);
	open_f(c, ROOT, "/w/hard", O_RDONLY, 3);
	rd(c, ROOT, 3, 1); /* produced by the run: not an input */
	weft_report r;
	finish(c, &r);
	assert_int_equal(r.nfiles, 2);
	/* link never replaces a name (EEXIST): the new name is created. */
	expect_file(&r, "/w/hard", "wc");
	expect_file(&r, "/w/sym", "wc");
	expect_no_file(&r, "/target/text");
	expect_no_file(&r, "/w/src");
	weft_report_release(&r);
}

static void test_unlink_and_recreate(void **state)
{
	(void)state;
	weft_classifier *c = setup();
	path_ev(c, WEFT_EV_UNLINK, ROOT, "stale", 0);
	path_ev(c, WEFT_EV_UNLINK, ROOT, "again", 0);
	openat_ex(c, ROOT, AT_FDCWD, "again", O_WRONLY | O_CREAT, 3,
		  WEFT_CREATED_YES);
	path_ev(c, WEFT_EV_UNLINK, ROOT, "somedir", AT_REMOVEDIR);
	/* A temp file: created and removed by the run. */
	openat_ex(c, ROOT, AT_FDCWD, "tmp", O_RDWR | O_CREAT, 4,
		  WEFT_CREATED_YES);
	path_ev(c, WEFT_EV_UNLINK, ROOT, "tmp", 0);
	weft_report r;
	finish(c, &r);
	assert_int_equal(r.nfiles, 3);
	expect_file(&r, "/w/stale", "d");
	expect_file(&r, "/w/again", "wc");
	expect_file(&r, "/w/tmp", "wcd");
	weft_report_release(&r);
}

static void test_truncate_and_ftruncate(void **state)
{
	(void)state;
	weft_classifier *c = setup();
	path_ev(c, WEFT_EV_TRUNCATE, ROOT, "t1", 0);
	open_f(c, ROOT, "/w/t2", O_RDWR, 3);
	fd_ev(c, WEFT_EV_FTRUNCATE, ROOT, 3, 0);
	open_f(c, ROOT, "/w/t3", O_RDWR, 4);
	fd_ev(c, WEFT_EV_FTRUNCATE, ROOT, 4, -1); /* failed */
	weft_report r;
	finish(c, &r);
	assert_int_equal(r.nfiles, 2);
	expect_file(&r, "/w/t1", "w");
	expect_file(&r, "/w/t2", "w");
	weft_report_release(&r);
}


/* ---- Attribution: which process did what, which version it saw ---- */

/* The touch of the last image of pid on path, or NULL. */
static const weft_file_touch *touch_of(const weft_report *r, const char *path,
				       int pid)
{
	const weft_file_rec *f = find_file(r, path);
	const weft_process_rec *p = find_proc(r, pid);
	assert_non_null(f);
	assert_non_null(p);
	for (uint32_t i = 0; i < f->ntouches; i++)
		if (f->touches[i].proc == p->index)
			return &f->touches[i];
	return NULL;
}

static uint32_t index_of(const weft_report *r, int pid)
{
	const weft_process_rec *p = find_proc(r, pid);
	assert_non_null(p);
	return p->index;
}

static void open_ident(weft_classifier *c, int pid, const char *path,
		       int flags, int fd, int64_t size, int64_t mtime)
{
	weft_event e = ev_new(WEFT_EV_OPEN, pid);
	e.fd = AT_FDCWD;
	e.path = path;
	e.flags = flags;
	e.ret = fd;
	e.has_stat = true;
	e.st_mode = S_IFREG;
	e.st_dev = 8;
	e.st_ino = 99;
	e.st_size = size;
	e.st_mtime_ns = mtime;
	feed(c, &e);
}

static void spawn(weft_classifier *c, int child, const char *exe)
{
	const char *argv[] = {exe};
	fork_ev(c, ROOT, child, 0);
	exec_ev(c, child, exe, argv, 1);
}

/* cc writes a.o, ar reads it and writes lib.a: an edge between them, by
 * the version cc wrote (the final one). */
static void test_touch_intermediate(void **state)
{
	(void)state;
	weft_classifier *c = setup();
	spawn(c, 200, "/usr/bin/cc");
	open_f(c, 200, "/w/a.o", O_WRONLY | O_CREAT | O_TRUNC, 3);
	wr(c, 200, 3, 10);
	cl(c, 200, 3);
	exit_ev(c, 200, 0, 1);
	spawn(c, 300, "/usr/bin/ar");
	open_f(c, 300, "/w/a.o", O_RDONLY, 3);
	rd(c, 300, 3, 10);
	open_f(c, 300, "/w/lib.a", O_WRONLY | O_CREAT | O_TRUNC, 4);
	wr(c, 300, 4, 10);
	exit_ev(c, 300, 0, 1);
	weft_report r;
	finish(c, &r);
	const weft_file_touch *cc = touch_of(&r, "/w/a.o", 200);
	const weft_file_touch *ar = touch_of(&r, "/w/a.o", 300);
	assert_non_null(cc);
	assert_non_null(ar);
	assert_int_equal(cc->flags, WEFT_TOUCH_WRITTEN | WEFT_TOUCH_FINAL);
	assert_int_equal(ar->flags, WEFT_TOUCH_READ | WEFT_TOUCH_SRC_RUN);
	assert_int_equal(ar->src, index_of(&r, 200));
	/* The pre-exec images did nothing: no touches. */
	assert_int_equal(find_file(&r, "/w/a.o")->ntouches, 2);
	assert_int_equal(touch_of(&r, "/w/lib.a", 300)->flags,
			 WEFT_TOUCH_WRITTEN | WEFT_TOUCH_FINAL);
	/* At run level it stays internal: written, not read. */
	expect_file(&r, "/w/a.o", "w");
	weft_report_release(&r);
}

/* sh -c 'cat > out': the shell's child opens (creates) out, cat writes
 * through the inherited fd: cat made the final version, no update of the
 * empty one. */
static void test_touch_redirect(void **state)
{
	(void)state;
	weft_classifier *c = setup();
	fork_ev(c, ROOT, 200, 0);
	openat_ex(c, 200, AT_FDCWD, "/w/out", O_WRONLY | O_CREAT | O_TRUNC, 1,
		  WEFT_CREATED_YES);
	const char *argv[] = {"cat"};
	exec_ev(c, 200, "/bin/cat", argv, 1);
	wr(c, 200, 1, 5);
	exit_ev(c, 200, 0, 1);
	weft_report r;
	finish(c, &r);
	const weft_file_rec *f = find_file(&r, "/w/out");
	assert_int_equal(f->ntouches, 2);
	/* The child before its exec: created the (empty) file. */
	assert_int_equal(f->touches[0].flags,
			 WEFT_TOUCH_WRITTEN | WEFT_TOUCH_CREATED);
	assert_int_equal(f->touches[1].proc, index_of(&r, 200));
	assert_int_equal(f->touches[1].flags,
			 WEFT_TOUCH_WRITTEN | WEFT_TOUCH_FINAL);
	weft_report_release(&r);
}

/* An append to content the run found: an update of that version. */
static void test_touch_update_found(void **state)
{
	(void)state;
	weft_classifier *c = setup();
	spawn(c, 200, "/usr/bin/logger");
	open_ident(c, 200, "/w/log", O_WRONLY | O_APPEND, 3, 10, 5);
	wr(c, 200, 3, 4);
	exit_ev(c, 200, 0, 1);
	weft_report r;
	finish(c, &r);
	assert_int_equal(touch_of(&r, "/w/log", 200)->flags,
			 WEFT_TOUCH_WRITTEN | WEFT_TOUCH_UPDATED |
				 WEFT_TOUCH_FINAL);
	weft_report_release(&r);
}

/* The writer writes again after the reader opened the file: the reader's
 * version is not sure. A reader that opened after a change from outside
 * the run read a version nobody in the run made or first saw. */
static void test_touch_weak_and_unknown(void **state)
{
	(void)state;
	weft_classifier *c = setup();
	spawn(c, 200, "/bin/w");
	spawn(c, 300, "/bin/r");
	open_f(c, 200, "/w/f", O_WRONLY | O_CREAT | O_TRUNC, 3);
	wr(c, 200, 3, 1);
	open_f(c, 300, "/w/f", O_RDONLY, 3);
	rd(c, 300, 3, 1);
	wr(c, 200, 3, 1);
	open_ident(c, 300, "/w/g", O_RDONLY, 4, 10, 5);
	rd(c, 300, 4, 1);
	spawn(c, 400, "/bin/r2");
	open_ident(c, 400, "/w/g", O_RDONLY, 3, 11, 6);
	rd(c, 400, 3, 1);
	weft_report r;
	finish(c, &r);
	assert_int_equal(touch_of(&r, "/w/f", 300)->flags,
			 WEFT_TOUCH_READ | WEFT_TOUCH_SRC_RUN |
				 WEFT_TOUCH_WEAK);
	assert_int_equal(touch_of(&r, "/w/g", 300)->flags, WEFT_TOUCH_READ);
	assert_int_equal(touch_of(&r, "/w/g", 400)->flags,
			 WEFT_TOUCH_READ | WEFT_TOUCH_SRC_UNKNOWN);
	weft_report_release(&r);
}

/* Write a temporary file, rename it over the output, another process
 * reads the output: its source is the writer. */
static void test_touch_rename(void **state)
{
	(void)state;
	weft_classifier *c = setup();
	spawn(c, 200, "/bin/save");
	openat_ex(c, 200, AT_FDCWD, "/w/.tmp", O_WRONLY | O_CREAT | O_EXCL, 3,
		  WEFT_CREATED_YES);
	wr(c, 200, 3, 10);
	cl(c, 200, 3);
	spawn(c, 300, "/bin/mv");
	ren(c, 300, "/w/.tmp", "/w/out", 0);
	spawn(c, 400, "/bin/load");
	open_f(c, 400, "/w/out", O_RDONLY, 3);
	rd(c, 400, 3, 10);
	weft_report r;
	finish(c, &r);
	const weft_file_touch *mv = touch_of(&r, "/w/.tmp", 300);
	assert_int_equal(mv->flags, WEFT_TOUCH_RENAMED | WEFT_TOUCH_SRC_RUN);
	assert_int_equal(mv->src, index_of(&r, 200));
	assert_int_equal(touch_of(&r, "/w/out", 300)->flags &
				 ~WEFT_TOUCH_CREATED,
			 WEFT_TOUCH_WRITTEN | WEFT_TOUCH_FINAL);
	const weft_file_touch *load = touch_of(&r, "/w/out", 400);
	assert_int_equal(load->flags, WEFT_TOUCH_READ | WEFT_TOUCH_SRC_RUN);
	assert_int_equal(load->src, index_of(&r, 300));
	weft_report_release(&r);
}

/* Two writers in turn, one still holding the file open: who wrote last
 * is not known, so nothing about the file's versions is sure. */
static void test_touch_interleaved(void **state)
{
	(void)state;
	weft_classifier *c = setup();
	spawn(c, 200, "/bin/a");
	spawn(c, 300, "/bin/b");
	open_f(c, 200, "/w/f", O_WRONLY | O_CREAT | O_TRUNC, 3);
	wr(c, 200, 3, 1);
	open_f(c, 300, "/w/f", O_WRONLY, 3);
	wr(c, 300, 3, 1);
	cl(c, 200, 3);
	weft_report r;
	finish(c, &r);
	assert_true(touch_of(&r, "/w/f", 200)->flags & WEFT_TOUCH_WEAK);
	assert_true(touch_of(&r, "/w/f", 300)->flags & WEFT_TOUCH_WEAK);
	weft_report_release(&r);
}

/* ---- Hot-path queries ---- */

static void test_fd_known(void **state)
{
	(void)state;
	weft_classifier *c = setup();
	assert_true(weft_classifier_fd_read_known(c, ROOT, 0)); /* unknown */
	assert_true(weft_classifier_fd_read_known(c, 999, 3));  /* no task */
	open_f(c, ROOT, "/w/in", O_RDWR, 3);
	assert_false(weft_classifier_fd_read_known(c, ROOT, 3));
	assert_false(weft_classifier_fd_write_known(c, ROOT, 3));
	rd(c, ROOT, 3, 1);
	assert_true(weft_classifier_fd_read_known(c, ROOT, 3));
	assert_false(weft_classifier_fd_write_known(c, ROOT, 3));
	wr(c, ROOT, 3, 1);
	assert_true(weft_classifier_fd_write_known(c, ROOT, 3));
	/* Another fd on the same path shares the path's state. */
	open_f(c, ROOT, "/w/in", O_RDONLY, 4);
	assert_true(weft_classifier_fd_read_known(c, ROOT, 4));
	/* Produced paths: reads can not count; the first write does (an
	 * empty version or one with bytes). */
	open_f(c, ROOT, "/w/out", O_WRONLY | O_TRUNC, 5);
	assert_true(weft_classifier_fd_read_known(c, ROOT, 5));
	assert_false(weft_classifier_fd_write_known(c, ROOT, 5));
	wr(c, ROOT, 5, 1);
	assert_true(weft_classifier_fd_write_known(c, ROOT, 5));
	/* Another process: its own reads and writes count. */
	fork_ev(c, ROOT, 400, 0);
	assert_false(weft_classifier_fd_read_known(c, 400, 3));
	assert_false(weft_classifier_fd_write_known(c, 400, 3));
	rd(c, 400, 3, 1);
	assert_true(weft_classifier_fd_read_known(c, 400, 3));
	/* Untracked and ignored. */
	open_stat(c, ROOT, "/w/d", 6, S_IFDIR);
	assert_true(weft_classifier_fd_read_known(c, ROOT, 6));
	open_f(c, ROOT, "/dev/zero", O_RDWR, 7);
	assert_true(weft_classifier_fd_read_known(c, ROOT, 7));
	assert_true(weft_classifier_fd_write_known(c, ROOT, 7));
	weft_classifier_free(c);
}

/* ---- finish ---- */

static void test_finish_sorts_by_bytes(void **state)
{
	(void)state;
	weft_classifier *c = setup();
	const char *paths[] = {"/w/b",   "/w/\xff", "/w/a\nb", "/w/a",
			       "/w/a/x", "/w/B",    "/w/a b"};
	for (int i = 0; i < 7; i++) {
		open_f(c, ROOT, paths[i], O_RDONLY, 3);
		rd(c, ROOT, 3, 1);
		cl(c, ROOT, 3);
	}
	weft_report r;
	finish(c, &r);
	assert_int_equal(r.nfiles, 7);
	const char *want[] = {"/w/B",   "/w/a", "/w/a\nb", "/w/a b",
			      "/w/a/x", "/w/b", "/w/\xff"};
	for (int i = 0; i < 7; i++)
		assert_string_equal(r.files[i].path, want[i]);
	weft_report_release(&r);
}

static void test_finish_resolves_symlinked_dirs_and_merges(void **state)
{
	(void)state;
	char dir[] = "/tmp/weft-cls-XXXXXX";
	assert_non_null(mkdtemp(dir));
	/* dir is 20 bytes: these fit, and gcc can see that they do. */
	char real[64], link[64], p1[128], p2[128], want[PATH_MAX + 8];
	snprintf(real, sizeof(real), "%s/real", dir);
	snprintf(link, sizeof(link), "%s/link", dir);
	assert_int_equal(mkdir(real, 0700), 0);
	assert_int_equal(symlink("real", link), 0);
	snprintf(p1, sizeof(p1), "%s/f", real);
	snprintf(p2, sizeof(p2), "%s/f", link);

	weft_classifier *c = setup();
	open_f(c, ROOT, p1, O_RDONLY, 3);
	rd(c, ROOT, 3, 1);
	open_f(c, ROOT, p2, O_WRONLY, 4);
	wr(c, ROOT, 4, 1);
	weft_report r;
	finish(c, &r);

	char *rdir = realpath(real, NULL); /* /tmp may itself be a link */
	assert_non_null(rdir);
	snprintf(want, sizeof(want), "%s/f", rdir);
	free(rdir);
	assert_int_equal(r.nfiles, 1);
	expect_file(&r, want, "rw");
	weft_report_release(&r);
	unlink(link);
	rmdir(real);
	rmdir(dir);
}

/* A file at path holding text. */
static void make_file(const char *path, const char *text)
{
	FILE *fp = fopen(path, "w");
	assert_non_null(fp);
	assert_true(fputs(text, fp) >= 0);
	assert_int_equal(fclose(fp), 0);
}

/* The record of a file that is no symlink at the end carries the state
 * an lstat found then (the hashing's, instead of a stat of its own);
 * one reached through a link, or gone, carries none. */
static void test_finish_keeps_end_state(void **state)
{
	(void)state;
	char dir[] = "/tmp/weft-cls-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char *rdir = realpath(dir, NULL); /* /tmp may itself be a link */
	assert_non_null(rdir);
	char f[PATH_MAX + 8], t[PATH_MAX + 8], l[PATH_MAX + 8],
		gone[PATH_MAX + 8];
	snprintf(f, sizeof(f), "%s/f", rdir);
	snprintf(t, sizeof(t), "%s/t", rdir);
	snprintf(l, sizeof(l), "%s/l", rdir);
	snprintf(gone, sizeof(gone), "%s/gone", rdir);
	make_file(f, "abc");
	make_file(t, "");
	assert_int_equal(symlink("t", l), 0);

	weft_classifier *c = setup();
	open_f(c, ROOT, f, O_RDONLY, 3);
	rd(c, ROOT, 3, 1);
	open_f(c, ROOT, l, O_RDONLY, 4);
	rd(c, ROOT, 4, 1);
	open_f(c, ROOT, gone, O_RDONLY, 5);
	rd(c, ROOT, 5, 1);
	weft_report r;
	finish(c, &r);

	struct stat st;
	assert_int_equal(stat(f, &st), 0);
	assert_int_equal(r.nfiles, 3);
	for (size_t i = 0; i < r.nfiles; i++) {
		const weft_file_rec *x = &r.files[i];
		if (strcmp(x->path, f) == 0) {
			assert_true(x->has_end_stat);
			assert_true(S_ISREG(x->end_mode));
			assert_int_equal(x->end_dev, (uint64_t)st.st_dev);
			assert_int_equal(x->end_ino, (uint64_t)st.st_ino);
			assert_int_equal(x->end_size, 3);
			assert_int_equal(x->end_mtime_ns,
					 (int64_t)st.st_mtim.tv_sec *
							 1000000000 +
						 st.st_mtim.tv_nsec);
		} else {
			/* t (through l) and gone */
			assert_false(x->has_end_stat);
		}
	}
	weft_report_release(&r);
	unlink(l);
	unlink(t);
	unlink(f);
	rmdir(dir);
	free(rdir);
}

/* Enough paths that the links are resolved on two threads: every file
 * keeps its state, the links (even and odd places) reach their targets. */
static void test_finish_resolves_many(void **state)
{
	(void)state;
	enum { N = 700 };
	char dir[] = "/tmp/weft-cls-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char *rdir = realpath(dir, NULL);
	assert_non_null(rdir);
	char p[PATH_MAX + 16], l[PATH_MAX + 16];
	weft_classifier *c = setup();
	for (int i = 0; i < N; i++) {
		snprintf(p, sizeof(p), "%s/f%d", rdir, i);
		make_file(p, "");
		open_f(c, ROOT, p, O_RDONLY, 3);
		rd(c, ROOT, 3, 1);
		cl(c, ROOT, 3);
	}
	for (int i = 0; i < 2; i++) {
		snprintf(l, sizeof(l), "%s/link%d", rdir, i);
		snprintf(p, sizeof(p), "f%d", i);
		assert_int_equal(symlink(p, l), 0);
		open_f(c, ROOT, l, O_RDONLY, 3);
		rd(c, ROOT, 3, 1);
		cl(c, ROOT, 3);
	}
	weft_report r;
	finish(c, &r);
	assert_int_equal(r.nfiles, N); /* the links merged into f0, f1 */
	for (size_t i = 0; i < r.nfiles; i++)
		assert_true(r.files[i].has_end_stat);
	for (int i = 0; i < 2; i++) {
		snprintf(p, sizeof(p), "%s/f%d", rdir, i);
		snprintf(l, sizeof(l), "%s/link%d", rdir, i);
		const weft_file_rec *f = find_file(&r, p);
		assert_non_null(f);
		/* Read by both names: the link's is not the only one. */
		assert_null(f->used_path);
		expect_no_file(&r, l);
		unlink(l);
	}
	weft_report_release(&r);
	for (int i = 0; i < N; i++) {
		snprintf(p, sizeof(p), "%s/f%d", rdir, i);
		unlink(p);
	}
	rmdir(dir);
	free(rdir);
}

static void test_finish_twice_and_unknown_kind(void **state)
{
	(void)state;
	weft_classifier *c = setup();
	weft_event e = ev_new(WEFT_EV_KIND_MAX, ROOT);
	assert_int_equal(weft_classifier_feed(c, &e), WEFT_EINVAL);
	weft_report r;
	weft_report_init(&r);
	assert_int_equal(weft_classifier_finish(c, &r), WEFT_OK);
	assert_int_equal(r.dropped_events, 1);
	assert_int_equal(weft_classifier_finish(c, &r), WEFT_EINVAL);
	e = ev_new(WEFT_EV_READ, ROOT);
	assert_int_equal(weft_classifier_feed(c, &e), WEFT_EINVAL);
	weft_classifier_free(c);
	weft_report_release(&r);
}

static void test_many_fds_and_processes(void **state)
{
	(void)state;
	/* Grows the fd table, the task table and the path table well past
	 * their first sizes. */
	weft_classifier *c = setup();
	char path[64];
	for (int i = 0; i < 3000; i++) {
		snprintf(path, sizeof(path), "/w/many/%d", i);
		open_f(c, ROOT, path, O_RDONLY, 10 + i);
	}
	for (int i = 0; i < 600; i++)
		fork_ev(c, ROOT, 1000 + i, 0);
	for (int i = 0; i < 600; i += 2)
		exit_ev(c, 1000 + i, 0, 1);
	for (int i = 1; i < 600; i += 2)
		rd(c, 1000 + i, 10 + i, 1);
	open_f(c, ROOT, "/w/high", O_RDONLY, 1000000);
	rd(c, ROOT, 1000000, 1);
	open_f(c, ROOT, "/w/too-high", O_RDONLY, 1 << 23);
	weft_report r;
	finish(c, &r);
	assert_int_equal(r.nprocesses, 601);
	assert_int_equal(r.nfiles, 301);
	assert_int_equal(r.dropped_events, 1); /* the fd above the limit */
	expect_file(&r, "/w/high", "r");
	expect_file(&r, "/w/many/1", "r");
	expect_no_file(&r, "/w/many/0");
	weft_report_release(&r);
}

/* ---- Micro-benchmark (printed, never asserted) ---- */

static void test_bench_open_read_close(void **state)
{
	(void)state;
	weft_classifier *c = setup();
	const char *n = getenv("WEFT_CLS_BENCH_N");
	long iters = n ? atol(n) : 200000;
	weft_event op = ev_new(WEFT_EV_OPEN, ROOT),
		   rdv = ev_new(WEFT_EV_READ, ROOT),
		   clv = ev_new(WEFT_EV_CLOSE, ROOT);
	op.fd = AT_FDCWD;
	op.path = "/home/user/project/data/input-file.csv";
	op.flags = O_RDONLY | O_CLOEXEC;
	op.ret = 3;
	op.has_stat = true;
	op.st_mode = S_IFREG | 0644;
	rdv.fd = 3;
	rdv.ret = 4096;
	clv.fd = 3;
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (long i = 0; i < iters; i++) {
		weft_classifier_feed(c, &op);
		weft_classifier_feed(c, &rdv);
		weft_classifier_feed(c, &clv);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double ns = (double)(t1.tv_sec - t0.tv_sec) * 1e9 +
		    (double)(t1.tv_nsec - t0.tv_nsec);
	printf("classifier: %.1f ns per open/read/close (%ld iterations)\n",
	       ns / (double)iters, iters);
	weft_classifier_free(c);
}

/* Windows: each cut reports what happened since the previous one; an fd
 * open across a cut counts in the window where it is used; a file written
 * in one window is an input of a later window that reads it. */
static void test_cut_windows(void **state)
{
	(void)state;
	weft_classifier *c = setup();
	weft_report w1, w2;
	open_f(c, ROOT, "/w/a", O_RDONLY, 3);
	rd(c, ROOT, 3, 10);
	open_f(c, ROOT, "/w/long", O_RDONLY, 4); /* open, not read yet */
	weft_report_init(&w1);
	assert_int_equal(weft_classifier_cut(c, &w1), WEFT_OK);
	expect_file(&w1, "/w/a", "r");
	assert_null(find_file(&w1, "/w/long"));
	assert_int_equal(w1.nprocesses, 0);

	rd(c, ROOT, 4, 10); /* the fd opened in the first window */
	open_f(c, ROOT, "/w/out", O_WRONLY | O_CREAT | O_TRUNC, 5);
	wr(c, ROOT, 5, 3);
	cl(c, ROOT, 5);
	weft_report_init(&w2);
	assert_int_equal(weft_classifier_cut(c, &w2), WEFT_OK);
	assert_null(find_file(&w2, "/w/a"));
	expect_file(&w2, "/w/long", "r");
	expect_file(&w2, "/w/out", "w");

	open_f(c, ROOT, "/w/out", O_RDONLY, 5); /* the last window's output */
	rd(c, ROOT, 5, 3);
	weft_report r;
	finish(c, &r);
	expect_file(&r, "/w/out", "r");
	assert_null(find_file(&r, "/w/long"));
	assert_int_equal(r.nprocesses, 1);
	weft_report_release(&w1);
	weft_report_release(&w2);
	weft_report_release(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_normalize),
		cmocka_unit_test(test_environment),
		cmocka_unit_test(test_read_records_input_with_first_stat),
		cmocka_unit_test(test_no_bytes_no_record),
		cmocka_unit_test(test_write_records_output),
		cmocka_unit_test(test_reading_own_output_is_not_input),
		cmocka_unit_test(test_trunc_with_write_produces),
		cmocka_unit_test(test_creat_hints),
		cmocka_unit_test(test_non_regular_files_are_not_artifacts),
		cmocka_unit_test(test_pseudo_and_ignored_paths),
		cmocka_unit_test(test_dev_shm_is_tracked),
		cmocka_unit_test(test_unknown_fds_and_seeded_fds),
		cmocka_unit_test(test_relative_paths_dirfd_and_cwd),
		cmocka_unit_test(test_too_long_path_is_dropped_and_counted),
		cmocka_unit_test(test_mmap),
		cmocka_unit_test(test_xfer),
		cmocka_unit_test(test_dup_aliases_and_closes_target),
		cmocka_unit_test(test_cloexec_closed_on_exec),
		cmocka_unit_test(test_fork_copies_fd_table),
		cmocka_unit_test(test_clone_files_shares_fd_table),
		cmocka_unit_test(test_clone_fs_shares_cwd),
		cmocka_unit_test(test_threads_share_process),
		cmocka_unit_test(test_exec_replaces_image_and_kills_threads),
		cmocka_unit_test(test_exec_by_thread_after_leader_ended),
		cmocka_unit_test(test_process_records),
		cmocka_unit_test(test_touch_intermediate),
		cmocka_unit_test(test_touch_redirect),
		cmocka_unit_test(test_touch_update_found),
		cmocka_unit_test(test_touch_weak_and_unknown),
		cmocka_unit_test(test_touch_rename),
		cmocka_unit_test(test_touch_interleaved),
		cmocka_unit_test(test_pid_reuse_makes_new_process),
		cmocka_unit_test(test_rename_atomic_save),
		cmocka_unit_test(test_rename_of_input_and_failed_rename),
		cmocka_unit_test(test_rename_exchange),
		cmocka_unit_test(test_rename_created_hint),
		cmocka_unit_test(test_proc_magic_links),
		cmocka_unit_test(test_rename_directory_moves_children),
		cmocka_unit_test(test_link_and_symlink),
		cmocka_unit_test(test_unlink_and_recreate),
		cmocka_unit_test(test_truncate_and_ftruncate),
		cmocka_unit_test(test_fd_known),
		cmocka_unit_test(test_finish_sorts_by_bytes),
		cmocka_unit_test(
			test_finish_resolves_symlinked_dirs_and_merges),
		cmocka_unit_test(test_finish_keeps_end_state),
		cmocka_unit_test(test_finish_resolves_many),
		cmocka_unit_test(test_finish_twice_and_unknown_kind),
		cmocka_unit_test(test_many_fds_and_processes),
		cmocka_unit_test(test_bench_open_read_close),
		cmocka_unit_test(test_cut_windows),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
