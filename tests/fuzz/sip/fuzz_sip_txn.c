/* fuzz_sip_txn.c — libFuzzer target: a stream of messages (framed as on a
 * TCP connection, from two peers) through the transaction layer, with a
 * TU that makes dialogs, answers, reads session timers and INFO DTMF, and
 * a clock the input moves (RFC 3261 §12, §17; RFC 4028). */
#include "sip/sip.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fz {
	int64_t now;
	struct om_sip_stack *s;
	struct om_sip_dialog_table *t;
	struct om_sip_dialog *d[8];
	size_t nd;
	struct om_sip_stx *held[8];
	size_t nheld;
};

static int f_send(const struct om_sip_dest *d, const char *buf, size_t len, void *arg)
{
	/* Everything we send must parse back. */
	struct om_sip_msg *m = NULL;
	enum om_sip_reason r;
	if (om_sip_msg_parse(buf, len, NULL, &m, &r) != 0)
		abort();
	om_sip_msg_free(m);
	return 0;
}

static int64_t f_now(void *arg)
{
	return ((struct fz *)arg)->now;
}

static void f_request(struct om_sip_stx *stx, const struct om_sip_msg *req, void *arg)
{
	struct fz *f = arg;
	struct om_sip_session_timer st;
	char digit;
	unsigned dur;
	struct om_str sdp;
	if (om_sip_msg_sdp(req, &sdp) == 0 && (sdp.len > req->body.len || sdp.p < req->body.p))
		abort();
	if (req->method == OM_SIP_METHOD_INVITE) {
		struct om_sip_dialog *d = om_sip_dialog_table_find(f->t, req);
		if (d) {
			(void)om_sip_dialog_rx_request(d, req, om_sip_stx_src(stx));
		} else if (f->nd < 8) {
			const char *tag = om_sip_stx_to_tag(stx);
			if (tag && om_sip_dialog_uas_new(req, om_sip_stx_src(stx), tag,
			                                 "sip:um.example", &d) == 0) {
				f->d[f->nd++] = d;
				om_sip_dialog_table_add(f->t, d);
			}
		}
		(void)om_sip_session_timer_uas(req, 90, 1800, &st);
		if (f->nheld < 8 && (req->body.len & 1)) {
			f->held[f->nheld++] = stx; /* answered later, or CANCELled */
			return;
		}
		(void)om_sip_stx_reply(stx, 200, NULL, NULL);
	} else {
		struct om_sip_dialog *d = om_sip_dialog_table_find(f->t, req);
		int st2 = d ? om_sip_dialog_rx_request(d, req, om_sip_stx_src(stx)) : 481;
		if (req->method == OM_SIP_METHOD_INFO)
			(void)om_sip_info_dtmf(req, &digit, &dur);
		if (d && req->method == OM_SIP_METHOD_BYE && st2 == 0) {
			struct om_buf b;
			om_buf_init(&b);
			struct om_sip_dialog_req o = { .branch = "z9hG4bKf",
				                       .via_transport = "TCP",
				                       .via_sent_by = "um.example" };
			(void)om_sip_dialog_request(d, OM_SIP_METHOD_BYE, &o, &b);
			om_buf_free(&b);
		}
		(void)om_sip_stx_reply(stx, st2 ? st2 : 200, NULL, NULL);
	}
	om_sip_stx_release(stx);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz f = { .now = 1000 };
	struct om_sip_stack_handlers h = {
		.send_h = f_send, .now_h = f_now, .request_h = f_request, .arg = &f
	};
	struct om_sip_stack_cfg cfg = { .max_server_txn = 16 };
	if (om_sip_stack_new(&cfg, &h, &f.s) != 0)
		return 0;
	if (om_sip_dialog_table_new(&f.t) != 0) {
		om_sip_stack_free(f.s);
		return 0;
	}
	size_t pos = 0;
	while (pos < size) {
		size_t len = 0;
		enum om_sip_reason r;
		const char *p = (const char *)data + pos;
		enum om_sip_frame_res fr = om_sip_frame(p, size - pos, OM_SIP_MAX_MSG, &len, &r);
		if (fr == OM_SIP_FRAME_SKIP) {
			pos += len;
			continue;
		}
		if (fr != OM_SIP_FRAME_MSG)
			break;
		struct om_sip_msg *m = NULL;
		if (om_sip_msg_parse(p, len, NULL, &m, &r) == 0 &&
		    (!m->is_request || om_sip_msg_validate(m, &r) == 0)) {
			struct om_sip_dest src = { .conn_id = 1 + (len & 1),
				                   .peer_id = 1 + (len & 1),
				                   .reliable = (len & 2) != 0 };
			(void)om_sip_stack_recv(f.s, m, &src);
		}
		om_sip_msg_free(m);
		pos += len;
		f.now += (int64_t)(len * 97);
		om_sip_stack_timers_run(f.s);
		if (f.nheld && (len & 4)) {
			f.nheld--;
			(void)om_sip_stx_reply(f.held[f.nheld], 486, NULL, NULL);
			om_sip_stx_release(f.held[f.nheld]);
		}
	}
	f.now += 100000;
	om_sip_stack_timers_run(f.s);
	for (size_t i = 0; i < f.nheld; i++)
		om_sip_stx_release(f.held[i]);
	for (size_t i = 0; i < f.nd; i++) {
		om_sip_dialog_table_del(f.t, f.d[i]);
		om_sip_dialog_free(f.d[i]);
	}
	om_sip_dialog_table_free(f.t);
	om_sip_stack_free(f.s);
	return 0;
}
