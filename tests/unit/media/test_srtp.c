/* test_srtp.c — the SRTP/SRTCP transform (src/media/srtp.c).
 *
 * Known answers: RFC 3711 Appendix B.2 (AES-CM keystream) and B.3 (key
 * derivation), RFC 6188 §7.2 (AES-256 key derivation), RFC 7714 §16.1.1,
 * §16.2.1 and §17.1 (AEAD_AES_128_GCM / AEAD_AES_256_GCM SRTP and SRTCP).
 * Differential: every suite, openum's backend against libsrtp2 both ways,
 * across a sequence-number rollover, with loss, a long gap and reordering,
 * and the two backends must produce the same bytes. Tamper, replay, SSRC
 * bound, malformed headers, key wiping and out-of-memory sweeps (OpenSSL's
 * allocations go through om_malloc here too, so they fail on cue). */
#include <errno.h>
#include <stddef.h>

#include <openssl/crypto.h>

#include "ut.h"
#include "media/srtp.h"
#include "media/srtp_int.h"

/* OpenSSL allocates through om_malloc in this test, so the out-of-memory
 * sweeps reach the EVP contexts as well as openum's own allocations. */
static void *ossl_malloc(size_t n, const char *f, int l)
{
	return om_malloc(n);
}
static void *ossl_realloc(void *p, size_t n, const char *f, int l)
{
	return om_realloc(p, n);
}
static void ossl_free(void *p, const char *f, int l)
{
	om_free(p);
}
static int ossl_hooked;
__attribute__((constructor)) static void hook_openssl(void)
{
	ossl_hooked = CRYPTO_set_mem_functions(ossl_malloc, ossl_realloc, ossl_free);
}

static const enum om_srtp_suite all_suites[] = {
	OM_SRTP_AES_CM_128_HMAC_SHA1_80, OM_SRTP_AES_CM_128_HMAC_SHA1_32,
	OM_SRTP_AES_256_CM_HMAC_SHA1_80, OM_SRTP_AEAD_AES_128_GCM,
	OM_SRTP_AEAD_AES_256_GCM,
};
#define NSUITES (sizeof(all_suites) / sizeof(all_suites[0]))

/* Hex to bytes; spaces ignored. Returns the length. */
static size_t unhex(const char *h, uint8_t *out, size_t cap)
{
	size_t n = 0;
	int hi = -1;
	for (; *h; h++) {
		int v;
		if (*h >= '0' && *h <= '9')
			v = *h - '0';
		else if (*h >= 'a' && *h <= 'f')
			v = *h - 'a' + 10;
		else if (*h >= 'A' && *h <= 'F')
			v = *h - 'A' + 10;
		else
			continue;
		if (hi < 0) {
			hi = v;
		} else {
			if (n < cap)
				out[n] = (uint8_t)(hi << 4 | v);
			n++;
			hi = -1;
		}
	}
	return n;
}

#define UT_EQ_HEX(hex, got, n)                                  \
	do {                                                    \
		uint8_t ut_x[256];                              \
		size_t ut_n = unhex((hex), ut_x, sizeof(ut_x)); \
		UT_EQ_INT(ut_n, (n));                           \
		UT_EQ_MEM(ut_x, (got), ut_n);                   \
	} while (0)

/* Deterministic generator for keys and payloads. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;
static uint8_t rnd8(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (uint8_t)(rng_state >> 24);
}

static void rnd(uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = rnd8();
}

/* MKI and lifetime given to every session mk() makes (tests set them). */
static const uint8_t *g_mki;
static size_t g_mki_len;
static uint64_t g_lifetime;

static struct om_srtp *mk(enum om_srtp_suite suite, enum om_srtp_backend be, enum om_srtp_dir dir,
                          const uint8_t *key)
{
	struct om_srtp_policy p = { .suite = suite, .backend = be, .dir = dir, .key = key };
	p.key_len = om_srtp_suite_key_len(suite);
	p.mki = g_mki;
	p.mki_len = g_mki_len;
	p.lifetime = g_lifetime;
	struct om_srtp *s = NULL;
	int err = om_srtp_new(&p, &s);
	if (err) {
		fprintf(stderr, "  om_srtp_new(%s, backend %d): %d\n", om_srtp_suite_name(suite),
		        be, err);
		return NULL;
	}
	return s;
}

/* RTP packet: V=2, PT 0, optional CSRCs and header extension. */
static size_t rtp_make(uint8_t *b, uint16_t seq, uint32_t ssrc, size_t payload, int cc, int ext)
{
	size_t h = 12;
	b[0] = (uint8_t)(0x80 | (ext ? 0x10 : 0) | cc);
	b[1] = 0;
	b[2] = (uint8_t)(seq >> 8);
	b[3] = (uint8_t)seq;
	b[4] = b[5] = b[6] = 0;
	b[7] = (uint8_t)(seq * 160);
	b[8] = (uint8_t)(ssrc >> 24);
	b[9] = (uint8_t)(ssrc >> 16);
	b[10] = (uint8_t)(ssrc >> 8);
	b[11] = (uint8_t)ssrc;
	for (int i = 0; i < cc; i++, h += 4)
		rnd(b + h, 4);
	if (ext) {
		b[h] = 0xbe;
		b[h + 1] = 0xde;
		b[h + 2] = 0;
		b[h + 3] = 1;
		rnd(b + h + 4, 4);
		h += 8;
	}
	rnd(b + h, payload);
	return h + payload;
}

/* RTCP sender report with one extra word. */
static size_t rtcp_make(uint8_t *b, uint32_t ssrc, size_t body)
{
	b[0] = 0x80;
	b[1] = 200;
	b[2] = 0;
	b[3] = (uint8_t)((8 + body) / 4 - 1);
	b[4] = (uint8_t)(ssrc >> 24);
	b[5] = (uint8_t)(ssrc >> 16);
	b[6] = (uint8_t)(ssrc >> 8);
	b[7] = (uint8_t)ssrc;
	rnd(b + 8, body);
	return 8 + body;
}

/* ------------------------------------------------------- known answers */

