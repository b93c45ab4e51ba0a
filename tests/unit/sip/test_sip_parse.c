/* test_sip_parse.c — table-driven tests of the sip module: stream framing
 * (RFC 3261 §18.3, RFC 5626 keep-alives), limits, start lines, URIs
 * (§19.1, RFC 5118), Via, name-addr, scalar getters, option tags and the
 * printer (§8.2.6). */
#include "ut.h"
#include "sip/sip.h"

#include "core/str.h"

#include <errno.h>
#include <string.h>

#define OPTIONS_REQ                                                               \
	"OPTIONS sip:um@192.0.2.1:5060;transport=tcp SIP/2.0\r\n"                 \
	"Via: SIP/2.0/TCP 192.0.2.9:5060;branch=z9hG4bK776asdhds;rport;alias\r\n" \
	"Max-Forwards: 70\r\n"                                                    \
	"To: <sip:um@192.0.2.1>\r\n"                                              \
	"From: \"GW 1\" <sip:gw@192.0.2.9>;tag=1928301774\r\n"                    \
	"Call-ID: a84b4c76e66710@gw1\r\n"                                         \
	"CSeq: 63104 OPTIONS\r\n"                                                 \
	"Require: timer, foo\r\n"                                                 \
	"Supported: 100rel\r\n"                                                   \
	"Content-Length: 0\r\n"                                                   \
	"\r\n"

static struct om_sip_msg *parse_ok(const char *s)
{
	struct om_sip_msg *m = NULL;
	enum om_sip_reason r = OM_SIP_R_OK;
	int err = om_sip_msg_parse(s, strlen(s), NULL, &m, &r);
	if (err)
		UT_FAIL("parse failed: %s", om_sip_reason_str(r));
	return m;
}

/* ------------------------------------------------------------------ */
/* Framing                                                             */

static const struct {
	const char *in;
	enum om_sip_frame_res res;
	size_t len;                /* MSG / SKIP; MORE: total if known */
	enum om_sip_reason reason; /* ERROR */
} frames[] = {
	{ "\r\n\r\n", OM_SIP_FRAME_SKIP, 4, 0 },
	{ "\r\n", OM_SIP_FRAME_SKIP, 2, 0 },
	{ "", OM_SIP_FRAME_MORE, 0, 0 },
	{ "OPTIONS sip:a@b SIP/2.0\r\nVia: x\r\n", OM_SIP_FRAME_MORE, 0, 0 },
	{ "OPTIONS sip:a@b SIP/2.0\r\nVia: x\r\n\r", OM_SIP_FRAME_MORE, 0, 0 },
	{ "OPTIONS sip:a@b SIP/2.0\r\nl: 0\r\n\r\n", OM_SIP_FRAME_MSG, 33, 0 },
	{ "OPTIONS sip:a@b SIP/2.0\r\nl: 0\r\n\r\nOPTIONS", OM_SIP_FRAME_MSG, 33, 0 },
	{ "OPTIONS sip:a@b SIP/2.0\r\nX: 1\r\n\r\n", OM_SIP_FRAME_MSG, 33, 0 }, /* no CL */
	{ "INVITE sip:a@b SIP/2.0\r\nContent-Length: 4\r\n\r\nab", OM_SIP_FRAME_MORE, 49, 0 },
	{ "INVITE sip:a@b SIP/2.0\r\nContent-Length: 4\r\n\r\nabcdXY", OM_SIP_FRAME_MSG, 49, 0 },
	{ "INVITE sip:a@b SIP/2.0\r\nContent-Length: 4\r\nl: 4\r\n\r\nabcd", OM_SIP_FRAME_MSG, 55,
	  0 },
	{ "INVITE sip:a@b SIP/2.0\r\nContent-Length:\r\n 4\r\n\r\nabcd", OM_SIP_FRAME_MSG, 51, 0 },
	{ "INVITE sip:a@b SIP/2.0\r\nContent-Length: -4\r\n\r\n", OM_SIP_FRAME_ERROR, 0,
	  OM_SIP_R_BAD_CONTENT_LENGTH },
	{ "INVITE sip:a@b SIP/2.0\r\nContent-Length: 4x\r\n\r\n", OM_SIP_FRAME_ERROR, 0,
	  OM_SIP_R_BAD_CONTENT_LENGTH },
	{ "INVITE sip:a@b SIP/2.0\r\nContent-Length: 4\r\nl: 5\r\n\r\n", OM_SIP_FRAME_ERROR, 0,
	  OM_SIP_R_CONTENT_LENGTH_CONFLICT },
	{ "INVITE sip:a@b SIP/2.0\r\nContent-Length: 99999999999999999999999\r\n\r\n",
	  OM_SIP_FRAME_ERROR, 0, OM_SIP_R_BAD_CONTENT_LENGTH },
	{ "INVITE sip:a@b SIP/2.0\r\nContent-Length: 70000\r\n\r\n", OM_SIP_FRAME_ERROR, 0,
	  OM_SIP_R_BAD_CONTENT_LENGTH },
	{ "INVITE sip:a@b SIP/2.0\r\nContent-Length: 65500\r\n\r\n", OM_SIP_FRAME_ERROR, 0,
	  OM_SIP_R_MSG_TOO_LARGE },
	{ "INVITE sip:a@b SIP/2.0\nVia: x\r\n\r\n", OM_SIP_FRAME_ERROR, 0, OM_SIP_R_BAD_LINE_END },
	{ "INVITE sip:a@b SIP/2.0\r\nVia: x\ry\r\n\r\n", OM_SIP_FRAME_ERROR, 0,
	  OM_SIP_R_BAD_LINE_END },
};

UT_TEST(frame_table)
{
	for (size_t i = 0; i < sizeof(frames) / sizeof(frames[0]); i++) {
		size_t ml = 0;
		enum om_sip_reason r = OM_SIP_R_OK;
		enum om_sip_frame_res res =
		    om_sip_frame(frames[i].in, strlen(frames[i].in), 65536, &ml, &r);
		if (res != frames[i].res)
			UT_FAIL("frame %zu: expected %d, got %d (%s)", i, frames[i].res, res,
			        om_sip_reason_str(r));
		if (res != OM_SIP_FRAME_ERROR)
			UT_EQ_INT(frames[i].len, ml);
		if (res == OM_SIP_FRAME_ERROR)
			UT_EQ_INT(frames[i].reason, r);
	}
}

UT_TEST(frame_header_without_end_over_limit)
{
	char big[3000];
	size_t ml;
	enum om_sip_reason r = OM_SIP_R_OK;
	memset(big, 'a', sizeof(big));
	memcpy(big, "OPTIONS sip:a@b SIP/2.0\r\nX: ", 28);
	UT_EQ_INT(OM_SIP_FRAME_MORE, om_sip_frame(big, sizeof(big), 4096, &ml, &r));
	UT_EQ_INT(OM_SIP_FRAME_ERROR, om_sip_frame(big, sizeof(big), 2048, &ml, &r));
	UT_EQ_INT(OM_SIP_R_MSG_TOO_LARGE, r);
}

/* A stream with keep-alives and three messages, delivered in chunks of
 * every size from 1 to 64 bytes: the same messages come out in order. */
