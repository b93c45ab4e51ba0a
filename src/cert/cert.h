/* cert.h — openum's certificate stores, selection policy, pinning,
 * generation, CSRs, import/export and expiry watch (R6, R7, R8, R9).
 *
 * Stores live in the data directory (docs/modules/cert.md):
 *   certs/personal/<sha256>.pem   certificate + chain; <sha256>.key (0600)
 *   certs/trusted/<sha256>.pem    trusted roots and intermediates
 *   certs/crl/<sha256>.pem        revocation lists
 *   certs/requests/<spki>.key     keys of CSRs waiting for their certificate
 * Every write goes through om_file_write_atomic; folders 0700, files 0600.
 *
 * Selection (R7, the seed's "How Unified Messaging Determines Security Mode
 * and Selects Certificates"): among valid personal certificates, CA-issued
 * ones with the latest not-after first, then self-signed ones with the
 * latest not-after. Valid means: within not-before..not-after, has its
 * private key, and serverAuth in the EKU when an EKU is present. A pin (the
 * directory's `servers.pinned_certificate`, `openum server set
 * --certificate`, passed in by the caller)
 * overrides the order. */
#ifndef OM_CERT_CERT_H
#define OM_CERT_CERT_H

#include <stdbool.h>

#include "core/events.h"
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

/* Event raised when the pinned certificate is missing, keyless, expired,
 * not yet valid or lacks serverAuth (error level). Not in the DESIGN table
 * yet: 1125 is the free neighbour of 1123/1124. */
#define OM_CERT_EV_PIN_INVALID OM_EV_CERT_PIN_INVALID

/* Largest certificate, key or CRL file read, by import and by the store
 * loader alike (what one accepts the other loads): 16 MiB. */
#define OM_CERT_FILE_MAX (16u << 20)

/* Days before not-after from which 1120/1124 are raised. */
#define OM_CERT_WARN_DAYS    30
/* Default validity of generated self-signed certificates (two years). */
#define OM_CERT_DEFAULT_DAYS 730

enum om_cert_where { OM_CERT_PERSONAL = 0, OM_CERT_TRUSTED = 1 };

enum om_cert_keytype { OM_CERT_KEY_EC = 0, OM_CERT_KEY_RSA2048, OM_CERT_KEY_RSA3072 };

/* One certificate of a store, with what `openum cert list` shows. Owned by
 * its store. */
struct om_cert {
	X509 *x509;
	STACK_OF(X509) * chain; /* the rest of the file (intermediates), may be NULL */
	EVP_PKEY *key;          /* NULL: keyless (or the key did not match) */
	enum om_cert_where where;
	char sha1[41];    /* uppercase hex, no colons: the thumbprint */
	char sha256[65];  /* lowercase hex: the file name */
	char serial[130]; /* uppercase hex */
	char *subject;    /* RFC 2253 one line */
	char *issuer;
	char *sans;        /* "DNS:a, IP:b" or "" */
	char key_type[80]; /* "EC P-256", "RSA 2048" */
	int64_t not_before_ms, not_after_ms;
	bool self_signed; /* issuer == subject and its own key verifies it */
	bool eku_present, eku_server, eku_client;
	bool is_ca;            /* basicConstraints CA:TRUE, or keyUsage keyCertSign */
	char key_problem[512]; /* why its key file was not used ("" none) */
};

struct om_cert_store;

/* An ASN.1 time as Unix ms (0 when NULL or unreadable). */
int64_t om_cert_asn1_ms(const ASN1_TIME *t);

/* Loads the personal and trusted stores of DATA_DIR (missing folders are
 * empty stores). Files that cannot be read are skipped with a log line. */
int om_cert_store_open(const char *data_dir, struct om_cert_store **out);
void om_cert_store_free(struct om_cert_store *s);
const char *om_cert_store_dir(const struct om_cert_store *s);
size_t om_cert_store_count(const struct om_cert_store *s, enum om_cert_where w);
const struct om_cert *om_cert_store_at(const struct om_cert_store *s, enum om_cert_where w,
                                       size_t i);
/* ID: any unique prefix of the SHA-1 thumbprint (colons allowed) or the
 * full SHA-256, case-insensitive, looked up in both stores. 0, ENOENT (no
 * match), EEXIST (ambiguous prefix) or EINVAL (not hex). */
int om_cert_store_find(const struct om_cert_store *s, const char *id, const struct om_cert **out);

/* Adds a certificate (and its chain; key only for personal). Takes no
 * ownership (copies are kept). Writes the files atomically; an existing
 * entry with the same SHA-256 is replaced (a key already stored is kept
 * when `key` is NULL). */
