/* metrics.c — the numbers of `openum serve` in the Prometheus text
 * exposition format 0.0.4 and as JSON (metrics.h), read from the modules'
 * stats functions at each scrape; the spool's size measured off the loop;
 * the nearest expiry of the certificates that matter (R8, R21). */
#include "app/metrics.h"
#include "app/call.h"
#include "app/sipd.h"
#include "cert/cert.h"
#include "core/alloc.h"
#include "core/clock.h"
#include "core/log.h"
#include "delivery/delivery.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/pem.h>

#define MAX_GATEWAYS   4096
#define SPOOL_SCAN_MS  30000
#define SPOOL_MAX_FILE (1u << 20) /* files looked at per scan, at most */

struct gw_cert {
	char name[128];
	int64_t not_after_ms;
};

struct spool_scan {
	uv_work_t req;
	struct om_metrics *m; /* NULL once the metrics are freed */
	char dir[4200];
	uint64_t bytes, files;
	int error;
};

struct om_metrics {
	uv_loop_t *loop;
	char data_dir[4096];
	om_metrics_collect_h collect;
	void *arg;
	/* the endpoint */
	struct om_metrics_http *http;
	char listen[80]; /* "127.0.0.1:9474", "" off */
	bool tls;
	char *cert_pem; /* what it serves with (compared on reload) */
	char error[256];
	/* gateway certificates seen */
	struct gw_cert *gws;
	size_t ngws, capgws;
	/* spool size */
	uv_timer_t *scan_timer;
	struct spool_scan *scan; /* running */
	bool have_spool;
	int64_t last_scan_ms; /* monotonic */
	uint64_t spool_bytes, spool_files;
};

/* ------------------------------------------------------------ spool size */

static void scan_work(uv_work_t *req)
{
	struct spool_scan *sc = req->data;
	DIR *d = opendir(sc->dir);
	if (!d) {
		sc->error = errno;
		return;
	}
	struct dirent *e;
	size_t n = 0;
	while ((e = readdir(d)) && n++ < SPOOL_MAX_FILE) {
		struct stat st;
		if (e->d_name[0] == '.')
			continue;
		if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    S_ISREG(st.st_mode)) {
			sc->bytes += (uint64_t)st.st_size;
			sc->files++;
		}
	}
	closedir(d);
}

static void scan_done(uv_work_t *req, int status)
{
	struct spool_scan *sc = req->data;
	struct om_metrics *m = sc->m;
	if (m) {
		m->scan = NULL;
		if (!status && !sc->error) {
			m->spool_bytes = sc->bytes;
			m->spool_files = sc->files;
			m->have_spool = true;
		}
	}
	om_free(sc);
}

static void scan_start(struct om_metrics *m)
{
	if (m->scan)
		return;
	m->last_scan_ms = om_mono_ms();
	struct spool_scan *sc = om_calloc(1, sizeof(*sc));
	if (!sc)
		return;
	sc->m = m;
	sc->req.data = sc;
	snprintf(sc->dir, sizeof(sc->dir), "%s/spool", m->data_dir);
	if (uv_queue_work(m->loop, &sc->req, scan_work, scan_done) != 0) {
		om_free(sc);
		return;
	}
	m->scan = sc;
}

static void on_scan_timer(uv_timer_t *t)
{
	scan_start(t->data);
}

/* ------------------------------------------------------------ writer */

/* One family after another, each with its samples; Prometheus text or the
 * JSON object of `openum status`. */
struct mw {
	struct om_buf *b;
	bool json;
	const char *name;
	size_t nfam, nsamp;
};

static void prom_escape(struct om_buf *b, const char *s, bool quote)
{
	for (; *s; s++) {
		if (*s == '\\')
			om_buf_adds(b, "\\\\");
		else if (*s == '\n')
			om_buf_adds(b, "\\n");
		else if (quote && *s == '"')
			om_buf_adds(b, "\\\"");
		else
			om_buf_add(b, s, 1);
	}
}

