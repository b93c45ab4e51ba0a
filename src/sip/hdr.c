/* hdr.c — on-demand parsing of structured header fields: Via, name-addr
 * (From, To, Contact, Route, Record-Route, P-Asserted-Identity, Diversion,
 * History-Info), CSeq, Max-Forwards, Expires, Session-Expires,
 * Content-Type, option-tag lists (RFC 3261 §20, §25.1; RFC 3581; RFC 4028;
 * RFC 3325; RFC 5806; RFC 7044). Nothing here allocates. */
#include "sip/sip_int.h"

#include "core/str.h"

#include <errno.h>
#include <string.h>

/* ================================================================== */
/* Via                                                                  */

/*
 * via-parm      = sent-protocol LWS sent-by *( SEMI via-params )
 * sent-protocol = protocol-name SLASH protocol-version SLASH transport
 * sent-by       = host [ COLON port ]
 * via-params    = via-ttl / via-maddr / via-received / via-branch /
 *                 via-extension       (generic-param)
 * via-received  = "received" EQUAL (IPv4address / IPv6address); RFC 5118
 *                 §4.5: a bracketed IPv6 reference is tolerated too.
 */
static bool valid_received(struct om_str v)
{
	struct om_str host;
	bool v6, hp;
	uint16_t port;
	if (v.len && v.p[0] != '[' && memchr(v.p, ':', v.len)) {
		/* bare IPv6address: check it through the bracketed form */
		char tmp[80];
		if (v.len + 2 >= sizeof(tmp))
			return false;
		tmp[0] = '[';
		memcpy(tmp + 1, v.p, v.len);
		tmp[v.len + 1] = ']';
		return om_sip_i_hostport((struct om_str){ tmp, v.len + 2 }, &host, &v6, &port,
		                         &hp) == 0 &&
		       !hp;
	}
	return om_sip_i_hostport(v, &host, &v6, &port, &hp) == 0 && !hp;
}

int om_sip_via_parse(struct om_str s, struct om_sip_via *out)
{
	struct om_sip_via v;
	size_t i, j;
	memset(&v, 0, sizeof(v));
	s = om_sip_i_trim(s);
	v.raw = s;
	i = sip_token_end(s, 0);
	if (i == 0)
		return EBADMSG;
	v.protocol = sip_sub(s, 0, i);
	i = sip_skip_lws(s, i);
	if (i >= s.len || s.p[i] != '/')
		return EBADMSG;
	i = sip_skip_lws(s, i + 1);
	j = sip_token_end(s, i);
	if (j == i)
		return EBADMSG;
	v.version = sip_sub(s, i, j);
	i = sip_skip_lws(s, j);
	if (i >= s.len || s.p[i] != '/')
		return EBADMSG;
	i = sip_skip_lws(s, i + 1);
	j = sip_token_end(s, i);
	if (j == i)
		return EBADMSG;
	v.transport = sip_sub(s, i, j);
	i = sip_skip_lws(s, j);
	if (i == j || i >= s.len)
		return EBADMSG;
	j = i;
	while (j < s.len && s.p[j] != ';')
		j++;
	struct om_str sb = om_sip_i_trim(sip_sub(s, i, j));
	if (om_sip_i_hostport(sb, &v.host, &v.ipv6, &v.port, &v.has_port) != 0)
		return EBADMSG;
	if (j < s.len) {
		v.params = sip_sub(s, j + 1, s.len);
		struct om_str rest = sip_sub(s, j, s.len), n, val;
		int err;
		while ((err = om_sip_param_next(&rest, &n, &val)) == 0) {
			if (!om_sip_i_is_token(n))
				return EBADMSG;
			if (om_sip_i_caseeq(n, "branch", 6)) {
				if (!om_sip_i_is_token(val))
					return EBADMSG;
				v.branch = val;
				v.has_branch = true;
			} else if (om_sip_i_caseeq(n, "received", 8)) {
				if (!valid_received(val))
					return EBADMSG;
				v.received = val;
				v.has_received = true;
			} else if (om_sip_i_caseeq(n, "rport", 5)) {
				uint64_t p;
				if (val.len && om_sip_i_u64(val, 65535, &p) != 0)
					return EBADMSG;
				v.rport = val;
				v.has_rport = true;
			} else if (om_sip_i_caseeq(n, "maddr", 5)) {
				v.maddr = val;
				v.has_maddr = true;
			} else if (om_sip_i_caseeq(n, "alias", 5)) {
				v.has_alias = true;
			}
		}
		if (err != ENOENT)
			return EBADMSG;
	}
	*out = v;
	return 0;
}

