/* cli.h — what every `openum` sub-command shares: the global options, the
 * store (resolved path, existence and ownership checks), output helpers and
 * the reload request to a running server.
 *
 * A sub-command is `int om_cmd_<name>(struct om_cli *cli, int argc, char **argv)`
 * where argv[0] is the sub-command's name and the rest its arguments; it
 * returns OM_EXIT_OK, OM_EXIT_FAIL (the operation failed) or OM_EXIT_USAGE
 * (bad usage). Errors go to stderr through om_cli_error: what was wrong and
 * what to do. `--help` at every level prints usage and exits 0. */
#ifndef OM_CLI_CLI_H
#define OM_CLI_CLI_H

#include <stdbool.h>
#include <stdio.h>

#include "directory/db.h"

enum { OM_EXIT_OK = 0, OM_EXIT_FAIL = 1, OM_EXIT_USAGE = 2 };

struct om_cli {
	const char *data_dir;    /* resolved: --data, $OPENUM_DATA, /var/lib/openum */
	const char *config_path; /* resolved: --config, $OPENUM_CONFIG, DATA/openum.conf */
	bool config_explicit;    /* --config or $OPENUM_CONFIG: a missing file is an error */
	bool json;               /* --json: machine-readable output on stdout */
	bool as_owner;           /* --as-owner: act as the store's owner */
	const char *prog;        /* "openum" */
};

/* Message on stderr prefixed "openum: error: ". */
void om_cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Message on stderr prefixed "openum: ". */
void om_cli_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Checks that the store exists (else prints the resolved path and what to
 * do, returns OM_EXIT_FAIL) and, when it is owned by another user, either
 * refuses (OM_EXIT_FAIL) or, with --as-owner, drops to the owner's uid/gid
 * before any file is touched. Then opens openum.db (read-only when !write).
 * Returns OM_EXIT_OK and *out, or an exit code. */
int om_cli_store_open(struct om_cli *cli, bool write, struct om_db **out);

/* Only the existence + ownership part (for commands that touch files in the
 * store without the database, e.g. certificates). */
int om_cli_store_check(struct om_cli *cli, bool write);

/* Asks a running server to reload (control socket). Prints, for people,
 * "server reloaded" / "no server running: takes effect at next start" /
 * "server rejected the change: <why>". Returns 0 when reloaded or no server
 * runs, 1 when the server rejected it. */
int om_cli_reload(struct om_cli *cli);

/* Path of a file in the store: snprintf(buf, len, "%s/%s", data_dir, name). */
const char *om_cli_path(const struct om_cli *cli, const char *name, char *buf, size_t len);

/* Reads a secret from FILE or "-" (stdin). FILE must be a regular file
 * that only its owner can read: group/other access, a FIFO, a directory or
 * a device is refused at once (never blocks). "-" on a terminal prompts on
 * stderr with the echo off (restored afterwards, also on SIGINT). Trailing
 * newline stripped; an empty secret, one holding a NUL byte or one longer
 * than len-1 bytes is refused (never cut silently). 0 or exit code. */
int om_cli_read_secret(const char *file, char *buf, size_t len);

#endif
