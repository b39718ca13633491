/*
 * preload_preflight.c - can the preload backend work here, for this
 * command? Named checks: platform, architecture, the library (found, an
 * ELF for this machine, accepted by this machine's dynamic linker), the
 * command (exists, executable, dynamic and not secure-exec: the library
 * cannot run in a static or set-ID program), and a probe: a shell that
 * reads a file, writes another and renames it, traced through the same
 * pl_trace a run uses, in a helper bounded by the deadline.
 */
#include <elf.h>
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
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>

#include "preload_internal.h"
#include "preflight_internal.h"
#include <weft/base.h>

#if defined(__x86_64__)
#define PL_ARCH_NAME "x86_64"
#define PL_ELF_MACHINE EM_X86_64
#elif defined(__aarch64__)
#define PL_ARCH_NAME "aarch64"
#define PL_ELF_MACHINE EM_AARCH64
#else
#define PL_ARCH_NAME "unsupported"
#define PL_ELF_MACHINE 0
#endif

#define PROBE_SH "/bin/sh"
#define PROBE_SCRIPT "cat \"$1\" > \"$2\" && mv \"$2\" \"$3\""

/* Wait for pid until deadline; kill it (and its group) past it. Returns
 * its status, or -1 on timeout. Woken by its pidfd when it ends (polling
 * every 2 ms without one). */
static int wait_until(pid_t pid, int64_t deadline)
{
	int status, rc = -1;
	int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	for (;;) {
		pid_t w = waitpid(pid, &status, WNOHANG);
		if (w == pid) {
			rc = status;
			break;
		}
		if (w < 0 && errno != EINTR)
			break;
		int64_t left = deadline - weft_mono_ms();
		if (left <= 0) {
			kill(-pid, SIGKILL);
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			break;
		}
		struct pollfd p = {.fd = pidfd, .events = POLLIN};
		poll(&p, 1, pidfd >= 0 ? (int)(left < 1000 ? left : 1000) : 2);
	}
	if (pidfd >= 0)
		close(pidfd);
	return rc;
}

/* The ELF machine of path, or -1. */
static int elf_machine(const char *path)
{
	Elf64_Ehdr eh;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, &eh, sizeof(eh));
	close(fd);
	if (n != (ssize_t)sizeof(eh) || memcmp(eh.e_ident, ELFMAG, SELFMAG))
		return -1;
	return eh.e_machine;
}

/* Run /bin/true with the library preloaded: the dynamic linker of this
 * machine says on stderr when it cannot load it. */
static bool linker_accepts(const char *lib, char *detail, size_t dsz,
			   int64_t deadline)
{
	int pfd[2];
	if (pipe2(pfd, O_CLOEXEC) != 0) {
		snprintf(detail, dsz, "pipe: %s", strerror(errno));
		return false;
	}
	pid_t pid = fork();
	if (pid == 0) {
		setpgid(0, 0);
		dup2(pfd[1], 2);
		char var[PATH_MAX + 512];
		snprintf(var, sizeof(var), "LD_PRELOAD=%s", lib);
		char *argv[] = {"true", NULL};
		char *envp[] = {var, NULL};
		execve("/bin/true", argv, envp);
		_exit(127);
	}
	close(pfd[1]);
	if (pid < 0) {
		close(pfd[0]);
		snprintf(detail, dsz, "fork: %s", strerror(errno));
		return false;
	}
	int status = wait_until(pid, deadline);
	char err[300];
	ssize_t n = read(pfd[0], err, sizeof(err) - 1);
	close(pfd[0]);
	err[n > 0 ? n : 0] = '\0';
	err[strcspn(err, "\n")] = '\0';
	if (status < 0) {
		snprintf(detail, dsz, "timeout running /bin/true with it");
		return false;
	}
	if (n > 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		snprintf(detail, dsz, "the dynamic linker refused it: %s",
			 n > 0 ? err : "/bin/true failed");
		return false;
	}
	snprintf(detail, dsz, "/bin/true ran with it preloaded");
	return true;
}

struct probe_result {
	bool ran, src_read, tmp_written, tmp_renamed, dst_written;
	int exit_code;
	pl_stats stats;
	char detail[256];
};

static void probe_in_helper(const char *dir, struct probe_result *res)
{
	char src[PATH_MAX + 8], tmp[PATH_MAX + 8], dst[PATH_MAX + 8];
	snprintf(src, sizeof(src), "%s/src", dir);
	snprintf(tmp, sizeof(tmp), "%s/tmp", dir);
	snprintf(dst, sizeof(dst), "%s/dst", dir);
	char *argv[] = {PROBE_SH, "-c", PROBE_SCRIPT, "sh", src, tmp, dst,
			NULL};
	weft_report rep;
	weft_launch l;
	int err = weft_probe_launch(&l, &rep, argv);
	if (!err)
		err = pl_trace(&l, &rep, &res->stats);
	res->exit_code = l.exit_code;
	if (err == WEFT_OK) {
		res->ran = true;
		weft_classifier_finish(l.classifier, &rep);
	}
	weft_classifier_free(l.classifier);
	for (size_t i = 0; i < rep.nfiles; i++) {
		const weft_file_rec *f = &rep.files[i];
		if (strcmp(f->path, src) == 0)
			res->src_read = f->read;
		if (strcmp(f->path, tmp) == 0) {
			res->tmp_written = f->written && f->created;
			res->tmp_renamed = f->renamed_to &&
					   strcmp(f->renamed_to, dst) == 0;
		}
		if (strcmp(f->path, dst) == 0)
			res->dst_written = f->written;
	}
	if (!res->ran)
		snprintf(res->detail, sizeof(res->detail),
			 "tracing %s failed: %s%s%s", PROBE_SH,
			 weft_strerror(err), rep.nwarnings ? ": " : "",
			 rep.nwarnings ? rep.warnings[0] : "");
	else
		snprintf(res->detail, sizeof(res->detail),
			 "sh -c 'cat SRC > TMP && mv TMP DST' in a temporary "
			 "directory: exit %d; SRC %s, TMP %s, %s, DST %s",
			 l.exit_code, res->src_read ? "read" : "NOT read",
			 res->tmp_written ? "written+created"
					  : "NOT written+created",
			 res->tmp_renamed ? "renamed to DST"
					  : "NOT renamed to DST",
			 res->dst_written ? "written" : "NOT written");
	weft_report_release(&rep);
}

