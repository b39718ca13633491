/*
 * attach.c - the ptrace backend taking over a live process tree: the
 * fallback when another backend stops working mid-run (DESIGN.md, "weft
 * never runs a workload twice"). Every thread of every live descendant of
 * this process is seized; the classifier is seeded with what /proc says
 * of processes it did not know yet (cwd, exe, argv, open files) and of fds
 * it did not know; then the usual loop runs with PTRACE_SYSCALL, since a
 * seccomp filter cannot be put into a running process.
 *
 * Descendants of this process, not of the root alone: weft is the
 * workload's child subreaper, so orphans of the workload are its children.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "ptrace_internal.h"
#include "preflight_internal.h"

/* Without PTRACE_O_EXITKILL: attached tracees run without a filter, so
 * if weft died they would simply run on untraced. */
#define PT_ATTACH_OPTIONS                                                      \
	(PTRACE_O_TRACESYSGOOD | PTRACE_O_TRACEFORK | PTRACE_O_TRACEVFORK |    \
	 PTRACE_O_TRACECLONE | PTRACE_O_TRACEEXEC)

/* Read a /proc/PID/stat's state and ppid; false when gone. */
static bool read_stat(pid_t pid, char *state, pid_t *ppid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (weft_read_small_file(path, buf, sizeof(buf)) <= 0)
		return false;
	char *p = strrchr(buf, ')');
	int pp = 0;
	if (!p || sscanf(p + 1, " %c %d", state, &pp) != 2)
		return false;
	*ppid = pp;
	return true;
}

typedef struct proc_list {
	pid_t *pid, *ppid;
	size_t n, cap;
} proc_list;

static int list_push(proc_list *l, pid_t pid, pid_t ppid)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 64;
		pid_t *a = realloc(l->pid, cap * sizeof(*a));
		if (!a)
			return -1;
		l->pid = a;
		pid_t *b = realloc(l->ppid, cap * sizeof(*b));
		if (!b)
			return -1;
		l->ppid = b;
		l->cap = cap;
	}
	l->pid[l->n] = pid;
	l->ppid[l->n++] = ppid;
	return 0;
}

static bool listed(const proc_list *l, pid_t pid)
{
	for (size_t i = 0; i < l->n; i++)
		if (l->pid[i] == pid)
			return true;
	return false;
}

/* Every live (not zombie) process below `top`, parents before children. */
static int scan_tree(pid_t top, proc_list *out)
{
	proc_list all = {0};
	DIR *d = opendir("/proc");
	if (!d)
		return -1;
	struct dirent *de;
	while ((de = readdir(d))) {
		char *end;
		long pid = strtol(de->d_name, &end, 10);
		char state;
		pid_t ppid;
		if (*end || end == de->d_name || pid <= 0)
			continue;
		if (read_stat((pid_t)pid, &state, &ppid) && state != 'Z' &&
		    list_push(&all, (pid_t)pid, ppid) != 0)
			break;
	}
	closedir(d);
	/* Breadth first from top: each round adds the children of what is
	 * already in. */
	size_t before;
	do {
		before = out->n;
		for (size_t i = 0; i < all.n; i++)
			if (!listed(out, all.pid[i]) &&
			    (all.ppid[i] == top || listed(out, all.ppid[i])))
				list_push(out, all.pid[i], all.ppid[i]);
	} while (out->n != before);
	free(all.pid);
	free(all.ppid);
	return 0;
}

/* Seize every thread of pid not traced yet; returns how many. */
static size_t seize_threads(pt_run *r, pid_t pid)
{
	char dirpath[64];
	snprintf(dirpath, sizeof(dirpath), "/proc/%d/task", (int)pid);
	DIR *d = opendir(dirpath);
	if (!d)
		return 0;
	size_t n = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		char *end;
		long tid = strtol(de->d_name, &end, 10);
		if (*end || end == de->d_name || tid <= 0 ||
		    pt_threads_get(&r->threads, (pid_t)tid))
			continue;
		/* A thread our options already made a tracee (a child of a
		 * seized parent) is announced by its parent's event. */
		if (pt_read_tracer((pid_t)tid) == getpid())
			continue;
		if (ptrace(PTRACE_SEIZE, (pid_t)tid, 0,
			   (void *)(uintptr_t)PT_ATTACH_OPTIONS) != 0)
			continue; /* gone, or not ours to trace */
		pt_thread *t = pt_threads_add(&r->threads, (pid_t)tid);
		if (!t) {
			ptrace(PTRACE_DETACH, (pid_t)tid, 0, 0);
			continue;
		}
		t->tgid = pid;
		t->announced = true;
		t->pending.nr = -1;
		r->live++;
		/* Into a stop, where the loop picks it up (started is still
		 * false: the PTRACE_EVENT_STOP is just resumed). */
		ptrace(PTRACE_INTERRUPT, (pid_t)tid, 0, 0);
		n++;
	}
	closedir(d);
	return n;
}

