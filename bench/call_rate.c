/* call_rate.c — `call_rate`: complete SIP calls as fast as a server takes
 * them, for the call-rate benchmark (bench/call_rate.py, docs/performance.md).
 *
 * Each call is INVITE (with an RTP/AVP offer) → 200 → ACK → BYE → 200, no
 * media (RFC 3261 §13, §15). C persistent connections over TCP or mutual
 * TLS, W calls in progress on each: a new INVITE goes out as soon as a call
 * ends, so the server never waits for the generator. The ACK follows the
 * route set of the 2xx (Record-Route reversed, §12.1.2) and goes to its
 * Contact (remote target), so the same load runs against openum (a UAS) and
 * against a proxy that record-routes (Kamailio relaying to a sipp UAS). A
 * non-2xx final response is ACKed (§17.1.1.3) and counted as refused; a
 * request from the server (its BYE, a session refresh) gets 200.
 *
 *   call_rate [-t tcp|tls] [-c CONNS] [-w CALLS_PER_CONN] [-n CALLS]
 *             [-s SOURCE_IP] [-e CERT -k KEY] [-u REQUEST_URI] [-T SECONDS]
 *             HOST PORT
 *
 * Prints one line: calls completed, refused (and of them 503), errors,
 * wall seconds, completed/s. Exit 1 when it could not finish. One thread,
 * epoll, non-blocking sockets, OpenSSL on the socket; every message one
 * snprintf into the connection's write buffer. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define RBUF  (256 * 1024)
#define HVAL  512
#define MAXRR 4

struct call {
	int busy;     /* 1 INVITE sent, 2 ACK and BYE sent */
	uint32_t gen; /* Call-ID generation of this slot */
};

struct conn {
	int fd;
	SSL *ssl;
	int up;
	int want_out;
	char *r;
	size_t rlen;
	char *w;
	size_t wlen, woff, wcap;
	unsigned id;
	struct call *calls;
	long inflight;
};

