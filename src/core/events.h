/* events.h — openum's event log (R17): stable numeric IDs, each with a
 * level, a message and key=value fields. Every event goes to the log
 * (journal field OPENUM_EVENT_ID) and to a sink (the server stores them in
 * the `events` table of openum.db).
 *
 * Rate limit (for the IDs a remote peer can cause: 1124 for gateway
 * certificates, 1130-1172; never for what the server or an administrator
 * did, such as 1114 or 1180): per (id, source) at most one event is emitted per interval
 * (default 60 s). Further ones in the interval are counted; the next
 * emitted one (or om_events_flush at the end of the interval) carries
 * `suppressed=N`. So a flood from one source writes one line per interval
 * and cannot fill the disk. The table of sources is bounded; when it is
 * full, new sources share one overflow slot per id. */
#ifndef OM_CORE_EVENTS_H
#define OM_CORE_EVENTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/log.h"

enum om_event_id {
	OM_EV_START_SECURED = 1112,
	OM_EV_START_UNSECURED = 1113,
	OM_EV_CERT_IN_USE = 1114,
	OM_EV_CERT_NO_CLIENTAUTH = 1115,
	OM_EV_CERT_EXPIRING = 1120,
	OM_EV_CERT_EXPIRED = 1121,
	OM_EV_CERT_GENERATED = 1122,
	OM_EV_CERT_FALLBACK_SELFSIGNED = 1123,
	OM_EV_TRUSTED_EXPIRING = 1124,
	OM_EV_CERT_PIN_INVALID = 1125,
	OM_EV_CRL_EXPIRING = 1126,
	OM_EV_CRL_STALE = 1127,
	OM_EV_CERT_NOT_USABLE = 1128,
	OM_EV_KEY_FILE_REFUSED = 1129,
	OM_EV_TLS_REJECTED = 1130,
	OM_EV_UNTRUSTED_DEVICE = 1131,
	OM_EV_SECURITY_MODE_REFUSED = 1132,
	OM_EV_SERVERAUTH_ONLY = 1133,
	OM_EV_CONN_LIMIT = 1134,
	OM_EV_CALL_PLAN_NOT_SERVED = 1136,
	OM_EV_CALL_CAPACITY = 1137,
	OM_EV_CALL_ENDED_BY_US = 1138,
	OM_EV_CALL_SEND_FAILED = 1139,
	OM_EV_SRTP_AUTH_FAIL = 1140,
	OM_EV_RECORDING_WRITE_FAILED = 1141,
	OM_EV_RTP_TIMEOUT = 1142,
	OM_EV_MEDIA_STRANGER = 1143,
	OM_EV_PROMPT_UNUSABLE = 1144,
	OM_EV_RTP_PORTS_EXHAUSTED = 1145,
	OM_EV_DIAL_RESTRICTED = 1150,
	OM_EV_PIN_LOCKOUT = 1160,
	OM_EV_MSG_DELIVERED = 1170,
	OM_EV_MSG_RECOVERED = 1171,
	OM_EV_MSG_UNDELIVERABLE = 1172,
	OM_EV_SPOOL_SPACE_LOW = 1173,
	OM_EV_SPOOL_SPACE_OK = 1174,
	OM_EV_SPOOL_UNUSABLE = 1175,
	OM_EV_RELOAD_APPLIED = 1180,
	OM_EV_RELOAD_REJECTED = 1181,
};

struct om_event_info {
	int id;
	enum om_level level; /* default level */
	const char *name;    /* short slug, e.g. "tls-rejected" */
	const char *what;    /* one line for `openum events --help` */
	bool limited;        /* rate-limited per source: events a remote peer can cause */
};

/* NULL for an unknown id. */
const struct om_event_info *om_event_info(int id);
/* The whole table, terminated by an entry with id 0. */
const struct om_event_info *om_event_table(void);

struct om_event_rec {
	int64_t time_ms;
	int id;
	enum om_level level;
	const char *source; /* who caused it: peer address, certificate, "server" */
	const char *msg;
	const struct om_kv *kv;
	size_t nkv;
	unsigned long suppressed; /* events of this (id, source) held back before */
};

typedef void (*om_event_sink_h)(const struct om_event_rec *ev, void *arg);

/* One sink (NULL: log only). */
void om_events_set_sink(om_event_sink_h sink, void *arg);
/* Interval of the rate limit in ms (0: no limit). */
void om_events_set_interval(int64_t ms);
/* Emits the pending "suppressed=N" summaries whose interval has ended
 * (call it from a timer; `all` emits every pending one, e.g. at exit). */
void om_events_flush(int all);
/* Forget every source (tests, reload). */
void om_events_reset(void);

/* Emit at the id's default level. Fields: key, value pairs, NULL-ended.
 * Returns 1 when emitted, 0 when rate-limited. */
int om_event(int id, const char *source, const char *msg, ...) __attribute__((sentinel));
int om_event_level(int id, enum om_level level, const char *source, const char *msg, ...)
    __attribute__((sentinel));
int om_event_kv(int id, enum om_level level, const char *source, const char *msg,
                const struct om_kv *kv, size_t nkv);

#endif
