/* test_mode.c — the R3 security-mode table, cell by cell (3 plan modes x 2
 * transports x 6 kinds of offer), then offer/answer details: codec and
 * telephone-event choice, SDES tag echo with a fresh key, weakened crypto
 * skipped, other m= lines rejected in order, hold, our own offer (GCM
 * first) and taking the answer to it; an out-of-memory sweep. */
#include "ut.h"
#include "sdp/sdp.h"

#include <errno.h>
#include <stdio.h>

#define HEAD "v=0\r\no=gw 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n"
#define K80  "WnD7c1ksDGs+dIefCEo8omPg4uO8DYIinNGL5yxQ"
#define K32  "t0r0/apkukU7JjjfR0mY8GEimBq4OiPEm9eKSFOx"

static const char *offers[] = {
	/* 0: RTP/AVP plain */
	HEAD "m=audio 5004 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n",
	/* 1: RTP/AVP with a=crypto */
	HEAD "m=audio 5004 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n"
	     "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" K80 "\r\n",
	/* 2: RTP/SAVP with good crypto */
	HEAD "m=audio 5004 RTP/SAVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n"
	     "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" K80 "\r\n",
	/* 3: RTP/SAVP with only unusable crypto */
	HEAD "m=audio 5004 RTP/SAVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n"
	     "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" K80 " UNENCRYPTED_SRTP\r\n"
	     "a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:" K32 " UNAUTHENTICATED_SRTP\r\n"
	     "a=crypto:3 AES_CM_128_HMAC_SHA1_80 inline:" K80 " KDR=1\r\n",
	/* 4: RTP/SAVP without crypto */
	HEAD "m=audio 5004 RTP/SAVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n",
	/* 5: delayed offer */
	NULL,
};
static const char *offer_names[] = { "avp",           "avp+crypto",    "savp",
	                             "savp-unusable", "savp-nocrypto", "delayed" };

enum out { PLAIN, PLAIN_IGNORED, SRTP_AVP, SRTP_SAVP, OFFER_PLAIN, OFFER_SRTP, R403, R488 };

struct cell {
	enum om_sdp_plan_mode mode;
	enum om_sdp_transport tr;
	int offer;
	enum out out;
	const char *reason;
};

#define U  OM_SDP_UNSECURED
#define SS OM_SDP_SIPSECURED
#define S  OM_SDP_SECURED
#define T  OM_SDP_TCP
#define L  OM_SDP_TLS

static const struct cell table[] = {
	/* Unsecured over TCP: plain only, keys never accepted in clear. */
	{ U, T, 0, PLAIN, NULL },
	{ U, T, 1, PLAIN_IGNORED, NULL },
	{ U, T, 2, R488, "srtp_over_tcp" },
	{ U, T, 3, R488, "srtp_over_tcp" },
	{ U, T, 4, R488, "srtp_over_tcp" },
	{ U, T, 5, OFFER_PLAIN, NULL },
	/* Unsecured over TLS: SRTP if offered, else RTP. */
	{ U, L, 0, PLAIN, NULL },
	{ U, L, 1, SRTP_AVP, NULL },
	{ U, L, 2, SRTP_SAVP, NULL },
	{ U, L, 3, R488, "crypto_weakened" },
	{ U, L, 4, R488, "no_crypto" },
	{ U, L, 5, OFFER_PLAIN, NULL },
	/* SIPSecured over TCP: 403 whatever the offer. */
	{ SS, T, 0, R403, "plan_requires_tls" },
	{ SS, T, 1, R403, "plan_requires_tls" },
	{ SS, T, 2, R403, "plan_requires_tls" },
	{ SS, T, 3, R403, "plan_requires_tls" },
	{ SS, T, 4, R403, "plan_requires_tls" },
	{ SS, T, 5, R403, "plan_requires_tls" },
	/* SIPSecured over TLS: RTP, never less secure than offered. */
	{ SS, L, 0, PLAIN, NULL },
	{ SS, L, 1, SRTP_AVP, NULL },
	{ SS, L, 2, SRTP_SAVP, NULL },
	{ SS, L, 3, R488, "crypto_weakened" },
	{ SS, L, 4, R488, "no_crypto" },
	{ SS, L, 5, OFFER_PLAIN, NULL },
	/* Secured over TCP: 403. */
	{ S, T, 0, R403, "plan_requires_tls" },
	{ S, T, 1, R403, "plan_requires_tls" },
	{ S, T, 2, R403, "plan_requires_tls" },
	{ S, T, 3, R403, "plan_requires_tls" },
	{ S, T, 4, R403, "plan_requires_tls" },
	{ S, T, 5, R403, "plan_requires_tls" },
	/* Secured over TLS: RTP/SAVP with usable crypto only. */
	{ S, L, 0, R488, "srtp_required" },
	{ S, L, 1, R488, "srtp_required" },
	{ S, L, 2, SRTP_SAVP, NULL },
	{ S, L, 3, R488, "crypto_weakened" },
	{ S, L, 4, R488, "no_crypto" },
	{ S, L, 5, OFFER_SRTP, NULL },
};

