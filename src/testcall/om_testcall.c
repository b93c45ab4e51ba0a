/* om_testcall.c — `om-testcall`: one call from the gateway side, for
 * tests and people (RFC 3261 UAC over TCP or mutual TLS). Prints one JSON
 * object describing what happened; exit 0 when the call ran (whatever the
 * server answered), 1 when the connection failed, 2 on bad usage.
 *
 *   om-testcall --server 127.0.0.1 --port 5060 --ruri sip:8000@um.example.com
 *               [--tls --cert F --key F --ca F --tls-name NAME]
 *               [--offer avp|savp|none] [--sdp FILE] [--bye-after MS] ... */
#include "testcall/uac.h"
#include "core/alloc.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char usage[] =
    "usage: om-testcall --server ADDR --port N --ruri URI [options]\n"
    "\n"
    "Places one SIP call from the gateway side and prints what happened as JSON.\n"
    "\n"
    "connection:\n"
    "  --tls --cert F --key F --ca F   mutual TLS with our certificate, the server's\n"
    "  --tls-name NAME                 the name the server's certificate must carry\n"
    "  --bind ADDR                     source address; --domain NAME our host in headers\n"
    "  --listen PORT                   accept the server's connections too\n"
    "call:\n"
    "  --from USER --to URI --header 'Name: value' (repeatable)\n"
    "  --offer avp|savp|none           RTP/AVP, RTP/SAVP with a=crypto, or a delayed offer\n"
    "  --sdp FILE                      send this body as the offer (--content-type T)\n"
    "  --media-port N --media-addr A   where our RTP would be\n"
    "  --session-expires S             ask for session timers\n"
    "  --no-ack                        never ACK the 2xx; --ack-sdp FILE: this answer\n"
    "scenario (in this order, times in ms):\n"
    "  --timeout MS                    wait this long for the final response (10000)\n"
    "  --cancel-after MS               CANCEL the INVITE this long after sending it\n"
    "  --hold-after MS --resume-after MS   re-INVITE sendonly, then sendrecv\n"
    "  --info DIGITS                   one INFO (dtmf-relay) per digit\n"
    "  --bye-after MS                  hang up this long after the answer\n"
    "  --wait-bye MS                   wait this long for the server to hang up\n"
    "  --trace                         every message on stderr\n";

static void on_trace(bool out, const char *msg, size_t len, void *arg)
{
	fprintf(stderr, "%s %zu bytes\n%.*s\n", out ? ">>>" : "<<<", len, (int)len, msg);
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	char *buf = om_malloc(65536 + 1);
	size_t n = buf ? fread(buf, 1, 65536, f) : 0;
	fclose(f);
	if (buf)
		buf[n] = '\0';
	return buf;
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Runs the agent for ms, or until done(c) holds. */
static void run_until(struct om_uac *u, struct om_uac_call *c, int64_t ms,
                      bool (*done)(const struct om_uac_call_info *i))
{
	int64_t end = now_ms() + ms;
	for (;;) {
		struct om_uac_call_info i;
		om_uac_call_info(c, &i);
		if (done && done(&i))
			return;
		int64_t left = end - now_ms();
		if (left <= 0)
			return;
		om_uac_run(u, (int)(left > 100 ? 100 : left));
	}
}

static bool final_seen(const struct om_uac_call_info *i)
{
	return i->state != OM_UAC_CALLING && i->state != OM_UAC_RINGING;
}
static bool ended(const struct om_uac_call_info *i)
{
	return i->state == OM_UAC_ENDED || i->state == OM_UAC_FAILED;
}
static unsigned waited; /* reinvites_done to reach */
static bool reinvite_done(const struct om_uac_call_info *i)
{
	return i->reinvites_done >= waited || ended(i);
}
static bool info_done(const struct om_uac_call_info *i)
{
	return i->info_status != 0 || ended(i);
}
static bool bye_done(const struct om_uac_call_info *i)
{
	return i->bye_status != 0 || i->remote_bye;
}

static void json_str(const char *s)
{
	putchar('"');
	for (; s && *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == '"' || ch == '\\')
			printf("\\%c", ch);
		else if (ch == '\n')
			printf("\\n");
		else if (ch == '\r')
			printf("\\r");
		else if (ch < 0x20)
			printf("\\u%04x", ch);
		else
			putchar(ch);
	}
	putchar('"');
}

static const char *state_name(enum om_uac_state s)
{
	static const char *const n[] = { "calling", "ringing", "confirmed",
		                         "refused", "ended",   "failed" };
	return n[s];
}

