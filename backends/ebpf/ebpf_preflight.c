/*
 * ebpf_preflight.c - can the eBPF backend work here? Named checks of the
 * machine (platform, architecture, tracefs mounted or mountable now, the
 * kernel's BTF, privileges), then loading and attaching the programs for
 * real, then a probe: /bin/cp of a file in a fresh temporary directory
 * traced through the same run path a workload takes (through the node
 * agent when one is up, else with a load of its own), checking the
 * records. The manager runs this in a
 * child bounded by tracer.preflight_timeout_ms.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/vfs.h>

#include "ebpf_internal.h"
#include "preflight_internal.h"
#include <weft/base.h>

#define TRACEFS "/sys/kernel/tracing"
#define TRACEFS_MAGIC 0x74726163
#define BTF_VMLINUX "/sys/kernel/btf/vmlinux"
#define PROBE_CP "/bin/cp"

static void check_tracefs(weft_preflight *p)
{
	struct statfs sf;
	if (statfs(TRACEFS, &sf) == 0 && sf.f_type == TRACEFS_MAGIC) {
		weft_preflight_check(p, "tracefs", true, "mounted at %s",
				     TRACEFS);
		return;
	}
	if (mount("tracefs", TRACEFS, "tracefs", 0, NULL) == 0) {
		weft_preflight_check(p, "tracefs", true,
				     "was not mounted; mounted it at %s",
				     TRACEFS);
		return;
	}
	weft_preflight_check(p, "tracefs", false,
			     "not mounted at %s, and mounting it failed: %s "
			     "(`weft tracer enable ebpf` as root mounts it)",
			     TRACEFS, strerror(errno));
}

static void check_btf(weft_preflight *p)
{
	struct stat st;
	if (stat(BTF_VMLINUX, &st) == 0 && access(BTF_VMLINUX, R_OK) == 0)
		weft_preflight_check(p, "btf", true, "%s (%lld bytes)",
				     BTF_VMLINUX, (long long)st.st_size);
	else
		weft_preflight_check(p, "btf", false,
				     "%s: %s (the kernel needs "
				     "CONFIG_DEBUG_INFO_BTF)",
				     BTF_VMLINUX, strerror(errno));
}

/* Inside a user namespace other than the initial one, capabilities are
 * worth nothing against the kernel's BPF checks. */
static bool in_user_namespace(void)
{
	char buf[128];
	if (weft_read_small_file("/proc/self/uid_map", buf, sizeof(buf)) <= 0)
		return false;
	unsigned long a, b, c;
	return sscanf(buf, "%lu %lu %lu", &a, &b, &c) != 3 || a != 0 ||
	       b != 0 || c != 4294967295ul;
}

static void check_privileges(weft_preflight *p)
{
	uint64_t caps = wb_cap_effective(0);
	bool bpf = caps & (1ull << WB_CAP_BPF);
	bool perfmon = caps & (1ull << WB_CAP_PERFMON);
	bool admin = caps & (1ull << WB_CAP_SYS_ADMIN);
	if (in_user_namespace()) {
		weft_preflight_check(p, "privileges", false,
				     "running in a user namespace: its "
				     "capabilities do not allow loading BPF "
				     "programs into the kernel");
		return;
	}
	bool ok = admin || (bpf && perfmon);
	weft_preflight_check(
		p, "privileges", ok,
		"uid %d; CAP_BPF %s, CAP_PERFMON %s, CAP_SYS_ADMIN %s%s",
		(int)geteuid(), bpf ? "yes" : "no", perfmon ? "yes" : "no",
		admin ? "yes" : "no",
		ok ? ""
		   : ": needs root, or CAP_BPF and CAP_PERFMON "
		     "(`weft tracer enable ebpf`)");
}

/* Where the probe's records come from, as for the run (wb_run): with
 * WEFT_EBPF_AGENT=off a load of its own. Otherwise the agent when one
 * answers, else a load of its own with the same programs the agent the
 * run starts will load; but with one program per syscall
 * (WEFT_EBPF_SYSCALLS=each) a private load's end waits 0.5-7 s for the
 * kernel to detach them (possibly past the preflight deadline), so the
 * probe starts the agent, as the run would. */
static enum wb_source probe_source(void)
{
	const char *v = getenv("WEFT_EBPF_AGENT");
	if (v && (strcmp(v, "off") == 0 || strcmp(v, "0") == 0))
		return WB_SOURCE_PRIVATE;
	return wb_syscalls_each() ? WB_SOURCE_AGENT : WB_SOURCE_AGENT_IF_UP;
}

/* Trace cp SRC DST in a temporary directory through a load of its own:
 * that load is the load_attach check, the records the probe check. */
