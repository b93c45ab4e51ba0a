/* uri.c — SIP, SIPS and tel URIs, generic absoluteURI, parameters and
 * escapes (RFC 3261 §19.1, §25.1; RFC 3966 §3; RFC 5118 §4 for IPv6
 * references; RFC 2396 §3 for other schemes).
 *
 * Slices stay escaped; om_sip_unescape/om_sip_escaped_eq decode on demand
 * (RFC 4475 §3.1.1.3 esc01, §3.1.1.4 escnull: %00 is a valid octet and
 * is never used as a string terminator here). */
#include "sip/sip_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

/* unreserved = alphanum / mark
 * mark       = "-" / "_" / "." / "!" / "~" / "*" / "'" / "(" / ")" */
static bool is_unreserved(unsigned char c)
{
	if (sip_is_alpha(c) || sip_is_digit(c))
		return true;
	switch (c) {
	case '-':
	case '_':
	case '.':
	case '!':
	case '~':
	case '*':
	case '\'':
	case '(':
	case ')':
		return true;
	default:
		return false;
	}
}

/* Checks that every char is unreserved, an escape, or in `extra`. */
static bool chars_ok(struct om_str s, const char *extra)
{
	for (size_t i = 0; i < s.len; i++) {
		unsigned char c = (unsigned char)s.p[i];
		if (c == '%') {
			if (i + 2 >= s.len || !sip_is_hex((unsigned char)s.p[i + 1]) ||
			    !sip_is_hex((unsigned char)s.p[i + 2]))
				return false;
			i += 2;
			continue;
		}
		if (is_unreserved(c))
			continue;
		if (c == 0 || !strchr(extra, c))
			return false;
	}
	return true;
}

/* ================================================================== */
/* host and port                                                        */

/*
 * hostport      = host [ ":" port ]
 * host          = hostname / IPv4address / IPv6reference
 * hostname      = *( domainlabel "." ) toplabel [ "." ]
 * domainlabel   = alphanum / alphanum *( alphanum / "-" ) alphanum
 * toplabel      = ALPHA / ALPHA *( alphanum / "-" ) alphanum
 * IPv4address   = 1*3DIGIT "." 1*3DIGIT "." 1*3DIGIT "." 1*3DIGIT
 * IPv6reference = "[" IPv6address "]"
 * The IPv6 address is checked with inet_pton, so RFC 5118 §4.10's
 * "2001:db8:::192.0.2.1" (three colons) is refused, as §4.10 allows.
 */
static bool is_ipv4(struct om_str s)
{
	int parts = 0;
	size_t i = 0;
	while (i < s.len) {
		unsigned v = 0, d = 0;
		while (i < s.len && sip_is_digit((unsigned char)s.p[i]) && d < 4) {
			v = v * 10 + (unsigned)(s.p[i] - '0');
			i++, d++;
		}
		if (d == 0 || d > 3 || v > 255)
			return false;
		parts++;
		if (i < s.len) {
			if (s.p[i] != '.' || parts == 4)
				return false;
			i++;
			if (i == s.len)
				return false;
		}
	}
	return parts == 4;
}

static bool is_hostname(struct om_str s)
{
	if (s.len && s.p[s.len - 1] == '.')
		s.len--;
	if (s.len == 0)
		return false;
	size_t label = 0;
	for (size_t i = 0; i <= s.len; i++) {
		if (i == s.len || s.p[i] == '.') {
			size_t l = i - label;
			if (l == 0 || s.p[label] == '-' || s.p[i - 1] == '-')
				return false;
			if (i == s.len && !sip_is_alpha((unsigned char)s.p[label]))
				return false; /* toplabel */
			label = i + 1;
			continue;
		}
		unsigned char c = (unsigned char)s.p[i];
		if (!sip_is_alpha(c) && !sip_is_digit(c) && c != '-')
			return false;
	}
	return true;
}

