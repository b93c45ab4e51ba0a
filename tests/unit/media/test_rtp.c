/* test_rtp.c — RTP/RTCP packet parsing and writing (RFC 3550 §5.1, §6,
 * A.2; RFC 5761 §4; RFC 4733 §2.3): every bound of the header walk, the
 * compound-packet rules, and what openum writes parses back. */
#include "ut.h"
#include "media/rtp.h"

#include <errno.h>

UT_TEST(rtp_header_fields_csrc_extension_padding)
{
	uint8_t p[64] = { 0 };
	struct om_rtp_hdr h;
	size_t n = om_rtp_write_hdr(p, 8, true, 0xfffe, 0x01020304, 0xa1b2c3d4);
	UT_EQ_INT(12, n);
	UT_EQ_INT(0, om_rtp_parse(p, 40, &h));
	UT_EQ_INT(8, h.pt);
	UT_TRUE(h.marker);
	UT_EQ_INT(0xfffe, h.seq);
	UT_EQ_INT(0x01020304, h.ts);
	UT_EQ_INT(0xa1b2c3d4, h.ssrc);
	UT_EQ_INT(12, h.hdr_len);
	UT_EQ_INT(28, h.payload_len);
	/* Two CSRCs and a one-word extension: header 12 + 8 + 4 + 4. */
	p[0] = 0x80 | 0x10 | 2;
	p[20] = 0xbe;
	p[21] = 0xde;
	p[22] = 0;
	p[23] = 1;
	UT_EQ_INT(0, om_rtp_parse(p, 40, &h));
	UT_EQ_INT(28, h.hdr_len);
	UT_EQ_INT(12, h.payload_len);
	UT_EQ_INT(2, h.cc);
	/* Padding: the last octet counts it. */
	p[0] |= 0x20;
	p[39] = 4;
	UT_EQ_INT(0, om_rtp_parse(p, 40, &h));
	UT_EQ_INT(8, h.payload_len);
	UT_EQ_INT(4, h.padding);
	p[39] = 13; /* more than the payload */
	UT_EQ_INT(EPROTO, om_rtp_parse(p, 40, &h));
	p[39] = 0; /* a zero count is invalid */
	UT_EQ_INT(EPROTO, om_rtp_parse(p, 40, &h));
	p[39] = 12; /* the whole payload is padding: allowed */
	UT_EQ_INT(0, om_rtp_parse(p, 40, &h));
	UT_EQ_INT(0, h.payload_len);
}

UT_TEST(rtp_header_bounds)
{
	uint8_t p[64] = { 0x80 };
	struct om_rtp_hdr h;
	UT_EQ_INT(EPROTO, om_rtp_parse(p, 11, &h));
	UT_EQ_INT(0, om_rtp_parse(p, 12, &h));
	p[0] = 0x40; /* version 1 */
	UT_EQ_INT(EPROTO, om_rtp_parse(p, 12, &h));
	p[0] = 0x8f; /* 15 CSRCs need 72 octets */
	UT_EQ_INT(EPROTO, om_rtp_parse(p, 64, &h));
	p[0] = 0x90; /* extension header cut off */
	UT_EQ_INT(EPROTO, om_rtp_parse(p, 14, &h));
	p[12 + 2] = 0xff; /* extension length beyond the packet */
	p[12 + 3] = 0xff;
	UT_EQ_INT(EPROTO, om_rtp_parse(p, 64, &h));
	p[12 + 2] = 0;
	p[12 + 3] = 12; /* exactly to the end: 12 + 4 + 48 */
	UT_EQ_INT(0, om_rtp_parse(p, 64, &h));
	UT_EQ_INT(0, h.payload_len);
}

UT_TEST(rtcp_mux_demultiplexing)
{
	uint8_t p[2] = { 0x80, 0 };
	for (int b = 0; b < 256; b++) {
		p[1] = (uint8_t)b;
		UT_EQ_INT(b >= 192 && b <= 223, om_rtp_is_rtcp(p, 2));
	}
	UT_TRUE(!om_rtp_is_rtcp(p, 1));
}

