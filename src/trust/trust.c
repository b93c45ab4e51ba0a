/* trust.c — flow table and the outbound rule. The table is small (one
 * entry per connection, bounded by the transport's connection cap), so a
 * flat array with linear search is the simplest correct structure. */
#include "trust/trust.h"
#include "core/alloc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

struct om_flow_table {
	struct om_flow *v;
	size_t n, cap;
};

int om_flow_table_new(struct om_flow_table **out)
{
	struct om_flow_table *t = om_calloc(1, sizeof(*t));
	if (!t)
		return ENOMEM;
	*out = t;
	return 0;
}

void om_flow_table_free(struct om_flow_table *t)
{
	if (!t)
		return;
	om_free(t->v);
	om_free(t);
}

static struct om_flow *find(const struct om_flow_table *t, uint64_t id)
{
	for (size_t i = 0; i < t->n; i++)
		if (t->v[i].conn_id == id)
			return &t->v[i];
	return NULL;
}

int om_flow_add(struct om_flow_table *t, uint64_t conn_id, int64_t gateway_id,
                const struct sockaddr *peer, enum om_flow_transport tr)
{
	if (find(t, conn_id))
		return EEXIST;
	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 16;
		struct om_flow *v = om_realloc(t->v, cap * sizeof(*v));
		if (!v)
			return ENOMEM;
		t->v = v;
		t->cap = cap;
	}
	struct om_flow *f = &t->v[t->n++];
	memset(f, 0, sizeof(*f));
	f->conn_id = conn_id;
	f->gateway_id = gateway_id;
	f->transport = tr;
	memcpy(&f->peer, peer,
	       peer->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
	                                   : sizeof(struct sockaddr_in));
	return 0;
}

void om_flow_remove(struct om_flow_table *t, uint64_t conn_id)
{
	struct om_flow *f = find(t, conn_id);
	if (!f)
		return;
	*f = t->v[--t->n];
}

int om_flow_set_alias(struct om_flow_table *t, uint64_t conn_id, bool alias)
{
	struct om_flow *f = find(t, conn_id);
	if (!f)
		return ENOENT;
	if (alias && f->transport != OM_FLOW_TLS)
		return EPERM; /* an unauthenticated peer cannot claim a flow */
	f->alias = alias;
	return 0;
}

void om_flow_set_gateway(struct om_flow_table *t, uint64_t conn_id, int64_t gateway_id)
{
	struct om_flow *f = find(t, conn_id);
	if (f)
		f->gateway_id = gateway_id;
}

const struct om_flow *om_flow_get(const struct om_flow_table *t, uint64_t conn_id)
{
	return find(t, conn_id);
}

size_t om_flow_count(const struct om_flow_table *t)
{
	return t->n;
}

size_t om_flow_alias_count(const struct om_flow_table *t)
{
	size_t n = 0;
	for (size_t i = 0; i < t->n; i++)
		n += t->v[i].alias;
	return n;
}

static const struct om_dir_gateway *trusted_gateway(const struct om_dir_snapshot *snap, int64_t id)
{
	for (size_t i = 0; i < om_dir_snapshot_gateway_count(snap); i++) {
		const struct om_dir_gateway *g = om_dir_snapshot_gateway_at(snap, i);
		if (g->id == id)
			return g->status == OM_GW_DISABLED ? NULL : g;
	}
	return NULL;
}

/* Is `host` (text from a message) one of the gateway's configured hosts? */
static bool gateway_host(const struct om_dir_gateway *g, const char *host)
{
	struct om_dir_host h;
	if (om_dir_host_parse(host, &h) != 0)
		return false;
	for (size_t i = 0; i < g->nhosts; i++) {
		if (h.is_ip && g->hosts[i].is_ip && !memcmp(h.ip, g->hosts[i].ip, 16))
			return true;
		if (!h.is_ip && !g->hosts[i].is_ip && !strcasecmp(h.name, g->hosts[i].name))
			return true;
	}
	return false;
}

int om_trust_outbound(const struct om_dir_snapshot *snap, const struct om_flow_table *flows,
                      int64_t gateway_id, const char *msg_host, struct om_outbound *out)
{
	const struct om_dir_gateway *g = trusted_gateway(snap, gateway_id);
	if (!g)
		return ENOENT;
	if (msg_host && !gateway_host(g, msg_host))
		return EPERM;
	memset(out, 0, sizeof(*out));
	out->transport = g->transport == OM_TRANSPORT_TLS ? OM_FLOW_TLS : OM_FLOW_TCP;
	snprintf(out->tls_name, sizeof(out->tls_name), "%s", g->tls_name);
	/* An open flow of this gateway, never weaker than its configured
	 * transport, preferring one it marked ;alias. */
	const struct om_flow *best = NULL;
	for (size_t i = 0; flows && i < flows->n; i++) {
		const struct om_flow *f = &flows->v[i];
		if (f->gateway_id != gateway_id)
			continue;
		if (out->transport == OM_FLOW_TLS && f->transport != OM_FLOW_TLS)
			continue;
		if (!best || (f->alias && !best->alias))
			best = f;
	}
	if (best) {
		out->use_flow = true;
		out->conn_id = best->conn_id;
		out->transport = best->transport;
		memcpy(&out->addr, &best->peer, sizeof(out->addr));
		return 0;
	}
	/* Otherwise the configured address: an IP of the gateway (an FQDN's
	 * resolved addresses are the resolver's business, not a message's). */
	for (size_t i = 0; i < g->nhosts; i++) {
		if (!g->hosts[i].is_ip)
			continue;
		const uint8_t *ip = g->hosts[i].ip;
		static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
		if (!memcmp(ip, mapped, 12)) {
			struct sockaddr_in *a = (struct sockaddr_in *)&out->addr;
			a->sin_family = AF_INET;
			memcpy(&a->sin_addr, ip + 12, 4);
			a->sin_port = htons((uint16_t)g->port);
		} else {
			struct sockaddr_in6 *a = (struct sockaddr_in6 *)&out->addr;
			a->sin6_family = AF_INET6;
			memcpy(&a->sin6_addr, ip, 16);
			a->sin6_port = htons((uint16_t)g->port);
		}
		return 0;
	}
	return EHOSTUNREACH;
}
