/* route.c — which mailbox a call is for (R11; RFC 4458, RFC 7044, RFC
 * 5806, RFC 3455, RFC 3323/3325) and who is calling. See route.h for the
 * order and the rules; docs/modules/calls.md for the vendor formats.
 *
 * Header values are split here (commas outside quotes and <>) instead of
 * with the parser's list iterator so that one broken entry, or one broken
 * header line, is skipped while the rest is still read. */
#include "app/route.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* ------------------------------------------------------------------ */
/* Names                                                               */

const char *om_route_kind_name(enum om_route_kind k)
{
	static const char *const n[] = { "deposit", "subscriber", "ask-extension",
		                         "unknown-mailbox" };
	return (unsigned)k < 4 ? n[k] : "?";
}

const char *om_route_reason_name(enum om_route_reason r)
{
	static const char *const n[] = { "unavailable", "busy", "unconditional" };
	return (unsigned)r < 3 ? n[r] : "?";
}

const char *om_route_source_name(enum om_route_source s)
{
	static const char *const n[] = {
		"none", "target", "history-info", "diversion", "p-called-party-id", "request-uri"
	};
	return (unsigned)s < 6 ? n[s] : "?";
}

const char *om_route_caller_source_name(enum om_route_caller_source s)
{
	static const char *const n[] = { "none", "p-asserted-identity", "remote-party-id", "from" };
	return (unsigned)s < 4 ? n[s] : "?";
}

/* ------------------------------------------------------------------ */
/* Small helpers                                                       */

static void warn(struct om_route *r, const char *w)
{
	for (size_t i = 0; i < r->nwarn; i++)
		if (r->warn[i] == w)
			return;
	if (r->nwarn < OM_ROUTE_MAX_WARN)
		r->warn[r->nwarn++] = w;
}

static void copy_str(char *dst, size_t len, struct om_str s)
{
	size_t n = s.len < len - 1 ? s.len : len - 1;
	memcpy(dst, s.p, n);
	dst[n] = '\0';
}

static bool is_sep(char c)
{
	return c == ' ' || c == '-' || c == '.' || c == '(' || c == ')' || c == '\t';
}

int om_route_number(struct om_str user, char *out, size_t len)
{
	char buf[OM_ROUTE_NUM_MAX * 2];
	if (!user.len || user.len >= sizeof(buf))
		return EINVAL;
	long n = om_sip_unescape(user, buf, sizeof(buf) - 1);
	if (n < 0)
		return EINVAL;
	size_t o = 0;
	bool lead = true;
	for (long i = 0; i < n; i++) {
		char c = buf[i];
		if (c == ';')
			break; /* ;phone-context=, ;isub=, ;ext= ... */
		if (c == '+' && lead) {
			lead = false;
			continue;
		}
		if (is_sep(c))
			continue;
		if (c < '0' || c > '9')
			return EINVAL;
		lead = false;
		if (o + 1 >= len)
			return EINVAL;
		out[o++] = c;
	}
	if (!o)
		return EINVAL;
	out[o] = '\0';
	return 0;
}

/* The rightmost `digits` digits of a normalised number. */
static void extension_of(const char *num, int digits, char *out, size_t len)
{
	size_t n = strlen(num), d = digits > 0 ? (size_t)digits : n;
	const char *p = n > d ? num + n - d : num;
	snprintf(out, len, "%s", p);
}

/* The number a URI names: the user of sip:/sips:, the number of tel:. */
static int uri_number(const struct om_sip_uri *u, char *out, size_t len)
{
	if (u->scheme != OM_SIP_SCHEME_SIP && u->scheme != OM_SIP_SCHEME_SIPS &&
	    u->scheme != OM_SIP_SCHEME_TEL)
		return EINVAL;
	if (!u->user.len)
		return EINVAL;
	return om_route_number(u->user, out, len);
}

/* Our pilot? Equal digits, or one a suffix of the other when the shorter
 * has at least 4 digits (E.164 against the national or internal form). */
