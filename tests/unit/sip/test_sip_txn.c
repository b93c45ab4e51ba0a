/* test_sip_txn.c — SIP transactions without a server (RFC 3261 §17, §9,
 * §8.2.2.2, §13.3.1.4; RFC 6026): a fake clock, a send function that
 * records what would go on the wire, and the TU's callbacks. Every timer
 * is driven by moving the clock, never by waiting. */
#include "ut.h"
#include "sip/sip.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* Harness                                                             */

#define MAX_SENT 256

struct sent {
	char buf[4096];
	size_t len;
	struct om_sip_dest to;
};

struct h {
	int64_t now;
	struct om_sip_stack *s;
	struct sent sent[MAX_SENT];
	size_t nsent;
	int send_rc;
	/* TU */
	struct om_sip_stx *stx[16];
	size_t nstx;
	int auto_reply; /* reply this status at once (0: hold the transaction) */
	bool auto_release;
	int acks, noacks, cancels, stray_acks;
	int resp_count, resp_err, last_status;
	struct om_sip_ctx *ctx;
	bool release_on_final;
	int reply_fail;
};

static struct h H;

static int h_send(const struct om_sip_dest *d, const char *buf, size_t len, void *arg)
{
	struct h *h = arg;
	if (h->send_rc)
		return h->send_rc;
	if (h->nsent < MAX_SENT && len < sizeof(h->sent[0].buf)) {
		memcpy(h->sent[h->nsent].buf, buf, len);
		h->sent[h->nsent].buf[len] = '\0';
		h->sent[h->nsent].len = len;
		h->sent[h->nsent].to = *d;
		h->nsent++;
	}
	return 0;
}

static int64_t h_now(void *arg)
{
	return ((struct h *)arg)->now;
}

static void tu_ack(struct om_sip_stx *stx, const struct om_sip_msg *ack, void *arg)
{
	H.acks++;
}

static void tu_noack(struct om_sip_stx *stx, void *arg)
{
	H.noacks++;
}

static void tu_cancel(struct om_sip_stx *stx, void *arg)
{
	H.cancels++;
	for (size_t i = 0; i < H.nstx; i++)
		if (H.stx[i] == stx)
			H.stx[i] = NULL;
	om_sip_stx_release(stx);
}

static const struct om_sip_stx_handlers tu_h = { tu_cancel, tu_ack, tu_noack };

static void h_request(struct om_sip_stx *stx, const struct om_sip_msg *req, void *arg)
{
	struct h *h = arg;
	om_sip_stx_set_handlers(stx, &tu_h, h);
	if (h->auto_reply) {
		struct om_sip_resp_opts o = { .to_tag = "uastag" };
		if (om_sip_stx_reply(stx, h->auto_reply, NULL, &o) != 0)
			h->reply_fail++;
	}
	if (h->auto_release) {
		om_sip_stx_release(stx);
		return;
	}
	if (h->nstx < 16)
		h->stx[h->nstx++] = stx;
}

static void h_stray_ack(const struct om_sip_msg *ack, const struct om_sip_dest *src, void *arg)
{
	H.stray_acks++;
}

static void setup(uint32_t max_txn)
{
	memset(&H, 0, sizeof(H));
	H.now = 1000000;
	struct om_sip_stack_cfg cfg = { .max_server_txn = max_txn,
		                        .via_sent_by = "um.example.com" };
	struct om_sip_stack_handlers hh = {
		.send_h = h_send,
		.now_h = h_now,
		.request_h = h_request,
		.ack_h = h_stray_ack,
		.arg = &H,
	};
	UT_EQ_INT(0, om_sip_stack_new(&cfg, &hh, &H.s));
}

static void teardown(void)
{
	for (size_t i = 0; i < H.nstx; i++)
		om_sip_stx_release(H.stx[i]);
	om_sip_ctx_release(H.ctx);
	om_sip_stack_free(H.s);
	H.s = NULL;
}

static const struct om_sip_dest GW1 = { .conn_id = 7, .peer_id = 1, .reliable = true };
static const struct om_sip_dest GW1_UDP = { .conn_id = 0, .peer_id = 1, .reliable = false };
static const struct om_sip_dest GW2 = { .conn_id = 9, .peer_id = 2, .reliable = true };

/* Feeds a message as received from d. */
static int feed(const char *text, const struct om_sip_dest *d)
{
	struct om_sip_msg *m = NULL;
	enum om_sip_reason r;
	if (om_sip_msg_parse(text, strlen(text), NULL, &m, &r) != 0)
		UT_FAIL("test message does not parse: %s", om_sip_reason_str(r));
	int rc = om_sip_stack_recv(H.s, m, d);
	om_sip_msg_free(m);
	return rc;
}

static void advance(int64_t ms)
{
	/* In steps, as a real loop would fire timers on time. */
	int64_t end = H.now + ms;
	for (;;) {
		int64_t next = om_sip_stack_next_timer(H.s);
		if (next < 0 || H.now + next > end)
			break;
		H.now += next;
		om_sip_stack_timers_run(H.s);
	}
	H.now = end;
}

static int sent_status(size_t i)
{
	int st = 0;
	if (i >= H.nsent || sscanf(H.sent[i].buf, "SIP/2.0 %d", &st) != 1)
		return -1;
	return st;
}