static void fam(struct mw *w, const char *name, const char *type, const char *help)
{
	w->name = name;
	w->nsamp = 0;
	if (w->json) {
		om_buf_printf(w->b, "%s\"%s\":[", w->nfam ? "," : "", name);
	} else {
		om_buf_printf(w->b, "# HELP %s ", name);
		prom_escape(w->b, help, false);
		om_buf_printf(w->b, "\n# TYPE %s %s\n", name, type);
	}
	w->nfam++;
}

static void fam_end(struct mw *w)
{
	if (w->json)
		om_buf_adds(w->b, "]");
}

/* labels: "key", "value", …, NULL; the value printed as given. */
static void sample_text(struct mw *w, const char *value, const char *const *labels)
{
	if (w->json) {
		om_buf_adds(w->b, w->nsamp ? ",{" : "{");
		for (size_t i = 0; labels && labels[i]; i += 2) {
			om_buf_json_str(w->b, labels[i]);
			om_buf_adds(w->b, ":");
			om_buf_json_str(w->b, labels[i + 1]);
			om_buf_adds(w->b, ",");
		}
		om_buf_printf(w->b, "\"value\":%s}", value);
	} else {
		om_buf_adds(w->b, w->name);
		if (labels && labels[0]) {
			om_buf_adds(w->b, "{");
			for (size_t i = 0; labels[i]; i += 2) {
				om_buf_printf(w->b, "%s%s=\"", i ? "," : "", labels[i]);
				prom_escape(w->b, labels[i + 1], true);
				om_buf_adds(w->b, "\"");
			}
			om_buf_adds(w->b, "}");
		}
		om_buf_printf(w->b, " %s\n", value);
	}
	w->nsamp++;
}

static void sample_u(struct mw *w, uint64_t v, const char *const *labels)
{
	char num[24];
	snprintf(num, sizeof(num), "%llu", (unsigned long long)v);
	sample_text(w, num, labels);
}

static void sample_d(struct mw *w, double v, const char *const *labels)
{
	char num[40];
	snprintf(num, sizeof(num), "%.3f", isfinite(v) ? v : 0.0);
	sample_text(w, num, labels);
}

/* A family of one unlabelled sample. */
static void one_u(struct mw *w, const char *name, const char *type, const char *help, uint64_t v)
{
	fam(w, name, type, help);
	sample_u(w, v, NULL);
	fam_end(w);
}

/* ------------------------------------------------------------ families */

static const char *const tls_reason_names[OM_SIPD_TLS_REASONS] = {
	[OM_TLS_R_NONE] = "none",
	[OM_TLS_R_NO_CERT] = "no_certificate",
	[OM_TLS_R_UNKNOWN_CA] = "unknown_ca",
	[OM_TLS_R_EXPIRED] = "expired",
	[OM_TLS_R_NOT_YET_VALID] = "not_yet_valid",
	[OM_TLS_R_REVOKED] = "revoked",
	[OM_TLS_R_NO_CRL] = "no_crl",
	[OM_TLS_R_KEY_TOO_SMALL] = "key_too_small",
	[OM_TLS_R_DIGEST_TOO_WEAK] = "digest_too_weak",
	[OM_TLS_R_BAD_CERT] = "bad_certificate",
	[OM_TLS_R_NO_GATEWAY] = "no_gateway",
	[OM_TLS_R_GW_DISABLED] = "gateway_disabled",
	[OM_TLS_R_WILDCARD] = "wildcard",
	[OM_TLS_R_AMBIGUOUS] = "ambiguous",
	[OM_TLS_R_EKU] = "eku",
	[OM_TLS_R_PROTOCOL] = "protocol",
	[OM_TLS_R_HANDSHAKE] = "handshake",
	[OM_TLS_R_TIMEOUT] = "timeout",
	[OM_TLS_R_UNTRUSTED_NOW] = "untrusted_now",
	[OM_TLS_R_CRL_STALE] = "crl_stale",
};

