/* ctl.c — control socket server (libuv) and client (blocking). */
#include "core/ctl.h"
#include "core/alloc.h"
#include "core/log.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

struct om_ctl_server {
	uv_pipe_t listener;
	uv_timer_t retry; /* out of memory at accept: try again */
	char *path;
	om_ctl_cmd_h handler;
	void *arg;
	unsigned open_conns;
	unsigned handles; /* listener + retry timer not yet closed */
	int closing;
};

struct conn {
	uv_pipe_t pipe;
	struct om_ctl_server *srv;
	char buf[OM_CTL_MAX_REQUEST];
	size_t len;
	int answered;
	uv_write_t wreq;
	struct om_buf reply;
};

static void conn_closed(uv_handle_t *h)
{
	struct conn *c = h->data;
	c->srv->open_conns--;
	om_buf_free(&c->reply);
	om_free(c);
}

static void conn_close(struct conn *c)
{
	if (!uv_is_closing((uv_handle_t *)&c->pipe))
		uv_close((uv_handle_t *)&c->pipe, conn_closed);
}

static void on_written(uv_write_t *w, int status)
{
	conn_close(w->data);
}

static void conn_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
	struct conn *c = h->data;
	b->base = c->buf + c->len;
	b->len = sizeof(c->buf) - c->len;
}

static void conn_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
	struct conn *c = s->data;
	if (n < 0 || c->answered) {
		conn_close(c);
		return;
	}
	c->len += (size_t)n;
	char *nl = memchr(c->buf, '\n', c->len);
	if (!nl) {
		if (c->len == sizeof(c->buf))
			conn_close(c); /* over-long request */
		return;
	}
	*nl = '\0';
	if (nl > c->buf && nl[-1] == '\r')
		nl[-1] = '\0';
	c->answered = 1;
	uv_read_stop(s);
	om_buf_init(&c->reply);
	c->srv->handler(c->buf, &c->reply, c->srv->arg);
	if (om_buf_err(&c->reply)) {
		om_buf_free(&c->reply);
		om_buf_adds(&c->reply, "{\"ok\":false,\"error\":\"out of memory\"}");
	}
	om_buf_add(&c->reply, "\n", 1);
	uv_buf_t out = uv_buf_init(c->reply.p, (unsigned)c->reply.len);
	c->wreq.data = c;
	if (uv_write(&c->wreq, s, &out, 1, on_written) != 0)
		conn_close(c);
}

static int peer_allowed(uv_pipe_t *p)
{
	uv_os_fd_t fd;
	struct ucred cred;
	socklen_t len = sizeof(cred);
	if (uv_fileno((uv_handle_t *)p, &fd) != 0)
		return 0;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0)
		return 0;
	return cred.uid == geteuid() || cred.uid == 0;
}

static void on_retry(uv_timer_t *t);

static void on_connection(uv_stream_t *l, int status)
{
	struct om_ctl_server *srv = l->data;
	if (status < 0 || srv->closing)
		return;
	struct conn *c = om_calloc(1, sizeof(*c));
	if (!c) {
		/* Not accepted: the client waits in the backlog (libuv stops
		 * watching the listener until uv_accept) and is taken when
		 * memory is back. */
		if (!uv_is_active((uv_handle_t *)&srv->retry))
			uv_timer_start(&srv->retry, on_retry, 100, 0);
		return;
	}
	c->srv = srv;
	uv_pipe_init(l->loop, &c->pipe, 0);
	c->pipe.data = c;
	srv->open_conns++;
	if (uv_accept(l, (uv_stream_t *)&c->pipe) != 0) {
		conn_close(c);
		return;
	}
	if (!peer_allowed(&c->pipe)) {
		om_log(OM_LOG_WARNING, "control socket: peer refused (other user)", NULL);
		conn_close(c);
		return;
	}
	uv_read_start((uv_stream_t *)&c->pipe, conn_alloc, conn_read);
}

static void on_retry(uv_timer_t *t)
{
	struct om_ctl_server *srv = t->data;
	on_connection((uv_stream_t *)&srv->listener, 0);
}

/* Is a server answering on path? */
static int live(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), r;
	if (fd < 0)
		return 0;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	r = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	close(fd);
	return r;
}