static const struct om_sdp_local local = { "192.0.2.10", false, 40000, 77, 1 };

static int apply(enum om_sdp_plan_mode mode, enum om_sdp_transport tr, const char *text,
                 struct om_sdp_result *r, struct om_buf *out)
{
	struct om_sdp *o = NULL;
	int rc = text ? om_sdp_parse(text, strlen(text), &o, NULL) : 0;
	if (rc)
		return rc; /* EBADMSG, or ENOMEM (the out-of-memory sweep) */
	rc = om_sdp_mode_apply(mode, tr, o, &local, r, out);
	om_sdp_free(o);
	return rc;
}

UT_TEST(every_cell)
{
	UT_EQ_INT(3 * 2 * 6, sizeof(table) / sizeof(table[0]));
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		const struct cell *c = &table[i];
		struct om_sdp_result r;
		struct om_buf out;
		char what[100];
		snprintf(what, sizeof(what), "%s over %s, %s offer", om_sdp_plan_mode_name(c->mode),
		         c->tr == T ? "TCP" : "TLS", offer_names[c->offer]);
		om_buf_init(&out);
		if (apply(c->mode, c->tr, offers[c->offer], &r, &out) != 0)
			UT_FAIL("%s: failed", what);
		const char *text = om_buf_cstr(&out);
		bool has_crypto = strstr(text, "a=crypto:") != NULL;
		switch (c->out) {
		case R403:
		case R488:
			if (r.kind != OM_SDP_REFUSED || r.status != (c->out == R403 ? 403 : 488) ||
			    strcmp(r.reason, c->reason) != 0)
				UT_FAIL("%s: expected %d %s, got kind %d status %d %s", what,
				        c->out == R403 ? 403 : 488, c->reason, r.kind, r.status,
				        r.reason ? r.reason : "-");
			UT_EQ_INT(0, out.len);
			break;
		case PLAIN:
		case PLAIN_IGNORED:
			if (r.kind != OM_SDP_ANSWER || r.srtp || has_crypto)
				UT_FAIL("%s: expected a plain answer (kind %d srtp %d)", what,
				        r.kind, r.srtp);
			UT_EQ_INT(c->out == PLAIN_IGNORED, r.crypto_ignored);
			UT_TRUE(strstr(text, "m=audio 40000 RTP/AVP 0 101\r\n") != NULL);
			break;
		case SRTP_AVP:
		case SRTP_SAVP:
			if (r.kind != OM_SDP_ANSWER || !r.srtp || !has_crypto)
				UT_FAIL("%s: expected an SRTP answer (kind %d srtp %d)", what,
				        r.kind, r.srtp);
			UT_EQ_INT(c->out == SRTP_AVP ? OM_SDP_PROTO_AVP : OM_SDP_PROTO_SAVP,
			          r.proto);
			UT_TRUE(strstr(text, c->out == SRTP_AVP
			                         ? "m=audio 40000 RTP/AVP 0 101\r\n"
			                         : "m=audio 40000 RTP/SAVP 0 101\r\n"));
			UT_TRUE(strstr(text, "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:") != NULL);
			UT_EQ_INT(30, r.remote_key.keysalt_len);
			UT_EQ_INT(1, r.nlocal_key);
			UT_TRUE(memcmp(r.remote_key.keysalt, r.local_key[0].keysalt, 30) != 0);
			break;
		case OFFER_PLAIN:
		case OFFER_SRTP:
			if (r.kind != OM_SDP_OFFER || r.srtp != (c->out == OFFER_SRTP) ||
			    has_crypto != (c->out == OFFER_SRTP))
				UT_FAIL("%s: expected our offer (kind %d srtp %d)", what, r.kind,
				        r.srtp);
			break;
		}
		/* SDES keys never cross TCP. */
		if (c->tr == T)
			UT_TRUE(!has_crypto && !r.srtp);
		/* Whatever we send must parse. */
		if (out.len) {
			struct om_sdp *again = NULL;
			UT_EQ_INT(0, om_sdp_parse(out.p, out.len, &again, NULL));
			om_sdp_free(again);
		}
		om_sdp_result_clear(&r);
		om_buf_free(&out);
	}
}

