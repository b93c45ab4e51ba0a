/* body.c — the session description a message carries (RFC 3261 §7.4,
 * RFC 5621 message bodies, RFC 2046 §5.1 multipart):
 *
 *   Content-Type: application/sdp        -> the body
 *   Content-Type: multipart/mixed; boundary=B
 *     preamble CRLF "--" B CRLF part ... CRLF "--" B "--" epilogue
 *     part = headers CRLF CRLF content   -> the first application/sdp one
 *
 * Line ends may be CRLF or bare LF inside a body (gateways differ). At most
 * 16 parts are looked at. The result is a slice of the message. */
#include "sip/sip_int.h"

#include <errno.h>
#include <string.h>

#define MAX_PARTS 16

/* The next line starting at *pos: [start, end) without its line end. */
static bool next_line(struct om_str b, size_t *pos, struct om_str *line)
{
	if (*pos >= b.len)
		return false;
	const char *p = b.p + *pos, *nl = memchr(p, '\n', b.len - *pos);
	size_t n = nl ? (size_t)(nl - p) : b.len - *pos;
	*line = (struct om_str){ p, n && p[n - 1] == '\r' ? n - 1 : n };
	*pos += n + (nl ? 1 : 0);
	return true;
}

/* "--boundary" or "--boundary--" (trailing white space allowed). */
static int delimiter(struct om_str line, struct om_str bnd)
{
	if (line.len < bnd.len + 2 || line.p[0] != '-' || line.p[1] != '-' ||
	    memcmp(line.p + 2, bnd.p, bnd.len) != 0)
		return 0;
	struct om_str rest =
	    om_sip_i_trim((struct om_str){ line.p + 2 + bnd.len, line.len - 2 - bnd.len });
	if (!rest.len)
		return 1;
	if (rest.len == 2 && rest.p[0] == '-' && rest.p[1] == '-')
		return 2; /* the close delimiter */
	return 0;
}

/* Content-Type of one part's header lines: is it application/sdp? */
static bool part_is_sdp(struct om_str hdrs)
{
	size_t pos = 0;
	struct om_str line;
	while (next_line(hdrs, &pos, &line)) {
		const char *colon = memchr(line.p, ':', line.len);
		if (!colon)
			continue;
		struct om_str name =
		    om_sip_i_trim((struct om_str){ line.p, (size_t)(colon - line.p) });
		if (!om_sip_i_caseeq(name, "Content-Type", 12) && !om_sip_i_caseeq(name, "c", 1))
			continue;
		struct om_str v = om_sip_i_trim(
		    (struct om_str){ colon + 1, line.len - (size_t)(colon - line.p) - 1 });
		const char *semi = memchr(v.p, ';', v.len);
		if (semi)
			v = om_sip_i_trim((struct om_str){ v.p, (size_t)(semi - v.p) });
		return om_sip_i_caseeq(v, "application/sdp", 15);
	}
	return false;
}

int om_sip_msg_sdp(const struct om_sip_msg *m, struct om_str *sdp)
{
	struct om_str type, params, bnd;
	if (!m->body.len || om_sip_msg_content_type(m, &type, &params) != 0)
		return ENOENT;
	if (om_sip_i_caseeq(type, "application/sdp", 15)) {
		*sdp = m->body;
		return 0;
	}
	if (!om_sip_i_caseeq(type, "multipart/mixed", 15) &&
	    !om_sip_i_caseeq(type, "multipart/related", 17) &&
	    !om_sip_i_caseeq(type, "multipart/alternative", 21))
		return ENOENT;
	if (om_sip_param_find(params, "boundary", &bnd) != 0)
		return EBADMSG;
	bnd = om_sip_i_trim(bnd);
	if (bnd.len >= 2 && bnd.p[0] == '"' && bnd.p[bnd.len - 1] == '"')
		bnd = (struct om_str){ bnd.p + 1, bnd.len - 2 };
	if (!bnd.len || bnd.len > 70) /* RFC 2046 §5.1.1 */
		return EBADMSG;
	struct om_str b = m->body, line;
	size_t pos = 0, parts = 0;
	/* The preamble, up to the first delimiter. */
	for (;;) {
		if (!next_line(b, &pos, &line))
			return EBADMSG;
		int d = delimiter(line, bnd);
		if (d == 1)
			break;
		if (d == 2)
			return ENOENT;
	}
	while (parts++ < MAX_PARTS) {
		/* Headers: up to an empty line (none at all is allowed). */
		size_t hstart = pos, hend = pos;
		for (;;) {
			size_t before = pos;
			if (!next_line(b, &pos, &line))
				return EBADMSG;
			if (!line.len) {
				hend = before;
				break;
			}
		}
		/* Content: up to the line end before the next delimiter. */
		size_t cstart = pos, cend = pos;
		int d = 0;
		for (;;) {
			size_t before = pos;
			if (!next_line(b, &pos, &line))
				return EBADMSG; /* no close delimiter */
			if ((d = delimiter(line, bnd)) != 0) {
				cend = before;
				break;
			}
		}
		/* The line end before a delimiter belongs to it (§5.1.1). */
		if (cend > cstart && b.p[cend - 1] == '\n')
			cend--;
		if (cend > cstart && b.p[cend - 1] == '\r')
			cend--;
		if (part_is_sdp((struct om_str){ b.p + hstart, hend - hstart })) {
			*sdp = (struct om_str){ b.p + cstart, cend - cstart };
			return 0;
		}
		if (d == 2)
			return ENOENT;
	}
	return ENOENT;
}
