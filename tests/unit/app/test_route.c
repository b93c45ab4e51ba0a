/* test_route.c — which mailbox a call is for (R11), as one table: each
 * header style (RFC 4458 target, History-Info with both meanings of a
 * cause, mp= and parent indices, Diversion top-most and bottom-most,
 * P-Called-Party-ID, the Request-URI), their precedence, malformed entries,
 * numbers with +, spaces, dashes and phone-context, and the caller (PAI,
 * Remote-Party-ID, From, Privacy).
 *
 * The header texts follow the formats vendors publish in their SIP
 * integration guides (Cisco CUCM, Avaya Aura, AudioCodes, Microsoft,
 * 3GPP TS 24.604 CDIV, Asterisk) and the RFCs' own examples, with the
 * numbers and hosts replaced. The dial plan has 4-digit extensions,
 * mailboxes 2001, 2002, 2003, 2005 and 4711, and the pilot 8000 (+1 555 010
 * 8000 in E.164). */
#include "ut.h"
#include "app/route.h"

#include <stdio.h>
#include <string.h>

static bool mailbox(const char *ext, void *arg)
{
	static const char *const have[] = { "2001", "2002", "2003", "2005", "4711" };
	for (size_t i = 0; i < sizeof(have) / sizeof(have[0]); i++)
		if (!strcmp(ext, have[i]))
			return true;
	return false;
}

#define UM   "sip:8000@um.example.com"
#define FROM "\"Alice Smith\" <sip:+15550109999@pbx.example.com;user=phone>;tag=f1"

#define DEP  OM_ROUTE_DEPOSIT
#define SUB  OM_ROUTE_SUBSCRIBER
#define ASK  OM_ROUTE_ASK_EXTENSION
#define UNK  OM_ROUTE_UNKNOWN_MAILBOX
#define BUSY OM_ROUTE_BUSY
#define UNAV OM_ROUTE_UNAVAILABLE
#define UNCO OM_ROUTE_UNCONDITIONAL
#define S_T  OM_ROUTE_SRC_TARGET
#define S_HI OM_ROUTE_SRC_HISTORY_INFO
#define S_D  OM_ROUTE_SRC_DIVERSION
#define S_P  OM_ROUTE_SRC_P_CALLED_PARTY_ID
#define S_R  OM_ROUTE_SRC_REQUEST_URI

struct rcase {
	const char *name;
	const char *ruri; /* NULL: UM */
	const char *from; /* NULL: FROM */
	const char *hdrs;
	bool bottom;
	const char *pilot; /* NULL: "8000" */
	/* expected */
	enum om_route_kind kind;
	const char *mailbox;
	enum om_route_reason reason;
	enum om_route_source source;
	const char *cause;
	size_t nwarn;
};

