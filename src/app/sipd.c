/* sipd.c — SIP service: TCP/TLS transport → trust → parse → stateless answer.
 *
 * Trust first (R4, DESIGN "Trust first"): a TCP peer whose address is no
 * enabled (or nonewcalls) gateway's is closed at accept, before a byte is
 * read, with event 1131 rate-limited per source address: a scanner learns
 * nothing but that the port is open. Every message is re-checked against
 * the current snapshot, so a gateway disabled by a reload gets no further
 * request processed on a connection it already had.
 *
 * Over TLS (R4, R5, RFC 5922 §7) trust is the client certificate: after
 * the handshake (chain, validity, CRLs and key strength already verified
 * by OpenSSL against the trusted store) the certificate must carry the TLS
 * name of exactly one enabled gateway of the live snapshot, and an EKU that
 * allows client use (serverAuth-only passes with 1133 unless strict_eku).
 * Every refusal is event 1130 with its reason and the peer, rate-limited
 * per source address. A reload re-checks open TLS connections against the
 * new snapshot and the new trusted store. Over TLS every plan's calls are
 * admitted (the media rules come with calls). */
#include "app/sipd.h"
#include "app/call.h"
#include "core/alloc.h"
#include "core/events.h"
#include "core/log.h"
#include "sip/sip.h"
#include "transport/tcp.h"
#include "trust/trust.h"

#include <arpa/inet.h>
#include <errno.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>

/* The gateway a TLS connection proved to be (its tcp user pointer). */
struct tls_peer {
	int64_t gw_id;
	char tls_name[OM_DIR_HOST_MAX + 1];
	bool outbound; /* we connected to the gateway (call_net.c) */
};

struct om_sipd {
	struct om_calls *calls;        /* INVITE and everything after it (call.h) */
	struct om_tls_ctx *tls_client; /* our certificate, for connections we open */
	void (*close_done)(void *arg); /* om_sipd_close_then */
	void *close_arg;
	uv_loop_t *loop;
	struct om_tcp_server *tcp;
	struct om_tls_ctx *tls; /* for new handshakes; its store for re-checks */
	bool strict_eku;
	bool tls_source_check; /* TLS from a non-gateway address: dropped at accept */
	size_t n_tcp, n_tls;   /* listeners opened */
	uint64_t tls_rejected;
	uint64_t tls_rejected_by[OM_SIPD_TLS_REASONS][OM_SIPD_TLS_WHEN];
	om_sipd_peer_cert_h peer_cert_h;
	void *peer_cert_arg;
	struct om_dir_snapshot *snap;
	struct om_flow_table *flows;
	struct om_sip_limits limits;
	uint64_t tag_key[2]; /* To tags: SipHash key, drawn once */
	uint64_t tag_count;
	struct om_buf out; /* answers are built here */
	char fqdn[254];
	uint64_t answered, dropped_untrusted, refused_mode, bad_requests, responses_ignored;
};

static const char allow_hdr[] = "Allow: INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, UPDATE\r\n";
/* RFC 4028 session timers; 100rel is refused (docs/modules/calls.md). */
static const char *const supported_tags[] = { "timer", NULL };

static void peer_ip(const struct sockaddr *sa, char *out, size_t len)
{
	if (sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, out,
		          (socklen_t)len);
	else
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, out,
		          (socklen_t)len);
}

static int on_accept(struct om_tcp_conn *c, const struct sockaddr *peer, void **user, void *arg)
{
	struct om_sipd *d = arg;
	bool tls = om_tcp_conn_tls_listener(c);
	const struct om_dir_gateway *gw =
	    d->snap ? om_dir_snapshot_gateway_by_addr(d->snap, peer) : NULL;
	*user = NULL;
	if (tls && (gw || !d->tls_source_check)) {
		/* Trust comes with the certificate (on_tls). A gateway's
		 * address is known: its handshake is not counted against
		 * the budget strangers share. */
		if (gw)
			om_tcp_conn_set_known(c);
		return 0;
	}
	if (!gw) {
		char ip[INET6_ADDRSTRLEN];
		peer_ip(peer, ip, sizeof(ip));
		d->dropped_untrusted++;
		om_event(OM_EV_UNTRUSTED_DEVICE, ip, "SIP from an untrusted device dropped", "peer",
		         om_tcp_conn_peer_str(c), "transport", tls ? "tls" : "tcp", NULL);
		return 1;
	}
	/* A plain-TCP connection from a TLS gateway's address is answered
	 * (its plan decides how) but is no flow of that gateway: nothing
	 * openum sends to a TLS gateway ever goes over it. */
	if (gw->transport == OM_TRANSPORT_TCP &&
	    om_flow_add(d->flows, om_tcp_conn_id(c), gw->id, peer, OM_FLOW_TCP) != 0)
		return 1;
	*user = NULL;
	if (d->calls)
		om_calls_conn_up(d->calls, c); /* responses go back on it */
	return 0;
}

/* A connection limit refused a peer (event 1134, rate-limited per peer:
 * an IPv4 address or an IPv6 prefix). */
static void on_refuse(const struct sockaddr *peer, const char *key, enum om_tcp_limit l, void *arg)
{
	char addr[64];
	om_sockaddr_str(peer, addr, sizeof(addr));
	om_event(OM_EV_CONN_LIMIT, key, "SIP connection refused: a limit is reached", "limit",
	         om_tcp_limit_str(l), "peer", addr, "counted_as", key, NULL);
}

