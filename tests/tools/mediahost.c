/* mediahost.c — `om-mediahost`: the real media engine (src/media, not a
 * mock) in a process of its own, driven over stdin/stdout, for component
 * tests of media before SIP calls exist, and for benchmarks.
 *
 *   om-mediahost --spool DIR [--ports LOW-HIGH] [--threads N]
 *                [--backend openssl|libsrtp2] [--rtp-timeout MS]
 *                [--flush MS] [--sync MS] [--prompts-dir DIR]
 *                [--fail-after BYTES [--fail-file SUBSTR]]
 *                (spool writes fail with ENOSPC after BYTES, to files whose
 *                path contains SUBSTR when given: a write-fault hook)
 *                [--slow-write-ms MS] (every spool write takes MS: a slow disk)
 *                [--queue-max BYTES] (audio waiting for the disk, at most)
 *
 * Commands, one per line (key=value words):
 *   new NAME local=IP [remote=IP:PORT] [rtcp=PORT] [mux=1] [codec=pcmu|pcma]
 *       [pt=N] [te=N|-1] [cn=N] [ptime=MS] [dir=sendrecv|sendonly|recvonly|inactive]
 *       [suite=NAME rxkey=B64 txkey=B64 [rxmki=HEX] [txmki=HEX] [lifetime=N]]
 *       [sym=1]                                   -> {"ev":"port",...}
 *   modify NAME ...           (the same words)
 *   play NAME TOKEN ITEM...   prompt:NAME silence:MS tone:HZ:MS digits:DDD file:PATH
 *   playstop NAME
 *   rec NAME ID [silence=DBOV] [silence_ms=MS] [max_ms=MS] [after_play=1]
 *   recstop NAME
 *   dtmf NAME DIGIT [MS]
 *   free NAME
 *   stats / sstats NAME
 *   quit
 * Every event and answer is one JSON line on stdout. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <uv.h>

#include "core/alloc.h"
#include "media/media.h"
#include "testcall/rtp.h"

#define MAXS 16384

static struct {
	char name[64];
	struct om_media_session *s;
} sess[MAXS];

static struct om_media_engine *engine;
static uv_loop_t *loop;
static uv_pipe_t in;
static char line[65536];
static size_t line_len;
static atomic_ullong written, fail_after;
static const char *fail_file; /* only files whose path contains this */
static unsigned slow_ms;      /* every write takes this long (a slow disk) */

static int find(const char *name)
{
	for (int i = 0; i < MAXS; i++)
		if (sess[i].s && strcmp(sess[i].name, name) == 0)
			return i;
	return -1;
}

static const char *name_of(struct om_media_session *s)
{
	for (int i = 0; i < MAXS; i++)
		if (sess[i].s == s)
			return sess[i].name;
	return "?";
}