int om_cert_store_add(struct om_cert_store *s, enum om_cert_where w, X509 *x,
                      STACK_OF(X509) * chain, EVP_PKEY *key, const struct om_cert **out);
/* Removes the files of a certificate (by SHA-256). The pointer becomes
 * invalid. */
int om_cert_store_remove(struct om_cert_store *s, const struct om_cert *c);
/* A revocation list of certs/crl/ (RFC 5280 §5). Owned by its store. */
struct om_cert_crl {
	X509_CRL *crl;
	char sha1[41];                          /* of the DER, uppercase: the ID shown and typed */
	char sha256[65];                        /* of the DER, lowercase: the file name */
	char *issuer;                           /* RFC 2253 one line */
	int64_t this_update_ms, next_update_ms; /* next 0: none given */
	size_t nrevoked;
	bool signed_by_trusted; /* a trusted certificate of its issuer name signed it */
	char signer_sha256[65]; /* that certificate */
};
size_t om_cert_store_crl_count(const struct om_cert_store *s);
const struct om_cert_crl *om_cert_store_crl_at(const struct om_cert_store *s, size_t i);
/* Whether a CRL may be believed (R5, "checked before believed"): signed by
 * a trusted certificate (or one of also_trusted, about to be trusted; may
 * be NULL) whose subject is the CRL's issuer. 0, ENOENT (no such
 * certificate has its issuer name: import the CA first), EBADMSG (one has,
 * and its key does not verify the CRL: forged or foreign), ESTALE (its
 * nextUpdate is past), EAGAIN (its thisUpdate is more than an hour in the
 * future), ENOTSUP (a delta CRL: verification uses complete CRLs only),
 * EALREADY (a CRL of the same CA and scope issued at the same time or later
 * is stored: om_cert_store_crl_newer; an older list would only hide the
 * revocations made since). */
int om_cert_crl_check(const struct om_cert_store *s, X509_CRL *crl, int64_t now_ms,
                      STACK_OF(X509) * also_trusted);
/* A stored CRL of the CA (the same trusted signing certificate) that
 * issued crl, of the same scope (issuingDistributionPoint), with a
 * thisUpdate at or after crl's (another file), or NULL. */
const struct om_cert_crl *om_cert_store_crl_newer(const struct om_cert_store *s, X509_CRL *crl);
/* The stored CRL of the same CA and scope issued after c (c is
 * superseded: RFC 5280 §5 — a CA's newest complete CRL is the one in
 * force), or NULL. */
const struct om_cert_crl *om_cert_store_crl_superseded(const struct om_cert_store *s,
                                                       const struct om_cert_crl *c);
/* Checks (om_cert_crl_check: its errors) and stores a CRL in certs/crl/
 * (<sha256>.pem, atomic, 0600). *out valid until the store changes. */
int om_cert_store_add_crl(struct om_cert_store *s, X509_CRL *crl, int64_t now_ms,
                          const struct om_cert_crl **out);
/* Removes a CRL's file; the pointer becomes invalid. 0 or errno. */
int om_cert_store_remove_crl(struct om_cert_store *s, const struct om_cert_crl *c);
/* ID rules of om_cert_store_find, over the CRLs (SHA-1 prefix of the DER
 * or full SHA-256). */
int om_cert_store_find_crl(const struct om_cert_store *s, const char *id,
                           const struct om_cert_crl **out);
/* X509_STORE with every trusted certificate and every CRL a trusted
 * certificate signed (stale ones included; others ignored); caller frees.
 * How CRLs are checked is the TLS module's policy (om_tls_chain_verify). */
int om_cert_store_x509(const struct om_cert_store *s, X509_STORE **out);

/* Only among the personal certificates; same ID rules and errors. */
int om_cert_store_find_personal(const struct om_cert_store *s, const char *id,
                                const struct om_cert **out);

/* ---- facts about one certificate ---- */

/* Why a certificate is or is not a candidate (R7 and issue 18: "valid"
 * means a gateway could accept it). */
