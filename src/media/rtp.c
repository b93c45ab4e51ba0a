/* rtp.c — RTP/RTCP packet parsing and writing (RFC 3550, RFC 5761,
 * RFC 4733). Everything here reads only inside [p, p + n) and allocates
 * nothing; the receive path runs every datagram through it first.
 *
 *   RTP (RFC 3550 §5.1):
 *     V=2 P X CC | M PT | sequence | timestamp | SSRC | CC × CSRC
 *     [X: profile(16) length(16, in 32-bit words) | extension words]
 *     payload | [P: padding, the last octet its count (>= 1)]
 *
 *   RTCP compound (RFC 3550 §6.1, A.2):
 *     packet := V=2 P count(5) | PT(8) | length(16, words - 1) | body
 *     the first is SR (200) or RR (201) without padding; only the last may
 *     be padded; the lengths add up to the datagram exactly. */
#include "media/rtp.h"

#include <errno.h>
#include <string.h>

static inline uint16_t rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static inline uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline void wr16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static inline void wr32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

int om_rtp_parse(const uint8_t *p, size_t n, struct om_rtp_hdr *h)
{
	if (n < 12 || (p[0] >> 6) != 2)
		return EPROTO;
	size_t len = 12 + 4 * (size_t)(p[0] & 0x0f);
	bool ext = (p[0] & 0x10) != 0;
	if (ext) {
		if (n < len + 4)
			return EPROTO;
		len += 4 + 4 * (size_t)rd16(p + len + 2);
	}
	if (len > n)
		return EPROTO;
	size_t pad = 0;
	if (p[0] & 0x20) {
		pad = p[n - 1];
		if (pad == 0 || pad > n - len)
			return EPROTO;
	}
	h->pt = p[1] & 0x7f;
	h->marker = (p[1] & 0x80) != 0;
	h->seq = rd16(p + 2);
	h->ts = rd32(p + 4);
	h->ssrc = rd32(p + 8);
	h->cc = p[0] & 0x0f;
	h->ext = ext;
	h->hdr_len = len;
	h->padding = (uint8_t)pad;
	h->payload_len = n - len - pad;
	return 0;
}

bool om_rtp_is_rtcp(const uint8_t *p, size_t n)
{
	return n >= 2 && p[1] >= 192 && p[1] <= 223;
}

int om_rtcp_parse(const uint8_t *p, size_t n, struct om_rtcp_info *out)
{
	struct om_rtcp_info info;
	memset(&info, 0, sizeof(info));
	size_t off = 0;
	while (off < n) {
		const uint8_t *q = p + off;
		if (n - off < 4 || (q[0] >> 6) != 2)
			return EPROTO;
		size_t len = 4 * ((size_t)rd16(q + 2) + 1);
		if (len > n - off)
			return EPROTO;
		bool padded = (q[0] & 0x20) != 0;
		uint8_t pt = q[1], count = q[0] & 0x1f;
		if (padded) {
			/* only the last packet, and the count within it */
			if (off + len != n || q[len - 1] == 0 || q[len - 1] > len - 4)
				return EPROTO;
		}
		if (info.packets == 0) {
			if ((pt != 200 && pt != 201) || padded)
				return EPROTO;
			/* SR: 4 + 24 + 24·RC; RR: 4 + 4 + 24·RC */
			size_t need = (pt == 200 ? 28 : 8) + 24 * (size_t)count;
			if (len < need)
				return EPROTO;
			info.ssrc = rd32(q + 4);
			if (pt == 200) {
				info.has_sr = true;
				info.sr_ntp_mid = rd32(q + 10);
			}
		}
		if (pt == 203) {
			if (4 + 4 * (size_t)count > len)
				return EPROTO;
			info.bye = true;
		}
		if (++info.packets > 64)
			return EPROTO;
		off += len;
	}
	if (info.packets == 0)
		return EPROTO;
	*out = info;
	return 0;
}

