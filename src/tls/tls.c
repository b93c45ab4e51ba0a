/* tls.c — OpenSSL 3 server contexts and sessions over memory BIOs (see
 * tls.h; RFC 3261 §26.2, RFC 5246/8446).
 *
 * Every OpenSSL call starts with an empty error queue (ERR_clear_error),
 * so the reason of a failure is the one this call produced and a stale
 * error of another session is never blamed on this peer. */
#include "tls/tls.h"
#include "core/alloc.h"
#include "core/log.h"
#include "tls/tls_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

/* TLS 1.2 suites: ephemeral key exchange and AEAD only. TLS 1.3 suites are
 * all AEAD with forward secrecy; OpenSSL's default list stays. */
static const char cipher_list[] = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
                                  "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
                                  "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

/* The trust in force: shared by a context and the contexts that replaced
 * it (om_tls_ctx_supersede), so a handshake that began before a reload is
 * verified against the trusted store of the newest one. */
struct lineage {
	X509_STORE *store;
	int level;
	uint64_t gen; /* +1 per new trust */
	unsigned refs;
};

struct om_tls_ctx {
	SSL_CTX *ssl;
	X509_STORE *store;
	struct lineage *lin;
	struct om_tls_opts o;
	unsigned refs;
};

struct om_tls_sess {
	SSL *ssl;
	BIO *rbio, *wbio; /* owned by ssl */
	struct om_tls_ctx *ctx;
	unsigned long err; /* first error of the failing call */
	long verify;       /* X509_V_* after a failed handshake */
	int verify_depth;  /* where in the chain it failed */
	char verify_subject[256];
	X509 *leaf;            /* the peer's certificate as verified (reference) */
	uint64_t verified_gen; /* the trust it was verified against */
	bool verified;
	bool failed, established, timed_out;
};

const char *om_tls_reject_str(enum om_tls_reject r)
{
	static const char *const s[] = {
		"none",
		"no client certificate",
		"unknown CA",
		"certificate expired",
		"certificate not yet valid",
		"certificate revoked",
		"no CRL for the issuer",
		"key too small",
		"digest too weak",
		"certificate not acceptable",
		"name matches no gateway",
		"name matches a disabled gateway",
		"wildcard name not accepted",
		"name matches more than one gateway",
		"certificate not for client authentication",
		"protocol version",
		"handshake failed",
		"handshake too slow",
		"no longer trusted",
		"CRL is stale",
	};
	return (unsigned)r < sizeof(s) / sizeof(s[0]) ? s[r] : "?";
}

/* ------------------------------------------------------- verification */

/* True when the store holds a CRL issued under `issuer`. */
static bool issuer_has_crl(X509_STORE_CTX *sc, const X509_NAME *issuer)
{
	STACK_OF(X509_CRL) *crls = X509_STORE_CTX_get1_crls(sc, issuer);
	bool any = crls && sk_X509_CRL_num(crls) > 0;
	sk_X509_CRL_pop_free(crls, X509_CRL_free);
	return any;
}

/* Revocation policy (R5, docs/modules/tls.md): every certificate of the
 * chain is checked against its issuer's CRL (X509_V_FLAG_CRL_CHECK_ALL),
 * so a CRL that revokes an issuing CA is honoured. A CA with no CRL in
 * the trusted store is not checked: "unable to get CRL" is accepted for
 * it alone. A CA that has a CRL here is checked with it, and a stale one
 * (past its nextUpdate) refuses its certificates ("CRL is stale"). */
