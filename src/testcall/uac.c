/* uac.c — the test UAC's calls (RFC 3261 §13.2 the UAC side of INVITE,
 * §15 BYE, §9 CANCEL, §14 re-INVITE; RFC 3264 offer/answer; RFC 2976
 * INFO). See uac.h.
 *
 * Call states:
 *   CALLING --1xx--> RINGING --2xx (ACK sent)--> CONFIRMED --BYE--> ENDED
 *      \                 \--300..699--> REFUSED       \--BYE from the server--> ENDED
 *       \--timeout / transport error--> FAILED */
#include "testcall/uac_int.h"
#include "core/alloc.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

/* In-dialog requests (BYE, re-INVITE, INFO) a call may have waiting for
 * their final response at once. */
#define UAC_PEND_MAX 8

struct om_uac_call {
	struct om_uac_call *next, *prev;
	struct om_uac *u;
	struct om_uac_call_opts o;
	enum om_uac_state state;
	int status, provisional, bye_status, reinvite_status, info_status;
	unsigned reinvites_done;
	bool remote_bye;
	unsigned reinvites_in, twoxx;
	struct om_sip_ctx *invite_ctx;
	/* client transactions of in-dialog requests still waiting: their
	 * callbacks hold this call, so freeing it releases them first */
	struct om_sip_ctx *pend[UAC_PEND_MAX];
	struct om_sip_dialog *dlg;
	char call_id[64], local_tag[32];
	uint32_t invite_cseq;
	char *offer;      /* our SDP offer (INVITE, re-INVITEs) */
	char *answer;     /* the server's SDP */
	char *response;   /* the final response to the INVITE */
	char *ack;        /* the ACK sent for the 2xx (resent on retransmissions) */
	char info_in[64]; /* DTMF of the server's INFO requests */
	size_t ack_len;
	struct om_sdp_result sdp;
	bool has_sdp;
	uint64_t sess_id, sess_ver;
	struct om_sip_dest dest;
};

static int64_t mono_ms(void *arg)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct uac_conn *conn_by_id(struct om_uac *u, uint64_t id)
{
	for (size_t i = 0; i < u->nconns; i++)
		if (u->conns[i].id == id && !u->conns[i].closed)
			return &u->conns[i];
	return NULL;
}

static void trace(struct om_uac *u, bool out, const char *buf, size_t len)
{
	if (u->cfg.trace_h)
		u->cfg.trace_h(out, buf, len, u->cfg.arg);
}

static int u_send(const struct om_sip_dest *d, const char *buf, size_t len, void *arg)
{
	struct om_uac *u = arg;
	struct uac_conn *c = conn_by_id(u, d->conn_id);
	if (!c)
		c = conn_by_id(u, u->conns[0].id);
	if (!c)
		return EPIPE;
	trace(u, true, buf, len);
	return uac_conn_send(c, buf, len);
}

int om_uac_send_raw(struct om_uac *u, const char *buf, size_t len)
{
	trace(u, true, buf, len);
	return uac_conn_send(&u->conns[0], buf, len);
}

static const char *transport(const struct om_uac *u)
{
	return u->cfg.tls ? "TLS" : "TCP";
}

static void contact(const struct om_uac *u, const char *user, char *out, size_t len)
{
	snprintf(out, len, "%s:%s%s%s;transport=%s", u->cfg.tls ? "sips" : "sip", user ? user : "",
	         user && user[0] ? "@" : "", u->sent_by, u->cfg.tls ? "tls" : "tcp");
}

static char *dup_body(const struct om_sip_msg *m)
{
	char *s = om_malloc(m->body.len + 1);
	if (s) {
		memcpy(s, m->body.p, m->body.len);
		s[m->body.len] = '\0';
	}
	return s;
}

/* ------------------------------------------------------------------ */
/* SDP                                                                 */

