/* mthread.c — a media thread: its libuv loop, the commands from the
 * control thread, the sockets of its sessions, and a 50 ms housekeeping
 * tick (inactivity, RTCP reports, recorder flushes, DTMF timeouts, the
 * rate-limited failure reports).
 *
 *   RFC 3550 §6.2   RTCP every 5 s on average, randomised to ±50 %
 *   RFC 3550 §6.3.7 BYE when the session ends
 *
 * Received datagrams go into one per-thread buffer (libuv's alloc callback
 * hands it out; each datagram is handled before the next is read), so the
 * packet path allocates nothing. Sends are uv_udp_try_send: never queued,
 * never blocking; a full socket buffer drops the packet and counts it. */
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/random.h>

#include "core/alloc.h"
#include "core/log.h"
#include "media/media_int.h"

int64_t om_media_now(struct mthread *t)
{
	return (int64_t)uv_now(&t->loop);
}

static uint32_t rnd32(void)
{
	uint32_t v = 0;
	if (getrandom(&v, sizeof(v), GRND_NONBLOCK) != sizeof(v))
		v = (uint32_t)(uintptr_t)&v ^ (uint32_t)uv_hrtime();
	return v;
}

static int64_t rtcp_interval(void)
{
	return MS_RTCP_MS / 2 + (int64_t)(rnd32() % MS_RTCP_MS);
}

/* ---------------------------------------------------------------- sockets */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	(void)suggested;
	struct om_media_session *s = h->data;
	buf->base = (char *)s->t->buf;
	buf->len = sizeof(s->t->buf);
}

static void on_rtp(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf, const struct sockaddr *from,
                   unsigned flags)
{
	struct om_media_session *s = h->data;
	if (nread <= 0 || !from || s->closing)
		return;
	ctr_add(&s->c, C_BYTES_IN, (uint64_t)nread);
	if (flags & UV_UDP_PARTIAL) {
		ctr_add(&s->c, C_MALFORMED, 1);
		return;
	}
	om_media_rx_rtp(s, (uint8_t *)buf->base, (size_t)nread, from);
}

static void on_rtcp(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf, const struct sockaddr *from,
                    unsigned flags)
{
	struct om_media_session *s = h->data;
	if (nread <= 0 || !from || s->closing)
		return;
	ctr_add(&s->c, C_BYTES_IN, (uint64_t)nread);
	if (flags & UV_UDP_PARTIAL) {
		ctr_add(&s->c, C_MALFORMED, 1);
		return;
	}
	om_media_rx_rtcp(s, (uint8_t *)buf->base, (size_t)nread, from);
}

int om_media_sendto(struct om_media_session *s, bool rtcp, const uint8_t *p, size_t len)
{
	const struct sess_cfg *c = &s->cfg;
	if (!c->remote_known || s->closing)
		return ENOTCONN;
	const struct sockaddr_storage *to = rtcp && !c->rtcp_mux ? &c->remote_rtcp : &c->remote;
	uv_udp_t *h = rtcp && s->has_rtcp ? &s->rtcp : &s->rtp;
	uv_buf_t b = uv_buf_init((char *)p, (unsigned)len);
	int r = uv_udp_try_send(h, &b, 1, (const struct sockaddr *)to);
	if (r < 0) {
		ctr_add(&s->c, C_SEND_ERR, 1);
		return -r;
	}
	ctr_add(&s->c, rtcp ? C_RTCP_OUT : C_RTP_OUT, 1);
	return 0;
}

/* ---------------------------------------------------------------- session */

