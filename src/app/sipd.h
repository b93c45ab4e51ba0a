/* sipd.h — the SIP service of `openum serve`: listeners (TCP, and mutual
 * TLS when the start is secured), the trusted-device check (R4: address over
 * TCP, certificate over TLS) before any parsing, and the answers openum gives today
 * (stateless: OPTIONS 200, 403 for plans that need TLS, 405/501 for the
 * rest, 420 for unknown Require). Calls come with the call issues. */
#ifndef OM_APP_SIPD_H
#define OM_APP_SIPD_H

#include <stdbool.h>
#include <uv.h>

#include "core/config.h"
#include "core/str.h"
#include "directory/directory.h"
#include "tls/tls.h"
#include "transport/tcp.h"

struct om_sipd;

/* Starts the TCP listeners of cfg->sip_tcp and the calls (their media
 * engine spools under data_dir/spool). 0 or errno with err filled. */
int om_sipd_new(uv_loop_t *loop, const struct om_config *cfg, const char *data_dir,
                struct om_sipd **out, char *err, size_t errlen);
/* Starts the TLS listeners of cfg->sip_tls with ctx (a secured start;
 * a second call only swaps the context). 0 or errno with err filled. */
int om_sipd_tls_start(struct om_sipd *d, const struct om_config *cfg, struct om_tls_ctx *ctx,
                      char *err, size_t errlen);
bool om_sipd_tls_listening(const struct om_sipd *d);
/* New handshakes use ctx (a reference is taken); when it replaces another,
 * open TLS connections are re-checked against its trusted store and the
 * snapshot (R8 beyond: a certificate change without dropping calls). */
void om_sipd_set_tls(struct om_sipd *d, struct om_tls_ctx *ctx, bool strict_eku);
/* Called with the certificate of every gateway accepted over TLS (the
 * expiry watch, R8 beyond). */
typedef void (*om_sipd_peer_cert_h)(X509 *x, const char *gateway, void *arg);
void om_sipd_set_peer_cert_hook(struct om_sipd *d, om_sipd_peer_cert_h h, void *arg);
/* Installs a new snapshot (takes a reference) and re-checks every open
 * connection against it: a peer that is no longer a trusted gateway is
 * disconnected (R4, reload for live connections). */
void om_sipd_set_snapshot(struct om_sipd *d, struct om_dir_snapshot *snap);
/* Closes listeners and connections (memory freed by the loop). */
void om_sipd_close(struct om_sipd *d);
/* The same, and done(arg) once the calls' media engine has stopped: only
 * then may the loop's remaining handles be closed. */
void om_sipd_close_then(struct om_sipd *d, void (*done)(void *arg), void *arg);
/* The delivery engine the calls submit recordings to (borrowed; NULL
 * before it closes). */
struct om_delivery;
void om_sipd_set_delivery(struct om_sipd *d, struct om_delivery *del);
/* Drain (SIGTERM): no new calls (503); calls in progress go on for up to
 * timeout_ms, then get our BYE; done(arg) once none is left and their
 * recordings are submitted (om_calls_drain). */
void om_sipd_drain(struct om_sipd *d, unsigned timeout_ms, void (*done)(void *arg), void *arg);
/* Configuration replaced by a reload (the calls' caps and timers). */
void om_sipd_set_config(struct om_sipd *d, const struct om_config *cfg);
/* `openum calls`: {"calls":[...]} (never keys). */
void om_sipd_calls_json(struct om_sipd *d, struct om_buf *out);
/* ,"sip":{...} fields for `openum status --json` */
void om_sipd_status_json(struct om_sipd *d, struct om_buf *out);
/* Counters for metrics (control thread). TLS refusals (event 1130) by
 * reason (enum om_tls_reject) and by when they happened. */
enum om_sipd_tls_when { OM_SIPD_TLS_HANDSHAKE = 0, OM_SIPD_TLS_RELOAD, OM_SIPD_TLS_CONNECT };
#define OM_SIPD_TLS_WHEN    3
#define OM_SIPD_TLS_REASONS (OM_TLS_R_CRL_STALE + 1)
struct om_sipd_stats {
	struct om_tcp_stats tcp;
	uint64_t tls_rejected[OM_SIPD_TLS_REASONS][OM_SIPD_TLS_WHEN];
	uint64_t untrusted_dropped, bad_requests, refused_mode;
	size_t flows;
	struct om_calls *calls; /* NULL when calls are not handled */
};
void om_sipd_stats(struct om_sipd *d, struct om_sipd_stats *st);
/* The bound port of TCP listener i (tests bind port 0). */
int om_sipd_tcp_port(struct om_sipd *d, size_t i);

#endif