int main(int argc, char **argv)
{
	struct om_uac_cfg cfg = { 0 };
	struct om_uac_call_opts o = { .offer = OM_UAC_OFFER_AVP };
	static char extra[16384];
	long timeout = 10000, cancel_after = -1, hold_after = -1, resume_after = -1, bye_after = -1,
	     wait_bye = -1;
	const char *info = NULL;
	enum {
		O_SERVER = 1,
		O_PORT,
		O_TLS,
		O_CERT,
		O_KEY,
		O_CA,
		O_TLSNAME,
		O_BIND,
		O_DOMAIN,
		O_LISTEN,
		O_RURI,
		O_FROM,
		O_TO,
		O_HEADER,
		O_OFFER,
		O_SDP,
		O_CTYPE,
		O_MPORT,
		O_MADDR,
		O_SE,
		O_NOACK,
		O_ACKSDP,
		O_TIMEOUT,
		O_CANCEL,
		O_HOLD,
		O_RESUME,
		O_INFO,
		O_BYE,
		O_WAITBYE,
		O_TRACE,
		O_T1,
		O_HELP
	};
	static const struct option opts[] = {
		{ "server", 1, 0, O_SERVER },
		{ "port", 1, 0, O_PORT },
		{ "tls", 0, 0, O_TLS },
		{ "cert", 1, 0, O_CERT },
		{ "key", 1, 0, O_KEY },
		{ "ca", 1, 0, O_CA },
		{ "tls-name", 1, 0, O_TLSNAME },
		{ "bind", 1, 0, O_BIND },
		{ "domain", 1, 0, O_DOMAIN },
		{ "listen", 1, 0, O_LISTEN },
		{ "ruri", 1, 0, O_RURI },
		{ "from", 1, 0, O_FROM },
		{ "to", 1, 0, O_TO },
		{ "header", 1, 0, O_HEADER },
		{ "offer", 1, 0, O_OFFER },
		{ "sdp", 1, 0, O_SDP },
		{ "content-type", 1, 0, O_CTYPE },
		{ "media-port", 1, 0, O_MPORT },
		{ "media-addr", 1, 0, O_MADDR },
		{ "session-expires", 1, 0, O_SE },
		{ "no-ack", 0, 0, O_NOACK },
		{ "ack-sdp", 1, 0, O_ACKSDP },
		{ "timeout", 1, 0, O_TIMEOUT },
		{ "cancel-after", 1, 0, O_CANCEL },
		{ "hold-after", 1, 0, O_HOLD },
		{ "resume-after", 1, 0, O_RESUME },
		{ "info", 1, 0, O_INFO },
		{ "bye-after", 1, 0, O_BYE },
		{ "wait-bye", 1, 0, O_WAITBYE },
		{ "trace", 0, 0, O_TRACE },
		{ "t1", 1, 0, O_T1 },
		{ "help", 0, 0, O_HELP },
		{ 0, 0, 0, 0 },
	};
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case O_SERVER:
			cfg.server = optarg;
			break;
		case O_PORT:
			cfg.port = (uint16_t)atoi(optarg);
			break;
		case O_TLS:
			cfg.tls = true;
			break;
		case O_CERT:
			cfg.cert = optarg;
			break;
		case O_KEY:
			cfg.key = optarg;
			break;
		case O_CA:
			cfg.ca = optarg;
			break;
		case O_TLSNAME:
			cfg.tls_name = optarg;
			break;
		case O_BIND:
			cfg.bind = optarg;
			break;
		case O_DOMAIN:
			cfg.domain = optarg;
			break;
		case O_LISTEN:
			cfg.listen_port = (uint16_t)atoi(optarg);
			break;
		case O_RURI:
			o.ruri = optarg;
			break;
		case O_FROM:
			o.from_user = optarg;
			break;
		case O_TO:
			o.to = optarg;
			break;
		case O_HEADER:
			if (strlen(extra) + strlen(optarg) + 3 >= sizeof(extra))
				return 2;
			strcat(extra, optarg);
			strcat(extra, "\r\n");
			break;
		case O_OFFER:
			if (!strcmp(optarg, "avp"))
				o.offer = OM_UAC_OFFER_AVP;
			else if (!strcmp(optarg, "savp"))
				o.offer = OM_UAC_OFFER_SAVP;
			else if (!strcmp(optarg, "none"))
				o.offer = OM_UAC_OFFER_NONE;
			else {
				fprintf(stderr, "om-testcall: --offer avp|savp|none\n");
				return 2;
			}
			break;
		case O_SDP:
			o.offer = OM_UAC_OFFER_BODY;
			if (!(o.body = slurp(optarg))) {
				fprintf(stderr, "om-testcall: cannot read %s\n", optarg);
				return 2;
			}
			break;
		case O_CTYPE:
			o.content_type = optarg;
			break;
		case O_MPORT:
			o.media_port = (uint16_t)atoi(optarg);
			break;
		case O_MADDR:
			o.media_addr = optarg;
			break;
		case O_SE:
			o.session_expires = (uint32_t)atoi(optarg);
			break;
		case O_NOACK:
			o.no_ack = true;
			break;
		case O_ACKSDP:
			if (!(o.ack_body = slurp(optarg))) {
				fprintf(stderr, "om-testcall: cannot read %s\n", optarg);
				return 2;
			}
			break;
		case O_TIMEOUT:
			timeout = atol(optarg);
			break;
		case O_CANCEL:
			cancel_after = atol(optarg);
			break;
		case O_HOLD:
			hold_after = atol(optarg);
			break;
		case O_RESUME:
			resume_after = atol(optarg);
			break;
		case O_INFO:
			info = optarg;
			break;
		case O_BYE:
			bye_after = atol(optarg);
			break;
		case O_WAITBYE:
			wait_bye = atol(optarg);
			break;
		case O_TRACE:
			cfg.trace_h = on_trace;
			break;
		case O_T1:
			cfg.t1_ms = (uint32_t)atoi(optarg);
			break;
		case O_HELP:
			fputs(usage, stdout);
			return 0;
		default:
			fputs(usage, stderr);
			return 2;
		}
	}
	if (!cfg.server || !cfg.port || !o.ruri) {
		fputs(usage, stderr);
		return 2;
	}
	if (cfg.tls && !cfg.tls_name)
		cfg.tls_name = cfg.server;
	o.extra = extra[0] ? extra : NULL;

	char err[512];
	struct om_uac *u = NULL;
	int rc = om_uac_new(&cfg, (int)timeout, &u, err, sizeof(err));
	if (rc) {
		printf("{\"error\":");
		json_str(err);
		printf("}\n");
		return 1;
	}
	struct om_uac_call *call = NULL;
	rc = om_uac_call(u, &o, &call);
	if (rc) {
		printf("{\"error\":\"cannot send the INVITE: %s\"}\n", strerror(rc));
		om_uac_free(u);
		return 1;
	}
	if (cancel_after >= 0) {
		run_until(u, call, cancel_after, final_seen);
		om_uac_call_cancel(call);
	}
	run_until(u, call, timeout, final_seen);
	struct om_uac_call_info i;
	om_uac_call_info(call, &i);
	if (i.state == OM_UAC_CONFIRMED) {
		if (hold_after >= 0) {
			run_until(u, call, hold_after, ended);
			waited = i.reinvites_done + 1;
			if (om_uac_call_reinvite(call, OM_SDP_SENDONLY) == 0)
				run_until(u, call, timeout, reinvite_done);
		}
		if (resume_after >= 0) {
			run_until(u, call, resume_after, ended);
			om_uac_call_info(call, &i);
			waited = i.reinvites_done + 1;
			if (om_uac_call_reinvite(call, OM_SDP_SENDRECV) == 0)
				run_until(u, call, timeout, reinvite_done);
		}
		for (const char *d = info; d && *d; d++) {
			if (om_uac_call_info_dtmf(call, *d, 160) == 0)
				run_until(u, call, timeout, info_done);
		}
		if (wait_bye >= 0)
			run_until(u, call, wait_bye, bye_done);
		if (bye_after >= 0) {
			run_until(u, call, bye_after, bye_done);
			om_uac_call_info(call, &i);
			if (!i.remote_bye && om_uac_call_bye(call) == 0)
				run_until(u, call, timeout, bye_done);
		}
	}
	if (o.no_ack && wait_bye >= 0 && i.state != OM_UAC_CONFIRMED)
		run_until(u, call, wait_bye, bye_done);
	/* Let what is in flight arrive (retransmitted 2xx, a late BYE). */
	om_uac_run(u, 50);
	om_uac_call_info(call, &i);
	const struct om_sdp_result *r = i.sdp;
	printf(
	    "{\"status\":%d,\"provisional\":%d,\"state\":\"%s\",\"remote_bye\":%s,"
	    "\"bye_status\":%d,\"reinvite_status\":%d,\"reinvites_done\":%u,\"info_status\":%d,\"reinvites_in\":%u,"
	    "\"twoxx\":%u,\"connected\":%s,\"srtp\":%s,\"suite\":",
	    i.status, i.provisional, state_name(i.state), i.remote_bye ? "true" : "false",
	    i.bye_status, i.reinvite_status, i.reinvites_done, i.info_status, i.reinvites_in,
	    i.twoxx_received, om_uac_connected(u) ? "true" : "false",
	    r && r->srtp ? "true" : "false");
	json_str(r && r->srtp ? om_sdp_suite_name(r->remote_key.suite) : "");
	printf(",\"call_id\":");
	json_str(i.call_id);
	printf(",\"from_tag\":");
	json_str(i.local_tag);
	printf(",\"to_tag\":");
	json_str(i.remote_tag);
	printf(",\"answer_sdp\":");
	json_str(i.answer_sdp);
	printf(",\"response\":");
	json_str(i.response);
	printf("}\n");
	om_uac_free(u);
	om_free((void *)o.body);
	om_free((void *)o.ack_body);
	return 0;
}
