/* call.c — one call: its answer, its dialog, its end (RFC 3261 §13, §14,
 * §15; RFC 3264; RFC 3311; RFC 4028; RFC 2976/6086 INFO).
 *
 * A call is one object with one owner (the calls list of struct om_calls)
 * and this state diagram:
 *
 *   admitted (call_admit.c)
 *      │ answer_delay_ms > 0: 180 Ringing, timer
 *      ▼
 *   ANSWERING ── CANCEL: 200 + 487 (txn.c) ─────────────────────────┐
 *      │ 200 with our SDP (answer, or our offer for a delayed offer) │
 *      ▼                                                             │
 *   WAIT_ACK ── 64·T1 without ACK: BYE ──┐                            │
 *      │ ACK (a delayed offer's answer    │                           │
 *      │ unacceptable: BYE) ──────────────┤                           │
 *      ▼                                  ▼                           │
 *   CONFIRMED ── media timeout, session  ENDING ── BYE answered, or   │
 *      │   expiry, server stop: our BYE ─►   │     64·T1 ────────────►│
 *      │ re-INVITE/UPDATE: hold/resume/      │                        ▼
 *      │ new address/new keys; INFO: DTMF    └──────────────────────► ENDED
 *      │ BYE from the gateway: 200 ───────────────────────────────────►  │
 *                                                     freed when the media has closed
 *
 * A call holds a call slot (max_calls, the gateway's --max-calls) from
 * admission until ENDED. */
#include "app/call_int.h"
#include "core/alloc.h"
#include "core/clock.h"
#include "core/events.h"
#include "core/log.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

const char *call_state_name(enum call_state s)
{
	static const char *const n[] = { "answering", "wait-ack", "confirmed", "ending", "ended" };
	return (unsigned)s < 5 ? n[s] : "?";
}

struct om_call *call_new(struct om_calls *cs)
{
	struct om_call *c = om_calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->calls = cs;
	c->id = ++cs->next_id;
	c->state = CALL_ANSWERING;
	c->start_ms = om_now_ms();
	c->next = cs->list;
	if (cs->list)
		cs->list->prev = c;
	cs->list = c;
	return c;
}

static void slot_release(struct om_call *c)
{
	if (c->counted) {
		c->counted = false;
		c->calls->ncalls--;
	}
}

void call_free(struct om_call *c)
{
	struct om_calls *cs = c->calls;
	slot_release(c);
	om_sip_timer_stop(cs->stack, &c->tm_answer);
	om_sip_timer_stop(cs->stack, &c->tm_se);
	om_sip_timer_stop(cs->stack, &c->tm_gone);
	if (c->invite) {
		if (om_sip_stx_status(c->invite) < 200)
			om_sip_stx_reply(c->invite, 500, NULL, NULL);
		om_sip_stx_release(c->invite);
	}
	om_sip_stx_release(c->reinvite);
	om_sip_ctx_release(c->out);
	om_sip_ctx_release(c->info_out);
	flow_free(c);
	if (c->dlg) {
		om_sip_dialog_table_del(cs->dialogs, c->dlg);
		om_sip_dialog_free(c->dlg);
	}
	if (c->prev)
		c->prev->next = c->next;
	else
		cs->list = c->next;
	if (c->next)
		c->next->prev = c->prev;
	om_sdp_result_clear(&c->sdp);
	if (c->local_sdp) {
		OPENSSL_cleanse(c->local_sdp, strlen(c->local_sdp)); /* our key */
		om_free(c->local_sdp);
	}
	om_free(c->call_id);
	om_free(c);
	calls_work_done(cs); /* a drain waits for the last call */
}

/* The media session is gone (or there was none): free the call once it
 * has ended. */
void call_release(struct om_call *c)
{
	c->media = NULL;
	if (c->state == CALL_ENDED)
		call_free(c);
}

