/* fuzz_rtp.c — libFuzzer target for the SRTP send path and the RTP header
 * bounds (RFC 3550 §5.1, RFC 3711 §3.3).
 *
 * The input is one plaintext RTP packet (PJSIP's fuzz-rtp seeds and the
 * rtp_* files of fuzz-srtp). For every suite, on the OpenSSL backend: the
 * header length must lie inside the packet; protect must either refuse the
 * packet (EPROTO, malformed) or add exactly the suite's tag without
 * touching the header; unprotect must give the input back. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "media/srtp.h"
#include "media/srtp_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const enum om_srtp_suite suites[] = {
	OM_SRTP_AES_CM_128_HMAC_SHA1_80, OM_SRTP_AES_CM_128_HMAC_SHA1_32,
	OM_SRTP_AES_256_CM_HMAC_SHA1_80, OM_SRTP_AEAD_AES_128_GCM,
	OM_SRTP_AEAD_AES_256_GCM,
};

static const uint8_t key[46] = { 7, 6, 5, 4, 3, 2, 1, 0, 9, 8, 7, 6, 5, 4, 3, 2,
	                         1, 0, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 9, 8, 7, 6,
	                         5, 4, 3, 2, 1, 0, 9, 8, 7, 6, 5, 4, 3, 2 };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 4096)
		return 0;
	size_t h = om_srtp_rtp_hdr_len(data, size);
	if (h > size || (h && h < 12))
		abort();
	uint8_t *b = malloc(size + OM_SRTP_MAX_TRAILER);
	for (size_t i = 0; i < sizeof(suites) / sizeof(suites[0]); i++) {
		struct om_srtp_policy p = { .suite = suites[i], .dir = OM_SRTP_SEND, .key = key };
		p.key_len = om_srtp_suite_key_len(suites[i]);
		struct om_srtp *tx = NULL, *rx = NULL;
		if (om_srtp_new(&p, &tx))
			abort();
		p.dir = OM_SRTP_RECV;
		if (om_srtp_new(&p, &rx))
			abort();
		size_t len = size;
		memcpy(b, data, size);
		int err = om_srtp_protect(tx, b, &len, size + OM_SRTP_MAX_TRAILER);
		if (!h && err != EPROTO)
			abort(); /* malformed header accepted */
		if (h && err)
			abort();
		if (!err) {
			size_t tag = om_srtp_suite_info(suites[i])->tag_len;
			if (len != size + tag || memcmp(b, data, h) != 0)
				abort(); /* wrong length, or the header was changed */
			if (om_srtp_unprotect(rx, b, &len) || len != size ||
			    memcmp(b, data, size) != 0)
				abort();
		}
		om_srtp_free(tx);
		om_srtp_free(rx);
	}
	free(b);
	return 0;
}
