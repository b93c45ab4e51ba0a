/* log.h — logging in logfmt to stderr, or structured to the journal when
 * stderr is connected to it (JOURNAL_STREAM). One line per record:
 *   time=2026-11-27T10:00:00.123Z level=info msg="..." key=value ...
 * Journal fields: MESSAGE, PRIORITY, OPENUM_EVENT_ID and OPENUM_<KEY>.
 * Records are formatted on the stack (never the heap, so logging works when
 * memory runs out); one longer than 16 KiB is cut and ends in "...". */
#ifndef OM_CORE_LOG_H
#define OM_CORE_LOG_H

#include <stddef.h>

enum om_level { OM_LOG_DEBUG = 0, OM_LOG_INFO, OM_LOG_WARNING, OM_LOG_ERROR };

struct om_kv {
	const char *k;
	const char *v;
};

const char *om_level_name(enum om_level l);
/* "debug", "info", "warning" (or "warn"), "error": 0 or EINVAL. */
int om_level_parse(const char *s, enum om_level *out);

/* min: records below it are dropped. journal: 1 force, 0 never, -1 auto. */
void om_log_init(enum om_level min, int journal);
void om_log_set_level(enum om_level min);

/* Key/value pairs of strings, terminated by NULL. */
void om_log(enum om_level l, const char *msg, ...) __attribute__((sentinel));
/* event_id 0 when the record is not an event. */
void om_log_kv(enum om_level l, int event_id, const char *msg, const struct om_kv *kv, size_t n);

#endif
