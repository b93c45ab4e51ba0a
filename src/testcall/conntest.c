/* conntest.c — the connectivity test (see conntest.h): one call from the
 * gateway side, each step timed and, on failure, explained. RFC 3261 (the
 * UAC: OPTIONS §11, INVITE §13, BYE §15), RFC 5922 §7.2 (the server's
 * name), RFC 3264/4568 (offer with SDES keys), RFC 3550/3711 (the media),
 * RFC 4733 (DTMF sent in the media), RFC 2976 (the server's INFO echo).
 *
 * The media loop: one non-blocking UDP socket, a 20 ms frame clock, the
 * UAC's poll loop run between frames. Phases of the call:
 *   greeting — we send silence and receive until the server's audio has
 *              stopped for GREETING_GAP_MS (its prompt and beep are over);
 *   speech   — we send the caller's audio (a file, or a tone);
 *   dtmf     — each digit as RFC 4733 events (or INFO when the answer has
 *              no telephone-event), acknowledged by the server's echo;
 *   bye.                                                                    */
#include "testcall/conntest.h"
#include "testcall/rtp.h"
#include "testcall/uac.h"

#include "core/alloc.h"
#include "core/str.h"
#include "media/rtp.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <samplerate.h>
#include <sndfile.h>

#define GREETING_GAP_MS 700    /* the server's audio stopped: its prompt is over */
#define GREETING_MAX_MS 180000 /* the longest greeting waited for */
#define VOICED_DBOV     -45.0
#define TONE_MS         1500

static const char *const step_names[OM_CT_NSTEPS] = {
	"resolve", "connect", "tls", "options", "invite", "media", "dtmf", "bye",
};

struct ct {
	const struct om_conntest_opts *o;
	struct om_conntest_report *r;
	int emitted; /* steps handed to step_h */
	char addr[INET6_ADDRSTRLEN];
	char local[INET6_ADDRSTRLEN];
	const char *domain; /* the server's name in Request-URIs */
	struct om_uac *u;
	struct om_uac_call *call;
	int fd; /* our RTP socket */
	uint16_t media_port;
	struct sockaddr_storage peer;
	socklen_t peer_len;
	struct om_tc_tx tx;
	struct om_tc_rx rx;
	bool tx_on, rx_on;
	unsigned ptime;
	int64_t next_frame;
	const int16_t *say; /* what is being sent now, NULL: silence */
	size_t say_n, say_pos;
	int16_t *tone;
	int64_t last_audio_ms; /* wall clock of the last audio packet received */
	uint64_t audio_packets;
	/* The digit waiting for its echo. */
	size_t info0, rtp0;
	char digit;
};

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const char *om_conntest_result_name(enum om_conntest_result r)
{
	switch (r) {
	case OM_CT_OK:
		return "ok";
	case OM_CT_FAILED:
		return "failed";
	case OM_CT_SKIPPED:
		return "skipped";
	default:
		return "not_reached";
	}
}

/* ------------------------------------------------------------ reporting */

static struct om_conntest_kv *kv_new(struct om_conntest_step *s, const char *key)
{
	if (s->nkv == OM_CT_MAX_KV)
		return NULL;
	struct om_conntest_kv *k = &s->kv[s->nkv++];
	memset(k, 0, sizeof(*k));
	k->key = key;
	return k;
}

static void __attribute__((format(printf, 3, 4)))
kv_str(struct om_conntest_step *s, const char *key, const char *fmt, ...)
{
	struct om_conntest_kv *k = kv_new(s, key);
	if (!k)
		return;
	k->type = OM_CT_STR;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(k->str, sizeof(k->str), fmt, ap);
	va_end(ap);
}

static void kv_num(struct om_conntest_step *s, const char *key, int64_t v)
{
	struct om_conntest_kv *k = kv_new(s, key);
	if (k) {
		k->type = OM_CT_NUM;
		k->num = v;
	}
}

static void kv_bool(struct om_conntest_step *s, const char *key, bool v)
{
	struct om_conntest_kv *k = kv_new(s, key);
	if (k) {
		k->type = OM_CT_BOOL;
		k->num = v;
	}
}

/* Hands every step whose result is final, in order, to step_h. A step
 * that passed may wait (TLS waits for the server's first answer: TLS 1.3
 * delivers a refusal of our certificate only after the handshake). */
static void emit(struct ct *t, int upto)
{
	for (; t->emitted <= upto && t->emitted < OM_CT_NSTEPS; t->emitted++)
		if (t->o->step_h)
			t->o->step_h(&t->r->step[t->emitted], t->o->arg);
}

static struct om_conntest_step *st(struct ct *t, enum om_conntest_step_id id)
{
	return &t->r->step[id];
}

static void ok(struct ct *t, enum om_conntest_step_id id, int64_t latency)
{
	st(t, id)->result = OM_CT_OK;
	st(t, id)->latency_ms = latency;
}

static void skip(struct ct *t, enum om_conntest_step_id id, const char *why)
{
	st(t, id)->result = OM_CT_SKIPPED;
	snprintf(st(t, id)->reason, sizeof(st(t, id)->reason), "%s", why);
}

static void __attribute__((format(printf, 4, 5)))
fail(struct ct *t, enum om_conntest_step_id id, int64_t latency, const char *fmt, ...)
{
	struct om_conntest_step *s = st(t, id);
	s->result = OM_CT_FAILED;
	s->latency_ms = latency;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(s->reason, sizeof(s->reason), fmt, ap);
	va_end(ap);
	if (t->r->failed < 0 || (int)id < t->r->failed)
		t->r->failed = (int)id;
}

static void __attribute__((format(printf, 3, 4)))
act(struct ct *t, enum om_conntest_step_id id, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(st(t, id)->action, sizeof(st(t, id)->action), fmt, ap);
	va_end(ap);
}

