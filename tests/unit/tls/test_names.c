/* test_names.c — the identity lookup of mutual TLS (R4, RFC 5922 §7.1):
 * the names of a gateway's certificate, extracted once
 * (om_tls_cert_names), looked up in the directory snapshot's index of TLS
 * names (om_dir_snapshot_match_tls_names), find the same gateway as the
 * scan over every gateway with om_tls_cert_has_name that it replaces: SAN
 * URI, SAN DNS, CN only without SAN, case, a trailing root dot, wildcards
 * refused, a certificate naming two gateways ambiguous (also when the
 * second name comes after 200 others), a disabled one; among 1,000 other
 * gateways. */
#include "ut.h"
#include "core/alloc.h"
#include "tls/tls.h"
#include "../directory/dirtest.h"

#include <errno.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>

static EVP_PKEY *key;

/* A self-signed certificate with subject CN (may be NULL) and a SAN in
 * OpenSSL's configuration syntax (may be NULL). */
static X509 *cert(const char *cn, const char *san)
{
	X509 *x = X509_new();
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	X509_set_pubkey(x, key);
	X509_NAME *n = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(n, "O", MBSTRING_ASC, (const unsigned char *)"ut", -1, -1, 0);
	if (cn)
		X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1,
		                           0);
	X509_set_issuer_name(x, n);
	if (san) {
		X509V3_CTX v3;
		X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
		X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, san);
		X509_add_ext(x, e, -1);
		X509_EXTENSION_free(e);
	}
	X509_sign(x, key, EVP_sha256());
	return x;
}

enum result { NONE = 0, ONE, AMBIGUOUS, DISABLED, WILDCARD };

/* The scan sipd.c made before: every gateway with a TLS name, through
 * X509_check_host. */
static enum result old_scan(const struct om_dir_snapshot *s, X509 *x,
                            const struct om_dir_gateway **out)
{
	size_t nfound = 0;
	bool disabled = false;
	for (size_t i = 0; i < om_dir_snapshot_gateway_count(s); i++) {
		const struct om_dir_gateway *gw = om_dir_snapshot_gateway_at(s, i);
		if (!gw->tls_name[0] || !om_tls_cert_has_name(x, gw->tls_name))
			continue;
		if (gw->status == OM_GW_DISABLED) {
			disabled = true;
			continue;
		}
		nfound++;
		*out = gw;
	}
	if (nfound == 1)
		return ONE;
	if (nfound > 1)
		return AMBIGUOUS;
	if (disabled)
		return DISABLED;
	return om_tls_cert_has_wildcard(x) ? WILDCARD : NONE;
}

/* What sipd.c does now. */
static enum result lookup(const struct om_dir_snapshot *s, X509 *x,
                          const struct om_dir_gateway **out)
{
	struct om_tls_names names;
	bool disabled;
	UT_EQ_INT(0, om_tls_cert_names(x, &names));
	size_t n = om_dir_snapshot_match_tls_names(s, names.v, names.n, out, &disabled);
	bool wild = names.wildcard;
	om_tls_names_free(&names);
	if (n == 1)
		return ONE;
	if (n > 1)
		return AMBIGUOUS;
	if (disabled)
		return DISABLED;
	return wild ? WILDCARD : NONE;
}

static struct om_db *db;
static struct om_dir_snapshot *snap;

static void gw(const char *name, const char *addr, const char *tls_name, bool disabled)
{
	struct om_dir_gateway g;
	struct om_dir_err e;
	memset(&g, 0, sizeof(g));
	snprintf(g.name, sizeof(g.name), "%s", name);
	snprintf(g.dialplan, sizeof(g.dialplan), "dp");
	snprintf(g.hosts[0].name, sizeof(g.hosts[0].name), "%s", addr);
	g.nhosts = 1;
	snprintf(g.tls_name, sizeof(g.tls_name), "%s", tls_name);
	g.port = 5061;
	g.transport = OM_TRANSPORT_TLS;
	g.status = disabled ? OM_GW_DISABLED : OM_GW_ENABLED;
	unsigned f = OM_GW_F_HOSTS | OM_GW_F_DIALPLAN | OM_GW_F_TLS_NAME | OM_GW_F_PORT |
	             OM_GW_F_TRANSPORT | OM_GW_F_STATUS;
	if (om_dir_gateway_new(db, &g, f, 0, NULL, &e) != 0)
		UT_FAIL("gateway %s: %s", name, e.msg);
}

