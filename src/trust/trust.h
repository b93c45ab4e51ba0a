/* trust.h — flows and the outbound rule (DESIGN.md "Flows").
 *
 * A flow is a connection a trusted gateway opened to us (or we to it): the
 * table is keyed by connection id and remembers the gateway, the peer and
 * whether the gateway's Via carried ;alias (RFC 5923), so in-dialog requests
 * can go back over it.
 *
 * om_trust_outbound() is the ONE function every request openum sends must
 * go through: it picks an open flow of the gateway, or else the gateway's
 * CONFIGURED address, port and transport (with the TLS name to verify). A
 * host taken from a message (Contact, Record-Route, Via) is never a
 * destination: it is only checked, and a host that is not one of the
 * gateway's own is refused (EPERM), so no peer can make openum connect
 * anywhere.
 *
 * Flows never downgrade: a flow is used only when its transport is at
 * least the gateway's configured one (a mutual-TLS flow serves a TCP
 * gateway, a TCP flow never serves a TLS gateway), and ;alias (RFC 5923
 * §5) is honoured only on a mutual-TLS flow — the only kind whose peer is
 * authenticated — and only for a request openum accepted (the caller
 * decides that: app/sipd.c marks it after a 1xx/2xx answer). */
#ifndef OM_TRUST_TRUST_H
#define OM_TRUST_TRUST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "directory/directory.h"

enum om_flow_transport { OM_FLOW_TCP, OM_FLOW_TLS };

struct om_flow {
	uint64_t conn_id;
	int64_t gateway_id;
	struct sockaddr_storage peer;
	enum om_flow_transport transport;
	bool alias;
};

struct om_flow_table;

int om_flow_table_new(struct om_flow_table **out);
void om_flow_table_free(struct om_flow_table *t);
/* 0, EEXIST (conn id known) or ENOMEM. */
int om_flow_add(struct om_flow_table *t, uint64_t conn_id, int64_t gateway_id,
                const struct sockaddr *peer, enum om_flow_transport tr);
void om_flow_remove(struct om_flow_table *t, uint64_t conn_id);
/* Marks the flow as one the gateway asked to be reused for requests to it
 * (RFC 5923 ;alias). Only a TLS flow may carry it: 0, EPERM (a TCP flow:
 * nothing changes) or ENOENT (no such flow). */
int om_flow_set_alias(struct om_flow_table *t, uint64_t conn_id, bool alias);
void om_flow_set_gateway(struct om_flow_table *t, uint64_t conn_id, int64_t gateway_id);
const struct om_flow *om_flow_get(const struct om_flow_table *t, uint64_t conn_id);
size_t om_flow_count(const struct om_flow_table *t);
/* Flows marked ;alias (for status). */
size_t om_flow_alias_count(const struct om_flow_table *t);

struct om_outbound {
	bool use_flow; /* true: send over conn_id */
	uint64_t conn_id;
	struct sockaddr_storage addr; /* otherwise: connect here */
	enum om_flow_transport transport;
	char tls_name[OM_DIR_HOST_MAX + 1]; /* verify the server certificate against it */
};

/* Where may a request to gateway `gateway_id` go? An open flow of the
 * gateway whose transport is at least the gateway's configured transport
 * (an ;alias one first), else the configured address. `msg_host` (may be
 * NULL) is a host a message asked for (e.g. the Contact of a dialog): it
 * must be one of the gateway's configured hosts (binary IP compare, or the
 * FQDN case-insensitively), else EPERM. ENOENT: no such trusted gateway;
 * EHOSTUNREACH: no flow and no usable configured address (an FQDN not
 * resolved yet). */
int om_trust_outbound(const struct om_dir_snapshot *snap, const struct om_flow_table *flows,
                      int64_t gateway_id, const char *msg_host, struct om_outbound *out);

#endif
