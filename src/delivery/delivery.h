/* delivery.h — a recorded call becomes a voice message in the mailbox
 * (R11): the spool (docs/modules/delivery.md), the MIME message (RFC 5322,
 * RFC 2045-2047), the audio attachment (libsndfile), the Maildir, and the
 * engine that runs deliveries off the control loop, recovers interrupted
 * recordings and retries failures.
 *
 *   spool/<id>.json   the call's metadata (written first, atomically)
 *   spool/<id>.raw    8 kHz mono signed 16-bit little-endian PCM
 *   spool/<id>.end    written when the recording ended normally
 *   spool/<id>.done   written here once the message is in the Maildir
 *   mail/<mailbox uid>/{tmp,new,cur}/   the Maildir (files 0600, folders 0700)
 *
 * Nothing lost, nothing doubled: a spool stays until its message is in the
 * Maildir; the Maildir file name carries a key derived from the Call-ID
 * and tags (so does the Message-ID), and a key already there is never
 * written again. */
#ifndef OM_DELIVERY_DELIVERY_H
#define OM_DELIVERY_DELIVERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct om_buf;

/* ------------------------------------------------------------- audio */

enum om_audio_format { OM_AUDIO_WAV = 0, OM_AUDIO_MP3, OM_AUDIO_OPUS };

/* "wav", "mp3", "opus"; parse: 0 or EINVAL. */
const char *om_audio_format_name(enum om_audio_format f);
int om_audio_format_parse(const char *s, enum om_audio_format *out);
/* MIME type and file extension of the attachment. */
const char *om_audio_format_mime(enum om_audio_format f);
const char *om_audio_format_ext(enum om_audio_format f);
/* Whether this libsndfile can write the format at 8 kHz mono
 * (sf_format_check). 0, or ENOTSUP with err saying what to configure. */
int om_audio_format_check(enum om_audio_format f, char *err, size_t errlen);

/* The 44-byte header libsndfile writes for a WAV file (RIFF, PCM 16-bit,
 * 8 kHz mono) of n samples: om_audio_encode(OM_AUDIO_WAV) gives this
 * header followed by the samples (16-bit little-endian), so a delivery can
 * send the spool's audio without copying it. n at most
 * OM_AUDIO_WAV_SAMPLES_MAX (the RIFF sizes are 32 bits): 0 or EFBIG. */
#define OM_AUDIO_WAV_HEADER      44
#define OM_AUDIO_WAV_SAMPLES_MAX ((size_t)0x7ffffff0)
int om_audio_wav_header(size_t n, unsigned char out[OM_AUDIO_WAV_HEADER]);

/* Encodes n samples of 8 kHz mono PCM into `out` (appended) in format f.
 * n may be 0 (a valid file without audio). 0, ENOMEM, or EIO with err. */
int om_audio_encode(enum om_audio_format f, const int16_t *pcm, size_t n, struct om_buf *out,
                    char *err, size_t errlen);

/* A greeting uploaded by an administrator: any file libsndfile reads (WAV,
 * FLAC, Ogg Vorbis/Opus, MP3, ...), mixed down to mono and resampled with
 * libsamplerate to 8 kHz, written as a PCM16 WAV into `out`. The input is
 * opened without following a FIFO or device (only a regular file is
 * read). max_s bounds the duration in seconds (the dial plan's maximum
 * greeting). *duration_ms receives the length. 0; ENOENT/EACCES/EISDIR
 * (unreadable), EINVAL (not a regular file, or not audio), EFBIG (too
 * long), ENOMEM, EIO; err says what was wrong for the administrator. */
int om_audio_greeting_convert(const char *path, unsigned max_s, struct om_buf *out,
                              unsigned *duration_ms, char *err, size_t errlen);

/* ------------------------------------------------------------- spool */

#define OM_SPOOL_ID_MAX   128               /* [A-Za-z0-9._-], not starting with '.' */
#define OM_SPOOL_TIME_MAX 253402300799999LL /* start_ms: 9999-12-31T23:59:59.999Z */

/* The metadata the call wrote (version 1; docs/modules/delivery.md).
 * Text fields are bounded; longer ones are cut at a UTF-8 boundary. */
struct om_spool_meta {
	int version;
	char id[OM_SPOOL_ID_MAX + 1];
	char call_id[256], from_tag[128], to_tag[128];
	char mailbox_uid[65]; /* hex: names mail/<uid>/ */
	char extension[33], dialplan[65];
	char mailbox_name[129], mailbox_email[255];
	char caller[129], caller_name[129];
	bool anonymous;
	char reason[16];        /* busy | unavailable | unconditional */
	char security_mode[16]; /* unsecured | sipsecured | secured */
	char transport[8];      /* tcp | tls */
	char srtp_suite[48];    /* "" = RTP */
	char gateway[65];
	int64_t start_ms; /* Unix ms */
	bool test;        /* a test-connectivity call: never delivered to a mailbox */
	/* from the .end marker, when present and readable */
	bool ended;
	bool end_unusable; /* a .end that is not a usable marker: taken as interrupted */
	int64_t end_ms;
	char end_reason[16];
};

