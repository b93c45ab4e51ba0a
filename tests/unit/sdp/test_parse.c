/* test_parse.c — SDP parser (RFC 4566): structure, fields, LF-only line
 * ends, bounds, malformed inputs, out-of-memory sweep. */
#include "ut.h"
#include "sdp/sdp.h"

#include <errno.h>
#include <stdio.h>

static const char good[] =
    "v=0\r\n"
    "o=gw 2890844526 2890842807 IN IP4 10.47.16.5\r\n"
    "s=-\r\n"
    "c=IN IP4 10.47.16.5\r\n"
    "t=0 0\r\n"
    "a=sendonly\r\n"
    "m=audio 49170 RTP/SAVP 18 0 8 101\r\n"
    "a=rtpmap:0 PCMU/8000\r\n"
    "a=rtpmap:101 telephone-event/8000\r\n"
    "a=fmtp:101 0-15\r\n"
    "a=ptime:20\r\n"
    "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WnD7c1ksDGs+dIefCEo8omPg4uO8DYIinNGL5yxQ|2^20\r\n"
    "a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:t0r0/apkukU7JjjfR0mY8GEimBq4OiPEm9eKSFOx\r\n"
    "m=video 51372 RTP/AVP 31\r\n"
    "c=IN IP6 2001:db8::1\r\n"
    "a=recvonly\r\n";

UT_TEST(parses_fields)
{
	struct om_sdp *s = NULL;
	struct om_sdp_error e;
	UT_EQ_INT(0, om_sdp_parse(good, sizeof(good) - 1, &s, &e));
	UT_EQ_SLICE("gw", s->o_user.p, s->o_user.len);
	UT_EQ_INT(2890844526ULL, s->sess_id);
	UT_EQ_INT(2890842807ULL, s->sess_version);
	UT_EQ_INT(2, s->nmedia);
	const struct om_sdp_media *a = &s->media[0], *v = &s->media[1];
	UT_EQ_SLICE("audio", a->media.p, a->media.len);
	UT_EQ_INT(49170, a->port);
	UT_EQ_INT(OM_SDP_PROTO_SAVP, a->proto_kind);
	UT_EQ_INT(4, a->nfmt);
	UT_EQ_SLICE("101", a->fmt[3].p, a->fmt[3].len);
	UT_EQ_INT(20, a->ptime);
	UT_EQ_INT(OM_SDP_SENDONLY, a->dir); /* from the session */
	UT_EQ_SLICE("10.47.16.5", a->conn.addr.p, a->conn.addr.len);
	UT_EQ_INT(2, a->nmap);
	UT_EQ_SLICE("telephone-event", a->map[1].encoding.p, a->map[1].encoding.len);
	UT_EQ_SLICE("0-15", a->map[1].fmtp.p, a->map[1].fmtp.len);
	UT_EQ_INT(2, a->ncrypto);
	UT_TRUE(a->crypto_error == NULL);
	UT_EQ_INT(OM_SDP_AES_CM_128_HMAC_SHA1_32, a->crypto[1].suite);
	UT_EQ_INT(OM_SDP_PROTO_AVP, v->proto_kind);
	UT_EQ_INT(OM_SDP_IP6, v->conn.type);
	UT_EQ_SLICE("2001:db8::1", v->conn.addr.p, v->conn.addr.len);
	UT_EQ_INT(OM_SDP_RECVONLY, v->dir);
	/* Zero-copy: slices point into the body. */
	UT_TRUE(a->media.p >= good && a->media.p < good + sizeof(good));
	om_sdp_free(s);
}

