/*
 * connections.c - the coordinator's connection limits: at most
 * max_connections at once, and none kept once idle for idle_timeout_ms.
 *
 * Why: a REP socket keeps every connection it accepts for as long as the
 * peer likes, and nng reads a request's whole length before handing it
 * over. Without limits, a few hundred idle connections starve everyone
 * (each costs a descriptor and buffers), and half-sent requests hold up
 * to a request's size each until the peer goes away.
 *
 * How: nng's pipe notifications. A pipe past the cap is closed before
 * the socket sees it (NNG_PIPE_EV_ADD_PRE); the others are kept in a
 * table with the time of their last request (server.c calls
 * coord_conn_active for each one it receives). A reaper thread closes
 * pipes whose last request is older than the idle timeout; a request
 * still being sent counts as idle, so a half-sent one is dropped the
 * same way.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "coordinator_internal.h"
#include <weft/base.h>

/* How often the reaper looks, at most (it looks sooner when the idle
 * timeout is shorter). */
#define CONN_REAP_MAX_MS 1000

struct conn {
	nng_pipe p;
	int64_t last_ms; /* 0: free slot */
};

static struct conn *conn_find(weft_coordinator *c, nng_pipe p)
{
	for (int i = 0; i < c->max_conns; i++)
		if (c->conns[i].last_ms && c->conns[i].p.id == p.id)
			return &c->conns[i];
	return NULL;
}

static void pipe_event(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	weft_coordinator *c = arg;
	pthread_mutex_lock(&c->conn_mu);
	if (ev == NNG_PIPE_EV_ADD_PRE) {
		struct conn *free_slot = NULL;
		for (int i = 0; i < c->max_conns && !free_slot; i++)
			if (!c->conns[i].last_ms)
				free_slot = &c->conns[i];
		if (free_slot) {
			free_slot->p = p;
			free_slot->last_ms = weft_mono_ms();
		} else {
			c->conns_refused++;
		}
		pthread_mutex_unlock(&c->conn_mu);
		if (!free_slot) {
			if (c->log)
				fprintf(c->log,
					"weft coordinator: connection refused: "
					"%d connections already open (the "
					"limit)\n",
					c->max_conns);
			nng_pipe_close(p); /* no further events for p */
		}
		return;
	}
	if (ev == NNG_PIPE_EV_REM_POST) {
		struct conn *k = conn_find(c, p);
		if (k)
			k->last_ms = 0;
	}
	pthread_mutex_unlock(&c->conn_mu);
}

void coord_conn_active(weft_coordinator *c, nng_pipe p)
{
	pthread_mutex_lock(&c->conn_mu);
	struct conn *k = conn_find(c, p);
	if (k)
		k->last_ms = weft_mono_ms();
	pthread_mutex_unlock(&c->conn_mu);
}

static void *reaper_main(void *arg)
{
	weft_coordinator *c = arg;
	pthread_setname_np(pthread_self(), "weft-idle");
	int step = c->idle_ms / 2 > CONN_REAP_MAX_MS ? CONN_REAP_MAX_MS
						     : c->idle_ms / 2 + 1;
	nng_pipe *close = malloc((size_t)c->max_conns * sizeof(*close));
	pthread_mutex_lock(&c->conn_mu);
	while (!c->conn_quit && close) {
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_nsec += (long)step * 1000000;
		until.tv_sec += until.tv_nsec / 1000000000;
		until.tv_nsec %= 1000000000;
		pthread_cond_timedwait(&c->conn_cv, &c->conn_mu, &until);
		int64_t now = weft_mono_ms();
		int n = 0;
		for (int i = 0; i < c->max_conns; i++)
			if (c->conns[i].last_ms &&
			    now - c->conns[i].last_ms > c->idle_ms)
				close[n++] = c->conns[i].p;
		pthread_mutex_unlock(&c->conn_mu);
		/* Outside the lock: closing fires REM_POST, which takes it. */
		for (int i = 0; i < n; i++)
			nng_pipe_close(close[i]);
		pthread_mutex_lock(&c->conn_mu);
		c->conns_idle_closed += (uint64_t)n;
	}
	pthread_mutex_unlock(&c->conn_mu);
	free(close);
	return NULL;
}

int coord_conns_start(weft_coordinator *c, int max_conns, int idle_ms)
{
	c->max_conns =
		max_conns > 0 ? max_conns : WEFT_COORD_DEFAULT_MAX_CONNECTIONS;
	c->idle_ms = idle_ms > 0 ? idle_ms : WEFT_COORD_DEFAULT_IDLE_MS;
	c->conns = calloc((size_t)c->max_conns, sizeof(*c->conns));
	if (!c->conns)
		return WEFT_ENOMEM;
	if (nng_pipe_notify(c->sock, NNG_PIPE_EV_ADD_PRE, pipe_event, c) ||
	    nng_pipe_notify(c->sock, NNG_PIPE_EV_REM_POST, pipe_event, c))
		return WEFT_EIO;
	if (pthread_create(&c->reaper, NULL, reaper_main, c) != 0)
		return WEFT_EIO;
	c->reaper_running = true;
	return WEFT_OK;
}

void coord_conns_stop(weft_coordinator *c)
{
	coord_thread_stop(&c->conn_mu, &c->conn_cv, &c->conn_quit, &c->reaper,
			  &c->reaper_running);
	free(c->conns);
	c->conns = NULL;
}