enum om_cert_verdict {
	OM_CERT_CHOSEN = 0,
	OM_CERT_RANKED_LOWER, /* valid, but the chosen one ranks first */
	OM_CERT_NOT_PINNED,   /* valid, but another one is pinned */
	OM_CERT_EXPIRED,
	OM_CERT_NOT_YET_VALID,
	OM_CERT_NO_KEY,
	OM_CERT_NO_SERVERAUTH,
	OM_CERT_TOO_WEAK,         /* key or signature below tls_security_level */
	OM_CERT_KEY_UNSAFE,       /* its key file can be read by others: not used */
	OM_CERT_IS_CA,            /* a CA certificate is never a server's */
	OM_CERT_UNTRUSTED_ISSUER, /* the chain does not reach the trusted store */
	OM_CERT_CHAIN_INVALID,    /* a chain certificate expired, not yet valid, ... */
	OM_CERT_REVOKED,          /* it or a chain certificate is in a CRL */
	OM_CERT_WRONG_NAME,       /* the SAN lacks the server's FQDN: last resort only */
	OM_CERT_KEY_USAGE,        /* its keyUsage lacks digitalSignature (TLS signs with it) */
	OM_CERT_CHAIN_PURPOSE,    /* a CA of its chain has an EKU without serverAuth */
};
const char *om_cert_verdict_str(enum om_cert_verdict v);
/* The facts of the certificate alone (no store): OM_CERT_CHOSEN when it
 * could be used at now_ms, else the first reason (CA, key, time, EKU,
 * keyUsage: when present it must hold digitalSignature — every suite
 * openum offers (ECDHE, TLS 1.3) and client authentication sign with the
 * key; keyEncipherment alone serves only RSA key transport, never
 * offered). */
enum om_cert_verdict om_cert_check(const struct om_cert *c, int64_t now_ms);
/* Ranking order among usable certificates: <0 when a comes before b.
 * CA-issued before self-signed; then serverAuth+clientAuth before
 * serverAuth only (gateways that check our outgoing connections need
 * both); then the latest not-after; then the newer not-before; then the
 * SHA-256 (stable). */
int om_cert_rank_cmp(const struct om_cert *a, const struct om_cert *b);

/* ---- selection ---- */

struct om_cert_cand {
	const struct om_cert *cert;
	enum om_cert_verdict verdict;
	char detail[512];       /* what exactly: the chain certificate, the missing issuer, ... */
	STACK_OF(X509) * chain; /* to send after the certificate: issuer order, no root;
	                           owned by the selection; NULL when none */
	bool completed;         /* part of that chain came from the trusted store */
	bool wrong_name;        /* the SAN lacks the server's FQDN */
};

struct om_cert_selection {
	const struct om_cert *chosen;     /* NULL: nothing usable */
	const struct om_cert_cand *cand;  /* the chosen one's entry in cands */
	bool wrong_name;                  /* chosen as the last resort: lacks the FQDN */
	bool pinned;                      /* a pin is set */
	char pin[100];                    /* as given */
	bool pin_found;                   /* the pin names exactly one personal certificate */
	bool pin_ambiguous;               /* the pin's prefix names several */
	enum om_cert_verdict pin_verdict; /* its validity (OM_CERT_CHOSEN: valid) */
	char fqdn[254];                   /* the server's FQDN checked ("" none) */
	struct om_cert_cand *cands;       /* every personal certificate, best first */
	size_t ncands;
};

struct om_cert_select_opts {
	const char *pin;    /* NULL/"": automatic order; else an ID (om_cert_store_find) */
	const char *fqdn;   /* the server's FQDN; NULL/"": not checked */
	int security_level; /* openum.conf tls_security_level, 0-5 */
};

/* Pure: no event, no file written. Valid = om_cert_check passes; a
 * CA-issued certificate's chain (its own, completed from the trusted
 * store) builds to a trusted root with every certificate within its
 * validity at now_ms and none revoked by a believed CRL (the TLS module's
 * revocation policy); an OpenSSL TLS context at security_level accepts
 * its key, chain and signature (0 checks nothing). Valid ones are ranked
 * (om_cert_rank_cmp); one lacking the FQDN in its SAN is chosen only when
 * no valid one carries it (wrong_name). A pin overrides the order: the
 * pinned certificate, when it is in the personal store with its key and
 * not a CA, is chosen even when invalid (pin_verdict says why); a pin
 * naming nothing chooses nothing; an ambiguous pin (a prefix, kept by an
 * older version) falls back to the automatic order, with pin_ambiguous.
 * 0 or ENOMEM. */
int om_cert_select(const struct om_cert_store *s, const struct om_cert_select_opts *o,
                   int64_t now_ms, struct om_cert_selection *out);
void om_cert_selection_free(struct om_cert_selection *sel);
/* The selection's entry of c, or NULL. */
const struct om_cert_cand *om_cert_selection_find(const struct om_cert_selection *sel,
                                                  const struct om_cert *c);
/* Why `lost` ranks after `chosen` (both usable), in words that are true:
 * "self-signed, the chosen one is CA-issued", "lacks clientAuth, the
 * chosen one has both", "expires earlier (DATE)", "same expiry, issued
 * earlier", "identical dates: ordered by SHA-256". */
