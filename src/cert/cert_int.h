/* cert_int.h — helpers shared inside the cert module only. */
#ifndef OM_CERT_INT_H
#define OM_CERT_INT_H

#include "cert/cert.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

/* OSSL_STACK_OF_X509_free is OpenSSL 3.2; Debian 12 has 3.0. */
static inline void om_cert_chain_free(STACK_OF(X509) * sk)
{
	sk_X509_pop_free(sk, X509_free);
}

/* Lowercase (upper=false) or uppercase hex of n bytes into out (2n+1). */
void om_cert_hex(const unsigned char *p, size_t n, bool upper, char *out);
/* Fills a heap struct om_cert from x (copied), chain (copied) and key
 * (reference taken). NULL on no memory. */
struct om_cert *om_cert_entry_new(X509 *x, STACK_OF(X509) * chain, EVP_PKEY *key,
                                  enum om_cert_where w);
void om_cert_entry_free(struct om_cert *c);
/* "EC P-256", "RSA 2048", ... of a key ("unknown" for NULL). */
void om_cert_key_type(EVP_PKEY *pk, char *out, size_t len);
/* Contents of a memory BIO as an om_malloc'd buffer. */
int om_cert_bio_take(BIO *b, char **data, size_t *len);
/* "DATA/certs/<sub>" */
int om_cert_path(const char *data_dir, const char *sub, const char *name, char *buf, size_t len);
/* SHA-256 of the DER SubjectPublicKeyInfo (names pending CSR keys). */
int om_cert_spki_sha256(EVP_PKEY *key, char out[65]);
/* PEM of a private key (PKCS#8, unencrypted). */
int om_cert_key_pem(EVP_PKEY *key, char **data, size_t *len);
/* Pending CSR key whose public key is x's, or NULL. */
EVP_PKEY *om_cert_request_key_find(const char *data_dir, X509 *x, char spki[65]);
void om_cert_request_key_drop(const char *data_dir, const char spki[65]);

#endif