static const struct rcase cases[] = {
	/* ------------------------------------------- RFC 4458 target */
	{ "rfc4458 voicemail uri, busy",
	  "sip:voicemail@um.example.com;target=sip:+15550102001%40pbx.example.com%3Buser%3Dphone;cause=486",
	  NULL, "", false, NULL, DEP, "2001", BUSY, S_T, "486", 0 },
	{ "rfc4458 no reply", "sip:8000@um.example.com;target=sip:2002%40pbx.example.com;cause=408",
	  NULL, "", false, NULL, DEP, "2002", UNAV, S_T, "408", 0 },
	{ "rfc4458 unconditional",
	  "sip:8000@um.example.com;cause=302;target=sip:2003%40pbx.example.com", NULL, "", false,
	  NULL, DEP, "2003", UNCO, S_T, "302", 0 },
	{ "rfc4458 tel target with separators",
	  "sip:8000@um.example.com;target=tel:+1-555-010-2005;cause=480", NULL, "", false, NULL,
	  DEP, "2005", UNAV, S_T, "480", 0 },
	{ "rfc4458 deflection during alerting",
	  "sip:8000@um.example.com;target=sip:4711%40pbx;cause=487", NULL, "", false, NULL, DEP,
	  "4711", UNAV, S_T, "487", 0 },
	{ "rfc4458 target without mailbox",
	  "sip:8000@um.example.com;target=sip:3999%40pbx;cause=486", NULL, "", false, NULL, UNK,
	  "3999", BUSY, S_T, "486", 0 },
	{ "rfc4458 unusable target skipped, Diversion next",
	  "sip:8000@um.example.com;target=mailto:2001%40pbx;cause=486", NULL,
	  "Diversion: <sip:2002@pbx.example.com>;reason=no-answer\r\n", false, NULL, DEP, "2002",
	  UNAV, S_D, "no-answer", 1 },
	{ "rfc4458 target is the pilot: skipped",
	  "sip:8000@um.example.com;target=sip:8000%40um;cause=302", NULL, "", false, NULL, ASK, "",
	  UNAV, S_R, "", 0 },
	{ "target wins over History-Info and Diversion",
	  "sip:8000@um.example.com;target=sip:2001%40pbx;cause=486", NULL,
	  "History-Info: <sip:2002@pbx?Reason=SIP%3Bcause%3D408>;index=1, <sip:8000@um.example.com>;index=1.1\r\n"
	  "Diversion: <sip:2003@pbx>;reason=no-answer\r\n",
	  false, NULL, DEP, "2001", BUSY, S_T, "486", 0 },

	/* ------------------------------------------- History-Info: Reason (the entry diverted) */
	{ "cucm history-info busy", NULL, NULL,
	  "History-Info: <sip:2001@cucm.example.com?Reason=SIP%3Bcause%3D486%3Btext%3D%22Busy%20Here%22>;index=1,"
	  " <sip:8000@um.example.com>;index=1.1\r\n",
	  false, NULL, DEP, "2001", BUSY, S_HI, "486", 0 },
	{ "avaya history-info no answer, two header lines", NULL, NULL,
	  "History-Info: <sip:2002@avaya.example.com?Reason=SIP%3Bcause%3D408%3Btext%3D%22Request%20Timeout%22>;index=1\r\n"
	  "History-Info: <sip:8000@um.example.com>;index=1.1\r\n",
	  false, NULL, DEP, "2002", UNAV, S_HI, "408", 0 },
	{ "history-info reason unescaped", NULL, NULL,
	  "History-Info: <sip:2003@pbx.example.com?Reason=SIP;cause=480>;index=1, <sip:8000@um.example.com>;index=1.1\r\n",
	  false, NULL, DEP, "2003", UNAV, S_HI, "480", 0 },
	{ "history-info reason lower case", NULL, NULL,
	  "History-Info: <sip:2005@pbx.example.com?reason=sip%3bcause%3d486>;index=1, <sip:8000@um.example.com>;index=1.1\r\n",
	  false, NULL, DEP, "2005", BUSY, S_HI, "486", 0 },
	{ "history-info Q.850 user busy", NULL, NULL,
	  "History-Info: <sip:2001@pbx?Reason=Q.850%3Bcause%3D17>;index=1, <sip:8000@um>;index=1.1\r\n",
	  false, NULL, DEP, "2001", BUSY, S_HI, "17", 0 },
	{ "history-info 302 unconditional", NULL, NULL,
	  "History-Info: <sip:+15550102002@pbx;user=phone?Reason=SIP%3Bcause%3D302>;index=1, <sip:8000@um>;index=1.1\r\n",
	  false, NULL, DEP, "2002", UNCO, S_HI, "302", 0 },
	{ "history-info 600 busy everywhere", NULL, NULL,
	  "History-Info: <sip:2003@pbx?Reason=SIP%3Bcause%3D600>;index=1, <sip:8000@um>;index=1.1\r\n",
	  false, NULL, DEP, "2003", BUSY, S_HI, "600", 0 },
	{ "history-info chain: the last diverting party", NULL, NULL,
	  "History-Info: <sip:2001@pbx?Reason=SIP%3Bcause%3D302>;index=1,"
	  " <sip:2002@pbx?Reason=SIP%3Bcause%3D486>;index=1.1, <sip:8000@um>;index=1.1.1\r\n",
	  false, NULL, DEP, "2002", BUSY, S_HI, "486", 0 },
	{ "index 1.10 is above 1.9", NULL, NULL,
	  "History-Info: <sip:2002@pbx?Reason=SIP%3Bcause%3D408>;index=1.10,"
	  " <sip:2001@pbx?Reason=SIP%3Bcause%3D486>;index=1.9, <sip:8000@um>;index=1.11\r\n",
	  false, NULL, DEP, "2002", UNAV, S_HI, "408", 0 },
	{ "entries out of order are sorted", NULL, NULL,
	  "History-Info: <sip:8000@um>;index=1.1.1, <sip:2003@pbx?Reason=SIP%3Bcause%3D486>;index=1.1,"
	  " <sip:2001@pbx?Reason=SIP%3Bcause%3D302>;index=1\r\n",
	  false, NULL, DEP, "2003", BUSY, S_HI, "486", 0 },

	/* ------------------------------------------- History-Info: cause= (retargeted to the entry) */
	{ "3gpp cdiv: cause on the pilot entry, mp names the diverting user", NULL, NULL,
	  "History-Info: <sip:+15550102001@ims.example.net;user=phone>;index=1,"
	  " <sip:+15550102002@ims.example.net;user=phone?Reason=SIP%3Bcause%3D408>;index=1.1;mp=1,"
	  " <sip:+15550108000@ims.example.net;user=phone;cause=408>;index=1.1.1;mp=1.1\r\n",
	  false, "+15550108000", DEP, "2002", UNAV, S_HI, "408", 0 },
	{ "rfc7044 voicemail: cause entry with mp naming the AOR", NULL, NULL,
	  "History-Info: <sip:2001@example.com>;index=1,"
	  " <sip:2001@192.0.2.5?Reason=SIP%3Bcause%3D408>;index=1.1;rc=1,"
	  " <sip:8000@um.example.com;target=sip:2001%40example.com;cause=408>;index=1.2;mp=1\r\n",
	  false, NULL, DEP, "2001", UNAV, S_HI, "408", 0 },
	{ "cause without mp: the parent index", NULL, NULL,
	  "History-Info: <sip:2003@pbx>;index=1, <sip:8000@um;cause=486>;index=1.1\r\n", false,
	  NULL, DEP, "2003", BUSY, S_HI, "486", 0 },
	{ "cause with mp naming a missing entry: the parent", NULL, NULL,
	  "History-Info: <sip:2005@pbx>;index=1.2, <sip:8000@um;cause=302>;index=1.2.1;mp=1.7\r\n",
	  false, NULL, DEP, "2005", UNCO, S_HI, "302", 0 },
	{ "cause on an entry without parent: itself (the pilot): skipped", NULL, NULL,
	  "History-Info: <sip:8000@um;cause=486>;index=1\r\n", false, NULL, ASK, "", UNAV, S_R, "",
	  0 },
	{ "cause on a non-pilot entry without parent: itself", NULL, NULL,
	  "History-Info: <sip:4711@pbx;cause=480>;index=1\r\n", false, NULL, DEP, "4711", UNAV,
	  S_HI, "480", 0 },
	{ "microsoft: Reason on the pilot entry read as a cause",
	  "sip:+15550108000@um.example.com;user=phone", NULL,
	  "History-Info: <sip:+15550102001@sbc.example.com;user=phone>;index=1;ms-retarget-reason=forwarding,"
	  " <sip:+15550108000@um.example.com;user=phone?Reason=SIP%3Bcause%3D302%3Btext%3D%22Forwarding%22>;index=1.1\r\n",
	  false, "+15550108000", DEP, "2001", UNCO, S_HI, "302", 0 },
	{ "both meanings agree (3gpp, Reason and cause)", NULL, NULL,
	  "History-Info: <sip:2001@pbx>;index=1, <sip:2002@pbx?Reason=SIP%3Bcause%3D486>;index=1.1,"
	  " <sip:8000@um;cause=486>;index=1.1.1;mp=1.1\r\n",
	  false, NULL, DEP, "2002", BUSY, S_HI, "486", 0 },
	{ "the highest entry decides: a cause entry above a Reason entry", NULL, NULL,
	  "History-Info: <sip:2001@pbx?Reason=SIP%3Bcause%3D486>;index=1, <sip:2002@pbx>;index=1.1,"
	  " <sip:8000@um;cause=408>;index=1.1.1\r\n",
	  false, NULL, DEP, "2002", UNAV, S_HI, "408", 0 },
	{ "history-info without any cause decides nothing", NULL, NULL,
	  "History-Info: <sip:2001@pbx>;index=1, <sip:8000@um>;index=1.1\r\n"
	  "Diversion: <sip:2003@pbx>;reason=user-busy\r\n",
	  false, NULL, DEP, "2003", BUSY, S_D, "user-busy", 0 },
	{ "history-info malformed entries skipped, the good one decides", NULL, NULL,
	  "History-Info: <sip:2002@pbx?Reason=SIP%3Bcause%3D486>, <sip:2003@pbx?Reason=SIP%ZZcause%3D486>;index=1.2,"
	  " <sip:2001@pbx?Reason=SIP%3Bcause%3D408>;index=1.1, <sip:8000@um>;index=1..3\r\n",
	  false, NULL, DEP, "2001", UNAV, S_HI, "408", 2 },
	{ "history-info broken line skipped, next line read", NULL, NULL,
	  "History-Info: <sip:2005@pbx?Reason=SIP%3Bcause%3D486>;index=1, \"<sip:x@y>;index=1.1\r\n"
	  "History-Info: <sip:8000@um>;index=1.1\r\n",
	  false, NULL, DEP, "2005", BUSY, S_HI, "486", 1 },
	{ "history-info wins over Diversion", NULL, NULL,
	  "Diversion: <sip:2003@pbx>;reason=no-answer\r\n"
	  "History-Info: <sip:2001@pbx?Reason=SIP%3Bcause%3D486>;index=1, <sip:8000@um>;index=1.1\r\n",
	  false, NULL, DEP, "2001", BUSY, S_HI, "486", 0 },

	/* ------------------------------------------- Diversion (RFC 5806) */
	{ "cucm diversion no-answer", NULL, NULL,
	  "Diversion: \"Bob Jones\" <sip:2002@10.0.0.1>;reason=no-answer;privacy=off;screen=no\r\n",
	  false, NULL, DEP, "2002", UNAV, S_D, "no-answer", 0 },
	{ "avaya diversion user-busy with counter", NULL, NULL,
	  "Diversion: <sip:2001@avaya.example.com>;reason=user-busy;counter=1;privacy=off\r\n",
	  false, NULL, DEP, "2001", BUSY, S_D, "user-busy", 0 },
	{ "audiocodes tel diversion unconditional", NULL, NULL,
	  "Diversion: <tel:+15550102003>;reason=unconditional;screen=no;privacy=off;counter=1\r\n",
	  false, NULL, DEP, "2003", UNCO, S_D, "unconditional", 0 },
	{ "asterisk diversion unavailable", NULL, NULL,
	  "Diversion: <sip:2005@192.0.2.10>;reason=unavailable;counter=1;privacy=off\r\n", false,
	  NULL, DEP, "2005", UNAV, S_D, "unavailable", 0 },
	{ "tel without +", NULL, NULL, "Diversion: <tel:5550102001>;reason=do-not-disturb\r\n",
	  false, NULL, DEP, "2001", UNAV, S_D, "do-not-disturb", 0 },
	{ "quoted reason", NULL, NULL, "Diversion: <sip:2002@pbx>;reason=\"user-busy\"\r\n", false,
	  NULL, DEP, "2002", BUSY, S_D, "user-busy", 0 },
	{ "diversion deflection and out-of-service", NULL, NULL,
	  "Diversion: <sip:2003@pbx>;reason=deflection, <sip:2002@pbx>;reason=out-of-service\r\n",
	  false, NULL, DEP, "2003", UNAV, S_D, "deflection", 0 },
	{ "several in one header: top-most", NULL, NULL,
	  "Diversion: <sip:2001@pbx>;reason=user-busy;counter=1, <sip:2002@pbx>;reason=no-answer;counter=1\r\n",
	  false, NULL, DEP, "2001", BUSY, S_D, "user-busy", 0 },
	{ "several in one header: bottom-most by option", NULL, NULL,
	  "Diversion: <sip:2001@pbx>;reason=user-busy;counter=1, <sip:2002@pbx>;reason=no-answer;counter=1\r\n",
	  true, NULL, DEP, "2002", UNAV, S_D, "no-answer", 0 },
	{ "several headers: top-most", NULL, NULL,
	  "Diversion: <sip:2003@pbx>;reason=no-answer\r\nDiversion: <sip:2001@pbx>;reason=user-busy\r\n",
	  false, NULL, DEP, "2003", UNAV, S_D, "no-answer", 0 },
	{ "several headers: bottom-most", NULL, NULL,
	  "Diversion: <sip:2003@pbx>;reason=no-answer\r\nDiversion: <sip:2001@pbx>;reason=user-busy\r\n",
	  true, NULL, DEP, "2001", BUSY, S_D, "user-busy", 0 },
	{ "a diversion to our pilot is skipped", NULL, NULL,
	  "Diversion: <sip:8000@um.example.com>;reason=unconditional, <sip:2002@pbx>;reason=user-busy\r\n",
	  false, NULL, DEP, "2002", BUSY, S_D, "user-busy", 0 },
	{ "the pilot in E.164 and short form both skipped", NULL, NULL,
	  "Diversion: <tel:+1-555-010-8000>;reason=deflection, <sip:8000@pbx>;reason=deflection,"
	  " <sip:2005@pbx>;reason=no-answer\r\n",
	  false, "+1 555 010 8000", DEP, "2005", UNAV, S_D, "no-answer", 0 },
	{ "only the pilot: nothing decided", NULL, NULL,
	  "Diversion: <sip:8000@pbx>;reason=unconditional\r\n", false, NULL, ASK, "", UNAV, S_R, "",
	  0 },
	{ "broken duplicate Diversion skipped", NULL, NULL,
	  "Diversion: <sip:2001@pbx;reason=user-busy\r\nDiversion: <sip:2002@pbx>;reason=user-busy\r\n",
	  false, NULL, DEP, "2002", BUSY, S_D, "user-busy", 1 },
	{ "a broken entry among good ones", NULL, NULL,
	  "Diversion: <sip:@>;reason=user-busy, <sip:2003@pbx>;reason=no-answer\r\n", false, NULL,
	  DEP, "2003", UNAV, S_D, "no-answer", 1 },
	{ "an alphanumeric diverting user is no number", NULL, NULL,
	  "Diversion: <sip:bob@pbx>;reason=user-busy, <sip:2001@pbx>;reason=no-answer\r\n", false,
	  NULL, DEP, "2001", UNAV, S_D, "no-answer", 1 },
	{ "diversion to a number without mailbox", NULL, NULL,
	  "Diversion: <sip:3999@pbx>;reason=user-busy\r\n", false, NULL, UNK, "3999", BUSY, S_D,
	  "user-busy", 0 },
	{ "phone-context in the user part", NULL, NULL,
	  "Diversion: <sip:2001;phone-context=pbx.example.com@pbx.example.com;user=phone>;reason=no-answer\r\n",
	  false, NULL, DEP, "2001", UNAV, S_D, "no-answer", 0 },
	{ "tel with phone-context and dashes", NULL, NULL,
	  "Diversion: <tel:555-2002;phone-context=+1-555-010>;reason=no-answer\r\n", false, NULL,
	  DEP, "2002", UNAV, S_D, "no-answer", 0 },
	{ "escaped spaces and + in the user", NULL, NULL,
	  "Diversion: <sip:%2B1%20(555)%20010-2003@pbx>;reason=user-busy\r\n", false, NULL, DEP,
	  "2003", BUSY, S_D, "user-busy", 0 },
	{ "a longer extension than the plan: rightmost digits", NULL, NULL,
	  "Diversion: <sip:+49-89-1234-4711@pbx>;reason=no-answer\r\n", false, NULL, DEP, "4711",
	  UNAV, S_D, "no-answer", 0 },
	{ "a reason vendors invent: unavailable", NULL, NULL,
	  "Diversion: <sip:2001@pbx>;reason=time-of-day\r\n", false, NULL, DEP, "2001", UNAV, S_D,
	  "time-of-day", 0 },
	{ "no reason at all", NULL, NULL, "Diversion: <sip:2002@pbx>\r\n", false, NULL, DEP, "2002",
	  UNAV, S_D, "", 0 },

	/* ------------------------------------------- P-Called-Party-ID, Request-URI */
	{ "ims p-called-party-id", "sip:um@um.example.com", NULL,
	  "P-Called-Party-ID: <sip:+15550102001@ims.example.net;user=phone>\r\n", false, NULL, DEP,
	  "2001", UNAV, S_P, "", 0 },
	{ "p-called-party-id before the Request-URI", "sip:2002@um.example.com", NULL,
	  "P-Called-Party-ID: <tel:+15550102003>\r\n", false, NULL, DEP, "2003", UNAV, S_P, "", 0 },
	{ "p-called-party-id naming the pilot: ask", "sip:2002@um.example.com", NULL,
	  "P-Called-Party-ID: <sip:8000@um.example.com>\r\n", false, NULL, ASK, "", UNAV, S_P, "",
	  0 },
	{ "broken p-called-party-id: the Request-URI", "sip:2002@um.example.com", NULL,
	  "P-Called-Party-ID: <sip:2001@x\r\n", false, NULL, DEP, "2002", UNAV, S_R, "", 1 },
	{ "request-uri names the mailbox", "sip:2002@um.example.com", NULL, "", false, NULL, DEP,
	  "2002", UNAV, S_R, "", 0 },
	{ "request-uri with user=phone and +", "sip:+1-555-010-2005@um.example.com;user=phone",
	  NULL, "", false, NULL, DEP, "2005", UNAV, S_R, "", 0 },
	{ "sips request-uri", "sips:2001@um.example.com", NULL, "", false, NULL, DEP, "2001", UNAV,
	  S_R, "", 0 },
	{ "request-uri tel pilot (E.164 suffix)", "tel:+15550108000", NULL, "", false, NULL, ASK,
	  "", UNAV, S_R, "", 0 },
	{ "request-uri unknown number: ask", "sip:3999@um.example.com", NULL, "", false, NULL, ASK,
	  "", UNAV, S_R, "", 0 },
	{ "request-uri by name: the pilot", "sip:voicemail@um.example.com", NULL, "", false, NULL,
	  ASK, "", UNAV, S_R, "", 0 },

	/* ------------------------------------------- subscriber access */
	{ "the pilot from a mailbox's own number", NULL, "<sip:2001@pbx.example.com>;tag=f2", "",
	  false, NULL, SUB, "2001", UNAV, S_R, "", 0 },
	{ "the pilot from a mailbox number in PAI", NULL, NULL,
	  "P-Asserted-Identity: <sip:2003@pbx.example.com>\r\n", false, NULL, SUB, "2003", UNAV,
	  S_R, "", 0 },
	{ "the pilot from a hidden mailbox number: ask", NULL, "<sip:2001@pbx.example.com>;tag=f2",
	  "Privacy: id\r\n", false, NULL, ASK, "", UNAV, S_R, "", 0 },
	{ "the pilot from an outside number ending like a mailbox: ask", NULL,
	  "<sip:+15550102001@pbx>;tag=f2", "", false, NULL, ASK, "", UNAV, S_R, "", 0 },
	{ "a diverted call from a mailbox owner is a deposit", NULL,
	  "<sip:2001@pbx.example.com>;tag=f2", "Diversion: <sip:2002@pbx>;reason=user-busy\r\n",
	  false, NULL, DEP, "2002", BUSY, S_D, "user-busy", 0 },
};

