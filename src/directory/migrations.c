/* migrations.c — the store's schema, one script per version. Never edit a
 * released migration: append a new one. Each runs in its own
 * BEGIN IMMEDIATE transaction and ends at PRAGMA user_version = version. */
#include "directory/db.h"

#include <stddef.h>

const struct om_db_migration om_db_migrations[] = {
	{ 1, "events and meta",
	  "CREATE TABLE meta (\n"
	  "  key   TEXT PRIMARY KEY,\n"
	  "  value TEXT NOT NULL\n"
	  ");\n"
	  "CREATE TABLE events (\n"
	  "  seq        INTEGER PRIMARY KEY AUTOINCREMENT,\n"
	  "  time_ms    INTEGER NOT NULL,\n"
	  "  id         INTEGER NOT NULL,\n"
	  "  level      TEXT NOT NULL,\n"
	  "  source     TEXT NOT NULL DEFAULT '',\n"
	  "  message    TEXT NOT NULL,\n"
	  "  fields     TEXT NOT NULL DEFAULT '{}',\n"
	  "  suppressed INTEGER NOT NULL DEFAULT 0\n"
	  ");\n"
	  "CREATE INDEX events_time ON events(time_ms);\n"
	  "CREATE INDEX events_id ON events(id, time_ms);\n" },
};

const int om_db_migrations_count = (int)(sizeof(om_db_migrations) / sizeof(om_db_migrations[0]));
