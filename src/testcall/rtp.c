/* rtp.c — test RTP/SRTP endpoint: packet building and a receiving
 * timeline (RFC 3550 §5.1, RFC 3551 G.711, RFC 4733 §2.3, RFC 3711 via
 * media/srtp.h). G.711 comes from spandsp, as in the server. */
#include "testcall/rtp.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#define SPANDSP_EXPOSE_INTERNAL_STRUCTURES
#include <spandsp.h>

#include "core/alloc.h"
#include "media/rtp.h"

int om_tc_tx_init(struct om_tc_tx *tx, const struct om_tc_srtp *cfg)
{
	tx->srtp = NULL;
	if (!cfg || !cfg->on)
		return 0;
	struct om_srtp_policy p = {
		.suite = cfg->suite,
		.backend = cfg->backend,
		.dir = OM_SRTP_SEND,
		.key = cfg->key,
		.key_len = cfg->key_len,
		.mki = cfg->mki,
		.mki_len = cfg->mki_len,
		.max_ssrcs = 64,
	};
	return om_srtp_new(&p, &tx->srtp);
}

void om_tc_tx_free(struct om_tc_tx *tx)
{
	om_srtp_free(tx->srtp);
	tx->srtp = NULL;
}

static size_t protect(struct om_tc_tx *tx, uint8_t *out, size_t len, bool rtcp)
{
	if (!tx->srtp)
		return len;
	int err = rtcp ? om_srtp_protect_rtcp(tx->srtp, out, &len, OM_TC_PKT_MAX)
	               : om_srtp_protect(tx->srtp, out, &len, OM_TC_PKT_MAX);
	if (err) {
		fprintf(stderr, "srtp protect: %s\n", strerror(err));
		return 0;
	}
	return len;
}

size_t om_tc_tx_audio(struct om_tc_tx *tx, const int16_t *pcm, const uint8_t *raw, size_t n,
                      uint8_t *out)
{
	size_t h = om_rtp_write_hdr(out, tx->pt, tx->talkspurt, tx->seq, tx->ts, tx->ssrc);
	for (size_t i = 0; i < n; i++)
		out[h + i] = raw        ? raw[i]
		             : tx->alaw ? linear_to_alaw(pcm[i])
		                        : linear_to_ulaw(pcm[i]);
	tx->talkspurt = false;
	tx->seq++;
	tx->ts += (uint32_t)n;
	tx->packets++;
	tx->octets += (uint32_t)n;
	return protect(tx, out, h + n, false);
}

size_t om_tc_tx_event(struct om_tc_tx *tx, uint8_t event, uint32_t start_ts, uint16_t duration,
                      bool end, bool first, uint8_t *out)
{
	size_t h = om_rtp_write_hdr(out, (uint8_t)tx->te_pt, first, tx->seq, start_ts, tx->ssrc);
	out[h] = event;
	out[h + 1] = (uint8_t)((end ? 0x80 : 0) | 10); /* volume -10 dBm0 */
	out[h + 2] = (uint8_t)(duration >> 8);
	out[h + 3] = (uint8_t)duration;
	tx->seq++;
	tx->packets++;
	return protect(tx, out, h + 4, false);
}

size_t om_tc_tx_cn(struct om_tc_tx *tx, uint8_t level, uint8_t *out)
{
	size_t h = om_rtp_write_hdr(out, 13, false, tx->seq, tx->ts, tx->ssrc);
	out[h] = level & 0x7f;
	tx->seq++;
	tx->packets++;
	return protect(tx, out, h + 1, false);
}

size_t om_tc_tx_rtcp(struct om_tc_tx *tx, uint8_t *out)
{
	size_t len = om_rtcp_write(out, OM_TC_PKT_MAX - 64, tx->ssrc, true, 0, tx->ts, tx->packets,
	                           tx->octets, NULL, "om-testrtp", false);
	return len ? protect(tx, out, len, true) : 0;
}

int om_tc_rx_init(struct om_tc_rx *rx, const struct om_tc_srtp *cfg, int te_pt)
{
	memset(rx, 0, sizeof(*rx));
	rx->te_pt = te_pt;
	if (!cfg || !cfg->on)
		return 0;
	struct om_srtp_policy p = {
		.suite = cfg->suite,
		.backend = cfg->backend,
		.dir = OM_SRTP_RECV,
		.key = cfg->key,
		.key_len = cfg->key_len,
		.mki = cfg->mki,
		.mki_len = cfg->mki_len,
		.max_ssrcs = 64,
	};
	return om_srtp_new(&p, &rx->srtp);
}

void om_tc_rx_free(struct om_tc_rx *rx)
{
	om_srtp_free(rx->srtp);
	om_free(rx->pcm);
	memset(rx, 0, sizeof(*rx));
}

