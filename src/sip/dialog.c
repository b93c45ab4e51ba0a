/* dialog.c — SIP dialogs (RFC 3261 §12, §14), the offer/answer glare
 * rules of re-INVITE and UPDATE (RFC 3311 §5.2), session timers (RFC 4028
 * §9, §10) and DTMF bodies of INFO. See dialog.h.
 *
 * Dialog states as the owner sees them (this file keeps the data, the
 * owner keeps the state):
 *
 *   INVITE --2xx sent/received--> confirmed --BYE either way--> gone
 *                                  |   ^
 *             re-INVITE / UPDATE   |   | answered (and ACKed)
 *             (offer_in/offer_out) v   |
 *                                 offer in flight
 *
 * A second offer while one is in flight is glare: 491 when ours is
 * pending, 500 + Retry-After when theirs is (§14.2). */
#include "sip/sip.h"
#include "sip/sip_int.h"
#include "core/alloc.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* Construction                                                        */

void om_sip_dialog_free(struct om_sip_dialog *d)
{
	if (!d)
		return;
	om_free(d->call_id);
	om_free(d->local_tag);
	om_free(d->remote_tag);
	om_free(d->local_uri);
	om_free(d->remote_uri);
	om_free(d->remote_target);
	om_free(d->local_contact);
	for (size_t i = 0; i < d->nroute; i++)
		om_free(d->route[i]);
	om_free(d->route);
	om_free(d);
}

/* "display <uri>" of an address (header parameters such as the tag are
 * left out: the dialog adds its tags itself). */
static char *name_addr(const struct om_sip_addr *a)
{
	struct om_buf b;
	om_buf_init(&b);
	if (a->display.len) {
		om_buf_addstr(&b, a->display);
		om_buf_adds(&b, " ");
	}
	om_buf_adds(&b, "<");
	om_buf_addstr(&b, a->uri.raw);
	om_buf_adds(&b, ">");
	if (om_buf_err(&b)) {
		om_buf_free(&b);
		return NULL;
	}
	return b.p;
}

/* Exactly one Contact, a sip: or sips: URI (RFC 3261 §8.1.1.8, §12.1.1). */
static int contact_uri(const struct om_sip_msg *m, struct om_str *out)
{
	struct om_sip_iter it = { 0 };
	struct om_sip_addr a;
	if (om_sip_msg_addr_next(m, OM_SIP_HDR_CONTACT, &it, &a) != 0 || a.star ||
	    (a.uri.scheme != OM_SIP_SCHEME_SIP && a.uri.scheme != OM_SIP_SCHEME_SIPS))
		return EINVAL;
	struct om_sip_addr more;
	if (om_sip_msg_addr_next(m, OM_SIP_HDR_CONTACT, &it, &more) == 0)
		return EINVAL;
	*out = a.uri.raw;
	return 0;
}

/* The Record-Route URIs of m, in order, or reversed. */
static int route_set(struct om_sip_dialog *d, const struct om_sip_msg *m, bool reverse)
{
	struct om_sip_iter it = { 0 };
	struct om_sip_addr a;
	size_t n = 0;
	int rc;
	while ((rc = om_sip_msg_addr_next(m, OM_SIP_HDR_RECORD_ROUTE, &it, &a)) == 0) {
		if (a.uri.scheme != OM_SIP_SCHEME_SIP && a.uri.scheme != OM_SIP_SCHEME_SIPS)
			return EINVAL;
		n++;
	}
	if (rc != ENOENT)
		return EINVAL;
	if (!n)
		return 0;
	if (n > 64)
		return EINVAL;
	d->route = om_calloc(n, sizeof(*d->route));
	if (!d->route)
		return ENOMEM;
	d->nroute = n; /* free() walks all n; slots not filled yet are NULL */
	memset(&it, 0, sizeof(it));
	for (size_t i = 0; i < n; i++) {
		if (om_sip_msg_addr_next(m, OM_SIP_HDR_RECORD_ROUTE, &it, &a) != 0)
			return EINVAL;
		size_t at = reverse ? n - 1 - i : i;
		d->route[at] = om_str_dup(a.uri.raw);
		if (!d->route[at])
			return ENOMEM;
	}
	return 0;
}

