/* srtp_int.h — inside the SRTP module only (and its tests): the session
 * layout, the key derivation function and the backend hooks. */
#ifndef OM_MEDIA_SRTP_INT_H
#define OM_MEDIA_SRTP_INT_H

#include <stdint.h>

#include <openssl/evp.h>

#include "media/srtp.h"

struct om_srtp_suite_info {
	enum om_srtp_suite id;
	const char *name;
	size_t key_len;  /* AES key */
	size_t salt_len; /* master and session salt: 14 (CM) or 12 (GCM) */
	size_t tag_len;  /* SRTP tag */
	size_t rtcp_tag_len;
	int gcm;
};

/* Session keys of one plane (SRTP or SRTCP), RFC 3711 §4.3. */
struct om_srtp_keys {
	uint8_t enc[32];
	uint8_t auth[20];
	uint8_t salt[14];
};

/* Crypto state of one plane: contexts keyed once, re-initialised per
 * packet with the IV only. */
struct om_srtp_plane {
	EVP_CIPHER_CTX *cipher;
	EVP_MAC_CTX *mac; /* HMAC-SHA1 keyed with the auth key; NULL for GCM */
	uint8_t salt[14];
};

struct om_srtp_stream {
	uint32_t ssrc;
	uint8_t rtp_seen, rtcp_seen;
	/* SRTP: highest 48-bit index (ROC << 16 | s_l) and the window below it. */
	int64_t rtp_top;
	uint64_t rtp_win[2];
	/* SRTCP: send: next index to send; receive: highest index seen. */
	int64_t rtcp_top;
	uint64_t rtcp_win[2];
};

struct om_srtp {
	const struct om_srtp_suite_info *suite;
	enum om_srtp_backend backend;
	enum om_srtp_dir dir;
	struct om_srtp_plane rtp, rtcp;
	void *lib; /* srtp_t of the libsrtp2 backend */
	uint8_t mki[OM_SRTP_MAX_MKI];
	size_t mki_len;
	/* Master key lifetime (packets) and use, per plane (RFC 3711 §9.2). */
	uint64_t life_rtp, life_rtcp, used_rtp, used_rtcp;
	unsigned nstreams, max_streams, last;
	struct om_srtp_stream *streams;
};

const struct om_srtp_suite_info *om_srtp_suite_info(enum om_srtp_suite s);

/* AES-CM PRF (RFC 3711 §4.3.3, RFC 6188 §3): n octets for `label` from a
 * master key of 16 or 32 octets and a master salt of 12 or 14 (a 12-octet
 * salt is right-padded with zeros). kdr = 0. */
int om_srtp_kdf(const uint8_t *mkey, size_t mkey_len, const uint8_t *msalt, size_t msalt_len,
                uint8_t label, uint8_t *out, size_t n);

/* Creates an OpenSSL-backend session from already derived session keys
 * (the RFC 7714 vectors publish session keys, not master keys). */
int om_srtp_new_keys(const struct om_srtp_policy *p, const struct om_srtp_keys *rtp,
                     const struct om_srtp_keys *rtcp, struct om_srtp **out);
/* Releases every context and zeroes the session in place (om_srtp_free
 * does this, then frees): tests check the bytes after it. */
void om_srtp_wipe(struct om_srtp *s);
/* Tests only: the next SRTCP index sent for `ssrc` (creates the stream). */
int om_srtp_set_rtcp_index(struct om_srtp *s, uint32_t ssrc, uint32_t index);

/* Stream table (shared by both backends). */
struct om_srtp_stream *om_srtp_stream_find(struct om_srtp *s, uint32_t ssrc);
int om_srtp_stream_add(struct om_srtp *s, const struct om_srtp_stream *st);
/* RTP header length (RFC 3550 §5.1: fixed part, CSRCs, extension), or 0
 * when the packet is shorter than its header or not version 2. */
size_t om_srtp_rtp_hdr_len(const uint8_t *p, size_t len);

/* libsrtp2 backend (srtp_libsrtp.c). */
int om_srtp_lib_new(struct om_srtp *s, const struct om_srtp_policy *p);
void om_srtp_lib_free(struct om_srtp *s);
int om_srtp_lib_protect(struct om_srtp *s, uint8_t *buf, size_t *len, int rtcp);
int om_srtp_lib_unprotect(struct om_srtp *s, uint8_t *buf, size_t *len, int rtcp);

#endif
