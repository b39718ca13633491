/*
 * preflight_reuse.c - a passed preflight's verdict, reused while the
 * machine state it checked is the same.
 *
 * A preflight probes: it traces a small command under the backend, which
 * costs 10-30 ms on every `weft run` and every Slurm or Ray task. Its
 * answer depends on the machine, not on the workload (the command's own
 * checks are cheap and run every time), so a passed verdict is kept and
 * reused while everything it depends on is unchanged:
 *
 *   - the boot (boot id), the kernel (release, version, machine);
 *   - the weft binary (device, inode, size, change times) and what the
 *     backend loads besides it (weft_backend.preflight_state);
 *   - the credentials: uids, gids, groups, every capability set,
 *     no_new_privs, the seccomp mode, the namespaces, the mounts (not
 *     the cgroup: every Slurm task has its own, and none of it gates
 *     tracing that the lines above do not show);
 *   - the sysctls that gate tracing (Yama, unprivileged BPF, perf
 *     events, lockdown), the preflight's timeout, and every WEFT_*,
 *     LD_PRELOAD and LD_LIBRARY_PATH variable.
 *
 * All of it goes into one BLAKE2b key; anything that differs re-probes.
 * A failed verdict is never kept: the next run probes again, so a fixed
 * machine is seen at once. The kept verdicts live in a directory only
 * their owner can write ($XDG_RUNTIME_DIR/weft, else
 * $TMPDIR/weft-preflight-UID), one file per backend and weft executable
 * path (two installs, or two builds compared, would otherwise replace
 * each other's verdict at every run), and a file found there is used
 * only when it is the owner's, mode 0600, of the exact size, with the
 * key matching: nobody else can hand weft a verdict.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/utsname.h>

#include <sodium.h>

#include <weft/backends.h>
#include <weft/base.h>

extern char **environ;

#define KEY_HEX (2 * crypto_generichash_BYTES)
/* "<key hex> <unix seconds>\n", then the verdict's bytes. */
#define HEADER_BYTES (KEY_HEX + 1 + 20 + 1)

static void key_file(FILE *k, const char *tag, const char *path)
{
	char buf[4096];
	FILE *f = fopen(path, "re");
	fprintf(k, "%s:", tag);
	if (!f) {
		fprintf(k, "absent %d\n", errno);
		return;
	}
	size_t n;
	/* A file of any length goes in whole (mountinfo can be long); the
	 * key is hashed, so its length costs nothing later. */
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		fwrite(buf, 1, n, k);
	fclose(f);
	fputc('\n', k);
}