static void setup(void)
{
	struct om_dir_err e;
	key = EVP_EC_gen("P-256");
	db = dt_open();
	UT_TRUE(db != NULL);
	UT_EQ_INT(0, dt_plan(db, "dp", 3, OM_SEC_UNSECURED));
	gw("gw-dns", "10.0.0.1", "dns.example.com", false);
	gw("gw-uri", "10.0.0.2", "uri.example.com", false);
	gw("gw-cn", "10.0.0.3", "cn.example.com", false);
	gw("gw-case", "10.0.0.4", "Case.Example.COM", false);
	gw("gw-dot", "10.0.0.5", "dot.example.com.", false); /* root dot: stored without */
	gw("gw-a", "10.0.0.6", "a.example.com", false);
	gw("gw-b", "10.0.0.7", "b.example.com", false);
	gw("gw-off", "10.0.0.8", "off.example.com", true);
	for (int i = 0; i < 1000; i++) {
		char n[32], a[32], t[64];
		snprintf(n, sizeof(n), "filler%d", i);
		snprintf(a, sizeof(a), "10.1.%d.%d", i / 250, i % 250 + 1);
		snprintf(t, sizeof(t), "f%d.gateways.example.com", i);
		gw(n, a, t, false);
	}
	if (om_dir_snapshot_build(db, &snap, &e) != 0)
		UT_FAIL("snapshot: %s", e.msg);
}

static void teardown(void)
{
	om_dir_snapshot_free(snap);
	dt_close(db);
	EVP_PKEY_free(key);
}

/* Both ways give `want`, and the same gateway (named gw_name) when one. */
static void same(const char *cn, const char *san, enum result want, const char *gw_name)
{
	X509 *x = cert(cn, san);
	const struct om_dir_gateway *a = NULL, *b = NULL;
	enum result ra = old_scan(snap, x, &a), rb = lookup(snap, x, &b);
	X509_free(x);
	if (ra != want || rb != want)
		UT_FAIL("CN=%s SAN=%s: scan %d, lookup %d, want %d", cn ? cn : "-", san ? san : "-",
		        ra, rb, want);
	if (want == ONE) {
		UT_EQ_STR(gw_name, a->name);
		UT_EQ_STR(gw_name, b->name);
	}
}

UT_TEST(lookup_finds_what_the_scan_found)
{
	setup();
	same(NULL, "DNS:dns.example.com", ONE, "gw-dns");
	same("cn.example.com", "URI:sip:uri.example.com", ONE, "gw-uri");
	same(NULL, "URI:sip:uri.example.com:5061;transport=tls", ONE, "gw-uri");
	/* RFC 5922 §7.1: a sips: URI and a URI with a user part name no
	 * domain, either way */
	same(NULL, "URI:sips:uri.example.com", NONE, NULL);
	same(NULL, "URI:sip:alice@uri.example.com", NONE, NULL);
	same("cn.example.com", NULL, ONE, "gw-cn");
	/* the CN does not count when there is a SAN (§7.1) */
	same("cn.example.com", "DNS:elsewhere.example.com", NONE, NULL);
	/* case-insensitive both ways */
	same(NULL, "DNS:case.example.com", ONE, "gw-case");
	same(NULL, "DNS:DNS.EXAMPLE.COM", ONE, "gw-dns");
	/* a TLS name configured with the root dot */
	same(NULL, "DNS:dot.example.com", ONE, "gw-dot");
	/* wildcards never match (§7.2) */
	same(NULL, "DNS:*.example.com", WILDCARD, NULL);
	same("*.example.com", NULL, WILDCARD, NULL);
	/* two gateways: refused */
	same(NULL, "DNS:a.example.com,DNS:b.example.com", AMBIGUOUS, NULL);
	/* two names of one gateway: one gateway */
	same(NULL, "DNS:a.example.com,URI:sip:a.example.com", ONE, "gw-a");
	same(NULL, "DNS:off.example.com", DISABLED, NULL);
	same(NULL, "DNS:nobody.example.com", NONE, NULL);
	same(NULL, "DNS:f999.gateways.example.com", ONE, "filler999");
	/* a name that is no host name reaches neither */
	same(NULL, "DNS:.example.com", NONE, NULL);
	teardown();
}

