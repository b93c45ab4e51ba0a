/* test_sip_dialog.c — dialogs (RFC 3261 §12: route sets, loose and strict
 * routing, CSeq rules, target refresh; §14 glare), session timers (RFC
 * 4028 §9, §10) and DTMF bodies of INFO, table-driven, with an
 * out-of-memory sweep. */
#include "ut.h"
#include "sip/sip.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static struct om_sip_msg *parse(const char *s)
{
	struct om_sip_msg *m = NULL;
	enum om_sip_reason r;
	if (om_sip_msg_parse(s, strlen(s), NULL, &m, &r) != 0)
		UT_FAIL("does not parse: %s", om_sip_reason_str(r));
	return m;
}

static const struct om_sip_dest GW1 = { .conn_id = 7, .peer_id = 1, .reliable = true };
static const struct om_sip_dest GW1_NEWCONN = { .conn_id = 8, .peer_id = 1, .reliable = true };
static const struct om_sip_dest GW2 = { .conn_id = 9, .peer_id = 2, .reliable = true };

/* An INVITE through a proxy that changes transport and so records two
 * routes for itself (Kamailio's double Record-Route, r2=on). */
static const char INVITE_RR[] = "INVITE sips:8000@um.example.com SIP/2.0\r\n"
                                "Via: SIP/2.0/TLS 192.0.2.10:5061;branch=z9hG4bK-p1\r\n"
                                "Via: SIP/2.0/TCP 192.0.2.20:5060;branch=z9hG4bK-ua1\r\n"
                                "Max-Forwards: 69\r\n"
                                "Record-Route: <sip:192.0.2.10:5061;transport=tls;r2=on;lr>\r\n"
                                "Record-Route: <sip:192.0.2.10;transport=tcp;r2=on;lr>\r\n"
                                "From: \"Alice\" <sip:2001@pbx.example.net>;tag=a1\r\n"
                                "To: <sips:8000@um.example.com>\r\n"
                                "Call-ID: c1@192.0.2.20\r\n"
                                "CSeq: 10 INVITE\r\n"
                                "Contact: <sip:2001@192.0.2.20:5060;transport=tcp>\r\n"
                                "Content-Length: 0\r\n\r\n";

static struct om_sip_dialog *uas_dialog(const char *invite)
{
	struct om_sip_msg *m = parse(invite);
	struct om_sip_dialog *d = NULL;
	int rc =
	    om_sip_dialog_uas_new(m, &GW1, "um1", "sips:um.example.com:5061;transport=tls", &d);
	om_sip_msg_free(m);
	if (rc)
		UT_FAIL("uas_new: %d", rc);
	return d;
}

static const struct om_sip_dialog_req BYE_OPTS = { .branch = "z9hG4bK-bye1",
	                                           .via_transport = "TLS",
	                                           .via_sent_by = "um.example.com:5061" };

UT_TEST(uas_dialog_fields)
{
	struct om_sip_dialog *d = uas_dialog(INVITE_RR);
	UT_EQ_STR("c1@192.0.2.20", d->call_id);
	UT_EQ_STR("um1", d->local_tag);
	UT_EQ_STR("a1", d->remote_tag);
	UT_EQ_STR("<sips:8000@um.example.com>", d->local_uri);
	UT_EQ_STR("\"Alice\" <sip:2001@pbx.example.net>", d->remote_uri);
	UT_EQ_STR("sip:2001@192.0.2.20:5060;transport=tcp", d->remote_target);
	UT_EQ_INT(2, d->nroute);
	UT_EQ_STR("sip:192.0.2.10:5061;transport=tls;r2=on;lr", d->route[0]);
	UT_EQ_STR("sip:192.0.2.10;transport=tcp;r2=on;lr", d->route[1]);
	UT_TRUE(d->secure);
	UT_TRUE(d->uas);
	UT_EQ_INT(10, d->remote_cseq);
	om_sip_dialog_free(d);
}

/* §12.2.1.1 loose routing: Request-URI = remote target, Route = the route
 * set in order (both entries of a double Record-Route). */
