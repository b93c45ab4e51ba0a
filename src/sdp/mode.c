/* mode.c — offer/answer for one audio stream (RFC 3264 §5, §6, §8.4), SDES
 * key exchange (RFC 4568 §7) and the dial-plan security-mode table
 * (REQUIREMENTS.md R3), plus the SDP text builder (RFC 4566 §5).
 *
 * The table, per transport the call arrived on:
 *
 *   plan \ over  | TCP 5060                        | TLS 5061 (mutual)
 *   -------------+---------------------------------+---------------------------------
 *   Unsecured    | RTP/AVP answered plain; a=crypto | SRTP when usable crypto is
 *                | in RTP/AVP ignored (logged);     | offered (in the offered
 *                | RTP/SAVP -> 488 srtp_over_tcp    | profile), else RTP
 *   SIPSecured   | 403 plan_requires_tls           | same as Unsecured over TLS:
 *                |                                 | RTP, but never less secure
 *                |                                 | than offered (SAVP -> SRTP)
 *   Secured      | 403 plan_requires_tls           | RTP/SAVP with usable crypto
 *                |                                 | only; else 488 with the reason
 *
 * "Never less secure than the peer offered": over TLS, an m= line with
 * usable crypto wins over a plain one, and an RTP/SAVP line is never
 * answered plain (488 instead). SDES keys are never taken from nor sent
 * over TCP. A delayed offer (no SDP) gets openum's own offer: RTP/SAVP with
 * every suite (GCM first) on Secured, plain RTP/AVP otherwise.
 *
 * As answerer openum takes the first offered audio line it can use and,
 * in it, the offerer's first usable a=crypto (RFC 4568 §7.1.2: same tag,
 * our own fresh key). Other m= lines are rejected with port 0, in order
 * (RFC 3264 §6). */
#include "sdp/sdp.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

const char *om_sdp_dir_name(enum om_sdp_dir d)
{
	switch (d) {
	case OM_SDP_SENDONLY:
		return "sendonly";
	case OM_SDP_RECVONLY:
		return "recvonly";
	case OM_SDP_INACTIVE:
		return "inactive";
	default:
		return "sendrecv";
	}
}

const char *om_sdp_plan_mode_name(enum om_sdp_plan_mode m)
{
	switch (m) {
	case OM_SDP_SIPSECURED:
		return "SIPSecured";
	case OM_SDP_SECURED:
		return "Secured";
	default:
		return "Unsecured";
	}
}

void om_sdp_result_clear(struct om_sdp_result *r)
{
	OPENSSL_cleanse(r, sizeof(*r));
}

/* ---- helpers ----------------------------------------------------------- */

static void b64_encode(struct om_buf *out, const uint8_t *p, size_t n)
{
	static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char q[4];
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16;
		if (i + 1 < n)
			v |= (uint32_t)p[i + 1] << 8;
		if (i + 2 < n)
			v |= p[i + 2];
		q[0] = al[(v >> 18) & 63];
		q[1] = al[(v >> 12) & 63];
		q[2] = i + 1 < n ? al[(v >> 6) & 63] : '=';
		q[3] = i + 2 < n ? al[v & 63] : '=';
		om_buf_add(out, q, 4);
	}
	OPENSSL_cleanse(q, sizeof(q));
}

static int fresh_key(struct om_sdp_crypto_key *k, uint32_t tag, enum om_sdp_crypto_suite s)
{
	k->tag = tag;
	k->suite = s;
	k->keysalt_len = om_sdp_suite_key_len(s) + om_sdp_suite_salt_len(s);
	if (RAND_bytes(k->keysalt, (int)k->keysalt_len) != 1)
		return EIO;
	return 0;
}

static void put_crypto(struct om_buf *out, const struct om_sdp_crypto_key *k)
{
	om_buf_secret(out); /* from here on it holds a key */
	om_buf_printf(out, "a=crypto:%" PRIu32 " %s inline:", k->tag, om_sdp_suite_name(k->suite));
	b64_encode(out, k->keysalt, k->keysalt_len);
	if (k->mki_len)
		om_buf_printf(out, "|%" PRIu32 ":%" PRIu32, k->mki_value, k->mki_len);
	om_buf_adds(out, "\r\n");
}

