/* resolve.c — c-ares lookups of gateway FQDNs, with TTLs.
 *
 * The lookups run synchronously (a select loop over c-ares's sockets,
 * bounded by timeout_ms) while a new snapshot is prepared aside: at start,
 * on reload and when the smallest TTL runs out. All names are asked at
 * once, so the wait is one round trip, not one per name. */
#include "app/resolve.h"
#include "core/alloc.h"
#include "core/log.h"

#include <ares.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <string.h>
#include <sys/select.h>
#include <time.h>

#define MAX_NAMES 256
#define MAX_IPS   16

struct lookup {
	int done;
	int status;
	uint8_t ips[MAX_IPS][16];
	size_t n;
	int ttl;
};

static void on_result(void *arg, int status, int timeouts, struct ares_addrinfo *res)
{
	struct lookup *l = arg;
	l->done = 1;
	l->status = status;
	l->ttl = -1;
	if (status == ARES_SUCCESS && res) {
		for (struct ares_addrinfo_node *n = res->nodes; n && l->n < MAX_IPS;
		     n = n->ai_next) {
			uint8_t *ip = l->ips[l->n];
			memset(ip, 0, 16);
			if (n->ai_family == AF_INET) {
				ip[10] = ip[11] = 0xff;
				memcpy(ip + 12, &((struct sockaddr_in *)n->ai_addr)->sin_addr, 4);
			} else if (n->ai_family == AF_INET6) {
				memcpy(ip, &((struct sockaddr_in6 *)n->ai_addr)->sin6_addr, 16);
			} else {
				continue;
			}
			l->n++;
			if (l->ttl < 0 || n->ai_ttl < l->ttl)
				l->ttl = n->ai_ttl;
		}
	}
	if (res)
		ares_freeaddrinfo(res);
}

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The last good answer per name, for DNS failures (bounded; the control
 * thread is the only user). */
static struct cached {
	char name[256];
	uint8_t ips[MAX_IPS][16];
	size_t n;
} cache[MAX_NAMES];
static size_t ncache;

static struct cached *cache_find(const char *name, int create)
{
	for (size_t i = 0; i < ncache; i++)
		if (!strcasecmp(cache[i].name, name))
			return &cache[i];
	if (!create || ncache == MAX_NAMES || strlen(name) >= sizeof(cache[0].name))
		return NULL;
	struct cached *c = &cache[ncache++];
	snprintf(c->name, sizeof(c->name), "%s", name);
	c->n = 0;
	return c;
}

size_t om_resolve_snapshot(struct om_dir_snapshot *snap, const char *servers, int timeout_ms,
                           uint64_t *next_ms)
{
	static int lib_ready;
	size_t count = om_dir_snapshot_fqdn_count(snap), failed = 0;
	struct lookup *ls = NULL;
	ares_channel ch = NULL;
	struct ares_options opt;
	int min_ttl = -1;

	*next_ms = 0;
	if (count == 0)
		return 0;
	if (count > MAX_NAMES)
		count = MAX_NAMES;
	if (!lib_ready) {
		if (ares_library_init(ARES_LIB_INIT_ALL) != ARES_SUCCESS)
			return count;
		lib_ready = 1;
	}
	memset(&opt, 0, sizeof(opt));
	opt.timeout = timeout_ms / 2 > 0 ? timeout_ms / 2 : 1;
	opt.tries = 2;
	if (ares_init_options(&ch, &opt, ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES) != ARES_SUCCESS)
		return count;
	if (servers && *servers && ares_set_servers_ports_csv(ch, servers) != ARES_SUCCESS) {
		om_log(OM_LOG_ERROR, "bad dns_servers", "value", servers, NULL);
		ares_destroy(ch);
		return count;
	}
	ls = om_calloc(count, sizeof(*ls));
	if (!ls) {
		ares_destroy(ch);
		return count;
	}
	struct ares_addrinfo_hints hints;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	for (size_t i = 0; i < count; i++) {
		const struct om_dir_gateway *gw;
		ares_getaddrinfo(ch, om_dir_snapshot_fqdn_at(snap, i, &gw), NULL, &hints, on_result,
		                 &ls[i]);
	}
	int64_t deadline = mono_ms() + timeout_ms;
	for (;;) {
		fd_set r, w;
		FD_ZERO(&r);
		FD_ZERO(&w);
		int nfds = ares_fds(ch, &r, &w);
		if (nfds == 0)
			break;
		int64_t left = deadline - mono_ms();
		if (left <= 0)
			break;
		struct timeval tv = { left / 1000, (left % 1000) * 1000 }, *tvp;
		tvp = ares_timeout(ch, &tv, &tv);
		select(nfds, &r, &w, NULL, tvp);
		ares_process(ch, &r, &w);
	}
	ares_destroy(ch); /* completes what is still pending with ARES_EDESTRUCTION */
	for (size_t i = 0; i < count; i++) {
		const struct om_dir_gateway *gw;
		const char *name = om_dir_snapshot_fqdn_at(snap, i, &gw);
		if (ls[i].done && ls[i].status == ARES_SUCCESS && ls[i].n) {
			om_dir_snapshot_add_resolved(snap, i, (const uint8_t(*)[16])ls[i].ips,
			                             ls[i].n);
			struct cached *c = cache_find(name, 1);
			if (c) {
				memcpy(c->ips, ls[i].ips, sizeof(c->ips));
				c->n = ls[i].n;
			}
			int ttl = ls[i].ttl < 0 ? 0 : ls[i].ttl;
			if (min_ttl < 0 || ttl < min_ttl)
				min_ttl = ttl;
			char addr[INET6_ADDRSTRLEN], ttls[16];
			inet_ntop(AF_INET6, ls[i].ips[0], addr, sizeof(addr));
			snprintf(ttls, sizeof(ttls), "%d", ttl);
			om_log(OM_LOG_DEBUG, "gateway name resolved", "gateway", gw->name, "name",
			       name, "address", addr, "ttl", ttls, NULL);
			continue;
		}
		failed++;
		struct cached *c = cache_find(name, 0);
		size_t n = c ? c->n : 0;
		if (n)
			om_dir_snapshot_add_resolved(snap, i, (const uint8_t(*)[16])c->ips, n);
		om_log(OM_LOG_WARNING, "cannot resolve a gateway's name", "gateway", gw->name,
		       "name", name, "error", ls[i].done ? ares_strerror(ls[i].status) : "timeout",
		       "kept", n ? "previous addresses" : "none", NULL);
		if (min_ttl < 0 || min_ttl > 30)
			min_ttl = 30; /* try again soon */
	}
	om_free(ls);
	if (min_ttl < 5)
		min_ttl = 5;
	if (min_ttl > 3600)
		min_ttl = 3600;
	*next_ms = (uint64_t)min_ttl * 1000;
	return failed;
}
