/* resolve.h — gateway FQDNs to addresses (R4: "FQDNs resolved, honouring
 * DNS TTLs") with c-ares, before a directory snapshot is published. */
#ifndef OM_APP_RESOLVE_H
#define OM_APP_RESOLVE_H

#include <stddef.h>
#include <stdint.h>

#include "directory/directory.h"

/* Resolves every FQDN gateway address of `snap` (not yet published) and
 * adds the addresses to it. `servers`: "" for the system resolver, else
 * c-ares's "host:port,host:port". A name that fails keeps the addresses of
 * its last good answer, so a DNS outage does not cut trusted gateways
 * off; each failure is logged. *next_ms: when to resolve again
 * (the smallest TTL, clamped to 5 s .. 1 h; 0 when there is no FQDN).
 * Blocks for at most timeout_ms. Returns the number of names that failed. */
size_t om_resolve_snapshot(struct om_dir_snapshot *snap, const char *servers, int timeout_ms,
                           uint64_t *next_ms);

#endif
