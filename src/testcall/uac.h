/* uac.h — the gateway side: a small SIP user agent client over TCP or
 * mutual TLS (RFC 3261 §8.1, §12, §13, §15; RFC 3264 offers and answers;
 * RFC 4568 a=crypto), built on openum's own sip/, sdp/ and tls/ modules and
 * never on app/. Tests, the load generator and `openum test-connectivity`
 * use it; `om-testcall` is its command line.
 *
 * One struct om_uac is one connection to the server (and, optionally, one
 * listener the server may connect back to when that connection is gone)
 * with its own transaction stack; it carries any number of calls. It runs
 * on a poll(2) loop of its own (om_uac_run): no threads, no libuv.
 *
 * A call: INVITE with an offer (RTP/AVP, RTP/SAVP with one a=crypto per
 * suite, or a body the caller gives) or without (a delayed offer: the 2xx
 * carries the server's offer, the ACK our answer), ACK, BYE, CANCEL,
 * re-INVITE (hold: sendonly, resume: sendrecv), INFO with DTMF. Requests
 * from the server inside a call (BYE, re-INVITE, UPDATE, INFO, OPTIONS)
 * are answered 200. Every message sent and received can be reported to a
 * trace callback. */
#ifndef OM_TESTCALL_UAC_H
#define OM_TESTCALL_UAC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "sdp/sdp.h"
#include "sip/sip.h"
#include "tls/tls.h"

struct om_uac;
struct om_uac_call;

/* How the connection to the server went, step by step (filled by
 * om_uac_new when om_uac_cfg.report is set; `openum test-connectivity`
 * reports each step). Times in ms, from the start of the step. */
enum om_uac_stage {
	OM_UAC_STAGE_NONE = 0, /* nothing failed */
	OM_UAC_STAGE_SETUP,    /* before connecting: certificates, memory */
	OM_UAC_STAGE_CONNECT,  /* the TCP connection */
	OM_UAC_STAGE_TLS,      /* the handshake (our verification of the server, or its alert) */
	OM_UAC_STAGE_NAME,     /* the server's certificate does not carry tls_name */
};

struct om_uac_conn_report {
	enum om_uac_stage failed;
	int err;                    /* errno of the failure (ECONNREFUSED, ETIMEDOUT, ...) */
	int64_t connect_ms, tls_ms; /* how long each took (the failed one included) */
	enum om_tls_reject tls_reason;
	char tls_detail[256]; /* "certificate has expired", "tlsv1 alert unknown ca" */
	char version[16];     /* "TLSv1.3" */
	char cipher[64];
	/* The server's certificate (when it sent one, also after a failure). */
	bool have_cert;
	char subject[256], issuer[256], sans[256];
	char sha1[41]; /* uppercase hex, no colons (the thumbprint) */
	int64_t not_before_ms, not_after_ms;
};

struct om_uac_cfg {
	const char *server;   /* numeric address of the server */
	uint16_t port;        /* its SIP port */
	bool tls;             /* mutual TLS (needs cert, key, ca) */
	const char *cert;     /* PEM: our certificate (+ chain) */
	const char *key;      /* PEM: its key */
	const char *ca;       /* PEM: trusted roots for the server's certificate */
	const char *tls_name; /* the name the server's certificate must carry */
	const char *bind;     /* our source address ("127.0.0.2"), NULL: any */
	const char *domain;   /* our host in From/Contact/Via (default: bind or "127.0.0.1") */
	uint16_t listen_port; /* also accept the server's connections here (0: no) */
	uint32_t t1_ms;       /* 0: 500 */
	/* Every message sent (out true) or received, whole. */
	void (*trace_h)(bool out, const char *msg, size_t len, void *arg);
	void *arg;
	/* Instead of the PEM files above (borrowed, used when set): our
	 * certificate, its chain (may be NULL) and key, and the trusted store
	 * for the server's certificate. */
	X509 *cert_x509;
	STACK_OF(X509) * chain_x509;
	EVP_PKEY *key_pkey;
	X509_STORE *ca_store;
	struct om_uac_conn_report *report; /* filled by om_uac_new when set */
};

/* Connects (and for TLS completes the handshake, checking the server's
 * chain and name) within timeout_ms. 0 or errno with err filled. */
int om_uac_new(const struct om_uac_cfg *cfg, int timeout_ms, struct om_uac **out, char *err,
               size_t errlen);
void om_uac_free(struct om_uac *u);
/* Waits up to timeout_ms for I/O and timers, handling what comes. 0, or
 * ECONNRESET when the connection to the server closed (calls stay). */
int om_uac_run(struct om_uac *u, int timeout_ms);
bool om_uac_connected(const struct om_uac *u);
/* For an event loop of the caller's (the load generator): the descriptor
 * of the connection to the server (-1 when closed) and the time until the
 * next timer is due (ms, -1: none); om_uac_run(u, 0) then handles what is
 * ready without waiting. */
int om_uac_fd(const struct om_uac *u);
/* True while the connection to the server holds bytes the socket did not
 * take (a send never waits; om_uac_run sends them when the descriptor is
 * writable): the caller's loop then also waits for it to be writable. */