static bool is_pilot(const struct om_route_in *in, const char *num)
{
	char p[OM_ROUTE_NUM_MAX];
	if (!in->pilot || !in->pilot[0] || om_route_number(om_str_c(in->pilot), p, sizeof(p)))
		return false;
	size_t a = strlen(p), b = strlen(num);
	if (a == b)
		return !strcmp(p, num);
	const char *lng = a > b ? p : num, *sht = a > b ? num : p;
	size_t ls = a > b ? a : b, ss = a > b ? b : a;
	return ss >= 4 && !strcmp(lng + ls - ss, sht);
}

/* Next comma-separated element of a header value (commas inside quotes
 * and <> do not split). 0, ENOENT at the end, EBADMSG when the rest of
 * the value is unbalanced (it is consumed). */
static int split_next(struct om_str v, size_t *pos, struct om_str *elem)
{
	size_t i = *pos;
	while (i < v.len && (v.p[i] == ' ' || v.p[i] == '\t' || v.p[i] == '\r' || v.p[i] == '\n' ||
	                     v.p[i] == ','))
		i++;
	if (i >= v.len) {
		*pos = v.len;
		return ENOENT;
	}
	size_t st = i;
	bool quote = false, angle = false;
	for (; i < v.len; i++) {
		char c = v.p[i];
		if (quote) {
			if (c == '\\' && i + 1 < v.len)
				i++;
			else if (c == '"')
				quote = false;
		} else if (c == '"') {
			quote = true;
		} else if (c == '<') {
			if (angle)
				break;
			angle = true;
		} else if (c == '>') {
			angle = false;
		} else if (c == ',' && !angle) {
			break;
		}
	}
	if (quote || angle) {
		*pos = v.len;
		return EBADMSG;
	}
	*pos = i;
	*elem = om_str_trim((struct om_str){ v.p + st, i - st });
	return elem->len ? 0 : ENOENT;
}

static struct om_str unquote(struct om_str s)
{
	s = om_str_trim(s);
	if (s.len >= 2 && s.p[0] == '"' && s.p[s.len - 1] == '"')
		return (struct om_str){ s.p + 1, s.len - 2 };
	return s;
}

/* ------------------------------------------------------------------ */
/* Causes                                                              */

static enum om_route_reason reason_of_code(unsigned code)
{
	switch (code) {
	case 486:
	case 600:
		return OM_ROUTE_BUSY;
	case 302:
		return OM_ROUTE_UNCONDITIONAL;
	default:
		return OM_ROUTE_UNAVAILABLE;
	}
}

static enum om_route_reason reason_of(struct om_str cause)
{
	uint64_t n;
	cause = unquote(cause);
	if (om_str_to_u64(cause, 999, &n) == 0)
		return reason_of_code((unsigned)n);
	if (om_str_caseeq_c(cause, "user-busy"))
		return OM_ROUTE_BUSY;
	if (om_str_caseeq_c(cause, "unconditional"))
		return OM_ROUTE_UNCONDITIONAL;
	return OM_ROUTE_UNAVAILABLE;
}

static void set_cause(struct om_route *r, struct om_str cause, enum om_route_reason reason)
{
	copy_str(r->cause, sizeof(r->cause), unquote(cause));
	r->reason = reason;
}

/* A Reason header value (RFC 3326): "SIP;cause=486;text=..." or
 * "Q.850;cause=17". 0 with the reason and the cause text, ENOENT when it
 * carries no cause, EINVAL when malformed. */
static int reason_header(struct om_str v, enum om_route_reason *reason, struct om_str *cause)
{
	v = om_str_trim(v);
	const char *semi = memchr(v.p, ';', v.len);
	if (!semi)
		return ENOENT;
	struct om_str proto = om_str_trim((struct om_str){ v.p, (size_t)(semi - v.p) });
	struct om_str params = { semi + 1, v.len - (size_t)(semi - v.p) - 1 };
	struct om_str c;
	uint64_t n;
	if (om_sip_param_find(params, "cause", &c) != 0)
		return ENOENT;
	c = om_str_trim(c);
	if (om_str_to_u64(c, 999, &n) != 0)
		return EINVAL;
	if (om_str_caseeq_c(proto, "SIP")) {
		*reason = reason_of_code((unsigned)n);
	} else if (om_str_caseeq_c(proto, "Q.850")) {
		/* 17 user busy; 18 no user responding, 19 no answer: unavailable */
		*reason = n == 17 ? OM_ROUTE_BUSY : OM_ROUTE_UNAVAILABLE;
	} else {
		return EINVAL;
	}
	*cause = c;
	return 0;
}