/* The exactly-one-gateway rule sees every name of the certificate: a
 * second gateway's name after many others still makes it two. */
UT_TEST(every_name_counts)
{
	setup();
	char san[8192];
	size_t o = (size_t)snprintf(san, sizeof(san), "DNS:a.example.com");
	for (int i = 0; i < 200; i++)
		o += (size_t)snprintf(san + o, sizeof(san) - o, ",DNS:n%d.nowhere.example.com", i);
	snprintf(san + o, sizeof(san) - o, ",URI:sip:b.example.com");
	same(NULL, san, AMBIGUOUS, NULL);
	X509 *x = cert(NULL, san);
	struct om_tls_names n;
	UT_EQ_INT(0, om_tls_cert_names(x, &n));
	UT_EQ_INT(202, n.n);
	for (size_t i = 1; i < n.n; i++)
		UT_TRUE(strcmp(n.v[i - 1], n.v[i]) < 0); /* sorted, once */
	om_tls_names_free(&n);
	X509_free(x);
	teardown();
}

/* The certificate's name written with the root dot (RFC 1034 §3.1) is the
 * same name — for the lookup, and for om_tls_cert_has_name (the client
 * side's check), which once missed it: both use the same extracted names. */
UT_TEST(root_dot_in_the_certificate)
{
	setup();
	X509 *x = cert(NULL, "DNS:dns.example.com.");
	const struct om_dir_gateway *a = NULL, *b = NULL;
	UT_EQ_INT(ONE, old_scan(snap, x, &a));
	UT_EQ_STR("gw-dns", a->name);
	UT_TRUE(om_tls_cert_has_name(x, "dns.example.com"));
	UT_TRUE(om_tls_cert_has_name(x, "DNS.example.com."));
	UT_EQ_INT(ONE, lookup(snap, x, &b));
	UT_EQ_STR("gw-dns", b->name);
	X509_free(x);
	x = cert(NULL, "URI:sip:uri.example.com.");
	UT_EQ_INT(ONE, lookup(snap, x, &b));
	UT_EQ_STR("gw-uri", b->name);
	X509_free(x);
	/* a configured name starting with '.' never reaches a check */
	UT_TRUE(!om_tls_cert_has_name(x = cert(NULL, "DNS:gw.example.com"), ".example.com"));
	X509_free(x);
	UT_TRUE(om_dir_snapshot_gateway_by_tls_name(snap, "DOT.example.com.") != NULL);
	teardown();
}

UT_TEST(names_extracted_once_in_canonical_form)
{
	key = EVP_EC_gen("P-256");
	X509 *x = cert("ignored.example.com",
	               "DNS:A.Example.COM.,URI:sip:a.example.com,DNS:*.w.example.com,"
	               "URI:sip:[2001:db8::1],DNS:bad..name,URI:mailto:x@y.example.com");
	struct om_tls_names n;
	UT_EQ_INT(0, om_tls_cert_names(x, &n));
	UT_EQ_INT(1, n.n);
	UT_EQ_STR("a.example.com", n.v[0]);
	UT_TRUE(n.wildcard);
	om_tls_names_free(&n);
	X509_free(x);
	EVP_PKEY_free(key);
}

static int names_once(void *arg)
{
	struct om_tls_names n;
	int rc = om_tls_cert_names(arg, &n);
	if (rc == 0 && n.n != 2)
		rc = EINVAL;
	om_tls_names_free(&n);
	return rc;
}

UT_TEST(oom_sweep_names)
{
	key = EVP_EC_gen("P-256");
	X509 *x = cert(NULL, "DNS:a.example.com,URI:sip:b.example.com");
	UT_TRUE(ut_oom_sweep(names_once, x) >= 2);
	X509_free(x);
	EVP_PKEY_free(key);
}

UT_MAIN(UT_CASE(lookup_finds_what_the_scan_found), UT_CASE(every_name_counts),
        UT_CASE(root_dot_in_the_certificate), UT_CASE(names_extracted_once_in_canonical_form),
        UT_CASE(oom_sweep_names))