static void check_load_and_probe(weft_preflight *p)
{
	char real[PATH_MAX], why[WEFT_PREFLIGHT_DETAIL_BYTES];
	char src[PATH_MAX + 8], dst[PATH_MAX + 8];
	if (weft_probe_dir_make("ebpf", real, why, sizeof(why)) != 0) {
		weft_preflight_check(p, "load_attach", false,
				     "not run: no probe input");
		weft_preflight_check(p, "probe", false, "%s", why);
		return;
	}
	snprintf(src, sizeof(src), "%s/src", real);
	snprintf(dst, sizeof(dst), "%s/dst", real);
	char *argv[] = {PROBE_CP, src, dst, NULL};
	weft_report rep;
	weft_launch l;
	wb_load_stats st = {0};
	int err = weft_probe_launch(&l, &rep, argv);
	if (!err)
		err = wb_trace(&l, &rep, probe_source(), &st);
	if (!st.agent && st.attached == 0) {
		/* No load: wb_trace said why in the first warning. */
		weft_preflight_check(p, "load_attach", false, "%s",
				     rep.nwarnings ? rep.warnings[0]
						   : weft_strerror(err));
		weft_preflight_check(p, "probe", false,
				     "not run: the programs did not load");
		weft_classifier_free(l.classifier);
		weft_report_release(&rep);
		goto out;
	}
	/* No timings in the detail: same machine, same text. */
	if (st.agent)
		weft_preflight_check(p, "load_attach", true,
				     "the node agent (weft agent) has the "
				     "programs loaded and attached, and "
				     "traced the probe");
	else
		weft_preflight_check(p, "load_attach", true,
				     "%u programs loaded and attached (%s, "
				     "tp_btf sched_process_fork/exec/exit)",
				     st.attached,
				     wb_syscalls_each()
					     ? "syscalls/sys_enter_* and "
					       "sys_exit_* of each recorded "
					       "syscall"
					     : "tp_btf sys_enter/sys_exit");
	bool src_read = false, dst_written = false, dst_created = false;
	if (err == 0 && !l.lost) {
		weft_classifier_finish(l.classifier, &rep);
		for (size_t i = 0; i < rep.nfiles; i++) {
			const weft_file_rec *f = &rep.files[i];
			if (strcmp(f->path, src) == 0)
				src_read = f->read;
			if (strcmp(f->path, dst) == 0) {
				dst_written = f->written;
				dst_created = f->created;
			}
		}
	}
	weft_classifier_free(l.classifier);
	bool ok = err == 0 && !l.lost && l.exit_code == 0 && src_read &&
		  dst_written && dst_created && l.dropped_events == 0;
	if (err != 0 || l.lost)
		weft_preflight_check(
			p, "probe", false, "tracing %s failed: %s%s%s",
			PROBE_CP, l.lost ? l.lost_reason : weft_strerror(err),
			rep.nwarnings ? ": " : "",
			rep.nwarnings ? rep.warnings[0] : "");
	else
		weft_preflight_check(
			p, "probe", ok,
			"%s SRC DST in a temporary directory: exit %d; SRC "
			"%s, DST %s%s; %llu dropped records",
			PROBE_CP, l.exit_code, src_read ? "read" : "NOT read",
			dst_written ? "written" : "NOT written",
			dst_created ? "+created" : " (NOT created)",
			(unsigned long long)l.dropped_events);
	weft_report_release(&rep);
out:
	weft_probe_dir_remove(real);
}

void wb_check_command(weft_preflight *p, const char *command)
{
	struct stat st;
	if (weft_preflight_stat_command(p, command, &st) &&
	    weft_preflight_command_executable(p, command, &st))
		weft_preflight_check(p, "command", true,
				     "%s: executable (static, dynamic and "
				     "set-user-ID binaries are all traced)",
				     command);
}

int wb_preflight(weft_preflight *p, const char *command, int timeout_ms)
{
	(void)timeout_ms; /* the manager enforces it from outside */
	int64_t start = weft_mono_ms();
	struct utsname u;
	weft_preflight_begin(p, "ebpf", command);
	bool linux_ok = weft_preflight_platform(p, &u);
	bool arch_ok = linux_ok && strcmp(u.machine, "x86_64") == 0;
	weft_preflight_check(
		p, "architecture", arch_ok, "machine %s, built for x86_64%s",
		linux_ok ? u.machine : "?", arch_ok ? "" : ": unsupported");
	check_tracefs(p);
	check_btf(p);
	check_privileges(p);
	if (p->ok) {
		check_load_and_probe(p);
	} else {
		weft_preflight_check(p, "load_attach", false,
				     "not run: an earlier check failed");
		weft_preflight_check(p, "probe", false,
				     "not run: an earlier check failed");
	}
	if (command)
		wb_check_command(p, command);
	weft_preflight_conclude(p, &u, start,
				"BTF, programs loaded and attached, "
				"probe " PROBE_CP " traced");
	return 0;
}
