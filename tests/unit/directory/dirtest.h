/* dirtest.h — a fresh store in a temporary folder for directory tests. */
#ifndef OM_DIRTEST_H
#define OM_DIRTEST_H

#include "directory/directory.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dt_dir[64];

__attribute__((unused)) static struct om_db *dt_open(void)
{
	struct om_db *db = NULL;
	char err[512];
	snprintf(dt_dir, sizeof(dt_dir), "/tmp/om-ut-dir-XXXXXX");
	if (!mkdtemp(dt_dir))
		return NULL;
	if (om_db_open(dt_dir, OM_DB_CREATE, &db, err, sizeof(err))) {
		fprintf(stderr, "open: %s\n", err);
		return NULL;
	}
	return db;
}

__attribute__((unused)) static void dt_close(struct om_db *db)
{
	char cmd[128];
	om_db_free(db);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dt_dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cleanup of %s failed\n", dt_dir);
}

__attribute__((unused)) static int dt_plan(struct om_db *db, const char *name, int digits,
                                           enum om_dir_security sec)
{
	struct om_dir_dialplan p = { .digits = digits, .security = sec };
	struct om_dir_err e;
	snprintf(p.name, sizeof(p.name), "%s", name);
	int rc = om_dir_dialplan_new(db, &p, OM_DP_DIGITS | OM_DP_SECURITY, 0, NULL, &e);
	if (rc)
		fprintf(stderr, "  plan %s: %s\n", name, e.msg);
	return rc;
}

/* hosts: comma-separated. tls may be NULL (default), port 0 = default. */
__attribute__((unused)) static int dt_gw(struct om_db *db, const char *name, const char *hosts,
                                         const char *plan, const char *tls, int port, int transport,
                                         struct om_dir_err *e)
{
	struct om_dir_gateway g;
	unsigned f = OM_GW_F_HOSTS | OM_GW_F_DIALPLAN;
	char buf[1024], *save = NULL;
	memset(&g, 0, sizeof(g));
	snprintf(g.name, sizeof(g.name), "%s", name);
	snprintf(g.dialplan, sizeof(g.dialplan), "%s", plan);
	snprintf(buf, sizeof(buf), "%s", hosts);
	for (char *t = strtok_r(buf, ",", &save); t && g.nhosts < OM_DIR_ADDRS_MAX;
	     t = strtok_r(NULL, ",", &save))
		snprintf(g.hosts[g.nhosts++].name, sizeof(g.hosts[0].name), "%s", t);
	if (tls) {
		snprintf(g.tls_name, sizeof(g.tls_name), "%s", tls);
		f |= OM_GW_F_TLS_NAME;
	}
	if (port) {
		g.port = port;
		f |= OM_GW_F_PORT;
	}
	if (transport >= 0) {
		g.transport = (enum om_dir_transport)transport;
		f |= OM_GW_F_TRANSPORT;
	}
	return om_dir_gateway_new(db, &g, f, 0, NULL, e);
}

#endif