static int dialog_common(const struct om_sip_msg *req, const struct om_sip_msg *contact_from,
                         const struct om_sip_dest *dest, const char *local_contact,
                         struct om_sip_dialog **out)
{
	struct om_sip_dialog *d = om_calloc(1, sizeof(*d));
	struct om_str target;
	if (!d)
		return ENOMEM;
	d->dest = *dest;
	if (contact_uri(contact_from, &target) != 0) {
		om_free(d);
		return EINVAL;
	}
	d->call_id = om_str_dup(om_sip_msg_call_id(req));
	d->remote_target = om_str_dup(target);
	d->local_contact = om_strdup(local_contact ? local_contact : "");
	if (!d->call_id || !d->remote_target || !d->local_contact) {
		om_sip_dialog_free(d);
		return ENOMEM;
	}
	*out = d;
	return 0;
}

int om_sip_dialog_uas_new(const struct om_sip_msg *invite, const struct om_sip_dest *src,
                          const char *local_tag, const char *local_contact,
                          struct om_sip_dialog **out)
{
	struct om_sip_addr from, to;
	struct om_sip_uri ruri;
	struct om_sip_dialog *d;
	uint32_t cseq;
	struct om_str cm;
	enum om_sip_method cmm;
	int rc;
	if (!local_tag || !local_tag[0] || om_sip_msg_from(invite, &from) != 0 ||
	    om_sip_msg_to(invite, &to) != 0 || om_sip_msg_cseq(invite, &cseq, &cm, &cmm) != 0 ||
	    om_sip_uri_parse(invite->ruri, 0, &ruri) != 0)
		return EINVAL;
	rc = dialog_common(invite, invite, src, local_contact, &d);
	if (rc)
		return rc;
	d->uas = true;
	d->secure = ruri.scheme == OM_SIP_SCHEME_SIPS;
	d->remote_cseq = cseq;
	d->has_remote_cseq = true;
	d->local_cseq = 0;
	d->local_tag = om_strdup(local_tag);
	d->remote_tag = om_str_dup(from.tag); /* "" for an RFC 2543 peer */
	d->local_uri = name_addr(&to);
	d->remote_uri = name_addr(&from);
	if (!d->local_tag || !d->remote_tag || !d->local_uri || !d->remote_uri) {
		om_sip_dialog_free(d);
		return ENOMEM;
	}
	rc = route_set(d, invite, false);
	if (rc) {
		om_sip_dialog_free(d);
		return rc;
	}
	*out = d;
	return 0;
}

int om_sip_dialog_uac_new(const struct om_sip_msg *invite, const struct om_sip_msg *resp,
                          const struct om_sip_dest *dest, const char *local_contact,
                          struct om_sip_dialog **out)
{
	struct om_sip_addr from, to;
	struct om_sip_uri ruri;
	struct om_sip_dialog *d;
	uint32_t cseq;
	struct om_str cm;
	enum om_sip_method cmm;
	int rc;
	if (om_sip_msg_from(invite, &from) != 0 || !from.has_tag || om_sip_msg_to(resp, &to) != 0 ||
	    !to.has_tag || om_sip_msg_cseq(invite, &cseq, &cm, &cmm) != 0 ||
	    om_sip_uri_parse(invite->ruri, 0, &ruri) != 0)
		return EINVAL;
	rc = dialog_common(invite, resp, dest, local_contact, &d);
	if (rc)
		return rc;
	d->uas = false;
	d->secure = ruri.scheme == OM_SIP_SCHEME_SIPS;
	d->local_cseq = cseq;
	d->local_tag = om_str_dup(from.tag);
	d->remote_tag = om_str_dup(to.tag);
	d->local_uri = name_addr(&from);
	d->remote_uri = name_addr(&to);
	if (!d->local_tag || !d->remote_tag || !d->local_uri || !d->remote_uri) {
		om_sip_dialog_free(d);
		return ENOMEM;
	}
	rc = route_set(d, resp, true);
	if (rc) {
		om_sip_dialog_free(d);
		return rc;
	}
	*out = d;
	return 0;
}

/* ------------------------------------------------------------------ */
/* In-dialog requests                                                  */

static int set_target(struct om_sip_dialog *d, const struct om_sip_msg *m)
{
	struct om_str target;
	if (!om_sip_msg_hdr(m, OM_SIP_HDR_CONTACT))
		return 0; /* no Contact: the target stays (RFC 3311 §5.1 allows it) */
	if (contact_uri(m, &target) != 0)
		return EINVAL;
	char *t = om_str_dup(target);
	if (!t)
		return ENOMEM;
	om_free(d->remote_target);
	d->remote_target = t;
	return 0;
}

