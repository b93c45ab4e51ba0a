/* srtp.c — SRTP and SRTCP on OpenSSL 3 EVP.
 *
 *   RFC 3711 §3.3   SRTP packet processing; §3.3.1 + Appendix A: the
 *                   rollover counter (ROC) estimated from the sequence number
 *   RFC 3711 §3.3.2 replay protection (a window of OM_SRTP_WINDOW packets)
 *   RFC 3711 §3.4   SRTCP: E-bit, 31-bit SRTCP index, always an 80-bit tag
 *   RFC 3711 §4.1.1 AES-CM: IV = (k_s * 2^16) ^ (SSRC * 2^64) ^ (i * 2^16)
 *   RFC 3711 §4.2   HMAC-SHA1 over the packet || ROC, truncated to 80/32 bits
 *   RFC 3711 §4.3   key derivation (AES-CM PRF, key_derivation_rate 0)
 *   RFC 6188        AES-256 counter mode and its PRF
 *   RFC 7714 §8-11  AEAD_AES_128_GCM / AEAD_AES_256_GCM for SRTP and SRTCP
 *   RFC 3711 §3.1   the MKI: after the encrypted portion (CM: before the
 *                   tag, not authenticated; AEAD: after the tag, which is
 *                   part of the ciphertext — RFC 7714 §8.1, as libsrtp2)
 *   RFC 3711 §9.2   master key lifetime, counted per plane
 *
 * An EVP call failing inside a packet operation can only be OpenSSL
 * running out of memory (HMAC re-initialisation duplicates two digest
 * contexts in OpenSSL 3.0): it is reported as ENOMEM, the stream state is
 * left as it was and the next packet works again.
 *
 * Every cipher and MAC context is keyed once, in om_srtp_new; a packet only
 * re-initialises it with its IV (EVP_CipherInit_ex with NULL cipher and key;
 * EVP_MAC_init with a NULL key keeps the HMAC key), so the cost per packet
 * does not depend on how many sessions are alive. The stream state (ROC,
 * highest sequence number, replay windows) moves only after the tag has
 * verified, so a forged packet changes nothing. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <strings.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "core/alloc.h"
#include "media/srtp.h"
#include "media/srtp_int.h"

/* ---------------------------------------------------------------- suites */

static const struct om_srtp_suite_info suites[] = {
	{ OM_SRTP_AES_CM_128_HMAC_SHA1_80, "AES_CM_128_HMAC_SHA1_80", 16, 14, 10, 10, 0 },
	{ OM_SRTP_AES_CM_128_HMAC_SHA1_32, "AES_CM_128_HMAC_SHA1_32", 16, 14, 4, 10, 0 },
	{ OM_SRTP_AES_256_CM_HMAC_SHA1_80, "AES_256_CM_HMAC_SHA1_80", 32, 14, 10, 10, 0 },
	{ OM_SRTP_AEAD_AES_128_GCM, "AEAD_AES_128_GCM", 16, 12, 16, 16, 1 },
	{ OM_SRTP_AEAD_AES_256_GCM, "AEAD_AES_256_GCM", 32, 12, 16, 16, 1 },
};

const struct om_srtp_suite_info *om_srtp_suite_info(enum om_srtp_suite s)
{
	for (size_t i = 0; i < sizeof(suites) / sizeof(suites[0]); i++)
		if (suites[i].id == s)
			return &suites[i];
	return NULL;
}

const char *om_srtp_suite_name(enum om_srtp_suite s)
{
	const struct om_srtp_suite_info *si = om_srtp_suite_info(s);
	return si ? si->name : NULL;
}

int om_srtp_suite_parse(const char *name, size_t len, enum om_srtp_suite *out)
{
	for (size_t i = 0; i < sizeof(suites) / sizeof(suites[0]); i++) {
		if (strlen(suites[i].name) == len && memcmp(suites[i].name, name, len) == 0) {
			*out = suites[i].id;
			return 0;
		}
	}
	return ENOTSUP;
}

size_t om_srtp_suite_key_len(enum om_srtp_suite s)
{
	const struct om_srtp_suite_info *si = om_srtp_suite_info(s);
	return si ? si->key_len + si->salt_len : 0;
}

