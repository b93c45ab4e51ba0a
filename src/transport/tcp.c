/* tcp.c — SIP over TCP on libuv (see tcp.h for the bounds). */
#include "transport/tcp.h"
#include "core/alloc.h"
#include "sip/sip.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#define MAX_LISTENERS 8
#define READ_CHUNK    4096

struct listener {
	uv_tcp_t h;
	struct om_tcp_server *srv;
	int port;
};

struct om_tcp_server {
	uv_loop_t *loop;
	struct om_tcp_limits lim;
	struct om_tcp_handlers h;
	struct listener *ls[MAX_LISTENERS];
	size_t nls;
	struct om_tcp_conn *conns; /* doubly linked list of open connections */
	struct om_tcp_stats st;
	uint64_t next_id;
	int closing;
	unsigned pending_closes; /* handles whose close callback has not run */
};

struct om_tcp_conn {
	uv_tcp_t h;
	uv_timer_t timer;
	struct om_tcp_server *srv;
	struct om_tcp_conn *prev, *next;
	void *user;
	uint64_t id;
	struct sockaddr_storage peer, local;
	char peer_str[64];
	char *rbuf;
	size_t rlen, rcap;
	size_t crlf_run; /* CR/LF bytes skipped since the last message (ping = 4) */
	uint64_t last_rx, partial_since;
	size_t queued;
	int accepted;
	int closing;
	int close_after_write;
	int in_callback;
	unsigned handles_open;
	enum om_tcp_close_reason why;
};

struct wreq {
	uv_write_t req;
	struct om_tcp_conn *c;
	size_t len;
	char data[];
};

void om_tcp_limits_default(struct om_tcp_limits *l)
{
	l->max_conns = 1024;
	l->max_conns_peer = 64;
	l->max_msg = OM_SIP_MAX_MSG;
	l->idle_ms = 300 * 1000;
	l->partial_ms = 10 * 1000;
	l->write_queue_max = 256 * 1024;
}

const char *om_tcp_close_reason_str(enum om_tcp_close_reason r)
{
	static const char *const s[] = { "peer closed",      "closed",       "idle",
		                         "message too slow", "framing lost", "peer does not read",
		                         "out of memory" };
	return (unsigned)r < sizeof(s) / sizeof(s[0]) ? s[r] : "?";
}

void om_sockaddr_str(const struct sockaddr *sa, char *out, size_t len)
{
	char ip[INET6_ADDRSTRLEN] = "?";
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)sa;
		inet_ntop(AF_INET, &a->sin_addr, ip, sizeof(ip));
		snprintf(out, len, "%s:%u", ip, ntohs(a->sin_port));
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)sa;
		inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof(ip));
		snprintf(out, len, "[%s]:%u", ip, ntohs(a->sin6_port));
	} else {
		snprintf(out, len, "?");
	}
}

