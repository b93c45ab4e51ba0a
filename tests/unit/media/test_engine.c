/* test_engine.c — the media engine's control-thread interface (media.h) on
 * a real engine with its threads: parameter checks, the port range, one
 * recording at a time, prompt names, keys in memory excluded from core
 * dumps, and out-of-memory sweeps over session setup (session, recording,
 * playback, free). Packets and audio are tested against the running
 * engine in tests/component/test_media.py. */
#include "ut.h"
#include "media/media.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static uv_loop_t loop;
static struct om_media_engine *eng;
static char spool[256];
static int closed, stopped, done_called;

static void on_event(const struct om_media_event *ev, void *arg)
{
	(void)arg;
	if (ev->type == OM_MEDIA_EV_CLOSED)
		closed++;
	if (ev->type == OM_MEDIA_EV_RECORD_STOPPED)
		stopped++;
}

static void run_until(int *counter, int want)
{
	for (int i = 0; i < 2000 && *counter < want; i++) {
		uv_run(&loop, UV_RUN_NOWAIT);
		usleep(1000);
	}
}

static void engine_up(uint16_t lo, uint16_t hi)
{
	struct om_media_engine_cfg c = { 0 };
	snprintf(spool, sizeof(spool), "/tmp/om-test-engine-%d", (int)getpid());
	mkdir(spool, 0700);
	c.threads = 2;
	c.port_min = lo;
	c.port_max = hi;
	c.spool_dir = spool;
	uv_loop_init(&loop);
	if (om_media_engine_new(&loop, &c, on_event, NULL, &eng) != 0)
		UT_FAIL("engine");
}

static void on_done(void *arg)
{
	(void)arg;
	done_called = 1;
}

static void engine_down(void)
{
	done_called = 0;
	om_media_engine_close(eng, on_done, NULL);
	run_until(&done_called, 1);
	UT_TRUE(done_called);
	uv_run(&loop, UV_RUN_DEFAULT);
	UT_EQ_INT(0, uv_loop_close(&loop));
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", spool);
	(void)system(cmd);
}

static void params(struct om_media_params *p)
{
	memset(p, 0, sizeof(*p));
	struct sockaddr_in *l = (struct sockaddr_in *)&p->local;
	l->sin_family = AF_INET;
	inet_pton(AF_INET, "127.0.0.1", &l->sin_addr);
	struct sockaddr_in *r = (struct sockaddr_in *)&p->remote;
	r->sin_family = AF_INET;
	r->sin_port = htons(9);
	inet_pton(AF_INET, "127.0.0.1", &r->sin_addr);
	p->te_pt = 101;
	p->cn_pt = 13;
	snprintf(p->call_id, sizeof(p->call_id), "unit");
}

UT_TEST(bad_parameters_refused)
{
	engine_up(31000, 31099);
	struct om_media_params p;
	struct om_media_session *s;
	uint16_t port;
	params(&p);
	p.codec = 3;
	UT_EQ_INT(EINVAL, om_media_session_new(eng, &p, NULL, &s, &port));
	params(&p);
	p.ptime_ms = 25;
	UT_EQ_INT(EINVAL, om_media_session_new(eng, &p, NULL, &s, &port));
	params(&p);
	p.te_pt = 0; /* the audio pt */
	UT_EQ_INT(EINVAL, om_media_session_new(eng, &p, NULL, &s, &port));
	params(&p);
	p.local.ss_family = AF_UNIX;
	UT_EQ_INT(EAFNOSUPPORT, om_media_session_new(eng, &p, NULL, &s, &port));
	params(&p);
	p.remote.ss_family = AF_INET6; /* an IPv6 peer for an IPv4 socket */
	UT_EQ_INT(EAFNOSUPPORT, om_media_session_new(eng, &p, NULL, &s, &port));
	params(&p);
	p.srtp = true;
	p.suite = OM_SRTP_AES_CM_128_HMAC_SHA1_80;
	p.recv_key.key_len = 30;
	p.send_key.key_len = 29; /* wrong length */
	UT_EQ_INT(EINVAL, om_media_session_new(eng, &p, NULL, &s, &port));
	p.send_key.key_len = 30;
	p.send_key.mki_len = 5;
	UT_EQ_INT(EINVAL, om_media_session_new(eng, &p, NULL, &s, &port));
	p.send_key.mki_len = 4;
	UT_EQ_INT(0, om_media_session_new(eng, &p, NULL, &s, &port));
	UT_TRUE(port >= 31000 && port <= 31098 && port % 2 == 0);
	struct om_media_play it = { .kind = OM_MEDIA_PLAY_PROMPT, .name = "no-such-prompt" };
	UT_EQ_INT(ENOENT, om_media_session_play(s, &it, 1, 1));
	it.kind = OM_MEDIA_PLAY_DIGITS;
	it.digits = "12a";
	UT_EQ_INT(EINVAL, om_media_session_play(s, &it, 1, 1));
	it.kind = OM_MEDIA_PLAY_TONE;
	it.ms = 100;
	it.freq_hz = 5000;
	UT_EQ_INT(EINVAL, om_media_session_play(s, &it, 1, 1));
	struct om_media_record_opts o = { -45, 0, 0, false };
	UT_EQ_INT(EINVAL, om_media_session_record_start(s, "../x", "{}", &o));
	UT_EQ_INT(EINVAL, om_media_session_record_start(s, ".hidden", "{}", &o));
	UT_EQ_INT(0, om_media_session_record_start(s, "one", "{}", &o));
	UT_EQ_INT(EBUSY, om_media_session_record_start(s, "two", "{}", &o));
	UT_EQ_INT(EINVAL, om_media_session_dtmf_in(s, 'x', 100));
	params(&p);
	p.remote.ss_family = AF_INET6;
	UT_EQ_INT(EAFNOSUPPORT, om_media_session_modify(s, &p));
	closed = stopped = 0;
	om_media_session_free(s);
	run_until(&closed, 1);
	UT_EQ_INT(1, stopped);
	UT_EQ_INT(1, closed);
	engine_down();
}

