/* audio.c — decoded audio shared between threads, the prompt set, G.711,
 * and levels.
 *
 *   ITU-T G.711     µ-law and A-law, through spandsp's encoder/decoder
 *                   (decoding by a 256-entry table built from it)
 *   dBov            level relative to a full-scale 16-bit signal:
 *                   20·log10(rms / 32768)
 *
 * Files are read with libsndfile (WAV, FLAC, Ogg, …) and resampled to
 * 8 kHz with libsamplerate: at start, reload or off the live path, never on
 * a media thread. Built-in prompts point into the binary (prompts_data.c)
 * and are never copied or freed. */
#include <errno.h>
#include <pthread.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <samplerate.h>
#include <sndfile.h>

#include "core/alloc.h"
#include "media/media.h"
#include "media/media_int.h"
#include "media/prompts_data.h"

/* ------------------------------------------------------------------ G.711 */

int16_t om_media_ulaw_dec[256], om_media_alaw_dec[256];
static uint8_t ulaw_enc[16384], alaw_enc[16384]; /* by sample >> 2 */
static pthread_once_t g711_once = PTHREAD_ONCE_INIT;

static void g711_build(void)
{
	for (int i = 0; i < 256; i++) {
		om_media_ulaw_dec[i] = ulaw_to_linear((uint8_t)i);
		om_media_alaw_dec[i] = alaw_to_linear((uint8_t)i);
	}
	/* G.711 ignores the two lowest bits of a 16-bit sample (µ-law uses
	 * 14 bits, A-law 13): a table indexed by sample >> 2 is exact. */
	for (int i = 0; i < 16384; i++) {
		int s = (int16_t)(uint16_t)(i << 2);
		ulaw_enc[i] = linear_to_ulaw(s);
		alaw_enc[i] = linear_to_alaw(s);
	}
}

void om_media_g711_init(void)
{
	pthread_once(&g711_once, g711_build);
}

void om_media_g711_encode(enum om_media_codec c, const int16_t *pcm, size_t n, uint8_t *out)
{
	const uint8_t *t = c == OM_MEDIA_PCMA ? alaw_enc : ulaw_enc;
	for (size_t i = 0; i < n; i++)
		out[i] = t[(uint16_t)pcm[i] >> 2];
}

double om_media_energy(const int16_t *pcm, size_t n)
{
	double e = 0;
	for (size_t i = 0; i < n; i++)
		e += (double)pcm[i] * pcm[i];
	return e;
}

double om_media_level_dbov(const int16_t *pcm, size_t n)
{
	if (n == 0)
		return -100;
	double ms = om_media_energy(pcm, n) / (double)n;
	if (ms < 1e-3)
		return -100;
	double db = 10 * log10(ms / (32768.0 * 32768.0));
	return db < -100 ? -100 : db;
}

/* ------------------------------------------------------------------ audio */

struct om_media_audio {
	atomic_uint refs;
	bool builtin; /* points into the binary; never freed */
	size_t n;
	const int16_t *pcm;
	int16_t own[];
};

#define AUDIO_MAX_SAMPLES ((size_t)1 << 28)

int om_media_audio_new(const int16_t *pcm, size_t n, struct om_media_audio **out)
{
	if (n == 0 || n > AUDIO_MAX_SAMPLES)
		return EINVAL;
	struct om_media_audio *a = om_malloc(sizeof(*a) + n * sizeof(int16_t));
	if (!a)
		return ENOMEM;
	atomic_init(&a->refs, 1);
	a->builtin = false;
	a->n = n;
	memcpy(a->own, pcm, n * sizeof(int16_t));
	a->pcm = a->own;
	*out = a;
	return 0;
}

static int audio_builtin(const int16_t *pcm, size_t n, struct om_media_audio **out)
{
	struct om_media_audio *a = om_malloc(sizeof(*a));
	if (!a)
		return ENOMEM;
	atomic_init(&a->refs, 1);
	a->builtin = true;
	a->n = n;
	a->pcm = pcm;
	*out = a;
	return 0;
}

struct om_media_audio *om_media_audio_ref(struct om_media_audio *a)
{
	atomic_fetch_add_explicit(&a->refs, 1, memory_order_relaxed);
	return a;
}

void om_media_audio_unref(struct om_media_audio *a)
{
	if (a && atomic_fetch_sub_explicit(&a->refs, 1, memory_order_acq_rel) == 1)
		om_free(a);
}

size_t om_media_audio_samples(const struct om_media_audio *a)
{
	return a->n;
}

const int16_t *om_media_audio_pcm(const struct om_media_audio *a)
{
	return a->pcm;
}

