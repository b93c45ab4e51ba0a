/* call_int.h — what the files of the call layer share (call.c the call
 * object, call_admit.c admission, call_net.c where messages go,
 * call_media.c the media engine's control side). Not for other modules. */
#ifndef OM_APP_CALL_INT_H
#define OM_APP_CALL_INT_H

#include "app/call.h"
#include "app/route.h"
#include "sdp/sdp.h"

#include <sys/socket.h>

enum call_state {
	CALL_ANSWERING, /* INVITE admitted, answer not sent yet (answer_delay) */
	CALL_WAIT_ACK,  /* 2xx sent, retransmitted until the ACK */
	CALL_CONFIRMED, /* ACKed: media flows */
	CALL_ENDING,    /* our BYE is out */
	CALL_ENDED,     /* over; freed when the media session has closed */
};

struct call_media; /* call_media.c */
struct call_flow;  /* flow.c */
struct om_delivery;

/* One call: one owner (the calls list), this state diagram (call.c). */
struct om_call {
	struct om_call *prev, *next;
	struct om_calls *calls;
	uint64_t id;
	enum call_state state;
	char *call_id;
	/* fixed at admission */
	int64_t gw_id;
	char gateway[OM_DIR_NAME_MAX + 1];
	char dialplan[OM_DIR_NAME_MAX + 1];
	int64_t dialplan_id;
	enum om_sdp_plan_mode mode;
	bool rtp_symmetric; /* the plan lets a NAT'ed gateway's RTP port move */
	bool tls;
	char local_ip[64];
	uint16_t local_sip_port;
	char contact[320];
	char sent_by[300];
	/* SIP */
	struct om_sip_stx *invite;   /* our reference until ACK, no-ACK or CANCEL */
	struct om_sip_stx *reinvite; /* a re-INVITE of the gateway waiting for its ACK */
	struct om_sip_ctx *out;      /* our BYE or refresh in flight */
	struct om_sip_dialog *dlg;
	struct om_sip_session_timer se;
	struct om_sip_timer tm_answer, tm_se, tm_gone;
	bool peer_allows_update;
	/* media */
	bool delayed;             /* we offered in the 2xx; the answer comes in the ACK */
	struct om_sdp_result sdp; /* agreed (keys: cleansed on free) */
	char *local_sdp;
	uint64_t sess_id, sess_ver;
	struct call_media *media;
	uint16_t rtp_port;
	char remote_media[80];
	/* routing */
	struct om_route route;
	/* the call flow (flow.c) */
	struct call_flow *flow;
	int max_message_s;           /* the dial plan's --max-message */
	bool diag;                   /* the diagnostic extension (openum-test) */
	bool test;                   /* X-Openum-Test: a test call */
	bool test_deliver;           /* ;deliver: a test call's message is delivered */
	bool echo_dtmf;              /* ;echo-dtmf: digits echoed in INFO */
	struct om_sip_ctx *info_out; /* our INFO in flight */
	/* bookkeeping */
	int64_t start_ms, answer_ms, end_ms;
	char end_reason[32];
	unsigned reinvites, dtmf;
	bool counted;        /* holds a call slot */
	bool hangup_pending; /* BYE once the ACK came */
};

struct conn_ref {
	struct om_hnode node;
	uint64_t id;
	struct om_tcp_conn *conn;
};

struct om_calls {
	struct om_calls_env env;
	const struct om_config *cfg; /* = &cfgv */
	struct om_config cfgv;
	struct om_dir_snapshot *snap;
	struct om_sip_stack *stack;
	struct om_sip_dialog_table *dialogs;
	struct om_htab conns; /* conn id -> struct conn_ref */
	uv_timer_t *timer;    /* the stack's one timer */
	struct om_call *list;
	size_t ncalls; /* holding a call slot */
	uint64_t next_id;
	char server_hdr[64];
	/* calls per second: a token bucket */
	double cps_tokens;
	int64_t cps_last_ms;
	/* the media engine (call_media.c) */
	void *media_engine; /* struct media_hub (call_media.c) */
	bool media_failed;
	bool closing;
	bool finished; /* closed: only the engine's end is awaited */
	/* the call flows: deliveries, work on the thread pool, drain */
	struct om_delivery *delivery; /* borrowed; NULL: spools wait for the next start */
	size_t works;                 /* flow jobs on libuv's thread pool */
	bool free_pending;            /* closed while jobs ran: freed by the last */
	bool draining;                /* no new calls; done when none is left */
	uv_timer_t *drain_timer;
	int drain_phase;         /* 0 waiting, 1 calls ended by BYE, 2 done */
	uint64_t drain_deadline; /* uv_now ms */
	void (*drain_done)(void *arg);
	void *drain_arg;
	uv_timer_t *close_timer;
	void (*close_done)(void *arg);
	void *close_arg;
	/* the message being handled (om_calls_recv) */
	const struct om_dir_gateway *cur_gw;
	struct om_tcp_conn *cur_conn;
	int cur_status;
	struct pending *pending; /* bytes for connections being opened */
	/* counters for status */
	uint64_t invites, answered, refused_plan, refused_busy, refused_caps, refused_mode,
	    refused_other, ended_by_gateway, ended_by_us, no_ack, canceled, send_failures;
	/* refusals by cause (om_calls_stats): call_refused() names the cause
	 * of the next refusal, which counts it with its status */
	const char *why_kind, *why_reason;
	struct om_calls_refusal refusals[OM_CALLS_REFUSALS];
	size_t nrefusals;
};

