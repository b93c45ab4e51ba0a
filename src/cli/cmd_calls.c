/* cmd_calls.c — `openum calls`: the calls in progress on the running
 * server (control socket), with their gateway, dial plan, security mode,
 * transport, SRTP suite and where the routing sent them. Never keys. */
#include "cli/commands.h"
#include "core/alloc.h"

#include <stdio.h>
#include <string.h>

static const char usage[] =
    "usage: openum calls [--data DIR] [--json]\n"
    "\n"
    "Lists the calls in progress: the gateway and dial plan, the security mode,\n"
    "the transport (tcp or tls) and the media (RTP, or SRTP with its crypto\n"
    "suite), and which mailbox the call is for: the outcome (deposit, subscriber\n"
    "access, ask for the extension, unknown mailbox), the reason (busy,\n"
    "unavailable, unconditional), the caller and the header that decided.\n"
    "Exit 1 when no server runs on the store.\n";

/* The value of "key" in one flat JSON object (strings unescaped). */
static void field(const char *obj, size_t len, const char *key, char *out, size_t outlen)
{
	char pat[64];
	snprintf(pat, sizeof(pat), "\"%s\":", key);
	size_t pl = strlen(pat);
	out[0] = '\0';
	for (size_t i = 0; i + pl <= len; i++) {
		if (memcmp(obj + i, pat, pl))
			continue;
		const char *p = obj + i + pl, *end = obj + len;
		size_t n = 0;
		if (*p == '"') {
			for (p++; p < end && *p != '"' && n + 1 < outlen; p++) {
				if (*p == '\\' && p + 1 < end)
					p++;
				out[n++] = *p;
			}
		} else {
			while (p < end && *p != ',' && *p != '}' && n + 1 < outlen)
				out[n++] = *p++;
		}
		out[n] = '\0';
		return;
	}
}

int om_cmd_calls(struct om_cli *cli, int argc, char **argv)
{
	char *reply = NULL;
	if (om_cli_wants_help(argc, argv, usage))
		return OM_EXIT_OK;
	if (argc > 1) {
		om_cli_error("unexpected argument '%s'\n%s", argv[1], usage);
		return OM_EXIT_USAGE;
	}
	int rc = om_cli_ctl_request(cli, "calls", &reply);
	if (rc)
		return rc;
	if (cli->json) {
		fputs(reply, stdout);
		if (reply[0] && reply[strlen(reply) - 1] != '\n')
			putchar('\n');
		om_free(reply);
		return OM_EXIT_OK;
	}
	/* One object per call in the "calls" array: split on the braces that
	 * are outside strings. */
	const char *p = strstr(reply, "\"calls\":[");
	size_t n = 0;
	if (p) {
		p += 9;
		bool quote = false;
		const char *start = NULL;
		for (; *p && !(!quote && !start && *p == ']'); p++) {
			if (quote) {
				if (*p == '\\' && p[1])
					p++;
				else if (*p == '"')
					quote = false;
				continue;
			}
			if (*p == '"') {
				quote = true;
			} else if (*p == '{') {
				start = p;
			} else if (*p == '}' && start) {
				size_t len = (size_t)(p - start + 1);
				char id[32], gw[80], plan[80], mode[32], tr[8], suite[48],
				    state[24], outcome[32], mb[64], reason[32], by[32], caller[80],
				    anon[8], dur[24];
				field(start, len, "id", id, sizeof(id));
				field(start, len, "gateway", gw, sizeof(gw));
				field(start, len, "dialplan", plan, sizeof(plan));
				field(start, len, "security_mode", mode, sizeof(mode));
				field(start, len, "transport", tr, sizeof(tr));
				field(start, len, "srtp_suite", suite, sizeof(suite));
				field(start, len, "state", state, sizeof(state));
				field(start, len, "outcome", outcome, sizeof(outcome));
				field(start, len, "mailbox", mb, sizeof(mb));
				field(start, len, "reason", reason, sizeof(reason));
				field(start, len, "decided_by", by, sizeof(by));
				field(start, len, "caller", caller, sizeof(caller));
				field(start, len, "anonymous", anon, sizeof(anon));
				field(start, len, "duration_s", dur, sizeof(dur));
				if (!n++)
					printf(
					    "%-5s %-10s %-12s %-10s %-5s %-24s %-10s %-16s %-8s %-12s "
					    "%-18s %-16s %s\n",
					    "ID", "STATE", "GATEWAY", "DIALPLAN", "VIA", "MEDIA",
					    "MODE", "OUTCOME", "MAILBOX", "REASON", "DECIDED BY",
					    "CALLER", "SECONDS");
				printf(
				    "%-5s %-10s %-12s %-10s %-5s %-24s %-10s %-16s %-8s %-12s %-18s "
				    "%-16s %s\n",
				    id, state, gw, plan, tr, suite[0] ? suite : "RTP", mode,
				    outcome, mb[0] ? mb : "-", reason, by,
				    !strcmp(anon, "true") ? "anonymous"
				    : caller[0]           ? caller
				                          : "-",
				    dur);
				start = NULL;
			}
		}
	}
	if (!n)
		printf("no calls in progress\n");
	om_free(reply);
	return OM_EXIT_OK;
}
