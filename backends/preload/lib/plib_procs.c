/*
 * plib_procs.c - the wrapped process calls of libweft_preload.so: fork
 * (vfork runs as fork), posix_spawn with its file actions, the exec
 * family, the wait family (exit statuses of children), exit and
 * __libc_start_main (the exit status of main).
 *
 * Ordering: fork flushes the parent's records before the child exists
 * (atfork prepare) and sends the FORK before fork returns in the parent;
 * the collector holds a child's records until that FORK arrives. An exec
 * flushes everything first. An exec target the library cannot run in (no
 * PT_INTERP, or a secure-exec one that ignores LD_PRELOAD) is named in a
 * WARN record, and its EXEC is sent from outside.
 */

#include "plib.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

extern char **environ;

/* ---- exec targets the library cannot follow ---- */

static bool read_at(int fd, void *buf, size_t n, off_t off)
{
	PL_REAL(pread);
	return real_fn(fd, buf, n, off) == (ssize_t)n;
}

/* 1: an ELF without PT_INTERP (static); 0: dynamic or not ELF; the
 * interpreter of a #! script is looked at instead, one level deep. */
static int is_static(int fd, char *interp, size_t interpsz)
{
	unsigned char id[EI_NIDENT + 2];
	interp[0] = '\0';
	if (!read_at(fd, id, 2, 0))
		return 0;
	if (id[0] == '#' && id[1] == '!') {
		char line[256];
		PL_REAL(pread);
		ssize_t n = real_fn(fd, line, sizeof(line) - 1, 2);
		if (n <= 0)
			return 0;
		line[n] = '\0';
		char *p = line;
		while (*p == ' ' || *p == '\t')
			p++;
		size_t len = strcspn(p, " \t\n");
		if (len == 0 || len >= interpsz)
			return 0;
		memcpy(interp, p, len);
		interp[len] = '\0';
		return 0;
	}
	Elf64_Ehdr eh;
	if (!read_at(fd, &eh, sizeof(eh), 0) ||
	    memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 ||
	    eh.e_ident[EI_CLASS] != ELFCLASS64 ||
	    eh.e_phentsize != sizeof(Elf64_Phdr))
		return 0;
	for (unsigned i = 0; i < eh.e_phnum && i < 256; i++) {
		Elf64_Phdr ph;
		if (!read_at(fd, &ph, sizeof(ph),
			     (off_t)(eh.e_phoff + i * sizeof(ph))))
			return 0;
		if (ph.p_type == PT_INTERP)
			return 0;
	}
	return 1;
}

/* The kernel runs a set-ID or file-capability program in secure-exec
 * mode when it changes credentials, and the dynamic linker then ignores
 * LD_PRELOAD. */
static bool is_secure_exec(const char *path, const struct stat *st)
{
	if ((st->st_mode & S_ISUID) && st->st_uid != getuid())
		return true;
	if ((st->st_mode & S_ISGID) && st->st_gid != getgid())
		return true;
	return getuid() != 0 &&
	       getxattr(path, "security.capability", NULL, 0) > 0;
}

static void warn(const char *fmt, const char *a, const char *b)
{
	char text[1024];
	snprintf(text, sizeof(text), fmt, a, b);
	pl_out o;
	pl_out_init(&o, PL_R_WARN);
	o.strs[o.nstr++] = text;
	pl_emit(&o, false);
}

static void close_quietly(int fd)
{
	PL_REAL(close);
	real_fn(fd);
}

bool pl_check_exec_target(const char *path, int fd)
{
	PL_REAL(open);
	if (!pl_active || (!path && fd < 0))
		return false;
	int saved = errno;
	char interp[PATH_MAX], proc[64];
	if (fd >= 0) {
		snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
		path = proc;
	}
	bool blind = false;
	for (int depth = 0; depth < 2 && path; depth++) {
		int f = real_fn(path, O_RDONLY | O_CLOEXEC);
		struct stat st;
		if (f < 0)
			break; /* exec will fail or not read it: nothing to say */
		int st_ok = fstat(f, &st) == 0;
		int stat_static = st_ok && S_ISREG(st.st_mode)
					  ? is_static(f, interp, sizeof(interp))
					  : 0;
		close_quietly(f);
		if (st_ok && is_secure_exec(path, &st)) {
			warn("preload: %s runs set-user-ID, set-group-ID or "
			     "with file capabilities (secure-exec): the "
			     "dynamic linker ignores LD_PRELOAD there, so its "
			     "file accesses%s are not traced",
			     path, "");
			blind = true;
			break;
		}
		if (stat_static) {
			warn("preload: %s is a static binary (no PT_INTERP): "
			     "its file accesses%s are not traced",
			     path, "");
			blind = true;
			break;
		}
		path = interp[0] ? interp : NULL;
	}
	errno = saved;
	return blind;
}