static void on_close(struct om_tcp_conn *c, enum om_tcp_close_reason why, void *user, void *arg)
{
	struct om_sipd *d = arg;
	if (d->calls)
		om_calls_conn_down(d->calls, c);
	om_flow_remove(d->flows, om_tcp_conn_id(c));
	om_free(user); /* struct tls_peer, or NULL */
	if (why != OM_TCP_CLOSE_PEER && why != OM_TCP_CLOSE_LOCAL)
		om_log(OM_LOG_INFO, "connection closed", "peer", om_tcp_conn_peer_str(c), "reason",
		       om_tcp_close_reason_str(why), NULL);
}

/* A connection we opened is usable (or failed: close_h follows). */
static void on_connected(struct om_tcp_conn *c, int status, void *user, void *arg)
{
	struct om_sipd *d = arg;
	if (status) {
		om_log(OM_LOG_WARNING, "could not connect to a gateway", "peer",
		       om_tcp_conn_peer_str(c), "error", strerror(status), NULL);
		return;
	}
	if (!om_tcp_conn_tls(c)) {
		const struct om_dir_gateway *gw =
		    d->snap ? om_dir_snapshot_gateway_by_addr(d->snap, om_tcp_conn_peer(c)) : NULL;
		if (!gw || om_flow_add(d->flows, om_tcp_conn_id(c), gw->id, om_tcp_conn_peer(c),
		                       OM_FLOW_TCP) != 0) {
			om_tcp_conn_abort(c);
			return;
		}
	}
	if (d->calls)
		om_calls_conn_up(d->calls, c); /* what waited for it goes now */
}

/* The calls ask for a connection to a gateway (om_trust_outbound gave its
 * configured address): TLS with our certificate when the gateway is TLS. */
static int calls_connect(const struct om_outbound *ob, int64_t gateway_id, uint64_t *id, void *arg)
{
	struct om_sipd *d = arg;
	if (ob->transport == OM_FLOW_TCP)
		return om_tcp_server_connect(d->tcp, (const struct sockaddr *)&ob->addr, NULL, NULL,
		                             NULL, id);
	if (!d->tls_client)
		return ENOTSUP; /* an unsecured start has no certificate to present */
	struct tls_peer *p = om_calloc(1, sizeof(*p));
	if (!p)
		return ENOMEM;
	p->gw_id = gateway_id;
	p->outbound = true;
	snprintf(p->tls_name, sizeof(p->tls_name), "%s", ob->tls_name);
	int rc = om_tcp_server_connect(d->tcp, (const struct sockaddr *)&ob->addr, d->tls_client,
	                               ob->tls_name, p, id);
	if (rc)
		om_free(p);
	return rc;
}

static void on_frame_error(struct om_tcp_conn *c, const char *reason, void *user, void *arg)
{
	om_log(OM_LOG_WARNING, "SIP framing lost: closing the connection", "peer",
	       om_tcp_conn_peer_str(c), "reason", reason, NULL);
}

/* ------------------------------------------------------ TLS identity */

static void tls_reject_event(struct om_sipd *d, struct om_tcp_conn *c, enum om_tls_reject r,
                             const char *detail, X509 *x, const char *when)
{
	char ip[INET6_ADDRSTRLEN], subj[512], issuer[512];
	peer_ip(om_tcp_conn_peer(c), ip, sizeof(ip));
	om_tls_cert_subject(x, subj, sizeof(subj));
	om_tls_cert_issuer(x, issuer, sizeof(issuer));
	d->tls_rejected++;
	if ((unsigned)r < OM_SIPD_TLS_REASONS)
		d->tls_rejected_by[r][!strcmp(when, "reload")    ? OM_SIPD_TLS_RELOAD
		                      : !strcmp(when, "connect") ? OM_SIPD_TLS_CONNECT
		                                                 : OM_SIPD_TLS_HANDSHAKE]++;
	om_event(OM_EV_TLS_REJECTED, ip, "mutual TLS rejected", "reason", om_tls_reject_str(r),
	         "detail", detail ? detail : "", "peer", om_tcp_conn_peer_str(c), "subject", subj,
	         "issuer", issuer, "when", when, NULL);
}

/* Exactly one trusted gateway whose TLS name the certificate carries: the
 * certificate's names are extracted once and each looked up in the
 * snapshot's index, so a handshake costs the same with 1 or 1,000
 * gateways (RFC 5922 §7.1). */
static enum om_tls_reject match_gateway(struct om_sipd *d, X509 *x,
                                        const struct om_dir_gateway **out)
{
	struct om_tls_names names;
	const struct om_dir_gateway *found = NULL;
	bool disabled = false, wildcard;
	size_t nfound = 0;
	if (om_tls_cert_names(x, &names) != 0)
		return OM_TLS_R_HANDSHAKE; /* out of memory */
	if (d->snap)
		nfound =
		    om_dir_snapshot_match_tls_names(d->snap, names.v, names.n, &found, &disabled);
	wildcard = names.wildcard;
	om_tls_names_free(&names);
	if (nfound == 1) {
		*out = found;
		return OM_TLS_R_NONE;
	}
	if (nfound > 1)
		return OM_TLS_R_AMBIGUOUS;
	if (disabled)
		return OM_TLS_R_GW_DISABLED;
	if (wildcard)
		return OM_TLS_R_WILDCARD;
	return OM_TLS_R_NO_GATEWAY;
}

