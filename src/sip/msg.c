/* msg.c — SIP message splitting: start line, header fields, body, and the
 * stream framing helper (RFC 3261 §7, §7.3.1, §7.5, §18.3, §20.14).
 *
 * The parser works in place: the message object holds slices into the
 * caller's buffer and one array of header fields, allocated together in a
 * single om_malloc. Structured header parsing is left to the getters. */
#include "sip/sip_int.h"

#include "core/alloc.h"

#include <errno.h>
#include <string.h>

/* ================================================================== */
/* Reasons                                                             */

static const struct {
	short status;
	const char *text;
} reasons[OM_SIP_R__COUNT] = {
	[OM_SIP_R_OK] = { 200, "ok" },
	[OM_SIP_R_MSG_TOO_LARGE] = { 513, "message too large" },
	[OM_SIP_R_LINE_TOO_LONG] = { 513, "header field too long" },
	[OM_SIP_R_TOO_MANY_HEADERS] = { 513, "too many header fields" },
	[OM_SIP_R_TOO_MANY_VIA] = { 513, "too many Via entries" },
	[OM_SIP_R_URI_TOO_LONG] = { 414, "Request-URI too long" },
	[OM_SIP_R_BODY_TOO_LARGE] = { 413, "body too large" },
	[OM_SIP_R_HEADERS_INCOMPLETE] = { 400, "header section not terminated" },
	[OM_SIP_R_BAD_LINE_END] = { 400, "bare CR or LF" },
	[OM_SIP_R_BAD_CONTENT_LENGTH] = { 400, "bad Content-Length" },
	[OM_SIP_R_CONTENT_LENGTH_CONFLICT] = { 400, "conflicting Content-Length" },
	[OM_SIP_R_BODY_TRUNCATED] = { 400, "body shorter than Content-Length" },
	[OM_SIP_R_BAD_START_LINE] = { 400, "bad start line" },
	[OM_SIP_R_BAD_VERSION] = { 505, "unsupported SIP version" },
	[OM_SIP_R_BAD_STATUS] = { 400, "bad status line" },
	[OM_SIP_R_BAD_RURI] = { 400, "bad Request-URI" },
	[OM_SIP_R_BAD_HEADER] = { 400, "malformed header field" },
	[OM_SIP_R_MISSING_HEADER] = { 400, "missing mandatory header field" },
	[OM_SIP_R_DUP_HEADER] = { 400, "single-value header field repeated" },
	[OM_SIP_R_BAD_VIA] = { 400, "bad Via" },
	[OM_SIP_R_BAD_FROM] = { 400, "bad From" },
	[OM_SIP_R_BAD_TO] = { 400, "bad To" },
	[OM_SIP_R_BAD_CALL_ID] = { 400, "bad Call-ID" },
	[OM_SIP_R_BAD_CSEQ] = { 400, "bad CSeq" },
	[OM_SIP_R_CSEQ_METHOD] = { 400, "CSeq method does not match" },
	[OM_SIP_R_BAD_CONTACT] = { 400, "bad Contact" },
	[OM_SIP_R_BAD_ROUTE] = { 400, "bad Route or Record-Route" },
	[OM_SIP_R_BAD_MAX_FORWARDS] = { 400, "bad Max-Forwards" },
	[OM_SIP_R_BAD_DATE] = { 400, "bad Date" },
	[OM_SIP_R_BAD_OPTION_TAG] = { 400, "bad option tag" },
	[OM_SIP_R_BAD_CONTENT_TYPE] = { 400, "bad Content-Type" },
	[OM_SIP_R_BAD_EXPIRES] = { 400, "bad Expires" },
	[OM_SIP_R_UNSUPPORTED_SCHEME] = { 416, "unsupported URI scheme" },
	[OM_SIP_R_BAD_EXTENSION] = { 420, "unsupported extension" },
	[OM_SIP_R_NOT_IMPLEMENTED] = { 501, "method not implemented" },
	[OM_SIP_R_NOMEM] = { 500, "out of memory" },
};

int om_sip_reason_status(enum om_sip_reason r)
{
	if ((unsigned)r >= OM_SIP_R__COUNT)
		return 500;
	return reasons[r].status;
}

const char *om_sip_reason_str(enum om_sip_reason r)
{
	if ((unsigned)r >= OM_SIP_R__COUNT)
		return "unknown";
	return reasons[r].text;
}

