/* srtp_bench.c — per-packet cost of om_srtp_protect / om_srtp_unprotect for
 * both backends at 1, 1,000 and 5,000 live sessions, against OpenSSL's raw
 * AES-CTR + HMAC-SHA1 (and AES-GCM) on the same packet as the floor.
 *
 * Packets: G.711 20 ms (12-octet RTP header + 160 octets), one SSRC per
 * session, taken round-robin over the sessions so every packet touches a
 * different session's state. Cost is thread CPU time per packet (the
 * machine is shared; wall clock would count other people's work).
 *
 *   taskset -c 1 build-release/bench/srtp_bench [packets-per-cell [openssl|libsrtp2]]
 *
 * Prints one line per backend x suite x session count, then the baseline. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include "media/srtp.h"

#define PAYLOAD 160
#define PKT     (12 + PAYLOAD)
#define SLOT    (PKT + OM_SRTP_MAX_TRAILER)

static double cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void rtp(uint8_t *b, uint16_t seq, uint32_t ssrc)
{
	memset(b, 0xd5, PKT); /* G.711 silence */
	b[0] = 0x80;
	b[1] = 0;
	b[2] = (uint8_t)(seq >> 8);
	b[3] = (uint8_t)seq;
	b[4] = b[5] = b[6] = b[7] = 0;
	b[8] = (uint8_t)(ssrc >> 24);
	b[9] = (uint8_t)(ssrc >> 16);
	b[10] = (uint8_t)(ssrc >> 8);
	b[11] = (uint8_t)ssrc;
}

static int cell(enum om_srtp_backend be, enum om_srtp_suite suite, unsigned nsess, unsigned total,
                double *prot_ns, double *unprot_ns)
{
	struct om_srtp **tx = calloc(nsess, sizeof(*tx)), **rx = calloc(nsess, sizeof(*rx));
	unsigned rounds = total / nsess < 10 ? 10 : total / nsess;
	size_t npk = (size_t)rounds * nsess;
	uint8_t *store = malloc(npk * SLOT);
	size_t *lens = malloc(npk * sizeof(size_t));
	uint8_t key[64], b[SLOT];
	int err = 0;
	if (!tx || !rx || !store || !lens)
		return ENOMEM;
	/* touch the store now: page faults are not the transform's cost */
	memset(store, 0, npk * SLOT);
	memset(lens, 0, npk * sizeof(size_t));
	for (unsigned i = 0; i < nsess && !err; i++) {
		struct om_srtp_policy p = { .suite = suite, .backend = be, .key = key };
		p.key_len = om_srtp_suite_key_len(suite);
		RAND_bytes(key, (int)p.key_len);
		p.dir = OM_SRTP_SEND;
		if ((err = om_srtp_new(&p, &tx[i])))
			break;
		p.dir = OM_SRTP_RECV;
		if ((err = om_srtp_new(&p, &rx[i])))
			break;
		/* warm-up: the first packet creates the per-SSRC state */
		size_t len = PKT;
		rtp(b, 0, 0x1000 + i);
		if ((err = om_srtp_protect(tx[i], b, &len, sizeof(b))) ||
		    (err = om_srtp_unprotect(rx[i], b, &len)))
			break;
	}
	if (!err) {
		/* the plaintext packets are built before the clock starts */
		size_t k = 0;
		for (unsigned r = 1; r <= rounds; r++)
			for (unsigned i = 0; i < nsess; i++, k++) {
				rtp(store + k * SLOT, (uint16_t)r, 0x1000 + i);
				lens[k] = PKT;
			}
		double t0 = cpu_ns();
		k = 0;
		for (unsigned r = 1; r <= rounds && !err; r++)
			for (unsigned i = 0; i < nsess; i++, k++)
				if ((err =
				         om_srtp_protect(tx[i], store + k * SLOT, &lens[k], SLOT)))
					break;
		double t1 = cpu_ns();
		k = 0;
		for (unsigned r = 1; r <= rounds && !err; r++)
			for (unsigned i = 0; i < nsess; i++, k++)
				if ((err = om_srtp_unprotect(rx[i], store + k * SLOT, &lens[k])))
					break;
		double t2 = cpu_ns();
		*prot_ns = (t1 - t0) / (double)npk;
		*unprot_ns = (t2 - t1) / (double)npk;
	}
	for (unsigned i = 0; i < nsess; i++) {
		om_srtp_free(tx[i]);
		om_srtp_free(rx[i]);
	}
	free(tx);
	free(rx);
	free(store);
	free(lens);
	return err;
}

/* The floor: what one packet costs in OpenSSL EVP alone (one context set,
 * IV re-initialisation, encrypt 160 octets, HMAC-SHA1 over 172 + 4). */
