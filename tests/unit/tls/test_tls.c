/* test_tls.c — the TLS module: certificate names (RFC 5922 §7.1/7.2: SAN
 * URI sip:, dNSName, CN only without SAN, no wildcards), EKU, refusal
 * reasons, and whole mutual handshakes between an OpenSSL client and
 * om_tls_sess over memory buffers (no sockets). */
#include "ut.h"
#include "core/alloc.h"
#include "tls/tls.h"

#include <errno.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

static EVP_PKEY *ec_key(void)
{
	return EVP_EC_gen("P-256");
}

/* A certificate for key, signed by issuer_key (NULL: self-signed, CA).
 * san: "DNS:a,URI:sip:b" or NULL; eku: "clientAuth,serverAuth" or NULL. */
static X509 *make_cert(EVP_PKEY *key, const char *cn, const char *san, const char *eku,
                       X509 *issuer, EVP_PKEY *issuer_key, long from_s, long to_s)
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
	X509_EXTENSION *e;
	e = X509V3_EXT_conf_nid(NULL, &v3, NID_basic_constraints,
	                        issuer ? "critical,CA:FALSE" : "critical,CA:TRUE");
	X509_add_ext(x, e, -1);
	X509_EXTENSION_free(e);
	if (san) {
		e = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, san);
		X509_add_ext(x, e, -1);
		X509_EXTENSION_free(e);
	}
	if (eku) {
		e = X509V3_EXT_conf_nid(NULL, &v3, NID_ext_key_usage, eku);
		X509_add_ext(x, e, -1);
		X509_EXTENSION_free(e);
	}
	X509_sign(x, issuer_key ? issuer_key : key, EVP_sha256());
	return x;
}

static X509 *leaf(const char *cn, const char *san, const char *eku)
{
	EVP_PKEY *k = ec_key();
	X509 *x = make_cert(k, cn, san, eku, NULL, NULL, -3600, 86400);
	EVP_PKEY_free(k);
	return x;
}

UT_TEST(names_dns_uri_cn)
{
	X509 *x = leaf("cn.example.com",
	               "DNS:gw.example.com,URI:sip:pbx.example.com:5061;transport=tls", NULL);
	UT_TRUE(om_tls_cert_has_name(x, "gw.example.com"));
	UT_TRUE(om_tls_cert_has_name(x, "GW.Example.COM"));
	UT_TRUE(om_tls_cert_has_name(x, "pbx.example.com"));
	UT_TRUE(!om_tls_cert_has_name(x, "cn.example.com")); /* CN ignored: SAN present */
	UT_TRUE(!om_tls_cert_has_name(x, "example.com"));
	UT_TRUE(!om_tls_cert_has_name(x, "pbx.example.co"));
	UT_TRUE(!om_tls_cert_has_name(x, ""));
	UT_TRUE(!om_tls_cert_has_wildcard(x));
	/* the root dot changes nothing (the inbound path's rule) */
	UT_TRUE(om_tls_cert_has_name(x, "gw.example.com."));
	UT_TRUE(om_tls_cert_has_name(x, "PBX.example.com."));
	UT_TRUE(!om_tls_cert_has_name(x, "gw.example.com.."));
	UT_TRUE(!om_tls_cert_has_name(x, ".gw.example.com"));
	X509_free(x);

	x = leaf("cn.example.com", NULL, NULL);
	UT_TRUE(om_tls_cert_has_name(x, "cn.example.com")); /* no SAN: the CN */
	X509_free(x);

	/* a URI SAN alone still hides the CN */
	x = leaf("cn.example.com", "URI:sip:uri.example.com?x=y", NULL);
	UT_TRUE(om_tls_cert_has_name(x, "uri.example.com"));
	UT_TRUE(!om_tls_cert_has_name(x, "cn.example.com"));
	X509_free(x);

	/* RFC 5922 §7.1 step 1: only the "sip" scheme, and never a URI with a
	 * user part (it identifies a user, not the domain) */
	x = leaf("cn.example.com",
	         "URI:sips:s.example.com,URI:sip:alice@u.example.com,URI:SIP:@e.example.com,"
	         "URI:sip:p.example.com;x=@y,URI:SIP:Up.Example.com",
	         NULL);
	UT_TRUE(!om_tls_cert_has_name(x, "s.example.com"));
	UT_TRUE(!om_tls_cert_has_name(x, "u.example.com"));
	UT_TRUE(!om_tls_cert_has_name(x, "alice"));
	UT_TRUE(!om_tls_cert_has_name(x, "e.example.com"));
	UT_TRUE(om_tls_cert_has_name(x, "p.example.com"));  /* '@' in a parameter */
	UT_TRUE(om_tls_cert_has_name(x, "up.example.com")); /* scheme is case-insensitive */
	UT_TRUE(!om_tls_cert_has_name(x, "cn.example.com"));
	X509_free(x);

	/* not SIP URIs, IPv6 references */
	x = leaf(NULL, "URI:http://web.example.com/,URI:sip:[2001:db8::1]:5061", NULL);
	UT_TRUE(!om_tls_cert_has_name(x, "web.example.com"));
	UT_TRUE(!om_tls_cert_has_name(x, "2001:db8::1"));
	X509_free(x);
}