UT_TEST(bye_loose_route_double_record_route)
{
	struct om_sip_dialog *d = uas_dialog(INVITE_RR);
	struct om_buf b;
	om_buf_init(&b);
	UT_EQ_INT(0, om_sip_dialog_request(d, OM_SIP_METHOD_BYE, &BYE_OPTS, &b));
	const char *s = om_buf_cstr(&b);
	UT_TRUE(!strncmp(s, "BYE sip:2001@192.0.2.20:5060;transport=tcp SIP/2.0\r\n", 52));
	const char *r1 = strstr(s, "Route: <sip:192.0.2.10:5061;transport=tls;r2=on;lr>\r\n");
	const char *r2 = strstr(s, "Route: <sip:192.0.2.10;transport=tcp;r2=on;lr>\r\n");
	UT_TRUE(r1 && r2 && r1 < r2);
	UT_TRUE(strstr(s, "From: <sips:8000@um.example.com>;tag=um1\r\n") != NULL);
	UT_TRUE(strstr(s, "To: \"Alice\" <sip:2001@pbx.example.net>;tag=a1\r\n") != NULL);
	UT_TRUE(strstr(s, "CSeq: 1 BYE\r\n") != NULL);
	UT_TRUE(strstr(s, "Call-ID: c1@192.0.2.20\r\n") != NULL);
	UT_TRUE(strstr(s, "Contact:") == NULL); /* BYE is no target refresh */
	/* It parses and validates as a request. */
	struct om_sip_msg *m = parse(s);
	enum om_sip_reason r;
	UT_EQ_INT(0, om_sip_msg_validate(m, &r));
	om_sip_msg_free(m);
	/* The next request takes the next CSeq; a re-INVITE carries Contact. */
	b.len = 0;
	UT_EQ_INT(0, om_sip_dialog_request(d, OM_SIP_METHOD_INVITE, &BYE_OPTS, &b));
	UT_TRUE(strstr(om_buf_cstr(&b), "CSeq: 2 INVITE\r\n") != NULL);
	UT_TRUE(strstr(om_buf_cstr(&b), "Contact: <sips:um.example.com:5061;transport=tls>\r\n"));
	/* ACK takes the CSeq it is given, and needs one. */
	b.len = 0;
	struct om_sip_dialog_req ack = BYE_OPTS;
	UT_EQ_INT(EINVAL, om_sip_dialog_request(d, OM_SIP_METHOD_ACK, &ack, &b));
	ack.cseq = 2;
	UT_EQ_INT(0, om_sip_dialog_request(d, OM_SIP_METHOD_ACK, &ack, &b));
	UT_TRUE(strstr(om_buf_cstr(&b), "CSeq: 2 ACK\r\n") != NULL);
	UT_EQ_INT(2, d->local_cseq);
	om_buf_free(&b);
	om_sip_dialog_free(d);
}

/* A strict router (no ;lr): it becomes the Request-URI and the remote
 * target the last Route. */
UT_TEST(bye_strict_route)
{
	static const char inv[] = "INVITE sip:8000@um.example.com SIP/2.0\r\n"
	                          "Via: SIP/2.0/TCP 192.0.2.10;branch=z9hG4bK-s1\r\n"
	                          "Record-Route: <sip:strict.example.net;maddr=192.0.2.10>\r\n"
	                          "Record-Route: <sip:p2.example.net;lr>\r\n"
	                          "From: <sip:2001@pbx.example.net>;tag=a1\r\n"
	                          "To: <sip:8000@um.example.com>\r\n"
	                          "Call-ID: c2\r\nCSeq: 1 INVITE\r\n"
	                          "Contact: <sip:2001@192.0.2.20>\r\nContent-Length: 0\r\n\r\n";
	struct om_sip_dialog *d = uas_dialog(inv);
	struct om_buf b;
	om_buf_init(&b);
	UT_EQ_INT(0, om_sip_dialog_request(d, OM_SIP_METHOD_BYE, &BYE_OPTS, &b));
	const char *s = om_buf_cstr(&b);
	UT_TRUE(!strncmp(s, "BYE sip:strict.example.net;maddr=192.0.2.10 SIP/2.0\r\n", 53));
	const char *r1 = strstr(s, "Route: <sip:p2.example.net;lr>\r\n");
	const char *r2 = strstr(s, "Route: <sip:2001@192.0.2.20>\r\n");
	UT_TRUE(r1 && r2 && r1 < r2);
	UT_TRUE(strstr(s, "Route: <sip:strict") == NULL);
	UT_TRUE(!d->secure);
	om_buf_free(&b);
	om_sip_dialog_free(d);
}

