/* flow.c — the call flows of `openum serve` (R11): what a confirmed call
 * hears and what it leaves, driven by the routing outcome (route.h), the
 * media engine's events (media.h) and the rules of flow.h.
 *
 *   deposit          greeting (the mailbox's own for the reason, loaded off
 *                    the loop; else "the person at extension 1 2 3 4 is not
 *                    available / is on the phone", or the recorded name;
 *                    `*` skips it) → beep → record (spool/<id>.json + .raw)
 *                    until hang-up, `#`, silence_timeout or the dial plan's
 *                    --max-message → .end written atomically, then
 *                    om_delivery_submit; less than min_message_seconds of
 *                    voice: discarded (spool removed, a log line); after
 *                    `#`, silence or the limit: "your message has been
 *                    recorded, goodbye" and our BYE.
 *   ask-extension    "please enter the extension", digits with input_timeout
 *                    each, input_failures tries → deposit, or "that extension
 *                    is not valid" / "sorry, I did not hear your entry" and
 *                    finally "goodbye" and BYE.
 *   unknown mailbox  "the mailbox is not available. Goodbye." and BYE.
 *   subscriber       "this service is not available. Goodbye." and BYE
 *                    (subscriber access comes later).
 *   diagnostic       Request-URI user `openum-test` (testcall/conntest.h):
 *                    "thank you", then every digit echoed in an INFO
 *                    (RFC 6086, application/dtmf-relay) when the call asks
 *                    (X-Openum-Test: connectivity;echo-dtmf). A test call
 *                    to a mailbox is a deposit whose spool says `test`
 *                    (never delivered to the mailbox) unless `;deliver`.
 *
 * Nothing here blocks the control loop: greetings are decoded and the end
 * marker is written (fsync) on libuv's thread pool. */
#include "app/call_int.h"
#include "app/flow.h"
#include "core/alloc.h"
#include "core/clock.h"
#include "core/file.h"
#include "core/log.h"
#include "delivery/delivery.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <openssl/rand.h>

enum fstate {
	F_IDLE,
	F_LOADING,   /* the mailbox's greeting is being decoded */
	F_GREETING,  /* playing the greeting (`*` skips) */
	F_BEEP,      /* playing the beep */
	F_RECORDING, /* recording */
	F_STOPPING,  /* recording stop asked: RECORD_STOPPED awaited */
	F_ASK,       /* "please enter the extension" playing */
	F_COLLECT,   /* digits being entered */
	F_DIAG,      /* the diagnostic extension: prompt played, digits echoed */
	F_GOODBYE,   /* the last prompt: BYE when it ends */
	F_DONE,
};

static const char *const state_names[] = { "idle",       "loading",  "greeting", "beep",
	                                   "recording",  "stopping", "ask",      "collect",
	                                   "diagnostic", "goodbye",  "done" };

struct flow_job;

struct call_flow {
	enum fstate st;
	uint32_t token; /* the playlist whose PLAY_DONE we wait for */
	struct om_sip_timer tm;
	struct flow_job *load; /* greeting being decoded */
	struct om_media_audio *greeting, *name;
	bool skip; /* `*` pressed while the greeting was loading */
	/* the mailbox of a deposit (copied: the snapshot may change) */
	char uid[33], ext[OM_DIR_EXT_MAX + 1], mb_name[OM_DIR_DISPLAY_MAX + 1];
	char email[OM_DIR_EMAIL_MAX + 1];
	bool busy;
	/* the recording */
	char spool_id[64];
	const char *end_reason; /* static */
	bool recording;
	/* ask for the extension */
	struct om_flow_digits digits;
	unsigned failures;
	/* digits to echo (diagnostic), one INFO at a time */
	char echo[33];
	size_t necho;
};

enum job_kind { JOB_LOAD, JOB_FINISH };

/* Work for libuv's thread pool. One owner: the pool until after_work,
 * which frees it. `c` is cleared when the call goes first. */
struct flow_job {
	uv_work_t w;
	enum job_kind kind;
	struct om_calls *cs;
	struct om_call *c;
	/* JOB_LOAD */
	char path[2][4200];
	struct om_media_audio *audio[2];
	int rc[2];
	char why[2][160];
	/* JOB_FINISH */
	char spool_dir[4100];
	char id[64];
	char end_text[256];
	bool keep, write_end;
	int frc;
};

