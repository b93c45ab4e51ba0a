/* store.c — the personal, trusted and CRL stores under DATA/certs/, the
 * facts shown for each certificate (thumbprints, names, EKU, self-signed),
 * lookup by thumbprint prefix and the pin file (R6, R7).
 *
 * Self-signed means what the seed says ("the subject and the name of the
 * certificate match") made exact: issuer equals subject AND the
 * certificate's own public key verifies its signature. Anything else is
 * CA-issued (PKI or commercial). */
#include "cert/cert_int.h"
#include "core/alloc.h"
#include "core/file.h"
#include "core/log.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/x509v3.h>

struct om_cert_store {
	char *dir;
	struct om_cert **v[2];
	size_t n[2];
	size_t cap[2];
	struct om_cert_crl **crls;
	size_t ncrls, capcrls;
};

static const char *const sub_dirs[2] = { "personal", "trusted" };

static int load_crls(struct om_cert_store *s);
static void crl_entry_free(struct om_cert_crl *c);

/* ===================== small helpers ===================== */

void om_cert_hex(const unsigned char *p, size_t n, bool upper, char *out)
{
	const char *d = upper ? "0123456789ABCDEF" : "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = d[p[i] >> 4];
		out[2 * i + 1] = d[p[i] & 15];
	}
	out[2 * n] = '\0';
}

int om_cert_bio_take(BIO *b, char **data, size_t *len)
{
	char *p;
	long n = BIO_get_mem_data(b, &p);
	if (n < 0)
		return EIO;
	char *copy = om_malloc((size_t)n + 1);
	if (!copy)
		return ENOMEM;
	if (n > 0)
		memcpy(copy, p, (size_t)n);
	copy[n] = '\0';
	*data = copy;
	*len = (size_t)n;
	return 0;
}

int om_cert_path(const char *data_dir, const char *sub, const char *name, char *buf, size_t len)
{
	int n;
	if (name)
		n = snprintf(buf, len, "%s/certs/%s/%s", data_dir, sub, name);
	else
		n = snprintf(buf, len, "%s/certs/%s", data_dir, sub);
	return n < 0 || (size_t)n >= len ? ENAMETOOLONG : 0;
}

int64_t om_cert_asn1_ms(const ASN1_TIME *t)
{
	struct tm tm;
	if (!t || !ASN1_TIME_to_tm(t, &tm))
		return 0;
	return (int64_t)timegm(&tm) * 1000;
}

int om_cert_spki_sha256(EVP_PKEY *key, char out[65])
{
	unsigned char *der = NULL, md[32];
	unsigned int mdlen = 0;
	int n = i2d_PUBKEY(key, &der);
	if (n <= 0)
		return EINVAL;
	int ok = EVP_Digest(der, (size_t)n, md, &mdlen, EVP_sha256(), NULL);
	OPENSSL_free(der);
	if (!ok)
		return EIO;
	om_cert_hex(md, mdlen, false, out);
	return 0;
}

int om_cert_key_pem(EVP_PKEY *key, char **data, size_t *len)
{
	BIO *b = BIO_new(BIO_s_mem());
	int err;
	if (!b)
		return ENOMEM;
	if (!PEM_write_bio_PKCS8PrivateKey(b, key, NULL, NULL, 0, NULL, NULL))
		err = EIO;
	else
		err = om_cert_bio_take(b, data, len);
	BIO_free(b);
	return err;
}

static char *name_line(const X509_NAME *n)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *s = NULL;
	size_t len;
	if (!b)
		return NULL;
	if (X509_NAME_print_ex(b, n, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) >= 0)
		(void)om_cert_bio_take(b, &s, &len);
	BIO_free(b);
	return s;
}

static char *sans_line(X509 *x)
{
	GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	BIO *b = BIO_new(BIO_s_mem());
	char *s = NULL;
	size_t len;
	if (!b) {
		GENERAL_NAMES_free(gens);
		return NULL;
	}
	for (int i = 0; gens && i < sk_GENERAL_NAME_num(gens); i++) {
		GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
		if (i)
			BIO_puts(b, ", ");
		GENERAL_NAME_print(b, g);
	}
	(void)om_cert_bio_take(b, &s, &len);
	BIO_free(b);
	GENERAL_NAMES_free(gens);
	return s;
}