/* Tell the classifier about a process it has not seen: as it is now. */
static void seed_process(pt_run *r, pid_t pid, pid_t ppid)
{
	char cwd[PT_PATH_BUF], exe[PT_PATH_BUF], link[64];
	snprintf(link, sizeof(link), "/proc/%d/cwd", (int)pid);
	ssize_t n = readlink(link, cwd, sizeof(cwd) - 1);
	cwd[n > 0 ? n : 0] = '\0';
	char **argv = NULL, *block = NULL;
	int argc = pt_read_cmdline(pid, &argv, &block);
	bool have_exe = pt_read_exe(pid, exe, sizeof(exe)) == 0;
	pid_t parent = ppid == getpid() ? 0 : ppid;
	if (pid == r->l->root_pid)
		parent = 0;
	weft_classifier_add_process(r->l->classifier, pid, parent,
				    cwd[0] == '/' ? cwd : NULL,
				    have_exe ? exe : NULL,
				    (const char *const *)argv,
				    argc > 0 ? (uint32_t)argc : 0);
	free(argv);
	free(block);
}

void pt_seed_fds(pt_run *r, pid_t pid, bool only_unknown)
{
	char dirpath[64];
	snprintf(dirpath, sizeof(dirpath), "/proc/%d/fd", (int)pid);
	DIR *d = opendir(dirpath);
	if (!d)
		return;
	struct dirent *de;
	while ((de = readdir(d))) {
		char *end;
		long fd = strtol(de->d_name, &end, 10);
		if (*end || end == de->d_name || fd <= STDERR_FILENO)
			continue;
		if (only_unknown &&
		    weft_classifier_has_fd(r->l->classifier, pid, (int)fd))
			continue;
		char link[96], target[PT_PATH_BUF];
		snprintf(link, sizeof(link), "%s/%ld", dirpath, fd);
		struct stat st;
		if (stat(link, &st) != 0 || !S_ISREG(st.st_mode))
			continue;
		ssize_t n = readlink(link, target, sizeof(target) - 1);
		if (n <= 0 || target[0] != '/')
			continue;
		target[n] = '\0';
		int flags = 0;
		char info[96], buf[512];
		snprintf(info, sizeof(info), "/proc/%d/fdinfo/%ld", (int)pid,
			 fd);
		int ifd = open(info, O_RDONLY | O_CLOEXEC);
		if (ifd >= 0) {
			ssize_t m = read(ifd, buf, sizeof(buf) - 1);
			close(ifd);
			char *p;
			if (m > 0) {
				buf[m] = '\0';
				if ((p = strstr(buf, "flags:")))
					flags = (int)strtol(p + 6, NULL, 8);
			}
		}
		weft_classifier_add_fd(r->l->classifier, pid, (int)fd, target,
				       flags);
	}
	closedir(d);
}

int pt_attach(weft_launch *l, weft_report *w)
{
	pt_run r = {.l = l, .warnings = w, .syscall_mode = true};
	if (pt_threads_init(&r.threads) != 0)
		return WEFT_ENOMEM;
	int old_subreaper = 0;
	prctl(PR_GET_CHILD_SUBREAPER, &old_subreaper, 0, 0, 0);
	prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);

	/* Until a pass finds nothing new: a process that forked between
	 * the scan and its parent's seize is found by the next scan. */
	size_t processes = 0, threads = 0;
	for (int pass = 0; pass < 64; pass++) {
		proc_list tree = {0};
		if (scan_tree(getpid(), &tree) != 0) {
			free(tree.pid);
			free(tree.ppid);
			break;
		}
		size_t found = 0;
		for (size_t i = 0; i < tree.n; i++) {
			pid_t pid = tree.pid[i];
			size_t n = seize_threads(&r, pid);
			if (!n)
				continue;
			found += n;
			threads += n;
			/* The classifier keeps what the lost backend told
			 * it; it learns only what it did not know. */
			if (!weft_classifier_has_task(l->classifier, pid)) {
				seed_process(&r, pid, tree.ppid[i]);
				pt_seed_fds(&r, pid, false);
				processes++;
			} else {
				pt_seed_fds(&r, pid, true);
			}
		}
		free(tree.pid);
		free(tree.ppid);
		if (!found)
			break;
	}
	if (l->verbose >= 1)
		fprintf(stderr,
			"weft ptrace: attached to %zu threads (%zu processes "
			"new to the record)\n",
			threads, processes);
	pt_loop(&r);
	prctl(PR_SET_CHILD_SUBREAPER, old_subreaper, 0, 0, 0);
	pt_threads_free(&r.threads);
	return WEFT_OK;
}

