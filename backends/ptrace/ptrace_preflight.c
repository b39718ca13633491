/*
 * ptrace_preflight.c - can the ptrace backend work here, for this command?
 * Named checks of the machine (platform, architecture, Yama ptrace_scope,
 * seccomp "trace" action), then a real probe: /bin/cp of a file in a fresh
 * temporary directory traced through the same pt_trace the run uses, in a
 * helper process so that a hang can be killed at the deadline and the
 * probe's waitpid(-1) never reaps a caller's children. The probe's stops
 * also prove PTRACE_GET_SYSCALL_INFO ("syscall_info").
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>

#include "ptrace_internal.h"
#include "preflight_internal.h"
#include <weft/base.h>

#define PROBE_CP "/bin/cp"

struct probe_result {
	bool ran; /* pt_trace returned 0 */
	bool src_read, dst_written, dst_created;
	int exit_code;
	pt_stats stats;
	char detail[256];
};

/* In the helper: trace cp SRC DST and look at the report. */
static void probe_in_helper(const char *dir, struct probe_result *res)
{
	char src[PATH_MAX + 8], dst[PATH_MAX + 8];
	snprintf(src, sizeof(src), "%s/src", dir);
	snprintf(dst, sizeof(dst), "%s/dst", dir);
	char *argv[] = {PROBE_CP, src, dst, NULL};
	weft_report rep;
	weft_launch l;
	pt_options o = {.pin_cpu = -1};
	int err = weft_probe_launch(&l, &rep, argv);
	if (!err)
		err = pt_trace(&l, &rep, &o, &res->stats);
	res->exit_code = l.exit_code;
	if (err) {
		snprintf(res->detail, sizeof(res->detail),
			 "tracing %s failed: %s (%s)", PROBE_CP,
			 weft_strerror(err), strerror(errno));
		weft_classifier_free(l.classifier);
		weft_report_release(&rep);
		return;
	}
	res->ran = true;
	weft_classifier_finish(l.classifier, &rep);
	weft_classifier_free(l.classifier);
	for (size_t i = 0; i < rep.nfiles; i++) {
		const weft_file_rec *f = &rep.files[i];
		if (strcmp(f->path, src) == 0 && f->read)
			res->src_read = true;
		if (strcmp(f->path, dst) == 0) {
			res->dst_written = f->written;
			res->dst_created = f->created;
		}
	}
	/* No temporary names in the detail: same machine, same text. */
	snprintf(res->detail, sizeof(res->detail),
		 "%s SRC DST in a temporary directory: exit %d; SRC %s, DST "
		 "%s%s",
		 PROBE_CP, l.exit_code, res->src_read ? "read" : "NOT read",
		 res->dst_written ? "written" : "NOT written",
		 res->dst_created ? "+created" : " (NOT created)");
	weft_report_release(&rep);
}

/* Run the probe in a helper bounded by timeout_ms. Returns 0, or -1 with
 * res->detail saying why. */
static int run_probe(struct probe_result *res, int timeout_ms)
{
	char real[PATH_MAX];
	if (access(PROBE_CP, X_OK) != 0) {
		snprintf(res->detail, sizeof(res->detail),
			 "probe command %s: %s", PROBE_CP, strerror(errno));
		return -1;
	}
	if (weft_probe_dir_make("ptrace", real, res->detail,
				sizeof(res->detail)) != 0)
		return -1;
	int rc = -1, pfd[2] = {-1, -1};
	pid_t helper = -1;
	if (pipe2(pfd, O_CLOEXEC) != 0 || (helper = fork()) < 0) {
		snprintf(res->detail, sizeof(res->detail),
			 "cannot start the probe: %s", strerror(errno));
		goto out;
	}
	if (helper == 0) {
		close(pfd[0]);
		struct probe_result r = {0};
		probe_in_helper(real, &r);
		ssize_t n = write(pfd[1], &r, sizeof(r));
		_exit(n == (ssize_t)sizeof(r) ? 0 : 1);
	}
	close(pfd[1]);
	pfd[1] = -1;
	int64_t deadline = weft_mono_ms() + timeout_ms;
	size_t got = 0;
	while (got < sizeof(*res)) {
		int64_t left = deadline - weft_mono_ms();
		struct pollfd p = {pfd[0], POLLIN, 0};
		int n = left > 0 ? poll(&p, 1, (int)left) : 0;
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			/* The helper's tracees die with it (EXITKILL). */
			kill(helper, SIGKILL);
			snprintf(res->detail, sizeof(res->detail),
				 "timeout after %d ms", timeout_ms);
			goto out;
		}
		ssize_t m = read(pfd[0], (char *)res + got, sizeof(*res) - got);
		if (m <= 0) {
			snprintf(res->detail, sizeof(res->detail),
				 "the probe helper died without a result");
			goto out;
		}
		got += (size_t)m;
	}
	rc = 0;
