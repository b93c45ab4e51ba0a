/* metrics_http.c — GET /metrics over HTTP/1.1 (RFC 9110, RFC 9112) or
 * HTTPS (RFC 2818), with libmicrohttpd driven from the control loop: the
 * daemon runs in its "external epoll" mode, libuv watches its epoll
 * descriptor (uv_poll) and its timeout (uv_timer), and MHD_run() is called
 * on the control thread, so the handler reads the modules' counters with
 * no lock and no thread of its own. The listening socket is ours (bound
 * here, handed over with MHD_OPTION_LISTEN_SOCKET). metrics.h. */
#include "app/metrics.h"
#include "core/alloc.h"
#include "core/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <microhttpd.h>
#include <openssl/crypto.h>

struct om_metrics_http {
	struct MHD_Daemon *d;
	uv_poll_t *poll;
	uv_timer_t *timer;
	om_metrics_http_h h;
	void *arg;
	char *cert_pem, *key_pem; /* valid while the daemon runs */
	uint64_t requests;
};

static void free_secret(char *s)
{
	if (s) {
		OPENSSL_cleanse(s, strlen(s));
		om_free(s);
	}
}

static char *dup_str(const char *s)
{
	return s ? om_strdup(s) : NULL;
}

/* libmicrohttpd's error logger: fmt is its own printf format. */
__attribute__((format(printf, 2, 0))) static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[256];
	vsnprintf(msg, sizeof(msg), fmt, ap);
	size_t n = strlen(msg);
	while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
		msg[--n] = '\0';
	om_log(OM_LOG_DEBUG, "metrics HTTP", "detail", msg, NULL);
}

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status, const char *text,
                             const char *allow)
{
	struct MHD_Response *r =
	    MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);
	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
	if (allow)
		MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow);
	enum MHD_Result rc = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return rc;
}