static void out(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void out(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

static void print_stats(const char *ev, const char *name, const struct om_media_stats *x)
{
	out("{\"ev\":\"%s\",\"name\":\"%s\",\"rtp_in\":%" PRIu64 ",\"rtp_out\":%" PRIu64
	    ",\"rtcp_in\":%" PRIu64 ",\"rtcp_out\":%" PRIu64 ",\"bytes_in\":%" PRIu64
	    ",\"lost\":%" PRIu64 ",\"late\":%" PRIu64 ",\"duplicates\":%" PRIu64
	    ",\"strangers\":%" PRIu64 ",\"malformed\":%" PRIu64 ",\"srtp_auth\":%" PRIu64
	    ",\"srtp_replay\":%" PRIu64 ",\"send_errors\":%" PRIu64 ",\"ssrc_changes\":%" PRIu64
	    "}",
	    ev, name, x->rtp_in, x->rtp_out, x->rtcp_in, x->rtcp_out, x->bytes_in, x->lost, x->late,
	    x->duplicates, x->strangers, x->malformed, x->srtp_auth, x->srtp_replay, x->send_errors,
	    x->ssrc_changes);
}

static void on_event(const struct om_media_event *ev, void *arg)
{
	(void)arg;
	const char *n = name_of(ev->session);
	static const char *src[] = { "", "rfc4733", "info", "inband" };
	switch (ev->type) {
	case OM_MEDIA_EV_DTMF:
		out("{\"ev\":\"dtmf\",\"name\":\"%s\",\"digit\":\"%c\",\"ms\":%u,\"source\":\"%s\"}",
		    n, ev->u.dtmf.digit, ev->u.dtmf.duration_ms, src[ev->u.dtmf.source]);
		break;
	case OM_MEDIA_EV_PLAY_DONE:
		out("{\"ev\":\"play_done\",\"name\":\"%s\",\"token\":%u,\"stopped\":%s}", n,
		    ev->u.play.token, ev->u.play.stopped ? "true" : "false");
		break;
	case OM_MEDIA_EV_RECORD_SILENCE:
	case OM_MEDIA_EV_RECORD_LIMIT:
	case OM_MEDIA_EV_RECORD_STOPPED:
		out("{\"ev\":\"%s\",\"name\":\"%s\",\"bytes\":%" PRIu64 ",\"audio_ms\":%" PRIu64
		    ",\"voiced_ms\":%" PRIu64 ",\"error\":%d}",
		    ev->type == OM_MEDIA_EV_RECORD_SILENCE ? "record_silence"
		    : ev->type == OM_MEDIA_EV_RECORD_LIMIT ? "record_limit"
		                                           : "record_stopped",
		    n, ev->u.record.bytes, ev->u.record.audio_ms, ev->u.record.voiced_ms,
		    ev->u.record.error);
		break;
	case OM_MEDIA_EV_TIMEOUT:
		out("{\"ev\":\"timeout\",\"name\":\"%s\"}", n);
		break;
	case OM_MEDIA_EV_SRTP_FAIL:
		out("{\"ev\":\"srtp_fail\",\"name\":\"%s\",\"auth\":%" PRIu64 ",\"replay\":%" PRIu64
		    "}",
		    n, ev->u.srtp.auth, ev->u.srtp.replay);
		break;
	case OM_MEDIA_EV_STRANGERS:
		out("{\"ev\":\"strangers\",\"name\":\"%s\",\"count\":%" PRIu64 ",\"from\":\"%s\"}",
		    n, ev->u.strangers.count, ev->u.strangers.from);
		break;
	case OM_MEDIA_EV_CLOSED:
		print_stats("closed", n, &ev->u.stats);
		for (int i = 0; i < MAXS; i++)
			if (sess[i].s == ev->session)
				sess[i].s = NULL;
		break;
	}
}

static const char *arg(char **w, int n, const char *key)
{
	size_t kl = strlen(key);
	for (int i = 0; i < n; i++)
		if (strncmp(w[i], key, kl) == 0 && w[i][kl] == '=')
			return w[i] + kl + 1;
	return NULL;
}

static int addr(const char *s, struct sockaddr_storage *a, bool with_port)
{
	socklen_t l;
	char buf[80];
	if (!with_port) {
		snprintf(buf, sizeof(buf), strchr(s, ':') ? "[%s]:0" : "%s:0", s);
		s = buf;
	}
	return om_tc_parse_addr(s, a, &l);
}

static int key(const char *b64, const char *mki, struct om_media_key *k, uint64_t lifetime)
{
	memset(k, 0, sizeof(*k));
	if (!b64 || om_tc_b64_decode(b64, k->key, sizeof(k->key), &k->key_len) != 0)
		return EINVAL;
	if (mki && om_tc_hex_decode(mki, k->mki, sizeof(k->mki), &k->mki_len) != 0)
		return EINVAL;
	k->lifetime = lifetime;
	return 0;
}

static int params(char **w, int n, struct om_media_params *p)
{
	memset(p, 0, sizeof(*p));
	const char *v;
	if ((v = arg(w, n, "local")) && addr(v, &p->local, false))
		return EINVAL;
	if ((v = arg(w, n, "remote")) && addr(v, &p->remote, true))
		return EINVAL;
	p->remote_rtcp_port = (uint16_t)((v = arg(w, n, "rtcp")) ? atoi(v) : 0);
	p->rtcp_mux = (v = arg(w, n, "mux")) && atoi(v);
	p->codec =
	    (v = arg(w, n, "codec")) && strcmp(v, "pcma") == 0 ? OM_MEDIA_PCMA : OM_MEDIA_PCMU;
	p->pt = (uint8_t)((v = arg(w, n, "pt")) ? atoi(v) : (int)p->codec);
	p->te_pt = (v = arg(w, n, "te")) ? atoi(v) : 101;
	p->cn_pt = (v = arg(w, n, "cn")) ? atoi(v) : 13;
	p->ptime_ms = (unsigned)((v = arg(w, n, "ptime")) ? atoi(v) : 20);
	p->dir = OM_MEDIA_SENDRECV;
	if ((v = arg(w, n, "dir"))) {
		p->dir = strcmp(v, "sendonly") == 0   ? OM_MEDIA_SENDONLY
		         : strcmp(v, "recvonly") == 0 ? OM_MEDIA_RECVONLY
		         : strcmp(v, "inactive") == 0 ? OM_MEDIA_INACTIVE
		                                      : OM_MEDIA_SENDRECV;
	}
	p->rtp_symmetric = (v = arg(w, n, "sym")) && atoi(v);
	if ((v = arg(w, n, "suite"))) {
		p->srtp = true;
		if (om_srtp_suite_parse(v, strlen(v), &p->suite) != 0)
			return EINVAL;
		uint64_t lt = (v = arg(w, n, "lifetime")) ? strtoull(v, NULL, 0) : 0;
		if (key(arg(w, n, "rxkey"), arg(w, n, "rxmki"), &p->recv_key, lt) ||
		    key(arg(w, n, "txkey"), arg(w, n, "txmki"), &p->send_key, lt))
			return EINVAL;
	}
	snprintf(p->call_id, sizeof(p->call_id), "%s", w[0]);
	return 0;
}

static void done(void *arg)
{
	(void)arg;
	out("{\"ev\":\"bye\"}");
	uv_close((uv_handle_t *)&in, NULL);
}

static void command(char *l)
{
	char *w[80];
	int n = 0;
	for (char *t = strtok(l, " \t\r"); t && n < 80; t = strtok(NULL, " \t\r"))
		w[n++] = t;
	if (n == 0)
		return;
	const char *c = w[0];
	int i = n > 1 ? find(w[1]) : -1;
	struct om_media_session *s = i >= 0 ? sess[i].s : NULL;
	int err = 0;
	if (strcmp(c, "new") == 0 && n > 1) {
		struct om_media_params p;
		uint16_t port = 0;
		int slot = -1;
		for (int k = 0; k < MAXS && slot < 0; k++)
			if (!sess[k].s)
				slot = k;
		if ((err = params(w + 1, n - 1, &p)) == 0 && slot >= 0 &&
		    (err = om_media_session_new(engine, &p, NULL, &sess[slot].s, &port)) == 0) {
			snprintf(sess[slot].name, sizeof(sess[slot].name), "%s", w[1]);
			out("{\"ev\":\"port\",\"name\":\"%s\",\"port\":%u}", w[1], port);
			return;
		}
	} else if (!s && strcmp(c, "stats") != 0 && strcmp(c, "quit") != 0) {
		err = ENOENT;
	} else if (strcmp(c, "modify") == 0) {
		struct om_media_params p;
		if (!(err = params(w + 1, n - 1, &p)))
			err = om_media_session_modify(s, &p);
	} else if (strcmp(c, "play") == 0 && n > 3) {
		struct om_media_play it[64];
		struct om_media_audio *files[64];
		int nf = 0, ni = 0;
		char why[200];
		memset(it, 0, sizeof(it));
		for (int k = 3; k < n && ni < 64 && !err; k++, ni++) {
			char *x = w[k];
			if (strncmp(x, "prompt:", 7) == 0) {
				it[ni].kind = OM_MEDIA_PLAY_PROMPT;
				it[ni].name = x + 7;
			} else if (strncmp(x, "silence:", 8) == 0) {
				it[ni].kind = OM_MEDIA_PLAY_SILENCE;
				it[ni].ms = (unsigned)atoi(x + 8);
			} else if (strncmp(x, "tone:", 5) == 0) {
				it[ni].kind = OM_MEDIA_PLAY_TONE;
				sscanf(x + 5, "%u:%u", &it[ni].freq_hz, &it[ni].ms);
			} else if (strncmp(x, "digits:", 7) == 0) {
				it[ni].kind = OM_MEDIA_PLAY_DIGITS;
				it[ni].digits = x + 7;
			} else if (strncmp(x, "file:", 5) == 0) {
				it[ni].kind = OM_MEDIA_PLAY_AUDIO;
				err = om_media_audio_load(x + 5, 0, &files[nf], why, sizeof(why));
				if (!err)
					it[ni].audio = files[nf++];
			} else {
				err = EINVAL;
			}
		}
		if (!err)
			err = om_media_session_play(s, it, (size_t)ni, (uint32_t)atoi(w[2]));
		for (int k = 0; k < nf; k++)
			om_media_audio_unref(files[k]);
	} else if (strcmp(c, "playstop") == 0) {
		om_media_session_play_stop(s);
	} else if (strcmp(c, "rec") == 0 && n > 2) {
		struct om_media_record_opts o = { -45, 0, 0, false };
		const char *v;
		if ((v = arg(w + 3, n - 3, "silence")))
			o.silence_dbov = atoi(v);
		if ((v = arg(w + 3, n - 3, "silence_ms")))
			o.silence_timeout_ms = (unsigned)atoi(v);
		if ((v = arg(w + 3, n - 3, "max_ms")))
			o.max_ms = (unsigned)atoi(v);
		if ((v = arg(w + 3, n - 3, "after_play")))
			o.after_play = atoi(v) != 0;
		char meta[256];
		snprintf(meta, sizeof(meta), "{\"version\":1,\"id\":\"%s\"}\n", w[2]);
		err = om_media_session_record_start(s, w[2], meta, &o);
	} else if (strcmp(c, "recstop") == 0) {
		om_media_session_record_stop(s);
	} else if (strcmp(c, "dtmf") == 0 && n > 2) {
		err = om_media_session_dtmf_in(s, w[2][0], n > 3 ? (unsigned)atoi(w[3]) : 100);
	} else if (strcmp(c, "free") == 0) {
		om_media_session_free(s);
		return; /* "closed" follows */
	} else if (strcmp(c, "sstats") == 0) {
		struct om_media_stats x;
		om_media_session_stats(s, &x);
		print_stats("sstats", w[1], &x);
		return;
	} else if (strcmp(c, "stats") == 0) {
		struct om_media_engine_stats x;
		om_media_engine_stats(engine, &x);
		out("{\"ev\":\"stats\",\"threads\":%u,\"sessions\":%" PRIu64
		    ",\"recordings\":%" PRIu64 ",\"ports_free\":%" PRIu64 ",\"rtp_in\":%" PRIu64
		    ",\"late\":%" PRIu64 ",\"lost\":%" PRIu64 ",\"strangers\":%" PRIu64
		    ",\"srtp_auth\":%" PRIu64 "}",
		    x.threads, x.sessions, x.recordings, x.ports_free, x.totals.rtp_in,
		    x.totals.late, x.totals.lost, x.totals.strangers, x.totals.srtp_auth);
		return;
	} else if (strcmp(c, "quit") == 0) {
		uv_read_stop((uv_stream_t *)&in);
		om_media_engine_close(engine, done, NULL);
		return;
	} else {
		err = EINVAL;
	}
	out("{\"ev\":\"%s\",\"cmd\":\"%s\",\"error\":%d,\"why\":\"%s\"}", err ? "error" : "ok", c,
	    err, err ? strerror(err) : "");
}

static void on_alloc(uv_handle_t *h, size_t sz, uv_buf_t *b)
{
	(void)h;
	(void)sz;
	static char buf[65536];
	b->base = buf;
	b->len = sizeof(buf);
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
	if (n < 0) {
		uv_read_stop(st);
		om_media_engine_close(engine, done, NULL);
		return;
	}
	for (ssize_t i = 0; i < n; i++) {
		char ch = b->base[i];
		if (ch == '\n') {
			line[line_len] = 0;
			command(line);
			line_len = 0;
		} else if (line_len + 1 < sizeof(line)) {
			line[line_len++] = ch;
		}
	}
}

static ssize_t failing_write(int fd, const void *buf, size_t len, off_t off, void *arg)
{
	(void)arg;
	if (slow_ms)
		usleep(slow_ms * 1000);
	if (fail_file) {
		char link[64], path[4096];
		snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
		ssize_t l = readlink(link, path, sizeof(path) - 1);
		path[l > 0 ? l : 0] = 0;
		if (!strstr(path, fail_file))
			return pwrite(fd, buf, len, off);
	}
	unsigned long long lim = atomic_load(&fail_after), w = atomic_load(&written);
	if (w >= lim) {
		errno = ENOSPC;
		return -1;
	}
	if (len > lim - w)
		len = (size_t)(lim - w);
	ssize_t r = pwrite(fd, buf, len, off);
	if (r > 0)
		atomic_fetch_add(&written, (unsigned long long)r);
	return r;
}

int main(int argc, char **argv)
{
	struct om_media_engine_cfg cfg;
	memset(&cfg, 0, sizeof(cfg));
	cfg.port_min = 20000;
	cfg.port_max = 29999;
	static const struct option opts[] = {
		{ "spool", 1, 0, 's' },
		{ "ports", 1, 0, 'p' },
		{ "threads", 1, 0, 't' },
		{ "backend", 1, 0, 'b' },
		{ "rtp-timeout", 1, 0, 'o' },
		{ "flush", 1, 0, 'f' },
		{ "sync", 1, 0, 'y' },
		{ "prompts-dir", 1, 0, 'd' },
		{ "fail-after", 1, 0, 'F' },
		{ "fail-file", 1, 0, 'N' },
		{ "slow-write-ms", 1, 0, 'W' },
		{ "queue-max", 1, 0, 'Q' },
		{ 0, 0, 0, 0 },
	};
	int c;
	unsigned lo, hi;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			cfg.spool_dir = optarg;
			break;
		case 'p':
			if (sscanf(optarg, "%u-%u", &lo, &hi) != 2)
				return 2;
			cfg.port_min = (uint16_t)lo;
			cfg.port_max = (uint16_t)hi;
			break;
		case 't':
			cfg.threads = (unsigned)atoi(optarg);
			break;
		case 'b':
			if (om_srtp_backend_parse(optarg, &cfg.srtp_backend) != 0)
				return 2;
			break;
		case 'o':
			cfg.rtp_timeout_ms = (unsigned)atoi(optarg);
			break;
		case 'f':
			cfg.spool_flush_ms = (unsigned)atoi(optarg);
			break;
		case 'y':
			cfg.spool_sync_ms = (unsigned)atoi(optarg);
			break;
		case 'd':
			cfg.prompts_dir = optarg;
			break;
		case 'F':
			atomic_store(&fail_after, strtoull(optarg, NULL, 10));
			cfg.write_h = failing_write;
			break;
		case 'N':
			fail_file = optarg;
			break;
		case 'W':
			slow_ms = (unsigned)atoi(optarg);
			cfg.write_h = failing_write;
			if (!atomic_load(&fail_after))
				atomic_store(&fail_after, ~0ULL);
			break;
		case 'Q':
			cfg.spool_queue_max = (size_t)strtoull(optarg, NULL, 10);
			break;
		default:
			return 2;
		}
	}
	if (!cfg.spool_dir) {
		fprintf(stderr, "usage: om-mediahost --spool DIR [...]\n");
		return 2;
	}
	loop = uv_default_loop();
	int err = om_media_engine_new(loop, &cfg, on_event, NULL, &engine);
	if (err) {
		fprintf(stderr, "om-mediahost: engine: %s\n", strerror(err));
		return 1;
	}
	uv_pipe_init(loop, &in, 0);
	uv_pipe_open(&in, 0);
	uv_read_start((uv_stream_t *)&in, on_alloc, on_read);
	out("{\"ev\":\"ready\",\"pid\":%d}", (int)getpid());
	uv_run(loop, UV_RUN_DEFAULT);
	uv_loop_close(loop);
	return 0;
}