UT_TEST(names_no_wildcards)
{
	X509 *x = leaf(NULL, "DNS:*.example.com", NULL);
	UT_TRUE(!om_tls_cert_has_name(x, "gw.example.com"));
	UT_TRUE(!om_tls_cert_has_name(x, "*.example.com"));
	UT_TRUE(om_tls_cert_has_wildcard(x));
	X509_free(x);
	x = leaf("*.example.com", NULL, NULL);
	UT_TRUE(!om_tls_cert_has_name(x, "gw.example.com"));
	UT_TRUE(om_tls_cert_has_wildcard(x));
	X509_free(x);
	x = leaf(NULL, "URI:sip:*.example.com", NULL);
	UT_TRUE(!om_tls_cert_has_name(x, "a.example.com"));
	UT_TRUE(om_tls_cert_has_wildcard(x));
	X509_free(x);
}

UT_TEST(eku)
{
	X509 *x = leaf("a", NULL, NULL);
	UT_EQ_INT(OM_TLS_EKU_CLIENT, om_tls_cert_eku(x));
	X509_free(x);
	x = leaf("a", NULL, "serverAuth,clientAuth");
	UT_EQ_INT(OM_TLS_EKU_CLIENT, om_tls_cert_eku(x));
	X509_free(x);
	x = leaf("a", NULL, "serverAuth");
	UT_EQ_INT(OM_TLS_EKU_SERVER_ONLY, om_tls_cert_eku(x));
	X509_free(x);
	x = leaf("a", NULL, "emailProtection");
	UT_EQ_INT(OM_TLS_EKU_NEITHER, om_tls_cert_eku(x));
	X509_free(x);
}

UT_TEST(reasons)
{
	UT_EQ_STR("unknown CA", om_tls_reject_str(OM_TLS_R_UNKNOWN_CA));
	UT_EQ_STR("no longer trusted", om_tls_reject_str(OM_TLS_R_UNTRUSTED_NOW));
	UT_EQ_STR("?", om_tls_reject_str((enum om_tls_reject)999));
	UT_EQ_INT(OM_TLS_R_EXPIRED, om_tls_reject_from_verify(X509_V_ERR_CERT_HAS_EXPIRED));
	UT_EQ_INT(OM_TLS_R_REVOKED, om_tls_reject_from_verify(X509_V_ERR_CERT_REVOKED));
	UT_EQ_INT(OM_TLS_R_NO_CRL, om_tls_reject_from_verify(X509_V_ERR_UNABLE_TO_GET_CRL));
	UT_EQ_INT(OM_TLS_R_CRL_STALE, om_tls_reject_from_verify(X509_V_ERR_CRL_HAS_EXPIRED));
	UT_EQ_INT(OM_TLS_R_KEY_TOO_SMALL, om_tls_reject_from_verify(X509_V_ERR_EE_KEY_TOO_SMALL));
	UT_EQ_INT(OM_TLS_R_UNKNOWN_CA,
	          om_tls_reject_from_verify(X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY));
}

/* ------------------------------------------------------- handshakes */

struct pki {
	EVP_PKEY *ca_key, *srv_key, *cli_key;
	X509 *ca, *srv, *cli;
	X509_STORE *store;
};

static void pki_make(struct pki *p, long cli_from, long cli_to)
{
	p->ca_key = ec_key();
	p->srv_key = ec_key();
	p->cli_key = ec_key();
	p->ca = make_cert(p->ca_key, "UT Root", NULL, NULL, NULL, NULL, -3600, 86400 * 10);
	p->srv = make_cert(p->srv_key, "um.example.com", "DNS:um.example.com",
	                   "serverAuth,clientAuth", p->ca, p->ca_key, -3600, 86400);
	p->cli = make_cert(p->cli_key, "gw.example.com", "DNS:gw.example.com", "clientAuth", p->ca,
	                   p->ca_key, cli_from, cli_to);
	p->store = X509_STORE_new();
	X509_STORE_add_cert(p->store, p->ca);
}

