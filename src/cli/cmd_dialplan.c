/* cmd_dialplan.c — `openum dialplan new|set|show|list|remove` (R3), and the
 * helpers every directory sub-command shares (dircmd.h). */
#include "cli/commands.h"
#include "cli/dircmd.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"

/* ------------------------------------------------------------------ shared */

int dc_args_parse(int argc, char **argv, const char *cmd, const char *what, struct dc_opt *opts,
                  size_t nopts, size_t nother, const char *usage, struct dc_args *a)
{
	const char *pos[2];
	size_t npos = 0;
	int rc;
	memset(a, 0, sizeof(*a));
	if (argc < 2) {
		om_cli_error("which action? new, set, show, list or remove\n%s", usage);
		return OM_EXIT_USAGE;
	}
	a->act = argv[1];
	a->is_new = !strcmp(a->act, "new");
	a->is_set = !strcmp(a->act, "set");
	a->is_show = !strcmp(a->act, "show");
	a->is_list = !strcmp(a->act, "list");
	a->is_rm = !strcmp(a->act, "remove");
	if (!a->is_new && !a->is_set && !a->is_show && !a->is_list && !a->is_rm) {
		om_cli_error("unknown action '%s': use new, set, show, list or remove", a->act);
		return OM_EXIT_USAGE;
	}
	bool change = a->is_new || a->is_set;
	rc = dc_parse(argc, argv, 2, opts, change ? nopts : nother, pos, 1, &npos,
	              change ? &a->dry : NULL, (a->is_list || a->is_show) ? NULL : &a->no_reload,
	              usage);
	if (rc)
		return rc;
	if (!a->is_list && npos != 1) {
		om_cli_error("`openum %s %s` needs %s", cmd, a->act, what);
		return OM_EXIT_USAGE;
	}
	if (a->is_list && npos) {
		om_cli_error("unexpected argument '%s'", pos[0]);
		return OM_EXIT_USAGE;
	}
	a->pos = npos ? pos[0] : NULL;
	return OM_EXIT_OK;
}

void dc_report(const char *noun, const char *name, const struct dc_args *a)
{
	const char *what = a->dry      ? (a->is_new ? "would be created" : "would be changed")
	                   : a->is_new ? "created"
	                   : a->is_set ? "changed"
	                               : "removed";
	printf("%s %s %s\n", noun, name, what);
}

struct dc_opt *dc_find(struct dc_opt *opts, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(opts[i].name, name))
			return &opts[i];
	return NULL;
}

int dc_parse(int argc, char **argv, int first, struct dc_opt *opts, size_t nopts, const char **pos,
             size_t maxpos, size_t *npos, bool *dry, bool *no_reload, const char *usage)
{
	int i;
	*npos = 0;
	for (i = first; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--")) {
			for (i++; i < argc; i++) {
				if (*npos >= maxpos)
					goto extra;
				pos[(*npos)++] = argv[i];
			}
			break;
		}
		if (strncmp(a, "--", 2) != 0 || a[2] == 0) {
			if (*npos >= maxpos)
				goto extra;
			pos[(*npos)++] = a;
			continue;
		}
		if (dry && !strcmp(a, "--dry-run")) {
			*dry = true;
			continue;
		}
		if (no_reload && !strcmp(a, "--no-reload")) {
			*no_reload = true;
			continue;
		}
		const char *eq = strchr(a, '=');
		size_t len = eq ? (size_t)(eq - a) : strlen(a);
		struct dc_opt *o = NULL;
		for (size_t k = 0; k < nopts; k++)
			if (strlen(opts[k].name) == len - 2 &&
			    !strncmp(opts[k].name, a + 2, len - 2))
				o = &opts[k];
		if (!o) {
			om_cli_error("unknown option '%.*s'; see --help\n%s", (int)len, a, usage);
			return OM_EXIT_USAGE;
		}
		if (o->set) {
			om_cli_error("--%s is given twice", o->name);
			return OM_EXIT_USAGE;
		}
		o->set = true;
		if (!o->arg) {
			if (eq) {
				om_cli_error("--%s takes no value", o->name);
				return OM_EXIT_USAGE;
			}
			continue;
		}
		if (eq) {
			o->val = eq + 1;
		} else if (i + 1 < argc) {
			o->val = argv[++i];
		} else {
			om_cli_error("--%s needs a value", o->name);
			return OM_EXIT_USAGE;
		}
	}
	return 0;