static const char *kind_s(enum om_route_kind k)
{
	return om_route_kind_name(k);
}

static struct om_sip_msg *invite(const struct rcase *c, char *buf, size_t len)
{
	snprintf(buf, len,
	         "INVITE %s SIP/2.0\r\n"
	         "Via: SIP/2.0/TCP pbx.example.com;branch=z9hG4bK-r1\r\n"
	         "From: %s\r\n"
	         "To: <sip:8000@um.example.com>\r\n"
	         "Call-ID: r1@pbx.example.com\r\n"
	         "CSeq: 1 INVITE\r\n"
	         "Contact: <sip:pbx.example.com>\r\n"
	         "%s"
	         "Content-Length: 0\r\n\r\n",
	         c->ruri ? c->ruri : UM, c->from ? c->from : FROM, c->hdrs);
	struct om_sip_msg *m = NULL;
	enum om_sip_reason r;
	if (om_sip_msg_parse(buf, strlen(buf), NULL, &m, &r) != 0)
		UT_FAIL("%s: does not parse: %s", c->name, om_sip_reason_str(r));
	if (om_sip_msg_validate(m, &r) != 0) {
		om_sip_msg_free(m);
		UT_FAIL("%s: does not validate: %s", c->name, om_sip_reason_str(r));
	}
	return m;
}