UT_TEST(first_acceptable_crypto)
{
	/* Weakened and KDR lines are skipped; the first usable one is taken
	 * with its tag, and the answer carries our own key of that suite. */
	static const char o[] =
	    HEAD "m=audio 5004 RTP/SAVP 8 0\r\n"
	         "a=crypto:5 AES_CM_128_HMAC_SHA1_80 inline:" K80 " UNAUTHENTICATED_SRTP\r\n"
	         "a=crypto:6 AES_CM_128_HMAC_SHA1_80 inline:" K80 " KDR=4\r\n"
	         "a=crypto:7 CRYPTO_X inline:" K80 "\r\n"
	         "a=crypto:8 AES_CM_128_HMAC_SHA1_32 inline:" K32 "\r\n"
	         "a=crypto:9 AES_CM_128_HMAC_SHA1_80 inline:" K80 "\r\n";
	struct om_sdp_result r;
	struct om_buf out;
	om_buf_init(&out);
	UT_EQ_INT(0, apply(S, L, o, &r, &out));
	UT_EQ_INT(OM_SDP_ANSWER, r.kind);
	UT_EQ_INT(8, r.remote_key.tag);
	UT_EQ_INT(OM_SDP_AES_CM_128_HMAC_SHA1_32, r.local_key[0].suite);
	UT_EQ_INT(8, r.pt); /* the offerer's first codec: PCMA */
	UT_EQ_INT(-1, r.te_pt);
	const char *t = om_buf_cstr(&out);
	UT_TRUE(strstr(t, "m=audio 40000 RTP/SAVP 8\r\na=rtpmap:8 PCMA/8000\r\n") != NULL);
	UT_TRUE(strstr(t, "a=crypto:8 AES_CM_128_HMAC_SHA1_32 inline:") != NULL);
	UT_TRUE(strstr(t, "telephone-event") == NULL);
	/* The answer parses and its key is the one in the result. */
	struct om_sdp *a = NULL;
	UT_EQ_INT(0, om_sdp_parse(out.p, out.len, &a, NULL));
	UT_EQ_INT(1, a->media[0].ncrypto);
	UT_TRUE(a->media[0].crypto[0].unusable == NULL);
	UT_EQ_MEM(r.local_key[0].keysalt, a->media[0].crypto[0].keysalt, 30);
	om_sdp_free(a);
	om_sdp_result_clear(&r);
	UT_EQ_INT(0, r.local_key[0].keysalt[0] | r.local_key[0].keysalt[29]);
	om_buf_free(&out);
}

/* Issue 11.8: a key whose lifetime a call cannot live with, or beyond the
 * suite's 2^48, is skipped and the next acceptable line is taken. */
UT_TEST(unusable_lifetime_skipped)
{
	static const char o[] = HEAD "m=audio 5004 RTP/SAVP 0\r\n"
	                             "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" K80 "|1\r\n"
	                             "a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:" K80 "|2^0\r\n"
	                             "a=crypto:3 AES_CM_128_HMAC_SHA1_80 inline:" K80 "|2^10\r\n"
	                             "a=crypto:4 AES_CM_128_HMAC_SHA1_80 inline:" K80 "|2^49\r\n"
	                             "a=crypto:5 AES_CM_128_HMAC_SHA1_32 inline:" K32 "|2^63\r\n"
	                             "a=crypto:6 AES_CM_128_HMAC_SHA1_32 inline:" K32 "|2^31\r\n";
	struct om_sdp_result r;
	struct om_buf out;
	om_buf_init(&out);
	UT_EQ_INT(0, apply(S, L, o, &r, &out));
	UT_EQ_INT(OM_SDP_ANSWER, r.kind);
	UT_EQ_INT(6, r.remote_key.tag);
	UT_EQ_INT(1ULL << 31, r.remote_key.lifetime);
	UT_TRUE(strstr(om_buf_cstr(&out), "a=crypto:6 AES_CM_128_HMAC_SHA1_32 inline:") != NULL);
	om_sdp_result_clear(&r);
	om_buf_free(&out);
	/* Only unusable lifetimes: 488 naming the first line's reason. */
	static const char bad[] = HEAD "m=audio 5004 RTP/SAVP 0\r\n"
	                               "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" K80 "|2^10\r\n";
	om_buf_init(&out);
	UT_EQ_INT(0, apply(S, L, bad, &r, &out));
	UT_EQ_INT(OM_SDP_REFUSED, r.kind);
	UT_EQ_INT(488, r.status);
	UT_EQ_STR("crypto_lifetime", r.reason);
	om_buf_free(&out);
}

