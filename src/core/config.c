/* config.c — the openum.conf parser (grammar in config.h). */
#include "core/config.h"
#include "core/fqdn.h"
#include "core/alloc.h"
#include "core/file.h"
#include "core/log.h"
#include "core/str.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const char default_text[] =
    "# openum.conf — every key with its default. Edit, then `openum reload`\n"
    "# (it names each change). A reload cannot change the listeners, the\n"
    "# connection limits or the media engine: restart openum after changing\n"
    "# sip_tcp, sip_tls, tcp_idle_timeout, sip_message_timeout, max_connections,\n"
    "# max_connections_per_peer, peer_ipv6_prefix, max_handshakes,\n"
    "# max_handshakes_per_peer, tls_handshake_timeout, rtp_ports, media_threads,\n"
    "# srtp_backend, rtp_timeout, spool_flush_ms, spool_sync_ms or sip_t1.\n"
    "[server]\n"
    "# This server's fully qualified domain name: the name in its certificate and\n"
    "# in Contact headers. Default: the host name.\n"
    "#fqdn = um1.example.com\n"
    "# Listeners: comma-separated ADDRESS:PORT ([v6]:PORT for IPv6), or \"off\".\n"
    "#sip_tcp = 0.0.0.0:5060,[::]:5060\n"
    "# The TLS listener runs when the start is secured: a SIPSecured or Secured\n"
    "# dial plan is associated with this server, or none is and start_secured = 1.\n"
    "#sip_tls = 0.0.0.0:5061,[::]:5061\n"
    "# Host put in Via/Contact; default: fqdn.\n"
    "#sip_advertise =\n"
    "# Address for RTP; default: the address the call arrived on.\n"
    "#media_address =\n"
    "# With no dial plan associated, start secured (1) or not (0).\n"
    "#start_secured = 0\n"
    "#rtp_ports = 20000-29999\n"
    "# Media threads; 0 = one per core.\n"
    "#media_threads = 0\n"
    "#max_calls = 100\n"
    "# Lowest TLS version accepted: 1.2 or 1.3.\n"
    "#tls_min_version = 1.2\n"
    "# OpenSSL security level 0-5 (2: RSA >= 2048 bits, no SHA-1 signatures).\n"
    "#tls_security_level = 2\n"
    "# Refuse serverAuth-only gateway certificates.\n"
    "#strict_eku = 0\n"
    "# Generate a self-signed certificate when none is valid.\n"
    "#auto_selfsigned = 1\n"
    "# SRTP implementation: openssl or libsrtp2.\n"
    "#srtp_backend = openssl\n"
    "#events_keep_days = 90\n"
    "#recordings_keep_days = 30\n"
    "# Rate limit: at most one event per id and source in this many seconds.\n"
    "#events_interval = 60\n"
    "# Log level: debug, info, warning, error.\n"
    "#log_level = info\n"
    "# SIP connections: closed after this many seconds without a byte; a message\n"
    "# must arrive completely within sip_message_timeout seconds (slow senders).\n"
    "#tcp_idle_timeout = 300\n"
    "#sip_message_timeout = 10\n"
    "# Caps on SIP connections, in all and from one peer (an IPv4 address, or\n"
    "# an IPv6 prefix of peer_ipv6_prefix bits: one host usually owns a /64).\n"
    "#max_connections = 1024\n"
    "#max_connections_per_peer = 64\n"
    "#peer_ipv6_prefix = 64\n"
    "# TLS connections not yet identified (handshake not finished): in all\n"
    "# (0 = a quarter of max_connections, at most 128; the rest of\n"
    "# max_connections is kept for identified gateways) and from one peer, and\n"
    "# the seconds a handshake may take.\n"
    "#max_handshakes = 0\n"
    "#max_handshakes_per_peer = 8\n"
    "#tls_handshake_timeout = 5\n"
    "# 1: a TLS connection from an address that is no gateway's is closed before\n"
    "# the handshake, like TCP. Only when every TLS gateway's address is known\n"
    "# (not behind a NAT or a changing address).\n"
    "#tls_source_check = 0\n"
    "# DNS servers for gateway FQDNs, ADDRESS[:PORT] comma-separated;\n"
    "# empty: the system's resolver.\n"
    "#dns_servers =\n"
    "# Voice messages: the attachment's format, wav (PCM, every client plays it),\n"
    "# mp3 or opus (Ogg).\n"
    "#audio_format = wav\n"
    "# Keep a delivered call's spool for recordings_keep_days (1) or remove it\n"
    "# as soon as the message is in the mailbox (0).\n"
    "#keep_spool = 1\n"
    "# Free megabytes the spool's file system must keep: below, new calls get\n"
    "# 503 while calls in progress keep recording.\n"
    "#min_free_mb = 200\n"
    "# A failed delivery stays in the spool and is retried after this many\n"
    "# seconds, then twice as long each time, up to an hour.\n"
    "#delivery_retry_s = 30\n"
    "# A call's media: seconds without RTP, RTCP or comfort noise before the\n"
    "# call is considered dead (the call flow ends it).\n"
    "#rtp_timeout = 30\n"
    "# Recorded audio reaches the disk (write) at least every spool_flush_ms\n"
    "# and is synced (fdatasync) at least every spool_sync_ms.\n"
    "#spool_flush_ms = 250\n"
    "#spool_sync_ms = 5000\n"
    "# Calls: new calls per second before 503 + Retry-After (0: no cap); ring\n"
    "# for this many ms (180 Ringing) before answering; session timers (RFC 4028):\n"
    "# the interval asked when the gateway asks none (0: none) and our Min-SE.\n"
    "#max_calls_per_second = 50\n"
    "#answer_delay_ms = 0\n"
    "#session_expires = 1800\n"
    "#min_se = 90\n"
    "# SIP timer T1 in ms (RFC 3261 §17): 2xx retransmission, 64*T1 timeouts.\n"
    "#sip_t1 = 500\n"
    "# Call flows: a message ends after silence_timeout seconds without voice\n"
    "# (0: never), voice being above silence_threshold dBov; a message with\n"
    "# less than min_message_seconds of voice is discarded (0: keep all). The\n"
    "# longest message is the dial plan's --max-message. A caller asked for an\n"
    "# extension has input_timeout seconds for each digit and input_failures\n"
    "# tries. On SIGTERM, calls in progress may finish for drain_timeout seconds\n"
    "# (new calls get 503); the rest are then ended and still delivered.\n"
    "#silence_timeout = 5\n"
    "#silence_threshold = -45\n"
    "#min_message_seconds = 1\n"
    "#input_timeout = 5\n"
    "#input_failures = 3\n"
    "#drain_timeout = 120\n"
    "# Prometheus metrics: GET /metrics on this address (one ADDRESS:PORT, or\n"
    "# off). A loopback address is plain HTTP; any other address is served\n"
    "# only over HTTPS with the server's certificate (secured start).\n"
    "#metrics_listen = 127.0.0.1:9474\n";

