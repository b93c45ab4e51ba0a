/* call.h — calls in `openum serve`: the INVITEs a trusted gateway sends
 * become calls (R2, R3, R4, R5, R11). The SIP service (sipd.c) hands every
 * INVITE, ACK, BYE, CANCEL, INFO, UPDATE, PRACK and every response here
 * after its trust and syntax checks; this module owns the transaction
 * stack, the dialogs, the media sessions and the calls, and answers.
 *
 * Admission of an INVITE, in this order (docs/modules/calls.md): the
 * gateway's dial plan is served by this server (else 403 + 1136) → the
 * server and the gateway take new calls (else 503) → caps: max_calls, the
 * gateway's --max-calls, max_calls_per_second (503 + Retry-After, 1137) →
 * session timer (422) → the R3 table (om_sdp_mode_apply: 403/488 + 1132)
 * → a media session whose port goes into our SDP.
 *
 * Requests openum sends (BYE, re-INVITE/UPDATE refreshes) go over the
 * dialog's own connection while it is open, else only where
 * om_trust_outbound says: an open flow of the gateway, or the configured
 * gateway itself over a new connection (mutual TLS with our certificate
 * when the gateway is TLS). Never to a host taken from a message. */
#ifndef OM_APP_CALL_H
#define OM_APP_CALL_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "core/config.h"
#include "media/media.h"
#include "core/str.h"
#include "directory/directory.h"
#include "sip/sip.h"
#include "transport/tcp.h"
#include "trust/trust.h"

struct om_calls;

/* What the SIP service lends the calls. */
struct om_calls_env {
	uv_loop_t *loop;
	struct om_flow_table *flows; /* borrowed: outlives the calls */
	const char *data_dir;        /* the store: spool/ and prompts/ under it */
	/* Opens a connection for a request to a gateway with no open flow
	 * (ob from om_trust_outbound: address, transport, TLS name). On 0 the
	 * connection's id; it reaches om_calls_conn_up when it is usable and
	 * queued bytes go once it is. NULL: openum cannot connect out. */
	int (*connect_h)(const struct om_outbound *ob, int64_t gateway_id, uint64_t *conn_id,
	                 void *arg);
	void *arg;
};

/* 0 or errno with err filled. cfg is read (caps, timers, addresses) and
 * must stay valid until om_calls_set_config replaces it. */
int om_calls_new(const struct om_calls_env *env, const struct om_config *cfg, struct om_calls **out,
                 char *err, size_t errlen);
/* Ends every call (BYE), stops the media engine; done(arg) (may be NULL)
 * runs on the loop once the engine's threads have ended — the loop's
 * handles must not be closed before (the engine still signals it). */
void om_calls_close(struct om_calls *c, void (*done)(void *arg), void *arg);
/* Drain (SIGTERM): new INVITEs get 503; calls in progress go on for up to
 * timeout_ms (ms), then the rest are ended with our BYE; their recordings
 * are finished and submitted for delivery. done(arg) runs on the loop once
 * no call and no recording's last step is left (or 64*T1 + 5 s after the
 * BYEs at the latest). Calling it again, or while closing: done at once. */
void om_calls_drain(struct om_calls *c, unsigned timeout_ms, void (*done)(void *arg), void *arg);
/* The delivery engine the call flows submit recorded spools to (borrowed;
 * NULL before it is closed: spools then wait in the spool for the next
 * start). New calls get 503 while om_delivery_room says the spool's file
 * system is below min_free_mb. */
struct om_delivery;
void om_calls_set_delivery(struct om_calls *c, struct om_delivery *d);
/* The snapshot in force (a reference is taken) and the configuration. */
void om_calls_set_snapshot(struct om_calls *c, struct om_dir_snapshot *snap);
void om_calls_set_config(struct om_calls *c, const struct om_config *cfg);

/* A connection became usable / went away. */
void om_calls_conn_up(struct om_calls *c, struct om_tcp_conn *conn);
void om_calls_conn_down(struct om_calls *c, struct om_tcp_conn *conn);

/* A validated request (or a response) from gateway gw over conn. Returns
 * the status openum answered with (for RFC 5923 ;alias), 0 when nothing
 * was answered (ACK, responses, retransmissions). */
int om_calls_recv(struct om_calls *c, struct om_tcp_conn *conn, const struct om_dir_gateway *gw,
                  const struct om_sip_msg *m);

/* `openum calls`: {"calls":[...]} — never keys. */
void om_calls_json(struct om_calls *c, struct om_buf *out);
/* ,"calls":{...} counters for `openum status`. */
void om_calls_status_json(struct om_calls *c, struct om_buf *out);

/* Refusals of INVITEs by cause, for metrics: `kind` groups the reasons
 * ("security_mode" = the R3 table's reason of event 1132, "cap" = the cap
 * of event 1137, "plan", "draining", "spool" (below min_free_mb),
 * "request", "media", "internal"); `reason` is a stable snake_case word;
 * `status` the SIP status sent.
 * Static strings. */
struct om_calls_refusal {
	const char *kind, *reason;
	int status;
	uint64_t count;
};
#define OM_CALLS_REFUSALS 64 /* distinct (kind, reason, status); then "other" */

struct om_calls_stats {
	size_t active[3][2]; /* holding a call slot, by [enum om_sdp_plan_mode][0 TCP, 1 TLS] */
	uint64_t invites, answered, ended_by_gateway, ended_by_us, no_ack, canceled;
	const struct om_calls_refusal *refusals; /* borrowed until the next INVITE */
	size_t nrefusals;
	bool media;                            /* the media engine runs */
	struct om_media_engine_stats media_st; /* when it does */
};
/* A snapshot of the calls' counters (control thread). */
void om_calls_stats(struct om_calls *c, struct om_calls_stats *st);

#endif
