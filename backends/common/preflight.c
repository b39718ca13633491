/*
 * preflight.c - building preflight results: named checks that fold into one
 * verdict, and warnings; and the checks and probe scaffolding every
 * backend's preflight shares (platform, command, a probe directory, small
 * /proc files). Each backend's own checks live in its folder.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/utsname.h>

#include <weft/backends.h>
#include <weft/base.h>
#include "preflight_internal.h"

void weft_preflight_begin(weft_preflight *p, const char *backend,
			  const char *command)
{
	memset(p, 0, sizeof(*p));
	snprintf(p->backend, sizeof(p->backend), "%s", backend);
	if (command)
		snprintf(p->command_checked, sizeof(p->command_checked), "%s",
			 command);
	p->ok = true; /* until a check fails */
}

void weft_preflight_check(weft_preflight *p, const char *name, bool ok,
			  const char *fmt, ...)
{
	if (p->nchecks >= WEFT_PREFLIGHT_MAX_CHECKS) {
		p->ok = false;
		return;
	}
	weft_check *c = &p->checks[p->nchecks++];
	snprintf(c->name, sizeof(c->name), "%s", name);
	c->ok = ok;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c->detail, sizeof(c->detail), fmt, ap);
	va_end(ap);
	if (!ok)
		p->ok = false;
}

void weft_preflight_warn(weft_preflight *p, const char *fmt, ...)
{
	if (p->nwarnings >= sizeof(p->warnings) / sizeof(p->warnings[0]))
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(p->warnings[p->nwarnings++], sizeof(p->warnings[0]), fmt, ap);
	va_end(ap);
}

void weft_preflight_summarize_failure(weft_preflight *p)
{
	for (size_t i = 0; i < p->nchecks; i++)
		if (!p->checks[i].ok) {
			int n = snprintf(p->summary, sizeof(p->summary),
					 "%s unavailable: %s: %.400s",
					 p->backend, p->checks[i].name,
					 p->checks[i].detail);
			/* A detail cut short says so. */
			if (n >= (int)sizeof(p->summary))
				memcpy(p->summary + sizeof(p->summary) - 4,
				       "...", 4);
			return;
		}
}

void weft_preflight_conclude(weft_preflight *p, const struct utsname *u,
			     int64_t start, const char *fmt, ...)
{
	if (!p->ok) {
		weft_preflight_summarize_failure(p);
		return;
	}
	char what[sizeof(p->summary)];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	long long ms = (long long)(weft_mono_ms() - start);
	if (snprintf(p->summary, sizeof(p->summary),
		     "%s works: %s %s %s, %s in %lld ms", p->backend,
		     u->sysname, u->release, u->machine, what,
		     ms) >= (int)sizeof(p->summary))
		/* Too long for its field: cut, like every check's text, but
		 * still saying how long it took. */
		snprintf(p->summary + sizeof(p->summary) - 24, 24,
			 "... in %lld ms", ms);
}

bool weft_preflight_platform(weft_preflight *p, struct utsname *u)
{
	bool linux_ok = uname(u) == 0 && strcmp(u->sysname, "Linux") == 0;
	weft_preflight_check(p, "platform", linux_ok, "%s %s",
			     linux_ok ? u->sysname : "not Linux",
			     linux_ok ? u->release : "");
	return linux_ok;
}

bool weft_preflight_stat_command(weft_preflight *p, const char *command,
				 struct stat *st)
{
	if (stat(command, st) == 0)
		return true;
	weft_preflight_check(p, "command", false, "%s: %s", command,
			     strerror(errno));
	return false;
}

bool weft_preflight_command_executable(weft_preflight *p, const char *command,
				       const struct stat *st)
{
	if (S_ISREG(st->st_mode) && access(command, X_OK) == 0)
		return true;
	weft_preflight_check(p, "command", false, "%s: not an executable file",
			     command);
	return false;
}

int weft_probe_dir_make(const char *backend, char *real, char *why,
			size_t whysz)
{
	const char *tmp = getenv("TMPDIR");
	char dir[PATH_MAX], src[PATH_MAX + 8];
	snprintf(dir, sizeof(dir), "%s/weft-%s-probe-XXXXXX",
		 tmp && tmp[0] == '/' ? tmp : "/tmp", backend);
	if (!mkdtemp(dir) || !realpath(dir, real)) {
		snprintf(why, whysz, "cannot make a temporary directory: %s",
			 strerror(errno));
		return -1;
	}
	snprintf(src, sizeof(src), "%s/src", real);
	int fd = open(src, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	bool wrote = fd >= 0 && write(fd, "weft probe\n", 11) == 11;
	int err = errno;
	if (fd >= 0)
		close(fd);
	if (!wrote) {
		snprintf(why, whysz, "cannot write %.160s: %s", src,
			 strerror(err));
		weft_probe_dir_remove(real);
		return -1;
	}
	return 0;
}

void weft_probe_dir_remove(const char *real)
{
	static const char *const names[] = {"src", "tmp", "dst"};
	char path[PATH_MAX + 8];
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", real, names[i]);
		unlink(path);
	}
	rmdir(real);
}

ssize_t weft_read_small_file(const char *path, char *buf, size_t bufsz)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, bufsz - 1);
	close(fd);
	if (n < 0)
		return -1;
	buf[n] = '\0';
	while (n > 0 && buf[n - 1] == '\n')
		buf[--n] = '\0';
	return n;
}

int weft_probe_launch(weft_launch *l, weft_report *rep, char *const *argv)
{
	static char *const envp[] = {"LC_ALL=C", "PATH=/usr/bin:/bin", NULL};
	weft_report_init(rep);
	*l = (weft_launch){.argv = argv, .envp = envp};
	l->classifier = weft_classifier_new();
	return l->classifier ? WEFT_OK : WEFT_ENOMEM;
}