static void iso_time(int64_t ms, char *buf, size_t len)
{
	time_t s = (time_t)(ms / 1000);
	struct tm tm;
	if (!ms || !gmtime_r(&s, &tm) || !strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(buf, len, "%s", "");
}

/* ------------------------------------------------------------ resolve */

static int do_resolve(struct ct *t)
{
	const struct om_conntest_opts *o = t->o;
	struct om_conntest_step *s = st(t, OM_CT_RESOLVE);
	unsigned char buf[16];
	int64_t t0 = now_ms();
	kv_str(s, "host", "%s", o->host);
	if (inet_pton(AF_INET, o->host, buf) == 1 || inet_pton(AF_INET6, o->host, buf) == 1) {
		snprintf(t->addr, sizeof(t->addr), "%s", o->host);
		kv_str(s, "address", "%s", t->addr);
		kv_str(s, "note", "a numeric address: nothing to resolve");
		ok(t, OM_CT_RESOLVE, 0);
		return 0;
	}
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM }, *res = NULL;
	int rc = getaddrinfo(o->host, NULL, &hints, &res);
	int64_t lat = now_ms() - t0;
	if (rc != 0 || !res) {
		fail(t, OM_CT_RESOLVE, lat, "cannot resolve %s: %s", o->host,
		     rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
		act(t, OM_CT_RESOLVE,
		    "check the name in DNS (or /etc/hosts) of this machine, or give the server's "
		    "address with --server ADDRESS[:PORT] and the name its certificate carries "
		    "with --tls-name");
		return EHOSTUNREACH;
	}
	char all[300] = "";
	size_t off = 0;
	for (struct addrinfo *a = res; a; a = a->ai_next) {
		char h[INET6_ADDRSTRLEN];
		const void *p = a->ai_family == AF_INET6
		                    ? (const void *)&((struct sockaddr_in6 *)a->ai_addr)->sin6_addr
		                    : (const void *)&((struct sockaddr_in *)a->ai_addr)->sin_addr;
		if (!inet_ntop(a->ai_family, p, h, sizeof(h)) || strstr(all, h))
			continue;
		if (!t->addr[0])
			snprintf(t->addr, sizeof(t->addr), "%s", h);
		if (off + strlen(h) + 3 < sizeof(all))
			off += (size_t)snprintf(all + off, sizeof(all) - off, "%s%s",
			                        off ? ", " : "", h);
	}
	freeaddrinfo(res);
	kv_str(s, "address", "%s", t->addr);
	kv_str(s, "addresses", "%s", all);
	ok(t, OM_CT_RESOLVE, lat);
	return 0;
}

/* Our address towards the server (a UDP "connect" sends nothing). */
static void local_towards(struct ct *t)
{
	if (t->o->bind) {
		snprintf(t->local, sizeof(t->local), "%s", t->o->bind);
		return;
	}
	struct sockaddr_storage ss;
	socklen_t len;
	char spec[INET6_ADDRSTRLEN + 10];
	snprintf(spec, sizeof(spec), strchr(t->addr, ':') ? "[%s]:%u" : "%s:%u", t->addr,
	         (unsigned)t->o->port);
	snprintf(t->local, sizeof(t->local), "%s", strchr(t->addr, ':') ? "::1" : "127.0.0.1");
	if (om_tc_parse_addr(spec, &ss, &len) != 0)
		return;
	int fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	struct sockaddr_storage me;
	socklen_t ml = sizeof(me);
	if (connect(fd, (struct sockaddr *)&ss, len) == 0 &&
	    getsockname(fd, (struct sockaddr *)&me, &ml) == 0) {
		const void *p = me.ss_family == AF_INET6
		                    ? (const void *)&((struct sockaddr_in6 *)&me)->sin6_addr
		                    : (const void *)&((struct sockaddr_in *)&me)->sin_addr;
		inet_ntop(me.ss_family, p, t->local, sizeof(t->local));
	}
	close(fd);
}

/* ------------------------------------------------------------ connect, TLS */

static void tls_facts(struct ct *t, const struct om_uac_conn_report *rep)
{
	struct om_conntest_step *s = st(t, OM_CT_TLS);
	char nb[32], na[32];
	if (rep->version[0])
		kv_str(s, "protocol", "%s", rep->version);
	if (rep->cipher[0])
		kv_str(s, "cipher", "%s", rep->cipher);
	if (!rep->have_cert)
		return;
	iso_time(rep->not_before_ms, nb, sizeof(nb));
	iso_time(rep->not_after_ms, na, sizeof(na));
	kv_str(s, "server_subject", "%s", rep->subject);
	kv_str(s, "server_issuer", "%s", rep->issuer);
	kv_str(s, "server_sha1", "%s", rep->sha1);
	kv_str(s, "server_not_before", "%s", nb);
	kv_str(s, "server_not_after", "%s", na);
	kv_str(s, "server_names", "%s", rep->sans);
}

/* The server refused us after the handshake (an alert, or a close before
 * any answer): the TLS step fails. */
static void tls_refused_by_server(struct ct *t, const char *detail)
{
	/* "error:0A000418:SSL routines::tlsv1 alert unknown ca": the alert. */
	const char *colons = strstr(detail, "::");
	if (colons && strstr(colons, "alert"))
		detail = colons + 2;
	struct om_conntest_step *s = st(t, OM_CT_TLS);
	s->result = OM_CT_NOT_REACHED;
	fail(t, OM_CT_TLS, s->latency_ms,
	     "the server refused this gateway's certificate after the handshake%s%s%s",
	     detail[0] ? " (" : "", detail, detail[0] ? ")" : ": it closed the connection");
	act(t, OM_CT_TLS,
	    "on the server, `openum events --id 1130` says why: the gateway's root must be "
	    "trusted (`openum cert import ROOT.pem --trusted`) and its certificate must carry "
	    "the TLS name of a gateway (`openum gateway list`)");
}

static int do_connect(struct ct *t)
{
	const struct om_conntest_opts *o = t->o;
	struct om_uac_conn_report rep;
	memset(&rep, 0, sizeof(rep));
	local_towards(t);
	struct om_uac_cfg cfg = {
		.server = t->addr,
		.port = o->port,
		.tls = o->secured,
		.tls_name = o->tls_name,
		.bind = o->bind,
		.domain = t->local,
		.cert_x509 = o->cert,
		.chain_x509 = o->chain,
		.key_pkey = o->key,
		.ca_store = o->ca,
		.report = &rep,
	};
	char err[512];
	int rc = om_uac_new(&cfg, o->timeout_ms, &t->u, err, sizeof(err));
	struct om_conntest_step *sc = st(t, OM_CT_CONNECT), *stl = st(t, OM_CT_TLS);
	kv_str(sc, "address", "%s", t->addr);
	kv_num(sc, "port", o->port);
	kv_str(sc, "transport", "%s", o->secured ? "tls" : "tcp");
	kv_str(sc, "local_address", "%s", t->local);
	if (rc && rep.failed <= OM_UAC_STAGE_CONNECT) {
		if (rep.failed == OM_UAC_STAGE_SETUP) {
			fail(t, OM_CT_CONNECT, 0, "%s", err);
			act(t, OM_CT_CONNECT, "check the certificate, key and CA given");
			return rc;
		}
		switch (rep.err) {
		case ECONNREFUSED:
			fail(t, OM_CT_CONNECT, rep.connect_ms,
			     "nothing listens on %s port %u (connection refused)", t->addr,
			     o->port);
			act(t, OM_CT_CONNECT,
			    "start `openum serve` there, or use its port: %s (`openum status` on "
			    "the server shows its listeners; sip_tcp and sip_tls in openum.conf)",
			    o->secured ? "the TLS port, 5061 unless sip_tls says otherwise"
			               : "the TCP port, 5060 unless sip_tcp says otherwise");
			break;
		case ETIMEDOUT:
			fail(t, OM_CT_CONNECT, rep.connect_ms,
			     "no answer from %s port %u within %d s", t->addr, o->port,
			     o->timeout_ms / 1000);
			act(t, OM_CT_CONNECT,
			    "a firewall drops the connection or the address is wrong: allow TCP "
			    "port %u from this host to the server",
			    o->port);
			break;
		case ENETUNREACH:
		case EHOSTUNREACH:
			fail(t, OM_CT_CONNECT, rep.connect_ms, "no route to %s: %s", t->addr,
			     strerror(rep.err));
			act(t, OM_CT_CONNECT, "check the address and this host's routes");
			break;
		default:
			fail(t, OM_CT_CONNECT, rep.connect_ms, "%s", err);
			act(t, OM_CT_CONNECT, "check the address and the port");
		}
		return rc;
	}
	ok(t, OM_CT_CONNECT, rep.connect_ms);
	if (!o->secured) {
		skip(t, OM_CT_TLS, "plain TCP (--secured not given)");
		return 0;
	}
	kv_str(stl, "tls_name", "%s", o->tls_name);
	tls_facts(t, &rep);
	if (!rc) {
		kv_bool(stl, "name_ok", true);
		ok(t, OM_CT_TLS, rep.tls_ms);
		return 0;
	}
	if (rep.failed == OM_UAC_STAGE_NAME) {
		kv_bool(stl, "name_ok", false);
		fail(t, OM_CT_TLS, rep.tls_ms,
		     "the server's certificate does not carry the name %s (it names: %s)%s",
		     o->tls_name, rep.sans[0] ? rep.sans : rep.subject,
		     rep.tls_reason == OM_TLS_R_WILDCARD ? "; wildcard names do not count" : "");
		act(t, OM_CT_TLS,
		    "call the server by a name its certificate carries (--tls-name), or give "
		    "openum a certificate for %s (its fqdn): `openum cert new` or `openum cert "
		    "request`, then export it to the gateways",
		    o->tls_name);
		return rc;
	}
	char na[32];
	iso_time(rep.not_after_ms, na, sizeof(na));
	if (strstr(rep.tls_detail, "alert")) {
		/* An alert from the server during the handshake (TLS 1.2). */
		tls_refused_by_server(t, rep.tls_detail);
		st(t, OM_CT_TLS)->latency_ms = rep.tls_ms;
		return rc;
	}
	switch (rep.tls_reason) {
	case OM_TLS_R_EXPIRED:
		fail(t, OM_CT_TLS, rep.tls_ms,
		     "the server's certificate has expired (not after %s; %s)", na, rep.tls_detail);
		act(t, OM_CT_TLS,
		    "renew openum's certificate (`openum cert new`, or `openum cert request` for "
		    "your CA), then export it to the gateways; `openum cert list` shows the dates");
		break;
	case OM_TLS_R_NOT_YET_VALID:
		fail(t, OM_CT_TLS, rep.tls_ms, "the server's certificate is not valid yet (%s)",
		     rep.tls_detail);
		act(t, OM_CT_TLS, "check the clocks of both machines (NTP)");
		break;
	case OM_TLS_R_UNKNOWN_CA:
	case OM_TLS_R_BAD_CERT:
		fail(t, OM_CT_TLS, rep.tls_ms,
		     "the server's certificate (%s, issued by %s) is not trusted here: %s",
		     rep.subject, rep.issuer, rep.tls_detail);
		act(t, OM_CT_TLS,
		    "give --ca with openum's certificate (`openum cert export ID --out um.pem` on "
		    "the server) or the root that issued it");
		break;
	case OM_TLS_R_TIMEOUT:
		fail(t, OM_CT_TLS, rep.tls_ms, "no complete TLS handshake within %d s",
		     o->timeout_ms / 1000);
		act(t, OM_CT_TLS, "is this the server's TLS port (sip_tls)? TCP is the other one");
		break;
	default:
		fail(t, OM_CT_TLS, rep.tls_ms, "the TLS handshake failed: %s (%s)",
		     om_tls_reject_str(rep.tls_reason), rep.tls_detail[0] ? rep.tls_detail : err);
		act(t, OM_CT_TLS,
		    "is this the server's TLS port? `openum events --id 1130` on the server says "
		    "whether it refused this gateway");
	}
	return rc;
}

/* ------------------------------------------------------------ OPTIONS */

/* Runs the UAC until pred holds, the connection closes or ms pass. */
static bool run_until(struct ct *t, int64_t ms, bool (*pred)(struct ct *t))
{
	int64_t end = now_ms() + ms;
	for (;;) {
		if (pred(t))
			return true;
		int64_t left = end - now_ms();
		if (left <= 0 || !om_uac_connected(t->u))
			return pred(t);
		om_uac_run(t->u, (int)(left > 50 ? 50 : left));
	}
}

static bool options_done(struct ct *t)
{
	return om_uac_options_status(t->u, NULL, 0) != 0;
}

/* After the connection closed unexpectedly: over TLS, the server refused
 * us (certificate) when it never answered anything. True when handled. */
static bool closed_tls(struct ct *t)
{
	char detail[256];
	if (!t->o->secured)
		return false;
	om_uac_tls_failure(t->u, detail, sizeof(detail));
	tls_refused_by_server(t, detail);
	return true;
}

static int do_options(struct ct *t)
{
	const struct om_conntest_opts *o = t->o;
	char ruri[300], phrase[64];
	snprintf(ruri, sizeof(ruri), "sip:%s", t->domain);
	int64_t t0 = now_ms();
	int rc = om_uac_options(t->u, ruri);
	if (rc) {
		fail(t, OM_CT_OPTIONS, 0, "cannot send the OPTIONS request: %s", strerror(rc));
		return rc;
	}
	run_until(t, o->timeout_ms, options_done);
	int status = om_uac_options_status(t->u, phrase, sizeof(phrase));
	int64_t lat = now_ms() - t0;
	struct om_conntest_step *s = st(t, OM_CT_OPTIONS);
	kv_str(s, "request_uri", "%s", ruri);
	if (status)
		kv_num(s, "status", status);
	if (status >= 200 && status < 300) {
		kv_str(s, "reason_phrase", "%s", phrase);
		ok(t, OM_CT_OPTIONS, lat);
		return 0;
	}
	if (!status || status == 408) {
		if (!om_uac_connected(t->u) && closed_tls(t))
			return ECONNRESET;
		fail(t, OM_CT_OPTIONS, lat, "%s",
		     om_uac_connected(t->u) ? "no answer to OPTIONS"
		                            : "the server closed the connection without answering");
		act(t, OM_CT_OPTIONS,
		    "openum answers configured gateways only and drops anything else without a "
		    "word (event 1131): add this host (%s) as a gateway (`openum gateway new NAME "
		    "--address %s --dialplan PLAN`) or check `openum events --id 1131`",
		    t->local, t->local);
		return ETIMEDOUT;
	}
	kv_str(s, "reason_phrase", "%s", phrase);
	fail(t, OM_CT_OPTIONS, lat, "%d %s", status, phrase);
	if (status == 403 && strcasestr(phrase, "TLS"))
		act(t, OM_CT_OPTIONS,
		    "the gateway's dial plan is SIPSecured or Secured: it must use mutual TLS "
		    "(run with --secured on the TLS port); the server raised event 1132");
	else
		act(t, OM_CT_OPTIONS, "`openum events --since 10m` on the server says why");
	return EPERM;
}

/* ------------------------------------------------------------ INVITE */

static bool final_seen(struct ct *t)
{
	struct om_uac_call_info i;
	om_uac_call_info(t->call, &i);
	return i.state != OM_UAC_CALLING && i.state != OM_UAC_RINGING;
}

static int open_media(struct ct *t)
{
	struct sockaddr_storage ss;
	socklen_t len;
	char spec[INET6_ADDRSTRLEN + 8];
	snprintf(spec, sizeof(spec), strchr(t->local, ':') ? "[%s]:0" : "%s:0", t->local);
	if (om_tc_parse_addr(spec, &ss, &len) != 0)
		return EINVAL;
	t->fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (t->fd < 0)
		return errno;
	if (bind(t->fd, (struct sockaddr *)&ss, len) != 0)
		return errno;
	len = sizeof(ss);
	if (getsockname(t->fd, (struct sockaddr *)&ss, &len) != 0)
		return errno;
	t->media_port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
	                                               : ((struct sockaddr_in *)&ss)->sin_port);
	return 0;
}

