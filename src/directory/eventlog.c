/* eventlog.c — events in SQLite. */
#include "directory/eventlog.h"
#include "core/log.h"
#include "core/str.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

void om_eventlog_sink(const struct om_event_rec *ev, void *arg)
{
	static int warned;
	struct om_db *db = arg;
	sqlite3_stmt *st = NULL;
	struct om_buf f;
	om_buf_init(&f);
	om_buf_add(&f, "{", 1);
	for (size_t i = 0; i < ev->nkv; i++) {
		if (i)
			om_buf_add(&f, ",", 1);
		om_buf_json_str(&f, ev->kv[i].k);
		om_buf_add(&f, ":", 1);
		om_buf_json_str(&f, ev->kv[i].v ? ev->kv[i].v : "");
	}
	om_buf_add(&f, "}", 1);
	int rc =
	    sqlite3_prepare_v2(om_db_sqlite(db),
	                       "INSERT INTO events (time_ms, id, level, source, message, fields, "
	                       "suppressed) VALUES (?,?,?,?,?,?,?)",
	                       -1, &st, NULL);
	if (rc == SQLITE_OK && om_buf_cstr(&f)) {
		sqlite3_bind_int64(st, 1, ev->time_ms);
		sqlite3_bind_int(st, 2, ev->id);
		sqlite3_bind_text(st, 3, om_level_name(ev->level), -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 4, ev->source ? ev->source : "", -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 5, ev->msg, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 6, om_buf_cstr(&f), -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 7, (sqlite3_int64)ev->suppressed);
		rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
	}
	if (rc != SQLITE_OK && !warned) {
		warned = 1;
		/* Not through om_event: that would recurse into this sink. */
		om_log(OM_LOG_ERROR, "cannot store events in the database", "db", om_db_path(db),
		       "error", sqlite3_errmsg(om_db_sqlite(db)), NULL);
	}
	sqlite3_finalize(st);
	om_buf_free(&f);
}

long om_eventlog_prune(struct om_db *db, int64_t before_ms)
{
	sqlite3_stmt *st;
	long n = -1;
	if (sqlite3_prepare_v2(om_db_sqlite(db), "DELETE FROM events WHERE time_ms < ?", -1, &st,
	                       NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_int64(st, 1, before_ms);
	if (sqlite3_step(st) == SQLITE_DONE)
		n = sqlite3_changes(om_db_sqlite(db));
	sqlite3_finalize(st);
	return n;
}

int om_eventlog_query(struct om_db *db, const struct om_eventlog_query *q, om_eventlog_row_h h,
                      void *arg, int64_t *last_seq)
{
	sqlite3_stmt *st;
	/* Newest `limit` rows, returned oldest first. */
	const char *sql =
	    "SELECT * FROM (SELECT seq, time_ms, id, level, source, message, fields, suppressed "
	    "FROM events WHERE seq > ?1 AND time_ms >= ?2 AND (?3 = 0 OR id = ?3) "
	    "AND (CASE level WHEN 'debug' THEN 0 WHEN 'info' THEN 1 WHEN 'warning' THEN 2 "
	    "ELSE 3 END) >= ?4 ORDER BY seq DESC LIMIT ?5) ORDER BY seq ASC";
	if (sqlite3_prepare_v2(om_db_sqlite(db), sql, -1, &st, NULL) != SQLITE_OK)
		return EIO;
	sqlite3_bind_int64(st, 1, q->after_seq);
	sqlite3_bind_int64(st, 2, q->since_ms);
	sqlite3_bind_int(st, 3, q->id);
	sqlite3_bind_int(st, 4, q->min_level);
	sqlite3_bind_int64(st, 5, q->limit > 0 ? q->limit : -1);
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct om_eventlog_row r = {
			.seq = sqlite3_column_int64(st, 0),
			.time_ms = sqlite3_column_int64(st, 1),
			.id = sqlite3_column_int(st, 2),
			.level = (const char *)sqlite3_column_text(st, 3),
			.source = (const char *)sqlite3_column_text(st, 4),
			.message = (const char *)sqlite3_column_text(st, 5),
			.fields = (const char *)sqlite3_column_text(st, 6),
			.suppressed = (long)sqlite3_column_int64(st, 7),
		};
		if (last_seq)
			*last_seq = r.seq;
		if (h(&r, arg))
			break;
	}
	sqlite3_finalize(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : EIO;
}
