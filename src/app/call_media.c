/* call_media.c — the control thread's side of the media engine for calls
 * (media/media.h): the engine's start and stop, one session per call, what
 * an offer/answer agreed handed to it (RFC 3264, RFC 4568 keys), INFO
 * digits into its digit stream, and its events back to the calls.
 *
 * The session is made before our SDP is written, because the SDP names its
 * port (om_media_session_new binds synchronously); what the answer agreed
 * (remote address, payload type, telephone-event, direction, keys) follows
 * with om_media_session_modify. A session ends with om_media_session_free;
 * its CLOSED event releases the call (call_release). */
#include "app/call_int.h"
#include "core/alloc.h"
#include "core/events.h"
#include "core/log.h"
#include "media/media.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

struct call_media {
	struct om_media_session *s;
	struct om_media_params p; /* what the session was last given (keys!) */
};

/* The engine's event target. It outlives the calls: after om_calls_close
 * the engine may still deliver the CLOSED events of the sessions it ends,
 * and they must find nothing (cs NULL); the engine's done callback frees
 * it. */
struct media_hub {
	struct om_calls *cs;
	struct om_media_engine *e;
	void (*done)(void *arg); /* after the engine has stopped */
	void *done_arg;
};

static struct om_media_engine *engine(struct om_calls *cs)
{
	struct media_hub *h = cs->media_engine;
	return h ? h->e : NULL;
}

static void on_event(const struct om_media_event *ev, void *arg)
{
	struct media_hub *hub = arg;
	struct om_call *c = ev->user;
	if (!hub->cs || !c)
		return; /* the calls are gone (server stop) */
	switch (ev->type) {
	case OM_MEDIA_EV_TIMEOUT:
		/* The engine raised 1142; the call ends with our BYE. */
		om_log(OM_LOG_INFO, "no media from the gateway: hanging up", "call", c->call_id,
		       "gateway", c->gateway, NULL);
		call_hangup(c, "rtp-timeout");
		break;
	case OM_MEDIA_EV_CLOSED: {
		struct call_media *m = c->media;
		if (m) {
			OPENSSL_cleanse(&m->p, sizeof(m->p));
			om_free(m);
		}
		call_release(c);
		break;
	}
	default:
		flow_media_event(c, ev); /* DTMF, playback and recording */
		break;
	}
}

int call_media_engine_start(struct om_calls *cs, char *err, size_t errlen)
{
	const struct om_config *cfg = cs->cfg;
	char spool[4096], prompts[4096];
	snprintf(spool, sizeof(spool), "%s/spool", cs->env.data_dir ? cs->env.data_dir : ".");
	snprintf(prompts, sizeof(prompts), "%s/prompts", cs->env.data_dir ? cs->env.data_dir : ".");
	struct om_media_engine_cfg ec = {
		.threads = cfg->media_threads,
		.port_min = cfg->rtp_port_min,
		.port_max = cfg->rtp_port_max,
		.srtp_backend = cfg->srtp_backend == OM_CFG_SRTP_LIBSRTP2 ? OM_SRTP_BACKEND_LIBSRTP2
		                                                          : OM_SRTP_BACKEND_OPENSSL,
		.rtp_timeout_ms = cfg->rtp_timeout * 1000,
		.spool_dir = spool,
		.spool_flush_ms = cfg->spool_flush_ms,
		.spool_sync_ms = cfg->spool_sync_ms,
		.prompts_dir = prompts,
	};
	struct media_hub *hub = om_calloc(1, sizeof(*hub));
	if (!hub) {
		snprintf(err, errlen, "out of memory");
		return ENOMEM;
	}
	hub->cs = cs;
	int rc = om_media_engine_new(cs->env.loop, &ec, on_event, hub, &hub->e);
	if (rc) {
		snprintf(err, errlen, "media engine: %s", strerror(rc));
		om_free(hub);
		return rc;
	}
	cs->media_engine = hub;
	return 0;
}

static void engine_closed(void *arg)
{
	struct media_hub *hub = arg;
	void (*done)(void *) = hub->done;
	void *darg = hub->done_arg;
	om_free(hub);
	if (done)
		done(darg);
}

void call_media_engine_detach(struct om_calls *cs)
{
	struct media_hub *hub = cs->media_engine;
	if (hub)
		hub->cs = NULL;
	/* The engine ends the sessions it still has; the calls' records of
	 * them (keys!) go now. */
	for (struct om_call *c = cs->list; c; c = c->next) {
		if (c->media) {
			OPENSSL_cleanse(&c->media->p, sizeof(c->media->p));
			om_free(c->media);
			c->media = NULL;
		}
	}
}

void call_media_engine_stop(struct om_calls *cs, void (*done)(void *arg), void *arg)
{
	/* Sessions of calls that are going away: no event reaches them. */
	for (struct om_call *c = cs->list; c; c = c->next) {
		if (c->media) {
			OPENSSL_cleanse(&c->media->p, sizeof(c->media->p));
			om_free(c->media);
			c->media = NULL;
		}
	}
	struct media_hub *hub = cs->media_engine;
	cs->media_engine = NULL;
	if (hub) {
		hub->cs = NULL; /* what the engine still delivers finds no call */
		hub->done = done;
		hub->done_arg = arg;
		om_media_engine_close(hub->e, engine_closed, hub);
	} else if (done) {
		done(arg);
	}
}

static int sockaddr_of(const char *ip, uint16_t port, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
	if (inet_pton(AF_INET, ip, &a4->sin_addr) == 1) {
		a4->sin_family = AF_INET;
		a4->sin_port = htons(port);
		return 0;
	}
	if (inet_pton(AF_INET6, ip, &a6->sin6_addr) == 1) {
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons(port);
		return 0;
	}
	return EINVAL;
}

