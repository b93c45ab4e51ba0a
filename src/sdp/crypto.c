/* crypto.c — SDES a=crypto attributes (RFC 4568 §9.1, §6) and the SRTP
 * crypto suites openum knows (RFC 4568 §6.2, RFC 6188 §7.1, RFC 7714 §14.2).
 *
 *   crypto-attr   = "crypto:" tag 1*WSP crypto-suite 1*WSP key-params
 *                   *(1*WSP session-param)
 *   tag           = 1*9DIGIT
 *   crypto-suite  = 1*(ALPHA / DIGIT / "_")
 *   key-params    = key-param *(";" key-param)
 *   key-param     = key-method ":" key-info
 *   key-method    = "inline" / key-method-ext
 *   key-info      = key-salt ["|" lifetime] ["|" mki]     ; for "inline"
 *   key-salt      = 1*(base64)                           ; key || salt
 *   lifetime      = ["2^"] 1*(DIGIT)
 *   mki           = mki-value ":" mki-length
 *   mki-value     = 1*DIGIT
 *   mki-length    = 1*3DIGIT                             ; 1..128
 *   session-param = "KDR=" 1*2DIGIT                      ; 0..24
 *                 / "UNENCRYPTED_SRTP" / "UNENCRYPTED_SRTCP"
 *                 / "UNAUTHENTICATED_SRTP"
 *                 / "FEC_ORDER=" ("FEC_SRTP" / "SRTP_FEC")
 *                 / "FEC_KEY=" key-params
 *                 / "WSH=" 2*DIGIT                       ; >= 64
 *                 / srtp-session-extension
 *
 * ABNF literals are case-insensitive, so suite names, "inline" and the
 * session parameters are matched ignoring case (PJSIP's
 * 300_srtp_crypto_case_insensitive sends "AeS_Cm_128_HmAC_shA1_80").
 *
 * Two outcomes besides success: a syntax error (EINVAL: the attribute is
 * garbage, the media's crypto cannot be trusted) and a well-formed line
 * openum will not use (`unusable`: the answerer tries the next line, RFC
 * 4568 §7.1.2). openum implements MKIs of 1-4 octets (one key per line),
 * but neither a key derivation rate nor the weakened modes, so those lines
 * are unusable whatever the plan; so is a lifetime too short for a call
 * (openum never re-keys: under 2^20 packets) or beyond what RFC 3711 §9.2
 * allows any suite (2^48). */
#include "sdp/sdp.h"

#include <errno.h>
#include <string.h>

#include <openssl/crypto.h>

static const struct {
	const char *name;
	size_t key, salt;
} suites[] = {
	[OM_SDP_SUITE_UNKNOWN] = { "UNKNOWN", 0, 0 },
	[OM_SDP_AES_CM_128_HMAC_SHA1_80] = { "AES_CM_128_HMAC_SHA1_80", 16, 14 },
	[OM_SDP_AES_CM_128_HMAC_SHA1_32] = { "AES_CM_128_HMAC_SHA1_32", 16, 14 },
	[OM_SDP_AES_256_CM_HMAC_SHA1_80] = { "AES_256_CM_HMAC_SHA1_80", 32, 14 },
	[OM_SDP_AEAD_AES_128_GCM] = { "AEAD_AES_128_GCM", 16, 12 },
	[OM_SDP_AEAD_AES_256_GCM] = { "AEAD_AES_256_GCM", 32, 12 },
};

static bool suite_ok(enum om_sdp_crypto_suite s)
{
	return (unsigned)s <= OM_SDP_SUITE_COUNT;
}

const char *om_sdp_suite_name(enum om_sdp_crypto_suite s)
{
	return suite_ok(s) ? suites[s].name : "UNKNOWN";
}

size_t om_sdp_suite_key_len(enum om_sdp_crypto_suite s)
{
	return suite_ok(s) ? suites[s].key : 0;
}

size_t om_sdp_suite_salt_len(enum om_sdp_crypto_suite s)
{
	return suite_ok(s) ? suites[s].salt : 0;
}

enum om_sdp_crypto_suite om_sdp_suite_parse(struct om_str name)
{
	for (unsigned i = 1; i <= OM_SDP_SUITE_COUNT; i++)
		if (om_str_caseeq_c(name, suites[i].name))
			return (enum om_sdp_crypto_suite)i;
	return OM_SDP_SUITE_UNKNOWN;
}