static bool sent_is(size_t i, const char *prefix)
{
	return i < H.nsent && !strncmp(H.sent[i].buf, prefix, strlen(prefix));
}

static size_t count_status(int st)
{
	size_t n = 0;
	for (size_t i = 0; i < H.nsent; i++)
		n += sent_status(i) == st;
	return n;
}

static struct om_sip_stack_stats stats(void)
{
	struct om_sip_stack_stats st;
	om_sip_stack_stats(H.s, &st);
	return st;
}

static char msgbuf[8][4096];

/* A request. branch NULL: z9hG4bK-<n>. totag NULL: none. */
static const char *req(int slot, const char *method, const char *branch, const char *totag,
                       unsigned cseq, const char *cseq_method, const char *extra)
{
	snprintf(msgbuf[slot], sizeof(msgbuf[slot]),
	         "%s sip:8000@um.example.com SIP/2.0\r\n"
	         "Via: SIP/2.0/TCP gw.example.net:5060;branch=%s\r\n"
	         "Max-Forwards: 70\r\n"
	         "From: <sip:2001@gw.example.net>;tag=gwtag\r\n"
	         "To: <sip:8000@um.example.com>%s%s\r\n"
	         "Call-ID: call-1@gw.example.net\r\n"
	         "CSeq: %u %s\r\n"
	         "Contact: <sip:2001@gw.example.net;transport=tcp>\r\n"
	         "%s"
	         "Content-Length: 0\r\n\r\n",
	         method, branch, totag ? ";tag=" : "", totag ? totag : "", cseq,
	         cseq_method ? cseq_method : method, extra ? extra : "");
	return msgbuf[slot];
}

#define BR1 "z9hG4bK-inv-1"
#define BR2 "z9hG4bK-inv-2"

/* ------------------------------------------------------------------ */
/* Server INVITE                                                       */

UT_TEST(invite_gets_100_then_tu)
{
	setup(0);
	UT_EQ_INT(0, feed(req(0, "INVITE", BR1, NULL, 1, NULL, NULL), &GW1));
	UT_EQ_INT(1, H.nsent);
	UT_EQ_INT(100, sent_status(0));
	UT_TRUE(strstr(H.sent[0].buf, "To: <sip:8000@um.example.com>\r\n") != NULL); /* no tag */
	UT_EQ_INT(7, H.sent[0].to.conn_id);
	UT_EQ_INT(1, H.nstx);
	UT_EQ_INT(1, stats().server_txn);
	teardown();
}

/* §13.3.1.4: the 2xx goes again at T1, 2T1, 4T1, then every T2, over TCP
 * too, until the ACK; the ACK is matched by dialog ids, not by branch. */
UT_TEST(invite_2xx_retransmitted_until_ack_over_tcp)
{
	setup(0);
	H.auto_reply = 200;
	feed(req(0, "INVITE", BR1, NULL, 1, NULL, NULL), &GW1);
	UT_EQ_INT(2, H.nsent);
	UT_EQ_INT(200, sent_status(1));
	UT_TRUE(strstr(H.sent[1].buf, ";tag=uastag") != NULL);
	advance(499);
	UT_EQ_INT(2, H.nsent);
	advance(1); /* T1 */
	UT_EQ_INT(3, H.nsent);
	UT_EQ_INT(200, sent_status(2));
	advance(1000); /* 2 T1 */
	UT_EQ_INT(4, H.nsent);
	advance(2000); /* 4 T1 */
	UT_EQ_INT(5, H.nsent);
	advance(3999);
	UT_EQ_INT(5, H.nsent);
	advance(1); /* T2 */
	UT_EQ_INT(6, H.nsent);
	/* A retransmitted INVITE is absorbed (RFC 6026 Accepted). */
	feed(req(1, "INVITE", BR1, NULL, 1, NULL, NULL), &GW1);
	UT_EQ_INT(6, H.nsent);
	UT_EQ_INT(1, stats().retransmissions_absorbed);
	/* The ACK: new branch, To tag, same CSeq number. */
	feed(req(2, "ACK", "z9hG4bK-ack-1", "uastag", 1, "ACK", NULL), &GW1);
	UT_EQ_INT(1, H.acks);
	UT_EQ_INT(0, H.stray_acks);
	advance(60000);
	UT_EQ_INT(6, H.nsent);
	UT_EQ_INT(0, H.noacks);
	UT_EQ_INT(0, stats().server_txn);
	/* A retransmitted ACK after that is a stray one (the TU ignores it). */
	feed(req(2, "ACK", "z9hG4bK-ack-1", "uastag", 1, "ACK", NULL), &GW1);
	UT_EQ_INT(1, H.acks);
	teardown();
}

/* A gateway that never ACKs costs one timer for 64*T1, then the TU hears
 * it (and sends BYE); nothing stays. */
