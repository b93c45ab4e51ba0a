/* srtp2_send.c — `om-srtp2-send`: an SRTP sender independent of openum:
 * RTP packets built here (RFC 3550 §5.1), protected by libsrtp2's own
 * srtp_protect_mki (RFC 3711, 6188, 7714; MKI as libsrtp2 places it),
 * G.711 payload taken as given (the test encodes it with Python's
 * audioop). It links nothing of openum, so a recording it produces checks
 * openum's receiver against another implementation end to end.
 *
 *   om-srtp2-send --to IP:PORT --from IP:PORT --suite NAME --key B64
 *                 [--mki HEX] --payload FILE [--pt N] [--ssrc N] [--seq N]
 *                 [--ts N] [--ptime MS] [--rate F] */
#include <arpa/inet.h>
#include <getopt.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <srtp2/srtp.h>

static int addr(const char *s, struct sockaddr_in *a)
{
	char host[64];
	const char *c = strrchr(s, ':');
	if (!c || (size_t)(c - s) >= sizeof(host))
		return -1;
	memcpy(host, s, (size_t)(c - s));
	host[c - s] = 0;
	memset(a, 0, sizeof(*a));
	a->sin_family = AF_INET;
	a->sin_port = htons((uint16_t)atoi(c + 1));
	return inet_pton(AF_INET, host, &a->sin_addr) == 1 ? 0 : -1;
}