static const char *host, *src = "127.0.0.1", *cert, *key, *ruri;
static int port, tls;
static long conns = 1, window = 32, total = 10000;
static double max_secs = 300;
static long started, completed, refused, refused_503, errors, ended;
static long by_status[700]; /* final responses that end a call unanswered, by status */
static SSL_CTX *ctx;
static int ep;
static unsigned run; /* unique per process: Call-IDs and branches never repeat */
static const char *body =
    "v=0\r\no=load 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    "m=audio 30000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n"
    "a=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n";

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void die(const char *what)
{
	fprintf(stderr, "call_rate: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void failed(struct conn *c, const char *what)
{
	fprintf(stderr, "call_rate: connection %u: %s\n", c->id, what);
	ERR_print_errors_fp(stderr);
	exit(1);
}

static void wprintf(struct conn *c, const char *fmt, ...)
{
	for (;;) {
		if (c->woff && c->woff == c->wlen)
			c->woff = c->wlen = 0;
		if (c->wcap - c->wlen < 4096) {
			c->wcap = c->wcap * 2 + 65536;
			c->w = realloc(c->w, c->wcap);
			if (!c->w)
				die("realloc");
		}
		va_list ap;
		va_start(ap, fmt);
		int n = vsnprintf(c->w + c->wlen, c->wcap - c->wlen, fmt, ap);
		va_end(ap);
		if (n < 0)
			die("vsnprintf");
		if ((size_t)n < c->wcap - c->wlen) {
			c->wlen += (size_t)n;
			return;
		}
		c->wcap += (size_t)n + 65536;
		c->w = realloc(c->w, c->wcap);
		if (!c->w)
			die("realloc");
	}
}

static const char *tr_name(void)
{
	return tls ? "TLS" : "TCP";
}

static void invite(struct conn *c, long slot)
{
	struct call *k = &c->calls[slot];
	k->busy = 1;
	k->gen++;
	c->inflight++;
	started++;
	wprintf(c,
	        "INVITE %s SIP/2.0\r\n"
	        "Via: SIP/2.0/%s %s:5999;branch=z9hG4bK-%x-%x-%lx-%xi\r\n"
	        "Max-Forwards: 70\r\n"
	        "From: <sip:7777@%s>;tag=f%x-%x-%lx-%x\r\n"
	        "To: <%s>\r\n"
	        "Call-ID: %x-%x-%lx-%x@%s\r\n"
	        "CSeq: 1 INVITE\r\n"
	        "Contact: <sip:7777@%s:5999;transport=%s>\r\n"
	        "Content-Type: application/sdp\r\n"
	        "Content-Length: %zu\r\n\r\n%s",
	        ruri, tr_name(), src, run, c->id, slot, k->gen, src, run, c->id, slot, k->gen, ruri,
	        run, c->id, slot, k->gen, src, src, tls ? "tls" : "tcp", strlen(body), body);
}

static void fill(struct conn *c)
{
	for (long i = 0; i < window && started < total; i++)
		if (!c->calls[i].busy)
			invite(c, i);
}

static void arm(struct conn *c, int out)
{
	if (out == c->want_out)
		return;
	struct epoll_event ev = { .events = EPOLLIN | (out ? EPOLLOUT : 0), .data.ptr = c };
	epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
	c->want_out = out;
}

static int flush(struct conn *c)
{
	while (c->woff < c->wlen) {
		ssize_t n;
		if (c->ssl) {
			int r = SSL_write(c->ssl, c->w + c->woff, (int)(c->wlen - c->woff));
			if (r <= 0) {
				int e = SSL_get_error(c->ssl, r);
				if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
					arm(c, 1);
					return 0;
				}
				return -1;
			}
			n = r;
		} else {
			n = send(c->fd, c->w + c->woff, c->wlen - c->woff, MSG_NOSIGNAL);
			if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
				arm(c, 1);
				return 0;
			}
			if (n <= 0)
				return -1;
		}
		c->woff += (size_t)n;
	}
	c->wlen = c->woff = 0;
	arm(c, 0);
	return 0;
}

/* The value of the first header `name` (or compact form `sh`) in the
 * header section [p, end), copied into out (HVAL bytes); 0 when absent. */
static int hdr(const char *p, const char *end, const char *name, char sh, char *out)
{
	size_t nl = strlen(name);
	for (const char *q = memchr(p, '\n', (size_t)(end - p)); q && q < end;
	     q = memchr(q + 1, '\n', (size_t)(end - q - 1))) {
		const char *v = NULL;
		if (!strncasecmp(q + 1, name, nl) && q[1 + nl] == ':')
			v = q + 2 + nl;
		else if (sh && (q[1] | 0x20) == sh && q[2] == ':')
			v = q + 3;
		if (!v)
			continue;
		while (*v == ' ')
			v++;
		const char *e = memchr(v, '\r', (size_t)(end - v));
		if (!e)
			e = end;
		size_t n = (size_t)(e - v) < HVAL - 1 ? (size_t)(e - v) : HVAL - 1;
		memcpy(out, v, n);
		out[n] = '\0';
		return 1;
	}
	return 0;
}

/* Every Record-Route value of the message, in order (comma-separated
 * values split), at most MAXRR. */
static int record_routes(const char *p, const char *end, char rr[MAXRR][HVAL])
{
	int n = 0;
	for (const char *q = memchr(p, '\n', (size_t)(end - p)); q && q < end;
	     q = memchr(q + 1, '\n', (size_t)(end - q - 1))) {
		if (strncasecmp(q + 1, "Record-Route:", 13))
			continue;
		const char *v = q + 14, *e = memchr(v, '\r', (size_t)(end - v));
		if (!e)
			e = end;
		while (v < e && n < MAXRR) {
			while (v < e && (*v == ' ' || *v == ','))
				v++;
			const char *gt = memchr(v, '>', (size_t)(e - v));
			const char *stop = gt ? memchr(gt, ',', (size_t)(e - gt)) : NULL;
			if (!stop)
				stop = e;
			size_t len = (size_t)(stop - v) < HVAL - 1 ? (size_t)(stop - v) : HVAL - 1;
			if (len) {
				memcpy(rr[n], v, len);
				rr[n][len] = '\0';
				n++;
			}
			v = stop;
		}
	}
	return n;
}