UT_TEST(invite_2xx_without_ack_tells_tu_once)
{
	setup(0);
	H.auto_reply = 200;
	H.auto_release = false;
	feed(req(0, "INVITE", BR1, NULL, 1, NULL, NULL), &GW1);
	advance(31999);
	UT_EQ_INT(0, H.noacks);
	advance(1);
	UT_EQ_INT(1, H.noacks);
	/* 0.5, 1.5, 3.5, then every 4 s until 31.5: 10 retransmissions. */
	UT_EQ_INT(11, count_status(200));
	UT_EQ_INT(10, stats().twoxx_retransmitted);
	UT_EQ_INT(1, stats().twoxx_no_ack);
	UT_EQ_INT(0, stats().server_txn);
	UT_EQ_INT(-1, om_sip_stack_next_timer(H.s));
	advance(100000);
	UT_EQ_INT(1, H.noacks);
	teardown();
}

/* An ACK for our 2xx from another gateway is no ACK for this call. */
UT_TEST(ack_from_other_peer_does_not_confirm)
{
	setup(0);
	H.auto_reply = 200;
	feed(req(0, "INVITE", BR1, NULL, 1, NULL, NULL), &GW1);
	feed(req(1, "ACK", "z9hG4bK-ack-x", "uastag", 1, "ACK", NULL), &GW2);
	UT_EQ_INT(0, H.acks);
	UT_EQ_INT(1, H.stray_acks);
	advance(500);
	UT_EQ_INT(3, H.nsent); /* still retransmitting */
	/* Wrong CSeq or wrong tag: not ours either. */
	feed(req(1, "ACK", "z9hG4bK-ack-y", "uastag", 2, "ACK", NULL), &GW1);
	feed(req(1, "ACK", "z9hG4bK-ack-z", "other", 1, "ACK", NULL), &GW1);
	UT_EQ_INT(0, H.acks);
	UT_EQ_INT(3, H.stray_acks);
	feed(req(1, "ACK", "z9hG4bK-ack-1", "uastag", 1, "ACK", NULL), &GW1);
	UT_EQ_INT(1, H.acks);
	teardown();
}

UT_TEST(invite_retransmission_resends_provisional_and_final)
{
	setup(0);
	feed(req(0, "INVITE", BR1, NULL, 1, NULL, NULL), &GW1);
	struct om_sip_stx *stx = H.stx[0];
	UT_EQ_INT(0, om_sip_stx_reply(stx, 180, NULL, NULL));
	UT_EQ_INT(2, H.nsent);
	feed(req(1, "INVITE", BR1, NULL, 1, NULL, NULL), &GW1);
	UT_EQ_INT(3, H.nsent);
	UT_EQ_INT(180, sent_status(2));
	UT_EQ_INT(0, om_sip_stx_reply(stx, 486, NULL, NULL));
	UT_EQ_INT(EALREADY, om_sip_stx_reply(stx, 200, NULL, NULL));
	feed(req(1, "INVITE", BR1, NULL, 1, NULL, NULL), &GW1);
	UT_EQ_INT(5, H.nsent);
	UT_EQ_INT(486, sent_status(4));
	/* The 180 and the 486 carry the same To tag. */
	const char *t1 = strstr(H.sent[1].buf, ";tag="), *t2 = strstr(H.sent[3].buf, ";tag=");
	UT_TRUE(t1 && t2 && !strncmp(t1, t2, 20));
	teardown();
}

/* The ACK to a non-2xx belongs to the INVITE transaction (same branch). */
UT_TEST(ack_to_non2xx_absorbed_by_transaction)
{
	setup(0);
	H.auto_reply = 486;
	H.auto_release = true;
	feed(req(0, "INVITE", BR1, NULL, 1, NULL, NULL), &GW1);
	UT_EQ_INT(1, stats().server_txn);
	feed(req(1, "ACK", BR1, "x", 1, "ACK", NULL), &GW1);
	UT_EQ_INT(0, H.stray_acks);
	UT_EQ_INT(1, stats().acks_non2xx);
	UT_EQ_INT(0, stats().server_txn); /* Timer I = 0 over TCP */
	teardown();
}

/* Timer H: no ACK to a non-2xx: the transaction goes after 64*T1. Over
 * UDP, Timer G resends the final response. */
UT_TEST(non2xx_timer_g_and_h)
{
	setup(0);
	H.auto_reply = 486;
	H.auto_release = true;
	feed(req(0, "INVITE", BR1, NULL, 1, NULL, NULL), &GW1_UDP);
	UT_EQ_INT(2, H.nsent);
	advance(500);
	UT_EQ_INT(3, H.nsent);
	advance(1000);
	UT_EQ_INT(4, H.nsent);
	advance(30499);
	UT_EQ_INT(1, stats().server_txn);
	advance(1);
	UT_EQ_INT(0, stats().server_txn);
	size_t n = H.nsent;
	advance(100000);
	UT_EQ_INT(n, H.nsent);
	teardown();
}

UT_TEST(non2xx_over_tcp_not_resent)
{
	setup(0);
	H.auto_reply = 486;
	H.auto_release = true;
	feed(req(0, "INVITE", BR1, NULL, 1, NULL, NULL), &GW1);
	advance(31999);
	UT_EQ_INT(2, H.nsent);
	UT_EQ_INT(1, stats().server_txn);
	advance(1);
	UT_EQ_INT(0, stats().server_txn);
	teardown();
}

/* ------------------------------------------------------------------ */
/* CANCEL (§9.2)                                                       */

