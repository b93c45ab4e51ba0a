/* txn.h — SIP transactions (RFC 3261 §17, with RFC 6026's Accepted states)
 * and the UAS core's transaction-level rules (§8.2.2.2 merged requests,
 * §9.2 CANCEL, §13.3.1.4 the 2xx retransmitted until the ACK, §16.3
 * Max-Forwards). Included by sip/sip.h; users include that.
 *
 * Like libre's transaction layer, this knows no sockets and no clock of
 * its own: it reaches the network through ONE send function, hears time
 * from an injected monotonic clock, and runs its timers when the owner
 * calls om_sip_stack_timers_run() (the owner keeps one real timer armed
 * for om_sip_stack_next_timer()). So it is unit-tested without a server.
 *
 * Where messages come from and go to is a struct om_sip_dest: the
 * connection (flow) and the trusted peer the transport vouched for. A
 * request only ever matches transactions of its own peer: another gateway
 * cannot CANCEL, ACK or retransmit into someone else's transaction.
 *
 * Ownership: the stack owns every transaction. A transaction user (TU)
 * that receives a server transaction (request_h) or creates a client one
 * holds ONE reference and must drop it with om_sip_stx_release() /
 * om_sip_ctx_release() when it no longer wants callbacks; the stack frees
 * the transaction when both the TU and the state machine are done. After
 * release no callback is made.
 *
 * Timers (RFC 3261 Table 4): T1 500 ms, T2 4 s, T4 5 s by default. Over a
 * reliable transport requests and non-2xx responses are not retransmitted
 * and timers D, I, J, K are zero; the 2xx to an INVITE IS retransmitted
 * over any transport until its ACK (§13.3.1.4: the next hop may be UDP),
 * and without ACK after 64*T1 the TU is told (it sends BYE). Every
 * transaction uses one timer slot at most. */
#ifndef OM_SIP_TXN_H
#define OM_SIP_TXN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct om_sip_msg;
struct om_sip_resp_opts;
struct om_buf;
enum om_sip_method;

/* ------------------------------------------------------------------ */
/* Destinations and timers                                             */

/* A message's flow and peer. conn_id 0: no connection (the send function
 * decides where it goes: for openum, om_trust_outbound). peer_id names the
 * trusted peer (a gateway id); sip/ never interprets either. */
struct om_sip_dest {
	uint64_t conn_id;
	int64_t peer_id;
	bool reliable; /* TCP/TLS */
};

struct om_sip_stack;

/* An intrusive one-shot timer (embed it in its owner; zero it first). */
struct om_sip_timer {
	int64_t due; /* monotonic ms */
	size_t idx;  /* heap slot + 1; 0 when not armed */
	void (*fn)(struct om_sip_timer *t, void *arg);
	void *arg;
};

/* Arms t to fire in `ms` milliseconds (re-arms when already armed).
 * 0 or ENOMEM (the timer is then not armed). */
int om_sip_timer_start(struct om_sip_stack *s, struct om_sip_timer *t, uint64_t ms,
                       void (*fn)(struct om_sip_timer *t, void *arg), void *arg);
void om_sip_timer_stop(struct om_sip_stack *s, struct om_sip_timer *t);
static inline bool om_sip_timer_armed(const struct om_sip_timer *t)
{
	return t->idx != 0;
}

/* ------------------------------------------------------------------ */
/* The stack                                                           */

struct om_sip_stx; /* server transaction */
struct om_sip_ctx; /* client transaction */

struct om_sip_stack_handlers {
	/* Sends bytes to d. Its result is only counted: a lost message is
	 * what retransmissions and timeouts are for. Required. */
	int (*send_h)(const struct om_sip_dest *d, const char *buf, size_t len, void *arg);
	/* Monotonic milliseconds. Required. */
	int64_t (*now_h)(void *arg);
	/* The earliest timer changed: `due` in now_h's time, -1 for none.
	 * Optional (the owner may poll om_sip_stack_next_timer instead). */
	void (*timer_h)(int64_t due, void *arg);
	/* A new request (not a retransmission, ACK or matched CANCEL). The TU
	 * holds a reference to stx and answers through it. Required. For an
	 * INVITE, 100 Trying has been sent already. */
	void (*request_h)(struct om_sip_stx *stx, const struct om_sip_msg *req, void *arg);
	/* An ACK that no transaction absorbed and no 2xx waited for (a late or
	 * foreign ACK). Never answered. Optional. */
	void (*ack_h)(const struct om_sip_msg *ack, const struct om_sip_dest *src, void *arg);
	void *arg;
};