/* MKI lines (RFC 4568 §6.1): an SBC offering only MKI lines is answered
 * with SRTP, its MKI kept in the remote key and one of the same length in
 * our answer; Lync's pair (MKI line first, then a plain one) takes the
 * first, an offer whose MKI is longer than 4 octets the next line. */
UT_TEST(mki_offers_answered)
{
	static const char only_mki[] =
	    HEAD "m=audio 17490 RTP/AVP 8 0 101 13\r\n"
	         "a=rtpmap:101 telephone-event/8000\r\n"
	         "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" K80 "|2^31|1:1\r\n";
	struct om_sdp_result r;
	struct om_buf out;
	om_buf_init(&out);
	UT_EQ_INT(0, apply(U, L, only_mki, &r, &out));
	UT_EQ_INT(OM_SDP_ANSWER, r.kind);
	UT_TRUE(r.srtp);
	UT_EQ_INT(1, r.remote_key.mki_len);
	UT_EQ_INT(1, r.remote_key.mki_value);
	UT_EQ_INT(1, r.local_key[0].mki_len);
	UT_TRUE(strstr(om_buf_cstr(&out), "|1:1\r\n") != NULL);
	/* Our answer parses back with its MKI usable. */
	struct om_sdp *a = NULL;
	UT_EQ_INT(0, om_sdp_parse(out.p, out.len, &a, NULL));
	UT_TRUE(a->media[0].crypto[0].unusable == NULL);
	UT_TRUE(a->media[0].crypto[0].has_mki);
	om_sdp_free(a);
	om_sdp_result_clear(&r);
	om_buf_free(&out);

	static const char lync[] =
	    HEAD "m=audio 5004 RTP/SAVP 0\r\n"
	         "a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:" K80 "|2^31|1:1\r\n"
	         "a=crypto:3 AES_CM_128_HMAC_SHA1_80 inline:" K80 "|2^31\r\n";
	om_buf_init(&out);
	UT_EQ_INT(0, apply(S, L, lync, &r, &out));
	UT_EQ_INT(2, r.remote_key.tag);
	UT_EQ_INT(1, r.remote_key.mki_len);
	om_sdp_result_clear(&r);
	om_buf_free(&out);

	static const char long_mki[] =
	    HEAD "m=audio 5004 RTP/SAVP 0\r\n"
	         "a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:" K80 "|2^31|1:8\r\n"
	         "a=crypto:3 AES_CM_128_HMAC_SHA1_80 inline:" K80 "|2^31\r\n";
	om_buf_init(&out);
	UT_EQ_INT(0, apply(S, L, long_mki, &r, &out));
	UT_EQ_INT(3, r.remote_key.tag);
	UT_EQ_INT(0, r.remote_key.mki_len);
	UT_EQ_INT(0, r.local_key[0].mki_len);
	UT_TRUE(strstr(om_buf_cstr(&out), "|") == NULL);
	om_sdp_result_clear(&r);
	om_buf_free(&out);
}

/* Issue 11.7: an SDP output buffer holding our key that grows (realloc
 * would free the old block as it is) or is freed leaves no copy of the key
 * in any block it gives back. */
struct released {
	char key_b64[48];
	int seen, blocks;
};

static void on_release(const void *p, size_t size, void *arg)
{
	struct released *r = arg;
	const char *b = p;
	size_t kl = strlen(r->key_b64);
	r->blocks++;
	for (size_t i = 0; kl && i + kl <= size; i++)
		if (memcmp(b + i, r->key_b64, kl) == 0)
			r->seen++;
}

