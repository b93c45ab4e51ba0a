/* audio.c — the audio of a voice message and of an uploaded greeting,
 * through libsndfile (WAV/PCM16, MP3 via LAME, Ogg Opus) and libsamplerate.
 * Never on the live media path: the delivery runs on a worker thread and
 * greetings are converted by the CLI.
 *
 * MP3 and Opus files are produced in memory through libsndfile's virtual
 * I/O; a WAV message needs only the header libsndfile would write
 * (om_audio_wav_header): its samples are the spool's, as they are. */
#include "delivery/delivery.h"

#include "core/file.h"
#include "core/alloc.h"
#include "core/str.h"

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <samplerate.h>
#include <sndfile.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const struct {
	const char *name, *mime, *ext;
	int sf_format;
} formats[] = {
	[OM_AUDIO_WAV] = { "wav", "audio/wav", "wav", SF_FORMAT_WAV | SF_FORMAT_PCM_16 },
	[OM_AUDIO_MP3] = { "mp3", "audio/mpeg", "mp3", SF_FORMAT_MPEG | SF_FORMAT_MPEG_LAYER_III },
	[OM_AUDIO_OPUS] = { "opus", "audio/ogg", "opus", SF_FORMAT_OGG | SF_FORMAT_OPUS },
};

#define NFORMATS (sizeof(formats) / sizeof(formats[0]))

const char *om_audio_format_name(enum om_audio_format f)
{
	return (size_t)f < NFORMATS ? formats[f].name : "?";
}

const char *om_audio_format_mime(enum om_audio_format f)
{
	return (size_t)f < NFORMATS ? formats[f].mime : "application/octet-stream";
}

const char *om_audio_format_ext(enum om_audio_format f)
{
	return (size_t)f < NFORMATS ? formats[f].ext : "bin";
}

int om_audio_format_parse(const char *s, enum om_audio_format *out)
{
	for (size_t i = 0; i < NFORMATS; i++)
		if (!strcasecmp(s, formats[i].name)) {
			*out = (enum om_audio_format)i;
			return 0;
		}
	return EINVAL;
}

int om_audio_format_check(enum om_audio_format f, char *err, size_t errlen)
{
	SF_INFO info = { .samplerate = 8000, .channels = 1 };
	if ((size_t)f >= NFORMATS) {
		snprintf(err, errlen, "unknown audio format");
		return ENOTSUP;
	}
	info.format = formats[f].sf_format;
	if (!sf_format_check(&info)) {
		snprintf(err, errlen,
		         "audio_format = %s: this libsndfile (%s) cannot write it at 8 kHz; use "
		         "audio_format = wav",
		         formats[f].name, sf_version_string());
		return ENOTSUP;
	}
	return 0;
}

static void le32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
	p[2] = (unsigned char)(v >> 16);
	p[3] = (unsigned char)(v >> 24);
}

int om_audio_wav_header(size_t n, unsigned char out[OM_AUDIO_WAV_HEADER])
{
	/* RIFF, WAVE, fmt (16 bytes: PCM, 1 channel, 8000 Hz, 16000 bytes/s,
	 * block 2, 16 bits), data */
	static const char h[] = "RIFF\0\0\0\0WAVE"
	                        "fmt \x10\0\0\0\x01\0\x01\0\x40\x1f\0\0\x80\x3e\0\0\x02\0\x10\0"
	                        "data\0\0\0\0";
	_Static_assert(sizeof(h) == OM_AUDIO_WAV_HEADER + 1, "a 44-byte header");
	if (n > OM_AUDIO_WAV_SAMPLES_MAX)
		return EFBIG;
	memcpy(out, h, OM_AUDIO_WAV_HEADER);
	le32(out + 4, (uint32_t)(36 + 2 * n));
	le32(out + 40, (uint32_t)(2 * n));
	return 0;
}

/* ---------------------------------------------------- virtual I/O */

struct vio {
	struct om_buf *b;
	size_t base; /* where the file starts in b */
	sf_count_t pos;
};

static sf_count_t v_len(void *u)
{
	struct vio *v = u;
	return (sf_count_t)(v->b->len - v->base);
}

static sf_count_t v_seek(sf_count_t off, int whence, void *u)
{
	struct vio *v = u;
	sf_count_t np = whence == SEEK_SET   ? off
	                : whence == SEEK_CUR ? v->pos + off
	                                     : v_len(v) + off;
	if (np < 0)
		return -1;
	v->pos = np;
	return np;
}

static sf_count_t v_read(void *ptr, sf_count_t n, void *u)
{
	struct vio *v = u;
	sf_count_t len = v_len(v);
	if (v->pos >= len || n <= 0)
		return 0;
	if (n > len - v->pos)
		n = len - v->pos;
	memcpy(ptr, v->b->p + v->base + v->pos, (size_t)n);
	v->pos += n;
	return n;
}

