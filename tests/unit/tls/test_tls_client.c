/* test_tls_client.c — the client side of mutual TLS (R5, RFC 5922 §7):
 * openum's client session against openum's own server session over memory
 * buffers: our certificate is presented and seen by the server; the
 * server's chain is verified (unknown CA, expired) and its name checked
 * with the gateway rules (SAN DNS, SAN URI sip:, CN only without SAN, no
 * wildcard); SNI carries the name, never an IP literal. */
#include "ut.h"
#include "core/alloc.h"
#include "tls/tls.h"
#include "tls/tls_int.h"

#include <errno.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

static X509 *make_cert(EVP_PKEY *key, const char *cn, const char *san, X509 *issuer,
                       EVP_PKEY *issuer_key, long from_s, long to_s)
{
	X509 *x = X509_new();
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), (long)(random() & 0x7fffffff));
	X509_gmtime_adj(X509_getm_notBefore(x), from_s);
	X509_gmtime_adj(X509_getm_notAfter(x), to_s);
	X509_set_pubkey(x, key);
	X509_NAME *n = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(n, "O", MBSTRING_ASC, (const unsigned char *)"ut", -1, -1, 0);
	if (cn)
		X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1,
		                           0);
	X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : n);
	X509V3_CTX v3;
	X509V3_set_ctx(&v3, issuer ? issuer : x, x, NULL, NULL, 0);
	X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &v3, NID_basic_constraints,
	                                        issuer ? "critical,CA:FALSE" : "critical,CA:TRUE");
	X509_add_ext(x, e, -1);
	X509_EXTENSION_free(e);
	if (san) {
		e = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, san);
		X509_add_ext(x, e, -1);
		X509_EXTENSION_free(e);
	}
	X509_sign(x, issuer_key ? issuer_key : key, EVP_sha256());
	return x;
}

struct pki {
	EVP_PKEY *ca_key, *other_ca_key, *um_key, *gw_key;
	X509 *ca, *other_ca, *um, *gw;
	X509_STORE *store;
};

static struct pki P;

static void pki_make(void)
{
	P.ca_key = EVP_EC_gen("P-256");
	P.other_ca_key = EVP_EC_gen("P-256");
	P.um_key = EVP_EC_gen("P-256");
	P.gw_key = EVP_EC_gen("P-256");
	P.ca = make_cert(P.ca_key, "UT Root", NULL, NULL, NULL, -3600, 86400 * 10);
	P.other_ca = make_cert(P.other_ca_key, "Other Root", NULL, NULL, NULL, -3600, 86400 * 10);
	P.um = make_cert(P.um_key, "um.example.com", "DNS:um.example.com", P.ca, P.ca_key, -3600,
	                 86400);
	P.store = X509_STORE_new();
	X509_STORE_add_cert(P.store, P.ca);
}

static void pki_free(void)
{
	X509_STORE_free(P.store);
	X509_free(P.ca);
	X509_free(P.other_ca);
	X509_free(P.um);
	X509_free(P.gw);
	EVP_PKEY_free(P.ca_key);
	EVP_PKEY_free(P.other_ca_key);
	EVP_PKEY_free(P.um_key);
	EVP_PKEY_free(P.gw_key);
	memset(&P, 0, sizeof(P));
}

static const struct om_tls_opts OPTS = { .min_version = 12, .security_level = 2 };

/* The gateway acting as a TLS server, with `gw` as its certificate. */
static struct om_tls_ctx *gw_server(void)
{
	struct om_tls_ctx *c = NULL;
	char err[256];
	UT_EQ_INT(0, om_tls_ctx_new(&OPTS, P.gw, NULL, P.gw_key, P.store, &c, err, sizeof(err)));
	return c;
}

static struct om_tls_ctx *um_client(void)
{
	struct om_tls_ctx *c = NULL;
	char err[256];
	UT_EQ_INT(
	    0, om_tls_client_ctx_new(&OPTS, P.um, NULL, P.um_key, P.store, &c, err, sizeof(err)));
	return c;
}

/* Runs both handshakes over memory until neither moves. */
static void pump(struct om_tls_sess *cli, struct om_tls_sess *srv, enum om_tls_res *rc,
                 enum om_tls_res *rs)
{
	char buf[32768];
	*rc = *rs = OM_TLS_AGAIN;
	for (int round = 0; round < 30; round++) {
		int moved = 0;
		size_t n;
		if (*rc == OM_TLS_AGAIN)
			*rc = om_tls_sess_handshake(cli);
		while ((n = om_tls_sess_output(cli, buf, sizeof(buf))) > 0) {
			UT_EQ_INT(0, om_tls_sess_input(srv, buf, n));
			moved = 1;
		}
		if (*rs == OM_TLS_AGAIN)
			*rs = om_tls_sess_handshake(srv);
		while ((n = om_tls_sess_output(srv, buf, sizeof(buf))) > 0) {
			UT_EQ_INT(0, om_tls_sess_input(cli, buf, n));
			moved = 1;
		}
		if (!moved && *rc != OM_TLS_AGAIN && *rs != OM_TLS_AGAIN)
			break;
		if (!moved && round > 3)
			break;
	}
}