out:
	if (helper > 0)
		waitpid(helper, NULL, 0);
	if (pfd[0] >= 0)
		close(pfd[0]);
	if (pfd[1] >= 0)
		close(pfd[1]);
	weft_probe_dir_remove(real);
	return rc;
}

void pt_check_command(weft_preflight *p, const char *command)
{
	struct stat st;
	if (!weft_preflight_stat_command(p, command, &st))
		return;
	if (!S_ISREG(st.st_mode)) {
		weft_preflight_check(p, "command", false,
				     "%s: not a regular file", command);
		return;
	}
	if (access(command, X_OK) != 0) {
		weft_preflight_check(p, "command", false,
				     "%s: not executable: %s", command,
				     strerror(errno));
		return;
	}
	bool priv = st.st_mode & (S_ISUID | S_ISGID);
	weft_preflight_check(p, "command", true,
			     "%s: executable%s (static and dynamic binaries "
			     "are both traced)",
			     command, priv ? ", set-user/group-ID" : "");
	if (priv && geteuid() != 0)
		weft_preflight_warn(p,
				    "%s is set-user/group-ID: under ptrace it "
				    "runs without those privileges",
				    command);
}

int pt_preflight(weft_preflight *p, const char *command, int timeout_ms)
{
	int64_t start = weft_mono_ms();
	char buf[256];
	struct utsname u;
	weft_preflight_begin(p, "ptrace", command);

	bool linux_ok = weft_preflight_platform(p, &u);

	bool arch_ok = PT_AUDIT_ARCH != 0 && linux_ok &&
		       strcmp(u.machine, PT_ARCH_NAME) == 0;
	weft_preflight_check(p, "architecture", arch_ok,
			     "machine %s, built for %s%s",
			     linux_ok ? u.machine : "?", PT_ARCH_NAME,
			     arch_ok ? "" : ": unsupported");

	ssize_t n = weft_read_small_file("/proc/sys/kernel/yama/ptrace_scope",
					 buf, sizeof(buf));
	if (n < 0)
		weft_preflight_check(p, "ptrace_scope", true,
				     "no Yama (no ptrace_scope file): a parent "
				     "may trace its child");
	else if (strcmp(buf, "3") == 0)
		weft_preflight_check(p, "ptrace_scope", false,
				     "kernel.yama.ptrace_scope=3: ptrace is "
				     "disabled on this machine");
	else
		weft_preflight_check(
			p, "ptrace_scope", true,
			"kernel.yama.ptrace_scope=%s: a parent may "
			"trace its own child",
			buf);

	n = weft_read_small_file("/proc/sys/kernel/seccomp/actions_avail", buf,
				 sizeof(buf));
	bool trace = n > 0 && (strstr(buf, "trace ") ||
			       (n >= 5 && strcmp(buf + n - 5, "trace") == 0));
	weft_preflight_check(p, "seccomp", trace,
			     n < 0 ? "no /proc/sys/kernel/seccomp/actions_avail"
				   : "actions_avail: %s%s",
			     n < 0 ? "" : buf,
			     trace || n < 0 ? "" : " (no \"trace\")");

	if (!p->ok) {
		const char *why = "an earlier check failed";
		weft_preflight_check(p, "syscall_info", false, "not run: %s",
				     why);
		weft_preflight_check(p, "probe", false, "not run: %s", why);
	} else {
		int left = timeout_ms - (int)(weft_mono_ms() - start);
		struct probe_result res;
		memset(&res, 0, sizeof(res));
		int rc = run_probe(&res, left > 0 ? left : 0);
		if (rc != 0 || !res.ran)
			weft_preflight_check(p, "syscall_info", false,
					     "not verified, the probe did not "
					     "run: %s",
					     res.detail);
		else
			weft_preflight_check(
				p, "syscall_info",
				res.stats.seccomp_stops > 0 &&
					res.stats.info_errors == 0,
				"PTRACE_GET_SYSCALL_INFO: %llu seccomp stops, "
				"%llu exit stops, %llu failures",
				(unsigned long long)res.stats.seccomp_stops,
				(unsigned long long)res.stats.exit_stops,
				(unsigned long long)res.stats.info_errors);
		bool ok = rc == 0 && res.ran && res.exit_code == 0 &&
			  res.src_read && res.dst_written && res.dst_created;
		weft_preflight_check(p, "probe", ok, "%s", res.detail);
	}
	if (command)
		pt_check_command(p, command);

	weft_preflight_conclude(p, &u, start,
				"seccomp-bpf + PTRACE_GET_SYSCALL_INFO, "
				"probe %s traced",
				PROBE_CP);
	return 0;
}