static void ended(struct om_call *c, const char *why)
{
	if (c->state == CALL_ENDED)
		return;
	c->state = CALL_ENDED;
	c->end_ms = om_now_ms();
	if (!c->end_reason[0])
		snprintf(c->end_reason, sizeof(c->end_reason), "%s", why);
	slot_release(c);
	om_sip_timer_stop(c->calls->stack, &c->tm_answer);
	om_sip_timer_stop(c->calls->stack, &c->tm_se);
	om_sip_timer_stop(c->calls->stack, &c->tm_gone);
	om_log(OM_LOG_INFO, "call ended", "call", c->call_id, "gateway", c->gateway, "reason",
	       c->end_reason, NULL);
	if (c->dlg)
		om_sip_dialog_table_del(c->calls->dialogs, c->dlg);
	flow_call_ended(c); /* a recording ends with the media session */
	struct om_calls *cs = c->calls;
	if (c->media)
		call_media_close(c); /* call_release follows with CLOSED */
	else
		call_free(c);
	calls_closing_check(cs);
}

void call_common_hdrs(const struct om_call *c, struct om_buf *out)
{
	om_buf_printf(out,
	              "Contact: <%s>\r\n"
	              "Allow: INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, UPDATE\r\n"
	              "Supported: timer\r\n",
	              c->contact);
}

/* ------------------------------------------------------------------ */
/* Our requests                                                        */

static void on_bye_resp(struct om_sip_ctx *ctx, int err, const struct om_sip_msg *resp, void *arg)
{
	struct om_call *c = arg;
	if (resp && resp->status < 200)
		return;
	om_sip_ctx_release(ctx);
	c->out = NULL;
	ended(c, c->end_reason[0] ? c->end_reason : "bye");
}

static int send_in_dialog_in(struct om_call *c, enum om_sip_method m, const char *extra,
                             const char *ctype, const char *body, om_sip_resp_h h,
                             struct om_sip_ctx **slot)
{
	char br[40];
	struct om_buf b;
	om_sip_stack_branch(c->calls->stack, br, sizeof(br));
	struct om_sip_dialog_req o = { .branch = br,
		                       .via_transport = c->tls ? "TLS" : "TCP",
		                       .via_sent_by = c->sent_by,
		                       .extra = extra,
		                       .content_type = ctype,
		                       .body = om_str_c(body ? body : "") };
	om_buf_init(&b);
	int rc = om_sip_dialog_request(c->dlg, m, &o, &b);
	if (!rc)
		rc = om_sip_ctx_send(c->calls->stack, &c->dlg->dest, b.p, b.len, h, c, slot);
	om_buf_free(&b);
	return rc;
}

static int send_in_dialog(struct om_call *c, enum om_sip_method m, const char *extra,
                          const char *ctype, const char *body, om_sip_resp_h h)
{
	return send_in_dialog_in(c, m, extra, ctype, body, h, &c->out);
}

int call_send_info(struct om_call *c, const char *ctype, const char *body, om_sip_resp_h h)
{
	if (!c->dlg || c->state != CALL_CONFIRMED || c->info_out)
		return EBUSY;
	return send_in_dialog_in(c, OM_SIP_METHOD_INFO, NULL, ctype, body, h, &c->info_out);
}

/* Ends the call from our side: BYE when there is a dialog (answered), else
 * nothing more to say. */
void call_hangup(struct om_call *c, const char *why)
{
	if (c->state == CALL_ENDED || c->state == CALL_ENDING)
		return;
	snprintf(c->end_reason, sizeof(c->end_reason), "%s", why);
	if (!c->dlg || c->state == CALL_ANSWERING) {
		ended(c, why);
		return;
	}
	if (c->state == CALL_WAIT_ACK) {
		/* §15: no BYE before the ACK (or its timeout): after it. */
		c->hangup_pending = true;
		return;
	}
	c->calls->ended_by_us++;
	om_sip_ctx_release(c->out);
	c->out = NULL;
	char reason[160];
	snprintf(reason, sizeof(reason), "Reason: SIP;text=\"%s\"\r\n", why);
	c->state = CALL_ENDING;
	if (send_in_dialog(c, OM_SIP_METHOD_BYE, reason, NULL, NULL, on_bye_resp) != 0)
		ended(c, why); /* no memory: the gateway's own timers end its side */
}

/* ------------------------------------------------------------------ */
/* Session timers (RFC 4028 §10)                                        */

static void se_arm(struct om_call *c);

