/*
 * weft_agent.h - the node agent (`weft agent`): one load of the eBPF
 * programs per node, shared by every wrapper on it. Wrappers connect to
 * its Unix socket, register the root pid of their workload (allowed only
 * for processes the caller could ptrace itself) and receive the records
 * of that tree. Started on demand by the first wrapper; exits after an
 * idle timeout with no client.
 */
#ifndef WEFT_AGENT_H
#define WEFT_AGENT_H

#include <stddef.h>
#include <stdio.h>

typedef struct weft_agent_options {
	const char *socket_path; /* NULL: the default for this user */
	int idle_timeout_ms;     /* exit after this long without a client;
				    0: never */
	size_t ringbuf_bytes;    /* 0: the default */
	int verbose;
} weft_agent_options;

/* Default idle timeout (WEFT_AGENT_IDLE_MS overrides). */
#define WEFT_AGENT_IDLE_MS_DEFAULT 60000

/* Serve until idle. Returns 0, or a weft_err after saying on err what
 * failed (WEFT_EUNSUPPORTED when this weft has no eBPF backend). */
int weft_agent_serve(const weft_agent_options *o, FILE *err);

#endif /* WEFT_AGENT_H */