int om_srtp_backend_parse(const char *name, enum om_srtp_backend *out)
{
	if (strcasecmp(name, "openssl") == 0)
		*out = OM_SRTP_BACKEND_OPENSSL;
	else if (strcasecmp(name, "libsrtp2") == 0)
		*out = OM_SRTP_BACKEND_LIBSRTP2;
	else
		return EINVAL;
	return 0;
}

/* ------------------------------------------------------------ algorithms */

/* Fetched once for the process (EVP_CIPHER_fetch / EVP_MAC_fetch): an
 * implicit fetch per context would look the provider up every time. A
 * failed fetch (out of memory) is retried by the next caller. */
static EVP_CIPHER *alg_ctr128, *alg_ctr256, *alg_gcm128, *alg_gcm256;
static EVP_MAC *alg_hmac;
static atomic_int alg_ready;
static pthread_mutex_t alg_lock = PTHREAD_MUTEX_INITIALIZER;

static void fetch_cipher(EVP_CIPHER **c, const char *name)
{
	if (!*c)
		*c = EVP_CIPHER_fetch(NULL, name, NULL);
}

static int alg_init(void)
{
	if (atomic_load_explicit(&alg_ready, memory_order_acquire))
		return 0;
	pthread_mutex_lock(&alg_lock);
	fetch_cipher(&alg_ctr128, "AES-128-CTR");
	fetch_cipher(&alg_ctr256, "AES-256-CTR");
	fetch_cipher(&alg_gcm128, "AES-128-GCM");
	fetch_cipher(&alg_gcm256, "AES-256-GCM");
	if (!alg_hmac)
		alg_hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	int ok = alg_ctr128 && alg_ctr256 && alg_gcm128 && alg_gcm256 && alg_hmac;
	if (ok)
		atomic_store_explicit(&alg_ready, 1, memory_order_release);
	pthread_mutex_unlock(&alg_lock);
	return ok ? 0 : ENOMEM;
}

/* ------------------------------------------------------- key derivation */

int om_srtp_kdf(const uint8_t *mkey, size_t mkey_len, const uint8_t *msalt, size_t msalt_len,
                uint8_t label, uint8_t *out, size_t n)
{
	/* x = (label || index DIV kdr) XOR master salt, kdr = 0 so the 48-bit
	 * r is zero; the AES-CM input block is x * 2^16. */
	uint8_t iv[16] = { 0 };
	int err = alg_init();
	if (err)
		return err;
	if ((mkey_len != 16 && mkey_len != 32) || msalt_len > 14 || n > 128)
		return EINVAL;
	memcpy(iv, msalt, msalt_len);
	iv[7] ^= label;
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	if (!c)
		return ENOMEM;
	static const uint8_t zero[128];
	int outl = 0;
	if (!EVP_EncryptInit_ex(c, mkey_len == 16 ? alg_ctr128 : alg_ctr256, NULL, mkey, iv) ||
	    !EVP_EncryptUpdate(c, out, &outl, zero, (int)n))
		err = ENOMEM;
	EVP_CIPHER_CTX_free(c);
	return err;
}

static int derive(const struct om_srtp_suite_info *si, const uint8_t *master, uint8_t first_label,
                  struct om_srtp_keys *k)
{
	const uint8_t *msalt = master + si->key_len;
	int err =
	    om_srtp_kdf(master, si->key_len, msalt, si->salt_len, first_label, k->enc, si->key_len);
	if (!err && !si->gcm)
		err = om_srtp_kdf(master, si->key_len, msalt, si->salt_len, first_label + 1,
		                  k->auth, sizeof(k->auth));
	if (!err)
		err = om_srtp_kdf(master, si->key_len, msalt, si->salt_len, first_label + 2,
		                  k->salt, si->salt_len);
	return err;
}

/* ---------------------------------------------------------------- session */