/* ------------------------------------------------------------------ */
/* 1. RFC 4458 target in the Request-URI                               */

static bool by_target(const struct om_route_in *in, struct om_route *r)
{
	struct om_sip_uri ruri, t;
	struct om_str tv, cv;
	char dec[1024], num[OM_ROUTE_NUM_MAX];
	if (om_sip_uri_parse(in->invite->ruri, 0, &ruri) != 0 ||
	    om_sip_param_find(ruri.params, "target", &tv) != 0)
		return false;
	long n = om_sip_unescape(tv, dec, sizeof(dec));
	if (n <= 0 || memchr(dec, '\0', (size_t)n) ||
	    om_sip_uri_parse((struct om_str){ dec, (size_t)n }, sizeof(dec), &t) != 0 ||
	    uri_number(&t, num, sizeof(num)) != 0) {
		warn(r, "Request-URI target parameter malformed: skipped");
		return false;
	}
	if (is_pilot(in, num))
		return false;
	snprintf(r->number, sizeof(r->number), "%s", num);
	if (om_sip_param_find(ruri.params, "cause", &cv) == 0)
		set_cause(r, cv, reason_of(cv));
	r->source = OM_ROUTE_SRC_TARGET;
	return true;
}

/* ------------------------------------------------------------------ */
/* 2. History-Info (RFC 7044)                                          */

#define HI_MAX     32
#define HI_MAX_IDX 16

struct hi_entry {
	struct om_sip_uri uri;
	struct om_str headers; /* the URI's ?headers, raw */
	uint32_t idx[HI_MAX_IDX];
	size_t nidx;
	uint32_t mp[HI_MAX_IDX];
	size_t nmp;
	bool has_reason; /* escaped Reason: this entry diverted */
	enum om_route_reason reason;
	struct om_str reason_cause;
	bool has_cause; /* cause= URI parameter: retargeted to this entry */
	struct om_str cause;
};

/* index = 1*DIGIT *( "." 1*DIGIT ) */
static int parse_index(struct om_str v, uint32_t *out, size_t *n)
{
	size_t i = 0, k = 0;
	v = unquote(v);
	if (!v.len)
		return EINVAL;
	while (i < v.len) {
		size_t st = i;
		uint64_t x = 0;
		while (i < v.len && v.p[i] >= '0' && v.p[i] <= '9') {
			x = x * 10 + (uint64_t)(v.p[i] - '0');
			if (x > 0x7fffffff)
				return EINVAL;
			i++;
		}
		if (i == st || k == HI_MAX_IDX)
			return EINVAL;
		out[k++] = (uint32_t)x;
		if (i < v.len) {
			if (v.p[i] != '.' || i + 1 == v.len)
				return EINVAL;
			i++;
		}
	}
	*n = k;
	return 0;
}

static int idx_cmp(const uint32_t *a, size_t na, const uint32_t *b, size_t nb)
{
	for (size_t i = 0; i < na && i < nb; i++)
		if (a[i] != b[i])
			return a[i] < b[i] ? -1 : 1;
	return na < nb ? -1 : na > nb ? 1 : 0;
}

/* The Reason header inside the entry URI's headers ("Reason=SIP%3Bcause%3D486",
 * unescaped or lower-case too). 0 found, ENOENT none, EINVAL malformed. */
