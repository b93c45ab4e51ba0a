/* io.c — reading certificate files (PEM, DER, PKCS#12 / PFX, PKCS#7 / P7B)
 * and writing them (R6).
 *
 * PKCS#7 (RFC 2315 SignedData without signers, "certs-only", RFC 5652):
 * the certificate chain a Windows CA or a commercial CA hands out as .p7b,
 * PEM or DER; its certificates and CRLs are read, nothing else.
 *
 * PKCS#12 (RFC 7292): files made by Windows and by older gateways use
 * RC2-40 / 3DES with SHA-1 MACs, which OpenSSL 3 moved to its "legacy"
 * provider; it is loaded on demand, only when the default one cannot
 * decrypt the file, and for `export --legacy`. New files use OpenSSL 3's
 * defaults (AES-256-CBC, PBKDF2, SHA-256 MAC). */
#include "cert/cert_int.h"
#include "core/alloc.h"

#include <errno.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/pkcs7.h>
#include <openssl/provider.h>

/* ===================== providers ===================== */

static OSSL_PROVIDER *prov_legacy, *prov_default;

int om_cert_legacy_load(void)
{
	if (prov_legacy)
		return 0;
	/* Loading any provider explicitly stops the default one from being
	 * loaded implicitly: load both. */
	if (!prov_default)
		prov_default = OSSL_PROVIDER_load(NULL, "default");
	prov_legacy = OSSL_PROVIDER_load(NULL, "legacy");
	if (!prov_legacy) {
		ERR_clear_error();
		return ENOENT;
	}
	return 0;
}

/* ===================== parsing ===================== */

bool om_cert_has_pem_key(const void *data, size_t len)
{
	static const char *const marks[] = { "PRIVATE KEY-----", "BEGIN ENCRYPTED PRIVATE KEY" };
	for (size_t m = 0; m < sizeof(marks) / sizeof(marks[0]); m++)
		if (memmem(data, len, marks[m], strlen(marks[m])))
			return true;
	return false;
}

void om_cert_bundle_free(struct om_cert_bundle *b)
{
	om_cert_chain_free(b->certs);
	sk_X509_CRL_pop_free(b->crls, X509_CRL_free);
	EVP_PKEY_free(b->key);
	memset(b, 0, sizeof(*b));
}

static int pass_cb(char *buf, int size, int rwflag, void *u)
{
	const char *pw = u;
	(void)rwflag;
	if (!pw)
		return -1;
	size_t n = strlen(pw);
	if ((int)n > size)
		return -1;
	memcpy(buf, pw, n);
	return (int)n;
}

/* The certificates and CRLs of a PKCS#7 SignedData (a .p7b chain). 0,
 * EINVAL (another PKCS#7 type) or ENOMEM. */
static int take_pkcs7(PKCS7 *p7, struct om_cert_bundle *o)
{
	if (!PKCS7_type_is_signed(p7) || !p7->d.sign)
		return EINVAL;
	STACK_OF(X509) *certs = p7->d.sign->cert;
	STACK_OF(X509_CRL) *crls = p7->d.sign->crl;
	for (int i = 0; certs && i < sk_X509_num(certs); i++) {
		X509 *x = sk_X509_value(certs, i);
		if (!X509_up_ref(x))
			return ENOMEM;
		if (!sk_X509_push(o->certs, x)) {
			X509_free(x);
			return ENOMEM;
		}
	}
	for (int i = 0; crls && i < sk_X509_CRL_num(crls); i++) {
		X509_CRL *c = sk_X509_CRL_value(crls, i);
		if (!X509_CRL_up_ref(c))
			return ENOMEM;
		if (!sk_X509_CRL_push(o->crls, c)) {
			X509_CRL_free(c);
			return ENOMEM;
		}
	}
	return 0;
}

/* Every "-----BEGIN PKCS7-----" block of a PEM file (other blocks are
 * skipped by the reader). */
static int parse_pem_pkcs7(const void *data, size_t len, struct om_cert_bundle *o)
{
	BIO *b = BIO_new_mem_buf(data, (int)len);
	int err = 0;
	if (!b)
		return ENOMEM;
	for (PKCS7 *p7; !err && (p7 = PEM_read_bio_PKCS7(b, NULL, NULL, NULL)) != NULL;) {
		err = take_pkcs7(p7, o);
		PKCS7_free(p7);
	}
	BIO_free(b);
	ERR_clear_error();
	return err;
}

