/* rtp_tool.c — `om-testrtp`: a gateway's RTP/SRTP media for tests.
 *
 *   om-testrtp send --to ADDR:PORT [source] [stream] [srtp] [impairments]
 *   om-testrtp recv --listen ADDR:PORT [srtp] [--out FILE] [--timeout MS]
 *
 * send builds the whole stream first (as a real sender would number and
 * protect it: RFC 3550 sequence/timestamp, RFC 3711 index), then sends it
 * paced at ptime, in an order changed by the impairments, and prints a JSON
 * summary. recv binds (RTP and, without --mux, RTCP on port + 1), prints
 * "ready", decodes the stream by timestamp, writes it as s16le 8 kHz mono,
 * and prints a JSON summary. See --help. */
#include <errno.h>
#include <arpa/inet.h>
#include <getopt.h>
#include <netinet/in.h>
#include <math.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sndfile.h>
#define SPANDSP_EXPOSE_INTERNAL_STRUCTURES
#include <spandsp.h>

#include "core/alloc.h"
#include "media/rtp.h"
#include "testcall/rtp.h"

static const char usage[] =
    "usage: om-testrtp send --to ADDR:PORT [options]\n"
    "       om-testrtp recv --listen ADDR:PORT [options]\n"
    "source (send): --wav FILE | --tone HZ:MS | --payload FILE (G.711 bytes) | --silence MS\n"
    "stream: --from ADDR:PORT --pt N --alaw --te-pt N --ptime MS --ssrc N --seq N --ts N\n"
    "        --rtcp-every N --rtcp-to ADDR:PORT|mux --rate F (1 = real time, 0 = no pacing)\n"
    "srtp:   --suite NAME --key BASE64 --mki HEX --backend openssl|libsrtp2\n"
    "impairments (packet indices in build order, comma lists):\n"
    "        --drop L --dup L --swap L --late I:K --tamper L --replay I:K\n"
    "        --ssrc-change I[:SSRC] --ts-jump I:DELTA\n"
    "        --dtmf D@MS[:DUR],... (RFC 4733)  --inband D@MS[:DUR],... (tones in the audio)\n"
    "        --mark-at N (print {\"mark\": N} once the Nth packet is sent)\n"
    "        --pause-at N:MS (wait MS after the Nth packet; later packets keep their times)\n"
    "        --cn I:K (frames I..I+K-1 are DTX: an RFC 3389 CN packet every 100 ms)\n"
    "        --mute I:K (frames I..I+K-1 send no RTP; RTCP goes on)\n"
    "        --log-sent (print {\"i\": N, \"us\": T} as each packet leaves; T in µs of\n"
    "        CLOCK_MONOTONIC)\n"
    "recv:   --out FILE --timeout MS (after the last packet; default 1500) --max-ms MS\n"
    "        --wait MS (for the first packet; default 10000)\n"
    "        --mux --te-pt N\n";

struct pkt {
	uint8_t b[OM_TC_PKT_MAX];
	size_t len;
	int64_t at_us;
	bool rtcp;
};

struct list {
	long v[256];
	long w[256];
	size_t n;
};

static int parse_list(const char *s, struct list *l, bool pairs)
{
	l->n = 0;
	while (*s && l->n < 256) {
		char *e;
		l->v[l->n] = strtol(s, &e, 10);
		l->w[l->n] = 0;
		if (e == s)
			return EINVAL;
		if (*e == ':') {
			s = e + 1;
			l->w[l->n] = strtol(s, &e, 0);
			if (e == s)
				return EINVAL;
		} else if (pairs) {
			return EINVAL;
		}
		l->n++;
		s = *e == ',' ? e + 1 : e;
		if (*e && *e != ',')
			return EINVAL;
	}
	return 0;
}

/* i in one of the ranges [v, v + w) of the list. */
static bool in_range(const struct list *l, long i, long *from)
{
	for (size_t k = 0; k < l->n; k++)
		if (i >= l->v[k] && i < l->v[k] + l->w[k]) {
			if (from)
				*from = l->v[k];
			return true;
		}
	return false;
}

