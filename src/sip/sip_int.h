/* sip_int.h — private helpers shared by the files of the sip module:
 * character classes of RFC 3261 §25.1 and whitespace skipping.
 *
 * Inside a header value (the parser has already split header fields) a CR
 * or LF can only be part of a fold (CRLF followed by SP/HT), so "LWS" is
 * simply any run of SP, HT, CR and LF there. */
#ifndef OM_SIP_INT_H
#define OM_SIP_INT_H

#include "sip/sip.h"

#include <stdbool.h>
#include <stddef.h>

/* token = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" /
 *            "'" / "~") */
static inline bool sip_is_token(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return true;
	switch (c) {
	case '-':
	case '.':
	case '!':
	case '%':
	case '*':
	case '_':
	case '+':
	case '`':
	case '\'':
	case '~':
		return true;
	default:
		return false;
	}
}

static inline bool sip_is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static inline bool sip_is_alpha(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static inline bool sip_is_hex(unsigned char c)
{
	return sip_is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static inline bool sip_is_lws(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static inline size_t sip_skip_lws(struct om_str s, size_t i)
{
	while (i < s.len && sip_is_lws((unsigned char)s.p[i]))
		i++;
	return i;
}

static inline size_t sip_token_end(struct om_str s, size_t i)
{
	while (i < s.len && sip_is_token((unsigned char)s.p[i]))
		i++;
	return i;
}

static inline struct om_str sip_sub(struct om_str s, size_t from, size_t to)
{
	return (struct om_str){ s.p + from, to - from };
}

/* Case-insensitive ASCII compare that is safe with NUL bytes. */
bool om_sip_i_caseeq(struct om_str a, const char *b, size_t blen);
/* Slice without leading and trailing LWS. */
struct om_str om_sip_i_trim(struct om_str s);
/* Whole string is a token. */
bool om_sip_i_is_token(struct om_str s);
/* Skip a quoted-string starting at s.p[i] == '"'; returns the index after
 * the closing quote or 0 if unterminated. quoted-pair accepts any octet
 * but CR and LF after the backslash (RFC 3261 §25.1). */
size_t om_sip_i_quoted_end(struct om_str s, size_t i);
/* host [ ":" port ] of a SIP URI or a Via sent-by (RFC 3261 §25.1,
 * RFC 5118 §4). Fills host (IPv6 without brackets), port. */
int om_sip_i_hostport(struct om_str s, struct om_str *host, bool *ipv6, uint16_t *port,
                      bool *has_port);
/* Parse an unsigned decimal with at most max value: 0, EBADMSG, ERANGE. */
int om_sip_i_u64(struct om_str s, uint64_t max, uint64_t *out);

#endif
