/*
 * tracee.c - reading what a stopped tracee holds: strings and structs in
 * its memory (process_vm_readv: one syscall, no word-at-a-time PEEKDATA),
 * and its argv, executable and thread group from /proc. Everything read
 * here comes from an untrusted process and is bounded by the schema limits.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "ptrace_internal.h"

#define PAGE 4096u

int pt_read_mem(pid_t pid, uint64_t addr, void *buf, size_t len)
{
	struct iovec local = {buf, len};
	struct iovec remote = {(void *)(uintptr_t)addr, len};
	ssize_t n = process_vm_readv(pid, &local, 1, &remote, 1, 0);
	return n == (ssize_t)len ? 0 : -1;
}

ssize_t pt_read_string(pid_t pid, uint64_t addr, char *buf, size_t bufsz)
{
	size_t got = 0;
	if (addr == 0 || bufsz == 0)
		return -1;
	/* A page at a time: process_vm_readv does not split an iovec, so a
	 * read running into an unmapped page would lose the whole chunk.
	 * Most paths end inside the first chunk: one syscall. */
	while (got < bufsz) {
		uint64_t at = addr + got;
		size_t chunk = PAGE - (size_t)(at % PAGE);
		if (chunk > bufsz - got)
			chunk = bufsz - got;
		struct iovec local = {buf + got, chunk};
		struct iovec remote = {(void *)(uintptr_t)at, chunk};
		ssize_t n = process_vm_readv(pid, &local, 1, &remote, 1, 0);
		if (n <= 0)
			return -1;
		char *nul = memchr(buf + got, '\0', (size_t)n);
		if (nul)
			return nul - buf;
		got += (size_t)n;
	}
	return -1; /* longer than any path a syscall accepts */
}

static ssize_t read_small_file(const char *path, char *buf, size_t bufsz)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	size_t got = 0;
	while (got < bufsz) {
		ssize_t n = read(fd, buf + got, bufsz - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	return (ssize_t)got;
}

int pt_read_cmdline(pid_t pid, char ***argv_out, char **block_out)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	char *block = malloc(WEFT_MAX_ARGV_BYTES + 1);
	if (!block)
		return -1;
	ssize_t n = read_small_file(path, block, WEFT_MAX_ARGV_BYTES);
	if (n < 0) {
		free(block);
		return -1;
	}
	/* Longer argv is cut at the limit; the last string is terminated. */
	block[n] = '\0';
	uint32_t argc = 0;
	for (ssize_t i = 0; i < n; i++)
		if (block[i] == '\0')
			argc++;
	if (n > 0 && block[n - 1] != '\0')
		argc++;
	if (argc > WEFT_MAX_ARGC)
		argc = WEFT_MAX_ARGC;
	char **argv = calloc(argc + 1, sizeof(*argv));
	if (!argv) {
		free(block);
		return -1;
	}
	char *p = block;
	for (uint32_t i = 0; i < argc; i++) {
		argv[i] = p;
		p += strlen(p) + 1;
	}
	*argv_out = argv;
	*block_out = block;
	return (int)argc;
}

int pt_read_exe(pid_t pid, char *buf, size_t bufsz)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
	ssize_t n = readlink(path, buf, bufsz - 1);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	return 0;
}

/* A numeric field ("Tgid:", "TracerPid:") of /proc/TID/status. */
static long status_field(pid_t tid, const char *name)
{
	char path[64], buf[2048];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)tid);
	ssize_t n = read_small_file(path, buf + 1, sizeof(buf) - 2);
	if (n <= 0)
		return -1;
	buf[0] = '\n'; /* so every field, the first too, follows a newline */
	buf[n + 1] = '\0';
	char key[32];
	snprintf(key, sizeof(key), "\n%s", name);
	char *p = strstr(buf, key);
	if (!p)
		return -1;
	return strtol(p + strlen(key), NULL, 10);
}

pid_t pt_read_tgid(pid_t tid)
{
	long v = status_field(tid, "Tgid:");
	return v > 0 ? (pid_t)v : 0;
}

pid_t pt_read_tracer(pid_t tid)
{
	long v = status_field(tid, "TracerPid:");
	return v > 0 ? (pid_t)v : 0;
}
