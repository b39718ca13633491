/*
 * coordinator.c - a coordinator's life: open the store, listen (plain or
 * TLS), run the request loop (server.c), and stop without losing anything
 * it acknowledged.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/supplemental/tls/tls.h>
#include <sodium.h>

#include "coordinator_internal.h"

/* A whole small file (a PEM certificate or key) as a string. */
static char *read_text_file(const char *path, char *err, size_t errsz)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		snprintf(err, errsz, "%s: %s", path, strerror(errno));
		return NULL;
	}
	char *buf = NULL;
	size_t len = 0, cap = 0;
	for (;;) {
		if (len + 4096 + 1 > cap) {
			cap = cap ? 2 * cap : 8192;
			if (cap > 1024 * 1024) {
				snprintf(err, errsz, "%s: larger than 1 MiB",
					 path);
				break;
			}
			char *p = realloc(buf, cap);
			if (!p)
				break;
			buf = p;
		}
		size_t n = fread(buf + len, 1, cap - len - 1, f);
		len += n;
		if (n == 0) {
			fclose(f);
			buf[len] = '\0';
			return buf;
		}
	}
	fclose(f);
	free(buf);
	if (!err[0])
		snprintf(err, errsz, "%s: out of memory", path);
	return NULL;
}

static int setup_tls(weft_coordinator *c, const weft_coordinator_opts *o,
		     char *err, size_t errsz)
{
	if (!o->tls_cert || !o->tls_key) {
		snprintf(err, errsz,
			 "%s needs --tls-cert and --tls-key (PEM files)",
			 o->listen_url);
		return WEFT_EINVAL;
	}
	char *cert = read_text_file(o->tls_cert, err, errsz);
	char *key = cert ? read_text_file(o->tls_key, err, errsz) : NULL;
	if (!key) {
		free(cert);
		return WEFT_EINVAL;
	}
	nng_tls_config *cfg = NULL;
	int rv = nng_tls_config_alloc(&cfg, NNG_TLS_MODE_SERVER);
	if (rv == 0) {
		rv = nng_tls_config_own_cert(cfg, cert, key, NULL);
		if (rv != 0)
			snprintf(err, errsz, "certificate %s with key %s: %s",
				 o->tls_cert, o->tls_key, nng_strerror(rv));
	} else {
		snprintf(err, errsz, "TLS is not available: %s",
			 nng_strerror(rv));
	}
	if (rv == 0) {
		rv = nng_listener_set_ptr(c->listener, NNG_OPT_TLS_CONFIG, cfg);
		if (rv != 0)
			snprintf(err, errsz, "TLS on %s: %s", o->listen_url,
				 nng_strerror(rv));
	}
	if (cfg)
		nng_tls_config_free(cfg); /* the listener keeps its own */
	free(cert);
	free(key);
	return rv == 0 ? WEFT_OK : WEFT_EINVAL;
}

/* For tcp://HOST:0 and tls+tcp://HOST:0: the URL with the port the
 * kernel picked, so that it can be handed to workers. */
static void resolve_url(weft_coordinator *c, const char *url)
{
	snprintf(c->url, sizeof(c->url), "%s", url);
	if (strncmp(url, "tcp://", 6) && strncmp(url, "tls+tcp://", 10))
		return;
	const char *colon = strrchr(url, ':');
	int port;
	if (!colon || strcmp(colon, ":0") ||
	    nng_listener_get_int(c->listener, NNG_OPT_TCP_BOUND_PORT, &port))
		return;
	snprintf(c->url, sizeof(c->url), "%.*s:%d", (int)(colon - url), url,
		 port);
}

