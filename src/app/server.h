/* server.h — the `openum serve` process: store, configuration, start mode
 * (R9), control socket (status, reload), signals, drain, sd_notify. */
#ifndef OM_APP_SERVER_H
#define OM_APP_SERVER_H

#include <stdbool.h>

struct om_server_opts {
	const char *data_dir;
	const char *config_path;
	bool config_explicit; /* --config given: a missing file is an error */
};

/* Runs until SIGTERM/SIGINT. Returns a process exit code. */
int om_server_run(const struct om_server_opts *opts);

/* R9: any associated SIPSecured/Secured plan → secured; associated plans
 * all Unsecured → unsecured; no plan → start_secured. `why` explains. */
bool om_server_decide_secured(int n_plans, int n_secured_plans, bool start_secured,
                              const char **why);

#endif
