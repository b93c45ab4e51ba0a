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

/* One sub-command's own help: its name and what follows its usage lines
 * (the paragraphs that concern it, "" for none). */
struct om_cli_sub_help {
	const char *sub;
	const char *text;
};

/* `openum CMD SUB --help`: when argv[1] is a sub-command of `subs` and argv
 * has --help/-h, prints the lines of `usage` (the block before its first
 * empty line) that begin "openum CMD SUB", with their continuation lines,
 * then an empty line and the sub-command's text, and returns 1. Returns 0
 * otherwise (the command prints its whole usage as before). */
int om_cli_wants_sub_help(int argc, char **argv, const char *cmd, const char *usage,
                          const struct om_cli_sub_help *subs, size_t nsubs);

#endif