UT_TEST(lf_only_and_blank_edges)
{
	static const char b[] =
	    "\n\nv=0\no=- 0 0 IN IP4 127.0.0.1\ns=x\nc=IN IP4 127.0.0.1/127\nt=0 0\n"
	    "m=audio 4000/2 RTP/AVP 0\na=inactive\n\r\n\n";
	struct om_sdp *s = NULL;
	struct om_sdp_error e;
	UT_EQ_INT(0, om_sdp_parse(b, sizeof(b) - 1, &s, &e));
	UT_EQ_SLICE("127.0.0.1", s->conn.addr.p, s->conn.addr.len);
	UT_EQ_INT(2, s->media[0].nports);
	UT_EQ_INT(OM_SDP_INACTIVE, s->media[0].dir);
	om_sdp_free(s);
	/* Host names, IPv6 hold, sess-id past 64 bits (kept as 0). */
	static const char n[] = "v=0\r\no=- 99999999999999999999999 1 IN IP6 h\r\ns=x\r\nt=0 0\r\n"
	                        "m=audio 4000 RTP/AVP 0\r\nc=IN IP6 media.example\r\n"
	                        "m=audio 4002 RTP/AVP 0\r\nc=IN IP6 ::\r\n";
	UT_EQ_INT(0, om_sdp_parse(n, sizeof(n) - 1, &s, &e));
	UT_EQ_INT(0, s->sess_id);
	UT_EQ_SLICE("media.example", s->media[0].conn.addr.p, s->media[0].conn.addr.len);
	UT_TRUE(s->media[1].conn.hold);
	om_sdp_free(s);
	/* No final EOL, and a hold address. */
	static const char h[] =
	    "v=0\r\no=- 0 0 IN IP4 h.example\r\ns= \r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\nc=IN IP4 0.0.0.0";
	UT_EQ_INT(0, om_sdp_parse(h, sizeof(h) - 1, &s, &e));
	UT_TRUE(s->media[0].conn.hold);
	om_sdp_free(s);
}

