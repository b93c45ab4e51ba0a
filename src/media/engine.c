/* engine.c — the control thread's side of the media engine: starting and
 * stopping the threads, RTP ports, sessions (new, modify, play, record,
 * DTMF from SIP INFO, free), master keys, and the events that come back.
 *
 * Nothing here blocks: sockets are bound synchronously (bind(2) on a
 * non-blocking UDP socket does not wait), everything else is a message to
 * a media thread or the spool writer. Events come back through one queue
 * and one uv_async on the control loop, and are delivered in order.
 *
 *   RFC 3550 §11   RTP on an even port, RTCP on the next (odd) one
 *   RFC 5761       with rtcp-mux, no RTCP socket
 *   RFC 3711 §9.2  keys: master keys and MKIs are kept in memory that is
 *                  excluded from core dumps (MADV_DONTDUMP) and cleansed
 *                  (OPENSSL_cleanse) when the session ends */
#include <errno.h>
#include <math.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "core/alloc.h"
#include "core/events.h"
#include "core/log.h"
#include "media/media.h"
#include "media/media_int.h"

/* ------------------------------------------------------------------ keys */

/* Master keys of one session: in pages marked MADV_DONTDUMP, so a core
 * dump never holds them; cleansed when the session ends. */
struct keyslot {
	enum om_srtp_suite suite;
	bool srtp;
	struct om_media_key rx, tx;
	struct keyslot *next_free;
};

#define KEYPAGE_BYTES (64 * 1024)

struct keypage {
	struct keypage *next;
	size_t bytes;
};

struct keyarena {
	struct keypage *pages;
	struct keyslot *free;
};

static int keyarena_grow(struct keyarena *a)
{
	void *m =
	    mmap(NULL, KEYPAGE_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		return ENOMEM;
	(void)madvise(m, KEYPAGE_BYTES, MADV_DONTDUMP);
	struct keypage *pg = m;
	pg->bytes = KEYPAGE_BYTES;
	pg->next = a->pages;
	a->pages = pg;
	size_t first =
	    (sizeof(*pg) + _Alignof(struct keyslot) - 1) & ~(_Alignof(struct keyslot) - 1);
	for (size_t off = first; off + sizeof(struct keyslot) <= KEYPAGE_BYTES;
	     off += sizeof(struct keyslot)) {
		struct keyslot *k = (struct keyslot *)((char *)m + off);
		k->next_free = a->free;
		a->free = k;
	}
	return 0;
}

static struct keyslot *key_get(struct keyarena *a)
{
	if (!a->free && keyarena_grow(a) != 0)
		return NULL;
	struct keyslot *k = a->free;
	a->free = k->next_free;
	memset(k, 0, sizeof(*k));
	return k;
}

static void key_put(struct keyarena *a, struct keyslot *k)
{
	if (!k)
		return;
	OPENSSL_cleanse(k, sizeof(*k));
	k->next_free = a->free;
	a->free = k;
}

static void keyarena_free(struct keyarena *a)
{
	while (a->pages) {
		struct keypage *pg = a->pages;
		a->pages = pg->next;
		size_t bytes = pg->bytes;
		OPENSSL_cleanse(pg, bytes);
		munmap(pg, bytes);
	}
	a->free = NULL;
}

/* ------------------------------------------------------------------ ports */

static int port_bind(int family, const struct sockaddr_storage *local, uint16_t port, int *fd)
{
	struct sockaddr_storage a = *local;
	socklen_t len;
	if (family == AF_INET) {
		((struct sockaddr_in *)&a)->sin_port = htons(port);
		len = sizeof(struct sockaddr_in);
	} else {
		((struct sockaddr_in6 *)&a)->sin6_port = htons(port);
		len = sizeof(struct sockaddr_in6);
	}
	int s = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s < 0)
		return errno;
	if (family == AF_INET6) {
		int on = 1;
		(void)setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on));
	}
	if (bind(s, (struct sockaddr *)&a, len) != 0) {
		int err = errno;
		close(s);
		return err;
	}
	*fd = s;
	return 0;
}

/* Takes the next free even port (after the last one handed out, so a port
 * just released is not reused at once and a late packet of the previous
 * call cannot land in the next) and binds RTP (and RTCP). */
