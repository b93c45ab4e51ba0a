/* test_delivery.c — the spool's metadata, the MIME message (headers that
 * no caller can forge), the audio (decoded and compared), the Maildir
 * (0600/0700, never twice), one delivery end to end (normal, interrupted,
 * empty, test call, unusable), greetings, and the engine's retry. */
#include "ut.h"
#include "delivery/delivery.h"
#include "core/str.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <sndfile.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

static char dir[64];

static void fresh_dir(void)
{
	char cmd[128];
	if (dir[0]) {
		snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
		if (system(cmd) != 0)
			fprintf(stderr, "cleanup failed\n");
	}
	snprintf(dir, sizeof(dir), "/tmp/om-ut-dlv-XXXXXX");
	if (!mkdtemp(dir))
		abort();
	snprintf(cmd, sizeof(cmd), "%s/spool", dir);
	mkdir(cmd, 0700);
}

static void put(const char *name, const void *data, size_t len)
{
	char path[256];
	snprintf(path, sizeof(path), "%s/spool/%s", dir, name);
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(data, 1, len, f) != len)
		abort();
	fclose(f);
}

static const char *UID = "0123456789abcdef0123456789abcdef";

static void put_meta(const char *id, const char *extra)
{
	char j[2048];
	int n =
	    snprintf(j, sizeof(j),
	             "{\"version\":1,\"id\":\"%s\",\"call_id\":\"call-%s@gw\",\"from_tag\":\"f1\","
	             "\"to_tag\":\"t1\",\"mailbox_uid\":\"%s\",\"extension\":\"1001\","
	             "\"dialplan\":\"P\",\"mailbox_name\":\"Bob Box\",\"mailbox_email\":"
	             "\"bob@example.com\",\"caller\":\"+4930123\",\"caller_name\":\"Alice\","
	             "\"anonymous\":false,\"reason\":\"busy\",\"security_mode\":\"secured\","
	             "\"transport\":\"tls\",\"srtp_suite\":\"AES_CM_128_HMAC_SHA1_80\","
	             "\"gateway\":\"gw1\",\"start_ms\":1767225600000,\"test\":false%s}",
	             id, id, UID, extra ? extra : "");
	char name[160];
	snprintf(name, sizeof(name), "%s.json", id);
	put(name, j, (size_t)n);
}

/* n samples of a tone at f Hz, amplitude 8000 */
static int16_t *tone(size_t n, double f)
{
	int16_t *p = malloc(n * 2 + 2);
	for (size_t i = 0; i < n; i++)
		p[i] = (int16_t)(8000 * sin(2 * M_PI * f * (double)i / 8000.0));
	return p;
}

static void put_audio(const char *id, size_t n, double f, bool end)
{
	char name[160];
	int16_t *p = tone(n, f);
	snprintf(name, sizeof(name), "%s.raw", id);
	put(name, p, n * 2);
	free(p);
	if (end) {
		snprintf(name, sizeof(name), "%s.end", id);
		const char *e = "{\"end_ms\":1767225605000,\"end_reason\":\"hangup\",\"bytes\":1,"
		                "\"voiced_ms\":1}";
		put(name, e, strlen(e));
	}
}

/* spool/<id>.<ext> exists */
static bool in_spool(const char *id, const char *ext)
{
	char path[256];
	snprintf(path, sizeof(path), "%s/spool/%s.%s", dir, id, ext);
	return access(path, F_OK) == 0;
}

