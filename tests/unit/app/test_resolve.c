/* test_resolve.c — gateway FQDNs on the loop (R4, RFC 1035): a round
 * against a tiny DNS server on this test's own libuv loop (so the loop is
 * provably not held while c-ares waits), the TTL, a failure keeping the
 * last good addresses, the round deadline, closing mid-round; and the
 * snapshot copy a refresh works on (directory content kept, resolved
 * addresses not). */
#include "ut.h"
#include "app/resolve.h"
#include "directory/db.h"
#include "directory/directory.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[64];
static struct om_db *db;

static void gateway(const char *name, const char *addr)
{
	struct om_dir_gateway g;
	struct om_dir_err err;
	memset(&g, 0, sizeof(g));
	snprintf(g.name, sizeof(g.name), "%s", name);
	snprintf(g.dialplan, sizeof(g.dialplan), "dp");
	UT_EQ_INT(0, om_dir_host_parse(addr, &g.hosts[0]));
	g.nhosts = 1;
	if (om_dir_gateway_new(db, &g, OM_GW_F_HOSTS | OM_GW_F_DIALPLAN, 0, NULL, &err))
		UT_FAIL("gateway %s: %s", name, err.msg);
}

static struct om_dir_snapshot *setup(void)
{
	char e[256];
	struct om_dir_dialplan dp;
	struct om_dir_err err;
	struct om_dir_snapshot *snap;
	snprintf(dir, sizeof(dir), "/tmp/om-ut-resolve-XXXXXX");
	UT_TRUE(mkdtemp(dir) != NULL);
	UT_EQ_INT(0, om_db_open(dir, OM_DB_CREATE, &db, e, sizeof(e)));
	memset(&dp, 0, sizeof(dp));
	snprintf(dp.name, sizeof(dp.name), "dp");
	dp.digits = 3;
	UT_EQ_INT(0, om_dir_dialplan_new(db, &dp, OM_DP_DIGITS, 0, NULL, &err));
	gateway("ip", "192.0.2.10");
	gateway("named", "gw.example.test");
	UT_EQ_INT(0, om_dir_snapshot_build(db, &snap, &err));
	return snap;
}

static void teardown(void)
{
	char cmd[96];
	om_db_free(db);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	UT_EQ_INT(0, system(cmd));
}

static struct sockaddr_in v4(const char *ip)
{
	struct sockaddr_in a;
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	inet_pton(AF_INET, ip, &a.sin_addr);
	return a;
}

static const struct om_dir_gateway *by_addr(struct om_dir_snapshot *s, const char *ip)
{
	struct sockaddr_in a = v4(ip);
	return om_dir_snapshot_gateway_by_addr(s, (struct sockaddr *)&a);
}

UT_TEST(copy_keeps_the_directory_and_drops_resolved_addresses)
{
	struct om_dir_snapshot *s = setup(), *c = NULL;
	uint8_t ip[1][16] = { { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 198, 51, 100, 7 } };
	UT_EQ_INT(1, om_dir_snapshot_fqdn_count(s));
	UT_EQ_INT(0, om_dir_snapshot_add_resolved(s, 0, (const uint8_t(*)[16])ip, 1));
	UT_TRUE(by_addr(s, "198.51.100.7") != NULL);
	UT_EQ_INT(0, om_dir_snapshot_copy(s, &c));
	UT_TRUE(om_dir_snapshot_generation(c) != om_dir_snapshot_generation(s));
	UT_EQ_INT(om_dir_snapshot_gateway_count(s), om_dir_snapshot_gateway_count(c));
	UT_EQ_STR("ip", by_addr(c, "192.0.2.10")->name);
	UT_TRUE(by_addr(c, "198.51.100.7") == NULL);
	UT_EQ_INT(1, om_dir_snapshot_fqdn_count(c));
	UT_EQ_STR("gw.example.test", om_dir_snapshot_fqdn_at(c, 0, NULL));
	UT_EQ_INT(om_dir_snapshot_dialplan_count(s), om_dir_snapshot_dialplan_count(c));
	/* a change in the store after s was built is not in the copy */
	gateway("late", "192.0.2.99");
	om_dir_snapshot_free(c);
	UT_EQ_INT(0, om_dir_snapshot_copy(s, &c));
	UT_TRUE(by_addr(c, "192.0.2.99") == NULL);
	om_dir_snapshot_free(c);
	om_dir_snapshot_free(s);
	teardown();
}

