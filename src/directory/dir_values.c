/* dir_values.c — the values directory fields take: enum names, and the
 * syntax of names, addresses (RFC 1035 §2.3.4 / RFC 1123 §2.1 host names,
 * RFC 4291 §2.2 IPv6 text), extensions, pilot numbers and e-mail addresses.
 * These checks need no store: the CLI reports a failure as bad usage. */
#include "directory/directory.h"
#include "core/fqdn.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static const char *const sec_names[] = { "unsecured", "sipsecured", "secured" };
static const char *const gws_names[] = { "enabled", "disabled", "nonewcalls" };
static const char *const tr_names[] = { "tcp", "tls" };
static const char *const srv_names[] = { "enabled", "nonewcalls" };

static int parse_enum(const char *s, const char *const *names, int n, int *out)
{
	if (!s)
		return EINVAL;
	for (int i = 0; i < n; i++) {
		if (strcasecmp(s, names[i]) == 0) {
			*out = i;
			return 0;
		}
	}
	return EINVAL;
}

#define ENUM_FNS(fn_name, fn_parse, type, names)                                             \
	const char *fn_name(type v)                                                          \
	{                                                                                    \
		if ((int)v < 0 || (size_t)v >= sizeof(names) / sizeof(names[0]))             \
			return "?";                                                          \
		return names[v];                                                             \
	}                                                                                    \
	int fn_parse(const char *s, type *out)                                               \
	{                                                                                    \
		int v;                                                                       \
		int err = parse_enum(s, names, (int)(sizeof(names) / sizeof(names[0])), &v); \
		if (!err)                                                                    \
			*out = (type)v;                                                      \
		return err;                                                                  \
	}

ENUM_FNS(om_dir_security_name, om_dir_security_parse, enum om_dir_security, sec_names)
ENUM_FNS(om_dir_gw_status_name, om_dir_gw_status_parse, enum om_dir_gw_status, gws_names)
ENUM_FNS(om_dir_transport_name, om_dir_transport_parse, enum om_dir_transport, tr_names)
ENUM_FNS(om_dir_srv_status_name, om_dir_srv_status_parse, enum om_dir_srv_status, srv_names)

int om_dir_bool_parse(const char *s, bool *out)
{
	static const char *const yes[] = { "yes", "true", "on", "1" };
	static const char *const no[] = { "no", "false", "off", "0" };
	int v;
	if (parse_enum(s, yes, 4, &v) == 0) {
		*out = true;
		return 0;
	}
	if (parse_enum(s, no, 4, &v) == 0) {
		*out = false;
		return 0;
	}
	return EINVAL;
}

/* name = alnum *( alnum / "." / "_" / "-" ), at most 64 */
bool om_dir_name_valid(const char *s)
{
	size_t n = s ? strlen(s) : 0;
	if (n == 0 || n > OM_DIR_NAME_MAX || !isalnum((unsigned char)s[0]))
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (!isalnum(c) && c != '.' && c != '_' && c != '-')
			return false;
	}
	return true;
}

/* fqdn  = label 1*( "." label ) [ "." ]    at most 253 without the final dot
 * label = let-dig [ *61( let-dig / "-" ) let-dig ]
 * The last label is not all digits (so 1.2.3.999 is no name). The one set
 * of rules of core/fqdn.h, also used by openum.conf and the certificates. */
bool om_dir_fqdn_valid(const char *s)
{
	return om_fqdn_check(s, OM_FQDN_MULTI_LABEL, NULL, 0) == 0;
}

bool om_dir_extension_valid(const char *s)
{
	size_t n = s ? strlen(s) : 0;
	if (n == 0 || n > OM_DIR_EXT_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isdigit((unsigned char)s[i]))
			return false;
	return true;
}

bool om_dir_pilot_valid(const char *s)
{
	if (!s)
		return false;
	if (*s == '+')
		s++;
	size_t n = strlen(s);
	if (n == 0 || n > OM_DIR_PILOT_MAX - 1)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isdigit((unsigned char)s[i]))
			return false;
	return true;
}

/* Deliberately simple: local@domain, no spaces, no control characters, a
 * domain that is an FQDN. Delivery (SMTP) is where addresses really fail. */