static int plane_init(struct om_srtp_plane *pl, const struct om_srtp_suite_info *si, int enc,
                      const struct om_srtp_keys *k)
{
	const EVP_CIPHER *alg = si->gcm ? (si->key_len == 16 ? alg_gcm128 : alg_gcm256)
	                                : (si->key_len == 16 ? alg_ctr128 : alg_ctr256);
	pl->cipher = EVP_CIPHER_CTX_new();
	if (!pl->cipher || !EVP_CipherInit_ex(pl->cipher, alg, NULL, k->enc, NULL, enc))
		return ENOMEM;
	memcpy(pl->salt, k->salt, si->salt_len);
	if (si->gcm)
		return 0;
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA1", 0),
		OSSL_PARAM_construct_end(),
	};
	pl->mac = EVP_MAC_CTX_new(alg_hmac);
	if (!pl->mac || !EVP_MAC_init(pl->mac, k->auth, sizeof(k->auth), params))
		return ENOMEM;
	return 0;
}

static void plane_free(struct om_srtp_plane *pl)
{
	EVP_CIPHER_CTX_free(pl->cipher); /* clears the key schedule */
	EVP_MAC_CTX_free(pl->mac);       /* clears the HMAC pads */
	pl->cipher = NULL;
	pl->mac = NULL;
	OPENSSL_cleanse(pl->salt, sizeof(pl->salt));
}

static int check_policy(const struct om_srtp_policy *p, const struct om_srtp_suite_info **si)
{
	*si = om_srtp_suite_info(p->suite);
	if (!*si || (p->dir != OM_SRTP_SEND && p->dir != OM_SRTP_RECV))
		return EINVAL;
	if (p->backend != OM_SRTP_BACKEND_OPENSSL && p->backend != OM_SRTP_BACKEND_LIBSRTP2)
		return EINVAL;
	if (p->kdr != 0)
		return ENOTSUP; /* SDES KDR is refused for Secured plans anyway */
	if (p->max_ssrcs > 1024)
		return EINVAL;
	if (p->mki_len > OM_SRTP_MAX_MKI || (p->mki_len && !p->mki))
		return EINVAL;
	if (p->lifetime > OM_SRTP_MAX_LIFETIME)
		return EINVAL;
	return 0;
}

static int session_alloc(const struct om_srtp_policy *p, const struct om_srtp_suite_info *si,
                         struct om_srtp **out)
{
	struct om_srtp *s = om_calloc(1, sizeof(*s));
	if (!s)
		return ENOMEM;
	s->suite = si;
	s->backend = p->backend;
	s->dir = p->dir;
	if (p->mki_len)
		memcpy(s->mki, p->mki, p->mki_len);
	s->mki_len = p->mki_len;
	s->life_rtp = p->lifetime ? p->lifetime : OM_SRTP_MAX_LIFETIME;
	s->life_rtcp = p->lifetime && p->lifetime < OM_SRTCP_MAX_LIFETIME ? p->lifetime
	                                                                  : OM_SRTCP_MAX_LIFETIME;
	s->max_streams = p->max_ssrcs ? p->max_ssrcs : OM_SRTP_MAX_SSRCS;
	s->streams = om_calloc(s->max_streams, sizeof(*s->streams));
	if (!s->streams) {
		om_free(s);
		return ENOMEM;
	}
	*out = s;
	return 0;
}

int om_srtp_new_keys(const struct om_srtp_policy *p, const struct om_srtp_keys *rtp,
                     const struct om_srtp_keys *rtcp, struct om_srtp **out)
{
	const struct om_srtp_suite_info *si;
	struct om_srtp *s = NULL;
	int err = check_policy(p, &si);
	if (err)
		goto out;
	if (p->backend != OM_SRTP_BACKEND_OPENSSL) {
		err = ENOTSUP;
		goto out;
	}
	if ((err = alg_init()) || (err = session_alloc(p, si, &s)))
		goto out;
	/* CM encrypts both ways; GCM decrypts on a receiving session. */
	int enc = si->gcm ? p->dir == OM_SRTP_SEND : 1;
	if ((err = plane_init(&s->rtp, si, enc, rtp)) ||
	    (err = plane_init(&s->rtcp, si, enc, rtcp)))
		goto out;
	*out = s;
	s = NULL;
out:
	om_srtp_free(s);
	return err;
}

