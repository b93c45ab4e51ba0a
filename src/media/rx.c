/* rx.c — the receive path of a media thread: one datagram at a time, in
 * the thread's buffer, no allocation, no lock.
 *
 *   source check   only the address and port the SDP names (R10: no
 *                  latching onto strangers). The one exception is NAT: the
 *                  port — never the IP — may move once, to the port of a
 *                  packet that authenticated (SRTP) or, for plain RTP,
 *                  when the dial plan allows it (rtp_symmetric).
 *   RFC 5761 §4    RTCP on the RTP port when rtcp-mux was agreed
 *   RFC 3711       SRTP/SRTCP unprotect; failures counted, reported ≤ 1/s
 *   RFC 3550 A.1   sequence number bookkeeping (loss), A.8 jitter
 *   RFC 3551       G.711 payload -> linear PCM -> recorder, in-band DTMF
 *   RFC 4733       telephone-event -> DTMF
 *   RFC 3389       comfort noise: a sign of life, silence in the recording
 */
#include <errno.h>
#include <string.h>

#include "media/media_int.h"

static bool same_ip(const struct sockaddr *a, const struct sockaddr_storage *b)
{
	if (a->sa_family != b->ss_family)
		return false;
	if (a->sa_family == AF_INET)
		return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
		       ((const struct sockaddr_in *)b)->sin_addr.s_addr;
	return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
	              &((const struct sockaddr_in6 *)b)->sin6_addr, 16) == 0;
}

static uint16_t port_of(const struct sockaddr *a)
{
	return a->sa_family == AF_INET ? ((const struct sockaddr_in *)a)->sin_port
	                               : ((const struct sockaddr_in6 *)a)->sin6_port;
}

static void set_port(struct sockaddr_storage *a, uint16_t nport)
{
	if (a->ss_family == AF_INET)
		((struct sockaddr_in *)a)->sin_port = nport;
	else
		((struct sockaddr_in6 *)a)->sin6_port = nport;
}

static void stranger(struct om_media_session *s, const struct sockaddr *from)
{
	ctr_add(&s->c, C_STRANGERS, 1);
	s->strangers_new++;
	size_t l =
	    from->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
	memcpy(&s->stranger, from, l);
}

static void srtp_failed(struct om_media_session *s, int err)
{
	switch (err) {
	case EALREADY:
	case ESTALE:
		ctr_add(&s->c, C_SRTP_REPLAY, 1);
		s->srtp_replay_new++;
		break;
	case ENOMEM:
		break; /* only this packet is lost */
	default:       /* EBADMSG, EKEYREJECTED, EKEYEXPIRED, EPROTO, ENOSPC */
		ctr_add(&s->c, C_SRTP_AUTH, 1);
		s->srtp_auth_new++;
		break;
	}
}

/* Where a packet from `from` may come from: 0 accepted, 1 accepted if it
 * authenticates (a port move), -1 a stranger. */
static int source_ok(struct om_media_session *s, const struct sockaddr *from,
                     const struct sockaddr_storage *want, bool moved)
{
	const struct sess_cfg *c = &s->cfg;
	if (!c->remote_known || !same_ip(from, want))
		return -1;
	if (port_of(from) == port_of((const struct sockaddr *)want))
		return 0;
	if (moved || (!c->srtp && !c->rtp_symmetric))
		return -1;
	return 1;
}

/* RFC 3550 A.1 (simplified): the extended highest sequence number, loss,
 * and a 128-packet window that recognises duplicates of plain RTP. Returns
 * false for a duplicate. */
