/* deliver.c — one spool becomes one message, synchronously (a worker
 * thread of the engine runs it; tests call it directly).
 *
 *   read <id>.json (+ <id>.end)  →  read <id>.raw  →  encode (libsndfile)
 *   →  MIME message  →  Maildir (skipped when its key is already there)
 *   →  <id>.done, or the spool removed (keep_spool = 0)
 *
 * Each step can fail and leave the spool as it was, to be retried: the
 * Maildir holds a message or not (rename is atomic), and the key check
 * makes the step after a crash idempotent.
 *
 * A WAV message is never held whole in memory: its size is known from the
 * spool's (the WAV file is a 44-byte header and the spool's samples), so
 * the head of the message is built, and the spool's audio is read, turned
 * into base64 and written to tmp/ a chunk at a time. MP3 and Opus are
 * encoded in memory first (a tenth of the size), then written the same
 * way. */
#include "delivery/delivery.h"
#include "delivery/delivery_int.h"

#include "core/alloc.h"
#include "core/clock.h"
#include "core/file.h"
#include "core/str.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum {
	META_MAX = 64 << 10,
	END_MAX = 4 << 10,
	/* a day of 8 kHz PCM16: far beyond any max_message_seconds */
	RAW_MAX = 86400 * 16000,
	/* a chunk of audio read and written at a time: whole base64 lines */
	CHUNK_LINES = 512,
	CHUNK_IN = CHUNK_LINES * OM_MESSAGE_B64_LINE_IN,
	CHUNK_OUT = (CHUNK_LINES + 1) * OM_MESSAGE_B64_LINE_OUT,
};

/* What write_h writes into the Maildir's tmp/ file: head, then the audio
 * in base64 (pre, then raw_len bytes read from raw_fd), then tail. */
struct stream {
	const char *head;
	size_t head_len;
	const unsigned char *pre; /* the WAV header, or the whole encoded audio */
	size_t pre_len;
	int raw_fd; /* the spool's samples (WAV), or -1 */
	size_t raw_len;
	const char *tail;
	unsigned char *in;
	char *out;
	int read_err; /* reading the spool failed (not the Maildir) */
};

static int stream_h(int fd, void *arg)
{
	struct stream *s = arg;
	struct om_message_b64 b = { .ncarry = 0 };
	size_t n;
	int rc = dlv_write_all(fd, s->head, s->head_len);
	for (size_t off = 0; !rc && off < s->pre_len; off += n) {
		n = s->pre_len - off > CHUNK_IN ? CHUNK_IN : s->pre_len - off;
		rc = dlv_write_all(fd, s->out, om_message_b64_feed(&b, s->pre + off, n, s->out));
	}
	for (size_t off = 0; !rc && off < s->raw_len; off += n) {
		size_t want = s->raw_len - off > CHUNK_IN ? CHUNK_IN : s->raw_len - off;
		ssize_t got = read(s->raw_fd, s->in, want);
		if (got < 0 && errno == EINTR) {
			n = 0;
			continue;
		}
		if (got <= 0) { /* the spool shrank: not what was measured */
			s->read_err = got < 0 ? errno : EIO;
			return s->read_err;
		}
		n = (size_t)got;
		rc = dlv_write_all(fd, s->out, om_message_b64_feed(&b, s->in, n, s->out));
	}
	if (!rc)
		rc = dlv_write_all(fd, s->out, om_message_b64_end(&b, s->out));
	if (!rc)
		rc = dlv_write_all(fd, s->tail, strlen(s->tail));
	return rc;
}

static void path_of(char *out, size_t len, const char *data_dir, const char *id, const char *ext)
{
	dlv_fmt(out, len, "%s/spool/%s.%s", data_dir, id, ext);
}

/* The spool's files, the metadata first: without it what is left is no
 * message (and the pruning removes it). */
static int remove_spool(const char *data_dir, const char *id)
{
	static const char *const exts[] = { "json", "raw", "end", "done" };
	char path[PATH_MAX], dir[PATH_MAX];
	int rc = 0;
	for (size_t i = 0; i < 4; i++) {
		path_of(path, sizeof(path), data_dir, id, exts[i]);
		if (unlink(path) != 0 && errno != ENOENT && !rc)
			rc = errno;
	}
	dlv_fmt(dir, sizeof(dir), "%s/spool", data_dir);
	om_fsync_dir(dir);
	return rc;
}

/* om_file_read's answers for a path that is no regular file: a folder,
 * FIFO, socket or device where a spool file should be. */