UT_TEST(malformed)
{
	static const struct {
		const char *b, *why;
	} t[] = {
		{ "", "empty_body" },
		{ "\r\n", "empty_body" },
		{ "v=1\r\n", "bad_v_line" },
		{ "o=- 0 0 IN IP4 a\r\nv=0\r\n", "bad_v_line" },
		{ "v=0\r\ns=x\r\n", "missing_o_line" },
		{ "v=0\r\no=- 0 0 IN IP4 a\r\n", "missing_s_line" },
		{ "v=0\r\no=- 0 0 IN IP4 a\r\ns=x\r\nc=IN IP4 1.2.3.4\r\n", "missing_t_line" },
		{ "v=0\r\no=- 0 0 IN IP4 a\r\ns=x\r\nc=IN IP4 1.2.3.4\r\nm=audio 1 RTP/AVP 0\r\n",
		  "missing_t_line" },
		{ "v=0\r\no=- 0 0 IN IP4 a\r\ns=x\r\nt=0 0\r\nm=audio 1 RTP/AVP 0\r\n",
		  "missing_c_line" },
		{ "v=\r\no=\r\ns=\r\nc=\r\nt=\r\na=\r\n", "bad_v_line" },
		{ "v=0\r\no=-\r\ns=x\r\n", "bad_o_line" },
		{ "v=0\r\no=- x 0 IN IP4 a\r\ns=x\r\n", "bad_o_line" },
		{ "v=0\r\no=- 0 0 IN IP4 a\r\ns=x\r\nc=AF IP4 1.2.3.4\r\nt=0 0\r\n",
		  "bad_c_nettype" },
		{ "v=0\r\no=- 0 0 IN IP4 a\r\ns=x\r\nc=IN IP7 1.2.3.4\r\nt=0 0\r\n",
		  "bad_c_addrtype" },
		{ "v=0\r\no=- 0 0 IN IP4 a\r\ns=x\r\nc=IN IP4 1.2.3.400\r\nt=0 0\r\n",
		  "bad_c_address" },
		{ "v=0\r\no=- 0 0 IN IP4 a\r\ns=x\r\nc=IN IP4 ::1\r\nt=0 0\r\n", "bad_c_address" },
		{ "v=0\r\no=- 0 0 IN IP4 a\r\ns=x\r\nc=IN IP4 a b\r\nt=0 0\r\n", "bad_c_address" },
		{ "v=0\r\no=- 0 0 IN IP4 a\r\ns=x\r\nc=IN IP4 1.2.3.4\r\nc=IN IP4 1.2.3.4\r\n",
		  "duplicate_c_line" },
		{ "v=0\r\no=- 0 0 IN IP4 a\r\ns=x\r\nc=IN IP4 1.2.3.4\r\nt=0\r\n", "bad_t_line" },
		{ "v=0\r\no=- 0 0 IN IP4 a\r\ns=x\r\nc=IN IP4 1.2.3.4\r\nt=0 0\r\nm=audio 7/0 RTP/AVP 0\r\n",
		  "bad_m_port" },
		{ "v=0\r\no=- 0 0 IN IP4 a\r\ns=x\r\nc=IN IP4 1.2.3.4\r\nt=0 0\r\nm=audio\r\n",
		  "bad_m_line" },
		{ "v=0\r\no=- 0 0 IN IP4 a\r\ns=x\r\nc=IN IP4 1.2.3.4\r\nt=0 0\r\na=:x\r\n",
		  "bad_attribute" },
		{ "v=0\r\no=- 0 0 IN IP4 a\r\ns=x\r\nc=IN IP4 1.2.3.4\r\nt=0 0\r\nv=0\r\n",
		  "misplaced_line" },
		{ "v=0\r\no=- 0 0 IN IP4 a\r\nc=IN IP4 1.2.3.4\r\n", "missing_s_line" },
		{ "v=0\r\no=- 0 0 IN IP4 a\r\ns=x\r\nc=IN IP6 1.2.3.4\r\nt=0 0\r\n",
		  "bad_c_address" },
		{ "v=0\r\no=- 0 0 IN IP4 a\r\ns=x\r\nc=IN IP6 2001:db8::zz\r\nt=0 0\r\n",
		  "bad_c_address" },
		{ "v=0\r\no=- 0 0 IN IP4 a\r\ns=x\r\nt=0 0\r\nm=audio 1 RTP/AVP 0\r\nc=IN IP4 1.2.3.4\r\nc=IN IP4 x y\r\n",
		  "bad_c_address" },
		{ "v=0\r\no=- 0 0 IN IP4 a\r\ns=x\r\nc=IN IP4 1.2.3.4\r\nt=0 0\r\nm=audio 70000 RTP/AVP 0\r\n",
		  "bad_m_port" },
		{ "v=0\r\no=- 0 0 IN IP4 a\r\ns=x\r\nc=IN IP4 1.2.3.4\r\nt=0 0\r\nm=audio 7 RTP/AVP\r\n",
		  "bad_m_no_format" },
		{ "v=0\r\no=- 0 0 IN IP4 a\r\ns=x\r\nc=IN IP4 1.2.3.4\r\nt=0 0\r\nm=audio 7 RTP/AVP 0\r\nt=0 0\r\n",
		  "misplaced_line" },
		{ "v=0\r\no=- 0 0 IN IP4 a\r\ns=x\r\nc=IN IP4 1.2.3.4\r\nt=0 0\r\nx=1\r\n",
		  "unknown_line_type" },
		{ "v=0\r\no=- 0 0 IN IP4 a\r\ns=x\r\nc=IN IP4 1.2.3.4\r\nt=0 0\r\nA=1\r\n",
		  "bad_line" },
		{ "v=0\r\no=- 0 0 IN IP4 a\r\ns=x\r\n\r\nt=0 0\r\n", "empty_line" },
		{ "v=0\r\no=- 0 0 IN IP4 a\r\ns=x\rc=IN IP4 1.2.3.4\r\n", "bad_line" },
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct om_sdp *s = NULL;
		struct om_sdp_error e;
		if (om_sdp_parse(t[i].b, strlen(t[i].b), &s, &e) == 0)
			UT_FAIL("accepted case %zu: %s", i, t[i].b);
		if (!e.reason || strcmp(e.reason, t[i].why) != 0)
			UT_FAIL("case %zu: expected %s, got %s", i, t[i].why,
			        e.reason ? e.reason : "(null)");
	}
	struct om_sdp *s = NULL;
	struct om_sdp_error e;
	UT_EQ_INT(EINVAL, om_sdp_parse("v=0\0", 4, &s, &e));
	UT_EQ_STR("nul_byte", e.reason);
}