static void calls_families(struct mw *w, const struct om_metrics_input *in,
                           const struct om_calls_stats *cs)
{
	static const char *const modes[3] = { "unsecured", "sipsecured", "secured" };
	static const char *const trs[2] = { "tcp", "tls" };
	fam(w, "openum_calls_active", "gauge",
	    "Calls holding a call slot, by the dial plan's security mode and the signalling "
	    "transport.");
	for (int m = 0; m < 3; m++)
		for (int t = 0; t < 2; t++) {
			const char *l[] = { "security", modes[m], "transport", trs[t], NULL };
			sample_u(w, cs ? cs->active[m][t] : 0, l);
		}
	fam_end(w);
	one_u(w, "openum_calls_max", "gauge", "The max_calls cap.", in->max_calls);
	one_u(w, "openum_calls_invites_total", "counter", "New INVITEs received.",
	      cs ? cs->invites : 0);
	one_u(w, "openum_calls_answered_total", "counter", "Calls answered (200 sent).",
	      cs ? cs->answered : 0);
	fam(w, "openum_calls_refused_total", "counter",
	    "INVITEs refused, by kind (security_mode: the reason of event 1132; cap: the cap of "
	    "event 1137; plan, draining, request, media, internal), reason and SIP status.");
	for (size_t i = 0; cs && i < cs->nrefusals; i++) {
		const struct om_calls_refusal *r = &cs->refusals[i];
		char st[12];
		snprintf(st, sizeof(st), "%d", r->status);
		const char *l[] = { "kind", r->kind, "reason", r->reason, "status", st, NULL };
		sample_u(w, r->count, l);
	}
	fam_end(w);
	fam(w, "openum_calls_ended_total", "counter", "Answered calls ended, by who hung up.");
	{
		const char *g[] = { "by", "gateway", NULL }, *o[] = { "by", "openum", NULL };
		sample_u(w, cs ? cs->ended_by_gateway : 0, g);
		sample_u(w, cs ? cs->ended_by_us : 0, o);
	}
	fam_end(w);
	one_u(w, "openum_calls_no_ack_total", "counter",
	      "Answered calls whose ACK never came (ended with BYE).", cs ? cs->no_ack : 0);
	one_u(w, "openum_calls_canceled_total", "counter", "INVITEs canceled before the answer.",
	      cs ? cs->canceled : 0);
}

static void media_families(struct mw *w, const struct om_calls_stats *cs)
{
	const struct om_media_engine_stats *m = cs && cs->media ? &cs->media_st : NULL;
	fam(w, "openum_srtp_failures_total", "counter",
	    "SRTP/SRTCP packets dropped: authentication (tag, MKI, lifetime) or replay.");
	{
		const char *a[] = { "kind", "auth", NULL }, *r[] = { "kind", "replay", NULL };
		sample_u(w, m ? m->totals.srtp_auth : 0, a);
		sample_u(w, m ? m->totals.srtp_replay : 0, r);
	}
	fam_end(w);
	fam(w, "openum_rtp_packets_total", "counter",
	    "RTP packets accepted from gateways (after SRTP) and sent to them.");
	{
		const char *i[] = { "direction", "received", NULL },
		           *o[] = { "direction", "sent", NULL };
		sample_u(w, m ? m->totals.rtp_in : 0, i);
		sample_u(w, m ? m->totals.rtp_out : 0, o);
	}
	fam_end(w);
	one_u(w, "openum_rtp_packets_lost_total", "counter",
	      "RTP sequence numbers never received (RFC 3550 A.3).", m ? m->totals.lost : 0);
	one_u(w, "openum_rtp_strangers_total", "counter",
	      "Packets from an address or port the SDP does not name (dropped).",
	      m ? m->totals.strangers : 0);
	one_u(w, "openum_media_sessions", "gauge", "Media sessions open.", m ? m->sessions : 0);
	one_u(w, "openum_media_recordings", "gauge", "Recordings being written.",
	      m ? m->recordings : 0);
	one_u(w, "openum_rtp_ports_free", "gauge", "RTP port pairs left in rtp_ports.",
	      m ? m->ports_free : 0);
}