/* ---- fork ---- */

static void emit_fork(pid_t child)
{
	pl_out o;
	pl_out_init(&o, PL_R_FORK);
	o.r.ret = child;
	pl_emit(&o, true);
}

PL_EXPORT pid_t fork(void)
{
	PL_REAL(fork);
	if (!pl_active)
		return real_fn();
	pl_in_fork_wrapper = 1;
	pid_t r = real_fn(); /* atfork handlers: flush, then child identity */
	pl_in_fork_wrapper = 0;
	if (r > 0)
		emit_fork(r);
	return r;
}

/* The child of vfork borrows the parent's memory, where this library's
 * buffer lives; a wrapper cannot even return into it safely. vfork's
 * contract allows fork's behaviour, so that is what it gets. */
PL_EXPORT pid_t vfork(void)
{
	return fork();
}

/* ---- exec ---- */

/* Where execvp would find file (for the checks only). */
static const char *search_path(const char *file, char *buf, size_t bufsz)
{
	if (!file || strchr(file, '/'))
		return file;
	const char *path = getenv("PATH");
	if (!path)
		path = "/bin:/usr/bin";
	while (*path) {
		size_t len = strcspn(path, ":");
		snprintf(buf, bufsz, "%.*s%s%s", (int)len, path,
			 len ? "/" : "", file);
		if (access(buf, X_OK) == 0)
			return buf;
		path += len + (path[len] == ':');
	}
	return file;
}

static void emit_exec(pid_t pid, const char *exe, char *const argv[])
{
	pl_out o;
	pl_out_init(&o, PL_R_EXEC);
	o.r.pid = pid;
	char real[PATH_MAX];
	o.strs[o.nstr++] = realpath(exe, real) ? real : exe;
	pl_out_add_argv(&o, -1, argv);
	pl_emit(&o, false);
}

/* Before an exec of exe (searched in $PATH when search) or fd:
 * everything so far goes out; a target the library will not run in gets
 * its EXEC from here. */
static void before_exec(const char *exe, bool search, int fd,
			char *const argv[])
{
	if (!pl_active)
		return;
	int saved = errno;
	char buf[PATH_MAX];
	if (search)
		exe = search_path(exe, buf, sizeof(buf));
	bool blind = pl_check_exec_target(exe, fd);
	if (blind && exe)
		emit_exec(0, exe, argv);
	pl_lock();
	pl_materialize_locked(-1); /* fds that survive the exec */
	pl_flush_io_locked(true);
	pl_moves_check_locked();
	if (pl_first_batch_pending()) {
		/* A fork child that sent nothing yet: say so before the new
		 * image does, or the collector takes it for a process whose
		 * creation it cannot see and makes a FORK of its own. */
		pl_out o;
		pl_out_init(&o, PL_R_HELLO);
		pl_append_locked(&o);
	}
	pl_send_locked();
	pl_unlock();
	errno = saved;
}

static void free_env(char **env, char *const *orig)
{
	if (!env)
		return;
	/* The strings made by pl_env_for_exec are the ones not in orig. */
	for (size_t i = 0; env[i]; i++) {
		bool theirs = false;
		for (size_t j = 0; orig && orig[j]; j++)
			if (orig[j] == env[i]) {
				theirs = true;
				break;
			}
		if (!theirs)
			free(env[i]);
	}
	free(env);
}

/* execve, execvpe and fexecve: what the exec needs first (before_exec,
 * with the program exe, searched in $PATH when search), then the real call
 * with weft's variables in the environment; the environment made for it
 * is freed again when the exec fails. */
#define EXEC_WRAPPER(name, target_param, target, exe, search, fd)              \
	PL_EXPORT int name(target_param, char *const argv[],                   \
			   char *const envp[])                                 \
	{                                                                      \
		PL_REAL(name);                                                 \
		if (!pl_active)                                                \
			return real_fn(target, argv, envp);                    \
		before_exec(exe, search, fd, argv);                            \
		char **env = pl_env_for_exec(envp, false);                     \
		int r = real_fn(target, argv, env ? env : envp);               \
		int e = errno;                                                 \
		free_env(env, envp);                                           \
		errno = e;                                                     \
		return r;                                                      \
	}

EXEC_WRAPPER(execve, const char *path, path, path, false, -1)
EXEC_WRAPPER(execvpe, const char *file, file, file, true, -1)
EXEC_WRAPPER(fexecve, int fd, fd, NULL, false, fd)

