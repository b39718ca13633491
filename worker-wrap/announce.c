/*
 * announce.c - telling the job's coordinator that a task started
 * (TASK_START, weft_wire.h), so that its OpenLineage START goes out
 * while the task runs rather than after it ended (docs/interop.md).
 *
 * Never in the workload's way, and nothing depends on it: the task's
 * fragments carry the same run id, start time and identity, so a START
 * that could not be announced goes out with them, its eventTime still
 * the start, and the store queues one START per task whichever way came
 * first. No spool file for it, then: the fragments are its durable copy.
 *
 * nng must not run in a process that forks a workload using nng too, and
 * the wrapper forks the workload next. So the request is made and signed
 * here, and sent by a process of its own: forked now, while the wrapper
 * is single-threaded, forking once more and exiting at once, so that the
 * sender is nobody's child (the ptrace backend's waitpid(-1) would reap
 * it, and nobody has to wait for it). The sender retries for at most
 * WEFT_WRAP_ANNOUNCE_TIMEOUT_MS and exits.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/wait.h>

#include "wrap_internal.h"

/* The command line for people, cut to what a task name holds: what the
 * task's record will be named when the engine names no task. */
static void command_name(char *out, size_t outsz, char *const *argv)
{
	size_t len = 0;
	out[0] = '\0';
	for (size_t i = 0; argv[i] && len + 1 < outsz; i++) {
		int n = snprintf(out + len, outsz - len, "%s%s", i ? " " : "",
				 argv[i]);
		if (n < 0)
			break;
		len += (size_t)n;
	}
}

/* The sender: nothing of the wrapper's open files, no terminal. */
static void send_announcement(const char *url, const char *tls_ca,
			      const weft_buf *req)
{
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null >= 0) {
		dup2(null, 0);
		dup2(null, 1);
		dup2(null, 2);
	}
	closefrom(3);
	weft_wrap_shipper *sh;
	bool taken;
	if (weft_wrap_shipper_new(tls_ca, WEFT_WRAP_ANNOUNCE_TIMEOUT_MS, NULL,
				  &sh) == WEFT_OK) {
		wrap_ship_request(sh, url, req->data, req->len, &taken);
		weft_wrap_shipper_free(sh);
	}
	weft_wrap_quiesce();
}

int weft_wrap_task_start(const char *job, const char *token,
			 const char *parent, const weft_wrap_identity *id,
			 char *const *argv, const char *backend,
			 const char *run_id, weft_task_start *ts)
{
	memset(ts, 0, sizeof(*ts));
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	ts->started_ns = (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
	snprintf(ts->job, sizeof(ts->job), "%s", job);
	snprintf(ts->run, sizeof(ts->run), "%s", run_id);
	snprintf(ts->task, sizeof(ts->task), "%s", id->task);
	/* Named as cli_ship_run names the record: the engine's or the
	 * user's name, else the command. */
	if (strcmp(id->source, "host") != 0)
		snprintf(ts->name, sizeof(ts->name), "%s", id->task);
	else
		command_name(ts->name, sizeof(ts->name), argv);
	snprintf(ts->parent, sizeof(ts->parent), "%s", parent);
	snprintf(ts->node, sizeof(ts->node), "%s", id->node);
	snprintf(ts->backend, sizeof(ts->backend), "%s", backend);
	return weft_task_start_sign(ts, token);
}

int weft_wrap_announce(const weft_wrap_env *env, const weft_wrap_identity *id,
		       char *const *argv, const char *backend,
		       const char *run_id)
{
	weft_task_start ts;
	weft_buf req;
	weft_buf_init(&req);
	int err = weft_wrap_task_start(env->job, env->token, env->parent, id,
				       argv, backend, run_id, &ts);
	if (!err)
		err = weft_req_task_start(&ts, &req);
	if (err || !env->coordinator[0]) {
		weft_buf_free(&req);
		return err;
	}
	fflush(NULL); /* nothing buffered is written twice */
	pid_t pid = fork();
	if (pid == 0) {
		if (fork() == 0)
			send_announcement(env->coordinator, env->tls_ca, &req);
		_exit(0);
	}
	weft_buf_free(&req);
	if (pid < 0)
		return WEFT_EIO;
	int status;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	return WEFT_OK;
}