static int start_listening(weft_coordinator *c, const weft_coordinator_opts *o,
			   char *err, size_t errsz)
{
	int rv = nng_rep0_open(&c->sock);
	if (rv != 0) {
		snprintf(err, errsz, "cannot open a REP socket: %s",
			 nng_strerror(rv));
		return WEFT_EIO;
	}
	c->sock_open = true;
	/* Requests a little over the limit are still read, so that an
	 * oversize envelope can be refused with its reason. */
	nng_socket_set_size(c->sock, NNG_OPT_RECVMAXSZ,
			    WEFT_MAX_REQUEST_BYTES + 4096);
	rv = nng_listener_create(&c->listener, c->sock, o->listen_url);
	if (rv != 0) {
		snprintf(err, errsz, "cannot listen on %s: %s", o->listen_url,
			 nng_strerror(rv));
		return WEFT_EINVAL;
	}
	if (!strncmp(o->listen_url, "tls+tcp://", 10)) {
		int e = setup_tls(c, o, err, errsz);
		if (e)
			return e;
	} else if (o->tls_cert || o->tls_key) {
		snprintf(err, errsz,
			 "--tls-cert/--tls-key need a tls+tcp:// URL, not %s",
			 o->listen_url);
		return WEFT_EINVAL;
	}
	int e = coord_conns_start(c, o->max_connections, o->idle_timeout_ms);
	if (e) {
		snprintf(err, errsz, "cannot watch connections: %s",
			 weft_strerror(e));
		return e;
	}
	e = coord_slots_start(c, o->contexts > 0 ? o->contexts
						 : WEFT_COORD_DEFAULT_CONTEXTS);
	if (e) {
		snprintf(err, errsz, "cannot start request contexts: %s",
			 weft_strerror(e));
		return e;
	}
	rv = nng_listener_start(c->listener, 0);
	if (rv != 0) {
		snprintf(err, errsz, "cannot listen on %s: %s", o->listen_url,
			 nng_strerror(rv));
		return WEFT_EIO;
	}
	c->listening = true;
	resolve_url(c, o->listen_url);
	return WEFT_OK;
}

/* nng 1.5 (Debian 12's) can wait forever in a socket's close: a TCP pipe
 * whose peer keeps sending may never finish closing (nng fixed it in
 * 1.6: "tcp: finish receive aio on close"; seen here as
 * dist.sigterm_in_flight's coordinator never exiting, 2 of 27 runs
 * beside another test). So the close runs on a thread of its own and is
 * waited for this long at most. */
#define COORD_CLOSE_WAIT_S 5

static _Atomic unsigned closes_left;

unsigned weft_coordinator_closes_left(void)
{
	return closes_left;
}

struct closer {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	nng_socket sock;
	bool done;
};

static void *closer_main(void *arg)
{
	struct closer *k = arg;
	nng_close(k->sock);
	pthread_mutex_lock(&k->mu);
	k->done = true;
	pthread_cond_signal(&k->cv);
	pthread_mutex_unlock(&k->mu);
	return NULL;
}

/* Close c's socket: true when closed, false when the close did not end
 * in time (or no thread could run it): then the socket, and whatever its
 * close may still touch (the slots, c), are left to the process's end. */
static bool close_socket(weft_coordinator *c)
{
	struct closer *k = calloc(1, sizeof(*k));
	pthread_condattr_t ca;
	if (!k || pthread_condattr_init(&ca) != 0) {
		free(k);
		nng_close(c->sock); /* no thread: waited for here */
		return true;
	}
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_mutex_init(&k->mu, NULL);
	pthread_cond_init(&k->cv, &ca);
	pthread_condattr_destroy(&ca);
	k->sock = c->sock;
	pthread_t t;
	if (pthread_create(&t, NULL, closer_main, k) != 0) {
		closer_main(k);
	} else {
		struct timespec until =
			weft_mono_deadline(COORD_CLOSE_WAIT_S * 1000000000LL);
		pthread_mutex_lock(&k->mu);
		while (!k->done &&
		       pthread_cond_timedwait(&k->cv, &k->mu, &until) == 0)
			;
		bool done = k->done;
		pthread_mutex_unlock(&k->mu);
		if (!done) {
			pthread_detach(t); /* k is its, for good */
			closes_left++;
			return false;
		}
		pthread_join(t, NULL);
	}
	pthread_mutex_destroy(&k->mu);
	pthread_cond_destroy(&k->cv);
	free(k);
	return true;
}

static void coordinator_free(weft_coordinator *c)
{
	/* The writer thread answers what it still holds (through the
	 * slots' contexts: nothing new is taken since the drain, a request
	 * that comes is answered RETRY); then every slot's operation is
	 * stopped, so that no callback uses a context while the socket
	 * closes (close_socket: bounded). */
	coord_writer_stop(c);
	coord_slots_quiet(c);
	bool closed = !c->sock_open || close_socket(c);
	if (closed)
		coord_slots_stop(c);
	coord_thread_stop(&c->conn_mu, &c->conn_cv, &c->conn_quit, &c->reaper,
			  &c->reaper_running);
	/* What was acknowledged is committed: the store closes either way. */
	weft_store_writer_free(c->writer);
	if (c->keep_wal)
		weft_store_keep_wal(c->store);
	weft_store_close(c->store);
	sodium_memzero(c->submit_key, sizeof(c->submit_key));
	if (!closed)
		return; /* the rest may still be used by the close */
	coord_conns_stop(c);
	pthread_mutex_destroy(&c->conn_mu);
	pthread_cond_destroy(&c->conn_cv);
	pthread_mutex_destroy(&c->mu);
	pthread_cond_destroy(&c->cv);
	pthread_cond_destroy(&c->reply_cv);
	pthread_cond_destroy(&c->idle);
	pthread_cond_destroy(&c->answered);
	free(c->jrej);
	free(c);
}

