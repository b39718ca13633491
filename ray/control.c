/*
 * control.c - `weft wrap --ray`: the control socket's serving thread.
 * The worker's shim sends one JSON object per packet (docs/ray.md, "In
 * each worker"); each is checked, its ids made safe for task names, kept
 * in w->msgs with the time it came, and answered "ok" or "err REASON".
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <jansson.h>

#include "ray_internal.h"

/* A Ray id: letters, digits, '_', '.', '-' kept, anything else '_'. */
static void copy_id(char *out, size_t outsz, const char *in)
{
	size_t i = 0;
	for (; in && in[i] && i + 1 < outsz; i++) {
		char ch = in[i];
		bool ok = (ch >= '0' && ch <= '9') ||
			  (ch >= 'a' && ch <= 'z') ||
			  (ch >= 'A' && ch <= 'Z') || strchr("_.-", ch);
		out[i] = ok ? ch : '_';
	}
	out[i] = '\0';
}

/* A name for people: control characters and spaces become '_'; a name
 * cut short loses its last, partial UTF-8 sequence. */
static void copy_name(char *out, size_t outsz, const char *in)
{
	size_t i = 0;
	for (; in && in[i] && i + 1 < outsz; i++) {
		unsigned char ch = (unsigned char)in[i];
		out[i] = ch <= ' ' || ch == 0x7f ? '_' : (char)ch;
	}
	if (in && in[i]) {
		size_t k = i;
		while (k > 0 && ((unsigned char)out[k - 1] & 0xc0) == 0x80)
			k--;
		if (k > 0 && ((unsigned char)out[k - 1] & 0xc0) == 0xc0)
			i = k - 1;
	}
	out[i] = '\0';
}

static const char *str_member(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

static bool int_member(const json_t *o, const char *key, int64_t *out)
{
	const json_t *v = json_object_get(o, key);
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return false;
	*out = json_integer_value(v);
	return true;
}

/* One message: NULL when recorded, else why not (the reply). */
static const char *take_message(weft_ray_wrapper *w, const char *buf,
				size_t len)
{
	json_error_t je;
	json_t *o = json_loadb(buf, len,
			       JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
	if (!o)
		return "err malformed JSON";
	const char *why = NULL;
	struct wr_msg m = {.cut = -1, .t_ns = weft_real_ns()};
	int64_t v = 0, seq = 0;
	const char *event = str_member(o, "event"),
		   *kind = str_member(o, "kind");
	if (!json_is_object(o))
		why = "err not an object";
	else if (!int_member(o, "v", &v) || v != 1)
		why = "err unsupported version (this wrapper speaks v 1)";
	else if (!event ||
		 (strcmp(event, "begin") != 0 && strcmp(event, "end") != 0))
		why = "err event must be begin or end";
	else if (!int_member(o, "tid", &m.tid) || !int_member(o, "seq", &seq))
		why = "err tid and seq must be numbers";
	if (why) {
		json_decref(o);
		return why;
	}
	m.seq = (uint64_t)seq;
	if (!int_member(o, "pid", &m.pid))
		m.pid = 0;
	m.begin = strcmp(event, "begin") == 0;
	m.actor = kind && strcmp(kind, "actor_task") == 0;
	m.failed = json_is_true(json_object_get(o, "failed"));
	copy_name(m.name, sizeof(m.name), str_member(o, "name"));
	copy_id(m.task_id, sizeof(m.task_id), str_member(o, "task_id"));
	copy_id(m.actor_id, sizeof(m.actor_id), str_member(o, "actor_id"));
	copy_id(m.job_id, sizeof(m.job_id), str_member(o, "job_id"));
	copy_id(m.node_id, sizeof(m.node_id), str_member(o, "node_id"));
	copy_id(m.worker_id, sizeof(m.worker_id), str_member(o, "worker_id"));
	json_decref(o);
	pthread_mutex_lock(&w->lock);
	if (w->nmsgs == w->capmsgs) {
		size_t cap = w->capmsgs ? 2 * w->capmsgs : 64;
		struct wr_msg *p = realloc(w->msgs, cap * sizeof(*p));
		if (!p) {
			pthread_mutex_unlock(&w->lock);
			return "err out of memory";
		}
		w->msgs = p;
		w->capmsgs = cap;
	}
	w->msgs[w->nmsgs++] = m;
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

static void note_bad(weft_ray_wrapper *w, const char *why)
{
	pthread_mutex_lock(&w->lock);
	if (!w->bad++)
		snprintf(w->bad_reason, sizeof(w->bad_reason), "%s", why);
	pthread_mutex_unlock(&w->lock);
}

void *wr_serve(void *arg)
{
	weft_ray_wrapper *w = arg;
	char *buf = malloc(WR_MSG_MAX_BYTES);
	int conns[WR_MAX_CONNS];
	size_t nconns = 0;
	struct pollfd p[2 + WR_MAX_CONNS];
	while (buf) {
		p[0] = (struct pollfd){.fd = w->wake[0], .events = POLLIN};
		p[1] = (struct pollfd){.fd = w->listen_fd, .events = POLLIN};
		for (size_t i = 0; i < nconns; i++)
			p[2 + i] = (struct pollfd){.fd = conns[i],
						   .events = POLLIN};
		if (poll(p, 2 + nconns, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[0].revents)
			break;
		for (size_t i = nconns; i-- > 0;) {
			if (!p[2 + i].revents)
				continue;
			ssize_t n = recv(conns[i], buf, WR_MSG_MAX_BYTES,
					 MSG_TRUNC | MSG_DONTWAIT);
			if (n < 0 && (errno == EAGAIN || errno == EINTR))
				continue;
			if (n <= 0) {
				close(conns[i]);
				conns[i] = conns[--nconns];
				continue;
			}
			const char *reply =
				n > WR_MSG_MAX_BYTES
					? "err message too long"
					: take_message(w, buf, (size_t)n);
			if (reply)
				note_bad(w, reply + 4);
			else
				reply = "ok";
			send(conns[i], reply, strlen(reply),
			     MSG_NOSIGNAL | MSG_DONTWAIT);
		}
		if (p[1].revents & POLLIN) {
			int c = accept4(w->listen_fd, NULL, NULL, SOCK_CLOEXEC);
			if (c >= 0 && nconns < WR_MAX_CONNS)
				conns[nconns++] = c;
			else if (c >= 0)
				close(c);
		}
	}
	for (size_t i = 0; i < nconns; i++)
		close(conns[i]);
	free(buf);
	return NULL;
}