static void sip_families(struct mw *w, const struct om_sipd_stats *s)
{
	one_u(w, "openum_sip_connections", "gauge", "SIP connections open (TCP and TLS).",
	      s ? s->tcp.conns : 0);
	one_u(w, "openum_sip_messages_total", "counter", "SIP messages received.",
	      s ? s->tcp.messages : 0);
	one_u(w, "openum_sip_untrusted_dropped_total", "counter",
	      "TCP connections from an address that is no gateway's, closed at accept (1131).",
	      s ? s->untrusted_dropped : 0);
	one_u(w, "openum_tls_handshakes_total", "counter", "Inbound TLS handshakes completed.",
	      s ? s->tcp.tls_handshakes : 0);
	static const char *const whens[OM_SIPD_TLS_WHEN] = { "inbound", "reload", "outbound" };
	fam(w, "openum_tls_handshakes_failed_total", "counter",
	    "Mutual TLS refused (event 1130), by reason and side: inbound (a gateway's "
	    "handshake), outbound (openum connected to a gateway), reload (an open connection "
	    "re-checked after a reload).");
	for (int r = 1; s && r < OM_SIPD_TLS_REASONS; r++)
		for (int k = 0; k < OM_SIPD_TLS_WHEN; k++)
			if (s->tls_rejected[r][k]) {
				const char *l[] = { "reason", tls_reason_names[r], "side", whens[k],
					            NULL };
				sample_u(w, s->tls_rejected[r][k], l);
			}
	fam_end(w);
}

static void delivery_families(struct mw *w, struct om_metrics *m, struct om_delivery *d)
{
	struct om_delivery_stats st = { 0 };
	if (d)
		om_delivery_stats(d, &st);
	one_u(w, "openum_messages_delivered_total", "counter",
	      "Voice messages written to a mailbox (recovered ones included).", st.delivered);
	one_u(w, "openum_messages_recovered_total", "counter",
	      "Voice messages delivered after an interruption (event 1171).", st.recovered);
	one_u(w, "openum_message_delivery_failures_total", "counter",
	      "Delivery attempts that failed and will be retried (event 1172).",
	      st.failed_attempts);
	fam(w, "openum_messages_pending", "gauge", "Spools waiting for delivery, by state.");
	{
		const char *q[] = { "state", "queued", NULL }, *r[] = { "state", "running", NULL },
		           *t[] = { "state", "retrying", NULL };
		sample_u(w, st.queued, q);
		sample_u(w, st.running, r);
		sample_u(w, st.retrying, t);
	}
	fam_end(w);
	one_u(
	    w, "openum_spool_bytes", "gauge",
	    "Bytes of the files in spool/ (measured in the background: every 30 s and after a scrape).",
	    m->spool_bytes);
	one_u(w, "openum_spool_files", "gauge",
	      "Files in spool/ (measured with openum_spool_bytes).", m->spool_files);
	char path[4200];
	struct statvfs vfs;
	uint64_t free_b = 0;
	snprintf(path, sizeof(path), "%s/spool", m->data_dir);
	if (statvfs(path, &vfs) == 0)
		free_b = (uint64_t)vfs.f_bavail * vfs.f_frsize;
	one_u(w, "openum_spool_free_bytes", "gauge",
	      "Free bytes for the service on the spool's file system.", free_b);
	one_u(w, "openum_spool_room", "gauge",
	      "1 while free space is at least min_free_mb (new calls admitted), else 0.",
	      d ? st.room : 1);
}

static double seconds_left(int64_t not_after_ms, int64_t now)
{
	return (double)(not_after_ms - now) / 1000.0;
}

