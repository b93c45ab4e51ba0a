/* eventlog.h — the `events` table of openum.db: the server's event sink,
 * pruning after events_keep_days, and the query behind `openum events`. */
#ifndef OM_DIRECTORY_EVENTLOG_H
#define OM_DIRECTORY_EVENTLOG_H

#include <stdbool.h>
#include <stdint.h>

#include "core/events.h"
#include "directory/db.h"

/* An om_event_sink_h; arg is the struct om_db *. Write errors are logged
 * once and otherwise ignored (the journal still has the event). */
void om_eventlog_sink(const struct om_event_rec *ev, void *arg);
/* Deletes events older than before_ms; returns how many, or -1. */
long om_eventlog_prune(struct om_db *db, int64_t before_ms);

struct om_eventlog_row {
	int64_t seq;
	int64_t time_ms;
	int id;
	const char *level;
	const char *source;
	const char *message;
	const char *fields; /* JSON object */
	long suppressed;
};

struct om_eventlog_query {
	int64_t after_seq; /* rows with seq > after_seq */
	int64_t since_ms;  /* INT64_MIN: no bound */
	int id;            /* 0: any */
	int min_level;     /* enum om_level */
	long limit;        /* 0: no limit (newest `limit` rows otherwise) */
};

typedef int (*om_eventlog_row_h)(const struct om_eventlog_row *row, void *arg);

/* Calls h for each matching row, oldest first; stops when h returns
 * nonzero. 0 or EIO. *last_seq gets the last seq seen. */
int om_eventlog_query(struct om_db *db, const struct om_eventlog_query *q, om_eventlog_row_h h,
                      void *arg, int64_t *last_seq);

#endif