static void local_sdp(const struct om_uac_call *c, struct om_sdp_local *l)
{
	const struct om_uac *u = c->u;
	l->addr = c->o.media_addr ? c->o.media_addr : u->cfg.bind ? u->cfg.bind : "127.0.0.1";
	l->ipv6 = strchr(l->addr, ':') != NULL;
	l->port = c->o.media_port ? c->o.media_port : 40000;
	l->sess_id = c->sess_id;
	l->sess_version = c->sess_ver;
}

/* Keeps only the a=crypto line (and the key) of the suite asked for
 * (RFC 4568 §5.1: the answerer picks among the lines offered). Takes the
 * offer text in b (secret: it holds keys). */
static int only_suite(struct om_uac_call *c, struct om_buf *b)
{
	struct om_sdp_result *r = &c->sdp;
	size_t k;
	for (k = 0; k < r->nlocal_key && r->local_key[k].suite != c->o.suite; k++)
		;
	if (k == r->nlocal_key) {
		om_buf_free(b);
		return ENOTSUP;
	}
	struct om_buf out;
	om_buf_init(&out);
	om_buf_secret(&out);
	const char *name = om_sdp_suite_name(c->o.suite);
	for (const char *s = om_buf_cstr(b); s && *s;) {
		const char *e = strstr(s, "\r\n");
		size_t n = e ? (size_t)(e - s) + 2 : strlen(s);
		const char *sp = memchr(s, ' ', n);
		bool keep = strncmp(s, "a=crypto:", 9) != 0 ||
		            (sp && (size_t)(s + n - sp) > strlen(name) &&
		             !strncmp(sp + 1, name, strlen(name)) && sp[1 + strlen(name)] == ' ');
		if (keep)
			om_buf_add(&out, s, n);
		s += n;
	}
	om_buf_free(b);
	if (om_buf_err(&out)) {
		om_buf_free(&out);
		return ENOMEM;
	}
	struct om_sdp_crypto_key keep = r->local_key[k];
	OPENSSL_cleanse(r->local_key, sizeof(r->local_key));
	r->local_key[0] = keep;
	r->nlocal_key = 1;
	c->offer = out.p;
	return c->offer ? 0 : ENOMEM;
}

/* Our offer for the INVITE (or NULL for a delayed offer). */
static int make_offer(struct om_uac_call *c)
{
	struct om_buf b;
	if (c->o.offer == OM_UAC_OFFER_NONE)
		return 0;
	if (c->o.offer == OM_UAC_OFFER_BODY) {
		c->offer = om_strdup(c->o.body ? c->o.body : "");
		return c->offer ? 0 : ENOMEM;
	}
	struct om_sdp_local l;
	local_sdp(c, &l);
	om_buf_init(&b);
	int rc = om_sdp_offer_build(c->o.offer == OM_UAC_OFFER_SAVP, &l, &c->sdp, &b);
	if (rc) {
		om_buf_free(&b);
		return rc;
	}
	c->has_sdp = true;
	if (c->o.offer == OM_UAC_OFFER_SAVP && c->o.suite)
		return only_suite(c, &b);
	c->offer = b.p ? b.p : om_strdup("");
	return c->offer ? 0 : ENOMEM;
}

/* The same offer with another direction and the next o= version. */
static char *offer_again(struct om_uac_call *c, enum om_sdp_dir dir)
{
	struct om_buf b;
	const char *s = c->offer;
	if (!s || !s[0])
		return NULL;
	c->sess_ver++;
	om_buf_init(&b);
	while (*s) {
		const char *e = strstr(s, "\r\n");
		size_t n = e ? (size_t)(e - s) : strlen(s);
		struct om_str line = { s, n };
		if (n > 2 && !strncmp(s, "o=", 2)) {
			unsigned long long id = 0, ver = 0;
			char user[64] = "-", rest[256] = "";
			if (sscanf(s, "o=%63s %llu %llu %255[^\r\n]", user, &id, &ver, rest) == 4)
				om_buf_printf(&b, "o=%s %llu %llu %s\r\n", user, id,
				              (unsigned long long)c->sess_ver, rest);
			else
				om_buf_printf(&b, OM_STR_FMT "\r\n", OM_STR_ARG(line));
		} else if (om_str_eq_c(line, "a=sendrecv") || om_str_eq_c(line, "a=sendonly") ||
		           om_str_eq_c(line, "a=recvonly") || om_str_eq_c(line, "a=inactive")) {
			om_buf_printf(&b, "a=%s\r\n", om_sdp_dir_name(dir));
		} else {
			om_buf_printf(&b, OM_STR_FMT "\r\n", OM_STR_ARG(line));
		}
		s += n + (e ? 2 : 0);
	}
	if (om_buf_err(&b)) {
		om_buf_free(&b);
		return NULL;
	}
	return b.p;
}

