/* select.c — which certificate the server presents (R7, R9) and the
 * expiry watch (R8).
 *
 * The seed's order ("How Unified Messaging Determines Security Mode and
 * Selects Certificates"), among valid certificates:
 *   1. PKI or commercial (CA-issued), longest time to expiry first
 *   2. the shorter ones
 *   3. self-signed, longest first
 *   4. the shorter ones
 *   none valid -> generate a self-signed one (auto_selfsigned).
 * Valid means what the seed means: a gateway could accept it. Its key is
 * here (in a file nobody else can read), it is no CA certificate, it is
 * within its validity and has serverAuth when it has an EKU, and — when
 * CA-issued — its chain builds to a root of the trusted store with every
 * certificate within its validity and none revoked; a CA nobody here
 * trusts, or an issuer name no certificate carries, is not "PKI or
 * commercial". At equal rank serverAuth+clientAuth beats serverAuth only.
 * A certificate whose SAN lacks the server's FQDN is chosen only when no
 * valid one carries it (event 1128 at error level). A pin overrides the
 * order; a pinned certificate that is invalid stays in use (when it has
 * its key) and raises 1125 at error level: never a silent change. */
#include "cert/cert_int.h"
#include "core/alloc.h"
#include "core/clock.h"
#include "core/events.h"
#include "core/fqdn.h"
#include "core/log.h"
#include "core/str.h"
#include "tls/tls.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/ssl.h>

#define DAY_MS (86400 * (int64_t)1000)

const char *om_cert_verdict_str(enum om_cert_verdict v)
{
	switch (v) {
	case OM_CERT_CHOSEN:
		return "chosen";
	case OM_CERT_RANKED_LOWER:
		return "valid, ranked lower";
	case OM_CERT_NOT_PINNED:
		return "valid, another certificate is pinned";
	case OM_CERT_EXPIRED:
		return "expired";
	case OM_CERT_NOT_YET_VALID:
		return "not yet valid";
	case OM_CERT_NO_KEY:
		return "no private key";
	case OM_CERT_NO_SERVERAUTH:
		return "EKU lacks serverAuth";
	case OM_CERT_TOO_WEAK:
		return "key or signature too weak for tls_security_level";
	case OM_CERT_KEY_UNSAFE:
		return "private key file readable by others: refused";
	case OM_CERT_IS_CA:
		return "a CA certificate, not a server certificate";
	case OM_CERT_UNTRUSTED_ISSUER:
		return "its chain does not reach a trusted root";
	case OM_CERT_CHAIN_INVALID:
		return "a certificate of its chain is not valid";
	case OM_CERT_REVOKED:
		return "revoked";
	case OM_CERT_WRONG_NAME:
		return "SAN lacks this server's FQDN";
	case OM_CERT_KEY_USAGE:
		return "keyUsage does not allow TLS (no digitalSignature)";
	case OM_CERT_CHAIN_PURPOSE:
		return "a CA of its chain is not for serverAuth";
	}
	return "?";
}

enum om_cert_verdict om_cert_check(const struct om_cert *c, int64_t now_ms)
{
	if (c->is_ca)
		return OM_CERT_IS_CA;
	if (!c->key)
		return c->key_problem[0] ? OM_CERT_KEY_UNSAFE : OM_CERT_NO_KEY;
	if (now_ms > c->not_after_ms)
		return OM_CERT_EXPIRED;
	if (now_ms < c->not_before_ms)
		return OM_CERT_NOT_YET_VALID;
	if (!c->eku_server)
		return OM_CERT_NO_SERVERAUTH;
	if ((X509_get_extension_flags(c->x509) & EXFLAG_KUSAGE) &&
	    !(X509_get_key_usage(c->x509) & KU_DIGITAL_SIGNATURE))
		return OM_CERT_KEY_USAGE;
	return OM_CERT_CHOSEN;
}

/* The keyUsage bits of x in words ("keyEncipherment, dataEncipherment"). */
static void key_usage_text(X509 *x, char *buf, size_t len)
{
	static const struct {
		uint32_t bit;
		const char *name;
	} ku[] = { { KU_DIGITAL_SIGNATURE, "digitalSignature" },
		   { KU_NON_REPUDIATION, "nonRepudiation" },
		   { KU_KEY_ENCIPHERMENT, "keyEncipherment" },
		   { KU_DATA_ENCIPHERMENT, "dataEncipherment" },
		   { KU_KEY_AGREEMENT, "keyAgreement" },
		   { KU_KEY_CERT_SIGN, "keyCertSign" },
		   { KU_CRL_SIGN, "cRLSign" },
		   { KU_ENCIPHER_ONLY, "encipherOnly" },
		   { KU_DECIPHER_ONLY, "decipherOnly" } };
	uint32_t k = X509_get_key_usage(x);
	size_t used = 0;
	buf[0] = '\0';
	for (size_t i = 0; i < sizeof(ku) / sizeof(ku[0]) && used < len; i++) {
		if (!(k & ku[i].bit))
			continue;
		int w = snprintf(buf + used, len - used, "%s%s", used ? ", " : "", ku[i].name);
		used = w < 0 ? len : used + (size_t)w;
	}
	if (!buf[0])
		snprintf(buf, len, "none");
}

/* The EKU of a CA certificate in words, for a refusal. */
static void eku_text(X509 *x, char *buf, size_t len)
{
	EXTENDED_KEY_USAGE *eku = X509_get_ext_d2i(x, NID_ext_key_usage, NULL, NULL);
	size_t used = 0;
	buf[0] = '\0';
	for (int i = 0; eku && i < sk_ASN1_OBJECT_num(eku) && used < len; i++) {
		char o[80];
		const ASN1_OBJECT *obj = sk_ASN1_OBJECT_value(eku, i);
		int nid = OBJ_obj2nid(obj);
		if (nid != NID_undef)
			snprintf(o, sizeof(o), "%s", OBJ_nid2sn(nid)); /* "clientAuth" */
		else
			OBJ_obj2txt(o, sizeof(o), obj, 1);
		int w = snprintf(buf + used, len - used, "%s%s", used ? ", " : "", o);
		used = w < 0 ? len : used + (size_t)w;
	}
	EXTENDED_KEY_USAGE_free(eku);
	ERR_clear_error();
	if (!buf[0])
		snprintf(buf, len, "none");
}

static bool eku_both(const struct om_cert *c)
{
	return c->eku_server && c->eku_client;
}

int om_cert_rank_cmp(const struct om_cert *a, const struct om_cert *b)
{
	if (a->self_signed != b->self_signed)
		return a->self_signed ? 1 : -1; /* CA-issued first */
	if (eku_both(a) != eku_both(b))
		return eku_both(a) ? -1 : 1; /* serverAuth+clientAuth first */
	if (a->not_after_ms != b->not_after_ms)
		return a->not_after_ms > b->not_after_ms ? -1 : 1; /* longest first */
	if (a->not_before_ms != b->not_before_ms)
		return a->not_before_ms > b->not_before_ms ? -1 : 1; /* newest */
	return strcmp(a->sha256, b->sha256);                         /* stable */
}