void om_cert_key_type(EVP_PKEY *pk, char *out, size_t len)
{
	char grp[64];
	if (!pk) {
		snprintf(out, len, "unknown");
	} else if (EVP_PKEY_is_a(pk, "EC")) {
		size_t gl = 0;
		if (!EVP_PKEY_get_utf8_string_param(pk, "group", grp, sizeof(grp), &gl))
			snprintf(grp, sizeof(grp), "?");
		snprintf(out, len, "EC %s",
		         strcmp(grp, "prime256v1") == 0  ? "P-256"
		         : strcmp(grp, "secp384r1") == 0 ? "P-384"
		                                         : grp);
	} else if (EVP_PKEY_is_a(pk, "RSA")) {
		snprintf(out, len, "RSA %d", EVP_PKEY_get_bits(pk));
	} else {
		snprintf(out, len, "%s %d", EVP_PKEY_get0_type_name(pk), EVP_PKEY_get_bits(pk));
	}
}

/* ===================== entries ===================== */

void om_cert_entry_free(struct om_cert *c)
{
	if (!c)
		return;
	X509_free(c->x509);
	om_cert_chain_free(c->chain);
	EVP_PKEY_free(c->key);
	om_free(c->subject);
	om_free(c->issuer);
	om_free(c->sans);
	om_free(c);
}

struct om_cert *om_cert_entry_new(X509 *x, STACK_OF(X509) * chain, EVP_PKEY *key,
                                  enum om_cert_where w)
{
	struct om_cert *c = om_calloc(1, sizeof(*c));
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen;
	if (!c)
		return NULL;
	c->where = w;
	if (!X509_up_ref(x)) {
		om_free(c);
		return NULL;
	}
	c->x509 = x;
	if (chain && sk_X509_num(chain) > 0) {
		c->chain = X509_chain_up_ref(chain);
		if (!c->chain)
			goto fail;
	}
	if (key) {
		if (!EVP_PKEY_up_ref(key))
			goto fail;
		c->key = key;
	}
	if (!X509_digest(x, EVP_sha1(), md, &mdlen))
		goto fail;
	om_cert_hex(md, mdlen, true, c->sha1);
	if (!X509_digest(x, EVP_sha256(), md, &mdlen))
		goto fail;
	om_cert_hex(md, mdlen, false, c->sha256);

	const ASN1_INTEGER *sn = X509_get0_serialNumber(x);
	BIGNUM *bn = ASN1_INTEGER_to_BN(sn, NULL);
	char *hex = bn ? BN_bn2hex(bn) : NULL;
	snprintf(c->serial, sizeof(c->serial), "%s", hex ? hex : "?");
	OPENSSL_free(hex);
	BN_free(bn);

	c->subject = name_line(X509_get_subject_name(x));
	c->issuer = name_line(X509_get_issuer_name(x));
	c->sans = sans_line(x);
	if (!c->subject || !c->issuer || !c->sans)
		goto fail;
	c->not_before_ms = om_cert_asn1_ms(X509_get0_notBefore(x));
	c->not_after_ms = om_cert_asn1_ms(X509_get0_notAfter(x));

	EVP_PKEY *pub = X509_get0_pubkey(x);
	om_cert_key_type(pub, c->key_type, sizeof(c->key_type));
	c->self_signed = X509_NAME_cmp(X509_get_subject_name(x), X509_get_issuer_name(x)) == 0 &&
	                 pub && X509_verify(x, pub) == 1;
	ERR_clear_error();

	uint32_t xf = X509_get_extension_flags(x); /* also caches the extensions */
	/* A CA by its basic constraints, or by a key usage that signs
	 * certificates: never a server certificate (issue 18). */
	c->is_ca = (xf & EXFLAG_CA) != 0 ||
	           ((xf & EXFLAG_KUSAGE) && (X509_get_key_usage(x) & KU_KEY_CERT_SIGN));
	c->eku_present = (xf & EXFLAG_XKUSAGE) != 0;
	if (c->eku_present) {
		uint32_t xku = X509_get_extended_key_usage(x);
		c->eku_server = (xku & (XKU_SSL_SERVER | XKU_ANYEKU)) != 0;
		c->eku_client = (xku & (XKU_SSL_CLIENT | XKU_ANYEKU)) != 0;
	} else {
		c->eku_server = c->eku_client = true; /* no EKU: any purpose */
	}
	return c;
fail:
	om_cert_entry_free(c);
	return NULL;
}

/* ===================== loading ===================== */

static int is_hex_name(const char *s, const char *suffix)
{
	size_t n = strlen(s), sl = strlen(suffix);
	if (n != 64 + sl || strcmp(s + 64, suffix) != 0)
		return 0;
	for (size_t i = 0; i < 64; i++)
		if (!isxdigit((unsigned char)s[i]))
			return 0;
	return 1;
}

static int push(struct om_cert_store *s, enum om_cert_where w, struct om_cert *c)
{
	if (s->n[w] == s->cap[w]) {
		size_t cap = s->cap[w] ? 2 * s->cap[w] : 8;
		struct om_cert **v = om_realloc(s->v[w], cap * sizeof(*v));
		if (!v)
			return ENOMEM;
		s->v[w] = v;
		s->cap[w] = cap;
	}
	s->v[w][s->n[w]++] = c;
	return 0;
}