static int ports_take(struct om_media_engine *e, int family, const struct sockaddr_storage *local,
                      bool mux, uint16_t *port, int *fd_rtp, int *fd_rtcp)
{
	for (unsigned tries = 0; tries < e->npairs && e->nfree > 0; tries++) {
		unsigned i = e->cursor;
		e->cursor = (e->cursor + 1) % e->npairs;
		if (e->pair_used[i])
			continue;
		uint16_t p = (uint16_t)(e->port_min + 2 * i);
		int a = -1, b = -1, err = port_bind(family, local, p, &a);
		if (!err && !mux && (err = port_bind(family, local, (uint16_t)(p + 1), &b)) != 0)
			close(a);
		if (err == EADDRINUSE)
			continue; /* someone else's: try the next pair */
		if (err)
			return err;
		e->pair_used[i] = 1;
		e->nfree--;
		*port = p;
		*fd_rtp = a;
		*fd_rtcp = b;
		return 0;
	}
	return EADDRINUSE;
}

static void ports_release(struct om_media_engine *e, uint16_t port)
{
	unsigned i = (unsigned)(port - e->port_min) / 2;
	if (i < e->npairs && e->pair_used[i]) {
		e->pair_used[i] = 0;
		e->nfree++;
	}
}

/* ---------------------------------------------------------------- events */

void om_media_emit(struct om_media_engine *e, struct evnode *n)
{
	om_mq_push(&e->events, &n->node);
	uv_async_send(e->async);
}

static void engine_finish(struct om_media_engine *e);

static void session_closed(struct om_media_engine *e, struct om_media_session *s)
{
	struct om_media_stats *t = &e->closed_totals;
	const struct om_media_stats *x = &s->closed.ev.u.stats;
	t->rtp_in += x->rtp_in;
	t->rtp_out += x->rtp_out;
	t->rtcp_in += x->rtcp_in;
	t->rtcp_out += x->rtcp_out;
	t->bytes_in += x->bytes_in;
	t->lost += x->lost;
	t->late += x->late;
	t->duplicates += x->duplicates;
	t->strangers += x->strangers;
	t->malformed += x->malformed;
	t->srtp_auth += x->srtp_auth;
	t->srtp_replay += x->srtp_replay;
	t->send_errors += x->send_errors;
	t->ssrc_changes += x->ssrc_changes;
	ports_release(e, s->port);
	e->nsessions--;
	s->t->nsessions--;
	key_put(e->keys, s->keys);
	s->keys = NULL;
	s->closed_done = true;
}

static void session_unlink_free(struct om_media_engine *e, struct om_media_session *s)
{
	if (s->prev)
		s->prev->next = s->next;
	else
		e->sessions = s->next;
	if (s->next)
		s->next->prev = s->prev;
	om_free(s);
}

static void log_event(struct om_media_engine *e, const struct om_media_event *ev)
{
	struct om_media_session *s = ev->session;
	char a[32], b[32];
	switch (ev->type) {
	case OM_MEDIA_EV_SRTP_FAIL:
		snprintf(a, sizeof(a), "%llu", (unsigned long long)ev->u.srtp.auth);
		snprintf(b, sizeof(b), "%llu", (unsigned long long)ev->u.srtp.replay);
		om_event(OM_EV_SRTP_AUTH_FAIL, s->call_id, "SRTP authentication or replay failures",
		         "call_id", s->call_id, "auth_failures", a, "replays", b, NULL);
		break;
	case OM_MEDIA_EV_TIMEOUT:
		snprintf(a, sizeof(a), "%u", e->rtp_timeout_ms / 1000);
		om_event(OM_EV_RTP_TIMEOUT, s->call_id, "no RTP or RTCP received", "call_id",
		         s->call_id, "seconds", a, NULL);
		break;
	case OM_MEDIA_EV_STRANGERS:
		snprintf(a, sizeof(a), "%llu", (unsigned long long)ev->u.strangers.count);
		om_event(OM_EV_MEDIA_STRANGER, s->call_id,
		         "RTP/RTCP from an address the SDP does not name dropped", "call_id",
		         s->call_id, "from", ev->u.strangers.from, "packets", a, NULL);
		break;
	case OM_MEDIA_EV_RECORD_STOPPED:
		if (ev->u.record.error) {
			snprintf(a, sizeof(a), "%llu", (unsigned long long)ev->u.record.bytes);
			om_event(OM_EV_RECORDING_WRITE_FAILED, s->call_id,
			         "recording stopped: the spool could not be written", "call_id",
			         s->call_id, "error", strerror(ev->u.record.error), "bytes", a,
			         NULL);
		}
		break;
	default:
		break;
	}
}

