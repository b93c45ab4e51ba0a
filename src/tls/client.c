/* client.c — the client side of mutual TLS (R5 "the same certificate is
 * used as a client when the server connects out"; RFC 3261 §26.2; RFC 5922
 * §7): contexts that present our certificate and verify a gateway's server
 * certificate, and the name check after the handshake.
 *
 * The chain is verified by OpenSSL during the handshake (a failure aborts
 * it with the verify error, reported by om_tls_sess_reason like on the
 * server side). The name is checked afterwards with the very rules used for
 * gateways that connect to us (om_tls_cert_has_name: the host of a SAN URI
 * sip: without a user part, SAN DNS, the CN only without any SAN, never a wildcard), not with
 * OpenSSL's host check, which accepts wildcards. */
#include "tls/tls.h"
#include "core/alloc.h"
#include "tls/tls_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

static const char cipher_list[] = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
                                  "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
                                  "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

static void ssl_err(char *err, size_t errlen, const char *what)
{
	unsigned long e = ERR_peek_last_error();
	char buf[256] = "";
	if (e)
		ERR_error_string_n(e, buf, sizeof(buf));
	snprintf(err, errlen, "%s%s%s", what, *buf ? ": " : "", buf);
	ERR_clear_error();
}

int om_tls_client_ctx_new(const struct om_tls_opts *o, X509 *cert, STACK_OF(X509) * chain,
                          EVP_PKEY *key, X509_STORE *trusted, struct om_tls_ctx **out, char *err,
                          size_t errlen)
{
	SSL_CTX *ctx;
	ERR_clear_error();
	if (!cert || !key || !trusted) {
		snprintf(err, errlen, "a certificate, its key and a trusted store are needed");
		return EINVAL;
	}
	ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx) {
		snprintf(err, errlen, "out of memory");
		ERR_clear_error();
		return ENOMEM;
	}
	SSL_CTX_set_security_level(ctx, o->security_level);
	if (!SSL_CTX_set_min_proto_version(ctx, o->min_version == 13 ? TLS1_3_VERSION
	                                                             : TLS1_2_VERSION)) {
		ssl_err(err, errlen, "cannot set the minimum TLS version");
		goto fail;
	}
	if (!SSL_CTX_set_cipher_list(ctx, cipher_list)) {
		ssl_err(err, errlen, "cannot set the TLS 1.2 cipher list");
		goto fail;
	}
	SSL_CTX_set_options(ctx,
	                    SSL_OP_NO_TICKET | SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	if (SSL_CTX_use_certificate(ctx, cert) != 1) {
		ssl_err(err, errlen, "the certificate cannot be used");
		goto fail;
	}
	for (int i = 0; chain && i < sk_X509_num(chain); i++) {
		if (!SSL_CTX_add1_chain_cert(ctx, sk_X509_value(chain, i))) {
			ssl_err(err, errlen, "the certificate chain cannot be used");
			goto fail;
		}
	}
	if (SSL_CTX_use_PrivateKey(ctx, key) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
		ssl_err(err, errlen, "the private key cannot be used with the certificate");
		goto fail;
	}
	SSL_CTX_set1_cert_store(ctx, trusted);
	X509_VERIFY_PARAM *vp = SSL_CTX_get0_param(ctx);
	X509_VERIFY_PARAM_set_flags(vp, X509_V_FLAG_PARTIAL_CHAIN);
	/* The purpose is not enforced: many gateways' certificates are issued
	 * from one template for both directions. */
	X509_VERIFY_PARAM_set_purpose(vp, X509_PURPOSE_ANY);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_verify_depth(ctx, 8);
	int rc = om_tls_ctx_wrap_i(ctx, trusted, o, out);
	if (rc)
		snprintf(err, errlen, "out of memory");
	return rc;
fail:
	SSL_CTX_free(ctx);
	return EINVAL;
}

int om_tls_client_ctx_from(const struct om_tls_ctx *server, struct om_tls_ctx **out, char *err,
                           size_t errlen)
{
	SSL_CTX *s = om_tls_ctx_ssl_i(server);
	STACK_OF(X509) *chain = NULL;
	SSL_CTX_get0_chain_certs(s, &chain);
	return om_tls_client_ctx_new(om_tls_ctx_opts(server), SSL_CTX_get0_certificate(s), chain,
	                             SSL_CTX_get0_privatekey(s), om_tls_ctx_store(server), out, err,
	                             errlen);
}

int om_tls_client_sess_new(struct om_tls_ctx *ctx, const char *name, struct om_tls_sess **out)
{
	struct om_tls_sess *t;
	unsigned char ip[16];
	int rc = om_tls_sess_new(ctx, &t);
	if (rc)
		return rc;
	SSL *ssl = om_tls_sess_ssl_i(t);
	if (SSL_is_server(ssl)) {
		om_tls_sess_free(t);
		return EINVAL;
	}
	/* RFC 6066 §3: SNI carries DNS names only, never IP literals. */
	if (name && name[0] && inet_pton(AF_INET, name, ip) != 1 &&
	    inet_pton(AF_INET6, name, ip) != 1 && !SSL_set_tlsext_host_name(ssl, name)) {
		ERR_clear_error();
		om_tls_sess_free(t);
		return ENOMEM;
	}
	*out = t;
	return 0;
}

int om_tls_client_check_name(const struct om_tls_sess *t, const char *name, enum om_tls_reject *why)
{
	X509 *x = om_tls_sess_peer_cert(t);
	if (!x) {
		*why = OM_TLS_R_NO_CERT;
		return EACCES;
	}
	if (name && name[0] && om_tls_cert_has_name(x, name))
		return 0;
	*why = om_tls_cert_has_wildcard(x) ? OM_TLS_R_WILDCARD : OM_TLS_R_NO_GATEWAY;
	return EACCES;
}
