/* rtp.h — the gateway side's RTP/SRTP endpoint for tests, the load
 * generator and `openum test-connectivity`: builds G.711 and RFC 4733
 * packets (RFC 3550, RFC 3551, RFC 4733), protects them with SRTP through
 * openum's transform (media/srtp.h, any suite, with or without an MKI),
 * sends them from a chosen address, and receives and decodes a stream.
 * Blocking sockets: this is a test tool, not the server's media path. */
#ifndef OM_TESTCALL_RTP_H
#define OM_TESTCALL_RTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "media/srtp.h"

#define OM_TC_PKT_MAX 1500

struct om_tc_srtp {
	bool on;
	enum om_srtp_suite suite;
	uint8_t key[46];
	size_t key_len;
	uint8_t mki[4];
	size_t mki_len;
	enum om_srtp_backend backend;
};

/* The sending side of one stream. */
struct om_tc_tx {
	uint8_t pt;     /* audio payload type */
	bool alaw;      /* PCMA (else PCMU) */
	int te_pt;      /* telephone-event pt, -1 none */
	unsigned ptime; /* ms */
	uint32_t ssrc, ts;
	uint16_t seq;
	bool talkspurt;       /* next audio packet carries the marker */
	struct om_srtp *srtp; /* SEND session (RTP and RTCP) */
	uint32_t packets, octets;
};

/* Sets up SRTP (if cfg->on) for a SEND stream. 0 or an errno. */
int om_tc_tx_init(struct om_tc_tx *tx, const struct om_tc_srtp *cfg);
void om_tc_tx_free(struct om_tc_tx *tx);
/* One audio packet from n samples (encoded G.711) or from n payload bytes
 * as they are (`raw`); seq and ts advance. Returns the packet length. */
size_t om_tc_tx_audio(struct om_tc_tx *tx, const int16_t *pcm, const uint8_t *raw, size_t n,
                      uint8_t *out);
/* One RFC 4733 packet for `event` (marker on the first, ts = start). */
size_t om_tc_tx_event(struct om_tc_tx *tx, uint8_t event, uint32_t start_ts, uint16_t duration,
                      bool end, bool first, uint8_t *out);
/* One comfort-noise packet (RFC 3389 §3, payload type 13: the noise
 * level in -dBov, no spectrum) at the current timestamp, which does not
 * advance: the caller moves tx->ts with the clock. */
size_t om_tc_tx_cn(struct om_tc_tx *tx, uint8_t level, uint8_t *out);
/* An RTCP SR + SDES (SRTCP on SRTP). */
size_t om_tc_tx_rtcp(struct om_tc_tx *tx, uint8_t *out);

/* The receiving side: a decoded timeline of one stream. */
struct om_tc_rx {
	struct om_srtp *srtp; /* RECV session, NULL for plain RTP */
	int te_pt;
	uint64_t packets, rtcp, srtp_fail, malformed, markers, events;
	bool have;
	uint32_t ssrc, first_ts, last_ts;
	uint8_t pt;
	int16_t *pcm; /* placed by timestamp from first_ts */
	size_t samples, cap;
	char digits[64];
	uint32_t last_event_ts;
	bool event_done;
};

int om_tc_rx_init(struct om_tc_rx *rx, const struct om_tc_srtp *cfg, int te_pt);
void om_tc_rx_free(struct om_tc_rx *rx);
/* Handles one datagram (RTP or RTCP). */
void om_tc_rx_packet(struct om_tc_rx *rx, uint8_t *p, size_t n);

/* Helpers for the command line. */
int om_tc_parse_addr(const char *s, struct sockaddr_storage *out, socklen_t *len);
int om_tc_b64_decode(const char *s, uint8_t *out, size_t cap, size_t *len);
int om_tc_hex_decode(const char *s, uint8_t *out, size_t cap, size_t *len);

#endif