const char *om_config_default_text(void)
{
	return default_text;
}

static int parse_listen_list(const char *v, struct om_listen *out, size_t *n, char *why,
                             size_t whylen);

int om_config_defaults(struct om_config **out)
{
	struct om_config *c = om_calloc(1, sizeof(*c));
	char why[128];
	if (!c)
		return ENOMEM;
	c->path = om_strdup("(defaults)");
	if (!c->path) {
		om_free(c);
		return ENOMEM;
	}
	if (gethostname(c->fqdn, sizeof(c->fqdn) - 1) != 0 || !c->fqdn[0])
		snprintf(c->fqdn, sizeof(c->fqdn), "localhost");
	parse_listen_list("0.0.0.0:5060,[::]:5060", c->sip_tcp, &c->n_sip_tcp, why, sizeof(why));
	parse_listen_list("0.0.0.0:5061,[::]:5061", c->sip_tls, &c->n_sip_tls, why, sizeof(why));
	c->rtp_port_min = 20000;
	c->rtp_port_max = 29999;
	c->max_calls = 100;
	c->tls_min_version = 12;
	c->tls_security_level = 2;
	c->auto_selfsigned = true;
	c->events_keep_days = 90;
	c->recordings_keep_days = 30;
	c->events_interval = 60;
	c->log_level = OM_LOG_INFO;
	c->tcp_idle_timeout = 300;
	c->sip_message_timeout = 10;
	c->max_connections = 1024;
	c->max_connections_per_peer = 64;
	snprintf(c->audio_format, sizeof(c->audio_format), "wav");
	c->keep_spool = true;
	c->min_free_mb = 200;
	c->delivery_retry_s = 30;
	c->peer_ipv6_prefix = 64;
	c->max_handshakes = 0;
	c->max_handshakes_per_peer = 8;
	c->tls_handshake_timeout = 5;
	c->tls_source_check = false;
	c->rtp_timeout = 30;
	c->spool_flush_ms = 250;
	c->spool_sync_ms = 5000;
	c->max_calls_per_second = 50;
	c->answer_delay_ms = 0;
	c->session_expires = 1800;
	c->min_se = 90;
	c->sip_t1_ms = 500;
	c->silence_timeout = 5;
	c->silence_threshold = -45;
	c->min_message_seconds = 1;
	c->input_timeout = 5;
	c->input_failures = 3;
	c->drain_timeout = 120;
	parse_listen_list("127.0.0.1:9474", c->metrics_listen, &c->n_metrics_listen, why,
	                  sizeof(why));
	*out = c;
	return 0;
}

void om_config_free(struct om_config *c)
{
	if (!c)
		return;
	om_free(c->path);
	om_free(c);
}

static bool valid_hostname(const char *s)
{
	size_t len = strlen(s), label = 0;
	if (len == 0 || len > 253)
		return false;
	for (size_t i = 0; i < len; i++) {
		char ch = s[i];
		if (ch == '.') {
			if (label == 0 || s[i - 1] == '-')
				return false;
			label = 0;
			continue;
		}
		if (!(isalnum((unsigned char)ch) || ch == '-'))
			return false;
		if (label == 0 && ch == '-')
			return false;
		if (++label > 63)
			return false;
	}
	return label > 0 && s[len - 1] != '-';
}

static bool numeric_host(const char *h)
{
	unsigned char buf[16];
	return inet_pton(AF_INET, h, buf) == 1 || inet_pton(AF_INET6, h, buf) == 1;
}

/* Callers have checked the length already. */
static void copy_str(char *dst, size_t size, const char *src)
{
	size_t n = strnlen(src, size - 1);
	memcpy(dst, src, n);
	dst[n] = '\0';
}

static int parse_uint(const char *v, unsigned long min, unsigned long max, unsigned long *out)
{
	uint64_t x;
	if (om_str_to_u64(om_str_c(v), UINT64_MAX, &x) != 0 || x < min || x > max)
		return EINVAL;
	*out = (unsigned long)x;
	return 0;
}

static int parse_bool(const char *v, bool *out)
{
	if (!strcmp(v, "1") || !strcasecmp(v, "yes") || !strcasecmp(v, "true") ||
	    !strcasecmp(v, "on")) {
		*out = true;
		return 0;
	}
	if (!strcmp(v, "0") || !strcasecmp(v, "no") || !strcasecmp(v, "false") ||
	    !strcasecmp(v, "off")) {
		*out = false;
		return 0;
	}
	return EINVAL;
}

