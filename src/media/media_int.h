/* media_int.h — inside the media engine: the session, the media thread,
 * the recorder, the player, the spool writer and the messages between
 * them. Who touches what:
 *
 *   control thread   engine.c: the engine, ports, the session's control
 *                    part (struct om_media_session, fields under "control")
 *   media thread     mthread.c, rx.c, tx.c, rec.c, dtmf.c: the session's
 *                    media part (struct msess) after CMD_ADD, until CLOSED
 *   spool writer     spool.c: struct spool_rec and the files
 *
 * Data crosses only through the om_mq queues (release/acquire), plus the
 * per-session counters, which the media thread writes with relaxed atomic
 * stores and the control thread reads with relaxed loads. */
#ifndef OM_MEDIA_MEDIA_INT_H
#define OM_MEDIA_MEDIA_INT_H

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#define SPANDSP_EXPOSE_INTERNAL_STRUCTURES
#include <spandsp.h>

#include "media/media.h"
#include "media/mq.h"
#include "media/rtp.h"
#include "media/srtp.h"

#define MS_RATE          8    /* samples per ms (8 kHz) */
#define MS_TICK_MS       50   /* housekeeping tick of a media thread */
#define MS_REORDER_MS    500  /* a late packet still lands in its place */
#define MS_CHUNK_SAMPLES 8192 /* staging of recorded audio (1.024 s) */
#define MS_JUMP_SLACK_MS 500  /* timestamps may run ahead of wall clock this much */
#define MS_RTCP_MS       5000 /* RTCP report interval (RFC 3550 §6.2, ± 50 %) */
#define MS_SRTP_EV_MS    1000 /* SRTP_FAIL at most this often per session */
#define MS_DTMF_DEDUP_MS 1000 /* the same digit by another way within: a duplicate */
#define MS_MAX_PLAY      64
#define MS_MAX_FRAME     480 /* samples: 60 ms */
#define MS_RX_BATCH      8   /* datagrams one recvmmsg takes from a socket */
#define MS_EPOLL_BATCH   256 /* socket events taken per loop turn */

/* ---- counters ---------------------------------------------------------- */

enum ctr {
	C_RTP_IN,
	C_RTP_OUT,
	C_RTCP_IN,
	C_RTCP_OUT,
	C_BYTES_IN,
	C_LOST,
	C_LATE,
	C_DUP,
	C_STRANGERS,
	C_MALFORMED,
	C_SRTP_AUTH,
	C_SRTP_REPLAY,
	C_SEND_ERR,
	C_SSRC_CHANGES,
	C_COUNT
};

/* Written by one thread only (plain load + store, relaxed), read by any. */
struct ctrs {
	_Atomic uint64_t v[C_COUNT];
};

static inline void ctr_add(struct ctrs *c, enum ctr k, uint64_t n)
{
	atomic_store_explicit(&c->v[k], atomic_load_explicit(&c->v[k], memory_order_relaxed) + n,
	                      memory_order_relaxed);
}

static inline void ctr_set(struct ctrs *c, enum ctr k, uint64_t v)
{
	atomic_store_explicit(&c->v[k], v, memory_order_relaxed);
}

void om_media_ctrs_read(const struct ctrs *c, struct om_media_stats *out);

/* ---- events back to the control thread ---------------------------------- */

enum evkind { EVK_SESSION = 0, EVK_THREAD_DONE, EVK_WRITER_DONE };

struct evnode {
	struct om_mq_node node;
	enum evkind kind;
	struct om_media_event ev;
	void *thread; /* EVK_THREAD_DONE */
};

/* ---- play list ----------------------------------------------------------- */

struct play_item {
	struct om_media_audio *audio; /* NULL: silence or tone */
	uint32_t samples;             /* length in samples */
	uint16_t freq;                /* tone, 0 = silence */
};

struct playlist {
	uint32_t token;
	size_t n;
	struct evnode *done; /* PLAY_DONE, preallocated */
	struct play_item items[];
};

void om_media_playlist_free(struct playlist *pl);

/* ---- spool writer -------------------------------------------------------- */

enum wtype { W_OPEN = 1, W_DATA, W_CLOSE, W_FORWARD, W_QUIT };

struct spool_rec;

struct wmsg {
	struct om_mq_node node;
	enum wtype type;
	struct spool_rec *rec;
	struct evnode *fwd; /* W_FORWARD */
	uint64_t pos;       /* W_DATA: first sample's place in the file */
	uint32_t n, cap;    /* samples held / room */
	int16_t *pcm;       /* W_DATA: cap samples, allocated after the struct */
};