UT_TEST(bad_rtpmap_makes_pt_unknown)
{
	static const char b[] =
	    "v=0\r\no=- 0 0 IN IP4 a\r\ns=x\r\nc=IN IP4 1.2.3.4\r\nt=0 0\r\n"
	    "m=audio 7 RTP/AVP 0 8 31\r\na=rtpmap:31 LPC\r\na=rtpmap:0 PCMU/8000\r\n"
	    "a=rtpmap:0 PCMA/8000\r\na=rtpmap:x y\r\na=rtpmap:8 PCMA/8000\r\n";
	struct om_sdp *s = NULL;
	UT_EQ_INT(0, om_sdp_parse(b, sizeof(b) - 1, &s, NULL));
	const struct om_sdp_media *m = &s->media[0];
	UT_EQ_INT(3, m->nmap);
	UT_EQ_INT(31, m->map[0].pt);
	UT_EQ_INT(0, m->map[0].encoding.len);
	UT_EQ_INT(0, m->map[1].pt);
	UT_EQ_INT(0, m->map[1].encoding.len); /* contradictory: unknown */
	UT_EQ_SLICE("PCMA", m->map[2].encoding.p, m->map[2].encoding.len);
	UT_EQ_INT(8000, m->map[2].clock);
	om_sdp_free(s);
}

UT_TEST(crypto_errors_mark_media)
{
	static const char dup[] =
	    "v=0\r\no=- 0 0 IN IP4 a\r\ns=x\r\nc=IN IP4 1.2.3.4\r\nt=0 0\r\n"
	    "m=audio 7 RTP/SAVP 0\r\n"
	    "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WnD7c1ksDGs+dIefCEo8omPg4uO8DYIinNGL5yxQ\r\n"
	    "a=crypto:1 AES_CM_128_HMAC_SHA1_32 inline:t0r0/apkukU7JjjfR0mY8GEimBq4OiPEm9eKSFOx\r\n";
	struct om_sdp *s = NULL;
	UT_EQ_INT(0, om_sdp_parse(dup, sizeof(dup) - 1, &s, NULL));
	UT_EQ_STR("crypto_duplicate_tag", s->media[0].crypto_error);
	UT_EQ_INT(2, s->media[0].ncrypto_lines);
	om_sdp_free(s);
	static const char nokey[] =
	    "v=0\r\no=- 0 0 IN IP4 a\r\ns=x\r\nc=IN IP4 1.2.3.4\r\nt=0 0\r\n"
	    "m=audio 7 RTP/SAVP 0\r\na=crypto:0 AES_CM_128_HMAC_SHA1_80 inline\r\n";
	UT_EQ_INT(0, om_sdp_parse(nokey, sizeof(nokey) - 1, &s, NULL));
	UT_EQ_STR("crypto_missing_key", s->media[0].crypto_error);
	om_sdp_free(s);
}

static void add_lines(char *buf, size_t cap, const char *head, const char *line, int n)
{
	size_t len = (size_t)snprintf(buf, cap, "%s", head);
	for (int i = 0; i < n && len + strlen(line) + 1 < cap; i++)
		len += (size_t)snprintf(buf + len, cap - len, "%s", line);
}

