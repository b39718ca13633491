/*
 * agent_access.c - who may register what with the node agent.
 *
 * A registration hands the caller every file name the target's process
 * tree opens, so the agent grants one only where the kernel would let
 * the caller ptrace the target itself (kernel/ptrace.c
 * __ptrace_may_access with PTRACE_MODE_ATTACH_REALCREDS, commoncap's
 * capability subset rule and Yama's ptrace_scope), judged with the
 * credentials the caller had when it connected. Those are captured at
 * accept (SO_PEERCRED, and /proc of the connecting pid, which must agree
 * with it) and must still be the connecting process's at REGISTER: a
 * client that keeps the socket while the connecting process execs a
 * set-user-ID program, or ends (its pid free for anyone), is refused.
 *
 * Reading /proc is wb_creds_read; the decision (wb_may_ptrace) is a pure
 * function of what was read, so that every rule is tested without a
 * second user or a Yama kernel (agent_access_test.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "ebpf_internal.h"

/* How many parents the Yama ancestry walk follows before giving up (a
 * chain longer than this is not one /proc can show consistently). */
#define WB_MAX_ANCESTRY 4096
#define WB_YAMA_SCOPE_PATH "/proc/sys/kernel/yama/ptrace_scope"

static int read_ids(const char *v, uint32_t ids[4])
{
	unsigned long a[4];
	if (sscanf(v, "%lu %lu %lu %lu", &a[0], &a[1], &a[2], &a[3]) != 4)
		return -1;
	for (int i = 0; i < 4; i++)
		ids[i] = (uint32_t)a[i];
	return 0;
}