static void on_events(uv_async_t *h)
{
	struct om_media_engine *e = h->data;
	struct om_mq_node *n = om_mq_take(&e->events);
	while (n) {
		struct evnode *en = (struct evnode *)n;
		n = n->next;
		if (en->kind == EVK_THREAD_DONE) {
			struct mthread *t = en->thread;
			uv_thread_join(&t->tid);
			t->started = false;
			if (++e->threads_done == e->nthreads) {
				e->quit_msg.type = W_QUIT;
				om_media_spool_send(e->sp, &e->quit_msg);
			}
			continue;
		}
		if (en->kind == EVK_WRITER_DONE) {
			engine_finish(e);
			return; /* e is closing; nothing else follows */
		}
		struct om_media_event *ev = &en->ev;
		struct om_media_session *s = ev->session;
		log_event(e, ev);
		if (ev->type == OM_MEDIA_EV_RECORD_STOPPED) {
			s->recording = false;
			e->recordings--;
		}
		if (ev->type == OM_MEDIA_EV_CLOSED) {
			session_closed(e, s);
			e->h(ev, e->arg);
			/* The event node lives inside the session. A session that
			 * ended without om_media_session_free (engine closing,
			 * start failure) waits for it, or for the engine's end. */
			if (s->freed)
				session_unlink_free(e, s);
			continue;
		}
		e->h(ev, e->arg);
		om_free(en);
	}
}

/* ---------------------------------------------------------------- engine */

void om_media_post(struct mthread *t, struct cmd *c)
{
	om_mq_push(&t->cmds, &c->node);
	uv_async_send(&t->async);
}

static void prompt_report(const char *name, const char *path, const char *error, void *arg)
{
	(void)arg;
	if (error)
		om_event(OM_EV_PROMPT_UNUSABLE, "server",
		         "a prompt file could not be used; the built-in one plays", "prompt", name,
		         "path", path, "error", error, NULL);
	else
		om_log(OM_LOG_INFO, "prompt replaced by an administrator's file", "prompt", name,
		       "path", path, NULL);
}

static void engine_free(struct om_media_engine *e)
{
	if (!e)
		return;
	if (e->keys) {
		keyarena_free(e->keys);
		om_free(e->keys);
	}
	om_free(e->threads);
	om_free(e->pair_used);
	om_free(e->spool_dir);
	om_media_prompts_unref(e->prompts);
	om_free(e);
}

static void handle_free(uv_handle_t *h)
{
	om_free(h);
}

static void async_closed(uv_handle_t *h)
{
	struct om_media_engine *e = h->data;
	om_free(h);
	om_media_done_h done = e->done_h;
	void *arg = e->done_arg;
	engine_free(e);
	if (done)
		done(arg);
}

static void engine_finish(struct om_media_engine *e)
{
	while (e->sessions)
		session_unlink_free(e, e->sessions);
	om_media_spool_free(e->sp);
	e->sp = NULL;
	/* Events pushed after the writer's last one cannot exist: every thread
	 * has ended. Close the async; done() runs in its close callback. */
	uv_close((uv_handle_t *)e->async, async_closed);
}

int om_media_engine_new(uv_loop_t *control, const struct om_media_engine_cfg *cfg,
                        om_media_event_h h, void *arg, struct om_media_engine **out)
{
	if (!control || !cfg || !h || !cfg->spool_dir || cfg->port_min < 1024 ||
	    cfg->port_max < cfg->port_min + 1 || cfg->threads > 256)
		return EINVAL;
	om_media_g711_init();
	struct om_media_engine *e = om_calloc(1, sizeof(*e));
	int err = ENOMEM;
	if (!e)
		return ENOMEM;
	e->loop = control;
	e->h = h;
	e->arg = arg;
	e->backend = cfg->srtp_backend;
	e->rtp_timeout_ms = cfg->rtp_timeout_ms ? cfg->rtp_timeout_ms : 30000;
	e->flush_ms = cfg->spool_flush_ms ? cfg->spool_flush_ms : 250;
	e->sync_ms = cfg->spool_sync_ms ? cfg->spool_sync_ms : 5000;
	e->queue_max = cfg->spool_queue_max ? cfg->spool_queue_max : (size_t)256 << 20;
	e->port_min = (uint16_t)((cfg->port_min + 1) & ~1u);
	e->npairs = (unsigned)(cfg->port_max - e->port_min + 1) / 2;
	if (e->npairs == 0) {
		err = EINVAL;
		goto fail;
	}
	e->nfree = e->npairs;
	unsigned r = 0;
	(void)getrandom(&r, sizeof(r), 0);
	e->cursor = r % e->npairs;
	if (!(e->pair_used = om_calloc(e->npairs, 1)) ||
	    !(e->spool_dir = om_strdup(cfg->spool_dir)) ||
	    !(e->keys = om_calloc(1, sizeof(*e->keys))))
		goto fail;
	if (cfg->prompts) {
		e->prompts = om_media_prompts_ref(cfg->prompts);
	} else if ((err = om_media_prompts_load(cfg->prompts_dir, prompt_report, NULL,
	                                        &e->prompts)) != 0) {
		goto fail;
	}
	e->nthreads = cfg->threads;
	if (e->nthreads == 0) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		e->nthreads = n > 0 && n <= 256 ? (unsigned)n : 1;
	}
	err = ENOMEM;
	if (!(e->threads = om_calloc(e->nthreads, sizeof(*e->threads))) ||
	    !(e->async = om_calloc(1, sizeof(*e->async))))
		goto fail;
	if ((err = uv_async_init(control, e->async, on_events)) != 0) {
		om_free(e->async);
		e->async = NULL;
		err = -err;
		goto fail;
	}
	e->async->data = e;
	if ((err = om_media_spool_new(e->spool_dir, e->sync_ms, cfg->write_h, cfg->write_arg,
	                              &e->events, e->async, &e->sp)) != 0)
		goto fail_async;
	for (unsigned i = 0; i < e->nthreads; i++) {
		e->threads[i].e = e;
		e->threads[i].idx = i;
		if ((err = om_media_thread_start(&e->threads[i])) != 0) {
			/* Stop what started; the rest of the close is asynchronous. */
			e->nthreads = i;
			om_media_engine_close(e, NULL, NULL);
			return err;
		}
	}
	*out = e;
	return 0;
