/* message_build.c — the CPU a voice message's delivery costs: N spools of
 * S seconds of 8 kHz PCM16 each become N messages in a Maildir through
 * om_delivery_deliver (spool read, audio encoding, MIME message with the
 * audio in base64, tmp/ write, fsync, rename), or, with --build, only the
 * in-memory part (om_audio_encode + om_message_build).
 *
 *   bench_message_build [--build] [-n N] [-s SECONDS] [-f wav|mp3|opus] [-d DIR]
 *
 * Prints wall µs and CPU µs (user + system of the process) per message and
 * the message bytes per wall second. The spools are written before the
 * clock starts; DIR (default a folder under /tmp) is removed afterwards. */
#include "delivery/delivery.h"

#include "core/alloc.h"
#include "core/str.h"

#include <errno.h>
#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_s(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* speech-like test audio: a tone with a slow envelope and some noise */
static int16_t *make_pcm(size_t n)
{
	int16_t *p = om_malloc(n * 2 + 1);
	uint32_t r = 12345;
	if (!p)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		double env = 0.5 + 0.5 * sin((double)i * 2 * M_PI / 4000.0);
		r = r * 1103515245u + 12345u;
		double v = env * 8000.0 * sin((double)i * 2 * M_PI * 440.0 / 8000.0) +
		           (double)((int)(r >> 16) % 512 - 256);
		p[i] = (int16_t)v;
	}
	return p;
}

static int write_file(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");
	if (!f)
		return errno;
	int ok = fwrite(data, 1, len, f) == len;
	ok = fclose(f) == 0 && ok;
	return ok ? 0 : EIO;
}