/* The first PEM block whose BEGIN line names a private key ("PRIVATE
 * KEY", "RSA PRIVATE KEY", "ENCRYPTED PRIVATE KEY" ...), through the end
 * of its END line; NULL when none. */
static const char *key_block(const char *d, size_t len, size_t *blen)
{
	const char *end = d + len;
	for (const char *p = d; (p = memmem(p, (size_t)(end - p), "-----BEGIN ", 11)) != NULL;
	     p += 11) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		const char *le = eol ? eol : end;
		if (!memmem(p, (size_t)(le - p), "PRIVATE KEY-----", 16))
			continue;
		const char *e = memmem(le, (size_t)(end - le), "-----END ", 9);
		const char *eol2 = e ? memchr(e, '\n', (size_t)(end - e)) : NULL;
		*blen = (size_t)((eol2 ? eol2 + 1 : end) - p);
		return p;
	}
	return NULL;
}

/* A PEM file the reader refused as a whole: the key's fault only when the
 * key alone cannot be read; else a certificate, CRL or PKCS#7 block is. */
static int pem_failure(const void *data, size_t len, const char *password,
                       const struct om_cert_bundle *o)
{
	if (!o->had_key)
		return memmem(data, len, "-----BEGIN CERTIFICATE-----", 27) ||
		               memmem(data, len, "-----BEGIN X509 CRL-----", 24)
		           ? EILSEQ
		           : EINVAL;
	/* The key block alone: the reader stops at the first damaged block,
	 * wherever the key is. */
	size_t klen = 0;
	const char *from = key_block(data, len, &klen);
	if (!from)
		return o->key_encrypted ? EACCES : EBADMSG;
	BIO *b = BIO_new_mem_buf(from, (int)klen);
	if (!b)
		return ENOMEM;
	EVP_PKEY *k = PEM_read_bio_PrivateKey(b, NULL, pass_cb, (void *)password);
	BIO_free(b);
	ERR_clear_error();
	if (k) {
		EVP_PKEY_free(k);
		return EILSEQ; /* the key is fine: another block is damaged */
	}
	return o->key_encrypted ? EACCES : EBADMSG;
}

static int parse_pem(const void *data, size_t len, const char *password, struct om_cert_bundle *o)
{
	BIO *b = BIO_new_mem_buf(data, (int)len);
	STACK_OF(X509_INFO) * infos;
	int err = 0;
	if (!b)
		return ENOMEM;
	o->had_key = om_cert_has_pem_key(data, len);
	o->key_encrypted = memmem(data, len, "ENCRYPTED PRIVATE KEY", 21) ||
	                   memmem(data, len, "Proc-Type: 4,ENCRYPTED", 22);
	infos = PEM_X509_INFO_read_bio(b, NULL, pass_cb, (void *)password);
	BIO_free(b);
	/* A key that cannot be read is the password's fault only when it is
	 * encrypted; otherwise the file is corrupt — the key, or another
	 * block. */
	if (!infos)
		return pem_failure(data, len, password, o);
	for (int i = 0; i < sk_X509_INFO_num(infos) && !err; i++) {
		X509_INFO *in = sk_X509_INFO_value(infos, i);
		if (in->x509) {
			if (!sk_X509_push(o->certs, in->x509))
				err = ENOMEM;
			else
				in->x509 = NULL;
		}
		if (in->crl) {
			if (!sk_X509_CRL_push(o->crls, in->crl))
				err = ENOMEM;
			else
				in->crl = NULL;
		}
	}
	sk_X509_INFO_pop_free(infos, X509_INFO_free);
	if (!err && memmem(data, len, "-----BEGIN PKCS7-----", 21))
		err = parse_pem_pkcs7(data, len, o);
	/* PEM_X509_INFO_read_bio does not decrypt PKCS#8 keys: read the first
	 * key block of any kind on its own. */
	if (!err && o->had_key) {
		b = BIO_new_mem_buf(data, (int)len);
		if (!b)
			return ENOMEM;
		o->key = PEM_read_bio_PrivateKey(b, NULL, pass_cb, (void *)password);
		BIO_free(b);
		if (!o->key)
			err = o->key_encrypted ? EACCES : EBADMSG;
	}
	return err;
}

