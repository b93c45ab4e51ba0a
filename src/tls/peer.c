/* peer.c — what a client certificate says about its holder: the names it
 * carries (RFC 5922 §7.1: SAN URI sip:/sips: and dNSName, the subject CN
 * only when there is no SAN; §7.2: no wildcards), its extended key usage,
 * and whether its chain still verifies against a (new) trusted store. */
#include "tls/tls.h"
#include "core/alloc.h"
#include "core/fqdn.h"

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
	/* A name that breaks the host-name rules (".example.com" would ask
	 * X509_check_host for any subdomain) never reaches the check. */
	if (!x || !name || om_fqdn_check(name, 0, NULL, 0) != 0)
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

static void name_text(const X509_NAME *n, char *buf, size_t len)
{
	BIO *b = BIO_new(BIO_s_mem());
	if (!b)
		return;
	if (X509_NAME_print_ex(b, n, 0, XN_FLAG_RFC2253) >= 0) {
		int k = BIO_read(b, buf, (int)len - 1);
		buf[k > 0 ? k : 0] = '\0';
	}
	BIO_free(b);
	ERR_clear_error();
}

void om_tls_cert_issuer(X509 *x, char *buf, size_t len)
{
	if (!len)
		return;
	*buf = '\0';
	if (x)
		name_text(X509_get_issuer_name(x), buf, len);
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

/* ---------------------------------------------- names, extracted once */

void om_tls_names_free(struct om_tls_names *n)
{
	if (!n)
		return;
	om_free(n->v);
	om_free(n->buf);
	memset(n, 0, sizeof(*n));
}

/* Adds one candidate name (any bytes) in canonical form when it is a host
 * name; a '*' only marks the certificate as carrying a wildcard. */
static int add_name(struct om_tls_names *n, const char *p, size_t len)
{
	char canon[OM_FQDN_MAX + 2], raw[OM_FQDN_MAX + 2];
	if (memchr(p, '*', len)) {
		n->wildcard = true;
		return 0;
	}
	if (len == 0 || len > OM_FQDN_MAX + 1)
		return 0;
	memcpy(raw, p, len);
	raw[len] = '\0';
	if (om_fqdn_check(raw, 0, NULL, 0) != 0 || om_fqdn_norm(raw, len, canon, sizeof(canon)))
		return 0;
	for (size_t i = 0; i < n->n; i++)
		if (!strcmp(n->v[i], canon))
			return 0; /* one name given twice (DNS and URI) counts once */
	if (n->n == OM_TLS_NAMES_MAX) {
		n->truncated = true;
		return 0;
	}
	size_t cl = strlen(canon) + 1;
	if (!n->buf) {
		n->buf = om_malloc(OM_TLS_NAMES_MAX * (OM_FQDN_MAX + 1));
		n->v = om_calloc(OM_TLS_NAMES_MAX, sizeof(*n->v));
		if (!n->buf || !n->v)
			return ENOMEM;
	}
	char *dst = n->buf + n->used;
	memcpy(dst, canon, cl);
	n->used += cl;
	n->v[n->n++] = dst;
	return 0;
}

int om_tls_cert_names(X509 *x, struct om_tls_names *out)
{
	struct om_tls_names n;
	int err = 0;
	memset(&n, 0, sizeof(n));
	memset(out, 0, sizeof(*out));
	if (!x)
		return EINVAL;
	GENERAL_NAMES *sans = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	bool any_san = sans && sk_GENERAL_NAME_num(sans) > 0;
	for (int i = 0; any_san && i < sk_GENERAL_NAME_num(sans) && !err; i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(sans, i);
		const char *p, *h;
		size_t len, hlen;
		if (g->type == GEN_URI && asn1_text(g->d.uniformResourceIdentifier, &p, &len)) {
			/* RFC 5922 §7.1: the host of a sip:/sips: URI */
			if (!uri_host(p, len, &h, &hlen))
				continue;
			if (memchr(h, '*', hlen))
				n.wildcard = true;
			else if (h[0] != '[')
				err = add_name(&n, h, hlen);
		} else if (g->type == GEN_DNS && asn1_text(g->d.dNSName, &p, &len)) {
			err = add_name(&n, p, len);
		}
	}
	GENERAL_NAMES_free(sans);
	if (!any_san) {
		/* The subject CN only when there is no SAN at all (§7.1). */
		X509_NAME *subj = X509_get_subject_name(x);
		for (int i = -1;
		     !err && (i = X509_NAME_get_index_by_NID(subj, NID_commonName, i)) >= 0;) {
			unsigned char *u = NULL;
			int ul = ASN1_STRING_to_UTF8(
			    &u, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subj, i)));
			if (ul > 0 && !memchr(u, '\0', (size_t)ul))
				err = add_name(&n, (const char *)u, (size_t)ul);
			OPENSSL_free(u);
		}
	}
	ERR_clear_error();
	if (err) {
		om_tls_names_free(&n);
		return err;
	}
	*out = n;
	return 0;
}
