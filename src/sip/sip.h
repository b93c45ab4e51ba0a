/* sip.h — SIP message parser, validator, stream framing and printer
 * (RFC 3261 §7, §18.3, §19, §20, §25; RFC 4475 and RFC 5118 torture tests).
 *
 * Zero-copy: a parsed message (struct om_sip_msg) holds slices into the
 * caller's buffer, which must outlive it. om_sip_msg_parse() splits the
 * start line and the header fields (name, value, compact forms mapped to an
 * id) and frames the body; everything else is parsed on demand by the
 * getters below, which never allocate. om_sip_msg_validate() runs every
 * check a server needs before answering a request (RFC 4475 §3.1.2, §3.3).
 *
 * Errors: functions return 0 or a positive errno (EBADMSG for a protocol
 * error, ENOMEM, ENOENT for an absent header). Where a protocol error is
 * possible an `enum om_sip_reason` says which, and om_sip_reason_status()
 * maps it to the SIP status to answer with. Reason texts are static: input
 * is never reflected back in them. */
#ifndef OM_SIP_SIP_H
#define OM_SIP_SIP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/str.h"

/* ------------------------------------------------------------------ */
/* Reasons                                                             */

enum om_sip_reason {
	OM_SIP_R_OK = 0,
	/* bounds (limits) */
	OM_SIP_R_MSG_TOO_LARGE,    /* 513 */
	OM_SIP_R_LINE_TOO_LONG,    /* 513 */
	OM_SIP_R_TOO_MANY_HEADERS, /* 513 */
	OM_SIP_R_TOO_MANY_VIA,     /* 513 */
	OM_SIP_R_URI_TOO_LONG,     /* 414 */
	OM_SIP_R_BODY_TOO_LARGE,   /* 413 */
	/* framing */
	OM_SIP_R_HEADERS_INCOMPLETE,      /* 400: no end of the header section */
	OM_SIP_R_BAD_LINE_END,            /* 400: bare CR or LF */
	OM_SIP_R_BAD_CONTENT_LENGTH,      /* 400: negative, non-numeric, absurd */
	OM_SIP_R_CONTENT_LENGTH_CONFLICT, /* 400: several values that differ */
	OM_SIP_R_BODY_TRUNCATED,          /* 400: Content-Length beyond the data */
	/* start line */
	OM_SIP_R_BAD_START_LINE, /* 400 */
	OM_SIP_R_BAD_VERSION,    /* 505 */
	OM_SIP_R_BAD_STATUS,     /* response: drop */
	OM_SIP_R_BAD_RURI,       /* 400 */
	/* header fields */
	OM_SIP_R_BAD_HEADER,     /* 400: not "name: value" */
	OM_SIP_R_MISSING_HEADER, /* 400: Via, From, To, Call-ID or CSeq */
	OM_SIP_R_DUP_HEADER,     /* 400: single-value header twice */
	OM_SIP_R_BAD_VIA,
	OM_SIP_R_BAD_FROM,
	OM_SIP_R_BAD_TO,
	OM_SIP_R_BAD_CALL_ID,
	OM_SIP_R_BAD_CSEQ,
	OM_SIP_R_CSEQ_METHOD, /* 400: CSeq method differs from the request's */
	OM_SIP_R_BAD_CONTACT,
	OM_SIP_R_BAD_ROUTE,
	OM_SIP_R_BAD_MAX_FORWARDS,
	OM_SIP_R_BAD_DATE,
	OM_SIP_R_BAD_OPTION_TAG, /* 400: Require / Proxy-Require / Supported */
	OM_SIP_R_BAD_CONTENT_TYPE,
	OM_SIP_R_BAD_EXPIRES,
	/* for the transaction user (not produced by validate) */
	OM_SIP_R_UNSUPPORTED_SCHEME, /* 416 */
	OM_SIP_R_BAD_EXTENSION,      /* 420 */
	OM_SIP_R_NOT_IMPLEMENTED,    /* 501 */
	OM_SIP_R_NOMEM,              /* 500 */
	OM_SIP_R__COUNT
};

/* SIP status to answer a request with (400, 413, 414, 416, 420, 500, 501,
 * 505, 513; 200 for OM_SIP_R_OK). A response with a bad status line is
 * dropped, never answered. */
