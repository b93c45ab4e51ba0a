/* tls.h — mutual TLS for SIP on 5061 (RFC 3261 §26.2, RFC 5922 §7): the
 * server context (R5), one TLS session per connection over memory BIOs so
 * the libuv loop owns every socket, and the facts the identity check needs
 * (why a handshake failed, the names a certificate carries, its EKU).
 *
 * The module knows nothing of gateways: the SIP service maps a verified
 * certificate to exactly one gateway of the directory snapshot (R4) with
 * om_tls_cert_has_name(), after the handshake, never in a verify callback.
 *
 * Context (om_tls_ctx_new): TLS 1.2 minimum, forward-secret AEAD suites
 * only, the security level set explicitly (Debian's default file must not
 * decide), the full chain sent, the trusted store's subject names sent in
 * the CertificateRequest, intermediates accepted as anchors (partial
 * chain), CRLs honoured when the store carries them, no session tickets
 * and no session cache (no resumption: a resumed session would skip the
 * identity check against the current trust). A context is reference
 * counted: a reload builds a new one and swaps it in for new handshakes
 * while open sessions keep theirs. */
#ifndef OM_TLS_TLS_H
#define OM_TLS_TLS_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/ssl.h>
#include <openssl/x509.h>

struct om_tls_opts {
	int min_version;    /* 12 (TLS 1.2) or 13 */
	int security_level; /* OpenSSL security level, 0..5 */
};

struct om_tls_ctx;

/* Server context with certificate `cert` (+ chain, may be NULL) and its
 * key; client certificates verified against `trusted` (a reference is
 * taken). 0 or errno (EINVAL: the key does not match, the certificate is
 * refused by the security level, ...) with err filled. */
int om_tls_ctx_new(const struct om_tls_opts *o, X509 *cert, STACK_OF(X509) * chain, EVP_PKEY *key,
                   X509_STORE *trusted, struct om_tls_ctx **out, char *err, size_t errlen);
struct om_tls_ctx *om_tls_ctx_ref(struct om_tls_ctx *c);
/* `next` replaces `old` for new handshakes (a reload): from now on every
 * client chain still to be verified on a session of `old` (or of any
 * context `old` replaced) is verified against next's trusted store and
 * level, and a handshake whose chain was verified against an older trust
 * is verified again when it completes ("the trust in force when it
 * completes"). Both stay usable; references unchanged. */
void om_tls_ctx_supersede(struct om_tls_ctx *old, struct om_tls_ctx *next);
/* Drops a reference; NULL is fine. */
void om_tls_ctx_free(struct om_tls_ctx *c);
/* The trusted store (borrowed) and the options the context was made with. */
X509_STORE *om_tls_ctx_store(const struct om_tls_ctx *c);
const struct om_tls_opts *om_tls_ctx_opts(const struct om_tls_ctx *c);
/* The server certificate (borrowed). */
X509 *om_tls_ctx_cert(const struct om_tls_ctx *c);

/* Why a peer was refused (event 1130 reason field). */
enum om_tls_reject {
	OM_TLS_R_NONE = 0,
	OM_TLS_R_NO_CERT,       /* no client certificate */
	OM_TLS_R_UNKNOWN_CA,    /* does not chain to the trusted store */
	OM_TLS_R_EXPIRED,       /* a certificate of the chain has expired */
	OM_TLS_R_NOT_YET_VALID, /* ... is not valid yet */
	OM_TLS_R_REVOKED,       /* listed in a CRL */
	OM_TLS_R_NO_CRL,        /* the issuer has CRLs here, none usable (not yet valid, ...) */
	OM_TLS_R_KEY_TOO_SMALL, /* under the security level */
	OM_TLS_R_DIGEST_TOO_WEAK,
	OM_TLS_R_BAD_CERT,      /* any other chain error (detail says which) */
	OM_TLS_R_NO_GATEWAY,    /* names no configured gateway */
	OM_TLS_R_GW_DISABLED,   /* names a disabled gateway only */
	OM_TLS_R_WILDCARD,      /* only wildcard names (RFC 5922 §7.2) */
	OM_TLS_R_AMBIGUOUS,     /* names more than one gateway */
	OM_TLS_R_EKU,           /* serverAuth-only under strict_eku, or no client use */
	OM_TLS_R_PROTOCOL,      /* protocol version refused */
	OM_TLS_R_HANDSHAKE,     /* any other handshake failure */
	OM_TLS_R_TIMEOUT,       /* no complete handshake in time */
	OM_TLS_R_UNTRUSTED_NOW, /* re-check after a reload: trust removed */
	OM_TLS_R_CRL_STALE,     /* the issuer's CRL is past its nextUpdate */
};
const char *om_tls_reject_str(enum om_tls_reject r);