int om_sip_msg_via_next(const struct om_sip_msg *msg, struct om_sip_iter *it,
                        struct om_sip_via *out)
{
	struct om_str e;
	int err = om_sip_msg_list_next(msg, OM_SIP_HDR_VIA, it, &e);
	if (err)
		return err;
	return om_sip_via_parse(e, out);
}

int om_sip_msg_via_top(const struct om_sip_msg *msg, struct om_sip_via *out)
{
	struct om_sip_iter it = { 0 };
	return om_sip_msg_via_next(msg, &it, out);
}

long om_sip_msg_via_count(const struct om_sip_msg *msg)
{
	struct om_sip_iter it = { 0 };
	struct om_sip_via v;
	long n = 0;
	int err;
	while ((err = om_sip_msg_via_next(msg, &it, &v)) == 0)
		n++;
	return err == ENOENT ? n : -1;
}

bool om_sip_via_branch_is_3261(const struct om_sip_via *v)
{
	return v->has_branch && v->branch.len > 7 && memcmp(v->branch.p, "z9hG4bK", 7) == 0;
}

/* ================================================================== */
/* name-addr / addr-spec                                                */

/*
 * from-spec / to / contact-param / rec-route ... =
 *     ( name-addr / addr-spec ) *( SEMI generic-param )
 * name-addr    = [ display-name ] LAQUOT addr-spec RAQUOT
 * display-name = *( token LWS ) / quoted-string
 * addr-spec    = SIP-URI / SIPS-URI / absoluteURI
 * §20: in the addr-spec form a URI with ',', '?' or ';' must be in <>, so
 * there the URI ends at the first ';' or LWS and params follow.
 */
int om_sip_addr_parse(struct om_str s, size_t max_uri, struct om_sip_addr *out)
{
	struct om_sip_addr a;
	size_t i = 0, lt = (size_t)-1;
	struct om_str us;
	memset(&a, 0, sizeof(a));
	s = om_sip_i_trim(s);
	if (s.len == 0)
		return EBADMSG;
	if (s.len == 1 && s.p[0] == '*') {
		a.star = true;
		*out = a;
		return 0;
	}
	if (s.p[0] == '"') {
		size_t q = om_sip_i_quoted_end(s, 0);
		if (!q)
			return EBADMSG;
		a.display = sip_sub(s, 0, q);
		i = sip_skip_lws(s, q);
		if (i >= s.len || s.p[i] != '<')
			return EBADMSG;
		lt = i;
	} else {
		/* tokens separated by LWS, then '<'; or an addr-spec */
		const char *p = memchr(s.p, '<', s.len);
		if (p) {
			lt = (size_t)(p - s.p);
			struct om_str dn = om_sip_i_trim(sip_sub(s, 0, lt));
			for (size_t k = 0; k < dn.len; k++) {
				unsigned char c = (unsigned char)dn.p[k];
				if (!sip_is_token(c) && !sip_is_lws(c))
					return EBADMSG;
			}
			a.display = dn;
		}
	}
	if (lt != (size_t)-1) {
		const char *gt = memchr(s.p + lt, '>', s.len - lt);
		if (!gt)
			return EBADMSG;
		us = sip_sub(s, lt + 1, (size_t)(gt - s.p));
		i = (size_t)(gt - s.p) + 1;
		a.angle = true;
	} else {
		while (i < s.len && s.p[i] != ';' && !sip_is_lws((unsigned char)s.p[i]))
			i++;
		us = sip_sub(s, 0, i);
		if (memchr(us.p, ',', us.len) || memchr(us.p, '?', us.len))
			return EBADMSG;
	}
	for (size_t k = 0; k < us.len; k++)
		if (sip_is_lws((unsigned char)us.p[k]))
			return EBADMSG; /* RFC 4475 §3.1.2.14 badaspec */
	if (om_sip_uri_parse(us, max_uri, &a.uri) != 0)
		return EBADMSG;
	struct om_str rest = sip_sub(s, i, s.len), n, v;
	size_t k = sip_skip_lws(rest, 0);
	if (k < rest.len) {
		if (rest.p[k] != ';')
			return EBADMSG;
		a.params = om_sip_i_trim(sip_sub(rest, k + 1, rest.len));
	}
	int err;
	while ((err = om_sip_param_next(&rest, &n, &v)) == 0) {
		if (!om_sip_i_is_token(n))
			return EBADMSG;
		if (om_sip_i_caseeq(n, "tag", 3)) {
			if (!om_sip_i_is_token(v) || a.has_tag)
				return EBADMSG;
			a.tag = v;
			a.has_tag = true;
		}
	}
	if (err != ENOENT)
		return EBADMSG;
	*out = a;
	return 0;
}

