/* fuzz_sdes.c — libFuzzer target: one a=crypto value (RFC 4568 §9.1),
 * given either as the bare value or as an "a=crypto:" line. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/str.h"
#include "sdp/sdp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char empty[1] = "";
	struct om_str v = { size ? (const char *)data : empty, size };
	/* Seeds are whole SDP bodies: run every a=crypto: line of them too. */
	const char *p = v.p, *end = v.p + v.len;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl : end;
		size_t n = (size_t)(le - p);
		if (n && p[n - 1] == '\r')
			n--;
		if (n >= 9 && memcmp(p, "a=crypto:", 9) == 0) {
			struct om_sdp_crypto c;
			const char *why = NULL;
			struct om_str line = { p + 9, n - 9 };
			if (om_sdp_crypto_parse(line, &c, &why) == 0) {
				if (c.keysalt_len > OM_SDP_KEYSALT_MAX)
					abort();
				om_sdp_crypto_clear(&c);
			} else if (!why) {
				abort();
			}
		}
		p = nl ? nl + 1 : end;
	}
	struct om_sdp_crypto c;
	const char *why = NULL;
	if (om_sdp_crypto_parse(v, &c, &why) == 0)
		om_sdp_crypto_clear(&c);
	else if (!why)
		abort();
	return 0;
}