/* Spool ids are file names: true when `id` is one openum may use. */
bool om_spool_id_valid(const char *id);
/* Parses the .json text (and, if end_text is not NULL, the .end text).
 * 0; EINVAL with err naming the bad field; ENOMEM. An end marker that
 * cannot be used (not JSON, a field of the wrong type) never makes the
 * spool unusable: the recording is taken as interrupted (ended = false,
 * end_unusable = true, err says why) and still delivered. NUL characters
 * in text fields are dropped; in `id` and `mailbox_uid` they are refused.
 * start_ms is 0 to 253402300799999 (the end of year 9999). */
int om_spool_meta_parse(const char *json, size_t len, const char *end_text, size_t end_len,
                        struct om_spool_meta *out, char *err, size_t errlen);

/* ------------------------------------------------------------- message */

/* The key of a message: 32 hex digits of SHA-256 over Call-ID, From tag
 * and To tag (the spool id when all three are empty). It names the
 * Maildir file and is the left part of the Message-ID. 0 or ENOMEM. */
int om_message_key(const struct om_spool_meta *m, char key[33]);

struct om_message_opts {
	const char *fqdn; /* Message-ID's right part and the From address */
	enum om_audio_format format;
	bool recovered; /* the recording was interrupted (no .end) */
	size_t samples; /* audio length, for the text part */
};

/* Builds the RFC 5322 message (LF line endings, as a Maildir file holds
 * it): headers, a text/plain part and the audio attachment `audio` (may
 * be empty: then no attachment, and the text says no audio arrived).
 * Every header value from the spool is stripped of control characters
 * and encoded as RFC 2047 words when it is not ASCII, so nothing from a
 * caller can add a header. 0 or ENOMEM. */
int om_message_build(const struct om_spool_meta *m, const struct om_message_opts *o,
                     const void *audio, size_t audio_len, struct om_buf *out);

/* The message in three parts, so that it can be written to a file
 * without being held whole in memory: the head (header fields, the text
 * part and, when audio_len > 0, the attachment's MIME header) appended to
 * `head`; then the audio_len bytes of audio in base64
 * (om_message_b64_feed/_end, om_message_b64_len bytes); then `tail`, the
 * closing boundary (NUL-terminated). om_message_build gives head + base64
 * + tail in one buffer. 0 or ENOMEM. */
#define OM_MESSAGE_TAIL_MAX 40
int om_message_head(const struct om_spool_meta *m, const struct om_message_opts *o,
                    size_t audio_len, struct om_buf *head, char tail[OM_MESSAGE_TAIL_MAX]);

/* The attachment's base64 (RFC 2045 §6.8), fed in pieces of any size:
 * lines of 76 characters (57 bytes of input) each ending in LF, the last
 * one shorter and padded. feed writes whole lines only, at most
 * OM_MESSAGE_B64_LINE_OUT bytes for every OM_MESSAGE_B64_LINE_IN bytes of
 * (carried + new) input, and returns the bytes written to out; end writes
 * the last line (at most OM_MESSAGE_B64_LINE_OUT bytes). Start with
 * ncarry = 0. */
#define OM_MESSAGE_B64_LINE_IN  57
#define OM_MESSAGE_B64_LINE_OUT 77
struct om_message_b64 {
	unsigned char carry[OM_MESSAGE_B64_LINE_IN];
	size_t ncarry;
};
size_t om_message_b64_feed(struct om_message_b64 *s, const void *data, size_t n, char *out);
size_t om_message_b64_end(struct om_message_b64 *s, char *out);
/* Bytes of base64 text (line ends included) for n bytes of audio. */
size_t om_message_b64_len(size_t n);

/* ------------------------------------------------------------- Maildir */

/* mail/<uid>/{tmp,new,cur}, 0700 (created when missing). 0 or errno. */
int om_maildir_open(const char *data_dir, const char *uid, char *dir, size_t dirlen);
/* True when new/ or cur/ holds a message with this key. */
bool om_maildir_has(const char *dir, const char *key);
/* Writes `msg` as tmp/NAME (0600, fsync), renames it into new/, fsyncs
 * new/. NAME carries the key, the time and `host`. EEXIST when the key is
 * already there (nothing written). Thread-safe: the key check and the
 * rename are one step for the threads of the process. 0 or errno. */
int om_maildir_deliver(const char *dir, const char *key, int64_t time_ms, const char *host,
                       const void *msg, size_t len);
/* The same for a message written by write_h into fd (open on tmp/NAME):
 * exactly len bytes (the size NAME carries; anything else fails with
 * EIO), returning 0 or an errno (the file is then removed). write_h runs
 * while the key's lock is held; messages with other keys are written at
 * the same time on other threads. */
typedef int (*om_maildir_write_h)(int fd, void *arg);
int om_maildir_deliver_with(const char *dir, const char *key, int64_t time_ms, const char *host,
                            size_t len, om_maildir_write_h write_h, void *arg);