void om_cert_rank_why(const struct om_cert *lost, const struct om_cert *chosen, char *buf,
                      size_t len)
{
	char when[40];
	if (lost->self_signed && !chosen->self_signed) {
		snprintf(buf, len, "self-signed, the chosen one is CA-issued");
	} else if (eku_both(chosen) && !eku_both(lost)) {
		snprintf(buf, len,
		         "lacks clientAuth, the chosen one has serverAuth and clientAuth");
	} else if (lost->not_after_ms != chosen->not_after_ms) {
		om_time_format(lost->not_after_ms, when, sizeof(when));
		snprintf(buf, len, "expires earlier (%s)", when);
	} else if (lost->not_before_ms != chosen->not_before_ms) {
		snprintf(buf, len, "same expiry, issued earlier");
	} else {
		snprintf(buf, len, "identical dates and kind: ordered by SHA-256");
	}
}

/* Rank of a verdict in the list: usable first, then the last resort, then
 * the rest. */
static int tier(enum om_cert_verdict v)
{
	return v == OM_CERT_CHOSEN ? 0 : v == OM_CERT_WRONG_NAME ? 1 : 2;
}

static int cand_cmp(const void *pa, const void *pb)
{
	const struct om_cert_cand *a = pa, *b = pb;
	if (tier(a->verdict) != tier(b->verdict))
		return tier(a->verdict) - tier(b->verdict);
	return om_cert_rank_cmp(a->cert, b->cert);
}

/* Asks OpenSSL what the TLS module will ask: a context at the level refuses
 * an end-entity key, a chain certificate's key or a (non-self-signed)
 * signature digest below the level's bits. */
static char *name_text(const X509_NAME *n, char *buf, size_t len);

/* What a TLS context at its security level refuses in x: its key, or the
 * digest of its signature (SSL_R_*_KEY_TOO_SMALL, SSL_R_CA_MD_TOO_WEAK). */
static void weak_detail(unsigned long e, X509 *x, char *detail, size_t len)
{
	char nm[256], kt[80];
	int r = ERR_GET_REASON(e);
	name_text(X509_get_subject_name(x), nm, sizeof(nm));
	if (r == SSL_R_CA_MD_TOO_WEAK) {
		int nid = X509_get_signature_nid(x);
		snprintf(detail, len, "the signature of %s (%s)", nm,
		         nid != NID_undef ? OBJ_nid2ln(nid) : "?");
	} else if (r == SSL_R_EE_KEY_TOO_SMALL || r == SSL_R_CA_KEY_TOO_SMALL) {
		om_cert_key_type(X509_get0_pubkey(x), kt, sizeof(kt));
		snprintf(detail, len, "the %s key of %s", kt, nm);
	} else {
		snprintf(detail, len, "%s (%s)", nm, e ? ERR_reason_error_string(e) : "refused");
	}
}

/* Whether a TLS context at its level refuses c or its chain; detail (may
 * be NULL) says which certificate and what: key or signature digest. */
static bool too_weak(SSL_CTX *ctx, const struct om_cert *c, STACK_OF(X509) * chain, char *detail,
                     size_t len)
{
	X509 *bad = NULL;
	ERR_clear_error();
	if (SSL_CTX_use_certificate(ctx, c->x509) != 1)
		bad = c->x509;
	for (int i = 0; !bad && chain && i < sk_X509_num(chain); i++)
		if (SSL_CTX_add1_chain_cert(ctx, sk_X509_value(chain, i)) != 1)
			bad = sk_X509_value(chain, i);
	if (bad && detail)
		weak_detail(ERR_peek_last_error(), bad, detail, len);
	SSL_CTX_clear_chain_certs(ctx);
	ERR_clear_error();
	return bad != NULL;
}

/* ---- the chain, as a gateway will check it ---- */

static bool issuer_has_crl(X509_STORE_CTX *sc, const X509_NAME *issuer)
{
	STACK_OF(X509_CRL) *crls = X509_STORE_CTX_get1_crls(sc, issuer);
	bool any = crls && sk_X509_CRL_num(crls) > 0;
	sk_X509_CRL_pop_free(crls, X509_CRL_free);
	return any;
}

/* The revocation policy of the TLS module (src/tls/tls.c verify_cb): a CA
 * without a CRL here is not checked, a trust anchor's revocation is not
 * checked (RFC 5280 §6.1). A stale CRL of our own CA does not disqualify
 * our certificate here (the watch reports the CRL: 1127). */
static int chain_cb(int ok, X509_STORE_CTX *sc)
{
	if (ok)
		return ok;
	int e = X509_STORE_CTX_get_error(sc);
	X509 *cur = X509_STORE_CTX_get_current_cert(sc);
	STACK_OF(X509) *chain = X509_STORE_CTX_get0_chain(sc);
	bool accept =
	    (e == X509_V_ERR_UNABLE_TO_GET_CRL && cur &&
	     !issuer_has_crl(sc, X509_get_issuer_name(cur))) ||
	    e == X509_V_ERR_CRL_HAS_EXPIRED ||
	    ((e == X509_V_ERR_UNABLE_TO_GET_CRL_ISSUER || e == X509_V_ERR_CRL_SIGNATURE_FAILURE) &&
	     chain && X509_STORE_CTX_get_error_depth(sc) == sk_X509_num(chain) - 1);
	if (accept)
		X509_STORE_CTX_set_error(sc, X509_V_OK);
	return accept;
}

static bool has_crls(X509_STORE *st)
{
	STACK_OF(X509_OBJECT) *objs = X509_STORE_get0_objects(st);
	for (int i = 0; i < sk_X509_OBJECT_num(objs); i++)
		if (X509_OBJECT_get_type(sk_X509_OBJECT_value(objs, i)) == X509_LU_CRL)
			return true;
	return false;
}

static char *name_text(const X509_NAME *n, char *buf, size_t len)
{
	BIO *b = BIO_new(BIO_s_mem());
	buf[0] = '\0';
	if (b && X509_NAME_print_ex(b, n, 0, XN_FLAG_RFC2253) >= 0) {
		int k = BIO_read(b, buf, (int)len - 1);
		buf[k > 0 ? k : 0] = '\0';
	}
	BIO_free(b);
	return buf;
}

/* One verification at now_ms; -1 no memory, 0 refused (sc kept for the
 * caller to read), 1 valid. */
static int verify_at(X509_STORE *st, const struct om_cert *c, int64_t now_ms, bool partial,
                     X509_STORE_CTX **out)
{
	X509_STORE_CTX *sc = X509_STORE_CTX_new();
	if (!sc || X509_STORE_CTX_init(sc, st, c->x509, c->chain) != 1) {
		X509_STORE_CTX_free(sc);
		return -1;
	}
	X509_VERIFY_PARAM *vp = X509_STORE_CTX_get0_param(sc);
	unsigned long flags = partial ? X509_V_FLAG_PARTIAL_CHAIN : 0;
	if (has_crls(st))
		flags |= X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL;
	X509_VERIFY_PARAM_set_flags(vp, flags | X509_V_FLAG_USE_CHECK_TIME);
	X509_VERIFY_PARAM_set_time(vp, (time_t)(now_ms / 1000));
	X509_VERIFY_PARAM_set_purpose(vp, X509_PURPOSE_ANY);
	X509_VERIFY_PARAM_set_depth(vp, 8);
	X509_STORE_CTX_set_verify_cb(sc, chain_cb);
	int ok = X509_verify_cert(sc) == 1;
	ERR_clear_error();
	*out = sc;
	return ok;
}