static bool in_list(const struct list *l, long i, long *w)
{
	for (size_t k = 0; k < l->n; k++)
		if (l->v[k] == i) {
			if (w)
				*w = l->w[k];
			return true;
		}
	return false;
}

struct dtmf_spec {
	char digit;
	unsigned at, dur;
};

static size_t parse_dtmf(const char *s, struct dtmf_spec *d, size_t cap)
{
	size_t n = 0;
	while (*s && n < cap) {
		d[n].digit = *s++;
		d[n].dur = 100;
		if (*s++ != '@')
			return 0;
		char *e;
		d[n].at = (unsigned)strtoul(s, &e, 10);
		if (*e == ':')
			d[n].dur = (unsigned)strtoul(e + 1, &e, 10);
		n++;
		s = *e == ',' ? e + 1 : e;
	}
	return n;
}

static int64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int load_wav(const char *path, int16_t **pcm, size_t *n)
{
	SF_INFO info;
	memset(&info, 0, sizeof(info));
	SNDFILE *f = sf_open(path, SFM_READ, &info);
	if (!f)
		return EINVAL;
	if (info.samplerate != 8000 || info.channels != 1) {
		fprintf(stderr, "om-testrtp: %s must be 8 kHz mono\n", path);
		sf_close(f);
		return EINVAL;
	}
	*pcm = om_malloc((size_t)info.frames * 2 + 2);
	*n = (size_t)sf_readf_short(f, *pcm, info.frames);
	sf_close(f);
	return 0;
}

static int srtp_opts(struct om_tc_srtp *c, const char *suite, const char *key, const char *mki,
                     const char *backend)
{
	memset(c, 0, sizeof(*c));
	if (!suite)
		return 0;
	c->on = true;
	if (om_srtp_suite_parse(suite, strlen(suite), &c->suite) != 0 || !key ||
	    om_tc_b64_decode(key, c->key, sizeof(c->key), &c->key_len) != 0) {
		fprintf(stderr, "om-testrtp: bad --suite or --key\n");
		return EINVAL;
	}
	if (mki && om_tc_hex_decode(mki, c->mki, sizeof(c->mki), &c->mki_len) != 0) {
		fprintf(stderr, "om-testrtp: bad --mki (1-4 octets in hex)\n");
		return EINVAL;
	}
	if (backend && om_srtp_backend_parse(backend, &c->backend) != 0)
		return EINVAL;
	return 0;
}

static int bind_to(const char *spec, int family, int *fd)
{
	struct sockaddr_storage a;
	socklen_t al;
	int s = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return errno;
	if (spec) {
		if (om_tc_parse_addr(spec, &a, &al) != 0 ||
		    bind(s, (struct sockaddr *)&a, al) != 0) {
			int err = errno ? errno : EINVAL;
			close(s);
			return err;
		}
	}
	*fd = s;
	return 0;
}

/* ------------------------------------------------------------------ send */