static int verify_cb(int ok, X509_STORE_CTX *sc)
{
	if (ok)
		return ok;
	int e = X509_STORE_CTX_get_error(sc);
	X509 *cur = X509_STORE_CTX_get_current_cert(sc);
	if (e == X509_V_ERR_UNABLE_TO_GET_CRL && cur &&
	    !issuer_has_crl(sc, X509_get_issuer_name(cur))) {
		X509_STORE_CTX_set_error(sc, X509_V_OK);
		return 1;
	}
	/* A trust anchor that is an intermediate (partial chain): RFC 5280
	 * §6.1 does not check the anchor's revocation, and its issuer is not
	 * here to verify a CRL with. */
	STACK_OF(X509) *chain = X509_STORE_CTX_get0_chain(sc);
	if ((e == X509_V_ERR_UNABLE_TO_GET_CRL_ISSUER || e == X509_V_ERR_CRL_SIGNATURE_FAILURE) &&
	    chain && X509_STORE_CTX_get_error_depth(sc) == sk_X509_num(chain) - 1) {
		X509_STORE_CTX_set_error(sc, X509_V_OK);
		return 1;
	}
	return 0;
}

static bool store_has_crls(X509_STORE *store)
{
	STACK_OF(X509_OBJECT) *objs = X509_STORE_get0_objects(store);
	for (int i = 0; i < sk_X509_OBJECT_num(objs); i++)
		if (X509_OBJECT_get_type(sk_X509_OBJECT_value(objs, i)) == X509_LU_CRL)
			return true;
	return false;
}

struct verdict {
	long err;  /* X509_V_* */
	int depth; /* of the certificate that failed */
	char subject[256];
	STACK_OF(X509) * chain; /* the verified chain (on success), owned */
};

/* One verification, the same for a handshake and for the re-check of an
 * open connection: partial chains (an intermediate in the store is an
 * anchor), any purpose (the EKU is checked by the caller), the security
 * level for keys and digests, and the revocation policy above. 1 when
 * valid; 0 with v->err; -1 on no memory. */
static int verify_once(X509_STORE *store, int level, X509 *leaf, STACK_OF(X509) * untrusted,
                       bool partial, struct verdict *v)
{
	X509_STORE_CTX *sc = X509_STORE_CTX_new();
	int ok = -1;
	memset(v, 0, sizeof(*v));
	v->err = X509_V_ERR_OUT_OF_MEM;
	if (!sc || X509_STORE_CTX_init(sc, store, leaf, untrusted) != 1)
		goto out;
	X509_VERIFY_PARAM *vp = X509_STORE_CTX_get0_param(sc);
	unsigned long flags = partial ? X509_V_FLAG_PARTIAL_CHAIN : 0;
	if (store_has_crls(store))
		flags |= X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL;
	X509_VERIFY_PARAM_set_flags(vp, flags);
	X509_VERIFY_PARAM_set_purpose(vp, X509_PURPOSE_ANY);
	X509_VERIFY_PARAM_set_auth_level(vp, level);
	X509_VERIFY_PARAM_set_depth(vp, 8);
	X509_STORE_CTX_set_verify_cb(sc, verify_cb);
	ok = X509_verify_cert(sc) == 1;
	v->err = X509_STORE_CTX_get_error(sc);
	if (ok) {
		v->err = X509_V_OK;
		v->chain = X509_STORE_CTX_get1_chain(sc);
	} else {
		if (v->err == X509_V_OK)
			v->err = X509_V_ERR_UNSPECIFIED;
		v->depth = X509_STORE_CTX_get_error_depth(sc);
		X509 *bad = X509_STORE_CTX_get_current_cert(sc);
		om_tls_cert_subject(bad, v->subject, sizeof(v->subject));
	}
out:
	X509_STORE_CTX_free(sc);
	ERR_clear_error();
	return ok;
}

/* One verification, the same for a handshake and for the re-check of an
 * open connection: any purpose (the EKU is checked by the caller), the
 * security level for keys and digests, the revocation policy above. The
 * chain is first built to a self-signed root of the store, so that a root's
 * CRL revoking an intermediate is honoured even when that intermediate is
 * trusted too; only when no root is reachable is an intermediate of the
 * store an anchor of its own (partial chain). 1 when valid; 0 with v->err;
 * -1 on no memory. */
/* The chain verification's own error for a certificate vouched for by a
 * device's self-signed certificate (om_tls_cert_is_device); mapped to
 * "unknown CA", told apart in the detail. */
