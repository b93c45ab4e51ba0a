/* db.c — opening openum.db and running its migrations. */
#include "directory/db.h"
#include "core/alloc.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

struct om_db {
	sqlite3 *h;
	char *path;
	int readonly;
};

int om_db_schema_latest(void)
{
	return om_db_migrations[om_db_migrations_count - 1].version;
}

sqlite3 *om_db_sqlite(struct om_db *db)
{
	return db->h;
}

const char *om_db_path(const struct om_db *db)
{
	return db->path;
}

static int exec(struct om_db *db, const char *sql, char *errbuf, size_t errlen)
{
	char *msg = NULL;
	if (sqlite3_exec(db->h, sql, NULL, NULL, &msg) != SQLITE_OK) {
		if (errbuf)
			snprintf(errbuf, errlen, "%s: %s", db->path, msg ? msg : "SQLite error");
		sqlite3_free(msg);
		return EIO;
	}
	return 0;
}

int om_db_schema_version(struct om_db *db)
{
	sqlite3_stmt *st;
	int v = -1;
	if (sqlite3_prepare_v2(db->h, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK)
		return -1;
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return v;
}

int om_db_begin(struct om_db *db)
{
	return exec(db, "BEGIN IMMEDIATE", NULL, 0) ? EBUSY : 0;
}

int om_db_commit(struct om_db *db)
{
	return exec(db, "COMMIT", NULL, 0);
}

void om_db_rollback(struct om_db *db)
{
	if (!sqlite3_get_autocommit(db->h))
		exec(db, "ROLLBACK", NULL, 0);
}

int om_db_migrate(struct om_db *db, int target, char *errbuf, size_t errlen)
{
	for (int i = 0; i < om_db_migrations_count; i++) {
		const struct om_db_migration *m = &om_db_migrations[i];
		if (m->version > target)
			break;
		if (om_db_begin(db)) {
			snprintf(errbuf, errlen, "%s: database is busy; try again", db->path);
			return EBUSY;
		}
		/* Re-read inside the write lock: another process may have migrated. */
		int cur = om_db_schema_version(db);
		if (cur >= m->version) {
			om_db_rollback(db);
			continue;
		}
		char pragma[64];
		snprintf(pragma, sizeof(pragma), "PRAGMA user_version = %d", m->version);
		if (exec(db, m->sql, errbuf, errlen) || exec(db, pragma, errbuf, errlen) ||
		    om_db_commit(db)) {
			om_db_rollback(db);
			return EIO;
		}
	}
	return 0;
}

void om_db_free(struct om_db *db)
{
	if (!db)
		return;
	sqlite3_close_v2(db->h);
	om_free(db->path);
	om_free(db);
}

int om_db_open(const char *data_dir, int flags, struct om_db **out, char *errbuf, size_t errlen)
{
	struct om_db *db = om_calloc(1, sizeof(*db));
	char path[4096];
	int rc = 0;
	if (!db) {
		snprintf(errbuf, errlen, "out of memory");
		return ENOMEM;
	}
	snprintf(path, sizeof(path), "%s/openum.db", data_dir);
	db->path = om_strdup(path);
	if (!db->path) {
		om_free(db);
		snprintf(errbuf, errlen, "out of memory");
		return ENOMEM;
	}
	db->readonly = !!(flags & OM_DB_READONLY);
	if (!(flags & OM_DB_CREATE) && access(path, F_OK) != 0) {
		snprintf(errbuf, errlen, "%s: missing; run `openum init --data %s`", path,
		         data_dir);
		rc = ENOENT;
		goto fail;
	}
	int oflags =
	    SQLITE_OPEN_NOMUTEX | (db->readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE);
	if (flags & OM_DB_CREATE)
		oflags |= SQLITE_OPEN_CREATE;
	if (sqlite3_open_v2(path, &db->h, oflags, NULL) != SQLITE_OK) {
		snprintf(errbuf, errlen, "%s: cannot open: %s", path,
		         db->h ? sqlite3_errmsg(db->h) : "out of memory");
		rc = EIO;
		goto fail;
	}
	sqlite3_busy_timeout(db->h, 10000);
	sqlite3_extended_result_codes(db->h, 1);
	if (exec(db, "PRAGMA foreign_keys = ON; PRAGMA secure_delete = ON;", errbuf, errlen)) {
		rc = EIO;
		goto fail;
	}
	if (!db->readonly &&
	    exec(db, "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;", errbuf, errlen)) {
		rc = EIO;
		goto fail;
	}
	int v = om_db_schema_version(db);
	if (v < 0) {
		snprintf(errbuf, errlen, "%s: not an openum database (%s)", path,
		         sqlite3_errmsg(db->h));
		rc = EIO;
		goto fail;
	}
	if (v > om_db_schema_latest()) {
		snprintf(errbuf, errlen,
		         "%s: schema version %d is newer than this openum (%d); upgrade openum",
		         path, v, om_db_schema_latest());
		rc = EPROTO;
		goto fail;
	}
	if (v < om_db_schema_latest()) {
		if (db->readonly) {
			snprintf(
			    errbuf, errlen,
			    "%s: schema version %d is older than %d; run `openum init` to upgrade",
			    path, v, om_db_schema_latest());
			rc = EPROTO;
			goto fail;
		}
		rc = om_db_migrate(db, om_db_schema_latest(), errbuf, errlen);
		if (rc)
			goto fail;
	}
	*out = db;
	return 0;
fail:
	om_db_free(db);
	return rc;
}
