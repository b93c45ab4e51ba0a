/* tx.c — the sending side of a session: the prompt player and RTCP.
 *
 *   RFC 3550 §5.1  random initial SSRC, sequence number and timestamp; the
 *                  timestamp follows the sampling clock, also across the
 *                  pauses between prompts; marker bit on the first packet
 *                  of a talk spurt (RFC 3551 §4.1)
 *   RFC 3550 §6.4  SR while we send, RR otherwise, one report block for
 *                  the peer's SSRC, SDES CNAME, BYE at the end
 *   RFC 3711       SRTP/SRTCP protect on SRTP calls
 *
 * A playlist is played at ptime pace by the session's timer: every frame
 * is due at start + k·ptime; a late timer sends the frames that are due
 * (at most 5 at once — the rest are skipped, so playback keeps wall-clock
 * time). Silence and tones are generated; prompts and greetings are read
 * from shared, immutable PCM. */
#include <math.h>
#include <string.h>
#include <time.h>

#include "core/alloc.h"
#include "media/media_int.h"

#define TONE_AMP 14654.0 /* a sine at -10 dBov */

static bool can_send(const struct om_media_session *s)
{
	const struct sess_cfg *c = &s->cfg;
	return c->remote_known && (c->dir == OM_MEDIA_SENDRECV || c->dir == OM_MEDIA_SENDONLY);
}

static void play_done(struct om_media_session *s, bool stopped)
{
	struct playlist *pl = s->pl;
	s->pl = NULL;
	if (!pl)
		return;
	struct evnode *n = pl->done;
	pl->done = NULL;
	n->kind = EVK_SESSION;
	n->ev.type = OM_MEDIA_EV_PLAY_DONE;
	n->ev.session = s;
	n->ev.user = s->user;
	n->ev.u.play.token = pl->token;
	n->ev.u.play.stopped = stopped;
	om_media_emit(s->e, n);
	om_media_playlist_free(pl);
}

/* Fills pcm[0..n) from the playlist; returns false when it ended (the rest
 * is silence). */
static bool fill(struct om_media_session *s, int16_t *pcm, size_t n)
{
	struct playlist *pl = s->pl;
	size_t o = 0;
	while (o < n && s->pl_item < pl->n) {
		struct play_item *it = &pl->items[s->pl_item];
		size_t take = it->samples - s->pl_off;
		if (take > n - o)
			take = n - o;
		if (it->audio) {
			memcpy(pcm + o, om_media_audio_pcm(it->audio) + s->pl_off, take * 2);
		} else if (it->freq) {
			double w = 2 * M_PI * it->freq / 8000.0;
			for (size_t i = 0; i < take; i++)
				pcm[o + i] = (int16_t)lrint(TONE_AMP * sin(w * (s->pl_off + i)));
		} else {
			memset(pcm + o, 0, take * 2);
		}
		o += take;
		s->pl_off += (uint32_t)take;
		if (s->pl_off >= it->samples) {
			s->pl_item++;
			s->pl_off = 0;
		}
	}
	if (o < n)
		memset(pcm + o, 0, (n - o) * 2);
	return s->pl_item < pl->n;
}

static void send_frame(struct om_media_session *s, const int16_t *pcm, size_t n)
{
	uint8_t pkt[12 + MS_MAX_FRAME + OM_SRTP_MAX_TRAILER];
	size_t len =
	    om_rtp_write_hdr(pkt, s->cfg.pt, !s->tx_talking, s->tx_seq, s->tx_ts, s->tx_ssrc);
	om_media_g711_encode(s->cfg.codec, pcm, n, pkt + len);
	len += n;
	if (s->cfg.srtp) {
		if (!s->stx || om_srtp_protect(s->stx, pkt, &len, sizeof(pkt)) != 0) {
			ctr_add(&s->c, C_SEND_ERR, 1);
			return;
		}
	}
	if (om_media_sendto(s, false, pkt, len) == 0) {
		s->tx_talking = true;
		s->tx_packets++;
		s->tx_octets += (uint32_t)n;
	}
}