/* A full handshake with the gateway's certificate `san`/`cn`; returns the
 * client's result and leaves the sessions for the caller. */
static enum om_tls_res connect_to(const char *cn, const char *san, X509 *issuer,
                                  EVP_PKEY *issuer_key, long to_s, const char *name,
                                  struct om_tls_sess **cli_out, struct om_tls_sess **srv_out)
{
	X509_free(P.gw);
	if (!P.gw_key)
		P.gw_key = EVP_EC_gen("P-256");
	P.gw = make_cert(P.gw_key, cn, san, issuer, issuer_key, -7200, to_s);
	struct om_tls_ctx *sc = gw_server(), *cc = um_client();
	struct om_tls_sess *srv = NULL, *cli = NULL;
	UT_EQ_INT(0, om_tls_sess_new(sc, &srv));
	UT_EQ_INT(0, om_tls_client_sess_new(cc, name, &cli));
	om_tls_ctx_free(sc);
	om_tls_ctx_free(cc);
	enum om_tls_res rc, rs;
	pump(cli, srv, &rc, &rs);
	*cli_out = cli;
	*srv_out = srv;
	return rc;
}

UT_TEST(client_presents_certificate_and_checks_name)
{
	pki_make();
	struct om_tls_sess *cli, *srv;
	UT_EQ_INT(OM_TLS_OK, connect_to("gw.example.com", "DNS:gw.example.com", P.ca, P.ca_key,
	                                86400, "gw.example.com", &cli, &srv));
	UT_TRUE(om_tls_sess_established(srv));
	/* The server (the gateway) saw our certificate. */
	X509 *seen = om_tls_sess_peer_cert(srv);
	UT_TRUE(seen && X509_cmp(seen, P.um) == 0);
	enum om_tls_reject why = OM_TLS_R_NONE;
	UT_EQ_INT(0, om_tls_client_check_name(cli, "gw.example.com", &why));
	UT_EQ_INT(0, om_tls_client_check_name(cli, "GW.EXAMPLE.COM", &why));
	UT_EQ_INT(EACCES, om_tls_client_check_name(cli, "other.example.com", &why));
	UT_EQ_INT(OM_TLS_R_NO_GATEWAY, why);
	UT_EQ_INT(EACCES, om_tls_client_check_name(cli, "", &why));
	/* SNI carried the name. */
	const char *sni = SSL_get_servername(om_tls_sess_ssl_i(srv), TLSEXT_NAMETYPE_host_name);
	UT_TRUE(sni && !strcmp(sni, "gw.example.com"));
	/* Data both ways. */
	char buf[64];
	size_t n = 0;
	UT_EQ_INT(0, om_tls_sess_write(cli, "OPTIONS", 7));
	while ((n = om_tls_sess_output(cli, buf, sizeof(buf))) > 0)
		om_tls_sess_input(srv, buf, n);
	UT_EQ_INT(OM_TLS_OK, om_tls_sess_read(srv, buf, sizeof(buf), &n));
	UT_EQ_INT(7, n);
	UT_TRUE(!memcmp(buf, "OPTIONS", 7));
	om_tls_sess_free(cli);
	om_tls_sess_free(srv);
	pki_free();
}

/* The gateway rules of RFC 5922 §7.2 for the server certificate. */
UT_TEST(client_name_rules)
{
	static const struct {
		const char *cn, *san, *name;
		int rc;
		enum om_tls_reject why;
	} t[] = {
		{ "x", "URI:sip:gw.example.com", "gw.example.com", 0, OM_TLS_R_NONE },
		{ "gw.example.com", NULL, "gw.example.com", 0, OM_TLS_R_NONE }, /* CN without SAN */
		{ "gw.example.com", "DNS:other.example.com", "gw.example.com", EACCES,
		  OM_TLS_R_NO_GATEWAY }, /* CN ignored with a SAN */
		{ "x", "DNS:*.example.com", "gw.example.com", EACCES, OM_TLS_R_WILDCARD },
		{ "*.example.com", NULL, "gw.example.com", EACCES, OM_TLS_R_WILDCARD },
	};
	pki_make();
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct om_tls_sess *cli, *srv;
		UT_EQ_INT(OM_TLS_OK, connect_to(t[i].cn, t[i].san, P.ca, P.ca_key, 86400, t[i].name,
		                                &cli, &srv));
		enum om_tls_reject why = OM_TLS_R_NONE;
		int rc = om_tls_client_check_name(cli, t[i].name, &why);
		om_tls_sess_free(cli);
		om_tls_sess_free(srv);
		if (rc != t[i].rc || (rc && why != t[i].why))
			UT_FAIL("case %zu: rc %d why %s", i, rc, om_tls_reject_str(why));
	}
	pki_free();
}

