/* cmd_server.c — `openum server set|show`: this server's dial plans (R9:
 * any SIPSecured/Secured plan means a secured start), its pinned
 * certificate (R7) and its status (nonewcalls drains). */
#include "core/config.h"
#include "core/fqdn.h"
#include "cert/cert.h"
#include "cli/commands.h"
#include "cli/dircmd.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define SRV_OPTS                                                                                 \
	"--dialplans  the dial plans this server answers for; any SIPSecured or Secured\n"       \
	"             one makes it start secured (TLS on 5061)\n"                                \
	"--certificate pin the certificate to use (SHA-1 or SHA-256 thumbprint, see\n"           \
	"             `openum cert list`), or auto: the automatic order (CA-issued before\n"     \
	"             self-signed, the longest validity first; `openum cert select` shows it)\n" \
	"--status     nonewcalls drains: no new calls, calls in progress finish\n"               \
	"--fqdn       this server's name (in its certificate and Contact headers); empty:\n"     \
	"             fqdn in openum.conf, else the host name\n"

static const char usage[] =
    "usage: openum server set [--dialplans A,B|none] [--certificate THUMBPRINT|auto]\n"
    "                         [--status enabled|nonewcalls] [--fqdn NAME]\n"
    "                         [--dry-run] [--no-reload]\n"
    "       openum server show\n"
    "\n" SRV_OPTS;

static const struct om_cli_sub_help sub_help[] = {
	{ "set", "Changes this server's settings (only the options given); a running\n"
	         "server reloads unless --no-reload.\n\n" SRV_OPTS },
	{ "show", "Shows this server's settings: the fqdn in effect and where it comes from,\n"
	          "the pinned certificate (or auto), the status, the dial plans and the start\n"
	          "mode they give.\n" },
};

static void srv_json(struct om_buf *b, const struct om_dir_server *s, size_t nplans, bool sec)
{
	om_buf_adds(b, "{");
	dc_json_kv_str(b, "fqdn", s->fqdn, false);
	dc_json_kv_str(b, "certificate", s->pinned_certificate[0] ? s->pinned_certificate : "auto",
	               true);
	dc_json_kv_str(b, "status", om_dir_srv_status_name(s->status), true);
	om_buf_adds(b, ",\"dialplans\":[");
	for (size_t i = 0; i < s->ndialplans; i++) {
		if (i)
			om_buf_adds(b, ",");
		om_buf_json_str(b, s->dialplans[i]);
	}
	om_buf_printf(b, "],\"secured_start\":%s}", nplans ? (sec ? "true" : "false") : "null");
}

/* The fqdn in effect when the directory sets none: openum.conf's, else the
 * host name (what `openum serve` uses, core/config.c). */
static void fqdn_text(const struct om_cli *cli, const struct om_dir_server *s)
{
	struct om_config *cfg = NULL;
	char why[512];
	if (s->fqdn[0]) {
		printf("fqdn:         %s\n", s->fqdn);
		return;
	}
	if (om_config_load(cli->config_path, !cli->config_explicit, &cfg, why, sizeof(why))) {
		printf("fqdn:         (no --fqdn set; %s cannot be read: %s)\n", cli->config_path,
		       why);
		return;
	}
	if (cfg->fqdn_set)
		printf("fqdn:         (no --fqdn set: fqdn = %s from %s)\n", cfg->fqdn,
		       cli->config_path);
	else
		printf("fqdn:         (no --fqdn set, and no fqdn in %s: the host name, %s)\n",
		       cli->config_path, cfg->fqdn);
	om_config_free(cfg);
}

static void srv_text(const struct om_cli *cli, const struct om_dir_server *s, size_t nplans,
                     bool sec)
{
	fqdn_text(cli, s);
	printf("certificate:  %s\n", s->pinned_certificate[0] ? s->pinned_certificate : "auto");
	printf("status:       %s\n", om_dir_srv_status_name(s->status));
	printf("dial plans:   ");
	for (size_t i = 0; i < s->ndialplans; i++)
		printf("%s%s", i ? ", " : "", s->dialplans[i]);
	printf("%s\n", s->ndialplans ? "" : "(none)");
	printf("start mode:   %s\n", !nplans ? "from start_secured in openum.conf (no dial plan)"
	                             : sec   ? "secured (a SIPSecured or Secured dial plan)"
	                                     : "unsecured (every dial plan is Unsecured)");
}

