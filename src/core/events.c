/* events.c — event table, per-source rate limit, log + sink. */
#include "core/events.h"
#include "core/alloc.h"
#include "core/clock.h"
#include "core/str.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const struct om_event_info table[] = {
	{ 1112, OM_LOG_INFO, "start-secured", "the service started in secured mode", false },
	{ 1113, OM_LOG_INFO, "start-unsecured", "the service started unsecured", false },
	{ 1114, OM_LOG_INFO, "cert-in-use",
	  "certificate in use (issuer, serial, SHA-1 and SHA-256 thumbprints, not-after)", false },
	{ 1115, OM_LOG_WARNING, "cert-no-clientauth", "the chosen certificate lacks clientAuth",
	  false },
	{ 1120, OM_LOG_WARNING, "cert-expiring", "certificate in use expires within 30 days",
	  false },
	{ 1121, OM_LOG_ERROR, "cert-expired", "certificate in use has expired", false },
	{ 1122, OM_LOG_INFO, "cert-generated", "a self-signed certificate was generated", false },
	{ 1123, OM_LOG_ERROR, "cert-fallback-selfsigned",
	  "fell back from a CA-issued to a self-signed certificate", false },
	{ 1124, OM_LOG_WARNING, "trusted-expiring",
	  "a trusted root or a gateway's certificate expires within 30 days", true },
	{ 1125, OM_LOG_ERROR, "cert-pin-invalid",
	  "the pinned certificate is not valid (kept or none used: never a silent change)", false },
	{ 1126, OM_LOG_WARNING, "crl-expiring",
	  "a revocation list is near its next update: fetch the new one from its CA", false },
	{ 1127, OM_LOG_ERROR, "crl-stale",
	  "a revocation list is past its next update: that CA's gateways are refused", false },
	{ 1128, OM_LOG_WARNING, "cert-not-usable",
	  "a personal certificate cannot be used (why), or the one in use has a problem", false },
	{ 1129, OM_LOG_ERROR, "key-file-refused",
	  "a private key file that others can read was refused (not used)", false },
	{ 1130, OM_LOG_WARNING, "tls-rejected", "mutual TLS rejected", true },
	{ 1131, OM_LOG_WARNING, "untrusted-device", "SIP from an untrusted device dropped", true },
	{ 1132, OM_LOG_WARNING, "security-mode-refused",
	  "call refused: transport or media does not meet the dial plan's security mode", true },
	{ 1133, OM_LOG_WARNING, "serverauth-only",
	  "a gateway's client certificate is serverAuth-only", true },
	{ 1134, OM_LOG_WARNING, "connection-limit", "SIP connection refused: a limit is reached",
	  true },
	{ 1136, OM_LOG_WARNING, "call-plan-not-served",
	  "call refused: the gateway's dial plan is not served by this server", true },
	{ 1137, OM_LOG_WARNING, "call-capacity",
	  "call refused: max_calls, the gateway's max-calls or calls per second reached", true },
	{ 1138, OM_LOG_INFO, "call-ended-by-server",
	  "call ended by openum: no ACK, no acceptable answer, no media, session expired", true },
	{ 1139, OM_LOG_WARNING, "call-send-failed",
	  "a request to a gateway could not be sent (no flow and no connection allowed or made)",
	  true },
	{ 1140, OM_LOG_WARNING, "srtp-auth-failures", "SRTP authentication or replay failures",
	  true },
	{ 1141, OM_LOG_ERROR, "recording-write-failed",
	  "a recording stopped because the spool could not be written (full disk, I/O error)",
	  true },
	{ 1142, OM_LOG_WARNING, "rtp-timeout", "no RTP or RTCP received on a call for rtp_timeout",
	  true },
	{ 1143, OM_LOG_WARNING, "media-stranger-dropped",
	  "RTP/RTCP from an address or port the SDP does not name dropped", true },
	{ 1144, OM_LOG_ERROR, "prompt-unusable",
	  "an administrator's prompt file could not be used (the built-in one plays)", false },
	{ 1145, OM_LOG_ERROR, "rtp-ports-exhausted",
	  "no free RTP port pair in rtp_ports: a call got no media", true },
	{ 1150, OM_LOG_WARNING, "dial-restricted", "outgoing call refused by dialing restrictions",
	  true },
	{ 1160, OM_LOG_WARNING, "pin-lockout", "mailbox locked after PIN failures", true },
	{ 1170, OM_LOG_INFO, "message-delivered", "message delivered", false },
	{ 1171, OM_LOG_WARNING, "message-recovered", "message recovered after restart", false },
	{ 1172, OM_LOG_ERROR, "message-undeliverable",
	  "message could not be delivered yet (kept in the spool, retried; once per spool per "
	  "interval)",
	  true },
	{ 1173, OM_LOG_ERROR, "spool-space-low",
	  "spool file system below min_free_mb: new calls refused", false },
	{ 1174, OM_LOG_INFO, "spool-space-ok", "spool file system has room again", false },
	{ 1175, OM_LOG_ERROR, "spool-unusable",
	  "a spool's metadata cannot be used: kept, not delivered", false },
	{ 1180, OM_LOG_INFO, "reload-applied", "reload applied", false },
	{ 1181, OM_LOG_ERROR, "reload-rejected", "reload rejected (the old configuration stays)",
	  false },
	{ 0, OM_LOG_INFO, NULL, NULL, false },
};

const struct om_event_info *om_event_table(void)
{
	return table;
}