struct om_sip_stack_cfg {
	uint32_t t1_ms, t2_ms, t4_ms; /* 0: 500, 4000, 5000 */
	/* Server transactions at once (0: 4096). Past it a new request is
	 * answered 503 + Retry-After statelessly and nothing is kept. */
	size_t max_server_txn;
	/* Our Via sent-by for client transactions ("um.example.com:5061"). */
	const char *via_sent_by;
	/* Extra header lines for every response we build ("Server: ...\r\n"). */
	const char *resp_extra;
};

struct om_sip_stack_stats {
	size_t server_txn, client_txn;
	uint64_t requests, retransmissions_absorbed, responses_resent;
	uint64_t acks_2xx, acks_non2xx, acks_stray;
	uint64_t cancels_matched, cancels_unmatched;
	uint64_t merged_482, loops_483, stateless_503;
	uint64_t twoxx_retransmitted, twoxx_no_ack;
	uint64_t client_timeouts, responses_stray;
	uint64_t send_errors;
};

/* Copies cfg. 0, EINVAL (a required handler missing) or ENOMEM. */
int om_sip_stack_new(const struct om_sip_stack_cfg *cfg, const struct om_sip_stack_handlers *h,
                     struct om_sip_stack **out);
/* Frees every transaction (without callbacks) and the stack. Transactions
 * the TU still holds must have been released first. */
void om_sip_stack_free(struct om_sip_stack *s);

/* A message from the network, already parsed and (for requests) validated
 * by the caller (om_sip_msg_validate). Requests: retransmissions are
 * absorbed (the last response is resent), ACKs are matched (non-2xx: to
 * their transaction; 2xx: to the INVITE that waits for it, by Call-ID,
 * tags, CSeq and peer), CANCEL is answered (200 + 487 to the INVITE when
 * still pending, else 200; 481 when it matches nothing), merged requests
 * get 482 (§8.2.2.2), an out-of-dialog INVITE with Max-Forwards 0 gets 483,
 * the rest reach request_h. Responses go to their client transaction
 * (branch, CSeq method and peer), strays are dropped. 0 or ENOMEM (a 500
 * was attempted statelessly). */
int om_sip_stack_recv(struct om_sip_stack *s, const struct om_sip_msg *m,
                      const struct om_sip_dest *src);

/* Milliseconds until the next timer is due (0: now), -1 when none. */
int64_t om_sip_stack_next_timer(const struct om_sip_stack *s);
/* Runs every timer that is due. */
void om_sip_stack_timers_run(struct om_sip_stack *s);

void om_sip_stack_stats(const struct om_sip_stack *s, struct om_sip_stack_stats *st);
const struct om_sip_stack_cfg *om_sip_stack_cfg(const struct om_sip_stack *s);

/* A fresh RFC 3261 branch ("z9hG4bK" + 16 hex) / tag (16 hex) / Call-ID
 * word into out (at least 24 / 17 / 17 bytes). Unique per stack: a random
 * prefix drawn at start and a counter. */
void om_sip_stack_branch(struct om_sip_stack *s, char *out, size_t len);
void om_sip_stack_tag(struct om_sip_stack *s, char *out, size_t len);

/* Sends raw bytes outside any transaction (the ACK to a 2xx, §13.2.2.4). */
int om_sip_stack_send(struct om_sip_stack *s, const struct om_sip_dest *d, const char *buf,
                      size_t len);

/* A response to `req` with no transaction kept (overload, or a request
 * that must not create state). 0 or errno. */