static int parse_pkcs12(PKCS12 *p12, const char *password, struct om_cert_bundle *o)
{
	EVP_PKEY *key = NULL;
	X509 *x = NULL;
	STACK_OF(X509) *ca = NULL;
	const char *pw = password ? password : "";
	int ok = PKCS12_parse(p12, pw, &key, &x, &ca);
	if (!ok) {
		unsigned long e = ERR_peek_last_error();
		ERR_clear_error();
		/* A MAC that does not verify is a wrong password; anything
		 * else may be an algorithm only the legacy provider has. */
		if (!PKCS12_verify_mac(p12, pw, -1))
			return EACCES;
		if (om_cert_legacy_load() != 0)
			return ENOTSUP;
		o->legacy = true;
		ok = PKCS12_parse(p12, pw, &key, &x, &ca);
		ERR_clear_error();
		if (!ok)
			return e ? EACCES : EINVAL;
	}
	int err = 0;
	o->pkcs12 = true;
	if (key) {
		o->key = key;
		o->had_key = true;
	}
	if (x && !sk_X509_push(o->certs, x)) {
		X509_free(x);
		err = ENOMEM;
	}
	for (int i = 0; ca && i < sk_X509_num(ca); i++) {
		X509 *c = sk_X509_value(ca, i);
		if (err || !sk_X509_push(o->certs, c)) {
			X509_free(c);
			err = ENOMEM;
		}
	}
	sk_X509_free(ca);
	return err;
}

int om_cert_bundle_parse(const void *data, size_t len, const char *password,
                         struct om_cert_bundle *out)
{
	struct om_cert_bundle o = { 0 };
	int err = 0;
	const unsigned char *p;
	if (len == 0 || len > OM_CERT_FILE_MAX)
		return EINVAL;
	o.certs = sk_X509_new_null();
	o.crls = sk_X509_CRL_new_null();
	if (!o.certs || !o.crls) {
		err = ENOMEM;
		goto out;
	}
	if (memmem(data, len, "-----BEGIN ", 11)) {
		err = parse_pem(data, len, password, &o);
		goto out;
	}
	p = data;
	PKCS12 *p12 = d2i_PKCS12(NULL, &p, (long)len);
	if (p12) {
		err = parse_pkcs12(p12, password, &o);
		PKCS12_free(p12);
		goto out;
	}
	p = data;
	PKCS7 *p7 = d2i_PKCS7(NULL, &p, (long)len);
	if (p7) {
		err = take_pkcs7(p7, &o);
		PKCS7_free(p7);
		goto out;
	}
	p = data;
	X509 *x = d2i_X509(NULL, &p, (long)len);
	if (x) {
		if (!sk_X509_push(o.certs, x)) {
			X509_free(x);
			err = ENOMEM;
		}
		goto out;
	}
	p = data;
	X509_CRL *crl = d2i_X509_CRL(NULL, &p, (long)len);
	if (crl) {
		if (!sk_X509_CRL_push(o.crls, crl)) {
			X509_CRL_free(crl);
			err = ENOMEM;
		}
		goto out;
	}
	p = data;
	EVP_PKEY *k = d2i_AutoPrivateKey(NULL, &p, (long)len);
	if (k) { /* a bare DER key: report it so --trusted can refuse it */
		o.key = k;
		o.had_key = true;
	}
out:
	ERR_clear_error();
	if (!err && sk_X509_num(o.certs) == 0 && sk_X509_CRL_num(o.crls) == 0)
		err = o.had_key ? ENOKEY : EINVAL;
	if (err) {
		om_cert_bundle_free(&o);
		return err;
	}
	*out = o;
	return 0;
}

/* ===================== import into the personal store ===================== */

static bool is_ca_cert(X509 *x)
{
	uint32_t f = X509_get_extension_flags(x);
	return (f & EXFLAG_CA) ||
	       ((f & EXFLAG_KUSAGE) && (X509_get_key_usage(x) & KU_KEY_CERT_SIGN));
}

/* issuer signed x (names, key identifiers and the signature). */
static bool issued_by(X509 *x, X509 *issuer)
{
	if (X509_check_issued(issuer, x) != X509_V_OK)
		return false;
	EVP_PKEY *pk = X509_get0_pubkey(issuer);
	bool ok = pk && X509_verify(x, pk) == 1;
	ERR_clear_error();
	return ok;
}

/* The key of a personal certificate already stored for the same public
 * key (a certificate re-issued for the same CSR or key), or NULL. */
