/* sipload.c — SIP OPTIONS load generator for the benchmarks (RFC 3261
 * §11): C connections over TCP or mutual TLS to one server, W requests
 * outstanding on each, until N answers have come back; or, with -N, new
 * connections (connect, handshake, one OPTIONS, its answer, close), C at a
 * time. One thread, epoll, non-blocking sockets, OpenSSL on the socket;
 * requests are written from a template (fixed-width hex fields, no
 * formatting per request) and a window's worth goes out in one write, so
 * the generator costs the server's peer little CPU.
 *
 *   sipload [-t tcp|tls] [-c CONNS] [-w WINDOW] [-n ANSWERS] [-N]
 *           [-s SOURCE_IP] [-e CERT -k KEY] [-T SECONDS] HOST PORT
 *
 * Prints one line: answers, 200s, others, wall seconds, answers/s. Exit 1
 * when it could not finish (connection refused or closed, timeout). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define RBUF (256 * 1024)

struct conn {
	int fd;
	SSL *ssl;
	int up;        /* connected (and handshaken) */
	int want_out;  /* EPOLLOUT armed */
	long inflight; /* requests sent, not answered */
	char *r;       /* received, not yet framed */
	size_t rlen;
	char *w; /* to send */
	size_t wlen, woff, wcap;
	uint32_t seq;
	unsigned id;
};