static int single_addr(const struct om_sip_msg *msg, enum om_sip_hdr_id id, struct om_sip_addr *out)
{
	const struct om_sip_hdr *h = om_sip_msg_hdr(msg, id);
	if (!h)
		return ENOENT;
	return om_sip_addr_parse(h->value, msg->limits.max_uri, out);
}

int om_sip_msg_from(const struct om_sip_msg *msg, struct om_sip_addr *out)
{
	return single_addr(msg, OM_SIP_HDR_FROM, out);
}

int om_sip_msg_to(const struct om_sip_msg *msg, struct om_sip_addr *out)
{
	return single_addr(msg, OM_SIP_HDR_TO, out);
}

int om_sip_msg_addr_next(const struct om_sip_msg *msg, enum om_sip_hdr_id id,
                         struct om_sip_iter *it, struct om_sip_addr *out)
{
	struct om_str e;
	int err = om_sip_msg_list_next(msg, id, it, &e);
	if (err)
		return err;
	return om_sip_addr_parse(e, msg->limits.max_uri, out);
}

/* ================================================================== */
/* Scalars                                                              */

struct om_str om_sip_msg_call_id(const struct om_sip_msg *msg)
{
	const struct om_sip_hdr *h = om_sip_msg_hdr(msg, OM_SIP_HDR_CALL_ID);
	return h ? h->value : OM_STR_NULL;
}

/* CSeq = "CSeq" HCOLON 1*DIGIT LWS Method; the number is < 2^31 (§8.1.1.5) */
int om_sip_msg_cseq(const struct om_sip_msg *msg, uint32_t *num, struct om_str *method,
                    enum om_sip_method *m)
{
	const struct om_sip_hdr *h = om_sip_msg_hdr(msg, OM_SIP_HDR_CSEQ);
	if (!h)
		return ENOENT;
	struct om_str v = h->value;
	size_t i = 0;
	while (i < v.len && sip_is_digit((unsigned char)v.p[i]))
		i++;
	size_t j = sip_skip_lws(v, i);
	if (i == 0 || j == i)
		return EBADMSG;
	size_t k = sip_token_end(v, j);
	if (k == j || k != v.len)
		return EBADMSG;
	uint64_t n;
	int err = om_sip_i_u64(sip_sub(v, 0, i), 0x7fffffff, &n);
	if (err)
		return err;
	*num = (uint32_t)n;
	*method = sip_sub(v, j, k);
	if (m)
		*m = om_sip_method_from_str(*method);
	return 0;
}

int om_sip_msg_max_forwards(const struct om_sip_msg *msg, unsigned *out)
{
	const struct om_sip_hdr *h = om_sip_msg_hdr(msg, OM_SIP_HDR_MAX_FORWARDS);
	uint64_t n;
	if (!h)
		return ENOENT;
	int err = om_sip_i_u64(h->value, 255, &n);
	if (err)
		return err;
	*out = (unsigned)n;
	return 0;
}

static int delta_seconds(struct om_str v, uint32_t *out)
{
	uint64_t n;
	int err = om_sip_i_u64(v, UINT64_MAX, &n);
	if (err == ERANGE)
		n = UINT32_MAX; /* §20.19: treat an overflow as the maximum */
	else if (err)
		return err;
	*out = n > UINT32_MAX ? UINT32_MAX : (uint32_t)n;
	return 0;
}