static double raw_cm(unsigned n)
{
	uint8_t key[16], akey[20], iv[16] = { 0 }, b[SLOT], tag[20];
	RAND_bytes(key, sizeof(key));
	RAND_bytes(akey, sizeof(akey));
	EVP_CIPHER *aes = EVP_CIPHER_fetch(NULL, "AES-128-CTR", NULL);
	EVP_MAC *hm = EVP_MAC_fetch(NULL, "HMAC", NULL);
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	EVP_MAC_CTX *m = EVP_MAC_CTX_new(hm);
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA1", 0),
		OSSL_PARAM_construct_end(),
	};
	EVP_EncryptInit_ex(c, aes, NULL, key, NULL);
	EVP_MAC_init(m, akey, sizeof(akey), params);
	rtp(b, 1, 1);
	double t0 = cpu_ns();
	for (unsigned i = 0; i < n; i++) {
		int outl;
		size_t tl;
		iv[13] = (uint8_t)i;
		EVP_EncryptInit_ex(c, NULL, NULL, NULL, iv);
		EVP_EncryptUpdate(c, b + 12, &outl, b + 12, PAYLOAD);
		EVP_MAC_init(m, NULL, 0, NULL);
		EVP_MAC_update(m, b, PKT);
		EVP_MAC_update(m, iv, 4);
		EVP_MAC_final(m, tag, &tl, sizeof(tag));
		memcpy(b + PKT, tag, 10);
	}
	double t1 = cpu_ns();
	EVP_CIPHER_CTX_free(c);
	EVP_MAC_CTX_free(m);
	EVP_CIPHER_free(aes);
	EVP_MAC_free(hm);
	return (t1 - t0) / n;
}

static double raw_gcm(unsigned n)
{
	uint8_t key[16], iv[12] = { 0 }, b[SLOT];
	RAND_bytes(key, sizeof(key));
	EVP_CIPHER *aes = EVP_CIPHER_fetch(NULL, "AES-128-GCM", NULL);
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	EVP_EncryptInit_ex(c, aes, NULL, key, NULL);
	rtp(b, 1, 1);
	double t0 = cpu_ns();
	for (unsigned i = 0; i < n; i++) {
		int outl;
		iv[11] = (uint8_t)i;
		iv[10] = (uint8_t)(i >> 8);
		EVP_EncryptInit_ex(c, NULL, NULL, NULL, iv);
		EVP_EncryptUpdate(c, NULL, &outl, b, 12);
		EVP_EncryptUpdate(c, b + 12, &outl, b + 12, PAYLOAD);
		EVP_EncryptFinal_ex(c, b + PKT, &outl);
		EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_GET_TAG, 16, b + PKT);
	}
	double t1 = cpu_ns();
	EVP_CIPHER_CTX_free(c);
	EVP_CIPHER_free(aes);
	return (t1 - t0) / n;
}

int main(int argc, char **argv)
{
	unsigned total = argc > 1 ? (unsigned)strtoul(argv[1], NULL, 10) : 100000;
	static const unsigned counts[] = { 1, 1000, 5000 };
	static const enum om_srtp_suite st[] = { OM_SRTP_AES_CM_128_HMAC_SHA1_80,
		                                 OM_SRTP_AEAD_AES_128_GCM };
	static const char *const ben[] = { "openssl", "libsrtp2" };
	double base_cm = raw_cm(total), base_gcm = raw_gcm(total);
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("%-9s %-24s %8s %12s %12s %10s %10s\n", "backend", "suite", "sessions", "protect_ns",
	       "unprotect_ns", "prot/raw", "unprot/raw");
	const char *only = argc > 2 ? argv[2] : NULL;
	for (int be = 0; be < 2; be++)
		for (size_t s = 0; s < 2 && (!only || strcmp(only, ben[be]) == 0); s++)
			for (size_t c = 0; c < 3; c++) {
				double p = 0, u = 0, base = s == 0 ? base_cm : base_gcm;
				/* libsrtp2 slows down so much with many sessions that
				 * a fifth of the packets is plenty. */
				unsigned n = be == 1 && counts[c] > 1 ? total / 5 : total;
				int err =
				    cell((enum om_srtp_backend)be, st[s], counts[c], n, &p, &u);
				if (err) {
					printf("%-9s %-24s %8u error %d\n", ben[be],
					       om_srtp_suite_name(st[s]), counts[c], err);
					continue;
				}
				printf("%-9s %-24s %8u %12.0f %12.0f %10.2f %10.2f\n", ben[be],
				       om_srtp_suite_name(st[s]), counts[c], p, u, p / base,
				       u / base);
			}
	printf("raw EVP AES-128-CTR + HMAC-SHA1-80 (one context): %.0f ns/packet\n", base_cm);
	printf("raw EVP AES-128-GCM (one context):                %.0f ns/packet\n", base_gcm);
	return 0;
}
