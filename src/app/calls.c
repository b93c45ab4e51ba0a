/* calls.c — the calls of `openum serve` (call.h): the transaction stack
 * and its one libuv timer, the dialog table, the dispatch of what the SIP
 * service hands over, and `openum calls` / status.
 *
 * Dispatch (RFC 3261 §8.2, §12.2.2): an INVITE without To tag is a new
 * call (call_admit.c); a request with a To tag belongs to a dialog of the
 * same gateway (call.c) or gets 481; BYE, INFO, UPDATE, PRACK without To
 * tag get 481; CANCEL and ACK are matched by the transaction layer. */
#include "app/call_int.h"
#include "core/alloc.h"
#include "core/clock.h"
#include "core/log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static int64_t mono(void *arg)
{
	return om_mono_ms();
}

static void on_uv_timer(uv_timer_t *t)
{
	struct om_calls *cs = t->data;
	om_sip_stack_timers_run(cs->stack);
	/* Armed again from the stack's own view: libuv's clock may fire a
	 * millisecond before ours says the timer is due. */
	int64_t next = om_sip_stack_next_timer(cs->stack);
	if (next >= 0)
		uv_timer_start(cs->timer, on_uv_timer, next ? (uint64_t)next : 1, 0);
}

static void timer_due(int64_t due, void *arg)
{
	struct om_calls *cs = arg;
	if (!cs->timer)
		return;
	if (due < 0) {
		uv_timer_stop(cs->timer);
		return;
	}
	int64_t d = due - om_mono_ms();
	uv_timer_start(cs->timer, on_uv_timer, d < 0 ? 0 : (uint64_t)d, 0);
}

static void note(struct om_calls *cs, struct om_sip_stx *stx)
{
	int st = om_sip_stx_status(stx);
	if (st >= 100 && (!cs->cur_status || st >= 200))
		cs->cur_status = st;
}

static void answer(struct om_calls *cs, struct om_sip_stx *stx, int status, const char *extra)
{
	struct om_sip_resp_opts o = { .extra = extra };
	om_sip_stx_reply(stx, status, NULL, &o);
	note(cs, stx);
	om_sip_stx_release(stx);
}

static struct om_call *call_of(struct om_calls *cs, const struct om_sip_dialog *d)
{
	for (struct om_call *c = cs->list; c; c = c->next)
		if (c->dlg == d)
			return c;
	return NULL;
}

static void on_request(struct om_sip_stx *stx, const struct om_sip_msg *m, void *arg)
{
	struct om_calls *cs = arg;
	struct om_sip_addr to;
	bool in_dialog = om_sip_msg_to(m, &to) == 0 && to.has_tag;
	if (!in_dialog) {
		if (m->method == OM_SIP_METHOD_INVITE && cs->cur_gw && cs->cur_conn) {
			call_admit_invite(cs, stx, m, cs->cur_gw, cs->cur_conn);
			cs->cur_status = cs->cur_status ? cs->cur_status : 200;
			return;
		}
		answer(cs, stx, m->method == OM_SIP_METHOD_INVITE ? 500 : 481, NULL);
		return;
	}
	struct om_sip_dialog *d = om_sip_dialog_table_find(cs->dialogs, m);
	struct om_call *c = d ? call_of(cs, d) : NULL;
	if (!c || c->state == CALL_ENDED) {
		answer(cs, stx, 481, NULL);
		return;
	}
	call_in_dialog(c, stx, m);
	cs->cur_status = 200;
}

int om_calls_recv(struct om_calls *cs, struct om_tcp_conn *conn, const struct om_dir_gateway *gw,
                  const struct om_sip_msg *m)
{
	if (cs->finished)
		return 0;
	struct om_sip_dest src = { .conn_id = om_tcp_conn_id(conn),
		                   .peer_id = gw->id,
		                   .reliable = true };
	cs->cur_gw = gw;
	cs->cur_conn = conn;
	cs->cur_status = 0;
	om_sip_stack_recv(cs->stack, m, &src);
	cs->cur_gw = NULL;
	cs->cur_conn = NULL;
	return cs->cur_status;
}