static void listener_closed(uv_handle_t *h)
{
	struct om_ctl_server *s = h->data;
	if (--s->handles)
		return;
	om_free(s->path);
	om_free(s);
}

int om_ctl_server_start(uv_loop_t *loop, const char *path, om_ctl_cmd_h h, void *arg,
                        struct om_ctl_server **out)
{
	struct sockaddr_un sa;
	struct om_ctl_server *s;
	int rc;
	if (strlen(path) >= sizeof(sa.sun_path))
		return ENAMETOOLONG;
	if (live(path))
		return EADDRINUSE;
	unlink(path);
	s = om_calloc(1, sizeof(*s));
	if (!s)
		return ENOMEM;
	s->path = om_strdup(path);
	if (!s->path) {
		om_free(s);
		return ENOMEM;
	}
	s->handler = h;
	s->arg = arg;
	uv_pipe_init(loop, &s->listener, 0);
	uv_timer_init(loop, &s->retry);
	uv_unref((uv_handle_t *)&s->retry);
	s->listener.data = s->retry.data = s;
	s->handles = 2;
	mode_t old = umask(0177);
	rc = uv_pipe_bind(&s->listener, path);
	umask(old);
	if (rc == 0)
		rc = chmod(path, 0600) == 0 ? 0 : -errno;
	if (rc == 0)
		rc = uv_listen((uv_stream_t *)&s->listener, 16, on_connection);
	if (rc != 0) {
		uv_close((uv_handle_t *)&s->listener, listener_closed);
		uv_close((uv_handle_t *)&s->retry, listener_closed);
		return -rc;
	}
	*out = s;
	return 0;
}

static void close_walk(uv_handle_t *h, void *arg)
{
	struct om_ctl_server *s = arg;
	if (h->type == UV_NAMED_PIPE && h != (uv_handle_t *)&s->listener && h->data &&
	    ((struct conn *)h->data)->srv == s)
		conn_close(h->data);
}

void om_ctl_server_close(struct om_ctl_server *s)
{
	if (!s || s->closing)
		return;
	s->closing = 1;
	uv_walk(s->listener.loop, close_walk, s);
	unlink(s->path);
	uv_close((uv_handle_t *)&s->listener, listener_closed);
	uv_close((uv_handle_t *)&s->retry, listener_closed);
}

int om_ctl_request(const char *path, const char *cmd, int timeout_ms, char **reply)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct om_buf in;
	int fd, rc = 0;
	if (strlen(path) >= sizeof(sa.sun_path))
		return ENAMETOOLONG;
	if (strlen(cmd) + 1 > OM_CTL_MAX_REQUEST)
		return EINVAL;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		rc = errno;
		close(fd);
		return rc;
	}
	om_buf_init(&in);
	char line[OM_CTL_MAX_REQUEST + 1];
	int n = snprintf(line, sizeof(line), "%s\n", cmd);
	if (send(fd, line, (size_t)n, MSG_NOSIGNAL) != n) {
		rc = errno ? errno : EIO;
		goto out;
	}
	for (;;) {
		struct pollfd p = { fd, POLLIN, 0 };
		int pr = poll(&p, 1, timeout_ms);
		if (pr == 0) {
			rc = ETIMEDOUT;
			goto out;
		}
		if (pr < 0) {
			if (errno == EINTR)
				continue;
			rc = errno;
			goto out;
		}
		char b[4096];
		ssize_t r = read(fd, b, sizeof(b));
		if (r < 0) {
			if (errno == EINTR)
				continue;
			rc = errno;
			goto out;
		}
		if (r == 0)
			break;
		om_buf_add(&in, b, (size_t)r);
		if (in.len > OM_CTL_MAX_REPLY) {
			rc = EMSGSIZE;
			goto out;
		}
	}
	if (in.len == 0) {
		rc = ECONNRESET; /* refused (other user) or server closing */
		goto out;
	}
	if (om_buf_err(&in)) {
		rc = ENOMEM;
		goto out;
	}
	*reply = in.p;
	in.p = NULL;
out:
	om_buf_free(&in);
	close(fd);
	return rc;
}
