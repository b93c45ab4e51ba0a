/* test_trust.c — the flow table and the outbound rule: openum only ever
 * sends to an open flow of a trusted gateway or to the gateway's
 * configured address, never to a host a message names. */
#include "ut.h"
#include "directory/db.h"
#include "directory/directory.h"
#include "trust/trust.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

static char dir[64];
static struct om_db *db;

static void gateway(const char *name, const char *addr, const char *plan, int port,
                    enum om_dir_gw_status st)
{
	struct om_dir_gateway g;
	struct om_dir_err err;
	memset(&g, 0, sizeof(g));
	snprintf(g.name, sizeof(g.name), "%s", name);
	snprintf(g.dialplan, sizeof(g.dialplan), "%s", plan);
	if (port == 5061)
		snprintf(g.tls_name, sizeof(g.tls_name), "%s.example.com", name);
	UT_EQ_INT(0, om_dir_host_parse(addr, &g.hosts[0]));
	g.nhosts = 1;
	g.port = port;
	g.status = st;
	if (om_dir_gateway_new(db, &g,
	                       OM_GW_F_HOSTS | OM_GW_F_DIALPLAN | OM_GW_F_PORT | OM_GW_F_STATUS |
	                           (port == 5061 ? OM_GW_F_TLS_NAME : 0),
	                       0, NULL, &err))
		UT_FAIL("gateway %s: %s", name, err.msg);
}

static struct om_dir_snapshot *setup(void)
{
	char e[256];
	struct om_dir_dialplan dp;
	struct om_dir_err err;
	struct om_dir_snapshot *snap;
	snprintf(dir, sizeof(dir), "/tmp/om-ut-trust-XXXXXX");
	UT_TRUE(mkdtemp(dir) != NULL);
	UT_EQ_INT(0, om_db_open(dir, OM_DB_CREATE, &db, e, sizeof(e)));
	memset(&dp, 0, sizeof(dp));
	snprintf(dp.name, sizeof(dp.name), "dp");
	dp.digits = 3;
	UT_EQ_INT(0, om_dir_dialplan_new(db, &dp, OM_DP_DIGITS, 0, NULL, &err));
	gateway("pbx", "192.0.2.10", "dp", 5070, OM_GW_ENABLED);
	gateway("v6", "2001:db8::5", "dp", 5060, OM_GW_ENABLED);
	gateway("off", "192.0.2.20", "dp", 5060, OM_GW_DISABLED);
	gateway("named", "pbx.example.com", "dp", 5060, OM_GW_ENABLED);
	gateway("sbc", "192.0.2.30", "dp", 5061, OM_GW_ENABLED); /* TLS (port 5061) */
	UT_EQ_INT(0, om_dir_snapshot_build(db, &snap, &err));
	return snap;
}

static void teardown(struct om_dir_snapshot *snap)
{
	char cmd[96];
	om_dir_snapshot_free(snap);
	om_db_free(db);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	UT_EQ_INT(0, system(cmd));
}

static const struct om_dir_gateway *gw(struct om_dir_snapshot *s, const char *name)
{
	for (size_t i = 0; i < om_dir_snapshot_gateway_count(s); i++)
		if (!strcmp(om_dir_snapshot_gateway_at(s, i)->name, name))
			return om_dir_snapshot_gateway_at(s, i);
	UT_FAIL("no gateway %s", name);
	return NULL;
}

static struct sockaddr_in v4(const char *ip, int port)
{
	struct sockaddr_in a;
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t)port);
	inet_pton(AF_INET, ip, &a.sin_addr);
	return a;
}

UT_TEST(no_flow_goes_to_configured_address_and_port)
{
	struct om_dir_snapshot *s = setup();
	struct om_flow_table *t;
	struct om_outbound o;
	UT_EQ_INT(0, om_flow_table_new(&t));
	UT_EQ_INT(0, om_trust_outbound(s, t, gw(s, "pbx")->id, NULL, &o));
	UT_TRUE(!o.use_flow);
	struct sockaddr_in *a = (struct sockaddr_in *)&o.addr;
	char ip[32];
	inet_ntop(AF_INET, &a->sin_addr, ip, sizeof(ip));
	UT_EQ_STR("192.0.2.10", ip);
	UT_EQ_INT(5070, ntohs(a->sin_port));
	UT_EQ_INT(0, om_trust_outbound(s, t, gw(s, "v6")->id, NULL, &o));
	UT_EQ_INT(AF_INET6, o.addr.ss_family);
	om_flow_table_free(t);
	teardown(s);
}