fail_async:
	uv_close((uv_handle_t *)e->async, handle_free);
	e->async = NULL;
fail:
	engine_free(e);
	return err;
}

void om_media_engine_close(struct om_media_engine *e, om_media_done_h done, void *arg)
{
	e->closing = true;
	e->done_h = done;
	e->done_arg = arg;
	if (e->nthreads == 0) {
		e->quit_msg.type = W_QUIT;
		om_media_spool_send(e->sp, &e->quit_msg);
		return;
	}
	for (unsigned i = 0; i < e->nthreads; i++) {
		struct cmd *c = &e->threads[i].quit_cmd;
		memset(c, 0, sizeof(*c));
		c->type = CMD_QUIT;
		om_media_post(&e->threads[i], c);
	}
}

void om_media_engine_stats(struct om_media_engine *e, struct om_media_engine_stats *out)
{
	memset(out, 0, sizeof(*out));
	out->threads = e->nthreads;
	out->sessions = e->nsessions;
	out->sessions_total = e->sessions_total;
	out->recordings = e->recordings;
	out->ports_free = e->nfree;
	out->totals = e->closed_totals;
	for (struct om_media_session *s = e->sessions; s; s = s->next) {
		if (s->closed_done)
			continue;
		struct om_media_stats x;
		om_media_ctrs_read(&s->c, &x);
		struct om_media_stats *t = &out->totals;
		t->rtp_in += x.rtp_in;
		t->rtp_out += x.rtp_out;
		t->rtcp_in += x.rtcp_in;
		t->rtcp_out += x.rtcp_out;
		t->bytes_in += x.bytes_in;
		t->lost += x.lost;
		t->late += x.late;
		t->duplicates += x.duplicates;
		t->strangers += x.strangers;
		t->malformed += x.malformed;
		t->srtp_auth += x.srtp_auth;
		t->srtp_replay += x.srtp_replay;
		t->send_errors += x.send_errors;
		t->ssrc_changes += x.ssrc_changes;
	}
}

void om_media_ctrs_read(const struct ctrs *c, struct om_media_stats *o)
{
	uint64_t v[C_COUNT];
	for (int i = 0; i < C_COUNT; i++)
		v[i] = atomic_load_explicit(&c->v[i], memory_order_relaxed);
	o->rtp_in = v[C_RTP_IN];
	o->rtp_out = v[C_RTP_OUT];
	o->rtcp_in = v[C_RTCP_IN];
	o->rtcp_out = v[C_RTCP_OUT];
	o->bytes_in = v[C_BYTES_IN];
	o->lost = v[C_LOST];
	o->late = v[C_LATE];
	o->duplicates = v[C_DUP];
	o->strangers = v[C_STRANGERS];
	o->malformed = v[C_MALFORMED];
	o->srtp_auth = v[C_SRTP_AUTH];
	o->srtp_replay = v[C_SRTP_REPLAY];
	o->send_errors = v[C_SEND_ERR];
	o->ssrc_changes = v[C_SSRC_CHANGES];
}

/* --------------------------------------------------------------- session */