static enum om_tls_reject identify(struct om_sipd *d, X509 *x, const struct om_dir_gateway **gw,
                                   bool *server_only)
{
	*server_only = false;
	if (!x)
		return OM_TLS_R_NO_CERT;
	enum om_tls_eku eku = om_tls_cert_eku(x);
	if (eku == OM_TLS_EKU_NEITHER)
		return OM_TLS_R_EKU;
	*server_only = eku == OM_TLS_EKU_SERVER_ONLY;
	if (*server_only && d->strict_eku)
		return OM_TLS_R_EKU;
	return match_gateway(d, x, gw);
}

static void serveronly_event(struct om_sipd *d, struct om_tcp_conn *c, X509 *x,
                             const struct om_dir_gateway *gw)
{
	char ip[INET6_ADDRSTRLEN], subj[512];
	peer_ip(om_tcp_conn_peer(c), ip, sizeof(ip));
	om_tls_cert_subject(x, subj, sizeof(subj));
	om_event(OM_EV_SERVERAUTH_ONLY, ip,
	         d->strict_eku ? "client certificate is serverAuth-only: refused (strict_eku)"
	                       : "client certificate is serverAuth-only: accepted with a warning",
	         "peer", om_tcp_conn_peer_str(c), "subject", subj, "gateway", gw ? gw->name : "",
	         "strict_eku", d->strict_eku ? "1" : "0", NULL);
}

static const struct om_dir_gateway *tls_gateway(struct om_sipd *d, const struct tls_peer *p);

/* A connection we opened to a gateway (DESIGN "Flows"): its server
 * certificate must carry the TLS name of the gateway we meant (RFC 5922
 * §7.2, the same rules as inbound), and it must still be trusted. */
static int on_tls_outbound(struct om_sipd *d, struct om_tcp_conn *c, struct om_tls_sess *t,
                           struct tls_peer *p)
{
	enum om_tls_reject why = OM_TLS_R_NONE;
	const struct om_dir_gateway *gw = tls_gateway(d, p);
	if (!gw)
		why = OM_TLS_R_UNTRUSTED_NOW;
	else
		om_tls_client_check_name(t, p->tls_name, &why);
	if (why != OM_TLS_R_NONE) {
		tls_reject_event(d, c, why,
		                 "the gateway's server certificate (openum connected out)",
		                 om_tls_sess_peer_cert(t), "connect");
		return 1;
	}
	if (om_flow_add(d->flows, om_tcp_conn_id(c), gw->id, om_tcp_conn_peer(c), OM_FLOW_TLS))
		return 1;
	om_log(OM_LOG_INFO, "mutual TLS connection to a gateway", "gateway", gw->name, "peer",
	       om_tcp_conn_peer_str(c), "version", om_tls_sess_version(t), NULL);
	return 0;
}

static int on_tls(struct om_tcp_conn *c, struct om_tls_sess *t, void **user, void *arg)
{
	struct om_sipd *d = arg;
	struct tls_peer *out = *user;
	if (om_tcp_conn_outbound(c) && out)
		return on_tls_outbound(d, c, t, out);
	X509 *x = om_tls_sess_peer_cert(t);
	const struct om_dir_gateway *gw = NULL;
	bool server_only;
	enum om_tls_reject r = identify(d, x, &gw, &server_only);
	if (server_only) {
		const struct om_dir_gateway *named = gw;
		if (!named)
			match_gateway(d, x, &named);
		serveronly_event(d, c, x, named);
	}
	if (r != OM_TLS_R_NONE) {
		char detail[160];
		snprintf(detail, sizeof(detail), "after a %s handshake", om_tls_sess_version(t));
		tls_reject_event(d, c, r, detail, x, "handshake");
		return 1;
	}
	struct tls_peer *p = om_calloc(1, sizeof(*p));
	if (!p)
		return 1;
	p->gw_id = gw->id;
	snprintf(p->tls_name, sizeof(p->tls_name), "%s", gw->tls_name);
	if (om_flow_add(d->flows, om_tcp_conn_id(c), gw->id, om_tcp_conn_peer(c), OM_FLOW_TLS)) {
		om_free(p);
		return 1;
	}
	*user = p;
	if (d->calls)
		om_calls_conn_up(d->calls, c);
	om_log(OM_LOG_INFO, "mutual TLS gateway connected", "gateway", gw->name, "peer",
	       om_tcp_conn_peer_str(c), "version", om_tls_sess_version(t), "cipher",
	       om_tls_sess_cipher(t), NULL);
	if (d->peer_cert_h)
		d->peer_cert_h(x, gw->name, d->peer_cert_arg);
	return 0;
}

static void on_tls_fail(struct om_tcp_conn *c, struct om_tls_sess *t, void *user, void *arg)
{
	struct om_sipd *d = arg;
	char detail[256];
	enum om_tls_reject r = om_tls_sess_reason(t, detail, sizeof(detail));
	tls_reject_event(d, c, r, detail, om_tls_sess_peer_cert(t), "handshake");
}

/* The gateway an identified TLS connection belongs to, in the snapshot in
 * force now (NULL: no longer trusted). */
static const struct om_dir_gateway *tls_gateway(struct om_sipd *d, const struct tls_peer *p)
{
	if (!p || !d->snap)
		return NULL;
	const struct om_dir_gateway *gw = om_dir_snapshot_gateway_by_tls_name(d->snap, p->tls_name);
	return gw && gw->id == p->gw_id ? gw : NULL;
}

/* SipHash-2-4 (Aumasson, Bernstein) of one 64-bit word under a 128-bit
 * key: a keyed PRF for tags. */