/* ---------------------------------------------------- a DNS server */

struct dns {
	uv_udp_t h;
	int port;
	int answer; /* 0: stay silent */
	int ttl;
	int queries;
	char buf[512];
};

static void dns_alloc(uv_handle_t *h, size_t s, uv_buf_t *b)
{
	struct dns *d = h->data;
	b->base = d->buf;
	b->len = sizeof(d->buf);
}

static void dns_sent(uv_udp_send_t *req, int status)
{
	free(req);
}

/* Answers an A query for any name with 198.51.100.7 (RFC 1035 §4.1). */
static void dns_recv(uv_udp_t *h, ssize_t n, const uv_buf_t *b, const struct sockaddr *peer,
                     unsigned flags)
{
	struct dns *d = h->data;
	if (n < 12 || !peer)
		return;
	d->queries++;
	if (!d->answer)
		return;
	size_t q = 12;
	while (q < (size_t)n && b->base[q])
		q += (unsigned char)b->base[q] + 1;
	q += 5; /* root label, type, class */
	if (q > (size_t)n)
		return;
	int is_a = b->base[q - 3] == 1;
	static char out[600];
	memcpy(out, b->base, q);
	out[2] = (char)0x81;
	out[3] = (char)0x80;
	out[6] = 0;
	out[7] = (char)is_a;
	memset(out + 8, 0, 4);
	size_t o = q;
	if (is_a) {
		const unsigned char rr[] = { 0xc0,
			                     0x0c,
			                     0,
			                     1,
			                     0,
			                     1,
			                     (unsigned char)(d->ttl >> 24),
			                     (unsigned char)(d->ttl >> 16),
			                     (unsigned char)(d->ttl >> 8),
			                     (unsigned char)d->ttl,
			                     0,
			                     4,
			                     198,
			                     51,
			                     100,
			                     7 };
		memcpy(out + o, rr, sizeof(rr));
		o += sizeof(rr);
	}
	uv_udp_send_t *req = malloc(sizeof(*req));
	uv_buf_t ob = uv_buf_init(out, (unsigned)o);
	uv_udp_send(req, h, &ob, 1, peer, dns_sent);
}

static void dns_start(uv_loop_t *loop, struct dns *d)
{
	struct sockaddr_in a = v4("127.0.0.1");
	struct sockaddr_storage bound;
	int len = sizeof(bound);
	UT_EQ_INT(0, uv_udp_init(loop, &d->h));
	d->h.data = d;
	UT_EQ_INT(0, uv_udp_bind(&d->h, (struct sockaddr *)&a, 0));
	uv_udp_getsockname(&d->h, (struct sockaddr *)&bound, &len);
	d->port = ntohs(((struct sockaddr_in *)&bound)->sin_port);
	uv_udp_recv_start(&d->h, dns_alloc, dns_recv);
}

static int rounds_done;

static void on_done(struct om_resolver *r, void *arg)
{
	rounds_done++;
}

static void run_until_done(uv_loop_t *loop, int want)
{
	for (int i = 0; i < 20000 && rounds_done < want; i++)
		uv_run(loop, UV_RUN_ONCE);
	UT_EQ_INT(want, rounds_done);
}