/* Same IP (ports ignored; IPv4-mapped IPv6 equals IPv4). */
static void ip16(const struct sockaddr *sa, uint8_t out[16])
{
	memset(out, 0, 16);
	if (sa->sa_family == AF_INET) {
		out[10] = out[11] = 0xff;
		memcpy(out + 12, &((const struct sockaddr_in *)sa)->sin_addr, 4);
	} else if (sa->sa_family == AF_INET6) {
		memcpy(out, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
	}
}

/* ------------------------------------------------------------ closing */

static void server_maybe_free(struct om_tcp_server *s)
{
	if (s->closing && s->pending_closes == 0 && !s->conns)
		om_free(s);
}

static void conn_handle_closed(uv_handle_t *h)
{
	struct om_tcp_conn *c = h->data;
	struct om_tcp_server *s = c->srv;
	s->pending_closes--;
	if (--c->handles_open)
		return;
	om_free(c->rbuf);
	om_free(c);
	server_maybe_free(s);
}

static void conn_close_now(struct om_tcp_conn *c, enum om_tcp_close_reason why)
{
	struct om_tcp_server *s = c->srv;
	if (c->closing)
		return;
	c->closing = 1;
	c->why = why;
	switch (why) {
	case OM_TCP_CLOSE_IDLE:
		s->st.closed_idle++;
		break;
	case OM_TCP_CLOSE_PARTIAL:
		s->st.closed_partial++;
		break;
	case OM_TCP_CLOSE_FRAMING:
		s->st.closed_framing++;
		break;
	case OM_TCP_CLOSE_OVERFLOW:
		s->st.closed_overflow++;
		break;
	default:
		break;
	}
	/* unlink */
	if (c->prev)
		c->prev->next = c->next;
	else if (s->conns == c)
		s->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->prev = c->next = NULL;
	s->st.conns--;
	if (c->accepted && s->h.close_h)
		s->h.close_h(c, why, c->user, s->h.arg);
	uv_timer_stop(&c->timer);
	s->pending_closes += 2;
	uv_close((uv_handle_t *)&c->timer, conn_handle_closed);
	uv_close((uv_handle_t *)&c->h, conn_handle_closed);
}

void om_tcp_conn_abort(struct om_tcp_conn *c)
{
	conn_close_now(c, OM_TCP_CLOSE_LOCAL);
}

void om_tcp_conn_close(struct om_tcp_conn *c)
{
	if (c->closing)
		return;
	if (c->queued == 0)
		conn_close_now(c, OM_TCP_CLOSE_LOCAL);
	else
		c->close_after_write = 1;
}

bool om_tcp_conn_closing(const struct om_tcp_conn *c)
{
	return c->closing || c->close_after_write;
}

/* -------------------------------------------------------------- timers */

static void arm_timer(struct om_tcp_conn *c);

static void on_timer(uv_timer_t *t)
{
	struct om_tcp_conn *c = t->data;
	uint64_t now = uv_now(c->srv->loop);
	if (c->partial_since && now - c->partial_since >= c->srv->lim.partial_ms) {
		conn_close_now(c, OM_TCP_CLOSE_PARTIAL);
		return;
	}
	if (now - c->last_rx >= c->srv->lim.idle_ms) {
		conn_close_now(c, OM_TCP_CLOSE_IDLE);
		return;
	}
	arm_timer(c);
}

static void arm_timer(struct om_tcp_conn *c)
{
	uint64_t now = uv_now(c->srv->loop);
	uint64_t due = c->last_rx + c->srv->lim.idle_ms;
	if (c->partial_since && c->partial_since + c->srv->lim.partial_ms < due)
		due = c->partial_since + c->srv->lim.partial_ms;
	uv_timer_start(&c->timer, on_timer, due > now ? due - now : 0, 0);
}

/* -------------------------------------------------------------- writing */

static void on_write(uv_write_t *req, int status)
{
	struct wreq *w = (struct wreq *)req;
	struct om_tcp_conn *c = w->c;
	c->queued -= w->len;
	om_free(w);
	if (c->closing)
		return;
	if (status < 0) {
		conn_close_now(c, OM_TCP_CLOSE_PEER);
		return;
	}
	if (c->close_after_write && c->queued == 0)
		conn_close_now(c, OM_TCP_CLOSE_LOCAL);
}

int om_tcp_conn_send(struct om_tcp_conn *c, const void *data, size_t len)
{
	if (c->closing)
		return EPIPE;
	if (len == 0)
		return 0;
	if (c->queued == 0) {
		uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
		int n = uv_try_write((uv_stream_t *)&c->h, &b, 1);
		if (n > 0) {
			data = (const char *)data + n;
			len -= (size_t)n;
			if (len == 0)
				return 0;
		} else if (n != UV_EAGAIN && n != UV_ENOSYS) {
			conn_close_now(c, OM_TCP_CLOSE_PEER);
			return EPIPE;
		}
	}
	if (c->queued + len > c->srv->lim.write_queue_max) {
		conn_close_now(c, OM_TCP_CLOSE_OVERFLOW);
		return ENOBUFS;
	}
	struct wreq *w = om_malloc(sizeof(*w) + len);
	if (!w) {
		conn_close_now(c, OM_TCP_CLOSE_NOMEM);
		return ENOMEM;
	}
	w->c = c;
	w->len = len;
	memcpy(w->data, data, len);
	uv_buf_t b = uv_buf_init(w->data, (unsigned)len);
	if (uv_write(&w->req, (uv_stream_t *)&c->h, &b, 1, on_write) != 0) {
		om_free(w);
		conn_close_now(c, OM_TCP_CLOSE_PEER);
		return EPIPE;
	}
	c->queued += len;
	return 0;
}

/* -------------------------------------------------------------- reading */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
	struct om_tcp_conn *c = h->data;
	size_t limit = c->srv->lim.max_msg + 4;
	if (c->rcap - c->rlen < READ_CHUNK && c->rcap < limit) {
		size_t cap = c->rcap ? c->rcap * 2 : READ_CHUNK * 2;
		if (cap > limit)
			cap = limit;
		char *p = om_realloc(c->rbuf, cap);
		if (p) {
			c->rbuf = p;
			c->rcap = cap;
		}
	}
	b->base = c->rbuf + c->rlen;
	b->len = c->rcap - c->rlen;
}