UT_TEST(route_table)
{
	char buf[8192];
	int failed = 0;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct rcase *c = &cases[i];
		struct om_sip_msg *m = invite(c, buf, sizeof(buf));
		struct om_route_in in = { .invite = m,
			                  .pilot = c->pilot ? c->pilot : "8000",
			                  .digits = 4,
			                  .diversion_bottom = c->bottom,
			                  .mailbox_h = mailbox };
		struct om_route r;
		om_route_decide(&in, &r);
		om_sip_msg_free(m);
		if (r.kind != c->kind || strcmp(r.mailbox, c->mailbox) || r.reason != c->reason ||
		    r.source != c->source || strcmp(r.cause, c->cause) || r.nwarn != c->nwarn ||
		    r.busy_greeting != (c->reason == BUSY)) {
			fprintf(
			    stderr,
			    "  case %zu \"%s\":\n    expected %s %s %s via %s cause \"%s\" "
			    "warn %zu\n    got      %s %s %s via %s cause \"%s\" warn %zu%s%s\n",
			    i, c->name, kind_s(c->kind), c->mailbox,
			    om_route_reason_name(c->reason), om_route_source_name(c->source),
			    c->cause, c->nwarn, kind_s(r.kind), r.mailbox,
			    om_route_reason_name(r.reason), om_route_source_name(r.source), r.cause,
			    r.nwarn, r.nwarn ? " first: " : "", r.nwarn ? r.warn[0] : "");
			failed++;
		}
	}
	if (failed)
		UT_FAIL("%d of %zu routing cases failed", failed, sizeof(cases) / sizeof(cases[0]));
}