#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                          \
	do {                                                              \
		v0 += v1, v1 = ROTL(v1, 13), v1 ^= v0, v0 = ROTL(v0, 32); \
		v2 += v3, v3 = ROTL(v3, 16), v3 ^= v2;                    \
		v0 += v3, v3 = ROTL(v3, 21), v3 ^= v0;                    \
		v2 += v1, v1 = ROTL(v1, 17), v1 ^= v2, v2 = ROTL(v2, 32); \
	} while (0)

static uint64_t siphash64(const uint64_t k[2], uint64_t m)
{
	uint64_t v0 = 0x736f6d6570736575ull ^ k[0], v1 = 0x646f72616e646f6dull ^ k[1];
	uint64_t v2 = 0x6c7967656e657261ull ^ k[0], v3 = 0x7465646279746573ull ^ k[1];
	uint64_t b = (uint64_t)8 << 56;
	v3 ^= m;
	SIPROUND;
	SIPROUND;
	v0 ^= m;
	v3 ^= b;
	SIPROUND;
	SIPROUND;
	v0 ^= b;
	v2 ^= 0xff;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	return v0 ^ v1 ^ v2 ^ v3;
}

/* A To tag (RFC 3261 §19.3: unique, unguessable, >= 32 random bits): the
 * keyed PRF of a counter under a key drawn once from RAND_bytes — 64 bits
 * no one can predict without the key, and no RAND_bytes, getpid or printf
 * per answer. out: 17 bytes. */
static void new_tag(struct om_sipd *d, char *out)
{
	static const char hex[] = "0123456789abcdef";
	uint64_t v = siphash64(d->tag_key, ++d->tag_count);
	for (int i = 15; i >= 0; i--, v >>= 4)
		out[i] = hex[v & 15];
	out[16] = '\0';
}

static void respond(struct om_sipd *d, struct om_tcp_conn *c, const struct om_sip_msg *req,
                    int status, const char *phrase, const char *extra)
{
	char tag[17];
	new_tag(d, tag);
	struct om_sip_resp_opts o = { .to_tag = tag, .extra = extra };
	struct om_buf *out = &d->out; /* one buffer, reused for every answer */
	if (om_buf_err(out)) {
		om_buf_free(out);
		om_buf_init(out);
	}
	out->len = 0;
	if (om_sip_response_build(req, status, phrase, &o, out) == 0 && !om_buf_err(out)) {
		om_tcp_conn_send(c, out->p, out->len);
		d->answered++;
	}
}

/* A request the parser refused (bad start line, bad version) still gets
 * its status when the headers needed to address an answer are there: the
 * Via, From, To, Call-ID and CSeq lines are copied raw, each bounded and
 * printable, never anything else (RFC 4475 §3.1.2.9, §3.1.2.16). */
static int raw_hdr_is(const char *line, size_t len, const char *full, char compact, size_t *vstart)
{
	size_t n = strlen(full), i = 0;
	if (len > n && !strncasecmp(line, full, n))
		i = n;
	else if (len > 1 && (line[0] == compact || line[0] == compact - 32))
		i = 1;
	else
		return 0;
	while (i < len && (line[i] == ' ' || line[i] == '\t'))
		i++;
	if (i >= len || line[i] != ':')
		return 0;
	*vstart = i + 1;
	return 1;
}

static void respond_unparsable(struct om_sipd *d, struct om_tcp_conn *c, const char *buf,
                               size_t len, int status)
{
	static const struct {
		const char *name;
		char compact;
		int many;
	} want[] = { { "Via", 'v', 1 },
		     { "From", 'f', 0 },
		     { "To", 't', 0 },
		     { "Call-ID", 'i', 0 },
		     { "CSeq", 0, 0 } };
	int have[5] = { 0 };
	struct om_buf out;
	om_buf_init(&out);
	/* Only requests: a response is never answered. */
	if (len < 4 || !memcmp(buf, "SIP/", 4))
		return;
	om_buf_printf(&out, "SIP/2.0 %d %s\r\n", status, om_sip_status_phrase(status));
	size_t pos = 0, nlines = 0;
	while (pos < len && nlines++ < 256) {
		const char *eol = memchr(buf + pos, '\n', len - pos);
		size_t l = eol ? (size_t)(eol - buf - pos) : len - pos;
		const char *line = buf + pos;
		pos += l + 1;
		if (l && line[l - 1] == '\r')
			l--;
		if (l == 0)
			break; /* end of the header section */
		for (size_t k = 0; k < 5; k++) {
			size_t v;
			if (!raw_hdr_is(line, l, want[k].name,
			                want[k].compact ? want[k].compact : '\x01', &v))
				continue;
			if ((have[k] && !want[k].many) || have[k] >= 10 || l > 1024)
				break;
			for (size_t i = 0; i < l; i++)
				if ((unsigned char)line[i] < 0x20 && line[i] != '\t')
					goto out;
			om_buf_printf(&out, "%s:%.*s", want[k].name, (int)(l - v), line + v);
			/* RFC 3261 §8.2.6.2: the UAS adds a To tag when there
			 * is none, salvaged responses too. */
			if (k == 2 && !om_sip_addr_has_tag((struct om_str){ line + v, l - v },
			                                   OM_SIP_MAX_URI)) {
				char tag[17];
				new_tag(d, tag);
				om_buf_printf(&out, ";tag=%s", tag);
			}
			om_buf_adds(&out, "\r\n");
			have[k]++;
			break;
		}
	}
	for (size_t k = 0; k < 5; k++)
		if (!have[k])
			goto out;
	om_buf_adds(&out, "Content-Length: 0\r\n\r\n");
	if (!om_buf_err(&out)) {
		om_tcp_conn_send(c, out.p, out.len);
		d->answered++;
	}
out:
	om_buf_free(&out);
}

