/* validate.c — the checks a SIP element makes before answering a request
 * (RFC 3261 §8.2, §16.3, §20; RFC 4475 §3.1.2 and §3.3). One function so the
 * transaction layer has one place to call; each failure names a reason. */
#include "sip/sip_int.h"

#include <errno.h>
#include <string.h>

/* callid = word [ "@" word ]
 * word   = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" /
 *          "'" / "~" / "(" / ")" / "<" / ">" / ":" / "\" / DQUOTE / "/" /
 *          "[" / "]" / "?" / "{" / "}" ) */
static bool valid_call_id(struct om_str v)
{
	size_t ats = 0;
	if (v.len == 0)
		return false;
	for (size_t i = 0; i < v.len; i++) {
		unsigned char c = (unsigned char)v.p[i];
		if (c == '@') {
			if (++ats > 1 || i == 0 || i + 1 == v.len)
				return false;
			continue;
		}
		if (sip_is_token(c) || (c && strchr("()<>:\\\"/[]?{}", c)))
			continue;
		return false;
	}
	return true;
}

/* rfc1123-date = wkday "," SP date1 SP time SP "GMT"
 * date1 = 2DIGIT SP month SP 4DIGIT; time = 2DIGIT ":" 2DIGIT ":" 2DIGIT */
static bool valid_date(struct om_str v)
{
	static const char *const wk[] = { "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun" };
	static const char *const mo[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
		                          "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	/* "Sat, 13 Nov 2010 23:29:00 GMT" is 29 characters */
	if (v.len != 29)
		return false;
	const char *p = v.p;
	bool ok = false;
	for (int i = 0; i < 7; i++)
		ok |= memcmp(p, wk[i], 3) == 0;
	if (!ok || memcmp(p + 3, ", ", 2) != 0)
		return false;
	ok = false;
	for (int i = 0; i < 12; i++)
		ok |= memcmp(p + 8, mo[i], 3) == 0;
	static const char pat[] = "xxxxx99 xxx 9999 99:99:99 GMT";
	for (int i = 5; i < 29; i++) {
		if (pat[i] == 'x')
			continue;
		if (pat[i] == '9' ? !sip_is_digit((unsigned char)p[i]) : p[i] != pat[i])
			return false;
	}
	return ok;
}

static int check_addr_list(const struct om_sip_msg *msg, enum om_sip_hdr_id id, bool need_angle)
{
	struct om_sip_iter it = { 0 };
	struct om_sip_addr a;
	int err;
	while ((err = om_sip_msg_addr_next(msg, id, &it, &a)) == 0)
		if (need_angle && !a.angle)
			return EBADMSG;
	return err == ENOENT ? 0 : EBADMSG;
}

static int check_tokens(const struct om_sip_msg *msg, enum om_sip_hdr_id id)
{
	struct om_sip_iter it = { 0 };
	struct om_str e;
	int err;
	while ((err = om_sip_msg_list_next(msg, id, &it, &e)) == 0)
		if (!om_sip_i_is_token(e))
			return EBADMSG;
	return err == ENOENT ? 0 : EBADMSG;
}

static const enum om_sip_hdr_id single[] = {
	OM_SIP_HDR_FROM,
	OM_SIP_HDR_TO,
	OM_SIP_HDR_CALL_ID,
	OM_SIP_HDR_CSEQ,
	OM_SIP_HDR_MAX_FORWARDS,
	OM_SIP_HDR_CONTENT_TYPE,
	OM_SIP_HDR_DATE,
	OM_SIP_HDR_EXPIRES,
	OM_SIP_HDR_SESSION_EXPIRES,
	OM_SIP_HDR_MIN_SE,
	OM_SIP_HDR_RSEQ,
	OM_SIP_HDR_RACK,
	OM_SIP_HDR_MIME_VERSION,
	OM_SIP_HDR_CONTENT_ENCODING,
};

static const enum om_sip_hdr_id mandatory[] = {
	OM_SIP_HDR_VIA, OM_SIP_HDR_FROM, OM_SIP_HDR_TO, OM_SIP_HDR_CALL_ID, OM_SIP_HDR_CSEQ,
};

int om_sip_msg_validate(const struct om_sip_msg *msg, enum om_sip_reason *reason)
{
	enum om_sip_reason r = OM_SIP_R_OK;
	struct om_sip_addr a;

	if (msg->is_request) {
		struct om_sip_uri u;
		int err = om_sip_uri_parse(msg->ruri, msg->limits.max_uri, &u);
		if (err == EMSGSIZE) {
			r = OM_SIP_R_URI_TOO_LONG;
			goto out;
		}
		/* §19.1.5: headers are not allowed in a Request-URI (escruri) */
		if (err || ((u.scheme == OM_SIP_SCHEME_SIP || u.scheme == OM_SIP_SCHEME_SIPS) &&
		            u.headers.p)) {
			r = OM_SIP_R_BAD_RURI;
			goto out;
		}
	}
	for (size_t i = 0; i < sizeof(mandatory) / sizeof(mandatory[0]); i++)
		if (!msg->first[mandatory[i]]) {
			r = OM_SIP_R_MISSING_HEADER;
			goto out;
		}
	for (size_t i = 0; i < sizeof(single) / sizeof(single[0]); i++)
		if (msg->count[single[i]] > 1) {
			r = OM_SIP_R_DUP_HEADER;
			goto out;
		}
	uint32_t cseq;
	struct om_str cm;
	if (om_sip_msg_cseq(msg, &cseq, &cm, NULL) != 0) {
		r = OM_SIP_R_BAD_CSEQ;
		goto out;
	}
	if (msg->is_request && !om_str_eq(cm, msg->method_name)) {
		r = OM_SIP_R_CSEQ_METHOD;
		goto out;
	}
	if (!valid_call_id(om_sip_msg_call_id(msg))) {
		r = OM_SIP_R_BAD_CALL_ID;
		goto out;
	}
	/* every Via entry, SIP/2.0, and how many */
	{
		struct om_sip_iter it = { 0 };
		struct om_sip_via v;
		size_t n = 0;
		int err;
		while ((err = om_sip_msg_via_next(msg, &it, &v)) == 0) {
			if (!om_sip_i_caseeq(v.protocol, "SIP", 3) ||
			    !om_sip_i_caseeq(v.version, "2.0", 3)) {
				r = OM_SIP_R_BAD_VIA;
				goto out;
			}
			if (++n > msg->limits.max_via) {
				r = OM_SIP_R_TOO_MANY_VIA;
				goto out;
			}
		}
		if (err != ENOENT) {
			r = OM_SIP_R_BAD_VIA;
			goto out;
		}
	}
	if (om_sip_msg_from(msg, &a) != 0) {
		r = OM_SIP_R_BAD_FROM;
		goto out;
	}
	if (om_sip_msg_to(msg, &a) != 0) {
		r = OM_SIP_R_BAD_TO;
		goto out;
	}
	if (check_addr_list(msg, OM_SIP_HDR_CONTACT, false) != 0) {
		r = OM_SIP_R_BAD_CONTACT;
		goto out;
	}
	if (check_addr_list(msg, OM_SIP_HDR_ROUTE, true) != 0 ||
	    check_addr_list(msg, OM_SIP_HDR_RECORD_ROUTE, true) != 0) {
		r = OM_SIP_R_BAD_ROUTE;
		goto out;
	}
	/* P-Asserted-Identity, Diversion and History-Info are not checked:
	 * they only inform the routing, which skips a malformed entry (and
	 * logs it) instead of refusing the whole call (R11). */
	unsigned mf;
	if (om_sip_msg_max_forwards(msg, &mf) == EBADMSG) {
		/* out of range (ERANGE) is treated as absent: RFC 4475 §3.1.2.4 */
		r = OM_SIP_R_BAD_MAX_FORWARDS;
		goto out;
	}
	const struct om_sip_hdr *d = om_sip_msg_hdr(msg, OM_SIP_HDR_DATE);
	if (d && !valid_date(d->value)) {
		r = OM_SIP_R_BAD_DATE;
		goto out;
	}
	if (check_tokens(msg, OM_SIP_HDR_REQUIRE) != 0 ||
	    check_tokens(msg, OM_SIP_HDR_PROXY_REQUIRE) != 0 ||
	    check_tokens(msg, OM_SIP_HDR_SUPPORTED) != 0) {
		r = OM_SIP_R_BAD_OPTION_TAG;
		goto out;
	}
	struct om_str ct, ctp;
	if (om_sip_msg_content_type(msg, &ct, &ctp) == EBADMSG) {
		r = OM_SIP_R_BAD_CONTENT_TYPE;
		goto out;
	}
	uint32_t ex;
	if (om_sip_msg_expires(msg, &ex) == EBADMSG) {
		r = OM_SIP_R_BAD_EXPIRES;
		goto out;
	}
out:
	if (r != OM_SIP_R_OK) {
		*reason = r;
		return EBADMSG;
	}
	return 0;
}
