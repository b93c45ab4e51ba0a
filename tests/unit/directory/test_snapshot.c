/* test_snapshot.c — the server's view: lookups by binary peer address
 * (IPv4, IPv6, IPv4-mapped), by TLS name, mailbox by extension per plan,
 * disabled gateways never trusted, generations, R9 modes, resolved FQDNs,
 * and an out-of-memory sweep of the build. */
#include "ut.h"
#include "dirtest.h"
#include "core/str.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>

static const struct om_dir_gateway *by_v4(struct om_dir_snapshot *s, const char *ip)
{
	struct sockaddr_in in = { .sin_family = AF_INET, .sin_port = htons(5060) };
	inet_pton(AF_INET, ip, &in.sin_addr);
	return om_dir_snapshot_gateway_by_addr(s, (struct sockaddr *)&in);
}

static const struct om_dir_gateway *by_v6(struct om_dir_snapshot *s, const char *ip)
{
	struct sockaddr_in6 in = { .sin6_family = AF_INET6, .sin6_port = htons(5061) };
	inet_pton(AF_INET6, ip, &in.sin6_addr);
	return om_dir_snapshot_gateway_by_addr(s, (struct sockaddr *)&in);
}

static void populate(struct om_db *db)
{
	struct om_dir_err e;
	struct om_dir_mailbox m;
	struct om_dir_server srv;
	struct om_dir_gateway g;
	if (dt_plan(db, "Plain", 4, OM_SEC_UNSECURED) || dt_plan(db, "Sec", 5, OM_SEC_SECURED))
		UT_FAIL("plans");
	if (dt_gw(db, "pbx", "192.0.2.1,2001:db8::1", "Plain", NULL, 0, -1, &e) ||
	    dt_gw(db, "sbc", "192.0.2.2,sbc.example.com", "Sec", "SBC.example.com", 0, -1, &e) ||
	    dt_gw(db, "old", "192.0.2.3", "Plain", "old.example.com", 5061, OM_TRANSPORT_TLS, &e))
		UT_FAIL("gateways: %s", e.msg);
	memset(&g, 0, sizeof(g));
	g.status = OM_GW_DISABLED;
	if (om_dir_gateway_set(db, "old", &g, OM_GW_F_STATUS, 0, NULL, &e))
		UT_FAIL("disable: %s", e.msg);
	memset(&m, 0, sizeof(m));
	strcpy(m.dialplan, "Plain");
	strcpy(m.extension, "1000");
	strcpy(m.display_name, "Alice");
	if (om_dir_mailbox_new(db, &m, OM_MB_F_DISPLAY, NULL, 0, NULL, &e))
		UT_FAIL("mailbox: %s", e.msg);
	strcpy(m.dialplan, "Sec");
	strcpy(m.extension, "10000");
	strcpy(m.display_name, "Bob");
	if (om_dir_mailbox_new(db, &m, OM_MB_F_DISPLAY, NULL, 0, NULL, &e))
		UT_FAIL("mailbox: %s", e.msg);
	memset(&srv, 0, sizeof(srv));
	strcpy(srv.dialplans[0], "Plain");
	srv.ndialplans = 1;
	if (om_dir_server_set(db, &srv, OM_SRV_F_DIALPLANS, 0, NULL, &e))
		UT_FAIL("server: %s", e.msg);
}