extra:
	om_cli_error("unexpected argument '%s'; see --help", i < argc ? argv[i] : "");
	return OM_EXIT_USAGE;
}

int dc_int(const char *opt, const char *s, long min, long max, const char *range, int *out)
{
	char *end = NULL;
	long v;
	errno = 0;
	v = strtol(s, &end, 10);
	if (!*s || *end || errno || v < min || v > max || s[0] == '+' || s[0] == ' ') {
		om_cli_error("invalid %s '%s': %s", opt, s, range);
		return OM_EXIT_USAGE;
	}
	*out = (int)v;
	return 0;
}

int dc_fail(int rc, const struct om_dir_err *e)
{
	om_cli_error("%s", e->msg[0] ? e->msg : strerror(rc));
	if (rc == EINVAL)
		return OM_EXIT_USAGE;
	return OM_EXIT_FAIL;
}

void dc_json_kv_str(struct om_buf *b, const char *k, const char *v, bool comma)
{
	if (comma)
		om_buf_adds(b, ",");
	om_buf_json_str(b, k);
	om_buf_adds(b, ":");
	if (v && *v)
		om_buf_json_str(b, v);
	else
		om_buf_adds(b, "null");
}

int dc_done(struct om_cli *cli, const char *what, bool dry, bool no_reload, struct om_buf *obj)
{
	int rc = 0;
	const char *reload = "skipped";
	if (dry) {
		if (!cli->json)
			printf("dry run: nothing was changed\n");
		reload = "none (dry run)";
	} else if (!no_reload) {
		rc = om_cli_reload(cli);
		reload = rc ? "rejected" : "done";
	} else if (!cli->json) {
		printf("not reloading (--no-reload): run `openum reload` to apply the change\n");
	}
	if (cli->json) {
		printf("{\"ok\":%s,\"dry_run\":%s,\"reload\":\"%s\"", rc ? "false" : "true",
		       dry ? "true" : "false", reload);
		if (obj && what) {
			const char *s = om_buf_cstr(obj);
			printf(",\"%s\":%s", what, s ? s : "null");
		}
		printf("}\n");
	}
	return rc ? OM_EXIT_FAIL : OM_EXIT_OK;
}

/* -------------------------------------------------------------- dial plans */

#define DP_TEXT                                                                           \
	"A dial plan groups extensions of one length (1-20 digits) and sets the VoIP\n"   \
	"security mode: unsecured (default), sipsecured (TLS signalling, RTP)\n"          \
	"or secured (TLS and SRTP). Gateways of sipsecured and secured plans must use\n"  \
	"TLS on port 5061 with a TLS name. A plan still used by gateways, mailboxes or\n" \
	"this server cannot be removed. --rtp-symmetric yes lets the RTP port of a\n"     \
	"gateway behind NAT move once during a call (plain RTP; the IP address never\n"   \
	"moves, and SRTP moves only after a packet authenticated); no (default)\n"        \
	"drops media from any port the SDP does not name. All commands take --json;\n"    \
	"changes ask a running server to reload unless --no-reload.\n"

static const char usage[] =
    "usage: openum dialplan new NAME --digits N [--security MODE] [--pilot NUMBER]\n"
    "                           [--max-message S] [--max-greeting S] [--rtp-symmetric yes|no]\n"
    "                           [--dry-run] [--no-reload]\n"
    "       openum dialplan set NAME [--digits N] [--security MODE] [--pilot NUMBER|none]\n"
    "                           [--max-message S] [--max-greeting S] [--rtp-symmetric yes|no]\n"
    "                           [--dry-run] [--no-reload]\n"
    "       openum dialplan show NAME\n"
    "       openum dialplan list\n"
    "       openum dialplan remove NAME [--no-reload]\n"
    "\n" DP_TEXT "\n"
    "`openum dialplan SUB --help` shows one sub-command.\n";

static const struct om_cli_sub_help sub_help[] = {
	{ "new", "Adds a dial plan.\n\n" DP_TEXT },
	{ "set", "Changes dial plan NAME: only the options given change; --pilot none\n"
	         "removes the pilot number.\n\n" DP_TEXT },
	{ "show", "Shows dial plan NAME: digits, security mode, pilot, message and greeting\n"
	          "lengths, RTP symmetry.\n" },
	{ "list", "Lists the dial plans.\n" },
	{ "remove", "Removes dial plan NAME, unless gateways, mailboxes or this server use it;\n"
	            "a running server reloads unless --no-reload.\n" },
};

