/* clock.h — wall-clock time in one place, so tests can move it (expiry
 * watches, event intervals) without waiting days. */
#ifndef OM_CORE_CLOCK_H
#define OM_CORE_CLOCK_H

#include <stddef.h>
#include <stdint.h>

typedef int64_t (*om_clock_h)(void *arg);

/* Milliseconds since the Unix epoch (or what the test clock says). */
int64_t om_now_ms(void);
/* Install a test clock; NULL restores the real one. */
void om_clock_set(om_clock_h fn, void *arg);
/* Monotonic milliseconds, for timeouts (never faked). */
int64_t om_mono_ms(void);
/* ISO 8601 UTC with milliseconds: 2026-11-27T10:00:00.123Z */
void om_time_format(int64_t ms, char *out, size_t outlen);
/* Parses "2026-11-27T10:00:00Z", "2026-11-27 10:00:00", "2026-11-27"
 * (UTC), or a duration before now: "90s", "15m", "2h", "7d".
 * 0 or EINVAL. */
int om_time_parse(const char *s, int64_t now_ms, int64_t *out_ms);

#endif