UT_TEST(cancel_pending_invite_200_and_487)
{
	setup(0);
	feed(req(0, "INVITE", BR1, NULL, 1, NULL, NULL), &GW1);
	UT_EQ_INT(1, H.nstx);
	feed(req(1, "CANCEL", BR1, NULL, 1, NULL, NULL), &GW1);
	UT_EQ_INT(1, H.cancels);
	UT_EQ_INT(3, H.nsent);
	UT_EQ_INT(200, sent_status(1));
	UT_TRUE(strstr(H.sent[1].buf, "CSeq: 1 CANCEL") != NULL);
	UT_EQ_INT(487, sent_status(2));
	UT_TRUE(strstr(H.sent[2].buf, "CSeq: 1 INVITE") != NULL);
	UT_TRUE(strstr(H.sent[2].buf, "To: <sip:8000@um.example.com>;tag=") != NULL);
	feed(req(2, "ACK", BR1, "t", 1, "ACK", NULL), &GW1);
	UT_EQ_INT(0, stats().server_txn);
	UT_EQ_INT(0, H.stray_acks);
	teardown();
}

/* A CANCEL from another gateway, even with the right branch, cancels
 * nothing: 481, and the INVITE goes on. */
UT_TEST(cancel_from_other_peer_481)
{
	setup(0);
	feed(req(0, "INVITE", BR1, NULL, 1, NULL, NULL), &GW1);
	feed(req(1, "CANCEL", BR1, NULL, 1, NULL, NULL), &GW2);
	UT_EQ_INT(0, H.cancels);
	UT_EQ_INT(481, sent_status(1));
	UT_EQ_INT(9, H.sent[1].to.conn_id);
	UT_EQ_INT(0, om_sip_stx_reply(H.stx[0], 200, NULL, NULL));
	UT_EQ_INT(200, sent_status(2));
	teardown();
}

UT_TEST(cancel_after_final_only_200)
{
	setup(0);
	H.auto_reply = 200;
	feed(req(0, "INVITE", BR1, NULL, 1, NULL, NULL), &GW1);
	feed(req(1, "CANCEL", BR1, NULL, 1, NULL, NULL), &GW1);
	UT_EQ_INT(0, H.cancels);
	UT_EQ_INT(200, sent_status(2));
	UT_EQ_INT(0, (int)count_status(487));
	teardown();
}

UT_TEST(cancel_unknown_481)
{
	setup(0);
	feed(req(0, "CANCEL", BR2, NULL, 1, NULL, NULL), &GW1);
	UT_EQ_INT(481, sent_status(0));
	UT_EQ_INT(1, stats().cancels_unmatched);
	UT_EQ_INT(0, stats().server_txn);
	teardown();
}

/* ------------------------------------------------------------------ */
/* UAS core rules                                                      */

/* §8.2.2.2: the same request by another path (other branch, no To tag). */
UT_TEST(merged_request_482)
{
	setup(0);
	feed(req(0, "INVITE", BR1, NULL, 1, NULL, NULL), &GW1);
	feed(req(1, "INVITE", BR2, NULL, 1, NULL, NULL), &GW1);
	UT_EQ_INT(1, H.nstx);
	UT_EQ_INT(482, sent_status(1));
	UT_EQ_INT(1, stats().merged_482);
	/* Another CSeq is a new request, not a merge. */
	feed(req(2, "INVITE", "z9hG4bK-inv-3", NULL, 2, NULL, NULL), &GW1);
	UT_EQ_INT(2, H.nstx);
	teardown();
}

UT_TEST(max_forwards_zero_483_for_invite_only)
{
	setup(0);
	char m[4096];
	snprintf(m, sizeof(m), "%s", req(0, "INVITE", BR1, NULL, 1, NULL, NULL));
	char *mf = strstr(m, "Max-Forwards: 70");
	memcpy(mf, "Max-Forwards: 00", 16);
	feed(m, &GW1);
	UT_EQ_INT(483, sent_status(0));
	UT_EQ_INT(0, H.nstx);
	snprintf(m, sizeof(m), "%s", req(0, "OPTIONS", BR2, NULL, 1, NULL, NULL));
	mf = strstr(m, "Max-Forwards: 70");
	memcpy(mf, "Max-Forwards: 00", 16);
	feed(m, &GW1);
	UT_EQ_INT(1, H.nstx); /* OPTIONS is answered by the TU (§11) */
	teardown();
}

/* Past max_server_txn: 503 + Retry-After, nothing kept. */
UT_TEST(transaction_cap_503_stateless)
{
	setup(3);
	char br[32];
	for (int i = 0; i < 10; i++) {
		snprintf(br, sizeof(br), "z9hG4bK-many-%d", i);
		feed(req(0, "INVITE", br, NULL, (unsigned)i + 1, NULL, NULL), &GW1);
	}
	UT_EQ_INT(3, H.nstx);
	UT_EQ_INT(3, stats().server_txn);
	UT_EQ_INT(7, stats().stateless_503);
	UT_EQ_INT(7, (int)count_status(503));
	for (size_t i = 0; i < H.nsent; i++)
		if (sent_status(i) == 503)
			UT_TRUE(strstr(H.sent[i].buf, "Retry-After: ") != NULL);
	teardown();
}

