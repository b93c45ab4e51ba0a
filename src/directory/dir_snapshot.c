/* dir_snapshot.c — the immutable view of the directory the server works
 * from (DESIGN.md "Reload is validate-then-swap").
 *
 * Built in one read transaction (WAL: writers go on meanwhile and the view
 * stays consistent), then checked against the same rules the store
 * enforces, so that a store edited behind openum's back cannot make two
 * gateways claim one peer. Lookups are binary searches over sorted
 * indexes: peer address (16-byte IPv6 / IPv4-mapped form, never text),
 * TLS name (case-insensitive), mailbox by (plan, extension). After
 * publication nothing changes; the reference count lets a reader keep an
 * old view while the server swaps in a new one. */
#include "directory/dir_private.h"

#include "core/alloc.h"
#include "core/fqdn.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct addr_ent {
	uint8_t ip[16];
	const struct om_dir_gateway *gw;
};

struct name_ent {
	const char *name;
	const struct om_dir_gateway *gw;
};

struct fqdn_ent {
	const char *host;
	const struct om_dir_gateway *gw;
};

struct om_dir_snapshot {
	atomic_uint refs;
	uint64_t generation;
	struct om_dir_server server;
	size_t server_plans;
	bool server_secured;
	struct om_dir_dialplan *plans; /* by name */
	size_t nplans;
	struct om_dir_gateway *gws; /* by name */
	size_t ngws;
	struct addr_ent *addrs; /* by ip */
	size_t naddrs, capaddrs;
	struct name_ent *names; /* by name, case-insensitive */
	size_t nnames;
	struct name_ent *dnames; /* TLS names of disabled gateways, by name */
	size_t ndnames;
	struct fqdn_ent *fqdns;
	size_t nfqdns;
	struct om_dir_mailbox *mbs; /* by (dialplan_id, extension) */
	size_t nmbs;
};

static atomic_uint_fast64_t generations;

static int cmp_addr(const void *a, const void *b)
{
	return memcmp(((const struct addr_ent *)a)->ip, ((const struct addr_ent *)b)->ip, 16);
}

static int cmp_name(const void *a, const void *b)
{
	return strcasecmp(((const struct name_ent *)a)->name, ((const struct name_ent *)b)->name);
}

static int cmp_mb(const void *a, const void *b)
{
	const struct om_dir_mailbox *x = a, *y = b;
	if (x->dialplan_id != y->dialplan_id)
		return x->dialplan_id < y->dialplan_id ? -1 : 1;
	return strcmp(x->extension, y->extension);
}

static bool trusted(const struct om_dir_gateway *g)
{
	return g->status != OM_GW_DISABLED;
}

static int add_addr(struct om_dir_snapshot *s, const uint8_t ip[16],
                    const struct om_dir_gateway *gw)
{
	if (s->naddrs == s->capaddrs) {
		size_t ncap = s->capaddrs ? s->capaddrs * 2 : 16;
		void *p = om_realloc(s->addrs, ncap * sizeof(*s->addrs));
		if (!p)
			return ENOMEM;
		s->addrs = p;
		s->capaddrs = ncap;
	}
	memcpy(s->addrs[s->naddrs].ip, ip, 16);
	s->addrs[s->naddrs++].gw = gw;
	return 0;
}

/* Sorts the address index and refuses one address claimed by two
 * gateways (checked before anything moves, so a refusal leaves the index
 * as it was); then drops repeats of one address for one gateway. */
static int index_addrs(struct om_dir_snapshot *s, struct om_dir_err *err)
{
	size_t w = 0;
	if (!s->naddrs)
		return 0;
	qsort(s->addrs, s->naddrs, sizeof(*s->addrs), cmp_addr);
	for (size_t i = 1; i < s->naddrs; i++) {
		if (memcmp(s->addrs[i - 1].ip, s->addrs[i].ip, 16) == 0 &&
		    s->addrs[i - 1].gw != s->addrs[i].gw) {
			om_dir_seterr(err,
			              "gateways \"%s\" and \"%s\" share an address: a peer "
			              "must identify one trusted gateway",
			              s->addrs[i - 1].gw->name, s->addrs[i].gw->name);
			return EPERM;
		}
	}
	for (size_t i = 0; i < s->naddrs; i++) {
		if (w && memcmp(s->addrs[w - 1].ip, s->addrs[i].ip, 16) == 0)
			continue;
		s->addrs[w++] = s->addrs[i];
	}
	s->naddrs = w;
	return 0;
}

