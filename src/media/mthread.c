/* mthread.c — a media thread: its libuv loop, the commands from the
 * control thread, the sockets of its sessions, and a 50 ms housekeeping
 * tick (inactivity, RTCP reports, recorder flushes, DTMF timeouts, the
 * rate-limited failure reports).
 *
 *   RFC 3550 §6.2   RTCP every 5 s on average, randomised to ±50 %
 *   RFC 3550 §6.3.7 BYE when the session ends
 *
 * Sockets: the thread keeps its own edge-triggered epoll set of every RTP
 * and RTCP socket, itself watched by the loop (one uv_poll_t on the epoll
 * fd). A ready socket is read with one recvmmsg (up to MS_RX_BATCH
 * datagrams, MSG_DONTWAIT): fewer than asked for means the queue is empty,
 * so there is neither a second read that ends in EAGAIN nor the
 * re-check a level-triggered poll makes of every ready socket on each turn
 * (together about a quarter of the receive cost at thousands of streams).
 * A socket that filled a whole batch goes on the thread's `again` list
 * (once, however many sockets are on it) and is read again on the next
 * turn, so a flood on one socket cannot starve the others and no datagram
 * is left waiting for an edge that may never come. Datagrams land in the
 * thread's buffers: the packet path allocates nothing. Sends are sendto
 * with MSG_DONTWAIT: never queued, never blocking; a full socket buffer
 * drops the packet and counts it. */
#include <errno.h>
#include <unistd.h>
#include <pthread.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/socket.h>

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

/* Reads what one socket has, up to a batch; true when the batch was full
 * (the socket may hold more). */
static bool sock_read(struct mthread *t, struct om_media_session *s, bool rtcp)
{
	struct mmsghdr *mh = t->mh;
	for (int i = 0; i < MS_RX_BATCH; i++) {
		t->iov[i].iov_base = t->rxbuf[i];
		t->iov[i].iov_len = OM_RTP_MAX_PACKET;
		mh[i].msg_hdr.msg_name = &t->from[i];
		mh[i].msg_hdr.msg_namelen = sizeof(t->from[i]);
		mh[i].msg_hdr.msg_iov = &t->iov[i];
		mh[i].msg_hdr.msg_iovlen = 1;
		mh[i].msg_hdr.msg_control = NULL;
		mh[i].msg_hdr.msg_controllen = 0;
		mh[i].msg_hdr.msg_flags = 0;
	}
	int n = recvmmsg(rtcp ? s->fd_rtcp : s->fd_rtp, mh, MS_RX_BATCH, MSG_DONTWAIT, NULL);
	for (int i = 0; i < n && !s->closing; i++) {
		size_t len = mh[i].msg_len;
		ctr_add(&s->c, C_BYTES_IN, len);
		if (mh[i].msg_hdr.msg_flags & MSG_TRUNC) {
			ctr_add(&s->c, C_MALFORMED, 1); /* larger than any RTP we take */
			continue;
		}
		const struct sockaddr *from = (const struct sockaddr *)&t->from[i];
		if (rtcp)
			om_media_rx_rtcp(s, t->rxbuf[i], len, from);
		else
			om_media_rx_rtp(s, t->rxbuf[i], len, from);
	}
	return n == MS_RX_BATCH;
}

/* Before a recording ends (BYE, the flow's stop, the session's end): what
 * the RTP socket already holds arrived before the stop was decided — the
 * SIP that decided it came after — so it goes into the recording first.
 * Never blocks (MSG_DONTWAIT) and is bounded: MS_DRAIN_BATCHES reads of
 * MS_RX_BATCH datagrams at most. */
#define MS_DRAIN_BATCHES 64
static void sess_drain(struct mthread *t, struct om_media_session *s)
{
	if (s->closing || s->fd_rtp < 0)
		return;
	for (int i = 0; i < MS_DRAIN_BATCHES && sock_read(t, s, false); i++)
		;
}

/* The `again` list: sockets whose last read filled a batch. */
static void again_push(struct mthread *t, struct msock *k)
{
	if (k->queued)
		return;
	k->queued = true;
	k->next = NULL;
	*t->again_tail = k;
	t->again_tail = &k->next;
}

