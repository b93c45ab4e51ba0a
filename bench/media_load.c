/* media_load.c — `media_load`: N concurrent G.711 SRTP (or RTP) streams at
 * 50 packets/s each from one UDP socket, to ports given on stdin, for the
 * media benchmark (bench/media_bench.py). Every stream has its own SSRC and
 * its own SRTP SEND session (openum's transform, the OpenSSL backend), so
 * the sender does the work a gateway would; packets go out with sendmmsg
 * in batches, paced every 20 ms. Prints one JSON line at the end: packets
 * sent, send errors, the CPU seconds it used and how late its ticks ran.
 *
 *   media_load --from IP:PORT --to IP --seconds S [--suite NAME --key B64]
 *              [--ptime 20] [--sink PORT] < ports (one destination port per line)
 *
 * --sink PORT also receives on 127.0.0.1:PORT in a second thread and counts
 * what arrives (for a relay such as rtpengine, whose output goes there).
 *
 * RFC 3550 §5.1 (header), RFC 3711 (protect). */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "core/alloc.h"
#include "media/srtp.h"

#define BATCH 64

struct stream {
	struct sockaddr_in to;
	struct om_srtp *srtp;
	uint32_t ssrc, ts;
	uint16_t seq;
};

static atomic_ullong sink_packets;
static atomic_int sink_stop;

static void *sink_main(void *arg)
{
	int fd = *(int *)arg;
	static uint8_t bufs[BATCH][2048];
	struct mmsghdr mh[BATCH];
	struct iovec iov[BATCH];
	for (int i = 0; i < BATCH; i++) {
		iov[i].iov_base = bufs[i];
		iov[i].iov_len = sizeof(bufs[i]);
		memset(&mh[i], 0, sizeof(mh[i]));
		mh[i].msg_hdr.msg_iov = &iov[i];
		mh[i].msg_hdr.msg_iovlen = 1;
	}
	struct timespec to = { 0, 100 * 1000 * 1000 };
	while (!atomic_load(&sink_stop)) {
		int r = recvmmsg(fd, mh, BATCH, MSG_WAITFORONE, &to);
		if (r > 0)
			atomic_fetch_add(&sink_packets, (unsigned long long)r);
	}
	return NULL;
}

static int64_t mono_us(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000000 + t.tv_nsec / 1000;
}