UT_TEST(kdf_rfc3711_b3)
{
	uint8_t mk_[16], ms[14], out[94];
	unhex("E1F97A0D3E018BE0D64FA32C06DE4139", mk_, 16);
	unhex("0EC675AD498AFEEBB6960B3AABE6", ms, 14);
	UT_EQ_INT(0, om_srtp_kdf(mk_, 16, ms, 14, 0x00, out, 16));
	UT_EQ_HEX("C61E7A93744F39EE10734AFE3FF7A087", out, 16);
	UT_EQ_INT(0, om_srtp_kdf(mk_, 16, ms, 14, 0x02, out, 14));
	UT_EQ_HEX("30CBBC08863D8C85D49DB34A9AE1", out, 14);
	UT_EQ_INT(0, om_srtp_kdf(mk_, 16, ms, 14, 0x01, out, 94));
	UT_EQ_HEX("CEBE321F6FF7716B6FD4AB49AF256A15 6D38BAA48F0A0ACF3C34E2359E6CDBCE"
	          "E049646C43D9327AD175578EF7227098 6371C10C9A369AC2F94A8C5FBCDDDC25"
	          "6D6E919A48B610EF17C2041E47403576 6B68642C59BBFC2F34DB60DBDFB2",
	          out, 94);
}

UT_TEST(kdf_rfc6188_aes256)
{
	uint8_t mk_[32], ms[14], out[32];
	unhex("f0f04914b513f2763a1b1fa130f10e29 98f6f6e43e4309d1e622a0e332b9f1b6", mk_, 32);
	unhex("3b04803de51ee7c96423ab5b78d2", ms, 14);
	UT_EQ_INT(0, om_srtp_kdf(mk_, 32, ms, 14, 0x00, out, 32));
	UT_EQ_HEX("5ba1064e30ec51613cad926c5a28ef73 1ec7fb397f70a960653caf06554cd8c4", out, 32);
	UT_EQ_INT(0, om_srtp_kdf(mk_, 32, ms, 14, 0x02, out, 14));
	UT_EQ_HEX("fa31791685ca444a9e07c6c64e93", out, 14);
	UT_EQ_INT(0, om_srtp_kdf(mk_, 32, ms, 14, 0x01, out, 20));
	UT_EQ_HEX("fd9c32d39ed5fbb5a9dc96b30818454d1313dc05", out, 20);
}

/* B.2: the keystream for ROC 0, SEQ 0, SSRC 0 is what encrypting zeros gives. */
UT_TEST(aes_cm_keystream_rfc3711_b2)
{
	struct om_srtp_keys k;
	memset(&k, 0, sizeof(k));
	unhex("2B7E151628AED2A6ABF7158809CF4F3C", k.enc, 16);
	unhex("F0F1F2F3F4F5F6F7F8F9FAFBFCFD", k.salt, 14);
	struct om_srtp_policy p = { .suite = OM_SRTP_AES_CM_128_HMAC_SHA1_80, .dir = OM_SRTP_SEND };
	struct om_srtp *s = NULL;
	UT_EQ_INT(0, om_srtp_new_keys(&p, &k, &k, &s));
	size_t seg = 1044512, len = 12 + seg, cap = len + 16;
	uint8_t *b = om_calloc(1, cap);
	UT_TRUE(b != NULL);
	b[0] = 0x80;
	int err = om_srtp_protect(s, b, &len, cap);
	om_srtp_free(s);
	if (err) {
		om_free(b);
		UT_FAIL("protect: %d", err);
	}
	uint8_t first[48], last[48];
	memcpy(first, b + 12, 48);
	memcpy(last, b + 12 + seg - 48, 48);
	om_free(b);
	UT_EQ_INT(12 + seg + 10, len);
	UT_EQ_HEX("E03EAD0935C95E80E166B16DD92B4EB4 D23513162B02D0F72A43A2FE4A5F97AB"
	          "41E95B3BB0A2E8DD477901E4FCA894C0",
	          first, 48);
	UT_EQ_HEX("EC8CDF7398607CB0F2D21675EA9EA1E4 362B7C3C6773516318A077D7FC5073AE"
	          "6A2CC3787889374FBEB4C81B17BA6C44",
	          last, 48);
}

static const char rfc7714_rtp[] = "8040f17b 8041f8d3 5501a0b2 47616c6c 69612065 7374206f"
                                  "6d6e6973 20646976 69736120 696e2070 61727465 73207472 6573";

static void gcm_vector(enum om_srtp_suite suite, const char *key_hex, const char *expect)
{
	struct om_srtp_keys k;
	memset(&k, 0, sizeof(k));
	unhex(key_hex, k.enc, 32);
	unhex("517569642070726f2071756f", k.salt, 12);
	struct om_srtp_policy p = { .suite = suite, .dir = OM_SRTP_SEND };
	struct om_srtp *tx = NULL, *rx = NULL;
	uint8_t b[128], plain[128];
	size_t n = unhex(rfc7714_rtp, b, sizeof(b)), len = n;
	memcpy(plain, b, n);
	UT_EQ_INT(0, om_srtp_new_keys(&p, &k, &k, &tx));
	int err = om_srtp_protect(tx, b, &len, sizeof(b));
	om_srtp_free(tx);
	UT_EQ_INT(0, err);
	UT_EQ_HEX(expect, b, len);
	p.dir = OM_SRTP_RECV;
	UT_EQ_INT(0, om_srtp_new_keys(&p, &k, &k, &rx));
	err = om_srtp_unprotect(rx, b, &len);
	om_srtp_free(rx);
	UT_EQ_INT(0, err);
	UT_EQ_INT(n, len);
	UT_EQ_MEM(plain, b, n);
}

UT_TEST(gcm128_rfc7714_16_1_1)
{
	gcm_vector(OM_SRTP_AEAD_AES_128_GCM, "000102030405060708090a0b0c0d0e0f",
	           "8040f17b 8041f8d3 5501a0b2 f24de3a3 fb34de6c acba861c 9d7e4bca be633bd5"
	           "0d294e6f 42a5f47a 51c7d19b 36de3adf 8833899d 7f27beb1 6a9152cf 765ee439"
	           "0cce");
}

UT_TEST(gcm256_rfc7714_16_2_1)
{
	gcm_vector(OM_SRTP_AEAD_AES_256_GCM,
	           "000102030405060708090a0b0c0d0e0f 101112131415161718191a1b1c1d1e1f",
	           "8040f17b 8041f8d3 5501a0b2 32b1de78 a822fe12 ef9f78fa 332e33aa b1801238"
	           "9a58e2f3 b50b2a02 76ffae0f 1ba63799 b87b7aa3 db36dfff d6b0f9bb 7878d7a7"
	           "6c13");
}