int om_srtp_new(const struct om_srtp_policy *p, struct om_srtp **out)
{
	const struct om_srtp_suite_info *si;
	struct om_srtp_keys kr, kc;
	struct om_srtp *s = NULL;
	int err = check_policy(p, &si);
	if (err)
		return err;
	if (!p->key || p->key_len != si->key_len + si->salt_len)
		return EINVAL;
	if (p->backend == OM_SRTP_BACKEND_LIBSRTP2) {
		if ((err = session_alloc(p, si, &s)))
			return err;
		if ((err = om_srtp_lib_new(s, p))) {
			om_srtp_free(s);
			return err;
		}
		*out = s;
		return 0;
	}
	memset(&kr, 0, sizeof(kr));
	memset(&kc, 0, sizeof(kc));
	if (!(err = derive(si, p->key, 0x00, &kr)) && !(err = derive(si, p->key, 0x03, &kc)))
		err = om_srtp_new_keys(p, &kr, &kc, out);
	OPENSSL_cleanse(&kr, sizeof(kr));
	OPENSSL_cleanse(&kc, sizeof(kc));
	return err;
}

void om_srtp_wipe(struct om_srtp *s)
{
	if (s->lib)
		om_srtp_lib_free(s);
	plane_free(&s->rtp);
	plane_free(&s->rtcp);
	if (s->streams)
		OPENSSL_cleanse(s->streams, s->max_streams * sizeof(*s->streams));
	struct om_srtp_stream *streams = s->streams;
	OPENSSL_cleanse(s, sizeof(*s));
	s->streams = streams;
}

void om_srtp_free(struct om_srtp *s)
{
	if (!s)
		return;
	om_srtp_wipe(s);
	om_free(s->streams);
	om_free(s);
}

/* ---------------------------------------------------------- stream table */

struct om_srtp_stream *om_srtp_stream_find(struct om_srtp *s, uint32_t ssrc)
{
	/* Most sessions carry one SSRC: try the last one hit first. */
	if (s->last < s->nstreams && s->streams[s->last].ssrc == ssrc)
		return &s->streams[s->last];
	for (unsigned i = 0; i < s->nstreams; i++) {
		if (s->streams[i].ssrc == ssrc) {
			s->last = i;
			return &s->streams[i];
		}
	}
	return NULL;
}

int om_srtp_stream_add(struct om_srtp *s, const struct om_srtp_stream *st)
{
	if (s->nstreams >= s->max_streams)
		return ENOSPC;
	s->last = s->nstreams;
	s->streams[s->nstreams++] = *st;
	return 0;
}

/* The stream of `ssrc`, or a fresh one in *tmp (added only on success). */
static int stream_get(struct om_srtp *s, uint32_t ssrc, struct om_srtp_stream *tmp,
                      struct om_srtp_stream **st)
{
	*st = om_srtp_stream_find(s, ssrc);
	if (*st)
		return 0;
	if (s->nstreams >= s->max_streams)
		return ENOSPC;
	memset(tmp, 0, sizeof(*tmp));
	tmp->ssrc = ssrc;
	*st = tmp;
	return 0;
}

static void stream_commit(struct om_srtp *s, struct om_srtp_stream *st,
                          const struct om_srtp_stream *tmp)
{
	if (st == tmp)
		(void)om_srtp_stream_add(s, tmp); /* room was checked in stream_get */
}

/* --------------------------------------------------------- replay window */

/* Bit d of w is set when index (top - d) was accepted. */
static int win_check(const uint64_t w[2], int64_t top, int64_t idx)
{
	if (idx > top)
		return 0;
	int64_t d = top - idx;
	if (d >= OM_SRTP_WINDOW)
		return ESTALE;
	if ((w[d >> 6] >> (d & 63)) & 1)
		return EALREADY;
	return 0;
}

static void win_add(uint64_t w[2], int64_t *top, int64_t idx)
{
	if (idx > *top) {
		int64_t d = idx - *top;
		if (d >= 128) {
			w[0] = w[1] = 0;
		} else if (d >= 64) {
			w[1] = w[0] << (d - 64);
			w[0] = 0;
		} else {
			w[1] = (w[1] << d) | (w[0] >> (64 - d));
			w[0] <<= d;
		}
		w[0] |= 1;
		*top = idx;
	} else {
		int64_t d = *top - idx;
		w[d >> 6] |= (uint64_t)1 << (d & 63);
	}
}

/* RFC 3711 Appendix A, for a stream whose highest index is `top`. With ROC
 * 0 the guess ROC-1 does not exist and the packet is taken as a jump ahead
 * (libsrtp2 does the same while the index is below 2^15). */