/* Our answer to an offer of the server (a delayed offer's 2xx, or its
 * re-INVITE): as permissive as the offer allows (SRTP when offered). */
static int answer_to(struct om_uac_call *c, const struct om_sip_msg *m, struct om_buf *out)
{
	struct om_sdp *offer = NULL;
	struct om_sdp_error e;
	if (!m->body.len || om_sdp_parse(m->body.p, m->body.len, &offer, &e) != 0)
		return EINVAL;
	bool savp = offer->nmedia && offer->media[0].proto_kind == OM_SDP_PROTO_SAVP;
	struct om_sdp_local l;
	local_sdp(c, &l);
	struct om_sdp_result r;
	int rc = om_sdp_mode_apply(savp ? OM_SDP_SECURED : OM_SDP_UNSECURED,
	                           c->u->cfg.tls ? OM_SDP_TLS : OM_SDP_TCP, offer, &l, &r, out);
	om_sdp_free(offer);
	if (rc == 0 && r.kind == OM_SDP_ANSWER) {
		om_sdp_result_clear(&c->sdp);
		c->sdp = r;
		c->has_sdp = true;
		return 0;
	}
	om_sdp_result_clear(&r);
	return rc ? rc : EINVAL;
}

/* ------------------------------------------------------------------ */
/* Responses to our requests                                           */

static int send_ack(struct om_uac_call *c, uint32_t cseq, const char *body)
{
	char br[40];
	struct om_buf b;
	om_sip_stack_branch(c->u->stack, br, sizeof(br));
	struct om_sip_dialog_req o = { .branch = br,
		                       .via_transport = transport(c->u),
		                       .via_sent_by = c->u->sent_by,
		                       .cseq = cseq,
		                       .body = om_str_c(body ? body : "") };
	om_buf_init(&b);
	int rc = om_sip_dialog_request(c->dlg, OM_SIP_METHOD_ACK, &o, &b);
	if (!rc) {
		om_free(c->ack);
		c->ack = b.p;
		c->ack_len = b.len;
		om_buf_init(&b);
		rc = om_sip_stack_send(c->u->stack, &c->dlg->dest, c->ack, c->ack_len);
	}
	om_buf_free(&b);
	return rc;
}

static void on_invite_2xx(struct om_uac_call *c, const struct om_sip_msg *resp)
{
	c->twoxx++;
	if (c->dlg) {
		/* A retransmitted 2xx: the same ACK again (RFC 6026). */
		if (c->ack && !c->o.no_ack)
			om_sip_stack_send(c->u->stack, &c->dlg->dest, c->ack, c->ack_len);
		return;
	}
	char ct[256];
	contact(c->u, c->o.from_user, ct, sizeof(ct));
	if (om_sip_dialog_uac_new(om_sip_ctx_request(c->invite_ctx), resp, &c->dest, ct, &c->dlg)) {
		c->state = OM_UAC_FAILED;
		return;
	}
	om_sip_dialog_table_add(c->u->dialogs, c->dlg);
	c->answer = dup_body(resp);
	struct om_buf ans;
	om_buf_init(&ans);
	const char *ack_body = NULL;
	if (c->o.offer == OM_UAC_OFFER_NONE) {
		if (c->o.ack_body)
			ack_body = c->o.ack_body;
		else if (answer_to(c, resp, &ans) == 0)
			ack_body = om_buf_cstr(&ans);
	} else if (c->has_sdp && resp->body.len) {
		struct om_sdp *a = NULL;
		struct om_sdp_error e;
		if (om_sdp_parse(resp->body.p, resp->body.len, &a, &e) == 0) {
			if (om_sdp_answer_take(&c->sdp, a) != 0 || c->sdp.kind == OM_SDP_REFUSED)
				c->has_sdp = false;
			om_sdp_free(a);
		}
	}
	c->state = OM_UAC_CONFIRMED;
	if (!c->o.no_ack)
		send_ack(c, c->invite_cseq, ack_body);
	om_buf_free(&ans);
}