static bool seq_update(struct om_media_session *s, uint32_t ssrc, uint16_t seq)
{
	if (!s->rx_seen || ssrc != s->rx_ssrc) {
		if (s->rx_seen) {
			int64_t exp = (int64_t)s->rx_cycles + s->rx_max_seq - s->rx_base_seq + 1;
			int64_t lost = exp - (int64_t)s->rx_received;
			s->lost_before += lost > 0 ? (uint64_t)lost : 0;
		}
		s->rx_seen = true;
		s->rx_ssrc = ssrc;
		s->rx_base_seq = seq;
		s->rx_max_seq = seq;
		s->rx_cycles = 0;
		s->rx_received = 1;
		s->rx_expected_prior = s->rx_received_prior = 0;
		s->rx_top = seq;
		s->rx_win[0] = 1;
		s->rx_win[1] = 0;
		s->rx_jitter = 0;
		s->rx_transit = 0;
		return true;
	}
	uint16_t udelta = (uint16_t)(seq - s->rx_max_seq);
	int64_t ext;
	if (udelta < 3000) {
		if (seq < s->rx_max_seq)
			s->rx_cycles += 65536;
		s->rx_max_seq = seq;
		ext = (int64_t)s->rx_cycles + seq;
	} else if (udelta <= 65536 - 100) {
		/* A big jump: the sender restarted its numbering. */
		s->rx_base_seq = seq;
		s->rx_max_seq = seq;
		s->rx_cycles = 0;
		s->rx_received = 0;
		s->rx_expected_prior = s->rx_received_prior = 0;
		ext = seq;
		s->rx_top = ext;
		s->rx_win[0] = s->rx_win[1] = 0;
	} else {
		/* Late or duplicate: below the highest. */
		ext = (int64_t)s->rx_cycles + seq;
		if (seq > s->rx_max_seq)
			ext -= 65536;
	}
	if (ext > s->rx_top) {
		int64_t d = ext - s->rx_top;
		if (d >= 128) {
			s->rx_win[0] = s->rx_win[1] = 0;
		} else if (d >= 64) {
			s->rx_win[1] = s->rx_win[0] << (d - 64);
			s->rx_win[0] = 0;
		} else {
			s->rx_win[1] = (s->rx_win[1] << d) | (s->rx_win[0] >> (64 - d));
			s->rx_win[0] <<= d;
		}
		s->rx_win[0] |= 1;
		s->rx_top = ext;
	} else {
		int64_t d = s->rx_top - ext;
		if (d < 128) {
			uint64_t bit = (uint64_t)1 << (d & 63);
			if (s->rx_win[d >> 6] & bit)
				return false;
			s->rx_win[d >> 6] |= bit;
		}
	}
	s->rx_received++;
	return true;
}

void om_media_rx_lost(struct om_media_session *s)
{
	uint64_t lost = s->lost_before;
	if (s->rx_seen) {
		int64_t exp = (int64_t)s->rx_cycles + s->rx_max_seq - s->rx_base_seq + 1;
		int64_t l = exp - (int64_t)s->rx_received;
		lost += l > 0 ? (uint64_t)l : 0;
	}
	ctr_set(&s->c, C_LOST, lost);
}

static void jitter_update(struct om_media_session *s, uint32_t ts, int64_t now)
{
	int64_t transit = now * MS_RATE - (int64_t)ts;
	if (s->rx_transit) {
		int64_t d = transit - s->rx_transit;
		if (d < 0)
			d = -d;
		if (d < 8000 * 10) /* ignore timestamp jumps */
			s->rx_jitter += (uint32_t)(d - ((s->rx_jitter + 8) >> 4));
	}
	s->rx_transit = transit;
}