#define DEVICE_ISSUER X509_V_ERR_APPLICATION_VERIFICATION

/* A device's own self-signed certificate in the trusted store (a gateway's,
 * the seed's self-signed route) is an anchor for itself only: above the
 * leaf of a verified chain it refuses the chain, CA:TRUE or keyCertSign
 * notwithstanding — else gateway A's key could issue a certificate
 * accepted as gateway B. 1 when the chain stands, 0 with v->err. */
static int device_anchor_check(struct verdict *v)
{
	for (int i = 1; v->chain && i < sk_X509_num(v->chain); i++) {
		X509 *x = sk_X509_value(v->chain, i);
		if (!om_tls_cert_is_device(x))
			continue;
		v->err = DEVICE_ISSUER;
		v->depth = i;
		om_tls_cert_subject(x, v->subject, sizeof(v->subject));
		sk_X509_pop_free(v->chain, X509_free);
		v->chain = NULL;
		return 0;
	}
	return 1;
}

static int verify_chain(X509_STORE *store, int level, X509 *leaf, STACK_OF(X509) * untrusted,
                        struct verdict *v)
{
	int ok = verify_once(store, level, leaf, untrusted, false, v);
	if (ok == 0 && (v->err == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT ||
	                v->err == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY ||
	                v->err == X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE ||
	                v->err == X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN ||
	                v->err == X509_V_ERR_CERT_UNTRUSTED)) {
		struct verdict first = *v;
		ok = verify_once(store, level, leaf, untrusted, true, v);
		if (ok == 0 && (v->err == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT ||
		                v->err == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY ||
		                v->err == X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE))
			*v = first; /* no anchor either way: the first reason */
	}
	if (ok == 1)
		ok = device_anchor_check(v);
	return ok;
}

static void lineage_free(struct lineage *l)
{
	if (!l || --l->refs)
		return;
	X509_STORE_free(l->store);
	om_free(l);
}

/* OpenSSL's verification of the client's chain, replaced by verify_chain
 * against the trust in force now (the newest context's store), whatever
 * context the session was made from. */
static int app_verify(X509_STORE_CTX *sc, void *arg)
{
	struct om_tls_ctx *c = arg;
	SSL *ssl = X509_STORE_CTX_get_ex_data(sc, SSL_get_ex_data_X509_STORE_CTX_idx());
	struct om_tls_sess *t = ssl ? SSL_get_app_data(ssl) : NULL;
	X509 *leaf = X509_STORE_CTX_get0_cert(sc);
	struct verdict v;
	int ok =
	    verify_chain(c->lin->store, c->lin->level, leaf, X509_STORE_CTX_get0_untrusted(sc), &v);
	if (t) {
		X509_free(t->leaf);
		t->leaf = leaf && X509_up_ref(leaf) ? leaf : NULL;
		t->verified_gen = c->lin->gen;
		t->verified = ok == 1;
		t->verify_depth = v.depth;
		snprintf(t->verify_subject, sizeof(t->verify_subject), "%s", v.subject);
	}
	X509_STORE_CTX_set_error(sc, (int)v.err);
	if (ok == 1) {
		X509_STORE_CTX_set0_verified_chain(sc, v.chain);
		return 1;
	}
	X509_STORE_CTX_set_error_depth(sc, v.depth);
	return 0;
}

/* ------------------------------------------------------------- contexts */

static void ssl_err(char *err, size_t errlen, const char *what)
{
	unsigned long e = ERR_peek_last_error();
	char buf[256] = "";
	if (e)
		ERR_error_string_n(e, buf, sizeof(buf));
	snprintf(err, errlen, "%s%s%s", what, *buf ? ": " : "", buf);
	ERR_clear_error();
}