static void on_invite_resp(struct om_sip_ctx *ctx, int err, const struct om_sip_msg *resp,
                           void *arg)
{
	struct om_uac_call *c = arg;
	if (err || !resp) {
		if (c->state == OM_UAC_CALLING || c->state == OM_UAC_RINGING)
			c->state = OM_UAC_FAILED;
		return;
	}
	if (resp->status < 200) {
		if (resp->status > c->provisional)
			c->provisional = resp->status;
		if (c->state == OM_UAC_CALLING)
			c->state = OM_UAC_RINGING;
		return;
	}
	if (!c->response) {
		c->response = om_malloc(resp->len + 1);
		if (c->response) {
			memcpy(c->response, resp->buf, resp->len);
			c->response[resp->len] = '\0';
		}
	}
	c->status = c->dlg ? c->status : resp->status;
	if (resp->status < 300)
		on_invite_2xx(c, resp);
	else if (c->state == OM_UAC_CALLING || c->state == OM_UAC_RINGING)
		c->state = OM_UAC_REFUSED;
}

/* An in-dialog transaction of c has its final response (or timed out): it
 * is released, and no longer c's to release when c is freed. */
static void pend_end(struct om_uac_call *c, struct om_sip_ctx *ctx)
{
	for (size_t i = 0; i < UAC_PEND_MAX; i++)
		if (c->pend[i] == ctx)
			c->pend[i] = NULL;
	om_sip_ctx_release(ctx);
}

static void on_bye_resp(struct om_sip_ctx *ctx, int err, const struct om_sip_msg *resp, void *arg)
{
	struct om_uac_call *c = arg;
	if (resp && resp->status < 200)
		return;
	c->bye_status = resp ? resp->status : 408;
	c->state = OM_UAC_ENDED;
	pend_end(c, ctx);
}

static void on_reinvite_resp(struct om_sip_ctx *ctx, int err, const struct om_sip_msg *resp,
                             void *arg)
{
	struct om_uac_call *c = arg;
	if (resp && resp->status < 200)
		return;
	c->reinvite_status = resp ? resp->status : 408;
	c->reinvites_done++;
	if (resp && resp->status < 300) {
		uint32_t cseq;
		struct om_str cm;
		enum om_sip_method cmm;
		om_sip_dialog_rx_response(c->dlg, resp);
		if (om_sip_msg_cseq(resp, &cseq, &cm, &cmm) == 0)
			send_ack(c, cseq, NULL);
	}
	om_sip_dialog_offer_out_done(c->dlg);
	pend_end(c, ctx);
}

static void on_info_resp(struct om_sip_ctx *ctx, int err, const struct om_sip_msg *resp, void *arg)
{
	struct om_uac_call *c = arg;
	if (resp && resp->status < 200)
		return;
	c->info_status = resp ? resp->status : 408;
	pend_end(c, ctx);
}

/* ------------------------------------------------------------------ */
/* Requests from the server                                            */

static struct om_uac_call *call_of(struct om_uac *u, const struct om_sip_dialog *d)
{
	for (struct om_uac_call *c = u->calls; c; c = c->next)
		if (c->dlg == d)
			return c;
	return NULL;
}

/* The digit of an INFO (application/dtmf-relay "Signal=5", or
 * application/dtmf "5"), kept in order. */