PL_EXPORT int execv(const char *path, char *const argv[])
{
	return execve(path, argv, environ);
}

PL_EXPORT int execvp(const char *file, char *const argv[])
{
	return execvpe(file, argv, environ);
}

/* execl and friends: their arguments as an argv (on the heap: this runs
 * in a forked child, where malloc is fine), then execve or execvpe. */
enum { EXECL, EXECLP, EXECLE };

static int exec_list(int how, const char *file, const char *arg0,
		     va_list ap)
{
	va_list count;
	va_copy(count, ap);
	size_t n = 1;
	while (va_arg(count, char *))
		n++;
	va_end(count);
	char **argv = malloc((n + 1) * sizeof(*argv));
	if (!argv) {
		errno = ENOMEM;
		return -1;
	}
	argv[0] = (char *)arg0;
	for (size_t i = 1; i <= n; i++)
		argv[i] = va_arg(ap, char *);
	char **envp = how == EXECLE ? va_arg(ap, char **) : environ;
	int r = how == EXECLP ? execvpe(file, argv, envp)
			      : execve(file, argv, envp);
	free(argv);
	return r;
}

#define EXEC_LIST_WRAPPER(name, how)                                           \
	PL_EXPORT int name(const char *file, const char *arg, ...)             \
	{                                                                      \
		va_list ap;                                                    \
		va_start(ap, arg);                                             \
		int r = exec_list(how, file, arg, ap);                         \
		va_end(ap);                                                    \
		return r;                                                      \
	}

EXEC_LIST_WRAPPER(execl, EXECL)
EXEC_LIST_WRAPPER(execlp, EXECLP)
EXEC_LIST_WRAPPER(execle, EXECLE)

/* ---- posix_spawn and its file actions ---- */

/* The file actions a program set up, as far as the spawn needs them: the
 * child performs them inside libc, unseen, so the parent reports them on
 * the child's behalf right after its FORK. */
#define PL_FA_LISTS 16
#define PL_FA_ACTIONS 32

enum { FA_OPEN, FA_DUP2, FA_CLOSE, FA_CHDIR, FA_FCHDIR };

struct fa_action {
	int type, fd, fd2, oflag, mode;
	char *path;
	int8_t created; /* filled at spawn time */
};

struct fa_list {
	const void *key;
	int n;
	bool overflow;
	struct fa_action a[PL_FA_ACTIONS];
};

static struct fa_list fa_lists[PL_FA_LISTS];

static struct fa_list *fa_find(const void *key, bool make)
{
	struct fa_list *free_one = NULL;
	for (int i = 0; i < PL_FA_LISTS; i++) {
		if (fa_lists[i].key == key)
			return &fa_lists[i];
		if (!fa_lists[i].key && !free_one)
			free_one = &fa_lists[i];
	}
	if (!make || !free_one)
		return NULL;
	memset(free_one, 0, sizeof(*free_one));
	free_one->key = key;
	return free_one;
}

static void fa_drop(const void *key)
{
	struct fa_list *l = fa_find(key, false);
	if (!l)
		return;
	for (int i = 0; i < l->n; i++)
		free(l->a[i].path);
	memset(l, 0, sizeof(*l));
}

static void fa_add(const void *key, int type, int fd, int fd2,
		   const char *path, int oflag, int mode)
{
	if (!pl_active)
		return;
	pl_lock();
	struct fa_list *l = fa_find(key, true);
	if (l && l->n < PL_FA_ACTIONS) {
		struct fa_action *a = &l->a[l->n++];
		*a = (struct fa_action){type, fd, fd2, oflag, mode, NULL, -1};
		if (path)
			a->path = strdup(path);
	} else if (l) {
		l->overflow = true;
	}
	pl_unlock();
}

/* A list made afresh or gone: what was remembered for it is dropped (the
 * address may be reused by another list). */
static void fa_forget(const void *key)
{
	if (!pl_active)
		return;
	pl_lock();
	fa_drop(key);
	pl_unlock();
}

PL_EXPORT int posix_spawn_file_actions_init(posix_spawn_file_actions_t *fa)
{
	PL_REAL(posix_spawn_file_actions_init);
	fa_forget(fa);
	return real_fn(fa);
}

PL_EXPORT int
posix_spawn_file_actions_destroy(posix_spawn_file_actions_t *fa)
{
	PL_REAL(posix_spawn_file_actions_destroy);
	fa_forget(fa);
	return real_fn(fa);
}

/* A file action added: the real call, then the action remembered for the
 * spawn (fa_add's arguments after the list). */