int om_sip_reason_status(enum om_sip_reason r);
/* Short static text (e.g. "bad Via"), fit for a log or a Warning. */
const char *om_sip_reason_str(enum om_sip_reason r);
/* RFC 3261 §21 default reason phrase for a status ("Bad Request"). */
const char *om_sip_status_phrase(int status);

/* ------------------------------------------------------------------ */
/* Limits                                                              */

struct om_sip_limits {
	size_t max_msg;     /* whole message, headers + body (64 KiB) */
	size_t max_headers; /* header field lines (256) */
	size_t max_line;    /* one header field, folded lines included (8 KiB) */
	size_t max_uri;     /* Request-URI (2 KiB) */
	size_t max_via;     /* Via entries (70) */
};

#define OM_SIP_MAX_MSG     (64 * 1024)
#define OM_SIP_MAX_HEADERS 256
#define OM_SIP_MAX_LINE    (8 * 1024)
#define OM_SIP_MAX_URI     (2 * 1024)
#define OM_SIP_MAX_VIA     70

/* The defaults above. */
void om_sip_limits_default(struct om_sip_limits *l);

/* ------------------------------------------------------------------ */
/* Stream framing (RFC 3261 §18.3, §7.5; RFC 5626 §3.5.1 keep-alives)  */

enum om_sip_frame_res {
	OM_SIP_FRAME_MORE,  /* not enough bytes yet; *len: total needed, 0 if unknown */
	OM_SIP_FRAME_MSG,   /* a complete message of *len bytes starts at buf */
	OM_SIP_FRAME_SKIP,  /* *len CR/LF bytes (keep-alive) to drop first */
	OM_SIP_FRAME_ERROR, /* framing lost: close the connection (*reason) */
};

/* Look at the bytes received so far on a stream connection. `max` bounds
 * the message (headers + body). A negative, non-numeric, duplicated-and-
 * different or absurd (> max) Content-Length is a framing error; so is a
 * header section that reaches `max` without ending. A missing
 * Content-Length means an empty body. Once the header section is complete
 * but the body is not, MORE sets *msg_len to the total length, so the
 * caller can wait for that many bytes instead of calling again per read
 * (a body trickled byte by byte then costs one header parse, not one per
 * byte). */
enum om_sip_frame_res om_sip_frame(const char *buf, size_t len, size_t max, size_t *msg_len,
                                   enum om_sip_reason *reason);

/* The same framing for a stream read piece by piece, in time linear in the
 * bytes received: the state keeps where the empty line ending the header
 * section was last searched for and, once the header section is complete,
 * the message's total length, so bytes arriving one at a time (or one per
 * TLS record) are neither searched nor parsed again. Each call must see the
 * buffer of the previous call with bytes appended; after MSG or SKIP the
 * caller drops *msg_len bytes from the front (the state resets itself).
 * Results are exactly om_sip_frame's on the same buffer. Zero-initialise. */
struct om_sip_framer {
	size_t need; /* header complete: the message's total length (0: unknown) */
	size_t scan; /* no empty line starts before this offset */
};
enum om_sip_frame_res om_sip_framer_next(struct om_sip_framer *f, const char *buf, size_t len,
                                         size_t max, size_t *msg_len, enum om_sip_reason *reason);

/* ------------------------------------------------------------------ */
/* Methods, header ids, URIs                                          */

enum om_sip_method {
	OM_SIP_METHOD_OTHER = 0,
	OM_SIP_METHOD_INVITE,
	OM_SIP_METHOD_ACK,
	OM_SIP_METHOD_BYE,
	OM_SIP_METHOD_CANCEL,
	OM_SIP_METHOD_OPTIONS,
	OM_SIP_METHOD_REGISTER,
	OM_SIP_METHOD_INFO,
	OM_SIP_METHOD_UPDATE,
	OM_SIP_METHOD_PRACK,
	OM_SIP_METHOD_SUBSCRIBE,
	OM_SIP_METHOD_NOTIFY,
	OM_SIP_METHOD_REFER,
	OM_SIP_METHOD_MESSAGE,
	OM_SIP_METHOD_PUBLISH,
	OM_SIP_METHOD__COUNT
};

/* Method token (case-sensitive, RFC 3261 §7.1) to enum. */
enum om_sip_method om_sip_method_from_str(struct om_str s);
const char *om_sip_method_name(enum om_sip_method m); /* "" for OTHER */