static int hi_reason(struct om_str h, enum om_route_reason *reason, struct om_str *cause, char *dec,
                     size_t declen)
{
	size_t i = 0;
	while (i < h.len) {
		size_t e = i;
		while (e < h.len && h.p[e] != '&')
			e++;
		struct om_str kv = { h.p + i, e - i };
		i = e + 1;
		const char *eq = memchr(kv.p, '=', kv.len);
		if (!eq)
			continue;
		struct om_str name = { kv.p, (size_t)(eq - kv.p) };
		if (!om_str_caseeq_c(name, "Reason"))
			continue;
		struct om_str val = { eq + 1, kv.len - (size_t)(eq - kv.p) - 1 };
		long n = om_sip_unescape(val, dec, declen);
		if (n < 0 || memchr(dec, '\0', (size_t)n))
			return EINVAL;
		return reason_header((struct om_str){ dec, (size_t)n }, reason, cause);
	}
	return ENOENT;
}

/* An entry whose URI headers break the grammar (an unescaped
 * "?Reason=SIP;cause=486", common in the field): parsed again without
 * them, from a copy in `cp`; the headers are kept raw. */
static int hi_parse_lenient(struct om_str el, char *cp, size_t cplen, struct om_sip_addr *a,
                            struct om_str *headers)
{
	const char *lt = memchr(el.p, '<', el.len);
	if (!lt)
		return EINVAL;
	const char *gt = memchr(lt, '>', el.len - (size_t)(lt - el.p));
	const char *q = gt ? memchr(lt, '?', (size_t)(gt - lt)) : NULL;
	if (!q)
		return EINVAL;
	size_t head = (size_t)(q - el.p), tail = el.len - (size_t)(gt - el.p);
	if (head + tail >= cplen)
		return EINVAL;
	memcpy(cp, el.p, head);
	memcpy(cp + head, gt, tail);
	if (om_sip_addr_parse((struct om_str){ cp, head + tail }, 0, a) != 0)
		return EINVAL;
	*headers = (struct om_str){ q + 1, (size_t)(gt - q - 1) };
	return 0;
}

static bool by_history_info(const struct om_route_in *in, struct om_route *r)
{
	struct hi_entry e[HI_MAX];
	char dec[HI_MAX][256]; /* decoded Reason values the entries point into */
	char cp[HI_MAX][512];  /* lenient copies the entries' URIs point into */
	size_t n = 0;
	const struct om_sip_msg *m = in->invite;
	for (const struct om_sip_hdr *h = om_sip_msg_hdr(m, OM_SIP_HDR_HISTORY_INFO); h;
	     h = om_sip_msg_hdr_next(m, h)) {
		size_t pos = 0;
		struct om_str el;
		int rc;
		while ((rc = split_next(h->value, &pos, &el)) != ENOENT) {
			struct om_sip_addr a;
			struct om_str v, hdrs = OM_STR_NULL;
			if (n == HI_MAX) {
				warn(r, "History-Info has too many entries: the rest skipped");
				break;
			}
			if (rc == EBADMSG) {
				warn(r, "History-Info entry malformed: skipped");
				continue;
			}
			if (om_sip_addr_parse(el, 0, &a) == 0) {
				hdrs = a.uri.headers;
			} else if (hi_parse_lenient(el, cp[n], sizeof(cp[n]), &a, &hdrs) != 0) {
				warn(r, "History-Info entry malformed: skipped");
				continue;
			}
			struct hi_entry *x = &e[n];
			memset(x, 0, sizeof(*x));
			x->uri = a.uri;
			x->headers = hdrs;
			if (om_sip_param_find(a.params, "index", &v) != 0 ||
			    parse_index(v, x->idx, &x->nidx) != 0) {
				warn(r, "History-Info entry without a valid index: skipped");
				continue;
			}
			if (om_sip_param_find(a.params, "mp", &v) == 0 &&
			    parse_index(v, x->mp, &x->nmp) != 0) {
				warn(r, "History-Info mp parameter malformed: ignored");
				x->nmp = 0;
			}
			rc = hi_reason(x->headers, &x->reason, &x->reason_cause, dec[n],
			               sizeof(dec[n]));
			if (rc == EINVAL) {
				warn(r, "History-Info Reason malformed: entry skipped");
				continue;
			}
			x->has_reason = rc == 0;
			if (om_sip_param_find(a.uri.params, "cause", &v) == 0) {
				x->has_cause = true;
				x->cause = v;
			}
			n++;
		}
	}
	/* The highest index carrying a cause decides. */
	struct hi_entry *best = NULL;
	for (size_t i = 0; i < n; i++) {
		if (!e[i].has_reason && !e[i].has_cause)
			continue;
		if (!best || idx_cmp(e[i].idx, e[i].nidx, best->idx, best->nidx) > 0)
			best = &e[i];
	}
	if (!best)
		return false;
	struct hi_entry *mb = best;
	struct om_str cause = best->has_reason ? best->reason_cause : best->cause;
	enum om_route_reason reason = best->has_reason ? best->reason : reason_of(best->cause);
	char num[OM_ROUTE_NUM_MAX];
	/* A Reason on an entry naming our own pilot is the older reading
	 * (why the call was retargeted TO it): treat it like a cause. */
	bool to_pilot = uri_number(&best->uri, num, sizeof(num)) == 0 && is_pilot(in, num);
	if (!best->has_reason || to_pilot) {
		/* Retargeted to `best`: the mailbox is its mp, else its parent. */
		struct hi_entry *to = NULL;
		for (size_t i = 0; best->nmp && i < n && !to; i++)
			if (!idx_cmp(e[i].idx, e[i].nidx, best->mp, best->nmp))
				to = &e[i];
		for (size_t i = 0; !to && best->nidx > 1 && i < n; i++)
			if (!idx_cmp(e[i].idx, e[i].nidx, best->idx, best->nidx - 1))
				to = &e[i];
		if (to)
			mb = to;
	}
	if (uri_number(&mb->uri, num, sizeof(num)) != 0) {
		warn(r, "History-Info names no number: skipped");
		return false;
	}
	if (is_pilot(in, num))
		return false;
	snprintf(r->number, sizeof(r->number), "%s", num);
	set_cause(r, cause, reason);
	r->source = OM_ROUTE_SRC_HISTORY_INFO;
	return true;
}

