/* fuzz_rtp_rx.c — libFuzzer target for the whole receive path of a media
 * session (src/media/rx.c, rec.c, dtmf.c, rtp.c, the SRTP unprotect and the
 * spool writer): source check, RTCP-mux demultiplexing, SRTP/SRTCP, RTP
 * header (CSRC, extension, padding), RTCP compound packets, G.711 decoding,
 * in-band and RFC 4733 DTMF, the timeline placement and the hand-over to
 * the spool writer thread (its writes discarded by a write hook).
 *
 * Input:  cfg(1) mki_len(1) then datagrams: flags(1) len(2, big-endian) bytes
 *   cfg    bit0 SRTP, bit1 rtcp-mux, bit2 rtp_symmetric, bit3 telephone-event
 *          (else in-band detection), bit4 record, bits5-7 suite (mod 5)
 *   flags  bits0-1 source: the SDP's address, another port, another IP, the
 *          port of the first move; bit2 arrives on the RTCP socket; bit3 SRTP:
 *          protect the bytes with the sender's key first (so fuzzed
 *          plaintext reaches everything past the tag check); bit4 RTCP
 *          protect instead of RTP; bit5 run the 50 ms tick after it.
 * Invariants checked: nothing crashes or leaks (sanitizers), the recorder's
 * timeline never goes backwards, and a session's counters add up. */
#include <errno.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "core/alloc.h"
#include "media/media_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const enum om_srtp_suite suites[] = {
	OM_SRTP_AES_CM_128_HMAC_SHA1_80, OM_SRTP_AES_CM_128_HMAC_SHA1_32,
	OM_SRTP_AES_256_CM_HMAC_SHA1_80, OM_SRTP_AEAD_AES_128_GCM,
	OM_SRTP_AEAD_AES_256_GCM,
};

static const uint8_t key[46] = { 3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7, 9, 3,
	                         2, 3, 8, 4, 6, 2, 6, 4, 3, 3, 8, 3, 2, 7, 9, 5,
	                         0, 2, 8, 8, 4, 1, 9, 7, 1, 6, 9, 3, 9, 9 };
static const uint8_t mki[4] = { 0xc0, 0xff, 0xee, 0x01 };

static struct mthread thread;
static struct om_media_engine engine;
static uv_async_t ev_async;
static struct spool *sp;
static int ready;

static ssize_t discard(int fd, const void *buf, size_t len, off_t off, void *arg)
{
	(void)fd;
	(void)buf;
	(void)off;
	(void)arg;
	return (ssize_t)len;
}

static void noop(uv_async_t *h)
{
	(void)h;
}

static void setup(void)
{
	uv_loop_init(&thread.loop);
	uv_async_init(&thread.loop, &ev_async, noop);
	engine.async = &ev_async;
	engine.rtp_timeout_ms = 30000;
	engine.flush_ms = 250;
	if (om_media_spool_new("/tmp", 5000, discard, NULL, &engine.events, &ev_async, &sp))
		abort();
	engine.sp = sp;
	thread.e = &engine;
	om_media_g711_init();
	ready = 1;
}

/* Frees the events the session sent (DTMF, SRTP_FAIL, ...); waits for
 * `want` RECORD_STOPPED from the writer thread. */
static void drain(int want)
{
	for (int spins = 0; spins < 200000; spins++) {
		struct om_mq_node *n = om_mq_take(&engine.events);
		while (n) {
			struct evnode *e = (struct evnode *)n;
			n = n->next;
			if (e->ev.type == OM_MEDIA_EV_RECORD_STOPPED)
				want--;
			om_free(e);
		}
		if (want <= 0)
			return;
		sched_yield();
	}
	abort(); /* the writer never answered */
}

