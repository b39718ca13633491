/*
 * client.c - the writer's side of the wire: one nng REQ socket to the
 * coordinator, dialing in the background so that a coordinator that is
 * down costs nothing until a call, and every call bounded by a timeout so
 * that it never holds up the workload's exit for longer than the caller
 * allows. Retries (and their backoff) are the caller's: nng's own resend
 * is turned off so that one call is one attempt. A coordinator in this
 * process (a local run's) is called directly instead: the same request
 * and reply bytes, without nng's threads.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/tls/tls.h>

#include <weft/wrap.h>

struct weft_wrap_client {
	nng_socket sock;
	nng_dialer dialer;
	weft_wrap_local_fn local; /* not NULL: no socket, this instead */
	void *local_arg;
};

/* The coordinator in this process, when there is one. */
static pthread_mutex_t local_mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
	char url[WEFT_WRAP_MAX_URL_BYTES + 1];
	weft_wrap_local_fn fn;
	void *arg;
} local_ep;

int weft_wrap_local_endpoint_set(const char *url, weft_wrap_local_fn fn,
				 void *arg)
{
	if (strlen(url) >= sizeof(local_ep.url))
		return WEFT_EINVAL;
	pthread_mutex_lock(&local_mu);
	int err = WEFT_EBUSY;
	if (!local_ep.fn || strcmp(local_ep.url, url) == 0) {
		snprintf(local_ep.url, sizeof(local_ep.url), "%s", url);
		local_ep.fn = fn;
		local_ep.arg = arg;
		err = WEFT_OK;
	}
	pthread_mutex_unlock(&local_mu);
	return err;
}

void weft_wrap_local_endpoint_clear(void)
{
	pthread_mutex_lock(&local_mu);
	memset(&local_ep, 0, sizeof(local_ep));
	pthread_mutex_unlock(&local_mu);
}

/* A client of the local endpoint when url names it. */
static bool open_local(weft_wrap_client *c, const char *url)
{
	pthread_mutex_lock(&local_mu);
	bool here = local_ep.fn && strcmp(local_ep.url, url) == 0;
	if (here) {
		c->local = local_ep.fn;
		c->local_arg = local_ep.arg;
	}
	pthread_mutex_unlock(&local_mu);
	return here;
}

/* Reconnection: fast at first (a coordinator that restarts is back
 * quickly), never slower than a second. */
#define RECONNECT_MIN_MS 20
#define RECONNECT_MAX_MS 1000

/* The host part of tls+tcp://HOST:PORT, for the server name check. */
static void url_host(const char *url, char *out, size_t outsz)
{
	const char *p = strstr(url, "://");
	p = p ? p + 3 : url;
	const char *end;
	if (*p == '[') {
		p++;
		end = strchr(p, ']');
	} else {
		end = strrchr(p, ':');
	}
	size_t n = end ? (size_t)(end - p) : strlen(p);
	snprintf(out, outsz, "%.*s", (int)n, p);
}

static int setup_tls(weft_wrap_client *c, const char *url, const char *ca,
		     char *err, size_t errsz)
{
	nng_tls_config *cfg;
	int rv = nng_tls_config_alloc(&cfg, NNG_TLS_MODE_CLIENT);
	if (rv != 0) {
		snprintf(err, errsz, "TLS is not available: %s",
			 nng_strerror(rv));
		return WEFT_EUNSUPPORTED;
	}
	char host[256];
	url_host(url, host, sizeof(host));
	if (ca && *ca) {
		rv = nng_tls_config_ca_file(cfg, ca);
		if (rv == 0)
			rv = nng_tls_config_auth_mode(
				cfg, NNG_TLS_AUTH_MODE_REQUIRED);
		if (rv != 0)
			snprintf(err, errsz, "WEFT_TLS_CA %s: %s", ca,
				 nng_strerror(rv));
	} else {
		/* No CA: encrypted, the server unchecked (fragments are
		 * signed and the token never crosses the wire either way). */
		rv = nng_tls_config_auth_mode(cfg, NNG_TLS_AUTH_MODE_NONE);
	}
	if (rv == 0)
		rv = nng_tls_config_server_name(cfg, host);
	if (rv == 0)
		rv = nng_dialer_set_ptr(c->dialer, NNG_OPT_TLS_CONFIG, cfg);
	if (rv != 0 && !err[0])
		snprintf(err, errsz, "TLS setup for %s: %s", url,
			 nng_strerror(rv));
	nng_tls_config_free(cfg); /* the dialer holds its own reference */
	return rv == 0 ? WEFT_OK : WEFT_EINVAL;
}