static void on_refresh_resp(struct om_sip_ctx *ctx, int err, const struct om_sip_msg *resp,
                            void *arg)
{
	struct om_call *c = arg;
	if (resp && resp->status < 200)
		return;
	om_sip_ctx_release(ctx);
	c->out = NULL;
	if (resp && resp->status >= 200 && resp->status < 300) {
		uint32_t cseq;
		struct om_str cm;
		enum om_sip_method cmm;
		om_sip_dialog_rx_response(c->dlg, resp);
		if (om_sip_msg_cseq(resp, &cseq, &cm, &cmm) == 0 && cmm == OM_SIP_METHOD_INVITE) {
			/* §13.2.2.4: the ACK to our re-INVITE's 2xx */
			char br[40];
			struct om_buf b;
			om_sip_stack_branch(c->calls->stack, br, sizeof(br));
			struct om_sip_dialog_req o = { .branch = br,
				                       .via_transport = c->tls ? "TLS" : "TCP",
				                       .via_sent_by = c->sent_by,
				                       .cseq = cseq };
			om_buf_init(&b);
			if (om_sip_dialog_request(c->dlg, OM_SIP_METHOD_ACK, &o, &b) == 0)
				om_sip_stack_send(c->calls->stack, &c->dlg->dest, b.p, b.len);
			om_buf_free(&b);
		}
		om_sip_dialog_offer_out_done(c->dlg);
		se_arm(c);
		return;
	}
	om_sip_dialog_offer_out_done(c->dlg);
	call_hangup(c, "session-refresh-failed");
}

static void on_se_timer(struct om_sip_timer *t, void *arg)
{
	struct om_call *c = arg;
	if (c->state != CALL_CONFIRMED)
		return;
	if (!c->se.we_refresh) {
		om_event(OM_EV_CALL_ENDED_BY_US, c->gateway,
		         "call ended: the session was not refreshed", "call", c->call_id, "gateway",
		         c->gateway, "reason", "session-expired", NULL);
		call_hangup(c, "session-expired");
		return;
	}
	if (c->out || om_sip_dialog_offer_out(c->dlg) != 0) {
		om_sip_timer_start(c->calls->stack, &c->tm_se, 2000, on_se_timer, c);
		return;
	}
	struct om_buf extra;
	om_buf_init(&extra);
	call_common_hdrs(c, &extra);
	om_buf_printf(&extra, "Session-Expires: %u;refresher=uac\r\n", (unsigned)c->se.interval);
	int rc = c->peer_allows_update
	             ? send_in_dialog(c, OM_SIP_METHOD_UPDATE, om_buf_cstr(&extra), NULL, NULL,
	                              on_refresh_resp)
	             : send_in_dialog(c, OM_SIP_METHOD_INVITE, om_buf_cstr(&extra),
	                              "application/sdp", c->local_sdp, on_refresh_resp);
	om_buf_free(&extra);
	if (rc) {
		om_sip_dialog_offer_out_done(c->dlg);
		call_hangup(c, "session-refresh-failed");
	}
}

static void se_arm(struct om_call *c)
{
	if (!c->se.interval)
		return;
	om_sip_timer_start(c->calls->stack, &c->tm_se, om_sip_session_timer_due_ms(&c->se),
	                   on_se_timer, c);
}

/* ------------------------------------------------------------------ */
/* The INVITE transaction                                              */

static void on_ack(struct om_sip_stx *stx, const struct om_sip_msg *ack, void *arg)
{
	struct om_call *c = arg;
	om_sip_stx_release(stx);
	c->invite = NULL;
	if (c->state != CALL_WAIT_ACK)
		return;
	if (c->delayed) {
		/* The answer to our offer (RFC 3264 §5, R3 delayed offer). */
		struct om_sdp *a = NULL;
		struct om_sdp_error e;
		struct om_str body = OM_STR_NULL;
		if (om_sip_msg_sdp(ack, &body) != 0 ||
		    om_sdp_parse(body.p, body.len, &a, &e) != 0 ||
		    om_sdp_answer_take(&c->sdp, a) != 0 || c->sdp.kind == OM_SDP_REFUSED) {
			const char *why = !ack->body.len ? "no answer in the ACK"
			                  : c->sdp.kind == OM_SDP_REFUSED && c->sdp.reason
			                      ? c->sdp.reason
			                      : "unusable answer in the ACK";
			om_sdp_free(a);
			c->state = CALL_CONFIRMED;
			om_event(OM_EV_CALL_ENDED_BY_US, c->gateway,
			         "call ended: the ACK carries no acceptable answer", "call",
			         c->call_id, "gateway", c->gateway, "dialplan", c->dialplan,
			         "reason", why, NULL);
			call_hangup(c, "bad-answer");
			return;
		}
		om_sdp_free(a);
		c->delayed = false;
		call_media_apply(c, &c->sdp);
	}
	c->state = CALL_CONFIRMED;
	if (c->hangup_pending) {
		call_hangup(c, c->end_reason);
		return;
	}
	se_arm(c);
	flow_start(c);
}