static void pki_free(struct pki *p)
{
	X509_STORE_free(p->store);
	X509_free(p->ca);
	X509_free(p->srv);
	X509_free(p->cli);
	EVP_PKEY_free(p->ca_key);
	EVP_PKEY_free(p->srv_key);
	EVP_PKEY_free(p->cli_key);
}

/* An OpenSSL client over memory BIOs. */
struct client {
	SSL_CTX *ctx;
	SSL *ssl;
	BIO *in, *out; /* in: what the server sent; out: what we send */
};

static void client_new(struct client *c, X509 *cert, EVP_PKEY *key, int max_version)
{
	c->ctx = SSL_CTX_new(TLS_client_method());
	SSL_CTX_set_verify(c->ctx, SSL_VERIFY_NONE, NULL);
	if (max_version)
		SSL_CTX_set_max_proto_version(c->ctx, max_version);
	if (cert) {
		SSL_CTX_use_certificate(c->ctx, cert);
		SSL_CTX_use_PrivateKey(c->ctx, key);
	}
	c->ssl = SSL_new(c->ctx);
	c->in = BIO_new(BIO_s_mem());
	c->out = BIO_new(BIO_s_mem());
	BIO_set_mem_eof_return(c->in, -1);
	BIO_set_mem_eof_return(c->out, -1);
	SSL_set_bio(c->ssl, c->in, c->out);
	SSL_set_connect_state(c->ssl);
}

static void client_free(struct client *c)
{
	SSL_free(c->ssl);
	SSL_CTX_free(c->ctx);
}

/* Moves bytes both ways until neither side has anything to say.
 * Returns the server's last handshake result. */
static enum om_tls_res pump(struct client *c, struct om_tls_sess *t)
{
	enum om_tls_res r = OM_TLS_AGAIN;
	char buf[32768];
	for (int round = 0; round < 20; round++) {
		int moved = 0;
		SSL_do_handshake(c->ssl);
		ERR_clear_error();
		int n;
		while ((n = BIO_read(c->out, buf, sizeof(buf))) > 0) {
			UT_EQ_INT(0, om_tls_sess_input(t, buf, (size_t)n));
			moved = 1;
		}
		if (!om_tls_sess_established(t) && r != OM_TLS_FAIL)
			r = om_tls_sess_handshake(t);
		else if (om_tls_sess_established(t))
			r = OM_TLS_OK;
		size_t m;
		while ((m = om_tls_sess_output(t, buf, sizeof(buf))) > 0) {
			BIO_write(c->in, buf, (int)m);
			moved = 1;
		}
		if (!moved)
			break;
	}
	return r;
}

static struct om_tls_ctx *server_ctx(struct pki *p, int level)
{
	struct om_tls_opts o = { .min_version = 12, .security_level = level };
	struct om_tls_ctx *ctx = NULL;
	char err[256];
	UT_EQ_INT(0,
	          om_tls_ctx_new(&o, p->srv, NULL, p->srv_key, p->store, &ctx, err, sizeof(err)));
	return ctx;
}

