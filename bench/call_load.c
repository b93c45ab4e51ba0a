/* call_load.c — `call_load`: a load generator of voicemail deposits, the
 * gateway side of many calls at once, built on src/testcall/ (the UAC and
 * the RTP/SRTP sender) and never on src/app/.
 *
 * Each call: an INVITE over mutual TLS (or TCP) with an SDES offer (RFC
 * 4568; RTP/AVP with --rtp), the answer, then — like a caller — silence
 * until openum's greeting and beep have played (the end of a 1 kHz tone of
 * at least 200 ms in openum's RTP, or no RTP at all for --no-prompt-ms
 * after the answer), then --talk seconds of G.711 from a WAV at 50
 * packets/s (SRTP protected), a pause of 100 ms, and BYE. Calls start at
 * --rate per second up to --calls, at most --concurrency at once.
 *
 * Signalling: --conns persistent connections per gateway (a few, as real
 * gateways keep), or --conn-per-call (a new connection, and for TLS a new
 * handshake, for every call); SIGUSR1 drops one persistent connection at
 * once (round robin) and opens it again, its calls going on over the new
 * one (a gateway's network failing). Media: a few UDP sockets shared by the calls
 * (an SBC's media ports), sending with sendmmsg; everything runs on one
 * epoll loop with 2 ms slots for the packet clock — no thread per call.
 *
 * Every call ends within a bounded time, whatever the server does: no final
 * response within --setup-timeout, no beep within --prompt-max, no answer
 * to the BYE within --bye-timeout, or the server hanging up first, ends it
 * (counted as failed, ended early or BYE failed, with the reason in its
 * line). A connection the server closes leaves the epoll set at once and is
 * opened again (a gateway would); the whole run ends by --max-seconds
 * (default: the schedule plus the worst case of one call), the calls still
 * open then ended as "deadline" and the exit status 3.
 *
 * Output: one JSON line per call in --out (call_id, tags, status, setup
 * ms, packets sent, when the talk started, why it ended), and a summary on
 * stdout (calls answered, refused, failed, late answers (setup > 1 s),
 * packets, the generator's CPU seconds and how late its packet clock ran).
 * bench/call_bench.py drives it and checks every message in the Maildir.
 *
 * RFC 3261 (UAC), RFC 3264, RFC 4568, RFC 3550, RFC 3711. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <sndfile.h>
#define SPANDSP_EXPOSE_INTERNAL_STRUCTURES
#include <spandsp.h>

#include "core/alloc.h"
#include "media/rtp.h"
#include "media/srtp.h"
#include "testcall/rtp.h"
#include "testcall/uac.h"

#define SLOT_MS   2
#define NSLOTS    10 /* 20 ms of slots */
#define PTIME     20
#define FRAME     160
#define BATCH     64
#define MAX_GW    64
#define MAX_MSOCK 64

enum cstate { C_INVITING, C_PROMPT, C_TALK, C_HANG, C_BYE, C_DONE };

struct conn;

struct gcall {
	struct gcall *prev, *next; /* the list of its state */
	struct conn *conn;
	struct om_uac_call *uc;
	enum cstate st;
	unsigned id, msock;
	int64_t t_invite, t_answer, t_rx_last, t_talk, t_hang, t_bye;
	uint32_t sent, to_send;
	uint64_t rx, rx_beep_run;
	bool beep_seen, beep_ended;
	int status;
	struct om_tc_tx tx;
	struct om_srtp *rx_srtp;
	struct sockaddr_in dst;
	uint16_t srv_port;
	char ruri[128], from[24], why[32];
};

struct list {
	struct gcall *head;
	size_t n;
};

struct conn {
	struct om_uac *u;
	int fd; /* in the epoll set; -1: closed (not watched) */
	bool per_call;
	int64_t reopen_at; /* a persistent connection the server closed: when to open it again */
	bool out_armed;    /* watched for EPOLLOUT: its agent holds unsent SIP bytes */
	struct list sip;   /* calls waiting for SIP (INVITING, BYE) */
	struct conn *prev, *next;
};

struct gw {
	char bind[64], cert[512], key[512];
};

static struct {
	const char *server, *ca, *tls_name, *domain, *wav, *out_path, *media_addr, *dump;
	uint16_t port, media_port;
	bool tls, per_call, rtp;
	unsigned conns, calls, concurrency, talk_s, msocks, no_prompt_ms, ext_lo, ext_hi;
	unsigned setup_timeout_ms, prompt_max_ms, bye_timeout_ms, max_s;
	double rate;
	struct gw gw[MAX_GW];
	unsigned ngw;
} o = { .conns = 2,
	.calls = 10,
	.concurrency = 100,
	.talk_s = 10,
	.msocks = 4,
	.no_prompt_ms = 1500,
	.setup_timeout_ms = 40000,
	.prompt_max_ms = 60000,
	.bye_timeout_ms = 40000,
	.rate = 10,
	.ext_lo = 2001,
	.ext_hi = 2001,
	.media_addr = "127.0.0.1",
	.media_port = 0, /* 0: even/odd pairs the kernel picks */
	.domain = "um.test.example" };

static int epfd;
static struct conn *conns;
static struct list l_prompt, l_hang, slots[NSLOTS];
static struct gcall **by_port; /* openum's RTP port -> call */
static int msock_fd[MAX_MSOCK], mrtcp_fd[MAX_MSOCK];
static uint16_t msock_port[MAX_MSOCK];
static uint8_t *payload;
static size_t payload_len;
static FILE *out;
static volatile sig_atomic_t drop_requested;