static void sess_add(struct mthread *t, struct om_media_session *s, struct sess_cfg *cfg)
{
	int64_t now = om_media_now(t);
	s->cfg = *cfg;
	s->srx = cfg->srx;
	s->stx = cfg->stx;
	s->cfg.srx = s->cfg.stx = NULL;
	s->mnext = t->sessions;
	if (t->sessions)
		t->sessions->mprev = s;
	t->sessions = s;
	s->tx_ssrc = rnd32();
	s->tx_seq = (uint16_t)rnd32();
	s->tx_ts = rnd32();
	snprintf(s->cname, sizeof(s->cname), "openum-%08x", rnd32());
	s->last_rx_ms = now;
	/* The first report comes sooner (RFC 3550 §6.2: half the interval). */
	s->next_rtcp_ms = now + MS_RTCP_MS / 2 + (int64_t)(rnd32() % (MS_RTCP_MS / 2));
	s->closed.kind = EVK_SESSION;
	s->closed.ev.type = OM_MEDIA_EV_CLOSED;
	s->closed.ev.session = s;
	s->closed.ev.user = s->user;
	(void)om_media_dtmf_init(s);
	s->rtp.data = s; /* handle_closed finds the session through it */
	int err = uv_udp_init(&t->loop, &s->rtp);
	if (!err) {
		s->handles_open++;
		s->rtp_init = true;
		s->rtp.data = s;
		err = uv_udp_open(&s->rtp, s->fd_rtp);
		if (!err)
			s->fd_rtp = -1;
	}
	if (!err && s->fd_rtcp >= 0) {
		if (!(err = uv_udp_init(&t->loop, &s->rtcp))) {
			s->handles_open++;
			s->has_rtcp = true;
			s->rtcp.data = s;
			if (!(err = uv_udp_open(&s->rtcp, s->fd_rtcp)))
				s->fd_rtcp = -1;
		}
	}
	if (!err && !(err = uv_timer_init(&t->loop, &s->txt))) {
		s->handles_open++;
		s->txt_init = true;
		s->txt.data = s;
	}
	if (!err)
		err = uv_udp_recv_start(&s->rtp, on_alloc, on_rtp);
	if (!err && s->has_rtcp)
		err = uv_udp_recv_start(&s->rtcp, on_alloc, on_rtcp);
	if (err) {
		om_log(OM_LOG_ERROR, "media session could not start", "call_id", s->call_id,
		       "error", uv_strerror(err), NULL);
		om_media_sess_close(s);
	}
}

static void sess_modify(struct om_media_session *s, struct sess_cfg *cfg)
{
	bool moved = memcmp(&cfg->remote, &s->cfg.remote, sizeof(cfg->remote)) != 0;
	if (!cfg->srtp) {
		om_srtp_free(s->srx);
		om_srtp_free(s->stx);
		s->srx = s->stx = NULL;
	} else {
		if (cfg->srx) {
			om_srtp_free(s->srx);
			s->srx = cfg->srx;
		}
		if (cfg->stx) {
			om_srtp_free(s->stx);
			s->stx = cfg->stx;
		}
	}
	bool te_before = s->cfg.te_pt >= 0;
	s->cfg = *cfg;
	s->cfg.srx = s->cfg.stx = NULL;
	if (moved) {
		/* A new address from the SDP: the NAT exception starts over. */
		s->moved_rtp = s->moved_rtcp = false;
	}
	if (te_before != (cfg->te_pt >= 0)) {
		om_media_dtmf_free(s);
		(void)om_media_dtmf_init(s);
	}
}

static void handle_closed(uv_handle_t *h)
{
	struct om_media_session *s = h->data;
	if (--s->handles_open > 0)
		return;
	/* The last word: CLOSED goes through the writer, after the
	 * recording's RECORD_STOPPED. */
	om_media_ctrs_read(&s->c, &s->closed.ev.u.stats);
	s->closed_fwd.type = W_FORWARD;
	s->closed_fwd.fwd = &s->closed;
	om_media_spool_send(s->e->sp, &s->closed_fwd);
}