UT_TEST(rtcp_written_reports_parse_back)
{
	uint8_t p[256];
	struct om_rtcp_block blk = { 0x11, 25, 1000, 70000, 44, 0x12345678, 65536 };
	struct om_rtcp_info info;
	for (int sr = 0; sr < 2; sr++) {
		for (int bye = 0; bye < 2; bye++) {
			size_t n = om_rtcp_write(p, sizeof(p), 0xcafe, sr, 0x0102030405060708ULL,
			                         99, 5, 800, &blk, "openum-0000beef", bye);
			UT_TRUE(n > 0 && n % 4 == 0);
			UT_EQ_INT(0, om_rtcp_parse(p, n, &info));
			UT_EQ_INT(0xcafe, info.ssrc);
			UT_EQ_INT(sr, info.has_sr);
			UT_EQ_INT(bye, info.bye);
			UT_EQ_INT(2 + bye, info.packets);
			if (sr)
				UT_EQ_INT(0x03040506, info.sr_ntp_mid);
		}
	}
	UT_EQ_INT(0, om_rtcp_write(p, 20, 1, true, 0, 0, 0, 0, NULL, "x", false));
}

UT_TEST(rtcp_compound_rules)
{
	uint8_t p[256];
	struct om_rtcp_info info;
	size_t n = om_rtcp_write(p, sizeof(p), 7, false, 0, 0, 0, 0, NULL, "cname", false);
	/* Lengths must add up exactly. */
	UT_EQ_INT(EPROTO, om_rtcp_parse(p, n - 4, &info));
	UT_EQ_INT(EPROTO, om_rtcp_parse(p, n + 4, &info));
	/* The first packet must be SR or RR. */
	uint8_t q[256];
	memcpy(q, p + 8, n - 8); /* the SDES alone */
	UT_EQ_INT(EPROTO, om_rtcp_parse(q, n - 8, &info));
	/* No padding on the first packet; padding only on the last. */
	memcpy(q, p, n);
	q[0] |= 0x20;
	UT_EQ_INT(EPROTO, om_rtcp_parse(q, n, &info));
	memcpy(q, p, n);
	q[8] |= 0x20; /* the SDES is last: its padding count must fit */
	q[n - 1] = 4;
	UT_EQ_INT(0, om_rtcp_parse(q, n, &info));
	q[n - 1] = 0;
	UT_EQ_INT(EPROTO, om_rtcp_parse(q, n, &info));
	/* Version 2 everywhere. */
	memcpy(q, p, n);
	q[8] = (uint8_t)((q[8] & 0x3f) | 0x40);
	UT_EQ_INT(EPROTO, om_rtcp_parse(q, n, &info));
	/* RR whose report count needs more than its length. */
	memcpy(q, p, n);
	q[0] |= 3;
	UT_EQ_INT(EPROTO, om_rtcp_parse(q, n, &info));
	UT_EQ_INT(EPROTO, om_rtcp_parse(p, 0, &info));
	UT_EQ_INT(EPROTO, om_rtcp_parse(p, 3, &info));
}

UT_TEST(telephone_events)
{
	uint8_t e[4] = { 11, 0x8a, 0x03, 0x20 };
	struct om_rtp_event ev;
	UT_EQ_INT(0, om_rtp_event_parse(e, 4, &ev));
	UT_EQ_INT(11, ev.event);
	UT_TRUE(ev.end);
	UT_EQ_INT(10, ev.volume);
	UT_EQ_INT(800, ev.duration);
	UT_EQ_INT(EPROTO, om_rtp_event_parse(e, 3, &ev));
	const char *digits = "0123456789*#ABCD";
	for (int i = 0; i < 16; i++) {
		UT_EQ_INT(digits[i], om_rtp_event_digit((uint8_t)i));
		UT_EQ_INT(i, om_rtp_digit_event(digits[i]));
	}
	UT_EQ_INT(0, om_rtp_event_digit(16));
	UT_EQ_INT(12, om_rtp_digit_event('a'));
	UT_EQ_INT(-1, om_rtp_digit_event('E'));
	UT_EQ_INT(-1, om_rtp_digit_event(' '));
}

UT_MAIN(UT_CASE(rtp_header_fields_csrc_extension_padding), UT_CASE(rtp_header_bounds),
        UT_CASE(rtcp_mux_demultiplexing), UT_CASE(rtcp_written_reports_parse_back),
        UT_CASE(rtcp_compound_rules), UT_CASE(telephone_events))
