/* txn.c — SIP transactions (RFC 3261 §17; RFC 6026) and the timer heap
 * they run on. See txn.h for the contract.
 *
 * Server INVITE transaction (§17.2.1 with RFC 6026):
 *
 *                 INVITE (100 Trying sent)
 *                    |
 *               PROCEEDING ---- 1xx from TU: send (resent on retransmissions)
 *          2xx /     |    \ 300-699 from TU (or 487 on CANCEL)
 *             v      |     v
 *        ACCEPTED    |   COMPLETED --- INVITE: resend; Timer G (unreliable)
 *   2xx resent every |     |     \ Timer H (64*T1): gone, no ACK
 *   T1..T2 until ACK |     | ACK
 *   (ack_h); 64*T1   |     v
 *   without: noack_h |   CONFIRMED --- Timer I (T4; 0 reliable)
 *             \      |     /
 *              TERMINATED (freed when the TU released it too)
 *
 * Server non-INVITE (§17.2.2): TRYING -1xx-> PROCEEDING -final-> COMPLETED
 * (Timer J: 64*T1 unreliable, 0 reliable) -> TERMINATED. A retransmission
 * is absorbed in TRYING and answered with the last response after.
 *
 * Client INVITE (§17.1.1, RFC 6026): CALLING (Timer A unreliable, Timer B)
 * -1xx-> PROCEEDING -2xx-> ACCEPTED (Timer M 64*T1: later 2xx go to the TU)
 * -300..699-> COMPLETED (ACK sent; Timer D 32 s unreliable, 0 reliable).
 * Client non-INVITE (§17.1.2): TRYING (Timer E unreliable, Timer F)
 * -1xx-> PROCEEDING -final-> COMPLETED (Timer K: T4 unreliable, 0 reliable).
 *
 * Matching (§17.2.3, §17.1.3): server transactions by the top Via branch
 * and sent-by plus the method (ACK as INVITE), or for a pre-3261 branch by
 * Request-URI, Call-ID, From tag, CSeq number and top Via; client ones by
 * branch and CSeq method. Every key starts with the peer id. An ACK to a
 * 2xx is a transaction of its own (§17.1.1.3): it is matched to the
 * INVITE that waits for it by Call-ID, From tag, To tag, CSeq number and
 * peer.
 *
 * Every transaction is reference counted: one reference for the state
 * machine (dropped when TERMINATED), one for the TU, and a temporary one
 * around each callback so a TU may release from inside it. */
#include "sip/sip.h"
#include "sip/htab.h"
#include "core/alloc.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

/* ------------------------------------------------------------------ */
/* Types                                                               */

enum stx_state {
	STX_TRYING,
	STX_PROCEEDING,
	STX_COMPLETED,
	STX_CONFIRMED,
	STX_ACCEPTED,
	STX_TERMINATED
};

struct om_sip_stx {
	struct om_hnode n_key, n_merge, n_ack;
	struct om_sip_stx *prev, *next; /* all server transactions */
	struct om_sip_stack *s;
	unsigned refs;
	enum stx_state state;
	enum om_sip_method method;
	struct om_sip_dest src;
	struct om_buf key, mkey, akey;
	char *buf;
	struct om_sip_msg *req;
	char *resp;
	size_t resp_len;
	int status;
	struct om_sip_timer tm;
	int64_t retx_due, end_due;
	uint32_t retx_ms;
	bool acked;
	bool tu;
	char totag[40]; /* our To tag in every response but 100 */
	const struct om_sip_stx_handlers *h;
	void *arg;
};

enum ctx_state { CTX_CALLING, CTX_PROCEEDING, CTX_COMPLETED, CTX_ACCEPTED, CTX_TERMINATED };

struct om_sip_ctx {
	struct om_hnode n_key;
	struct om_sip_ctx *prev, *next;
	struct om_sip_stack *s;
	unsigned refs;
	enum ctx_state state;
	enum om_sip_method method;
	struct om_sip_dest dest;
	struct om_buf key;
	char *buf;
	size_t len;
	struct om_sip_msg *req;
	struct om_sip_timer tm;
	int64_t retx_due, end_due;
	uint32_t retx_ms;
	bool tu;
	bool cancel_wanted, cancel_sent;
	char *ack; /* the ACK to a non-2xx, resent on retransmitted finals */
	size_t ack_len;
	om_sip_resp_h h;
	void *arg;
};

struct om_sip_stack {
	struct om_sip_stack_cfg cfg;
	char *via_sent_by;
	char *resp_extra;
	struct om_sip_stack_handlers h;
	struct om_htab stx_key, stx_merge, stx_ack, ctx_key;
	struct om_sip_stx *stxs;
	struct om_sip_ctx *ctxs;
	size_t n_stx, n_ctx; /* not yet TERMINATED */
	struct om_sip_timer **heap;
	size_t nheap, capheap;
	int64_t reported_due;
	uint64_t rnd, counter;
	struct om_sip_stack_stats st;
};

static int64_t now(struct om_sip_stack *s)
{
	return s->h.now_h(s->h.arg);
}

/* ------------------------------------------------------------------ */
/* Timer heap (binary min-heap on due; idx = slot + 1)                 */

static void heap_swap(struct om_sip_stack *s, size_t a, size_t b)
{
	struct om_sip_timer *t = s->heap[a];
	s->heap[a] = s->heap[b];
	s->heap[b] = t;
	s->heap[a]->idx = a + 1;
	s->heap[b]->idx = b + 1;
}

static void heap_up(struct om_sip_stack *s, size_t i)
{
	while (i > 0) {
		size_t p = (i - 1) / 2;
		if (s->heap[p]->due <= s->heap[i]->due)
			break;
		heap_swap(s, p, i);
		i = p;
	}
}

static void heap_down(struct om_sip_stack *s, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		if (l < s->nheap && s->heap[l]->due < s->heap[m]->due)
			m = l;
		if (r < s->nheap && s->heap[r]->due < s->heap[m]->due)
			m = r;
		if (m == i)
			break;
		heap_swap(s, i, m);
		i = m;
	}
}

static void report_due(struct om_sip_stack *s)
{
	int64_t due = s->nheap ? s->heap[0]->due : -1;
	if (due == s->reported_due)
		return;
	s->reported_due = due;
	if (s->h.timer_h)
		s->h.timer_h(due, s->h.arg);
}

