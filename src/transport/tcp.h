/* tcp.h — SIP over TCP and TLS (RFC 3261 §18, §26.2): listeners,
 * connections, stream framing, keep-alives, and every bound a hostile peer
 * could push against.
 *
 * The transport knows nothing of trust or SIP semantics: the owner decides
 * at accept time whether a peer may talk at all (accept_h: an untrusted
 * peer is closed before a byte is read), gets each framed message through
 * msg_h, and sends through om_tcp_conn_send. Bounds:
 *   - connections in total, and per peer — an IPv4 address or an IPv6
 *     prefix of v6_prefix bits (one host usually owns a whole /64);
 *   - TLS connections not yet identified (handshake not finished or not
 *     yet accepted by tls_h) have their own budget, in all (max_pending,
 *     well under max_conns: the rest is kept for identified peers) and per
 *     peer, and their own deadline (handshake_ms from accept); a peer the
 *     owner marked known at accept (om_tcp_conn_set_known: a gateway's
 *     address) is not counted against the strangers' budget;
 *   - every refusal by a limit is reported (refuse_h) for a rate-limited
 *     event;
 *   - message size (the framing helper's `max`; beyond: framing error);
 *   - an idle connection is closed after idle_ms without a byte;
 *   - a message must be complete within partial_ms of its own first byte
 *     (a one-byte-a-second sender is cut off; a pipelining peer is not);
 *   - bytes queued for a peer that does not read are bounded
 *     (write_queue_max): past it the connection is closed.
 * Framing costs time linear in the bytes received (om_sip_framer_next keeps
 * its search position and the message length between reads; TLS records
 * are drained before framing). Out of memory at accept leaves the peer in
 * the listen backlog and retries shortly: no connection is dropped for it.
 *
 * TLS listeners (om_tcp_server_listen_tls) put a TLS session over memory
 * BIOs between the socket and the framing: raw bytes in, plaintext into the
 * framing, sends encrypted. The handshake steps run per loop turn are
 * bounded (a reconnect storm waits a turn instead of stalling timers).
 * tls_h decides, after the handshake, whether the peer may talk; tls_fail_h
 * hears why a handshake failed. Objects follow libuv's rule: closed, then
 * freed in the close callback. */
#ifndef OM_TRANSPORT_TCP_H
#define OM_TRANSPORT_TCP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "tls/tls.h"

struct om_tcp_limits {
	size_t max_conns;        /* all connections (default 1024) */
	size_t max_conns_peer;   /* per peer (default 64) */
	size_t max_pending;      /* TLS connections not yet identified (default 128) */
	size_t max_pending_peer; /* of them per peer (default 8) */
	unsigned v6_prefix;      /* bits of an IPv6 address that make one peer (64) */
	size_t max_msg;          /* one SIP message (default 64 KiB) */
	uint64_t idle_ms;        /* no byte for this long: close (default 300 s) */
	uint64_t partial_ms;     /* a message must complete within (default 10 s) */
	uint64_t handshake_ms;   /* a TLS handshake must end within (default 5 s) */
	size_t write_queue_max;  /* bytes queued to one peer (default 256 KiB) */
};

void om_tcp_limits_default(struct om_tcp_limits *l);

struct om_tcp_server;
struct om_tcp_conn;

enum om_tcp_close_reason {
	OM_TCP_CLOSE_PEER,     /* the peer closed or reset */
	OM_TCP_CLOSE_LOCAL,    /* we closed it (om_tcp_conn_close, shutdown) */
	OM_TCP_CLOSE_IDLE,     /* idle_ms without a byte */
	OM_TCP_CLOSE_PARTIAL,  /* message not complete within partial_ms */
	OM_TCP_CLOSE_FRAMING,  /* framing lost (bad Content-Length, too big) */
	OM_TCP_CLOSE_OVERFLOW, /* the peer does not read what we send */
	OM_TCP_CLOSE_NOMEM,
	OM_TCP_CLOSE_HANDSHAKE, /* TLS handshake not finished within handshake_ms */
};