static int rm_h(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static const char *UID = "0123456789abcdef0123456789abcdef";

static void meta_json(char *out, size_t len, const char *id, unsigned i)
{
	snprintf(out, len,
	         "{\"version\":1,\"id\":\"%s\",\"call_id\":\"bench-%u@gw\",\"from_tag\":\"f%u\","
	         "\"to_tag\":\"t%u\",\"mailbox_uid\":\"%s\",\"extension\":\"1001\","
	         "\"dialplan\":\"P\",\"mailbox_name\":\"Bob Box\",\"mailbox_email\":"
	         "\"bob@example.com\",\"caller\":\"+4930123\",\"caller_name\":\"Alice\","
	         "\"anonymous\":false,\"reason\":\"busy\",\"security_mode\":\"secured\","
	         "\"transport\":\"tls\",\"srtp_suite\":\"AES_CM_128_HMAC_SHA1_80\","
	         "\"gateway\":\"gw1\",\"start_ms\":1767225600000,\"test\":false}",
	         id, i, i, i, UID);
}

int main(int argc, char **argv)
{
	unsigned n = 200, secs = 60;
	bool build_only = false;
	enum om_audio_format fmt = OM_AUDIO_WAV;
	char dir[256] = "", path[512];
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--build"))
			build_only = true;
		else if (!strcmp(argv[i], "-n") && i + 1 < argc)
			n = (unsigned)strtoul(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "-s") && i + 1 < argc)
			secs = (unsigned)strtoul(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "-f") && i + 1 < argc) {
			if (om_audio_format_parse(argv[++i], &fmt)) {
				fprintf(stderr, "unknown format %s\n", argv[i]);
				return 2;
			}
		} else if (!strcmp(argv[i], "-d") && i + 1 < argc)
			snprintf(dir, sizeof(dir), "%s/om-bench-msg-XXXXXX", argv[++i]);
		else {
			fprintf(stderr,
			        "usage: %s [--build] [-n N] [-s SECONDS] [-f wav|mp3|opus] "
			        "[-d DIR]\n",
			        argv[0]);
			return 2;
		}
	}
	if (n == 0 || n > 100000 || secs == 0 || secs > 3600) {
		fprintf(stderr, "N 1..100000, SECONDS 1..3600\n");
		return 2;
	}
	size_t samples = (size_t)secs * 8000;
	int16_t *pcm = make_pcm(samples);
	if (!pcm)
		return 1;
	struct om_spool_meta meta;
	char err[256], js[2048];
	meta_json(js, sizeof(js), "m0", 0);
	if (om_spool_meta_parse(js, strlen(js), NULL, 0, &meta, err, sizeof(err))) {
		fprintf(stderr, "meta: %s\n", err);
		return 1;
	}
	if (!dir[0])
		snprintf(dir, sizeof(dir), "/tmp/om-bench-msg-XXXXXX");
	if (!build_only) {
		if (!mkdtemp(dir)) {
			perror(dir);
			return 1;
		}
		snprintf(path, sizeof(path), "%s/spool", dir);
		mkdir(path, 0700);
		for (unsigned i = 0; i < n; i++) {
			char id[32];
			snprintf(id, sizeof(id), "m%u", i);
			meta_json(js, sizeof(js), id, i);
			snprintf(path, sizeof(path), "%s/spool/%s.json", dir, id);
			int rc = write_file(path, js, strlen(js));
			snprintf(path, sizeof(path), "%s/spool/%s.end", dir, id);
			const char *end = "{\"end_ms\":1767225660000,\"end_reason\":\"hangup\"}";
			rc = rc ? rc : write_file(path, end, strlen(end));
			snprintf(path, sizeof(path), "%s/spool/%s.raw", dir, id);
			rc = rc ? rc : write_file(path, pcm, samples * 2);
			if (rc) {
				fprintf(stderr, "%s: %s\n", path, strerror(rc));
				return 1;
			}
		}
	}
	uint64_t bytes = 0;
	double t0 = now_s(), c0 = cpu_s();
	for (unsigned i = 0; i < n; i++) {
		if (build_only) {
			struct om_buf audio, msg;
			struct om_message_opts mo = { .fqdn = "um.example.com",
				                      .format = fmt,
				                      .samples = samples };
			om_buf_init(&audio);
			om_buf_init(&msg);
			if (om_audio_encode(fmt, pcm, samples, &audio, err, sizeof(err)) ||
			    om_message_build(&meta, &mo, audio.p, audio.len, &msg)) {
				fprintf(stderr, "build failed: %s\n", err);
				return 1;
			}
			bytes += msg.len;
			om_buf_free(&audio);
			om_buf_free(&msg);
		} else {
			struct om_delivery_opts o = { .data_dir = dir,
				                      .fqdn = "um.example.com",
				                      .format = fmt };
			struct om_delivery_result r;
			char id[32];
			snprintf(id, sizeof(id), "m%u", i);
			int rc = om_delivery_deliver(&o, id, &r);
			if (rc) {
				fprintf(stderr, "deliver %s: %s\n", id, r.error);
				return 1;
			}
		}
	}
	double wall = now_s() - t0, cpu = cpu_s() - c0;
	if (!build_only) { /* the messages' sizes, after the clock stopped */
		struct om_maildir_msg *l = NULL;
		size_t k = 0;
		snprintf(path, sizeof(path), "%s/mail/%s", dir, UID);
		if (om_maildir_list(path, &l, &k) || k != n) {
			fprintf(stderr, "%zu messages in %s, expected %u\n", k, path, n);
			return 1;
		}
		for (size_t i = 0; i < k; i++) {
			struct stat st;
			if (stat(l[i].file, &st) == 0)
				bytes += (uint64_t)st.st_size;
		}
		om_free(l);
	}
	printf("%s %u x %u s %s: %.0f us/message wall, %.0f us/message CPU, %.1f MB/s "
	       "(message bytes per wall second)\n",
	       build_only ? "build" : "deliver", n, secs, om_audio_format_name(fmt), wall * 1e6 / n,
	       cpu * 1e6 / n, (double)bytes / wall / 1e6);
	if (!build_only)
		nftw(dir, rm_h, 16, FTW_DEPTH | FTW_PHYS);
	om_free(pcm);
	return 0;
}