UT_TEST(gcm128_srtcp_rfc7714_17_1)
{
	static const char plain_hex[] = "81c8000d 4d617273 4e545031 4e545032 52545020 0000042a"
	                                "0000e930 4c756e61 deadbeef deadbeef deadbeef deadbeef"
	                                "deadbeef";
	static const char prot_hex[] = "81c8000d 4d617273 63e94885 dcdab67c a727d766 2f6b7e99"
	                               "7ff5c0f7 6c06f32d c676a5f1 730d6fda 4ce09b46 86303ded"
	                               "0bb9275b c84aa458 96cf4d2f c5abf872 45d9eade 800005d4";
	struct om_srtp_keys k;
	memset(&k, 0, sizeof(k));
	unhex("000102030405060708090a0b0c0d0e0f", k.enc, 16);
	unhex("517569642070726f2071756f", k.salt, 12);
	struct om_srtp_policy p = { .suite = OM_SRTP_AEAD_AES_128_GCM, .dir = OM_SRTP_SEND };
	struct om_srtp *tx = NULL, *rx = NULL;
	uint8_t b[128], plain[128];
	size_t n = unhex(plain_hex, b, sizeof(b)), len = n;
	memcpy(plain, b, n);
	UT_EQ_INT(0, om_srtp_new_keys(&p, &k, &k, &tx));
	UT_EQ_INT(0, om_srtp_set_rtcp_index(tx, 0x4d617273, 0x5d4));
	int err = om_srtp_protect_rtcp(tx, b, &len, sizeof(b));
	om_srtp_free(tx);
	UT_EQ_INT(0, err);
	UT_EQ_HEX(prot_hex, b, len);
	p.dir = OM_SRTP_RECV;
	UT_EQ_INT(0, om_srtp_new_keys(&p, &k, &k, &rx));
	err = om_srtp_unprotect_rtcp(rx, b, &len);
	om_srtp_free(rx);
	UT_EQ_INT(0, err);
	UT_EQ_INT(n, len);
	UT_EQ_MEM(plain, b, n);
}

/* --------------------------------------------------------- differential */

#define NPKT 700

struct pkt {
	uint8_t plain[256], wire[256];
	size_t plain_len, wire_len;
};

/* The receiver's order: packet 0..NPKT-1 with every 9th lost, pairs swapped
 * every 13, and one packet held back 60 places (inside the window). */
static size_t delivery_order(size_t *order)
{
	size_t n = 0, held = 0;
	int holding = 0;
	for (size_t i = 0; i < NPKT; i++) {
		if (i % 9 == 4)
			continue;
		if (i == 200) {
			held = i;
			holding = 1;
			continue;
		}
		order[n++] = i;
		if (holding && i == 260) {
			order[n++] = held;
			holding = 0;
		}
	}
	for (size_t i = 1; i + 1 < n; i += 13) {
		size_t t = order[i];
		order[i] = order[i + 1];
		order[i + 1] = t;
	}
	return n;
}

static void differential(enum om_srtp_suite suite, enum om_srtp_backend txb,
                         enum om_srtp_backend rxb)
{
	static struct pkt pk[NPKT];
	static size_t order[NPKT];
	uint8_t key[64];
	rnd(key, sizeof(key));
	enum om_srtp_backend other =
	    txb == OM_SRTP_BACKEND_OPENSSL ? OM_SRTP_BACKEND_LIBSRTP2 : OM_SRTP_BACKEND_OPENSSL;
	struct om_srtp *tx = mk(suite, txb, OM_SRTP_SEND, key);
	struct om_srtp *ref = mk(suite, other, OM_SRTP_SEND, key);
	struct om_srtp *rx = mk(suite, rxb, OM_SRTP_RECV, key);
	int fail = !tx || !ref || !rx;
	const char *what = "";
	size_t at = 0;
	int err = 0;
	/* 65200 + 700 crosses 65535: the ROC becomes 1; at 400 a gap of 3000. */
	uint16_t seq = 65200;
	for (size_t i = 0; i < NPKT && !fail; i++, seq++) {
		if (i == 400)
			seq = (uint16_t)(seq + 3000);
		struct pkt *p = &pk[i];
		p->plain_len = rtp_make(p->plain, seq, 0x11223344, 160 - (i % 7) * 20,
		                        (int)(i % 5 == 0), (int)(i % 3 == 0));
		memcpy(p->wire, p->plain, p->plain_len);
		p->wire_len = p->plain_len;
		uint8_t again[256];
		size_t again_len = p->plain_len;
		memcpy(again, p->plain, p->plain_len);
		if ((err = om_srtp_protect(tx, p->wire, &p->wire_len, sizeof(p->wire))) ||
		    (err = om_srtp_protect(ref, again, &again_len, sizeof(again)))) {
			fail = 1, what = "protect", at = i;
		} else if (again_len != p->wire_len || memcmp(again, p->wire, again_len) != 0) {
			fail = 1, what = "backends differ", at = i;
		}
	}
	size_t n = fail ? 0 : delivery_order(order);
	for (size_t j = 0; j < n && !fail; j++) {
		struct pkt *p = &pk[order[j]];
		size_t len = p->wire_len;
		if ((err = om_srtp_unprotect(rx, p->wire, &len)))
			fail = 1, what = "unprotect", at = order[j];
		else if (len != p->plain_len || memcmp(p->wire, p->plain, len) != 0)
			fail = 1, what = "plaintext differs", at = order[j];
	}
	/* SRTCP: 40 reports, the last two swapped, one lost. */
	for (size_t i = 0; i < 40 && !fail; i++) {
		struct pkt *p = &pk[i];
		p->plain_len = rtcp_make(p->plain, 0x11223344, 24 + 4 * (i % 4));
		memcpy(p->wire, p->plain, p->plain_len);
		p->wire_len = p->plain_len;
		if ((err = om_srtp_protect_rtcp(tx, p->wire, &p->wire_len, sizeof(p->wire))))
			fail = 1, what = "protect_rtcp", at = i;
	}
	for (size_t j = 0; j < 40 && !fail; j++) {
		size_t i = j == 38 ? 39 : j == 39 ? 38 : j;
		if (i == 17)
			continue;
		struct pkt *p = &pk[i];
		size_t len = p->wire_len;
		if ((err = om_srtp_unprotect_rtcp(rx, p->wire, &len)))
			fail = 1, what = "unprotect_rtcp", at = i;
		else if (len != p->plain_len || memcmp(p->wire, p->plain, len) != 0)
			fail = 1, what = "rtcp plaintext differs", at = i;
	}
	om_srtp_free(tx);
	om_srtp_free(ref);
	om_srtp_free(rx);
	if (fail)
		UT_FAIL("%s, backend %d -> %d: %s at packet %zu (error %d)",
		        om_srtp_suite_name(suite), txb, rxb, what, at, err);
}