void weft_preflight_key_stat(FILE *k, const char *tag, const char *path)
{
	struct stat st;
	if (stat(path, &st) != 0) {
		fprintf(k, "%s: %s absent %d\n", tag, path, errno);
		return;
	}
	fprintf(k, "%s: %s %llu %llu %lld %lld.%09ld %lld.%09ld %o %d %d\n",
		tag, path, (unsigned long long)st.st_dev,
		(unsigned long long)st.st_ino, (long long)st.st_size,
		(long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec,
		(long long)st.st_ctim.tv_sec, st.st_ctim.tv_nsec,
		(unsigned)st.st_mode, (int)st.st_uid, (int)st.st_gid);
}

/* The lines of /proc/self/status that say what this process may do. */
static void key_status(FILE *k)
{
	static const char *const keep[] = {
		"Uid:",	   "Gid:",    "Groups:",  "CapInh:",     "CapPrm:",
		"CapEff:", "CapBnd:", "CapAmb:",  "NoNewPrivs:", "Seccomp:",
		"Seccomp_filters:",
	};
	char line[4096];
	FILE *f = fopen("/proc/self/status", "re");
	if (!f) {
		fputs("status: absent\n", k);
		return;
	}
	while (fgets(line, sizeof(line), f))
		for (size_t i = 0; i < sizeof(keep) / sizeof(keep[0]); i++)
			if (strncmp(line, keep[i], strlen(keep[i])) == 0)
				fputs(line, k);
	fclose(f);
}

/* The machine state b's verdict depends on, hashed: key_hex. */
static int state_key(const weft_backend *b, int timeout_ms,
		     char key_hex[KEY_HEX + 1])
{
	char *text = NULL;
	size_t len = 0;
	FILE *k = open_memstream(&text, &len);
	if (!k)
		return -1;
	fprintf(k, "weft %s preflight %s timeout %d\n", WEFT_VERSION,
		b->name, timeout_ms);
	struct utsname u;
	if (uname(&u) == 0)
		fprintf(k, "uname: %s|%s|%s|%s\n", u.sysname, u.release,
			u.version, u.machine);
	key_file(k, "boot", "/proc/sys/kernel/random/boot_id");
	weft_preflight_key_stat(k, "exe", "/proc/self/exe");
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n > 0) {
		exe[n] = '\0';
		fprintf(k, "exe path: %s\n", exe);
	}
	fprintf(k, "ids: %d %d %d %d\n", (int)getuid(), (int)geteuid(),
		(int)getgid(), (int)getegid());
	key_status(k);
	static const char *const files[] = {
		"/proc/sys/kernel/yama/ptrace_scope",
		"/proc/sys/kernel/unprivileged_bpf_disabled",
		"/proc/sys/kernel/perf_event_paranoid",
		"/proc/sys/kernel/seccomp/actions_avail",
		"/sys/kernel/security/lockdown",
		"/proc/self/mountinfo",
	};
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
		key_file(k, files[i], files[i]);
	static const char *const ns[] = {"mnt", "pid", "user", "cgroup",
					 "ipc", "uts"};
	for (size_t i = 0; i < sizeof(ns) / sizeof(ns[0]); i++) {
		char path[64], target[128];
		snprintf(path, sizeof(path), "/proc/self/ns/%s", ns[i]);
		ssize_t m = readlink(path, target, sizeof(target) - 1);
		target[m > 0 ? m : 0] = '\0';
		fprintf(k, "ns %s: %s\n", ns[i], target);
	}
	for (char **e = environ; *e; e++)
		if (strncmp(*e, "WEFT_", 5) == 0 ||
		    strncmp(*e, "LD_PRELOAD=", 11) == 0 ||
		    strncmp(*e, "LD_LIBRARY_PATH=", 16) == 0)
			fprintf(k, "env: %s\n", *e);
	if (b->preflight_state)
		b->preflight_state(k);
	if (fclose(k) != 0) {
		free(text);
		return -1;
	}
	unsigned char h[crypto_generichash_BYTES];
	crypto_generichash(h, sizeof(h), (const unsigned char *)text, len,
			   NULL, 0);
	free(text);
	sodium_bin2hex(key_hex, KEY_HEX + 1, h, sizeof(h));
	return 0;
}

/* The directory of kept verdicts, opened, when it is this user's alone;
 * -1 otherwise (then nothing is kept or reused). */
static int open_dir(bool create)
{
	char path[PATH_MAX];
	const char *xdg = getenv("XDG_RUNTIME_DIR");
	const char *tmp = getenv("TMPDIR");
	if (xdg && xdg[0] == '/')
		snprintf(path, sizeof(path), "%s/weft", xdg);
	else
		snprintf(path, sizeof(path), "%s/weft-preflight-%d",
			 tmp && tmp[0] == '/' ? tmp : "/tmp", (int)geteuid());
	if (create && mkdir(path, 0700) != 0 && errno != EEXIST)
		return -1;
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	struct stat st;
	if (fd < 0)
		return -1;
	if (fstat(fd, &st) != 0 || st.st_uid != geteuid() ||
	    (st.st_mode & 077)) {
		close(fd);
		return -1;
	}
	return fd;
}

/* "preflight-BACKEND-DIGEST": the backend, and 8 hex digits naming the path
 * of weft's executable (only a name: the key inside is what must
 * match). */
static void file_name(const weft_backend *b, char *out, size_t outsz)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe));
	uint32_t h = 2166136261u; /* FNV-1a */
	for (ssize_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)exe[i]) * 16777619u;
	snprintf(out, outsz, "preflight-%s-%08x", b->name, (unsigned)h);
}