/* ------------------------------------------------------------------ */
/* 3. Diversion (RFC 5806)                                             */

static bool by_diversion(const struct om_route_in *in, struct om_route *r)
{
	const struct om_sip_msg *m = in->invite;
	bool found = false;
	for (const struct om_sip_hdr *h = om_sip_msg_hdr(m, OM_SIP_HDR_DIVERSION); h;
	     h = om_sip_msg_hdr_next(m, h)) {
		size_t pos = 0;
		struct om_str el;
		int rc;
		while ((rc = split_next(h->value, &pos, &el)) != ENOENT) {
			struct om_sip_addr a;
			char num[OM_ROUTE_NUM_MAX];
			if (rc == EBADMSG || om_sip_addr_parse(el, 0, &a) != 0 ||
			    uri_number(&a.uri, num, sizeof(num)) != 0) {
				warn(r, "Diversion entry malformed: skipped");
				continue;
			}
			if (is_pilot(in, num))
				continue; /* a diversion to our own pilot says nothing */
			struct om_str reason = OM_STR_NULL;
			(void)om_sip_param_find(a.params, "reason", &reason);
			snprintf(r->number, sizeof(r->number), "%s", num);
			r->cause[0] = '\0';
			r->reason = OM_ROUTE_UNAVAILABLE;
			if (reason.len)
				set_cause(r, reason, reason_of(reason));
			found = true;
			if (!in->diversion_bottom)
				goto done; /* the top-most: the first one */
		}
	}
done:
	if (found)
		r->source = OM_ROUTE_SRC_DIVERSION;
	return found;
}

/* ------------------------------------------------------------------ */
/* 4, 5. P-Called-Party-ID, Request-URI                                 */