/* The private key of a personal certificate, when its file exists and
 * matches (*out NULL otherwise). 0, or ENOMEM: a key that is there but
 * could not be read for lack of memory must not look like a missing one. */
/* A private key file next to its certificate. A file that others can
 * read (group or other permission bits) is not used: the key is refused
 * and *problem says why (the certificate then cannot be selected; event
 * 1129 at start and reload). 0, or ENOMEM; a missing or unreadable key is
 * no error (the certificate is keyless). */
static int load_key(const char *path, X509 *x, EVP_PKEY **out, char *problem, size_t plen)
{
	char *data = NULL;
	size_t len = 0;
	EVP_PKEY *k = NULL;
	struct stat st;
	int fd, err;
	*out = NULL;
	err = om_file_open_input(path, &fd, &st);
	if (err == ENOENT)
		return 0;
	if (err) {
		snprintf(problem, plen, "private key file %.300s %s", path, om_file_strerror(err));
		return 0;
	}
	if (st.st_mode & 077) {
		close(fd);
		snprintf(
		    problem, plen,
		    "private key file %.300s has mode %04o: others can read it, so it is not used "
		    "(chmod 600 it, or import the certificate again)",
		    path, (unsigned)(st.st_mode & 07777));
		om_log(OM_LOG_ERROR, "private key file readable by others: refused", "file", path,
		       NULL);
		return 0;
	}
	if ((size_t)st.st_size > (1u << 20)) {
		close(fd);
		snprintf(problem, plen, "private key file %.300s is too large", path);
		return 0;
	}
	data = om_malloc((size_t)st.st_size + 1);
	if (!data) {
		close(fd);
		return ENOMEM;
	}
	while (len < (size_t)st.st_size) {
		ssize_t r = read(fd, data + len, (size_t)st.st_size - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		len += (size_t)r;
	}
	close(fd);
	BIO *b = BIO_new_mem_buf(data, (int)len);
	if (b)
		k = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
	else
		err = ENOMEM;
	BIO_free(b);
	OPENSSL_cleanse(data, len);
	om_free(data);
	if (!k && !err)
		snprintf(problem, plen, "private key file %.300s is corrupt", path);
	if (k && x && X509_check_private_key(x, k) != 1) {
		om_log(OM_LOG_WARNING, "certificate key does not match its certificate", "file",
		       path, NULL);
		snprintf(problem, plen,
		         "private key file %.300s does not belong to the certificate", path);
		EVP_PKEY_free(k);
		k = NULL;
	}
	ERR_clear_error();
	*out = k;
	return err;
}

/* One PEM file: the first certificate is the entry, the rest its chain. */
static int load_one(struct om_cert_store *s, enum om_cert_where w, const char *dir,
                    const char *name)
{
	char path[PATH_MAX];
	char *data = NULL;
	size_t len;
	int err;
	X509 *x = NULL;
	STACK_OF(X509) *chain = NULL;
	EVP_PKEY *key = NULL;
	BIO *b = NULL;
	struct om_cert *c = NULL;

	if (snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int)sizeof(path))
		return ENAMETOOLONG;
	err = om_file_read(path, OM_CERT_FILE_MAX, &data, &len);
	if (err)
		goto out;
	b = BIO_new_mem_buf(data, (int)len);
	chain = sk_X509_new_null();
	if (!b || !chain) {
		err = ENOMEM;
		goto out;
	}
	x = PEM_read_bio_X509(b, NULL, NULL, NULL);
	if (!x) {
		err = EINVAL;
		goto out;
	}
	for (X509 *ix; (ix = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL;) {
		if (!sk_X509_push(chain, ix)) {
			X509_free(ix);
			err = ENOMEM;
			goto out;
		}
	}
	ERR_clear_error();
	char problem[512] = "";
	if (w == OM_CERT_PERSONAL) {
		char kpath[PATH_MAX];
		if (snprintf(kpath, sizeof(kpath), "%s/%.64s.key", dir, name) <
		        (int)sizeof(kpath) &&
		    (err = load_key(kpath, x, &key, problem, sizeof(problem))) != 0)
			goto out;
	}
	c = om_cert_entry_new(x, chain, key, w);
	if (!c) {
		err = ENOMEM;
		goto out;
	}
	snprintf(c->key_problem, sizeof(c->key_problem), "%s", problem);
	err = push(s, w, c);
	if (err == 0)
		c = NULL;
out:
	if (err && err != ENOMEM)
		om_log(OM_LOG_WARNING, "certificate file skipped", "file", path, "error",
		       strerror(err), NULL);
	om_cert_entry_free(c);
	BIO_free(b);
	X509_free(x);
	om_cert_chain_free(chain);
	EVP_PKEY_free(key);
	om_free(data);
	return err == ENOMEM ? ENOMEM : 0;
}

static int load_dir(struct om_cert_store *s, enum om_cert_where w)
{
	char dir[PATH_MAX];
	int err = om_cert_path(s->dir, sub_dirs[w], NULL, dir, sizeof(dir));
	if (err)
		return err;
	DIR *d = opendir(dir);
	if (!d)
		return errno == ENOENT ? 0 : errno;
	for (struct dirent *e; (e = readdir(d)) != NULL;) {
		if (!is_hex_name(e->d_name, ".pem"))
			continue;
		err = load_one(s, w, dir, e->d_name);
		if (err)
			break;
	}
	closedir(d);
	return err;
}

int om_cert_store_open(const char *data_dir, struct om_cert_store **out)
{
	struct om_cert_store *s = om_calloc(1, sizeof(*s));
	int err;
	if (!s)
		return ENOMEM;
	s->dir = om_strdup(data_dir);
	if (!s->dir) {
		err = ENOMEM;
		goto out;
	}
	err = load_dir(s, OM_CERT_PERSONAL);
	if (!err)
		err = load_dir(s, OM_CERT_TRUSTED);
	if (!err)
		err = load_crls(s);
out:
	if (err) {
		om_cert_store_free(s);
		return err;
	}
	*out = s;
	return 0;
}

void om_cert_store_free(struct om_cert_store *s)
{
	if (!s)
		return;
	for (int w = 0; w < 2; w++) {
		for (size_t i = 0; i < s->n[w]; i++)
			om_cert_entry_free(s->v[w][i]);
		om_free(s->v[w]);
	}
	for (size_t i = 0; i < s->ncrls; i++)
		crl_entry_free(s->crls[i]);
	om_free(s->crls);
	om_free(s->dir);
	om_free(s);
}

const char *om_cert_store_dir(const struct om_cert_store *s)
{
	return s->dir;
}

size_t om_cert_store_count(const struct om_cert_store *s, enum om_cert_where w)
{
	return s->n[w];
}

const struct om_cert *om_cert_store_at(const struct om_cert_store *s, enum om_cert_where w,
                                       size_t i)
{
	return i < s->n[w] ? s->v[w][i] : NULL;
}

/* ===================== lookup ===================== */

/* An ID as typed: hex digits with optional ':' or ' ', upper-cased. */
static int norm_id(const char *id, char norm[65])
{
	size_t n = 0;
	for (const char *p = id; *p; p++) {
		if (*p == ':' || *p == ' ')
			continue;
		if (!isxdigit((unsigned char)*p) || n >= 64)
			return EINVAL;
		norm[n++] = (char)toupper((unsigned char)*p);
	}
	norm[n] = '\0';
	return n == 0 ? EINVAL : 0;
}

static int find_in(const struct om_cert_store *s, int w0, int w1, const char *id,
                   const struct om_cert **out)
{
	char norm[65];
	int err = norm_id(id, norm);
	if (err)
		return err;
	size_t n = strlen(norm);
	const struct om_cert *found = NULL;
	for (int w = w0; w <= w1; w++) {
		for (size_t i = 0; i < s->n[w]; i++) {
			const struct om_cert *c = s->v[w][i];
			bool hit = n == 64 ? strcasecmp(c->sha256, norm) == 0
			                   : n <= 40 && strncmp(c->sha1, norm, n) == 0;
			if (!hit)
				continue;
			/* The same certificate in both stores is one match (personal). */
			if (found && strcmp(found->sha256, c->sha256) != 0)
				return EEXIST;
			if (!found)
				found = c;
		}
	}
	if (!found)
		return ENOENT;
	*out = found;
	return 0;
}

int om_cert_store_find(const struct om_cert_store *s, const char *id, const struct om_cert **out)
{
	return find_in(s, OM_CERT_PERSONAL, OM_CERT_TRUSTED, id, out);
}

int om_cert_store_find_personal(const struct om_cert_store *s, const char *id,
                                const struct om_cert **out)
{
	return find_in(s, OM_CERT_PERSONAL, OM_CERT_PERSONAL, id, out);
}

/* ===================== writing ===================== */

static int ensure_dir(const char *data_dir, const char *sub)
{
	char dir[PATH_MAX];
	int err = om_cert_path(data_dir, sub, NULL, dir, sizeof(dir));
	return err ? err : om_mkdir_p(dir, 0700);
}

static int chain_pem(X509 *x, STACK_OF(X509) * chain, char **data, size_t *len)
{
	BIO *b = BIO_new(BIO_s_mem());
	int err = 0;
	if (!b)
		return ENOMEM;
	if (!PEM_write_bio_X509(b, x))
		err = EIO;
	for (int i = 0; !err && chain && i < sk_X509_num(chain); i++)
		if (!PEM_write_bio_X509(b, sk_X509_value(chain, i)))
			err = EIO;
	if (!err)
		err = om_cert_bio_take(b, data, len);
	BIO_free(b);
	return err;
}

int om_cert_store_add(struct om_cert_store *s, enum om_cert_where w, X509 *x,
                      STACK_OF(X509) * chain, EVP_PKEY *key, const struct om_cert **out)
{
	char path[PATH_MAX], name[80];
	char *pem = NULL, *kpem = NULL;
	size_t len, klen = 0;
	int err;
	struct om_cert *c = NULL;
	size_t old = (size_t)-1;

	if (w != OM_CERT_PERSONAL)
		key = NULL;
	if (key && X509_check_private_key(x, key) != 1) {
		ERR_clear_error();
		return EKEYREJECTED;
	}
	c = om_cert_entry_new(x, chain, key, w);
	if (!c)
		return ENOMEM;
	for (size_t i = 0; i < s->n[w]; i++)
		if (strcmp(s->v[w][i]->sha256, c->sha256) == 0)
			old = i;
	if (!key && old != (size_t)-1 && s->v[w][old]->key) {
		c->key = s->v[w][old]->key; /* keep the key already stored */
		EVP_PKEY_up_ref(c->key);
	}
	if (!key && old != (size_t)-1)
		snprintf(c->key_problem, sizeof(c->key_problem), "%s", s->v[w][old]->key_problem);
	if (!c->chain && old != (size_t)-1 && s->v[w][old]->chain) {
		/* re-imported without its chain: keep the one stored */
		c->chain = X509_chain_up_ref(s->v[w][old]->chain);
		if (!c->chain) {
			err = ENOMEM;
			goto out;
		}
	}
	err = ensure_dir(s->dir, sub_dirs[w]);
	if (err)
		goto out;
	err = chain_pem(x, c->chain, &pem, &len);
	if (err)
		goto out;
	if (key) {
		err = om_cert_key_pem(key, &kpem, &klen);
		if (err)
			goto out;
		snprintf(name, sizeof(name), "%s.key", c->sha256);
		err = om_cert_path(s->dir, sub_dirs[w], name, path, sizeof(path));
		if (!err)
			err = om_file_write_atomic(path, kpem, klen, 0600);
		if (err)
			goto out;
	}
	/* The certificate is written after its key: a crash in between leaves
	 * an orphan key file, never a certificate whose key is missing. */
	snprintf(name, sizeof(name), "%s.pem", c->sha256);
	err = om_cert_path(s->dir, sub_dirs[w], name, path, sizeof(path));
	if (!err)
		err = om_file_write_atomic(path, pem, len, 0600);
	if (err)
		goto out;
	if (old != (size_t)-1) {
		om_cert_entry_free(s->v[w][old]);
		s->v[w][old] = c;
	} else {
		err = push(s, w, c);
		if (err)
			goto out;
	}
	*out = c;
	c = NULL;
out:
	om_cert_entry_free(c);
	om_free(pem);
	if (kpem) {
		OPENSSL_cleanse(kpem, klen);
		om_free(kpem);
	}
	return err;
}

int om_cert_store_remove(struct om_cert_store *s, const struct om_cert *c)
{
	enum om_cert_where w = c->where;
	char path[PATH_MAX], name[80];
	int err;
	size_t i;
	for (i = 0; i < s->n[w]; i++)
		if (s->v[w][i] == c)
			break;
	if (i == s->n[w])
		return ENOENT;
	snprintf(name, sizeof(name), "%s.pem", c->sha256);
	err = om_cert_path(s->dir, sub_dirs[w], name, path, sizeof(path));
	if (err)
		return err;
	if (unlink(path) != 0 && errno != ENOENT)
		return errno;
	snprintf(name, sizeof(name), "%s.key", c->sha256);
	if (om_cert_path(s->dir, sub_dirs[w], name, path, sizeof(path)) == 0)
		(void)unlink(path);
	if (om_cert_path(s->dir, sub_dirs[w], NULL, path, sizeof(path)) == 0)
		(void)om_fsync_dir(path);
	om_cert_entry_free(s->v[w][i]);
	s->v[w][i] = s->v[w][--s->n[w]];
	return 0;
}

/* ===================== revocation lists ===================== */

static void crl_entry_free(struct om_cert_crl *c)
{
	if (!c)
		return;
	X509_CRL_free(c->crl);
	om_free(c->issuer);
	om_free(c);
}

/* The trusted certificate that issued crl (its subject is the CRL's issuer
 * and its key verifies the CRL's signature), or NULL. */
static const struct om_cert *crl_signer(const struct om_cert_store *s, X509_CRL *crl,
                                        bool *name_known)
{
	const X509_NAME *iss = X509_CRL_get_issuer(crl);
	*name_known = false;
	for (size_t i = 0; i < s->n[OM_CERT_TRUSTED]; i++) {
		const struct om_cert *t = s->v[OM_CERT_TRUSTED][i];
		if (X509_NAME_cmp(X509_get_subject_name(t->x509), iss) != 0)
			continue;
		*name_known = true;
		EVP_PKEY *pk = X509_get0_pubkey(t->x509);
		if (pk && X509_CRL_verify(crl, pk) == 1) {
			ERR_clear_error();
			return t;
		}
	}
	ERR_clear_error();
	return NULL;
}

static struct om_cert_crl *crl_entry_new(const struct om_cert_store *s, X509_CRL *crl)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen;
	struct om_cert_crl *c = om_calloc(1, sizeof(*c));
	bool known;
	if (!c)
		return NULL;
	if (!X509_CRL_up_ref(crl)) {
		om_free(c);
		return NULL;
	}
	c->crl = crl;
	c->issuer = name_line(X509_CRL_get_issuer(crl));
	if (!c->issuer || !X509_CRL_digest(crl, EVP_sha1(), md, &mdlen))
		goto fail;
	om_cert_hex(md, mdlen, true, c->sha1);
	if (!X509_CRL_digest(crl, EVP_sha256(), md, &mdlen))
		goto fail;
	om_cert_hex(md, mdlen, false, c->sha256);
	c->this_update_ms = om_cert_asn1_ms(X509_CRL_get0_lastUpdate(crl));
	c->next_update_ms =
	    X509_CRL_get0_nextUpdate(crl) ? om_cert_asn1_ms(X509_CRL_get0_nextUpdate(crl)) : 0;
	STACK_OF(X509_REVOKED) *rev = X509_CRL_get_REVOKED(crl);
	c->nrevoked = rev ? (size_t)sk_X509_REVOKED_num(rev) : 0;
	const struct om_cert *signer = crl_signer(s, crl, &known);
	c->signed_by_trusted = signer != NULL;
	if (signer)
		memcpy(c->signer_sha256, signer->sha256, sizeof(c->signer_sha256));
	ERR_clear_error();
	return c;
fail:
	ERR_clear_error();
	crl_entry_free(c);
	return NULL;
}

