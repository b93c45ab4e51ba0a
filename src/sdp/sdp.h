/* sdp.h — SDP (RFC 4566) parsing and building, offer/answer for one audio
 * stream (RFC 3264), SDES key attributes (RFC 4568, suites of RFC 4568,
 * RFC 6188 and RFC 7714), and the dial-plan security-mode table of
 * REQUIREMENTS.md R3.
 *
 * Parsed values are slices (struct om_str) into the caller's body: a
 * struct om_sdp lives no longer than the buffer it was parsed from. Key
 * material is copied (decoded) into the structures and wiped by their
 * free/clear functions.
 *
 * The one function a call flow needs is om_sdp_mode_apply(): plan mode x
 * transport x offer (or none) -> our SDP, or a refusal status with a
 * machine-readable reason for event 1132. */
#ifndef OM_SDP_SDP_H
#define OM_SDP_SDP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/str.h"

/* ---- bounds ------------------------------------------------------------ */
#define OM_SDP_MAX_BODY     16384 /* bytes */
#define OM_SDP_MAX_LINES    256
#define OM_SDP_MAX_ATTRS    128 /* a= lines in the whole description */
#define OM_SDP_MAX_MEDIA    8
#define OM_SDP_MAX_FMT      32 /* formats on one m= line */
#define OM_SDP_MAX_RTPMAP   32 /* rtpmap + fmtp kept per m= line */
#define OM_SDP_MAX_CRYPTO   8  /* a=crypto per m= line */
#define OM_SDP_KEYSALT_MAX  46 /* AES-256 key (32) + salt (14) */
#define OM_SDP_MKI_MAX      4  /* MKI octets openum implements (RFC 4568 allows 128) */
/* Master-key lifetimes openum accepts, in packets. openum never re-keys
 * within a call, so a key must last the longest call: 2^20 packets is 5.8
 * hours at 20 ms (2.9 at 10 ms); RFC 3711 §9.2 caps every suite at 2^48. */
#define OM_SDP_LIFETIME_MIN (1ULL << 20)
#define OM_SDP_LIFETIME_MAX (1ULL << 48)

/* ---- SDES crypto suites ------------------------------------------------ */
enum om_sdp_crypto_suite {
	OM_SDP_SUITE_UNKNOWN = 0,
	OM_SDP_AES_CM_128_HMAC_SHA1_80, /* RFC 4568 §6.2.1: key 16, salt 14 */
	OM_SDP_AES_CM_128_HMAC_SHA1_32, /* RFC 4568 §6.2.2: key 16, salt 14 */
	OM_SDP_AES_256_CM_HMAC_SHA1_80, /* RFC 6188 §7.1: key 32, salt 14 */
	OM_SDP_AEAD_AES_128_GCM,        /* RFC 7714 §14.2: key 16, salt 12 */
	OM_SDP_AEAD_AES_256_GCM,        /* RFC 7714 §14.2: key 32, salt 12 */
};
#define OM_SDP_SUITE_COUNT 5

/* Registered name ("AES_CM_128_HMAC_SHA1_80"); "UNKNOWN" for 0. */
const char *om_sdp_suite_name(enum om_sdp_crypto_suite s);
/* Case-insensitive (ABNF strings are). OM_SDP_SUITE_UNKNOWN when not ours. */
enum om_sdp_crypto_suite om_sdp_suite_parse(struct om_str name);
size_t om_sdp_suite_key_len(enum om_sdp_crypto_suite s);
size_t om_sdp_suite_salt_len(enum om_sdp_crypto_suite s);

/* Session-parameter flags of one a=crypto line (RFC 4568 §6.3). */
#define OM_SDP_CRYPTO_UNENCRYPTED_SRTP     0x01u
#define OM_SDP_CRYPTO_UNENCRYPTED_SRTCP    0x02u
#define OM_SDP_CRYPTO_UNAUTHENTICATED_SRTP 0x04u
#define OM_SDP_CRYPTO_FEC_KEY              0x08u /* separate FEC key: not supported */
#define OM_SDP_CRYPTO_UNKNOWN_PARAM        0x10u /* a parameter we do not know */
#define OM_SDP_CRYPTO_FEC_ORDER            0x20u /* FEC_ORDER given (any value) */

/* One a=crypto attribute. A line that is well-formed but that openum cannot
 * use (unknown suite, wrong key length, an MKI longer than 4 octets or
 * several keys, a lifetime outside OM_SDP_LIFETIME_MIN..MAX, KDR,
 * weakening session parameters) has `unusable` set to a stable reason; a line with bad syntax
 * is not stored at all: its media gets crypto_error instead. */