static int cmd_send(int argc, char **argv)
{
	const char *to = NULL, *from = NULL, *wav = NULL, *payload = NULL, *rtcp_to = NULL;
	const char *suite = NULL, *key = NULL, *mki = NULL, *backend = NULL;
	unsigned tone_hz = 0, tone_ms = 0, silence_ms = 0, ptime = 20, rtcp_every = 0;
	double rate = 1.0;
	struct om_tc_tx tx;
	memset(&tx, 0, sizeof(tx));
	tx.te_pt = 101;
	tx.ssrc = 0x4f4d5431;
	tx.seq = 1000;
	tx.ts = 160000;
	static struct list drop, dup, swap, late, tamper, replay, ssrc_change, ts_jump, cn, mute;
	static struct dtmf_spec dtmf[32], inband[32];
	size_t ndtmf = 0, ninband = 0;
	static const struct option opts[] = {
		{ "to", 1, 0, 't' },     { "from", 1, 0, 'f' },       { "wav", 1, 0, 'w' },
		{ "tone", 1, 0, 'T' },   { "payload", 1, 0, 'P' },    { "silence", 1, 0, 'S' },
		{ "pt", 1, 0, 'p' },     { "alaw", 0, 0, 'a' },       { "te-pt", 1, 0, 'e' },
		{ "ptime", 1, 0, 'm' },  { "ssrc", 1, 0, 'x' },       { "seq", 1, 0, 'q' },
		{ "ts", 1, 0, 'z' },     { "rtcp-every", 1, 0, 'R' }, { "rtcp-to", 1, 0, 'r' },
		{ "rate", 1, 0, 'y' },   { "suite", 1, 0, 's' },      { "key", 1, 0, 'k' },
		{ "mki", 1, 0, 'M' },    { "backend", 1, 0, 'b' },    { "drop", 1, 0, 1 },
		{ "dup", 1, 0, 2 },      { "swap", 1, 0, 3 },         { "late", 1, 0, 4 },
		{ "tamper", 1, 0, 5 },   { "replay", 1, 0, 6 },       { "ssrc-change", 1, 0, 7 },
		{ "ts-jump", 1, 0, 8 },  { "dtmf", 1, 0, 9 },         { "inband", 1, 0, 10 },
		{ "mark-at", 1, 0, 11 }, { "pause-at", 1, 0, 12 },    { "log-sent", 0, 0, 13 },
		{ "cn", 1, 0, 14 },      { "mute", 1, 0, 15 },        { "help", 0, 0, 'h' },
		{ 0, 0, 0, 0 },
	};
	long mark_at = -1, pause_at = -1, pause_ms = 0;
	bool log_sent = false;
	int c, bad = 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 't':
			to = optarg;
			break;
		case 'f':
			from = optarg;
			break;
		case 'w':
			wav = optarg;
			break;
		case 'T':
			bad |= sscanf(optarg, "%u:%u", &tone_hz, &tone_ms) != 2;
			break;
		case 'P':
			payload = optarg;
			break;
		case 'S':
			silence_ms = (unsigned)atoi(optarg);
			break;
		case 'p':
			tx.pt = (uint8_t)atoi(optarg);
			break;
		case 'a':
			tx.alaw = true;
			break;
		case 'e':
			tx.te_pt = atoi(optarg);
			break;
		case 'm':
			ptime = (unsigned)atoi(optarg);
			break;
		case 'x':
			tx.ssrc = (uint32_t)strtoul(optarg, NULL, 0);
			break;
		case 'q':
			tx.seq = (uint16_t)strtoul(optarg, NULL, 0);
			break;
		case 'z':
			tx.ts = (uint32_t)strtoul(optarg, NULL, 0);
			break;
		case 'R':
			rtcp_every = (unsigned)atoi(optarg);
			break;
		case 'r':
			rtcp_to = optarg;
			break;
		case 'y':
			rate = atof(optarg);
			break;
		case 's':
			suite = optarg;
			break;
		case 'k':
			key = optarg;
			break;
		case 'M':
			mki = optarg;
			break;
		case 'b':
			backend = optarg;
			break;
		case 1:
			bad |= parse_list(optarg, &drop, false);
			break;
		case 2:
			bad |= parse_list(optarg, &dup, false);
			break;
		case 3:
			bad |= parse_list(optarg, &swap, false);
			break;
		case 4:
			bad |= parse_list(optarg, &late, true);
			break;
		case 5:
			bad |= parse_list(optarg, &tamper, false);
			break;
		case 6:
			bad |= parse_list(optarg, &replay, true);
			break;
		case 7:
			bad |= parse_list(optarg, &ssrc_change, false);
			break;
		case 8:
			bad |= parse_list(optarg, &ts_jump, true);
			break;
		case 9:
			bad |= !(ndtmf = parse_dtmf(optarg, dtmf, 32));
			break;
		case 10:
			bad |= !(ninband = parse_dtmf(optarg, inband, 32));
			break;
		case 11:
			mark_at = atol(optarg);
			break;
		case 12:
			bad |= sscanf(optarg, "%ld:%ld", &pause_at, &pause_ms) != 2;
			break;
		case 13:
			log_sent = true;
			break;
		case 14:
			bad |= parse_list(optarg, &cn, true);
			break;
		case 15:
			bad |= parse_list(optarg, &mute, true);
			break;
		case 'h':
			fputs(usage, stdout);
			return 0;
		default:
			bad = 1;
			break;
		}
	}
	if (bad || !to || ptime < 10 || ptime > 60) {
		fputs(usage, stderr);
		return 2;
	}
	struct sockaddr_storage dst, rdst;
	socklen_t dlen, rlen;
	if (om_tc_parse_addr(to, &dst, &dlen) != 0) {
		fputs(usage, stderr);
		return 2;
	}
	rdst = dst;
	rlen = dlen;
	if (rtcp_to && strcmp(rtcp_to, "mux") != 0 && om_tc_parse_addr(rtcp_to, &rdst, &rlen) != 0)
		return 2;
	if (!rtcp_to) {
		uint16_t *pp = dst.ss_family == AF_INET
		                   ? &((struct sockaddr_in *)&rdst)->sin_port
		                   : &((struct sockaddr_in6 *)&rdst)->sin6_port;
		*pp = htons((uint16_t)(ntohs(*pp) + 1));
	}
	struct om_tc_srtp sc;
	if (srtp_opts(&sc, suite, key, mki, backend) != 0)
		return 2;
	/* The audio. */
	int16_t *pcm = NULL;
	uint8_t *raw = NULL;
	size_t total = 0;
	if (wav) {
		if (load_wav(wav, &pcm, &total) != 0)
			return 1;
	} else if (payload) {
		FILE *f = fopen(payload, "rb");
		if (!f)
			return 1;
		raw = om_malloc(8000 * 3600);
		total = fread(raw, 1, 8000 * 3600, f);
		fclose(f);
	} else {
		unsigned ms = tone_hz ? tone_ms : silence_ms ? silence_ms : 1000;
		total = (size_t)ms * 8;
		pcm = om_calloc(total + 1, 2);
		for (size_t i = 0; tone_hz && i < total; i++)
			pcm[i] =
			    (int16_t)lrint(14654.0 * sin(2 * M_PI * tone_hz * (double)i / 8000.0));
	}
	if (!pcm && !raw)
		return 1;
	if (ninband && pcm) {
		dtmf_tx_state_t dt;
		for (size_t k = 0; k < ninband; k++) {
			dtmf_tx_init(&dt);
			dtmf_tx_set_timing(&dt, (int)inband[k].dur, 0);
			char d[2] = { inband[k].digit, 0 };
			dtmf_tx_put(&dt, d, 1);
			size_t at = (size_t)inband[k].at * 8;
			if (at < total)
				dtmf_tx(&dt, pcm + at,
				        (int)(total - at < (size_t)inband[k].dur * 8
				                  ? total - at
				                  : (size_t)inband[k].dur * 8));
		}
	}
	if (om_tc_tx_init(&tx, &sc) != 0) {
		fprintf(stderr, "om-testrtp: SRTP setup failed\n");
		return 1;
	}
	tx.ptime = ptime;
	tx.talkspurt = true;
	size_t frame = ptime * 8, nframes = (total + frame - 1) / frame;
	size_t cap = nframes * 3 + ndtmf * 64 + 64;
	struct pkt *pk = om_calloc(cap, sizeof(*pk));
	size_t np = 0;
	uint32_t first_ts = tx.ts, first_ssrc = tx.ssrc;
	uint16_t first_seq = tx.seq;
	for (size_t i = 0; i < nframes && np + 8 < cap; i++) {
		long w;
		if (in_list(&ssrc_change, (long)i, &w)) {
			tx.ssrc = w ? (uint32_t)w : tx.ssrc + 0x1111;
			tx.seq = (uint16_t)(tx.seq + 20000);
			tx.ts += 0x40000000u;
			tx.talkspurt = true;
		}
		if (in_list(&ts_jump, (long)i, &w)) {
			tx.ts += (uint32_t)w;
			tx.talkspurt = true;
		}
		int64_t at = (int64_t)(i * ptime) * 1000;
		/* RFC 4733 events that run during this frame: one update per
		 * frame, three end packets after the last. */
		for (size_t k = 0; k < ndtmf; k++) {
			unsigned s0 = dtmf[k].at / ptime, s1 = (dtmf[k].at + dtmf[k].dur) / ptime;
			if (i < s0 || i > s1)
				continue;
			static uint32_t ev_ts[32];
			if (i == s0)
				ev_ts[k] = tx.ts;
			int ev = om_rtp_digit_event(dtmf[k].digit);
			uint16_t dur = (uint16_t)((i - s0 + 1) * frame);
			int copies = i == s1 ? 3 : 1;
			for (int r = 0; r < copies; r++) {
				pk[np].len = om_tc_tx_event(&tx, (uint8_t)ev, ev_ts[k], dur,
				                            i == s1, i == s0, pk[np].b);
				pk[np].at_us = at;
				np++;
			}
		}
		size_t n = total - i * frame < frame ? total - i * frame : frame;
		int16_t buf[480];
		memset(buf, 0, sizeof(buf));
		if (pcm)
			memcpy(buf, pcm + i * frame, n * 2);
		uint8_t rb[480];
		memset(rb, 0xff, sizeof(rb));
		if (raw)
			memcpy(rb, raw + i * frame, n);
		long cn_from;
		if (in_range(&cn, (long)i, &cn_from)) {
			/* DTX: comfort noise every fifth frame, the clock runs on;
			 * the next audio starts a talk spurt. */
			if ((i - (size_t)cn_from) % 5 == 0) {
				pk[np].len = om_tc_tx_cn(&tx, 60, pk[np].b);
				pk[np].at_us = at;
				np++;
			}
			tx.ts += (uint32_t)frame;
			tx.talkspurt = true;
		} else if (in_range(&mute, (long)i, NULL)) {
			tx.ts += (uint32_t)frame;
			tx.talkspurt = true;
		} else {
			pk[np].len =
			    om_tc_tx_audio(&tx, pcm ? buf : NULL, raw ? rb : NULL, frame, pk[np].b);
			pk[np].at_us = at;
			np++;
		}
		if (rtcp_every && (i + 1) % rtcp_every == 0) {
			pk[np].len = om_tc_tx_rtcp(&tx, pk[np].b);
			pk[np].at_us = at;
			pk[np].rtcp = true;
			np++;
		}
	}
	/* The sending order. */
	size_t *order = om_calloc(cap * 3, sizeof(size_t)), no = 0;
	int *kind = om_calloc(cap * 3, sizeof(int)); /* 0 genuine, 1 tampered copy */
	for (size_t i = 0; i < np; i++) {
		if (in_list(&drop, (long)i, NULL))
			continue;
		if (in_list(&tamper, (long)i, NULL)) {
			kind[no] = 1;
			order[no++] = i;
		}
		if (!in_list(&late, (long)i, NULL)) {
			order[no++] = i;
			if (in_list(&dup, (long)i, NULL))
				order[no++] = i;
		}
		/* packets held back to come after this one, and replays */
		for (size_t k = 0; k < late.n; k++)
			if ((size_t)(late.v[k] + late.w[k]) == i &&
			    !in_list(&drop, late.v[k], NULL))
				order[no++] = (size_t)late.v[k];
		for (size_t k = 0; k < replay.n; k++)
			if ((size_t)(replay.v[k] + replay.w[k]) == i)
				order[no++] = (size_t)replay.v[k];
	}
	for (size_t k = 0; k < swap.n; k++) {
		for (size_t j = 0; j + 1 < no; j++) {
			if (order[j] == (size_t)swap.v[k] && !kind[j] && !kind[j + 1]) {
				size_t t = order[j];
				order[j] = order[j + 1];
				order[j + 1] = t;
				break;
			}
		}
	}
	int fd = -1, rfd = -1, err = bind_to(from, dst.ss_family, &fd);
	if (err) {
		fprintf(stderr, "om-testrtp: cannot bind %s: %s\n", from ? from : "",
		        strerror(err));
		return 1;
	}
	/* RTCP from the next port (RFC 3550 §11), or the same one with mux. */
	if (rtcp_to && strcmp(rtcp_to, "mux") == 0) {
		rfd = fd;
	} else {
		struct sockaddr_storage la;
		socklen_t ll = sizeof(la);
		char spec[80], host[64];
		getsockname(fd, (struct sockaddr *)&la, &ll);
		if (la.ss_family == AF_INET) {
			struct sockaddr_in *a4 = (struct sockaddr_in *)&la;
			inet_ntop(AF_INET, &a4->sin_addr, host, sizeof(host));
			snprintf(spec, sizeof(spec), "%s:%u", host, ntohs(a4->sin_port) + 1);
		} else {
			struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&la;
			inet_ntop(AF_INET6, &a6->sin6_addr, host, sizeof(host));
			snprintf(spec, sizeof(spec), "[%s]:%u", host, ntohs(a6->sin6_port) + 1);
		}
		if (bind_to(spec, dst.ss_family, &rfd) != 0)
			rfd = fd; /* taken: send from the RTP port */
	}
	int64_t t0 = now_us(), prev_at = 0;
	size_t sent = 0;
	for (size_t j = 0; j < no; j++) {
		struct pkt *p = &pk[order[j]];
		int64_t at = p->at_us > prev_at ? p->at_us : prev_at;
		prev_at = at;
		if (rate > 0) {
			int64_t wait = t0 + (int64_t)((double)at / rate) - now_us();
			if (wait > 0)
				usleep((useconds_t)wait);
		}
		uint8_t b[OM_TC_PKT_MAX];
		memcpy(b, p->b, p->len);
		if (kind[j])
			b[12 + 2] ^= 0x01; /* a payload bit (encrypted part) */
		const struct sockaddr_storage *d = p->rtcp ? &rdst : &dst;
		if (sendto(p->rtcp ? rfd : fd, b, p->len, 0, (const struct sockaddr *)d,
		           p->rtcp ? rlen : dlen) > 0)
			sent++;
		if (log_sent) {
			printf("{\"i\": %zu, \"us\": %lld}\n", j, (long long)now_us());
			fflush(stdout);
		}
		if ((long)j == pause_at) {
			/* Hold the stream (the clock of the packets goes on). */
			usleep((useconds_t)pause_ms * 1000);
			t0 += pause_ms * 1000;
		}
		if ((long)j == mark_at) {
			/* A test waits for this line (e.g. to kill the server now). */
			printf("{\"mark\": %ld}\n", mark_at);
			fflush(stdout);
		}
	}
	printf("{\"sent\": %zu, \"built\": %zu, \"ssrc\": %u, \"first_seq\": %u, \"first_ts\": %u, "
	       "\"frames\": %zu, \"samples\": %zu}\n",
	       sent, np, first_ssrc, first_seq, first_ts, nframes, nframes * frame);
	if (rfd != fd)
		close(rfd);
	close(fd);
	om_tc_tx_free(&tx);
	om_free(pk);
	om_free(order);
	om_free(kind);
	om_free(pcm);
	om_free(raw);
	return 0;
}