static void place(struct om_tc_rx *rx, uint32_t ts, const uint8_t *g711, size_t n, bool alaw)
{
	int64_t off = (int32_t)(ts - rx->first_ts);
	if (off < 0 || off > 8000 * 3600)
		return;
	size_t end = (size_t)off + n;
	if (end > rx->cap) {
		size_t cap = rx->cap ? rx->cap : 8000;
		while (cap < end)
			cap *= 2;
		int16_t *p = om_realloc(rx->pcm, cap * 2);
		if (!p)
			return;
		memset(p + rx->cap, 0, (cap - rx->cap) * 2);
		rx->pcm = p;
		rx->cap = cap;
	}
	for (size_t i = 0; i < n; i++)
		rx->pcm[off + (int64_t)i] =
		    alaw ? alaw_to_linear(g711[i]) : ulaw_to_linear(g711[i]);
	if (end > rx->samples)
		rx->samples = end;
}

void om_tc_rx_packet(struct om_tc_rx *rx, uint8_t *p, size_t n)
{
	if (om_rtp_is_rtcp(p, n)) {
		size_t len = n;
		if (rx->srtp && om_srtp_unprotect_rtcp(rx->srtp, p, &len) != 0) {
			rx->srtp_fail++;
			return;
		}
		struct om_rtcp_info info;
		if (om_rtcp_parse(p, len, &info) == 0)
			rx->rtcp++;
		else
			rx->malformed++;
		return;
	}
	size_t len = n;
	if (rx->srtp && om_srtp_unprotect(rx->srtp, p, &len) != 0) {
		rx->srtp_fail++;
		return;
	}
	struct om_rtp_hdr h;
	if (om_rtp_parse(p, len, &h) != 0) {
		rx->malformed++;
		return;
	}
	rx->packets++;
	if (h.marker)
		rx->markers++;
	if (rx->te_pt >= 0 && h.pt == rx->te_pt) {
		struct om_rtp_event ev;
		if (om_rtp_event_parse(p + h.hdr_len, h.payload_len, &ev) == 0 && ev.end &&
		    !(rx->event_done && h.ts == rx->last_event_ts)) {
			size_t l = strlen(rx->digits);
			char d = om_rtp_event_digit(ev.event);
			if (d && l + 1 < sizeof(rx->digits))
				rx->digits[l] = d;
			rx->last_event_ts = h.ts;
			rx->event_done = true;
			rx->events++;
		}
		return;
	}
	if (!rx->have) {
		rx->have = true;
		rx->ssrc = h.ssrc;
		rx->first_ts = h.ts;
		rx->pt = h.pt;
	}
	if ((int32_t)(h.ts - rx->last_ts) > 0 || rx->packets == 1)
		rx->last_ts = h.ts;
	place(rx, h.ts, p + h.hdr_len, h.payload_len, h.pt == 8);
}

int om_tc_parse_addr(const char *s, struct sockaddr_storage *out, socklen_t *len)
{
	char host[64];
	const char *colon;
	memset(out, 0, sizeof(*out));
	if (s[0] == '[') {
		const char *e = strchr(s, ']');
		if (!e || e[1] != ':' || (size_t)(e - s - 1) >= sizeof(host))
			return EINVAL;
		snprintf(host, sizeof(host), "%.*s", (int)(e - s - 1), s + 1);
		colon = e + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon || (size_t)(colon - s) >= sizeof(host))
			return EINVAL;
		snprintf(host, sizeof(host), "%.*s", (int)(colon - s), s);
	}
	long port = strtol(colon + 1, NULL, 10);
	if (port < 0 || port > 65535)
		return EINVAL;
	struct sockaddr_in *a4 = (struct sockaddr_in *)out;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)out;
	if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
		a4->sin_family = AF_INET;
		a4->sin_port = htons((uint16_t)port);
		*len = sizeof(*a4);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons((uint16_t)port);
		*len = sizeof(*a6);
		return 0;
	}
	return EINVAL;
}

int om_tc_b64_decode(const char *s, uint8_t *out, size_t cap, size_t *len)
{
	size_t n = strlen(s);
	uint8_t tmp[256];
	if (n == 0 || n % 4 || n / 4 * 3 > sizeof(tmp))
		return EINVAL;
	int r = EVP_DecodeBlock(tmp, (const unsigned char *)s, (int)n);
	if (r < 0)
		return EINVAL;
	size_t l = (size_t)r;
	if (n >= 1 && s[n - 1] == '=')
		l--;
	if (n >= 2 && s[n - 2] == '=')
		l--;
	if (l > cap)
		return E2BIG;
	memcpy(out, tmp, l);
	*len = l;
	return 0;
}

int om_tc_hex_decode(const char *s, uint8_t *out, size_t cap, size_t *len)
{
	size_t n = strlen(s);
	if (n == 0 || n % 2 || n / 2 > cap)
		return EINVAL;
	for (size_t i = 0; i < n / 2; i++) {
		unsigned v;
		if (sscanf(s + 2 * i, "%2x", &v) != 1)
			return EINVAL;
		out[i] = (uint8_t)v;
	}
	*len = n / 2;
	return 0;
}