static int rtp_index(const struct om_srtp_stream *st, uint16_t seq, int64_t *idx)
{
	if (!st->rtp_seen) {
		*idx = seq;
		return 0;
	}
	int64_t roc = st->rtp_top >> 16, v = roc;
	int32_t s_l = (int32_t)(st->rtp_top & 0xffff);
	if (s_l < 32768) {
		if ((int32_t)seq - s_l > 32768 && roc > 0)
			v = roc - 1;
	} else if (s_l - 32768 > (int32_t)seq) {
		v = roc + 1;
	}
	if (v > 0xffffffffLL)
		return EOVERFLOW;
	*idx = (v << 16) | seq;
	return 0;
}

/* ------------------------------------------------------------ primitives */

static inline uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline void wr32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

size_t om_srtp_rtp_hdr_len(const uint8_t *p, size_t len)
{
	if (len < 12 || (p[0] >> 6) != 2)
		return 0;
	size_t h = 12 + 4 * (size_t)(p[0] & 0x0f);
	if (p[0] & 0x10) { /* extension: 16-bit profile, 16-bit length in words */
		if (len < h + 4)
			return 0;
		h += 4 + 4 * (size_t)((p[h + 2] << 8) | p[h + 3]);
	}
	return h <= len ? h : 0;
}

/* AES-CM IV (RFC 3711 §4.1.1): salt*2^16 ^ SSRC*2^64 ^ index*2^16. */
static void cm_iv(uint8_t iv[16], const uint8_t salt[14], uint32_t ssrc, int64_t idx)
{
	memcpy(iv, salt, 14);
	iv[14] = iv[15] = 0;
	iv[4] ^= (uint8_t)(ssrc >> 24);
	iv[5] ^= (uint8_t)(ssrc >> 16);
	iv[6] ^= (uint8_t)(ssrc >> 8);
	iv[7] ^= (uint8_t)ssrc;
	for (int i = 0; i < 6; i++)
		iv[8 + i] ^= (uint8_t)(idx >> (40 - 8 * i));
}

/* GCM IV (RFC 7714 §8.1, §9.1): (00 00 || SSRC || ROC || SEQ) ^ salt for
 * SRTP; (00 00 || SSRC || 00 00 || 0 || index) ^ salt for SRTCP. Both are
 * SSRC at octets 2-5 and a 48-bit value at octets 6-11. */
static void gcm_iv(uint8_t iv[12], const uint8_t salt[12], uint32_t ssrc, int64_t v48)
{
	memcpy(iv, salt, 12);
	iv[2] ^= (uint8_t)(ssrc >> 24);
	iv[3] ^= (uint8_t)(ssrc >> 16);
	iv[4] ^= (uint8_t)(ssrc >> 8);
	iv[5] ^= (uint8_t)ssrc;
	for (int i = 0; i < 6; i++)
		iv[6 + i] ^= (uint8_t)(v48 >> (40 - 8 * i));
}

static int ctr_xor(EVP_CIPHER_CTX *c, const uint8_t iv[16], uint8_t *p, size_t n)
{
	int outl;
	if (!EVP_CipherInit_ex(c, NULL, NULL, NULL, iv, -1))
		return ENOMEM;
	if (n && !EVP_CipherUpdate(c, p, &outl, p, (int)n))
		return ENOMEM;
	return 0;
}

/* HMAC-SHA1(a || b) with the keyed context (NULL key: keep the key). */
static int hmac(EVP_MAC_CTX *m, const uint8_t *a, size_t alen, const uint8_t *b, size_t blen,
                uint8_t out[20])
{
	size_t outl;
	if (!EVP_MAC_init(m, NULL, 0, NULL) || !EVP_MAC_update(m, a, alen) ||
	    (blen && !EVP_MAC_update(m, b, blen)) || !EVP_MAC_final(m, out, &outl, 20))
		return ENOMEM;
	return 0;
}

/* GCM over buf: aad1 || aad2 authenticated, p[0..n) en/decrypted in place,
 * tag written (enc) or checked (dec). */
