/* gen.c — keys, self-signed certificates and certificate requests (R6, R7).
 *
 * Generated certificates carry what the seed asks of the UM server's own
 * certificate: the FQDN in the subject CN and in a DNS subjectAltName (RFC
 * 5280 §4.2.1.6; gateways check the SAN, RFC 5922 §7.1), EKU serverAuth and
 * clientAuth (mutual TLS uses the same certificate both ways), CA:FALSE.
 * The CSR's key is kept in certs/requests/<spki-sha256>.key so the issued
 * certificate can be matched to it on import. OpenSSL 3 APIs only. */
#include "cert/cert_int.h"
#include "core/alloc.h"
#include "core/file.h"
#include "core/fqdn.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

int om_cert_keytype_parse(const char *s, enum om_cert_keytype *out)
{
	if (strcmp(s, "ec") == 0 || strcmp(s, "ecdsa") == 0 || strcmp(s, "p256") == 0)
		*out = OM_CERT_KEY_EC;
	else if (strcmp(s, "rsa2048") == 0)
		*out = OM_CERT_KEY_RSA2048;
	else if (strcmp(s, "rsa3072") == 0)
		*out = OM_CERT_KEY_RSA3072;
	else
		return EINVAL;
	return 0;
}

int om_cert_key_new(enum om_cert_keytype t, EVP_PKEY **out)
{
	EVP_PKEY *k;
	switch (t) {
	case OM_CERT_KEY_EC:
		k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
		break;
	case OM_CERT_KEY_RSA2048:
		k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
		break;
	case OM_CERT_KEY_RSA3072:
		k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)3072);
		break;
	default:
		return EINVAL;
	}
	if (!k)
		return ENOMEM;
	*out = k;
	return 0;
}

static int add_ext(X509 *x, X509_REQ *req, STACK_OF(X509_EXTENSION) * sk, X509V3_CTX *ctx, int nid,
                   const char *value)
{
	X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
	int ok;
	if (!e)
		return EINVAL;
	if (x)
		ok = X509_add_ext(x, e, -1);
	else
		ok = sk_X509_EXTENSION_push(sk, e) > 0;
	if (ok && !x)
		return 0; /* the stack owns it now */
	X509_EXTENSION_free(e);
	(void)req;
	return ok ? 0 : ENOMEM;
}

/* A DNS name we are willing to put in a certificate: the one set of host
 * name rules (core/fqdn.h); written in its canonical form (lower case, no
 * root dot). Also keeps commas and colons out of the extension
 * configuration strings below. A single label is allowed here (the host
 * name is the default of `fqdn`, and a secured start must be able to
 * generate a certificate for it); names people type are checked for two
 * labels by the CLI and openum.conf. */
static int fqdn_canon(const char *s, char *out, size_t len)
{
	if (om_fqdn_check(s, 0, NULL, 0) != 0)
		return EINVAL;
	return om_fqdn_norm(s, strlen(s), out, len) ? EINVAL : 0;
}

static int common_exts(X509 *x, STACK_OF(X509_EXTENSION) * sk, X509V3_CTX *ctx, const char *fqdn,
                       EVP_PKEY *key)
{
	char san[300];
	int err;
	snprintf(san, sizeof(san), "DNS:%s", fqdn);
	err = add_ext(x, NULL, sk, ctx, NID_basic_constraints, "critical,CA:FALSE");
	if (!err)
		err =
		    add_ext(x, NULL, sk, ctx, NID_key_usage,
		            EVP_PKEY_is_a(key, "RSA") ? "critical,digitalSignature,keyEncipherment"
		                                      : "critical,digitalSignature");
	if (!err)
		err = add_ext(x, NULL, sk, ctx, NID_ext_key_usage, "serverAuth,clientAuth");
	if (!err)
		err = add_ext(x, NULL, sk, ctx, NID_subject_alt_name, san);
	return err;
}

static X509_NAME *cn_name(const char *fqdn)
{
	X509_NAME *n = X509_NAME_new();
	if (n && !X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8, (const unsigned char *)fqdn,
	                                     -1, -1, 0)) {
		X509_NAME_free(n);
		n = NULL;
	}
	return n;
}