struct om_sdp_crypto {
	uint32_t tag;                        /* 1*9DIGIT */
	struct om_str suite_name;            /* as written */
	enum om_sdp_crypto_suite suite;      /* UNKNOWN when not ours */
	uint8_t keysalt[OM_SDP_KEYSALT_MAX]; /* decoded key || salt */
	size_t keysalt_len;
	unsigned nkeys; /* key-params (';'-separated) */
	bool has_lifetime;
	uint64_t lifetime; /* packets */
	bool has_mki;
	uint32_t mki_value, mki_len;
	unsigned kdr;         /* 0 when absent */
	uint32_t wsh;         /* 0 when absent */
	unsigned flags;       /* OM_SDP_CRYPTO_* */
	const char *unusable; /* NULL: openum can use it */
};

/* Parses the value of an a=crypto attribute (the text after "crypto:").
 * 0 and *out filled, or EINVAL with *why set to a reason (syntax). The
 * usability verdict (out->unusable) is filled on success. */
int om_sdp_crypto_parse(struct om_str value, struct om_sdp_crypto *out, const char **why);
/* Wipes the key material. */
void om_sdp_crypto_clear(struct om_sdp_crypto *c);

/* ---- parsed description ------------------------------------------------ */
enum om_sdp_dir { OM_SDP_SENDRECV = 0, OM_SDP_SENDONLY, OM_SDP_RECVONLY, OM_SDP_INACTIVE };
enum om_sdp_addrtype { OM_SDP_IP4 = 4, OM_SDP_IP6 = 6 };
enum om_sdp_proto { OM_SDP_PROTO_OTHER = 0, OM_SDP_PROTO_AVP, OM_SDP_PROTO_SAVP };

const char *om_sdp_dir_name(enum om_sdp_dir d);

struct om_sdp_conn {
	enum om_sdp_addrtype type;
	struct om_str addr; /* unicast address or host name, TTL/count removed */
	bool hold;          /* 0.0.0.0 (RFC 3264 §8.4, the RFC 2543 hold) */
};

struct om_sdp_rtpmap {
	uint8_t pt;
	struct om_str encoding; /* "PCMU" */
	uint32_t clock;         /* 8000 */
	struct om_str fmtp;     /* parameters of a=fmtp for this pt, or empty */
	bool has_rtpmap;
};

struct om_sdp_media {
	struct om_str media; /* "audio" */
	uint16_t port;
	uint16_t nports;
	struct om_str proto; /* "RTP/SAVP" */
	enum om_sdp_proto proto_kind;
	struct om_str fmt[OM_SDP_MAX_FMT];
	size_t nfmt;
	struct om_sdp_conn conn; /* effective: own c= or the session's */
	bool has_own_conn;
	struct om_sdp_rtpmap map[OM_SDP_MAX_RTPMAP]; /* rtpmap/fmtp by pt */
	size_t nmap;
	uint32_t ptime;      /* 0 when absent */
	bool rtcp_mux;       /* a=rtcp-mux (RFC 5761) */
	uint16_t rtcp_port;  /* a=rtcp (RFC 3605), 0 when absent */
	enum om_sdp_dir dir; /* effective: own, else session's, else sendrecv */
	struct om_sdp_crypto crypto[OM_SDP_MAX_CRYPTO];
	size_t ncrypto;
	size_t ncrypto_lines;     /* a=crypto lines seen, well-formed or not */
	const char *crypto_error; /* a malformed or duplicate a=crypto */
};

struct om_sdp {
	struct om_str o_user;
	uint64_t sess_id, sess_version;
	struct om_str o_addr;
	struct om_str name; /* s= */
	bool has_conn;
	struct om_sdp_conn conn;
	enum om_sdp_dir dir;
	bool has_dir;
	struct om_sdp_media media[OM_SDP_MAX_MEDIA];
	size_t nmedia;
};

/* Where and why a parse failed (for the 400's Warning and the log). */
struct om_sdp_error {
	const char *reason; /* stable, e.g. "bad_c_line" */
	unsigned line;      /* 1-based, 0 when not tied to a line */
};

/* Parses body[0..len). 0 and *out (om_sdp_free it), or EINVAL (malformed;
 * err filled), E2BIG (a bound exceeded; err filled), ENOMEM. */
int om_sdp_parse(const char *body, size_t len, struct om_sdp **out, struct om_sdp_error *err);
void om_sdp_free(struct om_sdp *sdp);

/* ---- our side ---------------------------------------------------------- */
struct om_sdp_local {
	const char *addr; /* our media address, e.g. "192.0.2.10" */
	bool ipv6;
	uint16_t port;    /* our RTP port */
	uint64_t sess_id; /* o= session id and version (RFC 4566 §5.2) */
	uint64_t sess_version;
};