static bool is_ipv6(struct om_str s)
{
	char tmp[64];
	unsigned char bin[16];
	if (s.len < 2 || s.len >= sizeof(tmp))
		return false;
	memcpy(tmp, s.p, s.len);
	tmp[s.len] = '\0';
	if (memchr(s.p, '\0', s.len))
		return false;
	return inet_pton(AF_INET6, tmp, bin) == 1;
}

int om_sip_i_hostport(struct om_str s, struct om_str *host, bool *ipv6, uint16_t *port,
                      bool *has_port)
{
	size_t i = 0;
	*has_port = false;
	*port = 0;
	*ipv6 = false;
	if (s.len == 0)
		return EBADMSG;
	if (s.p[0] == '[') {
		const char *rb = memchr(s.p, ']', s.len);
		if (!rb)
			return EBADMSG;
		*host = (struct om_str){ s.p + 1, (size_t)(rb - s.p) - 1 };
		if (!is_ipv6(*host))
			return EBADMSG;
		*ipv6 = true;
		i = (size_t)(rb - s.p) + 1;
	} else {
		while (i < s.len && s.p[i] != ':' && !sip_is_lws((unsigned char)s.p[i]))
			i++;
		*host = (struct om_str){ s.p, i };
		if (!is_ipv4(*host) && !is_hostname(*host))
			return EBADMSG;
	}
	i = sip_skip_lws(s, i);
	if (i == s.len)
		return 0;
	if (s.p[i] != ':')
		return EBADMSG;
	i = sip_skip_lws(s, i + 1);
	uint64_t p;
	struct om_str ps = om_sip_i_trim(sip_sub(s, i, s.len));
	if (om_sip_i_u64(ps, 65535, &p) != 0)
		return EBADMSG;
	*port = (uint16_t)p;
	*has_port = true;
	return 0;
}

/* ================================================================== */
/* Parameters                                                          */

/* generic-param = token [ EQUAL gen-value ]; gen-value = token / host /
 * quoted-string; uri-parameter = pname [ "=" pvalue ] (paramchars). */
static bool is_pstop(unsigned char c)
{
	return sip_is_lws(c) || c == ';' || c == '=' || c == ',' || c == '?' || c == '<' ||
	       c == '>' || c == '"';
}

int om_sip_param_next(struct om_str *rest, struct om_str *name, struct om_str *value)
{
	struct om_str s = *rest;
	size_t i = sip_skip_lws(s, 0);
	if (i == s.len)
		return ENOENT;
	if (s.p[i] == ';')
		i = sip_skip_lws(s, i + 1);
	size_t n = i;
	while (i < s.len && !is_pstop((unsigned char)s.p[i]))
		i++;
	if (i == n)
		return EBADMSG;
	*name = sip_sub(s, n, i);
	*value = OM_STR_NULL;
	value->p = s.p + i;
	i = sip_skip_lws(s, i);
	if (i < s.len && s.p[i] == '=') {
		i = sip_skip_lws(s, i + 1);
		size_t v = i;
		if (i < s.len && s.p[i] == '"') {
			i = om_sip_i_quoted_end(s, i);
			if (!i)
				return EBADMSG;
		} else {
			while (i < s.len && !is_pstop((unsigned char)s.p[i]))
				i++;
		}
		if (i == v)
			return EBADMSG;
		*value = sip_sub(s, v, i);
		i = sip_skip_lws(s, i);
	}
	if (i < s.len && s.p[i] != ';')
		return EBADMSG;
	*rest = sip_sub(s, i, s.len);
	return 0;
}

int om_sip_param_find(struct om_str params, const char *name, struct om_str *value)
{
	struct om_str n, v;
	size_t l = strlen(name);
	int err;
	while ((err = om_sip_param_next(&params, &n, &v)) == 0) {
		if (om_sip_i_caseeq(n, name, l)) {
			*value = v;
			return 0;
		}
	}
	return err;
}

/* ================================================================== */
/* Escapes                                                             */

static int hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