static int check_key(const struct om_media_key *k, enum om_srtp_suite suite)
{
	if (k->key_len == 0 || k->key_len != om_srtp_suite_key_len(suite) ||
	    k->mki_len > OM_MEDIA_MKI_MAX || k->lifetime > OM_SRTP_MAX_LIFETIME)
		return EINVAL;
	return 0;
}

static int check_params(const struct om_media_params *p, bool is_new)
{
	int fam = p->local.ss_family;
	if (is_new && fam != AF_INET && fam != AF_INET6)
		return EAFNOSUPPORT;
	if (p->remote.ss_family != AF_UNSPEC && p->remote.ss_family != AF_INET &&
	    p->remote.ss_family != AF_INET6)
		return EINVAL;
	if (p->codec != OM_MEDIA_PCMU && p->codec != OM_MEDIA_PCMA)
		return EINVAL;
	if (p->pt > 127 || p->te_pt > 127 || p->te_pt < -1 || p->te_pt == p->pt || p->cn_pt > 127 ||
	    p->cn_pt < -1)
		return EINVAL;
	if (p->ptime_ms != 0 && (p->ptime_ms < 10 || p->ptime_ms > 60 || p->ptime_ms % 10))
		return EINVAL;
	if ((unsigned)p->dir > OM_MEDIA_INACTIVE)
		return EINVAL;
	if (p->srtp) {
		if (!om_srtp_suite_name(p->suite))
			return EINVAL;
		int err = check_key(&p->recv_key, p->suite);
		if (!err)
			err = check_key(&p->send_key, p->suite);
		if (err)
			return err;
	}
	if (memchr(p->call_id, '\0', sizeof(p->call_id)) == NULL)
		return EINVAL;
	return 0;
}

static uint16_t addr_port(const struct sockaddr_storage *a)
{
	if (a->ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)a)->sin_port);
	if (a->ss_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)a)->sin6_port);
	return 0;
}

static void set_port(struct sockaddr_storage *a, uint16_t port)
{
	if (a->ss_family == AF_INET)
		((struct sockaddr_in *)a)->sin_port = htons(port);
	else if (a->ss_family == AF_INET6)
		((struct sockaddr_in6 *)a)->sin6_port = htons(port);
}

static void params_to_cfg(const struct om_media_params *p, int family, struct sess_cfg *c)
{
	memset(c, 0, sizeof(*c));
	c->remote = p->remote;
	uint16_t port = addr_port(&p->remote);
	c->remote_known = p->remote.ss_family == family && port != 0;
	c->remote_rtcp = p->remote;
	if (!p->rtcp_mux)
		set_port(&c->remote_rtcp,
		         p->remote_rtcp_port ? p->remote_rtcp_port : (uint16_t)(port + 1));
	c->rtcp_mux = p->rtcp_mux;
	c->codec = p->codec;
	c->pt = p->pt;
	c->te_pt = p->te_pt;
	c->cn_pt = p->cn_pt;
	c->ptime_ms = p->ptime_ms ? p->ptime_ms : 20;
	c->dir = p->dir;
	c->srtp = p->srtp;
	c->rtp_symmetric = p->rtp_symmetric;
}

static int srtp_ctx(struct om_media_engine *e, enum om_srtp_suite suite, enum om_srtp_dir dir,
                    const struct om_media_key *k, struct om_srtp **out)
{
	struct om_srtp_policy pol;
	memset(&pol, 0, sizeof(pol));
	pol.suite = suite;
	pol.backend = e->backend;
	pol.dir = dir;
	pol.key = k->key;
	pol.key_len = k->key_len;
	pol.mki = k->mki;
	pol.mki_len = k->mki_len;
	pol.lifetime = k->lifetime;
	pol.max_ssrcs = 4;
	return om_srtp_new(&pol, out);
}

static bool same_key(const struct om_media_key *a, const struct om_media_key *b)
{
	return a->key_len == b->key_len && a->mki_len == b->mki_len &&
	       CRYPTO_memcmp(a->key, b->key, a->key_len) == 0 &&
	       memcmp(a->mki, b->mki, a->mki_len) == 0 && a->lifetime == b->lifetime;
}