static void heap_remove(struct om_sip_stack *s, struct om_sip_timer *t)
{
	size_t i = t->idx - 1, last = s->nheap - 1;
	t->idx = 0;
	if (i != last) {
		s->heap[i] = s->heap[last];
		s->heap[i]->idx = i + 1;
	}
	s->nheap--;
	if (i < s->nheap) {
		heap_up(s, i);
		heap_down(s, s->heap[i]->idx - 1);
	}
}

/* Room for every timer that may be armed: those armed now plus one per
 * live transaction (each has one slot at most), so arming a transaction's
 * timer never fails once the transaction exists. */
static int heap_room(struct om_sip_stack *s, size_t extra)
{
	size_t need = s->nheap + s->n_stx + s->n_ctx + extra;
	if (need <= s->capheap)
		return 0;
	size_t cap = s->capheap ? s->capheap : 64;
	while (cap < need)
		cap *= 2;
	struct om_sip_timer **h = om_realloc(s->heap, cap * sizeof(*h));
	if (!h)
		return ENOMEM;
	s->heap = h;
	s->capheap = cap;
	return 0;
}

static void timer_insert(struct om_sip_stack *s, struct om_sip_timer *t, uint64_t ms,
                         void (*fn)(struct om_sip_timer *t, void *arg), void *arg)
{
	if (t->idx)
		heap_remove(s, t);
	t->due = now(s) + (int64_t)(ms > INT32_MAX ? INT32_MAX : ms);
	t->fn = fn;
	t->arg = arg;
	s->heap[s->nheap] = t;
	t->idx = ++s->nheap;
	heap_up(s, s->nheap - 1);
	report_due(s);
}

int om_sip_timer_start(struct om_sip_stack *s, struct om_sip_timer *t, uint64_t ms,
                       void (*fn)(struct om_sip_timer *t, void *arg), void *arg)
{
	if (!t->idx && heap_room(s, 1) != 0)
		return ENOMEM;
	timer_insert(s, t, ms, fn, arg);
	return 0;
}

void om_sip_timer_stop(struct om_sip_stack *s, struct om_sip_timer *t)
{
	if (!t->idx)
		return;
	heap_remove(s, t);
	report_due(s);
}

int64_t om_sip_stack_next_timer(const struct om_sip_stack *s)
{
	if (!s->nheap)
		return -1;
	int64_t d = s->heap[0]->due - s->h.now_h(s->h.arg);
	return d < 0 ? 0 : d;
}

void om_sip_stack_timers_run(struct om_sip_stack *s)
{
	int64_t t_now = now(s);
	/* A timer armed by a callback for "now" runs on the next call, so a
	 * zero-delay re-arm cannot spin this loop. */
	size_t budget = s->nheap;
	while (s->nheap && s->heap[0]->due <= t_now && budget--) {
		struct om_sip_timer *t = s->heap[0];
		heap_remove(s, t);
		t->fn(t, t->arg);
	}
	report_due(s);
}

/* ------------------------------------------------------------------ */
/* Helpers                                                             */

static uint32_t t1(const struct om_sip_stack *s)
{
	return s->cfg.t1_ms;
}

static int do_send(struct om_sip_stack *s, const struct om_sip_dest *d, const char *buf, size_t len)
{
	int rc = s->h.send_h(d, buf, len, s->h.arg);
	if (rc)
		s->st.send_errors++;
	return rc;
}

int om_sip_stack_send(struct om_sip_stack *s, const struct om_sip_dest *d, const char *buf,
                      size_t len)
{
	return do_send(s, d, buf, len);
}

static void hex64(uint64_t v, char *out)
{
	static const char x[] = "0123456789abcdef";
	for (int i = 15; i >= 0; i--) {
		out[i] = x[v & 15];
		v >>= 4;
	}
	out[16] = '\0';
}

/* A 64-bit mix of the random prefix and the counter (splitmix64): unique
 * per stack, not guessable from the previous value without the prefix. */
