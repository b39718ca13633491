/*
 * ol_live.c - OpenLineage while a local run's workload runs (`weft run`,
 * docs/interop.md).
 *
 * A local run's coordinator runs inside the run's process, over
 * inproc://, and only once the workload ended: nng's threads must not
 * exist while the tracer forks. So the run's job and its task's start are
 * stored before the workload is launched (the store's triggers queue
 * their STARTs like any event), the events ready then are made, and a
 * sender process forked at that moment (the run is single-threaded
 * then) sends them, retrying, while the workload runs. It tells the run
 * which it delivered; the run marks those sent once the workload ended,
 * before its coordinator's own sender starts over the same outbox. One
 * sender at a time, an event marked before the next looks: nothing is
 * sent twice, and what the endpoint did not take waits in the store for
 * the coordinator, as any event does.
 *
 * The sender touches no SQLite (a connection must not cross a fork) and
 * no nng; it is nobody's child (it forks once more and its parent exits
 * at once), since the ptrace backend reaps every child with waitpid(-1).
 * The run and the sender share a socket pair: the run shuts its side
 * down to say stop; the sender writes each delivered seq, and its side
 * closing when it exits is the run's "stopped".
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "coordinator_internal.h"

/* Events made ahead at most (a run queues two: its job's START and its
 * task's; more are what earlier runs left undelivered). */
#define LIVE_MAX_EVENTS 64
/* One request at most: stopping waits for the one in flight. */
#define LIVE_REQUEST_TIMEOUT_MS 5000

struct live_event {
	int64_t seq;
	char *json;
	size_t len;
};

struct weft_ol_live {
	int fd;
	weft_store *store; /* the run's own handle on the outbox */
	int64_t sink;
};

static void events_free(struct live_event *ev, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(ev[i].json);
}

/* Wait ms for the run to say stop (true when it did). */
static bool told_to_stop(int fd, int ms)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	int rc;
	while ((rc = poll(&p, 1, ms)) < 0 && errno == EINTR)
		;
	return rc != 0;
}

/* The sender: each event until it is taken, in order; its seq back to
 * the run once taken. */
static void sender(const weft_coordinator_opts *o, int fd,
		   const struct live_event *ev, size_t n)
{
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null >= 0) {
		dup2(null, 0);
		dup2(null, 1);
		dup2(null, 2);
	}
	struct coord_ol *ol;
	char msg[512];
	if (coord_ol_new(o, NULL, NULL, NULL, &ol, msg, sizeof(msg)))
		return;
	unsigned failures = 0;
	for (size_t i = 0; i < n && !told_to_stop(fd, 0);) {
		bool for_good;
		if (coord_ol_send(ol, ev[i].json, ev[i].len,
				  LIVE_REQUEST_TIMEOUT_MS, &for_good, msg,
				  sizeof(msg)) == 0) {
			if (write(fd, &ev[i].seq, sizeof(ev[i].seq)) !=
			    sizeof(ev[i].seq))
				break;
			failures = 0;
			i++;
		} else if (for_good) {
			i++; /* the coordinator marks it refused */
		} else if (told_to_stop(fd, (int)coord_ol_backoff(
						    ol, ++failures))) {
			break;
		}
	}
	coord_ol_free(ol);
}

/* The events ready for the sink now, in order. */
static size_t events_ready(weft_store *s, int64_t sink, const char *ns,
			   struct live_event *ev)
{
	weft_ol_opts opts = {.ns = ns};
	size_t n = 0;
	int64_t after = 0;
	while (n < LIVE_MAX_EVENTS &&
	       weft_ol_outbox_after(s, sink, &opts, after, &ev[n].seq,
				    &ev[n].json, &ev[n].len) == WEFT_OK)
		after = ev[n++].seq;
	return n;
}

/* The job and the task's start, in one transaction. */
static int record_start(weft_store *s, const weft_job_info *j,
			const weft_task_start *ts, char *err, size_t errsz)
{
	weft_store_writer *w;
	weft_verdict jv = {0}, tv = {0};
	int e = weft_store_writer_new(s, &w);
	if (e)
		return e;
	if (!(e = weft_store_writer_begin(w))) {
		weft_store_apply_job_create(w, j, &jv);
		weft_store_apply_task_start(w, ts, ts->started_ns, &tv);
		e = weft_store_writer_commit(w);
	}
	weft_store_writer_free(w);
	if (!e && (jv.status == WEFT_ACK_REJECTED ||
		   tv.status == WEFT_ACK_REJECTED)) {
		snprintf(err, errsz, "openlineage: the run's start: %s",
			 jv.status == WEFT_ACK_REJECTED ? jv.detail : tv.detail);
		e = WEFT_EINVAL;
	}
	return e;
}

int weft_ol_live_start(const weft_coordinator_opts *o, weft_store *store,
		       const weft_job_info *j, const weft_task_start *ts,
		       weft_ol_live **out, char *err, size_t errsz)
{
	*out = NULL;
	err[0] = '\0';
	if (!o->ol_url && !o->ol_file)
		return WEFT_OK;
	weft_ol_live *l = calloc(1, sizeof(*l));
	char *dest = coord_ol_dest(o);
	struct live_event ev[LIVE_MAX_EVENTS];
	size_t n = 0;
	int sv[2] = {-1, -1}, e = WEFT_ENOMEM;
	if (!l || !dest)
		goto fail;
	l->fd = -1;
	/* The sink first: what is stored after it is queued for it. */
	if ((e = weft_store_open_sibling(store, &l->store)) ||
	    (e = weft_ol_sink_add(l->store, dest, ts->started_ns, &l->sink)) ||
	    (e = record_start(l->store, j, ts, err, errsz)))
		goto fail;
	n = events_ready(l->store, l->sink,
			 o->ol_namespace ? o->ol_namespace
					 : WEFT_OL_DEFAULT_NAMESPACE,
			 ev);
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
		e = WEFT_EIO;
		goto fail;
	}
	fflush(NULL); /* nothing buffered is written twice */
	pid_t pid = fork();
	if (pid == 0) {
		if (fork() == 0) {
			/* Nothing of the run's files but its socket. */
			dup2(sv[1], 3);
			closefrom(4);
			sender(o, 3, ev, n);
		}
		_exit(0);
	}
	close(sv[1]);
	sv[1] = -1;
	if (pid < 0) {
		e = WEFT_EIO;
		goto fail;
	}
	int status;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	l->fd = sv[0];
	events_free(ev, n);
	free(dest);
	*out = l;
	return WEFT_OK;
fail:
	if (e && !err[0])
		snprintf(err, errsz, "openlineage: %s",
			 l && l->store ? weft_store_errmsg(l->store)
				       : weft_strerror(e));
	events_free(ev, n);
	for (int i = 0; i < 2; i++)
		if (sv[i] >= 0)
			close(sv[i]);
	if (l)
		weft_store_close(l->store);
	free(l);
	free(dest);
	return e;
}

void weft_ol_live_stop(weft_ol_live *l)
{
	if (!l)
		return;
	shutdown(l->fd, SHUT_WR);
	int64_t seq;
	ssize_t got;
	/* Until the sender exits: after the request in flight, if any. */
	while ((got = read(l->fd, &seq, sizeof(seq))) == sizeof(seq) ||
	       (got < 0 && errno == EINTR))
		if (got == sizeof(seq))
			weft_ol_outbox_sent(l->store, l->sink, seq);
	close(l->fd);
	weft_store_close(l->store);
	free(l);
}
