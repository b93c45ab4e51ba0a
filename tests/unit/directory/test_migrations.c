/* test_migrations.c — every migration, from an empty store and from each
 * earlier schema: build version v with the migrations 1..v exactly as an
 * older openum would have, put sample rows in, open it with this openum
 * (which migrates to the latest) and check the rows are all there, the
 * database is intact and the directory works on it. */
#include "ut.h"
#include "dirtest.h"

#include <errno.h>
#include <sqlite3.h>

/* Rows an older version would hold, by the version that introduced the
 * table, and a query that must count them after migration. */
static const struct {
	int version;
	const char *insert;
	const char *count;
	int expect;
} samples[] = {
	{ 1,
	  "INSERT INTO meta (key, value) VALUES ('sample', 'kept');"
	  "INSERT INTO events (time_ms, id, level, source, message) VALUES "
	  "(1, 1113, 'info', 'server', 'the service started unsecured');",
	  "SELECT (SELECT count(*) FROM meta WHERE key = 'sample' AND value = 'kept') + "
	  "(SELECT count(*) FROM events WHERE id = 1113)",
	  2 },
	{ 2,
	  "INSERT INTO dialplans (id, name, digits, security) VALUES (7, 'Old', 4, 'secured');"
	  "INSERT INTO gateways (id, name, tls_name, port, transport, dialplan_id) VALUES "
	  "(3, 'oldgw', 'oldgw.example.com', 5061, 'tls', 7);"
	  "INSERT INTO gateway_addresses (gateway_id, pos, host) VALUES (3, 0, '198.51.100.7');"
	  "INSERT INTO mailboxes (uid, dialplan_id, extension, display_name) VALUES "
	  "('00112233445566778899aabbccddeeff', 7, '4711', 'Carol');"
	  "INSERT INTO servers (id, pinned_certificate) VALUES (1, 'abcdef0123');"
	  "INSERT INTO server_dialplans (server_id, dialplan_id) VALUES (1, 7);",
	  "SELECT (SELECT count(*) FROM dialplans WHERE name = 'Old' AND digits = 4) + "
	  "(SELECT count(*) FROM gateways g JOIN gateway_addresses a ON a.gateway_id = g.id "
	  "WHERE g.name = 'oldgw' AND a.host = '198.51.100.7') + "
	  "(SELECT count(*) FROM mailboxes WHERE extension = '4711' AND display_name = 'Carol') + "
	  "(SELECT count(*) FROM servers WHERE pinned_certificate = 'abcdef0123') + "
	  "(SELECT count(*) FROM server_dialplans)",
	  5 },
	{ 3,
	  "UPDATE mailboxes SET greeting_name = 'greetings/carol.name.wav', greeting_busy = "
	  "'greetings/carol.busy.wav' WHERE extension = '4711';",
	  "SELECT count(*) FROM mailboxes WHERE greeting_name = 'greetings/carol.name.wav' AND "
	  "greeting_busy = 'greetings/carol.busy.wav'",
	  1 },
	{ 4, "UPDATE dialplans SET rtp_symmetric = 1 WHERE name = 'Old';",
	  "SELECT count(*) FROM dialplans WHERE name = 'Old' AND rtp_symmetric = 1", 1 },
	{ 5, "UPDATE gateways SET diversion = 'bottom' WHERE name = 'oldgw';",
	  "SELECT (SELECT count(*) FROM gateways WHERE name = 'oldgw' AND diversion = 'bottom') + "
	  "(SELECT count(*) FROM gateways WHERE diversion NOT IN ('top', 'bottom'))",
	  1 },
};