/* A pin must name exactly one personal certificate that has its key: a
 * typo must not leave the server with no certificate at its next start.
 * The prefix given is resolved to the full SHA-1 thumbprint, which is what
 * is kept: a certificate imported later can never make the pin ambiguous
 * (issue 18). */
static int check_pin(struct om_cli *cli, char *id, size_t idlen)
{
	struct om_cert_store *cs = NULL;
	const struct om_cert *c = NULL;
	int rc = om_cert_store_open(cli->data_dir, &cs);
	if (rc) {
		om_cli_error("cannot read the certificate stores of %s: %s", cli->data_dir,
		             strerror(rc));
		return OM_EXIT_FAIL;
	}
	rc = om_cert_store_find_personal(cs, id, &c);
	if (rc == ENOENT)
		om_cli_error("no certificate %s in the personal store; `openum cert list` shows "
		             "them (import or create it first)",
		             id);
	else if (rc == EEXIST)
		om_cli_error("%s matches several certificates; give more of the thumbprint", id);
	else if (rc)
		om_cli_error("invalid --certificate '%s'", id);
	else if (!c->key)
		om_cli_error("certificate %s has no private key here; it cannot be used by this "
		             "server",
		             id);
	else if (c->is_ca)
		om_cli_error("certificate %s is a CA certificate: it cannot be this server's", id);
	int bad = rc || !c->key || c->is_ca;
	if (!bad)
		snprintf(id, idlen, "%s", c->sha1);
	om_cert_store_free(cs);
	return bad ? OM_EXIT_FAIL : OM_EXIT_OK;
}

static int parse_plans(const char *v, struct om_dir_server *s)
{
	char buf[8192], *save = NULL;
	s->ndialplans = 0;
	if (!strcmp(v, "none") || !*v)
		return 0;
	if (snprintf(buf, sizeof(buf), "%s", v) >= (int)sizeof(buf)) {
		om_cli_error("--dialplans is too long");
		return OM_EXIT_USAGE;
	}
	for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		if (!om_dir_name_valid(t)) {
			om_cli_error("invalid dial plan name '%s' in --dialplans", t);
			return OM_EXIT_USAGE;
		}
		if (s->ndialplans == OM_DIR_PLANS_MAX) {
			om_cli_error("too many dial plans: at most %d", OM_DIR_PLANS_MAX);
			return OM_EXIT_USAGE;
		}
		snprintf(s->dialplans[s->ndialplans++], sizeof(s->dialplans[0]), "%s", t);
	}
	return 0;
}