const char *call_flow_state(const struct om_call *c)
{
	return c->flow ? state_names[c->flow->st] : "idle";
}

static void job_done(struct om_calls *cs)
{
	cs->works--;
	calls_work_done(cs);
}

/* ------------------------------------------------------------------ */
/* Playing                                                             */

static int play(struct om_call *c, const struct om_media_play *items, size_t n)
{
	struct om_media_session *s = call_media_session(c);
	if (!s)
		return ENOTSUP;
	c->flow->token++;
	int rc = om_media_session_play(s, items, n, c->flow->token);
	if (rc)
		om_log(OM_LOG_WARNING, "call flow: a prompt could not be played", "call",
		       c->call_id, "error", strerror(rc), NULL);
	return rc;
}

static void play_prompts(struct om_call *c, const char *a, const char *b)
{
	struct om_media_play it[2] = { { .kind = OM_MEDIA_PLAY_PROMPT, .name = a },
		                       { .kind = OM_MEDIA_PLAY_PROMPT, .name = b } };
	if (play(c, it, b ? 2 : 1) != 0 && c->flow->st == F_GOODBYE)
		call_hangup(c, "flow-end");
}

/* The last words, then our BYE. */
static void goodbye(struct om_call *c, const char *first)
{
	c->flow->st = F_GOODBYE;
	om_sip_timer_stop(c->calls->stack, &c->flow->tm);
	play_prompts(c, first ? first : "goodbye", first ? "goodbye" : NULL);
}

/* ------------------------------------------------------------------ */
/* Deposit                                                             */

static void beep(struct om_call *c)
{
	c->flow->st = F_BEEP;
	struct om_media_play it = { .kind = OM_MEDIA_PLAY_PROMPT, .name = "beep" };
	if (play(c, &it, 1) != 0)
		call_hangup(c, "no-media");
}

static void greeting_play(struct om_call *c)
{
	struct call_flow *f = c->flow;
	if (f->skip) {
		beep(c);
		return;
	}
	struct om_media_play it[4];
	size_t n = 0;
	memset(it, 0, sizeof(it));
	if (f->greeting) {
		it[n++] =
		    (struct om_media_play){ .kind = OM_MEDIA_PLAY_AUDIO, .audio = f->greeting };
	} else {
		if (f->name) {
			it[n++] =
			    (struct om_media_play){ .kind = OM_MEDIA_PLAY_AUDIO, .audio = f->name };
		} else {
			it[n++] = (struct om_media_play){ .kind = OM_MEDIA_PLAY_PROMPT,
				                          .name = "extension-is" };
			it[n++] = (struct om_media_play){ .kind = OM_MEDIA_PLAY_DIGITS,
				                          .digits = f->ext };
		}
		it[n++] =
		    (struct om_media_play){ .kind = OM_MEDIA_PLAY_PROMPT,
			                    .name = f->busy ? "on-the-phone" : "not-available" };
		it[n++] =
		    (struct om_media_play){ .kind = OM_MEDIA_PLAY_PROMPT, .name = "leave-message" };
	}
	f->st = F_GREETING;
	if (play(c, it, n) != 0)
		beep(c); /* a greeting that cannot play: the beep at least */
}

static void load_work(uv_work_t *w)
{
	struct flow_job *j = w->data;
	for (int i = 0; i < 2; i++) {
		if (!j->path[i][0])
			continue;
		j->rc[i] =
		    om_media_audio_load(j->path[i], 0, &j->audio[i], j->why[i], sizeof(j->why[i]));
	}
}

static void load_after(uv_work_t *w, int status)
{
	struct flow_job *j = w->data;
	struct om_call *c = j->c;
	for (int i = 0; i < 2; i++) {
		if (j->path[i][0] && j->rc[i])
			om_log(OM_LOG_WARNING,
			       "greeting cannot be played: the default greeting plays", "call",
			       c ? c->call_id : "", "file", j->path[i], "error",
			       j->why[i][0] ? j->why[i] : strerror(j->rc[i]), NULL);
	}
	if (c && c->flow && c->flow->load == j) {
		struct call_flow *f = c->flow;
		f->load = NULL;
		f->greeting = j->audio[0];
		f->name = j->audio[1];
		j->audio[0] = j->audio[1] = NULL;
		if (f->st == F_LOADING && c->state == CALL_CONFIRMED)
			greeting_play(c);
	}
	om_media_audio_unref(j->audio[0]);
	om_media_audio_unref(j->audio[1]);
	struct om_calls *cs = j->cs;
	om_free(j);
	job_done(cs);
}