/* ADDRESS:PORT | [V6]:PORT, comma-separated; "off" or "" for none. */
static int parse_listen_list(const char *v, struct om_listen *out, size_t *n, char *why,
                             size_t whylen)
{
	struct om_str rest = om_str_c(v);
	size_t count = 0;
	if (!strcasecmp(v, "off") || !*v) {
		*n = 0;
		return 0;
	}
	while (rest.len) {
		const char *comma = memchr(rest.p, ',', rest.len);
		struct om_str item = { rest.p, comma ? (size_t)(comma - rest.p) : rest.len };
		rest = comma ? (struct om_str){ comma + 1, rest.len - item.len - 1 } : OM_STR_NULL;
		item = om_str_trim(item);
		char host[64];
		struct om_str port;
		if (count == OM_CONFIG_MAX_LISTEN) {
			snprintf(why, whylen, "at most %d listeners", OM_CONFIG_MAX_LISTEN);
			return EINVAL;
		}
		if (item.len && item.p[0] == '[') {
			const char *rb = memchr(item.p, ']', item.len);
			if (!rb || (size_t)(rb - item.p) + 1 >= item.len || rb[1] != ':' ||
			    (size_t)(rb - item.p - 1) >= sizeof(host)) {
				snprintf(why, whylen, "write IPv6 listeners as [ADDRESS]:PORT");
				return EINVAL;
			}
			snprintf(host, sizeof(host), "%.*s", (int)(rb - item.p - 1), item.p + 1);
			port = (struct om_str){ rb + 2, item.len - (size_t)(rb - item.p) - 2 };
			unsigned char b[16];
			if (inet_pton(AF_INET6, host, b) != 1) {
				snprintf(why, whylen, "'%s' is not an IPv6 address", host);
				return EINVAL;
			}
		} else {
			const char *colon = NULL;
			for (size_t i = item.len; i > 0; i--)
				if (item.p[i - 1] == ':') {
					colon = item.p + i - 1;
					break;
				}
			if (!colon || (size_t)(colon - item.p) >= sizeof(host) || colon == item.p) {
				snprintf(why, whylen,
				         "write listeners as ADDRESS:PORT, e.g. 0.0.0.0:5060");
				return EINVAL;
			}
			snprintf(host, sizeof(host), "%.*s", (int)(colon - item.p), item.p);
			port =
			    (struct om_str){ colon + 1, item.len - (size_t)(colon - item.p) - 1 };
			unsigned char b[4];
			if (inet_pton(AF_INET, host, b) != 1) {
				snprintf(why, whylen,
				         "'%s' is not an IPv4 address (IPv6: [ADDRESS]:PORT)",
				         host);
				return EINVAL;
			}
		}
		uint64_t p;
		if (om_str_to_u64(port, 65535, &p) != 0 || p == 0) {
			snprintf(why, whylen, "port must be 1-65535");
			return EINVAL;
		}
		snprintf(out[count].host, sizeof(out[count].host), "%s", host);
		out[count].port = (uint16_t)p;
		count++;
	}
	*n = count;
	return 0;
}

void om_config_listen_str(const struct om_listen *l, size_t n, char *out, size_t outlen)
{
	size_t off = 0;
	out[0] = '\0';
	for (size_t i = 0; i < n && off < outlen; i++) {
		int w = snprintf(out + off, outlen - off,
		                 strchr(l[i].host, ':') ? "%s[%s]:%u" : "%s%s:%u", i ? "," : "",
		                 l[i].host, l[i].port);
		if (w < 0)
			break;
		off += (size_t)w;
	}
}

enum key_id {
	K_FQDN,
	K_SIP_TCP,
	K_SIP_TLS,
	K_SIP_ADVERTISE,
	K_MEDIA_ADDRESS,
	K_START_SECURED,
	K_RTP_PORTS,
	K_MEDIA_THREADS,
	K_MAX_CALLS,
	K_TLS_MIN_VERSION,
	K_TLS_SECURITY_LEVEL,
	K_STRICT_EKU,
	K_AUTO_SELFSIGNED,
	K_SRTP_BACKEND,
	K_EVENTS_KEEP_DAYS,
	K_RECORDINGS_KEEP_DAYS,
	K_EVENTS_INTERVAL,
	K_LOG_LEVEL,
	K_TCP_IDLE_TIMEOUT,
	K_SIP_MESSAGE_TIMEOUT,
	K_MAX_CONNECTIONS,
	K_MAX_CONNECTIONS_PER_PEER,
	K_DNS_SERVERS,
	K_AUDIO_FORMAT,
	K_KEEP_SPOOL,
	K_MIN_FREE_MB,
	K_DELIVERY_RETRY_S,
	K_PEER_IPV6_PREFIX,
	K_MAX_HANDSHAKES,
	K_MAX_HANDSHAKES_PER_PEER,
	K_TLS_HANDSHAKE_TIMEOUT,
	K_TLS_SOURCE_CHECK,
	K_RTP_TIMEOUT,
	K_SPOOL_FLUSH_MS,
	K_SPOOL_SYNC_MS,
	K_MAX_CALLS_PER_SECOND,
	K_ANSWER_DELAY_MS,
	K_SESSION_EXPIRES,
	K_MIN_SE,
	K_SIP_T1,
	K_METRICS_LISTEN,
	K_SILENCE_TIMEOUT,
	K_SILENCE_THRESHOLD,
	K_MIN_MESSAGE_SECONDS,
	K_INPUT_TIMEOUT,
	K_INPUT_FAILURES,
	K_DRAIN_TIMEOUT,
	K_COUNT
};