/* ---- Collecting a task weft did not launch (weft task-collect) ----
 *
 * The SPANK plugin's ptrace tasks: the task process (about to exec, not a
 * child of weft) lets this process trace it (PR_SET_PTRACER where Yama
 * asks for it), which seizes it before it execs; then the usual loop,
 * with PTRACE_SYSCALL (no filter: a tracer that goes away leaves the task
 * running untraced, never failing its syscalls). */

typedef struct pt_collect {
	pt_run r;
	bool ran; /* pt_loop done: the threads are freed */
} pt_collect;

int pt_collect_open(weft_launch *l, weft_report *w, const weft_collect_opts *o,
		    weft_collect **out, char *ready, size_t readysz, char *err,
		    size_t errsz)
{
	*out = NULL;
	int wait_ms = o->seize_wait_ms;
	pt_collect *c = calloc(1, sizeof(*c));
	if (!c || pt_threads_init(&c->r.threads) != 0) {
		free(c);
		snprintf(err, errsz, "out of memory");
		return WEFT_ENOMEM;
	}
	c->r = (pt_run){.l = l,
			.warnings = w,
			.syscall_mode = true,
			.threads = c->r.threads};
	pid_t pid = l->root_pid;
	/* The task allows this process to trace it just before it waits
	 * for the answer: until then Yama may say no. */
	int e = 0;
	for (int waited = 0;; waited += 10) {
		if (ptrace(PTRACE_SEIZE, pid, 0,
			   (void *)(uintptr_t)PT_ATTACH_OPTIONS) == 0)
			break;
		e = errno;
		if (e != EPERM || waited >= wait_ms) {
			snprintf(err, errsz, "PTRACE_SEIZE of task pid %d: %s",
				 (int)pid, strerror(e));
			pt_threads_free(&c->r.threads);
			free(c);
			return WEFT_EIO;
		}
		usleep(10000);
	}
	pt_thread *t = pt_threads_add(&c->r.threads, pid);
	if (!t) {
		ptrace(PTRACE_DETACH, pid, 0, 0);
		pt_threads_free(&c->r.threads);
		free(c);
		snprintf(err, errsz, "out of memory");
		return WEFT_ENOMEM;
	}
	t->tgid = pid;
	t->announced = true;
	t->pending.nr = -1;
	c->r.live++;
	ptrace(PTRACE_INTERRUPT, pid, 0, 0);
	seed_process(&c->r, pid, 0);
	pt_seed_fds(&c->r, pid, false);
	snprintf(ready, readysz, "ptrace");
	*out = (weft_collect *)c;
	return WEFT_OK;
}

/* To the end of the task and of all it started; its status as its tracer
 * saw it (before its parent did). */
bool pt_collect_wait(weft_collect *wc)
{
	pt_collect *c = (pt_collect *)wc;
	pt_loop(&c->r);
	pt_threads_free(&c->r.threads);
	c->ran = true;
	return true;
}

int pt_collect_end(weft_collect *wc, int code)
{
	pt_collect *c = (pt_collect *)wc;
	(void)code; /* slurmstepd's word: the tracer knew first */
	return c->r.l->exit_code;
}

/* Before pt_loop ran (the task went on untraced), the seized task is let
 * go as this process exits. */
void pt_collect_close(weft_collect *wc)
{
	pt_collect *c = (pt_collect *)wc;
	if (!c)
		return;
	if (!c->ran)
		pt_threads_free(&c->r.threads);
	free(c);
}
