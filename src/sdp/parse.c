/* parse.c — SDP parser (RFC 4566 §5, §6), zero-copy and bounded.
 *
 *   session-description = "v=0" EOL
 *                         "o=" username SP sess-id SP sess-version SP
 *                              nettype SP addrtype SP unicast-address EOL
 *                         "s=" text EOL
 *                         *(i= / u= / e= / p= / c= / b= / t= / r= / z= / k= / a=)
 *                         *media-description           ; at least one t=
 *   media-description   = "m=" media SP port ["/" integer] SP proto 1*(SP fmt) EOL
 *                         *(i= / c= / b= / k= / a=)
 *   connection-field    = "c=" nettype SP addrtype SP connection-address
 *                         ; nettype "IN", addrtype "IP4" / "IP6"
 *   attribute           = "a=" att-field [":" att-value]
 *   EOL                 = CRLF / LF   ; LF alone tolerated (RFC 4566 §5)
 *
 * Strict on structure: v= first, then o=, then s=; one type letter per line
 * from the RFC's set (an unknown letter rejects the description, §5); at
 * least one t= before the first m=; c= at session level or in every m=.
 * Tolerant where peers differ harmlessly: blank lines before v= and after
 * the last line (PJSIP's test bodies start with LF), runs of white space
 * between fields, trailing white space. Unknown attributes are ignored.
 *
 * Attributes read: rtpmap, fmtp, ptime, sendrecv/sendonly/recvonly/inactive
 * (session or media), crypto (media; RFC 4568 says it is media-level only,
 * so a session-level one is ignored). A malformed or duplicate-tag
 * a=crypto does not reject the description: it marks the media's crypto as
 * broken (crypto_error), which the mode table turns into a 488 whenever
 * that crypto would matter. */
#include "sdp/sdp.h"

#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

#include "core/alloc.h"

struct parser {
	struct om_sdp *sdp;
	struct om_sdp_error *err;
	unsigned line;
	unsigned nattrs;
};

static int fail(struct parser *ps, int rc, const char *why)
{
	ps->err->reason = why;
	ps->err->line = ps->line;
	return rc;
}

static bool is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

static struct om_str next_word(struct om_str v, size_t *pos)
{
	size_t i = *pos;
	while (i < v.len && is_wsp(v.p[i]))
		i++;
	size_t start = i;
	while (i < v.len && !is_wsp(v.p[i]))
		i++;
	*pos = i;
	return (struct om_str){ v.p + start, i - start };
}

static bool rest_empty(struct om_str v, size_t pos)
{
	struct om_str w = next_word(v, &pos);
	return w.len == 0;
}

static bool digits(struct om_str s, size_t max_len)
{
	if (s.len == 0 || s.len > max_len)
		return false;
	for (size_t i = 0; i < s.len; i++)
		if (s.p[i] < '0' || s.p[i] > '9')
			return false;
	return true;
}

static bool token_ok(struct om_str s)
{
	if (s.len == 0)
		return false;
	for (size_t i = 0; i < s.len; i++) {
		unsigned char c = (unsigned char)s.p[i];
		if (c <= ' ' || c >= 0x7f)
			return false;
	}
	return true;
}

/* ---- c= ---------------------------------------------------------------- */

/* Host part of a connection address: a literal of the declared family or a
 * host name (RFC 4566 §9 allows FQDNs). Multicast "/ttl[/n]" is cut off. */
static bool addr_ok(enum om_sdp_addrtype t, struct om_str *a)
{
	const char *slash = memchr(a->p, '/', a->len);
	if (slash)
		a->len = (size_t)(slash - a->p);
	if (a->len == 0 || a->len > 255)
		return false;
	bool has_colon = false, numeric = true;
	for (size_t i = 0; i < a->len; i++) {
		char c = a->p[i];
		if (c == ':')
			has_colon = true;
		else if (!((c >= '0' && c <= '9') || c == '.'))
			numeric = false;
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      c == '.' || c == '-' || c == ':' || c == '_'))
			return false;
	}
	char buf[256];
	unsigned char bin[16];
	memcpy(buf, a->p, a->len);
	buf[a->len] = '\0';
	if (t == OM_SDP_IP4) {
		if (has_colon)
			return false;
		return numeric ? inet_pton(AF_INET, buf, bin) == 1 : true;
	}
	if (has_colon)
		return inet_pton(AF_INET6, buf, bin) == 1;
	return !numeric; /* a host name, not a dotted IPv4 under IP6 */
}