static const char *const key_names[K_COUNT] = {
	"fqdn",
	"sip_tcp",
	"sip_tls",
	"sip_advertise",
	"media_address",
	"start_secured",
	"rtp_ports",
	"media_threads",
	"max_calls",
	"tls_min_version",
	"tls_security_level",
	"strict_eku",
	"auto_selfsigned",
	"srtp_backend",
	"events_keep_days",
	"recordings_keep_days",
	"events_interval",
	"log_level",
	"tcp_idle_timeout",
	"sip_message_timeout",
	"max_connections",
	"max_connections_per_peer",
	"dns_servers",
	"audio_format",
	"keep_spool",
	"min_free_mb",
	"delivery_retry_s",
	"peer_ipv6_prefix",
	"max_handshakes",
	"max_handshakes_per_peer",
	"tls_handshake_timeout",
	"tls_source_check",
	"rtp_timeout",
	"spool_flush_ms",
	"spool_sync_ms",
	"max_calls_per_second",
	"answer_delay_ms",
	"session_expires",
	"min_se",
	"sip_t1",
	"metrics_listen",
	"silence_timeout",
	"silence_threshold",
	"min_message_seconds",
	"input_timeout",
	"input_failures",
	"drain_timeout",
};

/* Applies one setting; on error writes the reason (without file:line). */
static int apply(struct om_config *c, enum key_id k, const char *v, char *why, size_t wl)
{
	unsigned long u;
	switch (k) {
	case K_FQDN: {
		/* The rules of every host name openum takes; kept in its
		 * canonical form (lower case, no root dot). */
		char r[96];
		if (om_fqdn_check(v, OM_FQDN_MULTI_LABEL, r, sizeof(r)) != 0) {
			snprintf(why, wl, "fqdn must be a host name like um1.example.com: %s", r);
			return EINVAL;
		}
		if (om_fqdn_norm(v, strlen(v), c->fqdn, sizeof(c->fqdn)))
			return EINVAL;
		c->fqdn_set = true;
		return 0;
	}
	case K_SIP_TCP:
		return parse_listen_list(v, c->sip_tcp, &c->n_sip_tcp, why, wl);
	case K_SIP_TLS:
		return parse_listen_list(v, c->sip_tls, &c->n_sip_tls, why, wl);
	case K_SIP_ADVERTISE:
		if (*v && !valid_hostname(v) && !numeric_host(v)) {
			snprintf(why, wl, "sip_advertise must be a host name or an IP address");
			return EINVAL;
		}
		copy_str(c->sip_advertise, sizeof(c->sip_advertise), v);
		return 0;
	case K_MEDIA_ADDRESS:
		if (*v && !numeric_host(v)) {
			snprintf(why, wl, "media_address must be an IP address");
			return EINVAL;
		}
		copy_str(c->media_address, sizeof(c->media_address), v);
		return 0;
	case K_START_SECURED:
		if (strcmp(v, "0") && strcmp(v, "1")) {
			snprintf(why, wl, "start_secured must be 0 or 1");
			return EINVAL;
		}
		c->start_secured = v[0] == '1';
		return 0;
	case K_RTP_PORTS: {
		const char *dash = strchr(v, '-');
		unsigned long lo, hi;
		char a[16];
		if (!dash || (size_t)(dash - v) >= sizeof(a))
			goto bad_ports;
		snprintf(a, sizeof(a), "%.*s", (int)(dash - v), v);
		if (parse_uint(a, 1024, 65535, &lo) || parse_uint(dash + 1, 1024, 65535, &hi) ||
		    hi < lo + 1)
			goto bad_ports;
		c->rtp_port_min = (uint16_t)lo;
		c->rtp_port_max = (uint16_t)hi;
		return 0;
	bad_ports:
		snprintf(why, wl, "rtp_ports must be LOW-HIGH within 1024-65535, e.g. 20000-29999");
		return EINVAL;
	}
	case K_MEDIA_THREADS:
		if (parse_uint(v, 0, 256, &u)) {
			snprintf(why, wl, "media_threads must be 0 (one per core) to 256");
			return EINVAL;
		}
		c->media_threads = (unsigned)u;
		return 0;
	case K_MAX_CALLS:
		if (parse_uint(v, 1, 100000, &u)) {
			snprintf(why, wl, "max_calls must be 1 to 100000");
			return EINVAL;
		}
		c->max_calls = (unsigned)u;
		return 0;
	case K_TLS_MIN_VERSION:
		if (!strcmp(v, "1.2"))
			c->tls_min_version = 12;
		else if (!strcmp(v, "1.3"))
			c->tls_min_version = 13;
		else {
			snprintf(
			    why, wl,
			    "tls_min_version must be 1.2 or 1.3 (older versions are not offered)");
			return EINVAL;
		}
		return 0;
	case K_TLS_SECURITY_LEVEL:
		if (parse_uint(v, 0, 5, &u)) {
			snprintf(why, wl, "tls_security_level must be 0 to 5");
			return EINVAL;
		}
		c->tls_security_level = (int)u;
		return 0;
	case K_STRICT_EKU:
	case K_AUTO_SELFSIGNED:
	case K_TLS_SOURCE_CHECK: {
		bool b;
		if (parse_bool(v, &b)) {
			snprintf(why, wl, "%s must be 0 or 1", key_names[k]);
			return EINVAL;
		}
		if (k == K_STRICT_EKU)
			c->strict_eku = b;
		else if (k == K_AUTO_SELFSIGNED)
			c->auto_selfsigned = b;
		else
			c->tls_source_check = b;
		return 0;
	}
	case K_PEER_IPV6_PREFIX:
		if (parse_uint(v, 16, 128, &u)) {
			snprintf(why, wl, "peer_ipv6_prefix must be 16 to 128 bits");
			return EINVAL;
		}
		c->peer_ipv6_prefix = (unsigned)u;
		return 0;
	case K_MAX_HANDSHAKES:
	case K_MAX_HANDSHAKES_PER_PEER:
		if (parse_uint(v, k == K_MAX_HANDSHAKES ? 0 : 1, 100000, &u)) {
			snprintf(why, wl, "%s must be %s to 100000", key_names[k],
			         k == K_MAX_HANDSHAKES ? "0" : "1");
			return EINVAL;
		}
		if (k == K_MAX_HANDSHAKES)
			c->max_handshakes = (unsigned)u;
		else
			c->max_handshakes_per_peer = (unsigned)u;
		return 0;
	case K_TLS_HANDSHAKE_TIMEOUT:
		if (parse_uint(v, 1, 300, &u)) {
			snprintf(why, wl, "tls_handshake_timeout must be 1 to 300 seconds");
			return EINVAL;
		}
		c->tls_handshake_timeout = (unsigned)u;
		return 0;
	case K_SRTP_BACKEND:
		if (!strcmp(v, "openssl"))
			c->srtp_backend = OM_CFG_SRTP_OPENSSL;
		else if (!strcmp(v, "libsrtp2"))
			c->srtp_backend = OM_CFG_SRTP_LIBSRTP2;
		else {
			snprintf(why, wl, "srtp_backend must be openssl or libsrtp2");
			return EINVAL;
		}
		return 0;
	case K_EVENTS_KEEP_DAYS:
	case K_RECORDINGS_KEEP_DAYS:
		if (parse_uint(v, 1, 36500, &u)) {
			snprintf(why, wl, "%s must be 1 to 36500", key_names[k]);
			return EINVAL;
		}
		if (k == K_EVENTS_KEEP_DAYS)
			c->events_keep_days = (unsigned)u;
		else
			c->recordings_keep_days = (unsigned)u;
		return 0;
	case K_EVENTS_INTERVAL:
		if (parse_uint(v, 1, 86400, &u)) {
			snprintf(why, wl, "events_interval must be 1 to 86400 seconds");
			return EINVAL;
		}
		c->events_interval = (unsigned)u;
		return 0;
	case K_TCP_IDLE_TIMEOUT:
	case K_SIP_MESSAGE_TIMEOUT:
		if (parse_uint(v, 1, 86400, &u)) {
			snprintf(why, wl, "%s must be 1 to 86400 seconds", key_names[k]);
			return EINVAL;
		}
		if (k == K_TCP_IDLE_TIMEOUT)
			c->tcp_idle_timeout = (unsigned)u;
		else
			c->sip_message_timeout = (unsigned)u;
		return 0;
	case K_MAX_CONNECTIONS:
	case K_MAX_CONNECTIONS_PER_PEER:
		if (parse_uint(v, 1, 100000, &u)) {
			snprintf(why, wl, "%s must be 1 to 100000", key_names[k]);
			return EINVAL;
		}
		if (k == K_MAX_CONNECTIONS)
			c->max_connections = (unsigned)u;
		else
			c->max_connections_per_peer = (unsigned)u;
		return 0;
	case K_DNS_SERVERS: {
		struct om_listen tmp[OM_CONFIG_MAX_LISTEN];
		size_t n;
		char list[600];
		/* ADDRESS[:PORT]: check each as a listener with port 53 added. */
		size_t o = 0;
		const char *p = v;
		while (*p && o + 80 < sizeof(list)) {
			const char *comma = strchr(p, ',');
			size_t l = comma ? (size_t)(comma - p) : strlen(p);
			char item[80];
			snprintf(item, sizeof(item), "%.*s", (int)(l < 70 ? l : 70), p);
			struct om_str t = om_str_trim(om_str_c(item));
			bool has_port = t.len && (t.p[0] == '[' ? memchr(t.p, ']', t.len) &&
			                                              t.p[t.len - 1] != ']'
			                                        : memchr(t.p, ':', t.len) != NULL);
			o += (size_t)snprintf(list + o, sizeof(list) - o, "%s%.*s%s", o ? "," : "",
			                      (int)t.len, t.p, has_port ? "" : ":53");
			p += l + (comma ? 1 : 0);
		}
		if (strlen(v) >= sizeof(c->dns_servers) ||
		    (*v && parse_listen_list(list, tmp, &n, why, wl))) {
			snprintf(why, wl,
			         "dns_servers must be ADDRESS[:PORT],... (IPv6: [ADDRESS]:PORT)");
			return EINVAL;
		}
		copy_str(c->dns_servers, sizeof(c->dns_servers), v);
		return 0;
	}
	case K_AUDIO_FORMAT:
		if (strcasecmp(v, "wav") && strcasecmp(v, "mp3") && strcasecmp(v, "opus")) {
			snprintf(why, wl, "audio_format must be wav, mp3 or opus");
			return EINVAL;
		}
		{
			size_t i;
			for (i = 0; v[i] && i < sizeof(c->audio_format) - 1; i++)
				c->audio_format[i] = (char)tolower((unsigned char)v[i]);
			c->audio_format[i] = '\0';
			return 0;
		}
	case K_KEEP_SPOOL:
		if (parse_bool(v, &c->keep_spool)) {
			snprintf(why, wl, "keep_spool must be 0 or 1");
			return EINVAL;
		}
		return 0;
	case K_MIN_FREE_MB:
		if (parse_uint(v, 0, 10000000, &u)) {
			snprintf(why, wl, "min_free_mb must be 0 to 10000000");
			return EINVAL;
		}
		c->min_free_mb = (unsigned)u;
		return 0;
	case K_DELIVERY_RETRY_S:
		if (parse_uint(v, 1, 3600, &u)) {
			snprintf(why, wl, "delivery_retry_s must be 1 to 3600 seconds");
			return EINVAL;
		}
		c->delivery_retry_s = (unsigned)u;
		return 0;
	case K_RTP_TIMEOUT:
		if (parse_uint(v, 5, 3600, &u)) {
			snprintf(why, wl, "rtp_timeout must be 5 to 3600 seconds");
			return EINVAL;
		}
		c->rtp_timeout = (unsigned)u;
		return 0;
	case K_SPOOL_FLUSH_MS:
		if (parse_uint(v, 20, 250, &u)) {
			snprintf(
			    why, wl,
			    "spool_flush_ms must be 20 to 250 (audio may wait at most that long "
			    "before it is written)");
			return EINVAL;
		}
		c->spool_flush_ms = (unsigned)u;
		return 0;
	case K_SPOOL_SYNC_MS:
		if (parse_uint(v, 100, 5000, &u)) {
			snprintf(why, wl, "spool_sync_ms must be 100 to 5000");
			return EINVAL;
		}
		c->spool_sync_ms = (unsigned)u;
		return 0;
	case K_MAX_CALLS_PER_SECOND:
		if (parse_uint(v, 0, 100000, &u)) {
			snprintf(why, wl, "max_calls_per_second must be 0 (no cap) to 100000");
			return EINVAL;
		}
		c->max_calls_per_second = (unsigned)u;
		return 0;
	case K_ANSWER_DELAY_MS:
		if (parse_uint(v, 0, 60000, &u)) {
			snprintf(why, wl, "answer_delay_ms must be 0 to 60000");
			return EINVAL;
		}
		c->answer_delay_ms = (unsigned)u;
		return 0;
	case K_SESSION_EXPIRES:
		if (parse_uint(v, 0, 86400, &u) || (u && u < 90)) {
			snprintf(why, wl,
			         "session_expires must be 0 (none) or 90 to 86400 seconds");
			return EINVAL;
		}
		c->session_expires = (unsigned)u;
		return 0;
	case K_MIN_SE:
		if (parse_uint(v, 90, 86400, &u)) {
			snprintf(why, wl, "min_se must be 90 to 86400 seconds (RFC 4028)");
			return EINVAL;
		}
		c->min_se = (unsigned)u;
		return 0;
	case K_SIP_T1:
		if (parse_uint(v, 50, 5000, &u)) {
			snprintf(why, wl, "sip_t1 must be 50 to 5000 ms");
			return EINVAL;
		}
		c->sip_t1_ms = (unsigned)u;
		return 0;
	case K_SILENCE_TIMEOUT:
		if (parse_uint(v, 0, 600, &u)) {
			snprintf(why, wl, "silence_timeout must be 0 (never) to 600 seconds");
			return EINVAL;
		}
		c->silence_timeout = (unsigned)u;
		return 0;
	case K_SILENCE_THRESHOLD:
		/* dBov: written with its minus sign (-45) or without (45) */
		if (parse_uint(v[0] == '-' ? v + 1 : v, 10, 90, &u)) {
			snprintf(why, wl, "silence_threshold must be -90 to -10 (dBov)");
			return EINVAL;
		}
		c->silence_threshold = -(int)u;
		return 0;
	case K_MIN_MESSAGE_SECONDS:
		if (parse_uint(v, 0, 60, &u)) {
			snprintf(why, wl, "min_message_seconds must be 0 (keep all) to 60");
			return EINVAL;
		}
		c->min_message_seconds = (unsigned)u;
		return 0;
	case K_INPUT_TIMEOUT:
		if (parse_uint(v, 1, 60, &u)) {
			snprintf(why, wl, "input_timeout must be 1 to 60 seconds");
			return EINVAL;
		}
		c->input_timeout = (unsigned)u;
		return 0;
	case K_INPUT_FAILURES:
		if (parse_uint(v, 1, 10, &u)) {
			snprintf(why, wl, "input_failures must be 1 to 10");
			return EINVAL;
		}
		c->input_failures = (unsigned)u;
		return 0;
	case K_DRAIN_TIMEOUT:
		if (parse_uint(v, 0, 86400, &u)) {
			snprintf(why, wl,
			         "drain_timeout must be 0 (end calls at once) to 86400 seconds");
			return EINVAL;
		}
		c->drain_timeout = (unsigned)u;
		return 0;
	case K_METRICS_LISTEN: {
		int rc = parse_listen_list(v, c->metrics_listen, &c->n_metrics_listen, why, wl);
		if (!rc && c->n_metrics_listen > 1) {
			snprintf(why, wl, "metrics_listen takes one ADDRESS:PORT (or off)");
			rc = EINVAL;
		}
		return rc;
	}
	case K_LOG_LEVEL: {
		enum om_level l;
		if (om_level_parse(v, &l)) {
			snprintf(why, wl, "log_level must be debug, info, warning or error");
			return EINVAL;
		}
		c->log_level = (int)l;
		return 0;
	}
	default:
		return EINVAL;
	}
}