/* Starts the deposit into the mailbox of c->route: its greeting. */
static void deposit_start(struct om_call *c)
{
	struct om_calls *cs = c->calls;
	struct call_flow *f = c->flow;
	const struct om_dir_dialplan *plan =
	    cs->snap ? om_dir_snapshot_dialplan_by_id(cs->snap, c->dialplan_id) : NULL;
	const struct om_dir_mailbox *mb =
	    plan ? om_dir_snapshot_mailbox(cs->snap, plan, c->route.mailbox) : NULL;
	if (!mb) {
		goodbye(c, "mailbox-unavailable");
		return;
	}
	snprintf(f->uid, sizeof(f->uid), "%s", mb->uid);
	snprintf(f->ext, sizeof(f->ext), "%s", mb->extension);
	snprintf(f->mb_name, sizeof(f->mb_name), "%s", mb->display_name);
	snprintf(f->email, sizeof(f->email), "%s", mb->email);
	f->busy = c->route.busy_greeting;
	bool have[3] = { mb->greetings[OM_GREETING_DEFAULT][0] != '\0',
		         mb->greetings[OM_GREETING_BUSY][0] != '\0',
		         mb->greetings[OM_GREETING_UNAVAILABLE][0] != '\0' };
	int slot = om_flow_greeting_slot(f->busy, have);
	bool name = mb->greetings[OM_GREETING_NAME][0] != '\0';
	if (slot < 0 && !name) {
		greeting_play(c);
		return;
	}
	struct flow_job *j = om_calloc(1, sizeof(*j));
	if (!j) {
		greeting_play(c);
		return;
	}
	const char *dd = cs->env.data_dir ? cs->env.data_dir : ".";
	j->kind = JOB_LOAD;
	j->cs = cs;
	j->c = c;
	j->w.data = j;
	if (slot >= 0)
		snprintf(j->path[0], sizeof(j->path[0]), "%s/%s", dd, mb->greetings[slot]);
	else
		snprintf(j->path[1], sizeof(j->path[1]), "%s/%s", dd,
		         mb->greetings[OM_GREETING_NAME]);
	if (uv_queue_work(cs->env.loop, &j->w, load_work, load_after) != 0) {
		om_free(j);
		greeting_play(c);
		return;
	}
	cs->works++;
	f->load = j;
	f->st = F_LOADING;
}

static void spool_meta(const struct om_call *c, const char *id, int64_t start_ms, struct om_buf *b)
{
	const struct call_flow *f = c->flow;
	const struct om_sip_dialog *d = c->dlg;
	om_buf_adds(b, "{\"version\":1,\"id\":");
	om_buf_json_str(b, id);
	om_buf_adds(b, ",\"call_id\":");
	om_buf_json_str(b, c->call_id ? c->call_id : "");
	om_buf_adds(b, ",\"from_tag\":");
	om_buf_json_str(b, d && d->remote_tag ? d->remote_tag : "");
	om_buf_adds(b, ",\"to_tag\":");
	om_buf_json_str(b, d && d->local_tag ? d->local_tag : "");
	om_buf_adds(b, ",\"mailbox_uid\":");
	om_buf_json_str(b, f->uid);
	om_buf_adds(b, ",\"extension\":");
	om_buf_json_str(b, f->ext);
	om_buf_adds(b, ",\"dialplan\":");
	om_buf_json_str(b, c->dialplan);
	om_buf_adds(b, ",\"mailbox_name\":");
	om_buf_json_str(b, f->mb_name);
	om_buf_adds(b, ",\"mailbox_email\":");
	om_buf_json_str(b, f->email);
	om_buf_adds(b, ",\"caller\":");
	om_buf_json_str(b, c->route.anonymous ? "" : c->route.caller);
	om_buf_adds(b, ",\"caller_name\":");
	om_buf_json_str(b, c->route.anonymous ? "" : c->route.caller_name);
	om_buf_printf(b,
	              ",\"anonymous\":%s,\"reason\":\"%s\",\"security_mode\":\"%s\","
	              "\"transport\":\"%s\",\"srtp_suite\":\"%s\",\"gateway\":",
	              c->route.anonymous ? "true" : "false", om_route_reason_name(c->route.reason),
	              c->mode == OM_SDP_SECURED      ? "secured"
	              : c->mode == OM_SDP_SIPSECURED ? "sipsecured"
	                                             : "unsecured",
	              c->tls ? "tls" : "tcp",
	              c->sdp.srtp ? om_sdp_suite_name(c->sdp.remote_key.suite) : "");
	om_buf_json_str(b, c->gateway);
	om_buf_printf(b, ",\"start_ms\":%" PRId64 ",\"test\":%s}", start_ms,
	              c->test && !c->test_deliver ? "true" : "false");
}

