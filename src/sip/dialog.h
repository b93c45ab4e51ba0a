/* dialog.h — SIP dialogs (RFC 3261 §12, §14), UPDATE (RFC 3311), DTMF in
 * INFO bodies, and session timers (RFC 4028). Included by sip/sip.h.
 *
 * A dialog is the state two user agents share after a 2xx to INVITE:
 * Call-ID, local and remote tags, URIs, the remote target (the peer's
 * Contact), the route set (Record-Route: in order for the UAS, reversed for
 * the UAC) and the CSeq spaces. It knows no sockets and no transactions:
 * the call that owns it feeds it the requests it receives and asks it to
 * build the requests it sends.
 *
 * Trust: a dialog belongs to the peer that created it (struct om_sip_dest
 * peer_id). A request naming the dialog from any other peer is answered
 * 481 and changes nothing, so one gateway cannot end or re-target another
 * gateway's call by guessing its tags.
 *
 * Ownership: the owner (a call, a test UAC) creates and frees its dialog;
 * a dialog table only indexes dialogs, it never frees them. */
#ifndef OM_SIP_DIALOG_H
#define OM_SIP_DIALOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/str.h"
#include "sip/htab.h"
#include "sip/txn.h"

struct om_sip_msg;
enum om_sip_method;

/* All fields read-only outside dialog.c. Strings are owned by the dialog. */
struct om_sip_dialog {
	char *call_id;
	char *local_tag;
	char *remote_tag;
	char *local_uri;     /* name-addr without tag ("Name" <sip:...>) */
	char *remote_uri;    /* name-addr without tag */
	char *remote_target; /* the peer's Contact URI (no <>) */
	char *local_contact; /* our Contact URI (no <>) */
	char **route;        /* the route set: URIs (no <>) in the order a request uses them */
	size_t nroute;
	uint32_t local_cseq; /* the last CSeq we used */
	uint32_t remote_cseq;
	bool has_remote_cseq;
	bool secure;             /* a sips: dialog (§12.1.1) */
	bool uas;                /* we answered the dialog-forming INVITE */
	struct om_sip_dest dest; /* the peer and its latest connection */
	/* §14 / RFC 3311: an offer in flight on either side (glare) */
	bool offer_out; /* our re-INVITE/UPDATE is pending */
	bool offer_in;  /* theirs is not finished */
	struct om_hnode node;
	uint64_t node_hash;
};

/* §12.1.1: the UAS side, from the dialog-forming INVITE (received from
 * src) and our To tag and Contact URI. The route set is the request's
 * Record-Route in order; the remote target its Contact. secure when the
 * Request-URI is sips:. 0, EINVAL (no usable Contact, a Record-Route entry
 * that is no SIP URI), ENOMEM. */
int om_sip_dialog_uas_new(const struct om_sip_msg *invite, const struct om_sip_dest *src,
                          const char *local_tag, const char *local_contact,
                          struct om_sip_dialog **out);
/* §12.1.2: the UAC side, from our INVITE and the 2xx (From tag ours, To
 * tag theirs, route set = Record-Route of the 2xx reversed). 0, EINVAL,
 * ENOMEM. */
int om_sip_dialog_uac_new(const struct om_sip_msg *invite, const struct om_sip_msg *resp,
                          const struct om_sip_dest *dest, const char *local_contact,
                          struct om_sip_dialog **out);
void om_sip_dialog_free(struct om_sip_dialog *d);

/* §12.2.2: an in-dialog request (not ACK, not CANCEL) from src. Checks the
 * peer (481: another peer's dialog), the CSeq (500: lower than the last
 * one, out of order) and, for a target refresh (INVITE, UPDATE), its
 * Contact (400 when it has none usable). On 0 the dialog took the CSeq,
 * the new target and src's connection. Returns 0 or the SIP status. */
int om_sip_dialog_rx_request(struct om_sip_dialog *d, const struct om_sip_msg *req,
                             const struct om_sip_dest *src);
/* §12.2.1.2: a 2xx to our re-INVITE/UPDATE refreshes the remote target. */
void om_sip_dialog_rx_response(struct om_sip_dialog *d, const struct om_sip_msg *resp);

struct om_sip_dialog_req {
	const char *branch;        /* om_sip_stack_branch */
	const char *via_transport; /* "TCP", "TLS" */
	const char *via_sent_by;
	uint32_t cseq;            /* ACK: the INVITE's; 0: the next local CSeq */
	const char *extra;        /* trusted header lines, each ending CRLF */
	const char *content_type; /* with a body */
	struct om_str body;
};