struct spool_rec {
	char *json_path, *raw_path;
	char *meta;
	size_t meta_len;
	int fd;
	uint64_t size; /* bytes: highest offset written */
	int error;
	atomic_int failed; /* set by the writer; the media thread stops */
	int64_t last_sync;
	bool dirty;
	struct spool_rec *next; /* the writer's open list */
	struct evnode *stopped; /* RECORD_STOPPED, preallocated */
	struct wmsg *open_msg, *close_msg;
	/* Filled by the media thread before W_CLOSE. */
	uint64_t audio_ms, voiced_ms;
	int media_error; /* ENOMEM: the media thread could not stage audio */
};

struct spool;

int om_media_spool_new(const char *dir, unsigned sync_ms, om_media_write_h wh, void *warg,
                       struct om_mq *events, uv_async_t *events_async, struct spool **out);
void om_media_spool_send(struct spool *sp, struct wmsg *m);
/* Audio bytes queued to the writer and not written yet (any thread). */
size_t om_media_spool_queued(struct spool *sp);
/* Joins the writer thread (after it sent EVK_WRITER_DONE) and frees. */
void om_media_spool_free(struct spool *sp);

/* ---- recorder (media thread) --------------------------------------------- */

struct recorder {
	struct spool_rec *sr;
	struct spool *sp;
	size_t queue_max; /* of the engine */
	struct om_media_record_opts o;
	uint64_t max_samples; /* 0: none */
	double silence_rms2;  /* mean square at the threshold */
	/* The timeline: [flushed, top) is staged in `chunk` (from its pos). */
	uint64_t flushed, top;
	bool seg;
	uint32_t ssrc, last_ts;
	uint64_t last_pos;
	int64_t last_arrival;
	struct wmsg *chunk;
	int64_t chunk_t0; /* when its first sample was staged */
	uint64_t voiced_samples;
	int64_t last_voice_ms;
	bool silence_reported, limit_hit, nomem;
	bool wait_play; /* after_play: no audio until the playlist ends */
	int fail;       /* ENOMEM or ENOBUFS: the recording must stop */
};

/* ---- DTMF (media thread) ------------------------------------------------- */

struct dtmf_state {
	/* RFC 4733: the event in progress (by its RTP timestamp). */
	bool ev_active, ev_reported;
	uint32_t ev_ts;
	uint8_t ev_code;
	uint16_t ev_duration;
	int64_t ev_last_ms;
	uint32_t ev_ssrc;
	/* Recent digits per source for the cross-source de-duplication. */
	struct {
		char digit;
		uint8_t source;
		int64_t at_ms;
		bool matched;
	} recent[16];
	unsigned nrecent;
	/* Recently reported RFC 4733 events (SSRC, timestamp): a late end
	 * packet of one of them is not a new key press. */
	struct {
		uint32_t ssrc, ts;
	} done[4];
	unsigned ndone;
	/* In-band (spandsp), only when no telephone-event was negotiated. */
	bool inband;
	dtmf_rx_state_t rx;
	uint64_t samples; /* fed to the detector */
	uint64_t inband_start;
	char inband_digit;
	int64_t now; /* for the detector's callback */
};

/* ---- session ------------------------------------------------------------- */

/* What the media thread needs of om_media_params (no keys). */
struct sess_cfg {
	struct sockaddr_storage remote; /* RTP */
	struct sockaddr_storage remote_rtcp;
	bool remote_known;
	bool rtcp_mux;
	enum om_media_codec codec;
	uint8_t pt;
	int te_pt, cn_pt;
	unsigned ptime_ms;
	enum om_media_dir dir;
	bool srtp;
	bool rtp_symmetric;
	/* MODIFY: new contexts (NULL: keep the current ones). */
	struct om_srtp *srx, *stx;
};

/* ---- commands to a media thread ------------------------------------------ */

enum ctype {
	CMD_ADD = 1,
	CMD_MODIFY,
	CMD_PLAY,
	CMD_PLAY_STOP,
	CMD_REC_START,
	CMD_REC_STOP,
	CMD_DTMF,
	CMD_FREE,
	CMD_QUIT
};

struct om_media_session;
struct recorder;