static void info_digit(struct om_uac_call *c, const struct om_sip_msg *req)
{
	const char *b = req->body.p, *end = b + req->body.len;
	char d = 0;
	for (const char *p = b; p && p < end; p++) {
		if ((size_t)(end - p) > 7 && !strncasecmp(p, "Signal=", 7)) {
			p += 7;
			while (p < end && *p == ' ')
				p++;
			if (p < end)
				d = *p;
			if (d == '1' && p + 1 < end && (p[1] == '0' || p[1] == '1'))
				d = p[1] == '0' ? '*' : '#';
			break;
		}
	}
	if (!d && req->body.len && req->body.len <= 4)
		d = b[0];
	if (!d || !strchr("0123456789*#ABCDabcd", d))
		return;
	size_t l = strlen(c->info_in);
	if (l + 1 < sizeof(c->info_in))
		c->info_in[l] = d;
}

static void u_request(struct om_sip_stx *stx, const struct om_sip_msg *req, void *arg)
{
	struct om_uac *u = arg;
	struct om_sip_dialog *d = om_sip_dialog_table_find(u->dialogs, req);
	struct om_uac_call *c = d ? call_of(u, d) : NULL;
	int st = 200;
	struct om_buf extra, body;
	om_buf_init(&extra);
	om_buf_init(&body);
	if (!c) {
		st = req->method == OM_SIP_METHOD_OPTIONS ? 200 : 481;
		goto reply;
	}
	if ((st = om_sip_dialog_rx_request(d, req, om_sip_stx_src(stx))) != 0)
		goto reply;
	st = 200;
	switch (req->method) {
	case OM_SIP_METHOD_BYE:
		c->remote_bye = true;
		c->state = OM_UAC_ENDED;
		break;
	case OM_SIP_METHOD_INFO:
		info_digit(c, req);
		break;
	case OM_SIP_METHOD_INVITE:
	case OM_SIP_METHOD_UPDATE: {
		c->reinvites_in++;
		char ct[256];
		contact(u, c->o.from_user, ct, sizeof(ct));
		om_buf_printf(&extra, "Contact: <%s>\r\n", ct);
		if (req->body.len) {
			if (answer_to(c, req, &body) != 0)
				st = 488;
		} else if (req->method == OM_SIP_METHOD_INVITE) {
			char *again = offer_again(c, OM_SDP_SENDRECV);
			if (again)
				om_buf_adds(&body, again);
			om_free(again);
		}
		break;
	}
	default:
		break;
	}
reply:;
	struct om_sip_resp_opts o = { .extra = extra.len ? om_buf_cstr(&extra) : NULL,
		                      .body = { body.p, st < 300 ? body.len : 0 } };
	om_sip_stx_reply(stx, st, NULL, &o);
	om_sip_stx_release(stx);
	om_buf_free(&extra);
	om_buf_free(&body);
}

void uac_recv(struct om_uac *u, struct uac_conn *conn, const char *buf, size_t len)
{
	struct om_sip_msg *m = NULL;
	enum om_sip_reason r;
	trace(u, false, buf, len);
	if (om_sip_msg_parse(buf, len, NULL, &m, &r) != 0)
		return;
	if (m->is_request && om_sip_msg_validate(m, &r) != 0) {
		om_sip_msg_free(m);
		return;
	}
	struct om_sip_dest src = { .conn_id = conn->id, .peer_id = 1, .reliable = true };
	om_sip_stack_recv(u->stack, m, &src);
	om_sip_msg_free(m);
}

/* ------------------------------------------------------------------ */
/* Calls                                                               */