/* The CertificateRequest lists the subjects of the trusted store, so a
 * gateway holding several certificates picks the one we can verify. The
 * list has a 16-bit length (RFC 5246 §7.4.4, RFC 8446 §4.2.4: each name
 * with its own 2-byte length): a trusted store whose names do not fit
 * would make OpenSSL fail every handshake with an internal error. Each
 * subject is sent once; when they take more than OM_TLS_CA_NAMES_MAX
 * bytes none is sent (an empty list lets the gateway choose, RFC 5246
 * §7.4.4) and the log says so. */
static int name_cmp(const X509_NAME *const *a, const X509_NAME *const *b)
{
	return X509_NAME_cmp(*a, *b);
}

static int client_ca_names(SSL_CTX *ctx, X509_STORE *store)
{
	STACK_OF(X509_NAME) *names = sk_X509_NAME_new(name_cmp);
	STACK_OF(X509_OBJECT) *objs = X509_STORE_get0_objects(store);
	if (!names)
		return ENOMEM;
	for (int i = 0; i < sk_X509_OBJECT_num(objs); i++) {
		X509_OBJECT *o = sk_X509_OBJECT_value(objs, i);
		if (X509_OBJECT_get_type(o) != X509_LU_X509)
			continue;
		X509_NAME *n = X509_NAME_dup(X509_get_subject_name(X509_OBJECT_get0_X509(o)));
		if (!n || !sk_X509_NAME_push(names, n)) {
			X509_NAME_free(n);
			sk_X509_NAME_pop_free(names, X509_NAME_free);
			return ENOMEM;
		}
	}
	sk_X509_NAME_sort(names);
	size_t bytes = 0;
	for (int i = sk_X509_NAME_num(names) - 1; i >= 0; i--) {
		X509_NAME *n = sk_X509_NAME_value(names, i);
		if (i > 0 && !X509_NAME_cmp(n, sk_X509_NAME_value(names, i - 1))) {
			X509_NAME_free(sk_X509_NAME_delete(names, i)); /* the same subject twice */
			continue;
		}
		int len = i2d_X509_NAME(n, NULL);
		bytes += 2 + (size_t)(len > 0 ? len : 0);
	}
	if (bytes > OM_TLS_CA_NAMES_MAX) {
		char nn[24], nb[24];
		snprintf(nn, sizeof(nn), "%d", sk_X509_NAME_num(names));
		snprintf(nb, sizeof(nb), "%zu", bytes);
		om_log(OM_LOG_WARNING,
		       "the trusted store's CA names do not fit in a CertificateRequest: none "
		       "are sent, gateways choose their certificate themselves",
		       "names", nn, "bytes", nb, NULL);
		sk_X509_NAME_pop_free(names, X509_NAME_free);
		names = sk_X509_NAME_new_null();
		if (!names)
			return ENOMEM;
	}
	ERR_clear_error();
	SSL_CTX_set_client_CA_list(ctx, names);
	return 0;
}