static void on_tx(uv_timer_t *h)
{
	struct om_media_session *s = h->data;
	if (!s->pl || s->closing)
		return;
	int64_t now = om_media_now(s->t);
	unsigned ptime = s->cfg.ptime_ms;
	size_t frame = (size_t)ptime * MS_RATE;
	int64_t due = (now - (int64_t)s->tx_start_ms) / ptime + 1 - (int64_t)s->tx_frames;
	int16_t pcm[MS_MAX_FRAME];
	bool send = can_send(s);
	for (int64_t k = 0; k < due && s->pl; k++) {
		bool more = fill(s, pcm, frame);
		/* Frames more than 5 behind are skipped, not sent in a burst. */
		if (send && due - k <= 5)
			send_frame(s, pcm, frame);
		s->tx_seq++;
		s->tx_ts += (uint32_t)frame;
		s->tx_frames++;
		s->tx_last_ms = now;
		if (!more) {
			uv_timer_stop(&s->txt);
			s->tx_timer_on = false;
			s->tx_talking = false;
			play_done(s, false);
		}
	}
}

void om_media_tx_play(struct om_media_session *s, struct playlist *pl)
{
	int64_t now = om_media_now(s->t);
	if (s->pl)
		play_done(s, true);
	s->pl = pl;
	s->pl_item = 0;
	s->pl_off = 0;
	if (!s->tx_timer_on) {
		/* The RTP clock ran on while nothing was sent (RFC 3550 §5.1). */
		if (s->tx_last_ms)
			s->tx_ts += (uint32_t)((now - s->tx_last_ms) * MS_RATE);
		s->tx_start_ms = (uint64_t)now;
		s->tx_frames = 0;
		s->tx_talking = false;
		s->tx_timer_on = true;
		if (s->txt_init)
			uv_timer_start(&s->txt, on_tx, 0, s->cfg.ptime_ms);
	}
}

void om_media_tx_stop(struct om_media_session *s, bool stopped)
{
	if (s->tx_timer_on && s->txt_init)
		uv_timer_stop(&s->txt);
	s->tx_timer_on = false;
	s->tx_talking = false;
	play_done(s, stopped);
}

/* NTP time (RFC 3550 §4): seconds since 1900 in the high 32 bits. */
static uint64_t ntp_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	uint64_t sec = (uint64_t)ts.tv_sec + 2208988800ULL;
	uint64_t frac = ((uint64_t)ts.tv_nsec << 32) / 1000000000ULL;
	return sec << 32 | frac;
}

void om_media_tx_rtcp(struct om_media_session *s, int64_t now, bool bye)
{
	if (!s->cfg.remote_known || s->cfg.dir == OM_MEDIA_INACTIVE)
		return;
	uint8_t pkt[256];
	struct om_rtcp_block blk, *bp = NULL;
	if (s->rx_seen) {
		int64_t exp = (int64_t)s->rx_cycles + s->rx_max_seq - s->rx_base_seq + 1;
		int64_t lost = exp - (int64_t)s->rx_received;
		int64_t exp_int = exp - s->rx_expected_prior;
		int64_t rcv_int = (int64_t)s->rx_received - s->rx_received_prior;
		int64_t lost_int = exp_int - rcv_int;
		s->rx_expected_prior = (uint32_t)exp;
		s->rx_received_prior = s->rx_received;
		memset(&blk, 0, sizeof(blk));
		blk.ssrc = s->rx_ssrc;
		blk.fraction_lost =
		    exp_int > 0 && lost_int > 0 ? (uint8_t)((lost_int << 8) / exp_int) : 0;
		blk.cum_lost = lost > INT32_MAX ? INT32_MAX : (int32_t)lost;
		blk.ext_max_seq = s->rx_cycles + s->rx_max_seq;
		blk.jitter = s->rx_jitter >> 4;
		if (s->rx_lsr_at) {
			blk.lsr = s->rx_lsr;
			blk.dlsr = (uint32_t)((now - s->rx_lsr_at) * 65536 / 1000);
		}
		bp = &blk;
	}
	uint32_t ts = s->tx_ts;
	if (s->tx_last_ms)
		ts += (uint32_t)((now - s->tx_last_ms) * MS_RATE);
	size_t len =
	    om_rtcp_write(pkt, sizeof(pkt) - OM_SRTCP_MAX_TRAILER, s->tx_ssrc, s->tx_packets > 0,
	                  ntp_now(), ts, s->tx_packets, s->tx_octets, bp, s->cname, bye);
	if (len == 0)
		return;
	if (s->cfg.srtp && (!s->stx || om_srtp_protect_rtcp(s->stx, pkt, &len, sizeof(pkt)) != 0)) {
		ctr_add(&s->c, C_SEND_ERR, 1);
		return;
	}
	(void)om_media_sendto(s, true, pkt, len);
}
