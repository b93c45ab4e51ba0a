/* call_net.c — where the calls' messages go (DESIGN "Flows", RFC 3261
 * §18.2.2, RFC 5923): the transaction stack's one send function.
 *
 *   1. the connection the message is for (a response: the one its request
 *      came on; an in-dialog request: the dialog's latest flow), while open;
 *   2. else whatever om_trust_outbound allows for that gateway: another
 *      open flow of it (never of a lower transport), or
 *   3. a new connection to the gateway's CONFIGURED address and port (TLS:
 *      our certificate, the gateway's TLS name verified) — the bytes wait
 *      in a bounded queue until it is up.
 * No address is ever taken from a message (Contact, Record-Route, Via). */
#include "app/call_int.h"
#include "core/alloc.h"
#include "core/events.h"
#include "core/log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define PENDING_MAX (256 * 1024) /* bytes waiting for one new connection */

struct pending {
	struct pending *next;
	uint64_t conn_id;
	int64_t gw_id;
	size_t len;
	char data[];
};

static bool conn_eq(const struct om_hnode *n, const void *key)
{
	return om_container_of(n, struct conn_ref, node)->id == *(const uint64_t *)key;
}

static uint64_t conn_hash(uint64_t id)
{
	return om_hash_bytes(0, &id, sizeof(id));
}

struct om_tcp_conn *call_net_conn(struct om_calls *cs, uint64_t id)
{
	struct om_hnode *n = om_htab_find(&cs->conns, conn_hash(id), conn_eq, &id);
	if (!n)
		return NULL;
	struct om_tcp_conn *c = om_container_of(n, struct conn_ref, node)->conn;
	return om_tcp_conn_closing(c) ? NULL : c;
}

void om_calls_conn_up(struct om_calls *cs, struct om_tcp_conn *conn)
{
	uint64_t id = om_tcp_conn_id(conn);
	if (!om_htab_find(&cs->conns, conn_hash(id), conn_eq, &id)) {
		struct conn_ref *r = om_calloc(1, sizeof(*r));
		if (!r)
			return; /* the connection still works for what it brings */
		r->id = id;
		r->conn = conn;
		om_htab_add(&cs->conns, &r->node, conn_hash(id));
	}
	/* What waited for this connection goes now, in order. */
	struct pending **pp = &cs->pending;
	while (*pp) {
		struct pending *p = *pp;
		if (p->conn_id != id) {
			pp = &p->next;
			continue;
		}
		*pp = p->next;
		om_tcp_conn_send(conn, p->data, p->len);
		om_free(p);
	}
}

void om_calls_conn_down(struct om_calls *cs, struct om_tcp_conn *conn)
{
	uint64_t id = om_tcp_conn_id(conn);
	struct om_hnode *n = om_htab_find(&cs->conns, conn_hash(id), conn_eq, &id);
	if (n) {
		om_htab_del(&cs->conns, n);
		om_free(om_container_of(n, struct conn_ref, node));
	}
	struct pending **pp = &cs->pending;
	while (*pp) {
		struct pending *p = *pp;
		if (p->conn_id == id) {
			*pp = p->next;
			cs->send_failures++;
			om_free(p);
		} else {
			pp = &p->next;
		}
	}
}

static const char *gw_name(struct om_calls *cs, int64_t id)
{
	size_t n = cs->snap ? om_dir_snapshot_gateway_count(cs->snap) : 0;
	for (size_t i = 0; i < n; i++) {
		const struct om_dir_gateway *gw = om_dir_snapshot_gateway_at(cs->snap, i);
		if (gw->id == id)
			return gw->name;
	}
	return "?";
}

static int queue(struct om_calls *cs, uint64_t conn_id, int64_t gw_id, const char *buf, size_t len)
{
	size_t queued = 0;
	for (struct pending *p = cs->pending; p; p = p->next)
		if (p->conn_id == conn_id)
			queued += p->len;
	if (queued + len > PENDING_MAX)
		return ENOBUFS;
	struct pending *p = om_malloc(sizeof(*p) + len);
	if (!p)
		return ENOMEM;
	p->next = NULL;
	p->conn_id = conn_id;
	p->gw_id = gw_id;
	p->len = len;
	memcpy(p->data, buf, len);
	struct pending **pp = &cs->pending;
	while (*pp)
		pp = &(*pp)->next;
	*pp = p;
	return 0;
}

int call_net_send(const struct om_sip_dest *d, const char *buf, size_t len, void *arg)
{
	struct om_calls *cs = arg;
	struct om_tcp_conn *conn = d->conn_id ? call_net_conn(cs, d->conn_id) : NULL;
	/* A response goes back on its request's connection (§18.2.2); a
	 * request of ours only on a flow of the gateway (a plain-TCP
	 * connection from a TLS gateway is none: never a downgrade). */
	bool response = len > 8 && !memcmp(buf, "SIP/2.0 ", 8);
	if (conn && (response || om_flow_get(cs->env.flows, d->conn_id)))
		return om_tcp_conn_send(conn, buf, len);
	/* The flow is gone: only where the trust rules allow. */
	struct om_outbound ob;
	int rc =
	    cs->snap ? om_trust_outbound(cs->snap, cs->env.flows, d->peer_id, NULL, &ob) : ENOENT;
	if (rc == 0 && ob.use_flow) {
		conn = call_net_conn(cs, ob.conn_id);
		if (conn)
			return om_tcp_conn_send(conn, buf, len);
		rc = EHOSTUNREACH;
	}
	/* A connection being opened to this gateway already? */
	for (struct pending *p = cs->pending; rc == 0 && p; p = p->next)
		if (p->gw_id == d->peer_id)
			return queue(cs, p->conn_id, d->peer_id, buf, len);
	uint64_t id = 0;
	if (rc == 0 && !cs->env.connect_h)
		rc = ENOTSUP;
	if (rc == 0)
		rc = cs->env.connect_h(&ob, d->peer_id, &id, cs->env.arg);
	if (rc == 0)
		rc = queue(cs, id, d->peer_id, buf, len);
	if (rc) {
		const char *name = gw_name(cs, d->peer_id);
		cs->send_failures++;
		om_event(OM_EV_CALL_SEND_FAILED, name, "a request to a gateway could not be sent",
		         "gateway", name, "error", strerror(rc), NULL);
	}
	return rc;
}

void call_net_close(struct om_calls *cs)
{
	while (cs->pending) {
		struct pending *p = cs->pending;
		cs->pending = p->next;
		om_free(p);
	}
	for (size_t i = 0; i < cs->conns.nb; i++) {
		struct om_hnode *n = cs->conns.b[i];
		while (n) {
			struct om_hnode *next = n->next;
			om_free(om_container_of(n, struct conn_ref, node));
			n = next;
		}
		cs->conns.b[i] = NULL;
	}
	cs->conns.n = 0;
}