int om_sip_dialog_rx_request(struct om_sip_dialog *d, const struct om_sip_msg *req,
                             const struct om_sip_dest *src)
{
	uint32_t cseq;
	struct om_str cm;
	enum om_sip_method cmm;
	if (src->peer_id != d->dest.peer_id)
		return 481;
	if (om_sip_msg_cseq(req, &cseq, &cm, &cmm) != 0)
		return 400;
	if (d->has_remote_cseq && cseq < d->remote_cseq)
		return 500;
	if (req->method == OM_SIP_METHOD_INVITE || req->method == OM_SIP_METHOD_UPDATE) {
		int rc = set_target(d, req);
		if (rc)
			return rc == ENOMEM ? 500 : 400;
	}
	d->remote_cseq = cseq;
	d->has_remote_cseq = true;
	d->dest.conn_id = src->conn_id;
	return 0;
}

void om_sip_dialog_rx_response(struct om_sip_dialog *d, const struct om_sip_msg *resp)
{
	if (resp->status >= 200 && resp->status < 300)
		(void)set_target(d, resp); /* a bad Contact keeps the old target */
}

static bool uri_is_loose(const char *uri)
{
	struct om_sip_uri u;
	struct om_str v;
	if (om_sip_uri_parse(om_str_c(uri), 0, &u) != 0)
		return false;
	return om_sip_param_find(u.params, "lr", &v) == 0;
}