bool om_dir_email_valid(const char *s)
{
	size_t n = s ? strlen(s) : 0;
	const char *at = s ? strrchr(s, '@') : NULL;
	if (n == 0 || n > OM_DIR_EMAIL_MAX || !at || at == s)
		return false;
	for (const char *p = s; p < at; p++) {
		unsigned char c = (unsigned char)*p;
		if (c <= ' ' || c >= 0x7f || c == '<' || c == '>' || c == '"' || c == '@' ||
		    c == ',' || c == ';' || c == '\\')
			return false;
	}
	return om_dir_fqdn_valid(at + 1);
}

/* Valid UTF-8 without control characters (they would forge lines in mail
 * headers and logs), at most 128 bytes. */
bool om_dir_display_valid(const char *s)
{
	size_t n = s ? strlen(s) : 0;
	if (n > OM_DIR_DISPLAY_MAX)
		return false;
	for (size_t i = 0; i < n;) {
		unsigned char c = (unsigned char)s[i];
		size_t k;
		if (c < 0x20 || c == 0x7f)
			return false;
		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf)
			k = 1;
		else if (c >= 0xe0 && c <= 0xef)
			k = 2;
		else if (c >= 0xf0 && c <= 0xf4)
			k = 3;
		else
			return false;
		if (i + k >= n)
			return false;
		for (size_t j = 1; j <= k; j++)
			if (((unsigned char)s[i + j] & 0xc0) != 0x80)
				return false;
		i += k + 1;
	}
	return true;
}

bool om_dir_thumbprint_valid(const char *s)
{
	size_t n = s ? strlen(s) : 0;
	if (n < 4 || n > OM_DIR_THUMB_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isxdigit((unsigned char)s[i]) && s[i] != ':')
			return false;
	return true;
}

int om_dir_host_parse(const char *s, struct om_dir_host *out)
{
	struct om_dir_host h;
	char buf[OM_DIR_HOST_MAX + 1];
	size_t n = s ? strlen(s) : 0;
	struct in_addr a4;
	memset(&h, 0, sizeof(h));
	if (n == 0 || n > OM_DIR_HOST_MAX)
		return EINVAL;
	if (s[0] == '[') { /* [v6], as in a SIP URI */
		if (n < 3 || s[n - 1] != ']')
			return EINVAL;
		memcpy(buf, s + 1, n - 2);
		buf[n - 2] = 0;
		if (inet_pton(AF_INET6, buf, h.ip) != 1)
			return EINVAL;
		h.is_ip = true;
	} else if (inet_pton(AF_INET6, s, h.ip) == 1) {
		h.is_ip = true;
	} else if (inet_pton(AF_INET, s, &a4) == 1) {
		h.ip[10] = 0xff;
		h.ip[11] = 0xff;
		memcpy(h.ip + 12, &a4, 4);
		h.is_ip = true;
	} else if (om_dir_fqdn_valid(s)) {
		for (size_t i = 0; i < n; i++)
			h.name[i] = (char)tolower((unsigned char)s[i]);
		if (h.name[n - 1] == '.')
			h.name[n - 1] = 0;
		*out = h;
		return 0;
	} else {
		return EINVAL;
	}
	/* Canonical text of the IP: dotted quad for IPv4 (mapped or not). */
	if (memcmp(h.ip, "\0\0\0\0\0\0\0\0\0\0\xff\xff", 12) == 0)
		inet_ntop(AF_INET, h.ip + 12, h.name, sizeof(h.name));
	else
		inet_ntop(AF_INET6, h.ip, h.name, sizeof(h.name));
	*out = h;
	return 0;
}

int om_dir_sockaddr_ip(const struct sockaddr *sa, uint8_t ip[16])
{
	if (!sa)
		return EAFNOSUPPORT;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		memset(ip, 0, 10);
		ip[10] = 0xff;
		ip[11] = 0xff;
		memcpy(ip + 12, &in->sin_addr, 4);
		return 0;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
		memcpy(ip, &in6->sin6_addr, 16);
		return 0;
	}
	return EAFNOSUPPORT;
}

bool om_dir_greeting_valid(const char *s)
{
	static const char prefix[] = "greetings/";
	size_t n = strlen(s), p = sizeof(prefix) - 1;
	if (n <= p || n > OM_DIR_NAME_MAX || strncmp(s, prefix, p) || s[p] == '.')
		return false;
	for (size_t i = p; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return false;
	}
	return true;
}
