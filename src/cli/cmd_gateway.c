/* cmd_gateway.c — `openum gateway new|set|show|list|remove`: the IP gateways
 * and IP PBXs, openum's trusted devices (R4). */
#include "core/fqdn.h"
#include "cli/commands.h"
#include "cli/dircmd.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"

#define GW_TEXT                                                                         \
	"A gateway (IP gateway or IP PBX) is a trusted device: SIP from any other\n"    \
	"peer is dropped. HOST is an IPv4/IPv6 address or an FQDN. Over TLS the\n"      \
	"peer's certificate must carry the TLS name (default: the first address when\n" \
	"it is an FQDN). Gateways of SIPSecured/Secured dial plans must use TLS on\n"   \
	"port 5061. Defaults: transport tls for such plans (or --port 5061), else\n"    \
	"tcp; port 5061 for tls, 5060 for tcp; max-calls 0 = no limit.\n"               \
	"--diversion: which end of a Diversion chain names the mailbox: top (the\n"     \
	"last diverting party, default) or bottom (the originally called party).\n"

static const char usage[] =
    "usage: openum gateway new NAME --address HOST[,HOST...] --dialplan NAME\n"
    "                          [--tls-name FQDN] [--port N] [--transport tcp|tls]\n"
    "                          [--status enabled|disabled|nonewcalls] [--max-calls N]\n"
    "                          [--outcalls yes|no] [--mwi yes|no] [--diversion top|bottom]\n"
    "                          [--dry-run] [--no-reload]\n"
    "       openum gateway set NAME [--address HOST[,HOST...]] [--dialplan NAME]\n"
    "                          [--tls-name FQDN|none] [--port N] [--transport tcp|tls]\n"
    "                          [--status enabled|disabled|nonewcalls] [--max-calls N]\n"
    "                          [--outcalls yes|no] [--mwi yes|no] [--diversion top|bottom]\n"
    "                          [--dry-run] [--no-reload]\n"
    "       openum gateway show NAME\n"
    "       openum gateway list\n"
    "       openum gateway remove NAME [--no-reload]\n"
    "\n" GW_TEXT "\n"
    "`openum gateway SUB --help` shows one sub-command.\n";

static const struct om_cli_sub_help sub_help[] = {
	{ "new", "Adds a gateway.\n\n" GW_TEXT },
	{ "set", "Changes gateway NAME: only the options given change; --tls-name none\n"
	         "goes back to the default TLS name.\n\n" GW_TEXT },
	{ "show", "Shows gateway NAME: addresses, TLS name, port, transport, dial plan,\n"
	          "status and limits.\n" },
	{ "list", "Lists the gateways.\n" },
	{ "remove", "Removes gateway NAME: SIP from its addresses is dropped from then on.\n" },
};

static void gw_json(struct om_buf *b, const struct om_dir_gateway *g)
{
	om_buf_adds(b, "{");
	dc_json_kv_str(b, "name", g->name, false);
	om_buf_adds(b, ",\"addresses\":[");
	for (size_t i = 0; i < g->nhosts; i++) {
		if (i)
			om_buf_adds(b, ",");
		om_buf_json_str(b, g->hosts[i].name);
	}
	om_buf_adds(b, "]");
	dc_json_kv_str(b, "tls_name", g->tls_name, true);
	om_buf_printf(b, ",\"port\":%d", g->port);
	dc_json_kv_str(b, "transport", om_dir_transport_name(g->transport), true);
	dc_json_kv_str(b, "dialplan", g->dialplan, true);
	dc_json_kv_str(b, "status", om_dir_gw_status_name(g->status), true);
	om_buf_printf(b, ",\"max_calls\":%d,\"outcalls\":%s,\"mwi\":%s,\"diversion\":\"%s\"}",
	              g->max_calls, g->outcalls ? "true" : "false", g->mwi ? "true" : "false",
	              g->diversion_bottom ? "bottom" : "top");
}

static void addrs_text(const struct om_dir_gateway *g, char *buf, size_t len)
{
	size_t off = 0;
	buf[0] = 0;
	for (size_t i = 0; i < g->nhosts && off < len; i++)
		off +=
		    (size_t)snprintf(buf + off, len - off, "%s%s", i ? "," : "", g->hosts[i].name);
}