/* Answers one request; returns the status sent (0: none). */
static int handle_request(struct om_sipd *d, struct om_tcp_conn *c, const struct om_dir_gateway *gw,
                          const struct om_sip_msg *m, bool tls)
{
	enum om_sip_reason reason;
	if (m->method == OM_SIP_METHOD_ACK) {
		/* Never answered; a broken one is dropped. */
		if (d->calls && om_sip_msg_validate(m, &reason) == 0)
			om_calls_recv(d->calls, c, gw, m);
		return 0;
	}
	if (om_sip_msg_validate(m, &reason) != 0) {
		d->bad_requests++;
		char warn[320];
		snprintf(warn, sizeof(warn), "Warning: 399 %s \"%s\"\r\n", d->fqdn,
		         om_sip_reason_str(reason));
		respond(d, c, m, om_sip_reason_status(reason), NULL, warn);
		return om_sip_reason_status(reason);
	}
	/* R3: a SIPSecured or Secured plan takes nothing over TCP; over
	 * mutual TLS every plan is admitted. */
	const struct om_dir_dialplan *plan = om_dir_snapshot_gateway_plan(d->snap, gw);
	bool call_request = m->method == OM_SIP_METHOD_INVITE || m->method == OM_SIP_METHOD_BYE ||
	                    m->method == OM_SIP_METHOD_CANCEL || m->method == OM_SIP_METHOD_INFO ||
	                    m->method == OM_SIP_METHOD_UPDATE || m->method == OM_SIP_METHOD_PRACK;
	/* An INVITE meets the same rule in the calls' admission order
	 * (call_admit.c), with the offer named in the event. */
	if (!tls && plan && plan->security != OM_SEC_UNSECURED &&
	    !(d->calls && m->method == OM_SIP_METHOD_INVITE)) {
		d->refused_mode++;
		om_event(OM_EV_SECURITY_MODE_REFUSED, gw->name,
		         "request refused: the gateway's dial plan requires TLS", "gateway",
		         gw->name, "dialplan", plan->name, "security",
		         plan->security == OM_SEC_SECURED ? "Secured" : "SIPSecured", "transport",
		         "tcp", "peer", om_tcp_conn_peer_str(c), NULL);
		respond(d, c, m, 403, "Forbidden (TLS required by the dial plan)", NULL);
		return 403;
	}
	/* RFC 3261 §8.2.2: URI scheme, then Require. */
	struct om_sip_uri ruri;
	if (om_sip_uri_parse(m->ruri, m->limits.max_uri, &ruri) != 0 ||
	    (ruri.scheme != OM_SIP_SCHEME_SIP && ruri.scheme != OM_SIP_SCHEME_SIPS &&
	     ruri.scheme != OM_SIP_SCHEME_TEL)) {
		respond(d, c, m, 416, NULL, NULL);
		return 416;
	}
	if (m->method != OM_SIP_METHOD_CANCEL) {
		struct om_buf uns;
		om_buf_init(&uns);
		long n = om_sip_msg_unsupported(m, supported_tags, false, &uns);
		if (n > 0) {
			struct om_buf extra;
			om_buf_init(&extra);
			om_buf_printf(&extra, "Unsupported: %s\r\n",
			              om_buf_cstr(&uns) ? om_buf_cstr(&uns) : "");
			respond(d, c, m, 420, NULL, om_buf_cstr(&extra));
			om_buf_free(&extra);
			om_buf_free(&uns);
			return 420;
		}
		om_buf_free(&uns);
	}
	if (d->calls && call_request)
		return om_calls_recv(d->calls, c, gw, m);
	switch (m->method) {
	case OM_SIP_METHOD_OPTIONS:
		respond(d, c, m, 200, NULL,
		        "Allow: INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, UPDATE\r\n"
		        "Accept: application/sdp\r\nSupported: timer\r\n");
		return 200;
	case OM_SIP_METHOD_INVITE:
		if (gw->status == OM_GW_NONEWCALLS) {
			respond(d, c, m, 503, "Service Unavailable (gateway draining)",
			        "Retry-After: 300\r\n");
			return 503;
		}
		respond(d, c, m, 405, NULL, allow_hdr);
		return 405;
	case OM_SIP_METHOD_CANCEL:
		respond(d, c, m, 481, NULL, NULL);
		return 481;
	case OM_SIP_METHOD_OTHER:
		respond(d, c, m, 501, NULL, allow_hdr);
		return 501;
	default:
		respond(d, c, m, 405, NULL, allow_hdr);
		return 405;
	}
}

