/*
 * serve.c - running a coordinator as a process: `weft coordinator` serves
 * until SIGTERM or SIGINT, and weft_coordinator_spawn starts one in a
 * child and waits until it listens (how `weft submit` gets a coordinator
 * without using nng itself before it forks the user's command).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "coordinator_internal.h"
#include <weft/base.h>

static int write_all(int fd, const char *s, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, s, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		s += w;
		n -= (size_t)w;
	}
	return 0;
}

int weft_coordinator_serve(const weft_coordinator_opts *o, int ready_fd,
			   FILE *msgs)
{
	/* Block the stop signals in every thread (nng's are created from
	 * here on and inherit the mask); this thread waits for them. */
	sigset_t stop;
	/* A parent that ignored them (a shell's background job, weft submit
	 * while it waits) must not make them unreceivable here. */
	signal(SIGTERM, SIG_DFL);
	signal(SIGINT, SIG_DFL);
	sigemptyset(&stop);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIGINT);
	pthread_sigmask(SIG_BLOCK, &stop, NULL);

	char err[1024];
	weft_coordinator *c;
	int rc = weft_coordinator_start(o, &c, err, sizeof(err));
	if (rc) {
		fprintf(msgs, "weft coordinator: %s\n", err);
		return 1;
	}
	const char *url = weft_coordinator_url(c);
	fprintf(msgs,
		"weft coordinator: listening on %s (store %s; jobs are "
		"created with the submit key in %s)\n",
		url, o->store_path, weft_coordinator_submit_key_file(c));
	fflush(msgs);
	if (ready_fd >= 0) {
		char line[WEFT_COORD_MAX_URL_BYTES + 32];
		int n = snprintf(line, sizeof(line), "%s\n", url);
		if (write_all(ready_fd, line, (size_t)n))
			fprintf(msgs,
				"weft coordinator: cannot write the URL to "
				"fd %d: %s\n",
				ready_fd, strerror(errno));
		close(ready_fd);
	}
	int sig = 0;
	while (sigwait(&stop, &sig) != 0)
		;
	fprintf(msgs, "weft coordinator: %s: finishing requests in flight\n",
		strsignal(sig));
	rc = weft_coordinator_stop(c);
	if (weft_coordinator_closes_left())
		fprintf(msgs,
			"weft coordinator: its socket did not close within "
			"5 s (a client still sending; nng 1.5): stopped "
			"without waiting for it\n");
	if (rc) {
		fprintf(msgs, "weft coordinator: the last commit failed: %s\n",
			weft_strerror(rc));
		return 1;
	}
	fprintf(msgs, "weft coordinator: stopped\n");
	return 0;
}

/* Read the child's first line (its URL) within timeout_ms. */
static int read_ready_line(int fd, int timeout_ms, char *out, size_t outsz)
{
	size_t len = 0;
	int64_t start = weft_mono_ms();
	for (;;) {
		int64_t spent = weft_mono_ms() - start;
		if (spent >= timeout_ms)
			return WEFT_EIO;
		struct pollfd p = {fd, POLLIN, 0};
		int r = poll(&p, 1, (int)(timeout_ms - spent));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return WEFT_EIO;
		if (len + 1 >= outsz)
			return WEFT_ETOOBIG;
		ssize_t n = read(fd, out + len, outsz - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return WEFT_EIO; /* the child exited first */
		len += (size_t)n;
		out[len] = '\0';
		char *nl = strchr(out, '\n');
		if (nl) {
			*nl = '\0';
			return WEFT_OK;
		}
	}
}

int weft_coordinator_spawn(const char *weft_exe, const weft_coordinator_opts *o,
			   int timeout_ms, pid_t *pid, char *url_out,
			   size_t urlsz, char *err, size_t errsz)
{
	int pfd[2];
	if (pipe2(pfd, O_CLOEXEC)) {
		snprintf(err, errsz, "pipe: %s", strerror(errno));
		return WEFT_EIO;
	}
	char fdarg[16];
	const char *argv[16];
	int n = 0;
	argv[n++] = weft_exe;
	argv[n++] = "coordinator";
	argv[n++] = "--listen";
	argv[n++] = o->listen_url;
	argv[n++] = "--store";
	argv[n++] = o->store_path;
	if (o->tls_cert) {
		argv[n++] = "--tls-cert";
		argv[n++] = o->tls_cert;
	}
	if (o->tls_key) {
		argv[n++] = "--tls-key";
		argv[n++] = o->tls_key;
	}
	if (o->submit_key_file) {
		argv[n++] = "--submit-key-file";
		argv[n++] = o->submit_key_file;
	}
	if (!o->log)
		argv[n++] = "--quiet";
	argv[n++] = "--ready-fd";
	argv[n++] = fdarg;
	argv[n] = NULL;
	pid_t parent = getpid();
	pid_t child = fork();
	if (child < 0) {
		snprintf(err, errsz, "fork: %s", strerror(errno));
		close(pfd[0]);
		close(pfd[1]);
		return WEFT_EIO;
	}
	if (child == 0) {
		/* A coordinator whose starter died (weft submit killed)
		 * stops like on SIGTERM: it commits what is in flight and
		 * exits, instead of serving a job nobody will end. */
		if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0 ||
		    getppid() != parent)
			_exit(127);
		/* The write end survives exec under a known number. */
		int fd = dup(pfd[1]);
		if (fd < 0)
			_exit(127);
		snprintf(fdarg, sizeof(fdarg), "%d", fd);
		execv(weft_exe, (char *const *)argv);
		_exit(127);
	}
	close(pfd[1]);
	int rc = read_ready_line(pfd[0], timeout_ms, url_out, urlsz);
	close(pfd[0]);
	if (rc) {
		int status;
		if (waitpid(child, &status, WNOHANG) == child)
			snprintf(err, errsz,
				 "the coordinator (%s coordinator --listen "
				 "%s) exited with status %d before listening",
				 weft_exe, o->listen_url,
				 WIFEXITED(status) ? WEXITSTATUS(status)
						   : 128 + WTERMSIG(status));
		else {
			snprintf(err, errsz,
				 "the coordinator did not listen on %s "
				 "within %d ms",
				 o->listen_url, timeout_ms);
			kill(child, SIGKILL);
			waitpid(child, &status, 0);
		}
		return WEFT_EIO;
	}
	*pid = child;
	return WEFT_OK;
}