static int load_submit_key(weft_coordinator *c, const weft_coordinator_opts *o,
			   char *err, size_t errsz)
{
	if (o->submit_key) {
		memcpy(c->submit_key, o->submit_key, WEFT_SUBMIT_KEY_BYTES);
		return WEFT_OK;
	}
	char *path = c->submit_key_path;
	size_t pathsz = sizeof(c->submit_key_path);
	if (o->submit_key_file)
		snprintf(path, pathsz, "%s", o->submit_key_file);
	else
		weft_submit_key_default_path(o->store_path, path, pathsz);
	return weft_submit_key_load(path, true, c->submit_key, err, errsz);
}

int weft_coordinator_start(const weft_coordinator_opts *o,
			   weft_coordinator **out, char *err, size_t errsz)
{
	*out = NULL;
	err[0] = '\0';
	if (!o->listen_url || !o->listen_url[0] ||
	    strlen(o->listen_url) > WEFT_COORD_MAX_URL_BYTES) {
		snprintf(err, errsz,
			 "a listen URL is needed (at most %d bytes)",
			 WEFT_COORD_MAX_URL_BYTES);
		return WEFT_EINVAL;
	}
	if (!o->store_path || strlen(o->store_path) > WEFT_MAX_PATH_BYTES) {
		snprintf(err, errsz, "a store path is needed");
		return WEFT_EINVAL;
	}
	weft_coordinator *c = calloc(1, sizeof(*c));
	if (!c)
		return WEFT_ENOMEM;
	pthread_mutex_init(&c->mu, NULL);
	/* The writer's gathering waits on it with a monotonic deadline. */
	pthread_condattr_t mono;
	pthread_condattr_init(&mono);
	pthread_condattr_setclock(&mono, CLOCK_MONOTONIC);
	pthread_cond_init(&c->cv, &mono);
	pthread_condattr_destroy(&mono);
	pthread_cond_init(&c->reply_cv, NULL);
	pthread_cond_init(&c->idle, NULL);
	pthread_cond_init(&c->answered, NULL);
	pthread_mutex_init(&c->conn_mu, NULL);
	pthread_cond_init(&c->conn_cv, NULL);
	c->log = o->log;
	c->keep_wal = o->keep_wal;
	snprintf(c->store_path, sizeof(c->store_path), "%s", o->store_path);
	int e = weft_store_open(o->store_path, &c->store);
	if (e == WEFT_OK && (e = load_submit_key(c, o, err, errsz)) != 0) {
		coordinator_free(c);
		return e;
	}
	if (e) {
		snprintf(err, errsz, "store %s: %s%s%s", o->store_path,
			 weft_strerror(e), c->store ? ": " : "",
			 c->store ? weft_store_errmsg(c->store) : "");
		coordinator_free(c);
		return e;
	}
	e = weft_store_writer_new(c->store, &c->writer);
	if (!e)
		e = coord_writer_start(c);
	if (e) {
		snprintf(err, errsz, "store %s: %s", o->store_path,
			 weft_store_errmsg(c->store));
		coordinator_free(c);
		return e;
	}
	/* Before listening: what is stored from now on is queued for it. */
	e = coord_ol_start(c, o, err, errsz);
	if (!e && o->in_process)
		snprintf(c->url, sizeof(c->url), "%s", o->listen_url);
	else if (!e)
		e = start_listening(c, o, err, errsz);
	if (e) {
		coord_ol_stop(c);
		coordinator_free(c);
		return e;
	}
	*out = c;
	return WEFT_OK;
}

const char *weft_coordinator_url(const weft_coordinator *c)
{
	return c->url;
}

const char *weft_coordinator_submit_key_file(const weft_coordinator *c)
{
	return c->submit_key_path;
}

int weft_coordinator_stop(weft_coordinator *c)
{
	if (!c)
		return WEFT_OK;
	coord_drain(c);
	if (c->listening)
		nng_listener_close(c->listener);
	coord_ol_stop(c);
	int err = c->last_commit_err;
	coordinator_free(c);
	return err;
}
