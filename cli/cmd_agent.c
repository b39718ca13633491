/*
 * cmd_agent.c - `weft agent`: run the node agent, the one load of the
 * eBPF programs shared by every wrapper on this machine (backends/ebpf,
 * weft/backends.h). Wrappers start it on demand; running it by hand (or from
 * a service manager, with --idle-timeout 0) is the same program.
 */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include <weft/backends.h>

static const char agent_help[] =
	"usage: weft agent [--socket PATH] [--idle-timeout MS]\n"
	"                  [--ringbuf-bytes N] [-v]\n\n"
	"Load the eBPF programs once for this machine and serve wrappers\n"
	"(`weft run --tracer ebpf`) over a Unix socket: each registers the\n"
	"root pid of its workload (only processes it could ptrace itself)\n"
	"and receives the records of that process tree. `weft run` starts\n"
	"the agent when none answers; it exits after the idle timeout with\n"
	"no wrapper connected.\n\n"
	"  --socket PATH        default $XDG_RUNTIME_DIR/weft/agent.sock, or\n"
	"                       /run/weft/agent.sock for root\n"
	"                       (WEFT_AGENT_SOCKET)\n"
	"  --idle-timeout MS    exit after MS without a wrapper; 0 never\n"
	"                       (default 60000, WEFT_AGENT_IDLE_MS)\n"
	"  --ringbuf-bytes N    ring buffer size, a power of two (default\n"
	"                       4194304, WEFT_EBPF_RINGBUF_BYTES)\n"
	"  -v                   say what it does on stderr\n";

static int parse_count(const char *opt, const char *v, long long max,
		       long long *out)
{
	char *end;
	long long n = strtoll(v, &end, 10);
	if (!*v || *end || n < 0 || n > max) {
		cli_usage_error("agent",
				"%s: '%s' is not a number from 0 to %lld", opt,
				v, max);
		return -1; /* not cli_usage_error's value: *out is set iff 0 */
	}
	*out = n;
	return 0;
}

/* --idle-timeout MS */
static int idle_arg(const char *cmd, const char *opt, const char *arg,
		    void *to)
{
	(void)cmd;
	long long n;
	if (parse_count(opt, arg, 1ll << 31, &n) != 0)
		return WEFT_EXIT_USAGE;
	*(int *)to = (int)n;
	return 0;
}

/* --ringbuf-bytes N */
static int ringbuf_arg(const char *cmd, const char *opt, const char *arg,
		       void *to)
{
	long long n;
	if (parse_count(opt, arg, 1ll << 30, &n) != 0)
		return WEFT_EXIT_USAGE;
	if (n < 4096 || (n & (n - 1)) != 0)
		return cli_usage_error(cmd,
				       "%s: %lld is not a power of two of at "
				       "least 4096",
				       opt, n);
	*(size_t *)to = (size_t)n;
	return 0;
}

static const cli_cmd agent_cmd = {
	.name = "agent",
	.help = agent_help,
	.stop_at_arg = true,
};

int cmd_agent(int argc, char **argv)
{
	weft_agent_options o = {.idle_timeout_ms = WEFT_AGENT_IDLE_MS_DEFAULT};
	const char *env = getenv("WEFT_AGENT_IDLE_MS");
	long long n;
	if (env && *env &&
	    parse_count("WEFT_AGENT_IDLE_MS", env, 1ll << 31, &n) == 0)
		o.idle_timeout_ms = (int)n;
	const cli_opt opts[] = {
		{"socket", 0, CLI_STRING, &o.socket_path},
		{"idle-timeout", 0, CLI_CALL, &o.idle_timeout_ms,
		 .call = idle_arg},
		{"ringbuf-bytes", 0, CLI_CALL, &o.ringbuf_bytes,
		 .call = ringbuf_arg},
		{"verbose", 'v', CLI_COUNT, &o.verbose},
		{NULL},
	};
	int c = cli_parse(&agent_cmd, opts, argc, argv);
	if (c != CLI_GO)
		return c;
	return weft_agent_serve(&o, stderr) == 0 ? 0 : 1;
}