UT_TEST(differential_openssl_to_libsrtp2)
{
	for (size_t i = 0; i < NSUITES; i++)
		differential(all_suites[i], OM_SRTP_BACKEND_OPENSSL, OM_SRTP_BACKEND_LIBSRTP2);
}

UT_TEST(differential_libsrtp2_to_openssl)
{
	for (size_t i = 0; i < NSUITES; i++)
		differential(all_suites[i], OM_SRTP_BACKEND_LIBSRTP2, OM_SRTP_BACKEND_OPENSSL);
}

UT_TEST(same_backend_roundtrip)
{
	for (size_t i = 0; i < NSUITES; i++) {
		differential(all_suites[i], OM_SRTP_BACKEND_OPENSSL, OM_SRTP_BACKEND_OPENSSL);
		differential(all_suites[i], OM_SRTP_BACKEND_LIBSRTP2, OM_SRTP_BACKEND_LIBSRTP2);
	}
}

/* RFC 3711 §3.1 MKI of 1..4 octets: both backends write it at the same
 * place (CM: before the tag; AEAD: after it) and read each other's. */
UT_TEST(differential_with_mki)
{
	static const uint8_t mki[4] = { 0xde, 0xad, 0xbe, 0xef };
	for (size_t l = 1; l <= 4; l++) {
		g_mki = mki + 4 - l;
		g_mki_len = l;
		for (size_t i = 0; i < NSUITES; i++) {
			differential(all_suites[i], OM_SRTP_BACKEND_OPENSSL,
			             OM_SRTP_BACKEND_LIBSRTP2);
			differential(all_suites[i], OM_SRTP_BACKEND_LIBSRTP2,
			             OM_SRTP_BACKEND_OPENSSL);
		}
	}
	g_mki = NULL;
	g_mki_len = 0;
}

/* A packet carrying another MKI (or none where one is expected) is refused
 * before any crypto, and the session state is unchanged: the genuine packet
 * passes afterwards. */
UT_TEST(mki_mismatch_refused)
{
	static const uint8_t mki_a[2] = { 0, 1 }, mki_b[2] = { 0, 2 };
	uint8_t key[64], buf[256], keep[256];
	rnd(key, sizeof(key));
	for (size_t i = 0; i < NSUITES; i++) {
		for (int be = 0; be < 2; be++) {
			g_mki = mki_a;
			g_mki_len = 2;
			struct om_srtp *tx =
			    mk(all_suites[i], (enum om_srtp_backend)be, OM_SRTP_SEND, key);
			g_mki = mki_b;
			struct om_srtp *rxb =
			    mk(all_suites[i], (enum om_srtp_backend)be, OM_SRTP_RECV, key);
			g_mki = mki_a;
			struct om_srtp *rxa =
			    mk(all_suites[i], (enum om_srtp_backend)be, OM_SRTP_RECV, key);
			g_mki = NULL;
			g_mki_len = 0;
			struct om_srtp *rxn =
			    mk(all_suites[i], (enum om_srtp_backend)be, OM_SRTP_RECV, key);
			UT_TRUE(tx && rxa && rxb && rxn);
			for (int rtcp = 0; rtcp < 2; rtcp++) {
				size_t len =
				    rtcp ? rtcp_make(buf, 7, 20) : rtp_make(buf, 1, 7, 160, 0, 0);
				UT_EQ_INT(0, rtcp ? om_srtp_protect_rtcp(tx, buf, &len, sizeof(buf))
				                  : om_srtp_protect(tx, buf, &len, sizeof(buf)));
				memcpy(keep, buf, len);
				size_t l2 = len;
				UT_EQ_INT(EKEYREJECTED, rtcp ? om_srtp_unprotect_rtcp(rxb, buf, &l2)
				                             : om_srtp_unprotect(rxb, buf, &l2));
				UT_EQ_INT(len, l2);
				/* Without an MKI the receiver reads the MKI as tag bytes. */
				memcpy(buf, keep, len);
				int e = rtcp ? om_srtp_unprotect_rtcp(rxn, buf, &l2)
				             : om_srtp_unprotect(rxn, buf, &l2);
				UT_TRUE(e == EBADMSG || e == EPROTO);
				memcpy(buf, keep, len);
				l2 = len;
				UT_EQ_INT(0, rtcp ? om_srtp_unprotect_rtcp(rxa, buf, &l2)
				                  : om_srtp_unprotect(rxa, buf, &l2));
			}
			om_srtp_free(tx);
			om_srtp_free(rxa);
			om_srtp_free(rxb);
			om_srtp_free(rxn);
		}
	}
}

/* The master key lifetime (RFC 3711 §9.2, SDES "|2^n"): after `lifetime`
 * packets of a plane every further one is refused, both ways, both
 * backends; the other plane counts on its own. */
UT_TEST(lifetime_enforced)
{
	uint8_t key[64], buf[256];
	rnd(key, sizeof(key));
	for (size_t i = 0; i < NSUITES; i++) {
		for (int be = 0; be < 2; be++) {
			g_lifetime = 5;
			struct om_srtp *tx =
			    mk(all_suites[i], (enum om_srtp_backend)be, OM_SRTP_SEND, key);
			struct om_srtp *rx =
			    mk(all_suites[i], (enum om_srtp_backend)be, OM_SRTP_RECV, key);
			g_lifetime = 0;
			UT_TRUE(tx && rx);
			uint8_t w6[256];
			size_t w6_len = 0;
			for (uint16_t q = 0; q < 6; q++) {
				size_t len = rtp_make(buf, q, 9, 80, 0, 0);
				int e = om_srtp_protect(tx, buf, &len, sizeof(buf));
				UT_EQ_INT(q < 5 ? 0 : EKEYEXPIRED, e);
				if (e == 0) {
					UT_EQ_INT(0, om_srtp_unprotect(rx, buf, &len));
				}
			}
			/* A sixth packet protected elsewhere with the same key is
			 * refused by the receiver too. */
			g_lifetime = 0;
			struct om_srtp *tx2 =
			    mk(all_suites[i], (enum om_srtp_backend)be, OM_SRTP_SEND, key);
			w6_len = rtp_make(w6, 5, 9, 80, 0, 0);
			UT_TRUE(tx2);
			UT_EQ_INT(0, om_srtp_protect(tx2, w6, &w6_len, sizeof(w6)));
			UT_EQ_INT(EKEYEXPIRED, om_srtp_unprotect(rx, w6, &w6_len));
			size_t len = rtcp_make(buf, 9, 20);
			UT_EQ_INT(0, om_srtp_protect_rtcp(tx, buf, &len, sizeof(buf)));
			UT_EQ_INT(0, om_srtp_unprotect_rtcp(rx, buf, &len));
			om_srtp_free(tx);
			om_srtp_free(tx2);
			om_srtp_free(rx);
		}
	}
	struct om_srtp_policy p = { .suite = OM_SRTP_AES_CM_128_HMAC_SHA1_80,
		                    .key = key,
		                    .key_len = 30,
		                    .lifetime = (1ULL << 48) + 1 };
	struct om_srtp *s = NULL;
	UT_EQ_INT(EINVAL, om_srtp_new(&p, &s));
	p.lifetime = 0;
	p.mki_len = 5;
	p.mki = key;
	UT_EQ_INT(EINVAL, om_srtp_new(&p, &s));
	p.mki = NULL;
	p.mki_len = 1;
	UT_EQ_INT(EINVAL, om_srtp_new(&p, &s));
}

