/* fuzz_route.c — libFuzzer target: which mailbox an INVITE is for (R11;
 * RFC 4458, RFC 7044, RFC 5806): any message that parses is routed with
 * both Diversion options and two pilots; the result is checked for
 * consistency. */
#include "app/route.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool has(const char *ext, void *arg)
{
	return ext[0] == '2';
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct om_sip_msg *m = NULL;
	enum om_sip_reason r;
	if (om_sip_msg_parse((const char *)data, size, NULL, &m, &r) != 0)
		return 0;
	static const char *const pilots[] = { "8000", "+1 555 010 8000" };
	for (int i = 0; i < 4; i++) {
		struct om_route_in in = { .invite = m,
			                  .pilot = pilots[i & 1],
			                  .digits = 4,
			                  .diversion_bottom = i >= 2,
			                  .mailbox_h = has };
		struct om_route out;
		om_route_decide(&in, &out);
		if (out.kind == OM_ROUTE_DEPOSIT && out.mailbox[0] != '2')
			abort();
		if (out.anonymous && (out.caller[0] || out.caller_name[0]))
			abort();
		if (strlen(out.mailbox) > 4 || out.nwarn > OM_ROUTE_MAX_WARN)
			abort();
	}
	om_sip_msg_free(m);
	return 0;
}