static int parse_conn(struct parser *ps, struct om_str v, struct om_sdp_conn *c)
{
	size_t pos = 0;
	struct om_str nt = next_word(v, &pos), at = next_word(v, &pos), ad = next_word(v, &pos);
	if (!om_str_eq_c(nt, "IN"))
		return fail(ps, EINVAL, "bad_c_nettype");
	if (om_str_eq_c(at, "IP4"))
		c->type = OM_SDP_IP4;
	else if (om_str_eq_c(at, "IP6"))
		c->type = OM_SDP_IP6;
	else
		return fail(ps, EINVAL, "bad_c_addrtype");
	if (!addr_ok(c->type, &ad) || !rest_empty(v, pos))
		return fail(ps, EINVAL, "bad_c_address");
	c->addr = ad;
	c->hold = om_str_eq_c(ad, "0.0.0.0") || om_str_eq_c(ad, "::");
	return 0;
}

/* ---- o= ---------------------------------------------------------------- */

static int parse_origin(struct parser *ps, struct om_str v)
{
	size_t pos = 0;
	struct om_str user = next_word(v, &pos), id = next_word(v, &pos), ver = next_word(v, &pos),
	              nt = next_word(v, &pos), at = next_word(v, &pos), addr = next_word(v, &pos);
	if (!token_ok(user) || !digits(id, 64) || !digits(ver, 64) || !om_str_eq_c(nt, "IN") ||
	    !(om_str_eq_c(at, "IP4") || om_str_eq_c(at, "IP6")) || !token_ok(addr) ||
	    !rest_empty(v, pos))
		return fail(ps, EINVAL, "bad_o_line");
	/* Values past 64 bits are legal digits; keep 0 rather than refuse. */
	if (om_str_to_u64(id, UINT64_MAX, &ps->sdp->sess_id) != 0)
		ps->sdp->sess_id = 0;
	if (om_str_to_u64(ver, UINT64_MAX, &ps->sdp->sess_version) != 0)
		ps->sdp->sess_version = 0;
	ps->sdp->o_user = user;
	ps->sdp->o_addr = addr;
	return 0;
}

/* ---- m= ---------------------------------------------------------------- */

static int parse_media(struct parser *ps, struct om_str v, struct om_sdp_media *m)
{
	size_t pos = 0;
	uint64_t n;
	struct om_str media = next_word(v, &pos), port = next_word(v, &pos),
	              proto = next_word(v, &pos);
	if (!token_ok(media) || !token_ok(proto))
		return fail(ps, EINVAL, "bad_m_line");
	const char *slash = memchr(port.p, '/', port.len);
	struct om_str count = OM_STR_NULL;
	if (slash) {
		count = (struct om_str){ slash + 1, port.len - (size_t)(slash - port.p) - 1 };
		port.len = (size_t)(slash - port.p);
		if (!digits(count, 5) || om_str_to_u64(count, 65535, &n) != 0 || n == 0)
			return fail(ps, EINVAL, "bad_m_port");
		m->nports = (uint16_t)n;
	} else {
		m->nports = 1;
	}
	if (!digits(port, 5) || om_str_to_u64(port, 65535, &n) != 0)
		return fail(ps, EINVAL, "bad_m_port");
	m->port = (uint16_t)n;
	m->media = media;
	m->proto = proto;
	if (om_str_eq_c(proto, "RTP/AVP"))
		m->proto_kind = OM_SDP_PROTO_AVP;
	else if (om_str_eq_c(proto, "RTP/SAVP"))
		m->proto_kind = OM_SDP_PROTO_SAVP;
	else
		m->proto_kind = OM_SDP_PROTO_OTHER;
	for (;;) {
		struct om_str f = next_word(v, &pos);
		if (f.len == 0)
			break;
		if (!token_ok(f))
			return fail(ps, EINVAL, "bad_m_format");
		if (m->nfmt == OM_SDP_MAX_FMT)
			return fail(ps, E2BIG, "too_many_formats");
		m->fmt[m->nfmt++] = f;
	}
	if (m->nfmt == 0)
		return fail(ps, EINVAL, "bad_m_no_format");
	return 0;
}

/* ---- a= ---------------------------------------------------------------- */

static struct om_sdp_rtpmap *map_get(struct om_sdp_media *m, uint8_t pt)
{
	for (size_t i = 0; i < m->nmap; i++)
		if (m->map[i].pt == pt)
			return &m->map[i];
	if (m->nmap == OM_SDP_MAX_RTPMAP)
		return NULL;
	struct om_sdp_rtpmap *r = &m->map[m->nmap++];
	memset(r, 0, sizeof(*r));
	r->pt = pt;
	return r;
}

