/* media.h — the media engine as the control thread sees it: RTP/SRTP
 * sessions on media threads, prompt playback, DTMF, and the recorder that
 * writes a call's audio to the spool.
 *
 *   RFC 3550  RTP and RTCP (receiving placed by timestamp, SR/RR every ~5 s)
 *   RFC 3551  G.711 PCMU (pt 0) and PCMA (pt 8); dynamic payload types too
 *   RFC 3711  SRTP/SRTCP (keys and MKI from SDES, RFC 4568), media/srtp.h
 *   RFC 4733  telephone-event (DTMF named events)
 *   RFC 3389  comfort noise: silence, and a sign of life
 *   RFC 5761  RTP and RTCP on one port (rtcp-mux)
 *
 * Threads. The control thread (the libuv loop of `openum serve`) owns the
 * engine and one om_media_session per call, and calls everything in this
 * header; nothing here blocks (no disk, no DNS, no waiting on a thread).
 * Each media thread runs its own libuv loop and owns the sockets and the
 * packet state of the sessions pinned to it; the control thread reaches it
 * through a lock-free queue + uv_async, and events come back the same way
 * and are delivered by the control loop to the engine's event callback. A
 * spool writer thread appends recorded audio to disk. The packet path
 * takes no lock shared with the control thread and never touches SIP or
 * the directory: this module knows addresses, payload types and keys only.
 *
 * Errors are positive errno values; out-parameters are set only on
 * success. Keys handed in are copied; the engine cleanses its copies
 * (OPENSSL_cleanse) when the session ends and keeps them in memory marked
 * MADV_DONTDUMP, so they never reach a core dump, a log line or an event. */
#ifndef OM_MEDIA_MEDIA_H
#define OM_MEDIA_MEDIA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <uv.h>

#include "media/srtp.h"

/* ---------------------------------------------------------------- audio */

/* Immutable 8 kHz mono signed 16-bit PCM, reference-counted (atomic), so
 * the control thread and every media thread can share one decoded prompt
 * or greeting read-only. */
struct om_media_audio;

/* Copies n samples (8 kHz mono). 0, ENOMEM, EINVAL (n == 0 or n > 2^28). */
int om_media_audio_new(const int16_t *pcm, size_t n, struct om_media_audio **out);
/* Reads an audio file with libsndfile (any WAV/FLAC/OGG/MP3 it reads),
 * mixes it down to mono and converts it to 8 kHz with libsamplerate when
 * the rate differs. Blocking file I/O: call it at start, on reload, or off
 * the live path (never on a media thread). At most max_ms of audio (0: 10
 * minutes). 0; ENOENT; EINVAL (not audio, empty) or EFBIG (too long), with
 * a reason in why; ENOMEM. */
int om_media_audio_load(const char *path, unsigned max_ms, struct om_media_audio **out, char *why,
                        size_t whylen);
/* Takes a reference; returns a. */
struct om_media_audio *om_media_audio_ref(struct om_media_audio *a);
/* Drops a reference; the last one frees. NULL is ignored. */
void om_media_audio_unref(struct om_media_audio *a);
/* Samples (8 kHz) and a read-only view of them. */
size_t om_media_audio_samples(const struct om_media_audio *a);
const int16_t *om_media_audio_pcm(const struct om_media_audio *a);

/* ---------------------------------------------------------------- prompts */

/* A set of named prompts (8 kHz mono), read-only once built, shared by
 * every media thread. Names are the built-in ones (om_media_prompt_names):
 * "beep", "digit-0" … "digit-9", "leave-message", "goodbye", … */
struct om_media_prompts;

/* Called once per prompt that an administrator's file replaced, or that
 * could not be read (then the built-in one stays): path, and NULL or the
 * reason. For the log/events of the caller. */
typedef void (*om_media_prompt_h)(const char *name, const char *path, const char *error, void *arg);

/* The built-in prompts (embedded in the binary), each replaced by an
 * administrator's file DIR/NAME.wav, .flac or .ogg when one exists (dir may
 * be NULL: built-ins only), converted with om_media_audio_load. Blocking
 * file I/O: at start or reload. 0 or ENOMEM (a bad file is reported
 * through h and does not fail the load). */