UT_TEST(answer_key_cleansed_from_released_buffers)
{
	struct om_sdp *po = NULL;
	struct om_sdp_result r;
	struct om_buf out;
	static struct released rel;
	memset(&rel, 0, sizeof(rel));
	UT_EQ_INT(0, om_sdp_parse(offers[2], strlen(offers[2]), &po, NULL));
	om_buf_init(&out);
	UT_EQ_INT(0, om_sdp_mode_apply(U, L, po, &local, &r, &out));
	om_sdp_free(po);
	const char *k = strstr(om_buf_cstr(&out), "inline:");
	UT_TRUE(k != NULL);
	snprintf(rel.key_b64, sizeof(rel.key_b64), "%.40s", k + 7);
	/* The caller appends the rest of its message: the block moves. */
	om_alloc_set_release_hook(on_release, &rel);
	size_t cap0 = out.cap;
	while (out.cap == cap0)
		om_buf_adds(&out, "a=x-padding:0123456789012345678901234567890123456789\r\n");
	om_buf_free(&out);
	om_alloc_set_release_hook(NULL, NULL);
	om_sdp_result_clear(&r);
	UT_TRUE(rel.blocks >= 2);
	UT_EQ_INT(0, rel.seen);
}

/* RFC 5761 rtcp-mux is answered when offered; RFC 3605 a=rtcp gives the
 * peer's RTCP port. */
UT_TEST(rtcp_mux_and_rtcp_port)
{
	static const char mux[] = HEAD "m=audio 5004 RTP/AVP 0\r\na=rtcp-mux\r\n"
	                               "a=rtcp:5004 IN IP4 10.0.0.1\r\n";
	static const char plain[] = HEAD "m=audio 5004 RTP/AVP 0\r\na=rtcp:6010\r\n";
	struct om_sdp_result r;
	struct om_buf out;
	om_buf_init(&out);
	UT_EQ_INT(0, apply(U, T, mux, &r, &out));
	UT_TRUE(r.rtcp_mux);
	UT_EQ_INT(5004, r.remote_rtcp_port);
	UT_TRUE(strstr(om_buf_cstr(&out), "a=rtcp-mux\r\n") != NULL);
	om_buf_free(&out);
	om_buf_init(&out);
	UT_EQ_INT(0, apply(U, T, plain, &r, &out));
	UT_TRUE(!r.rtcp_mux);
	UT_EQ_INT(6010, r.remote_rtcp_port);
	UT_TRUE(strstr(om_buf_cstr(&out), "rtcp-mux") == NULL);
	om_buf_free(&out);
}

UT_TEST(malformed_crypto_refused)
{
	static const char dup[] = HEAD "m=audio 5004 RTP/SAVP 0\r\n"
	                               "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" K80 "\r\n"
	                               "a=crypto:1 AES_CM_128_HMAC_SHA1_32 inline:" K32 "\r\n";
	static const char avp_dup[] = HEAD "m=audio 5004 RTP/AVP 0\r\n"
	                                   "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" K80 "\r\n"
	                                   "a=crypto:1 AES_CM_128_HMAC_SHA1_32 inline:" K32 "\r\n";
	struct om_sdp_result r;
	struct om_buf out;
	om_buf_init(&out);
	UT_EQ_INT(0, apply(S, L, dup, &r, &out));
	UT_EQ_INT(488, r.status);
	UT_EQ_STR("crypto_duplicate_tag", r.reason);
	UT_EQ_INT(0, apply(U, L, avp_dup, &r, &out));
	UT_EQ_INT(488, r.status);
	UT_EQ_STR("crypto_duplicate_tag", r.reason);
	/* Over TCP the keys are ignored whatever their shape. */
	UT_EQ_INT(0, apply(U, T, avp_dup, &r, &out));
	UT_EQ_INT(OM_SDP_ANSWER, r.kind);
	UT_TRUE(r.crypto_ignored);
	om_sdp_result_clear(&r);
	om_buf_free(&out);
}

UT_TEST(other_media_rejected_in_order)
{
	static const char o[] = HEAD "m=video 6000 RTP/AVP 31 96\r\na=rtpmap:96 H264/90000\r\n"
	                             "m=audio 0 RTP/AVP 0\r\n"
	                             "m=audio 5004 RTP/AVP 97 8 101\r\na=rtpmap:97 opus/48000/2\r\n"
	                             "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\n"
	                             "m=xapplicationx 4000 XRTPX/XAVPX 100\r\n";
	struct om_sdp_result r;
	struct om_buf out;
	om_buf_init(&out);
	UT_EQ_INT(0, apply(U, T, o, &r, &out));
	UT_EQ_INT(OM_SDP_ANSWER, r.kind);
	UT_EQ_INT(2, r.media_index);
	UT_EQ_INT(8, r.pt);
	UT_EQ_INT(101, r.te_pt);
	UT_EQ_INT(5004, r.remote_port);
	const char *t = om_buf_cstr(&out);
	const char *v = strstr(t, "m=video 0 RTP/AVP 31 96\r\n");
	const char *a0 = strstr(t, "m=audio 0 RTP/AVP 0\r\n");
	const char *a = strstr(t, "m=audio 40000 RTP/AVP 8 101\r\n");
	const char *x = strstr(t, "m=xapplicationx 0 XRTPX/XAVPX 100\r\n");
	UT_TRUE(v && a0 && a && x && v < a0 && a0 < a && a < x);
	UT_TRUE(strstr(t, "a=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n") != NULL);
	om_sdp_result_clear(&r);
	om_buf_free(&out);
}