/* The chain: an unknown issuer or an expired certificate ends the
 * handshake on our side with the reason 1130 will carry. */
UT_TEST(client_refuses_bad_chain)
{
	pki_make();
	struct om_tls_sess *cli, *srv;
	char detail[256];
	UT_EQ_INT(OM_TLS_FAIL, connect_to("gw.example.com", "DNS:gw.example.com", P.other_ca,
	                                  P.other_ca_key, 86400, "gw.example.com", &cli, &srv));
	UT_EQ_INT(OM_TLS_R_UNKNOWN_CA, om_tls_sess_reason(cli, detail, sizeof(detail)));
	om_tls_sess_free(cli);
	om_tls_sess_free(srv);
	UT_EQ_INT(OM_TLS_FAIL, connect_to("gw.example.com", "DNS:gw.example.com", P.ca, P.ca_key,
	                                  -3600, "gw.example.com", &cli, &srv));
	UT_EQ_INT(OM_TLS_R_EXPIRED, om_tls_sess_reason(cli, detail, sizeof(detail)));
	om_tls_sess_free(cli);
	om_tls_sess_free(srv);
	pki_free();
}

UT_TEST(client_no_sni_for_ip_literal)
{
	pki_make();
	struct om_tls_sess *cli, *srv;
	UT_EQ_INT(OM_TLS_OK, connect_to("x", "DNS:gw.example.com", P.ca, P.ca_key, 86400,
	                                "192.0.2.7", &cli, &srv));
	UT_TRUE(SSL_get_servername(om_tls_sess_ssl_i(srv), TLSEXT_NAMETYPE_host_name) == NULL);
	enum om_tls_reject why;
	UT_EQ_INT(EACCES, om_tls_client_check_name(cli, "192.0.2.7", &why));
	om_tls_sess_free(cli);
	om_tls_sess_free(srv);
	pki_free();
}

UT_TEST(client_sess_refuses_server_ctx)
{
	pki_make();
	P.gw = make_cert(P.gw_key, "gw", "DNS:gw.example.com", P.ca, P.ca_key, -3600, 86400);
	struct om_tls_ctx *sc = gw_server();
	struct om_tls_sess *t = NULL;
	UT_EQ_INT(EINVAL, om_tls_client_sess_new(sc, "gw.example.com", &t));
	om_tls_ctx_free(sc);
	char err[256];
	struct om_tls_ctx *c = NULL;
	UT_EQ_INT(EINVAL, om_tls_client_ctx_new(&OPTS, P.um, NULL, P.gw_key, P.store, &c, err,
	                                        sizeof(err))); /* key of another certificate */
	UT_TRUE(strstr(err, "private key") != NULL);
	pki_free();
}

static int oom_client(void *arg)
{
	struct om_tls_ctx *c = NULL;
	struct om_tls_sess *t = NULL;
	char err[256];
	int rc = om_tls_client_ctx_new(&OPTS, P.um, NULL, P.um_key, P.store, &c, err, sizeof(err));
	if (rc)
		return rc;
	rc = om_tls_client_sess_new(c, "gw.example.com", &t);
	om_tls_sess_free(t);
	om_tls_ctx_free(c);
	return rc;
}

UT_TEST(oom_sweep_client)
{
	pki_make();
	unsigned long n;
	for (n = 1; n < 1000; n++) {
		om_alloc_fail_at(n, 0);
		int rc = oom_client(NULL);
		int hit = om_alloc_fault_hit();
		om_alloc_fail_at(0, 0);
		if (!hit)
			break;
		if (rc != ENOMEM)
			UT_FAIL("allocation %lu: rc %d", n, rc);
	}
	UT_TRUE(n > 1);
	pki_free();
}

UT_MAIN(UT_CASE(client_presents_certificate_and_checks_name), UT_CASE(client_name_rules),
        UT_CASE(client_refuses_bad_chain), UT_CASE(client_no_sni_for_ip_literal),
        UT_CASE(client_sess_refuses_server_ctx), UT_CASE(oom_sweep_client))