static void plan_json(struct om_buf *b, const struct om_dir_dialplan *p)
{
	om_buf_adds(b, "{");
	dc_json_kv_str(b, "name", p->name, false);
	om_buf_printf(b, ",\"digits\":%d", p->digits);
	dc_json_kv_str(b, "security", om_dir_security_name(p->security), true);
	dc_json_kv_str(b, "pilot", p->pilot, true);
	om_buf_printf(b, ",\"max_message_s\":%d,\"max_greeting_s\":%d,\"rtp_symmetric\":%s}",
	              p->max_message_s, p->max_greeting_s, p->rtp_symmetric ? "true" : "false");
}

static void plan_text(const struct om_dir_dialplan *p)
{
	printf("name:          %s\n"
	       "digits:        %d\n"
	       "security:      %s\n"
	       "pilot:         %s\n"
	       "max message:   %d s\n"
	       "max greeting:  %d s\n"
	       "rtp symmetric: %s\n",
	       p->name, p->digits, om_dir_security_name(p->security),
	       p->pilot[0] ? p->pilot : "(none)", p->max_message_s, p->max_greeting_s,
	       p->rtp_symmetric ? "yes" : "no");
}

static int print_plan(struct om_cli *cli, const struct om_dir_dialplan *p)
{
	struct om_buf b;
	if (!cli->json) {
		plan_text(p);
		return OM_EXIT_OK;
	}
	om_buf_init(&b);
	plan_json(&b, p);
	printf("%s\n", om_buf_cstr(&b) ? om_buf_cstr(&b) : "null");
	om_buf_free(&b);
	return OM_EXIT_OK;
}

static int list_plans(struct om_cli *cli, struct om_db *db)
{
	struct om_dir_dialplan *arr = NULL;
	size_t n = 0;
	struct om_buf b;
	if (om_dir_dialplan_list(db, &arr, &n)) {
		om_cli_error("could not read the dial plans from %s", om_db_path(db));
		return OM_EXIT_FAIL;
	}
	om_buf_init(&b);
	if (cli->json) {
		om_buf_adds(&b, "[");
		for (size_t i = 0; i < n; i++) {
			if (i)
				om_buf_adds(&b, ",");
			plan_json(&b, &arr[i]);
		}
		om_buf_adds(&b, "]");
		printf("%s\n", om_buf_cstr(&b) ? om_buf_cstr(&b) : "[]");
	} else if (n == 0) {
		printf("no dial plans: create one with `openum dialplan new NAME --digits N`\n");
	} else {
		printf("%-24s %6s  %-10s  %s\n", "NAME", "DIGITS", "SECURITY", "PILOT");
		for (size_t i = 0; i < n; i++)
			printf("%-24s %6d  %-10s  %s\n", arr[i].name, arr[i].digits,
			       om_dir_security_name(arr[i].security), arr[i].pilot);
	}
	om_buf_free(&b);
	om_free(arr);
	return OM_EXIT_OK;
}