UT_TEST(preferences_and_refusals)
{
	/* Over TLS an SRTP line beats an earlier plain one (never less
	 * secure); over TCP the plain one is taken. */
	static const char both[] = HEAD "m=audio 5004 RTP/AVP 0\r\n"
	                                "m=audio 5006 RTP/SAVP 0\r\n"
	                                "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" K80 "\r\n";
	static const char video[] = HEAD "m=video 5004 RTP/AVP 31\r\n";
	static const char codec[] = HEAD "m=audio 5004 RTP/AVP 18 9\r\n";
	static const char xavp[] = HEAD "m=audio 5004 RTP/XAVP 0\r\n";
	static const char nomedia[] = HEAD;
	struct om_sdp_result r;
	struct om_buf out;
	om_buf_init(&out);
	UT_EQ_INT(0, apply(SS, L, both, &r, &out));
	UT_EQ_INT(1, r.media_index);
	UT_TRUE(r.srtp);
	UT_EQ_INT(0, apply(U, T, both, &r, &out));
	UT_EQ_INT(0, r.media_index);
	UT_TRUE(!r.srtp);
	UT_EQ_INT(0, apply(U, T, video, &r, &out));
	UT_EQ_STR("no_audio_stream", r.reason);
	UT_EQ_INT(0, apply(U, T, codec, &r, &out));
	UT_EQ_STR("no_common_codec", r.reason);
	UT_EQ_INT(0, apply(U, T, xavp, &r, &out));
	UT_EQ_STR("unsupported_transport", r.reason);
	UT_EQ_INT(0, apply(S, L, nomedia, &r, &out));
	UT_EQ_STR("no_audio_stream", r.reason);
	om_sdp_result_clear(&r);
	om_buf_free(&out);
}

UT_TEST(hold_and_direction)
{
	static const struct {
		const char *o;
		enum om_sdp_dir want;
	} t[] = {
		{ HEAD "m=audio 5004 RTP/AVP 0\r\na=sendonly\r\n", OM_SDP_RECVONLY },
		{ HEAD "m=audio 5004 RTP/AVP 0\r\na=recvonly\r\n", OM_SDP_SENDONLY },
		{ HEAD "m=audio 5004 RTP/AVP 0\r\na=inactive\r\n", OM_SDP_INACTIVE },
		{ HEAD "a=sendonly\r\nm=audio 5004 RTP/AVP 0\r\n", OM_SDP_RECVONLY },
		{ HEAD "m=audio 5004 RTP/AVP 0\r\nc=IN IP4 0.0.0.0\r\n", OM_SDP_RECVONLY },
		{ HEAD "m=audio 5004 RTP/AVP 0\r\nc=IN IP4 0.0.0.0\r\na=sendonly\r\n",
		  OM_SDP_RECVONLY },
		{ HEAD "m=audio 5004 RTP/AVP 0\r\nc=IN IP4 0.0.0.0\r\na=recvonly\r\n",
		  OM_SDP_INACTIVE },
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct om_sdp_result r;
		struct om_buf out;
		char want[40];
		om_buf_init(&out);
		UT_EQ_INT(0, apply(U, T, t[i].o, &r, &out));
		UT_EQ_INT(t[i].want, r.dir);
		snprintf(want, sizeof(want), "a=%s\r\n", om_sdp_dir_name(t[i].want));
		UT_TRUE(strstr(om_buf_cstr(&out), want) != NULL);
		om_buf_free(&out);
	}
}