static bool parse_pt(struct om_str s, uint8_t *pt)
{
	uint64_t n;
	if (!digits(s, 3) || om_str_to_u64(s, 127, &n) != 0)
		return false;
	*pt = (uint8_t)n;
	return true;
}

/* rtpmap-value = payload-type SP encoding-name "/" clock-rate ["/" params]
 * (RFC 4566 §6). The attribute's shape is not part of the description's
 * structure: a malformed or contradictory rtpmap (RFC 4475's "a=rtpmap:31
 * LPC") makes its payload type unknown, so it is never taken for a codec
 * it may not be. */
static int attr_rtpmap(struct parser *ps, struct om_sdp_media *m, struct om_str v)
{
	size_t pos = 0;
	uint8_t pt;
	uint64_t clock = 0;
	struct om_str pts = next_word(v, &pos), enc = next_word(v, &pos);
	if (!parse_pt(pts, &pt))
		return 0;
	struct om_sdp_rtpmap *r = map_get(m, pt);
	if (!r)
		return fail(ps, E2BIG, "too_many_rtpmaps");
	const char *slash = enc.len ? memchr(enc.p, '/', enc.len) : NULL;
	struct om_str name = OM_STR_NULL, rate = OM_STR_NULL;
	if (slash) {
		name = (struct om_str){ enc.p, (size_t)(slash - enc.p) };
		rate = (struct om_str){ slash + 1, enc.len - name.len - 1 };
		const char *slash2 = memchr(rate.p, '/', rate.len);
		if (slash2)
			rate.len = (size_t)(slash2 - rate.p);
	}
	bool ok = slash && name.len && rest_empty(v, pos) && digits(rate, 10) &&
	          om_str_to_u64(rate, UINT32_MAX, &clock) == 0;
	if (!ok || r->has_rtpmap) {
		r->encoding = OM_STR_NULL; /* unknown from now on */
		r->clock = 0;
	} else {
		r->encoding = name;
		r->clock = (uint32_t)clock;
	}
	r->has_rtpmap = true;
	return 0;
}

/* fmtp-value = format SP format-specific-params; non-RTP formats ignored. */
static int attr_fmtp(struct parser *ps, struct om_sdp_media *m, struct om_str v)
{
	size_t pos = 0;
	uint8_t pt;
	struct om_str f = next_word(v, &pos);
	if (!parse_pt(f, &pt))
		return 0;
	struct om_sdp_rtpmap *r = map_get(m, pt);
	if (!r)
		return fail(ps, E2BIG, "too_many_rtpmaps");
	struct om_str rest = { v.p + pos, v.len - pos };
	r->fmtp = om_str_trim(rest);
	return 0;
}

static bool dir_parse(struct om_str name, enum om_sdp_dir *d)
{
	static const char *names[] = { "sendrecv", "sendonly", "recvonly", "inactive" };
	for (unsigned i = 0; i < 4; i++)
		if (om_str_eq_c(name, names[i])) {
			*d = (enum om_sdp_dir)i;
			return true;
		}
	return false;
}

