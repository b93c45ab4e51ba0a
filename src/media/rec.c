/* rec.c — the recorder of a session (media thread): received audio placed
 * on the call's timeline by RTP timestamp (RFC 3550 §5.1) and handed to the
 * spool writer in large chunks.
 *
 * The timeline is in samples from the first packet recorded. Within one
 * segment (one SSRC, timestamps that follow the wall clock) a packet's
 * place is the previous packet's place plus the timestamp difference, so a
 * lost packet leaves a gap of zeros and a late one lands where it belongs.
 * A new segment starts at the end of what was written, never overlapping:
 * on an SSRC change, a timestamp jump ahead of the wall clock by more than
 * MS_JUMP_SLACK_MS (re-INVITE, gateway failover), or a jump back beyond the
 * reorder window. A gap the wall clock confirms (loss, DTX silence) is
 * silence on the timeline.
 *
 *   [ ... written (patches only) ... | flushed ... staged ... top )
 *
 * Audio at or after `flushed` is staged in the current chunk; the chunk
 * goes to the writer when it is full or spool_flush_ms old, so audio
 * reaches write(2) within that time of arriving. A packet that arrives
 * after its place was handed over (up to MS_REORDER_MS behind the newest)
 * goes as a small patch written at its offset (pwrite), so no reorder
 * delay is added before audio reaches the disk. */
#include <errno.h>
#include <string.h>

#include "core/alloc.h"
#include "media/media_int.h"

static void emit(struct om_media_session *s, enum om_media_event_type type)
{
	struct evnode *n = om_calloc(1, sizeof(*n));
	if (!n)
		return;
	n->kind = EVK_SESSION;
	n->ev.type = type;
	n->ev.session = s;
	n->ev.user = s->user;
	struct recorder *r = s->rec;
	n->ev.u.record.audio_ms = r->top / MS_RATE;
	n->ev.u.record.voiced_ms = r->voiced_samples / MS_RATE;
	n->ev.u.record.bytes = r->top * 2;
	om_media_emit(s->e, n);
}

void om_media_rec_start(struct om_media_session *s, struct recorder *r)
{
	int64_t now = om_media_now(s->t);
	s->rec = r;
	r->last_voice_ms = now;
	r->wait_play = r->o.after_play && s->pl;
	r->chunk->pos = 0;
	r->chunk->n = 0;
	r->chunk_t0 = 0;
}

void om_media_rec_free_unstarted(struct recorder *r)
{
	/* The writer opened the files: close them as an empty recording. */
	r->sr->media_error = 0;
	om_media_spool_send(r->sp, r->sr->close_msg);
	om_free(r->chunk);
	om_free(r);
}

/* Hands the staged chunk to the writer and starts the next one at top. */
static int handoff(struct recorder *r)
{
	struct wmsg *c = r->chunk;
	if (c->n == 0)
		return 0;
	if (om_media_spool_queued(r->sp) + (size_t)c->n * 2 > r->queue_max) {
		/* The disk does not keep up: bounded memory beats a server that
		 * grows until it is killed with every call's audio. */
		r->nomem = true;
		r->fail = ENOBUFS;
		return ENOBUFS;
	}
	struct wmsg *next = om_media_wmsg_new(W_DATA, MS_CHUNK_SAMPLES);
	if (!next) {
		r->nomem = true;
		r->fail = ENOMEM;
		return ENOMEM;
	}
	om_media_spool_send(r->sp, c);
	next->rec = r->sr;
	next->pos = r->top;
	r->chunk = next;
	r->flushed = r->top;
	r->chunk_t0 = 0;
	return 0;
}

/* Stages zeros in [top, end), handing over full chunks on the way. */
static int stage_to(struct recorder *r, uint64_t end, int64_t now)
{
	while (r->top < end) {
		struct wmsg *c = r->chunk;
		uint64_t room_end = c->pos + c->cap;
		uint64_t to = end < room_end ? end : room_end;
		memset(c->pcm + (r->top - c->pos), 0, (size_t)(to - r->top) * 2);
		if (c->n == 0)
			r->chunk_t0 = now;
		r->top = to;
		c->n = (uint32_t)(r->top - c->pos);
		if (r->top == room_end && r->top < end && handoff(r) != 0)
			return ENOMEM;
	}
	return 0;
}

static void patch(struct om_media_session *s, struct recorder *r, uint64_t pos, const int16_t *pcm,
                  size_t n)
{
	if (om_media_spool_queued(r->sp) + n * 2 > r->queue_max) {
		ctr_add(&s->c, C_LATE, 1);
		return;
	}
	struct wmsg *m = om_media_wmsg_new(W_DATA, (uint32_t)n);
	if (!m) {
		ctr_add(&s->c, C_LATE, 1);
		return;
	}
	m->rec = r->sr;
	m->pos = pos;
	m->n = (uint32_t)n;
	memcpy(m->pcm, pcm, n * 2);
	om_media_spool_send(r->sp, m);
}