/* Non-INVITE: absorbed while the TU thinks, answered again after. */
UT_TEST(non_invite_retransmissions)
{
	setup(0);
	feed(req(0, "OPTIONS", BR1, NULL, 5, NULL, NULL), &GW1_UDP);
	UT_EQ_INT(0, H.nsent); /* no 100 for non-INVITE */
	feed(req(0, "OPTIONS", BR1, NULL, 5, NULL, NULL), &GW1_UDP);
	UT_EQ_INT(0, H.nsent);
	UT_EQ_INT(0, om_sip_stx_reply(H.stx[0], 200, NULL, NULL));
	feed(req(0, "OPTIONS", BR1, NULL, 5, NULL, NULL), &GW1_UDP);
	UT_EQ_INT(2, H.nsent);
	UT_EQ_INT(200, sent_status(1));
	om_sip_stx_release(H.stx[0]);
	H.stx[0] = NULL;
	advance(31999);
	UT_EQ_INT(1, stats().server_txn); /* Timer J */
	advance(1);
	UT_EQ_INT(0, stats().server_txn);
	teardown();
}

UT_TEST(non_invite_over_tcp_gone_after_final)
{
	setup(0);
	H.auto_reply = 200;
	H.auto_release = true;
	feed(req(0, "BYE", BR1, "uastag", 2, NULL, NULL), &GW1);
	UT_EQ_INT(200, sent_status(0));
	UT_EQ_INT(0, stats().server_txn);
	UT_EQ_INT(-1, om_sip_stack_next_timer(H.s));
	teardown();
}

/* The same branch from two gateways is two transactions. */
UT_TEST(same_branch_other_peer_is_new_transaction)
{
	setup(0);
	feed(req(0, "OPTIONS", BR1, NULL, 5, NULL, NULL), &GW1);
	feed(req(0, "OPTIONS", BR1, NULL, 5, NULL, NULL), &GW2);
	UT_EQ_INT(2, H.nstx);
	teardown();
}

/* RFC 2543 peers (no magic cookie): matched by Call-ID, From tag, CSeq,
 * top Via and Request-URI; the ACK to a non-2xx still matches. */
UT_TEST(rfc2543_matching)
{
	setup(0);
	H.auto_reply = 486;
	H.auto_release = true;
	feed(req(0, "INVITE", "old1", NULL, 1, NULL, NULL), &GW1);
	feed(req(0, "INVITE", "old1", NULL, 1, NULL, NULL), &GW1);
	UT_EQ_INT(486, sent_status(2)); /* the retransmission gets the 486 again */
	feed(req(1, "ACK", "old1", "x", 1, "ACK", NULL), &GW1);
	UT_EQ_INT(1, stats().acks_non2xx);
	UT_EQ_INT(0, stats().server_txn);
	teardown();
}

UT_TEST(release_before_final_keeps_transaction_until_answered)
{
	/* The TU may not drop a pending INVITE without answering: the stack
	 * still owns it (it is freed at stack_free, no leak). */
	setup(0);
	feed(req(0, "INVITE", BR1, NULL, 1, NULL, NULL), &GW1);
	om_sip_stx_release(H.stx[0]);
	H.stx[0] = NULL;
	UT_EQ_INT(1, stats().server_txn);
	teardown();
}

/* ------------------------------------------------------------------ */
/* Client transactions                                                 */

static void on_resp(struct om_sip_ctx *ctx, int err, const struct om_sip_msg *resp, void *arg)
{
	H.resp_count++;
	H.resp_err = err;
	H.last_status = resp ? resp->status : 0;
	if (H.release_on_final && (!resp || resp->status >= 200)) {
		om_sip_ctx_release(ctx);
		H.ctx = NULL;
	}
}

static const char *our_req(int slot, const char *method, const char *branch, unsigned cseq)
{
	snprintf(msgbuf[slot], sizeof(msgbuf[slot]),
	         "%s sip:2001@gw.example.net;transport=tcp SIP/2.0\r\n"
	         "Via: SIP/2.0/TCP um.example.com;branch=%s\r\n"
	         "Max-Forwards: 70\r\n"
	         "From: <sip:8000@um.example.com>;tag=uastag\r\n"
	         "To: <sip:2001@gw.example.net>;tag=gwtag\r\n"
	         "Call-ID: call-1@gw.example.net\r\n"
	         "CSeq: %u %s\r\n"
	         "Route: <sip:proxy.example.net;lr>\r\n"
	         "Contact: <sip:um.example.com;transport=tcp>\r\n"
	         "Content-Length: 0\r\n\r\n",
	         method, branch, cseq, method);
	return msgbuf[slot];
}

static const char *resp(int slot, int status, const char *branch, unsigned cseq, const char *method)
{
	snprintf(msgbuf[slot], sizeof(msgbuf[slot]),
	         "SIP/2.0 %d X\r\n"
	         "Via: SIP/2.0/TCP um.example.com;branch=%s\r\n"
	         "From: <sip:8000@um.example.com>;tag=uastag\r\n"
	         "To: <sip:2001@gw.example.net>;tag=gwtag2\r\n"
	         "Call-ID: call-1@gw.example.net\r\n"
	         "CSeq: %u %s\r\n"
	         "Content-Length: 0\r\n\r\n",
	         status, branch, cseq, method);
	return msgbuf[slot];
}