UT_TEST(frame_stream_in_chunks)
{
	static const char stream[] = "\r\n\r\n" OPTIONS_REQ "\r\n"
	                             "INVITE sip:a@b SIP/2.0\r\nContent-Length: 5\r\n\r\nhello"
	                             "BYE sip:a@b SIP/2.0\r\nl: 0\r\n\r\n";
	static const size_t want[] = { sizeof(OPTIONS_REQ) - 1, 50, 29 };
	size_t total = sizeof(stream) - 1;
	for (size_t chunk = 1; chunk <= 64; chunk++) {
		char buf[sizeof(stream)];
		size_t have = 0, fed = 0, got = 0;
		while (got < 3) {
			size_t ml = 0;
			enum om_sip_reason r = OM_SIP_R_OK;
			enum om_sip_frame_res res = om_sip_frame(buf, have, 65536, &ml, &r);
			if (res == OM_SIP_FRAME_ERROR)
				UT_FAIL("chunk %zu: framing error %s", chunk, om_sip_reason_str(r));
			if (res == OM_SIP_FRAME_MORE) {
				if (fed == total)
					UT_FAIL("chunk %zu: stuck after %zu messages", chunk, got);
				size_t n = total - fed < chunk ? total - fed : chunk;
				memcpy(buf + have, stream + fed, n);
				have += n;
				fed += n;
				continue;
			}
			if (res == OM_SIP_FRAME_MSG) {
				UT_EQ_INT(want[got], ml);
				struct om_sip_msg *m = NULL;
				UT_EQ_INT(0, om_sip_msg_parse(buf, ml, NULL, &m, &r));
				UT_EQ_INT(ml, m->len);
				om_sip_msg_free(m);
				got++;
			}
			memmove(buf, buf + ml, have - ml);
			have -= ml;
		}
		UT_EQ_INT(total, fed);
		UT_EQ_INT(0, have);
	}
}

/* ------------------------------------------------------------------ */
/* Limits and start lines                                              */

static const struct {
	const char *in;
	enum om_sip_reason reason; /* OK: parses */
} lines[] = {
	{ "OPTIONS sip:a@b SIP/2.0\r\nl: 0\r\n\r\n", OM_SIP_R_OK },
	{ "OPTIONS sip:a@b sip/2.0\r\nl: 0\r\n\r\n", OM_SIP_R_OK },
	{ "SIP/2.0 200 OK\r\nl: 0\r\n\r\n", OM_SIP_R_OK },
	{ "SIP/2.0 100 \r\nl: 0\r\n\r\n", OM_SIP_R_OK },
	{ "SIP/2.0 100\r\nl: 0\r\n\r\n", OM_SIP_R_OK },
	{ "\r\n\r\nOPTIONS sip:a@b SIP/2.0\r\nl: 0\r\n\r\n", OM_SIP_R_OK },
	{ "OPTIONS sip:a@b SIP/2.0\r\nl: 0\r\n", OM_SIP_R_OK }, /* datagram, no empty line */
	{ "OPTIONS sip:a@b SIP/3.0\r\nl: 0\r\n\r\n", OM_SIP_R_BAD_VERSION },
	{ "SIP/2.1 200 OK\r\nl: 0\r\n\r\n", OM_SIP_R_BAD_VERSION },
	{ "OPTIONS sip:a@b HTTP/1.1\r\nl: 0\r\n\r\n", OM_SIP_R_BAD_START_LINE },
	{ "OPTIONS  sip:a@b SIP/2.0\r\nl: 0\r\n\r\n", OM_SIP_R_BAD_START_LINE },
	{ "OPTIONS sip:a@b SIP/2.0 \r\nl: 0\r\n\r\n", OM_SIP_R_BAD_START_LINE },
	{ "OPT<IONS sip:a@b SIP/2.0\r\nl: 0\r\n\r\n", OM_SIP_R_BAD_START_LINE },
	{ "OPTIONS sip:a\x01@b SIP/2.0\r\nl: 0\r\n\r\n", OM_SIP_R_BAD_RURI },
	{ "SIP/2.0 99 Low\r\nl: 0\r\n\r\n", OM_SIP_R_BAD_STATUS },
	{ "SIP/2.0 700 High\r\nl: 0\r\n\r\n", OM_SIP_R_BAD_STATUS },
	{ "SIP/2.0 2000 OK\r\nl: 0\r\n\r\n", OM_SIP_R_BAD_STATUS },
	{ "OPTIONS sip:a@b SIP/2.0\r\nl: 0\r\nVia", OM_SIP_R_HEADERS_INCOMPLETE },
	{ "OPTIONS sip:a@b SIP/2.0\r\n l: 0\r\n\r\n", OM_SIP_R_BAD_HEADER },
	{ "OPTIONS sip:a@b SIP/2.0\r\nNo colon\r\n\r\n", OM_SIP_R_BAD_HEADER },
	{ "OPTIONS sip:a@b SIP/2.0\r\n: empty\r\n\r\n", OM_SIP_R_BAD_HEADER },
	{ "OPTIONS sip:a@b SIP/2.0\r\nTo\x01: x\r\n\r\n", OM_SIP_R_BAD_HEADER },
	{ "OPTIONS sip:a@b SIP/2.0\r\nl: 5\r\n\r\nabc", OM_SIP_R_BODY_TRUNCATED },
	{ "OPTIONS sip:a@b SIP/2.0\r\nl: 99999999\r\n\r\nabc", OM_SIP_R_BODY_TOO_LARGE },
	{ "OPTIONS sip:a@b SIP/2.0\r\nl: 1\r\nl: 2\r\n\r\nab", OM_SIP_R_CONTENT_LENGTH_CONFLICT },
};

UT_TEST(start_line_table)
{
	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
		struct om_sip_msg *m = NULL;
		enum om_sip_reason r = OM_SIP_R_OK;
		int err = om_sip_msg_parse(lines[i].in, strlen(lines[i].in), NULL, &m, &r);
		if (lines[i].reason == OM_SIP_R_OK) {
			if (err)
				UT_FAIL("line %zu: parse failed: %s", i, om_sip_reason_str(r));
			om_sip_msg_free(m);
		} else {
			if (!err) {
				om_sip_msg_free(m);
				UT_FAIL("line %zu: accepted", i);
			}
			if (r != lines[i].reason)
				UT_FAIL("line %zu: expected %s, got %s", i,
				        om_sip_reason_str(lines[i].reason), om_sip_reason_str(r));
		}
	}
}