static bool no_anchor(int e)
{
	return e == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT ||
	       e == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY ||
	       e == X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE ||
	       e == X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN || e == X509_V_ERR_CERT_UNTRUSTED;
}

/* A CA-issued certificate's chain against the trusted store: the verdict
 * (with its detail) and, when valid, the chain to send. 0 or ENOMEM. */
static int chain_check(X509_STORE *st, struct om_cert_cand *cd, int64_t now_ms)
{
	const struct om_cert *c = cd->cert;
	X509_STORE_CTX *sc = NULL;
	char nm[200], when[40];
	/* A root first (so a root's CRL is honoured even for a trusted
	 * intermediate), then an intermediate of the store as the anchor. */
	int ok = verify_at(st, c, now_ms, false, &sc);
	if (ok == 0 && no_anchor(X509_STORE_CTX_get_error(sc))) {
		X509_STORE_CTX *sc2 = NULL;
		int ok2 = verify_at(st, c, now_ms, true, &sc2);
		if (ok2 < 0) {
			X509_STORE_CTX_free(sc);
			return ENOMEM;
		}
		if (ok2 == 1 || !no_anchor(X509_STORE_CTX_get_error(sc2))) {
			X509_STORE_CTX_free(sc);
			sc = sc2;
			ok = ok2;
		} else {
			X509_STORE_CTX_free(sc2);
		}
	}
	if (ok < 0)
		return ENOMEM;
	if (ok == 1) {
		STACK_OF(X509) *full = X509_STORE_CTX_get1_chain(sc);
		X509_STORE_CTX_free(sc);
		if (!full)
			return ENOMEM;
		/* The chain's purpose, as a gateway checking a TLS server's
		 * chain does (RFC 5280 §4.2.1.12; OpenSSL's "ssl_server"
		 * purpose looks at every CA's EKU): a CA whose EKU has
		 * neither serverAuth nor anyExtendedKeyUsage makes the whole
		 * chain unfit. */
		for (int i = 1; i < sk_X509_num(full); i++) {
			/* A device's own certificate in the trusted store (a
			 * gateway's, the seed's self-signed route) vouches for
			 * itself only: the TLS module's rule (om_tls_cert_is_device). */
			X509 *dev = sk_X509_value(full, i);
			if (!om_tls_cert_is_device(dev))
				continue;
			cd->verdict = OM_CERT_UNTRUSTED_ISSUER;
			snprintf(
			    cd->detail, sizeof(cd->detail),
			    "issued by %s, a gateway's own certificate in the trusted store: it "
			    "is trusted for itself only and vouches for no other certificate",
			    name_text(X509_get_subject_name(dev), nm, sizeof(nm)));
			sk_X509_pop_free(full, X509_free);
			return 0;
		}
		for (int i = 1; i < sk_X509_num(full); i++) {
			X509 *ca = sk_X509_value(full, i);
			if (!(X509_get_extension_flags(ca) & EXFLAG_XKUSAGE) ||
			    (X509_get_extended_key_usage(ca) & (XKU_SSL_SERVER | XKU_ANYEKU)))
				continue;
			char ek[200];
			eku_text(ca, ek, sizeof(ek));
			cd->verdict = OM_CERT_CHAIN_PURPOSE;
			snprintf(cd->detail, sizeof(cd->detail),
			         "chain certificate %s limits its certificates to %s (no "
			         "serverAuth): gateways refuse it for a TLS server",
			         name_text(X509_get_subject_name(ca), nm, sizeof(nm)), ek);
			sk_X509_pop_free(full, X509_free);
			return 0;
		}
		/* Leaf out; a self-signed root at the end out (the gateway has
		 * it; RFC 8446 §4.4.2 lets it be omitted). */
		X509_free(sk_X509_shift(full));
		int last = sk_X509_num(full) - 1;
		if (last >= 0 && (X509_get_extension_flags(sk_X509_value(full, last)) & EXFLAG_SS))
			X509_free(sk_X509_pop(full));
		for (int i = 0; i < sk_X509_num(full); i++) {
			bool mine = false;
			for (int k = 0; c->chain && k < sk_X509_num(c->chain) && !mine; k++)
				mine =
				    !X509_cmp(sk_X509_value(c->chain, k), sk_X509_value(full, i));
			if (!mine) {
				cd->completed = true;
				snprintf(cd->detail, sizeof(cd->detail),
				         "chain completed from the trusted store: %s",
				         name_text(X509_get_subject_name(sk_X509_value(full, i)),
				                   nm, sizeof(nm)));
			}
		}
		if (sk_X509_num(full) == 0) {
			sk_X509_free(full);
			full = NULL;
		}
		cd->chain = full;
		return 0;
	}
	int e = X509_STORE_CTX_get_error(sc);
	int depth = X509_STORE_CTX_get_error_depth(sc);
	X509 *bad = X509_STORE_CTX_get_current_cert(sc);
	switch (e) {
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
	case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
		cd->verdict = OM_CERT_UNTRUSTED_ISSUER;
		snprintf(cd->detail, sizeof(cd->detail),
		         "issuer %s is neither in its chain nor in the trusted store (import the "
		         "intermediate or root: openum cert import FILE --trusted)",
		         name_text(X509_get_issuer_name(bad ? bad : c->x509), nm, sizeof(nm)));
		break;
	case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
	case X509_V_ERR_CERT_UNTRUSTED: {
		STACK_OF(X509) *ch = X509_STORE_CTX_get0_chain(sc);
		X509 *top = ch && sk_X509_num(ch) ? sk_X509_value(ch, sk_X509_num(ch) - 1) : bad;
		cd->verdict = OM_CERT_UNTRUSTED_ISSUER;
		snprintf(cd->detail, sizeof(cd->detail),
		         "its root %s is not in the trusted store (openum cert import ROOT "
		         "--trusted)",
		         top ? name_text(X509_get_subject_name(top), nm, sizeof(nm)) : "?");
		break;
	}
	case X509_V_ERR_CERT_REVOKED:
		cd->verdict = OM_CERT_REVOKED;
		snprintf(cd->detail, sizeof(cd->detail), "%s%s is revoked by its CA's CRL",
		         depth ? "chain certificate " : "",
		         bad ? name_text(X509_get_subject_name(bad), nm, sizeof(nm)) : "?");
		break;
	case X509_V_ERR_CERT_HAS_EXPIRED:
	case X509_V_ERR_CERT_NOT_YET_VALID:
		cd->verdict = OM_CERT_CHAIN_INVALID;
		om_time_format(om_cert_asn1_ms(e == X509_V_ERR_CERT_HAS_EXPIRED
		                                   ? X509_get0_notAfter(bad)
		                                   : X509_get0_notBefore(bad)),
		               when, sizeof(when));
		snprintf(cd->detail, sizeof(cd->detail), "chain certificate %s %s %s",
		         bad ? name_text(X509_get_subject_name(bad), nm, sizeof(nm)) : "?",
		         e == X509_V_ERR_CERT_HAS_EXPIRED ? "expired on" : "is not valid before",
		         when);
		break;
	default:
		cd->verdict = OM_CERT_CHAIN_INVALID;
		snprintf(cd->detail, sizeof(cd->detail), "%s (at %s)",
		         X509_verify_cert_error_string(e),
		         bad ? name_text(X509_get_subject_name(bad), nm, sizeof(nm)) : "?");
	}
	X509_STORE_CTX_free(sc);
	return 0;
}