static int parse_attr(struct parser *ps, struct om_str v, struct om_sdp_media *m, bool *m_has_dir)
{
	if (++ps->nattrs > OM_SDP_MAX_ATTRS)
		return fail(ps, E2BIG, "too_many_attributes");
	const char *colon = v.len ? memchr(v.p, ':', v.len) : NULL;
	struct om_str name = v, val = OM_STR_NULL;
	if (colon) {
		name.len = (size_t)(colon - v.p);
		val = (struct om_str){ colon + 1, v.len - name.len - 1 };
	}
	if (!token_ok(name))
		return fail(ps, EINVAL, "bad_attribute");
	enum om_sdp_dir d;
	if (!colon && dir_parse(name, &d)) {
		if (m) {
			m->dir = d;
			*m_has_dir = true;
		} else {
			ps->sdp->dir = d;
			ps->sdp->has_dir = true;
		}
		return 0;
	}
	if (m && !colon && om_str_eq_c(name, "rtcp-mux")) {
		m->rtcp_mux = true; /* RFC 5761 §5.1.1 */
		return 0;
	}
	if (!m || !colon)
		return 0;
	if (om_str_eq_c(name, "rtcp")) {
		/* RFC 3605: "a=rtcp:" port [nettype addrtype address]; only the
		 * port is used (the address must be the media's own). */
		uint64_t n;
		struct om_str t = om_str_trim(val);
		size_t k = 0;
		while (k < t.len && t.p[k] >= '0' && t.p[k] <= '9')
			k++;
		struct om_str port = { t.p, k };
		if (k && digits(port, 5) && om_str_to_u64(port, 65535, &n) == 0 && n > 0 &&
		    (k == t.len || t.p[k] == ' '))
			m->rtcp_port = (uint16_t)n;
		return 0;
	}
	if (om_str_eq_c(name, "rtpmap"))
		return attr_rtpmap(ps, m, val);
	if (om_str_eq_c(name, "fmtp"))
		return attr_fmtp(ps, m, val);
	if (om_str_eq_c(name, "ptime")) {
		uint64_t n;
		struct om_str t = om_str_trim(val);
		if (digits(t, 4) && om_str_to_u64(t, 1000, &n) == 0)
			m->ptime = (uint32_t)n;
		return 0;
	}
	if (om_str_eq_c(name, "crypto")) {
		m->ncrypto_lines++;
		struct om_sdp_crypto c;
		const char *why = NULL;
		if (om_sdp_crypto_parse(val, &c, &why) != 0) {
			if (!m->crypto_error)
				m->crypto_error = why;
			return 0;
		}
		for (size_t i = 0; i < m->ncrypto; i++)
			if (m->crypto[i].tag == c.tag) {
				om_sdp_crypto_clear(&c);
				if (!m->crypto_error)
					m->crypto_error = "crypto_duplicate_tag";
				return 0;
			}
		if (m->ncrypto == OM_SDP_MAX_CRYPTO) {
			om_sdp_crypto_clear(&c);
			return fail(ps, E2BIG, "too_many_crypto");
		}
		m->crypto[m->ncrypto++] = c;
		om_sdp_crypto_clear(&c);
	}
	return 0;
}

/* ---- lines ------------------------------------------------------------- */

/* Next line of body from *pos (EOL not included). false at the end. */
static bool next_line(const char *b, size_t len, size_t *pos, struct om_str *line)
{
	if (*pos >= len)
		return false;
	const char *s = b + *pos;
	const char *nl = memchr(s, '\n', len - *pos);
	size_t n = nl ? (size_t)(nl - s) : len - *pos;
	*pos += n + (nl ? 1 : 0);
	if (n && s[n - 1] == '\r')
		n--;
	*line = (struct om_str){ s, n };
	return true;
}

static bool blank_from(const char *b, size_t len, size_t pos)
{
	for (; pos < len; pos++)
		if (b[pos] != '\r' && b[pos] != '\n' && !is_wsp(b[pos]))
			return false;
	return true;
}

void om_sdp_free(struct om_sdp *sdp)
{
	if (!sdp)
		return;
	for (size_t i = 0; i < sdp->nmedia; i++)
		for (size_t j = 0; j < sdp->media[i].ncrypto; j++)
			om_sdp_crypto_clear(&sdp->media[i].crypto[j]);
	om_free(sdp);
}

enum { ST_V, ST_O, ST_S, ST_SESSION, ST_MEDIA };