struct cmd {
	struct om_mq_node node;
	enum ctype type;
	struct om_media_session *s;
	union {
		struct sess_cfg cfg;  /* MODIFY */
		struct playlist *pl;  /* PLAY */
		struct recorder *rec; /* REC_START */
		struct {
			char digit;
			unsigned ms;
			struct evnode *ev; /* its DTMF event, allocated by the caller */
		} dtmf;
	} u;
};

struct mthread;

/* A socket of a session as the media thread's epoll set knows it. A read
 * that filled a whole batch leaves it on the thread's `again` list (at most
 * once), to be read again on the next turn: edge-triggered epoll will not
 * report data that was already there. */
struct msock {
	struct om_media_session *s;
	struct msock *next; /* on the `again` list */
	bool rtcp, queued;
};

struct om_media_session {
	/* ---- control thread */
	struct om_media_engine *e;
	struct mthread *t;
	void *user;
	uint16_t port;
	bool freed, recording, closed_done;
	struct om_media_session *prev, *next;
	char call_id[128];
	struct keyslot *keys;   /* master keys, in MADV_DONTDUMP memory */
	struct evnode closed;   /* CLOSED, sent last */
	struct wmsg closed_fwd; /* carries `closed` through the writer */
	struct cmd free_cmd;
	int fd_rtp, fd_rtcp; /* bound here; read and closed by the media thread */
	int family;
	/* ---- shared */
	struct ctrs c;
	/* ---- media thread */
	struct sess_cfg cfg;
	struct om_srtp *srx, *stx;
	uv_timer_t txt;
	int handles_open;
	bool txt_init, closing, tx_timer_on;
	bool moved_rtp, moved_rtcp;
	struct om_media_session *mprev, *mnext; /* the thread's list */
	struct msock sock[2];                   /* RTP, RTCP: in the thread's epoll set */
	int64_t last_rx_ms;
	bool timed_out;
	/* receive statistics (RFC 3550 A.1, A.3, A.8) for the current SSRC */
	bool rx_seen;
	uint32_t rx_ssrc;
	uint16_t rx_max_seq;
	uint32_t rx_cycles, rx_base_seq, rx_received, rx_expected_prior, rx_received_prior;
	uint32_t rx_jitter; /* × 16 */
	int64_t rx_transit;
	uint32_t rx_lsr;
	int64_t rx_lsr_at;
	/* SRTP failures and strangers not yet reported */
	uint64_t srtp_auth_new, srtp_replay_new;
	int64_t srtp_ev_at;
	uint64_t strangers_new;
	int64_t strangers_ev_at;
	struct sockaddr_storage stranger;
	uint64_t lost_before; /* of earlier SSRCs */
	uint64_t rx_win[2];   /* plain RTP duplicates: seen bits below rx_top */
	int64_t rx_top;       /* extended highest sequence number */
	/* sender */
	uint32_t tx_ssrc, tx_ts;
	uint16_t tx_seq;
	uint32_t tx_packets, tx_octets;
	bool tx_talking;
	int64_t tx_last_ms;   /* when the last frame was due */
	uint64_t tx_start_ms; /* start of the current run */
	uint64_t tx_frames;   /* frames of the current run */
	struct playlist *pl;
	size_t pl_item;
	uint32_t pl_off;
	uint32_t tone_phase;
	int64_t next_rtcp_ms;
	char cname[32];
	/* DTMF and recording */
	struct dtmf_state dtmf;
	struct recorder *rec;
};

/* ---- media thread ---------------------------------------------------------- */

struct mthread {
	struct om_media_engine *e;
	unsigned idx;
	uv_thread_t tid;
	bool started;
	uv_loop_t loop;
	uv_async_t async;
	uv_timer_t tick;
	struct om_mq cmds;
	int epfd;          /* edge-triggered set of every socket of the thread */
	uv_poll_t ep_poll; /* the loop watches epfd */
	uv_idle_t idle;    /* runs the next turn at once while `again` is not empty */
	struct msock *again, **again_tail; /* sockets that may hold more, oldest first */
	struct om_media_session *sessions; /* media side list */
	unsigned nsessions;                /* control side count */
	bool quitting;
	int handles_open;
	uint8_t rxbuf[MS_RX_BATCH][OM_RTP_MAX_PACKET + 64] __attribute__((aligned(16)));
	struct mmsghdr mh[MS_RX_BATCH];
	struct iovec iov[MS_RX_BATCH];
	struct sockaddr_storage from[MS_RX_BATCH];
	int16_t pcm[OM_RTP_MAX_PACKET];
	struct ctrs c; /* thread totals (of live sessions; added at close) */
	struct evnode done;
	struct cmd quit_cmd;
};