long om_sip_unescape(struct om_str in, char *out, size_t cap)
{
	size_t o = 0;
	for (size_t i = 0; i < in.len; i++) {
		unsigned char c = (unsigned char)in.p[i];
		if (c == '%') {
			int h, l;
			if (i + 2 >= in.len)
				return -1;
			h = hexval((unsigned char)in.p[i + 1]);
			l = hexval((unsigned char)in.p[i + 2]);
			if (h < 0 || l < 0)
				return -1;
			c = (unsigned char)(h * 16 + l);
			i += 2;
		}
		if (o >= cap)
			return -1;
		out[o++] = (char)c;
	}
	return (long)o;
}

/* Next decoded octet of s at *i, or -1 (end) / -2 (bad escape). */
static int next_octet(struct om_str s, size_t *i)
{
	if (*i >= s.len)
		return -1;
	unsigned char c = (unsigned char)s.p[*i];
	if (c != '%') {
		(*i)++;
		return c;
	}
	if (*i + 2 >= s.len)
		return -2;
	int h = hexval((unsigned char)s.p[*i + 1]), l = hexval((unsigned char)s.p[*i + 2]);
	if (h < 0 || l < 0)
		return -2;
	*i += 3;
	return h * 16 + l;
}

bool om_sip_escaped_eq(struct om_str a, struct om_str b)
{
	size_t i = 0, j = 0;
	for (;;) {
		int x = next_octet(a, &i), y = next_octet(b, &j);
		if (x == -2 || y == -2)
			return false;
		if (x != y)
			return false;
		if (x == -1)
			return true;
	}
}

/* ================================================================== */
/* URIs                                                                */

/*
 * user      = 1*( unreserved / escaped / user-unreserved )
 * user-unreserved = "&" / "=" / "+" / "$" / "," / ";" / "?" / "/"
 * password  = *( unreserved / escaped / "&" / "=" / "+" / "$" / "," )
 * paramchar = param-unreserved / unreserved / escaped
 * param-unreserved = "[" / "]" / "/" / ":" / "&" / "+" / "$"
 * headers   = "?" header *( "&" header ); header = hname "=" hvalue
 * hnv-unreserved = "[" / "]" / "/" / "?" / ":" / "+" / "$"
 */
static int parse_sip(struct om_str rest, struct om_sip_uri *u)
{
	const char *at = memchr(rest.p, '@', rest.len);
	size_t i = 0;
	if (at) {
		struct om_str ui = { rest.p, (size_t)(at - rest.p) };
		if (memchr(at + 1, '@', rest.len - ui.len - 1))
			return EBADMSG;
		const char *colon = memchr(ui.p, ':', ui.len);
		u->user = ui;
		if (colon) {
			u->user.len = (size_t)(colon - ui.p);
			u->password = (struct om_str){ colon + 1, ui.len - u->user.len - 1 };
			u->has_password = true;
			if (!chars_ok(u->password, "&=+$,"))
				return EBADMSG;
		}
		if (u->user.len == 0 || !chars_ok(u->user, "&=+$,;?/"))
			return EBADMSG;
		u->has_user = true;
		i = ui.len + 1;
	}
	size_t hp = i;
	if (i < rest.len && rest.p[i] == '[') {
		const char *rb = memchr(rest.p + i, ']', rest.len - i);
		if (!rb)
			return EBADMSG;
		i = (size_t)(rb - rest.p) + 1;
	}
	while (i < rest.len && rest.p[i] != ';' && rest.p[i] != '?')
		i++;
	struct om_str hps = sip_sub(rest, hp, i);
	for (size_t k = 0; k < hps.len; k++)
		if (sip_is_lws((unsigned char)hps.p[k]))
			return EBADMSG;
	if (om_sip_i_hostport(hps, &u->host, &u->ipv6, &u->port, &u->has_port) != 0)
		return EBADMSG;
	if (i < rest.len && rest.p[i] == ';') {
		size_t ps = ++i;
		while (i < rest.len && rest.p[i] != '?')
			i++;
		u->params = sip_sub(rest, ps, i);
		/* each parameter: 1*paramchar [ "=" 1*paramchar ] */
		struct om_str p = u->params;
		size_t s = 0;
		for (size_t k = 0; k <= p.len; k++) {
			if (k < p.len && p.p[k] != ';')
				continue;
			struct om_str one = sip_sub(p, s, k);
			const char *eq = memchr(one.p, '=', one.len);
			struct om_str pn = one, pv = OM_STR_NULL;
			if (eq) {
				pn.len = (size_t)(eq - one.p);
				pv = (struct om_str){ eq + 1, one.len - pn.len - 1 };
				if (pv.len == 0 || !chars_ok(pv, "[]/:&+$"))
					return EBADMSG;
			}
			if (pn.len == 0 || !chars_ok(pn, "[]/:&+$"))
				return EBADMSG;
			s = k + 1;
		}
	}
	if (i < rest.len && rest.p[i] == '?') {
		u->headers = sip_sub(rest, i + 1, rest.len);
		if (u->headers.len == 0 || !chars_ok(u->headers, "[]/?:+$=&"))
			return EBADMSG;
	}
	return 0;
}