int om_sip_stack_reply_stateless(struct om_sip_stack *s, const struct om_sip_msg *req,
                                 const struct om_sip_dest *src, int status, const char *phrase,
                                 const char *extra);

/* ------------------------------------------------------------------ */
/* Server transactions (§17.2)                                          */

struct om_sip_stx_handlers {
	/* The INVITE was CANCELled while pending: 200 went to the CANCEL and
	 * 487 to the INVITE. The TU should release stx and end the call. */
	void (*cancel_h)(struct om_sip_stx *stx, void *arg);
	/* The ACK to our 2xx arrived (its body may carry the answer to a
	 * delayed offer). Delivered once. */
	void (*ack_h)(struct om_sip_stx *stx, const struct om_sip_msg *ack, void *arg);
	/* 64*T1 after our 2xx without an ACK (§13.3.1.4): send BYE. */
	void (*noack_h)(struct om_sip_stx *stx, void *arg);
};

void om_sip_stx_set_handlers(struct om_sip_stx *stx, const struct om_sip_stx_handlers *h,
                             void *arg);
/* The request (a copy owned by the transaction; valid until release). */
const struct om_sip_msg *om_sip_stx_request(const struct om_sip_stx *stx);
const struct om_sip_dest *om_sip_stx_src(const struct om_sip_stx *stx);
/* The To tag our responses carry (drawn once; opts->to_tag of the first
 * reply overrides it), or NULL when the request had one (in-dialog). */
const char *om_sip_stx_to_tag(struct om_sip_stx *stx);
/* Status of the last response sent (0: none yet). */
int om_sip_stx_status(const struct om_sip_stx *stx);

/* Answers the request (om_sip_response_build with opts; the stack's
 * resp_extra is added). A provisional may be followed by more; a final
 * response ends the TU's part except for a 2xx to INVITE, which is
 * retransmitted until its ACK (ack_h) or 64*T1 (noack_h). Every response
 * but 100 carries the transaction's To tag (om_sip_stx_to_tag, or
 * opts->to_tag when the first reply gives one). 0; EALREADY (a final response was sent
 * already); EINVAL; ENOMEM (nothing was sent; the TU may try a 500). */
int om_sip_stx_reply(struct om_sip_stx *stx, int status, const char *phrase,
                     const struct om_sip_resp_opts *opts);
/* Drops the TU's reference (no more callbacks). NULL is fine. */
void om_sip_stx_release(struct om_sip_stx *stx);

/* ------------------------------------------------------------------ */
/* Client transactions (§17.1)                                          */

/* A response for a client transaction, or err: ETIMEDOUT (Timer B/F, a
 * 408 in §8.1.3.1 terms) — resp is then NULL. For INVITE: every 1xx,
 * the final response, and every retransmitted 2xx (the TU re-sends its
 * ACK, RFC 6026). A non-2xx to INVITE has been ACKed by the transaction. */
typedef void (*om_sip_resp_h)(struct om_sip_ctx *ctx, int err, const struct om_sip_msg *resp,
                              void *arg);

/* Sends request `req` (whole message; its top Via branch must be one of
 * om_sip_stack_branch and its sent-by the stack's) to d and keeps the
 * transaction. *out (may be NULL: no TU reference, fire and forget) gets
 * the TU's reference. 0, EINVAL (not parsable / no branch), ENOMEM. */
int om_sip_ctx_send(struct om_sip_stack *s, const struct om_sip_dest *d, const char *req,
                    size_t len, om_sip_resp_h h, void *arg, struct om_sip_ctx **out);
/* CANCEL for a pending INVITE (§9.1): sent at once after a provisional
 * arrived, else as soon as one does. Its own response is not reported;
 * the INVITE gets its 487 through its handler. 0, EALREADY (final
 * response already received), EINVAL (not an INVITE), ENOMEM. */
int om_sip_ctx_cancel(struct om_sip_ctx *ctx);
/* The request sent (valid until release). */
const struct om_sip_msg *om_sip_ctx_request(const struct om_sip_ctx *ctx);
void om_sip_ctx_release(struct om_sip_ctx *ctx);

#endif