/* New contexts for the keys that changed (NULL in cfg: keep). */
static int keys_apply(struct om_media_engine *e, struct keyslot *ks,
                      const struct om_media_params *p, struct sess_cfg *cfg, bool fresh)
{
	struct om_srtp *rx = NULL, *tx = NULL;
	int err = 0;
	if (!p->srtp) {
		OPENSSL_cleanse(&ks->rx, sizeof(ks->rx));
		OPENSSL_cleanse(&ks->tx, sizeof(ks->tx));
		ks->srtp = false;
		return 0;
	}
	bool same_suite = !fresh && ks->srtp && ks->suite == p->suite;
	if (!same_suite || !same_key(&ks->rx, &p->recv_key))
		err = srtp_ctx(e, p->suite, OM_SRTP_RECV, &p->recv_key, &rx);
	if (!err && (!same_suite || !same_key(&ks->tx, &p->send_key)))
		err = srtp_ctx(e, p->suite, OM_SRTP_SEND, &p->send_key, &tx);
	if (err) {
		om_srtp_free(rx);
		om_srtp_free(tx);
		return err;
	}
	ks->srtp = true;
	ks->suite = p->suite;
	ks->rx = p->recv_key;
	ks->tx = p->send_key;
	cfg->srx = rx;
	cfg->stx = tx;
	return 0;
}

int om_media_session_new(struct om_media_engine *e, const struct om_media_params *p, void *user,
                         struct om_media_session **out, uint16_t *local_port)
{
	int err = check_params(p, true);
	if (err)
		return err;
	if (p->remote.ss_family != AF_UNSPEC && p->remote.ss_family != p->local.ss_family)
		return EAFNOSUPPORT;
	if (e->closing)
		return ESHUTDOWN;
	struct om_media_session *s = om_calloc(1, sizeof(*s));
	struct cmd *c = om_calloc(1, sizeof(*c));
	if (!s || !c) {
		err = ENOMEM;
		goto fail;
	}
	s->e = e;
	s->user = user;
	s->family = p->local.ss_family;
	s->fd_rtp = s->fd_rtcp = -1;
	snprintf(s->call_id, sizeof(s->call_id), "%s", p->call_id);
	if (!(s->keys = key_get(e->keys))) {
		err = ENOMEM;
		goto fail;
	}
	c->type = CMD_ADD;
	c->s = s;
	params_to_cfg(p, s->family, &c->u.cfg);
	if ((err = keys_apply(e, s->keys, p, &c->u.cfg, true)) != 0)
		goto fail;
	if ((err = ports_take(e, s->family, &p->local, p->rtcp_mux, &s->port, &s->fd_rtp,
	                      &s->fd_rtcp)) != 0) {
		if (err == EADDRINUSE)
			om_event(OM_EV_RTP_PORTS_EXHAUSTED, "server", "no free RTP port pair",
			         "call_id", s->call_id, NULL);
		goto fail;
	}
	/* The least busy media thread. */
	struct mthread *t = &e->threads[0];
	for (unsigned i = 1; i < e->nthreads; i++)
		if (e->threads[i].nsessions < t->nsessions)
			t = &e->threads[i];
	s->t = t;
	t->nsessions++;
	s->next = e->sessions;
	if (e->sessions)
		e->sessions->prev = s;
	e->sessions = s;
	e->nsessions++;
	e->sessions_total++;
	om_media_post(t, c);
	*out = s;
	*local_port = s->port;
	return 0;
fail:
	if (c) {
		om_srtp_free(c->u.cfg.srx);
		om_srtp_free(c->u.cfg.stx);
		om_free(c);
	}
	if (s) {
		key_put(e->keys, s->keys);
		om_free(s);
	}
	return err;
}

/* Freed, ended on its own (engine closing): nothing more goes to it. */
static bool gone(const struct om_media_session *s)
{
	return s->freed || s->closed_done || s->e->closing;
}

int om_media_session_modify(struct om_media_session *s, const struct om_media_params *p)
{
	int err = check_params(p, false);
	if (err)
		return err;
	if (p->remote.ss_family != AF_UNSPEC && p->remote.ss_family != s->family)
		return EAFNOSUPPORT; /* the socket is bound to the other family */
	if (gone(s))
		return 0;
	struct cmd *c = om_calloc(1, sizeof(*c));
	if (!c)
		return ENOMEM;
	c->type = CMD_MODIFY;
	c->s = s;
	params_to_cfg(p, s->family, &c->u.cfg);
	if ((err = keys_apply(s->e, s->keys, p, &c->u.cfg, false)) != 0) {
		om_free(c);
		return err;
	}
	om_media_post(s->t, c);
	return 0;
}

static int post_simple(struct om_media_session *s, enum ctype type)
{
	if (gone(s))
		return 0;
	struct cmd *c = om_calloc(1, sizeof(*c));
	if (!c)
		return ENOMEM;
	c->type = type;
	c->s = s;
	om_media_post(s->t, c);
	return 0;
}

void om_media_playlist_free(struct playlist *pl)
{
	if (!pl)
		return;
	for (size_t i = 0; i < pl->n; i++)
		om_media_audio_unref(pl->items[i].audio);
	om_free(pl->done);
	om_free(pl);
}