static EVP_PKEY *stored_key_for(const struct om_cert_store *s, X509 *x)
{
	EVP_PKEY *pub = X509_get0_pubkey(x);
	for (size_t i = 0; pub && i < om_cert_store_count(s, OM_CERT_PERSONAL); i++) {
		const struct om_cert *c = om_cert_store_at(s, OM_CERT_PERSONAL, i);
		if (c->key && EVP_PKEY_eq(X509_get0_pubkey(c->x509), pub) == 1 &&
		    X509_check_private_key(x, c->key) == 1) {
			ERR_clear_error();
			return EVP_PKEY_up_ref(c->key) ? c->key : NULL;
		}
	}
	ERR_clear_error();
	return NULL;
}

int om_cert_import_personal(struct om_cert_store *s, const struct om_cert_bundle *b,
                            const struct om_cert **out, struct om_cert_import_report *rep)
{
	int n = sk_X509_num(b->certs), leaf = -1, err = 0;
	EVP_PKEY *key = NULL;
	char spki[65] = "";
	STACK_OF(X509) *chain = NULL;
	bool *used = NULL;

	memset(rep, 0, sizeof(*rep));
	if (n <= 0)
		return EINVAL;
	if (b->key) {
		for (int i = 0; i < n && leaf < 0; i++)
			if (X509_check_private_key(sk_X509_value(b->certs, i), b->key) == 1)
				leaf = i;
		ERR_clear_error();
		if (leaf < 0)
			return EKEYREJECTED; /* a key that belongs to none of them */
		if (is_ca_cert(sk_X509_value(b->certs, leaf)))
			return ENOTSUP; /* a CA's key does not belong on a UM server */
		if (!EVP_PKEY_up_ref(b->key))
			return ENOMEM;
		key = b->key;
	} else {
		for (int i = 0; i < n && leaf < 0; i++) {
			X509 *x = sk_X509_value(b->certs, i);
			if (is_ca_cert(x))
				continue;
			key = om_cert_request_key_find(om_cert_store_dir(s), x, spki);
			if (key) {
				leaf = i;
				rep->matched_request = true;
			}
		}
		for (int i = 0; i < n && leaf < 0; i++) {
			X509 *x = sk_X509_value(b->certs, i);
			if (is_ca_cert(x))
				continue;
			key = stored_key_for(s, x);
			if (key) {
				leaf = i;
				rep->matched_stored = true;
			}
		}
	}
	for (int i = 0; i < n && leaf < 0; i++)
		if (!is_ca_cert(sk_X509_value(b->certs, i)))
			leaf = i;
	/* Only CA certificates and no key: a root or intermediate, which
	 * belongs in the trusted store, not among the server's own. */
	if (leaf < 0)
		return EPERM;
	chain = sk_X509_new_null();
	used = om_calloc((size_t)n, sizeof(*used));
	if (!chain || !used) {
		err = ENOMEM;
		goto out;
	}
	/* Issuer order: the leaf's issuer, its issuer, ... whatever the
	 * file's order; what is left does not belong to this chain. */
	used[leaf] = true;
	X509 *cur = sk_X509_value(b->certs, leaf);
	while (sk_X509_num(chain) < n && !(X509_get_extension_flags(cur) & EXFLAG_SS)) {
		int next = -1;
		for (int i = 0; i < n && next < 0; i++)
			if (!used[i] && issued_by(cur, sk_X509_value(b->certs, i)))
				next = i;
		if (next < 0)
			break;
		used[next] = true;
		cur = sk_X509_value(b->certs, next);
		if (!sk_X509_push(chain, cur)) {
			err = ENOMEM;
			goto out;
		}
	}
	for (int i = 0; i < n; i++) {
		if (used[i])
			continue;
		if (rep->ndropped < 4) {
			char *line =
			    X509_NAME_oneline(X509_get_subject_name(sk_X509_value(b->certs, i)),
			                      rep->dropped[rep->ndropped], sizeof(rep->dropped[0]));
			(void)line;
		}
		rep->ndropped++;
	}
	rep->nchain = sk_X509_num(chain);
	/* Re-imported without its chain: the chain stored before is kept. */
	for (size_t i = 0; rep->nchain == 0 && i < om_cert_store_count(s, OM_CERT_PERSONAL); i++) {
		const struct om_cert *c = om_cert_store_at(s, OM_CERT_PERSONAL, i);
		if (!X509_cmp(c->x509, sk_X509_value(b->certs, leaf)) && c->chain &&
		    sk_X509_num(c->chain) > 0)
			rep->kept_chain = true;
	}
	err =
	    om_cert_store_add(s, OM_CERT_PERSONAL, sk_X509_value(b->certs, leaf), chain, key, out);
	if (!err && rep->matched_request)
		om_cert_request_key_drop(om_cert_store_dir(s), spki);
out:
	om_free(used);
	sk_X509_free(chain); /* borrowed pointers */
	EVP_PKEY_free(key);
	ERR_clear_error();
	return err;
}