UT_TEST(open_flow_is_reused_alias_preferred)
{
	struct om_dir_snapshot *s = setup();
	struct om_flow_table *t;
	struct om_outbound o;
	int64_t id = gw(s, "pbx")->id;
	UT_EQ_INT(0, om_flow_table_new(&t));
	struct sockaddr_in p1 = v4("192.0.2.10", 40001), p2 = v4("192.0.2.10", 40002);
	UT_EQ_INT(0, om_flow_add(t, 7, id, (struct sockaddr *)&p1, OM_FLOW_TCP));
	UT_EQ_INT(0, om_flow_add(t, 8, id, (struct sockaddr *)&p2, OM_FLOW_TLS));
	UT_EQ_INT(EEXIST, om_flow_add(t, 8, id, (struct sockaddr *)&p2, OM_FLOW_TCP));
	UT_EQ_INT(0, om_flow_set_alias(t, 8, true));
	UT_EQ_INT(0, om_trust_outbound(s, t, id, NULL, &o));
	UT_TRUE(o.use_flow);
	UT_EQ_INT(8, o.conn_id);
	om_flow_remove(t, 8);
	UT_EQ_INT(0, om_trust_outbound(s, t, id, NULL, &o));
	UT_EQ_INT(7, o.conn_id);
	om_flow_remove(t, 7);
	UT_EQ_INT(0, om_flow_count(t));
	UT_EQ_INT(0, om_trust_outbound(s, t, id, NULL, &o));
	UT_TRUE(!o.use_flow);
	om_flow_table_free(t);
	teardown(s);
}

UT_TEST(host_from_message_never_becomes_a_destination)
{
	struct om_dir_snapshot *s = setup();
	struct om_outbound o;
	int64_t id = gw(s, "pbx")->id;
	/* A Contact naming another host, even another gateway's, is refused. */
	UT_EQ_INT(EPERM, om_trust_outbound(s, NULL, id, "198.51.100.66", &o));
	UT_EQ_INT(EPERM, om_trust_outbound(s, NULL, id, "2001:db8::5", &o));
	UT_EQ_INT(EPERM, om_trust_outbound(s, NULL, id, "evil.example.net", &o));
	UT_EQ_INT(EPERM, om_trust_outbound(s, NULL, id, "::ffff:198.51.100.66", &o));
	/* its own address, in any spelling, is fine, and still goes to the
	 * configured port */
	UT_EQ_INT(0, om_trust_outbound(s, NULL, id, "192.0.2.10", &o));
	UT_EQ_INT(0, om_trust_outbound(s, NULL, id, "::ffff:192.0.2.10", &o));
	UT_EQ_INT(5070, ntohs(((struct sockaddr_in *)&o.addr)->sin_port));
	/* the FQDN gateway's own name passes the check (then it has no
	 * resolved address here: unreachable, not EPERM) */
	UT_EQ_INT(EHOSTUNREACH,
	          om_trust_outbound(s, NULL, gw(s, "named")->id, "PBX.Example.COM", &o));
	UT_EQ_INT(EPERM, om_trust_outbound(s, NULL, gw(s, "named")->id, "pbx.example.net", &o));
	teardown(s);
}

/* RFC 5923 ;alias on a plain-TCP flow: the peer is not authenticated,
 * so it cannot make openum prefer its connection. */
UT_TEST(alias_only_on_tls_flows)
{
	struct om_flow_table *t;
	struct sockaddr_in p = v4("192.0.2.10", 40001);
	UT_EQ_INT(0, om_flow_table_new(&t));
	UT_EQ_INT(0, om_flow_add(t, 1, 5, (struct sockaddr *)&p, OM_FLOW_TCP));
	UT_EQ_INT(0, om_flow_add(t, 2, 5, (struct sockaddr *)&p, OM_FLOW_TLS));
	UT_EQ_INT(EPERM, om_flow_set_alias(t, 1, true));
	UT_TRUE(!om_flow_get(t, 1)->alias);
	UT_EQ_INT(0, om_flow_set_alias(t, 2, true));
	UT_TRUE(om_flow_get(t, 2)->alias);
	UT_EQ_INT(ENOENT, om_flow_set_alias(t, 3, true));
	om_flow_table_free(t);
}