static int check_and_index(struct om_dir_snapshot *s, struct om_dir_err *err)
{
	size_t nnames = 0, nfqdns = 0, ndisabled = 0;
	int rc;
	/* The CLI's host-name rules again (a row edited behind openum's back,
	 * or written by an older version): a name that breaks them never
	 * reaches a certificate check; the rest in canonical form, as the
	 * certificate's names are looked up. */
	for (size_t i = 0; i < s->ngws; i++) {
		struct om_dir_gateway *g = &s->gws[i];
		char why[160];
		if (!g->tls_name[0])
			continue;
		if (om_fqdn_check(g->tls_name, OM_FQDN_MULTI_LABEL, why, sizeof(why))) {
			om_dir_seterr(err, "gateway \"%s\" has an invalid TLS name \"%s\": %s",
			              g->name, g->tls_name, why);
			return EPERM;
		}
		(void)om_fqdn_norm(g->tls_name, strlen(g->tls_name), g->tls_name,
		                   sizeof(g->tls_name));
	}
	for (size_t i = 0; i < s->ngws; i++) {
		const struct om_dir_gateway *g = &s->gws[i];
		const struct om_dir_dialplan *p = om_dir_snapshot_gateway_plan(s, g);
		if (!p) {
			om_dir_seterr(err, "gateway \"%s\" has no dial plan", g->name);
			return EPERM;
		}
		if (p->security != OM_SEC_UNSECURED &&
		    !(g->tls_name[0] && g->transport == OM_TRANSPORT_TLS && g->port == 5061)) {
			om_dir_seterr(err,
			              "gateway \"%s\" of %s dial plan \"%s\" does not use TLS on "
			              "port 5061 with a TLS name",
			              g->name, om_dir_security_name(p->security), p->name);
			return EPERM;
		}
		if (!trusted(g)) {
			ndisabled += g->tls_name[0] != 0;
			continue;
		}
		nnames += g->tls_name[0] != 0;
		for (size_t a = 0; a < g->nhosts; a++) {
			if (g->hosts[a].is_ip) {
				if ((rc = add_addr(s, g->hosts[a].ip, g)))
					return rc;
			} else {
				nfqdns++;
			}
		}
	}
	if ((rc = index_addrs(s, err)))
		return rc;
	s->names = om_calloc(nnames ? nnames : 1, sizeof(*s->names));
	s->fqdns = om_calloc(nfqdns ? nfqdns : 1, sizeof(*s->fqdns));
	s->dnames = om_calloc(ndisabled ? ndisabled : 1, sizeof(*s->dnames));
	if (!s->names || !s->fqdns || !s->dnames)
		return ENOMEM;
	for (size_t i = 0; i < s->ngws; i++) {
		const struct om_dir_gateway *g = &s->gws[i];
		if (!trusted(g)) {
			if (g->tls_name[0])
				s->dnames[s->ndnames++] = (struct name_ent){ g->tls_name, g };
			continue;
		}
		if (g->tls_name[0])
			s->names[s->nnames++] = (struct name_ent){ g->tls_name, g };
		for (size_t a = 0; a < g->nhosts; a++)
			if (!g->hosts[a].is_ip)
				s->fqdns[s->nfqdns++] = (struct fqdn_ent){ g->hosts[a].name, g };
	}
	if (s->nnames)
		qsort(s->names, s->nnames, sizeof(*s->names), cmp_name);
	if (s->ndnames)
		qsort(s->dnames, s->ndnames, sizeof(*s->dnames), cmp_name);
	for (size_t i = 1; i < s->nnames; i++) {
		if (strcasecmp(s->names[i - 1].name, s->names[i].name) == 0) {
			om_dir_seterr(
			    err,
			    "gateways \"%s\" and \"%s\" claim the same TLS name \"%s\": a "
			    "TLS peer must match exactly one trusted gateway",
			    s->names[i - 1].gw->name, s->names[i].gw->name, s->names[i].name);
			return EPERM;
		}
	}
	if (s->nmbs)
		qsort(s->mbs, s->nmbs, sizeof(*s->mbs), cmp_mb);
	return 0;
}