/* The server's FQDN in a DNS SAN (never the CN, never a wildcard: RFC 5922
 * §7.2 and what gateways check). */
static bool carries_fqdn(const struct om_cert *c, const char *fqdn)
{
	int r = X509_check_host(c->x509, fqdn, strlen(fqdn),
	                        X509_CHECK_FLAG_NO_WILDCARDS | X509_CHECK_FLAG_NEVER_CHECK_SUBJECT,
	                        NULL);
	ERR_clear_error();
	return r == 1;
}

void om_cert_selection_free(struct om_cert_selection *sel)
{
	for (size_t i = 0; sel->cands && i < sel->ncands; i++)
		sk_X509_pop_free(sel->cands[i].chain, X509_free);
	om_free(sel->cands);
	memset(sel, 0, sizeof(*sel));
}

const struct om_cert_cand *om_cert_selection_find(const struct om_cert_selection *sel,
                                                  const struct om_cert *c)
{
	for (size_t i = 0; i < sel->ncands; i++)
		if (sel->cands[i].cert == c)
			return &sel->cands[i];
	return NULL;
}

static int check_all(const struct om_cert_store *s, const struct om_cert_select_opts *o,
                     int64_t now_ms, struct om_cert_selection *sel)
{
	size_t n = sel->ncands;
	X509_STORE *st = NULL;
	SSL_CTX *ctx = NULL;
	int err = 0;
	for (size_t i = 0; i < n; i++) {
		struct om_cert_cand *cd = &sel->cands[i];
		cd->verdict = om_cert_check(cd->cert, now_ms);
		if (cd->verdict == OM_CERT_KEY_UNSAFE)
			snprintf(cd->detail, sizeof(cd->detail), "%s", cd->cert->key_problem);
		if (cd->verdict == OM_CERT_KEY_USAGE) {
			char ku[200];
			key_usage_text(cd->cert->x509, ku, sizeof(ku));
			snprintf(cd->detail, sizeof(cd->detail),
			         "its keyUsage is %s: TLS needs digitalSignature (every suite "
			         "openum offers, ECDHE and TLS 1.3, and client authentication "
			         "sign with the key; keyEncipherment serves only RSA key "
			         "transport, not offered)",
			         ku);
		}
		if (cd->verdict != OM_CERT_CHOSEN || cd->cert->self_signed)
			continue;
		if (!st && (err = om_cert_store_x509(s, &st)) != 0)
			goto out;
		if ((err = chain_check(st, cd, now_ms)) != 0)
			goto out;
	}
	if (o->security_level > 0 && n > 0) {
		ctx = SSL_CTX_new(TLS_method());
		if (!ctx) {
			err = ENOMEM;
			goto out;
		}
		SSL_CTX_set_security_level(ctx, o->security_level);
		for (size_t i = 0; i < n; i++) {
			struct om_cert_cand *cd = &sel->cands[i];
			if (cd->verdict == OM_CERT_CHOSEN &&
			    too_weak(ctx, cd->cert, cd->chain, cd->detail, sizeof(cd->detail)))
				cd->verdict = OM_CERT_TOO_WEAK;
		}
	}
	if (sel->fqdn[0]) {
		for (size_t i = 0; i < n; i++) {
			struct om_cert_cand *cd = &sel->cands[i];
			cd->wrong_name = !carries_fqdn(cd->cert, sel->fqdn);
			if (cd->verdict == OM_CERT_CHOSEN && cd->wrong_name) {
				cd->verdict = OM_CERT_WRONG_NAME;
				snprintf(
				    cd->detail, sizeof(cd->detail),
				    "no DNS name %s in its SAN (%s): gateways that check the name "
				    "refuse it",
				    sel->fqdn, *cd->cert->sans ? cd->cert->sans : "none");
			}
		}
	}
out:
	SSL_CTX_free(ctx);
	X509_STORE_free(st);
	ERR_clear_error();
	return err;
}

int om_cert_select(const struct om_cert_store *s, const struct om_cert_select_opts *o,
                   int64_t now_ms, struct om_cert_selection *out)
{
	struct om_cert_selection sel;
	size_t n = om_cert_store_count(s, OM_CERT_PERSONAL);
	const char *pin = o->pin;
	int err;
	memset(&sel, 0, sizeof(sel));
	if (o->fqdn && *o->fqdn &&
	    om_fqdn_norm(o->fqdn, strlen(o->fqdn), sel.fqdn, sizeof(sel.fqdn)) != 0)
		sel.fqdn[0] = '\0';
	if (n) {
		sel.cands = om_calloc(n, sizeof(*sel.cands));
		if (!sel.cands)
			return ENOMEM;
	}
	for (size_t i = 0; i < n; i++)
		sel.cands[i].cert = om_cert_store_at(s, OM_CERT_PERSONAL, i);
	sel.ncands = n;
	err = check_all(s, o, now_ms, &sel);
	if (err) {
		om_cert_selection_free(&sel);
		return err;
	}
	if (n > 1)
		qsort(sel.cands, n, sizeof(*sel.cands), cand_cmp);

	const struct om_cert *pc = NULL;
	if (pin && *pin) {
		sel.pinned = true;
		snprintf(sel.pin, sizeof(sel.pin), "%s", pin);
		int ferr = om_cert_store_find_personal(s, pin, &pc);
		sel.pin_ambiguous = ferr == EEXIST;
		sel.pin_verdict = OM_CERT_NO_KEY;
		for (size_t i = 0; pc && i < n; i++) {
			if (sel.cands[i].cert != pc)
				continue;
			sel.pin_found = true;
			sel.pin_verdict = sel.cands[i].verdict;
			if (pc->key && !pc->is_ca) {
				sel.chosen = pc;
				/* The pinned one first, the rest in order. */
				struct om_cert_cand pinned = sel.cands[i];
				memmove(&sel.cands[1], &sel.cands[0], i * sizeof(*sel.cands));
				sel.cands[0] = pinned;
			}
			break;
		}
	}
	if (sel.pinned && !sel.pin_ambiguous) {
		for (size_t i = 0; i < n; i++) {
			if (sel.cands[i].cert == sel.chosen) {
				sel.cands[i].verdict = OM_CERT_CHOSEN;
				sel.cand = &sel.cands[i];
			} else if (sel.cands[i].verdict == OM_CERT_CHOSEN) {
				sel.cands[i].verdict = OM_CERT_NOT_PINNED;
			}
		}
	} else {
		/* The automatic order (also for a pin that became ambiguous:
		 * never a failed start for it). */
		for (size_t i = 0; i < n && !sel.chosen; i++) {
			if (sel.cands[i].verdict == OM_CERT_CHOSEN) {
				sel.chosen = sel.cands[i].cert;
				sel.cand = &sel.cands[i];
			}
		}
		for (size_t i = 0; i < n && !sel.chosen; i++) {
			if (sel.cands[i].verdict == OM_CERT_WRONG_NAME) {
				/* the last resort: nothing valid carries the FQDN */
				sel.chosen = sel.cands[i].cert;
				sel.cand = &sel.cands[i];
				sel.wrong_name = true;
				sel.cands[i].verdict = OM_CERT_CHOSEN;
			}
		}
		for (size_t i = 0; i < n; i++)
			if (sel.cands[i].cert != sel.chosen &&
			    sel.cands[i].verdict == OM_CERT_CHOSEN)
				sel.cands[i].verdict = OM_CERT_RANKED_LOWER;
	}
	if (sel.cand && sel.cand->wrong_name)
		sel.wrong_name = true;
	*out = sel;
	return 0;
}