UT_TEST(our_offer_gcm_first_and_answer)
{
	struct om_sdp_result r;
	struct om_buf out;
	om_buf_init(&out);
	UT_EQ_INT(0, om_sdp_mode_apply(S, L, NULL, &local, &r, &out));
	UT_EQ_INT(OM_SDP_OFFER, r.kind);
	const char *t = om_buf_cstr(&out);
	const char *order[] = { "a=crypto:1 AEAD_AES_256_GCM inline:",
		                "a=crypto:2 AEAD_AES_128_GCM inline:",
		                "a=crypto:3 AES_256_CM_HMAC_SHA1_80 inline:",
		                "a=crypto:4 AES_CM_128_HMAC_SHA1_80 inline:",
		                "a=crypto:5 AES_CM_128_HMAC_SHA1_32 inline:" };
	const char *prev = t;
	for (int i = 0; i < 5; i++) {
		const char *p = strstr(t, order[i]);
		UT_TRUE(p && p >= prev);
		prev = p;
	}
	UT_TRUE(strstr(t, "m=audio 40000 RTP/SAVP 0 8 101\r\n") != NULL);
	UT_TRUE(strstr(t, "o=openum 77 1 IN IP4 192.0.2.10\r\n") != NULL);
	/* Our offer parses, and every key is usable with the right length. */
	struct om_sdp *self = NULL;
	UT_EQ_INT(0, om_sdp_parse(out.p, out.len, &self, NULL));
	UT_EQ_INT(5, self->media[0].ncrypto);
	for (int i = 0; i < 5; i++)
		UT_TRUE(self->media[0].crypto[i].unusable == NULL);
	/* Answered by a peer picking tag 3 (AES_256_CM). */
	char ans[600];
	snprintf(ans, sizeof(ans),
	         HEAD "m=audio 7000 RTP/SAVP 8 101\r\na=rtpmap:101 telephone-event/8000\r\n"
	              "a=crypto:3 AES_256_CM_HMAC_SHA1_80 inline:%s\r\n",
	         "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLQ==");
	struct om_sdp *a = NULL;
	UT_EQ_INT(0, om_sdp_parse(ans, strlen(ans), &a, NULL));
	struct om_sdp_result keep = r;
	UT_EQ_INT(0, om_sdp_answer_take(&r, a));
	UT_EQ_INT(OM_SDP_ANSWER, r.kind);
	UT_EQ_INT(8, r.pt);
	UT_EQ_INT(101, r.te_pt);
	UT_EQ_INT(7000, r.remote_port);
	UT_EQ_INT(1, r.nlocal_key);
	UT_EQ_INT(3, r.local_key[0].tag);
	UT_EQ_MEM(keep.local_key[2].keysalt, r.local_key[0].keysalt, 46);
	UT_EQ_INT(46, r.remote_key.keysalt_len);
	UT_EQ_INT(EINVAL, om_sdp_answer_take(&r, a));
	om_sdp_free(a);
	/* An answer with a tag we never offered, or plain RTP: refused. */
	static const char bad_tag[] =
	    HEAD "m=audio 7000 RTP/SAVP 0\r\na=crypto:9 AES_CM_128_HMAC_SHA1_80 inline:" K80 "\r\n";
	static const char plain[] = HEAD "m=audio 7000 RTP/AVP 0\r\n";
	UT_EQ_INT(0, om_sdp_parse(bad_tag, sizeof(bad_tag) - 1, &a, NULL));
	r = keep;
	UT_EQ_INT(0, om_sdp_answer_take(&r, a));
	UT_EQ_STR("answer_crypto_mismatch", r.reason);
	om_sdp_free(a);
	UT_EQ_INT(0, om_sdp_parse(plain, sizeof(plain) - 1, &a, NULL));
	r = keep;
	UT_EQ_INT(0, om_sdp_answer_take(&r, a));
	UT_EQ_STR("answer_proto_mismatch", r.reason);
	om_sdp_free(a);
	om_sdp_free(self);
	om_sdp_result_clear(&keep);
	om_sdp_result_clear(&r);
	om_buf_free(&out);
}