int om_media_prompts_load(const char *dir, om_media_prompt_h h, void *arg,
                          struct om_media_prompts **out);
struct om_media_prompts *om_media_prompts_ref(struct om_media_prompts *p);
void om_media_prompts_unref(struct om_media_prompts *p);
/* The prompt of that name (a borrowed reference, valid while the set is),
 * or NULL. */
struct om_media_audio *om_media_prompts_get(const struct om_media_prompts *p, const char *name);
/* NULL-terminated list of the built-in prompt names. */
const char *const *om_media_prompt_names(void);

/* ---------------------------------------------------------------- engine */

struct om_media_engine;
struct om_media_session;

/* Spool write hook (tests: a disk that fails or fills). Called on the spool
 * writer thread instead of pwrite(2) (offset in bytes); returns bytes
 * written or -1 with errno set. */
typedef ssize_t (*om_media_write_h)(int fd, const void *buf, size_t len, off_t offset, void *arg);

struct om_media_engine_cfg {
	unsigned threads;  /* media threads; 0 = one per online CPU */
	uint16_t port_min; /* rtp_ports: RTP on even ports, RTCP on the next */
	uint16_t port_max; /* inclusive */
	enum om_srtp_backend srtp_backend;
	unsigned rtp_timeout_ms; /* no RTP/RTCP/CN for this long: TIMEOUT; 0 = 30000 */
	const char *spool_dir;   /* existing folder (0700) for <id>.json/.raw; copied */
	unsigned spool_flush_ms; /* audio reaches write(2) at least this often; 0 = 250 */
	unsigned spool_sync_ms;  /* and fdatasync(2) at least this often; 0 = 5000 */
	/* Prompts: a set to share (a reference is taken), or NULL: the engine
	 * loads the built-ins, each replaced by prompts_dir/NAME.wav|flac|ogg
	 * when present (DATA/prompts; NULL: none). A file that cannot be used
	 * raises event 1144 and the built-in one plays. Loading reads files:
	 * om_media_engine_new is called at start, not on a live path. */
	struct om_media_prompts *prompts;
	const char *prompts_dir;
	om_media_write_h write_h; /* NULL: pwrite(2) */
	void *write_arg;
	/* Recorded audio waiting for the disk, at most (bytes; 0 = 256 MiB).
	 * A disk slower than the calls fill it would otherwise grow memory
	 * without bound: past it, a recording that hands over more audio stops
	 * with ENOBUFS (RECORD_STOPPED, event 1141), what was written stays,
	 * and other calls go on. */
	size_t spool_queue_max;
};

enum om_media_event_type {
	OM_MEDIA_EV_DTMF = 1,       /* a digit, once, whichever way it came */
	OM_MEDIA_EV_PLAY_DONE,      /* the items of one om_media_session_play ended */
	OM_MEDIA_EV_RECORD_SILENCE, /* no voice for silence_timeout_ms (recording goes on) */
	OM_MEDIA_EV_RECORD_LIMIT,   /* max_ms recorded: the recording stopped itself */
	OM_MEDIA_EV_RECORD_STOPPED, /* final: after stop, limit, session end or error */
	OM_MEDIA_EV_TIMEOUT,        /* nothing received for rtp_timeout_ms (once; event 1142) */
	OM_MEDIA_EV_SRTP_FAIL,      /* SRTP/SRTCP auth or replay failures since the last
	                             * (≤ 1/s; event 1140, rate-limited per call) */
	OM_MEDIA_EV_CLOSED,         /* last event of a session: final statistics */
	OM_MEDIA_EV_STRANGERS,      /* packets from elsewhere dropped since the last (≤ 1/s) */
};

enum om_media_dtmf_source {
	OM_MEDIA_DTMF_RFC4733 = 1,
	OM_MEDIA_DTMF_INFO,   /* handed in with om_media_session_dtmf_in */
	OM_MEDIA_DTMF_INBAND, /* detected in the audio (spandsp) */
};

