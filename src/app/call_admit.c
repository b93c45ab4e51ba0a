/* call_admit.c — admission of an INVITE (R3, R4, R9, R11; RFC 3261 §8.2,
 * §13.3; RFC 3264; RFC 4028 §9), in the order docs/modules/calls.md gives:
 *
 *   trusted gateway (sipd.c, before a byte is parsed)
 *   → the gateway's dial plan is one this server serves      403 + 1136
 *   → the server and the gateway take new calls              503
 *   → caps: max_calls, the gateway's --max-calls,
 *     max_calls_per_second                                    503 + Retry-After, 1137
 *   → the body is SDP, the session timer is acceptable        415, 400, 422
 *   → the R3 table (om_sdp_mode_apply)                        403 / 488 + 1132
 *   → a dialog and a media session, its port in our SDP       200
 *
 * Every refusal is one response; nothing of the call is kept. */
#include "app/call_int.h"
#include "app/flow.h"
#include "core/alloc.h"
#include "core/clock.h"
#include "core/events.h"
#include "core/log.h"
#include "delivery/delivery.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

static void refuse(struct om_calls *cs, struct om_sip_stx *stx, int status, const char *phrase,
                   const char *extra)
{
	struct om_sip_resp_opts o = { .extra = extra };
	om_sip_stx_reply(stx, status, phrase, &o);
	om_sip_stx_release(stx);
	cs->cur_status = status;
	call_refusal_sent(cs, status);
}

static bool plan_served(const struct om_dir_snapshot *snap, const struct om_dir_dialplan *plan)
{
	const struct om_dir_server *srv = om_dir_snapshot_server(snap);
	if (!srv || !srv->ndialplans)
		return true; /* a server with no associated plan serves every plan */
	for (size_t i = 0; i < srv->ndialplans; i++)
		if (!strcmp(srv->dialplans[i], plan->name))
			return true;
	return false;
}

static size_t gateway_calls(const struct om_calls *cs, int64_t gw_id)
{
	size_t n = 0;
	for (const struct om_call *c = cs->list; c; c = c->next)
		n += c->counted && c->gw_id == gw_id;
	return n;
}

/* A token bucket of max_calls_per_second tokens, refilled continuously. */
static bool cps_take(struct om_calls *cs)
{
	unsigned cps = cs->cfg->max_calls_per_second;
	if (!cps)
		return true;
	int64_t now = om_mono_ms();
	double add = (double)(now - cs->cps_last_ms) * cps / 1000.0;
	cs->cps_last_ms = now;
	cs->cps_tokens += add;
	if (cs->cps_tokens > cps)
		cs->cps_tokens = cps;
	if (cs->cps_tokens < 1.0)
		return false;
	cs->cps_tokens -= 1.0;
	return true;
}

static void caps_event(const struct om_dir_gateway *gw, const char *which, const char *limit,
                       const struct om_sip_msg *m)
{
	char cid[128];
	struct om_str ci = om_sip_msg_call_id(m);
	snprintf(cid, sizeof(cid), "%.*s", (int)(ci.len > 100 ? 100 : ci.len), ci.p);
	om_event(OM_EV_CALL_CAPACITY, gw->name, "call refused: capacity reached", "gateway",
	         gw->name, "cap", which, "limit", limit, "call", cid, NULL);
}

/* "RTP/SAVP, 2 crypto lines" — what event 1132 says about the offer. */
static void offer_summary(const struct om_sdp *o, char *out, size_t len)
{
	if (!o) {
		snprintf(out, len, "none (delayed offer)");
		return;
	}
	size_t pos = 0;
	out[0] = '\0';
	for (size_t i = 0; i < o->nmedia && pos + 1 < len; i++) {
		const struct om_sdp_media *m = &o->media[i];
		int n =
		    snprintf(out + pos, len - pos,
		             "%s" OM_STR_FMT " " OM_STR_FMT " port %u, %zu crypto line%s",
		             i ? "; " : "", OM_STR_ARG(m->media), OM_STR_ARG(m->proto),
		             (unsigned)m->port, m->ncrypto_lines, m->ncrypto_lines == 1 ? "" : "s");
		if (n < 0)
			break;
		pos += (size_t)n;
	}
	if (!o->nmedia)
		snprintf(out, len, "no media line");
}