static int add_audio(struct playlist *pl, struct om_media_audio *a)
{
	size_t n = om_media_audio_samples(a);
	if (n > UINT32_MAX)
		return EINVAL;
	pl->items[pl->n].audio = om_media_audio_ref(a);
	pl->items[pl->n].samples = (uint32_t)n;
	pl->n++;
	return 0;
}

int om_media_session_play(struct om_media_session *s, const struct om_media_play *items, size_t n,
                          uint32_t token)
{
	size_t slots = 0;
	if (n == 0 || n > MS_MAX_PLAY)
		return EINVAL;
	for (size_t i = 0; i < n; i++) {
		const struct om_media_play *it = &items[i];
		switch (it->kind) {
		case OM_MEDIA_PLAY_PROMPT:
			if (!it->name)
				return EINVAL;
			if (!om_media_prompts_get(s->e->prompts, it->name))
				return ENOENT;
			slots++;
			break;
		case OM_MEDIA_PLAY_AUDIO:
			if (!it->audio)
				return EINVAL;
			slots++;
			break;
		case OM_MEDIA_PLAY_SILENCE:
		case OM_MEDIA_PLAY_TONE:
			if (it->ms == 0 || it->ms > 600000 ||
			    (it->kind == OM_MEDIA_PLAY_TONE &&
			     (it->freq_hz < 50 || it->freq_hz > 3900)))
				return EINVAL;
			slots++;
			break;
		case OM_MEDIA_PLAY_DIGITS: {
			size_t l = it->digits ? strlen(it->digits) : 0;
			if (l == 0 || l > 32 || strspn(it->digits, "0123456789") != l)
				return EINVAL;
			slots += l;
			break;
		}
		default:
			return EINVAL;
		}
	}
	if (gone(s))
		return 0;
	struct playlist *pl = om_calloc(1, sizeof(*pl) + slots * sizeof(pl->items[0]));
	struct cmd *c = NULL;
	int err = ENOMEM;
	if (!pl || !(pl->done = om_calloc(1, sizeof(*pl->done))) || !(c = om_calloc(1, sizeof(*c))))
		goto fail;
	pl->token = token;
	for (size_t i = 0; i < n; i++) {
		const struct om_media_play *it = &items[i];
		switch (it->kind) {
		case OM_MEDIA_PLAY_PROMPT:
			err = add_audio(pl, om_media_prompts_get(s->e->prompts, it->name));
			break;
		case OM_MEDIA_PLAY_AUDIO:
			err = add_audio(pl, it->audio);
			break;
		case OM_MEDIA_PLAY_SILENCE:
		case OM_MEDIA_PLAY_TONE:
			pl->items[pl->n].samples = it->ms * MS_RATE;
			pl->items[pl->n].freq =
			    (uint16_t)(it->kind == OM_MEDIA_PLAY_TONE ? it->freq_hz : 0);
			pl->n++;
			err = 0;
			break;
		case OM_MEDIA_PLAY_DIGITS:
			err = 0;
			for (const char *d = it->digits; *d && !err; d++) {
				char name[8] = "digit-0";
				name[6] = *d;
				struct om_media_audio *a =
				    om_media_prompts_get(s->e->prompts, name);
				err = a ? add_audio(pl, a) : ENOENT;
			}
			break;
		default:
			err = EINVAL;
			break;
		}
		if (err)
			goto fail;
	}
	c->type = CMD_PLAY;
	c->s = s;
	c->u.pl = pl;
	om_media_post(s->t, c);
	return 0;
fail:
	om_media_playlist_free(pl);
	om_free(c);
	return err;
}

void om_media_session_play_stop(struct om_media_session *s)
{
	(void)post_simple(s, CMD_PLAY_STOP);
}