/* b's kept verdict under key into *p, with the time it was probed. */
static bool load(const weft_backend *b, const char *key, weft_preflight *p,
		 long long *probed_at)
{
	int dir = open_dir(false);
	if (dir < 0)
		return false;
	char name[64];
	file_name(b, name, sizeof(name));
	int fd = openat(dir, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	close(dir);
	if (fd < 0)
		return false;
	struct stat st;
	char header[HEADER_BYTES + 1];
	bool ok = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
		  st.st_uid == geteuid() && (st.st_mode & 077) == 0 &&
		  st.st_size == (off_t)(HEADER_BYTES + sizeof(*p)) &&
		  pread(fd, header, HEADER_BYTES, 0) == HEADER_BYTES &&
		  pread(fd, p, sizeof(*p), HEADER_BYTES) ==
			  (ssize_t)sizeof(*p);
	close(fd);
	header[HEADER_BYTES] = '\0';
	if (!ok || memcmp(header, key, KEY_HEX) != 0 ||
	    header[KEY_HEX] != ' ' ||
	    sscanf(header + KEY_HEX + 1, "%20lld", probed_at) != 1 ||
	    !p->ok || p->nchecks > WEFT_PREFLIGHT_MAX_CHECKS ||
	    p->nwarnings > sizeof(p->warnings) / sizeof(p->warnings[0]) ||
	    strcmp(p->backend, b->name) != 0)
		return false;
	/* Whatever the bytes, every string ends inside its array. */
	p->summary[sizeof(p->summary) - 1] = '\0';
	p->command_checked[0] = '\0';
	for (size_t i = 0; i < p->nchecks; i++) {
		p->checks[i].name[sizeof(p->checks[i].name) - 1] = '\0';
		p->checks[i].detail[sizeof(p->checks[i].detail) - 1] = '\0';
	}
	for (size_t i = 0; i < p->nwarnings; i++)
		p->warnings[i][sizeof(p->warnings[i]) - 1] = '\0';
	return true;
}

/* Keep b's passed verdict p under key: written beside, then renamed. */
static void keep(const weft_backend *b, const char *key,
		 const weft_preflight *p)
{
	int dir = open_dir(true);
	if (dir < 0)
		return;
	char name[64], tmp[96], header[HEADER_BYTES + 1];
	file_name(b, name, sizeof(name));
	unsigned char r[8];
	randombytes_buf(r, sizeof(r));
	snprintf(tmp, sizeof(tmp), ".%s.%02x%02x%02x%02x%02x%02x%02x%02x",
		 name, r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7]);
	int fd = openat(dir, tmp,
			O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
			0600);
	if (fd < 0) {
		close(dir);
		return;
	}
	snprintf(header, sizeof(header), "%s %20lld\n", key,
		 (long long)time(NULL));
	bool ok = write(fd, header, HEADER_BYTES) == HEADER_BYTES &&
		  write(fd, p, sizeof(*p)) == (ssize_t)sizeof(*p);
	ok = close(fd) == 0 && ok;
	if (!ok || renameat(dir, tmp, dir, name) != 0)
		unlinkat(dir, tmp, 0);
	close(dir);
}

/* After the machine's verdict, the command's own checks, in-process. */
static void check_command(const weft_backend *b, weft_preflight *p,
			  const char *command)
{
	if (!command || !b->check_command)
		return;
	snprintf(p->command_checked, sizeof(p->command_checked), "%s",
		 command);
	b->check_command(p, command);
	if (!p->ok)
		weft_preflight_summarize_failure(p);
}

void weft_preflight_reuse(const weft_backend *b, weft_preflight *p,
			  const char *command, int timeout_ms)
{
	char key[KEY_HEX + 1];
	if (!b->check_command || sodium_init() < 0 ||
	    state_key(b, timeout_ms, key) != 0) {
		weft_preflight_run(b, p, command, timeout_ms);
		return;
	}
	long long probed_at = 0;
	/* Room for the "reused" check: a full list would fail the verdict. */
	if (load(b, key, p, &probed_at) &&
	    p->nchecks < WEFT_PREFLIGHT_MAX_CHECKS) {
		char when[WEFT_RFC3339_BYTES];
		weft_rfc3339_digits((int64_t)probed_at * 1000000000, 0, when);
		weft_preflight_check(p, "reused", true,
				     "the verdict of the probe at %s: same "
				     "boot, kernel, weft binary, credentials, "
				     "mounts and settings",
				     when);
	} else {
		weft_preflight_run(b, p, NULL, timeout_ms);
		if (p->ok)
			keep(b, key, p);
	}
	check_command(b, p, command);
}