static void local_ip(const struct om_calls *cs, struct om_tcp_conn *conn, char *out, size_t len,
                     uint16_t *sip_port)
{
	const struct sockaddr *sa = om_tcp_conn_local(conn);
	*sip_port = 0;
	out[0] = '\0';
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *a = (const void *)sa;
		inet_ntop(AF_INET, &a->sin_addr, out, (socklen_t)len);
		*sip_port = ntohs(a->sin_port);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const void *)sa;
		if (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr))
			inet_ntop(AF_INET, &a->sin6_addr.s6_addr[12], out, (socklen_t)len);
		else
			inet_ntop(AF_INET6, &a->sin6_addr, out, (socklen_t)len);
		*sip_port = ntohs(a->sin6_port);
	}
	if (cs->cfg->media_address[0])
		snprintf(out, len, "%s", cs->cfg->media_address);
}

struct mb_lookup {
	const struct om_dir_snapshot *snap;
	const struct om_dir_dialplan *plan;
};

static bool mailbox_exists(const char *ext, void *arg)
{
	const struct mb_lookup *l = arg;
	return om_dir_snapshot_mailbox(l->snap, l->plan, ext) != NULL;
}

static void new_session_id(uint64_t *id)
{
	if (RAND_bytes((unsigned char *)id, sizeof(*id)) != 1)
		*id = (uint64_t)om_now_ms();
	*id &= 0x7fffffffffffffffull; /* RFC 4566: fits an NTP-style decimal */
}

