/*
 * call.c - asking a coordinator something from a short-lived process
 * (`weft status --coordinator URL`, tests): one REQ socket, one request,
 * one reply, bounded by a timeout, the server's certificate checked
 * against a CA file for tls+tcp://.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/tls/tls.h>

#include "coordinator_internal.h"

static int dialer_tls(nng_dialer d, const char *url, const char *ca, char *err,
		      size_t errsz)
{
	nng_tls_config *cfg;
	int rv = nng_tls_config_alloc(&cfg, NNG_TLS_MODE_CLIENT);
	if (rv != 0) {
		snprintf(err, errsz, "TLS: %s", nng_strerror(rv));
		return rv;
	}
	if (ca && ca[0]) {
		rv = nng_tls_config_ca_file(cfg, ca);
		if (rv == 0)
			rv = nng_tls_config_auth_mode(
				cfg, NNG_TLS_AUTH_MODE_REQUIRED);
		if (rv != 0)
			snprintf(err, errsz, "CA file %s: %s", ca,
				 nng_strerror(rv));
	} else {
		/* Without a CA nothing can be checked: say so by not
		 * pretending (the link is still encrypted). */
		rv = nng_tls_config_auth_mode(cfg, NNG_TLS_AUTH_MODE_NONE);
	}
	if (rv == 0) {
		/* The certificate must name the host dialed. */
		char host[256] = "";
		const char *h = strstr(url, "://");
		h = h ? h + 3 : url;
		const char *colon = strrchr(h, ':');
		snprintf(host, sizeof(host), "%.*s",
			 (int)(colon ? colon - h : (long)strlen(h)), h);
		rv = nng_tls_config_server_name(cfg, host);
	}
	if (rv == 0)
		rv = nng_dialer_set_ptr(d, NNG_OPT_TLS_CONFIG, cfg);
	if (rv != 0 && !err[0])
		snprintf(err, errsz, "TLS: %s", nng_strerror(rv));
	nng_tls_config_free(cfg);
	return rv;
}

int weft_coordinator_call(const char *url, const char *tls_ca,
			  const uint8_t *req, size_t len, int timeout_ms,
			  uint8_t **reply, size_t *rlen, char *err,
			  size_t errsz)
{
	nng_socket sock;
	nng_dialer d;
	err[0] = '\0';
	*reply = NULL;
	int rv = nng_req0_open(&sock);
	if (rv != 0) {
		snprintf(err, errsz, "REQ socket: %s", nng_strerror(rv));
		return WEFT_EIO;
	}
	nng_socket_set_ms(sock, NNG_OPT_SENDTIMEO, timeout_ms);
	nng_socket_set_ms(sock, NNG_OPT_RECVTIMEO, timeout_ms);
	nng_socket_set_ms(sock, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
	nng_socket_set_size(sock, NNG_OPT_RECVMAXSZ, WEFT_MAX_MESSAGE_BYTES);
	rv = nng_dialer_create(&d, sock, url);
	if (rv == 0 && !strncmp(url, "tls+tcp://", 10))
		rv = dialer_tls(d, url, tls_ca, err, errsz);
	if (rv == 0)
		rv = nng_dialer_start(d, 0);
	if (rv != 0) {
		if (!err[0])
			snprintf(err, errsz, "cannot reach %s: %s", url,
				 nng_strerror(rv));
		nng_close(sock);
		return WEFT_EIO;
	}
	nng_msg *m;
	rv = nng_msg_alloc(&m, 0);
	if (rv == 0 && (rv = nng_msg_append(m, req, len)) != 0)
		nng_msg_free(m);
	if (rv == 0 && (rv = nng_sendmsg(sock, m, 0)) != 0)
		nng_msg_free(m);
	if (rv == 0)
		rv = nng_recvmsg(sock, &m, 0);
	if (rv != 0) {
		snprintf(err, errsz, "%s: %s", url, nng_strerror(rv));
		nng_close(sock);
		return WEFT_EIO;
	}
	*rlen = nng_msg_len(m);
	*reply = malloc(*rlen ? *rlen : 1);
	if (*reply)
		memcpy(*reply, nng_msg_body(m), *rlen);
	nng_msg_free(m);
	nng_close(sock);
	return *reply ? WEFT_OK : WEFT_ENOMEM;
}

int weft_coordinator_query_status(const char *url, const char *tls_ca,
				  const char *job, int timeout_ms,
				  weft_status *st, char *err, size_t errsz)
{
	memset(st, 0, sizeof(*st));
	weft_buf req;
	weft_buf_init(&req);
	int rc = weft_req_status(job, &req);
	if (rc) {
		snprintf(err, errsz, "job id %s: %s", job ? job : "",
			 weft_strerror(rc));
		return rc;
	}
	uint8_t *reply;
	size_t rlen;
	rc = weft_coordinator_call(url, tls_ca, req.data, req.len, timeout_ms,
				   &reply, &rlen, err, errsz);
	weft_buf_free(&req);
	if (rc)
		return rc;
	weft_reply r;
	rc = weft_reply_decode(reply, rlen, &r);
	free(reply);
	if (rc) {
		snprintf(err, errsz,
			 "%s answered with something else than a "
			 "reply: %s",
			 url, weft_strerror(rc));
		return rc;
	}
	if (r.kind != WEFT_REPLY_STATUS) {
		snprintf(err, errsz, "%s: %s (%s)", url,
			 r.ack.status == WEFT_ACK_RETRY ? "busy, try again"
							: "status refused",
			 r.ack.detail);
		weft_reply_release(&r);
		return WEFT_EIO;
	}
	*st = r.status;
	return WEFT_OK;
}