#define FA_WRAPPER(name, params, args, ...)                                    \
	PL_EXPORT int name params                                              \
	{                                                                      \
		PL_REAL(name);                                                 \
		int r = real_fn args;                                          \
		if (r == 0)                                                    \
			fa_add(fa, __VA_ARGS__);                               \
		return r;                                                      \
	}

FA_WRAPPER(posix_spawn_file_actions_addopen,
	   (posix_spawn_file_actions_t * fa, int fd, const char *path,
	    int oflag, mode_t mode),
	   (fa, fd, path, oflag, mode), FA_OPEN, fd, 0, path, oflag, (int)mode)
FA_WRAPPER(posix_spawn_file_actions_adddup2,
	   (posix_spawn_file_actions_t * fa, int fd, int newfd),
	   (fa, fd, newfd), FA_DUP2, fd, newfd, NULL, 0, 0)
FA_WRAPPER(posix_spawn_file_actions_addclose,
	   (posix_spawn_file_actions_t * fa, int fd), (fa, fd), FA_CLOSE, fd, 0,
	   NULL, 0, 0)
FA_WRAPPER(posix_spawn_file_actions_addchdir_np,
	   (posix_spawn_file_actions_t * fa, const char *path), (fa, path),
	   FA_CHDIR, 0, 0, path, 0, 0)
FA_WRAPPER(posix_spawn_file_actions_addfchdir_np,
	   (posix_spawn_file_actions_t * fa, int fd), (fa, fd), FA_FCHDIR, fd,
	   0, NULL, 0, 0)

/* Before the spawn: the created hints of its opens, looked up now. */
static void fa_prepare(struct fa_list *l)
{
	for (int i = 0; l && i < l->n; i++)
		if (l->a[i].type == FA_OPEN)
			l->a[i].created = pl_created_hint(
				AT_FDCWD, l->a[i].path, l->a[i].oflag);
}

static void fa_emit_locked(const struct fa_list *l, pid_t child)
{
	for (int i = 0; l && i < l->n; i++) {
		const struct fa_action *a = &l->a[i];
		pl_out o;
		switch (a->type) {
		case FA_OPEN:
			pl_out_init(&o, PL_R_OPEN);
			o.r.fd = a->fd;
			o.r.fd2 = AT_FDCWD;
			o.r.flags = a->oflag;
			o.r.mode = a->mode;
			o.r.created = a->created;
			o.strs[o.nstr++] = a->path;
			break;
		case FA_DUP2:
			if (a->fd == a->fd2) {
				/* glibc: clears close-on-exec instead. */
				pl_out_init(&o, PL_R_SETCLOEXEC);
				o.r.fd = a->fd;
			} else {
				pl_out_init(&o, PL_R_DUP);
				o.r.fd = a->fd;
				o.r.fd2 = a->fd2;
			}
			break;
		case FA_CLOSE:
			pl_out_init(&o, PL_R_CLOSE);
			o.r.fd = a->fd;
			break;
		case FA_CHDIR:
			pl_out_init(&o, PL_R_CHDIR);
			o.strs[o.nstr++] = a->path;
			break;
		default:
			pl_out_init(&o, PL_R_FCHDIR);
			o.r.fd = a->fd;
			break;
		}
		o.r.pid = child;
		pl_append_locked(&o);
	}
}

typedef int spawn_fn(pid_t *, const char *, const posix_spawn_file_actions_t *,
		     const posix_spawnattr_t *, char *const[], char *const[]);

static int spawn(spawn_fn *real, bool search, pid_t *pid, const char *file,
		 const posix_spawn_file_actions_t *fa,
		 const posix_spawnattr_t *attr, char *const argv[],
		 char *const envp[])
{
	if (!pl_active)
		return real(pid, file, fa, attr, argv, envp);
	char buf[PATH_MAX];
	const char *exe = search ? search_path(file, buf, sizeof(buf)) : file;
	bool blind = pl_check_exec_target(exe, -1);
	char **env = pl_env_for_exec(envp, !blind);
	pid_t child = 0;
	pl_lock();
	pl_materialize_locked(-1);
	pl_flush_io_locked(false);
	pl_send_locked();
	struct fa_list copy, *l = fa ? fa_find(fa, false) : NULL;
	if (l)
		copy = *l; /* paths stay owned by the table */
	pl_unlock();
	if (l)
		fa_prepare(&copy);
	int r = real(&child, file, fa, attr, argv, env ? env : envp);
	if (r == 0 && child > 0) {
		pl_lock();
		pl_out o;
		pl_out_init(&o, PL_R_FORK);
		o.r.ret = child;
		pl_append_locked(&o);
		if (l)
			fa_emit_locked(&copy, child);
		pl_unlock();
		if (l && copy.overflow)
			warn("preload: a posix_spawn of %s had more file "
			     "actions than are followed (%s)",
			     exe, "its redirections may be missing");
		if (blind)
			emit_exec(child, exe, argv);
		pl_lock();
		pl_send_locked();
		pl_unlock();
	}
	free_env(env, envp);
	if (pid)
		*pid = child;
	return r;
}