enum om_sip_hdr_id {
	OM_SIP_HDR_OTHER = 0,
	OM_SIP_HDR_ACCEPT,
	OM_SIP_HDR_ACCEPT_ENCODING,
	OM_SIP_HDR_ACCEPT_LANGUAGE,
	OM_SIP_HDR_ALERT_INFO,
	OM_SIP_HDR_ALLOW,
	OM_SIP_HDR_ALLOW_EVENTS,
	OM_SIP_HDR_AUTHENTICATION_INFO,
	OM_SIP_HDR_AUTHORIZATION,
	OM_SIP_HDR_CALL_ID,
	OM_SIP_HDR_CALL_INFO,
	OM_SIP_HDR_CONTACT,
	OM_SIP_HDR_CONTENT_DISPOSITION,
	OM_SIP_HDR_CONTENT_ENCODING,
	OM_SIP_HDR_CONTENT_LANGUAGE,
	OM_SIP_HDR_CONTENT_LENGTH,
	OM_SIP_HDR_CONTENT_TYPE,
	OM_SIP_HDR_CSEQ,
	OM_SIP_HDR_DATE,
	OM_SIP_HDR_DIVERSION,
	OM_SIP_HDR_ERROR_INFO,
	OM_SIP_HDR_EVENT,
	OM_SIP_HDR_EXPIRES,
	OM_SIP_HDR_FROM,
	OM_SIP_HDR_HISTORY_INFO,
	OM_SIP_HDR_IN_REPLY_TO,
	OM_SIP_HDR_MAX_FORWARDS,
	OM_SIP_HDR_MIME_VERSION,
	OM_SIP_HDR_MIN_EXPIRES,
	OM_SIP_HDR_MIN_SE,
	OM_SIP_HDR_ORGANIZATION,
	OM_SIP_HDR_P_ASSERTED_IDENTITY,
	OM_SIP_HDR_P_PREFERRED_IDENTITY,
	OM_SIP_HDR_PRIORITY,
	OM_SIP_HDR_PRIVACY,
	OM_SIP_HDR_PROXY_AUTHENTICATE,
	OM_SIP_HDR_PROXY_AUTHORIZATION,
	OM_SIP_HDR_PROXY_REQUIRE,
	OM_SIP_HDR_RACK,
	OM_SIP_HDR_REASON,
	OM_SIP_HDR_RECORD_ROUTE,
	OM_SIP_HDR_REFER_TO,
	OM_SIP_HDR_REFERRED_BY,
	OM_SIP_HDR_REPLY_TO,
	OM_SIP_HDR_REQUIRE,
	OM_SIP_HDR_RETRY_AFTER,
	OM_SIP_HDR_ROUTE,
	OM_SIP_HDR_RSEQ,
	OM_SIP_HDR_SERVER,
	OM_SIP_HDR_SESSION_EXPIRES,
	OM_SIP_HDR_SUBJECT,
	OM_SIP_HDR_SUBSCRIPTION_STATE,
	OM_SIP_HDR_SUPPORTED,
	OM_SIP_HDR_TIMESTAMP,
	OM_SIP_HDR_TO,
	OM_SIP_HDR_UNSUPPORTED,
	OM_SIP_HDR_USER_AGENT,
	OM_SIP_HDR_VIA,
	OM_SIP_HDR_WARNING,
	OM_SIP_HDR_WWW_AUTHENTICATE,
	OM_SIP_HDR__COUNT
};

/* Header name (long or compact form, any case) to id; OTHER if unknown. */
enum om_sip_hdr_id om_sip_hdr_id_from_name(struct om_str name);
/* Canonical long name ("Call-ID"); NULL for OTHER. */
const char *om_sip_hdr_name(enum om_sip_hdr_id id);

enum om_sip_scheme {
	OM_SIP_SCHEME_OTHER = 0, /* any other absoluteURI: only `opaque` is set */
	OM_SIP_SCHEME_SIP,
	OM_SIP_SCHEME_SIPS,
	OM_SIP_SCHEME_TEL,
};

/* RFC 3261 §19.1, §25.1; RFC 3966 (tel); RFC 5118 (IPv6 references).
 *   SIP-URI = "sip:" [ userinfo ] hostport uri-parameters [ headers ]
 * Slices are raw (still %-escaped). For tel, `user` is the number. */