static bool not_a_file(int rc)
{
	return rc == EISDIR || rc == ESPIPE || rc == ENODEV || rc == EINVAL;
}

static int mark_done(const char *data_dir, const struct om_delivery_result *r)
{
	char path[PATH_MAX];
	struct om_buf b;
	int rc;
	om_buf_init(&b);
	om_buf_printf(&b,
	              "{\"delivered_ms\":%lld,\"key\":\"%s\",\"recovered\":%s,\"duplicate\":%s,"
	              "\"skipped\":%s,\"samples\":%zu}\n",
	              (long long)om_now_ms(), r->key, r->recovered ? "true" : "false",
	              r->duplicate ? "true" : "false", r->skipped ? "true" : "false", r->samples);
	if (om_buf_err(&b)) {
		om_buf_free(&b);
		return ENOMEM;
	}
	path_of(path, sizeof(path), data_dir, r->meta.id, "done");
	rc = om_file_write_atomic(path, b.p, b.len, 0600);
	om_buf_free(&b);
	return rc;
}

static int finish(const struct om_delivery_opts *o, const char *id, struct om_delivery_result *r)
{
	int rc = o->keep_spool ? mark_done(o->data_dir, r) : remove_spool(o->data_dir, id);
	if (rc)
		dlv_fmt(r->error, sizeof(r->error),
		        "the message is in the mailbox but the spool could not be %s: %s",
		        o->keep_spool ? "marked delivered" : "removed", strerror(rc));
	return rc;
}