static void record_start(struct om_call *c)
{
	struct om_calls *cs = c->calls;
	struct call_flow *f = c->flow;
	struct om_media_session *s = call_media_session(c);
	uint64_t rnd = 0;
	if (!s) {
		call_hangup(c, "no-media");
		return;
	}
	if (RAND_bytes((unsigned char *)&rnd, sizeof(rnd)) != 1)
		rnd = (uint64_t)om_mono_ms() ^ c->id;
	int64_t now = om_now_ms();
	snprintf(f->spool_id, sizeof(f->spool_id), "%" PRId64 "-%016" PRIx64, now, rnd);
	struct om_buf meta;
	om_buf_init(&meta);
	spool_meta(c, f->spool_id, now, &meta);
	struct om_media_record_opts o = {
		.silence_dbov = cs->cfg->silence_threshold,
		.silence_timeout_ms = cs->cfg->silence_timeout * 1000,
		.max_ms = (unsigned)(c->max_message_s > 0 ? c->max_message_s : 300) * 1000,
	};
	int rc = om_buf_err(&meta)
	             ? ENOMEM
	             : om_media_session_record_start(s, f->spool_id, om_buf_cstr(&meta), &o);
	om_buf_free(&meta);
	if (rc) {
		om_log(OM_LOG_ERROR, "call flow: the recording could not start", "call", c->call_id,
		       "error", strerror(rc), NULL);
		f->spool_id[0] = '\0';
		goodbye(c, "service-unavailable");
		return;
	}
	f->recording = true;
	f->end_reason = NULL;
	f->st = F_RECORDING;
	om_log(OM_LOG_INFO, "recording a message", "call", c->call_id, "mailbox", f->ext,
	       "dialplan", c->dialplan, "spool", f->spool_id, "test",
	       c->test && !c->test_deliver ? "yes" : "no", NULL);
}

static void record_stop(struct om_call *c, const char *why)
{
	struct call_flow *f = c->flow;
	if (!f->recording || f->st == F_STOPPING)
		return;
	f->end_reason = why;
	f->st = F_STOPPING;
	struct om_media_session *s = call_media_session(c);
	if (s)
		om_media_session_record_stop(s);
}

static void finish_work(uv_work_t *w)
{
	struct flow_job *j = w->data;
	char path[4300];
	if (j->keep) {
		if (j->write_end) {
			snprintf(path, sizeof(path), "%s/%s.end", j->spool_dir, j->id);
			j->frc = om_file_write_atomic(path, j->end_text, strlen(j->end_text), 0600);
		}
		return;
	}
	/* Discarded: the metadata first (a .raw without it is pruned). */
	static const char *const ext[] = { ".json", ".raw", ".end" };
	for (size_t i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "%s/%s%s", j->spool_dir, j->id, ext[i]);
		if (unlink(path) != 0 && errno != ENOENT && !j->frc)
			j->frc = errno;
	}
}