struct om_sip_uri {
	enum om_sip_scheme scheme;
	struct om_str raw; /* the whole URI */
	struct om_str scheme_name;
	struct om_str opaque; /* everything after "scheme:" */
	struct om_str user;
	struct om_str password;
	struct om_str host;    /* IPv6 without the brackets */
	struct om_str params;  /* after the first ';' (without it), up to '?' */
	struct om_str headers; /* after '?' (without it) */
	uint16_t port;
	bool has_user;
	bool has_password;
	bool has_port;
	bool ipv6;
};

/* Parse a URI (no surrounding whitespace or brackets). `max` bounds its
 * length (0: no bound). Unknown schemes are accepted as absoluteURI when
 * well-formed. EBADMSG if malformed, EMSGSIZE if longer than max. */
int om_sip_uri_parse(struct om_str s, size_t max, struct om_sip_uri *out);
/* Find parameter `name` (case-insensitive) in a ";"-separated parameter
 * list (URI or header parameters, leading ';' optional). 0 and *value
 * (empty for a parameter without value) if present, ENOENT if not. */
int om_sip_param_find(struct om_str params, const char *name, struct om_str *value);
/* Iterate parameters: `*rest` starts as the list and shrinks. 0 with the
 * next name/value, ENOENT at the end, EBADMSG on an empty parameter. */
int om_sip_param_next(struct om_str *rest, struct om_str *name, struct om_str *value);
/* Decode %XX escapes into out (at most cap bytes; NULs kept). Returns the
 * decoded length, or -1 when a '%' is not followed by two hex digits or
 * the output does not fit. */
long om_sip_unescape(struct om_str in, char *out, size_t cap);
/* Compare two URI components after decoding escapes (case-sensitive,
 * RFC 3261 §19.1.4 for user and password); false if either is malformed. */
bool om_sip_escaped_eq(struct om_str a, struct om_str b);

/* RFC 3261 §19.1.4 equality: same scheme; user and password
 * case-sensitive after decoding escapes; host case-insensitive (IP
 * literals by value, RFC 5954); port present in both or neither and equal;
 * user, ttl, method, maddr and transport parameters equal when present in
 * either, other parameters only when present in both; headers equal.
 * (Header order is not normalised: differently ordered headers are
 * reported unequal.) */
bool om_sip_uri_eq(const struct om_sip_uri *a, const struct om_sip_uri *b);

/* ------------------------------------------------------------------ */
/* The message                                                         */

struct om_sip_hdr {
	enum om_sip_hdr_id id;
	struct om_str name;  /* as received */
	struct om_str value; /* LWS trimmed; may contain folded CRLF+WSP */
	uint32_t next;       /* index + 1 of the next header with this id; 0 */
};

/* All fields read-only; slices point into the buffer given to parse. */
struct om_sip_msg {
	const char *buf;
	size_t len; /* bytes this message used (a datagram may carry more) */
	bool is_request;
	/* request line */
	enum om_sip_method method;
	struct om_str method_name;
	struct om_str ruri;
	/* status line */
	int status;
	struct om_str status_phrase;
	/* header fields in order */
	struct om_sip_hdr *hdrs;
	size_t nhdrs;
	uint32_t first[OM_SIP_HDR__COUNT]; /* index + 1 of the first; 0 */
	uint32_t count[OM_SIP_HDR__COUNT]; /* header lines per id */
	/* body */
	bool has_content_length;
	size_t content_length;
	struct om_str body;
	struct om_sip_limits limits;
};

/* Parse one message in buf[0, len) (a datagram, or what om_sip_frame
 * delimited). limits may be NULL (defaults). On success *msg is owned by
 * the caller (om_sip_msg_free). On EBADMSG, *reason says why; ENOMEM sets
 * it to OM_SIP_R_NOMEM. Leading CRLFs are skipped. Without Content-Length
 * the body is the rest of the buffer; with one, trailing bytes are left
 * (msg->len says where the message ended). A buffer that ends right after
 * a header line's CRLF (no empty line) is accepted as a datagram without
 * body. */
int om_sip_msg_parse(const char *buf, size_t len, const struct om_sip_limits *limits,
                     struct om_sip_msg **msg, enum om_sip_reason *reason);
void om_sip_msg_free(struct om_sip_msg *msg);

/* Every check needed before answering (RFC 3261 §8.2, §20; RFC 4475):
 * mandatory headers present, single-value headers once, CSeq number and
 * method (request: equal to the request method), every Via, From, To,
 * Contact, Route and Record-Route entry, Request-URI syntax (no headers in
 * a SIP Request-URI), Max-Forwards, Date, option tags, Via count. 0 or
 * EBADMSG with *reason. Semantic questions (unknown scheme: 416, unknown
 * Require: 420, unknown method: 501) are left to the caller. */
