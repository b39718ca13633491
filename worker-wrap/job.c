/*
 * job.c - a job as its submitter sees it: the job record (`weft submit`
 * and `weft run`: who ran what, where, at which commit) and the requests
 * that create and end it at the coordinator, retried with backoff while
 * the coordinator is not there yet.
 *
 * The commit is read from .git as git reads it: a weft run pays for no
 * git process. It is read before nng's threads exist (a fork to ask git
 * must not copy them).
 */
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <weft/base.h>
#include <weft/wrap.h>

/* The commit git names, by asking git: a fork and two execs. */
static void git_commit_by_git(char *out, size_t outsz)
{
	FILE *p = popen("git rev-parse --verify -q HEAD 2>/dev/null", "re");
	if (!p)
		return;
	char line[128] = "";
	if (fgets(line, sizeof(line), p))
		line[strcspn(line, "\n")] = '\0';
	if (pclose(p) == 0 && strspn(line, "0123456789abcdef") == strlen(line))
		snprintf(out, outsz, "%s", line);
}

/* The first line of dir/name, without its newline; false when absent
 * or longer than outsz. */
static bool read_line_at(const char *dir, const char *name, char *out,
			 size_t outsz)
{
	char path[PATH_MAX];
	if (snprintf(path, sizeof(path), "%s/%s", dir, name) >=
	    (int)sizeof(path))
		return false;
	FILE *f = fopen(path, "re");
	if (!f)
		return false;
	bool ok = fgets(out, (int)outsz, f) != NULL;
	fclose(f);
	size_t n = ok ? strcspn(out, "\n") : 0;
	if (!ok || (out[n] != '\n' && n + 1 >= outsz))
		return false;
	out[n] = '\0';
	return true;
}

/* An object id: 40 (SHA-1) or 64 (SHA-256) lower-case hex digits. */
static bool is_oid(const char *s)
{
	size_t n = strlen(s);
	return (n == 40 || n == 64) && strspn(s, "0123456789abcdef") == n;
}

/* out = oid (an object id, at most 64 bytes), when it fits. */
static void put_oid(char *out, size_t outsz, const char *oid)
{
	size_t n = strlen(oid);
	if (n < outsz)
		memcpy(out, oid, n + 1);
}

/* ref's object id from common/packed-refs; false when not there. */
static bool packed_ref(const char *common, const char *ref, char *out,
		       size_t outsz)
{
	char path[PATH_MAX], line[PATH_MAX + 80];
	if (snprintf(path, sizeof(path), "%s/packed-refs", common) >=
	    (int)sizeof(path))
		return false;
	FILE *f = fopen(path, "re");
	if (!f)
		return false;
	bool found = false;
	while (!found && fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		char *sp = strchr(line, ' ');
		if (line[0] == '#' || line[0] == '^' || !sp)
			continue;
		*sp = '\0';
		if (strcmp(sp + 1, ref) == 0 && is_oid(line)) {
			snprintf(out, outsz, "%s", line);
			found = true;
		}
	}
	fclose(f);
	return found;
}

/*
 * The commit of the repository around the working directory, or "" when
 * there is none (or HEAD names no commit yet). Read from .git as git
 * reads it: a weft run pays for no git process. Anything this reader
 * does not know for sure (GIT_DIR and friends, a repository another user
 * owns, a reftable, a ref it cannot resolve) is asked of git instead, so
 * the answer is git's either way.
 */
static void git_commit(char *out, size_t outsz)
{
	out[0] = '\0';
	if (getenv("GIT_DIR") || getenv("GIT_COMMON_DIR") ||
	    getenv("GIT_CEILING_DIRECTORIES") ||
	    getenv("GIT_DISCOVERY_ACROSS_FILESYSTEM")) {
		git_commit_by_git(out, outsz);
		return;
	}
	char dir[PATH_MAX], gitdir[PATH_MAX + 8], line[PATH_MAX];
	if (!getcwd(dir, sizeof(dir)))
		return;
	struct stat st;
	for (;;) {
		snprintf(gitdir, sizeof(gitdir), "%s/.git",
			 strcmp(dir, "/") ? dir : "");
		if (lstat(gitdir, &st) == 0)
			break;
		char *slash = strrchr(dir, '/');
		if (!slash || slash == dir) {
			if (strcmp(dir, "/") == 0)
				return; /* no repository: no commit */
			strcpy(dir, "/");
		} else {
			*slash = '\0';
		}
	}
	if (S_ISREG(st.st_mode)) {
		/* A worktree or submodule: "gitdir: PATH". */
		if (!read_line_at(dir, ".git", line, sizeof(line)) ||
		    strncmp(line, "gitdir: ", 8) != 0)
			goto ask_git;
		if (line[8] == '/')
			snprintf(gitdir, sizeof(gitdir), "%s", line + 8);
		else if (snprintf(gitdir, sizeof(gitdir), "%s/%s", dir,
				  line + 8) >= (int)sizeof(gitdir))
			goto ask_git;
		if (stat(gitdir, &st) != 0)
			goto ask_git;
	}
	if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid())
		goto ask_git; /* git's safe.directory rules decide */
	char common[PATH_MAX + 8];
	snprintf(common, sizeof(common), "%s", gitdir);
	if (read_line_at(gitdir, "commondir", line, sizeof(line))) {
		if (line[0] == '/')
			snprintf(common, sizeof(common), "%s", line);
		else if (snprintf(common, sizeof(common), "%s/%s", gitdir,
				  line) >= (int)sizeof(common))
			goto ask_git;
	}
	if (!read_line_at(gitdir, "HEAD", line, sizeof(line)))
		goto ask_git;
	if (is_oid(line)) { /* detached */
		put_oid(out, outsz, line);
		return;
	}
	if (strncmp(line, "ref: refs/", 10) != 0 ||
	    strcmp(line, "ref: refs/heads/.invalid") == 0 /* reftable */ ||
	    strstr(line, ".."))
		goto ask_git;
	char ref[PATH_MAX], oid[128];
	snprintf(ref, sizeof(ref), "%s", line + 5);
	if ((read_line_at(gitdir, ref, oid, sizeof(oid)) ||
	     read_line_at(common, ref, oid, sizeof(oid))) &&
	    is_oid(oid)) {
		put_oid(out, outsz, oid);
		return;
	}
	if (packed_ref(common, ref, oid, sizeof(oid))) {
		put_oid(out, outsz, oid);
		return;
	}