static const char *host, *src = "127.0.0.1", *cert, *key;
static int port, tls, newconn;
static long conns = 1, window = 64, total = 100000;
static double max_secs = 120;
static long answered, ok, other, started;
static SSL_CTX *ctx;
static int ep;
static char tmpl[512];
static size_t tmpl_len, off_branch, off_tag, off_callid, off_cseq;

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void die(const char *what)
{
	fprintf(stderr, "sipload: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void hex8(char *p, uint32_t v)
{
	static const char x[] = "0123456789abcdef";
	for (int i = 7; i >= 0; i--, v >>= 4)
		p[i] = x[v & 15];
}

static void dec10(char *p, uint32_t v)
{
	for (int i = 9; i >= 0; i--, v /= 10)
		p[i] = (char)('0' + v % 10);
}

static void make_template(void)
{
	const char *tr = tls ? "TLS" : "TCP";
	int n = snprintf(tmpl, sizeof(tmpl),
	                 "OPTIONS sip:bench@%s:%d SIP/2.0\r\n"
	                 "Via: SIP/2.0/%s %s:5999;branch=z9hG4bK-XXXXXXXXXXXXXXXX\r\n"
	                 "From: <sip:load@%s>;tag=XXXXXXXX\r\n"
	                 "To: <sip:bench@%s:%d>\r\n"
	                 "Call-ID: XXXXXXXXXXXXXXXX@%s\r\n"
	                 "CSeq: 0000000000 OPTIONS\r\n"
	                 "Max-Forwards: 70\r\n"
	                 "Content-Length: 0\r\n\r\n",
	                 host, port, tr, src, src, host, port, src);
	tmpl_len = (size_t)n;
	off_branch = (size_t)(strstr(tmpl, "z9hG4bK-") - tmpl) + 8;
	off_tag = (size_t)(strstr(tmpl, "tag=") - tmpl) + 4;
	off_callid = (size_t)(strstr(tmpl, "Call-ID: ") - tmpl) + 9;
	off_cseq = (size_t)(strstr(tmpl, "CSeq: ") - tmpl) + 6;
}

static void wreserve(struct conn *c, size_t more)
{
	if (c->wlen + more <= c->wcap)
		return;
	if (c->woff) {
		memmove(c->w, c->w + c->woff, c->wlen - c->woff);
		c->wlen -= c->woff;
		c->woff = 0;
	}
	if (c->wlen + more > c->wcap) {
		c->wcap = (c->wlen + more) * 2;
		c->w = realloc(c->w, c->wcap);
		if (!c->w)
			die("realloc");
	}
}

/* Queues requests until the window is full (or the total is reached). */
static void fill(struct conn *c)
{
	long room = newconn ? (c->inflight ? 0 : 1) : window - c->inflight;
	while (room-- > 0 && started < total) {
		wreserve(c, tmpl_len);
		char *p = c->w + c->wlen;
		memcpy(p, tmpl, tmpl_len);
		uint32_t s = ++c->seq;
		hex8(p + off_branch, c->id);
		hex8(p + off_branch + 8, s);
		hex8(p + off_tag, c->id);
		hex8(p + off_callid, c->id);
		hex8(p + off_callid + 8, s);
		dec10(p + off_cseq, s);
		c->wlen += tmpl_len;
		c->inflight++;
		started++;
	}
}

static void arm(struct conn *c, int out)
{
	if (out == c->want_out)
		return;
	struct epoll_event ev = { .events = EPOLLIN | (out ? EPOLLOUT : 0), .data.ptr = c };
	epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
	c->want_out = out;
}

static void conn_open(struct conn *c);

static void conn_close(struct conn *c)
{
	if (c->ssl)
		SSL_free(c->ssl);
	c->ssl = NULL;
	close(c->fd);
	c->fd = -1;
	c->up = 0;
	c->inflight = 0;
	c->rlen = c->wlen = c->woff = 0;
}

static void failed(struct conn *c, const char *what)
{
	fprintf(stderr, "sipload: connection %u: %s\n", c->id, what);
	ERR_print_errors_fp(stderr);
	exit(1);
}

/* Sends what is queued; 0 done or would block, -1 closed. */
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

/* Frames answers out of c->r: a header section, then Content-Length. */
static void frame(struct conn *c)
{
	size_t pos = 0;
	while (pos < c->rlen) {
		char *p = c->r + pos, *end = memmem(p, c->rlen - pos, "\r\n\r\n", 4);
		if (!end)
			break;
		size_t hlen = (size_t)(end - p) + 4, cl = 0;
		for (char *q = memchr(p, '\n', (size_t)(end - p)); q && q < end;
		     q = memchr(q + 1, '\n', (size_t)(end - q))) {
			char h = q[1] | 0x20;
			if (h == 'c' && !strncasecmp(q + 1, "Content-Length:", 15))
				cl = strtoul(q + 16, NULL, 10);
			else if (h == 'l' && q[2] == ':')
				cl = strtoul(q + 3, NULL, 10);
		}
		if (pos + hlen + cl > c->rlen)
			break;
		if (hlen > 12 && !memcmp(p, "SIP/2.0 200 ", 12))
			ok++;
		else
			other++;
		answered++;
		c->inflight--;
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
				failed(c, "answer larger than the buffer");
		}
		if (c->ssl) {
			int r = SSL_read(c->ssl, c->r + c->rlen, (int)(RBUF - c->rlen));
			if (r <= 0) {
				int e = SSL_get_error(c->ssl, r);
				if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
					break;
				frame(c);
				if (newconn && c->seq && !c->inflight)
					return; /* answered, then closed: fine */
				failed(c, "closed by the server");
			}
			n = r;
		} else {
			n = recv(c->fd, c->r + c->rlen, RBUF - c->rlen, 0);
			if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
				break;
			if (n <= 0) {
				frame(c);
				if (newconn && c->seq && !c->inflight)
					return;
				failed(c, "closed by the server");
			}
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
	if (newconn && c->up && c->seq && !c->inflight) {
		/* one request answered: a new connection */
		conn_close(c);
		if (started < total)
			conn_open(c);
		return;
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
	c->seq = 0;
	c->want_out = 1;
	struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT, .data.ptr = c };
	epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
}

int main(int argc, char **argv)
{
	int o;
	while ((o = getopt(argc, argv, "t:c:w:n:Ns:e:k:T:")) != -1) {
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
		case 'N':
			newconn = 1;
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
		case 'T':
			max_secs = atof(optarg);
			break;
		default:
			fprintf(stderr,
			        "usage: sipload [-t tcp|tls] [-c CONNS] [-w WINDOW] [-n ANSWERS] "
			        "[-N] [-s SOURCE] [-e CERT -k KEY] [-T SECONDS] HOST PORT\n");
			return 2;
		}
	}
	if (argc - optind != 2 || conns < 1 || window < 1 || total < 1)
		return fprintf(stderr, "sipload: HOST PORT expected\n"), 2;
	host = argv[optind];
	port = atoi(argv[optind + 1]);
	make_template();
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
	ep = epoll_create1(0);
	struct conn *cs = calloc((size_t)conns, sizeof(*cs));
	if (!cs)
		die("calloc");
	for (long i = 0; i < conns; i++) {
		cs[i].id = (unsigned)i + 1;
		cs[i].r = malloc(RBUF);
		if (!cs[i].r)
			die("malloc");
		conn_open(&cs[i]);
	}
	double t0 = now(), deadline = t0 + max_secs;
	struct epoll_event evs[256];
	while (answered < total) {
		int n = epoll_wait(ep, evs, 256, 1000);
		for (int i = 0; i < n; i++)
			step(evs[i].data.ptr, evs[i].events);
		if (now() > deadline) {
			fprintf(stderr, "sipload: timeout after %ld answers\n", answered);
			break;
		}
	}
	double secs = now() - t0;
	printf("answers %ld ok %ld other %ld seconds %.3f rate %.0f\n", answered, ok, other, secs,
	       secs > 0 ? (double)answered / secs : 0.0);
	return answered == total && other == 0 ? 0 : 1;
}