/* telephone-subscriber (RFC 3966), checked loosely: number then params. */
static int parse_tel(struct om_str rest, struct om_sip_uri *u)
{
	size_t i = 0;
	while (i < rest.len && rest.p[i] != ';')
		i++;
	u->user = sip_sub(rest, 0, i);
	u->has_user = true;
	if (u->user.len == 0 || !chars_ok(u->user, "+#"))
		return EBADMSG;
	if (i < rest.len) {
		u->params = sip_sub(rest, i + 1, rest.len);
		if (u->params.len == 0 || !chars_ok(u->params, "[]/:&+$=;#"))
			return EBADMSG;
	}
	return 0;
}

/* absoluteURI = scheme ":" ( hier_part / opaque_part ) (RFC 2396):
 * any visible ASCII but the delimiters "<>\"" and whitespace. */
static int parse_other(struct om_str rest)
{
	if (rest.len == 0)
		return EBADMSG;
	for (size_t i = 0; i < rest.len; i++) {
		unsigned char c = (unsigned char)rest.p[i];
		if (c <= 0x20 || c >= 0x7f || c == '<' || c == '>' || c == '"')
			return EBADMSG;
	}
	return 0;
}

int om_sip_uri_parse(struct om_str s, size_t max, struct om_sip_uri *out)
{
	struct om_sip_uri u;
	memset(&u, 0, sizeof(u));
	if (max && s.len > max)
		return EMSGSIZE;
	/* scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) */
	size_t i = 0;
	if (s.len == 0 || !sip_is_alpha((unsigned char)s.p[0]))
		return EBADMSG;
	while (i < s.len &&
	       (sip_is_alpha((unsigned char)s.p[i]) || sip_is_digit((unsigned char)s.p[i]) ||
	        s.p[i] == '+' || s.p[i] == '-' || s.p[i] == '.'))
		i++;
	if (i >= s.len || s.p[i] != ':')
		return EBADMSG;
	u.raw = s;
	u.scheme_name = sip_sub(s, 0, i);
	u.opaque = sip_sub(s, i + 1, s.len);
	int err;
	if (om_sip_i_caseeq(u.scheme_name, "sip", 3)) {
		u.scheme = OM_SIP_SCHEME_SIP;
		err = parse_sip(u.opaque, &u);
	} else if (om_sip_i_caseeq(u.scheme_name, "sips", 4)) {
		u.scheme = OM_SIP_SCHEME_SIPS;
		err = parse_sip(u.opaque, &u);
	} else if (om_sip_i_caseeq(u.scheme_name, "tel", 3)) {
		u.scheme = OM_SIP_SCHEME_TEL;
		err = parse_tel(u.opaque, &u);
	} else {
		u.scheme = OM_SIP_SCHEME_OTHER;
		err = parse_other(u.opaque);
	}
	if (err)
		return err;
	*out = u;
	return 0;
}