int om_media_audio_load(const char *path, unsigned max_ms, struct om_media_audio **out, char *why,
                        size_t whylen)
{
	SF_INFO info;
	float *in = NULL, *res = NULL;
	int16_t *pcm = NULL;
	int err = 0;
	memset(&info, 0, sizeof(info));
	if (max_ms == 0)
		max_ms = 600000;
	SNDFILE *f = sf_open(path, SFM_READ, &info);
	if (!f) {
		struct stat st;
		if (stat(path, &st) != 0) {
			snprintf(why, whylen, "%s", strerror(errno));
			return errno == ENOENT ? ENOENT : EINVAL;
		}
		snprintf(why, whylen, "not an audio file libsndfile reads: %s", sf_strerror(NULL));
		return EINVAL;
	}
	if (info.channels < 1 || info.channels > 8 || info.samplerate < 4000 ||
	    info.samplerate > 384000 || info.frames <= 0) {
		snprintf(why, whylen, "empty, or %d channels at %d Hz", info.channels,
		         info.samplerate);
		err = EINVAL;
		goto out;
	}
	if ((uint64_t)info.frames * 1000 / (uint64_t)info.samplerate > max_ms) {
		snprintf(why, whylen, "longer than %u s", max_ms / 1000);
		err = EFBIG;
		goto out;
	}
	size_t frames = (size_t)info.frames, ch = (size_t)info.channels;
	in = om_malloc(frames * ch * sizeof(float));
	if (!in) {
		err = ENOMEM;
		goto out;
	}
	sf_count_t got = sf_readf_float(f, in, (sf_count_t)frames);
	if (got <= 0) {
		snprintf(why, whylen, "no audio could be read");
		err = EINVAL;
		goto out;
	}
	frames = (size_t)got;
	/* Mix down to mono in place. */
	for (size_t i = 0; i < frames; i++) {
		float s = 0;
		for (size_t c = 0; c < ch; c++)
			s += in[i * ch + c];
		in[i] = s / (float)ch;
	}
	const float *mono = in;
	size_t n = frames;
	if (info.samplerate != 8000) {
		double ratio = 8000.0 / info.samplerate;
		size_t cap = (size_t)((double)frames * ratio) + 16;
		res = om_malloc(cap * sizeof(float));
		if (!res) {
			err = ENOMEM;
			goto out;
		}
		SRC_DATA d;
		memset(&d, 0, sizeof(d));
		d.data_in = in;
		d.input_frames = (long)frames;
		d.data_out = res;
		d.output_frames = (long)cap;
		d.src_ratio = ratio;
		int e = src_simple(&d, SRC_SINC_MEDIUM_QUALITY, 1);
		if (e) {
			snprintf(why, whylen, "resampling failed: %s", src_strerror(e));
			err = EINVAL;
			goto out;
		}
		mono = res;
		n = (size_t)d.output_frames_gen;
	}
	if (n == 0) {
		snprintf(why, whylen, "empty after resampling");
		err = EINVAL;
		goto out;
	}
	pcm = om_malloc(n * sizeof(int16_t));
	if (!pcm) {
		err = ENOMEM;
		goto out;
	}
	src_float_to_short_array(mono, pcm, (int)n);
	err = om_media_audio_new(pcm, n, out);
out:
	sf_close(f);
	om_free(in);
	om_free(res);
	om_free(pcm);
	return err;
}

/* ---------------------------------------------------------------- prompts */

struct om_media_prompts {
	atomic_uint refs;
	size_t n;
	struct {
		const char *name;
		struct om_media_audio *a;
	} item[];
};

static const char *prompt_names[128];
static pthread_once_t names_once = PTHREAD_ONCE_INIT;

static void names_build(void)
{
	for (size_t i = 0;
	     i + 1 < sizeof(prompt_names) / sizeof(prompt_names[0]) && om_media_builtins[i].name;
	     i++)
		prompt_names[i] = om_media_builtins[i].name;
}

const char *const *om_media_prompt_names(void)
{
	pthread_once(&names_once, names_build);
	return prompt_names;
}

static void prompts_free(struct om_media_prompts *p)
{
	for (size_t i = 0; i < p->n; i++)
		om_media_audio_unref(p->item[i].a);
	om_free(p);
}

int om_media_prompts_load(const char *dir, om_media_prompt_h h, void *arg,
                          struct om_media_prompts **out)
{
	size_t n = 0;
	while (om_media_builtins[n].name)
		n++;
	struct om_media_prompts *p = om_calloc(1, sizeof(*p) + n * sizeof(p->item[0]));
	if (!p)
		return ENOMEM;
	atomic_init(&p->refs, 1);
	for (size_t i = 0; i < n; i++) {
		const struct om_media_builtin *b = &om_media_builtins[i];
		p->item[i].name = b->name;
		struct om_media_audio *a = NULL;
		static const char *const ext[] = { "wav", "flac", "ogg" };
		for (size_t k = 0; dir && k < 3 && !a; k++) {
			char path[4096], why[256];
			struct stat st;
			if (snprintf(path, sizeof(path), "%s/%s.%s", dir, b->name, ext[k]) >=
			        (int)sizeof(path) ||
			    stat(path, &st) != 0)
				continue;
			int err = om_media_audio_load(path, 120000, &a, why, sizeof(why));
			if (err == ENOMEM) {
				p->n = i;
				prompts_free(p);
				return ENOMEM;
			}
			if (h)
				h(b->name, path, err ? why : NULL, arg);
			if (err)
				a = NULL;
		}
		if (!a && audio_builtin(b->pcm, b->n, &a) != 0) {
			p->n = i;
			prompts_free(p);
			return ENOMEM;
		}
		p->item[i].a = a;
		p->n = i + 1;
	}
	*out = p;
	return 0;
}

struct om_media_prompts *om_media_prompts_ref(struct om_media_prompts *p)
{
	atomic_fetch_add_explicit(&p->refs, 1, memory_order_relaxed);
	return p;
}

void om_media_prompts_unref(struct om_media_prompts *p)
{
	if (p && atomic_fetch_sub_explicit(&p->refs, 1, memory_order_acq_rel) == 1)
		prompts_free(p);
}

struct om_media_audio *om_media_prompts_get(const struct om_media_prompts *p, const char *name)
{
	for (size_t i = 0; i < p->n; i++)
		if (strcmp(p->item[i].name, name) == 0)
			return p->item[i].a;
	return NULL;
}