UT_TEST(port_range_exhausted_and_reused)
{
	engine_up(31100, 31105); /* three pairs */
	struct om_media_params p;
	struct om_media_session *s[4];
	uint16_t port[4];
	params(&p);
	for (int i = 0; i < 3; i++)
		UT_EQ_INT(0, om_media_session_new(eng, &p, NULL, &s[i], &port[i]));
	UT_EQ_INT(EADDRINUSE, om_media_session_new(eng, &p, NULL, &s[3], &port[3]));
	closed = 0;
	om_media_session_free(s[1]);
	run_until(&closed, 1);
	UT_EQ_INT(0, om_media_session_new(eng, &p, NULL, &s[3], &port[3]));
	UT_EQ_INT(port[1], port[3]);
	/* rtcp-mux needs one port, still a pair is reserved */
	for (int i = 0; i < 4; i++)
		if (i != 1)
			om_media_session_free(s[i]);
	run_until(&closed, 4);
	struct om_media_engine_stats st;
	om_media_engine_stats(eng, &st);
	UT_EQ_INT(0, st.sessions);
	UT_EQ_INT(3, st.ports_free);
	engine_down();
}

UT_TEST(prompts_are_built_in)
{
	const char *const *names = om_media_prompt_names();
	struct om_media_prompts *p = NULL;
	UT_EQ_INT(0, om_media_prompts_load(NULL, NULL, NULL, &p));
	int n = 0;
	for (; names[n]; n++)
		UT_TRUE(om_media_prompts_get(p, names[n]) != NULL);
	UT_TRUE(n >= 25);
	static const char *need[] = { "beep",
		                      "digit-0",
		                      "digit-9",
		                      "leave-message",
		                      "goodbye",
		                      "enter-extension",
		                      "invalid-extension",
		                      "mailbox-unavailable",
		                      "message-recorded" };
	for (size_t i = 0; i < sizeof(need) / sizeof(need[0]); i++)
		if (!om_media_prompts_get(p, need[i]))
			UT_FAIL("prompt %s missing", need[i]);
	/* The beep is 400 ms of 1 kHz. */
	struct om_media_audio *b = om_media_prompts_get(p, "beep");
	UT_EQ_INT(3200, om_media_audio_samples(b));
	om_media_prompts_unref(p);
}

/* An administrator's file replaces a prompt (converted to 8 kHz mono); a
 * file that is no audio is reported and the built-in one stays. */
static int replaced, refused;

static void on_prompt(const char *name, const char *path, const char *error, void *arg)
{
	(void)path;
	(void)arg;
	if (error && strcmp(name, "goodbye") == 0)
		refused++;
	if (!error && strcmp(name, "beep") == 0)
		replaced++;
}

UT_TEST(administrator_prompts)
{
	char dir[256], cmd[600];
	snprintf(dir, sizeof(dir), "/tmp/om-test-prompts-%d", (int)getpid());
	mkdir(dir, 0700);
	/* 0.5 s of stereo at 44.1 kHz, written with sox. */
	snprintf(cmd, sizeof(cmd),
	         "sox -n -r 44100 -c 2 -b 16 %s/beep.wav synth 0.5 sine 700 2>/dev/null", dir);
	if (system(cmd) != 0)
		UT_FAIL("sox");
	snprintf(cmd, sizeof(cmd), "echo not audio > %s/goodbye.wav", dir);
	(void)system(cmd);
	struct om_media_prompts *p = NULL;
	UT_EQ_INT(0, om_media_prompts_load(dir, on_prompt, NULL, &p));
	UT_EQ_INT(1, replaced);
	UT_EQ_INT(1, refused);
	struct om_media_audio *b = om_media_prompts_get(p, "beep");
	size_t n = om_media_audio_samples(b);
	UT_TRUE(n >= 3990 && n <= 4010);
	UT_TRUE(om_media_audio_samples(om_media_prompts_get(p, "goodbye")) > 1000);
	om_media_prompts_unref(p);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	(void)system(cmd);
}