/* The value of header `name` in a whole message ("" when absent). */
static void header_value(const char *msg, const char *name, char *out, size_t len)
{
	size_t nl = strlen(name);
	out[0] = '\0';
	for (const char *p = msg; p && *p; p = strstr(p, "\r\n") ? strstr(p, "\r\n") + 2 : NULL) {
		if (p[0] == '\r' && p[1] == '\n')
			break; /* the body */
		if (!strncasecmp(p, name, nl) && p[nl] == ':') {
			const char *v = p + nl + 1, *e = strstr(v, "\r\n");
			while (*v == ' ' || *v == '\t')
				v++;
			size_t n = e ? (size_t)(e - v) : strlen(v);
			snprintf(out, len, "%.*s", (int)(n < len ? n : len - 1), v);
			return;
		}
	}
}

static enum om_srtp_suite srtp_suite(enum om_sdp_crypto_suite s)
{
	switch (s) {
	case OM_SDP_AES_CM_128_HMAC_SHA1_32:
		return OM_SRTP_AES_CM_128_HMAC_SHA1_32;
	case OM_SDP_AES_256_CM_HMAC_SHA1_80:
		return OM_SRTP_AES_256_CM_HMAC_SHA1_80;
	case OM_SDP_AEAD_AES_128_GCM:
		return OM_SRTP_AEAD_AES_128_GCM;
	case OM_SDP_AEAD_AES_256_GCM:
		return OM_SRTP_AEAD_AES_256_GCM;
	default:
		return OM_SRTP_AES_CM_128_HMAC_SHA1_80;
	}
}