UT_TEST(handshake_mutual_then_data_then_close)
{
	struct pki p;
	struct client c;
	struct om_tls_sess *t = NULL;
	pki_make(&p, -3600, 86400);
	struct om_tls_ctx *ctx = server_ctx(&p, 2);
	UT_TRUE(om_tls_ctx_cert(ctx) != NULL);
	UT_EQ_INT(0, om_tls_sess_new(ctx, &t));
	client_new(&c, p.cli, p.cli_key, 0);
	UT_EQ_INT(OM_TLS_OK, pump(&c, t));
	UT_TRUE(om_tls_sess_established(t));
	UT_EQ_STR("TLSv1.3", om_tls_sess_version(t));
	X509 *peer = om_tls_sess_peer_cert(t);
	UT_TRUE(peer != NULL);
	UT_TRUE(om_tls_cert_has_name(peer, "gw.example.com"));
	/* the chain still verifies against the store; not against another */
	enum om_tls_reject why = OM_TLS_R_NONE;
	UT_EQ_INT(0, om_tls_chain_verify(p.store, 2, peer, om_tls_sess_peer_chain(t), &why));
	X509_STORE *empty = X509_STORE_new();
	UT_EQ_INT(EACCES, om_tls_chain_verify(empty, 2, peer, om_tls_sess_peer_chain(t), &why));
	UT_EQ_INT(OM_TLS_R_UNKNOWN_CA, why);
	X509_STORE_free(empty);

	/* client → server plaintext, read until AGAIN */
	UT_EQ_INT(5, SSL_write(c.ssl, "hello", 5));
	char buf[4096];
	int n = BIO_read(c.out, buf, sizeof(buf));
	UT_TRUE(n > 0);
	UT_EQ_INT(0, om_tls_sess_input(t, buf, (size_t)n));
	size_t got = 0;
	UT_EQ_INT(OM_TLS_OK, om_tls_sess_read(t, buf, sizeof(buf), &got));
	UT_EQ_SLICE("hello", buf, got);
	UT_EQ_INT(OM_TLS_AGAIN, om_tls_sess_read(t, buf, sizeof(buf), &got));
	/* server → client */
	UT_EQ_INT(0, om_tls_sess_write(t, "world", 5));
	size_t m = om_tls_sess_output(t, buf, sizeof(buf));
	BIO_write(c.in, buf, (int)m);
	char back[16];
	UT_EQ_INT(5, SSL_read(c.ssl, back, sizeof(back)));
	UT_EQ_MEM("world", back, 5);
	/* close_notify from the client */
	SSL_shutdown(c.ssl);
	n = BIO_read(c.out, buf, sizeof(buf));
	UT_EQ_INT(0, om_tls_sess_input(t, buf, (size_t)n));
	UT_EQ_INT(OM_TLS_CLOSED, om_tls_sess_read(t, buf, sizeof(buf), &got));
	om_tls_sess_shutdown(t);
	UT_TRUE(om_tls_sess_output(t, buf, sizeof(buf)) > 0);

	client_free(&c);
	om_tls_sess_free(t);
	om_tls_ctx_free(ctx);
	pki_free(&p);
}

static void refused(int max_version, int with_cert, long from, long to, enum om_tls_reject exp)
{
	struct pki p;
	struct client c;
	struct om_tls_sess *t = NULL;
	pki_make(&p, from, to);
	struct om_tls_ctx *ctx = server_ctx(&p, 2);
	UT_EQ_INT(0, om_tls_sess_new(ctx, &t));
	client_new(&c, with_cert ? p.cli : NULL, p.cli_key, max_version);
	UT_EQ_INT(OM_TLS_FAIL, pump(&c, t));
	char detail[256];
	UT_EQ_INT(exp, om_tls_sess_reason(t, detail, sizeof(detail)));
	UT_TRUE(detail[0] != '\0');
	char buf[64];
	size_t n;
	UT_EQ_INT(OM_TLS_FAIL, om_tls_sess_read(t, buf, sizeof(buf), &n));
	UT_EQ_INT(EPIPE, om_tls_sess_write(t, "x", 1));
	client_free(&c);
	om_tls_sess_free(t);
	om_tls_ctx_free(ctx);
	pki_free(&p);
}

UT_TEST(handshake_refusals)
{
	refused(0, 0, -3600, 86400, OM_TLS_R_NO_CERT);
	refused(TLS1_2_VERSION, 0, -3600, 86400, OM_TLS_R_NO_CERT);
	refused(0, 1, -86400 * 3, -86400, OM_TLS_R_EXPIRED);
	refused(TLS1_2_VERSION, 1, 86400, 86400 * 3, OM_TLS_R_NOT_YET_VALID);
}

UT_TEST(handshake_timeout)
{
	struct pki p;
	struct om_tls_sess *t = NULL;
	pki_make(&p, -3600, 86400);
	struct om_tls_ctx *ctx = server_ctx(&p, 2);
	UT_EQ_INT(0, om_tls_sess_new(ctx, &t));
	UT_EQ_INT(OM_TLS_AGAIN, om_tls_sess_handshake(t));
	om_tls_sess_timeout(t);
	char detail[128];
	UT_EQ_INT(OM_TLS_R_TIMEOUT, om_tls_sess_reason(t, detail, sizeof(detail)));
	UT_EQ_STR("handshake too slow", om_tls_reject_str(OM_TLS_R_TIMEOUT));
	UT_EQ_INT(OM_TLS_FAIL, om_tls_sess_handshake(t));
	om_tls_sess_free(t);
	om_tls_ctx_free(ctx);
	pki_free(&p);
}

UT_TEST(ctx_refuses_mismatched_key)
{
	struct pki p;
	pki_make(&p, -3600, 86400);
	struct om_tls_opts o = { .min_version = 12, .security_level = 2 };
	struct om_tls_ctx *ctx = NULL;
	char err[256] = "";
	UT_EQ_INT(EINVAL,
	          om_tls_ctx_new(&o, p.srv, NULL, p.cli_key, p.store, &ctx, err, sizeof(err)));
	UT_TRUE(strstr(err, "private key") != NULL);
	UT_EQ_INT(EINVAL, om_tls_ctx_new(&o, p.srv, NULL, NULL, p.store, &ctx, err, sizeof(err)));
	pki_free(&p);
}