/* ===================== the server's view ===================== */

/* One certificate or CRL watched for one reason: the same certificate can
 * be both a trusted CA (1124) and a certificate of the chain the server
 * sends (1120), and each event has its own once-a-day memory. */
enum watch_kind { WATCH_CHAIN, WATCH_TRUSTED, WATCH_CRL, WATCH_PEER };
struct watch_mark {
	char sha256[65];
	enum watch_kind kind;
	int64_t day; /* UTC day of the last event */
};

/* A problem reported once (event 1128/1129) until it changes. */
struct reported {
	char sha256[65];
	enum om_cert_verdict verdict;
};

/* What the trusted store and the CRLs held at the last apply. */
struct trust_item {
	char sha256[65];
	char what[220]; /* "CN=... (SHA1)" */
	bool crl;
};

struct om_cert_mgr {
	char *data_dir;
	struct om_cert_store *store;
	const struct om_cert *cur;
	STACK_OF(X509) * chain; /* sent after cur */
	char cur_sha256[65];    /* what 1114 last reported */
	bool cur_ca;
	struct watch_mark inuse;
	struct watch_mark *marks; /* trusted, chain and gateway certificates, CRLs */
	size_t nmarks, capmarks;
	struct reported *rep;
	size_t nrep;
	struct trust_item *trust;
	size_t ntrust;
	bool trust_known;
	char error[512];
	char changes[1024];
};

/* Room for `extra` more watch marks, so that the daily watch never needs
 * memory it could fail to get (0 or ENOMEM). */
static int marks_reserve(struct om_cert_mgr *m, size_t extra)
{
	size_t want = m->nmarks + extra;
	if (want <= m->capmarks)
		return 0;
	struct watch_mark *v = om_realloc(m->marks, want * sizeof(*v));
	if (!v)
		return ENOMEM;
	m->marks = v;
	m->capmarks = want;
	return 0;
}

int om_cert_mgr_new(const char *data_dir, const struct om_cert_policy *pol,
                    struct om_cert_mgr **out)
{
	struct om_cert_mgr *m = om_calloc(1, sizeof(*m));
	(void)pol;
	if (!m)
		return ENOMEM;
	m->data_dir = om_strdup(data_dir);
	if (!m->data_dir) {
		om_free(m);
		return ENOMEM;
	}
	m->inuse.day = -1;
	*out = m;
	return 0;
}

void om_cert_mgr_free(struct om_cert_mgr *m)
{
	if (!m)
		return;
	om_cert_store_free(m->store);
	sk_X509_pop_free(m->chain, X509_free);
	om_free(m->marks);
	om_free(m->rep);
	om_free(m->trust);
	om_free(m->data_dir);
	om_free(m);
}

const struct om_cert *om_cert_mgr_current(const struct om_cert_mgr *m)
{
	return m->cur;
}

STACK_OF(X509) * om_cert_mgr_chain(const struct om_cert_mgr *m)
{
	return m->chain;
}

const struct om_cert_store *om_cert_mgr_store(const struct om_cert_mgr *m)
{
	return m->store;
}

const char *om_cert_mgr_error(const struct om_cert_mgr *m)
{
	return m->error;
}

const char *om_cert_mgr_trust_changes(const struct om_cert_mgr *m)
{
	return m->changes;
}

static void fmt_time(int64_t ms, char *buf, size_t len)
{
	om_time_format(ms, buf, len);
}

static void emit_in_use(const struct om_cert *c, bool pinned)
{
	char na[40];
	fmt_time(c->not_after_ms, na, sizeof(na));
	/* Source = the certificate: every change is its own line (the rate
	 * limit is per source), a repeat of the same one is not. */
	om_event(OM_EV_CERT_IN_USE, c->sha1, "certificate in use", "issuer", c->issuer, "subject",
	         c->subject, "serial", c->serial, "sha1", c->sha1, "sha256", c->sha256, "not_after",
	         na, "kind", c->self_signed ? "self-signed" : "ca-issued", "pinned",
	         pinned ? "yes" : "no", NULL);
}

static void emit_pin_invalid(const struct om_cert_selection *sel)
{
	const struct om_cert_cand *pc = NULL;
	for (size_t i = 0; i < sel->ncands && sel->pin_found && !pc; i++)
		if (sel->cands[i].cert == sel->chosen)
			pc = &sel->cands[i];
	const char *why = sel->pin_found       ? om_cert_verdict_str(sel->pin_verdict)
	                  : sel->pin_ambiguous ? "it is a prefix that matches several certificates"
	                                       : "not in the personal store";
	const char *msg =
	    sel->pin_ambiguous ? "pinned certificate is ambiguous: the automatic order chose "
	                         "the certificate in use"
	    : sel->chosen      ? "pinned certificate is not valid: still in use, as pinned"
	                       : "pinned certificate cannot be used: no certificate in use";
	om_event_level(OM_CERT_EV_PIN_INVALID, OM_LOG_ERROR, sel->pin, msg, "pin", sel->pin,
	               "reason", why, "detail", pc && pc->detail[0] ? pc->detail : "", "fix",
	               sel->pin_ambiguous
	                   ? "pin the full thumbprint: openum server set --certificate SHA1"
	                   : "import a valid certificate and pin it, or set the pin to auto",
	               NULL);
}

/* Events for the certificates that cannot be used (1128; 1129 for a key
 * file refused), each once until its reason changes. 0 or ENOMEM (then
 * nothing is reported: the apply fails). */
static int report_unusable(struct om_cert_mgr *m, const struct om_cert_selection *sel)
{
	struct reported *next = om_calloc(sel->ncands + 1, sizeof(*next));
	size_t nn = 0;
	if (!next)
		return ENOMEM;
	for (size_t i = 0; i < sel->ncands; i++) {
		const struct om_cert_cand *cd = &sel->cands[i];
		const struct om_cert *c = cd->cert;
		if (cd->verdict == OM_CERT_CHOSEN || cd->verdict == OM_CERT_RANKED_LOWER ||
		    cd->verdict == OM_CERT_NOT_PINNED)
			continue;
		bool seen = false;
		for (size_t k = 0; k < m->nrep && !seen; k++)
			seen = !strcmp(m->rep[k].sha256, c->sha256) &&
			       m->rep[k].verdict == cd->verdict;
		snprintf(next[nn].sha256, sizeof(next[nn].sha256), "%s", c->sha256);
		next[nn++].verdict = cd->verdict;
		if (seen)
			continue;
		if (cd->verdict == OM_CERT_KEY_UNSAFE)
			om_event(OM_EV_KEY_FILE_REFUSED, c->sha1,
			         "private key file readable by others: refused, the certificate "
			         "cannot be used",
			         "sha1", c->sha1, "subject", c->subject, "detail", cd->detail,
			         NULL);
		else
			om_event(OM_EV_CERT_NOT_USABLE, c->sha1,
			         "personal certificate cannot be used", "sha1", c->sha1, "subject",
			         c->subject, "reason", om_cert_verdict_str(cd->verdict), "detail",
			         cd->detail, NULL);
	}
	om_free(m->rep);
	m->rep = next;
	m->nrep = nn;
	return 0;
}