int om_dir_snapshot_build(struct om_db *db, struct om_dir_snapshot **out, struct om_dir_err *err)
{
	sqlite3 *h = om_db_sqlite(db);
	struct om_dir_snapshot *s = om_calloc(1, sizeof(*s));
	int rc;
	if (!s) {
		om_dir_seterr(err, "out of memory building the directory snapshot");
		return ENOMEM;
	}
	atomic_init(&s->refs, 1);
	if (sqlite3_exec(h, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) {
		rc = EIO;
		goto dberr;
	}
	rc = om_dir_load_dialplans(h, &s->plans, &s->nplans);
	if (!rc)
		rc = om_dir_load_gateways(h, &s->gws, &s->ngws);
	if (!rc)
		rc = om_dir_load_mailboxes(h, NULL, &s->mbs, &s->nmbs);
	if (!rc)
		rc = om_dir_load_server(h, &s->server);
	sqlite3_exec(h, "COMMIT", NULL, NULL, NULL);
	if (rc)
		goto dberr;
	for (size_t i = 0; i < s->server.ndialplans; i++) {
		const struct om_dir_dialplan *p =
		    om_dir_snapshot_dialplan_by_name(s, s->server.dialplans[i]);
		if (!p)
			continue;
		s->server_plans++;
		s->server_secured = s->server_secured || p->security != OM_SEC_UNSECURED;
	}
	rc = check_and_index(s, err);
	if (rc == ENOMEM)
		om_dir_seterr(err, "out of memory building the directory snapshot");
	if (rc)
		goto fail;
	s->generation = atomic_fetch_add(&generations, 1) + 1;
	*out = s;
	return 0;
dberr:
	om_dir_seterr(err, "could not read the directory: %s",
	              rc == ENOMEM ? "out of memory" : sqlite3_errmsg(h));
fail:
	om_dir_snapshot_free(s);
	return rc;
}

static void *dup_array(const void *p, size_t n, size_t size, int *rc)
{
	void *q = om_malloc(n ? n * size : 1);
	if (!q)
		*rc = ENOMEM;
	else if (n)
		memcpy(q, p, n * size);
	return q;
}

int om_dir_snapshot_copy(const struct om_dir_snapshot *src, struct om_dir_snapshot **out)
{
	struct om_dir_snapshot *s = om_calloc(1, sizeof(*s));
	struct om_dir_err err = { "" };
	int rc = 0;
	if (!s)
		return ENOMEM;
	atomic_init(&s->refs, 1);
	s->server = src->server;
	s->server_plans = src->server_plans;
	s->server_secured = src->server_secured;
	s->plans = dup_array(src->plans, src->nplans, sizeof(*s->plans), &rc);
	s->nplans = src->nplans;
	s->gws = dup_array(src->gws, src->ngws, sizeof(*s->gws), &rc);
	s->ngws = src->ngws;
	s->mbs = dup_array(src->mbs, src->nmbs, sizeof(*s->mbs), &rc);
	s->nmbs = src->nmbs;
	/* the source passed these checks: only the indexes are rebuilt */
	if (!rc)
		rc = check_and_index(s, &err);
	if (rc) {
		om_dir_snapshot_free(s);
		return rc == EPERM ? EINVAL : rc;
	}
	s->generation = atomic_fetch_add(&generations, 1) + 1;
	*out = s;
	return 0;
}

struct om_dir_snapshot *om_dir_snapshot_ref(struct om_dir_snapshot *s)
{
	if (s)
		atomic_fetch_add(&s->refs, 1);
	return s;
}

void om_dir_snapshot_free(struct om_dir_snapshot *s)
{
	if (!s || atomic_fetch_sub(&s->refs, 1) != 1)
		return;
	om_free(s->plans);
	om_free(s->gws);
	om_free(s->addrs);
	om_free(s->names);
	om_free(s->dnames);
	om_free(s->fqdns);
	om_free(s->mbs);
	om_free(s);
}

uint64_t om_dir_snapshot_generation(const struct om_dir_snapshot *s)
{
	return s->generation;
}

const struct om_dir_server *om_dir_snapshot_server(const struct om_dir_snapshot *s)
{
	return &s->server;
}

size_t om_dir_snapshot_server_plan_count(const struct om_dir_snapshot *s)
{
	return s->server_plans;
}

bool om_dir_snapshot_server_secured(const struct om_dir_snapshot *s)
{
	return s->server_secured;
}

size_t om_dir_snapshot_dialplan_count(const struct om_dir_snapshot *s)
{
	return s->nplans;
}

const struct om_dir_dialplan *om_dir_snapshot_dialplan_at(const struct om_dir_snapshot *s, size_t i)
{
	return i < s->nplans ? &s->plans[i] : NULL;
}

static int cmp_plan_name(const void *key, const void *elem)
{
	return strcasecmp(key, ((const struct om_dir_dialplan *)elem)->name);
}

const struct om_dir_dialplan *om_dir_snapshot_dialplan_by_name(const struct om_dir_snapshot *s,
                                                               const char *name)
{
	if (!name || !s->nplans)
		return NULL;
	return bsearch(name, s->plans, s->nplans, sizeof(*s->plans), cmp_plan_name);
}

/* Plans are few (tens): a scan is as fast as an index here. */
const struct om_dir_dialplan *om_dir_snapshot_dialplan_by_id(const struct om_dir_snapshot *s,
                                                             int64_t id)
{
	for (size_t i = 0; i < s->nplans; i++)
		if (s->plans[i].id == id)
			return &s->plans[i];
	return NULL;
}

size_t om_dir_snapshot_gateway_count(const struct om_dir_snapshot *s)
{
	return s->ngws;
}

const struct om_dir_gateway *om_dir_snapshot_gateway_at(const struct om_dir_snapshot *s, size_t i)
{
	return i < s->ngws ? &s->gws[i] : NULL;
}

const struct om_dir_dialplan *om_dir_snapshot_gateway_plan(const struct om_dir_snapshot *s,
                                                           const struct om_dir_gateway *gw)
{
	return gw ? om_dir_snapshot_dialplan_by_id(s, gw->dialplan_id) : NULL;
}

const struct om_dir_gateway *om_dir_snapshot_gateway_by_addr(const struct om_dir_snapshot *s,
                                                             const struct sockaddr *sa)
{
	struct addr_ent key;
	const struct addr_ent *e;
	if (!s->naddrs || om_dir_sockaddr_ip(sa, key.ip))
		return NULL;
	e = bsearch(&key, s->addrs, s->naddrs, sizeof(*s->addrs), cmp_addr);
	return e ? e->gw : NULL;
}

static const struct name_ent *find_name(const struct name_ent *v, size_t n, const char *name)
{
	char canon[OM_DIR_HOST_MAX + 1];
	if (!name || !*name || !n || om_fqdn_norm(name, strlen(name), canon, sizeof(canon)) != 0 ||
	    !canon[0])
		return NULL;
	struct name_ent key = { canon, NULL };
	return bsearch(&key, v, n, sizeof(*v), cmp_name);
}

const struct om_dir_gateway *om_dir_snapshot_gateway_by_tls_name(const struct om_dir_snapshot *s,
                                                                 const char *name)
{
	const struct name_ent *e = find_name(s->names, s->nnames, name);
	return e ? e->gw : NULL;
}

size_t om_dir_snapshot_match_tls_names(const struct om_dir_snapshot *s, const char *const *names,
                                       size_t n, const struct om_dir_gateway **gw, bool *disabled)
{
	const struct om_dir_gateway *first = NULL;
	size_t count = 0;
	*disabled = false;
	*gw = NULL;
	for (size_t i = 0; i < n; i++) {
		const struct name_ent *e = find_name(s->names, s->nnames, names[i]);
		if (!e) {
			*disabled = *disabled || find_name(s->dnames, s->ndnames, names[i]);
			continue;
		}
		/* Several names of one gateway count once (each TLS name
		 * belongs to one trusted gateway, so a second gateway is a
		 * second distinct pointer). */
		if (!first) {
			first = e->gw;
			count = 1;
		} else if (e->gw != first) {
			count = 2;
		}
	}
	*gw = first;
	return count;
}

size_t om_dir_snapshot_fqdn_count(const struct om_dir_snapshot *s)
{
	return s->nfqdns;
}

const char *om_dir_snapshot_fqdn_at(const struct om_dir_snapshot *s, size_t i,
                                    const struct om_dir_gateway **gw)
{
	if (i >= s->nfqdns)
		return NULL;
	if (gw)
		*gw = s->fqdns[i].gw;
	return s->fqdns[i].host;
}

int om_dir_snapshot_add_resolved(struct om_dir_snapshot *s, size_t i, const uint8_t (*ips)[16],
                                 size_t n)
{
	int rc = 0, skipped = 0;
	if (i >= s->nfqdns)
		return EINVAL;
	for (size_t k = 0; k < n; k++) {
		struct addr_ent key;
		const struct addr_ent *e = NULL;
		memcpy(key.ip, ips[k], 16);
		if (s->naddrs)
			e = bsearch(&key, s->addrs, s->naddrs, sizeof(*s->addrs), cmp_addr);
		if (e) {
			skipped += e->gw != s->fqdns[i].gw; /* another gateway's: never moved */
			continue;
		}
		if ((rc = add_addr(s, ips[k], s->fqdns[i].gw)))
			break;
		/* keep the index sorted for the next bsearch */
		qsort(s->addrs, s->naddrs, sizeof(*s->addrs), cmp_addr);
	}
	if (rc)
		return rc;
	return skipped ? EEXIST : 0;
}

const struct om_dir_mailbox *om_dir_snapshot_mailbox(const struct om_dir_snapshot *s,
                                                     const struct om_dir_dialplan *plan,
                                                     const char *ext)
{
	struct om_dir_mailbox key;
	if (!plan || !ext || !s->nmbs || strlen(ext) > OM_DIR_EXT_MAX)
		return NULL;
	key.dialplan_id = plan->id;
	strcpy(key.extension, ext);
	return bsearch(&key, s->mbs, s->nmbs, sizeof(*s->mbs), cmp_mb);
}

size_t om_dir_snapshot_mailbox_count(const struct om_dir_snapshot *s)
{
	return s->nmbs;
}

const struct om_dir_mailbox *om_dir_snapshot_mailbox_at(const struct om_dir_snapshot *s, size_t i)
{
	return i < s->nmbs ? &s->mbs[i] : NULL;
}