UT_TEST(answer_to_our_offer_refusals)
{
	static const struct {
		bool srtp;
		const char *answer, *why;
	} t[] = {
		{ true, HEAD "m=audio 0 RTP/SAVP 0\r\n", "answer_rejected_audio" },
		{ true, HEAD "m=audio 7000 RTP/SAVP 0\r\nm=video 0 RTP/AVP 31\r\n",
		  "answer_rejected_audio" },
		{ true,
		  HEAD "m=audio 7000 RTP/SAVP 18\r\na=crypto:4 AES_CM_128_HMAC_SHA1_80 inline:" K80
		       "\r\n",
		  "no_common_codec" },
		{ true,
		  HEAD "m=audio 7000 RTP/SAVP 0\r\na=crypto:x AES_CM_128_HMAC_SHA1_80 inline:" K80
		       "\r\n",
		  "crypto_bad_tag" },
		{ true, HEAD "m=audio 7000 RTP/SAVP 0\r\n", "no_crypto" },
		{ true,
		  HEAD "m=audio 7000 RTP/SAVP 0\r\na=crypto:4 AES_CM_128_HMAC_SHA1_80 inline:" K80
		       "\r\n"
		       "a=crypto:5 AES_CM_128_HMAC_SHA1_32 inline:" K32 "\r\n",
		  "answer_crypto_count" },
		{ true,
		  HEAD "m=audio 7000 RTP/SAVP 0\r\na=crypto:4 AES_CM_128_HMAC_SHA1_80 inline:" K80
		       " KDR=2\r\n",
		  "crypto_kdr_unsupported" },
		{ true,
		  HEAD "m=audio 7000 RTP/SAVP 0\r\na=crypto:4 AES_CM_128_HMAC_SHA1_32 inline:" K32
		       "\r\n",
		  "answer_crypto_mismatch" }, /* tag 4 was offered with _80 */
		{ false, HEAD "m=audio 7000 RTP/SAVP 0\r\n", "answer_proto_mismatch" },
		{ false,
		  HEAD "m=audio 7000 RTP/AVP 0\r\na=crypto:4 AES_CM_128_HMAC_SHA1_80 inline:" K80
		       "\r\n",
		  NULL }, /* plain offer: keys in the answer ignored */
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct om_sdp_result r;
		struct om_buf out;
		struct om_sdp *a = NULL;
		om_buf_init(&out);
		UT_EQ_INT(0, om_sdp_offer_build(t[i].srtp, &local, &r, &out));
		UT_EQ_INT(0, om_sdp_parse(t[i].answer, strlen(t[i].answer), &a, NULL));
		UT_EQ_INT(0, om_sdp_answer_take(&r, a));
		if (t[i].why) {
			if (r.kind != OM_SDP_REFUSED || strcmp(r.reason, t[i].why) != 0)
				UT_FAIL("case %zu: expected %s, got kind %d %s", i, t[i].why,
				        r.kind, r.reason ? r.reason : "-");
			UT_EQ_INT(488, r.status);
			UT_EQ_INT(0, r.nlocal_key);
		} else {
			UT_EQ_INT(OM_SDP_ANSWER, r.kind);
			UT_TRUE(r.crypto_ignored && !r.srtp);
		}
		om_sdp_free(a);
		om_sdp_result_clear(&r);
		om_buf_free(&out);
	}
}

UT_TEST(fresh_keys_differ)
{
	struct om_sdp_result a, b;
	struct om_buf oa, ob;
	om_buf_init(&oa);
	om_buf_init(&ob);
	UT_EQ_INT(0, apply(S, L, offers[2], &a, &oa));
	UT_EQ_INT(0, apply(S, L, offers[2], &b, &ob));
	UT_TRUE(memcmp(a.local_key[0].keysalt, b.local_key[0].keysalt, 30) != 0);
	om_sdp_result_clear(&a);
	om_sdp_result_clear(&b);
	om_buf_free(&oa);
	om_buf_free(&ob);
}

static int apply_once(void *arg)
{
	const char *text = arg;
	struct om_sdp_result r;
	struct om_buf out;
	om_buf_init(&out);
	int rc = apply(S, L, text, &r, &out);
	if (rc == 0)
		om_sdp_result_clear(&r);
	om_buf_free(&out);
	return rc;
}

UT_TEST(oom_sweep)
{
	UT_TRUE(ut_oom_sweep(apply_once, (void *)offers[2]) >= 2);
	UT_TRUE(ut_oom_sweep(apply_once, NULL) >= 2);
	UT_EQ_INT(0, apply_once((void *)offers[2]));
}

UT_MAIN(UT_CASE(every_cell), UT_CASE(first_acceptable_crypto), UT_CASE(malformed_crypto_refused),
        UT_CASE(other_media_rejected_in_order), UT_CASE(preferences_and_refusals),
        UT_CASE(hold_and_direction), UT_CASE(our_offer_gcm_first_and_answer),
        UT_CASE(answer_to_our_offer_refusals), UT_CASE(fresh_keys_differ), UT_CASE(oom_sweep),
        UT_CASE(unusable_lifetime_skipped), UT_CASE(mki_offers_answered),
        UT_CASE(answer_key_cleansed_from_released_buffers), UT_CASE(rtcp_mux_and_rtcp_port))