UT_TEST(lookups)
{
	struct om_db *db = dt_open();
	struct om_dir_snapshot *s = NULL;
	struct om_dir_err e;
	const struct om_dir_gateway *g;
	UT_TRUE(db != NULL);
	populate(db);
	UT_EQ_INT(0, om_dir_snapshot_build(db, &s, &e));
	UT_EQ_INT(3, om_dir_snapshot_gateway_count(s));
	UT_EQ_INT(2, om_dir_snapshot_dialplan_count(s));
	g = by_v4(s, "192.0.2.1");
	UT_TRUE(g && !strcmp(g->name, "pbx"));
	g = by_v6(s, "::ffff:192.0.2.1");
	UT_TRUE(g && !strcmp(g->name, "pbx"));
	g = by_v6(s, "2001:db8:0::1");
	UT_TRUE(g && !strcmp(g->name, "pbx"));
	UT_EQ_STR("Plain", om_dir_snapshot_gateway_plan(s, g)->name);
	g = by_v4(s, "192.0.2.2");
	UT_TRUE(g && !strcmp(g->name, "sbc"));
	UT_EQ_INT(OM_SEC_SECURED, om_dir_snapshot_gateway_plan(s, g)->security);
	UT_TRUE(by_v4(s, "192.0.2.3") == NULL); /* disabled */
	UT_TRUE(by_v4(s, "192.0.2.4") == NULL);
	UT_TRUE(by_v6(s, "2001:db8::2") == NULL);
	g = om_dir_snapshot_gateway_by_tls_name(s, "sbc.EXAMPLE.com");
	UT_TRUE(g && !strcmp(g->name, "sbc"));
	UT_TRUE(om_dir_snapshot_gateway_by_tls_name(s, "old.example.com") == NULL);
	UT_TRUE(om_dir_snapshot_gateway_by_tls_name(s, "example.com") == NULL);
	UT_TRUE(om_dir_snapshot_gateway_by_tls_name(s, "*.example.com") == NULL);
	UT_TRUE(om_dir_snapshot_gateway_by_tls_name(s, "") == NULL);
	/* mailboxes per plan */
	const struct om_dir_dialplan *plain = om_dir_snapshot_dialplan_by_name(s, "plain");
	const struct om_dir_dialplan *sec = om_dir_snapshot_dialplan_by_name(s, "Sec");
	UT_TRUE(plain && sec);
	UT_EQ_STR("Alice", om_dir_snapshot_mailbox(s, plain, "1000")->display_name);
	UT_EQ_STR("Bob", om_dir_snapshot_mailbox(s, sec, "10000")->display_name);
	UT_TRUE(om_dir_snapshot_mailbox(s, sec, "1000") == NULL);
	UT_TRUE(om_dir_snapshot_mailbox(s, plain, "123456789012345678901234") == NULL);
	/* R9 */
	UT_EQ_INT(1, om_dir_snapshot_server_plan_count(s));
	UT_TRUE(!om_dir_snapshot_server_secured(s));
	/* FQDN addresses wait for the resolver */
	UT_EQ_INT(1, om_dir_snapshot_fqdn_count(s));
	UT_EQ_STR("sbc.example.com", om_dir_snapshot_fqdn_at(s, 0, &g));
	UT_EQ_STR("sbc", g->name);
	uint8_t ip[1][16] = { { 0 } };
	ip[0][15] = 9; /* ::9 */
	UT_TRUE(by_v6(s, "::9") == NULL);
	UT_EQ_INT(0, om_dir_snapshot_add_resolved(s, 0, (const uint8_t(*)[16])ip, 1));
	g = by_v6(s, "::9");
	UT_TRUE(g && !strcmp(g->name, "sbc"));
	UT_EQ_INT(EINVAL, om_dir_snapshot_add_resolved(s, 1, (const uint8_t(*)[16])ip, 1));
	/* DNS cannot take pbx's configured address away from it */
	uint8_t two[2][16] = { { 0 }, { 0 } };
	two[0][10] = two[0][11] = 0xff;
	two[0][12] = 192, two[0][13] = 0, two[0][14] = 2, two[0][15] = 1; /* 192.0.2.1 */
	two[1][15] = 0x10;                                                /* ::10 */
	UT_EQ_INT(EEXIST, om_dir_snapshot_add_resolved(s, 0, (const uint8_t(*)[16])two, 2));
	g = by_v4(s, "192.0.2.1");
	UT_TRUE(g && !strcmp(g->name, "pbx"));
	g = by_v6(s, "::10");
	UT_TRUE(g && !strcmp(g->name, "sbc"));
	g = by_v6(s, "::9");
	UT_TRUE(g && !strcmp(g->name, "sbc"));
	om_dir_snapshot_free(s);
	dt_close(db);
}

