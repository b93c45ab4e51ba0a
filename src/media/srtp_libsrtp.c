/* srtp_libsrtp.c — the libsrtp2 backend of om_srtp (`srtp_backend =
 * libsrtp2`): the same calls on Debian's libsrtp2 (RFC 3711, RFC 6188,
 * RFC 7714), kept as a fallback and used as the test oracle.
 *
 * One srtp_t per session with an ssrc_any_outbound (SEND) or
 * ssrc_any_inbound (RECV) policy, window 128, no repeated transmissions.
 * An MKI is given to libsrtp2 as a one-entry master key array and the
 * *_mki calls are used. libsrtp2 creates its per-SSRC streams itself; the om_srtp stream table
 * only bounds how many SSRCs a session accepts, the same as the OpenSSL
 * backend. Headers are checked by the caller (srtp.c) so both backends
 * refuse the same malformed packets with the same error. */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <string.h>

#include <openssl/crypto.h>
#include <srtp2/srtp.h>

#include "media/srtp.h"
#include "media/srtp_int.h"

static pthread_once_t lib_once = PTHREAD_ONCE_INIT;
static srtp_err_status_t lib_init_status = srtp_err_status_fail;

static void lib_init(void)
{
	lib_init_status = srtp_init();
}

static int map_err(srtp_err_status_t e)
{
	switch (e) {
	case srtp_err_status_ok:
		return 0;
	case srtp_err_status_auth_fail:
		return EBADMSG;
	case srtp_err_status_replay_fail:
		return EALREADY;
	case srtp_err_status_replay_old:
		return ESTALE;
	case srtp_err_status_alloc_fail:
		return ENOMEM;
	case srtp_err_status_key_expired:
		return EOVERFLOW;
	case srtp_err_status_cipher_fail:
		return EBADMSG; /* GCM tag mismatch is reported by the cipher */
	case srtp_err_status_bad_mki:
		return EKEYREJECTED;
	default:
		return EPROTO;
	}
}

int om_srtp_lib_new(struct om_srtp *s, const struct om_srtp_policy *p)
{
	srtp_policy_t pol;
	uint8_t key[64];
	srtp_t ctx = NULL;
	pthread_once(&lib_once, lib_init);
	if (lib_init_status != srtp_err_status_ok)
		return ENOTSUP;
	memset(&pol, 0, sizeof(pol));
	switch (p->suite) {
	case OM_SRTP_AES_CM_128_HMAC_SHA1_80:
		srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&pol.rtp);
		srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&pol.rtcp);
		break;
	case OM_SRTP_AES_CM_128_HMAC_SHA1_32:
		/* RFC 4568 §6.2.1: SRTCP keeps the 80-bit tag. */
		srtp_crypto_policy_set_aes_cm_128_hmac_sha1_32(&pol.rtp);
		srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&pol.rtcp);
		break;
	case OM_SRTP_AES_256_CM_HMAC_SHA1_80:
		srtp_crypto_policy_set_aes_cm_256_hmac_sha1_80(&pol.rtp);
		srtp_crypto_policy_set_aes_cm_256_hmac_sha1_80(&pol.rtcp);
		break;
	case OM_SRTP_AEAD_AES_128_GCM:
		srtp_crypto_policy_set_aes_gcm_128_16_auth(&pol.rtp);
		srtp_crypto_policy_set_aes_gcm_128_16_auth(&pol.rtcp);
		break;
	case OM_SRTP_AEAD_AES_256_GCM:
		srtp_crypto_policy_set_aes_gcm_256_16_auth(&pol.rtp);
		srtp_crypto_policy_set_aes_gcm_256_16_auth(&pol.rtcp);
		break;
	default:
		return EINVAL;
	}
	if (p->key_len > sizeof(key))
		return EINVAL;
	memcpy(key, p->key, p->key_len);
	pol.ssrc.type = p->dir == OM_SRTP_SEND ? ssrc_any_outbound : ssrc_any_inbound;
	/* With an MKI: one master key in the keys array (libsrtp2 2.x). */
	uint8_t mki[OM_SRTP_MAX_MKI];
	srtp_master_key_t mk, *mks[1] = { &mk };
	if (p->mki_len) {
		memcpy(mki, p->mki, p->mki_len);
		mk.key = key;
		mk.mki_id = mki;
		mk.mki_size = (unsigned)p->mki_len;
		pol.keys = mks;
		pol.num_master_keys = 1;
	} else {
		pol.key = key;
	}
	pol.window_size = OM_SRTP_WINDOW;
	pol.allow_repeat_tx = 0;
	srtp_err_status_t e = srtp_create(&ctx, &pol);
	OPENSSL_cleanse(key, sizeof(key));
	if (e != srtp_err_status_ok)
		return e == srtp_err_status_alloc_fail ? ENOMEM : ENOTSUP;
	s->lib = ctx;
	return 0;
}