static void gw_text(const struct om_dir_gateway *g)
{
	char addrs[OM_DIR_ADDRS_MAX * (OM_DIR_HOST_MAX + 1)];
	addrs_text(g, addrs, sizeof(addrs));
	printf("name:       %s\n"
	       "addresses:  %s\n"
	       "tls name:   %s\n"
	       "port:       %d\n"
	       "transport:  %s\n"
	       "dial plan:  %s\n"
	       "status:     %s\n"
	       "max calls:  %d%s\n"
	       "outcalls:   %s\n"
	       "mwi:        %s\n"
	       "diversion:  %s\n",
	       g->name, addrs, g->tls_name[0] ? g->tls_name : "(none)", g->port,
	       om_dir_transport_name(g->transport), g->dialplan, om_dir_gw_status_name(g->status),
	       g->max_calls, g->max_calls ? "" : " (no limit)", g->outcalls ? "yes" : "no",
	       g->mwi ? "yes" : "no", g->diversion_bottom ? "bottom" : "top");
}

static int list_gws(struct om_cli *cli, struct om_db *db)
{
	struct om_dir_gateway *arr = NULL;
	size_t n = 0;
	struct om_buf b;
	if (om_dir_gateway_list(db, &arr, &n)) {
		om_cli_error("could not read the gateways from %s", om_db_path(db));
		return OM_EXIT_FAIL;
	}
	om_buf_init(&b);
	if (cli->json) {
		om_buf_adds(&b, "[");
		for (size_t i = 0; i < n; i++) {
			if (i)
				om_buf_adds(&b, ",");
			gw_json(&b, &arr[i]);
		}
		om_buf_adds(&b, "]");
		printf("%s\n", om_buf_cstr(&b) ? om_buf_cstr(&b) : "[]");
	} else if (n == 0) {
		printf("no gateways: add one with `openum gateway new NAME --address HOST "
		       "--dialplan PLAN`\n");
	} else {
		char addrs[OM_DIR_ADDRS_MAX * (OM_DIR_HOST_MAX + 1)];
		printf("%-20s %-10s %-9s %-5s %-20s %s\n", "NAME", "STATUS", "TRANSPORT", "PORT",
		       "DIAL PLAN", "ADDRESSES / TLS NAME");
		for (size_t i = 0; i < n; i++) {
			addrs_text(&arr[i], addrs, sizeof(addrs));
			printf("%-20s %-10s %-9s %-5d %-20s %s%s%s\n", arr[i].name,
			       om_dir_gw_status_name(arr[i].status),
			       om_dir_transport_name(arr[i].transport), arr[i].port,
			       arr[i].dialplan, addrs, arr[i].tls_name[0] ? " / " : "",
			       arr[i].tls_name);
		}
	}
	om_buf_free(&b);
	om_free(arr);
	return OM_EXIT_OK;
}

enum {
	O_ADDRESS,
	O_TLS,
	O_PORT,
	O_TRANSPORT,
	O_DIALPLAN,
	O_STATUS,
	O_MAX,
	O_OUT,
	O_MWI,
	O_DIVERSION,
	O_N
};

static int parse_addresses(const char *v, struct om_dir_gateway *g)
{
	char buf[4096], *save = NULL;
	if (snprintf(buf, sizeof(buf), "%s", v) >= (int)sizeof(buf)) {
		om_cli_error("--address is too long");
		return OM_EXIT_USAGE;
	}
	g->nhosts = 0;
	for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		if (g->nhosts == OM_DIR_ADDRS_MAX) {
			om_cli_error("too many addresses: at most %d per gateway",
			             OM_DIR_ADDRS_MAX);
			return OM_EXIT_USAGE;
		}
		if (om_dir_host_parse(t, &g->hosts[g->nhosts])) {
			om_cli_error(
			    "invalid address '%s': it is neither an IP address nor a fully "
			    "qualified domain name (give e.g. 192.0.2.10, 2001:db8::10 or "
			    "gw1.example.com)",
			    t);
			return OM_EXIT_USAGE;
		}
		g->nhosts++;
	}
	if (g->nhosts == 0) {
		om_cli_error("--address needs at least one HOST");
		return OM_EXIT_USAGE;
	}
	return 0;
}

