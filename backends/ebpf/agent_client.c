/*
 * agent_client.c - a wrapper's side of the node agent: find its socket,
 * start the agent when none answers (detached: its own session, standard
 * streams on /dev/null, so nothing of the caller's is held open), and
 * register a root pid.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "ebpf_internal.h"
#include <weft/base.h>

/* How long a wrapper waits for an agent it started to answer. */
#define WB_AGENT_START_MS 5000

int wb_agent_socket_path(char *out, size_t outsz)
{
	const char *v = getenv("WEFT_AGENT_SOCKET");
	int n;
	if (v && *v)
		n = snprintf(out, outsz, "%s", v);
	else if (geteuid() == 0)
		n = snprintf(out, outsz, "/run/weft/agent.sock");
	else if ((v = getenv("XDG_RUNTIME_DIR")) && v[0] == '/')
		n = snprintf(out, outsz, "%s/weft/agent.sock", v);
	else
		return -1;
	struct sockaddr_un sa;
	return n > 0 && (size_t)n < outsz && (size_t)n < sizeof(sa.sun_path)
		       ? 0
		       : -1;
}

static int try_connect(const char *path)
{
	struct sockaddr_un sa;
	int fd = wb_unix_socket(path, 0, &sa);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Start `weft agent` detached from us: a grandchild in its own session. */
static void spawn_agent(void)
{
	char self[4096];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0)
		return;
	self[n] = '\0';
	pid_t child = fork();
	if (child < 0)
		return;
	if (child == 0) {
		setsid();
		if (fork() != 0)
			_exit(0);
		int null = open("/dev/null", O_RDWR);
		if (null >= 0) {
			dup2(null, 0);
			dup2(null, 1);
			dup2(null, 2);
		}
		for (int fd = 3; fd < 1024; fd++)
			close(fd);
		if (chdir("/") != 0)
			_exit(1);
		char *argv[] = {"weft", "agent", NULL};
		execv(self, argv);
		_exit(127);
	}
	while (waitpid(child, NULL, 0) < 0 && errno == EINTR)
		;
}

int wb_agent_connect(bool start, int verbose)
{
	char path[256];
	if (wb_agent_socket_path(path, sizeof(path)) != 0)
		return -1;
	int fd = try_connect(path);
	if (fd >= 0 || !start)
		return fd;
	if (verbose >= 1)
		fprintf(stderr, "weft ebpf: starting the agent (%s)\n", path);
	spawn_agent();
	int64_t t0 = weft_mono_ms();
	for (;;) {
		usleep(10000);
		if ((fd = try_connect(path)) >= 0)
			return fd;
		if (weft_mono_ms() - t0 >= WB_AGENT_START_MS)
			return -1;
	}
}

int wb_agent_register(int fd, pid_t pid, char *why, size_t whysz)
{
	wb_msg m = {.type = WB_MSG_REGISTER,
		    .pid = pid,
		    .version = WB_PROTO_VERSION};
	if (send(fd, &m, sizeof(m), MSG_NOSIGNAL) != (ssize_t)sizeof(m)) {
		snprintf(why, whysz, "sending to the agent: %s",
			 strerror(errno));
		return -errno;
	}
	ssize_t n = recv(fd, &m, sizeof(m), 0);
	if (n != (ssize_t)sizeof(m) || m.type != WB_MSG_REPLY) {
		snprintf(why, whysz, "no answer from the agent");
		return -EPROTO;
	}
	m.text[sizeof(m.text) - 1] = '\0';
	snprintf(why, whysz, "%s", m.text);
	return m.status;
}

int wb_agent_connect_path(const char *path)
{
	return try_connect(path);
}