static uint64_t next_id(struct om_sip_stack *s)
{
	uint64_t z = s->rnd + 0x9e3779b97f4a7c15ull * ++s->counter;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

void om_sip_stack_branch(struct om_sip_stack *s, char *out, size_t len)
{
	char h[17];
	hex64(next_id(s), h);
	snprintf(out, len, "z9hG4bK%s", h);
}

void om_sip_stack_tag(struct om_sip_stack *s, char *out, size_t len)
{
	char h[17];
	hex64(next_id(s), h);
	snprintf(out, len, "%s", h);
}

static const char *method_str(const struct om_sip_msg *m, enum om_sip_method as)
{
	(void)m;
	return om_sip_method_name(as);
}

/* peer|... prefix */
static void key_peer(struct om_buf *b, int64_t peer)
{
	om_buf_printf(b, "%lld|", (long long)peer);
}

static void add_lower(struct om_buf *b, struct om_str s)
{
	for (size_t i = 0; i < s.len; i++) {
		char c = s.p[i];
		if (c >= 'A' && c <= 'Z')
			c = (char)(c + 32);
		om_buf_add(b, &c, 1);
	}
}

/* §17.2.3: the server transaction key of request m, for method `as`
 * (INVITE for an ACK or CANCEL looking for their INVITE). */
static int stx_key(const struct om_sip_msg *m, const struct om_sip_dest *src, enum om_sip_method as,
                   struct om_buf *out)
{
	struct om_sip_via v;
	if (om_sip_msg_via_top(m, &v) != 0)
		return EINVAL;
	key_peer(out, src->peer_id);
	const char *mname = as == OM_SIP_METHOD_OTHER ? NULL : method_str(m, as);
	if (om_sip_via_branch_is_3261(&v)) {
		om_buf_adds(out, "B|");
		om_buf_addstr(out, v.branch);
		om_buf_adds(out, "|");
		add_lower(out, v.host);
		om_buf_printf(out, ":%u|", v.has_port ? v.port : 0);
	} else {
		struct om_sip_addr from;
		uint32_t cseq = 0;
		struct om_str cm;
		enum om_sip_method cmm;
		if (om_sip_msg_from(m, &from) != 0 || om_sip_msg_cseq(m, &cseq, &cm, &cmm) != 0)
			return EINVAL;
		om_buf_adds(out, "L|");
		om_buf_addstr(out, m->ruri);
		om_buf_adds(out, "|");
		om_buf_addstr(out, om_sip_msg_call_id(m));
		om_buf_adds(out, "|");
		om_buf_addstr(out, from.tag);
		om_buf_printf(out, "|%u|", (unsigned)cseq);
		om_buf_addstr(out, v.raw);
		om_buf_adds(out, "|");
	}
	if (mname)
		om_buf_adds(out, mname);
	else
		om_buf_addstr(out, m->method_name);
	return om_buf_err(out);
}

/* §8.2.2.2: Call-ID, From tag and CSeq of a request without To tag, per
 * peer (so no gateway can get another's request refused as "merged"). */
static int merge_key(const struct om_sip_msg *m, int64_t peer, struct om_buf *out)
{
	struct om_sip_addr from;
	uint32_t cseq;
	struct om_str cm;
	enum om_sip_method cmm;
	if (om_sip_msg_from(m, &from) != 0 || om_sip_msg_cseq(m, &cseq, &cm, &cmm) != 0)
		return EINVAL;
	key_peer(out, peer);
	om_buf_addstr(out, om_sip_msg_call_id(m));
	om_buf_adds(out, "|");
	om_buf_addstr(out, from.tag);
	om_buf_printf(out, "|%u|", (unsigned)cseq);
	om_buf_addstr(out, cm);
	return om_buf_err(out);
}

/* An ACK to a 2xx: peer, Call-ID, From tag, To tag, CSeq number. */
static void ack_key(struct om_buf *out, int64_t peer, struct om_str call_id, struct om_str ftag,
                    struct om_str ttag, uint32_t cseq)
{
	key_peer(out, peer);
	om_buf_addstr(out, call_id);
	om_buf_adds(out, "|");
	om_buf_addstr(out, ftag);
	om_buf_adds(out, "|");
	om_buf_addstr(out, ttag);
	om_buf_printf(out, "|%u", (unsigned)cseq);
}

static bool to_has_tag(const struct om_sip_msg *m, struct om_str *tag)
{
	struct om_sip_addr to;
	if (om_sip_msg_to(m, &to) != 0 || !to.has_tag || !to.tag.len)
		return false;
	if (tag)
		*tag = to.tag;
	return true;
}

static uint64_t hash_buf(const struct om_buf *b)
{
	return om_hash_bytes(0, b->p, b->len);
}

static bool buf_eq(const struct om_buf *b, const struct om_buf *k)
{
	return b->len == k->len && memcmp(b->p, k->p, b->len) == 0;
}

static bool stx_key_eq(const struct om_hnode *n, const void *k)
{
	return buf_eq(&om_container_of(n, struct om_sip_stx, n_key)->key, k);
}

static bool stx_mkey_eq(const struct om_hnode *n, const void *k)
{
	return buf_eq(&om_container_of(n, struct om_sip_stx, n_merge)->mkey, k);
}

static bool stx_akey_eq(const struct om_hnode *n, const void *k)
{
	return buf_eq(&om_container_of(n, struct om_sip_stx, n_ack)->akey, k);
}

static bool ctx_key_eq(const struct om_hnode *n, const void *k)
{
	return buf_eq(&om_container_of(n, struct om_sip_ctx, n_key)->key, k);
}

/* A copy of a message and its parse over the copy. */
static int msg_copy(const struct om_sip_msg *m, char **buf, struct om_sip_msg **out)
{
	enum om_sip_reason r;
	char *b = om_malloc(m->len ? m->len : 1);
	if (!b)
		return ENOMEM;
	memcpy(b, m->buf, m->len);
	int rc = om_sip_msg_parse(b, m->len, &m->limits, out, &r);
	if (rc) {
		om_free(b);
		return rc == EBADMSG ? EINVAL : rc;
	}
	*buf = b;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Server transactions                                                 */

static void stx_unref(struct om_sip_stx *t)
{
	if (--t->refs)
		return;
	struct om_sip_stack *s = t->s;
	if (t->prev)
		t->prev->next = t->next;
	else
		s->stxs = t->next;
	if (t->next)
		t->next->prev = t->prev;
	om_buf_free(&t->key);
	om_buf_free(&t->mkey);
	om_buf_free(&t->akey);
	om_sip_msg_free(t->req);
	om_free(t->buf);
	om_free(t->resp);
	om_free(t);
}

static void stx_terminate(struct om_sip_stx *t)
{
	struct om_sip_stack *s = t->s;
	if (t->state == STX_TERMINATED)
		return;
	t->state = STX_TERMINATED;
	om_sip_timer_stop(s, &t->tm);
	om_htab_del(&s->stx_key, &t->n_key);
	om_htab_del(&s->stx_merge, &t->n_merge);
	om_htab_del(&s->stx_ack, &t->n_ack);
	s->n_stx--;
	stx_unref(t);
}

static void stx_timer(struct om_sip_timer *tm, void *arg);

/* Arms the one timer for the earlier of the retransmission and the end. */
static void stx_arm(struct om_sip_stx *t)
{
	int64_t due = t->end_due;
	if (t->retx_due && (!due || t->retx_due < due))
		due = t->retx_due;
	if (!due) {
		om_sip_timer_stop(t->s, &t->tm);
		return;
	}
	int64_t d = due - now(t->s);
	timer_insert(t->s, &t->tm, d < 0 ? 0 : (uint64_t)d, stx_timer, t); /* room reserved */
}

static void stx_resend(struct om_sip_stx *t)
{
	if (t->resp)
		do_send(t->s, &t->src, t->resp, t->resp_len);
}

static void stx_timer(struct om_sip_timer *tm, void *arg)
{
	struct om_sip_stx *t = arg;
	struct om_sip_stack *s = t->s;
	int64_t n = now(s);
	(void)tm;
	if (t->retx_due && n >= t->retx_due &&
	    (t->state == STX_ACCEPTED ? !t->acked : t->state == STX_COMPLETED)) {
		/* Timer G, or the 2xx retransmission of §13.3.1.4. */
		stx_resend(t);
		if (t->state == STX_ACCEPTED)
			s->st.twoxx_retransmitted++;
		t->retx_ms = t->retx_ms * 2 > s->cfg.t2_ms ? s->cfg.t2_ms : t->retx_ms * 2;
		t->retx_due = n + t->retx_ms;
	}
	if (t->end_due && n >= t->end_due) {
		if (t->state == STX_ACCEPTED && !t->acked) {
			s->st.twoxx_no_ack++;
			t->refs++;
			if (t->tu && t->h && t->h->noack_h)
				t->h->noack_h(t, t->arg);
			stx_terminate(t);
			stx_unref(t);
			return;
		}
		stx_terminate(t); /* Timers H, I, J, L */
		return;
	}
	stx_arm(t);
}

void om_sip_stx_set_handlers(struct om_sip_stx *stx, const struct om_sip_stx_handlers *h, void *arg)
{
	stx->h = h;
	stx->arg = arg;
}

const struct om_sip_msg *om_sip_stx_request(const struct om_sip_stx *stx)
{
	return stx->req;
}

const struct om_sip_dest *om_sip_stx_src(const struct om_sip_stx *stx)
{
	return &stx->src;
}

const char *om_sip_stx_to_tag(struct om_sip_stx *stx)
{
	struct om_str tag;
	if (to_has_tag(stx->req, &tag))
		return NULL;
	if (!stx->totag[0])
		om_sip_stack_tag(stx->s, stx->totag, sizeof(stx->totag));
	return stx->totag;
}

int om_sip_stx_status(const struct om_sip_stx *stx)
{
	return stx->status;
}

void om_sip_stx_release(struct om_sip_stx *stx)
{
	if (!stx || !stx->tu)
		return;
	stx->tu = false;
	stx->h = NULL;
	stx->arg = NULL;
	stx_unref(stx);
}

static int stx_send_response(struct om_sip_stx *t, int status, const char *phrase,
                             const struct om_sip_resp_opts *opts)
{
	struct om_sip_stack *s = t->s;
	struct om_sip_resp_opts o = { 0 };
	struct om_buf out, extra;
	int rc;
	if (opts)
		o = *opts;
	if (status > 100) {
		if (o.to_tag && o.to_tag[0] && !t->totag[0] && strlen(o.to_tag) < sizeof(t->totag))
			snprintf(t->totag, sizeof(t->totag), "%s", o.to_tag);
		if (!t->totag[0])
			om_sip_stack_tag(s, t->totag, sizeof(t->totag));
		o.to_tag = t->totag;
	}
	om_buf_init(&extra);
	if (s->resp_extra)
		om_buf_adds(&extra, s->resp_extra);
	if (o.extra)
		om_buf_adds(&extra, o.extra);
	if (extra.len)
		o.extra = om_buf_cstr(&extra);
	if (om_buf_err(&extra)) {
		om_buf_free(&extra);
		return ENOMEM;
	}
	om_buf_init(&out);
	rc = om_sip_response_build(t->req, status, phrase, &o, &out);
	om_buf_free(&extra);
	if (rc) {
		om_buf_free(&out);
		return rc;
	}
	om_free(t->resp);
	t->resp = out.p; /* the buffer's ownership moves to the transaction */
	t->resp_len = out.len;
	t->status = status;
	do_send(s, &t->src, t->resp, t->resp_len);
	return 0;
}

int om_sip_stx_reply(struct om_sip_stx *stx, int status, const char *phrase,
                     const struct om_sip_resp_opts *opts)
{
	struct om_sip_stx *t = stx;
	struct om_sip_stack *s = t->s;
	bool invite = t->method == OM_SIP_METHOD_INVITE;
	struct om_str ttag = OM_STR_NULL;
	int rc;
	if (status < 100 || status > 699)
		return EINVAL;
	if (t->state != STX_TRYING && t->state != STX_PROCEEDING)
		return EALREADY;
	if (status > 100 && opts && opts->to_tag && opts->to_tag[0] && !t->totag[0] &&
	    strlen(opts->to_tag) < sizeof(t->totag))
		snprintf(t->totag, sizeof(t->totag), "%s", opts->to_tag);
	if (status > 100 && !t->totag[0])
		om_sip_stack_tag(s, t->totag, sizeof(t->totag));
	if (!to_has_tag(t->req, &ttag))
		ttag = om_str_c(t->totag);
	if (invite && status >= 200 && status < 300) {
		/* Index for the ACK before sending, so no failure after. */
		struct om_sip_addr from;
		uint32_t cseq;
		struct om_str cm;
		enum om_sip_method cmm;
		if (om_sip_msg_from(t->req, &from) != 0 ||
		    om_sip_msg_cseq(t->req, &cseq, &cm, &cmm) != 0)
			return EINVAL;
		om_buf_free(&t->akey);
		om_buf_init(&t->akey);
		ack_key(&t->akey, t->src.peer_id, om_sip_msg_call_id(t->req), from.tag, ttag, cseq);
		if (om_buf_err(&t->akey))
			return ENOMEM;
	}
	rc = stx_send_response(t, status, phrase, opts);
	if (rc)
		return rc;
	if (status < 200) {
		t->state = STX_PROCEEDING;
		return 0;
	}
	int64_t n = now(s);
	if (invite && status < 300) {
		t->state = STX_ACCEPTED;
		t->retx_ms = t1(s);
		t->retx_due = n + t->retx_ms;
		t->end_due = n + 64 * (int64_t)t1(s); /* Timer L and the ACK wait */
		om_htab_add(&s->stx_ack, &t->n_ack, hash_buf(&t->akey));
	} else if (invite) {
		t->state = STX_COMPLETED;
		t->retx_ms = t1(s);
		t->retx_due = t->src.reliable ? 0 : n + t->retx_ms; /* Timer G */
		t->end_due = n + 64 * (int64_t)t1(s);               /* Timer H */
	} else {
		t->state = STX_COMPLETED;
		t->retx_due = 0;
		t->end_due = t->src.reliable ? 0 : n + 64 * (int64_t)t1(s); /* Timer J */
		if (!t->end_due) {
			stx_terminate(t);
			return 0;
		}
	}
	stx_arm(t);
	return 0;
}

int om_sip_stack_reply_stateless(struct om_sip_stack *s, const struct om_sip_msg *req,
                                 const struct om_sip_dest *src, int status, const char *phrase,
                                 const char *extra)
{
	struct om_buf out, x;
	char tag[24];
	om_sip_stack_tag(s, tag, sizeof(tag));
	om_buf_init(&x);
	if (s->resp_extra)
		om_buf_adds(&x, s->resp_extra);
	if (extra)
		om_buf_adds(&x, extra);
	struct om_sip_resp_opts o = { .to_tag = tag, .extra = x.len ? om_buf_cstr(&x) : NULL };
	om_buf_init(&out);
	int rc = om_buf_err(&x) ? ENOMEM : om_sip_response_build(req, status, phrase, &o, &out);
	if (!rc)
		rc = do_send(s, src, out.p, out.len);
	om_buf_free(&out);
	om_buf_free(&x);
	return rc;
}

static struct om_sip_stx *stx_find(struct om_sip_stack *s, const struct om_buf *key)
{
	struct om_hnode *n = om_htab_find(&s->stx_key, hash_buf(key), stx_key_eq, key);
	return n ? om_container_of(n, struct om_sip_stx, n_key) : NULL;
}

/* An ACK: to a non-2xx (its INVITE transaction), to a 2xx (the INVITE
 * that waits for it), or neither (the TU's ack_h). */
static int recv_ack(struct om_sip_stack *s, const struct om_sip_msg *m,
                    const struct om_sip_dest *src)
{
	struct om_buf key;
	om_buf_init(&key);
	int krc = stx_key(m, src, OM_SIP_METHOD_INVITE, &key);
	if (krc == ENOMEM) {
		om_buf_free(&key);
		return ENOMEM;
	}
	if (krc == 0) {
		struct om_sip_stx *t = stx_find(s, &key);
		if (t && (t->state == STX_COMPLETED || t->state == STX_CONFIRMED)) {
			om_buf_free(&key);
			s->st.acks_non2xx++;
			if (t->state == STX_COMPLETED) {
				t->state = STX_CONFIRMED;
				t->retx_due = 0;
				if (t->src.reliable) {
					stx_terminate(t); /* Timer I = 0 */
				} else {
					t->end_due = now(s) + s->cfg.t4_ms;
					stx_arm(t);
				}
			}
			return 0;
		}
	}
	om_buf_free(&key);

	struct om_sip_addr from, to;
	uint32_t cseq;
	struct om_str cm;
	enum om_sip_method cmm;
	if (om_sip_msg_from(m, &from) == 0 && om_sip_msg_to(m, &to) == 0 && to.has_tag &&
	    om_sip_msg_cseq(m, &cseq, &cm, &cmm) == 0) {
		om_buf_init(&key);
		ack_key(&key, src->peer_id, om_sip_msg_call_id(m), from.tag, to.tag, cseq);
		if (om_buf_err(&key)) {
			om_buf_free(&key);
			return ENOMEM;
		}
		struct om_hnode *n = om_htab_find(&s->stx_ack, hash_buf(&key), stx_akey_eq, &key);
		om_buf_free(&key);
		if (n) {
			struct om_sip_stx *t = om_container_of(n, struct om_sip_stx, n_ack);
			s->st.acks_2xx++;
			if (t->acked)
				return 0; /* a retransmitted ACK */
			t->acked = true;
			t->retx_due = 0;
			t->refs++;
			if (t->tu && t->h && t->h->ack_h)
				t->h->ack_h(t, m, t->arg);
			if (t->state == STX_ACCEPTED) {
				if (t->src.reliable)
					stx_terminate(t);
				else
					stx_arm(t); /* absorbs INVITE retransmissions until L */
			}
			stx_unref(t);
			return 0;
		}
	}
	s->st.acks_stray++;
	if (s->h.ack_h)
		s->h.ack_h(m, src, s->h.arg);
	return 0;
}

/* §9.2: CANCEL is answered here without a transaction of its own (over a
 * reliable transport there are no retransmissions to absorb; a repeated
 * CANCEL over an unreliable one gets 200 again, which is what it needs). */
static int recv_cancel(struct om_sip_stack *s, const struct om_sip_msg *m,
                       const struct om_sip_dest *src)
{
	struct om_buf key;
	om_buf_init(&key);
	struct om_sip_stx *t = NULL;
	int krc = stx_key(m, src, OM_SIP_METHOD_INVITE, &key);
	if (krc == 0)
		t = stx_find(s, &key);
	om_buf_free(&key);
	if (krc == ENOMEM) {
		om_sip_stack_reply_stateless(s, m, src, 500, NULL, "Retry-After: 5\r\n");
		return ENOMEM;
	}
	if (!t || t->state == STX_TERMINATED) {
		s->st.cancels_unmatched++;
		return om_sip_stack_reply_stateless(s, m, src, 481, NULL, NULL);
	}
	s->st.cancels_matched++;
	om_sip_stack_reply_stateless(s, m, src, 200, NULL, NULL);
	if (t->state != STX_TRYING && t->state != STX_PROCEEDING)
		return 0; /* already answered: the CANCEL has no effect */
	t->refs++;
	int rc = om_sip_stx_reply(t, 487, NULL, NULL);
	if (rc == 0 && t->tu && t->h && t->h->cancel_h)
		t->h->cancel_h(t, t->arg);
	stx_unref(t);
	return rc == ENOMEM ? ENOMEM : 0;
}

static int stx_new(struct om_sip_stack *s, const struct om_sip_msg *m,
                   const struct om_sip_dest *src, struct om_buf *key, struct om_sip_stx **out)
{
	struct om_sip_stx *t = om_calloc(1, sizeof(*t));
	if (!t)
		return ENOMEM;
	int rc = msg_copy(m, &t->buf, &t->req);
	if (rc) {
		om_free(t);
		return rc;
	}
	if (heap_room(s, 1) != 0) {
		om_sip_msg_free(t->req);
		om_free(t->buf);
		om_free(t);
		return ENOMEM;
	}
	t->s = s;
	t->refs = 2; /* the state machine and the TU */
	t->tu = true;
	t->method = m->method;
	t->src = *src;
	t->key = *key; /* moved */
	om_buf_init(key);
	om_buf_init(&t->mkey);
	om_buf_init(&t->akey);
	t->state = STX_TRYING;
	t->next = s->stxs;
	if (s->stxs)
		s->stxs->prev = t;
	s->stxs = t;
	s->n_stx++;
	om_htab_add(&s->stx_key, &t->n_key, hash_buf(&t->key));
	*out = t;
	return 0;
}

static int recv_request(struct om_sip_stack *s, const struct om_sip_msg *m,
                        const struct om_sip_dest *src)
{
	struct om_buf key;
	int rc;
	if (m->method == OM_SIP_METHOD_ACK)
		return recv_ack(s, m, src);
	if (m->method == OM_SIP_METHOD_CANCEL)
		return recv_cancel(s, m, src);
	om_buf_init(&key);
	rc = stx_key(m, src, m->method, &key);
	if (rc) {
		om_buf_free(&key);
		return rc == ENOMEM ? ENOMEM : 0; /* the caller validated it: no Via cannot be */
	}
	struct om_sip_stx *t = stx_find(s, &key);
	if (t) {
		/* A retransmission (§17.2.1, §17.2.2). */
		om_buf_free(&key);
		if (t->state == STX_TRYING || t->state == STX_ACCEPTED ||
		    t->state == STX_CONFIRMED) {
			s->st.retransmissions_absorbed++;
		} else {
			s->st.responses_resent++;
			stx_resend(t);
		}
		return 0;
	}
	s->st.requests++;
	if (s->n_stx >= s->cfg.max_server_txn) {
		om_buf_free(&key);
		s->st.stateless_503++;
		om_sip_stack_reply_stateless(s, m, src, 503, NULL, "Retry-After: 10\r\n");
		return 0;
	}
	rc = stx_new(s, m, src, &key, &t);
	om_buf_free(&key);
	if (rc) {
		if (rc == ENOMEM)
			om_sip_stack_reply_stateless(s, m, src, 500, NULL, "Retry-After: 5\r\n");
		return rc == ENOMEM ? ENOMEM : 0;
	}
	bool out_of_dialog = !to_has_tag(t->req, NULL);
	if (out_of_dialog && merge_key(t->req, src->peer_id, &t->mkey) == 0) {
		struct om_hnode *n =
		    om_htab_find(&s->stx_merge, hash_buf(&t->mkey), stx_mkey_eq, &t->mkey);
		if (n) {
			/* Same Call-ID, From tag and CSeq, another branch: the
			 * request reached us twice by different paths. */
			s->st.merged_482++;
			om_sip_stx_reply(t, 482, NULL, NULL);
			om_sip_stx_release(t);
			return 0;
		}
		om_htab_add(&s->stx_merge, &t->n_merge, hash_buf(&t->mkey));
	}
	unsigned mf;
	if (t->method == OM_SIP_METHOD_INVITE && out_of_dialog &&
	    om_sip_msg_max_forwards(t->req, &mf) == 0 && mf == 0) {
		s->st.loops_483++;
		om_sip_stx_reply(t, 483, NULL, NULL);
		om_sip_stx_release(t);
		return 0;
	}
	if (t->method == OM_SIP_METHOD_INVITE)
		om_sip_stx_reply(t, 100, NULL, NULL); /* §17.2.1: at once */
	s->h.request_h(t, t->req, s->h.arg);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Client transactions                                                 */

static void ctx_unref(struct om_sip_ctx *c)
{
	if (--c->refs)
		return;
	struct om_sip_stack *s = c->s;
	if (c->prev)
		c->prev->next = c->next;
	else
		s->ctxs = c->next;
	if (c->next)
		c->next->prev = c->prev;
	om_buf_free(&c->key);
	om_sip_msg_free(c->req);
	om_free(c->buf);
	om_free(c->ack);
	om_free(c);
}

static void ctx_terminate(struct om_sip_ctx *c)
{
	if (c->state == CTX_TERMINATED)
		return;
	c->state = CTX_TERMINATED;
	om_sip_timer_stop(c->s, &c->tm);
	om_htab_del(&c->s->ctx_key, &c->n_key);
	c->s->n_ctx--;
	ctx_unref(c);
}

static void ctx_timer(struct om_sip_timer *tm, void *arg);

static void ctx_arm(struct om_sip_ctx *c)
{
	int64_t due = c->end_due;
	if (c->retx_due && (!due || c->retx_due < due))
		due = c->retx_due;
	if (!due) {
		om_sip_timer_stop(c->s, &c->tm);
		return;
	}
	int64_t d = due - now(c->s);
	timer_insert(c->s, &c->tm, d < 0 ? 0 : (uint64_t)d, ctx_timer, c); /* room reserved */
}

static void ctx_callback(struct om_sip_ctx *c, int err, const struct om_sip_msg *resp)
{
	if (c->h && (c->tu || !resp || resp->status >= 200))
		c->h(c, err, resp, c->arg);
}

static void ctx_timer(struct om_sip_timer *tm, void *arg)
{
	struct om_sip_ctx *c = arg;
	struct om_sip_stack *s = c->s;
	int64_t n = now(s);
	(void)tm;
	if (c->retx_due && n >= c->retx_due &&
	    (c->state == CTX_CALLING || c->state == CTX_PROCEEDING)) {
		/* Timers A and E (unreliable transports only). */
		do_send(s, &c->dest, c->buf, c->len);
		uint32_t next = c->retx_ms * 2;
		if (c->method != OM_SIP_METHOD_INVITE &&
		    (c->state == CTX_PROCEEDING || next > s->cfg.t2_ms))
			next = s->cfg.t2_ms;
		c->retx_ms = next;
		c->retx_due = n + next;
	}
	if (c->end_due && n >= c->end_due) {
		c->refs++;
		if (c->state == CTX_CALLING || c->state == CTX_PROCEEDING) {
			s->st.client_timeouts++; /* Timers B and F */
			if (c->tu)
				ctx_callback(c, ETIMEDOUT, NULL);
		}
		ctx_terminate(c); /* and Timers D, K, M */
		ctx_unref(c);
		return;
	}
	ctx_arm(c);
}

static void hdr_copy(struct om_buf *b, const struct om_sip_msg *m, enum om_sip_hdr_id id,
                     const char *name)
{
	for (const struct om_sip_hdr *h = om_sip_msg_hdr(m, id); h; h = om_sip_msg_hdr_next(m, h)) {
		om_buf_printf(b, "%s: ", name);
		for (size_t i = 0; i < h->value.len; i++)
			if (h->value.p[i] != '\r' && h->value.p[i] != '\n')
				om_buf_add(b, &h->value.p[i], 1);
		om_buf_adds(b, "\r\n");
	}
}

static void first_value(struct om_buf *b, const struct om_sip_msg *m, enum om_sip_hdr_id id,
                        const char *name)
{
	struct om_sip_iter it = { 0 };
	struct om_str v;
	if (om_sip_msg_list_next(m, id, &it, &v) == 0) {
		om_buf_printf(b, "%s: ", name);
		om_buf_addstr(b, v);
		om_buf_adds(b, "\r\n");
	}
}

/* §17.1.1.3 (ACK to a non-2xx) and §9.1 (CANCEL): Request-URI, top Via,
 * Call-ID, From, CSeq number and Route of the INVITE; To of the response
 * (ACK) or of the INVITE (CANCEL). */
static int build_ack_or_cancel(const struct om_sip_msg *inv, const struct om_sip_msg *resp,
                               enum om_sip_method m, struct om_buf *b)
{
	uint32_t cseq;
	struct om_str cm;
	enum om_sip_method cmm;
	if (om_sip_msg_cseq(inv, &cseq, &cm, &cmm) != 0)
		return EINVAL;
	om_buf_printf(b, "%s ", om_sip_method_name(m));
	om_buf_addstr(b, inv->ruri);
	om_buf_adds(b, " SIP/2.0\r\n");
	first_value(b, inv, OM_SIP_HDR_VIA, "Via");
	om_buf_adds(b, "Max-Forwards: 70\r\n");
	hdr_copy(b, inv, OM_SIP_HDR_FROM, "From");
	hdr_copy(b, resp ? resp : inv, OM_SIP_HDR_TO, "To");
	hdr_copy(b, inv, OM_SIP_HDR_CALL_ID, "Call-ID");
	om_buf_printf(b, "CSeq: %u %s\r\n", (unsigned)cseq, om_sip_method_name(m));
	hdr_copy(b, inv, OM_SIP_HDR_ROUTE, "Route");
	om_buf_adds(b, "Content-Length: 0\r\n\r\n");
	return om_buf_err(b);
}

static int ctx_create(struct om_sip_stack *s, const struct om_sip_dest *d, const char *req,
                      size_t len, om_sip_resp_h h, void *arg, bool tu, struct om_sip_ctx **out)
{
	struct om_sip_ctx *c = om_calloc(1, sizeof(*c));
	enum om_sip_reason r;
	struct om_sip_via v;
	int rc = ENOMEM;
	if (!c)
		return ENOMEM;
	om_buf_init(&c->key);
	c->buf = om_malloc(len ? len : 1);
	if (!c->buf)
		goto fail;
	memcpy(c->buf, req, len);
	c->len = len;
	rc = om_sip_msg_parse(c->buf, len, NULL, &c->req, &r);
	if (rc) {
		rc = rc == EBADMSG ? EINVAL : rc;
		goto fail;
	}
	rc = EINVAL;
	if (!c->req->is_request || c->req->method == OM_SIP_METHOD_ACK ||
	    c->req->method == OM_SIP_METHOD_OTHER || om_sip_msg_via_top(c->req, &v) != 0 ||
	    !om_sip_via_branch_is_3261(&v))
		goto fail;
	key_peer(&c->key, d->peer_id);
	om_buf_addstr(&c->key, v.branch);
	om_buf_printf(&c->key, "|%s", om_sip_method_name(c->req->method));
	if (om_buf_err(&c->key)) {
		rc = ENOMEM;
		goto fail;
	}
	if (heap_room(s, 1) != 0) {
		rc = ENOMEM;
		goto fail;
	}
	c->s = s;
	c->refs = tu ? 2 : 1;
	c->tu = tu;
	c->method = c->req->method;
	c->dest = *d;
	c->h = h;
	c->arg = arg;
	c->state = CTX_CALLING;
	int64_t n = now(s);
	c->retx_ms = s->cfg.t1_ms;
	c->retx_due = d->reliable ? 0 : n + c->retx_ms;
	c->end_due = n + 64 * (int64_t)s->cfg.t1_ms;
	c->next = s->ctxs;
	if (s->ctxs)
		s->ctxs->prev = c;
	s->ctxs = c;
	s->n_ctx++;
	om_htab_add(&s->ctx_key, &c->n_key, hash_buf(&c->key));
	do_send(s, d, c->buf, c->len);
	if (out)
		*out = c;
	c->refs++;
	ctx_arm(c);
	ctx_unref(c);
	return 0;
fail:
	om_buf_free(&c->key);
	om_sip_msg_free(c->req);
	om_free(c->buf);
	om_free(c);
	return rc;
}

int om_sip_ctx_send(struct om_sip_stack *s, const struct om_sip_dest *d, const char *req,
                    size_t len, om_sip_resp_h h, void *arg, struct om_sip_ctx **out)
{
	return ctx_create(s, d, req, len, h, arg, out != NULL, out);
}

static int ctx_send_cancel(struct om_sip_ctx *c)
{
	struct om_buf b;
	om_buf_init(&b);
	int rc = build_ack_or_cancel(c->req, NULL, OM_SIP_METHOD_CANCEL, &b);
	if (!rc)
		rc = ctx_create(c->s, &c->dest, b.p, b.len, NULL, NULL, false, NULL);
	om_buf_free(&b);
	if (!rc)
		c->cancel_sent = true;
	return rc;
}

int om_sip_ctx_cancel(struct om_sip_ctx *c)
{
	if (c->method != OM_SIP_METHOD_INVITE)
		return EINVAL;
	if (c->state != CTX_CALLING && c->state != CTX_PROCEEDING)
		return EALREADY;
	if (c->cancel_sent || c->cancel_wanted)
		return 0;
	if (c->state == CTX_CALLING) {
		c->cancel_wanted = true; /* §9.1: not before a provisional */
		return 0;
	}
	return ctx_send_cancel(c);
}

const struct om_sip_msg *om_sip_ctx_request(const struct om_sip_ctx *ctx)
{
	return ctx->req;
}

void om_sip_ctx_release(struct om_sip_ctx *ctx)
{
	if (!ctx || !ctx->tu)
		return;
	ctx->tu = false;
	ctx->h = NULL;
	ctx->arg = NULL;
	ctx_unref(ctx);
}

static int recv_response(struct om_sip_stack *s, const struct om_sip_msg *m,
                         const struct om_sip_dest *src)
{
	struct om_sip_via v;
	uint32_t cseq;
	struct om_str cm;
	enum om_sip_method cmm;
	struct om_buf key;
	if (om_sip_msg_via_top(m, &v) != 0 || !v.has_branch ||
	    om_sip_msg_cseq(m, &cseq, &cm, &cmm) != 0 || cmm == OM_SIP_METHOD_OTHER) {
		s->st.responses_stray++;
		return 0;
	}
	om_buf_init(&key);
	key_peer(&key, src->peer_id);
	om_buf_addstr(&key, v.branch);
	om_buf_printf(&key, "|%s", om_sip_method_name(cmm));
	if (om_buf_err(&key)) {
		om_buf_free(&key);
		return ENOMEM;
	}
	struct om_hnode *n = om_htab_find(&s->ctx_key, hash_buf(&key), ctx_key_eq, &key);
	om_buf_free(&key);
	if (!n) {
		s->st.responses_stray++;
		return 0;
	}
	struct om_sip_ctx *c = om_container_of(n, struct om_sip_ctx, n_key);
	int64_t t_now = now(s);
	c->refs++;
	if (m->status < 200) {
		if (c->state == CTX_CALLING || c->state == CTX_PROCEEDING) {
			c->state = CTX_PROCEEDING;
			if (c->method == OM_SIP_METHOD_INVITE) {
				c->retx_due = 0; /* Timer A stops; no Timer B in Proceeding */
				c->end_due = 0;
			} else if (c->retx_due) {
				c->retx_ms = s->cfg.t2_ms;
			}
			ctx_arm(c);
			if (c->state == CTX_PROCEEDING && c->tu)
				ctx_callback(c, 0, m);
			if (c->cancel_wanted && !c->cancel_sent && c->state == CTX_PROCEEDING) {
				c->cancel_wanted = false;
				ctx_send_cancel(c);
			}
		}
	} else if (c->method == OM_SIP_METHOD_INVITE && m->status < 300) {
		if (c->state == CTX_CALLING || c->state == CTX_PROCEEDING) {
			c->state = CTX_ACCEPTED;
			c->retx_due = 0;
			c->end_due = t_now + 64 * (int64_t)s->cfg.t1_ms; /* Timer M */
			ctx_arm(c);
			ctx_callback(c, 0, m);
		} else if (c->state == CTX_ACCEPTED) {
			ctx_callback(c, 0, m); /* the TU re-sends its ACK */
		}
	} else if (c->method == OM_SIP_METHOD_INVITE) {
		if (c->state == CTX_CALLING || c->state == CTX_PROCEEDING) {
			struct om_buf ack;
			om_buf_init(&ack);
			if (build_ack_or_cancel(c->req, m, OM_SIP_METHOD_ACK, &ack) == 0) {
				do_send(s, &c->dest, ack.p, ack.len);
				om_free(c->ack);
				c->ack = ack.p;
				c->ack_len = ack.len;
				om_buf_init(&ack);
			}
			om_buf_free(&ack);
			c->state = CTX_COMPLETED;
			c->retx_due = 0;
			c->end_due = c->dest.reliable ? 0 : t_now + 32000; /* Timer D */
			ctx_callback(c, 0, m);
			if (!c->end_due)
				ctx_terminate(c);
			else
				ctx_arm(c);
		} else if (c->state == CTX_COMPLETED && c->ack) {
			do_send(s, &c->dest, c->ack, c->ack_len);
		}
	} else {
		if (c->state == CTX_CALLING || c->state == CTX_PROCEEDING) {
			c->state = CTX_COMPLETED;
			c->retx_due = 0;
			c->end_due = c->dest.reliable ? 0 : t_now + s->cfg.t4_ms; /* Timer K */
			ctx_callback(c, 0, m);
			if (!c->end_due)
				ctx_terminate(c);
			else
				ctx_arm(c);
		}
	}
	ctx_unref(c);
	return 0;
}

/* ------------------------------------------------------------------ */
/* The stack                                                           */

int om_sip_stack_recv(struct om_sip_stack *s, const struct om_sip_msg *m,
                      const struct om_sip_dest *src)
{
	if (!m->is_request)
		return recv_response(s, m, src);
	return recv_request(s, m, src);
}

int om_sip_stack_new(const struct om_sip_stack_cfg *cfg, const struct om_sip_stack_handlers *h,
                     struct om_sip_stack **out)
{
	if (!h || !h->send_h || !h->now_h || !h->request_h)
		return EINVAL;
	struct om_sip_stack *s = om_calloc(1, sizeof(*s));
	if (!s)
		return ENOMEM;
	if (cfg)
		s->cfg = *cfg;
	if (!s->cfg.t1_ms)
		s->cfg.t1_ms = 500;
	if (!s->cfg.t2_ms)
		s->cfg.t2_ms = 4000;
	if (!s->cfg.t4_ms)
		s->cfg.t4_ms = 5000;
	if (!s->cfg.max_server_txn)
		s->cfg.max_server_txn = 4096;
	s->h = *h;
	s->reported_due = -1;
	if ((s->cfg.via_sent_by && !(s->via_sent_by = om_strdup(s->cfg.via_sent_by))) ||
	    (s->cfg.resp_extra && !(s->resp_extra = om_strdup(s->cfg.resp_extra))) ||
	    om_htab_init(&s->stx_key, 256) || om_htab_init(&s->stx_merge, 256) ||
	    om_htab_init(&s->stx_ack, 256) || om_htab_init(&s->ctx_key, 64)) {
		om_sip_stack_free(s);
		return ENOMEM;
	}
	s->cfg.via_sent_by = s->via_sent_by;
	s->cfg.resp_extra = s->resp_extra;
	if (getrandom(&s->rnd, sizeof(s->rnd), GRND_NONBLOCK) != sizeof(s->rnd))
		s->rnd = (uint64_t)(uintptr_t)s ^ (uint64_t)now(s) * 0x9e3779b97f4a7c15ull;
	*out = s;
	return 0;
}

void om_sip_stack_free(struct om_sip_stack *s)
{
	if (!s)
		return;
	while (s->stxs) {
		struct om_sip_stx *t = s->stxs;
		t->refs = 1;
		t->state = STX_TERMINATED;
		t->tm.idx = 0;
		stx_unref(t);
	}
	while (s->ctxs) {
		struct om_sip_ctx *c = s->ctxs;
		c->refs = 1;
		c->tm.idx = 0;
		ctx_unref(c);
	}
	om_htab_fini(&s->stx_key);
	om_htab_fini(&s->stx_merge);
	om_htab_fini(&s->stx_ack);
	om_htab_fini(&s->ctx_key);
	om_free(s->heap);
	om_free(s->via_sent_by);
	om_free(s->resp_extra);
	om_free(s);
}

void om_sip_stack_stats(const struct om_sip_stack *s, struct om_sip_stack_stats *st)
{
	*st = s->st;
	st->server_txn = s->n_stx;
	st->client_txn = s->n_ctx;
}

const struct om_sip_stack_cfg *om_sip_stack_cfg(const struct om_sip_stack *s)
{
	return &s->cfg;
}
