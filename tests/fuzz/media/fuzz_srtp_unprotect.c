/* fuzz_srtp_unprotect.c — libFuzzer target for the SRTP/SRTCP receive path.
 *
 * Input layout (compatible with PJSIP's fuzz-srtp seeds, whose first byte
 * is the crypto-suite index): byte 0 picks the suite (mod 5); byte 1 picks
 * the libsrtp2 backend instead of OpenSSL when its low four bits are all
 * set (libsrtp2 on NSS sets up and tears down far more per session than
 * the OpenSSL backend, so it gets one input in sixteen); bytes 2-3 are a
 * sequence step; the rest is one packet.
 *
 * 1. The packet is unprotected as SRTP and as SRTCP (it will almost never
 *    authenticate: this checks parsing and bounds before the tag).
 * 2. The packet is taken as plaintext RTP/RTCP, protected by a sender and
 *    unprotected by a receiver with the same key: the result must equal the
 *    input; a second delivery must be refused as a replay; a copy with one
 *    bit flipped must be refused. The sequence number is then moved by the
 *    step and the round trip repeated (ROC estimation paths). */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "media/srtp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const enum om_srtp_suite suites[] = {
	OM_SRTP_AES_CM_128_HMAC_SHA1_80, OM_SRTP_AES_CM_128_HMAC_SHA1_32,
	OM_SRTP_AES_256_CM_HMAC_SHA1_80, OM_SRTP_AEAD_AES_128_GCM,
	OM_SRTP_AEAD_AES_256_GCM,
};

static const uint8_t key[64] = { 0x1f, 0x2e, 0x3d, 0x4c, 0x5b, 0x6a, 0x79, 0x88, 0x97, 0xa6,
	                         0xb5, 0xc4, 0xd3, 0xe2, 0xf1, 0x00, 0x11, 0x22, 0x33, 0x44,
	                         0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee,
	                         0xff, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09,
	                         0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f };

static struct om_srtp *mk(enum om_srtp_suite s, enum om_srtp_backend be, enum om_srtp_dir d)
{
	struct om_srtp_policy p = { .suite = s, .backend = be, .dir = d, .key = key };
	p.key_len = om_srtp_suite_key_len(s);
	struct om_srtp *out = NULL;
	if (om_srtp_new(&p, &out))
		abort();
	return out;
}

static void roundtrip(struct om_srtp *tx, struct om_srtp *rx, const uint8_t *pkt, size_t n,
                      int rtcp)
{
	size_t cap = n + OM_SRTCP_MAX_TRAILER;
	uint8_t *w = malloc(cap), *t = malloc(cap);
	size_t len = n, l2;
	memcpy(w, pkt, n);
	int err = rtcp ? om_srtp_protect_rtcp(tx, w, &len, cap) : om_srtp_protect(tx, w, &len, cap);
	if (err)
		goto out; /* malformed, or an index the sender already used */
	memcpy(t, w, len);
	l2 = len;
	t[(n * 7) % len] ^= (uint8_t)(1u << (n % 8));
	err = rtcp ? om_srtp_unprotect_rtcp(rx, t, &l2) : om_srtp_unprotect(rx, t, &l2);
	if (err == 0)
		abort(); /* a flipped bit was accepted */
	memcpy(t, w, len);
	l2 = len;
	err = rtcp ? om_srtp_unprotect_rtcp(rx, t, &l2) : om_srtp_unprotect(rx, t, &l2);
	if (err == ENOSPC)
		goto out;
	if (err || l2 != n || memcmp(t, pkt, n) != 0)
		abort(); /* round trip lost the packet */
	memcpy(t, w, len);
	l2 = len;
	err = rtcp ? om_srtp_unprotect_rtcp(rx, t, &l2) : om_srtp_unprotect(rx, t, &l2);
	if (err != EALREADY)
		abort(); /* replay accepted */
out:
	free(w);
	free(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 4)
		return 0;
	enum om_srtp_suite suite = suites[data[0] % 5];
	enum om_srtp_backend be =
	    (data[1] & 1) ? OM_SRTP_BACKEND_LIBSRTP2 : OM_SRTP_BACKEND_OPENSSL;
	uint16_t step = (uint16_t)(data[2] << 8 | data[3]);
	const uint8_t *pkt = data + 4;
	size_t n = size - 4;
	if (n > 4096)
		return 0;

	struct om_srtp *rx = mk(suite, be, OM_SRTP_RECV);
	struct om_srtp *tx = mk(suite, be, OM_SRTP_SEND);
	uint8_t *b = malloc(n + 1);
	size_t len;

	/* 1. raw input on the receive path */
	memcpy(b, pkt, n);
	len = n;
	(void)om_srtp_unprotect(rx, b, &len);
	memcpy(b, pkt, n);
	len = n;
	(void)om_srtp_unprotect_rtcp(rx, b, &len);

	/* 2. round trips */
	roundtrip(tx, rx, pkt, n, 0);
	roundtrip(tx, rx, pkt, n, 1);
	if (n >= 12) {
		memcpy(b, pkt, n);
		uint16_t seq = (uint16_t)((b[2] << 8 | b[3]) + step);
		b[2] = (uint8_t)(seq >> 8);
		b[3] = (uint8_t)seq;
		roundtrip(tx, rx, b, n, 0);
	}
	free(b);
	om_srtp_free(tx);
	om_srtp_free(rx);
	return 0;
}