size_t om_config_key_count(void)
{
	return K_COUNT;
}

const char *om_config_key_name(size_t i)
{
	return i < K_COUNT ? key_names[i] : NULL;
}

/* Read once at start: the listeners and connection limits (app/sipd.c), the
 * media engine (app/call_media.c) and the SIP stack's T1 (app/calls.c). */
bool om_config_key_needs_restart(size_t i)
{
	switch (i) {
	case K_SIP_TCP:
	case K_SIP_TLS:
	case K_TCP_IDLE_TIMEOUT:
	case K_SIP_MESSAGE_TIMEOUT:
	case K_MAX_CONNECTIONS:
	case K_MAX_CONNECTIONS_PER_PEER:
	case K_PEER_IPV6_PREFIX:
	case K_MAX_HANDSHAKES:
	case K_MAX_HANDSHAKES_PER_PEER:
	case K_TLS_HANDSHAKE_TIMEOUT:
	case K_RTP_PORTS:
	case K_MEDIA_THREADS:
	case K_SRTP_BACKEND:
	case K_RTP_TIMEOUT:
	case K_SPOOL_FLUSH_MS:
	case K_SPOOL_SYNC_MS:
	case K_SIP_T1:
		return true;
	default:
		return false;
	}
}

int om_config_value_str(const struct om_config *c, size_t i, char *out, size_t outlen)
{
	const char *s = NULL;
	unsigned long u = 0;
	bool is_num = true;
	switch ((enum key_id)i) {
	case K_FQDN:
		s = c->fqdn;
		break;
	case K_SIP_TCP:
		om_config_listen_str(c->sip_tcp, c->n_sip_tcp, out, outlen);
		return 0;
	case K_SIP_TLS:
		om_config_listen_str(c->sip_tls, c->n_sip_tls, out, outlen);
		return 0;
	case K_SIP_ADVERTISE:
		s = c->sip_advertise;
		break;
	case K_MEDIA_ADDRESS:
		s = c->media_address;
		break;
	case K_START_SECURED:
		u = c->start_secured;
		break;
	case K_RTP_PORTS:
		snprintf(out, outlen, "%u-%u", c->rtp_port_min, c->rtp_port_max);
		return 0;
	case K_MEDIA_THREADS:
		u = c->media_threads;
		break;
	case K_MAX_CALLS:
		u = c->max_calls;
		break;
	case K_TLS_MIN_VERSION:
		s = c->tls_min_version == 13 ? "1.3" : "1.2";
		break;
	case K_TLS_SECURITY_LEVEL:
		u = (unsigned long)c->tls_security_level;
		break;
	case K_STRICT_EKU:
		u = c->strict_eku;
		break;
	case K_AUTO_SELFSIGNED:
		u = c->auto_selfsigned;
		break;
	case K_SRTP_BACKEND:
		s = c->srtp_backend == OM_CFG_SRTP_LIBSRTP2 ? "libsrtp2" : "openssl";
		break;
	case K_EVENTS_KEEP_DAYS:
		u = c->events_keep_days;
		break;
	case K_RECORDINGS_KEEP_DAYS:
		u = c->recordings_keep_days;
		break;
	case K_EVENTS_INTERVAL:
		u = c->events_interval;
		break;
	case K_LOG_LEVEL:
		s = om_level_name((enum om_level)c->log_level);
		break;
	case K_TCP_IDLE_TIMEOUT:
		u = c->tcp_idle_timeout;
		break;
	case K_SIP_MESSAGE_TIMEOUT:
		u = c->sip_message_timeout;
		break;
	case K_MAX_CONNECTIONS:
		u = c->max_connections;
		break;
	case K_MAX_CONNECTIONS_PER_PEER:
		u = c->max_connections_per_peer;
		break;
	case K_DNS_SERVERS:
		s = c->dns_servers;
		break;
	case K_AUDIO_FORMAT:
		s = c->audio_format;
		break;
	case K_KEEP_SPOOL:
		u = c->keep_spool;
		break;
	case K_MIN_FREE_MB:
		u = c->min_free_mb;
		break;
	case K_DELIVERY_RETRY_S:
		u = c->delivery_retry_s;
		break;
	case K_PEER_IPV6_PREFIX:
		u = c->peer_ipv6_prefix;
		break;
	case K_MAX_HANDSHAKES:
		u = c->max_handshakes;
		break;
	case K_MAX_HANDSHAKES_PER_PEER:
		u = c->max_handshakes_per_peer;
		break;
	case K_TLS_HANDSHAKE_TIMEOUT:
		u = c->tls_handshake_timeout;
		break;
	case K_TLS_SOURCE_CHECK:
		u = c->tls_source_check;
		break;
	case K_RTP_TIMEOUT:
		u = c->rtp_timeout;
		break;
	case K_SPOOL_FLUSH_MS:
		u = c->spool_flush_ms;
		break;
	case K_SPOOL_SYNC_MS:
		u = c->spool_sync_ms;
		break;
	case K_MAX_CALLS_PER_SECOND:
		u = c->max_calls_per_second;
		break;
	case K_ANSWER_DELAY_MS:
		u = c->answer_delay_ms;
		break;
	case K_SESSION_EXPIRES:
		u = c->session_expires;
		break;
	case K_MIN_SE:
		u = c->min_se;
		break;
	case K_SIP_T1:
		u = c->sip_t1_ms;
		break;
	case K_METRICS_LISTEN:
		om_config_listen_str(c->metrics_listen, c->n_metrics_listen, out, outlen);
		return 0;
	case K_SILENCE_TIMEOUT:
		u = c->silence_timeout;
		break;
	case K_SILENCE_THRESHOLD:
		snprintf(out, outlen, "%d", c->silence_threshold);
		return 0;
	case K_MIN_MESSAGE_SECONDS:
		u = c->min_message_seconds;
		break;
	case K_INPUT_TIMEOUT:
		u = c->input_timeout;
		break;
	case K_INPUT_FAILURES:
		u = c->input_failures;
		break;
	case K_DRAIN_TIMEOUT:
		u = c->drain_timeout;
		break;
	default:
		is_num = false;
		break;
	}
	if (s)
		snprintf(out, outlen, "%s", s);
	else if (is_num)
		snprintf(out, outlen, "%lu", u);
	else
		return ENOENT;
	return 0;
}