int om_cert_selfsigned_new(EVP_PKEY *key, const char *fqdn, int days, int64_t now_ms, X509 **out)
{
	X509 *x = NULL;
	X509_NAME *name = NULL;
	unsigned char sn[16];
	BIGNUM *bn = NULL;
	X509V3_CTX ctx;
	int err = 0;
	time_t now = (time_t)(now_ms / 1000);
	char name_buf[OM_FQDN_MAX + 1];

	if (fqdn_canon(fqdn, name_buf, sizeof(name_buf)) || days <= 0 || days > 36500)
		return EINVAL;
	fqdn = name_buf;
	x = X509_new();
	name = cn_name(fqdn);
	if (!x || !name) {
		err = ENOMEM;
		goto out;
	}
	if (RAND_bytes(sn, sizeof(sn)) != 1) {
		err = EIO;
		goto out;
	}
	sn[0] &= 0x7f; /* positive */
	sn[0] |= 0x40; /* and 16 bytes long */
	bn = BN_bin2bn(sn, sizeof(sn), NULL);
	if (!bn || !X509_set_version(x, X509_VERSION_3) ||
	    !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) || !X509_set_subject_name(x, name) ||
	    !X509_set_issuer_name(x, name) ||
	    !X509_time_adj_ex(X509_getm_notBefore(x), 0, -3600, &now) ||
	    !X509_time_adj_ex(X509_getm_notAfter(x), days, 0, &now) || !X509_set_pubkey(x, key)) {
		err = ENOMEM;
		goto out;
	}
	X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
	err = common_exts(x, NULL, &ctx, fqdn, key);
	if (!err)
		err = add_ext(x, NULL, NULL, &ctx, NID_subject_key_identifier, "hash");
	if (!err)
		err = add_ext(x, NULL, NULL, &ctx, NID_authority_key_identifier, "keyid:always");
	if (err)
		goto out;
	if (X509_sign(x, key, EVP_sha256()) <= 0) {
		err = EIO;
		goto out;
	}
	*out = x;
	x = NULL;
out:
	ERR_clear_error();
	BN_free(bn);
	X509_NAME_free(name);
	X509_free(x);
	return err;
}

int om_cert_store_new_selfsigned(struct om_cert_store *s, const char *fqdn, enum om_cert_keytype t,
                                 int days, int64_t now_ms, const struct om_cert **out)
{
	EVP_PKEY *key = NULL;
	X509 *x = NULL;
	int err = om_cert_key_new(t, &key);
	if (!err)
		err = om_cert_selfsigned_new(key, fqdn, days ? days : OM_CERT_DEFAULT_DAYS, now_ms,
		                             &x);
	if (!err)
		err = om_cert_store_add(s, OM_CERT_PERSONAL, x, NULL, key, out);
	X509_free(x);
	EVP_PKEY_free(key);
	return err;
}

/* ===================== CSR ===================== */

static int request_path(const char *data_dir, const char *spki, const char *ext, char *buf,
                        size_t len)
{
	char name[80];
	snprintf(name, sizeof(name), "%s.%s", spki, ext);
	return om_cert_path(data_dir, "requests", name, buf, len);
}