/* ------------------------------------------------ revocation policy */

static X509_CRL *make_crl(X509 *ca, EVP_PKEY *ca_key, X509 *revoked, long from_s, long next_s)
{
	X509_CRL *crl = X509_CRL_new();
	ASN1_TIME *t = X509_gmtime_adj(NULL, from_s), *n = X509_gmtime_adj(NULL, next_s);
	X509_CRL_set_version(crl, X509_CRL_VERSION_2);
	X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca));
	X509_CRL_set1_lastUpdate(crl, t);
	X509_CRL_set1_nextUpdate(crl, n);
	if (revoked) {
		X509_REVOKED *r = X509_REVOKED_new();
		X509_REVOKED_set_serialNumber(r, X509_get_serialNumber(revoked));
		X509_REVOKED_set_revocationDate(r, t);
		X509_CRL_add0_revoked(crl, r);
	}
	X509_CRL_sort(crl);
	X509_CRL_sign(crl, ca_key, EVP_sha256());
	ASN1_TIME_free(t);
	ASN1_TIME_free(n);
	return crl;
}

/* A CA (issuer NULL: a root) for the chain tests. */
static X509 *make_ca(EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *issuer_key)
{
	X509 *x = make_cert(key, cn, NULL, NULL, NULL, NULL, -3600, 86400 * 10);
	if (issuer) {
		/* re-issue under issuer, still a CA */
		X509_set_issuer_name(x, X509_get_subject_name(issuer));
		X509V3_CTX v3;
		X509V3_set_ctx(&v3, issuer, x, NULL, NULL, 0);
		X509_sign(x, issuer_key, EVP_sha256());
	}
	return x;
}

struct chain {
	EVP_PKEY *rk, *ik, *lk, *ok;
	X509 *root, *inter, *leaf, *other_leaf;
	STACK_OF(X509) * sent; /* what the gateway sends after its leaf */
};

static void chain_make(struct chain *c)
{
	c->rk = ec_key();
	c->ik = ec_key();
	c->lk = ec_key();
	c->ok = ec_key();
	c->root = make_ca(c->rk, "UT Root", NULL, NULL);
	c->inter = make_ca(c->ik, "UT Issuing CA", c->root, c->rk);
	c->leaf = make_cert(c->lk, "gw.example.com", "DNS:gw.example.com", "clientAuth", c->inter,
	                    c->ik, -3600, 86400);
	c->other_leaf = make_cert(c->ok, "gw2.example.com", "DNS:gw2.example.com", "clientAuth",
	                          c->root, c->rk, -3600, 86400);
	c->sent = sk_X509_new_null();
	sk_X509_push(c->sent, c->inter);
}

static void chain_free(struct chain *c)
{
	sk_X509_free(c->sent);
	X509_free(c->root);
	X509_free(c->inter);
	X509_free(c->leaf);
	X509_free(c->other_leaf);
	EVP_PKEY_free(c->rk);
	EVP_PKEY_free(c->ik);
	EVP_PKEY_free(c->lk);
	EVP_PKEY_free(c->ok);
}

static int verify_with(X509_STORE *st, X509 *leaf, STACK_OF(X509) * sent, enum om_tls_reject *why)
{
	*why = OM_TLS_R_NONE;
	return om_tls_chain_verify(st, 2, leaf, sent, why);
}

/* A gateway's own self-signed certificate in the trusted store (the seed's
 * self-signed route) is an anchor for itself only, CA:TRUE or not; a root
 * CA issues as before. */
