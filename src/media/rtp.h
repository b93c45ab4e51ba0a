/* rtp.h — RTP and RTCP packets as bytes: parsing what arrives (bounded,
 * no allocation: the fuzzed part of the receive path) and writing what
 * openum sends. Inside the media module and its tests and tools.
 *
 *   RFC 3550 §5.1   RTP fixed header, CSRC list, §5.3.1 header extension,
 *                   padding (the last octet counts the padding octets)
 *   RFC 3550 §6.4   SR and RR, §6.5 SDES (CNAME), §6.6 BYE, §6.1 compound
 *                   packets and the validity checks of Appendix A.2
 *   RFC 5761 §4     telling RTCP from RTP on one port (PT 64-95)
 *   RFC 4733 §2.3   telephone-event payload */
#ifndef OM_MEDIA_RTP_H
#define OM_MEDIA_RTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define OM_RTP_MAX_PACKET 1500 /* bytes of one UDP datagram we handle */

struct om_rtp_hdr {
	uint8_t pt;
	bool marker;
	uint16_t seq;
	uint32_t ts, ssrc;
	uint8_t cc;         /* CSRC count */
	bool ext;           /* header extension present */
	size_t hdr_len;     /* fixed header + CSRCs + extension */
	size_t payload_len; /* without padding */
	uint8_t padding;    /* padding octets removed */
};

/* Parses an RTP header (RFC 3550 §5.1): version 2, CSRCs, extension and
 * padding within the packet. 0 or EPROTO. */
int om_rtp_parse(const uint8_t *p, size_t n, struct om_rtp_hdr *h);

/* RFC 5761 §4: the second octet of an RTCP packet is 192..223 (as RTP:
 * marker + PT 64..95). True when p looks like RTCP. */
bool om_rtp_is_rtcp(const uint8_t *p, size_t n);

struct om_rtcp_info {
	uint32_t ssrc; /* sender of the first packet (SR or RR) */
	bool has_sr;
	uint32_t sr_ntp_mid; /* middle 32 bits of the SR's NTP timestamp */
	unsigned packets;    /* packets in the compound */
	bool bye;
};

/* Validates a compound RTCP packet (RFC 3550 §6.1, A.2): version 2 in
 * every packet, the first an SR or RR without padding, lengths that add up
 * exactly to n, padding only in the last one. 0 or EPROTO. */
int om_rtcp_parse(const uint8_t *p, size_t n, struct om_rtcp_info *out);

struct om_rtp_event {
	uint8_t event; /* 0-9, 10 '*', 11 '#', 12-15 A-D, others */
	bool end;
	uint8_t volume;
	uint16_t duration; /* timestamp units */
};

/* RFC 4733 §2.3: the 4-octet event block (redundant blocks after it are
 * ignored). 0 or EPROTO. */
int om_rtp_event_parse(const uint8_t *payload, size_t n, struct om_rtp_event *ev);
/* The DTMF digit of an event code, or 0 when it is none (RFC 4733 §3.2). */
char om_rtp_event_digit(uint8_t event);
/* The event code of a digit (0-9 * # A-D, a-d), or -1. */
int om_rtp_digit_event(char digit);

/* Writes a 12-octet RTP header; returns 12. */
size_t om_rtp_write_hdr(uint8_t *p, uint8_t pt, bool marker, uint16_t seq, uint32_t ts,
                        uint32_t ssrc);

/* One report block of an SR/RR (RFC 3550 §6.4.1). */
struct om_rtcp_block {
	uint32_t ssrc;
	uint8_t fraction_lost;
	int32_t cum_lost; /* 24 bits */
	uint32_t ext_max_seq;
	uint32_t jitter;
	uint32_t lsr, dlsr;
};

/* A compound packet: SR (when sent_packets > 0 or force_sr) or RR, with 0
 * or 1 report block, then SDES CNAME, then BYE when `bye`. Returns its
 * length, or 0 when cap is too small. ntp: 64-bit NTP time of now. */
size_t om_rtcp_write(uint8_t *p, size_t cap, uint32_t ssrc, bool sr, uint64_t ntp, uint32_t rtp_ts,
                     uint32_t sent_packets, uint32_t sent_octets, const struct om_rtcp_block *blk,
                     const char *cname, bool bye);

#endif