static void on_noack(struct om_sip_stx *stx, void *arg)
{
	struct om_call *c = arg;
	om_sip_stx_release(stx);
	c->invite = NULL;
	c->calls->no_ack++;
	om_event(OM_EV_CALL_ENDED_BY_US, c->gateway, "call ended: no ACK for our 2xx", "call",
	         c->call_id, "gateway", c->gateway, "reason", "no-ack", NULL);
	c->state = CALL_CONFIRMED; /* the dialog exists (§13.3.1.4): BYE it */
	call_hangup(c, "no-ack");
}

static void on_cancel(struct om_sip_stx *stx, void *arg)
{
	struct om_call *c = arg;
	om_sip_stx_release(stx);
	c->invite = NULL;
	c->calls->canceled++;
	ended(c, "canceled");
}

static const struct om_sip_stx_handlers invite_h = { on_cancel, on_ack, on_noack };

static void on_answer_timer(struct om_sip_timer *t, void *arg)
{
	call_answer(arg);
}

/* Sends the 200 (after answer_delay_ms: 180 first). */
void call_answer(struct om_call *c)
{
	struct om_calls *cs = c->calls;
	if (c->state != CALL_ANSWERING || !c->invite)
		return;
	om_sip_stx_set_handlers(c->invite, &invite_h, c);
	if (cs->cfg->answer_delay_ms && !om_sip_timer_armed(&c->tm_answer) && !c->answer_ms) {
		c->answer_ms = 1; /* ringing once */
		om_sip_stx_reply(c->invite, 180, NULL, NULL);
		om_sip_timer_start(cs->stack, &c->tm_answer, cs->cfg->answer_delay_ms,
		                   on_answer_timer, c);
		return;
	}
	struct om_buf extra;
	om_buf_init(&extra);
	call_common_hdrs(c, &extra);
	om_sip_session_timer_hdrs(&c->se, &extra);
	if (c->test || c->diag)
		/* testcall/conntest.h: the mode the dial plan applied */
		om_buf_printf(&extra, "X-Openum-Security-Mode: %s\r\n",
		              c->mode == OM_SDP_SECURED      ? "Secured"
		              : c->mode == OM_SDP_SIPSECURED ? "SIPSecured"
		                                             : "Unsecured");
	struct om_sip_resp_opts o = { .to_tag = c->dlg->local_tag,
		                      .extra = om_buf_cstr(&extra),
		                      .content_type = "application/sdp",
		                      .body = om_str_c(c->local_sdp) };
	int rc = om_buf_err(&extra) ? ENOMEM : om_sip_stx_reply(c->invite, 200, NULL, &o);
	om_buf_free(&extra);
	if (rc) {
		ended(c, "no-memory");
		return;
	}
	c->answer_ms = om_now_ms();
	c->state = CALL_WAIT_ACK;
	cs->answered++;
	om_sip_dialog_table_add(cs->dialogs, c->dlg);
	om_log(OM_LOG_INFO, "call answered", "call", c->call_id, "gateway", c->gateway, "dialplan",
	       c->dialplan, "transport", c->tls ? "tls" : "tcp", "media",
	       c->sdp.srtp ? om_sdp_suite_name(c->sdp.remote_key.suite) : "rtp", "outcome",
	       c->diag ? "diagnostic" : om_route_kind_name(c->route.kind), "mailbox",
	       c->route.mailbox, "reason", om_route_reason_name(c->route.reason), "decided_by",
	       om_route_source_name(c->route.source), "caller",
	       c->route.anonymous ? "anonymous" : c->route.caller, NULL);
}

/* ------------------------------------------------------------------ */
/* Requests inside the dialog                                          */