static int count_files(const char *sub)
{
	char path[256];
	int n = 0;
	snprintf(path, sizeof(path), "%s/mail/%s/%s", dir, UID, sub);
	DIR *d = opendir(path);
	if (!d)
		return 0;
	for (struct dirent *e; (e = readdir(d));)
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

/* The one message in new/, read whole. */
static char *read_message(char *path_out, size_t len)
{
	char path[256];
	snprintf(path, sizeof(path), "%s/mail/%s/new", dir, UID);
	DIR *d = opendir(path);
	char *text = NULL;
	for (struct dirent *e; d && (e = readdir(d));) {
		if (e->d_name[0] == '.')
			continue;
		if (snprintf(path_out, len, "%s/mail/%s/new/%s", dir, UID, e->d_name) >= (int)len)
			continue;
		FILE *f = fopen(path_out, "rb");
		text = calloc(1, 8 << 20);
		size_t n = fread(text, 1, (8 << 20) - 1, f);
		text[n] = 0;
		fclose(f);
	}
	if (d)
		closedir(d);
	return text;
}

/* ---------------------------------------------------- metadata */

UT_TEST(meta_parse)
{
	struct om_spool_meta m;
	char err[256];
	const char *good = "{\"version\":1,\"id\":\"c1\",\"mailbox_uid\":\"ab12\",\"start_ms\":5,"
	                   "\"caller\":\"123\",\"anonymous\":true,\"test\":false}";
	UT_EQ_INT(0, om_spool_meta_parse(good, strlen(good), NULL, 0, &m, err, sizeof(err)));
	UT_EQ_STR("c1", m.id);
	UT_EQ_STR("123", m.caller);
	UT_TRUE(m.anonymous && !m.ended);
	const char *end = "{\"end_ms\":9,\"end_reason\":\"dtmf\"}";
	UT_EQ_INT(0,
	          om_spool_meta_parse(good, strlen(good), end, strlen(end), &m, err, sizeof(err)));
	UT_TRUE(m.ended);
	UT_EQ_STR("dtmf", m.end_reason);
	static const struct {
		const char *json, *why;
	} bad[] = {
		{ "{\"id\":\"c1\",\"mailbox_uid\":\"ab\",\"start_ms\":1}", "\"version\"" },
		{ "{\"version\":2,\"id\":\"c1\",\"mailbox_uid\":\"ab\",\"start_ms\":1}",
		  "version 2" },
		{ "{\"version\":1,\"id\":\"../x\",\"mailbox_uid\":\"ab\",\"start_ms\":1}",
		  "\"id\"" },
		{ "{\"version\":1,\"id\":\".x\",\"mailbox_uid\":\"ab\",\"start_ms\":1}", "\"id\"" },
		{ "{\"version\":1,\"id\":\"x\",\"mailbox_uid\":\"../../etc\",\"start_ms\":1}",
		  "mailbox_uid" },
		{ "{\"version\":1,\"id\":\"x\",\"mailbox_uid\":\"ab\"}", "start_ms" },
		{ "{\"version\":1,\"id\":\"x\",\"mailbox_uid\":\"ab\",\"start_ms\":1,\"caller\":5}",
		  "\"caller\" is not a string" },
		{ "{\"version\":1,\"id\":\"x\",\"id\":\"y\",\"mailbox_uid\":\"ab\",\"start_ms\":1}",
		  "duplicate" },
		{ "[1,2]", "not a JSON object" },
		{ "{\"version\":1,", "metadata" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = 0;
		if (om_spool_meta_parse(bad[i].json, strlen(bad[i].json), NULL, 0, &m, err,
		                        sizeof(err)) != EINVAL)
			UT_FAIL("accepted %s", bad[i].json);
		if (!strstr(err, bad[i].why))
			UT_FAIL("%s: \"%s\" lacks \"%s\"", bad[i].json, err, bad[i].why);
	}
	/* a long caller name is cut at a character boundary */
	char j[1024] = "{\"version\":1,\"id\":\"x\",\"mailbox_uid\":\"ab\",\"start_ms\":1,"
	               "\"caller_name\":\"";
	for (int i = 0; i < 100; i++)
		strcat(j, "\xc3\xa9"); /* é */
	strcat(j, "\"}");
	UT_EQ_INT(0, om_spool_meta_parse(j, strlen(j), NULL, 0, &m, err, sizeof(err)));
	UT_EQ_INT(128, strlen(m.caller_name));
	UT_TRUE(((unsigned char)m.caller_name[127] & 0xc0) == 0x80);
	/* a NUL in a caller's text is dropped, never the message; in a name
	 * that becomes a file name it is refused */
	const char *nul = "{\"version\":1,\"id\":\"x\",\"mailbox_uid\":\"ab\",\"start_ms\":1,"
	                  "\"caller_name\":\"A\\u0000B\"}";
	UT_EQ_INT(0, om_spool_meta_parse(nul, strlen(nul), NULL, 0, &m, err, sizeof(err)));
	UT_EQ_STR("AB", m.caller_name);
	static const struct {
		const char *json, *why;
	} bad2[] = {
		{ "{\"version\":1,\"id\":\"x\\u0000y\",\"mailbox_uid\":\"ab\",\"start_ms\":1}",
		  "\"id\" holds a NUL" },
		{ "{\"version\":1,\"id\":\"x\",\"mailbox_uid\":\"ab\\u0000cd\",\"start_ms\":1}",
		  "\"mailbox_uid\" holds a NUL" },
		{ "{\"version\":1,\"id\":\"x\",\"mailbox_uid\":\"ab\",\"start_ms\":1e300}",
		  "\"start_ms\" is out of range" },
		{ "{\"version\":1,\"id\":\"x\",\"mailbox_uid\":\"ab\",\"start_ms\":-1e300}",
		  "\"start_ms\" is out of range" },
		{ "{\"version\":1,\"id\":\"x\",\"mailbox_uid\":\"ab\",\"start_ms\":253402300800000}",
		  "year 9999" },
	};
	for (size_t i = 0; i < sizeof(bad2) / sizeof(bad2[0]); i++) {
		err[0] = 0;
		if (om_spool_meta_parse(bad2[i].json, strlen(bad2[i].json), NULL, 0, &m, err,
		                        sizeof(err)) != EINVAL)
			UT_FAIL("accepted %s", bad2[i].json);
		if (!strstr(err, bad2[i].why))
			UT_FAIL("%s: \"%s\" lacks \"%s\"", bad2[i].json, err, bad2[i].why);
	}
	/* an end marker that cannot be used leaves a usable spool, taken as
	 * interrupted: the recording is never lost to it */
	static const char *const bad_ends[] = { "{", "[1]", "{\"end_ms\":\"soon\"}",
		                                "{\"end_ms\":1e300}", "{\"end_reason\":5}" };
	for (size_t i = 0; i < sizeof(bad_ends) / sizeof(bad_ends[0]); i++) {
		UT_EQ_INT(0, om_spool_meta_parse(good, strlen(good), bad_ends[i],
		                                 strlen(bad_ends[i]), &m, err, sizeof(err)));
		UT_TRUE(!m.ended && m.end_unusable && !m.end_reason[0]);
		UT_EQ_STR("c1", m.id);
	}
	/* test calls need no mailbox */
	const char *t = "{\"version\":1,\"id\":\"x\",\"start_ms\":1,\"test\":true}";
	UT_EQ_INT(0, om_spool_meta_parse(t, strlen(t), NULL, 0, &m, err, sizeof(err)));
	UT_TRUE(m.test);
}

static int parse_once(void *arg)
{
	struct om_spool_meta m;
	char err[256];
	const char *j = arg;
	return om_spool_meta_parse(j, strlen(j), "{\"end_ms\":1}", 12, &m, err, sizeof(err));
}

UT_TEST(meta_oom_sweep)
{
	UT_TRUE(ut_oom_sweep(parse_once,
	                     "{\"version\":1,\"id\":\"c1\",\"mailbox_uid\":\"ab12\",\"start_ms\":5,"
	                     "\"caller\":\"123\",\"caller_name\":\"x\"}") > 3);
}

/* ---------------------------------------------------- message */

static struct om_spool_meta base_meta(void)
{
	struct om_spool_meta m;
	memset(&m, 0, sizeof(m));
	strcpy(m.id, "s1");
	strcpy(m.call_id, "abc@gw");
	strcpy(m.from_tag, "f");
	strcpy(m.to_tag, "t");
	strcpy(m.mailbox_uid, UID);
	strcpy(m.extension, "1001");
	strcpy(m.dialplan, "P");
	strcpy(m.caller, "+4930123");
	strcpy(m.caller_name, "Alice");
	strcpy(m.security_mode, "unsecured");
	strcpy(m.transport, "tcp");
	m.start_ms = 1767225600000;
	return m;
}

static char *build(const struct om_spool_meta *m, bool recovered, size_t audio_len)
{
	static char text[65536];
	struct om_buf b;
	struct om_message_opts o = { "um.example.com", OM_AUDIO_WAV, recovered, 8000 };
	static const char audio[16] = "RIFFabcdWAVEfmt ";
	om_buf_init(&b);
	UT_EQ_INT(0, om_message_build(m, &o, audio, audio_len, &b));
	snprintf(text, sizeof(text), "%s", om_buf_cstr(&b));
	om_buf_free(&b);
	return text;
}

/* The header block only. */
static const char *headers_of(const char *msg, char *out, size_t len)
{
	const char *e = strstr(msg, "\n\n");
	snprintf(out, len, "%.*s", e ? (int)(e - msg + 1) : (int)strlen(msg), msg);
	return out;
}

UT_TEST(message_headers)
{
	struct om_spool_meta m = base_meta();
	char h[8192];
	const char *t = build(&m, false, 16);
	headers_of(t, h, sizeof(h));
	UT_TRUE(strstr(h, "\nFrom: \"Alice (+4930123)\" <voicemail@um.example.com>\n") != NULL);
	UT_TRUE(strstr(h, "\nTo: \"Mailbox 1001\":;\n") != NULL); /* no e-mail: a group */
	UT_TRUE(strstr(h, "\nSubject: Voice message from Alice (+4930123) (0:01)\n") != NULL);
	UT_TRUE(strstr(h, "\nX-Openum-Caller: +4930123\n") != NULL);
	UT_TRUE(strstr(h, "\nX-Openum-Extension: 1001\n") != NULL);
	UT_TRUE(strstr(h, "\nX-Openum-Security-Mode: unsecured\n") != NULL);
	UT_TRUE(strstr(h, "\nMIME-Version: 1.0\n") != NULL);
	UT_TRUE(strstr(h, "X-Openum-Recovered") == NULL);
	UT_TRUE(strstr(t, "Content-Type: audio/wav; name=\"voicemail-") != NULL);
	UT_TRUE(strstr(t, "UklGRmFiY2RXQVZFZm10IA==") != NULL); /* the audio, base64 */
	/* the Message-ID comes from Call-ID and tags: the same call, the same id */
	char key[33], key2[33];
	UT_EQ_INT(0, om_message_key(&m, key));
	char want[128];
	snprintf(want, sizeof(want), "\nMessage-ID: <%s.voicemail@um.example.com>\n", key);
	UT_TRUE(strstr(h, want) != NULL);
	struct om_spool_meta m2 = m;
	strcpy(m2.id, "another-spool");
	UT_EQ_INT(0, om_message_key(&m2, key2));
	UT_EQ_STR(key, key2);
	strcpy(m2.to_tag, "t2");
	UT_EQ_INT(0, om_message_key(&m2, key2));
	UT_TRUE(strcmp(key, key2) != 0);
	/* with an e-mail, anonymous, recovered */
	strcpy(m.mailbox_email, "bob@example.com");
	strcpy(m.mailbox_name, "Bob \"B\" Box");
	m.anonymous = true;
	t = build(&m, true, 0);
	headers_of(t, h, sizeof(h));
	UT_TRUE(strstr(h, "\nTo: \"Bob \\\"B\\\" Box\" <bob@example.com>\n") != NULL);
	UT_TRUE(strstr(h, "\nFrom: \"Anonymous\" <voicemail@") != NULL);
	UT_TRUE(strstr(h, "\nX-Openum-Caller: anonymous\n") != NULL);
	UT_TRUE(strstr(h, "\nX-Openum-Recovered: yes\n") != NULL);
	UT_TRUE(strstr(h, "Subject: [recovered] Voice message from Anonymous") != NULL);
	UT_TRUE(strstr(t, "Recovered after an interruption") != NULL);
	UT_TRUE(strstr(t, "No audio was recorded") != NULL);
	UT_TRUE(strstr(t, "Content-Type: audio/") == NULL);
}

/* A caller name or number is the caller's text: it can never start a
 * header field of its own, nor hide in a quoted-string. */
UT_TEST(message_header_injection)
{
	struct om_spool_meta m = base_meta();
	char h[8192];
	strcpy(m.caller_name, "Eve\r\nBcc: victim@example.com\r\n\r\nfake body");
	strcpy(m.caller, "1\nX-Spam: no");
	strcpy(m.mailbox_email, "x@y>\nBcc: z@w");
	const char *t = build(&m, false, 16);
	headers_of(t, h, sizeof(h));
	UT_TRUE(strstr(t, "\nBcc:") == NULL);
	UT_TRUE(strstr(t, "\nX-Spam:") == NULL);
	/* the header block ends where openum ends it; the caller's text stays
	 * inside the fields that carry it */
	UT_TRUE(strncmp(t + strlen(h), "\nThis is a voice message in MIME format.\n", 41) == 0);
	UT_TRUE(strstr(h, "\nX-Openum-Caller-Name: Eve Bcc: victim@example.com fake body\n") !=
	        NULL);
	/* every header line is a field or a continuation */
	for (const char *l = h; *l; l = strchr(l, '\n') + 1) {
		if (*l == ' ' || *l == '\t')
			continue;
		const char *colon = strchr(l, ':'), *nl = strchr(l, '\n');
		if (!nl)
			break;
		UT_TRUE(colon && colon < nl);
		for (const char *c = l; c < colon; c++)
			UT_TRUE(*c > 32 && *c < 127);
	}
	/* the bad e-mail is not used: To is the mailbox's name */
	UT_TRUE(strstr(h, "\nTo: \"Mailbox 1001\":;\n") != NULL);
}

/* RFC 5322 §2.1.1: lines within 78 characters, also for long ASCII text
 * without spaces (a caller number of 128 digits, a name of 128 letters):
 * such text becomes encoded-words, which fold. */
UT_TEST(message_header_lines_within_78)
{
	struct om_spool_meta m = base_meta();
	char h[16384];
	memset(m.caller_name, 'A', 128);
	m.caller_name[128] = '\0';
	memset(m.caller, '9', 128);
	m.caller[128] = '\0';
	memset(m.mailbox_name, 'M', 100);
	m.mailbox_name[100] = '\0';
	memset(m.extension, '1', 32);
	m.extension[32] = '\0';
	const char *t = build(&m, false, 16);
	headers_of(t, h, sizeof(h));
	for (const char *l = h; *l;) {
		const char *nl = strchr(l, '\n');
		if (!nl)
			break;
		if (nl - l > 78)
			UT_FAIL("header line of %d characters: %.40s...", (int)(nl - l), l);
		l = nl + 1;
	}
	/* short ASCII text stays readable */
	m = base_meta();
	strcpy(m.caller_name, "Alice Example With A Longer Name");
	t = build(&m, false, 16);
	headers_of(t, h, sizeof(h));
	UT_TRUE(strstr(h, "\nFrom: \"Alice Example With A Longer Name (+4930123)\" "
	                  "<voicemail@um.example.com>\n") != NULL);
}

UT_TEST(message_non_ascii)
{
	struct om_spool_meta m = base_meta();
	char h[8192];
	strcpy(m.caller_name, "J\xc3\xbcrgen M\xc3\xbcller-L\xc3\xbc"
	                      "denscheid aus dem sch\xc3\xb6nen Ort am See");
	const char *t = build(&m, false, 16);
	headers_of(t, h, sizeof(h));
	UT_TRUE(strstr(h, "\nFrom: =?UTF-8?B?") != NULL);
	UT_TRUE(strstr(h, "\nX-Openum-Caller-Name: =?UTF-8?B?") != NULL);
	/* no raw 8-bit byte in the header, no line longer than 78 */
	size_t col = 0;
	for (const char *p = h; *p; p++) {
		UT_TRUE((unsigned char)*p < 0x80);
		col = *p == '\n' ? 0 : col + 1;
		UT_TRUE(col <= 78);
	}
	/* the text part is quoted-printable */
	UT_TRUE(strstr(t, "J=C3=BCrgen") != NULL);
}

/* ---------------------------------------------------- audio */

/* Decodes a file image with libsndfile: mono samples at 8 kHz. */
static size_t decode(const void *data, size_t len, int16_t **out, int *rate)
{
	char path[] = "/tmp/om-ut-audio-XXXXXX";
	int fd = mkstemp(path);
	if (write(fd, data, len) != (ssize_t)len)
		abort();
	close(fd);
	SF_INFO info = { 0 };
	SNDFILE *sf = sf_open(path, SFM_READ, &info);
	unlink(path);
	if (!sf)
		return 0;
	*rate = info.samplerate;
	int16_t *p = calloc((size_t)info.frames + 48000, 2 * (size_t)info.channels);
	sf_count_t n = sf_readf_short(sf, p, info.frames + 48000);
	sf_close(sf);
	*out = p;
	return (size_t)n;
}

/* The strongest frequency (Hz) of 8 kHz samples, by a plain DFT at 10 Hz
 * steps over 300-3400 Hz. */
static double dominant(const int16_t *p, size_t n)
{
	double best = 0, bestf = 0;
	if (n > 8000)
		n = 8000;
	for (double f = 300; f <= 3400; f += 10) {
		double re = 0, im = 0;
		for (size_t i = 0; i < n; i++) {
			re += p[i] * cos(2 * M_PI * f * (double)i / 8000.0);
			im += p[i] * sin(2 * M_PI * f * (double)i / 8000.0);
		}
		if (re * re + im * im > best) {
			best = re * re + im * im;
			bestf = f;
		}
	}
	return bestf;
}

UT_TEST(audio_formats_decode_back)
{
	size_t n = 3 * 8000;
	int16_t *src = tone(n, 1000);
	for (int f = 0; f < 3; f++) {
		struct om_buf b;
		char err[256];
		om_buf_init(&b);
		UT_EQ_INT(0, om_audio_format_check((enum om_audio_format)f, err, sizeof(err)));
		UT_EQ_INT(0,
		          om_audio_encode((enum om_audio_format)f, src, n, &b, err, sizeof(err)));
		int16_t *pcm = NULL;
		int rate = 0;
		size_t got = decode(b.p, b.len, &pcm, &rate);
		om_buf_free(&b);
		if (!got)
			UT_FAIL("%s: does not decode",
			        om_audio_format_name((enum om_audio_format)f));
		/* Opus decodes at 48 kHz: compare durations in ms */
		double ms = 1000.0 * (double)got / rate;
		if (fabs(ms - 3000) > 100)
			UT_FAIL("%s: %.0f ms, expected 3000",
			        om_audio_format_name((enum om_audio_format)f), ms);
		if (rate == 8000) {
			double fr = dominant(pcm + 4000, got - 4000);
			if (fabs(fr - 1000) > 20)
				UT_FAIL("%s: %.0f Hz",
				        om_audio_format_name((enum om_audio_format)f), fr);
		}
		if (f == OM_AUDIO_WAV)
			UT_EQ_MEM(src, pcm, n * 2); /* PCM16: bit-exact */
		free(pcm);
	}
	/* no samples: still a valid (empty) WAV */
	struct om_buf b;
	char err[256];
	om_buf_init(&b);
	UT_EQ_INT(0, om_audio_encode(OM_AUDIO_WAV, src, 0, &b, err, sizeof(err)));
	UT_TRUE(b.len >= 44 && !memcmp(b.p, "RIFF", 4));
	om_buf_free(&b);
	free(src);
	enum om_audio_format f;
	UT_EQ_INT(0, om_audio_format_parse("OPUS", &f));
	UT_EQ_INT(OM_AUDIO_OPUS, f);
	UT_EQ_INT(EINVAL, om_audio_format_parse("aac", &f));
}

/* ---------------------------------------------------- one delivery */

static struct om_delivery_opts opts(bool keep)
{
	return (struct om_delivery_opts){ dir, "um.example.com", OM_AUDIO_WAV, keep };
}

UT_TEST(deliver_once_and_never_twice)
{
	struct om_delivery_opts o = opts(true);
	struct om_delivery_result r;
	struct stat st;
	char path[256];
	fresh_dir();
	put_meta("c1", NULL);
	put_audio("c1", 16000, 800, true);
	UT_EQ_INT(0, om_delivery_deliver(&o, "c1", &r));
	UT_TRUE(!r.recovered && !r.duplicate && !r.skipped);
	UT_EQ_INT(16000, r.samples);
	UT_EQ_INT(1, count_files("new"));
	UT_TRUE(in_spool("c1", "done") && in_spool("c1", "raw"));
	/* modes: folders 0700, the message 0600 */
	char *msg = read_message(path, sizeof(path));
	UT_TRUE(msg != NULL);
	UT_EQ_INT(0, stat(path, &st));
	UT_EQ_INT(0600, st.st_mode & 0777);
	static const char *const dirs[] = { "", "/new", "/tmp", "/cur" };
	snprintf(path, sizeof(path), "%s/mail", dir);
	UT_EQ_INT(0, stat(path, &st));
	UT_EQ_INT(0700, st.st_mode & 0777);
	for (size_t i = 0; i < 4; i++) {
		char full[256];
		snprintf(full, sizeof(full), "%s/mail/%s%s", dir, UID, dirs[i]);
		UT_EQ_INT(0, stat(full, &st));
		UT_EQ_INT(0700, st.st_mode & 0777);
	}
	UT_TRUE(strstr(msg, "\nTo: \"Bob Box\" <bob@example.com>\n") != NULL);
	UT_TRUE(strstr(msg, "SRTP suite: AES_CM_128_HMAC_SHA1_80") != NULL);
	free(msg);
	/* again: the .done says it is delivered */
	UT_EQ_INT(0, om_delivery_deliver(&o, "c1", &r));
	UT_TRUE(r.duplicate);
	UT_EQ_INT(1, count_files("new"));
	/* the .done lost (a crash before it was written): the key in the
	 * Maildir still stops a second message, also once read (in cur/) */
	snprintf(path, sizeof(path), "%s/spool/c1.done", dir);
	unlink(path);
	char from[256], to[256];
	free(read_message(from, sizeof(from)));
	snprintf(to, sizeof(to), "%s/mail/%s/cur/%s:2,S", dir, UID, strrchr(from, '/') + 1);
	UT_EQ_INT(0, rename(from, to));
	UT_EQ_INT(0, om_delivery_deliver(&o, "c1", &r));
	UT_TRUE(r.duplicate);
	UT_EQ_INT(0, count_files("new"));
	UT_EQ_INT(1, count_files("cur"));
	/* the same call in another spool (a re-delivery): still one message */
	put_meta("c1-copy", NULL);
	char j[2048];
	snprintf(path, sizeof(path), "%s/spool/c1-copy.json", dir);
	FILE *f = fopen(path, "r");
	size_t jl = fread(j, 1, sizeof(j) - 1, f);
	fclose(f);
	j[jl] = 0;
	char *cid = strstr(j, "call-c1-copy@gw");
	memmove(cid + 7, cid + 12, strlen(cid + 12) + 1); /* the Call-ID of c1 */
	put("c1-copy.json", j, strlen(j));
	UT_EQ_INT(0, om_delivery_deliver(&o, "c1-copy", &r));
	UT_TRUE(r.duplicate);
	UT_EQ_INT(1, count_files("cur") + count_files("new"));
}

UT_TEST(deliver_interrupted_empty_test_unusable)
{
	struct om_delivery_opts o = opts(false);
	struct om_delivery_result r;
	char path[256];
	fresh_dir();
	/* no .end: recovered with what was recorded; keep_spool = 0 removes it */
	put_meta("cut", NULL);
	put_audio("cut", 12345, 600, false);
	UT_EQ_INT(0, om_delivery_deliver(&o, "cut", &r));
	UT_TRUE(r.recovered);
	UT_EQ_INT(12345, r.samples);
	UT_TRUE(!in_spool("cut", "json") && !in_spool("cut", "raw") && !in_spool("cut", "done"));
	char *msg = read_message(path, sizeof(path));
	UT_TRUE(strstr(msg, "X-Openum-Recovered: yes") != NULL);
	free(msg);
	unlink(path);
	/* an empty recording, then one byte: delivered, without audio */
	put_meta("empty", NULL);
	put("empty.raw", "", 0);
	UT_EQ_INT(0, om_delivery_deliver(&o, "empty", &r));
	UT_EQ_INT(0, r.samples);
	msg = read_message(path, sizeof(path));
	UT_TRUE(strstr(msg, "No audio was recorded") != NULL);
	UT_TRUE(strstr(msg, "Content-Type: audio/") == NULL);
	free(msg);
	unlink(path);
	put_meta("one", NULL);
	put("one.raw", "x", 1);
	UT_EQ_INT(0, om_delivery_deliver(&o, "one", &r));
	UT_EQ_INT(0, r.samples);
	msg = read_message(path, sizeof(path));
	UT_TRUE(msg != NULL);
	free(msg);
	unlink(path);
	/* no audio file at all */
	put_meta("noraw", NULL);
	UT_EQ_INT(0, om_delivery_deliver(&o, "noraw", &r));
	UT_TRUE(r.recovered);
	msg = read_message(path, sizeof(path));
	UT_TRUE(msg != NULL);
	free(msg);
	unlink(path);
	/* a test call reaches no mailbox */
	put_meta("t", ",\"extra\":1");
	{
		const char *j = "{\"version\":1,\"id\":\"t\",\"start_ms\":1,\"test\":true}";
		put("t.json", j, strlen(j));
	}
	UT_EQ_INT(0, om_delivery_deliver(&o, "t", &r));
	UT_TRUE(r.skipped);
	UT_EQ_INT(0, count_files("new"));
	/* unusable metadata: EINVAL, and the files stay */
	put("bad.json", "{\"version\":1,", 13);
	put_audio("bad", 800, 500, true);
	UT_EQ_INT(EINVAL, om_delivery_deliver(&o, "bad", &r));
	UT_TRUE(strstr(r.error, "metadata") != NULL);
	UT_TRUE(in_spool("bad", "json") && in_spool("bad", "raw"));
	/* metadata naming another spool */
	put_meta("other", NULL);
	put("mismatch.json",
	    "{\"version\":1,\"id\":\"other\",\"mailbox_uid\":\"ab\",\"start_ms\":1}", 59);
	UT_EQ_INT(EINVAL, om_delivery_deliver(&o, "mismatch", &r));
	UT_EQ_INT(ENOENT, om_delivery_deliver(&o, "nothing", &r));
	UT_EQ_INT(EINVAL, om_delivery_deliver(&o, "../x", &r));
}

/* The mailbox folder cannot be written (here: a file is in its way):
 * the delivery fails, the spool stays, and a later try succeeds. */
/* Two spools of one call delivered at the same moment by two workers (the
 * engine runs two at once): the key check and the rename are one step, so
 * the mailbox gets one message, never two. */
struct racer {
	const char *id;
	pthread_barrier_t *go;
	int rc;
	struct om_delivery_result r;
};

static void *race_h(void *arg)
{
	struct racer *x = arg;
	struct om_delivery_opts o = opts(true);
	pthread_barrier_wait(x->go);
	x->rc = om_delivery_deliver(&o, x->id, &x->r);
	return NULL;
}

UT_TEST(deliver_same_call_twice_at_once)
{
	fresh_dir();
	for (int round = 0; round < 20; round++) {
		char ida[32], idb[32], j[1024];
		snprintf(ida, sizeof(ida), "r%da", round);
		snprintf(idb, sizeof(idb), "r%db", round);
		const char *ids[2] = { ida, idb };
		for (int k = 0; k < 2; k++) {
			int n =
			    snprintf(j, sizeof(j),
			             "{\"version\":1,\"id\":\"%s\",\"call_id\":\"race-%d@gw\","
			             "\"from_tag\":\"f\",\"to_tag\":\"t\",\"mailbox_uid\":\"%s\","
			             "\"start_ms\":1767225600000}",
			             ids[k], round, UID);
			char name[64];
			snprintf(name, sizeof(name), "%s.json", ids[k]);
			put(name, j, (size_t)n);
			/* different lengths: different sizes in the Maildir names */
			put_audio(ids[k], 8000 + 800 * (size_t)k, 500, true);
		}
		pthread_barrier_t go;
		pthread_barrier_init(&go, NULL, 2);
		struct racer x[2];
		memset(x, 0, sizeof(x));
		x[0].id = ida;
		x[1].id = idb;
		x[0].go = x[1].go = &go;
		pthread_t t[2];
		for (int k = 0; k < 2; k++)
			pthread_create(&t[k], NULL, race_h, &x[k]);
		for (int k = 0; k < 2; k++)
			pthread_join(t[k], NULL);
		pthread_barrier_destroy(&go);
		UT_EQ_INT(0, x[0].rc);
		UT_EQ_INT(0, x[1].rc);
		UT_TRUE(x[0].r.duplicate != x[1].r.duplicate); /* one wrote, one found it */
		if (count_files("new") != round + 1)
			UT_FAIL("round %d: %d messages for %d calls", round, count_files("new"),
			        round + 1);
	}
	UT_EQ_INT(0, count_files("tmp"));
}

UT_TEST(deliver_fails_then_succeeds)
{
	struct om_delivery_opts o = opts(true);
	struct om_delivery_result r;
	char path[256];
	fresh_dir();
	put_meta("c2", NULL);
	put_audio("c2", 8000, 700, true);
	snprintf(path, sizeof(path), "%s/mail", dir);
	mkdir(path, 0700);
	snprintf(path, sizeof(path), "%s/mail/%s", dir, UID);
	FILE *f = fopen(path, "w");
	fclose(f);
	UT_EQ_INT(ENOTDIR, om_delivery_deliver(&o, "c2", &r));
	UT_TRUE(strstr(r.error, "mailbox folder") != NULL);
	UT_TRUE(in_spool("c2", "json") && !in_spool("c2", "done"));
	unlink(path);
	UT_EQ_INT(0, om_delivery_deliver(&o, "c2", &r));
	UT_EQ_INT(1, count_files("new"));
}

/* ---------------------------------------------------- reading the Maildir */

UT_TEST(maildir_list_and_audio)
{
	struct om_delivery_opts o = opts(true);
	struct om_delivery_result r;
	char mdir[256];
	fresh_dir();
	put_meta("a", NULL);
	put_audio("a", 24000, 440, true);
	UT_EQ_INT(0, om_delivery_deliver(&o, "a", &r));
	put_meta("b", ",\"anonymous\":true");
	{ /* anonymous: the JSON above has "anonymous":false first; write a new one */
		char j[512];
		int n = snprintf(
		    j, sizeof(j),
		    "{\"version\":1,\"id\":\"b\",\"call_id\":\"cb\",\"mailbox_uid\":\"%s\","
		    "\"extension\":\"1001\",\"caller_name\":\"M\xc3\xbcller\","
		    "\"caller\":\"555\",\"start_ms\":1767225700000}",
		    UID);
		put("b.json", j, (size_t)n);
	}
	put_audio("b", 4000, 440, false);
	UT_EQ_INT(0, om_delivery_deliver(&o, "b", &r));
	snprintf(mdir, sizeof(mdir), "%s/mail/%s", dir, UID);
	struct om_maildir_msg *v = NULL;
	size_t n = 0;
	UT_EQ_INT(0, om_maildir_list(mdir, &v, &n));
	UT_EQ_INT(2, n);
	UT_EQ_STR("+4930123", v[0].caller);
	UT_EQ_STR("Alice", v[0].caller_name);
	UT_EQ_INT(3, v[0].duration_s);
	UT_TRUE(v[0].is_new && !v[0].recovered);
	UT_EQ_INT(1767225600000, v[0].time_ms);
	UT_EQ_STR("wav", v[0].format);
	UT_EQ_INT(32, strlen(v[0].id));
	UT_EQ_STR("M\xc3\xbcller", v[1].caller_name);
	UT_TRUE(v[1].recovered);
	struct om_buf a;
	char ext[8];
	om_buf_init(&a);
	UT_EQ_INT(0, om_maildir_audio(v[0].file, &a, ext));
	UT_EQ_STR("wav", ext);
	int16_t *pcm;
	int rate;
	UT_EQ_INT(24000, decode(a.p, a.len, &pcm, &rate));
	int16_t *want = tone(24000, 440);
	UT_EQ_MEM(want, pcm, 24000 * 2);
	free(want);
	free(pcm);
	om_buf_free(&a);
	/* seen by an IMAP client: cur/ with S is saved, not new */
	char to[600];
	snprintf(to, sizeof(to), "%s/cur/%s:2,S", mdir, strrchr(v[0].file, '/') + 1);
	UT_EQ_INT(0, rename(v[0].file, to));
	om_free(v);
	UT_EQ_INT(0, om_maildir_list(mdir, &v, &n));
	UT_EQ_INT(2, n);
	UT_TRUE(!v[0].is_new && v[1].is_new);
	/* a message without audio */
	om_buf_init(&a);
	char path[256];
	snprintf(path, sizeof(path), "%s/plain", dir);
	FILE *f = fopen(path, "w");
	fputs("From: x\nSubject: y\n\nhello\n", f);
	fclose(f);
	UT_EQ_INT(ENOENT, om_maildir_audio(path, &a, ext));
	om_buf_free(&a);
	om_free(v);
}

/* ---------------------------------------------------- greetings */

static void write_wav(const char *path, int rate, int channels, double seconds, double f)
{
	SF_INFO info = { .samplerate = rate,
		         .channels = channels,
		         .format = SF_FORMAT_WAV | SF_FORMAT_PCM_16 };
	if (strstr(path, ".flac"))
		info.format = SF_FORMAT_FLAC | SF_FORMAT_PCM_16;
	if (strstr(path, ".ogg"))
		info.format = SF_FORMAT_OGG | SF_FORMAT_VORBIS;
	SNDFILE *sf = sf_open(path, SFM_WRITE, &info);
	size_t n = (size_t)(rate * seconds);
	float *p = calloc(n * (size_t)channels, sizeof(float));
	for (size_t i = 0; i < n; i++)
		for (int c = 0; c < channels; c++)
			p[i * (size_t)channels + (size_t)c] =
			    0.3f * (float)sin(2 * M_PI * f * (double)i / rate);
	sf_writef_float(sf, p, (sf_count_t)n);
	sf_close(sf);
	free(p);
}

UT_TEST(greeting_conversion)
{
	static const char *const names[] = { "g.wav", "g.flac", "g.ogg" };
	char path[256], err[512];
	fresh_dir();
	for (size_t i = 0; i < 3; i++) {
		struct om_buf b;
		unsigned ms = 0;
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		write_wav(path, 44100, 2, 2.5, 1200);
		om_buf_init(&b);
		if (om_audio_greeting_convert(path, 60, &b, &ms, err, sizeof(err)))
			UT_FAIL("%s: %s", names[i], err);
		UT_TRUE(ms >= 2450 && ms <= 2550);
		int16_t *pcm;
		int rate;
		size_t n = decode(b.p, b.len, &pcm, &rate);
		UT_EQ_INT(8000, rate);
		UT_TRUE(n >= 19600 && n <= 20400);
		double fr = dominant(pcm + 2000, n - 2000);
		if (fabs(fr - 1200) > 20)
			UT_FAIL("%s: %.0f Hz", names[i], fr);
		free(pcm);
		/* a PCM16 mono WAV */
		UT_TRUE(!memcmp(b.p, "RIFF", 4) && !memcmp(b.p + 8, "WAVE", 4));
		UT_EQ_INT(1, b.p[22]);
		om_buf_free(&b);
	}
	struct om_buf b;
	om_buf_init(&b);
	/* too long for the plan */
	snprintf(path, sizeof(path), "%s/long.wav", dir);
	write_wav(path, 8000, 1, 5, 500);
	UT_EQ_INT(EFBIG, om_audio_greeting_convert(path, 4, &b, NULL, err, sizeof(err)));
	UT_TRUE(strstr(err, "at most 4 s") != NULL);
	/* not audio */
	snprintf(path, sizeof(path), "%s/text.wav", dir);
	FILE *f = fopen(path, "w");
	fputs("this is not a recording\n", f);
	fclose(f);
	UT_EQ_INT(EINVAL, om_audio_greeting_convert(path, 60, &b, NULL, err, sizeof(err)));
	UT_TRUE(strstr(err, "not audio") != NULL);
	/* missing, a folder, a FIFO (refused at once, never waited on) */
	snprintf(path, sizeof(path), "%s/none.wav", dir);
	UT_EQ_INT(ENOENT, om_audio_greeting_convert(path, 60, &b, NULL, err, sizeof(err)));
	UT_EQ_INT(EISDIR, om_audio_greeting_convert(dir, 60, &b, NULL, err, sizeof(err)));
	snprintf(path, sizeof(path), "%s/fifo", dir);
	UT_EQ_INT(0, mkfifo(path, 0600));
	UT_EQ_INT(EINVAL, om_audio_greeting_convert(path, 60, &b, NULL, err, sizeof(err)));
	UT_TRUE(strstr(err, "FIFO") != NULL);
	UT_EQ_INT(EINVAL, om_audio_greeting_convert("/dev/zero", 60, &b, NULL, err, sizeof(err)));
	UT_EQ_INT(0, b.len);
	om_buf_free(&b);
}

/* ---------------------------------------------------- the engine */

struct eng_test {
	struct om_delivery *d;
	int calls, last_rc;
	bool fixed, closed;
	char blocker[256];
};

static void on_closed(void *arg)
{
	((struct eng_test *)arg)->closed = true;
}

static void on_done(const char *id, int rc, const struct om_delivery_result *r, void *arg)
{
	struct eng_test *t = arg;
	t->calls++;
	t->last_rc = rc;
	if (rc && !t->fixed) { /* the administrator fixes the mailbox folder */
		unlink(t->blocker);
		t->fixed = true;
	}
}

static void on_recovered_done(uv_timer_t *tm)
{
	struct eng_test *t = tm->data;
	struct om_delivery_stats st;
	om_delivery_stats(t->d, &st);
	if (st.delivered == 3 && !st.queued && !st.running && !st.retrying) {
		uv_timer_stop(tm);
		uv_close((uv_handle_t *)tm, NULL);
		om_delivery_close(t->d, on_closed, t);
	}
}

UT_TEST(engine_recovers_retries_delivers)
{
	uv_loop_t loop;
	uv_timer_t watch;
	struct eng_test t = { 0 };
	char err[256], path[256];
	fresh_dir();
	/* at start: one complete spool, one interrupted, one delivered before */
	put_meta("done-before", NULL);
	put("done-before.done", "{}", 2);
	put_meta("complete", NULL);
	put_audio("complete", 8000, 900, true);
	put_meta("cut", NULL);
	{
		char j[1024];
		snprintf(path, sizeof(path), "%s/spool/cut.json", dir);
		FILE *f = fopen(path, "r");
		size_t jl = fread(j, 1, sizeof(j) - 1, f);
		fclose(f);
		j[jl] = 0;
		char *t1 = strstr(j, "\"t1\"");
		t1[2] = '9'; /* another call */
		put("cut.json", j, jl);
	}
	put_audio("cut", 4000, 900, false);
	UT_EQ_INT(0, uv_loop_init(&loop));
	struct om_delivery_cfg cfg = { .data_dir = dir,
		                       .fqdn = "um.example.com",
		                       .format = OM_AUDIO_WAV,
		                       .keep_days = 30,
		                       .keep_spool = true,
		                       .min_free_mb = 0,
		                       .retry_min_s = 1,
		                       .retry_max_s = 2 };
	UT_EQ_INT(0, om_delivery_new(&loop, &cfg, &t.d, err, sizeof(err)));
	UT_TRUE(om_delivery_room(t.d));
	UT_EQ_INT(2, om_delivery_recover(t.d));
	/* a call's spool whose mailbox folder is blocked at first */
	{
		char j[1024];
		snprintf(path, sizeof(path), "%s/spool/complete.json", dir);
		FILE *f = fopen(path, "r");
		size_t jl = fread(j, 1, sizeof(j) - 1, f);
		fclose(f);
		j[jl] = 0;
		char *u = strstr(j, UID);
		u[0] = 'f'; /* another mailbox */
		char *id = strstr(j, "\"complete\"");
		memcpy(id, "\"lateone\" ", 10);
		put("lateone.json", j, jl);
	}
	put_audio("lateone", 8000, 900, true);
	snprintf(path, sizeof(path), "%s/mail", dir);
	mkdir(path, 0700);
	snprintf(t.blocker, sizeof(t.blocker), "%s/mail/f%s", dir, UID + 1);
	FILE *f = fopen(t.blocker, "w");
	fclose(f);
	UT_EQ_INT(0, om_delivery_submit(t.d, "lateone", on_done, &t));
	UT_EQ_INT(EINVAL, om_delivery_submit(t.d, "../evil", on_done, &t));
	uv_timer_init(&loop, &watch);
	watch.data = &t;
	uv_timer_start(&watch, on_recovered_done, 50, 50);
	/* bounded: the retry comes after 1 s */
	for (int i = 0; i < 400 && !t.closed; i++)
		uv_run(&loop, UV_RUN_ONCE);
	UT_TRUE(t.closed);
	UT_EQ_INT(2, t.calls); /* the first failure, then the success */
	UT_EQ_INT(0, t.last_rc);
	UT_EQ_INT(2, count_files("new")); /* complete + cut in mailbox UID */
	UT_TRUE(in_spool("complete", "done") && in_spool("cut", "done") &&
	        in_spool("lateone", "done"));
	uv_run(&loop, UV_RUN_DEFAULT);
	UT_EQ_INT(0, uv_loop_close(&loop));
	/* no room when min_free_mb cannot be met */
	UT_EQ_INT(0, uv_loop_init(&loop));
	cfg.min_free_mb = UINT64_MAX / 2;
	UT_EQ_INT(0, om_delivery_new(&loop, &cfg, &t.d, err, sizeof(err)));
	UT_TRUE(!om_delivery_room(t.d));
	t.closed = false;
	om_delivery_close(t.d, on_closed, &t);
	uv_run(&loop, UV_RUN_DEFAULT);
	UT_TRUE(t.closed);
	UT_EQ_INT(0, uv_loop_close(&loop));
}

/* ---------------------------------------------------- golden bytes */

/* FNV-1a, 64 bits: a fingerprint of a whole message, to pin its bytes */
static uint64_t fnv1a(const void *data, size_t len)
{
	const unsigned char *p = data;
	uint64_t h = 0xcbf29ce484222325ULL;
	for (size_t i = 0; i < len; i++)
		h = (h ^ p[i]) * 0x100000001b3ULL;
	return h;
}

/* Integer-only audio (no libm), the same on every machine. */
static void put_golden_audio(const char *id, size_t bytes)
{
	char name[160];
	unsigned char *p = malloc(bytes + 1);
	uint32_t r = 7;
	for (size_t i = 0; i < bytes; i++) {
		r = r * 1103515245u + 12345u;
		p[i] = (unsigned char)(r >> 16);
	}
	snprintf(name, sizeof(name), "%s.raw", id);
	put(name, p, bytes);
	free(p);
}

/* The delivered message, byte for byte, for audio of every length modulo
 * the base64 group (3) and line (57 bytes): the way a message is built
 * and written may change, what is delivered may not. The fingerprints
 * were taken from the first implementation (message built whole in
 * memory, audio through libsndfile). The in-memory builder with the audio
 * encoded by libsndfile must give the same bytes as the delivery. */
UT_TEST(deliver_golden_bytes)
{
	static const struct {
		long raw; /* spool bytes; -1: no .raw file */
		bool end;
		uint64_t fnv;
		size_t len;
	} cases[] = {
		{ -1, true, 0x4d33dcbc4b136969ULL, 1109 },
		{ 1, true, 0x4d33dcbc4b136969ULL, 1109 },
		{ 2, true, 0x2cfa42f5edbf5c7bULL, 1355 },
		{ 4, false, 0xeb738a7828e7fe34ULL, 1530 },
		{ 6, true, 0xada7c3d7aa27be34ULL, 1359 },
		{ 14, true, 0x26f68a919024238fULL, 1372 },
		{ 16, true, 0xeed1a51784b80b1bULL, 1372 },
		{ 18, true, 0x52419703402da551ULL, 1376 },
		{ 16011, true, 0xfde21eb6407a75ccULL, 22980 },
		{ 16012, true, 0x1a8b39a5f3573412ULL, 22980 },
		{ 16014, false, 0x3d11a68f2f592da8ULL, 23159 },
		{ 960000, true, 0xbfacc885617b7085ULL, 1298194 }, /* 60 s */
	};
	char *old_tz = getenv("TZ") ? strdup(getenv("TZ")) : NULL;
	setenv("TZ", "UTC", 1);
	tzset();
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		struct om_delivery_opts o = opts(true);
		struct om_delivery_result r;
		char path[256];
		fresh_dir();
		put_meta("g1", NULL);
		if (cases[c].raw >= 0)
			put_golden_audio("g1", (size_t)cases[c].raw);
		if (cases[c].end) {
			const char *e = "{\"end_ms\":1767225605000,\"end_reason\":\"hangup\","
			                "\"bytes\":1,\"voiced_ms\":1}";
			put("g1.end", e, strlen(e));
		}
		UT_EQ_INT(0, om_delivery_deliver(&o, "g1", &r));
		char *text = read_message(path, sizeof(path));
		UT_TRUE(text != NULL);
		size_t len = strlen(text);
		/* the in-memory builder, audio from libsndfile, gives the same */
		{
			struct om_buf a, b;
			char err[256];
			struct om_message_opts mo = { "um.example.com", OM_AUDIO_WAV, r.recovered,
				                      r.samples };
			om_buf_init(&a);
			om_buf_init(&b);
			if (r.samples) {
				char rp[256];
				snprintf(rp, sizeof(rp), "%s/spool/g1.raw", dir);
				FILE *f = fopen(rp, "rb");
				int16_t *pcm = malloc(r.samples * 2 + 1);
				UT_TRUE(f && fread(pcm, 2, r.samples, f) == r.samples);
				fclose(f);
				UT_EQ_INT(0, om_audio_encode(OM_AUDIO_WAV, pcm, r.samples, &a, err,
				                             sizeof(err)));
				free(pcm);
			}
			UT_EQ_INT(0, om_message_build(&r.meta, &mo, a.p, a.len, &b));
			UT_EQ_INT((long long)len, (long long)b.len);
			UT_TRUE(b.len == len && memcmp(b.p, text, len) == 0);
			om_buf_free(&a);
			om_buf_free(&b);
		}
		UT_EQ_INT((long long)cases[c].len, (long long)len);
		UT_TRUE(fnv1a(text, len) == cases[c].fnv);
		free(text);
	}
	if (old_tz)
		setenv("TZ", old_tz, 1);
	else
		unsetenv("TZ");
	tzset();
	free(old_tz);
}

/* The WAV a delivery sends without libsndfile (header + the spool's
 * samples) is the file libsndfile writes. */
UT_TEST(audio_wav_header_is_libsndfiles)
{
	static const size_t ns[] = { 0, 1, 2, 3, 8000, 8001 };
	int16_t *src = tone(8001, 440);
	for (size_t i = 0; i < sizeof(ns) / sizeof(ns[0]); i++) {
		struct om_buf b;
		char err[256];
		unsigned char h[OM_AUDIO_WAV_HEADER];
		om_buf_init(&b);
		UT_EQ_INT(0, om_audio_encode(OM_AUDIO_WAV, src, ns[i], &b, err, sizeof(err)));
		UT_EQ_INT(0, om_audio_wav_header(ns[i], h));
		UT_EQ_INT((long long)(sizeof(h) + 2 * ns[i]), (long long)b.len);
		UT_EQ_MEM(h, b.p, sizeof(h));
		UT_EQ_MEM(src, b.p + sizeof(h), 2 * ns[i]);
		om_buf_free(&b);
	}
	unsigned char h[OM_AUDIO_WAV_HEADER];
	UT_EQ_INT(EFBIG, om_audio_wav_header(OM_AUDIO_WAV_SAMPLES_MAX + 1, h));
	free(src);
}

/* base64 fed in pieces of any size is base64 of the whole, in lines of 76
 * characters: the length announced, every line full but the last, and it
 * decodes back (OpenSSL's decoder, not ours). */
UT_TEST(message_b64_pieces)
{
	enum { N = 5000 };
	unsigned char *data = malloc(N);
	char *whole = malloc(N * 2), *pieces = malloc(N * 2);
	uint32_t r = 99;
	for (size_t i = 0; i < N; i++) {
		r = r * 1103515245u + 12345u;
		data[i] = (unsigned char)(r >> 16);
	}
	static const size_t lens[] = { 1, 2, 3, 56, 57, 58, 114, 1000, 4999, N };
	for (size_t l = 0; l < sizeof(lens) / sizeof(lens[0]); l++) {
		size_t n = lens[l], w = 0, pz = 0;
		struct om_message_b64 a = { .ncarry = 0 }, b = { .ncarry = 0 };
		w += om_message_b64_feed(&a, data, n, whole);
		w += om_message_b64_end(&a, whole + w);
		UT_EQ_INT((long long)om_message_b64_len(n), (long long)w);
		for (size_t off = 0, k = 0; off < n; k++) {
			size_t take = 1 + (k * 37) % 131;
			if (take > n - off)
				take = n - off;
			pz += om_message_b64_feed(&b, data + off, take, pieces + pz);
			off += take;
		}
		pz += om_message_b64_end(&b, pieces + pz);
		UT_EQ_INT((long long)w, (long long)pz);
		UT_EQ_MEM(whole, pieces, w);
		/* lines: 76 characters each, the last at most */
		size_t col = 0, lines = 0;
		for (size_t i = 0; i < w; i++) {
			if (whole[i] == '\n') {
				UT_TRUE(col > 0 && col <= 76 && col % 4 == 0);
				if (i + 1 < w)
					UT_EQ_INT(76, (long long)col);
				col = 0;
				lines++;
				continue;
			}
			col++;
		}
		UT_EQ_INT(0, (long long)col);
		UT_EQ_INT((long long)((n + 56) / 57), (long long)lines);
		/* decodes back */
		char *flat = malloc(w + 1);
		size_t fl = 0;
		for (size_t i = 0; i < w; i++)
			if (whole[i] != '\n')
				flat[fl++] = whole[i];
		unsigned char *dec = malloc(fl);
		int dl = EVP_DecodeBlock(dec, (const unsigned char *)flat, (int)fl);
		size_t pad = (fl && flat[fl - 1] == '=') + (fl > 1 && flat[fl - 2] == '=');
		UT_EQ_INT((long long)n, (long long)(dl - (int)pad));
		UT_EQ_MEM(data, dec, n);
		free(flat);
		free(dec);
	}
	free(data);
	free(whole);
	free(pieces);
}

static int short_writer_h(int fd, void *arg)
{
	(void)arg;
	return write(fd, "short", 5) == 5 ? 0 : errno;
}

static int failing_writer_h(int fd, void *arg)
{
	(void)fd;
	(void)arg;
	return ENOSPC;
}

/* A message whose writer fails, or writes another size than the name
 * announces, leaves nothing in tmp/ or new/: a later try starts clean. */
UT_TEST(maildir_writer_fails_nothing_left)
{
	char md[256];
	fresh_dir();
	UT_EQ_INT(0, om_maildir_open(dir, UID, md, sizeof(md)));
	UT_EQ_INT(EIO, om_maildir_deliver_with(md, "k1", 1767225600000, "um.example.com", 6,
	                                       short_writer_h, NULL));
	UT_EQ_INT(0, count_files("tmp"));
	UT_EQ_INT(0, count_files("new"));
	UT_EQ_INT(ENOSPC, om_maildir_deliver_with(md, "k1", 1767225600000, "um.example.com", 6,
	                                          failing_writer_h, NULL));
	UT_EQ_INT(0, count_files("tmp"));
	UT_EQ_INT(0, count_files("new"));
	UT_EQ_INT(0, om_maildir_deliver_with(md, "k1", 1767225600000, "um.example.com", 5,
	                                     short_writer_h, NULL));
	UT_EQ_INT(1, count_files("new"));
	UT_EQ_INT(EEXIST, om_maildir_deliver_with(md, "k1", 1767225600000, "um.example.com", 5,
	                                          short_writer_h, NULL));
	UT_EQ_INT(0, count_files("tmp"));
	UT_EQ_INT(1, count_files("new"));
}

UT_MAIN(UT_CASE(meta_parse), UT_CASE(meta_oom_sweep), UT_CASE(message_headers),
        UT_CASE(message_header_injection), UT_CASE(message_header_lines_within_78),
        UT_CASE(message_non_ascii), UT_CASE(audio_formats_decode_back),
        UT_CASE(deliver_once_and_never_twice), UT_CASE(deliver_interrupted_empty_test_unusable),
        UT_CASE(deliver_same_call_twice_at_once), UT_CASE(deliver_fails_then_succeeds),
        UT_CASE(maildir_list_and_audio), UT_CASE(greeting_conversion),
        UT_CASE(engine_recovers_retries_delivers), UT_CASE(deliver_golden_bytes),
        UT_CASE(audio_wav_header_is_libsndfiles), UT_CASE(message_b64_pieces),
        UT_CASE(maildir_writer_fails_nothing_left))