size_t om_config_diff(const struct om_config *a, const struct om_config *b, struct om_buf *out)
{
	size_t n = 0;
	for (size_t i = 0; i < K_COUNT; i++) {
		char va[600], vb[600];
		if (om_config_value_str(a, i, va, sizeof(va)) ||
		    om_config_value_str(b, i, vb, sizeof(vb)) || !strcmp(va, vb))
			continue;
		om_buf_printf(out, "%s%s %s -> %s%s", out->len ? "; " : "", key_names[i],
		              va[0] ? va : "(none)", vb[0] ? vb : "(none)",
		              om_config_key_needs_restart(i) ? " (takes effect at restart)" : "");
		n++;
	}
	return n;
}

static int fail(char *err, size_t errlen, const char *name, unsigned line, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static int fail(char *err, size_t errlen, const char *name, unsigned line, const char *fmt, ...)
{
	va_list ap;
	int n = snprintf(err, errlen, "%s:%u: ", name, line);
	va_start(ap, fmt);
	if (n >= 0 && (size_t)n < errlen)
		vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
	va_end(ap);
	return EINVAL;
}

int om_config_parse(const char *text, size_t len, const char *name, struct om_config **out,
                    char *err, size_t errlen)
{
	struct om_config *c = NULL;
	unsigned set_at[K_COUNT] = { 0 };
	unsigned line = 0;
	bool in_server = false;
	int rc = om_config_defaults(&c);
	if (rc) {
		snprintf(err, errlen, "%s: out of memory", name);
		return rc;
	}
	om_free(c->path);
	c->path = om_strdup(name);
	if (!c->path) {
		rc = ENOMEM;
		snprintf(err, errlen, "%s: out of memory", name);
		goto out;
	}
	if (len > OM_CONFIG_MAX_BYTES) {
		rc = fail(err, errlen, name, 0, "file larger than %d bytes", OM_CONFIG_MAX_BYTES);
		goto out;
	}
	for (size_t pos = 0; pos < len;) {
		const char *nl = memchr(text + pos, '\n', len - pos);
		struct om_str l = { text + pos, nl ? (size_t)(nl - text - pos) : len - pos };
		pos += l.len + (nl ? 1 : 0);
		line++;
		if (memchr(l.p, '\0', l.len)) {
			rc = fail(err, errlen, name, line, "NUL byte in the line");
			goto out;
		}
		l = om_str_trim(l);
		if (l.len == 0 || l.p[0] == '#' || l.p[0] == ';')
			continue;
		if (l.p[0] == '[') {
			if (l.p[l.len - 1] != ']') {
				rc = fail(err, errlen, name, line, "section header must be [name]");
				goto out;
			}
			struct om_str sec = om_str_trim((struct om_str){ l.p + 1, l.len - 2 });
			if (!om_str_eq_c(sec, "server")) {
				rc = fail(err, errlen, name, line,
				          "unknown section [%.*s]; the only section is [server]",
				          (int)(sec.len > 40 ? 40 : sec.len), sec.p);
				goto out;
			}
			in_server = true;
			continue;
		}
		const char *eq = memchr(l.p, '=', l.len);
		if (!eq) {
			rc = fail(err, errlen, name, line, "expected key = value");
			goto out;
		}
		struct om_str key = om_str_trim((struct om_str){ l.p, (size_t)(eq - l.p) });
		struct om_str val =
		    om_str_trim((struct om_str){ eq + 1, l.len - (size_t)(eq - l.p) - 1 });
		if (!in_server) {
			rc = fail(err, errlen, name, line,
			          "'%.*s' is outside a section; put it under [server]",
			          (int)(key.len > 40 ? 40 : key.len), key.p);
			goto out;
		}
		int k;
		for (k = 0; k < K_COUNT; k++)
			if (om_str_eq_c(key, key_names[k]))
				break;
		if (k == K_COUNT) {
			rc = fail(
			    err, errlen, name, line,
			    "unknown key '%.*s' (see `openum init`'s openum.conf for every key)",
			    (int)(key.len > 40 ? 40 : key.len), key.p);
			goto out;
		}
		if (set_at[k]) {
			rc = fail(err, errlen, name, line, "'%s' is set twice (first at line %u)",
			          key_names[k], set_at[k]);
			goto out;
		}
		set_at[k] = line;
		char value[512], why[160];
		if (val.len >= sizeof(value)) {
			rc = fail(err, errlen, name, line, "value of '%s' is too long",
			          key_names[k]);
			goto out;
		}
		memcpy(value, val.p, val.len);
		value[val.len] = '\0';
		why[0] = '\0';
		if (apply(c, (enum key_id)k, value, why, sizeof(why))) {
			rc = fail(err, errlen, name, line, "%s", why);
			goto out;
		}
	}
	/* Strangers' handshakes must leave room for identified gateways. */
	if (c->max_handshakes && c->max_handshakes >= c->max_connections) {
		rc = fail(err, errlen, name, set_at[K_MAX_HANDSHAKES],
		          "max_handshakes (%u) must be below max_connections (%u): the rest is "
		          "kept for identified gateways",
		          c->max_handshakes, c->max_connections);
		goto out;
	}
	*out = c;
	return 0;
out:
	om_config_free(c);
	return rc;
}

unsigned om_config_max_handshakes(const struct om_config *c)
{
	if (c->max_handshakes)
		return c->max_handshakes;
	unsigned n = c->max_connections / 4;
	return n > 128 ? 128 : n ? n : 1;
}

int om_config_load(const char *path, bool missing_ok, struct om_config **out, char *err,
                   size_t errlen)
{
	char *text = NULL;
	size_t len = 0;
	int rc = om_file_read(path, OM_CONFIG_MAX_BYTES, &text, &len);
	if (rc == ENOENT && missing_ok) {
		rc = om_config_defaults(out);
		if (rc)
			snprintf(err, errlen, "%s: out of memory", path);
		return rc;
	}
	if (rc) {
		snprintf(err, errlen, "%s: cannot read: %s", path,
		         rc == EFBIG ? "larger than 256 KiB" : om_file_strerror(rc));
		return rc;
	}
	rc = om_config_parse(text, len, path, out, err, errlen);
	om_free(text);
	return rc;
}