/* The peer's key of an a=crypto line, with its MKI and lifetime. */
static void take_key(struct om_sdp_crypto_key *k, const struct om_sdp_crypto *c)
{
	k->tag = c->tag;
	k->suite = c->suite;
	memcpy(k->keysalt, c->keysalt, c->keysalt_len);
	k->keysalt_len = c->keysalt_len;
	k->mki_value = c->has_mki ? c->mki_value : 0;
	k->mki_len = c->has_mki ? c->mki_len : 0;
	k->lifetime = c->has_lifetime ? c->lifetime : 0;
}

static void put_session(struct om_buf *out, const struct om_sdp_local *l)
{
	const char *at = l->ipv6 ? "IP6" : "IP4";
	om_buf_printf(out,
	              "v=0\r\n"
	              "o=openum %" PRIu64 " %" PRIu64 " IN %s %s\r\n"
	              "s=openum\r\n"
	              "c=IN %s %s\r\n"
	              "t=0 0\r\n",
	              l->sess_id, l->sess_version, at, l->addr, at, l->addr);
}

enum codec { C_NONE, C_PCMU, C_PCMA, C_TE };

static enum codec fmt_codec(const struct om_sdp_media *m, struct om_str f, uint8_t *pt)
{
	uint64_t n;
	if (f.len == 0 || f.len > 3 || om_str_to_u64(f, 127, &n) != 0)
		return C_NONE;
	*pt = (uint8_t)n;
	for (size_t i = 0; i < m->nmap; i++) {
		const struct om_sdp_rtpmap *r = &m->map[i];
		if (r->pt != n || !r->has_rtpmap)
			continue;
		if (r->clock != 8000)
			return C_NONE;
		if (om_str_caseeq_c(r->encoding, "PCMU"))
			return C_PCMU;
		if (om_str_caseeq_c(r->encoding, "PCMA"))
			return C_PCMA;
		if (om_str_caseeq_c(r->encoding, "telephone-event"))
			return C_TE;
		return C_NONE;
	}
	if (n == 0)
		return C_PCMU;
	if (n == 8)
		return C_PCMA;
	return C_NONE;
}

/* The offerer's first codec we support (RFC 3264 §6.1: answer in the
 * offer's preference order) and telephone-event if offered. */
static bool pick_codec(const struct om_sdp_media *m, uint8_t *pt, enum codec *c, int *te)
{
	bool found = false;
	*te = -1;
	for (size_t i = 0; i < m->nfmt; i++) {
		uint8_t p;
		enum codec k = fmt_codec(m, m->fmt[i], &p);
		if ((k == C_PCMU || k == C_PCMA) && !found) {
			*pt = p;
			*c = k;
			found = true;
		} else if (k == C_TE && *te < 0) {
			*te = p;
		}
	}
	return found;
}

static const struct om_sdp_crypto *first_usable(const struct om_sdp_media *m)
{
	if (m->crypto_error)
		return NULL;
	for (size_t i = 0; i < m->ncrypto; i++)
		if (!m->crypto[i].unusable)
			return &m->crypto[i];
	return NULL;
}

/* Why an RTP/SAVP line has no crypto openum can use. */
static const char *crypto_reason(const struct om_sdp_media *m)
{
	if (m->crypto_error)
		return m->crypto_error;
	if (m->ncrypto == 0)
		return "no_crypto";
	return m->crypto[0].unusable;
}

static enum om_sdp_dir answer_dir(const struct om_sdp_media *m)
{
	enum om_sdp_dir d;
	switch (m->dir) {
	case OM_SDP_SENDONLY:
		d = OM_SDP_RECVONLY;
		break;
	case OM_SDP_RECVONLY:
		d = OM_SDP_SENDONLY;
		break;
	case OM_SDP_INACTIVE:
		d = OM_SDP_INACTIVE;
		break;
	default:
		d = OM_SDP_SENDRECV;
		break;
	}
	/* c=0.0.0.0: the peer wants nothing sent to it (RFC 3264 §8.4). */
	if (m->conn.hold)
		d = d == OM_SDP_SENDRECV   ? OM_SDP_RECVONLY
		    : d == OM_SDP_SENDONLY ? OM_SDP_INACTIVE
		                           : d;
	return d;
}

