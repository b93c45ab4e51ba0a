/* fuzz_sip_uri.c — libFuzzer target: URIs (RFC 3261 §19.1, §25.1; RFC 3966;
 * RFC 5118), name-addrs, Via elements and parameter lists. */
#include "sip/sip.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct om_str s = { (const char *)data, size };
	struct om_sip_uri u;
	struct om_sip_addr a;
	struct om_sip_via v;
	struct om_str n, val, rest;
	char out[512];

	if (om_sip_uri_parse(s, 0, &u) == 0) {
		if (u.user.p && (u.user.p < s.p || u.user.p + u.user.len > s.p + s.len))
			abort();
		if (u.host.p && (u.host.p < s.p || u.host.p + u.host.len > s.p + s.len))
			abort();
		long l = om_sip_unescape(u.user, out, sizeof(out));
		if (l > (long)u.user.len)
			abort();
		(void)om_sip_escaped_eq(u.user, u.host);
		rest = u.params;
		while (om_sip_param_next(&rest, &n, &val) == 0)
			;
		(void)om_sip_param_find(u.params, "lr", &val);
	}
	(void)om_sip_uri_parse(s, 32, &u);
	if (om_sip_addr_parse(s, 2048, &a) == 0) {
		rest = a.params;
		while (om_sip_param_next(&rest, &n, &val) == 0)
			;
	}
	(void)om_sip_via_parse(s, &v);
	rest = s;
	int k = 0;
	while (om_sip_param_next(&rest, &n, &val) == 0 && k++ < 10000)
		;
	(void)om_sip_unescape(s, out, sizeof(out));
	return 0;
}