UT_TEST(generations_and_refs)
{
	struct om_db *db = dt_open();
	struct om_dir_snapshot *a = NULL, *b = NULL;
	struct om_dir_err e;
	UT_TRUE(db != NULL);
	UT_EQ_INT(0, om_dir_snapshot_build(db, &a, &e));
	UT_EQ_INT(0, om_dir_snapshot_gateway_count(a));
	UT_TRUE(by_v4(a, "192.0.2.1") == NULL);
	UT_TRUE(om_dir_snapshot_gateway_by_tls_name(a, "x.example.com") == NULL);
	populate(db);
	UT_EQ_INT(0, om_dir_snapshot_build(db, &b, &e));
	UT_TRUE(om_dir_snapshot_generation(b) > om_dir_snapshot_generation(a));
	/* a reader keeps the old view while the new one is swapped in */
	struct om_dir_snapshot *reader = om_dir_snapshot_ref(a);
	om_dir_snapshot_free(a);
	UT_EQ_INT(0, om_dir_snapshot_gateway_count(reader));
	om_dir_snapshot_free(reader);
	UT_EQ_INT(3, om_dir_snapshot_gateway_count(b));
	om_dir_snapshot_free(b);
	om_dir_snapshot_free(NULL);
	dt_close(db);
}

UT_TEST(refuses_inconsistent_store)
{
	struct om_db *db = dt_open();
	struct om_dir_snapshot *s = NULL;
	struct om_dir_err e;
	UT_TRUE(db != NULL);
	populate(db);
	/* edited behind openum's back: two trusted gateways, one TLS name */
	UT_EQ_INT(SQLITE_OK, sqlite3_exec(om_db_sqlite(db),
	                                  "UPDATE gateways SET status = 'enabled', tls_name = "
	                                  "'sbc.example.com' WHERE name = 'old'",
	                                  NULL, NULL, NULL));
	UT_EQ_INT(EPERM, om_dir_snapshot_build(db, &s, &e));
	UT_TRUE(strstr(e.msg, "same TLS name") != NULL);
	UT_EQ_INT(SQLITE_OK, sqlite3_exec(om_db_sqlite(db),
	                                  "UPDATE gateways SET tls_name = 'old.example.com' WHERE "
	                                  "name = 'old'; UPDATE gateway_addresses SET host = "
	                                  "'192.0.2.1' WHERE host = '192.0.2.3'",
	                                  NULL, NULL, NULL));
	UT_EQ_INT(EPERM, om_dir_snapshot_build(db, &s, &e));
	UT_TRUE(strstr(e.msg, "share an address") != NULL);
	UT_EQ_INT(SQLITE_OK,
	          sqlite3_exec(om_db_sqlite(db),
	                       "UPDATE gateway_addresses SET host = '192.0.2.3' WHERE "
	                       "gateway_id = (SELECT id FROM gateways WHERE name = 'old'); "
	                       "UPDATE gateways SET port = 5060 WHERE name = 'sbc'",
	                       NULL, NULL, NULL));
	UT_EQ_INT(EPERM, om_dir_snapshot_build(db, &s, &e));
	UT_TRUE(strstr(e.msg, "5061") != NULL);
	dt_close(db);
}

/* The CLI's host-name rules, applied again to what the snapshot reads: a
 * TLS name with the root dot (written by an older version, or by hand) is
 * the same name; one that breaks the rules refuses the snapshot. */
UT_TEST(tls_names_canonical_and_checked)
{
	struct om_db *db = dt_open();
	struct om_dir_snapshot *s = NULL;
	struct om_dir_err e;
	UT_TRUE(db != NULL);
	populate(db);
	UT_EQ_INT(SQLITE_OK, sqlite3_exec(om_db_sqlite(db),
	                                  "UPDATE gateways SET tls_name = 'PBX.Example.Test.' "
	                                  "WHERE name = 'sbc'",
	                                  NULL, NULL, NULL));
	UT_EQ_INT(0, om_dir_snapshot_build(db, &s, &e));
	const struct om_dir_gateway *g = om_dir_snapshot_gateway_by_tls_name(s, "pbx.example.test");
	UT_TRUE(g != NULL);
	UT_EQ_STR("pbx.example.test", g->tls_name);
	UT_TRUE(om_dir_snapshot_gateway_by_tls_name(s, "pbx.example.test.") == g);
	om_dir_snapshot_free(s);
	static const char *const bad[] = { ".example.test", "a..example.test", "192.0.2.9",
		                           "*.example.test" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char sql[256];
		snprintf(sql, sizeof(sql), "UPDATE gateways SET tls_name = '%s' WHERE name = 'sbc'",
		         bad[i]);
		UT_EQ_INT(SQLITE_OK, sqlite3_exec(om_db_sqlite(db), sql, NULL, NULL, NULL));
		s = NULL;
		UT_EQ_INT(EPERM, om_dir_snapshot_build(db, &s, &e));
		UT_TRUE(strstr(e.msg, "invalid TLS name") != NULL);
		UT_TRUE(s == NULL);
	}
	dt_close(db);
}