/* Where a master key handed to the engine is kept: every copy of it in the
 * process's heap and mappings (read through /proc/self/mem) must be in a
 * mapping marked MADV_DONTDUMP ("dd" in smaps), and there must be one. The
 * main thread's stack is left out: the test's own variables are there, and
 * OpenSSL's key setup leaves transient residue in dead frames. */
static void key_copies(const uint8_t *key, size_t n, int *in_dd, int *elsewhere)
{
	*in_dd = *elsewhere = 0;
	FILE *f = fopen("/proc/self/smaps", "r");
	int mem = open("/proc/self/mem", O_RDONLY);
	char line[512];
	unsigned long lo = 0, hi = 0;
	char perms[8] = "";
	bool stack = false;
	while (f && mem >= 0 && fgets(line, sizeof(line), f)) {
		unsigned long a, b;
		if (sscanf(line, "%lx-%lx %7s", &a, &b, perms) == 3) {
			lo = a;
			hi = b;
			stack = strstr(line, "[stack]") != NULL;
			continue;
		}
		if (strncmp(line, "VmFlags:", 8) != 0 || perms[0] != 'r' || hi - lo > (64UL << 20))
			continue;
		bool dd = strstr(line, " dd") != NULL;
		uint8_t *buf = malloc(hi - lo);
		ssize_t got = buf ? pread(mem, buf, hi - lo, (off_t)lo) : -1;
		for (ssize_t i = 0; got > 0 && i + (ssize_t)n <= got; i++) {
			if (buf[i] == key[0] && memcmp(buf + i, key, n) == 0) {
				if (dd)
					(*in_dd)++;
				else if (!stack)
					(*elsewhere)++;
			}
		}
		free(buf);
	}
	if (f)
		fclose(f);
	if (mem >= 0)
		close(mem);
}

UT_TEST(keys_kept_only_in_memory_excluded_from_core_dumps)
{
	engine_up(31200, 31299);
	struct om_media_params p;
	struct om_media_session *s;
	uint16_t port;
	uint8_t key[30];
	for (int i = 0; i < 30; i++)
		key[i] = (uint8_t)(0x5A ^ (i * 37));
	params(&p);
	p.srtp = true;
	p.suite = OM_SRTP_AES_CM_128_HMAC_SHA1_80;
	p.recv_key.key_len = p.send_key.key_len = 30;
	memcpy(p.recv_key.key, key, 30);
	UT_EQ_INT(0, om_media_session_new(eng, &p, NULL, &s, &port));
	memset(&p, 0, sizeof(p)); /* the caller cleanses its copy */
	/* The pattern to look for, built where it cannot be found itself. */
	uint8_t *pat = malloc(30);
	for (int i = 0; i < 30; i++)
		pat[i] = (uint8_t)(0x5A ^ (i * 37));
	memset(key, 0, sizeof(key));
	int in_dd, elsewhere;
	pat[0] ^= 0xff; /* hide it from the scan while searching */
	uint8_t first = (uint8_t)(pat[0] ^ 0xff);
	uint8_t want[30];
	want[0] = first;
	memcpy(want + 1, pat + 1, 29);
	key_copies(want, 30, &in_dd, &elsewhere);
	memset(want, 0, sizeof(want));
	UT_TRUE(in_dd >= 1);
	UT_EQ_INT(0, elsewhere);
	closed = 0;
	om_media_session_free(s);
	run_until(&closed, 1);
	/* Cleansed at the end of the session. */
	want[0] = first;
	memcpy(want + 1, pat + 1, 29);
	key_copies(want, 30, &in_dd, &elsewhere);
	UT_EQ_INT(0, in_dd);
	free(pat);
	engine_down();
}