int om_cmd_dialplan(struct om_cli *cli, int argc, char **argv)
{
	struct dc_opt opts[] = {
		{ "digits", true, NULL, false },       { "security", true, NULL, false },
		{ "pilot", true, NULL, false },        { "max-message", true, NULL, false },
		{ "max-greeting", true, NULL, false }, { "rtp-symmetric", true, NULL, false },
	};
	const size_t nopts = sizeof(opts) / sizeof(opts[0]);
	struct om_dir_dialplan in, out;
	struct om_dir_err e = { "" };
	struct om_db *db = NULL;
	unsigned fields = 0;
	int rc;

	if (om_cli_wants_sub_help(argc, argv, "dialplan", usage, sub_help,
	                          sizeof(sub_help) / sizeof(sub_help[0])) ||
	    om_cli_wants_help(argc, argv, usage))
		return OM_EXIT_OK;
	struct dc_args a;
	rc = dc_args_parse(argc, argv, "dialplan", "the dial plan's NAME", opts, nopts, 0, usage,
	                   &a);
	if (rc)
		return rc;
	bool is_new = a.is_new, is_set = a.is_set, is_show = a.is_show, is_list = a.is_list;
	bool is_rm = a.is_rm, dry = a.dry, no_reload = a.no_reload;
	size_t npos = a.pos ? 1 : 0;
	const char *pos[1] = { a.pos };
	memset(&in, 0, sizeof(in));
	if (npos)
		snprintf(in.name, sizeof(in.name), "%s", pos[0]);
	if (opts[0].set) {
		if ((rc = dc_int("--digits", opts[0].val, 1, 20, "an extension has 1 to 20 digits",
		                 &in.digits)))
			return rc;
		fields |= OM_DP_DIGITS;
	}
	if (opts[1].set) {
		if (om_dir_security_parse(opts[1].val, &in.security)) {
			om_cli_error(
			    "invalid --security '%s': use unsecured, sipsecured or secured",
			    opts[1].val);
			return OM_EXIT_USAGE;
		}
		fields |= OM_DP_SECURITY;
	}
	if (opts[2].set) {
		const char *v = opts[2].val;
		if (!strcmp(v, "none") || !*v)
			v = "";
		else if (!om_dir_pilot_valid(v)) {
			om_cli_error("invalid --pilot '%s': use digits, optionally after a '+'", v);
			return OM_EXIT_USAGE;
		}
		snprintf(in.pilot, sizeof(in.pilot), "%s", v);
		fields |= OM_DP_PILOT;
	}
	if (opts[3].set) {
		if ((rc = dc_int("--max-message", opts[3].val, 1, 86400, "1 to 86400 seconds",
		                 &in.max_message_s)))
			return rc;
		fields |= OM_DP_MAX_MESSAGE;
	}
	if (opts[4].set) {
		if ((rc = dc_int("--max-greeting", opts[4].val, 1, 3600, "1 to 3600 seconds",
		                 &in.max_greeting_s)))
			return rc;
		fields |= OM_DP_MAX_GREETING;
	}
	if (opts[5].set) {
		if (om_dir_bool_parse(opts[5].val, &in.rtp_symmetric)) {
			om_cli_error("invalid --rtp-symmetric '%s': use yes or no", opts[5].val);
			return OM_EXIT_USAGE;
		}
		fields |= OM_DP_RTP_SYMMETRIC;
	}
	if (is_new && !(fields & OM_DP_DIGITS)) {
		om_cli_error(
		    "a new dial plan needs --digits N (the length of its extensions, 1-20)");
		return OM_EXIT_USAGE;
	}
	if (is_set && !fields) {
		om_cli_error(
		    "nothing to change: give --digits, --security, --pilot, --max-message, "
		    "--max-greeting or --rtp-symmetric");
		return OM_EXIT_USAGE;
	}
	if (npos && !om_dir_name_valid(in.name)) {
		om_cli_error("invalid dial plan name '%s': use 1-64 letters, digits, '.', '_' or "
		             "'-', starting with a letter or digit",
		             in.name);
		return OM_EXIT_USAGE;
	}
	if ((rc = om_cli_store_open(cli, is_new || is_set || is_rm, &db)))
		return rc;
	int flags = dry ? OM_DIR_DRY_RUN : 0;
	if (is_list) {
		rc = list_plans(cli, db);
	} else if (is_show) {
		rc = om_dir_dialplan_get(db, in.name, &out, &e);
		rc = rc ? dc_fail(rc, &e) : print_plan(cli, &out);
	} else {
		if (is_new)
			rc = om_dir_dialplan_new(db, &in, fields, flags, &out, &e);
		else if (is_set)
			rc = om_dir_dialplan_set(db, in.name, &in, fields, flags, &out, &e);
		else
			rc = om_dir_dialplan_remove(db, in.name, flags, &e);
		if (rc) {
			rc = dc_fail(rc, &e);
		} else {
			struct om_buf b;
			om_buf_init(&b);
			if (!is_rm)
				plan_json(&b, &out);
			if (!cli->json) {
				dc_report("dial plan", is_rm ? in.name : out.name, &a);
				if (!is_rm)
					plan_text(&out);
			}
			om_db_free(db);
			db = NULL;
			rc = dc_done(cli, is_rm ? NULL : "dialplan", dry, no_reload, &b);
			om_buf_free(&b);
		}
	}
	om_db_free(db);
	return rc;
}