static int push_crl(struct om_cert_store *s, struct om_cert_crl *c)
{
	if (s->ncrls == s->capcrls) {
		size_t cap = s->capcrls ? 2 * s->capcrls : 8;
		struct om_cert_crl **v = om_realloc(s->crls, cap * sizeof(*v));
		if (!v)
			return ENOMEM;
		s->crls = v;
		s->capcrls = cap;
	}
	s->crls[s->ncrls++] = c;
	return 0;
}

static int load_crls(struct om_cert_store *s)
{
	char dir[PATH_MAX];
	int err = om_cert_path(s->dir, "crl", NULL, dir, sizeof(dir));
	if (err)
		return err;
	DIR *d = opendir(dir);
	if (!d)
		return errno == ENOENT ? 0 : errno;
	for (struct dirent *e; !err && (e = readdir(d)) != NULL;) {
		char path[PATH_MAX];
		char *data = NULL;
		size_t len;
		if (!is_hex_name(e->d_name, ".pem") ||
		    snprintf(path, sizeof(path), "%s/%s", dir, e->d_name) >= (int)sizeof(path))
			continue;
		int rerr = om_file_read(path, OM_CERT_FILE_MAX, &data, &len);
		if (rerr) {
			if (rerr == ENOMEM)
				err = ENOMEM;
			else
				om_log(OM_LOG_WARNING, "revocation list skipped", "file", path,
				       "error", om_file_strerror(rerr), NULL);
			continue;
		}
		BIO *b = BIO_new_mem_buf(data, (int)len);
		X509_CRL *crl = b ? PEM_read_bio_X509_CRL(b, NULL, NULL, NULL) : NULL;
		if (!b) {
			err = ENOMEM;
		} else if (!crl) {
			om_log(OM_LOG_WARNING, "revocation list skipped", "file", path, "error",
			       "not a PEM CRL", NULL);
		} else {
			struct om_cert_crl *c = crl_entry_new(s, crl);
			if (!c || push_crl(s, c) != 0) {
				crl_entry_free(c);
				err = ENOMEM;
			}
		}
		X509_CRL_free(crl);
		BIO_free(b);
		om_free(data);
	}
	closedir(d);
	ERR_clear_error();
	return err;
}

