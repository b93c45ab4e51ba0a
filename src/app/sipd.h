/* sipd.h — the SIP service of `openum serve`: listeners, the trusted-device
 * check (R4) before any parsing, and the answers openum gives today
 * (stateless: OPTIONS 200, 403 for plans that need TLS, 405/501 for the
 * rest, 420 for unknown Require). Calls come with the call issues. */
#ifndef OM_APP_SIPD_H
#define OM_APP_SIPD_H

#include <stdbool.h>
#include <uv.h>

#include "core/config.h"
#include "core/str.h"
#include "directory/directory.h"

struct om_sipd;

/* Starts the TCP listeners of cfg->sip_tcp. 0 or errno with err filled. */
int om_sipd_new(uv_loop_t *loop, const struct om_config *cfg, struct om_sipd **out, char *err,
                size_t errlen);
/* Installs a new snapshot (takes a reference) and re-checks every open
 * connection against it: a peer that is no longer a trusted gateway is
 * disconnected (R4, reload for live connections). */
void om_sipd_set_snapshot(struct om_sipd *d, struct om_dir_snapshot *snap);
/* Closes listeners and connections (memory freed by the loop). */
void om_sipd_close(struct om_sipd *d);
/* ,"sip":{...} fields for `openum status --json` */
void om_sipd_status_json(struct om_sipd *d, struct om_buf *out);
/* The bound port of TCP listener i (tests bind port 0). */
int om_sipd_tcp_port(struct om_sipd *d, size_t i);

#endif