int om_calls_new(const struct om_calls_env *env, const struct om_config *cfg, struct om_calls **out,
                 char *err, size_t errlen)
{
	struct om_calls *cs = om_calloc(1, sizeof(*cs));
	if (!cs) {
		snprintf(err, errlen, "out of memory");
		return ENOMEM;
	}
	cs->env = *env;
	cs->cfgv = *cfg;
	cs->cfgv.path = NULL; /* a copy: the reload frees the original */
	cs->cfg = &cs->cfgv;
	cs->cps_tokens = cfg->max_calls_per_second;
	cs->cps_last_ms = om_mono_ms();
	snprintf(cs->server_hdr, sizeof(cs->server_hdr), "Server: openum/%s\r\n", OM_VERSION);
	size_t max_txn = (size_t)cfg->max_calls * 4 + 1024;
	struct om_sip_stack_cfg sc = { .t1_ms = cfg->sip_t1_ms,
		                       .max_server_txn = max_txn,
		                       .resp_extra = cs->server_hdr };
	struct om_sip_stack_handlers h = { .send_h = call_net_send,
		                           .now_h = mono,
		                           .timer_h = timer_due,
		                           .request_h = on_request,
		                           .arg = cs };
	int rc;
	cs->timer = om_calloc(1, sizeof(*cs->timer));
	if (!cs->timer || (rc = om_sip_stack_new(&sc, &h, &cs->stack)) != 0 ||
	    (rc = om_sip_dialog_table_new(&cs->dialogs)) != 0 ||
	    (rc = om_htab_init(&cs->conns, 256)) != 0) {
		snprintf(err, errlen, "out of memory");
		om_sip_stack_free(cs->stack);
		om_sip_dialog_table_free(cs->dialogs);
		om_free(cs->timer);
		om_free(cs);
		return ENOMEM;
	}
	uv_timer_init(env->loop, cs->timer);
	cs->timer->data = cs;
	rc = call_media_engine_start(cs, err, errlen);
	if (rc) {
		cs->media_failed = true;
		om_log(OM_LOG_ERROR, "media engine did not start: calls are refused", "error", err,
		       NULL);
	}
	*out = cs;
	return 0;
}

static void timer_closed(uv_handle_t *h)
{
	om_free(h);
}

static void handle_free(uv_handle_t *h)
{
	om_free(h);
}

/* The engine's threads have ended: the last of the calls goes (once the
 * flow jobs on the thread pool have come back). */
static void calls_engine_stopped(void *arg)
{
	struct om_calls *cs = arg;
	if (cs->works) {
		cs->free_pending = true;
		return;
	}
	void (*done)(void *) = cs->close_done;
	void *darg = cs->close_arg;
	om_free(cs);
	if (done)
		done(darg);
}

static void drain_close(struct om_calls *cs)
{
	if (cs->drain_timer) {
		uv_close((uv_handle_t *)cs->drain_timer, handle_free);
		cs->drain_timer = NULL;
	}
}

static void calls_finish(struct om_calls *cs)
{
	if (cs->finished)
		return;
	cs->finished = true;
	drain_close(cs);
	if (cs->close_timer) {
		uv_close((uv_handle_t *)cs->close_timer, handle_free);
		cs->close_timer = NULL;
	}
	/* What is left (unanswered, not ACKed, BYE unanswered) goes now; the
	 * engine ends the media sessions itself. */
	call_media_engine_detach(cs);
	while (cs->list) {
		cs->list->media = NULL;
		call_free(cs->list);
	}
	call_net_close(cs);
	om_sip_stack_free(cs->stack);
	cs->stack = NULL;
	om_sip_dialog_table_free(cs->dialogs);
	cs->dialogs = NULL;
	om_htab_fini(&cs->conns);
	om_dir_snapshot_free(cs->snap);
	cs->snap = NULL;
	uv_timer_stop(cs->timer);
	uv_close((uv_handle_t *)cs->timer, timer_closed);
	cs->timer = NULL;
	call_media_engine_stop(cs, calls_engine_stopped, cs); /* last: it may free cs */
}

static void on_close_timer(uv_timer_t *t)
{
	calls_finish(t->data);
}

static bool byes_in_flight(const struct om_calls *cs)
{
	for (const struct om_call *c = cs->list; c; c = c->next)
		if (c->state == CALL_ENDING)
			return true;
	return false;
}

void calls_closing_check(struct om_calls *cs)
{
	if (cs->closing && !cs->finished && cs->close_timer && !byes_in_flight(cs))
		uv_timer_start(cs->close_timer, on_close_timer, 0,
		               0); /* not from inside the stack */
}

void om_calls_close(struct om_calls *cs, void (*done)(void *arg), void *arg)
{
	if (!cs) {
		if (done)
			done(arg);
		return;
	}
	cs->closing = true; /* new INVITEs get 503 */
	cs->close_done = done;
	cs->close_arg = arg;
	/* BYE every answered call, and give the BYEs a moment to be answered
	 * before the connections go (a TCP reset could lose them). */
	for (struct om_call *c = cs->list; c; c = c->next)
		if (c->state == CALL_CONFIRMED)
			call_hangup(c, "server-stop");
	cs->close_timer = om_calloc(1, sizeof(*cs->close_timer));
	if (!cs->close_timer || !byes_in_flight(cs)) {
		om_free(cs->close_timer);
		cs->close_timer = NULL;
		calls_finish(cs);
		return;
	}
	uv_timer_init(cs->env.loop, cs->close_timer);
	cs->close_timer->data = cs;
	uv_timer_start(cs->close_timer, on_close_timer, 2000, 0);
}