UT_TEST(no_route_set_ruri_is_contact)
{
	static const char inv[] = "INVITE sip:8000@um.example.com SIP/2.0\r\n"
	                          "Via: SIP/2.0/TCP 192.0.2.20;branch=z9hG4bK-n1\r\n"
	                          "From: <sip:2001@pbx.example.net>;tag=a1\r\n"
	                          "To: <sip:8000@um.example.com>\r\n"
	                          "Call-ID: c3\r\nCSeq: 1 INVITE\r\n"
	                          "Contact: <sip:2001@192.0.2.20>\r\nContent-Length: 0\r\n\r\n";
	struct om_sip_dialog *d = uas_dialog(inv);
	struct om_buf b;
	om_buf_init(&b);
	UT_EQ_INT(0, om_sip_dialog_request(d, OM_SIP_METHOD_BYE, &BYE_OPTS, &b));
	UT_TRUE(!strncmp(om_buf_cstr(&b), "BYE sip:2001@192.0.2.20 SIP/2.0\r\n", 33));
	UT_TRUE(strstr(om_buf_cstr(&b), "Route:") == NULL);
	om_buf_free(&b);
	om_sip_dialog_free(d);
}

/* Dialog-forming INVITEs the dialog refuses. */
UT_TEST(uas_new_refuses)
{
	static const char *const bad[] = {
		/* no Contact */
		"INVITE sip:8000@um SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\n"
		"From: <sip:a@b>;tag=1\r\nTo: <sip:c@d>\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\n\r\n",
		/* Contact: * */
		"INVITE sip:8000@um SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\n"
		"From: <sip:a@b>;tag=1\r\nTo: <sip:c@d>\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\n"
		"Contact: *\r\n\r\n",
		/* two Contacts */
		"INVITE sip:8000@um SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\n"
		"From: <sip:a@b>;tag=1\r\nTo: <sip:c@d>\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\n"
		"Contact: <sip:a@h1>, <sip:a@h2>\r\n\r\n",
		/* tel: Contact */
		"INVITE sip:8000@um SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\n"
		"From: <sip:a@b>;tag=1\r\nTo: <sip:c@d>\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\n"
		"Contact: <tel:+15550100>\r\n\r\n",
		/* a Record-Route that is no SIP URI */
		"INVITE sip:8000@um SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\n"
		"From: <sip:a@b>;tag=1\r\nTo: <sip:c@d>\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\n"
		"Record-Route: <http://example.net/>\r\nContact: <sip:a@h1>\r\n\r\n",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct om_sip_msg *m = parse(bad[i]);
		struct om_sip_dialog *d = NULL;
		int rc = om_sip_dialog_uas_new(m, &GW1, "t", "sip:um", &d);
		om_sip_msg_free(m);
		if (rc != EINVAL)
			UT_FAIL("case %zu: rc %d", i, rc);
	}
}