/* The URI inside <...> of a name-addr (or the value itself). */
static void uri_of(const char *v, char *out)
{
	const char *lt = strchr(v, '<'), *gt = lt ? strchr(lt, '>') : NULL;
	if (lt && gt) {
		size_t n = (size_t)(gt - lt - 1);
		memcpy(out, lt + 1, n);
		out[n] = '\0';
	} else {
		snprintf(out, HVAL, "%s", v);
	}
}

static void answer_request(struct conn *c, const char *p, const char *end)
{
	char via[HVAL], from[HVAL], to[HVAL], cid[HVAL], cseq[HVAL];
	if (!hdr(p, end, "Via", 'v', via) || !hdr(p, end, "From", 'f', from) ||
	    !hdr(p, end, "To", 't', to) || !hdr(p, end, "Call-ID", 'i', cid) ||
	    !hdr(p, end, "CSeq", 0, cseq))
		return;
	if (!strncmp(p, "ACK ", 4))
		return;
	wprintf(c,
	        "SIP/2.0 200 OK\r\nVia: %s\r\nFrom: %s\r\nTo: %s\r\nCall-ID: %s\r\nCSeq: %s\r\n"
	        "Content-Length: 0\r\n\r\n",
	        via, from, to, cid, cseq);
}

static void on_response(struct conn *c, const char *p, const char *end)
{
	int status = atoi(p + 8);
	char cid[HVAL], cseq[HVAL], to[HVAL], from[HVAL];
	if (!hdr(p, end, "Call-ID", 'i', cid) || !hdr(p, end, "CSeq", 0, cseq) ||
	    !hdr(p, end, "To", 't', to) || !hdr(p, end, "From", 'f', from))
		failed(c, "a response without Call-ID, CSeq, To or From");
	unsigned r, id, gen;
	long slot;
	if (sscanf(cid, "%x-%x-%lx-%x@", &r, &id, &slot, &gen) != 4 || r != run || id != c->id ||
	    slot < 0 || slot >= window)
		return; /* not one of ours */
	struct call *k = &c->calls[slot];
	if (!k->busy || k->gen != gen)
		return; /* a retransmission after the call ended */
	int is_invite = strstr(cseq, "INVITE") != NULL;
	if (status < 200)
		return;
	if (is_invite && status < 300) {
		if (k->busy != 1)
			return; /* a 2xx again: our ACK is on its way */
		k->busy = 2;
		char rr[MAXRR][HVAL], contact[HVAL], target[HVAL];
		int nrr = record_routes(p, end, rr);
		if (!hdr(p, end, "Contact", 'm', contact))
			failed(c, "a 2xx without Contact");
		uri_of(contact, target);
		char route[MAXRR * HVAL + 16];
		size_t rl = 0;
		route[0] = '\0';
		for (int i = nrr - 1; i >= 0; i--) /* §12.1.2: reversed */
			rl += (size_t)snprintf(route + rl, sizeof(route) - rl, "Route: %s\r\n",
			                       rr[i]);
		for (int m = 0; m < 2; m++)
			wprintf(c,
			        "%s %s SIP/2.0\r\n"
			        "Via: SIP/2.0/%s %s:5999;branch=z9hG4bK-%x-%x-%lx-%x%c\r\n"
			        "Max-Forwards: 70\r\n%s"
			        "From: %s\r\nTo: %s\r\nCall-ID: %s\r\nCSeq: %d %s\r\n"
			        "Content-Length: 0\r\n\r\n",
			        m ? "BYE" : "ACK", target, tr_name(), src, run, c->id, slot, gen,
			        m ? 'b' : 'a', route, from, to, cid, m ? 2 : 1, m ? "BYE" : "ACK");
		return;
	}
	if (is_invite && k->busy == 1) {
		/* §17.1.1.3: the ACK of a non-2xx, same branch as the INVITE */
		char via[HVAL];
		hdr(p, end, "Via", 'v', via);
		wprintf(c,
		        "ACK %s SIP/2.0\r\nVia: %s\r\nMax-Forwards: 70\r\nFrom: %s\r\nTo: %s\r\n"
		        "Call-ID: %s\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n",
		        ruri, via, from, to, cid);
		refused++;
		if (status < 700)
			by_status[status]++;
		if (status == 503)
			refused_503++;
	} else if (strstr(cseq, "BYE") && k->busy == 2) {
		if (status < 300) {
			completed++;
		} else {
			errors++;
			if (status < 700)
				by_status[status]++;
		}
	} else {
		return;
	}
	k->busy = 0;
	c->inflight--;
	ended++;
}