int om_sip_msg_validate(const struct om_sip_msg *msg, enum om_sip_reason *reason);

/* First header with this id (NULL if none); then h->next. */
const struct om_sip_hdr *om_sip_msg_hdr(const struct om_sip_msg *msg, enum om_sip_hdr_id id);
const struct om_sip_hdr *om_sip_msg_hdr_next(const struct om_sip_msg *msg,
                                             const struct om_sip_hdr *h);
/* First header whose name equals `name` (case-insensitive; for
 * extension headers). */
const struct om_sip_hdr *om_sip_msg_hdr_by_name(const struct om_sip_msg *msg, const char *name);

/* Iterator over the comma-separated values of every header with an id
 * (Via, Contact, Route, Require, ...), in order. Commas inside quoted
 * strings and <...> do not split. */
struct om_sip_iter {
	uint32_t hdr; /* index + 1 of the current header; 0 before start */
	size_t off;   /* offset inside its value */
	bool started;
};
/* 0 with the next trimmed element, ENOENT at the end, EBADMSG on an
 * empty element (",,") or an unterminated quote/bracket. */
int om_sip_msg_list_next(const struct om_sip_msg *msg, enum om_sip_hdr_id id,
                         struct om_sip_iter *it, struct om_str *elem);

/* ---- Via (RFC 3261 §20.42, §18.2.2; RFC 3581 rport; RFC 5923 alias) */
struct om_sip_via {
	struct om_str raw;
	struct om_str protocol;  /* "SIP" */
	struct om_str version;   /* "2.0" */
	struct om_str transport; /* "UDP", "TCP", "TLS", ... */
	struct om_str host;      /* IPv6 without brackets */
	uint16_t port;
	bool has_port;
	bool ipv6;
	struct om_str params; /* after the first ';' */
	struct om_str branch;
	bool has_branch;
	struct om_str received;
	bool has_received;
	struct om_str rport;
	bool has_rport; /* value may be empty */
	struct om_str maddr;
	bool has_maddr;
	bool has_alias;
};
/* Parse one Via element (as om_sip_msg_list_next returns it). */
int om_sip_via_parse(struct om_str s, struct om_sip_via *out);
/* Next Via of the message (start with a zeroed iterator). */
int om_sip_msg_via_next(const struct om_sip_msg *msg, struct om_sip_iter *it,
                        struct om_sip_via *out);
int om_sip_msg_via_top(const struct om_sip_msg *msg, struct om_sip_via *out);
/* Number of Via entries; -1 if one is malformed. */
long om_sip_msg_via_count(const struct om_sip_msg *msg);
/* branch starts with the RFC 3261 magic cookie and has more after it. */
bool om_sip_via_branch_is_3261(const struct om_sip_via *v);

/* ---- name-addr / addr-spec (RFC 3261 §20.10, §25.1) */
struct om_sip_addr {
	struct om_str display; /* raw; quoted-strings keep their quotes */
	struct om_sip_uri uri;
	struct om_str params; /* header params after the URI (no leading ';') */
	struct om_str tag;
	bool has_tag;
	bool angle; /* name-addr form (<...>) */
	bool star;  /* Contact: * */
};
/* Parse one element: name-addr or addr-spec, then header params. In the
 * addr-spec form a URI containing ',', '?' or ';' must be in <> (§20). */
int om_sip_addr_parse(struct om_str s, size_t max_uri, struct om_sip_addr *out);
/* Does a To (or From) value carry a tag parameter? The value is parsed;
 * when it does not parse (a request being refused may have a broken To),
 * a `;tag=` parameter outside <> and quoted strings is looked for, so a
 * response can still follow RFC 3261 §8.2.6.2 (add a tag when none). */
bool om_sip_addr_has_tag(struct om_str value, size_t max_uri);
int om_sip_msg_from(const struct om_sip_msg *msg, struct om_sip_addr *out);
int om_sip_msg_to(const struct om_sip_msg *msg, struct om_sip_addr *out);
/* Contact, Route, Record-Route, P-Asserted-Identity, Diversion,
 * History-Info...: next element of a list of name-addrs. */