/* Counters of one session (CLOSED) or of the whole engine. */
struct om_media_stats {
	uint64_t rtp_in;  /* RTP packets accepted (after SRTP) */
	uint64_t rtp_out; /* RTP packets sent */
	uint64_t rtcp_in, rtcp_out;
	uint64_t bytes_in;     /* UDP payload bytes received, accepted or not */
	uint64_t lost;         /* sequence numbers never received (RFC 3550 A.3) */
	uint64_t late;         /* arrived after their place was written to the spool */
	uint64_t duplicates;   /* plain RTP seen twice (SRTP ones are replays) */
	uint64_t strangers;    /* from an address/port the SDP does not name */
	uint64_t malformed;    /* not RTP/RTCP, unknown payload type, bad RFC 4733 */
	uint64_t srtp_auth;    /* SRTP/SRTCP tag or MKI did not verify */
	uint64_t srtp_replay;  /* SRTP/SRTCP index seen before or too old */
	uint64_t send_errors;  /* sendto failed (EAGAIN: dropped) */
	uint64_t ssrc_changes; /* new segments: SSRC change or timestamp jump */
};

struct om_media_event {
	enum om_media_event_type type;
	struct om_media_session *session;
	void *user; /* the session's user pointer */
	union {
		struct {
			char digit; /* 0-9 * # A-D */
			unsigned duration_ms;
			enum om_media_dtmf_source source;
		} dtmf;
		struct {
			uint32_t token;
			bool stopped; /* ended by play_stop / a new play / session end */
		} play;
		struct {
			uint64_t bytes;     /* RECORD_STOPPED: bytes of .raw on disk */
			uint64_t audio_ms;  /* length of the recording */
			uint64_t voiced_ms; /* of it, above the silence threshold */
			int error;          /* RECORD_STOPPED: 0 or errno (ENOSPC, EIO…) */
		} record;
		struct {
			uint64_t auth, replay; /* since the previous SRTP_FAIL */
		} srtp;
		struct {
			uint64_t count; /* since the previous STRANGERS */
			char from[64];  /* the last one: "ADDRESS:PORT" */
		} strangers;
		struct om_media_stats stats; /* CLOSED */
	} u;
};

/* Delivered on the control loop. The event and what it points to live for
 * the call only. */
typedef void (*om_media_event_h)(const struct om_media_event *ev, void *arg);
typedef void (*om_media_done_h)(void *arg);

/* Starts the media threads and the spool writer thread; the port range is
 * checked (even start, at least 2 ports). `control` is the control loop:
 * events are delivered there. 0; EINVAL (bad cfg); ENOMEM; or the errno of
 * a thread/handle that could not start. */
int om_media_engine_new(uv_loop_t *control, const struct om_media_engine_cfg *cfg,
                        om_media_event_h h, void *arg, struct om_media_engine **out);
/* Ends every session (each gets RECORD_STOPPED if it recorded, then
 * CLOSED), flushes and syncs every recording, stops the threads, then
 * calls done(arg) on the control loop and frees the engine. Sessions must
 * not be used once their CLOSED was delivered. Call once. */
void om_media_engine_close(struct om_media_engine *e, om_media_done_h done, void *arg);

struct om_media_engine_stats {
	unsigned threads;
	uint64_t sessions; /* open now */
	uint64_t sessions_total;
	uint64_t recordings;          /* open now */
	uint64_t ports_free;          /* RTP ports (pairs) left in rtp_ports */
	struct om_media_stats totals; /* of closed sessions plus live counters */
};
/* A snapshot for `openum status` and metrics (relaxed reads of counters
 * the media threads keep; no lock). */
void om_media_engine_stats(struct om_media_engine *e, struct om_media_engine_stats *out);

/* ---------------------------------------------------------------- session */

enum om_media_codec { OM_MEDIA_PCMU = 0, OM_MEDIA_PCMA = 8 };

/* Our direction, as in SDP (RFC 3264 §5.1): SENDONLY = we send only. */
enum om_media_dir {
	OM_MEDIA_SENDRECV = 0,
	OM_MEDIA_SENDONLY,
	OM_MEDIA_RECVONLY,
	OM_MEDIA_INACTIVE,
};

#define OM_MEDIA_KEY_MAX 46 /* AES-256 key + salt */
#define OM_MEDIA_MKI_MAX 4  /* octets */