static void send_req(const char *text, const struct om_sip_dest *d, bool keep)
{
	UT_EQ_INT(0,
	          om_sip_ctx_send(H.s, d, text, strlen(text), on_resp, NULL, keep ? &H.ctx : NULL));
}

UT_TEST(client_bye_200)
{
	setup(0);
	H.release_on_final = true;
	send_req(our_req(0, "BYE", "z9hG4bKc1", 3), &GW1, true);
	UT_EQ_INT(1, H.nsent);
	UT_TRUE(sent_is(0, "BYE "));
	UT_EQ_INT(1, stats().client_txn);
	feed(resp(1, 200, "z9hG4bKc1", 3, "BYE"), &GW1);
	UT_EQ_INT(1, H.resp_count);
	UT_EQ_INT(200, H.last_status);
	UT_EQ_INT(0, stats().client_txn);
	teardown();
}

/* Timer F: no answer in 64*T1 → ETIMEDOUT once. Over UDP Timer E resends
 * at T1, 2T1, 4T1 then T2. */
UT_TEST(client_non_invite_timeout_and_timer_e)
{
	setup(0);
	send_req(our_req(0, "BYE", "z9hG4bKc2", 3), &GW1_UDP, true);
	advance(500);
	UT_EQ_INT(2, H.nsent);
	advance(1000);
	UT_EQ_INT(3, H.nsent);
	advance(2000);
	UT_EQ_INT(4, H.nsent);
	advance(4000);
	UT_EQ_INT(5, H.nsent);
	advance(31999 - 7500);
	UT_EQ_INT(0, H.resp_count);
	advance(1);
	UT_EQ_INT(1, H.resp_count);
	UT_EQ_INT(ETIMEDOUT, H.resp_err);
	UT_EQ_INT(1, stats().client_timeouts);
	advance(100000);
	UT_EQ_INT(1, H.resp_count);
	teardown();
}

UT_TEST(client_response_from_other_peer_is_stray)
{
	setup(0);
	send_req(our_req(0, "BYE", "z9hG4bKc3", 3), &GW1, true);
	feed(resp(1, 200, "z9hG4bKc3", 3, "BYE"), &GW2);
	UT_EQ_INT(0, H.resp_count);
	UT_EQ_INT(1, stats().responses_stray);
	feed(resp(1, 200, "z9hG4bKc3", 3, "OPTIONS"), &GW1); /* other method */
	UT_EQ_INT(0, H.resp_count);
	feed(resp(1, 200, "z9hG4bKc3", 3, "BYE"), &GW1);
	UT_EQ_INT(1, H.resp_count);
	teardown();
}

/* A non-2xx to our INVITE is ACKed by the transaction (§17.1.1.3): same
 * branch, To of the response, Route of the INVITE. */
UT_TEST(client_invite_non2xx_acked)
{
	setup(0);
	send_req(our_req(0, "INVITE", "z9hG4bKc4", 4), &GW1, true);
	feed(resp(1, 180, "z9hG4bKc4", 4, "INVITE"), &GW1);
	UT_EQ_INT(1, H.resp_count);
	UT_EQ_INT(180, H.last_status);
	feed(resp(1, 488, "z9hG4bKc4", 4, "INVITE"), &GW1);
	UT_EQ_INT(2, H.resp_count);
	UT_EQ_INT(488, H.last_status);
	UT_EQ_INT(2, H.nsent);
	UT_TRUE(sent_is(1, "ACK sip:2001@gw.example.net;transport=tcp SIP/2.0\r\n"));
	UT_TRUE(strstr(H.sent[1].buf, "branch=z9hG4bKc4") != NULL);
	UT_TRUE(strstr(H.sent[1].buf, "To: <sip:2001@gw.example.net>;tag=gwtag2") != NULL);
	UT_TRUE(strstr(H.sent[1].buf, "CSeq: 4 ACK") != NULL);
	UT_TRUE(strstr(H.sent[1].buf, "Route: <sip:proxy.example.net;lr>") != NULL);
	teardown();
}

/* A 2xx and its retransmissions reach the TU (RFC 6026: it re-ACKs). */
UT_TEST(client_invite_2xx_retransmissions_to_tu)
{
	setup(0);
	send_req(our_req(0, "INVITE", "z9hG4bKc5", 4), &GW1, true);
	feed(resp(1, 200, "z9hG4bKc5", 4, "INVITE"), &GW1);
	feed(resp(1, 200, "z9hG4bKc5", 4, "INVITE"), &GW1);
	UT_EQ_INT(2, H.resp_count);
	UT_EQ_INT(1, H.nsent); /* no ACK from the transaction for a 2xx */
	advance(32000);        /* Timer M */
	UT_EQ_INT(0, stats().client_txn);
	teardown();
}

/* CANCEL waits for a provisional (§9.1), then goes with the INVITE's
 * branch and Route; the 487 reaches the TU and is ACKed. */