/* ------------------------------------------------------------------ */
/* Drain: no new calls, calls in progress finish (and are delivered)   */

static void on_drain_timer(uv_timer_t *t)
{
	struct om_calls *cs = t->data;
	if (cs->finished || cs->drain_phase == 2)
		return;
	bool idle = !cs->list && !cs->works;
	if (!idle && cs->drain_phase == 0 && uv_now(cs->env.loop) >= cs->drain_deadline) {
		/* drain_timeout: the rest end with our BYE; their recordings
		 * end as "drain" and are delivered. */
		size_t n = 0;
		cs->drain_phase = 1;
		for (struct om_call *c = cs->list; c; c = c->next) {
			if (c->state == CALL_CONFIRMED || c->state == CALL_WAIT_ACK ||
			    c->state == CALL_ANSWERING) {
				n++;
				call_hangup(c, "drain");
			}
		}
		char num[24];
		snprintf(num, sizeof(num), "%zu", n);
		om_log(OM_LOG_INFO, "drain: time is up, the remaining calls are ended", "calls",
		       num, NULL);
		/* BYEs take at most 64*T1; the recordings' last jobs a moment */
		cs->drain_deadline = uv_now(cs->env.loop) + 64ull * cs->cfg->sip_t1_ms + 5000;
		uv_timer_start(cs->drain_timer, on_drain_timer,
		               cs->drain_deadline - uv_now(cs->env.loop), 0);
		return;
	}
	if (!idle && uv_now(cs->env.loop) < cs->drain_deadline) {
		uv_timer_start(cs->drain_timer, on_drain_timer,
		               cs->drain_deadline - uv_now(cs->env.loop), 0);
		return;
	}
	cs->drain_phase = 2;
	void (*done)(void *) = cs->drain_done;
	cs->drain_done = NULL;
	om_log(OM_LOG_INFO, idle ? "drain: every call has ended" : "drain: given up waiting", NULL);
	if (done)
		done(cs->drain_arg); /* may close the calls: last */
}

void calls_work_done(struct om_calls *cs)
{
	if (cs->free_pending && !cs->works) {
		cs->free_pending = false;
		calls_engine_stopped(cs); /* frees cs */
		return;
	}
	if (cs->draining && !cs->finished && cs->drain_timer && cs->drain_phase < 2 && !cs->list &&
	    !cs->works)
		uv_timer_start(cs->drain_timer, on_drain_timer, 0, 0); /* not from the stack */
}

void om_calls_drain(struct om_calls *cs, unsigned timeout_ms, void (*done)(void *arg), void *arg)
{
	if (cs->draining || cs->finished || cs->closing) {
		if (done)
			done(arg);
		return;
	}
	cs->draining = true;
	cs->drain_done = done;
	cs->drain_arg = arg;
	cs->drain_timer = om_calloc(1, sizeof(*cs->drain_timer));
	if (!cs->drain_timer) {
		cs->drain_phase = 2;
		if (done)
			done(arg);
		return;
	}
	uv_timer_init(cs->env.loop, cs->drain_timer);
	cs->drain_timer->data = cs;
	cs->drain_deadline = uv_now(cs->env.loop) + timeout_ms;
	char num[24], ms[24];
	snprintf(num, sizeof(num), "%zu", cs->ncalls);
	snprintf(ms, sizeof(ms), "%u", timeout_ms);
	om_log(OM_LOG_INFO, "drain: no new calls; calls in progress may finish", "calls", num,
	       "drain_timeout_ms", ms, NULL);
	uv_timer_start(cs->drain_timer, on_drain_timer, 0, 0);
}

void om_calls_set_delivery(struct om_calls *cs, struct om_delivery *d)
{
	cs->delivery = d;
}

void om_calls_set_snapshot(struct om_calls *cs, struct om_dir_snapshot *snap)
{
	if (cs->finished)
		return;
	struct om_dir_snapshot *old = cs->snap;
	cs->snap = om_dir_snapshot_ref(snap);
	om_dir_snapshot_free(old);
}

void om_calls_set_config(struct om_calls *cs, const struct om_config *cfg)
{
	cs->cfgv = *cfg;
	cs->cfgv.path = NULL;
}

void om_calls_json(struct om_calls *cs, struct om_buf *out)
{
	if (cs->finished) {
		om_buf_adds(out, "{\"calls\":[],\"count\":0}");
		return;
	}
	size_t n = 0;
	om_buf_adds(out, "{\"calls\":[");
	for (const struct om_call *c = cs->list; c; c = c->next) {
		if (c->state == CALL_ENDED)
			continue;
		if (n++)
			om_buf_adds(out, ",");
		call_json(c, out);
	}
	om_buf_printf(out, "],\"count\":%zu,\"max_calls\":%u}", n, cs->cfg->max_calls);
}