static void refuse(struct om_sdp_result *r, int status, const char *reason)
{
	om_sdp_result_clear(r);
	r->kind = OM_SDP_REFUSED;
	r->status = status;
	r->reason = reason;
	r->te_pt = -1;
}

/* ---- offer ------------------------------------------------------------- */

static const enum om_sdp_crypto_suite offer_order[OM_SDP_SUITE_COUNT] = {
	OM_SDP_AEAD_AES_256_GCM,        OM_SDP_AEAD_AES_128_GCM,
	OM_SDP_AES_256_CM_HMAC_SHA1_80, OM_SDP_AES_CM_128_HMAC_SHA1_80,
	OM_SDP_AES_CM_128_HMAC_SHA1_32,
};

int om_sdp_offer_build(bool srtp, const struct om_sdp_local *local, struct om_sdp_result *r,
                       struct om_buf *out)
{
	struct om_sdp_result res;
	int rc = 0;
	om_sdp_result_clear(&res);
	res.kind = OM_SDP_OFFER;
	res.srtp = srtp;
	res.proto = srtp ? OM_SDP_PROTO_SAVP : OM_SDP_PROTO_AVP;
	res.pt = 0;
	res.te_pt = 101;
	res.dir = OM_SDP_SENDRECV;
	if (srtp) {
		for (unsigned i = 0; i < OM_SDP_SUITE_COUNT; i++)
			if ((rc = fresh_key(&res.local_key[i], i + 1, offer_order[i])) != 0)
				goto out;
		res.nlocal_key = OM_SDP_SUITE_COUNT;
	}
	size_t mark = out->len;
	put_session(out, local);
	om_buf_printf(out,
	              "m=audio %u %s 0 8 101\r\n"
	              "a=rtpmap:0 PCMU/8000\r\n"
	              "a=rtpmap:8 PCMA/8000\r\n"
	              "a=rtpmap:101 telephone-event/8000\r\n"
	              "a=fmtp:101 0-16\r\n"
	              "a=ptime:20\r\n"
	              "a=sendrecv\r\n",
	              (unsigned)local->port, srtp ? "RTP/SAVP" : "RTP/AVP");
	for (size_t i = 0; i < res.nlocal_key; i++)
		put_crypto(out, &res.local_key[i]);
	if ((rc = om_buf_err(out)) != 0) {
		if (out->p && out->len > mark)
			OPENSSL_cleanse(out->p + mark, out->len - mark);
		goto out;
	}
	*r = res;
out:
	om_sdp_result_clear(&res);
	return rc;
}

/* ---- answer ------------------------------------------------------------ */

struct choice {
	bool ok;
	size_t idx;
	bool srtp;
	const struct om_sdp_crypto *crypto;
};

static void consider(struct choice *best, size_t idx, bool srtp, const struct om_sdp_crypto *c)
{
	/* First acceptable line wins; an SRTP one beats a plain one. */
	if (best->ok && (best->srtp || !srtp))
		return;
	best->ok = true;
	best->idx = idx;
	best->srtp = srtp;
	best->crypto = c;
}