static void cert_families(struct mw *w, struct om_metrics *m, const struct om_cert_mgr *certs)
{
	int64_t now = om_now_ms();
	const struct om_cert *cur = certs ? om_cert_mgr_current(certs) : NULL;
	int64_t trusted = INT64_MAX, gw = INT64_MAX;
	const struct om_cert_store *st = certs ? om_cert_mgr_store(certs) : NULL;
	for (size_t i = 0; st && i < om_cert_store_count(st, OM_CERT_TRUSTED); i++) {
		const struct om_cert *c = om_cert_store_at(st, OM_CERT_TRUSTED, i);
		if (c && c->not_after_ms < trusted)
			trusted = c->not_after_ms;
	}
	for (size_t i = 0; i < m->ngws; i++)
		if (m->gws[i].not_after_ms < gw)
			gw = m->gws[i].not_after_ms;
	static const char *const help =
	    "Seconds until expiry (negative: expired; / 86400 = days): the certificate in use "
	    "(server), the nearest certificate of the trusted store (trusted) and of the gateways "
	    "seen in handshakes (gateway).";
	const char *ls[] = { "role", "server", NULL }, *lt[] = { "role", "trusted", NULL },
	           *lg[] = { "role", "gateway", NULL };
	fam(w, "openum_certificate_expiry_seconds", "gauge", help);
	if (cur)
		sample_d(w, seconds_left(cur->not_after_ms, now), ls);
	if (trusted != INT64_MAX)
		sample_d(w, seconds_left(trusted, now), lt);
	if (gw != INT64_MAX)
		sample_d(w, seconds_left(gw, now), lg);
	fam_end(w);
	fam(w, "openum_certificate_not_after_timestamp_seconds", "gauge",
	    "The same certificates' not-after time (Unix seconds).");
	if (cur)
		sample_u(w, (uint64_t)(cur->not_after_ms / 1000), ls);
	if (trusted != INT64_MAX)
		sample_u(w, (uint64_t)(trusted / 1000), lt);
	if (gw != INT64_MAX)
		sample_u(w, (uint64_t)(gw / 1000), lg);
	fam_end(w);
}

static void render(struct om_metrics *m, bool json, struct om_buf *out)
{
	struct om_metrics_input in = { 0 };
	m->collect(&in, m->arg);
	/* the spool's size: a scrape starts a new measurement (at most one a
	 * second) for the next one */
	if (om_mono_ms() - m->last_scan_ms >= 1000)
		scan_start(m);
	struct om_sipd_stats ss, *sp = NULL;
	struct om_calls_stats cs, *cp = NULL;
	if (in.sipd) {
		om_sipd_stats(in.sipd, &ss);
		sp = &ss;
		if (ss.calls) {
			om_calls_stats(ss.calls, &cs);
			cp = &cs;
		}
	}
	struct mw w = { .b = out, .json = json };
	fam(&w, "openum_info", "gauge", "The server's version and start mode (R9).");
	{
		const char *l[] = { "version", OM_VERSION, "mode",
			            in.secured ? "secured" : "unsecured", NULL };
		sample_u(&w, 1, l);
	}
	fam_end(&w);
	one_u(&w, "openum_start_time_seconds", "gauge", "When the server started (Unix seconds).",
	      (uint64_t)(in.started_ms / 1000));
	one_u(&w, "openum_reload_generation", "gauge",
	      "The configuration generation in force (0 at start, +1 per applied reload).",
	      in.generation);
	fam(&w, "openum_reloads_total", "counter", "Reloads, applied (1180) or rejected (1181).");
	{
		const char *a[] = { "result", "applied", NULL },
		           *r[] = { "result", "rejected", NULL };
		sample_u(&w, in.reloads, a);
		sample_u(&w, in.reloads_rejected, r);
	}
	fam_end(&w);
	calls_families(&w, &in, cp);
	media_families(&w, cp);
	sip_families(&w, sp);
	delivery_families(&w, m, in.delivery);
	cert_families(&w, m, in.certs);
}