size_t om_cert_store_crl_count(const struct om_cert_store *s)
{
	return s->ncrls;
}

const struct om_cert_crl *om_cert_store_crl_at(const struct om_cert_store *s, size_t i)
{
	return i < s->ncrls ? s->crls[i] : NULL;
}

int om_cert_crl_check(const struct om_cert_store *s, X509_CRL *crl, int64_t now_ms,
                      STACK_OF(X509) * also_trusted)
{
	bool known;
	if (!crl_signer(s, crl, &known)) {
		bool signed_by_new = false;
		for (int i = 0; also_trusted && i < sk_X509_num(also_trusted); i++) {
			X509 *t = sk_X509_value(also_trusted, i);
			if (X509_NAME_cmp(X509_get_subject_name(t), X509_CRL_get_issuer(crl)))
				continue;
			known = true;
			EVP_PKEY *pk = X509_get0_pubkey(t);
			signed_by_new = signed_by_new || (pk && X509_CRL_verify(crl, pk) == 1);
		}
		ERR_clear_error();
		if (!signed_by_new)
			return known ? EBADMSG : ENOENT;
	}
	if (X509_CRL_get_ext_by_NID(crl, NID_delta_crl, -1) >= 0)
		return ENOTSUP; /* verification uses complete CRLs only */
	const ASN1_TIME *nu = X509_CRL_get0_nextUpdate(crl);
	if (nu && om_cert_asn1_ms(nu) < now_ms)
		return ESTALE;
	const ASN1_TIME *lu = X509_CRL_get0_lastUpdate(crl);
	if (lu && om_cert_asn1_ms(lu) > now_ms + 3600 * 1000)
		return EAGAIN; /* issued in the future: a clock is wrong */
	if (om_cert_store_crl_newer(s, crl))
		return EALREADY; /* a rollback: it would hide later revocations */
	return 0;
}