static int build_answer(const struct om_sdp *offer, const struct choice *ch,
                        const struct om_sdp_local *local, struct om_sdp_result *r,
                        struct om_buf *out)
{
	const struct om_sdp_media *m = &offer->media[ch->idx];
	struct om_sdp_result res;
	enum codec codec = C_NONE;
	int te = -1, rc = 0;
	om_sdp_result_clear(&res);
	res.kind = OM_SDP_ANSWER;
	res.media_index = ch->idx;
	res.proto = m->proto_kind;
	res.srtp = ch->srtp;
	(void)pick_codec(m, &res.pt, &codec, &te);
	res.te_pt = te;
	res.dir = answer_dir(m);
	res.remote = m->conn;
	res.remote_port = m->port;
	res.remote_rtcp_port = m->rtcp_port;
	res.rtcp_mux = m->rtcp_mux;
	if (ch->srtp) {
		const struct om_sdp_crypto *c = ch->crypto;
		take_key(&res.remote_key, c);
		if ((rc = fresh_key(&res.local_key[0], c->tag, c->suite)) != 0)
			goto out;
		/* An offerer that sends an MKI gets one of the same length back
		 * (RFC 4568 §6.1 leaves it to each key; SBCs with MKI on by
		 * default expect it both ways). */
		if (c->has_mki) {
			res.local_key[0].mki_value = 1;
			res.local_key[0].mki_len = c->mki_len;
		}
		res.nlocal_key = 1;
	}
	size_t mark = out->len;
	put_session(out, local);
	for (size_t i = 0; i < offer->nmedia; i++) {
		const struct om_sdp_media *mi = &offer->media[i];
		if (i != ch->idx) {
			om_buf_printf(out, "m=" OM_STR_FMT " 0 " OM_STR_FMT, OM_STR_ARG(mi->media),
			              OM_STR_ARG(mi->proto));
			for (size_t f = 0; f < mi->nfmt; f++)
				om_buf_printf(out, " " OM_STR_FMT, OM_STR_ARG(mi->fmt[f]));
			om_buf_adds(out, "\r\n");
			continue;
		}
		om_buf_printf(out, "m=audio %u " OM_STR_FMT " %u", (unsigned)local->port,
		              OM_STR_ARG(mi->proto), (unsigned)res.pt);
		if (te >= 0)
			om_buf_printf(out, " %d", te);
		om_buf_printf(out, "\r\na=rtpmap:%u %s/8000\r\n", (unsigned)res.pt,
		              codec == C_PCMA ? "PCMA" : "PCMU");
		if (te >= 0)
			om_buf_printf(out, "a=rtpmap:%d telephone-event/8000\r\na=fmtp:%d 0-16\r\n",
			              te, te);
		om_buf_printf(out, "a=ptime:20\r\na=%s\r\n", om_sdp_dir_name(res.dir));
		if (res.rtcp_mux)
			om_buf_adds(out, "a=rtcp-mux\r\n");
		if (ch->srtp)
			put_crypto(out, &res.local_key[0]);
	}
	if ((rc = om_buf_err(out)) != 0) {
		if (out->p && out->len > mark)
			OPENSSL_cleanse(out->p + mark, out->len - mark);
		goto out;
	}
	*r = res;
out:
	om_sdp_result_clear(&res);
	return rc;
}

int om_sdp_mode_apply(enum om_sdp_plan_mode mode, enum om_sdp_transport tr,
                      const struct om_sdp *offer, const struct om_sdp_local *local,
                      struct om_sdp_result *r, struct om_buf *out)
{
	if (tr != OM_SDP_TLS && mode != OM_SDP_UNSECURED) {
		refuse(r, 403, "plan_requires_tls");
		return 0;
	}
	if (!offer)
		return om_sdp_offer_build(mode == OM_SDP_SECURED, local, r, out);

