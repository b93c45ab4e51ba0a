/* commands.h — the sub-commands of `openum` (one function each). */
#ifndef OM_CLI_COMMANDS_H
#define OM_CLI_COMMANDS_H

#include "cli/cli.h"

int om_cmd_init(struct om_cli *cli, int argc, char **argv);
int om_cmd_serve(struct om_cli *cli, int argc, char **argv);
int om_cmd_status(struct om_cli *cli, int argc, char **argv);
int om_cmd_reload(struct om_cli *cli, int argc, char **argv);
int om_cmd_events(struct om_cli *cli, int argc, char **argv);
int om_cmd_dialplan(struct om_cli *cli, int argc, char **argv);
int om_cmd_gateway(struct om_cli *cli, int argc, char **argv);
int om_cmd_server(struct om_cli *cli, int argc, char **argv);
int om_cmd_mailbox(struct om_cli *cli, int argc, char **argv);
int om_cmd_cert(struct om_cli *cli, int argc, char **argv);
int om_cmd_calls(struct om_cli *cli, int argc, char **argv);
int om_cmd_testcall(struct om_cli *cli, int argc, char **argv);

/* Sends `cmd` to the running server (control socket) and returns its JSON
 * reply (om_free it). OM_EXIT_FAIL with the error printed when no server
 * runs or the request is refused. */
int om_cli_ctl_request(struct om_cli *cli, const char *cmd, char **reply);

/* Uniform handling of a sub-command's own arguments: returns 1 when argv
 * has --help/-h (usage printed to stdout). */
int om_cli_wants_help(int argc, char **argv, const char *usage);

#endif