static int parse_options(struct dc_opt *o, struct om_dir_gateway *in, unsigned *fields)
{
	int rc;
	if (o[O_ADDRESS].set) {
		if ((rc = parse_addresses(o[O_ADDRESS].val, in)))
			return rc;
		*fields |= OM_GW_F_HOSTS;
	}
	if (o[O_TLS].set) {
		const char *v = o[O_TLS].val;
		if (!strcmp(v, "none"))
			v = "";
		char why[160];
		if (*v && om_fqdn_check(v, OM_FQDN_MULTI_LABEL, why, sizeof(why))) {
			om_cli_error("invalid --tls-name '%s': %s. Give the fully qualified domain "
			             "name the gateway's certificate carries (no wildcards, no IP "
			             "address)",
			             v, why);
			return OM_EXIT_USAGE;
		}
		snprintf(in->tls_name, sizeof(in->tls_name), "%s", v);
		*fields |= OM_GW_F_TLS_NAME;
	}
	if (o[O_PORT].set) {
		if ((rc =
		         dc_int("--port", o[O_PORT].val, 1, 65535, "a port is 1-65535", &in->port)))
			return rc;
		*fields |= OM_GW_F_PORT;
	}
	if (o[O_TRANSPORT].set) {
		if (om_dir_transport_parse(o[O_TRANSPORT].val, &in->transport)) {
			om_cli_error("invalid --transport '%s': use tcp or tls",
			             o[O_TRANSPORT].val);
			return OM_EXIT_USAGE;
		}
		*fields |= OM_GW_F_TRANSPORT;
	}
	if (o[O_DIALPLAN].set) {
		if (!om_dir_name_valid(o[O_DIALPLAN].val)) {
			om_cli_error("invalid --dialplan '%s': see `openum dialplan list`",
			             o[O_DIALPLAN].val);
			return OM_EXIT_USAGE;
		}
		snprintf(in->dialplan, sizeof(in->dialplan), "%s", o[O_DIALPLAN].val);
		*fields |= OM_GW_F_DIALPLAN;
	}
	if (o[O_STATUS].set) {
		if (om_dir_gw_status_parse(o[O_STATUS].val, &in->status)) {
			om_cli_error("invalid --status '%s': use enabled, disabled or nonewcalls",
			             o[O_STATUS].val);
			return OM_EXIT_USAGE;
		}
		*fields |= OM_GW_F_STATUS;
	}
	if (o[O_MAX].set) {
		if ((rc = dc_int("--max-calls", o[O_MAX].val, 0, 1000000,
		                 "give 0 (no limit) to 1000000", &in->max_calls)))
			return rc;
		*fields |= OM_GW_F_MAX_CALLS;
	}
	if (o[O_OUT].set) {
		if (om_dir_bool_parse(o[O_OUT].val, &in->outcalls)) {
			om_cli_error("invalid --outcalls '%s': use yes or no", o[O_OUT].val);
			return OM_EXIT_USAGE;
		}
		*fields |= OM_GW_F_OUTCALLS;
	}
	if (o[O_MWI].set) {
		if (om_dir_bool_parse(o[O_MWI].val, &in->mwi)) {
			om_cli_error("invalid --mwi '%s': use yes or no", o[O_MWI].val);
			return OM_EXIT_USAGE;
		}
		*fields |= OM_GW_F_MWI;
	}
	if (o[O_DIVERSION].set) {
		if (strcmp(o[O_DIVERSION].val, "top") && strcmp(o[O_DIVERSION].val, "bottom")) {
			om_cli_error(
			    "invalid --diversion '%s': use top (the last diverting party) or "
			    "bottom (the originally called party)",
			    o[O_DIVERSION].val);
			return OM_EXIT_USAGE;
		}
		in->diversion_bottom = !strcmp(o[O_DIVERSION].val, "bottom");
		*fields |= OM_GW_F_DIVERSION;
	}
	return 0;
}