	struct choice best = { 0 };
	/* Reasons for a refusal, strongest evidence first. */
	const char *savp_reason = NULL, *avp_reason = NULL;
	bool audio = false, rtp = false, codec = false;
	for (size_t i = 0; i < offer->nmedia; i++) {
		const struct om_sdp_media *m = &offer->media[i];
		uint8_t pt;
		enum codec c;
		int te;
		if (!om_str_eq_c(m->media, "audio") || m->port == 0)
			continue;
		audio = true;
		if (m->proto_kind == OM_SDP_PROTO_OTHER)
			continue;
		rtp = true;
		if (!pick_codec(m, &pt, &c, &te))
			continue;
		codec = true;
		const struct om_sdp_crypto *cr = first_usable(m);
		if (m->proto_kind == OM_SDP_PROTO_SAVP) {
			if (tr != OM_SDP_TLS) {
				if (!savp_reason)
					savp_reason = "srtp_over_tcp";
			} else if (cr) {
				consider(&best, i, true, cr);
			} else if (!savp_reason) {
				savp_reason = crypto_reason(m);
			}
			continue;
		}
		/* RTP/AVP. */
		if (tr != OM_SDP_TLS) {
			consider(&best, i, false, NULL); /* a=crypto ignored, keys in clear */
		} else if (mode == OM_SDP_SECURED) {
			if (!avp_reason)
				avp_reason = "srtp_required";
		} else if (cr) {
			consider(&best, i, true, cr); /* best-effort SRTP in RTP/AVP */
		} else if (m->crypto_error) {
			/* Broken keys: answering plain would downgrade what the
			 * peer asked for, answering SRTP is impossible. */
			if (!avp_reason)
				avp_reason = m->crypto_error;
		} else {
			consider(&best, i, false, NULL);
		}
	}
	if (!best.ok) {
		const char *why = savp_reason  ? savp_reason
		                  : avp_reason ? avp_reason
		                  : !audio     ? "no_audio_stream"
		                  : !rtp       ? "unsupported_transport"
		                  : !codec     ? "no_common_codec"
		                               : "no_acceptable_stream";
		refuse(r, 488, why);
		return 0;
	}
	int rc = build_answer(offer, &best, local, r, out);
	if (rc == 0 && !best.srtp && offer->media[best.idx].ncrypto_lines > 0)
		r->crypto_ignored = true;
	return rc;
}

/* ---- the answer to our offer ------------------------------------------- */

int om_sdp_answer_take(struct om_sdp_result *ours, const struct om_sdp *answer)
{
	if (ours->kind != OM_SDP_OFFER)
		return EINVAL;
	const char *why = NULL;
	const struct om_sdp_media *m = answer->nmedia ? &answer->media[0] : NULL;
	enum codec c;
	int te;
	uint8_t pt = 0;
	if (answer->nmedia != 1 || !om_str_eq_c(m->media, "audio") || m->port == 0) {
		why = "answer_rejected_audio";
		goto refused;
	}
	if (m->proto_kind != ours->proto) {
		why = "answer_proto_mismatch";
		goto refused;
	}
	if (!pick_codec(m, &pt, &c, &te)) {
		why = "no_common_codec";
		goto refused;
	}
	if (ours->srtp) {
		const struct om_sdp_crypto *cr = NULL;
		if (m->crypto_error) {
			why = m->crypto_error;
			goto refused;
		}
		if (m->ncrypto != 1) {
			why = m->ncrypto == 0 ? "no_crypto" : "answer_crypto_count";
			goto refused;
		}
		cr = &m->crypto[0];
		if (cr->unusable) {
			why = cr->unusable;
			goto refused;
		}
		size_t k;
		for (k = 0; k < ours->nlocal_key; k++)
			if (ours->local_key[k].tag == cr->tag &&
			    ours->local_key[k].suite == cr->suite)
				break;
		if (k == ours->nlocal_key) {
			why = "answer_crypto_mismatch";
			goto refused;
		}
		struct om_sdp_crypto_key keep = ours->local_key[k];
		OPENSSL_cleanse(ours->local_key, sizeof(ours->local_key));
		ours->local_key[0] = keep;
		OPENSSL_cleanse(&keep, sizeof(keep));
		ours->nlocal_key = 1;
		take_key(&ours->remote_key, cr);
	} else if (m->ncrypto_lines > 0) {
		ours->crypto_ignored = true;
	}
	ours->kind = OM_SDP_ANSWER;
	ours->media_index = 0;
	ours->pt = pt;
	ours->te_pt = te;
	ours->dir = answer_dir(m);
	ours->remote = m->conn;
	ours->remote_port = m->port;
	ours->remote_rtcp_port = m->rtcp_port;
	ours->rtcp_mux = false; /* our offers do not offer rtcp-mux */
	return 0;
refused:
	refuse(ours, 488, why);
	return 0;
}