static void on_reinvite_ack(struct om_sip_stx *stx, const struct om_sip_msg *ack, void *arg)
{
	struct om_call *c = arg;
	om_sip_stx_release(stx);
	c->reinvite = NULL;
	om_sip_dialog_offer_in_done(c->dlg);
}

static void on_reinvite_noack(struct om_sip_stx *stx, void *arg)
{
	struct om_call *c = arg;
	om_sip_stx_release(stx);
	c->reinvite = NULL;
	om_sip_dialog_offer_in_done(c->dlg);
}

static const struct om_sip_stx_handlers reinvite_h = { NULL, on_reinvite_ack, on_reinvite_noack };

/* Our previous SDP with another direction and the next version (same
 * port, codec and key: a hold or resume changes nothing else). */
static char *sdp_again(struct om_call *c, enum om_sdp_dir dir)
{
	struct om_buf b;
	const char *s = c->local_sdp;
	c->sess_ver++;
	om_buf_init(&b);
	while (s && *s) {
		const char *e = strstr(s, "\r\n");
		size_t n = e ? (size_t)(e - s) : strlen(s);
		struct om_str line = { s, n };
		if (n > 2 && !strncmp(s, "o=", 2)) {
			om_buf_printf(&b, "o=openum %" PRIu64 " %" PRIu64 " IN %s %s\r\n",
			              c->sess_id, c->sess_ver,
			              strchr(c->local_ip, ':') ? "IP6" : "IP4", c->local_ip);
		} else if (om_str_eq_c(line, "a=sendrecv") || om_str_eq_c(line, "a=sendonly") ||
		           om_str_eq_c(line, "a=recvonly") || om_str_eq_c(line, "a=inactive")) {
			om_buf_printf(&b, "a=%s\r\n", om_sdp_dir_name(dir));
		} else {
			om_buf_addstr(&b, line);
			om_buf_adds(&b, "\r\n");
		}
		s += n + (e ? 2 : 0);
	}
	if (om_buf_err(&b)) {
		om_buf_free(&b);
		return NULL;
	}
	return b.p;
}

static bool same_key(const struct om_sdp_crypto_key *a, const struct om_sdp_crypto_key *b)
{
	return a->suite == b->suite && a->keysalt_len == b->keysalt_len &&
	       !memcmp(a->keysalt, b->keysalt, a->keysalt_len);
}

/* A new offer from the gateway (re-INVITE or UPDATE with SDP): hold,
 * resume, a new address, new keys. Returns the status; *body our answer. */
static int new_offer(struct om_call *c, const struct om_sip_msg *m, char **body)
{
	struct om_sdp *offer = NULL;
	struct om_sdp_error e;
	struct om_sdp_result r;
	struct om_buf out;
	struct om_str sdp;
	int rc = om_sip_msg_sdp(m, &sdp);
	if (rc)
		return rc == ENOENT ? 415 : 400;
	rc = om_sdp_parse(sdp.p, sdp.len, &offer, &e);
	if (rc)
		return rc == ENOMEM ? 500 : 488;
	struct om_sdp_local l = { .addr = c->local_ip,
		                  .ipv6 = strchr(c->local_ip, ':') != NULL,
		                  .port = c->rtp_port,
		                  .sess_id = c->sess_id,
		                  .sess_version = c->sess_ver + 1 };
	om_buf_init(&out);
	rc = om_sdp_mode_apply(c->mode, c->tls ? OM_SDP_TLS : OM_SDP_TCP, offer, &l, &r, &out);
	om_sdp_free(offer);
	if (rc || r.kind != OM_SDP_ANSWER) {
		om_sdp_result_clear(&r);
		om_buf_free(&out);
		return rc == ENOMEM ? 500 : 488; /* the call goes on as it was */
	}
	bool keep = r.srtp == c->sdp.srtp && r.pt == c->sdp.pt && r.te_pt == c->sdp.te_pt &&
	            (!r.srtp || same_key(&r.remote_key, &c->sdp.remote_key));
	if (keep) {
		/* The same key from the peer: our key stays too, so both SRTP
		 * contexts keep their ROC and replay state. */
		char *again = sdp_again(c, r.dir);
		if (!again) {
			om_sdp_result_clear(&r);
			om_buf_free(&out);
			return 500;
		}
		r.local_key[0] = c->sdp.local_key[0];
		r.nlocal_key = c->sdp.nlocal_key;
		if (out.p)
			OPENSSL_cleanse(out.p, out.len);
		om_buf_free(&out);
		*body = again;
	} else {
		c->sess_ver++;
		*body = out.p;
	}
	om_sdp_result_clear(&c->sdp);
	c->sdp = r;
	if (c->local_sdp) {
		OPENSSL_cleanse(c->local_sdp, strlen(c->local_sdp));
		om_free(c->local_sdp);
	}
	c->local_sdp = om_strdup(*body);
	call_media_apply(c, &c->sdp);
	return c->local_sdp ? 200 : 500;
}