UT_TEST(round_on_the_loop_ttl_failure_keeps_addresses)
{
	struct om_dir_snapshot *s = setup(), *c = NULL;
	uv_loop_t loop;
	struct dns d;
	struct om_resolver *r = NULL;
	char servers[64];
	UT_EQ_INT(0, uv_loop_init(&loop));
	memset(&d, 0, sizeof(d));
	d.answer = 1;
	d.ttl = 7;
	/* the DNS server runs on the same loop: a resolver that blocked the
	 * loop could never get its answer */
	dns_start(&loop, &d);
	snprintf(servers, sizeof(servers), "127.0.0.1:%d", d.port);
	rounds_done = 0;
	UT_EQ_INT(0, om_resolver_new(&loop, on_done, NULL, &r));
	UT_EQ_INT(0, om_resolver_set_servers(r, servers));
	UT_EQ_INT(1, om_resolver_start(r, s, 3000));
	UT_TRUE(om_resolver_busy(r));
	run_until_done(&loop, 1);
	UT_TRUE(!om_resolver_busy(r));
	UT_TRUE(d.queries >= 1);
	UT_EQ_INT(7000, om_resolver_next_ms(r));
	UT_EQ_INT(0, om_dir_snapshot_copy(s, &c));
	UT_EQ_INT(0, om_resolver_apply(r, c));
	UT_EQ_STR("named", by_addr(c, "198.51.100.7")->name);
	om_dir_snapshot_free(c);
	/* the server falls silent: the round ends at its deadline, the last
	 * good address is kept and the next round comes within 30 s */
	d.answer = 0;
	UT_EQ_INT(1, om_resolver_start(r, s, 300));
	run_until_done(&loop, 2);
	UT_EQ_INT(7000, om_resolver_next_ms(r)); /* min(30 s, the last TTL) */
	UT_EQ_INT(0, om_dir_snapshot_copy(s, &c));
	UT_EQ_INT(0, om_resolver_apply(r, c));
	UT_EQ_STR("named", by_addr(c, "198.51.100.7")->name);
	om_dir_snapshot_free(c);
	/* a start while a round runs follows it */
	d.answer = 1;
	UT_EQ_INT(1, om_resolver_start(r, s, 3000));
	UT_EQ_INT(1, om_resolver_start(r, s, 3000));
	run_until_done(&loop, 4);
	UT_TRUE(!om_resolver_busy(r));
	UT_EQ_INT(4, om_resolver_rounds(r));
	om_resolver_close(r);
	uv_close((uv_handle_t *)&d.h, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	UT_EQ_INT(0, uv_loop_close(&loop));
	om_dir_snapshot_free(s);
	teardown();
}

UT_TEST(close_during_a_round)
{
	struct om_dir_snapshot *s = setup();
	uv_loop_t loop;
	struct dns d;
	struct om_resolver *r = NULL;
	char servers[64];
	UT_EQ_INT(0, uv_loop_init(&loop));
	memset(&d, 0, sizeof(d));
	dns_start(&loop, &d); /* silent */
	snprintf(servers, sizeof(servers), "127.0.0.1:%d", d.port);
	rounds_done = 0;
	UT_EQ_INT(0, om_resolver_new(&loop, on_done, NULL, &r));
	UT_EQ_INT(0, om_resolver_set_servers(r, servers));
	UT_EQ_INT(1, om_resolver_start(r, s, 3000));
	for (int i = 0; i < 50 && !d.queries; i++)
		uv_run(&loop, UV_RUN_NOWAIT), usleep(1000);
	UT_TRUE(d.queries >= 1);
	om_resolver_close(r); /* no done_h, every handle and byte released */
	uv_close((uv_handle_t *)&d.h, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	UT_EQ_INT(0, rounds_done);
	UT_EQ_INT(0, uv_loop_close(&loop));
	om_dir_snapshot_free(s);
	teardown();
}

UT_TEST(apply_before_any_answer)
{
	struct om_dir_snapshot *s = setup(), *c = NULL;
	uv_loop_t loop;
	struct om_resolver *r = NULL;
	UT_EQ_INT(0, uv_loop_init(&loop));
	UT_EQ_INT(0, om_resolver_new(&loop, on_done, NULL, &r));
	gateway("other", "192.0.2.11");
	/* a new snapshot still has the FQDN gateway */
	struct om_dir_err err;
	struct om_dir_snapshot *plain;
	UT_EQ_INT(0, om_dir_snapshot_build(db, &plain, &err));
	UT_EQ_INT(1, om_dir_snapshot_fqdn_count(plain)); /* "named" is still there */
	om_dir_snapshot_free(plain);
	UT_EQ_INT(0, om_dir_snapshot_copy(s, &c));
	UT_EQ_INT(1, om_resolver_apply(r, c)); /* no answer yet: one name without address */
	UT_EQ_INT(0, om_resolver_next_ms(r));
	om_dir_snapshot_free(c);
	om_resolver_close(r);
	uv_run(&loop, UV_RUN_DEFAULT);
	UT_EQ_INT(0, uv_loop_close(&loop));
	om_dir_snapshot_free(s);
	teardown();
}

UT_MAIN(UT_CASE(copy_keeps_the_directory_and_drops_resolved_addresses),
        UT_CASE(round_on_the_loop_ttl_failure_keeps_addresses), UT_CASE(close_during_a_round),
        UT_CASE(apply_before_any_answer))
