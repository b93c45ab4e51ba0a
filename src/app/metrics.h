/* metrics.h — what `openum serve` tells Prometheus (R21): calls by
 * security mode and transport, refusals by cause (event 1132's reason,
 * event 1137's cap, …), TLS refusals by reason (event 1130), SRTP failures,
 * deliveries, the spool, certificate expiry and the reload generation, in
 * the Prometheus text exposition format 0.0.4 — and the same numbers as
 * JSON for `openum status --json`.
 *
 * Served over HTTP on `metrics_listen` (libmicrohttpd on the control loop,
 * metrics_http.c): GET /metrics. A loopback address is served in plain
 * HTTP; any other address only over TLS with the server's own certificate
 * and chain (R15), so a server without a certificate (unsecured start)
 * does not serve metrics beyond loopback. Every number is read from the
 * modules' own stats functions at the moment of the scrape, on the control
 * thread: nothing is cached but the spool's size, which a thread-pool job
 * measures every 30 s and after a scrape (at most once a second; a scrape
 * shows the last measurement). */
#ifndef OM_APP_METRICS_H
#define OM_APP_METRICS_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "core/config.h"
#include "core/str.h"

struct om_sipd;
struct om_delivery;
struct om_cert_mgr;

/* What the server lends a scrape (filled by the collect callback). */
struct om_metrics_input {
	bool secured;
	int64_t started_ms; /* Unix ms */
	unsigned long generation, reloads, reloads_rejected;
	unsigned max_calls;
	struct om_sipd *sipd;            /* NULL: no SIP service */
	struct om_delivery *delivery;    /* NULL: none */
	const struct om_cert_mgr *certs; /* NULL: unsecured */
};
typedef void (*om_metrics_collect_h)(struct om_metrics_input *in, void *arg);

struct om_metrics;

/* data_dir: the store (its spool/ is measured). collect fills the input
 * at each scrape. 0 or ENOMEM. */
int om_metrics_new(uv_loop_t *loop, const char *data_dir, om_metrics_collect_h collect, void *arg,
                   struct om_metrics **out);
/* Starts, restarts or stops the HTTP endpoint: l NULL (or port 0) = off;
 * a loopback address: plain HTTP; another one: HTTPS with cert + chain +
 * key (NULL when the server has none: then nothing is served there, and
 * EACCES). Unchanged address and certificate: nothing happens. A failure
 * (EADDRINUSE, …) leaves metrics unserved with err filled; SIP is never
 * affected, and the next call (a reload) tries again. */
int om_metrics_configure(struct om_metrics *m, const struct om_listen *l, X509 *cert,
                         STACK_OF(X509) * chain, EVP_PKEY *key, int tls_min_version, char *err,
                         size_t errlen);
/* A gateway's certificate accepted in a handshake: its expiry is watched
 * (the nearest one is a metric). At most 4,096 gateways are kept. */
void om_metrics_peer_cert(struct om_metrics *m, const char *gateway, int64_t not_after_ms);
/* The Prometheus text of one scrape (text/plain; version=0.0.4). */
void om_metrics_prometheus(struct om_metrics *m, struct om_buf *out);
/* ,"metrics":{"listen":…,"serving":…,"values":{NAME:[{LABELS…,"value":N}]}}
 * for `openum status --json`: the same families and samples. */
void om_metrics_status_json(struct om_metrics *m, struct om_buf *out);
/* Stops the endpoint and frees (handles closed on the loop). */
void om_metrics_free(struct om_metrics *m);

/* ------------------------------------------------ HTTP (metrics_http.c) */

struct om_metrics_http;
/* Renders the body of GET /metrics. */
typedef void (*om_metrics_http_h)(struct om_buf *out, void *arg);
/* Listens on host:port (numeric). cert_pem/key_pem non-NULL: HTTPS
 * (GnuTLS through libmicrohttpd; TLS 1.2 or 1.3 from tls_min_version 12 or
 * 13), copied. Bounds: 16 connections, 4 per address, 10 s idle, 32 KiB
 * per connection; only GET and HEAD of /metrics (else 404/405). 0, or an
 * errno with err filled. */
int om_metrics_http_start(uv_loop_t *loop, const char *host, uint16_t port, const char *cert_pem,
                          const char *key_pem, int tls_min_version, om_metrics_http_h h, void *arg,
                          struct om_metrics_http **out, char *err, size_t errlen);
uint64_t om_metrics_http_requests(const struct om_metrics_http *h);
/* Closes the listener and every connection; memory freed on the loop. */
void om_metrics_http_stop(struct om_metrics_http *h);

#endif