const struct om_event_info *om_event_info(int id)
{
	for (const struct om_event_info *e = table; e->id; e++)
		if (e->id == id)
			return e;
	return NULL;
}

/* Rate-limit slots: open addressing over (id, source). When full, a new
 * source falls back to the id's overflow slot (source "*"). */
#define SLOTS      4096
#define SOURCE_MAX 96

struct slot {
	int id; /* 0: free */
	char source[SOURCE_MAX];
	int64_t window_start;
	unsigned long held;
};

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static struct slot g_slots[SLOTS];
static size_t g_used;
static int64_t g_interval = 60000;
static om_event_sink_h g_sink;
static void *g_sink_arg;

void om_events_set_sink(om_event_sink_h sink, void *arg)
{
	pthread_mutex_lock(&g_mu);
	g_sink = sink;
	g_sink_arg = arg;
	pthread_mutex_unlock(&g_mu);
}

void om_events_set_interval(int64_t ms)
{
	g_interval = ms;
}

void om_events_reset(void)
{
	pthread_mutex_lock(&g_mu);
	memset(g_slots, 0, sizeof(g_slots));
	g_used = 0;
	pthread_mutex_unlock(&g_mu);
}

static uint64_t hash(int id, const char *s)
{
	uint64_t h = 1469598103934665603ULL ^ (uint64_t)id;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

static struct slot *find_slot(int id, const char *source)
{
	size_t i = hash(id, source) % SLOTS;
	for (size_t n = 0; n < SLOTS; n++, i = (i + 1) % SLOTS) {
		struct slot *s = &g_slots[i];
		if (s->id == 0) {
			/* The last quarter is kept for the per-id overflow slots. */
			if (g_used >= SLOTS * 3 / 4 && strcmp(source, "*") != 0)
				break;
			s->id = id;
			snprintf(s->source, sizeof(s->source), "%s", source);
			s->window_start = INT64_MIN;
			g_used++;
			return s;
		}
		if (s->id == id && strncmp(s->source, source, SOURCE_MAX - 1) == 0)
			return s;
	}
	return strcmp(source, "*") == 0 ? NULL : find_slot(id, "*");
}

/* Called with g_mu held. */
static void deliver(const struct om_event_rec *ev)
{
	struct om_kv kv[24];
	size_t n = 0;
	char held[24];
	if (ev->source && *ev->source)
		kv[n++] = (struct om_kv){ "source", ev->source };
	for (size_t i = 0; i < ev->nkv && n < 22; i++)
		kv[n++] = ev->kv[i];
	if (ev->suppressed) {
		snprintf(held, sizeof(held), "%lu", ev->suppressed);
		kv[n++] = (struct om_kv){ "suppressed", held };
	}
	om_log_kv(ev->level, ev->id, ev->msg, kv, n);
	if (g_sink)
		g_sink(ev, g_sink_arg);
}

int om_event_kv(int id, enum om_level level, const char *source, const char *msg,
                const struct om_kv *kv, size_t nkv)
{
	int64_t now = om_now_ms();
	int emitted = 0;
	if (!source)
		source = "";
	pthread_mutex_lock(&g_mu);
	const struct om_event_info *info = om_event_info(id);
	bool limited = !info || info->limited;
	struct slot *s = g_interval > 0 && limited ? find_slot(id, source) : NULL;
	if (!s || s->window_start == INT64_MIN || now - s->window_start >= g_interval) {
		struct om_event_rec ev = { now, id, level, source, msg, kv, nkv, s ? s->held : 0 };
		deliver(&ev);
		if (s) {
			s->window_start = now;
			s->held = 0;
		}
		emitted = 1;
	} else {
		s->held++;
	}
	pthread_mutex_unlock(&g_mu);
	return emitted;
}

static int vevent(int id, enum om_level level, const char *source, const char *msg, va_list ap)
{
	struct om_kv kv[20];
	size_t n = 0;
	for (;;) {
		const char *k = va_arg(ap, const char *);
		if (!k)
			break;
		const char *v = va_arg(ap, const char *);
		if (n < 20)
			kv[n++] = (struct om_kv){ k, v ? v : "" };
	}
	return om_event_kv(id, level, source, msg, kv, n);
}

int om_event(int id, const char *source, const char *msg, ...)
{
	const struct om_event_info *info = om_event_info(id);
	va_list ap;
	va_start(ap, msg);
	int r = vevent(id, info ? info->level : OM_LOG_INFO, source, msg, ap);
	va_end(ap);
	return r;
}

int om_event_level(int id, enum om_level level, const char *source, const char *msg, ...)
{
	va_list ap;
	va_start(ap, msg);
	int r = vevent(id, level, source, msg, ap);
	va_end(ap);
	return r;
}

void om_events_flush(int all)
{
	int64_t now = om_now_ms();
	pthread_mutex_lock(&g_mu);
	for (size_t i = 0; i < SLOTS; i++) {
		struct slot *s = &g_slots[i];
		if (!s->id || !s->held)
			continue;
		if (!all && now - s->window_start < g_interval)
			continue;
		const struct om_event_info *info = om_event_info(s->id);
		struct om_event_rec ev = { now,
			                   s->id,
			                   info ? info->level : OM_LOG_INFO,
			                   s->source,
			                   "repeated events held back by the rate limit",
			                   NULL,
			                   0,
			                   s->held };
		deliver(&ev);
		s->held = 0;
		s->window_start = now;
	}
	pthread_mutex_unlock(&g_mu);
}