int om_sip_dialog_request(struct om_sip_dialog *d, enum om_sip_method m,
                          const struct om_sip_dialog_req *o, struct om_buf *out)
{
	struct om_buf route, extra, to;
	const char *ruri = d->remote_target;
	size_t first = 0;
	int rc;
	if (m == OM_SIP_METHOD_ACK && !o->cseq)
		return EINVAL;
	om_buf_init(&route);
	om_buf_init(&extra);
	om_buf_init(&to);
	if (d->nroute && !uri_is_loose(d->route[0])) {
		/* A strict router (RFC 2543): it is the Request-URI, and the
		 * remote target goes last in Route. */
		ruri = d->route[0];
		first = 1;
	}
	for (size_t i = first; i < d->nroute; i++)
		om_buf_printf(&route, "Route: <%s>\r\n", d->route[i]);
	if (first)
		om_buf_printf(&route, "Route: <%s>\r\n", d->remote_target);
	om_buf_addstr(&extra, (struct om_str){ route.p, route.len });
	if ((m == OM_SIP_METHOD_INVITE || m == OM_SIP_METHOD_UPDATE) && d->local_contact[0])
		om_buf_printf(&extra, "Contact: <%s>\r\n", d->local_contact);
	if (o->extra)
		om_buf_adds(&extra, o->extra);
	om_buf_adds(&to, d->remote_uri);
	if (d->remote_tag[0])
		om_buf_printf(&to, ";tag=%s", d->remote_tag);
	if (om_buf_err(&route) || om_buf_err(&extra) || om_buf_err(&to)) {
		rc = ENOMEM;
		goto out;
	}
	uint32_t cseq = o->cseq;
	if (m != OM_SIP_METHOD_ACK && m != OM_SIP_METHOD_CANCEL && !cseq) {
		if (d->local_cseq >= 0x7fffffffu) {
			rc = ERANGE;
			goto out;
		}
		cseq = ++d->local_cseq;
	}
	struct om_sip_req_opts ro = {
		.ruri = ruri,
		.via_transport = o->via_transport,
		.via_sent_by = o->via_sent_by,
		.branch = o->branch,
		.from = d->local_uri,
		.from_tag = d->local_tag,
		.to = om_buf_cstr(&to),
		.call_id = d->call_id,
		.cseq = cseq,
		.extra = extra.len ? om_buf_cstr(&extra) : NULL,
		.content_type = o->content_type,
		.body = o->body,
	};
	rc = om_sip_request_build(m, &ro, out);
out:
	om_buf_free(&route);
	om_buf_free(&extra);
	om_buf_free(&to);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Glare                                                               */

int om_sip_dialog_offer_in(struct om_sip_dialog *d)
{
	if (d->offer_out)
		return 491;
	if (d->offer_in)
		return 500;
	d->offer_in = true;
	return 0;
}

void om_sip_dialog_offer_in_done(struct om_sip_dialog *d)
{
	d->offer_in = false;
}

int om_sip_dialog_offer_out(struct om_sip_dialog *d)
{
	if (d->offer_out || d->offer_in)
		return EBUSY;
	d->offer_out = true;
	return 0;
}

void om_sip_dialog_offer_out_done(struct om_sip_dialog *d)
{
	d->offer_out = false;
}

uint32_t om_sip_dialog_glare_retry_ms(const struct om_sip_dialog *d, uint32_t rnd)
{
	/* The Call-ID's owner is the UAC of the dialog-forming INVITE. */
	if (!d->uas)
		return 2100 + rnd % 1901; /* 2.1 .. 4 s, in 1 ms steps */
	return rnd % 2001;                /* 0 .. 2 s */
}

/* ------------------------------------------------------------------ */
/* The table                                                           */

struct om_sip_dialog_table {
	struct om_htab h;
};

int om_sip_dialog_table_new(struct om_sip_dialog_table **out)
{
	struct om_sip_dialog_table *t = om_calloc(1, sizeof(*t));
	if (!t || om_htab_init(&t->h, 256)) {
		om_free(t);
		return ENOMEM;
	}
	*out = t;
	return 0;
}

void om_sip_dialog_table_free(struct om_sip_dialog_table *t)
{
	if (!t)
		return;
	om_htab_fini(&t->h);
	om_free(t);
}

static uint64_t dkey(struct om_str call_id, struct om_str local, struct om_str remote)
{
	uint64_t h = om_hash_bytes(0, call_id.p, call_id.len);
	h = om_hash_bytes(h, "|", 1);
	h = om_hash_bytes(h, local.p, local.len);
	h = om_hash_bytes(h, "|", 1);
	return om_hash_bytes(h, remote.p, remote.len);
}

void om_sip_dialog_table_add(struct om_sip_dialog_table *t, struct om_sip_dialog *d)
{
	om_htab_add(&t->h, &d->node,
	            dkey(om_str_c(d->call_id), om_str_c(d->local_tag), om_str_c(d->remote_tag)));
}

void om_sip_dialog_table_del(struct om_sip_dialog_table *t, struct om_sip_dialog *d)
{
	om_htab_del(&t->h, &d->node);
}

size_t om_sip_dialog_table_count(const struct om_sip_dialog_table *t)
{
	return t->h.n;
}

struct dfind {
	struct om_str call_id, local, remote;
};

static bool d_eq(const struct om_hnode *n, const void *key)
{
	const struct om_sip_dialog *d = om_container_of(n, struct om_sip_dialog, node);
	const struct dfind *k = key;
	return om_str_eq_c(k->call_id, d->call_id) && om_str_eq_c(k->local, d->local_tag) &&
	       om_str_eq_c(k->remote, d->remote_tag);
}

struct om_sip_dialog *om_sip_dialog_table_find(const struct om_sip_dialog_table *t,
                                               const struct om_sip_msg *m)
{
	struct om_sip_addr from, to;
	if (om_sip_msg_from(m, &from) != 0 || om_sip_msg_to(m, &to) != 0)
		return NULL;
	struct dfind k = { .call_id = om_sip_msg_call_id(m) };
	if (m->is_request) {
		if (!to.has_tag)
			return NULL;
		k.local = to.tag;
		k.remote = from.has_tag ? from.tag : OM_STR_NULL;
	} else {
		if (!from.has_tag)
			return NULL;
		k.local = from.tag;
		k.remote = to.has_tag ? to.tag : OM_STR_NULL;
	}
	if (!k.remote.p)
		k.remote = OM_STR_LIT("");
	struct om_hnode *n = om_htab_find(&t->h, dkey(k.call_id, k.local, k.remote), d_eq, &k);
	return n ? om_container_of(n, struct om_sip_dialog, node) : NULL;
}

/* ------------------------------------------------------------------ */
/* Session timers (RFC 4028)                                            */

/* delta-seconds [; params], RFC 4028 §4 and §5. */
static int delta_seconds(struct om_str v, uint32_t *out)
{
	size_t i = 0;
	uint64_t n;
	v = om_sip_i_trim(v);
	while (i < v.len && sip_is_digit((unsigned char)v.p[i]))
		i++;
	if (i == 0 || om_sip_i_u64(sip_sub(v, 0, i), UINT32_MAX, &n) != 0)
		return EBADMSG;
	i = sip_skip_lws(v, i);
	if (i < v.len && v.p[i] != ';')
		return EBADMSG;
	*out = (uint32_t)n;
	return 0;
}

int om_sip_session_timer_uas(const struct om_sip_msg *req, uint32_t min_se, uint32_t se,
                             struct om_sip_session_timer *st)
{
	uint32_t asked = 0, their_min = 0;
	struct om_str refresher = OM_STR_NULL;
	bool has_se = false;
	const struct om_sip_hdr *h;
	if (min_se < 90)
		min_se = 90; /* RFC 4028 §4: never below 90 s */
	memset(st, 0, sizeof(*st));
	if ((h = om_sip_msg_hdr(req, OM_SIP_HDR_MIN_SE))) {
		if (h->next || delta_seconds(h->value, &their_min) != 0)
			return 400;
	}
	if (om_sip_msg_hdr(req, OM_SIP_HDR_SESSION_EXPIRES)) {
		if (om_sip_msg_session_expires(req, &asked, &refresher) != 0)
			return 400;
		has_se = true;
		if (asked < min_se)
			return 422; /* §9: too small for us */
	}
	bool uac_supports = om_sip_msg_has_token(req, OM_SIP_HDR_SUPPORTED, "timer") ||
	                    om_sip_msg_has_token(req, OM_SIP_HDR_REQUIRE, "timer");
	if (has_se) {
		st->interval = asked;
	} else if (se) {
		st->interval = se < min_se ? min_se : se;
		if (st->interval < their_min)
			st->interval = their_min;
	} else {
		return 0;
	}
	if (refresher.len && om_str_caseeq_c(refresher, "uac"))
		st->refresher_uac = true;
	else if (refresher.len && om_str_caseeq_c(refresher, "uas"))
		st->refresher_uac = false;
	else
		st->refresher_uac = uac_supports;
	/* Without "timer" support the UAC cannot be the refresher (§9). */
	if (!uac_supports)
		st->refresher_uac = false;
	st->we_refresh = !st->refresher_uac;
	return 0;
}

void om_sip_session_timer_hdrs(const struct om_sip_session_timer *st, struct om_buf *out)
{
	if (!st->interval)
		return;
	om_buf_printf(out, "Session-Expires: %u;refresher=%s\r\n", (unsigned)st->interval,
	              st->refresher_uac ? "uac" : "uas");
	if (st->refresher_uac)
		om_buf_adds(out, "Require: timer\r\n");
}

uint64_t om_sip_session_timer_due_ms(const struct om_sip_session_timer *st)
{
	uint64_t iv = st->interval;
	if (st->we_refresh)
		return iv * 1000 / 2;
	uint64_t margin = iv / 3 < 32 ? iv / 3 : 32;
	return (iv - margin) * 1000;
}

/* ------------------------------------------------------------------ */
/* DTMF in INFO                                                        */

static int dtmf_char(struct om_str v, char *out)
{
	if (v.len == 1) {
		char c = v.p[0];
		if ((c >= '0' && c <= '9') || c == '*' || c == '#') {
			*out = c;
			return 0;
		}
		if ((c >= 'A' && c <= 'D') || (c >= 'a' && c <= 'd')) {
			*out = (char)(c & ~0x20);
			return 0;
		}
		return EBADMSG;
	}
	if (v.len == 2 && v.p[0] == '1' && (v.p[1] == '0' || v.p[1] == '1')) {
		*out = v.p[1] == '0' ? '*' : '#';
		return 0;
	}
	return EBADMSG;
}

int om_sip_info_dtmf(const struct om_sip_msg *m, char *digit, unsigned *duration_ms)
{
	struct om_str type, params;
	if (om_sip_msg_content_type(m, &type, &params) != 0)
		return ENOENT;
	struct om_str body = m->body;
	if (body.len > 1024)
		return EBADMSG;
	if (om_str_caseeq_c(type, "application/dtmf")) {
		struct om_str v = om_sip_i_trim(body);
		if (dtmf_char(v, digit) != 0)
			return EBADMSG;
		*duration_ms = 250;
		return 0;
	}
	if (!om_str_caseeq_c(type, "application/dtmf-relay"))
		return ENOENT;
	/* Lines "Name = value", CRLF or LF separated. */
	bool have_signal = false;
	unsigned dur = 250;
	size_t i = 0;
	while (i < body.len) {
		size_t e = i;
		while (e < body.len && body.p[e] != '\n')
			e++;
		struct om_str line = om_sip_i_trim(sip_sub(body, i, e));
		i = e + 1;
		if (!line.len)
			continue;
		const char *eq = memchr(line.p, '=', line.len);
		if (!eq)
			return EBADMSG;
		struct om_str name = om_sip_i_trim(sip_sub(line, 0, (size_t)(eq - line.p)));
		struct om_str val =
		    om_sip_i_trim(sip_sub(line, (size_t)(eq - line.p) + 1, line.len));
		if (om_str_caseeq_c(name, "Signal")) {
			if (have_signal || dtmf_char(val, digit) != 0)
				return EBADMSG;
			have_signal = true;
		} else if (om_str_caseeq_c(name, "Duration")) {
			uint64_t d;
			if (om_sip_i_u64(val, 1000000, &d) != 0)
				return EBADMSG;
			dur = d < 10 ? 10 : d > 5000 ? 5000 : (unsigned)d;
		}
	}
	if (!have_signal)
		return EBADMSG;
	*duration_ms = dur;
	return 0;
}