static void reply(struct om_sip_stx *stx, int status, const char *extra, const char *body)
{
	struct om_sip_resp_opts o = { .extra = extra,
		                      .content_type = body ? "application/sdp" : NULL,
		                      .body = om_str_c(body ? body : "") };
	om_sip_stx_reply(stx, status, NULL, &o);
}

static void target_refresh(struct om_call *c, struct om_sip_stx *stx, const struct om_sip_msg *m)
{
	struct om_buf extra;
	char *body = NULL;
	int st = om_sip_dialog_offer_in(c->dlg);
	om_buf_init(&extra);
	if (st) {
		if (st == 500)
			om_buf_printf(&extra, "Retry-After: %u\r\n", 1 + (unsigned)(c->id % 10));
		reply(stx, st, om_buf_cstr(&extra), NULL);
		om_buf_free(&extra);
		return;
	}
	struct om_sip_session_timer se;
	int sst = om_sip_session_timer_uas(m, c->calls->cfg->min_se,
	                                   c->se.interval ? c->se.interval : 0, &se);
	if (sst) {
		if (sst == 422)
			om_buf_printf(&extra, "Min-SE: %u\r\n", c->calls->cfg->min_se);
		reply(stx, sst, om_buf_cstr(&extra), NULL);
		om_sip_dialog_offer_in_done(c->dlg);
		om_buf_free(&extra);
		return;
	}
	c->reinvites++;
	if (m->body.len) {
		st = new_offer(c, m, &body);
	} else if (m->method == OM_SIP_METHOD_INVITE) {
		/* A re-INVITE without SDP: our current description as the offer
		 * (the ACK's answer is not needed: nothing changes on our side). */
		body = sdp_again(c, c->sdp.dir);
		st = body ? 200 : 500;
	} else {
		st = 200; /* an UPDATE without SDP: a session refresh */
	}
	if (st == 200) {
		call_common_hdrs(c, &extra);
		c->se = se;
		om_sip_session_timer_hdrs(&c->se, &extra);
	}
	reply(stx, st, om_buf_cstr(&extra), st == 200 ? body : NULL);
	if (body) {
		OPENSSL_cleanse(body, strlen(body));
		om_free(body);
	}
	om_buf_free(&extra);
	if (st == 200)
		se_arm(c);
	if (m->method == OM_SIP_METHOD_INVITE && st < 300) {
		/* Glare protection lasts until the ACK. */
		c->reinvite = stx;
		om_sip_stx_set_handlers(stx, &reinvite_h, c);
		return;
	}
	om_sip_dialog_offer_in_done(c->dlg);
}