static void consume(struct om_tcp_conn *c, size_t n)
{
	memmove(c->rbuf, c->rbuf + n, c->rlen - n);
	c->rlen -= n;
}

static void process(struct om_tcp_conn *c)
{
	struct om_tcp_server *s = c->srv;
	while (c->rlen && !c->closing && !c->close_after_write) {
		size_t n = 0;
		enum om_sip_reason reason = 0;
		enum om_sip_frame_res r =
		    om_sip_frame(c->rbuf, c->rlen, s->lim.max_msg, &n, &reason);
		if (r == OM_SIP_FRAME_MORE)
			break;
		if (r == OM_SIP_FRAME_SKIP) {
			/* RFC 5626 §3.5.1: CRLF CRLF is a ping, answered by CRLF. */
			c->crlf_run += n;
			consume(c, n);
			while (c->crlf_run >= 4) {
				c->crlf_run -= 4;
				s->st.keepalives++;
				if (om_tcp_conn_send(c, "\r\n", 2))
					return;
			}
			continue;
		}
		if (r == OM_SIP_FRAME_ERROR) {
			if (s->h.frame_error_h)
				s->h.frame_error_h(c, om_sip_reason_str(reason), c->user, s->h.arg);
			conn_close_now(c, OM_TCP_CLOSE_FRAMING);
			return;
		}
		c->crlf_run = 0;
		s->st.messages++;
		s->h.msg_h(c, c->rbuf, n, c->user, s->h.arg);
		if (c->closing)
			return;
		consume(c, n);
	}
	if (c->rlen == 0)
		c->partial_since = 0;
	else if (!c->partial_since)
		c->partial_since = uv_now(s->loop);
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
	struct om_tcp_conn *c = st->data;
	if (c->closing)
		return;
	if (n < 0) {
		conn_close_now(c, OM_TCP_CLOSE_PEER);
		return;
	}
	if (n == 0)
		return;
	if (c->close_after_write)
		return; /* we are done with this peer */
	c->rlen += (size_t)n;
	c->last_rx = uv_now(c->srv->loop);
	process(c);
	if (!c->closing && c->rlen == c->rcap && c->rcap >= c->srv->lim.max_msg + 4) {
		/* Cannot happen with a sound framing helper; never spin. */
		conn_close_now(c, OM_TCP_CLOSE_FRAMING);
		return;
	}
	if (!c->closing)
		arm_timer(c);
}

/* ------------------------------------------------------------ accepting */

static size_t conns_from(struct om_tcp_server *s, const struct sockaddr *peer)
{
	uint8_t a[16], b[16];
	size_t n = 0;
	ip16(peer, a);
	for (struct om_tcp_conn *c = s->conns; c; c = c->next) {
		ip16((struct sockaddr *)&c->peer, b);
		if (!memcmp(a, b, 16))
			n++;
	}
	return n;
}

static void on_connection(uv_stream_t *l, int status)
{
	struct listener *ls = l->data;
	struct om_tcp_server *s = ls->srv;
	if (status < 0 || s->closing)
		return;
	struct om_tcp_conn *c = om_calloc(1, sizeof(*c));
	if (!c) {
		uv_tcp_t tmp;
		if (uv_tcp_init(s->loop, &tmp) == 0) {
			uv_accept(l, (uv_stream_t *)&tmp);
			uv_close((uv_handle_t *)&tmp, NULL);
		}
		return;
	}
	c->srv = s;
	c->id = ++s->next_id;
	uv_tcp_init(s->loop, &c->h);
	uv_timer_init(s->loop, &c->timer);
	c->h.data = c->timer.data = c;
	c->handles_open = 2;
	/* link first so conn_close_now can unlink */
	c->next = s->conns;
	if (s->conns)
		s->conns->prev = c;
	s->conns = c;
	s->st.conns++;
	if (uv_accept(l, (uv_stream_t *)&c->h) != 0) {
		conn_close_now(c, OM_TCP_CLOSE_LOCAL);
		return;
	}
	int len = sizeof(c->peer);
	uv_tcp_getpeername(&c->h, (struct sockaddr *)&c->peer, &len);
	len = sizeof(c->local);
	uv_tcp_getsockname(&c->h, (struct sockaddr *)&c->local, &len);
	om_sockaddr_str((struct sockaddr *)&c->peer, c->peer_str, sizeof(c->peer_str));
	if (s->st.conns > s->lim.max_conns ||
	    conns_from(s, (struct sockaddr *)&c->peer) > s->lim.max_conns_peer) {
		s->st.over_limit++;
		conn_close_now(c, OM_TCP_CLOSE_LOCAL);
		return;
	}
	if (s->h.accept_h(c, (struct sockaddr *)&c->peer, &c->user, s->h.arg) != 0) {
		s->st.refused++;
		conn_close_now(c, OM_TCP_CLOSE_LOCAL);
		return;
	}
	c->accepted = 1;
	s->st.accepted++;
	uv_tcp_nodelay(&c->h, 1);
	c->last_rx = uv_now(s->loop);
	arm_timer(c);
	if (uv_read_start((uv_stream_t *)&c->h, on_alloc, on_read) != 0)
		conn_close_now(c, OM_TCP_CLOSE_LOCAL);
}

