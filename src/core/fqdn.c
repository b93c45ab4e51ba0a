/* fqdn.c — host-name rules and canonical form (see fqdn.h; RFC 1035
 * §2.3.4, RFC 1123 §2.1, RFC 4343). */
#include "core/fqdn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

static int fail(char *why, size_t whylen, const char *fmt, const char *arg, size_t arglen)
{
	if (why && whylen) {
		char part[24];
		/* A part of the input quoted in the message: bounded, and only
		 * printable ASCII (the rest shown as '?'). */
		size_t n = arglen < 16 ? arglen : 16, k = 0;
		for (size_t i = 0; arg && i < n; i++)
			part[k++] = arg[i] > 0x20 && arg[i] < 0x7f ? arg[i] : '?';
		if (arg && arglen > 16) {
			part[k++] = '.';
			part[k++] = '.';
			part[k++] = '.';
		}
		part[k] = '\0';
		/* fmt holds one "%s": the text before and after it. */
		const char *mark = strstr(fmt, "%s");
		int pre = mark ? (int)(mark - fmt) : (int)strlen(fmt);
		snprintf(why, whylen, "%.*s%s%s", pre, fmt, mark ? part : "", mark ? mark + 2 : "");
	}
	return EINVAL;
}

static bool is_ldh(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-';
}

int om_fqdn_check(const char *s, unsigned flags, char *why, size_t whylen)
{
	size_t n = s ? strlen(s) : 0, labels = 0;
	unsigned char ip[16];
	if (n == 0)
		return fail(why, whylen, "the name is empty%s", "", 0);
	if (inet_pton(AF_INET, s, ip) == 1 || inet_pton(AF_INET6, s, ip) == 1 ||
	    (s[0] == '[' && strchr(s, ']')))
		return fail(why, whylen, "an IP address is not a DNS name%s", "", 0);
	if (s[0] == '.')
		return fail(why, whylen, "it starts with a dot%s", "", 0);
	if (n > 1 && s[n - 1] == '.')
		n--; /* the root */
	if (n > OM_FQDN_MAX)
		return fail(why, whylen, "it is longer than 253 characters%s", "", 0);
	size_t start = 0;
	bool digits_only = true;
	for (size_t i = 0; i <= n; i++) {
		if (i < n && s[i] != '.') {
			char c = s[i];
			if (c == '*')
				return fail(why, whylen, "wildcards are not allowed%s", "", 0);
			if (!is_ldh(c))
				return fail(why, whylen,
				            "character '%s' is not allowed (letters, digits, '-' "
				            "and '.' only)",
				            s + i, 1);
			if (c < '0' || c > '9')
				digits_only = false;
			continue;
		}
		size_t len = i - start;
		if (len == 0)
			return fail(why, whylen, "empty label: two dots in a row%s", "", 0);
		if (len > OM_LABEL_MAX)
			return fail(why, whylen, "label '%s' is longer than 63 characters",
			            s + start, len);
		if (s[start] == '-' || s[i - 1] == '-')
			return fail(why, whylen, "label '%s' starts or ends with '-'", s + start,
			            len);
		labels++;
		if (i == n && digits_only)
			return fail(why, whylen, "the last label '%s' is all digits (not a name)",
			            s + start, len);
		start = i + 1;
		digits_only = true;
	}
	if ((flags & OM_FQDN_MULTI_LABEL) && labels < 2)
		return fail(why, whylen,
		            "'%s' is not fully qualified: give the domain too (e.g. "
		            "name.example.com)",
		            s, n);
	return 0;
}

int om_fqdn_norm(const char *s, size_t len, char *out, size_t outlen)
{
	if (!outlen)
		return ENAMETOOLONG;
	if (len > 1 && s[len - 1] == '.')
		len--;
	if (len >= outlen) {
		out[0] = '\0';
		return ENAMETOOLONG;
	}
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		out[i] = c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
	}
	out[len] = '\0';
	return 0;
}
