/* tcp.h — SIP over TCP (RFC 3261 §18): listeners, connections, stream
 * framing, keep-alives, and every bound a hostile peer could push against.
 *
 * The transport knows nothing of trust or SIP semantics: the owner decides
 * at accept time whether a peer may talk at all (accept_h: an untrusted
 * peer is closed before a byte is read), gets each framed message through
 * msg_h, and sends through om_tcp_conn_send. Bounds:
 *   - connections in total and per peer address (accept refused beyond);
 *   - message size (the framing helper's `max`; beyond: framing error);
 *   - an idle connection is closed after idle_ms without a byte;
 *   - a message must be complete within partial_ms of its first byte
 *     (a one-byte-a-second sender is cut off);
 *   - bytes queued for a peer that does not read are bounded
 *     (write_queue_max): past it the connection is closed.
 * Objects follow libuv's rule: closed, then freed in the close callback. */
#ifndef OM_TRANSPORT_TCP_H
#define OM_TRANSPORT_TCP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

struct om_tcp_limits {
	size_t max_conns;       /* all connections (default 1024) */
	size_t max_conns_peer;  /* per peer IP address (default 64) */
	size_t max_msg;         /* one SIP message (default 64 KiB) */
	uint64_t idle_ms;       /* no byte for this long: close (default 300 s) */
	uint64_t partial_ms;    /* a message must complete within (default 10 s) */
	size_t write_queue_max; /* bytes queued to one peer (default 256 KiB) */
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
};
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
	void *arg;
};

struct om_tcp_stats {
	size_t conns;
	uint64_t accepted;
	uint64_t refused;    /* by accept_h */
	uint64_t over_limit; /* max_conns / max_conns_peer */
	uint64_t messages;
	uint64_t keepalives; /* CRLF CRLF pings answered */
	uint64_t closed_idle, closed_partial, closed_framing, closed_overflow;
};

int om_tcp_server_new(uv_loop_t *loop, const struct om_tcp_limits *limits,
                      const struct om_tcp_handlers *h, struct om_tcp_server **out);
/* Listen on a numeric host ("0.0.0.0", "::1") and port. 0 or errno. */
int om_tcp_server_listen(struct om_tcp_server *s, const char *host, uint16_t port);
/* The port of listener i (for port 0 in tests). */
int om_tcp_server_port(struct om_tcp_server *s, size_t i);
/* Closes listeners and every connection; freed in close callbacks. */
void om_tcp_server_close(struct om_tcp_server *s);
void om_tcp_server_stats(const struct om_tcp_server *s, struct om_tcp_stats *st);
/* Calls fn for every open, accepted connection (reload re-checks trust). */
void om_tcp_server_foreach(struct om_tcp_server *s,
                           void (*fn)(struct om_tcp_conn *c, void *user, void *arg), void *arg);

/* Queues bytes for the peer (copied). ENOBUFS when the queue limit would be
 * passed: the connection is then closed. 0 or errno. */
int om_tcp_conn_send(struct om_tcp_conn *c, const void *data, size_t len);
/* Closes after the queued bytes are written. */
void om_tcp_conn_close(struct om_tcp_conn *c);
/* Closes now (queued bytes dropped). */
void om_tcp_conn_abort(struct om_tcp_conn *c);
bool om_tcp_conn_closing(const struct om_tcp_conn *c);
const struct sockaddr *om_tcp_conn_peer(const struct om_tcp_conn *c);
const struct sockaddr *om_tcp_conn_local(const struct om_tcp_conn *c);
/* "192.0.2.1:5060" / "[2001:db8::1]:5060" */
const char *om_tcp_conn_peer_str(const struct om_tcp_conn *c);
uint64_t om_tcp_conn_id(const struct om_tcp_conn *c);
void om_tcp_conn_set_user(struct om_tcp_conn *c, void *user);

/* Text form of a socket address with port. */
void om_sockaddr_str(const struct sockaddr *sa, char *out, size_t len);

#endif