void call_admit_invite(struct om_calls *cs, struct om_sip_stx *stx, const struct om_sip_msg *m,
                       const struct om_dir_gateway *gw, struct om_tcp_conn *conn)
{
	const struct om_config *cfg = cs->cfg;
	const struct om_dir_snapshot *snap = cs->snap;
	const struct om_dir_dialplan *plan = om_dir_snapshot_gateway_plan(snap, gw);
	bool tls = om_tcp_conn_tls(conn) != NULL;
	char buf[512];
	cs->invites++;
	if (cs->closing || cs->draining || cs->media_failed) {
		bool stopping = cs->closing || cs->draining;
		call_refused(cs, &cs->refused_busy, "draining",
		             stopping ? "server_stopping" : "no_media_engine");
		refuse(cs, stx, 503,
		       stopping ? "Service Unavailable (stopping)"
		                : "Service Unavailable (no media engine)",
		       "Retry-After: 30\r\n");
		return;
	}
	struct om_sip_uri ruri;
	memset(&ruri, 0, sizeof(ruri));
	if (om_sip_uri_parse(m->ruri, 0, &ruri) == 0 && ruri.scheme == OM_SIP_SCHEME_SIPS && !tls) {
		/* RFC 3261 §26.2.2 / RFC 5630: sips: needs TLS on every hop. */
		call_refused(cs, &cs->refused_other, "request", "sips_over_tcp");
		refuse(cs, stx, 416, "Unsupported URI Scheme (sips: over TCP)", NULL);
		return;
	}
	/* The gateway's dial plan must be one this server serves. */
	if (!plan || !plan_served(snap, plan)) {
		call_refused(cs, &cs->refused_plan, "plan", "dialplan_not_served");
		om_event(OM_EV_CALL_PLAN_NOT_SERVED, gw->name,
		         "call refused: the gateway's dial plan is not served by this server",
		         "gateway", gw->name, "dialplan", plan ? plan->name : "", NULL);
		refuse(cs, stx, 403, "Forbidden (dial plan not served by this server)", NULL);
		return;
	}
	/* New calls at all? (drain: server or gateway nonewcalls) */
	const struct om_dir_server *srv = om_dir_snapshot_server(snap);
	if ((srv && srv->status == OM_SRV_NONEWCALLS) || gw->status == OM_GW_NONEWCALLS) {
		call_refused(cs, &cs->refused_busy, "draining",
		             gw->status == OM_GW_NONEWCALLS ? "gateway_nonewcalls"
		                                            : "server_nonewcalls");
		refuse(cs, stx, 503,
		       gw->status == OM_GW_NONEWCALLS ? "Service Unavailable (gateway draining)"
		                                      : "Service Unavailable (server draining)",
		       "Retry-After: 300\r\n");
		return;
	}
	/* Room for recordings on the spool's file system (min_free_mb;
	 * 1173/1174 come from the delivery engine). Calls in progress go on. */
	if (cs->delivery && !om_delivery_room(cs->delivery)) {
		call_refused(cs, &cs->refused_busy, "spool", "min_free_mb");
		refuse(cs, stx, 503, "Service Unavailable (spool disk space low)",
		       "Retry-After: 60\r\n");
		return;
	}
	/* Caps. */
	if (cfg->max_calls && cs->ncalls >= cfg->max_calls) {
		call_refused(cs, &cs->refused_caps, "cap", "max_calls");
		snprintf(buf, sizeof(buf), "%u", cfg->max_calls);
		caps_event(gw, "max_calls", buf, m);
		refuse(cs, stx, 503, "Service Unavailable (max_calls)", "Retry-After: 5\r\n");
		return;
	}
	if (gw->max_calls > 0 && gateway_calls(cs, gw->id) >= (size_t)gw->max_calls) {
		call_refused(cs, &cs->refused_caps, "cap", "gateway_max_calls");
		snprintf(buf, sizeof(buf), "%d", gw->max_calls);
		caps_event(gw, "gateway max-calls", buf, m);
		refuse(cs, stx, 503, "Service Unavailable (gateway max-calls)",
		       "Retry-After: 5\r\n");
		return;
	}
	if (!cps_take(cs)) {
		call_refused(cs, &cs->refused_caps, "cap", "max_calls_per_second");
		snprintf(buf, sizeof(buf), "%u", cfg->max_calls_per_second);
		caps_event(gw, "max_calls_per_second", buf, m);
		refuse(cs, stx, 503, "Service Unavailable (calls per second)",
		       "Retry-After: 1\r\n");
		return;
	}
	/* The body: SDP (or a multipart with an SDP part, RFC 5621) or none. */
	struct om_str sdp_body = OM_STR_NULL;
	if (m->body.len) {
		int brc = om_sip_msg_sdp(m, &sdp_body);
		if (brc) {
			call_refused(cs, &cs->refused_other, "request",
			             brc == ENOENT ? "body_not_sdp" : "bad_multipart");
			if (brc == ENOENT)
				refuse(cs, stx, 415, NULL, "Accept: application/sdp\r\n");
			else
				refuse(cs, stx, 400, "Bad Request (multipart body)", NULL);
			return;
		}
	}
	struct om_sip_session_timer se;
	int st = om_sip_session_timer_uas(m, cfg->min_se, cfg->session_expires, &se);
	if (st) {
		call_refused(cs, &cs->refused_other, "request", "session_timer");
		snprintf(buf, sizeof(buf), "Min-SE: %u\r\n", cfg->min_se);
		refuse(cs, stx, st, NULL, st == 422 ? buf : NULL);
		return;
	}
	struct om_sdp *offer = NULL;
	if (sdp_body.len) {
		struct om_sdp_error e;
		int rc = om_sdp_parse(sdp_body.p, sdp_body.len, &offer, &e);
		if (rc) {
			call_refused(cs, &cs->refused_other, rc == ENOMEM ? "internal" : "request",
			             rc == ENOMEM ? "out_of_memory" : "bad_sdp");
			snprintf(buf, sizeof(buf), "Warning: 399 %s \"bad SDP: %s (line %u)\"\r\n",
			         cfg->sip_advertise[0] ? cfg->sip_advertise : cfg->fqdn,
			         e.reason ? e.reason : "malformed", e.line);
			refuse(cs, stx, rc == ENOMEM ? 500 : 400,
			       rc == ENOMEM ? NULL : "Bad Request (SDP)",
			       rc == ENOMEM ? NULL : buf);
			return;
		}
	}
	/* R3: decide before anything is allocated for the call. */
	char ip[64];
	uint16_t sip_port;
	local_ip(cs, conn, ip, sizeof(ip), &sip_port);
	enum om_sdp_plan_mode mode = plan->security == OM_SEC_SECURED      ? OM_SDP_SECURED
	                             : plan->security == OM_SEC_SIPSECURED ? OM_SDP_SIPSECURED
	                                                                   : OM_SDP_UNSECURED;
	enum om_sdp_transport tr = tls ? OM_SDP_TLS : OM_SDP_TCP;
	struct om_sdp_local l = { .addr = ip, .ipv6 = strchr(ip, ':') != NULL, .port = 9 };
	struct om_sdp_result r;
	struct om_buf text;
	om_buf_init(&text);
	int rc = om_sdp_mode_apply(mode, tr, offer, &l, &r, &text);
	if (text.p)
		OPENSSL_cleanse(text.p, text.len);
	om_buf_free(&text);
	if (rc || r.kind == OM_SDP_REFUSED) {
		char summary[256];
		struct om_str ci = om_sip_msg_call_id(m);
		char cid[128];
		snprintf(cid, sizeof(cid), "%.*s", (int)(ci.len > 100 ? 100 : ci.len), ci.p);
		offer_summary(offer, summary, sizeof(summary));
		int status = rc ? 500 : r.status;
		call_refused(cs, NULL, "internal", "sdp");
		if (!rc) {
			call_refused(cs, &cs->refused_mode, "security_mode",
			             r.reason ? r.reason : "unknown");
			om_event(
			    OM_EV_SECURITY_MODE_REFUSED, gw->name,
			    "call refused: transport or media does not meet the dial plan's security mode",
			    "gateway", gw->name, "dialplan", plan->name, "security",
			    om_sdp_plan_mode_name(mode), "transport", tls ? "tls" : "tcp", "offer",
			    summary, "reason", r.reason ? r.reason : "", "status",
			    status == 403 ? "403" : "488", "call", cid, NULL);
		}
		om_sdp_result_clear(&r);
		om_sdp_free(offer);
		refuse(cs, stx, status,
		       status == 403   ? "Forbidden (TLS required by the dial plan)"
		       : status == 488 ? "Not Acceptable Here (media security)"
		                       : NULL,
		       status == 488
		           ? "Warning: 305 openum \"media does not meet the dial plan\"\r\n"
		           : NULL);
		return;
	}
	if (r.crypto_ignored) {
		/* R3: keys offered where they cannot be used (over TCP: they
		 * crossed in clear) — answered with plain RTP, and said so. */
		struct om_str ci = om_sip_msg_call_id(m);
		char cid[128];
		snprintf(cid, sizeof(cid), "%.*s", (int)(ci.len > 100 ? 100 : ci.len), ci.p);
		om_log(OM_LOG_WARNING,
		       "a=crypto in an RTP/AVP offer ignored: answered with plain RTP", "call", cid,
		       "gateway", gw->name, "dialplan", plan->name, "transport",
		       tls ? "tls" : "tcp", NULL);
	}
	om_sdp_result_clear(&r);
	/* Admitted: the call. */
	struct om_call *c = call_new(cs);
	if (!c) {
		om_sdp_free(offer);
		call_refused(cs, NULL, "internal", "out_of_memory");
		refuse(cs, stx, 500, NULL, "Retry-After: 5\r\n");
		return;
	}
	c->invite = stx;
	c->counted = true;
	cs->ncalls++;
	c->gw_id = gw->id;
	snprintf(c->gateway, sizeof(c->gateway), "%s", gw->name);
	snprintf(c->dialplan, sizeof(c->dialplan), "%s", plan->name);
	c->dialplan_id = plan->id;
	c->mode = mode;
	c->rtp_symmetric = plan->rtp_symmetric;
	c->max_message_s = plan->max_message_s;
	c->tls = tls;
	c->delayed = offer == NULL;
	c->se = se;
	c->call_id = om_str_dup(om_sip_msg_call_id(m));
	snprintf(c->local_ip, sizeof(c->local_ip), "%s", ip);
	c->local_sip_port = sip_port;
	const char *host = cfg->sip_advertise[0] ? cfg->sip_advertise : cfg->fqdn;
	bool sips = ruri.scheme == OM_SIP_SCHEME_SIPS;
	if (tls)
		snprintf(c->contact, sizeof(c->contact), "%s:%s:%u;transport=tls",
		         sips ? "sips" : "sip", host, (unsigned)sip_port);
	else
		snprintf(c->contact, sizeof(c->contact), "sip:%s:%u;transport=tcp", host,
		         (unsigned)sip_port);
	snprintf(c->sent_by, sizeof(c->sent_by), "%s:%u%s", host, (unsigned)sip_port,
	         tls ? ";alias" : "");
	c->peer_allows_update = om_sip_msg_has_token(m, OM_SIP_HDR_ALLOW, "UPDATE");
	struct mb_lookup ml = { snap, plan };
	struct om_route_in ri = { .invite = m,
		                  .pilot = plan->pilot,
		                  .digits = plan->digits,
		                  .diversion_bottom = gw->diversion_bottom,
		                  .mailbox_h = mailbox_exists,
		                  .arg = &ml };
	om_route_decide(&ri, &c->route);
	/* A test call (testcall/conntest.h): the diagnostic extension, or a
	 * mailbox whose message is delivered only when the test asks. */
	const struct om_sip_hdr *th = om_sip_msg_hdr_by_name(m, "X-Openum-Test");
	struct om_flow_test ft;
	if (th && om_flow_test_parse(th->value, &ft) == 0) {
		c->test = true;
		c->test_deliver = ft.deliver;
		c->echo_dtmf = ft.echo_dtmf;
	}
	if (ruri.has_user && om_str_eq_c(ruri.user, "openum-test")) {
		c->diag = true;
		c->test = true;
	}
	for (size_t i = 0; i < c->route.nwarn; i++)
		om_log(OM_LOG_INFO, "routing: an entry was skipped", "call", c->call_id, "gateway",
		       gw->name, "what", c->route.warn[i], NULL);
	const char *tag = om_sip_stx_to_tag(stx);
	if (!c->call_id || !tag ||
	    (rc = om_sip_dialog_uas_new(m, om_sip_stx_src(stx), tag, c->contact, &c->dlg)) != 0) {
		om_sdp_free(offer);
		c->invite = NULL;
		call_refused(cs, NULL, rc == EINVAL ? "request" : "internal",
		             rc == EINVAL ? "bad_contact" : "out_of_memory");
		refuse(cs, stx, rc == EINVAL ? 400 : 500,
		       rc == EINVAL ? "Bad Request (no usable Contact or Record-Route)" : NULL,
		       NULL);
		call_free(c);
		return;
	}
	/* The media session first (its port goes into the SDP), then the SDP,
	 * then what it agreed goes to the session. */
	new_session_id(&c->sess_id);
	c->sess_ver = 1;
	rc = call_media_open(c, ip, &c->rtp_port);
	if (!rc) {
		l.port = c->rtp_port;
		l.sess_id = c->sess_id;
		l.sess_version = c->sess_ver;
		om_buf_init(&text);
		rc = om_sdp_mode_apply(mode, tr, offer, &l, &c->sdp, &text);
		if (!rc && c->sdp.kind != OM_SDP_REFUSED) {
			c->local_sdp = text.p ? text.p : om_strdup("");
			om_buf_init(&text);
			rc = c->local_sdp ? 0 : ENOMEM;
		} else if (!rc) {
			rc = EPROTO; /* cannot be: the same offer was accepted above */
		}
		if (text.p)
			OPENSSL_cleanse(text.p, text.len);
		om_buf_free(&text);
	}
	om_sdp_free(offer);
	if (!rc && !c->delayed)
		rc = call_media_apply(c, &c->sdp);
	if (rc) {
		om_log(OM_LOG_WARNING, "call refused: no media session", "call", c->call_id,
		       "gateway", gw->name, "error", strerror(rc), NULL);
		c->invite = NULL;
		call_refused(cs, NULL, "media",
		             rc == EADDRINUSE ? "no_rtp_port" : "session_failed");
		refuse(cs, stx, rc == EADDRINUSE ? 503 : 500,
		       rc == EADDRINUSE ? "Service Unavailable (no RTP port left)" : NULL,
		       "Retry-After: 5\r\n");
		c->state = CALL_ENDED;
		snprintf(c->end_reason, sizeof(c->end_reason), "no-media");
		if (c->media)
			call_media_close(c);
		else
			call_free(c);
		return;
	}
	call_answer(c);
}
