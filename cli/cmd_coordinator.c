/*
 * cmd_coordinator.c - `weft coordinator`: serve a fragment store to the
 * wrappers of a job (libweft_coordinator) until SIGTERM or SIGINT.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "config.h"
#include <weft/coordinator.h>

static const char coordinator_help[] =
	"usage: weft coordinator --listen URL [--store PATH]\n"
	"                        [--tls-cert FILE --tls-key FILE]\n"
	"                        [--submit-key-file FILE]\n"
	"                        [--contexts N] [--ready-fd FD] [--quiet]\n\n"
	"Accept jobs, writer enrolments and signed fragments over nng and\n"
	"store them. Every fragment is acknowledged only after it is\n"
	"committed; bad requests are refused with a reason (and logged on\n"
	"stderr). SIGTERM or SIGINT: stop taking requests, commit what is in\n"
	"flight, exit 0.\n\n"
	"  --listen URL     tcp://HOST:PORT (port 0: any; the URL is "
	"printed),\n"
	"                   tls+tcp://HOST:PORT, ipc:///PATH\n"
	"  --store PATH     the SQLite store (default: the project's\n"
	"                   .weft/weft.db, made in . when there is none)\n"
	"  --tls-cert FILE  PEM certificate (chain) for tls+tcp://\n"
	"  --tls-key FILE   its PEM private key\n"
	"  --submit-key-file FILE  the key whose holders may create jobs\n"
	"                   (made, mode 0600, when absent; default:\n"
	"                   coordinator.key beside the store;\n"
	"                   coordinator.submit_key_file)\n"
	"  --contexts N     requests handled at once (default 256)\n"
	"  --max-connections N  connections open at once at most; more are\n"
	"                   closed as they come (default 1024;\n"
	"                   coordinator.max_connections)\n"
	"  --idle-timeout SEC  close a connection that sent no complete\n"
	"                   request for SEC seconds (idle, or half-sent;\n"
	"                   default 60; coordinator.idle_timeout_ms)\n"
	"  --ready-fd FD    write the URL and a newline to FD when listening\n"
	"  --quiet          do not log refused requests\n";

int cli_openlineage_opts(const struct weft_config *cfg,
			 struct weft_coordinator_opts *o, char *key,
			 size_t keysz)
{
	if (cfg->ol_url[0] && cfg->ol_file[0]) {
		cli_error("openlineage.url and openlineage.file are both set: "
			  "events go to one of them");
		return -1;
	}
	if (cfg->ol_api_key_file[0] && !cfg->ol_url[0]) {
		cli_error("openlineage.api_key_file is set without "
			  "openlineage.url");
		return -1;
	}
	o->ol_url = cfg->ol_url[0] ? cfg->ol_url : NULL;
	o->ol_file = cfg->ol_file[0] ? cfg->ol_file : NULL;
	o->ol_namespace = cfg->ol_namespace[0] ? cfg->ol_namespace : NULL;
	o->ol_api_key = NULL;
	if (!cfg->ol_api_key_file[0])
		return 0;
	char err[WEFT_MAX_PATH_BYTES + 128];
	if (weft_ol_api_key_load(cfg->ol_api_key_file, key, keysz, err,
				 sizeof(err)) != WEFT_OK) {
		cli_error("openlineage.api_key_file: %s", err);
		return -1;
	}
	o->ol_api_key = key;
	return 0;
}

static const cli_cmd coordinator_cmd = {
	.name = "coordinator",
	.help = coordinator_help,
};

int cmd_coordinator(int argc, char **argv)
{
	weft_coordinator_opts o = {.log = stderr};
	int ready_fd = -1, max_conns = 0, idle_ms = 0;
	bool quiet = false;
	const cli_opt opts[] = {
		{"listen", 'l', CLI_STRING, &o.listen_url},
		{"store", 's', CLI_STRING, &o.store_path},
		{"tls-cert", 'c', CLI_STRING, &o.tls_cert},
		{"tls-key", 'k', CLI_STRING, &o.tls_key},
		{"submit-key-file", 'K', CLI_STRING, &o.submit_key_file},
		{"contexts", 'n', CLI_INT, &o.contexts, .min = 1, .max = 4096},
		{"max-connections", 'm', CLI_INT, &max_conns, .min = 1,
		 .max = CONFIG_COORD_MAX_CONNECTIONS},
		{"idle-timeout", 'i', CLI_SECONDS, &idle_ms},
		{"ready-fd", 'r', CLI_INT, &ready_fd, .max = INT_MAX,
		 .expect = "a file descriptor number"},
		{"quiet", 'q', CLI_FLAG, &quiet},
		{NULL},
	};
	int c = cli_parse(&coordinator_cmd, opts, argc, argv);
	if (c != CLI_GO)
		return c;
	if (quiet)
		o.log = NULL;
	if (!o.listen_url)
		return cli_usage_error("coordinator",
				       "--listen URL is required");
	weft_config cfg;
	if (config_load(&cfg, NULL, false, stderr) != 0)
		return WEFT_EXIT_USAGE;
	o.max_connections = max_conns ? max_conns : cfg.coord_max_connections;
	o.idle_timeout_ms = idle_ms ? idle_ms : cfg.coord_idle_timeout_ms;
	if (!o.submit_key_file && cfg.coord_submit_key_file[0])
		o.submit_key_file = cfg.coord_submit_key_file;
	char ol_key[4097];
	if (cli_openlineage_opts(&cfg, &o, ol_key, sizeof(ol_key)) != 0)
		return WEFT_EXIT_USAGE;
	char db[WEFT_MAX_PATH_BYTES + 32];
	if (!o.store_path) {
		char dir[WEFT_MAX_PATH_BYTES + 1];
		weft_store *s = cli_open_store(true, dir, sizeof(dir));
		if (!s)
			return 1;
		weft_store_close(s);
		snprintf(db, sizeof(db), "%s/%s", dir, WEFT_DB_NAME);
		o.store_path = db;
	}
	return weft_coordinator_serve(&o, ready_fd, stderr);
}