int om_sip_msg_addr_next(const struct om_sip_msg *msg, enum om_sip_hdr_id id,
                         struct om_sip_iter *it, struct om_sip_addr *out);

/* ---- scalar headers */
struct om_str om_sip_msg_call_id(const struct om_sip_msg *msg); /* empty if absent */
/* CSeq = 1*DIGIT LWS Method; number < 2^31. ENOENT/EBADMSG/ERANGE. */
int om_sip_msg_cseq(const struct om_sip_msg *msg, uint32_t *num, struct om_str *method,
                    enum om_sip_method *m);
/* Max-Forwards 0..255: ENOENT, EBADMSG, ERANGE (the caller may treat an
 * out-of-range value as absent, RFC 4475 §3.1.2.4). */
int om_sip_msg_max_forwards(const struct om_sip_msg *msg, unsigned *out);
/* Expires (delta-seconds, clamped to UINT32_MAX as RFC 3261 §20.19 lets). */
int om_sip_msg_expires(const struct om_sip_msg *msg, uint32_t *out);
/* Session-Expires (RFC 4028): delta and refresher param ("uac"/"uas"). */
int om_sip_msg_session_expires(const struct om_sip_msg *msg, uint32_t *delta,
                               struct om_str *refresher);
/* The session description a request carries: the body when it is
 * application/sdp, or the first application/sdp part of a multipart body
 * (RFC 5621; boundary from Content-Type, at most 16 parts, CRLF or LF line
 * ends). 0 with a slice of the body, ENOENT (none), EBADMSG (a broken
 * multipart). */
int om_sip_msg_sdp(const struct om_sip_msg *msg, struct om_str *sdp);
/* Content-Type media type "type/subtype" (params cut off). */
int om_sip_msg_content_type(const struct om_sip_msg *msg, struct om_str *type,
                            struct om_str *params);

/* ---- option tags (Require, Proxy-Require, Supported, Privacy...) */
/* True if the token list of header `id` contains `tag` (case-insensitive). */
bool om_sip_msg_has_token(const struct om_sip_msg *msg, enum om_sip_hdr_id id, const char *tag);
/* Option tags of Require (and Proxy-Require when `proxy_too`) that are not
 * in `supported` (NULL-terminated). Writes them as "a, b" into
 * `unsupported` (at most 16 tags of at most 64 characters each: the rest
 * is dropped, never reflected) and returns how many were found; -1 if a
 * tag is malformed. */
long om_sip_msg_unsupported(const struct om_sip_msg *msg, const char *const *supported,
                            bool proxy_too, struct om_buf *unsupported);

/* ------------------------------------------------------------------ */
/* Printer (RFC 3261 §8.2.6, §12.1.1)                                   */

struct om_sip_resp_opts {
	const char *to_tag;       /* added to To when absent and status > 100 */
	const char *extra;        /* trusted header lines, each ending CRLF */
	const char *content_type; /* with a body */
	struct om_str body;
};

/* Response to `req`: status line, every Via (in order), From, To (with
 * to_tag added if it has none and status > 100), Call-ID, CSeq,
 * Record-Route for 101..299, the extra lines, Content-Type and
 * Content-Length. `phrase` NULL: the default phrase. Only header values
 * the parser bounded are copied (folding becomes spaces). EINVAL if the
 * request has no Via or status is not 100..699; ENOMEM. */
int om_sip_response_build(const struct om_sip_msg *req, int status, const char *phrase,
                          const struct om_sip_resp_opts *opts, struct om_buf *out);

/* A request outside a dialog or inside one (OPTIONS pings, BYE). Every
 * string is trusted (built by us, not received). */
struct om_sip_req_opts {
	const char *ruri;
	const char *via_transport; /* "TCP", "TLS" */
	const char *via_sent_by;   /* host[:port] */
	const char *branch;        /* full branch, z9hG4bK... */
	const char *from;          /* name-addr */
	const char *from_tag;
	const char *to; /* name-addr, tag included if any */
	const char *call_id;
	uint32_t cseq;
	unsigned max_forwards; /* 0: 70 */
	const char *extra;     /* header lines, each ending CRLF */
	const char *content_type;
	struct om_str body;
};
int om_sip_request_build(enum om_sip_method m, const struct om_sip_req_opts *o, struct om_buf *out);

/* Transactions (txn.h) and dialogs (dialog.h) are part of this module's
 * interface. */
#include "sip/dialog.h"
#include "sip/txn.h"

#endif
