/* peer.c — what a client certificate says about its holder: the names it
 * carries (RFC 5922 §7.1: SAN URI sip: without a user part and dNSName, the
 * subject CN only when there is no SAN; §7.2: no wildcards), its extended
 * key usage, and whether its chain still verifies against a (new) trusted
 * store. */
#include "tls/tls.h"
#include "core/alloc.h"
#include "core/fqdn.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

/* The SIP domain a SAN URI names (RFC 5922 §7.1 step 1): only a "sip" URI
 * counts ("sips:", "tel:", "http:" ... never), and only without a user
 * part — "sip:alice@example.com" identifies a user, not the domain
 * (RFC 3261 §19.1.1: SIP-URI = "sip:" [ userinfo "@" ] hostport
 * uri-parameters [ headers ]). The host ends at ':' (port), ';'
 * (parameters), '?' (headers) or '>'. An IPv6 reference keeps its brackets
 * (it never equals a TLS name). */
static bool uri_host(const char *u, size_t len, const char **host, size_t *hlen)
{
	if (len <= 4 || strncasecmp(u, "sip:", 4) != 0)
		return false;
	const char *rest = u + 4;
	size_t rlen = len - 4;
	size_t end = 0;
	while (end < rlen && rest[end] != ';' && rest[end] != '?' && rest[end] != '>')
		end++;
	if (memchr(rest, '@', end))
		return false; /* a user's identity, never a domain's */
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

static int cmp_str(const void *k, const void *e)
{
	return strcmp((const char *)k, *(const char *const *)e);
}

bool om_tls_cert_has_name(X509 *x, const char *name)
{
	char canon[OM_FQDN_MAX + 2];
	struct om_tls_names nm;
	/* A name that breaks the host-name rules (".example.com", "a..b")
	 * never matches. */
	if (!x || !name || om_fqdn_check(name, 0, NULL, 0) != 0 ||
	    om_fqdn_norm(name, strlen(name), canon, sizeof(canon)) != 0)
		return false;
	if (om_tls_cert_names(x, &nm) != 0)
		return false;
	bool found = nm.n && bsearch(canon, nm.v, nm.n, sizeof(*nm.v), cmp_str) != NULL;
	om_tls_names_free(&nm);
	return found;
}

bool om_tls_cert_is_device(X509 *x)
{
	if (!x || !(X509_get_extension_flags(x) & EXFLAG_SS))
		return false;
	GENERAL_NAMES *sans = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	bool any_san = sans && sk_GENERAL_NAME_num(sans) > 0;
	GENERAL_NAMES_free(sans);
	ERR_clear_error();
	if (any_san)
		return true;
	if ((X509_get_extension_flags(x) & EXFLAG_XKUSAGE) &&
	    (X509_get_extended_key_usage(x) & (XKU_SSL_SERVER | XKU_SSL_CLIENT)))
		return true;
	X509_NAME *subj = X509_get_subject_name(x);
	bool host = false;
	for (int i = -1; !host && (i = X509_NAME_get_index_by_NID(subj, NID_commonName, i)) >= 0;) {
		unsigned char *u = NULL;
		int ul =
		    ASN1_STRING_to_UTF8(&u, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subj, i)));
		if (ul > 0 && ul <= OM_FQDN_MAX + 1 && !memchr(u, '\0', (size_t)ul))
			host = om_fqdn_check((const char *)u, OM_FQDN_MULTI_LABEL, NULL, 0) == 0;
		OPENSSL_free(u);
	}
	ERR_clear_error();
	return host;
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

/* The names while they are collected: the canonical strings one after the
 * other in buf, each one's offset in off. Every name counts, however many
 * the certificate carries (the exactly-one-gateway rule needs all of them;
 * the TLS layer bounds a certificate's size). */
struct names_acc {
	char *buf;
	size_t used, cap;
	size_t *off;
	size_t n, noff;
	bool wildcard;
};

/* Adds one candidate name (any bytes) in canonical form when it is a host
 * name; a '*' only marks the certificate as carrying a wildcard. */
static int add_name(struct names_acc *a, const char *p, size_t len)
{
	char canon[OM_FQDN_MAX + 2], raw[OM_FQDN_MAX + 2];
	if (memchr(p, '*', len)) {
		a->wildcard = true;
		return 0;
	}
	if (len == 0 || len > OM_FQDN_MAX + 1)
		return 0;
	memcpy(raw, p, len);
	raw[len] = '\0';
	if (om_fqdn_check(raw, 0, NULL, 0) != 0 || om_fqdn_norm(raw, len, canon, sizeof(canon)))
		return 0;
	size_t cl = strlen(canon) + 1;
	if (a->used + cl > a->cap) {
		size_t cap = a->cap ? a->cap * 2 : 256;
		while (cap < a->used + cl)
			cap *= 2;
		char *b = om_realloc(a->buf, cap);
		if (!b)
			return ENOMEM;
		a->buf = b;
		a->cap = cap;
	}
	if (a->n == a->noff) {
		size_t k = a->noff ? a->noff * 2 : 8;
		size_t *o = om_realloc(a->off, k * sizeof(*o));
		if (!o)
			return ENOMEM;
		a->off = o;
		a->noff = k;
	}
	memcpy(a->buf + a->used, canon, cl);
	a->off[a->n++] = a->used;
	a->used += cl;
	return 0;
}

static int cmp_name(const void *x, const void *y)
{
	return strcmp(*(const char *const *)x, *(const char *const *)y);
}

/* The collected names as a sorted list, each once (one name given twice,
 * as DNS and as URI, counts once). */
static int names_finish(struct names_acc *a, struct om_tls_names *out)
{
	memset(out, 0, sizeof(*out));
	out->wildcard = a->wildcard;
	if (a->n) {
		out->v = om_calloc(a->n, sizeof(*out->v));
		if (!out->v)
			return ENOMEM;
		for (size_t i = 0; i < a->n; i++)
			out->v[i] = a->buf + a->off[i];
		qsort(out->v, a->n, sizeof(*out->v), cmp_name);
		size_t k = 0;
		for (size_t i = 0; i < a->n; i++)
			if (!k || strcmp(out->v[k - 1], out->v[i]))
				out->v[k++] = out->v[i];
		out->n = k;
		out->buf = a->buf;
		out->used = a->used;
		a->buf = NULL;
	}
	return 0;
}

int om_tls_cert_names(X509 *x, struct om_tls_names *out)
{
	struct names_acc a;
	int err = 0;
	memset(&a, 0, sizeof(a));
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
			/* RFC 5922 §7.1: the host of a sip: URI without a user */
			if (!uri_host(p, len, &h, &hlen))
				continue;
			if (memchr(h, '*', hlen))
				a.wildcard = true;
			else if (h[0] != '[')
				err = add_name(&a, h, hlen);
		} else if (g->type == GEN_DNS && asn1_text(g->d.dNSName, &p, &len)) {
			err = add_name(&a, p, len);
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
				err = add_name(&a, (const char *)u, (size_t)ul);
			OPENSSL_free(u);
		}
	}
	ERR_clear_error();
	if (!err)
		err = names_finish(&a, out);
	om_free(a.off);
	om_free(a.buf);
	if (err)
		om_tls_names_free(out);
	return err;
}
