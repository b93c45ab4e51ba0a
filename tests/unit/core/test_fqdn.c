/* test_fqdn.c — the one set of host-name rules (RFC 1035 §2.3.4, RFC 1123
 * §2.1) and the canonical form (RFC 4343, RFC 1034 §3.1), with the reason
 * each refusal gives. */
#include "ut.h"
#include "core/fqdn.h"

#include <errno.h>
#include <string.h>

static void bad(const char *name, unsigned flags, const char *why_part)
{
	char why[160] = "";
	if (om_fqdn_check(name, flags, why, sizeof(why)) != EINVAL)
		UT_FAIL("accepted '%s'", name);
	if (!strstr(why, why_part))
		UT_FAIL("'%s': reason '%s' lacks '%s'", name, why, why_part);
}

UT_TEST(rules_and_reasons)
{
	char label64[80], name254[300], why[160];
	UT_EQ_INT(0, om_fqdn_check("um1.example.com", OM_FQDN_MULTI_LABEL, why, sizeof(why)));
	UT_EQ_INT(0, om_fqdn_check("pbx.example.test.", OM_FQDN_MULTI_LABEL, NULL, 0));
	UT_EQ_INT(0, om_fqdn_check("localhost", 0, NULL, 0));
	bad("localhost", OM_FQDN_MULTI_LABEL, "not fully qualified");
	bad("a..b", 0, "two dots");
	bad(".example.com", 0, "starts with a dot");
	bad(".", 0, "starts with a dot");
	bad("", 0, "empty");
	bad("192.0.2.1", 0, "IP address");
	bad("2001:db8::1", 0, "IP address");
	bad("[2001:db8::1]", 0, "IP address");
	bad("1.2.3.999", 0, "all digits");
	bad("*.example.com", 0, "wildcards");
	bad("gw_1.example.com", 0, "character '_'");
	bad("-gw.example.com", 0, "starts or ends with '-'");
	bad("gw-.example.com", 0, "starts or ends with '-'");
	bad("a.b..", 0, "two dots");
	memset(label64, 'a', 64);
	strcpy(label64 + 64, ".example.com");
	bad(label64, 0, "longer than 63 characters");
	strcpy(label64 + 63, ".example.com"); /* a label of 63: fine */
	UT_EQ_INT(0, om_fqdn_check(label64, 0, NULL, 0));
	memset(name254, 0, sizeof(name254));
	for (int i = 0; i < 64; i++)
		memcpy(name254 + 4 * i, "abc.", 4);
	memcpy(name254 + 252, "com", 3);
	bad(name254, 0, "longer than 253");
	/* the input quoted in a reason is bounded and printable */
	bad("a.b\x01.c", 0, "character '?'");
}

UT_TEST(canonical_form)
{
	char out[254];
	UT_EQ_INT(0, om_fqdn_norm("PBX.Example.Test.", 17, out, sizeof(out)));
	UT_EQ_STR("pbx.example.test", out);
	UT_EQ_INT(0, om_fqdn_norm("a.b", 3, out, sizeof(out)));
	UT_EQ_STR("a.b", out);
	UT_EQ_INT(ENAMETOOLONG, om_fqdn_norm("abcdef", 6, out, 4));
	UT_EQ_STR("", out);
}

UT_MAIN(UT_CASE(rules_and_reasons), UT_CASE(canonical_form))