/* ------------------------------------------------------------- sessions */

/* One server-side TLS session over memory BIOs. The owner feeds the bytes
 * it reads (om_tls_sess_input), drives the handshake, reads plaintext, and
 * after EVERY call sends what om_tls_sess_output yields (alerts and
 * handshake records included). */
struct om_tls_sess;

enum om_tls_res {
	OM_TLS_OK = 0, /* handshake finished / data read */
	OM_TLS_AGAIN,  /* needs more input */
	OM_TLS_CLOSED, /* the peer sent close_notify */
	OM_TLS_FAIL,   /* fatal: om_tls_sess_reason says why */
};

int om_tls_sess_new(struct om_tls_ctx *ctx, struct om_tls_sess **out);
void om_tls_sess_free(struct om_tls_sess *t);
/* Received ciphertext (copied). 0 or ENOMEM. */
int om_tls_sess_input(struct om_tls_sess *t, const void *data, size_t len);
bool om_tls_sess_established(const struct om_tls_sess *t);
/* One handshake step: OK when finished, AGAIN for more input, FAIL. */
enum om_tls_res om_tls_sess_handshake(struct om_tls_sess *t);
/* Plaintext: up to cap bytes in *n. OK (n > 0), AGAIN (nothing more now),
 * CLOSED, FAIL. Call until it is not OK. */
enum om_tls_res om_tls_sess_read(struct om_tls_sess *t, char *buf, size_t cap, size_t *n);
/* Encrypts all of data. 0, EPIPE (session failed/closed) or ENOMEM. */
int om_tls_sess_write(struct om_tls_sess *t, const void *data, size_t len);
/* Queues close_notify. */
void om_tls_sess_shutdown(struct om_tls_sess *t);
/* Ciphertext to send: up to cap bytes copied out; 0 when none. */
size_t om_tls_sess_output(struct om_tls_sess *t, char *buf, size_t cap);
/* The owner gave up waiting for the handshake: the session fails with
 * OM_TLS_R_TIMEOUT. */
void om_tls_sess_timeout(struct om_tls_sess *t);
/* After FAIL: the reason and a detail ("certificate has expired",
 * "unsupported protocol"; for a chain certificate, which one: "certificate
 * revoked (chain certificate at depth 1: CN=...)"). */
enum om_tls_reject om_tls_sess_reason(const struct om_tls_sess *t, char *detail, size_t len);
/* After the handshake: the peer's certificate and the chain it sent
 * (borrowed, valid while the session lives), the protocol ("TLSv1.3") and
 * the cipher. After a failed chain verification the peer certificate is
 * the one that was verified (so a refusal can name its subject and
 * issuer); NULL when the peer sent none. */
X509 *om_tls_sess_peer_cert(const struct om_tls_sess *t);
STACK_OF(X509) * om_tls_sess_peer_chain(const struct om_tls_sess *t);
const char *om_tls_sess_version(const struct om_tls_sess *t);
const char *om_tls_sess_cipher(const struct om_tls_sess *t);

/* At most this many bytes of CA names (each DER subject and its 2-byte
 * length) in a CertificateRequest; a trusted store with more sends none. */
#define OM_TLS_CA_NAMES_MAX 32768

/* ------------------------------------------------- certificate facts */

/* True when x carries `name` (RFC 5922 §7.1, R4): one of the names
 * om_tls_cert_names extracts (below) equals the canonical form of `name`
 * (lower case, the root dot removed: "gw.example." is "gw.example", both
 * in the certificate and in `name`). The one rule of both directions: the
 * inbound path looks the same extracted names up in the directory, the
 * client side (client.c) asks this. False for a name that breaks the
 * host-name rules, and on no memory. */
bool om_tls_cert_has_name(X509 *x, const char *name);

/* True when x is a device's own certificate: self-signed (issuer = subject,
 * its own key identifier) and naming an end entity — a SAN of any kind, an
 * EKU with serverAuth or clientAuth, or, without a SAN, a subject CN that is
 * a host name of two labels or more (what `openssl req -x509 -subj
 * /CN=gw.example.com` makes). A root CA carries none of these ("Contoso
 * Root CA", "corp-DC01-CA"). Such a certificate in the trusted store (the
 * seed's self-signed route: each gateway's own certificate) is an anchor
 * for itself only: the chain verification refuses any other certificate
 * it would vouch for, even when it is a CA certificate (CA:TRUE or
 * keyCertSign), so gateway A's key cannot issue a certificate openum
 * accepts as gateway B. */
