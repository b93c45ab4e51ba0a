/* test_sip_framer.c — stream framing piece by piece (RFC 3261 §18.3):
 * om_sip_framer_next gives exactly om_sip_frame's results however the
 * bytes are split, and its cost stays linear in the bytes received. */
#include "ut.h"
#include "sip/sip.h"

#include <string.h>

#define REQ(cl, body)                                                           \
	"INVITE sip:100@um.example SIP/2.0\r\n"                                 \
	"Via: SIP/2.0/TCP 192.0.2.1:5060;branch=z9hG4bK1\r\n"                   \
	"From: <sip:gw@192.0.2.1>;tag=a\r\nTo: <sip:100@um.example>\r\n"        \
	"Call-ID: c1@192.0.2.1\r\nCSeq: 1 INVITE\r\nContent-Length: " cl "\r\n" \
	"\r\n" body

static const char *const streams[] = {
	"\r\n\r\n" REQ("5", "hello") "\r\n" REQ("0", "") REQ("3", "abc") "\r\n\r\n",
	REQ("0", "") REQ("-1", ""),
	REQ("4", "ab") "cd" REQ("4", "") "\r\n\r\n\r\n",
	"INVITE sip:a@b SIP/2.0\nVia: x\r\n\r\n",
	"INVITE sip:a@b SIP/2.0\r\nContent-Length: 4\r\nl: 5\r\n\r\n",
	"OPTIONS sip:a@b SIP/2.0\r\nX: 1\r\n\r\nOPTIONS sip:a@b SIP/2.0\r\nX:\r\n 1\r\n\r\n",
};

/* Feeds `in` in pieces given by a simple generator; at every step the
 * stateful result equals the stateless one on the same buffer. */
static void check_split(const char *in, size_t total, unsigned seed, size_t max)
{
	char buf[4096];
	struct om_sip_framer f = { 0 };
	size_t have = 0, fed = 0;
	unsigned x = seed * 2654435761u + 1;
	for (int steps = 0; steps < 100000; steps++) {
		size_t ml1 = 0, ml2 = 0;
		enum om_sip_reason r1 = OM_SIP_R_OK, r2 = OM_SIP_R_OK;
		enum om_sip_frame_res a = om_sip_framer_next(&f, buf, have, max, &ml1, &r1);
		enum om_sip_frame_res b = om_sip_frame(buf, have, max, &ml2, &r2);
		if (a != b || (a != OM_SIP_FRAME_ERROR && ml1 != ml2) ||
		    (a == OM_SIP_FRAME_ERROR && r1 != r2))
			UT_FAIL("seed %u at %zu/%zu: stateful %d/%zu/%s, stateless %d/%zu/%s", seed,
			        have, fed, a, ml1, om_sip_reason_str(r1), b, ml2,
			        om_sip_reason_str(r2));
		if (a == OM_SIP_FRAME_ERROR)
			return;
		if (a == OM_SIP_FRAME_MSG || a == OM_SIP_FRAME_SKIP) {
			memmove(buf, buf + ml1, have - ml1);
			have -= ml1;
			continue;
		}
		if (fed == total)
			return;
		x = x * 1103515245u + 12345u;
		size_t n = 1 + (x >> 16) % (seed % 3 == 0 ? 2 : 40);
		if (n > total - fed)
			n = total - fed;
		if (have + n > sizeof(buf))
			UT_FAIL("test buffer too small");
		memcpy(buf + have, in + fed, n);
		have += n;
		fed += n;
	}
	UT_FAIL("no progress");
}

UT_TEST(same_results_as_stateless_for_every_split)
{
	for (size_t i = 0; i < sizeof(streams) / sizeof(streams[0]); i++)
		for (unsigned seed = 0; seed < 200; seed++)
			check_split(streams[i], strlen(streams[i]), seed, seed % 2 ? 65536 : 300);
}

/* A 60 KB header fed one byte at a time: the empty-line search covers
 * each byte a bounded number of times, and the header is parsed once
 * the section is complete, not once per byte (counted by how often the
 * stateless framer would have been needed: here never until the end). */
UT_TEST(byte_at_a_time_is_linear)
{
	size_t n = 60000;
	char *buf = om_malloc(n + 64);
	UT_TRUE(buf != NULL);
	size_t h = (size_t)snprintf(buf, 64, "OPTIONS sip:a@b SIP/2.0\r\nX: ");
	memset(buf + h, 'a', n - h);
	struct om_sip_framer f = { 0 };
	size_t ml;
	enum om_sip_reason r;
	for (size_t len = 1; len <= n; len++) {
		UT_EQ_INT(OM_SIP_FRAME_MORE, om_sip_framer_next(&f, buf, len, 65536, &ml, &r));
		/* the search never starts more than 3 bytes back */
		UT_TRUE(f.scan + 3 >= len - 1 || len < 4);
	}
	memcpy(buf + n, "\r\nl: 2\r\n\r\n", 10);
	UT_EQ_INT(OM_SIP_FRAME_MORE, om_sip_framer_next(&f, buf, n + 10, 65536, &ml, &r));
	UT_EQ_INT(n + 12, ml);
	UT_EQ_INT(n + 12, f.need);
	buf[n + 10] = 'x';
	UT_EQ_INT(OM_SIP_FRAME_MORE, om_sip_framer_next(&f, buf, n + 11, 65536, &ml, &r));
	buf[n + 11] = 'y';
	UT_EQ_INT(OM_SIP_FRAME_MSG, om_sip_framer_next(&f, buf, n + 12, 65536, &ml, &r));
	UT_EQ_INT(n + 12, ml);
	UT_EQ_INT(0, f.need);
	UT_EQ_INT(0, f.scan);
	om_free(buf);
}

UT_TEST(header_without_end_reaching_max_is_an_error)
{
	char buf[2100];
	struct om_sip_framer f = { 0 };
	size_t ml;
	enum om_sip_reason r = OM_SIP_R_OK;
	memset(buf, 'a', sizeof(buf));
	memcpy(buf, "OPTIONS sip:a@b SIP/2.0\r\nX: ", 28);
	UT_EQ_INT(OM_SIP_FRAME_MORE, om_sip_framer_next(&f, buf, 1000, 2048, &ml, &r));
	UT_EQ_INT(OM_SIP_FRAME_ERROR, om_sip_framer_next(&f, buf, 2048, 2048, &ml, &r));
	UT_EQ_INT(OM_SIP_R_MSG_TOO_LARGE, r);
}

UT_MAIN(UT_CASE(same_results_as_stateless_for_every_split), UT_CASE(byte_at_a_time_is_linear),
        UT_CASE(header_without_end_reaching_max_is_an_error))