int om_tls_ctx_new(const struct om_tls_opts *o, X509 *cert, STACK_OF(X509) * chain, EVP_PKEY *key,
                   X509_STORE *trusted, struct om_tls_ctx **out, char *err, size_t errlen)
{
	struct om_tls_ctx *c = NULL;
	SSL_CTX *ctx = NULL;
	int rc = EINVAL;
	ERR_clear_error();
	if (!cert || !key || !trusted) {
		snprintf(err, errlen, "a certificate, its key and a trusted store are needed");
		return EINVAL;
	}
	c = om_calloc(1, sizeof(*c));
	ctx = SSL_CTX_new(TLS_server_method());
	if (!c || !ctx) {
		snprintf(err, errlen, "out of memory");
		rc = ENOMEM;
		goto out;
	}
	SSL_CTX_set_security_level(ctx, o->security_level);
	if (!SSL_CTX_set_min_proto_version(ctx, o->min_version == 13 ? TLS1_3_VERSION
	                                                             : TLS1_2_VERSION)) {
		ssl_err(err, errlen, "cannot set the minimum TLS version");
		goto out;
	}
	if (!SSL_CTX_set_cipher_list(ctx, cipher_list)) {
		ssl_err(err, errlen, "cannot set the TLS 1.2 cipher list");
		goto out;
	}
	/* No resumption: every connection proves its certificate again, and
	 * is checked against the trust in force when it connects. */
	SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET | SSL_OP_NO_RENEGOTIATION |
	                             SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_COMPRESSION);
	SSL_CTX_set_num_tickets(ctx, 0);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"openum-sip", 10);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	if (SSL_CTX_use_certificate(ctx, cert) != 1) {
		ssl_err(err, errlen, "the certificate cannot be used");
		goto out;
	}
	for (int i = 0; chain && i < sk_X509_num(chain); i++) {
		if (!SSL_CTX_add1_chain_cert(ctx, sk_X509_value(chain, i))) {
			ssl_err(err, errlen, "the certificate chain cannot be used");
			goto out;
		}
	}
	if (SSL_CTX_use_PrivateKey(ctx, key) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
		ssl_err(err, errlen, "the private key cannot be used with the certificate");
		goto out;
	}
	SSL_CTX_set1_cert_store(ctx, trusted);
	X509_VERIFY_PARAM *vp = SSL_CTX_get0_param(ctx);
	/* An intermediate in the trusted store is an anchor of its own. The
	 * purpose is checked by us (serverAuth-only passes with 1133). The
	 * chain itself is verified by app_verify (verify_chain). */
	X509_VERIFY_PARAM_set_flags(vp, X509_V_FLAG_PARTIAL_CHAIN);
	X509_VERIFY_PARAM_set_purpose(vp, X509_PURPOSE_ANY);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	SSL_CTX_set_verify_depth(ctx, 8);
	SSL_CTX_set_cert_verify_callback(ctx, app_verify, c);
	rc = client_ca_names(ctx, trusted);
	if (rc) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	c->lin = om_calloc(1, sizeof(*c->lin));
	if (!c->lin) {
		snprintf(err, errlen, "out of memory");
		rc = ENOMEM;
		goto out;
	}
	c->lin->refs = 1;
	c->lin->store = trusted;
	X509_STORE_up_ref(trusted);
	c->lin->level = o->security_level;
	c->ssl = ctx;
	c->store = trusted;
	X509_STORE_up_ref(trusted);
	c->o = *o;
	c->refs = 1;
	*out = c;
	return 0;
out:
	SSL_CTX_free(ctx);
	om_free(c);
	ERR_clear_error();
	return rc;
}

struct om_tls_ctx *om_tls_ctx_ref(struct om_tls_ctx *c)
{
	if (c)
		c->refs++;
	return c;
}

void om_tls_ctx_free(struct om_tls_ctx *c)
{
	if (!c || --c->refs)
		return;
	SSL_CTX_free(c->ssl);
	X509_STORE_free(c->store);
	lineage_free(c->lin);
	om_free(c);
}

void om_tls_ctx_supersede(struct om_tls_ctx *old, struct om_tls_ctx *next)
{
	if (!old || !next || old == next || old->lin == next->lin)
		return;
	struct lineage *l = old->lin;
	lineage_free(next->lin);
	next->lin = l;
	l->refs++;
	X509_STORE_up_ref(next->store);
	X509_STORE_free(l->store);
	l->store = next->store;
	l->level = next->o.security_level;
	l->gen++;
}

X509_STORE *om_tls_ctx_store(const struct om_tls_ctx *c)
{
	return c->store;
}

const struct om_tls_opts *om_tls_ctx_opts(const struct om_tls_ctx *c)
{
	return &c->o;
}

X509 *om_tls_ctx_cert(const struct om_tls_ctx *c)
{
	return SSL_CTX_get0_certificate(c->ssl);
}

/* ------------------------------------------------------------- sessions */

