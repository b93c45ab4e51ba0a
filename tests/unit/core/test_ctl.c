/* test_ctl.c — the control socket server: one request, one JSON reply;
 * out of memory at accept leaves the client waiting in the backlog (no
 * borrowed stack handle, no dropped client) until memory is back. */
#include "ut.h"
#include "core/alloc.h"
#include "core/ctl.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static int answered;

static void handler(const char *cmd, struct om_buf *reply, void *arg)
{
	answered++;
	om_buf_printf(reply, "{\"ok\":true,\"cmd\":\"%s\"}", cmd);
}

static int client(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	UT_EQ_INT(0, connect(fd, (struct sockaddr *)&sa, sizeof(sa)));
	UT_EQ_INT(7, (int)send(fd, "status\n", 7, 0));
	return fd;
}

/* Runs the loop until the reply arrives on fd (at most ~5 s). */
static ssize_t reply(uv_loop_t *loop, int fd, char *buf, size_t cap)
{
	for (int i = 0; i < 5000; i++) {
		uv_run(loop, UV_RUN_NOWAIT);
		ssize_t n = recv(fd, buf, cap - 1, MSG_DONTWAIT);
		if (n >= 0) {
			buf[n > 0 ? n : 0] = '\0';
			return n;
		}
		usleep(1000);
	}
	return -1;
}

UT_TEST(out_of_memory_at_accept_waits_then_answers)
{
	char dir[] = "/tmp/om-ut-ctl-XXXXXX", path[128], buf[256];
	uv_loop_t loop;
	struct om_ctl_server *s = NULL;
	UT_TRUE(mkdtemp(dir) != NULL);
	snprintf(path, sizeof(path), "%s/control.sock", dir);
	UT_EQ_INT(0, uv_loop_init(&loop));
	UT_EQ_INT(0, om_ctl_server_start(&loop, path, handler, NULL, &s));
	answered = 0;
	int fd = client(path);
	om_alloc_fail_at(1, 1); /* every allocation fails for now */
	for (int i = 0; i < 300; i++) {
		uv_run(&loop, UV_RUN_NOWAIT);
		usleep(1000);
	}
	UT_EQ_INT(0, answered);
	/* the client was neither answered nor dropped */
	UT_EQ_INT(-1, (int)recv(fd, buf, sizeof(buf), MSG_DONTWAIT));
	UT_TRUE(errno == EAGAIN || errno == EWOULDBLOCK);
	om_alloc_fail_at(0, 0);
	UT_TRUE(reply(&loop, fd, buf, sizeof(buf)) > 0);
	UT_TRUE(strstr(buf, "\"cmd\":\"status\"") != NULL);
	close(fd);
	/* and the next client is served as usual */
	fd = client(path);
	UT_TRUE(reply(&loop, fd, buf, sizeof(buf)) > 0);
	UT_EQ_INT(2, answered);
	close(fd);
	om_ctl_server_close(s);
	uv_run(&loop, UV_RUN_DEFAULT);
	UT_EQ_INT(0, uv_loop_close(&loop));
	rmdir(dir);
}

UT_TEST(close_while_a_client_waits_for_memory)
{
	char dir[] = "/tmp/om-ut-ctl-XXXXXX", path[128];
	uv_loop_t loop;
	struct om_ctl_server *s = NULL;
	UT_TRUE(mkdtemp(dir) != NULL);
	snprintf(path, sizeof(path), "%s/control.sock", dir);
	UT_EQ_INT(0, uv_loop_init(&loop));
	UT_EQ_INT(0, om_ctl_server_start(&loop, path, handler, NULL, &s));
	int fd = client(path);
	om_alloc_fail_at(1, 1);
	for (int i = 0; i < 20; i++) {
		uv_run(&loop, UV_RUN_NOWAIT);
		usleep(1000);
	}
	om_alloc_fail_at(0, 0);
	om_ctl_server_close(s);
	uv_run(&loop, UV_RUN_DEFAULT);
	UT_EQ_INT(0, uv_loop_close(&loop));
	close(fd);
	rmdir(dir);
}

UT_MAIN(UT_CASE(out_of_memory_at_accept_waits_then_answers),
        UT_CASE(close_while_a_client_waits_for_memory))