static int gcm(EVP_CIPHER_CTX *c, int enc, const uint8_t iv[12], const uint8_t *aad1,
               size_t aad1_len, const uint8_t *aad2, size_t aad2_len, uint8_t *p, size_t n,
               uint8_t *tag)
{
	int outl;
	if (!EVP_CipherInit_ex(c, NULL, NULL, NULL, iv, -1))
		return ENOMEM;
	if (!EVP_CipherUpdate(c, NULL, &outl, aad1, (int)aad1_len) ||
	    (aad2_len && !EVP_CipherUpdate(c, NULL, &outl, aad2, (int)aad2_len)) ||
	    (n && !EVP_CipherUpdate(c, p, &outl, p, (int)n)))
		return ENOMEM;
	if (enc) {
		if (!EVP_CipherFinal_ex(c, p + n, &outl) ||
		    !EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_GET_TAG, 16, tag))
			return ENOMEM;
		return 0;
	}
	if (!EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_SET_TAG, 16, tag))
		return ENOMEM;
	return EVP_CipherFinal_ex(c, p + n, &outl) > 0 ? 0 : EBADMSG;
}

/* ------------------------------------------------------------------- SRTP */

int om_srtp_protect(struct om_srtp *s, uint8_t *buf, size_t *len, size_t cap)
{
	const struct om_srtp_suite_info *si = s->suite;
	struct om_srtp_stream tmp, *st;
	int64_t idx;
	int err;
	if (s->dir != OM_SRTP_SEND)
		return EINVAL;
	size_t n = *len, h = om_srtp_rtp_hdr_len(buf, n), mk = s->mki_len;
	if (!h)
		return EPROTO;
	if (cap < n + si->tag_len + mk || n + si->tag_len + mk > INT32_MAX)
		return EMSGSIZE;
	if (s->used_rtp >= s->life_rtp)
		return EKEYEXPIRED;
	if (s->backend == OM_SRTP_BACKEND_LIBSRTP2) {
		if (!(err = om_srtp_lib_protect(s, buf, len, 0)))
			s->used_rtp++;
		return err;
	}
	uint32_t ssrc = rd32(buf + 8);
	uint16_t seq = (uint16_t)(buf[2] << 8 | buf[3]);
	if ((err = stream_get(s, ssrc, &tmp, &st)) || (err = rtp_index(st, seq, &idx)))
		return err;
	/* Sending an index twice would reuse keystream. */
	if (st->rtp_seen && (err = win_check(st->rtp_win, st->rtp_top, idx)))
		return err;
	if (si->gcm) {
		/* header | ciphertext | tag | MKI */
		uint8_t iv[12];
		gcm_iv(iv, s->rtp.salt, ssrc, idx);
		err = gcm(s->rtp.cipher, 1, iv, buf, h, NULL, 0, buf + h, n - h, buf + n);
		if (!err && mk)
			memcpy(buf + n + si->tag_len, s->mki, mk);
	} else {
		/* header | ciphertext | MKI | tag (over header, ciphertext, ROC) */
		uint8_t iv[16], roc[4], tag[20];
		cm_iv(iv, s->rtp.salt, ssrc, idx);
		wr32(roc, (uint32_t)(idx >> 16));
		if (!(err = ctr_xor(s->rtp.cipher, iv, buf + h, n - h)) &&
		    !(err = hmac(s->rtp.mac, buf, n, roc, 4, tag))) {
			if (mk)
				memcpy(buf + n, s->mki, mk);
			memcpy(buf + n + mk, tag, si->tag_len);
		}
	}
	if (err)
		return err;
	win_add(st->rtp_win, &st->rtp_top, idx);
	st->rtp_seen = 1;
	stream_commit(s, st, &tmp);
	s->used_rtp++;
	*len = n + si->tag_len + mk;
	return 0;
}