static void on_msg(struct om_tcp_conn *c, const char *buf, size_t len, void *user, void *arg)
{
	struct om_sipd *d = arg;
	/* Trust again, against the snapshot in force now. */
	bool tls = om_tcp_conn_tls(c) != NULL;
	const struct om_dir_gateway *gw =
	    tls       ? tls_gateway(d, user)
	    : d->snap ? om_dir_snapshot_gateway_by_addr(d->snap, om_tcp_conn_peer(c))
	              : NULL;
	if (!gw) {
		om_tcp_conn_abort(c);
		return;
	}
	struct om_sip_msg *m = NULL;
	enum om_sip_reason reason = 0;
	int rc = om_sip_msg_parse(buf, len, &d->limits, &m, &reason);
	if (rc != 0) {
		/* The framing is intact, so the connection stays. */
		d->bad_requests++;
		om_log(OM_LOG_INFO, "unparsable SIP message", "peer", om_tcp_conn_peer_str(c),
		       "reason", om_sip_reason_str(reason), NULL);
		if (reason != OM_SIP_R_BAD_STATUS && reason != OM_SIP_R_NOMEM)
			respond_unparsable(d, c, buf, len, om_sip_reason_status(reason));
		return;
	}
	if (!m->is_request) {
		if (d->calls)
			om_calls_recv(d->calls, c, gw, m); /* our BYE, refresh... */
		else
			d->responses_ignored++;
	} else {
		int status = handle_request(d, c, gw, m, tls);
		/* RFC 5923 ;alias: only a mutual-TLS peer, and only a request
		 * openum accepted, may make the connection reusable for
		 * requests to the gateway (trust/trust.h). */
		struct om_sip_via via;
		if (tls && status >= 100 && status < 300 && om_sip_msg_via_top(m, &via) == 0 &&
		    via.has_alias)
			om_flow_set_alias(d->flows, om_tcp_conn_id(c), true);
	}
	om_sip_msg_free(m);
}

/* An open TLS connection against the new trust: its chain against the
 * current trusted store, its names against the current snapshot. */
static void recheck_tls(struct om_sipd *d, struct om_tcp_conn *c, struct om_tls_sess *t,
                        struct tls_peer *p)
{
	if (!p)
		return; /* handshake not finished: it will meet the new trust */
	if (p->outbound) {
		/* Ours: the gateway must still be trusted and named so. */
		enum om_tls_reject why = OM_TLS_R_NONE;
		if (!tls_gateway(d, p))
			why = OM_TLS_R_UNTRUSTED_NOW;
		else if (d->tls && om_tls_chain_verify(om_tls_ctx_store(d->tls),
		                                       om_tls_ctx_opts(d->tls)->security_level,
		                                       om_tls_sess_peer_cert(t),
		                                       om_tls_sess_peer_chain(t), &why) == 0)
			om_tls_client_check_name(t, p->tls_name, &why);
		if (why != OM_TLS_R_NONE) {
			tls_reject_event(d, c, why, "re-checked after a reload",
			                 om_tls_sess_peer_cert(t), "reload");
			om_tcp_conn_abort(c);
		}
		return;
	}
	X509 *x = om_tls_sess_peer_cert(t);
	enum om_tls_reject r = OM_TLS_R_NONE;
	const struct om_dir_gateway *gw = NULL;
	bool server_only;
	if (d->tls &&
	    om_tls_chain_verify(om_tls_ctx_store(d->tls), om_tls_ctx_opts(d->tls)->security_level,
	                        x, om_tls_sess_peer_chain(t), &r) == EACCES) {
		/* r set */
	} else {
		r = identify(d, x, &gw, &server_only);
		if (r == OM_TLS_R_NONE && gw->id != p->gw_id)
			r = OM_TLS_R_UNTRUSTED_NOW;
	}
	if (r != OM_TLS_R_NONE) {
		tls_reject_event(d, c, r, "re-checked after a reload", x, "reload");
		om_log(OM_LOG_INFO, "TLS peer no longer trusted: disconnected", "peer",
		       om_tcp_conn_peer_str(c), "reason", om_tls_reject_str(r), NULL);
		om_tcp_conn_abort(c);
		return;
	}
	snprintf(p->tls_name, sizeof(p->tls_name), "%s", gw->tls_name);
	om_flow_set_gateway(d->flows, om_tcp_conn_id(c), gw->id);
}

static void recheck(struct om_tcp_conn *c, void *user, void *arg)
{
	struct om_sipd *d = arg;
	struct om_tls_sess *t = om_tcp_conn_tls(c);
	if (t) {
		recheck_tls(d, c, t, user);
		return;
	}
	const struct om_dir_gateway *gw =
	    om_dir_snapshot_gateway_by_addr(d->snap, om_tcp_conn_peer(c));
	if (!gw) {
		om_log(OM_LOG_INFO, "peer no longer a trusted gateway: disconnected", "peer",
		       om_tcp_conn_peer_str(c), NULL);
		om_tcp_conn_abort(c);
		return;
	}
	/* A flow only while the gateway is configured for TCP (see on_accept). */
	uint64_t id = om_tcp_conn_id(c);
	if (gw->transport != OM_TRANSPORT_TCP)
		om_flow_remove(d->flows, id);
	else if (om_flow_get(d->flows, id))
		om_flow_set_gateway(d->flows, id, gw->id);
	else if (om_flow_add(d->flows, id, gw->id, om_tcp_conn_peer(c), OM_FLOW_TCP) != 0)
		om_tcp_conn_abort(c);
}

void om_sipd_set_snapshot(struct om_sipd *d, struct om_dir_snapshot *snap)
{
	struct om_dir_snapshot *old = d->snap;
	d->snap = om_dir_snapshot_ref(snap);
	om_dir_snapshot_free(old);
	if (d->calls)
		om_calls_set_snapshot(d->calls, snap);
	if (d->tcp)
		om_tcp_server_foreach(d->tcp, recheck, d);
}

/* Enough descriptors for max_connections and the calls' RTP sockets
 * (systemd gives a service a soft limit of 1024): the soft limit is raised
 * toward the hard one; short of it, a warning says what cannot be reached. */