void om_cert_rank_why(const struct om_cert *lost, const struct om_cert *chosen, char *buf,
                      size_t len);

/* ---- generation, CSR, import, export ---- */

int om_cert_key_new(enum om_cert_keytype t, EVP_PKEY **out);
int om_cert_keytype_parse(const char *s, enum om_cert_keytype *out);
/* Self-signed: CN and SAN DNS = fqdn, EKU serverAuth + clientAuth,
 * CA:FALSE, SHA-256, random 128-bit serial, not-before one hour before now. */
int om_cert_selfsigned_new(EVP_PKEY *key, const char *fqdn, int days, int64_t now_ms, X509 **out);
/* Generates and stores a self-signed certificate in the personal store. */
int om_cert_store_new_selfsigned(struct om_cert_store *s, const char *fqdn, enum om_cert_keytype t,
                                 int days, int64_t now_ms, const struct om_cert **out);
/* New key kept in certs/requests/ and a PEM CSR for fqdn (CN, SAN, EKU
 * serverAuth + clientAuth). *pem is om_free'd by the caller; id (65 bytes,
 * may be NULL) gets the request's id, for om_cert_request_remove when the
 * CSR cannot be handed over. 0, EINVAL (not a host name), ENOMEM or the
 * errno of a write (nothing is left behind then). */
int om_cert_request_new(struct om_cert_store *s, const char *fqdn, enum om_cert_keytype t,
                        char **pem, size_t *len, char *id);

/* A request made by `openum cert request` whose certificate has not been
 * imported yet: certs/requests/<id>.key and .csr. */
struct om_cert_request {
	char id[65];        /* SHA-256 of its public key, lowercase hex (the file name) */
	char subject[256];  /* of the CSR, RFC 2253 ("" when the .csr is unreadable) */
	int64_t created_ms; /* the key file's modification time */
};
/* Every pending request, oldest first; *out om_free'd by the caller
 * (NULL when none). 0 or errno. */
int om_cert_requests_list(const char *data_dir, struct om_cert_request **out, size_t *n);
/* A unique prefix (at least 8 hex digits) of a request's id: its index.
 * ENOENT, EEXIST (ambiguous) or EINVAL. */
int om_cert_request_find(const struct om_cert_request *v, size_t n, const char *id, size_t *idx);
/* Deletes a pending request's key and CSR. 0 or errno. */
int om_cert_request_remove(const char *data_dir, const char *id);

/* What a file holds, parsed (PEM with any number of certificates, keys and
 * CRLs; DER certificate or CRL; PKCS#12 with the password, old RC2/3DES
 * files through the legacy provider). */
struct om_cert_bundle {
	STACK_OF(X509) * certs;
	STACK_OF(X509_CRL) * crls;
	EVP_PKEY *key;      /* first private key, NULL if none */
	bool had_key;       /* the file held a private key (even one not decrypted) */
	bool key_encrypted; /* that key is encrypted (PKCS#8 or PEM Proc-Type) */
	bool pkcs12;
	bool legacy; /* needed the legacy provider */
};
/* PEM (certificates, CRLs, keys and PKCS#7 blocks), DER (certificate, CRL,
 * PKCS#7 SignedData: a .p7b chain) or PKCS#12. 0, EINVAL (not a
 * certificate file), EACCES (an encrypted key or PKCS#12 and a wrong or
 * missing password), EBADMSG (an unencrypted key that is corrupt), EILSEQ
 * (a certificate, CRL or PKCS#7 block of a PEM file is damaged, the key is
 * not), ENOKEY (only a private key, no certificate), ENOTSUP
 * (needs the legacy provider, which cannot be loaded), ENOMEM. Nothing to
 * free on error. */
int om_cert_bundle_parse(const void *data, size_t len, const char *password,
                         struct om_cert_bundle *out);
void om_cert_bundle_free(struct om_cert_bundle *b);
/* True when the text holds a PEM private key block of any kind. */
bool om_cert_has_pem_key(const void *data, size_t len);

/* What a personal import did beyond storing the certificate. */
struct om_cert_import_report {
	bool matched_request; /* paired with the key of a CSR made here */
	bool matched_stored;  /* re-issued for a key already in the personal store */
	bool kept_chain;      /* no chain in the file: the stored one kept */
	int nchain;           /* chain certificates stored, issuer order */
	int ndropped;         /* certificates of the file not in the leaf's chain */
	char dropped[4][200]; /* their subjects (the first four) */
};