int om_tls_sess_new(struct om_tls_ctx *ctx, struct om_tls_sess **out)
{
	struct om_tls_sess *t = om_calloc(1, sizeof(*t));
	ERR_clear_error();
	if (!t)
		return ENOMEM;
	t->ssl = SSL_new(ctx->ssl);
	t->rbio = BIO_new(BIO_s_mem());
	t->wbio = BIO_new(BIO_s_mem());
	if (!t->ssl || !t->rbio || !t->wbio) {
		BIO_free(t->rbio);
		BIO_free(t->wbio);
		SSL_free(t->ssl);
		om_free(t);
		ERR_clear_error();
		return ENOMEM;
	}
	/* An empty read BIO means "more later", never end of file. */
	BIO_set_mem_eof_return(t->rbio, -1);
	BIO_set_mem_eof_return(t->wbio, -1);
	SSL_set_bio(t->ssl, t->rbio, t->wbio);
	SSL_set_app_data(t->ssl, t);
	/* A server context accepts; a client one (client.c) connects. */
	if (SSL_is_server(t->ssl))
		SSL_set_accept_state(t->ssl);
	else
		SSL_set_connect_state(t->ssl);
	t->ctx = om_tls_ctx_ref(ctx);
	*out = t;
	return 0;
}

void om_tls_sess_free(struct om_tls_sess *t)
{
	if (!t)
		return;
	SSL_free(t->ssl);
	X509_free(t->leaf);
	om_tls_ctx_free(t->ctx);
	om_free(t);
}

int om_tls_sess_input(struct om_tls_sess *t, const void *data, size_t len)
{
	ERR_clear_error();
	while (len) {
		int chunk = len > (1u << 30) ? 1 << 30 : (int)len;
		int n = BIO_write(t->rbio, data, chunk);
		if (n <= 0) {
			ERR_clear_error();
			return ENOMEM;
		}
		data = (const char *)data + n;
		len -= (size_t)n;
	}
	return 0;
}

bool om_tls_sess_established(const struct om_tls_sess *t)
{
	return t->established;
}

static enum om_tls_res fail(struct om_tls_sess *t, int ssl_error)
{
	t->failed = true;
	(void)ssl_error;
	t->err = ERR_peek_error();
	ERR_clear_error();
	return OM_TLS_FAIL;
}

enum om_tls_res om_tls_sess_handshake(struct om_tls_sess *t)
{
	if (t->failed)
		return OM_TLS_FAIL;
	if (t->established)
		return OM_TLS_OK;
	ERR_clear_error();
	int r = SSL_do_handshake(t->ssl);
	if (r == 1) {
		struct lineage *l = t->ctx->lin;
		if (l && t->verified && t->verified_gen != l->gen) {
			/* The trust changed between the verification of the
			 * chain and the end of the handshake: the trust in force
			 * now decides. */
			struct verdict v;
			int ok = verify_chain(l->store, l->level, t->leaf,
			                      SSL_get_peer_cert_chain(t->ssl), &v);
			sk_X509_pop_free(v.chain, X509_free);
			if (ok != 1) {
				t->verify = v.err;
				t->verify_depth = v.depth;
				snprintf(t->verify_subject, sizeof(t->verify_subject), "%s",
				         v.subject);
				t->failed = true;
				return OM_TLS_FAIL;
			}
			t->verified_gen = l->gen;
		}
		t->established = true;
		return OM_TLS_OK;
	}
	int e = SSL_get_error(t->ssl, r);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
		ERR_clear_error();
		return OM_TLS_AGAIN;
	}
	t->verify = SSL_get_verify_result(t->ssl);
	return fail(t, e);
}

enum om_tls_res om_tls_sess_read(struct om_tls_sess *t, char *buf, size_t cap, size_t *n)
{
	if (t->failed)
		return OM_TLS_FAIL;
	if (cap == 0)
		return OM_TLS_AGAIN;
	ERR_clear_error();
	int r = SSL_read(t->ssl, buf, cap > (1u << 30) ? 1 << 30 : (int)cap);
	if (r > 0) {
		*n = (size_t)r;
		return OM_TLS_OK;
	}
	int e = SSL_get_error(t->ssl, r);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
		ERR_clear_error();
		return OM_TLS_AGAIN;
	}
	if (e == SSL_ERROR_ZERO_RETURN) {
		ERR_clear_error();
		return OM_TLS_CLOSED;
	}
	return fail(t, e);
}