static void raise_nofile(const struct om_config *cfg)
{
	struct rlimit rl;
	rlim_t need = (rlim_t)cfg->max_connections + 2 * (rlim_t)cfg->max_calls + 256;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= need)
		return;
	rl.rlim_cur = rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need ? rl.rlim_max : need;
	setrlimit(RLIMIT_NOFILE, &rl);
	if (rl.rlim_cur < need) {
		char have[24], want[24];
		snprintf(have, sizeof(have), "%llu", (unsigned long long)rl.rlim_cur);
		snprintf(want, sizeof(want), "%llu", (unsigned long long)need);
		om_log(OM_LOG_WARNING,
		       "too few file descriptors for max_connections and max_calls: raise "
		       "LimitNOFILE",
		       "limit", have, "needed", want, NULL);
	}
}

int om_sipd_new(uv_loop_t *loop, const struct om_config *cfg, const char *data_dir,
                struct om_sipd **out, char *err, size_t errlen)
{
	struct om_sipd *d = om_calloc(1, sizeof(*d));
	int rc;
	if (!d) {
		snprintf(err, errlen, "out of memory");
		return ENOMEM;
	}
	d->loop = loop;
	d->strict_eku = cfg->strict_eku;
	om_buf_init(&d->out);
	if (RAND_bytes((unsigned char *)d->tag_key, sizeof(d->tag_key)) != 1) {
		snprintf(err, errlen, "no random bytes for tags");
		om_free(d);
		return EIO;
	}
	raise_nofile(cfg);
	om_sip_limits_default(&d->limits);
	snprintf(d->fqdn, sizeof(d->fqdn), "%s", cfg->fqdn);
	rc = om_flow_table_new(&d->flows);
	if (rc) {
		snprintf(err, errlen, "out of memory");
		om_free(d);
		return rc;
	}
	struct om_tcp_handlers h = {
		.accept_h = on_accept,
		.msg_h = on_msg,
		.frame_error_h = on_frame_error,
		.close_h = on_close,
		.tls_h = on_tls,
		.tls_fail_h = on_tls_fail,
		.connect_h = on_connected,
		.refuse_h = on_refuse,
		.arg = d,
	};
	struct om_tcp_limits lim;
	om_tcp_limits_default(&lim);
	lim.max_msg = d->limits.max_msg;
	lim.idle_ms = (uint64_t)cfg->tcp_idle_timeout * 1000;
	lim.partial_ms = (uint64_t)cfg->sip_message_timeout * 1000;
	lim.max_conns = cfg->max_connections;
	lim.max_conns_peer = cfg->max_connections_per_peer;
	lim.max_pending = om_config_max_handshakes(cfg);
	lim.max_pending_peer = cfg->max_handshakes_per_peer;
	lim.v6_prefix = cfg->peer_ipv6_prefix;
	lim.handshake_ms = (uint64_t)cfg->tls_handshake_timeout * 1000;
	d->tls_source_check = cfg->tls_source_check;
	rc = om_tcp_server_new(loop, &lim, &h, &d->tcp);
	if (rc) {
		snprintf(err, errlen, "out of memory");
		om_flow_table_free(d->flows);
		om_free(d);
		return rc;
	}
	struct om_calls_env env = { .loop = loop,
		                    .flows = d->flows,
		                    .data_dir = data_dir,
		                    .connect_h = calls_connect,
		                    .arg = d };
	rc = om_calls_new(&env, cfg, &d->calls, err, errlen);
	if (rc) {
		om_sipd_close(d);
		return rc;
	}
	for (size_t i = 0; i < cfg->n_sip_tcp; i++) {
		rc = om_tcp_server_listen(d->tcp, cfg->sip_tcp[i].host, cfg->sip_tcp[i].port);
		if (rc) {
			char where[128];
			om_config_listen_str(&cfg->sip_tcp[i], 1, where, sizeof(where));
			snprintf(err, errlen, "cannot listen on TCP %s: %s", where, strerror(rc));
			om_sipd_close(d);
			return rc;
		}
		d->n_tcp++;
	}
	*out = d;
	return 0;
}

int om_sipd_tcp_port(struct om_sipd *d, size_t i)
{
	return om_tcp_server_port(d->tcp, i);
}

int om_sipd_tls_start(struct om_sipd *d, const struct om_config *cfg, struct om_tls_ctx *ctx,
                      char *err, size_t errlen)
{
	d->tls_source_check = cfg->tls_source_check;
	om_sipd_set_tls(d, ctx, cfg->strict_eku);
	if (d->n_tls)
		return 0;
	for (size_t i = 0; i < cfg->n_sip_tls; i++) {
		int rc =
		    om_tcp_server_listen_tls(d->tcp, cfg->sip_tls[i].host, cfg->sip_tls[i].port);
		if (rc) {
			char where[128];
			om_config_listen_str(&cfg->sip_tls[i], 1, where, sizeof(where));
			snprintf(err, errlen, "cannot listen on TLS %s: %s", where, strerror(rc));
			return rc;
		}
		d->n_tls++;
	}
	return 0;
}

bool om_sipd_tls_listening(const struct om_sipd *d)
{
	return d->n_tls > 0;
}

void om_sipd_set_tls(struct om_sipd *d, struct om_tls_ctx *ctx, bool strict_eku)
{
	struct om_tls_ctx *old = d->tls;
	om_tls_ctx_supersede(old, ctx); /* handshakes under way meet the new trust */
	d->tls = om_tls_ctx_ref(ctx);
	d->strict_eku = strict_eku;
	om_tls_ctx_free(old);
	/* Connections we open present the same certificate (R5). */
	struct om_tls_ctx *client = NULL;
	char err[256];
	if (ctx && om_tls_client_ctx_from(ctx, &client, err, sizeof(err)) != 0)
		om_log(OM_LOG_ERROR, "no TLS client context: openum cannot connect out", "error",
		       err, NULL);
	om_tls_ctx_free(d->tls_client);
	d->tls_client = client;
	om_tcp_server_set_tls(d->tcp, ctx);
	if (old && old != ctx)
		om_tcp_server_foreach(d->tcp, recheck, d);
}