static sf_count_t v_write(const void *ptr, sf_count_t n, void *u)
{
	static const char zeros[4096];
	struct vio *v = u;
	if (n <= 0)
		return 0;
	while (v_len(v) < v->pos) { /* a seek past the end: fill the gap */
		sf_count_t gap = v->pos - v_len(v);
		om_buf_add(v->b, zeros,
		           gap > (sf_count_t)sizeof(zeros) ? sizeof(zeros) : (size_t)gap);
		if (om_buf_err(v->b))
			return 0;
	}
	sf_count_t over = v->pos + n - v_len(v);
	sf_count_t inside = n - (over > 0 ? over : 0);
	if (inside > 0)
		memcpy(v->b->p + v->base + v->pos, ptr, (size_t)inside);
	if (over > 0)
		om_buf_add(v->b, (const char *)ptr + inside, (size_t)over);
	if (om_buf_err(v->b))
		return 0;
	v->pos += n;
	return n;
}

static sf_count_t v_tell(void *u)
{
	return ((struct vio *)u)->pos;
}

int om_audio_encode(enum om_audio_format f, const int16_t *pcm, size_t n, struct om_buf *out,
                    char *err, size_t errlen)
{
	SF_VIRTUAL_IO io = { v_len, v_seek, v_read, v_write, v_tell };
	struct vio v = { out, out->len, 0 };
	SF_INFO info = { .samplerate = 8000, .channels = 1 };
	int rc;
	if ((size_t)f >= NFORMATS)
		return EINVAL;
	info.format = formats[f].sf_format;
	SNDFILE *sf = sf_open_virtual(&io, SFM_WRITE, &info, &v);
	if (!sf) {
		snprintf(err, errlen, "libsndfile cannot write %s: %s", formats[f].name,
		         sf_strerror(NULL));
		return om_buf_err(out) ? ENOMEM : EIO;
	}
	if (f == OM_AUDIO_OPUS || f == OM_AUDIO_MP3) {
		/* libsndfile's level: 0 best and largest, 1 smallest. For 8 kHz
		 * speech (measured with libsndfile 1.2): Opus 0.94 ≈ 24 kbit/s,
		 * clear narrowband speech (0.5 would be 136 kbit/s); MP3 at
		 * 8 kHz (MPEG 2.5) stays near 12 kbit/s whatever the level. */
		double q = f == OM_AUDIO_OPUS ? 0.94 : 0.3;
		sf_command(sf, SFC_SET_COMPRESSION_LEVEL, &q, sizeof(q));
	}
	size_t done = 0;
	while (done < n) {
		size_t chunk = n - done > 8000 ? 8000 : n - done;
		if (sf_write_short(sf, pcm + done, (sf_count_t)chunk) != (sf_count_t)chunk)
			break;
		done += chunk;
	}
	rc = done == n ? 0 : EIO;
	if (rc)
		snprintf(err, errlen, "libsndfile failed writing %s: %s", formats[f].name,
		         sf_strerror(sf));
	if (sf_close(sf) != 0 && !rc) {
		snprintf(err, errlen, "libsndfile failed closing %s", formats[f].name);
		rc = EIO;
	}
	if (om_buf_err(out)) {
		snprintf(err, errlen, "out of memory encoding %s", formats[f].name);
		rc = ENOMEM;
	}
	return rc;
}

/* ---------------------------------------------------- greetings */

/* Opens a file an administrator names with the rule every command follows
 * (om_file_open_input): a regular file only, never blocking on a FIFO or
 * reading a device. */
static int open_regular(const char *path, int *fd_out, off_t *size, char *err, size_t errlen)
{
	struct stat st;
	int rc = om_file_open_input(path, fd_out, &st);
	if (rc == EISDIR || rc == ESPIPE || rc == ENODEV) {
		bool sock = stat(path, &st) == 0 && S_ISSOCK(st.st_mode);
		snprintf(err, errlen, "%s is not a regular file (%s): give an audio file", path,
		         rc == EISDIR   ? "a folder"
		         : rc == ENODEV ? "a device"
		         : sock         ? "a socket"
		                        : "a FIFO");
		return rc == EISDIR ? EISDIR : EINVAL;
	}
	if (rc) {
		snprintf(err, errlen, "cannot open %s: %s", path, om_file_strerror(rc));
		return rc;
	}
	*size = st.st_size;
	return 0;
}

enum { GREETING_FILE_MAX = 256 << 20, BLOCK = 4096 };