/* ---- engine (control thread) --------------------------------------------- */

struct om_media_engine {
	uv_loop_t *loop;
	uv_async_t *async;
	struct om_mq events;
	om_media_event_h h;
	void *arg;
	struct mthread *threads;
	unsigned nthreads, threads_done;
	struct spool *sp;
	uint16_t port_min;
	unsigned npairs, cursor, nfree;
	uint8_t *pair_used;
	enum om_srtp_backend backend;
	unsigned rtp_timeout_ms, flush_ms, sync_ms;
	size_t queue_max;
	char *spool_dir;
	struct om_media_prompts *prompts;
	struct om_media_session *sessions;
	uint64_t nsessions, sessions_total, recordings;
	struct om_media_stats closed_totals;
	bool closing;
	om_media_done_h done_h;
	void *done_arg;
	struct keyarena *keys;
	struct wmsg quit_msg;
};

/* ---- functions between the files ----------------------------------------- */

/* engine.c */
struct wmsg *om_media_wmsg_new(enum wtype type, uint32_t cap);
void om_media_post(struct mthread *t, struct cmd *c);
void om_media_emit(struct om_media_engine *e, struct evnode *n);

/* mthread.c */
int om_media_thread_start(struct mthread *t);
void om_media_sess_close(struct om_media_session *s);
int om_media_send_rtp(struct om_media_session *s, uint8_t *pkt, size_t len, size_t cap);
int om_media_sendto(struct om_media_session *s, bool rtcp, const uint8_t *p, size_t len);
int64_t om_media_now(struct mthread *t);

/* rx.c */
void om_media_rx_rtp(struct om_media_session *s, uint8_t *p, size_t n, const struct sockaddr *from);
void om_media_rx_rtcp(struct om_media_session *s, uint8_t *p, size_t n,
                      const struct sockaddr *from);
/* Updates the `lost` counter (RFC 3550 A.3) from the sequence numbers. */
void om_media_rx_lost(struct om_media_session *s);

/* tx.c */
void om_media_tx_play(struct om_media_session *s, struct playlist *pl);
void om_media_tx_stop(struct om_media_session *s, bool stopped);
void om_media_tx_rtcp(struct om_media_session *s, int64_t now, bool bye);

/* rec.c */
void om_media_rec_start(struct om_media_session *s, struct recorder *r);
void om_media_rec_audio(struct om_media_session *s, uint32_t ssrc, uint32_t ts, const int16_t *pcm,
                        size_t n, int64_t now);
void om_media_rec_tick(struct om_media_session *s, int64_t now);
void om_media_rec_stop(struct om_media_session *s);
void om_media_rec_free_unstarted(struct recorder *r);

/* dtmf.c */
int om_media_dtmf_init(struct om_media_session *s);
void om_media_dtmf_free(struct om_media_session *s);
void om_media_dtmf_event(struct om_media_session *s, uint32_t ssrc, uint32_t ts,
                         const struct om_rtp_event *ev, int64_t now);
void om_media_dtmf_audio(struct om_media_session *s, const int16_t *pcm, size_t n, int64_t now);
/* A digit from SIP INFO; `ev` (allocated on the control thread, so an
 * out-of-memory is the caller's ENOMEM and never a digit lost here) is
 * sent or freed. */
void om_media_dtmf_info(struct om_media_session *s, char digit, unsigned ms, int64_t now,
                        struct evnode *ev);
void om_media_dtmf_tick(struct om_media_session *s, int64_t now);

/* audio.c: G.711 (spandsp's functions, as tables) */
extern int16_t om_media_ulaw_dec[256], om_media_alaw_dec[256];
void om_media_g711_init(void);
void om_media_g711_encode(enum om_media_codec c, const int16_t *pcm, size_t n, uint8_t *out);
static inline void om_media_g711_decode(enum om_media_codec c, const uint8_t *in, size_t n,
                                        int16_t *pcm)
{
	const int16_t *t = c == OM_MEDIA_PCMA ? om_media_alaw_dec : om_media_ulaw_dec;
	for (size_t i = 0; i < n; i++)
		pcm[i] = t[in[i]];
}
/* Sum of squares of n samples. */
double om_media_energy(const int16_t *pcm, size_t n);

#endif