/* The trusted store and CRLs now (*out, *nout) and what changed since the
 * last apply, into changes (for the reload report: a removed CA must
 * show). 0 or ENOMEM. */
static int trust_now(struct om_cert_mgr *m, const struct om_cert_store *s, struct trust_item **out,
                     size_t *nout, char *changes, size_t clen)
{
	size_t nt = om_cert_store_count(s, OM_CERT_TRUSTED), nc = om_cert_store_crl_count(s);
	struct trust_item *v = om_calloc(nt + nc + 1, sizeof(*v));
	size_t used = 0;
	changes[0] = '\0';
	if (!v)
		return ENOMEM;
	for (size_t i = 0; i < nt; i++) {
		const struct om_cert *t = om_cert_store_at(s, OM_CERT_TRUSTED, i);
		snprintf(v[i].sha256, sizeof(v[i].sha256), "%s", t->sha256);
		snprintf(v[i].what, sizeof(v[i].what), "%s (%.8s)", t->subject, t->sha1);
	}
	for (size_t i = 0; i < nc; i++) {
		const struct om_cert_crl *c = om_cert_store_crl_at(s, i);
		struct trust_item *it = &v[nt + i];
		snprintf(it->sha256, sizeof(it->sha256), "%s", c->sha256);
		snprintf(it->what, sizeof(it->what), "CRL of %s (%.8s)", c->issuer, c->sha1);
		it->crl = true;
	}
	for (int pass = 0; m->trust_known && pass < 2; pass++) {
		/* pass 0: added (in v, not before); pass 1: removed */
		size_t na = pass ? m->ntrust : nt + nc, nb = pass ? nt + nc : m->ntrust;
		const struct trust_item *A = pass ? m->trust : v, *B = pass ? v : m->trust;
		for (size_t i = 0; i < na; i++) {
			bool in = false;
			for (size_t k = 0; k < nb && !in; k++)
				in = !strcmp(A[i].sha256, B[k].sha256);
			if (in || used >= clen)
				continue;
			int w = snprintf(changes + used, clen - used, "%strusted %s %s",
			                 used ? "; " : "", pass ? "-" : "+", A[i].what);
			used = w < 0 ? clen : used + (size_t)w;
		}
	}
	*out = v;
	*nout = nt + nc;
	return 0;
}

static void set_error(struct om_cert_mgr *m, const char *msg)
{
	snprintf(m->error, sizeof(m->error), "%s", msg);
}

