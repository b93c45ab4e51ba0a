/* dircmd.h — what the directory sub-commands (dialplan, gateway, server,
 * mailbox) share: option parsing, exit codes for directory errors, the
 * reload after a change and the closing JSON. Defined in cmd_dialplan.c. */
#ifndef OM_CLI_DIRCMD_H
#define OM_CLI_DIRCMD_H

#include "cli/cli.h"
#include "core/str.h"
#include "directory/directory.h"

#include <stdbool.h>
#include <stddef.h>

/* One option: "--name VALUE", "--name=VALUE", or a flag (!arg). */
struct dc_opt {
	const char *name;
	bool arg;
	const char *val; /* after parsing */
	bool set;
};

/* Parses argv[first..]: options from `opts` (plus --dry-run, --no-reload,
 * stored in *dry / *no_reload when not NULL) and up to maxpos positional
 * arguments. Prints the error and returns OM_EXIT_USAGE on anything else. */
int dc_parse(int argc, char **argv, int first, struct dc_opt *opts, size_t nopts, const char **pos,
             size_t maxpos, size_t *npos, bool *dry, bool *no_reload, const char *usage);
/* The action word and its arguments, shared by dialplan, gateway and
 * mailbox: ACTION (new|set|show|list|remove), the options (all of `opts`
 * for new/set, the first `nother` for the others), --dry-run for new/set,
 * --no-reload for new/set/remove, and exactly one positional argument
 * (`what`, e.g. "the gateway's NAME") except for list. Prints the error and
 * returns OM_EXIT_USAGE on anything else. */
struct dc_args {
	bool is_new, is_set, is_show, is_list, is_rm;
	const char *act;
	const char *pos; /* NULL for list */
	bool dry, no_reload;
};
int dc_args_parse(int argc, char **argv, const char *cmd, const char *what, struct dc_opt *opts,
                  size_t nopts, size_t nother, const char *usage, struct dc_args *out);
/* For people: "gateway gw1 created" / "would be changed" (dry run) / ... */
void dc_report(const char *noun, const char *name, const struct dc_args *a);
struct dc_opt *dc_find(struct dc_opt *opts, size_t n, const char *name);

/* Strict decimal in [min, max]: 0 or OM_EXIT_USAGE (message printed). */
int dc_int(const char *opt, const char *s, long min, long max, const char *range, int *out);

/* Exit code for a directory error (message printed): EINVAL is bad usage. */
int dc_fail(int rc, const struct om_dir_err *e);

/* After a change: reload the running server unless no_reload/dry. Prints
 * for people; in JSON mode the document (`obj`, already a JSON object) is
 * printed with "dry_run" and "reload" fields. Returns the exit code. */
int dc_done(struct om_cli *cli, const char *what, bool dry, bool no_reload, struct om_buf *obj);

/* JSON helpers */
void dc_json_kv_str(struct om_buf *b, const char *k, const char *v, bool comma);

#endif
