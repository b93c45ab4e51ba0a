/* test_values.c — syntax of directory values: names, FQDNs, IP literals
 * (binary, IPv4-mapped), extensions, e-mail, display names, enums. */
#include "ut.h"
#include "directory/directory.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>

UT_TEST(fqdn_rules)
{
	static const char *good[] = {
		"gw1.example.com", "GW1.Example.COM", "a.b",
		"x-1.y-2.org.",    "1gw.example.com", "a.b.c.d.e.f.example.net"
	};
	static const char *bad[] = { "",
		                     "localhost",
		                     "gw_1.example.com",
		                     "-gw.example.com",
		                     "gw-.example.com",
		                     "a..b",
		                     ".a.b",
		                     "*.example.com",
		                     "1.2.3.999",
		                     "1.2.3.4",
		                     "gw 1.example.com",
		                     "a.b..",
		                     "exa\xc3\xa9mple.com" };
	char longlabel[80], longname[300];
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		if (!om_dir_fqdn_valid(good[i]))
			UT_FAIL("rejected %s", good[i]);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (om_dir_fqdn_valid(bad[i]))
			UT_FAIL("accepted %s", bad[i]);
	memset(longlabel, 'a', 64);
	strcpy(longlabel + 64, ".com");
	UT_TRUE(!om_dir_fqdn_valid(longlabel));
	memset(longlabel, 'a', 63);
	strcpy(longlabel + 63, ".com");
	UT_TRUE(om_dir_fqdn_valid(longlabel));
	memset(longname, 0, sizeof(longname));
	for (int i = 0; i < 64; i++)
		memcpy(longname + 4 * i, "abc.", 4);
	memcpy(longname + 252, "com", 3); /* 255 characters */
	UT_TRUE(!om_dir_fqdn_valid(longname));
}

UT_TEST(host_parse_binary)
{
	struct om_dir_host a, b, c;
	UT_EQ_INT(0, om_dir_host_parse("10.0.0.1", &a));
	UT_EQ_INT(0, om_dir_host_parse("::ffff:10.0.0.1", &b));
	UT_TRUE(a.is_ip && b.is_ip);
	UT_EQ_MEM(a.ip, b.ip, 16);
	UT_EQ_STR("10.0.0.1", b.name);
	UT_EQ_INT(0, om_dir_host_parse("[2001:DB8::0001]", &c));
	UT_EQ_STR("2001:db8::1", c.name);
	UT_EQ_INT(0, om_dir_host_parse("GW.Example.com.", &c));
	UT_TRUE(!c.is_ip);
	UT_EQ_STR("gw.example.com", c.name);
	UT_EQ_INT(EINVAL, om_dir_host_parse("10.0.0.256", &c));
	UT_EQ_INT(EINVAL, om_dir_host_parse("[10.0.0.1]", &c));
	UT_EQ_INT(EINVAL, om_dir_host_parse("2001:db8::1::2", &c));
	UT_EQ_INT(EINVAL, om_dir_host_parse("gw", &c));
	UT_EQ_INT(EINVAL, om_dir_host_parse("", &c));
	UT_EQ_INT(EINVAL, om_dir_host_parse("[]", &c));
	UT_EQ_INT(EINVAL, om_dir_host_parse("http://gw.example.com", &c));
}

UT_TEST(sockaddr_normalised)
{
	struct sockaddr_in in4 = { .sin_family = AF_INET };
	struct sockaddr_in6 in6 = { .sin6_family = AF_INET6 };
	struct sockaddr un = { .sa_family = AF_UNIX };
	uint8_t x[16], y[16];
	inet_pton(AF_INET, "192.0.2.7", &in4.sin_addr);
	inet_pton(AF_INET6, "::ffff:192.0.2.7", &in6.sin6_addr);
	UT_EQ_INT(0, om_dir_sockaddr_ip((struct sockaddr *)&in4, x));
	UT_EQ_INT(0, om_dir_sockaddr_ip((struct sockaddr *)&in6, y));
	UT_EQ_MEM(x, y, 16);
	UT_EQ_INT(EAFNOSUPPORT, om_dir_sockaddr_ip(&un, x));
}

UT_TEST(greeting_file_names)
{
	UT_TRUE(om_dir_greeting_valid("greetings/0123abcd.busy.0a1b2c3d.wav"));
	UT_TRUE(!om_dir_greeting_valid("greetings/"));
	UT_TRUE(!om_dir_greeting_valid("greetings/../openum.db"));
	UT_TRUE(!om_dir_greeting_valid("greetings/.hidden"));
	UT_TRUE(!om_dir_greeting_valid("greetings/a/b.wav"));
	UT_TRUE(!om_dir_greeting_valid("/etc/passwd"));
	UT_TRUE(!om_dir_greeting_valid("prompts/x.wav"));
	UT_TRUE(!om_dir_greeting_valid(
	    "greetings/0123456789012345678901234567890123456789012345678901234"));
}