int om_sdp_parse(const char *body, size_t len, struct om_sdp **out, struct om_sdp_error *err)
{
	struct om_sdp_error dummy;
	struct parser ps = { .err = err ? err : &dummy };
	int rc = EINVAL;
	ps.err->reason = NULL;
	ps.err->line = 0;
	if (len > OM_SDP_MAX_BODY)
		return fail(&ps, E2BIG, "body_too_large");
	if (len && memchr(body, '\0', len))
		return fail(&ps, EINVAL, "nul_byte");
	struct om_sdp *sdp = om_calloc(1, sizeof(*sdp));
	if (!sdp)
		return ENOMEM;
	ps.sdp = sdp;

	size_t pos = 0;
	struct om_str line;
	int state = ST_V;
	unsigned nt = 0;
	bool m_has_dir[OM_SDP_MAX_MEDIA] = { false };
	struct om_sdp_media *m = NULL;
	while (next_line(body, len, &pos, &line)) {
		ps.line++;
		if (ps.line > OM_SDP_MAX_LINES) {
			rc = fail(&ps, E2BIG, "too_many_lines");
			goto out;
		}
		while (line.len && is_wsp(line.p[line.len - 1]))
			line.len--;
		if (line.len == 0) {
			if (state == ST_V || blank_from(body, len, pos))
				continue;
			rc = fail(&ps, EINVAL, "empty_line");
			goto out;
		}
		if (line.len < 2 || line.p[1] != '=' || line.p[0] < 'a' || line.p[0] > 'z' ||
		    memchr(line.p, '\r', line.len)) {
			rc = fail(&ps, EINVAL, "bad_line");
			goto out;
		}
		char type = line.p[0];
		struct om_str v = { line.p + 2, line.len - 2 };
		if (state == ST_V) {
			if (type != 'v' || !om_str_eq_c(v, "0")) {
				rc = fail(&ps, EINVAL, "bad_v_line");
				goto out;
			}
			state = ST_O;
			continue;
		}
		if (state == ST_O) {
			if (type != 'o') {
				rc = fail(&ps, EINVAL, "missing_o_line");
				goto out;
			}
			if ((rc = parse_origin(&ps, v)) != 0)
				goto out;
			state = ST_S;
			continue;
		}
		if (state == ST_S) {
			if (type != 's') {
				rc = fail(&ps, EINVAL, "missing_s_line");
				goto out;
			}
			sdp->name = v;
			state = ST_SESSION;
			continue;
		}
		switch (type) {
		case 'v':
		case 'o':
		case 's':
			rc = fail(&ps, EINVAL, "misplaced_line");
			goto out;
		case 'u':
		case 'e':
		case 'p':
		case 't':
		case 'r':
		case 'z':
			if (state != ST_SESSION) {
				rc = fail(&ps, EINVAL, "misplaced_line");
				goto out;
			}
			if (type == 't') {
				size_t tp = 0;
				struct om_str t0 = next_word(v, &tp), t1 = next_word(v, &tp);
				if (!digits(t0, 20) || !digits(t1, 20) || !rest_empty(v, tp)) {
					rc = fail(&ps, EINVAL, "bad_t_line");
					goto out;
				}
				nt++;
			}
			break;
		case 'i':
		case 'b':
		case 'k':
			break;
		case 'c':
			if (m) {
				/* Several c= (multicast layers, §5.7): all checked,
				 * the first one used. */
				struct om_sdp_conn c;
				if ((rc = parse_conn(&ps, v, &c)) != 0)
					goto out;
				if (!m->has_own_conn) {
					m->conn = c;
					m->has_own_conn = true;
				}
			} else {
				if (sdp->has_conn) {
					rc = fail(&ps, EINVAL, "duplicate_c_line");
					goto out;
				}
				if ((rc = parse_conn(&ps, v, &sdp->conn)) != 0)
					goto out;
				sdp->has_conn = true;
			}
			break;
		case 'm':
			if (nt == 0) {
				rc = fail(&ps, EINVAL, "missing_t_line");
				goto out;
			}
			if (sdp->nmedia == OM_SDP_MAX_MEDIA) {
				rc = fail(&ps, E2BIG, "too_many_media");
				goto out;
			}
			m = &sdp->media[sdp->nmedia++];
			if ((rc = parse_media(&ps, v, m)) != 0)
				goto out;
			state = ST_MEDIA;
			break;
		case 'a':
			if ((rc = parse_attr(&ps, v, m, m ? &m_has_dir[sdp->nmedia - 1] : NULL)) !=
			    0)
				goto out;
			break;
		default:
			rc = fail(&ps, EINVAL, "unknown_line_type");
			goto out;
		}
	}
	ps.line = 0;
	if (state == ST_V) {
		rc = fail(&ps, EINVAL, "empty_body");
		goto out;
	}
	if (state < ST_SESSION) {
		rc = fail(&ps, EINVAL, state == ST_O ? "missing_o_line" : "missing_s_line");
		goto out;
	}
	if (nt == 0) {
		rc = fail(&ps, EINVAL, "missing_t_line");
		goto out;
	}
	for (size_t i = 0; i < sdp->nmedia; i++) {
		struct om_sdp_media *mi = &sdp->media[i];
		if (!mi->has_own_conn) {
			if (!sdp->has_conn) {
				rc = fail(&ps, EINVAL, "missing_c_line");
				goto out;
			}
			mi->conn = sdp->conn;
		}
		if (!m_has_dir[i])
			mi->dir = sdp->has_dir ? sdp->dir : OM_SDP_SENDRECV;
	}
	*out = sdp;
	sdp = NULL;
	rc = 0;
out:
	om_sdp_free(sdp);
	return rc;
}