UT_TEST(limits_are_enforced)
{
	struct om_sip_limits l;
	struct om_sip_msg *m = NULL;
	enum om_sip_reason r = OM_SIP_R_OK;
	const char *s = OPTIONS_REQ;
	size_t n = strlen(s);

	om_sip_limits_default(&l);
	UT_EQ_INT(65536, l.max_msg);
	l.max_msg = 100;
	UT_EQ_INT(EBADMSG, om_sip_msg_parse(s, n, &l, &m, &r));
	UT_EQ_INT(OM_SIP_R_MSG_TOO_LARGE, r);
	UT_EQ_INT(513, om_sip_reason_status(r));

	om_sip_limits_default(&l);
	l.max_headers = 5;
	UT_EQ_INT(EBADMSG, om_sip_msg_parse(s, n, &l, &m, &r));
	UT_EQ_INT(OM_SIP_R_TOO_MANY_HEADERS, r);

	om_sip_limits_default(&l);
	l.max_line = 40;
	UT_EQ_INT(EBADMSG, om_sip_msg_parse(s, n, &l, &m, &r));
	UT_EQ_INT(OM_SIP_R_LINE_TOO_LONG, r);

	om_sip_limits_default(&l);
	l.max_uri = 20;
	UT_EQ_INT(EBADMSG, om_sip_msg_parse(s, n, &l, &m, &r));
	UT_EQ_INT(OM_SIP_R_URI_TOO_LONG, r);
	UT_EQ_INT(414, om_sip_reason_status(r));

	/* a 3000-octet Request-URI with default limits: 414, not 513 */
	static char longuri[3200];
	int k = snprintf(longuri, sizeof(longuri), "OPTIONS sip:");
	memset(longuri + k, 'a', 3000);
	k += 3000;
	k += snprintf(longuri + k, sizeof(longuri) - (size_t)k, "@b SIP/2.0\r\nl: 0\r\n\r\n");
	UT_EQ_INT(EBADMSG, om_sip_msg_parse(longuri, (size_t)k, NULL, &m, &r));
	UT_EQ_INT(OM_SIP_R_URI_TOO_LONG, r);

	/* exactly max_headers fields parse, one more does not */
	static char many[8192];
	k = snprintf(many, sizeof(many), "OPTIONS sip:a@b SIP/2.0\r\n");
	for (int i = 0; i < 255; i++)
		k += snprintf(many + k, sizeof(many) - (size_t)k, "X: %d\r\n", i);
	k += snprintf(many + k, sizeof(many) - (size_t)k, "l: 0\r\n\r\n");
	UT_EQ_INT(0, om_sip_msg_parse(many, (size_t)k, NULL, &m, &r));
	UT_EQ_INT(256, m->nhdrs);
	om_sip_msg_free(m);
	memmove(many + 25 + 6, many + 25, (size_t)k - 25);
	memcpy(many + 25, "Y: 1\r\n", 6);
	UT_EQ_INT(EBADMSG, om_sip_msg_parse(many, (size_t)k + 6, NULL, &m, &r));
	UT_EQ_INT(OM_SIP_R_TOO_MANY_HEADERS, r);

	/* Via entries: two lines parse, but three entries exceed 2 */
	static const char vias[] = "OPTIONS sip:a@b SIP/2.0\r\n"
	                           "Via: SIP/2.0/TCP a;branch=z9hG4bK1, SIP/2.0/TCP b\r\n"
	                           "Via: SIP/2.0/TCP c\r\n"
	                           "From: <sip:x@y>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: c\r\n"
	                           "CSeq: 1 OPTIONS\r\nl: 0\r\n\r\n";
	om_sip_limits_default(&l);
	l.max_via = 2;
	UT_EQ_INT(0, om_sip_msg_parse(vias, sizeof(vias) - 1, &l, &m, &r));
	UT_EQ_INT(EBADMSG, om_sip_msg_validate(m, &r));
	UT_EQ_INT(OM_SIP_R_TOO_MANY_VIA, r);
	om_sip_msg_free(m);
	l.max_via = 1;
	UT_EQ_INT(EBADMSG, om_sip_msg_parse(vias, sizeof(vias) - 1, &l, &m, &r));
	UT_EQ_INT(OM_SIP_R_TOO_MANY_VIA, r);
}

UT_TEST(reason_mapping)
{
	static const struct {
		enum om_sip_reason r;
		int status;
	} map[] = {
		{ OM_SIP_R_OK, 200 },
		{ OM_SIP_R_MSG_TOO_LARGE, 513 },
		{ OM_SIP_R_URI_TOO_LONG, 414 },
		{ OM_SIP_R_BODY_TOO_LARGE, 413 },
		{ OM_SIP_R_BAD_VERSION, 505 },
		{ OM_SIP_R_BAD_VIA, 400 },
		{ OM_SIP_R_CSEQ_METHOD, 400 },
		{ OM_SIP_R_UNSUPPORTED_SCHEME, 416 },
		{ OM_SIP_R_BAD_EXTENSION, 420 },
		{ OM_SIP_R_NOT_IMPLEMENTED, 501 },
		{ OM_SIP_R_NOMEM, 500 },
	};
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		UT_EQ_INT(map[i].status, om_sip_reason_status(map[i].r));
	for (int r = 0; r < OM_SIP_R__COUNT; r++) {
		UT_TRUE(om_sip_reason_str((enum om_sip_reason)r)[0] != '\0');
		UT_TRUE(om_sip_reason_status((enum om_sip_reason)r) >= 200);
	}
	UT_EQ_STR("Bad Extension", om_sip_status_phrase(420));
	UT_EQ_STR("Client Error", om_sip_status_phrase(499));
}

/* ------------------------------------------------------------------ */
/* URIs                                                                */

static const struct {
	const char *in;
	int err;
	enum om_sip_scheme scheme;
	const char *user, *host;
	int port;
	const char *params, *headers;
} uris[] = {
	{ "sip:alice@atlanta.com", 0, OM_SIP_SCHEME_SIP, "alice", "atlanta.com", -1, NULL, NULL },
	{ "SIPS:bob:pw@10.0.0.1:5061;transport=tls", 0, OM_SIP_SCHEME_SIPS, "bob", "10.0.0.1", 5061,
	  "transport=tls", NULL },
	{ "sip:[2001:db8::1]:5070;lr", 0, OM_SIP_SCHEME_SIP, NULL, "2001:db8::1", 5070, "lr",
	  NULL },
	{ "sip:a@b.example?subject=x&priority=urgent", 0, OM_SIP_SCHEME_SIP, "a", "b.example", -1,
	  NULL, "subject=x&priority=urgent" },
	{ "sip:+1-555@gw.example;user=phone", 0, OM_SIP_SCHEME_SIP, "+1-555", "gw.example", -1,
	  "user=phone", NULL },
	{ "tel:+1-201-555-0123;phone-context=example.com", 0, OM_SIP_SCHEME_TEL, "+1-201-555-0123",
	  NULL, -1, "phone-context=example.com", NULL },
	{ "urn:service:sos", 0, OM_SIP_SCHEME_OTHER, NULL, NULL, -1, NULL, NULL },
	{ "sip:host.example.", 0, OM_SIP_SCHEME_SIP, NULL, "host.example.", -1, NULL, NULL },
	{ "sip:a@b:65535", 0, OM_SIP_SCHEME_SIP, "a", "b", 65535, NULL, NULL },
	{ .in = "sip:a@b:65536", .err = EBADMSG },
	{ .in = "sip:a@b:", .err = EBADMSG },
	{ .in = "sip:@b", .err = EBADMSG },
	{ .in = "sip:a@@b", .err = EBADMSG },
	{ .in = "sip:a b@c", .err = EBADMSG },
	{ .in = "sip:a@-b.com", .err = EBADMSG },
	{ .in = "sip:a@1.2.3", .err = EBADMSG },
	{ .in = "sip:a@300.1.1.1", .err = EBADMSG },
	{ .in = "sip:a@[2001:db8:::1]", .err = EBADMSG },
	{ .in = "sip:a@[2001:db8::1", .err = EBADMSG },
	{ .in = "sip:a@b;;lr", .err = EBADMSG },
	{ .in = "sip:a@b;x=", .err = EBADMSG },
	{ .in = "sip:a%4@b", .err = EBADMSG },
	{ .in = "sip:a@b?", .err = EBADMSG },
	{ .in = "sip:", .err = EBADMSG },
	{ .in = "<sip:a@b>", .err = EBADMSG },
	{ .in = "1sip:a@b", .err = EBADMSG },
	{ .in = "x:", .err = EBADMSG },
	{ .in = "tel:", .err = EBADMSG },
};