static void key_cfg(const struct om_sdp_crypto_key *k, struct om_tc_srtp *c)
{
	memset(c, 0, sizeof(*c));
	c->on = true;
	c->suite = srtp_suite(k->suite);
	c->key_len = k->keysalt_len < sizeof(c->key) ? k->keysalt_len : sizeof(c->key);
	memcpy(c->key, k->keysalt, c->key_len);
	uint8_t mki[8];
	size_t ml = om_sdp_mki_bytes(k, mki);
	if (ml && ml <= sizeof(c->mki)) {
		memcpy(c->mki, mki, ml);
		c->mki_len = ml;
	}
}

/* Where the server wants our media, from its answer. */
static int media_setup(struct ct *t, const struct om_uac_call_info *i)
{
	const struct om_sdp_result *r = i->sdp;
	struct om_sdp *a = NULL;
	struct om_sdp_error e;
	int rc = om_sdp_parse(i->answer_sdp, strlen(i->answer_sdp), &a, &e);
	if (rc)
		return rc;
	size_t mi = r->media_index < a->nmedia ? r->media_index : 0;
	const struct om_sdp_media *m = a->nmedia ? &a->media[mi] : NULL;
	char spec[300];
	if (!m || m->conn.addr.len >= 200) {
		om_sdp_free(a);
		return EINVAL;
	}
	bool v6 = memchr(m->conn.addr.p, ':', m->conn.addr.len) != NULL;
	snprintf(spec, sizeof(spec), v6 ? "[%.*s]:%u" : "%.*s:%u", (int)m->conn.addr.len,
	         m->conn.addr.p, (unsigned)m->port);
	rc = om_tc_parse_addr(spec, &t->peer, &t->peer_len);
	t->ptime = m->ptime ? m->ptime : 20;
	if (t->ptime < 10 || t->ptime > 60)
		t->ptime = 20;
	bool alaw = r->pt == 8;
	for (size_t k = 0; k < m->nmap; k++)
		if (m->map[k].pt == r->pt && om_str_eq_c(m->map[k].encoding, "PCMA"))
			alaw = true;
	om_sdp_free(a);
	if (rc)
		return rc;
	struct om_tc_srtp send_cfg, recv_cfg;
	memset(&send_cfg, 0, sizeof(send_cfg));
	memset(&recv_cfg, 0, sizeof(recv_cfg));
	if (r->srtp) {
		key_cfg(&r->local_key[0], &send_cfg);
		key_cfg(&r->remote_key, &recv_cfg);
		if (t->o->hook_bad_srtp_key)
			recv_cfg.key[0] ^=
			    0x5a; /* test hook: nothing the server sends authenticates */
	}
	memset(&t->tx, 0, sizeof(t->tx));
	t->tx.pt = r->pt;
	t->tx.alaw = alaw;
	t->tx.te_pt = r->te_pt;
	t->tx.ptime = t->ptime;
	uint8_t rnd[10];
	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		memset(rnd, 7, sizeof(rnd));
	memcpy(&t->tx.ssrc, rnd, 4);
	memcpy(&t->tx.ts, rnd + 4, 4);
	memcpy(&t->tx.seq, rnd + 8, 2);
	t->tx.talkspurt = true;
	rc = om_tc_tx_init(&t->tx, &send_cfg);
	if (!rc) {
		t->tx_on = true;
		rc = om_tc_rx_init(&t->rx, &recv_cfg, r->te_pt);
		t->rx_on = rc == 0;
	}
	OPENSSL_cleanse(&send_cfg, sizeof(send_cfg));
	OPENSSL_cleanse(&recv_cfg, sizeof(recv_cfg));
	return rc;
}