int om_cert_mgr_apply(struct om_cert_mgr *m, const struct om_cert_policy *pol, int64_t now_ms)
{
	struct om_cert_store *s = NULL;
	struct om_cert_selection sel = { 0 };
	STACK_OF(X509) *chain = NULL;
	struct trust_item *trust = NULL;
	size_t ntrust = 0;
	bool pinned = pol->pin && *pol->pin, generated = false, had_ca = false;
	char msg[512], changes[1024];
	struct om_cert_select_opts so = { .pin = pol->pin,
		                          .fqdn = pol->fqdn,
		                          .security_level = pol->tls_security_level };
	m->error[0] = '\0';
	int err = om_cert_store_open(m->data_dir, &s);
	if (err) {
		snprintf(msg, sizeof(msg), "cannot read the certificate stores: %s", strerror(err));
		set_error(m, msg);
		return err;
	}
	err = om_cert_select(s, &so, now_ms, &sel);
	if (err) {
		set_error(m, "out of memory selecting the certificate");
		goto out;
	}
	for (size_t i = 0; i < sel.ncands; i++)
		if (!sel.cands[i].cert->self_signed)
			had_ca = true;
	if (pinned && (!sel.chosen || sel.pin_ambiguous || sel.pin_verdict != OM_CERT_CHOSEN))
		emit_pin_invalid(&sel);
	err = report_unusable(m, &sel);
	if (err) {
		set_error(m, "out of memory");
		goto out;
	}
	/* Nothing valid and no generation: the certificate in use stays (an
	 * error, never a silent change), so that a reload still applies
	 * everything else — a CA removed from the trusted store must stop
	 * being trusted even when it also issued this server's certificate. */
	const struct om_cert_cand *kept = NULL;
	if (!sel.chosen && (!pinned || sel.pin_ambiguous) && !pol->auto_selfsigned &&
	    m->cur_sha256[0]) {
		for (size_t i = 0; i < sel.ncands && !kept; i++) {
			const struct om_cert *c = sel.cands[i].cert;
			if (!strcmp(c->sha256, m->cur_sha256) && c->key && !c->is_ca)
				kept = &sel.cands[i];
		}
		if (kept) {
			sel.chosen = kept->cert;
			om_event_level(
			    OM_EV_CERT_NOT_USABLE, OM_LOG_ERROR, kept->cert->sha1,
			    "the certificate in use is no longer valid: kept in use, no "
			    "valid certificate replaces it",
			    "sha1", kept->cert->sha1, "subject", kept->cert->subject, "reason",
			    om_cert_verdict_str(kept->verdict), "detail", kept->detail, "fix",
			    "import a valid certificate, or trust its issuer again", NULL);
		}
	}
	if (!sel.chosen && (!pinned || sel.pin_ambiguous) && pol->auto_selfsigned) {
		const struct om_cert *gen;
		char host[256];
		const char *fqdn = pol->fqdn;
		if (!fqdn || !*fqdn) {
			if (gethostname(host, sizeof(host)) != 0)
				snprintf(host, sizeof(host), "localhost");
			host[sizeof(host) - 1] = '\0';
			fqdn = host;
		}
		err = om_cert_store_new_selfsigned(s, fqdn, pol->key, pol->days, now_ms, &gen);
		if (err) {
			snprintf(
			    msg, sizeof(msg),
			    "no valid certificate, and a self-signed one for '%s' could not be "
			    "generated: %s",
			    fqdn,
			    err == EINVAL ? "not a host name (set fqdn in openum.conf or "
			                    "openum server set --fqdn)"
			                  : strerror(err));
			set_error(m, msg);
			om_log(OM_LOG_ERROR, "could not generate a self-signed certificate",
			       "error", msg, NULL);
			goto out;
		}
		if (pol->tls_security_level > 0) {
			/* Levels 4-5 want more than P-256 / RSA-3072 give. */
			SSL_CTX *ctx = SSL_CTX_new(TLS_method());
			bool weak = true;
			if (ctx) {
				SSL_CTX_set_security_level(ctx, pol->tls_security_level);
				weak = too_weak(ctx, gen, NULL, NULL, 0);
				SSL_CTX_free(ctx);
			}
			if (weak) {
				snprintf(
				    msg, sizeof(msg),
				    "no valid certificate, and a generated %s key is too weak for "
				    "tls_security_level %d: import a stronger certificate or lower "
				    "tls_security_level",
				    gen->key_type, pol->tls_security_level);
				set_error(m, msg);
				om_log(OM_LOG_ERROR, "generated certificate is too weak", "error",
				       msg, NULL);
				err = ENOENT;
				goto out;
			}
		}
		om_event(OM_EV_CERT_GENERATED, "server", "self-signed certificate generated",
		         "subject", gen->subject, "sha1", gen->sha1, "sha256", gen->sha256, "key",
		         gen->key_type, NULL);
		sel.chosen = gen;
		generated = true;
	}
	if (!sel.chosen) {
		err = ENOENT;
		if (pinned && !sel.pin_ambiguous)
			snprintf(msg, sizeof(msg),
			         "the pinned certificate %s %s: import it with its key, or set the "
			         "pin to auto (openum server set --certificate auto)",
			         sel.pin,
			         sel.pin_found ? "has no private key here"
			                       : "is not in the personal store");
		else if (!pol->auto_selfsigned)
			snprintf(
			    msg, sizeof(msg),
			    "no valid certificate (see openum cert select), and auto_selfsigned "
			    "= 0: import one, run openum cert new-selfsigned, or set "
			    "auto_selfsigned = 1");
		else
			snprintf(msg, sizeof(msg), "no valid certificate (see openum cert select)");
		set_error(m, msg);
		om_log(OM_LOG_ERROR, "no certificate can be used", "error", msg, NULL);
		goto out;
	}
	/* The expiry watch's marks for every trusted certificate, chain
	 * certificate and CRL, now, while a failure can still be reported. */
	const struct om_cert_cand *cd = om_cert_selection_find(&sel, sel.chosen);
	/* The verified chain; for a certificate kept or pinned while invalid,
	 * the one stored with it. */
	STACK_OF(X509) *send = cd && cd->chain ? cd->chain : sel.chosen->chain;
	if (send && sk_X509_num(send) > 0 && !(chain = X509_chain_up_ref(send))) {
		err = ENOMEM;
		set_error(m, "out of memory");
		goto out;
	}
	err =
	    marks_reserve(m, om_cert_store_count(s, OM_CERT_TRUSTED) + om_cert_store_crl_count(s) +
	                         (size_t)(chain ? sk_X509_num(chain) : 0));
	if (!err)
		err = trust_now(m, s, &trust, &ntrust, changes, sizeof(changes));
	if (err) {
		set_error(m, "out of memory");
		goto out;
	}
	/* Swap: from here on nothing fails. */
	const struct om_cert *c = sel.chosen;
	bool changed = strcmp(m->cur_sha256, c->sha256) != 0;
	/* A pin is the administrator's own choice: only the automatic order
	 * "falls back". */
	bool fell_back = !pinned && c->self_signed && (m->cur ? m->cur_ca : had_ca);
	if (changed && fell_back) {
		om_event_level(OM_EV_CERT_FALLBACK_SELFSIGNED, OM_LOG_ERROR, "server",
		               "fell back from a CA-issued to a self-signed certificate: gateways "
		               "will refuse it",
		               "sha1", c->sha1, "previous", m->cur ? m->cur_sha256 : "",
		               "generated", generated ? "yes" : "no", NULL);
	}
	if (changed) {
		emit_in_use(c, pinned);
		if (!c->eku_client)
			om_event(OM_EV_CERT_NO_CLIENTAUTH, "server",
			         "certificate in use lacks clientAuth: gateways that check it "
			         "will refuse our outgoing connections",
			         "sha1", c->sha1, NULL);
		if (sel.wrong_name && cd)
			om_event_level(OM_EV_CERT_NOT_USABLE, OM_LOG_ERROR, c->sha1,
			               "certificate in use does not carry this server's FQDN: no "
			               "certificate that does is valid",
			               "sha1", c->sha1, "subject", c->subject, "fqdn", sel.fqdn,
			               "detail", cd->detail, "fix",
			               "import a certificate for the FQDN, or run openum cert "
			               "new-selfsigned",
			               NULL);
		if (cd && cd->completed)
			om_log(OM_LOG_INFO, "certificate chain completed from the trusted store",
			       "sha1", c->sha1, "detail", cd->detail, NULL);
		snprintf(m->cur_sha256, sizeof(m->cur_sha256), "%s", c->sha256);
		m->inuse.day = -1; /* a new certificate: the watch starts over */
	}
	om_free(m->trust);
	m->trust = trust;
	m->ntrust = ntrust;
	m->trust_known = true;
	trust = NULL;
	snprintf(m->changes, sizeof(m->changes), "%s", changes);
	m->cur_ca = !c->self_signed;
	om_cert_store_free(m->store);
	sk_X509_pop_free(m->chain, X509_free);
	m->store = s;
	m->chain = chain;
	m->cur = c;
	s = NULL;
	chain = NULL;
out:
	om_free(trust);
	sk_X509_pop_free(chain, X509_free);
	om_cert_selection_free(&sel);
	om_cert_store_free(s);
	return err;
}

/* ===================== expiry watch ===================== */

static struct watch_mark *mark_for(struct om_cert_mgr *m, enum watch_kind kind, const char *sha256)
{
	for (size_t i = 0; i < m->nmarks; i++)
		if (m->marks[i].kind == kind && strcmp(m->marks[i].sha256, sha256) == 0)
			return &m->marks[i];
	if (marks_reserve(m, 1))
		return NULL;
	struct watch_mark *k = &m->marks[m->nmarks++];
	snprintf(k->sha256, sizeof(k->sha256), "%s", sha256);
	k->kind = kind;
	k->day = -1;
	return k;
}

static int64_t days_until(int64_t t_ms, int64_t now_ms)
{
	int64_t d = t_ms - now_ms;
	return d >= 0 ? d / DAY_MS : -((-d + DAY_MS - 1) / DAY_MS);
}

static int64_t days_left(const struct om_cert *c, int64_t now_ms)
{
	return days_until(c->not_after_ms, now_ms);
}

/* The chain the certificate in use sends: an intermediate that expires
 * takes the server's certificate down with it (1120 like the leaf). */