/* ------------------------------------------------------------ public */

int om_metrics_new(uv_loop_t *loop, const char *data_dir, om_metrics_collect_h collect, void *arg,
                   struct om_metrics **out)
{
	struct om_metrics *m = om_calloc(1, sizeof(*m));
	if (!m)
		return ENOMEM;
	m->scan_timer = om_calloc(1, sizeof(*m->scan_timer));
	if (!m->scan_timer) {
		om_free(m);
		return ENOMEM;
	}
	m->loop = loop;
	snprintf(m->data_dir, sizeof(m->data_dir), "%s", data_dir);
	m->collect = collect;
	m->arg = arg;
	uv_timer_init(loop, m->scan_timer);
	m->scan_timer->data = m;
	uv_timer_start(m->scan_timer, on_scan_timer, 0, SPOOL_SCAN_MS);
	*out = m;
	return 0;
}

static void on_http(struct om_buf *out, void *arg)
{
	om_metrics_prometheus(arg, out);
}

static bool is_loopback(const char *host)
{
	unsigned char a[16];
	if (inet_pton(AF_INET, host, a) == 1)
		return a[0] == 127;
	if (inet_pton(AF_INET6, host, a) == 1) {
		static const unsigned char one[16] = { [15] = 1 };
		return !memcmp(a, one, 16);
	}
	return false;
}

static char *pem_of(void (*write)(BIO *, const void *), const void *obj, bool secret)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *out = NULL;
	if (!b)
		return NULL;
	write(b, obj);
	char *p;
	long n = BIO_get_mem_data(b, &p);
	if (n > 0 && (out = om_malloc((size_t)n + 1))) {
		memcpy(out, p, (size_t)n);
		out[n] = '\0';
	}
	if (secret && n > 0)
		OPENSSL_cleanse(p, (size_t)n);
	BIO_free(b);
	return out;
}

static void write_x509(BIO *b, const void *x)
{
	PEM_write_bio_X509(b, (X509 *)x);
}

static void write_key(BIO *b, const void *k)
{
	PEM_write_bio_PrivateKey(b, (EVP_PKEY *)k, NULL, NULL, 0, NULL, NULL);
}

static void free_secret(char *s)
{
	if (s) {
		OPENSSL_cleanse(s, strlen(s));
		om_free(s);
	}
}