void om_sipd_set_peer_cert_hook(struct om_sipd *d, om_sipd_peer_cert_h h, void *arg)
{
	d->peer_cert_h = h;
	d->peer_cert_arg = arg;
}

static void sipd_calls_closed(void *arg)
{
	struct om_sipd *d = arg;
	void (*done)(void *) = d->close_done;
	void *darg = d->close_arg;
	d->calls = NULL;
	om_tcp_server_close(d->tcp);
	om_tls_ctx_free(d->tls);
	om_tls_ctx_free(d->tls_client);
	om_flow_table_free(d->flows);
	om_dir_snapshot_free(d->snap);
	om_buf_free(&d->out);
	om_free(d);
	if (done)
		done(darg);
}

void om_sipd_close(struct om_sipd *d)
{
	om_sipd_close_then(d, NULL, NULL);
}

void om_sipd_close_then(struct om_sipd *d, void (*done)(void *arg), void *arg)
{
	if (!d) {
		if (done)
			done(arg);
		return;
	}
	/* The calls go first (their BYEs are answered over the connections,
	 * for two seconds at most); the rest when they are gone. */
	d->close_done = done;
	d->close_arg = arg;
	struct om_calls *cs = d->calls;
	if (!cs) {
		sipd_calls_closed(d);
		return;
	}
	om_calls_close(cs, sipd_calls_closed, d);
}

void om_sipd_set_delivery(struct om_sipd *d, struct om_delivery *del)
{
	if (d && d->calls)
		om_calls_set_delivery(d->calls, del);
}

void om_sipd_drain(struct om_sipd *d, unsigned timeout_ms, void (*done)(void *arg), void *arg)
{
	if (d && d->calls)
		om_calls_drain(d->calls, timeout_ms, done, arg);
	else if (done)
		done(arg);
}

void om_sipd_set_config(struct om_sipd *d, const struct om_config *cfg)
{
	if (d->calls)
		om_calls_set_config(d->calls, cfg);
}

void om_sipd_calls_json(struct om_sipd *d, struct om_buf *out)
{
	if (d->calls)
		om_calls_json(d->calls, out);
	else
		om_buf_adds(out, "{\"calls\":[],\"count\":0}");
}

void om_sipd_status_json(struct om_sipd *d, struct om_buf *out)
{
	struct om_tcp_stats st;
	om_tcp_server_stats(d->tcp, &st);
	om_buf_printf(
	    out,
	    ",\"sip\":{\"tcp_connections\":%zu,\"tcp_accepted\":%llu,"
	    "\"untrusted_dropped\":%llu,\"over_limit\":%llu,\"messages\":%llu,"
	    "\"answered\":%llu,\"bad_requests\":%llu,\"refused_mode\":%llu,"
	    "\"keepalives\":%llu,\"closed_idle\":%llu,\"closed_partial\":%llu,"
	    "\"closed_framing\":%llu,\"closed_overflow\":%llu,\"flows\":%zu,"
	    "\"flows_alias\":%zu,"
	    "\"tls_listeners\":%zu,\"tls_handshakes\":%llu,\"tls_failed\":%llu,"
	    "\"tls_rejected\":%llu,\"tls_deferred\":%llu,\"tls_pending\":%zu,"
	    "\"over_connections\":%llu,\"over_connections_peer\":%llu,"
	    "\"over_handshakes\":%llu,\"closed_handshake\":%llu,"
	    "\"accept_nomem\":%llu,\"writes\":%llu}",
	    st.conns, (unsigned long long)st.accepted, (unsigned long long)d->dropped_untrusted,
	    (unsigned long long)st.over_limit, (unsigned long long)st.messages,
	    (unsigned long long)d->answered, (unsigned long long)d->bad_requests,
	    (unsigned long long)d->refused_mode, (unsigned long long)st.keepalives,
	    (unsigned long long)st.closed_idle, (unsigned long long)st.closed_partial,
	    (unsigned long long)st.closed_framing, (unsigned long long)st.closed_overflow,
	    om_flow_count(d->flows), om_flow_alias_count(d->flows), d->n_tls,
	    (unsigned long long)st.tls_handshakes, (unsigned long long)st.tls_failed,
	    (unsigned long long)d->tls_rejected, (unsigned long long)st.tls_deferred, st.pending,
	    (unsigned long long)st.over_conns, (unsigned long long)st.over_conns_peer,
	    (unsigned long long)st.over_pending, (unsigned long long)st.closed_handshake,
	    (unsigned long long)st.accept_nomem, (unsigned long long)st.writes);
	if (d->calls)
		om_calls_status_json(d->calls, out);
}

void om_sipd_stats(struct om_sipd *d, struct om_sipd_stats *st)
{
	memset(st, 0, sizeof(*st));
	om_tcp_server_stats(d->tcp, &st->tcp);
	memcpy(st->tls_rejected, d->tls_rejected_by, sizeof(st->tls_rejected));
	st->untrusted_dropped = d->dropped_untrusted;
	st->bad_requests = d->bad_requests;
	st->refused_mode = d->refused_mode;
	st->flows = om_flow_count(d->flows);
	st->calls = d->calls;
}
