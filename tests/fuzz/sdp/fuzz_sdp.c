/* fuzz_sdp.c — libFuzzer target: SDP parse (RFC 4566), then the R3 mode
 * table under every plan mode and transport (answer building, SDES), then
 * the parsed input taken as the answer to our own offer. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/str.h"
#include "sdp/sdp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct om_sdp *sdp = NULL;
	struct om_sdp_error err;
	const struct om_sdp_local local = { "192.0.2.10", false, 40000, 1, 1 };
	if (om_sdp_parse((const char *)data, size, &sdp, &err) != 0) {
		if (!err.reason)
			abort(); /* every refusal carries a reason */
		return 0;
	}
	for (int mode = OM_SDP_UNSECURED; mode <= OM_SDP_SECURED; mode++)
		for (int tr = OM_SDP_TCP; tr <= OM_SDP_TLS; tr++) {
			struct om_sdp_result r;
			struct om_buf out;
			om_buf_init(&out);
			if (om_sdp_mode_apply((enum om_sdp_plan_mode)mode,
			                      (enum om_sdp_transport)tr, sdp, &local, &r,
			                      &out) == 0) {
				if (r.kind == OM_SDP_REFUSED && (!r.reason || !r.status))
					abort();
				if (r.kind == OM_SDP_ANSWER) {
					/* Our own answer must parse again. */
					struct om_sdp *again = NULL;
					if (om_sdp_parse(out.p, out.len, &again, NULL) != 0)
						abort();
					om_sdp_free(again);
					/* SDES keys never over TCP. */
					if (tr == OM_SDP_TCP &&
					    (r.srtp || strstr(om_buf_cstr(&out), "\na=crypto:")))
						abort();
				}
				om_sdp_result_clear(&r);
			}
			om_buf_free(&out);
		}
	/* The same input as the answer to our SRTP offer. */
	struct om_sdp_result ours;
	struct om_buf out;
	om_buf_init(&out);
	if (om_sdp_offer_build(size & 1, &local, &ours, &out) == 0) {
		(void)om_sdp_answer_take(&ours, sdp);
		om_sdp_result_clear(&ours);
	}
	om_buf_free(&out);
	om_sdp_free(sdp);
	return 0;
}