static void addr(struct sockaddr_in *a, uint32_t ip, uint16_t port)
{
	memset(a, 0, sizeof(*a));
	a->sin_family = AF_INET;
	a->sin_addr.s_addr = htonl(ip);
	a->sin_port = htons(port);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!ready)
		setup();
	if (size < 2 || size > 65536)
		return 0;
	uint8_t cfgb = data[0];
	size_t mk = data[1] % 5;
	data += 2;
	size -= 2;
	struct om_media_session *s = om_calloc(1, sizeof(*s));
	if (!s)
		return 0;
	s->e = &engine;
	s->t = &thread;
	s->fd_rtp = s->fd_rtcp = -1;
	struct sess_cfg *c = &s->cfg;
	addr((struct sockaddr_in *)&c->remote, 0x7f000001, 40000);
	addr((struct sockaddr_in *)&c->remote_rtcp, 0x7f000001, (cfgb & 2) ? 40000 : 40001);
	c->remote_known = true;
	c->rtcp_mux = (cfgb & 2) != 0;
	c->rtp_symmetric = (cfgb & 4) != 0;
	c->te_pt = (cfgb & 8) ? 101 : -1;
	c->cn_pt = 13;
	c->pt = 0;
	c->codec = OM_MEDIA_PCMU;
	c->ptime_ms = 20;
	c->srtp = (cfgb & 1) != 0;
	struct om_srtp *tx = NULL;
	if (c->srtp) {
		enum om_srtp_suite su = suites[(cfgb >> 5) % 5];
		struct om_srtp_policy p = { .suite = su,
			                    .dir = OM_SRTP_RECV,
			                    .key = key,
			                    .key_len = om_srtp_suite_key_len(su),
			                    .mki = mki,
			                    .mki_len = mk,
			                    .max_ssrcs = 4 };
		if (om_srtp_new(&p, &s->srx))
			abort();
		p.dir = OM_SRTP_SEND;
		p.max_ssrcs = 64;
		if (om_srtp_new(&p, &tx))
			abort();
	}
	(void)om_media_dtmf_init(s);
	int recording = 0;
	if (cfgb & 0x10) {
		struct recorder *r = om_calloc(1, sizeof(*r));
		struct spool_rec *sr = om_calloc(1, sizeof(*sr));
		if (!r || !sr)
			abort();
		sr->fd = -1; /* never opened: the writer discards, but still runs */
		sr->stopped = om_calloc(1, sizeof(*sr->stopped));
		sr->close_msg = om_media_wmsg_new(W_CLOSE, 0);
		r->chunk = om_media_wmsg_new(W_DATA, MS_CHUNK_SAMPLES);
		if (!sr->stopped || !sr->close_msg || !r->chunk)
			abort();
		sr->stopped->ev.type = OM_MEDIA_EV_RECORD_STOPPED;
		sr->close_msg->rec = sr;
		r->chunk->rec = sr;
		r->sr = sr;
		r->sp = sp;
		r->queue_max = SIZE_MAX;
		r->o.silence_dbov = -45;
		r->o.silence_timeout_ms = 1000;
		r->max_samples = 8000 * 60;
		r->silence_rms2 = 184.0 * 184.0;
		om_media_rec_start(s, r);
		recording = 1;
	}
	uint8_t buf[OM_RTP_MAX_PACKET + 64];
	uint64_t top = 0;
	struct sockaddr_in from;
	while (size >= 3) {
		uint8_t fl = data[0];
		size_t n = (size_t)(data[1] << 8 | data[2]);
		data += 3;
		size -= 3;
		if (n > size)
			n = size;
		if (n > OM_RTP_MAX_PACKET)
			n = OM_RTP_MAX_PACKET;
		memcpy(buf, data, n);
		data += n;
		size -= n;
		size_t len = n;
		if ((fl & 8) && tx) {
			int e = (fl & 16) ? om_srtp_protect_rtcp(tx, buf, &len, sizeof(buf))
			                  : om_srtp_protect(tx, buf, &len, sizeof(buf));
			if (e)
				len = n;
		}
		static const uint16_t ports[4] = { 40000, 40010, 40000, 40020 };
		addr(&from, (fl & 3) == 2 ? 0x7f000002 : 0x7f000001, ports[fl & 3]);
		if ((fl & 4) && (fl & 3) == 0)
			from.sin_port = htons(40001);
		uv_update_time(&thread.loop); /* om_media_now reads the loop's time */
		if (fl & 4)
			om_media_rx_rtcp(s, buf, len, (const struct sockaddr *)&from);
		else
			om_media_rx_rtp(s, buf, len, (const struct sockaddr *)&from);
		if (fl & 32) {
			int64_t now = om_media_now(&thread);
			om_media_dtmf_tick(s, now);
			om_media_rx_lost(s);
			if (s->rec)
				om_media_rec_tick(s, now);
		}
		if (s->rec) {
			if (s->rec->top < top)
				abort(); /* the timeline went backwards */
			top = s->rec->top;
		}
	}
	struct om_media_stats st;
	om_media_ctrs_read(&s->c, &st);
	if (st.rtp_in > st.bytes_in + 1000000)
		abort();
	if (s->rec)
		om_media_rec_stop(s);
	om_media_dtmf_free(s);
	om_srtp_free(s->srx);
	om_srtp_free(tx);
	drain(recording);
	om_free(s);
	return 0;
}