static int do_invite(struct ct *t)
{
	const struct om_conntest_opts *o = t->o;
	struct om_conntest_step *s = st(t, OM_CT_INVITE);
	char ruri[300], extra[160];
	const char *ext = o->extension ? o->extension : OM_CONNTEST_EXTENSION;
	snprintf(ruri, sizeof(ruri), "sip:%s@%s", ext, t->domain);
	snprintf(extra, sizeof(extra), OM_CONNTEST_HEADER ": connectivity%s%s\r\n",
	         o->deliver ? ";deliver" : "", o->dtmf && o->dtmf[0] ? ";echo-dtmf" : "");
	kv_str(s, "request_uri", "%s", ruri);
	int rc = open_media(t);
	if (rc) {
		fail(t, OM_CT_INVITE, 0, "cannot open a UDP socket for the media on %s: %s",
		     t->local, strerror(rc));
		return rc;
	}
	struct om_uac_call_opts co = {
		.ruri = ruri,
		.from_user = o->from_user ? o->from_user : "test",
		.extra = extra,
		.offer = o->media_secured ? OM_UAC_OFFER_SAVP : OM_UAC_OFFER_AVP,
		.media_addr = t->local,
		.media_port = t->media_port,
		.suite = o->media_secured ? o->suite : OM_SDP_SUITE_UNKNOWN,
	};
	int64_t t0 = now_ms();
	rc = om_uac_call(t->u, &co, &t->call);
	if (rc) {
		fail(t, OM_CT_INVITE, 0, "cannot send the INVITE: %s", strerror(rc));
		return rc;
	}
	run_until(t, o->timeout_ms, final_seen);
	int64_t lat = now_ms() - t0;
	struct om_uac_call_info i;
	om_uac_call_info(t->call, &i);
	kv_str(s, "offer", "%s", o->media_secured ? "RTP/SAVP" : "RTP/AVP");
	if (o->media_secured)
		kv_str(s, "suites_offered", "%s",
		       o->suite ? om_sdp_suite_name(o->suite) : "every suite (GCM first)");
	kv_str(s, "call_id", "%s", i.call_id);
	if (i.state == OM_UAC_CALLING || i.state == OM_UAC_RINGING || i.state == OM_UAC_FAILED) {
		if (!om_uac_connected(t->u) && !i.status) {
			fail(t, OM_CT_INVITE, lat,
			     "the server closed the connection without answering");
		} else {
			fail(t, OM_CT_INVITE, lat, "no final answer to the INVITE within %d s%s",
			     o->timeout_ms / 1000,
			     i.provisional ? " (a provisional answer came)" : "");
		}
		act(t, OM_CT_INVITE,
		    "`openum events --since 10m` and `openum calls` on the server");
		return ETIMEDOUT;
	}
	char phrase[128] = "", warning[200], mode[64];
	const char *sp = strchr(i.response, ' ');
	if (sp && (sp = strchr(sp + 1, ' ')))
		snprintf(phrase, sizeof(phrase), "%.*s", (int)strcspn(sp + 1, "\r\n"), sp + 1);
	header_value(i.response, "Warning", warning, sizeof(warning));
	header_value(i.response, OM_CONNTEST_MODE_HEADER, mode, sizeof(mode));
	kv_num(s, "status", i.status);
	kv_str(s, "reason_phrase", "%s", phrase);
	if (warning[0])
		kv_str(s, "warning", "%s", warning);
	if (i.status >= 300) {
		fail(t, OM_CT_INVITE, lat, "%d %s%s%s", i.status, phrase, warning[0] ? ": " : "",
		     warning);
		if (i.status == 488 && !o->media_secured)
			act(t, OM_CT_INVITE,
			    "the dial plan is Secured: media must be SRTP; run with --media-secured "
			    "(the gateway must offer RTP/SAVP with a=crypto); event 1132 on the server");
		else if (i.status == 488)
			act(t, OM_CT_INVITE,
			    "the server accepted none of the suites offered: try without --suite; "
			    "event 1132 on the server gives its reason");
		else if (i.status == 403 && strcasestr(phrase, "TLS"))
			act(t, OM_CT_INVITE,
			    "the gateway's dial plan is SIPSecured or Secured: calls must use mutual "
			    "TLS (run with --secured on the TLS port); event 1132 on the server");
		else if (i.status == 403 && strcasestr(phrase, "not served"))
			act(t, OM_CT_INVITE,
			    "this server does not serve the gateway's dial plan: `openum server set "
			    "--dialplans` (event 1136)");
		else if (i.status == 503)
			act(t, OM_CT_INVITE,
			    "the server takes no new calls now (a limit, draining, or little disk "
			    "space): `openum status` and `openum events --since 10m`");
		else
			act(t, OM_CT_INVITE, "`openum events --since 10m` on the server says why");
		return EPERM;
	}
	if (!i.sdp) {
		fail(t, OM_CT_INVITE, lat, "%d %s without a usable SDP answer", i.status, phrase);
		act(t, OM_CT_INVITE, "a device between this host and openum rewrote the SDP?");
		return EPROTO;
	}
	const struct om_sdp_result *r = i.sdp;
	kv_str(s, "signalling", "%s", o->secured ? "tls" : "tcp");
	kv_str(s, "media", "%s", r->srtp ? "SRTP" : "RTP");
	if (r->srtp)
		kv_str(s, "suite", "%s", om_sdp_suite_name(r->remote_key.suite));
	if (mode[0]) {
		kv_str(s, "security_mode", "%s", mode);
	} else {
		kv_str(s, "security_mode", "%s",
		       !o->secured ? "Unsecured"
		       : r->srtp   ? "Secured"
		                   : "SIPSecured");
		kv_str(s, "security_mode_source", "inferred from the transport and media");
	}
	if (media_setup(t, &i) != 0) {
		fail(t, OM_CT_INVITE, lat, "the server's SDP answer names no usable media address");
		act(t, OM_CT_INVITE, "check media_address in the server's openum.conf");
		return EPROTO;
	}
	char pa[INET6_ADDRSTRLEN];
	const void *pp = t->peer.ss_family == AF_INET6
	                     ? (const void *)&((struct sockaddr_in6 *)&t->peer)->sin6_addr
	                     : (const void *)&((struct sockaddr_in *)&t->peer)->sin_addr;
	inet_ntop(t->peer.ss_family, pp, pa, sizeof(pa));
	kv_str(s, "server_media", "%s port %u", pa,
	       (unsigned)ntohs(((struct sockaddr_in *)&t->peer)->sin_port));
	kv_str(s, "codec", "%s", t->tx.alaw ? "PCMA" : "PCMU");
	kv_bool(s, "telephone_event", r->te_pt >= 0);
	if (o->media_secured && !r->srtp) {
		fail(t, OM_CT_INVITE, lat, "the server answered SRTP with plain RTP");
		return EPROTO;
	}
	ok(t, OM_CT_INVITE, lat);
	return 0;
}