static void finish_after(uv_work_t *w, int status)
{
	struct flow_job *j = w->data;
	struct om_calls *cs = j->cs;
	if (j->keep) {
		if (j->frc)
			om_log(OM_LOG_ERROR,
			       "the end marker of a message could not be written: it is delivered "
			       "as interrupted",
			       "spool", j->id, "error", strerror(j->frc), NULL);
		int rc =
		    cs->delivery ? om_delivery_submit(cs->delivery, j->id, NULL, NULL) : ESHUTDOWN;
		if (rc)
			om_log(
			    OM_LOG_WARNING,
			    "message not delivered now: it stays in the spool for the next start",
			    "spool", j->id, "error", strerror(rc), NULL);
	} else if (j->frc) {
		om_log(OM_LOG_WARNING, "a discarded message could not be removed", "spool", j->id,
		       "error", strerror(j->frc), NULL);
	}
	om_free(j);
	job_done(cs);
}

/* RECORD_STOPPED: the spool is complete (synced). */
static void record_stopped(struct om_call *c, const struct om_media_event *ev)
{
	struct om_calls *cs = c->calls;
	struct call_flow *f = c->flow;
	if (!f->recording)
		return;
	f->recording = false;
	const char *why = f->end_reason             ? f->end_reason
	                  : c->state >= CALL_ENDING ? om_flow_end_reason_of_call(c->end_reason)
	                  : ev->u.record.error      ? "error"
	                                            : "hangup";
	bool keep = om_flow_message_keep(ev->u.record.voiced_ms, cs->cfg->min_message_seconds);
	char ms[24], voiced[24];
	snprintf(ms, sizeof(ms), "%" PRIu64, ev->u.record.audio_ms);
	snprintf(voiced, sizeof(voiced), "%" PRIu64, ev->u.record.voiced_ms);
	if (ev->u.record.error)
		om_log(OM_LOG_WARNING,
		       keep ? "message cut: the spool could not be written (kept as interrupted)"
		            : "message lost: the spool could not be written",
		       "call", c->call_id, "mailbox", f->ext, "spool", f->spool_id, "end_reason",
		       why, "audio_ms", ms, "voiced_ms", voiced, "error",
		       strerror(ev->u.record.error), NULL);
	else if (keep)
		om_log(OM_LOG_INFO, "message recorded", "call", c->call_id, "mailbox", f->ext,
		       "spool", f->spool_id, "end_reason", why, "audio_ms", ms, "voiced_ms", voiced,
		       NULL);
	else
		om_log(OM_LOG_INFO, "message discarded: shorter than min_message_seconds of voice",
		       "call", c->call_id, "mailbox", f->ext, "spool", f->spool_id, "end_reason",
		       why, "audio_ms", ms, "voiced_ms", voiced, NULL);
	struct flow_job *j = om_calloc(1, sizeof(*j));
	if (j) {
		j->kind = JOB_FINISH;
		j->cs = cs;
		j->w.data = j;
		j->keep = keep;
		/* A recording cut by a write error has no end marker: it is
		 * delivered as interrupted, with what was written. */
		j->write_end = ev->u.record.error == 0;
		snprintf(j->spool_dir, sizeof(j->spool_dir), "%s/spool",
		         cs->env.data_dir ? cs->env.data_dir : ".");
		snprintf(j->id, sizeof(j->id), "%s", f->spool_id);
		snprintf(j->end_text, sizeof(j->end_text),
		         "{\"end_ms\":%" PRId64 ",\"end_reason\":\"%s\",\"bytes\":%" PRIu64
		         ",\"voiced_ms\":%" PRIu64 "}\n",
		         om_now_ms(), why, ev->u.record.bytes, ev->u.record.voiced_ms);
		if (uv_queue_work(cs->env.loop, &j->w, finish_work, finish_after) == 0)
			cs->works++;
		else
			om_free(j); /* the spool stays: delivered at the next start */
	}
	if (c->state == CALL_CONFIRMED && f->st != F_GOODBYE)
		goodbye(c, om_flow_stopped_prompt(keep, ev->u.record.error));
}

/* ------------------------------------------------------------------ */
/* Ask for the extension                                               */

static void on_input_timer(struct om_sip_timer *t, void *arg);

static void ask(struct om_call *c, const char *first)
{
	struct call_flow *f = c->flow;
	const struct om_dir_dialplan *plan =
	    c->calls->snap ? om_dir_snapshot_dialplan_by_id(c->calls->snap, c->dialplan_id) : NULL;
	om_flow_digits_init(&f->digits, plan ? (size_t)plan->digits : 4);
	f->st = F_ASK;
	play_prompts(c, first ? first : "enter-extension", first ? "enter-extension" : NULL);
}

