/* resolve.h — gateway FQDNs to addresses (R4: "FQDNs resolved, honouring
 * DNS TTLs") with c-ares on the control loop: c-ares's sockets are watched
 * with uv_poll and its timeouts run on a uv_timer, so a slow or silent DNS
 * server never holds the loop (SIP, the control socket, timers go on).
 *
 * The resolver keeps the last good answer of every name. A round looks up
 * every FQDN of a snapshot at once; when it ends (all answered, failed, or
 * the round's time is up) done_h runs on the loop, and the owner applies
 * the answers to a copy of the snapshot in force (om_dir_snapshot_copy +
 * om_resolver_apply) — never to a snapshot rebuilt from the store, so a
 * DNS refresh never applies a directory change made with --no-reload. A
 * name that fails keeps its last good addresses (a DNS outage does not cut
 * gateways off); each failure is logged. */
#ifndef OM_APP_RESOLVE_H
#define OM_APP_RESOLVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "directory/directory.h"

struct om_resolver;

/* A round ended (answers are in the resolver's cache). */
typedef void (*om_resolver_done_h)(struct om_resolver *r, void *arg);

/* 0 or ENOMEM / EIO (c-ares could not start). */
int om_resolver_new(uv_loop_t *loop, om_resolver_done_h h, void *arg, struct om_resolver **out);
/* The DNS servers: "" for the system's, else "host:port,host:port" (as
 * openum.conf's dns_servers, port 53 by default). Takes effect at the next
 * round. 0 or ENOMEM. */
int om_resolver_set_servers(struct om_resolver *r, const char *servers);
/* Looks up every FQDN of snap (the names are copied) within timeout_ms.
 * When a round is running, this one follows it. Returns the number of
 * names; 0: nothing to look up (done_h is not called). */
size_t om_resolver_start(struct om_resolver *r, const struct om_dir_snapshot *snap, int timeout_ms);
/* A round is running or waiting to run. */
bool om_resolver_busy(const struct om_resolver *r);
/* Adds the last good addresses of each of snap's FQDNs to snap (not yet
 * published). An address another gateway already claims is not moved.
 * Returns how many names have no address. */
size_t om_resolver_apply(struct om_resolver *r, struct om_dir_snapshot *snap);
/* After a round: milliseconds until it should run again — the smallest
 * TTL, at most 30 s after a failure, clamped to 5 s .. 1 h; 0 when the
 * round had no name. */
uint64_t om_resolver_next_ms(const struct om_resolver *r);
/* Rounds completed (status). */
uint64_t om_resolver_rounds(const struct om_resolver *r);
/* Cancels every lookup and closes the handles; the memory is released in
 * libuv's close callbacks (run the loop). done_h is not called again. */
void om_resolver_close(struct om_resolver *r);

#endif