static bool by_called(const struct om_route_in *in, struct om_route *r)
{
	const struct om_sip_msg *m = in->invite;
	const struct om_sip_hdr *h = om_sip_msg_hdr_by_name(m, "P-Called-Party-ID");
	struct om_sip_addr a;
	char num[OM_ROUTE_NUM_MAX];
	if (h) {
		size_t pos = 0;
		struct om_str el;
		if (split_next(h->value, &pos, &el) == 0 && om_sip_addr_parse(el, 0, &a) == 0 &&
		    uri_number(&a.uri, num, sizeof(num)) == 0) {
			snprintf(r->number, sizeof(r->number), "%s", num);
			r->source = OM_ROUTE_SRC_P_CALLED_PARTY_ID;
			return true;
		}
		warn(r, "P-Called-Party-ID malformed: skipped");
	}
	struct om_sip_uri u;
	if (om_sip_uri_parse(m->ruri, 0, &u) == 0 && uri_number(&u, num, sizeof(num)) == 0) {
		snprintf(r->number, sizeof(r->number), "%s", num);
		r->source = OM_ROUTE_SRC_REQUEST_URI;
		return true;
	}
	return false; /* "sip:voicemail@um": no number, the pilot by name */
}

/* ------------------------------------------------------------------ */
/* The caller                                                          */

/* Privacy (RFC 3323): priv-values separated by ';' (and ',' in practice). */
static bool privacy_hides(const struct om_sip_msg *m)
{
	for (const struct om_sip_hdr *h = om_sip_msg_hdr(m, OM_SIP_HDR_PRIVACY); h;
	     h = om_sip_msg_hdr_next(m, h)) {
		struct om_str v = h->value;
		size_t i = 0;
		while (i < v.len) {
			size_t e = i;
			while (e < v.len && v.p[e] != ';' && v.p[e] != ',')
				e++;
			struct om_str t = om_str_trim((struct om_str){ v.p + i, e - i });
			if (om_str_caseeq_c(t, "id") || om_str_caseeq_c(t, "user") ||
			    om_str_caseeq_c(t, "header"))
				return true;
			i = e + 1;
		}
	}
	return false;
}

static void take_caller(struct om_route *r, const struct om_sip_addr *a,
                        enum om_route_caller_source src)
{
	char num[OM_ROUTE_NUM_MAX];
	if (uri_number(&a->uri, num, sizeof(num)) == 0) {
		snprintf(r->caller, sizeof(r->caller), "%s", num);
	} else {
		char dec[OM_ROUTE_NUM_MAX];
		long n = om_sip_unescape(a->uri.user, dec, sizeof(dec) - 1);
		size_t o = 0;
		/* A name ("alice"): printable characters only. */
		for (long i = 0; i < n && o + 1 < sizeof(r->caller); i++)
			if ((unsigned char)dec[i] > 0x20 && (unsigned char)dec[i] < 0x7f)
				r->caller[o++] = dec[i];
		r->caller[o] = '\0';
	}
	struct om_str d = unquote(a->display);
	size_t o = 0;
	for (size_t i = 0; i < d.len && o + 1 < sizeof(r->caller_name); i++) {
		unsigned char c = (unsigned char)d.p[i];
		if (c == '\\' && i + 1 < d.len)
			c = (unsigned char)d.p[++i];
		if (c >= 0x20 && c != 0x7f)
			r->caller_name[o++] = (char)c;
	}
	r->caller_name[o] = '\0';
	r->caller_source = src;
}

static bool addr_is_anonymous(const struct om_sip_addr *a)
{
	return om_str_caseeq_c(a->uri.user, "anonymous") ||
	       om_str_caseeq_c(a->uri.host, "anonymous.invalid");
}