UT_TEST(client_cancel_after_provisional)
{
	setup(0);
	send_req(our_req(0, "INVITE", "z9hG4bKc6", 4), &GW1, true);
	UT_EQ_INT(0, om_sip_ctx_cancel(H.ctx));
	UT_EQ_INT(1, H.nsent);
	feed(resp(1, 100, "z9hG4bKc6", 4, "INVITE"), &GW1);
	UT_EQ_INT(2, H.nsent);
	UT_TRUE(sent_is(1, "CANCEL sip:2001@gw.example.net;transport=tcp SIP/2.0"));
	UT_TRUE(strstr(H.sent[1].buf, "branch=z9hG4bKc6") != NULL);
	UT_TRUE(strstr(H.sent[1].buf, "CSeq: 4 CANCEL") != NULL);
	UT_TRUE(strstr(H.sent[1].buf, "To: <sip:2001@gw.example.net>;tag=gwtag\r\n") != NULL);
	feed(resp(2, 200, "z9hG4bKc6", 4, "CANCEL"), &GW1);
	UT_EQ_INT(1, H.resp_count); /* the 100 only: the CANCEL's 200 is not reported */
	feed(resp(2, 487, "z9hG4bKc6", 4, "INVITE"), &GW1);
	UT_EQ_INT(487, H.last_status);
	UT_TRUE(sent_is(2, "ACK "));
	UT_EQ_INT(EALREADY, om_sip_ctx_cancel(H.ctx));
	teardown();
}

UT_TEST(client_invite_timer_b_and_a)
{
	setup(0);
	send_req(our_req(0, "INVITE", "z9hG4bKc7", 4), &GW1_UDP, true);
	advance(500);
	advance(1000);
	advance(2000);
	advance(4000);
	advance(8000);
	UT_EQ_INT(6, H.nsent); /* Timer A doubles without the T2 cap */
	advance(32000 - 15500 - 1);
	UT_EQ_INT(0, H.resp_count);
	advance(1);
	UT_EQ_INT(ETIMEDOUT, H.resp_err);
	teardown();
}

UT_TEST(client_send_refuses_bad_requests)
{
	setup(0);
	const char *nobranch =
	    "BYE sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP h\r\nFrom: <sip:a@b>;tag=1\r\n"
	    "To: <sip:c@d>\r\nCall-ID: x\r\nCSeq: 1 BYE\r\n\r\n";
	struct om_sip_ctx *c = NULL;
	UT_EQ_INT(EINVAL,
	          om_sip_ctx_send(H.s, &GW1, nobranch, strlen(nobranch), on_resp, NULL, &c));
	UT_EQ_INT(EINVAL, om_sip_ctx_send(H.s, &GW1, "garbage", 7, on_resp, NULL, &c));
	UT_EQ_INT(0, H.nsent);
	UT_EQ_INT(0, stats().client_txn);
	teardown();
}

/* Released inside the callback: no use after free (ASan), no more calls. */
UT_TEST(client_release_in_callback)
{
	setup(0);
	H.release_on_final = true;
	send_req(our_req(0, "INVITE", "z9hG4bKc8", 4), &GW1, true);
	feed(resp(1, 200, "z9hG4bKc8", 4, "INVITE"), &GW1);
	UT_TRUE(H.ctx == NULL);
	feed(resp(1, 200, "z9hG4bKc8", 4, "INVITE"), &GW1);
	UT_EQ_INT(1, H.resp_count);
	teardown();
}

/* ------------------------------------------------------------------ */
/* Timers, ids                                                         */

static int fired[8];
static void on_t(struct om_sip_timer *t, void *arg)
{
	fired[(intptr_t)arg]++;
}

UT_TEST(timer_heap_order_and_stop)
{
	setup(0);
	struct om_sip_timer t[5];
	memset(t, 0, sizeof(t));
	memset(fired, 0, sizeof(fired));
	uint64_t ms[5] = { 50, 10, 30, 20, 40 };
	for (intptr_t i = 0; i < 5; i++)
		UT_EQ_INT(0, om_sip_timer_start(H.s, &t[i], ms[i], on_t, (void *)i));
	UT_EQ_INT(10, om_sip_stack_next_timer(H.s));
	om_sip_timer_stop(H.s, &t[2]);
	UT_TRUE(!om_sip_timer_armed(&t[2]));
	advance(25);
	UT_EQ_INT(1, fired[1]);
	UT_EQ_INT(1, fired[3]);
	UT_EQ_INT(0, fired[0]);
	UT_EQ_INT(0, om_sip_timer_start(H.s, &t[0], 5, on_t, (void *)0)); /* re-arm sooner */
	advance(5);
	UT_EQ_INT(1, fired[0]);
	advance(100);
	UT_EQ_INT(0, fired[2]);
	UT_EQ_INT(1, fired[4]);
	UT_EQ_INT(1, fired[0]);
	UT_EQ_INT(-1, om_sip_stack_next_timer(H.s));
	teardown();
}

UT_TEST(branches_and_tags_unique)
{
	setup(0);
	char a[32], b[32];
	om_sip_stack_branch(H.s, a, sizeof(a));
	om_sip_stack_branch(H.s, b, sizeof(b));
	UT_TRUE(!strncmp(a, "z9hG4bK", 7));
	UT_EQ_INT(23, strlen(a));
	UT_TRUE(strcmp(a, b) != 0);
	om_sip_stack_tag(H.s, a, sizeof(a));
	om_sip_stack_tag(H.s, b, sizeof(b));
	UT_EQ_INT(16, strlen(a));
	UT_TRUE(strcmp(a, b) != 0);
	teardown();
}

