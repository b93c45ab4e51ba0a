/* uac_net.c — the test UAC's connections: TCP or mutual TLS (openum's own
 * tls/ client and server sessions over memory buffers), stream framing
 * (RFC 3261 §18.3), and a listener the server may connect back to. A
 * connect and TLS handshake bounded in time, then non-blocking I/O driven
 * by poll(2): what the socket does not take at once is queued (at most
 * UAC_WQ_MAX bytes per connection) and sent when it is writable — a send
 * never waits. */
#include "testcall/uac_int.h"
#include "core/alloc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>

static int sockaddr_of(const char *host, uint16_t port, struct sockaddr_storage *ss, socklen_t *len)
{
	memset(ss, 0, sizeof(*ss));
	struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
	if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
		a4->sin_family = AF_INET;
		a4->sin_port = htons(port);
		*len = sizeof(*a4);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons(port);
		*len = sizeof(*a6);
		return 0;
	}
	return EINVAL;
}

/* ------------------------------------------------------------ PEM */

int uac_tls_ctx(const struct om_uac_cfg *cfg, bool server, struct om_tls_ctx **out, char *err,
                size_t errlen)
{
	X509 *cert = NULL;
	STACK_OF(X509) *chain = sk_X509_new_null();
	EVP_PKEY *key = NULL;
	X509_STORE *store = X509_STORE_new();
	FILE *f = NULL;
	int rc = EINVAL;
	if (!chain || !store) {
		snprintf(err, errlen, "out of memory");
		rc = ENOMEM;
		goto out;
	}
	if (cfg->cert_x509 && cfg->key_pkey && cfg->ca_store) {
		/* Objects the caller holds (a certificate store). */
		struct om_tls_opts o = { .min_version = 12, .security_level = 1 };
		rc = server ? om_tls_ctx_new(&o, cfg->cert_x509, cfg->chain_x509, cfg->key_pkey,
		                             cfg->ca_store, out, err, errlen)
		            : om_tls_client_ctx_new(&o, cfg->cert_x509, cfg->chain_x509,
		                                    cfg->key_pkey, cfg->ca_store, out, err, errlen);
		goto out;
	}
	if (!cfg->cert || !cfg->key || !cfg->ca) {
		snprintf(err, errlen, "TLS needs --cert, --key and --ca");
		goto out;
	}
	if (!(f = fopen(cfg->cert, "r"))) {
		snprintf(err, errlen, "%s: %s", cfg->cert, strerror(errno));
		goto out;
	}
	cert = PEM_read_X509(f, NULL, NULL, NULL);
	X509 *x;
	while ((x = PEM_read_X509(f, NULL, NULL, NULL)))
		sk_X509_push(chain, x);
	fclose(f);
	if (!(f = fopen(cfg->key, "r"))) {
		snprintf(err, errlen, "%s: %s", cfg->key, strerror(errno));
		goto out;
	}
	key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	if (!(f = fopen(cfg->ca, "r"))) {
		snprintf(err, errlen, "%s: %s", cfg->ca, strerror(errno));
		goto out;
	}
	while ((x = PEM_read_X509(f, NULL, NULL, NULL))) {
		X509_STORE_add_cert(store, x);
		X509_free(x);
	}
	fclose(f);
	ERR_clear_error();
	if (!cert || !key) {
		snprintf(err, errlen, "cannot read the certificate or the key (PEM)");
		goto out;
	}
	struct om_tls_opts o = { .min_version = 12, .security_level = 1 };
	rc = server ? om_tls_ctx_new(&o, cert, chain, key, store, out, err, errlen)
	            : om_tls_client_ctx_new(&o, cert, chain, key, store, out, err, errlen);
out:
	X509_free(cert);
	sk_X509_pop_free(chain, X509_free);
	EVP_PKEY_free(key);
	X509_STORE_free(store);
	return rc;
}

/* ------------------------------------------------------------ connections */

static int set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	return fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 ? errno : 0;
}

/* Queues what the socket does not take now (never waits: a load
 * generator's loop must keep its packet clock). Bounded by UAC_WQ_MAX. */