int om_tls_sess_write(struct om_tls_sess *t, const void *data, size_t len)
{
	if (t->failed || !t->established)
		return EPIPE;
	ERR_clear_error();
	while (len) {
		int chunk = len > (1u << 30) ? 1 << 30 : (int)len;
		int r = SSL_write(t->ssl, data, chunk);
		if (r <= 0) {
			int e = SSL_get_error(t->ssl, r);
			fail(t, e);
			return EPIPE;
		}
		data = (const char *)data + r;
		len -= (size_t)r;
	}
	return 0;
}

void om_tls_sess_shutdown(struct om_tls_sess *t)
{
	if (t->failed || !t->established)
		return;
	ERR_clear_error();
	SSL_shutdown(t->ssl);
	ERR_clear_error();
}

size_t om_tls_sess_output(struct om_tls_sess *t, char *buf, size_t cap)
{
	if (cap == 0 || BIO_ctrl_pending(t->wbio) == 0)
		return 0;
	int n = BIO_read(t->wbio, buf, cap > (1u << 30) ? 1 << 30 : (int)cap);
	ERR_clear_error();
	return n > 0 ? (size_t)n : 0;
}

enum om_tls_reject om_tls_reject_from_verify(long v)
{
	switch (v) {
	case X509_V_OK:
		return OM_TLS_R_NONE;
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
	case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
	case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
	case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
	case X509_V_ERR_CERT_UNTRUSTED:
	case DEVICE_ISSUER:
		return OM_TLS_R_UNKNOWN_CA;
	case X509_V_ERR_CERT_HAS_EXPIRED:
		return OM_TLS_R_EXPIRED;
	case X509_V_ERR_CERT_NOT_YET_VALID:
		return OM_TLS_R_NOT_YET_VALID;
	case X509_V_ERR_CERT_REVOKED:
		return OM_TLS_R_REVOKED;
	case X509_V_ERR_UNABLE_TO_GET_CRL:
	case X509_V_ERR_CRL_NOT_YET_VALID:
		return OM_TLS_R_NO_CRL;
	case X509_V_ERR_CRL_HAS_EXPIRED:
		return OM_TLS_R_CRL_STALE;
	case X509_V_ERR_EE_KEY_TOO_SMALL:
	case X509_V_ERR_CA_KEY_TOO_SMALL:
		return OM_TLS_R_KEY_TOO_SMALL;
	case X509_V_ERR_CA_MD_TOO_WEAK:
		return OM_TLS_R_DIGEST_TOO_WEAK;
	default:
		return OM_TLS_R_BAD_CERT;
	}
}

void om_tls_sess_timeout(struct om_tls_sess *t)
{
	if (t->established)
		return;
	t->failed = true;
	t->timed_out = true;
}

