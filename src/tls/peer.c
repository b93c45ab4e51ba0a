/* peer.c — what a client certificate says about its holder: the names it
 * carries (RFC 5922 §7.1: SAN URI sip:/sips: and dNSName, the subject CN
 * only when there is no SAN; §7.2: no wildcards), its extended key usage,
 * and whether its chain still verifies against a (new) trusted store. */
#include "tls/tls.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

/* The host part of a SIP URI (RFC 3261 §19.1.1):
 *   SIP-URI = ("sip:" / "sips:") [ userinfo "@" ] hostport uri-parameters [ headers ]
 * host ends at ':' (port), ';' (parameters), '?' (headers) or '>'. An IPv6
 * reference keeps its brackets (it never equals a TLS name). */
static bool uri_host(const char *u, size_t len, const char **host, size_t *hlen)
{
	size_t i;
	if (len > 4 && !strncasecmp(u, "sip:", 4))
		i = 4;
	else if (len > 5 && !strncasecmp(u, "sips:", 5))
		i = 5;
	else
		return false;
	const char *rest = u + i;
	size_t rlen = len - i;
	size_t end = 0;
	while (end < rlen && rest[end] != ';' && rest[end] != '?' && rest[end] != '>')
		end++;
	const char *at = memchr(rest, '@', end);
	if (at) {
		rlen = end - (size_t)(at + 1 - rest);
		rest = at + 1;
		end = rlen;
	}
	size_t h = 0;
	if (end && rest[0] == '[') {
		while (h < end && rest[h] != ']')
			h++;
		if (h < end)
			h++;
	} else {
		while (h < end && rest[h] != ':')
			h++;
	}
	if (h == 0)
		return false;
	*host = rest;
	*hlen = h;
	return true;
}

static bool asn1_text(const ASN1_STRING *s, const char **p, size_t *len)
{
	if (!s)
		return false;
	*p = (const char *)ASN1_STRING_get0_data(s);
	int n = ASN1_STRING_length(s);
	if (n <= 0 || memchr(*p, '\0', (size_t)n))
		return false; /* embedded NUL: never a name */
	*len = (size_t)n;
	return true;
}

bool om_tls_cert_has_name(X509 *x, const char *name)
{
	if (!x || !name || !*name || strchr(name, '*'))
		return false;
	size_t nlen = strlen(name);
	GENERAL_NAMES *sans = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	bool any_san = sans && sk_GENERAL_NAME_num(sans) > 0;
	bool found = false;
	for (int i = 0; any_san && i < sk_GENERAL_NAME_num(sans) && !found; i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(sans, i);
		const char *p, *h;
		size_t len, hlen;
		if (g->type != GEN_URI || !asn1_text(g->d.uniformResourceIdentifier, &p, &len))
			continue;
		if (uri_host(p, len, &h, &hlen) && hlen == nlen && !strncasecmp(h, name, nlen))
			found = true;
	}
	GENERAL_NAMES_free(sans);
	if (found)
		return true;
	unsigned flags =
	    X509_CHECK_FLAG_NO_WILDCARDS | (any_san ? X509_CHECK_FLAG_NEVER_CHECK_SUBJECT : 0);
	int r = X509_check_host(x, name, nlen, flags, NULL);
	ERR_clear_error();
	return r == 1;
}

bool om_tls_cert_has_wildcard(X509 *x)
{
	if (!x)
		return false;
	GENERAL_NAMES *sans = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	bool any_san = sans && sk_GENERAL_NAME_num(sans) > 0;
	bool wild = false;
	for (int i = 0; any_san && i < sk_GENERAL_NAME_num(sans); i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(sans, i);
		const char *p;
		size_t len;
		if (g->type == GEN_DNS && asn1_text(g->d.dNSName, &p, &len) && memchr(p, '*', len))
			wild = true;
		if (g->type == GEN_URI && asn1_text(g->d.uniformResourceIdentifier, &p, &len) &&
		    memchr(p, '*', len))
			wild = true;
	}
	GENERAL_NAMES_free(sans);
	if (any_san)
		return wild;
	X509_NAME *subj = X509_get_subject_name(x);
	for (int i = -1; (i = X509_NAME_get_index_by_NID(subj, NID_commonName, i)) >= 0;) {
		const char *p;
		size_t len;
		X509_NAME_ENTRY *e = X509_NAME_get_entry(subj, i);
		if (asn1_text(X509_NAME_ENTRY_get_data(e), &p, &len) && memchr(p, '*', len))
			return true;
	}
	return false;
}

enum om_tls_eku om_tls_cert_eku(X509 *x)
{
	uint32_t f = X509_get_extension_flags(x);
	if (!(f & EXFLAG_XKUSAGE))
		return OM_TLS_EKU_CLIENT;
	uint32_t k = X509_get_extended_key_usage(x);
	if (k & (XKU_SSL_CLIENT | XKU_ANYEKU))
		return OM_TLS_EKU_CLIENT;
	if (k & XKU_SSL_SERVER)
		return OM_TLS_EKU_SERVER_ONLY;
	return OM_TLS_EKU_NEITHER;
}

int om_tls_chain_verify(X509_STORE *store, int security_level, X509 *leaf, STACK_OF(X509) * chain,
                        enum om_tls_reject *why)
{
	X509_STORE_CTX *sc = X509_STORE_CTX_new();
	int rc = EACCES;
	ERR_clear_error();
	if (!sc)
		return ENOMEM;
	if (X509_STORE_CTX_init(sc, store, leaf, chain) != 1) {
		rc = ENOMEM;
		goto out;
	}
	X509_VERIFY_PARAM *vp = X509_STORE_CTX_get0_param(sc);
	X509_VERIFY_PARAM_set_flags(vp, X509_V_FLAG_PARTIAL_CHAIN);
	X509_VERIFY_PARAM_set_purpose(vp, X509_PURPOSE_ANY);
	X509_VERIFY_PARAM_set_auth_level(vp, security_level);
	if (X509_verify_cert(sc) == 1) {
		rc = 0;
	} else {
		*why = om_tls_reject_from_verify(X509_STORE_CTX_get_error(sc));
		if (*why == OM_TLS_R_NONE)
			*why = OM_TLS_R_BAD_CERT;
	}
out:
	X509_STORE_CTX_free(sc);
	ERR_clear_error();
	return rc;
}

void om_tls_cert_subject(X509 *x, char *buf, size_t len)
{
	if (!len)
		return;
	*buf = '\0';
	if (!x)
		return;
	BIO *b = BIO_new(BIO_s_mem());
	if (!b)
		return;
	if (X509_NAME_print_ex(b, X509_get_subject_name(x), 0, XN_FLAG_RFC2253) >= 0) {
		int n = BIO_read(b, buf, (int)len - 1);
		buf[n > 0 ? n : 0] = '\0';
	}
	BIO_free(b);
	ERR_clear_error();
}
