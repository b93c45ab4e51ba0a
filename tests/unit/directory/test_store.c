/* test_store.c — every directory rule through the store API (R3, R4):
 * each refused change returns the right code, says why, and leaves the
 * store as it was; dry runs change nothing. */
#include "ut.h"
#include "dirtest.h"

#include <errno.h>
#include <sqlite3.h>
#include <sys/stat.h>

/* A dump of every directory table, to prove "nothing changed". */
static char *dump(struct om_db *db)
{
	static const char *sql[] = {
		"SELECT * FROM dialplans",         "SELECT * FROM gateways",
		"SELECT * FROM gateway_addresses", "SELECT * FROM servers",
		"SELECT * FROM server_dialplans",  "SELECT * FROM mailboxes",
	};
	size_t cap = 1 << 16, len = 0;
	char *out = calloc(1, cap);
	for (size_t i = 0; i < sizeof(sql) / sizeof(sql[0]); i++) {
		sqlite3_stmt *st;
		sqlite3_prepare_v2(om_db_sqlite(db), sql[i], -1, &st, NULL);
		while (sqlite3_step(st) == SQLITE_ROW) {
			for (int c = 0; c < sqlite3_column_count(st); c++) {
				const unsigned char *t = sqlite3_column_text(st, c);
				len += (size_t)snprintf(out + len, cap - len, "%s|",
				                        t ? (const char *)t : "NULL");
			}
			len += (size_t)snprintf(out + len, cap - len, "\n");
		}
		sqlite3_finalize(st);
	}
	return out;
}