int om_delivery_deliver(const struct om_delivery_opts *o, const char *id,
                        struct om_delivery_result *r)
{
	char path[PATH_MAX], dir[PATH_MAX], why[256] = "", tail[OM_MESSAGE_TAIL_MAX];
	char *json = NULL, *end = NULL, *raw = NULL;
	size_t jlen = 0, elen = 0, rlen = 0;
	unsigned char wav[OM_AUDIO_WAV_HEADER];
	struct om_buf audio, msg;
	struct stream sw = { .raw_fd = -1 };
	int raw_fd = -1, rc;
	memset(r, 0, sizeof(*r));
	om_buf_init(&audio);
	om_buf_init(&msg);
	if (!om_spool_id_valid(id)) {
		dlv_fmt(r->error, sizeof(r->error), "not a spool id");
		return EINVAL;
	}
	dlv_fmt(r->meta.id, sizeof(r->meta.id), "%s", id);
	path_of(path, sizeof(path), o->data_dir, id, "done");
	if (access(path, F_OK) == 0) { /* delivered before: nothing to do */
		r->duplicate = true;
		return 0;
	}
	path_of(path, sizeof(path), o->data_dir, id, "json");
	rc = om_file_read(path, META_MAX, &json, &jlen);
	if (rc) {
		/* metadata too large or no file: unusable, kept for the
		 * administrator (never retried: it cannot get better) */
		dlv_fmt(r->error, sizeof(r->error), "cannot read %s: %s", path,
		        rc == EFBIG ? "larger than 64 KiB" : om_file_strerror(rc));
		return rc == EFBIG || not_a_file(rc) ? EINVAL : rc;
	}
	path_of(path, sizeof(path), o->data_dir, id, "end");
	rc = om_file_read(path, END_MAX, &end, &elen);
	/* an end marker that is too large or no file is no end marker: the
	 * recording is delivered as interrupted, never lost */
	bool end_bad = rc == EFBIG || not_a_file(rc);
	if (rc && rc != ENOENT && !end_bad) {
		dlv_fmt(r->error, sizeof(r->error), "cannot read %s: %s", path, strerror(rc));
		goto out;
	}
	rc = om_spool_meta_parse(json, jlen, end, end ? elen : 0, &r->meta, why, sizeof(why));
	if (rc) {
		dlv_fmt(r->error, sizeof(r->error), "spool %s: %s", id, why);
		goto out;
	}
	if (end_bad)
		r->meta.end_unusable = true;
	if (strcmp(r->meta.id, id)) {
		dlv_fmt(r->error, sizeof(r->error), "spool %s: its metadata names spool %s", id,
		        r->meta.id);
		rc = EINVAL;
		goto out;
	}
	r->recovered = !r->meta.ended;
	if ((rc = om_message_key(&r->meta, r->key)))
		goto out;
	if (r->meta.test) { /* a test-connectivity call: no mailbox gets it */
		r->skipped = true;
		rc = finish(o, id, r);
		goto out;
	}
	/* the audio: what was recorded, even if the call was cut off */
	path_of(path, sizeof(path), o->data_dir, id, "raw");
	if (o->format == OM_AUDIO_WAV) { /* read a chunk at a time, later */
		struct stat st;
		rc = om_file_open_input(path, &raw_fd, &st);
		if (rc)
			raw_fd = -1;
		else if ((size_t)st.st_size > RAW_MAX)
			rc = EFBIG;
		rlen = rc ? 0 : (size_t)st.st_size;
	} else {
		rc = om_file_read(path, RAW_MAX, &raw, &rlen);
	}
	if (rc == ENOENT) {
		rlen = 0;
	} else if (rc) {
		dlv_fmt(r->error, sizeof(r->error), "cannot read %s: %s", path,
		        om_file_strerror(rc));
		if (not_a_file(rc)) /* kept for the administrator: 1175 */
			rc = EINVAL;
		goto out;
	}
	r->samples = rlen / 2; /* a trailing odd byte is half a sample */
	if (r->samples && o->format == OM_AUDIO_WAV) {
		/* the spool's samples are little-endian, as WAV's are */
		if ((rc = om_audio_wav_header(r->samples, wav)))
			goto out;
		sw.pre = wav;
		sw.pre_len = sizeof(wav);
		sw.raw_len = r->samples * 2;
	} else if (r->samples) {
		int16_t *pcm = (int16_t *)(void *)raw;
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
		for (size_t i = 0; i < r->samples; i++)
			pcm[i] = (int16_t)__builtin_bswap16((uint16_t)pcm[i]);
#endif
		rc =
		    om_audio_encode(o->format, pcm, r->samples, &audio, r->error, sizeof(r->error));
		if (rc)
			goto out;
		sw.pre = (const unsigned char *)audio.p;
		sw.pre_len = audio.len;
	}
	om_free(raw);
	raw = NULL;
	struct om_message_opts mo = { .fqdn = o->fqdn,
		                      .format = o->format,
		                      .recovered = r->recovered,
		                      .samples = r->samples };
	if ((rc = om_message_head(&r->meta, &mo, sw.pre_len + sw.raw_len, &msg, tail))) {
		dlv_fmt(r->error, sizeof(r->error), "out of memory building the message");
		goto out;
	}
	sw.head = msg.p;
	sw.head_len = msg.len;
	sw.raw_fd = raw_fd;
	sw.tail = tail;
	sw.in = om_malloc(CHUNK_IN);
	sw.out = om_malloc(CHUNK_OUT);
	if (!sw.in || !sw.out) {
		rc = ENOMEM;
		goto out;
	}
	rc = om_maildir_open(o->data_dir, r->meta.mailbox_uid, dir, sizeof(dir));
	if (rc) {
		dlv_fmt(r->error, sizeof(r->error), "mailbox folder %s/mail/%s: %s", o->data_dir,
		        r->meta.mailbox_uid, strerror(rc));
		goto out;
	}
	size_t len = msg.len + om_message_b64_len(sw.pre_len + sw.raw_len) + strlen(tail);
	rc = om_maildir_deliver_with(dir, r->key, r->meta.start_ms, o->fqdn, len, stream_h, &sw);
	if (rc == EEXIST) {
		r->duplicate = true;
		rc = 0;
	} else if (rc && sw.read_err) {
		path_of(path, sizeof(path), o->data_dir, id, "raw");
		dlv_fmt(r->error, sizeof(r->error), "cannot read %s: %s", path,
		        sw.read_err == EIO ? "shorter than it was a moment ago" : strerror(rc));
		goto out;
	} else if (rc) {
		dlv_fmt(r->error, sizeof(r->error), "writing into %s: %s", dir, strerror(rc));
		goto out;
	}
	rc = finish(o, id, r);
out:
	if (raw_fd >= 0)
		close(raw_fd);
	om_free(sw.in);
	om_free(sw.out);
	om_free(json);
	om_free(end);
	om_free(raw);
	om_buf_free(&audio);
	om_buf_free(&msg);
	if (rc == ENOMEM && !r->error[0])
		dlv_fmt(r->error, sizeof(r->error), "out of memory");
	/* ENOENT says "no such spool" (its metadata is gone): a folder missing
	 * later on (a mailbox folder on a file system not mounted yet) is a
	 * failed attempt, retried; r->error names it */
	if (rc == ENOENT)
		rc = EAGAIN;
	return rc;
}