/* The limit that refused a connection at accept. */
enum om_tcp_limit {
	OM_TCP_LIMIT_CONNS,        /* max_conns */
	OM_TCP_LIMIT_CONNS_PEER,   /* max_conns_peer */
	OM_TCP_LIMIT_PENDING,      /* max_pending */
	OM_TCP_LIMIT_PENDING_PEER, /* max_pending_peer */
};
const char *om_tcp_limit_str(enum om_tcp_limit l);
const char *om_tcp_close_reason_str(enum om_tcp_close_reason r);

struct om_tcp_handlers {
	/* A new peer. Return 0 to accept (and set *user), nonzero to close it
	 * at once without reading. */
	int (*accept_h)(struct om_tcp_conn *c, const struct sockaddr *peer, void **user, void *arg);
	/* One complete message (bytes valid during the call only). */
	void (*msg_h)(struct om_tcp_conn *c, const char *msg, size_t len, void *user, void *arg);
	/* Framing lost; the connection is being closed (reason: a static
	 * text, for the log). */
	void (*frame_error_h)(struct om_tcp_conn *c, const char *reason, void *user, void *arg);
	/* The connection is gone (after accept_h accepted it). */
	void (*close_h)(struct om_tcp_conn *c, enum om_tcp_close_reason why, void *user, void *arg);
	/* TLS only: the handshake finished. Return 0 to let the peer talk
	 * (and set *user), nonzero to close (close_notify sent). */
	int (*tls_h)(struct om_tcp_conn *c, struct om_tls_sess *t, void **user, void *arg);
	/* TLS only: the handshake failed (the alert is sent, then the
	 * connection is closed; close_h follows). */
	void (*tls_fail_h)(struct om_tcp_conn *c, struct om_tls_sess *t, void *user, void *arg);
	/* A limit refused a new connection (it is closed at once, nothing
	 * read). `peer_key` names the peer as counted: "192.0.2.1" or
	 * "2001:db8:1:2::/64". May be NULL. */
	void (*refuse_h)(const struct sockaddr *peer, const char *peer_key, enum om_tcp_limit l,
	                 void *arg);
	/* A connection of om_tcp_server_connect is usable (status 0: TCP
	 * connected, TLS handshake done and accepted by tls_h) or failed
	 * (a positive errno; close_h follows). May be NULL. */
	void (*connect_h)(struct om_tcp_conn *c, int status, void *user, void *arg);
	void *arg;
};

struct om_tcp_stats {
	size_t conns;
	uint64_t accepted;
	uint64_t refused;         /* by accept_h */
	uint64_t over_limit;      /* any limit below */
	uint64_t over_conns;      /* max_conns */
	uint64_t over_conns_peer; /* max_conns_peer */
	uint64_t over_pending;    /* max_pending, max_pending_peer */
	size_t pending;           /* TLS connections not yet identified, now */
	uint64_t accept_nomem;    /* accepts put off for lack of memory */
	uint64_t messages;
	uint64_t keepalives; /* CRLF CRLF pings answered */
	uint64_t closed_idle, closed_partial, closed_framing, closed_overflow, closed_handshake;
	uint64_t tls_handshakes; /* completed */
	uint64_t tls_failed;     /* handshakes that failed */
	uint64_t tls_deferred;   /* handshake steps put off to the next loop turn */
	uint64_t writes;         /* write calls to sockets (responses are coalesced) */
};

/* Handshake steps run per loop turn at most. */
#define OM_TCP_TLS_BUDGET 32

int om_tcp_server_new(uv_loop_t *loop, const struct om_tcp_limits *limits,
                      const struct om_tcp_handlers *h, struct om_tcp_server **out);
/* Listen on a numeric host ("0.0.0.0", "::1") and port. 0 or errno. */
int om_tcp_server_listen(struct om_tcp_server *s, const char *host, uint16_t port);
/* A TLS listener: needs a context (om_tcp_server_set_tls) before peers
 * come; without one they are closed at accept. */
int om_tcp_server_listen_tls(struct om_tcp_server *s, const char *host, uint16_t port);
/* The context for new handshakes (a reference is taken, the previous one
 * dropped; open sessions keep the one they started with). */