/* §12.1.2: the UAC's route set is the 2xx's Record-Route reversed. */
UT_TEST(uac_dialog_route_reversed)
{
	static const char inv[] = "INVITE sip:8000@um.example.com SIP/2.0\r\n"
	                          "Via: SIP/2.0/TCP gw.example.net;branch=z9hG4bK-u1\r\n"
	                          "From: <sip:2001@gw.example.net>;tag=g1\r\n"
	                          "To: <sip:8000@um.example.com>\r\n"
	                          "Call-ID: c4\r\nCSeq: 7 INVITE\r\n"
	                          "Contact: <sip:2001@gw.example.net>\r\nContent-Length: 0\r\n\r\n";
	static const char ok[] =
	    "SIP/2.0 200 OK\r\n"
	    "Via: SIP/2.0/TCP gw.example.net;branch=z9hG4bK-u1\r\n"
	    "Record-Route: <sip:p2.example.net;lr>, <sip:p1.example.net;lr>\r\n"
	    "From: <sip:2001@gw.example.net>;tag=g1\r\n"
	    "To: <sip:8000@um.example.com>;tag=u9\r\n"
	    "Call-ID: c4\r\nCSeq: 7 INVITE\r\n"
	    "Contact: <sip:um.example.com;transport=tcp>\r\n"
	    "Content-Length: 0\r\n\r\n";
	struct om_sip_msg *mi = parse(inv), *mo = parse(ok);
	struct om_sip_dialog *d = NULL;
	UT_EQ_INT(0, om_sip_dialog_uac_new(mi, mo, &GW1, "sip:2001@gw.example.net", &d));
	UT_EQ_INT(2, d->nroute);
	UT_EQ_STR("sip:p1.example.net;lr", d->route[0]);
	UT_EQ_STR("sip:p2.example.net;lr", d->route[1]);
	UT_EQ_STR("g1", d->local_tag);
	UT_EQ_STR("u9", d->remote_tag);
	UT_EQ_INT(7, d->local_cseq);
	UT_TRUE(!d->uas);
	struct om_buf b;
	om_buf_init(&b);
	struct om_sip_dialog_req ack = BYE_OPTS;
	ack.cseq = 7;
	UT_EQ_INT(0, om_sip_dialog_request(d, OM_SIP_METHOD_ACK, &ack, &b));
	UT_TRUE(!strncmp(om_buf_cstr(&b), "ACK sip:um.example.com;transport=tcp SIP/2.0", 44));
	UT_TRUE(strstr(om_buf_cstr(&b), "CSeq: 7 ACK") != NULL);
	b.len = 0;
	UT_EQ_INT(0, om_sip_dialog_request(d, OM_SIP_METHOD_BYE, &BYE_OPTS, &b));
	UT_TRUE(strstr(om_buf_cstr(&b), "CSeq: 8 BYE") != NULL);
	om_buf_free(&b);
	/* The table finds it from a response (From tag local). */
	struct om_sip_dialog_table *t = NULL;
	UT_EQ_INT(0, om_sip_dialog_table_new(&t));
	om_sip_dialog_table_add(t, d);
	UT_TRUE(om_sip_dialog_table_find(t, mo) == d);
	UT_TRUE(om_sip_dialog_table_find(t, mi) == NULL); /* the INVITE has no To tag */
	om_sip_dialog_table_del(t, d);
	om_sip_dialog_table_free(t);
	om_sip_msg_free(mi);
	om_sip_msg_free(mo);
	om_sip_dialog_free(d);
}

static char rq[4096];
static const char *in_dialog(const char *method, unsigned cseq, const char *contact,
                             const char *ftag, const char *ttag)
{
	snprintf(rq, sizeof(rq),
	         "%s sip:um.example.com SIP/2.0\r\n"
	         "Via: SIP/2.0/TCP 192.0.2.20;branch=z9hG4bK-%s%u\r\n"
	         "From: <sip:2001@pbx.example.net>;tag=%s\r\n"
	         "To: <sip:8000@um.example.com>;tag=%s\r\n"
	         "Call-ID: c1@192.0.2.20\r\nCSeq: %u %s\r\n%s%s%s"
	         "Content-Length: 0\r\n\r\n",
	         method, method, cseq, ftag, ttag, cseq, method, contact ? "Contact: " : "",
	         contact ? contact : "", contact ? "\r\n" : "");
	return rq;
}

/* §12.2.2 as a table: peer, CSeq order, target refresh. */
UT_TEST(rx_request_rules)
{
	static const struct {
		const char *method;
		unsigned cseq;
		const char *contact;
		const struct om_sip_dest *src;
		int status;
		const char *target_after;
		unsigned remote_cseq_after;
	} cases[] = {
		/* another gateway naming this dialog */
		{ "BYE", 11, NULL, &GW2, 481, "sip:2001@192.0.2.20:5060;transport=tcp", 10 },
		/* lower CSeq: out of order */
		{ "BYE", 9, NULL, &GW1, 500, "sip:2001@192.0.2.20:5060;transport=tcp", 10 },
		/* equal is accepted (only lower is refused) */
		{ "INFO", 10, NULL, &GW1, 0, "sip:2001@192.0.2.20:5060;transport=tcp", 10 },
		/* re-INVITE with a new Contact: target refresh */
		{ "INVITE", 11, "<sip:2001@192.0.2.21:5070>", &GW1, 0, "sip:2001@192.0.2.21:5070",
		  11 },
		/* UPDATE without Contact keeps the target */
		{ "UPDATE", 12, NULL, &GW1, 0, "sip:2001@192.0.2.21:5070", 12 },
		/* a target refresh with a broken Contact: 400, nothing taken */
		{ "INVITE", 13, "<tel:+1555>", &GW1, 400, "sip:2001@192.0.2.21:5070", 12 },
		/* INFO's Contact is not a target refresh */
		{ "INFO", 14, "<sip:x@192.0.2.99>", &GW1, 0, "sip:2001@192.0.2.21:5070", 14 },
		/* a new connection of the same gateway */
		{ "BYE", 15, NULL, &GW1_NEWCONN, 0, "sip:2001@192.0.2.21:5070", 15 },
	};
	struct om_sip_dialog *d = uas_dialog(INVITE_RR);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct om_sip_msg *m =
		    parse(in_dialog(cases[i].method, cases[i].cseq, cases[i].contact, "a1", "um1"));
		int st = om_sip_dialog_rx_request(d, m, cases[i].src);
		om_sip_msg_free(m);
		if (st != cases[i].status)
			UT_FAIL("case %zu: status %d, expected %d", i, st, cases[i].status);
		UT_EQ_STR(cases[i].target_after, d->remote_target);
		UT_EQ_INT(cases[i].remote_cseq_after, d->remote_cseq);
	}
	UT_EQ_INT(8, d->dest.conn_id);
	UT_EQ_INT(1, d->dest.peer_id);
	om_sip_dialog_free(d);
}

