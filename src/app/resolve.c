/* resolve.c — c-ares lookups of gateway FQDNs on the libuv loop, with TTLs
 * (RFC 1035 §3.2.1: an answer may be cached for its TTL).
 *
 * c-ares tells us which sockets it wants watched (ARES_OPT_SOCK_STATE_CB);
 * each gets a uv_poll handle, readiness goes back through ares_process_fd,
 * and c-ares's own retry timeouts run on one uv_timer. A round asks every
 * name at once (the wait is one round trip, not one per name) and is cut
 * at its deadline with ares_cancel. The end of a round is reported from a
 * zero-delay timer, outside c-ares's callbacks. Handles are closed, then
 * freed in their close callbacks; the resolver is freed with its last. */
#include "app/resolve.h"
#include "core/alloc.h"
#include "core/log.h"

#include <ares.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define MAX_IPS 16

/* The last good answer of a name. */
struct entry {
	char *name;
	uint8_t ips[MAX_IPS][16];
	size_t n;
	int ttl;    /* of the last good answer, s */
	int failed; /* the last round's lookup failed */
	int live;   /* asked in the last round (else dropped at the next) */
};

struct lookup {
	struct om_resolver *r;
	size_t entry;
};

struct poller {
	uv_poll_t h;
	struct om_resolver *r;
	ares_socket_t fd;
	struct poller *next;
};

struct om_resolver {
	uv_loop_t *loop;
	om_resolver_done_h done_h;
	void *arg;
	ares_channel ch;
	char servers[256];
	int servers_dirty;
	uv_timer_t ares_timer; /* c-ares's retry timeouts */
	uv_timer_t deadline;   /* the round's time is up */
	uv_timer_t finish;     /* reports the end of a round outside c-ares */
	unsigned handles;      /* open libuv handles (timers and pollers) */
	struct poller *pollers;
	struct entry *e;
	size_t ne, cap;
	struct lookup *lookups;
	size_t outstanding;
	int running;
	int closing;
	char **next_names; /* a round asked for while one was running */
	size_t n_next;
	int next_timeout;
	uint64_t next_ms;
	uint64_t rounds;
};

/* ------------------------------------------------------------ handles */

static void resolver_maybe_free(struct om_resolver *r)
{
	if (!r->closing || r->handles)
		return;
	for (size_t i = 0; i < r->ne; i++)
		om_free(r->e[i].name);
	om_free(r->e);
	om_free(r->lookups);
	for (size_t i = 0; i < r->n_next; i++)
		om_free(r->next_names[i]);
	om_free(r->next_names);
	om_free(r);
}

static void timer_closed(uv_handle_t *h)
{
	struct om_resolver *r = h->data;
	r->handles--;
	resolver_maybe_free(r);
}

static void poller_closed(uv_handle_t *h)
{
	struct poller *p = h->data;
	struct om_resolver *r = p->r;
	om_free(p);
	r->handles--;
	resolver_maybe_free(r);
}

static void arm_ares_timer(struct om_resolver *r);

static void on_poll(uv_poll_t *h, int status, int events)
{
	struct poller *p = h->data;
	struct om_resolver *r = p->r;
	ares_socket_t fd = p->fd;
	/* p may be closed by c-ares's socket callback inside: fd copied */
	if (status < 0)
		ares_process_fd(r->ch, fd, fd); /* let c-ares see the error */
	else
		ares_process_fd(r->ch, events & UV_READABLE ? fd : ARES_SOCKET_BAD,
		                events & UV_WRITABLE ? fd : ARES_SOCKET_BAD);
	arm_ares_timer(r);
}

static void on_sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
	struct om_resolver *r = data;
	struct poller **pp = &r->pollers, *p;
	while (*pp && (*pp)->fd != fd)
		pp = &(*pp)->next;
	p = *pp;
	if (!readable && !writable) {
		if (p) {
			*pp = p->next;
			uv_poll_stop(&p->h);
			uv_close((uv_handle_t *)&p->h, poller_closed);
		}
		return;
	}
	if (!p) {
		p = om_calloc(1, sizeof(*p));
		if (!p || uv_poll_init_socket(r->loop, &p->h, fd) != 0) {
			/* unwatched: the round deadline still ends it */
			om_free(p);
			om_log(OM_LOG_ERROR, "DNS: cannot watch a socket", NULL);
			return;
		}
		p->r = r;
		p->fd = fd;
		p->h.data = p;
		p->next = r->pollers;
		r->pollers = p;
		r->handles++;
	}
	uv_poll_start(&p->h, (readable ? UV_READABLE : 0) | (writable ? UV_WRITABLE : 0), on_poll);
}