void om_tcp_server_set_tls(struct om_tcp_server *s, struct om_tls_ctx *ctx);
/* The port of listener i (for port 0 in tests), in the order they were
 * opened, TCP and TLS alike. */
int om_tcp_server_port(struct om_tcp_server *s, size_t i);
/* Closes listeners and every connection; freed in close callbacks. */
void om_tcp_server_close(struct om_tcp_server *s);
void om_tcp_server_stats(const struct om_tcp_server *s, struct om_tcp_stats *st);
/* Calls fn for every open, accepted connection (reload re-checks trust). */
void om_tcp_server_foreach(struct om_tcp_server *s,
                           void (*fn)(struct om_tcp_conn *c, void *user, void *arg), void *arg);

/* Opens a connection to addr for requests we send (RFC 3261 §18.1.1): TLS
 * when `tls` is a client context (om_tls_client_ctx_new), with `tls_name`
 * as the server name (SNI), else TCP. *id is its id at once; `user` its
 * user pointer. It then behaves like an accepted connection (framing,
 * msg_h, limits, close_h), tls_h decides about the server's certificate,
 * and connect_h reports when it is usable or failed. Bytes sent before
 * connect_h(0) fail: keep them until then. 0, ENOMEM, EMFILE (max_conns
 * reached), or the errno of connect(2). */
int om_tcp_server_connect(struct om_tcp_server *s, const struct sockaddr *addr,
                          struct om_tls_ctx *tls, const char *tls_name, void *user, uint64_t *id);
/* True for a connection of om_tcp_server_connect. */
bool om_tcp_conn_outbound(const struct om_tcp_conn *c);

/* Queues bytes for the peer (copied). Everything sent to a connection
 * during one loop turn goes out in one write (one SSL_write over TLS) when
 * the turn's I/O is done. ENOBUFS when the queue limit would be passed:
 * the connection is then closed. 0 or errno. */
int om_tcp_conn_send(struct om_tcp_conn *c, const void *data, size_t len);
/* Closes after the queued bytes are written. */
void om_tcp_conn_close(struct om_tcp_conn *c);
/* Closes now: what this turn sent is written as far as the socket takes
 * it at once; bytes already queued behind a full socket are dropped. */
void om_tcp_conn_abort(struct om_tcp_conn *c);
bool om_tcp_conn_closing(const struct om_tcp_conn *c);
const struct sockaddr *om_tcp_conn_peer(const struct om_tcp_conn *c);
const struct sockaddr *om_tcp_conn_local(const struct om_tcp_conn *c);
/* "192.0.2.1:5060" / "[2001:db8::1]:5060" */
const char *om_tcp_conn_peer_str(const struct om_tcp_conn *c);
uint64_t om_tcp_conn_id(const struct om_tcp_conn *c);
void om_tcp_conn_set_user(struct om_tcp_conn *c, void *user);
/* From accept_h of a TLS listener: the peer's address is a known one (a
 * gateway's), so its handshake is not counted against the budget of
 * unidentified connections (it still counts against max_conns_peer). */
void om_tcp_conn_set_known(struct om_tcp_conn *c);
/* The TLS session of a connection of a TLS listener, NULL for plain TCP
 * (and in accept_h, before the session exists). */
struct om_tls_sess *om_tcp_conn_tls(const struct om_tcp_conn *c);
/* Whether the connection came to a TLS listener (valid in accept_h). */
bool om_tcp_conn_tls_listener(const struct om_tcp_conn *c);

/* Text form of a socket address with port. */
void om_sockaddr_str(const struct sockaddr *sa, char *out, size_t len);
/* The key a peer is counted under: the 16-byte (IPv4-mapped) address with
 * an IPv6 address cut to `v6_prefix` bits; and its text ("192.0.2.1",
 * "2001:db8:1:2::/64"). */
void om_tcp_peer_key(const struct sockaddr *sa, unsigned v6_prefix, uint8_t key[16]);
void om_tcp_peer_key_str(const uint8_t key[16], unsigned v6_prefix, char *out, size_t len);

#endif