UT_TEST(table_find_request)
{
	struct om_sip_dialog *d = uas_dialog(INVITE_RR);
	struct om_sip_dialog_table *t = NULL;
	UT_EQ_INT(0, om_sip_dialog_table_new(&t));
	om_sip_dialog_table_add(t, d);
	UT_EQ_INT(1, om_sip_dialog_table_count(t));
	struct om_sip_msg *m = parse(in_dialog("BYE", 11, NULL, "a1", "um1"));
	UT_TRUE(om_sip_dialog_table_find(t, m) == d);
	om_sip_msg_free(m);
	m = parse(in_dialog("BYE", 11, NULL, "a1", "other")); /* foreign To tag */
	UT_TRUE(om_sip_dialog_table_find(t, m) == NULL);
	om_sip_msg_free(m);
	m = parse(in_dialog("BYE", 11, NULL, "zz", "um1")); /* foreign From tag */
	UT_TRUE(om_sip_dialog_table_find(t, m) == NULL);
	om_sip_msg_free(m);
	om_sip_dialog_table_del(t, d);
	UT_EQ_INT(0, om_sip_dialog_table_count(t));
	om_sip_dialog_table_free(t);
	om_sip_dialog_free(d);
}

/* §14.1/§14.2 and RFC 3311 §5.2. */
UT_TEST(glare)
{
	struct om_sip_dialog *d = uas_dialog(INVITE_RR);
	UT_EQ_INT(0, om_sip_dialog_offer_out(d));
	UT_EQ_INT(491, om_sip_dialog_offer_in(d));
	UT_EQ_INT(EBUSY, om_sip_dialog_offer_out(d));
	om_sip_dialog_offer_out_done(d);
	UT_EQ_INT(0, om_sip_dialog_offer_in(d));
	UT_EQ_INT(500, om_sip_dialog_offer_in(d));
	UT_EQ_INT(EBUSY, om_sip_dialog_offer_out(d));
	om_sip_dialog_offer_in_done(d);
	UT_EQ_INT(0, om_sip_dialog_offer_out(d));
	/* We are the UAS: 0..2 s. */
	for (uint32_t r = 0; r < 100000; r += 997) {
		uint32_t ms = om_sip_dialog_glare_retry_ms(d, r);
		UT_TRUE(ms <= 2000);
	}
	UT_EQ_INT(2000, om_sip_dialog_glare_retry_ms(d, 2000));
	d->uas = false;
	for (uint32_t r = 0; r < 100000; r += 997) {
		uint32_t ms = om_sip_dialog_glare_retry_ms(d, r);
		UT_TRUE(ms >= 2100 && ms <= 4000);
	}
	om_sip_dialog_free(d);
}

/* ------------------------------------------------------------------ */
/* RFC 4028                                                            */