const char *om_sip_status_phrase(int status)
{
	switch (status) {
	case 100:
		return "Trying";
	case 180:
		return "Ringing";
	case 181:
		return "Call Is Being Forwarded";
	case 182:
		return "Queued";
	case 183:
		return "Session Progress";
	case 200:
		return "OK";
	case 202:
		return "Accepted";
	case 300:
		return "Multiple Choices";
	case 301:
		return "Moved Permanently";
	case 302:
		return "Moved Temporarily";
	case 400:
		return "Bad Request";
	case 401:
		return "Unauthorized";
	case 403:
		return "Forbidden";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 406:
		return "Not Acceptable";
	case 407:
		return "Proxy Authentication Required";
	case 408:
		return "Request Timeout";
	case 413:
		return "Request Entity Too Large";
	case 414:
		return "Request-URI Too Long";
	case 415:
		return "Unsupported Media Type";
	case 416:
		return "Unsupported URI Scheme";
	case 420:
		return "Bad Extension";
	case 421:
		return "Extension Required";
	case 422:
		return "Session Interval Too Small";
	case 423:
		return "Interval Too Brief";
	case 480:
		return "Temporarily Unavailable";
	case 481:
		return "Call/Transaction Does Not Exist";
	case 482:
		return "Loop Detected";
	case 483:
		return "Too Many Hops";
	case 484:
		return "Address Incomplete";
	case 486:
		return "Busy Here";
	case 487:
		return "Request Terminated";
	case 488:
		return "Not Acceptable Here";
	case 491:
		return "Request Pending";
	case 500:
		return "Server Internal Error";
	case 501:
		return "Not Implemented";
	case 502:
		return "Bad Gateway";
	case 503:
		return "Service Unavailable";
	case 504:
		return "Server Time-out";
	case 505:
		return "Version Not Supported";
	case 513:
		return "Message Too Large";
	case 600:
		return "Busy Everywhere";
	case 603:
		return "Decline";
	case 604:
		return "Does Not Exist Anywhere";
	case 606:
		return "Not Acceptable";
	default:
		break;
	}
	if (status >= 100 && status < 200)
		return "Progress";
	if (status >= 200 && status < 300)
		return "OK";
	if (status >= 300 && status < 400)
		return "Redirect";
	if (status >= 400 && status < 500)
		return "Client Error";
	if (status >= 500 && status < 600)
		return "Server Error";
	return "Global Failure";
}

void om_sip_limits_default(struct om_sip_limits *l)
{
	l->max_msg = OM_SIP_MAX_MSG;
	l->max_headers = OM_SIP_MAX_HEADERS;
	l->max_line = OM_SIP_MAX_LINE;
	l->max_uri = OM_SIP_MAX_URI;
	l->max_via = OM_SIP_MAX_VIA;
}

/* ================================================================== */
/* Small shared helpers                                                */

bool om_sip_i_caseeq(struct om_str a, const char *b, size_t blen)
{
	if (a.len != blen)
		return false;
	for (size_t i = 0; i < blen; i++) {
		unsigned char x = (unsigned char)a.p[i], y = (unsigned char)b[i];
		if (x >= 'A' && x <= 'Z')
			x = (unsigned char)(x + 32);
		if (y >= 'A' && y <= 'Z')
			y = (unsigned char)(y + 32);
		if (x != y)
			return false;
	}
	return true;
}

struct om_str om_sip_i_trim(struct om_str s)
{
	while (s.len && sip_is_lws((unsigned char)s.p[0])) {
		s.p++;
		s.len--;
	}
	while (s.len && sip_is_lws((unsigned char)s.p[s.len - 1]))
		s.len--;
	return s;
}

bool om_sip_i_is_token(struct om_str s)
{
	return s.len > 0 && sip_token_end(s, 0) == s.len;
}