int om_sip_msg_expires(const struct om_sip_msg *msg, uint32_t *out)
{
	const struct om_sip_hdr *h = om_sip_msg_hdr(msg, OM_SIP_HDR_EXPIRES);
	if (!h)
		return ENOENT;
	return delta_seconds(h->value, out);
}

/* Session-Expires = ("Session-Expires" / "x") HCOLON delta-seconds
 *                   *(SEMI se-params); se-params = refresher-param / ... */
int om_sip_msg_session_expires(const struct om_sip_msg *msg, uint32_t *delta,
                               struct om_str *refresher)
{
	const struct om_sip_hdr *h = om_sip_msg_hdr(msg, OM_SIP_HDR_SESSION_EXPIRES);
	if (!h)
		return ENOENT;
	struct om_str v = h->value;
	size_t i = 0;
	while (i < v.len && v.p[i] != ';')
		i++;
	uint32_t d;
	if (delta_seconds(om_sip_i_trim(sip_sub(v, 0, i)), &d) != 0)
		return EBADMSG;
	struct om_str r = OM_STR_NULL;
	int err = om_sip_param_find(sip_sub(v, i, v.len), "refresher", &r);
	if (err != 0 && err != ENOENT)
		return EBADMSG;
	*delta = d;
	*refresher = r;
	return 0;
}

/* media-type = m-type SLASH m-subtype *(SEMI m-parameter) */
int om_sip_msg_content_type(const struct om_sip_msg *msg, struct om_str *type,
                            struct om_str *params)
{
	const struct om_sip_hdr *h = om_sip_msg_hdr(msg, OM_SIP_HDR_CONTENT_TYPE);
	if (!h)
		return ENOENT;
	struct om_str v = h->value;
	size_t i = sip_token_end(v, 0);
	if (i == 0)
		return EBADMSG;
	size_t j = sip_skip_lws(v, i);
	if (j >= v.len || v.p[j] != '/')
		return EBADMSG;
	j = sip_skip_lws(v, j + 1);
	size_t k = sip_token_end(v, j);
	if (k == j)
		return EBADMSG;
	struct om_str rest = sip_sub(v, k, v.len), n, pv;
	size_t r0 = sip_skip_lws(rest, 0);
	if (r0 < rest.len && rest.p[r0] != ';')
		return EBADMSG;
	struct om_str p = rest;
	int err;
	while ((err = om_sip_param_next(&rest, &n, &pv)) == 0)
		if (!om_sip_i_is_token(n))
			return EBADMSG;
	if (err != ENOENT)
		return EBADMSG;
	*type = sip_sub(v, 0, k);
	*params = om_sip_i_trim(p);
	return 0;
}

/* ================================================================== */
/* Option tags                                                          */

bool om_sip_msg_has_token(const struct om_sip_msg *msg, enum om_sip_hdr_id id, const char *tag)
{
	struct om_sip_iter it = { 0 };
	struct om_str e;
	size_t l = strlen(tag);
	while (om_sip_msg_list_next(msg, id, &it, &e) == 0)
		if (om_sip_i_caseeq(e, tag, l))
			return true;
	return false;
}

long om_sip_msg_unsupported(const struct om_sip_msg *msg, const char *const *supported,
                            bool proxy_too, struct om_buf *unsupported)
{
	long found = 0, written = 0;
	for (int pass = 0; pass < (proxy_too ? 2 : 1); pass++) {
		enum om_sip_hdr_id id = pass ? OM_SIP_HDR_PROXY_REQUIRE : OM_SIP_HDR_REQUIRE;
		struct om_sip_iter it = { 0 };
		struct om_str e;
		int err;
		while ((err = om_sip_msg_list_next(msg, id, &it, &e)) == 0) {
			if (!om_sip_i_is_token(e))
				return -1;
			bool ok = false;
			for (size_t k = 0; supported && supported[k]; k++)
				if (om_sip_i_caseeq(e, supported[k], strlen(supported[k])))
					ok = true;
			if (ok)
				continue;
			found++;
			if (written < 16 && e.len <= 64) {
				if (written)
					om_buf_adds(unsupported, ", ");
				om_buf_addstr(unsupported, e);
				written++;
			}
		}
		if (err != ENOENT)
			return -1;
	}
	return found;
}
