/* sip_parse.c — SIP parser benchmark: messages per CPU-second on one core
 * for a typical gateway INVITE with SDP and for an OPTIONS ping, each
 * parsed, validated and answered (200 built), as the transaction layer
 * will do (RFC 3261 §8.2). Usage: bench_sip_parse [seconds per case]. */
#include "sip/sip.h"

#include "core/str.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char invite[] =
    "INVITE sip:4000@um.example.com;user=phone SIP/2.0\r\n"
    "Via: SIP/2.0/TLS 192.0.2.10:5061;branch=z9hG4bK-524287-1---a1b2c3d4e5f6;rport\r\n"
    "Max-Forwards: 69\r\n"
    "Record-Route: <sip:192.0.2.10:5061;transport=tls;lr>\r\n"
    "Contact: <sip:+15550001000@192.0.2.10:5061;transport=tls>\r\n"
    "To: <sip:4000@um.example.com;user=phone>\r\n"
    "From: \"Alice Caller\" <sip:+15550001000@gw1.example.com;user=phone>;tag=8f2d61a0\r\n"
    "Call-ID: 5f1e2d3c4b5a69788796a5b4c3d2e1f0@192.0.2.10\r\n"
    "CSeq: 102 INVITE\r\n"
    "Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE\r\n"
    "Supported: timer, replaces\r\n"
    "Session-Expires: 1800;refresher=uac\r\n"
    "Diversion: <sip:4001@pbx.example.com>;reason=no-answer;counter=1\r\n"
    "P-Asserted-Identity: \"Alice Caller\" <sip:+15550001000@gw1.example.com>\r\n"
    "User-Agent: ExampleGW/15.1\r\n"
    "Content-Type: application/sdp\r\n"
    "Content-Length: 319\r\n"
    "\r\n"
    "v=0\r\n"
    "o=gw 1623845 1623845 IN IP4 192.0.2.10\r\n"
    "s=SIP Call\r\n"
    "c=IN IP4 192.0.2.10\r\n"
    "t=0 0\r\n"
    "m=audio 40000 RTP/SAVP 0 8 101\r\n"
    "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:d0RmdmcmVCspeEc3QGZiNWpVLFJhQX1cfHAwJSoj|2^20|1:32\r\n"
    "a=rtpmap:0 PCMU/8000\r\n"
    "a=rtpmap:8 PCMA/8000\r\n"
    "a=rtpmap:101 telephone-event/8000\r\n"
    "a=fmtp:101 0-15\r\n"
    "a=ptime:20\r\n";

static const char options[] = "OPTIONS sip:um.example.com:5061;transport=tls SIP/2.0\r\n"
                              "Via: SIP/2.0/TLS 192.0.2.10:5061;branch=z9hG4bK-99-1-77aa;rport\r\n"
                              "Max-Forwards: 70\r\n"
                              "To: <sip:um.example.com:5061>\r\n"
                              "From: <sip:gw1.example.com:5061>;tag=a6c85cf\r\n"
                              "Call-ID: 1-77aa@192.0.2.10\r\n"
                              "CSeq: 1 OPTIONS\r\n"
                              "Contact: <sip:192.0.2.10:5061;transport=tls>\r\n"
                              "Accept: application/sdp\r\n"
                              "Content-Length: 0\r\n"
                              "\r\n";

static const char answer[] = "v=0\r\n"
                             "o=openum 1 1 IN IP4 192.0.2.1\r\n"
                             "s=-\r\n"
                             "c=IN IP4 192.0.2.1\r\n"
                             "t=0 0\r\n"
                             "m=audio 20000 RTP/SAVP 0 101\r\n"
                             "a=rtpmap:0 PCMU/8000\r\n"
                             "a=rtpmap:101 telephone-event/8000\r\n";

static double cpu_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* One message: parse, validate, read what the UAS reads, build a 200. */
static int one(const char *msg, size_t len, struct om_buf *out, bool sdp)
{
	struct om_sip_msg *m;
	enum om_sip_reason r;
	struct om_sip_via v;
	struct om_sip_addr a;
	static const char *const sup[] = { "timer", "replaces", NULL };
	if (om_sip_msg_parse(msg, len, NULL, &m, &r) != 0)
		return -1;
	int err = om_sip_msg_validate(m, &r);
	err |= om_sip_msg_via_top(m, &v);
	err |= om_sip_msg_from(m, &a);
	if (om_sip_msg_unsupported(m, sup, true, out) != 0)
		err = -1;
	struct om_sip_resp_opts o = { .to_tag = "7e1f0c2a",
		                      .extra =
		                          "Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, INFO\r\n" };
	if (sdp) {
		o.content_type = "application/sdp";
		o.body = (struct om_str){ answer, sizeof(answer) - 1 };
	}
	out->len = 0;
	err |= om_sip_response_build(m, 200, NULL, &o, out);
	om_sip_msg_free(m);
	return err;
}

static void run(const char *name, const char *msg, double secs, bool sdp)
{
	struct om_buf out;
	size_t len = strlen(msg);
	unsigned long n = 0;
	om_buf_init(&out);
	double t0 = cpu_now(), t;
	do {
		for (int i = 0; i < 1000; i++) {
			if (one(msg, len, &out, sdp) != 0) {
				fprintf(stderr, "%s: failed\n", name);
				exit(1);
			}
		}
		n += 1000;
		t = cpu_now() - t0;
	} while (t < secs);
	printf("%-8s %5zu bytes  %10.0f msg/s  %7.0f ns/msg  (%lu in %.2f CPU s)\n", name, len,
	       (double)n / t, t * 1e9 / (double)n, n, t);
	om_buf_free(&out);
}

int main(int argc, char **argv)
{
	double secs = argc > 1 ? atof(argv[1]) : 3.0;
	run("INVITE", invite, secs, true);
	run("OPTIONS", options, secs, false);
	return 0;
}