static void on_ares_timer(uv_timer_t *t)
{
	struct om_resolver *r = t->data;
	ares_process_fd(r->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
	arm_ares_timer(r);
}

static void arm_ares_timer(struct om_resolver *r)
{
	struct timeval tv, *tvp;
	if (r->closing || !r->ch)
		return;
	tvp = ares_timeout(r->ch, NULL, &tv);
	if (!tvp) {
		uv_timer_stop(&r->ares_timer);
		return;
	}
	uint64_t ms = (uint64_t)tvp->tv_sec * 1000 + (uint64_t)tvp->tv_usec / 1000 + 1;
	uv_timer_start(&r->ares_timer, on_ares_timer, ms, 0);
}

/* ------------------------------------------------------------- channel */

static int channel_open(struct om_resolver *r, int timeout_ms)
{
	struct ares_options opt;
	memset(&opt, 0, sizeof(opt));
	opt.timeout = timeout_ms / 2 > 0 ? timeout_ms / 2 : 1;
	opt.tries = 2;
	opt.sock_state_cb = on_sock_state;
	opt.sock_state_cb_data = r;
	if (ares_init_options(&r->ch, &opt,
	                      ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_SOCK_STATE_CB) !=
	    ARES_SUCCESS) {
		r->ch = NULL;
		return EIO;
	}
	if (r->servers[0] && ares_set_servers_ports_csv(r->ch, r->servers) != ARES_SUCCESS)
		om_log(OM_LOG_ERROR, "bad dns_servers: the system's resolver is used", "value",
		       r->servers, NULL);
	r->servers_dirty = 0;
	return 0;
}

int om_resolver_new(uv_loop_t *loop, om_resolver_done_h h, void *arg, struct om_resolver **out)
{
	static int lib_ready;
	if (!lib_ready) {
		if (ares_library_init(ARES_LIB_INIT_ALL) != ARES_SUCCESS)
			return EIO;
		lib_ready = 1;
	}
	struct om_resolver *r = om_calloc(1, sizeof(*r));
	if (!r)
		return ENOMEM;
	r->loop = loop;
	r->done_h = h;
	r->arg = arg;
	r->servers_dirty = 1;
	uv_timer_init(loop, &r->ares_timer);
	uv_timer_init(loop, &r->deadline);
	uv_timer_init(loop, &r->finish);
	r->ares_timer.data = r->deadline.data = r->finish.data = r;
	r->handles = 3;
	*out = r;
	return 0;
}

int om_resolver_set_servers(struct om_resolver *r, const char *servers)
{
	if (!servers)
		servers = "";
	if (!strcmp(servers, r->servers) && r->ch)
		return 0;
	snprintf(r->servers, sizeof(r->servers), "%s", servers);
	r->servers_dirty = 1; /* a new channel at the next round */
	return 0;
}

/* --------------------------------------------------------------- cache */

static struct entry *entry_find(struct om_resolver *r, const char *name)
{
	for (size_t i = 0; i < r->ne; i++)
		if (!strcasecmp(r->e[i].name, name))
			return &r->e[i];
	return NULL;
}

/* The entry of name, created when missing; NULL out of memory. */
static struct entry *entry_get(struct om_resolver *r, const char *name)
{
	struct entry *e = entry_find(r, name);
	if (e)
		return e;
	if (r->ne == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 8;
		struct entry *v = om_realloc(r->e, cap * sizeof(*v));
		if (!v)
			return NULL;
		r->e = v;
		r->cap = cap;
	}
	e = &r->e[r->ne];
	memset(e, 0, sizeof(*e));
	e->name = om_strdup(name);
	if (!e->name)
		return NULL;
	r->ne++;
	return e;
}

/* Names no round asks for any more are forgotten. */
static void entries_prune(struct om_resolver *r)
{
	size_t w = 0;
	for (size_t i = 0; i < r->ne; i++) {
		if (r->e[i].live)
			r->e[w++] = r->e[i];
		else
			om_free(r->e[i].name);
	}
	r->ne = w;
}

/* -------------------------------------------------------------- rounds */

static void on_finish(uv_timer_t *t);

static void on_result(void *arg, int status, int timeouts, struct ares_addrinfo *res)
{
	struct lookup *l = arg;
	struct om_resolver *r = l->r;
	struct entry *e = &r->e[l->entry];
	uint8_t ips[MAX_IPS][16];
	size_t n = 0;
	int ttl = -1;
	if (status == ARES_SUCCESS && res) {
		for (struct ares_addrinfo_node *a = res->nodes; a && n < MAX_IPS; a = a->ai_next) {
			uint8_t *ip = ips[n];
			memset(ip, 0, 16);
			if (a->ai_family == AF_INET) {
				ip[10] = ip[11] = 0xff;
				memcpy(ip + 12, &((struct sockaddr_in *)a->ai_addr)->sin_addr, 4);
			} else if (a->ai_family == AF_INET6) {
				memcpy(ip, &((struct sockaddr_in6 *)a->ai_addr)->sin6_addr, 16);
			} else {
				continue;
			}
			n++;
			if (ttl < 0 || a->ai_ttl < ttl)
				ttl = a->ai_ttl;
		}
	}
	if (res)
		ares_freeaddrinfo(res);
	if (status == ARES_EDESTRUCTION || r->closing)
		return; /* the resolver is going away */
	if (n) {
		memcpy(e->ips, ips, sizeof(ips));
		e->n = n;
		e->ttl = ttl < 0 ? 0 : ttl;
		e->failed = 0;
		char addr[INET6_ADDRSTRLEN], ttls[16];
		inet_ntop(AF_INET6, e->ips[0], addr, sizeof(addr));
		snprintf(ttls, sizeof(ttls), "%d", e->ttl);
		om_log(OM_LOG_DEBUG, "gateway name resolved", "name", e->name, "address", addr,
		       "ttl", ttls, NULL);
	} else {
		e->failed = 1;
		om_log(OM_LOG_WARNING, "cannot resolve a gateway's name", "name", e->name, "error",
		       status == ARES_ECANCELLED ? "timeout" : ares_strerror(status), "kept",
		       e->n ? "previous addresses" : "none", NULL);
	}
	if (--r->outstanding == 0)
		uv_timer_start(&r->finish, on_finish, 0, 0);
}

static void round_begin(struct om_resolver *r, char **names, size_t n, int timeout_ms);

static void on_finish(uv_timer_t *t)
{
	struct om_resolver *r = t->data;
	int min_ttl = -1;
	uv_timer_stop(&r->deadline);
	for (size_t i = 0; i < r->ne; i++) {
		struct entry *e = &r->e[i];
		if (!e->live)
			continue;
		int ttl = e->failed ? 30 : e->ttl;
		if (e->failed && e->ttl && e->ttl < ttl)
			ttl = e->ttl;
		if (min_ttl < 0 || ttl < min_ttl)
			min_ttl = ttl;
	}
	if (min_ttl < 5)
		min_ttl = 5;
	if (min_ttl > 3600)
		min_ttl = 3600;
	r->next_ms = (uint64_t)min_ttl * 1000;
	om_free(r->lookups);
	r->lookups = NULL;
	r->running = 0;
	r->rounds++;
	if (r->done_h)
		r->done_h(r, r->arg);
	if (!r->closing && !r->running && r->next_names) {
		char **names = r->next_names;
		size_t n = r->n_next;
		r->next_names = NULL;
		r->n_next = 0;
		round_begin(r, names, n, r->next_timeout);
	}
}

static void on_deadline(uv_timer_t *t)
{
	struct om_resolver *r = t->data;
	/* what is still pending ends with ARES_ECANCELLED: logged, kept */
	if (r->ch && r->outstanding)
		ares_cancel(r->ch);
}

static void free_names(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		om_free(names[i]);
	om_free(names);
}

/* Takes ownership of names. */
static void round_begin(struct om_resolver *r, char **names, size_t n, int timeout_ms)
{
	for (size_t i = 0; i < r->ne; i++)
		r->e[i].live = 0;
	for (size_t i = 0; i < n; i++) {
		struct entry *e = entry_get(r, names[i]);
		if (e)
			e->live = 1;
	}
	entries_prune(r);
	free_names(names, n);
	if (r->servers_dirty || !r->ch) {
		if (r->ch)
			ares_destroy(r->ch);
		r->ch = NULL;
		channel_open(r, timeout_ms);
	}
	r->lookups = om_calloc(r->ne ? r->ne : 1, sizeof(*r->lookups));
	r->running = 1;
	r->outstanding = 0;
	if (!r->ch || !r->lookups) {
		/* nothing can be asked: a failed round, addresses kept */
		for (size_t i = 0; i < r->ne; i++)
			r->e[i].failed = 1;
		om_log(OM_LOG_ERROR, "DNS: cannot start lookups", NULL);
		uv_timer_start(&r->finish, on_finish, 0, 0);
		return;
	}
	struct ares_addrinfo_hints hints;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	r->outstanding = r->ne;
	uv_timer_start(&r->deadline, on_deadline, (uint64_t)timeout_ms, 0);
	for (size_t i = 0; i < r->ne; i++) {
		r->lookups[i] = (struct lookup){ r, i };
		ares_getaddrinfo(r->ch, r->e[i].name, NULL, &hints, on_result, &r->lookups[i]);
	}
	arm_ares_timer(r);
}

size_t om_resolver_start(struct om_resolver *r, const struct om_dir_snapshot *snap, int timeout_ms)
{
	size_t n = om_dir_snapshot_fqdn_count(snap);
	if (n == 0 || r->closing)
		return 0;
	char **names = om_calloc(n, sizeof(*names));
	if (!names)
		return 0;
	for (size_t i = 0; i < n; i++) {
		names[i] = om_strdup(om_dir_snapshot_fqdn_at(snap, i, NULL));
		if (!names[i]) {
			free_names(names, n);
			return 0;
		}
	}
	if (r->running) {
		free_names(r->next_names, r->n_next);
		r->next_names = names;
		r->n_next = n;
		r->next_timeout = timeout_ms;
		return n;
	}
	round_begin(r, names, n, timeout_ms);
	return n;
}

bool om_resolver_busy(const struct om_resolver *r)
{
	return r->running || r->next_names;
}

size_t om_resolver_apply(struct om_resolver *r, struct om_dir_snapshot *snap)
{
	size_t none = 0, n = om_dir_snapshot_fqdn_count(snap);
	for (size_t i = 0; i < n; i++) {
		const struct om_dir_gateway *gw;
		const char *name = om_dir_snapshot_fqdn_at(snap, i, &gw);
		struct entry *e = entry_find(r, name);
		if (!e || !e->n) {
			none++;
			continue;
		}
		if (om_dir_snapshot_add_resolved(snap, i, (const uint8_t(*)[16])e->ips, e->n) ==
		    EEXIST)
			om_log(
			    OM_LOG_WARNING,
			    "a gateway's name resolves to another gateway's address: not used for "
			    "it",
			    "gateway", gw->name, "name", name, NULL);
	}
	return none;
}

uint64_t om_resolver_next_ms(const struct om_resolver *r)
{
	return r->ne ? r->next_ms : 0;
}

uint64_t om_resolver_rounds(const struct om_resolver *r)
{
	return r->rounds;
}

void om_resolver_close(struct om_resolver *r)
{
	if (!r || r->closing)
		return;
	r->closing = 1;
	if (r->ch)
		ares_destroy(r->ch); /* callbacks (EDESTRUCTION), sockets closed */
	r->ch = NULL;
	/* sockets c-ares did not report closed */
	while (r->pollers) {
		struct poller *p = r->pollers;
		r->pollers = p->next;
		uv_poll_stop(&p->h);
		uv_close((uv_handle_t *)&p->h, poller_closed);
	}
	uv_close((uv_handle_t *)&r->ares_timer, timer_closed);
	uv_close((uv_handle_t *)&r->deadline, timer_closed);
	uv_close((uv_handle_t *)&r->finish, timer_closed);
}
