/* sdp_test_util.h — helpers shared by the SDP unit tests. */
#ifndef OM_SDP_TEST_UTIL_H
#define OM_SDP_TEST_UTIL_H

#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>

/* Base64 (padded) of n bytes 0, 1, 2, ... into out (NUL-terminated). */
static inline const char *tu_key(size_t n, char *out)
{
	unsigned char raw[64];
	if (n > sizeof(raw))
		n = sizeof(raw);
	for (size_t i = 0; i < n; i++)
		raw[i] = (unsigned char)i;
	EVP_EncodeBlock((unsigned char *)out, raw, (int)n);
	return out;
}

#endif