/* Whether stored CRL o and the CRL issued at this_ms (thisUpdate) by the
 * certificate signer_sha256 are of one CA and o was issued later. */
/* Whether two CRLs of one CA cover the same certificates: the same
 * issuingDistributionPoint, or none (RFC 5280 §5.2.5: a CA that partitions
 * its CRLs publishes one per distribution point, all in force), and
 * neither is a delta CRL (§5.2.4). */
static bool crl_same_scope(X509_CRL *a, X509_CRL *b)
{
	if (X509_CRL_get_ext_by_NID(a, NID_delta_crl, -1) >= 0 ||
	    X509_CRL_get_ext_by_NID(b, NID_delta_crl, -1) >= 0)
		return false;
	int ia = X509_CRL_get_ext_by_NID(a, NID_issuing_distribution_point, -1);
	int ib = X509_CRL_get_ext_by_NID(b, NID_issuing_distribution_point, -1);
	if (ia < 0 || ib < 0)
		return ia < 0 && ib < 0;
	return !ASN1_OCTET_STRING_cmp(X509_EXTENSION_get_data(X509_CRL_get_ext(a, ia)),
	                              X509_EXTENSION_get_data(X509_CRL_get_ext(b, ib)));
}

/* Whether stored CRL o replaces crl, issued at this_ms (thisUpdate) by the
 * certificate signer_sha256: one CA, one scope, o issued later. */