void call_in_dialog(struct om_call *c, struct om_sip_stx *stx, const struct om_sip_msg *m)
{
	int st = om_sip_dialog_rx_request(c->dlg, m, om_sip_stx_src(stx));
	if (st) {
		reply(stx, st, NULL, NULL);
		om_sip_stx_release(stx);
		return;
	}
	switch (m->method) {
	case OM_SIP_METHOD_BYE:
		reply(stx, 200, NULL, NULL);
		om_sip_stx_release(stx);
		if (c->state != CALL_ENDED) {
			c->calls->ended_by_gateway++;
			ended(c, "gateway-bye");
		}
		return;
	case OM_SIP_METHOD_INVITE:
	case OM_SIP_METHOD_UPDATE:
		if (c->state != CALL_CONFIRMED &&
		    !(c->state == CALL_WAIT_ACK && m->method == OM_SIP_METHOD_UPDATE)) {
			/* §14.2: a re-INVITE before the ACK of the first one */
			reply(stx, 500, "Retry-After: 1\r\n", NULL);
			break;
		}
		target_refresh(c, stx, m);
		if (c->reinvite == stx)
			return; /* kept until its ACK */
		break;
	case OM_SIP_METHOD_INFO: {
		char digit;
		unsigned dur;
		int rc = om_sip_info_dtmf(m, &digit, &dur);
		if (rc == 0) {
			c->dtmf++;
			call_media_dtmf(c, digit, dur);
			reply(stx, 200, NULL, NULL);
		} else if (rc == ENOENT && m->body.len) {
			reply(stx, 415, "Accept: application/dtmf-relay, application/dtmf\r\n",
			      NULL);
		} else if (rc == ENOENT) {
			reply(stx, 200, NULL, NULL); /* an empty INFO: a keep-alive */
		} else {
			reply(stx, 400, NULL, NULL);
		}
		break;
	}
	case OM_SIP_METHOD_PRACK:
		reply(stx, 481, NULL, NULL); /* we never send reliable provisionals */
		break;
	default:
		reply(stx, 405, "Allow: INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, UPDATE\r\n", NULL);
		break;
	}
	om_sip_stx_release(stx);
}

/* ------------------------------------------------------------------ */
/* `openum calls`                                                       */

void call_json(const struct om_call *c, struct om_buf *b)
{
	char t[40];
	int64_t now = om_now_ms();
	om_time_format(c->start_ms, t, sizeof(t));
	om_buf_printf(b, "{\"id\":%" PRIu64 ",\"call_id\":", c->id);
	om_buf_json_str(b, c->call_id ? c->call_id : "");
	om_buf_printf(b, ",\"state\":\"%s\",\"gateway\":", call_state_name(c->state));
	om_buf_json_str(b, c->gateway);
	om_buf_adds(b, ",\"dialplan\":");
	om_buf_json_str(b, c->dialplan);
	om_buf_printf(b,
	              ",\"security_mode\":\"%s\",\"transport\":\"%s\",\"media\":\"%s\","
	              "\"srtp_suite\":\"%s\",\"rtp_port\":%u,\"remote_media\":",
	              c->mode == OM_SDP_SECURED      ? "secured"
	              : c->mode == OM_SDP_SIPSECURED ? "sipsecured"
	                                             : "unsecured",
	              c->tls ? "tls" : "tcp", c->sdp.srtp ? "srtp" : "rtp",
	              c->sdp.srtp ? om_sdp_suite_name(c->sdp.remote_key.suite) : "",
	              (unsigned)c->rtp_port);
	om_buf_json_str(b, c->remote_media);
	om_buf_printf(b, ",\"hold\":%s,\"outcome\":\"%s\",\"flow\":\"%s\",\"test\":%s,\"mailbox\":",
	              c->sdp.dir == OM_SDP_SENDRECV ? "false" : "true",
	              c->diag ? "diagnostic" : om_route_kind_name(c->route.kind),
	              call_flow_state(c), c->test ? "true" : "false");
	om_buf_json_str(b, c->route.mailbox);
	om_buf_printf(b, ",\"reason\":\"%s\",\"greeting\":\"%s\",\"decided_by\":\"%s\",\"cause\":",
	              om_route_reason_name(c->route.reason),
	              c->route.busy_greeting ? "busy" : "unavailable",
	              om_route_source_name(c->route.source));
	om_buf_json_str(b, c->route.cause);
	om_buf_adds(b, ",\"number\":");
	om_buf_json_str(b, c->route.number);
	om_buf_adds(b, ",\"caller\":");
	om_buf_json_str(b, c->route.caller);
	om_buf_adds(b, ",\"caller_name\":");
	om_buf_json_str(b, c->route.caller_name);
	om_buf_printf(b,
	              ",\"anonymous\":%s,\"caller_from\":\"%s\",\"session_expires\":%u,"
	              "\"reinvites\":%u,\"dtmf_info\":%u,\"started\":\"%s\",\"duration_s\":%lld}",
	              c->route.anonymous ? "true" : "false",
	              om_route_caller_source_name(c->route.caller_source), (unsigned)c->se.interval,
	              c->reinvites, c->dtmf, t, (long long)((now - c->start_ms) / 1000));
}