/* ------------------------------------------------------------ media */

static void recv_all(struct ct *t)
{
	uint8_t buf[OM_TC_PKT_MAX + 64];
	for (int k = 0; k < 64; k++) {
		struct sockaddr_storage from;
		socklen_t fl = sizeof(from);
		ssize_t n = recvfrom(t->fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fl);
		if (n <= 0)
			return;
		uint64_t before = t->rx.packets - t->rx.events;
		om_tc_rx_packet(&t->rx, buf, (size_t)n);
		if (t->rx.packets - t->rx.events > before) {
			t->audio_packets++;
			t->last_audio_ms = now_ms();
		}
	}
}

/* One frame of what we say (or silence) when it is due. */
static void send_frame(struct ct *t)
{
	int16_t pcm[480];
	uint8_t out[OM_TC_PKT_MAX];
	size_t n = t->ptime * 8;
	for (size_t k = 0; k < n; k++)
		pcm[k] = t->say && t->say_pos < t->say_n ? t->say[t->say_pos++] : 0;
	size_t len = om_tc_tx_audio(&t->tx, pcm, NULL, n, out);
	if (len)
		sendto(t->fd, out, len, 0, (struct sockaddr *)&t->peer, t->peer_len);
}

/* Runs the call for up to ms: frames on time, packets and SIP handled;
 * stops early when pred holds (NULL: never) or the call ended. */
static void media_run(struct ct *t, int64_t ms, bool (*pred)(struct ct *t))
{
	int64_t end = now_ms() + ms;
	for (;;) {
		recv_all(t);
		om_uac_run(t->u, 0);
		struct om_uac_call_info i;
		om_uac_call_info(t->call, &i);
		if ((pred && pred(t)) || i.state != OM_UAC_CONFIRMED)
			return;
		int64_t now = now_ms();
		if (now >= end)
			return;
		if (now >= t->next_frame) {
			send_frame(t);
			t->next_frame += t->ptime;
			if (t->next_frame < now - 100)
				t->next_frame = now; /* we were late: keep wall-clock time */
		}
		int64_t wait = t->next_frame - now_ms();
		if (wait > end - now_ms())
			wait = end - now_ms();
		struct pollfd pf = { .fd = t->fd, .events = POLLIN };
		if (wait > 0)
			poll(&pf, 1, (int)(wait > 20 ? 20 : wait));
	}
}

static bool greeting_over(struct ct *t)
{
	return t->audio_packets && now_ms() - t->last_audio_ms >= GREETING_GAP_MS;
}

static bool said(struct ct *t)
{
	return t->say_pos >= t->say_n;
}

/* 20 ms frames above VOICED_DBOV, and the level of the loudest one. */
static void audio_facts(const struct om_tc_rx *rx, int64_t *voiced_ms, double *peak_dbov)
{
	*voiced_ms = 0;
	*peak_dbov = -99;
	for (size_t f = 0; f + 160 <= rx->samples; f += 160) {
		double e = 0;
		for (size_t k = 0; k < 160; k++)
			e += (double)rx->pcm[f + k] * rx->pcm[f + k];
		double db = e > 0 ? 10 * log10(e / 160 / (32768.0 * 32768.0)) : -99;
		if (db > VOICED_DBOV)
			*voiced_ms += 20;
		if (db > *peak_dbov)
			*peak_dbov = db;
	}
}