/* Three rollovers with bursts of loss up to 30,000 packets: the receiver's
 * ROC must follow (both backends, byte-identical output). */
UT_TEST(roc_follows_several_rollovers)
{
	uint8_t key[64], a[64], b[64];
	rnd(key, sizeof(key));
	for (size_t si = 0; si < NSUITES; si += 3) {
		enum om_srtp_suite su = all_suites[si];
		struct om_srtp *tx = mk(su, OM_SRTP_BACKEND_OPENSSL, OM_SRTP_SEND, key);
		struct om_srtp *ref = mk(su, OM_SRTP_BACKEND_LIBSRTP2, OM_SRTP_SEND, key);
		struct om_srtp *rx = mk(su, OM_SRTP_BACKEND_OPENSSL, OM_SRTP_RECV, key);
		UT_TRUE(tx && ref && rx);
		uint32_t seq = 1;
		int err = 0, same = 1;
		unsigned delivered = 0;
		while (seq < 3 * 65536 + 1000 && !err && same) {
			size_t la = rtp_make(a, (uint16_t)seq, 77, 20, 0, 0), lb = la;
			memcpy(b, a, la);
			if ((err = om_srtp_protect(tx, a, &la, sizeof(a))) ||
			    (err = om_srtp_protect(ref, b, &lb, sizeof(b))))
				break;
			same = la == lb && memcmp(a, b, la) == 0;
			/* deliver one packet in 50, and nothing for a while after
			 * every 20,000th */
			if (seq % 50 == 0 && (seq / 20000) % 2 == 0) {
				if ((err = om_srtp_unprotect(rx, a, &la)))
					break;
				delivered++;
			}
			seq += (seq % 20000 == 0) ? 30000 : 1;
		}
		int64_t top = rx->streams[0].rtp_top;
		om_srtp_free(tx);
		om_srtp_free(ref);
		om_srtp_free(rx);
		UT_EQ_INT(0, err);
		UT_TRUE(same);
		UT_TRUE(delivered > 1000);
		UT_TRUE((top >> 16) >= 2);
	}
}

/* -------------------------------------------------------------- tamper */

/* Flip every bit of a protected packet: each copy must be refused, the
 * stream state must not move, and the genuine packet must then pass. */