/* ------------------------------------------------------------------ recv */

static int cmd_recv(int argc, char **argv)
{
	const char *listen_at = NULL, *out = NULL, *suite = NULL, *key = NULL, *mki = NULL,
	           *backend = NULL;
	int timeout_ms = 1500, max_ms = 600000, te_pt = 101, wait_ms = 10000;
	bool mux = false;
	static const struct option opts[] = {
		{ "listen", 1, 0, 'l' }, { "out", 1, 0, 'o' },     { "timeout", 1, 0, 't' },
		{ "max-ms", 1, 0, 'x' }, { "suite", 1, 0, 's' },   { "key", 1, 0, 'k' },
		{ "mki", 1, 0, 'M' },    { "backend", 1, 0, 'b' }, { "mux", 0, 0, 'u' },
		{ "wait", 1, 0, 'w' },   { "te-pt", 1, 0, 'e' },   { "help", 0, 0, 'h' },
		{ 0, 0, 0, 0 },
	};
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'l':
			listen_at = optarg;
			break;
		case 'o':
			out = optarg;
			break;
		case 't':
			timeout_ms = atoi(optarg);
			break;
		case 'x':
			max_ms = atoi(optarg);
			break;
		case 's':
			suite = optarg;
			break;
		case 'k':
			key = optarg;
			break;
		case 'M':
			mki = optarg;
			break;
		case 'b':
			backend = optarg;
			break;
		case 'u':
			mux = true;
			break;
		case 'e':
			te_pt = atoi(optarg);
			break;
		case 'w':
			wait_ms = atoi(optarg);
			break;
		case 'h':
			fputs(usage, stdout);
			return 0;
		default:
			fputs(usage, stderr);
			return 2;
		}
	}
	struct sockaddr_storage a;
	socklen_t al;
	if (!listen_at || om_tc_parse_addr(listen_at, &a, &al) != 0) {
		fputs(usage, stderr);
		return 2;
	}
	struct om_tc_srtp sc;
	if (srtp_opts(&sc, suite, key, mki, backend) != 0)
		return 2;
	int fds[2] = { -1, -1 };
	fds[0] = socket(a.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (bind(fds[0], (struct sockaddr *)&a, al) != 0) {
		perror("om-testrtp: bind");
		return 1;
	}
	if (!mux) {
		uint16_t *pp = a.ss_family == AF_INET ? &((struct sockaddr_in *)&a)->sin_port
		                                      : &((struct sockaddr_in6 *)&a)->sin6_port;
		*pp = htons((uint16_t)(ntohs(*pp) + 1));
		fds[1] = socket(a.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		if (bind(fds[1], (struct sockaddr *)&a, al) != 0) {
			perror("om-testrtp: bind rtcp");
			return 1;
		}
	}
	struct om_tc_rx rx;
	if (om_tc_rx_init(&rx, &sc, te_pt) != 0)
		return 1;
	printf("ready\n");
	fflush(stdout);
	int64_t start = now_us(), last = 0;
	for (;;) {
		struct pollfd pf[2] = { { fds[0], POLLIN, 0 }, { fds[1], POLLIN, 0 } };
		int64_t now = now_us();
		if ((now - start) / 1000 > max_ms)
			break;
		if (last && (now - last) / 1000 > timeout_ms)
			break;
		if (!last && (now - start) / 1000 > wait_ms)
			break;
		int r = poll(pf, mux ? 1 : 2, 50);
		if (r < 0 && errno != EINTR)
			break;
		for (int k = 0; k < 2; k++) {
			if (pf[k].fd < 0 || !(pf[k].revents & POLLIN))
				continue;
			uint8_t b[OM_TC_PKT_MAX + 64];
			ssize_t n = recv(pf[k].fd, b, sizeof(b), 0);
			if (n > 0) {
				om_tc_rx_packet(&rx, b, (size_t)n);
				last = now_us();
			}
		}
	}
	if (out) {
		FILE *f = fopen(out, "wb");
		if (f) {
			if (rx.samples)
				fwrite(rx.pcm, 2, rx.samples, f);
			fclose(f);
		}
	}
	printf("{\"packets\": %llu, \"rtcp\": %llu, \"srtp_fail\": %llu, \"malformed\": %llu, "
	       "\"markers\": %llu, \"ssrc\": %u, \"pt\": %u, \"first_ts\": %u, \"last_ts\": %u, "
	       "\"samples\": %zu, \"digits\": \"%s\"}\n",
	       (unsigned long long)rx.packets, (unsigned long long)rx.rtcp,
	       (unsigned long long)rx.srtp_fail, (unsigned long long)rx.malformed,
	       (unsigned long long)rx.markers, rx.ssrc, rx.pt, rx.first_ts, rx.last_ts, rx.samples,
	       rx.digits);
	om_tc_rx_free(&rx);
	close(fds[0]);
	if (fds[1] >= 0)
		close(fds[1]);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		fputs(usage, argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	if (strcmp(argv[1], "send") == 0)
		return cmd_send(argc - 1, argv + 1);
	if (strcmp(argv[1], "recv") == 0)
		return cmd_recv(argc - 1, argv + 1);
	fputs(usage, stderr);
	return 2;
}