int main(int argc, char **argv)
{
	const char *from = NULL, *to = "127.0.0.1", *suite = NULL, *key = NULL;
	double seconds = 10;
	unsigned ptime = 20, sink_port = 0;
	static const struct option o[] = {
		{ "sink", 1, 0, 'K' },    { "from", 1, 0, 'f' },  { "to", 1, 0, 't' },
		{ "seconds", 1, 0, 's' }, { "suite", 1, 0, 'S' }, { "key", 1, 0, 'k' },
		{ "ptime", 1, 0, 'p' },   { 0, 0, 0, 0 },
	};
	int c;
	while ((c = getopt_long(argc, argv, "", o, NULL)) != -1) {
		switch (c) {
		case 'f':
			from = optarg;
			break;
		case 't':
			to = optarg;
			break;
		case 's':
			seconds = atof(optarg);
			break;
		case 'S':
			suite = optarg;
			break;
		case 'k':
			key = optarg;
			break;
		case 'p':
			ptime = (unsigned)atoi(optarg);
			break;
		case 'K':
			sink_port = (unsigned)atoi(optarg);
			break;
		default:
			return 2;
		}
	}
	if (!from) {
		fprintf(stderr, "usage: media_load --from IP:PORT [--to IP] [--seconds S] "
		                "[--suite NAME --key B64] < ports\n");
		return 2;
	}
	enum om_srtp_suite su = 0;
	uint8_t k[64];
	int kl = 0;
	if (suite) {
		if (om_srtp_suite_parse(suite, strlen(suite), &su) || !key)
			return 2;
		kl = EVP_DecodeBlock(k, (const unsigned char *)key, (int)strlen(key));
		kl -= (key[strlen(key) - 1] == '=') + (key[strlen(key) - 2] == '=');
	}
	size_t n = 0, cap = 1024;
	struct stream *st = om_calloc(cap, sizeof(*st));
	unsigned port;
	while (scanf("%u", &port) == 1) {
		if (n == cap) {
			cap *= 2;
			st = om_realloc(st, cap * sizeof(*st));
		}
		struct stream *s = &st[n];
		memset(s, 0, sizeof(*s));
		s->to.sin_family = AF_INET;
		s->to.sin_port = htons((uint16_t)port);
		inet_pton(AF_INET, to, &s->to.sin_addr);
		s->ssrc = 0x10000000u + (uint32_t)n;
		s->seq = (uint16_t)(n * 7);
		s->ts = (uint32_t)n * 1000;
		if (suite) {
			struct om_srtp_policy p = { .suite = su,
				                    .dir = OM_SRTP_SEND,
				                    .key = k,
				                    .key_len = (size_t)kl,
				                    .max_ssrcs = 1 };
			if (om_srtp_new(&p, &s->srtp)) {
				fprintf(stderr, "media_load: srtp setup failed\n");
				return 1;
			}
		}
		n++;
	}
	char host[64];
	const char *colon = strrchr(from, ':');
	snprintf(host, sizeof(host), "%.*s", (int)(colon - from), from);
	struct sockaddr_in src = { .sin_family = AF_INET,
		                   .sin_port = htons((uint16_t)atoi(colon + 1)) };
	inet_pton(AF_INET, host, &src.sin_addr);
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	int sz = 8 << 20;
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	if (bind(fd, (struct sockaddr *)&src, sizeof(src)) != 0) {
		perror("media_load: bind");
		return 1;
	}
	pthread_t sink_tid;
	int sink_fd = -1;
	if (sink_port) {
		struct sockaddr_in sa = { .sin_family = AF_INET,
			                  .sin_port = htons((uint16_t)sink_port) };
		inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
		sink_fd = socket(AF_INET, SOCK_DGRAM, 0);
		int rb = 32 << 20;
		setsockopt(sink_fd, SOL_SOCKET, SO_RCVBUF, &rb, sizeof(rb));
		setsockopt(sink_fd, SOL_SOCKET, SO_RCVBUFFORCE, &rb, sizeof(rb));
		struct timeval tv = { 0, 100000 };
		setsockopt(sink_fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		if (bind(sink_fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
			perror("media_load: sink bind");
			return 1;
		}
		pthread_create(&sink_tid, NULL, sink_main, &sink_fd);
	}
	static uint8_t pkts[BATCH][12 + 480 + OM_SRTP_MAX_TRAILER];
	struct mmsghdr mh[BATCH];
	struct iovec iov[BATCH];
	uint8_t payload[480];
	for (int i = 0; i < 480; i++)
		payload[i] = (uint8_t)(0x55 ^ (i * 13));
	size_t frame = ptime * 8;
	uint64_t sent = 0, errors = 0, ticks = 0;
	int64_t late_max = 0, late_sum = 0;
	int64_t t0 = mono_us(), end = t0 + (int64_t)(seconds * 1e6);
	for (int64_t next = t0; next < end; next += ptime * 1000) {
		int64_t now = mono_us();
		if (next > now) {
			struct timespec ts = { 0, (long)(next - now) * 1000 };
			nanosleep(&ts, NULL);
		} else if (now - next > late_max) {
			late_max = now - next;
		}
		late_sum += mono_us() - next;
		ticks++;
		for (size_t i = 0; i < n;) {
			int b = 0;
			for (; b < BATCH && i < n; b++, i++) {
				struct stream *s = &st[i];
				uint8_t *p = pkts[b];
				p[0] = 0x80;
				p[1] = 0;
				p[2] = (uint8_t)(s->seq >> 8);
				p[3] = (uint8_t)s->seq;
				p[4] = (uint8_t)(s->ts >> 24);
				p[5] = (uint8_t)(s->ts >> 16);
				p[6] = (uint8_t)(s->ts >> 8);
				p[7] = (uint8_t)s->ts;
				p[8] = (uint8_t)(s->ssrc >> 24);
				p[9] = (uint8_t)(s->ssrc >> 16);
				p[10] = (uint8_t)(s->ssrc >> 8);
				p[11] = (uint8_t)s->ssrc;
				memcpy(p + 12, payload, frame);
				size_t len = 12 + frame;
				if (s->srtp &&
				    om_srtp_protect(s->srtp, p, &len, sizeof(pkts[b])) != 0)
					errors++;
				s->seq++;
				s->ts += (uint32_t)frame;
				iov[b].iov_base = p;
				iov[b].iov_len = len;
				memset(&mh[b], 0, sizeof(mh[b]));
				mh[b].msg_hdr.msg_name = &s->to;
				mh[b].msg_hdr.msg_namelen = sizeof(s->to);
				mh[b].msg_hdr.msg_iov = &iov[b];
				mh[b].msg_hdr.msg_iovlen = 1;
			}
			int off = 0;
			while (off < b) {
				int r = sendmmsg(fd, mh + off, (unsigned)(b - off), 0);
				if (r < 0) {
					if (errno == EINTR)
						continue;
					errors += (uint64_t)(b - off);
					break;
				}
				sent += (uint64_t)r;
				off += r;
			}
		}
	}
	if (sink_port) {
		usleep(1000 * 1000);
		atomic_store(&sink_stop, 1);
		pthread_join(sink_tid, NULL);
		close(sink_fd);
	}
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	double cpu = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	             (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
	printf("{\"streams\": %zu, \"sent\": %llu, \"errors\": %llu, \"sink\": %llu, "
	       "\"cpu_s\": %.3f, \"late_max_ms\": %.1f, \"late_avg_ms\": %.2f}\n",
	       n, (unsigned long long)sent, (unsigned long long)errors,
	       (unsigned long long)atomic_load(&sink_packets), cpu, late_max / 1000.0,
	       ticks ? (double)late_sum / (double)ticks / 1000.0 : 0.0);
	for (size_t i = 0; i < n; i++)
		om_srtp_free(st[i].srtp);
	om_free(st);
	close(fd);
	return 0;
}
