/* test_server.c — the R9 start decision, and events stored in openum.db
 * through the server's sink with the rate limit in front. */
#include "ut.h"
#include "app/server.h"
#include "core/clock.h"
#include "core/events.h"
#include "directory/db.h"
#include "directory/eventlog.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

UT_TEST(r9_every_case)
{
	const char *why;
	/* no plan: start_secured decides */
	UT_EQ_INT(0, om_server_decide_secured(0, 0, false, &why));
	UT_TRUE(strstr(why, "start_secured = 0") != NULL);
	UT_EQ_INT(1, om_server_decide_secured(0, 0, true, &why));
	UT_TRUE(strstr(why, "start_secured = 1") != NULL);
	/* plans, all Unsecured: unsecured even when start_secured = 1 */
	UT_EQ_INT(0, om_server_decide_secured(2, 0, true, &why));
	UT_EQ_INT(0, om_server_decide_secured(1, 0, false, &why));
	/* any SIPSecured/Secured plan: secured even when start_secured = 0 */
	UT_EQ_INT(1, om_server_decide_secured(3, 1, false, &why));
	UT_EQ_INT(1, om_server_decide_secured(1, 1, false, &why));
}

static int64_t now_ms = 1800000000000LL;
static int64_t test_clock(void *arg)
{
	return now_ms;
}

static int count_rows(const struct om_eventlog_row *r, void *arg)
{
	long *n = arg;
	(*n)++;
	return 0;
}

UT_TEST(flood_stored_as_one_row_plus_summary)
{
	char dir[] = "/tmp/om-ut-events-XXXXXX", err[256], cmd[128];
	struct om_db *db;
	UT_TRUE(mkdtemp(dir) != NULL);
	UT_EQ_INT(0, om_db_open(dir, OM_DB_CREATE, &db, err, sizeof(err)));
	om_log_init(OM_LOG_ERROR + 1, 0);
	om_clock_set(test_clock, NULL);
	om_events_reset();
	om_events_set_interval(60000);
	om_events_set_sink(om_eventlog_sink, db);
	for (int i = 0; i < 10000; i++)
		om_event(1131, "203.0.113.9", "SIP from an untrusted device dropped", NULL);
	now_ms += 61000;
	om_events_flush(0);
	om_events_set_sink(NULL, NULL);

	struct om_eventlog_query q = { .since_ms = INT64_MIN, .id = 1131 };
	long n = 0;
	UT_EQ_INT(0, om_eventlog_query(db, &q, count_rows, &n, NULL));
	UT_EQ_INT(2, n);
	sqlite3_stmt *st;
	UT_EQ_INT(SQLITE_OK,
	          sqlite3_prepare_v2(om_db_sqlite(db), "SELECT max(suppressed) FROM events", -1,
	                             &st, NULL));
	UT_EQ_INT(SQLITE_ROW, sqlite3_step(st));
	UT_EQ_INT(9999, sqlite3_column_int(st, 0));
	sqlite3_finalize(st);

	/* pruning removes only what is older than the cut */
	UT_EQ_INT(1, om_eventlog_prune(db, now_ms - 1000));
	n = 0;
	om_eventlog_query(db, &q, count_rows, &n, NULL);
	UT_EQ_INT(1, n);
	om_db_free(db);
	om_clock_set(NULL, NULL);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	UT_EQ_INT(0, system(cmd));
}

UT_MAIN(UT_CASE(r9_every_case), UT_CASE(flood_stored_as_one_row_plus_summary))