static void entry_failed(struct om_call *c, const char *prompt)
{
	struct call_flow *f = c->flow;
	f->failures++;
	om_sip_timer_stop(c->calls->stack, &f->tm);
	om_log(OM_LOG_INFO, "call flow: extension not entered", "call", c->call_id, "entered",
	       f->digits.d, "why", strcmp(prompt, "not-heard") ? "not valid" : "nothing heard",
	       NULL);
	if (om_flow_retry(f->failures, c->calls->cfg->input_failures))
		ask(c, prompt);
	else
		goodbye(c, prompt);
}

static void entry_complete(struct om_call *c)
{
	struct call_flow *f = c->flow;
	struct om_calls *cs = c->calls;
	om_sip_timer_stop(cs->stack, &f->tm);
	const struct om_dir_dialplan *plan =
	    cs->snap ? om_dir_snapshot_dialplan_by_id(cs->snap, c->dialplan_id) : NULL;
	if (!plan || !om_dir_snapshot_mailbox(cs->snap, plan, f->digits.d)) {
		entry_failed(c, "invalid-extension");
		return;
	}
	c->route.kind = OM_ROUTE_DEPOSIT;
	snprintf(c->route.mailbox, sizeof(c->route.mailbox), "%s", f->digits.d);
	c->route.reason = OM_ROUTE_UNAVAILABLE;
	c->route.busy_greeting = false;
	om_log(OM_LOG_INFO, "call flow: extension entered", "call", c->call_id, "mailbox",
	       f->digits.d, NULL);
	deposit_start(c);
}

static void entry(struct om_call *c, enum om_flow_entry e)
{
	if (e == OM_FLOW_COMPLETE)
		entry_complete(c);
	else if (e == OM_FLOW_EMPTY)
		entry_failed(c, "not-heard");
	else
		om_sip_timer_start(c->calls->stack, &c->flow->tm,
		                   (uint64_t)c->calls->cfg->input_timeout * 1000, on_input_timer,
		                   c);
}

static void on_input_timer(struct om_sip_timer *t, void *arg)
{
	struct om_call *c = arg;
	if (c->flow && c->flow->st == F_COLLECT && c->state == CALL_CONFIRMED)
		entry(c, om_flow_digits_timeout(&c->flow->digits));
}

/* ------------------------------------------------------------------ */
/* DTMF echo (diagnostic)                                              */

static void echo_next(struct om_call *c);

static void on_info_resp(struct om_sip_ctx *ctx, int err, const struct om_sip_msg *resp, void *arg)
{
	struct om_call *c = arg;
	if (resp && resp->status < 200)
		return;
	om_sip_ctx_release(ctx);
	c->info_out = NULL;
	echo_next(c);
}

static void echo_next(struct om_call *c)
{
	struct call_flow *f = c->flow;
	if (!f || !f->necho || c->info_out || c->state != CALL_CONFIRMED)
		return;
	char body[64];
	char d = f->echo[0];
	memmove(f->echo, f->echo + 1, f->necho);
	f->necho--;
	snprintf(body, sizeof(body), "Signal=%c\r\nDuration=160\r\n", d);
	if (call_send_info(c, "application/dtmf-relay", body, on_info_resp) != 0)
		om_log(OM_LOG_WARNING, "diagnostic: a digit could not be echoed", "call",
		       c->call_id, NULL);
}

static void echo(struct om_call *c, char d)
{
	struct call_flow *f = c->flow;
	if (f->necho + 1 < sizeof(f->echo)) {
		f->echo[f->necho++] = d;
		f->echo[f->necho] = '\0';
	}
	echo_next(c);
}

/* ------------------------------------------------------------------ */
/* Events                                                              */

static void on_dtmf(struct om_call *c, char d)
{
	struct call_flow *f = c->flow;
	if (c->echo_dtmf)
		echo(c, d);
	switch (f->st) {
	case F_LOADING:
		if (d == '*')
			f->skip = true;
		break;
	case F_GREETING:
		if (d == '*')
			beep(c); /* replaces the greeting */
		break;
	case F_RECORDING:
		if (d == '#')
			record_stop(c, "dtmf");
		break;
	case F_ASK: {
		/* a key while the prompt plays: the caller knows what to do */
		f->st = F_COLLECT;
		struct om_media_session *s = call_media_session(c);
		if (s)
			om_media_session_play_stop(s);
		entry(c, om_flow_digits_add(&f->digits, d));
		break;
	}
	case F_COLLECT:
		entry(c, om_flow_digits_add(&f->digits, d));
		break;
	default:
		break;
	}
}