/* calls.c: the cause of the refusal about to be sent (static strings);
 * `legacy` is the status counter it also counts in (may be NULL). */
void call_refused(struct om_calls *cs, uint64_t *legacy, const char *kind, const char *reason);
/* ... and the refusal sent with `status` (counted once, "other" when no
 * cause was named). */
void call_refusal_sent(struct om_calls *cs, int status);

/* call_admit.c */
void call_admit_invite(struct om_calls *cs, struct om_sip_stx *stx, const struct om_sip_msg *m,
                       const struct om_dir_gateway *gw, struct om_tcp_conn *conn);

/* call.c */
struct om_call *call_new(struct om_calls *cs);
void call_answer(struct om_call *c);
void call_in_dialog(struct om_call *c, struct om_sip_stx *stx, const struct om_sip_msg *m);
void call_hangup(struct om_call *c, const char *why);
void call_release(struct om_call *c); /* the media closed: free when ended */
void call_free(struct om_call *c);
void call_json(const struct om_call *c, struct om_buf *out);
const char *call_state_name(enum call_state s);
/* "Contact: <...>\r\nAllow: ...\r\nSupported: timer\r\n" */
void call_common_hdrs(const struct om_call *c, struct om_buf *out);

/* Sends an INFO in the dialog (RFC 6086) with this body (c->info_out). */
int call_send_info(struct om_call *c, const char *ctype, const char *body, om_sip_resp_h h);

/* flow.c: the call flows (greeting, recording, ask for the extension,
 * announcements, the diagnostic extension). */
void flow_start(struct om_call *c);      /* the call is confirmed (ACK) */
void flow_call_ended(struct om_call *c); /* the call has ended */
void flow_free(struct om_call *c);
void flow_media_event(struct om_call *c, const struct om_media_event *ev);
const char *call_flow_state(const struct om_call *c);

/* calls.c: a flow job ended (the drain and a pending free look again). */
void calls_work_done(struct om_calls *cs);

/* call_net.c */
int call_net_send(const struct om_sip_dest *d, const char *buf, size_t len, void *arg);
void call_net_close(struct om_calls *cs);

/* calls.c: a call ended while the server stops (its BYE was answered). */
void calls_closing_check(struct om_calls *cs);
struct om_tcp_conn *call_net_conn(struct om_calls *cs, uint64_t id);

/* call_media.c */
int call_media_engine_start(struct om_calls *cs, char *err, size_t errlen);
/* done(arg) once the engine has stopped (at once when there is none). */
void call_media_engine_stop(struct om_calls *cs, void (*done)(void *arg), void *arg);
/* The calls are going: what the engine still delivers finds none. */
void call_media_engine_detach(struct om_calls *cs);
/* Binds the RTP port for a call (params completed by call_media_apply). */
int call_media_open(struct om_call *c, const char *local_ip, uint16_t *port);
/* Applies what the offer/answer agreed (remote address, codec, keys,
 * direction). */
int call_media_apply(struct om_call *c, const struct om_sdp_result *r);
void call_media_dtmf(struct om_call *c, char digit, unsigned duration_ms);
/* The call's media session, NULL when there is none (or it is closing). */
struct om_media_session *call_media_session(struct om_call *c);
/* Ends the media; call_release follows (at once when there was none). */
void call_media_close(struct om_call *c);
void call_media_status_json(struct om_calls *cs, struct om_buf *out);
/* The media engine's counters; false when it does not run. */
bool call_media_stats(struct om_calls *cs, struct om_media_engine_stats *st);

#endif
