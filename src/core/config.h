/* config.h — openum.conf: an INI file with one section, [server].
 *
 *   file    = *( line LF )
 *   line    = WS* ( comment / section / setting / "" ) WS*
 *   comment = ( "#" / ";" ) *any            ; whole lines only
 *   section = "[" name "]"
 *   setting = key WS* "=" WS* value         ; value runs to end of line
 *
 * Every key DESIGN.md lists is known; an unknown section or key, a key set
 * twice, or a bad value is an error naming file:line and what to write
 * instead. Keys left out take their defaults (om_config_default_text()
 * prints them all, commented). */
#ifndef OM_CORE_CONFIG_H
#define OM_CORE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define OM_CONFIG_MAX_LISTEN 4
#define OM_CONFIG_MAX_BYTES  (256 * 1024)

struct om_listen {
	char host[64]; /* numeric address: "0.0.0.0", "::", "127.0.0.1" */
	uint16_t port;
};

enum om_srtp_backend_cfg { OM_CFG_SRTP_OPENSSL = 0, OM_CFG_SRTP_LIBSRTP2 };

struct om_config {
	char *path; /* where it was read from ("(defaults)" when none) */
	char fqdn[254];
	bool fqdn_set; /* fqdn came from the file (else: the host name) */
	struct om_listen sip_tcp[OM_CONFIG_MAX_LISTEN];
	size_t n_sip_tcp;
	struct om_listen sip_tls[OM_CONFIG_MAX_LISTEN];
	size_t n_sip_tls;
	char sip_advertise[254]; /* host for Contact/Via; empty: fqdn */
	char media_address[64];  /* empty: the address the call came in on */
	bool start_secured;
	uint16_t rtp_port_min, rtp_port_max;
	unsigned media_threads; /* 0: one per core */
	unsigned max_calls;
	int tls_min_version; /* 12 or 13 */
	int tls_security_level;
	bool strict_eku;
	bool auto_selfsigned;
	enum om_srtp_backend_cfg srtp_backend;
	unsigned events_keep_days;
	unsigned recordings_keep_days;
	unsigned events_interval;     /* seconds of the per-source event rate limit */
	int log_level;                /* enum om_level */
	unsigned tcp_idle_timeout;    /* s without a byte before a connection is closed */
	unsigned sip_message_timeout; /* s a message may take to arrive completely */
	unsigned max_connections;     /* SIP connections in all */
	unsigned max_connections_per_peer;
	char dns_servers[256];     /* "" = system resolver; else "IP[:PORT],..." */
	unsigned peer_ipv6_prefix; /* bits of an IPv6 address that make one peer (64) */
	unsigned max_handshakes;   /* TLS connections not yet identified; 0 = auto */
	unsigned max_handshakes_per_peer;
	unsigned tls_handshake_timeout; /* s a TLS handshake may take */
	bool tls_source_check;          /* TLS from a non-gateway address: closed at accept */
	/* delivery (docs/modules/delivery.md) */
	char audio_format[8];      /* "wav" (PCM16), "mp3", "opus" (Ogg) */
	bool keep_spool;           /* keep delivered spools recordings_keep_days (1) or not (0) */
	unsigned min_free_mb;      /* below this on the spool's file system: no new calls */
	unsigned delivery_retry_s; /* first retry of a failed delivery; doubles up to 1 h */
	unsigned rtp_timeout;      /* s without RTP/RTCP/CN before a call's media is dead */
	unsigned spool_flush_ms;   /* recorded audio reaches write(2) at least this often */
	unsigned spool_sync_ms;    /* and fdatasync(2) at least this often */
	unsigned max_calls_per_second; /* new calls per second, 0: no cap */
	unsigned answer_delay_ms;      /* ring (180) this long before answering */
	unsigned session_expires;      /* s, RFC 4028, when the gateway asks none; 0: none */
	unsigned min_se;               /* s, our Min-SE (>= 90) */
	unsigned sip_t1_ms;            /* RFC 3261 T1 */
	/* call flows (docs/modules/calls.md) */
	unsigned silence_timeout;     /* s without voice that end a message; 0: never */
	int silence_threshold;        /* dBov: below is silence (-90..-10) */
	unsigned min_message_seconds; /* s of voice below which a message is discarded */
	unsigned input_timeout;       /* s for each digit of an extension */
	unsigned input_failures;      /* tries to enter an extension */
	unsigned drain_timeout;       /* s calls may go on after SIGTERM; then BYE */
	/* Prometheus metrics (GET /metrics): at most one listener, 0 = off */
	struct om_listen metrics_listen[OM_CONFIG_MAX_LISTEN];
	size_t n_metrics_listen;
};

/* max_handshakes in force: the configured value, or (0) a quarter of
 * max_connections, at most 128, at least 1. */
unsigned om_config_max_handshakes(const struct om_config *c);

/* Defaults (fqdn from gethostname). */
int om_config_defaults(struct om_config **out);
/* Parse text; `name` is used in messages. On error returns EINVAL (or
 * ENOMEM) and writes "name:line: what" to err. */
int om_config_parse(const char *text, size_t len, const char *name, struct om_config **out,
                    char *err, size_t errlen);
/* Read and parse a file; a missing file is an error unless missing_ok, in
 * which case the defaults are returned. */
int om_config_load(const char *path, bool missing_ok, struct om_config **out, char *err,
                   size_t errlen);
void om_config_free(struct om_config *c);
/* A complete commented openum.conf with every key at its default. */
const char *om_config_default_text(void);
/* Every key of openum.conf, in the order of the default text. */
size_t om_config_key_count(void);
const char *om_config_key_name(size_t i); /* NULL past the end */
/* Whether key i is read only at start (a reload cannot change it: the
 * listeners, connection limits, media engine, SIP T1). The default text's
 * header names these keys. */
bool om_config_key_needs_restart(size_t i);
/* Key i's value in c, written as openum.conf spells it ("0.0.0.0:5060",
 * "1", "info", "" for an empty value). 0, or ENOENT for an unknown key. */
int om_config_value_str(const struct om_config *c, size_t i, char *out, size_t outlen);
/* Appends "key OLD -> NEW" for every key whose value differs between a and
 * b (followed by " (takes effect at restart)" for a key a reload cannot
 * change), each item preceded by "; " unless the buffer was empty (no separator
 * after the last). An empty value shows as "(none)". Returns how many keys
 * differ. */
struct om_buf;
size_t om_config_diff(const struct om_config *a, const struct om_config *b, struct om_buf *out);
/* "0.0.0.0:5060,[::]:5060" */
void om_config_listen_str(const struct om_listen *l, size_t n, char *out, size_t outlen);

#endif