bool om_tls_cert_is_device(X509 *x);
/* The names a peer certificate carries, extracted once per handshake
 * (RFC 5922 §7.1): the host of every SAN URI "sip:" without a user part
 * ("sips:", other schemes and "sip:user@host" name no domain), every SAN
 * dNSName, and the subject CN only when the certificate has no SAN at all;
 * each in canonical form (lower case, the root dot removed), once, only
 * when it follows the host-name rules (core/fqdn.h: a name starting with
 * '.' or holding anything but letters, digits, '-' and '.' is dropped).
 * Wildcard names are never names (§7.2): they only set `wildcard`. Every
 * name counts, however many there are (the exactly-one-gateway rule needs
 * all of them; the TLS layer bounds the certificate's size): `v` is sorted,
 * without duplicates. The caller looks each up in the directory snapshot's
 * index of TLS names (om_dir_snapshot_match_tls_names). */
struct om_tls_names {
	const char **v; /* n names, sorted */
	size_t n;
	bool wildcard; /* a '*' name was present and ignored */
	char *buf;     /* storage of the names */
	size_t used;
};
/* 0, EINVAL (x NULL) or ENOMEM; free with om_tls_names_free (also after
 * an error: nothing to free then). */
int om_tls_cert_names(X509 *x, struct om_tls_names *out);
void om_tls_names_free(struct om_tls_names *n);

/* True when any DNS/URI SAN (or the CN without SANs) holds a '*'. */
bool om_tls_cert_has_wildcard(X509 *x);

enum om_tls_eku {
	OM_TLS_EKU_CLIENT = 0,  /* clientAuth present, or no EKU at all */
	OM_TLS_EKU_SERVER_ONLY, /* serverAuth without clientAuth */
	OM_TLS_EKU_NEITHER,     /* an EKU without either */
};
enum om_tls_eku om_tls_cert_eku(X509 *x);

/* Verifies leaf + chain against `store` exactly as a handshake does
 * (partial chain, security level, and the revocation policy: every
 * certificate of the chain against its issuer's CRL when that issuer has
 * one in the store — X509_V_FLAG_CRL_CHECK_ALL —, a CA without any CRL
 * here unchecked, a stale CRL refusing), for the re-check of open
 * connections after a reload. 0 when valid; otherwise EACCES with *why
 * set, or ENOMEM. */
int om_tls_chain_verify(X509_STORE *store, int security_level, X509 *leaf, STACK_OF(X509) * chain,
                        enum om_tls_reject *why);
/* Maps an X509_V_ERR_* code to a reason. */
enum om_tls_reject om_tls_reject_from_verify(long verify_err);

/* One-line subject / issuer (RFC 2253) into buf ("" when x is NULL). */
void om_tls_cert_subject(X509 *x, char *buf, size_t len);
void om_tls_cert_issuer(X509 *x, char *buf, size_t len);

/* ------------------------------------------------- client side (client.c) */

/* A client context for the connections openum opens (DESIGN "Flows", R5):
 * it presents our certificate (+ chain) as the client certificate and
 * verifies the server's chain against `trusted` (partial chains, CRLs
 * when the store has them, the security level), TLS 1.2 minimum, the same
 * AEAD suites as the server side, no session resumption. The server's
 * NAME is checked after the handshake with om_tls_client_check_name (RFC
 * 5922 §7.2: the same rules as for gateways connecting to us). Used with
 * om_tls_sess_* like a server context. 0 or errno with err filled. */
int om_tls_client_ctx_new(const struct om_tls_opts *o, X509 *cert, STACK_OF(X509) * chain,
                          EVP_PKEY *key, X509_STORE *trusted, struct om_tls_ctx **out, char *err,
                          size_t errlen);
/* A client context with the certificate, chain, key, trusted store and
 * options of a server context (openum connects out with the certificate
 * it serves with, R5). 0 or errno with err filled. */
int om_tls_client_ctx_from(const struct om_tls_ctx *server, struct om_tls_ctx **out, char *err,
                           size_t errlen);
/* A client session towards a server that must prove `name` (the
 * gateway's TLS name; sent as SNI when it is a DNS name). 0, EINVAL (a
 * server context), ENOMEM. */
int om_tls_client_sess_new(struct om_tls_ctx *ctx, const char *name, struct om_tls_sess **out);
/* After the handshake: does the server's certificate carry `name`? 0, or
 * EACCES with *why: OM_TLS_R_NO_CERT, OM_TLS_R_WILDCARD (only wildcard
 * names), OM_TLS_R_NO_GATEWAY (another name). Event 1130 is the caller's. */
int om_tls_client_check_name(const struct om_tls_sess *t, const char *name,
                             enum om_tls_reject *why);

#endif