#define EXPECT_REFUSED(code, call, needle)                                                  \
	do {                                                                                \
		char *before_ = dump(db);                                                   \
		memset(&e, 0, sizeof(e));                                                   \
		int rc_ = (call);                                                           \
		char *after_ = dump(db);                                                    \
		int same_ = strcmp(before_, after_) == 0;                                   \
		free(before_);                                                              \
		free(after_);                                                               \
		if (rc_ != (code))                                                          \
			UT_FAIL("%s: expected %d, got %d (%s)", #call, (code), rc_, e.msg); \
		if (!strstr(e.msg, (needle)))                                               \
			UT_FAIL("message \"%s\" lacks \"%s\"", e.msg, (needle));            \
		if (!same_)                                                                 \
			UT_FAIL("%s changed the store", #call);                             \
	} while (0)

UT_TEST(dialplan_rules)
{
	struct om_db *db = dt_open();
	struct om_dir_err e;
	struct om_dir_dialplan p = { .digits = 4 }, got;
	UT_TRUE(db != NULL);
	UT_EQ_INT(0, dt_plan(db, "HQ", 4, OM_SEC_UNSECURED));
	strcpy(p.name, "hq");
	EXPECT_REFUSED(EEXIST, om_dir_dialplan_new(db, &p, OM_DP_DIGITS, 0, NULL, &e),
	               "already exists");
	strcpy(p.name, "Branch");
	p.digits = 21;
	EXPECT_REFUSED(EINVAL, om_dir_dialplan_new(db, &p, OM_DP_DIGITS, 0, NULL, &e), "1 to 20");
	p.digits = 0;
	EXPECT_REFUSED(EINVAL, om_dir_dialplan_new(db, &p, OM_DP_DIGITS, 0, NULL, &e), "1 to 20");
	EXPECT_REFUSED(EINVAL, om_dir_dialplan_new(db, &p, 0, 0, NULL, &e), "--digits");
	strcpy(p.name, "bad name");
	p.digits = 4;
	EXPECT_REFUSED(EINVAL, om_dir_dialplan_new(db, &p, OM_DP_DIGITS, 0, NULL, &e),
	               "invalid dial plan name");
	strcpy(p.name, "Branch");
	strcpy(p.pilot, "12ab");
	EXPECT_REFUSED(EINVAL, om_dir_dialplan_new(db, &p, OM_DP_DIGITS | OM_DP_PILOT, 0, NULL, &e),
	               "--pilot");
	/* dry run: the answer, no row */
	strcpy(p.pilot, "+4930555");
	UT_EQ_INT(
	    0, om_dir_dialplan_new(db, &p, OM_DP_DIGITS | OM_DP_PILOT, OM_DIR_DRY_RUN, &got, &e));
	UT_EQ_STR("+4930555", got.pilot);
	UT_EQ_INT(ENOENT, om_dir_dialplan_get(db, "Branch", &got, &e));
	UT_TRUE(strstr(e.msg, "openum dialplan list") != NULL);
	UT_EQ_INT(0, om_dir_dialplan_new(db, &p, OM_DP_DIGITS | OM_DP_PILOT, 0, &got, &e));
	UT_EQ_INT(0, om_dir_dialplan_get(db, "branch", &got, &e));
	UT_EQ_STR("Branch", got.name);
	UT_EQ_INT(4, got.digits);
	UT_EQ_INT(OM_SEC_UNSECURED, got.security);
	EXPECT_REFUSED(ENOENT, om_dir_dialplan_set(db, "nope", &p, OM_DP_DIGITS, 0, NULL, &e),
	               "no dial plan named");
	dt_close(db);
}

UT_TEST(gateway_security_rules)
{
	struct om_db *db = dt_open();
	struct om_dir_err e;
	struct om_dir_gateway g, got;
	struct om_dir_dialplan p;
	UT_TRUE(db != NULL);
	UT_EQ_INT(0, dt_plan(db, "Sec", 4, OM_SEC_SECURED));
	UT_EQ_INT(0, dt_plan(db, "Plain", 4, OM_SEC_UNSECURED));
	/* secured plan: TLS name needed (an IP address gives no default) */
	EXPECT_REFUSED(EPERM, dt_gw(db, "gw1", "10.0.0.1", "Sec", NULL, 0, -1, &e),
	               "must use TLS on port 5061");
	/* not on 5061 */
	EXPECT_REFUSED(EPERM, dt_gw(db, "gw1", "10.0.0.1", "Sec", "gw1.example.com", 5062, -1, &e),
	               "port 5061");
	/* TCP */
	EXPECT_REFUSED(
	    EPERM,
	    dt_gw(db, "gw1", "10.0.0.1", "Sec", "gw1.example.com", 5061, OM_TRANSPORT_TCP, &e),
	    "must use TLS");
	/* defaults: FQDN address → TLS name, tls, 5061 */
	UT_EQ_INT(0, dt_gw(db, "gw1", "GW1.example.com", "Sec", NULL, 0, -1, &e));
	UT_EQ_INT(0, om_dir_gateway_get(db, "GW1", &got, &e));
	UT_EQ_STR("gw1.example.com", got.tls_name);
	UT_EQ_INT(5061, got.port);
	UT_EQ_INT(OM_TRANSPORT_TLS, got.transport);
	/* unsecured plan: tcp 5060 by default, no TLS name needed */
	UT_EQ_INT(0, dt_gw(db, "pbx", "10.0.0.2", "Plain", NULL, 0, -1, &e));
	UT_EQ_INT(0, om_dir_gateway_get(db, "pbx", &got, &e));
	UT_EQ_INT(5060, got.port);
	UT_EQ_INT(OM_TRANSPORT_TCP, got.transport);
	UT_EQ_STR("", got.tls_name);
	/* a TLS gateway needs a TLS name whatever the plan */
	EXPECT_REFUSED(EPERM, dt_gw(db, "pbx2", "10.0.0.3", "Plain", NULL, 0, OM_TRANSPORT_TLS, &e),
	               "no TLS name");
	/* moving pbx into the secured plan is refused */
	memset(&g, 0, sizeof(g));
	strcpy(g.dialplan, "Sec");
	EXPECT_REFUSED(EPERM, om_dir_gateway_set(db, "pbx", &g, OM_GW_F_DIALPLAN, 0, NULL, &e),
	               "Secured");
	/* switching Plain to SIPSecured lists the gateway in the way */
	memset(&p, 0, sizeof(p));
	p.security = OM_SEC_SIPSECURED;
	EXPECT_REFUSED(EPERM, om_dir_dialplan_set(db, "Plain", &p, OM_DP_SECURITY, 0, NULL, &e),
	               "pbx");
	UT_TRUE(strstr(e.msg, "SIPSecured") != NULL);
	/* fix the gateway, then the switch works */
	strcpy(g.tls_name, "pbx.example.com");
	g.port = 5061;
	g.transport = OM_TRANSPORT_TLS;
	UT_EQ_INT(0, om_dir_gateway_set(db, "pbx", &g,
	                                OM_GW_F_TLS_NAME | OM_GW_F_PORT | OM_GW_F_TRANSPORT, 0,
	                                NULL, &e));
	UT_EQ_INT(0, om_dir_dialplan_set(db, "Plain", &p, OM_DP_SECURITY, 0, NULL, &e));
	/* secured gateway cannot go back to 5060 */
	g.port = 5060;
	EXPECT_REFUSED(EPERM, om_dir_gateway_set(db, "pbx", &g, OM_GW_F_PORT, 0, NULL, &e), "5061");
	dt_close(db);
}

UT_TEST(gateway_uniqueness_rules)
{
	struct om_db *db = dt_open();
	struct om_dir_err e;
	struct om_dir_gateway g;
	UT_TRUE(db != NULL);
	UT_EQ_INT(0, dt_plan(db, "P", 4, OM_SEC_UNSECURED));
	UT_EQ_INT(0, dt_gw(db, "a", "10.0.0.1,gw-a.example.com", "P", "a.example.com", 5061,
	                   OM_TRANSPORT_TLS, &e));
	EXPECT_REFUSED(EEXIST, dt_gw(db, "A", "10.0.0.9", "P", NULL, 0, -1, &e), "already exists");
	/* TLS name claimed by another enabled gateway (case-insensitive) */
	EXPECT_REFUSED(EPERM,
	               dt_gw(db, "b", "10.0.0.2", "P", "A.Example.COM", 5061, OM_TRANSPORT_TLS, &e),
	               "already claimed");
	/* same IP written as IPv4-mapped IPv6 */
	EXPECT_REFUSED(EPERM, dt_gw(db, "b", "::ffff:10.0.0.1", "P", NULL, 0, -1, &e),
	               "already belongs");
	EXPECT_REFUSED(EPERM,
	               dt_gw(db, "b", "GW-A.example.com", "P", NULL, 0, OM_TRANSPORT_TCP, &e),
	               "already belongs");
	/* malformed values */
	EXPECT_REFUSED(EINVAL, dt_gw(db, "b", "10.0.0.300", "P", NULL, 0, -1, &e), "neither");
	EXPECT_REFUSED(EINVAL, dt_gw(db, "b", "gw_b.example.com", "P", NULL, 0, -1, &e), "neither");
	EXPECT_REFUSED(EINVAL, dt_gw(db, "b", "10.0.0.2,10.0.0.2", "P", NULL, 0, -1, &e), "twice");
	EXPECT_REFUSED(EINVAL, dt_gw(db, "b", "10.0.0.2", "P", NULL, 65536, -1, &e), "1-65535");
	EXPECT_REFUSED(EINVAL, dt_gw(db, "b", "10.0.0.2", "P", NULL, -1, -1, &e), "1-65535");
	EXPECT_REFUSED(EINVAL, dt_gw(db, "b", "10.0.0.2", "P", "*.example.com", 5061, 1, &e),
	               "--tls-name");
	EXPECT_REFUSED(ENOENT, dt_gw(db, "b", "10.0.0.2", "Nope", NULL, 0, -1, &e),
	               "no dial plan named");
	/* a disabled gateway claims nothing */
	UT_EQ_INT(0, dt_gw(db, "b", "10.0.0.2", "P", NULL, 0, -1, &e));
	memset(&g, 0, sizeof(g));
	g.status = OM_GW_DISABLED;
	UT_EQ_INT(0, om_dir_gateway_set(db, "a", &g, OM_GW_F_STATUS, 0, NULL, &e));
	UT_EQ_INT(0, dt_gw(db, "c", "10.0.0.1", "P", "a.example.com", 5061, OM_TRANSPORT_TLS, &e));
	/* ... and cannot be re-enabled while another has its name */
	g.status = OM_GW_ENABLED;
	EXPECT_REFUSED(EPERM, om_dir_gateway_set(db, "a", &g, OM_GW_F_STATUS, 0, NULL, &e),
	               "already claimed");
	g.status = OM_GW_NONEWCALLS;
	EXPECT_REFUSED(EPERM, om_dir_gateway_set(db, "a", &g, OM_GW_F_STATUS, 0, NULL, &e),
	               "already claimed");
	UT_EQ_INT(0, om_dir_gateway_remove(db, "c", 0, &e));
	UT_EQ_INT(0, om_dir_gateway_set(db, "a", &g, OM_GW_F_STATUS, 0, NULL, &e));
	EXPECT_REFUSED(ENOENT, om_dir_gateway_remove(db, "zz", 0, &e), "no gateway named");
	dt_close(db);
}

static int mb_new(struct om_db *db, const char *plan, const char *ext, const char *pin,
                  struct om_dir_err *e)
{
	struct om_dir_mailbox m;
	struct om_dir_pin p = { pin, dt_dir };
	memset(&m, 0, sizeof(m));
	snprintf(m.dialplan, sizeof(m.dialplan), "%s", plan);
	snprintf(m.extension, sizeof(m.extension), "%s", ext);
	return om_dir_mailbox_new(db, &m, 0, pin ? &p : NULL, 0, NULL, e);
}

UT_TEST(mailbox_and_removal_rules)
{
	struct om_db *db = dt_open();
	struct om_dir_err e;
	struct om_dir_dialplan p;
	struct om_dir_mailbox m, m2;
	struct om_dir_server srv;
	UT_TRUE(db != NULL);
	UT_EQ_INT(0, dt_plan(db, "P", 4, OM_SEC_UNSECURED));
	UT_EQ_INT(0, dt_plan(db, "Q", 4, OM_SEC_UNSECURED));
	EXPECT_REFUSED(EPERM, mb_new(db, "P", "123", NULL, &e), "4-digit");
	EXPECT_REFUSED(EPERM, mb_new(db, "P", "12345", NULL, &e), "4-digit");
	EXPECT_REFUSED(EINVAL, mb_new(db, "P", "12a4", NULL, &e), "invalid extension");
	UT_EQ_INT(0, mb_new(db, "P", "1234", NULL, &e));
	EXPECT_REFUSED(EEXIST, mb_new(db, "P", "1234", NULL, &e), "already has a mailbox");
	UT_EQ_INT(0, mb_new(db, "Q", "1234", NULL, &e)); /* same extension, other plan */
	EXPECT_REFUSED(EEXIST, om_dir_mailbox_get(db, NULL, "1234", &m, &e), "--dialplan");
	UT_EQ_INT(0, om_dir_mailbox_get(db, "Q", "1234", &m, &e));
	UT_EQ_INT(0, om_dir_mailbox_get(db, "P", "1234", &m2, &e));
	UT_TRUE(strcmp(m.uid, m2.uid) != 0);
	UT_EQ_INT(32, strlen(m.uid));
	/* PIN checks */
	EXPECT_REFUSED(EINVAL, mb_new(db, "P", "2222", "2222", &e), "too easy");
	EXPECT_REFUSED(EINVAL, mb_new(db, "P", "2222", "12", &e), "4 to 24");
	EXPECT_REFUSED(EINVAL, mb_new(db, "P", "2222", "4321", &e), "in sequence");
	EXPECT_REFUSED(EINVAL, mb_new(db, "P", "2222", "2580", &e), "keypad");
	EXPECT_REFUSED(EINVAL, mb_new(db, "P", "4711", "47114711", &e), "extension");
	/* the plan's pilot number comes from the store */
	memset(&p, 0, sizeof(p));
	strcpy(p.pilot, "+4930125080");
	UT_EQ_INT(0, om_dir_dialplan_set(db, "Q", &p, OM_DP_PILOT, 0, NULL, &e));
	EXPECT_REFUSED(EINVAL, mb_new(db, "Q", "4711", "125080", &e), "pilot number");
	UT_EQ_INT(0, mb_new(db, "P", "4711", "125080", &e)); /* P has no pilot */
	UT_EQ_INT(0, om_dir_mailbox_remove(db, "P", "4711", 0, &e));
	{
		struct om_dir_pin pp = { "5080", dt_dir };
		EXPECT_REFUSED(
		    EINVAL, om_dir_mailbox_set(db, "Q", "1234", &m, OM_MB_F_PIN, &pp, 0, NULL, &e),
		    "end of the dial plan's pilot number");
	}
	/* digits change refused while mailboxes have the old length */
	memset(&p, 0, sizeof(p));
	p.digits = 5;
	EXPECT_REFUSED(EPERM, om_dir_dialplan_set(db, "P", &p, OM_DP_DIGITS, 0, NULL, &e), "1234");
	/* removing a plan in use lists its users */
	UT_EQ_INT(0, dt_gw(db, "gw", "10.1.1.1", "P", NULL, 0, -1, &e));
	EXPECT_REFUSED(EBUSY, om_dir_dialplan_remove(db, "P", 0, &e), "gw");
	UT_TRUE(strstr(e.msg, "1234") != NULL);
	UT_EQ_INT(0, om_dir_gateway_remove(db, "gw", 0, &e));
	UT_EQ_INT(0, om_dir_mailbox_remove(db, "P", "1234", 0, &e));
	/* associated with this server */
	memset(&srv, 0, sizeof(srv));
	strcpy(srv.dialplans[0], "P");
	srv.ndialplans = 1;
	UT_EQ_INT(0, om_dir_server_set(db, &srv, OM_SRV_F_DIALPLANS, 0, NULL, &e));
	EXPECT_REFUSED(EBUSY, om_dir_dialplan_remove(db, "P", 0, &e), "this server");
	srv.ndialplans = 0;
	UT_EQ_INT(0, om_dir_server_set(db, &srv, OM_SRV_F_DIALPLANS, 0, NULL, &e));
	UT_EQ_INT(0, om_dir_dialplan_remove(db, "P", OM_DIR_DRY_RUN, &e));
	UT_EQ_INT(0, om_dir_dialplan_get(db, "P", &p, &e));
	UT_EQ_INT(0, om_dir_dialplan_remove(db, "P", 0, &e));
	UT_EQ_INT(ENOENT, om_dir_dialplan_get(db, "P", &p, &e));
	dt_close(db);
}

/* Greetings: the row names a file of the store, set and cleared per slot. */
UT_TEST(mailbox_greetings)
{
	struct om_db *db = dt_open();
	struct om_dir_err e;
	struct om_dir_mailbox in, out;
	UT_TRUE(db != NULL);
	UT_EQ_INT(0, dt_plan(db, "P", 4, OM_SEC_UNSECURED));
	UT_EQ_INT(0, mb_new(db, "P", "1001", NULL, &e));
	memset(&in, 0, sizeof(in));
	strcpy(in.greetings[OM_GREETING_BUSY], "greetings/a.busy.1.wav");
	strcpy(in.greetings[OM_GREETING_NAME], "greetings/a.name.1.wav");
	UT_EQ_INT(0, om_dir_mailbox_set(db, "P", "1001", &in,
	                                (OM_MB_F_GREETING << OM_GREETING_BUSY) |
	                                    (OM_MB_F_GREETING << OM_GREETING_NAME),
	                                NULL, 0, &out, &e));
	UT_EQ_STR("greetings/a.busy.1.wav", out.greetings[OM_GREETING_BUSY]);
	UT_EQ_STR("greetings/a.name.1.wav", out.greetings[OM_GREETING_NAME]);
	UT_EQ_STR("", out.greetings[OM_GREETING_UNAVAILABLE]);
	/* one cleared, the other kept */
	memset(&in, 0, sizeof(in));
	UT_EQ_INT(0, om_dir_mailbox_set(db, "P", "1001", &in, OM_MB_F_GREETING << OM_GREETING_BUSY,
	                                NULL, 0, &out, &e));
	UT_EQ_STR("", out.greetings[OM_GREETING_BUSY]);
	UT_EQ_INT(0, om_dir_mailbox_get(db, "P", "1001", &out, &e));
	UT_EQ_STR("greetings/a.name.1.wav", out.greetings[OM_GREETING_NAME]);
	/* a path outside greetings/ is refused */
	strcpy(in.greetings[OM_GREETING_BUSY], "greetings/../openum.db");
	EXPECT_REFUSED(EINVAL,
	               om_dir_mailbox_set(db, "P", "1001", &in,
	                                  OM_MB_F_GREETING << OM_GREETING_BUSY, NULL, 0, &out, &e),
	               "greeting file name");
	dt_close(db);
}

UT_TEST(pin_hash_with_pepper)
{
	struct om_db *db = dt_open();
	struct om_dir_err e;
	struct om_dir_mailbox m;
	struct stat st;
	char path[128];
	UT_TRUE(db != NULL);
	UT_EQ_INT(0, dt_plan(db, "P", 4, OM_SEC_UNSECURED));
	UT_EQ_INT(0, mb_new(db, "P", "1000", "483920", &e));
	UT_EQ_INT(0, om_dir_mailbox_get(db, "P", "1000", &m, &e));
	UT_TRUE(m.has_pin);
	UT_EQ_INT(0, om_dir_mailbox_pin_check(db, dt_dir, m.id, "483920"));
	UT_EQ_INT(EACCES, om_dir_mailbox_pin_check(db, dt_dir, m.id, "483921"));
	snprintf(path, sizeof(path), "%s/pepper", dt_dir);
	UT_EQ_INT(0, stat(path, &st));
	UT_EQ_INT(0600, st.st_mode & 0777);
	UT_EQ_INT(32, st.st_size);
	/* the database alone holds no PIN and no pepper */
	sqlite3_stmt *q;
	sqlite3_prepare_v2(om_db_sqlite(db), "SELECT pin_hash FROM mailboxes", -1, &q, NULL);
	UT_EQ_INT(SQLITE_ROW, sqlite3_step(q));
	const char *h = (const char *)sqlite3_column_text(q, 0);
	UT_TRUE(strncmp(h, "scrypt$14$8$1$", 14) == 0);
	UT_TRUE(strstr(h, "483920") == NULL);
	sqlite3_finalize(q);
	/* another pepper: the same PIN no longer matches */
	unlink(path);
	UT_EQ_INT(EACCES, om_dir_mailbox_pin_check(db, dt_dir, m.id, "483920"));
	/* a pepper readable by others is refused */
	chmod(path, 0644);
	UT_EQ_INT(EPERM, om_dir_mailbox_pin_check(db, dt_dir, m.id, "483920"));
	dt_close(db);
}

UT_TEST(server_settings)
{
	struct om_db *db = dt_open();
	struct om_dir_err e;
	struct om_dir_server s, got;
	size_t n;
	bool sec;
	UT_TRUE(db != NULL);
	UT_EQ_INT(0, om_dir_server_get(db, &got, &e));
	UT_EQ_STR("", got.pinned_certificate);
	UT_EQ_INT(0, om_dir_server_plan_modes(db, &n, &sec));
	UT_EQ_INT(0, n);
	UT_EQ_INT(0, dt_plan(db, "U", 4, OM_SEC_UNSECURED));
	UT_EQ_INT(0, dt_plan(db, "S", 4, OM_SEC_SIPSECURED));
	memset(&s, 0, sizeof(s));
	strcpy(s.dialplans[0], "U");
	strcpy(s.dialplans[1], "nope");
	s.ndialplans = 2;
	EXPECT_REFUSED(ENOENT, om_dir_server_set(db, &s, OM_SRV_F_DIALPLANS, 0, NULL, &e), "nope");
	s.ndialplans = 1;
	UT_EQ_INT(0, om_dir_server_set(db, &s, OM_SRV_F_DIALPLANS, 0, NULL, &e));
	UT_EQ_INT(0, om_dir_server_plan_modes(db, &n, &sec));
	UT_EQ_INT(1, n);
	UT_TRUE(!sec);
	strcpy(s.dialplans[1], "s");
	s.ndialplans = 2;
	strcpy(s.pinned_certificate, "0123456789abcdef0123456789abcdef01234567");
	UT_EQ_INT(0, om_dir_server_set(db, &s, OM_SRV_F_DIALPLANS | OM_SRV_F_CERT, 0, &got, &e));
	UT_EQ_INT(2, got.ndialplans);
	UT_EQ_INT(0, om_dir_server_plan_modes(db, &n, &sec));
	UT_EQ_INT(2, n);
	UT_TRUE(sec);
	strcpy(s.pinned_certificate, "not hex");
	EXPECT_REFUSED(EINVAL, om_dir_server_set(db, &s, OM_SRV_F_CERT, 0, NULL, &e),
	               "--certificate");
	s.pinned_certificate[0] = 0; /* auto */
	UT_EQ_INT(0, om_dir_server_set(db, &s, OM_SRV_F_CERT, 0, &got, &e));
	UT_EQ_STR("", got.pinned_certificate);
	UT_EQ_INT(2, got.ndialplans);
	dt_close(db);
}

/* Out of memory at every allocation of a change: either it succeeds, or
 * it fails with nothing changed and nothing leaked. (Own loop rather than
 * ut_oom_sweep: the check after each run must allocate.) */
UT_TEST(oom_sweep_changes)
{
	struct om_dir_err e;
	struct om_db *db = dt_open();
	unsigned long n;
	UT_TRUE(db != NULL);
	UT_EQ_INT(0, dt_plan(db, "P", 4, OM_SEC_UNSECURED));
	for (int i = 0; i < 20; i++) {
		char name[16], addr[32];
		snprintf(name, sizeof(name), "g%d", i);
		snprintf(addr, sizeof(addr), "10.0.0.%d", i + 1);
		UT_EQ_INT(0, dt_gw(db, name, addr, "P", NULL, 0, -1, &e));
	}
	char *before = dump(db);
	for (n = 1; n < 100000; n++) {
		struct om_dir_dialplan p;
		om_alloc_fail_at(n, 0);
		int rc = dt_gw(db, "new", "10.9.9.9,new.example.com", "P", "new.example.com", 5061,
		               OM_TRANSPORT_TLS, &e);
		memset(&p, 0, sizeof(p));
		p.security = OM_SEC_SECURED;
		int rc2 =
		    om_dir_dialplan_set(db, "P", &p, OM_DP_SECURITY, OM_DIR_DRY_RUN, NULL, &e);
		int hit = om_alloc_fault_hit();
		om_alloc_fail_at(0, 0);
		UT_TRUE(rc2 == EPERM || rc2 == ENOMEM || rc2 == EIO);
		if (rc == 0)
			UT_EQ_INT(0, om_dir_gateway_remove(db, "new", 0, &e));
		else
			UT_TRUE(rc == ENOMEM || rc == EIO);
		char *now = dump(db);
		int same = strcmp(now, before) == 0;
		free(now);
		if (!same)
			UT_FAIL("allocation %lu failing changed the store", n);
		if (!hit)
			break;
	}
	UT_TRUE(n > 3);
	free(before);
	dt_close(db);
}

UT_MAIN(UT_CASE(oom_sweep_changes), UT_CASE(dialplan_rules), UT_CASE(gateway_security_rules),
        UT_CASE(gateway_uniqueness_rules), UT_CASE(mailbox_and_removal_rules),
        UT_CASE(mailbox_greetings), UT_CASE(pin_hash_with_pepper), UT_CASE(server_settings))