static bool spool_id_ok(const char *id)
{
	size_t n = strlen(id);
	if (n == 0 || n > 128 || id[0] == '.')
		return false;
	return strspn(id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") == n;
}

static char *join(const char *dir, const char *id, const char *ext)
{
	size_t n = strlen(dir) + strlen(id) + strlen(ext) + 2;
	char *p = om_malloc(n);
	if (p)
		snprintf(p, n, "%s/%s%s", dir, id, ext);
	return p;
}

struct wmsg *om_media_wmsg_new(enum wtype type, uint32_t cap)
{
	struct wmsg *m = om_calloc(1, sizeof(*m) + cap * sizeof(int16_t));
	if (m) {
		m->type = type;
		m->cap = cap;
		m->pcm = (int16_t *)(m + 1);
	}
	return m;
}

int om_media_session_record_start(struct om_media_session *s, const char *spool_id,
                                  const char *meta_json, const struct om_media_record_opts *o)
{
	if (!spool_id || !spool_id_ok(spool_id) || !meta_json || !o)
		return EINVAL;
	size_t ml = strlen(meta_json);
	if (ml > 65536 || o->silence_dbov > 0 || o->silence_dbov < -100)
		return EINVAL;
	if (s->recording)
		return EBUSY;
	if (gone(s))
		return EINVAL;
	struct om_media_engine *e = s->e;
	struct spool_rec *sr = om_calloc(1, sizeof(*sr));
	struct recorder *r = om_calloc(1, sizeof(*r));
	struct cmd *c = om_calloc(1, sizeof(*c));
	int err = ENOMEM;
	if (!sr || !r || !c)
		goto fail;
	sr->fd = -1;
	if (!(sr->json_path = join(e->spool_dir, spool_id, ".json")) ||
	    !(sr->raw_path = join(e->spool_dir, spool_id, ".raw")) ||
	    !(sr->meta = om_strdup(meta_json)) ||
	    !(sr->stopped = om_calloc(1, sizeof(*sr->stopped))) ||
	    !(sr->open_msg = om_media_wmsg_new(W_OPEN, 0)) ||
	    !(sr->close_msg = om_media_wmsg_new(W_CLOSE, 0)) ||
	    !(r->chunk = om_media_wmsg_new(W_DATA, MS_CHUNK_SAMPLES)))
		goto fail;
	sr->meta_len = ml;
	sr->stopped->kind = EVK_SESSION;
	sr->stopped->ev.type = OM_MEDIA_EV_RECORD_STOPPED;
	sr->stopped->ev.session = s;
	sr->stopped->ev.user = s->user;
	sr->open_msg->rec = sr;
	sr->close_msg->rec = sr;
	r->chunk->rec = sr;
	r->sr = sr;
	r->sp = e->sp;
	r->queue_max = e->queue_max;
	r->o = *o;
	r->max_samples = (uint64_t)o->max_ms * MS_RATE;
	double amp = 32768.0 * pow(10.0, o->silence_dbov / 20.0);
	r->silence_rms2 = amp * amp;
	/* The writer creates the files before the media thread can send a
	 * byte: W_OPEN is queued first. */
	om_media_spool_send(e->sp, sr->open_msg);
	c->type = CMD_REC_START;
	c->s = s;
	c->u.rec = r;
	om_media_post(s->t, c);
	s->recording = true;
	e->recordings++;
	return 0;
fail:
	if (sr) {
		om_free(sr->json_path);
		om_free(sr->raw_path);
		om_free(sr->meta);
		om_free(sr->stopped);
		om_free(sr->open_msg);
		om_free(sr->close_msg);
		om_free(sr);
	}
	if (r)
		om_free(r->chunk);
	om_free(r);
	om_free(c);
	return err;
}

void om_media_session_record_stop(struct om_media_session *s)
{
	if (s->recording)
		(void)post_simple(s, CMD_REC_STOP);
}

int om_media_session_dtmf_in(struct om_media_session *s, char digit, unsigned duration_ms)
{
	if (om_rtp_digit_event(digit) < 0)
		return EINVAL;
	if (gone(s))
		return 0;
	struct cmd *c = om_calloc(1, sizeof(*c));
	struct evnode *ev = c ? om_calloc(1, sizeof(*ev)) : NULL;
	if (!ev) {
		om_free(c);
		return ENOMEM;
	}
	c->u.dtmf.ev = ev;
	c->type = CMD_DTMF;
	c->s = s;
	c->u.dtmf.digit = digit >= 'a' && digit <= 'd' ? (char)(digit - 'a' + 'A') : digit;
	c->u.dtmf.ms = duration_ms;
	om_media_post(s->t, c);
	return 0;
}

void om_media_session_free(struct om_media_session *s)
{
	if (s->freed)
		return;
	s->freed = true;
	if (s->closed_done) {
		session_unlink_free(s->e, s);
		return;
	}
	if (s->e->closing)
		return; /* the engine ends it */
	/* FREE must reach the thread: it is the one command that cannot be
	 * lost to an allocation failure, so it lives in the session. */
	struct cmd *c = &s->free_cmd;
	memset(c, 0, sizeof(*c));
	c->type = CMD_FREE;
	c->s = s;
	om_media_post(s->t, c);
}

void om_media_session_stats(const struct om_media_session *s, struct om_media_stats *out)
{
	om_media_ctrs_read(&s->c, out);
}
