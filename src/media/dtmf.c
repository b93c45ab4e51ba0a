/* dtmf.c — one digit stream per call, from three sources:
 *
 *   RFC 4733 §2.5  telephone-event: an event is identified by its RTP
 *                  timestamp (and SSRC); its packets repeat with growing
 *                  duration, and the end packet is sent three times. The
 *                  digit is reported once, at its first end packet (or when
 *                  updates stop for a second and the end was lost).
 *   SIP INFO       application/dtmf-relay or application/dtmf, handed in by
 *                  the control thread (om_media_session_dtmf_in).
 *   in-band        spandsp's DTMF receiver (ITU-T Q.23/Q.24 tones) on the
 *                  decoded audio, only when no telephone-event was
 *                  negotiated; reported when the tone ends.
 *
 * A gateway may send the same key press two ways (RFC 4733 and INFO): a
 * digit that came by one way is not reported again when the same digit
 * comes by another way within MS_DTMF_DEDUP_MS. */
#include <string.h>

#include "core/alloc.h"
#include "media/media_int.h"

static void emit(struct om_media_session *s, char digit, unsigned ms, enum om_media_dtmf_source src,
                 struct evnode *n)
{
	if (!n && !(n = om_calloc(1, sizeof(*n))))
		return;
	n->kind = EVK_SESSION;
	n->ev.type = OM_MEDIA_EV_DTMF;
	n->ev.session = s;
	n->ev.user = s->user;
	n->ev.u.dtmf.digit = digit;
	n->ev.u.dtmf.duration_ms = ms;
	n->ev.u.dtmf.source = src;
	om_media_emit(s->e, n);
}

static void report(struct om_media_session *s, char digit, unsigned ms,
                   enum om_media_dtmf_source src, int64_t now, struct evnode *ev)
{
	struct dtmf_state *d = &s->dtmf;
	/* Forget what is older than the window. */
	unsigned k = 0;
	for (unsigned i = 0; i < d->nrecent; i++)
		if (now - d->recent[i].at_ms < MS_DTMF_DEDUP_MS)
			d->recent[k++] = d->recent[i];
	d->nrecent = k;
	for (unsigned i = 0; i < d->nrecent; i++) {
		if (d->recent[i].digit == digit && d->recent[i].source != src &&
		    !d->recent[i].matched) {
			d->recent[i].matched = true; /* the same key press */
			om_free(ev);
			return;
		}
	}
	if (d->nrecent == sizeof(d->recent) / sizeof(d->recent[0])) {
		memmove(&d->recent[0], &d->recent[1], sizeof(d->recent[0]) * (d->nrecent - 1));
		d->nrecent--;
	}
	d->recent[d->nrecent].digit = digit;
	d->recent[d->nrecent].source = (uint8_t)src;
	d->recent[d->nrecent].at_ms = now;
	d->recent[d->nrecent].matched = false;
	d->nrecent++;
	emit(s, digit, ms, src, ev);
}

/* spandsp's real-time callback: a digit starts (code) or ends (0). */
static void inband_cb(void *arg, int code, int level, int delay)
{
	(void)level;
	(void)delay;
	struct om_media_session *s = arg;
	struct dtmf_state *d = &s->dtmf;
	if (code) {
		d->inband_digit = (char)code;
		d->inband_start = d->samples;
	} else if (d->inband_digit) {
		unsigned ms = (unsigned)((d->samples - d->inband_start) / MS_RATE);
		report(s, d->inband_digit, ms, OM_MEDIA_DTMF_INBAND, d->now, NULL);
		d->inband_digit = 0;
	}
}

int om_media_dtmf_init(struct om_media_session *s)
{
	struct dtmf_state *d = &s->dtmf;
	d->inband = s->cfg.te_pt < 0;
	if (d->inband) {
		if (!dtmf_rx_init(&d->rx, NULL, NULL)) {
			d->inband = false;
			return ENOMEM;
		}
		dtmf_rx_set_realtime_callback(&d->rx, inband_cb, s);
		d->samples = 0;
		d->inband_digit = 0;
	}
	return 0;
}

void om_media_dtmf_free(struct om_media_session *s)
{
	if (s->dtmf.inband)
		dtmf_rx_release(&s->dtmf.rx);
	s->dtmf.inband = false;
}

void om_media_dtmf_audio(struct om_media_session *s, const int16_t *pcm, size_t n, int64_t now)
{
	struct dtmf_state *d = &s->dtmf;
	d->now = now;
	/* spandsp processes in place-free blocks; it reads pcm only. */
	dtmf_rx(&d->rx, pcm, (int)n);
	d->samples += n;
}

static bool already_done(struct dtmf_state *d, uint32_t ssrc, uint32_t ts)
{
	for (unsigned i = 0; i < d->ndone; i++)
		if (d->done[i].ssrc == ssrc && d->done[i].ts == ts)
			return true;
	return false;
}

static void mark_done(struct dtmf_state *d, uint32_t ssrc, uint32_t ts)
{
	unsigned cap = sizeof(d->done) / sizeof(d->done[0]);
	if (d->ndone == cap) {
		memmove(&d->done[0], &d->done[1], sizeof(d->done[0]) * (cap - 1));
		d->ndone--;
	}
	d->done[d->ndone].ssrc = ssrc;
	d->done[d->ndone].ts = ts;
	d->ndone++;
}

static void finish(struct om_media_session *s, int64_t now)
{
	struct dtmf_state *d = &s->dtmf;
	char digit = om_rtp_event_digit(d->ev_code);
	if (digit)
		report(s, digit, (unsigned)(d->ev_duration / MS_RATE), OM_MEDIA_DTMF_RFC4733, now,
		       NULL);
	d->ev_reported = true;
	mark_done(d, d->ev_ssrc, d->ev_ts);
}

void om_media_dtmf_event(struct om_media_session *s, uint32_t ssrc, uint32_t ts,
                         const struct om_rtp_event *ev, int64_t now)
{
	struct dtmf_state *d = &s->dtmf;
	if (!d->ev_active || ts != d->ev_ts || ssrc != d->ev_ssrc) {
		if (already_done(d, ssrc, ts))
			return; /* a late end packet of a digit already reported */
		if (d->ev_active && !d->ev_reported)
			finish(s, now); /* its end packets were lost */
		d->ev_active = true;
		d->ev_reported = false;
		d->ev_ts = ts;
		d->ev_ssrc = ssrc;
		d->ev_code = ev->event;
		d->ev_duration = 0;
	}
	if (d->ev_reported)
		return; /* the second and third end packet */
	if (ev->duration > d->ev_duration)
		d->ev_duration = ev->duration;
	d->ev_last_ms = now;
	if (ev->end)
		finish(s, now);
}

void om_media_dtmf_info(struct om_media_session *s, char digit, unsigned ms, int64_t now,
                        struct evnode *ev)
{
	report(s, digit, ms, OM_MEDIA_DTMF_INFO, now, ev);
}

void om_media_dtmf_tick(struct om_media_session *s, int64_t now)
{
	struct dtmf_state *d = &s->dtmf;
	if (d->ev_active && !d->ev_reported && now - d->ev_last_ms >= 1000)
		finish(s, now);
}