/* One SDES master key (RFC 4568 §6.1) for one direction. From an SDP
 * result: key = keysalt, mki = om_sdp_mki_bytes() (the MKI value as
 * mki_len big-endian octets), lifetime = the line's lifetime (0 when the
 * line gave none). */
struct om_media_key {
	uint8_t key[OM_MEDIA_KEY_MAX]; /* master key || master salt */
	size_t key_len;                /* om_srtp_suite_key_len(suite) */
	uint8_t mki[OM_MEDIA_MKI_MAX]; /* MKI carried in every packet (RFC 3711 §3.1) */
	size_t mki_len;                /* 0: no MKI; else 1..4 */
	uint64_t lifetime;             /* packets; 0 = the suite's maximum (2^48/2^31) */
};

struct om_media_params {
	/* Local address to bind (the port is ignored; the engine picks one
	 * from rtp_ports): media_address, or the address the call came in on.
	 * Fixed at om_media_session_new (modify keeps it). */
	struct sockaddr_storage local;
	/* Where the peer wants RTP (c= and m= port). AF_UNSPEC or port 0:
	 * not known yet (a delayed offer): nothing is sent or accepted. */
	struct sockaddr_storage remote;
	uint16_t remote_rtcp_port; /* a=rtcp (RFC 3605); 0: RTP port + 1 */
	bool rtcp_mux;             /* a=rtcp-mux agreed: RTCP on the RTP port */
	enum om_media_codec codec;
	uint8_t pt;        /* payload type of the codec (0/8 or a dynamic one) */
	int te_pt;         /* telephone-event pt, -1: none (in-band DTMF detection) */
	int cn_pt;         /* comfort noise pt, usually 13; -1: none */
	unsigned ptime_ms; /* packet time we send with; 0 = 20 (10..60) */
	enum om_media_dir dir;
	/* SRTP: the suite agreed (SDES), the peer's key (what we receive) and
	 * ours (what we send). srtp false: plain RTP, keys ignored. */
	bool srtp;
	enum om_srtp_suite suite;
	struct om_media_key recv_key, send_key;
	/* Plain RTP only: the peer's RTP port may move once (NAT), to the port
	 * of the first valid packet from the SDP's IP address (the gateway's
	 * dial plan `rtp_symmetric`). SRTP allows the move always, once, and
	 * only after a packet from the new port authenticated. The IP never
	 * moves. */
	bool rtp_symmetric;
	char call_id[128]; /* for logs and event sources; never keys */
};

/* Allocates the session, binds its RTP socket (and the RTCP one, unless
 * rtcp_mux) on p->local at an even port of rtp_ports — synchronously, so
 * the SDP answer can name *local_port at once — and hands it to the least
 * busy media thread. `user` comes back in every event. 0; EADDRINUSE (the
 * range is exhausted); EINVAL (bad params: codec, ptime, keys, MKI length);
 * EAFNOSUPPORT (local not IPv4/IPv6, or a remote of the other family);
 * ESHUTDOWN (the engine is closing); ENOMEM. The session lives until its
 * CLOSED event after om_media_session_free. */
int om_media_session_new(struct om_media_engine *e, const struct om_media_params *p, void *user,
                         struct om_media_session **out, uint16_t *local_port);

/* re-INVITE/UPDATE: new remote address, direction (hold: sendonly or
 * inactive), codec/pt, telephone-event, ptime and keys. The same keys (and
 * MKI) keep each SRTP context with its ROC and replay window; different
 * ones create new contexts. `local` is ignored. 0, EINVAL, EAFNOSUPPORT
 * (a remote of the other address family than the session's socket), ENOMEM. */
int om_media_session_modify(struct om_media_session *s, const struct om_media_params *p);

enum om_media_play_kind {
	OM_MEDIA_PLAY_PROMPT = 1, /* a prompt of the engine's set, by name */
	OM_MEDIA_PLAY_AUDIO,      /* decoded audio (a greeting): a reference is taken */
	OM_MEDIA_PLAY_SILENCE,    /* ms of silence, sent as silent G.711 frames */
	OM_MEDIA_PLAY_TONE,       /* ms of a sine at freq_hz (-10 dBov) */
	OM_MEDIA_PLAY_DIGITS,     /* digits spoken with the "digit-N" prompts */
};