static void caller(const struct om_route_in *in, struct om_route *r)
{
	const struct om_sip_msg *m = in->invite;
	struct om_sip_addr a;
	bool hidden = privacy_hides(m);
	/* P-Asserted-Identity: the first usable entry (sip: or tel:). */
	for (const struct om_sip_hdr *h = om_sip_msg_hdr(m, OM_SIP_HDR_P_ASSERTED_IDENTITY);
	     h && r->caller_source == OM_ROUTE_CALLER_NONE; h = om_sip_msg_hdr_next(m, h)) {
		size_t pos = 0;
		struct om_str el;
		int rc;
		while ((rc = split_next(h->value, &pos, &el)) != ENOENT) {
			if (rc == EBADMSG || om_sip_addr_parse(el, 0, &a) != 0 || !a.uri.user.len) {
				warn(r, "P-Asserted-Identity entry malformed: skipped");
				continue;
			}
			if (addr_is_anonymous(&a))
				hidden = true;
			take_caller(r, &a, OM_ROUTE_CALLER_PAI);
			break;
		}
	}
	/* Remote-Party-ID (draft-ietf-sip-privacy-04, still sent by PBXs). */
	for (const struct om_sip_hdr *h = om_sip_msg_hdr(m, OM_SIP_HDR_OTHER);
	     h && r->caller_source == OM_ROUTE_CALLER_NONE; h = om_sip_msg_hdr_next(m, h)) {
		if (!om_str_caseeq_c(h->name, "Remote-Party-ID"))
			continue;
		size_t pos = 0;
		struct om_str el, v;
		int rc;
		while ((rc = split_next(h->value, &pos, &el)) != ENOENT) {
			if (rc == EBADMSG || om_sip_addr_parse(el, 0, &a) != 0) {
				warn(r, "Remote-Party-ID entry malformed: skipped");
				continue;
			}
			if (om_sip_param_find(a.params, "party", &v) == 0 &&
			    !om_str_caseeq_c(unquote(v), "calling"))
				continue;
			if (om_sip_param_find(a.params, "privacy", &v) == 0 &&
			    (om_str_caseeq_c(unquote(v), "full") ||
			     om_str_caseeq_c(unquote(v), "uri")))
				hidden = true;
			if (addr_is_anonymous(&a))
				hidden = true;
			take_caller(r, &a, OM_ROUTE_CALLER_RPID);
			break;
		}
	}
	if (om_sip_msg_from(m, &a) == 0) {
		if (addr_is_anonymous(&a))
			hidden = true;
		if (r->caller_source == OM_ROUTE_CALLER_NONE)
			take_caller(r, &a, OM_ROUTE_CALLER_FROM);
	}
	if (hidden) {
		r->anonymous = true;
		r->caller[0] = '\0';
		r->caller_name[0] = '\0';
	}
}

/* ------------------------------------------------------------------ */
/* The decision                                                        */

static bool mailbox_exists(const struct om_route_in *in, const char *ext)
{
	return in->mailbox_h && in->mailbox_h(ext, in->arg);
}

void om_route_decide(const struct om_route_in *in, struct om_route *r)
{
	memset(r, 0, sizeof(*r));
	r->reason = OM_ROUTE_UNAVAILABLE;
	caller(in, r);
	bool diverted = by_target(in, r) || by_history_info(in, r) || by_diversion(in, r);
	if (diverted) {
		extension_of(r->number, in->digits, r->mailbox, sizeof(r->mailbox));
		r->kind =
		    mailbox_exists(in, r->mailbox) ? OM_ROUTE_DEPOSIT : OM_ROUTE_UNKNOWN_MAILBOX;
	} else if (by_called(in, r) && !is_pilot(in, r->number)) {
		/* Called directly at an extension (a PBX that retargets the
		 * Request-URI to the mailbox without any diversion header). */
		extension_of(r->number, in->digits, r->mailbox, sizeof(r->mailbox));
		if (mailbox_exists(in, r->mailbox)) {
			r->kind = OM_ROUTE_DEPOSIT;
		} else {
			r->kind = OM_ROUTE_ASK_EXTENSION;
			r->mailbox[0] = '\0';
		}
	} else {
		/* The pilot (or a name such as sip:voicemail@...). */
		if (r->source == OM_ROUTE_SRC_NONE)
			r->source = OM_ROUTE_SRC_REQUEST_URI;
		r->kind = OM_ROUTE_ASK_EXTENSION;
		char num[OM_ROUTE_NUM_MAX];
		if (!r->anonymous && r->caller[0] &&
		    om_route_number(om_str_c(r->caller), num, sizeof(num)) == 0 &&
		    strlen(num) == (size_t)in->digits && mailbox_exists(in, num)) {
			r->kind = OM_ROUTE_SUBSCRIBER;
			snprintf(r->mailbox, sizeof(r->mailbox), "%s", num);
		}
	}
	r->busy_greeting = r->reason == OM_ROUTE_BUSY;
}