static int wq_add(struct uac_conn *c, const char *p, size_t len)
{
	if (c->woff && c->woff == c->wlen)
		c->woff = c->wlen = 0;
	if (c->wlen - c->woff + len > UAC_WQ_MAX)
		return ENOBUFS;
	if (c->wlen + len > c->wcap) {
		if (c->woff) {
			memmove(c->wq, c->wq + c->woff, c->wlen - c->woff);
			c->wlen -= c->woff;
			c->woff = 0;
		}
		size_t cap = c->wcap ? c->wcap : 16384;
		while (cap < c->wlen + len)
			cap *= 2;
		if (cap != c->wcap) {
			char *q = om_realloc(c->wq, cap);
			if (!q)
				return ENOMEM;
			c->wq = q;
			c->wcap = cap;
		}
	}
	memcpy(c->wq + c->wlen, p, len);
	c->wlen += len;
	return 0;
}

int uac_conn_flush(struct uac_conn *c)
{
	while (c->woff < c->wlen) {
		ssize_t n = send(c->fd, c->wq + c->woff, c->wlen - c->woff, MSG_NOSIGNAL);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			c->closed = true;
			return errno;
		}
		c->woff += (size_t)n;
	}
	c->woff = c->wlen = 0;
	return 0;
}

static int raw_write(struct uac_conn *c, const char *p, size_t len)
{
	if (c->woff < c->wlen) /* keep the order: behind what waits */
		return wq_add(c, p, len);
	while (len) {
		ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return wq_add(c, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			c->closed = true;
			return errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int tls_flush(struct uac_conn *c)
{
	char buf[16384];
	size_t n;
	while ((n = om_tls_sess_output(c->tls, buf, sizeof(buf))) > 0) {
		int rc = raw_write(c, buf, n);
		if (rc)
			return rc;
	}
	return 0;
}

int uac_conn_send(struct uac_conn *c, const char *buf, size_t len)
{
	if (c->closed)
		return EPIPE;
	if (!c->tls)
		return raw_write(c, buf, len);
	int rc = om_tls_sess_write(c->tls, buf, len);
	if (rc)
		return rc;
	return tls_flush(c);
}

/* Drives a TLS handshake to its end (blocking up to timeout_ms). */
static int tls_handshake(struct uac_conn *c, int timeout_ms, char *err, size_t errlen)
{
	char buf[16384];
	for (;;) {
		enum om_tls_res r = om_tls_sess_handshake(c->tls);
		int frc = tls_flush(c);
		if (!frc && c->woff < c->wlen) /* the socket blocks here: SO_SNDTIMEO */
			frc = uac_conn_flush(c);
		if (r == OM_TLS_OK)
			return frc;
		if (r == OM_TLS_FAIL || frc) {
			char detail[256];
			enum om_tls_reject why = om_tls_sess_reason(c->tls, detail, sizeof(detail));
			snprintf(err, errlen, "TLS handshake failed: %s (%s)",
			         om_tls_reject_str(why), detail);
			return ECONNREFUSED;
		}
		struct pollfd pf = { .fd = c->fd, .events = POLLIN };
		if (poll(&pf, 1, timeout_ms) <= 0) {
			snprintf(err, errlen, "TLS handshake timed out");
			return ETIMEDOUT;
		}
		ssize_t n = recv(c->fd, buf, sizeof(buf), 0);
		if (n <= 0) {
			snprintf(err, errlen, "connection closed during the TLS handshake");
			return ECONNRESET;
		}
		om_tls_sess_input(c->tls, buf, (size_t)n);
	}
}

static int64_t mono_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t asn1_ms(const ASN1_TIME *t)
{
	struct tm tm;
	if (!t || ASN1_TIME_to_tm(t, &tm) != 1)
		return 0;
	return (int64_t)timegm(&tm) * 1000;
}

/* What the report says about the server's certificate and the session. */
static void report_tls(struct om_uac_conn_report *r, const struct om_tls_sess *t)
{
	const char *v = om_tls_sess_version(t), *ci = om_tls_sess_cipher(t);
	snprintf(r->version, sizeof(r->version), "%s", v ? v : "");
	snprintf(r->cipher, sizeof(r->cipher), "%s", ci ? ci : "");
	X509 *x = om_tls_sess_peer_cert(t);
	if (!x)
		return;
	r->have_cert = true;
	om_tls_cert_subject(x, r->subject, sizeof(r->subject));
	om_tls_cert_issuer(x, r->issuer, sizeof(r->issuer));
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;
	if (X509_digest(x, EVP_sha1(), md, &mdlen) == 1)
		for (unsigned i = 0; i < mdlen && i < 20; i++)
			snprintf(r->sha1 + 2 * i, 3, "%02X", md[i]);
	r->not_before_ms = asn1_ms(X509_get0_notBefore(x));
	r->not_after_ms = asn1_ms(X509_get0_notAfter(x));
	struct om_tls_names n;
	if (om_tls_cert_names(x, &n) == 0) {
		size_t off = 0;
		for (size_t i = 0; i < n.n && off + 8 < sizeof(r->sans); i++)
			off += (size_t)snprintf(r->sans + off, sizeof(r->sans) - off, "%s%s",
			                        off ? ", " : "", n.v[i]);
		om_tls_names_free(&n);
	}
	ERR_clear_error();
}

int uac_conn_open(struct om_uac *u, struct uac_conn *c, int timeout_ms, char *err, size_t errlen)
{
	const struct om_uac_cfg *cfg = &u->cfg;
	struct om_uac_conn_report dummy, *rep = cfg->report ? cfg->report : &dummy;
	struct sockaddr_storage ss, src;
	socklen_t len, slen;
	if (sockaddr_of(cfg->server, cfg->port, &ss, &len) != 0) {
		snprintf(err, errlen, "server must be a numeric address: %s", cfg->server);
		rep->failed = OM_UAC_STAGE_SETUP;
		return rep->err = EINVAL;
	}
	int64_t t0 = mono_now_ms();
	rep->failed = OM_UAC_STAGE_CONNECT;
	c->fd = socket(ss.ss_family, SOCK_STREAM, 0);
	if (c->fd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return rep->err = errno;
	}
	if (cfg->bind && sockaddr_of(cfg->bind, 0, &src, &slen) == 0 &&
	    bind(c->fd, (struct sockaddr *)&src, slen) != 0) {
		snprintf(err, errlen, "bind %s: %s", cfg->bind, strerror(errno));
		return rep->err = errno;
	}
	/* A connect bounded by timeout_ms (a firewall that drops SYNs). */
	int rc = set_nonblock(c->fd);
	if (!rc && connect(c->fd, (struct sockaddr *)&ss, len) != 0) {
		rc = errno;
		if (rc == EINPROGRESS) {
			struct pollfd pf = { .fd = c->fd, .events = POLLOUT };
			int pr = poll(&pf, 1, timeout_ms);
			socklen_t el = sizeof(rc);
			if (pr == 0)
				rc = ETIMEDOUT;
			else if (pr < 0 || getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &rc, &el) != 0)
				rc = errno;
		}
	}
	rep->connect_ms = mono_now_ms() - t0;
	if (rc) {
		snprintf(err, errlen, "connect %s:%u: %s", cfg->server, cfg->port, strerror(rc));
		return rep->err = rc;
	}
	int fl = fcntl(c->fd, F_GETFL);
	if (fl < 0 || fcntl(c->fd, F_SETFL, fl & ~O_NONBLOCK) < 0)
		return rep->err = errno;
	struct timeval tv = { .tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000 };
	setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	int one = 1;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (cfg->tls) {
		t0 = mono_now_ms();
		rep->failed = OM_UAC_STAGE_TLS;
		rc = om_tls_client_sess_new(u->cli_ctx, cfg->tls_name, &c->tls);
		if (rc) {
			snprintf(err, errlen, "out of memory");
			return rep->err = rc;
		}
		rc = tls_handshake(c, timeout_ms, err, errlen);
		rep->tls_ms = mono_now_ms() - t0;
		report_tls(rep, c->tls);
		if (rc) {
			rep->tls_reason =
			    om_tls_sess_reason(c->tls, rep->tls_detail, sizeof(rep->tls_detail));
			return rep->err = rc;
		}
		enum om_tls_reject why;
		if (om_tls_client_check_name(c->tls, cfg->tls_name, &why) != 0) {
			snprintf(err, errlen, "the server's certificate does not carry %s: %s",
			         cfg->tls_name, om_tls_reject_str(why));
			rep->failed = OM_UAC_STAGE_NAME;
			rep->tls_reason = why;
			return rep->err = EACCES;
		}
	}
	rep->failed = OM_UAC_STAGE_NONE;
	return set_nonblock(c->fd);
}

enum om_tls_reject om_uac_tls_failure(const struct om_uac *u, char *detail, size_t len)
{
	if (len)
		detail[0] = '\0';
	const struct uac_conn *c = &u->conns[0];
	if (!c->tls || !c->closed)
		return OM_TLS_R_NONE;
	enum om_tls_reject r = om_tls_sess_reason(c->tls, detail, len);
	if (r == OM_TLS_R_NONE || !detail[0])
		return OM_TLS_R_NONE;
	return r;
}

void uac_conn_close(struct uac_conn *c)
{
	if (c->fd >= 0) {
		if (c->tls && !c->closed) {
			om_tls_sess_shutdown(c->tls);
			tls_flush(c);
		}
		close(c->fd);
	}
	c->fd = -1;
	om_tls_sess_free(c->tls);
	c->tls = NULL;
	om_free(c->rbuf);
	c->rbuf = NULL;
	c->rlen = c->rcap = 0;
	om_free(c->wq);
	c->wq = NULL;
	c->woff = c->wlen = c->wcap = 0;
	c->closed = true;
}

/* Reads what is there and hands every complete message to uac_recv. */
static int conn_read(struct om_uac *u, struct uac_conn *c)
{
	char buf[16384];
	int ret = 0;
	for (;;) {
		ssize_t n = recv(c->fd, buf, sizeof(buf), 0);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			/* What came before the close (a BYE) is still handled. */
			c->closed = true;
			ret = ECONNRESET;
			break;
		}
		const char *data = buf;
		size_t dlen = (size_t)n;
		char plain[16384];
		if (c->tls) {
			om_tls_sess_input(c->tls, buf, (size_t)n);
			if (!om_tls_sess_established(c->tls)) {
				enum om_tls_res r = om_tls_sess_handshake(c->tls);
				tls_flush(c);
				if (r == OM_TLS_FAIL) {
					c->closed = true;
					return ECONNRESET;
				}
				if (r != OM_TLS_OK)
					continue;
			}
		}
		for (;;) {
			if (c->tls) {
				size_t got = 0;
				enum om_tls_res r =
				    om_tls_sess_read(c->tls, plain, sizeof(plain), &got);
				tls_flush(c);
				if (r == OM_TLS_CLOSED || r == OM_TLS_FAIL) {
					c->closed = true;
					ret = ECONNRESET;
					break;
				}
				if (r != OM_TLS_OK)
					break;
				data = plain;
				dlen = got;
			}
			if (c->rlen + dlen > c->rcap) {
				size_t cap = c->rcap ? c->rcap : 8192;
				while (cap < c->rlen + dlen)
					cap *= 2;
				if (cap > 4 * OM_SIP_MAX_MSG)
					return EMSGSIZE;
				char *nb = om_realloc(c->rbuf, cap);
				if (!nb)
					return ENOMEM;
				c->rbuf = nb;
				c->rcap = cap;
			}
			memcpy(c->rbuf + c->rlen, data, dlen);
			c->rlen += dlen;
			if (!c->tls)
				break;
		}
	}
	size_t off = 0;
	for (;;) {
		size_t mlen = 0;
		enum om_sip_reason r;
		enum om_sip_frame_res fr =
		    om_sip_frame(c->rbuf + off, c->rlen - off, OM_SIP_MAX_MSG, &mlen, &r);
		if (fr == OM_SIP_FRAME_SKIP) {
			off += mlen;
			continue;
		}
		if (fr == OM_SIP_FRAME_ERROR) {
			c->closed = true;
			return EBADMSG;
		}
		if (fr != OM_SIP_FRAME_MSG)
			break;
		uac_recv(u, c, c->rbuf + off, mlen);
		off += mlen;
	}
	if (off) {
		memmove(c->rbuf, c->rbuf + off, c->rlen - off);
		c->rlen -= off;
	}
	return ret;
}

int uac_listen(struct om_uac *u, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t len;
	const char *host = u->cfg.bind ? u->cfg.bind : "127.0.0.1";
	if (sockaddr_of(host, u->cfg.listen_port, &ss, &len) != 0) {
		snprintf(err, errlen, "bad listen address %s", host);
		return EINVAL;
	}
	u->lfd = socket(ss.ss_family, SOCK_STREAM, 0);
	int one = 1;
	setsockopt(u->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (u->lfd < 0 || bind(u->lfd, (struct sockaddr *)&ss, len) != 0 ||
	    listen(u->lfd, 8) != 0) {
		snprintf(err, errlen, "listen on %s:%u: %s", host, u->cfg.listen_port,
		         strerror(errno));
		return errno;
	}
	return set_nonblock(u->lfd);
}

static void accept_one(struct om_uac *u)
{
	int fd = accept(u->lfd, NULL, NULL);
	if (fd < 0)
		return;
	if (u->nconns == UAC_MAX_CONNS) {
		close(fd);
		return;
	}
	struct uac_conn *c = &u->conns[u->nconns];
	memset(c, 0, sizeof(*c));
	c->fd = fd;
	c->id = ++u->next_conn_id;
	c->accepted = true;
	if (u->cfg.tls && om_tls_sess_new(u->srv_ctx, &c->tls) != 0) {
		close(fd);
		return;
	}
	set_nonblock(fd);
	u->nconns++;
	u->accepted++;
}

int om_uac_run(struct om_uac *u, int timeout_ms)
{
	struct pollfd pf[UAC_MAX_CONNS + 1];
	int64_t next = om_sip_stack_next_timer(u->stack);
	if (next >= 0 && next < timeout_ms)
		timeout_ms = (int)next;
	size_t n = 0;
	for (size_t i = 0; i < u->nconns; i++)
		pf[n++] = (struct pollfd){
			.fd = u->conns[i].closed ? -1 : u->conns[i].fd,
			.events =
			    (short)(POLLIN | (u->conns[i].woff < u->conns[i].wlen ? POLLOUT : 0))
		};
	if (u->lfd >= 0)
		pf[n++] = (struct pollfd){ .fd = u->lfd, .events = POLLIN };
	int rc = poll(pf, n, timeout_ms);
	int ret = 0;
	if (rc > 0) {
		size_t nc = u->nconns;
		for (size_t i = 0; i < nc; i++) {
			struct uac_conn *c = &u->conns[i];
			if ((pf[i].revents & POLLOUT) && uac_conn_flush(c) != 0 && i == 0)
				ret = ECONNRESET;
			if (!(pf[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			if (conn_read(u, c) != 0 && i == 0)
				ret = ECONNRESET;
		}
		if (u->lfd >= 0 && (pf[n - 1].revents & POLLIN))
			accept_one(u);
	}
	om_sip_stack_timers_run(u->stack);
	if (u->conns[0].closed)
		ret = ECONNRESET;
	return ret;
}

bool om_uac_connected(const struct om_uac *u)
{
	return !u->conns[0].closed;
}

bool om_uac_want_write(const struct om_uac *u)
{
	const struct uac_conn *c = &u->conns[0];
	return !c->closed && c->woff < c->wlen;
}

int om_uac_fd(const struct om_uac *u)
{
	return u->conns[0].closed ? -1 : u->conns[0].fd;
}

int64_t om_uac_next_timer(const struct om_uac *u)
{
	return om_sip_stack_next_timer(u->stack);
}

int om_uac_reconnect(struct om_uac *u, int timeout_ms, char *err, size_t errlen)
{
	struct uac_conn *c = &u->conns[0];
	c->closed = true; /* abrupt: no close_notify */
	uac_conn_close(c);
	memset(c, 0, sizeof(*c));
	c->fd = -1;
	c->id = ++u->next_conn_id;
	int rc = uac_conn_open(u, c, timeout_ms, err, errlen);
	if (rc) {
		c->closed = true;
		uac_conn_close(c);
	}
	return rc;
}

int om_uac_local_addr(const struct om_uac *u, char *buf, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	if (u->conns[0].fd < 0 || getsockname(u->conns[0].fd, (struct sockaddr *)&ss, &sl) != 0)
		return errno ? errno : ENOTCONN;
	const void *a = ss.ss_family == AF_INET6
	                    ? (const void *)&((struct sockaddr_in6 *)&ss)->sin6_addr
	                    : (const void *)&((struct sockaddr_in *)&ss)->sin_addr;
	return inet_ntop(ss.ss_family, a, buf, (socklen_t)len) ? 0 : errno;
}