size_t om_sdp_mki_bytes(const struct om_sdp_crypto_key *k, uint8_t *out)
{
	size_t n = k->mki_len <= OM_SDP_MKI_MAX ? k->mki_len : 0;
	for (size_t i = 0; i < n; i++)
		out[i] = (uint8_t)(k->mki_value >> (8 * (n - 1 - i)));
	return n;
}

void om_sdp_crypto_clear(struct om_sdp_crypto *c)
{
	OPENSSL_cleanse(c->keysalt, sizeof(c->keysalt));
	c->keysalt_len = 0;
}

/* ---- base64 (RFC 4648 §4), strict ---------------------------------------- */

static int b64_val(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* Padding is optional (several SDES peers omit it) but, when present, must
 * complete the last quantum; unused trailing bits must be zero. 0, EINVAL
 * (not base64), E2BIG (decodes to more than cap bytes). */
static int b64_decode(struct om_str in, uint8_t *out, size_t cap, size_t *outlen)
{
	size_t n = in.len, pad = 0;
	while (n > 0 && in.p[n - 1] == '=' && pad < 2) {
		n--;
		pad++;
	}
	if (n == 0 || (pad && (n + pad) % 4 != 0) || n % 4 == 1)
		return EINVAL;
	size_t need = n / 4 * 3 + (n % 4 ? n % 4 - 1 : 0);
	if (need > cap)
		return E2BIG;
	uint32_t acc = 0;
	unsigned bits = 0;
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		int v = b64_val((unsigned char)in.p[i]);
		if (v < 0)
			return EINVAL;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (uint8_t)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	if (acc != 0)
		return EINVAL;
	*outlen = o;
	return 0;
}

/* ---- small scanners ---------------------------------------------------- */

static bool is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

static bool all_digits(struct om_str s, size_t min, size_t max)
{
	if (s.len < min || s.len > max)
		return false;
	for (size_t i = 0; i < s.len; i++)
		if (s.p[i] < '0' || s.p[i] > '9')
			return false;
	return true;
}

/* Next run of non-WSP characters from *pos; empty when at the end. */
static struct om_str next_word(struct om_str v, size_t *pos)
{
	size_t i = *pos;
	while (i < v.len && is_wsp(v.p[i]))
		i++;
	size_t start = i;
	while (i < v.len && !is_wsp(v.p[i]))
		i++;
	*pos = i;
	return (struct om_str){ v.p + start, i - start };
}

static bool has_prefix_case(struct om_str s, const char *pre, struct om_str *rest)
{
	size_t n = strlen(pre);
	if (s.len < n || !om_str_caseeq((struct om_str){ s.p, n }, (struct om_str){ pre, n }))
		return false;
	*rest = (struct om_str){ s.p + n, s.len - n };
	return true;
}

/* Splits s at the first `sep`: head before it, *tail after (empty, with
 * found false, when absent). */
static struct om_str split(struct om_str s, char sep, struct om_str *tail, bool *found)
{
	const char *q = s.len ? memchr(s.p, sep, s.len) : NULL;
	if (!q) {
		*tail = (struct om_str){ s.p + s.len, 0 };
		*found = false;
		return s;
	}
	*tail = (struct om_str){ q + 1, s.len - (size_t)(q - s.p) - 1 };
	*found = true;
	return (struct om_str){ s.p, (size_t)(q - s.p) };
}

/* ---- key-params ---------------------------------------------------------- */

/* key-info of an inline key: key-salt ["|" lifetime] ["|" mki]. Only the
 * first key is decoded into c; later ones are only checked. */
static int parse_inline(struct om_str info, struct om_sdp_crypto *c, bool first, const char **why)
{
	struct om_str rest, part2 = OM_STR_NULL, part3 = OM_STR_NULL;
	bool f2, f3 = false;
	struct om_str key = split(info, '|', &rest, &f2);
	if (f2)
		part2 = split(rest, '|', &part3, &f3);
	if (f3 && memchr(part3.p, '|', part3.len)) {
		*why = "crypto_bad_key_info";
		return EINVAL;
	}
	uint8_t tmp[64];
	size_t n = 0;
	int rc = b64_decode(key, tmp, sizeof(tmp), &n);
	if (rc == EINVAL) {
		*why = "crypto_bad_base64";
		return EINVAL;
	}
	if (first) {
		if (rc == E2BIG || n > OM_SDP_KEYSALT_MAX) {
			c->keysalt_len = SIZE_MAX; /* flagged too long below */
		} else {
			memcpy(c->keysalt, tmp, n);
			c->keysalt_len = n;
		}
	}
	OPENSSL_cleanse(tmp, sizeof(tmp));
	/* lifetime and mki: "|a|b" = lifetime, mki; "|x" = mki when it has ':'. */
	struct om_str lt = OM_STR_NULL, mki = OM_STR_NULL;
	bool has_lt = false, has_mki = false;
	if (f2) {
		if (f3) {
			lt = part2, mki = part3, has_lt = has_mki = true;
		} else if (memchr(part2.p, ':', part2.len)) {
			mki = part2, has_mki = true;
		} else {
			lt = part2, has_lt = true;
		}
	}
	if (has_lt) {
		struct om_str digits;
		uint64_t v;
		if (has_prefix_case(lt, "2^", &digits)) {
			if (!all_digits(digits, 1, 2) || om_str_to_u64(digits, 63, &v) != 0) {
				*why = "crypto_bad_lifetime";
				return EINVAL;
			}
			v = (uint64_t)1 << v;
		} else if (!all_digits(lt, 1, 20) || om_str_to_u64(lt, UINT64_MAX, &v) != 0) {
			*why = "crypto_bad_lifetime";
			return EINVAL;
		}
		if (first) {
			c->has_lifetime = true;
			c->lifetime = v;
		}
	}
	if (has_mki) {
		bool fc;
		struct om_str len_s, val_s = split(mki, ':', &len_s, &fc);
		uint64_t val, len;
		if (!fc || !all_digits(val_s, 1, 10) ||
		    om_str_to_u64(val_s, UINT32_MAX, &val) != 0 || !all_digits(len_s, 1, 3) ||
		    om_str_to_u64(len_s, 128, &len) != 0 || len == 0) {
			*why = "crypto_bad_mki";
			return EINVAL;
		}
		if (first) {
			c->has_mki = true;
			c->mki_value = (uint32_t)val;
			c->mki_len = (uint32_t)len;
		}
	}
	return 0;
}

static int parse_key_params(struct om_str kp, struct om_sdp_crypto *c, bool *inline_only,
                            const char **why)
{
	struct om_str rest = kp;
	bool more = true;
	unsigned n = 0;
	*inline_only = true;
	while (more) {
		struct om_str one = split(rest, ';', &rest, &more);
		bool colon;
		struct om_str info, method = split(one, ':', &info, &colon);
		if (!colon || method.len == 0 || info.len == 0) {
			*why = "crypto_missing_key";
			return EINVAL;
		}
		if (om_str_caseeq_c(method, "inline")) {
			int rc = parse_inline(info, c, n == 0, why);
			if (rc)
				return rc;
		} else {
			*inline_only = false;
		}
		if (++n > 16) {
			*why = "crypto_too_many_keys";
			return EINVAL;
		}
	}
	c->nkeys = n;
	return 0;
}

/* ---- session parameters -------------------------------------------------- */

static int parse_session_param(struct om_str w, struct om_sdp_crypto *c, const char **why)
{
	struct om_str v;
	uint64_t n;
	if (has_prefix_case(w, "KDR=", &v)) {
		if (!all_digits(v, 1, 2) || om_str_to_u64(v, 24, &n) != 0) {
			*why = "crypto_bad_kdr";
			return EINVAL;
		}
		c->kdr = (unsigned)n;
	} else if (om_str_caseeq_c(w, "UNENCRYPTED_SRTP")) {
		c->flags |= OM_SDP_CRYPTO_UNENCRYPTED_SRTP;
	} else if (om_str_caseeq_c(w, "UNENCRYPTED_SRTCP")) {
		c->flags |= OM_SDP_CRYPTO_UNENCRYPTED_SRTCP;
	} else if (om_str_caseeq_c(w, "UNAUTHENTICATED_SRTP")) {
		c->flags |= OM_SDP_CRYPTO_UNAUTHENTICATED_SRTP;
	} else if (has_prefix_case(w, "FEC_ORDER=", &v)) {
		if (!om_str_caseeq_c(v, "FEC_SRTP") && !om_str_caseeq_c(v, "SRTP_FEC")) {
			*why = "crypto_bad_fec_order";
			return EINVAL;
		}
		c->flags |= OM_SDP_CRYPTO_FEC_ORDER;
	} else if (has_prefix_case(w, "FEC_KEY=", &v)) {
		c->flags |= OM_SDP_CRYPTO_FEC_KEY;
	} else if (has_prefix_case(w, "WSH=", &v)) {
		if (!all_digits(v, 2, 10) || om_str_to_u64(v, UINT32_MAX, &n) != 0 || n < 64) {
			*why = "crypto_bad_wsh";
			return EINVAL;
		}
		c->wsh = (uint32_t)n;
	} else {
		c->flags |= OM_SDP_CRYPTO_UNKNOWN_PARAM;
	}
	return 0;
}

/* The verdict: can openum's SRTP use this line at all? */
static const char *verdict(const struct om_sdp_crypto *c, bool inline_only)
{
	if (c->suite == OM_SDP_SUITE_UNKNOWN)
		return "crypto_unknown_suite";
	if (!inline_only)
		return "crypto_key_method";
	if (c->keysalt_len != om_sdp_suite_key_len(c->suite) + om_sdp_suite_salt_len(c->suite))
		return "crypto_key_length";
	if (c->nkeys > 1)
		return "crypto_multiple_keys";
	if (c->has_mki && c->mki_len > OM_SDP_MKI_MAX)
		return "crypto_mki_length";
	if (c->has_mki && c->mki_len < 4 && c->mki_value >> (8 * c->mki_len) != 0)
		return "crypto_mki_value";
	if (c->kdr != 0)
		return "crypto_kdr_unsupported";
	if (c->flags & (OM_SDP_CRYPTO_UNENCRYPTED_SRTP | OM_SDP_CRYPTO_UNENCRYPTED_SRTCP |
	                OM_SDP_CRYPTO_UNAUTHENTICATED_SRTP))
		return "crypto_weakened";
	if (c->flags & OM_SDP_CRYPTO_FEC_KEY)
		return "crypto_fec_key_unsupported";
	if (c->flags & OM_SDP_CRYPTO_UNKNOWN_PARAM)
		return "crypto_unknown_param";
	if (c->has_lifetime &&
	    (c->lifetime < OM_SDP_LIFETIME_MIN || c->lifetime > OM_SDP_LIFETIME_MAX))
		return "crypto_lifetime";
	return NULL;
}

int om_sdp_crypto_parse(struct om_str value, struct om_sdp_crypto *out, const char **why)
{
	struct om_sdp_crypto c;
	memset(&c, 0, sizeof(c));
	size_t pos = 0;
	int rc = EINVAL;
	uint64_t tag;
	bool inline_only = true;

	/* The tag starts the value: no leading white space. */
	struct om_str w = next_word(value, &pos);
	if (w.p != value.p || !all_digits(w, 1, 9) || om_str_to_u64(w, 999999999, &tag) != 0) {
		*why = "crypto_bad_tag";
		goto out;
	}
	c.tag = (uint32_t)tag;
	w = next_word(value, &pos);
	if (w.len == 0) {
		*why = "crypto_missing_suite";
		goto out;
	}
	for (size_t i = 0; i < w.len; i++) {
		char ch = w.p[i];
		if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
		      (ch >= '0' && ch <= '9') || ch == '_')) {
			*why = "crypto_bad_suite";
			goto out;
		}
	}
	c.suite_name = w;
	c.suite = om_sdp_suite_parse(w);
	w = next_word(value, &pos);
	if (w.len == 0) {
		*why = "crypto_missing_key";
		goto out;
	}
	if (parse_key_params(w, &c, &inline_only, why) != 0)
		goto out;
	for (;;) {
		w = next_word(value, &pos);
		if (w.len == 0)
			break;
		if (parse_session_param(w, &c, why) != 0)
			goto out;
	}
	c.unusable = verdict(&c, inline_only);
	if (c.keysalt_len == SIZE_MAX)
		c.keysalt_len = 0;
	*out = c;
	rc = 0;
out:
	OPENSSL_cleanse(c.keysalt, sizeof(c.keysalt));
	return rc;
}