/* FNV-1a: the supplementary groups only need to compare equal. */
static uint64_t fnv1a(const char *s)
{
	uint64_t h = 14695981039346656037ull;
	for (; *s && *s != '\n'; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

/* status of the process whose /proc directory is dfd. */
static int read_status(int dfd, wb_creds *c)
{
	int fd = openat(dfd, "status", O_RDONLY | O_CLOEXEC);
	FILE *f = fd >= 0 ? fdopen(fd, "re") : NULL;
	if (!f) {
		if (fd >= 0)
			close(fd);
		return -ESRCH;
	}
	char *line = NULL;
	size_t cap = 0;
	unsigned seen = 0;
	while (getline(&line, &cap, f) > 0) {
		char state;
		unsigned long long x;
		int ppid;
		if (strncmp(line, "Uid:", 4) == 0)
			seen |= read_ids(line + 4, c->uid) == 0 ? 1 : 0;
		else if (strncmp(line, "Gid:", 4) == 0)
			seen |= read_ids(line + 4, c->gid) == 0 ? 2 : 0;
		else if (strncmp(line, "Groups:", 7) == 0) {
			c->groups_hash = fnv1a(line + 7);
			seen |= 4;
		} else if (sscanf(line, "CapEff: %llx", &x) == 1) {
			c->cap_eff = x;
			seen |= 8;
		} else if (sscanf(line, "CapPrm: %llx", &x) == 1) {
			c->cap_prm = x;
			seen |= 16;
		} else if (sscanf(line, "PPid: %d", &ppid) == 1) {
			c->ppid = ppid;
			seen |= 32;
		} else if (sscanf(line, "State: %c", &state) == 1) {
			c->ended = state == 'Z' || state == 'X';
			seen |= 64;
		}
	}
	free(line);
	fclose(f);
	return seen == 127 ? 0 : -EPROTO;
}

/* Field 22 of stat, the start time: after the command, which may hold
 * anything, so counted from the last ')'. */
static int read_start(int dfd, uint64_t *start)
{
	char buf[1024];
	int fd = openat(dfd, "stat", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -ESRCH;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -ESRCH;
	buf[n] = '\0';
	char *p = strrchr(buf, ')');
	if (!p)
		return -EPROTO;
	/* The space before each field from 3 (the state) to 22. */
	for (int field = 3; field <= 22; field++) {
		p = strchr(p + 1, ' ');
		if (!p)
			return -EPROTO;
	}
	unsigned long long v;
	if (sscanf(p, " %llu", &v) != 1)
		return -EPROTO;
	*start = v;
	return 0;
}

int wb_creds_read(pid_t pid, wb_creds *c)
{
	memset(c, 0, sizeof(*c));
	c->pid = pid;
	if (pid <= 0)
		return -ESRCH;
	char path[32];
	snprintf(path, sizeof(path), "/proc/%d", (int)pid);
	/* Every read below through this one directory: were the pid reused
	 * meanwhile, they fail rather than mix two processes. */
	int dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return -ESRCH;
	struct stat st;
	int rc = read_start(dfd, &c->start);
	if (rc == 0)
		rc = read_status(dfd, c);
	/* A process's private /proc files (not its directory) belong to
	 * root, not to its euid and egid, when its memory is not dumpable
	 * (fs/proc/base.c task_dump_owner). */
	if (rc == 0 && fstatat(dfd, "environ", &st, 0) != 0)
		rc = -ESRCH;
	if (rc == 0)
		c->dumpable = st.st_uid == c->uid[1] && st.st_gid == c->gid[1];
	close(dfd);
	return rc;
}

bool wb_creds_same(const wb_creds *a, const wb_creds *b)
{
	return a->pid == b->pid && a->start == b->start &&
	       memcmp(a->uid, b->uid, sizeof(a->uid)) == 0 &&
	       memcmp(a->gid, b->gid, sizeof(a->gid)) == 0 &&
	       a->groups_hash == b->groups_hash && a->cap_eff == b->cap_eff &&
	       a->cap_prm == b->cap_prm;
}

int wb_ptrace_scope(void)
{
	FILE *f = fopen(WB_YAMA_SCOPE_PATH, "re");
	if (!f)
		return 0; /* no Yama: the classic rules only */
	int scope = 0;
	if (fscanf(f, "%d", &scope) != 1)
		scope = WB_YAMA_NO_ATTACH; /* unreadable: the strictest */
	fclose(f);
	return scope;
}

bool wb_is_ancestor(pid_t ancestor, pid_t pid)
{
	for (int i = 0; i < WB_MAX_ANCESTRY && pid > 1; i++) {
		wb_creds c;
		if (wb_creds_read(pid, &c) != 0)
			return false;
		if (c.ppid == ancestor)
			return true;
		pid = c.ppid;
	}
	return false;
}

int wb_may_ptrace(const wb_creds *caller, const wb_creds *target, int scope,
		  bool ancestor, char *why, size_t whysz)
{
	bool cap = caller->cap_eff & (1ull << WB_CAP_SYS_PTRACE);
	if (scope >= WB_YAMA_NO_ATTACH) {
		snprintf(why, whysz, "ptrace_scope %d: no process may trace",
			 scope);
		return -EPERM;
	}
	/* The caller's real ids against every id of the target. */
	for (int i = 0; i < 3 && !cap; i++) {
		bool uid = target->uid[i] != caller->uid[0];
		if (uid || target->gid[i] != caller->gid[0]) {
			const char *id = uid ? "uid" : "gid";
			snprintf(why, whysz, "%s %u may not trace pid %d (%s %u)",
				 id, uid ? caller->uid[0] : caller->gid[0],
				 (int)target->pid, id,
				 uid ? target->uid[i] : target->gid[i]);
			return -EPERM;
		}
	}
	if (!cap && (target->cap_prm & ~caller->cap_prm)) {
		snprintf(why, whysz,
			 "uid %u may not trace pid %d (capabilities)",
			 caller->uid[0], (int)target->pid);
		return -EPERM;
	}
	if (!cap && !target->dumpable) {
		snprintf(why, whysz, "pid %d is not dumpable",
			 (int)target->pid);
		return -EPERM;
	}
	if (!cap && scope == WB_YAMA_RELATIONAL && !ancestor) {
		snprintf(why, whysz,
			 "ptrace_scope 1: pid %d is not a descendant",
			 (int)target->pid);
		return -EPERM;
	}
	if (!cap && scope == WB_YAMA_ADMIN) {
		snprintf(why, whysz, "ptrace_scope 2: CAP_SYS_PTRACE needed");
		return -EPERM;
	}
	return 0;
}