int om_cert_request_new(struct om_cert_store *s, const char *fqdn, enum om_cert_keytype t,
                        char **pem, size_t *len, char *id)
{
	EVP_PKEY *key = NULL;
	X509_REQ *req = NULL;
	X509_NAME *name = NULL;
	STACK_OF(X509_EXTENSION) *exts = NULL;
	X509V3_CTX ctx;
	char spki[65], path[PATH_MAX], dir[PATH_MAX];
	char *kpem = NULL, *csr = NULL;
	size_t klen = 0, csrlen = 0;
	BIO *b = NULL;
	int err;
	const char *data_dir = om_cert_store_dir(s);
	char name_buf[OM_FQDN_MAX + 1];

	if (fqdn_canon(fqdn, name_buf, sizeof(name_buf)))
		return EINVAL;
	fqdn = name_buf;
	err = om_cert_key_new(t, &key);
	if (err)
		return err;
	req = X509_REQ_new();
	name = cn_name(fqdn);
	exts = sk_X509_EXTENSION_new_null();
	if (!req || !name || !exts || !X509_REQ_set_version(req, X509_REQ_VERSION_1) ||
	    !X509_REQ_set_subject_name(req, name) || !X509_REQ_set_pubkey(req, key)) {
		err = ENOMEM;
		goto out;
	}
	X509V3_set_ctx(&ctx, NULL, NULL, req, NULL, 0);
	err = common_exts(NULL, exts, &ctx, fqdn, key);
	if (err)
		goto out;
	if (!X509_REQ_add_extensions(req, exts) || X509_REQ_sign(req, key, EVP_sha256()) <= 0) {
		err = EIO;
		goto out;
	}
	b = BIO_new(BIO_s_mem());
	if (!b || !PEM_write_bio_X509_REQ(b, req)) {
		err = ENOMEM;
		goto out;
	}
	err = om_cert_bio_take(b, &csr, &csrlen);
	if (!err)
		err = om_cert_spki_sha256(key, spki);
	if (!err)
		err = om_cert_key_pem(key, &kpem, &klen);
	if (!err)
		err = om_cert_path(data_dir, "requests", NULL, dir, sizeof(dir));
	if (!err)
		err = om_mkdir_p(dir, 0700);
	if (!err)
		err = request_path(data_dir, spki, "key", path, sizeof(path));
	if (!err)
		err = om_file_write_atomic(path, kpem, klen, 0600);
	if (err)
		goto out;
	if ((err = request_path(data_dir, spki, "csr", path, sizeof(path))) != 0 ||
	    (err = om_file_write_atomic(path, csr, csrlen, 0600)) != 0) {
		(void)om_cert_request_remove(data_dir, spki); /* no orphan key */
		goto out;
	}
	*pem = csr;
	*len = csrlen;
	csr = NULL;
	if (id)
		memcpy(id, spki, sizeof(spki));
out:
	ERR_clear_error();
	if (kpem) {
		OPENSSL_cleanse(kpem, klen);
		om_free(kpem);
	}
	om_free(csr);
	BIO_free(b);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	X509_NAME_free(name);
	X509_REQ_free(req);
	EVP_PKEY_free(key);
	return err;
}

EVP_PKEY *om_cert_request_key_find(const char *data_dir, X509 *x, char spki[65])
{
	char path[PATH_MAX];
	char *data = NULL;
	size_t len;
	EVP_PKEY *pub = X509_get0_pubkey(x), *k = NULL;
	if (!pub || om_cert_spki_sha256(pub, spki) != 0 ||
	    request_path(data_dir, spki, "key", path, sizeof(path)) != 0 ||
	    om_file_read(path, 1 << 20, &data, &len) != 0)
		return NULL;
	BIO *b = BIO_new_mem_buf(data, (int)len);
	if (b)
		k = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
	BIO_free(b);
	OPENSSL_cleanse(data, len);
	om_free(data);
	if (k && X509_check_private_key(x, k) != 1) {
		EVP_PKEY_free(k);
		k = NULL;
	}
	ERR_clear_error();
	return k;
}

void om_cert_request_key_drop(const char *data_dir, const char spki[65])
{
	char path[PATH_MAX];
	if (request_path(data_dir, spki, "key", path, sizeof(path)) == 0)
		(void)unlink(path);
	if (request_path(data_dir, spki, "csr", path, sizeof(path)) == 0)
		(void)unlink(path);
}

/* ===================== pending requests ===================== */

static int req_cmp(const void *a, const void *b)
{
	const struct om_cert_request *x = a, *y = b;
	if (x->created_ms != y->created_ms)
		return x->created_ms < y->created_ms ? -1 : 1;
	return strcmp(x->id, y->id);
}

