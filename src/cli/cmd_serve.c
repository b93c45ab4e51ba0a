/* cmd_serve.c — `openum serve`: run the server on the store. */
#include "app/server.h"
#include "cli/commands.h"

#include <stdlib.h>
#include <string.h>

static const char serve_usage[] =
    "usage: openum serve [--data DIR] [--config FILE] [--init]\n"
    "\n"
    "Runs the server in the foreground until SIGTERM or SIGINT (drain, then exit\n"
    "0). SIGHUP or `openum reload` re-reads the configuration: a bad one is\n"
    "rejected (event 1181) and the running one stays. Reports readiness to\n"
    "systemd (Type=notify) and, when WATCHDOG_USEC is set, pings its watchdog.\n"
    "--init creates the store first if there is none.\n"
    "\n"
    "SIP listeners: sip_tcp in openum.conf (default: every interface, port 5060)\n"
    "and, when the start is secured, sip_tls (default: every interface, port\n"
    "5061). Each is a comma-separated list of ADDRESS:PORT ([v6]:PORT), or off.\n";

int om_cli_init_store(struct om_cli *cli, bool quiet);

int om_cmd_serve(struct om_cli *cli, int argc, char **argv)
{
	bool init = false;
	if (om_cli_wants_help(argc, argv, serve_usage))
		return OM_EXIT_OK;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--init")) {
			init = true;
		} else {
			om_cli_error("unexpected argument '%s'\n%s", argv[i], serve_usage);
			return OM_EXIT_USAGE;
		}
	}
	if (init) {
		int rc = om_cli_init_store(cli, true);
		if (rc)
			return rc;
	}
	int rc = om_cli_store_check(cli, true);
	if (rc)
		return rc;
	struct om_server_opts o = {
		.data_dir = cli->data_dir,
		.config_path = cli->config_path,
		.config_explicit = cli->config_explicit,
	};
	return om_server_run(&o);
}