static bool crl_is_later(const struct om_cert_crl *o, X509_CRL *crl, const char *signer_sha256,
                         int64_t this_ms)
{
	return o->signed_by_trusted && !strcmp(o->signer_sha256, signer_sha256) &&
	       o->this_update_ms > this_ms && crl_same_scope(o->crl, crl);
}

const struct om_cert_crl *om_cert_store_crl_newer(const struct om_cert_store *s, X509_CRL *crl)
{
	bool known;
	const struct om_cert *signer = crl_signer(s, crl, &known);
	if (!signer)
		return NULL;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen;
	char sha256[65];
	if (!X509_CRL_digest(crl, EVP_sha256(), md, &mdlen)) {
		ERR_clear_error();
		return NULL;
	}
	om_cert_hex(md, mdlen, false, sha256);
	int64_t this_ms = om_cert_asn1_ms(X509_CRL_get0_lastUpdate(crl));
	for (size_t i = 0; i < s->ncrls; i++) {
		const struct om_cert_crl *o = s->crls[i];
		/* issued at the same time or later (>= this_ms) */
		if (strcmp(o->sha256, sha256) != 0 &&
		    crl_is_later(o, crl, signer->sha256, this_ms - 1))
			return o;
	}
	return NULL;
}

const struct om_cert_crl *om_cert_store_crl_superseded(const struct om_cert_store *s,
                                                       const struct om_cert_crl *c)
{
	for (size_t i = 0; c->signed_by_trusted && i < s->ncrls; i++)
		if (s->crls[i] != c &&
		    crl_is_later(s->crls[i], c->crl, c->signer_sha256, c->this_update_ms))
			return s->crls[i];
	return NULL;
}