int om_uac_call(struct om_uac *u, const struct om_uac_call_opts *o, struct om_uac_call **out)
{
	struct om_uac_call *c = om_calloc(1, sizeof(*c));
	struct om_buf req, extra;
	char br[40], ct[256], from[256], to[512];
	int rc;
	if (!c)
		return ENOMEM;
	c->u = u;
	c->o = *o;
	c->state = OM_UAC_CALLING;
	c->invite_cseq = 1;
	c->sess_id = (uint64_t)time(NULL);
	c->sess_ver = 1;
	c->dest = (struct om_sip_dest){ .conn_id = u->conns[0].id, .peer_id = 1, .reliable = true };
	om_sip_stack_tag(u->stack, c->local_tag, sizeof(c->local_tag));
	om_sip_stack_tag(u->stack, c->call_id, sizeof(c->call_id));
	snprintf(c->call_id + strlen(c->call_id), sizeof(c->call_id) - strlen(c->call_id), "@%s",
	         u->domain);
	if ((rc = make_offer(c)) != 0) {
		om_free(c);
		return rc;
	}
	om_sip_stack_branch(u->stack, br, sizeof(br));
	contact(u, o->from_user, ct, sizeof(ct));
	snprintf(from, sizeof(from), "<%s:%s@%s>", u->cfg.tls ? "sips" : "sip",
	         o->from_user ? o->from_user : "gw", u->domain);
	snprintf(to, sizeof(to), "<%s>", o->to ? o->to : o->ruri);
	om_buf_init(&extra);
	om_buf_printf(&extra,
	              "Contact: <%s>\r\nAllow: INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, UPDATE\r\n"
	              "Supported: timer\r\nUser-Agent: om-testcall\r\n",
	              ct);
	if (o->session_expires)
		om_buf_printf(&extra, "Session-Expires: %u\r\n", (unsigned)o->session_expires);
	if (o->extra)
		om_buf_adds(&extra, o->extra);
	struct om_sip_req_opts ro = {
		.ruri = o->ruri,
		.via_transport = transport(u),
		.via_sent_by = u->sent_by,
		.branch = br,
		.from = from,
		.from_tag = c->local_tag,
		.to = to,
		.call_id = c->call_id,
		.cseq = c->invite_cseq,
		.extra = om_buf_cstr(&extra),
		.content_type = o->offer == OM_UAC_OFFER_BODY ? o->content_type : NULL,
		.body = om_str_c(c->offer ? c->offer : ""),
	};
	om_buf_init(&req);
	rc = om_buf_err(&extra) ? ENOMEM : om_sip_request_build(OM_SIP_METHOD_INVITE, &ro, &req);
	if (!rc)
		rc = om_sip_ctx_send(u->stack, &c->dest, req.p, req.len, on_invite_resp, c,
		                     &c->invite_ctx);
	om_buf_free(&req);
	om_buf_free(&extra);
	if (rc) {
		om_sdp_result_clear(&c->sdp);
		om_free(c->offer);
		om_free(c);
		return rc;
	}
	c->next = u->calls;
	if (u->calls)
		u->calls->prev = c;
	u->calls = c;
	*out = c;
	return 0;
}

static void on_options_resp(struct om_sip_ctx *ctx, int err, const struct om_sip_msg *resp,
                            void *arg)
{
	struct om_uac *u = arg;
	if (resp && resp->status < 200)
		return;
	u->options_status = resp ? resp->status : 408;
	snprintf(u->options_reason, sizeof(u->options_reason), "%.*s",
	         resp ? (int)resp->status_phrase.len : 0, resp ? resp->status_phrase.p : "");
	om_sip_ctx_release(ctx);
}