int call_media_open(struct om_call *c, const char *local_ip, uint16_t *port)
{
	struct om_calls *cs = c->calls;
	if (!engine(cs))
		return ENOTSUP;
	struct call_media *m = om_calloc(1, sizeof(*m));
	if (!m)
		return ENOMEM;
	if (sockaddr_of(local_ip, 0, &m->p.local) != 0) {
		om_free(m);
		return EINVAL;
	}
	m->p.remote.ss_family = AF_UNSPEC; /* not known before the answer */
	m->p.codec = OM_MEDIA_PCMU;
	m->p.pt = 0;
	m->p.te_pt = -1;
	m->p.cn_pt = -1;
	m->p.dir = OM_MEDIA_SENDRECV;
	m->p.rtp_symmetric = c->rtp_symmetric;
	snprintf(m->p.call_id, sizeof(m->p.call_id), "%s", c->call_id ? c->call_id : "");
	int rc = om_media_session_new(engine(cs), &m->p, c, &m->s, port);
	if (rc) {
		om_free(m);
		return rc;
	}
	c->media = m;
	return 0;
}

static enum om_srtp_suite suite_of(enum om_sdp_crypto_suite s)
{
	switch (s) {
	case OM_SDP_AES_CM_128_HMAC_SHA1_32:
		return OM_SRTP_AES_CM_128_HMAC_SHA1_32;
	case OM_SDP_AES_256_CM_HMAC_SHA1_80:
		return OM_SRTP_AES_256_CM_HMAC_SHA1_80;
	case OM_SDP_AEAD_AES_128_GCM:
		return OM_SRTP_AEAD_AES_128_GCM;
	case OM_SDP_AEAD_AES_256_GCM:
		return OM_SRTP_AEAD_AES_256_GCM;
	default:
		return OM_SRTP_AES_CM_128_HMAC_SHA1_80;
	}
}

static void key_of(struct om_media_key *k, const struct om_sdp_crypto_key *s)
{
	memset(k, 0, sizeof(*k));
	size_t n = s->keysalt_len < sizeof(k->key) ? s->keysalt_len : sizeof(k->key);
	memcpy(k->key, s->keysalt, n);
	k->key_len = n;
	/* RFC 3711 §3.1: the MKI value as mki_len big-endian octets. */
	if (s->mki_len && s->mki_len <= OM_MEDIA_MKI_MAX) {
		k->mki_len = s->mki_len;
		for (uint32_t i = 0; i < s->mki_len; i++)
			k->mki[i] = (uint8_t)(s->mki_value >> (8 * (s->mki_len - 1 - i)));
	}
	k->lifetime = s->lifetime;
}

int call_media_apply(struct om_call *c, const struct om_sdp_result *r)
{
	struct call_media *m = c->media;
	if (!m)
		return ENOTSUP;
	char ip[64];
	snprintf(ip, sizeof(ip), "%.*s", (int)(r->remote.addr.len < 63 ? r->remote.addr.len : 63),
	         r->remote.addr.p ? r->remote.addr.p : "");
	struct om_media_params p = m->p;
	if (r->remote.hold || r->remote_port == 0 || sockaddr_of(ip, r->remote_port, &p.remote)) {
		/* 0.0.0.0 (RFC 2543 hold), port 0, or a host name we do not
		 * resolve: no media is sent there. */
		memset(&p.remote, 0, sizeof(p.remote));
		p.remote.ss_family = AF_UNSPEC;
	}
	snprintf(c->remote_media, sizeof(c->remote_media), "%s:%u", ip, (unsigned)r->remote_port);
	p.codec = r->pt == 8 ? OM_MEDIA_PCMA : OM_MEDIA_PCMU;
	p.pt = r->pt;
	p.te_pt = r->te_pt;
	p.dir = (enum om_media_dir)r->dir;
	p.srtp = r->srtp;
	if (r->srtp) {
		p.suite = suite_of(r->remote_key.suite);
		key_of(&p.recv_key, &r->remote_key);
		key_of(&p.send_key, &r->local_key[0]);
	}
	int rc = om_media_session_modify(m->s, &p);
	if (!rc) {
		OPENSSL_cleanse(&m->p, sizeof(m->p));
		m->p = p;
	}
	OPENSSL_cleanse(&p, sizeof(p));
	return rc;
}

struct om_media_session *call_media_session(struct om_call *c)
{
	return c->media ? c->media->s : NULL;
}

void call_media_dtmf(struct om_call *c, char digit, unsigned duration_ms)
{
	if (c->media)
		om_media_session_dtmf_in(c->media->s, digit, duration_ms);
}

void call_media_close(struct om_call *c)
{
	if (c->media && c->media->s) {
		struct om_media_session *s = c->media->s;
		c->media->s = NULL;
		om_media_session_free(s); /* CLOSED follows: call_release */
		return;
	}
	call_release(c);
}

void call_media_status_json(struct om_calls *cs, struct om_buf *out)
{
	if (!engine(cs))
		return;
	struct om_media_engine_stats st;
	om_media_engine_stats(engine(cs), &st);
	om_buf_printf(out,
	              ",\"media_sessions\":%llu,\"rtp_ports_free\":%llu,\"rtp_in\":%llu,"
	              "\"rtp_out\":%llu,\"srtp_auth_failures\":%llu",
	              (unsigned long long)st.sessions, (unsigned long long)st.ports_free,
	              (unsigned long long)st.totals.rtp_in, (unsigned long long)st.totals.rtp_out,
	              (unsigned long long)st.totals.srtp_auth);
}

bool call_media_stats(struct om_calls *cs, struct om_media_engine_stats *st)
{
	if (!engine(cs))
		return false;
	om_media_engine_stats(engine(cs), st);
	return true;
}