UT_TEST(device_certificate_is_an_anchor_for_itself_only)
{
	struct chain c;
	enum om_tls_reject why;
	chain_make(&c);
	EVP_PKEY *dk = ec_key(), *fk = ec_key();
	/* what `openssl req -x509` makes: CA:TRUE, names a host */
	X509 *dev =
	    make_cert(dk, "gwa.example.com", "DNS:gwa.example.com", NULL, NULL, NULL, -3600, 86400);
	X509 *forged = make_cert(fk, "gwb.example.com", "DNS:gwb.example.com", "clientAuth", dev,
	                         dk, -3600, 86400);
	UT_TRUE(om_tls_cert_is_device(dev));
	UT_TRUE(!om_tls_cert_is_device(c.root));  /* "UT Root" */
	UT_TRUE(!om_tls_cert_is_device(c.leaf));  /* not self-signed */
	UT_TRUE(!om_tls_cert_is_device(c.inter)); /* not self-signed */
	UT_TRUE(!om_tls_cert_is_device(forged));
	X509 *x = leaf("corp-DC01-CA", NULL, NULL); /* a one-label CN: a CA's name */
	UT_TRUE(!om_tls_cert_is_device(x));
	X509_free(x);
	x = leaf("gwc.example.com", NULL, NULL); /* the host name in the CN only */
	UT_TRUE(om_tls_cert_is_device(x));
	X509_free(x);
	x = leaf("UT Device", NULL, "clientAuth"); /* an end entity's EKU */
	UT_TRUE(om_tls_cert_is_device(x));
	X509_free(x);
	x = leaf("UT Device", "IP:192.0.2.1", NULL); /* any SAN */
	UT_TRUE(om_tls_cert_is_device(x));
	X509_free(x);

	X509_STORE *st = X509_STORE_new();
	X509_STORE_add_cert(st, c.root);
	X509_STORE_add_cert(st, dev);
	UT_EQ_INT(0, verify_with(st, dev, NULL, &why)); /* A itself */
	UT_EQ_INT(EACCES, verify_with(st, forged, NULL, &why));
	UT_EQ_INT(OM_TLS_R_UNKNOWN_CA, why);
	STACK_OF(X509) *sent = sk_X509_new_null();
	sk_X509_push(sent, dev); /* sending A along changes nothing */
	UT_EQ_INT(EACCES, verify_with(st, forged, sent, &why));
	sk_X509_free(sent);
	UT_EQ_INT(0, verify_with(st, c.other_leaf, NULL, &why)); /* the root issues */
	UT_EQ_INT(0, verify_with(st, c.leaf, c.sent, &why));
	UT_EQ_INT(OM_TLS_R_UNKNOWN_CA,
	          om_tls_reject_from_verify(X509_V_ERR_APPLICATION_VERIFICATION));
	X509_STORE_free(st);
	X509_free(dev);
	X509_free(forged);
	EVP_PKEY_free(dk);
	EVP_PKEY_free(fk);
	chain_free(&c);
}

UT_TEST(crl_of_root_revokes_issuing_ca)
{
	struct chain c;
	enum om_tls_reject why;
	chain_make(&c);
	X509_CRL *rcrl = make_crl(c.root, c.rk, c.inter, -3600, 86400);
	X509_STORE *st = X509_STORE_new();
	X509_STORE_add_cert(st, c.root);
	/* no CRL at all: valid */
	UT_EQ_INT(0, verify_with(st, c.leaf, c.sent, &why));
	X509_STORE_add_crl(st, rcrl);
	/* the root's CRL revokes the issuing CA: every certificate under it */
	UT_EQ_INT(EACCES, verify_with(st, c.leaf, c.sent, &why));
	UT_EQ_INT(OM_TLS_R_REVOKED, why);
	/* the issuing CA publishes no CRL here: its leaves are not checked,
	 * and a leaf straight under the root (whose CRL is here) passes */
	UT_EQ_INT(0, verify_with(st, c.other_leaf, NULL, &why));
	/* trusting the issuing CA too does not bypass the root's CRL */
	X509_STORE_add_cert(st, c.inter);
	UT_EQ_INT(EACCES, verify_with(st, c.leaf, c.sent, &why));
	UT_EQ_INT(OM_TLS_R_REVOKED, why);
	X509_STORE_free(st);
	X509_CRL_free(rcrl);
	chain_free(&c);
}

UT_TEST(crl_per_issuer_and_stale)
{
	struct chain c;
	enum om_tls_reject why;
	chain_make(&c);
	X509_CRL *rcrl = make_crl(c.root, c.rk, NULL, -3600, 86400);
	X509_CRL *icrl_revoking = make_crl(c.inter, c.ik, c.leaf, -3600, 86400);
	X509_CRL *icrl_stale = make_crl(c.inter, c.ik, NULL, -86400 * 3, -86400);
	X509_STORE *st = X509_STORE_new();
	X509_STORE_add_cert(st, c.root);
	X509_STORE_add_crl(st, rcrl);
	/* one CA's CRL does not make every CA without one fail */
	UT_EQ_INT(0, verify_with(st, c.leaf, c.sent, &why));
	X509_STORE_add_crl(st, icrl_revoking);
	UT_EQ_INT(EACCES, verify_with(st, c.leaf, c.sent, &why));
	UT_EQ_INT(OM_TLS_R_REVOKED, why);
	X509_STORE_free(st);
	/* the issuing CA's only CRL is stale: its certificates are refused,
	 * and the reason says so */
	st = X509_STORE_new();
	X509_STORE_add_cert(st, c.root);
	X509_STORE_add_crl(st, rcrl);
	X509_STORE_add_crl(st, icrl_stale);
	UT_EQ_INT(EACCES, verify_with(st, c.leaf, c.sent, &why));
	UT_EQ_INT(OM_TLS_R_CRL_STALE, why);
	UT_EQ_STR("CRL is stale", om_tls_reject_str(why));
	UT_EQ_INT(0, verify_with(st, c.other_leaf, NULL, &why));
	X509_STORE_free(st);
	X509_CRL_free(rcrl);
	X509_CRL_free(icrl_revoking);
	X509_CRL_free(icrl_stale);
	chain_free(&c);
}