void om_media_sess_close(struct om_media_session *s)
{
	if (s->closing)
		return;
	struct mthread *t = s->t;
	int64_t now = om_media_now(t);
	if (s->rec)
		om_media_rec_stop(s);
	om_media_tx_stop(s, true);
	if (s->cfg.remote_known && s->handles_open > 0)
		om_media_tx_rtcp(s, now, true);
	s->closing = true;
	if (s->mprev)
		s->mprev->mnext = s->mnext;
	else if (t->sessions == s)
		t->sessions = s->mnext;
	if (s->mnext)
		s->mnext->mprev = s->mprev;
	s->mprev = s->mnext = NULL;
	om_media_rx_lost(s);
	om_media_dtmf_free(s);
	om_srtp_free(s->srx); /* cleanses the session keys */
	om_srtp_free(s->stx);
	s->srx = s->stx = NULL;
	if (s->fd_rtp >= 0)
		close(s->fd_rtp);
	if (s->fd_rtcp >= 0)
		close(s->fd_rtcp);
	s->fd_rtp = s->fd_rtcp = -1;
	if (s->handles_open == 0) {
		s->handles_open = 1;
		handle_closed((uv_handle_t *)&s->rtp);
		return;
	}
	if (s->rtp_init)
		uv_close((uv_handle_t *)&s->rtp, handle_closed);
	if (s->has_rtcp)
		uv_close((uv_handle_t *)&s->rtcp, handle_closed);
	if (s->txt_init)
		uv_close((uv_handle_t *)&s->txt, handle_closed);
}

/* ---------------------------------------------------------------- tick */

static void emit_srtp(struct om_media_session *s, int64_t now)
{
	struct evnode *n = om_calloc(1, sizeof(*n));
	if (!n)
		return;
	n->kind = EVK_SESSION;
	n->ev.type = OM_MEDIA_EV_SRTP_FAIL;
	n->ev.session = s;
	n->ev.user = s->user;
	n->ev.u.srtp.auth = s->srtp_auth_new;
	n->ev.u.srtp.replay = s->srtp_replay_new;
	s->srtp_auth_new = s->srtp_replay_new = 0;
	s->srtp_ev_at = now;
	om_media_emit(s->e, n);
}

static void emit_strangers(struct om_media_session *s, int64_t now)
{
	struct evnode *n = om_calloc(1, sizeof(*n));
	if (!n)
		return;
	n->kind = EVK_SESSION;
	n->ev.type = OM_MEDIA_EV_STRANGERS;
	n->ev.session = s;
	n->ev.user = s->user;
	n->ev.u.strangers.count = s->strangers_new;
	char host[48] = "?";
	uint16_t port = 0;
	if (s->stranger.ss_family == AF_INET) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)&s->stranger;
		uv_ip4_name(a, host, sizeof(host));
		port = ntohs(a->sin_port);
		snprintf(n->ev.u.strangers.from, sizeof(n->ev.u.strangers.from), "%s:%u", host,
		         port);
	} else if (s->stranger.ss_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&s->stranger;
		uv_ip6_name(a, host, sizeof(host));
		port = ntohs(a->sin6_port);
		snprintf(n->ev.u.strangers.from, sizeof(n->ev.u.strangers.from), "[%s]:%u", host,
		         port);
	}
	s->strangers_new = 0;
	s->strangers_ev_at = now;
	om_media_emit(s->e, n);
}

static void emit_simple(struct om_media_session *s, enum om_media_event_type type)
{
	struct evnode *n = om_calloc(1, sizeof(*n));
	if (!n)
		return;
	n->kind = EVK_SESSION;
	n->ev.type = type;
	n->ev.session = s;
	n->ev.user = s->user;
	om_media_emit(s->e, n);
}

static void on_tick(uv_timer_t *h)
{
	struct mthread *t = h->data;
	int64_t now = om_media_now(t);
	unsigned timeout = t->e->rtp_timeout_ms;
	for (struct om_media_session *s = t->sessions, *next; s; s = next) {
		next = s->mnext;
		const struct sess_cfg *c = &s->cfg;
		/* On hold the peer need not send (RFC 3264 §8.4): no timeout. */
		bool expect =
		    c->remote_known && (c->dir == OM_MEDIA_SENDRECV || c->dir == OM_MEDIA_RECVONLY);
		if (!expect)
			s->last_rx_ms = now;
		else if (!s->timed_out && now - s->last_rx_ms >= timeout) {
			s->timed_out = true;
			emit_simple(s, OM_MEDIA_EV_TIMEOUT);
		}
		if ((s->srtp_auth_new || s->srtp_replay_new) &&
		    now - s->srtp_ev_at >= MS_SRTP_EV_MS)
			emit_srtp(s, now);
		if (s->strangers_new && now - s->strangers_ev_at >= MS_SRTP_EV_MS)
			emit_strangers(s, now);
		if (c->remote_known && now >= s->next_rtcp_ms) {
			om_media_tx_rtcp(s, now, false);
			s->next_rtcp_ms = now + rtcp_interval();
		}
		om_media_dtmf_tick(s, now);
		om_media_rx_lost(s);
		if (s->rec)
			om_media_rec_tick(s, now);
	}
}