/* A flow weaker than the gateway's configured transport is never used: a
 * plain-TCP connection (even one recorded for the gateway) cannot carry a
 * request meant for a TLS gateway; a mutual-TLS flow may serve a TCP one. */
UT_TEST(outbound_never_downgrades)
{
	struct om_dir_snapshot *s = setup();
	struct om_flow_table *t;
	struct om_outbound o;
	int64_t sbc = gw(s, "sbc")->id, pbx = gw(s, "pbx")->id;
	UT_EQ_INT(0, om_flow_table_new(&t));
	struct sockaddr_in p = v4("192.0.2.30", 40001), q = v4("192.0.2.10", 40002);
	UT_EQ_INT(0, om_flow_add(t, 11, sbc, (struct sockaddr *)&p, OM_FLOW_TCP));
	UT_EQ_INT(0, om_trust_outbound(s, t, sbc, NULL, &o));
	UT_TRUE(!o.use_flow);
	UT_EQ_INT(OM_FLOW_TLS, o.transport);
	UT_EQ_STR("sbc.example.com", o.tls_name);
	UT_EQ_INT(5061, ntohs(((struct sockaddr_in *)&o.addr)->sin_port));
	UT_EQ_INT(0, om_flow_add(t, 12, sbc, (struct sockaddr *)&p, OM_FLOW_TLS));
	UT_EQ_INT(0, om_trust_outbound(s, t, sbc, NULL, &o));
	UT_TRUE(o.use_flow);
	UT_EQ_INT(12, o.conn_id);
	UT_EQ_INT(OM_FLOW_TLS, o.transport);
	/* a TLS flow of a TCP gateway is stronger: used */
	UT_EQ_INT(0, om_flow_add(t, 13, pbx, (struct sockaddr *)&q, OM_FLOW_TLS));
	UT_EQ_INT(0, om_trust_outbound(s, t, pbx, NULL, &o));
	UT_TRUE(o.use_flow);
	UT_EQ_INT(13, o.conn_id);
	UT_EQ_INT(OM_FLOW_TLS, o.transport);
	om_flow_table_free(t);
	teardown(s);
}

UT_TEST(untrusted_or_unknown_gateway_refused)
{
	struct om_dir_snapshot *s = setup();
	struct om_outbound o;
	UT_EQ_INT(ENOENT, om_trust_outbound(s, NULL, gw(s, "off")->id, NULL, &o));
	UT_EQ_INT(ENOENT, om_trust_outbound(s, NULL, 999999, NULL, &o));
	/* an FQDN gateway with no flow and no resolved address: unreachable,
	 * never "connect to whatever the name says now" */
	UT_EQ_INT(EHOSTUNREACH, om_trust_outbound(s, NULL, gw(s, "named")->id, NULL, &o));
	teardown(s);
}

static int flow_ops(void *arg)
{
	struct om_flow_table *t;
	struct sockaddr_in p = v4("192.0.2.1", 1);
	int rc = om_flow_table_new(&t);
	if (rc)
		return rc;
	for (uint64_t i = 0; i < 40 && rc == 0; i++)
		rc = om_flow_add(t, i, 1, (struct sockaddr *)&p, OM_FLOW_TCP);
	om_flow_table_free(t);
	return rc;
}

UT_TEST(flow_table_oom_sweep)
{
	UT_TRUE(ut_oom_sweep(flow_ops, NULL) > 2);
}

UT_MAIN(UT_CASE(no_flow_goes_to_configured_address_and_port),
        UT_CASE(open_flow_is_reused_alias_preferred),
        UT_CASE(host_from_message_never_becomes_a_destination),
        UT_CASE(untrusted_or_unknown_gateway_refused), UT_CASE(alias_only_on_tls_flows),
        UT_CASE(outbound_never_downgrades), UT_CASE(flow_table_oom_sweep))