static struct om_db *oom_db;

static int build_once(void *arg)
{
	struct om_dir_snapshot *s = NULL;
	struct om_dir_err e;
	int rc = om_dir_snapshot_build(oom_db, &s, &e);
	if (rc == 0) {
		if (!by_v4(s, "192.0.2.1"))
			rc = EINVAL;
		om_dir_snapshot_free(s);
	}
	return rc;
}

UT_TEST(oom_sweep)
{
	oom_db = dt_open();
	UT_TRUE(oom_db != NULL);
	populate(oom_db);
	unsigned long runs = ut_oom_sweep(build_once, NULL);
	UT_TRUE(runs > 3);
	UT_EQ_INT(0, build_once(NULL));
	dt_close(oom_db);
}

static struct om_dir_snapshot *snap(struct om_db *db)
{
	struct om_dir_snapshot *s = NULL;
	struct om_dir_err e;
	if (om_dir_snapshot_build(db, &s, &e))
		UT_FAIL("build: %s", e.msg);
	return s;
}

/* The diff of two snapshots as text (the reload report). */
static char *diff_text(struct om_dir_snapshot *a, struct om_dir_snapshot *b, size_t *n)
{
	static char text[8192];
	struct om_buf out;
	om_buf_init(&out);
	*n = om_dir_snapshot_diff(a, b, &out);
	UT_EQ_INT(0, om_buf_err(&out));
	snprintf(text, sizeof(text), "%s", out.len ? om_buf_cstr(&out) : "");
	om_buf_free(&out);
	return text;
}

#define EXPECT_IN(needle, hay)                                                       \
	do {                                                                         \
		if (!strstr((hay), (needle)))                                        \
			UT_FAIL("\"%s\" not in the report \"%s\"", (needle), (hay)); \
	} while (0)

/* Every kind of change an administrator makes shows in the report; the
 * same directory reports nothing; no separator trails the list. */
