/* ctl.h — the control socket (DATA/control.sock): how the CLI talks to a
 * running `openum serve`. A Unix stream socket, mode 0600; a connecting
 * process must run as the same user as the server, or as root (checked with
 * SO_PEERCRED). One request per connection: a command line of at most 4 KiB
 * ending in LF ("status", "reload"); the reply is one JSON object, then the
 * server closes. */
#ifndef OM_CORE_CTL_H
#define OM_CORE_CTL_H

#include <stddef.h>
#include <uv.h>

#include "core/str.h"

#define OM_CTL_MAX_REQUEST 4096
#define OM_CTL_MAX_REPLY   (1024 * 1024)

struct om_ctl_server;

/* Fill `reply` with one JSON object answering `cmd` (the line without LF). */
typedef void (*om_ctl_cmd_h)(const char *cmd, struct om_buf *reply, void *arg);

/* Binds and listens. A stale socket file is replaced; a live server on the
 * same path is EADDRINUSE. 0 or errno. */
int om_ctl_server_start(uv_loop_t *loop, const char *path, om_ctl_cmd_h h, void *arg,
                        struct om_ctl_server **out);
/* Closes the listener and open connections and removes the socket file;
 * memory is released in libuv's close callbacks (run the loop). */
void om_ctl_server_close(struct om_ctl_server *s);

/* Client: sends `cmd`, waits up to timeout_ms for the reply (om_free it).
 * ENOENT / ECONNREFUSED: no server is running. 0 or errno. */
int om_ctl_request(const char *path, const char *cmd, int timeout_ms, char **reply);

#endif