/* -------------------------------------------------------------- commands */

static void thread_closed(uv_handle_t *h)
{
	struct mthread *t = h->data;
	t->handles_open--;
}

static void quit(struct mthread *t)
{
	t->quitting = true;
	while (t->sessions)
		om_media_sess_close(t->sessions);
	uv_close((uv_handle_t *)&t->async, thread_closed);
	uv_close((uv_handle_t *)&t->tick, thread_closed);
}

static void on_cmds(uv_async_t *h)
{
	struct mthread *t = h->data;
	int64_t now = om_media_now(t);
	struct om_mq_node *n = om_mq_take(&t->cmds);
	while (n) {
		struct cmd *c = (struct cmd *)n;
		n = n->next;
		struct om_media_session *s = c->s;
		bool embedded = c->type == CMD_FREE || c->type == CMD_QUIT;
		if (s && s->closing && c->type != CMD_FREE) {
			/* The session ended on its own (start failure, engine
			 * closing): what was meant for it is dropped. */
			if (c->type == CMD_PLAY)
				om_media_playlist_free(c->u.pl);
			if (c->type == CMD_REC_START)
				om_media_rec_free_unstarted(c->u.rec);
			if (c->type == CMD_MODIFY) {
				om_srtp_free(c->u.cfg.srx);
				om_srtp_free(c->u.cfg.stx);
			}
			om_free(c);
			continue;
		}
		switch (c->type) {
		case CMD_ADD:
			sess_add(t, s, &c->u.cfg);
			break;
		case CMD_MODIFY:
			sess_modify(s, &c->u.cfg);
			break;
		case CMD_PLAY:
			om_media_tx_play(s, c->u.pl);
			break;
		case CMD_PLAY_STOP:
			om_media_tx_stop(s, true);
			break;
		case CMD_REC_START:
			om_media_rec_start(s, c->u.rec);
			break;
		case CMD_REC_STOP:
			if (s->rec)
				om_media_rec_stop(s);
			break;
		case CMD_DTMF:
			om_media_dtmf_info(s, c->u.dtmf.digit, c->u.dtmf.ms, now);
			break;
		case CMD_FREE:
			om_media_sess_close(s);
			break;
		case CMD_QUIT:
			quit(t);
			break;
		}
		if (!embedded)
			om_free(c);
	}
}

/* ---------------------------------------------------------------- thread */

static void thread_main(void *arg)
{
	struct mthread *t = arg;
	char name[16];
	snprintf(name, sizeof(name), "om-media-%u", t->idx);
	pthread_setname_np(pthread_self(), name);
	uv_run(&t->loop, UV_RUN_DEFAULT);
	(void)uv_loop_close(&t->loop);
	/* The last thing this thread does: the control thread joins it. */
	t->done.kind = EVK_THREAD_DONE;
	t->done.thread = t;
	om_media_emit(t->e, &t->done);
}

int om_media_thread_start(struct mthread *t)
{
	int err = uv_loop_init(&t->loop);
	if (err)
		return -err;
	if ((err = uv_async_init(&t->loop, &t->async, on_cmds)) != 0) {
		uv_loop_close(&t->loop);
		return -err;
	}
	t->async.data = t;
	uv_timer_init(&t->loop, &t->tick);
	t->tick.data = t;
	t->handles_open = 2;
	uv_timer_start(&t->tick, on_tick, MS_TICK_MS, MS_TICK_MS);
	if ((err = uv_thread_create(&t->tid, thread_main, t)) != 0) {
		uv_close((uv_handle_t *)&t->async, NULL);
		uv_close((uv_handle_t *)&t->tick, NULL);
		uv_run(&t->loop, UV_RUN_DEFAULT);
		uv_loop_close(&t->loop);
		return -err;
	}
	t->started = true;
	return 0;
}