static void on_play_done(struct om_call *c, const struct om_media_event *ev)
{
	struct call_flow *f = c->flow;
	if (ev->u.play.token != f->token || c->state != CALL_CONFIRMED)
		return;
	switch (f->st) {
	case F_GREETING:
		if (!ev->u.play.stopped)
			beep(c);
		break;
	case F_BEEP:
		if (!ev->u.play.stopped)
			record_start(c);
		break;
	case F_ASK:
		f->st = F_COLLECT;
		entry(c, OM_FLOW_MORE);
		break;
	case F_GOODBYE:
		f->st = F_DONE;
		call_hangup(c, "flow-end");
		break;
	default:
		break;
	}
}

void flow_media_event(struct om_call *c, const struct om_media_event *ev)
{
	if (!c->flow)
		return;
	switch (ev->type) {
	case OM_MEDIA_EV_DTMF:
		if (c->state == CALL_CONFIRMED)
			on_dtmf(c, ev->u.dtmf.digit);
		break;
	case OM_MEDIA_EV_PLAY_DONE:
		on_play_done(c, ev);
		break;
	case OM_MEDIA_EV_RECORD_SILENCE:
		if (c->flow->st == F_RECORDING)
			record_stop(c, "silence");
		break;
	case OM_MEDIA_EV_RECORD_LIMIT:
		if (c->flow->recording && c->flow->st != F_STOPPING) {
			c->flow->end_reason = "limit";
			c->flow->st = F_STOPPING; /* the recording stopped itself */
		}
		break;
	case OM_MEDIA_EV_RECORD_STOPPED:
		record_stopped(c, ev);
		break;
	default:
		break;
	}
}

/* ------------------------------------------------------------------ */
/* The call's side                                                     */

void flow_start(struct om_call *c)
{
	if (c->flow)
		return;
	c->flow = om_calloc(1, sizeof(*c->flow));
	if (!c->flow) {
		call_hangup(c, "no-memory");
		return;
	}
	if (c->diag) {
		c->flow->st = F_DIAG;
		struct om_media_play it = { .kind = OM_MEDIA_PLAY_PROMPT, .name = "thank-you" };
		play(c, &it, 1);
		om_log(OM_LOG_INFO, "diagnostic call", "call", c->call_id, "gateway", c->gateway,
		       "echo_dtmf", c->echo_dtmf ? "yes" : "no", NULL);
		return;
	}
	switch (c->route.kind) {
	case OM_ROUTE_DEPOSIT:
		deposit_start(c);
		break;
	case OM_ROUTE_ASK_EXTENSION:
		ask(c, NULL);
		break;
	case OM_ROUTE_UNKNOWN_MAILBOX:
		om_log(OM_LOG_INFO, "call flow: no such mailbox", "call", c->call_id, "mailbox",
		       c->route.mailbox, "dialplan", c->dialplan, NULL);
		goodbye(c, "mailbox-unavailable");
		break;
	case OM_ROUTE_SUBSCRIBER:
	default:
		goodbye(c, "service-unavailable");
		break;
	}
}

void flow_call_ended(struct om_call *c)
{
	struct call_flow *f = c->flow;
	if (!f)
		return;
	om_sip_timer_stop(c->calls->stack, &f->tm);
	if (f->recording && !f->end_reason) {
		f->end_reason = om_flow_end_reason_of_call(c->end_reason);
		f->st = F_STOPPING; /* the media session's end stops it */
	}
}

void flow_free(struct om_call *c)
{
	struct call_flow *f = c->flow;
	if (!f)
		return;
	if (c->calls->stack)
		om_sip_timer_stop(c->calls->stack, &f->tm);
	if (f->load)
		f->load->c = NULL; /* the pool's job frees itself */
	om_media_audio_unref(f->greeting);
	om_media_audio_unref(f->name);
	om_free(f);
	c->flow = NULL;
}