UT_TEST(uri_table)
{
	for (size_t i = 0; i < sizeof(uris) / sizeof(uris[0]); i++) {
		struct om_sip_uri u;
		int err = om_sip_uri_parse(om_str_c(uris[i].in), 0, &u);
		if (err != uris[i].err)
			UT_FAIL("uri %s: expected %d, got %d", uris[i].in, uris[i].err, err);
		if (err)
			continue;
		UT_EQ_INT(uris[i].scheme, u.scheme);
		if (uris[i].user)
			UT_EQ_SLICE(uris[i].user, u.user.p, u.user.len);
		else if (uris[i].scheme != OM_SIP_SCHEME_TEL)
			UT_TRUE(!u.has_user);
		if (uris[i].host)
			UT_EQ_SLICE(uris[i].host, u.host.p, u.host.len);
		UT_EQ_INT(uris[i].port, u.has_port ? u.port : -1);
		if (uris[i].params)
			UT_EQ_SLICE(uris[i].params, u.params.p, u.params.len);
		if (uris[i].headers)
			UT_EQ_SLICE(uris[i].headers, u.headers.p, u.headers.len);
	}
	struct om_sip_uri u;
	UT_EQ_INT(EMSGSIZE, om_sip_uri_parse(OM_STR_LIT("sip:alice@atlanta.com"), 8, &u));
}

/* RFC 3261 §19.1.4 examples, and RFC 5954 IP literals by value */
UT_TEST(uri_equality)
{
	static const struct {
		const char *a, *b;
		bool eq;
	} t[] = {
		{ "sip:%61lice@atlanta.com;transport=TCP", "sip:alice@AtLanTa.CoM;Transport=tcp",
		  true },
		{ "sip:carol@chicago.com", "sip:carol@chicago.com;newparam=5", true },
		{ "sip:carol@chicago.com;security=on", "sip:carol@chicago.com;newparam=5", true },
		{ "sip:biloxi.com;transport=tcp;method=REGISTER?to=sip:bob%40biloxi.com",
		  "sip:biloxi.com;method=REGISTER;transport=tcp?to=sip:bob%40biloxi.com", true },
		{ "sip:alice@[2001:db8::10]:5060", "sip:alice@[2001:DB8:0::10]:5060", true },
		{ "SIP:ALICE@AtLanTa.CoM;Transport=udp", "sip:alice@AtLanTa.CoM;Transport=UDP",
		  false },
		{ "sip:bob@biloxi.com", "sip:bob@biloxi.com:5060", false },
		{ "sip:bob@biloxi.com", "sip:bob@biloxi.com;transport=udp", false },
		{ "sip:bob@biloxi.com", "sips:bob@biloxi.com", false },
		{ "sip:carol@chicago.com;security=on", "sip:carol@chicago.com;security=off",
		  false },
		{ "sip:carol@chicago.com", "sip:carol@chicago.com?Subject=next%20meeting", false },
		{ "sip:a@[::ffff:192.0.2.1]", "sip:a@192.0.2.1", false },
		{ "tel:+1-555;phone-context=x", "tel:+1-555;phone-context=X", true },
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct om_sip_uri a, b;
		UT_EQ_INT(0, om_sip_uri_parse(om_str_c(t[i].a), 0, &a));
		UT_EQ_INT(0, om_sip_uri_parse(om_str_c(t[i].b), 0, &b));
		if (om_sip_uri_eq(&a, &b) != t[i].eq || om_sip_uri_eq(&b, &a) != t[i].eq)
			UT_FAIL("%s vs %s: expected %s", t[i].a, t[i].b,
			        t[i].eq ? "equal" : "unequal");
	}
}

UT_TEST(params_and_escapes)
{
	struct om_str v, n, rest = OM_STR_LIT(" ; a = 1 ;b; c=\"x;y\" ");
	UT_EQ_INT(0, om_sip_param_next(&rest, &n, &v));
	UT_EQ_SLICE("a", n.p, n.len);
	UT_EQ_SLICE("1", v.p, v.len);
	UT_EQ_INT(0, om_sip_param_next(&rest, &n, &v));
	UT_EQ_SLICE("b", n.p, n.len);
	UT_EQ_INT(0, v.len);
	UT_EQ_INT(0, om_sip_param_next(&rest, &n, &v));
	UT_EQ_SLICE("\"x;y\"", v.p, v.len);
	UT_EQ_INT(ENOENT, om_sip_param_next(&rest, &n, &v));
	UT_EQ_INT(0, om_sip_param_find(OM_STR_LIT("lr;TRANSPORT=tcp"), "transport", &v));
	UT_EQ_SLICE("tcp", v.p, v.len);
	UT_EQ_INT(ENOENT, om_sip_param_find(OM_STR_LIT("lr"), "maddr", &v));
	UT_EQ_INT(EBADMSG, om_sip_param_find(OM_STR_LIT("lr;;x"), "x", &v));

	char out[8];
	UT_EQ_INT(3, om_sip_unescape(OM_STR_LIT("a%00b"), out, sizeof(out)));
	UT_EQ_MEM("a\0b", out, 3);
	UT_EQ_INT(-1, om_sip_unescape(OM_STR_LIT("a%0"), out, sizeof(out)));
	UT_EQ_INT(-1, om_sip_unescape(OM_STR_LIT("a%zz"), out, sizeof(out)));
	UT_EQ_INT(-1, om_sip_unescape(OM_STR_LIT("123456789"), out, sizeof(out)));
	UT_TRUE(om_sip_escaped_eq(OM_STR_LIT("%61lice"), OM_STR_LIT("alice")));
	UT_TRUE(!om_sip_escaped_eq(OM_STR_LIT("%41lice"), OM_STR_LIT("alice")));
	UT_TRUE(!om_sip_escaped_eq(OM_STR_LIT("a%00"), OM_STR_LIT("a")));
	UT_TRUE(!om_sip_escaped_eq(OM_STR_LIT("a%0"), OM_STR_LIT("a%0")));
}

/* ------------------------------------------------------------------ */
/* Header names, Via, name-addr                                        */