static void tamper(enum om_srtp_suite suite, enum om_srtp_backend be, int rtcp)
{
	uint8_t key[64], plain[256], wire[256], t[256];
	rnd(key, sizeof(key));
	struct om_srtp *tx = mk(suite, be, OM_SRTP_SEND, key);
	struct om_srtp *rx = mk(suite, be, OM_SRTP_RECV, key);
	UT_TRUE(tx && rx);
	size_t first = 0, n, len;
	int err = 0, bad = 0;
	/* One genuine packet first so the receiver has state to protect. */
	for (int k = 0; k < 2 && !bad; k++) {
		n = rtcp ? rtcp_make(plain, 0xcafe, 28)
		         : rtp_make(plain, (uint16_t)(1000 + k), 0xcafe, 160, 1, 1);
		memcpy(wire, plain, n);
		len = n;
		err = rtcp ? om_srtp_protect_rtcp(tx, wire, &len, sizeof(wire))
		           : om_srtp_protect(tx, wire, &len, sizeof(wire));
		if (err)
			bad = 1;
		if (k == 0 && !bad) {
			memcpy(t, wire, len);
			err = rtcp ? om_srtp_unprotect_rtcp(rx, t, &len)
			           : om_srtp_unprotect(rx, t, &len);
			bad = err != 0;
			first = 1;
		}
	}
	struct om_srtp_stream before[OM_SRTP_MAX_SSRCS];
	memcpy(before, rx->streams, sizeof(before));
	unsigned nbefore = rx->nstreams;
	size_t at = 0;
	for (size_t bit = 0; bit < len * 8 && !bad; bit++) {
		size_t l = len;
		memcpy(t, wire, len);
		t[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		err = rtcp ? om_srtp_unprotect_rtcp(rx, t, &l) : om_srtp_unprotect(rx, t, &l);
		/* Header bits (and the SRTCP index word) may make the packet
		 * malformed or move it out of the window; any other bit must
		 * fail the tag. */
		size_t byte = bit / 8, hdr = rtcp ? 8 : om_srtp_rtp_hdr_len(wire, len);
		size_t ew = !rtcp ? len : om_srtp_suite_info(suite)->gcm ? len - 4 : len - 14;
		int strict = byte >= hdr && (byte < ew || byte >= ew + 4);
		if (err == 0 || (strict && err != EBADMSG)) {
			bad = 2, at = bit;
		} else if (be == OM_SRTP_BACKEND_OPENSSL &&
		           (rx->nstreams != nbefore ||
		            memcmp(before, rx->streams, sizeof(before)))) {
			bad = 3, at = bit;
		}
	}
	if (!bad) {
		size_t l = len;
		err = rtcp ? om_srtp_unprotect_rtcp(rx, wire, &l) : om_srtp_unprotect(rx, wire, &l);
		if (err || l != n || memcmp(wire, plain, n) != 0)
			bad = 4;
	}
	om_srtp_free(tx);
	om_srtp_free(rx);
	(void)first;
	if (bad)
		UT_FAIL("%s backend %d rtcp %d: case %d bit %zu error %d",
		        om_srtp_suite_name(suite), be, rtcp, bad, at, err);
}

UT_TEST(tamper_every_bit)
{
	for (size_t i = 0; i < NSUITES; i++)
		for (int rtcp = 0; rtcp < 2; rtcp++) {
			tamper(all_suites[i], OM_SRTP_BACKEND_OPENSSL, rtcp);
			tamper(all_suites[i], OM_SRTP_BACKEND_LIBSRTP2, rtcp);
		}
}

/* -------------------------------------------------------------- replay */

static void replay(enum om_srtp_suite suite, enum om_srtp_backend be)
{
	uint8_t key[64];
	static uint8_t w[300][200];
	static size_t wl[300];
	rnd(key, sizeof(key));
	struct om_srtp *tx = mk(suite, be, OM_SRTP_SEND, key);
	struct om_srtp *rx = mk(suite, be, OM_SRTP_RECV, key);
	UT_TRUE(tx && rx);
	int e[8];
	for (int i = 0; i < 300; i++) {
		wl[i] = rtp_make(w[i], (uint16_t)(500 + i), 0xabc, 100, 0, 0);
		UT_EQ_INT(0, om_srtp_protect(tx, w[i], &wl[i], sizeof(w[i])));
	}
	uint8_t t[200];
	size_t l;
#define RX(i) (memcpy(t, w[i], wl[i]), l = wl[i], om_srtp_unprotect(rx, t, &l))
	e[0] = RX(10);  /* first */
	e[1] = RX(10);  /* same again */
	e[2] = RX(299); /* far ahead */
	e[3] = RX(250); /* 49 behind: inside the window */
	e[4] = RX(250); /* replayed */
	e[5] = RX(100); /* 199 behind: older than the window */
	e[6] = RX(172); /* exactly 127 behind: the oldest still inside */
	e[7] = RX(171); /* 128 behind */
#undef RX
	/* The sender refuses to send an index twice (keystream reuse). */
	uint8_t again[200];
	size_t al = (size_t)rtp_make(again, 500 + 299, 0xabc, 100, 0, 0);
	int tx_again = om_srtp_protect(tx, again, &al, sizeof(again));
	om_srtp_free(tx);
	om_srtp_free(rx);
	UT_EQ_INT(0, e[0]);
	UT_EQ_INT(EALREADY, e[1]);
	UT_EQ_INT(0, e[2]);
	UT_EQ_INT(0, e[3]);
	UT_EQ_INT(EALREADY, e[4]);
	UT_EQ_INT(ESTALE, e[5]);
	UT_EQ_INT(0, e[6]);
	UT_EQ_INT(ESTALE, e[7]);
	UT_EQ_INT(EALREADY, tx_again);
}

UT_TEST(replay_window)
{
	for (size_t i = 0; i < NSUITES; i++) {
		replay(all_suites[i], OM_SRTP_BACKEND_OPENSSL);
		replay(all_suites[i], OM_SRTP_BACKEND_LIBSRTP2);
	}
}

static void replay_rtcp(enum om_srtp_suite suite, enum om_srtp_backend be)
{
	uint8_t key[64], w[200][64], t[64];
	size_t wl[200], l;
	rnd(key, sizeof(key));
	struct om_srtp *tx = mk(suite, be, OM_SRTP_SEND, key);
	struct om_srtp *rx = mk(suite, be, OM_SRTP_RECV, key);
	UT_TRUE(tx && rx);
	for (int i = 0; i < 200; i++) {
		wl[i] = rtcp_make(w[i], 0x5150, 20);
		UT_EQ_INT(0, om_srtp_protect_rtcp(tx, w[i], &wl[i], sizeof(w[i])));
	}
	int e[5];
#define RX(i) (memcpy(t, w[i], wl[i]), l = wl[i], om_srtp_unprotect_rtcp(rx, t, &l))
	e[0] = RX(5);
	e[1] = RX(5);
	e[2] = RX(199);
	e[3] = RX(150);
	e[4] = RX(20);
#undef RX
	om_srtp_free(tx);
	om_srtp_free(rx);
	UT_EQ_INT(0, e[0]);
	UT_EQ_INT(EALREADY, e[1]);
	UT_EQ_INT(0, e[2]);
	UT_EQ_INT(0, e[3]);
	UT_EQ_INT(ESTALE, e[4]);
}

UT_TEST(replay_window_rtcp)
{
	for (size_t i = 0; i < NSUITES; i++) {
		replay_rtcp(all_suites[i], OM_SRTP_BACKEND_OPENSSL);
		replay_rtcp(all_suites[i], OM_SRTP_BACKEND_LIBSRTP2);
	}
}

/* ----------------------------------------------------------- the rest */

UT_TEST(ssrc_table_is_bounded)
{
	for (int be = 0; be < 2; be++) {
		uint8_t key[30], b[64];
		rnd(key, sizeof(key));
		struct om_srtp_policy p = { .suite = OM_SRTP_AES_CM_128_HMAC_SHA1_80,
			                    .backend = (enum om_srtp_backend)be,
			                    .dir = OM_SRTP_SEND,
			                    .key = key,
			                    .key_len = 30,
			                    .max_ssrcs = 2 };
		struct om_srtp *tx = NULL, *rx = NULL;
		UT_EQ_INT(0, om_srtp_new(&p, &tx));
		p.dir = OM_SRTP_RECV;
		UT_EQ_INT(0, om_srtp_new(&p, &rx));
		int e[4];
		size_t l;
		for (uint32_t ssrc = 1; ssrc <= 3; ssrc++) {
			l = rtp_make(b, 7, ssrc, 20, 0, 0);
			e[ssrc - 1] = om_srtp_protect(tx, b, &l, sizeof(b));
			if (ssrc == 3) {
				/* a sender with room makes the third; the receiver refuses it */
				struct om_srtp *tx2 = mk(p.suite, p.backend, OM_SRTP_SEND, key);
				l = rtp_make(b, 7, ssrc, 20, 0, 0);
				UT_EQ_INT(0, om_srtp_protect(tx2, b, &l, sizeof(b)));
				om_srtp_free(tx2);
				e[3] = om_srtp_unprotect(rx, b, &l);
			} else {
				om_srtp_unprotect(rx, b, &l);
			}
		}
		om_srtp_free(tx);
		om_srtp_free(rx);
		UT_EQ_INT(0, e[0]);
		UT_EQ_INT(0, e[1]);
		UT_EQ_INT(ENOSPC, e[2]);
		UT_EQ_INT(ENOSPC, e[3]);
	}
}

UT_TEST(malformed_and_misuse)
{
	for (int be = 0; be < 2; be++) {
		uint8_t key[64], b[128];
		rnd(key, sizeof(key));
		struct om_srtp *tx = mk(OM_SRTP_AES_CM_128_HMAC_SHA1_80, be, OM_SRTP_SEND, key);
		struct om_srtp *rx = mk(OM_SRTP_AES_CM_128_HMAC_SHA1_80, be, OM_SRTP_RECV, key);
		UT_TRUE(tx && rx);
		size_t l = rtp_make(b, 1, 9, 20, 0, 0), l0 = l;
		int e[12];
		e[0] = om_srtp_protect(tx, b, &l, l + 9); /* no room for the tag */
		size_t s = 11;
		e[1] = om_srtp_protect(tx, b, &s, sizeof(b)); /* shorter than a header */
		b[0] = 0x40;                                  /* version 1 */
		e[2] = om_srtp_protect(tx, b, &l, sizeof(b));
		b[0] = 0x8f; /* 15 CSRCs do not fit */
		e[3] = om_srtp_protect(tx, b, &l, sizeof(b));
		b[0] = 0x90; /* extension longer than the packet */
		b[14] = 0xff;
		e[4] = om_srtp_protect(tx, b, &l, sizeof(b));
		l = rtp_make(b, 1, 9, 20, 0, 0);
		e[5] = om_srtp_unprotect(tx, b, &l); /* wrong direction */
		e[6] = om_srtp_protect(rx, b, &l, sizeof(b));
		s = 12 + 9; /* header + less than a tag */
		e[7] = om_srtp_unprotect(rx, b, &s);
		s = 7;
		e[8] = om_srtp_unprotect_rtcp(rx, b, &s);
		s = 8 + 4 + 9;
		b[0] = 0x80;
		e[9] = om_srtp_unprotect_rtcp(rx, b, &s);
		s = 8;
		e[10] = om_srtp_protect_rtcp(tx, b, &s, 8 + 13);
		e[11] = (int)(l == l0);
		om_srtp_free(tx);
		om_srtp_free(rx);
		UT_EQ_INT(EMSGSIZE, e[0]);
		UT_EQ_INT(EPROTO, e[1]);
		UT_EQ_INT(EPROTO, e[2]);
		UT_EQ_INT(EPROTO, e[3]);
		UT_EQ_INT(EPROTO, e[4]);
		UT_EQ_INT(EINVAL, e[5]);
		UT_EQ_INT(EINVAL, e[6]);
		UT_EQ_INT(EPROTO, e[7]);
		UT_EQ_INT(EPROTO, e[8]);
		UT_EQ_INT(EPROTO, e[9]);
		UT_EQ_INT(EMSGSIZE, e[10]);
		UT_EQ_INT(1, e[11]);
	}
}

UT_TEST(bad_policies)
{
	uint8_t key[64] = { 0 };
	struct om_srtp *s = NULL;
	struct om_srtp_policy p = { .suite = OM_SRTP_AES_CM_128_HMAC_SHA1_80,
		                    .key = key,
		                    .key_len = 30 };
	p.key_len = 29;
	UT_EQ_INT(EINVAL, om_srtp_new(&p, &s));
	p.key_len = 30;
	p.kdr = 1 << 16;
	UT_EQ_INT(ENOTSUP, om_srtp_new(&p, &s));
	p.kdr = 0;
	p.suite = (enum om_srtp_suite)99;
	UT_EQ_INT(EINVAL, om_srtp_new(&p, &s));
	p.suite = OM_SRTP_AEAD_AES_128_GCM; /* wants 28 */
	UT_EQ_INT(EINVAL, om_srtp_new(&p, &s));
	p.backend = (enum om_srtp_backend)7;
	p.key_len = 28;
	UT_EQ_INT(EINVAL, om_srtp_new(&p, &s));
	UT_TRUE(s == NULL);
}

UT_TEST(suite_names)
{
	for (size_t i = 0; i < NSUITES; i++) {
		const char *n = om_srtp_suite_name(all_suites[i]);
		enum om_srtp_suite back;
		UT_TRUE(n != NULL);
		UT_EQ_INT(0, om_srtp_suite_parse(n, strlen(n), &back));
		UT_EQ_INT(all_suites[i], back);
	}
	enum om_srtp_suite x;
	UT_EQ_INT(ENOTSUP, om_srtp_suite_parse("AES_CM_192_HMAC_SHA1_80", 23, &x));
	UT_EQ_INT(ENOTSUP, om_srtp_suite_parse("AES_CM_128_HMAC_SHA1_8", 22, &x));
	UT_EQ_INT(30, om_srtp_suite_key_len(OM_SRTP_AES_CM_128_HMAC_SHA1_32));
	UT_EQ_INT(46, om_srtp_suite_key_len(OM_SRTP_AES_256_CM_HMAC_SHA1_80));
	UT_EQ_INT(28, om_srtp_suite_key_len(OM_SRTP_AEAD_AES_128_GCM));
	UT_EQ_INT(44, om_srtp_suite_key_len(OM_SRTP_AEAD_AES_256_GCM));
	enum om_srtp_backend be;
	UT_EQ_INT(0, om_srtp_backend_parse("libsrtp2", &be));
	UT_EQ_INT(OM_SRTP_BACKEND_LIBSRTP2, be);
	UT_EQ_INT(0, om_srtp_backend_parse("openssl", &be));
	UT_EQ_INT(OM_SRTP_BACKEND_OPENSSL, be);
	UT_EQ_INT(EINVAL, om_srtp_backend_parse("nss", &be));
}

/* What om_srtp_free leaves behind before it frees: nothing but zeros. The
 * freed memory itself cannot be read, so the wipe step is tested alone. */
UT_TEST(keys_zeroed_on_free)
{
	uint8_t key[64], b[256];
	rnd(key, sizeof(key));
	for (size_t i = 0; i < NSUITES; i++) {
		struct om_srtp *s = mk(all_suites[i], OM_SRTP_BACKEND_OPENSSL, OM_SRTP_SEND, key);
		UT_TRUE(s != NULL);
		size_t l = rtp_make(b, 1, 2, 40, 0, 0);
		UT_EQ_INT(0, om_srtp_protect(s, b, &l, sizeof(b)));
		struct om_srtp_stream *streams = s->streams;
		unsigned nmax = s->max_streams;
		om_srtp_wipe(s);
		const uint8_t *raw = (const uint8_t *)s;
		for (size_t j = 0; j < sizeof(*s); j++) {
			if (j >= offsetof(struct om_srtp, streams) &&
			    j < offsetof(struct om_srtp, streams) + sizeof(s->streams))
				continue;
			UT_EQ_INT(0, raw[j]);
		}
		raw = (const uint8_t *)streams;
		for (size_t j = 0; j < nmax * sizeof(*streams); j++)
			UT_EQ_INT(0, raw[j]);
		om_free(streams);
		om_free(s);
	}
}

struct oom_arg {
	enum om_srtp_suite suite;
	enum om_srtp_backend be;
};

/* A session pair, one packet and one report each way. */
static int oom_new(void *a)
{
	const struct oom_arg *o = a;
	uint8_t key[64] = { 1, 2, 3 }, b[256];
	struct om_srtp *tx = NULL, *rx = NULL;
	struct om_srtp_policy p = {
		.suite = o->suite, .backend = o->be, .dir = OM_SRTP_SEND, .key = key
	};
	p.key_len = om_srtp_suite_key_len(o->suite);
	int err = om_srtp_new(&p, &tx);
	if (err)
		return err;
	p.dir = OM_SRTP_RECV;
	if ((err = om_srtp_new(&p, &rx)))
		goto out;
	size_t l = rtp_make(b, 1, 2, 40, 0, 0);
	if ((err = om_srtp_protect(tx, b, &l, sizeof(b))) || (err = om_srtp_unprotect(rx, b, &l)))
		goto out;
	l = rtcp_make(b, 2, 20);
	if ((err = om_srtp_protect_rtcp(tx, b, &l, sizeof(b))) ||
	    (err = om_srtp_unprotect_rtcp(rx, b, &l)))
		goto out;
out:
	om_srtp_free(tx);
	om_srtp_free(rx);
	return err;
}

UT_TEST(oom_sweep)
{
	UT_TRUE(ossl_hooked);
	for (size_t i = 0; i < NSUITES; i++)
		for (int be = 0; be < 2; be++) {
			struct oom_arg a = { all_suites[i], (enum om_srtp_backend)be };
			UT_EQ_INT(0, oom_new(&a)); /* warm-up: algorithm fetches */
			/* Not ut_oom_sweep (which wants ENOMEM from every faulted
			 * run): OpenSSL's own allocations go through the hook too,
			 * and it gets over a few failures by itself (its error
			 * queue, its name map); those runs succeed. */
			unsigned long runs;
			for (runs = 1; runs < 100000; runs++) {
				om_alloc_fail_at(runs, 0);
				(void)oom_new(&a);
				int hit = om_alloc_fault_hit();
				om_alloc_fail_at(0, 0);
				if (!hit)
					break;
			}
			UT_TRUE(runs >= 2);
			/* every injected failure is reported as ENOMEM, except the
			 * few OpenSSL gets over by itself */
			unsigned long enomem = 0;
			for (unsigned long n = 1; n < runs; n++) {
				om_alloc_fail_at(n, 0);
				int r = oom_new(&a);
				om_alloc_fail_at(0, 0);
				enomem += r == ENOMEM;
				if (r != ENOMEM && r != 0)
					UT_FAIL("%s backend %d: allocation %lu failed, got %d",
					        om_srtp_suite_name(a.suite), be, n, r);
			}
			if (getenv("OOM_DEBUG"))
				fprintf(stderr, "%s backend %d: %lu allocations, %lu ENOMEM\n",
				        om_srtp_suite_name(a.suite), be, runs - 1, enomem);
			UT_TRUE(enomem * 10 >= (runs - 1) * 9);
			UT_EQ_INT(0, oom_new(&a));
		}
}

/* An allocation failing inside OpenSSL during one packet drops that packet
 * only: the stream state is unchanged and the next packet goes through. */
UT_TEST(oom_inside_a_packet)
{
	uint8_t key[64], b[256], c[256];
	rnd(key, sizeof(key));
	for (size_t i = 0; i < NSUITES; i++) {
		struct om_srtp *tx = mk(all_suites[i], OM_SRTP_BACKEND_OPENSSL, OM_SRTP_SEND, key);
		struct om_srtp *rx = mk(all_suites[i], OM_SRTP_BACKEND_OPENSSL, OM_SRTP_RECV, key);
		UT_TRUE(tx && rx);
		int bad = 0, failures = 0;
		for (unsigned n = 1; n <= 8 && !bad; n++) {
			uint16_t seq = (uint16_t)(100 + n);
			size_t l = rtp_make(b, seq, 5, 60, 0, 0), l0 = l, lc;
			memcpy(c, b, l);
			om_alloc_fail_at(n, 0);
			int e1 = om_srtp_protect(tx, b, &l, sizeof(b));
			om_alloc_fail_at(0, 0);
			if (e1 == ENOMEM) {
				failures++;
				l = l0;
				memcpy(b, c, l);
				e1 = om_srtp_protect(tx, b, &l, sizeof(b));
			}
			memcpy(c, b, l);
			lc = l;
			om_alloc_fail_at(n, 0);
			int e2 = om_srtp_unprotect(rx, b, &l);
			om_alloc_fail_at(0, 0);
			if (e2 == ENOMEM) {
				failures++;
				l = lc;
				memcpy(b, c, l);
				e2 = om_srtp_unprotect(rx, b, &l);
			}
			bad = e1 || e2 || l != l0;
		}
		om_srtp_free(tx);
		om_srtp_free(rx);
		UT_EQ_INT(0, bad);
		/* the HMAC suites allocate per packet in OpenSSL 3.0 */
		if (!om_srtp_suite_info(all_suites[i])->gcm)
			UT_TRUE(failures > 0);
	}
}

UT_MAIN(UT_CASE(kdf_rfc3711_b3), UT_CASE(kdf_rfc6188_aes256), UT_CASE(aes_cm_keystream_rfc3711_b2),
        UT_CASE(gcm128_rfc7714_16_1_1), UT_CASE(gcm256_rfc7714_16_2_1),
        UT_CASE(gcm128_srtcp_rfc7714_17_1), UT_CASE(differential_openssl_to_libsrtp2),
        UT_CASE(differential_libsrtp2_to_openssl), UT_CASE(same_backend_roundtrip),
        UT_CASE(differential_with_mki), UT_CASE(mki_mismatch_refused), UT_CASE(lifetime_enforced),
        UT_CASE(roc_follows_several_rollovers), UT_CASE(tamper_every_bit), UT_CASE(replay_window),
        UT_CASE(replay_window_rtcp), UT_CASE(ssrc_table_is_bounded), UT_CASE(malformed_and_misuse),
        UT_CASE(bad_policies), UT_CASE(suite_names), UT_CASE(keys_zeroed_on_free),
        UT_CASE(oom_sweep), UT_CASE(oom_inside_a_packet))