static int do_media(struct ct *t)
{
	const struct om_conntest_opts *o = t->o;
	struct om_conntest_step *s = st(t, OM_CT_MEDIA);
	int64_t t0 = now_ms(), first = -1;
	t->next_frame = t0;
	/* The greeting: until the server's audio stops. The first packet is
	 * awaited for --timeout; then the greeting lasts what the server
	 * plays (a mailbox's own may be long), up to GREETING_MAX_MS. */
	int64_t end = t0 + o->timeout_ms;
	while (now_ms() < end) {
		media_run(t, end - now_ms() < 100 ? end - now_ms() : 100, greeting_over);
		if (first < 0 && t->audio_packets) {
			first = now_ms() - t0;
			end = now_ms() + GREETING_MAX_MS;
		}
		struct om_uac_call_info i;
		om_uac_call_info(t->call, &i);
		if (greeting_over(t) || i.state != OM_UAC_CONFIRMED)
			break;
		/* Nothing authenticates or nothing comes: no need to wait it all. */
		if (!t->audio_packets && now_ms() - t0 > 3000 && t->rx.srtp_fail > 50)
			break;
	}
	int64_t voiced;
	double peak;
	audio_facts(&t->rx, &voiced, &peak);
	kv_str(s, "media", "%s", t->rx.srtp ? "SRTP" : "RTP");
	kv_num(s, "packets_received", (int64_t)t->rx.packets);
	kv_num(s, "audio_ms", (int64_t)(t->rx.samples / 8));
	kv_num(s, "greeting_ms", first >= 0 ? t->last_audio_ms - (t0 + first) : 0);
	kv_num(s, "voiced_ms", voiced);
	kv_num(s, "peak_dbov", (int64_t)lround(peak));
	kv_num(s, "srtp_auth_failures", (int64_t)t->rx.srtp_fail);
	kv_num(s, "rtcp_received", (int64_t)t->rx.rtcp);
	struct om_uac_call_info i;
	om_uac_call_info(t->call, &i);
	int64_t lat = first >= 0 ? first : now_ms() - t0;
	if (!t->audio_packets && t->rx.srtp_fail) {
		fail(t, OM_CT_MEDIA, lat,
		     "%llu packets came from the server and none authenticated (SRTP): the keys "
		     "of the SDP exchange do not match what it sends with",
		     (unsigned long long)t->rx.srtp_fail);
		act(t, OM_CT_MEDIA,
		    "a device between this host and openum (an SBC, a B2BUA) rewrites a=crypto or "
		    "re-encrypts the media: let the SDP and SRTP through unchanged");
		return EBADMSG;
	}
	if (!t->audio_packets) {
		fail(t, OM_CT_MEDIA, lat,
		     "no %s from the server within %d s (we listened on %s port %u)%s",
		     t->rx.srtp ? "SRTP" : "RTP", o->timeout_ms / 1000, t->local,
		     (unsigned)t->media_port,
		     i.state != OM_UAC_CONFIRMED ? "; the server ended the call" : "");
		act(t, OM_CT_MEDIA,
		    "a firewall drops UDP between the server's rtp_ports and this host, or the "
		    "server's media_address is not reachable from here; `openum events --id 1142` "
		    "on the server");
		return ETIMEDOUT;
	}
	if (voiced < 100) {
		fail(t, OM_CT_MEDIA, lat,
		     "the server's audio is silence (%lld ms received, loudest frame %.0f dBov)",
		     (long long)(t->rx.samples / 8), peak);
		act(t, OM_CT_MEDIA,
		    "check the server's prompts and greetings (a device between that transcodes "
		    "the audio badly?)");
		return EBADMSG;
	}
	/* What the caller says, after the greeting. */
	if (i.state == OM_UAC_CONFIRMED) {
		t->say = o->audio ? o->audio : t->tone;
		t->say_n = o->audio ? o->audio_samples : (size_t)TONE_MS * 8;
		t->say_pos = 0;
		t->tx.talkspurt = true;
		media_run(t, (int64_t)t->say_n / 8 + 1000, said);
		t->say = NULL;
	}
	kv_num(s, "packets_sent", t->tx.packets);
	kv_num(s, "said_ms", (int64_t)(t->say_pos / 8));
	ok(t, OM_CT_MEDIA, lat);
	return 0;
}

/* ------------------------------------------------------------ DTMF */

static bool digit_echoed(struct ct *t)
{
	struct om_uac_call_info i;
	om_uac_call_info(t->call, &i);
	return strlen(i.info_digits_in) > t->info0 || strlen(t->rx.digits) > t->rtp0 ||
	       (t->digit == '#' && i.remote_bye);
}

/* Receives and handles SIP for ms, sending nothing. */
static void idle(struct ct *t, int64_t ms)
{
	int64_t end = now_ms() + ms;
	for (int64_t left = ms; left > 0; left = end - now_ms()) {
		recv_all(t);
		om_uac_run(t->u, 0);
		struct pollfd pf = { .fd = t->fd, .events = POLLIN };
		poll(&pf, 1, (int)(left > 10 ? 10 : left));
	}
	recv_all(t);
}

/* One digit as RFC 4733 events: 3 updates, then 3 end packets (§2.5.1.4),
 * 60 ms in all; the audio clock moves on by the event's duration. */
static void send_event(struct ct *t, char d)
{
	uint8_t out[OM_TC_PKT_MAX];
	int ev = om_rtp_digit_event(d);
	uint32_t start = t->tx.ts;
	uint16_t step = (uint16_t)(t->ptime * 8);
	for (int k = 1; k <= 6; k++) {
		uint16_t dur = (uint16_t)(step * (k < 3 ? k : 3));
		size_t len = om_tc_tx_event(&t->tx, (uint8_t)ev, start, dur, k > 3, k == 1, out);
		if (len)
			sendto(t->fd, out, len, 0, (struct sockaddr *)&t->peer, t->peer_len);
		if (k < 3)
			idle(t, t->ptime);
	}
	t->tx.ts = start + (uint32_t)step * 3;
	t->tx.talkspurt = true;
	t->next_frame = now_ms() + t->ptime;
}

static int do_dtmf(struct ct *t)
{
	const struct om_conntest_opts *o = t->o;
	struct om_conntest_step *s = st(t, OM_CT_DTMF);
	if (!o->dtmf || !o->dtmf[0]) {
		skip(t, OM_CT_DTMF, "no digits asked (--dtmf)");
		return 0;
	}
	bool rfc4733 = t->tx.te_pt >= 0;
	kv_str(s, "digits", "%s", o->dtmf);
	kv_str(s, "method", "%s", rfc4733 ? "rfc4733" : "info");
	int64_t t0 = now_ms(), worst = 0;
	char acked[64] = "";
	for (const char *d = o->dtmf; *d; d++) {
		struct om_uac_call_info i;
		om_uac_call_info(t->call, &i);
		if (i.state != OM_UAC_CONFIRMED) {
			kv_str(s, "acknowledged", "%s", acked);
			fail(t, OM_CT_DTMF, now_ms() - t0,
			     "the server ended the call before digit %c was sent", *d);
			act(t, OM_CT_DTMF, "the call flow hung up: `openum events --since 10m`");
			return ECONNRESET;
		}
		t->info0 = strlen(i.info_digits_in);
		t->rtp0 = strlen(t->rx.digits);
		t->digit = *d;
		int64_t d0 = now_ms();
		if (rfc4733)
			send_event(t, *d);
		else
			om_uac_call_info_dtmf(t->call, *d, 160);
		media_run(t, o->timeout_ms, digit_echoed);
		if (!digit_echoed(t)) {
			kv_str(s, "acknowledged", "%s", acked);
			fail(
			    t, OM_CT_DTMF, now_ms() - t0,
			    "digit %c was sent (%s) and the server did not acknowledge it within %d s",
			    *d, rfc4733 ? "RFC 4733 in the media" : "SIP INFO",
			    o->timeout_ms / 1000);
			act(t, OM_CT_DTMF,
			    "the diagnostic extension echoes every digit it hears; a gateway or an "
			    "SBC between that strips telephone-events (or sends them in-band) loses "
			    "them: check its DTMF settings (RFC 4733)");
			return ETIMEDOUT;
		}
		if (now_ms() - d0 > worst)
			worst = now_ms() - d0;
		size_t l = strlen(acked);
		if (l + 1 < sizeof(acked))
			acked[l] = *d;
	}
	kv_str(s, "acknowledged", "%s", acked);
	kv_num(s, "slowest_ack_ms", worst);
	ok(t, OM_CT_DTMF, now_ms() - t0);
	return 0;
}

