/* print.c — building responses and requests (RFC 3261 §8.1.1, §8.2.6,
 * §12.1.1, §20.14).
 *
 * A response copies from the request only header values the parser has
 * already bounded (each at most limits.max_line, the whole request at most
 * limits.max_msg), so a response is never larger than a request plus our
 * own lines; folded values are written on one line. */
#include "sip/sip_int.h"

#include <errno.h>
#include <string.h>

/* Copy a received header value. Inside a value CR and LF only occur in
 * folds (CRLF followed by SP/HT, RFC 3261 §7.3.1): dropping them leaves
 * the white space the fold stands for. */
static void add_value(struct om_buf *b, struct om_str v)
{
	size_t i = 0;
	while (i < v.len) {
		size_t j = i;
		while (j < v.len && v.p[j] != '\r' && v.p[j] != '\n')
			j++;
		om_buf_add(b, v.p + i, j - i);
		i = j + 1;
	}
}

static void add_hdr(struct om_buf *b, const char *name, struct om_str v)
{
	om_buf_adds(b, name);
	om_buf_adds(b, ": ");
	add_value(b, v);
	om_buf_adds(b, "\r\n");
}

/* Decimal digits of v into out (no NUL); returns their count. */
static size_t u64_dec(char *out, uint64_t v)
{
	char t[20];
	size_t n = 0;
	do
		t[n++] = (char)('0' + v % 10);
	while ((v /= 10) && n < sizeof(t));
	for (size_t i = 0; i < n; i++)
		out[i] = t[n - 1 - i];
	return n;
}

static bool has_crlf(const char *s)
{
	return s && strpbrk(s, "\r\n") != NULL;
}

bool om_sip_addr_has_tag(struct om_str v, size_t max_uri)
{
	struct om_sip_addr a;
	if (!v.len || !memchr(v.p, ';', v.len))
		return false; /* no parameter at all: the common case, no parse */
	if (om_sip_addr_parse(v, max_uri, &a) == 0)
		return a.has_tag;
	bool quoted = false;
	int angle = 0;
	for (size_t i = 0; i < v.len; i++) {
		char c = v.p[i];
		if (quoted) {
			if (c == '\\')
				i++;
			else if (c == '"')
				quoted = false;
			continue;
		}
		if (c == '"')
			quoted = true;
		else if (c == '<')
			angle++;
		else if (c == '>' && angle)
			angle--;
		else if (c == ';' && !angle) {
			size_t j = i + 1;
			while (j < v.len && (v.p[j] == ' ' || v.p[j] == '\t'))
				j++;
			if (v.len - j >= 3 &&
			    om_sip_i_caseeq((struct om_str){ v.p + j, 3 }, "tag", 3)) {
				j += 3;
				while (j < v.len && (v.p[j] == ' ' || v.p[j] == '\t'))
					j++;
				if (j < v.len && v.p[j] == '=')
					return true;
			}
		}
	}
	return false;
}