UT_TEST(names_extensions_pilots)
{
	UT_TRUE(om_dir_name_valid("HQ"));
	UT_TRUE(om_dir_name_valid("plan-1.a_b"));
	UT_TRUE(!om_dir_name_valid(""));
	UT_TRUE(!om_dir_name_valid("-x"));
	UT_TRUE(!om_dir_name_valid("a b"));
	UT_TRUE(!om_dir_name_valid("a/b"));
	UT_TRUE(!om_dir_name_valid(
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"));
	UT_TRUE(om_dir_extension_valid("0123"));
	UT_TRUE(om_dir_extension_valid("12345678901234567890"));
	UT_TRUE(!om_dir_extension_valid("123456789012345678901"));
	UT_TRUE(!om_dir_extension_valid("12a4"));
	UT_TRUE(!om_dir_extension_valid(""));
	UT_TRUE(!om_dir_extension_valid("+123"));
	UT_TRUE(om_dir_pilot_valid("+4930123"));
	UT_TRUE(om_dir_pilot_valid("5000"));
	UT_TRUE(!om_dir_pilot_valid("+"));
	UT_TRUE(!om_dir_pilot_valid("50-00"));
}

UT_TEST(email_display)
{
	UT_TRUE(om_dir_email_valid("alice@example.com"));
	UT_TRUE(om_dir_email_valid("a.b+c@mail.example.org"));
	UT_TRUE(!om_dir_email_valid("alice"));
	UT_TRUE(!om_dir_email_valid("@example.com"));
	UT_TRUE(!om_dir_email_valid("alice@localhost"));
	UT_TRUE(!om_dir_email_valid("al ice@example.com"));
	UT_TRUE(!om_dir_email_valid("a<b>@example.com"));
	UT_TRUE(!om_dir_email_valid("alice@example.com\r\nBcc: x@y.z"));
	UT_TRUE(om_dir_display_valid("Zo\xc3\xab M\xc3\xbcller"));
	UT_TRUE(om_dir_display_valid(""));
	UT_TRUE(!om_dir_display_valid("a\nb"));
	UT_TRUE(!om_dir_display_valid("a\x7f"));
	UT_TRUE(!om_dir_display_valid("bad \xc3"));
	UT_TRUE(!om_dir_display_valid("bad \xff"));
	UT_TRUE(!om_dir_display_valid("bad \xe2\x82"));
}

UT_TEST(enums)
{
	enum om_dir_security s;
	enum om_dir_gw_status g;
	enum om_dir_transport t;
	bool b;
	UT_EQ_INT(0, om_dir_security_parse("SIPSecured", &s));
	UT_EQ_INT(OM_SEC_SIPSECURED, s);
	UT_EQ_STR("secured", om_dir_security_name(OM_SEC_SECURED));
	UT_EQ_INT(EINVAL, om_dir_security_parse("tls", &s));
	UT_EQ_INT(0, om_dir_gw_status_parse("nonewcalls", &g));
	UT_EQ_INT(OM_GW_NONEWCALLS, g);
	UT_EQ_INT(EINVAL, om_dir_gw_status_parse("on", &g));
	UT_EQ_INT(0, om_dir_transport_parse("TLS", &t));
	UT_EQ_INT(OM_TRANSPORT_TLS, t);
	UT_EQ_INT(EINVAL, om_dir_transport_parse("udp", &t));
	UT_EQ_INT(0, om_dir_bool_parse("yes", &b));
	UT_TRUE(b);
	UT_EQ_INT(0, om_dir_bool_parse("no", &b));
	UT_TRUE(!b);
	UT_EQ_INT(EINVAL, om_dir_bool_parse("maybe", &b));
	UT_TRUE(om_dir_thumbprint_valid("A1B2C3D4E5F60718293A4B5C6D7E8F9012345678"));
	UT_TRUE(!om_dir_thumbprint_valid("xyz"));
}

UT_MAIN(UT_CASE(fqdn_rules), UT_CASE(greeting_file_names), UT_CASE(host_parse_binary),
        UT_CASE(sockaddr_normalised), UT_CASE(names_extensions_pilots), UT_CASE(email_display),
        UT_CASE(enums))