int om_uac_options(struct om_uac *u, const char *ruri)
{
	char br[40], tag[32], cid[200], from[256], to[512];
	struct om_buf req;
	om_sip_stack_branch(u->stack, br, sizeof(br));
	om_sip_stack_tag(u->stack, tag, sizeof(tag));
	om_sip_stack_tag(u->stack, cid, sizeof(cid));
	snprintf(cid + strlen(cid), sizeof(cid) - strlen(cid), "@%s", u->domain);
	snprintf(from, sizeof(from), "<%s:ping@%s>", u->cfg.tls ? "sips" : "sip", u->domain);
	snprintf(to, sizeof(to), "<%s>", ruri);
	struct om_sip_req_opts ro = {
		.ruri = ruri,
		.via_transport = transport(u),
		.via_sent_by = u->sent_by,
		.branch = br,
		.from = from,
		.from_tag = tag,
		.to = to,
		.call_id = cid,
		.cseq = 1,
		.extra = "Accept: application/sdp\r\nUser-Agent: om-testcall\r\n",
	};
	struct om_sip_dest d = { .conn_id = u->conns[0].id, .peer_id = 1, .reliable = true };
	struct om_sip_ctx *ctx;
	u->options_status = 0;
	u->options_reason[0] = '\0';
	om_buf_init(&req);
	int rc = om_sip_request_build(OM_SIP_METHOD_OPTIONS, &ro, &req);
	if (!rc)
		rc = om_sip_ctx_send(u->stack, &d, req.p, req.len, on_options_resp, u, &ctx);
	om_buf_free(&req);
	return rc;
}

int om_uac_options_status(const struct om_uac *u, char *reason, size_t len)
{
	if (reason && len)
		snprintf(reason, len, "%s", u->options_reason);
	return u->options_status;
}

static void call_free(struct om_uac_call *c)
{
	if (c->dlg) {
		om_sip_dialog_table_del(c->u->dialogs, c->dlg);
		om_sip_dialog_free(c->dlg);
	}
	om_sip_ctx_release(c->invite_ctx);
	for (size_t i = 0; i < UAC_PEND_MAX; i++)
		om_sip_ctx_release(c->pend[i]);
	om_sdp_result_clear(&c->sdp);
	om_free(c->offer);
	om_free(c->answer);
	om_free(c->response);
	om_free(c->ack);
	om_free(c);
}

void om_uac_call_free(struct om_uac_call *c)
{
	if (!c)
		return;
	if (c->prev)
		c->prev->next = c->next;
	else
		c->u->calls = c->next;
	if (c->next)
		c->next->prev = c->prev;
	call_free(c);
}

void om_uac_call_info(const struct om_uac_call *c, struct om_uac_call_info *i)
{
	memset(i, 0, sizeof(*i));
	i->state = c->state;
	i->status = c->status;
	i->provisional = c->provisional;
	i->remote_bye = c->remote_bye;
	i->bye_status = c->bye_status;
	i->reinvite_status = c->reinvite_status;
	i->reinvites_done = c->reinvites_done;
	i->info_status = c->info_status;
	i->reinvites_in = c->reinvites_in;
	i->twoxx_received = c->twoxx;
	i->call_id = c->call_id;
	i->local_tag = c->local_tag;
	i->remote_tag = c->dlg ? c->dlg->remote_tag : "";
	i->answer_sdp = c->answer ? c->answer : "";
	i->response = c->response ? c->response : "";
	i->sdp = c->has_sdp ? &c->sdp : NULL;
	i->info_digits_in = c->info_in;
}

static int in_dialog(struct om_uac_call *c, enum om_sip_method m, const char *ctype,
                     const char *body, om_sip_resp_h h)
{
	char br[40];
	struct om_buf b;
	om_sip_stack_branch(c->u->stack, br, sizeof(br));
	struct om_sip_dialog_req o = { .branch = br,
		                       .via_transport = transport(c->u),
		                       .via_sent_by = c->u->sent_by,
		                       .content_type = ctype,
		                       .body = om_str_c(body ? body : "") };
	size_t slot = 0;
	while (slot < UAC_PEND_MAX && c->pend[slot])
		slot++;
	if (slot == UAC_PEND_MAX)
		return EBUSY;
	om_buf_init(&b);
	int rc = om_sip_dialog_request(c->dlg, m, &o, &b);
	if (!rc)
		rc = om_sip_ctx_send(c->u->stack, &c->dlg->dest, b.p, b.len, h, c, &c->pend[slot]);
	om_buf_free(&b);
	return rc;
}

int om_uac_call_bye(struct om_uac_call *c)
{
	if (c->state != OM_UAC_CONFIRMED || !c->dlg)
		return EINVAL;
	return in_dialog(c, OM_SIP_METHOD_BYE, NULL, NULL, on_bye_resp);
}