int om_rtp_event_parse(const uint8_t *payload, size_t n, struct om_rtp_event *ev)
{
	if (n < 4)
		return EPROTO;
	ev->event = payload[0];
	ev->end = (payload[1] & 0x80) != 0;
	ev->volume = payload[1] & 0x3f;
	ev->duration = rd16(payload + 2);
	return 0;
}

char om_rtp_event_digit(uint8_t event)
{
	static const char map[] = "0123456789*#ABCD";
	return event < 16 ? map[event] : 0;
}

int om_rtp_digit_event(char d)
{
	if (d >= '0' && d <= '9')
		return d - '0';
	if (d == '*')
		return 10;
	if (d == '#')
		return 11;
	if (d >= 'A' && d <= 'D')
		return 12 + (d - 'A');
	if (d >= 'a' && d <= 'd')
		return 12 + (d - 'a');
	return -1;
}

size_t om_rtp_write_hdr(uint8_t *p, uint8_t pt, bool marker, uint16_t seq, uint32_t ts,
                        uint32_t ssrc)
{
	p[0] = 0x80;
	p[1] = (uint8_t)((marker ? 0x80 : 0) | (pt & 0x7f));
	wr16(p + 2, seq);
	wr32(p + 4, ts);
	wr32(p + 8, ssrc);
	return 12;
}

size_t om_rtcp_write(uint8_t *p, size_t cap, uint32_t ssrc, bool sr, uint64_t ntp, uint32_t rtp_ts,
                     uint32_t sent_packets, uint32_t sent_octets, const struct om_rtcp_block *blk,
                     const char *cname, bool bye)
{
	size_t cl = strlen(cname);
	if (cl > 255)
		return 0;
	size_t first = (sr ? 28 : 8) + (blk ? 24 : 0);
	size_t sdes = (4 + 2 + cl + 1 + 3) & ~(size_t)3; /* chunk: SSRC, item, end, pad */
	size_t need = first + 4 + sdes + (bye ? 8 : 0);
	if (need > cap)
		return 0;
	memset(p, 0, need);
	uint8_t *q = p;
	q[0] = (uint8_t)(0x80 | (blk ? 1 : 0));
	q[1] = sr ? 200 : 201;
	wr16(q + 2, (uint16_t)(first / 4 - 1));
	wr32(q + 4, ssrc);
	size_t o = 8;
	if (sr) {
		wr32(q + 8, (uint32_t)(ntp >> 32));
		wr32(q + 12, (uint32_t)ntp);
		wr32(q + 16, rtp_ts);
		wr32(q + 20, sent_packets);
		wr32(q + 24, sent_octets);
		o = 28;
	}
	if (blk) {
		wr32(q + o, blk->ssrc);
		q[o + 4] = blk->fraction_lost;
		int32_t cl24 = blk->cum_lost > 0x7fffff    ? 0x7fffff
		               : blk->cum_lost < -0x800000 ? -0x800000
		                                           : blk->cum_lost;
		q[o + 5] = (uint8_t)((uint32_t)cl24 >> 16);
		q[o + 6] = (uint8_t)((uint32_t)cl24 >> 8);
		q[o + 7] = (uint8_t)cl24;
		wr32(q + o + 8, blk->ext_max_seq);
		wr32(q + o + 12, blk->jitter);
		wr32(q + o + 16, blk->lsr);
		wr32(q + o + 20, blk->dlsr);
	}
	q = p + first;
	q[0] = 0x81; /* one chunk */
	q[1] = 202;
	wr16(q + 2, (uint16_t)((4 + sdes) / 4 - 1));
	wr32(q + 4, ssrc);
	q[8] = 1; /* CNAME */
	q[9] = (uint8_t)cl;
	memcpy(q + 10, cname, cl);
	/* the item list ends with a zero octet; padding is zero too */
	if (bye) {
		q = p + first + 4 + sdes;
		q[0] = 0x81;
		q[1] = 203;
		wr16(q + 2, 1);
		wr32(q + 4, ssrc);
	}
	return need;
}