static int count(sqlite3 *h, const char *sql)
{
	sqlite3_stmt *st;
	int n = -1;
	if (sqlite3_prepare_v2(h, sql, -1, &st, NULL) != SQLITE_OK)
		return -2;
	if (sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return n;
}

static const char *text1(sqlite3 *h, const char *sql, char *buf, size_t len)
{
	sqlite3_stmt *st;
	buf[0] = 0;
	if (sqlite3_prepare_v2(h, sql, -1, &st, NULL) != SQLITE_OK)
		return buf;
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
		snprintf(buf, len, "%s", (const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	return buf;
}

/* Creates DIR/openum.db at schema `v` with its sample rows. */
static void build_old(const char *dir, int v)
{
	char path[256], pragma[64];
	sqlite3 *h;
	snprintf(path, sizeof(path), "%s/openum.db", dir);
	if (sqlite3_open(path, &h) != SQLITE_OK)
		UT_FAIL("open %s", path);
	sqlite3_exec(h, "PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON", NULL, NULL, NULL);
	for (int i = 0; i < om_db_migrations_count && om_db_migrations[i].version <= v; i++) {
		char *msg = NULL;
		if (sqlite3_exec(h, om_db_migrations[i].sql, NULL, NULL, &msg) != SQLITE_OK)
			UT_FAIL("migration %d: %s", om_db_migrations[i].version, msg);
		snprintf(pragma, sizeof(pragma), "PRAGMA user_version = %d",
		         om_db_migrations[i].version);
		sqlite3_exec(h, pragma, NULL, NULL, NULL);
	}
	for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
		char *msg = NULL;
		if (samples[i].version > v)
			continue;
		if (sqlite3_exec(h, samples[i].insert, NULL, NULL, &msg) != SQLITE_OK)
			UT_FAIL("sample for v%d: %s", samples[i].version, msg);
	}
	sqlite3_close(h);
}

UT_TEST(versions_are_consecutive)
{
	UT_TRUE(om_db_migrations_count >= 2);
	for (int i = 0; i < om_db_migrations_count; i++)
		UT_EQ_INT(i + 1, om_db_migrations[i].version);
	UT_EQ_INT(om_db_migrations_count, om_db_schema_latest());
	/* every table a sample fills has a sample check */
	UT_EQ_INT(om_db_schema_latest(), samples[sizeof(samples) / sizeof(samples[0]) - 1].version);
}

UT_TEST(from_every_earlier_schema)
{
	for (int v = 0; v < om_db_schema_latest(); v++) {
		char dir[64], err[512], buf[128];
		struct om_db *db = NULL;
		struct om_dir_err e;
		struct om_dir_gateway g;
		snprintf(dir, sizeof(dir), "/tmp/om-ut-mig-XXXXXX");
		UT_TRUE(mkdtemp(dir) != NULL);
		build_old(dir, v);
		if (om_db_open(dir, 0, &db, err, sizeof(err)))
			UT_FAIL("from v%d: %s", v, err);
		sqlite3 *h = om_db_sqlite(db);
		UT_EQ_INT(om_db_schema_latest(), om_db_schema_version(db));
		for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
			if (samples[i].version > v)
				continue;
			int n = count(h, samples[i].count);
			if (n != samples[i].expect)
				UT_FAIL("from v%d: rows of v%d: %d, expected %d", v,
				        samples[i].version, n, samples[i].expect);
		}
		UT_EQ_STR("ok", text1(h, "PRAGMA integrity_check", buf, sizeof(buf)));
		UT_EQ_INT(0, count(h, "SELECT count(*) FROM pragma_foreign_key_check"));
		/* the directory works on the migrated store */
		UT_EQ_INT(0, dt_plan(db, "New", 3, OM_SEC_UNSECURED));
		UT_EQ_INT(0, dt_gw(db, "newgw", "203.0.113.1", "New", NULL, 0, -1, &e));
		if (v >= 2) {
			UT_EQ_INT(0, om_dir_gateway_get(db, "oldgw", &g, &e));
			UT_EQ_STR("198.51.100.7", g.hosts[0].name);
			UT_EQ_STR("Old", g.dialplan);
		}
		/* opening again is a no-op */
		om_db_free(db);
		UT_EQ_INT(0, om_db_open(dir, 0, &db, err, sizeof(err)));
		UT_EQ_INT(om_db_schema_latest(), om_db_schema_version(db));
		om_db_free(db);
		snprintf(buf, sizeof(buf), "rm -rf %s", dir);
		UT_EQ_INT(0, system(buf));
	}
}

UT_TEST(migrate_step_by_step)
{
	/* om_db_migrate(db, target) one version at a time, as the runner does */
	char dir[64], err[512], cmd[96];
	struct om_db *db = NULL;
	snprintf(dir, sizeof(dir), "/tmp/om-ut-mig-XXXXXX");
	UT_TRUE(mkdtemp(dir) != NULL);
	build_old(dir, 1);
	/* a read-only open does not migrate */
	UT_TRUE(om_db_open(dir, OM_DB_READONLY, &db, err, sizeof(err)) != 0);
	UT_EQ_INT(0, om_db_open(dir, 0, &db, err, sizeof(err)));
	UT_EQ_INT(0, om_db_migrate(db, om_db_schema_latest(), err, sizeof(err)));
	UT_EQ_INT(om_db_schema_latest(), om_db_schema_version(db));
	om_db_free(db);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	UT_EQ_INT(0, system(cmd));
}

UT_MAIN(UT_CASE(versions_are_consecutive), UT_CASE(from_every_earlier_schema),
        UT_CASE(migrate_step_by_step))