static void limit_reached(struct om_media_session *s)
{
	struct recorder *r = s->rec;
	r->limit_hit = true;
	emit(s, OM_MEDIA_EV_RECORD_LIMIT);
	om_media_rec_stop(s);
}

/* After_play: the recording goes live once nothing plays (the beep's last
 * frame sent, or the playback stopped). */
static bool rec_live(struct om_media_session *s, struct recorder *r, int64_t now)
{
	if (!r->wait_play)
		return true;
	if (s->pl)
		return false;
	r->wait_play = false;
	r->last_voice_ms = now;
	return true;
}

void om_media_rec_audio(struct om_media_session *s, uint32_t ssrc, uint32_t ts, const int16_t *pcm,
                        size_t n, int64_t now)
{
	struct recorder *r = s->rec;
	if (r->limit_hit || r->nomem || n == 0 || !rec_live(s, r, now))
		return;
	if (om_media_energy(pcm, n) > r->silence_rms2 * (double)n) {
		r->voiced_samples += n;
		r->last_voice_ms = now;
		r->silence_reported = false;
	}
	uint64_t pos;
	bool newest = true;
	if (!r->seg || ssrc != r->ssrc) {
		if (r->seg)
			ctr_add(&s->c, C_SSRC_CHANGES, 1);
		r->seg = true;
		r->ssrc = ssrc;
		pos = r->top;
	} else {
		int64_t d = (int32_t)(ts - r->last_ts);
		int64_t wall = now - r->last_arrival;
		int64_t p = (int64_t)r->last_pos + d;
		if (d > (wall + MS_JUMP_SLACK_MS) * MS_RATE ||
		    d < -(int64_t)MS_REORDER_MS * MS_RATE || p < 0) {
			/* A jump: a new segment after what was written. */
			ctr_add(&s->c, C_SSRC_CHANGES, 1);
			pos = r->top;
		} else {
			pos = (uint64_t)p;
			newest = d >= 0;
			if (pos + n + (uint64_t)MS_REORDER_MS * MS_RATE <= r->top) {
				ctr_add(&s->c, C_LATE, 1);
				return;
			}
		}
	}
	if (newest) {
		r->last_ts = ts;
		r->last_pos = pos;
		r->last_arrival = now;
	}
	uint64_t end = pos + n;
	if (r->max_samples && end > r->max_samples) {
		if (pos >= r->max_samples) {
			limit_reached(s);
			return;
		}
		n = (size_t)(r->max_samples - pos);
		end = r->max_samples;
	}
	if (stage_to(r, end, now) != 0)
		return;
	if (pos < r->flushed) {
		size_t k = (size_t)((end < r->flushed ? end : r->flushed) - pos);
		patch(s, r, pos, pcm, k);
		pos += k;
		pcm += k;
		n -= k;
	}
	if (n) {
		struct wmsg *c = r->chunk;
		memcpy(c->pcm + (pos - c->pos), pcm, n * 2);
	}
	if (r->max_samples && r->top >= r->max_samples)
		limit_reached(s);
}

void om_media_rec_tick(struct om_media_session *s, int64_t now)
{
	struct recorder *r = s->rec;
	if (atomic_load_explicit(&r->sr->failed, memory_order_acquire) || r->nomem) {
		om_media_rec_stop(s);
		return;
	}
	if (r->chunk->n && now - r->chunk_t0 >= (int64_t)s->e->flush_ms)
		(void)handoff(r);
	if (!rec_live(s, r, now))
		return;
	if (r->o.silence_timeout_ms && !r->silence_reported &&
	    now - r->last_voice_ms >= (int64_t)r->o.silence_timeout_ms) {
		r->silence_reported = true;
		emit(s, OM_MEDIA_EV_RECORD_SILENCE);
	}
}

void om_media_rec_stop(struct om_media_session *s)
{
	struct recorder *r = s->rec;
	if (!r)
		return;
	if (!r->nomem)
		(void)handoff(r);
	struct spool_rec *sr = r->sr;
	sr->audio_ms = r->top / MS_RATE;
	sr->voiced_ms = r->voiced_samples / MS_RATE;
	sr->media_error = r->nomem ? (r->fail ? r->fail : ENOMEM) : 0;
	om_media_spool_send(r->sp, sr->close_msg);
	om_free(r->chunk);
	om_free(r);
	s->rec = NULL;
}