int om_sip_response_build(const struct om_sip_msg *req, int status, const char *phrase,
                          const struct om_sip_resp_opts *opts, struct om_buf *out)
{
	static const struct om_sip_resp_opts none = { 0 };
	const struct om_sip_hdr *h;
	struct om_buf *bp = out;
	size_t start = out->len;

	if (!opts)
		opts = &none;
	if (!req->is_request || status < 100 || status > 699 || !req->first[OM_SIP_HDR_VIA] ||
	    has_crlf(phrase) || has_crlf(opts->to_tag) || has_crlf(opts->content_type))
		return EINVAL;
	if (out->err)
		return out->err;
	if (!phrase)
		phrase = om_sip_status_phrase(status);
	/* no printf on this path: it runs for every answer */
	char num[24];
	om_buf_adds(bp, "SIP/2.0 ");
	om_buf_add(bp, num, u64_dec(num, (uint64_t)status));
	om_buf_add(bp, " ", 1);
	om_buf_adds(bp, phrase);
	om_buf_add(bp, "\r\n", 2);
	for (h = om_sip_msg_hdr(req, OM_SIP_HDR_VIA); h; h = om_sip_msg_hdr_next(req, h))
		add_hdr(bp, "Via", h->value);
	if ((h = om_sip_msg_hdr(req, OM_SIP_HDR_FROM)))
		add_hdr(bp, "From", h->value);
	if ((h = om_sip_msg_hdr(req, OM_SIP_HDR_TO))) {
		om_buf_adds(bp, "To: ");
		add_value(bp, h->value);
		if (status > 100 && opts->to_tag && opts->to_tag[0] &&
		    !om_sip_addr_has_tag(h->value, req->limits.max_uri)) {
			om_buf_adds(bp, ";tag=");
			om_buf_adds(bp, opts->to_tag);
		}
		om_buf_adds(bp, "\r\n");
	}
	if ((h = om_sip_msg_hdr(req, OM_SIP_HDR_CALL_ID)))
		add_hdr(bp, "Call-ID", h->value);
	if ((h = om_sip_msg_hdr(req, OM_SIP_HDR_CSEQ)))
		add_hdr(bp, "CSeq", h->value);
	if (status > 100 && status < 300)
		for (h = om_sip_msg_hdr(req, OM_SIP_HDR_RECORD_ROUTE); h;
		     h = om_sip_msg_hdr_next(req, h))
			add_hdr(bp, "Record-Route", h->value);
	if (opts->extra)
		om_buf_adds(bp, opts->extra);
	if (opts->body.len) {
		om_buf_adds(bp, "Content-Type: ");
		om_buf_adds(bp, opts->content_type ? opts->content_type : "application/sdp");
		om_buf_add(bp, "\r\n", 2);
	}
	om_buf_adds(bp, "Content-Length: ");
	om_buf_add(bp, num, u64_dec(num, opts->body.len));
	om_buf_add(bp, "\r\n\r\n", 4);
	if (opts->body.len)
		om_buf_add(bp, opts->body.p, opts->body.len);
	if (out->err) {
		out->len = start;
		return out->err;
	}
	return 0;
}

int om_sip_request_build(enum om_sip_method m, const struct om_sip_req_opts *o, struct om_buf *out)
{
	const char *name = om_sip_method_name(m);
	struct om_buf *bp = out;
	size_t start = out->len;

	if (!name[0] || !o->ruri || !o->via_transport || !o->via_sent_by || !o->branch ||
	    !o->from || !o->to || !o->call_id || has_crlf(o->ruri) || has_crlf(o->from) ||
	    has_crlf(o->to) || has_crlf(o->call_id) || has_crlf(o->from_tag) ||
	    has_crlf(o->branch) || has_crlf(o->via_sent_by) || has_crlf(o->content_type))
		return EINVAL;
	if (out->err)
		return out->err;
	om_buf_printf(bp, "%s %s SIP/2.0\r\n", name, o->ruri);
	om_buf_printf(bp, "Via: SIP/2.0/%s %s;branch=%s;rport\r\n", o->via_transport,
	              o->via_sent_by, o->branch);
	om_buf_printf(bp, "Max-Forwards: %u\r\n", o->max_forwards ? o->max_forwards : 70);
	om_buf_printf(bp, "From: %s", o->from);
	if (o->from_tag)
		om_buf_printf(bp, ";tag=%s", o->from_tag);
	om_buf_printf(bp, "\r\nTo: %s\r\n", o->to);
	om_buf_printf(bp, "Call-ID: %s\r\n", o->call_id);
	om_buf_printf(bp, "CSeq: %u %s\r\n", (unsigned)o->cseq, name);
	if (o->extra)
		om_buf_adds(bp, o->extra);
	if (o->body.len)
		om_buf_printf(bp, "Content-Type: %s\r\n",
		              o->content_type ? o->content_type : "application/sdp");
	om_buf_printf(bp, "Content-Length: %zu\r\n\r\n", o->body.len);
	if (o->body.len)
		om_buf_add(bp, o->body.p, o->body.len);
	if (out->err) {
		out->len = start;
		return out->err;
	}
	return 0;
}