UT_TEST(bounds)
{
	static char buf[OM_SDP_MAX_BODY * 2];
	const char *head = "v=0\r\no=- 0 0 IN IP4 a\r\ns=x\r\nc=IN IP4 1.2.3.4\r\nt=0 0\r\n";
	struct om_sdp *s = NULL;
	struct om_sdp_error e;
	memset(buf, 'a', sizeof(buf));
	UT_EQ_INT(E2BIG, om_sdp_parse(buf, OM_SDP_MAX_BODY + 1, &s, &e));
	UT_EQ_STR("body_too_large", e.reason);
	add_lines(buf, sizeof(buf), head, "b=AS:64\r\n", OM_SDP_MAX_LINES);
	UT_EQ_INT(E2BIG, om_sdp_parse(buf, strlen(buf), &s, &e));
	UT_EQ_STR("too_many_lines", e.reason);
	add_lines(buf, sizeof(buf), head, "a=x\r\n", OM_SDP_MAX_ATTRS + 1);
	UT_EQ_INT(E2BIG, om_sdp_parse(buf, strlen(buf), &s, &e));
	UT_EQ_STR("too_many_attributes", e.reason);
	add_lines(buf, sizeof(buf), head, "m=audio 0 RTP/AVP 0\r\n", OM_SDP_MAX_MEDIA + 1);
	UT_EQ_INT(E2BIG, om_sdp_parse(buf, strlen(buf), &s, &e));
	UT_EQ_STR("too_many_media", e.reason);
	add_lines(buf, sizeof(buf), head, "m=audio 0 RTP/AVP 0\r\n", OM_SDP_MAX_MEDIA);
	UT_EQ_INT(0, om_sdp_parse(buf, strlen(buf), &s, &e));
	om_sdp_free(s);
	add_lines(
	    buf, sizeof(buf),
	    "v=0\r\no=- 0 0 IN IP4 a\r\ns=x\r\nc=IN IP4 1.2.3.4\r\nt=0 0\r\nm=audio 1 RTP/AVP",
	    " 0", OM_SDP_MAX_FMT + 1);
	UT_EQ_INT(E2BIG, om_sdp_parse(buf, strlen(buf), &s, &e));
	UT_EQ_STR("too_many_formats", e.reason);
	add_lines(
	    buf, sizeof(buf),
	    "v=0\r\no=- 0 0 IN IP4 a\r\ns=x\r\nc=IN IP4 1.2.3.4\r\nt=0 0\r\nm=audio 1 RTP/AVP 0\r\n",
	    "a=crypto:1 X inline:AAAA\r\n", 1);
	for (int i = 2; i <= OM_SDP_MAX_CRYPTO + 1; i++) {
		size_t l = strlen(buf);
		snprintf(buf + l, sizeof(buf) - l, "a=crypto:%d X inline:AAAA\r\n", i);
	}
	UT_EQ_INT(E2BIG, om_sdp_parse(buf, strlen(buf), &s, &e));
	UT_EQ_STR("too_many_crypto", e.reason);
	size_t l = (size_t)snprintf(buf, sizeof(buf), "%sm=audio 1 RTP/AVP 0\r\n", head);
	for (int i = 0; i <= OM_SDP_MAX_RTPMAP; i++)
		l += (size_t)snprintf(buf + l, sizeof(buf) - l, "a=fmtp:%d x\r\n", i);
	UT_EQ_INT(E2BIG, om_sdp_parse(buf, strlen(buf), &s, &e));
	UT_EQ_STR("too_many_rtpmaps", e.reason);
}

static int parse_once(void *arg)
{
	struct om_sdp *s = NULL;
	int rc = om_sdp_parse(good, sizeof(good) - 1, &s, NULL);
	om_sdp_free(s);
	(void)arg;
	return rc;
}

UT_TEST(oom_sweep)
{
	UT_TRUE(ut_oom_sweep(parse_once, NULL) >= 2);
	UT_EQ_INT(0, parse_once(NULL));
}

UT_MAIN(UT_CASE(parses_fields), UT_CASE(lf_only_and_blank_edges), UT_CASE(malformed),
        UT_CASE(bad_rtpmap_makes_pt_unknown), UT_CASE(crypto_errors_mark_media), UT_CASE(bounds),
        UT_CASE(oom_sweep))
