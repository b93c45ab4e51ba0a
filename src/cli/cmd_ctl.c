/* cmd_ctl.c — `openum status` and `openum reload`: requests to the running
 * server over DATA/control.sock. */
#include "cli/commands.h"
#include "core/alloc.h"
#include "core/ctl.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static const char status_usage[] =
    "usage: openum status [--data DIR] [--json]\n"
    "\n"
    "Shows the running server's state, start mode (secured or unsecured and\n"
    "why), listeners, the certificate in use, configuration file, reload\n"
    "counters, and the delivery of voice messages (queued, retrying, free\n"
    "space on the spool's file system). Exit 1 when no server runs on the store.\n";

static const char reload_usage[] =
    "usage: openum reload [--data DIR] [--json]\n"
    "\n"
    "Makes the running server re-read openum.conf and the directory. A bad\n"
    "configuration is rejected with the reason (event 1181); the running one\n"
    "stays. Exit 1 when rejected or when no server runs.\n";

/* Minimal reading of the flat JSON the server sends. */
static void field(const char *json, const char *key, char *out, size_t len)
{
	char pat[64];
	snprintf(pat, sizeof(pat), "\"%s\":", key);
	const char *p = strstr(json, pat);
	out[0] = '\0';
	if (!p)
		return;
	p += strlen(pat);
	size_t n = 0;
	if (*p == '"') {
		for (p++; *p && *p != '"' && n + 1 < len; p++) {
			if (*p == '\\' && p[1])
				p++;
			out[n++] = *p;
		}
	} else {
		while (*p && *p != ',' && *p != '}' && n + 1 < len)
			out[n++] = *p++;
	}
	out[n] = '\0';
}

int om_cli_ctl_request(struct om_cli *cli, const char *cmd, char **reply)
{
	char path[4096];
	int rc = om_cli_store_check(cli, false);
	if (rc)
		return rc;
	om_cli_path(cli, "control.sock", path, sizeof(path));
	rc = om_ctl_request(path, cmd, 15000, reply);
	if (rc == ENOENT || rc == ECONNREFUSED) {
		om_cli_error("no server is running on %s (start it with `openum serve --data %s`)",
		             cli->data_dir, cli->data_dir);
		return OM_EXIT_FAIL;
	}
	if (rc) {
		om_cli_error("control socket %s: %s", path,
		             rc == ECONNRESET ? "the server refused the request (run as the "
		                                "server's user or root)"
		                              : strerror(rc));
		return OM_EXIT_FAIL;
	}
	return OM_EXIT_OK;
}

int om_cmd_status(struct om_cli *cli, int argc, char **argv)
{
	char *reply = NULL;
	if (om_cli_wants_help(argc, argv, status_usage))
		return OM_EXIT_OK;
	if (argc > 1) {
		om_cli_error("unexpected argument '%s'\n%s", argv[1], status_usage);
		return OM_EXIT_USAGE;
	}
	int rc = om_cli_ctl_request(cli, "status", &reply);
	if (rc)
		return rc;
	if (cli->json) {
		fputs(reply, stdout);
	} else {
		static const char *const keys[] = { "state",
			                            "pid",
			                            "version",
			                            "mode",
			                            "mode_reason",
			                            "fqdn",
			                            "sip_tcp",
			                            "sip_tls",
			                            "config",
			                            "started",
			                            "uptime_s",
			                            "reloads",
			                            "reloads_rejected",
			                            "generation",
			                            "dialplans",
			                            "gateways",
			                            "mailboxes",
			                            "tcp_connections",
			                            "messages",
			                            "answered",
			                            "untrusted_dropped",
			                            "bad_requests",
			                            "refused_mode" };
		for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
			char v[512];
			field(reply, keys[i], v, sizeof(v));
			if (v[0])
				printf("%-17s %s\n", keys[i], v);
		}
		/* The certificate in use (secured): what gateways are shown. */
		const char *cert = strstr(reply, "\"certificate\":{");
		if (cert) {
			char sha1[64], subj[512], left[32], na[64], kind[32];
			field(cert, "sha1", sha1, sizeof(sha1));
			field(cert, "subject", subj, sizeof(subj));
			field(cert, "days_left", left, sizeof(left));
			field(cert, "not_after", na, sizeof(na));
			field(cert, "kind", kind, sizeof(kind));
			printf("%-17s %s (SHA-1), %s days left (not after %s)\n", "certificate",
			       sha1, left, na);
			printf("%-17s %s, %s\n", "cert subject", subj, kind);
		}
		/* The trusted certificate that expires first (root or
		 * intermediate): the gateways it vouches for go with it. */
		const char *te = strstr(reply, "\"trusted_expiry\":{");
		if (te) {
			char subj[512], left[32], na[64], kind[32];
			field(te, "subject", subj, sizeof(subj));
			field(te, "days_left", left, sizeof(left));
			field(te, "not_after", na, sizeof(na));
			field(te, "kind", kind, sizeof(kind));
			if (left[0] == '-')
				printf("%-17s %s (%s), expired %s days ago (not after %s)\n",
				       "trusted next", subj, kind, left + 1, na);
			else
				printf("%-17s %s (%s), %s days left (not after %s)\n",
				       "trusted next", subj, kind, left, na);
		}
		/* voice message delivery: an object of the reply */
		const char *dl = strstr(reply, "\"delivery\":{");
		if (dl) {
			char q[24], run[24], retry[24], done[24], rec[24], mb[24], room[8];
			field(dl, "queued", q, sizeof(q));
			field(dl, "running", run, sizeof(run));
			field(dl, "retrying", retry, sizeof(retry));
			field(dl, "delivered", done, sizeof(done));
			field(dl, "recovered", rec, sizeof(rec));
			field(dl, "spool_free_mb", mb, sizeof(mb));
			field(dl, "room", room, sizeof(room));
			printf("%-17s queued %s, running %s, retrying %s, delivered %s (recovered "
			       "%s)\n",
			       "delivery", q, run, retry, done, rec);
			printf("%-17s %s MB free%s\n", "spool", mb,
			       strcmp(room, "true") ? ": below min_free_mb, new calls are refused"
			                            : "");
		}
	}
	om_free(reply);
	return OM_EXIT_OK;
}

int om_cmd_reload(struct om_cli *cli, int argc, char **argv)
{
	char *reply = NULL, v[8192];
	if (om_cli_wants_help(argc, argv, reload_usage))
		return OM_EXIT_OK;
	if (argc > 1) {
		om_cli_error("unexpected argument '%s'\n%s", argv[1], reload_usage);
		return OM_EXIT_USAGE;
	}
	int rc = om_cli_ctl_request(cli, "reload", &reply);
	if (rc)
		return rc;
	int ok = strstr(reply, "\"ok\":true") != NULL;
	if (cli->json) {
		fputs(reply, stdout);
	} else if (ok) {
		field(reply, "changes", v, sizeof(v));
		printf("reloaded (changes: %s)\n", v);
	} else {
		field(reply, "error", v, sizeof(v));
		om_cli_error("reload rejected, the running configuration stays: %s", v);
	}
	om_free(reply);
	return ok ? OM_EXIT_OK : OM_EXIT_FAIL;
}