int om_srtp_unprotect(struct om_srtp *s, uint8_t *buf, size_t *len)
{
	const struct om_srtp_suite_info *si = s->suite;
	struct om_srtp_stream tmp, *st;
	int64_t idx;
	int err;
	if (s->dir != OM_SRTP_RECV)
		return EINVAL;
	size_t n = *len, h = om_srtp_rtp_hdr_len(buf, n), mk = s->mki_len;
	if (!h || n < h + si->tag_len + mk || n > INT32_MAX)
		return EPROTO;
	/* The MKI: after the tag (AEAD) or before it (CM). */
	const uint8_t *mki = si->gcm ? buf + n - mk : buf + n - si->tag_len - mk;
	if (mk && memcmp(mki, s->mki, mk) != 0)
		return EKEYREJECTED;
	if (s->used_rtp >= s->life_rtp)
		return EKEYEXPIRED;
	if (s->backend == OM_SRTP_BACKEND_LIBSRTP2) {
		if (!(err = om_srtp_lib_unprotect(s, buf, len, 0)))
			s->used_rtp++;
		return err;
	}
	uint32_t ssrc = rd32(buf + 8);
	uint16_t seq = (uint16_t)(buf[2] << 8 | buf[3]);
	if ((err = stream_get(s, ssrc, &tmp, &st)) || (err = rtp_index(st, seq, &idx)))
		return err;
	if (st->rtp_seen && (err = win_check(st->rtp_win, st->rtp_top, idx)))
		return err;
	size_t m = n - si->tag_len - mk; /* end of the encrypted payload */
	if (si->gcm) {
		uint8_t iv[12], tag[16];
		memcpy(tag, buf + m, 16);
		gcm_iv(iv, s->rtp.salt, ssrc, idx);
		err = gcm(s->rtp.cipher, 0, iv, buf, h, NULL, 0, buf + h, m - h, tag);
	} else {
		uint8_t iv[16], roc[4], tag[20];
		wr32(roc, (uint32_t)(idx >> 16));
		if ((err = hmac(s->rtp.mac, buf, m, roc, 4, tag)))
			return err;
		if (CRYPTO_memcmp(tag, buf + m + mk, si->tag_len) != 0)
			return EBADMSG;
		cm_iv(iv, s->rtp.salt, ssrc, idx);
		err = ctr_xor(s->rtp.cipher, iv, buf + h, m - h);
	}
	if (err)
		return err;
	/* Authenticated: only now move the ROC, the highest index, the window. */
	win_add(st->rtp_win, &st->rtp_top, idx);
	st->rtp_seen = 1;
	stream_commit(s, st, &tmp);
	s->used_rtp++;
	*len = m;
	return 0;
}

/* ------------------------------------------------------------------ SRTCP */

/* SRTCP (RFC 3711 §3.4):   header(8) | encrypted part | E+index(4) | [MKI] | tag
 * AEAD  (RFC 7714 §9.1):   header(8) | ciphertext | tag(16) | E+index(4) | [MKI] */
#define RTCP_E 0x80000000u

static int rtcp_hdr_ok(const uint8_t *p, size_t n)
{
	return n >= 8 && (p[0] >> 6) == 2;
}

int om_srtp_protect_rtcp(struct om_srtp *s, uint8_t *buf, size_t *len, size_t cap)
{
	const struct om_srtp_suite_info *si = s->suite;
	struct om_srtp_stream tmp, *st;
	int err;
	if (s->dir != OM_SRTP_SEND)
		return EINVAL;
	size_t n = *len, t = si->rtcp_tag_len, mk = s->mki_len;
	if (!rtcp_hdr_ok(buf, n))
		return EPROTO;
	if (cap < n + 4 + t + mk || n + 4 + t + mk > INT32_MAX)
		return EMSGSIZE;
	if (s->used_rtcp >= s->life_rtcp)
		return EKEYEXPIRED;
	if (s->backend == OM_SRTP_BACKEND_LIBSRTP2) {
		if (!(err = om_srtp_lib_protect(s, buf, len, 1)))
			s->used_rtcp++;
		return err;
	}
	uint32_t ssrc = rd32(buf + 4);
	if ((err = stream_get(s, ssrc, &tmp, &st)))
		return err;
	if (st->rtcp_top > 0x7fffffff)
		return EOVERFLOW; /* 2^31 SRTCP packets: the key must change */
	uint32_t index = (uint32_t)st->rtcp_top;
	uint8_t eidx[4];
	wr32(eidx, RTCP_E | index);
	if (si->gcm) {
		uint8_t iv[12];
		gcm_iv(iv, s->rtcp.salt, ssrc, index);
		err = gcm(s->rtcp.cipher, 1, iv, buf, 8, eidx, 4, buf + 8, n - 8, buf + n);
		memcpy(buf + n + 16, eidx, 4);
		if (mk)
			memcpy(buf + n + 20, s->mki, mk);
	} else {
		uint8_t iv[16], tag[20];
		cm_iv(iv, s->rtcp.salt, ssrc, index);
		if (!(err = ctr_xor(s->rtcp.cipher, iv, buf + 8, n - 8))) {
			memcpy(buf + n, eidx, 4);
			if (!(err = hmac(s->rtcp.mac, buf, n + 4, NULL, 0, tag))) {
				if (mk)
					memcpy(buf + n + 4, s->mki, mk);
				memcpy(buf + n + 4 + mk, tag, t);
			}
		}
	}
	if (err)
		return err;
	st->rtcp_top = (int64_t)index + 1;
	stream_commit(s, st, &tmp);
	s->used_rtcp++;
	*len = n + 4 + t + mk;
	return 0;
}