static void csr_subject(const char *data_dir, const char *id, char *out, size_t len)
{
	char path[PATH_MAX];
	char *data = NULL;
	size_t n;
	out[0] = '\0';
	if (request_path(data_dir, id, "csr", path, sizeof(path)) != 0 ||
	    om_file_read(path, 1 << 20, &data, &n) != 0)
		return;
	BIO *b = BIO_new_mem_buf(data, (int)n);
	X509_REQ *req = b ? PEM_read_bio_X509_REQ(b, NULL, NULL, NULL) : NULL;
	BIO *o = req ? BIO_new(BIO_s_mem()) : NULL;
	if (o && X509_NAME_print_ex(o, X509_REQ_get_subject_name(req), 0, XN_FLAG_RFC2253) >= 0) {
		int k = BIO_read(o, out, (int)len - 1);
		out[k > 0 ? k : 0] = '\0';
	}
	BIO_free(o);
	X509_REQ_free(req);
	BIO_free(b);
	om_free(data);
	ERR_clear_error();
}

int om_cert_requests_list(const char *data_dir, struct om_cert_request **out, size_t *n)
{
	char dir[PATH_MAX];
	struct om_cert_request *v = NULL;
	size_t cnt = 0, cap = 0;
	int err = om_cert_path(data_dir, "requests", NULL, dir, sizeof(dir));
	*out = NULL;
	*n = 0;
	if (err)
		return err;
	DIR *d = opendir(dir);
	if (!d)
		return errno == ENOENT ? 0 : errno;
	for (struct dirent *e; (e = readdir(d)) != NULL;) {
		size_t l = strlen(e->d_name);
		struct stat st;
		char path[PATH_MAX];
		if (l != 68 || strcmp(e->d_name + 64, ".key") != 0 ||
		    strspn(e->d_name, "0123456789abcdef") != 64)
			continue;
		if (snprintf(path, sizeof(path), "%s/%s", dir, e->d_name) >= (int)sizeof(path) ||
		    stat(path, &st) != 0)
			continue;
		if (cnt == cap) {
			size_t nc = cap ? 2 * cap : 8;
			struct om_cert_request *nv = om_realloc(v, nc * sizeof(*nv));
			if (!nv) {
				err = ENOMEM;
				break;
			}
			v = nv;
			cap = nc;
		}
		struct om_cert_request *r = &v[cnt++];
		memset(r, 0, sizeof(*r));
		memcpy(r->id, e->d_name, 64);
		r->id[64] = '\0';
		r->created_ms = (int64_t)st.st_mtime * 1000;
		csr_subject(data_dir, r->id, r->subject, sizeof(r->subject));
	}
	closedir(d);
	if (err) {
		om_free(v);
		return err;
	}
	if (cnt > 1)
		qsort(v, cnt, sizeof(*v), req_cmp);
	*out = v;
	*n = cnt;
	return 0;
}

int om_cert_request_find(const struct om_cert_request *v, size_t n, const char *id, size_t *idx)
{
	char norm[65];
	size_t k = 0;
	for (const char *p = id; *p; p++) {
		if (*p == ':' || *p == ' ')
			continue;
		if (!isxdigit((unsigned char)*p) || k >= 64)
			return EINVAL;
		norm[k++] = (char)tolower((unsigned char)*p);
	}
	norm[k] = '\0';
	if (k < 8)
		return EINVAL;
	size_t found = (size_t)-1;
	for (size_t i = 0; i < n; i++) {
		if (strncmp(v[i].id, norm, k) != 0)
			continue;
		if (found != (size_t)-1)
			return EEXIST;
		found = i;
	}
	if (found == (size_t)-1)
		return ENOENT;
	*idx = found;
	return 0;
}

int om_cert_request_remove(const char *data_dir, const char *id)
{
	char path[PATH_MAX];
	int err = request_path(data_dir, id, "key", path, sizeof(path));
	if (err)
		return err;
	if (unlink(path) != 0 && errno != ENOENT)
		return errno;
	if (request_path(data_dir, id, "csr", path, sizeof(path)) == 0)
		(void)unlink(path);
	if (om_cert_path(data_dir, "requests", NULL, path, sizeof(path)) == 0)
		(void)om_fsync_dir(path);
	return 0;
}