/* ------------------------------------------------------------------ */
/* The caller                                                          */

static const struct {
	const char *name;
	const char *from;
	const char *hdrs;
	const char *caller, *caller_name;
	bool anonymous;
	enum om_route_caller_source src;
} callers[] = {
	{ "PAI sip and tel: the first", FROM,
	  "P-Asserted-Identity: \"Carol White\" <sip:+1-555-010-7777@pbx.example.com;user=phone>, <tel:+15550107777>\r\n",
	  "15550107777", "Carol White", false, OM_ROUTE_CALLER_PAI },
	{ "PAI tel only", FROM, "P-Asserted-Identity: <tel:+15550106666>\r\n", "15550106666", "",
	  false, OM_ROUTE_CALLER_PAI },
	{ "PAI with Privacy: id", FROM,
	  "P-Asserted-Identity: <sip:+15550107777@pbx>\r\nPrivacy: id\r\n", "", "", true,
	  OM_ROUTE_CALLER_PAI },
	{ "Privacy: header;critical", FROM, "Privacy: header;critical\r\n", "", "", true,
	  OM_ROUTE_CALLER_FROM },
	{ "Privacy: user", FROM, "Privacy: user\r\n", "", "", true, OM_ROUTE_CALLER_FROM },
	{ "Privacy: none", FROM, "Privacy: none\r\n", "15550109999", "Alice Smith", false,
	  OM_ROUTE_CALLER_FROM },
	{ "broken PAI, From used", FROM, "P-Asserted-Identity: <sip:1@x\r\n", "15550109999",
	  "Alice Smith", false, OM_ROUTE_CALLER_FROM },
	{ "cisco RPID calling", FROM,
	  "Remote-Party-ID: \"Bob\" <sip:2005@cucm.example.com>;party=calling;screen=yes;privacy=off\r\n",
	  "2005", "Bob", false, OM_ROUTE_CALLER_RPID },
	{ "RPID privacy=full", FROM,
	  "Remote-Party-ID: \"Bob\" <sip:2005@cucm>;party=calling;screen=yes;privacy=full\r\n", "",
	  "", true, OM_ROUTE_CALLER_RPID },
	{ "RPID privacy=uri", FROM,
	  "Remote-Party-ID: <sip:2005@cucm>;party=calling;privacy=uri\r\n", "", "", true,
	  OM_ROUTE_CALLER_RPID },
	{ "RPID called party only: From", FROM,
	  "Remote-Party-ID: <sip:2002@cucm>;party=called;screen=no;privacy=off\r\n", "15550109999",
	  "Alice Smith", false, OM_ROUTE_CALLER_FROM },
	{ "PAI before RPID", FROM,
	  "Remote-Party-ID: <sip:2005@cucm>;party=calling\r\nP-Asserted-Identity: <sip:2003@pbx>\r\n",
	  "2003", "", false, OM_ROUTE_CALLER_PAI },
	{ "From anonymous.invalid (RFC 3323)",
	  "\"Anonymous\" <sip:anonymous@anonymous.invalid>;tag=f9", "", "", "", true,
	  OM_ROUTE_CALLER_FROM },
	{ "From user anonymous", "<sip:Anonymous@pbx.example.com>;tag=f9", "", "", "", true,
	  OM_ROUTE_CALLER_FROM },
	{ "anonymous From but PAI (trusted gateway): hidden",
	  "<sip:anonymous@anonymous.invalid>;tag=f9", "P-Asserted-Identity: <sip:2001@pbx>\r\n", "",
	  "", true, OM_ROUTE_CALLER_PAI },
	{ "name user in From", "\"Front \\\"Desk\\\"\" <sip:frontdesk@pbx.example.com>;tag=f9", "",
	  "frontdesk", "Front \"Desk\"", false, OM_ROUTE_CALLER_FROM },
};