int om_uac_call_cancel(struct om_uac_call *c)
{
	return c->invite_ctx ? om_sip_ctx_cancel(c->invite_ctx) : EINVAL;
}

int om_uac_call_reinvite(struct om_uac_call *c, enum om_sdp_dir dir)
{
	if (c->state != OM_UAC_CONFIRMED || !c->dlg)
		return EINVAL;
	if (om_sip_dialog_offer_out(c->dlg) != 0)
		return EBUSY;
	char *sdp = offer_again(c, dir);
	int rc = in_dialog(c, OM_SIP_METHOD_INVITE, NULL, sdp, on_reinvite_resp);
	om_free(sdp);
	if (rc)
		om_sip_dialog_offer_out_done(c->dlg);
	return rc;
}

int om_uac_call_info_dtmf(struct om_uac_call *c, char digit, unsigned duration_ms)
{
	char body[64];
	if (c->state != OM_UAC_CONFIRMED || !c->dlg)
		return EINVAL;
	snprintf(body, sizeof(body), "Signal=%c\r\nDuration=%u\r\n", digit, duration_ms);
	return in_dialog(c, OM_SIP_METHOD_INFO, "application/dtmf-relay", body, on_info_resp);
}

/* ------------------------------------------------------------------ */
/* The agent                                                           */

int om_uac_new(const struct om_uac_cfg *cfg, int timeout_ms, struct om_uac **out, char *err,
               size_t errlen)
{
	struct om_uac *u = om_calloc(1, sizeof(*u));
	int rc;
	if (!u) {
		snprintf(err, errlen, "out of memory");
		return ENOMEM;
	}
	u->cfg = *cfg;
	u->lfd = -1;
	u->conns[0].fd = -1;
	snprintf(u->domain, sizeof(u->domain), "%s",
	         cfg->domain ? cfg->domain
	         : cfg->bind ? cfg->bind
	                     : "127.0.0.1");
	if (cfg->listen_port)
		snprintf(u->sent_by, sizeof(u->sent_by), "%s:%u", u->domain, cfg->listen_port);
	else
		snprintf(u->sent_by, sizeof(u->sent_by), "%s", u->domain);
	if (cfg->tls && (rc = uac_tls_ctx(cfg, false, &u->cli_ctx, err, errlen)) != 0)
		goto fail;
	if (cfg->tls && cfg->listen_port &&
	    (rc = uac_tls_ctx(cfg, true, &u->srv_ctx, err, errlen)) != 0)
		goto fail;
	struct om_sip_stack_cfg sc = { .t1_ms = cfg->t1_ms, .via_sent_by = u->sent_by };
	struct om_sip_stack_handlers h = {
		.send_h = u_send, .now_h = mono_ms, .request_h = u_request, .arg = u
	};
	if ((rc = om_sip_stack_new(&sc, &h, &u->stack)) != 0 ||
	    (rc = om_sip_dialog_table_new(&u->dialogs)) != 0) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	if (cfg->listen_port && (rc = uac_listen(u, err, errlen)) != 0)
		goto fail;
	u->conns[0].id = ++u->next_conn_id;
	u->nconns = 1;
	if ((rc = uac_conn_open(u, &u->conns[0], timeout_ms, err, errlen)) != 0)
		goto fail;
	*out = u;
	return 0;
fail:
	om_uac_free(u);
	return rc;
}

void om_uac_free(struct om_uac *u)
{
	if (!u)
		return;
	while (u->calls) {
		struct om_uac_call *c = u->calls;
		u->calls = c->next;
		call_free(c);
	}
	om_sip_stack_free(u->stack);
	om_sip_dialog_table_free(u->dialogs);
	for (size_t i = 0; i < u->nconns; i++)
		uac_conn_close(&u->conns[i]);
	if (u->lfd >= 0)
		close(u->lfd);
	om_tls_ctx_free(u->cli_ctx);
	om_tls_ctx_free(u->srv_ctx);
	om_free(u);
}
