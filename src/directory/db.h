/* db.h — the store's SQLite database (openum.db): opening with the pragmas
 * openum relies on (WAL, busy_timeout, foreign keys, secure_delete) and the
 * versioned migrations.
 *
 * Migrations are an ordered list of SQL scripts (migrations.c); the schema
 * version is PRAGMA user_version. om_db_open applies the missing ones, each
 * inside its own BEGIN IMMEDIATE transaction, so a store created by any
 * earlier version is brought up to date and a failure leaves the previous
 * version intact. A store newer than this binary is refused. */
#ifndef OM_DIRECTORY_DB_H
#define OM_DIRECTORY_DB_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>

struct om_db;

enum {
	OM_DB_READONLY = 1 << 0, /* never write, never migrate */
	OM_DB_CREATE = 1 << 1,   /* create openum.db if missing (init only) */
};

/* Opens DATA_DIR/openum.db. 0 or errno; on failure *errmsg (static or
 * om_strdup'd into errbuf) says why. */
int om_db_open(const char *data_dir, int flags, struct om_db **out, char *errbuf, size_t errlen);
void om_db_free(struct om_db *db);
sqlite3 *om_db_sqlite(struct om_db *db);
const char *om_db_path(const struct om_db *db);

/* The schema version this binary writes, and the store's. */
int om_db_schema_latest(void);
int om_db_schema_version(struct om_db *db);
/* Migrate to `target` (tests use it to build each earlier schema). */
int om_db_migrate(struct om_db *db, int target, char *errbuf, size_t errlen);

/* BEGIN IMMEDIATE / COMMIT / ROLLBACK with busy handling. 0 or EIO/EBUSY. */
int om_db_begin(struct om_db *db);
int om_db_commit(struct om_db *db);
void om_db_rollback(struct om_db *db);

/* The migration scripts, index 0 = version 1. */
struct om_db_migration {
	int version;
	const char *name;
	const char *sql;
};
extern const struct om_db_migration om_db_migrations[];
extern const int om_db_migrations_count;

#endif
