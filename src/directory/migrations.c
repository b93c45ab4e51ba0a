/* migrations.c — the store's schema, one script per version. Never edit a
 * released migration: append a new one. Each runs in its own
 * BEGIN IMMEDIATE transaction and ends at PRAGMA user_version = version. */
#include "directory/db.h"

#include <stddef.h>

/* 2: the directory (R3, R4, R9, R13 and R14 fields for later).
 * Names are unique without regard to case. Rows are never referenced by
 * name: renaming stays possible. A dial plan in use cannot be deleted
 * (foreign keys, RESTRICT); a gateway's addresses go with it. Mailbox ids
 * are never reused (AUTOINCREMENT) and carry a random uid that names their
 * Maildir, so a new mailbox never inherits a removed one's messages. */
static const char m2[] =
    "CREATE TABLE dialplans (\n"
    "  id INTEGER PRIMARY KEY,\n"
    "  name TEXT NOT NULL COLLATE NOCASE UNIQUE,\n"
    "  digits INTEGER NOT NULL CHECK (digits BETWEEN 1 AND 20),\n"
    "  security TEXT NOT NULL DEFAULT 'unsecured'\n"
    "    CHECK (security IN ('unsecured', 'sipsecured', 'secured')),\n"
    "  pilot TEXT,\n"
    "  dialing_rules TEXT NOT NULL DEFAULT '[]',\n" /* R13 rule groups, JSON */
    "  max_message_s INTEGER NOT NULL DEFAULT 300 CHECK (max_message_s > 0),\n"
    "  max_greeting_s INTEGER NOT NULL DEFAULT 60 CHECK (max_greeting_s > 0),\n"
    "  created_ms INTEGER NOT NULL DEFAULT 0,\n"
    "  updated_ms INTEGER NOT NULL DEFAULT 0\n"
    ");\n"
    "CREATE TABLE gateways (\n"
    "  id INTEGER PRIMARY KEY,\n"
    "  name TEXT NOT NULL COLLATE NOCASE UNIQUE,\n"
    "  tls_name TEXT COLLATE NOCASE,\n"
    "  port INTEGER NOT NULL CHECK (port BETWEEN 1 AND 65535),\n"
    "  transport TEXT NOT NULL CHECK (transport IN ('tcp', 'tls')),\n"
    "  dialplan_id INTEGER NOT NULL REFERENCES dialplans(id) ON DELETE RESTRICT,\n"
    "  status TEXT NOT NULL DEFAULT 'enabled'\n"
    "    CHECK (status IN ('enabled', 'disabled', 'nonewcalls')),\n"
    "  max_calls INTEGER NOT NULL DEFAULT 0 CHECK (max_calls >= 0),\n"
    "  outcalls INTEGER NOT NULL DEFAULT 0 CHECK (outcalls IN (0, 1)),\n"
    "  mwi INTEGER NOT NULL DEFAULT 0 CHECK (mwi IN (0, 1)),\n"
    "  created_ms INTEGER NOT NULL DEFAULT 0,\n"
    "  updated_ms INTEGER NOT NULL DEFAULT 0\n"
    ");\n"
    "CREATE INDEX gateways_dialplan ON gateways(dialplan_id);\n"
    "CREATE TABLE gateway_addresses (\n"
    "  gateway_id INTEGER NOT NULL REFERENCES gateways(id) ON DELETE CASCADE,\n"
    "  pos INTEGER NOT NULL,\n"
    "  host TEXT NOT NULL,\n"
    "  PRIMARY KEY (gateway_id, pos)\n"
    ");\n"
    "CREATE TABLE servers (\n"
    "  id INTEGER PRIMARY KEY,\n"
    "  fqdn TEXT,\n"
    "  pinned_certificate TEXT,\n" /* NULL = auto (R7) */
    "  status TEXT NOT NULL DEFAULT 'enabled' CHECK (status IN ('enabled', 'nonewcalls')),\n"
    "  updated_ms INTEGER NOT NULL DEFAULT 0\n"
    ");\n"
    "CREATE TABLE server_dialplans (\n"
    "  server_id INTEGER NOT NULL REFERENCES servers(id) ON DELETE CASCADE,\n"
    "  dialplan_id INTEGER NOT NULL REFERENCES dialplans(id) ON DELETE RESTRICT,\n"
    "  PRIMARY KEY (server_id, dialplan_id)\n"
    ");\n"
    "CREATE TABLE mailbox_policies (\n" /* R14, R13: used by later issues */
    "  id INTEGER PRIMARY KEY,\n"
    "  name TEXT NOT NULL COLLATE NOCASE UNIQUE,\n"
    "  pin_min_length INTEGER NOT NULL DEFAULT 6,\n"
    "  pin_history INTEGER NOT NULL DEFAULT 5,\n"
    "  pin_lifetime_days INTEGER NOT NULL DEFAULT 60,\n"
    "  pin_reset_after INTEGER NOT NULL DEFAULT 5,\n"
    "  pin_lockout_after INTEGER NOT NULL DEFAULT 15,\n"
    "  pin_allow_common INTEGER NOT NULL DEFAULT 0,\n"
    "  access_secured_only INTEGER NOT NULL DEFAULT 0,\n"
    "  dialing_groups TEXT NOT NULL DEFAULT '[]'\n"
    ");\n"
    "INSERT INTO mailbox_policies (id, name) VALUES (1, 'default');\n"
    "CREATE TABLE mailboxes (\n"
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,\n"
    "  uid TEXT NOT NULL UNIQUE,\n"
    "  dialplan_id INTEGER NOT NULL REFERENCES dialplans(id) ON DELETE RESTRICT,\n"
    "  extension TEXT NOT NULL,\n"
    "  display_name TEXT,\n"
    "  email TEXT,\n"
    "  policy_id INTEGER NOT NULL DEFAULT 1 REFERENCES mailbox_policies(id),\n"
    "  greeting_default TEXT,\n"
    "  greeting_busy TEXT,\n"
    "  greeting_unavailable TEXT,\n"
    "  pin_hash TEXT,\n"
    "  pin_set_ms INTEGER NOT NULL DEFAULT 0,\n"
    "  pin_must_change INTEGER NOT NULL DEFAULT 1,\n"
    "  pin_history TEXT NOT NULL DEFAULT '[]',\n"
    "  pin_failures INTEGER NOT NULL DEFAULT 0,\n"
    "  locked_until_ms INTEGER NOT NULL DEFAULT 0,\n"
    "  created_ms INTEGER NOT NULL DEFAULT 0,\n"
    "  updated_ms INTEGER NOT NULL DEFAULT 0,\n"
    "  UNIQUE (dialplan_id, extension)\n"
    ");\n";

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
	{ 2, "directory: dial plans, gateways, servers, mailboxes, policies", m2 },
	/* 3: the mailbox owner's recorded name (played in the default greeting
	 * instead of "the person at extension ..."). */
	{ 3, "mailboxes: recorded name", "ALTER TABLE mailboxes ADD COLUMN greeting_name TEXT;\n" },
	{ 4, "dial plans: rtp_symmetric (a NAT'ed gateway's RTP port may move once)",
	  "ALTER TABLE dialplans ADD COLUMN rtp_symmetric INTEGER NOT NULL DEFAULT 0 "
	  "CHECK (rtp_symmetric IN (0, 1));\n" },
	{ 5, "gateways: which end of a Diversion chain names the mailbox",
	  "ALTER TABLE gateways ADD COLUMN diversion TEXT NOT NULL DEFAULT 'top'\n"
	  "  CHECK (diversion IN ('top', 'bottom'));\n" },
};

const int om_db_migrations_count = (int)(sizeof(om_db_migrations) / sizeof(om_db_migrations[0]));