static int run_probe(struct probe_result *res, int64_t deadline)
{
	char real[PATH_MAX];
	if (weft_probe_dir_make("preload", real, res->detail,
				sizeof(res->detail)) != 0)
		return -1;
	int rc = -1, pfd[2] = {-1, -1};
	if (pipe2(pfd, O_CLOEXEC) != 0) {
		snprintf(res->detail, sizeof(res->detail),
			 "cannot set up the probe: %s", strerror(errno));
		goto out;
	}
	pid_t helper = fork();
	if (helper == 0) {
		setpgid(0, 0);
		close(pfd[0]);
		struct probe_result r = {0};
		probe_in_helper(real, &r);
		_exit(write(pfd[1], &r, sizeof(r)) == (ssize_t)sizeof(r) ? 0
									 : 1);
	}
	close(pfd[1]);
	pfd[1] = -1;
	if (helper < 0) {
		snprintf(res->detail, sizeof(res->detail), "fork: %s",
			 strerror(errno));
		goto out;
	}
	int status = wait_until(helper, deadline);
	if (status < 0) {
		snprintf(res->detail, sizeof(res->detail), "timeout");
		goto out;
	}
	if (read(pfd[0], res, sizeof(*res)) != (ssize_t)sizeof(*res)) {
		snprintf(res->detail, sizeof(res->detail),
			 "the probe helper died without a result");
		goto out;
	}
	rc = 0;
out:
	weft_probe_dir_remove(real);
	if (pfd[0] >= 0)
		close(pfd[0]);
	if (pfd[1] >= 0)
		close(pfd[1]);
	return rc;
}

void pl_check_command(weft_preflight *p, const char *command)
{
	struct stat st;
	char why[256];
	if (!weft_preflight_stat_command(p, command, &st) ||
	    !weft_preflight_command_executable(p, command, &st))
		return;
	pl_exec_blind(command, why, sizeof(why));
	if (why[0])
		weft_preflight_check(p, "command", false,
				     "%s is %s: preload cannot trace it (use "
				     "ptrace or ebpf)",
				     command, why);
	else
		weft_preflight_check(p, "command", true,
				     "%s: executable, dynamically linked or "
				     "a script",
				     command);
}

int pl_preflight(weft_preflight *p, const char *command, int timeout_ms)
{
	int64_t start = weft_mono_ms(), deadline = start + timeout_ms;
	struct utsname u;
	char lib[PATH_MAX + 256], detail[WEFT_PREFLIGHT_DETAIL_BYTES];
	weft_preflight_begin(p, "preload", command);

	bool linux_ok = weft_preflight_platform(p, &u);
	bool found = pl_library_path(lib, sizeof(lib)) == 0;
	int machine = found ? elf_machine(lib) : -1;
	bool arch_ok = linux_ok && PL_ELF_MACHINE != 0 &&
		       strcmp(u.machine, PL_ARCH_NAME) == 0 &&
		       (!found || machine == PL_ELF_MACHINE);
	weft_preflight_check(p, "architecture", arch_ok,
			     "machine %s, built for %s%s",
			     linux_ok ? u.machine : "?", PL_ARCH_NAME,
			     found && machine != PL_ELF_MACHINE
				     ? ", but the library is not an ELF for it"
				     : "");
	weft_preflight_check(p, "library", found, "%s", lib);
	if (found && arch_ok) {
		bool ok = linker_accepts(lib, detail, sizeof(detail), deadline);
		weft_preflight_check(p, "library_loadable", ok, "%s", detail);
	} else {
		weft_preflight_check(p, "library_loadable", false,
				     "not run: an earlier check failed");
	}
	if (!p->ok) {
		weft_preflight_check(p, "probe", false,
				     "not run: an earlier check failed");
	} else {
		struct probe_result res;
		memset(&res, 0, sizeof(res));
		int rc = run_probe(&res, deadline);
		bool ok = rc == 0 && res.ran && res.exit_code == 0 &&
			  res.src_read && res.tmp_written && res.tmp_renamed &&
			  res.dst_written;
		weft_preflight_check(p, "probe", ok, "%s", res.detail);
	}
	if (command)
		pl_check_command(p, command);
	weft_preflight_conclude(p, &u, start, "%.200s, probe traced", lib);
	return 0;
}