UT_TEST(session_timer_uas_table)
{
	static const struct {
		const char *hdrs;
		uint32_t min_se, se;
		int rc;
		uint32_t interval;
		bool refresher_uac, we_refresh;
		const char *resp_hdrs;
		uint64_t due_ms;
	} cases[] = {
		/* the UAC asks 1800 s and refreshes */
		{ "Supported: timer\r\nSession-Expires: 1800;refresher=uac\r\n", 90, 1800, 0, 1800,
		  true, false, "Session-Expires: 1800;refresher=uac\r\nRequire: timer\r\n",
		  (1800 - 32) * 1000ull },
		/* asks, no refresher, supports timer: the UAC refreshes */
		{ "Supported: timer\r\nSession-Expires: 600\r\n", 90, 1800, 0, 600, true, false,
		  "Session-Expires: 600;refresher=uac\r\nRequire: timer\r\n",
		  (600 - 32) * 1000ull },
		/* asks the UAS to refresh */
		{ "Supported: timer\r\nSession-Expires: 300;refresher=uas\r\n", 90, 1800, 0, 300,
		  false, true, "Session-Expires: 300;refresher=uas\r\n", 150000 },
		/* Session-Expires without support for timer (a proxy added it): we refresh */
		{ "Session-Expires: 900\r\n", 90, 1800, 0, 900, false, true,
		  "Session-Expires: 900;refresher=uas\r\n", 450000 },
		/* refresher=uac from a UAC that does not support timer: we refresh */
		{ "Session-Expires: 900;refresher=uac\r\n", 90, 1800, 0, 900, false, true,
		  "Session-Expires: 900;refresher=uas\r\n", 450000 },
		/* too small: 422 */
		{ "Supported: timer\r\nSession-Expires: 60\r\n", 90, 1800, 422, 0, false, false, "",
		  0 },
		{ "Supported: timer\r\nSession-Expires: 100\r\n", 120, 1800, 422, 0, false, false,
		  "", 0 },
		/* our Min-SE never goes below 90 (§4) */
		{ "Supported: timer\r\nSession-Expires: 89\r\n", 10, 1800, 422, 0, false, false, "",
		  0 },
		/* nothing asked, we use ours: the UAC refreshes when it can */
		{ "Supported: timer\r\n", 90, 1800, 0, 1800, true, false,
		  "Session-Expires: 1800;refresher=uac\r\nRequire: timer\r\n",
		  (1800 - 32) * 1000ull },
		{ "", 90, 1800, 0, 1800, false, true, "Session-Expires: 1800;refresher=uas\r\n",
		  900000 },
		/* ... but never below the UAC's Min-SE */
		{ "Supported: timer\r\nMin-SE: 3600\r\n", 90, 1800, 0, 3600, true, false,
		  "Session-Expires: 3600;refresher=uac\r\nRequire: timer\r\n",
		  (3600 - 32) * 1000ull },
		/* nothing asked and none of ours: no timer */
		{ "Supported: timer\r\n", 90, 0, 0, 0, false, false, "", 0 },
		/* a short interval: the margin is a third (§10) */
		{ "Supported: timer\r\nSession-Expires: 90;refresher=uac\r\n", 90, 1800, 0, 90,
		  true, false, "Session-Expires: 90;refresher=uac\r\nRequire: timer\r\n", 60000 },
		/* malformed */
		{ "Session-Expires: soon\r\n", 90, 1800, 400, 0, false, false, "", 0 },
		{ "Min-SE: x\r\n", 90, 1800, 400, 0, false, false, "", 0 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char m[2048];
		snprintf(
		    m, sizeof(m),
		    "INVITE sip:8000@um SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\n"
		    "From: <sip:a@b>;tag=1\r\nTo: <sip:c@d>\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\n"
		    "%sContent-Length: 0\r\n\r\n",
		    cases[i].hdrs);
		struct om_sip_msg *msg = parse(m);
		struct om_sip_session_timer st;
		int rc = om_sip_session_timer_uas(msg, cases[i].min_se, cases[i].se, &st);
		om_sip_msg_free(msg);
		if (rc != cases[i].rc)
			UT_FAIL("case %zu: rc %d, expected %d", i, rc, cases[i].rc);
		if (rc)
			continue;
		if (st.interval != cases[i].interval ||
		    st.refresher_uac != cases[i].refresher_uac ||
		    st.we_refresh != cases[i].we_refresh)
			UT_FAIL("case %zu: interval %u uac %d we %d", i, st.interval,
			        st.refresher_uac, st.we_refresh);
		struct om_buf b;
		om_buf_init(&b);
		om_sip_session_timer_hdrs(&st, &b);
		UT_EQ_STR(cases[i].resp_hdrs, om_buf_cstr(&b));
		om_buf_free(&b);
		if (st.interval)
			UT_EQ_INT(cases[i].due_ms, om_sip_session_timer_due_ms(&st));
	}
}

/* ------------------------------------------------------------------ */
/* INFO DTMF                                                           */

UT_TEST(info_dtmf_table)
{
	static const struct {
		const char *ctype, *body;
		int rc;
		char digit;
		unsigned dur;
	} cases[] = {
		{ "application/dtmf-relay", "Signal=5\r\nDuration=160\r\n", 0, '5', 160 },
		{ "application/dtmf-relay", "Signal= #\r\nDuration= 250\r\n", 0, '#', 250 },
		{ "Application/DTMF-Relay", "signal=*\nduration=100", 0, '*', 100 },
		{ "application/dtmf-relay", "Signal=10\r\nDuration=100\r\n", 0, '*', 100 },
		{ "application/dtmf-relay", "Signal=11\r\n", 0, '#', 250 },
		{ "application/dtmf-relay", "Signal=a\r\nDuration=1\r\n", 0, 'A', 10 },
		{ "application/dtmf-relay", "Signal=1\r\nDuration=999999\r\n", 0, '1', 5000 },
		{ "application/dtmf", "7", 0, '7', 250 },
		{ "application/dtmf", " 9\r\n", 0, '9', 250 },
		{ "application/dtmf-relay", "Duration=100\r\n", EBADMSG, 0, 0 },
		{ "application/dtmf-relay", "Signal=E\r\n", EBADMSG, 0, 0 },
		{ "application/dtmf-relay", "Signal=12\r\n", EBADMSG, 0, 0 },
		{ "application/dtmf-relay", "Signal=1\r\nSignal=2\r\n", EBADMSG, 0, 0 },
		{ "application/dtmf-relay", "Signal 1\r\n", EBADMSG, 0, 0 },
		{ "application/dtmf-relay", "Signal=1\r\nDuration=-5\r\n", EBADMSG, 0, 0 },
		{ "application/dtmf", "12", EBADMSG, 0, 0 },
		{ "application/sdp", "v=0\r\n", ENOENT, 0, 0 },
		{ NULL, "", ENOENT, 0, 0 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char m[2048];
		char ct[128] = "";
		if (cases[i].ctype)
			snprintf(ct, sizeof(ct), "Content-Type: %s\r\n", cases[i].ctype);
		snprintf(
		    m, sizeof(m),
		    "INFO sip:um SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\n"
		    "From: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=2\r\nCall-ID: x\r\nCSeq: 2 INFO\r\n"
		    "%sContent-Length: %zu\r\n\r\n%s",
		    ct, strlen(cases[i].body), cases[i].body);
		struct om_sip_msg *msg = parse(m);
		char digit = 0;
		unsigned dur = 0;
		int rc = om_sip_info_dtmf(msg, &digit, &dur);
		om_sip_msg_free(msg);
		if (rc != cases[i].rc ||
		    (rc == 0 && (digit != cases[i].digit || dur != cases[i].dur)))
			UT_FAIL("case %zu: rc %d digit %c dur %u", i, rc, digit ? digit : '-', dur);
	}
}

/* ------------------------------------------------------------------ */
/* The SDP of a body (RFC 5621 multipart)                               */

UT_TEST(body_sdp_table)
{
	static const char sdp[] = "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n";
	static const struct {
		const char *ctype, *body;
		int rc;
		const char *want;
	} t[] = {
		{ "application/sdp", "v=0\r\n", 0, "v=0\r\n" },
		{ "Application/SDP; charset=utf-8", "v=0\r\n", 0, "v=0\r\n" },
		{ "multipart/mixed; boundary=unique",
		  "--unique\r\nContent-Type: application/isup; version=itu-t92+\r\n\r\nXYZ\r\n"
		  "--unique\r\nContent-Type: application/sdp\r\n\r\nv=0\r\nm=x\r\n\r\n--unique--\r\n",
		  0, "v=0\r\nm=x\r\n" },
		/* preamble, a part without headers, LF line ends, epilogue */
		{ "multipart/mixed; boundary=\"123:45\"",
		  "preamble\n--123:45\n\nimplicit text\n--123:45\nc: application/sdp\n\nv=0\nm=a\n\n"
		  "--123:45--\nepilogue",
		  0, "v=0\nm=a\n" },
		{ "multipart/mixed; boundary=b",
		  "--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n--b--\r\n", ENOENT, NULL },
		{ "multipart/mixed", "--b\r\n\r\nx\r\n--b--\r\n", EBADMSG, NULL },
		{ "multipart/mixed; boundary=b",
		  "--b\r\nContent-Type: application/sdp\r\n\r\nv=0\r\n", EBADMSG, NULL },
		{ "multipart/mixed; boundary=b", "no delimiter at all\r\n", EBADMSG, NULL },
		{ "text/plain", "v=0\r\n", ENOENT, NULL },
		{ NULL, "v=0\r\n", ENOENT, NULL },
	};
	(void)sdp;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		char m[4096], ct[256] = "";
		if (t[i].ctype)
			snprintf(ct, sizeof(ct), "Content-Type: %s\r\n", t[i].ctype);
		snprintf(
		    m, sizeof(m),
		    "INVITE sip:um SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\n"
		    "From: <sip:a@b>;tag=1\r\nTo: <sip:c@d>\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\n"
		    "%sContent-Length: %zu\r\n\r\n%s",
		    ct, strlen(t[i].body), t[i].body);
		struct om_sip_msg *msg = parse(m);
		struct om_str got = OM_STR_NULL;
		int rc = om_sip_msg_sdp(msg, &got);
		bool ok =
		    rc == t[i].rc &&
		    (rc || (got.len == strlen(t[i].want) && !memcmp(got.p, t[i].want, got.len)));
		if (!ok) {
			om_sip_msg_free(msg);
			UT_FAIL("case %zu: rc %d \"%.*s\"", i, rc, (int)got.len,
			        got.p ? got.p : "");
		}
		om_sip_msg_free(msg);
	}
}

/* ------------------------------------------------------------------ */
/* Out of memory                                                       */

static int oom_dialog(void *arg)
{
	(void)arg;
	struct om_sip_msg *m = NULL;
	enum om_sip_reason r;
	struct om_sip_dialog *d = NULL;
	struct om_sip_dialog_table *t = NULL;
	struct om_buf b;
	int rc;
	om_buf_init(&b);
	if ((rc = om_sip_msg_parse(INVITE_RR, strlen(INVITE_RR), NULL, &m, &r)))
		return rc;
	if ((rc = om_sip_dialog_uas_new(m, &GW1, "um1", "sip:um", &d)))
		goto out;
	if ((rc = om_sip_dialog_table_new(&t)))
		goto out;
	om_sip_dialog_table_add(t, d);
	if ((rc = om_sip_dialog_request(d, OM_SIP_METHOD_BYE, &BYE_OPTS, &b)))
		goto out;
	if (!strstr(om_buf_cstr(&b), "Route: <sip:192.0.2.10;transport=tcp;r2=on;lr>"))
		rc = EPROTO;
out:
	if (t && d)
		om_sip_dialog_table_del(t, d);
	om_sip_dialog_table_free(t);
	om_sip_dialog_free(d);
	om_sip_msg_free(m);
	om_buf_free(&b);
	return rc;
}

UT_TEST(oom_sweep_dialog)
{
	UT_EQ_INT(0, oom_dialog(NULL));
	unsigned long n;
	for (n = 1; n < 10000; n++) {
		om_alloc_fail_at(n, 0);
		int rc = oom_dialog(NULL);
		int hit = om_alloc_fault_hit();
		om_alloc_fail_at(0, 0);
		if (!hit)
			break;
		if (rc != ENOMEM)
			UT_FAIL("allocation %lu: rc %d, expected ENOMEM", n, rc);
	}
	UT_TRUE(n > 5);
}

UT_MAIN(UT_CASE(uas_dialog_fields), UT_CASE(bye_loose_route_double_record_route),
        UT_CASE(bye_strict_route), UT_CASE(no_route_set_ruri_is_contact), UT_CASE(uas_new_refuses),
        UT_CASE(uac_dialog_route_reversed), UT_CASE(rx_request_rules), UT_CASE(table_find_request),
        UT_CASE(glare), UT_CASE(session_timer_uas_table), UT_CASE(info_dtmf_table),
        UT_CASE(body_sdp_table), UT_CASE(oom_sweep_dialog))