UT_TEST(header_names)
{
	static const struct {
		const char *n;
		enum om_sip_hdr_id id;
	} t[] = {
		{ "v", OM_SIP_HDR_VIA },
		{ "VIA", OM_SIP_HDR_VIA },
		{ "i", OM_SIP_HDR_CALL_ID },
		{ "m", OM_SIP_HDR_CONTACT },
		{ "l", OM_SIP_HDR_CONTENT_LENGTH },
		{ "c", OM_SIP_HDR_CONTENT_TYPE },
		{ "e", OM_SIP_HDR_CONTENT_ENCODING },
		{ "f", OM_SIP_HDR_FROM },
		{ "t", OM_SIP_HDR_TO },
		{ "s", OM_SIP_HDR_SUBJECT },
		{ "k", OM_SIP_HDR_SUPPORTED },
		{ "x", OM_SIP_HDR_SESSION_EXPIRES },
		{ "o", OM_SIP_HDR_EVENT },
		{ "r", OM_SIP_HDR_REFER_TO },
		{ "b", OM_SIP_HDR_REFERRED_BY },
		{ "u", OM_SIP_HDR_ALLOW_EVENTS },
		{ "cseq", OM_SIP_HDR_CSEQ },
		{ "Diversion", OM_SIP_HDR_DIVERSION },
		{ "history-info", OM_SIP_HDR_HISTORY_INFO },
		{ "P-Asserted-Identity", OM_SIP_HDR_P_ASSERTED_IDENTITY },
		{ "Privacy", OM_SIP_HDR_PRIVACY },
		{ "C%6Fntact", OM_SIP_HDR_OTHER },
		{ "q", OM_SIP_HDR_OTHER },
		{ "Vias", OM_SIP_HDR_OTHER },
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (om_sip_hdr_id_from_name(om_str_c(t[i].n)) != t[i].id)
			UT_FAIL("header %s", t[i].n);
	UT_EQ_STR("Call-ID", om_sip_hdr_name(OM_SIP_HDR_CALL_ID));
	UT_TRUE(om_sip_hdr_name(OM_SIP_HDR_OTHER) == NULL);
	UT_EQ_INT(OM_SIP_METHOD_INVITE, om_sip_method_from_str(OM_STR_LIT("INVITE")));
	UT_EQ_INT(OM_SIP_METHOD_OTHER, om_sip_method_from_str(OM_STR_LIT("invite")));
}

UT_TEST(via_table)
{
	static const struct {
		const char *in;
		int err;
		const char *transport, *host;
		int port;
		bool rport, alias;
	} t[] = {
		{ "SIP/2.0/TCP 192.0.2.9:5060;branch=z9hG4bK1;rport;alias", 0, "TCP", "192.0.2.9",
		  5060, true, true },
		{ "SIP / 2.0 / TLS gw.example ; rport = 5061", 0, "TLS", "gw.example", -1, true,
		  false },
		{ "SIP/2.0/UDP [2001:db8::9]:5070", 0, "UDP", "2001:db8::9", 5070, false, false },
		{ "SIP/2.0/UDP h : 5070", 0, "UDP", "h", 5070, false, false },
		{ "SIP/2.0/UDP h;received=1.2.3.4", 0, "UDP", "h", -1, false, false },
		{ .in = "SIP/2.0/UDP h;received=bad..host", .err = EBADMSG },
		{ .in = "SIP/2.0/UDP h;rport=x", .err = EBADMSG },
		{ .in = "SIP/2.0/UDP h;branch=\"q\"", .err = EBADMSG },
		{ .in = "SIP/2.0/UDP", .err = EBADMSG },
		{ .in = "SIP/2.0/UDPh", .err = EBADMSG },
		{ .in = "SIP/2.0 UDP h", .err = EBADMSG },
		{ .in = "SIP/2.0/UDP h;", .err = EBADMSG },
		{ .in = "SIP/2.0/UDP h x", .err = EBADMSG },
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct om_sip_via v;
		int err = om_sip_via_parse(om_str_c(t[i].in), &v);
		if (err != t[i].err)
			UT_FAIL("via %s: expected %d, got %d", t[i].in, t[i].err, err);
		if (err)
			continue;
		UT_EQ_SLICE(t[i].transport, v.transport.p, v.transport.len);
		UT_EQ_SLICE(t[i].host, v.host.p, v.host.len);
		UT_EQ_INT(t[i].port, v.has_port ? v.port : -1);
		UT_EQ_INT(t[i].rport, v.has_rport);
		UT_EQ_INT(t[i].alias, v.has_alias);
	}
}

UT_TEST(addr_table)
{
	static const struct {
		const char *in;
		int err;
		const char *display, *uri, *tag;
		bool angle;
	} t[] = {
		{ "\"A \\\"B\\\"\" <sip:a@b>;tag=x1", 0, "\"A \\\"B\\\"\"", "sip:a@b", "x1", true },
		{ "Bob Smith <sip:bob@b>", 0, "Bob Smith", "sip:bob@b", NULL, true },
		{ "<sip:a@b;lr>", 0, NULL, "sip:a@b;lr", NULL, true },
		{ "sip:a@b;tag=9", 0, NULL, "sip:a@b", "9", false },
		{ "sip:a@b ; tag = 9", 0, NULL, "sip:a@b", "9", false },
		{ "tel:+15551234;tag=t", 0, NULL, "tel:+15551234", "t", false },
		{ "<sip:a@b?Route=%3Csip:x%3E>", 0, NULL, "sip:a@b?Route=%3Csip:x%3E", NULL, true },
		{ "*", 0, NULL, NULL, NULL, false },
		{ .in = "sip:a@b?Route=x", .err = EBADMSG },
		{ .in = "\"unterminated <sip:a@b>", .err = EBADMSG },
		{ .in = "Bell, A <sip:a@b>", .err = EBADMSG },
		{ .in = "< sip:a@b >", .err = EBADMSG },
		{ .in = "<sip:a@b", .err = EBADMSG },
		{ .in = "<sip:a@b>;;", .err = EBADMSG },
		{ .in = "<sip:a@b> junk", .err = EBADMSG },
		{ .in = "<sip:a@b>;tag=1;tag=2", .err = EBADMSG },
		{ .in = "<sip:a@b>;tag=\"q\"", .err = EBADMSG },
		{ .in = "", .err = EBADMSG },
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct om_sip_addr a;
		int err = om_sip_addr_parse(om_str_c(t[i].in), 2048, &a);
		if (err != t[i].err)
			UT_FAIL("addr %s: expected %d, got %d", t[i].in, t[i].err, err);
		if (err)
			continue;
		if (t[i].display)
			UT_EQ_SLICE(t[i].display, a.display.p, a.display.len);
		else
			UT_EQ_INT(0, a.display.len);
		if (t[i].uri)
			UT_EQ_SLICE(t[i].uri, a.uri.raw.p, a.uri.raw.len);
		else
			UT_TRUE(a.star);
		if (t[i].tag)
			UT_EQ_SLICE(t[i].tag, a.tag.p, a.tag.len);
		else
			UT_TRUE(!a.has_tag);
		UT_EQ_INT(t[i].angle, a.angle);
	}
}

/* ------------------------------------------------------------------ */
/* Message getters                                                      */

UT_TEST(getters_for_the_transport)
{
	static const char s[] =
	    "INVITE sip:4000@um.example;target=sip:4001%40pbx SIP/2.0\r\n"
	    "v: SIP/2.0/TLS 192.0.2.9:5061;branch=z9hG4bKx;rport;alias,\r\n"
	    " SIP/2.0/TLS 10.0.0.1;branch=z9hG4bKy;received=192.0.2.77\r\n"
	    "Max-Forwards: 69\r\n"
	    "f: \"Caller\" <sip:1000@pbx>;tag=aa\r\n"
	    "t: <sip:4000@um.example>\r\n"
	    "i: call-1@pbx\r\n"
	    "CSeq: 2 INVITE\r\n"
	    "Record-Route: <sip:pbx;lr>\r\n"
	    "Record-Route: <sip:edge;lr>\r\n"
	    "Diversion: <sip:4001@pbx>;reason=no-answer;counter=1\r\n"
	    "History-Info: <sip:4000@um.example>;index=1, <sip:4001@pbx?Reason=SIP%3Bcause%3D408>;"
	    "index=1.1\r\n"
	    "P-Asserted-Identity: \"Caller\" <sip:1000@pbx>, <tel:+15550001000>\r\n"
	    "Privacy: id\r\n"
	    "Session-Expires: 1800;refresher=uac\r\n"
	    "Expires: 99999999999999999999\r\n"
	    "k: timer, 100rel\r\n"
	    "Require: timer\r\n"
	    "c: application/sdp ; charset=utf-8\r\n"
	    "l: 4\r\n"
	    "\r\n"
	    "v=0\r\n";
	struct om_sip_msg *m = NULL;
	enum om_sip_reason r;
	UT_EQ_INT(0, om_sip_msg_parse(s, sizeof(s) - 1, NULL, &m, &r));
	UT_EQ_INT(0, om_sip_msg_validate(m, &r));
	UT_EQ_INT(OM_SIP_METHOD_INVITE, m->method);
	UT_EQ_SLICE("v=0\r", m->body.p, m->body.len);
	UT_EQ_INT(sizeof(s) - 2, m->len);

	struct om_sip_via v;
	UT_EQ_INT(0, om_sip_msg_via_top(m, &v));
	UT_EQ_SLICE("TLS", v.transport.p, v.transport.len);
	UT_EQ_SLICE("192.0.2.9", v.host.p, v.host.len);
	UT_EQ_INT(5061, v.port);
	UT_TRUE(v.has_rport && v.rport.len == 0 && v.has_alias);
	UT_TRUE(om_sip_via_branch_is_3261(&v));
	UT_EQ_INT(2, om_sip_msg_via_count(m));

	struct om_sip_uri u;
	struct om_str t;
	UT_EQ_INT(0, om_sip_uri_parse(m->ruri, 0, &u));
	UT_EQ_INT(0, om_sip_param_find(u.params, "target", &t));
	UT_EQ_SLICE("sip:4001%40pbx", t.p, t.len);

	struct om_sip_iter it = { 0 };
	struct om_sip_addr a;
	UT_EQ_INT(0, om_sip_msg_addr_next(m, OM_SIP_HDR_DIVERSION, &it, &a));
	UT_EQ_INT(0, om_sip_param_find(a.params, "reason", &t));
	UT_EQ_SLICE("no-answer", t.p, t.len);
	it = (struct om_sip_iter){ 0 };
	UT_EQ_INT(0, om_sip_msg_addr_next(m, OM_SIP_HDR_HISTORY_INFO, &it, &a));
	UT_EQ_INT(0, om_sip_msg_addr_next(m, OM_SIP_HDR_HISTORY_INFO, &it, &a));
	UT_EQ_SLICE("Reason=SIP%3Bcause%3D408", a.uri.headers.p, a.uri.headers.len);
	UT_EQ_INT(ENOENT, om_sip_msg_addr_next(m, OM_SIP_HDR_HISTORY_INFO, &it, &a));
	it = (struct om_sip_iter){ 0 };
	UT_EQ_INT(0, om_sip_msg_addr_next(m, OM_SIP_HDR_P_ASSERTED_IDENTITY, &it, &a));
	UT_EQ_INT(0, om_sip_msg_addr_next(m, OM_SIP_HDR_P_ASSERTED_IDENTITY, &it, &a));
	UT_EQ_INT(OM_SIP_SCHEME_TEL, a.uri.scheme);
	UT_TRUE(om_sip_msg_has_token(m, OM_SIP_HDR_PRIVACY, "id"));
	UT_TRUE(om_sip_msg_has_token(m, OM_SIP_HDR_SUPPORTED, "100REL"));
	UT_TRUE(!om_sip_msg_has_token(m, OM_SIP_HDR_SUPPORTED, "path"));

	uint32_t d;
	UT_EQ_INT(0, om_sip_msg_session_expires(m, &d, &t));
	UT_EQ_INT(1800, d);
	UT_EQ_SLICE("uac", t.p, t.len);
	UT_EQ_INT(0, om_sip_msg_expires(m, &d));
	UT_EQ_INT(UINT32_MAX, d);
	unsigned mf;
	UT_EQ_INT(0, om_sip_msg_max_forwards(m, &mf));
	UT_EQ_INT(69, mf);
	struct om_str ct, cp;
	UT_EQ_INT(0, om_sip_msg_content_type(m, &ct, &cp));
	UT_EQ_SLICE("application/sdp", ct.p, ct.len);
	UT_EQ_SLICE("charset=utf-8", cp.p, cp.len);

	/* Require: timer is supported, nothing to refuse */
	static const char *const sup[] = { "timer", "100rel", NULL };
	struct om_buf b;
	om_buf_init(&b);
	UT_EQ_INT(0, om_sip_msg_unsupported(m, sup, false, &b));
	UT_EQ_INT(0, b.len);
	om_buf_free(&b);
	om_sip_msg_free(m);
}

UT_TEST(validate_table)
{
	static const char head[] = "INVITE sip:a@b SIP/2.0\r\n";
	static const char base[] = "Via: SIP/2.0/TCP h;branch=z9hG4bK1\r\n"
	                           "From: <sip:x@y>;tag=1\r\n"
	                           "To: <sip:a@b>\r\n"
	                           "Call-ID: c1\r\n";
	static const struct {
		const char *extra;
		enum om_sip_reason r;
	} t[] = {
		{ "CSeq: 1 INVITE\r\n", OM_SIP_R_OK },
		{ "CSeq: 1 INVITE\r\nMax-Forwards: 300\r\n", OM_SIP_R_OK },
		{ "CSeq: 1 INVITE\r\nDate: Sat, 13 Nov 2010 23:29:00 GMT\r\n", OM_SIP_R_OK },
		{ "CSeq: 1 INVITE\r\nSupported:\r\n", OM_SIP_R_OK },
		{ "", OM_SIP_R_MISSING_HEADER },
		{ "CSeq: 1 BYE\r\n", OM_SIP_R_CSEQ_METHOD },
		{ "CSeq: 1 invite\r\n", OM_SIP_R_CSEQ_METHOD },
		{ "CSeq: 2147483648 INVITE\r\n", OM_SIP_R_BAD_CSEQ },
		{ "CSeq: INVITE\r\n", OM_SIP_R_BAD_CSEQ },
		{ "CSeq: 1INVITE\r\n", OM_SIP_R_BAD_CSEQ },
		{ "CSeq: 1 INVITE x\r\n", OM_SIP_R_BAD_CSEQ },
		{ "CSeq: 1 INVITE\r\nCSeq: 1 INVITE\r\n", OM_SIP_R_DUP_HEADER },
		{ "CSeq: 1 INVITE\r\nMax-Forwards: ten\r\n", OM_SIP_R_BAD_MAX_FORWARDS },
		{ "CSeq: 1 INVITE\r\nDate: Sat, 13 Nov 2010 23:29:00 EST\r\n", OM_SIP_R_BAD_DATE },
		{ "CSeq: 1 INVITE\r\nRequire: a b\r\n", OM_SIP_R_BAD_OPTION_TAG },
		{ "CSeq: 1 INVITE\r\nRequire: a,,b\r\n", OM_SIP_R_BAD_OPTION_TAG },
		{ "CSeq: 1 INVITE\r\nRecord-Route: sip:p;lr\r\n", OM_SIP_R_BAD_ROUTE },
		{ "CSeq: 1 INVITE\r\nContact: <sip:a@b>,\r\n", OM_SIP_R_BAD_CONTACT },
		{ "CSeq: 1 INVITE\r\nContent-Type: sdp\r\n", OM_SIP_R_BAD_CONTENT_TYPE },
		{ "CSeq: 1 INVITE\r\nExpires: soon\r\n", OM_SIP_R_BAD_EXPIRES },
		{ "CSeq: 1 INVITE\r\nVia: SIP/3.0/TCP h\r\n", OM_SIP_R_BAD_VIA },
		/* Informational headers never refuse a call: the routing skips
		 * a broken entry (R11). */
		{ "CSeq: 1 INVITE\r\nP-Asserted-Identity: <sip:a@b\r\n", OM_SIP_R_OK },
		{ "CSeq: 1 INVITE\r\nDiversion: <sip:1@b>;reason=x, <sip:2@b\r\n", OM_SIP_R_OK },
		{ "CSeq: 1 INVITE\r\nHistory-Info: \"<sip:1@b>;index=1\r\n", OM_SIP_R_OK },
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		char buf[1024];
		int n = snprintf(buf, sizeof(buf), "%s%s%sl: 0\r\n\r\n", head, base, t[i].extra);
		struct om_sip_msg *m = NULL;
		enum om_sip_reason r = OM_SIP_R_OK;
		UT_EQ_INT(0, om_sip_msg_parse(buf, (size_t)n, NULL, &m, &r));
		int err = om_sip_msg_validate(m, &r);
		om_sip_msg_free(m);
		if (t[i].r == OM_SIP_R_OK ? err != 0 : (err == 0 || r != t[i].r))
			UT_FAIL("validate %zu: expected %s, got %s", i, om_sip_reason_str(t[i].r),
			        err ? om_sip_reason_str(r) : "ok");
	}
	/* headers in the Request-URI are refused, in a Contact URI kept */
	static const char ruri[] =
	    "INVITE sip:a@b?Route=x SIP/2.0\r\n"
	    "Via: SIP/2.0/TCP h\r\nFrom: <sip:x@y>;tag=1\r\nTo: <sip:a@b>\r\n"
	    "Call-ID: c\r\nCSeq: 1 INVITE\r\nl: 0\r\n\r\n";
	struct om_sip_msg *m = NULL;
	enum om_sip_reason r;
	UT_EQ_INT(0, om_sip_msg_parse(ruri, sizeof(ruri) - 1, NULL, &m, &r));
	UT_EQ_INT(EBADMSG, om_sip_msg_validate(m, &r));
	UT_EQ_INT(OM_SIP_R_BAD_RURI, r);
	om_sip_msg_free(m);
}

UT_TEST(unsupported_is_bounded)
{
	char buf[4096];
	char req[2048] = "";
	/* 20 tags and one of 100 characters: at most 16 listed, the long one
	 * never reflected */
	for (int i = 0; i < 20; i++)
		snprintf(req + strlen(req), sizeof(req) - strlen(req), "%stag%d", i ? ", " : "", i);
	strcat(req, ", ");
	for (int i = 0; i < 100; i++)
		strcat(req, "z");
	int n =
	    snprintf(buf, sizeof(buf),
	             "OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP h\r\nFrom: <sip:x@y>;tag=1\r\n"
	             "To: <sip:a@b>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\nRequire: %s\r\n"
	             "Proxy-Require: p1\r\nl: 0\r\n\r\n",
	             req);
	struct om_sip_msg *m = NULL;
	enum om_sip_reason r;
	UT_EQ_INT(0, om_sip_msg_parse(buf, (size_t)n, NULL, &m, &r));
	struct om_buf b;
	om_buf_init(&b);
	UT_EQ_INT(22, om_sip_msg_unsupported(m, NULL, true, &b));
	UT_TRUE(strstr(om_buf_cstr(&b), "tag15") != NULL);
	UT_TRUE(strstr(om_buf_cstr(&b), "tag16") == NULL);
	UT_TRUE(strstr(om_buf_cstr(&b), "zzz") == NULL);
	UT_TRUE(b.len < 16 * 66);
	om_buf_free(&b);
	om_sip_msg_free(m);
}

/* ------------------------------------------------------------------ */
/* Printer                                                              */

UT_TEST(response_exact)
{
	static const char req[] = "INVITE sip:um@u SIP/2.0\r\n"
	                          "Via: SIP/2.0/TCP a;branch=z9hG4bK1,\r\n"
	                          " SIP/2.0/TCP b;branch=z9hG4bK2\r\n"
	                          "v: SIP/2.0/TCP c;branch=z9hG4bK3\r\n"
	                          "Record-Route: <sip:p1;lr>\r\n"
	                          "f: <sip:x@y>;tag=1\r\n"
	                          "t: <sip:um@u>\r\n"
	                          "i: c1\r\n"
	                          "CSeq: 7 INVITE\r\n"
	                          "l: 0\r\n\r\n";
	struct om_sip_msg *m = parse_ok(req);
	struct om_buf b;
	struct om_sip_resp_opts o = { .to_tag = "T9",
		                      .extra = "Allow: INVITE, ACK\r\n",
		                      .content_type = "application/sdp",
		                      .body = OM_STR_LIT("v=0\r\n") };
	om_buf_init(&b);
	UT_EQ_INT(0, om_sip_response_build(m, 200, NULL, &o, &b));
	UT_EQ_STR("SIP/2.0 200 OK\r\n"
	          "Via: SIP/2.0/TCP a;branch=z9hG4bK1, SIP/2.0/TCP b;branch=z9hG4bK2\r\n"
	          "Via: SIP/2.0/TCP c;branch=z9hG4bK3\r\n"
	          "From: <sip:x@y>;tag=1\r\n"
	          "To: <sip:um@u>;tag=T9\r\n"
	          "Call-ID: c1\r\n"
	          "CSeq: 7 INVITE\r\n"
	          "Record-Route: <sip:p1;lr>\r\n"
	          "Allow: INVITE, ACK\r\n"
	          "Content-Type: application/sdp\r\n"
	          "Content-Length: 5\r\n\r\nv=0\r\n",
	          om_buf_cstr(&b));
	om_buf_free(&b);

	/* 100: no To-tag; 4xx: no Record-Route; own phrase */
	om_buf_init(&b);
	UT_EQ_INT(0, om_sip_response_build(m, 100, NULL, &o, &b));
	UT_TRUE(strstr(om_buf_cstr(&b), "To: <sip:um@u>\r\n") != NULL);
	om_buf_free(&b);
	om_buf_init(&b);
	UT_EQ_INT(0, om_sip_response_build(m, 486, "Busy", NULL, &b));
	UT_TRUE(strncmp(om_buf_cstr(&b), "SIP/2.0 486 Busy\r\n", 18) == 0);
	UT_TRUE(strstr(om_buf_cstr(&b), "Record-Route") == NULL);
	UT_TRUE(strstr(om_buf_cstr(&b), "Content-Length: 0\r\n\r\n") != NULL);
	om_buf_free(&b);

	om_buf_init(&b);
	UT_EQ_INT(EINVAL, om_sip_response_build(m, 99, NULL, NULL, &b));
	UT_EQ_INT(EINVAL, om_sip_response_build(m, 200, "OK\r\nX: injected", NULL, &b));
	struct om_sip_resp_opts bad = { .to_tag = "a\r\nb" };
	UT_EQ_INT(EINVAL, om_sip_response_build(m, 200, NULL, &bad, &b));
	UT_EQ_INT(0, b.len);
	om_buf_free(&b);
	om_sip_msg_free(m);

	/* an existing To-tag is kept */
	m = parse_ok("BYE sip:um@u SIP/2.0\r\nVia: SIP/2.0/TCP a\r\nf: <sip:x@y>;tag=1\r\n"
	             "t: <sip:um@u>;tag=old\r\ni: c\r\nCSeq: 8 BYE\r\nl: 0\r\n\r\n");
	om_buf_init(&b);
	UT_EQ_INT(0, om_sip_response_build(m, 200, NULL, &o, &b));
	UT_TRUE(strstr(om_buf_cstr(&b), "To: <sip:um@u>;tag=old\r\n") != NULL);
	om_buf_free(&b);
	om_sip_msg_free(m);
}

UT_TEST(request_exact)
{
	struct om_sip_req_opts o = {
		.ruri = "sip:gw@192.0.2.9:5061;transport=tls",
		.via_transport = "TLS",
		.via_sent_by = "um.example:5061",
		.branch = "z9hG4bKabc",
		.from = "<sip:um@um.example>",
		.from_tag = "f1",
		.to = "<sip:gw@192.0.2.9>",
		.call_id = "ping-1@um.example",
		.cseq = 1,
	};
	struct om_buf b;
	om_buf_init(&b);
	UT_EQ_INT(0, om_sip_request_build(OM_SIP_METHOD_OPTIONS, &o, &b));
	UT_EQ_STR("OPTIONS sip:gw@192.0.2.9:5061;transport=tls SIP/2.0\r\n"
	          "Via: SIP/2.0/TLS um.example:5061;branch=z9hG4bKabc;rport\r\n"
	          "Max-Forwards: 70\r\n"
	          "From: <sip:um@um.example>;tag=f1\r\n"
	          "To: <sip:gw@192.0.2.9>\r\n"
	          "Call-ID: ping-1@um.example\r\n"
	          "CSeq: 1 OPTIONS\r\n"
	          "Content-Length: 0\r\n\r\n",
	          om_buf_cstr(&b));
	/* and it passes our own validation */
	struct om_sip_msg *m = NULL;
	enum om_sip_reason r;
	UT_EQ_INT(0, om_sip_msg_parse(b.p, b.len, NULL, &m, &r));
	UT_EQ_INT(0, om_sip_msg_validate(m, &r));
	om_sip_msg_free(m);
	om_buf_free(&b);
	om_buf_init(&b);
	UT_EQ_INT(EINVAL, om_sip_request_build(OM_SIP_METHOD_OTHER, &o, &b));
	o.call_id = "x\r\nInjected: 1";
	UT_EQ_INT(EINVAL, om_sip_request_build(OM_SIP_METHOD_BYE, &o, &b));
	om_buf_free(&b);
}

/* ------------------------------------------------------------------ */
/* Out of memory                                                       */

static int oom_options(void *arg)
{
	(void)arg;
	struct om_sip_msg *m = NULL;
	enum om_sip_reason r;
	struct om_buf b;
	int err = om_sip_msg_parse(OPTIONS_REQ, strlen(OPTIONS_REQ), NULL, &m, &r);
	if (err)
		return err;
	om_buf_init(&b);
	err = om_sip_response_build(m, 200, NULL, &(struct om_sip_resp_opts){ .to_tag = "x" }, &b);
	om_buf_free(&b);
	om_buf_init(&b);
	static const char *const sup[] = { "timer", NULL };
	if (om_sip_msg_unsupported(m, sup, true, &b) != 1 && !om_buf_err(&b))
		abort();
	if (!err)
		err = om_buf_err(&b); /* the tag list did not fit in memory */
	om_buf_free(&b);
	om_sip_msg_free(m);
	return err;
}

UT_TEST(oom_sweep_options)
{
	unsigned long runs = ut_oom_sweep(oom_options, NULL);
	UT_TRUE(runs >= 3);
	UT_EQ_INT(0, oom_options(NULL));
}

/* A datagram whose last header line has no empty line after it: that
 * field counts against max_headers too (max_headers + 1 fields refused). */
UT_TEST(header_bound_holds_without_final_empty_line)
{
	static char many[8192];
	struct om_sip_msg *m = NULL;
	enum om_sip_reason r;
	int k = snprintf(many, sizeof(many), "OPTIONS sip:a@b SIP/2.0\r\n");
	for (int i = 0; i < 255; i++)
		k += snprintf(many + k, sizeof(many) - (size_t)k, "X: %d\r\n", i);
	k += snprintf(many + k, sizeof(many) - (size_t)k, "Y: last\r\n");
	UT_EQ_INT(0, om_sip_msg_parse(many, (size_t)k, NULL, &m, &r));
	UT_EQ_INT(256, m->nhdrs);
	om_sip_msg_free(m);
	/* 257 fields, the last one's CRLF ending the datagram */
	int k2 = k + snprintf(many + k, sizeof(many) - (size_t)k, "Z: over\r\n");
	UT_EQ_INT(EBADMSG, om_sip_msg_parse(many, (size_t)k2, NULL, &m, &r));
	UT_EQ_INT(OM_SIP_R_TOO_MANY_HEADERS, r);
	struct om_sip_limits l;
	om_sip_limits_default(&l);
	l.max_headers = 1;
	static const char one[] = "OPTIONS sip:a@b SIP/2.0\r\nA: 1\r\n";
	static const char two[] = "OPTIONS sip:a@b SIP/2.0\r\nA: 1\r\nB: 2\r\n";
	UT_EQ_INT(0, om_sip_msg_parse(one, sizeof(one) - 1, &l, &m, &r));
	om_sip_msg_free(m);
	UT_EQ_INT(EBADMSG, om_sip_msg_parse(two, sizeof(two) - 1, &l, &m, &r));
	UT_EQ_INT(OM_SIP_R_TOO_MANY_HEADERS, r);
}

UT_TEST(to_tag_found_even_in_a_broken_value)
{
	UT_TRUE(om_sip_addr_has_tag(OM_STR_LIT("<sip:a@b>;tag=1"), 2048));
	UT_TRUE(!om_sip_addr_has_tag(OM_STR_LIT("<sip:a@b;tag=1>"), 2048));
	UT_TRUE(!om_sip_addr_has_tag(OM_STR_LIT("sip:a@b"), 2048));
	/* not parsable: the text is searched outside <> and quotes */
	struct om_sip_addr a;
	UT_TRUE(om_sip_addr_parse(OM_STR_LIT("<sip:a@b c> ;x ; TAG = 5"), 2048, &a) != 0);
	UT_TRUE(om_sip_addr_has_tag(OM_STR_LIT("<sip:a@b c> ;x ; TAG = 5"), 2048));
	UT_TRUE(!om_sip_addr_has_tag(OM_STR_LIT("<sip:a@b;tag=5"), 2048));
	UT_TRUE(!om_sip_addr_has_tag(OM_STR_LIT("\"x;tag=1\" <<sip:a@b"), 2048));
	UT_TRUE(!om_sip_addr_has_tag(OM_STR_LIT("<<<"), 2048));
	UT_TRUE(!om_sip_addr_has_tag(OM_STR_LIT(""), 2048));
}

UT_MAIN(UT_CASE(frame_table), UT_CASE(frame_header_without_end_over_limit),
        UT_CASE(frame_stream_in_chunks), UT_CASE(start_line_table), UT_CASE(limits_are_enforced),
        UT_CASE(reason_mapping), UT_CASE(uri_table), UT_CASE(uri_equality),
        UT_CASE(params_and_escapes), UT_CASE(header_names), UT_CASE(via_table), UT_CASE(addr_table),
        UT_CASE(getters_for_the_transport), UT_CASE(validate_table),
        UT_CASE(unsupported_is_bounded), UT_CASE(response_exact), UT_CASE(request_exact),
        UT_CASE(oom_sweep_options), UT_CASE(header_bound_holds_without_final_empty_line),
        UT_CASE(to_tag_found_even_in_a_broken_value))