static int watch_chain(struct om_cert_mgr *m, int64_t now_ms)
{
	int64_t day = now_ms / DAY_MS;
	int n = 0;
	char na[40], left[24], subj[256], sha256[65], sha1[41];
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen;
	for (int i = 0; m->chain && m->cur && i < sk_X509_num(m->chain); i++) {
		X509 *x = sk_X509_value(m->chain, i);
		int64_t na_ms = om_cert_asn1_ms(X509_get0_notAfter(x));
		if (na_ms - now_ms > OM_CERT_WARN_DAYS * DAY_MS)
			continue;
		if (!X509_digest(x, EVP_sha256(), md, &mdlen))
			continue;
		om_cert_hex(md, mdlen, false, sha256);
		if (!X509_digest(x, EVP_sha1(), md, &mdlen))
			continue;
		om_cert_hex(md, mdlen, true, sha1);
		struct watch_mark *k = mark_for(m, WATCH_CHAIN, sha256); /* reserved by apply */
		if (k && k->day == day)
			continue;
		name_text(X509_get_subject_name(x), subj, sizeof(subj));
		fmt_time(na_ms, na, sizeof(na));
		snprintf(left, sizeof(left), "%lld", (long long)days_until(na_ms, now_ms));
		om_event_level(
		    OM_EV_CERT_EXPIRING, now_ms > na_ms ? OM_LOG_ERROR : OM_LOG_WARNING, sha1,
		    now_ms > na_ms ? "a chain certificate of the certificate in use has expired"
		                   : "a chain certificate of the certificate in use expires soon",
		    "sha1", m->cur->sha1, "chain_sha1", sha1, "chain_subject", subj, "not_after",
		    na, "days_left", left, NULL);
		if (k)
			k->day = day;
		n++;
	}
	return n;
}

/* CRLs: 1126 when the next update is near, 1127 once it is past. */
static int watch_crls(struct om_cert_mgr *m, int64_t now_ms)
{
	int64_t day = now_ms / DAY_MS;
	int n = 0;
	char nu[40];
	size_t nc = m->store ? om_cert_store_crl_count(m->store) : 0;
	for (size_t i = 0; i < nc; i++) {
		const struct om_cert_crl *c = om_cert_store_crl_at(m->store, i);
		/* a list its CA has replaced is not the one in force */
		if (!c->next_update_ms || !c->signed_by_trusted ||
		    om_cert_store_crl_superseded(m->store, c))
			continue;
		int64_t window = (c->next_update_ms - c->this_update_ms) / 4;
		if (window > 7 * DAY_MS)
			window = 7 * DAY_MS;
		bool stale = now_ms > c->next_update_ms;
		if (!stale && c->next_update_ms - now_ms > window)
			continue;
		struct watch_mark *k = mark_for(m, WATCH_CRL, c->sha256); /* reserved by apply */
		if (k && k->day == day)
			continue;
		fmt_time(c->next_update_ms, nu, sizeof(nu));
		if (stale)
			om_event(
			    OM_EV_CRL_STALE, c->sha1,
			    "revocation list is stale: certificates of its CA are refused", "crl",
			    c->sha1, "issuer", c->issuer, "next_update", nu, "fix",
			    "import the CA's current CRL (openum cert import FILE --trusted --yes)",
			    NULL);
		else
			om_event(OM_EV_CRL_EXPIRING, c->sha1,
			         "revocation list needs its next update soon", "crl", c->sha1,
			         "issuer", c->issuer, "next_update", nu, NULL);
		if (k)
			k->day = day;
		n++;
	}
	return n;
}

int om_cert_watch_tick(struct om_cert_mgr *m, int64_t now_ms)
{
	int64_t day = now_ms / DAY_MS;
	int n = 0;
	char na[40], left[24];
	const struct om_cert *c = m->cur;
	if (c && m->inuse.day != day) {
		int64_t dl = days_left(c, now_ms);
		fmt_time(c->not_after_ms, na, sizeof(na));
		snprintf(left, sizeof(left), "%lld", (long long)dl);
		if (now_ms > c->not_after_ms) {
			om_event(OM_EV_CERT_EXPIRED, c->sha1, "certificate in use has expired",
			         "sha1", c->sha1, "subject", c->subject, "not_after", na,
			         "days_left", left, NULL);
			m->inuse.day = day;
			n++;
		} else if (c->not_after_ms - now_ms <= OM_CERT_WARN_DAYS * DAY_MS) {
			om_event(OM_EV_CERT_EXPIRING, c->sha1, "certificate in use expires soon",
			         "sha1", c->sha1, "subject", c->subject, "not_after", na,
			         "days_left", left, NULL);
			m->inuse.day = day;
			n++;
		}
	}
	n += watch_chain(m, now_ms);
	size_t nt = m->store ? om_cert_store_count(m->store, OM_CERT_TRUSTED) : 0;
	for (size_t i = 0; i < nt; i++) {
		const struct om_cert *t = om_cert_store_at(m->store, OM_CERT_TRUSTED, i);
		if (t->not_after_ms - now_ms > OM_CERT_WARN_DAYS * DAY_MS)
			continue;
		struct watch_mark *k =
		    mark_for(m, WATCH_TRUSTED, t->sha256); /* reserved by apply */
		if (k && k->day == day)
			continue;
		fmt_time(t->not_after_ms, na, sizeof(na));
		snprintf(left, sizeof(left), "%lld", (long long)days_left(t, now_ms));
		/* A root and an intermediate alike (an issuing CA of the
		 * gateways, trusted as an anchor of its own): once expired,
		 * the gateways it issued for are refused — an error. */
		bool gone = now_ms > t->not_after_ms;
		om_event_level(OM_EV_TRUSTED_EXPIRING, gone ? OM_LOG_ERROR : OM_LOG_WARNING,
		               t->sha1,
		               gone ? "trusted certificate has expired: the gateways it issued "
		                      "for are refused"
		                    : "trusted certificate expires soon",
		               "sha1", t->sha1, "subject", t->subject, "kind",
		               t->self_signed ? "root" : "intermediate", "not_after", na,
		               "days_left", left, NULL);
		if (k)
			k->day = day;
		n++;
	}
	n += watch_crls(m, now_ms);
	return n;
}

int om_cert_watch_peer(struct om_cert_mgr *m, X509 *cert, const char *peer, int64_t now_ms)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen;
	char sha256[65], sha1[41], na[40], left[24];
	int64_t not_after = om_cert_asn1_ms(X509_get0_notAfter(cert));
	if (not_after - now_ms > OM_CERT_WARN_DAYS * DAY_MS)
		return 0;
	if (!X509_digest(cert, EVP_sha256(), md, &mdlen))
		return 0;
	om_cert_hex(md, mdlen, false, sha256);
	/* NULL: warn, without the once-a-day memory */
	struct watch_mark *k = mark_for(m, WATCH_PEER, sha256);
	int64_t day = now_ms / DAY_MS;
	if (k && k->day == day)
		return 0;
	if (!X509_digest(cert, EVP_sha1(), md, &mdlen))
		return 0;
	om_cert_hex(md, mdlen, true, sha1);
	char subject[256];
	X509_NAME_oneline(X509_get_subject_name(cert), subject, sizeof(subject));
	fmt_time(not_after, na, sizeof(na));
	int64_t d = not_after - now_ms;
	snprintf(left, sizeof(left), "%lld",
	         (long long)(d >= 0 ? d / DAY_MS : -((-d + DAY_MS - 1) / DAY_MS)));
	om_event(OM_EV_TRUSTED_EXPIRING, peer ? peer : sha1,
	         now_ms > not_after ? "gateway certificate has expired"
	                            : "gateway certificate expires soon",
	         "peer", peer ? peer : "", "sha1", sha1, "subject", subject, "not_after", na,
	         "days_left", left, NULL);
	if (k)
		k->day = day;
	return 1;
}