/* The epoll set is readable: take its events (edge-triggered: each one
 * once) and read the sockets; sockets that may hold more go on `again`,
 * however many there are, each once. */
static void on_idle(uv_idle_t *h);

static void on_sockets(uv_poll_t *h, int status, int events)
{
	(void)events;
	struct mthread *t = h->data;
	if (status < 0)
		return;
	struct epoll_event ev[MS_EPOLL_BATCH];
	/* Sockets left with a full batch last turn first. */
	struct msock *k = t->again;
	t->again = NULL;
	t->again_tail = &t->again;
	while (k) {
		struct msock *next = k->next;
		k->queued = false;
		k->next = NULL;
		if (!k->s->closing && sock_read(t, k->s, k->rtcp))
			again_push(t, k);
		k = next;
	}
	int n = epoll_wait(t->epfd, ev, MS_EPOLL_BATCH, 0);
	for (int i = 0; i < n; i++) {
		k = ev[i].data.ptr;
		/* Already waiting for the next turn: read there, in its order. */
		if (k->queued || k->s->closing)
			continue;
		if (sock_read(t, k->s, k->rtcp))
			again_push(t, k);
	}
	/* With sockets still holding data, come back on the next turn even if
	 * the epoll set reports nothing new. */
	if (t->again)
		uv_idle_start(&t->idle, on_idle);
	else
		uv_idle_stop(&t->idle);
}

static void on_idle(uv_idle_t *h)
{
	struct mthread *t = h->data;
	on_sockets(&t->ep_poll, 0, UV_READABLE);
}

static int sock_watch(struct mthread *t, struct om_media_session *s, int fd, bool rtcp)
{
	struct msock *k = &s->sock[rtcp ? 1 : 0];
	k->s = s;
	k->rtcp = rtcp;
	k->queued = false;
	k->next = NULL;
	struct epoll_event ev;
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN | EPOLLET;
	ev.data.ptr = k;
	return epoll_ctl(t->epfd, EPOLL_CTL_ADD, fd, &ev) == 0 ? 0 : errno;
}

/* A closing session leaves the `again` list and the epoll set (its memory
 * belongs to the control thread after CLOSED). */
static void sock_forget(struct mthread *t, struct om_media_session *s)
{
	for (struct msock **pp = &t->again; *pp;) {
		struct msock *k = *pp;
		if (k->s == s) {
			*pp = k->next;
			k->queued = false;
			k->next = NULL;
		} else {
			pp = &k->next;
		}
	}
	t->again_tail = &t->again;
	while (*t->again_tail)
		t->again_tail = &(*t->again_tail)->next;
	if (s->fd_rtp >= 0)
		(void)epoll_ctl(t->epfd, EPOLL_CTL_DEL, s->fd_rtp, NULL);
	if (s->fd_rtcp >= 0)
		(void)epoll_ctl(t->epfd, EPOLL_CTL_DEL, s->fd_rtcp, NULL);
}