void om_calls_status_json(struct om_calls *cs, struct om_buf *out)
{
	if (cs->finished)
		return;
	const struct om_dir_server *srv = cs->snap ? om_dir_snapshot_server(cs->snap) : NULL;
	struct om_sip_stack_stats st;
	om_sip_stack_stats(cs->stack, &st);
	om_buf_printf(out,
	              ",\"calls\":{\"active\":%zu,\"max_calls\":%u,\"max_calls_per_second\":%u,"
	              "\"dialplans_served\":",
	              cs->ncalls, cs->cfg->max_calls, cs->cfg->max_calls_per_second);
	if (!srv || !srv->ndialplans) {
		om_buf_adds(out, "\"all\"");
	} else {
		om_buf_adds(out, "[");
		for (size_t i = 0; i < srv->ndialplans; i++) {
			if (i)
				om_buf_adds(out, ",");
			om_buf_json_str(out, srv->dialplans[i]);
		}
		om_buf_adds(out, "]");
	}
	om_buf_printf(
	    out,
	    ",\"invites\":%llu,\"answered\":%llu,\"refused_plan\":%llu,\"refused_busy\":%llu,"
	    "\"refused_caps\":%llu,\"refused_mode\":%llu,\"refused_other\":%llu,"
	    "\"ended_by_gateway\":%llu,\"ended_by_us\":%llu,\"no_ack\":%llu,\"canceled\":%llu,"
	    "\"send_failures\":%llu,\"server_transactions\":%zu,\"client_transactions\":%zu,"
	    "\"dialogs\":%zu,\"stateless_503\":%llu,\"media_engine\":%s",
	    (unsigned long long)cs->invites, (unsigned long long)cs->answered,
	    (unsigned long long)cs->refused_plan, (unsigned long long)cs->refused_busy,
	    (unsigned long long)cs->refused_caps, (unsigned long long)cs->refused_mode,
	    (unsigned long long)cs->refused_other, (unsigned long long)cs->ended_by_gateway,
	    (unsigned long long)cs->ended_by_us, (unsigned long long)cs->no_ack,
	    (unsigned long long)cs->canceled, (unsigned long long)cs->send_failures, st.server_txn,
	    st.client_txn, om_sip_dialog_table_count(cs->dialogs),
	    (unsigned long long)st.stateless_503, cs->media_failed ? "false" : "true");
	call_media_status_json(cs, out);
	om_buf_adds(out, "}");
}

void call_refused(struct om_calls *cs, uint64_t *legacy, const char *kind, const char *reason)
{
	if (legacy)
		(*legacy)++;
	cs->why_kind = kind;
	cs->why_reason = reason;
}

void call_refusal_sent(struct om_calls *cs, int status)
{
	const char *kind = cs->why_kind ? cs->why_kind : "other";
	const char *reason = cs->why_reason ? cs->why_reason : "other";
	cs->why_kind = cs->why_reason = NULL;
	size_t i;
	for (i = 0; i < cs->nrefusals; i++) {
		const struct om_calls_refusal *r = &cs->refusals[i];
		if (r->status == status && !strcmp(r->kind, kind) && !strcmp(r->reason, reason))
			break;
	}
	if (i == cs->nrefusals) {
		if (i == OM_CALLS_REFUSALS) {
			/* the last slot takes every cause beyond the table */
			i = OM_CALLS_REFUSALS - 1;
			cs->refusals[i].kind = cs->refusals[i].reason = "other";
			cs->refusals[i].status = 0;
		} else {
			cs->refusals[i] = (struct om_calls_refusal){ kind, reason, status, 0 };
			cs->nrefusals++;
		}
	}
	cs->refusals[i].count++;
}

void om_calls_stats(struct om_calls *cs, struct om_calls_stats *st)
{
	memset(st, 0, sizeof(*st));
	for (const struct om_call *c = cs->list; c; c = c->next)
		if (c->counted && c->state != CALL_ENDED && (unsigned)c->mode < 3)
			st->active[c->mode][c->tls ? 1 : 0]++;
	st->invites = cs->invites;
	st->answered = cs->answered;
	st->ended_by_gateway = cs->ended_by_gateway;
	st->ended_by_us = cs->ended_by_us;
	st->no_ack = cs->no_ack;
	st->canceled = cs->canceled;
	st->refusals = cs->refusals;
	st->nrefusals = cs->nrefusals;
	st->media = !cs->finished && call_media_stats(cs, &st->media_st); /* stopping: gone */
}