static void on_usr1(int sig)
{
	drop_requested = 1;
}
static struct {
	unsigned started, answered, refused, failed, late_answers, ended_early, bye_failed, done,
	    active, max_active, beeps, no_prompt, no_beep, reconnects, reconnect_failures,
	    conn_lost, reopened, reopen_failures, setup_timeouts, prompt_timeouts, bye_timeouts,
	    remote_bye_early, deadline, sip_queued;
	uint64_t packets, send_errors, rx;
	int64_t max_tick_late_ms, setup_ms_sum, setup_ms_max;
	unsigned status_count[700];
} st;

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static double cpu_s(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
	       (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static void l_add(struct list *l, struct gcall *c)
{
	c->prev = NULL;
	c->next = l->head;
	if (l->head)
		l->head->prev = c;
	l->head = c;
	l->n++;
}

static void l_del(struct list *l, struct gcall *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		l->head = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->prev = c->next = NULL;
	l->n--;
}

static struct list *list_of(struct gcall *c)
{
	switch (c->st) {
	case C_INVITING:
	case C_BYE:
		return &c->conn->sip;
	case C_PROMPT:
		return &l_prompt;
	case C_TALK:
		return &slots[(c->t_talk / SLOT_MS) % NSLOTS];
	case C_HANG:
		return &l_hang;
	default:
		return NULL;
	}
}

static void set_state(struct gcall *c, enum cstate s)
{
	struct list *l = list_of(c);
	if (l)
		l_del(l, c);
	c->st = s;
	if ((l = list_of(c)))
		l_add(l, c);
}

/* ------------------------------------------------------------ audio */

static int load_wav(const char *path)
{
	SF_INFO info = { 0 };
	SNDFILE *f = sf_open(path, SFM_READ, &info);
	if (!f) {
		fprintf(stderr, "call_load: %s: %s\n", path, sf_strerror(NULL));
		return -1;
	}
	if (info.samplerate != 8000 || info.channels != 1) {
		fprintf(stderr, "call_load: %s must be 8 kHz mono\n", path);
		sf_close(f);
		return -1;
	}
	size_t n = (size_t)info.frames / FRAME * FRAME;
	int16_t *pcm = om_malloc(n * 2 + 2);
	payload = om_malloc(n + 1);
	if (!pcm || !payload || n == 0 || sf_readf_short(f, pcm, (sf_count_t)n) != (sf_count_t)n) {
		fprintf(stderr, "call_load: cannot read %s\n", path);
		sf_close(f);
		return -1;
	}
	sf_close(f);
	for (size_t i = 0; i < n; i++)
		payload[i] = linear_to_ulaw(pcm[i]);
	payload_len = n;
	om_free(pcm);
	if (o.dump) {
		FILE *d = fopen(o.dump, "wb");
		if (!d || fwrite(payload, 1, n, d) != n) {
			fprintf(stderr, "call_load: cannot write %s\n", o.dump);
			return -1;
		}
		fclose(d);
	}
	return 0;
}

/* Power at 1 kHz over the frame's total (Goertzel): a beep frame is loud
 * and almost all 1 kHz. */
static bool beep_frame(const uint8_t *p, size_t n)
{
	double s1 = 0, s2 = 0, e = 0, k = 2 * cos(2 * M_PI * 1000.0 / 8000.0);
	for (size_t i = 0; i < n; i++) {
		double x = ulaw_to_linear(p[i]);
		double s0 = x + k * s1 - s2;
		s2 = s1;
		s1 = s0;
		e += x * x;
	}
	double pw = s1 * s1 + s2 * s2 - k * s1 * s2;
	return e > n * 300.0 * 300.0 && pw > 0.6 * e * n / 2;
}

/* ------------------------------------------------------------ media */

/* A bound UDP socket, or -1 (errno set); port 0: the kernel picks. */
static int try_bind_udp(const char *addr, uint16_t port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
	int sz = 4 << 20;
	if (fd < 0 || inet_pton(AF_INET, addr, &a.sin_addr) != 1 ||
	    bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		errno = e;
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
	return fd;
}

static int bind_udp(const char *addr, uint16_t port)
{
	int fd = try_bind_udp(addr, port);
	if (fd < 0) {
		fprintf(stderr, "call_load: bind %s:%u: %s\n", addr, port, strerror(errno));
		exit(1);
	}
	return fd;
}

static uint16_t local_port(int fd)
{
	struct sockaddr_in a;
	socklen_t len = sizeof(a);
	return getsockname(fd, (struct sockaddr *)&a, &len) == 0 ? ntohs(a.sin_port) : 0;
}

/* An even port the kernel picked for RTP and the next one for RTCP (RFC
 * 3550 §11): free ports, never a fixed range another run may hold. */
static void bind_pair(unsigned i)
{
	for (int tries = 0; tries < 1000; tries++) {
		int r = try_bind_udp(o.media_addr, 0);
		uint16_t p = r >= 0 ? local_port(r) : 0;
		if (r >= 0 && p && p % 2 == 0 && p < 65535) {
			int c = try_bind_udp(o.media_addr, (uint16_t)(p + 1));
			if (c >= 0) {
				msock_fd[i] = r;
				mrtcp_fd[i] = c;
				msock_port[i] = p;
				return;
			}
		}
		if (r >= 0)
			close(r);
	}
	fprintf(stderr, "call_load: no free RTP/RTCP port pair on %s\n", o.media_addr);
	exit(1);
}

#define TAG_MEDIA 1ull
#define TAG_RTCP  2ull

static void media_open(void)
{
	for (unsigned i = 0; i < o.msocks; i++) {
		if (o.media_port) {
			msock_port[i] = (uint16_t)(o.media_port + 2 * i);
			msock_fd[i] = bind_udp(o.media_addr, msock_port[i]);
			mrtcp_fd[i] = bind_udp(o.media_addr, (uint16_t)(msock_port[i] + 1));
		} else {
			bind_pair(i);
		}
		struct epoll_event ev = { .events = EPOLLIN, .data.u64 = (TAG_MEDIA << 32) | i };
		epoll_ctl(epfd, EPOLL_CTL_ADD, msock_fd[i], &ev);
		ev.data.u64 = (TAG_RTCP << 32) | i;
		epoll_ctl(epfd, EPOLL_CTL_ADD, mrtcp_fd[i], &ev);
	}
}

static void media_read(unsigned i, bool rtcp)
{
	static uint8_t bufs[BATCH][1600];
	static struct sockaddr_in from[BATCH];
	struct mmsghdr mh[BATCH];
	struct iovec iov[BATCH];
	for (;;) {
		for (int k = 0; k < BATCH; k++) {
			iov[k] = (struct iovec){ bufs[k], sizeof(bufs[k]) };
			mh[k].msg_hdr = (struct msghdr){ .msg_name = &from[k],
				                         .msg_namelen = sizeof(from[k]),
				                         .msg_iov = &iov[k],
				                         .msg_iovlen = 1 };
		}
		int n = recvmmsg(rtcp ? mrtcp_fd[i] : msock_fd[i], mh, BATCH, MSG_DONTWAIT, NULL);
		if (n <= 0)
			return;
		if (rtcp)
			continue;
		int64_t now = now_ms();
		for (int k = 0; k < n; k++) {
			struct gcall *c = by_port[ntohs(from[k].sin_port)];
			st.rx++;
			if (!c)
				continue;
			c->rx++;
			c->t_rx_last = now;
			if (c->st != C_PROMPT || c->beep_ended)
				continue;
			size_t len = mh[k].msg_len;
			if (c->rx_srtp && om_srtp_unprotect(c->rx_srtp, bufs[k], &len) != 0)
				continue;
			struct om_rtp_hdr h;
			if (om_rtp_parse(bufs[k], len, &h) != 0)
				continue;
			if (h.pt == 0 && beep_frame(bufs[k] + h.hdr_len, h.payload_len)) {
				if (++c->rx_beep_run >= 10)
					c->beep_seen = true;
			} else {
				/* anything after the beep (silence, comfort noise) ends it */
				c->beep_ended = c->beep_seen;
				c->rx_beep_run = 0;
			}
		}
	}
}

/* Sends what is due for the calls of one slot. */
static void slot_run(unsigned s, int64_t now)
{
	static uint8_t bufs[MAX_MSOCK][BATCH][256];
	static struct mmsghdr mh[MAX_MSOCK][BATCH];
	static struct iovec iov[MAX_MSOCK][BATCH];
	static int nb[MAX_MSOCK];
	struct gcall *next;
	for (struct gcall *c = slots[s].head; c; c = next) {
		next = c->next;
		int64_t due = (now - c->t_talk) / PTIME + 1;
		while (c->sent < c->to_send && c->sent < due) {
			unsigned m = c->msock;
			int k = nb[m];
			size_t off = ((size_t)c->sent * FRAME) % payload_len;
			size_t len = om_tc_tx_audio(&c->tx, NULL, payload + off, FRAME, bufs[m][k]);
			c->sent++;
			if (!len) {
				st.send_errors++;
				continue;
			}
			iov[m][k] = (struct iovec){ bufs[m][k], len };
			mh[m][k].msg_hdr = (struct msghdr){ .msg_name = &c->dst,
				                            .msg_namelen = sizeof(c->dst),
				                            .msg_iov = &iov[m][k],
				                            .msg_iovlen = 1 };
			if (++nb[m] == BATCH) {
				int r = sendmmsg(msock_fd[m], mh[m], BATCH, 0);
				st.packets += r > 0 ? (uint64_t)r : 0;
				st.send_errors +=
				    r == BATCH ? 0 : (uint64_t)(BATCH - (r > 0 ? r : 0));
				nb[m] = 0;
			}
		}
		if (c->sent >= c->to_send) {
			c->t_hang = now;
			set_state(c, C_HANG);
		}
	}
	for (unsigned m = 0; m < o.msocks; m++)
		if (nb[m]) {
			int r = sendmmsg(msock_fd[m], mh[m], (unsigned)nb[m], 0);
			st.packets += r > 0 ? (uint64_t)r : 0;
			st.send_errors += r == nb[m] ? 0 : (uint64_t)(nb[m] - (r > 0 ? r : 0));
			nb[m] = 0;
		}
}

/* ------------------------------------------------------------ calls */

static struct conn *conn_new(unsigned gi, char *err, size_t errlen)
{
	struct conn *k = om_calloc(1, sizeof(*k));
	if (!k)
		return NULL;
	struct gw *g = &o.gw[gi];
	struct om_uac_cfg cfg = { .server = o.server,
		                  .port = o.port,
		                  .tls = o.tls,
		                  .cert = g->cert[0] ? g->cert : NULL,
		                  .key = g->key[0] ? g->key : NULL,
		                  .ca = o.ca,
		                  .tls_name = o.tls_name,
		                  .bind = g->bind };
	if (om_uac_new(&cfg, 10000, &k->u, err, errlen) != 0) {
		om_free(k);
		return NULL;
	}
	k->fd = om_uac_fd(k->u);
	k->next = conns;
	if (conns)
		conns->prev = k;
	conns = k;
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = k };
	epoll_ctl(epfd, EPOLL_CTL_ADD, k->fd, &ev);
	return k;
}

/* While k's agent holds SIP bytes the socket did not take (a send never
 * waits: the packet clock must not stall), k is watched for writable too;
 * om_uac_run then sends them. */
static void conn_arm(struct conn *k)
{
	if (k->fd < 0)
		return;
	bool want = om_uac_want_write(k->u);
	if (want == k->out_armed)
		return;
	struct epoll_event ev = { .events = EPOLLIN | (want ? EPOLLOUT : 0u), .data.ptr = k };
	if (epoll_ctl(epfd, EPOLL_CTL_MOD, k->fd, &ev) == 0)
		k->out_armed = want;
	if (want)
		st.sip_queued++;
}

static int call_bye(struct gcall *c)
{
	int rc = om_uac_call_bye(c->uc);
	conn_arm(c->conn);
	return rc;
}

static void conn_free(struct conn *k)
{
	if (k->fd >= 0)
		epoll_ctl(epfd, EPOLL_CTL_DEL, k->fd, NULL);
	if (k->prev)
		k->prev->next = k->next;
	else
		conns = k->next;
	if (k->next)
		k->next->prev = k->prev;
	om_uac_free(k->u);
	om_free(k);
}

static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; s && *s; s++)
		if (*s == '"' || *s == '\\')
			fprintf(f, "\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			fprintf(f, "\\u%04x", *s);
		else
			fputc(*s, f);
	fputc('"', f);
}

static void call_done(struct gcall *c, const char *why)
{
	struct om_uac_call_info i;
	om_uac_call_info(c->uc, &i);
	set_state(c, C_DONE);
	snprintf(c->why, sizeof(c->why), "%s", why);
	fprintf(out, "{\"id\":%u,\"call_id\":", c->id);
	json_str(out, i.call_id);
	fprintf(out, ",\"from_tag\":");
	json_str(out, i.local_tag);
	fprintf(out, ",\"to_tag\":");
	json_str(out, i.remote_tag);
	fprintf(out, ",\"ruri\":");
	json_str(out, c->ruri);
	fprintf(out,
	        ",\"status\":%d,\"setup_ms\":%lld,\"sent\":%u,\"rx\":%llu,\"beep\":%s,"
	        "\"talk_after_answer_ms\":%lld,\"bye_status\":%d,\"end\":\"%s\"}\n",
	        c->status, c->t_answer ? (long long)(c->t_answer - c->t_invite) : -1, c->sent,
	        (unsigned long long)c->rx, c->beep_seen ? "true" : "false",
	        c->t_talk ? (long long)(c->t_talk - c->t_answer) : -1, i.bye_status, why);
	if (c->srv_port && by_port[c->srv_port] == c)
		by_port[c->srv_port] = NULL;
	om_tc_tx_free(&c->tx);
	om_srtp_free(c->rx_srtp);
	struct conn *k = c->conn;
	if (k->per_call)
		conn_free(k); /* the agent, its calls and transactions */
	else
		om_uac_call_free(c->uc); /* a BYE still waiting is released with it */
	om_free(c);
	st.done++;
	st.active--;
}

static enum om_srtp_suite srtp_suite(enum om_sdp_crypto_suite s)
{
	enum om_srtp_suite r = 0;
	const char *n = om_sdp_suite_name(s);
	om_srtp_suite_parse(n, strlen(n), &r);
	return r;
}

/* The 2xx came: where openum wants RTP, our sending key and its. */
static void answered(struct gcall *c, const struct om_uac_call_info *i, int64_t now)
{
	c->t_answer = now;
	int64_t setup = now - c->t_invite;
	st.answered++;
	st.setup_ms_sum += setup;
	if (setup > st.setup_ms_max)
		st.setup_ms_max = setup;
	if (setup >= 1000)
		st.late_answers++;
	const char *cl = strstr(i->answer_sdp, "c=IN IP4 ");
	const char *ml = strstr(i->answer_sdp, "m=audio ");
	char ip[64] = "";
	unsigned port = 0;
	if (!cl || !ml || sscanf(cl, "c=IN IP4 %63[0-9.]", ip) != 1 ||
	    sscanf(ml, "m=audio %u", &port) != 1 || port == 0 || port > 65535 ||
	    inet_pton(AF_INET, ip, &c->dst.sin_addr) != 1) {
		call_bye(c);
		c->t_bye = now;
		set_state(c, C_BYE);
		snprintf(c->why, sizeof(c->why), "bad-answer");
		return;
	}
	c->dst.sin_family = AF_INET;
	c->dst.sin_port = htons((uint16_t)port);
	c->srv_port = (uint16_t)port;
	by_port[port] = c;
	struct om_tc_srtp tx = { 0 };
	const struct om_sdp_result *r = i->sdp;
	if (!o.rtp && r && r->srtp) {
		tx.on = true;
		tx.suite = srtp_suite(r->local_key[0].suite);
		memcpy(tx.key, r->local_key[0].keysalt, r->local_key[0].keysalt_len);
		tx.key_len = r->local_key[0].keysalt_len;
		struct om_srtp_policy p = { .suite = srtp_suite(r->remote_key.suite),
			                    .dir = OM_SRTP_RECV,
			                    .key = r->remote_key.keysalt,
			                    .key_len = r->remote_key.keysalt_len,
			                    .max_ssrcs = 4 };
		om_srtp_new(&p, &c->rx_srtp);
	}
	c->tx.pt = 0;
	c->tx.te_pt = -1;
	c->tx.ptime = PTIME;
	c->tx.ssrc = (uint32_t)random();
	c->tx.seq = (uint16_t)random();
	c->tx.ts = (uint32_t)random();
	c->tx.talkspurt = true;
	if (om_tc_tx_init(&c->tx, &tx) != 0) {
		call_bye(c);
		c->t_bye = now;
		set_state(c, C_BYE);
		snprintf(c->why, sizeof(c->why), "srtp-setup");
		return;
	}
	set_state(c, C_PROMPT);
}

/* Calls of k waiting for SIP that have their answer. Returns true when k
 * was freed (a connection of its own call, which ended). */
static bool sip_check(struct conn *k, int64_t now)
{
	struct gcall *next;
	bool per_call = k->per_call;
	unsigned done0 = st.done;
	for (struct gcall *c = k->sip.head; c; c = next) {
		next = c->next;
		struct om_uac_call_info i;
		om_uac_call_info(c->uc, &i);
		if (c->st == C_INVITING) {
			if (i.state == OM_UAC_CONFIRMED) {
				c->status = i.status;
				answered(c, &i, now);
			} else if (i.state == OM_UAC_REFUSED) {
				c->status = i.status;
				st.refused++;
				if (i.status > 0 && i.status < 700)
					st.status_count[i.status]++;
				call_done(c, "refused");
			} else if (i.state == OM_UAC_FAILED) {
				st.failed++;
				call_done(c, "failed");
			} else if (i.state == OM_UAC_ENDED) {
				st.failed++;
				call_done(c, "ended-before-answer");
			}
		} else if (c->st == C_BYE && i.state != OM_UAC_CONFIRMED) {
			if (i.bye_status != 200 && !i.remote_bye)
				st.bye_failed++;
			call_done(c, c->why[0] ? c->why : i.remote_bye ? "remote-bye" : "bye");
		}
	}
	return per_call && st.done != done0;
}

/* After om_uac_run: when the server closed the connection, it leaves the
 * epoll set at once (an EOF stays readable: level-triggered, it would wake
 * the loop forever), and the requests waiting for an answer on it (an
 * INVITE, a BYE) can no longer have one: those calls end now. A persistent
 * connection is opened again soon after (as a gateway would); calls in
 * progress send their BYE over the new one. Returns true when k was freed
 * (a connection of its own call). */
static bool conn_check(struct conn *k, int64_t now)
{
	if (k->fd < 0 || om_uac_fd(k->u) >= 0)
		return false;
	epoll_ctl(epfd, EPOLL_CTL_DEL, k->fd, NULL);
	k->fd = -1;
	k->out_armed = false;
	bool per_call = k->per_call;
	if (!per_call) {
		st.conn_lost++;
		k->reopen_at = now + 100;
		fprintf(stderr, "call_load: the server closed a connection (%u so far)\n",
		        st.conn_lost);
	}
	struct gcall *next;
	for (struct gcall *c = k->sip.head; c; c = next) {
		next = c->next;
		if (c->st == C_INVITING) {
			st.failed++;
			call_done(c, "connection-closed");
		} else {
			st.bye_failed++;
			call_done(c, "connection-closed");
		}
		if (per_call)
			return true;
	}
	return false;
}

/* Persistent connections the server closed, opened again. */
static void conns_reopen(int64_t now)
{
	for (struct conn *k = conns; k; k = k->next) {
		if (k->per_call || k->fd >= 0 || !k->reopen_at || now < k->reopen_at)
			continue;
		char err[512];
		if (om_uac_reconnect(k->u, 5000, err, sizeof(err)) == 0) {
			k->fd = om_uac_fd(k->u);
			k->out_armed = false;
			struct epoll_event ev = { .events = EPOLLIN, .data.ptr = k };
			epoll_ctl(epfd, EPOLL_CTL_ADD, k->fd, &ev);
			k->reopen_at = 0;
			st.reopened++;
		} else {
			k->reopen_at = now_ms() + 1000;
			st.reopen_failures++;
			fprintf(stderr, "call_load: opening a connection again: %s\n", err);
		}
	}
}

static void call_start_failed(void)
{
	st.failed++;
	st.active--;
	st.done++;
}

static void call_start(int64_t now, unsigned n)
{
	static struct conn *pool[MAX_GW * 64];
	static unsigned npool, rr;
	char err[512] = "no connection to the server";
	struct gcall *c = om_calloc(1, sizeof(*c));
	st.started++;
	st.active++;
	if (st.active > st.max_active)
		st.max_active = st.active;
	if (!c) {
		call_start_failed();
		return;
	}
	c->id = n;
	c->t_invite = now;
	c->msock = n % o.msocks;
	unsigned ext = o.ext_lo + n % (o.ext_hi - o.ext_lo + 1);
	snprintf(c->ruri, sizeof(c->ruri), "sip:%u@%s", ext, o.domain);
	snprintf(c->from, sizeof(c->from), "%u", 7000000 + n);
	if (o.per_call) {
		c->conn = conn_new(n % o.ngw, err, sizeof(err));
		if (c->conn)
			c->conn->per_call = true;
	} else {
		if (!npool) {
			for (unsigned g = 0; g < o.ngw; g++)
				for (unsigned j = 0; j < o.conns && npool < MAX_GW * 64; j++) {
					struct conn *k = conn_new(g, err, sizeof(err));
					if (!k) {
						fprintf(stderr, "call_load: %s\n", err);
						exit(1);
					}
					pool[npool++] = k;
				}
		}
		/* the next connection that is up */
		for (unsigned tries = 0; tries < npool && !c->conn; tries++) {
			struct conn *k = pool[rr++ % npool];
			if (k->fd >= 0)
				c->conn = k;
		}
	}
	if (!c->conn) {
		fprintf(stderr, "call_load: call %u: %s\n", n, err);
		om_free(c);
		call_start_failed();
		return;
	}
	struct om_uac_call_opts co = {
		.ruri = c->ruri,
		.from_user = c->from,
		.offer = o.rtp ? OM_UAC_OFFER_AVP : OM_UAC_OFFER_SAVP,
		.media_addr = o.media_addr,
		.media_port = msock_port[c->msock],
	};
	if (om_uac_call(c->conn->u, &co, &c->uc) != 0) {
		if (c->conn->per_call)
			conn_free(c->conn);
		om_free(c);
		call_start_failed();
		return;
	}
	conn_arm(c->conn);
	c->st = C_INVITING;
	l_add(&c->conn->sip, c);
}

/* A call whose dialog the server ended (its BYE) while we still talk. */
static bool ended_by_server(struct gcall *c)
{
	struct om_uac_call_info i;
	om_uac_call_info(c->uc, &i);
	if (i.state == OM_UAC_CONFIRMED)
		return false;
	st.ended_early++;
	st.remote_bye_early++;
	call_done(c, i.remote_bye ? "remote-bye-early" : "ended-early");
	return true;
}

/* Calls waiting for the greeting and the beep to end. */
static void prompt_check(int64_t now)
{
	struct gcall *next;
	for (struct gcall *c = l_prompt.head; c; c = next) {
		next = c->next;
		if (ended_by_server(c))
			continue;
		bool go = false;
		if (c->beep_seen && (c->beep_ended || now - c->t_rx_last >= 3 * PTIME)) {
			go = true; /* the beep ended: openum records now */
			st.beeps++;
		} else if (!c->rx && now - c->t_answer >= o.no_prompt_ms) {
			go = true; /* openum plays nothing */
			st.no_prompt++;
		} else if (c->rx && !c->beep_seen && now - c->t_rx_last >= o.no_prompt_ms) {
			go = true; /* openum played something and stopped, no beep */
			st.no_beep++;
		} else if (now - c->t_answer >= o.prompt_max_ms) {
			/* still playing, and never a beep: the call is hung up */
			st.prompt_timeouts++;
			st.failed++;
			call_bye(c);
			c->t_bye = now;
			set_state(c, C_BYE);
			snprintf(c->why, sizeof(c->why), "prompt-timeout");
			continue;
		}
		if (go) {
			c->t_talk = now;
			c->to_send = o.talk_s * (1000 / PTIME);
			set_state(c, C_TALK);
		}
	}
}

static void hang_check(int64_t now)
{
	struct gcall *next;
	for (struct gcall *c = l_hang.head; c; c = next) {
		next = c->next;
		if (now - c->t_hang < 100)
			continue;
		if (c->conn->fd < 0) {
			/* its connection is being opened again: the BYE waits, bounded */
			if (now - c->t_hang >= o.bye_timeout_ms) {
				st.bye_failed++;
				st.bye_timeouts++;
				call_done(c, "bye-timeout");
			}
			continue;
		}
		if (call_bye(c) != 0) {
			call_done(c, "ended-early");
			st.ended_early++;
			continue;
		}
		c->t_bye = now;
		set_state(c, C_BYE);
	}
}

/* Once a second: calls that waited too long for the server (no final
 * response, no answer to the BYE) end; calls the server hung up while we
 * talk end. Nothing waits without a bound. */
static void sweep(int64_t now)
{
	struct conn *kn;
	for (struct conn *k = conns; k; k = kn) {
		kn = k->next;
		struct gcall *next;
		for (struct gcall *c = k->sip.head; c; c = next) {
			next = c->next;
			bool per_call = k->per_call;
			if (c->st == C_INVITING && now - c->t_invite >= o.setup_timeout_ms) {
				st.failed++;
				st.setup_timeouts++;
				call_done(c, "setup-timeout");
			} else if (c->st == C_BYE && now - c->t_bye >= o.bye_timeout_ms) {
				st.bye_failed++;
				st.bye_timeouts++;
				call_done(c, c->why[0] ? c->why : "bye-timeout");
			} else {
				continue;
			}
			if (per_call)
				break; /* k is gone with its call */
		}
	}
	for (unsigned s = 0; s < NSLOTS; s++) {
		struct gcall *next;
		for (struct gcall *c = slots[s].head; c; c = next) {
			next = c->next;
			ended_by_server(c);
		}
	}
}

/* The run's deadline passed: every call still open ends, as failed. */
static void end_all(void)
{
	struct list *lists[NSLOTS + 2] = { &l_prompt, &l_hang };
	for (unsigned s = 0; s < NSLOTS; s++)
		lists[2 + s] = &slots[s];
	for (unsigned i = 0; i < NSLOTS + 2; i++)
		while (lists[i]->head) {
			st.deadline++;
			st.failed++;
			call_done(lists[i]->head, "deadline");
		}
	while (conns) {
		struct conn *k = conns;
		if (!k->sip.head) {
			conn_free(k);
			continue;
		}
		st.deadline++;
		st.failed++;
		call_done(k->sip.head, "deadline"); /* frees k when it was the call's own */
	}
}

static const char usage[] =
    "usage: call_load --server ADDR --port N --gw BIND[,CERT,KEY] ... [options]\n"
    "  --tls --ca F --tls-name NAME   mutual TLS (each --gw with its certificate and key)\n"
    "  --conns N (2 per gateway) | --conn-per-call\n"
    "  --calls N --rate R --concurrency C --talk S   (10, 10/s, 100, 10 s)\n"
    "  --ext LO[-HI] --domain FQDN    Request-URI users (round robin) and host\n"
    "  --wav F (8 kHz mono) --rtp (no SRTP) --media-socks N\n"
    "  --media ADDR[:PORT]  our RTP address; PORT: the first of the pairs (default: free\n"
    "                       pairs the kernel picks)\n"
    "  --no-prompt-ms MS             start talking when openum sent nothing this long\n"
    "  --out F (a JSON line per call) --dump-payload F (the G.711 sent)\n"
    "  --setup-timeout MS (40000) --prompt-max MS (60000) --bye-timeout MS (40000)\n"
    "  --max-seconds S   end every open call and exit 3 after S s (default: the\n"
    "                    schedule, calls / rate, plus the longest a call may take)\n";

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "server", 1, 0, 's' },
		{ "port", 1, 0, 'p' },
		{ "tls", 0, 0, 't' },
		{ "ca", 1, 0, 'a' },
		{ "tls-name", 1, 0, 'n' },
		{ "gw", 1, 0, 'g' },
		{ "conns", 1, 0, 'k' },
		{ "conn-per-call", 0, 0, 'K' },
		{ "calls", 1, 0, 'c' },
		{ "rate", 1, 0, 'r' },
		{ "concurrency", 1, 0, 'C' },
		{ "talk", 1, 0, 'T' },
		{ "ext", 1, 0, 'e' },
		{ "domain", 1, 0, 'd' },
		{ "wav", 1, 0, 'w' },
		{ "rtp", 0, 0, 'R' },
		{ "media", 1, 0, 'm' },
		{ "media-socks", 1, 0, 'M' },
		{ "no-prompt-ms", 1, 0, 'P' },
		{ "out", 1, 0, 'o' },
		{ "dump-payload", 1, 0, 'D' },
		{ "setup-timeout", 1, 0, 'S' },
		{ "prompt-max", 1, 0, 'X' },
		{ "bye-timeout", 1, 0, 'B' },
		{ "max-seconds", 1, 0, 'Z' },
		{ "help", 0, 0, 'h' },
		{ 0, 0, 0, 0 },
	};
	int ch;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 's':
			o.server = optarg;
			break;
		case 'p':
			o.port = (uint16_t)atoi(optarg);
			break;
		case 't':
			o.tls = true;
			break;
		case 'a':
			o.ca = optarg;
			break;
		case 'n':
			o.tls_name = optarg;
			break;
		case 'g': {
			if (o.ngw == MAX_GW)
				break;
			struct gw *g = &o.gw[o.ngw++];
			sscanf(optarg, "%63[^,],%511[^,],%511s", g->bind, g->cert, g->key);
			break;
		}
		case 'k':
			o.conns = (unsigned)atoi(optarg);
			break;
		case 'K':
			o.per_call = true;
			break;
		case 'c':
			o.calls = (unsigned)atoi(optarg);
			break;
		case 'r':
			o.rate = atof(optarg);
			break;
		case 'C':
			o.concurrency = (unsigned)atoi(optarg);
			break;
		case 'T':
			o.talk_s = (unsigned)atoi(optarg);
			break;
		case 'e':
			if (sscanf(optarg, "%u-%u", &o.ext_lo, &o.ext_hi) == 1)
				o.ext_hi = o.ext_lo;
			break;
		case 'd':
			o.domain = optarg;
			break;
		case 'w':
			o.wav = optarg;
			break;
		case 'R':
			o.rtp = true;
			break;
		case 'm': {
			static char a[64];
			unsigned p = 0;
			if (sscanf(optarg, "%63[^:]:%u", a, &p) >= 1) {
				o.media_addr = a;
				o.media_port = (uint16_t)p;
			}
			break;
		}
		case 'M':
			o.msocks = (unsigned)atoi(optarg);
			break;
		case 'P':
			o.no_prompt_ms = (unsigned)atoi(optarg);
			break;
		case 'o':
			o.out_path = optarg;
			break;
		case 'D':
			o.dump = optarg;
			break;
		case 'S':
			o.setup_timeout_ms = (unsigned)atoi(optarg);
			break;
		case 'X':
			o.prompt_max_ms = (unsigned)atoi(optarg);
			break;
		case 'B':
			o.bye_timeout_ms = (unsigned)atoi(optarg);
			break;
		case 'Z':
			o.max_s = (unsigned)atoi(optarg);
			break;
		default:
			fputs(usage, ch == 'h' ? stdout : stderr);
			return ch == 'h' ? 0 : 2;
		}
	}
	if (!o.server || !o.port || !o.ngw || !o.wav || o.rate <= 0 || !o.msocks ||
	    o.msocks > MAX_MSOCK || o.ext_hi < o.ext_lo || (o.tls && (!o.ca || !o.tls_name)) ||
	    !o.setup_timeout_ms || !o.prompt_max_ms || !o.bye_timeout_ms) {
		fputs(usage, stderr);
		return 2;
	}
	struct rlimit rl = { 1 << 20, 1 << 20 };
	if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
		getrlimit(RLIMIT_NOFILE, &rl);
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	srandom((unsigned)getpid() ^ (unsigned)time(NULL));
	if (load_wav(o.wav) != 0)
		return 1;
	out = o.out_path ? fopen(o.out_path, "w") : fopen("/dev/null", "w");
	by_port = om_calloc(65536, sizeof(*by_port));
	epfd = epoll_create1(0);
	if (!out || !by_port || epfd < 0)
		return 1;
	media_open();
	signal(SIGUSR1, on_usr1);
	prctl(PR_SET_PDEATHSIG, SIGTERM); /* never outlive the script that runs us */
	if (!o.max_s)
		o.max_s = (unsigned)(o.calls / o.rate) + o.talk_s +
		          (o.setup_timeout_ms + o.prompt_max_ms + 2 * o.bye_timeout_ms) / 1000 + 30;
	double cpu0 = cpu_s();
	int64_t t0 = now_ms(), next_start = t0, next_slot = t0, next_house = t0, next_timers = t0;
	int64_t deadline = t0 + (int64_t)o.max_s * 1000;
	bool deadline_hit = false;
	unsigned n = 0;
	while (st.done < o.calls) {
		int64_t now = now_ms();
		if (now >= deadline) {
			fprintf(stderr,
			        "call_load: --max-seconds %u passed with %u calls open and %u not "
			        "started: they end as failed\n",
			        o.max_s, st.active, o.calls - n);
			st.failed += o.calls - n; /* never started */
			st.deadline += o.calls - n;
			st.started += o.calls - n;
			end_all();
			deadline_hit = true;
			break;
		}
		/* new calls at the rate, under the concurrency */
		while (n < o.calls && now >= next_start && st.active < o.concurrency) {
			call_start(now, n++);
			next_start = t0 + (int64_t)(n * 1000.0 / o.rate);
		}
		/* the packet clock */
		if (now - next_slot > st.max_tick_late_ms)
			st.max_tick_late_ms = now - next_slot;
		while (next_slot <= now) {
			slot_run((unsigned)((next_slot / SLOT_MS) % NSLOTS), now);
			next_slot += SLOT_MS;
		}
		if (now >= next_house) {
			prompt_check(now);
			hang_check(now);
			conns_reopen(now);
			next_house = now + 20;
		}
		if (drop_requested) {
			/* a gateway's connection drops and comes back */
			static unsigned which;
			unsigned nk = 0, pick;
			struct conn *k;
			drop_requested = 0;
			for (k = conns; k; k = k->next)
				nk += !k->per_call;
			pick = nk ? which++ % nk : 0;
			for (k = conns; k && (k->per_call || pick--);)
				k = k->next;
			if (k) {
				char err[512];
				if (k->fd >= 0)
					epoll_ctl(epfd, EPOLL_CTL_DEL, k->fd, NULL);
				if (om_uac_reconnect(k->u, 10000, err, sizeof(err)) == 0) {
					k->fd = om_uac_fd(k->u);
					k->out_armed = false;
					struct epoll_event ev = { .events = EPOLLIN,
						                  .data.ptr = k };
					epoll_ctl(epfd, EPOLL_CTL_ADD, k->fd, &ev);
					k->reopen_at = 0;
					st.reconnects++;
				} else {
					k->fd = -1;
					k->reopen_at = now_ms() + 1000;
					st.reconnect_failures++;
					fprintf(stderr, "call_load: reconnect: %s\n", err);
				}
			}
		}
		if (now >= next_timers) {
			/* SIP timers of every agent (Timer B: no final response) */
			struct conn *kn;
			for (struct conn *k = conns; k; k = kn) {
				kn = k->next;
				om_uac_run(k->u, 0);
				conn_arm(k);
				if (!sip_check(k, now))
					conn_check(k, now);
			}
			sweep(now);
			next_timers = now + 1000;
		}
		/* the next due time; a start is due only under the concurrency (else
		 * a start time in the past would spin the loop until a call ends) */
		int64_t wake = next_slot;
		if (n < o.calls && st.active < o.concurrency && next_start < wake)
			wake = next_start;
		int timeout = (int)(wake - now_ms());
		struct epoll_event evs[256];
		int ne = epoll_wait(epfd, evs, 256, timeout < 0 ? 0 : timeout);
		now = now_ms();
		for (int e = 0; e < ne; e++) {
			uint64_t tag = evs[e].data.u64 >> 32;
			if (tag == TAG_MEDIA || tag == TAG_RTCP) {
				media_read((unsigned)(evs[e].data.u64 & 0xffffffff),
				           tag == TAG_RTCP);
				continue;
			}
			struct conn *k = evs[e].data.ptr;
			om_uac_run(k->u, 0);
			conn_arm(k);
			/* a connection of its own call is freed with it (one event per
			 * descriptor per turn: evs holds no other pointer to it) */
			if (!sip_check(k, now))
				conn_check(k, now);
		}
	}
	double cpu = cpu_s() - cpu0;
	int64_t wall = now_ms() - t0;
	printf("{\"calls\":%u,\"answered\":%u,\"refused\":%u,\"failed\":%u,\"late_answers\":%u,"
	       "\"setup_ms_avg\":%.1f,\"setup_ms_max\":%lld,\"ended_early\":%u,\"bye_failed\":%u,"
	       "\"max_active\":%u,\"beeps\":%u,\"no_prompt\":%u,\"packets\":%llu,"
	       "\"send_errors\":%llu,\"rx\":%llu,\"max_tick_late_ms\":%lld,\"wall_s\":%.2f,"
	       "\"cpu_s\":%.2f,\"reconnects\":%u,\"reconnect_failures\":%u,",
	       st.started, st.answered, st.refused, st.failed, st.late_answers,
	       st.answered ? (double)st.setup_ms_sum / st.answered : 0.0,
	       (long long)st.setup_ms_max, st.ended_early, st.bye_failed, st.max_active, st.beeps,
	       st.no_prompt, (unsigned long long)st.packets, (unsigned long long)st.send_errors,
	       (unsigned long long)st.rx, (long long)st.max_tick_late_ms, wall / 1000.0, cpu,
	       st.reconnects, st.reconnect_failures);
	printf("\"no_beep\":%u,\"conn_lost\":%u,\"reopened\":%u,\"reopen_failures\":%u,"
	       "\"setup_timeouts\":%u,\"prompt_timeouts\":%u,\"bye_timeouts\":%u,"
	       "\"remote_bye_early\":%u,\"deadline\":%u,\"deadline_hit\":%s,\"max_seconds\":%u,"
	       "\"sip_queued\":%u,",
	       st.no_beep, st.conn_lost, st.reopened, st.reopen_failures, st.setup_timeouts,
	       st.prompt_timeouts, st.bye_timeouts, st.remote_bye_early, st.deadline,
	       deadline_hit ? "true" : "false", o.max_s, st.sip_queued);
	bool first = true;
	printf("\"refused_by_status\":{");
	for (int s = 0; s < 700; s++)
		if (st.status_count[s]) {
			printf("%s\"%d\":%u", first ? "" : ",", s, st.status_count[s]);
			first = false;
		}
	printf("}}\n");
	fclose(out);
	return deadline_hit ? 3 : 0;
}