/* One message of a Maildir, as `openum mailbox messages` shows it. */
struct om_maildir_msg {
	char id[64];    /* the key (openum's messages), or the file's unique name */
	char file[512]; /* path */
	bool is_new;    /* in new/, or in cur/ without the Seen flag */
	int64_t time_ms;
	unsigned duration_s;
	bool recovered;
	char caller[129], caller_name[129];
	char format[8];
};
/* Every message in new/ and cur/, oldest first. *out is om_free'd. */
int om_maildir_list(const char *dir, struct om_maildir_msg **out, size_t *n);
/* The audio attachment of a message in memory (a MIME entity, multipart
 * nested at most 4 deep; bounded by len, no NUL needed), base64-decoded,
 * and its file extension. 0; ENOENT no audio part; EINVAL not MIME openum
 * can read; ENOMEM. */
int om_message_audio(const char *msg, size_t len, struct om_buf *audio, char ext[8]);
/* The audio attachment of the message file (base64 decoded) and its file
 * extension ("wav"...). 0; ENOENT (no audio part); EINVAL (not a MIME
 * message openum can read); EFBIG; ENOMEM; errno. */
int om_maildir_audio(const char *file, struct om_buf *audio, char ext[8]);

/* ------------------------------------------------------------- one delivery */

struct om_delivery_opts {
	const char *data_dir;
	const char *fqdn;
	enum om_audio_format format;
	bool keep_spool; /* false: the spool's files go once delivered */
};

struct om_delivery_result {
	struct om_spool_meta meta;
	bool recovered; /* no .end: the call was interrupted */
	bool duplicate; /* the Maildir already had it (an earlier try got that far) */
	bool skipped;   /* a test call: nothing written to a mailbox */
	size_t samples; /* audio delivered */
	char key[33];
	char error[512]; /* why it failed */
};

/* Delivers spool `id` synchronously (a worker thread calls it): reads the
 * metadata and the audio, builds the message, writes it into the Maildir
 * unless its key is there, then marks the spool delivered (.done) or
 * removes it (keep_spool false). 0; EINVAL (unusable metadata: kept);
 * ENOENT (no such spool: its metadata is missing); ENOMEM; ENOSPC, EAGAIN
 * (a folder missing on the way, e.g. a mailbox folder not mounted) or
 * another errno from the file system: retry. res->error says why. */
int om_delivery_deliver(const struct om_delivery_opts *o, const char *id,
                        struct om_delivery_result *res);

/* ------------------------------------------------------------- the engine */

struct om_delivery_cfg {
	const char *data_dir;
	const char *fqdn;
	enum om_audio_format format;
	unsigned keep_days;   /* recordings_keep_days: delivered spools kept this long */
	bool keep_spool;      /* false: removed at once */
	uint64_t min_free_mb; /* below this on the spool's file system: no room for calls */
	unsigned retry_min_s; /* first retry after a failure; doubles up to retry_max_s */
	unsigned retry_max_s;
};

struct om_delivery;

/* Called on the control loop when a submitted spool is delivered (rc 0)
 * or has failed for the first time (rc != 0; it stays queued and is
 * retried with back-off). res is valid during the call only. */
typedef void (*om_delivery_done_h)(const char *id, int rc, const struct om_delivery_result *res,
                                   void *arg);

/* Creates the engine on the control loop and checks the audio format
 * (sf_format_check). 0, ENOTSUP (format, err says so), ENOMEM. */
int om_delivery_new(uv_loop_t *loop, const struct om_delivery_cfg *cfg, struct om_delivery **out,
                    char *err, size_t errlen);
/* A reload: new format, keep and space settings (checked as at new).
 * Failures queued for retry are tried again at once. 0 or ENOTSUP. */
int om_delivery_configure(struct om_delivery *d, const struct om_delivery_cfg *cfg, char *err,
                          size_t errlen);
/* At start, before any call: every spool with a .json and no .done is
 * queued — with .end as a normal delivery (1170), without as an
 * interrupted one (1171, "recovered after an interruption"); spools whose
 * metadata cannot be read are reported (1175) and kept. Delivered spools
 * older than keep_days are removed. Returns the number queued. */
size_t om_delivery_recover(struct om_delivery *d);
/* The call side: spool `id` is complete (.end written), deliver it.
 * Asynchronous: done (may be NULL) is called on the control loop. 0,
 * EINVAL (bad id), ENOMEM, ESHUTDOWN (closing). */
int om_delivery_submit(struct om_delivery *d, const char *id, om_delivery_done_h done, void *arg);
/* Call admission: is there room on the spool's file system for new
 * recordings (free space >= min_free_mb)? Checks statvfs now; raises 1173
 * when room runs out and 1174 when it is back. */
bool om_delivery_room(struct om_delivery *d);
/* Deliveries queued, running, waiting for a retry; done since start. */
struct om_delivery_stats {
	size_t queued, running, retrying;
	unsigned long delivered, recovered, failed_attempts;
	uint64_t free_mb;
	bool room;
};
void om_delivery_stats(struct om_delivery *d, struct om_delivery_stats *st);
/* Stops taking work, lets running deliveries finish (queued ones stay in
 * the spool for the next start), closes the timers, frees the engine and
 * then calls closed_h (may be NULL) on the loop. */
void om_delivery_close(struct om_delivery *d, void (*closed_h)(void *arg), void *arg);

#endif