int om_media_sendto(struct om_media_session *s, bool rtcp, const uint8_t *p, size_t len)
{
	const struct sess_cfg *c = &s->cfg;
	if (!c->remote_known || s->closing)
		return ENOTCONN;
	const struct sockaddr_storage *to = rtcp && !c->rtcp_mux ? &c->remote_rtcp : &c->remote;
	int fd = rtcp && s->fd_rtcp >= 0 ? s->fd_rtcp : s->fd_rtp;
	socklen_t tl =
	    to->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
	if (sendto(fd, p, len, MSG_DONTWAIT | MSG_NOSIGNAL, (const struct sockaddr *)to, tl) < 0) {
		ctr_add(&s->c, C_SEND_ERR, 1);
		return errno;
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
	s->txt.data = s; /* handle_closed finds the session through it */
	int err = uv_timer_init(&t->loop, &s->txt);
	if (!err) {
		s->handles_open++;
		s->txt_init = true;
	}
	if (!err)
		err = -sock_watch(t, s, s->fd_rtp, false);
	if (!err && s->fd_rtcp >= 0)
		err = -sock_watch(t, s, s->fd_rtcp, true);
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
	/* No poll handle watches the sockets any more: close them. */
	if (s->fd_rtp >= 0)
		close(s->fd_rtp);
	if (s->fd_rtcp >= 0)
		close(s->fd_rtcp);
	s->fd_rtp = s->fd_rtcp = -1;
	/* The last word: CLOSED goes through the writer, after the
	 * recording's RECORD_STOPPED. */
	om_media_ctrs_read(&s->c, &s->closed.ev.u.stats);
	s->closed_fwd.type = W_FORWARD;
	s->closed_fwd.fwd = &s->closed;
	om_media_spool_send(s->e->sp, &s->closed_fwd);
}

static void emit_srtp(struct om_media_session *s, int64_t now);
static void emit_strangers(struct om_media_session *s, int64_t now);

void om_media_sess_close(struct om_media_session *s)
{
	if (s->closing)
		return;
	struct mthread *t = s->t;
	int64_t now = om_media_now(t);
	if (s->rec) {
		sess_drain(t, s);
		om_media_rec_stop(s);
	}
	om_media_tx_stop(s, true);
	if (s->cfg.remote_known && s->handles_open > 0)
		om_media_tx_rtcp(s, now, true);
	/* What was not reported yet (the reports are at most one a second). */
	if (s->srtp_auth_new || s->srtp_replay_new)
		emit_srtp(s, now);
	if (s->strangers_new)
		emit_strangers(s, now);
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
	sock_forget(t, s);
	if (s->handles_open == 0) {
		s->handles_open = 1;
		handle_closed((uv_handle_t *)&s->txt);
		return;
	}
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
	uv_close((uv_handle_t *)&t->ep_poll, thread_closed);
	uv_close((uv_handle_t *)&t->idle, thread_closed);
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
			if (c->type == CMD_DTMF)
				om_free(c->u.dtmf.ev);
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
			if (s->rec) {
				sess_drain(t, s);
				om_media_rec_stop(s);
			}
			break;
		case CMD_DTMF:
			om_media_dtmf_info(s, c->u.dtmf.digit, c->u.dtmf.ms, now, c->u.dtmf.ev);
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
	close(t->epfd);
	/* The last thing this thread does: the control thread joins it. */
	t->done.kind = EVK_THREAD_DONE;
	t->done.thread = t;
	om_media_emit(t->e, &t->done);
}

int om_media_thread_start(struct mthread *t)
{
	t->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (t->epfd < 0)
		return errno;
	int err = uv_loop_init(&t->loop);
	if (err) {
		close(t->epfd);
		return -err;
	}
	if ((err = uv_async_init(&t->loop, &t->async, on_cmds)) != 0 ||
	    (err = uv_poll_init(&t->loop, &t->ep_poll, t->epfd)) != 0) {
		if (err && uv_is_active((uv_handle_t *)&t->async))
			uv_close((uv_handle_t *)&t->async, NULL);
		uv_run(&t->loop, UV_RUN_DEFAULT);
		uv_loop_close(&t->loop);
		close(t->epfd);
		return -err;
	}
	t->async.data = t;
	t->ep_poll.data = t;
	uv_timer_init(&t->loop, &t->tick);
	t->tick.data = t;
	uv_idle_init(&t->loop, &t->idle);
	t->idle.data = t;
	t->again = NULL;
	t->again_tail = &t->again;
	t->handles_open = 4;
	uv_timer_start(&t->tick, on_tick, MS_TICK_MS, MS_TICK_MS);
	uv_poll_start(&t->ep_poll, UV_READABLE, on_sockets);
	if ((err = uv_thread_create(&t->tid, thread_main, t)) != 0) {
		uv_close((uv_handle_t *)&t->async, NULL);
		uv_close((uv_handle_t *)&t->tick, NULL);
		uv_close((uv_handle_t *)&t->ep_poll, NULL);
		uv_close((uv_handle_t *)&t->idle, NULL);
		uv_run(&t->loop, UV_RUN_DEFAULT);
		uv_loop_close(&t->loop);
		close(t->epfd);
		return -err;
	}
	t->started = true;
	return 0;
}