/* The refusal names the peer's certificate (subject, issuer) and the chain
 * certificate that failed. */
UT_TEST(refusal_names_subject_issuer_and_failing_certificate)
{
	struct chain c;
	struct client cl;
	struct om_tls_sess *t = NULL;
	chain_make(&c);
	X509_CRL *rcrl = make_crl(c.root, c.rk, c.inter, -3600, 86400);
	EVP_PKEY *sk = ec_key();
	X509 *srv = make_cert(sk, "um.example.com", "DNS:um.example.com", "serverAuth", c.root,
	                      c.rk, -3600, 86400);
	X509_STORE *st = X509_STORE_new();
	X509_STORE_add_cert(st, c.root);
	X509_STORE_add_crl(st, rcrl);
	struct om_tls_opts o = { .min_version = 12, .security_level = 2 };
	struct om_tls_ctx *ctx = NULL;
	char err[256];
	UT_EQ_INT(0, om_tls_ctx_new(&o, srv, NULL, sk, st, &ctx, err, sizeof(err)));
	UT_EQ_INT(0, om_tls_sess_new(ctx, &t));
	client_new(&cl, c.leaf, c.lk, 0);
	SSL_add1_chain_cert(cl.ssl, c.inter);
	UT_EQ_INT(OM_TLS_FAIL, pump(&cl, t));
	char detail[512], subj[256], iss[256];
	UT_EQ_INT(OM_TLS_R_REVOKED, om_tls_sess_reason(t, detail, sizeof(detail)));
	UT_TRUE(strstr(detail, "depth 1") != NULL);
	UT_TRUE(strstr(detail, "UT Issuing CA") != NULL);
	om_tls_cert_subject(om_tls_sess_peer_cert(t), subj, sizeof(subj));
	om_tls_cert_issuer(om_tls_sess_peer_cert(t), iss, sizeof(iss));
	UT_TRUE(strstr(subj, "gw.example.com") != NULL);
	UT_TRUE(strstr(iss, "UT Issuing CA") != NULL);
	client_free(&cl);
	om_tls_sess_free(t);
	om_tls_ctx_free(ctx);
	X509_STORE_free(st);
	X509_CRL_free(rcrl);
	X509_free(srv);
	EVP_PKEY_free(sk);
	chain_free(&c);
}

/* ---------------------------------- a reload during a handshake */

/* Runs a TLS 1.2 handshake up to the client's last flight and splits it:
 * the first record (Certificate) is fed alone, then `between` runs, then
 * the rest. Returns the server's result. */
static enum om_tls_res handshake_split(struct client *c, struct om_tls_sess *t,
                                       void (*between)(void *), void *arg, int split)
{
	char buf[32768];
	int n;
	/* ClientHello → server flight → client's last flight */
	SSL_do_handshake(c->ssl);
	while ((n = BIO_read(c->out, buf, sizeof(buf))) > 0)
		UT_EQ_INT(0, om_tls_sess_input(t, buf, (size_t)n));
	UT_EQ_INT(OM_TLS_AGAIN, om_tls_sess_handshake(t));
	size_t m;
	while ((m = om_tls_sess_output(t, buf, sizeof(buf))) > 0)
		BIO_write(c->in, buf, (int)m);
	SSL_do_handshake(c->ssl);
	ERR_clear_error();
	n = BIO_read(c->out, buf, sizeof(buf));
	UT_TRUE(n > 5);
	size_t first =
	    split ? 5 + (((size_t)(unsigned char)buf[3] << 8) | (unsigned char)buf[4]) : 0;
	UT_TRUE(first <= (size_t)n);
	if (first) {
		UT_EQ_INT(22, buf[0]); /* a handshake record: the Certificate */
		UT_EQ_INT(0, om_tls_sess_input(t, buf, first));
		UT_EQ_INT(OM_TLS_AGAIN, om_tls_sess_handshake(t));
	}
	between(arg);
	UT_EQ_INT(0, om_tls_sess_input(t, buf + first, (size_t)n - first));
	return om_tls_sess_handshake(t);
}

