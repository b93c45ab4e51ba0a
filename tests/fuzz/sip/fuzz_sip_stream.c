/* fuzz_sip_stream.c — libFuzzer target: stream framing piece by piece
 * (RFC 3261 §18.3). The first byte picks how the rest is split into
 * reads; at every read the stateful framer (om_sip_framer_next) must
 * give exactly the stateless framer's answer on the same buffer, and a
 * framed message must lie inside what was received. */
#include "sip/sip.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	unsigned x = data[0] * 2654435761u + 1, span = 1 + data[0] % 64;
	const char *in = (const char *)data + 1;
	size_t total = size - 1, fed = 0, have = 0;
	size_t max = data[0] & 0x80 ? 65536 : 512;
	char *buf = malloc(total + 1);
	struct om_sip_framer f = { 0 };
	if (!buf)
		return 0;
	for (;;) {
		size_t ml1 = 0, ml2 = 0;
		enum om_sip_reason r1 = OM_SIP_R_OK, r2 = OM_SIP_R_OK;
		enum om_sip_frame_res a = om_sip_framer_next(&f, buf, have, max, &ml1, &r1);
		enum om_sip_frame_res b = om_sip_frame(buf, have, max, &ml2, &r2);
		if (a != b || (a != OM_SIP_FRAME_ERROR && ml1 != ml2) ||
		    (a == OM_SIP_FRAME_ERROR && r1 != r2))
			abort();
		if (a == OM_SIP_FRAME_ERROR)
			break;
		if (a == OM_SIP_FRAME_MSG || a == OM_SIP_FRAME_SKIP) {
			if (ml1 == 0 || ml1 > have)
				abort();
			memmove(buf, buf + ml1, have - ml1);
			have -= ml1;
			continue;
		}
		if (fed == total)
			break;
		x = x * 1103515245u + 12345u;
		size_t n = 1 + (x >> 16) % span;
		if (n > total - fed)
			n = total - fed;
		memcpy(buf + have, in + fed, n);
		have += n;
		fed += n;
	}
	free(buf);
	return 0;
}