ask_git:
	git_commit_by_git(out, outsz);
}

static char *join_argv(char **argv)
{
	size_t len = 1;
	for (char **a = argv; *a; a++)
		len += strlen(*a) + 1;
	if (len > WEFT_MAX_COMMAND_BYTES)
		len = WEFT_MAX_COMMAND_BYTES;
	char *s = calloc(1, len);
	if (!s)
		return NULL;
	size_t at = 0;
	for (char **a = argv; *a && at + 1 < len; a++) {
		int n = snprintf(s + at, len - at, "%s%s", at ? " " : "", *a);
		if (n < 0)
			break;
		at += (size_t)n;
	}
	return s;
}

void weft_wrap_job_user(weft_job_info *j)
{
	/* The reentrant lookup: weft run makes it on the thread that
	 * records its job beside the workload. */
	struct passwd pw, *found = NULL;
	char buf[4096];
	const char *user =
		getpwuid_r(getuid(), &pw, buf, sizeof(buf), &found) == 0 &&
				found
			? pw.pw_name
			: getenv("USER");
	snprintf(j->user, sizeof(j->user), "%s", user ? user : "");
}

void weft_wrap_job_info(weft_job_info *j, char **cmd)
{
	weft_wrap_job_info_sans_user(j, cmd);
	weft_wrap_job_user(j);
}

void weft_wrap_job_info_sans_user(weft_job_info *j, char **cmd)
{
	memset(j, 0, sizeof(*j));
	weft_uuid_new(j->id);
	weft_token_new(j->token);
	j->command = join_argv(cmd);
	if (gethostname(j->host, sizeof(j->host) - 1) != 0)
		j->host[0] = '\0';
	if (!getcwd(j->cwd, sizeof(j->cwd)))
		j->cwd[0] = '\0';
	git_commit(j->git, sizeof(j->git));
	j->created_ns = weft_real_ns();
}

int weft_wrap_coordinator_call(const char *url, const char *tls_ca,
			       const weft_buf *req, const char *what)
{
	char err[512];
	weft_wrap_client *c;
	if (weft_wrap_client_open(url, tls_ca, &c, err, sizeof(err)) !=
	    WEFT_OK) {
		weft_say("%s: %s", what, err);
		return -1;
	}
	weft_wrap_backoff b;
	weft_wrap_backoff_init(&b, 50, 1000, 0);
	int64_t t0 = weft_mono_ms();
	int rc = -1;
	for (;;) {
		int64_t spent = weft_mono_ms() - t0;
		if (spent >= WEFT_WRAP_CALL_TIMEOUT_MS) {
			weft_say("%s: the coordinator %s did not "
				 "answer within %d s (%s)",
				 what, url, WEFT_WRAP_CALL_TIMEOUT_MS / 1000,
				 err);
			break;
		}
		uint8_t *reply;
		size_t rlen;
		if (weft_wrap_client_call(
			    c, req->data, req->len,
			    (int)(WEFT_WRAP_CALL_TIMEOUT_MS - spent), &reply,
			    &rlen, err, sizeof(err)) != WEFT_OK) {
			usleep(weft_wrap_backoff_next(&b) * 1000u);
			continue;
		}
		weft_reply r;
		int e = weft_reply_decode(reply, rlen, &r);
		free(reply);
		if (e != WEFT_OK || r.kind != WEFT_REPLY_ACK) {
			weft_say("%s: the coordinator %s sent "
				 "something that is not an acknowledgement",
				 what, url);
			if (e == WEFT_OK)
				weft_reply_release(&r);
			break;
		}
		int status = r.ack.status;
		if (status == WEFT_ACK_REJECTED)
			weft_say("%s: the coordinator %s refused: "
				 "%s%s%s",
				 what, url, weft_reject_name(r.ack.reason),
				 r.ack.detail[0] ? ": " : "", r.ack.detail);
		weft_reply_release(&r);
		if (status == WEFT_ACK_RETRY) {
			snprintf(err, sizeof(err), "it asked to retry");
			usleep(weft_wrap_backoff_next(&b) * 1000u);
			continue;
		}
		rc = status == WEFT_ACK_REJECTED ? -1 : 0;
		break;
	}
	weft_wrap_client_close(c);
	return rc;
}