int om_cmd_server(struct om_cli *cli, int argc, char **argv)
{
	enum { O_PLANS, O_CERT, O_STATUS, O_FQDN, O_N };
	struct dc_opt opts[O_N] = {
		[O_PLANS] = { "dialplans", true, NULL, false },
		[O_CERT] = { "certificate", true, NULL, false },
		[O_STATUS] = { "status", true, NULL, false },
		[O_FQDN] = { "fqdn", true, NULL, false },
	};
	const char *pos[1];
	size_t npos = 0, nplans = 0;
	bool dry = false, no_reload = false, sec = false;
	static struct om_dir_server in, out; /* ~4 KB each */
	struct om_dir_err e = { "" };
	struct om_db *db = NULL;
	unsigned fields = 0;
	int rc;

	if (om_cli_wants_sub_help(argc, argv, "server", usage, sub_help,
	                          sizeof(sub_help) / sizeof(sub_help[0])) ||
	    om_cli_wants_help(argc, argv, usage))
		return OM_EXIT_OK;
	if (argc < 2 || (strcmp(argv[1], "set") && strcmp(argv[1], "show"))) {
		om_cli_error("use `openum server set ...` or `openum server show`\n%s", usage);
		return OM_EXIT_USAGE;
	}
	bool is_set = !strcmp(argv[1], "set");
	rc = dc_parse(argc, argv, 2, opts, is_set ? O_N : 0, pos, 0, &npos, is_set ? &dry : NULL,
	              is_set ? &no_reload : NULL, usage);
	if (rc)
		return rc;
	memset(&in, 0, sizeof(in));
	if (opts[O_PLANS].set) {
		if ((rc = parse_plans(opts[O_PLANS].val, &in)))
			return rc;
		fields |= OM_SRV_F_DIALPLANS;
	}
	if (opts[O_CERT].set) {
		const char *v = opts[O_CERT].val;
		if (!strcmp(v, "auto"))
			v = "";
		else if (!om_dir_thumbprint_valid(v)) {
			om_cli_error("invalid --certificate '%s': give a certificate's SHA-1 or "
			             "SHA-256 thumbprint in hex (see `openum cert list`) or auto",
			             v);
			return OM_EXIT_USAGE;
		}
		snprintf(in.pinned_certificate, sizeof(in.pinned_certificate), "%s", v);
		fields |= OM_SRV_F_CERT;
	}
	if (opts[O_STATUS].set) {
		if (om_dir_srv_status_parse(opts[O_STATUS].val, &in.status)) {
			om_cli_error("invalid --status '%s': use enabled or nonewcalls",
			             opts[O_STATUS].val);
			return OM_EXIT_USAGE;
		}
		fields |= OM_SRV_F_STATUS;
	}
	if (opts[O_FQDN].set) {
		const char *v = opts[O_FQDN].val;
		char why[160];
		if (*v && om_fqdn_check(v, OM_FQDN_MULTI_LABEL, why, sizeof(why))) {
			om_cli_error("invalid --fqdn '%s': %s. Give this server's fully qualified "
			             "domain name",
			             v, why);
			return OM_EXIT_USAGE;
		}
		snprintf(in.fqdn, sizeof(in.fqdn), "%s", v);
		fields |= OM_SRV_F_FQDN;
	}
	if (is_set && !fields) {
		om_cli_error(
		    "nothing to change: give --dialplans, --certificate, --status or --fqdn");
		return OM_EXIT_USAGE;
	}
	if ((rc = om_cli_store_open(cli, is_set, &db)))
		return rc;
	if ((fields & OM_SRV_F_CERT) && in.pinned_certificate[0] &&
	    (rc = check_pin(cli, in.pinned_certificate, sizeof(in.pinned_certificate))))
		goto out;
	rc = is_set ? om_dir_server_set(db, &in, fields, dry ? OM_DIR_DRY_RUN : 0, &out, &e)
	            : om_dir_server_get(db, &out, &e);
	if (rc) {
		rc = dc_fail(rc, &e);
		goto out;
	}
	/* R9: the start mode these plans give (also for a dry run) */
	for (size_t i = 0; i < out.ndialplans; i++) {
		struct om_dir_dialplan p;
		struct om_dir_err e2;
		if (om_dir_dialplan_get(db, out.dialplans[i], &p, &e2) == 0) {
			nplans++;
			sec = sec || p.security != OM_SEC_UNSECURED;
		}
	}
	struct om_buf b;
	om_buf_init(&b);
	srv_json(&b, &out, nplans, sec);
	if (!is_set) {
		if (cli->json)
			printf("%s\n", om_buf_cstr(&b) ? om_buf_cstr(&b) : "null");
		else
			srv_text(cli, &out, nplans, sec);
		om_buf_free(&b);
		goto out;
	}
	if (!cli->json) {
		printf("server settings %s\n", dry ? "would be changed" : "changed");
		srv_text(cli, &out, nplans, sec);
	}
	om_db_free(db);
	db = NULL;
	rc = dc_done(cli, "server", dry, no_reload, &b);
	om_buf_free(&b);
out:
	om_db_free(db);
	return rc;
}