UT_TEST(caller_table)
{
	char buf[8192];
	for (size_t i = 0; i < sizeof(callers) / sizeof(callers[0]); i++) {
		struct rcase c = { .name = callers[i].name,
			           .from = callers[i].from,
			           .hdrs = callers[i].hdrs };
		struct om_sip_msg *m = invite(&c, buf, sizeof(buf));
		struct om_route_in in = {
			.invite = m, .pilot = "8000", .digits = 4, .mailbox_h = mailbox
		};
		struct om_route r;
		om_route_decide(&in, &r);
		om_sip_msg_free(m);
		if (strcmp(r.caller, callers[i].caller) ||
		    strcmp(r.caller_name, callers[i].caller_name) ||
		    r.anonymous != callers[i].anonymous || r.caller_source != callers[i].src)
			UT_FAIL("caller case %zu \"%s\": got \"%s\" \"%s\" anon %d via %s", i,
			        callers[i].name, r.caller, r.caller_name, r.anonymous,
			        om_route_caller_source_name(r.caller_source));
	}
}

UT_TEST(number_normalisation)
{
	static const struct {
		const char *in, *out;
	} ok[] = {
		{ "2001", "2001" },
		{ "+15550102001", "15550102001" },
		{ "+1-555-010-2001", "15550102001" },
		{ "(555) 010.2001", "5550102001" },
		{ "%2B1%20555%200102001", "15550102001" },
		{ "2001;phone-context=pbx.example.com", "2001" },
		{ "555-2001;phone-context=+1-555", "5552001" },
		{ "2001;isub=12", "2001" },
	};
	static const char *const bad[] = { "", "alice", "20a1", "+", "1+2", "%2", "--", "%00" };
	char out[64];
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		UT_EQ_INT(0, om_route_number(om_str_c(ok[i].in), out, sizeof(out)));
		UT_EQ_STR(ok[i].out, out);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (om_route_number(om_str_c(bad[i]), out, sizeof(out)) == 0)
			UT_FAIL("\"%s\" accepted as \"%s\"", bad[i], out);
	/* Does not fit: refused, never cut. */
	UT_TRUE(om_route_number(om_str_c("123456789"), out, 5) != 0);
}