int om_cmd_gateway(struct om_cli *cli, int argc, char **argv)
{
	struct dc_opt opts[O_N] = {
		[O_ADDRESS] = { "address", true, NULL, false },
		[O_TLS] = { "tls-name", true, NULL, false },
		[O_PORT] = { "port", true, NULL, false },
		[O_TRANSPORT] = { "transport", true, NULL, false },
		[O_DIALPLAN] = { "dialplan", true, NULL, false },
		[O_STATUS] = { "status", true, NULL, false },
		[O_MAX] = { "max-calls", true, NULL, false },
		[O_OUT] = { "outcalls", true, NULL, false },
		[O_MWI] = { "mwi", true, NULL, false },
		[O_DIVERSION] = { "diversion", true, NULL, false },
	};
	struct om_dir_gateway in, out;
	struct om_dir_err e = { "" };
	struct om_db *db = NULL;
	unsigned fields = 0;
	int rc;

	if (om_cli_wants_sub_help(argc, argv, "gateway", usage, sub_help,
	                          sizeof(sub_help) / sizeof(sub_help[0])) ||
	    om_cli_wants_help(argc, argv, usage))
		return OM_EXIT_OK;
	struct dc_args a;
	rc = dc_args_parse(argc, argv, "gateway", "the gateway's NAME", opts, O_N, 0, usage, &a);
	if (rc)
		return rc;
	bool is_new = a.is_new, is_set = a.is_set, is_show = a.is_show, is_list = a.is_list;
	bool is_rm = a.is_rm, dry = a.dry, no_reload = a.no_reload;
	size_t npos = a.pos ? 1 : 0;
	const char *pos[1] = { a.pos };
	memset(&in, 0, sizeof(in));
	if (npos) {
		if (!om_dir_name_valid(pos[0])) {
			om_cli_error(
			    "invalid gateway name '%s': use 1-64 letters, digits, '.', '_' "
			    "or '-', starting with a letter or digit",
			    pos[0]);
			return OM_EXIT_USAGE;
		}
		snprintf(in.name, sizeof(in.name), "%s", pos[0]);
	}
	if ((rc = parse_options(opts, &in, &fields)))
		return rc;
	if (is_new && (!(fields & OM_GW_F_HOSTS) || !(fields & OM_GW_F_DIALPLAN))) {
		om_cli_error("a new gateway needs --address HOST[,HOST...] and --dialplan NAME");
		return OM_EXIT_USAGE;
	}
	if (is_set && !fields) {
		om_cli_error("nothing to change: give at least one option (see --help)");
		return OM_EXIT_USAGE;
	}
	if ((rc = om_cli_store_open(cli, is_new || is_set || is_rm, &db)))
		return rc;
	int flags = dry ? OM_DIR_DRY_RUN : 0;
	if (is_list) {
		rc = list_gws(cli, db);
	} else if (is_show) {
		rc = om_dir_gateway_get(db, in.name, &out, &e);
		if (rc) {
			rc = dc_fail(rc, &e);
		} else if (cli->json) {
			struct om_buf b;
			om_buf_init(&b);
			gw_json(&b, &out);
			printf("%s\n", om_buf_cstr(&b) ? om_buf_cstr(&b) : "null");
			om_buf_free(&b);
		} else {
			gw_text(&out);
		}
	} else {
		if (is_new)
			rc = om_dir_gateway_new(db, &in, fields, flags, &out, &e);
		else if (is_set)
			rc = om_dir_gateway_set(db, in.name, &in, fields, flags, &out, &e);
		else
			rc = om_dir_gateway_remove(db, in.name, flags, &e);
		if (rc) {
			rc = dc_fail(rc, &e);
		} else {
			struct om_buf b;
			om_buf_init(&b);
			if (!is_rm)
				gw_json(&b, &out);
			if (!cli->json) {
				dc_report("gateway", is_rm ? in.name : out.name, &a);
				if (!is_rm)
					gw_text(&out);
			}
			om_db_free(db);
			db = NULL;
			rc = dc_done(cli, is_rm ? NULL : "gateway", dry, no_reload, &b);
			om_buf_free(&b);
		}
	}
	om_db_free(db);
	return rc;
}