struct reload {
	struct om_tls_ctx *old, *next;
};

static void do_reload(void *arg)
{
	struct reload *r = arg;
	if (r->next)
		om_tls_ctx_supersede(r->old, r->next);
}

static void reload_case(bool new_trusts, int split, enum om_tls_res want)
{
	struct pki p;
	struct client c;
	struct om_tls_sess *t = NULL;
	pki_make(&p, -3600, 86400);
	struct om_tls_ctx *ctx = server_ctx(&p, 2);
	X509_STORE *other = X509_STORE_new();
	if (new_trusts)
		X509_STORE_add_cert(other, p.ca);
	struct om_tls_opts o = { .min_version = 12, .security_level = 2 };
	struct om_tls_ctx *next = NULL;
	char err[256];
	UT_EQ_INT(0, om_tls_ctx_new(&o, p.srv, NULL, p.srv_key, other, &next, err, sizeof(err)));
	UT_EQ_INT(0, om_tls_sess_new(ctx, &t));
	client_new(&c, p.cli, p.cli_key, TLS1_2_VERSION);
	struct reload r = { ctx, next };
	UT_EQ_INT(want, handshake_split(&c, t, do_reload, &r, split));
	if (want == OM_TLS_FAIL) {
		char detail[256];
		UT_EQ_INT(OM_TLS_R_UNKNOWN_CA, om_tls_sess_reason(t, detail, sizeof(detail)));
		/* the refusal still names the peer */
		UT_TRUE(om_tls_sess_peer_cert(t) != NULL);
	}
	client_free(&c);
	om_tls_sess_free(t);
	om_tls_ctx_free(next);
	om_tls_ctx_free(ctx);
	X509_STORE_free(other);
	pki_free(&p);
}

UT_TEST(handshake_meets_the_trust_in_force_when_it_completes)
{
	/* the CA removed before the client's certificate arrives */
	reload_case(false, 0, OM_TLS_FAIL);
	/* ... after the certificate was verified, before the handshake ends */
	reload_case(false, 1, OM_TLS_FAIL);
	/* a reload that keeps the CA changes nothing */
	reload_case(true, 1, OM_TLS_OK);
	reload_case(true, 0, OM_TLS_OK);
}

static void no_reload(void *arg)
{
	(void)arg;
}

UT_TEST(handshake_split_without_reload_succeeds)
{
	struct pki p;
	struct client c;
	struct om_tls_sess *t = NULL;
	pki_make(&p, -3600, 86400);
	struct om_tls_ctx *ctx = server_ctx(&p, 2);
	UT_EQ_INT(0, om_tls_sess_new(ctx, &t));
	client_new(&c, p.cli, p.cli_key, TLS1_2_VERSION);
	UT_EQ_INT(OM_TLS_OK, handshake_split(&c, t, no_reload, NULL, 1));
	client_free(&c);
	om_tls_sess_free(t);
	om_tls_ctx_free(ctx);
	pki_free(&p);
}

static int oom_session(void *arg)
{
	struct om_tls_ctx *ctx = arg;
	struct om_tls_sess *t = NULL;
	int rc = om_tls_sess_new(ctx, &t);
	om_tls_sess_free(t);
	return rc;
}

UT_TEST(oom_sweep_session)
{
	struct pki p;
	pki_make(&p, -3600, 86400);
	struct om_tls_ctx *ctx = server_ctx(&p, 2);
	UT_TRUE(ut_oom_sweep(oom_session, ctx) >= 2);
	om_tls_ctx_free(ctx);
	pki_free(&p);
}

UT_MAIN(UT_CASE(names_dns_uri_cn), UT_CASE(names_no_wildcards), UT_CASE(eku), UT_CASE(reasons),
        UT_CASE(handshake_mutual_then_data_then_close), UT_CASE(handshake_refusals),
        UT_CASE(handshake_timeout), UT_CASE(ctx_refuses_mismatched_key),
        UT_CASE(device_certificate_is_an_anchor_for_itself_only),
        UT_CASE(crl_of_root_revokes_issuing_ca), UT_CASE(crl_per_issuer_and_stale),
        UT_CASE(refusal_names_subject_issuer_and_failing_certificate),
        UT_CASE(handshake_meets_the_trust_in_force_when_it_completes),
        UT_CASE(handshake_split_without_reload_succeeds), UT_CASE(oom_sweep_session))
