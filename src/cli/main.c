/* main.c — the `openum` command: global options, dispatch to sub-commands.
 *
 * Global options may appear anywhere before `--`: --data DIR, --config FILE,
 * --json, --as-owner (they are taken out before the sub-command parses the
 * rest). Exit status: 0 success, 1 failed operation, 2 bad usage. */
#include "cli/cli.h"
#include "cli/commands.h"
#include "core/alloc.h"
#include "core/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Sub-commands that other modules provide; until they are linked in, the
 * command says it is not available in this build. */
#define WEAK_CMD(name)                                                                     \
	__attribute__((weak)) int om_cmd_##name(struct om_cli *cli, int argc, char **argv) \
	{                                                                                  \
		om_cli_error("`openum %s` is not available in this build", #name);         \
		return OM_EXIT_USAGE;                                                      \
	}
WEAK_CMD(dialplan)
WEAK_CMD(gateway)
WEAK_CMD(server)
WEAK_CMD(mailbox)
WEAK_CMD(cert)

struct command {
	const char *name;
	int (*fn)(struct om_cli *cli, int argc, char **argv);
	const char *summary;
};

static const struct command commands[] = {
	{ "init", om_cmd_init, "create the store (0700) with a default openum.conf" },
	{ "serve", om_cmd_serve, "run the server" },
	{ "status", om_cmd_status, "show what the running server is doing" },
	{ "calls", om_cmd_calls, "list the calls in progress" },
	{ "reload", om_cmd_reload, "make the running server re-read configuration and directory" },
	{ "events", om_cmd_events, "show the event log" },
	{ "dialplan", om_cmd_dialplan, "manage dial plans" },
	{ "gateway", om_cmd_gateway, "manage IP gateways and IP PBXs (the trusted devices)" },
	{ "server", om_cmd_server, "this server's dial plans, certificate and status" },
	{ "mailbox", om_cmd_mailbox, "manage mailboxes" },
	{ "cert", om_cmd_cert, "certificate stores, selection, import and export" },
	{ "test-connectivity", om_cmd_testcall,
	  "place a test call as a gateway would and check every step" },
};

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: openum [--data DIR] [--config FILE] [--json] [--as-owner] COMMAND [ARGS]\n"
	        "\n"
	        "commands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  %-17s %s\n", commands[i].name, commands[i].summary);
	fprintf(f,
	        "\n"
	        "global options:\n"
	        "  --data DIR      the store (default: $OPENUM_DATA, else /var/lib/openum)\n"
	        "  --config FILE   configuration (default: $OPENUM_CONFIG, else DIR/openum.conf)\n"
	        "  --json          machine-readable output\n"
	        "  --as-owner      act as the store's owner (root only) instead of refusing\n"
	        "  --version       print the version\n"
	        "\n"
	        "`openum COMMAND --help` describes each command. Exit status: 0 success,\n"
	        "1 failed operation, 2 bad usage.\n");
}

/* Takes a global option's value from "--opt VALUE" or "--opt=VALUE". */
static int take_value(int *i, int argc, char **argv, const char *opt, const char **out)
{
	size_t n = strlen(opt);
	if (!strncmp(argv[*i], opt, n) && argv[*i][n] == '=') {
		*out = argv[*i] + n + 1;
		return 1;
	}
	if (!strcmp(argv[*i], opt)) {
		if (*i + 1 >= argc) {
			om_cli_error("%s needs a value", opt);
			exit(OM_EXIT_USAGE);
		}
		*out = argv[++*i];
		return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct om_cli cli = { .prog = "openum" };
	char **rest = om_calloc((size_t)argc + 1, sizeof(char *));
	int nrest = 0, dashdash = 0;
	static char config_buf[4200];

	om_log_init(OM_LOG_INFO, -1);
	if (!rest)
		return OM_EXIT_FAIL;
	for (int i = 1; i < argc; i++) {
		if (dashdash) {
			rest[nrest++] = argv[i];
			continue;
		}
		if (!strcmp(argv[i], "--")) {
			dashdash = 1;
			rest[nrest++] = argv[i];
			continue;
		}
		if (take_value(&i, argc, argv, "--data", &cli.data_dir) ||
		    take_value(&i, argc, argv, "--config", &cli.config_path))
			continue;
		if (!strcmp(argv[i], "--json")) {
			cli.json = true;
			continue;
		}
		if (!strcmp(argv[i], "--as-owner")) {
			cli.as_owner = true;
			continue;
		}
		if (nrest == 0 && !strcmp(argv[i], "--version")) {
			printf("openum %s\n", OM_VERSION);
			om_free(rest);
			return OM_EXIT_OK;
		}
		if (nrest == 0 && (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h") ||
		                   !strcmp(argv[i], "help"))) {
			usage(stdout);
			om_free(rest);
			return OM_EXIT_OK;
		}
		rest[nrest++] = argv[i];
	}
	if (!cli.data_dir)
		cli.data_dir = getenv("OPENUM_DATA");
	if (!cli.data_dir || !*cli.data_dir)
		cli.data_dir = "/var/lib/openum";
	if (cli.config_path)
		cli.config_explicit = true;
	if (!cli.config_path) {
		const char *env = getenv("OPENUM_CONFIG");
		if (env && *env) {
			cli.config_path = env;
			cli.config_explicit = true;
		} else {
			snprintf(config_buf, sizeof(config_buf), "%s/openum.conf", cli.data_dir);
			cli.config_path = config_buf;
		}
	}
	if (nrest == 0) {
		usage(stderr);
		om_free(rest);
		return OM_EXIT_USAGE;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (!strcmp(rest[0], commands[i].name)) {
			int rc = commands[i].fn(&cli, nrest, rest);
			om_free(rest);
			return rc;
		}
	}
	om_cli_error("unknown command '%s'; `openum --help` lists the commands", rest[0]);
	om_free(rest);
	return OM_EXIT_USAGE;
}
