/* server.h — the `openum serve` process: store, configuration, start mode
 * (R9), control socket (status, reload), signals, drain, sd_notify. */
#ifndef OM_APP_SERVER_H
#define OM_APP_SERVER_H

#include <stdbool.h>
#include <stddef.h>

struct om_server_opts {
	const char *data_dir;
	const char *config_path;
	bool config_explicit; /* --config given: a missing file is an error */
};

/* Runs until SIGTERM/SIGINT. Returns a process exit code. */
int om_server_run(const struct om_server_opts *opts);

/* Before the server starts: the data directory, its folders (certs and below,
 * spool, mail) and its files (openum.db, pepper) must belong to the
 * effective user and be private to it (0700/0600); config_path (may be
 * NULL) must belong to that user or root and be writable by nobody else.
 * 0, or EPERM/ENOTDIR/errno with err naming the path and the fix. */
int om_server_check_store(const char *data_dir, const char *config_path, char *err, size_t errlen);

/* R9: any associated SIPSecured/Secured plan → secured; associated plans
 * all Unsecured → unsecured; no plan → start_secured. `why` explains. */
bool om_server_decide_secured(int n_plans, int n_secured_plans, bool start_secured,
                              const char **why);

#endif