/* The routing never fails on what it reads, and bounds the entries it
 * keeps: 200 History-Info entries. */
UT_TEST(route_many_entries_bounded)
{
	static char hi[16384];
	size_t o = 0;
	for (int i = 0; i < 200; i++)
		o += (size_t)snprintf(hi + o, sizeof(hi) - o,
		                      "%s<sip:%d@p?Reason=SIP%%3Bcause%%3D486>;index=1.%d%s",
		                      i % 50 ? "," : "History-Info: ", 2000 + (i % 5), i + 1,
		                      i % 50 == 49 ? "\r\n" : "");
	struct rcase c = { .name = "many", .hdrs = hi };
	static char buf[32768];
	struct om_sip_msg *m = invite(&c, buf, sizeof(buf));
	struct om_route_in in = { .invite = m, .pilot = "8000", .digits = 4, .mailbox_h = mailbox };
	struct om_route r;
	om_route_decide(&in, &r);
	om_sip_msg_free(m);
	UT_EQ_INT(OM_ROUTE_SRC_HISTORY_INFO, r.source);
	UT_EQ_INT(1, r.nwarn);        /* "too many entries" */
	UT_EQ_STR("2001", r.mailbox); /* the highest of the first 32: 1.32 → 2000 + 31 % 5 */
}

UT_MAIN(UT_CASE(route_table), UT_CASE(caller_table), UT_CASE(number_normalisation),
        UT_CASE(route_many_entries_bounded))