void om_media_rx_rtcp(struct om_media_session *s, uint8_t *p, size_t n, const struct sockaddr *from)
{
	struct sess_cfg *c = &s->cfg;
	const struct sockaddr_storage *want = c->rtcp_mux ? &c->remote : &c->remote_rtcp;
	int src = source_ok(s, from, want, c->rtcp_mux ? s->moved_rtp : s->moved_rtcp);
	if (src < 0) {
		stranger(s, from);
		return;
	}
	if (c->srtp) {
		size_t len = n;
		int err = s->srx ? om_srtp_unprotect_rtcp(s->srx, p, &len) : EINVAL;
		if (err) {
			srtp_failed(s, err);
			return;
		}
		n = len;
	}
	struct om_rtcp_info info;
	if (om_rtcp_parse(p, n, &info) != 0) {
		ctr_add(&s->c, C_MALFORMED, 1);
		return;
	}
	if (src == 1) {
		/* The port moved (NAT), once. */
		if (c->rtcp_mux) {
			set_port(&c->remote, port_of(from));
			set_port(&c->remote_rtcp, port_of(from));
			s->moved_rtp = true;
		} else {
			set_port(&c->remote_rtcp, port_of(from));
			s->moved_rtcp = true;
		}
	}
	int64_t now = om_media_now(s->t);
	s->last_rx_ms = now;
	ctr_add(&s->c, C_RTCP_IN, 1);
	if (info.has_sr) {
		s->rx_lsr = info.sr_ntp_mid;
		s->rx_lsr_at = now;
	}
}

void om_media_rx_rtp(struct om_media_session *s, uint8_t *p, size_t n, const struct sockaddr *from)
{
	struct sess_cfg *c = &s->cfg;
	if (c->rtcp_mux && om_rtp_is_rtcp(p, n)) {
		om_media_rx_rtcp(s, p, n, from);
		return;
	}
	int src = source_ok(s, from, &c->remote, s->moved_rtp);
	if (src < 0) {
		stranger(s, from);
		return;
	}
	if (c->srtp) {
		size_t len = n;
		int err = s->srx ? om_srtp_unprotect(s->srx, p, &len) : EINVAL;
		if (err) {
			if (err == EPROTO)
				ctr_add(&s->c, C_MALFORMED, 1);
			else
				srtp_failed(s, err);
			return;
		}
		n = len;
	}
	struct om_rtp_hdr h;
	if (om_rtp_parse(p, n, &h) != 0) {
		ctr_add(&s->c, C_MALFORMED, 1);
		return;
	}
	bool audio = h.pt == c->pt, te = c->te_pt >= 0 && h.pt == c->te_pt,
	     cn = h.pt == 13 || (c->cn_pt >= 0 && h.pt == c->cn_pt);
	if (!audio && !te && !cn) {
		ctr_add(&s->c, C_MALFORMED, 1);
		return;
	}
	if (src == 1) {
		/* The NAT exception, once: the packet authenticated (SRTP) or the
		 * dial plan allows it (plain RTP). RTCP follows unless it has its
		 * own a=rtcp port. */
		uint16_t np = port_of(from);
		if (c->rtcp_mux)
			set_port(&c->remote_rtcp, np);
		set_port(&c->remote, np);
		s->moved_rtp = true;
	}
	if (!seq_update(s, h.ssrc, h.seq)) {
		ctr_add(&s->c, C_DUP, 1);
		return;
	}
	int64_t now = om_media_now(s->t);
	s->last_rx_ms = now;
	s->timed_out = false;
	ctr_add(&s->c, C_RTP_IN, 1);
	const uint8_t *pl = p + h.hdr_len;
	if (audio) {
		jitter_update(s, h.ts, now);
		size_t ns = h.payload_len;
		int16_t *pcm = s->t->pcm;
		om_media_g711_decode(c->codec, pl, ns, pcm);
		if (s->dtmf.inband)
			om_media_dtmf_audio(s, pcm, ns, now);
		if (s->rec)
			om_media_rec_audio(s, h.ssrc, h.ts, pcm, ns, now);
	} else if (te) {
		struct om_rtp_event ev;
		if (om_rtp_event_parse(pl, h.payload_len, &ev) != 0) {
			ctr_add(&s->c, C_MALFORMED, 1);
			return;
		}
		om_media_dtmf_event(s, h.ssrc, h.ts, &ev, now);
	}
	/* CN: life only; its silence is the gap the next packet leaves. */
}