/* Imports a bundle into the personal store. The leaf is the certificate of
 * the bundle's key, else the one matching a pending CSR key, else the one
 * whose public key is a stored personal certificate's (a certificate
 * re-issued for the same key: paired with that key), else the first
 * non-CA certificate (stored keyless). Its chain is stored in issuer order
 * (leaf, then its issuer, ...) whatever the file's order; certificates of
 * the file that do not belong to that chain are dropped (reported); a file
 * without chain keeps the chain stored before. Errors: EKEYREJECTED (the
 * key belongs to none of them), EPERM (only CA certificates and no key:
 * they belong in the trusted store), ENOTSUP (the key's certificate is a
 * CA certificate: a CA's private key does not belong on a UM server). */
int om_cert_import_personal(struct om_cert_store *s, const struct om_cert_bundle *b,
                            const struct om_cert **out, struct om_cert_import_report *rep);

enum om_cert_format { OM_CERT_FMT_PEM = 0, OM_CERT_FMT_DER, OM_CERT_FMT_PFX };
int om_cert_format_parse(const char *s, enum om_cert_format *out);
/* Serialises c. Key only when with_key (PEM: encrypted with AES-256 when a
 * password is given; PFX: password required). legacy: PFX with
 * RC2-40/3DES and a SHA-1 MAC for old gateways. *data om_free'd by caller. */
int om_cert_export(const struct om_cert *c, enum om_cert_format f, bool with_key,
                   const char *password, bool legacy, char **data, size_t *len);

/* Loads OpenSSL's legacy (and default) provider once. 0 or ENOENT. */
int om_cert_legacy_load(void);

/* ---- the server's view: certificate in use, events, expiry watch ---- */

struct om_cert_policy {
	const char *fqdn;     /* for generated certificates */
	bool auto_selfsigned; /* generate one when none is valid */
	enum om_cert_keytype key;
	int days;               /* validity of generated ones (0: default) */
	int tls_security_level; /* 0-5, see om_cert_select */
	const char *pin;        /* the directory's pinned certificate; NULL/"": auto */
};

struct om_cert_mgr;

int om_cert_mgr_new(const char *data_dir, const struct om_cert_policy *pol,
                    struct om_cert_mgr **out);
void om_cert_mgr_free(struct om_cert_mgr *m);
/* Re-reads the store, takes the pin from pol, and decides the certificate in use,
 * generating one when allowed (1122). Events: 1114 at the first apply and
 * whenever the certificate changes, 1115, 1123, 1125. Validate-then-swap:
 * on error the previous choice stays. ENOENT when nothing is usable. */
int om_cert_mgr_apply(struct om_cert_mgr *m, const struct om_cert_policy *pol, int64_t now_ms);
/* The certificate in use (NULL before a successful apply). Valid until the
 * next apply or free. */
const struct om_cert *om_cert_mgr_current(const struct om_cert_mgr *m);
/* The chain to send after it (issuer order, completed from the trusted
 * store, no root; NULL when none). Borrowed, valid until the next apply. */
STACK_OF(X509) * om_cert_mgr_chain(const struct om_cert_mgr *m);
/* Why the last apply failed, in words for the administrator ("" after a
 * success). */
const char *om_cert_mgr_error(const struct om_cert_mgr *m);
/* What the last successful apply changed in the trusted store and the
 * CRLs, for the reload report ("trusted + CN=..; CRL - ..."), "" when
 * nothing (and at the first apply). */
const char *om_cert_mgr_trust_changes(const struct om_cert_mgr *m);
const struct om_cert_store *om_cert_mgr_store(const struct om_cert_mgr *m);

/* Expiry watch (R8): call at start, on reload and hourly. 1120 when the
 * certificate in use, or a certificate of the chain it sends, is within
 * its last 30 days, 1121 after the certificate in use expired, 1124 per
 * trusted certificate within 30 days of (or past) its not-after, 1126 when
 * a CRL's nextUpdate is near (within a quarter of its period, at most 7
 * days), 1127 once it is past (its CA's gateways are refused as "CRL is
 * stale"); each at most once per UTC day per certificate or CRL. Returns
 * the number of events raised. */
int om_cert_watch_tick(struct om_cert_mgr *m, int64_t now_ms);
/* The same rule for a gateway's certificate seen in a handshake (R8
 * beyond): 1124 once per UTC day per certificate when it has 30 days or less
 * left. `peer` names the gateway (address or TLS name). 1 when raised. */
int om_cert_watch_peer(struct om_cert_mgr *m, X509 *cert, const char *peer, int64_t now_ms);

#endif