static int setup_once(void *arg)
{
	(void)arg;
	struct om_media_params p;
	struct om_media_session *s;
	uint16_t port;
	params(&p);
	p.srtp = true;
	p.suite = OM_SRTP_AEAD_AES_128_GCM;
	p.recv_key.key_len = p.send_key.key_len = 28;
	p.recv_key.mki_len = 2;
	int err = om_media_session_new(eng, &p, NULL, &s, &port);
	if (err)
		return err;
	struct om_media_record_opts o = { -45, 5000, 0, false };
	char id[32];
	static int k;
	snprintf(id, sizeof(id), "oom-%d", k++);
	err = om_media_session_record_start(s, id, "{}", &o);
	struct om_media_play it[3] = {
		{ .kind = OM_MEDIA_PLAY_PROMPT, .name = "beep" },
		{ .kind = OM_MEDIA_PLAY_DIGITS, .digits = "42" },
		{ .kind = OM_MEDIA_PLAY_SILENCE, .ms = 100 },
	};
	if (!err)
		err = om_media_session_play(s, it, 3, 7);
	if (!err)
		err = om_media_session_modify(s, &p);
	int want = closed + 1;
	om_media_session_free(s);
	run_until(&closed, want);
	return err;
}

/* Plain RTP with RTCP on its own socket (two descriptors), a recording,
 * a playlist, a re-INVITE to a new address, a digit from INFO. */
static int setup_plain_once(void *arg)
{
	(void)arg;
	struct om_media_params p;
	struct om_media_session *s;
	uint16_t port;
	params(&p);
	p.rtcp_mux = false;
	int err = om_media_session_new(eng, &p, NULL, &s, &port);
	if (err)
		return err;
	struct om_media_record_opts o = { -45, 0, 0, false };
	char id[32];
	static int k;
	snprintf(id, sizeof(id), "oomp-%d", k++);
	err = om_media_session_record_start(s, id, "{}", &o);
	struct om_media_play it[2] = {
		{ .kind = OM_MEDIA_PLAY_PROMPT, .name = "goodbye" },
		{ .kind = OM_MEDIA_PLAY_TONE, .ms = 40, .freq_hz = 1000 },
	};
	if (!err)
		err = om_media_session_play(s, it, 2, 9);
	if (!err) {
		((struct sockaddr_in *)&p.remote)->sin_port = htons(11);
		err = om_media_session_modify(s, &p);
	}
	if (!err)
		err = om_media_session_dtmf_in(s, '5', 100);
	int want = closed + 1;
	om_media_session_free(s);
	run_until(&closed, want);
	return err;
}

static int open_fds(void)
{
	int n = 0;
	DIR *d = opendir("/proc/self/fd");
	if (!d)
		return -1;
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

UT_TEST(oom_sweep_over_session_setup)
{
	engine_up(31300, 31399);
	closed = 0;
	int fds = open_fds();
	UT_TRUE(ut_oom_sweep(setup_once, NULL) >= 8);
	UT_EQ_INT(0, setup_once(NULL));
	UT_TRUE(ut_oom_sweep(setup_plain_once, NULL) >= 8);
	UT_EQ_INT(0, setup_plain_once(NULL));
	/* Whatever failed, no socket and no spool file stays open. */
	for (int i = 0; i < 200 && open_fds() != fds; i++)
		usleep(10000);
	UT_EQ_INT(fds, open_fds());
	engine_down();
}

/* Closing the engine ends the sessions still open: each recording is
 * finished (RECORD_STOPPED, files in the spool), then CLOSED, then done. */
UT_TEST(engine_close_ends_open_sessions)
{
	engine_up(31400, 31499);
	struct om_media_params p;
	struct om_media_session *s[3];
	uint16_t port;
	params(&p);
	struct om_media_record_opts o = { -45, 0, 0, false };
	for (int i = 0; i < 3; i++) {
		UT_EQ_INT(0, om_media_session_new(eng, &p, NULL, &s[i], &port));
		char id[16];
		snprintf(id, sizeof(id), "open-%d", i);
		UT_EQ_INT(0, om_media_session_record_start(s[i], id, "{\"x\":1}", &o));
	}
	closed = stopped = 0;
	done_called = 0;
	om_media_engine_close(eng, on_done, NULL);
	run_until(&done_called, 1);
	UT_TRUE(done_called);
	UT_EQ_INT(3, stopped);
	UT_EQ_INT(3, closed);
	char path[400];
	snprintf(path, sizeof(path), "%s/open-2.json", spool);
	struct stat st;
	UT_EQ_INT(0, stat(path, &st));
	UT_EQ_INT(0600, st.st_mode & 0777);
	snprintf(path, sizeof(path), "%s/open-2.raw", spool);
	UT_EQ_INT(0, stat(path, &st));
	uv_run(&loop, UV_RUN_DEFAULT);
	UT_EQ_INT(0, uv_loop_close(&loop));
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", spool);
	(void)system(cmd);
}

UT_MAIN(UT_CASE(bad_parameters_refused), UT_CASE(engine_close_ends_open_sessions),
        UT_CASE(port_range_exhausted_and_reused), UT_CASE(prompts_are_built_in),
        UT_CASE(administrator_prompts), UT_CASE(keys_kept_only_in_memory_excluded_from_core_dumps),
        UT_CASE(oom_sweep_over_session_setup))