int om_cert_store_add_crl(struct om_cert_store *s, X509_CRL *crl, int64_t now_ms,
                          const struct om_cert_crl **out)
{
	char path[PATH_MAX], name[80];
	char *pem = NULL;
	size_t len;
	int err = om_cert_crl_check(s, crl, now_ms, NULL);
	if (err)
		return err;
	struct om_cert_crl *c = crl_entry_new(s, crl);
	if (!c)
		return ENOMEM;
	BIO *b = BIO_new(BIO_s_mem());
	if (!b) {
		crl_entry_free(c);
		return ENOMEM;
	}
	err = PEM_write_bio_X509_CRL(b, crl) ? om_cert_bio_take(b, &pem, &len) : EIO;
	BIO_free(b);
	if (!err)
		err = ensure_dir(s->dir, "crl");
	snprintf(name, sizeof(name), "%s.pem", c->sha256);
	if (!err)
		err = om_cert_path(s->dir, "crl", name, path, sizeof(path));
	if (!err)
		err = om_file_write_atomic(path, pem, len, 0600);
	om_free(pem);
	size_t old = (size_t)-1;
	for (size_t i = 0; !err && i < s->ncrls; i++)
		if (!strcmp(s->crls[i]->sha256, c->sha256))
			old = i;
	if (!err && old != (size_t)-1) {
		crl_entry_free(s->crls[old]);
		s->crls[old] = c;
	} else if (!err) {
		err = push_crl(s, c);
	}
	if (err) {
		crl_entry_free(c);
		return err;
	}
	*out = c;
	return 0;
}

int om_cert_store_remove_crl(struct om_cert_store *s, const struct om_cert_crl *c)
{
	char path[PATH_MAX], name[80];
	size_t i;
	for (i = 0; i < s->ncrls; i++)
		if (s->crls[i] == c)
			break;
	if (i == s->ncrls)
		return ENOENT;
	snprintf(name, sizeof(name), "%s.pem", c->sha256);
	int err = om_cert_path(s->dir, "crl", name, path, sizeof(path));
	if (err)
		return err;
	if (unlink(path) != 0 && errno != ENOENT)
		return errno;
	if (om_cert_path(s->dir, "crl", NULL, path, sizeof(path)) == 0)
		(void)om_fsync_dir(path);
	crl_entry_free(s->crls[i]);
	s->crls[i] = s->crls[--s->ncrls];
	return 0;
}

int om_cert_store_find_crl(const struct om_cert_store *s, const char *id,
                           const struct om_cert_crl **out)
{
	char norm[65];
	int err = norm_id(id, norm);
	if (err)
		return err;
	size_t n = strlen(norm);
	const struct om_cert_crl *found = NULL;
	for (size_t i = 0; i < s->ncrls; i++) {
		const struct om_cert_crl *c = s->crls[i];
		bool hit = n == 64 ? strcasecmp(c->sha256, norm) == 0
		                   : n <= 40 && strncmp(c->sha1, norm, n) == 0;
		if (!hit)
			continue;
		if (found)
			return EEXIST;
		found = c;
	}
	if (!found)
		return ENOENT;
	*out = found;
	return 0;
}

int om_cert_store_x509(const struct om_cert_store *s, X509_STORE **out)
{
	X509_STORE *st = X509_STORE_new();
	int err = 0;
	if (!st)
		return ENOMEM;
	for (size_t i = 0; i < s->n[OM_CERT_TRUSTED]; i++) {
		if (!X509_STORE_add_cert(st, s->v[OM_CERT_TRUSTED][i]->x509)) {
			err = ENOMEM;
			goto out;
		}
	}
	/* Only CRLs a trusted certificate signed: one whose CA was removed
	 * (or that was put here by hand) is not believed. Stale ones stay:
	 * the TLS module then refuses that CA's certificates as "CRL is
	 * stale" (docs/modules/tls.md). */
	for (size_t i = 0; i < s->ncrls; i++) {
		if (!s->crls[i]->signed_by_trusted)
			continue;
		if (!X509_STORE_add_crl(st, s->crls[i]->crl)) {
			err = ENOMEM;
			goto out;
		}
	}
out:
	ERR_clear_error();
	if (err) {
		X509_STORE_free(st);
		return err;
	}
	*out = st;
	return 0;
}