UT_TEST(diff_lists_every_change)
{
	struct om_db *db = dt_open();
	struct om_dir_err e;
	struct om_dir_gateway g;
	struct om_dir_dialplan p;
	struct om_dir_mailbox m;
	struct om_dir_server srv;
	size_t n;
	char *t;
	UT_TRUE(db != NULL);
	populate(db);
	struct om_dir_snapshot *a = snap(db), *b;
	b = snap(db);
	t = diff_text(a, b, &n);
	UT_EQ_INT(0, n);
	UT_EQ_STR("", t);
	om_dir_snapshot_free(b);
	/* a dial plan added: the reload used to say "changes: none" */
	UT_EQ_INT(0, dt_plan(db, "New", 3, OM_SEC_SIPSECURED));
	/* a plan changed */
	memset(&p, 0, sizeof(p));
	strcpy(p.pilot, "+4930125080");
	p.max_message_s = 120;
	UT_EQ_INT(
	    0, om_dir_dialplan_set(db, "Plain", &p, OM_DP_PILOT | OM_DP_MAX_MESSAGE, 0, NULL, &e));
	/* a gateway disabled (same count), another one's port and call limit */
	memset(&g, 0, sizeof(g));
	g.status = OM_GW_DISABLED;
	UT_EQ_INT(0, om_dir_gateway_set(db, "pbx", &g, OM_GW_F_STATUS, 0, NULL, &e));
	memset(&g, 0, sizeof(g));
	g.max_calls = 7;
	g.mwi = true;
	UT_EQ_INT(0,
	          om_dir_gateway_set(db, "old", &g, OM_GW_F_MAX_CALLS | OM_GW_F_MWI, 0, NULL, &e));
	/* a gateway removed and one added: the count stays */
	UT_EQ_INT(0, om_dir_gateway_remove(db, "sbc", 0, &e));
	UT_EQ_INT(0, dt_gw(db, "pbx2", "192.0.2.9", "Plain", NULL, 0, -1, &e));
	/* mailboxes: one changed, one removed, one added */
	memset(&m, 0, sizeof(m));
	strcpy(m.email, "alice@example.com");
	UT_EQ_INT(0, om_dir_mailbox_set(db, "Plain", "1000", &m, OM_MB_F_EMAIL, NULL, 0, NULL, &e));
	UT_EQ_INT(0, om_dir_mailbox_remove(db, "Sec", "10000", 0, &e));
	strcpy(m.dialplan, "New");
	strcpy(m.extension, "200");
	UT_EQ_INT(0, om_dir_mailbox_new(db, &m, 0, NULL, 0, NULL, &e));
	/* this server's plans */
	memset(&srv, 0, sizeof(srv));
	strcpy(srv.dialplans[0], "Plain");
	strcpy(srv.dialplans[1], "New");
	srv.ndialplans = 2;
	UT_EQ_INT(0, om_dir_server_set(db, &srv, OM_SRV_F_DIALPLANS, 0, NULL, &e));
	b = snap(db);
	t = diff_text(a, b, &n);
	EXPECT_IN("server settings: dial plans Plain -> New,Plain", t);
	EXPECT_IN("dial plan New added (sipsecured)", t);
	EXPECT_IN("dial plan Plain: pilot (none) -> +4930125080, max message s 300 -> 120", t);
	EXPECT_IN("gateway pbx: status enabled -> disabled", t);
	EXPECT_IN("gateway old: max calls 0 -> 7, mwi no -> yes", t);
	EXPECT_IN("gateway sbc removed", t);
	EXPECT_IN("gateway pbx2 added (enabled)", t);
	EXPECT_IN("mailbox 1000 in Plain: email (none) -> alice@example.com", t);
	EXPECT_IN("mailbox 10000 in Sec removed", t);
	EXPECT_IN("mailbox 200 in New added", t);
	UT_EQ_INT(10, n);
	UT_TRUE(t[strlen(t) - 1] != ' ' && t[strlen(t) - 1] != ';');
	UT_TRUE(strstr(t, ";;") == NULL && strncmp(t, "; ", 2) != 0);
	/* and backwards */
	t = diff_text(b, a, &n);
	EXPECT_IN("dial plan New removed", t);
	EXPECT_IN("gateway pbx: status disabled -> enabled", t);
	UT_EQ_INT(10, n);
	om_dir_snapshot_free(b);
	om_dir_snapshot_free(a);
	dt_close(db);
}

/* Thousands of changes: bounded text, the rest counted. */
UT_TEST(diff_is_bounded)
{
	struct om_db *db = dt_open();
	struct om_dir_err e;
	struct om_dir_mailbox m;
	size_t n;
	UT_TRUE(db != NULL);
	UT_EQ_INT(0, dt_plan(db, "P", 4, OM_SEC_UNSECURED));
	struct om_dir_snapshot *a = snap(db);
	memset(&m, 0, sizeof(m));
	strcpy(m.dialplan, "P");
	for (int i = 0; i < 600; i++) {
		snprintf(m.extension, sizeof(m.extension), "%04d", 1000 + i);
		UT_EQ_INT(0, om_dir_mailbox_new(db, &m, 0, NULL, 0, NULL, &e));
	}
	struct om_dir_snapshot *b = snap(db);
	char *t = diff_text(a, b, &n);
	UT_EQ_INT(600, n);
	UT_TRUE(strlen(t) < 4200);
	UT_TRUE(strstr(t, " more changes") != NULL);
	om_dir_snapshot_free(b);
	om_dir_snapshot_free(a);
	dt_close(db);
}

UT_MAIN(UT_CASE(lookups), UT_CASE(generations_and_refs), UT_CASE(refuses_inconsistent_store),
        UT_CASE(tls_names_canonical_and_checked), UT_CASE(oom_sweep),
        UT_CASE(diff_lists_every_change), UT_CASE(diff_is_bounded))