/* ===================== export ===================== */

int om_cert_format_parse(const char *s, enum om_cert_format *out)
{
	if (strcmp(s, "pem") == 0)
		*out = OM_CERT_FMT_PEM;
	else if (strcmp(s, "der") == 0 || strcmp(s, "cer") == 0)
		*out = OM_CERT_FMT_DER;
	else if (strcmp(s, "pfx") == 0 || strcmp(s, "p12") == 0 || strcmp(s, "pkcs12") == 0)
		*out = OM_CERT_FMT_PFX;
	else
		return EINVAL;
	return 0;
}

/* Password protection: OpenSSL's current defaults (PKCS12_DEFAULT_ITER
 * iterations) for the key and certificate encryption and for the MAC, in
 * both forms. --legacy changes only the ciphers old gateways need
 * (3DES keys, RC2-40 certificates, SHA-1 MAC), never the iteration counts
 * (PKCS12_create_ex would MAC with a single iteration when given 0). */
static int export_pfx(const struct om_cert *c, EVP_PKEY *key, const char *password, bool legacy,
                      BIO *b)
{
	int nid_key = 0, nid_cert = 0, iter = PKCS12_DEFAULT_ITER, mac_iter = PKCS12_DEFAULT_ITER;
	PKCS12 *p12;
	if (legacy) {
		if (om_cert_legacy_load() != 0)
			return ENOTSUP;
		nid_key = NID_pbe_WithSHA1And3_Key_TripleDES_CBC;
		nid_cert = NID_pbe_WithSHA1And40BitRC2_CBC;
	}
	char fname[80];
	snprintf(fname, sizeof(fname), "openum %.16s", c->sha1);
	p12 = PKCS12_create_ex(password ? password : "", fname, key, c->x509, c->chain, nid_key,
	                       nid_cert, iter, mac_iter, 0, NULL, NULL);
	if (!p12)
		return EIO;
	/* PKCS12_create_ex MACs with SHA-256 unless told otherwise; old
	 * readers want SHA-1. */
	if (legacy &&
	    !PKCS12_set_mac(p12, password ? password : "", -1, NULL, 0, mac_iter, EVP_sha1())) {
		PKCS12_free(p12);
		return EIO;
	}
	int ok = i2d_PKCS12_bio(b, p12);
	PKCS12_free(p12);
	return ok ? 0 : EIO;
}

int om_cert_export(const struct om_cert *c, enum om_cert_format f, bool with_key,
                   const char *password, bool legacy, char **data, size_t *len)
{
	EVP_PKEY *key = with_key ? c->key : NULL;
	BIO *b;
	int err = 0;
	if (with_key && !key)
		return ENOKEY;
	if (f == OM_CERT_FMT_DER && with_key)
		return EINVAL; /* a DER file holds one object */
	if (f == OM_CERT_FMT_PFX && with_key && (!password || !*password))
		return EINVAL;
	b = BIO_new(BIO_s_mem());
	if (!b)
		return ENOMEM;
	switch (f) {
	case OM_CERT_FMT_PEM:
		if (!PEM_write_bio_X509(b, c->x509))
			err = EIO;
		for (int i = 0; !err && c->chain && i < sk_X509_num(c->chain); i++)
			if (!PEM_write_bio_X509(b, sk_X509_value(c->chain, i)))
				err = EIO;
		if (!err && key) {
			const EVP_CIPHER *ciph = password && *password ? EVP_aes_256_cbc() : NULL;
			if (!PEM_write_bio_PKCS8PrivateKey(b, key, ciph, NULL, 0, NULL,
			                                   ciph ? (void *)password : NULL))
				err = EIO;
		}
		break;
	case OM_CERT_FMT_DER:
		if (!i2d_X509_bio(b, c->x509))
			err = EIO;
		break;
	case OM_CERT_FMT_PFX:
		err = export_pfx(c, key, password, legacy, b);
		break;
	default:
		err = EINVAL;
	}
	if (!err)
		err = om_cert_bio_take(b, data, len);
	BIO_free(b);
	ERR_clear_error();
	return err;
}