static void frame(struct conn *c)
{
	size_t pos = 0;
	while (pos < c->rlen) {
		char *p = c->r + pos, *end = memmem(p, c->rlen - pos, "\r\n\r\n", 4);
		if (!end)
			break;
		size_t hlen = (size_t)(end - p) + 4, cl = 0;
		char v[HVAL];
		if (hdr(p, end, "Content-Length", 'l', v))
			cl = strtoul(v, NULL, 10);
		if (pos + hlen + cl > c->rlen)
			break;
		if (!memcmp(p, "SIP/2.0 ", 8))
			on_response(c, p, end + 2);
		else
			answer_request(c, p, end + 2);
		pos += hlen + cl;
	}
	memmove(c->r, c->r + pos, c->rlen - pos);
	c->rlen -= pos;
}

static void on_readable(struct conn *c)
{
	for (;;) {
		ssize_t n;
		if (c->rlen == RBUF) {
			frame(c);
			if (c->rlen == RBUF)
				failed(c, "a message larger than the buffer");
		}
		if (c->ssl) {
			int r = SSL_read(c->ssl, c->r + c->rlen, (int)(RBUF - c->rlen));
			if (r <= 0) {
				int e = SSL_get_error(c->ssl, r);
				if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
					break;
				failed(c, "closed by the server");
			}
			n = r;
		} else {
			n = recv(c->fd, c->r + c->rlen, RBUF - c->rlen, 0);
			if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
				break;
			if (n <= 0)
				failed(c, "closed by the server");
		}
		c->rlen += (size_t)n;
	}
	frame(c);
}

static void step(struct conn *c, uint32_t events)
{
	if (!c->up) {
		if (!c->ssl) {
			int err = 0;
			socklen_t len = sizeof(err);
			getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
			if (err) {
				errno = err;
				failed(c, strerror(err));
			}
			if (!tls) {
				c->up = 1;
			} else {
				c->ssl = SSL_new(ctx);
				SSL_set_fd(c->ssl, c->fd);
				SSL_set_connect_state(c->ssl);
			}
		}
		if (c->ssl && !c->up) {
			int r = SSL_do_handshake(c->ssl);
			if (r != 1) {
				int e = SSL_get_error(c->ssl, r);
				if (e == SSL_ERROR_WANT_READ) {
					arm(c, 0);
					return;
				}
				if (e == SSL_ERROR_WANT_WRITE) {
					arm(c, 1);
					return;
				}
				failed(c, "handshake failed");
			}
			c->up = 1;
		}
	} else if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
		on_readable(c);
	}
	fill(c);
	if (flush(c) < 0)
		failed(c, "write failed");
}