enum om_tls_reject om_tls_sess_reason(const struct om_tls_sess *t, char *detail, size_t len)
{
	if (len)
		*detail = '\0';
	if (t->timed_out) {
		snprintf(detail, len, "no complete handshake within the time limit");
		return OM_TLS_R_TIMEOUT;
	}
	if (t->verify == DEVICE_ISSUER) {
		snprintf(detail, len,
		         "issued by %s, a gateway's own certificate (self-signed, in the trusted "
		         "store): it is trusted for itself only and vouches for no other "
		         "certificate (chain certificate at depth %d)",
		         t->verify_subject, t->verify_depth);
		return OM_TLS_R_UNKNOWN_CA;
	}
	if (t->verify != X509_V_OK) {
		if (t->verify_depth > 0 && t->verify_subject[0])
			snprintf(detail, len, "%s (chain certificate at depth %d: %s)",
			         X509_verify_cert_error_string(t->verify), t->verify_depth,
			         t->verify_subject);
		else
			snprintf(detail, len, "%s", X509_verify_cert_error_string(t->verify));
		return om_tls_reject_from_verify(t->verify);
	}
	if (t->err) {
		ERR_error_string_n(t->err, detail, len);
		if (ERR_GET_LIB(t->err) == ERR_LIB_SSL) {
			switch (ERR_GET_REASON(t->err)) {
			case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE:
			case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED:
				return OM_TLS_R_NO_CERT;
			case SSL_R_UNSUPPORTED_PROTOCOL:
			case SSL_R_WRONG_VERSION_NUMBER:
			case SSL_R_VERSION_TOO_LOW:
			case SSL_R_UNKNOWN_PROTOCOL:
			case SSL_R_TLSV1_ALERT_PROTOCOL_VERSION:
			case SSL_R_UNSUPPORTED_SSL_VERSION:
				return OM_TLS_R_PROTOCOL;
			case SSL_R_EE_KEY_TOO_SMALL:
			case SSL_R_CA_KEY_TOO_SMALL:
				return OM_TLS_R_KEY_TOO_SMALL;
			case SSL_R_CA_MD_TOO_WEAK:
				return OM_TLS_R_DIGEST_TOO_WEAK;
			default:
				break;
			}
		}
		return OM_TLS_R_HANDSHAKE;
	}
	snprintf(detail, len, "connection closed during the handshake");
	return OM_TLS_R_HANDSHAKE;
}

X509 *om_tls_sess_peer_cert(const struct om_tls_sess *t)
{
	X509 *x = SSL_get0_peer_certificate(t->ssl);
	/* After a failed verification OpenSSL keeps no peer certificate:
	 * the one seen by the verification names the peer in events. */
	return x ? x : t->leaf;
}

STACK_OF(X509) * om_tls_sess_peer_chain(const struct om_tls_sess *t)
{
	return SSL_get_peer_cert_chain(t->ssl);
}

const char *om_tls_sess_version(const struct om_tls_sess *t)
{
	return SSL_get_version(t->ssl);
}

const char *om_tls_sess_cipher(const struct om_tls_sess *t)
{
	return SSL_get_cipher_name(t->ssl);
}

int om_tls_chain_verify(X509_STORE *store, int security_level, X509 *leaf, STACK_OF(X509) * chain,
                        enum om_tls_reject *why)
{
	struct verdict v;
	int ok = verify_chain(store, security_level, leaf, chain, &v);
	sk_X509_pop_free(v.chain, X509_free);
	if (ok == 1)
		return 0;
	if (ok < 0)
		return ENOMEM;
	*why = om_tls_reject_from_verify(v.err);
	if (*why == OM_TLS_R_NONE)
		*why = OM_TLS_R_BAD_CERT;
	return EACCES;
}

/* ------------------------------------------------ for client.c */

int om_tls_ctx_wrap_i(SSL_CTX *ssl, X509_STORE *store, const struct om_tls_opts *o,
                      struct om_tls_ctx **out)
{
	struct om_tls_ctx *c = om_calloc(1, sizeof(*c));
	if (!c) {
		SSL_CTX_free(ssl);
		return ENOMEM;
	}
	c->lin = om_calloc(1, sizeof(*c->lin));
	if (!c->lin) {
		SSL_CTX_free(ssl);
		om_free(c);
		return ENOMEM;
	}
	c->lin->refs = 1;
	c->lin->store = store;
	X509_STORE_up_ref(store);
	c->lin->level = o->security_level;
	/* The gateway's server chain is verified like a client's chain: one
	 * policy (revocation per issuer, root first) both ways. */
	SSL_CTX_set_cert_verify_callback(ssl, app_verify, c);
	c->ssl = ssl;
	c->store = store;
	X509_STORE_up_ref(store);
	c->o = *o;
	c->refs = 1;
	*out = c;
	return 0;
}

SSL *om_tls_sess_ssl_i(struct om_tls_sess *t)
{
	return t->ssl;
}

SSL_CTX *om_tls_ctx_ssl_i(const struct om_tls_ctx *c)
{
	return c->ssl;
}