bool om_uac_want_write(const struct om_uac *u);
/* Drops the connection to the server at once (no TLS close_notify, as a
 * failing network would) and opens a new one (and for TLS a new
 * handshake) within timeout_ms. Calls stay: their requests go over the new
 * connection. 0, or an errno with err filled (the agent is then without a
 * connection: om_uac_connected() false). */
int om_uac_reconnect(struct om_uac *u, int timeout_ms, char *err, size_t errlen);
int64_t om_uac_next_timer(const struct om_uac *u);
/* Our address on the connection to the server (numeric), for the media
 * address of an offer. 0 or errno. */
int om_uac_local_addr(const struct om_uac *u, char *buf, size_t len);
/* Sends raw bytes on the connection (tests of malformed or foreign
 * requests). */
int om_uac_send_raw(struct om_uac *u, const char *buf, size_t len);
/* After the connection to the server closed: when TLS failed after the
 * handshake (the server refused our certificate with an alert, which TLS
 * 1.3 delivers only then), the reason with its detail; else
 * OM_TLS_R_NONE. */
enum om_tls_reject om_uac_tls_failure(const struct om_uac *u, char *detail, size_t len);

/* An OPTIONS request outside any dialog (RFC 3261 §11) to `ruri`. Its
 * final status (408 when the transaction timed out) and reason phrase
 * come through om_uac_options_status. 0 or errno. */
int om_uac_options(struct om_uac *u, const char *ruri);
/* 0 while no final response came; else the status, the reason phrase in
 * reason (may be NULL). */
int om_uac_options_status(const struct om_uac *u, char *reason, size_t len);

enum om_uac_offer { OM_UAC_OFFER_AVP, OM_UAC_OFFER_SAVP, OM_UAC_OFFER_NONE, OM_UAC_OFFER_BODY };

struct om_uac_call_opts {
	const char *ruri;         /* Request-URI, e.g. "sip:8000@um.example.com" */
	const char *from_user;    /* our user in From ("2001") */
	const char *to;           /* To URI (default: the Request-URI) */
	const char *extra;        /* extra header lines, each ending CRLF */
	enum om_uac_offer offer;  /* default AVP */
	const char *body;         /* OFFER_BODY: the SDP to send as is */
	const char *content_type; /* OFFER_BODY: default application/sdp */
	const char *media_addr;   /* our RTP address (default: bind or 127.0.0.1) */
	uint16_t media_port;      /* our RTP port (0: 40000) */
	bool no_ack;              /* never ACK a 2xx (a broken gateway) */
	const char *ack_body;     /* delayed offer: send this answer instead of ours */
	uint32_t session_expires; /* ask for session timers (s), 0: no */
	/* OFFER_SAVP: offer this crypto suite only (0: every suite). */
	enum om_sdp_crypto_suite suite;
};

enum om_uac_state {
	OM_UAC_CALLING,   /* INVITE sent */
	OM_UAC_RINGING,   /* a provisional came */
	OM_UAC_CONFIRMED, /* 2xx received and ACKed */
	OM_UAC_REFUSED,   /* a final non-2xx (status says which) */
	OM_UAC_ENDED,     /* BYE sent and answered, or received */
	OM_UAC_FAILED,    /* timeout or transport error */
};

struct om_uac_call_info {
	enum om_uac_state state;
	int status;              /* last final status of the INVITE */
	int provisional;         /* highest provisional seen */
	bool remote_bye;         /* the server hung up */
	int bye_status;          /* the answer to our BYE */
	int reinvite_status;     /* the answer to our last re-INVITE */
	unsigned reinvites_done; /* our re-INVITEs answered */
	int info_status;         /* the answer to our last INFO */
	unsigned reinvites_in;   /* re-INVITEs/UPDATEs the server sent */
	unsigned twoxx_received; /* 2xx to INVITE, retransmissions included */
	const char *call_id, *local_tag, *remote_tag;
	const char *answer_sdp;          /* the server's SDP (answer, or its offer) */
	const char *response;            /* the final response, whole */
	const struct om_sdp_result *sdp; /* agreed media (keys!) or NULL */
	const char *info_digits_in;      /* DTMF of the INFO requests the server sent */
};

/* Sends the INVITE. The call belongs to u (freed with it). 0 or errno. */
int om_uac_call(struct om_uac *u, const struct om_uac_call_opts *o, struct om_uac_call **out);
void om_uac_call_info(const struct om_uac_call *c, struct om_uac_call_info *info);
/* Forgets a call (its transactions, dialog and memory), so one agent can
 * carry any number of calls in turn; c must not be used after. Meant for
 * calls that are over (REFUSED, ENDED, FAILED): a live one is dropped
 * without a word to the server. */
void om_uac_call_free(struct om_uac_call *c);
/* BYE (confirmed) — 0, EINVAL when not confirmed. */
int om_uac_call_bye(struct om_uac_call *c);
/* CANCEL (before the final response). */
int om_uac_call_cancel(struct om_uac_call *c);
/* re-INVITE with our offer again and the given direction ("sendonly" to
 * hold, "sendrecv" to resume). */
int om_uac_call_reinvite(struct om_uac_call *c, enum om_sdp_dir dir);
/* INFO with application/dtmf-relay. */
int om_uac_call_info_dtmf(struct om_uac_call *c, char digit, unsigned duration_ms);

#endif