static int suite(const char *n, srtp_policy_t *p)
{
	if (!strcmp(n, "AES_CM_128_HMAC_SHA1_80")) {
		srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&p->rtp);
		srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&p->rtcp);
	} else if (!strcmp(n, "AES_CM_128_HMAC_SHA1_32")) {
		srtp_crypto_policy_set_aes_cm_128_hmac_sha1_32(&p->rtp);
		srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&p->rtcp);
	} else if (!strcmp(n, "AES_256_CM_HMAC_SHA1_80")) {
		srtp_crypto_policy_set_aes_cm_256_hmac_sha1_80(&p->rtp);
		srtp_crypto_policy_set_aes_cm_256_hmac_sha1_80(&p->rtcp);
	} else if (!strcmp(n, "AEAD_AES_128_GCM")) {
		srtp_crypto_policy_set_aes_gcm_128_16_auth(&p->rtp);
		srtp_crypto_policy_set_aes_gcm_128_16_auth(&p->rtcp);
	} else if (!strcmp(n, "AEAD_AES_256_GCM")) {
		srtp_crypto_policy_set_aes_gcm_256_16_auth(&p->rtp);
		srtp_crypto_policy_set_aes_gcm_256_16_auth(&p->rtcp);
	} else {
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	const char *to = NULL, *from = NULL, *sname = NULL, *key = NULL, *mki = NULL,
	           *payload = NULL;
	unsigned pt = 0, ptime = 20;
	uint32_t ssrc = 0x53525432, ts = 12345678;
	uint16_t seq = 4242;
	double rate = 0;
	static const struct option o[] = {
		{ "to", 1, 0, 't' },  { "from", 1, 0, 'f' },  { "suite", 1, 0, 's' },
		{ "key", 1, 0, 'k' }, { "mki", 1, 0, 'm' },   { "payload", 1, 0, 'p' },
		{ "pt", 1, 0, 'P' },  { "ssrc", 1, 0, 'x' },  { "seq", 1, 0, 'q' },
		{ "ts", 1, 0, 'z' },  { "ptime", 1, 0, 'T' }, { "rate", 1, 0, 'r' },
		{ 0, 0, 0, 0 },
	};
	int c;
	while ((c = getopt_long(argc, argv, "", o, NULL)) != -1) {
		switch (c) {
		case 't':
			to = optarg;
			break;
		case 'f':
			from = optarg;
			break;
		case 's':
			sname = optarg;
			break;
		case 'k':
			key = optarg;
			break;
		case 'm':
			mki = optarg;
			break;
		case 'p':
			payload = optarg;
			break;
		case 'P':
			pt = (unsigned)atoi(optarg);
			break;
		case 'x':
			ssrc = (uint32_t)strtoul(optarg, NULL, 0);
			break;
		case 'q':
			seq = (uint16_t)strtoul(optarg, NULL, 0);
			break;
		case 'z':
			ts = (uint32_t)strtoul(optarg, NULL, 0);
			break;
		case 'T':
			ptime = (unsigned)atoi(optarg);
			break;
		case 'r':
			rate = atof(optarg);
			break;
		default:
			return 2;
		}
	}
	struct sockaddr_in dst, src;
	srtp_policy_t pol;
	memset(&pol, 0, sizeof(pol));
	if (!to || !from || !sname || !key || !payload || addr(to, &dst) || addr(from, &src) ||
	    suite(sname, &pol)) {
		fprintf(stderr, "usage: om-srtp2-send --to IP:PORT --from IP:PORT --suite NAME "
		                "--key B64 [--mki HEX] --payload FILE [...]\n");
		return 2;
	}
	unsigned char k[96], mk[8];
	int kl = EVP_DecodeBlock(k, (const unsigned char *)key, (int)strlen(key));
	size_t klen = strlen(key);
	if (kl < 0)
		return 2;
	if (klen > 0 && key[klen - 1] == '=')
		kl--;
	if (klen > 1 && key[klen - 2] == '=')
		kl--;
	size_t mlen = 0;
	for (; mki && mki[2 * mlen] && mlen < sizeof(mk); mlen++) {
		unsigned v;
		if (sscanf(mki + 2 * mlen, "%2x", &v) != 1)
			return 2;
		mk[mlen] = (unsigned char)v;
	}
	if (srtp_init() != srtp_err_status_ok)
		return 1;
	srtp_master_key_t m = { k, mk, (unsigned)mlen }, *ms[1] = { &m };
	if (mlen) {
		pol.keys = ms;
		pol.num_master_keys = 1;
	} else {
		pol.key = k;
	}
	pol.ssrc.type = ssrc_any_outbound;
	pol.window_size = 128;
	srtp_t ctx;
	if (srtp_create(&ctx, &pol) != srtp_err_status_ok) {
		fprintf(stderr, "om-srtp2-send: srtp_create failed\n");
		return 1;
	}
	FILE *f = fopen(payload, "rb");
	if (!f)
		return 1;
	static unsigned char data[8000 * 600];
	size_t total = fread(data, 1, sizeof(data), f);
	fclose(f);
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (bind(fd, (struct sockaddr *)&src, sizeof(src)) != 0) {
		perror("om-srtp2-send: bind");
		return 1;
	}
	size_t frame = ptime * 8, sent = 0;
	struct timespec t0, now;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (size_t off = 0, i = 0; off < total; off += frame, i++) {
		unsigned char pkt[1600];
		size_t n = total - off < frame ? total - off : frame;
		pkt[0] = 0x80;
		pkt[1] = (unsigned char)((i == 0 ? 0x80 : 0) | pt);
		pkt[2] = (unsigned char)(seq >> 8);
		pkt[3] = (unsigned char)seq;
		pkt[4] = (unsigned char)(ts >> 24);
		pkt[5] = (unsigned char)(ts >> 16);
		pkt[6] = (unsigned char)(ts >> 8);
		pkt[7] = (unsigned char)ts;
		pkt[8] = (unsigned char)(ssrc >> 24);
		pkt[9] = (unsigned char)(ssrc >> 16);
		pkt[10] = (unsigned char)(ssrc >> 8);
		pkt[11] = (unsigned char)ssrc;
		memcpy(pkt + 12, data + off, n);
		int len = (int)(12 + n);
		if (srtp_protect_mki(ctx, pkt, &len, mlen ? 1 : 0, 0) != srtp_err_status_ok) {
			fprintf(stderr, "om-srtp2-send: protect failed\n");
			return 1;
		}
		if (rate > 0) {
			double due = (double)i * ptime / rate / 1000.0;
			clock_gettime(CLOCK_MONOTONIC, &now);
			double el =
			    (double)(now.tv_sec - t0.tv_sec) + (now.tv_nsec - t0.tv_nsec) / 1e9;
			if (due > el)
				usleep((useconds_t)((due - el) * 1e6));
		}
		if (sendto(fd, pkt, (size_t)len, 0, (struct sockaddr *)&dst, sizeof(dst)) == len)
			sent++;
		seq++;
		ts += (uint32_t)n;
	}
	srtp_dealloc(ctx);
	srtp_shutdown();
	close(fd);
	printf("{\"sent\": %zu}\n", sent);
	return 0;
}