int om_audio_greeting_convert(const char *path, unsigned max_s, struct om_buf *out,
                              unsigned *duration_ms, char *err, size_t errlen)
{
	SF_INFO info = { 0 };
	SNDFILE *sf = NULL;
	SRC_STATE *src = NULL;
	float *in = NULL, *mono = NULL, *res = NULL;
	struct om_buf pcm;
	off_t size = 0;
	int fd = -1, rc, srcerr = 0;
	size_t limit = (size_t)max_s * 8000, nout = 0;
	om_buf_init(&pcm);
	if ((rc = open_regular(path, &fd, &size, err, errlen)) != 0)
		return rc;
	if (size > GREETING_FILE_MAX) {
		close(fd);
		snprintf(err, errlen, "%s is larger than %d MiB: not a greeting", path,
		         GREETING_FILE_MAX >> 20);
		return EFBIG;
	}
	sf = sf_open_fd(fd, SFM_READ, &info, 1);
	if (!sf) {
		close(fd);
		snprintf(
		    err, errlen,
		    "%s is not audio libsndfile can read (%s): give a WAV, FLAC, Ogg or MP3 file",
		    path, sf_strerror(NULL));
		return EINVAL;
	}
	if (info.samplerate < 1000 || info.samplerate > 384000 || info.channels < 1 ||
	    info.channels > 16) {
		snprintf(err, errlen, "%s: %d Hz, %d channels is not a usable recording", path,
		         info.samplerate, info.channels);
		rc = EINVAL;
		goto out;
	}
	if (info.frames > 0 && info.frames / info.samplerate > (sf_count_t)max_s) {
		snprintf(err, errlen,
		         "%s lasts %lld s: the dial plan allows greetings of at most %u s "
		         "(dialplan set --max-greeting)",
		         path, (long long)(info.frames / info.samplerate), max_s);
		rc = EFBIG;
		goto out;
	}
	double ratio = 8000.0 / info.samplerate;
	size_t res_cap = (size_t)(BLOCK * ratio) + 64;
	in = om_calloc((size_t)BLOCK * (size_t)info.channels, sizeof(float));
	mono = om_calloc(BLOCK, sizeof(float));
	res = om_calloc(res_cap, sizeof(float));
	src = src_new(SRC_SINC_MEDIUM_QUALITY, 1, &srcerr);
	if (!in || !mono || !res || !src) {
		snprintf(err, errlen, "out of memory converting %s", path);
		rc = ENOMEM;
		goto out;
	}
	for (bool eof = false; !eof;) {
		sf_count_t got = sf_readf_float(sf, in, BLOCK);
		eof = got < BLOCK;
		for (sf_count_t i = 0; i < got; i++) {
			float s = 0;
			for (int c = 0; c < info.channels; c++)
				s += in[i * info.channels + c];
			mono[i] = s / (float)info.channels;
		}
		SRC_DATA d = { .data_in = mono,
			       .input_frames = got,
			       .src_ratio = ratio,
			       .end_of_input = eof };
		do {
			d.data_out = res;
			d.output_frames = (long)res_cap;
			if ((srcerr = src_process(src, &d)) != 0) {
				snprintf(err, errlen, "resampling %s: %s", path,
				         src_strerror(srcerr));
				rc = EIO;
				goto out;
			}
			int16_t s16[BLOCK];
			for (long k = 0; k < d.output_frames_gen;) {
				long m = d.output_frames_gen - k > BLOCK ? BLOCK
				                                         : d.output_frames_gen - k;
				src_float_to_short_array(res + k, s16, (int)m);
				om_buf_add(&pcm, s16, (size_t)m * sizeof(int16_t));
				k += m;
			}
			nout += (size_t)d.output_frames_gen;
			if (nout > limit + 8000) { /* the frame count was unknown */
				snprintf(
				    err, errlen,
				    "%s lasts more than %u s, the dial plan's longest greeting "
				    "(dialplan set --max-greeting)",
				    path, max_s);
				rc = EFBIG;
				goto out;
			}
			d.data_in += d.input_frames_used;
			d.input_frames -= d.input_frames_used;
		} while (d.input_frames > 0 || (eof && d.output_frames_gen > 0));
	}
	if (om_buf_err(&pcm)) {
		snprintf(err, errlen, "out of memory converting %s", path);
		rc = ENOMEM;
		goto out;
	}
	if (nout == 0) {
		snprintf(err, errlen, "%s holds no audio", path);
		rc = EINVAL;
		goto out;
	}
	if (nout > limit) {
		snprintf(err, errlen,
		         "%s lasts %zu.%zu s: the dial plan allows greetings of at most %u s "
		         "(dialplan set --max-greeting)",
		         path, nout / 8000, (nout % 8000) / 800, max_s);
		rc = EFBIG;
		goto out;
	}
	rc = om_audio_encode(OM_AUDIO_WAV, (const int16_t *)pcm.p, nout, out, err, errlen);
	if (!rc && duration_ms)
		*duration_ms = (unsigned)(nout / 8);
out:
	if (src)
		src_delete(src);
	if (sf)
		sf_close(sf);
	om_free(in);
	om_free(mono);
	om_free(res);
	om_buf_free(&pcm);
	return rc;
}