static void free_body(void *p)
{
	om_free(p);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
	struct om_metrics_http *h = cls;
	bool head = !strcmp(method, MHD_HTTP_METHOD_HEAD);
	if (!*con_cls) {
		/* first call: headers only; answer on the next one */
		*con_cls = h;
		return MHD_YES;
	}
	if (*upload_data_size) {
		*upload_data_size = 0; /* a body is never read: discarded */
		return MHD_YES;
	}
	if (strcmp(url, "/metrics"))
		return reply(conn, MHD_HTTP_NOT_FOUND, "not found: the metrics are at /metrics\n",
		             NULL);
	if (!head && strcmp(method, MHD_HTTP_METHOD_GET))
		return reply(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET and HEAD\n", "GET, HEAD");
	h->requests++;
	struct om_buf b;
	om_buf_init(&b);
	h->h(&b, h->arg);
	if (om_buf_err(&b) || !b.p) {
		om_buf_free(&b);
		return reply(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n", NULL);
	}
	struct MHD_Response *r =
	    MHD_create_response_from_buffer_with_free_callback(b.len, b.p, free_body);
	if (!r) {
		om_buf_free(&b);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
	                        "text/plain; version=0.0.4; charset=utf-8");
	MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	enum MHD_Result rc = MHD_queue_response(conn, MHD_HTTP_OK, r);
	MHD_destroy_response(r);
	return rc;
}

static void on_timer(uv_timer_t *t);

/* After MHD_run: wake again when MHD wants (0: work pending now). */
static void rearm(struct om_metrics_http *h)
{
	MHD_UNSIGNED_LONG_LONG ms;
	if (MHD_get_timeout(h->d, &ms) == MHD_YES)
		uv_timer_start(h->timer, on_timer, ms > 60000 ? 60000 : (uint64_t)ms, 0);
	else
		uv_timer_stop(h->timer);
}

static void on_timer(uv_timer_t *t)
{
	struct om_metrics_http *h = t->data;
	MHD_run(h->d);
	rearm(h);
}

static void on_poll(uv_poll_t *p, int status, int events)
{
	struct om_metrics_http *h = p->data;
	MHD_run(h->d);
	rearm(h);
}

static int listen_socket(const char *host, uint16_t port, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t len;
	memset(&ss, 0, sizeof(ss));
	struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
	if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
		a4->sin_family = AF_INET;
		a4->sin_port = htons(port);
		len = sizeof(*a4);
	} else if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons(port);
		len = sizeof(*a6);
	} else {
		snprintf(err, errlen, "metrics_listen: %s is not a numeric address", host);
		errno = EINVAL;
		return -1;
	}
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1;
	if (fd < 0) {
		snprintf(err, errlen, "metrics socket: %s", strerror(errno));
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ss.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, len) != 0 || listen(fd, 16) != 0) {
		int e = errno;
		snprintf(err, errlen, "metrics_listen %s:%u: %s", host, (unsigned)port,
		         strerror(e));
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

static void handle_closed(uv_handle_t *hd)
{
	om_free(hd);
}

static void http_free(struct om_metrics_http *h)
{
	/* libuv stops watching the epoll descriptor before MHD closes it */
	if (h->poll)
		uv_close((uv_handle_t *)h->poll, handle_closed);
	if (h->timer) {
		uv_timer_stop(h->timer);
		uv_close((uv_handle_t *)h->timer, handle_closed);
	}
	if (h->d)
		MHD_stop_daemon(h->d); /* closes its connections and our listening socket */
	free_secret(h->key_pem);
	om_free(h->cert_pem);
	om_free(h);
}

int om_metrics_http_start(uv_loop_t *loop, const char *host, uint16_t port, const char *cert_pem,
                          const char *key_pem, int tls_min_version, om_metrics_http_h cb, void *arg,
                          struct om_metrics_http **out, char *err, size_t errlen)
{
	struct om_metrics_http *h = om_calloc(1, sizeof(*h));
	if (!h) {
		snprintf(err, errlen, "out of memory");
		return ENOMEM;
	}
	h->h = cb;
	h->arg = arg;
	bool tls = cert_pem && key_pem;
	if (tls && (!(h->cert_pem = dup_str(cert_pem)) || !(h->key_pem = dup_str(key_pem)))) {
		snprintf(err, errlen, "out of memory");
		http_free(h);
		return ENOMEM;
	}
	int fd = listen_socket(host, port, err, errlen);
	if (fd < 0) {
		int e = errno;
		http_free(h);
		return e ? e : EINVAL;
	}
	/* TLS 1.2 or 1.3 as openum.conf's tls_min_version says, GnuTLS's
	 * secure defaults otherwise. */
	const char *prio = tls_min_version >= 13 ? "SECURE128:-VERS-ALL:+VERS-TLS1.3"
	                                         : "SECURE128:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2";
	unsigned flags = MHD_USE_EPOLL | MHD_USE_ERROR_LOG | (tls ? MHD_USE_TLS : 0);
	/* with a listening socket given, the port argument is not used */
	if (tls)
		h->d = MHD_start_daemon(
		    flags, port, NULL, NULL, on_request, h, MHD_OPTION_LISTEN_SOCKET, fd,
		    MHD_OPTION_CONNECTION_LIMIT, (unsigned)16, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
		    (unsigned)4, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10,
		    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)32768, MHD_OPTION_EXTERNAL_LOGGER,
		    on_mhd_log, NULL, MHD_OPTION_HTTPS_MEM_CERT, h->cert_pem,
		    MHD_OPTION_HTTPS_MEM_KEY, h->key_pem, MHD_OPTION_HTTPS_PRIORITIES, prio,
		    MHD_OPTION_END);
	else
		h->d = MHD_start_daemon(
		    flags, port, NULL, NULL, on_request, h, MHD_OPTION_LISTEN_SOCKET, fd,
		    MHD_OPTION_CONNECTION_LIMIT, (unsigned)16, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
		    (unsigned)4, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10,
		    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)32768, MHD_OPTION_EXTERNAL_LOGGER,
		    on_mhd_log, NULL, MHD_OPTION_END);
	if (!h->d) {
		close(fd);
		snprintf(
		    err, errlen, "metrics: the HTTP%s service did not start (%s)", tls ? "S" : "",
		    tls ? "certificate, key or TLS priorities refused by GnuTLS" : "libmicrohttpd");
		http_free(h);
		return EINVAL;
	}
	const union MHD_DaemonInfo *di = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_EPOLL_FD);
	h->poll = om_calloc(1, sizeof(*h->poll));
	h->timer = om_calloc(1, sizeof(*h->timer));
	if (!di || !h->poll || !h->timer) {
		om_free(h->poll);
		om_free(h->timer);
		h->poll = NULL;
		h->timer = NULL;
		snprintf(err, errlen, "out of memory");
		http_free(h);
		return ENOMEM;
	}
	uv_poll_init(loop, h->poll, di->epoll_fd);
	uv_timer_init(loop, h->timer);
	h->poll->data = h->timer->data = h;
	uv_poll_start(h->poll, UV_READABLE, on_poll);
	rearm(h);
	*out = h;
	return 0;
}

uint64_t om_metrics_http_requests(const struct om_metrics_http *h)
{
	return h->requests;
}

void om_metrics_http_stop(struct om_metrics_http *h)
{
	if (h)
		http_free(h);
}
