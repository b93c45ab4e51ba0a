/* fuzz_sip_msg.c — libFuzzer target: stream framing, message parsing,
 * validation, every getter and the response printer (RFC 3261 §7, §20). */
#include "sip/sip.h"

#include "core/str.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void walk_params(struct om_str p)
{
	struct om_str n, v;
	while (om_sip_param_next(&p, &n, &v) == 0)
		;
}

static void use_uri(const struct om_sip_uri *u)
{
	char tmp[256];
	struct om_str v;
	(void)om_sip_unescape(u->user, tmp, sizeof(tmp));
	(void)om_sip_escaped_eq(u->user, u->password);
	(void)om_sip_param_find(u->params, "transport", &v);
	walk_params(u->params);
}

static void use_addrs(const struct om_sip_msg *m, enum om_sip_hdr_id id)
{
	struct om_sip_iter it = { 0 };
	struct om_sip_addr a;
	int err, n = 0;
	while ((err = om_sip_msg_addr_next(m, id, &it, &a)) != ENOENT && n++ < 1000) {
		if (err == 0) {
			use_uri(&a.uri);
			walk_params(a.params);
		} else {
			break;
		}
	}
}

static void exercise(const struct om_sip_msg *m)
{
	enum om_sip_reason r;
	struct om_sip_uri u;
	struct om_sip_via v;
	struct om_sip_addr a;
	struct om_sip_iter it = { 0 };
	struct om_str s, t;
	uint32_t n32;
	unsigned mf;
	enum om_sip_method me;

	(void)om_sip_msg_validate(m, &r);
	(void)om_sip_reason_status(r);
	if (m->is_request && om_sip_uri_parse(m->ruri, m->limits.max_uri, &u) == 0)
		use_uri(&u);
	while (om_sip_msg_via_next(m, &it, &v) == 0)
		walk_params(v.params);
	(void)om_sip_msg_via_count(m);
	if (om_sip_msg_via_top(m, &v) == 0)
		(void)om_sip_via_branch_is_3261(&v);
	if (om_sip_msg_from(m, &a) == 0)
		use_uri(&a.uri);
	if (om_sip_msg_to(m, &a) == 0)
		use_uri(&a.uri);
	use_addrs(m, OM_SIP_HDR_CONTACT);
	use_addrs(m, OM_SIP_HDR_ROUTE);
	use_addrs(m, OM_SIP_HDR_RECORD_ROUTE);
	use_addrs(m, OM_SIP_HDR_P_ASSERTED_IDENTITY);
	use_addrs(m, OM_SIP_HDR_DIVERSION);
	use_addrs(m, OM_SIP_HDR_HISTORY_INFO);
	(void)om_sip_msg_call_id(m);
	(void)om_sip_msg_cseq(m, &n32, &s, &me);
	(void)om_sip_msg_max_forwards(m, &mf);
	(void)om_sip_msg_expires(m, &n32);
	(void)om_sip_msg_session_expires(m, &n32, &s);
	(void)om_sip_msg_content_type(m, &s, &t);
	(void)om_sip_msg_has_token(m, OM_SIP_HDR_SUPPORTED, "timer");
	(void)om_sip_msg_has_token(m, OM_SIP_HDR_PRIVACY, "id");
	(void)om_sip_msg_hdr_by_name(m, "X-Unknown");
	for (int id = 0; id < OM_SIP_HDR__COUNT; id++) {
		struct om_sip_iter li = { 0 };
		int k = 0;
		while (om_sip_msg_list_next(m, (enum om_sip_hdr_id)id, &li, &s) == 0 && k++ < 1000)
			;
	}
	static const char *const sup[] = { "timer", "100rel", NULL };
	struct om_buf b;
	om_buf_init(&b);
	(void)om_sip_msg_unsupported(m, sup, true, &b);
	om_buf_free(&b);
	if (m->is_request) {
		static const int codes[] = { 100, 200, 400, 420, 501 };
		for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
			struct om_sip_resp_opts o = { .to_tag = "abc123" };
			if (codes[i] == 200)
				o.body = OM_STR_LIT("v=0\r\n");
			om_buf_init(&b);
			if (om_sip_response_build(m, codes[i], NULL, &o, &b) == 0) {
				/* what we print must parse back */
				struct om_sip_msg *back;
				enum om_sip_reason br;
				if (om_sip_msg_parse(b.p, b.len, NULL, &back, &br) == 0)
					om_sip_msg_free(back);
				else if (br != OM_SIP_R_NOMEM && br != OM_SIP_R_MSG_TOO_LARGE &&
				         br != OM_SIP_R_TOO_MANY_HEADERS)
					abort();
			}
			om_buf_free(&b);
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf = (const char *)data;
	struct om_sip_msg *m = NULL;
	enum om_sip_reason r;
	size_t mlen = 0;

	/* framing, as a stream would see it */
	size_t off = 0;
	for (int k = 0; k < 64 && off < size; k++) {
		enum om_sip_frame_res fr = om_sip_frame(buf + off, size - off, 65536, &mlen, &r);
		if (fr == OM_SIP_FRAME_MSG || fr == OM_SIP_FRAME_SKIP) {
			if (mlen == 0 || mlen > size - off)
				abort();
			if (fr == OM_SIP_FRAME_MSG &&
			    om_sip_msg_parse(buf + off, mlen, NULL, &m, &r) == 0) {
				/* a framed message parses to exactly its length */
				if (m->len != mlen)
					abort();
				om_sip_msg_free(m);
				m = NULL;
			}
			off += mlen;
		} else {
			break;
		}
	}
	/* as a datagram, default and tight limits */
	if (om_sip_msg_parse(buf, size, NULL, &m, &r) == 0) {
		exercise(m);
		om_sip_msg_free(m);
	}
	struct om_sip_limits tight = {
		.max_msg = 2048, .max_headers = 16, .max_line = 256, .max_uri = 64, .max_via = 4
	};
	if (om_sip_msg_parse(buf, size, &tight, &m, &r) == 0) {
		exercise(m);
		om_sip_msg_free(m);
	}
	return 0;
}