static void conn_open(struct conn *c)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	int one = 1;
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (c->fd < 0)
		die("socket");
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	inet_pton(AF_INET, src, &a.sin_addr);
	if (bind(c->fd, (struct sockaddr *)&a, sizeof(a)) != 0)
		die("bind");
	a.sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, host, &a.sin_addr) != 1)
		die("host must be an IPv4 address");
	if (connect(c->fd, (struct sockaddr *)&a, sizeof(a)) != 0 && errno != EINPROGRESS)
		die("connect");
	c->want_out = 1;
	struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT, .data.ptr = c };
	epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
}

int main(int argc, char **argv)
{
	int o;
	while ((o = getopt(argc, argv, "t:c:w:n:s:e:k:u:T:")) != -1) {
		switch (o) {
		case 't':
			tls = !strcmp(optarg, "tls");
			break;
		case 'c':
			conns = atol(optarg);
			break;
		case 'w':
			window = atol(optarg);
			break;
		case 'n':
			total = atol(optarg);
			break;
		case 's':
			src = optarg;
			break;
		case 'e':
			cert = optarg;
			break;
		case 'k':
			key = optarg;
			break;
		case 'u':
			ruri = optarg;
			break;
		case 'T':
			max_secs = atof(optarg);
			break;
		default:
			fprintf(stderr,
			        "usage: call_rate [-t tcp|tls] [-c CONNS] [-w CALLS_PER_CONN] "
			        "[-n CALLS] [-s SOURCE] [-e CERT -k KEY] [-u REQUEST_URI] "
			        "[-T SECONDS] HOST PORT\n");
			return 2;
		}
	}
	if (argc - optind != 2 || conns < 1 || window < 1 || total < 1)
		return fprintf(stderr, "call_rate: HOST PORT expected\n"), 2;
	host = argv[optind];
	port = atoi(argv[optind + 1]);
	static char defuri[256];
	if (!ruri) {
		snprintf(defuri, sizeof(defuri), "sip:8000@%s:%d", host, port);
		ruri = defuri;
	}
	if (tls) {
		ctx = SSL_CTX_new(TLS_client_method());
		SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
		SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
		SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
		if (cert &&
		    (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
		     SSL_CTX_use_PrivateKey_file(ctx, key ? key : cert, SSL_FILETYPE_PEM) != 1)) {
			ERR_print_errors_fp(stderr);
			return 1;
		}
	}
	run = (unsigned)getpid() * 2654435761u ^ (unsigned)time(NULL);
	ep = epoll_create1(0);
	struct conn *cs = calloc((size_t)conns, sizeof(*cs));
	if (!cs)
		die("calloc");
	for (long i = 0; i < conns; i++) {
		cs[i].id = (unsigned)i + 1;
		cs[i].r = malloc(RBUF);
		cs[i].calls = calloc((size_t)window, sizeof(struct call));
		if (!cs[i].r || !cs[i].calls)
			die("malloc");
		conn_open(&cs[i]);
	}
	double t0 = now(), deadline = t0 + max_secs;
	struct epoll_event evs[256];
	while (ended < total) {
		int n = epoll_wait(ep, evs, 256, 1000);
		for (int i = 0; i < n; i++)
			step(evs[i].data.ptr, evs[i].events);
		if (now() > deadline) {
			fprintf(stderr, "call_rate: timeout after %ld calls\n", ended);
			break;
		}
	}
	double secs = now() - t0;
	printf("calls %ld completed %ld refused %ld refused_503 %ld errors %ld seconds %.3f "
	       "rate %.0f\n",
	       ended, completed, refused, refused_503, errors, secs,
	       secs > 0 ? (double)completed / secs : 0.0);
	for (int i = 300; i < 700; i++)
		if (by_status[i])
			fprintf(stderr, "call_rate: %ld calls ended by a %d\n", by_status[i], i);
	return ended == total && errors == 0 ? 0 : 1;
}