int om_srtp_unprotect_rtcp(struct om_srtp *s, uint8_t *buf, size_t *len)
{
	const struct om_srtp_suite_info *si = s->suite;
	struct om_srtp_stream tmp, *st;
	int err;
	if (s->dir != OM_SRTP_RECV)
		return EINVAL;
	size_t n = *len, t = si->rtcp_tag_len, mk = s->mki_len;
	if (!rtcp_hdr_ok(buf, n) || n < 8 + 4 + t + mk || n > INT32_MAX)
		return EPROTO;
	/* The MKI: last (AEAD) or before the tag (CM). */
	const uint8_t *mki = si->gcm ? buf + n - mk : buf + n - t - mk;
	if (mk && memcmp(mki, s->mki, mk) != 0)
		return EKEYREJECTED;
	if (s->used_rtcp >= s->life_rtcp)
		return EKEYEXPIRED;
	if (s->backend == OM_SRTP_BACKEND_LIBSRTP2) {
		if (!(err = om_srtp_lib_unprotect(s, buf, len, 1)))
			s->used_rtcp++;
		return err;
	}
	uint32_t ssrc = rd32(buf + 4);
	if ((err = stream_get(s, ssrc, &tmp, &st)))
		return err;
	size_t m = n - 4 - t - mk; /* end of the (encrypted) RTCP payload */
	const uint8_t *eidx = si->gcm ? buf + m + t : buf + m;
	uint32_t w = rd32(eidx);
	int64_t index = w & ~RTCP_E;
	int encrypted = (w & RTCP_E) != 0;
	if (st->rtcp_seen && (err = win_check(st->rtcp_win, st->rtcp_top, index)))
		return err;
	if (si->gcm) {
		uint8_t iv[12], tag[16], e4[4];
		memcpy(tag, buf + m, 16);
		memcpy(e4, eidx, 4);
		gcm_iv(iv, s->rtcp.salt, ssrc, index);
		if (encrypted)
			err = gcm(s->rtcp.cipher, 0, iv, buf, 8, e4, 4, buf + 8, m - 8, tag);
		else /* E = 0: the whole packet is associated data */
			err = gcm(s->rtcp.cipher, 0, iv, buf, m, e4, 4, buf + m, 0, tag);
	} else {
		uint8_t iv[16], tag[20];
		if ((err = hmac(s->rtcp.mac, buf, m + 4, NULL, 0, tag)))
			return err;
		if (CRYPTO_memcmp(tag, buf + m + 4 + mk, t) != 0)
			return EBADMSG;
		if (encrypted) {
			cm_iv(iv, s->rtcp.salt, ssrc, index);
			err = ctr_xor(s->rtcp.cipher, iv, buf + 8, m - 8);
		}
	}
	if (err)
		return err;
	win_add(st->rtcp_win, &st->rtcp_top, index);
	st->rtcp_seen = 1;
	stream_commit(s, st, &tmp);
	s->used_rtcp++;
	*len = m;
	return 0;
}

int om_srtp_set_rtcp_index(struct om_srtp *s, uint32_t ssrc, uint32_t index)
{
	struct om_srtp_stream tmp, *st;
	int err = stream_get(s, ssrc, &tmp, &st);
	if (err)
		return err;
	st->rtcp_top = index;
	stream_commit(s, st, &tmp);
	return 0;
}