/* -------------------------------------------------------------- server */

int om_tcp_server_new(uv_loop_t *loop, const struct om_tcp_limits *limits,
                      const struct om_tcp_handlers *h, struct om_tcp_server **out)
{
	struct om_tcp_server *s = om_calloc(1, sizeof(*s));
	if (!s)
		return ENOMEM;
	s->loop = loop;
	if (limits)
		s->lim = *limits;
	else
		om_tcp_limits_default(&s->lim);
	s->h = *h;
	*out = s;
	return 0;
}

static void listener_closed(uv_handle_t *h)
{
	struct listener *l = h->data;
	struct om_tcp_server *s = l->srv;
	s->pending_closes--;
	om_free(l);
	server_maybe_free(s);
}

int om_tcp_server_listen(struct om_tcp_server *s, const char *host, uint16_t port)
{
	struct sockaddr_storage ss;
	int rc;
	if (s->nls == MAX_LISTENERS)
		return ENOSPC;
	memset(&ss, 0, sizeof(ss));
	if (strchr(host, ':'))
		rc = uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss);
	else
		rc = uv_ip4_addr(host, port, (struct sockaddr_in *)&ss);
	if (rc)
		return EINVAL;
	struct listener *l = om_calloc(1, sizeof(*l));
	if (!l)
		return ENOMEM;
	l->srv = s;
	uv_tcp_init(s->loop, &l->h);
	l->h.data = l;
	rc = uv_tcp_bind(&l->h, (struct sockaddr *)&ss,
	                 ss.ss_family == AF_INET6 ? UV_TCP_IPV6ONLY : 0);
	if (rc == 0)
		rc = uv_listen((uv_stream_t *)&l->h, 511, on_connection);
	if (rc) {
		s->pending_closes++;
		uv_close((uv_handle_t *)&l->h, listener_closed);
		return -rc;
	}
	struct sockaddr_storage bound;
	int blen = sizeof(bound);
	uv_tcp_getsockname(&l->h, (struct sockaddr *)&bound, &blen);
	l->port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
	                                            : ((struct sockaddr_in *)&bound)->sin_port);
	s->ls[s->nls++] = l;
	return 0;
}

int om_tcp_server_port(struct om_tcp_server *s, size_t i)
{
	return i < s->nls ? s->ls[i]->port : -1;
}

void om_tcp_server_close(struct om_tcp_server *s)
{
	if (!s || s->closing)
		return;
	s->closing = 1;
	for (size_t i = 0; i < s->nls; i++) {
		s->pending_closes++;
		uv_close((uv_handle_t *)&s->ls[i]->h, listener_closed);
	}
	s->nls = 0;
	while (s->conns)
		conn_close_now(s->conns, OM_TCP_CLOSE_LOCAL);
	server_maybe_free(s);
}

void om_tcp_server_stats(const struct om_tcp_server *s, struct om_tcp_stats *st)
{
	*st = s->st;
}

void om_tcp_server_foreach(struct om_tcp_server *s,
                           void (*fn)(struct om_tcp_conn *c, void *user, void *arg), void *arg)
{
	struct om_tcp_conn *c = s->conns, *next;
	for (; c; c = next) {
		next = c->next; /* fn may close c */
		if (c->accepted && !c->closing)
			fn(c, c->user, arg);
	}
}

const struct sockaddr *om_tcp_conn_peer(const struct om_tcp_conn *c)
{
	return (const struct sockaddr *)&c->peer;
}

const struct sockaddr *om_tcp_conn_local(const struct om_tcp_conn *c)
{
	return (const struct sockaddr *)&c->local;
}

const char *om_tcp_conn_peer_str(const struct om_tcp_conn *c)
{
	return c->peer_str;
}

uint64_t om_tcp_conn_id(const struct om_tcp_conn *c)
{
	return c->id;
}

void om_tcp_conn_set_user(struct om_tcp_conn *c, void *user)
{
	c->user = user;
}