int om_metrics_configure(struct om_metrics *m, const struct om_listen *l, X509 *cert,
                         STACK_OF(X509) * chain, EVP_PKEY *key, int tls_min_version, char *err,
                         size_t errlen)
{
	char want[80] = "";
	bool tls = false;
	char *cert_pem = NULL, *key_pem = NULL;
	int rc = 0;
	if (l && l->port)
		snprintf(want, sizeof(want), strchr(l->host, ':') ? "[%s]:%u" : "%s:%u", l->host,
		         (unsigned)l->port);
	if (want[0] && !is_loopback(l->host)) {
		tls = true;
		if (!cert || !key) {
			snprintf(
			    err, errlen,
			    "metrics_listen %s is not a loopback address: metrics are served "
			    "there only over TLS with the server's certificate, and this server "
			    "has none (unsecured start)",
			    want);
			rc = EACCES;
			want[0] = '\0';
		} else {
			/* the certificate, then its chain in issuer order */
			struct om_buf b;
			om_buf_init(&b);
			char *p = pem_of(write_x509, cert, false);
			om_buf_adds(&b, p ? p : "");
			om_free(p);
			for (int i = 0; chain && i < sk_X509_num(chain); i++) {
				p = pem_of(write_x509, sk_X509_value(chain, i), false);
				om_buf_adds(&b, p ? p : "");
				om_free(p);
			}
			cert_pem = b.p;
			key_pem = pem_of(write_key, key, true);
			if (!cert_pem || !key_pem || om_buf_err(&b)) {
				snprintf(err, errlen, "metrics: out of memory");
				om_free(cert_pem);
				free_secret(key_pem);
				cert_pem = key_pem = NULL;
				rc = ENOMEM;
				want[0] = '\0';
			}
		}
	}
	/* unchanged: the endpoint stays as it is */
	if (m->http && !strcmp(want, m->listen) && tls == m->tls &&
	    (!tls || (m->cert_pem && cert_pem && !strcmp(m->cert_pem, cert_pem)))) {
		om_free(cert_pem);
		free_secret(key_pem);
		return 0;
	}
	if (m->http) {
		om_metrics_http_stop(m->http);
		m->http = NULL;
	}
	om_free(m->cert_pem);
	m->cert_pem = NULL;
	snprintf(m->listen, sizeof(m->listen), "%s", want);
	m->tls = tls;
	m->error[0] = '\0';
	if (rc) {
		snprintf(m->error, sizeof(m->error), "%s", err);
	} else if (want[0]) {
		rc = om_metrics_http_start(m->loop, l->host, l->port, cert_pem, key_pem,
		                           tls_min_version, on_http, m, &m->http, err, errlen);
		if (rc) {
			snprintf(m->error, sizeof(m->error), "%s", err);
		} else {
			m->cert_pem = cert_pem;
			cert_pem = NULL;
			om_log(OM_LOG_INFO, "metrics served", "listen", want, "scheme",
			       tls ? "https" : "http", NULL);
		}
	}
	om_free(cert_pem);
	free_secret(key_pem);
	if (rc)
		om_log(OM_LOG_ERROR, "metrics not served", "listen",
		       want[0] ? want
		       : l     ? l->host
		               : "",
		       "error", m->error, NULL);
	return rc;
}

void om_metrics_peer_cert(struct om_metrics *m, const char *gateway, int64_t not_after_ms)
{
	for (size_t i = 0; i < m->ngws; i++)
		if (!strcmp(m->gws[i].name, gateway)) {
			m->gws[i].not_after_ms = not_after_ms; /* the one it uses now */
			return;
		}
	if (m->ngws == MAX_GATEWAYS)
		return;
	if (m->ngws == m->capgws) {
		size_t cap = m->capgws ? m->capgws * 2 : 16;
		struct gw_cert *g = om_realloc(m->gws, cap * sizeof(*g));
		if (!g)
			return;
		m->gws = g;
		m->capgws = cap;
	}
	snprintf(m->gws[m->ngws].name, sizeof(m->gws[0].name), "%s", gateway);
	m->gws[m->ngws].not_after_ms = not_after_ms;
	m->ngws++;
}

void om_metrics_prometheus(struct om_metrics *m, struct om_buf *out)
{
	render(m, false, out);
}

void om_metrics_status_json(struct om_metrics *m, struct om_buf *out)
{
	om_buf_adds(out, ",\"metrics\":{\"listen\":");
	om_buf_json_str(out, m->listen);
	om_buf_printf(out, ",\"scheme\":\"%s\",\"serving\":%s,\"requests\":%llu,\"error\":",
	              m->tls ? "https" : "http", m->http ? "true" : "false",
	              (unsigned long long)(m->http ? om_metrics_http_requests(m->http) : 0));
	om_buf_json_str(out, m->error);
	om_buf_adds(out, ",\"values\":{");
	render(m, true, out);
	om_buf_adds(out, "}}");
}

static void timer_closed(uv_handle_t *h)
{
	om_free(h);
}

void om_metrics_free(struct om_metrics *m)
{
	if (!m)
		return;
	if (m->http)
		om_metrics_http_stop(m->http);
	if (m->scan)
		m->scan->m = NULL; /* the job frees itself */
	uv_timer_stop(m->scan_timer);
	uv_close((uv_handle_t *)m->scan_timer, timer_closed);
	om_free(m->cert_pem);
	om_free(m->gws);
	om_free(m);
}