/* §12.2.1.1: a request inside the dialog. Request-URI and Route from the
 * route set: empty → the remote target and no Route; a loose first route
 * (;lr) → the remote target, Route = the route set; a strict first route
 * → that URI, Route = the rest and then the remote target. Our Contact is
 * added for target-refresh requests (INVITE, UPDATE). CSeq: the next
 * local number (ACK: o->cseq). 0, EINVAL, ENOMEM. */
int om_sip_dialog_request(struct om_sip_dialog *d, enum om_sip_method m,
                          const struct om_sip_dialog_req *o, struct om_buf *out);

/* §14.1, §14.2 and RFC 3311 §5.2: may an offer (re-INVITE or UPDATE with
 * SDP) from the peer start now? 0 (offer_in is set), 491 (ours is
 * pending: glare), 500 (theirs is still pending; answer with
 * Retry-After). */
int om_sip_dialog_offer_in(struct om_sip_dialog *d);
void om_sip_dialog_offer_in_done(struct om_sip_dialog *d);
/* May we send an offer now? 0 (offer_out set) or EBUSY. */
int om_sip_dialog_offer_out(struct om_sip_dialog *d);
void om_sip_dialog_offer_out_done(struct om_sip_dialog *d);
/* §14.1: after a 491 to our offer, wait this long (ms) before trying
 * again: 2100..4000 when we own the Call-ID (the dialog's UAC), else
 * 0..2000. `rnd` is a random number. */
uint32_t om_sip_dialog_glare_retry_ms(const struct om_sip_dialog *d, uint32_t rnd);

/* ------------------------------------------------------------------ */
/* The dialog table (an index, never an owner)                         */

struct om_sip_dialog_table;
int om_sip_dialog_table_new(struct om_sip_dialog_table **out);
void om_sip_dialog_table_free(struct om_sip_dialog_table *t);
void om_sip_dialog_table_add(struct om_sip_dialog_table *t, struct om_sip_dialog *d);
void om_sip_dialog_table_del(struct om_sip_dialog_table *t, struct om_sip_dialog *d);
size_t om_sip_dialog_table_count(const struct om_sip_dialog_table *t);
/* The dialog a received request names: Call-ID, To tag = local tag, From
 * tag = remote tag. A received response: From tag = local, To tag =
 * remote. NULL when none (a request then gets 481). The peer is NOT
 * checked here: om_sip_dialog_rx_request does it. */
struct om_sip_dialog *om_sip_dialog_table_find(const struct om_sip_dialog_table *t,
                                               const struct om_sip_msg *m);

/* ------------------------------------------------------------------ */
/* Session timers (RFC 4028)                                            */

struct om_sip_session_timer {
	uint32_t interval; /* seconds; 0: no session timer */
	bool refresher_uac;
	bool we_refresh; /* we send the refreshes (else we BYE when none comes) */
};

/* §9: a UAS's decision on a session-refresh-capable request (INVITE,
 * UPDATE): `min_se` is our Min-SE (>= 90), `se` the interval we use when
 * the request asks for none (0: none then). Returns 0 with *st, or 422
 * when the request's Session-Expires is below our Min-SE (answer with
 * "Min-SE: min_se"), or 400 for a malformed Session-Expires/Min-SE. The
 * refresher is the request's `refresher`, else uac when the UAC supports
 * "timer", else uas (we refresh). */
int om_sip_session_timer_uas(const struct om_sip_msg *req, uint32_t min_se, uint32_t se,
                             struct om_sip_session_timer *st);
/* Header lines for our 2xx: Session-Expires with the refresher, and
 * Require: timer when the UAC refreshes (§9). Nothing when interval 0. */
void om_sip_session_timer_hdrs(const struct om_sip_session_timer *st, struct om_buf *out);
/* §10: ms until we refresh (interval/2) or, when the peer refreshes, until
 * we end the session without a refresh (interval - min(32, interval/3)). */
uint64_t om_sip_session_timer_due_ms(const struct om_sip_session_timer *st);

/* ------------------------------------------------------------------ */
/* DTMF in INFO (application/dtmf-relay, application/dtmf)             */

/* The digit of an INFO body: "Signal=5\r\nDuration=160" (dtmf-relay;
 * Signal 10/11 are '*'/'#', as some gateways send) or a bare digit
 * (application/dtmf). Digits 0-9 * # A-D; duration in ms (default 250,
 * clamped to 10..5000). 0, ENOENT (not a DTMF content type), EBADMSG. */
int om_sip_info_dtmf(const struct om_sip_msg *m, char *digit, unsigned *duration_ms);

#endif