int weft_wrap_client_open(const char *url, const char *tls_ca,
			  weft_wrap_client **out, char *err, size_t errsz)
{
	*out = NULL;
	err[0] = '\0';
	weft_wrap_client *c = calloc(1, sizeof(*c));
	if (!c)
		return WEFT_ENOMEM;
	if (open_local(c, url)) {
		*out = c;
		return WEFT_OK;
	}
	int rv = nng_req0_open(&c->sock);
	if (rv != 0) {
		snprintf(err, errsz, "cannot open an nng socket: %s",
			 nng_strerror(rv));
		free(c);
		return WEFT_EIO;
	}
	nng_socket_set_ms(c->sock, NNG_OPT_RECONNMINT, RECONNECT_MIN_MS);
	nng_socket_set_ms(c->sock, NNG_OPT_RECONNMAXT, RECONNECT_MAX_MS);
	/* One call is one attempt; the caller retries with backoff. */
	nng_socket_set_ms(c->sock, NNG_OPT_REQ_RESENDTIME,
			  NNG_DURATION_INFINITE);
	nng_socket_set_size(c->sock, NNG_OPT_RECVMAXSZ, 1024 * 1024);
	int e = WEFT_EINVAL;
	rv = nng_dialer_create(&c->dialer, c->sock, url);
	if (rv == 0 &&
	    (strncmp(url, "tls+", 4) == 0 || strncmp(url, "wss://", 6) == 0)) {
		e = setup_tls(c, url, tls_ca, err, errsz);
		if (e != WEFT_OK)
			goto fail;
	}
	if (rv == 0)
		rv = nng_dialer_start(c->dialer, NNG_FLAG_NONBLOCK);
	if (rv != 0) {
		snprintf(err, errsz, "cannot dial %s: %s", url,
			 nng_strerror(rv));
		e = WEFT_EINVAL;
		goto fail;
	}
	*out = c;
	return WEFT_OK;
fail:
	nng_close(c->sock);
	free(c);
	return e;
}

int weft_wrap_client_call(weft_wrap_client *c, const uint8_t *req, size_t len,
			  int timeout_ms, uint8_t **reply, size_t *rlen,
			  char *err, size_t errsz)
{
	*reply = NULL;
	*rlen = 0;
	if (c->local) {
		/* In this process: answered (or out of memory), never lost. */
		int e = c->local(c->local_arg, req, len, reply, rlen);
		if (e != WEFT_OK)
			snprintf(err, errsz, "%s", weft_strerror(e));
		return e == WEFT_OK ? WEFT_OK : WEFT_EIO;
	}
	if (timeout_ms < 1)
		timeout_ms = 1;
	nng_socket_set_ms(c->sock, NNG_OPT_SENDTIMEO, timeout_ms);
	nng_socket_set_ms(c->sock, NNG_OPT_RECVTIMEO, timeout_ms);
	int rv = nng_send(c->sock, (void *)req, len, 0);
	void *buf = NULL;
	size_t n = 0;
	if (rv == 0)
		rv = nng_recv(c->sock, &buf, &n, NNG_FLAG_ALLOC);
	if (rv != 0) {
		snprintf(err, errsz, "%s",
			 rv == NNG_ETIMEDOUT ? "no reply in time"
					     : nng_strerror(rv));
		return WEFT_EIO;
	}
	*reply = malloc(n ? n : 1);
	if (!*reply) {
		nng_free(buf, n);
		return WEFT_ENOMEM;
	}
	memcpy(*reply, buf, n);
	nng_free(buf, n);
	*rlen = n;
	return WEFT_OK;
}

void weft_wrap_client_close(weft_wrap_client *c)
{
	if (!c)
		return;
	if (!c->local)
		nng_close(c->sock);
	free(c);
}

void weft_wrap_quiesce(void)
{
	nng_fini();
}