/* posix_spawn, and posix_spawnp (search: file is looked up in $PATH). */
#define SPAWN_WRAPPER(name, search)                                            \
	PL_EXPORT int name(pid_t *pid, const char *file,                       \
			   const posix_spawn_file_actions_t *fa,               \
			   const posix_spawnattr_t *attr, char *const argv[],  \
			   char *const envp[])                                 \
	{                                                                      \
		PL_REAL(name);                                                 \
		return spawn(real_fn, search, pid, file, fa, attr, argv,       \
			     envp);                                            \
	}

SPAWN_WRAPPER(posix_spawn, false)
SPAWN_WRAPPER(posix_spawnp, true)

/* ---- wait: the exit statuses of children ---- */

static void reaped(pid_t pid, int status)
{
	if (!pl_active || pid <= 0 ||
	    !(WIFEXITED(status) || WIFSIGNALED(status)))
		return;
	pl_out o;
	pl_out_init(&o, PL_R_EXIT);
	o.r.pid = pid;
	o.r.ret = WIFEXITED(status) ? WEXITSTATUS(status)
				    : 128 + WTERMSIG(status);
	pl_emit(&o, false);
}

PL_EXPORT pid_t waitpid(pid_t pid, int *status, int options)
{
	PL_REAL(waitpid);
	int st = 0;
	pid_t r = real_fn(pid, &st, options);
	if (r > 0) {
		reaped(r, st);
		if (status)
			*status = st;
	}
	return r;
}

PL_EXPORT pid_t wait(int *status)
{
	return waitpid(-1, status, 0);
}

PL_EXPORT pid_t wait4(pid_t pid, int *status, int options,
		      struct rusage *ru)
{
	PL_REAL(wait4);
	int st = 0;
	pid_t r = real_fn(pid, &st, options, ru);
	if (r > 0) {
		reaped(r, st);
		if (status)
			*status = st;
	}
	return r;
}

PL_EXPORT pid_t wait3(int *status, int options, struct rusage *ru)
{
	return wait4(-1, status, options, ru);
}

PL_EXPORT int waitid(idtype_t idtype, id_t id, siginfo_t *info, int options)
{
	PL_REAL(waitid);
	int r = real_fn(idtype, id, info, options);
	if (r == 0 && info && info->si_pid > 0 && !(options & WNOWAIT)) {
		if (info->si_code == CLD_EXITED)
			reaped(info->si_pid, (info->si_status & 0xff) << 8);
		else if (info->si_code == CLD_KILLED ||
			 info->si_code == CLD_DUMPED)
			reaped(info->si_pid, info->si_status & 0x7f);
	}
	return r;
}

/* ---- exit ---- */

PL_EXPORT void exit(int code)
{
	PL_REAL(exit);
	pl_exit_code = code;
	pl_exit_known = true;
	real_fn(code);
	__builtin_unreachable();
}

PL_EXPORT void _exit(int code)
{
	PL_REAL(_exit);
	pl_exit_code = code;
	pl_exit_known = true;
	pl_end();
	real_fn(code);
	__builtin_unreachable();
}

PL_EXPORT void _Exit(int code)
{
	_exit(code);
}

typedef int main_fn(int, char **, char **);
static main_fn *pl_real_main;

static int pl_main(int argc, char **argv, char **envp)
{
	int r = pl_real_main(argc, argv, envp);
	pl_exit_code = r;
	pl_exit_known = true;
	return r;
}

/* The status main returns reaches exit() inside libc, unseen: catch it
 * on the way out of main. */
PL_EXPORT int __libc_start_main(main_fn *main, int argc, char **argv,
				void (*init)(void), void (*fini)(void),
				void (*rtld_fini)(void), void *stack_end)
{
	typedef int start_fn(main_fn *, int, char **, void (*)(void),
			     void (*)(void), void (*)(void), void *);
	start_fn *real = (start_fn *)pl_real("__libc_start_main");
	pl_real_main = main;
	return real(pl_main, argc, argv, init, fini, rtld_fini, stack_end);
}
