/* srtp.h — the SRTP/SRTCP packet transform (RFC 3711, RFC 6188, RFC 7714).
 *
 * One `struct om_srtp` holds one master key used in one direction: a SEND
 * session protects what openum sends with openum's key, a RECV session
 * unprotects what the peer sends with the peer's key (SDES, RFC 4568, gives
 * each direction its own key). Inside a session every SSRC has its own
 * rollover counter (ROC), highest sequence number, SRTCP index and replay
 * windows, in a table of at most `max_ssrcs` entries allocated up front:
 * no allocation happens per packet.
 *
 * Two backends behind the same calls: openum's own transform on OpenSSL 3
 * EVP (the default), and libsrtp2 (`srtp_backend = libsrtp2`), which is
 * also the test oracle.
 *
 * Errors (positive errno values; on error *len is unchanged and the packet
 * must be dropped; its bytes may have been altered):
 *   EBADMSG   authentication tag did not verify
 *   EALREADY  replay: this index was already received (or already sent)
 *   ESTALE    replay: the index is older than the replay window
 *   EPROTO    too short, or not a well-formed RTP/RTCP header
 *   EMSGSIZE  protect: `cap` has no room for the tag (and SRTCP index)
 *   ENOSPC    a new SSRC and the SSRC table is full
 *   EOVERFLOW the SRTCP index (2^31) or packet index (2^48) is exhausted
 *   EKEYREJECTED the packet's MKI is not this session's (RFC 3711 §3.1)
 *   EKEYEXPIRED  the master key's lifetime (packets) is used up: re-key
 *   EINVAL    wrong direction for this session, or a bad policy
 *   ENOTSUP   suite/backend/KDR combination not supported
 *   ENOMEM    out of memory (om_srtp_new; or OpenSSL failing to allocate
 *             inside a packet operation: drop the packet, the next works) */
#ifndef OM_MEDIA_SRTP_H
#define OM_MEDIA_SRTP_H

#include <stddef.h>
#include <stdint.h>

enum om_srtp_suite {
	OM_SRTP_AES_CM_128_HMAC_SHA1_80 = 1,
	OM_SRTP_AES_CM_128_HMAC_SHA1_32,
	OM_SRTP_AES_256_CM_HMAC_SHA1_80, /* RFC 6188 */
	OM_SRTP_AEAD_AES_128_GCM,        /* RFC 7714 */
	OM_SRTP_AEAD_AES_256_GCM,
};

enum om_srtp_backend {
	OM_SRTP_BACKEND_OPENSSL = 0,
	OM_SRTP_BACKEND_LIBSRTP2,
};

enum om_srtp_dir {
	OM_SRTP_SEND = 0,
	OM_SRTP_RECV,
};

/* The replay window, in packets (RFC 3711 §3.3.2 asks for at least 64). */
#define OM_SRTP_WINDOW        128
#define OM_SRTP_MAX_SSRCS     16
/* Longest MKI (RFC 4568 allows 128 octets; SDES peers use 1-4). */
#define OM_SRTP_MAX_MKI       4
/* The most protect adds to an RTP packet (GCM tag + MKI) or an RTCP packet
 * (tag + E-bit/index word + MKI). */
#define OM_SRTP_MAX_TRAILER   (16 + OM_SRTP_MAX_MKI)
#define OM_SRTCP_MAX_TRAILER  (20 + OM_SRTP_MAX_MKI)
/* Most packets one master key may protect (RFC 3711 §9.2). */
#define OM_SRTP_MAX_LIFETIME  (1ULL << 48)
#define OM_SRTCP_MAX_LIFETIME (1ULL << 31)

struct om_srtp_policy {
	enum om_srtp_suite suite;
	enum om_srtp_backend backend;
	enum om_srtp_dir dir;
	/* master key || master salt: 30 octets (AES-CM-128), 46 (AES-256-CM),
	 * 28 (AEAD_AES_128_GCM), 44 (AEAD_AES_256_GCM). Copied. */
	const uint8_t *key;
	size_t key_len;
	/* key derivation rate: only 0 (derive once) is supported. */
	uint32_t kdr;
	/* SSRCs tracked per session; 0 means OM_SRTP_MAX_SSRCS. */
	unsigned max_ssrcs;
	/* Master Key Identifier (RFC 3711 §3.1): mki_len octets (0: none,
	 * else 1..OM_SRTP_MAX_MKI) carried in every packet. protect writes it;
	 * unprotect refuses a packet carrying another (EKEYREJECTED). Copied. */
	const uint8_t *mki;
	size_t mki_len;
	/* Master key lifetime in packets (RFC 4568 §6.1 "|2^n"), counted
	 * separately for SRTP and SRTCP; 0: the suite's maximum. Once used up
	 * every packet gets EKEYEXPIRED. */
	uint64_t lifetime;
};

struct om_srtp;

/* Suite name as in SDES ("AES_CM_128_HMAC_SHA1_80"...) and back. */
const char *om_srtp_suite_name(enum om_srtp_suite s);
int om_srtp_suite_parse(const char *name, size_t len, enum om_srtp_suite *out);
/* Master key || salt length of a suite, 0 when unknown. */
size_t om_srtp_suite_key_len(enum om_srtp_suite s);
/* "openssl" / "libsrtp2" (the `srtp_backend` setting). */
int om_srtp_backend_parse(const char *name, enum om_srtp_backend *out);

int om_srtp_new(const struct om_srtp_policy *p, struct om_srtp **out);
/* Zeroes every key (OPENSSL_cleanse) and frees. NULL is ignored. */
void om_srtp_free(struct om_srtp *s);

/* RTP packet in buf[0..*len) -> SRTP in place; cap is the buffer size
 * (at least *len + OM_SRTP_MAX_TRAILER is always enough). */
int om_srtp_protect(struct om_srtp *s, uint8_t *buf, size_t *len, size_t cap);
/* SRTP in buf[0..*len) -> RTP in place. */
int om_srtp_unprotect(struct om_srtp *s, uint8_t *buf, size_t *len);
int om_srtp_protect_rtcp(struct om_srtp *s, uint8_t *buf, size_t *len, size_t cap);
int om_srtp_unprotect_rtcp(struct om_srtp *s, uint8_t *buf, size_t *len);

#endif
