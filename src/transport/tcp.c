/* tcp.c — SIP over TCP and TLS on libuv (see tcp.h for the bounds).
 *
 * TLS (RFC 3261 §26.2): the socket's bytes go into the session's read BIO;
 * after every handshake step, read and write the write BIO is flushed to
 * the socket; plaintext is read until the session wants more (every record
 * the read brought, before any framing) and goes through the same framing
 * as TCP. A peer that closes without close_notify is an ordinary close.
 *
 * Peers are counted in a fixed open-addressing table (linear probing,
 * backward-shift deletion, a per-server random seed) sized at twice
 * max_conns, so an accept costs O(1) whatever the number of connections. */
#include "transport/tcp.h"
#include "core/alloc.h"
#include "sip/sip.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#define MAX_LISTENERS    8
#define READ_CHUNK       4096
#define ACCEPT_RETRY_MS  100         /* out of memory at accept: try again after */
#define OUT_FLUSH        (64 * 1024) /* output of a turn written at once past this */
/* A message in progress may take at most MAX_TINY_RECORDS TLS records of
 * under TINY_RECORD bytes of plaintext each in a row: no SIP stack writes
 * like that, and each record costs OpenSSL a decryption (~0.5 us) however
 * small it is, so a 64 KiB message in one-byte records would cost some
 * 300 times the CPU of the same message in one record. The sender is cut
 * off as a framing fault instead (CRLF keep-alives between messages are
 * not counted). */
#define TINY_RECORD      64
#define MAX_TINY_RECORDS 512

struct listener {
	uv_tcp_t h;
	struct om_tcp_server *srv;
	int port;
	int tls;
	int stalled; /* a peer waits in the backlog (out of memory at accept) */
};

/* One peer (address or IPv6 prefix) with open connections. */
struct peer {
	uint8_t key[16];
	uint32_t conns;   /* open connections (0: the slot is free) */
	uint32_t pending; /* of them TLS not yet identified */
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
	struct om_tls_ctx *tls;  /* for new handshakes */
	uv_check_t check;        /* refills the handshake budget each loop turn */
	uv_idle_t idle;          /* runs handshakes put off to the next turn */
	unsigned hs_budget;
	struct om_tcp_conn *deferred; /* waiting for budget, oldest first */
	uv_timer_t retry;             /* accepts put off for lack of memory */
	struct om_tcp_conn *flushq;   /* connections with output this loop turn */
	struct peer *peers;           /* open addressing, peer_mask + 1 slots */
	size_t peer_mask;
	uint64_t peer_seed;
	char scratch[16 * 1024 + 512]; /* TLS reads land here, then go to the BIO */
	char tls_out[64 * 1024];       /* ciphertext gathered for one write */
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
	struct om_sip_framer fr; /* framing state between reads */
	size_t crlf_run;         /* CR/LF bytes skipped since the last message (ping = 4) */
	unsigned tiny_records;   /* TLS records < TINY_RECORD bytes in a row within a message */
	uint64_t last_rx;
	uint64_t msg_since;   /* first byte of the current message (0: none) */
	uint64_t hs_deadline; /* TLS not yet identified: close at (0: identified) */
	uint8_t pkey[16];     /* peer key (om_tcp_peer_key) */
	int counted;          /* in the peer table */
	int pending;          /* counted in the budget of unidentified connections */
	int known;            /* om_tcp_conn_set_known: outside that budget */
	int tls_listener;     /* accepted on a TLS listener */
	size_t queued;
	int accepted;
	int closing;
	int close_after_write;
	int in_callback;
	unsigned handles_open;
	enum om_tcp_close_reason why;
	struct om_tls_sess *tls;
	int deferred;
	int tls_rx;    /* a byte arrived (a handshake was attempted) */
	int outbound;  /* om_tcp_server_connect */
	int connected; /* outbound: connect_h(0) was reported */
	struct om_tcp_conn *dnext;
	char *out; /* what the owner sent this loop turn (plaintext), not yet written */
	size_t olen, ocap;
	struct om_tcp_conn *fprev, *fnext; /* in the server's flush list */
	int in_flushq;
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
	l->max_pending = 128;
	l->max_pending_peer = 8;
	l->v6_prefix = 64;
	l->max_msg = OM_SIP_MAX_MSG;
	l->idle_ms = 300 * 1000;
	l->partial_ms = 10 * 1000;
	l->handshake_ms = 5 * 1000;
	l->write_queue_max = 256 * 1024;
}

const char *om_tcp_close_reason_str(enum om_tcp_close_reason r)
{
	static const char *const s[] = { "peer closed",   "closed",
		                         "idle",          "message too slow",
		                         "framing lost",  "peer does not read",
		                         "out of memory", "handshake too slow" };
	return (unsigned)r < sizeof(s) / sizeof(s[0]) ? s[r] : "?";
}