struct om_media_play {
	enum om_media_play_kind kind;
	const char *name;             /* PROMPT */
	struct om_media_audio *audio; /* AUDIO */
	unsigned ms;                  /* SILENCE, TONE: 1..600000 */
	unsigned freq_hz;             /* TONE: 50..3900 */
	const char *digits;           /* DIGITS: 0-9 only, at most 32 */
};

/* Replaces what is playing (its PLAY_DONE comes with stopped = true) by
 * items[0..n) (n <= 64), played in order at ptime pace, then PLAY_DONE
 * with `token`. Names are resolved now: ENOENT for an unknown prompt,
 * EINVAL for a bad item; nothing is queued then. While the direction does
 * not send (recvonly/inactive) the items are consumed silently on time.
 * ENOMEM. */
int om_media_session_play(struct om_media_session *s, const struct om_media_play *items, size_t n,
                          uint32_t token);
/* Stops playback (PLAY_DONE with stopped = true); nothing playing: no-op. */
void om_media_session_play_stop(struct om_media_session *s);

struct om_media_record_opts {
	int silence_dbov;            /* below this level (dBov, e.g. -45) is silence */
	unsigned silence_timeout_ms; /* RECORD_SILENCE after this much; 0: never */
	unsigned max_ms;             /* RECORD_LIMIT and stop at this length; 0: none */
	/* Takes audio only from the end of what plays when the media thread
	 * gets this command (a beep queued just before, om_media_session_play):
	 * the recording starts the moment its last frame is sent, not when the
	 * caller's loop has handled PLAY_DONE, so words said right after the
	 * beep are kept however busy that loop is. The silence timeout runs
	 * from then. Nothing playing: at once. */
	bool after_play;
};

/* Starts recording what the peer sends: the spool writer first writes
 * SPOOL/<spool_id>.json = meta_json (atomically, 0600), then appends the
 * audio to SPOOL/<spool_id>.raw (0600; signed 16-bit little-endian, 8 kHz,
 * mono; placed by RTP timestamp: a lost packet is a gap of zeros, an SSRC
 * change or timestamp jump starts a new segment after the previous one).
 * Audio reaches write(2) within spool_flush_ms (plus one 50 ms tick; a
 * packet up to 500 ms late is written at its place afterwards) and
 * fdatasync within spool_sync_ms. spool_id: 1..128 characters
 * of [A-Za-z0-9._-], not starting with '.'; meta_json at most 64 KiB.
 * Ends with exactly one RECORD_STOPPED (file errors such as EEXIST or
 * ENOSPC arrive there). 0; EINVAL; EBUSY (already recording); ENOMEM. */
int om_media_session_record_start(struct om_media_session *s, const char *spool_id,
                                  const char *meta_json, const struct om_media_record_opts *o);
/* Stops: what was received is written and synced, then RECORD_STOPPED.
 * Not recording: no-op. */
void om_media_session_record_stop(struct om_media_session *s);

/* A digit from SIP INFO (application/dtmf-relay or application/dtmf)
 * enters the call's one digit stream: reported as a DTMF event unless the
 * same digit already came by RFC 4733 or in-band within the last second
 * (each key press once). digit: 0-9 * # A-D (a-d accepted). 0 or EINVAL. */
int om_media_session_dtmf_in(struct om_media_session *s, char digit, unsigned duration_ms);

/* Ends the session: playback stops, a recording is finished (RECORD_STOPPED),
 * keys are cleansed, sockets closed and the port pair returned; then
 * CLOSED with the final counters. Call once; s must not be used after. */
void om_media_session_free(struct om_media_session *s);

/* Live counters of one session (relaxed reads). */
void om_media_session_stats(const struct om_media_session *s, struct om_media_stats *out);

/* ---------------------------------------------------------------- helpers */

/* The dBov level of n samples: 20·log10(rms / 32768), -100 for silence. */
double om_media_level_dbov(const int16_t *pcm, size_t n);

#endif