void om_srtp_lib_free(struct om_srtp *s)
{
	/* srtp_dealloc zeroes its key material. */
	srtp_dealloc((srtp_t)s->lib);
	s->lib = NULL;
}

static uint32_t pkt_ssrc(const uint8_t *buf, int rtcp)
{
	const uint8_t *p = buf + (rtcp ? 4 : 8);
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Bound the SSRCs of a session like the OpenSSL backend; the entry is
 * recorded only after libsrtp2 accepted the packet. */
static int ssrc_room(struct om_srtp *s, uint32_t ssrc, int *known)
{
	*known = om_srtp_stream_find(s, ssrc) != NULL;
	return *known || s->nstreams < s->max_streams ? 0 : ENOSPC;
}

static void ssrc_note(struct om_srtp *s, uint32_t ssrc, int known)
{
	if (!known) {
		struct om_srtp_stream st;
		memset(&st, 0, sizeof(st));
		st.ssrc = ssrc;
		(void)om_srtp_stream_add(s, &st);
	}
}

int om_srtp_lib_protect(struct om_srtp *s, uint8_t *buf, size_t *len, int rtcp)
{
	int known, n = (int)*len;
	uint32_t ssrc = pkt_ssrc(buf, rtcp);
	int err = ssrc_room(s, ssrc, &known);
	if (err)
		return err;
	unsigned use_mki = s->mki_len != 0;
	srtp_err_status_t e = rtcp ? srtp_protect_rtcp_mki((srtp_t)s->lib, buf, &n, use_mki, 0)
	                           : srtp_protect_mki((srtp_t)s->lib, buf, &n, use_mki, 0);
	if ((err = map_err(e)))
		return err;
	ssrc_note(s, ssrc, known);
	*len = (size_t)n;
	return 0;
}

int om_srtp_lib_unprotect(struct om_srtp *s, uint8_t *buf, size_t *len, int rtcp)
{
	int known, n = (int)*len;
	uint32_t ssrc = pkt_ssrc(buf, rtcp);
	int err = ssrc_room(s, ssrc, &known);
	if (err)
		return err;
	/* srtp.c checked the MKI already. libsrtp2 2.5 looks for an SRTCP MKI
	 * at the SRTP tag length from the end (wrong for _32, whose SRTCP tag
	 * is 80 bits): take the MKI out and let it use its one key. */
	size_t mk = s->mki_len;
	if (mk) {
		const struct om_srtp_suite_info *si = s->suite;
		size_t t = rtcp ? si->rtcp_tag_len : si->tag_len;
		if (!si->gcm) /* CM: ... | MKI | tag */
			memmove(buf + (size_t)n - t - mk, buf + (size_t)n - t, t);
		n -= (int)mk; /* AEAD: the MKI is last */
	}
	srtp_err_status_t e = rtcp ? srtp_unprotect_rtcp_mki((srtp_t)s->lib, buf, &n, 0)
	                           : srtp_unprotect_mki((srtp_t)s->lib, buf, &n, 0);
	if ((err = map_err(e)))
		return err;
	ssrc_note(s, ssrc, known);
	*len = (size_t)n;
	return 0;
}