int om_sip_i_u64(struct om_str s, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;
	if (s.len == 0)
		return EBADMSG;
	for (size_t i = 0; i < s.len; i++) {
		unsigned char c = (unsigned char)s.p[i];
		if (!sip_is_digit(c))
			return EBADMSG;
	}
	for (size_t i = 0; i < s.len; i++) {
		unsigned d = (unsigned)(s.p[i] - '0');
		if (v > (max - d) / 10)
			return ERANGE;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

/* ================================================================== */
/* Methods and header names                                            */

static const char *const method_names[OM_SIP_METHOD__COUNT] = {
	[OM_SIP_METHOD_OTHER] = "",
	[OM_SIP_METHOD_INVITE] = "INVITE",
	[OM_SIP_METHOD_ACK] = "ACK",
	[OM_SIP_METHOD_BYE] = "BYE",
	[OM_SIP_METHOD_CANCEL] = "CANCEL",
	[OM_SIP_METHOD_OPTIONS] = "OPTIONS",
	[OM_SIP_METHOD_REGISTER] = "REGISTER",
	[OM_SIP_METHOD_INFO] = "INFO",
	[OM_SIP_METHOD_UPDATE] = "UPDATE",
	[OM_SIP_METHOD_PRACK] = "PRACK",
	[OM_SIP_METHOD_SUBSCRIBE] = "SUBSCRIBE",
	[OM_SIP_METHOD_NOTIFY] = "NOTIFY",
	[OM_SIP_METHOD_REFER] = "REFER",
	[OM_SIP_METHOD_MESSAGE] = "MESSAGE",
	[OM_SIP_METHOD_PUBLISH] = "PUBLISH",
};

enum om_sip_method om_sip_method_from_str(struct om_str s)
{
	for (int m = 1; m < OM_SIP_METHOD__COUNT; m++) {
		const char *n = method_names[m];
		size_t l = strlen(n);
		if (s.len == l && memcmp(s.p, n, l) == 0)
			return (enum om_sip_method)m;
	}
	return OM_SIP_METHOD_OTHER;
}

const char *om_sip_method_name(enum om_sip_method m)
{
	if ((unsigned)m >= OM_SIP_METHOD__COUNT)
		return "";
	return method_names[m];
}

/* Long names (RFC 3261 §20 and the extensions openum reads) and compact
 * forms (§7.3.3, RFC 3265, 3515, 3892, 4028). */
static const struct {
	const char *name;
	unsigned char len;
	char compact;
} hdr_names[OM_SIP_HDR__COUNT] = {
#define H(id, n, c) [id] = { n, sizeof(n) - 1, c }
	H(OM_SIP_HDR_ACCEPT, "Accept", 0),
	H(OM_SIP_HDR_ACCEPT_ENCODING, "Accept-Encoding", 0),
	H(OM_SIP_HDR_ACCEPT_LANGUAGE, "Accept-Language", 0),
	H(OM_SIP_HDR_ALERT_INFO, "Alert-Info", 0),
	H(OM_SIP_HDR_ALLOW, "Allow", 0),
	H(OM_SIP_HDR_ALLOW_EVENTS, "Allow-Events", 'u'),
	H(OM_SIP_HDR_AUTHENTICATION_INFO, "Authentication-Info", 0),
	H(OM_SIP_HDR_AUTHORIZATION, "Authorization", 0),
	H(OM_SIP_HDR_CALL_ID, "Call-ID", 'i'),
	H(OM_SIP_HDR_CALL_INFO, "Call-Info", 0),
	H(OM_SIP_HDR_CONTACT, "Contact", 'm'),
	H(OM_SIP_HDR_CONTENT_DISPOSITION, "Content-Disposition", 0),
	H(OM_SIP_HDR_CONTENT_ENCODING, "Content-Encoding", 'e'),
	H(OM_SIP_HDR_CONTENT_LANGUAGE, "Content-Language", 0),
	H(OM_SIP_HDR_CONTENT_LENGTH, "Content-Length", 'l'),
	H(OM_SIP_HDR_CONTENT_TYPE, "Content-Type", 'c'),
	H(OM_SIP_HDR_CSEQ, "CSeq", 0),
	H(OM_SIP_HDR_DATE, "Date", 0),
	H(OM_SIP_HDR_DIVERSION, "Diversion", 0),
	H(OM_SIP_HDR_ERROR_INFO, "Error-Info", 0),
	H(OM_SIP_HDR_EVENT, "Event", 'o'),
	H(OM_SIP_HDR_EXPIRES, "Expires", 0),
	H(OM_SIP_HDR_FROM, "From", 'f'),
	H(OM_SIP_HDR_HISTORY_INFO, "History-Info", 0),
	H(OM_SIP_HDR_IN_REPLY_TO, "In-Reply-To", 0),
	H(OM_SIP_HDR_MAX_FORWARDS, "Max-Forwards", 0),
	H(OM_SIP_HDR_MIME_VERSION, "MIME-Version", 0),
	H(OM_SIP_HDR_MIN_EXPIRES, "Min-Expires", 0),
	H(OM_SIP_HDR_MIN_SE, "Min-SE", 0),
	H(OM_SIP_HDR_ORGANIZATION, "Organization", 0),
	H(OM_SIP_HDR_P_ASSERTED_IDENTITY, "P-Asserted-Identity", 0),
	H(OM_SIP_HDR_P_PREFERRED_IDENTITY, "P-Preferred-Identity", 0),
	H(OM_SIP_HDR_PRIORITY, "Priority", 0),
	H(OM_SIP_HDR_PRIVACY, "Privacy", 0),
	H(OM_SIP_HDR_PROXY_AUTHENTICATE, "Proxy-Authenticate", 0),
	H(OM_SIP_HDR_PROXY_AUTHORIZATION, "Proxy-Authorization", 0),
	H(OM_SIP_HDR_PROXY_REQUIRE, "Proxy-Require", 0),
	H(OM_SIP_HDR_RACK, "RAck", 0),
	H(OM_SIP_HDR_REASON, "Reason", 0),
	H(OM_SIP_HDR_RECORD_ROUTE, "Record-Route", 0),
	H(OM_SIP_HDR_REFER_TO, "Refer-To", 'r'),
	H(OM_SIP_HDR_REFERRED_BY, "Referred-By", 'b'),
	H(OM_SIP_HDR_REPLY_TO, "Reply-To", 0),
	H(OM_SIP_HDR_REQUIRE, "Require", 0),
	H(OM_SIP_HDR_RETRY_AFTER, "Retry-After", 0),
	H(OM_SIP_HDR_ROUTE, "Route", 0),
	H(OM_SIP_HDR_RSEQ, "RSeq", 0),
	H(OM_SIP_HDR_SERVER, "Server", 0),
	H(OM_SIP_HDR_SESSION_EXPIRES, "Session-Expires", 'x'),
	H(OM_SIP_HDR_SUBJECT, "Subject", 's'),
	H(OM_SIP_HDR_SUBSCRIPTION_STATE, "Subscription-State", 0),
	H(OM_SIP_HDR_SUPPORTED, "Supported", 'k'),
	H(OM_SIP_HDR_TIMESTAMP, "Timestamp", 0),
	H(OM_SIP_HDR_TO, "To", 't'),
	H(OM_SIP_HDR_UNSUPPORTED, "Unsupported", 0),
	H(OM_SIP_HDR_USER_AGENT, "User-Agent", 0),
	H(OM_SIP_HDR_VIA, "Via", 'v'),
	H(OM_SIP_HDR_WARNING, "Warning", 0),
	H(OM_SIP_HDR_WWW_AUTHENTICATE, "WWW-Authenticate", 0),
#undef H
};

enum om_sip_hdr_id om_sip_hdr_id_from_name(struct om_str n)
{
	if (n.len == 0)
		return OM_SIP_HDR_OTHER;
	if (n.len == 1) {
		char c = n.p[0];
		if (c >= 'A' && c <= 'Z')
			c = (char)(c + 32);
		for (int i = 1; i < OM_SIP_HDR__COUNT; i++)
			if (hdr_names[i].compact == c)
				return (enum om_sip_hdr_id)i;
		return OM_SIP_HDR_OTHER;
	}
	for (int i = 1; i < OM_SIP_HDR__COUNT; i++)
		if (hdr_names[i].len == n.len && om_sip_i_caseeq(n, hdr_names[i].name, n.len))
			return (enum om_sip_hdr_id)i;
	return OM_SIP_HDR_OTHER;
}

const char *om_sip_hdr_name(enum om_sip_hdr_id id)
{
	if (id <= OM_SIP_HDR_OTHER || id >= OM_SIP_HDR__COUNT)
		return NULL;
	return hdr_names[id].name;
}

/* ================================================================== */
/* Header section scanning (shared by framing and parsing)             */

/*
 * message-header = field-name *(SP/HT) ":" SWS field-value CRLF
 * field-value continues on lines that start with SP or HT (folding, §7.3.1).
 * The header section ends with an empty line (CRLF CRLF).
 *
 * next_field() reads one header field starting at `i` (the first byte of a
 * line). It returns the index of the first byte after the field's final
 * CRLF and fills name/value; *end is set when the line at `i` is the empty
 * line. Returns 0 and *reason on error, or when the data runs out (then
 * *reason is OM_SIP_R_HEADERS_INCOMPLETE).
 */
struct field {
	struct om_str name;
	struct om_str value;
};

static size_t next_line_end(const char *b, size_t len, size_t i, enum om_sip_reason *reason)
{
	/* Returns the index of the CR of the CRLF ending the line at i, or
	 * len if there is none yet. A bare LF is refused; a bare CR too. */
	const char *cr = memchr(b + i, '\r', len - i);
	const char *lf = memchr(b + i, '\n', cr ? (size_t)(cr - (b + i)) : len - i);
	if (lf) {
		*reason = OM_SIP_R_BAD_LINE_END;
		return (size_t)-1;
	}
	if (!cr)
		return len;
	size_t at = (size_t)(cr - b);
	if (at + 1 < len && b[at + 1] != '\n') {
		*reason = OM_SIP_R_BAD_LINE_END;
		return (size_t)-1;
	}
	return at; /* at + 1 == len: CR seen, LF not yet */
}

static size_t next_field(const char *b, size_t len, size_t i, size_t max_line, struct field *f,
                         bool *end, enum om_sip_reason *reason)
{
	size_t start = i, e;
	*end = false;
	e = next_line_end(b, len, i, reason);
	if (e == (size_t)-1)
		return 0;
	if (e + 1 >= len) {
		*reason = OM_SIP_R_HEADERS_INCOMPLETE;
		return 0;
	}
	if (e == i) {
		*end = true;
		return i + 2;
	}
	if (b[i] == ' ' || b[i] == '\t') { /* continuation with nothing before */
		*reason = OM_SIP_R_BAD_HEADER;
		return 0;
	}
	/* folded continuation lines */
	for (;;) {
		if (e - start > max_line) {
			*reason = OM_SIP_R_LINE_TOO_LONG;
			return 0;
		}
		if (e + 2 >= len) {
			/* Need the next byte to know whether the field goes on. */
			*reason = OM_SIP_R_HEADERS_INCOMPLETE;
			f->name = OM_STR_NULL;
			f->value = (struct om_str){ b + start, e - start };
			return 0;
		}
		if (b[e + 2] != ' ' && b[e + 2] != '\t')
			break;
		e = next_line_end(b, len, e + 2, reason);
		if (e == (size_t)-1)
			return 0;
		if (e + 1 >= len) {
			*reason = OM_SIP_R_HEADERS_INCOMPLETE;
			return 0;
		}
	}
	/* name *(SP/HT) ":" value */
	struct om_str line = { b + start, e - start };
	size_t n = sip_token_end(line, 0);
	if (n == 0) {
		*reason = OM_SIP_R_BAD_HEADER;
		return 0;
	}
	size_t c = n;
	while (c < line.len && (line.p[c] == ' ' || line.p[c] == '\t'))
		c++;
	if (c >= line.len || line.p[c] != ':') {
		*reason = OM_SIP_R_BAD_HEADER;
		return 0;
	}
	f->name = (struct om_str){ line.p, n };
	f->value = om_sip_i_trim(sip_sub(line, c + 1, line.len));
	return e + 2;
}

/* Content-Length = ( "Content-Length" / "l" ) HCOLON 1*DIGIT */
static int content_length_value(struct om_str v, size_t max, size_t *out,
                                enum om_sip_reason *reason)
{
	uint64_t n;
	int err = om_sip_i_u64(v, UINT64_MAX, &n);
	if (err == EBADMSG) {
		*reason = OM_SIP_R_BAD_CONTENT_LENGTH;
		return EBADMSG;
	}
	if (err == ERANGE || n > max) {
		*reason = OM_SIP_R_BODY_TOO_LARGE;
		return EBADMSG;
	}
	*out = (size_t)n;
	return 0;
}

static bool is_content_length(struct om_str name)
{
	return om_sip_i_caseeq(name, "content-length", 14) || om_sip_i_caseeq(name, "l", 1);
}

/* ================================================================== */
/* Stream framing                                                      */

enum om_sip_frame_res om_sip_frame(const char *buf, size_t len, size_t max, size_t *msg_len,
                                   enum om_sip_reason *reason)
{
	size_t i = 0, cl = 0;
	bool have_cl = false, end = false;

	while (i < len && (buf[i] == '\r' || buf[i] == '\n'))
		i++;
	if (i > 0) {
		*msg_len = i;
		return OM_SIP_FRAME_SKIP;
	}
	*msg_len = 0; /* MORE: total length not known yet */
	if (len == 0)
		return OM_SIP_FRAME_MORE;
	size_t lim = len < max ? len : max;
	/* The caller calls again each time bytes arrive: look for the empty
	 * line with memmem first, so a peer trickling a header byte by byte
	 * costs a fast scan per call, not a full parse. */
	if (!memmem(buf, lim, "\r\n\r\n", 4))
		goto incomplete;
	/* start line */
	enum om_sip_reason r = OM_SIP_R_OK;
	size_t e = next_line_end(buf, lim, 0, &r);
	if (e == (size_t)-1) {
		*reason = r;
		return OM_SIP_FRAME_ERROR;
	}
	if (e + 1 >= lim)
		goto incomplete;
	i = e + 2;
	while (!end) {
		struct field f;
		size_t next = next_field(buf, lim, i, max, &f, &end, &r);
		if (next == 0) {
			if (r == OM_SIP_R_HEADERS_INCOMPLETE)
				goto incomplete;
			*reason = r;
			return OM_SIP_FRAME_ERROR;
		}
		if (!end && is_content_length(f.name)) {
			size_t v;
			if (content_length_value(f.value, max, &v, &r) != 0) {
				*reason =
				    r == OM_SIP_R_BODY_TOO_LARGE ? OM_SIP_R_BAD_CONTENT_LENGTH : r;
				return OM_SIP_FRAME_ERROR;
			}
			if (have_cl && v != cl) {
				*reason = OM_SIP_R_CONTENT_LENGTH_CONFLICT;
				return OM_SIP_FRAME_ERROR;
			}
			have_cl = true;
			cl = v;
		}
		i = next;
	}
	if (cl > max || i > max - cl) {
		*reason = OM_SIP_R_MSG_TOO_LARGE;
		return OM_SIP_FRAME_ERROR;
	}
	*msg_len = i + cl;
	if (i + cl > len)
		return OM_SIP_FRAME_MORE; /* header complete: the caller may wait for
					   * *msg_len bytes before calling again */
	return OM_SIP_FRAME_MSG;
incomplete:
	if (len >= max) {
		*reason = OM_SIP_R_MSG_TOO_LARGE;
		return OM_SIP_FRAME_ERROR;
	}
	return OM_SIP_FRAME_MORE;
}

enum om_sip_frame_res om_sip_framer_next(struct om_sip_framer *f, const char *buf, size_t len,
                                         size_t max, size_t *msg_len, enum om_sip_reason *reason)
{
	enum om_sip_frame_res r;
	if (f->need) {
		if (len < f->need) {
			*msg_len = f->need;
			return OM_SIP_FRAME_MORE; /* the body is still arriving */
		}
	} else if (len && buf[0] != '\r' && buf[0] != '\n') {
		size_t lim = len < max ? len : max;
		if (f->scan < lim && !memmem(buf + f->scan, lim - f->scan, "\r\n\r\n", 4)) {
			/* An empty line may straddle this end: search its last
			 * three bytes again next time. */
			f->scan = lim > 3 ? lim - 3 : 0;
			*msg_len = 0;
			if (len >= max) {
				*reason = OM_SIP_R_MSG_TOO_LARGE;
				*f = (struct om_sip_framer){ 0 };
				return OM_SIP_FRAME_ERROR;
			}
			return OM_SIP_FRAME_MORE;
		}
	}
	r = om_sip_frame(buf, len, max, msg_len, reason);
	if (r == OM_SIP_FRAME_MORE)
		f->need = *msg_len;
	else
		*f = (struct om_sip_framer){ 0 };
	return r;
}

/* ================================================================== */
/* Start line                                                          */

/*
 * Request-Line  = Method SP Request-URI SP SIP-Version CRLF
 * Status-Line   = SIP-Version SP Status-Code SP Reason-Phrase CRLF
 * SIP-Version   = "SIP" "/" 1*DIGIT "." 1*DIGIT
 * Status-Code   = 3DIGIT
 * Exactly one SP between the elements (RFC 4475 §3.1.2.9, §3.1.2.10).
 */
static bool is_version(struct om_str s, bool *is_20)
{
	if (s.len < 7 || !om_sip_i_caseeq((struct om_str){ s.p, 4 }, "sip/", 4))
		return false;
	size_t i = 4, d1 = 0, d2 = 0;
	while (i < s.len && sip_is_digit((unsigned char)s.p[i]))
		i++, d1++;
	if (d1 == 0 || i >= s.len || s.p[i] != '.')
		return false;
	i++;
	while (i < s.len && sip_is_digit((unsigned char)s.p[i]))
		i++, d2++;
	if (d2 == 0 || i != s.len)
		return false;
	*is_20 = s.len == 7 && s.p[4] == '2' && s.p[6] == '0';
	return true;
}

static int parse_start_line(struct om_sip_msg *m, struct om_str line,
                            const struct om_sip_limits *lim, enum om_sip_reason *reason)
{
	bool v20 = false;
	if (line.len >= 4 && om_sip_i_caseeq((struct om_str){ line.p, 4 }, "sip/", 4)) {
		/* status line */
		const char *sp = memchr(line.p, ' ', line.len);
		if (!sp || !is_version((struct om_str){ line.p, (size_t)(sp - line.p) }, &v20)) {
			*reason = OM_SIP_R_BAD_STATUS;
			return EBADMSG;
		}
		if (!v20) {
			*reason = OM_SIP_R_BAD_VERSION;
			return EBADMSG;
		}
		size_t i = (size_t)(sp - line.p) + 1;
		if (i + 3 > line.len || !sip_is_digit((unsigned char)line.p[i]) ||
		    !sip_is_digit((unsigned char)line.p[i + 1]) ||
		    !sip_is_digit((unsigned char)line.p[i + 2]) ||
		    (i + 3 < line.len && line.p[i + 3] != ' ')) {
			*reason = OM_SIP_R_BAD_STATUS;
			return EBADMSG;
		}
		int st =
		    (line.p[i] - '0') * 100 + (line.p[i + 1] - '0') * 10 + (line.p[i + 2] - '0');
		if (st < 100 || st > 699) {
			*reason = OM_SIP_R_BAD_STATUS;
			return EBADMSG;
		}
		m->is_request = false;
		m->status = st;
		m->status_phrase = i + 4 <= line.len ? sip_sub(line, i + 4, line.len) : OM_STR_NULL;
		return 0;
	}
	size_t mlen = sip_token_end(line, 0);
	if (mlen == 0 || mlen >= line.len || line.p[mlen] != ' ') {
		*reason = OM_SIP_R_BAD_START_LINE;
		return EBADMSG;
	}
	size_t u = mlen + 1;
	const char *sp = memchr(line.p + u, ' ', line.len - u);
	if (!sp || sp == line.p + u) {
		*reason = OM_SIP_R_BAD_START_LINE;
		return EBADMSG;
	}
	size_t ue = (size_t)(sp - line.p);
	struct om_str ver = sip_sub(line, ue + 1, line.len);
	if (!is_version(ver, &v20)) {
		*reason = OM_SIP_R_BAD_START_LINE;
		return EBADMSG;
	}
	if (!v20) {
		*reason = OM_SIP_R_BAD_VERSION;
		return EBADMSG;
	}
	if (ue - u > lim->max_uri) {
		*reason = OM_SIP_R_URI_TOO_LONG;
		return EBADMSG;
	}
	for (size_t k = u; k < ue; k++) {
		unsigned char c = (unsigned char)line.p[k];
		if (c <= 0x20 || c == 0x7f) {
			*reason = OM_SIP_R_BAD_RURI;
			return EBADMSG;
		}
	}
	m->is_request = true;
	m->method_name = (struct om_str){ line.p, mlen };
	m->method = om_sip_method_from_str(m->method_name);
	m->ruri = sip_sub(line, u, ue);
	return 0;
}

/* ================================================================== */
/* Message                                                             */

int om_sip_msg_parse(const char *buf, size_t len, const struct om_sip_limits *limits,
                     struct om_sip_msg **out, enum om_sip_reason *reason)
{
	struct om_sip_limits lim;
	struct om_sip_msg *m = NULL;
	enum om_sip_reason r = OM_SIP_R_OK;
	size_t i = 0, nfields = 0, hdr_end = 0;
	bool end = false;
	int err = EBADMSG;

	if (limits)
		lim = *limits;
	else
		om_sip_limits_default(&lim);
	if (lim.max_headers > UINT32_MAX - 1)
		lim.max_headers = UINT32_MAX - 1;
	while (i < len && (buf[i] == '\r' || buf[i] == '\n'))
		i++;
	size_t start = i;
	if (len - start > lim.max_msg) {
		r = OM_SIP_R_MSG_TOO_LARGE;
		goto out;
	}
	/* pass 1: start line, count fields, find the end of the header */
	size_t e = next_line_end(buf, len, start, &r);
	if (e == (size_t)-1)
		goto out;
	if (e + 1 >= len) {
		r = OM_SIP_R_HEADERS_INCOMPLETE;
		goto out;
	}
	/* the Request-URI has its own bound (414), checked below */
	if (e - start > lim.max_line && e - start - lim.max_line > lim.max_uri) {
		r = OM_SIP_R_LINE_TOO_LONG;
		goto out;
	}
	size_t first_field = e + 2;
	for (i = first_field; !end;) {
		struct field f = { OM_STR_NULL, OM_STR_NULL };
		if (i == len) { /* datagram ending after a header line's CRLF */
			hdr_end = len;
			break;
		}
		size_t next = next_field(buf, len, i, lim.max_line, &f, &end, &r);
		if (next == 0) {
			/* the last field of a datagram without the empty line */
			if (r == OM_SIP_R_HEADERS_INCOMPLETE && f.name.p == NULL && f.value.p &&
			    f.value.p + f.value.len + 2 == buf + len) {
				r = OM_SIP_R_OK;
				hdr_end = len;
				/* it counts against max_headers like any other */
				if (++nfields > lim.max_headers) {
					r = OM_SIP_R_TOO_MANY_HEADERS;
					goto out;
				}
				break;
			}
			goto out;
		}
		if (!end)
			nfields++;
		if (nfields > lim.max_headers) {
			r = OM_SIP_R_TOO_MANY_HEADERS;
			goto out;
		}
		i = next;
		hdr_end = i;
	}

	m = om_malloc(sizeof(*m) + nfields * sizeof(struct om_sip_hdr));
	if (!m) {
		r = OM_SIP_R_NOMEM;
		err = ENOMEM;
		goto out;
	}
	memset(m, 0, sizeof(*m));
	m->buf = buf;
	m->limits = lim;
	m->hdrs = (struct om_sip_hdr *)(m + 1);
	if (parse_start_line(m, (struct om_str){ buf + start, e - start }, &lim, &r) != 0)
		goto out;

	/* pass 2: fill the fields (pass 1 proved each one well-formed) */
	uint32_t last[OM_SIP_HDR__COUNT] = { 0 };
	i = first_field;
	while (m->nhdrs < nfields) {
		struct field f = { OM_STR_NULL, OM_STR_NULL };
		size_t next = next_field(buf, len, i, lim.max_line, &f, &end, &r);
		if (next == 0) {
			/* unterminated last field of a datagram: split it here */
			struct om_str line = f.value;
			size_t n = sip_token_end(line, 0), c = n;
			while (c < line.len && (line.p[c] == ' ' || line.p[c] == '\t'))
				c++;
			if (n == 0 || c >= line.len || line.p[c] != ':') {
				r = OM_SIP_R_BAD_HEADER;
				goto out;
			}
			f.name = (struct om_str){ line.p, n };
			f.value = om_sip_i_trim(sip_sub(line, c + 1, line.len));
			r = OM_SIP_R_OK;
			next = len;
		}
		struct om_sip_hdr *h = &m->hdrs[m->nhdrs];
		h->name = f.name;
		h->value = f.value;
		h->id = om_sip_hdr_id_from_name(f.name);
		h->next = 0;
		uint32_t idx = (uint32_t)m->nhdrs + 1;
		if (last[h->id])
			m->hdrs[last[h->id] - 1].next = idx;
		else
			m->first[h->id] = idx;
		last[h->id] = idx;
		m->count[h->id]++;
		m->nhdrs++;
		if (h->id == OM_SIP_HDR_CONTENT_LENGTH) {
			size_t v;
			if (content_length_value(h->value, lim.max_msg, &v, &r) != 0)
				goto out;
			if (m->has_content_length && v != m->content_length) {
				r = OM_SIP_R_CONTENT_LENGTH_CONFLICT;
				goto out;
			}
			m->has_content_length = true;
			m->content_length = v;
		}
		i = next;
	}
	if (m->count[OM_SIP_HDR_VIA] > lim.max_via) {
		r = OM_SIP_R_TOO_MANY_VIA;
		goto out;
	}
	if (m->has_content_length) {
		if (m->content_length > len - hdr_end) {
			r = OM_SIP_R_BODY_TRUNCATED;
			goto out;
		}
		m->body = (struct om_str){ buf + hdr_end, m->content_length };
		m->len = hdr_end + m->content_length;
	} else {
		m->body = (struct om_str){ buf + hdr_end, len - hdr_end };
		m->len = len;
	}
	*out = m;
	m = NULL;
	err = 0;
out:
	om_free(m);
	if (err)
		*reason = r;
	return err;
}

void om_sip_msg_free(struct om_sip_msg *msg)
{
	om_free(msg);
}

const struct om_sip_hdr *om_sip_msg_hdr(const struct om_sip_msg *msg, enum om_sip_hdr_id id)
{
	if ((unsigned)id >= OM_SIP_HDR__COUNT || !msg->first[id])
		return NULL;
	return &msg->hdrs[msg->first[id] - 1];
}

const struct om_sip_hdr *om_sip_msg_hdr_next(const struct om_sip_msg *msg,
                                             const struct om_sip_hdr *h)
{
	return h->next ? &msg->hdrs[h->next - 1] : NULL;
}

const struct om_sip_hdr *om_sip_msg_hdr_by_name(const struct om_sip_msg *msg, const char *name)
{
	size_t l = strlen(name);
	for (size_t i = 0; i < msg->nhdrs; i++)
		if (om_sip_i_caseeq(msg->hdrs[i].name, name, l))
			return &msg->hdrs[i];
	return NULL;
}

/* ================================================================== */
/* Comma-separated lists                                               */

size_t om_sip_i_quoted_end(struct om_str s, size_t i)
{
	/* quoted-string = SWS DQUOTE *(qdtext / quoted-pair) DQUOTE */
	for (i++; i < s.len; i++) {
		char c = s.p[i];
		if (c == '"')
			return i + 1;
		if (c == '\\') {
			if (i + 1 >= s.len || s.p[i + 1] == '\r' || s.p[i + 1] == '\n')
				return 0;
			i++;
		}
	}
	return 0;
}

/* Element boundaries: a comma outside quotes and <...>. */
int om_sip_msg_list_next(const struct om_sip_msg *msg, enum om_sip_hdr_id id,
                         struct om_sip_iter *it, struct om_str *elem)
{
	const struct om_sip_hdr *h;
	if (!it->started) {
		it->started = true;
		it->hdr = (unsigned)id < OM_SIP_HDR__COUNT ? msg->first[id] : 0;
		it->off = 0;
	}
	for (;;) {
		if (!it->hdr)
			return ENOENT;
		h = &msg->hdrs[it->hdr - 1];
		if (it->off < h->value.len)
			break;
		it->hdr = h->next;
		it->off = 0;
	}
	struct om_str v = h->value;
	size_t i = it->off, st = i;
	bool angle = false;
	while (i < v.len) {
		char c = v.p[i];
		if (c == '"') {
			size_t q = om_sip_i_quoted_end(v, i);
			if (!q)
				return EBADMSG;
			i = q;
			continue;
		}
		if (c == '<')
			angle = true;
		else if (c == '>')
			angle = false;
		else if (c == ',' && !angle)
			break;
		i++;
	}
	if (angle)
		return EBADMSG;
	struct om_str e = om_sip_i_trim(sip_sub(v, st, i));
	if (i < v.len) {
		i++; /* comma */
		if (i >= v.len || om_sip_i_trim(sip_sub(v, i, v.len)).len == 0)
			return EBADMSG; /* trailing comma */
	}
	it->off = i;
	if (it->off >= v.len) {
		it->hdr = h->next;
		it->off = 0;
	}
	if (e.len == 0)
		return EBADMSG;
	*elem = e;
	return 0;
}