/* ------------------------------------------------------------------ */
/* Out of memory: a whole call's worth of traffic with the Nth allocation
 * failing, for every N. Each run either reports ENOMEM somewhere or ends
 * with every expected message sent; never a crash or a leak. */

static int oom_call(void *arg)
{
	(void)arg;
	memset(&H, 0, sizeof(H));
	H.now = 1000;
	int rc = 0;
	struct om_sip_stack_handlers hh = {
		.send_h = h_send,
		.now_h = h_now,
		.request_h = h_request,
		.ack_h = h_stray_ack,
		.arg = &H,
	};
	if ((rc = om_sip_stack_new(NULL, &hh, &H.s)))
		return rc;
	H.auto_reply = 200;
	struct om_sip_msg *m = NULL;
	enum om_sip_reason r;
	const char *inv = req(0, "INVITE", BR1, NULL, 1, NULL, NULL);
	if ((rc = om_sip_msg_parse(inv, strlen(inv), NULL, &m, &r)))
		goto out;
	rc = om_sip_stack_recv(H.s, m, &GW1);
	om_sip_msg_free(m);
	m = NULL;
	if (rc)
		goto out;
	const char *ack = req(1, "ACK", "z9hG4bK-a", "uastag", 1, "ACK", NULL);
	if ((rc = om_sip_msg_parse(ack, strlen(ack), NULL, &m, &r)))
		goto out;
	rc = om_sip_stack_recv(H.s, m, &GW1);
	om_sip_msg_free(m);
	m = NULL;
	if (rc)
		goto out;
	const char *bye = our_req(2, "BYE", "z9hG4bKoom", 1);
	if ((rc = om_sip_ctx_send(H.s, &GW1, bye, strlen(bye), NULL, NULL, NULL)))
		goto out;
	const char *ok = resp(3, 200, "z9hG4bKoom", 1, "BYE");
	if ((rc = om_sip_msg_parse(ok, strlen(ok), NULL, &m, &r)))
		goto out;
	rc = om_sip_stack_recv(H.s, m, &GW1);
	om_sip_msg_free(m);
	if (rc)
		goto out;
	/* Everything that should have happened did, or the TU was told. */
	if (H.reply_fail)
		rc = ENOMEM;
	else if (H.acks != 1 || count_status(200) < 1 || !sent_is(H.nsent - 1, "BYE"))
		rc = EPROTO;
out:
	for (size_t i = 0; i < H.nstx; i++)
		om_sip_stx_release(H.stx[i]);
	om_sip_stack_free(H.s);
	H.s = NULL;
	return rc;
}

UT_TEST(oom_sweep_call)
{
	UT_EQ_INT(0, oom_call(NULL));
	unsigned long n;
	for (n = 1; n < 100000; n++) {
		om_alloc_fail_at(n, 0);
		int rc = oom_call(NULL);
		int hit = om_alloc_fault_hit();
		om_alloc_fail_at(0, 0);
		if (!hit)
			break;
		/* A failure is reported as ENOMEM (or the parse of our own
		 * input failed), never as a silently wrong outcome. */
		if (rc != 0 && rc != ENOMEM) {
			for (size_t i = 0; i < H.nsent; i++)
				fprintf(stderr, "sent %zu: %.40s\n", i, H.sent[i].buf);
			fprintf(stderr, "acks %d\n", H.acks);
			UT_FAIL("allocation %lu: rc %d", n, rc);
		}
	}
	UT_TRUE(n > 10);
}

UT_MAIN(UT_CASE(invite_gets_100_then_tu), UT_CASE(invite_2xx_retransmitted_until_ack_over_tcp),
        UT_CASE(invite_2xx_without_ack_tells_tu_once),
        UT_CASE(ack_from_other_peer_does_not_confirm),
        UT_CASE(invite_retransmission_resends_provisional_and_final),
        UT_CASE(ack_to_non2xx_absorbed_by_transaction), UT_CASE(non2xx_timer_g_and_h),
        UT_CASE(non2xx_over_tcp_not_resent), UT_CASE(cancel_pending_invite_200_and_487),
        UT_CASE(cancel_from_other_peer_481), UT_CASE(cancel_after_final_only_200),
        UT_CASE(cancel_unknown_481), UT_CASE(merged_request_482),
        UT_CASE(max_forwards_zero_483_for_invite_only), UT_CASE(transaction_cap_503_stateless),
        UT_CASE(non_invite_retransmissions), UT_CASE(non_invite_over_tcp_gone_after_final),
        UT_CASE(same_branch_other_peer_is_new_transaction), UT_CASE(rfc2543_matching),
        UT_CASE(release_before_final_keeps_transaction_until_answered), UT_CASE(client_bye_200),
        UT_CASE(client_non_invite_timeout_and_timer_e),
        UT_CASE(client_response_from_other_peer_is_stray), UT_CASE(client_invite_non2xx_acked),
        UT_CASE(client_invite_2xx_retransmissions_to_tu), UT_CASE(client_cancel_after_provisional),
        UT_CASE(client_invite_timer_b_and_a), UT_CASE(client_send_refuses_bad_requests),
        UT_CASE(client_release_in_callback), UT_CASE(timer_heap_order_and_stop),
        UT_CASE(branches_and_tags_unique), UT_CASE(oom_sweep_call))