const char *om_tcp_limit_str(enum om_tcp_limit l)
{
	static const char *const s[] = { "max_connections", "max_connections_per_peer",
		                         "max_handshakes", "max_handshakes_per_peer" };
	return (unsigned)l < sizeof(s) / sizeof(s[0]) ? s[l] : "?";
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

/* The 16-byte form (IPv4-mapped IPv6 equals IPv4), an IPv6 address cut
 * to its prefix. */
void om_tcp_peer_key(const struct sockaddr *sa, unsigned v6_prefix, uint8_t key[16])
{
	static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	memset(key, 0, 16);
	if (sa->sa_family == AF_INET) {
		memcpy(key, mapped, 12);
		memcpy(key + 12, &((const struct sockaddr_in *)sa)->sin_addr, 4);
		return;
	}
	if (sa->sa_family != AF_INET6)
		return;
	memcpy(key, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
	if (!memcmp(key, mapped, 12))
		return; /* an IPv4 peer on a dual-stack socket: the whole address */
	if (v6_prefix >= 128)
		return;
	key[v6_prefix / 8] &= (uint8_t)(0xff00u >> (v6_prefix % 8));
	memset(key + v6_prefix / 8 + 1, 0, 15 - v6_prefix / 8);
}

void om_tcp_peer_key_str(const uint8_t key[16], unsigned v6_prefix, char *out, size_t len)
{
	static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	char ip[INET6_ADDRSTRLEN] = "?";
	if (!memcmp(key, mapped, 12)) {
		inet_ntop(AF_INET, key + 12, ip, sizeof(ip));
		snprintf(out, len, "%s", ip);
		return;
	}
	inet_ntop(AF_INET6, key, ip, sizeof(ip));
	if (v6_prefix >= 128)
		snprintf(out, len, "%s", ip);
	else
		snprintf(out, len, "%s/%u", ip, v6_prefix);
}

/* ---------------------------------------------------------- peer table */

static size_t peer_hash(const struct om_tcp_server *s, const uint8_t key[16])
{
	uint64_t a, b;
	memcpy(&a, key, 8);
	memcpy(&b, key + 8, 8);
	uint64_t h = (a ^ s->peer_seed) * 0x9e3779b97f4a7c15ull;
	h ^= b + (h >> 29);
	h *= 0xbf58476d1ce4e5b9ull;
	h ^= h >> 31;
	return (size_t)h & s->peer_mask;
}

/* The slot of key, or NULL; *free_slot: where it would go. */
static struct peer *peer_find(struct om_tcp_server *s, const uint8_t key[16],
                              struct peer **free_slot)
{
	for (size_t i = peer_hash(s, key);; i = (i + 1) & s->peer_mask) {
		struct peer *p = &s->peers[i];
		if (!p->conns) {
			if (free_slot)
				*free_slot = p;
			return NULL;
		}
		if (!memcmp(p->key, key, 16))
			return p;
	}
}

/* Backward-shift deletion: no tombstones, so lookups stay short. */
static void peer_del(struct om_tcp_server *s, struct peer *p)
{
	size_t i = (size_t)(p - s->peers), j = i;
	for (;;) {
		j = (j + 1) & s->peer_mask;
		if (!s->peers[j].conns)
			break;
		size_t home = peer_hash(s, s->peers[j].key);
		/* can the entry at j move to the hole at i? */
		if (((j - home) & s->peer_mask) >= ((j - i) & s->peer_mask)) {
			s->peers[i] = s->peers[j];
			i = j;
		}
	}
	memset(&s->peers[i], 0, sizeof(s->peers[i]));
}

/* The connection is no longer pending (identified, or closing). */
static void pending_end(struct om_tcp_conn *c)
{
	struct om_tcp_server *s = c->srv;
	c->hs_deadline = 0;
	if (!c->pending)
		return;
	struct peer *p = peer_find(s, c->pkey, NULL);
	if (p)
		p->pending--;
	s->st.pending--;
	c->pending = 0;
}

static void peer_release(struct om_tcp_conn *c)
{
	struct om_tcp_server *s = c->srv;
	if (!c->counted)
		return;
	pending_end(c);
	c->counted = 0;
	struct peer *p = peer_find(s, c->pkey, NULL);
	if (p && --p->conns == 0)
		peer_del(s, p);
}

/* ------------------------------------------------------------ closing */

static void server_maybe_free(struct om_tcp_server *s)
{
	if (s->closing && s->pending_closes == 0 && !s->conns) {
		om_free(s->peers);
		om_free(s);
	}
}

static void flushq_unlink(struct om_tcp_conn *c)
{
	struct om_tcp_server *s = c->srv;
	if (!c->in_flushq)
		return;
	if (c->fprev)
		c->fprev->fnext = c->fnext;
	else
		s->flushq = c->fnext;
	if (c->fnext)
		c->fnext->fprev = c->fprev;
	c->fprev = c->fnext = NULL;
	c->in_flushq = 0;
}

static void conn_handle_closed(uv_handle_t *h)
{
	struct om_tcp_conn *c = h->data;
	struct om_tcp_server *s = c->srv;
	s->pending_closes--;
	if (--c->handles_open)
		return;
	om_tls_sess_free(c->tls);
	om_free(c->out);
	om_free(c->rbuf);
	om_free(c);
	server_maybe_free(s);
}

/* What the owner sent this turn, written as far as the socket takes it at
 * once (a BYE queued just before the server stops still leaves, as if it
 * had been written when sent); nothing is queued behind a closing handle. */
static void write_pending_now(struct om_tcp_conn *c)
{
	struct om_tcp_server *s = c->srv;
	if (!c->olen || c->queued || c->why == OM_TCP_CLOSE_PEER)
		return;
	if (!c->tls) {
		uv_buf_t b = uv_buf_init(c->out, (unsigned)c->olen);
		s->st.writes++;
		(void)uv_try_write((uv_stream_t *)&c->h, &b, 1);
	} else if (om_tls_sess_established(c->tls) && !om_tls_sess_write(c->tls, c->out, c->olen)) {
		size_t n;
		while ((n = om_tls_sess_output(c->tls, s->tls_out, sizeof(s->tls_out))) > 0) {
			uv_buf_t b = uv_buf_init(s->tls_out, (unsigned)n);
			s->st.writes++;
			if (uv_try_write((uv_stream_t *)&c->h, &b, 1) != (int)n)
				break;
		}
	}
	c->olen = 0;
}

static void conn_close_now(struct om_tcp_conn *c, enum om_tcp_close_reason why)
{
	struct om_tcp_server *s = c->srv;
	if (c->closing)
		return;
	c->why = why;
	write_pending_now(c);
	c->closing = 1;
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
	case OM_TCP_CLOSE_HANDSHAKE:
		s->st.closed_handshake++;
		break;
	default:
		break;
	}
	peer_release(c);
	flushq_unlink(c);
	c->olen = 0; /* unsent output is dropped */
	/* unlink */
	if (c->prev)
		c->prev->next = c->next;
	else if (s->conns == c)
		s->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->prev = c->next = NULL;
	if (c->deferred) {
		struct om_tcp_conn **pp = &s->deferred;
		while (*pp && *pp != c)
			pp = &(*pp)->dnext;
		if (*pp)
			*pp = c->dnext;
		c->deferred = 0;
	}
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

static void tls_flush(struct om_tcp_conn *c);

static void flush_out(struct om_tcp_conn *c);

void om_tcp_conn_close(struct om_tcp_conn *c)
{
	if (c->closing || c->close_after_write)
		return;
	flush_out(c); /* what was sent goes before close_notify and FIN */
	if (c->closing)
		return;
	if (c->tls && om_tls_sess_established(c->tls)) {
		om_tls_sess_shutdown(c->tls); /* close_notify */
		tls_flush(c);
		if (c->closing)
			return;
	}
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
	struct om_tcp_server *s = c->srv;
	uint64_t now = uv_now(s->loop);
	if (c->hs_deadline && now >= c->hs_deadline) {
		if (c->outbound && !c->connected && s->h.connect_h)
			s->h.connect_h(c, ETIMEDOUT, c->user, s->h.arg);
		if (c->tls_rx) {
			/* A handshake that never ends is a failed one. */
			om_tls_sess_timeout(c->tls);
			s->st.tls_failed++;
			if (s->h.tls_fail_h)
				s->h.tls_fail_h(c, c->tls, c->user, s->h.arg);
		}
		conn_close_now(c, OM_TCP_CLOSE_HANDSHAKE);
		return;
	}
	if (c->msg_since && now - c->msg_since >= s->lim.partial_ms) {
		conn_close_now(c, OM_TCP_CLOSE_PARTIAL);
		return;
	}
	if (now - c->last_rx >= s->lim.idle_ms) {
		conn_close_now(c, OM_TCP_CLOSE_IDLE);
		return;
	}
	arm_timer(c);
}

/* The earliest of: the handshake deadline, the current message's deadline
 * (from its own first byte), the idle deadline. */
static void arm_timer(struct om_tcp_conn *c)
{
	struct om_tcp_server *s = c->srv;
	uint64_t now = uv_now(s->loop);
	uint64_t due = c->last_rx + s->lim.idle_ms;
	if (c->msg_since && c->msg_since + s->lim.partial_ms < due)
		due = c->msg_since + s->lim.partial_ms;
	if (c->hs_deadline && c->hs_deadline < due)
		due = c->hs_deadline;
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

static int raw_send(struct om_tcp_conn *c, const void *data, size_t len)
{
	if (c->closing)
		return EPIPE;
	if (len == 0)
		return 0;
	if (c->queued == 0) {
		uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
		c->srv->st.writes++;
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
	c->srv->st.writes++;
	if (uv_write(&w->req, (uv_stream_t *)&c->h, &b, 1, on_write) != 0) {
		om_free(w);
		conn_close_now(c, OM_TCP_CLOSE_PEER);
		return EPIPE;
	}
	c->queued += len;
	return 0;
}

/* Ciphertext the session produced (handshake records, alerts, data) to
 * the socket, gathered into writes of up to 64 KiB. */
static void tls_flush(struct om_tcp_conn *c)
{
	struct om_tcp_server *s = c->srv;
	size_t have = 0, n;
	while (!c->closing) {
		n = om_tls_sess_output(c->tls, s->tls_out + have, sizeof(s->tls_out) - have);
		have += n;
		if (n && have < sizeof(s->tls_out))
			continue;
		if (!have || raw_send(c, s->tls_out, have))
			return;
		if (!n)
			return;
		have = 0;
	}
}

/* Writes what the owner sent this loop turn: one write (TCP) or one
 * SSL_write (TLS: few, full records) for every response the turn
 * produced, instead of one each. */
static void flush_out(struct om_tcp_conn *c)
{
	flushq_unlink(c);
	if (c->closing || !c->olen) {
		c->olen = 0;
		return;
	}
	size_t n = c->olen;
	c->olen = 0;
	if (c->tls) {
		if (om_tls_sess_write(c->tls, c->out, n)) {
			conn_close_now(c, OM_TCP_CLOSE_PEER);
			return;
		}
		tls_flush(c);
	} else {
		raw_send(c, c->out, n);
	}
	if (!c->closing) {
		/* an idle connection keeps no buffer (one allocation a turn) */
		om_free(c->out);
		c->out = NULL;
		c->ocap = 0;
	}
}

int om_tcp_conn_send(struct om_tcp_conn *c, const void *data, size_t len)
{
	struct om_tcp_server *s = c->srv;
	if (c->closing)
		return EPIPE;
	if (len == 0)
		return 0;
	if (c->tls && !om_tls_sess_established(c->tls)) {
		conn_close_now(c, OM_TCP_CLOSE_PEER);
		return EPIPE;
	}
	if (c->queued + c->olen + len > s->lim.write_queue_max) {
		conn_close_now(c, OM_TCP_CLOSE_OVERFLOW);
		return ENOBUFS;
	}
	if (c->olen + len > c->ocap) {
		size_t cap = c->ocap ? c->ocap : 4096;
		while (cap < c->olen + len)
			cap *= 2;
		char *p = om_realloc(c->out, cap);
		if (!p) {
			conn_close_now(c, OM_TCP_CLOSE_NOMEM);
			return ENOMEM;
		}
		c->out = p;
		c->ocap = cap;
	}
	memcpy(c->out + c->olen, data, len);
	c->olen += len;
	if (c->olen >= OUT_FLUSH) {
		flush_out(c); /* a long turn: write as it goes */
		return c->closing ? EPIPE : 0;
	}
	if (!c->in_flushq) {
		/* written at the end of the loop turn (on_check) */
		c->in_flushq = 1;
		c->fprev = NULL;
		c->fnext = s->flushq;
		if (s->flushq)
			s->flushq->fprev = c;
		s->flushq = c;
	}
	return 0;
}

/* -------------------------------------------------------------- reading */

/* Room for plaintext at the end of rbuf (grown up to max_msg + 4). */
static void rbuf_grow(struct om_tcp_conn *c)
{
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
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
	struct om_tcp_conn *c = h->data;
	if (c->tls) {
		/* One loop thread: the bytes are copied into the BIO before
		 * the next read can land here. */
		b->base = c->srv->scratch;
		b->len = sizeof(c->srv->scratch);
		return;
	}
	rbuf_grow(c);
	b->base = c->rbuf + c->rlen;
	b->len = c->rcap - c->rlen;
}

/* Frames what rbuf holds. The framer's state makes a call cost only the
 * bytes that arrived since the last one; the messages of one read are
 * taken in place and what is left moved to the front once; the message
 * timer restarts with the first byte after each complete message. */
static void process(struct om_tcp_conn *c)
{
	struct om_tcp_server *s = c->srv;
	uint64_t now = uv_now(s->loop);
	size_t pos = 0;
	while (pos < c->rlen && !c->closing && !c->close_after_write) {
		size_t n = 0;
		enum om_sip_reason reason = 0;
		enum om_sip_frame_res r = om_sip_framer_next(&c->fr, c->rbuf + pos, c->rlen - pos,
		                                             s->lim.max_msg, &n, &reason);
		if (r == OM_SIP_FRAME_MORE)
			break;
		if (r == OM_SIP_FRAME_SKIP) {
			/* RFC 5626 §3.5.1: CRLF CRLF is a ping, answered by CRLF. */
			c->crlf_run += n;
			pos += n;
			c->msg_since = 0;
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
		s->h.msg_h(c, c->rbuf + pos, n, c->user, s->h.arg);
		if (c->closing)
			return;
		pos += n;
		c->msg_since = 0; /* what follows is the next message's */
	}
	if (pos) {
		memmove(c->rbuf, c->rbuf + pos, c->rlen - pos);
		c->rlen -= pos;
	}
	if (c->rlen == 0) {
		c->msg_since = 0;
		c->tiny_records = 0;
		/* nothing pending: an idle connection keeps no read buffer */
		om_free(c->rbuf);
		c->rbuf = NULL;
		c->rcap = 0;
	} else if (!c->msg_since) {
		c->msg_since = now;
	}
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b);

static void defer_handshake(struct om_tcp_conn *c)
{
	struct om_tcp_server *s = c->srv;
	struct om_tcp_conn **pp = &s->deferred;
	uv_read_stop((uv_stream_t *)&c->h); /* the kernel holds the rest */
	while (*pp)
		pp = &(*pp)->dnext;
	*pp = c;
	c->dnext = NULL;
	c->deferred = 1;
	s->st.tls_deferred++;
}

static void on_idle(uv_idle_t *h);

/* Drives a TLS connection as far as the bytes in its read BIO allow:
 * handshake (within the loop turn's budget), identity decision, then
 * plaintext into the framing until the session wants more. */
/* Only CR and LF: keep-alive bytes (RFC 5626 §3.5.1), not a message. */
static bool all_crlf(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != '\r' && p[i] != '\n')
			return false;
	return true;
}

static void tls_advance(struct om_tcp_conn *c)
{
	struct om_tcp_server *s = c->srv;
	if (c->deferred)
		return;
	if (!om_tls_sess_established(c->tls)) {
		if (s->hs_budget == 0) {
			defer_handshake(c);
			uv_idle_start(&s->idle, on_idle);
			return;
		}
		s->hs_budget--;
		enum om_tls_res r = om_tls_sess_handshake(c->tls);
		tls_flush(c);
		if (c->closing || r == OM_TLS_AGAIN)
			return;
		if (r != OM_TLS_OK) {
			s->st.tls_failed++;
			if (s->h.tls_fail_h)
				s->h.tls_fail_h(c, c->tls, c->user, s->h.arg);
			if (c->outbound && s->h.connect_h)
				s->h.connect_h(c, ECONNREFUSED, c->user, s->h.arg);
			if (c->queued == 0)
				conn_close_now(c, OM_TCP_CLOSE_LOCAL);
			else
				c->close_after_write = 1; /* the alert goes out first */
			return;
		}
		s->st.tls_handshakes++;
		if (s->h.tls_h && s->h.tls_h(c, c->tls, &c->user, s->h.arg) != 0) {
			if (c->outbound && s->h.connect_h)
				s->h.connect_h(c, EACCES, c->user, s->h.arg);
			om_tcp_conn_close(c);
			return;
		}
		pending_end(c); /* identified: out of the strangers' budget */
		if (c->outbound && !c->connected) {
			c->connected = 1;
			if (s->h.connect_h)
				s->h.connect_h(c, 0, c->user, s->h.arg);
			if (c->closing)
				return;
		}
	}
	while (!c->closing && !c->close_after_write) {
		/* Every record the BIO holds first, then one framing pass:
		 * a message in one-byte records is framed once, not once per
		 * record. */
		enum om_tls_res r = OM_TLS_OK;
		size_t got = 0;
		while (r == OM_TLS_OK) {
			rbuf_grow(c);
			if (c->rlen == c->rcap)
				break; /* full: frame what is here first */
			size_t n = 0, room = c->rcap - c->rlen;
			r = om_tls_sess_read(c->tls, c->rbuf + c->rlen, room, &n);
			if (r != OM_TLS_OK)
				break;
			if (n >= TINY_RECORD) {
				c->tiny_records = 0;
			} else if (n < room && (c->rlen || got) &&
			           !all_crlf(c->rbuf + c->rlen, n) &&
			           ++c->tiny_records > MAX_TINY_RECORDS) {
				if (s->h.frame_error_h)
					s->h.frame_error_h(c,
					                   "TLS records too small (under 64 bytes)",
					                   c->user, s->h.arg);
				conn_close_now(c, OM_TCP_CLOSE_FRAMING);
				return;
			}
			c->rlen += n;
			got += n;
		}
		if (got)
			process(c);
		if (c->closing || c->close_after_write)
			break;
		if (r == OM_TLS_OK) {
			if (!got) {
				/* Full and nothing framed: only when memory ran out
				 * (the framer refuses a message past max_msg). */
				conn_close_now(c, c->rcap < s->lim.max_msg + 4
				                      ? OM_TCP_CLOSE_NOMEM
				                      : OM_TCP_CLOSE_FRAMING);
				return;
			}
			continue;
		}
		tls_flush(c);
		if (c->closing)
			return;
		if (r == OM_TLS_AGAIN)
			break;
		if (r == OM_TLS_CLOSED) {
			om_tcp_conn_close(c);
			return;
		}
		conn_close_now(c, OM_TCP_CLOSE_PEER);
		return;
	}
	if (!c->closing)
		tls_flush(c);
}

static void on_idle(uv_idle_t *h)
{
	struct om_tcp_server *s = h->data;
	while (s->deferred && s->hs_budget) {
		struct om_tcp_conn *c = s->deferred;
		s->deferred = c->dnext;
		c->deferred = 0;
		c->dnext = NULL;
		if (c->closing)
			continue;
		if (uv_read_start((uv_stream_t *)&c->h, on_alloc, on_read) != 0) {
			conn_close_now(c, OM_TCP_CLOSE_LOCAL);
			continue;
		}
		tls_advance(c);
		if (!c->closing)
			arm_timer(c);
	}
	if (!s->deferred)
		uv_idle_stop(&s->idle);
}

/* After the loop turn's I/O: refill the handshake budget, write what
 * every connection was sent during the turn. */
static void on_check(uv_check_t *h)
{
	struct om_tcp_server *s = h->data;
	s->hs_budget = OM_TCP_TLS_BUDGET;
	while (s->flushq)
		flush_out(s->flushq);
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
	struct om_tcp_conn *c = st->data;
	if (c->closing)
		return;
	if (n < 0) {
		/* A peer that gives up during the handshake: a failed one. */
		if (c->tls && c->tls_rx && !om_tls_sess_established(c->tls)) {
			c->srv->st.tls_failed++;
			if (c->srv->h.tls_fail_h)
				c->srv->h.tls_fail_h(c, c->tls, c->user, c->srv->h.arg);
		}
		conn_close_now(c, OM_TCP_CLOSE_PEER);
		return;
	}
	if (n == 0)
		return;
	if (c->close_after_write)
		return; /* we are done with this peer */
	if (c->tls) {
		c->tls_rx = 1;
		c->last_rx = uv_now(c->srv->loop);
		if (om_tls_sess_input(c->tls, b->base, (size_t)n)) {
			conn_close_now(c, OM_TCP_CLOSE_NOMEM);
			return;
		}
		tls_advance(c);
		if (!c->closing)
			arm_timer(c);
		return;
	}
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

/* A limit refuses the connection: reported, then closed unread. */
static void refuse(struct om_tcp_conn *c, enum om_tcp_limit l)
{
	struct om_tcp_server *s = c->srv;
	s->st.over_limit++;
	if (l == OM_TCP_LIMIT_CONNS)
		s->st.over_conns++;
	else if (l == OM_TCP_LIMIT_CONNS_PEER)
		s->st.over_conns_peer++;
	else
		s->st.over_pending++;
	if (s->h.refuse_h) {
		char key[INET6_ADDRSTRLEN + 8];
		om_tcp_peer_key_str(c->pkey, s->lim.v6_prefix, key, sizeof(key));
		s->h.refuse_h((struct sockaddr *)&c->peer, key, l, s->h.arg);
	}
	conn_close_now(c, OM_TCP_CLOSE_LOCAL);
}

static void on_retry(uv_timer_t *t);

static void on_connection(uv_stream_t *l, int status)
{
	struct listener *ls = l->data;
	struct om_tcp_server *s = ls->srv;
	if (status < 0 || s->closing)
		return;
	struct om_tcp_conn *c = om_calloc(1, sizeof(*c));
	if (!c) {
		/* Not accepted: the peer waits in the backlog (libuv stops
		 * watching this listener until uv_accept) and is taken when
		 * memory is back. Nothing is dropped, no handle is borrowed. */
		ls->stalled = 1;
		s->st.accept_nomem++;
		if (!uv_is_active((uv_handle_t *)&s->retry))
			uv_timer_start(&s->retry, on_retry, ACCEPT_RETRY_MS, 0);
		return;
	}
	ls->stalled = 0;
	c->srv = s;
	c->id = ++s->next_id;
	c->tls_listener = ls->tls;
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
	om_tcp_peer_key((struct sockaddr *)&c->peer, s->lim.v6_prefix, c->pkey);
	struct peer *slot = NULL, *p = peer_find(s, c->pkey, &slot);
	if (s->st.conns > s->lim.max_conns) {
		refuse(c, OM_TCP_LIMIT_CONNS);
		return;
	}
	if (p && p->conns >= s->lim.max_conns_peer) {
		refuse(c, OM_TCP_LIMIT_CONNS_PEER);
		return;
	}
	if (!p) {
		/* There is always a free slot: the table has twice max_conns
		 * slots and one peer per open connection at most. */
		p = slot;
		memcpy(p->key, c->pkey, 16);
		p->pending = 0;
	}
	p->conns++;
	c->counted = 1;
	if (s->h.accept_h(c, (struct sockaddr *)&c->peer, &c->user, s->h.arg) != 0) {
		s->st.refused++;
		conn_close_now(c, OM_TCP_CLOSE_LOCAL);
		return;
	}
	c->accepted = 1; /* from here close_h runs whatever happens */
	s->st.accepted++;
	uint64_t now = uv_now(s->loop);
	if (ls->tls) {
		/* Not identified until the handshake ends and tls_h accepts:
		 * the strangers' budget, unless the owner knows the address. */
		if (!c->known) {
			p = peer_find(s, c->pkey, NULL);
			if (p && p->pending >= s->lim.max_pending_peer) {
				refuse(c, OM_TCP_LIMIT_PENDING_PEER);
				return;
			}
			if (s->st.pending >= s->lim.max_pending) {
				refuse(c, OM_TCP_LIMIT_PENDING);
				return;
			}
			if (p)
				p->pending++;
			s->st.pending++;
			c->pending = 1;
		}
		c->hs_deadline = now + s->lim.handshake_ms;
		if (!s->tls || om_tls_sess_new(s->tls, &c->tls) != 0) {
			s->st.refused++;
			conn_close_now(c, OM_TCP_CLOSE_LOCAL);
			return;
		}
	}
	uv_tcp_nodelay(&c->h, 1);
	c->last_rx = now;
	arm_timer(c);
	if (uv_read_start((uv_stream_t *)&c->h, on_alloc, on_read) != 0)
		conn_close_now(c, OM_TCP_CLOSE_LOCAL);
}

static void on_retry(uv_timer_t *t)
{
	struct om_tcp_server *s = t->data;
	for (size_t i = 0; i < s->nls && !s->closing; i++)
		if (s->ls[i]->stalled)
			on_connection((uv_stream_t *)&s->ls[i]->h, 0);
}

/* ------------------------------------------------------------ connecting */

struct conn_req {
	uv_connect_t req;
	struct om_tcp_conn *c;
};

static void on_connect(uv_connect_t *req, int status)
{
	struct conn_req *cr = req->data;
	struct om_tcp_conn *c = cr->c;
	struct om_tcp_server *s = c->srv;
	om_free(cr);
	if (c->closing)
		return;
	if (status < 0) {
		if (s->h.connect_h)
			s->h.connect_h(c, -status, c->user, s->h.arg);
		conn_close_now(c, OM_TCP_CLOSE_PEER);
		return;
	}
	int len = sizeof(c->local);
	uv_tcp_getsockname(&c->h, (struct sockaddr *)&c->local, &len);
	uv_tcp_nodelay(&c->h, 1);
	c->last_rx = uv_now(s->loop);
	if (!c->tls)
		c->hs_deadline = 0; /* connected: only TLS still has a handshake */
	if (uv_read_start((uv_stream_t *)&c->h, on_alloc, on_read) != 0) {
		if (s->h.connect_h)
			s->h.connect_h(c, EIO, c->user, s->h.arg);
		conn_close_now(c, OM_TCP_CLOSE_LOCAL);
		return;
	}
	arm_timer(c);
	if (c->tls) {
		/* Our ClientHello goes now; the rest comes with the reads. */
		tls_advance(c);
		return;
	}
	c->connected = 1;
	if (s->h.connect_h)
		s->h.connect_h(c, 0, c->user, s->h.arg);
}

int om_tcp_server_connect(struct om_tcp_server *s, const struct sockaddr *addr,
                          struct om_tls_ctx *tls, const char *tls_name, void *user, uint64_t *id)
{
	if (s->closing)
		return EINVAL;
	if (s->st.conns >= s->lim.max_conns)
		return EMFILE;
	struct om_tcp_conn *c = om_calloc(1, sizeof(*c));
	struct conn_req *cr = om_calloc(1, sizeof(*cr));
	if (!c || !cr) {
		om_free(c);
		om_free(cr);
		return ENOMEM;
	}
	if (tls && om_tls_client_sess_new(tls, tls_name, &c->tls) != 0) {
		om_free(c);
		om_free(cr);
		return ENOMEM;
	}
	c->srv = s;
	c->id = ++s->next_id;
	c->user = user;
	c->outbound = 1;
	c->known = 1;
	memcpy(&c->peer, addr,
	       addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
	                                   : sizeof(struct sockaddr_in));
	om_sockaddr_str(addr, c->peer_str, sizeof(c->peer_str));
	uv_tcp_init(s->loop, &c->h);
	uv_timer_init(s->loop, &c->timer);
	c->h.data = c->timer.data = c;
	c->handles_open = 2;
	c->next = s->conns;
	if (s->conns)
		s->conns->prev = c;
	s->conns = c;
	s->st.conns++;
	c->accepted = 1; /* close_h runs for it, whatever happens */
	cr->c = c;
	cr->req.data = cr;
	/* The handshake (and the connect itself) must end in time. */
	c->hs_deadline = uv_now(s->loop) + s->lim.handshake_ms;
	c->last_rx = uv_now(s->loop);
	int rc = uv_tcp_connect(&cr->req, &c->h, addr, on_connect);
	if (rc) {
		om_free(cr);
		c->accepted = 0; /* the caller hears the error, not close_h */
		conn_close_now(c, OM_TCP_CLOSE_LOCAL);
		return -rc;
	}
	arm_timer(c);
	*id = c->id;
	return 0;
}

bool om_tcp_conn_outbound(const struct om_tcp_conn *c)
{
	return c->outbound != 0;
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
	if (s->lim.max_conns == 0)
		s->lim.max_conns = 1;
	if (s->lim.v6_prefix > 128)
		s->lim.v6_prefix = 128;
	size_t cap = 16;
	while (cap < 2 * s->lim.max_conns + 2)
		cap *= 2;
	s->peers = om_calloc(cap, sizeof(*s->peers));
	if (!s->peers) {
		om_free(s);
		return ENOMEM;
	}
	s->peer_mask = cap - 1;
	if (getrandom(&s->peer_seed, sizeof(s->peer_seed), GRND_NONBLOCK) !=
	    (ssize_t)sizeof(s->peer_seed))
		s->peer_seed = (uint64_t)(uintptr_t)s ^ uv_hrtime();
	s->hs_budget = OM_TCP_TLS_BUDGET;
	uv_check_init(loop, &s->check);
	uv_idle_init(loop, &s->idle);
	uv_timer_init(loop, &s->retry);
	s->check.data = s->idle.data = s->retry.data = s;
	uv_check_start(&s->check, on_check);
	uv_unref((uv_handle_t *)&s->check);
	uv_unref((uv_handle_t *)&s->idle);
	uv_unref((uv_handle_t *)&s->retry);
	*out = s;
	return 0;
}

static void aux_closed(uv_handle_t *h)
{
	struct om_tcp_server *s = h->data;
	s->pending_closes--;
	server_maybe_free(s);
}

void om_tcp_server_set_tls(struct om_tcp_server *s, struct om_tls_ctx *ctx)
{
	struct om_tls_ctx *old = s->tls;
	s->tls = om_tls_ctx_ref(ctx);
	om_tls_ctx_free(old);
}

static void listener_closed(uv_handle_t *h)
{
	struct listener *l = h->data;
	struct om_tcp_server *s = l->srv;
	s->pending_closes--;
	om_free(l);
	server_maybe_free(s);
}

static int listen_on(struct om_tcp_server *s, const char *host, uint16_t port, int tls)
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
	l->tls = tls;
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

int om_tcp_server_listen(struct om_tcp_server *s, const char *host, uint16_t port)
{
	return listen_on(s, host, port, 0);
}

int om_tcp_server_listen_tls(struct om_tcp_server *s, const char *host, uint16_t port)
{
	return listen_on(s, host, port, 1);
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
	om_tls_ctx_free(s->tls);
	s->tls = NULL;
	s->pending_closes += 3;
	uv_close((uv_handle_t *)&s->check, aux_closed);
	uv_close((uv_handle_t *)&s->idle, aux_closed);
	uv_close((uv_handle_t *)&s->retry, aux_closed);
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

void om_tcp_conn_set_known(struct om_tcp_conn *c)
{
	c->known = 1;
}

struct om_tls_sess *om_tcp_conn_tls(const struct om_tcp_conn *c)
{
	return c->tls;
}

bool om_tcp_conn_tls_listener(const struct om_tcp_conn *c)
{
	return c->tls_listener;
}