/* ------------------------------------------------------------ BYE */

static bool bye_done(struct ct *t)
{
	struct om_uac_call_info i;
	om_uac_call_info(t->call, &i);
	return i.bye_status != 0 || i.remote_bye;
}

static int do_bye(struct ct *t)
{
	struct om_conntest_step *s = st(t, OM_CT_BYE);
	struct om_uac_call_info i;
	om_uac_call_info(t->call, &i);
	int64_t t0 = now_ms();
	if (i.remote_bye) {
		kv_bool(s, "server_hung_up", true);
		ok(t, OM_CT_BYE, 0);
		return 0;
	}
	int rc = om_uac_call_bye(t->call);
	if (rc) {
		fail(t, OM_CT_BYE, 0, "cannot send BYE: %s", strerror(rc));
		return rc;
	}
	run_until(t, t->o->timeout_ms, bye_done);
	om_uac_call_info(t->call, &i);
	int64_t lat = now_ms() - t0;
	kv_bool(s, "server_hung_up", i.remote_bye);
	if (i.bye_status)
		kv_num(s, "status", i.bye_status);
	if (i.remote_bye || (i.bye_status >= 200 && i.bye_status < 300)) {
		ok(t, OM_CT_BYE, lat);
		return 0;
	}
	fail(t, OM_CT_BYE, lat, i.bye_status ? "BYE answered %d" : "no answer to BYE within %d s",
	     i.bye_status ? i.bye_status : t->o->timeout_ms / 1000);
	act(t, OM_CT_BYE, "`openum calls` on the server: the call should be gone");
	return EPROTO;
}

/* ------------------------------------------------------------ the test */

int om_conntest_run(const struct om_conntest_opts *o, struct om_conntest_report *r)
{
	struct ct t = { .o = o, .r = r, .fd = -1 };
	memset(r, 0, sizeof(*r));
	r->failed = -1;
	for (int k = 0; k < OM_CT_NSTEPS; k++) {
		r->step[k].id = (enum om_conntest_step_id)k;
		r->step[k].name = step_names[k];
	}
	t.domain = o->domain ? o->domain : o->tls_name ? o->tls_name : o->host;
	t.tone = om_malloc((size_t)TONE_MS * 8 * sizeof(int16_t));
	if (t.tone)
		for (size_t k = 0; k < (size_t)TONE_MS * 8; k++)
			t.tone[k] = (int16_t)(8000 * sin(2 * M_PI * 440 * (double)k / 8000));
	if (!t.tone) {
		fail(&t, OM_CT_RESOLVE, 0, "out of memory");
		goto out;
	}
	if (do_resolve(&t))
		goto out;
	emit(&t, OM_CT_RESOLVE);
	if (do_connect(&t))
		goto out;
	emit(&t, OM_CT_CONNECT);
	if (do_options(&t))
		goto out;
	emit(&t, OM_CT_OPTIONS);
	if (do_invite(&t))
		goto out;
	emit(&t, OM_CT_INVITE);
	if (do_media(&t) == 0) {
		emit(&t, OM_CT_MEDIA);
		if (do_dtmf(&t) == 0)
			emit(&t, OM_CT_DTMF);
	}
	/* The call is hung up whatever failed after the answer. */
	if (do_bye(&t) && r->failed < 0)
		r->failed = OM_CT_BYE;
out:
	emit(&t, OM_CT_NSTEPS - 1);
	if (t.tx_on)
		om_tc_tx_free(&t.tx);
	if (t.rx_on)
		om_tc_rx_free(&t.rx);
	if (t.fd >= 0)
		close(t.fd);
	om_uac_free(t.u);
	om_free(t.tone);
	return r->failed < 0 ? 0 : 1;
}

/* ------------------------------------------------------------ audio files */

int om_conntest_load_audio(const char *path, unsigned max_s, int16_t **pcm, size_t *n, char *err,
                           size_t errlen)
{
	SF_INFO info = { 0 };
	SNDFILE *f = sf_open(path, SFM_READ, &info);
	if (!f) {
		snprintf(err, errlen, "%s: %s", path, sf_strerror(NULL));
		return EINVAL;
	}
	if (info.channels < 1 || info.samplerate < 4000 || info.samplerate > 192000 ||
	    info.frames <= 0) {
		sf_close(f);
		snprintf(err, errlen, "%s: no audio", path);
		return EINVAL;
	}
	sf_count_t frames = info.frames;
	if (frames > (sf_count_t)max_s * info.samplerate)
		frames = (sf_count_t)max_s * info.samplerate;
	float *in = om_malloc((size_t)frames * (size_t)info.channels * sizeof(float));
	float *mono = om_malloc((size_t)frames * sizeof(float));
	size_t outcap = (size_t)((double)frames * 8000 / info.samplerate) + 16;
	float *out = om_malloc(outcap * sizeof(float));
	int16_t *res = om_malloc(outcap * sizeof(int16_t));
	int rc = 0;
	if (!in || !mono || !out || !res) {
		snprintf(err, errlen, "out of memory");
		rc = ENOMEM;
		goto done;
	}
	frames = sf_readf_float(f, in, frames);
	for (sf_count_t k = 0; k < frames; k++) {
		float v = 0;
		for (int c = 0; c < info.channels; c++)
			v += in[k * info.channels + c];
		mono[k] = v / (float)info.channels;
	}
	SRC_DATA d = { .data_in = mono,
		       .data_out = out,
		       .input_frames = (long)frames,
		       .output_frames = (long)outcap,
		       .src_ratio = 8000.0 / info.samplerate };
	int e = info.samplerate == 8000 ? 0 : src_simple(&d, SRC_SINC_MEDIUM_QUALITY, 1);
	if (e) {
		snprintf(err, errlen, "%s: resampling: %s", path, src_strerror(e));
		rc = EINVAL;
		goto done;
	}
	size_t got = info.samplerate == 8000 ? (size_t)frames : (size_t)d.output_frames_gen;
	const float *src = info.samplerate == 8000 ? mono : out;
	for (size_t k = 0; k < got; k++) {
		float v = src[k] * 32767.0f;
		res[k] = (int16_t)(v > 32767 ? 32767 : v < -32768 ? -32768 : v);
	}
	*pcm = res;
	*n = got;
	res = NULL;
done:
	sf_close(f);
	om_free(in);
	om_free(mono);
	om_free(out);
	om_free(res);
	return rc;
}