/* What om_sdp_mode_apply decided. Holds keys: om_sdp_result_clear() it. */
struct om_sdp_crypto_key {
	uint32_t tag;
	enum om_sdp_crypto_suite suite;
	uint8_t keysalt[OM_SDP_KEYSALT_MAX];
	size_t keysalt_len;
	/* MKI (RFC 4568 §6.1 "|value:length"): mki_len 0 = none, else 1..4;
	 * on the wire (RFC 3711 §3.1) the value as mki_len big-endian octets. */
	uint32_t mki_value;
	uint32_t mki_len;
	uint64_t lifetime; /* packets; 0 = not given (the suite's maximum) */
};

/* The MKI of k as it appears in packets: mki_len big-endian octets into
 * out (at least OM_SDP_MKI_MAX). Returns mki_len. */
size_t om_sdp_mki_bytes(const struct om_sdp_crypto_key *k, uint8_t *out);

enum om_sdp_plan_mode { OM_SDP_UNSECURED = 0, OM_SDP_SIPSECURED, OM_SDP_SECURED };
enum om_sdp_transport { OM_SDP_TCP = 0, OM_SDP_TLS };

const char *om_sdp_plan_mode_name(enum om_sdp_plan_mode m);

enum om_sdp_result_kind { OM_SDP_REFUSED = 0, OM_SDP_ANSWER, OM_SDP_OFFER };

struct om_sdp_result {
	enum om_sdp_result_kind kind;
	int status;          /* REFUSED: 403 / 488; 0 otherwise */
	const char *reason;  /* REFUSED: why (event 1132); else NULL */
	bool crypto_ignored; /* ANSWER: a=crypto in RTP/AVP dropped (over TCP): log it */
	bool srtp;           /* media is SRTP */
	enum om_sdp_proto proto;
	/* ANSWER: what was agreed. */
	size_t media_index;        /* the offer's m= line taken */
	uint8_t pt;                /* 0 PCMU or 8 PCMA (or their dynamic pt) */
	int te_pt;                 /* telephone-event pt, -1 when none */
	enum om_sdp_dir dir;       /* our direction */
	struct om_sdp_conn remote; /* where the peer wants media */
	uint16_t remote_port;
	uint16_t remote_rtcp_port;           /* a=rtcp of the peer, 0: remote_port + 1 */
	bool rtcp_mux;                       /* ANSWER: the offer had a=rtcp-mux and our answer too:
	                            * RTCP on the RTP port (om_media_params.rtcp_mux) */
	struct om_sdp_crypto_key remote_key; /* SRTP: the peer's sending key */
	/* ANSWER: the key we send with (with an MKI of the same length when the
	 * offerer's key has one: value 1); OFFER: one per suite, in offer
	 * order, without MKI. */
	struct om_sdp_crypto_key local_key[OM_SDP_SUITE_COUNT];
	size_t nlocal_key;
};

void om_sdp_result_clear(struct om_sdp_result *r);

/* The R3 table. offer NULL = delayed offer (INVITE without SDP): the result
 * is openum's own offer as the mode requires. On ANSWER/OFFER the SDP text
 * is appended to `out`, which is marked secret (om_buf_secret: every later
 * growth and om_buf_free cleanse the old block), since it holds a key; on
 * REFUSED nothing is. Returns 0 with *r filled
 * (kind tells answer, offer or refusal), ENOMEM, or EIO (no randomness). */
int om_sdp_mode_apply(enum om_sdp_plan_mode mode, enum om_sdp_transport tr,
                      const struct om_sdp *offer, const struct om_sdp_local *local,
                      struct om_sdp_result *r, struct om_buf *out);

/* Builds openum's offer: PCMU, PCMA, telephone-event 101; with `srtp` an
 * RTP/SAVP line with one fresh key per suite, GCM first. Fills r (kind
 * OFFER) and appends the text to out. 0, ENOMEM or EIO. */
int om_sdp_offer_build(bool srtp, const struct om_sdp_local *local, struct om_sdp_result *r,
                       struct om_buf *out);

/* Takes the answer to our offer (the ACK of a delayed offer): `ours` is the
 * result om_sdp_offer_build/om_sdp_mode_apply gave. On 0, ours becomes an
 * ANSWER-like agreement (pt, remote key, the one local key kept) — or a
 * REFUSED with a reason when the answer does not meet what we offered
 * (the caller then ends the call). 0 or EINVAL (ours is not an offer). */
int om_sdp_answer_take(struct om_sdp_result *ours, const struct om_sdp *answer);

#endif
